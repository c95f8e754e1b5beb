# Boundary for the graph engine (csrc/graph.h): builds the C node array from plain descriptions,
# setting each kind's config struct by field name through the kind's C field table (so this file
# never changes when a kind is added), plans workspaces per batch size, and runs whole epochs,
# predict, evaluate and gradients with the GIL released.
from annfast._buffers import aligned_zeros

# Plans (and their workspaces) kept per engine, by batch size: the two most recent.
_PLAN_CACHE = 2
_ORDERS = {0: 0, 1: 1, 2: 2}


def layer_fields(str kind):
    """[(name, type, lo, hi, names)] of a layer kind's configuration, from the C field table."""
    cdef const af_layer_ops *ops = af_layer_find(kind.encode())
    if ops == NULL:
        raise ValueError("unknown layer kind %r; known: %s" % (kind, ", ".join(LAYER_KINDS)))
    out = []
    cdef const af_field *f = ops.fields
    cdef size_t j
    while f.name != NULL:
        names = None
        if f.names != NULL:
            names = []
            j = 0
            while f.names[j] != NULL:
                names.append(f.names[j].decode())
                j += 1
        out.append((f.name.decode(), ("int", "real", "bool", "enum", "ints")[<int>f.type], f.lo, f.hi,
                    names))
        f += 1
    return out


cdef str _range(const af_field *f):
    return "[%s, %s]" % (("%d" % f.lo, "%d" % f.hi) if f.type in (AF_FIELD_INT, AF_FIELD_INTS)
                         else ("%g" % f.lo, "%g" % f.hi))


cdef int _set_field(const af_field *f, char *cfg, value, str where) except -1:
    """Writes one config value into the kind's struct, checked against the field's type and range."""
    import numbers
    cdef str key = f.name.decode()
    cdef int64_t *ints
    cdef size_t j
    if f.type == AF_FIELD_INT or f.type == AF_FIELD_INTS:
        vals = list(value) if f.type == AF_FIELD_INTS and isinstance(value, (tuple, list)) else [value]
        if f.type == AF_FIELD_INTS and not 1 <= len(vals) <= AF_FIELD_MAX_INTS:
            raise ValueError("%s: %r must have 1 to %d values, got %r" % (where, key, AF_FIELD_MAX_INTS, value))
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError("%s: %r must be %s, got %s %r" % (
                    where, key, "an int" if f.type == AF_FIELD_INT else "a tuple of ints",
                    type(v).__name__, value))
            if not f.lo <= v <= f.hi:
                raise ValueError("%s: %r must be in %s, got %r" % (where, key, _range(f), value))
        ints = <int64_t *>(cfg + f.offset)
        if f.type == AF_FIELD_INT:
            ints[0] = vals[0]
        else:
            (<int64_t *>(cfg + f.offset - sizeof(int64_t)))[0] = len(vals)   # the count, just before
            for j, v in enumerate(vals):
                ints[j] = v
    elif f.type == AF_FIELD_REAL:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError("%s: %r must be a real number, got %s %r" % (where, key, type(value).__name__, value))
        v = float(value)
        if not (f.lo <= v <= f.hi):
            raise ValueError("%s: %r must be in %s, got %r" % (where, key, _range(f), value))
        (<double *>(cfg + f.offset))[0] = v
    elif f.type == AF_FIELD_BOOL:
        if not isinstance(value, (bool, _np.bool_)):
            raise TypeError("%s: %r must be a bool, got %s %r" % (where, key, type(value).__name__, value))
        (<int *>(cfg + f.offset))[0] = 1 if value else 0
    else:
        j = 0
        names = []
        while f.names[j] != NULL:
            names.append(f.names[j].decode())
            j += 1
        if value not in names:
            raise ValueError("%s: %r must be one of %s, got %r" % (where, key, ", ".join(names), value))
        (<int *>(cfg + f.offset))[0] = names.index(value)
    return 0


