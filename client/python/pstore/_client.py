"""pstore.Client: a model from pstored straight into torch tensors or numpy
arrays, and the calls of pstore-cli from Python.

The bytes move in the C++ client (``pstore._pstore``, over
client/pstore_client.h) with the GIL released: every chunk and every tensor
is checked against its XXH3-64 as it arrives, failed streams are retried,
and TLS and tokens work as in pstore-cli. A tensor comes back in memory that
the C++ client wrote once and that the returned tensor owns (no second
copy); it is freed with the last tensor or array that uses it.

One Client may be used from many threads at once.
"""

import os
import sys

import numpy as np

from . import _dtypes
from . import _errors
from . import _pstore
from ._quantized import QuantizedTensor

DEFAULT_ADDRESS = "127.0.0.1:7070"
_TIERS = ("dram", "nvme")

# Whether the allocator was tuned (see malloc_tuned); None until the first
# Client.
_malloc_tuned = None


def malloc_tuned():
    """Returns whether pstore set glibc's allocator of this process to keep
    large freed buffers on the heap (True), left it alone because
    ``$PSTORE_MALLOC_DEFAULTS`` is set or ``$GLIBC_TUNABLES`` has malloc
    settings (False), or has not been asked yet: no Client was made
    (None). See client/python/README.md, "Memory"."""
    return _malloc_tuned


def set_memory_pool(nbytes):
    """Sets how much freed tensor memory pstore keeps for the next load of
    the same sizes (default 2 GiB, or ``$PSTORE_POOL_BYTES``; 0 keeps
    none), freeing what is held beyond it. See client/python/README.md,
    "Memory"."""
    if nbytes < 0:
        raise _errors.InvalidArgument("the pool's size must be >= 0 bytes")
    _pstore.set_pool_bytes(int(nbytes))


def memory_pool():
    """Returns (bytes held, capacity) of the pool of freed tensor memory."""
    return tuple(_pstore.pool_bytes())


def release_memory():
    """Frees the tensor memory the pool holds (its capacity stays)."""
    _, capacity = _pstore.pool_bytes()
    _pstore.set_pool_bytes(0)
    _pstore.set_pool_bytes(capacity)


def _check_framework(framework):
    if framework not in ("pt", "np"):
        raise _errors.InvalidArgument(
            f'framework must be "pt" (torch) or "np" (numpy), not '
            f'{framework!r}')
    if framework == "pt":
        _dtypes.torch_module()


def _check_encoding(encoding):
    if encoding not in _dtypes.ENCODINGS:
        raise _errors.InvalidArgument(
            f"unknown encoding {encoding!r}: want one of "
            f"{' '.join(_dtypes.ENCODINGS)}")


def _as_output(info, flat, framework):
    """Returns the flat uint8 array ``flat`` of a read that ``info``
    describes as what the user asked for: a tensor of its dtype and shape,
    or a QuantizedTensor."""
    encoding = info["encoding"]
    if encoding in _dtypes.QUANTIZED_ENCODINGS:
        data = flat
        if framework == "pt":
            data = _dtypes.torch_module().from_numpy(flat)
        return QuantizedTensor(data, info["shape"], encoding, info["dtype"],
                               info.get("quantization_error"))
    dtype = _dtypes.ENCODING_DTYPES.get(encoding, info["dtype"])
    return _dtypes.from_bytes(flat, dtype, tuple(info["shape"]), framework)


def _dtype_name(key, value):
    """Returns the safetensors dtype of torch tensor or numpy array (or
    scalar) ``value``, stored as tensor ``key``; InvalidArgument naming it
    for anything else."""
    try:
        if isinstance(value, np.ndarray) or np.isscalar(value):
            return _dtypes.name_of_numpy(np.asarray(value).dtype)
        torch = _dtypes.torch_module()
        if isinstance(value, torch.Tensor):
            return _dtypes.name_of_torch(value.dtype)
    except _errors.InvalidArgument as error:
        raise _errors.InvalidArgument(f"{key}: {error.message}") from None
    raise _errors.InvalidArgument(
        f"{key}: cannot store a {type(value).__name__}: give torch tensors "
        "or numpy arrays")


def _as_bytes(value):
    """Returns (shape, flat C-contiguous uint8 numpy array) of a torch
    tensor or numpy array, sharing its memory where it is contiguous and on
    the host already (else a copy)."""
    if isinstance(value, np.ndarray) or np.isscalar(value):
        array = np.asarray(value)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        return array.shape, array.reshape(-1).view(np.uint8)
    torch = _dtypes.torch_module()
    tensor = value.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    tensor = tensor.contiguous()
    shape = tuple(tensor.shape)
    if tensor.numel() == 0:  # Its strides may be anything.
        return shape, np.empty(0, dtype=np.uint8)
    flat = tensor.reshape(-1)
    if flat.dtype != torch.uint8:
        flat = flat.view(torch.uint8)
    return shape, flat.numpy()


