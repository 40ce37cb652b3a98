"""Max pooling and maxout: the forward picks each window's winner and builds the selection
matrix ``P`` of that batch (one 1 per output, at its winner); the backward is ``P.T``.

Windows come from :mod:`matconv.lowering` (sliding pools, adaptive bins, groups of channels) as
unfold structures; a :class:`MaxPlan` gathers them (padding read as ``-inf``) and keeps the first
maximum in window order, NaN winning, exactly as PyTorch does.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..geometry import PoolGeometry
from ..lowering import (
    adaptive_windows,
    cached,
    channel_windows,
    fractional_windows,
    index_dtype,
    pool_windows,
    window_pattern,
)
from ..memory import check_memory
from .base import Operator
from .buffers import BufferPool, gather_rows, shared_pool

__all__ = ["MaxPlan", "Selection", "max_pool_plan", "adaptive_max_plan", "channel_max_plan",
           "first_max", "fractional_max", "unpool_operator"]


def first_max(cols: np.ndarray):
    """``(best, arg)`` over axis 1 of ``cols`` ``(B, K, M)``: PyTorch's rule, the first maximum
    in window order (strictly greater replaces), a NaN always replacing. (Where 0.0 and -0.0
    tie, ``arg`` is the first of them and ``best`` may carry either sign.)

    >>> best, arg = first_max(np.array([[[1.0, 5.0], [3.0, 5.0], [2.0, np.nan]]]))
    >>> best, arg
    (array([[ 3., nan]]), array([[1, 2]]))
    """
    best, arg = _first_max([cols[:, k] for k in range(cols.shape[1])])
    return best, arg.astype(np.intp)


def _first_max(taps: list):
    """:func:`first_max` over ``taps``, a list of equally shaped arrays (views of the windows'
    cells, any strides), in window order; ``arg`` as the smallest integer type that holds it."""
    K = len(taps)
    best = np.maximum(taps[0], taps[1]) if K > 1 else taps[0].copy()
    for tap in taps[2:]:
        np.maximum(best, tap, out=best)
    if np.isnan(best).any():  # NaN windows follow PyTorch's scan (a later NaN replaces)
        return _first_max_scan(taps)
    # without NaN the winner is the first tap equal to the maximum: arg counts the leading taps
    # that are not, branch-free (a masked copy or np.where on a random mask runs ~50x slower
    # than this arithmetic: branch mispredictions); about half the passes of the scan
    small = np.int8 if K <= 127 else np.intp
    arg = np.zeros(best.shape, dtype=small)
    missed = np.not_equal(taps[0], best)
    differs = np.empty(best.shape, dtype=bool)
    for k in range(1, K):
        arg += missed
        if k < K - 1:
            np.not_equal(taps[k], best, out=differs)
            missed &= differs
    return best, arg


def _first_max_scan(taps: list):
    """:func:`_first_max` as PyTorch's loop: ``best`` replaced where a tap is greater or NaN."""
    K = len(taps)
    best = taps[0].copy()
    small = np.int8 if K <= 127 else np.intp
    arg = np.zeros(best.shape, dtype=small)
    better = np.empty(best.shape, dtype=bool)
    nan = np.empty(best.shape, dtype=bool)
    step = np.empty(best.shape, dtype=small)
    for k in range(1, K):
        c = taps[k]
        np.greater(c, best, out=better)
        better |= np.isnan(c, out=nan)
        # maximum propagates NaN and keeps ``best`` on ties: the same values as the rule
        np.maximum(best, c, out=best)
        np.subtract(small(k), arg, out=step)  # arg += better * (k - arg), branch-free
        step *= better
        arg += step
    return best, arg


