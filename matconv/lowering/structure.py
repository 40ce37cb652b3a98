"""Geometry -> scipy.sparse structure of a convolution: the unfold matrix ``S`` and the conv
matrix ``A``, built once per geometry and input size (vectorised index arithmetic, no Python loop
over positions) and kept in :mod:`~matconv.lowering.cache`.

* ``S`` (im2col) has shape ``(C*K*L, C*prod(in))``: one 1 per row (none for a zero-padding cell),
  rows ordered ``(c, k, l)`` like ``torch.nn.functional.unfold``.
* ``A`` has shape ``(C_out*L, C_in*prod(in))``: row ``(o, l)`` holds, at the column each tap
  reads, the weight of that tap. Its structure and a *weight-index map* (which flat weight each
  nonzero copies) are cached, so a weight change only refreshes ``data = weight.ravel()[map]``.

Indices are int32 while they fit and int64 beyond; every structure is estimated against the
memory budget before anything of it is built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import scipy.sparse as sp

from ..geometry import ConvGeometry
from ..memory import check_memory
from .cache import cached
from .windows import resolve_output_size, table_nbytes, window_index

__all__ = ["index_dtype", "UnfoldStructure", "ConvStructure", "unfold_from_window",
           "unfold_structure", "conv_structure", "unfold_nbytes", "conv_matrix_nbytes"]

_INT32_MAX = np.iinfo(np.int32).max


def index_dtype(*sizes) -> np.dtype:
    """int32 while every size fits, int64 beyond (scipy accepts both)."""
    return np.dtype(np.int32) if max(sizes) <= _INT32_MAX else np.dtype(np.int64)


class _Arrays:
    """``nbytes``: the bytes of every array field (what the cache counts)."""

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self)
                   if isinstance(getattr(self, f.name), np.ndarray))


# --------------------------------------------------------------------------- unfold (im2col)
@dataclass(frozen=True, eq=False)
class UnfoldStructure(_Arrays):
    """Cached structure of the unfold matrix ``S`` for one window table.

    Attributes
    ----------
    shape : (int, int)
        ``(C*K*L, C*prod(input_size))``.
    input_size, output_size : tuple of int
        Spatial sizes.
    indptr, indices : ndarray
        CSR structure of ``S`` (every stored value is 1).
    gather : ndarray of intp, shape (C*K*L,)
        Column of each row's 1 (0 for a padding row), so ``S @ X`` is ``X[gather]`` with the
        ``pad_rows`` zeroed: the product evaluated as the gather it is.
    pad_rows : ndarray of intp
        Rows of ``S`` with no 1 (padding cells under ``padding_mode='zeros'``).
    """

    shape: tuple
    input_size: tuple
    output_size: tuple
    indptr: np.ndarray
    indices: np.ndarray
    gather: np.ndarray
    pad_rows: np.ndarray

    def matrix(self, dtype=np.float64, copy: bool = False) -> sp.csr_array:
        """``S`` as a CSR array of ``dtype`` (structure shared with the cache unless ``copy``)."""
        data = np.ones(self.indices.size, dtype=dtype)
        indices, indptr = (self.indices.copy(), self.indptr.copy()) if copy else \
            (self.indices, self.indptr)
        return sp.csr_array((data, indices, indptr), shape=self.shape)


def unfold_nbytes(rows: int, cols: int) -> int:
    """Bytes of an unfold structure with ``rows`` rows (indices, gather, pointers, masks)."""
    return rows * (index_dtype(rows, cols).itemsize * 2 + 8 + 8 + 1)


def unfold_from_window(window: np.ndarray, channels: int, input_size, output_size
                       ) -> UnfoldStructure:
    """The unfold structure of any window table ``(K, L)``, repeated over ``channels``.

    Row ``(c, k, l)`` of ``S`` reads input cell ``c * prod(input_size) + window[k, l]``, or
    nothing where the table holds ``-1``.
    """
    K, L = window.shape
    n_in = math.prod(input_size)
    rows, cols = channels * K * L, channels * n_in
    idt = index_dtype(rows, cols)
    check_memory(unfold_nbytes(rows, cols), f"the unfold matrix S ({rows} x {cols})",
                 "use a smaller input")
    channel_offset = (np.arange(channels, dtype=np.int64) * n_in)[:, None, None]
    full = np.where(window >= 0, window[None] + channel_offset, -1).ravel()
    valid = full >= 0
    indptr = np.zeros(rows + 1, dtype=idt)
    np.cumsum(valid, out=indptr[1:])
    return UnfoldStructure(
        shape=(rows, cols), input_size=tuple(input_size), output_size=tuple(output_size),
        indptr=indptr, indices=full[valid].astype(idt),
        gather=np.where(valid, full, 0).astype(np.intp),
        pad_rows=np.flatnonzero(~valid).astype(np.intp))


def unfold_structure(geometry: ConvGeometry, input_size, output_size=None) -> UnfoldStructure:
    """The cached :class:`UnfoldStructure` of ``geometry``'s windows over its input channels."""
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    C, K, L = geometry.in_channels, geometry.kernel_numel, math.prod(output_size)
    check_memory(unfold_nbytes(C * K * L, C * math.prod(input_size)) + table_nbytes(K, L),
                 f"the unfold matrix S ({C * K * L} x {C * math.prod(input_size)})",
                 "use a smaller input")
    key = ("unfold", C, geometry.kernel_size, geometry.stride, geometry.padding,
           geometry.dilation, geometry.padding_mode, input_size, output_size)
    return cached(key, lambda: unfold_from_window(
        window_index(geometry, input_size, output_size), C, input_size, output_size))


