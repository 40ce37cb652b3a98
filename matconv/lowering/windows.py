"""Window tables: which input cell each output reads, per tap, and with what weight.

Every convolution-like map in matconv is described by a table ``index`` of shape ``(K, L)``: for
tap ``k`` of output position ``l``, the flat spatial input index it reads, or ``-1`` for nothing
(a zero-padding cell, or an unused tap of a variable-size window). Linear maps with fixed
coefficients carry a ``weight`` table of the same shape.

* convolution and pooling windows come from a :class:`~matconv.geometry.ConvGeometry`
  (:func:`window_index`), padding modes being the index maps of
  :data:`~matconv.geometry.PADDING_MODES`;
* adaptive pooling bins and upsampling interpolation come from 1-D tables per dimension
  (:func:`adaptive_bins`, :func:`nearest_table`, :func:`linear_table`) combined by
  :func:`combine_tables` (taps multiply out, weights multiply).

Each table is estimated against the memory budget before it is built.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import PADDING_MODES, ConvGeometry, as_tuple
from ..memory import check_memory

__all__ = ["window_index", "combine_tables", "adaptive_bins", "nearest_table", "linear_table",
           "resolve_output_size", "table_nbytes"]


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
    row-major order; weights, if given, multiply.

    Examples
    --------
    >>> rows = np.array([[0, 1]])          # one tap, two output rows reading rows 0 and 1
    >>> cols = np.array([[0, 2], [1, -1]])  # two taps per output column
    >>> combine_tables([rows, cols], (2, 3))[0]
    array([[ 0,  2,  3,  5],
           [ 1, -1,  4, -1]])
    """
    nd = len(tables)
    K = math.prod(np.shape(t)[0] for t in tables)
    L = math.prod(np.shape(t)[1] for t in tables)
    check_memory(table_nbytes(K, L, weights is not None),
                 f"a window table of {K} taps x {L} positions", "use a smaller input or kernel")
    flat = np.zeros((1,) * (2 * nd), dtype=np.int64)
    valid = np.ones((1,) * (2 * nd), dtype=bool)
    weight = np.ones((1,) * (2 * nd)) if weights is not None else None
    step = 1
    for dim in reversed(range(nd)):
        table = np.asarray(tables[dim])
        shape = [1] * (2 * nd)
        shape[dim], shape[nd + dim] = table.shape
        pos = table.reshape(shape)
        flat = flat + pos * step
        valid = valid & (pos >= 0)
        if weights is not None:
            weight = weight * np.asarray(weights[dim]).reshape(shape)
        step *= input_size[dim]
    flat = np.where(valid, flat, -1).reshape(K, L)
    if weights is None:
        return flat, None
    return flat, np.where(valid, weight, 0.0).reshape(K, L)


def resolve_output_size(geometry: ConvGeometry, input_size, output_size):
    """Validate sizes; ``output_size=None`` means every position the geometry has."""
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


def _scale(n_in, n_out, scale_factor):
    """PyTorch's source/destination ratio: ``1/scale_factor`` when given, else ``in/out``."""
    return 1.0 / scale_factor if scale_factor else n_in / n_out


def nearest_table(n_in: int, n_out: int, scale_factor=None):
    """``mode='nearest'``: output ``i`` reads ``min(floor(i * scale), n_in - 1)``.

    Computed in float32 like PyTorch's CPU kernel, so ties round the same way.

    >>> nearest_table(3, 7)
    array([[0, 0, 0, 1, 1, 2, 2]])
    """
    if n_out == n_in:
        src = np.arange(n_out)
    else:
        scale = np.float32(_scale(n_in, n_out, scale_factor))
        src = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, n_in - 1)[None, :]


def linear_table(n_in: int, n_out: int, align_corners: bool, scale_factor=None,
                 dtype=np.float64):
    """Linear interpolation along one dim, PyTorch's coordinate rule: two taps and weights.

    ``align_corners=True`` maps the corner cells onto each other
    (``src = i (n_in - 1)/(n_out - 1)``); otherwise cell centres are aligned
    (``src = (i + 0.5) scale - 0.5``, clamped at 0). Arithmetic in ``dtype``, as PyTorch uses
    the input's precision.

    >>> index, weight = linear_table(2, 4, align_corners=False)
    >>> index
    array([[0, 0, 0, 1],
           [1, 1, 1, 1]])
    >>> weight
    array([[1.  , 0.75, 0.25, 1.  ],
           [0.  , 0.25, 0.75, 0.  ]])
    """
    dst = np.arange(n_out, dtype=dtype)
    if align_corners:
        scale = dtype((n_in - 1) / (n_out - 1)) if n_out > 1 else dtype(0)
        src = dst * scale
    else:
        scale = dtype(_scale(n_in, n_out, scale_factor))
        src = np.maximum((dst + dtype(0.5)) * scale - dtype(0.5), 0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, n_in - 1)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    lam1 = src - i0
    lam1 = np.where(i1 == i0, 0, lam1)
    return np.stack([i0, i1]), np.stack([1 - lam1, lam1])
