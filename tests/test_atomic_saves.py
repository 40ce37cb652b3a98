"""Saves never lose data: every writer (checkpoint.save, save_matrix for .npz and .mtx,
write_idx plain and gzip) goes through one atomic write. A full disk (RLIMIT_FSIZE in a
subprocess, SIGXFSZ ignored so the write raises), a value failing midway or a missing
directory raises, and the previous file stays byte for byte as it was, with no temporary file
left behind.
"""
import errno
import gzip
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import matconv as mc
from matconv import checkpoint, data, models
from matconv.fileio import atomic_write

SMALL_MATRIX = sp.eye_array(3, format="csr")
SMALL_IMAGES = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)

# name -> a save of a small original to that path (each well under 64 KiB)
ORIGINALS = {
    "checkpoint.npz": lambda p: checkpoint.save(models.lenet(seed=0, channels=(2, 2), hidden=4),
                                                p, note="original"),
    "A.npz": lambda p: mc.save_matrix(SMALL_MATRIX, p),
    "A.mtx": lambda p: mc.save_matrix(SMALL_MATRIX, p),
    "images-idx": lambda p: data.write_idx(p, SMALL_IMAGES),
    "images-idx.gz": lambda p: data.write_idx(p, SMALL_IMAGES),
}


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


@pytest.fixture
def originals(tmp_path):
    for name, save in ORIGINALS.items():
        save(tmp_path / name)
    return tmp_path, snapshot(tmp_path)


# --------------------------------------------------------------------------- the mechanism
def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="midway"), atomic_write(str(path)) as fh:
        fh.write(b"new but incomplete")
        raise RuntimeError("midway")
    assert snapshot(tmp_path) == {"f.bin": b"old"}
    with atomic_write(str(path)) as fh:
        fh.write(b"new")
    assert snapshot(tmp_path) == {"f.bin": b"new"}


