"""Files from anyone: the validated .npz reader, load_matrix (.npz and Matrix Market) and the
IDX reader, against hostile files built by hand in tests/hostile_files.py.

Each refusal asserts the exception type and that the message names the file and the problem.
Oracles: scipy's own readers for valid files, and a direct-loop check of the CSR definition for
the structure fuzz. The memory cases run in a subprocess under RLIMIT_AS (1 GiB above the
interpreter after its imports) and a timeout, and assert a clean refusal and a peak-memory
growth far below what the file asks for.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import matconv as mc
from matconv import data
from matconv.export import MatrixFileError
from matconv.fileio import FileFormatError, read_npz

from . import hostile_files as h

F8 = h.npy_header


@pytest.fixture
def budget(monkeypatch):
    """Set the memory budget for one test; the previous one comes back afterwards."""
    return lambda nbytes: monkeypatch.setattr(mc.memory, "_budget", nbytes)


def csr_parts(indices=(0, 1), indptr=(0, 1, 2), shape=(2, 2), data=(1.0, 2.0), fmt=b"csr"):
    return {"format": np.array(fmt), "shape": np.array(shape), "data": np.array(data),
            "indices": np.array(indices), "indptr": np.array(indptr)}


# --------------------------------------------------------------------------- paths
@pytest.mark.parametrize("bad", [None, 3, 2.5, ["A.npz"]])
@pytest.mark.parametrize("func", [mc.load_matrix, data.load_idx, mc.checkpoint.load])
def test_non_paths_are_type_errors_naming_path(func, bad):
    with pytest.raises(TypeError, match=rf"path must be a str or os.PathLike, got "
                                        rf"{type(bad).__name__}"):
        func(bad)


@pytest.mark.parametrize("bad, match", [("", "path must not be empty"),
                                        ("A.csv", r"path must end in \.npz or \.mtx, got 'A.csv'"),
                                        ("A\x00.npz", "path must not contain a null byte")])
def test_bad_path_values(bad, match):
    with pytest.raises(ValueError, match=match):
        mc.load_matrix(bad)


def test_directories_and_pipes_are_refused_without_blocking(tmp_path):
    folder = tmp_path / "A.npz"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=re.escape(str(folder))):
        mc.load_matrix(folder)
    fifo = tmp_path / "pipe.mtx"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    with pytest.raises(FileFormatError, match=re.escape(str(fifo)) + ".*not a regular file"):
        mc.load_matrix(fifo)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.npz"))):
        mc.load_matrix(tmp_path / "nope.npz")


# --------------------------------------------------------------------------- read_npz
def test_read_npz_round_trips_what_numpy_writes(tmp_path):
    arrays = {"c": np.arange(6.0).reshape(2, 3), "f": np.asfortranarray(np.ones((3, 2))),
              "big": np.arange(4, dtype=">i4"), "empty": np.zeros((0, 3)), "s": np.array("hé"),
              "b": np.array([True, False])}
    path = tmp_path / "a.npz"
    np.savez_compressed(path, **arrays)
    got = read_npz(str(path), kinds={"*": "biufU"}, what="test file")
    assert list(got) == list(arrays)
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype.newbyteorder("=") and got[name].dtype.isnative
        np.testing.assert_array_equal(got[name], a)
    assert got["f"].flags.f_contiguous and got["c"].flags.writeable


def test_bools_are_canonical(tmp_path):
    raw = bytearray(h.npy_bytes(np.array([True, False, True])))
    raw[-1] = 7  # a "bool" byte that is neither 0 nor 1
    path = h.write_npz(tmp_path / "b.npz", {"b": bytes(raw)})
    b = read_npz(str(path), kinds={"b": "b"}, what="test file")["b"]
    assert b.view(np.uint8).tolist() == [1, 0, 1]


NPZ_DAMAGE = [
    ("not a zip", lambda p: p.write_bytes(b"\x00" * 64), "BadZipFile"),
    ("truncated zip", lambda p: p.write_bytes(p.read_bytes()[:120]), "BadZipFile"),
    ("not .npy", lambda p: h.write_zip(p, [h.stored("x.txt", b"hi")]), "'x.txt' is not a .npy"),
    ("duplicate", lambda p: h.write_zip(p, h.npz_entries({"x": np.ones(1)}) * 2),
     "'x' appears twice"),
    ("bad magic", lambda p: h.write_npz(p, {"x": b"\x93NUMPZ" + bytes(60)}), "bad magic"),
    ("version 3", lambda p: h.write_npz(p, {"x": b"\x93NUMPY\x03\x00" + bytes(60)}),
     r"format version \(3, 0\)"),
    ("huge header", lambda p: h.write_npz(p, {"x": b"\x93NUMPY\x02\x00" + (10**9).to_bytes(
        4, "little")}), "header of 1000000000 bytes"),
    ("header not a dict", lambda p: h.write_npz(p, {"x": b"\x93NUMPY\x01\x00\x10\x00[1, 2]" +
                                                    b" " * 9 + b"\n"}), "malformed .npy header"),
    ("negative shape", lambda p: h.write_npz(p, {"x": F8((-1,))}), r"invalid shape \(-1,\)"),
    ("header vs size", lambda p: h.write_npz(p, {"x": F8((10**7, 10**7)) + bytes(16)}),
     r"holds \d+ bytes but its header \(shape \(10000000, 10000000\), float64\) needs"),
    ("short data", lambda p: h.write_npz(p, {"x": F8((4,)) + bytes(8)},
                                         declared={"x.npy": len(F8((4,))) + 32}), "entry 'x' is truncated"),
    ("corrupt deflate", lambda p: h.write_zip(p, [h.corrupt_payload(
        h.deflated("x.npy", h.npy_bytes(np.arange(1000.0))))]), "error|BadZipFile"),
    ("encrypted", lambda p: p.write_bytes(_set_flag(h.write_npz(p, {"x": np.ones(2)}))),
     "encrypted"),
    ("bzip2", lambda p: h.write_zip(p, [("x.npy", 12, b"", 0, 0)]), "compression method 12"),
]


def _set_flag(path):
    raw = bytearray(path.read_bytes())
    raw[6] |= 1  # local header flag bits
    raw[raw.index(b"PK\x01\x02") + 8] |= 1  # central directory flag bits
    return bytes(raw)


@pytest.mark.parametrize("label, damage, problem", NPZ_DAMAGE, ids=[d[0] for d in NPZ_DAMAGE])
def test_damaged_npz_archives(tmp_path, label, damage, problem):
    path = tmp_path / "m.npz"
    np.savez(path, x=np.ones(3))
    damage(path)
    with pytest.raises(FileFormatError, match=problem) as info:
        read_npz(str(path), kinds={"*": "f"}, what="test file")
    assert str(info.value).startswith(f"{str(path)!r} is not a readable test file: ")


@pytest.mark.parametrize("array", [np.array([{}], object), np.array([1 + 2j]),
                                   np.array(["2020-01-01"], "datetime64[D]"), np.array(["a"]),
                                   np.zeros(2, [("a", "f8")]), np.zeros(2, "V8"),
                                   h.npy_header((1,), ("<f8", (2,))) + bytes(16)],
                         ids=["object", "complex", "datetime", "str", "struct", "void", "sub"])
def test_refused_dtypes_are_not_read(tmp_path, array):
    path = h.write_npz(tmp_path / "m.npz", {"x": array})
    with pytest.raises(FileFormatError, match=r"entry 'x' has dtype .*; allowed: floating"):
        read_npz(str(path), kinds={"x": "f"}, what="test file")


def test_unexpected_entries_and_size_limits(tmp_path):
    path = h.write_npz(tmp_path / "m.npz", {"x": np.ones(3), "y": np.ones(3)})
    with pytest.raises(FileFormatError, match=r"unexpected entry 'y'; expected \['x'\]"):
        read_npz(str(path), kinds={"x": "f"}, what="test file")
    with pytest.raises(FileFormatError, match=r"entry 'x' holds 24 bytes, more than the 16"):
        read_npz(str(path), kinds={"*": "f"}, what="test file", limits={"x": 16})


def test_declared_sizes_are_checked_against_the_budget_before_reading(tmp_path, budget):
    path = h.write_npz(tmp_path / "m.npz", {"x": np.ones(1000)})
    budget(4000)
    with pytest.raises(FileFormatError, match=r"reading the arrays of test file '.*m\.npz' "
                                              r"would take about 7\.9 KiB, over the memory "
                                              r"budget of 3\.9 KiB"):
        read_npz(str(path), kinds={"*": "f"}, what="test file")


# --------------------------------------------------------------------------- load_matrix: .npz
def random_sparse(rng, fmt, dtype, shape=(7, 5), density=0.4):
    A = sp.random_array(shape, density=density, random_state=rng, format="coo")
    A = A.astype(dtype) if np.dtype(dtype).kind != "b" else (A != 0)
    if fmt == "bsr":
        return sp.bsr_array(A.toarray(), blocksize=(1, 1)) if shape[0] % 2 else \
            sp.bsr_array(A.toarray(), blocksize=(2, 1))
    return A.asformat(fmt)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.complex128, np.bool_])
@pytest.mark.parametrize("kind", ["array", "matrix"])
def test_every_scipy_layout_loads_like_scipy(tmp_path, rng, fmt, dtype, kind):
    A = random_sparse(rng, fmt, dtype, shape=(8, 5))
    if kind == "matrix":
        A = getattr(sp, f"{fmt}_matrix")(A)
    path = tmp_path / "A.npz"
    sp.save_npz(path, A, compressed=kind == "array")
    B = mc.load_matrix(path)
    expected = sp.load_npz(path).toarray()   # scipy's reader as the oracle
    assert isinstance(B, sp.csr_array) and B.dtype == expected.dtype
    np.testing.assert_array_equal(B.toarray(), expected)


def test_coords_layout_and_empty_matrices(tmp_path):
    path = h.write_npz(tmp_path / "c.npz", {"format": np.array(b"coo"), "shape": np.array([3, 4]),
                                            "data": np.array([5.0, 6.0]),
                                            "coords": np.array([[0, 2], [3, 1]])})
    np.testing.assert_array_equal(mc.load_matrix(path).toarray(),
                                  [[0, 0, 0, 5], [0, 0, 0, 0], [0, 6, 0, 0]])
    for shape in [(0, 0), (0, 5), (4, 0)]:
        sp.save_npz(tmp_path / "e.npz", sp.csr_array(shape))
        assert mc.load_matrix(tmp_path / "e.npz").shape == shape


NPZ_STRUCTURE = [
    ("index 10**9 csr", csr_parts(indices=(10**9, 0)), r"'indices' holds 1000000000, outside \["),
    ("index 10**9 csc", csr_parts(indices=(10**9, 0), fmt=b"csc"), r"'indices' holds 1000000000"),
    ("negative index", csr_parts(indices=(-1, 0)), r"'indices' holds -1, outside \[0, 2\)"),
    ("decreasing indptr", csr_parts(indptr=(0, 2, 1, 2), shape=(3, 2)), "'indptr' decreases"),
    ("indptr start", csr_parts(indptr=(1, 1, 2)), "'indptr' runs from 1 to 2"),
    ("indptr end", csr_parts(indptr=(0, 1, 1)), r"runs from 0 to 1; .* stored values, 2"),
    ("indptr length", csr_parts(indptr=(0, 2)), r"'indptr' has shape \(2,\); .* needs \(3,\)"),
    ("lying shape", csr_parts(shape=(2, 1)), r"'indices' holds 1, outside \[0, 1\)"),
    ("negative shape", csr_parts(shape=(-2, 2)), r"shape \(-2, 2\) is out of range"),
    ("overflowing shape", csr_parts(shape=np.array([2**64 - 1, 2], np.uint64)),
     "is out of range"),
    ("3-d shape", csr_parts(shape=(2, 2, 2)), "'shape' has shape"),
    ("float indices", csr_parts(indices=(0.0, 1.0)), "entry 'indices' has dtype float64"),
    ("object data", csr_parts(data=np.array([1.0, None], object)), "'data' has dtype object"),
    ("datetime data", csr_parts(data=np.array(["2020", "2021"], "datetime64[Y]")),
     "'data' has dtype datetime64"),
    ("string data", csr_parts(data=("a", "b")), "'data' has dtype <U1"),
    ("2-d data", csr_parts(data=[[1.0, 2.0]]), r"'data' has shape \(1, 2\)"),
    ("data length", csr_parts(data=(1.0,)), "'indptr' runs from 0 to 2"),
    ("unknown format", csr_parts(fmt=b"lil"), "unknown sparse format 'lil'"),
    ("no format", {"shape": np.array([2, 2])}, "no 'format' entry"),
    ("missing entry", {"format": np.array("csr"), "shape": np.array([1, 1]),
                       "data": np.ones(1)}, r"missing \['indices', 'indptr'\]"),
    ("extra entry", {**csr_parts(), "row": np.zeros(2, int)}, r"unexpected \['row'\]"),
    ("unknown entry", {**csr_parts(), "evil": np.zeros(2)}, r"unexpected entry 'evil'"),
    ("coo row", {"format": np.array(b"coo"), "shape": np.array([2, 2]), "data": np.ones(1),
                 "row": np.array([2]), "col": np.array([0])}, r"'row' holds 2, outside \[0, 2\)"),
    ("coo col", {"format": np.array(b"coo"), "shape": np.array([2, 2]), "data": np.ones(1),
                 "row": np.array([0]), "col": np.array([-5])}, "'col' holds -5"),
    ("coo lengths", {"format": np.array(b"coo"), "shape": np.array([2, 2]), "data": np.ones(2),
                     "row": np.array([0]), "col": np.array([0, 1])}, r"'row' has shape \(1,\)"),
    ("coords 3-d", {"format": np.array(b"coo"), "shape": np.array([2, 2]), "data": np.ones(1),
                    "coords": np.zeros((3, 1), int)}, r"'coords' has shape \(3, 1\)"),
    ("bsr tiling", {"format": np.array(b"bsr"), "shape": np.array([3, 2]),
                    "data": np.ones((1, 2, 2)), "indices": np.array([0]),
                    "indptr": np.array([0, 1])}, r"blocks of 2x2 do not tile the shape \(3, 2\)"),
    ("bsr index", {"format": np.array(b"bsr"), "shape": np.array([4, 4]),
                   "data": np.ones((1, 2, 2)), "indices": np.array([2]),
                   "indptr": np.array([0, 1, 1])}, r"'indices' holds 2, outside \[0, 2\)"),
    ("dia repeats", {"format": np.array(b"dia"), "shape": np.array([3, 3]),
                     "data": np.ones((2, 3)), "offsets": np.array([1, 1])}, "repeats a diagonal"),
    ("dia offset", {"format": np.array(b"dia"), "shape": np.array([3, 3]),
                    "data": np.ones((1, 3)), "offsets": np.array([2**62])}, "'offsets' holds"),
    ("dia shapes", {"format": np.array(b"dia"), "shape": np.array([3, 3]),
                    "data": np.ones((2, 3)), "offsets": np.array([0])}, "do not form a dia"),
]


@pytest.mark.parametrize("label, arrays, problem", NPZ_STRUCTURE, ids=[c[0] for c in NPZ_STRUCTURE])
def test_malformed_sparse_structure_is_refused(tmp_path, label, arrays, problem):
    path = h.write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(MatrixFileError, match=problem) as info:
        mc.load_matrix(path)
    assert str(info.value).startswith(f"{str(path)!r} is not a readable sparse matrix file")


def test_the_csr_result_is_estimated_before_it_is_built(tmp_path):
    # One stored value, but CSR needs an indptr of 10**12 + 1 entries: 7.3 TiB.
    path = h.write_npz(tmp_path / "tall.npz", {
        "format": np.array(b"coo"), "shape": np.array([10**12, 1]), "data": np.ones(1),
        "row": np.array([5]), "col": np.array([0])})
    with pytest.raises(MatrixFileError, match=r"loading sparse matrix file \(\.npz\) '.*tall\.npz' "
                                              r"as a CSR matrix \(shape \(1000000000000, 1\), up "
                                              r"to 1 stored values\) would take about 14\.6 TiB"):
        mc.load_matrix(path)


def test_the_issue_cases_would_have_crashed_scipy_products(tmp_path):
    # What the issue reported: these load in scipy (no full check), and a product reads out
    # of bounds. load_matrix refuses them; scipy's own full check agrees they are invalid.
    for fmt in (b"csr", b"csc"):
        path = h.write_npz(tmp_path / "a.npz", csr_parts(indices=(10**9,), indptr=(0, 1, 1),
                                                         data=(1.0,), fmt=fmt))
        with pytest.raises(ValueError):
            sp.load_npz(path).check_format(full_check=True)
        with pytest.raises(MatrixFileError, match="outside"):
            mc.load_matrix(path)


def valid_by_definition(indptr, indices, data, shape):
    """The CSR definition, checked with loops (independent of matconv's vectorised checks)."""
    rows, cols = shape
    if len(indptr) != rows + 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        return False
    if len(data) != len(indices):
        return False
    if any(indptr[i] > indptr[i + 1] for i in range(rows)):
        return False
    return all(0 <= j < cols for j in indices)


def dense_by_definition(indptr, indices, data, shape):
    out = np.zeros(shape)
    for i in range(shape[0]):
        for k in range(indptr[i], indptr[i + 1]):
            out[i, indices[k]] += data[k]
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_structure_fuzz_accepts_exactly_the_valid_csr(tmp_path_factory, draw):
    rows, cols = draw.draw(st.integers(0, 4)), draw.draw(st.integers(0, 4))
    nnz = draw.draw(st.integers(0, 6))
    small = st.integers(-3, 8)
    indptr = draw.draw(st.lists(small, min_size=rows + 1, max_size=rows + 1)
                       | st.lists(small, min_size=0, max_size=6))
    indices = draw.draw(st.lists(small, min_size=nnz, max_size=nnz))
    data = draw.draw(st.lists(st.floats(-5, 5), min_size=nnz, max_size=nnz + 1))
    path = tmp_path_factory.mktemp("fuzz") / "m.npz"
    h.write_npz(path, {"format": np.array(b"csr"), "shape": np.array([rows, cols]),
                       "data": np.array(data, float), "indices": np.array(indices, np.int64),
                       "indptr": np.array(indptr, np.int64)})
    if valid_by_definition(indptr, indices, data, (rows, cols)):
        np.testing.assert_array_equal(mc.load_matrix(path).toarray(),
                                      dense_by_definition(indptr, indices, data, (rows, cols)))
    else:
        with pytest.raises(MatrixFileError, match=re.escape(str(path))):
            mc.load_matrix(path)


# --------------------------------------------------------------------------- Matrix Market
MTX_VALID = [
    "%%MatrixMarket matrix coordinate real general\n% a comment\n\n3 4 3\n1 1 1.5\n3 4 -2\n2 2 1e3\n",
    "%%MatrixMarket matrix coordinate integer symmetric\n3 3 2\n2 1 7\n3 3 1\n",
    "%%MatrixMarket matrix coordinate real skew-symmetric\n3 3 1\n3 1 2.5\n",
    "%%MatrixMarket matrix coordinate complex hermitian\n2 2 2\n1 1 1 0\n2 1 1 2\n",
    "%%MatrixMarket matrix coordinate pattern general\n2 3 2\n1 3\n2 1\n",
    "%%MatrixMarket matrix array real general\n2 3\n1\n2\n3\n4\n5\n6\n",
    "%%MatrixMarket matrix array real symmetric\n2 2\n1\n2\n3\n",
    "%%MatrixMarket Matrix Coordinate Real General\n" + "%" * 200_000 + "\n1 1 1\n1 1 4\n",
    "%%MatrixMarket matrix coordinate real general\n0 0 0\n",
]


@pytest.mark.parametrize("text", MTX_VALID, ids=range(len(MTX_VALID)))
def test_valid_matrix_market_files_load_like_scipy(tmp_path, text):
    path = tmp_path / "A.mtx"
    path.write_text(text)
    expected = scipy.io.mmread(path)   # scipy's reader as the oracle
    expected = expected if isinstance(expected, np.ndarray) else expected.toarray()
    B = mc.load_matrix(path)
    assert isinstance(B, sp.csr_array)
    np.testing.assert_array_equal(B.toarray(), expected)


MTX_HOSTILE = [
    ("60 bytes asking for terabytes",
     "%%MatrixMarket matrix coordinate real general\n9999999 9999999 999999999999\n",
     (r"declares 999999999999 entries, which need at least 5999999999993 bytes, but only 0 "
      r"follow \(truncated file or lying header\)")),
    ("dense terabytes", "%%MatrixMarket matrix array real general\n1000000 1000000\n1\n",
     "declares 1000000000000 entries"),
    ("overflow", ("%%MatrixMarket matrix coordinate real general\n99999999999999999999999 2 1\n"
                  "1 1 1\n"), "integer overflow in the size line: 99999999999999999999999 exceeds 2"),
    ("overflow 2**63", ("%%MatrixMarket matrix coordinate real general\n"
                        "9223372036854775808 2 1\n1 1 1\n"), "integer overflow"),
    ("more entries than cells", "%%MatrixMarket matrix coordinate real general\n2 2 5\n" +
     "1 1 1\n" * 5, "declares 5 entries, more than the 2x2 cells"),
    ("no banner", "3 3 1\n1 1 1\n", "no '%%MatrixMarket' banner"),
    ("banner case", "%%MATRIXMARKET matrix coordinate real general\n1 1 1\n1 1 1\n",
     "no '%%MatrixMarket' banner"),
    ("vector", "%%MatrixMarket vector coordinate real general\n2 1\n1 1\n", "is not '%%Matrix"),
    ("unknown field", "%%MatrixMarket matrix coordinate quaternion general\n1 1 1\n1 1 1\n",
     "is not '%%MatrixMarket"),
    ("no size line", "%%MatrixMarket matrix coordinate real general\n% only comments\n",
     "ends before its size line"),
    ("size garbage", "%%MatrixMarket matrix coordinate real general\n2 2 x\n",
     "is not 3 non-negative integers"),
    ("size underscores", "%%MatrixMarket matrix coordinate real general\n1_0 2 1\n1 1 1\n",
     "is not 3 non-negative integers"),
    ("negative size", "%%MatrixMarket matrix coordinate real general\n-2 2 1\n1 1 1\n",
     "is not 3 non-negative integers"),
    ("symmetric not square", "%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n1 1 1\n",
     "must be square"),
    # Past the header, scipy's reader finds the problem; its message gets the file's name.
    ("index out of range", "%%MatrixMarket matrix coordinate real general\n2 2 1\n5 1 1.0\n",
     "Row index out of bounds"),
    ("index overflow", ("%%MatrixMarket matrix coordinate real general\n2 2 1\n"
                        "99999999999999999999 1 1\n"), "Integer out of range"),
    ("bad value", "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 abc\n",
     "Invalid floating-point value"),
    ("fewer lines", "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1.0000000\n",
     "Truncated file"),
]


@pytest.mark.parametrize("label, text, problem", MTX_HOSTILE, ids=[c[0] for c in MTX_HOSTILE])
def test_hostile_matrix_market_files(tmp_path, label, text, problem):
    path = tmp_path / "A.mtx"
    path.write_text(text)
    with pytest.raises(MatrixFileError, match=problem) as info:
        mc.load_matrix(path)
    assert str(info.value).startswith(f"{str(path)!r} is not a readable Matrix Market file: ")


def test_matrix_market_over_the_budget_is_refused_before_reading(tmp_path, budget):
    path = tmp_path / "A.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n100000 100000 1000\n" +
                    "1 1 1\n" * 1000)
    budget(64 << 10)
    with pytest.raises(MatrixFileError, match=r"loading Matrix Market file '.*A\.mtx' as a "
                                              r"CSR matrix .* over the memory budget"):
        mc.load_matrix(path)


