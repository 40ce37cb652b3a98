"""File mechanics shared by every reader and writer: path checks, atomic writes, and a
validated ``.npz`` reader for files that may come from anyone.

Writers never touch the target until the new content is complete on disk: they write a
temporary file in the target's directory, flush and fsync it, then ``os.replace`` it over the
target. Any failure (a full disk, a value that cannot be written) removes the temporary file,
leaves the previous file byte for byte as it was, and raises.

The ``.npz`` reader opens the zip archive itself and, before reading any data, checks every
entry: its name, its compression method, the sizes the archive declares (their sum against the
memory budget of :mod:`matconv.memory`), and its ``.npy`` header (dtype against what the caller
allows; shape and order against the declared size). Every read is bounded by the declared size,
so a lying header or a zip bomb is refused before it can grow memory. Nothing is unpickled.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import secrets
import stat
import struct
import zipfile
import zlib

import numpy as np

from .memory import check_memory

__all__ = ["FileFormatError", "atomic_write", "check_path", "open_regular", "read_bounded",
           "read_npz", "write_npz"]

#: Bytes read at a time, so no single read can grow memory by more than this.
CHUNK = 1 << 20
# numpy's own limit for a .npy header (np.lib.format._MAX_HEADER_SIZE).
_MAX_HEADER = 10_000
_MAX_ENTRIES = 100_000
_MAX_NDIM = 64
_KIND_NAMES = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating",
               "c": "complex", "U": "str", "S": "bytes"}
# What zipfile, zlib and numpy's header parser raise on damaged input.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, struct.error, NotImplementedError,
           RuntimeError, ValueError, OverflowError, UnicodeDecodeError)


class FileFormatError(ValueError):
    """A file that is damaged, lies about its sizes, or holds something the caller may not load.

    The message names the file and the problem. Subclasses: ``CheckpointError``
    (:mod:`matconv.checkpoint`), ``MatrixFileError`` (:mod:`matconv.export`).
    """


# --------------------------------------------------------------------------- paths
def check_path(path, *, suffixes=(), name: str = "path") -> str:
    """``path`` as a ``str``, or a ``TypeError``/``ValueError`` naming the argument.

    Parameters
    ----------
    path : str, bytes or os.PathLike
    suffixes : tuple of str
        If given, ``path`` must end in one of them (compared case-insensitively).
    name : str
        The argument's name, for messages.

    Examples
    --------
    >>> check_path("A.npz", suffixes=(".npz", ".mtx"))
    'A.npz'
    >>> check_path(None)
    Traceback (most recent call last):
    ...
    TypeError: path must be a str or os.PathLike, got NoneType None
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__} "
                        f"{path!r}")
    text = os.fsdecode(os.fspath(path))
    if not text:
        raise ValueError(f"{name} must not be empty")
    if "\x00" in text:
        raise ValueError(f"{name} must not contain a null byte, got {text!r}")
    if suffixes and not text.lower().endswith(tuple(suffixes)):
        raise ValueError(f"{name} must end in {' or '.join(suffixes)}, got {text!r}")
    return text


