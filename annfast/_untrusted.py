"""Reading model files that may be hostile: nothing in the file is trusted before it is checked.

- ``open_regular``: opens without blocking (a FIFO with no writer would block forever) and
  refuses anything but a regular file (FIFOs, devices such as /dev/zero, directories).
- ``Npz``: a NumPy ``.npz`` (zip of ``.npy``) reader that checks the zip magic at offset 0,
  the member count before parsing the directory, that every member is stored uncompressed
  (so no member can inflate: what is read is at most the file's size), that members lie
  inside the file and do not overlap, and each ``.npy`` header (dtype, shape, order) and the
  member's size before any array is allocated.
- ``parse_json``: UTF-8 JSON with a bounded nesting depth, checked by a linear scan before
  parsing (json's recursive parser would otherwise raise RecursionError), and no NaN/Infinity.

Every problem raises ``Bad`` (a ValueError) with the reason; callers add the path.
"""
import io
import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib

import numpy as np

MAX_MEMBERS = 0xFFFE          # 0xFFFF in the end record means zip64; no model file needs that many
NPY_HEADER_MAX = 1 << 16      # NumPy's own headers are < 10 kB
READ_CHUNK = 1 << 24          # bytes copied per read while filling an array
_EOCD = struct.Struct("<4s4H2LH")
_LOCAL_HEADER = 30            # fixed part of a zip local file header


class Bad(ValueError):
    """A malformed or hostile file; the message says what is wrong (without the path)."""


