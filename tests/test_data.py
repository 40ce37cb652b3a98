"""Bundled digits (split sizes, contents, reproducibility) and the IDX reader/writer."""
import gzip
import importlib.util
import pathlib
import re
from importlib import resources

import numpy as np
import pytest

from matconv.data import load_digits, load_idx, load_idx_dataset, write_idx

REPO = pathlib.Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 1438, 359
TEST_PER_CLASS = [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
ARRAYS = ("train_images", "train_labels", "test_images", "test_labels", "license", "source")

# A 2x3 uint8 IDX file, written out by hand: magic 00 00 08 02, dims 2 and 3, then six bytes.
TINY_UINT8 = bytes.fromhex("00000802" "00000002" "00000003" "000102fdfeff")
TINY_UINT8_VALUES = np.array([[0, 1, 2], [253, 254, 255]], dtype=np.uint8)
# A length-3 int16 file: 0x0102 = 258, 0xfffe = -2, 0x8000 = -32768 (checks the byte order).
TINY_INT16 = bytes.fromhex("00000b01" "00000003" "0102fffe8000")
TINY_INT16_VALUES = np.array([258, -2, -32768], dtype=np.int16)


def bundled_path():
    return resources.files("matconv") / "data" / "digits.npz"


def write_bytes(path, data):
    path.write_bytes(data)
    return path


def load_make_digits():
    script = REPO / "tools" / "make_digits.py"
    if not script.exists():
        pytest.skip("tools/make_digits.py is not available (not running from the repository)")
    spec = importlib.util.spec_from_file_location("make_digits", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- bundled digits
def test_bundled_file_is_package_data_and_loads_without_pickle():
    ref = bundled_path()
    assert ref.is_file()
    with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(ARRAYS)
        arrays = {k: npz[k] for k in npz.files}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        assert arrays[f"{split}_images"].dtype == np.uint8
        assert arrays[f"{split}_images"].shape == (n, 8, 8)
        assert arrays[f"{split}_labels"].dtype == np.uint8
        assert arrays[f"{split}_labels"].shape == (n,)
        assert arrays[f"{split}_images"].max() == 16
    assert arrays["license"].dtype.kind == "U" and "CC BY 4.0" in str(arrays["license"])
    assert arrays["source"].dtype.kind == "U" and "10.24432/C50P49" in str(arrays["source"])


@pytest.mark.parametrize("split, n", [("train", N_TRAIN), ("test", N_TEST)])
def test_split_sizes_classes_and_range(split, n):
    images, labels = load_digits(split)
    assert images.shape == (n, 1, 8, 8) and images.dtype == np.float32
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    # Values are k / 16 exactly.
    np.testing.assert_array_equal(images * 16, np.round(images * 16))
    counts = np.bincount(labels, minlength=10)
    assert counts.size == 10 and np.all(counts > 0)
    if split == "test":
        assert counts.tolist() == TEST_PER_CLASS


def test_split_is_about_twenty_percent_per_class():
    _, train = load_digits("train")
    _, test = load_digits("test")
    total = np.bincount(train, minlength=10) + np.bincount(test, minlength=10)
    assert total.sum() == 1797
    assert np.all(np.abs(np.bincount(test, minlength=10) - 0.2 * total) <= 0.5)


def test_dtype_handling():
    images64, labels = load_digits("train", dtype=np.float64)
    images32, _ = load_digits("train")
    assert images64.dtype == np.float64 and labels.dtype == np.int64
    np.testing.assert_array_equal(images64, images32.astype(np.float64))
    assert load_digits("test", dtype="float16")[0].dtype == np.float16
    for bad in (np.int64, None, "f32", "int8"):  # None would be numpy's float64
        with pytest.raises(TypeError, match=rf"dtype must be a floating-point dtype .*, got "
                                            rf"{re.escape(repr(bad))}"):
            load_digits("train", dtype=bad)


def test_returned_arrays_are_fresh_copies():
    images, labels = load_digits("test")
    images[:] = -1
    labels[:] = -1
    again, again_labels = load_digits("test")
    assert again.min() == 0.0 and again_labels.min() == 0


@pytest.mark.parametrize("bad", ["valid", "Train", "", None, 0])
def test_bad_split_names_the_argument_and_choices(bad):
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\)"):
        load_digits(bad)


def test_split_function_partitions_and_is_deterministic():
    make_digits = load_make_digits()
    labels = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    train, test = make_digits.split_indices(labels)
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
    assert np.bincount(labels[test]).tolist() == TEST_PER_CLASS
    again = make_digits.split_indices(labels)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)


