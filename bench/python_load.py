"""Times pstore's Python load of a model into torch tensors, and torch.load
of the same tensors from a file on tmpfs: the python line of pstore-bench
(bench/README.md), which runs this script as a child process.

    PYTHONPATH=build/client/python /usr/bin/python3 bench/python_load.py \\
        --addr 127.0.0.1:7070 --model MODEL@REV --repetitions 5

Connects, loads the model once (timed too, as the first load: its memory
comes fresh from the kernel, where the loads after it get it back from the
module's buffer pool), then times `repetitions` calls of
client.load(model, streams=N), each dict dropped with del and gc.collect()
outside the timed part. Then writes the last dict with torch.save to a file
under --tmp_dir (tmpfs), times as many torch.load(path) calls (the first
compared with the loaded dict bit for bit) and removes the file. Wall time
is time.perf_counter; minor faults are getrusage(RUSAGE_SELF).ru_minflt
deltas (every thread of this process, the C++ client's included) and, with
--server_pid, pstored's from /proc/PID/stat.

Prints one JSON object on stdout:

    {"model": ..., "tensors": 75, "bytes": ..., "file_bytes": ...,
     "versions": "Python 3.11.2, torch 1.13.0, pstore 0.1.0",
     "load": {"seconds": [...], "faults": [...], "server_faults": [...]},
     "first_load": {"seconds": [...], "faults": [...]},
     "torch_load": {"seconds": [...], "faults": [...]}}

Exits 3, with a line "python_load.py: ..." on stderr, when torch or the
pstore package cannot be imported.
"""

import argparse
import gc
import json
import os
import resource
import sys
import time

MISSING_MODULE = 3


def fail(message, code=1):
    sys.stderr.write(f"python_load.py: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def minor_faults():
    """Returns this process's minor faults so far, every thread's."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def process_minor_faults(pid):
    """Returns the minor faults so far of process ``pid``
    (/proc/PID/stat field 10), or None if it cannot be read."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # Fields after the name, which may hold spaces: field 3 onwards.
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[10 - 3])


def same_bits(a, b, torch):
    """Returns whether tensors ``a`` and ``b`` hold the same bytes."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    kind = as_int[a.element_size()]
    return torch.equal(a.contiguous().view(kind), b.contiguous().view(kind))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", required=True, help="pstored's HOST:PORT")
    parser.add_argument("--model", required=True, help="MODEL@REV to load")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--tmp_dir", default="/dev/shm",
                        help="tmpfs directory for the torch.save file")
    parser.add_argument("--server_pid", type=int, default=0,
                        help="pstored's process id, for its fault counts")
    args = parser.parse_args()
    if args.repetitions < 1 or args.streams < 1:
        fail("--repetitions and --streams must be at least 1", 2)

    try:
        import torch
    except ImportError as error:
        fail(f"cannot import torch ({error}) with {sys.executable}: install "
             "python3-torch, or give pstore-bench --python=an interpreter "
             "that has torch", MISSING_MODULE)
    try:
        import pstore
    except ImportError as error:
        fail(f"cannot import the pstore package ({error}) with "
             f"{sys.executable}, PYTHONPATH={os.environ.get('PYTHONPATH', '')}"
             ": build the target _pstore, or give pstore-bench "
             "--python_path=the directory holding pstore/", MISSING_MODULE)

    client = pstore.Client(args.addr, channels=args.streams)
    # The first load, into fresh memory; the timed ones after it get that
    # memory back from the module's buffer pool.
    faults = minor_faults()
    start = time.perf_counter()
    state = client.load(args.model, streams=args.streams)
    first_load = {"seconds": [time.perf_counter() - start],
                  "faults": [minor_faults() - faults]}
    tensors = len(state)
    nbytes = sum(t.numel() * t.element_size() for t in state.values())
    del state
    gc.collect()

    load = {"seconds": [], "faults": [], "server_faults": []}
    for rep in range(args.repetitions):
        server_before = process_minor_faults(args.server_pid)
        faults = minor_faults()
        start = time.perf_counter()
        state = client.load(args.model, streams=args.streams)
        seconds = time.perf_counter() - start
        faults = minor_faults() - faults
        server_after = process_minor_faults(args.server_pid)
        load["seconds"].append(seconds)
        load["faults"].append(faults)
        if server_before is not None and server_after is not None:
            load["server_faults"].append(server_after - server_before)
        if rep + 1 < args.repetitions:
            del state
            gc.collect()

    path = os.path.join(args.tmp_dir,
                        f"python-load.{os.getpid()}.torch-save.pt")
    torch_load = {"seconds": [], "faults": []}
    try:
        torch.save(state, path)
        file_bytes = os.path.getsize(path)
        for rep in range(args.repetitions):
            faults = minor_faults()
            start = time.perf_counter()
            loaded = torch.load(path)
            seconds = time.perf_counter() - start
            faults = minor_faults() - faults
            torch_load["seconds"].append(seconds)
            torch_load["faults"].append(faults)
            if rep == 0:
                if loaded.keys() != state.keys() or not all(
                        same_bits(loaded[k], state[k], torch) for k in state):
                    fail("torch.load gave other tensors than torch.save got")
                del state
            del loaded
            gc.collect()
    finally:
        if os.path.exists(path):
            os.remove(path)

    versions = (f"Python {sys.version.split()[0]}, torch {torch.__version__}, "
                f"pstore {pstore.__version__}")
    print(json.dumps({
        "model": args.model,
        "tensors": tensors,
        "bytes": nbytes,
        "file_bytes": file_bytes,
        "versions": versions,
        "load": load,
        "first_load": first_load,
        "torch_load": torch_load,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
