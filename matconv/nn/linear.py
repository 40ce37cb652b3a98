"""Dense layers and shape plumbing: Linear, Flatten, Dropout, Identity."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..layout import check_float_array, columns, float_dtype
from ..operators import Dense, Diagonal
from ..operators import Identity as IdentityOperator
from .init import default_rng
from .module import Module, init_parameter

__all__ = ["Linear", "Flatten", "Dropout", "Identity"]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


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

    _primitive = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        dtype = float_dtype(dtype)
        self.weight = init_parameter((self.out_features, self.in_features), self.in_features,
                                     dtype, rng, "Linear")
        self.bias = init_parameter((self.out_features,), self.in_features, dtype, rng,
                                   "Linear") if bias else None

    @property
    def dtype(self):
        return self.weight.data.dtype

    def _W(self):
        w = self.weight.data
        if not isinstance(w, np.ndarray) or w.dtype.kind != "f" or w.shape != (
                self.out_features, self.in_features):
            raise ValueError(f"weight.data must be a float array of shape "
                             f"{(self.out_features, self.in_features)}, got "
                             f"{getattr(w, 'shape', type(w).__name__)}")
        return w

    def forward(self, x):
        x = check_float_array(x, "input", self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects input of shape (..., {self.in_features}), got "
                             f"shape {x.shape}")
        batched = x.ndim > 1
        repeat = math.prod(x.shape[1:-1]) if batched else 1
        op = Dense(self._W(), repeat)
        X = columns(x, batched)
        Y = op.matmat(X)
        if self.bias is not None:
            Y.reshape(repeat, self.out_features, -1)[...] += self.bias.data[:, None]

        def grads(dY):  # dW = dY X.T over every position, db = sum dY
            d3 = dY.reshape(repeat, self.out_features, -1)
            x3 = X.reshape(repeat, self.in_features, -1)
            self.weight.grad += np.matmul(d3, x3.transpose(0, 2, 1)).sum(axis=0) \
                if repeat > 1 else dY @ X.T
            if self.bias is not None:
                self.bias.grad += d3.sum(axis=(0, 2))

        shape = (*x.shape[:-1], self.out_features) if batched else (1, self.out_features)
        return self._emit(op, Y, shape, batched, grads)

    def operator(self, input_shape=None):
        """``W`` (or ``kron(I, W)`` when each example has leading positions, e.g.
        ``input_shape=(T, in_features)``), no bias."""
        shape = (self.in_features,) if input_shape is None else tuple(input_shape)
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"input_shape must end in in_features={self.in_features}, got "
                             f"{input_shape!r}")
        return Dense(self._W(), math.prod(shape[:-1]))

    def output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.out_features)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.dtype.name}")


class _Reshaping(Module):
    """Layers whose Jacobian is the identity (only the shape, or nothing, changes)."""

    _primitive = True

    def _identity(self, x, y, batched=True):
        x = np.asarray(x)
        n = math.prod(x.shape[1:]) if batched else x.size
        Y = columns(y, batched)
        return self._emit(IdentityOperator(n, dtype=x.dtype), Y,
                          y.shape if batched else (1, *y.shape), batched)

    def output_shape(self, input_shape):
        return tuple(input_shape)


class Flatten(_Reshaping):
    """Merge dims ``start_dim..end_dim`` into one, like ``torch.nn.Flatten`` (a view if it can).

    >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, v in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {v!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def _dims(self, ndim):
        for name, v in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -ndim <= v < ndim:
                raise ValueError(f"{name}={v} is out of range for input with {ndim} dims "
                                 f"(allowed: {-ndim} to {ndim - 1})")
        s, e = self.start_dim % ndim, self.end_dim % ndim
        if s > e:
            raise ValueError(f"start_dim ({self.start_dim}) must not come after end_dim "
                             f"({self.end_dim}) for input with {ndim} dims")
        return s, e

    def _flat_shape(self, shape):
        s, e = self._dims(len(shape))
        return (*shape[:s], math.prod(shape[s:e + 1]), *shape[e + 1:])

    def forward(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy ndarray, got {type(x).__name__}")
        if x.ndim == 0:
            raise ValueError("Flatten needs an input with at least one dimension")
        y = x.reshape(self._flat_shape(x.shape))
        return self._identity(x, y, batched=self.start_dim % x.ndim > 0)

    def operator(self, input_shape=None):
        """The identity: flattening moves no number."""
        return IdentityOperator(math.prod(tuple(input_shape)))

    def output_shape(self, input_shape):
        return self._flat_shape((1, *tuple(input_shape)))[1:]

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(_Reshaping):
    """Returns its input, like ``torch.nn.Identity`` (arguments are accepted and ignored).

    >>> Identity(54, unused="x")(np.ones(2))
    array([1., 1.])
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy ndarray, got {type(x).__name__}")
        return self._identity(x, x, batched=x.ndim >= 2)

    def operator(self, input_shape=None):
        return IdentityOperator(math.prod(tuple(input_shape)))


class Dropout(_Reshaping):
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
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
        self.p = float(p)
        self.rng = rng

    def forward(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy ndarray, got {type(x).__name__}")
        x = check_float_array(x, "input", x.dtype if x.dtype.kind == "f" else np.float64)
        batched = x.ndim >= 2
        if not self.training or self.p == 0:
            return self._identity(x, x, batched)
        rng = self.rng if self.rng is not None else default_rng()
        keep = (rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1 - self.p)
        y = x * keep
        return self._emit(Diagonal(columns(keep, batched), fixed=False), columns(y, batched),
                          y.shape if batched else (1, *y.shape), batched)

    def operator(self, input_shape=None):
        """``diag(mask / (1 - p))`` of the last training forward; the identity in evaluation."""
        if not self.training or self.p == 0:
            return IdentityOperator(math.prod(tuple(input_shape)))
        return self._recorded_operator(input_shape)

    def extra_repr(self):
        return f"p={self.p}"
