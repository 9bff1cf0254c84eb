"""Peak memory of a load: loading a 1 GiB model raises the process's peak
RSS by at most 1.15 GiB (each tensor's memory is written once, with no
second copy), and every tensor holds the bytes that were put."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import pstore

GiB = 1 << 30
MiB = 1 << 20
TENSORS = 16
TENSOR_BYTES = 64 * MiB
ALLOWED_RISE = int(1.15 * GiB)
REVISION = "memory@v1"

# Tensor i's element j (uint32) is (j * MULTIPLIER + i * OFFSET) mod 2**32:
# cheap to compute at any j, and different in every 4-byte word.
MULTIPLIER = 2654435761
OFFSET = 97531


def tensor_data(index):
    """Returns tensor ``index``'s values: TENSOR_BYTES of uint32."""
    words = np.arange(TENSOR_BYTES // 4, dtype=np.uint32)
    words *= np.uint32(MULTIPLIER)
    words += np.uint32((index * OFFSET) % 2**32)
    return words


LOAD_SCRIPT = textwrap.dedent("""\
    import sys, time
    import numpy as np
    import pstore, torch

    address, name, tensors, multiplier, offset = sys.argv[1:6]
    tensors, multiplier, offset = int(tensors), int(multiplier), int(offset)


    def memory():
        fields = {}
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    fields[key] = int(value.split()[0]) * 1024
        return fields


    client = pstore.Client(address)
    client.stat(name)  # Connects before the baseline.
    try:
        # Resets VmHWM to the current RSS (Linux 4.0 and later).
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    before = memory()
    start = time.monotonic()
    state = client.load(name)
    seconds = time.monotonic() - start
    after = memory()
    rise = after["VmHWM"] - before["VmRSS"]
    total = sum(t.numel() * t.element_size() for t in state.values())
    print(f"before: VmRSS {before['VmRSS'] / 2**20:.1f} MiB, VmHWM "
          f"{before['VmHWM'] / 2**20:.1f} MiB; after: VmRSS "
          f"{after['VmRSS'] / 2**20:.1f} MiB, VmHWM "
          f"{after['VmHWM'] / 2**20:.1f} MiB; peak rise "
          f"{rise / 2**30:.3f} GiB for {total / 2**30:.3f} GiB loaded in "
          f"{seconds:.1f} s", flush=True)

    # Checks every tensor: its type and size, and a sample of its words
    # (the first and last 4096, and every 4093rd) against the formula.
    bad = []
    for index in range(tensors):
        key = f"layer{index:02d}"
        tensor = state.get(key)
        if tensor is None or tensor.dtype != torch.int32:
            bad.append(f"{key}: {None if tensor is None else tensor.dtype}")
            continue
        words = tensor.numpy().view(np.uint32)
        positions = np.concatenate([
            np.arange(4096), np.arange(0, words.size, 4093),
            np.arange(words.size - 4096, words.size)
        ]).astype(np.uint64)
        want = (positions * multiplier + index * offset) % 2**32
        if not np.array_equal(words[positions.astype(np.int64)],
                              want.astype(np.uint32)):
            bad.append(f"{key}: wrong bytes")
    print(f"RESULT {rise} {total} {len(state)} {';'.join(bad) or 'ok'}",
          flush=True)
""")


@pytest.fixture(scope="module")
def big_model(start_pstored):
    """A pstored holding REVISION: TENSORS tensors of 64 MiB (1 GiB), put
    one at a time so that this process holds one at a time."""
    server = start_pstored("--dram_bytes=2GiB", "--nvme_bytes=0")
    writer = pstore.Client(server.address)
    for index in range(TENSORS):
        data = torch.from_numpy(tensor_data(index).view(np.int32))
        writer.put(REVISION, {f"layer{index:02d}": data})
    writer.publish(REVISION)
    writer.close()
    return server


def test_loading_1_gib_raises_peak_rss_by_at_most_1_15_gib(big_model, capsys):
    """In a fresh process: VmHWM after load() minus VmRSS before it is at
    most 1.15 GiB for a 1 GiB model, and every tensor holds what was
    put."""
    run = subprocess.run([
        sys.executable, "-c", LOAD_SCRIPT, big_model.address, REVISION,
        str(TENSORS), str(MULTIPLIER), str(OFFSET)
    ],
                         capture_output=True,
                         text=True,
                         timeout=240,
                         env=dict(os.environ))

    with capsys.disabled():  # The figures go to the ctest log.
        print(f"\n{run.stdout}{run.stderr}")
    assert run.returncode == 0, run.stdout + run.stderr
    result = next(line for line in run.stdout.splitlines()
                  if line.startswith("RESULT "))
    rise, total, count, bad = result.split()[1:5]
    assert bad == "ok"
    assert int(count) == TENSORS
    assert int(total) == TENSORS * TENSOR_BYTES
    assert int(rise) <= ALLOWED_RISE, (
        f"peak RSS rose by {int(rise) / GiB:.3f} GiB loading 1 GiB")
