"""Seeing an operator: which weight sits where, as numbers and as text.

:func:`weight_index_matrix` is the machine-readable core: the dense matrix of flat weight indices
(``-1`` at structural zeros). :func:`render_text` turns it into the matrix as lecture slides print
it, with ``w00 w01 ...`` in the right cells.
"""
from __future__ import annotations

import numpy as np

from .geometry import ConvGeometry
from .lowering import conv_structure
from .memory import check_memory

__all__ = ["weight_index_matrix", "weight_names", "render_text"]


def weight_index_matrix(weight_shape, input_shape, stride=1, padding=0, dilation=1, groups=1,
                        padding_mode="zeros") -> np.ndarray:
    """Dense int64 matrix of the conv operator's shape holding the flat weight index at each entry.

    Structural zeros hold ``-1``. Under a padding mode where two taps of one window read the same
    source cell (``'reflect'``, ``'replicate'``, ``'circular'`` near an edge) the entry holds the
    *first* of them in row-major tap order; the conv matrix holds the sum of both weights there.

    Parameters
    ----------
    weight_shape : tuple of int
        ``(C_out, C_in // groups, *kernel_size)``.
    input_shape : tuple of int
        ``(C_in, *spatial)``.

    Examples
    --------
    >>> weight_index_matrix((1, 1, 3), (1, 4))
    array([[ 0,  1,  2, -1],
           [-1,  0,  1,  2]])
    """
    weight_shape, input_shape = tuple(weight_shape), tuple(input_shape)
    geometry = ConvGeometry(input_shape[0], weight_shape[0], weight_shape[2:], stride, padding,
                            dilation, groups, padding_mode)
    if geometry.weight_shape != weight_shape:
        raise ValueError(f"weight_shape {weight_shape} does not fit input_shape {input_shape} "
                         f"with groups={groups}: expected {geometry.weight_shape}")
    s = conv_structure(geometry, input_shape[1:])
    check_memory(s.shape[0] * s.shape[1] * 8, f"a dense {s.shape[0]} x {s.shape[1]} matrix",
                 "inspect a smaller input or use conv_matrix (sparse)")
    out = np.full(s.shape, -1, dtype=np.int64)
    rows = np.repeat(np.arange(s.shape[0]), np.diff(s.indptr))
    # assign in reverse so that, for duplicated cells, the first tap is the one that stays
    out[rows[::-1], s.indices[::-1]] = s.weight_index[::-1]
    return out


def weight_names(weight_shape) -> list:
    """Names of the flat weights: ``w00 w01 ...`` for one channel pair, else ``w[o,c,...]``.

    >>> weight_names((1, 1, 2, 2))
    ['w00', 'w01', 'w10', 'w11']
    >>> weight_names((2, 1, 2))[:3]
    ['w[0,0,0]', 'w[0,0,1]', 'w[1,0,0]']
    """
    weight_shape = tuple(weight_shape)
    taps = list(np.ndindex(*weight_shape))
    if weight_shape[0] == weight_shape[1] == 1:
        return ["w" + "".join(map(str, t[2:])) for t in taps]
    return ["w[" + ",".join(map(str, t)) + "]" for t in taps]


def render_text(index: np.ndarray, names) -> str:
    """Aligned plain text of a weight-index matrix, ``0`` at structural zeros.

    >>> print(render_text(weight_index_matrix((1, 1, 2), (1, 3)), ["a", "b"]))
    a b 0
    0 a b
    """
    cells = np.where(index >= 0, np.asarray(list(names) + ["0"], dtype=object)[index], "0")
    width = max(len(c) for c in cells.ravel()) if cells.size else 1
    return "\n".join(" ".join(c.ljust(width) for c in row).rstrip() for row in cells)
