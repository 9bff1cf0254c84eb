"""Round trips through a real pstored with pstore.Client: every dtype, 0-dim
and empty tensors, in torch and numpy; metadata; stat, ls, publish, pin,
unpin and prefetch; and the float conversions the server makes
(``encoding="f32"``, ``"f16"``, ``"bf16"``)."""

import os

import numpy as np
import pytest
import torch

import pstore

TORCH_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
# What numpy holds each dtype in (pstore/_dtypes.py: BF16 as its raw bits).
NUMPY_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
ELEMENT_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1
}
SHAPES = {
    "scalar": (),
    "empty": (0,),
    "empty2d": (3, 0),
    "vector": (7,),
    "matrix": (5, 9),
    "cube": (2, 3, 4),
}
# torch 1.13 has no float8: F8 tensors come back as their bits, in uint8.
F8_TORCH = {
    "F8_E4M3": getattr(torch, "float8_e4m3fn", torch.uint8),
    "F8_E5M2": getattr(torch, "float8_e5m2", torch.uint8),
}


def random_bits(dtype, shape, seed):
    """Returns a numpy array of ``shape`` in what numpy holds safetensors
    ``dtype`` in: random bits (NaNs and all) for numbers, 0/1 for BOOL."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape, dtype=np.int64))
    if dtype == "BOOL":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 256, size=count * ELEMENT_BYTES[dtype],
                       dtype=np.uint8)
    return raw.view(NUMPY_DTYPES.get(dtype, np.uint8)).reshape(shape)


def as_torch(array, dtype):
    """Returns numpy ``array`` (BF16: its uint16 bits) as a torch tensor of
    safetensors ``dtype``, with torch's own strides (numpy gives an empty
    array stride 0; test_an_empty_tensor_over_numpy_memory_puts covers
    that)."""
    if array.size == 0:
        return torch.zeros(array.shape, dtype=TORCH_DTYPES[dtype])
    if dtype == "BF16":
        return torch.from_numpy(array.view(np.int16).copy()).view(
            torch.bfloat16)
    return torch.from_numpy(array.copy())


def raw_bytes(value):
    """Returns the bytes of a torch tensor or numpy array, row-major."""
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value).tobytes()
    flat = value.contiguous().reshape(-1)
    if flat.dtype != torch.uint8:
        flat = flat.view(torch.uint8)
    return flat.numpy().tobytes()


def assert_same_tensor(got, want_bytes, want_shape, want_dtype):
    """Asserts ``got`` has the dtype, shape and bytes wanted (bytes, so NaNs
    compare by their bits)."""
    assert got.dtype == want_dtype
    assert tuple(got.shape) == tuple(want_shape)
    assert raw_bytes(got) == want_bytes


def revision_of(model_name):
    return f"{model_name}@v1"


def put_f8(cli, address, name, dtype, array, directory):
    """Puts uint8 ``array`` as tensor ``name`` of F8 ``dtype`` with
    pstore-cli (the Python client has no F8 type to put from)."""
    path = os.path.join(directory, "f8.bin")
    with open(path, "wb") as file:
        file.write(array.tobytes())
    shape = ",".join(str(dim) for dim in array.shape) or "scalar"
    cli(address, "put", name, path, "--dtype", dtype, "--shape", shape)


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_every_dtype_and_shape_round_trips_byte_for_byte(
        client, server, cli, model_name, scratch_dir, framework):
    """Puts every dtype in every shape (0-dim, empty, 1- to 3-D) from the
    framework's own type (BF16 from torch: numpy has none), loads it back
    with the same framework, and checks dtype, shape and bytes."""
    name = revision_of(model_name)
    tensors = {}
    expected = {}
    for seed, dtype in enumerate(TORCH_DTYPES):
        for label, shape in SHAPES.items():
            key = f"{dtype.lower()}.{label}"
            array = random_bits(dtype, shape, seed * 100 + len(tensors))
            if framework == "pt" or dtype == "BF16":
                tensors[key] = as_torch(array, dtype)
            else:
                tensors[key] = array.copy()
            want_dtype = (TORCH_DTYPES[dtype] if framework == "pt" else
                          np.dtype(NUMPY_DTYPES[dtype]))
            expected[key] = (array.tobytes(), shape, want_dtype)
    client.put(name, tensors)
    for f8 in F8_TORCH:
        for label, shape in SHAPES.items():
            key = f"{f8.lower()}.{label}"
            array = random_bits("U8", shape, len(expected))
            put_f8(cli, server.address, f"{name}/{key}", f8, array,
                   scratch_dir)
            want_dtype = (F8_TORCH[f8] if framework == "pt" else
                          np.dtype(np.uint8))
            expected[key] = (array.tobytes(), shape, want_dtype)

    loaded = client.load(name, framework=framework)

    assert sorted(loaded) == sorted(expected)
    for key, (want_bytes, shape, want_dtype) in expected.items():
        assert_same_tensor(loaded[key], want_bytes, shape, want_dtype)
        if framework == "pt":
            assert isinstance(loaded[key], torch.Tensor)
        else:
            assert isinstance(loaded[key], np.ndarray)


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_an_empty_tensor_over_numpy_memory_puts(client, model_name, shape):
    """An empty torch tensor made with torch.from_numpy (numpy gives it
    stride 0) puts and loads back empty, as any empty tensor."""
    name = revision_of(model_name)
    empty = torch.from_numpy(np.zeros(shape, dtype=np.float32))
    client.put(name, {"empty": empty})
    loaded = client.load(name)["empty"]
    assert loaded.dtype == torch.float32
    assert tuple(loaded.shape) == shape


@pytest.mark.parametrize("value", [
    np.array(2.5, dtype=np.float32),
    np.float32(2.5),
])
def test_a_0_dim_numpy_value_puts_as_0_dim(client, model_name, value):
    """A 0-dim numpy array or a numpy scalar is stored with shape (), as a
    0-dim torch tensor is."""
    name = revision_of(model_name)
    client.put(name, {"x": value})
    assert list(client.stat(f"{name}/x")["shape"]) == []
    loaded = client.load(name, framework="np")["x"]
    assert loaded.shape == ()
    assert loaded.dtype == np.float32 and loaded == np.float32(2.5)


def test_load_order_is_the_revisions_order(client, model_name):
    """load() returns the tensors in the order ls() lists the revision."""
    name = revision_of(model_name)
    client.put(name, {f"t{i}": torch.full((2,), i) for i in (3, 1, 2, 0)})
    listed = [entry["tensor"] for entry in client.ls(name)]
    assert sorted(listed) == ["t0", "t1", "t2", "t3"]
    assert list(client.load(name)) == listed


def test_torch_and_numpy_of_one_put_agree(client, model_name):
    """A tensor put from torch loads in numpy as the same bytes, and one
    put from numpy loads in torch as the same bytes."""
    name = revision_of(model_name)
    from_torch = torch.randn(4, 5, dtype=torch.float32)
    from_numpy = np.arange(12, dtype=np.int16).reshape(3, 4)
    client.put(name, {"a": from_torch, "b": from_numpy})
    as_numpy = client.load(name, framework="np")
    in_torch = client.load(name, framework="pt")
    assert np.array_equal(as_numpy["a"], from_torch.numpy())
    assert torch.equal(in_torch["b"], torch.from_numpy(from_numpy))


def test_non_contiguous_tensors_are_put_as_their_values(client, model_name):
    """A transposed or strided tensor is stored as its values in row-major
    order (what .contiguous() gives), not as its underlying memory."""
    name = revision_of(model_name)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    array = np.arange(24, dtype=np.int32).reshape(4, 6)
    client.put(name, {"t": base.t(), "s": base[:, ::2], "n": array.T})
    loaded = client.load(name)
    assert torch.equal(loaded["t"], base.t().contiguous())
    assert torch.equal(loaded["s"], base[:, ::2].contiguous())
    assert torch.equal(loaded["n"], torch.from_numpy(array.T.copy()))


def test_metadata_round_trips(client, model_name):
    """The metadata given to put comes back from open().metadata() and from
    stat()."""
    name = revision_of(model_name)
    metadata = {"format": "pt", "note": "weights \u00e9t\u00e9", "empty": ""}
    client.put(name, {"w": torch.ones(3)}, metadata=metadata)
    with client.open(name) as handle:
        assert handle.metadata() == metadata
        assert handle.name == name
        assert handle.keys() == ["w"]
    assert client.stat(name)["metadata"] == metadata


def test_stat_of_a_revision_and_of_a_tensor(client, model_name):
    """stat() of MODEL@REV describes the revision (name, open, total
    bytes, its tensors), and of MODEL@REV/TENSOR the tensor (dtype, shape,
    bytes, kind)."""
    name = revision_of(model_name)
    weight = torch.randn(6, 10, dtype=torch.float16)
    bias = np.zeros(10, dtype=np.int64)
    client.put(name, {"weight": weight, "bias": bias})

    revision = client.stat(name)
    assert revision["name"] == name
    assert revision["published"] is False
    assert revision["total_bytes"] == 6 * 10 * 2 + 10 * 8
    assert sorted(entry["tensor"] for entry in revision["tensors"]) == [
        "bias", "weight"
    ]

    tensor = client.stat(f"{name}/weight")
    assert tensor["name"] == f"{name}/weight"
    assert tensor["tensor"] == "weight"
    assert tensor["dtype"] == "F16"
    assert list(tensor["shape"]) == [6, 10]
    assert tensor["stored_byte_length"] == 120
    assert tensor["kind"] == "tensor"


def test_ls_lists_models_and_a_revisions_tensors(client, model_name):
    """ls() lists the model with its revision; ls(MODEL@REV) lists the
    revision's tensors with their dtype and shape."""
    name = revision_of(model_name)
    client.put(name, {
        "a": torch.zeros(2, 3),
        "b/c": torch.zeros(4, dtype=torch.int8)
    })
    models = {model["name"]: model for model in client.ls()}
    assert model_name in models
    revisions = [
        revision["name"] for revision in models[model_name]["revisions"]
    ]
    assert name in revisions

    entries = {entry["tensor"]: entry for entry in client.ls(name)}
    assert sorted(entries) == ["a", "b/c"]
    assert entries["a"]["dtype"] == "F32"
    assert list(entries["a"]["shape"]) == [2, 3]
    assert entries["b/c"]["dtype"] == "I8"


