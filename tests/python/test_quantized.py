"""Quantized reads: load(encoding="q8_0"/"q4_0") of F32 tensors gives
pstore.QuantizedTensor whose blocks decode, by a decoder written here from
the format (not the package's), to exactly what dequantize() returns, and
to values close to the originals."""

import numpy as np
import pytest
import torch

import pstore

REVISION = "quantized@v1"
BLOCK_VALUES = 32
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18}
# The loosest error a block may have, as a fraction of its largest
# magnitude: Q8_0 rounds to 1/127 of it, Q4_0 to 1/8 (and clamps one end
# by one step); the float16 scale adds its own small rounding.
ERROR_FRACTION = {"q8_0": 1.0 / 127, "q4_0": 1.0 / 4}
SHAPES = {
    "matrix": (16, 64),
    "wide": (3, 4096),
    "cube": (2, 5, 96),
}


def decode_q8_0(blocks):
    """Returns float32 values of Q8_0 ``blocks`` (n, 34): a little-endian
    float16 scale d, then 32 int8 q; value = float32(d) * q."""
    scale = np.frombuffer(blocks[:, 0:2].tobytes(), dtype="<f2").astype(
        np.float32).reshape(-1, 1)
    quants = np.frombuffer(blocks[:, 2:].tobytes(), dtype=np.int8).astype(
        np.float32).reshape(-1, BLOCK_VALUES)
    return (scale * quants).reshape(-1)


def decode_q4_0(blocks):
    """Returns float32 values of Q4_0 ``blocks`` (n, 18): a little-endian
    float16 scale d, then 16 bytes whose low nibbles are values 0..15 and
    high nibbles values 16..31; value = (nibble - 8) * float32(d)."""
    scale = np.frombuffer(blocks[:, 0:2].tobytes(), dtype="<f2").astype(
        np.float32).reshape(-1, 1)
    packed = blocks[:, 2:].astype(np.int32)
    nibbles = np.empty((len(blocks), BLOCK_VALUES), dtype=np.int32)
    nibbles[:, :16] = packed & 0x0F
    nibbles[:, 16:] = packed >> 4
    return ((nibbles - 8).astype(np.float32) * scale).reshape(-1)


DECODERS = {"q8_0": decode_q8_0, "q4_0": decode_q4_0}


def reference_decode(quantized):
    """Decodes a QuantizedTensor's blocks with this file's decoders;
    returns a float32 numpy array of its shape."""
    data = quantized.data
    raw = data.numpy() if isinstance(data, torch.Tensor) else data
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1)
    blocks = raw.reshape(-1, BLOCK_BYTES[quantized.encoding])
    values = DECODERS[quantized.encoding](blocks)
    return values.reshape(quantized.shape)


def originals():
    """Returns {key: float32 numpy array} of the tensors to quantize:
    normal values of several scales, and a block of zeros and one with a
    single outlier."""
    rng = np.random.default_rng(5)
    tensors = {}
    for label, shape in SHAPES.items():
        scale = np.exp2(rng.integers(-8, 8, size=shape[:-1] + (1,)))
        tensors[label] = (rng.standard_normal(shape) * scale).astype(
            np.float32)
    special = rng.standard_normal((4, 64)).astype(np.float32)
    special[0, :32] = 0.0
    special[1, 5] = 1000.0
    special[2, 32:] = -np.linspace(0.0, 1.0, 32, dtype=np.float32)
    tensors["special"] = special
    return tensors


@pytest.fixture(scope="module")
def stored(client):
    """Puts the originals (and a 1-D F32 tensor and an I32 tensor, which
    stay unquantized) as REVISION; returns the originals."""
    tensors = originals()
    extra = {
        "norm": np.linspace(-1, 1, 64, dtype=np.float32),
        "ids": np.arange(64, dtype=np.int32).reshape(2, 32),
    }
    client.put(REVISION, {**tensors, **extra})
    return tensors


