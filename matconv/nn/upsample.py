"""Upsampling as a fixed sparse matrix, so resize-convolution is a product of two matrices."""
from __future__ import annotations

import functools
import math

import numpy as np

from ..layout import batched_input
from ..lowering import window_matrix
from ..operators import FixedOperator
from ..windows import combine_tables, linear_table, nearest_table
from .pool_base import FixedPool

__all__ = ["Upsample"]

_MODE_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}


@functools.lru_cache(maxsize=32)
def _upsample_operator(mode, channels, input_size, output_size, align_corners, scales, dtype):
    tables, weights = [], []
    for n, o, s in zip(input_size, output_size, scales):
        if mode == "nearest":
            tables.append(nearest_table(n, o, s))
            weights.append(np.ones(tables[-1].shape, dtype=dtype))
        else:
            index, weight = linear_table(n, o, align_corners, s, dtype.type)
            tables.append(index)
            weights.append(weight)
    index, weight = combine_tables(tables, input_size, weights)
    M = window_matrix(index, weight.astype(dtype), channels, math.prod(input_size))
    return FixedOperator(M), output_size


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
        if (size is None) == (scale_factor is None):
            raise ValueError("give exactly one of size and scale_factor (like PyTorch), got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if mode not in ("nearest", *_MODE_DIMS):
            raise ValueError(f"mode must be one of ('nearest', 'linear', 'bilinear', "
                             f"'trilinear'), got {mode!r}")
        if align_corners is not None and mode == "nearest":
            raise ValueError("align_corners can only be set with the interpolating modes "
                             "'linear', 'bilinear' and 'trilinear' (like PyTorch)")
        if scale_factor is not None:
            for s in np.atleast_1d(scale_factor):
                if not s > 0:
                    raise ValueError(f"scale_factor must be > 0, got {scale_factor!r}")
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, bool(align_corners)

    def _input(self, x):
        nd = _MODE_DIMS.get(self.mode) or (x.ndim - 2 if isinstance(x, np.ndarray) else 2)
        if self.mode == "nearest" and nd not in (1, 2, 3):
            nd = 2
        self._ndim = nd
        x, batched = batched_input(x, nd, f"Upsample(mode={self.mode!r})")
        if not batched:
            raise ValueError(f"Upsample expects a batch of shape (N, C, *spatial) with {nd} "
                             f"spatial dims for mode={self.mode!r}, got shape {x.shape[1:]}")
        return x, batched

    def _dims_for(self, input_shape):
        nd = len(tuple(input_shape)) - 1
        if _MODE_DIMS.get(self.mode, nd) != nd or nd not in (1, 2, 3):
            raise ValueError(f"input_shape {tuple(input_shape)} has {nd} spatial dims; "
                             f"mode={self.mode!r} needs {_MODE_DIMS.get(self.mode, '1 to 3')}")
        self._ndim = nd

    def matrix(self, input_shape, *, example=0, dtype=np.float64):
        self._dims_for(input_shape)
        return super().matrix(input_shape, example=example, dtype=dtype)

    def output_shape(self, input_shape):
        self._dims_for(input_shape)
        return super().output_shape(input_shape)

    def _sizes(self, input_size):
        nd = len(input_size)
        if self.size is not None:
            out = (self.size,) * nd if isinstance(self.size, int) else tuple(self.size)
            if len(out) != nd or any(not isinstance(o, int) or o < 1 for o in out):
                raise ValueError(f"size must be a positive int or {nd} positive ints, got "
                                 f"{self.size!r}")
            return out, (None,) * nd
        scales = tuple(float(s) for s in np.broadcast_to(self.scale_factor, (nd,)))
        out = tuple(int(math.floor(n * s)) for n, s in zip(input_size, scales))
        if min(out) < 1:
            raise ValueError(f"scale_factor {self.scale_factor!r} gives an empty output for "
                             f"input size {input_size}")
        return out, scales

    def _fixed(self, channels, input_size, dtype=np.float64):
        out, scales = self._sizes(input_size)
        return _upsample_operator(self.mode, channels, tuple(input_size), out,
                                  self.align_corners, scales, np.dtype(dtype))

    def __repr__(self):
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        extra = f", align_corners={self.align_corners}" if self.mode != "nearest" else ""
        return f"Upsample({what}, mode={self.mode!r}{extra})"
