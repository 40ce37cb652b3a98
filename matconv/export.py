"""Saving operators for other tools, and loading them back safely: ``.npz`` (the layout of
``scipy.sparse.save_npz``) or Matrix Market (``.mtx``, readable by MATLAB, Julia, R, ...).

Saves are atomic (:func:`matconv.fileio.atomic_write`). Loads are safe on files from anyone:
sizes are checked against the memory budget before anything is allocated, and the sparse
structure (index bounds, ``indptr`` monotone and consistent, lengths) is validated before a
matrix is built, so no product can read outside its arrays. ``.npz`` entries are read by
:func:`matconv.fileio.read_npz`; a Matrix Market header is parsed here before
``scipy.io.mmread`` sees the file. Every problem raises :class:`MatrixFileError`.
"""
from __future__ import annotations

import os
import re

import numpy as np
import scipy.io
import scipy.sparse as sp

from .fileio import FileFormatError, atomic_write, check_path, open_regular, read_npz
from .memory import check_memory

__all__ = ["MatrixFileError", "load_matrix", "save_matrix"]

_SUFFIXES = (".npz", ".mtx")
_NPZ_WHAT = "sparse matrix file (.npz)"
_MTX_WHAT = "Matrix Market file"
_NPZ_KINDS = {"format": "SU", "shape": "iu", "data": "biufc", "indices": "iu", "indptr": "iu",
              "row": "iu", "col": "iu", "coords": "iu", "offsets": "iu", "_is_array": "b"}
# The entries each stored format needs besides format and shape (scipy.sparse.save_npz).
_NPZ_ENTRIES = {"csr": ("data", "indices", "indptr"), "csc": ("data", "indices", "indptr"),
                "bsr": ("data", "indices", "indptr"), "coo": ("data", "row", "col"),
                "dia": ("data", "offsets")}
_INT64_MAX = 2**63 - 1
_INDEX_BYTES = 8  # int64 indices, the worst case of the CSR result


class MatrixFileError(FileFormatError):
    """A matrix file that is damaged, malformed, lies about its sizes, or is over the memory
    budget. A ``ValueError``; the message names the file and the problem."""