def block_max(values):
    """Returns each block's largest magnitude, repeated over its values."""
    blocks = np.abs(values.reshape(-1, BLOCK_VALUES))
    return np.repeat(blocks.max(axis=1), BLOCK_VALUES).reshape(values.shape)


def check_quantized(quantized, original, encoding, framework):
    """Asserts ``quantized`` holds the blocks of ``original`` in
    ``encoding``: its attributes, its dequantize() equal to the
    independent decoding, and the error within bounds."""
    assert isinstance(quantized, pstore.QuantizedTensor)
    assert quantized.encoding == encoding
    assert quantized.shape == original.shape
    assert quantized.dtype == "F32"
    assert quantized.block_size == BLOCK_VALUES
    assert quantized.block_bytes == BLOCK_BYTES[encoding]
    assert quantized.numel() == original.size
    want_type = torch.Tensor if framework == "pt" else np.ndarray
    assert isinstance(quantized.data, want_type)
    assert len(quantized.data) == (original.size // BLOCK_VALUES *
                                   BLOCK_BYTES[encoding])

    decoded = reference_decode(quantized)
    got = quantized.dequantize()
    assert isinstance(got, want_type)
    got = got.numpy() if framework == "pt" else got
    assert got.dtype == np.float32
    assert got.shape == original.shape
    assert np.array_equal(got, decoded)

    error = np.abs(decoded - original)
    bound = block_max(original) * ERROR_FRACTION[encoding] * 1.01
    assert np.all(error <= bound), float((error - bound).max())
    reported = quantized.quantization_error
    if reported is not None and "max_abs_error" in reported:
        assert error.max() <= reported["max_abs_error"] * (1 + 1e-6) + 1e-30


@pytest.mark.parametrize("framework", ["pt", "np"])
@pytest.mark.parametrize("encoding", ["q8_0", "q4_0"])
def test_load_quantizes_and_the_blocks_decode_as_the_format_says(
        client, stored, encoding, framework):
    """load(encoding=q8_0/q4_0): every F32 tensor of 2+ dims whose last
    dimension is a multiple of 32 is a QuantizedTensor whose dequantize()
    equals an independent decoding of its blocks and is close to the
    original; the 1-D float and the integer tensor come back raw."""
    loaded = client.load(REVISION, encoding=encoding, framework=framework)

    for key, original in stored.items():
        check_quantized(loaded[key], original, encoding, framework)
    norm = loaded["norm"]
    ids = loaded["ids"]
    if framework == "pt":
        norm, ids = norm.numpy(), ids.numpy()
    assert np.array_equal(norm, np.linspace(-1, 1, 64, dtype=np.float32))
    assert np.array_equal(ids, np.arange(64, dtype=np.int32).reshape(2, 32))


@pytest.mark.parametrize("encoding", ["q8_0", "q4_0"])
def test_zero_blocks_decode_to_zero(client, stored, encoding):
    """A block of zeros decodes to exact zeros."""
    quantized = client.load(REVISION, encoding=encoding)["special"]
    assert np.all(reference_decode(quantized)[0, :32] == 0.0)


@pytest.mark.parametrize("encoding", ["q8_0", "q4_0"])
def test_get_tensor_quantizes_as_load_does(client, stored, encoding):
    """get_tensor(encoding=...) gives the same blocks as load()."""
    loaded = client.load(REVISION, encoding=encoding, framework="np")
    for key, original in stored.items():
        one = client.get_tensor(f"{REVISION}/{key}",
                                encoding=encoding,
                                framework="np")
        check_quantized(one, original, encoding, "np")
        assert np.array_equal(one.data, loaded[key].data)


def test_quantized_handles_read_whole_tensors_only(client, stored):
    """open(encoding="q8_0"): get_tensor gives a QuantizedTensor;
    get_slice is refused with InvalidArgument."""
    with client.open(REVISION, encoding="q8_0", framework="np") as handle:
        check_quantized(handle.get_tensor("matrix"), stored["matrix"],
                        "q8_0", "np")
        with pytest.raises(pstore.InvalidArgument):
            handle.get_slice("matrix")
