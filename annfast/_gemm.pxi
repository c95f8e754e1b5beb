# GEMM boundary: C = alpha * op(A) @ op(B) + beta * C (csrc/gemm.c). The NumPy-level rules of
# annfast.matmul (dtype promotion, 1-D operands, `out`) live in annfast/linalg.py; here we check
# what the C call needs (2-D, one float dtype, rows contiguous, sizes) through NumPy's C API, which
# keeps the per-call cost of tiny products near a microsecond, and release the GIL around the call.
cimport numpy as cnp

cnp.import_array()

# Products below this many multiply-adds keep the GIL (releasing it costs more than the product).
cdef double _GEMM_NOGIL_MIN = 16384.0


cdef struct _operand:
    size_t rows, cols, ld    # stored shape and leading dimension in elements
    bint flip                # stored as the transpose (F-ordered input)
    char *data


cdef bint _view(cnp.ndarray x, _operand *o):
    """Describe a 2-D array as a row-major matrix with contiguous rows, or as the transpose of one
    (column-contiguous input); False if neither (the caller copies or rejects)."""
    cdef cnp.npy_intp *d = cnp.PyArray_DIMS(x)
    cdef cnp.npy_intp *s = cnp.PyArray_STRIDES(x)
    cdef cnp.npy_intp item = cnp.PyArray_ITEMSIZE(x)
    o.data = cnp.PyArray_BYTES(x)
    if d[0] == 0 or d[1] == 0:
        o.rows, o.cols, o.ld, o.flip = d[0], d[1], max(d[1], 1), False
        return True
    if (d[1] == 1 or s[1] == item) and (d[0] == 1 or (s[0] > 0 and s[0] % item == 0 and s[0] >= d[1] * item)):
        o.rows, o.cols, o.flip = d[0], d[1], False
        o.ld = <size_t>(s[0] // item) if d[0] > 1 else <size_t>d[1]
        return True
    if (d[0] == 1 or s[0] == item) and (d[1] == 1 or (s[1] > 0 and s[1] % item == 0 and s[1] >= d[0] * item)):
        o.rows, o.cols, o.flip = d[1], d[0], True
        o.ld = <size_t>(s[1] // item) if d[1] > 1 else <size_t>d[0]
        return True
    return False


cdef af_status _call(int typenum, bint ta, bint tb, size_t m, size_t n, size_t k, double alpha,
                     _operand *a, _operand *b, double beta, char *c, size_t ldc,
                     const af_epilogue *ep, bint check) noexcept nogil:
    if typenum == cnp.NPY_FLOAT:
        if check:
            return af_sgemm_checked(ta, tb, m, n, k, <float>alpha, <const float *>a.data, a.ld,
                                    <const float *>b.data, b.ld, <float>beta, <float *>c, ldc, ep)
        return af_sgemm_ex(ta, tb, m, n, k, <float>alpha, <const float *>a.data, a.ld,
                           <const float *>b.data, b.ld, <float>beta, <float *>c, ldc, ep)
    if check:
        return af_dgemm_checked(ta, tb, m, n, k, alpha, <const double *>a.data, a.ld,
                                <const double *>b.data, b.ld, beta, <double *>c, ldc, ep)
    return af_dgemm_ex(ta, tb, m, n, k, alpha, <const double *>a.data, a.ld,
                       <const double *>b.data, b.ld, beta, <double *>c, ldc, ep)


cdef af_status _run_status(int typenum, bint ta, bint tb, size_t m, size_t n, size_t k, double alpha,
                           _operand *a, _operand *b, double beta, char *c, size_t ldc,
                           const af_epilogue *ep, bint check):
    cdef af_status s
    if <double>m * <double>n * <double>k >= _GEMM_NOGIL_MIN:
        with nogil:
            s = _call(typenum, ta, tb, m, n, k, alpha, a, b, beta, c, ldc, ep, check)
    else:
        s = _call(typenum, ta, tb, m, n, k, alpha, a, b, beta, c, ldc, ep, check)
    return s


cdef int _run(int typenum, bint ta, bint tb, size_t m, size_t n, size_t k, double alpha,
              _operand *a, _operand *b, double beta, char *c, size_t ldc,
              const af_epilogue *ep) except -1:
    return check_status(_run_status(typenum, ta, tb, m, n, k, alpha, a, b, beta, c, ldc, ep, False),
                        "gemm")


cdef bint _bounds_overlap(cnp.ndarray x, char *lo, char *hi):
    """True if x's memory extent may intersect [lo, hi) (conservative, like np.may_share_memory)."""
    cdef char *p = cnp.PyArray_BYTES(x)
    cdef char *first = p
    cdef char *last = p + cnp.PyArray_ITEMSIZE(x)
    cdef int i
    for i in range(cnp.PyArray_NDIM(x)):
        if cnp.PyArray_DIMS(x)[i] == 0:
            return False
        if cnp.PyArray_STRIDES(x)[i] < 0:
            first += cnp.PyArray_STRIDES(x)[i] * (cnp.PyArray_DIMS(x)[i] - 1)
        else:
            last += cnp.PyArray_STRIDES(x)[i] * (cnp.PyArray_DIMS(x)[i] - 1)
    return first < hi and lo < last


def _matmul_fast(a, b, bint trans_a, bint trans_b, out=None, bint check_finite=False):
    """op(a) @ op(b) for two 2-D arrays of one float dtype in a layout the C code reads in place,
    into a new C-ordered array or into `out` when it is a C-contiguous array of the right shape
    and dtype whose memory is clearly apart from a and b. Returns the result, or None when
    annfast.matmul must take its general path (which also produces the error messages).

    check_finite: the C product also reports NaN/inf in a or b (af_*gemm_checked: it looks at the
    inputs, or at each finished tile of the result while in cache, whichever costs less); then
    ValueError is raised naming the argument, and `out`, which may already hold part of the
    product, is filled with NaN so that no half-written result can pass for a valid one."""
    if not (cnp.PyArray_Check(a) and cnp.PyArray_Check(b)):
        return None
    cdef cnp.ndarray A = <cnp.ndarray>a, B = <cnp.ndarray>b
    cdef int typenum = cnp.PyArray_TYPE(A)
    if (typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE) or cnp.PyArray_TYPE(B) != typenum:
        return None
    if cnp.PyArray_NDIM(A) != 2 or cnp.PyArray_NDIM(B) != 2:
        return None
    # the type number matches '>f8' too: C reads only aligned native-byte-order memory
    if not (cnp.PyArray_ISBEHAVED_RO(A) and cnp.PyArray_ISBEHAVED_RO(B)):
        return None
    cdef _operand oa, ob
    if not _view(A, &oa) or not _view(B, &ob):
        return None
    cdef bint ta = trans_a != oa.flip, tb = trans_b != ob.flip
    cdef size_t m = oa.cols if ta else oa.rows, k = oa.rows if ta else oa.cols
    cdef size_t kb = ob.cols if tb else ob.rows, n = ob.rows if tb else ob.cols
    if kb != k:
        return None
    cdef cnp.npy_intp dims[2]
    dims[0] = m
    dims[1] = n
    cdef cnp.ndarray C
    cdef char *lo
    cdef char *hi
    if out is None:
        C = cnp.PyArray_EMPTY(2, dims, typenum, 0)
    else:
        if not cnp.PyArray_Check(out):
            return None
        C = <cnp.ndarray>out
        if (cnp.PyArray_TYPE(C) != typenum or cnp.PyArray_NDIM(C) != 2 or cnp.PyArray_DIMS(C)[0] != dims[0]
                or cnp.PyArray_DIMS(C)[1] != dims[1] or not cnp.PyArray_IS_C_CONTIGUOUS(C)
                or not cnp.PyArray_ISBEHAVED(C)):
            return None
        lo = cnp.PyArray_BYTES(C)
        hi = lo + cnp.PyArray_NBYTES(C)
        if _bounds_overlap(A, lo, hi) or _bounds_overlap(B, lo, hi):
            return None
    cdef af_status st = _run_status(typenum, ta, tb, m, n, k, 1.0, &oa, &ob, 0.0,
                                    cnp.PyArray_BYTES(C), max(n, 1), NULL, check_finite)
    if st == AF_ENONFINITE:
        if out is not None:
            C.fill(np.nan)
        name = "a" if not all_finite(a) else "b"
        raise ValueError(f"{name} contains NaN or inf; pass check_finite=False to compute with "
                         "non-finite values as NumPy does")
    check_status(st, "gemm")
    return C


# the epilogue's activations: every elementwise one of the C table (softmax is row-wise)
_ACT_CODES = {k: v for k, v in ACTIVATIONS.items() if k != "softmax"}
_ACT_CODES[None] = AF_ACT_LINEAR


cdef int _gemm_args(trans_a, trans_b, a, b, c, _operand *oa, _operand *ob, _operand *oc,
                    size_t *mnk) except -1:
    """Validate the low-level gemm arguments; fills the three operand descriptions and m, n, k."""
    for name, arr in (("a", a), ("b", b), ("c", c)):
        if not cnp.PyArray_Check(arr) or cnp.PyArray_NDIM(<cnp.ndarray>arr) != 2:
            raise TypeError("%s must be a 2-D numpy array, got %s" % (name, type(arr).__name__))
    cdef int typenum = cnp.PyArray_TYPE(<cnp.ndarray>a)
    if ((typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE)
            or cnp.PyArray_TYPE(<cnp.ndarray>b) != typenum or cnp.PyArray_TYPE(<cnp.ndarray>c) != typenum):
        raise TypeError("a, b, c must share dtype float32 or float64, got %s, %s, %s"
                        % (a.dtype, b.dtype, c.dtype))
    if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>c):
        raise ValueError("c must be writeable")
    for name, arr in (("a", a), ("b", b), ("c", c)):
        if not cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>arr):
            raise ValueError("%s must be aligned and in native byte order, got dtype %s %s"
                             % (name, arr.dtype.str, "aligned" if arr.flags.aligned else "unaligned"))
    for name, arr, o in (("a", a, 0), ("b", b, 1), ("c", c, 2)):
        if not _view(<cnp.ndarray>arr, oa if o == 0 else (ob if o == 1 else oc)):
            raise ValueError("%s must have contiguous rows or columns, got strides %r"
                             % (name, arr.strides))
    if oc.flip and c.shape[0] > 1 and c.shape[1] > 1:
        raise ValueError("c must have contiguous rows (row-major), got strides %r" % (c.strides,))
    cdef bint ta = bool(trans_a) != oa.flip, tb = bool(trans_b) != ob.flip
    cdef size_t m = oa.cols if ta else oa.rows, k = oa.rows if ta else oa.cols
    cdef size_t kb = ob.cols if tb else ob.rows, n = ob.rows if tb else ob.cols
    if kb != k or <size_t>c.shape[0] != m or <size_t>c.shape[1] != n:
        raise ValueError("shapes do not match: op(a) is (%d, %d), op(b) is (%d, %d), c is %r"
                         % (m, k, kb, n, c.shape))
    oc.ld = max(n, 1) if c.shape[0] <= 1 else c.strides[0] // c.itemsize
    mnk[0] = m
    mnk[1] = n
    mnk[2] = k
    mnk[3] = ta
    mnk[4] = tb
    return 0


