"""Average-type pooling: each a fixed matrix through the lowering.

* Average pooling is a fixed depthwise convolution with all-ones kernels (the conv lowering's
  ``A``), its rows scaled by PyTorch's divisors: ``M = diag(1/divisor) A``.
* Adaptive average pooling uses PyTorch's bins ``[floor(i n/o), ceil((i+1) n/o))`` as windows.
* Lp pooling is PyTorch's composition ``(prod(k) * avg_pool(x^p))^(1/p)``.

Max pooling is in :mod:`matconv.nn.maxpool`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..lowering import conv_structure, window_matrix
from ..operators import FixedOperator
from ..windows import adaptive_bins, combine_tables
from .pool_base import FixedPool, Pool, WindowPool, adaptive_size, resolve_adaptive

__all__ = ["AvgPool1d", "AvgPool2d", "AvgPool3d", "LPPool1d", "LPPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d"]


def _avg_divisors(pool, input_size, out_size):
    """PyTorch's divisor per output position (``count_include_pad``, ``divisor_override``)."""
    if pool.divisor_override:
        return np.full(math.prod(out_size), float(pool.divisor_override))
    per_dim = []
    for n, k, s, p, o in zip(input_size, pool.kernel_size, pool.stride, pool.padding, out_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if pool.count_include_pad:
            per_dim.append(end - start)
        else:
            per_dim.append(np.minimum(end, n) - np.maximum(start, 0))
    div = per_dim[0]
    for d in per_dim[1:]:
        div = np.multiply.outer(div, d)
    return np.asarray(div, dtype=np.float64).ravel()


@functools.lru_cache(maxsize=32)
def _avg_operator(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                  channels, input_size, pool_type):
    pool = pool_type(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    g = pool.geometry(channels, input_size)
    s = conv_structure(g, input_size)
    out = s.output_size
    A = s.matrix(np.ones(g.weight_shape))  # depthwise all-ones convolution
    scale = np.tile(1.0 / _avg_divisors(pool, input_size, out), channels)
    A.data *= np.repeat(scale, np.diff(A.indptr))
    return FixedOperator(A), out


class _AvgPoolNd(WindowPool, FixedPool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None and (not isinstance(divisor_override, int)
                                             or divisor_override <= 0):
            raise ValueError(f"divisor_override must be a positive int or None, got "
                             f"{divisor_override!r}")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def _fixed(self, channels, input_size, dtype=None):
        return _avg_operator(self.kernel_size, self.stride, self.padding, self.ceil_mode,
                             self.count_include_pad, self.divisor_override, channels,
                             tuple(input_size), type(self))

    def _extra_repr(self):
        s = super()._extra_repr()
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.divisor_override:
            s += f", divisor_override={self.divisor_override}"
        return s



@functools.lru_cache(maxsize=32)
def _adaptive_avg_operator(channels, input_size, out):
    tables, weights = [], []
    for n, o in zip(input_size, out):
        index, count = adaptive_bins(n, o)
        tables.append(index)
        weights.append(np.where(index >= 0, 1.0 / count, 0.0))
    index, weight = combine_tables(tables, input_size, weights)
    return FixedOperator(window_matrix(index, weight, channels, math.prod(input_size))), out


class _AdaptiveAvgPoolNd(FixedPool):
    def __init__(self, output_size):
        self.output_size = adaptive_size(output_size, self._ndim)

    def _fixed(self, channels, input_size, dtype=None):
        out = resolve_adaptive(self.output_size, input_size)
        return _adaptive_avg_operator(channels, tuple(input_size), out)

    def __repr__(self):
        return f"{type(self).__name__}(output_size={self.output_size})"



# --------------------------------------------------------------------------- Lp pooling
class _LPPoolNd(Pool):
    """``y = (prod(k) * avg_pool(x ** p)) ** (1/p)``, PyTorch's definition (sum of ``x**p``)."""

    _avg = None

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        if not isinstance(norm_type, (int, float)) or not norm_type > 0 or math.isinf(norm_type):
            raise ValueError(f"norm_type must be a positive finite number, got {norm_type!r}")
        self.norm_type = float(norm_type)
        self.pool = self._avg(kernel_size, stride, 0, ceil_mode)
        self.kernel_size, self.stride = self.pool.kernel_size, self.pool.stride

    def forward(self, x):
        x, batched = self._input(x)
        p = self.norm_type
        xp = x ** p
        total = self.pool(xp) * math.prod(self.kernel_size)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = total ** (1.0 / p)
        self._saved = (x, total, y, batched)
        return y if batched else y[0]

    def backward(self, dy):
        x, total, y, batched = self._need_saved()
        dy = dy if batched else dy[None]
        p = self.norm_type
        with np.errstate(divide="ignore", invalid="ignore"):
            dtotal = dy * (y / total / p) * (total != 0)  # d(t^(1/p))/dt = t^(1/p) / (p t)
        dxp = self.pool.backward(dtotal * math.prod(self.kernel_size))
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = dxp * p * x ** (p - 1)
        return dx if batched else dx[0]

    def output_shape(self, input_shape):
        return self.pool.output_shape(input_shape)

    def support_matrix(self, input_shape):
        return self.pool.matrix(input_shape)

    def matrix(self, input_shape=None, *, example=0):
        """Jacobian at example ``example`` of the last forward:
        ``diag(prod(k) t^(1/p) / (p t)) M diag(p x^(p-1))`` with ``t`` the window sums."""
        import scipy.sparse as sp

        x, total, y, _ = self._need_saved()
        x, total, y = x[example], total[example], y[example]
        p = self.norm_type
        M = self.pool.matrix(x.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            left = (y / total / p * (total != 0)).ravel() * math.prod(self.kernel_size)
            right = (p * x ** (p - 1)).ravel()
        return (sp.diags_array(left) @ M @ sp.diags_array(right)).tocsr()

    def __repr__(self):
        return (f"{type(self).__name__}(norm_type={self.norm_type:g}, kernel_size="
                f"{self.kernel_size}, stride={self.stride})")



_AVG_DOC = """{n}-D average pooling, like ``torch.nn.AvgPool{n}d``: a fixed depthwise convolution.

Parameters
----------
kernel_size : int or tuple
stride : int or tuple, default ``kernel_size``
padding : int or tuple, default 0
ceil_mode : bool, default False
count_include_pad : bool, default True
    Count zero-padding cells in the divisor (cells beyond the padding, from ``ceil_mode``,
    never count).
divisor_override : int, optional
    Divide every window's sum by this instead.

Notes
-----
``matrix(input_shape)`` is ``diag(1/divisor) A`` with ``A`` the all-ones depthwise conv matrix;
``backward(dy)`` multiplies by its transpose.

Examples
--------
>>> pool = AvgPool{n}d({k})
>>> pool(np.arange({size}.0).reshape({shape})).ravel()
{expected}
"""



class AvgPool1d(_AvgPoolNd):
    __doc__ = _AVG_DOC.format(n=1, k=2, size=4, shape="1, 1, 4", expected="array([0.5, 2.5])")
    _ndim = 1


class AvgPool2d(_AvgPoolNd):
    __doc__ = _AVG_DOC.format(n=2, k=2, size=16, shape="1, 1, 4, 4",
                              expected="array([ 2.5,  4.5, 10.5, 12.5])")
    _ndim = 2


class AvgPool3d(_AvgPoolNd):
    __doc__ = _AVG_DOC.format(n=3, k=2, size=8, shape="1, 1, 2, 2, 2", expected="array([3.5])")
    _ndim = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average over PyTorch's adaptive bins (``output_size=1`` is global average pooling).

    >>> AdaptiveAvgPool1d(2)(np.arange(5.0).reshape(1, 1, 5)).ravel()
    array([1., 3.])
    """
    _ndim = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average over PyTorch's adaptive bins; a model ending in one accepts any input size.

    >>> AdaptiveAvgPool2d(1)(np.arange(8.0).reshape(1, 2, 2, 2)).ravel()
    array([1.5, 5.5])
    """
    _ndim = 2


class LPPool1d(_LPPoolNd):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows, like ``torch.nn.LPPool1d``.

    >>> LPPool1d(2, 2)(np.array([[[3.0, 4.0, 6.0, 8.0]]])).ravel()
    array([ 5., 10.])
    """
    _ndim = 1
    _avg = AvgPool1d


class LPPool2d(_LPPoolNd):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows, like ``torch.nn.LPPool2d``.

    >>> LPPool2d(1, 2)(np.ones((1, 1, 4, 4))).ravel()       # p = 1: sum pooling
    array([4., 4., 4., 4.])
    """
    _ndim = 2
    _avg = AvgPool2d
