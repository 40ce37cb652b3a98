"""Shares of work on several cores, and GEMMs small enough to stay on the thread that calls them.

numpy and scipy release the GIL in gathers, sparse products and BLAS calls, so a layer can use
several cores from Python threads. Two rules keep this pool from fighting OpenBLAS for them:

* :func:`run_shares` cuts the work into one *share* per thread; the caller runs the first share
  itself and the pool's threads the others, so a call never waits on a queue it is not working;
* every BLAS call made inside a share is a piece of at most :data:`SINGLE_THREAD_MNK`
  multiply-adds (``m n k``), small enough that OpenBLAS does not start its own threads for it,
  so they stay asleep while the pool's run (measured per thread with OpenBLAS 0.3.31, see
  ``benchmarks/README.md``). :func:`gemm_into` and :func:`gemm_sum` cut bigger products into
  such pieces, stacked so that numpy loops over them in C.

The pool is shared by every layer and thread of the process: two threads running separate layers
queue their shares on the same workers (each caller still computes its own first share).
``set_num_threads(1)`` turns it off: everything then runs on the calling thread, with OpenBLAS
threading its GEMMs as usual.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["get_num_threads", "set_num_threads", "run_shares", "gemm_into", "gemm_sum",
           "split_evenly", "SINGLE_THREAD_MNK", "other_blas_single_threaded"]

#: largest ``m n k`` of one BLAS call made inside a share. OpenBLAS 0.3.31 runs a product with
#: ``m n k < 10**6`` on the calling thread when one thread calls, but already started its own
#: threads for pieces of 9e5 when two threads called at once; at 2**19 its threads stayed idle
SINGLE_THREAD_MNK = 1 << 19
_MIN_PIECE = 64  # narrowest piece worth a BLAS call before the rows are split instead

_state = threading.local()
_lock = threading.Lock()
_pool = None
_threads = None


@functools.lru_cache(maxsize=1)
def _usable_cores() -> int:
    """The cores this process may run on, read once (a system call per product was measurable
    on small layers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads a layer's blocked products use (default: the usable cores).

    >>> get_num_threads() >= 1
    True
    """
    return _threads if _threads is not None else _usable_cores()


def set_num_threads(n) -> int:
    """Use ``n`` threads for the blocked products (``None``: the usable cores); return the old
    value. ``1`` runs everything on the calling thread.

    >>> old = set_num_threads(1)
    >>> get_num_threads()
    1
    >>> _ = set_num_threads(old)
    """
    global _threads, _pool
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))):
        raise TypeError(f"n (the number of threads) must be an int >= 1 or None, got {n!r}")
    if n is not None and n < 1:
        raise ValueError(f"n (the number of threads) must be an int >= 1 or None, got {n!r}")
    n = None if n is None else int(n)
    previous = get_num_threads()
    with _lock:
        _threads = n
        old, _pool = _pool, None
    if old is not None:
        old.shutdown(wait=False)
    return previous


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers != workers:
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="matconv",
                                       initializer=_mark_worker)
        return _pool


def _mark_worker():
    _state.worker = True


def _forget_pool_in_child():
    global _pool
    _pool = None  # a forked child has none of the parent's threads
    _usable_cores.cache_clear()  # and may be given other cores


os.register_at_fork(after_in_child=_forget_pool_in_child)


def run_shares(fn, shares: int) -> list:
    """``[fn(0), ..., fn(shares - 1)]``, share 0 on the calling thread and the others in the pool.

    Every share is waited for, even when one raises (the first error is raised afterwards), so
    no share still writes into buffers the caller gives back. Inside a pool thread the shares run
    one after the other (no nested waiting).

    >>> run_shares(lambda i: i * i, 3)
    [0, 1, 4]
    """
    if shares <= 1 or getattr(_state, "worker", False):
        return [fn(i) for i in range(shares)]
    futures = [_executor(max(1, get_num_threads() - 1)).submit(fn, i) for i in range(1, shares)]
    results, error = [None] * shares, None
    try:
        results[0] = fn(0)
    except BaseException as exc:  # noqa: BLE001 - re-raised once the other shares are done
        error = exc
    for i, future in enumerate(futures, 1):
        try:
            results[i] = future.result()
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
    if error is not None:
        raise error
    return results


# --------------------------------------------------------------------------- small GEMMs
def _pieces(rows: int, inner: int, n: int):
    """``(row_blocks, width)``: cut an ``(rows x inner) @ (inner x n)`` product into calls of
    ``rows / row_blocks`` rows and ``width`` columns, each within :data:`SINGLE_THREAD_MNK`."""
    blocks = 1
    while True:
        width = SINGLE_THREAD_MNK // max(1, rows // blocks * inner)
        if width >= min(_MIN_PIECE, n) or rows % (2 * blocks) or rows // blocks < 16:
            return blocks, max(1, min(width, n))
        blocks *= 2


def gemm_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, small: bool) -> None:
    """``out[g] = a[g] @ b[g]`` for 3-D ``a`` ``(G, m, k)``, ``b`` ``(G, k, n)``, ``out``
    ``(G, m, n)`` (any strides); with ``small``, as BLAS calls within :data:`SINGLE_THREAD_MNK`.

    The pieces are views made by splitting axes (never a copy), stacked so that one
    ``np.matmul`` loops over them in C.
    """
    G, m, k = a.shape
    n = b.shape[2]
    if not small or m * k * n <= SINGLE_THREAD_MNK:
        np.matmul(a, b, out=out)
        return
    blocks, width = _pieces(m, k, n)
    mb, count = m // blocks, n // width
    a5 = a.reshape(G, blocks, 1, mb, k)
    if count:
        full = count * width
        b5 = b[:, :, :full].reshape(G, 1, k, count, width).transpose(0, 1, 3, 2, 4)
        o5 = out[:, :, :full].reshape(G, blocks, mb, count, width).transpose(0, 1, 3, 2, 4)
        np.matmul(a5, b5, out=o5)
    if count * width < n:
        rest = out[:, :, count * width:]
        np.matmul(a5[:, :, 0], b[:, None, :, count * width:],
                  out=rest.reshape(G, blocks, mb, n - count * width))


def gemm_sum(a: np.ndarray, b: np.ndarray, small: bool) -> np.ndarray:
    """``a[g] @ b[g]`` for 3-D ``a`` ``(G, m, k)`` and ``b`` ``(G, k, n)`` with a long inner
    ``k``; with ``small``, as pieces of ``k`` within :data:`SINGLE_THREAD_MNK`, summed.

    OpenBLAS threads a long-``k`` product with few rows and columns badly (a weight gradient
    ``(16 x 50176) (50176 x 25)`` ran at 4 GFLOP/s); pieces of ``k`` summed do not have that
    problem.
    """
    G, m, k = a.shape
    n = b.shape[2]
    if not small or m * k * n <= SINGLE_THREAD_MNK:
        return np.matmul(a, b)
    blocks, depth = _pieces(m, n, k)
    mb, count = m // blocks, k // depth
    full = count * depth
    a5 = a[:, :, :full].reshape(G, blocks, mb, count, depth).transpose(0, 1, 3, 2, 4)
    b5 = b[:, :full].reshape(G, 1, count, depth, n)
    total = np.matmul(a5, b5).sum(axis=2)                    # (G, blocks, mb, n)
    if full < k:
        total += np.matmul(a[:, :, full:].reshape(G, blocks, mb, k - full), b[:, None, full:])
    return total.reshape(G, m, n)


def split_evenly(n: int, parts: int) -> list:
    """``parts + 1`` edges cutting ``range(n)`` into nearly equal runs.

    >>> split_evenly(10, 3)
    [0, 3, 6, 10]
    """
    return [n * i // parts for i in range(parts + 1)]



@contextlib.contextmanager
def other_blas_single_threaded():
    """Run the block with every BLAS library but numpy's on one thread.

    Wheels of numpy and scipy each bundle their own OpenBLAS. When scipy's (ARPACK's
    orthogonalisations) and numpy's (the operator's GEMMs) take turns inside one loop, the
    threads of each spin while the other's work, and both run several times slower: an ARPACK
    solve for the norm of a 64 -> 64 3x3 layer on 32x32 took 2.1 s, and 0.76 s with scipy's
    library on one thread (``benchmarks/bench_spectral.py``). Without ``threadpoolctl``, or with
    a single BLAS library loaded, nothing changes.

    >>> with other_blas_single_threaded():
    ...     pass
    """
    try:
        from threadpoolctl import ThreadpoolController

        blas = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # pragma: no cover - a speed-up only: never a reason to fail
        yield
        return
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    others = [lib for lib in blas if len(blas) > 1 and not _is_numpys(lib.filepath, numpy_dir)]
    before = [lib.num_threads for lib in others]
    for lib in others:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(others, before):
            lib.set_num_threads(n)


def _is_numpys(path: str, site: str) -> bool:
    """Whether a loaded library is numpy's own (a wheel keeps it in ``numpy.libs`` or inside
    the package)."""
    path = os.path.realpath(path)
    return any(path.startswith(os.path.realpath(os.path.join(site, d)) + os.sep)
               for d in ("numpy.libs", "numpy"))
