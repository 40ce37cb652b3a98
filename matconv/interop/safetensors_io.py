"""``.safetensors`` files through the ``safetensors`` package (an optional extra:
``pip install safetensors``).

The format is an 8-byte header length, a JSON header (each tensor's dtype, shape and byte range;
string metadata under ``"__metadata__"``) and the raw little-endian data. Before the package
reads anything, the header is parsed here and checked: its length against the file, every
tensor's dtype against what the caller allows, its byte range against its shape and the file,
and the sizes together against the memory budget. Nothing in the file is executed.
"""
from __future__ import annotations

import importlib
import json
import math
import os

import numpy as np

from ..fileio import FileFormatError, open_regular
from ..memory import check_memory

__all__ = ["require_safetensors", "encode_safetensors", "read_safetensors", "SUFFIX"]

SUFFIX = ".safetensors"
#: the format's own limit for a header
MAX_HEADER = 100 * 2**20
_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
           "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
           "F16": np.float16, "F32": np.float32, "F64": np.float64}


def require_safetensors():
    """``safetensors.numpy``, or an ``ImportError`` saying how to install it."""
    try:
        return importlib.import_module("safetensors.numpy")
    except ImportError as exc:
        raise ImportError("reading or writing .safetensors files needs the safetensors package: "
                          "pip install safetensors (or pip install matconv[safetensors])"
                          ) from exc


def encode_safetensors(arrays: dict, metadata: dict) -> bytes:
    """The bytes of a ``.safetensors`` file holding ``arrays`` and string ``metadata``.

    Example (needs ``pip install safetensors``)::

        data = encode_safetensors({"w": np.ones(2)}, {"note": "hi"})   # bytes: length, JSON, data
    """
    st = require_safetensors()
    # np.ascontiguousarray would turn a 0-d array (num_batches_tracked) into shape (1,)
    return st.save({name: np.array(a, order="C", copy=not a.flags.c_contiguous)
                    for name, a in arrays.items()}, metadata=metadata)


def read_safetensors(path: str, *, kinds: str, what: str, error=FileFormatError):
    """``(arrays, metadata)`` of a ``.safetensors`` file that may come from anyone.

    Parameters
    ----------
    path : str
    kinds : str
        Allowed numpy dtype kinds (``"biuf"``).
    what : str
        What the file should be, for messages.
    error : subclass of FileFormatError
        Raised, naming ``path``, for a damaged, lying or refused file.
    """
    def fail(problem):
        return error(f"{path!r} is not a readable {what}: {problem}")

    with open_regular(path, what) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        if len(head) < 8:
            raise fail("it ends before its header length (8 bytes)")
        n = int.from_bytes(head, "little")
        if n > min(MAX_HEADER, size - 8):
            raise fail(f"its header claims {n} bytes; the file has {size - 8} after the length "
                       f"and the format allows {MAX_HEADER}")
        try:
            header = json.loads(fh.read(n))
        except (ValueError, RecursionError) as exc:
            raise fail(f"its header is not JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise fail(f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise fail("its __metadata__ is not a map of strings to strings")
    total = sum(_entry_bytes(name, entry, size - 8 - n, kinds, fail)
                for name, entry in header.items())
    try:
        check_memory(total, f"reading the arrays of {what} {path!r}",
                     "load it on a machine with more memory")
    except ValueError as exc:
        raise error(str(exc)) from None
    st = require_safetensors()
    try:
        arrays = st.load_file(path)
    except Exception as exc:  # the package's SafetensorError and friends: a damaged file
        raise fail(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    return {name: np.array(a) for name, a in arrays.items()}, metadata


def _entry_bytes(name, entry, data_size, kinds, fail) -> int:
    """Bytes of one header entry, after checking its dtype, shape and byte range."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise fail(f"entry {str(name)[:60]!r} is not {{dtype, shape, data_offsets}}")
    dtype = _DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None or np.dtype(dtype).kind not in kinds:
        allowed = sorted(k for k, v in _DTYPES.items() if np.dtype(v).kind in kinds)
        raise fail(f"entry {name!r} has dtype {str(entry['dtype'])[:20]!r}; allowed: "
                   f"{', '.join(allowed)}")
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not isinstance(shape, list) or len(shape) > 64 or not all(
            type(d) is int and d >= 0 for d in shape):
        raise fail(f"entry {name!r} has an invalid shape {str(shape)[:60]}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(
            type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= data_size:
        raise fail(f"entry {name!r} has byte range {str(offsets)[:60]} outside the "
                   f"{data_size} bytes of data")
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise fail(f"entry {name!r} holds {offsets[1] - offsets[0]} bytes but its shape "
                   f"{shape} of {entry['dtype']} needs {nbytes}")
    return nbytes