# --------------------------------------------------------------------------- IDX
IDX_HOSTILE = [
    ("lying header", h.idx_header(8, (60000, 2**15, 2**15)) + bytes(100),
     (r"truncated data: shape \(60000, 32768, 32768\) of uint8 needs 64424509440000 bytes, "
      r"the file has 100")),
    ("lying gzip header", h.gzip_bytes(h.idx_header(8, (60000, 2**15, 2**15)) + bytes(100)),
     r"needs 64424509440000 bytes, more than \d+ bytes of gzip data can hold"),
    ("gzip trailing", h.gzip_bytes(h.idx_header(8, (2,)) + bytes(5)),
     r"trailing bytes after the data of shape \(2,\)"),
    ("gzip crc", h.gzip_bytes(h.idx_header(8, (2,)) + bytes(2))[:-8] + bytes(8),
     "corrupt gzip data"),
    ("max dims", bytes([0, 0, 8, 255]) + b"\x7f\xff\xff\xff" * 255, "needs"),
]


@pytest.mark.parametrize("label, raw, problem", IDX_HOSTILE, ids=[c[0] for c in IDX_HOSTILE])
def test_hostile_idx_files(tmp_path, label, raw, problem):
    path = tmp_path / "x-idx"
    path.write_bytes(raw)
    with pytest.raises(FileFormatError, match=re.escape(str(path)) + ": .*" + problem):
        data.load_idx(path)


