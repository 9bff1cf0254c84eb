"""Builds the pstore package's extension (_pstore) with the project's CMake.

`pip install ./client/python` runs this: it configures the repository two
directories up with CMake (Release, tests and benchmarks off, for the
interpreter pip runs) and builds the _pstore target, then installs the
module beside the pure-Python package. Set PSTORE_CMAKE_BUILD_DIR to an
existing build directory of the repository (absolute, or relative to the
repository's root) to build the target there instead (a build that
scripts/build.sh made, say: no second build of the libraries). Offline
and on Debian's externally managed Python:

    python3 -m venv --system-site-packages VENV
    VENV/bin/pip install --no-build-isolation ./client/python
"""

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parents[2]


class CMakeExtension(Extension):

    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):

    def build_extension(self, ext):
        build_dir = os.environ.get("PSTORE_CMAKE_BUILD_DIR")
        jobs = os.environ.get("JOBS", "2")
        if build_dir:
            # pip runs this in its own directory: a relative path is taken
            # from the repository's root.
            build_dir = (ROOT / build_dir).resolve()
        else:
            build_dir = pathlib.Path(self.build_temp).resolve() / "cmake"
            subprocess.run([
                "cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
                "-DCMAKE_BUILD_TYPE=Release", "-DPSTORE_BUILD_TESTS=OFF",
                "-DPSTORE_BUILD_BENCHMARKS=OFF",
                f"-DPSTORE_PYTHON={sys.executable}"
            ],
                           check=True)
        subprocess.run(
            ["cmake", "--build",
             str(build_dir), "--target", "_pstore", "-j", jobs],
            check=True)
        # The module for this interpreter's ABI, and none other.
        name = "_pstore" + sysconfig.get_config_var("EXT_SUFFIX")
        built = build_dir / "client" / "python" / "pstore" / name
        if not built.exists():
            raise RuntimeError(
                f"{build_dir} has no {name}: it was configured for another "
                f"Python (its PSTORE_PYTHON in CMakeCache.txt); configure it "
                f"with -DPSTORE_PYTHON={sys.executable}, or leave "
                "PSTORE_CMAKE_BUILD_DIR unset")
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(ext_modules=[CMakeExtension("pstore._pstore")],
      cmdclass={"build_ext": CMakeBuild})
