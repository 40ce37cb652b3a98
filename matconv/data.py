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

import contextlib
import gzip
import math
import os
import zlib
from importlib import resources

import numpy as np

from .fileio import (
    CHUNK,
    FileFormatError,
    atomic_write,
    check_path,
    open_regular,
    read_bounded,
    read_npz,
)
from .memory import check_memory

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
# deflate cannot expand data by more than about 1032:1, so a gzip file of n bytes holds at
# most ~1032 n: a header asking for more is refused before anything is decompressed.
_MAX_GZIP_RATIO = 1100
_GZIP_DAMAGE = (gzip.BadGzipFile, EOFError, zlib.error)
_DIGITS_KINDS = {"train_images": "u", "train_labels": "u", "test_images": "u",
                 "test_labels": "u", "license": "U", "source": "U"}


def _float_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    if dt is None or dt.kind != "f":
        raise TypeError(f"dtype must be a floating-point dtype (images are scaled to [0, 1]), "
                        f"got {dtype!r}")
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
    with resources.as_file(ref) as path:
        arrays = read_npz(os.fspath(path), kinds=_DIGITS_KINDS, what="bundled digits file")
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    out = images.astype(dt)[:, None, :, :]
    out /= 16
    return out, labels.astype(np.int64)


# --------------------------------------------------------------------------- IDX format
@contextlib.contextmanager
def _idx_stream(name: str):
    """Yield ``(stream, file size, gzip?)`` for an IDX file, decompressing if it is gzip."""
    with open_regular(name, "IDX file") as raw:
        size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            yield raw, size, False
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
            yield fh, size, True


def _read_header(fh, name: str):
    """Read the magic number and the dimensions; return ``(dtype, shape, header bytes)``."""
    head = fh.read(4)
    if len(head) < 4:
        raise FileFormatError(f"{name}: truncated header: {len(head)} bytes, an IDX file "
                              f"starts with 4")
    if head[0] != 0 or head[1] != 0:
        raise FileFormatError(f"{name}: bad magic number 0x{head.hex()}: an IDX file starts "
                              f"with two zero bytes (is it an IDX file?)")
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise FileFormatError(f"{name}: unknown IDX type code 0x{code:02x} (known: {known})")
    dims = fh.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise FileFormatError(f"{name}: truncated header: {ndim} dimensions need {4 + 4 * ndim} "
                              f"bytes, the file has {4 + len(dims)}")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">i4"))
    if any(d < 0 for d in shape):
        raise FileFormatError(f"{name}: negative dimension in shape {shape}")
    return _IDX_DTYPES[code], shape, 4 + 4 * ndim


def _idx_info(name: str):
    """``(dtype, shape)`` of an IDX file, reading only its header."""
    with _idx_stream(name) as (fh, _, _):
        try:
            dt, shape, _ = _read_header(fh, name)
        except _GZIP_DAMAGE as exc:
            raise FileFormatError(f"{name}: corrupt gzip data ({exc})") from None
    return dt.newbyteorder("="), shape


