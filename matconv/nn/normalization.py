"""Normalisation layers with PyTorch's names, arguments and formulas: ``BatchNorm1d/2d/3d``,
``LayerNorm``, ``GroupNorm``.

Each normalises groups of entries, ``xhat = (x - mean) / sqrt(var + eps)`` (the biased variance),
then applies its affine weight and bias. What each records:

* batch norm in evaluation mode is an affine map of the running statistics: a fixed
  :class:`~matconv.operators.Diagonal` ``diag(weight / sqrt(running_var + eps))`` per channel,
  so ``matrix()`` works and a preceding convolution can absorb it;
* batch norm in training uses the batch's statistics and updates the running ones like PyTorch
  (``momentum``, or a cumulative average when it is ``None``; the *unbiased* variance goes into
  ``running_var``); its Jacobian couples the examples: a
  :class:`~matconv.operators.Normalization` whose ``matmat``/``rmatmat`` are exact and whose
  ``matrix()`` refuses;
* layer and group norm normalise inside one example: their recorded Jacobian has a block per
  group, and ``matrix(example=k)`` is example ``k``'s.

Running statistics are buffers, so ``state_dict``, checkpoints and ``from_torch`` carry them.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..layout import columns, float_dtype, to_batch_last
from ..memory import check_memory
from ..operators import COUPLED_BATCH, Diagonal, Normalization
from .module import Module, Parameter
from .tape import _state as _tape_state

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm"]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _eps(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"eps must be a finite number > 0, got {value!r}")
    return float(value)


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _constant(shape, value, dtype, owner) -> np.ndarray:
    """A filled array, its size checked against the memory budget first."""
    check_memory(math.prod(shape) * np.dtype(dtype).itemsize * 3,
                 f"the parameters and buffers of {owner} {tuple(shape)}",
                 "use fewer features")
    return np.full(shape, value, dtype=dtype)


class _Normalization(Module):
    """Shared parts: the affine parameters, the dtype, input checks."""

    _primitive = True

    def _affine(self, shape, dtype, weight: bool, bias: bool):
        owner = type(self).__name__
        self.weight = Parameter(_constant(shape, 1.0, dtype, owner)) if weight else None
        self.bias = Parameter(_constant(shape, 0.0, dtype, owner)) if bias else None

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


# --------------------------------------------------------------------------- batch norm
class _BatchNorm(_Normalization):
    _dims = (4,)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps = _eps(eps)
        if momentum is not None and (isinstance(momentum, bool)
                                     or not isinstance(momentum, numbers.Real)
                                     or not 0 <= momentum <= 1):
            raise ValueError(f"momentum must be a number in [0, 1] or None (a cumulative "
                             f"average), got {momentum!r}")
        self.momentum = None if momentum is None else float(momentum)
        self.affine = _flag(affine, "affine")
        self.track_running_stats = _flag(track_running_stats, "track_running_stats")
        dtype = float_dtype(dtype)
        C = self.num_features
        self._affine((C,), dtype, self.affine, self.affine and _flag(bias, "bias"))
        track = self.track_running_stats
        self.register_buffer("running_mean", _constant((C,), 0.0, dtype, "BatchNorm")
                             if track else None)
        self.register_buffer("running_var", _constant((C,), 1.0, dtype, "BatchNorm")
                             if track else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64)
                             if track else None)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def _uses_batch_stats(self) -> bool:
        return self.training or self.running_mean is None

    def _check_input(self, x):
        x = self._check(x)
        if x.ndim not in self._dims:
            dims = " or ".join(f"{d}-D" for d in self._dims)
            raise ValueError(f"{type(self).__name__} expects {dims} input (N, C, ...), got shape "
                             f"{x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__} expects {self.num_features} channels "
                             f"(num_features), got {x.shape[1]} (shape {x.shape})")
        return x

    def _scale(self, dtype):
        w = self.weight.data.astype(dtype, copy=False) if self.weight is not None else None
        b = self.bias.data.astype(dtype, copy=False) if self.bias is not None else None
        return w, b

    def forward(self, x):
        x = self._check_input(x)
        N, C, L = x.shape[0], x.shape[1], math.prod(x.shape[2:])
        X3 = to_batch_last(x).reshape(C, L, N)
        if self._uses_batch_stats():
            Y3, op, grads = self._train(X3, x.shape)
        else:
            Y3, op, grads = self._eval(X3)
        return self._emit(op, Y3.reshape(C * L, N), x.shape, True, grads)

    def _train(self, X3, shape):
        C, L, N = X3.shape
        count = L * N
        if count == 1:
            raise ValueError(f"{type(self).__name__} expects more than 1 value per channel when "
                             f"training (like PyTorch), got input of shape {shape}; use a larger "
                             f"batch or .eval()")
        if count:
            mean, var = X3.mean(axis=(1, 2)), X3.var(axis=(1, 2))
        else:  # an empty batch: no statistics, and nothing to normalise
            mean, var = np.zeros(C, X3.dtype), np.ones(C, X3.dtype)
        rstd = 1 / np.sqrt(var + self.eps)
        self._update_running_stats(mean, var, count)
        xhat = (X3 - mean[:, None, None]) * rstd[:, None, None]
        w, b = self._scale(X3.dtype)
        Y3 = xhat if w is None else xhat * w[:, None, None]
        if b is not None:
            Y3 = Y3 + b[:, None, None]
        op = Normalization(xhat, rstd[:, None, None], None if w is None else w[:, None, None],
                           across_batch=True)

        def grads(dY):
            self._param_grads(dY.reshape(C, L, N), xhat, (1, 2), (C,))

        return Y3, op, grads

    def _update_running_stats(self, mean, var, count):
        """PyTorch's rule; not while a module is only being traced (``output_shape``,
        ``operator``), which must leave its state alone."""
        if not (self.training and self.track_running_stats) \
                or getattr(_tape_state, "detached", False):
            return
        self.num_batches_tracked += 1
        if count == 0:
            return  # an empty batch counts, but has no statistics (as in PyTorch)
        factor = self.momentum if self.momentum is not None else \
            1.0 / float(self.num_batches_tracked)
        self.running_mean[...] = (1 - factor) * self.running_mean + factor * mean
        self.running_var[...] = (1 - factor) * self.running_var + \
            factor * var * (count / (count - 1))

    def _alpha_beta(self, dtype):
        """``y = alpha x + beta`` per channel from the running statistics."""
        rstd = 1 / np.sqrt(self.running_var.astype(dtype) + self.eps)
        w, b = self._scale(dtype)
        alpha = rstd if w is None else w * rstd
        beta = -self.running_mean.astype(dtype) * alpha
        return alpha, (beta if b is None else b + beta), rstd

    def _eval(self, X3):
        C, L, N = X3.shape
        alpha, beta, rstd = self._alpha_beta(X3.dtype)
        Y3 = X3 * alpha[:, None, None] + beta[:, None, None]
        mean = self.running_mean.astype(X3.dtype)

        def grads(dY):
            xhat = (X3 - mean[:, None, None]) * rstd[:, None, None]
            self._param_grads(dY.reshape(C, L, N), xhat, (1, 2), (C,))

        return Y3, Diagonal(np.repeat(alpha, L), fixed=True), grads

    def operator(self, input_shape=None):
        """In evaluation mode, ``diag(weight / sqrt(running_var + eps))`` for one example of
        ``input_shape`` ``(C, ...)``. In training, the operator the last forward recorded,
        whose ``matrix()`` refuses: its Jacobian couples the examples of the batch."""
        if not self._uses_batch_stats():
            shape = self._example_shape(input_shape)
            alpha = self._alpha_beta(self.running_var.dtype)[0]
            return Diagonal(np.repeat(alpha, math.prod(shape[1:])), fixed=True)
        span = self._span
        if span is None or span.tape.released:
            raise ValueError(COUPLED_BATCH)
        return self._recorded_operator(input_shape)

    def _example_shape(self, input_shape):
        dims = [d - 1 for d in self._dims]
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in dims or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                for s in input_shape) or input_shape[0] != self.num_features:
            raise ValueError(f"input_shape must be ({self.num_features}, ...) with "
                             f"{' or '.join(map(str, dims))} dims, got {input_shape!r}")
        return tuple(int(s) for s in input_shape)

    def output_shape(self, input_shape):
        return self._example_shape(input_shape)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}"
                + (", bias=False" if self.affine and self.bias is None else ""))


_BN_DOC = """Batch normalisation over {what}, like ``torch.nn.BatchNorm{n}d``.

