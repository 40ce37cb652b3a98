"""Max pooling: the forward gathers every window and keeps the winner, recording the selection
matrix ``P`` of this input; the backward applies ``P.T``. Windows come from the conv lowering
(:class:`MaxPool2d`), from PyTorch's adaptive bins (:class:`AdaptiveMaxPool2d`) or run across
channels (:class:`ChannelMaxPool`, maxout). With ``return_indices=True`` a pool also returns
where each maximum came from, PyTorch's indices (what :class:`~matconv.nn.MaxUnpool2d` reads).
"""
from __future__ import annotations

import numpy as np

from ..geometry import as_tuple
from ..layout import batched_input, from_batch_last, to_batch_last
from ..operators import adaptive_max_plan, channel_max_plan, max_pool_plan
from .pool_base import Pool, WindowPool, adaptive_size, resolve_adaptive

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "AdaptiveMaxPool3d", "ChannelMaxPool", "check_return_indices"]


def check_return_indices(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"return_indices must be a bool, got {value!r}")
    return bool(value)


class _MaxPool(Pool):
    """Forward: maxima and the selection ``P``; backward: ``P.T dy``; ``matrix()``: ``P``."""

    return_indices = False

    def _plan(self, channels, input_size):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x):
        x, batched = self._input(x)
        plan = self._plan(x.shape[1], tuple(x.shape[2:]))
        Y, P = plan.apply(to_batch_last(x))
        out_shape = (x.shape[0], *plan.out_shape)
        return self._outputs(P, Y, out_shape, batched, plan.channels)

    def _outputs(self, P, Y, out_shape, batched, channels):
        """The pooled output recorded with ``P``, and PyTorch's indices when asked for."""
        y = self._emit(P, Y, out_shape, batched)
        if not self.return_indices:
            return y
        indices = from_batch_last(P.spatial_indices(channels), out_shape)
        return y, np.ascontiguousarray(indices if batched else indices[0])

    def backward(self, *grads, input_grad: bool = True):
        """As :meth:`Module.backward`; with ``return_indices`` the indices need no gradient,
        so ``backward(dy)`` is enough."""
        if self.return_indices and len(grads) == 1:
            grads = (grads[0], None)
        return super().backward(*grads, input_grad=input_grad)

    def operator(self, input_shape=None):
        """The selection matrix ``P`` of the last forward (data dependent): row
        ``(c, position)`` holds a single 1 at the input cell that won its window."""
        return self._recorded_operator(input_shape)


class _MaxPoolNd(WindowPool, _MaxPool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = check_return_indices(return_indices)

    def _plan(self, channels, input_size):
        return max_pool_plan(self.pool, channels, input_size)

    def extra_repr(self):
        return super().extra_repr() + (", return_indices=True" if self.return_indices else "")


class _AdaptiveMaxPoolNd(_MaxPool):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = adaptive_size(output_size, self._ndim)
        self.return_indices = check_return_indices(return_indices)

    def _plan(self, channels, input_size):
        return adaptive_max_plan(channels, input_size,
                                 resolve_adaptive(self.output_size, input_size))

    def output_shape(self, input_shape):
        shape = self._example_shape(input_shape)
        return (shape[0], *resolve_adaptive(self.output_size, shape[1:]))

    def extra_repr(self):
        return f"output_size={self.output_size}" + (", return_indices=True"
                                                    if self.return_indices else "")


_ADAPTIVE_DOC = """Max over PyTorch's adaptive bins, so any input size gives ``output_size``
(``torch.nn.AdaptiveMaxPool{n}d``).

Parameters
----------
output_size : int or tuple of {n} ints (``None`` keeps that input size)
return_indices : bool, default False
    Also return each maximum's flat index within its channel's plane.

Examples
--------
>>> pool = AdaptiveMaxPool{n}d(1)                       # global max pooling
>>> pool(np.arange(8.0).reshape({shape})).ravel()
{expected}
"""


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    __doc__ = _ADAPTIVE_DOC.format(n=1, shape="1, 2, 4", expected="array([3., 7.])")
    _ndim = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    __doc__ = _ADAPTIVE_DOC.format(n=2, shape="1, 2, 2, 2", expected="array([3., 7.])")
    _ndim = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    __doc__ = _ADAPTIVE_DOC.format(n=3, shape="1, 1, 2, 2, 2", expected="array([7.])")
    _ndim = 3


class ChannelMaxPool(_MaxPool):
    """Max across consecutive groups of ``group_size`` channels (maxout, "max over kernels" in
    the decision blog's conv net); the gradient goes to the winning channel.

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

    _ndim = None

    def __init__(self, group_size: int):
        super().__init__()
        self.group_size = as_tuple(group_size, 1, "group_size")[0]

    def _input(self, x):
        if not isinstance(x, np.ndarray) or not 3 <= x.ndim <= 5:
            raise ValueError(f"ChannelMaxPool expects input of shape (N, C, *spatial) with 1 to "
                             f"3 spatial dims, got {getattr(x, 'shape', type(x).__name__)}")
        x, _ = batched_input(x, x.ndim - 2, "ChannelMaxPool")
        self._check_channels(x.shape[1])
        return x, True

    def _check_channels(self, channels):
        if channels % self.group_size:
            raise ValueError(f"ChannelMaxPool needs channels divisible by group_size="
                             f"{self.group_size}, got {channels} channels")

    def _plan(self, channels, input_size):
        self._check_channels(channels)
        return channel_max_plan(self.group_size, channels, input_size)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 2:
            raise ValueError(f"input_shape must be (C, *spatial), got {input_shape!r}")
        self._check_channels(shape[0])
        return (shape[0] // self.group_size, *shape[1:])

    def extra_repr(self):
        return f"group_size={self.group_size}"


_MAX_DOC = """{n}-D max pooling, like ``torch.nn.MaxPool{n}d``.

Parameters
----------
kernel_size : int or tuple
stride : int or tuple, default ``kernel_size``
padding : int or tuple, default 0
    Implicit ``-inf`` padding, at most half the effective kernel.
dilation : int or tuple, default 1
return_indices : bool, default False
    Also return PyTorch's indices: each maximum's flat position within its channel's plane
    (int64, the output's shape), as :class:`MaxUnpool{n}d` reads them.
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