def load_idx(path) -> np.ndarray:
    """Read an IDX file (the format of MNIST and Fashion-MNIST), plain or gzip-compressed.

    The file is: two zero bytes, a type byte (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
    ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), a byte with the number of dimensions,
    one big-endian int32 per dimension, then the data, big-endian, in C order. gzip files are
    recognised by their content (the usual ``.gz`` suffix is not needed).

    Safe on files from anyone: the header's size is checked against the file's size (for gzip,
    against what that much deflate data can hold) and the memory budget before anything is
    allocated, and the data is decompressed in bounded reads, never past the declared size.

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
        truncated header or data, trailing bytes after the data, corrupt gzip, or data over the
        memory budget. The message names the file.
    TypeError
        If ``path`` is not a path.

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
    name = check_path(path)
    with _idx_stream(name) as (fh, size, compressed):
        try:
            return _read_idx(fh, name, size, compressed)
        except _GZIP_DAMAGE as exc:
            raise FileFormatError(f"{name}: corrupt gzip data ({exc})") from None


def _read_idx(fh, name: str, size: int, compressed: bool) -> np.ndarray:
    dt, shape, header = _read_header(fh, name)
    native = dt.newbyteorder("=")
    count = math.prod(shape)
    nbytes = count * dt.itemsize
    if not compressed and size - header != nbytes:
        got = size - header
        if got < nbytes:
            raise FileFormatError(f"{name}: truncated data: shape {shape} of {native} needs "
                                  f"{nbytes} bytes, the file has {got}")
        raise FileFormatError(f"{name}: {got - nbytes} trailing bytes after the data of shape "
                              f"{shape}")
    if compressed and header + nbytes > _MAX_GZIP_RATIO * size:
        raise FileFormatError(f"{name}: shape {shape} of {native} needs {nbytes} bytes, more "
                              f"than {size} bytes of gzip data can hold (truncated file or "
                              f"lying header)")
    try:
        check_memory(nbytes, f"reading IDX file {name} (shape {shape}, {native})",
                     "use a smaller file")
    except ValueError as exc:
        raise FileFormatError(str(exc)) from None
    data = np.empty(count, dtype=dt)
    got = read_bounded(fh, memoryview(data.view(np.uint8))) if nbytes else 0
    if got < nbytes:
        raise FileFormatError(f"{name}: truncated data: shape {shape} of {native} needs "
                              f"{nbytes} bytes, the file has {got}")
    if compressed and fh.read(1):  # also makes gzip check its CRC and length
        raise FileFormatError(f"{name}: trailing bytes after the data of shape {shape}")
    if not dt.isnative:
        data.byteswap(inplace=True)
        data = data.view(native)
    return data.reshape(shape)


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    The write is atomic: a failure (a full disk, a missing directory) raises and leaves any
    previous file at ``path`` unchanged. The data is converted and compressed in chunks, so
    writing needs little memory beyond ``array`` itself.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; replaced if it exists.
    array : array_like
        Of dtype uint8, int8, int16, int32, float32 or float64 (no implicit conversion) and at
        most 255 dimensions, each below 2**31.

    Raises
    ------
    ValueError
        If the dtype or shape cannot be stored in IDX.
    TypeError
        If ``path`` is not a path.
    OSError
        If the file cannot be written (the previous file is left as it was).

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "x-idx1-short.gz")
    ...     write_idx(path, np.array([258, -2], dtype=np.int16))
    ...     load_idx(path)
    array([258,  -2], dtype=int16)
    """
    name = check_path(path)
    a = np.asarray(array)
    code = _IDX_CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        names = ", ".join(str(dt.newbyteorder("=")) for dt in _IDX_DTYPES.values())
        raise ValueError(f"IDX cannot store dtype {a.dtype}; supported: {names}")
    if a.ndim > 255:  # pragma: no cover - numpy allows at most 64 dimensions
        raise ValueError(f"IDX stores at most 255 dimensions, got {a.ndim}")
    if any(d >= 2**31 for d in a.shape):
        raise ValueError(f"IDX dimensions must be below 2**31, got shape {a.shape}")
    header = bytes([0, 0, code, a.ndim]) + np.array(a.shape, dtype=">i4").tobytes()
    with atomic_write(name) as raw:
        if not name.lower().endswith(".gz"):
            _write_data(raw, header, a, _IDX_DTYPES[code])
            return
        # No file name and a zero time stamp in the gzip header: the same array always gives
        # the same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
            _write_data(fh, header, a, _IDX_DTYPES[code])


def _write_data(fh, header: bytes, a: np.ndarray, dtype: np.dtype) -> None:
    fh.write(header)
    # Big-endian C-order chunks, converted through a bounded buffer (as np.save does).
    for chunk in np.nditer(a, flags=["external_loop", "buffered", "zerosize_ok"],
                           buffersize=max(1, CHUNK // dtype.itemsize), order="C",
                           op_dtypes=[dtype], casting="equiv"):
        fh.write(chunk.tobytes())


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
    ipath = check_path(images_path, name="images_path")
    lpath = check_path(labels_path, name="labels_path")
    # Shapes, dtypes and counts from the headers, and the memory from the shapes, before any
    # data is read.
    image_dtype, image_shape = _idx_info(ipath)
    label_dtype, label_shape = _idx_info(lpath)
    if len(image_shape) != 3:
        raise ValueError(f"{ipath}: expected images of shape (n, H, W), got shape {image_shape}")
    if len(label_shape) != 1:
        raise ValueError(f"{lpath}: expected labels of shape (n,), got shape {label_shape}")
    if label_dtype.kind not in "iu":
        raise ValueError(f"{lpath}: expected integer labels, got {label_dtype}")
    if image_shape[0] != label_shape[0]:
        raise ValueError(f"{ipath} holds {image_shape[0]} images but {lpath} holds "
                         f"{label_shape[0]} labels")
    count = math.prod(image_shape)
    check_memory(count * (image_dtype.itemsize + dt.itemsize)
                 + label_shape[0] * (label_dtype.itemsize + 8),
                 f"loading {ipath} as {dt} images (shape {image_shape})", "use a smaller file")
    images = load_idx(ipath)
    labels = load_idx(lpath)
    if images.shape != image_shape or labels.shape != label_shape:
        raise ValueError(f"{ipath} or {lpath} changed while being read")
    out = images.astype(dt)[:, None, :, :]
    if images.dtype == np.uint8:
        out /= 255
    return out, labels.astype(np.int64)