def test_idx_dataset_checks_headers_before_reading_data(tmp_path, budget):
    images = tmp_path / "images"
    data.write_idx(images, np.zeros((3, 2, 2), np.uint8))
    labels = tmp_path / "labels"
    labels.write_bytes(h.idx_header(8, (2**31 - 1,)))   # lies: declares 2 GiB of labels
    with pytest.raises(ValueError, match=re.escape(f"{images} holds 3 images but {labels} holds "
                                                   f"2147483647 labels")):
        data.load_idx_dataset(images, labels)
    with pytest.raises(TypeError, match="labels_path must be a str or os.PathLike"):
        data.load_idx_dataset(images, None)
    data.write_idx(labels, np.zeros(3, np.uint8))
    budget(40)
    with pytest.raises(ValueError, match=r"loading .*images as float32 images .* over the "
                                         r"memory budget"):
        data.load_idx_dataset(images, labels)


# --------------------------------------------------------------------------- memory, isolated
HARNESS = r"""
import json, resource, sys
import numpy as np
import matconv as mc
from matconv import checkpoint, data

def vm_bytes():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

limit = vm_bytes() + (1 << 30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
loaders = {"matrix": mc.load_matrix, "checkpoint": checkpoint.load, "idx": data.load_idx}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
results = {}
for key, loader, path, budget in json.loads(sys.argv[1]):
    mc.set_memory_budget(budget)
    try:
        loaders[loader](path)
        outcome = ["returned", ""]
    except BaseException as exc:
        outcome = [type(exc).__name__, str(exc)]
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    results[key] = outcome + [grown]
print(json.dumps(results))
"""