Parameters
----------
num_features : int
    Channels ``C``.
eps : float, default 1e-5
momentum : float or None, default 0.1
    ``running = (1 - momentum) running + momentum batch``; ``None``: a cumulative average.
affine : bool, default True
    Learn ``weight`` (init 1) and ``bias`` (init 0), one per channel.
track_running_stats : bool, default True
    Keep ``running_mean``, ``running_var`` and ``num_batches_tracked`` buffers; without them
    the batch's statistics are used in evaluation mode too.
bias : bool, default True, keyword-only
    With ``affine``, learn the bias too (PyTorch's keyword).
dtype : np.float32 or np.float64, keyword-only

Notes
-----
Training: ``y = weight (x - mean) / sqrt(var + eps) + bias`` with the batch's mean and biased
variance per channel; the running statistics take the unbiased variance. The recorded operator's
``matmat``/``rmatmat`` are the exact Jacobian products; its ``matrix()`` refuses, since the
Jacobian couples the examples. Evaluation: the fixed diagonal
``diag(weight / sqrt(running_var + eps))`` (``matrix()`` works; the shift is the bias).

Examples
--------
>>> bn = BatchNorm{n}d(2, dtype=np.float64)
>>> x = np.random.default_rng(0).standard_normal({shape})
>>> y = bn(x)
>>> np.allclose(y.mean(axis={axes}), 0), np.allclose(y.var(axis={axes}), 1, atol=1e-3)
(True, True)
>>> bn.num_batches_tracked
array(1)
>>> bn.eval().matrix({example}).diagonal().shape
({size},)
"""


class BatchNorm1d(_BatchNorm):
    __doc__ = _BN_DOC.format(what="(N, C) or (N, C, L)", n=1, shape="(8, 2, 5)",
                             axes="(0, 2)", example="(2, 5)", size=10)
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    __doc__ = _BN_DOC.format(what="(N, C, H, W)", n=2, shape="(8, 2, 3, 4)",
                             axes="(0, 2, 3)", example="(2, 3, 4)", size=24)
    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    __doc__ = _BN_DOC.format(what="(N, C, D, H, W)", n=3, shape="(8, 2, 2, 3, 2)",
                             axes="(0, 2, 3, 4)", example="(2, 2, 3, 2)", size=24)
    _dims = (5,)


# --------------------------------------------------------------------------- layer, group
class _PerExample(_Normalization):
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
        self.normalized_shape = tuple(_positive_int(s, "normalized_shape") for s in shape)
        self.eps = _eps(eps)
        self.elementwise_affine = _flag(elementwise_affine, "elementwise_affine")
        with_bias = _flag(bias, "bias")
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
        self.num_groups = _positive_int(num_groups, "num_groups")
        self.num_channels = _positive_int(num_channels, "num_channels")
        if self.num_channels % self.num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.eps = _eps(eps)
        self.affine = _flag(affine, "affine")
        self._affine((self.num_channels,), float_dtype(dtype), self.affine,
                     self.affine and _flag(bias, "bias"))

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
