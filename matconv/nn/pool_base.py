"""What every pooling layer shares: input checks, the pool's geometry, and the base classes of
pools that are a fixed matrix (:class:`FixedPool`) or a sliding window (:class:`WindowPool`)."""
from __future__ import annotations

import numpy as np

from ..geometry import PoolGeometry, adaptive_output_size
from ..layout import batched_input, spatial_names, to_batch_last
from .module import Module

__all__ = ["Pool", "WindowPool", "FixedPool", "adaptive_size", "resolve_adaptive"]


class Pool(Module):
    """Arguments and shapes shared by the pools; one ``(N, C, *spatial)`` input each."""

    _ndim = 2
    _primitive = True

    def _input(self, x):
        return batched_input(x, self._ndim, type(self).__name__)

    def _example_shape(self, input_shape) -> tuple:
        """``input_shape`` validated as ``(C, *spatial)`` of one example."""
        nd = self._ndim
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != nd + 1 or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                for s in input_shape):
            raise ValueError(f"input_shape must be (C, {spatial_names(nd)}) of one example as "
                             f"positive ints, got {input_shape!r}")
        return tuple(int(s) for s in input_shape)


class WindowPool(Pool):
    """A pool over a sliding window: kernel, stride (default: the kernel), padding, ceil mode."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.pool = PoolGeometry(kernel_size, stride, padding, dilation, ceil_mode, self._ndim)

    kernel_size = property(lambda self: self.pool.kernel_size)
    stride = property(lambda self: self.pool.stride)
    padding = property(lambda self: self.pool.padding)
    dilation = property(lambda self: self.pool.dilation)
    ceil_mode = property(lambda self: self.pool.ceil_mode)

    def output_shape(self, input_shape):
        shape = self._example_shape(input_shape)
        return (shape[0], *self.pool.output_size(shape[1:]))

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        return s + (", ceil_mode=True" if self.ceil_mode else "")


class FixedPool(Pool):
    """A pool that is a fixed matrix ``M``: forward ``M x``, backward ``M.T dy``."""

    def _map(self, channels, input_size, dtype):  # pragma: no cover - abstract
        """The :class:`~matconv.operators.SparseOperator` of this pool for this input."""
        raise NotImplementedError

    def forward(self, x):
        x, batched = self._input(x)
        op = self._map(x.shape[1], tuple(x.shape[2:]), x.dtype)
        Y = op.matmat(to_batch_last(x))
        out_shape = (x.shape[0], *self.output_shape(x.shape[1:]))
        return self._emit(op, Y, out_shape, batched)

    def operator(self, input_shape=None, *, dtype=np.float64):
        """``M`` for one example of shape ``(C, *spatial)``."""
        shape = self._example_shape(input_shape)
        return self._map(shape[0], shape[1:], np.dtype(dtype))


def adaptive_size(output_size, nd):
    """An adaptive pool's validated ``output_size`` (see
    :func:`matconv.geometry.adaptive_output_size`)."""
    return adaptive_output_size(output_size, nd)


def resolve_adaptive(output_size, input_size):
    """``output_size`` with each ``None`` replaced by that dimension's input size."""
    return tuple(n if o is None else o for o, n in zip(output_size, input_size))
