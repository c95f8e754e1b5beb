# Input checks that scan data in C (csrc/finite.c).
import numpy as np
cimport numpy as cnp

cnp.import_array()

def all_finite(x):
    """True if every element of the float32/float64 ndarray x is finite (NaN/inf -> False).

    Aligned native-byte-order 1-D and 2-D arrays with a unit inner stride are scanned in C
    without copying; anything else (byte-swapped '>f8', misaligned, other strides) falls back to
    NumPy, which reads every representation correctly."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    cdef cnp.ndarray a = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(a)
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(a)
    cdef size_t m, n, lda
    cdef int ok
    # the type number alone says nothing about byte order or alignment: check both
    if (t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE) and nd in (1, 2) and a.size > 0 \
            and cnp.PyArray_ISBEHAVED_RO(a):
        m = cnp.PyArray_DIMS(a)[0] if nd == 2 else 1
        n = cnp.PyArray_DIMS(a)[nd - 1]
        if (n <= 1 or cnp.PyArray_STRIDES(a)[nd - 1] == item) and (
                nd == 1 or m <= 1 or (cnp.PyArray_STRIDES(a)[0] > 0 and cnp.PyArray_STRIDES(a)[0] % item == 0)):
            lda = <size_t>(cnp.PyArray_STRIDES(a)[0] // item) if nd == 2 and m > 1 else n
            if t == cnp.NPY_FLOAT:
                with nogil:
                    ok = af_all_finite_f32(m, n, <const float *>cnp.PyArray_DATA(a), lda)
            else:
                with nogil:
                    ok = af_all_finite_f64(m, n, <const double *>cnp.PyArray_DATA(a), lda)
            return bool(ok)
    if a.dtype.kind not in "fc":
        return True
    return bool(np.isfinite(a).all())
