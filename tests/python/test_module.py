"""A real PyTorch module through pstored: its state_dict put with
pstore.Client, or imported by pstore-cli from a safetensors file, loads
into a fresh instance that computes bit-identical outputs."""

import json
import os
import struct

import numpy as np
import pytest
import torch
from torch import nn

VOCAB = 1000
WIDTH = 256
HEADS = 4
LAYERS = 2
FEED_FORWARD = 1024

SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


class TinyTransformer(nn.Module):
    """A small language model: embedding, encoder layers, norm, head
    (about 2.1 M parameters, 8 MiB in float32)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        layer = nn.TransformerEncoderLayer(WIDTH,
                                           HEADS,
                                           FEED_FORWARD,
                                           dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS)
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens):
        return self.head(self.norm(self.encoder(self.embed(tokens))))


def make_model(seed):
    """Returns a TinyTransformer initialised from ``seed``, in eval
    mode."""
    torch.manual_seed(seed)
    return TinyTransformer().eval()


def fixed_input():
    """Returns a fixed batch of token ids: 2 sequences of 16."""
    generator = torch.Generator().manual_seed(1234)
    return torch.randint(0, VOCAB, (2, 16), generator=generator)


def forward(model):
    with torch.no_grad():
        return model(fixed_input())


@pytest.fixture(scope="module")
def original():
    """The module whose weights are stored, and its output."""
    model = make_model(seed=1)
    return model, forward(model)


def assert_loads_into_a_fresh_model(state_dict, original):
    """Loads ``state_dict`` into a differently initialised model and
    asserts its output is bit-identical to the original's."""
    model, want = original
    fresh = make_model(seed=2)
    assert not torch.equal(forward(fresh), want)  # The check can fail.
    assert list(state_dict) and set(state_dict) == set(model.state_dict())
    fresh.load_state_dict(state_dict, strict=True)
    assert torch.equal(forward(fresh), want)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_state_dict_put_and_loaded_gives_identical_outputs(
        client, model_name, original):
    """put(state_dict) then load() into a fresh model: the same weights
    and a bit-identical forward pass in eval mode."""
    model, _ = original
    name = f"{model_name}@v1"
    client.put(name, model.state_dict(), publish=True)

    assert_loads_into_a_fresh_model(client.load(model_name), original)


def test_state_dict_in_half_precision(client, model_name, original):
    """A float16 copy of the state_dict round trips bit for bit."""
    model, _ = original
    half = {key: value.half() for key, value in model.state_dict().items()}
    name = f"{model_name}@v1"
    client.put(name, half)
    loaded = client.load(name)
    assert set(loaded) == set(half)
    for key, value in half.items():
        assert loaded[key].dtype == torch.float16
        assert torch.equal(loaded[key], value), key


def write_safetensors(path, tensors, metadata=None):
    """Writes ``tensors`` (name to torch tensor) as a safetensors file:
    an 8-byte little-endian header length, the JSON header (dtype, shape,
    data_offsets), padded with spaces to 8 bytes, then the data."""
    header = {}
    chunks = []
    offset = 0
    for key, tensor in tensors.items():
        flat = tensor.detach().contiguous().reshape(-1)
        data = flat.view(torch.uint8).numpy().tobytes() if len(flat) else b""
        header[key] = {
            "dtype": SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)))
        file.write(text)
        for chunk in chunks:
            file.write(chunk)


def read_safetensors(path):
    """Reads a safetensors file back into {name: numpy uint8 bytes}, to
    check write_safetensors itself."""
    with open(path, "rb") as file:
        blob = file.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    header.pop("__metadata__", None)
    data = blob[8 + length:]
    return {
        key: data[entry["data_offsets"][0]:entry["data_offsets"][1]]
        for key, entry in header.items()
    }


def test_safetensors_imported_by_the_cli_gives_identical_outputs(
        client, server, cli, model_name, scratch_dir, original):
    """pstore-cli import of a safetensors file the test writes, then
    load() into a fresh model: identical weights and outputs, and the
    file's __metadata__ as the revision's metadata."""
    model, _ = original
    path = os.path.join(scratch_dir, "model.safetensors")
    state_dict = model.state_dict()
    write_safetensors(path, state_dict, metadata={"format": "pt"})
    written = read_safetensors(path)
    key = next(iter(state_dict))
    assert written[key] == state_dict[key].numpy().tobytes()
    name = f"{model_name}@v1"

    run = cli(server.address, "import", path, name, "--publish")

    assert "imported" in run.stdout
    assert_loads_into_a_fresh_model(client.load(model_name), original)
    with client.open(name) as handle:
        assert handle.metadata() == {"format": "pt"}
        assert sorted(handle.keys()) == sorted(state_dict)


def test_numpy_load_of_an_imported_model_equals_its_weights(
        client, server, cli, model_name, scratch_dir, original):
    """The imported model loaded with framework="np" holds the same
    values as the state_dict."""
    model, _ = original
    path = os.path.join(scratch_dir, "model.safetensors")
    write_safetensors(path, model.state_dict())
    name = f"{model_name}@v1"
    cli(server.address, "import", path, name)

    loaded = client.load(name, framework="np")

    for key, value in model.state_dict().items():
        assert isinstance(loaded[key], np.ndarray)
        assert np.array_equal(loaded[key], value.numpy()), key


def test_import_path_of_a_safetensors_file_gives_identical_outputs(
        client, model_name, scratch_dir, original):
    """Client.import_path() of a .safetensors file (as pstore-cli import
    takes it) stores the module's weights: load() into a fresh model gives
    identical outputs, and the file's metadata is the revision's."""
    model, _ = original
    path = os.path.join(scratch_dir, "model.safetensors")
    write_safetensors(path, model.state_dict(), metadata={"format": "pt"})
    name = f"{model_name}@v1"

    client.import_path(path, name, publish=True)

    assert_loads_into_a_fresh_model(client.load(model_name), original)
    with client.open(name) as handle:
        assert handle.metadata() == {"format": "pt"}


def test_pull_into_a_safetensors_file_writes_the_weights(
        client, model_name, scratch_dir, original):
    """Client.pull() of a put state_dict into FILE.safetensors writes a
    file that holds every tensor's bytes."""
    model, _ = original
    name = f"{model_name}@v1"
    client.put(name, model.state_dict())
    path = os.path.join(scratch_dir, "pulled.safetensors")

    client.pull(name, path)

    written = read_safetensors(path)
    assert set(written) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert written[key] == value.numpy().tobytes(), key
