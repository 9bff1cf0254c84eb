"""Quantized tensors as a read returns them: GGUF-compatible Q8_0/Q4_0
blocks with the shape they decode to.

A Q8_0 block is 34 bytes for 32 values: a little-endian float16 scale d,
then 32 int8 quants q; value i is d * q[i]. A Q4_0 block is 18 bytes for 32
values: the scale d, then 16 bytes whose low nibbles are values 0..15 and
high nibbles values 16..31; value i is d * (nibble - 8). Blocks run in the
tensor's row-major order (ggml's layout).
"""

import numpy as np

from . import _dtypes

BLOCK_VALUES = 32
_BLOCK_BYTES = {"q8_0": 34, "q4_0": 18}


class QuantizedTensor:
    """The blocks of one tensor in a quantized encoding.

    Attributes: ``data`` (a flat ``uint8`` torch tensor or numpy array of the
    blocks, as the load's framework), ``shape`` (the tensor's shape, a
    tuple), ``encoding`` ("q8_0" or "q4_0"), ``block_size`` (32 values per
    block), ``dtype`` (the stored dtype the blocks were made from) and
    ``quantization_error`` (the server's figures for the whole tensor, a
    dict, or None).
    """

    def __init__(self, data, shape, encoding, dtype, quantization_error=None):
        if encoding not in _BLOCK_BYTES:
            raise ValueError(f"not a quantized encoding: {encoding!r}")
        self.data = data
        self.shape = tuple(shape)
        self.encoding = encoding
        self.dtype = dtype
        self.block_size = BLOCK_VALUES
        self.quantization_error = quantization_error

    @property
    def block_bytes(self):
        """Bytes of one block: 34 (q8_0) or 18 (q4_0)."""
        return _BLOCK_BYTES[self.encoding]

    def numel(self):
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    def dequantize(self):
        """Returns the tensor as float32 values, decoded as ggml decodes
        the blocks, in the framework of ``data`` and of shape ``shape``."""
        is_torch = not isinstance(self.data, np.ndarray)
        raw = self.data.numpy() if is_torch else self.data
        blocks = raw.reshape(-1, self.block_bytes)
        scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        if self.encoding == "q8_0":
            quants = blocks[:, 2:].view(np.int8).astype(np.float32)
        else:
            packed = blocks[:, 2:]
            quants = np.concatenate([packed & 0x0F, packed >> 4], axis=1)
            quants = quants.astype(np.float32) - 8.0
        values = (quants * scales).reshape(-1)[:self.numel()]
        values = values.reshape(self.shape)
        if is_torch:
            return _dtypes.torch_module().from_numpy(values)
        return values

    def __repr__(self):
        return (f"QuantizedTensor(encoding={self.encoding!r}, "
                f"shape={self.shape}, dtype={self.dtype!r}, "
                f"blocks={len(self.data) // self.block_bytes})")
