"""Batch normalisation, like ``torch.nn.BatchNorm1d/2d/3d``.

* In evaluation mode a batch norm is an affine map of the running statistics: a fixed
  :class:`~matconv.operators.Diagonal` ``diag(weight / sqrt(running_var + eps))`` per channel,
  so ``matrix()`` works and a preceding convolution can absorb it.
* In training it uses the batch's statistics and updates the running ones like PyTorch
  (``momentum``, or a cumulative average when it is ``None``; the *unbiased* variance goes into
  ``running_var``); its Jacobian couples the examples: a
  :class:`~matconv.operators.Normalization` whose ``matmat``/``rmatmat`` are exact and whose
  ``matrix()`` refuses.

Running statistics are buffers, so ``state_dict``, checkpoints and ``from_torch`` carry them.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..layout import float_dtype, to_batch_last
from ..operators import COUPLED_BATCH, Diagonal, Normalization
from .normalization import Normalizing, check_eps, check_flag, constant, positive_int
from .tape import state as _tape_state

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Normalizing):
    _dims = (4,)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        self.eps = check_eps(eps)
        if momentum is not None and (isinstance(momentum, bool)
                                     or not isinstance(momentum, numbers.Real)
                                     or not 0 <= momentum <= 1):
            raise ValueError(f"momentum must be a number in [0, 1] or None (a cumulative "
                             f"average), got {momentum!r}")
        self.momentum = None if momentum is None else float(momentum)
        self.affine = check_flag(affine, "affine")
        self.track_running_stats = check_flag(track_running_stats, "track_running_stats")
        dtype = float_dtype(dtype)
        C = self.num_features
        self._affine((C,), dtype, self.affine, self.affine and check_flag(bias, "bias"))
        track = self.track_running_stats
        self.register_buffer("running_mean", constant((C,), 0.0, dtype, "BatchNorm")
                             if track else None)
        self.register_buffer("running_var", constant((C,), 1.0, dtype, "BatchNorm")
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
