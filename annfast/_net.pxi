# Boundary for the network engine (csrc/net.h, net.c, train.c): a network described once to C,
# whole epochs, predict, evaluate and gradients. The Python model (models.py) owns the parameter,
# gradient, statistics and optimiser-state arrays; this file checks and passes them, releases the
# GIL around every C call, and maps status codes to exceptions.
from cython cimport floating
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free

from annfast._buffers import aligned_zeros

cdef extern from "net.h" nogil:
    ctypedef enum af_loss:
        AF_LOSS_MSE
        AF_LOSS_MAE
        AF_LOSS_BCE
        AF_LOSS_CCE
        AF_LOSS_SCCE
        AF_LOSS_HINGE
        AF_LOSS_COUNT
    ctypedef enum af_layer_kind:
        AF_LAYER_DENSE
        AF_LAYER_BATCHNORM
        AF_LAYER_DROPOUT
    ctypedef struct af_layer:
        af_layer_kind kind
        size_t n_in, n_out
        af_act act
        double act_param
        int use_bias
        size_t w_off, b_off
        double l1, l2
        size_t s_off
        double momentum, eps
        double rate
    ctypedef struct af_net:
        const af_layer *layers
        size_t n_layers
        size_t n_in
        af_loss loss
        void *params
        void *grads
        void *stats
        size_t n_params, n_stats
        double clipnorm, clipvalue
        uint64_t seed
    ctypedef struct af_epoch_stats:
        double loss_sum, correct, sse
        size_t n_seen, n_batches
    size_t af_net_y_cols(const af_net *net)
    af_status af_net_check(const af_net *net)
    af_status af_net_workspace_size(const af_net *net, size_t max_batch, size_t *n_elems)
    af_status af_net_train_epoch_f32(const af_net *net, float *ws, size_t ws_len, size_t n,
                                     const float *x, const float *y, size_t batch, int shuffle,
                                     uint64_t shuffle_key, size_t first_batch, size_t max_batches,
                                     const af_optim *opt, float *opt_state,
                                     uint64_t *step, uint64_t *perm, af_epoch_stats *out)
    af_status af_net_train_epoch_f64(const af_net *net, double *ws, size_t ws_len, size_t n,
                                     const double *x, const double *y, size_t batch, int shuffle,
                                     uint64_t shuffle_key, size_t first_batch, size_t max_batches,
                                     const af_optim *opt, double *opt_state,
                                     uint64_t *step, uint64_t *perm, af_epoch_stats *out)
    af_status af_net_predict_f32(const af_net *net, float *ws, size_t ws_len, size_t chunk,
                                 size_t n, const float *x, float *out)
    af_status af_net_predict_f64(const af_net *net, double *ws, size_t ws_len, size_t chunk,
                                 size_t n, const double *x, double *out)
    af_status af_net_evaluate_f32(const af_net *net, float *ws, size_t ws_len, size_t chunk,
                                  size_t n, const float *x, const float *y, double *loss,
                                  double *correct, double *sse)
    af_status af_net_evaluate_f64(const af_net *net, double *ws, size_t ws_len, size_t chunk,
                                  size_t n, const double *x, const double *y, double *loss,
                                  double *correct, double *sse)
    af_status af_net_gradients_f32(const af_net *net, float *ws, size_t ws_len, size_t chunk,
                                   size_t n, const float *x, const float *y, int training,
                                   uint64_t step, double *loss)
    af_status af_net_gradients_f64(const af_net *net, double *ws, size_t ws_len, size_t chunk,
                                   size_t n, const double *x, const double *y, int training,
                                   uint64_t step, double *loss)

ACTIVATIONS = {"linear": AF_ACT_LINEAR, "sigmoid": AF_ACT_SIGMOID, "tanh": AF_ACT_TANH,
               "relu": AF_ACT_RELU, "leaky_relu": AF_ACT_LEAKY_RELU, "elu": AF_ACT_ELU,
               "selu": AF_ACT_SELU, "softmax": AF_ACT_SOFTMAX}
LOSSES = {"mse": AF_LOSS_MSE, "mae": AF_LOSS_MAE, "binary_crossentropy": AF_LOSS_BCE,
          "categorical_crossentropy": AF_LOSS_CCE,
          "sparse_categorical_crossentropy": AF_LOSS_SCCE, "hinge": AF_LOSS_HINGE}
_LAYER_KINDS = {"dense": AF_LAYER_DENSE, "batchnorm": AF_LAYER_BATCHNORM, "dropout": AF_LAYER_DROPOUT}
# Workspaces kept per network (by batch size); the two most recent are cached.
_WS_CACHE = 2


