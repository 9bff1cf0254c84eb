"""The lazy handle of client.open(): keys, metadata, whole tensors, and
slices that equal numpy slicing of the whole tensor, in both frameworks.

Slices cover what tensor-parallel code reads (rank r of world w takes the
contiguous chunk of rows or of columns [r * c, (r + 1) * c), c = ceil(n /
w)), at uneven splits for worlds 2, 3 and 8, plus steps, negative indices,
ints, ``...`` and empty slices. The wide tensors have rows whose column
chunks reach 64 KiB (the per-row ranged-read path of pstore/_safe_open.py)
for some worlds and stay below it (the streamed path) for others.
"""

import math

import numpy as np
import pytest
import torch

import pstore

REVISION = "slices@v1"
METADATA = {"format": "pt", "purpose": "slices"}
DTYPES = ("F32", "F16", "BF16")
TORCH_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16
}
SHAPES = {
    # Rows of 256 KiB in F32: a half (world 2) or a third (world 3) of a
    # row is >= 64 KiB, an eighth is not. Neither dimension divides evenly.
    "wide": (7, 65539),
    # Exactly (8, 65536) F32: 128 KiB, 85 KiB and 32 KiB column chunks.
    "wide_even": (8, 65536),
    # Small rows: every column read streams whole rows.
    "tall": (37, 100),
    "cube": (5, 6, 7),
    "vector": (29,),
}
WORLDS = (2, 3, 8)


def reference(dtype, shape, seed):
    """Returns the numpy array of a tensor (BF16 as uint16 bits): random
    normal values, rounded to the dtype."""
    values = np.random.default_rng(seed).standard_normal(shape).astype(
        np.float32)
    if dtype == "F32":
        return values
    if dtype == "F16":
        return values.astype(np.float16)
    bf16 = torch.from_numpy(values).to(torch.bfloat16)
    return bf16.view(torch.int16).numpy().view(np.uint16)


def to_torch(array, dtype):
    """Returns numpy ``array`` as a torch tensor of safetensors ``dtype``
    (BF16 from its uint16 bits)."""
    # A copy, C-contiguous (np.ascontiguousarray would make a 0-dim array
    # 1-D).
    array = np.array(array, order="C", copy=True)
    if dtype == "BF16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def key_of(dtype, shape_label):
    return f"{shape_label}.{dtype.lower()}"


@pytest.fixture(scope="module")
def references(client):
    """Puts one tensor per dtype and shape (and a 0-dim one) as REVISION;
    returns {key: (dtype, numpy reference)}."""
    refs = {}
    for seed, (label, shape) in enumerate(SHAPES.items()):
        for dtype in DTYPES:
            refs[key_of(dtype, label)] = (dtype,
                                          reference(dtype, shape, seed))
    refs["scalar.f32"] = ("F32", np.array(1.5, dtype=np.float32))
    client.put(REVISION, {
        key: to_torch(array, dtype)
        for key, (dtype, array) in refs.items()
    },
               metadata=METADATA)
    return refs


def assert_slice_equal(got, want, dtype, framework):
    """Asserts slice ``got`` equals numpy slice ``want`` (a numpy array in
    the tensor's numpy type): type, shape, and every element."""
    want = np.asarray(want)
    if framework == "np":
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert np.array_equal(got, want)
    else:
        assert isinstance(got, torch.Tensor)
        assert got.dtype == TORCH_DTYPES[dtype]
        assert tuple(got.shape) == want.shape
        assert torch.equal(got, to_torch(want, dtype).reshape(want.shape))


def rank_chunks(size, world):
    """Returns each rank's [begin, end) of a dimension of ``size`` split
    over ``world`` ranks as tensor-parallel code does: chunks of
    ceil(size / world), the last ones short or empty."""
    chunk = math.ceil(size / world)
    return [(min(rank * chunk, size), min((rank + 1) * chunk, size))
            for rank in range(world)]


FRAMEWORKS = pytest.mark.parametrize("framework", ["pt", "np"])
MATRIX_CASES = pytest.mark.parametrize(
    "dtype,label", [(dtype, label) for dtype in DTYPES
                    for label in ("wide", "wide_even", "tall")])


def test_handle_lists_keys_metadata_and_tensor_info(client, references):
    """keys() lists every tensor, metadata() the revision's metadata, and
    get_slice() knows shape and dtype before reading."""
    with client.open(REVISION) as handle:
        assert sorted(handle.keys()) == sorted(references)
        assert handle.metadata() == METADATA
        assert handle.name == REVISION
        for key, (dtype, array) in references.items():
            tensor_slice = handle.get_slice(key)
            assert tensor_slice.get_shape() == list(array.shape)
            assert tensor_slice.get_dtype() == dtype
            assert handle.info(key)["dtype"] == dtype
        assert len(handle.get_slice(key_of("F32", "tall"))) == 37