def _kind(mode):
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def open_regular(path):
    """A binary file object for path, which must be a regular file (after symlinks)."""
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"):
        flags |= getattr(os, name, 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such model file: {path!r}") from None
    except IsADirectoryError:
        raise Bad("not a regular file (a directory)") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise Bad(f"not a regular file ({_kind(mode)})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _member_count(f, size):
    """Entries in the zip end record (searched in the last 64 KiB + 22 bytes, as zip allows a
    comment of up to 64 KiB)."""
    tail = min(size, _EOCD.size + 0xFFFF)
    f.seek(size - tail)
    data = f.read(tail)
    pos = data.rfind(b"PK\x05\x06")
    if pos < 0 or len(data) - pos < _EOCD.size:
        raise Bad("corrupt or truncated file (no zip end record)")
    return _EOCD.unpack_from(data, pos)[4]


class NpyHeader:
    """A member's .npy header: dtype, shape, fortran order, where the data starts, data bytes."""

    def __init__(self, dtype, shape, fortran, offset, data_bytes):
        self.dtype, self.shape, self.fortran = dtype, shape, fortran
        self.offset, self.data_bytes = offset, data_bytes


class Npz:
    """The members of a .npz archive in the open regular file f, checked structurally."""

    def __init__(self, f):
        size = os.fstat(f.fileno()).st_size
        if f.read(4) != b"PK\x03\x04":
            raise Bad("not an .npz (zip) file")
        count = _member_count(f, size)
        if count > MAX_MEMBERS:
            raise Bad(f"too many zip members ({count}; at most {MAX_MEMBERS})")
        f.seek(0)
        try:
            self._zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                struct.error, NotImplementedError) as exc:   # NotImplementedError: a damaged version field
            raise Bad(f"corrupt or truncated file ({type(exc).__name__}: {exc})") from None
        infos = self._zf.infolist()
        self.names = [i.filename for i in infos]
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise Bad(f"duplicate zip members {dup}")
        total = 0
        for info in infos:
            self._check_stored(info, size)
            total += _LOCAL_HEADER + len(info.filename.encode()) + info.compress_size
        if total > size:
            raise Bad("corrupt file (zip members overlap)")

    @staticmethod
    def _check_stored(info, size):
        name = info.filename
        if info.flag_bits & 0x1:
            raise Bad(f"zip member {name!r} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED:
            raise Bad(f"zip member {name!r} is compressed; model files store their arrays "
                      "uncompressed (as numpy.savez writes them)")
        if info.compress_size != info.file_size:
            raise Bad(f"corrupt or truncated file (stored member {name!r} has two sizes)")
        end = info.header_offset + _LOCAL_HEADER + len(name.encode()) + info.compress_size
        if end > size:
            raise Bad(f"corrupt or truncated file (member {name!r} extends past the end)")

    def close(self):
        self._zf.close()

    def header(self, name, kinds="biuf"):
        """The .npy header of member name; its dtype must be of one of kinds (no objects)."""
        info = self._zf.getinfo(name)
        try:
            with self._zf.open(info) as m:
                raw = m.read(min(info.file_size, NPY_HEADER_MAX))
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, NotImplementedError) as exc:
            raise Bad(f"corrupt or truncated file ({type(exc).__name__}: {exc})") from None
        buf = io.BytesIO(raw)
        try:
            version = np.lib.format.read_magic(buf)
            if version not in ((1, 0), (2, 0)):
                raise Bad(f"member {name!r} has an unsupported .npy header version {version}")
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(buf, max_header_size=NPY_HEADER_MAX)
        except Bad:
            raise
        except Exception as exc:  # the header is text parsed by NumPy: any failure is a bad file
            raise Bad(f"member {name!r} has a bad .npy header ({type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:200]})") from None
        if dtype.hasobject:
            raise Bad(f"member {name!r} has dtype object (pickled Python objects), which is "
                      "never loaded")
        if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
            raise Bad(f"member {name!r} has an unsupported dtype {dtype}")
        offset = buf.tell()
        return NpyHeader(dtype, tuple(shape), bool(fortran), offset, info.file_size - offset)

    def check(self, name, what, dtype_str, shape, kinds="biuf", source="metadata"):
        """The header of member name, checked to hold a C-order array of exactly dtype_str and
        shape (what `source` describes) and nothing else; nothing is allocated."""
        h = self.header(name, kinds)
        if h.dtype.str != dtype_str or list(h.shape) != list(shape):
            raise Bad(f"array {name[:-4]!r} ({what}) is {h.dtype.str} {list(h.shape)}, "
                      f"{source} says {dtype_str} {list(shape)}")
        if h.fortran:
            raise Bad(f"array {name[:-4]!r} ({what}) is stored in Fortran order; model files "
                      "store C order")
        need = math.prod(h.shape) * h.dtype.itemsize
        if h.data_bytes != need:
            raise Bad(f"corrupt or truncated file (member {name!r} holds {h.data_bytes} data "
                      f"bytes, its header's size is {need})")
        return h

    def read(self, name, h):
        """The array of member name whose header h passed check()."""
        arr = np.empty(h.shape, dtype=h.dtype)
        out = memoryview(arr.reshape(-1).view(np.uint8))
        try:
            with self._zf.open(name) as m:
                if len(m.read(h.offset)) != h.offset:
                    raise EOFError("member shorter than its header")
                pos = 0
                while pos < len(out):
                    chunk = m.read(min(READ_CHUNK, len(out) - pos))
                    if not chunk:
                        raise EOFError(f"member {name!r} is shorter than its header says")
                    out[pos:pos + len(chunk)] = chunk
                    pos += len(chunk)
                if m.read(1):  # also completes zipfile's CRC check when the data is empty
                    raise Bad(f"corrupt file (member {name!r} is longer than its header says)")
        except Bad:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, NotImplementedError) as exc:
            raise Bad(f"corrupt or truncated file ({type(exc).__name__}: {exc})") from None
        return arr


# JSON strings (escapes included); removed before counting brackets, which cannot nest in them
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def json_depth(text):
    """The deepest bracket nesting of JSON text, outside strings (a linear scan)."""
    b = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    step = ((b == ord("[")) | (b == ord("{"))).astype(np.int64) - ((b == ord("]")) | (b == ord("}")))
    return int(np.cumsum(step).max(initial=0))


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def parse_json(raw, what, max_depth):
    """Parse JSON (UTF-8 bytes or str) nested at most max_depth deep."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise Bad(f"{what} is not valid JSON (not UTF-8: {exc})") from None
    if json_depth(text) > max_depth:
        raise Bad(f"{what} is nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise Bad(f"{what} is not valid JSON ({str(exc)[:200]})") from None
