"""Element-wise activations and softmax: each records its Jacobian at the input it saw.

For an element-wise map the Jacobian is the diagonal ``diag(f'(x))`` (a ReLU's is
``diag(x > 0)``: the gradient passes only where ``x > 0``); softmax and log-softmax couple the
entries of each slice. The backward multiplies by the transpose, like every layer.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.special import expit

from ..layout import check_float_array, columns
from ..operators import Diagonal, SoftmaxJacobian
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]


class _Pointwise(Module):
    """Layers that see one array of any shape (the first axis is the batch when it has two or
    more axes, or when the layer before said so)."""

    _primitive = True

    def _check(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{type(self).__name__} expects input as a numpy ndarray, got "
                            f"{type(x).__name__}")
        return check_float_array(x, "input", x.dtype if x.dtype.kind == "f" else np.float64)

    def _batched(self, x) -> bool:
        frame_node = self._input_node()
        if frame_node is not None and frame_node.batched is not None:
            return frame_node.batched
        return x.ndim >= 2

    def _input_node(self):
        from .tape import current_frame

        frame = current_frame()
        return frame.inputs[0] if frame is not None and frame.module is self else None

    def _record(self, op_of_columns, y, batched):
        shape = y.shape if batched else (1, *y.shape)
        Y = columns(y, batched)
        return self._emit(op_of_columns, Y, shape, batched)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def operator(self, input_shape=None):
        """The Jacobian at the last forward (data dependent)."""
        return self._recorded_operator(input_shape)


class _Elementwise(_Pointwise):
    """``y = f(x)``; ``dx = f'(x) * dy``; the Jacobian is ``diag(f'(x))``."""

    def forward(self, x):
        x = self._check(x)
        batched = self._batched(x)
        y, deriv = self._apply(x)
        op = Diagonal(columns(deriv, batched), fixed=False) if self._recording() else None
        return self._record(op, y, batched)

    def derivative(self) -> np.ndarray:
        """``f'(x)`` at the last forward's input, shaped like it."""
        rec = self._need_span("derivative").records[0]
        return rec.inputs[0].from_columns(rec.op.d)

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class ReLU(_Elementwise):
    """``max(x, 0)``; the gradient passes where ``x > 0`` (not at 0, like PyTorch).

    >>> relu = ReLU()
    >>> relu(np.array([[-5.0, 4.0], [0.0, 2.0]]))
    array([[0., 4.],
           [0., 2.]])
    >>> relu.backward(np.ones((2, 2)))
    array([[0., 1.],
           [0., 1.]])
    """

    def _apply(self, x):
        # ufuncs keep the input's memory layout (batch-last views stay views of that layout)
        return np.maximum(x, 0), (x > 0).astype(x.dtype)


class LeakyReLU(_Elementwise):
    """``x`` where ``x > 0``, else ``negative_slope * x``.

    >>> LeakyReLU(0.1)(np.array([-2.0, 3.0]))
    array([-0.2,  3. ])
    """

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real) \
                or not math.isfinite(float(negative_slope)) or abs(float(negative_slope)) > 1e300:
            raise TypeError(f"negative_slope must be a finite real number, got "
                            f"{negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def _apply(self, x):
        slope = x.dtype.type(self.negative_slope)
        deriv = (x > 0) * (1 - slope) + slope
        return x * deriv, deriv

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))`` (overflow-free), derivative ``a (1 - a)``.

    >>> Sigmoid()(np.array([0.0, 1000.0, -1000.0]))
    array([0.5, 1. , 0. ])
    """

    def _apply(self, x):
        a = expit(x)
        return a, a * (1 - a)


class Tanh(_Elementwise):
    """``tanh(x)``, derivative ``1 - tanh(x)^2``.

    >>> Tanh()(np.array([0.0]))
    array([0.])
    """

    def _apply(self, x):
        a = np.tanh(x)
        return a, 1 - a * a


def _check_dim(dim, ndim):
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -ndim <= dim < ndim:
        raise ValueError(f"dim must be an int in [{-ndim}, {ndim}) for input with {ndim} dims, "
                         f"got {dim!r}")
    return int(dim) % ndim


class _SoftmaxBase(_Pointwise):
    """Softmax-like maps along ``dim``: every output of a slice depends on its whole slice."""

    def __init__(self, dim: int = -1):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"dim must be an int, got {dim!r}")
        self.dim = int(dim)

    def forward(self, x):
        x = self._check(x)
        d = _check_dim(self.dim, x.ndim)
        batched = self._batched(x)
        shifted = x - x.max(axis=d, keepdims=True)  # exp cannot overflow
        y, probs = self._apply(shifted, d)
        op = None
        if self._recording():
            a = probs if batched else probs[None]
            op = SoftmaxJacobian(a, d + (0 if batched else 1), log=self._log)
        return self._record(op, y, batched)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim`` (stable); the Jacobian is ``diag(a) - a a^T``.

    >>> Softmax(dim=1)(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """

    _log = False

    @staticmethod
    def _apply(shifted, d):
        e = np.exp(shifted)
        a = e / e.sum(axis=d, keepdims=True)
        return a, a


class LogSoftmax(_SoftmaxBase):
    """``x - logsumexp(x)`` along ``dim``; the Jacobian is ``I - 1 softmax(x)^T``.

    >>> np.exp(LogSoftmax(dim=1)(np.array([[0.0, np.log(3.0)]])))
    array([[0.25, 0.75]])
    """

    _log = True

    @staticmethod
    def _apply(shifted, d):
        y = shifted - np.log(np.exp(shifted).sum(axis=d, keepdims=True))
        return y, np.exp(y)
