"""Pooling layers: each a matrix built from a window table of :mod:`matconv.windows`.

* Average pooling is a fixed depthwise convolution with all-ones kernels (the conv lowering's
  ``A``), its rows scaled by PyTorch's divisors: ``M = diag(1/divisor) A``.
* Max pooling gathers every window (``S x``) and keeps the winner: the forward builds the
  selection matrix ``P`` of this input, the backward applies ``P.T``.
* Lp pooling is PyTorch's composition ``(prod(k) * avg_pool(x^p))^(1/p)``.
* Adaptive pooling uses PyTorch's bins ``[floor(i n/o), ceil((i+1) n/o))`` as its windows.
* :class:`ChannelMaxPool` takes the max across groups of channels (maxout): a window over the
  channel axis.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import ConvGeometry, as_tuple
from ..layout import batched_input, from_batch_last, spatial_names, to_batch_last
from ..lowering import conv_structure, unfold_from_window, unfold_structure, window_matrix
from ..operators import FixedOperator, MaxOperator
from ..windows import adaptive_bins, combine_tables
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "LPPool1d", "LPPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "AdaptiveMaxPool2d", "ChannelMaxPool", "pool_output_size"]


def pool_output_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size; with ``ceil_mode`` the last window must start inside the
    input or the left padding.

    >>> pool_output_size(5, 2, 2, 0, 1, False), pool_output_size(5, 2, 2, 0, 1, True)
    (2, 3)
    """
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise ValueError(f"pooling window of {span} cells does not fit the padded input size "
                         f"{n} + 2*{p} = {n + 2 * p}")
    o = (n + 2 * p - span + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


class _Pool(Module):
    """Arguments and shapes shared by the pools; one ``(N, C, *spatial)`` input each."""

    _ndim = 2

    def _input(self, x):
        return batched_input(x, self._ndim, type(self).__name__)

    def _finish(self, Y, shape, batched):
        y = from_batch_last(Y, shape)
        return y if batched else y[0]

    def _grad(self, dy, shape, batched):
        dy = dy if batched else dy[None]
        if not isinstance(dy, np.ndarray) or dy.shape != shape:
            raise ValueError(f"grad_output must have the shape of the last forward's output "
                             f"{shape if batched else shape[1:]}, got {np.shape(dy)}")
        return to_batch_last(dy)


class _WindowPool(_Pool):
    """A pool over a sliding window: kernel, stride (default: the kernel), padding, ceil mode."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        nd = self._ndim
        self.kernel_size = as_tuple(kernel_size, nd, "kernel_size")
        self.stride = self.kernel_size if stride is None else as_tuple(stride, nd, "stride")
        self.padding = as_tuple(padding, nd, "padding", minimum=0)
        self.dilation = as_tuple(dilation, nd, "dilation")
        self.ceil_mode = bool(ceil_mode)
        for p, k, d in zip(self.padding, self.kernel_size, self.dilation):
            if p > (d * (k - 1) + 1) // 2:
                raise ValueError(f"padding should be at most half of the effective kernel size "
                                 f"(like PyTorch), got padding={self.padding}, kernel_size="
                                 f"{self.kernel_size}, dilation={self.dilation}")

    def geometry(self, channels: int, input_size) -> ConvGeometry:
        """The depthwise geometry of this pool; ``ceil_mode`` adds cells after the padding."""
        pads = []
        for n, k, s, p, d in zip(input_size, self.kernel_size, self.stride, self.padding,
                                 self.dilation):
            o = pool_output_size(n, k, s, p, d, self.ceil_mode)
            extra = max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
            pads.append((p, p + extra))
        return ConvGeometry(channels, channels, self.kernel_size, self.stride, tuple(pads),
                            self.dilation, groups=channels, ndim=self._ndim)

    def __repr__(self):
        return (f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}" + self._extra_repr() + ")")

    def _extra_repr(self):
        return f", ceil_mode={self.ceil_mode}" if self.ceil_mode else ""


# --------------------------------------------------------------------------- max pooling
class _MaxPool(_Pool):
    """Forward: maxima and winners; backward: ``P.T dy``; ``matrix()``: ``P`` of one example."""

    def _max_operator(self, channels, input_size) -> MaxOperator:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x):
        x, batched = self._input(x)
        N, C = x.shape[:2]
        op = self._max_operator(C, x.shape[2:])
        Y, winners = op.forward(to_batch_last(x))
        out_shape = (N, *op.out_shape)
        self._saved = (op, winners, x.shape, out_shape, batched)
        return self._finish(Y, out_shape, batched)

    def backward(self, dy):
        op, winners, in_shape, out_shape, batched = self._need_saved()
        dX = op.backward(winners, self._grad(dy, out_shape, batched), math.prod(in_shape[1:]))
        dx = from_batch_last(dX, in_shape)
        return dx if batched else dx[0]

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return self._max_operator(input_shape[0], input_shape[1:]).out_shape

    def support_matrix(self, input_shape):
        """Every window cell, ``1`` where it could win: the data-independent pattern."""
        input_shape = tuple(input_shape)
        return self._max_operator(input_shape[0], input_shape[1:]).window_pattern()

    def matrix(self, input_shape=None, *, example=0):
        """The selection matrix ``P`` of the last forward for one example (data dependent).

        Row ``(c, position)`` holds a single 1 at the input cell that won its window.
        """
        op, winners, in_shape, out_shape, _ = self._need_saved()
        if input_shape is not None and tuple(input_shape) != tuple(in_shape[1:]):
            raise ValueError(f"the last forward had input_shape {in_shape[1:]}, got "
                             f"{tuple(input_shape)}")
        N = in_shape[0]
        if not 0 <= example < N:
            raise ValueError(f"example must be in [0, {N}) (the last batch), got {example}")
        mine = winners.reshape(-1, N)[:, example] // N
        return op.selection_matrix(mine, math.prod(in_shape[1:]))


class _MaxOp(MaxOperator):
    """A :class:`MaxOperator` that knows its output shape ``(C, *spatial)``."""

    def __init__(self, unfold, channels, out_shape):
        super().__init__(unfold, channels)
        self.out_shape = out_shape


@functools.lru_cache(maxsize=32)
def _window_unfold(geometry, input_size):
    return unfold_structure(geometry, input_size)


class _MaxPoolNd(_WindowPool, _MaxPool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self._ops = {}

    def _max_operator(self, channels, input_size):
        key = (channels, tuple(input_size))
        if key not in self._ops:
            g = self.geometry(channels, input_size)
            unfold = _window_unfold(g, tuple(input_size))
            self._ops = {key: _MaxOp(unfold, channels, (channels, *unfold.output_size))}
        return self._ops[key]

    def _extra_repr(self):
        s = f", dilation={self.dilation}" if any(d != 1 for d in self.dilation) else ""
        return s + super()._extra_repr()


class AdaptiveMaxPool2d(_MaxPool):
    """Max over PyTorch's adaptive bins, so any input size gives ``output_size``.

    Parameters
    ----------
    output_size : int or tuple of 2 ints (``None`` keeps that input size)

    Examples
    --------
    >>> pool = AdaptiveMaxPool2d(1)                       # global max pooling
    >>> pool(np.arange(8.0).reshape(1, 2, 2, 2)).ravel()
    array([3., 7.])
    """

    def __init__(self, output_size):
        self.output_size = _adaptive_size(output_size, self._ndim)
        self._ops = {}

    def _max_operator(self, channels, input_size):
        out = _resolve_adaptive(self.output_size, input_size)
        key = (channels, tuple(input_size), out)
        if key not in self._ops:
            tables = [adaptive_bins(n, o)[0] for n, o in zip(input_size, out)]
            window, _ = combine_tables(tables, input_size)
            unfold = unfold_from_window(window, channels, input_size, out)
            self._ops = {key: _MaxOp(unfold, channels, (channels, *out))}
        return self._ops[key]

    def __repr__(self):
        return f"AdaptiveMaxPool2d(output_size={self.output_size})"


class ChannelMaxPool(_MaxPool):
    """Max across consecutive groups of ``group_size`` channels (maxout, seed 003's "max over
    kernels"); the gradient goes to the winning channel.

    Input ``(N, C, *spatial)`` with ``C`` divisible by ``group_size``; output
    ``(N, C // group_size, *spatial)``. Works for 1 to 3 spatial dims.

    Examples
    --------
    >>> x = np.array([[[1.0, 5.0]], [[3.0, 2.0]], [[0.0, 9.0]], [[4.0, 4.0]]])[None]
    >>> ChannelMaxPool(2)(x)                              # (1, 4, 1, 2) -> (1, 2, 1, 2)
    array([[[[3., 5.]],
    <BLANKLINE>
            [[4., 9.]]]])
    """

    def __init__(self, group_size: int):
        self.group_size = as_tuple(group_size, 1, "group_size")[0]
        self._ops = {}

    def _input(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 3:
            raise ValueError(f"ChannelMaxPool expects input of shape (N, C, *spatial) with 1 to "
                             f"3 spatial dims, got {getattr(x, 'shape', type(x).__name__)}")
        self._ndim = x.ndim - 2
        x, batched = batched_input(x, self._ndim, "ChannelMaxPool")
        if x.shape[1] % self.group_size:
            raise ValueError(f"ChannelMaxPool needs channels divisible by group_size="
                             f"{self.group_size}, got {x.shape[1]} channels")
        return x, True

    def _max_operator(self, channels, input_size):
        key = (channels, tuple(input_size))
        if key not in self._ops:
            n = math.prod(input_size)
            groups = channels // self.group_size
            # one "channel" of size C*n; output (g, pos) reads taps (g*group_size + j, pos)
            taps = np.arange(self.group_size)[:, None, None] * n
            start = (np.arange(groups) * self.group_size * n)[None, :, None]
            window = (taps + start + np.arange(n)[None, None, :]).reshape(self.group_size, -1)
            unfold = unfold_from_window(window, 1, (channels * n,), (groups * n,))
            self._ops = {key: _MaxOp(unfold, 1, (groups, *input_size))}
        return self._ops[key]

    def __repr__(self):
        return f"ChannelMaxPool(group_size={self.group_size})"


# --------------------------------------------------------------------------- fixed maps
class _FixedPool(_Pool):
    """A pool that is a fixed matrix ``M``: forward ``M x``, backward ``M.T dy``."""

    is_linear = True

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return (input_shape[0], *self._fixed(input_shape[0], input_shape[1:], np.float64)[1])

    def _fixed(self, channels, input_size, dtype):  # pragma: no cover - abstract
        """``(FixedOperator, output spatial size)`` for this input."""
        raise NotImplementedError

    def forward(self, x):
        x, batched = self._input(x)
        op, out = self._fixed(x.shape[1], tuple(x.shape[2:]), x.dtype)
        Y = op.forward(to_batch_last(x))
        out_shape = (x.shape[0], x.shape[1], *out)
        self._saved = (op, x.shape, out_shape, batched)
        return self._finish(Y, out_shape, batched)

    def backward(self, dy):
        op, in_shape, out_shape, batched = self._need_saved()
        dx = from_batch_last(op.backward(self._grad(dy, out_shape, batched)), in_shape)
        return dx if batched else dx[0]

    def matrix(self, input_shape, *, example=0, dtype=np.float64):
        """``M`` for one example of shape ``(C, *spatial)`` (CSR)."""
        input_shape = tuple(input_shape)
        if len(input_shape) != self._ndim + 1:
            raise ValueError(f"input_shape must be (C, {spatial_names(self._ndim)}), got "
                             f"{input_shape}")
        return self._fixed(input_shape[0], input_shape[1:], np.dtype(dtype))[0].matrix(dtype)


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


class _AvgPoolNd(_WindowPool, _FixedPool):
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


def _adaptive_size(output_size, nd):
    if output_size is None or isinstance(output_size, int):
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd or any(o is not None and (not isinstance(o, int) or o < 1)
                                     for o in output_size):
        raise ValueError(f"output_size must be a positive int or a tuple of {nd} positive ints "
                         f"(or None to keep that size), got {output_size!r}")
    return output_size


def _resolve_adaptive(output_size, input_size):
    return tuple(n if o is None else o for o, n in zip(output_size, input_size))


@functools.lru_cache(maxsize=32)
def _adaptive_avg_operator(channels, input_size, out):
    tables, weights = [], []
    for n, o in zip(input_size, out):
        index, count = adaptive_bins(n, o)
        tables.append(index)
        weights.append(np.where(index >= 0, 1.0 / count, 0.0))
    index, weight = combine_tables(tables, input_size, weights)
    return FixedOperator(window_matrix(index, weight, channels, math.prod(input_size))), out


class _AdaptiveAvgPoolNd(_FixedPool):
    def __init__(self, output_size):
        self.output_size = _adaptive_size(output_size, self._ndim)

    def _fixed(self, channels, input_size, dtype=None):
        out = _resolve_adaptive(self.output_size, input_size)
        return _adaptive_avg_operator(channels, tuple(input_size), out)

    def __repr__(self):
        return f"{type(self).__name__}(output_size={self.output_size})"


# --------------------------------------------------------------------------- Lp pooling
class _LPPoolNd(_Pool):
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


# --------------------------------------------------------------------------- public classes
_MAX_DOC = """{n}-D max pooling, like ``torch.nn.MaxPool{n}d``.

Parameters
----------
kernel_size : int or tuple
stride : int or tuple, default ``kernel_size``
padding : int or tuple, default 0
    Implicit ``-inf`` padding, at most half the effective kernel.
dilation : int or tuple, default 1
ceil_mode : bool, default False
    Round the output size up; a window must still start inside the input or left padding.

Notes
-----
Ties go to the first maximum in row-major window order, so exactly one cell receives each
gradient; overlapping windows accumulate; NaN propagates. ``matrix()`` is the selection matrix
``P`` of the last forward, and ``backward(dy)`` is ``P.T dy``.

Examples
--------
>>> x = np.array([[1.0, 1.0, 2.0, 4.0], [5.0, 6.0, 7.0, 8.0],
...               [3.0, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]]){reshape}
>>> pool = MaxPool{n}d({k})
>>> pool(x).ravel()
{expected}
"""

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


class MaxPool1d(_MaxPoolNd):
    __doc__ = _MAX_DOC.format(n=1, k=2, reshape=".reshape(1, 2, 8)",
                              expected="array([1., 4., 6., 8., 3., 1., 2., 4.])")
    _ndim = 1


class MaxPool2d(_MaxPoolNd):
    __doc__ = _MAX_DOC.format(n=2, k=2, reshape="[None, None]",
                              expected="array([6., 8., 3., 4.])")
    _ndim = 2


class MaxPool3d(_MaxPoolNd):
    __doc__ = _MAX_DOC.format(n=3, k=(1, 2, 2), reshape="[None, None, None]",
                              expected="array([6., 8., 3., 4.])")
    _ndim = 3


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