class Selection(Operator):
    """``P``: output row ``r`` of example ``n`` reads input row ``winners[r, n]`` of example ``n``.

    A data-dependent operator (``batch`` = the number of examples it was recorded for):
    ``matmat`` gathers, ``rmatmat`` scatters each gradient to its winner, so overlapping
    windows accumulate. ``pattern()`` is every cell of every window: what *could* win.

    >>> P = Selection(np.array([[1, 0], [2, 2]]), 3)
    >>> P.matrix(example=0).toarray()
    array([[0., 1., 0.],
           [0., 0., 1.]])
    >>> P.rmatmat(np.ones((2, 2)))
    array([[0., 1.],
           [1., 0.],
           [1., 1.]])
    """

    fixed = False

    def __init__(self, winners: np.ndarray, n_in: int, plan: MaxPlan = None, *,
                 flat: np.ndarray = None, won_tap: np.ndarray = None):
        self._won_tap = won_tap
        if won_tap is not None:  # a tiling plan: which tap won, ``(C, *out, N)``
            m, n = math.prod(won_tap.shape[:-1]), won_tap.shape[-1]
        elif flat is None:
            winners = np.asarray(winners)
            m, n = winners.shape
            flat = winners * n + np.arange(n)
        else:  # a plan passes its winners already as positions in the (n_in, N) input
            m, n = flat.shape
        self._flat_index = flat  # (m, N): winners[r, j] * N + j, what the products index
        self.shape = (m, int(n_in))
        self.batch = n
        self.plan = plan

    @property
    def winners(self) -> np.ndarray:
        """``(m, N)``: the input row each output row read, per example."""
        return self._flat() // max(self.batch, 1)

    def _flat(self):
        if self._flat_index is None:  # from the won taps, the first time it is asked for
            self._flat_index = self.plan.tile_places(self._won_tap).reshape(self.shape[0],
                                                                             self.batch)
        return self._flat_index

    def _matmat(self, X):
        return X.ravel()[self._flat()]

    def _rmatmat(self, Y):
        n = self.batch
        if self._won_tap is not None and np.isfinite(Y).all():
            # each tap's cells take the gradient where that tap won: a product per tap into
            # its strided view of the input, no index array (Y * 0 would make NaN of inf)
            out = shared_pool().result((self.shape[1], n), Y.dtype, "the input gradient")
            if not self.plan.tiles_whole:
                out[...] = 0  # the cells no window reads (the remainder, as PyTorch leaves it)
            Yt = np.reshape(Y, self._won_tap.shape)
            won = np.empty(Yt.shape, dtype=bool)
            for k, cells in enumerate(self.plan.tap_views(out)):
                np.equal(self._won_tap, k, out=won)
                np.multiply(Yt, won, out=cells)
            return out
        if self.plan is not None and self.plan.disjoint:
            # each input cell is in one window at most, so won at most once: P.T puts
            out = shared_pool().result((self.shape[1], n), Y.dtype, "the input gradient")
            out[...] = 0
            out.ravel()[self._flat().ravel()] = Y.ravel()
            return out
        rows = Y.size
        self._check_output(self.shape[1] + 3 * self.shape[0], Y, "the scatter")
        idt = index_dtype(rows, self.shape[1] * n)
        P = sp.csr_array((np.ones(rows, dtype=Y.dtype), self._flat().ravel().astype(idt),
                          np.arange(rows + 1, dtype=idt)), shape=(rows, self.shape[1] * n))
        return (P.T @ Y.ravel()).reshape(self.shape[1], n)

    def _matrix(self, example):
        rows = self.shape[0]
        return sp.csr_array((np.ones(rows), self.winners[:, example],
                             np.arange(rows + 1)), shape=self.shape)

    def _pattern(self):
        if self.plan is None:
            raise ValueError("this selection was built without its windows: no pattern")
        return self.plan.pattern()

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self._flat_index, self._won_tap) if a is not None)

    @property
    def nnz(self):
        return self.shape[0]

    def spatial_indices(self, channels: int) -> np.ndarray:
        """PyTorch's ``return_indices``: each winner as a flat index within its channel's
        plane, ``(channels * L, N)`` (rows ``(c, l)``, one column per example)."""
        per_channel = self.shape[1] // channels
        L = self.shape[0] // channels
        offset = np.repeat(np.arange(channels) * per_channel, L)[:, None]
        return (self.winners - offset).astype(np.int64)