cdef object _want(a, str name, dtype, int ndim, bint writable):
    """a must be a C-contiguous ndarray of dtype with ndim dimensions (callers convert first)."""
    if not isinstance(a, _np.ndarray) or a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous:
        raise TypeError("%s must be a C-contiguous %d-D %s ndarray, got %s" % (
            name, ndim, _np.dtype(dtype).name,
            ("%s %s %s" % (a.dtype, a.shape, "contiguous" if a.flags.c_contiguous else "strided"))
            if isinstance(a, _np.ndarray) else type(a).__name__))
    if writable and not a.flags.writeable:
        raise ValueError("%s must be writable" % name)
    return a


cdef class NetEngine:
    """A network described once to C: its layers, loss, flat parameter/gradient/statistics
    buffers (owned by the Python model and shared by reference) and cached workspaces.

    layers: list of dicts with keys kind ('dense', 'batchnorm', 'dropout'), n_in, n_out and,
    as the kind needs, act, act_param, use_bias, w_off, b_off, l1, l2, s_off, momentum, eps, rate.
    """
    cdef af_net net
    cdef af_layer *layers
    cdef readonly object params, grads, stats, dtype
    cdef dict _ws
    cdef list _ws_order
    cdef object _lock

    def __cinit__(self):
        self.layers = NULL

    def __dealloc__(self):
        free(self.layers)

    def __init__(self, list layers, Py_ssize_t n_in, str loss, params, grads, stats,
                 double clipnorm=0.0, double clipvalue=0.0, seed=0):
        if not layers:
            raise ValueError("a network needs at least one layer")
        if loss not in LOSSES:
            raise ValueError("loss must be one of %s, got %r" % (sorted(LOSSES), loss))
        self.dtype = params.dtype if isinstance(params, _np.ndarray) else None
        if self.dtype not in (_np.float32, _np.float64):
            raise TypeError("params must be a float32 or float64 ndarray")
        _want(params, "params", self.dtype, 1, True)
        _want(grads, "grads", self.dtype, 1, True)
        _want(stats, "stats", self.dtype, 1, True)
        if grads.shape[0] != params.shape[0]:
            raise ValueError("grads must have as many values as params")
        self.layers = <af_layer *>calloc(len(layers), sizeof(af_layer))
        if self.layers == NULL:
            raise MemoryError("network description")
        cdef af_layer *ly
        for i, spec in enumerate(layers):
            ly = &self.layers[i]
            ly.kind = _LAYER_KINDS[spec["kind"]]
            ly.n_in = spec["n_in"]
            ly.n_out = spec["n_out"]
            ly.act = ACTIVATIONS[spec.get("act", "linear")]
            ly.act_param = spec.get("act_param", 0.0)
            ly.use_bias = bool(spec.get("use_bias", False))
            ly.w_off = spec.get("w_off", 0)
            ly.b_off = spec.get("b_off", 0)
            ly.l1 = spec.get("l1", 0.0)
            ly.l2 = spec.get("l2", 0.0)
            ly.s_off = spec.get("s_off", 0)
            ly.momentum = spec.get("momentum", 0.0)
            ly.eps = spec.get("eps", 0.0)
            ly.rate = spec.get("rate", 0.0)
        self.params, self.grads, self.stats = params, grads, stats
        self.net.layers = self.layers
        self.net.n_layers = len(layers)
        self.net.n_in = n_in
        self.net.loss = LOSSES[loss]
        self.net.n_params = params.shape[0]
        self.net.n_stats = stats.shape[0]
        self.net.clipnorm = clipnorm
        self.net.clipvalue = clipvalue
        self.net.seed = <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF)
        self._bind()
        check_status(af_net_check(&self.net), "network description")
        self._ws = {}
        self._ws_order = []
        # One C call at a time per network: calls share the workspace and the gradient buffer,
        # and run with the GIL released (threads calling predict concurrently would race).
        self._lock = _threading.Lock()

    cdef int _bind(self) except -1:
        """Point the C description at the current data of the shared buffers."""
        if self.dtype == _np.float32:
            self._bind32(self.params, self.grads, self.stats)
        else:
            self._bind64(self.params, self.grads, self.stats)
        return 0

    cdef int _bind32(self, float[::1] p, float[::1] g, float[::1] s) except -1:
        self.net.params = &p[0] if p.shape[0] else NULL
        self.net.grads = &g[0] if g.shape[0] else NULL
        self.net.stats = &s[0] if s.shape[0] else NULL
        return 0

    cdef int _bind64(self, double[::1] p, double[::1] g, double[::1] s) except -1:
        self.net.params = &p[0] if p.shape[0] else NULL
        self.net.grads = &g[0] if g.shape[0] else NULL
        self.net.stats = &s[0] if s.shape[0] else NULL
        return 0

    @property
    def y_cols(self):
        return af_net_y_cols(&self.net)

    def workspace(self, Py_ssize_t batch):
        """The workspace for batches of up to `batch` rows (allocated once, then reused)."""
        if batch < 1:
            raise ValueError("batch size must be >= 1, got %d" % batch)
        ws = self._ws.get(batch)
        if ws is None:
            ws = aligned_zeros(self._ws_size(batch), self.dtype)  # 64-byte aligned, see _buffers
            self._ws[batch] = ws
            self._ws_order.append(batch)
            if len(self._ws_order) > _WS_CACHE:
                del self._ws[self._ws_order.pop(0)]
        return ws

    cdef size_t _ws_size(self, Py_ssize_t batch) except? 0:
        cdef size_t n = 0
        check_status(af_net_workspace_size(&self.net, batch, &n), "workspace size")
        return n

    def _check_xy(self, x, y):
        _want(x, "X", self.dtype, 2, False)
        if x.shape[1] != self.net.n_in:
            raise ValueError("X must have %d columns, got shape %s" % (self.net.n_in, x.shape))
        if y is not None:
            _want(y, "y", self.dtype, 2, False)
            if y.shape[0] != x.shape[0] or y.shape[1] != af_net_y_cols(&self.net):
                raise ValueError("y must have shape (%d, %d), got %s"
                                 % (x.shape[0], af_net_y_cols(&self.net), y.shape))

    def train_epoch(self, x, y, Py_ssize_t batch, int order, uint64_t shuffle_key, dict opt_cfg,
                    opt_state, uint64_t step, perm, size_t first_batch=0, max_batches=None):
        """One epoch (or batches first_batch.. of it, at most max_batches) in C with the GIL
        released. order: 0 rows in storage order, 1 (True) the engine's shuffle keyed by
        shuffle_key, 2 the row indices the caller put in perm (each must be < len(x)).
        Returns (stats dict, new step, interrupted): interrupted if the stop token of this
        thread's FitGuard was set (request_stop() or Ctrl-C, see _interrupt.pxi); a Ctrl-C during
        a call made outside any FitGuard raises KeyboardInterrupt instead."""
        cdef af_optim o
        if order < 0 or order > 2:
            raise ValueError("order must be 0 (storage), 1 (shuffle) or 2 (given), got %d" % order)
        fill_optim(&o, opt_cfg)
        self._check_xy(x, y)
        _want(opt_state, "optimizer state", self.dtype, 1, True)
        if opt_state.shape[0] < af_optim_slots_used(&o) * self.net.n_params:
            raise ValueError("optimizer state has %d values, needs %d"
                             % (opt_state.shape[0], af_optim_slots_used(&o) * self.net.n_params))
        _want(perm, "perm", _np.uint64, 1, True)
        if perm.shape[0] < x.shape[0]:
            raise ValueError("perm must have at least %d entries" % x.shape[0])
        if order == 2 and x.shape[0] and perm[:x.shape[0]].max() >= <uint64_t>x.shape[0]:
            raise ValueError("perm must hold row indices in [0, %d), got %d"
                             % (x.shape[0], perm[:x.shape[0]].max()))
        if batch < 1:
            raise ValueError("batch_size must be >= 1, got %d" % batch)
        ws = self.workspace(batch)
        self._bind()
        cdef af_epoch_stats st
        cdef uint64_t t = step
        cdef size_t mb = <size_t>-1 if max_batches is None else <size_t>max_batches
        cdef af_status s
        st.loss_sum = st.correct = st.sse = 0
        st.n_seen = st.n_batches = 0
        # this thread's stop token for the call, and Ctrl-C routed to it (see _interrupt.pxi)
        cdef _SigintGuard guard = _SigintGuard()
        cdef bint sigint = False
        s = AF_OK
        with self._lock:
            guard.enter()
            try:
                if x.shape[0] == 0:
                    s = AF_OK
                elif self.dtype == _np.float32:
                    s = _epoch[float](&self.net, ws, x, y, batch, order, shuffle_key, first_batch, mb,
                                      &o, opt_state, &t, perm, &st)
                else:
                    s = _epoch[double](&self.net, ws, x, y, batch, order, shuffle_key, first_batch, mb,
                                       &o, opt_state, &t, perm, &st)
            finally:
                sigint = guard.exit()
        if s != AF_OK and s != AF_EINTR:
            check_status(s, "fit")
        if sigint and guard.scope is None:  # no FitGuard to report it to
            raise KeyboardInterrupt("fit: interrupted")
        return ({"loss_sum": st.loss_sum, "correct": st.correct, "sse": st.sse,
                 "n_seen": st.n_seen, "n_batches": st.n_batches}, t, s == AF_EINTR)

    def predict(self, x, Py_ssize_t chunk):
        """Inference-mode outputs of the rows of x (chunks of `chunk` rows)."""
        self._check_xy(x, None)
        n_out = self.layers[self.net.n_layers - 1].n_out
        out = _np.empty((x.shape[0], n_out), dtype=self.dtype)
        if x.shape[0] == 0:
            return out
        ws = self.workspace(chunk)
        self._bind()
        cdef af_status s
        with self._lock:
            if self.dtype == _np.float32:
                s = _predict[float](&self.net, ws, chunk, x, out)
            else:
                s = _predict[double](&self.net, ws, chunk, x, out)
        check_status(s, "predict")
        return out

    def evaluate(self, x, y, Py_ssize_t chunk):
        """(mean loss + penalties, sum of accuracies, sum of squared errors) in inference mode."""
        self._check_xy(x, y)
        if x.shape[0] == 0:
            raise ValueError("X must have at least one row")
        ws = self.workspace(chunk)
        self._bind()
        cdef double loss = 0, correct = 0, sse = 0
        cdef af_status s
        with self._lock:
            if self.dtype == _np.float32:
                s = _evaluate[float](&self.net, ws, chunk, x, y, &loss, &correct, &sse)
            else:
                s = _evaluate[double](&self.net, ws, chunk, x, y, &loss, &correct, &sse)
        check_status(s, "evaluate")
        return loss, correct, sse

    def gradients(self, x, y, Py_ssize_t chunk, bint training, uint64_t step):
        """Exact gradient of the mean loss into self.grads; returns the loss."""
        self._check_xy(x, y)
        if x.shape[0] == 0:
            raise ValueError("X must have at least one row")
        if training and chunk < x.shape[0]:
            chunk = x.shape[0]
        ws = self.workspace(chunk)
        self._bind()
        cdef double loss = 0
        cdef af_status s
        with self._lock:
            if self.dtype == _np.float32:
                s = _gradients[float](&self.net, ws, chunk, x, y, training, step, &loss)
            else:
                s = _gradients[double](&self.net, ws, chunk, x, y, training, step, &loss)
        check_status(s, "gradients")
        return loss


