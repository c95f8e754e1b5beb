# What every topic .pxi shares: imports, status mapping, array checks, the C name tables.
# (The C API itself is declared once, in _engine.pxd.)
from cython cimport floating
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

import threading as _threading

import numpy as _np
cimport numpy as cnp

cnp.import_array()

cdef int check_status(af_status s, str context) except -1:
    """Map a C status to a Python exception whose message names the call."""
    if s == AF_OK:
        return 0
    msg = "%s: %s" % (context, af_status_str(s).decode())
    if s == AF_ENOMEM:
        raise MemoryError(msg)
    if s == AF_EINTR:
        raise KeyboardInterrupt(msg)
    raise ValueError(msg)


cdef object _want(a, str name, dtype, int ndim, bint writable):
    """a must be a C-contiguous, aligned ndarray of dtype (native byte order: '>f8' is another
    dtype) with ndim dimensions (callers convert first)."""
    if not isinstance(a, _np.ndarray) or a.dtype != dtype or a.ndim != ndim \
            or not a.flags.c_contiguous or not a.flags.aligned:
        raise TypeError("%s must be a C-contiguous, aligned %d-D %s ndarray in native byte order, "
                        "got %s" % (name, ndim, _np.dtype(dtype).name,
            ("%s %s %s%s" % (a.dtype.str, a.shape, "contiguous" if a.flags.c_contiguous else "strided",
                             "" if a.flags.aligned else " unaligned"))
            if isinstance(a, _np.ndarray) else type(a).__name__))
    if writable and not a.flags.writeable:
        raise ValueError("%s must be writable" % name)
    return a


cdef list _c_names(const char *(*name_of)(size_t) noexcept nogil):
    cdef list out = []
    cdef size_t i = 0
    cdef const char *s = name_of(0)
    while s != NULL:
        out.append(s.decode())
        i += 1
        s = name_of(i)
    return out


# Names as C spells them (its tables are the only copies): activation and loss codes by name.
ACTIVATIONS = {name: i for i, name in enumerate(_c_names(af_act_name))}
LOSSES = {name: i for i, name in enumerate(_c_names(af_loss_name))}
LAYER_KINDS = _c_names(af_layer_kind_name)