class _ProgressBar:
    """Prints a load's progress to stderr, on one line."""

    def __init__(self, what):
        self._what = what

    def __call__(self, done, total):
        percent = 100 * done // total if total else 100
        sys.stderr.write(f"\rpstore: {self._what} {done / 2**20:.1f} of "
                         f"{total / 2**20:.1f} MiB ({percent}%)")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class Client:
    """A connection to one pstored.

    ``addr`` is "HOST:PORT" (default: ``$PSTORE_ADDR``, else
    "127.0.0.1:7070"); ``token`` the bearer token of a pstored started with
    --tokens_file (default: ``$PSTORE_TOKEN``); ``tls_ca`` the PEM file of
    the CA that signs the server's certificate (turns TLS on), ``tls_cert``
    and ``tls_key`` this client's for mutual TLS, ``tls_server_name`` the
    name to check the certificate against when it is not the address's
    host; ``timeout`` the deadline of each call in seconds (default: 600);
    ``channels`` the TCP connections that parallel streams spread over
    (default: 4). Connects on first use.
    """

    def __init__(self, addr=None, token=None, tls_ca=None, tls_cert=None,
                 tls_key=None, timeout=None, *, tls_server_name=None,
                 channels=4):
        if addr is None:
            addr = os.environ.get("PSTORE_ADDR") or DEFAULT_ADDRESS
        if token is None:
            token = os.environ.get("PSTORE_TOKEN", "")
        if timeout is not None and timeout <= 0:
            raise _errors.InvalidArgument("timeout must be positive seconds")
        global _malloc_tuned
        if _malloc_tuned is None:
            _malloc_tuned = _pstore.keep_freed_buffers_on_heap()
        self.address = addr
        self._client = _pstore.Client(
            addr, token or "", tls_ca or "", tls_cert or "", tls_key or "",
            tls_server_name or "", float(timeout or 0), int(channels))

    def __repr__(self):
        return f"pstore.Client({self.address!r})"

    # --- Loading ---

    def load(self, name, *, encoding="raw", streams=4, framework="pt",
             progress=False):
        """Loads every tensor of revision ``name`` ("MODEL" for the latest,
        or "MODEL@REV") and returns ``{tensor name: tensor}``, in the
        revision's order.

        ``framework="pt"`` gives torch tensors, ``"np"`` numpy arrays (see
        pstore._dtypes for the types numpy lacks). ``encoding`` "raw" gives
        the stored bytes; "f32", "f16" and "bf16" convert float tensors on
        the server (others come raw); "q8_0" and "q4_0" give each tensor
        that quantizes as a QuantizedTensor. ``streams`` parallel streams;
        ``progress`` True prints progress to stderr, or a callable gets
        (bytes done, bytes in all). Files and shard headers of a revision
        imported from a directory are left out (``files()`` reads them).

        Peak memory is the model's size: every tensor's memory is allocated
        before the streams start and written once. A KeyboardInterrupt
        cancels the streams and is raised within about 50 ms.
        Raises NotFound, DataLoss (bytes that fail a check: no tensor is
        returned), Unavailable, ...
        """
        _check_framework(framework)
        _check_encoding(encoding)
        if progress is True:
            progress = _ProgressBar(f"load {name}")
        elif not progress:
            progress = None
        revision, tensors = self._client.pull(name, encoding, int(streams),
                                              progress)
        out = {}
        for info, flat in tensors:
            if info["kind"] != "tensor":
                continue
            out[info["tensor"]] = _as_output(info, flat, framework)
        return out

    def open(self, name, *, framework="pt", encoding="raw"):
        """Returns a handle on revision ``name`` shaped like
        ``safetensors.safe_open``: ``keys()``, ``metadata()``,
        ``get_tensor(key)`` and ``get_slice(key)[...]``. The revision is
        resolved once, here: "MODEL" stays the revision that was latest
        when the handle opened. Use it as a context manager."""
        _check_framework(framework)
        _check_encoding(encoding)
        from ._safe_open import SafeOpen
        return SafeOpen(self, self._client.revision(name, False), framework,
                        encoding)

    def get_tensor(self, name, *, encoding="raw", framework="pt"):
        """Reads one tensor ("MODEL@REV/TENSOR", or "MODEL/TENSOR" for the
        latest revision) in exactly the encoding asked for: InvalidArgument
        where it does not apply (an integer tensor as f16, a tensor whose
        last dimension is not a multiple of 32 quantized), where ``load``
        and ``open`` give such tensors as stored."""
        _check_framework(framework)
        _check_encoding(encoding)
        info, flat = self._client.read(name, encoding, 0, 0)
        return _as_output(info, flat, framework)

    def files(self, name):
        """Returns ``{path: bytes}`` of the files of a revision imported
        from a directory (config.json, tokenizer.json, ...)."""
        revision = self._client.revision(name, False)
        out = {}
        for info in revision["tensors"]:
            if info["kind"] == "file":
                _, flat = self._client.read(info["name"], "raw", 0, 0)
                out[info["tensor"]] = flat.tobytes()
        return out

    def pull(self, name, path, *, encoding="raw", streams=4):
        """Pulls revision ``name`` into ``path``, resuming from what is
        there, as ``pstore-cli pull`` does and deciding as it does: a
        directory if ``path`` is one or ends in "/", or, for a revision
        imported from a directory, does not exist and does not end in
        ".safetensors" or ".gguf" (every file as it was); else one file
        (GGUF for ".gguf", else safetensors). Returns a dict with files,
        bytes, reused_bytes and fetched_bytes."""
        return self._client.pull_to(name, os.fspath(path), encoding,
                                    int(streams))

    # --- Storing ---

    def put(self, name, tensors, *, metadata=None, publish=False):
        """Stores ``tensors`` (a dict of torch tensors or numpy arrays, a
        state_dict say) as revision ``name`` ("MODEL@REV"): creates the
        revision with ``metadata`` (a dict of str), puts every tensor, one
        at a time (a tensor on a GPU, or not contiguous, is copied to the
        host just before its put), and publishes the revision if
        ``publish``. Returns the revision as ``stat`` does.

        An open revision that exists takes the tensors, if ``metadata`` is
        None or what it has already (else FailedPrecondition: a revision's
        metadata is set when it is created); a published one raises
        FailedPrecondition. Every name and dtype is checked before anything
        is stored (InvalidArgument). A put that fails part way leaves the
        revision open with the tensors stored so far: ``put`` the same
        dict again to complete it, or ``delete`` the revision.
        """
        if "@" not in name or "/" in name:
            raise _errors.InvalidArgument(
                f"put takes MODEL@REV, not {name!r}")
        if not hasattr(tensors, "items"):
            raise _errors.InvalidArgument(
                "put takes a dict of tensor name to torch tensor or numpy "
                "array")
        meta = {}
        for key, value in (metadata or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise _errors.InvalidArgument(
                    f"metadata must map str to str; {key!r}: {value!r} "
                    "does not")
            meta[key] = value
        dtypes = {}
        for key, value in tensors.items():
            if not isinstance(key, str) or not key:
                raise _errors.InvalidArgument(
                    f"tensor names must be non-empty str, not {key!r}")
            dtypes[key] = _dtype_name(key, value)
        try:
            self._client.create_revision(name, meta)
        except _errors.AlreadyExists:
            existing = self._client.revision(name, False)
            if existing["published"]:
                raise _errors.FailedPrecondition(
                    f"revision {name} is published: put into a new one"
                ) from None
            if metadata is not None and existing["metadata"] != meta:
                raise _errors.FailedPrecondition(
                    f"revision {name} exists with other metadata "
                    f"({existing['metadata']}): a revision's metadata is "
                    "set when it is created") from None
        for key, value in tensors.items():
            shape, flat = _as_bytes(value)
            self._client.put(f"{name}/{key}", dtypes[key], list(shape), flat)
            del flat
        if publish:
            self._client.publish(name)
        return self.stat(name)

    def publish(self, name):
        """Publishes revision ``name`` ("MODEL@REV"): it becomes the
        model's latest and can no longer change."""
        return self._client.publish(name)

    def import_path(self, path, name, *, publish=False, jobs=4):
        """Imports a model directory, a .safetensors or a .gguf file as new
        revision ``name``, as ``pstore-cli import`` does. Returns a dict
        with shards, tensors, files and bytes."""
        return self._client.import_path(os.fspath(path), name, bool(publish),
                                        int(jobs))

    # --- Looking ---

    def stat(self, name):
        """Returns what pstored keeps about ``name``: a revision
        ("MODEL@REV" or "MODEL": a dict with name, published, metadata,
        total_bytes, tensors, ...) or a tensor ("MODEL@REV/TENSOR": a dict
        with dtype, shape, stored_byte_length, xxh3_64, kind, ...)."""
        model_part = name.split("/", 1)
        if len(model_part) == 2 and model_part[1]:
            return self._client.stat(name)
        return self._client.revision(name, False)

    def ls(self, name=None):
        """Lists the models (no ``name``: a list of dicts with name,
        latest_revision and revisions), or the entries of revision
        ``name`` (dicts as ``stat`` of a tensor gives)."""
        if name is None:
            return self._client.list_models()
        return self._client.revision(name, False)["tensors"]

    # --- Operator calls ---

    def pin(self, name):
        """Pins revision ``name`` in DRAM; returns the bytes pinned."""
        return self._client.pin(name)

    def unpin(self, name):
        """Unpins revision ``name``."""
        self._client.unpin(name)

    def prefetch(self, name, tier="dram"):
        """Loads revision ``name`` into ``tier`` ("dram" or "nvme") ahead of
        use; returns a dict with the blocks and bytes it read."""
        if tier not in _TIERS:
            raise _errors.InvalidArgument(
                f'tier must be "dram" or "nvme", not {tier!r}')
        return self._client.prefetch(name, tier)

    def status(self):
        """Returns pstored's status (version, tiers, bytes) as a dict."""
        return self._client.status()

    def delete(self, name):
        """Deletes revision ``name`` ("MODEL@REV") and its tensors."""
        self._client.delete_revision(name)

    def close(self):
        """Closes the connections; the client cannot be used after."""
        self._client = _Closed()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Closed:
    def __getattr__(self, name):
        raise _errors.FailedPrecondition("the client is closed")

