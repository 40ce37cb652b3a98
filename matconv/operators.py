"""Lowered convolution operators: one geometry on one input size, applied to a batch.

A :class:`ConvOperator` owns the cached structure of its geometry (from :mod:`matconv.lowering`)
and the buffers of its batch size. It computes the three products every convolution-like layer
needs, in either lowering:

==================  ===========================  =================================
product             ``'im2col'``                 ``'sparse'``
==================  ===========================  =================================
``forward``         ``Y = W (S X)``              ``Y = A X``
``backward_input``  ``dX = S.T (W.T dY)``        ``dX = A.T dY``
``backward_weight`` ``dW = dY (S X).T``          ``dW = dY (S X).T`` (see below)
==================  ===========================  =================================

A convolution layer calls ``forward`` then, in its backward, ``backward_input``; a transposed
convolution is the same operator with the roles swapped: its forward is ``backward_input`` and its
backward is ``forward``. So "backward is the transpose" is not a claim about two code paths: it is
one code path.

**Batch-last layout.** Batched arrays here are 2-D with the batch *last*: ``X`` has shape
``(C_in * prod(in), N)``, ``Y`` has shape ``(C_out * prod(out), N)``. Then ``S X`` moves whole rows
of ``N`` contiguous numbers, and ``Y``, viewed as ``(C_out, L * N)``, is one GEMM. The layers hand
users ordinary ``(N, C, *spatial)`` arrays that are strided views of this memory, and accept them
back without a copy.

**Weight gradient of the sparse lowering.** The gradient of ``A = sum_m w_m E_m`` (``E_m`` the 0/1
pattern of weight ``m``, read off the weight-index map) is the sampled product
``dW_m = sum_n dy_n^T E_m x_n``. Because ``E_m`` for the tap ``(o, c, k)`` is row block ``o``
picking row ``(c, k)`` of ``S``, that sum is entry ``(o, (c, k))`` of ``dY (S X)^T``: the sampled
product evaluated as one GEMM (3-4x cheaper than sampling every nonzero; see ``PERF.md``). The test
suite checks it against the literal sum over the weight-index map.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from .geometry import ConvGeometry
from .lowering import conv_structure, unfold_structure
from .memory import check_memory

__all__ = ["LOWERINGS", "ConvOperator", "FixedOperator", "MaxOperator", "gather_rows"]

LOWERINGS = ("im2col", "sparse")


class ConvOperator:
    """The linear map of ``geometry`` on ``input_size``, with both lowerings.

    Parameters
    ----------
    geometry : ConvGeometry
    input_size : tuple of int
        Spatial input size.
    output_size : tuple of int, optional
        Keep only the first positions per dimension (transposed convolutions with a large
        ``output_padding``); default all.
    lowering : {'im2col', 'sparse'}

    Examples
    --------
    >>> g = ConvGeometry(1, 1, 3, ndim=1)
    >>> op = ConvOperator(g, (5,))
    >>> op
    <ConvOperator 3x5 kernel=(3,) stride=(1,) lowering='im2col'>
    >>> w = np.array([[[1.0, 2.0, 3.0]]])
    >>> y, saved = op.forward(w, np.arange(5.0).reshape(5, 1))
    >>> y.ravel()
    array([ 8., 14., 20.])
    >>> op.matrix(w).toarray()
    array([[1., 2., 3., 0., 0.],
           [0., 1., 2., 3., 0.],
           [0., 0., 1., 2., 3.]])
    """

    def __init__(self, geometry: ConvGeometry, input_size, output_size=None, lowering="im2col"):
        if lowering not in LOWERINGS:
            raise ValueError(f"lowering must be one of {LOWERINGS}, got {lowering!r}")
        self.geometry = geometry
        self.lowering = lowering
        self.unfold = unfold_structure(geometry, input_size, output_size)
        self.input_size = self.unfold.input_size
        self.output_size = self.unfold.output_size
        self._conv = conv_structure(geometry, input_size, output_size) if lowering == "sparse" \
            else None
        self._cols = None
        self._s_t = {}
        self._sparse = {}  # 'A' / 'AT' -> (weight it was built from, CSR matrix)

    # ---- sizes
    @property
    def n_in(self) -> int:
        """Rows of a batch-last input, ``C_in * prod(input_size)``."""
        return self.unfold.shape[1]

    @property
    def n_out(self) -> int:
        """Rows of a batch-last output, ``C_out * prod(output_size)``."""
        return self.geometry.out_channels * (self.unfold.shape[0] // self.n_cols_rows)

    @property
    def n_cols_rows(self) -> int:
        """``C_in * prod(kernel_size)``, the rows of the unfolded input per position."""
        return self.geometry.in_channels * self.geometry.kernel_numel

    @property
    def shape(self) -> tuple:
        """Shape of the conv matrix ``A``."""
        return (self.n_out, self.n_in)

    def __repr__(self) -> str:
        g = self.geometry
        return (f"<ConvOperator {self.n_out}x{self.n_in} kernel={g.kernel_size} "
                f"stride={g.stride} lowering={self.lowering!r}>")

    # ---- matrices
    def conv_structure(self):
        """The cached structure of ``A`` (built on first use under ``'im2col'``)."""
        if self._conv is None:
            self._conv = conv_structure(self.geometry, self.input_size, self.output_size)
        return self._conv

    def matrix(self, weight: np.ndarray):
        """``A`` for ``weight`` as a ``scipy.sparse.csr_array`` of its own."""
        return self.conv_structure().matrix(weight, copy=True)

    def _sparse_matrix(self, weight: np.ndarray, transpose: bool):
        """``A`` (or ``A.T``) for the sparse lowering, regathered only when the weight changed.

        Comparing the small weight array is far cheaper than gathering ``nnz`` values, and
        catches in-place edits of ``weight.data`` that an identity check would miss.
        """
        key = "AT" if transpose else "A"
        cached = self._sparse.get(key)
        if cached is None or cached[0].dtype != weight.dtype or not np.array_equal(cached[0],
                                                                                   weight):
            s = self.conv_structure()
            cached = self._sparse[key] = (weight.copy(), s.matrix_t(weight) if transpose
                                          else s.matrix(weight))
        return cached[1]

    def _unfold_t(self, dtype):
        """``S.T`` in CSR, cached per dtype (the backward of the unfold is a row gather)."""
        key = np.dtype(dtype)
        if key not in self._s_t:
            self._s_t[key] = self.unfold.matrix(key).T.tocsr()
        return self._s_t[key]

    # ---- the three products (batch-last arrays)
    def unfold_batch(self, X: np.ndarray) -> np.ndarray:
        """``S @ X``: the unfolded input, shape ``(C_in*K, L*N)``; a reused buffer."""
        n, dtype = X.shape[1], X.dtype
        rows = self.unfold.shape[0]
        cols = self._cols
        if cols is None or cols.shape[1] != n or cols.dtype != dtype:
            check_memory(rows * n * dtype.itemsize,
                         f"the unfolded input ({rows} x {n} batch columns)",
                         "use a smaller batch")
            cols = self._cols = np.empty((rows, n), dtype=dtype)
        return gather_rows(self.unfold, X, cols).reshape(self.n_cols_rows, -1)

    def forward(self, weight: np.ndarray, X: np.ndarray):
        """``Y = A X``; returns ``(Y, saved)`` where ``saved`` is what ``backward_weight`` needs.

        ``X`` has shape ``(C_in*prod(in), N)``; ``Y`` has shape ``(C_out*prod(out), N)``.
        """
        if self.lowering == "sparse":
            return self._sparse_matrix(weight, transpose=False) @ X, X
        cols = self.unfold_batch(X)
        Y = _grouped_matmul(weight.reshape(weight.shape[0], -1), cols, self.geometry.groups)
        return Y.reshape(self.n_out, X.shape[1]), cols

    def backward_input(self, weight: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """``dX = A.T dY``, shape ``(C_in*prod(in), N)``."""
        if self.lowering == "sparse":
            return self._sparse_matrix(weight, transpose=True) @ dY
        Wm = weight.reshape(weight.shape[0], -1)
        dcols = _grouped_matmul(Wm, dY.reshape(weight.shape[0], -1), self.geometry.groups,
                                transpose_a=True)
        return self._unfold_t(dY.dtype) @ dcols.reshape(self.unfold.shape[0], dY.shape[1])

    def backward_weight(self, saved: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """``dW = dY (S X).T``, reshaped like the weight (``saved`` from :meth:`forward`)."""
        cols = self.unfold_batch(saved) if self.lowering == "sparse" else saved
        G, C_out = self.geometry.groups, self.geometry.out_channels
        # computed as (cols dY.T).T: OpenBLAS runs this orientation of the long-K product
        # 1.2-1.7x faster than dY cols.T (benchmarks/README.md)
        dW_t = _grouped_matmul(cols, dY.reshape(C_out, -1), G, transpose_b=True)  # (G*CgK, m)
        dW = dW_t.reshape(G, -1, C_out // G).transpose(0, 2, 1)
        return dW.reshape(self.geometry.weight_shape)


def gather_rows(unfold, X: np.ndarray, out: np.ndarray, fill=0) -> np.ndarray:
    """``S @ X`` into ``out``: ``S`` has one 1 per row, so the product is a row gather.

    Rows of ``S`` without a 1 (padding) get ``fill``: 0 for a linear map, ``-inf`` for a max.
    """
    np.take(X, unfold.gather, axis=0, out=out, mode="clip")  # 'clip' avoids a buffered copy
    if unfold.pad_rows.size:
        out[unfold.pad_rows] = fill
    return out


class FixedOperator:
    """A fixed sparse linear map ``M`` on batch-last arrays: forward ``M X``, backward ``M.T dY``.

    Average pooling, adaptive average pooling and upsampling are such maps. ``M`` is kept in
    float64 and cast once per dtype; ``M.T`` is kept as CSR so both products are row gathers.

    >>> import scipy.sparse as sp
    >>> op = FixedOperator(sp.csr_array(np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])))
    >>> op.forward(np.array([[2.0], [4.0], [6.0]])).ravel()
    array([3., 5.])
    >>> op.backward(np.array([[1.0], [1.0]])).ravel()
    array([0.5, 1. , 0.5])
    """

    def __init__(self, matrix):
        matrix = matrix.tocsr()
        self._base = matrix.dtype
        self._m = {matrix.dtype: matrix}
        self._mt = {}
        self.shape = matrix.shape

    def matrix(self, dtype=None):
        """``M`` as a CSR array of ``dtype`` (default: the precision it was built in)."""
        key = self._base if dtype is None else np.dtype(dtype)
        if key not in self._m:
            self._m[key] = self._m[self._base].astype(key)
        return self._m[key]

    def matrix_t(self, dtype=None):
        """``M.T`` as a CSR array of ``dtype``."""
        key = self._base if dtype is None else np.dtype(dtype)
        if key not in self._mt:
            self._mt[key] = self.matrix(key).T.tocsr()
        return self._mt[key]

    def forward(self, X: np.ndarray) -> np.ndarray:
        return self.matrix(X.dtype) @ X

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return self.matrix_t(dY.dtype) @ dY


class MaxOperator:
    """Max over the windows of an unfold structure; the backward routes through the winners.

    The forward gathers every window (``S X``, padding read as ``-inf``), keeps the first
    maximum in window order (a NaN wins, like PyTorch) and returns the winners' input rows. The
    *selection matrix* ``P`` of a batch has one 1 per output, at its winner; the backward is
    ``P.T dY``, so overlapping windows accumulate.

    Parameters
    ----------
    unfold : UnfoldStructure
        Rows ``(c, k, l)``; ``channels`` is the number of ``c`` blocks.
    """

    def __init__(self, unfold, channels: int):
        self.unfold = unfold
        self.channels = channels
        self.taps = unfold.shape[0] // (channels * math.prod(unfold.output_size))
        self._cols = None

    def forward(self, X: np.ndarray):
        """``(Y, winners)``: the maxima ``(C*L, N)`` and the flat index into ``X`` of each."""
        n = X.shape[1]
        rows = self.unfold.shape[0]
        if self._cols is None or self._cols.shape != (rows, n) or self._cols.dtype != X.dtype:
            check_memory(rows * n * X.itemsize, f"the pooling windows ({rows} x {n})",
                         "use a smaller batch")
            self._cols = np.empty((rows, n), dtype=X.dtype)
        cols = gather_rows(self.unfold, X, self._cols, fill=-np.inf)
        cols = cols.reshape(self.channels, self.taps, -1)  # (C, K, L*N)
        best = cols[:, 0].copy()
        arg = np.zeros(best.shape, dtype=np.intp)
        for k in range(1, self.taps):
            c = cols[:, k]
            better = (c > best) | np.isnan(c)  # PyTorch's rule: strictly greater, or NaN
            np.copyto(best, c, where=better)
            arg[better] = k
        L = best.shape[1] // n
        # row of cols that won -> the input row it read -> flat index into X
        position = np.arange(L * n) // n
        win_row = ((np.arange(self.channels)[:, None] * self.taps + arg) * L + position)
        winners = self.unfold.gather[win_row] * n + np.arange(L * n) % n
        return best.reshape(-1, n), winners.ravel()

    def window_pattern(self, dtype=np.float64):
        """``(C*L, n_in)`` matrix with a 1 at every cell of every window: what *can* win."""
        L = self.unfold.shape[0] // (self.channels * self.taps)
        rows = np.repeat(np.arange(self.unfold.shape[0]), np.diff(self.unfold.indptr))
        out_row = rows // (self.taps * L) * L + rows % L  # unfold row (c, k, l) -> output (c, l)
        M = sp.coo_array((np.ones(rows.size, dtype=dtype), (out_row, self.unfold.indices)),
                         shape=(self.channels * L, self.unfold.shape[1])).tocsr()
        M.data[:] = 1  # a cell two taps read (duplicates summed) is still one path
        return M

    @staticmethod
    def selection_matrix(winners: np.ndarray, n_in: int, dtype=np.float64):
        """``P`` with a 1 in row ``r`` at column ``winners[r]`` (one batch, flattened)."""
        rows = winners.size
        idt = np.int32 if max(rows, n_in) < 2**31 else np.int64
        return sp.csr_array((np.ones(rows, dtype=dtype), winners.astype(idt),
                             np.arange(rows + 1, dtype=idt)), shape=(rows, n_in))

    def backward(self, winners: np.ndarray, dY: np.ndarray, n_in_rows: int) -> np.ndarray:
        """``P.T dY`` reshaped ``(n_in_rows, N)``: each gradient goes to its winner."""
        n = dY.shape[1]
        P = self.selection_matrix(winners, n_in_rows * n, dY.dtype)
        return (P.T @ dY.ravel()).reshape(n_in_rows, n)


def _grouped_matmul(a, b, groups, transpose_a=False, transpose_b=False):
    """Block-diagonal product: group ``g`` of ``a``'s rows times group ``g`` of ``b``'s rows.

    ``a`` is ``(G*m, k)`` (or ``(G*k, m)`` transposed), ``b`` is ``(G*k, n)`` (or ``(G*n, k)``);
    with ``groups=1`` this is one GEMM.
    """
    if groups == 1:
        return (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    a3 = a.reshape(groups, -1, a.shape[1])
    b3 = b.reshape(groups, -1, b.shape[1])
    a3 = a3.transpose(0, 2, 1) if transpose_a else a3
    b3 = b3.transpose(0, 2, 1) if transpose_b else b3
    out = np.matmul(a3, b3)
    return out.reshape(-1, out.shape[2])