def test_bundled_arrays_match_the_generator():
    pytest.importorskip("sklearn")
    make_digits = load_make_digits()
    expected = make_digits.build_arrays()
    with bundled_path().open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        for key in ARRAYS:
            np.testing.assert_array_equal(npz[key], expected[key], err_msg=key)
            assert npz[key].dtype == expected[key].dtype, key


# --------------------------------------------------------------------------- IDX: oracles
def test_hand_written_uint8_file(tmp_path):
    a = load_idx(write_bytes(tmp_path / "tiny-idx2-ubyte", TINY_UINT8))
    assert a.dtype == np.uint8 and a.shape == (2, 3)
    np.testing.assert_array_equal(a, TINY_UINT8_VALUES)
    a[0, 0] = 7  # a writable copy, not a view of the file's bytes


def test_hand_written_int16_file_is_big_endian(tmp_path):
    a = load_idx(write_bytes(tmp_path / "tiny-idx1-short", TINY_INT16))
    assert a.dtype == np.int16 and a.dtype.isnative
    np.testing.assert_array_equal(a, TINY_INT16_VALUES)


def test_writer_produces_the_hand_written_bytes(tmp_path):
    write_idx(tmp_path / "u8", TINY_UINT8_VALUES)
    write_idx(tmp_path / "i16", TINY_INT16_VALUES.astype(">i2"))  # any byte order in
    assert (tmp_path / "u8").read_bytes() == TINY_UINT8
    assert (tmp_path / "i16").read_bytes() == TINY_INT16


def test_gzip_written_independently_is_read(tmp_path):
    path = write_bytes(tmp_path / "tiny-idx2-ubyte.gz", gzip.compress(TINY_UINT8))
    np.testing.assert_array_equal(load_idx(path), TINY_UINT8_VALUES)
    # Recognised by content, not by name.
    path = write_bytes(tmp_path / "no-suffix", gzip.compress(TINY_UINT8))
    np.testing.assert_array_equal(load_idx(str(path)), TINY_UINT8_VALUES)


def test_gzip_output_is_gzip_and_deterministic(tmp_path):
    write_idx(tmp_path / "a.gz", TINY_UINT8_VALUES)
    write_idx(tmp_path / "b.GZ", TINY_UINT8_VALUES)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == TINY_UINT8
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.GZ").read_bytes()


# --------------------------------------------------------------------------- IDX: round trips
DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path, rng, dtype, suffix):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.standard_normal((3, 4, 5)).astype(dt)
        a[0, 0, :3] = [np.inf, -np.inf, -0.0]
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dt)
        a[0, 0, :2] = [info.min, info.max]
    path = tmp_path / f"x{suffix}"
    write_idx(path, a)
    b = load_idx(path)
    assert b.dtype == dt and b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert np.signbit(b).tolist() == np.signbit(a).tolist()


@pytest.mark.parametrize("shape", [(0,), (5,), (2, 0, 3), (1, 1, 1, 1, 2)])
def test_round_trip_shapes(tmp_path, shape):
    a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    write_idx(tmp_path / "x", a)
    b = load_idx(tmp_path / "x")
    assert b.shape == shape
    np.testing.assert_array_equal(b, a)


