"""Every pstore exception from a real refusal, each a pstore.Error whose
message names what was refused; DataLoss from a corrupted cold block; and
a load interrupted by Ctrl-C (SIGINT) raising KeyboardInterrupt at once."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import pstore

READER = "reader-token-0123456789"
WRITER = "writer-token-0123456789"
ADMIN = "admin-token-0123456789ab"
MiB = 1 << 20


def check_error(info, cls, *names):
    """Asserts the raised exception in ``info`` is exactly ``cls``, a
    pstore.Error with its code, and that its message is non-empty and
    names each of ``names``."""
    error = info.value
    assert type(error) is cls, f"{type(error).__name__}: {error}"
    assert isinstance(error, pstore.Error)
    assert error.code == cls.code and error.code_name == cls.code_name
    assert error.message, "the message is empty"
    assert str(error).startswith(f"{cls.code_name}: ")
    for name in names:
        assert name in error.message, (
            f"{cls.__name__} message does not name {name!r}: "
            f"{error.message!r}")


def test_every_exception_is_a_pstore_error():
    """Every exception class the package exports is a pstore.Error with a
    distinct gRPC code, and those that match built-ins subclass them."""
    codes = set()
    for name in pstore.__all__:
        cls = getattr(pstore, name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            assert issubclass(cls, pstore.Error)
            codes.add(cls.code)
    assert len(codes) == 16
    assert issubclass(pstore.NotFound, LookupError)
    assert issubclass(pstore.InvalidArgument, ValueError)
    assert issubclass(pstore.PermissionDenied, PermissionError)
    assert issubclass(pstore.Unavailable, ConnectionError)


# --- NotFound ---


def test_a_missing_model_is_not_found(client, model_name):
    """load, open, stat and get_tensor of what does not exist raise
    NotFound (also a LookupError) naming it."""
    with pytest.raises(pstore.NotFound) as info:
        client.load(model_name)
    check_error(info, pstore.NotFound, model_name)
    with pytest.raises(pstore.NotFound) as info:
        client.load(f"{model_name}@v9", framework="np")
    check_error(info, pstore.NotFound, model_name)
    with pytest.raises(pstore.NotFound) as info:
        client.open(f"{model_name}@v9")
    check_error(info, pstore.NotFound, model_name)
    with pytest.raises(LookupError):
        client.stat(f"{model_name}@v9")

    client.put(f"{model_name}@v1", {"w": torch.zeros(2)})
    with pytest.raises(pstore.NotFound) as info:
        client.get_tensor(f"{model_name}@v1/nosuch")
    check_error(info, pstore.NotFound, "nosuch")
    with pytest.raises(pstore.NotFound) as info:
        client.unpin(f"{model_name}@v1")
    check_error(info, pstore.NotFound, model_name)


# --- InvalidArgument ---


@pytest.fixture(scope="module")
def sliced(client):
    """A revision with a (4, 6) F32 tensor, an I32 tensor and a (2, 10)
    F32 tensor; returns its name."""
    name = "invalid-arguments@v1"
    client.put(
        name, {
            "w": torch.zeros(4, 6),
            "ids": torch.arange(6, dtype=torch.int32),
            "odd": torch.zeros(2, 10),
        })
    return name


@pytest.mark.parametrize("index,named", [
    (np.s_[::0], "0"),
    (np.s_[::-1], "-1"),
    (np.s_[:, 5:1:-2], "-2"),
    (np.s_[..., ...], "..."),
    (np.s_[1.5], "float"),
    (np.s_[[0, 1]], "list"),
])
def test_bad_slices_are_invalid_arguments(client, sliced, index, named):
    """A zero or negative step, two ellipses or an index of the wrong type
    raise InvalidArgument (also a ValueError) that says what is wrong."""
    with client.open(sliced) as handle:
        tensor_slice = handle.get_slice("w")
        with pytest.raises(pstore.InvalidArgument) as info:
            tensor_slice[index]
    check_error(info, pstore.InvalidArgument, named)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("index,named", [
    (np.s_[1, 2, 3], "3 indices"),
    (np.s_[4], "4"),
    (np.s_[-5], "-5"),
    (np.s_[:, 6], "6"),
])
def test_slices_out_of_range_are_out_of_range(client, sliced, index, named):
    """Too many indices or an int out of range raise OutOfRange (also an
    IndexError, as numpy raises, so that iterating a slice stops at its
    end) that says what is wrong."""
    with client.open(sliced) as handle:
        tensor_slice = handle.get_slice("w")
        with pytest.raises(pstore.OutOfRange) as info:
            tensor_slice[index]
        rows = list(tensor_slice)
    check_error(info, pstore.OutOfRange, named)
    assert isinstance(info.value, IndexError)
    assert len(rows) == tensor_slice.get_shape()[0]


def test_bad_encodings_and_frameworks_are_invalid_arguments(client, sliced):
    """An unknown encoding or framework is refused with InvalidArgument
    naming it."""
    with pytest.raises(pstore.InvalidArgument) as info:
        client.load(sliced, encoding="q5_k")
    check_error(info, pstore.InvalidArgument, "q5_k")
    with pytest.raises(pstore.InvalidArgument) as info:
        client.get_tensor(f"{sliced}/w", encoding="fp8")
    check_error(info, pstore.InvalidArgument, "fp8")
    with pytest.raises(pstore.InvalidArgument) as info:
        client.open(sliced, framework="tf")
    check_error(info, pstore.InvalidArgument, "tf")
    with pytest.raises(pstore.InvalidArgument) as info:
        client.prefetch(sliced, tier="disk")
    check_error(info, pstore.InvalidArgument, "disk")


def test_encodings_a_tensor_cannot_take_are_refused_by_the_server(
        client, sliced):
    """The server refuses a float encoding of an integer tensor and a
    quantization of a tensor whose last dimension is not a multiple of 32:
    InvalidArgument naming the tensor."""
    with pytest.raises(pstore.InvalidArgument) as info:
        client.get_tensor(f"{sliced}/ids", encoding="f16")
    check_error(info, pstore.InvalidArgument, "ids")
    with pytest.raises(pstore.InvalidArgument) as info:
        client.get_tensor(f"{sliced}/odd", encoding="q8_0")
    check_error(info, pstore.InvalidArgument, "odd")


@pytest.mark.parametrize("value,named", [
    (torch.zeros(3, dtype=torch.complex64), "complex64"),
    (np.zeros(3, dtype=np.complex64), "complex64"),
    (np.zeros(3, dtype=np.uint16), "uint16"),
    ([1.0, 2.0], "list"),
])
def test_unsupported_values_are_refused(client, model_name, value, named):
    """A put of a dtype safetensors cannot hold, or of something that is
    not a tensor, raises InvalidArgument naming the type, and stores
    nothing."""
    with pytest.raises(pstore.InvalidArgument) as info:
        client.put(f"{model_name}@v1", {"x": value})
    check_error(info, pstore.InvalidArgument, named)
    with pytest.raises(pstore.NotFound):
        client.stat(f"{model_name}@v1")


def test_bad_names_are_invalid_arguments(client, model_name):
    """A put name without a revision, a model name with characters names
    may not hold, and a tensor name that is empty are refused with
    InvalidArgument naming them."""
    with pytest.raises(pstore.InvalidArgument) as info:
        client.put(model_name, {"w": torch.zeros(1)})
    check_error(info, pstore.InvalidArgument, model_name)
    with pytest.raises(pstore.InvalidArgument) as info:
        client.put("bad model!@v1", {"w": torch.zeros(1)})
    check_error(info, pstore.InvalidArgument, "bad model!")
    with pytest.raises(pstore.InvalidArgument) as info:
        client.load("bad model!")
    check_error(info, pstore.InvalidArgument, "bad model!")
    with pytest.raises(pstore.InvalidArgument):
        client.put(f"{model_name}@v1", {"": torch.zeros(1)})


# --- FailedPrecondition and AlreadyExists ---


def test_put_into_a_published_revision_is_a_failed_precondition(
        client, model_name):
    """A put into a published revision raises FailedPrecondition naming
    it, and the revision keeps its tensors."""
    name = f"{model_name}@v1"
    client.put(name, {"w": torch.ones(3)}, publish=True)
    with pytest.raises(pstore.FailedPrecondition) as info:
        client.put(name, {"w": torch.zeros(3), "more": torch.zeros(1)})
    check_error(info, pstore.FailedPrecondition, name)
    loaded = client.load(name)
    assert list(loaded) == ["w"]
    assert torch.equal(loaded["w"], torch.ones(3))


def test_a_closed_client_is_a_failed_precondition(server):
    """A client used after close() raises FailedPrecondition."""
    closed = pstore.Client(server.address)
    closed.close()
    with pytest.raises(pstore.FailedPrecondition) as info:
        closed.ls()
    check_error(info, pstore.FailedPrecondition, "closed")


def test_pinning_twice_is_already_exists(client, model_name):
    """Pinning a pinned revision raises AlreadyExists naming it."""
    name = f"{model_name}@v1"
    client.put(name, {"w": torch.ones(3)}, publish=True)
    client.pin(name)
    try:
        with pytest.raises(pstore.AlreadyExists) as info:
            client.pin(name)
        check_error(info, pstore.AlreadyExists, model_name)
    finally:
        client.unpin(name)


# --- Unavailable ---


def test_a_server_that_is_not_there_is_unavailable():
    """A client of a port nothing listens on raises Unavailable (also a
    ConnectionError), within its short deadline."""
    with socket.socket() as bound:
        # Bound but not listening: connections are refused, and no other
        # process can take the port meanwhile.
        bound.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{bound.getsockname()[1]}"
        absent = pstore.Client(address, timeout=2)
        with pytest.raises(pstore.Unavailable) as info:
            absent.load("m@v1")
        check_error(info, pstore.Unavailable)
        assert isinstance(info.value, ConnectionError)
        with pytest.raises(pstore.Unavailable):
            absent.ls()


# --- Tokens ---


@pytest.fixture(scope="module")
def secured(start_pstored, tmp_path_factory):
    """A pstored with tokens: a reader (read), a writer (read, write) and
    an admin (every scope). Holds revision "secret@v1", published."""
    tokens = {
        "tokens": [
            {"name": "reader", "token": READER, "scopes": ["read"]},
            {"name": "writer", "token": WRITER, "scopes": ["read", "write"]},
            {"name": "admin", "token": ADMIN,
             "scopes": ["read", "write", "admin"]},
        ]
    }
    path = tmp_path_factory.mktemp("tokens") / "tokens.json"
    path.write_text(json.dumps(tokens))
    server = start_pstored(f"--tokens_file={path}")
    pstore.Client(server.address, token=WRITER).put(
        "secret@v1", {"w": torch.arange(4.0)}, publish=True)
    return server


def test_no_token_or_a_wrong_one_is_unauthenticated(secured):
    """Without a token, or with one the server does not know, every call
    raises Unauthenticated; the reader's token loads."""
    with pytest.raises(pstore.Unauthenticated) as info:
        pstore.Client(secured.address).load("secret@v1")
    check_error(info, pstore.Unauthenticated)
    with pytest.raises(pstore.Unauthenticated) as info:
        pstore.Client(secured.address,
                      token="wrong-token-0123456789").load("secret")
    check_error(info, pstore.Unauthenticated)
    with pytest.raises(pstore.Unauthenticated):
        pstore.Client(secured.address).ls()
    loaded = pstore.Client(secured.address, token=READER).load("secret")
    assert torch.equal(loaded["w"], torch.arange(4.0))


