"""Jacobians of normalisation: batch, layer and group norm.

Each normalises groups of entries, ``xhat = (x - mean) * rstd`` with ``rstd = 1/sqrt(var + eps)``
over a group, then scales: ``y = s * xhat + b``. Over a group of ``m`` entries the Jacobian is

    ``dy/dx = diag(s) rstd (I - 1 1^T / m - xhat xhat^T / m)``,

symmetric but for the scale. Layer and group norm take their groups inside one example (the
Jacobian is block diagonal per example, so ``matrix(example=k)`` exists); batch norm in training
takes the statistics of a channel over every example of the batch, so its Jacobian couples the
examples and has no per-example matrix.
"""
from __future__ import annotations

import numpy as np

from ..memory import check_memory
from .base import Operator
from .coupled import block_matrix

__all__ = ["Normalization", "COUPLED_BATCH"]

#: why batch statistics have no per-example matrix
COUPLED_BATCH = ("the Jacobian of batch normalisation in training mode couples the examples of "
                 "the batch (each output depends on every example through the batch mean and "
                 "variance), so there is no per-example matrix; call .eval() for the affine map "
                 "of the running statistics, or use matmat/rmatmat of the operator")


class Normalization(Operator):
    """The Jacobian of ``y = scale * (x - mean) * rstd`` over groups of entries.

    Batch-last arrays ``(G * m, N)`` are viewed as ``(G, m, N)``: ``G`` groups of ``m`` entries
    per example (layer and group norm), or, with ``across_batch``, ``G`` channels of ``m``
    positions whose statistics also run over the ``N`` examples (batch norm in training).

    Parameters
    ----------
    xhat : ndarray of shape (G, m, N)
        The normalised values at the forward.
    rstd : ndarray of shape (G, 1, N), or (G, 1, 1) with ``across_batch``
        ``1/sqrt(var + eps)`` of each group.
    scale : ndarray broadcastable to (G, m, 1), optional
        The affine weight of each entry (``None``: 1).
    across_batch : bool
        Statistics over the examples too: no per-example matrix.

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> rstd = 1 / np.sqrt(x.var())
    >>> J = Normalization(((x - 2) * rstd).reshape(1, 3, 1), np.full((1, 1, 1), rstd))
    >>> np.allclose(J.matrix().sum(axis=1), 0)             # a shift changes nothing
    True
    >>> np.allclose(J.matmat((x - 2).reshape(3, 1)), 0)    # nor a scaling about the mean
    True
    """

    fixed = False

    def __init__(self, xhat: np.ndarray, rstd: np.ndarray, scale=None,
                 across_batch: bool = False):
        if xhat.ndim != 3:
            raise ValueError(f"xhat must have shape (G, m, N), got {xhat.shape}")
        G, m, N = xhat.shape
        self.xhat, self.rstd, self.scale = xhat, rstd, scale
        self.across_batch = bool(across_batch)
        self.shape, self.batch, self.dtype = (G * m, G * m), N, xhat.dtype
        self._axes = (1, 2) if self.across_batch else (1,)

    def _center(self, V):
        """``rstd (V - mean(V) - xhat mean(xhat V))`` over each group (symmetric)."""
        mean = V.mean(axis=self._axes, keepdims=True)
        projection = (self.xhat * V).mean(axis=self._axes, keepdims=True)
        return self.rstd * (V - mean - self.xhat * projection)

    def _matmat(self, X):
        out = self._center(X.reshape(self.xhat.shape))
        if self.scale is not None:
            out = out * self.scale
        return out.reshape(X.shape)

    def _rmatmat(self, Y):
        V = Y.reshape(self.xhat.shape)
        if self.scale is not None:
            V = V * self.scale
        return self._center(V).reshape(Y.shape)

    def _blocks_index(self):
        G, m, _ = self.xhat.shape
        check_memory(G * m * m * 3 * 8, f"the {G} dense {m} x {m} blocks of a normalisation "
                     f"Jacobian", "use a smaller normalised shape, or matmat/rmatmat")
        return np.arange(G * m).reshape(G, m)

    def _matrix(self, example):
        if self.across_batch:
            raise ValueError(COUPLED_BATCH)
        idx = self._blocks_index()
        G, m, _ = self.xhat.shape
        xh = self.xhat[:, :, example].astype(np.float64)
        r = np.broadcast_to(self.rstd, (G, 1, self.batch))[:, 0, example]
        blocks = np.eye(m) - 1.0 / m - xh[:, :, None] * xh[:, None, :] / m
        blocks *= r[:, None, None]
        if self.scale is not None:
            blocks *= np.broadcast_to(self.scale, (G, m, 1))  # scales the rows
        return block_matrix(idx, blocks)

    def _pattern(self):
        idx = self._blocks_index()
        G, m = idx.shape
        return block_matrix(idx, np.ones((G, m, m)))

    @property
    def nbytes(self):
        return self.xhat.nbytes
