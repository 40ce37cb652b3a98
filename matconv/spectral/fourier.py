"""Circular convolutions in the Fourier basis: every singular value from small per-frequency SVDs.

Sedghi, Gupta & Long, "The singular values of convolutional layers" (ICLR 2019): a stride-1
convolution with circular padding on an input of ``N`` cells is block-circulant, so the discrete
Fourier transform block-diagonalises it. At each frequency ``f`` of the input grid it acts on the
channels as the ``C_out x C_in`` matrix ``P(f)``, and the singular values of the whole operator
are those of all the ``P(f)`` together.

Conventions, as matconv (and PyTorch) define the layer:

* cross-correlation: ``y[o, l] = sum_{c, t} w[o, c, t] x[c, (l + t d - p) mod N]`` with ``p`` the
  padding *before*, so tap ``t`` sits at grid offset ``(t d - p) mod N``. Placing the taps there
  gives a grid kernel ``h`` and ``P(f) = conj(fft(h)(f))`` (correlation conjugates the
  transform). The offset ``p`` is a circular shift: it changes no singular value, only the
  clipping's way back to the taps.
* groups: ``P(f)`` is block-diagonal, one ``C_out/G x C_in/G`` block per group.
* stride ``s`` (an extension of the same idea; ``s`` must divide ``N``): keeping every ``s``-th
  output folds the frequencies ``f' + j N/s`` onto ``f'``, so the blocks become
  ``[P(f' + j N/s)]_j / sqrt(s)``, of size ``C_out x C_in s``, one per frequency of the output
  grid.
* ``d`` dimensions: all of this per axis, ``s`` and ``N`` being products.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import as_tuple
from ..memory import check_memory
from .weights import check_weight

__all__ = [
    "circular_reason",
    "clip_fourier",
    "fft_singular_values",
    "fourier_apply",
    "fourier_blocks",
    "fourier_nbytes",
]


def circular_reason(geometry, input_size):
    """Why the Fourier formula does not describe this convolution, or ``None`` when it does.

    It needs ``padding_mode='circular'`` (or a layer that pads nothing and reads one cell per
    tap: a ``1 x 1`` convolution), a stride dividing the input size, and every output position of
    the circular grid (``output = input / stride``).

    >>> from matconv import ConvGeometry
    >>> circular_reason(ConvGeometry(1, 1, 3, padding=1, padding_mode="circular"), (8, 8)) is None
    True
    >>> circular_reason(ConvGeometry(1, 1, 3, padding=1), (8, 8))
    "padding_mode is 'zeros', the formula needs 'circular'"
    """
    pointwise = geometry.kernel_numel == 1 and all(p == (0, 0) for p in geometry.padding)
    if geometry.padding_mode != "circular" and not pointwise:
        return f"padding_mode is {geometry.padding_mode!r}, the formula needs 'circular'"
    size = tuple(input_size)
    if any(n % s for n, s in zip(size, geometry.stride)):
        return f"stride {geometry.stride} does not divide the input size {size}"
    out = geometry.output_size(size)
    if out != tuple(n // s for n, s in zip(size, geometry.stride)):
        return (f"the output size {out} is not input size / stride (the padding must total "
                f"dilation * (kernel_size - 1) per dimension)")
    return None


def _sizes(weight, input_size, stride, dilation, padding_before):
    nd = weight.ndim - 2
    size = as_tuple(tuple(input_size) if isinstance(input_size, (tuple, list)) else input_size,
                    nd, "input_size")
    stride = as_tuple(stride, nd, "stride")
    dilation = as_tuple(dilation, nd, "dilation")
    before = as_tuple(padding_before, nd, "padding_before", minimum=0)
    if any(n % s for n, s in zip(size, stride)):
        raise ValueError(f"stride {stride} must divide the input size {size} for the Fourier "
                         f"formula")
    return size, stride, dilation, before


def tap_cells(kernel_size, dilation, before, size) -> np.ndarray:
    """Flat grid cell of each tap, ``(t d - p) mod N`` per axis, taps in row-major order."""
    per_axis = [(np.arange(k) * d - p) % n for k, d, p, n in zip(kernel_size, dilation, before,
                                                                  size)]
    grids = np.meshgrid(*per_axis, indexing="ij")
    return np.ravel_multi_index([g.ravel() for g in grids], size)


def _check_groups(weight, groups):
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 \
            or weight.shape[0] % groups:
        raise ValueError(f"groups must be a positive int dividing the {weight.shape[0]} output "
                         f"channels, got {groups!r}")
    return int(groups)


def fourier_nbytes(weight_shape, input_size) -> int:
    """Estimated peak bytes of :func:`fourier_blocks`: the kernel's transform, about 3 copies."""
    return 3 * 16 * weight_shape[0] * weight_shape[1] * math.prod(input_size)


