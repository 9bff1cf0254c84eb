"""Fixtures of the pstore Python package's tests: real pstored processes on
free loopback ports, clients of them, and pstore-cli.

The environment names the binaries: ``$PSTORED`` (the server) and
``$PSTORE_CLI`` (the command-line client); ``$PYTHONPATH`` makes ``pstore``
importable. Data directories go under ``$TEST_TMPDIR`` (else /var/tmp),
not /tmp: pstored opens its files with O_DIRECT, which tmpfs refuses.

Each test module starts its own servers (module-scoped fixtures), so that
ctest may run the modules in parallel. A failed test's report carries the
tail of the log of every server its module has running.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

# An idle gRPC client notices a server's GOAWAY only when its backup
# poller runs (every 5 s by default); poll often, so that stopping a
# server a client is connected to is quick. Read when gRPC starts: set it
# before pstore is imported.
os.environ.setdefault("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50")
# The tests name their servers and tokens themselves.
os.environ.pop("PSTORE_ADDR", None)
os.environ.pop("PSTORE_TOKEN", None)

import numpy  # noqa: E402,F401  (the tests need numpy: fail, never skip)
import pytest  # noqa: E402
import torch  # noqa: E402,F401  (the tests need torch: fail, never skip)

import pstore  # noqa: E402

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 60

# Every Pstored created and not yet cleaned up, for the failure reports.
_SERVERS = []


def temp_base():
    """Returns the directory temporary directories go in: $TEST_TMPDIR,
    else /var/tmp (a disk: O_DIRECT works there)."""
    return os.environ.get("TEST_TMPDIR") or "/var/tmp"


def make_temp_dir(prefix):
    """Creates and returns a fresh directory under temp_base()."""
    return tempfile.mkdtemp(prefix=prefix, dir=temp_base())


def binary(variable):
    """Returns the path in environment variable ``variable``; fails the test
    if it is unset or not an executable."""
    path = os.environ.get(variable)
    if not path:
        pytest.fail(f"${variable} is not set: it names the binary to test")
    if not os.access(path, os.X_OK):
        pytest.fail(f"${variable}={path} is not an executable")
    return path


def _read_ports(port_file):
    """Returns (port, metrics port) from pstored's port file, or None while
    it is absent or incomplete."""
    try:
        with open(port_file) as file:
            words = file.read().split()
    except FileNotFoundError:
        return None
    if len(words) < 2 or not all(word.isdigit() for word in words[:2]):
        return None
    return int(words[0]), int(words[1])


class Pstored:
    """A pstored process on a free 127.0.0.1 port over a data directory of
    its own, which lives until cleanup().

    ``flags`` are added after the defaults (the same as
    tests/testing/pstored_process.cc); pstored takes the last value of a
    flag given twice, so they may override a default. start() after stop()
    restarts it over the same data directory (on a new port).
    """

    def __init__(self, *flags):
        self.flags = list(flags)
        self.root = make_temp_dir("pstore-python-")
        self.data_dir = os.path.join(self.root, "data")
        self.log_path = os.path.join(self.root, "pstored.log")
        self.process = None
        self.port = None
        self.metrics_port = None
        _SERVERS.append(self)

    @property
    def address(self):
        """Returns "127.0.0.1:PORT" of the running server."""
        if self.port is None:
            raise RuntimeError("pstored is not running")
        return f"127.0.0.1:{self.port}"

    def running(self):
        """Returns whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def start(self):
        """Starts pstored and waits (at most START_TIMEOUT_SECONDS) until it
        listens; raises RuntimeError with the log's tail if it does not."""
        if self.running():
            raise RuntimeError("pstored is running already")
        os.makedirs(self.data_dir, exist_ok=True)
        port_file = os.path.join(self.data_dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        args = [
            binary("PSTORED"),
            "--listen=127.0.0.1:0",
            "--metrics_listen=127.0.0.1:0",
            f"--data_dir={self.data_dir}",
            f"--port_file={port_file}",
            "--dram_bytes=256MiB",
            "--nvme_bytes=512MiB",
            "--drain_seconds=10",
            "--sync_commits=false",
            "--cold_min_free_bytes=16MiB",
        ] + self.flags
        # The server dies with this process, even if it is killed.
        setpriv = shutil.which("setpriv")
        if setpriv:
            args = [setpriv, "--pdeathsig", "KILL", "--"] + args
        self.port = self.metrics_port = None
        with open(self.log_path, "ab") as log:
            log.write(f"=== start: {' '.join(args)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(args,
                                            stdin=subprocess.DEVNULL,
                                            stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            ports = _read_ports(port_file)
            if ports is not None:
                break
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"pstored exited with {code} before it listened; its "
                    f"log ends:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"pstored wrote no port file in {START_TIMEOUT_SECONDS} "
                    f"s; its log ends:\n{self.log_tail()}")
            time.sleep(0.02)
        self.port, self.metrics_port = ports
        return self

    def stop(self, timeout=STOP_TIMEOUT_SECONDS):
        """Stops pstored with SIGTERM, waits at most ``timeout`` seconds,
        then SIGKILLs it. Returns its exit code (None if it never ran)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.port = self.metrics_port = None
        return self.process.returncode

    def kill(self):
        """Kills pstored with SIGKILL and reaps it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)
        self.port = self.metrics_port = None

    def cleanup(self):
        """Stops pstored and removes its directory."""
        try:
            self.stop()
        finally:
            if self in _SERVERS:
                _SERVERS.remove(self)
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines=LOG_TAIL_LINES):
        """Returns the last ``lines`` lines of the server's log."""
        try:
            with open(self.log_path, "rb") as file:
                text = file.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Adds the log tail of every live server to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in list(_SERVERS):
            report.sections.append(
                (f"pstored log ({server.root}), last lines",
                 server.log_tail()))


@pytest.fixture(scope="module")
def start_pstored():
    """Returns a function that starts a pstored with extra flags and
    returns its Pstored; every one is cleaned up after the module."""
    servers = []

    def start(*flags):
        server = Pstored(*flags)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.cleanup()


@pytest.fixture(scope="module")
def server(start_pstored):
    """A pstored with the default flags, for the module."""
    return start_pstored()


@pytest.fixture(scope="module")
def client(server):
    """A pstore.Client of ``server``."""
    connection = pstore.Client(server.address)
    yield connection
    connection.close()


@pytest.fixture
def model_name(request):
    """Returns a model name of the test's own (unique in the server)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")
    return f"{base[:80]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def scratch_dir():
    """A directory on disk for the test's files, removed after it."""
    path = make_temp_dir("pstore-python-scratch-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def cli():
    """Returns a function that runs pstore-cli against an address:
    ``cli(address, "ls", ...)``. It returns the CompletedProcess (text
    output); with ``check`` (default) it fails the test on a non-zero
    exit."""
    path = binary("PSTORE_CLI")

    def run(address, *args, token=None, check=True, timeout=120):
        command = [path, "--addr", address]
        if token is not None:
            command += ["--token", token]
        command += [str(arg) for arg in args]
        result = subprocess.run(command,
                                stdin=subprocess.DEVNULL,
                                capture_output=True,
                                text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(command)} exited with "
                        f"{result.returncode}:\n{result.stdout}"
                        f"{result.stderr}")
        return result

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fails a test that skips: every check here is meant to run (ctest
    would report a skipped pytest test as passed)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which no test of this suite may: " \
                          f"{report.longrepr}"