def test_a_token_without_the_scope_is_permission_denied(secured):
    """A read-only token that puts, or a writer that pins, raises
    PermissionDenied (also a PermissionError) and stores nothing."""
    reader = pstore.Client(secured.address, token=READER)
    with pytest.raises(pstore.PermissionDenied) as info:
        reader.put("secret@v2", {"w": torch.zeros(1)})
    check_error(info, pstore.PermissionDenied)
    assert isinstance(info.value, PermissionError)
    with pytest.raises(pstore.NotFound):
        reader.stat("secret@v2")
    writer = pstore.Client(secured.address, token=WRITER)
    with pytest.raises(pstore.PermissionDenied) as info:
        writer.pin("secret@v1")
    check_error(info, pstore.PermissionDenied)
    pstore.Client(secured.address, token=ADMIN).pin("secret@v1")


# --- DataLoss ---


def flip_byte_of_needle(directory, needle, offset_in_needle):
    """Finds the one file under ``directory`` that holds ``needle``, flips
    the byte ``offset_in_needle`` into it, and returns the file's path."""
    found = []
    for root, _, files in os.walk(directory):
        for file_name in files:
            path = os.path.join(root, file_name)
            with open(path, "rb") as file:
                data = file.read()
            at = data.find(needle)
            if at >= 0:
                found.append((path, at))
    assert len(found) == 1, found
    path, at = found[0]
    with open(path, "r+b") as file:
        file.seek(at + offset_in_needle)
        byte = file.read(1)
        file.seek(at + offset_in_needle)
        file.write(bytes([byte[0] ^ 0x5A]))
    return path


