"""Builders of hostile files for the loader tests, written by hand with ``struct``/``zlib`` and
numpy's ``.npy`` header writer (no matconv code, and not Python's ``zipfile`` writer): ``.npz``
archives with lying headers and sizes, zip and gzip bombs, IDX headers that ask for more than
the file holds.

A zip entry is a tuple ``(name, method, payload, crc, size)``: ``method`` 0 (stored) or 8
(deflate), ``payload`` the bytes as stored, ``crc``/``size`` those of the uncompressed data.
"""
import io
import struct
import zlib

import numpy as np

MiB = 1 << 20


# --------------------------------------------------------------------------- .npy
def npy_bytes(array) -> bytes:
    """An array as the bytes of a ``.npy`` file (object arrays pickled, as numpy would)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=True)
    return buf.getvalue()


def npy_header(shape, descr="<f8", fortran_order=False, version=(1, 0)) -> bytes:
    """Only the header of a ``.npy`` file declaring ``shape`` and ``descr``."""
    buf = io.BytesIO()
    d = {"descr": descr, "fortran_order": fortran_order, "shape": tuple(shape)}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, d)
    else:
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()


# --------------------------------------------------------------------------- zip entries
def stored(name: str, data: bytes):
    return name, 0, data, zlib.crc32(data), len(data)


def deflated(name: str, data: bytes):
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return name, 8, comp.compress(data) + comp.flush(), zlib.crc32(data), len(data)


def zeros_stream(prefix: bytes, zeros: int):
    """A raw deflate stream of ``prefix`` then ``zeros`` zero bytes (a multiple of 1 MiB),
    built in milliseconds: after a full flush, each MiB of zeros compresses to the same block,
    so the block is repeated rather than recomputed. Returns ``(stream, crc32, size)``."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    chunk = bytes(MiB)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    n = zeros // MiB
    stream = head + block * n + comp.flush()
    crc = zlib.crc32(prefix)
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    return stream, crc, len(prefix) + n * MiB


def zero_bomb(name: str, prefix: bytes, zeros: int):
    stream, crc, size = zeros_stream(prefix, zeros)
    return name, 8, stream, crc, size


def npz_entries(arrays: dict, method=stored) -> list:
    """``{name: array or raw .npy bytes}`` as ``name.npy`` entries."""
    return [method(name + ".npy", value if isinstance(value, bytes) else npy_bytes(value))
            for name, value in arrays.items()]


def write_zip(path, entries, declared=None):
    """Write a zip archive; ``declared`` maps entry names to a lying uncompressed size, written
    in both the local header and the central directory."""
    declared = declared or {}
    out, central = bytearray(), bytearray()
    for name, method, payload, crc, size in entries:
        raw = name.encode()
        size = declared.get(name, size)
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                           len(payload), size, len(raw), 0) + raw + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                               crc, len(payload), size, len(raw), 0, 0, 0, 0, 0, offset) + raw
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                       len(out), 0)
    with open(path, "wb") as fh:
        fh.write(bytes(out + central + eocd))
    return path


def write_npz(path, arrays: dict, method=stored, declared=None):
    return write_zip(path, npz_entries(arrays, method), declared)


def corrupt_payload(entry):
    """The entry with bytes 2..40 of its stored payload scrambled (CRC left as it was)."""
    name, method, payload, crc, size = entry
    data = bytearray(payload)
    for i in range(2, min(len(data), 40)):
        data[i] ^= 0x5A
    return name, method, bytes(data), crc, size


# --------------------------------------------------------------------------- gzip and IDX
def gzip_bytes(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = comp.compress(data) + comp.flush()
    return _gzip_frame(stream, zlib.crc32(data), len(data))


def gzip_bomb(path, prefix: bytes, zeros: int):
    """``prefix`` then ``zeros`` zero bytes as one gzip member (about 1000:1)."""
    with open(path, "wb") as fh:
        fh.write(_gzip_frame(*zeros_stream(prefix, zeros)))
    return path


def _gzip_frame(stream: bytes, crc: int, size: int) -> bytes:
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + stream + struct.pack("<II", crc, size & 0xFFFFFFFF)


def idx_header(code: int, shape) -> bytes:
    return bytes([0, 0, code, len(shape)]) + np.array(shape, dtype=">i4").tobytes()
