"""Training data: the bundled 8x8 digits and a reader/writer for the IDX format of MNIST.

Bundled digits
--------------
``matconv/data/digits.npz`` holds the UCI ML hand-written digits, 8x8 version: E. Alpaydin and
C. Kaynak (1998), "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository,
https://doi.org/10.24432/C50P49, licensed under Creative Commons Attribution 4.0 International
(CC BY 4.0). The copy is the one bundled with scikit-learn (1,797 images, pixel values 0..16,
labels 0..9), stored unchanged as uint8; the file's ``license`` and ``source`` entries repeat
this credit.

The train/test split is fixed and documented in ``tools/make_digits.py``, which regenerates the
file: stratified per class with ``numpy.random.default_rng(0)``, ``floor(0.2 n_c + 0.5)`` images
of each class ``c`` go to the test split. That gives 1,438 training and 359 test images, every
class present in both; each split keeps the original dataset order.

IDX files
---------
:func:`load_idx` / :func:`write_idx` read and write the IDX format of MNIST and Fashion-MNIST
(``train-images-idx3-ubyte`` and friends), plain or gzip-compressed; :func:`load_idx_dataset`
pairs an images file with a labels file. Nothing here downloads anything.
"""
from __future__ import annotations

import errno
import gzip
import os
import zlib
from importlib import resources

import numpy as np

__all__ = ["load_digits", "load_idx", "load_idx_dataset", "write_idx"]

SPLITS = ("train", "test")

# IDX type byte -> big-endian dtype of the data section.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating-point dtype (images are scaled to [0, 1]), got {dt}")
    return dt


# --------------------------------------------------------------------------- bundled digits
def load_digits(split: str = "train", dtype=np.float32):
    """The bundled 8x8 hand-written digits (UCI ML, CC BY 4.0), one split of them.

    Parameters
    ----------
    split : {"train", "test"}
        Which part of the fixed split (see the module docstring): 1,438 or 359 images.
    dtype : floating dtype, default ``np.float32``
        The dtype of the returned images.

    Returns
    -------
    images : ndarray, shape ``(n, 1, 8, 8)``
        Pixel values divided by 16, so in ``[0, 1]``; one input channel.
    labels : ndarray of int64, shape ``(n,)``
        The digit, 0..9.

    Raises
    ------
    ValueError
        If ``split`` is not ``"train"`` or ``"test"``.
    TypeError
        If ``dtype`` is not a floating-point dtype.

    Examples
    --------
    >>> images, labels = load_digits("test")
    >>> images.shape, images.dtype, labels.dtype
    ((359, 1, 8, 8), dtype('float32'), dtype('int64'))
    >>> float(images.min()), float(images.max()), sorted(set(labels.tolist())) == list(range(10))
    (0.0, 1.0, True)
    """
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS!r}, got {split!r}")
    dt = _float_dtype(dtype)
    ref = resources.files(__package__) / "data" / "digits.npz"
    with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        images = npz[f"{split}_images"]
        labels = npz[f"{split}_labels"]
    out = images.astype(dt)[:, None, :, :]
    out /= 16
    return out, labels.astype(np.int64)


# --------------------------------------------------------------------------- IDX format
def _read_bytes(path) -> bytes:
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "IDX file not found", name) from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{name}: corrupt gzip data ({exc})") from None
    return raw


