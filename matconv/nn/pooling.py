"""Average-type pooling: each a fixed matrix through the lowering.

* Average pooling is a fixed depthwise convolution with all-ones kernels, its rows scaled by
  PyTorch's divisors: ``M = diag(1/divisor) A``.
* Adaptive average pooling uses PyTorch's bins ``[floor(i n/o), ceil((i+1) n/o))`` as windows.
* Lp pooling is PyTorch's composition ``(prod(k) * avg_pool(x^p))^(1/p)``; its Jacobian is
  ``diag(prod(k) u^(1/p - 1) / p) M diag(p x^(p-1))`` with ``u = prod(k) t``, ``t`` the window
  averages (zero where ``t = 0``, as PyTorch); ``p = inf`` is max pooling of ``|x|``.

Max pooling is in :mod:`matconv.nn.maxpool`.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..geometry import PoolGeometry
from ..layout import to_batch_last
from ..operators import Diagonal, adaptive_avg_operator, avg_pool_operator, max_pool_plan
from .pool_base import FixedPool, Pool, WindowPool, adaptive_size, resolve_adaptive

__all__ = ["AvgPool1d", "AvgPool2d", "AvgPool3d", "LPPool1d", "LPPool2d", "LPPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"]


class _AvgPoolNd(WindowPool, FixedPool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None and (not isinstance(divisor_override, numbers.Integral)
                                             or isinstance(divisor_override, bool)
                                             or divisor_override == 0):
            raise ValueError(f"divisor_override must be a nonzero int or None (like PyTorch), "
                             f"got {divisor_override!r}")
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def _map(self, channels, input_size, dtype=None):
        return avg_pool_operator(self.pool, channels, input_size, self.count_include_pad,
                                 self.divisor_override)

    def extra_repr(self):
        s = super().extra_repr()
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.divisor_override:
            s += f", divisor_override={self.divisor_override}"
        return s


class _AdaptiveAvgPoolNd(FixedPool):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = adaptive_size(output_size, self._ndim)

    def _map(self, channels, input_size, dtype=None):
        out = resolve_adaptive(self.output_size, input_size)
        return adaptive_avg_operator(channels, input_size, out)

    def output_shape(self, input_shape):
        shape = self._example_shape(input_shape)
        return (shape[0], *resolve_adaptive(self.output_size, shape[1:]))

    def extra_repr(self):
        return f"output_size={self.output_size}"


# --------------------------------------------------------------------------- Lp pooling
class _LPPoolNd(Pool):
    """``y = (prod(k) * avg_pool(x ** p)) ** (1/p)``, PyTorch's definition (sum of ``x**p``);
    ``p = inf`` is max pooling of ``|x|`` and ``p = -inf`` its minimum."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) \
                or math.isnan(norm_type) or norm_type == 0:
            raise ValueError(f"norm_type must be a nonzero number (inf for max pooling of |x|, "
                             f"like PyTorch), got {norm_type!r}")
        # kept as given (an int stays an int, as PyTorch keeps it); the arithmetic is in floats
        self.norm_type = int(norm_type) if isinstance(norm_type, numbers.Integral) \
            else float(norm_type)
        self.pool = PoolGeometry(kernel_size, stride, 0, 1, ceil_mode, self._ndim)

    kernel_size = property(lambda self: self.pool.kernel_size)
    stride = property(lambda self: self.pool.stride)
    ceil_mode = property(lambda self: self.pool.ceil_mode)

    def forward(self, x):
        x, batched = self._input(x)
        out = (x.shape[0], x.shape[1], *self.pool.output_size(x.shape[2:]))
        X = to_batch_last(x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            Y, op = self._max(X, x.shape) if math.isinf(self.norm_type) else self._power(X, x)
        return self._emit(op, Y, out, batched)

    def _power(self, X, x):
        p, taps = float(self.norm_type), math.prod(self.kernel_size)
        M = avg_pool_operator(self.pool, x.shape[1], tuple(x.shape[2:]))
        t = M.matmat(X ** p)
        u = t * taps
        Y = u ** (1.0 / p)
        # PyTorch differentiates sign(t) * relu(|t|): zero where t == 0, a factor sign(t)^2
        # elsewhere (its sign of NaN is 0)
        sign2 = np.where(np.isnan(t), 0, np.sign(t)) ** 2
        left = np.where(t == 0, 0, (taps / p) * u ** (1.0 / p - 1) * sign2).astype(X.dtype)
        right = (p * X ** (p - 1)).astype(X.dtype)
        return Y, Diagonal(left) @ M @ Diagonal(right)

    def _max(self, X, shape):
        """``max |x|`` (``-max(-|x|)`` for ``-inf``): the selection ``P`` times ``diag(sgn x)``."""
        plan = max_pool_plan(self.pool, shape[1], tuple(shape[2:]))
        flip = 1 if self.norm_type > 0 else -1
        Y, P = plan.apply(flip * np.abs(X))
        sgn = np.where(np.isnan(X), 0, np.sign(X)).astype(X.dtype)
        return flip * Y, P @ Diagonal(sgn)

    def output_shape(self, input_shape):
        shape = self._example_shape(input_shape)
        return (shape[0], *self.pool.output_size(shape[1:]))

    def operator(self, input_shape=None):
        """The Jacobian at the last forward (data dependent)."""
        return self._recorded_operator(input_shape)

    def extra_repr(self):
        return f"norm_type={self.norm_type:g}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}" + (", ceil_mode=True" if self.ceil_mode else "")


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
    Divide every window's sum by this instead (any nonzero int, negative too, like PyTorch).

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


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Average over PyTorch's adaptive bins in 3-D.

    >>> AdaptiveAvgPool3d((1, 1, 2))(np.arange(8.0).reshape(1, 1, 2, 2, 2)).ravel()
    array([3., 4.])
    """
    _ndim = 3


class LPPool1d(_LPPoolNd):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows, like ``torch.nn.LPPool1d``.

    >>> LPPool1d(2, 2)(np.array([[[3.0, 4.0, 6.0, 8.0]]])).ravel()
    array([ 5., 10.])
    """
    _ndim = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows, like ``torch.nn.LPPool2d``.

    >>> LPPool2d(1, 2)(np.ones((1, 1, 4, 4))).ravel()       # p = 1: sum pooling
    array([4., 4., 4., 4.])
    >>> LPPool2d(float("inf"), 2)(-np.arange(16.0).reshape(1, 1, 4, 4)).ravel()  # max |x|
    array([ 5.,  7., 13., 15.])
    """
    _ndim = 2


class LPPool3d(_LPPoolNd):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows, like ``torch.nn.LPPool3d``.

    >>> LPPool3d(2, 2)(np.full((1, 1, 2, 2, 2), 0.5)).ravel()
    array([1.41421356])
    """
    _ndim = 3
