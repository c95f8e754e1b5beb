# Boundary for split-batch training (csrc/split.h): this process's pieces of every global batch,
# in C with the GIL released; between the passes C calls back a Python reduce (annfast.distributed
# passes an in-place MPI Allreduce) for the gradient, batch statistics and the stop flag.

cdef class _ReduceHook:
    """Context of the C reduce hook: fn(ndarray) sums the array in place over the processes.
    The first exception fn raises is kept in .error (C then stops with the last completed step);
    views of the same C buffer are made once per call."""
    cdef object fn
    cdef public object error
    cdef dict views

    def __init__(self, fn):
        self.fn = fn
        self.error = None
        self.views = {}

    cdef af_status call(self, void *buf, size_t n, int dtype) noexcept:
        cdef cnp.npy_intp dims[1]
        try:
            key = (<size_t>buf, n, dtype)
            arr = self.views.get(key)
            if arr is None:
                dims[0] = <cnp.npy_intp>n
                arr = cnp.PyArray_SimpleNewFromData(
                    1, dims, cnp.NPY_FLOAT32 if dtype == AF_F32 else cnp.NPY_FLOAT64, buf)
                self.views[key] = arr
            self.fn(arr)
            return AF_OK
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            return AF_EINTR


cdef af_status _reduce_hook(void *ctx, void *buf, size_t n, int dtype) noexcept nogil:
    with gil:
        return (<_ReduceHook>ctx).call(buf, n, dtype)


cdef tuple _piece_buffers(GraphEngine eng, _Plan box, size_t count):
    """(workspaces, gradient buffers, sums, stats, pointer array) for `count` pieces on plans
    like box, made on first use and kept with the engine (for one plan and count at a time)."""
    cached = eng._piece_cache
    if cached is not None and cached[0] == count and cached[1][0][0] is box.ws:
        return cached[1]
    wss = [box.ws] + [aligned_zeros(box.ws.shape[0], eng.dtype) for _ in range(count - 1)]
    grads = [aligned_zeros(max(eng.g.n_params, 1), eng.dtype) for _ in range(count - 1)]
    sums = _np.zeros((count + 1) * max(af_split_sums_len(box.p), 1), dtype=_np.float64)
    stats = _np.zeros(count * sizeof(af_epoch_stats), dtype=_np.uint8)
    ptrs = _np.zeros(2 * count, dtype=_np.uintp)
    for k in range(count):
        ptrs[k] = <size_t>cnp.PyArray_DATA(wss[k])
        if k > 0:
            ptrs[count + k - 1] = <size_t>cnp.PyArray_DATA(grads[k - 1])
    bufs = (wss, grads, sums, stats, ptrs)
    eng._piece_cache = (count, bufs)
    return bufs


def local_pieces(GraphEngine eng, Py_ssize_t batch):
    """Pieces a one-process fit cuts each batch of `batch` samples into (1: none): from the network
    and the batch size only, never the thread count (csrc/split.c)."""
    if batch < 1:
        raise ValueError("batch size must be >= 1, got %d" % batch)
    cdef _Plan box = eng.plan(1)
    return af_local_pieces(&eng.g, box.p, batch)