def test_publish_makes_the_revision_the_models_latest(client, model_name):
    """Before publishing, MODEL alone names nothing (NotFound); after
    publish(), stat says published and load(MODEL) gives the revision."""
    name = revision_of(model_name)
    weight = torch.randn(8, 8)
    client.put(name, {"w": weight})
    with pytest.raises(pstore.NotFound):
        client.load(model_name)

    client.publish(name)

    assert client.stat(name)["published"] is True
    assert client.stat(model_name)["name"] == name
    assert torch.equal(client.load(model_name)["w"], weight)
    models = {model["name"]: model for model in client.ls()}
    assert models[model_name]["latest_revision"] in (name, "v1")


def test_put_with_publish_publishes(client, model_name):
    """put(..., publish=True) returns the revision published."""
    name = revision_of(model_name)
    revision = client.put(name, {"w": torch.ones(2)}, publish=True)
    assert revision["published"] is True
    assert torch.equal(client.load(model_name)["w"], torch.ones(2))


def test_prefetch_pin_and_unpin_as_the_cli_does(client, model_name):
    """As pstore-cli's pin test: publish, prefetch into NVMe and DRAM, pin
    (the bytes pinned cover the revision), stat says pinned, unpin; the
    tensors still read back the same."""
    name = revision_of(model_name)
    weight = torch.randn(256, 1024)
    client.put(name, {"w": weight}, publish=True)

    nvme = client.prefetch(model_name, "nvme")
    assert nvme["blocks"] >= 1
    dram = client.prefetch(model_name)
    assert dram["blocks"] >= 1

    pinned = client.pin(model_name)
    assert pinned >= weight.numel() * 4
    assert client.stat(name)["pinned"] is True
    assert torch.equal(client.load(model_name)["w"], weight)

    client.unpin(model_name)
    assert client.stat(name)["pinned"] is False
    assert torch.equal(client.load(name)["w"], weight)