def test_atomic_write_keeps_permissions_and_follows_the_umask(tmp_path):
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    with atomic_write(str(kept)) as fh:
        fh.write(b"new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    umask = os.umask(0o022)
    try:
        with atomic_write(str(tmp_path / "new.bin")) as fh:
            fh.write(b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644  # as open() would


def test_atomic_write_refuses_missing_directories_and_directories(tmp_path):
    missing = r"cannot write '.*missing_dir/f.bin': directory '.*missing_dir' does not exist"
    with pytest.raises(FileNotFoundError, match=missing), \
            atomic_write(str(tmp_path / "missing_dir" / "f.bin")):
        pytest.fail("the block must not run")
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a directory"), \
            atomic_write(str(tmp_path / "d")):
        pytest.fail("the block must not run")
    assert os.listdir(tmp_path) == ["d"]


# --------------------------------------------------------------------------- every writer
WRITERS = {
    "checkpoint.npz": lambda p: checkpoint.save(models.lenet(seed=0), p),
    "A.npz": lambda p: mc.save_matrix(sp.random_array((40, 40), density=0.2, random_state=0), p),
    "A.mtx": lambda p: mc.save_matrix(sp.random_array((40, 40), density=0.2, random_state=0), p),
    "images-idx": lambda p: data.write_idx(p, np.ones((5, 4, 4), np.uint8)),
    "images-idx.gz": lambda p: data.write_idx(p, np.ones((5, 4, 4), np.uint8)),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_missing_directory_raises_before_writing(tmp_path, name):
    # The issue: save_matrix(A, 'missing_dir/A.mtx') returned normally and wrote nothing.
    with pytest.raises(FileNotFoundError, match="missing_dir' does not exist"):
        WRITERS[name](tmp_path / "missing_dir" / name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bad", [None, 7])
@pytest.mark.parametrize("name", list(WRITERS))
def test_writers_refuse_non_paths_naming_the_argument(name, bad):
    with pytest.raises(TypeError, match=rf"path must be a str or os.PathLike, got "
                                        rf"{type(bad).__name__}"):
        WRITERS[name](bad)


def test_save_matrix_refuses_what_load_matrix_cannot_read(tmp_path):
    with pytest.raises(ValueError, match=r"path must end in \.npz or \.mtx, got '.*A\.txt'"):
        mc.save_matrix(SMALL_MATRIX, tmp_path / "A.txt")
    with pytest.raises(TypeError, match=r"must be 2-D of bool, integer, floating or complex "
                                        r"dtype, got 1-D float64"):
        mc.save_matrix(sp.coo_array(np.ones(3)), tmp_path / "A.npz")
    assert os.listdir(tmp_path) == []


DISK_FULL = r"""
import json, os, resource, signal, sys
import numpy as np, scipy.sparse as sp
import matconv as mc
from matconv import checkpoint, data, models

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # so a write past the limit raises OSError
folder = sys.argv[1]
rng = np.random.default_rng(0)
matrix = sp.random_array((400, 400), density=0.2, random_state=rng, format="csr")   # ~400 KiB saved
images = rng.integers(0, 256, (200, 28, 28)).astype(np.uint8)              # ~150 KiB
writers = {
    "checkpoint.npz": lambda p: checkpoint.save(models.lenet(seed=0), p),  # ~210 KiB
    "A.npz": lambda p: mc.save_matrix(matrix, p),
    "A.mtx": lambda p: mc.save_matrix(matrix, p),
    "images-idx": lambda p: data.write_idx(p, images),
    "images-idx.gz": lambda p: data.write_idx(p, images),
}
limit = 64 << 10
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
results = {}
for name, write in writers.items():
    try:
        write(os.path.join(folder, name))
        results[name] = ["returned", None, ""]
    except Exception as exc:
        results[name] = [type(exc).__name__, getattr(exc, "errno", None), str(exc)]
print(json.dumps(results))
"""


def test_a_full_disk_raises_and_keeps_every_previous_file(originals):
    folder, before = originals
    root = os.path.dirname(os.path.dirname(mc.__file__))
    env = {**os.environ, "PYTHONPATH": root, "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", DISK_FULL, str(folder)], capture_output=True,
                       text=True, timeout=120, env=env, cwd=root, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads(r.stdout)
    for name in ORIGINALS:
        kind, code, message = results[name]
        assert (kind, code) == ("OSError", errno.EFBIG), f"{name}: {kind} {code} {message}"
    assert snapshot(folder) == before   # byte for byte, and no temporary file left


def _fail_on_second_call(real):
    calls = []

    def wrapper(fh, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            fh.write(b"half of a value")
            raise RuntimeError("cannot serialise this value")
        return real(fh, *args, **kwargs)
    return wrapper


def _breaking_nditer(*args, **kwargs):
    yield np.zeros(4, np.uint8)
    raise RuntimeError("cannot serialise this value")


def _break_mmwrite(target, *args, **kwargs):
    target.write(b"%%MatrixMarket matrix coordinate real general\n40 40 1000\n1 1 ")
    raise RuntimeError("cannot serialise this value")


BREAKERS = {
    "checkpoint.npz": (np.lib.format, "write_array"),
    "A.npz": (np.lib.format, "write_array"),
    "A.mtx": (scipy.io, "mmwrite"),
    "images-idx": (np, "nditer"),
    "images-idx.gz": (gzip.GzipFile, "write"),
}


@pytest.mark.parametrize("name", list(ORIGINALS))
def test_a_value_failing_midway_keeps_the_previous_file(originals, monkeypatch, name):
    folder, before = originals
    owner, attr = BREAKERS[name]
    replacement = {"mmwrite": _break_mmwrite, "nditer": _breaking_nditer}.get(attr)
    monkeypatch.setattr(owner, attr, replacement or _fail_on_second_call(getattr(owner, attr)))
    with pytest.raises(RuntimeError, match="cannot serialise this value"):
        WRITERS[name](folder / name)
    monkeypatch.undo()
    assert snapshot(folder) == before


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".npz", ".mtx"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.complex128])
def test_save_matrix_round_trip(tmp_path, rng, suffix, dtype):
    A = sp.random_array((30, 20), density=0.3, random_state=rng, format="csr")
    A.data = A.data * 1e3 - 3e2
    A = A.astype(dtype) if np.dtype(dtype).kind != "c" else A + 1j * A[::-1]
    path = tmp_path / f"A{suffix}"
    mc.save_matrix(A, path)
    B = mc.load_matrix(path)
    if suffix == ".npz":
        assert B.dtype == A.dtype
    else:  # Matrix Market is text: float32 comes back as float64, equal after casting back
        assert B.dtype == {"f": np.float64, "i": np.int64, "c": np.complex128}[A.dtype.kind]
    np.testing.assert_array_equal(B.toarray().astype(A.dtype), A.toarray())  # exact
    mc.save_matrix(2 * A, path)                                # replacing works
    np.testing.assert_array_equal(mc.load_matrix(path).toarray().astype(A.dtype),
                                  2 * A.toarray())
    assert os.listdir(tmp_path) == [path.name]
