"""Transposed convolution the "less efficient" way of Dumoulin & Visin's convolution arithmetic
(as retold in Kuwajima's slides), for showing it equals ``A.T``.

Insert ``s - 1`` zeros between input cells (and ``output_padding`` zeros at the end), pad by
``d (k - 1) - p`` on each side, and cross-correlate with the kernel flipped in space and with its
input and output channels swapped. The result equals ``ConvTranspose`` (``A.T x``) and the
matching convolution's input gradient; this function computes it through the same lowering.
"""
from __future__ import annotations

import math

import numpy as np

from .geometry import ConvGeometry, as_tuple, check_output_padding
from .memory import check_memory
from .operators import conv_plan

__all__ = ["transposed_conv_direct"]


def transposed_conv_direct(x, weight, stride=1, padding=0, output_padding=0, dilation=1,
                           groups=1) -> np.ndarray:
    """Transposed convolution as a direct convolution of a zero-inserted, padded input.

    Parameters
    ----------
    x : ndarray of shape (N, C_in, *spatial)
    weight : ndarray of shape (C_in, C_out // groups, *kernel_size)
        PyTorch's transposed-convolution weight.
    stride, padding, output_padding, dilation, groups
        As for :class:`~matconv.nn.ConvTranspose2d`.

    Returns
    -------
    ndarray of shape (N, C_out, *out), ``out = (i - 1) s - 2p + d (k - 1) + output_padding + 1``

    Examples
    --------
    >>> x = np.array([[[1.0, 2.0]]])
    >>> w = np.array([[[1.0, 10.0, 100.0]]])
    >>> transposed_conv_direct(x, w, stride=2)
    array([[[  1.,  10., 102.,  20., 200.]]])
    """
    x, weight = _real(x, "x"), _real(weight, "weight")
    nd = weight.ndim - 2
    if nd not in (1, 2, 3) or x.ndim != nd + 2:
        raise ValueError(f"weight must be (C_in, C_out // groups, *kernel_size) with 1 to 3 kernel "
                         f"dims and x (N, C_in, *spatial) with as many, got weight "
                         f"{weight.shape} and x {x.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 \
            or x.shape[1] != weight.shape[0] or x.shape[1] % groups:
        raise ValueError(f"x has {x.shape[1]} channels; weight {weight.shape} needs "
                         f"{weight.shape[0]}, divisible by groups={groups!r}")
    s, p, a, d = (as_tuple(v, nd, name, m) for v, name, m in (
        (stride, "stride", 1), (padding, "padding", 0), (output_padding, "output_padding", 0),
        (dilation, "dilation", 1)))
    check_output_padding(a, s, d)
    k = weight.shape[2:]
    N, C_in, spatial = x.shape[0], x.shape[1], x.shape[2:]
    # 1. zeros between input cells (s - 1 each) and output_padding extra cells at the end
    grown = tuple((i - 1) * si + 1 + ai for i, si, ai in zip(spatial, s, a))
    check_memory(N * C_in * math.prod(grown) * 8, f"the zero-inserted input {(N, C_in, *grown)}",
                 "use a smaller stride or input")
    z = np.zeros((N, C_in, *grown))
    z[(slice(None), slice(None)) + tuple(slice(0, (i - 1) * si + 1, si)
                                         for i, si in zip(spatial, s))] = x
    # 2. pad by d (k - 1) - p on each side (a negative amount crops)
    pads = []
    for j, (kj, dj, pj) in enumerate(zip(k, d, p)):
        q = dj * (kj - 1) - pj
        if q < 0:
            z = z[(slice(None),) * (2 + j) + (slice(-q, z.shape[2 + j] + q),)]
            q = 0
        pads.append((q, q))
    # 3. flip the kernel in space, swap its channel roles within each group
    G = groups
    w = weight.reshape(G, C_in // G, -1, *k).swapaxes(1, 2)
    w = w.reshape(-1, C_in // G, *k)[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    geometry = ConvGeometry(C_in, w.shape[0], k, 1, tuple(pads), d, G)
    plan = conv_plan(geometry, z.shape[2:])
    Y = plan.at(np.ascontiguousarray(w)).matmat(z.reshape(N, -1).T.copy())
    return Y.T.reshape(N, w.shape[0], *plan.output_size)


def _real(a, name) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    return a.astype(np.float64)
