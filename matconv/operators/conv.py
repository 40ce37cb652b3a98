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

**How the im2col products run** (:mod:`~matconv.operators.blocked`). ``S X`` is gathered in
blocks of output positions, each multiplied at once: one block (one per thread) for a layer whose
``S X`` fits :data:`~matconv.operators.blocked.WHOLE_BYTES`, 32 MiB blocks beyond, so a huge
layer never holds all of it. Large products with small weights share their blocks among threads
(:func:`~matconv.operators.parallel.set_num_threads`). The input gradient is computed channel by
channel: ``W.T dY`` for the channels, then each channel's ``S_b.T`` adds it into the channel's
input rows.

**Weight gradient of the sparse lowering.** The gradient of ``A = sum_m w_m E_m`` (``E_m`` the 0/1
pattern of weight ``m``, read off the weight-index map) is the sampled product
``dW_m = sum_n dy_n^T E_m x_n``. Because ``E_m`` for the tap ``(o, c, k)`` is row block ``o``
picking row ``(c, k)`` of ``S``, that sum is entry ``(o, (c, k))`` of ``dY (S X)^T``: the sampled
product evaluated as the same blocked GEMM. The test suite checks it against the literal sum over
the weight-index map.

**Buffers.** A forward that is recorded keeps what its weight gradient needs in a buffer taken
from the plan's pool: ``S X`` itself when it fits ``WHOLE_BYTES``, else a copy of ``X`` (a ninth
of ``S X`` for a 3x3 kernel; the weight gradient then gathers again). The buffer is given back
only when the record that holds it is released, so nothing another call does (a second use of
the layer, a ``linear_operator`` product, the caller editing ``X``) can change it.
"""
from __future__ import annotations

import math
import threading
import weakref

import numpy as np

from ..geometry import ConvGeometry
from ..lowering import (
    cached,
    conv_matrix_nbytes,
    conv_structure,
    gather_blocks,
    resolve_output_size,
    scatter_blocks,
    unfold_nbytes,
    unfold_structure,
)
from ..memory import check_memory
from . import blocked
from .base import Operator
from .blocked import (
    block_edges,
    blocked_product,
    blocked_scatter,
    blocked_weight_grad,
    scatter_parts,
    scatter_rows,
    shares_for,
)
from .buffers import BufferPool, gather_rows, shared_pool

__all__ = ["LOWERINGS", "ConvPlan", "Conv", "conv_plan", "BufferPool", "gather_rows"]

LOWERINGS = ("im2col", "sparse")


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
        self._blocks = {}  # (kind, sizes, threads) -> blocked tables of S or S.T
        self._blocks_lock = threading.Lock()  # layers of one plan may run in several threads

    @property
    def shape(self) -> tuple:
        """Shape of the conv matrix ``A``: ``(C_out * prod(out), C_in * prod(in))``."""
        return (self.n_out, self.n_in)

    @property
    def nbytes(self) -> int:
        return (sum(m.data.nbytes for _, m in self._sparse.values())
                + sum(b.nbytes for b in list(self._blocks.values())))

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

    _KEEP_BLOCKS = 4  # block layouts kept per plan (one per batch size in use, typically)

    def _blocked(self, kind, rows, columns, itemsize, shares, build):
        key = (kind, rows, columns, itemsize, shares)
        blocks = self._blocks.get(key)
        if blocks is None:
            edges = block_edges(math.prod(self.output_size), rows, columns, itemsize, shares)
            blocks = build(self.geometry, self.input_size, self.output_size, edges)
            with self._blocks_lock:
                while len(self._blocks) >= self._KEEP_BLOCKS:
                    self._blocks.pop(next(iter(self._blocks)))
                self._blocks[key] = blocks
        return blocks

    def gather_blocks(self, columns: int, itemsize: int, shares: int):
        """``S`` in blocks of output positions for ``columns`` examples of ``itemsize`` bytes,
        for ``shares`` threads."""
        return self._blocked("gather", self.n_cols_rows, columns, itemsize, shares,
                             gather_blocks)

    def scatter_blocks(self, columns: int, itemsize: int, channels: int, shares: int):
        """One channel's ``S.T`` in blocks sized for ``channels`` channels per thread."""
        return self._blocked("scatter", channels * self.geometry.kernel_numel, columns, itemsize,
                             shares, scatter_blocks)

    def shares(self, columns: int) -> int:
        """Threads for the products of this plan on ``columns`` examples (see
        :func:`~matconv.operators.blocked.shares_for`)."""
        g = self.geometry
        weight = g.out_channels // g.groups * g.in_channels // g.groups * g.kernel_numel
        work = self.n_out * g.in_channels // g.groups * g.kernel_numel * columns
        return shares_for(work, math.prod(self.output_size), weight)

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
    # a layer asks for the plan it already has on every call: find it by the sizes as given
    # before validating them again (that cost more than a small layer's arithmetic); the one
    # cache still owns the plan, this only refers to it
    given = (geometry, input_size, output_size, lowering)
    plan = _plans_by_argument.get(given) if _plain_sizes(input_size, output_size) else None
    if plan is not None:
        return plan
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    plan = cached(("plan", geometry, input_size, output_size, lowering),
                  lambda: ConvPlan(geometry, input_size, output_size, lowering))
    if _plain_sizes(*given[1:3]):
        _plans_by_argument[given] = plan
    return plan


