"""What every pooling layer shares: argument checks, output sizes, batch shapes, and the base
classes of pools that are a fixed matrix (:class:`FixedPool`) or a sliding window."""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry, as_tuple
from ..layout import batched_input, from_batch_last, spatial_names, to_batch_last
from .module import Module

__all__ = ["pool_output_size", "Pool", "WindowPool", "FixedPool", "adaptive_size",
           "resolve_adaptive"]


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


class Pool(Module):
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


class WindowPool(Pool):
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



class FixedPool(Pool):
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



def adaptive_size(output_size, nd):
    if output_size is None or isinstance(output_size, int):
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd or any(o is not None and (not isinstance(o, int) or o < 1)
                                     for o in output_size):
        raise ValueError(f"output_size must be a positive int or a tuple of {nd} positive ints "
                         f"(or None to keep that size), got {output_size!r}")
    return output_size


def resolve_adaptive(output_size, input_size):
    return tuple(n if o is None else o for o, n in zip(output_size, input_size))