cdef int _fill_cfg(const af_layer_ops *ops, char *cfg, dict config, str where) except -1:
    """Every field of the kind from config (all required); an unknown key is an error."""
    cdef const af_field *f = ops.fields
    known = []
    while f.name != NULL:
        key = f.name.decode()
        known.append(key)
        if key not in config:
            raise ValueError("%s: missing setting %r" % (where, key))
        _set_field(f, cfg, config[key], where)
        f += 1
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError("%s: unknown setting %r; %s takes %s" % (
            where, unknown[0], ops.name.decode(), ", ".join(known) if known else "no settings"))
    return 0


cdef class _Plan:
    """Owns one af_plan (for one batch size) and its workspace."""
    cdef af_plan *p
    cdef readonly object ws

    def __cinit__(self):
        self.p = NULL

    def __dealloc__(self):
        af_plan_free(self.p)


cdef dict _stats_dict(af_epoch_stats *st, size_t n_out):
    return {"loss_sum": st.loss_sum, "n_seen": st.n_seen, "n_batches": st.n_batches,
            "out_loss": [st.out_loss[o] for o in range(n_out)],
            "correct": [st.correct[o] for o in range(n_out)],
            "sse": [st.sse[o] for o in range(n_out)]}


cdef class GraphEngine:
    """A graph of layer nodes described once to C over the model's flat parameter, gradient and
    statistics buffers (shared by reference), with plans and workspaces cached per batch size.

    nodes: list of dicts {"kind", "name", "inputs": [node indices], "config": {field: value},
    "param_off", "stat_off", "rng_key"}; inputs / outputs: node indices; losses: a name per
    output; loss_weights: a float per output. Every call checks its arrays, releases the GIL and
    holds the engine's lock (one C call at a time: calls share the workspaces)."""
    cdef af_graph g
    cdef af_node *nodes
    cdef list _names
    cdef readonly object params, grads, stats, dtype
    cdef readonly bint input_grads
    cdef dict _plans
    cdef list _plan_order
    cdef object _lock
    cdef object _piece_cache   # (key, buffers) of train_split's extra pieces (_split.pxi)
    cdef int _typenum          # the dtype's NumPy type number
    # predict_fast: the one float input's per-sample shape and the outputs' (from the C kinds,
    # fetched on its first call; -1: not yet, 0: the engine does not qualify)
    cdef int _fast_state
    cdef int _fast_nd
    cdef cnp.npy_intp _fast_dims[AF_MAX_RANK + 1]
    cdef int _fast_out_nd[AF_MAX_IO]
    cdef cnp.npy_intp _fast_out_dims[AF_MAX_IO][AF_MAX_RANK + 1]

    def __cinit__(self):
        self.nodes = NULL
        self._fast_state = -1

    def __dealloc__(self):
        cdef size_t i
        if self.nodes != NULL:
            for i in range(self.g.n_nodes):
                free(self.nodes[i].cfg)
            free(self.nodes)

    def __init__(self, list nodes, list inputs, list outputs, list losses, list loss_weights,
                 params, grads, stats, double clipnorm=0.0, double clipvalue=0.0, seed=0,
                 bint input_grads=False):
        if not nodes:
            raise ValueError("a network needs at least one layer")
        if not 1 <= len(inputs) <= AF_MAX_IO or not 1 <= len(outputs) <= AF_MAX_IO:
            raise ValueError("a network has 1 to %d inputs and outputs, got %d and %d"
                             % (AF_MAX_IO, len(inputs), len(outputs)))
        if len(losses) != len(outputs) or len(loss_weights) != len(outputs):
            raise ValueError("one loss and one loss weight per output")
        self.dtype = params.dtype if isinstance(params, _np.ndarray) else None
        if self.dtype not in (_np.float32, _np.float64):
            raise TypeError("params must be a float32 or float64 ndarray")
        self._typenum = cnp.NPY_FLOAT if self.dtype == _np.float32 else cnp.NPY_DOUBLE
        _want(params, "params", self.dtype, 1, True)
        _want(grads, "grads", self.dtype, 1, True)
        _want(stats, "stats", self.dtype, 1, True)
        if grads.shape[0] != params.shape[0]:
            raise ValueError("grads must have as many values as params")
        self.nodes = <af_node *>calloc(len(nodes), sizeof(af_node))
        if self.nodes == NULL:
            raise MemoryError("network description")
        self.g.nodes = self.nodes
        self.g.n_nodes = len(nodes)      # from here on __dealloc__ frees what was set
        self._names = []
        cdef af_node *nd
        cdef const af_layer_ops *ops
        for i, spec in enumerate(nodes):
            where = "layer %r (%s)" % (spec.get("name", i), spec.get("kind"))
            self._names.append(where)
            ops = af_layer_find(str(spec["kind"]).encode())
            if ops == NULL:
                raise ValueError("%s: unknown layer kind; known: %s" % (where, ", ".join(LAYER_KINDS)))
            nd = &self.nodes[i]
            nd.ops = ops
            nd.cfg = calloc(1, ops.cfg_size if ops.cfg_size else 1)
            if nd.cfg == NULL:
                raise MemoryError(where)
            _fill_cfg(ops, <char *>nd.cfg, dict(spec.get("config", {})), where)
            ins = list(spec.get("inputs", []))
            if not ops.min_inputs <= len(ins) <= ops.max_inputs:
                raise ValueError("%s takes %d to %d inputs, got %d"
                                 % (where, ops.min_inputs, ops.max_inputs, len(ins)))
            nd.n_inputs = len(ins)
            for k, src in enumerate(ins):
                if not 0 <= src < len(nodes):
                    raise ValueError("%s: input %r is not a node index" % (where, src))
                nd.inputs[k] = src
            nd.param_off = spec.get("param_off", 0)
            nd.stat_off = spec.get("stat_off", 0)
            nd.rng_key = spec.get("rng_key", i)
        self.g.n_inputs = len(inputs)
        self.g.n_outputs = len(outputs)
        for k, v in enumerate(inputs):
            self.g.inputs[k] = v
        for o, v in enumerate(outputs):
            if losses[o] not in LOSSES:
                raise ValueError("loss must be one of %s, got %r" % (", ".join(LOSSES), losses[o]))
            self.g.outputs[o] = v
            self.g.losses[o] = <af_loss>LOSSES[losses[o]]
            self.g.loss_weights[o] = loss_weights[o]
        self.params, self.grads, self.stats = params, grads, stats
        self.g.n_params = params.shape[0]
        self.g.n_stats = stats.shape[0]
        self.g.clipnorm = clipnorm
        self.g.clipvalue = clipvalue
        self.g.seed = <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF)
        self.input_grads = input_grads
        self._bind()
        self._plans = {}
        self._plan_order = []
        self._lock = _threading.Lock()
        self.plan(1)          # checks the whole graph now, with messages naming the node

    cdef int _bind(self) except -1:
        """Point the C description at the current data of the shared buffers."""
        self.g.params = cnp.PyArray_DATA(self.params) if self.params.shape[0] else NULL
        self.g.grads = cnp.PyArray_DATA(self.grads) if self.grads.shape[0] else NULL
        self.g.stats = cnp.PyArray_DATA(self.stats) if self.stats.shape[0] else NULL
        return 0

    def plan(self, Py_ssize_t batch):
        """The plan and workspace for batches of up to `batch` samples (made once, then reused)."""
        return self._plan_for(batch)

    cdef _Plan _plan_for(self, Py_ssize_t batch):
        """plan's body, called from C (predict_fast) without a Python method call."""
        if batch < 1:
            raise ValueError("batch size must be >= 1, got %d" % batch)
        pl = self._plans.get(batch)
        if pl is not None:
            return pl
        cdef _Plan box = _Plan()
        cdef size_t bad = <size_t>-1
        cdef af_status s = af_plan_create(&self.g, batch,
                                          AF_F32 if self.dtype == _np.float32 else AF_F64,
                                          AF_PLAN_INPUT_GRADS if self.input_grads else 0, &box.p, &bad)
        if s != AF_OK:
            where = self._names[bad] if bad < len(self._names) else "network"
            check_status(s, where)
        box.ws = aligned_zeros(af_plan_ws_len(box.p), self.dtype)  # 64-byte aligned, see _buffers
        self._plans[batch] = box
        self._plan_order.append(batch)
        if len(self._plan_order) > _PLAN_CACHE:
            del self._plans[self._plan_order.pop(0)]
        return box

    def node_info(self, Py_ssize_t i):
        """(output shape, n_params, n_stats) of node i as the C kinds inferred them."""
        cdef _Plan box = self.plan(1)
        cdef af_node_info inf
        check_status(af_plan_node_info(box.p, i, &inf), "node_info")
        return tuple(inf.out.dim[d] for d in range(inf.out.rank)), inf.n_params, inf.n_stats

    def target_shape(self, Py_ssize_t o):
        """Per-sample shape of output o's targets (class indices for sparse cross-entropy)."""
        cdef _Plan box = self.plan(1)
        cdef af_shape sh
        check_status(af_plan_target_shape(box.p, o, &sh), "target_shape")
        return tuple(sh.dim[d] for d in range(sh.rank))

    cdef int _data(self, _Plan box, list xs, list ys, af_data *d, sw=None, int sw_norm=0) except -1:
        """Fills d from the input arrays (checked against the plan's shapes), the targets and the
        optional sample weights (1-D, the float type; normalised as sw_norm: 0 by the batch size
        as Keras, 1 by the weight sum as scikit-learn)."""
        cdef af_node_info inf
        cdef af_shape sh
        if len(xs) != self.g.n_inputs:
            raise ValueError("the model takes %d input arrays, got %d" % (self.g.n_inputs, len(xs)))
        memset(d, 0, sizeof(af_data))
        n = xs[0].shape[0]
        for k, x in enumerate(xs):
            af_plan_node_info(box.p, self.g.inputs[k], &inf)
            shape = tuple(inf.out.dim[j] for j in range(inf.out.rank))
            dt = _np.int32 if inf.out.elem == AF_ELEM_INT32 else self.dtype
            _want(x, "input %d" % k, dt, 1 + len(shape), False)
            if x.shape[1:] != shape or x.shape[0] != n:
                raise ValueError("input %d must have shape (%d, %s), got %s"
                                 % (k, n, ", ".join(map(str, shape)), x.shape))
            d.x[k] = cnp.PyArray_DATA(x)
        if ys is not None:
            if len(ys) != self.g.n_outputs:
                raise ValueError("the model has %d outputs, got %d target arrays" % (self.g.n_outputs, len(ys)))
            for o, y in enumerate(ys):
                af_plan_target_shape(box.p, o, &sh)
                shape = tuple(sh.dim[j] for j in range(sh.rank))
                _want(y, "y %d" % o, self.dtype, 1 + len(shape), False)
                if y.shape[1:] != shape or y.shape[0] != n:
                    raise ValueError("target %d must have shape (%d, %s), got %s"
                                     % (o, n, ", ".join(map(str, shape)), y.shape))
                d.y[o] = cnp.PyArray_DATA(y)
        if sw is not None:
            _want(sw, "sample_weight", self.dtype, 1, False)
            if sw.shape[0] != n:
                raise ValueError("sample_weight must have %d values, got %d" % (n, sw.shape[0]))
            if sw_norm not in (AF_SW_BATCH, AF_SW_SUM):
                raise ValueError("sw_norm must be 0 (batch size) or 1 (weight sum), got %d" % sw_norm)
            d.sw = cnp.PyArray_DATA(sw)
            d.sw_norm = sw_norm
        d.n = n
        return 0

    def train_epoch(self, list xs, list ys, Py_ssize_t batch, int order, uint64_t shuffle_key,
                    dict opt_cfg, opt_state, uint64_t step, perm, size_t first_batch=0,
                    max_batches=None, sw=None, int sw_norm=0):
        """One epoch (or batches first_batch.. of it, at most max_batches) in C with the GIL
        released. order: 0 rows in storage order, 1 the engine's shuffle keyed by shuffle_key,
        2 the row indices the caller put in perm (each < n). Returns (stats, new step,
        interrupted): interrupted if the stop token of this thread's FitGuard was set
        (request_stop() or Ctrl-C, see _interrupt.pxi); a Ctrl-C during a call made outside any
        FitGuard raises KeyboardInterrupt instead."""
        cdef af_optim o
        cdef af_data d
        cdef af_epoch_args e
        cdef af_epoch_stats st
        cdef uint64_t t = step
        cdef af_status s
        if order not in _ORDERS:
            raise ValueError("order must be 0 (storage), 1 (shuffle) or 2 (given), got %d" % order)
        if batch < 1:
            raise ValueError("batch_size must be >= 1, got %d" % batch)
        fill_optim(&o, opt_cfg)
        check_eps_dtype(&o, self.dtype)
        cdef _Plan box = self.plan(batch)
        self._data(box, xs, ys, &d, sw, sw_norm)
        _want(opt_state, "optimizer state", self.dtype, 1, True)
        if opt_state.shape[0] < af_optim_slots_used(&o) * self.g.n_params:
            raise ValueError("optimizer state has %d values, needs %d"
                             % (opt_state.shape[0], af_optim_slots_used(&o) * self.g.n_params))
        _want(perm, "perm", _np.uint64, 1, True)
        if perm.shape[0] < d.n:
            raise ValueError("perm must have at least %d entries" % d.n)
        e.batch = batch
        e.order = order
        e.shuffle_key = shuffle_key
        e.first_batch = first_batch
        e.max_batches = <size_t>-1 if max_batches is None else <size_t>max_batches
        e.perm = <uint64_t *>cnp.PyArray_DATA(perm)
        memset(&st, 0, sizeof(st))
        self._bind()
        cdef void *ws = cnp.PyArray_DATA(box.ws)
        cdef size_t wl = box.ws.shape[0]
        cdef void *sp = cnp.PyArray_DATA(opt_state) if opt_state.shape[0] else NULL
        # this thread's stop token for the call, and Ctrl-C routed to it (see _interrupt.pxi)
        cdef _SigintGuard guard = _SigintGuard()
        cdef bint sigint = False
        s = AF_OK
        with self._lock:
            guard.enter()
            try:
                if d.n == 0:
                    s = AF_OK
                elif self.dtype == _np.float32:
                    with nogil:
                        s = af_graph_train_epoch_f32(&self.g, box.p, <float *>ws, wl, &d, &e, &o,
                                                     <float *>sp, &t, &st)
                else:
                    with nogil:
                        s = af_graph_train_epoch_f64(&self.g, box.p, <double *>ws, wl, &d, &e, &o,
                                                     <double *>sp, &t, &st)
            finally:
                sigint = guard.exit()
        if s == AF_EINVAL and order == 2 and d.n and perm[:d.n].max() >= <uint64_t>d.n:
            # the C call checks the rows before any step (nothing changed); named here, off the fast path
            raise ValueError("perm must hold row indices in [0, %d), got %d" % (d.n, perm[:d.n].max()))
        if s != AF_OK and s != AF_EINTR:
            check_status(s, "fit")
        if sigint and guard.scope is None:  # no FitGuard to report it to
            raise KeyboardInterrupt("fit: interrupted")
        return _stats_dict(&st, self.g.n_outputs), t, s == AF_EINTR

    def predict(self, list xs, Py_ssize_t chunk):
        """Inference-mode outputs (a list, one array per output) for the samples of xs."""
        cdef af_data d
        cdef _Plan box = self.plan(chunk)
        self._data(box, xs, None, &d)
        return self._run_predict(box, &d, [self.node_info(self.g.outputs[o])[0]
                                           for o in range(self.g.n_outputs)])

    cdef list _run_predict(self, _Plan box, af_data *d, list shapes):
        """The outputs (new arrays of d.n samples of the given per-sample shapes) of a predict
        pass over the prepared data d (the general path)."""
        cdef void *outp[AF_MAX_IO]
        outs = []
        for o, shape in enumerate(shapes):
            arr = _np.empty((d.n,) + shape, dtype=self.dtype)
            outs.append(arr)
            outp[o] = cnp.PyArray_DATA(arr)
        if d.n > 0:
            self._predict_pass(box, d, outp, NULL, 0)
        return outs

    cdef int _predict_pass(self, _Plan box, af_data *d, void **outp, const void *scan,
                           size_t n) except -1:
        """One predict pass over d into outp, under the engine's lock without the GIL; with scan,
        first its n values (the input, predict_fast) are checked finite in the same section.
        Returns 0 (nothing run) when they are not, else 1; a C error raises."""
        cdef af_status s = AF_OK
        cdef int ok = 1
        cdef bint f32 = self._typenum == cnp.NPY_FLOAT
        self._bind()
        cdef void *ws = cnp.PyArray_DATA(box.ws)
        cdef size_t wl = box.ws.shape[0]
        with self._lock:
            if f32:
                with nogil:
                    if scan != NULL:
                        ok = af_all_finite_f32(1, n, <const float *>scan, n)
                    if ok:
                        s = af_graph_predict_f32(&self.g, box.p, <float *>ws, wl, d, <float *const *>outp)
            else:
                with nogil:
                    if scan != NULL:
                        ok = af_all_finite_f64(1, n, <const double *>scan, n)
                    if ok:
                        s = af_graph_predict_f64(&self.g, box.p, <double *>ws, wl, d, <double *const *>outp)
        check_status(s, "predict")
        return ok

    cdef int _fast_setup(self) except -1:
        """Caches what predict_fast checks against and makes: one model input, a float one, and
        the outputs' per-sample shapes, all as C values (no Python objects touched per call)."""
        cdef _Plan box = self.plan(1)
        cdef af_node_info inf
        af_plan_node_info(box.p, self.g.inputs[0], &inf)
        self._fast_state = 0
        if self.g.n_inputs != 1 or inf.out.elem == AF_ELEM_INT32 or inf.out.rank > AF_MAX_RANK:
            return 0
        self._fast_nd = 1 + inf.out.rank
        for j in range(inf.out.rank):
            self._fast_dims[1 + j] = <cnp.npy_intp>inf.out.dim[j]
        for o in range(self.g.n_outputs):
            shape = self.node_info(self.g.outputs[o])[0]
            if len(shape) > AF_MAX_RANK:
                return 0
            self._fast_out_nd[o] = 1 + len(shape)
            for j, v in enumerate(shape):
                self._fast_out_dims[o][1 + j] = v
        self._fast_state = 1
        return 0

    def predict_fast(self, x, Py_ssize_t max_chunk):
        """predict([x], min(n, max_chunk)) for the common small call, with its checks made in C
        on the array itself: x, the engine's only (float) input, is exactly an ndarray of the
        engine's dtype, aligned, native byte order, C-contiguous, with n >= 1 rows of the
        per-sample shape and only finite values. Returns the outputs' list, or None when x is
        anything else: the caller then takes the general path, which converts it or says what is
        wrong. Saves the conversions, the temporaries of the NaN/inf scan and the per-call shape
        lookups of the general path: the outputs are made from cached C shapes and the scan runs
        in the predict call's GIL-free section (a Dense(4 -> 2) batch-1 predict_fast: 1.24 ->
        0.83 us; its first call after a pause, when nothing is in cache, 80-85 -> 65-75 us)."""
        cdef af_data d
        cdef cnp.ndarray a
        cdef int o
        cdef size_t size
        cdef void *outp[AF_MAX_IO]
        cdef const void *xp
        if self._fast_state < 0:
            self._fast_setup()
        if self._fast_state == 0 or not cnp.PyArray_CheckExact(x):
            return None
        a = <cnp.ndarray>x
        cdef int typenum = self._typenum
        if cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != self._fast_nd \
                or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISBEHAVED_RO(a):
            return None
        cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(a)
        if dims[0] < 1:
            return None
        for j in range(1, self._fast_nd):
            if dims[j] != self._fast_dims[j]:
                return None
        cdef Py_ssize_t chunk = dims[0] if dims[0] < max_chunk else max_chunk
        cdef _Plan pl = self._plan_for(chunk)
        cdef list outs = []
        for o in range(self.g.n_outputs):
            self._fast_out_dims[o][0] = dims[0]
            arr = cnp.PyArray_EMPTY(self._fast_out_nd[o], self._fast_out_dims[o], typenum, 0)
            outs.append(arr)
            outp[o] = cnp.PyArray_DATA(<cnp.ndarray>arr)
        size = <size_t>cnp.PyArray_SIZE(a)
        xp = cnp.PyArray_DATA(a)
        memset(&d, 0, sizeof(af_data))
        d.x[0] = xp
        d.n = <size_t>dims[0]
        if not self._predict_pass(pl, &d, outp, xp, size):
            return None          # not all finite: the general path says where
        return outs

    def evaluate(self, list xs, list ys, Py_ssize_t chunk, sw=None, int sw_norm=0):
        """(mean loss + penalties, per-output sums) in inference mode (the loss weighted by sw)."""
        cdef af_data d
        cdef af_status s
        cdef double loss = 0
        cdef af_epoch_stats st
        cdef _Plan box = self.plan(chunk)
        self._data(box, xs, ys, &d, sw, sw_norm)
        if d.n == 0:
            raise ValueError("X must have at least one row")
        self._bind()
        cdef void *ws = cnp.PyArray_DATA(box.ws)
        cdef size_t wl = box.ws.shape[0]
        with self._lock:
            if self.dtype == _np.float32:
                with nogil:
                    s = af_graph_evaluate_f32(&self.g, box.p, <float *>ws, wl, &d, &loss, &st)
            else:
                with nogil:
                    s = af_graph_evaluate_f64(&self.g, box.p, <double *>ws, wl, &d, &loss, &st)
        check_status(s, "evaluate")
        return loss, _stats_dict(&st, self.g.n_outputs)

    def gradients(self, list xs, list ys, Py_ssize_t chunk, bint training, uint64_t step, sw=None,
                  int sw_norm=0):
        """Exact gradient of the mean loss into self.grads; returns (loss, input gradients) where
        input gradients is a list (one array per float input) when the engine keeps them and
        training is set, else None."""
        cdef af_data d
        cdef af_status s
        cdef double loss = 0
        cdef size_t off
        if training:
            chunk = max(chunk, xs[0].shape[0] if xs else 1)
        cdef _Plan box = self.plan(chunk)
        self._data(box, xs, ys, &d, sw, sw_norm)
        if d.n == 0:
            raise ValueError("X must have at least one row")
        self._bind()
        cdef void *ws = cnp.PyArray_DATA(box.ws)
        cdef size_t wl = box.ws.shape[0]
        with self._lock:
            if self.dtype == _np.float32:
                with nogil:
                    s = af_graph_gradients_f32(&self.g, box.p, <float *>ws, wl, &d, training, step, &loss)
            else:
                with nogil:
                    s = af_graph_gradients_f64(&self.g, box.p, <double *>ws, wl, &d, training, step, &loss)
            check_status(s, "gradients")
            dx = None
            if self.input_grads and training:
                dx = []
                for k in range(self.g.n_inputs):
                    if af_plan_input_grad(box.p, k, &off) != AF_OK:
                        dx.append(None)
                        continue
                    shape = xs[k].shape
                    dx.append(box.ws[off:off + xs[k].size].reshape(shape).copy())
        return loss, dx
