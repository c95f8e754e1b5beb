"""Arrays holding ordinary values in layouts fast paths must not misread: byte-swapped,
misaligned, strided, Fortran-ordered, negatively strided (for the reliability tests)."""
import numpy as np

LAYOUTS = ("big_endian", "unaligned", "unaligned_big_endian", "strided", "fortran", "reversed")


def swapped(x):
    """x's values stored in non-native byte order ('>f8' on this little-endian machine)."""
    x = np.asarray(x)
    return x.astype(x.dtype.newbyteorder("S"))


def unaligned(x):
    """x's values in a buffer at an odd address (np.frombuffer at offset 1): not aligned."""
    x = np.asarray(x)
    buf = bytearray(x.nbytes + 1)
    u = np.frombuffer(buf, dtype=x.dtype, offset=1, count=x.size).reshape(x.shape)
    u[...] = x
    assert x.size == 0 or not u.flags.aligned
    return u


def strided(x):
    """x's values as every other element of a twice-as-long last axis (not contiguous)."""
    x = np.asarray(x)
    if x.ndim == 0:
        return x
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    big[..., ::2] = x
    v = big[..., ::2]
    assert x.size <= 1 or not v.flags.c_contiguous
    return v


def reversed_view(x):
    """x's values through a view with negative strides."""
    x = np.asarray(x)
    idx = tuple(slice(None, None, -1) for _ in range(x.ndim))
    return x[idx].copy()[idx]


def hostile(x, layout):
    """x's values in the named layout (see LAYOUTS)."""
    x = np.asarray(x)
    if layout == "big_endian":
        return swapped(x)
    if layout == "unaligned":
        return unaligned(x)
    if layout == "unaligned_big_endian":
        return unaligned(swapped(x))
    if layout == "strided":
        return strided(x)
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "reversed":
        return reversed_view(x)
    raise ValueError(layout)
