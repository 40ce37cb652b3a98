"""Fixed sparse maps and pooling windows: average and adaptive pooling, upsampling, the windows of
max pools and maxout. Each is a window table (:mod:`~matconv.lowering.windows`) turned into a
``scipy.sparse`` matrix or an unfold structure; none is built before its size is estimated."""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..geometry import PoolGeometry
from ..memory import check_memory
from .cache import cached
from .structure import UnfoldStructure, index_dtype, unfold_from_window, unfold_structure
from .windows import (
    adaptive_bins,
    combine_tables,
    cubic_table,
    fractional_starts,
    linear_table,
    nearest_table,
    table_nbytes,
    window_index,
)

__all__ = ["window_matrix", "avg_pool_matrix", "adaptive_avg_matrix", "upsample_matrix",
           "pool_windows", "adaptive_windows", "channel_windows", "window_pattern",
           "fractional_windows"]


def window_matrix(index: np.ndarray, weight: np.ndarray, channels: int, n_in: int
                  ) -> sp.csr_array:
    """The fixed linear map of a weighted window table, the same on every channel.

    Row ``(c, l)`` holds ``weight[k, l]`` at column ``c * n_in + index[k, l]`` for every tap that
    reads something (a zero weight is kept, so ``0 * nan`` stays ``nan`` as in PyTorch): a
    block-diagonal matrix of shape ``(channels * L, channels * n_in)``.

    >>> window_matrix(np.array([[0, 1]]), np.array([[0.5, 2.0]]), 2, 2).toarray()
    array([[0.5, 0. , 0. , 0. ],
           [0. , 2. , 0. , 0. ],
           [0. , 0. , 0.5, 0. ],
           [0. , 0. , 0. , 2. ]])
    """
    K, L = index.shape
    rows, cols = channels * L, channels * n_in
    idt = index_dtype(rows * K, cols)
    # indices, data, the channel offsets and the tiled columns and values, at once
    check_memory(rows * K * (idt.itemsize + weight.itemsize + 3 * 8),
                 f"a {rows} x {cols} fixed map", "use a smaller input")
    keep = index >= 0
    per_row = np.broadcast_to(keep.sum(axis=0), (channels, L)).ravel()
    indptr = np.zeros(rows + 1, dtype=idt)
    np.cumsum(per_row, out=indptr[1:])
    # within a row, taps in order; rows (c, l): transpose to (L, K) then repeat over channels
    order = keep.T
    cols_l = index.T[order]
    data_l = weight.T[order]
    offsets = np.repeat(np.arange(channels, dtype=np.int64) * n_in, cols_l.size)
    indices = (np.tile(cols_l, channels) + offsets).astype(idt)
    return sp.csr_array((np.tile(data_l, channels), indices, indptr), shape=(rows, cols))


