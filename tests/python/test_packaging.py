"""The package installs with pip: into a fresh virtual environment, from
client/python, reusing the CMake build in $PSTORE_BUILD_DIR
(PSTORE_CMAKE_BUILD_DIR), and the installed copy imports from the venv's
site-packages and loads from a real pstored.

pip builds a local directory in place, leaving build/ and pstore.egg-info/
beside setup.py; the test installs from a copy of client/python so that
the source tree stays as it was (with PSTORE_CMAKE_BUILD_DIR, setup.py
needs nothing outside its directory)."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest
import torch

SOURCE_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                 "client", "python"))

LOAD_SCRIPT = textwrap.dedent("""\
    import sys, sysconfig
    import pstore
    import pstore._pstore
    print("PSTORE", pstore.__file__)
    print("EXTENSION", pstore._pstore.__file__)
    print("SITE", sysconfig.get_paths()["platlib"])
    print("PURE", sysconfig.get_paths()["purelib"])
    loaded = pstore.Client(sys.argv[1]).load(sys.argv[2])
    print("BYTES", loaded["w"].numpy().tobytes().hex())
""")


def clean_environment():
    """Returns os.environ without what would make the venv's Python import
    the build tree's pstore instead of the installed one."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(command, timeout, **kwargs):
    """Runs ``command``; fails the test with its output if it exits
    non-zero. Returns its stdout."""
    result = subprocess.run(command,
                            stdin=subprocess.DEVNULL,
                            capture_output=True,
                            text=True,
                            timeout=timeout,
                            **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:"
                    f"\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def venv():
    """A virtual environment (seeing the system's torch and numpy) with
    pstore pip-installed from client/python; returns its directory."""
    build_dir = os.environ.get("PSTORE_BUILD_DIR")
    if not build_dir:
        pytest.fail("$PSTORE_BUILD_DIR is not set: it names the CMake "
                    "build directory that the install reuses")
    assert os.path.exists(os.path.join(SOURCE_DIR, "setup.py")), (
        f"no setup.py in {SOURCE_DIR}")
    root = tempfile.mkdtemp(prefix="pstore-python-venv-",
                            dir=os.environ.get("TEST_TMPDIR") or "/var/tmp")
    directory = os.path.join(root, "venv")
    source = os.path.join(root, "python")
    env = clean_environment()
    env["PSTORE_CMAKE_BUILD_DIR"] = build_dir
    try:
        shutil.copytree(SOURCE_DIR, source,
                        ignore=shutil.ignore_patterns(
                            "build", "*.egg-info", "__pycache__"))
        run([sys.executable, "-m", "venv", "--system-site-packages",
             directory], timeout=120, env=env, cwd=root)
        run([os.path.join(directory, "bin", "pip"), "install",
             "--no-build-isolation", "--no-index", source],
            timeout=240, env=env, cwd=root)
        yield directory
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_pip_install_imports_from_the_venv_and_loads(venv, client,
                                                     model_name):
    """The venv's Python imports pstore (and its extension) from the
    venv's site-packages, not the build tree, and its Client loads a
    tensor put by the build tree's package byte for byte."""
    name = f"{model_name}@v1"
    weight = torch.randn(16, 32)
    client.put(name, {"w": weight})

    out = run([os.path.join(venv, "bin", "python"), "-c", LOAD_SCRIPT,
               client.address, name],
              timeout=60, env=clean_environment(), cwd=venv)

    lines = dict(
        line.split(" ", 1) for line in out.splitlines() if " " in line)
    site_dirs = {os.path.realpath(lines["SITE"]),
                 os.path.realpath(lines["PURE"])}
    venv_real = os.path.realpath(venv)
    for key in ("PSTORE", "EXTENSION"):
        path = os.path.realpath(lines[key])
        assert path.startswith(venv_real + os.sep), f"{key}: {path}"
        assert any(path.startswith(site + os.sep) for site in site_dirs), (
            f"{key}: {path} is not in {site_dirs}")
    assert lines["BYTES"] == weight.numpy().tobytes().hex()
