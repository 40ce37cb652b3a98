"""A convolution bound to its weight: ``Conv`` (``A`` in either lowering) and the plan it runs on.

A :class:`ConvPlan` is one geometry on one input size in one lowering: it reads the cached
structure (``S`` or ``A``, from :mod:`matconv.lowering`) and owns the working buffers of its batch
sizes. ``plan.at(weight)`` is the operator ``A`` for that weight:

==================  ===========================  =================================
product             ``'im2col'``                 ``'sparse'``
==================  ===========================  =================================
``matmat``          ``Y = W (S X)``              ``Y = A X``
``rmatmat``         ``dX = S.T (W.T dY)``        ``dX = A.T dY``
``weight_grad``     ``dW = dY (S X).T``          ``dW = dY (S X).T`` (see below)
==================  ===========================  =================================

A convolution layer applies ``op`` and its backward is ``op.T``; a transposed convolution applies
``op.T`` and its backward is ``op``. Both lowerings give the same numbers.

**Weight gradient of the sparse lowering.** The gradient of ``A = sum_m w_m E_m`` (``E_m`` the 0/1
pattern of weight ``m``, read off the weight-index map) is the sampled product
``dW_m = sum_n dy_n^T E_m x_n``. Because ``E_m`` for the tap ``(o, c, k)`` is row block ``o``
picking row ``(c, k)`` of ``S``, that sum is entry ``(o, (c, k))`` of ``dY (S X)^T``: the sampled
product evaluated as one GEMM (3-4x cheaper than sampling every nonzero). The test suite checks it
against the literal sum over the weight-index map.

**Buffers.** The unfolded input ``S X`` a forward keeps for the weight gradient is a buffer taken
from the plan's pool and given back only when the record that holds it is released, so nothing
another call does (a second use of the layer, a ``linear_operator`` product) can change it.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from ..geometry import ConvGeometry
from ..lowering import (
    cached,
    conv_matrix_nbytes,
    conv_structure,
    resolve_output_size,
    unfold_nbytes,
    unfold_structure,
)
from ..memory import check_memory
from .base import Operator

__all__ = ["LOWERINGS", "ConvPlan", "Conv", "conv_plan", "BufferPool", "gather_rows"]

LOWERINGS = ("im2col", "sparse")


class BufferPool:
    """Reusable arrays by shape and dtype (fresh memory costs page faults on every call).

    ``take`` hands out a free buffer or a new one (checked against the memory budget); ``give``
    returns it. A buffer is never handed out twice before it is given back.
    """

    _KEEP = 2  # free buffers kept per shape and dtype

    def __init__(self):
        self._free = {}
        self._lock = threading.Lock()

    def take(self, shape, dtype, what: str) -> np.ndarray:
        key = (tuple(shape), np.dtype(dtype))
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
        check_memory(math.prod(shape) * key[1].itemsize, f"{what} ({' x '.join(map(str, shape))})",
                     "use a smaller batch")
        return np.empty(shape, dtype=dtype)

    def give(self, buf: np.ndarray) -> None:
        key = (buf.shape, buf.dtype)
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self._KEEP and not any(b is buf for b in free):
                free.append(buf)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for free in self._free.values() for b in free)


def gather_rows(unfold, X: np.ndarray, out: np.ndarray, fill=0) -> np.ndarray:
    """``S @ X`` into ``out``: ``S`` has one 1 per row, so the product is a row gather.

    Rows of ``S`` without a 1 (padding) get ``fill``: 0 for a linear map, ``-inf`` for a max.
    """
    if X.shape[0] != unfold.shape[1]:
        raise ValueError(f"the input has {X.shape[0]} rows, the unfold structure reads "
                         f"{unfold.shape[1]}")
    np.take(X, unfold.gather, axis=0, out=out, mode="clip")  # 'clip' avoids a buffered copy
    if unfold.pad_rows.size:
        out[unfold.pad_rows] = fill
    return out


class ConvPlan:
    """``geometry`` on ``input_size`` in one lowering: structures, sizes, buffers.

    Use :func:`conv_plan` to get the cached plan rather than building one.

    Parameters
    ----------
    geometry : ConvGeometry
    input_size : tuple of int
        Spatial input size.
    output_size : tuple of int, optional
        Keep only the first positions per dimension (transposed convolutions with a large
        ``output_padding``); default all.
    lowering : {'im2col', 'sparse'}
    """

    def __init__(self, geometry: ConvGeometry, input_size, output_size=None, lowering="im2col"):
        if not isinstance(lowering, str) or lowering not in LOWERINGS:
            raise ValueError(f"lowering must be one of {LOWERINGS}, got {lowering!r}")
        self.geometry, self.lowering = geometry, lowering
        self.input_size, self.output_size = resolve_output_size(geometry, input_size,
                                                                output_size)
        g = geometry
        L = math.prod(self.output_size)
        self.n_in = g.in_channels * math.prod(self.input_size)
        self.n_out = g.out_channels * L
        self.n_cols_rows = g.in_channels * g.kernel_numel
        self.unfold_rows = self.n_cols_rows * L
        # the memory guard of the structure this lowering needs, before any of it is built
        if lowering == "sparse":
            check_memory(2 * conv_matrix_nbytes(g, self.input_size, self.output_size),
                         f"building the conv matrix A ({self.n_out} x {self.n_in})",
                         "use lowering='im2col' (the unfold matrix times a dense weight) or a "
                         "smaller input")
        else:
            check_memory(unfold_nbytes(self.unfold_rows, self.n_in),
                         f"the unfold matrix S ({self.unfold_rows} x {self.n_in})",
                         "use a smaller input")
        self.pool = BufferPool()
        self._sparse = {}  # 'A' / 'AT' -> (weight it was gathered from, CSR matrix)

    @property
    def shape(self) -> tuple:
        """Shape of the conv matrix ``A``: ``(C_out * prod(out), C_in * prod(in))``."""
        return (self.n_out, self.n_in)

    @property
    def nbytes(self) -> int:
        return sum(m.data.nbytes for _, m in self._sparse.values())

    def __repr__(self) -> str:
        g = self.geometry
        return (f"<ConvPlan {self.n_out}x{self.n_in} kernel={g.kernel_size} stride={g.stride} "
                f"lowering={self.lowering!r}>")

    # ---- structures, from the one cache
    @property
    def unfold(self):
        """The unfold structure ``S`` (cached per geometry)."""
        return unfold_structure(self.geometry, self.input_size, self.output_size)

    @property
    def conv(self):
        """The conv structure ``A`` with its weight-index map (cached per geometry)."""
        return conv_structure(self.geometry, self.input_size, self.output_size)

    def unfold_t(self, dtype):
        """``S.T`` in CSR of ``dtype`` (the backward of the unfold is a row gather)."""
        key = ("unfold.T", self.geometry.in_channels, self.geometry.kernel_size,
               self.geometry.stride, self.geometry.padding, self.geometry.dilation,
               self.geometry.padding_mode, self.input_size, self.output_size, np.dtype(dtype))
        return cached(key, lambda: self.unfold.matrix(dtype).T.tocsr())

    def sparse_matrix(self, weight: np.ndarray, transpose: bool):
        """``A`` (or ``A.T``) for the sparse lowering, regathered only when the weight changed.

        Comparing the small weight array is far cheaper than gathering ``nnz`` values, and
        catches in-place edits of ``weight.data`` that an identity check would miss.
        """
        key = "AT" if transpose else "A"
        have = self._sparse.get(key)
        if have is None or have[0].dtype != weight.dtype or not np.array_equal(have[0], weight):
            s = self.conv
            have = self._sparse[key] = (weight.copy(), s.matrix_t(weight) if transpose
                                        else s.matrix(weight))
        return have[1]

    def at(self, weight: np.ndarray) -> Conv:
        """The operator ``A`` of this plan for ``weight`` (shape ``geometry.weight_shape``)."""
        return Conv(self, weight)

    # ---- the unfold, into a pooled buffer
    def unfold_batch(self, X: np.ndarray) -> np.ndarray:
        """``S X`` as ``(C_in*K, L*N)``, in a buffer taken from the pool (give it back with
        :meth:`release`)."""
        cols = self.pool.take((self.unfold_rows, X.shape[1]), X.dtype,
                              f"the unfolded input of {X.shape[1]} examples")
        return gather_rows(self.unfold, X, cols).reshape(self.n_cols_rows, -1)

    def release(self, cols: np.ndarray) -> None:
        """Give an unfolded input back to the pool."""
        base = cols if cols.base is None else cols.base
        self.pool.give(base)


def conv_plan(geometry: ConvGeometry, input_size, output_size=None, lowering="im2col"
              ) -> ConvPlan:
    """The cached :class:`ConvPlan` of ``geometry`` on ``input_size``.

    >>> plan = conv_plan(ConvGeometry(1, 1, 3, ndim=1), (5,))
    >>> op = plan.at(np.array([[[1.0, 2.0, 3.0]]]))
    >>> op.matmat(np.arange(5.0).reshape(5, 1)).ravel()
    array([ 8., 14., 20.])
    >>> op.matrix().toarray()
    array([[1., 2., 3., 0., 0.],
           [0., 1., 2., 3., 0.],
           [0., 0., 1., 2., 3.]])
    """
    if not isinstance(lowering, str) or lowering not in LOWERINGS:
        raise ValueError(f"lowering must be one of {LOWERINGS}, got {lowering!r}")
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    return cached(("plan", geometry, input_size, output_size, lowering),
                  lambda: ConvPlan(geometry, input_size, output_size, lowering))


class Conv(Operator):
    """The convolution ``A`` of a plan, bound to a copy of its weight.

    ``matmat`` is the convolution, ``rmatmat`` its input gradient (and the transposed
    convolution); :meth:`apply` also keeps the unfolded input the weight gradient needs.

    >>> op = conv_plan(ConvGeometry(1, 1, 2, ndim=1), (3,)).at(np.array([[[1.0, 10.0]]]))
    >>> op.T.matmat(np.array([[1.0], [2.0]])).ravel()          # the transposed convolution
    array([ 1., 12., 20.])
    >>> op.T.matrix().toarray() == op.matrix().toarray().T
    array([[ True,  True],
           [ True,  True],
           [ True,  True]])
    """

    casts_input = True

    def __init__(self, plan: ConvPlan, weight: np.ndarray):
        weight = np.asarray(weight)
        if weight.shape != plan.geometry.weight_shape:
            raise ValueError(f"weight has shape {weight.shape}, the geometry needs "
                             f"{plan.geometry.weight_shape}")
        if weight.dtype.kind != "f":
            raise TypeError(f"weight must be a real float array (float32 or float64), got dtype "
                            f"{weight.dtype}")
        self.plan = plan
        self.weight = weight.copy()  # the map applied, whatever later edits of the layer do
        self.shape, self.dtype = plan.shape, weight.dtype

    def __repr__(self) -> str:
        g = self.plan.geometry
        return (f"<Conv {self.shape[0]}x{self.shape[1]} kernel={g.kernel_size} stride={g.stride}"
                f" lowering={self.plan.lowering!r}>")

    def _w(self) -> np.ndarray:
        return self.weight.reshape(self.weight.shape[0], -1)

    # ---- products
    def apply(self, X: np.ndarray, keep: bool = True):
        """``(A X, saved)``: ``saved`` is what :meth:`weight_grad` needs (the unfolded input
        under ``'im2col'``, ``X`` itself under ``'sparse'``); without ``keep`` it is ``None``
        and the buffer goes straight back to the pool."""
        X = self._check(X, self.shape[1], "apply")
        self._check_output(self.shape[0], X)
        plan = self.plan
        if plan.lowering == "sparse":
            return plan.sparse_matrix(self.weight, transpose=False) @ X, (X if keep else None)
        cols = plan.unfold_batch(X)
        Y = _grouped_matmul(self._w(), cols, plan.geometry.groups).reshape(self.shape[0], -1)
        if not keep:
            plan.release(cols)
            cols = None
        return Y, cols

    def _matmat(self, X):
        return self.apply(X, keep=False)[0]

    def _rmatmat(self, dY):
        plan = self.plan
        self._check_output(self.shape[1] + (plan.unfold_rows if plan.lowering == "im2col" else 0),
                           dY, "the transposed product")
        if plan.lowering == "sparse":
            return plan.sparse_matrix(self.weight, transpose=True) @ dY
        dcols = _grouped_matmul(self._w(), dY.reshape(self.weight.shape[0], -1),
                                plan.geometry.groups, transpose_a=True)
        return plan.unfold_t(dY.dtype) @ dcols.reshape(plan.unfold_rows, dY.shape[1])

    def unfold(self, X: np.ndarray) -> np.ndarray:
        """``S X`` in a pooled buffer (give it back with :meth:`release`)."""
        return self.plan.unfold_batch(self._check(X, self.shape[1], "unfold"))

    def release(self, saved) -> None:
        """Give back what :meth:`apply` or :meth:`unfold` kept (no-op for the sparse lowering)."""
        if saved is not None and self.plan.lowering == "im2col":
            self.plan.release(saved)

    def weight_grad(self, saved: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """``dW = dY (S X).T`` shaped like the weight (``saved`` from :meth:`apply`)."""
        if self.plan.lowering == "sparse":
            return self.input_weight_grad(saved, dY)
        return self._dW(saved, dY)

    def input_weight_grad(self, X: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """``dW = dY (S X).T`` from the input ``X`` itself (unfolded into a pooled buffer)."""
        cols = self.plan.unfold_batch(X)
        try:
            return self._dW(cols, dY)
        finally:
            self.plan.release(cols)

    def _dW(self, cols, dY):
        g = self.plan.geometry
        # computed as (cols dY.T).T: OpenBLAS runs this orientation of the long-K product
        # 1.2-1.7x faster than dY cols.T (benchmarks/README.md)
        dW_t = _grouped_matmul(cols, dY.reshape(g.out_channels, -1), g.groups,
                               transpose_b=True)  # (G*CgK, m)
        dW = dW_t.reshape(g.groups, -1, g.out_channels // g.groups).transpose(0, 2, 1)
        return dW.reshape(g.weight_shape)

    # ---- matrices
    @property
    def nnz(self):
        """Stored entries of ``A``: each output channel's taps that read an input cell."""
        plan, g = self.plan, self.plan.geometry
        if plan.lowering == "sparse":
            return int(plan.conv.indices.size)
        unfold = plan.unfold
        return g.out_channels // g.groups * int(unfold.shape[0] - unfold.pad_rows.size)

    def check_matrix(self):
        g, plan = self.plan.geometry, self.plan
        check_memory(2 * conv_matrix_nbytes(g, plan.input_size, plan.output_size),
                     f"building the conv matrix A ({plan.n_out} x {plan.n_in}) with its transpose",
                     "inspect a smaller input")

    def _matrix(self, example):
        return self.plan.conv.matrix(self.weight, copy=True)

    def _matrix_t(self, example):
        return self.plan.conv.matrix_t(self.weight, copy=True)


def _grouped_matmul(a, b, groups, transpose_a=False, transpose_b=False):
    """Block-diagonal product: group ``g`` of ``a``'s rows times group ``g`` of ``b``'s rows.

    ``a`` is ``(G*m, k)`` (or ``(G*k, m)`` transposed), ``b`` is ``(G*k, n)`` (or ``(G*n, k)``);
    with ``groups=1`` this is one GEMM.
    """
    if groups == 1:
        return (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    a3 = a.reshape(groups, a.shape[0] // groups, a.shape[1])  # explicit: a size may be 0
    b3 = b.reshape(groups, b.shape[0] // groups, b.shape[1])
    a3 = a3.transpose(0, 2, 1) if transpose_a else a3
    b3 = b3.transpose(0, 2, 1) if transpose_b else b3
    out = np.matmul(a3, b3)
    return out.reshape(out.shape[0] * out.shape[1], out.shape[2])