@FRAMEWORKS
def test_get_tensor_reads_whole_tensors(client, references, framework):
    """get_tensor(key) equals the whole tensor put, for every tensor."""
    with client.open(REVISION, framework=framework) as handle:
        for key, (dtype, array) in references.items():
            assert_slice_equal(handle.get_tensor(key), array, dtype,
                               framework)


@FRAMEWORKS
@MATRIX_CASES
def test_each_ranks_rows_equal_numpy(client, references, framework, dtype,
                                     label):
    """Every rank's contiguous chunk of rows, for worlds 2, 3 and 8, equals
    numpy slicing of the whole tensor."""
    key = key_of(dtype, label)
    _, array = references[key]
    with client.open(REVISION, framework=framework) as handle:
        tensor_slice = handle.get_slice(key)
        for world in WORLDS:
            for begin, end in rank_chunks(array.shape[0], world):
                assert_slice_equal(tensor_slice[begin:end], array[begin:end],
                                   dtype, framework)


@FRAMEWORKS
@MATRIX_CASES
def test_each_ranks_columns_equal_numpy(client, references, framework,
                                        dtype, label):
    """Every rank's contiguous chunk of columns, for worlds 2, 3 and 8 (on
    the wide tensors both the ranged and the streamed read paths), equals
    numpy slicing of the whole tensor; so do a rank's columns of a range
    of rows."""
    key = key_of(dtype, label)
    _, array = references[key]
    rows = array.shape[0]
    with client.open(REVISION, framework=framework) as handle:
        tensor_slice = handle.get_slice(key)
        for world in WORLDS:
            for begin, end in rank_chunks(array.shape[1], world):
                assert_slice_equal(tensor_slice[:, begin:end],
                                   array[:, begin:end], dtype, framework)
                assert_slice_equal(tensor_slice[1:rows - 1, begin:end],
                                   array[1:rows - 1, begin:end], dtype,
                                   framework)


