r"""The per-position ("untied") bias: one learned value for every channel *and* position.

A convolution's bias is *tied*: one number per output channel, added at every position, so its
gradient is :math:`\delta` summed over the positions (and the batch). Prayag & Amrutha's
"Backpropagation for CNN" lecture writes the layer with an untied bias instead,

.. math::

    v_{x,y} = \sum_{a,b} w_{a,b}\, \varphi(v^{(l-1)}_{x-a,\,y-b}) + b_{x,y},

one :math:`b_{x,y}` per output position, and then
:math:`\partial E / \partial b_{x,y} = \delta_{x,y}` itself (summed over the batch only).
:class:`PositionBias` is that term as a layer of its own: put it after a convolution built with
``bias=False``. Adding a constant does not change the map, so its operator is the identity.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..layout import check_float_array, columns, float_dtype
from ..memory import check_memory
from ..operators import Identity as IdentityOperator
from .module import Module, Parameter

__all__ = ["PositionBias"]


def _example_shape(shape) -> tuple:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
            for s in shape):
        raise ValueError(f"shape must be the shape (C, *spatial) of one example as positive "
                         f"ints, got {shape!r}")
    return tuple(int(s) for s in shape)


class PositionBias(Module):
    """``y = x + b``: a learned bias of the shape of one example, added to every example.

    The untied bias :math:`b_{x,y}` of Prayag & Amrutha's lecture (one value per channel and
    position), where a convolution's own bias is tied (one value per channel). The backward
    passes ``dy`` through unchanged (the operator is the identity) and adds ``dy`` summed over
    the batch to ``bias.grad``: the gradient of :math:`b_{x,y}` is :math:`\\delta_{x,y}`.

    Parameters
    ----------
    shape : int or tuple of int
        ``(C, *spatial)``, the shape of one example (and of ``bias``).
    dtype : np.float32 or np.float64, default np.float32, keyword-only

    Attributes
    ----------
    bias : Parameter of shape ``shape``
        Starts at zero.

    Examples
    --------
    >>> from matconv import nn
    >>> layer = nn.PositionBias((1, 2, 2), dtype=np.float64)
    >>> layer.bias.data[...] = [[[1.0, 2.0], [3.0, 4.0]]]
    >>> layer(np.zeros((3, 1, 2, 2)))[0]
    array([[[1., 2.],
            [3., 4.]]])
    >>> dy = np.ones((3, 1, 2, 2))
    >>> layer.backward(dy)[0]                       # the identity
    array([[[1., 1.],
            [1., 1.]]])
    >>> layer.bias.grad                             # dy summed over the batch of 3
    array([[[3., 3.],
            [3., 3.]]])
    >>> layer.matrix().shape
    (4, 4)
    """

    _primitive = True

    def __init__(self, shape, *, dtype=np.float32):
        super().__init__()
        self.example_shape = _example_shape(shape)
        dtype = float_dtype(dtype)
        n = math.prod(self.example_shape)
        check_memory(2 * n * dtype.itemsize,
                     f"the parameters of PositionBias ({' x '.join(map(str, self.example_shape))})",
                     "use a smaller shape")
        self.bias = Parameter(np.zeros(self.example_shape, dtype))

    @property
    def dtype(self) -> np.dtype:
        return self.bias.data.dtype

    def _bias(self) -> np.ndarray:
        b = self.bias.data
        if not isinstance(b, np.ndarray) or b.dtype.kind != "f" or b.shape != self.example_shape:
            raise ValueError(f"bias.data must be a float array of shape {self.example_shape}, "
                             f"got {getattr(b, 'shape', type(b).__name__)}")
        return b

    def _check_shape(self, shape, name):
        k = len(self.example_shape)
        if tuple(shape[-k:]) != self.example_shape or len(shape) not in (k, k + 1):
            raise ValueError(f"PositionBias{self.example_shape} expects {name} of shape "
                             f"(N, {', '.join(map(str, self.example_shape))}) or "
                             f"{self.example_shape}, got {tuple(shape)}")
        return len(shape) == k + 1

    def forward(self, x):
        x = check_float_array(x, "input", self.dtype)
        batched = self._check_shape(x.shape, "input")
        b = self._bias()
        Y = columns(x, batched) + b.reshape(-1, 1)   # a new array: x is never written

        def grads(dY):  # d(x + b)/db is the identity at every example: sum dY over the batch
            self.bias.grad += dY.sum(axis=1).reshape(self.example_shape)

        shape = (Y.shape[1], *self.example_shape)
        return self._emit(IdentityOperator(Y.shape[0], dtype=Y.dtype), Y, shape, batched, grads)

    def operator(self, input_shape=None):
        """The identity on one example (adding the bias does not change the linear map)."""
        if input_shape is not None:
            if not isinstance(input_shape, (tuple, list)):
                raise ValueError(f"input_shape must be a tuple, got {input_shape!r}")
            if self._check_shape(tuple(input_shape), "input_shape"):
                raise ValueError(f"input_shape is one example's shape {self.example_shape}, "
                                 f"got {tuple(input_shape)}")
        return IdentityOperator(math.prod(self.example_shape), dtype=self.dtype)

    def output_shape(self, input_shape):
        self.operator(input_shape)
        return self.example_shape

    def extra_repr(self):
        return f"{self.example_shape}, dtype={self.dtype.name}"
