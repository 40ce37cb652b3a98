"""Window tables: which input cell each output reads, per tap, and with what weight.

Every convolution-like map in matconv is described by a table ``index`` of shape ``(K, L)``: for
tap ``k`` of output position ``l``, the flat spatial input index it reads, or ``-1`` for nothing
(a zero-padding cell, or an unused tap of a variable-size window). Linear maps with fixed
coefficients carry a ``weight`` table of the same shape.

* convolution and pooling windows come from a :class:`~matconv.geometry.ConvGeometry`
  (:func:`window_index`), padding modes being the index maps of
  :data:`~matconv.geometry.PADDING_MODES`;
* adaptive pooling bins, upsampling interpolation and fractional max-pooling windows come from
  1-D tables per dimension (:func:`adaptive_bins`, :func:`nearest_table`, :func:`linear_table`,
  :func:`cubic_table`, :func:`fractional_starts`) combined by :func:`combine_tables` (taps
  multiply out, weights multiply).

Each table is estimated against the memory budget before it is built.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import PADDING_MODES, ConvGeometry, as_tuple
from ..memory import check_memory

__all__ = ["window_index", "combine_tables", "adaptive_bins", "nearest_table", "linear_table",
           "cubic_table", "fractional_starts", "interp_scale", "resolve_output_size",
           "table_nbytes"]


def table_nbytes(taps: int, positions: int, weighted: bool = False) -> int:
    """Peak bytes of building a ``(taps, positions)`` table (indices, masks and temporaries)."""
    return taps * positions * (3 * 8 + 1 + (3 * 8 if weighted else 0))


def _source_positions(n, k, s, d, before, out, mode):
    """``(k, out)`` array: the input index tap ``j`` of output ``i`` reads along one dim."""
    pos = np.arange(out)[None, :] * s + np.arange(k)[:, None] * d - before
    return PADDING_MODES[mode].source(pos, n)


def combine_tables(tables, input_size, weights=None):
    """Combine 1-D tables ``(K_d, out_d)`` into the N-d table ``(prod K_d, prod out_d)``.

    A combined tap reads nothing (``-1``) if any of its 1-D taps does. Taps and positions are in
    row-major order; weights, if given, multiply. Tables may carry leading axes (one table per
    plane, ``(P, K_d, out_d)``, as fractional pooling's random windows do); they broadcast and
    lead the result, ``(P, prod K_d, prod out_d)``.

    Examples
    --------
    >>> rows = np.array([[0, 1]])          # one tap, two output rows reading rows 0 and 1
    >>> cols = np.array([[0, 2], [1, -1]])  # two taps per output column
    >>> combine_tables([rows, cols], (2, 3))[0]
    array([[ 0,  2,  3,  5],
           [ 1, -1,  4, -1]])
    """
    tables = [np.asarray(t) for t in tables]
    nd = len(tables)
    lead = np.broadcast_shapes(*(t.shape[:-2] for t in tables))
    K = math.prod(t.shape[-2] for t in tables)
    L = math.prod(t.shape[-1] for t in tables)
    check_memory(table_nbytes(K, L * math.prod(lead), weights is not None),
                 f"a window table of {K} taps x {L} positions", "use a smaller input or kernel")
    width = len(lead) + 2 * nd
    flat = np.zeros((1,) * width, dtype=np.int64)
    valid = np.ones((1,) * width, dtype=bool)
    weight = np.ones((1,) * width) if weights is not None else None
    step = 1
    for dim in reversed(range(nd)):
        table = tables[dim]
        shape = [1] * (len(lead) - table.ndim + 2) + list(table.shape[:-2]) + [1] * (2 * nd)
        shape[len(lead) + dim], shape[len(lead) + nd + dim] = table.shape[-2:]
        pos = table.reshape(shape)
        flat = flat + pos * step
        valid = valid & (pos >= 0)
        if weights is not None:
            weight = weight * np.asarray(weights[dim]).reshape(shape)
        step *= input_size[dim]
    flat = np.where(valid, flat, -1).reshape(*lead, K, L)
    if weights is None:
        return flat, None
    return flat, np.where(valid, weight, 0.0).reshape(*lead, K, L)


def resolve_output_size(geometry: ConvGeometry, input_size, output_size):
    """Validate sizes; ``output_size=None`` means every position the geometry has."""
    if not isinstance(geometry, ConvGeometry):
        raise TypeError(f"geometry must be a matconv.ConvGeometry, got {type(geometry).__name__}")
    input_size = geometry.check_input_size(input_size)
    natural = geometry.output_size(input_size)
    if output_size is None:
        return input_size, natural
    output_size = as_tuple(output_size, geometry.ndim, "output_size")
    if any(o > m for o, m in zip(output_size, natural)):
        raise ValueError(f"output_size {output_size} exceeds the {natural} positions this "
                         f"convolution has on input size {input_size}")
    return input_size, output_size


def window_index(geometry: ConvGeometry, input_size, output_size=None) -> np.ndarray:
    """Flat spatial input index read by each (tap, output position), ``-1`` for zero padding.

    Parameters
    ----------
    geometry : ConvGeometry
    input_size : tuple of int
        Spatial input size.
    output_size : tuple of int, optional
        Keep only the first ``output_size`` positions per dimension (default: all of them).
        Transposed convolutions whose ``output_padding`` exceeds the stride use this.

    Returns
    -------
    ndarray of shape (prod(kernel_size), prod(output_size)), int64
        Taps and positions both in row-major order.

    Examples
    --------
    >>> g = ConvGeometry(1, 1, 3, ndim=1, padding=1)
    >>> window_index(g, (4,))
    array([[-1,  0,  1,  2],
           [ 0,  1,  2,  3],
           [ 1,  2,  3, -1]])
    """
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    check_memory(table_nbytes(geometry.kernel_numel, math.prod(output_size)),
                 f"the window table of a {geometry.kernel_size} kernel over "
                 f"{math.prod(output_size)} output positions", "use a smaller input or padding")
    tables = [_source_positions(n, k, s, d, pad[0], o, geometry.padding_mode)
              for n, k, s, d, pad, o in zip(input_size, geometry.kernel_size, geometry.stride,
                                            geometry.dilation, geometry.padding, output_size)]
    return combine_tables(tables, input_size)[0]


# --------------------------------------------------------------------------- 1-D tables
def adaptive_bins(n_in: int, n_out: int):
    """PyTorch's adaptive pooling bins along one dim: ``[floor(i n/o), ceil((i+1) n/o))``.

    Returns ``(index, count)``: index ``(K, n_out)`` padded with ``-1`` to the widest bin, and the
    number of cells in each bin.

    >>> adaptive_bins(5, 3)[0]
    array([[ 0,  1,  3],
           [ 1,  2,  4],
           [-1,  3, -1]])
    """
    i = np.arange(n_out)
    start = (i * n_in) // n_out
    end = -((-(i + 1) * n_in) // n_out)  # ceil division
    count = end - start
    taps = np.arange(count.max())[:, None]
    index = np.where(taps < count, start + taps, -1)
    return index, count


def interp_scale(n_in: int, n_out: int, scale_factor, dtype, align_corners: bool = False):
    """PyTorch's source/destination ratio, in the input's precision ``dtype``.

    ``(n_in - 1)/(n_out - 1)`` with ``align_corners``, else ``1/scale_factor`` when a scale
    factor is given and ``n_in/n_out`` otherwise (its ``area_pixel_compute_scale`` and
    ``compute_scales_value``). Divisions happen in ``dtype``, as PyTorch's kernels do.

    >>> interp_scale(2, 4, None, np.float64), interp_scale(3, 5, None, np.float64, True)
    (np.float64(0.5), np.float64(0.5))
    """
    dtype = np.dtype(dtype).type
    if align_corners:
        return dtype(n_in - 1) / dtype(n_out - 1) if n_out > 1 else dtype(0)
    if scale_factor:
        return dtype(1.0 / scale_factor)
    return dtype(n_in) / dtype(n_out)


def _floorf(values) -> np.ndarray:
    """C's ``floorf``: round to float32 first, then floor (PyTorch floors source indices so)."""
    return np.floor(np.asarray(values).astype(np.float32)).astype(np.int64)


def nearest_table(n_in: int, n_out: int, scale_factor=None, dtype=np.float32,
                  exact: bool = False):
    """``mode='nearest'`` (output ``i`` reads ``floor(i * scale)``) or ``'nearest-exact'``
    (``floor((i + 0.5) * scale)``, the pixel whose centre is nearest), clamped to the input.

    Computed like PyTorch's CPU kernel: the ratio in the input's precision ``dtype``, the
    product rounded to float32 before the floor.

    >>> nearest_table(3, 7)
    array([[0, 0, 0, 1, 1, 2, 2]])
    >>> nearest_table(3, 7, exact=True)
    array([[0, 0, 1, 1, 1, 2, 2]])
    """
    dtype = np.dtype(dtype).type
    scale = interp_scale(n_in, n_out, scale_factor, dtype)
    i = np.arange(n_out)
    if exact:
        # (i + 0.5) is a double in the kernel; its product is stored in dtype, then + 0.5
        src = np.maximum((np.float64(scale) * (i + 0.5) - 0.5).astype(dtype), 0)
        src = _floorf(src.astype(np.float64) + 0.5)
    else:
        src = _floorf(scale * i.astype(dtype))
    return np.minimum(src, n_in - 1)[None, :]


def _source_index(n_in, n_out, align_corners, scale_factor, dtype, cubic):
    """``(index, lambda)`` of PyTorch's ``area_pixel_compute_source_index`` and
    ``guard_index_and_lambda``: the cell at or left of each output's source position and the
    fraction past it, in ``dtype``."""
    scale = interp_scale(n_in, n_out, scale_factor, dtype, align_corners)
    dst = np.arange(n_out, dtype=dtype)
    if align_corners:
        src = scale * dst
    else:
        src = (np.float64(scale) * (dst.astype(np.float64) + 0.5) - 0.5).astype(dtype)
        if not cubic:  # linear modes clamp at the first cell; cubic reads one cell before it
            src = np.maximum(src, dtype(0))
    index = np.minimum(_floorf(src), n_in - 1)
    lam = np.clip(src - index.astype(dtype), dtype(0), dtype(1))
    return index, lam


def linear_table(n_in: int, n_out: int, align_corners: bool, scale_factor=None,
                 dtype=np.float64):
    """Linear interpolation along one dim, PyTorch's coordinate rule: two taps and weights.

    ``align_corners=True`` maps the corner cells onto each other
    (``src = i (n_in - 1)/(n_out - 1)``); otherwise cell centres are aligned
    (``src = (i + 0.5) scale - 0.5``, clamped at 0). Arithmetic in ``dtype``, as PyTorch uses
    the input's precision; an output as long as the input is a copy. Past the last cell both
    taps read it (their weights still sum to 1).

    >>> index, weight = linear_table(2, 4, align_corners=False)
    >>> index
    array([[0, 0, 0, 1],
           [1, 1, 1, 1]])
    >>> weight
    array([[1.  , 0.75, 0.25, 0.75],
           [0.  , 0.25, 0.75, 0.25]])
    """
    dtype = np.dtype(dtype).type
    if n_out == n_in:
        i0 = np.arange(n_out)
        return np.stack([i0, i0]), np.stack([np.ones(n_out, dtype), np.zeros(n_out, dtype)])
    i0, lam1 = _source_index(n_in, n_out, align_corners, scale_factor, dtype, cubic=False)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    return np.stack([i0, i1]), np.stack([dtype(1) - lam1, lam1])


#: PyTorch's (and OpenCV's) bicubic convolution constant
CUBIC_A = -0.75


def cubic_table(n_in: int, n_out: int, align_corners: bool, scale_factor=None,
                dtype=np.float64):
    """Bicubic interpolation along one dim: four taps ``index - 1 .. index + 2`` with Keys'
    cubic convolution weights (``A = -0.75``), taps beyond the border clamped to the edge cell.

    PyTorch's rule: the source position is not clamped at 0 (``(i + 0.5) scale - 0.5`` may be
    negative), the weights come from the fraction past the cell at or left of it, and a tap
    that falls outside reads the nearest edge cell (so edge cells can appear twice in a row).

    >>> index, weight = cubic_table(3, 6, align_corners=False)
    >>> index[:, 0]                                   # source -0.25: taps -2..1, clamped
    array([0, 0, 0, 1])
    >>> weight.sum(axis=0)
    array([1., 1., 1., 1., 1., 1.])
    """
    dtype = np.dtype(dtype).type
    index, t = _source_index(n_in, n_out, align_corners, scale_factor, dtype, cubic=True)
    a = dtype(CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    one = dtype(1)
    weight = np.stack([far(t + one), near(t), near(one - t), far(one - t + one)])
    taps = np.clip(index[None, :] + np.arange(-1, 3)[:, None], 0, n_in - 1)
    return taps, weight


def fractional_starts(samples, n_in: int, n_out: int, kernel: int, dtype) -> np.ndarray:
    """Window starts of fractional max pooling along one dim, one row per sample ``u`` in
    ``[0, 1)``: PyTorch's pseudo-random sequence (Graham, "Fractional Max-Pooling", 2014).

    ``alpha = (n_in - k) / (n_out - 1)``; window ``i < n_out - 1`` starts at
    ``int((i + u) alpha) - int(u alpha)``, the last one at ``n_in - k``; arithmetic in the
    input's precision ``dtype``, like PyTorch's kernel.

    >>> fractional_starts(np.array([0.5]), 10, 4, 2, np.float64)
    array([[0, 3, 5, 8]])
    """
    dtype = np.dtype(dtype).type
    u = np.asarray(samples, dtype=dtype)[:, None]
    starts = np.full((u.shape[0], n_out), n_in - kernel, dtype=np.int64)
    if n_out > 1:
        alpha = dtype(n_in - kernel) / dtype(n_out - 1)
        i = np.arange(n_out - 1, dtype=dtype)[None, :]
        starts[:, :-1] = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    return starts
