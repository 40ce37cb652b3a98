"""Upsampling as a fixed sparse matrix, so resize-convolution is a product of two matrices."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..geometry import resize_output_size
from ..layout import batched_input
from ..operators import upsample_operator
from .pool_base import FixedPool

__all__ = ["Upsample"]

_MODE_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}


class Upsample(FixedPool):
    """Resize by ``size`` or ``scale_factor``, like ``torch.nn.Upsample``: a sparse matrix.

    Parameters
    ----------
    size : int or tuple of int, optional
        Output spatial size.
    scale_factor : float or tuple of float, optional
        Output size ``floor(input * scale_factor)``; coordinates use ``1 / scale_factor``, as
        PyTorch does. Give exactly one of ``size`` and ``scale_factor``.
    mode : {'nearest', 'linear', 'bilinear', 'trilinear'}, default 'nearest'
        ``'linear'`` needs 1 spatial dim, ``'bilinear'`` 2, ``'trilinear'`` 3; ``'nearest'`` any.
    align_corners : bool, optional
        For the linear modes: map corner cells onto corner cells (default False, centres
        aligned).

    Notes
    -----
    ``matrix(input_shape)`` is the interpolation matrix ``U``: ``Conv2d`` after ``Upsample`` is
    the product ``A U`` (resize-convolution), and the backward is ``U.T dy``.

    Examples
    --------
    >>> up = Upsample(scale_factor=2)
    >>> up(np.array([[[[1.0, 2.0]]]]))
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.]]]])
    >>> Upsample(size=4, mode="linear")(np.array([[[0.0, 4.0]]]))
    array([[[0., 1., 3., 4.]]])
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("give exactly one of size and scale_factor (like PyTorch), got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if not isinstance(mode, str) or mode not in ("nearest", *_MODE_DIMS):
            raise ValueError(f"mode must be one of ('nearest', 'linear', 'bilinear', "
                             f"'trilinear'), got {mode!r}")
        if align_corners is not None and mode == "nearest":
            raise ValueError("align_corners can only be set with the interpolating modes "
                             "'linear', 'bilinear' and 'trilinear' (like PyTorch)")
        if scale_factor is not None:  # finite and > 0, checked now so a bad value fails early
            scales = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
            if not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                       and math.isfinite(v) and v > 0 for v in scales):
                raise ValueError(f"scale_factor must be a finite number > 0 (or one per spatial "
                                 f"dim), got {scale_factor!r}")
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, bool(align_corners)

    def _dims(self, ndim: int, what: str) -> int:
        nd = _MODE_DIMS.get(self.mode, ndim)
        if nd != ndim or nd not in (1, 2, 3):
            raise ValueError(f"Upsample expects a batch of shape (N, C, *spatial) with "
                             f"{_MODE_DIMS.get(self.mode, '1 to 3')} spatial dims for "
                             f"mode={self.mode!r}, got {what}")
        return nd

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
        return resize_output_size(self.size, self.scale_factor, tuple(input_size))

    def _map(self, channels, input_size, dtype=np.float64):
        out, scales = self._sizes(input_size)
        return upsample_operator(self.mode, channels, input_size, out, self.align_corners,
                                 scales, np.dtype(dtype))

    def output_shape(self, input_shape):
        shape = self._example_shape(input_shape)
        return (shape[0], *self._sizes(shape[1:])[0])

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        extra = f", align_corners={self.align_corners}" if self.mode != "nearest" else ""
        return f"{what}, mode={self.mode!r}{extra}"
