"""``correlate`` and ``convolve`` for single-channel arrays, like ``scipy.signal``, lowered.

Frameworks call cross-correlation "convolution"; here the two keep their textbook names, as in
``scipy.signal``: :func:`correlate` slides the kernel as it is, :func:`convolve` flips it first
(Prayag & Amrutha's lecture on backprop for CNNs: ``h11 = x11 w22 + x12 w21 + x21 w12 +
x22 w11``). Both are a
:func:`~matconv.operators.conv_plan` operator with the padding each mode implies.
"""
from __future__ import annotations

import numpy as np

from .geometry import ConvGeometry
from .operators import conv_plan

__all__ = ["correlate", "convolve"]

MODES = ("full", "valid", "same")


def _as_float(a, name):
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    return a


def correlate(x, kernel, mode="full"):
    """Cross-correlate an N-d array (1 to 3 dims) with a kernel, like ``scipy.signal.correlate``.

    ``out[i] = sum_m x[i + m - pad] kernel[m]`` with the padding each mode implies: ``'valid'``
    none, ``'full'`` ``k - 1`` on both sides, ``'same'`` output as large as ``x``, centred like
    scipy (``(k - 1) - (k - 1) // 2`` cells before).

    Parameters
    ----------
    x, kernel : array_like
        Same number of dimensions (1, 2 or 3). Integer inputs are computed in float64.
    mode : {'full', 'valid', 'same'}, default 'full'

    Returns
    -------
    ndarray
        float64, or float32 when both inputs are float32.

    Examples
    --------
    >>> correlate([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, -1.0], mode="valid")
    array([-2., -2.])
    >>> correlate([1.0, 2.0, 3.0], [1.0, 1.0])
    array([1., 3., 5., 3.])
    """
    x, kernel = _as_float(x, "x"), _as_float(kernel, "kernel")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if x.ndim != kernel.ndim or x.ndim not in (1, 2, 3):
        raise ValueError(f"x and kernel must have the same number of dimensions, 1 to 3; got "
                         f"x.ndim={x.ndim}, kernel.ndim={kernel.ndim}")
    if x.size == 0 or kernel.size == 0:
        raise ValueError("x and kernel must not be empty")
    if mode == "valid" and any(k > n for k, n in zip(kernel.shape, x.shape)):
        if all(k >= n for k, n in zip(kernel.shape, x.shape)):
            # scipy swaps the operands: corr(x, k) = conv(x, flip k) = conv(flip k, x)
            return correlate(_flip(kernel), _flip(x), mode)
        raise ValueError(f"in 'valid' mode one of x {x.shape} and kernel {kernel.shape} must be at "
                         f"least as large as the other in every dimension")
    dtype = np.float32 if x.dtype == kernel.dtype == np.float32 else np.float64
    if mode == "valid":
        padding = 0
    elif mode == "full":
        padding = "full"
    else:
        padding = tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in kernel.shape)
    geometry = ConvGeometry(1, 1, kernel.shape, padding=padding, ndim=x.ndim)
    plan = conv_plan(geometry, x.shape)
    y = plan.at(kernel.astype(dtype).reshape(1, 1, *kernel.shape)).matmat(
        np.ascontiguousarray(x, dtype=dtype).reshape(-1, 1))
    return y.reshape(plan.output_size)


def convolve(x, kernel, mode="full"):
    """Textbook convolution (kernel flipped in every dimension), like ``scipy.signal.convolve``.

    Prayag & Amrutha's example: ``h11 = x11 w22 + x12 w21 + x21 w12 + x22 w11``.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    >>> w = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> bool(convolve(x, w, mode="valid")[0, 0] == 1 * 4 + 2 * 3 + 4 * 2 + 5 * 1)
    True
    >>> convolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    kernel = _as_float(kernel, "kernel")
    return correlate(x, _flip(kernel), mode)


def _flip(a):
    return np.asarray(a)[(slice(None, None, -1),) * np.ndim(a)]
