# Boundary for the tutorial network (csrc/tutorial.c). The Python side (network.py) passes
# float64 C-contiguous arrays; shapes are re-checked here so a bad call can never reach C.

cdef int _tut_aligned(const double *p, str name) except -1:
    """Typed memoryviews accept misaligned buffers (np.frombuffer at an odd offset); C must not
    read doubles there (network.py copies such arrays first)."""
    if <size_t>p % sizeof(double):
        raise ValueError("%s must be aligned (a float64 array at an address that is a multiple "
                         "of 8)" % name)
    return 0


cdef int _tut_net(af_tut_net *net, double[:, ::1] w1, double[::1] b1, double[:, ::1] w2,
                  double[::1] b2) except -1:
    if w1.shape[1] != b1.shape[0] or w2.shape[0] != w1.shape[1] or w2.shape[1] != b2.shape[0]:
        raise ValueError("tutorial network: inconsistent parameter shapes")
    if w1.shape[0] == 0 or w1.shape[1] == 0 or w2.shape[1] == 0:
        raise ValueError("tutorial network: every layer needs at least one unit")
    _tut_aligned(&w1[0, 0], "weights_input_hidden")
    _tut_aligned(&b1[0], "bias_hidden")
    _tut_aligned(&w2[0, 0], "weights_hidden_output")
    _tut_aligned(&b2[0], "bias_output")
    net.n_in = w1.shape[0]
    net.n_hidden = w1.shape[1]
    net.n_out = w2.shape[1]
    net.w1 = &w1[0, 0]
    net.b1 = &b1[0]
    net.w2 = &w2[0, 0]
    net.b2 = &b2[0]
    return 0


cdef int _tut_rows(const double[:, ::1] a, Py_ssize_t n, Py_ssize_t w, str name) except -1:
    if a.shape[0] != n or a.shape[1] != w:
        raise ValueError("%s must have shape (%d, %d), got (%d, %d)" % (name, n, w, a.shape[0], a.shape[1]))
    if n > 0 and w > 0:
        _tut_aligned(&a[0, 0], name)
    return 0


def tut_forward(double[:, ::1] w1, double[::1] b1, double[:, ::1] w2, double[::1] b2,
                const double[:, ::1] x, double[:, ::1] ha, double[:, ::1] ho, double[:, ::1] oa,
                double[:, ::1] pred):
    """Fill ha, ho, oa, pred with the tutorial forward pass of x."""
    cdef af_tut_net net
    _tut_net(&net, w1, b1, w2, b2)
    cdef Py_ssize_t n = x.shape[0]
    _tut_rows(x, n, net.n_in, "X")
    _tut_rows(ha, n, net.n_hidden, "hidden_activation")
    _tut_rows(ho, n, net.n_hidden, "hidden_output")
    _tut_rows(oa, n, net.n_out, "output_activation")
    _tut_rows(pred, n, net.n_out, "predicted_output")
    if n == 0:
        return
    cdef af_status s
    with nogil:
        s = af_tut_forward(&net, n, &x[0, 0], &ha[0, 0], &ho[0, 0], &oa[0, 0], &pred[0, 0])
    check_status(s, "feedforward")


def tut_backward(double[:, ::1] w1, double[::1] b1, double[:, ::1] w2, double[::1] b2,
                 const double[:, ::1] x, const double[:, ::1] y, const double[:, ::1] ho, const double[:, ::1] pred,
                 double lr, double[::1] work):
    """One tutorial backward step (updates w1, b1, w2, b2 in place)."""
    cdef af_tut_net net
    _tut_net(&net, w1, b1, w2, b2)
    cdef Py_ssize_t n = x.shape[0]
    _tut_rows(x, n, net.n_in, "X")
    _tut_rows(y, n, net.n_out, "y")
    _tut_rows(ho, n, net.n_hidden, "hidden_output")
    _tut_rows(pred, n, net.n_out, "predicted_output")
    if <size_t>work.shape[0] < <size_t>n * (net.n_hidden + net.n_out):
        raise ValueError("work buffer too small")
    if n > 0:
        _tut_aligned(&work[0], "work")
    if n == 0:
        return
    cdef af_status s
    with nogil:
        s = af_tut_backward(&net, n, &x[0, 0], &y[0, 0], &ho[0, 0], &pred[0, 0], lr, &work[0])
    check_status(s, "backward")


def tut_work_size(Py_ssize_t n_in, Py_ssize_t n_hidden, Py_ssize_t n_out, Py_ssize_t n):
    """Doubles of tut_train's work buffer for n samples."""
    if n_in < 0 or n_hidden < 0 or n_out < 0 or n < 0:
        raise ValueError("tutorial network: sizes must be >= 0")
    cdef size_t w = af_tut_work_size(n_in, n_hidden, n_out, n)
    if w == 0 and n > 0 and n_hidden + n_out > 0:
        raise ValueError("tutorial network: %d samples of these sizes overflow a buffer size" % n)
    return w


def tut_train(double[:, ::1] w1, double[::1] b1, double[:, ::1] w2, double[::1] b2,
              const double[:, ::1] x, const double[:, ::1] y, Py_ssize_t epochs, double lr,
              double[:, ::1] ha, double[:, ::1] ho, double[:, ::1] oa, double[:, ::1] pred,
              double[::1] work):
    """Run `epochs` tutorial epochs in C with the GIL released; Ctrl-C stops between epochs."""
    cdef af_tut_net net
    _tut_net(&net, w1, b1, w2, b2)
    cdef Py_ssize_t n = x.shape[0]
    if epochs < 0:
        raise ValueError("epochs must be >= 0, got %d" % epochs)
    _tut_rows(x, n, net.n_in, "X")
    _tut_rows(y, n, net.n_out, "y")
    _tut_rows(ha, n, net.n_hidden, "hidden_activation")
    _tut_rows(ho, n, net.n_hidden, "hidden_output")
    _tut_rows(oa, n, net.n_out, "output_activation")
    _tut_rows(pred, n, net.n_out, "predicted_output")
    if <size_t>work.shape[0] < af_tut_work_size(net.n_in, net.n_hidden, net.n_out, n):
        raise ValueError("work buffer too small")
    if n > 0:
        _tut_aligned(&work[0], "work")
    if n == 0 or epochs == 0:
        return
    cdef af_status s
    cdef _SigintGuard guard = _SigintGuard()   # Ctrl-C during the call (see _interrupt.pxi)
    guard.enter()
    with nogil:
        s = af_tut_train(&net, n, &x[0, 0], &y[0, 0], epochs, lr, &ha[0, 0], &ho[0, 0],
                         &oa[0, 0], &pred[0, 0], &work[0])
    if guard.exit() or s == AF_EINTR:
        raise KeyboardInterrupt("training interrupted; weights hold the last completed epoch")
    check_status(s, "train")
