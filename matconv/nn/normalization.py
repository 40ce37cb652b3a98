"""Normalisation layers with PyTorch's names, arguments and formulas: ``LayerNorm``,
``GroupNorm`` here, ``BatchNorm1d/2d/3d`` in :mod:`matconv.nn.batchnorm` (on the shared base
below).

Each normalises groups of entries, ``xhat = (x - mean) / sqrt(var + eps)`` (the biased variance),
then applies its affine weight and bias. Layer and group norm normalise inside one example:
their recorded Jacobian (a :class:`~matconv.operators.Normalization`) has a dense block per
group, and ``matrix(example=k)`` is example ``k``'s.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..layout import columns, float_dtype, to_batch_last
from ..memory import check_memory
from ..operators import Normalization
from .module import Module, Parameter

__all__ = ["LayerNorm", "GroupNorm"]


def positive_int(value, name):
    """``value`` as an int >= 1, or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_eps(value):
    """``eps`` as a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"eps must be a finite number > 0, got {value!r}")
    return float(value)


def check_flag(value, name):
    """A bool argument, or a ``TypeError`` naming it."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def constant(shape, value, dtype, owner) -> np.ndarray:
    """A filled array, its size checked against the memory budget first."""
    check_memory(math.prod(shape) * np.dtype(dtype).itemsize * 3,
                 f"the parameters and buffers of {owner} {tuple(shape)}",
                 "use fewer features")
    return np.full(shape, value, dtype=dtype)


class Normalizing(Module):
    """What the normalisation layers share: the affine parameters, the dtype, input checks."""

    _primitive = True

    def _affine(self, shape, dtype, weight: bool, bias: bool):
        owner = type(self).__name__
        self.weight = Parameter(constant(shape, 1.0, dtype, owner)) if weight else None
        self.bias = Parameter(constant(shape, 0.0, dtype, owner)) if bias else None

    def _compute_dtype(self, x) -> np.dtype:
        """The parameters' (or buffers') precision; the input's when the layer has neither."""
        for name in ("weight", "bias", "running_mean"):
            held = getattr(self, name, None)
            held = held.data if isinstance(held, Parameter) else held
            if isinstance(held, np.ndarray):
                return held.dtype
        return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)

    def _check(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy ndarray, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"input must be a real floating-point array (float32 or float64), "
                            f"got dtype {x.dtype}")
        dtype = self._compute_dtype(x)
        return x if x.dtype == dtype else x.astype(dtype)

    def reset_parameters(self) -> None:
        """Weight 1, bias 0 (PyTorch's initialisation)."""
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def _param_grads(self, dY3, xhat, axes, shape):
        """``dweight = sum dy xhat``, ``dbias = sum dy`` over ``axes`` of ``(G, m, N)``."""
        if self.weight is not None:
            self.weight.grad += (dY3 * xhat).sum(axis=axes).reshape(shape)
        if self.bias is not None:
            self.bias.grad += dY3.sum(axis=axes).reshape(shape)


