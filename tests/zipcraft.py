"""Hand-built zip archives and .npy members for the hostile-file tests.

zipfile cannot write members with a chosen method, CRC or sizes (it computes them), nor lie
about them; these helpers can, so a test can build exactly the hostile file it describes.
"""
import io
import json
import struct
import zlib

import numpy as np

_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01


def npy(arr):
    """The .npy bytes NumPy writes for arr."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def npy_raw(header, data=b"", version=(1, 0)):
    """A .npy file with a hand-written header dict (a str such as
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), padded like NumPy's."""
    text = header.encode("latin1")
    fmt = "<H" if version == (1, 0) else "<I"
    pre = 8 + struct.calcsize(fmt)
    pad = (-(pre + len(text) + 1)) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(text)) + text + data


def meta_npy(meta):
    """The __annfast__ member: the metadata dict as a uint8 JSON array."""
    return npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def member(name, data, method=0, crc=None, size=None, csize=None, payload=None):
    """One zip member. data: the uncompressed bytes (for the CRC and the default sizes);
    payload: the bytes actually stored (default data, deflated when method=8)."""
    if payload is None:
        payload = data if method == 0 else _deflate(data)
    return {"name": name, "method": method, "payload": payload,
            "crc": zlib.crc32(data) if crc is None else crc,
            "size": len(data) if size is None else size,
            "csize": len(payload) if csize is None else csize}


def _deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def build(members, prefix=b""):
    """The bytes of a zip archive holding members (dicts from member()), in order."""
    out = bytearray(prefix)
    central = bytearray()
    for m in members:
        name = m["name"].encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, m["method"], 0, _DOS_DATE,
                           m["crc"], m["csize"] & 0xFFFFFFFF, m["size"] & 0xFFFFFFFF, len(name), 0)
        out += name + m["payload"]
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, m["method"], 0, _DOS_DATE,
                               m["crc"], m["csize"] & 0xFFFFFFFF, m["size"] & 0xFFFFFFFF,
                               len(name), 0, 0, 0, 0, 0, offset)
        central += name
    start = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central),
                       start, 0)
    return bytes(out)


def zeros_bomb(n_chunks, chunk=1 << 24):
    """(payload, crc, size): a raw deflate stream of n_chunks * chunk zero bytes, about 1/1000
    of that size, built from one compressed chunk repeated (a full flush resets the
    dictionary, so every chunk compresses to the same bytes) plus a final empty block."""
    zeros = bytes(chunk)
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(n_chunks):
        crc = zlib.crc32(zeros, crc)
    return block * n_chunks + b"\x03\x00", crc, n_chunks * chunk