def _avg_divisors(pool: PoolGeometry, input_size, out_size, count_include_pad,
                  divisor_override):
    """PyTorch's divisor per output position (``count_include_pad``, ``divisor_override``)."""
    if divisor_override:
        return np.full(math.prod(out_size), float(divisor_override))
    per_dim = []
    for n, k, s, p, o in zip(input_size, pool.kernel_size, pool.stride, pool.padding, out_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if count_include_pad:
            per_dim.append(end - start)
        else:
            per_dim.append(np.minimum(end, n) - np.maximum(start, 0))
    div = per_dim[0]
    for d in per_dim[1:]:
        div = np.multiply.outer(div, d)
    return np.asarray(div, dtype=np.float64).ravel()


def avg_pool_matrix(pool: PoolGeometry, channels: int, input_size, count_include_pad=True,
                    divisor_override=None) -> sp.csr_array:
    """``M = diag(1/divisor) A``: average pooling as the all-ones depthwise convolution ``A``
    with each row scaled by PyTorch's divisor."""
    g = pool.conv_geometry(channels, input_size)
    index = window_index(g, input_size)
    div = _avg_divisors(pool, input_size, pool.output_size(input_size), count_include_pad,
                        divisor_override)
    weight = np.where(index >= 0, 1.0 / div[None, :], 0.0)
    return window_matrix(index, weight, channels, math.prod(input_size))


def _check_tables(channels, taps_per_dim, output_size, what):
    """Estimate the tables of a map over ``output_size`` before any of them is built."""
    taps, positions = math.prod(taps_per_dim), math.prod(output_size)
    check_memory(channels * table_nbytes(taps, positions, weighted=True),
                 f"{what} ({taps} taps x {positions} positions x {channels} channels)",
                 "use a smaller output size")


def _bin_width(n, o):
    return -(-n // o) + 1  # the widest adaptive bin, at most


def adaptive_avg_matrix(channels: int, input_size, output_size) -> sp.csr_array:
    """Average over PyTorch's adaptive bins ``[floor(i n/o), ceil((i+1) n/o))``."""
    _check_tables(channels, [_bin_width(n, o) for n, o in zip(input_size, output_size)],
                  output_size, "adaptive average pooling")
    tables, weights = [], []
    for n, o in zip(input_size, output_size):
        index, count = adaptive_bins(n, o)
        tables.append(index)
        weights.append(np.where(index >= 0, 1.0 / count, 0.0))
    index, weight = combine_tables(tables, input_size, weights)
    return window_matrix(index, weight, channels, math.prod(input_size))


def upsample_matrix(mode: str, channels: int, input_size, output_size, align_corners: bool,
                    scales, dtype) -> sp.csr_array:
    """Nearest, nearest-exact, (bi/tri)linear or bicubic interpolation: PyTorch's coordinate
    rules, computed in ``dtype`` (the input's precision, as PyTorch's kernels do)."""
    dtype = np.dtype(dtype)
    _check_tables(channels, [1 if mode == "nearest" else 2] * len(output_size), output_size,
                  f"{mode} upsampling")
    tables, weights = [], []
    for n, o, s in zip(input_size, output_size, scales):
        if mode in ("nearest", "nearest-exact"):
            tables.append(nearest_table(n, o, s, dtype, exact=mode == "nearest-exact"))
            weights.append(np.ones(tables[-1].shape, dtype=dtype))
        else:
            table = cubic_table if mode == "bicubic" else linear_table
            index, weight = table(n, o, align_corners, s, dtype)
            tables.append(index)
            weights.append(weight)
    index, weight = combine_tables(tables, input_size, weights)
    return window_matrix(index, weight.astype(dtype), channels, math.prod(input_size))


def fractional_windows(samples: np.ndarray, input_size, output_size, kernel_size
                       ) -> np.ndarray:
    """The windows of fractional max pooling, one set per plane: ``(P, prod(k), prod(out))``
    flat spatial indices, from ``samples`` ``(P, ndim)`` in ``[0, 1)``.

    Sample ``d`` of a plane places its windows along spatial dim ``d``, except in 2-D where
    PyTorch reads the first sample for the width and the second for the height.
    """
    P, nd = samples.shape
    order = (1, 0) if nd == 2 else tuple(range(nd))
    tables = []
    for dim, (n, o, k) in enumerate(zip(input_size, output_size, kernel_size)):
        starts = fractional_starts(samples[:, order[dim]], n, o, k, samples.dtype)
        tables.append(starts[:, None, :] + np.arange(k)[None, :, None])
    return combine_tables(tables, input_size)[0]


def pool_windows(pool: PoolGeometry, channels: int, input_size) -> UnfoldStructure:
    """The windows of a sliding pool (``ceil_mode`` included), as a cached unfold structure."""
    return unfold_structure(pool.conv_geometry(channels, input_size), input_size)


def adaptive_windows(channels: int, input_size, output_size) -> UnfoldStructure:
    """PyTorch's adaptive bins as windows (``-1`` taps where a bin is narrower)."""
    _check_tables(channels, [_bin_width(n, o) for n, o in zip(input_size, output_size)],
                  output_size, "adaptive max pooling")

    def build():
        tables = [adaptive_bins(n, o)[0] for n, o in zip(input_size, output_size)]
        window, _ = combine_tables(tables, input_size)
        return unfold_from_window(window, channels, input_size, output_size)

    return cached(("adaptive windows", channels, tuple(input_size), tuple(output_size)), build)


def channel_windows(group_size: int, channels: int, input_size) -> UnfoldStructure:
    """Maxout's windows: output ``(g, pos)`` reads channels ``g*group_size .. + group_size - 1``
    at ``pos``; one "channel" of size ``C * prod(input_size)``."""
    n = math.prod(input_size)
    groups = channels // group_size

    def build():
        check_memory(table_nbytes(group_size, groups * n), f"maxout windows over {channels} "
                     f"channels of {n} cells", "use a smaller input")
        taps = np.arange(group_size)[:, None, None] * n
        start = (np.arange(groups) * group_size * n)[None, :, None]
        window = (taps + start + np.arange(n)[None, None, :]).reshape(group_size, -1)
        return unfold_from_window(window, 1, (channels * n,), (groups * n,))

    return cached(("channel windows", group_size, channels, tuple(input_size)), build)


def window_pattern(windows: UnfoldStructure, channels: int) -> sp.csr_array:
    """``(C*L, n_in)`` 0/1 matrix with a 1 at every cell of every window: what *can* win."""
    L = math.prod(windows.output_size)
    taps = windows.shape[0] // (channels * L)
    rows = np.repeat(np.arange(windows.shape[0]), np.diff(windows.indptr))
    out_row = rows // (taps * L) * L + rows % L  # unfold row (c, k, l) -> output (c, l)
    M = sp.coo_array((np.ones(rows.size), (out_row, windows.indices)),
                     shape=(channels * L, windows.shape[1])).tocsr()
    M.data[:] = 1  # a cell two taps read (duplicates summed) is still one path
    return M