def test_delete_removes_a_revision(client, model_name):
    """delete(MODEL@REV) removes it: a later load is NotFound."""
    name = revision_of(model_name)
    client.put(name, {"w": torch.ones(2)})
    client.delete(name)
    with pytest.raises(pstore.NotFound):
        client.load(name)


def test_get_tensor_reads_one_tensor(client, model_name):
    """get_tensor(MODEL@REV/TENSOR) reads one tensor whole, in either
    framework."""
    name = revision_of(model_name)
    weight = torch.randn(3, 7, dtype=torch.float64)
    client.put(name, {"w": weight, "other": torch.zeros(1)})
    assert torch.equal(client.get_tensor(f"{name}/w"), weight)
    assert np.array_equal(client.get_tensor(f"{name}/w", framework="np"),
                          weight.numpy())


# --- Float conversions on the server ---

TARGETS = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
TARGET_NAMES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def special_floats():
    """Returns float32 values that probe rounding to nearest even in F16
    and BF16: ties, subnormals, overflow, signed zeros, infinities, NaN."""
    values = [
        0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan,
        65504.0, 65519.99, 65520.0, 1e6, -1e6,  # F16 max, overflow to inf
        1 + 2.0**-11, 1 + 3 * 2.0**-11, -(1 + 2.0**-11),  # F16 ties
        1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-8 + 2.0**-20,  # BF16 ties
        2.0**-24, 2.0**-25, 3 * 2.0**-25, 2.0**-26, 1e-8,  # F16 subnormals
        2.0**-14, 2.0**-14 - 2.0**-25,
        np.finfo(np.float32).max, np.finfo(np.float32).tiny,
        1e-40, -1e-45,  # F32 subnormals
        np.float32(0.1), np.float32(1 / 3),
    ]
    return np.array(values, dtype=np.float32)


