"""Dense layers and shape plumbing: Linear, Flatten, Dropout."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..layout import check_float_array, from_batch_last, to_batch_last
from .init import check_dtype, default_rng, uniform_fan_in
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Dropout"]


class Linear(Module):
    """``y = x W.T + b``, like ``torch.nn.Linear``; the backward is ``W.T`` applied to ``dy``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : np.float32 or np.float64, keyword-only
    rng : numpy.random.Generator, optional, keyword-only

    Attributes
    ----------
    weight : Parameter of shape (out_features, in_features)
    bias : Parameter of shape (out_features,) or None

    Examples
    --------
    >>> fc = Linear(3, 2, dtype=np.float64)
    >>> fc.weight.data[...] = [[1, 0, 0], [0, 1, 1]]
    >>> fc.bias.data[...] = 0
    >>> fc(np.array([[1.0, 2.0, 3.0]]))
    array([[1., 5.]])
    >>> fc.backward(np.array([[1.0, 1.0]]))
    array([[1., 1., 1.]])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, rng=None):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = check_dtype(dtype)
        self.weight = Parameter(uniform_fan_in((out_features, in_features), in_features, dtype,
                                               rng))
        self.bias = Parameter(uniform_fan_in((out_features,), in_features, dtype, rng)) \
            if bias else None

    @property
    def dtype(self):
        return self.weight.data.dtype

    def forward(self, x):
        x = check_float_array(x, "input", self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects input of shape (..., {self.in_features}), got "
                             f"shape {x.shape}")
        lead = x.shape[:-1]
        X = to_batch_last(x.reshape(-1, self.in_features)) if x.ndim > 1 else x[:, None]
        Y = self.weight.data @ X  # (out, N)
        if self.bias is not None:
            Y += self.bias.data[:, None]
        self._saved = (X, lead)
        y = from_batch_last(Y, (Y.shape[1], self.out_features))
        return y.reshape(*lead, self.out_features)

    def backward(self, dy):
        X, lead = self._need_saved()
        dy = check_float_array(dy, "grad_output", self.dtype)
        if dy.shape != (*lead, self.out_features):
            raise ValueError(f"grad_output must have shape {(*lead, self.out_features)}, got "
                             f"{dy.shape}")
        dY = to_batch_last(dy.reshape(-1, self.out_features)) if dy.ndim > 1 else dy[:, None]
        self.weight.grad += dY @ X.T
        if self.bias is not None:
            self.bias.grad += dY.sum(axis=1)
        dX = self.weight.data.T @ dY
        return from_batch_last(dX, (dX.shape[1], self.in_features)).reshape(*lead,
                                                                             self.in_features)

    is_linear = True

    def output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.out_features)

    def matrix(self, input_shape=None, *, example=0):
        """``W`` as a CSR array (the layer's linear map, no bias); ``kron(I, W)`` when each
        example has leading dims, e.g. ``input_shape=(T, in_features)``."""
        W = sp.csr_array(self.weight.data.astype(np.float64))
        lead = int(np.prod(tuple(input_shape)[:-1])) if input_shape is not None else 1
        return W if lead == 1 else sp.kron(sp.eye_array(lead), W, format="csr")

    def __repr__(self):
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.dtype.name})")


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one, like ``torch.nn.Flatten`` (a view when it can be).

    >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy ndarray, got {type(x).__name__}")
        s, e = self.start_dim % x.ndim, self.end_dim % x.ndim
        if s > e:
            raise ValueError(f"start_dim ({self.start_dim}) must not come after end_dim "
                             f"({self.end_dim}) for input with {x.ndim} dims")
        self._saved = x.shape
        return x.reshape(*x.shape[:s], -1, *x.shape[e + 1:])

    def backward(self, dy):
        return np.reshape(dy, self._need_saved())

    is_linear = True

    def output_shape(self, input_shape):
        shape = (1, *tuple(input_shape))
        s, e = self.start_dim % len(shape), self.end_dim % len(shape)
        return (*shape[:s], int(np.prod(shape[s:e + 1])), *shape[e + 1:])[1:]

    def matrix(self, input_shape, *, example=0):
        """The identity: flattening moves no number."""
        return sp.eye_array(int(np.prod(input_shape)), format="csr")

    def __repr__(self):
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


class Dropout(Module):
    """Zero each element with probability ``p`` in training and scale the rest by ``1/(1-p)``;
    the identity in evaluation mode.

    >>> drop = Dropout(0.5, rng=np.random.default_rng(0))
    >>> y = drop(np.ones((2, 4)))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, *, rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng

    def forward(self, x):
        if not self.training or self.p == 0:
            self._saved = None
            return x
        rng = self.rng if self.rng is not None else default_rng()
        keep = (rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1 - self.p)
        self._saved = keep
        return x * keep

    def backward(self, dy):
        return dy if self._saved is None else dy * self._saved

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def support_matrix(self, input_shape):
        return sp.eye_array(int(np.prod(input_shape)), format="csr")

    def matrix(self, input_shape=None, *, example=0):
        """``diag(mask / (1 - p))`` of the last training forward; the identity in evaluation."""
        if self._saved is None:
            return sp.eye_array(int(np.prod(input_shape)), format="csr")
        return sp.diags_array(self._saved[example].ravel().astype(np.float64), format="csr")

    def __repr__(self):
        return f"Dropout(p={self.p})"
