# Boundary for the batch-norm and dropout kernels (csrc/norm.h). The engine calls the C kernels
# directly from its layer list; these def functions expose them for tests and direct use on
# float32/float64 C-contiguous 2-D batches (m samples x n features).
from libc.stdint cimport uint32_t, uint64_t

ctypedef fused _real:
    float
    double


cdef bint _is_real(x):
    """x is a float32/float64 ndarray (in either byte order)."""
    return isinstance(x, _np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)


cdef object _native(x):
    """x C-contiguous, aligned and in native byte order (copied only if needed; never written)."""
    x = _np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    return x if x.flags.aligned else x.copy()


cdef object _norm_batch(x, str name):
    """x as a float32/float64 C-contiguous 2-D array (copied only if needed; never written)."""
    if not _is_real(x):
        raise TypeError("%s must be a float32 or float64 numpy array, got %s"
                        % (name, getattr(x, "dtype", type(x).__name__)))
    if x.ndim != 2:
        raise ValueError("%s must be 2-D (m samples, n features), got shape %s" % (name, x.shape))
    return _native(x)


cdef object _norm_vec(v, Py_ssize_t n, object dtype, str name, bint writable):
    """None, or a 1-D C-contiguous vector of length n and the batch dtype."""
    if v is None:
        return None
    if not writable and _is_real(v) and v.dtype.newbyteorder("=") == dtype:
        v = _native(v)  # read-only: a byte-swapped or misaligned copy is fine
    if not isinstance(v, _np.ndarray) or v.dtype != dtype or v.ndim != 1 or v.shape[0] != n:
        raise ValueError("%s must be a 1-D %s array of length %d in native byte order, got %s %s"
                         % (name, dtype, n, getattr(v, "dtype", type(v).__name__),
                            getattr(v, "shape", "")))
    if not v.flags.c_contiguous or not v.flags.aligned or (writable and not v.flags.writeable):
        raise ValueError("%s must be C-contiguous, aligned%s" % (name, " and writable" if writable else ""))
    return v


cdef _real *_ptr1(_real[::1] v) noexcept:
    return &v[0] if v is not None and v.shape[0] > 0 else NULL


cdef const _real *_cptr1(const _real[::1] v) noexcept:
    return &v[0] if v is not None and v.shape[0] > 0 else NULL


cdef int _bn_train(const _real[:, ::1] x, const _real[::1] gamma, const _real[::1] beta, double eps, double momentum,
                   int unbiased, _real[::1] rm, _real[::1] rv, _real[::1] mean, _real[::1] invstd,
                   _real[:, ::1] y) except -1:
    cdef size_t m = x.shape[0], n = x.shape[1]
    cdef const _real *g = _cptr1(gamma)
    cdef const _real *b = _cptr1(beta)
    cdef _real *prm = _ptr1(rm)
    cdef _real *prv = _ptr1(rv)
    cdef af_status st
    with nogil:
        if _real is float:
            st = af_bn_forward_train_f32(m, n, &x[0, 0], g, b, eps, momentum, unbiased, prm, prv,
                                         &mean[0], &invstd[0], &y[0, 0])
        else:
            st = af_bn_forward_train_f64(m, n, &x[0, 0], g, b, eps, momentum, unbiased, prm, prv,
                                         &mean[0], &invstd[0], &y[0, 0])
    return check_status(st, "batchnorm_forward")


cdef int _bn_infer(const _real[:, ::1] x, const _real[::1] gamma, const _real[::1] beta,
                   const _real[::1] rm, const _real[::1] rv, double eps, _real[:, ::1] y) except -1:
    cdef size_t m = x.shape[0], n = x.shape[1]
    cdef const _real *g = _cptr1(gamma)
    cdef const _real *b = _cptr1(beta)
    cdef af_status st
    with nogil:
        if _real is float:
            st = af_bn_forward_infer_f32(m, n, &x[0, 0], g, b, &rm[0], &rv[0], eps, &y[0, 0])
        else:
            st = af_bn_forward_infer_f64(m, n, &x[0, 0], g, b, &rm[0], &rv[0], eps, &y[0, 0])
    return check_status(st, "batchnorm_forward")


