"""Saving operators for other tools: ``scipy.sparse.save_npz`` or Matrix Market."""
from __future__ import annotations

import os

import scipy.io
import scipy.sparse as sp

__all__ = ["save_matrix", "load_matrix"]


def save_matrix(matrix, path) -> None:
    """Write a sparse matrix by ``path``'s suffix: ``.npz`` (``scipy.sparse.save_npz``) or
    ``.mtx`` (Matrix Market, ``scipy.io.mmwrite``; readable by MATLAB, Julia, R, ...).

    Examples
    --------
    >>> import os, tempfile, numpy as np, matconv as mc
    >>> A = mc.conv_matrix(np.ones((1, 1, 3, 3)), (1, 4, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "A.mtx")
    >>> save_matrix(A, path)
    >>> load_matrix(path).shape
    (4, 16)
    """
    path = os.fspath(path)
    if not sp.issparse(matrix):
        raise TypeError(f"matrix must be a scipy.sparse matrix or array, got "
                        f"{type(matrix).__name__}")
    if path.endswith(".npz"):
        sp.save_npz(path, sp.csr_array(matrix))
    elif path.endswith(".mtx"):
        scipy.io.mmwrite(path, sp.coo_array(matrix))
    else:
        raise ValueError(f"path must end in .npz or .mtx, got {path!r}")


def load_matrix(path) -> sp.csr_array:
    """Read a matrix written by :func:`save_matrix` (``.npz`` without pickle, or ``.mtx``)."""
    path = os.fspath(path)
    if path.endswith(".npz"):
        return sp.csr_array(sp.load_npz(path))
    if path.endswith(".mtx"):
        return sp.csr_array(scipy.io.mmread(path))
    raise ValueError(f"path must end in .npz or .mtx, got {path!r}")