# --------------------------------------------------------------------------- layer, group
class _PerExample(Normalizing):
    """Normalisation inside one example: groups of ``m`` consecutive entries."""

    def _normalize(self, X, groups, scale, bias):
        """Normalise batch-last ``X`` ``(groups * m, N)``; return ``(Y, xhat, op)``."""
        X3 = X.reshape(groups, X.shape[0] // groups, X.shape[1])
        mean = X3.mean(axis=1, keepdims=True)
        rstd = 1 / np.sqrt(X3.var(axis=1, keepdims=True) + self.eps)
        xhat = (X3 - mean) * rstd
        Y3 = xhat if scale is None else xhat * scale
        if bias is not None:
            Y3 = Y3 + bias
        return Y3.reshape(X.shape), xhat, Normalization(xhat, rstd, scale)

    def operator(self, input_shape=None):
        """The Jacobian at the last forward (data dependent), one block per group."""
        return self._recorded_operator(input_shape)


class LayerNorm(_PerExample):
    """Normalise over the last ``len(normalized_shape)`` dims, like ``torch.nn.LayerNorm``.

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing shape normalised as one group (each leading position is its own group).
    eps : float, default 1e-5
    elementwise_affine : bool, default True
        Learn ``weight`` (init 1) of ``normalized_shape``, and ``bias`` (init 0) if ``bias``.
    bias : bool, default True
    dtype : np.float32 or np.float64, keyword-only

    Notes
    -----
    The Jacobian of one example has a dense block per group; ``matrix(example=k)`` after a
    forward is example ``k``'s (sparse, block diagonal), and ``backward(dy)`` is its transpose.

    Examples
    --------
    >>> ln = LayerNorm(4, dtype=np.float64)
    >>> y = ln(np.array([[1.0, 2.0, 3.0, 4.0]]))
    >>> np.round(y, 4)
    array([[-1.3416, -0.4472,  0.4472,  1.3416]])
    >>> J = ln.matrix((4,), example=0)
    >>> np.allclose(ln.backward(np.ones((1, 4))), J.T @ np.ones(4))
    True
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, *, dtype=np.float32):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) \
            else normalized_shape
        if not isinstance(shape, (tuple, list)) or not shape:
            raise ValueError(f"normalized_shape must be a positive int or a tuple of positive "
                             f"ints, got {normalized_shape!r}")
        self.normalized_shape = tuple(positive_int(s, "normalized_shape") for s in shape)
        self.eps = check_eps(eps)
        self.elementwise_affine = check_flag(elementwise_affine, "elementwise_affine")
        with_bias = check_flag(bias, "bias")
        self._affine(self.normalized_shape, float_dtype(dtype), self.elementwise_affine,
                     self.elementwise_affine and with_bias)

    def forward(self, x):
        x = self._check(x)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k:] != self.normalized_shape:
            raise ValueError(f"LayerNorm expects input of shape (..., "
                             f"{', '.join(map(str, self.normalized_shape))}) (normalized_shape), "
                             f"got {x.shape}")
        batched = self._batched(x, k)
        X = columns(x, batched)
        m = math.prod(self.normalized_shape)
        w = None if self.weight is None else self.weight.data.astype(x.dtype).reshape(1, m, 1)
        b = None if self.bias is None else self.bias.data.astype(x.dtype).reshape(1, m, 1)
        Y, xhat, op = self._normalize(X, X.shape[0] // m, w, b)

        def grads(dY):
            self._param_grads(dY.reshape(xhat.shape), xhat, (0, 2), self.normalized_shape)

        return self._emit(op, Y, x.shape if batched else (1, *x.shape), batched, grads)

    def _batched(self, x, k) -> bool:
        """The first axis is the batch when there is one beyond the normalised dims (or when
        the layer before said so)."""
        from .tape import current_frame

        frame = current_frame()
        node = frame.inputs[0] if frame is not None and frame.module is self else None
        if node is not None and node.batched is not None:
            return node.batched
        return x.ndim > k

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(_PerExample):
    """Normalise groups of channels of each example, like ``torch.nn.GroupNorm``.

    Parameters
    ----------
    num_groups : int
        Groups; ``num_channels`` must be divisible by it (1: layer norm over ``(C, ...)``;
        ``num_channels``: instance norm).
    num_channels : int
    eps : float, default 1e-5
    affine : bool, default True
        Learn ``weight`` (init 1) and ``bias`` (init 0) per channel.
    bias : bool, default True, keyword-only
        With ``affine``, learn the bias too (PyTorch's keyword).
    dtype : np.float32 or np.float64, keyword-only

    Examples
    --------
    >>> gn = GroupNorm(2, 4, dtype=np.float64)
    >>> y = gn(np.arange(24.0).reshape(2, 4, 3))
    >>> np.allclose(y.reshape(2, 2, 6).mean(axis=2), 0)
    True
    >>> gn.matrix((4, 3), example=1).shape
    (12, 12)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.num_groups = positive_int(num_groups, "num_groups")
        self.num_channels = positive_int(num_channels, "num_channels")
        if self.num_channels % self.num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.eps = check_eps(eps)
        self.affine = check_flag(affine, "affine")
        self._affine((self.num_channels,), float_dtype(dtype), self.affine,
                     self.affine and check_flag(bias, "bias"))

    def forward(self, x):
        x = self._check(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm expects input of shape (N, {self.num_channels}, ...) "
                             f"(num_channels), got {x.shape}")
        C, L, G = self.num_channels, math.prod(x.shape[2:]), self.num_groups

        def per_entry(p):  # a per-channel parameter as (G, (C/G) L, 1)
            return None if p is None else np.repeat(p.data.astype(x.dtype), L).reshape(G, -1, 1)

        Y, xhat, op = self._normalize(to_batch_last(x), G, per_entry(self.weight),
                                      per_entry(self.bias))

        def grads(dY):
            N = dY.shape[1]
            self._param_grads(dY.reshape(C, L, N), xhat.reshape(C, L, N), (1, 2), (C,))

        return self._emit(op, Y, x.shape, True, grads)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
