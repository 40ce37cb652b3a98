"""Upsampling as a fixed sparse matrix, so resize-convolution is a product of two matrices."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..geometry import resize_output_size
from ..geometry.arithmetic import is_int
from ..geometry.pool import UPSAMPLE_MODES
from ..layout import batched_input
from ..operators import upsample_operator
from .pool_base import FixedPool

__all__ = ["Upsample"]

_INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


def _check_size(size):
    sizes = size if isinstance(size, (tuple, list)) else (size,)
    if not sizes or not all(is_int(v) and v >= 1 for v in sizes):
        raise ValueError(f"size must be a positive int or a tuple of positive ints (one per "
                         f"spatial dim), got {size!r}")
    return tuple(int(v) for v in size) if isinstance(size, (tuple, list)) else int(size)


def _check_scale(scale_factor):
    scales = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
    if not scales or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                             and math.isfinite(v) and v > 0 for v in scales):
        raise ValueError(f"scale_factor must be a finite number > 0 (or one per spatial dim), "
                         f"got {scale_factor!r}")
    return tuple(float(v) for v in scale_factor) if isinstance(scale_factor, (tuple, list)) \
        else float(scale_factor)


def _check_flag(value, name):
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True, False or None, got {value!r}")
    return None if value is None else bool(value)


class Upsample(FixedPool):
    """Resize by ``size`` or ``scale_factor``, like ``torch.nn.Upsample``: a sparse matrix.

    Parameters
    ----------
    size : int or tuple of int, optional
        Output spatial size.
    scale_factor : float or tuple of float, optional
        Output size ``floor(input * scale_factor)``; coordinates use ``1 / scale_factor``, as
        PyTorch does. Give exactly one of ``size`` and ``scale_factor``.
    mode : {'nearest', 'nearest-exact', 'linear', 'bilinear', 'bicubic', 'trilinear', 'area'}
        ``'nearest'`` reads cell ``floor(i * scale)`` (PyTorch's legacy rule),
        ``'nearest-exact'`` the cell whose centre is nearest (``floor((i + 0.5) * scale)``);
        both and ``'area'`` (adaptive average pooling to the output size) work for 1 to 3
        spatial dims. ``'linear'`` needs 1 spatial dim, ``'bilinear'`` and ``'bicubic'`` 2,
        ``'trilinear'`` 3. ``'bicubic'`` is Keys' cubic convolution with PyTorch's
        ``A = -0.75``, taps beyond the border reading the edge cell.
    align_corners : bool, optional
        For ``'linear'``, ``'bilinear'``, ``'bicubic'`` and ``'trilinear'``: map corner cells
        onto corner cells (default False: centres aligned).
    recompute_scale_factor : bool, optional
        With ``scale_factor``: True computes the output size first and then interpolates with
        ``input/output`` as PyTorch does for ``size`` (no effect on the size); False or None
        (default) interpolates with ``1 / scale_factor``.

    Notes
    -----
    ``matrix(input_shape)`` is the interpolation matrix ``U``: ``Conv2d`` after ``Upsample`` is
    the product ``A U`` (resize-convolution), and the backward is ``U.T dy``. Coefficients are
    computed in the input's precision, like PyTorch's kernels, so outputs agree with PyTorch's.
    One difference in gradients: with ``mode='nearest'`` and a ``scale_factor`` that keeps a
    size (or doubles it) without being 1 (or 2), PyTorch's backward copies (or halves indices)
    while its forward reads ``floor(i / scale_factor)``; matconv's backward is the transpose of
    the forward it computed.

    Examples
    --------
    >>> up = Upsample(scale_factor=2)
    >>> up(np.array([[[[1.0, 2.0]]]]))
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.]]]])
    >>> Upsample(size=4, mode="linear")(np.array([[[0.0, 4.0]]]))
    array([[[0., 1., 3., 4.]]])
    >>> Upsample(size=2, mode="area")(np.array([[[1.0, 3.0, 5.0, 7.0]]]))
    array([[[2., 6.]]])
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("give exactly one of size and scale_factor (like PyTorch), got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if not isinstance(mode, str) or mode not in UPSAMPLE_MODES:
            raise ValueError(f"mode must be one of {tuple(UPSAMPLE_MODES)}, got {mode!r}")
        align_corners = _check_flag(align_corners, "align_corners")
        if align_corners is not None and mode not in _INTERPOLATING:
            raise ValueError(f"align_corners can only be set with the interpolating modes "
                             f"{_INTERPOLATING} (like PyTorch), got mode={mode!r}")
        recompute = _check_flag(recompute_scale_factor, "recompute_scale_factor")
        if recompute and size is not None:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size "
                             "(like PyTorch): give scale_factor, or leave it None")
        self.size = None if size is None else _check_size(size)
        self.scale_factor = None if scale_factor is None else _check_scale(scale_factor)
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute

    def _dims(self, ndim: int, what: str) -> int:
        allowed = UPSAMPLE_MODES[self.mode]
        if ndim not in allowed:
            dims = " or ".join(map(str, allowed))
            raise ValueError(f"Upsample expects a batch of shape (N, C, *spatial) with {dims} "
                             f"spatial dims for mode={self.mode!r}, got {what}")
        return ndim

    def _input(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy ndarray, got {type(x).__name__}")
        nd = self._dims(x.ndim - 2, f"shape {x.shape}")
        return batched_input(x, nd, f"Upsample(mode={self.mode!r})")

    def _example_shape(self, input_shape):
        if not isinstance(input_shape, (tuple, list)):
            raise ValueError(f"input_shape must be (C, *spatial), got {input_shape!r}")
        self._ndim = self._dims(len(input_shape) - 1, f"input_shape {tuple(input_shape)}")
        return super()._example_shape(input_shape)

    def _sizes(self, input_size):
        out, scales = resize_output_size(self.size, self.scale_factor, tuple(input_size))
        if self.recompute_scale_factor:
            scales = (None,) * len(scales)
        return out, scales

    def _map(self, channels, input_size, dtype=np.float64):
        out, scales = self._sizes(input_size)
        return upsample_operator(self.mode, channels, input_size, out, bool(self.align_corners),
                                 scales, np.dtype(dtype))

    def output_shape(self, input_shape):
        shape = self._example_shape(input_shape)
        return (shape[0], *self._sizes(shape[1:])[0])

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        extra = f", align_corners={bool(self.align_corners)}" \
            if self.mode in _INTERPOLATING else ""
        if self.recompute_scale_factor:
            extra += ", recompute_scale_factor=True"
        return f"{what}, mode={self.mode!r}{extra}"
