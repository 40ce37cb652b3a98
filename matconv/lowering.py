"""Geometry -> scipy.sparse structure: the one place where convolution index arithmetic lives.

For a geometry and an input size, :func:`window_index` says, for every kernel tap ``k`` and every
output position ``l``, which input cell the tap reads (or ``-1`` for a zero-padding cell). The
other padding modes are index maps too: a padded cell points at the input cell it mirrors
(``'reflect'``), repeats (``'replicate'``) or wraps to (``'circular'``).

From that one table come both lowerings:

* the **unfold (im2col) matrix** ``S`` of shape ``(C*K*L, C*prod(in))``, one 1 per row (none for
  a padding cell), rows ordered ``(c, k, l)`` like ``torch.nn.functional.unfold``;
* the **conv matrix** ``A`` of shape ``(C_out*L, C_in*prod(in))``: row ``(o, l)`` holds, at the
  column each tap reads, the weight of that tap. Its structure (``indptr``, ``indices``) and a
  *weight-index map* (which flat weight each nonzero copies) are built once per geometry and
  cached, so a weight change only refreshes ``data = weight.ravel()[weight_index]``.

Structures are built by vectorised index arithmetic (no Python loop over positions), use int32
indices while they fit and int64 beyond, and are checked against the memory budget first.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .geometry import ConvGeometry, as_tuple
from .memory import check_memory
from .windows import resolve_output_size as _resolve_sizes
from .windows import window_index

__all__ = [
    "window_index",
    "UnfoldStructure",
    "ConvStructure",
    "unfold_structure",
    "conv_structure",
    "unfold_matrix",
    "conv_matrix",
    "index_dtype",
]

_INT32_MAX = np.iinfo(np.int32).max


def index_dtype(*sizes) -> np.dtype:
    """int32 while every size fits, int64 beyond (scipy accepts both)."""
    return np.dtype(np.int32) if max(sizes) <= _INT32_MAX else np.dtype(np.int64)


# --------------------------------------------------------------------------- unfold (im2col)
@dataclass(frozen=True, eq=False)
class UnfoldStructure:
    """Cached structure of the unfold matrix ``S`` for one geometry and input size.

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

    def matrix(self, dtype=np.float64) -> sp.csr_array:
        """``S`` as a CSR array of ``dtype`` (the structure arrays are shared, not copied)."""
        data = np.ones(self.indices.size, dtype=dtype)
        return sp.csr_array((data, self.indices, self.indptr), shape=self.shape)


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
    check_memory(rows * (idt.itemsize + 8 + 8 + 1), f"the unfold matrix S ({rows} x {cols})",
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


@functools.lru_cache(maxsize=64)
def _unfold_structure(channels, kernel_size, stride, padding, dilation, padding_mode,
                      input_size, output_size) -> UnfoldStructure:
    geometry = ConvGeometry(channels, channels, kernel_size, stride, padding, dilation,
                            padding_mode=padding_mode)
    return unfold_from_window(window_index(geometry, input_size, output_size), channels,
                              input_size, output_size)


def unfold_structure(geometry: ConvGeometry, input_size, output_size=None) -> UnfoldStructure:
    """The cached :class:`UnfoldStructure` for ``geometry`` on ``input_size``."""
    input_size, output_size = _resolve_sizes(geometry, input_size, output_size)
    return _unfold_structure(geometry.in_channels, geometry.kernel_size, geometry.stride,
                             geometry.padding, geometry.dilation, geometry.padding_mode,
                             input_size, output_size)


# --------------------------------------------------------------------------- conv matrix
@dataclass(frozen=True, eq=False)
class ConvStructure:
    """Cached structure of the conv matrix ``A`` and of its transpose, for one geometry and size.

    ``A.data = weight.ravel()[weight_index]`` and ``A.T.data = weight.ravel()[weight_index_t]``:
    both are CSR, so the forward ``A @ x`` and the backward ``A.T @ dy`` are row gathers.
    Under a padding mode other than ``'zeros'`` a row may hold one column twice (two taps read
    the same source cell); scipy sums such duplicates in every product and in ``toarray()``.
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

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def matrix(self, weight: np.ndarray, copy: bool = False) -> sp.csr_array:
        """``A`` for ``weight``: data freshly gathered, structure shared unless ``copy``
        (matrices handed to users get their own index arrays, so mutating them is harmless)."""
        indices, indptr = (self.indices.copy(), self.indptr.copy()) if copy else \
            (self.indices, self.indptr)
        return sp.csr_array((weight.ravel()[self.weight_index], indices, indptr),
                            shape=self.shape)

    def matrix_t(self, weight: np.ndarray) -> sp.csr_array:
        """``A.T`` as CSR for ``weight`` (structure shared)."""
        return sp.csr_array((weight.ravel()[self.weight_index_t], self.indices_t, self.indptr_t),
                            shape=self.shape[::-1])


def window_matrix(index: np.ndarray, weight: np.ndarray, channels: int, n_in: int
                  ) -> sp.csr_array:
    """The fixed linear map of a weighted window table, the same on every channel.

    Row ``(c, l)`` holds ``weight[k, l]`` at column ``c * n_in + index[k, l]`` for every tap that
    reads something: a block-diagonal matrix of shape ``(channels * L, channels * n_in)``. Used for
    upsampling and adaptive average pooling; convolutions use :func:`conv_structure`.

    >>> window_matrix(np.array([[0, 1]]), np.array([[0.5, 2.0]]), 2, 2).toarray()
    array([[0.5, 0. , 0. , 0. ],
           [0. , 2. , 0. , 0. ],
           [0. , 0. , 0.5, 0. ],
           [0. , 0. , 0. , 2. ]])
    """
    K, L = index.shape
    rows, cols = channels * L, channels * n_in
    idt = index_dtype(rows * K, cols)
    check_memory(rows * K * (idt.itemsize + weight.itemsize), f"a {rows} x {cols} fixed map",
                 "use a smaller input")
    keep = (index >= 0) & (weight != 0)
    per_row = np.broadcast_to(keep.sum(axis=0), (channels, L)).ravel()
    indptr = np.zeros(rows + 1, dtype=idt)
    np.cumsum(per_row, out=indptr[1:])
    # within a row, taps in order; rows (c, l): transpose to (L, K) then repeat over channels
    order = keep.T
    cols_l = index.T[order]
    data_l = weight.T[order]
    offsets = np.repeat(np.arange(channels, dtype=np.int64) * n_in, cols_l.size)
    indices = (np.tile(cols_l, channels) + offsets).astype(idt)
    return sp.csr_array((np.tile(data_l, channels), indices, indptr), shape=(rows, cols))


def conv_matrix_nbytes(geometry: ConvGeometry, input_size, output_size=None,
                       itemsize: int = 8) -> int:
    """Estimated bytes of ``A`` and ``A.T`` (indices, weight maps and data), before building."""
    input_size, output_size = _resolve_sizes(geometry, input_size, output_size)
    rows = geometry.out_channels * math.prod(output_size)
    nnz = rows * (geometry.in_channels // geometry.groups) * geometry.kernel_numel
    idt = index_dtype(nnz, geometry.in_channels * math.prod(input_size))
    return 2 * nnz * (2 * idt.itemsize + itemsize)


@functools.lru_cache(maxsize=32)
def _conv_structure(geometry: ConvGeometry, input_size, output_size) -> ConvStructure:
    G, C_out = geometry.groups, geometry.out_channels
    Cg, K = geometry.in_channels // G, geometry.kernel_numel
    L = math.prod(output_size)
    rows, cols = C_out * L, geometry.in_channels * math.prod(input_size)
    # building needs about twice the finished size (index arrays before the padding is dropped)
    check_memory(conv_matrix_nbytes(geometry, input_size, output_size) * 2,
                 f"building the conv matrix A ({rows} x {cols}, up to {rows * Cg * K} "
                 f"nonzeros) with its transpose",
                 "use lowering='im2col' (the unfold matrix times a dense weight) or a smaller "
                 "input")
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


def conv_structure(geometry: ConvGeometry, input_size, output_size=None) -> ConvStructure:
    """The cached :class:`ConvStructure` for ``geometry`` on ``input_size``."""
    input_size, output_size = _resolve_sizes(geometry, input_size, output_size)
    return _conv_structure(geometry, input_size, output_size)


# --------------------------------------------------------------------------- public builders
def _split_input_shape(input_shape, ndim, name="input_shape"):
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != ndim + 1:
        raise ValueError(f"{name} must be (C, *spatial) with {ndim} spatial dimensions, "
                         f"got {input_shape!r}")
    channels = input_shape[0]
    return channels, as_tuple(tuple(input_shape[1:]), ndim, f"{name} spatial size")


def unfold_matrix(input_shape, kernel_size, stride=1, padding=0, dilation=1,
                  padding_mode="zeros") -> sp.csr_array:
    """The im2col matrix ``S``: ``(S @ x.ravel()).reshape(C*prod(k), L)`` unfolds one example.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, *spatial)`` of one example, 1 to 3 spatial dimensions.
    kernel_size, stride, padding, dilation, padding_mode
        As for :class:`~matconv.nn.Conv2d`.

    Returns
    -------
    scipy.sparse.csr_array of shape (C*prod(kernel_size)*L, C*prod(spatial)), float64
        Rows ordered ``(c, tap, position)``, exactly ``torch.nn.functional.unfold(x)`` flattened.
        Each row holds one 1, or nothing where the window reads a zero-padding cell.

    Examples
    --------
    >>> S = unfold_matrix((1, 3, 3), 2)
    >>> S.shape
    (16, 9)
    >>> (S @ np.arange(9.0)).reshape(4, 4)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    ndim = len(input_shape) - 1 if isinstance(input_shape, (tuple, list)) else 0
    if ndim not in (1, 2, 3):
        raise ValueError(f"input_shape must be (C, *spatial) with 1 to 3 spatial dimensions, "
                         f"got {input_shape!r}")
    channels, size = _split_input_shape(input_shape, ndim)
    geometry = ConvGeometry(channels, channels, kernel_size, stride, padding, dilation,
                            padding_mode=padding_mode, ndim=len(size))
    s = unfold_structure(geometry, size)
    data = np.ones(s.indices.size)
    return sp.csr_array((data, s.indices.copy(), s.indptr.copy()), shape=s.shape)


