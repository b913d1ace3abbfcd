"""``.npz`` files (``np.savez`` / ``np.savez_compressed``), read without unpickling.

Every member's ``.npy`` header is read first (a bounded prefix of the member) and checked
against the zip entry before a byte of data is decompressed: the shape and dtype the header
declares must account for exactly the member's uncompressed size, so a header claiming
``2**40`` elements is refused instead of allocated, and callers compare the declared shape
with the request before reading (a deflate bomb of the wrong shape is never inflated).

The data is read as the member's stored bytes (bounded by the file's size), fingerprinted
and inflated from that same buffer, with its CRC checked: what :func:`jinit.from_checkpoint`
returns is what it fingerprinted. Members that are encrypted, or compressed with anything
but ``stored``/``deflate`` (all NumPy writes), are refused by name; every malformed member is
a ``ValueError`` naming the file and the array.
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
import struct
import zipfile
import zlib

import numpy as np

from jinit.tools._ckpt_common import ArrayInfo, Reader, missing_error

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 65536  # NumPy itself refuses headers above 10000 bytes by default
_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
# what zipfile raises on damaged archives (NotImplementedError: "zip file version 16.6")
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
)


def bad(path: str, what: str, name: str | None = None) -> ValueError:
    where = f" (array {name!r})" if name is not None else ""
    return ValueError(f"{path!r} is not a valid .npz file{where}: {what}.")


def object_array(path: str, name: str, dtype: np.dtype) -> ValueError:
    return ValueError(
        f"{path!r}: array {name!r} has dtype {dtype} (Python objects), which can "
        "only be loaded by unpickling; jinit refuses to unpickle files. Save numeric "
        "arrays only (e.g. np.asarray(x, dtype=np.float32))."
    )


def _parse_npy_header(prefix: bytes) -> tuple[int, tuple[int, ...], bool, np.dtype]:
    """``(header length in bytes, shape, fortran_order, dtype)``; raises ValueError(what)."""
    if len(prefix) < 10 or not prefix.startswith(_MAGIC):
        raise ValueError("the member is not a .npy array (no NumPy magic string)")
    major, minor = prefix[6], prefix[7]
    if (major, minor) == (1, 0):
        (n,), start, encoding = struct.unpack("<H", prefix[8:10]), 10, "latin1"
    elif (major, minor) in ((2, 0), (3, 0)):
        if len(prefix) < 12:
            raise ValueError("the .npy header is cut short")
        (n,) = struct.unpack("<I", prefix[8:12])
        start, encoding = 12, "latin1" if major == 2 else "utf8"
    else:
        raise ValueError(f".npy format version {major}.{minor} is not supported")
    if n > _MAX_HEADER:
        raise ValueError(f"the .npy header is {n} bytes long (more than {_MAX_HEADER})")
    if len(prefix) < start + n:
        raise ValueError("the .npy header is cut short")
    try:
        header = ast.literal_eval(prefix[start : start + n].decode(encoding))
    except (SyntaxError, ValueError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        raise ValueError(f"the .npy header is not a Python literal ({e})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"the .npy header {header!r} does not have exactly descr, "
                         "fortran_order and shape")  # fmt: skip
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ValueError(f"the .npy header has shape {shape!r}")
    if not isinstance(fortran, bool):
        raise ValueError(f"the .npy header has fortran_order {fortran!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"the .npy header has dtype {header['descr']!r} ({e})") from None
    return start + n, shape, fortran, dtype


class NpzFile(Reader):
    kind = "npz"

    def __init__(self, path: str, only: str | None = None):
        """Reads every member's header, or only the header of array ``only`` if given."""
        self.path = path
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
        try:
            zf = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise
        except _ZIP_ERRORS as e:
            raise bad(path, str(e) or type(e).__name__) from None
        with zf:
            members = zf.infolist()
            if only is not None:
                members = [m for m in members if m.filename in (only, only + ".npy")]
            heads = {m.filename: self._head(zf, m) for m in members}  # errors name the array
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._headers: dict[str, tuple[int, tuple[int, ...], bool, np.dtype]] = {}
        infos = {}
        for m in members:
            name = m.filename[:-4] if m.filename.endswith(".npy") else m.filename
            if name in infos:
                raise bad(path, f"two members hold array {name!r}", name)
            hlen, shape, fortran, dtype = heads[m.filename]
            if dtype.hasobject:
                raise object_array(path, name, dtype)
            nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            if hlen + nbytes != m.file_size:
                raise bad(
                    path,
                    f"its header declares shape {shape} and dtype {dtype} ({nbytes} bytes of "
                    f"data), but the member holds {m.file_size - hlen} bytes",
                    name,
                )
            self._members[name] = m
            self._headers[name] = (hlen, shape, fortran, dtype)
            infos[name] = ArrayInfo(name, shape, dtype)
        self._infos = infos

    def _head(self, zf: zipfile.ZipFile, m: zipfile.ZipInfo) -> tuple:
        name = m.filename[:-4] if m.filename.endswith(".npy") else m.filename
        if m.flag_bits & 0x1:
            raise bad(self.path, "the member is encrypted", name)
        if m.compress_type not in _COMPRESSION:
            raise bad(
                self.path,
                f"the member uses zip compression method {m.compress_type}; jinit reads "
                "'stored' and 'deflate' members (what np.savez and np.savez_compressed write)",
                name,
            )
        try:
            with zf.open(m) as f:  # the header only: the data's CRC is checked when read
                prefix = f.read(12)
                if len(prefix) == 12 and prefix.startswith(_MAGIC):
                    if prefix[6] == 1:
                        (n,), start = struct.unpack("<H", prefix[8:10]), 10
                    else:
                        (n,), start = struct.unpack("<I", prefix[8:12]), 12
                    if n <= _MAX_HEADER:
                        prefix += f.read(start + n - 12)
            return _parse_npy_header(prefix)
        except _ZIP_ERRORS as e:
            raise bad(self.path, str(e) or type(e).__name__, name) from None

    def infos(self) -> dict[str, ArrayInfo]:
        return self._infos

    def _stored_bytes(self, name: str) -> bytes:
        """The member's bytes as stored (compressed), from its local zip header."""
        if name not in self._members:
            raise missing_error(self.path, name, list(self._infos))
        m = self._members[name]
        try:
            with open(self.path, "rb") as f:
                f.seek(m.header_offset)
                local = f.read(30)
                if len(local) != 30 or local[:4] != b"PK\x03\x04":
                    raise bad(self.path, "its local zip header is missing or damaged", name)
                n, extra = struct.unpack("<HH", local[26:30])
                f.seek(m.header_offset + 30 + n + extra)
                if m.compress_size > os.fstat(f.fileno()).st_size:
                    raise bad(self.path, "the member is larger than the file", name)
                data = f.read(m.compress_size)
        except OSError as e:
            raise bad(self.path, str(e), name) from None
        if len(data) != m.compress_size:
            raise bad(self.path, "the file ended inside the member", name)
        return data

    def _decode(self, name: str, data: bytes) -> np.ndarray:
        m = self._members[name]
        if m.compress_type == zipfile.ZIP_DEFLATED:
            d = zlib.decompressobj(-15)
            try:
                raw = d.decompress(data, m.file_size + 1)  # bounded by the declared size
            except zlib.error as e:
                raise bad(self.path, f"corrupt deflate data ({e})", name) from None
        else:
            raw = data
        if len(raw) != m.file_size:
            raise bad(
                self.path,
                f"the member inflates to {len(raw)}{'+' if len(raw) > m.file_size else ''} "
                f"bytes, but its zip entry declares {m.file_size}",
                name,
            )
        if zlib.crc32(raw) != m.CRC:
            raise bad(self.path, "CRC check failed: the member's data is corrupt", name)
        hlen, shape, fortran, dtype = self._headers[name]
        if _parse_npy_header(raw[: 12 + _MAX_HEADER])[1:] != (shape, fortran, dtype):
            raise bad(self.path, "the member changed while it was read", name)
        arr = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=hlen)
        return arr.reshape(shape, order="F" if fortran else "C")

    def read(self, name: str) -> np.ndarray:
        return self._decode(name, self._stored_bytes(name))

    def _stored_digest(self, name: str, data: bytes) -> bytes:
        m = self._members[name]
        h = hashlib.sha256()
        h.update(f"{m.compress_type} {m.CRC} {m.file_size} {self._headers[name]}".encode())
        h.update(data)
        return h.digest()

    def fingerprint(self, name: str) -> bytes:
        return self._stored_digest(name, self._stored_bytes(name))

    def read_verified(self, name: str, fingerprint: bytes) -> np.ndarray | None:
        data = self._stored_bytes(name)
        if self._stored_digest(name, data) != fingerprint:
            return None
        return self._decode(name, data)
