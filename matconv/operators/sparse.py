"""Fixed sparse maps: average and adaptive pooling, upsampling, any user matrix.

A :class:`SparseOperator` keeps its matrix ``M`` in the precision it was built in and casts it
once per input dtype; ``M.T`` is kept as CSR too, so both products are row gathers. The factories
below build the maps through :mod:`matconv.lowering` and cache the operators (one cache, bounded;
see :func:`matconv.clear_caches`).
"""
from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from ..geometry import PoolGeometry
from ..lowering import adaptive_avg_matrix, avg_pool_matrix, cached, upsample_matrix
from .base import Operator

__all__ = ["SparseOperator", "avg_pool_operator", "adaptive_avg_operator", "upsample_operator"]


class SparseOperator(Operator):
    """A fixed sparse linear map ``M``: ``matmat`` is ``M X``, ``rmatmat`` is ``M.T Y``.

    The product keeps the input's float precision (a float32 batch gets a float32 copy of ``M``,
    made once). ``matrix()`` returns a copy, so editing it cannot change later products.

    >>> op = SparseOperator(sp.csr_array(np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])))
    >>> op.matmat(np.array([[2.0], [4.0], [6.0]])).ravel()
    array([3., 5.])
    >>> op.rmatmat(np.array([[1.0], [1.0]])).ravel()
    array([0.5, 1. , 0.5])
    """

    def __init__(self, matrix, fixed: bool = True):
        matrix = sp.csr_array(matrix)
        if matrix.dtype.kind not in "fiub":
            raise TypeError(f"matrix must hold real numbers, got dtype {matrix.dtype}")
        if matrix.dtype.kind != "f":
            matrix = matrix.astype(np.float64)
        self.shape, self.dtype, self.fixed = matrix.shape, matrix.dtype, bool(fixed)
        self._variants = {(matrix.dtype, False): matrix}
        self._lock = threading.Lock()

    def csr(self, dtype=None, transpose: bool = False) -> sp.csr_array:
        """``M`` (or ``M.T``) as the shared CSR array of ``dtype``: read it, do not edit it."""
        key = (self.dtype if dtype is None else np.dtype(dtype), bool(transpose))
        have = self._variants.get(key)
        if have is None:
            base = self._variants[(self.dtype, False)]
            have = base.astype(key[0]) if key[0] != self.dtype else base
            if transpose:
                have = have.T.tocsr()
            with self._lock:
                self._variants[key] = have
        return have

    def _matmat(self, X):
        self._check_output(self.shape[0], X)
        return self.csr(X.dtype) @ X

    def _rmatmat(self, Y):
        self._check_output(self.shape[1], Y)
        return self.csr(Y.dtype, transpose=True) @ Y

    def _matrix(self, example):
        return self.csr().copy()

    def _matrix_t(self, example):
        return self.csr(transpose=True).copy()

    @property
    def nnz(self):
        return self.csr().nnz

    @property
    def nbytes(self) -> int:
        return sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
                   for m in self._variants.values())


def avg_pool_operator(pool: PoolGeometry, channels: int, input_size, count_include_pad=True,
                      divisor_override=None) -> SparseOperator:
    """Average pooling as ``diag(1/divisor) A``, ``A`` the all-ones depthwise convolution."""
    key = ("avg pool", pool, channels, tuple(input_size), bool(count_include_pad),
           divisor_override)
    return cached(key, lambda: SparseOperator(avg_pool_matrix(
        pool, channels, tuple(input_size), count_include_pad, divisor_override)))


def adaptive_avg_operator(channels: int, input_size, output_size) -> SparseOperator:
    """Average over PyTorch's adaptive bins."""
    key = ("adaptive avg", channels, tuple(input_size), tuple(output_size))
    return cached(key, lambda: SparseOperator(adaptive_avg_matrix(
        channels, tuple(input_size), tuple(output_size))))


def upsample_operator(mode: str, channels: int, input_size, output_size, align_corners: bool,
                      scales, dtype) -> SparseOperator:
    """Interpolation ``U`` (built in ``dtype``, PyTorch's rules): nearest, nearest-exact,
    (bi/tri)linear, bicubic; ``'area'`` is adaptive average pooling to ``output_size``."""
    if mode == "area":
        return adaptive_avg_operator(channels, input_size, output_size)
    key = ("upsample", mode, channels, tuple(input_size), tuple(output_size),
           bool(align_corners), tuple(scales), np.dtype(dtype))
    return cached(key, lambda: SparseOperator(upsample_matrix(
        mode, channels, tuple(input_size), tuple(output_size), align_corners, scales, dtype)))
