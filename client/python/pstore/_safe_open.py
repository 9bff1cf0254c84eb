"""A revision read lazily, tensor by tensor or slice by slice, shaped like
``safetensors.safe_open``.

Slices read only what they need where the layout allows:
- rows (the first dimension, with any step): one ranged read of the rows
  from the first asked for to the last, which are contiguous bytes;
- columns of a 2-D tensor (the second dimension: what a tensor-parallel
  rank reads of a column-split weight): each row's columns are a byte range
  of their own; when a row's range is at least 64 KiB the ranges are read
  one call each, in parallel, and nothing else travels; below that, one
  call per range would cost more than the bytes, so the rows are streamed
  whole and only the columns are kept in memory;
- any other dimension of a tensor of three or more: the rows that hold
  the selection, whole, then sliced in memory.
A slice is what numpy slicing of the whole tensor gives, as an array of its
own (or a tensor of its own) in the handle's framework, for ints, slices
with positive steps and ``...``; an index out of range raises
pstore.OutOfRange (an IndexError, so iterating a TensorSlice stops at its
end), a step of zero or below pstore.InvalidArgument.
"""

import numpy as np

from . import _client
from . import _dtypes
from . import _errors
from . import _pstore


class SafeOpen:
    """A revision resolved once; see ``pstore.Client.open``."""

    def __init__(self, client, revision, framework, encoding):
        self._client = client
        self._revision = revision
        self._framework = framework
        self._encoding = encoding
        self._entries = {
            info["tensor"]: info
            for info in revision["tensors"] if info["kind"] == "tensor"
        }

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @property
    def name(self):
        """The revision, resolved: "MODEL@REV"."""
        return self._revision["name"]

    def keys(self):
        """Returns the tensor names, in the revision's order."""
        return list(self._entries)

    def metadata(self):
        """Returns the revision's metadata (dict of str to str)."""
        return dict(self._revision["metadata"])

    def info(self, key):
        """Returns what the revision records of tensor ``key``."""
        return self._entry(key)

    def get_tensor(self, key):
        """Reads tensor ``key`` whole, in the handle's encoding where it
        applies to the tensor and as stored where not (as ``load`` does:
        integer tensors stay raw, and 1-D ones are not quantized)."""
        info = self._entry(key)
        encoding = _pstore.pull_encoding(info["dtype"], list(info["shape"]),
                                         self._encoding)
        got, flat = self._client._client.read(info["name"], encoding, 0, 0)
        return _client._as_output(got, flat, self._framework)

    def get_slice(self, key):
        """Returns a TensorSlice of tensor ``key``: index it to read part of
        it."""
        info = self._entry(key)
        if self._encoding in _dtypes.QUANTIZED_ENCODINGS:
            raise _errors.InvalidArgument(
                f"get_slice reads raw, f32, f16 or bf16, not "
                f"{self._encoding}: read {key} whole with get_tensor")
        return TensorSlice(self, info)

    def _entry(self, key):
        try:
            return self._entries[key]
        except KeyError:
            raise _errors.NotFound(
                f"{self.name} has no tensor {key!r}") from None


