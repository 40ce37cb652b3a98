"""Working buffers of the operators, reused across calls (fresh memory costs page faults), and the
row gather every unfold is.

>>> pool = BufferPool()
>>> buf = pool.take((2, 3), np.float64, "a buffer")
>>> pool.give(buf)
>>> pool.take((2, 3), np.float64, "a buffer") is buf
True
"""
from __future__ import annotations

import math
import threading

import numpy as np

from ..memory import check_memory

__all__ = ["BufferPool", "gather_rows"]


class BufferPool:
    """Reusable arrays by shape and dtype (fresh memory costs page faults on every call).

    ``take`` hands out a free buffer or a new one (checked against the memory budget); ``give``
    returns it. A buffer is never handed out twice before it is given back.
    """

    _KEEP = 2  # free buffers kept per shape and dtype

    def __init__(self):
        self._free = {}
        self._lock = threading.Lock()

    def take(self, shape, dtype, what: str) -> np.ndarray:
        key = (tuple(shape), np.dtype(dtype))
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
        check_memory(math.prod(shape) * key[1].itemsize, f"{what} ({' x '.join(map(str, shape))})",
                     "use a smaller batch")
        return np.empty(shape, dtype=dtype)

    def give(self, buf: np.ndarray) -> None:
        key = (buf.shape, buf.dtype)
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self._KEEP and not any(b is buf for b in free):
                free.append(buf)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for free in self._free.values() for b in free)


def gather_rows(unfold, X: np.ndarray, out: np.ndarray, fill=0) -> np.ndarray:
    """``S @ X`` into ``out``: ``S`` has one 1 per row, so the product is a row gather.

    Rows of ``S`` without a 1 (padding) get ``fill``: 0 for a linear map, ``-inf`` for a max.
    """
    if X.shape[0] != unfold.shape[1]:
        raise ValueError(f"the input has {X.shape[0]} rows, the unfold structure reads "
                         f"{unfold.shape[1]}")
    np.take(X, unfold.gather, axis=0, out=out, mode="clip")  # 'clip' avoids a buffered copy
    if unfold.pad_rows.size:
        out[unfold.pad_rows] = fill
    return out