@pytest.fixture(scope="module")
def corrupted(start_pstored):
    """A pstored without an NVMe tier and 1 MiB blocks whose revision
    "m@v1" holds tensor "bad" with a byte of its second block flipped in
    the cold tier, and tensor "good" intact. Returns (server, good's
    bytes)."""
    server = start_pstored("--block_bytes=1MiB", "--nvme_bytes=0")
    rng = np.random.default_rng(11)
    bad = rng.integers(0, 256, 2 * MiB, dtype=np.uint8)
    good = rng.integers(0, 256, 2 * MiB, dtype=np.uint8)
    writer = pstore.Client(server.address)
    writer.put("m@v1", {"bad": bad, "good": good})
    writer.close()
    del writer
    server.stop()
    needle = bad[MiB + 777:MiB + 841].tobytes()
    path = flip_byte_of_needle(os.path.join(server.data_dir, "cold"), needle,
                               20)
    assert "/cold/" in path
    server.start()
    return server, good


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_a_corrupted_cold_block_is_data_loss(corrupted, framework):
    """load() of a revision with a corrupted block raises DataLoss naming
    the tensor (and returns nothing); the intact tensor still reads."""
    server, good = corrupted
    reader = pstore.Client(server.address)
    loaded = None
    with pytest.raises(pstore.DataLoss) as info:
        loaded = reader.load("m@v1", framework=framework)
    assert loaded is None
    check_error(info, pstore.DataLoss, "m@v1/bad")
    with pytest.raises(pstore.DataLoss) as info:
        reader.get_tensor("m@v1/bad", framework=framework)
    check_error(info, pstore.DataLoss, "m@v1/bad")
    intact = reader.get_tensor("m@v1/good", framework="np")
    assert np.array_equal(intact, good)


