"""Max unpooling, like ``torch.nn.MaxUnpool1d/2d/3d``: the transpose of a max pool's selection.

A max pool with ``return_indices=True`` hands back where each maximum came from; those indices
are the selection matrix ``P`` of that forward, and unpooling applies ``P.T``: each value goes
back to its cell, every other cell is zero. The backward is ``P`` again (a gather), exactly
PyTorch's gradient.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import as_tuple
from ..geometry.pool import pool_shorthand
from ..layout import batched_input, columns, spatial_names, to_batch_last
from ..memory import check_memory
from ..operators import unpool_operator
from .pool_base import Pool

__all__ = ["MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]


class _MaxUnpoolNd(Pool):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        nd = self._ndim
        self.kernel_size = as_tuple(pool_shorthand(kernel_size), nd, "kernel_size")
        self.stride = self.kernel_size if stride is None else \
            as_tuple(pool_shorthand(stride), nd, "stride")
        self.padding = as_tuple(pool_shorthand(padding), nd, "padding", minimum=0)

    def _default_size(self, input_size) -> tuple:
        return tuple((n - 1) * s + k - 2 * p for n, s, k, p in
                     zip(input_size, self.stride, self.kernel_size, self.padding))

    def _sizes(self, input_size, output_size=None) -> tuple:
        """PyTorch's rule: by default ``(n - 1) s + k - 2p``; an ``output_size`` (spatial, or
        the full shape) may differ from it by less than the stride."""
        nd, default = self._ndim, self._default_size(input_size)
        if output_size is None:
            size = default
        else:
            size = tuple(output_size)[2:] if isinstance(output_size, (tuple, list)) \
                and len(output_size) == nd + 2 else output_size
            if not isinstance(size, (tuple, list)) or len(size) != nd or not all(
                    isinstance(o, (int, np.integer)) and not isinstance(o, bool) for o in size):
                raise ValueError(f"output_size must be {nd} ints ({spatial_names(nd)}) or the "
                                 f"full shape of {nd + 2}, got {output_size!r}")
            for dim, (o, d, s) in enumerate(zip(size, default, self.stride)):
                if not d - s < o < d + s:
                    raise ValueError(f"output_size {tuple(size)} is invalid: dim {dim} must be "
                                     f"between {d - s} and {d + s} (exclusive) for input size "
                                     f"{tuple(input_size)}")
        if min(size) < 1:
            raise ValueError(f"{type(self).__name__} would give an empty output {tuple(size)} "
                             f"for input size {tuple(input_size)}")
        return tuple(int(o) for o in size)

    def forward(self, x, indices, output_size=None):
        """``P.T x``: every value of ``x`` placed at its index in a zero output of
        ``output_size`` (default ``(n - 1) stride + kernel_size - 2 padding``)."""
        x, batched = batched_input(x, self._ndim, type(self).__name__)
        if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
            raise TypeError(f"indices must be an integer ndarray (a max pool's return_indices), "
                            f"got {getattr(indices, 'dtype', type(indices).__name__)}")
        if indices.shape != (x.shape if batched else x.shape[1:]):
            raise ValueError(f"indices must have the input's shape "
                             f"{x.shape if batched else x.shape[1:]}, got {indices.shape}")
        size = self._sizes(x.shape[2:], output_size)
        n_out = math.prod(size)
        check_memory(x.shape[0] * x.shape[1] * n_out * x.itemsize * 2,
                     f"an unpooled output of {x.shape[0]} x {x.shape[1]} x {size}",
                     "use a smaller output_size or batch")
        if indices.size and (indices.min() < 0 or indices.max() >= n_out):
            raise ValueError(f"indices must lie in [0, {n_out}) for an output of spatial size "
                             f"{size}, got values in [{indices.min()}, {indices.max()}]")
        op = unpool_operator(columns(indices.astype(np.int64), batched), x.shape[1], n_out)
        Y = op.matmat(to_batch_last(x))
        return self._emit(op, Y, (x.shape[0], x.shape[1], *size), batched)

    def backward(self, *grads, input_grad: bool = True):
        """The input gradient ``P dy`` (the indices get none)."""
        out = super().backward(*grads, input_grad=input_grad)
        return out[0] if isinstance(out, tuple) else out

    def operator(self, input_shape=None):
        """``P.T`` of the last forward (data dependent: it depends on the indices)."""
        return self._recorded_operator(input_shape)

    def output_shape(self, input_shape, output_size=None):
        shape = self._example_shape(input_shape)
        return (shape[0], *self._sizes(shape[1:], output_size))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


_DOC = """{n}-D max unpooling, like ``torch.nn.MaxUnpool{n}d``: ``P.T`` of a max pool's selection.

Parameters
----------
kernel_size : int or tuple of {n} ints
stride : int or tuple, default ``kernel_size``
padding : int or tuple, default 0

Notes
-----
``forward(x, indices, output_size=None)`` puts each value of ``x`` at its index (from
``MaxPool{n}d(..., return_indices=True)``) in a zero output: the transpose of that pool's
selection matrix ``P``. ``backward(dy)`` is ``P dy``, PyTorch's gradient. Where indices repeat
(overlapping pool windows) the values add, as ``P.T`` does; PyTorch keeps one of them.

Examples
--------
>>> from matconv.nn import MaxPool{n}d
>>> pool, unpool = MaxPool{n}d(2, return_indices=True), MaxUnpool{n}d(2)
>>> x = np.array([[1.0, 5.0, 2.0, 0.0], [4.0, 3.0, 7.0, 8.0]]){reshape}
>>> y, indices = pool(x)
>>> unpool(y, indices).ravel()
{expected}
"""


class MaxUnpool1d(_MaxUnpoolNd):
    __doc__ = _DOC.format(n=1, reshape="[None]",
                          expected="array([0., 5., 2., 0., 4., 0., 0., 8.])")
    _ndim = 1


class MaxUnpool2d(_MaxUnpoolNd):
    __doc__ = _DOC.format(n=2, reshape="[None, None]",
                          expected="array([0., 5., 0., 0., 0., 0., 0., 8.])")
    _ndim = 2


class MaxUnpool3d(_MaxUnpoolNd):
    __doc__ = _DOC.format(n=3, reshape=".reshape(1, 1, 2, 2, 2)",
                          expected="array([0., 0., 0., 0., 0., 0., 0., 8.])")
    _ndim = 3
