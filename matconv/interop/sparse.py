"""Lowered matrices across the border: scipy's sparse arrays to and from torch's sparse tensors.

Values and dtype are kept exactly; indices become int64 on torch's side (its CSR wants one index
dtype). Matrices from torch are checked (index bounds, monotone row pointers) before scipy sees
them, so a malformed tensor is refused instead of read out of bounds.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from ..memory import check_memory
from ..operators import Operator
from .torch_import import require_torch

__all__ = ["to_torch_sparse", "from_torch_sparse"]

_LAYOUTS = ("csr", "coo")


def to_torch_sparse(A, layout: str = "csr"):
    """A ``scipy.sparse`` matrix (or a matconv operator's matrix) as a torch sparse tensor.

    Parameters
    ----------
    A : scipy.sparse array or matrix, or matconv.operators.Operator
        An operator is converted through ``A.matrix()``.
    layout : {'csr', 'coo'}, default 'csr'
        ``torch.sparse_csr`` (the same row pointers, column indices and values) or a coalesced
        ``torch.sparse_coo`` tensor.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and entries: ``torch.sparse.mm(T, x)`` is ``A @ x``.

    Examples
    --------
    With PyTorch installed::

        A = matconv.conv_matrix(np.ones((1, 1, 2, 2)), (1, 3, 3))
        T = to_torch_sparse(A)                   # torch.sparse_csr, shape (4, 9), float64
        torch.sparse.mm(T, x)                    # A @ x
    """
    torch = require_torch("to_torch_sparse")
    if isinstance(A, Operator):
        A = A.matrix()
    if not sp.issparse(A) or len(A.shape) != 2:
        raise TypeError(f"A must be a 2-D scipy.sparse array or matrix (or a matconv operator), "
                        f"got {type(A).__name__}")
    if A.dtype.kind not in "fiub":
        raise TypeError(f"A must hold real numbers, got dtype {A.dtype}")
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    check_memory(A.nnz * (A.dtype.itemsize + 16) + (A.shape[0] + 1) * 8,
                 f"a torch copy of a {A.shape[0]} x {A.shape[1]} matrix with {A.nnz} nonzeros",
                 "convert a smaller matrix")
    if layout == "csr":
        M = sp.csr_array(A)
        M.sort_indices()
        with warnings.catch_warnings():  # torch's notice that its CSR support is "beta"
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(torch.from_numpy(M.indptr.astype(np.int64)),
                                           torch.from_numpy(M.indices.astype(np.int64)),
                                           torch.from_numpy(M.data.copy()), size=M.shape,
                                           check_invariants=True)
    M = sp.coo_array(A)
    M.sum_duplicates()
    indices = np.vstack([M.row, M.col]).astype(np.int64)
    return torch.sparse_coo_tensor(torch.from_numpy(indices), torch.from_numpy(M.data.copy()),
                                   size=M.shape, check_invariants=True).coalesce()


def from_torch_sparse(t) -> sp.csr_array:
    """A 2-D torch tensor (sparse COO, CSR or CSC, or dense) as a ``scipy.sparse.csr_array``.

    The tensor is detached and copied to the CPU; dtype and entries are kept (duplicates of a
    COO tensor are summed, as torch's ``coalesce`` does).

    Raises
    ------
    TypeError
        Not a tensor, or complex values.
    ValueError
        Not 2-D, an unsupported layout, or a malformed index structure.

    Examples
    --------
    With PyTorch installed::

        from_torch_sparse(torch.eye(3).to_sparse())      # a 3 x 3 float32 csr_array
    """
    torch = require_torch("from_torch_sparse")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 2:
        raise ValueError(f"t must be 2-D (a matrix), got {t.dim()} dims of shape "
                         f"{tuple(t.shape)}")
    if t.is_complex():
        raise TypeError(f"t must hold real numbers, got dtype {t.dtype}")
    t = t.detach().cpu()
    shape = tuple(int(n) for n in t.shape)
    nnz = t._nnz() if t.layout != torch.strided else int(np.prod(shape))
    check_memory(nnz * (t.element_size() + 16) + (shape[0] + 1) * 8,
                 f"a scipy copy of a {shape[0]} x {shape[1]} tensor with {nnz} entries",
                 "convert a smaller matrix")
    try:
        if t.layout == torch.strided:
            return sp.csr_array(t.numpy())
        if t.layout == torch.sparse_coo:
            t = t.coalesce()
            row, col = t.indices().numpy()
            _check_bounds(row, shape[0], "row") or _check_bounds(col, shape[1], "column")
            return sp.csr_array((t.values().numpy().copy(), (row, col)), shape=shape)
        if t.layout == torch.sparse_csr:
            M = sp.csr_array((t.values().numpy().copy(), t.col_indices().numpy().copy(),
                              t.crow_indices().numpy().copy()), shape=shape)
        elif t.layout == torch.sparse_csc:
            M = sp.csc_array((t.values().numpy().copy(), t.row_indices().numpy().copy(),
                              t.ccol_indices().numpy().copy()), shape=shape)
        else:
            raise ValueError(f"t has layout {t.layout}; from_torch_sparse reads strided, "
                             f"sparse_coo, sparse_csr and sparse_csc tensors (convert with "
                             f"t.to_sparse_csr())")
        M.check_format(full_check=True)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"t is not a valid sparse matrix of shape {shape}: {exc}") from None
    return sp.csr_array(M)


def _check_bounds(index, n, what):
    if index.size and (index.min() < 0 or index.max() >= n):
        raise ValueError(f"{what} indices must lie in [0, {n}), got [{index.min()}, "
                         f"{index.max()}]")
