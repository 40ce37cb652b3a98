"""Working buffers of the operators, reused across calls (fresh memory costs page faults), and the
row gather every unfold is.

>>> pool = BufferPool()
>>> buf = pool.take((2, 3), np.float64, "a buffer")
>>> pool.give(buf)
>>> pool.take((2, 3), np.float64, "a buffer") is buf
True

Results handed to the caller come back by themselves once no one holds them:

>>> y = pool.result((256, 64), np.float64, "an output")
>>> y_address = y.ctypes.data
>>> del y                                          # the caller drops it (and every view of it)
>>> pool.result((256, 64), np.float64, "an output").ctypes.data == y_address
True
"""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

from ..lowering.cache import cached
from ..memory import check_memory

__all__ = ["BufferPool", "shared_pool", "gather_rows"]


def _unheld(arrays: list) -> list:
    """Whether each of ``arrays`` is referred to by nothing but the list (no caller, no view:
    a numpy view refers to its base)."""
    return [sys.getrefcount(a) <= _UNHELD for a in arrays]


def _references_in_loop(arrays: list) -> list:
    return [sys.getrefcount(a) for a in arrays]


# what ``getrefcount`` reads for an array only the list holds, measured the way ``_unheld``
# reads it (the list, the comprehension's name, the call's argument) rather than assumed
_UNHELD = _references_in_loop([np.empty(0)])[0]


class BufferPool:
    """Reusable arrays by shape and dtype (fresh memory costs page faults on every call).

    ``take`` hands out a free buffer or a new one (checked against the memory budget); ``give``
    returns it. A buffer is never handed out twice before it is given back.

    ``result`` is for arrays handed to the caller (a layer's output, an input gradient), which
    no one gives back: the pool keeps a reference to each and hands one out again once that is
    the only reference left. A training step then reuses last step's memory instead of asking
    the system for fresh pages: glibc gives the freed top of its heap back, and touching it
    again costs a page fault per 4 KiB (0.3-0.5 ms of a 3 ms LeNet step).
    """

    _KEEP = 2  # free buffers kept per shape and dtype
    _KEEP_RESULTS = 4  # results kept per shape and dtype (layers of one size share them)
    RESULT_MIN_BYTES = 64 << 10  # smaller results and ...
    RESULT_BYTES = 16 << 20  # ... bigger ones are left to the allocator (faults matter less)
    RESULTS_TOTAL = 256 << 20  # the results a pool keeps, at most

    def __init__(self):
        self._free = {}
        self._results = {}
        self._result_bytes = 0
        self._lock = threading.Lock()

    def take(self, shape, dtype, what: str) -> np.ndarray:
        key = (tuple(shape), np.dtype(dtype))
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
        return self._new(key, what)

    def result(self, shape, dtype, what: str) -> np.ndarray:
        """An uninitialised array to hand to the caller: one this pool handed out before and
        that nothing refers to any more, or a new one (kept, unless it is big)."""
        key = (tuple(shape), np.dtype(dtype))
        if math.prod(key[0]) * key[1].itemsize < self.RESULT_MIN_BYTES:
            return self._new(key, what)  # the allocator's free lists serve these without faults
        with self._lock:
            kept = self._results.get(key)
            if kept:
                for buf, free in zip(kept, _unheld(kept)):
                    if free:
                        return buf
        buf = self._new(key, what)
        if buf.nbytes <= self.RESULT_BYTES:
            with self._lock:
                kept = self._results.setdefault(key, [])
                if len(kept) < self._KEEP_RESULTS and self._room_for(buf.nbytes):
                    kept.append(buf)
                    self._result_bytes += buf.nbytes
        return buf

    def _room_for(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more results fit in :attr:`RESULTS_TOTAL`, after dropping the
        results nothing holds (other shapes: a batch size no longer used)."""
        if self._result_bytes + nbytes <= self.RESULTS_TOTAL:
            return True
        for key, kept in list(self._results.items()):
            still = [a for a, free in zip(kept, _unheld(kept)) if not free]
            self._result_bytes -= sum(a.nbytes for a in kept) - sum(a.nbytes for a in still)
            if still:
                self._results[key] = still
            else:
                del self._results[key]
        return self._result_bytes + nbytes <= self.RESULTS_TOTAL

    @staticmethod
    def _new(key, what):
        shape, dtype = key
        check_memory(math.prod(shape) * dtype.itemsize, f"{what} ({' x '.join(map(str, shape))})",
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
        """Bytes the pool keeps: free working buffers and the results it may hand out again."""
        return sum(b.nbytes for kept in (*self._free.values(), *self._results.values())
                   for b in kept)


def shared_pool() -> BufferPool:
    """The one pool of results (every operator's outputs and input gradients), kept in the one
    cache (``clear_caches`` empties it). One pool, not one per plan: results of a shape are
    reused whichever layer made them, so a training step's peak memory stays near what the
    allocator alone needs (LeNet: 8.6 MB, 9.4 MB with a pool per plan, 7.8 MB with none)."""
    return cached(("the shared buffer pool",), BufferPool)


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