def train_split(GraphEngine eng, list xs, list ys, Py_ssize_t batch, int order,
                uint64_t shuffle_key, dict opt_cfg, opt_state, uint64_t step, perm, size_t parts,
                size_t first, size_t count, reduce=None, size_t first_batch=0, max_batches=None,
                sw=None, int sw_norm=0, shared_grads=None):
    """One epoch (or batches first_batch.. of it, at most max_batches) of split batches: every
    global batch of `batch` samples is cut into `parts` pieces by sample index and this process
    computes pieces first .. first + count - 1 (csrc/split.h). reduce: None, or fn(ndarray) that
    sums the array in place over the processes (each computing its own pieces). Arguments as
    GraphEngine.train_epoch (sw: sample weights of all n rows, normalised over each global
    batch as sw_norm says). shared_grads: None (the engine's own gradient buffer), or a 1-D array of the
    engine's dtype, C-contiguous and 64-byte aligned, with room for every parameter, that receives
    the gradient instead (memory shared between the processes of one machine, which sum it in
    place in reduce). Returns (per-piece stats, new step, interrupted)."""
    cdef af_optim o
    cdef af_data d
    cdef af_epoch_args e
    cdef af_split sp
    cdef uint64_t t = step
    cdef af_status s
    cdef size_t k
    if order not in _ORDERS:
        raise ValueError("order must be 0 (storage), 1 (shuffle) or 2 (given), got %d" % order)
    if batch < 1:
        raise ValueError("batch_size must be >= 1, got %d" % batch)
    if parts < 1 or count < 1 or first >= parts or count > parts - first:
        raise ValueError("pieces %d..%d of %d do not exist" % (first, first + count - 1, parts))
    fill_optim(&o, opt_cfg)
    check_eps_dtype(&o, eng.dtype)
    cdef _Plan box = eng.plan((batch - 1) // parts + 1)
    eng._data(box, xs, ys, &d, sw, sw_norm)
    _want(opt_state, "optimizer state", eng.dtype, 1, True)
    if opt_state.shape[0] < af_optim_slots_used(&o) * eng.g.n_params:
        raise ValueError("optimizer state has %d values, needs %d"
                         % (opt_state.shape[0], af_optim_slots_used(&o) * eng.g.n_params))
    _want(perm, "perm", _np.uint64, 1, True)
    if perm.shape[0] < d.n:
        raise ValueError("perm must have at least %d entries" % d.n)
    e.batch = batch
    e.order = order
    e.shuffle_key = shuffle_key
    e.first_batch = first_batch
    e.max_batches = <size_t>-1 if max_batches is None else <size_t>max_batches
    e.perm = <uint64_t *>cnp.PyArray_DATA(perm)
    # this process's pieces: a workspace each, a gradient buffer each but the first (the model's),
    # kept with the engine for the next call (a fit makes one call per epoch)
    wss, grads, sums, stats, ptrs = _piece_buffers(eng, box, count)
    for gb in grads:
        gb.fill(0)   # a node that computes no gradient (frozen) leaves its slice as it finds it
    sp.parts = parts
    sp.first = first
    sp.count = count
    sp.ws = <void *const *>cnp.PyArray_DATA(ptrs)
    sp.ws_len = box.ws.shape[0]
    sp.grads = <void *const *>(<size_t *>cnp.PyArray_DATA(ptrs) + count)
    sp.sums = <double *>cnp.PyArray_DATA(sums)
    sp.stats = <af_epoch_stats *>cnp.PyArray_DATA(stats)
    if shared_grads is not None:
        _want(shared_grads, "shared_grads", eng.dtype, 1, True)
        if shared_grads.shape[0] < eng.g.n_params:
            raise ValueError("shared_grads has %d values, the model has %d parameters"
                             % (shared_grads.shape[0], eng.g.n_params))
        if <size_t>cnp.PyArray_DATA(shared_grads) % 64:
            raise ValueError("shared_grads must start on a 64-byte boundary")
    cdef _ReduceHook hook = _ReduceHook(reduce) if reduce is not None else None
    eng._bind()
    if shared_grads is not None and eng.g.n_params:
        eng.g.grads = cnp.PyArray_DATA(shared_grads)
    if hook is not None:
        eng.g.reduce = _reduce_hook
        eng.g.reduce_ctx = <void *>hook
    cdef void *osp = cnp.PyArray_DATA(opt_state) if opt_state.shape[0] else NULL
    cdef _SigintGuard guard = _SigintGuard()
    cdef bint sigint = False
    s = AF_OK
    with eng._lock:
        guard.enter()
        try:
            if d.n == 0:
                s = AF_OK
            elif eng.dtype == _np.float32:
                with nogil:
                    s = af_graph_train_split_f32(&eng.g, box.p, &sp, &d, &e, &o, <float *>osp, &t)
            else:
                with nogil:
                    s = af_graph_train_split_f64(&eng.g, box.p, &sp, &d, &e, &o, <double *>osp, &t)
        finally:
            sigint = guard.exit()
            eng.g.reduce = NULL
            eng.g.reduce_ctx = NULL
            eng._bind()          # the engine's own gradient buffer again
    if hook is not None and hook.error is not None:
        raise hook.error
    if s == AF_EINVAL and order == 2 and d.n and perm[:d.n].max() >= <uint64_t>d.n:
        # the C call checks the rows before any step (nothing changed); named here, off the fast path
        raise ValueError("perm must hold row indices in [0, %d), got %d" % (d.n, perm[:d.n].max()))
    if s != AF_OK and s != AF_EINTR:
        check_status(s, "fit")
    if sigint and guard.scope is None:  # no FitGuard to report it to
        raise KeyboardInterrupt("fit: interrupted")
    cdef af_epoch_stats *st = <af_epoch_stats *>cnp.PyArray_DATA(stats)
    return [_stats_dict(&st[k], eng.g.n_outputs) for k in range(count)], t, s == AF_EINTR


def split_sum_all(list bufs, size_t lo, size_t hi):
    """bufs[q][lo:hi] <- bufs[0][lo:hi] + bufs[1][lo:hi] + ... (in list order) for every q: the
    processes of one machine each sum a range of their gradient buffers in shared memory
    (annfast.distributed). bufs: 1-D C-contiguous float32 or float64 arrays of one dtype and
    length, writeable; lo <= hi <= that length."""
    cdef size_t k, nbuf = len(bufs)
    if nbuf == 0:
        raise ValueError("split_sum_all needs at least one buffer")
    first = bufs[0]
    if not isinstance(first, _np.ndarray) or first.dtype not in (_np.float32, _np.float64):
        raise TypeError("bufs must be float32 or float64 NumPy arrays")
    for b in bufs:
        _want(b, "bufs", first.dtype, 1, True)
        if b.shape[0] != first.shape[0]:
            raise ValueError("bufs must have one length, got %d and %d" % (first.shape[0], b.shape[0]))
    if lo > hi or hi > <size_t>first.shape[0]:
        raise ValueError("range [%d, %d) is not within [0, %d]" % (lo, hi, first.shape[0]))
    ptrs = _np.zeros(nbuf, dtype=_np.uintp)
    for k in range(nbuf):
        ptrs[k] = <size_t>cnp.PyArray_DATA(bufs[k])
    cdef void **p = <void **>cnp.PyArray_DATA(ptrs)
    cdef af_status s
    if first.dtype == _np.float32:
        with nogil:
            s = af_split_sum_all_f32(nbuf, <float *const *>p, lo, hi)
    else:
        with nogil:
            s = af_split_sum_all_f64(nbuf, <double *const *>p, lo, hi)
    check_status(s, "split_sum_all")