def gemm(trans_a, trans_b, alpha, a, b, beta, c, bias=None, activation=None, act_param=0.0):
    """Low-level C = act(alpha * op(A) @ op(B) + beta * C + bias) in place (for tests).

    a, b, c: 2-D float32 or float64 arrays of one dtype; a and b need contiguous rows or columns,
    c contiguous rows (any row stride >= the row length); c is written in place.
    op(X) = X.T when trans_x is true. bias: None or a 1-D array of length n of the same dtype;
    activation: None or an elementwise activation name ('sigmoid', 'tanh', 'relu', ...).

    >>> import numpy as np
    >>> c = np.zeros((2, 2))
    >>> gemm(False, False, 1.0, np.eye(2), np.ones((2, 2)), 0.0, c)
    >>> c.tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    cdef _operand oa, ob, oc
    cdef size_t mnk[5]
    _gemm_args(trans_a, trans_b, a, b, c, &oa, &ob, &oc, mnk)
    cdef af_epilogue ep
    cdef af_epilogue *pep = NULL
    if activation not in _ACT_CODES:
        raise ValueError("activation must be one of %s, got %r"
                         % (sorted(x for x in _ACT_CODES if x), activation))
    ep.act = _ACT_CODES[activation]
    ep.act_param = float(act_param)
    ep.bias = NULL
    if bias is not None:
        if (not cnp.PyArray_Check(bias) or bias.dtype != c.dtype or bias.shape != (mnk[1],)
                or not bias.flags.c_contiguous or not bias.flags.aligned):
            raise ValueError("bias must be a contiguous, aligned %s array of shape (%d,), got %r"
                             % (c.dtype, mnk[1], getattr(bias, "shape", type(bias).__name__)))
        ep.bias = cnp.PyArray_DATA(<cnp.ndarray>bias)
    if bias is not None or ep.act != AF_ACT_LINEAR:
        pep = &ep
    _run(cnp.PyArray_TYPE(<cnp.ndarray>c), mnk[3], mnk[4], mnk[0], mnk[1], mnk[2], float(alpha),
         &oa, &ob, float(beta), oc.data, oc.ld, pep)


def _gemm_repeat(trans_a, trans_b, a, b, c, long reps, clock=None):
    """Benchmark helper: run C = op(a) @ op(b) `reps` times in one nogil C loop and return the
    seconds per call (by `clock`, default time.perf_counter), so the per-call cost of tiny
    products is measured without Python."""
    import time
    if clock is None:
        clock = time.perf_counter
    cdef _operand oa, ob, oc
    cdef size_t mnk[5]
    _gemm_args(trans_a, trans_b, a, b, c, &oa, &ob, &oc, mnk)
    cdef int typenum = cnp.PyArray_TYPE(<cnp.ndarray>c)
    cdef long r
    t0 = clock()
    with nogil:
        for r in range(reps):
            if typenum == cnp.NPY_FLOAT:
                af_sgemm_ex(mnk[3], mnk[4], mnk[0], mnk[1], mnk[2], 1.0, <const float *>oa.data,
                            oa.ld, <const float *>ob.data, ob.ld, 0.0, <float *>oc.data, oc.ld, NULL)
            else:
                af_dgemm_ex(mnk[3], mnk[4], mnk[0], mnk[1], mnk[2], 1.0, <const double *>oa.data,
                            oa.ld, <const double *>ob.data, ob.ld, 0.0, <double *>oc.data, oc.ld, NULL)
    return (clock() - t0) / max(reps, 1)