def fourier_blocks(weight, input_size, *, stride=1, dilation=1, groups=1, padding_before=0):
    """The per-frequency matrices of a circular convolution (see the module notes).

    Parameters
    ----------
    weight : ndarray of shape (C_out, C_in / groups, *kernel_size)
    input_size : int or tuple of int
        The spatial size ``N`` of the input grid.
    stride, dilation : int or tuple of int
    groups : int
    padding_before : int or tuple of int
        Where the kernel is anchored (matters for :func:`fourier_apply`, not for the spectrum).

    Returns
    -------
    ndarray of complex128, shape (*(N // stride), groups, C_out / groups, C_in / groups * S)
        ``S = prod(stride)``; columns ordered ``(input channel, alias j)``.
    """
    w = check_weight(weight)
    groups = _check_groups(w, groups)
    size, stride, dilation, before = _sizes(w, input_size, stride, dilation, padding_before)
    c_out, c_g = w.shape[:2]
    cells = math.prod(size)
    check_memory(fourier_nbytes(w.shape, size),
                 f"the Fourier transform of the kernel on the {size} grid ({c_out} x {c_g} "
                 f"channel pairs)",
                 "use a smaller input, or ask singular_values for the largest or smallest few "
                 "values (svds)")
    h = np.zeros((c_out, c_g, cells))
    taps = w.reshape(c_out, c_g, -1)
    for t, cell in enumerate(tap_cells(w.shape[2:], dilation, before, size)):
        h[:, :, cell] += taps[:, :, t]  # taps that wrap onto one cell add up, as in the operator
    axes = tuple(range(2, 2 + len(size)))
    P = np.conj(np.fft.fftn(h.reshape(c_out, c_g, *size), axes=axes))
    # frequency f = j * M + f' along each axis (M = N / s): split every axis into (j, f')
    M = tuple(n // s for n, s in zip(size, stride))
    split = [v for s, m in zip(stride, M) for v in (s, m)]
    P = P.reshape(groups, c_out // groups, c_g, *split)
    nd = len(size)
    f_axes = [3 + 2 * i + 1 for i in range(nd)]
    j_axes = [3 + 2 * i for i in range(nd)]
    P = P.transpose(*f_axes, 0, 1, 2, *j_axes)
    S = math.prod(stride)
    return P.reshape(*M, groups, c_out // groups, c_g * S) / math.sqrt(S)


def fft_singular_values(weight, input_size, *, stride=1, dilation=1, groups=1) -> np.ndarray:
    """Every singular value of a circular convolution, by Sedghi et al.'s formula.

    Parameters
    ----------
    weight : ndarray of shape (C_out, C_in / groups, *kernel_size)
        1-D, 2-D or 3-D kernels, real floats.
    input_size : int or tuple of int
        Spatial size of the input grid.
    stride : int or tuple of int, default 1
        Must divide ``input_size``; the output grid is ``input_size / stride`` (padding totalling
        ``dilation * (kernel_size - 1)``).
    dilation, groups : as for the layer

    Returns
    -------
    ndarray of float64, shape (min(m, n),)
        Descending, ``m x n`` being the operator's shape; equal to the dense SVD of the layer's
        matrix with ``padding_mode='circular'``.

    Examples
    --------
    A 1-D two-tap average on 4 cells: ``P(f) = (1 + exp(2 pi i f / 4)) / 2``.

    >>> fft_singular_values(np.full((1, 1, 2), 0.5), 4).round(6)
    array([1.      , 0.707107, 0.707107, 0.      ])
    """
    blocks = fourier_blocks(weight, input_size, stride=stride, dilation=dilation, groups=groups)
    values = np.linalg.svd(blocks, compute_uv=False).ravel()
    return np.sort(values)[::-1]


def fourier_apply(blocks, x, stride=1) -> np.ndarray:
    """Apply the operator of :func:`fourier_blocks` to one example through FFTs.

    ``x`` has shape ``(C_in, *N)``; returns ``(C_out, *(N // stride))``. Used to check the formula
    against the operator itself (``A @ x.ravel()``).
    """
    nd = x.ndim - 1
    stride = as_tuple(stride, nd, "stride")
    M = blocks.shape[:nd]
    groups, _, cols = blocks.shape[nd:]
    S = math.prod(stride)
    X = np.fft.fftn(x, axes=tuple(range(1, nd + 1)))
    split = [v for s, m in zip(stride, M) for v in (s, m)]
    X = X.reshape(groups, cols // S, *split)
    X = X.transpose(*[2 + 2 * i + 1 for i in range(nd)], 0, 1, *[2 + 2 * i for i in range(nd)])
    X = X.reshape(*M, groups, cols, 1)
    Y = (blocks @ X).reshape(*M, -1) / math.sqrt(S)
    Y = np.moveaxis(Y, -1, 0)
    return np.fft.ifftn(Y, axes=tuple(range(1, nd + 1))).real


def clip_fourier(weight, input_size, max_norm, *, stride=1, dilation=1, groups=1,
                 padding_before=0) -> np.ndarray:
    """Sedghi et al.'s clipping: every singular value above ``max_norm`` set to it, then the
    kernel projected back onto its taps.

    Each per-frequency block ``B = U diag(s) V^H`` becomes ``U diag(min(s, max_norm)) V^H``; the
    inverse transform gives a kernel on the whole grid, and keeping only the cells the taps sit
    on (the orthogonal projection onto kernels of this size) gives the new weight. The
    projection can raise the largest singular value again: iterate, or rescale after.

    Returns
    -------
    ndarray of float64, the weight's shape
    """
    w = check_weight(weight)
    size, stride_t, dilation_t, before = _sizes(w, input_size, stride, dilation, padding_before)
    cells = tap_cells(w.shape[2:], dilation_t, before, size)
    if np.unique(cells).size != cells.size:
        raise ValueError(f"the dilated kernel {w.shape[2:]} (dilation {dilation_t}) wraps around "
                         f"the input grid {size}: two taps share one cell, so the clipped kernel "
                         f"has no unique taps; use a larger input")
    B = fourier_blocks(w, size, stride=stride_t, dilation=dilation_t, groups=groups,
                       padding_before=before)
    U, s, Vh = np.linalg.svd(B, full_matrices=False)
    B = (U * np.minimum(s, max_norm)[..., None, :]) @ Vh
    # undo fourier_blocks' layout: (*M, G, O_g, C_g * S) -> (C_out, C_g, *N)
    nd = len(size)
    M = B.shape[:nd]
    c_out, c_g = w.shape[:2]
    B = B.reshape(*M, groups, c_out // groups, c_g, *stride_t) * math.sqrt(math.prod(stride_t))
    order = [nd, nd + 1, nd + 2] + [a for i in range(nd) for a in (nd + 3 + i, i)]
    P = B.transpose(*order).reshape(c_out, c_g, *size)
    h = np.fft.ifftn(np.conj(P), axes=tuple(range(2, 2 + nd))).real.reshape(c_out, c_g, -1)
    return h[:, :, cells].reshape(w.shape)

