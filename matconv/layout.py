"""Moving between users' ``(N, C, *spatial)`` arrays and the operators' batch-last matrices.

Operators work on 2-D arrays with the batch last, ``(C * prod(spatial), N)`` (see
:mod:`matconv.operators`). Layers return ``(N, C, *spatial)`` arrays that are *views* of such
memory, so the next layer gets its batch-last matrix back without a copy; a C-ordered array from a
user costs one transpose. Values are what they would be in any layout; ``np.ascontiguousarray``
gives a C-ordered copy if one is ever needed.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from .memory import check_memory

__all__ = ["float_dtype", "check_float_array", "batched_input", "to_batch_last",
           "from_batch_last", "columns"]

_FLOATS = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_FLOAT_NAMES = {**_FLOATS, "f4": _FLOATS["float32"], "f": _FLOATS["float32"],
                "f8": _FLOATS["float64"], "d": _FLOATS["float64"]}


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as ``np.float32`` or ``np.float64``; ``TypeError`` for anything else.

    Accepts numpy dtypes and scalar types, their names (``'float32'``, ``'f4'``, ``'f'``, ...),
    and torch's ``float32``/``float64`` (by name, without importing torch).

    >>> float_dtype("float32"), float_dtype(np.float64)
    (dtype('float32'), dtype('float64'))
    """
    if type(dtype).__module__ == "torch":
        dtype = str(dtype).removeprefix("torch.")
    if isinstance(dtype, str):
        dt = _FLOAT_NAMES.get(dtype)
    elif isinstance(dtype, (type, np.dtype)):
        try:
            dt = np.dtype(dtype)
        except Exception:  # numpy raises several kinds for what is not a dtype
            dt = None
    else:
        dt = None
    if dt is None or dt.name not in _FLOATS:
        raise TypeError(f"dtype must be np.float32 or np.float64 (or 'float32'/'float64'), got "
                        f"{dtype!r}")
    return dt


def check_float_array(x, name: str, dtype) -> np.ndarray:
    """``x`` as an ndarray of ``dtype``; ``TypeError`` unless it holds real floats.

    A float array of another precision is converted to ``dtype`` (the layer's precision decides
    the arithmetic, like a ``torch`` module's parameters do).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array (float32 or float64), got "
                        f"dtype {x.dtype}; convert with x.astype(np.float32)")
    return x if x.dtype == dtype else x.astype(dtype)


def spatial_names(nd: int) -> str:
    return {1: "L", 2: "H, W", 3: "D, H, W"}[nd]


def batched_input(x, nd: int, owner: str, channels=None, dtype=None, name="input"):
    """Check an ``(N, C, *spatial)`` or ``(C, *spatial)`` float array; return it batched.

    Returns ``(x, batched)`` where ``x`` has a batch axis and ``batched`` says whether it came
    with one (PyTorch layers accept one unbatched example too). ``dtype=None`` keeps the
    input's float dtype.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy ndarray, got {type(x).__name__}")
    x = check_float_array(x, name, x.dtype if dtype is None and x.dtype.kind == "f" else
                          (dtype or np.float64))
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{owner} expects {name} of shape (N, C, {spatial_names(nd)}) or "
                         f"(C, {spatial_names(nd)}), got shape {x.shape}")
    if channels is not None and x.shape[-nd - 1] != channels:
        raise ValueError(f"{owner} expects {channels} channels in {name}, got "
                         f"{x.shape[-nd - 1]} (shape {x.shape})")
    if 0 in x.shape[-nd - 1:]:  # an empty batch is fine (like PyTorch); empty examples are not
        raise ValueError(f"{owner} expects {name} with at least one channel and one cell in "
                         f"every spatial dimension, got shape {x.shape}")
    batched = x.ndim == nd + 2
    return (x if batched else x[None]), batched


def to_batch_last(x: np.ndarray) -> np.ndarray:
    """``(N, *rest)`` -> C-contiguous ``(prod(rest), N)``, free when ``x`` is a batch-last view.

    >>> x = np.arange(6.0).reshape(2, 3)
    >>> to_batch_last(x)
    array([[0., 3.],
           [1., 4.],
           [2., 5.]])
    """
    rows = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # explicit: N may be 0
    if rows.T.flags.c_contiguous:
        return rows.T
    check_memory(rows.size * rows.itemsize, f"a batch-last copy of an array of shape {x.shape}",
                 "use a smaller batch")
    if rows.shape[1] * rows.itemsize % 2048 == 0:  # rows whose length aliases in the cache
        return _transpose(rows)
    return np.ascontiguousarray(rows.T)


_scratch = threading.local()  # one scratch buffer per thread and dtype


def _transpose(a: np.ndarray) -> np.ndarray:
    """``a.T`` as a new C-contiguous array, fast for any row length.

    numpy's strided copy reads ``a`` down its columns; when a row is a multiple of 2 KiB every
    read of a column falls in a few cache sets and the copy crawls (5x slower for a (256, 1024)
    float32 array here). Copying the rows first into a scratch buffer whose row
    stride is an odd multiple of 64 bytes spreads them over the cache; the buffer is reused
    across calls because fresh memory costs page faults.
    """
    n, m = a.shape
    line = 64 // a.itemsize
    stride = -(-m // line) * line
    if (stride // line) % 2 == 0:
        stride += line
    need = n * stride
    buffers = _scratch.__dict__
    buf = buffers.get(a.dtype)
    if buf is None or buf.size < need:
        buf = buffers[a.dtype] = np.empty(need, dtype=a.dtype)
    padded = buf[:need].reshape(n, stride)[:, :m]
    np.copyto(padded, a)
    out = np.empty((m, n), dtype=a.dtype)
    np.copyto(out, padded.T)
    return out


def columns(a: np.ndarray, batched: bool) -> np.ndarray:
    """``a`` as batch-last ``(size, N)``: its examples as columns (one column if not batched)."""
    return to_batch_last(a if batched else a[None])


def from_batch_last(X: np.ndarray, shape) -> np.ndarray:
    """``(prod(shape[1:]), N)`` -> an ``(N, *shape[1:])`` view of the same memory.

    >>> X = np.arange(6.0).reshape(3, 2)
    >>> from_batch_last(X, (2, 3))
    array([[0., 2., 4.],
           [1., 3., 5.]])
    """
    return X.T.reshape(shape)