def save_matrix(matrix, path) -> None:
    """Write a sparse matrix by ``path``'s suffix: ``.npz`` (``scipy.sparse.save_npz``, CSR) or
    ``.mtx`` (Matrix Market, ``scipy.io.mmwrite``; readable by MATLAB, Julia, R, ...).

    The write is atomic: a failure (a full disk, a missing directory) raises and leaves any
    previous file at ``path`` unchanged. Matrix Market is text: values are written in the
    shortest form that reads back exactly in their own dtype, and read back as float64,
    int64 or complex128 (a float32 matrix is recovered exactly by casting back to float32).

    Parameters
    ----------
    matrix : scipy.sparse matrix or array, 2-D
        Of bool, integer, floating or complex dtype.
    path : str or os.PathLike
        Ending in ``.npz`` or ``.mtx``.

    Raises
    ------
    TypeError
        If ``matrix`` is not a 2-D scipy.sparse matrix of a supported dtype, or ``path`` is not
        a path.
    ValueError
        If ``path`` has another suffix.
    OSError
        If the file cannot be written (the previous file is left as it was).

    Examples
    --------
    >>> import os, tempfile, numpy as np, matconv as mc
    >>> A = mc.conv_matrix(np.ones((1, 1, 3, 3)), (1, 4, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "A.mtx")
    >>> save_matrix(A, path)
    >>> load_matrix(path).shape
    (4, 16)
    """
    path = check_path(path, suffixes=_SUFFIXES)
    if not sp.issparse(matrix):
        raise TypeError(f"matrix must be a scipy.sparse matrix or array, got "
                        f"{type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.dtype.kind not in "biufc":
        raise TypeError(f"matrix must be 2-D of bool, integer, floating or complex dtype, got "
                        f"{matrix.ndim}-D {matrix.dtype}")
    with atomic_write(path) as fh:
        if path.lower().endswith(".npz"):
            sp.save_npz(fh, sp.csr_array(matrix))
        else:
            scipy.io.mmwrite(fh, sp.coo_array(matrix))


def load_matrix(path) -> sp.csr_array:
    """Read a matrix written by :func:`save_matrix` or by scipy (``.npz`` without pickle, in
    any of scipy's csr/csc/coo/bsr/dia layouts; or ``.mtx``), validated, as CSR.

    Safe on files from anyone: sizes are checked against the memory budget
    (:func:`matconv.get_memory_budget`) before anything is allocated, and the structure
    (index dtypes and bounds, ``indptr``, lengths) before the matrix is built.

    Parameters
    ----------
    path : str or os.PathLike
        Ending in ``.npz`` or ``.mtx``.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(M, N)``

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    MatrixFileError
        A ``ValueError`` naming the file and the problem: truncated or corrupt, malformed
        structure, a header that lies or overflows, a refused dtype, over the memory budget.
    TypeError, ValueError
        If ``path`` is not a path ending in ``.npz`` or ``.mtx``.

    Examples
    --------
    >>> import os, tempfile, scipy.sparse as sp
    >>> path = os.path.join(tempfile.mkdtemp(), "eye.npz")
    >>> sp.save_npz(path, sp.eye_array(3, format="coo"))
    >>> load_matrix(path).toarray()
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    path = check_path(path, suffixes=_SUFFIXES)
    if path.lower().endswith(".npz"):
        return _load_npz(path)
    return _load_mtx(path)


def _failer(path: str, what: str):
    return lambda problem: MatrixFileError(f"{path!r} is not a readable {what}: {problem}")


def _check_budget(nbytes: int, path: str, what: str, detail: str) -> None:
    try:
        check_memory(nbytes, f"loading {what} {path!r} as a CSR matrix ({detail})",
                     "load it on a machine with more memory")
    except ValueError as exc:
        raise MatrixFileError(str(exc)) from None


# --------------------------------------------------------------------------- .npz
def _load_npz(path: str) -> sp.csr_array:
    fail = _failer(path, _NPZ_WHAT)
    arrays = read_npz(path, kinds=_NPZ_KINDS, what=_NPZ_WHAT, error=MatrixFileError)
    fmt = _format_name(arrays, fail)
    if fmt == "coo" and "coords" in arrays and not {"row", "col"} & set(arrays):
        # scipy's n-dimensional layout: coords of shape (ndim, nnz)
        coords = arrays.pop("coords")
        if coords.ndim != 2 or coords.shape[0] != 2:
            raise fail(f"'coords' has shape {coords.shape}; a matrix needs (2, nnz)")
        arrays["row"], arrays["col"] = coords
    needed = set(_NPZ_ENTRIES[fmt]) | {"format", "shape"}
    missing = sorted(needed - set(arrays))
    extra = sorted(set(arrays) - needed - {"_is_array"})
    if missing or extra:
        raise fail(f"a {fmt} matrix needs the entries {sorted(needed)}; missing {missing}, "
                   f"unexpected {extra}")
    shape = _shape(arrays["shape"], fail)
    data = arrays["data"]
    if fmt in ("csr", "csc", "bsr"):
        stored = _check_compressed(fmt, data, arrays["indices"], arrays["indptr"], shape, fail)
    elif fmt == "coo":
        stored = _check_coo(data, arrays["row"], arrays["col"], shape, fail)
    else:
        stored = _check_dia(data, arrays["offsets"], shape, fail)
    # The arrays already read, the CSR result, and as much again for the conversion's
    # temporaries: the whole load stays within one budget.
    held = sum(a.nbytes for a in arrays.values())
    _check_budget(held + 2 * _csr_bytes(stored, data.dtype.itemsize, shape[0]), path,
                  _NPZ_WHAT, f"shape {shape}, up to {stored} stored values")
    if fmt == "csr":
        return sp.csr_array((data, arrays["indices"], arrays["indptr"]), shape=shape)
    if fmt in ("csc", "bsr"):
        cls = sp.csc_array if fmt == "csc" else sp.bsr_array
        return cls((data, arrays["indices"], arrays["indptr"]), shape=shape).tocsr()
    if fmt == "coo":
        return sp.coo_array((data, (arrays["row"], arrays["col"])), shape=shape).tocsr()
    return sp.dia_array((data, arrays["offsets"]), shape=shape).tocsr()


def _format_name(arrays: dict, fail) -> str:
    if "format" not in arrays:
        raise fail("no 'format' entry (is it a sparse matrix saved by scipy.sparse.save_npz?)")
    value = arrays["format"]
    if value.ndim != 0:
        raise fail(f"'format' has shape {value.shape}; expected a single string")
    name = value.item()
    if isinstance(name, bytes):
        name = name.decode("ascii", errors="replace")
    if name not in _NPZ_ENTRIES:
        raise fail(f"unknown sparse format {name[:20]!r}; known: {sorted(_NPZ_ENTRIES)}")
    return name


def _shape(value: np.ndarray, fail) -> tuple:
    if value.shape != (2,):
        raise fail(f"'shape' has shape {value.shape}; a matrix shape is 2 integers")
    shape = tuple(int(d) for d in value)
    if any(d < 0 or d > _INT64_MAX for d in shape):
        raise fail(f"shape {shape} is out of range (each dimension in [0, 2**63 - 1])")
    return shape


def _check_index(name: str, index: np.ndarray, length: int, bound: int, fail) -> None:
    if index.ndim != 1 or index.size != length:
        raise fail(f"'{name}' has shape {index.shape}; expected ({length},)")
    if length:
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= bound:
            bad = low if low < 0 else high
            raise fail(f"'{name}' holds {bad}, outside [0, {bound})")


def _check_compressed(fmt, data, indices, indptr, shape, fail) -> int:
    """Validate CSR/CSC/BSR arrays; return the number of stored values."""
    rows, cols = shape
    if fmt == "bsr":
        if data.ndim != 3 or 0 in data.shape[1:]:
            raise fail(f"'data' of a bsr matrix has shape {data.shape}; expected (nnzb, R, C)")
        r, c = data.shape[1:]
        if rows % r or cols % c:
            raise fail(f"blocks of {r}x{c} do not tile the shape {shape}")
        major, minor = rows // r, cols // c
    else:
        if data.ndim != 1:
            raise fail(f"'data' has shape {data.shape}; expected (nnz,)")
        major, minor = (rows, cols) if fmt != "csc" else (cols, rows)
    nnz = data.shape[0]
    if indptr.ndim != 1 or indptr.size != major + 1:
        raise fail(f"'indptr' has shape {indptr.shape}; a {fmt} matrix of shape {shape} needs "
                   f"({major + 1},)")
    if int(indptr[0]) != 0 or int(indptr[-1]) != nnz:
        raise fail(f"'indptr' runs from {int(indptr[0])} to {int(indptr[-1])}; it must run "
                   f"from 0 to the number of stored values, {nnz}")
    if np.any(indptr[1:] < indptr[:-1]):
        raise fail("'indptr' decreases; it must be non-decreasing")
    _check_index("indices", indices, nnz, minor, fail)
    return data.size


def _check_coo(data, row, col, shape, fail) -> int:
    if data.ndim != 1:
        raise fail(f"'data' has shape {data.shape}; expected (nnz,)")
    _check_index("row", row, data.size, shape[0], fail)
    _check_index("col", col, data.size, shape[1], fail)
    return data.size


def _check_dia(data, offsets, shape, fail) -> int:
    rows, cols = shape
    if data.ndim != 2 or offsets.ndim != 1 or data.shape[0] != offsets.size:
        raise fail(f"'data' of shape {data.shape} and 'offsets' of shape {offsets.shape} do not "
                   f"form a dia matrix (data is (number of offsets, L))")
    if offsets.size:
        if np.unique(offsets).size != offsets.size:
            raise fail("'offsets' repeats a diagonal")
        low, high = int(offsets.min()), int(offsets.max())
        if low <= -rows or high >= cols:
            raise fail(f"'offsets' holds {low if low <= -rows else high}, outside "
                       f"({-rows}, {cols}) for shape {shape}")
    return offsets.size * min(data.shape[1], cols)


def _csr_bytes(stored: int, itemsize: int, rows: int) -> int:
    return stored * (itemsize + _INDEX_BYTES) + (rows + 1) * _INDEX_BYTES


# --------------------------------------------------------------------------- Matrix Market
_BANNER = b"%%MatrixMarket"  # exact case, as scipy.io.mmread requires; the words may vary
_MTX_FIELDS = {"real": 8, "double": 8, "integer": 8, "unsigned-integer": 8, "pattern": 8,
               "complex": 16}  # bytes per value as scipy.io.mmread returns them
_MTX_SYMMETRIES = ("general", "symmetric", "skew-symmetric", "hermitian")
_MAX_LINE = 1 << 16
_DIGITS = re.compile(rb"[0-9]+")


def _load_mtx(path: str) -> sp.csr_array:
    fail = _failer(path, _MTX_WHAT)
    with open_regular(path, _MTX_WHAT) as fh:
        layout, field, symmetry, sizes = _mtx_header(fh, fail)
        rows, cols = sizes[:2]
        if symmetry != "general" and rows != cols:
            raise fail(f"a {symmetry} matrix must be square, the header says {rows}x{cols}")
        if layout == "coordinate":
            entries = sizes[2]
            if entries > rows * cols:
                raise fail(f"the header declares {entries} entries, more than the {rows}x{cols} "
                           f"cells")
            tokens = 2 + {"pattern": 0, "complex": 2}.get(field, 1)
        else:
            entries = {"general": rows * cols, "skew-symmetric": rows * (rows - 1) // 2}.get(
                symmetry, rows * (rows + 1) // 2)
            tokens = 2 if field == "complex" else 1
        # Every entry is a line of `tokens` numbers: at least 2 bytes each, spaces included.
        remaining = os.fstat(fh.fileno()).st_size - fh.tell()
        if entries and remaining < entries * 2 * tokens - 1:
            raise fail(f"the header declares {entries} entries, which need at least "
                       f"{entries * 2 * tokens - 1} bytes, but only {remaining} follow (truncated "
                       f"file or lying header)")
        itemsize = _MTX_FIELDS[field]
        stored = entries if symmetry == "general" else 2 * entries
        if layout == "coordinate":  # scipy's COO result, then our CSR
            need = stored * (itemsize + 2 * _INDEX_BYTES) + _csr_bytes(stored, itemsize, rows)
        else:  # a dense array, then our CSR
            need = rows * cols * itemsize + _csr_bytes(rows * cols, itemsize, rows)
        _check_budget(need, path, _MTX_WHAT, f"shape ({rows}, {cols}), {entries} entries")
        fh.seek(0)
        try:
            result = scipy.io.mmread(fh)
        except (ValueError, OverflowError, TypeError, MemoryError) as exc:
            raise fail(str(exc)) from None
    if isinstance(result, np.ndarray):
        return sp.csr_array(result)
    coo = sp.coo_array(result)
    _check_coo(coo.data, coo.row, coo.col, (rows, cols), fail)
    return coo.tocsr()


def _mtx_header(fh, fail):
    """Parse the banner and the size line; return ``(layout, field, symmetry, sizes)``."""
    tokens = fh.readline(_MAX_LINE).split()
    if not tokens or tokens[0] != _BANNER:
        raise fail("no '%%MatrixMarket' banner on the first line")
    words = [t.decode("ascii", errors="replace").lower() for t in tokens[1:]]
    if len(words) != 4 or words[0] != "matrix" or words[1] not in ("coordinate", "array") \
            or words[2] not in _MTX_FIELDS or words[3] not in _MTX_SYMMETRIES:
        raise fail(f"banner {b' '.join(tokens)[:100]!r} is not '%%MatrixMarket matrix "
                   f"coordinate|array {'|'.join(_MTX_FIELDS)} {'|'.join(_MTX_SYMMETRIES)}'")
    layout, field, symmetry = words[1:]
    while True:
        line = fh.readline(_MAX_LINE)
        if not line:
            raise fail("the file ends before its size line")
        if line.startswith(b"%"):
            while not line.endswith(b"\n") and line:  # skip the rest of a long comment
                line = fh.readline(_MAX_LINE)
            continue
        if line.strip():
            break
    parts = line.split()
    count = 3 if layout == "coordinate" else 2
    if len(parts) != count or not all(_DIGITS.fullmatch(p) for p in parts):
        raise fail(f"size line {line[:80]!r} is not {count} non-negative integers")
    for p in parts:
        if len(p) > 19 or int(p) > _INT64_MAX:
            raise fail(f"integer overflow in the size line: {p[:40].decode()} exceeds "
                       f"2**63 - 1")
    return layout, field, symmetry, tuple(int(p) for p in parts)
