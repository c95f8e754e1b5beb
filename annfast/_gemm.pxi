# GEMM boundary: C = alpha * op(A) @ op(B) + beta * C (csrc/gemm.c). Validation of NumPy-level
# arguments (dtype promotion, shapes, `out`) lives in annfast/linalg.py; here we only check what
# the C call needs (2-D, unit inner stride, dtypes, sizes) and release the GIL around it.
cimport cython

cdef extern from "annfast.h" nogil:
    af_status af_sgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                          const float *a, size_t lda, const float *b, size_t ldb, float beta,
                          float *c, size_t ldc, const af_epilogue *ep)
    af_status af_dgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, double alpha,
                          const double *a, size_t lda, const double *b, size_t ldb, double beta,
                          double *c, size_t ldc, const af_epilogue *ep)


cdef size_t _leading_dim(object arr, str name) except 0:
    """Row stride in elements of a 2-D array whose rows are contiguous (inner stride 1)."""
    cdef Py_ssize_t item = arr.itemsize
    cdef Py_ssize_t rows = arr.shape[0], cols = arr.shape[1]
    cdef Py_ssize_t s0 = arr.strides[0], s1 = arr.strides[1]
    if rows == 0 or cols == 0:
        return <size_t>max(cols, 1)
    if cols > 1 and s1 != item:
        raise ValueError("%s must have unit inner stride, got strides %r" % (name, arr.strides))
    if rows <= 1:
        return <size_t>max(cols, 1)
    if s0 % item != 0 or s0 // item < cols or s0 <= 0:
        raise ValueError("%s has an unsupported row stride %d for %d columns" % (name, s0, cols))
    return <size_t>(s0 // item)


@cython.boundscheck(False)
cdef int _gemm_typed(bint ta, bint tb, double alpha, const cython.floating[:, :] a,
                     const cython.floating[:, :] b, double beta, cython.floating[:, :] c,
                     size_t lda, size_t ldb, size_t ldc, size_t m, size_t n, size_t k,
                     const af_epilogue *ep) except -1:
    cdef const cython.floating *pa = NULL
    cdef const cython.floating *pb = NULL
    cdef cython.floating *pc = NULL
    cdef af_status s
    if a.shape[0] > 0 and a.shape[1] > 0:
        pa = &a[0, 0]
    if b.shape[0] > 0 and b.shape[1] > 0:
        pb = &b[0, 0]
    if c.shape[0] > 0 and c.shape[1] > 0:
        pc = &c[0, 0]
    if k == 0:
        # No product term: the C code must not see null A/B pointers with k > 0 only.
        pa = NULL
        pb = NULL
    with nogil:
        if cython.floating is float:
            s = af_sgemm_ex(ta, tb, m, n, k, <float>alpha, pa, lda, pb, ldb, <float>beta, pc, ldc, ep)
        else:
            s = af_dgemm_ex(ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, ep)
    check_status(s, "gemm")
    return 0


_ACT_CODES = {None: AF_ACT_LINEAR, "linear": AF_ACT_LINEAR, "sigmoid": AF_ACT_SIGMOID,
              "tanh": AF_ACT_TANH, "relu": AF_ACT_RELU, "leaky_relu": AF_ACT_LEAKY_RELU,
              "elu": AF_ACT_ELU, "selu": AF_ACT_SELU}


def gemm(trans_a, trans_b, alpha, a, b, beta, c, bias=None, activation=None, act_param=0.0):
    """Low-level C = act(alpha * op(A) @ op(B) + beta * C + bias) in place (for tests).

    a, b, c: 2-D float32 or float64 arrays of one dtype whose rows are contiguous (any row
    stride >= the row length); c is written in place. op(X) = X.T when trans_x is true.
    bias: None or a contiguous 1-D array of length n; activation: None or an elementwise name.

    >>> import numpy as np
    >>> c = np.zeros((2, 2))
    >>> gemm(False, False, 1.0, np.eye(2), np.ones((2, 2)), 0.0, c)
    >>> c.tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    import numpy as np
    for name, arr in (("a", a), ("b", b), ("c", c)):
        if not isinstance(arr, np.ndarray) or arr.ndim != 2:
            raise TypeError("%s must be a 2-D numpy array, got %r" % (name, type(arr).__name__))
    if not (a.dtype == b.dtype == c.dtype) or a.dtype not in (np.float32, np.float64):
        raise TypeError("a, b, c must share dtype float32 or float64, got %s, %s, %s"
                        % (a.dtype, b.dtype, c.dtype))
    if not c.flags.writeable:
        raise ValueError("c must be writeable")
    cdef bint ta = bool(trans_a), tb = bool(trans_b)
    cdef size_t m = a.shape[1] if ta else a.shape[0]
    cdef size_t k = a.shape[0] if ta else a.shape[1]
    cdef size_t kb = b.shape[1] if tb else b.shape[0]
    cdef size_t n = b.shape[0] if tb else b.shape[1]
    if kb != k or c.shape[0] != m or c.shape[1] != n:
        raise ValueError("shapes do not match: op(a) is (%d, %d), op(b) is (%d, %d), c is %r"
                         % (m, k, kb, n, c.shape))
    cdef size_t lda = _leading_dim(a, "a"), ldb = _leading_dim(b, "b"), ldc = _leading_dim(c, "c")
    cdef af_epilogue ep
    cdef af_epilogue *pep = NULL
    if activation not in _ACT_CODES:
        raise ValueError("activation must be one of %s, got %r"
                         % (sorted(x for x in _ACT_CODES if x), activation))
    ep.act = _ACT_CODES[activation]
    ep.act_param = float(act_param)
    ep.bias = NULL
    cdef const float[::1] bias32
    cdef const double[::1] bias64
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.dtype != c.dtype or bias.shape != (n,):
            raise ValueError("bias must be a %s array of shape (%d,), got %r"
                             % (c.dtype, n, getattr(bias, "shape", type(bias).__name__)))
        if n > 0:
            if c.dtype == np.float32:
                bias32 = bias
                ep.bias = &bias32[0]
            else:
                bias64 = bias
                ep.bias = &bias64[0]
    if bias is not None or ep.act != AF_ACT_LINEAR:
        pep = &ep
    if c.dtype == np.float32:
        _gemm_typed[float](ta, tb, alpha, a, b, beta, c, lda, ldb, ldc, m, n, k, pep)
    else:
        _gemm_typed[double](ta, tb, alpha, a, b, beta, c, lda, ldb, ldc, m, n, k, pep)