def float_sources(seed):
    """Returns {name: torch tensor} of float tensors of every float dtype
    whose conversions the test compares with torch's."""
    rng = np.random.default_rng(seed)
    f32 = np.concatenate([
        special_floats(),
        (rng.standard_normal(4000) *
         np.exp2(rng.integers(-30, 30, 4000))).astype(np.float32),
    ])
    usable = f32.size - f32.size % 16
    return {
        "f32": torch.from_numpy(f32),
        "f32_2d": torch.from_numpy(f32[:usable].reshape(-1, 16)),
        # F32-representable values: converting them to F16 or BF16 rounds
        # once however the converter goes.
        "f64": torch.from_numpy(f32.astype(np.float64)),
        "f16": torch.from_numpy(f32).to(torch.float16),
        "bf16": torch.from_numpy(f32).to(torch.bfloat16),
        "f32_scalar": torch.tensor(1 + 2.0**-11, dtype=torch.float32),
        "f32_empty": torch.zeros(3, 0),
    }


def integer_sources():
    """Returns {name: tensor} of the non-float dtypes: they come back raw
    from any float encoding."""
    return {
        "i64": torch.arange(-5, 5, dtype=torch.int64),
        "i32": torch.arange(-5, 5, dtype=torch.int32).reshape(2, 5),
        "i16": torch.arange(6, dtype=torch.int16),
        "i8": torch.arange(-3, 3, dtype=torch.int8),
        "u8": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
    }


def assert_converted(got, source, target):
    """Asserts ``got`` equals ``source.to(target)``: bit for bit, except
    that a NaN need only be a NaN."""
    want = source.to(target)
    assert got.dtype == target
    assert got.shape == want.shape
    got_nan = torch.isnan(got.to(torch.float32))
    want_nan = torch.isnan(want.to(torch.float32))
    assert torch.equal(got_nan, want_nan)
    got_bits = raw_bytes(torch.where(got_nan, torch.zeros_like(got), got))
    want_bits = raw_bytes(torch.where(want_nan, torch.zeros_like(want), want))
    if got_bits != want_bits:
        differ = (got != want) & ~want_nan
        index = differ.reshape(-1).nonzero()[:5].reshape(-1)
        pytest.fail(
            f"converting to {target} differs from torch at flat indices "
            f"{index.tolist()}: source "
            f"{source.reshape(-1)[index].tolist()}, got "
            f"{got.reshape(-1)[index].tolist()}, torch "
            f"{want.reshape(-1)[index].tolist()}")