class MaxPlan:
    """Max over the windows of an unfold structure: :meth:`apply` returns the maxima and ``P``.

    Parameters
    ----------
    windows : UnfoldStructure
        Rows ``(c, k, l)``; ``channels`` is the number of ``c`` blocks.
    channels : int
    out_shape : tuple
        ``(C, *spatial)`` of one example's output.
    tiling : (input_size, kernel_size), optional
        Given when the windows tile the input (stride = kernel, no padding, no dilation): then
        each tap is a strided view of ``X`` itself and nothing is gathered.
    """

    def __init__(self, windows, channels: int, out_shape: tuple, tiling: tuple = None):
        self.windows, self.channels, self.out_shape = windows, channels, tuple(out_shape)
        self.tiling = tiling
        if tiling is not None:
            size, kernel = tiling
            out = self.out_shape[1:]
            # the taps as views: crop to whole windows, split each axis into (window, tap)
            self._crop = (slice(None),) + tuple(slice(0, o * k) for o, k in zip(out, kernel))
            self._split = sum(((o, k) for o, k in zip(out, kernel)), ())
            self._tap_index = [(slice(None),) + sum(((slice(None), a) for a in tap), ())
                               for tap in np.ndindex(*kernel)]
            self.tiles_whole = all(o * k == s for o, k, s in zip(out, kernel, size))
        self.L = math.prod(windows.output_size)
        self.taps = windows.shape[0] // (channels * self.L)
        self.n_in = windows.shape[1]
        self.pool = BufferPool()
        # first in-bounds tap of each window: where PyTorch sends the gradient of a window whose
        # cells are all -inf (a padding cell never wins)
        pad = np.zeros(windows.shape[0], dtype=bool)
        pad[windows.pad_rows] = True
        pad = pad.reshape(channels, self.taps, self.L)
        self._first_valid = np.argmax(~pad, axis=1) if windows.pad_rows.size else None
        self._rows = (None, None)
        self._tile_base = (None, None)
        # windows that share no input cell: the backward scatter is an assignment
        read = windows.gather if not windows.pad_rows.size else np.delete(windows.gather,
                                                                           windows.pad_rows)
        self.disjoint = bool(np.unique(read).size == read.size)

    @property
    def nbytes(self) -> int:
        first = 0 if self._first_valid is None else self._first_valid.nbytes
        return first + (0 if self._rows[1] is None else self._rows[1].nbytes) + \
            (0 if self._tile_base[1] is None else self._tile_base[1][0].nbytes)

    def pattern(self) -> sp.csr_array:
        return window_pattern(self.windows, self.channels)

    def apply(self, X: np.ndarray):
        """``(Y, P)``: the maxima ``(C*L, N)`` and the selection matrix of this batch."""
        if self.tiling is not None:
            return self._apply_tiling(X)
        n = X.shape[1]
        buf = self.pool.take((self.windows.shape[0], n), X.dtype, "the pooling windows")
        try:
            cols = gather_rows(self.windows, X, buf, fill=-np.inf)
            best, arg = first_max(cols.reshape(self.channels, self.taps, -1))  # (C, K, L*N)
        finally:
            self.pool.give(buf)
        if self._first_valid is not None:
            stuck = best == -np.inf
            if stuck.any():
                arg[stuck] = np.repeat(self._first_valid, n, axis=1)[stuck]
        # row of the windows that won -> the input row it read -> its place in X (row * N + j),
        # computed in place: the selection keeps only that
        win_row = arg
        win_row *= self.L
        win_row += self._first_rows(n)
        rows = self.channels * self.L
        flat = self.windows.gather.take(win_row).astype(np.intp, copy=False).reshape(rows, n)
        flat *= n
        flat += np.arange(n)
        return best.reshape(rows, n), Selection(None, self.n_in, self, flat=flat)

    def tap_views(self, A: np.ndarray) -> list:
        """Each tap of a tiling plan's windows as a strided view of ``A`` ``(n_in, N)``:
        ``(C, *out, N)``, window order."""
        size = self.tiling[0]
        split = A.reshape(self.channels, *size, A.shape[1])[self._crop].reshape(
            (self.channels,) + self._split + (A.shape[1],))
        return [split[index] for index in self._tap_index]

    def _apply_tiling(self, X: np.ndarray):
        """:meth:`apply` for windows that tile the input: the taps are strided views of ``X``
        (axes ``(C, o_1, k_1, ..., o_d, k_d, N)``), so there is no gather and no buffer; the
        selection keeps which tap won (its places in ``X`` are derived only if asked for)."""
        n, rows = X.shape[1], self.channels * self.L
        check_memory(rows * n * (X.itemsize + 1 + 16),
                     f"the maxima and winners of {rows} x {n} windows", "use a smaller batch")
        best, arg = _first_max(self.tap_views(X))
        return best.reshape(rows, n), Selection(None, self.n_in, self, won_tap=arg)

    def tile_places(self, won_tap: np.ndarray) -> np.ndarray:
        """Each window's winner as a place in ``X`` (``row * N + j``): its window's first cell
        plus the step of the tap that won."""
        base, offsets = self._tile_places(won_tap.shape[-1])
        flat = offsets.take(won_tap)
        flat += base
        return flat

    def _tile_places(self, n: int) -> tuple:
        """``(base, offsets)`` in ``X`` (``row * N + j``): each window's first cell, and each
        tap's step from it, for batches of ``n`` (cached like :meth:`_first_rows`)."""
        cached_n, places = self._tile_base
        if cached_n != n:
            size, kernel = self.tiling
            out = self.out_shape[1:]
            cell = [math.prod(size[i + 1:]) for i in range(len(size))]  # rows per step, by axis
            base = (np.arange(self.channels) * math.prod(size)).reshape(-1, *(1,) * len(out))
            for i, (o, k) in enumerate(zip(out, kernel)):
                shape = [1] * (len(out) + 1)
                shape[i + 1] = o
                base = base + (np.arange(o) * k * cell[i]).reshape(shape)
            base = (base[..., None] * n + np.arange(n)).astype(np.intp)
            offsets = np.array([sum(a * c for a, c in zip(tap, cell)) * n
                                for tap in np.ndindex(*kernel)], dtype=np.intp)
            places = (base, offsets)
            self._tile_base = (n, places)
        return places

    def _first_rows(self, n: int) -> np.ndarray:
        """The window row of tap 0 for every output ``(c, l*N + n)``: reused by batches of
        ``n`` examples (one training run has one or two batch sizes)."""
        cached_n, rows = self._rows
        if cached_n != n:
            position = np.arange(self.L * n) // n
            rows = np.arange(self.channels)[:, None] * (self.taps * self.L) + position
            self._rows = (n, rows)
        return rows


