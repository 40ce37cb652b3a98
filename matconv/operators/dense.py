"""Dense maps: the weight of a ``Linear`` layer, repeated over leading positions."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Operator
from .buffers import shared_pool

__all__ = ["Dense"]


class Dense(Operator):
    """``W`` (or ``kron(I_T, W)``: the same ``W`` at each of ``repeat`` leading positions).

    Bound to a copy of ``W``: later edits of the layer's weight do not change the recorded map.

    >>> op = Dense(np.array([[1.0, 2.0]]), repeat=2)
    >>> op.matrix().toarray()
    array([[1., 2., 0., 0.],
           [0., 0., 1., 2.]])
    >>> op.rmatmat(np.array([[1.0], [10.0]])).ravel()
    array([ 1.,  2., 10., 20.])
    """

    casts_input = True

    def __init__(self, W: np.ndarray, repeat: int = 1):
        W = np.array(W, copy=True)
        if W.ndim != 2 or W.dtype.kind != "f":
            raise ValueError(f"W must be a 2-D float array, got shape {W.shape}, dtype {W.dtype}")
        self.W, self.repeat = W, int(repeat)
        self.shape = (W.shape[0] * self.repeat, W.shape[1] * self.repeat)
        self.dtype = W.dtype

    def _apply(self, A, X):
        if self.repeat == 1:
            return np.matmul(A, X, out=shared_pool().result((A.shape[0], X.shape[1]),
                                                            np.result_type(A, X), "the product"))
        n = X.shape[1]
        return np.matmul(A, X.reshape(self.repeat, A.shape[1], n)).reshape(self.repeat * A.shape[0],
                                                                           n)

    def _matmat(self, X):
        self._check_output(self.shape[0], X)
        return self._apply(self.W, X)

    def _rmatmat(self, Y):
        self._check_output(self.shape[1], Y)
        return self._apply(self.W.T, Y)

    def _matrix(self, example):
        W = sp.csr_array(self.W)
        return W if self.repeat == 1 else sp.kron(sp.eye_array(self.repeat), W, format="csr")

    @property
    def nbytes(self):
        return self.W.nbytes

    @property
    def nnz(self):
        return self.W.size * self.repeat