def open_regular(path: str, what: str):
    """Open an existing regular file for binary reading.

    A missing file raises ``FileNotFoundError`` and a directory ``IsADirectoryError``, both
    naming ``what`` and ``path``; a device, pipe or socket (which could block or never end) is
    refused with :class:`FileFormatError`.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path!r} does not exist") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{what} {path!r} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise FileFormatError(f"{what} {path!r} is not a regular file (a device, pipe or "
                              f"socket); copy it to a file first")
    return open(path, "rb")


# --------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_write(path: str):
    """Yield a binary file whose content replaces ``path`` only once it is complete.

    The file is a new temporary file in ``path``'s directory (so the final ``os.replace`` is
    atomic). On leaving the block it is flushed, fsynced and renamed over ``path`` (keeping
    the permission bits of a file it replaces). On any exception the temporary file is
    removed, ``path`` keeps its previous content, and the exception propagates. A symbolic
    link at ``path`` is replaced by the file, not written through.

    Raises
    ------
    FileNotFoundError
        If ``path``'s directory does not exist (before anything is written).
    IsADirectoryError
        If ``path`` is a directory.
    OSError
        If writing fails (for example a full disk).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with atomic_write(path) as f:
    ...     _ = f.write(b"new")
    >>> with open(path, "rb") as f:
    ...     f.read()
    b'new'
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory")
    tmp, fh = _create_temp(directory, os.path.basename(path))
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _create_temp(directory: str, base: str):
    # Mode 0o666 lets the umask decide, as open() does (mkstemp would force 0o600); the base
    # name is shortened so the temporary name stays within the usual 255-byte limit.
    for _ in range(100):
        tmp = os.path.join(directory, f".{base[:200]}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return tmp, os.fdopen(fd, "wb")
    raise FileExistsError(f"cannot create a temporary file in {directory!r}")  # pragma: no cover


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_npz(fh, arrays: dict) -> None:
    """Write ``{name: ndarray}`` to the open binary file ``fh`` as an uncompressed ``.npz``.

    The layout is ``np.savez``'s (one ``name.npy`` entry per array), written without going
    through ``np.savez``'s keyword arguments, so any name (``"file"``, ``"allow_pickle"``) is
    stored as given. Object arrays are refused (no pickles).
    """
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as zf:
        for name, array in arrays.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


# --------------------------------------------------------------------------- reading
def read_bounded(fh, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``fh`` in reads of at most :data:`CHUNK` bytes; return the number of
    bytes read (fewer than ``len(buffer)`` only at the end of the stream).

    Reading a decompressing stream (zip entry, gzip) this way bounds what any one read can
    inflate to, where ``fh.read()`` would inflate a bomb in one go.
    """
    done = 0
    while done < len(buffer):
        chunk = fh.read(min(CHUNK, len(buffer) - done))
        if not chunk:
            break
        buffer[done:done + len(chunk)] = chunk
        done += len(chunk)
    return done


def read_npz(path: str, *, kinds: dict, what: str, error=FileFormatError,
             limits: dict | None = None) -> dict:
    """Read a ``.npz`` archive that may come from anyone; check everything before any data.

    Parameters
    ----------
    path : str
    kinds : dict
        Allowed dtype kinds per entry name, e.g. ``{"data": "biufc"}``; the key ``"*"`` gives
        the kinds of every other entry (without it, other entries are refused). Structured,
        sub-array and object dtypes are always refused.
    what : str
        What the file should be, for messages (``"matconv checkpoint"``).
    error : subclass of FileFormatError
        The exception raised for a bad file.
    limits : dict, optional
        Most bytes allowed per entry name, checked from the header before the data is read
        (for entries that must stay small, such as a metadata string).

    Returns
    -------
    dict of str to ndarray
        In the archive's order, native byte order, each a fresh writable array.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` is missing or a directory.
    error
        If the archive is truncated or corrupt, an entry is not a valid ``.npy`` array, its
        header disagrees with the size the archive declares, its dtype is not allowed, or the
        declared sizes together exceed the memory budget. The message names ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> with atomic_write(path) as f:
    ...     write_npz(f, {"x": np.arange(3.0)})
    >>> read_npz(path, kinds={"x": "f"}, what="test file")
    {'x': array([0., 1., 2.])}
    >>> try:
    ...     read_npz(path, kinds={"x": "i"}, what="test file")
    ... except FileFormatError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    entry 'x' has dtype float64; allowed: signed integer
    """
    def fail(problem):
        return error(f"{path!r} is not a readable {what}: {problem}")

    with open_regular(path, what) as fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                entries = _checked_entries(zf, kinds, fail)
                total = sum(info.file_size for _, info in entries)
                try:
                    check_memory(total, f"reading the arrays of {what} {path!r}",
                                 "load it on a machine with more memory")
                except ValueError as exc:
                    raise error(str(exc)) from None
                arrays = {}
                for name, info in entries:
                    with zf.open(info) as entry:
                        arrays[name] = _read_entry(
                            entry, name, info.file_size, kinds.get(name, kinds.get("*")),
                            (limits or {}).get(name), fail)
        except FileFormatError:
            raise
        except _DAMAGE as exc:
            raise fail(f"{type(exc).__name__}: {_short(exc)}") from None
    return arrays


def _checked_entries(zf, kinds, fail) -> list:
    infos = zf.infolist()
    if len(infos) > _MAX_ENTRIES:
        raise fail(f"{len(infos)} entries, more than the {_MAX_ENTRIES} allowed")
    entries, seen = [], set()
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise fail(f"entry {info.filename!r} is not a .npy array")
        name = info.filename[:-4]
        if name in seen:
            raise fail(f"entry {name!r} appears twice")
        if name not in kinds and "*" not in kinds:
            raise fail(f"unexpected entry {name!r}; expected {sorted(kinds)}")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise fail(f"entry {name!r} uses zip compression method {info.compress_type}; "
                       f".npz files are stored or deflated")
        if info.flag_bits & 0x1:
            raise fail(f"entry {name!r} is encrypted")
        seen.add(name)
        entries.append((name, info))
    return entries


def _read_exact(fh, n: int, name: str, fail) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise fail(f"entry {name!r} is truncated in its header")
    return data


def _read_entry(fh, name: str, declared: int, allowed: str, limit, fail) -> np.ndarray:
    magic = _read_exact(fh, 8, name, fail)
    if magic[:6] != b"\x93NUMPY":
        raise fail(f"entry {name!r} is not a .npy array (bad magic {magic[:6]!r})")
    version = (magic[6], magic[7])
    if version == (1, 0):
        length_format, read_header = "<H", np.lib.format.read_array_header_1_0
    elif version == (2, 0):
        length_format, read_header = "<I", np.lib.format.read_array_header_2_0
    else:
        raise fail(f"entry {name!r} has .npy format version {version}; 1.0 and 2.0 are read")
    length_bytes = _read_exact(fh, struct.calcsize(length_format), name, fail)
    length = struct.unpack(length_format, length_bytes)[0]
    if length > _MAX_HEADER:
        raise fail(f"entry {name!r} has a header of {length} bytes (at most {_MAX_HEADER})")
    header = _read_exact(fh, length, name, fail)
    try:
        shape, fortran_order, dtype = read_header(io.BytesIO(length_bytes + header))
    except (ValueError, TypeError, SyntaxError, RecursionError, OverflowError) as exc:
        raise fail(f"entry {name!r} has a malformed .npy header: {_short(exc)}") from None
    if (dtype.names is not None or dtype.subdtype is not None or dtype.hasobject
            or dtype.kind not in allowed):
        names = ", ".join(_KIND_NAMES[k] for k in allowed)
        raise fail(f"entry {name!r} has dtype {dtype}; allowed: {names}")
    if len(shape) > _MAX_NDIM or any(d < 0 for d in shape):
        raise fail(f"entry {name!r} has an invalid shape {shape}")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    expected = len(magic) + len(length_bytes) + length + nbytes
    if limit is not None and nbytes > limit:
        raise fail(f"entry {name!r} holds {nbytes} bytes, more than the {limit} allowed")
    if declared != expected:
        raise fail(f"entry {name!r} holds {declared} bytes but its header (shape {shape}, "
                   f"{dtype}) needs {expected}")
    flat = np.empty(count, dtype=dtype)
    if nbytes:
        raw = flat.view(np.uint8)
        if read_bounded(fh, memoryview(raw)) != nbytes:
            raise fail(f"entry {name!r} is truncated")
        if dtype.kind == "b":  # any nonzero byte is True; keep bools canonical 0/1
            np.not_equal(raw, 0, out=flat)
    if not dtype.isnative:
        flat.byteswap(inplace=True)
        flat = flat.view(dtype.newbyteorder("="))
    return flat.reshape(shape, order="F" if fortran_order else "C")


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."