_plans_by_argument = weakref.WeakValueDictionary()


def _plain_sizes(input_size, output_size) -> bool:
    """Tuples of Python ints (what layers pass): safe to use as a key before validation."""
    return (type(input_size) is tuple and all(type(v) is int for v in input_size)
            and (output_size is None or type(output_size) is tuple
                 and all(type(v) is int for v in output_size)))


class Conv(Operator):
    """The convolution ``A`` of a plan, bound to a copy of its weight.

    ``matmat`` is the convolution, ``rmatmat`` its input gradient (and the transposed
    convolution); :meth:`apply` also keeps the copy of the input the weight gradient needs.

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
        """``W`` per group: ``(G, C_out/G, C_in/G * K)``."""
        g = self.plan.geometry
        return self.weight.reshape(g.groups, g.out_channels // g.groups, -1)

    def _output(self, rows: int, columns: int, what: str) -> np.ndarray:
        return shared_pool().result((rows, columns), self.dtype, what)

    # ---- products
    def apply(self, X: np.ndarray, keep: bool = True, bias: np.ndarray = None):
        """``(A X + b, saved)``: ``saved`` is what :meth:`weight_grad` needs, in pooled buffers
        (give it back with :meth:`release`): a copy of ``X``, or for a small layer the gathered
        ``S X`` itself; ``None`` without ``keep``.

        ``bias`` (``(C_out,)``, optional) is added to every position of its channel, inside the
        blocked product while each block of the output is in cache (not part of ``A``).
        """
        X = np.ascontiguousarray(self._check(X, self.shape[1], "apply"))
        plan, g = self.plan, self.plan.geometry
        N = X.shape[1]
        if bias is not None:
            bias = np.asarray(bias, dtype=self.dtype)
            if bias.shape != (g.out_channels,):
                raise ValueError(f"bias must have shape ({g.out_channels},), got {bias.shape}")
        if plan.lowering == "sparse":
            saved = None
            if keep:
                saved = _Kept(plan.pool.take(X.shape, X.dtype, f"the saved input of {N} examples"))
                np.copyto(saved.array, X)
            A = plan.sparse_matrix(self.weight, transpose=False)
            Y = scatter_rows(A, X, self._output(A.shape[0], N, "the output"))
            if bias is not None:
                Y.reshape(g.out_channels, -1)[...] += bias[:, None]
            return Y, saved
        Y = self._output(self.shape[0], N, "the output")
        if N == 0:  # an empty batch: nothing to multiply (PyTorch returns an empty output)
            if keep:
                return Y, _Kept(plan.pool.take(X.shape, X.dtype, "the saved input"))
            return Y, None
        shares = plan.shares(N)
        blocks = plan.gather_blocks(N, X.dtype.itemsize, shares)
        saved = None
        # a one-group bias rides in the GEMMs: each gathered block gets a row of ones
        ones = bias is not None and g.groups == 1
        if keep and plan.unfold_rows * N * X.dtype.itemsize <= blocked.WHOLE_BYTES:
            # a small S X is kept whole: the weight gradient then need not gather it again
            rows = plan.unfold_rows + ones * blocks.edges[-1]
            saved = _Kept(plan.pool.take((rows * N,), X.dtype,
                                         f"the unfolded input of {N} examples"), blocks, ones)
        elif keep:
            saved = _Kept(plan.pool.take(X.shape, X.dtype, f"the saved input of {N} examples"))
        blocked_product(self._w(), X, blocks, Y.reshape(g.out_channels, -1), plan.pool, shares,
                        save=saved.array if saved and saved.blocks is None else None, bias=bias,
                        keep=saved.array if saved and saved.blocks is not None else None)
        return Y, saved

    def _matmat(self, X):
        return self.apply(X, keep=False)[0]

    def _rmatmat(self, dY):
        plan, g = self.plan, self.plan.geometry
        dY = np.ascontiguousarray(dY)
        dX = self._output(self.shape[1], dY.shape[1], "the input gradient")
        if dY.shape[1] == 0:
            return dX
        if plan.lowering == "sparse":
            return scatter_rows(plan.sparse_matrix(self.weight, transpose=True), dY, dX)
        W = self._w()
        parts, by_blocks = scatter_parts(g.in_channels, g.groups, plan.shares(dY.shape[1]))
        most = max(c1 - c0 for part in parts for _, c0, c1 in part)
        blocks = plan.scatter_blocks(dY.shape[1], dY.dtype.itemsize, most, len(parts))
        return blocked_scatter(W.transpose(0, 2, 1), dY, blocks, parts, by_blocks, dX,
                               plan.pool)

    def unfold(self, X: np.ndarray) -> np.ndarray:
        """``S X`` in a pooled buffer (give it back with :meth:`release`)."""
        return self.plan.unfold_batch(self._check(X, self.shape[1], "unfold"))

    def release(self, saved) -> None:
        """Give back what :meth:`apply` or :meth:`unfold` kept."""
        if isinstance(saved, _Kept):
            self.plan.pool.give(saved.array)
        elif saved is not None:
            self.plan.release(saved)

    def weight_grad(self, saved, dY: np.ndarray) -> np.ndarray:
        """``dW = dY (S X).T`` shaped like the weight (``saved`` from :meth:`apply`)."""
        return self._weight_grads(saved, dY, with_bias=False)

    def weight_and_bias_grad(self, saved, dY: np.ndarray) -> tuple:
        """``(dW, db)``: :meth:`weight_grad` and the bias gradient ``sum(dY)`` per output
        channel, summed block by block in the same pass over ``dY``."""
        return self._weight_grads(saved, dY, with_bias=True)

    def input_weight_grad(self, X: np.ndarray, dY: np.ndarray):
        """``dW = dY (S X).T`` from an input ``X`` itself, ``S X`` gathered block by block."""
        return self._weight_grads(X, dY, with_bias=False)

    def _weight_grads(self, saved, dY, with_bias):
        plan, g = self.plan, self.plan.geometry
        dY = np.ascontiguousarray(dY, dtype=self.dtype)
        if dY.shape[1] == 0:  # an empty batch adds nothing
            dW = np.zeros(g.weight_shape, dtype=self.dtype)
            return (dW, np.zeros(g.out_channels, dtype=self.dtype)) if with_bias else dW
        shares = plan.shares(dY.shape[1])
        X, kept, blocks = saved, None, None
        if isinstance(saved, _Kept):
            X, kept, blocks = (None, saved.array, saved.blocks) if saved.blocks is not None \
                else (saved.array, None, None)
        if blocks is None:
            X = np.ascontiguousarray(X, dtype=self.dtype)
            blocks = plan.gather_blocks(X.shape[1], X.dtype.itemsize, shares)
        out = blocked_weight_grad(X, dY.reshape(g.out_channels, -1), blocks, g.groups, plan.pool,
                                  shares, with_bias, kept=kept,
                                  kept_ones=kept is not None and saved.ones)
        if with_bias:
            return out[0].reshape(g.weight_shape), out[1]
        return out.reshape(g.weight_shape)

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


class _Kept:
    """What a recorded forward keeps for its weight gradient, in a pooled buffer: a copy of
    ``X`` (``blocks`` is ``None``), or every gathered block of ``S X`` in ``blocks``' layout
    (each with the bias's row of ones when ``ones``)."""

    __slots__ = ("array", "blocks", "ones")

    def __init__(self, array: np.ndarray, blocks=None, ones: bool = False):
        self.array, self.blocks, self.ones = array, blocks, ones
