"""pstore: ML weights from pstored straight into torch tensors and numpy
arrays.

    import pstore
    client = pstore.Client("127.0.0.1:7070")
    state_dict = client.load("llama")          # MODEL (latest) or MODEL@REV
    model.load_state_dict(state_dict)

    with client.open("llama@v1") as f:         # like safetensors.safe_open
        rows = f.get_slice("lm_head.weight")[0:1024]

Errors are pstore.Error subclasses, one per gRPC code (pstore.NotFound,
pstore.DataLoss, pstore.Unavailable, ...). See client/python/README.md.
"""

from ._errors import (Aborted, AlreadyExists, Cancelled, DataLoss,
                      DeadlineExceeded, Error, FailedPrecondition, Internal,
                      InvalidArgument, NotFound, OutOfRange, PermissionDenied,
                      ResourceExhausted, Unauthenticated, Unavailable,
                      Unimplemented, Unknown)
from ._client import (Client, malloc_tuned, memory_pool, release_memory,
                      set_memory_pool)
from ._quantized import QuantizedTensor
from ._safe_open import SafeOpen, TensorSlice

__version__ = "0.1.0"

__all__ = [
    "Client", "malloc_tuned", "memory_pool", "release_memory",
    "set_memory_pool", "SafeOpen", "TensorSlice", "QuantizedTensor", "Error",
    "Aborted", "AlreadyExists", "Cancelled", "DataLoss", "DeadlineExceeded",
    "FailedPrecondition", "Internal", "InvalidArgument", "NotFound",
    "OutOfRange", "PermissionDenied", "ResourceExhausted", "Unauthenticated",
    "Unavailable", "Unimplemented", "Unknown"
]