def test_round_trip_non_contiguous(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[::2, ::-3]
    write_idx(tmp_path / "x", a)
    np.testing.assert_array_equal(load_idx(tmp_path / "x"), a)


# --------------------------------------------------------------------------- IDX: errors
def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_idx(path)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", r"truncated header: 0 bytes"),
        (b"\x00\x00\x08", r"truncated header: 3 bytes"),
        (bytes.fromhex("00000802" "00000002"), r"truncated header: 2 dimensions need 12 bytes"),
        (bytes.fromhex("01000801" "00000001" "00"), r"bad magic number 0x01000801"),
        (b"P5\n8 8\n255\n" + bytes(64), r"bad magic number 0x50350a38"),
        (bytes.fromhex("00000a01" "00000001" "00"), r"unknown IDX type code 0x0a"),
        (bytes.fromhex("00000801" "ffffffff"), r"negative dimension in shape \(-1,\)"),
        (TINY_UINT8[:-1], r"truncated data: shape \(2, 3\) of uint8 needs 6 bytes, the file has 5"),
        (TINY_INT16[:-1], r"truncated data: shape \(3,\) of int16 needs 6 bytes, the file has 5"),
        (TINY_UINT8 + b"\x00\x00", r"2 trailing bytes after the data of shape \(2, 3\)"),
        (gzip.compress(TINY_UINT8)[:-6], r"corrupt gzip data"),
        (b"\x1f\x8b" + bytes(30), r"corrupt gzip data"),
        (gzip.compress(TINY_UINT8[:-2]), r"truncated data"),
    ],
)
def test_invalid_files_raise_value_error_naming_the_file(tmp_path, data, message):
    path = write_bytes(tmp_path / "broken-idx", data)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        load_idx(path)


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.float16, np.bool_, np.complex64])
def test_write_rejects_unsupported_dtypes(tmp_path, dtype):
    with pytest.raises(ValueError, match=r"IDX cannot store dtype .*supported: uint8, int8"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=dtype))
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- IDX datasets
def make_dataset(tmp_path, images, labels, suffix=".gz"):
    ipath, lpath = tmp_path / f"images{suffix}", tmp_path / f"labels{suffix}"
    write_idx(ipath, images)
    write_idx(lpath, labels)
    return ipath, lpath


def test_dataset_scales_uint8(tmp_path, rng):
    raw = rng.integers(0, 256, size=(5, 3, 4)).astype(np.uint8)
    raw[0, 0, :2] = [0, 255]
    ipath, lpath = make_dataset(tmp_path, raw, np.array([3, 1, 4, 1, 5], dtype=np.uint8))
    images, labels = load_idx_dataset(ipath, lpath)
    assert images.shape == (5, 1, 3, 4) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [3, 1, 4, 1, 5]
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_allclose(images[:, 0], raw / np.float32(255), rtol=1e-7)
    images64, _ = load_idx_dataset(ipath, lpath, dtype=np.float64)
    assert images64.dtype == np.float64
    np.testing.assert_allclose(images64[:, 0], raw / 255.0, rtol=0, atol=0)


def test_dataset_leaves_float_images_unscaled(tmp_path):
    raw = np.array([[[0.5, 2.0]], [[-1.0, 3.0]]], dtype=np.float64)
    ipath, lpath = make_dataset(tmp_path, raw, np.array([0, 1], dtype=np.int32), suffix="")
    images, labels = load_idx_dataset(ipath, lpath)
    np.testing.assert_array_equal(images[:, 0], raw.astype(np.float32))
    assert labels.dtype == np.int64


def test_dataset_count_mismatch_names_both_files(tmp_path):
    ipath, lpath = make_dataset(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(3, np.uint8))
    pattern = re.escape(str(ipath)) + r" holds 4 images but " + re.escape(str(lpath)) + " holds 3"
    with pytest.raises(ValueError, match=pattern):
        load_idx_dataset(ipath, lpath)


def test_dataset_shape_and_type_errors(tmp_path):
    ipath, lpath = make_dataset(tmp_path, np.zeros((4, 4), np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=re.escape(str(ipath)) + r": expected images of shape"):
        load_idx_dataset(ipath, lpath)
    ipath, lpath = make_dataset(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros((4, 1), np.uint8))
    with pytest.raises(ValueError, match=re.escape(str(lpath)) + r": expected labels of shape"):
        load_idx_dataset(ipath, lpath)
    ipath, lpath = make_dataset(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=re.escape(str(lpath)) + r": expected integer labels"):
        load_idx_dataset(ipath, lpath)
    ipath, lpath = make_dataset(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(TypeError, match="floating-point"):
        load_idx_dataset(ipath, lpath, dtype=np.uint8)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "missing"))):
        load_idx_dataset(tmp_path / "missing", lpath)