def conv_matrix(weight, input_shape, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros") -> sp.csr_array:
    """The whole convolution as one sparse matrix: ``A @ x.ravel() == conv(x).ravel()``.

    Cross-correlation as in PyTorch (no bias), for one example ``x`` of shape ``input_shape``.

    Parameters
    ----------
    weight : ndarray of shape (C_out, C_in // groups, *kernel_size)
        1-D, 2-D or 3-D kernels; the rank decides.
    input_shape : tuple of int
        ``(C_in, *spatial)``.
    stride, padding, dilation, groups, padding_mode
        As for :class:`~matconv.nn.Conv2d`.

    Returns
    -------
    scipy.sparse.csr_array of shape (C_out*prod(out), C_in*prod(spatial))
        Row ``(o, position)`` holds the weights of output channel ``o`` at the columns its window
        reads. dtype follows ``weight``.

    Notes
    -----
    The transpose ``A.T`` is the input gradient and, as a map, the transposed convolution.

    Examples
    --------
    The slide example: a 3x3 kernel over a 4x4 input.

    >>> w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    >>> A = conv_matrix(w, (1, 4, 4))
    >>> A.shape
    (4, 16)
    >>> A.toarray()[0]
    array([1., 2., 3., 0., 4., 5., 6., 0., 7., 8., 9., 0., 0., 0., 0., 0.])
    """
    weight = _check_weight(weight)
    ndim = weight.ndim - 2
    channels, size = _split_input_shape(input_shape, ndim)
    geometry = ConvGeometry(channels, weight.shape[0], weight.shape[2:], stride, padding,
                            dilation, groups, padding_mode)
    check_weight_shape(weight, geometry)
    return conv_structure(geometry, size).matrix(weight, copy=True)


def _check_weight(weight) -> np.ndarray:
    if not isinstance(weight, np.ndarray):
        weight = np.asarray(weight)
    if weight.dtype.kind not in "fc":
        if weight.dtype.kind not in "iub":
            raise TypeError(f"weight must be a real float array, got dtype {weight.dtype}")
        weight = weight.astype(np.float64)
    if weight.ndim not in (3, 4, 5):
        raise ValueError(f"weight must have shape (C_out, C_in/groups, *kernel_size) with 1 to 3 "
                         f"kernel dimensions, got shape {weight.shape}")
    return weight


def check_weight_shape(weight: np.ndarray, geometry: ConvGeometry) -> None:
    """Raise ``ValueError`` unless ``weight.shape == geometry.weight_shape``."""
    if tuple(weight.shape) != geometry.weight_shape:
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not fit in_channels="
                         f"{geometry.in_channels}, groups={geometry.groups}: expected "
                         f"{geometry.weight_shape}")