def matrix_indices(rows, columns):
    """Returns indices of every kind for a (rows, columns) tensor."""
    s = np.s_
    return [
        s[:], s[...], s[:, :], s[2], s[-1], s[1:4], s[-3:], s[:-2],
        s[:, 5:17], s[:, -9:-2], s[:, 4], s[:, -1], s[2, 3:40], s[-2, -30:],
        s[1:6:2], s[::3], s[:, 3:50:7], s[::3, ::5], s[1:5, columns - 40::9],
        s[..., 3:9], s[2, ...], s[..., -1], s[3:3], s[:, 5:5], s[5:2],
        s[rows:], s[100:200], s[:, columns - 1:columns + 10],
        s[:, columns:], s[np.int64(1)], s[:, columns // 2:]
    ]


@FRAMEWORKS
@MATRIX_CASES
def test_slices_of_every_kind_equal_numpy(client, references, framework,
                                          dtype, label):
    """Slices with steps, negative indices, ints, ``...``, and empty or
    out-of-bounds ranges equal numpy slicing of the whole tensor."""
    key = key_of(dtype, label)
    _, array = references[key]
    with client.open(REVISION, framework=framework) as handle:
        tensor_slice = handle.get_slice(key)
        for index in matrix_indices(*array.shape):
            got = tensor_slice[index]
            try:
                assert_slice_equal(got, array[index], dtype, framework)
            except AssertionError as error:
                raise AssertionError(f"index {index!r}: {error}") from None


@FRAMEWORKS
@pytest.mark.parametrize("dtype", DTYPES)
def test_int_indices_in_every_dimension_give_0_dim_results(
        client, references, framework, dtype):
    """An int in every dimension selects one element: a 0-dim result, as
    numpy's (and torch's) indexing gives."""
    key = key_of(dtype, "tall")
    _, array = references[key]
    with client.open(REVISION, framework=framework) as handle:
        tensor_slice = handle.get_slice(key)
        for index in (np.s_[2, 3], np.s_[-1, -1], np.s_[0, 99]):
            assert_slice_equal(tensor_slice[index], array[index], dtype,
                               framework)


@FRAMEWORKS
def test_a_0_dim_tensor_slices_as_numpy(client, references, framework):
    """A 0-dim tensor indexed with () or ... gives its 0-dim value."""
    _, array = references["scalar.f32"]
    with client.open(REVISION, framework=framework) as handle:
        tensor_slice = handle.get_slice("scalar.f32")
        assert tensor_slice.get_shape() == []
        assert_slice_equal(tensor_slice[()], array[()], "F32", framework)
        assert_slice_equal(tensor_slice[...], array[...], "F32", framework)


def cube_indices():
    """Returns indices of a (5, 6, 7) tensor on dims 0 and 2."""
    s = np.s_
    return [
        s[1:4], s[:, :, 2:5], s[1:4, :, 2:5], s[..., 3], s[2, :, -1],
        s[::2, 1:5:2, ::3], s[:, 2], s[-1, ..., 0:7:3], s[:, :, 7:7],
        s[4:], s[..., -3:], s[0, 0], s[:, :, 6]
    ]


@FRAMEWORKS
@pytest.mark.parametrize("dtype", DTYPES)
def test_3d_slices_on_dims_0_and_2_equal_numpy(client, references, framework,
                                               dtype):
    """A 3-D tensor sliced on its first and last dimensions (and each
    rank's chunk of either) equals numpy slicing of the whole tensor."""
    key = key_of(dtype, "cube")
    _, array = references[key]
    with client.open(REVISION, framework=framework) as handle:
        tensor_slice = handle.get_slice(key)
        indices = cube_indices()
        for world in WORLDS:
            indices += [np.s_[b:e] for b, e in rank_chunks(5, world)]
            indices += [np.s_[..., b:e] for b, e in rank_chunks(7, world)]
        for index in indices:
            try:
                assert_slice_equal(tensor_slice[index], array[index], dtype,
                                   framework)
            except AssertionError as error:
                raise AssertionError(f"index {index!r}: {error}") from None


@FRAMEWORKS
@pytest.mark.parametrize("dtype", DTYPES)
def test_1d_slices_equal_numpy(client, references, framework, dtype):
    """A vector's ranges, steps, negative and empty slices and each rank's
    chunk equal numpy slicing."""
    key = key_of(dtype, "vector")
    _, array = references[key]
    s = np.s_
    indices = [s[:], s[3:11], s[-5:], s[::4], s[2:27:5], s[9:9], s[40:],
               s[...]]
    for world in WORLDS:
        indices += [s[b:e] for b, e in rank_chunks(29, world)]
    with client.open(REVISION, framework=framework) as handle:
        tensor_slice = handle.get_slice(key)
        for index in indices:
            assert_slice_equal(tensor_slice[index], array[index], dtype,
                               framework)


def test_a_missing_key_is_not_found(client, references):
    """get_tensor and get_slice of a key the revision lacks raise NotFound
    (a LookupError) naming the key."""
    with client.open(REVISION) as handle:
        with pytest.raises(pstore.NotFound, match="nosuch"):
            handle.get_tensor("nosuch")
        with pytest.raises(LookupError, match="nosuch"):
            handle.get_slice("nosuch")


def converted(array, encoding):
    """Returns float32 ``array`` as the server's ``encoding`` gives it, in
    numpy: float16 (numpy rounds to nearest even) or BF16 bits (torch
    does)."""
    if encoding == "f16":
        return array.astype(np.float16)
    bf16 = torch.from_numpy(np.array(array, order="C")).to(torch.bfloat16)
    return bf16.view(torch.int16).numpy().view(np.uint16)


@pytest.mark.parametrize("encoding,dtype", [("f16", "F16"), ("bf16", "BF16")])
def test_encoded_slices_equal_the_converted_tensor(client, references,
                                                   encoding, dtype):
    """open(encoding=...) slices of an F32 tensor (each rank's rows and
    columns, on both column read paths) equal the same slices of the
    tensor converted."""
    _, array = references[key_of("F32", "wide")]
    want = converted(array, encoding)
    with client.open(REVISION, framework="np", encoding=encoding) as handle:
        tensor_slice = handle.get_slice(key_of("F32", "wide"))
        assert tensor_slice.get_dtype() == dtype
        for world in WORLDS:
            for begin, end in rank_chunks(array.shape[0], world):
                assert_slice_equal(tensor_slice[begin:end], want[begin:end],
                                   dtype, "np")
            for begin, end in rank_chunks(array.shape[1], world):
                assert_slice_equal(tensor_slice[:, begin:end],
                                   want[:, begin:end], dtype, "np")
        assert_slice_equal(tensor_slice[2:5, 7:300:3], want[2:5, 7:300:3],
                           dtype, "np")