@pytest.fixture(scope="module")
def conversion_model(client):
    """A revision holding float tensors of every float dtype and integer
    tensors; returns (name, float sources, integer sources)."""
    name = "conversions@v1"
    floats = float_sources(7)
    # Values past a float32 rounding that decides an F16 tie: rounding
    # through float32 and rounding once differ on them.
    past_ties = [1 + 2.0**-11 + 2.0**-40, -(1 + 2.0**-11 + 2.0**-40),
                 1 + 3 * 2.0**-11 - 2.0**-40, 2.0**-25 + 2.0**-50]
    wide = np.concatenate(
        [past_ties, np.random.default_rng(8).standard_normal(1000)])
    floats_f32_only = {"f64_wide": torch.from_numpy(wide)}
    integers = integer_sources()
    client.put(name, {**floats, **floats_f32_only, **integers})
    return name, floats, floats_f32_only, integers


@pytest.mark.parametrize("encoding", ["f32", "f16", "bf16"])
def test_float_encodings_equal_torchs_conversion(client, conversion_model,
                                                 encoding):
    """load(encoding=...) converts every float tensor on the server as
    torch's .to() does (round to nearest even, overflow to inf,
    subnormals kept), and leaves integer and bool tensors raw."""
    name, floats, floats_f32_only, integers = conversion_model
    target = TARGETS[encoding]

    loaded = client.load(name, encoding=encoding)

    for key, source in floats.items():
        assert_converted(loaded[key], source, target)
    for key, source in floats_f32_only.items():
        assert loaded[key].dtype == target
        if encoding == "f32":
            assert_converted(loaded[key], source, target)
    for key, source in integers.items():
        assert loaded[key].dtype == source.dtype
        assert torch.equal(loaded[key], source)


@pytest.mark.parametrize("encoding", ["f32", "f16", "bf16"])
def test_float_encodings_in_numpy(client, conversion_model, encoding):
    """The same conversions with framework="np": F16 and F32 as numpy
    floats, BF16 as its uint16 bits; integers raw."""
    name, floats, _, integers = conversion_model
    target = TARGETS[encoding]

    loaded = client.load(name, framework="np", encoding=encoding)

    want_numpy = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}
    for key, source in floats.items():
        got = loaded[key]
        assert got.dtype == want_numpy[encoding]
        if encoding == "bf16":
            got_torch = torch.from_numpy(got.view(np.int16).copy()).view(
                torch.bfloat16)
        else:
            got_torch = torch.from_numpy(got.copy())
        assert_converted(got_torch, source, target)
    for key, source in integers.items():
        assert np.array_equal(loaded[key], source.numpy())


@pytest.mark.parametrize("encoding", ["f16", "bf16"])
def test_get_tensor_and_open_take_an_encoding(client, conversion_model,
                                              encoding):
    """get_tensor() and open(encoding=...).get_tensor()/get_slice() of a
    float tensor convert as load() does."""
    name, floats, _, _ = conversion_model
    target = TARGETS[encoding]
    source = floats["f32"]
    assert_converted(
        client.get_tensor(f"{name}/f32", encoding=encoding), source, target)
    with client.open(name, encoding=encoding) as handle:
        assert_converted(handle.get_tensor("f32"), source, target)
        tensor_slice = handle.get_slice("f32")
        assert tensor_slice.get_dtype() == TARGET_NAMES[encoding]
        assert_converted(tensor_slice[3:9], source[3:9], target)