class TensorSlice:
    """One tensor of a SafeOpen handle, read when indexed:
    ``get_slice(key)[a:b]``, ``[:, c:d]``, ``[i]``, ``[..., c:d]``."""

    def __init__(self, handle, info):
        self._handle = handle
        self._info = info
        self._shape = tuple(info["shape"])
        dtype = info["dtype"]
        encoding = _pstore.pull_encoding(dtype, list(self._shape),
                                         handle._encoding)
        if encoding != "raw":
            dtype = _dtypes.ENCODING_DTYPES[encoding]
        self._encoding = encoding
        self._dtype = dtype

    def get_shape(self):
        return list(self._shape)

    def get_dtype(self):
        """Returns the safetensors dtype of the bytes a read gives."""
        return self._dtype

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __getitem__(self, index):
        keys = self._normalize(index)
        if not self._shape:
            return self._to_framework(self._read_rows(0, 1))
        if any(_is_empty(key) for key in keys):
            return self._empty(keys)
        begin, end = _bounds(keys[0])
        local = [_shift(keys[0], begin)] + keys[1:]
        columns = keys[1] if len(keys) == 2 else None
        col_begin, col_end = _bounds(columns) if columns is not None else (0, 0)
        if columns is not None and (col_begin, col_end) != (0, self._shape[1]):
            array = self._read_columns(begin, end, col_begin, col_end)
            local[1] = _shift(columns, col_begin)
        else:
            array = self._read_rows(begin, end)
        part = array[tuple(local)]
        if isinstance(part, np.ndarray) and part.nbytes < array.nbytes:
            part = part.copy(order="C")  # Not the whole read kept alive.
        return self._to_framework(part)

    def __iter__(self):
        """Yields the tensor's rows (dimension 0), each read when reached."""
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        for row in range(self._shape[0]):
            yield self[row]

    # The index, as a tuple of one int or step-positive slice with
    # non-negative bounds per dimension.
    def _normalize(self, index):
        if not isinstance(index, tuple):
            index = (index,)
        rank = len(self._shape)
        if any(key is Ellipsis for key in index):
            if sum(key is Ellipsis for key in index) > 1:
                raise _errors.InvalidArgument("more than one ... in a slice")
            at = next(i for i, key in enumerate(index) if key is Ellipsis)
            fill = rank - (len(index) - 1)
            if fill < 0:
                raise _errors.InvalidArgument(
                    f"{len(index) - 1} indices for a tensor of {rank} "
                    "dimensions")
            index = index[:at] + (slice(None),) * fill + index[at + 1:]
        if len(index) > rank:
            raise _errors.OutOfRange(
                f"{len(index)} indices for {self._info['name']} of "
                f"{rank} dimensions (shape {list(self._shape)})")
        keys = []
        for dim, key in enumerate(index):
            size = self._shape[dim]
            if isinstance(key, bool) or not isinstance(key, (int, slice)):
                if hasattr(key, "__index__") and not isinstance(key, bool):
                    key = int(key.__index__())
                else:
                    raise _errors.InvalidArgument(
                        f"slices take ints, slices and ..., not "
                        f"{type(key).__name__}")
            if isinstance(key, int):
                if key < -size or key >= size:
                    raise _errors.OutOfRange(
                        f"index {key} is out of range for dimension {dim} "
                        f"of {self._info['name']} (size {size})")
                keys.append(key % size)
                continue
            if key.step is not None and key.step <= 0:
                raise _errors.InvalidArgument(
                    f"slice steps must be positive, not {key.step}")
            start, stop, step = key.indices(size)
            keys.append(slice(start, max(start, stop), step))
        keys.extend(slice(0, self._shape[dim], 1)
                    for dim in range(len(keys), rank))
        return keys

    def _element_bytes(self):
        return _dtypes.element_size(self._dtype)

    def _row_bytes(self):
        count = 1
        for dim in self._shape[1:]:
            count *= dim
        return count * self._element_bytes()

    def _read_rows(self, begin, end):
        if not self._shape:  # A 0-dim tensor: its one element.
            _, flat = self._handle._client._client.read(
                self._info["name"], self._encoding, 0, 0)
            return flat.view(_dtypes.numpy_dtype(self._dtype)).reshape(())
        row_bytes = self._row_bytes()
        shape = (end - begin,) + self._shape[1:]
        if row_bytes == 0:
            return np.empty(shape, dtype=_dtypes.numpy_dtype(self._dtype))
        _, flat = self._handle._client._client.read(
            self._info["name"], self._encoding, begin * row_bytes,
            (end - begin) * row_bytes)
        return flat.view(_dtypes.numpy_dtype(self._dtype)).reshape(shape)

    def _read_columns(self, begin, end, col_begin, col_end):
        size = self._element_bytes()
        flat = self._handle._client._client.read_columns(
            self._info["name"], self._encoding, begin, end,
            self._shape[1] * size, col_begin * size,
            (col_end - col_begin) * size)
        return flat.view(_dtypes.numpy_dtype(self._dtype)).reshape(
            end - begin, col_end - col_begin)

    def _empty(self, keys):
        dtype = _dtypes.numpy_dtype(self._dtype)
        # A view of one element with zero strides: no memory of the
        # tensor's size.
        whole = np.broadcast_to(np.zeros((), dtype=dtype), self._shape)
        return self._to_framework(np.empty(whole[tuple(keys)].shape, dtype))

    def _to_framework(self, array):
        # A numpy scalar (every dimension indexed) as a 0-d array, and a
        # strided slice copied: what a read returns owns its elements.
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        if self._handle._framework == "np":
            return array
        return _dtypes.from_bytes(array.reshape(-1).view(np.uint8),
                                  self._dtype, array.shape, "pt")


def _is_empty(key):
    return isinstance(key, slice) and key.stop <= key.start


def _bounds(key):
    """Returns the [begin, end) of the elements of a dimension that ``key``
    (normalized) touches."""
    if isinstance(key, int):
        return key, key + 1
    last = key.start + (key.stop - key.start - 1) // key.step * key.step
    return key.start, last + 1


def _shift(key, by):
    """Returns normalized ``key`` relative to element ``by``."""
    if isinstance(key, int):
        return key - by
    return slice(key.start - by, key.stop - by, key.step)
