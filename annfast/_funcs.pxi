# Boundary for activations and losses on plain arrays (csrc/act.c, csrc/loss.c), used by
# annfast.activations and annfast.losses. Arrays arrive as C-contiguous 2-D float32/float64.

cdef af_act _act_code(str name) except *:
    if name not in ACTIVATIONS:
        raise ValueError("activation must be one of %s, got %r" % (sorted(ACTIVATIONS), name))
    return ACTIVATIONS[name]


def act_forward(str name, double param, x, bint check=False):
    """f(x) row-wise for a 2-D C-contiguous float array; returns a new array. check: None instead
    when x holds NaN or inf (looked at block by block just before computing, in cache)."""
    cdef af_act a = _act_code(name)
    _want(x, "x", x.dtype if isinstance(x, _np.ndarray) and x.dtype in (_np.float32, _np.float64)
          else _np.float64, 2, False)
    y = _np.empty_like(x)
    if x.size == 0:
        return y
    if x.dtype == _np.float32:
        ok = _act_fwd[float](a, param, x, y, check)
    else:
        ok = _act_fwd[double](a, param, x, y, check)
    return y if ok else None


def act_backward(str name, double param, x, y, dy):
    """dy * f'(x) (softmax: the row Jacobian-vector product), given y = f(x)."""
    cdef af_act a = _act_code(name)
    dt = x.dtype if isinstance(x, _np.ndarray) and x.dtype in (_np.float32, _np.float64) else _np.float64
    for arr, nm in ((x, "x"), (y, "y"), (dy, "dy")):
        _want(arr, nm, dt, 2, False)
        if arr.shape != x.shape:
            raise ValueError("%s must have shape %s like x, got %s" % (nm, x.shape, arr.shape))
    dx = _np.empty_like(x)
    if x.size == 0:
        return dx
    if x.dtype == _np.float32:
        _act_bwd[float](a, param, x, y, dy, dx)
    else:
        _act_bwd[double](a, param, x, y, dy, dx)
    return dx


cdef int _act_fwd(af_act a, double param, const floating[:, ::1] x, floating[:, ::1] y,
                  bint check) except -1:
    """1, or 0 when check found NaN/inf in x."""
    cdef af_status s
    with nogil:
        if floating is float:
            if check:
                s = af_act_forward_checked_f32(a, <float>param, x.shape[0], x.shape[1], &x[0, 0],
                                               x.shape[1], &y[0, 0], y.shape[1])
            else:
                s = af_act_forward_f32(a, <float>param, x.shape[0], x.shape[1], &x[0, 0], x.shape[1],
                                       &y[0, 0], y.shape[1])
        else:
            if check:
                s = af_act_forward_checked_f64(a, param, x.shape[0], x.shape[1], &x[0, 0],
                                               x.shape[1], &y[0, 0], y.shape[1])
            else:
                s = af_act_forward_f64(a, param, x.shape[0], x.shape[1], &x[0, 0], x.shape[1],
                                       &y[0, 0], y.shape[1])
    if s == AF_ENONFINITE:
        return 0
    check_status(s, "activation")
    return 1


cdef int _act_bwd(af_act a, double param, const floating[:, ::1] x, const floating[:, ::1] y,
                  const floating[:, ::1] dy, floating[:, ::1] dx) except -1:
    cdef af_status s
    with nogil:
        if floating is float:
            s = af_act_backward_f32(a, <float>param, x.shape[0], x.shape[1], &x[0, 0], &y[0, 0],
                                    &dy[0, 0], &dx[0, 0], x.shape[1])
        else:
            s = af_act_backward_f64(a, param, x.shape[0], x.shape[1], &x[0, 0], &y[0, 0],
                                    &dy[0, 0], &dx[0, 0], x.shape[1])
    return check_status(s, "activation derivative")


def loss_eval(str name, bint from_logits, p, y, double scale=1.0):
    """Per-sample losses, the gradient scale * dloss_i/dp, and the metric sums.

    p: (m, n) predictions (or logits); y: (m, n) targets, or (m, 1) class indices for
    sparse_categorical_crossentropy; both C-contiguous of one float dtype.
    Returns (row_loss (m,), grad (m, n), accuracy_sum, squared_error_sum)."""
    if name not in LOSSES:
        raise ValueError("loss must be one of %s, got %r" % (sorted(LOSSES), name))
    cdef af_loss code = LOSSES[name]
    dt = p.dtype if isinstance(p, _np.ndarray) and p.dtype in (_np.float32, _np.float64) else _np.float64
    _want(p, "y_pred", dt, 2, False)
    _want(y, "y_true", dt, 2, False)
    ycols = 1 if code == AF_LOSS_SCCE else p.shape[1]
    if y.shape[0] != p.shape[0] or y.shape[1] != ycols:
        raise ValueError("y_true must have shape (%d, %d), got %s" % (p.shape[0], ycols, y.shape))
    rl = _np.zeros(p.shape[0], dtype=dt)
    g = _np.zeros_like(p)
    cdef double correct = 0, sse = 0
    if p.shape[0] == 0:
        return rl, g, 0.0, 0.0
    if p.shape[1] == 0:
        raise ValueError("y_pred must have at least one column")
    if dt == _np.float32:
        _loss[float](code, from_logits, p, y, scale, rl, g, &correct, &sse)
    else:
        _loss[double](code, from_logits, p, y, scale, rl, g, &correct, &sse)
    return rl, g, correct, sse


cdef int _loss(af_loss code, bint from_logits, const floating[:, ::1] p, const floating[:, ::1] y,
               double scale, floating[::1] rl, floating[:, ::1] g, double *correct,
               double *sse) except -1:
    cdef af_status s
    with nogil:
        if floating is float:
            s = af_loss_eval_f32(code, from_logits, p.shape[0], p.shape[1], &p[0, 0], p.shape[1],
                                 &y[0, 0], y.shape[1], <float>scale, &rl[0], &g[0, 0], g.shape[1],
                                 correct, sse)
        else:
            s = af_loss_eval_f64(code, from_logits, p.shape[0], p.shape[1], &p[0, 0], p.shape[1],
                                 &y[0, 0], y.shape[1], scale, &rl[0], &g[0, 0], g.shape[1],
                                 correct, sse)
    if s == AF_EINVAL and code == AF_LOSS_SCCE:
        raise ValueError("y_true must hold integer class indices in [0, %d)" % p.shape[1])
    return check_status(s, "loss")