cdef int _bn_back(const _real[:, ::1] x, const _real[:, ::1] dy, const _real[::1] gamma,
                  const _real[::1] mean, const _real[::1] invstd, _real[:, ::1] dx, _real[::1] dgamma, _real[::1] dbeta) except -1:
    cdef size_t m = x.shape[0], n = x.shape[1]
    cdef const _real *g = _cptr1(gamma)
    cdef af_status st
    with nogil:
        if _real is float:
            st = af_bn_backward_f32(m, n, &x[0, 0], &dy[0, 0], g, &mean[0], &invstd[0], &dx[0, 0],
                                    &dgamma[0], &dbeta[0])
        else:
            st = af_bn_backward_f64(m, n, &x[0, 0], &dy[0, 0], g, &mean[0], &invstd[0], &dx[0, 0],
                                    &dgamma[0], &dbeta[0])
    return check_status(st, "batchnorm_backward")


def batchnorm_forward(x, gamma=None, beta=None, running_mean=None, running_var=None, *,
                      training=True, eps=1e-3, momentum=0.99, unbiased_running_var=False):
    """Batch normalisation of an (m, n) float32/float64 batch over its rows.

    training=True: batch statistics; running_mean/running_var (both or neither) are updated in
    place as momentum * old + (1 - momentum) * batch value (Keras convention; biased variance
    unless unbiased_running_var, which is PyTorch's choice). Returns (y, mean, invstd), the last
    two being what batchnorm_backward needs. training=False: running statistics (required);
    returns y. gamma/beta None mean scale 1 / shift 0.

    >>> y, mean, invstd = batchnorm_forward(np.random.rand(8, 3))
    """
    import numbers
    x = _norm_batch(x, "x")
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1]
    gamma = _norm_vec(gamma, n, x.dtype, "gamma", False)
    beta = _norm_vec(beta, n, x.dtype, "beta", False)
    running_mean = _norm_vec(running_mean, n, x.dtype, "running_mean", True)
    running_var = _norm_vec(running_var, n, x.dtype, "running_var", True)
    for name, v, lo in (("eps", eps, 0.0), ("momentum", momentum, 0.0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (v == v) or v in (float("inf"),) \
                or (v <= lo if name == "eps" else (v < 0 or v > 1)):
            raise ValueError("%s must be %s, got %r" % (name, "a finite number > 0" if name == "eps"
                                                        else "in [0, 1]", v))
    y = _np.empty_like(x)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("inference (training=False) needs running_mean and running_var")
        if m and n:
            if x.dtype == _np.float32:
                _bn_infer[float](x, gamma, beta, running_mean, running_var, eps, y)
            else:
                _bn_infer[double](x, gamma, beta, running_mean, running_var, eps, y)
        return y
    if (running_mean is None) != (running_var is None):
        raise ValueError("pass both running_mean and running_var, or neither")
    if m == 0:
        raise ValueError("x must have at least one row in training mode, got shape %s" % (x.shape,))
    mean = _np.empty(n, dtype=x.dtype)
    invstd = _np.empty(n, dtype=x.dtype)
    if n:
        if x.dtype == _np.float32:
            _bn_train[float](x, gamma, beta, eps, momentum, bool(unbiased_running_var), running_mean,
                             running_var, mean, invstd, y)
        else:
            _bn_train[double](x, gamma, beta, eps, momentum, bool(unbiased_running_var), running_mean,
                              running_var, mean, invstd, y)
    return y, mean, invstd


def batchnorm_backward(x, dy, gamma, mean, invstd):
    """Gradients of the training-mode batch norm: returns (dx, dgamma, dbeta).

    x: the forward input; dy: dL/dy, same shape; mean, invstd: from batchnorm_forward;
    gamma may be None (scale 1).

    >>> x = np.random.rand(8, 3); y, mu, istd = batchnorm_forward(x)
    >>> dx, dgamma, dbeta = batchnorm_backward(x, np.ones_like(x), None, mu, istd)
    """
    x = _norm_batch(x, "x")
    dy = _norm_batch(dy, "dy")
    if dy.shape != x.shape or dy.dtype != x.dtype:
        raise ValueError("dy must have x's shape %s and dtype %s, got %s %s"
                         % (x.shape, x.dtype, dy.shape, dy.dtype))
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1]
    gamma = _norm_vec(gamma, n, x.dtype, "gamma", False)
    if mean is None or invstd is None:
        raise ValueError("mean and invstd (from batchnorm_forward) are required")
    mean = _norm_vec(mean, n, x.dtype, "mean", False)
    invstd = _norm_vec(invstd, n, x.dtype, "invstd", False)
    if m == 0:
        raise ValueError("x must have at least one row, got shape %s" % (x.shape,))
    dx = _np.empty_like(x)
    dgamma = _np.empty(n, dtype=x.dtype)
    dbeta = _np.empty(n, dtype=x.dtype)
    if n:
        if x.dtype == _np.float32:
            _bn_back[float](x, dy, gamma, mean, invstd, dx, dgamma, dbeta)
        else:
            _bn_back[double](x, dy, gamma, mean, invstd, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


cdef _dropout_args(rate, seed, step):
    import numbers
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (0 <= rate < 1):
        raise ValueError("rate must be a number in [0, 1), got %r" % (rate,))
    for name, v in (("seed", seed), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not (0 <= v < 2 ** 64):
            raise ValueError("%s must be an int in [0, 2**64), got %r" % (name, v))


def dropout_draw(seed, step, index):
    """The 32-bit random draw of element `index` for (seed, step) (the counter-based RNG);
    the element is dropped iff draw < floor(rate * 2**32)."""
    _dropout_args(0.0, seed, step)
    if isinstance(index, bool) or not isinstance(index, int) or not (0 <= index < 2 ** 64):
        raise ValueError("index must be an int in [0, 2**64), got %r" % (index,))
    return af_dropout_draw(seed, step, index)


def dropout_mask(shape, rate, seed, step, dtype=_np.float64):
    """Inverted-dropout mask: 1 / (1 - rate) where kept, 0 where dropped; a pure function of
    (seed, step, element index).

    >>> dropout_mask((2, 3), 0.5, seed=1, step=0)  # doctest: +SKIP
    """
    _dropout_args(rate, seed, step)
    dtype = _np.dtype(dtype)
    if dtype not in (_np.float32, _np.float64):
        raise TypeError("dtype must be float32 or float64, got %s" % dtype)
    out = _np.empty(shape, dtype=dtype)
    cdef float[::1] o32
    cdef double[::1] o64
    cdef size_t cnt = out.size
    cdef double r = rate
    cdef uint64_t s = seed, t = step
    cdef af_status st = AF_OK
    if cnt == 0:
        return out
    if dtype == _np.float32:
        o32 = out.reshape(-1)
        with nogil:
            st = af_dropout_mask_f32(cnt, r, s, t, &o32[0])
    else:
        o64 = out.reshape(-1)
        with nogil:
            st = af_dropout_mask_f64(cnt, r, s, t, &o64[0])
    check_status(st, "dropout_mask")
    return out


def dropout_apply(x, rate, seed, step):
    """x * dropout_mask(x.shape, rate, seed, step) as a new array (float32/float64). Used for
    the forward pass and, with dy and the same (seed, step), for the backward pass."""
    _dropout_args(rate, seed, step)
    if not _is_real(x):
        raise TypeError("x must be a float32 or float64 numpy array, got %s"
                        % getattr(x, "dtype", type(x).__name__))
    xc = _native(x).reshape(-1)
    y = _np.empty_like(xc)
    cdef const float[::1] x32
    cdef const double[::1] x64
    cdef float[::1] y32
    cdef double[::1] y64
    cdef size_t cnt = xc.size
    cdef double r = rate
    cdef uint64_t s = seed, t = step
    cdef af_status st = AF_OK
    if cnt:
        if xc.dtype == _np.float32:
            x32 = xc
            y32 = y
            with nogil:
                st = af_dropout_apply_f32(cnt, r, s, t, &x32[0], &y32[0])
        else:
            x64 = xc
            y64 = y
            with nogil:
                st = af_dropout_apply_f64(cnt, r, s, t, &x64[0], &y64[0])
    check_status(st, "dropout_apply")
    return y.reshape(x.shape)