def max_pool_plan(pool: PoolGeometry, channels: int, input_size) -> MaxPlan:
    """Windows of a sliding max pool (``ceil_mode`` included)."""
    input_size = tuple(input_size)
    out = tuple(pool.output_size(input_size))
    tiles = (tuple(pool.kernel_size) == tuple(pool.stride) and not any(pool.padding)
             and all(d == 1 for d in pool.dilation)
             and all(o * k <= s for o, k, s in zip(out, pool.kernel_size, input_size)))
    tiling = (input_size, tuple(pool.kernel_size)) if tiles else None
    return cached(("max plan", pool, channels, input_size), lambda: MaxPlan(
        pool_windows(pool, channels, input_size), channels, (channels, *out), tiling))


def adaptive_max_plan(channels: int, input_size, output_size) -> MaxPlan:
    """PyTorch's adaptive bins as max windows."""
    key = ("adaptive max plan", channels, tuple(input_size), tuple(output_size))
    return cached(key, lambda: MaxPlan(adaptive_windows(channels, input_size, output_size),
                                       channels, (channels, *output_size)))


def channel_max_plan(group_size: int, channels: int, input_size) -> MaxPlan:
    """Maxout: max over consecutive groups of ``group_size`` channels at every position."""
    key = ("channel max plan", group_size, channels, tuple(input_size))
    return cached(key, lambda: MaxPlan(channel_windows(group_size, channels, input_size), 1,
                                       (channels // group_size, *input_size)))


def fractional_max(X: np.ndarray, channels: int, input_size, output_size, kernel_size,
                   samples: np.ndarray):
    """Fractional max pooling of a batch-last ``X`` ``(C * n_in, N)``: ``(Y, P)``.

    Every plane (example ``n``, channel ``c``) has its own pseudo-random windows, from
    ``samples[n, c]`` (PyTorch's ``_random_samples``); the selection ``P`` is one more
    :class:`Selection` (first maximum wins, NaN propagates).
    """
    N = X.shape[1]
    n_in, L, K = math.prod(input_size), math.prod(output_size), math.prod(kernel_size)
    check_memory(channels * K * L * N * (8 + X.itemsize) * 2,
                 f"the {K} x {L} fractional pooling windows of {channels * N} planes",
                 "use a smaller batch or input")
    planes = samples.transpose(1, 0, 2).reshape(channels * N, samples.shape[2])  # (c, n)
    index = fractional_windows(planes, input_size, output_size, kernel_size)
    index = index.reshape(channels, N, K, L).transpose(0, 2, 3, 1)  # (C, K, L, N)
    X3 = X.reshape(channels, n_in, N)
    cols = X3[np.arange(channels)[:, None, None, None], index, np.arange(N)]
    best, arg = first_max(cols.reshape(channels, K, L * N))
    spatial = np.take_along_axis(index.reshape(channels, K, L * N), arg[:, None], axis=1)[:, 0]
    winners = (spatial + np.arange(channels)[:, None] * n_in).reshape(channels * L, N)
    return best.reshape(channels * L, N), Selection(winners, channels * n_in)


def unpool_operator(indices: np.ndarray, channels: int, n_out: int) -> Operator:
    """MaxUnpool: ``P.T``, the transpose of the selection whose winners are ``indices``
    ``(channels * L, N)`` (flat positions within each channel's output plane of ``n_out``
    cells). Each input lands on its index; where indices repeat the inputs add, as ``P.T``
    does."""
    L = indices.shape[0] // channels
    offset = np.repeat(np.arange(channels, dtype=np.int64) * n_out, L)[:, None]
    return Selection(indices + offset, channels * n_out).T
