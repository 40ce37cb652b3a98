"""Element-wise activations and softmax: each records its Jacobian at the input it saw.

For an element-wise map the Jacobian is the diagonal ``diag(f'(x))`` (a ReLU's is
``diag(x > 0)``: the gradient passes only where ``x > 0``); softmax and log-softmax couple the
entries of each slice. The backward multiplies by the transpose, like every layer.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.special import erf, expit

from ..layout import check_float_array, columns
from ..operators import Diagonal, SoftmaxJacobian
from ..operators.buffers import shared_pool
from .module import Module
from .tape import current_frame

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "GELU", "ELU",
           "SiLU", "Softplus", "Hardtanh"]


def _real(value, name: str) -> float:
    """``value`` as a finite float, or a ``TypeError`` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _inplace(value) -> bool:
    """PyTorch's ``inplace`` flag, accepted for its signature; matconv never overwrites input."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"inplace must be a bool, got {value!r}")
    return bool(value)


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
        # element-wise, so computed on the contiguous batch-last matrix (free for a layer's
        # output): strided 4-D views make numpy's ufuncs and casts several times slower
        X = columns(x, batched)
        with np.errstate(all="ignore"):  # IEEE results (inf, NaN) without warnings, as PyTorch
            Y, deriv = self._apply(X)
        op = Diagonal(deriv, fixed=False, dtype=Y.dtype) if self._recording() else None
        return self._emit(op, Y, x.shape if batched else (1, *x.shape), batched)

    def derivative(self) -> np.ndarray:
        """``f'(x)`` at the last forward's input, shaped like it."""
        rec = self._need_span("derivative").records[0]
        return rec.inputs[0].from_columns(rec.op.d)

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class ReLU(_Elementwise):
    """``max(x, 0)``; the gradient passes where ``x > 0`` (not at 0, like PyTorch) and where
    ``x`` is NaN (PyTorch zeroes it only where ``x <= 0``).

    ``inplace`` is accepted for PyTorch's signature and ignored (outputs are new arrays).

    >>> relu = ReLU()
    >>> relu(np.array([[-5.0, 4.0], [0.0, 2.0]]))
    array([[0., 4.],
           [0., 2.]])
    >>> relu.backward(np.ones((2, 2)))
    array([[0., 1.],
           [0., 1.]])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _inplace(inplace)

    def _apply(self, x):
        # ufuncs keep the input's memory layout (batch-last views stay views of that layout)
        # the derivative as a boolean mask (the Jacobian keeps it as such: 1/8 of the memory);
        # read from the output in one pass: y != 0 exactly where x > 0 or x is NaN
        y = np.maximum(x, 0, out=shared_pool().result(x.shape, x.dtype, "the output"))
        return y, np.not_equal(y, 0, out=shared_pool().result(x.shape, bool, "the derivative"))


class LeakyReLU(_Elementwise):
    """``x`` where ``x > 0``, else ``negative_slope * x``.

    >>> LeakyReLU(0.1)(np.array([-2.0, 3.0]))
    array([-0.2,  3. ])
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = _real(negative_slope, "negative_slope")
        self.inplace = _inplace(inplace)

    def _apply(self, x):
        slope = x.dtype.type(self.negative_slope)
        deriv = np.where(x > 0, x.dtype.type(1), slope)
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


class GELU(_Elementwise):
    """``x Phi(x)`` with ``Phi`` the standard normal CDF, like ``torch.nn.GELU``.

    Parameters
    ----------
    approximate : {'none', 'tanh'}, default 'none'
        ``'tanh'``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (Hendrycks & Gimpel,
        "Gaussian Error Linear Units", 2016), with PyTorch's derivative of that formula.

    >>> GELU()(np.array([0.0, 1.0]))
    array([0.        , 0.84134475])
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _apply(self, x):
        if self.approximate == "none":
            cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
            pdf = np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
            return x * cdf, cdf + x * pdf
        beta, kappa = math.sqrt(2 / math.pi), 0.044715
        t = np.tanh(beta * (x + kappa * x * x * x))
        left = 0.5 * x
        right = 1 + t
        return left * right, 0.5 * right + left * (1 - t * t) * beta * (1 + 3 * kappa * x * x)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class ELU(_Elementwise):
    """``x`` where ``x > 0``, else ``alpha (exp(x) - 1)``; derivative ``alpha exp(x)`` for
    ``x <= 0`` (PyTorch's rule at 0), like ``torch.nn.ELU``.

    >>> ELU()(np.array([-1.0, 2.0]))
    array([-0.63212056,  2.        ])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = _real(alpha, "alpha")
        self.inplace = _inplace(inplace)

    def _apply(self, x):
        negative = x <= 0
        e = np.exp(np.minimum(x, 0))  # no overflow on the side that is not used
        y = np.where(negative, self.alpha * (e - 1), x)
        return y, np.where(negative, self.alpha * e, 1).astype(x.dtype)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class SiLU(_Elementwise):
    """``x sigmoid(x)`` (swish), like ``torch.nn.SiLU``; derivative
    ``s (1 + x (1 - s))``.

    >>> SiLU()(np.array([0.0, 1.0]))
    array([0.        , 0.73105858])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _inplace(inplace)

    def _apply(self, x):
        s = expit(x)
        return x * s, s * (1 + x * (1 - s))


class Softplus(_Elementwise):
    """``log(1 + exp(beta x)) / beta``, and ``x`` where ``beta x > threshold`` (PyTorch's
    switch for numerical stability), like ``torch.nn.Softplus``.

    >>> Softplus()(np.array([0.0, 30.0]))
    array([ 0.69314718, 30.        ])
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = _real(beta, "beta")
        if self.beta == 0:
            raise ValueError("beta must be nonzero (Softplus divides by it), got 0")
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
                or math.isnan(threshold):
            raise TypeError(f"threshold must be a real number, got {threshold!r}")
        self.threshold = float(threshold)

    def _apply(self, x):
        z = x * self.beta
        linear = z > self.threshold
        e = np.exp(np.where(linear, 0, z))
        y = np.where(linear, x, np.log1p(e) / self.beta)
        return y, np.where(linear, 1, e / (e + 1)).astype(x.dtype)

    def extra_repr(self):
        return f"beta={self.beta:g}, threshold={self.threshold:g}"


class Hardtanh(_Elementwise):
    """``clip(x, min_val, max_val)``; the gradient passes strictly inside (not at the bounds,
    like PyTorch), like ``torch.nn.Hardtanh``.

    >>> Hardtanh()(np.array([-3.0, 0.5, 3.0]))
    array([-1. ,  0.5,  1. ])
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        self.min_val, self.max_val = _real(min_val, "min_val"), _real(max_val, "max_val")
        if not self.min_val < self.max_val:
            raise ValueError(f"min_val must be smaller than max_val, got min_val={min_val!r}, "
                             f"max_val={max_val!r}")
        self.inplace = _inplace(inplace)

    def _apply(self, x):
        outside = (x <= self.min_val) | (x >= self.max_val)
        return np.clip(x, self.min_val, self.max_val), (~outside).astype(x.dtype)

    def extra_repr(self):
        return f"min_val={self.min_val:g}, max_val={self.max_val:g}"