def load_idx(path) -> np.ndarray:
    """Read an IDX file (the format of MNIST and Fashion-MNIST), plain or gzip-compressed.

    The file is: two zero bytes, a type byte (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
    ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), a byte with the number of dimensions,
    one big-endian int32 per dimension, then the data, big-endian, in C order. gzip files are
    recognised by their content (the usual ``.gz`` suffix is not needed).

    Parameters
    ----------
    path : str or os.PathLike
        The file, for example ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    ndarray
        A new array with the file's shape and dtype, in native byte order.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not valid IDX: bad magic number, unknown type code, negative dimension,
        truncated header or data, trailing bytes after the data, or corrupt gzip. The message
        names the file.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "tiny-idx2-ubyte")
    ...     with open(path, "wb") as fh:
    ...         _ = fh.write(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 253, 254, 255]))
    ...     load_idx(path)
    array([[  0,   1,   2],
           [253, 254, 255]], dtype=uint8)
    """
    name = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{name}: truncated header: {len(raw)} bytes, an IDX file starts with 4")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name}: bad magic number 0x{raw[:4].hex()}: an IDX file starts with two "
                         "zero bytes (is it an IDX file?)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02x} (known: {known})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated header: {ndim} dimensions need {header} bytes, "
                         f"the file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in shape):
        raise ValueError(f"{name}: negative dimension in shape {shape}")
    dt = _IDX_DTYPES[code]
    expected = dt.itemsize * int(np.prod(shape, dtype=np.int64))
    got = len(raw) - header
    if got < expected:
        raise ValueError(f"{name}: truncated data: shape {shape} of {dt.newbyteorder('=')} needs "
                         f"{expected} bytes, the file has {got}")
    if got > expected:
        raise ValueError(f"{name}: {got - expected} trailing bytes after the data of shape {shape}")
    data = np.frombuffer(raw, dtype=dt, count=expected // dt.itemsize, offset=header)
    return data.astype(dt.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; overwritten if it exists.
    array : array_like
        Of dtype uint8, int8, int16, int32, float32 or float64 (no implicit conversion) and at
        most 255 dimensions, each below 2**31.

    Raises
    ------
    ValueError
        If the dtype or shape cannot be stored in IDX.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "x-idx1-short.gz")
    ...     write_idx(path, np.array([258, -2], dtype=np.int16))
    ...     load_idx(path)
    array([258,  -2], dtype=int16)
    """
    a = np.asarray(array)
    code = _IDX_CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        names = ", ".join(str(dt.newbyteorder("=")) for dt in _IDX_DTYPES.values())
        raise ValueError(f"IDX cannot store dtype {a.dtype}; supported: {names}")
    if a.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {a.ndim}")
    if any(d >= 2**31 for d in a.shape):
        raise ValueError(f"IDX dimensions must be below 2**31, got shape {a.shape}")
    header = bytes([0, 0, code, a.ndim]) + np.array(a.shape, dtype=">i4").tobytes()
    payload = header + np.ascontiguousarray(a, dtype=_IDX_DTYPES[code]).tobytes()
    name = os.fspath(path)
    if os.fsdecode(name).lower().endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with open(name, "wb") as fh:
        fh.write(payload)


def load_idx_dataset(images_path, labels_path, dtype=np.float32):
    """An images IDX file and a labels IDX file (as MNIST ships them) as arrays ready to train on.

    Parameters
    ----------
    images_path : str or os.PathLike
        IDX file of shape ``(n, H, W)``, e.g. ``train-images-idx3-ubyte.gz``.
    labels_path : str or os.PathLike
        IDX file of integer type and shape ``(n,)``, e.g. ``train-labels-idx1-ubyte.gz``.
    dtype : floating dtype, default ``np.float32``
        The dtype of the returned images.

    Returns
    -------
    images : ndarray, shape ``(n, 1, H, W)``
        In ``dtype``; divided by 255 (so in ``[0, 1]``) when the file holds uint8, otherwise
        the stored values unscaled.
    labels : ndarray of int64, shape ``(n,)``

    Raises
    ------
    ValueError
        If either file is invalid (see :func:`load_idx`), the shapes are wrong, the labels are
        not integers, or the two files hold different numbers of items (naming both files).

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     img, lab = os.path.join(tmp, "images.gz"), os.path.join(tmp, "labels.gz")
    ...     write_idx(img, np.full((3, 2, 2), 255, dtype=np.uint8))
    ...     write_idx(lab, np.array([7, 0, 9], dtype=np.uint8))
    ...     images, labels = load_idx_dataset(img, lab)
    >>> images.shape, float(images.max()), labels.tolist()
    ((3, 1, 2, 2), 1.0, [7, 0, 9])
    """
    dt = _float_dtype(dtype)
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    ipath, lpath = os.fspath(images_path), os.fspath(labels_path)
    if images.ndim != 3:
        raise ValueError(f"{ipath}: expected images of shape (n, H, W), got shape {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{lpath}: expected labels of shape (n,), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{lpath}: expected integer labels, got {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{ipath} holds {images.shape[0]} images but {lpath} holds "
                         f"{labels.shape[0]} labels")
    out = images.astype(dt)[:, None, :, :]
    if images.dtype == np.uint8:
        out /= 255
    return out, labels.astype(np.int64)