cdef af_status _epoch(af_net *net, floating[::1] ws, const floating[:, ::1] x,
                      const floating[:, ::1] y, size_t batch, int shuffle, uint64_t shuffle_key,
                      size_t first_batch, size_t max_batches, af_optim *o, floating[::1] state,
                      uint64_t *t, uint64_t[::1] perm, af_epoch_stats *st) except *:
    cdef floating *sp = &state[0] if state.shape[0] else NULL
    cdef af_status s
    with nogil:
        if floating is float:
            s = af_net_train_epoch_f32(net, &ws[0], ws.shape[0], x.shape[0], &x[0, 0], &y[0, 0], batch,
                                       shuffle, shuffle_key, first_batch, max_batches, o, sp, t, &perm[0], st)
        else:
            s = af_net_train_epoch_f64(net, &ws[0], ws.shape[0], x.shape[0], &x[0, 0], &y[0, 0], batch,
                                       shuffle, shuffle_key, first_batch, max_batches, o, sp, t, &perm[0], st)
    return s


cdef af_status _predict(af_net *net, floating[::1] ws, size_t chunk, const floating[:, ::1] x,
                        floating[:, ::1] out) except *:
    cdef af_status s
    with nogil:
        if floating is float:
            s = af_net_predict_f32(net, &ws[0], ws.shape[0], chunk, x.shape[0], &x[0, 0], &out[0, 0])
        else:
            s = af_net_predict_f64(net, &ws[0], ws.shape[0], chunk, x.shape[0], &x[0, 0], &out[0, 0])
    return s


cdef af_status _evaluate(af_net *net, floating[::1] ws, size_t chunk, const floating[:, ::1] x,
                         const floating[:, ::1] y, double *loss, double *correct,
                         double *sse) except *:
    cdef af_status s
    with nogil:
        if floating is float:
            s = af_net_evaluate_f32(net, &ws[0], ws.shape[0], chunk, x.shape[0], &x[0, 0], &y[0, 0],
                                    loss, correct, sse)
        else:
            s = af_net_evaluate_f64(net, &ws[0], ws.shape[0], chunk, x.shape[0], &x[0, 0], &y[0, 0],
                                    loss, correct, sse)
    return s


cdef af_status _gradients(af_net *net, floating[::1] ws, size_t chunk, const floating[:, ::1] x,
                          const floating[:, ::1] y, int training, uint64_t step,
                          double *loss) except *:
    cdef af_status s
    with nogil:
        if floating is float:
            s = af_net_gradients_f32(net, &ws[0], ws.shape[0], chunk, x.shape[0], &x[0, 0], &y[0, 0],
                                     training, step, loss)
        else:
            s = af_net_gradients_f64(net, &ws[0], ws.shape[0], chunk, x.shape[0], &x[0, 0], &y[0, 0],
                                     training, step, loss)
    return s