def test_an_encoded_handle_reads_integer_tensors_raw(client,
                                                     conversion_model):
    """open(encoding="f16"): integer and bool tensors come back raw from
    get_tensor(), as they do from get_slice() and from load(encoding=...)
    (a state_dict's integer buffers read with the floats)."""
    name, _, _, integers = conversion_model
    with client.open(name, encoding="f16") as handle:
        for key, source in integers.items():
            assert torch.equal(handle.get_slice(key)[:], source), key
            assert torch.equal(handle.get_tensor(key), source), key


def test_f64_converts_to_f16_rounding_once(client, conversion_model):
    """An F64 tensor with full 53-bit mantissas converts to f16 rounded
    once to nearest even, as numpy's float64 -> float16 does (torch 1.13
    rounds through float32 first, so it is no reference here)."""
    name, _, floats_f32_only, _ = conversion_model
    source = floats_f32_only["f64_wide"].numpy()
    got = client.load(name, framework="np", encoding="f16")["f64_wide"]
    assert got.dtype == np.float16
    assert got.tobytes() == source.astype(np.float16).tobytes()


def test_a_second_put_into_an_open_revision_adds_to_it(client, model_name):
    """put into an open revision that exists adds its tensors, with no
    metadata or the same; other metadata is FailedPrecondition, and nothing
    of that put is stored."""
    name = f"{model_name}@v1"
    client.put(name, {"a": torch.ones(3)}, metadata={"k": "v"})
    client.put(name, {"b": torch.zeros(2)})
    client.put(name, {"c": torch.zeros(1)}, metadata={"k": "v"})
    with pytest.raises(pstore.FailedPrecondition) as info:
        client.put(name, {"d": torch.zeros(1)}, metadata={"k": "other"})
    assert name in info.value.message
    assert sorted(client.load(name)) == ["a", "b", "c"]


def test_progress_gets_the_total_and_ends_at_it(client, model_name):
    """A progress callable is called with the model's size as the total
    (never a total of 0 for a model with bytes) and last with all of it."""
    name = f"{model_name}@v1"
    client.put(name, {f"t{i}": torch.zeros(1 << 20) for i in range(8)})
    calls = []
    client.load(name, progress=lambda done, total: calls.append(
        (done, total)))
    size = 8 * (4 << 20)
    assert calls, "progress was never called"
    assert all(total == size for _, total in calls), calls
    assert calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_freed_tensor_memory_is_pooled_for_the_next_load(client, model_name):
    """Tensors of 4 MiB and more give their memory back to the pool when
    dropped, the next load of the same sizes takes it (and its bytes are
    right), and the pool holds at most its capacity."""
    import gc
    name = f"{model_name}@v1"
    state = {f"t{i}": torch.full((1 << 20,), float(i)) for i in range(4)}
    client.put(name, state)
    pstore.release_memory()
    assert pstore.memory_pool()[0] == 0
    loaded = client.load(name)
    del loaded
    gc.collect()
    held, capacity = pstore.memory_pool()
    assert held == 4 * (4 << 20)
    again = client.load(name)
    assert pstore.memory_pool()[0] == 0  # All taken back.
    for key, value in state.items():
        assert torch.equal(again[key], value)
    del again
    gc.collect()
    pstore.set_memory_pool(8 << 20)  # Room for two of the four.
    assert pstore.memory_pool() == (8 << 20, 8 << 20)
    pstore.set_memory_pool(capacity)
    pstore.release_memory()
    assert pstore.memory_pool() == (0, capacity)


def test_a_client_on_the_unix_socket_loads_as_over_tcp(start_pstored,
                                                        scratch_dir):
    """pstore.Client("unix:PATH") of a pstored started with --uds_path puts
    and loads the same bytes as a client over TCP."""
    socket_path = os.path.join(scratch_dir, "pstored.sock")
    server = start_pstored(f"--uds_path={socket_path}")
    local = pstore.Client(f"unix:{socket_path}")
    tcp = pstore.Client(server.address)
    state = {"w": torch.randn(64, 33), "ids": torch.arange(7)}
    local.put("uds@v1", state, publish=True)
    for client in (local, tcp):
        loaded = client.load("uds")
        assert sorted(loaded) == ["ids", "w"]
        for key, value in state.items():
            assert torch.equal(loaded[key], value)
