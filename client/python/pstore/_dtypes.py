"""Element types: safetensors names to numpy and torch types, and back.

numpy has no bfloat16 and no float8 types: with ``framework="np"`` a BF16
tensor comes back as ``uint16`` (the raw bits; ``view`` them as you need)
and an F8_E4M3/F8_E5M2 tensor as ``uint8``. torch has bfloat16; it has the
float8 types from 2.1 (``float8_e4m3fn``, ``float8_e5m2``): where it lacks
them, F8 tensors come back as ``torch.uint8`` holding the raw bits.
"""

import numpy as np

from . import _errors

# safetensors name -> (numpy dtype, element size in bytes).
_NUMPY = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(np.uint16),  # Raw bits: numpy has no bfloat16.
    "F8_E4M3": np.dtype(np.uint8),  # Raw bits.
    "F8_E5M2": np.dtype(np.uint8),  # Raw bits.
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}

# Encodings a read can ask for, and the dtype their bytes are in.
ENCODING_DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
QUANTIZED_ENCODINGS = ("q8_0", "q4_0")
ENCODINGS = ("raw",) + tuple(ENCODING_DTYPES) + QUANTIZED_ENCODINGS

_torch = None
_torch_by_name = None
_name_by_torch = None


def torch_module():
    """Returns the torch module, imported on first use."""
    global _torch, _torch_by_name, _name_by_torch
    if _torch is None:
        try:
            import torch
        except ImportError as error:
            raise _errors.FailedPrecondition(
                'framework="pt" needs PyTorch (Debian: apt-get install '
                f'python3-torch); framework="np" does not: {error}') from None
        by_name = {
            "F64": torch.float64,
            "F32": torch.float32,
            "F16": torch.float16,
            "BF16": torch.bfloat16,
            "F8_E4M3": getattr(torch, "float8_e4m3fn", torch.uint8),
            "F8_E5M2": getattr(torch, "float8_e5m2", torch.uint8),
            "I64": torch.int64,
            "I32": torch.int32,
            "I16": torch.int16,
            "I8": torch.int8,
            "U8": torch.uint8,
            "BOOL": torch.bool,
        }
        names = {}
        for name, dtype in by_name.items():
            if name.startswith("F8") and dtype is torch.uint8:
                continue  # This torch has no float8: raw bits as uint8.
            names.setdefault(dtype, name)
        _torch, _torch_by_name, _name_by_torch = torch, by_name, names
    return _torch


def numpy_dtype(name):
    """Returns the numpy dtype a tensor of safetensors dtype ``name`` comes
    back as."""
    try:
        return _NUMPY[name]
    except KeyError:
        raise _errors.DataLoss(f"unknown dtype {name!r} from the server") \
            from None


def torch_dtype(name):
    """Returns the torch dtype a tensor of safetensors dtype ``name`` comes
    back as."""
    torch_module()
    try:
        return _torch_by_name[name]
    except KeyError:
        raise _errors.DataLoss(f"unknown dtype {name!r} from the server") \
            from None


def from_bytes(flat, name, shape, framework):
    """Returns the flat, C-contiguous uint8 numpy array ``flat`` as a tensor
    of safetensors dtype ``name`` and ``shape``: a numpy array
    (``framework="np"``) or a torch tensor, sharing its memory either way."""
    if framework == "np":
        return flat.view(numpy_dtype(name)).reshape(shape)
    torch = torch_module()
    tensor = torch.from_numpy(flat)
    dtype = torch_dtype(name)
    if dtype != torch.uint8:
        tensor = tensor.view(dtype)
    return tensor.reshape(shape)


def element_size(name):
    """Returns the bytes of one element of safetensors dtype ``name``."""
    return numpy_dtype(name).itemsize


def name_of_numpy(dtype):
    """Returns the safetensors name of numpy ``dtype``; InvalidArgument for
    a type safetensors cannot hold."""
    dtype = np.dtype(dtype)
    for name in ("F64", "F32", "F16", "I64", "I32", "I16", "I8", "U8",
                 "BOOL"):
        if _NUMPY[name] == dtype:
            return name
    raise _errors.InvalidArgument(
        f"numpy dtype {dtype} has no safetensors type (give a torch tensor "
        "for bfloat16, or one of float64 float32 float16 int64 int32 int16 "
        "int8 uint8 bool)")


def name_of_torch(dtype):
    """Returns the safetensors name of torch ``dtype``; InvalidArgument for
    a type safetensors cannot hold."""
    torch_module()
    name = _name_by_torch.get(dtype)
    if name is None:
        raise _errors.InvalidArgument(
            f"torch dtype {dtype} has no safetensors type")
    return name
