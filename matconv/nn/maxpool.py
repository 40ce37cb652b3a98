"""Max pooling: the forward gathers every window and keeps the winner, building the selection
matrix ``P`` of this input; the backward applies ``P.T``. Windows come from the conv lowering
(:class:`MaxPool2d`), from PyTorch's adaptive bins (:class:`AdaptiveMaxPool2d`) or run across
channels (:class:`ChannelMaxPool`, maxout)."""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import as_tuple
from ..layout import batched_input, from_batch_last, to_batch_last
from ..lowering import unfold_from_window, unfold_structure
from ..operators import MaxOperator
from ..windows import adaptive_bins, combine_tables
from .pool_base import Pool, WindowPool, adaptive_size, resolve_adaptive

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool2d", "ChannelMaxPool"]


class _MaxPool(Pool):
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


class _MaxPoolNd(WindowPool, _MaxPool):
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
        self.output_size = adaptive_size(output_size, self._ndim)
        self._ops = {}

    def _max_operator(self, channels, input_size):
        out = resolve_adaptive(self.output_size, input_size)
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
