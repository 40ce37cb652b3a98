"""Element-wise activations and softmax: each is a diagonal (or block-diagonal) Jacobian.

The forward keeps what the derivative needs; the backward multiplies by the Jacobian's
transpose, which for an element-wise map is the same diagonal. ``matrix()`` of :class:`ReLU` is
``diag(x > 0)`` of the last forward (seed 000: the gradient passes only where ``x > 0``).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ..layout import check_float_array
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]


class _Elementwise(Module):
    """``y = f(x)``; ``dx = f'(x) * dy``; the Jacobian is ``diag(f'(x))``."""

    def forward(self, x):
        x = check_float_array(x, "input", x.dtype if isinstance(x, np.ndarray) else None)
        y, deriv = self._apply(x)
        self._saved = deriv
        return y

    def backward(self, dy):
        deriv = self._need_saved()
        if np.shape(dy) != deriv.shape:
            raise ValueError(f"grad_output must have the shape of the last forward's output "
                             f"{deriv.shape}, got {np.shape(dy)}")
        return dy * deriv

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def support_matrix(self, input_shape):
        return sp.eye_array(int(np.prod(input_shape)), format="csr")

    def derivative(self) -> np.ndarray:
        """``f'(x)`` at the last forward's input, shaped like it."""
        return self._need_saved()

    def matrix(self, input_shape=None, *, example=0):
        """``diag(f'(x))`` for one example of the last forward (a sparse diagonal)."""
        deriv = self._need_saved()
        if input_shape is not None and tuple(input_shape) != deriv.shape[1:]:
            raise ValueError(f"the last forward had input_shape {deriv.shape[1:]}, got "
                             f"{tuple(input_shape)}")
        return sp.diags_array(np.ravel(deriv[example]).astype(np.float64), format="csr")

    def __repr__(self):
        return f"{type(self).__name__}()"


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
        self.negative_slope = float(negative_slope)

    def _apply(self, x):
        slope = x.dtype.type(self.negative_slope)
        deriv = (x > 0) * (1 - slope) + slope
        return x * deriv, deriv

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"


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
    if not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise ValueError(f"dim must be an int in [{-ndim}, {ndim}) for input with {ndim} dims, "
                         f"got {dim!r}")
    return dim % ndim


class _SoftmaxBase(Module):
    """Softmax-like maps along ``dim``: every output of a slice depends on its whole slice."""

    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x):
        x = check_float_array(x, "input", x.dtype if isinstance(x, np.ndarray) else None)
        d = _check_dim(self.dim, x.ndim)
        shifted = x - x.max(axis=d, keepdims=True)  # exp cannot overflow
        y = self._apply(shifted, d)
        self._saved = (y, d)
        return y

    def __repr__(self):
        return f"{type(self).__name__}(dim={self.dim})"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def _blocks(self, input_shape):
        """Flat index table ``(groups, size along dim)`` of one example."""
        d = self._saved[1] if self._saved is not None else _check_dim(self.dim,
                                                                      len(input_shape) + 1)
        if d == 0:
            raise ValueError(f"{type(self).__name__}(dim={self.dim}) mixes examples: it has no "
                             f"per-example matrix")
        idx = np.arange(int(np.prod(input_shape))).reshape(input_shape)
        idx = np.moveaxis(idx, d - 1, -1)
        return idx.reshape(-1, idx.shape[-1])

    def support_matrix(self, input_shape):
        idx = self._blocks(tuple(input_shape))
        return _block_matrix(idx, np.ones((idx.shape[0], idx.shape[1], idx.shape[1])))

    def matrix(self, input_shape=None, *, example=0):
        """Jacobian at example ``example`` of the last forward (block-diagonal)."""
        y, _ = self._need_saved()
        idx = self._blocks(y.shape[1:])
        return _block_matrix(idx, self._jacobian_blocks(y[example].ravel()[idx]))


def _block_matrix(idx, blocks):
    n = idx.size
    rows = np.broadcast_to(idx[:, :, None], blocks.shape).ravel()
    cols = np.broadcast_to(idx[:, None, :], blocks.shape).ravel()
    return sp.coo_array((blocks.ravel().astype(np.float64), (rows, cols)), shape=(n, n)).tocsr()


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim`` (stable); the backward is ``a (dy - <dy, a>)``.

    >>> Softmax(dim=1)(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """

    @staticmethod
    def _apply(shifted, d):
        e = np.exp(shifted)
        return e / e.sum(axis=d, keepdims=True)

    def backward(self, dy):
        a, d = self._need_saved()
        return a * (dy - np.sum(dy * a, axis=d, keepdims=True))

    @staticmethod
    def _jacobian_blocks(a):
        """``diag(a) - a a^T`` per slice."""
        return a[:, :, None] * (np.eye(a.shape[1]) - a[:, None, :])


class LogSoftmax(_SoftmaxBase):
    """``x - logsumexp(x)`` along ``dim``; the backward is ``dy - softmax(x) sum(dy)``.

    >>> np.exp(LogSoftmax(dim=1)(np.array([[0.0, np.log(3.0)]])))
    array([[0.25, 0.75]])
    """

    @staticmethod
    def _apply(shifted, d):
        return shifted - np.log(np.exp(shifted).sum(axis=d, keepdims=True))

    def backward(self, dy):
        y, d = self._need_saved()
        return dy - np.exp(y) * np.sum(dy, axis=d, keepdims=True)

    @staticmethod
    def _jacobian_blocks(y):
        """``I - 1 softmax^T`` per slice."""
        return np.eye(y.shape[1]) - np.exp(y)[:, None, :]