BOMB = 256 * h.MiB
META = np.array(json.dumps({"format": 2, "spec": None}))
CSR_REST = {k: v for k, v in csr_parts().items() if k != "data"}


def memory_cases(d):
    """(key, loader, file, budget or None, expected exception, message pattern)."""
    big_header = h.npy_header((10**7, 10**7), "<f4")
    return [
        ("npz header 10**7 x 10**7", "matrix",
         h.write_npz(d / "hdr.npz", {**csr_parts(), "data": big_header + bytes(16)}),
         None, "MatrixFileError", r"entry 'data' holds \d+ bytes but its header"),
        ("npz zip bomb", "matrix",
         h.write_zip(d / "bomb.npz", [h.zero_bomb("data.npy", F8((BOMB // 8,)), BOMB),
                                      *h.npz_entries(CSR_REST)]),
         64 * h.MiB, "MatrixFileError", "would take about 256.0 MiB, over the memory budget"),
        ("npz zip bomb lying about its size", "matrix",
         h.write_zip(d / "lie.npz", [h.zero_bomb("data.npy", F8((64,)), BOMB),
                                     *h.npz_entries(CSR_REST)],
                     declared={"data.npy": len(F8((64,))) + 512}),
         None, "MatrixFileError", "Bad CRC-32"),
        ("mtx 60 bytes asking for terabytes", "matrix",
         _write(d / "tb.mtx", b"%%MatrixMarket matrix array real general\n9999999 9999999\n"),
         None, "MatrixFileError", "lying header"),
        ("checkpoint header 10**7 x 10**7", "checkpoint",
         h.write_npz(d / "hdr_ckpt.npz", {"w": big_header + bytes(16), "__matconv__": META}),
         None, "CheckpointError", r"entry 'w' holds \d+ bytes but its header"),
        ("checkpoint zip bomb", "checkpoint",
         h.write_zip(d / "bomb_ckpt.npz", [h.zero_bomb("w.npy", F8((BOMB // 8,)), BOMB)]
                     + h.npz_entries({"__matconv__": META})),
         64 * h.MiB, "CheckpointError", "over the memory budget"),
        ("checkpoint zip bomb lying about its size", "checkpoint",
         h.write_zip(d / "lie_ckpt.npz", [h.zero_bomb("w.npy", F8((64,)), BOMB)]
                     + h.npz_entries({"__matconv__": META}),
                     declared={"w.npy": len(F8((64,))) + 512}),
         None, "CheckpointError", "Bad CRC-32"),
        ("idx gzip bomb over the budget", "idx",
         h.gzip_bomb(d / "bomb-idx.gz", h.idx_header(8, (BOMB,)), BOMB),
         64 * h.MiB, "FileFormatError", "over the memory budget"),
        ("idx gzip bomb past its declared size", "idx",
         h.gzip_bomb(d / "trail-idx.gz", h.idx_header(8, (h.MiB,)), BOMB),
         None, "FileFormatError", r"trailing bytes after the data of shape \(1048576,\)"),
    ]


def _write(path, raw):
    path.write_bytes(raw)
    return path


def run_isolated(cases, timeout=120):
    """Run the loaders on ``cases`` in one subprocess with capped address space."""
    root = os.path.dirname(os.path.dirname(mc.__file__))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    spec = [(c[0], c[1], str(c[2]), c[3]) for c in cases]
    r = subprocess.run([sys.executable, "-c", HARNESS, json.dumps(spec)], check=False,
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=root)
    assert r.returncode == 0, f"status {r.returncode}: {r.stderr[-2000:]}"
    return json.loads(r.stdout)


MEMORY_KEYS = ["npz header 10**7 x 10**7", "npz zip bomb", "npz zip bomb lying about its size",
               "mtx 60 bytes asking for terabytes", "checkpoint header 10**7 x 10**7",
               "checkpoint zip bomb", "checkpoint zip bomb lying about its size",
               "idx gzip bomb over the budget", "idx gzip bomb past its declared size"]


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    cases = memory_cases(tmp_path_factory.mktemp("hostile"))
    assert [c[0] for c in cases] == MEMORY_KEYS
    return {c[0]: c for c in cases}, run_isolated(cases)


@pytest.mark.parametrize("key", MEMORY_KEYS)
def test_memory_cases_are_refused_cleanly_without_allocating(isolated, key):
    cases, results = isolated
    _, _, path, _, error, problem = cases[key]
    kind, message, grown = results[key]
    assert kind == error, f"{key}: {kind}: {message}"
    assert re.search(problem, message), f"{key}: {message}"
    assert str(path) in message
    assert grown < 48 * h.MiB, f"{key}: peak memory grew by {grown / h.MiB:.0f} MiB"