# --------------------------------------------------------------------------- conv matrix
@dataclass(frozen=True, eq=False)
class ConvStructure(_Arrays):
    """Cached structure of the conv matrix ``A`` and of its transpose, for one geometry and size.

    ``A.data = weight.ravel()[weight_index]`` and ``A.T.data = weight.ravel()[weight_index_t]``:
    both are CSR, so the forward ``A @ x`` and the backward ``A.T @ dy`` are row gathers.
    Under a padding mode other than ``'zeros'`` a row may hold one column twice (two taps read
    the same source cell); scipy sums such duplicates in every product and in ``toarray()``, and
    the weight-index map says which taps meet there.
    """

    shape: tuple
    input_size: tuple
    output_size: tuple
    indptr: np.ndarray
    indices: np.ndarray
    weight_index: np.ndarray
    indptr_t: np.ndarray
    indices_t: np.ndarray
    weight_index_t: np.ndarray

    def matrix(self, weight: np.ndarray, copy: bool = False) -> sp.csr_array:
        """``A`` for ``weight``: data freshly gathered, structure shared unless ``copy``
        (matrices handed to users get their own index arrays, so mutating them is harmless)."""
        indices, indptr = (self.indices.copy(), self.indptr.copy()) if copy else \
            (self.indices, self.indptr)
        return sp.csr_array((weight.ravel()[self.weight_index], indices, indptr),
                            shape=self.shape)

    def matrix_t(self, weight: np.ndarray, copy: bool = False) -> sp.csr_array:
        """``A.T`` as CSR for ``weight`` (structure shared unless ``copy``)."""
        indices, indptr = (self.indices_t.copy(), self.indptr_t.copy()) if copy else \
            (self.indices_t, self.indptr_t)
        return sp.csr_array((weight.ravel()[self.weight_index_t], indices, indptr),
                            shape=self.shape[::-1])


def conv_matrix_nbytes(geometry: ConvGeometry, input_size, output_size=None,
                       itemsize: int = 8) -> int:
    """Estimated bytes of ``A`` and ``A.T`` (indices, weight maps and data), before building."""
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    rows = geometry.out_channels * math.prod(output_size)
    nnz = rows * (geometry.in_channels // geometry.groups) * geometry.kernel_numel
    idt = index_dtype(nnz, geometry.in_channels * math.prod(input_size))
    return 2 * nnz * (2 * idt.itemsize + itemsize)


def conv_structure(geometry: ConvGeometry, input_size, output_size=None) -> ConvStructure:
    """The cached :class:`ConvStructure` for ``geometry`` on ``input_size``."""
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    rows = geometry.out_channels * math.prod(output_size)
    cols = geometry.in_channels * math.prod(input_size)
    nnz = rows * geometry.in_channels // geometry.groups * geometry.kernel_numel
    # building needs about twice the finished size (index arrays before the padding is dropped);
    # checked before the unfold structure it starts from is built
    check_memory(conv_matrix_nbytes(geometry, input_size, output_size) * 2,
                 f"building the conv matrix A ({rows} x {cols}, up to {nnz} nonzeros) with its "
                 f"transpose", "use lowering='im2col' (the unfold matrix times a dense weight) or "
                 "a smaller input")
    return cached(("conv", geometry, input_size, output_size),
                  lambda: _build_conv(geometry, input_size, output_size))


def _build_conv(geometry, input_size, output_size) -> ConvStructure:
    G, C_out = geometry.groups, geometry.out_channels
    Cg, K = geometry.in_channels // G, geometry.kernel_numel
    L = math.prod(output_size)
    rows, cols = C_out * L, geometry.in_channels * math.prod(input_size)
    unfold = unfold_structure(geometry, input_size, output_size)
    idt = index_dtype(rows * Cg * K, cols)
    # column read by (group, output position, in-channel of group, tap), -1 for padding
    read = unfold.gather.astype(idt, copy=True)
    read[unfold.pad_rows] = -1
    read = read.reshape(G, Cg, K, L).transpose(0, 3, 1, 2).reshape(G, 1, L, Cg * K)
    read = np.broadcast_to(read, (G, C_out // G, L, Cg * K)).reshape(C_out, L, Cg * K)
    valid = read >= 0
    counts = valid.sum(axis=2, dtype=idt).ravel()
    indptr = np.zeros(rows + 1, dtype=idt)
    np.cumsum(counts, out=indptr[1:])
    indices = read[valid]
    tap = (np.arange(C_out, dtype=idt)[:, None, None] * (Cg * K)
           + np.arange(Cg * K, dtype=idt)[None, None, :])
    weight_index = np.broadcast_to(tap, read.shape)[valid]
    # A.T in CSR: nonzeros sorted by column (stable, so rows stay increasing within a column)
    order = np.argsort(indices, kind="stable")
    row_of = np.repeat(np.arange(rows, dtype=idt), counts)
    indptr_t = np.zeros(cols + 1, dtype=idt)
    np.cumsum(np.bincount(indices, minlength=cols), out=indptr_t[1:])
    return ConvStructure(
        shape=(rows, cols), input_size=input_size, output_size=output_size,
        indptr=indptr, indices=indices, weight_index=weight_index,
        indptr_t=indptr_t, indices_t=row_of[order], weight_index_t=weight_index[order])