def test_prefetch_into_a_missing_tier_is_a_failed_precondition(corrupted):
    """Prefetching into NVMe on a server without that tier raises
    FailedPrecondition."""
    server, _ = corrupted
    with pytest.raises(pstore.FailedPrecondition) as info:
        pstore.Client(server.address).prefetch("m@v1", "nvme")
    check_error(info, pstore.FailedPrecondition)


# --- KeyboardInterrupt ---

INTERRUPT_SCRIPT = textwrap.dedent("""\
    import os, signal, sys, time
    import pstore
    import torch  # Imported now, not by the first load (seconds).

    client = pstore.Client(sys.argv[1])
    name = sys.argv[2]
    calls = []

    def progress(done, total):
        calls.append((done, total))
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    start = time.monotonic()
    try:
        client.load(name, progress=progress)
    except KeyboardInterrupt:
        interrupted = time.monotonic() - start
        print(f"KeyboardInterrupt from load after {interrupted:.3f} s",
              flush=True)
    else:
        print("LOAD RETURNED", flush=True)
        sys.exit(3)
    # The same load whole, measured after the interrupted one (its blocks
    # are as warm as they get): the interrupted load must have ended
    # before a whole one can.
    start = time.monotonic()
    whole = client.load(name)
    whole_seconds = time.monotonic() - start
    got = sum(t.numel() * t.element_size() for t in whole.values())
    print(f"first progress {calls[0][0]} of {calls[0][1]} bytes; last "
          f"{calls[-1][0]}; {len(calls)} calls; a whole load took "
          f"{whole_seconds:.3f} s for {got} bytes", flush=True)
    print(f"RESULT {interrupted} {whole_seconds} {calls[0][0]} "
          f"{calls[-1][0]} {calls[0][1]} {got}", flush=True)
""")


def test_ctrl_c_interrupts_a_load_at_once(start_pstored, capsys):
    """A SIGINT during load() (sent by the first progress call) raises
    KeyboardInterrupt from load() well before the load could have ended:
    with bytes still to come (the progress reported is short of the
    model's size); the subprocess ends within its timeout, and the server
    serves the next load whole."""
    server = start_pstored("--dram_bytes=1GiB")
    writer = pstore.Client(server.address)
    name = "interrupted@v1"
    rng = np.random.default_rng(3)
    tensors = 16
    tensor_bytes = 16 * MiB
    for index in range(tensors):
        data = np.frombuffer(rng.bytes(tensor_bytes), dtype=np.uint8)
        writer.put(name, {f"layer{index:02d}": data})
    writer.publish(name)

    run = subprocess.run(
        [sys.executable, "-c", INTERRUPT_SCRIPT, server.address, name],
        capture_output=True, text=True, timeout=60, env=dict(os.environ))

    with capsys.disabled():  # The figures go to the ctest log.
        print(f"\n{run.stdout}{run.stderr}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "KeyboardInterrupt from load" in run.stdout
    result = next(line for line in run.stdout.splitlines()
                  if line.startswith("RESULT "))
    interrupted, whole, first_done, last_done, _, got = (
        float(word) for word in result.split()[1:])
    assert got == tensors * tensor_bytes
    assert first_done < got
    assert last_done < got
