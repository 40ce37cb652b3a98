"""Jacobians that couple the entries of a slice: softmax and log-softmax along one axis.

``softmax``: ``J = diag(a) - a a^T`` on each slice (symmetric); ``log_softmax``:
``J = I - 1 s^T`` with ``s`` the softmax (its transpose is ``I - s 1^T``). Both act on batch-last
arrays by viewing them in the layout of the array they were recorded on.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..layout import from_batch_last, to_batch_last
from .base import Operator

__all__ = ["SoftmaxJacobian", "block_matrix"]


class SoftmaxJacobian(Operator):
    """The Jacobian of softmax (or log-softmax) along ``axis`` of an ``(N, ...)`` array.

    Parameters
    ----------
    a : ndarray
        The softmax output (for ``log=True`` too: the probabilities), shape ``(N, ...)``.
    axis : int
        The softmax axis of ``a``; ``0`` couples the examples of the batch (no per-example
        matrix then).
    log : bool
        Log-softmax instead of softmax.

    >>> a = np.array([[0.25, 0.75]])
    >>> SoftmaxJacobian(a, axis=1).matrix(example=0).toarray()
    array([[ 0.1875, -0.1875],
           [-0.1875,  0.1875]])
    """

    fixed = False

    def __init__(self, a: np.ndarray, axis: int, log: bool = False):
        self.a, self.axis, self.log = a, int(axis), bool(log)
        n = math.prod(a.shape[1:])
        self.shape, self.batch, self.dtype = (n, n), a.shape[0], a.dtype

    def _apply(self, V, transpose):
        v = from_batch_last(V, self.a.shape)
        a, ax = self.a, self.axis
        if not self.log:
            out = a * (v - np.sum(a * v, axis=ax, keepdims=True))
        elif transpose:
            out = v - a * np.sum(v, axis=ax, keepdims=True)
        else:
            out = v - np.sum(a * v, axis=ax, keepdims=True)
        return to_batch_last(np.ascontiguousarray(out))

    def _matmat(self, X):
        return self._apply(X, transpose=False)

    def _rmatmat(self, Y):
        return self._apply(Y, transpose=True)

    def _slices(self):
        """Flat index table ``(groups, size along the axis)`` of one example."""
        if self.axis == 0:
            raise ValueError("softmax over dim 0 couples the examples of the batch: it has no "
                             "per-example matrix")
        idx = np.arange(self.shape[0]).reshape(self.a.shape[1:])
        idx = np.moveaxis(idx, self.axis - 1, -1)
        return idx.reshape(-1, idx.shape[-1])

    def _matrix(self, example):
        idx = self._slices()
        s = self.a[example].ravel()[idx]  # (groups, size)
        eye = np.eye(idx.shape[1])
        blocks = s[:, :, None] * (eye - s[:, None, :]) if not self.log else \
            np.broadcast_to(eye, s.shape + (s.shape[1],)) - s[:, None, :]
        return block_matrix(idx, blocks)

    def _pattern(self):
        idx = self._slices()
        return block_matrix(idx, np.ones((idx.shape[0], idx.shape[1], idx.shape[1])))

    @property
    def nbytes(self):
        return self.a.nbytes


def block_matrix(idx, blocks):
    """The sparse matrix holding dense ``blocks[g]`` at the entries ``idx[g] x idx[g]``; the
    rows of ``idx`` (groups of ``m`` entries) partition the ``idx.size`` entries.

    >>> block_matrix(np.array([[0, 2], [1, 3]]), np.ones((2, 2, 2))).toarray()
    array([[1., 0., 1., 0.],
           [0., 1., 0., 1.],
           [1., 0., 1., 0.],
           [0., 1., 0., 1.]])
    """
    n = idx.size
    rows = np.broadcast_to(idx[:, :, None], blocks.shape).ravel()
    cols = np.broadcast_to(idx[:, None, :], blocks.shape).ravel()
    return sp.coo_array((np.asarray(blocks, dtype=np.float64).ravel(), (rows, cols)),
                        shape=(n, n)).tocsr()
