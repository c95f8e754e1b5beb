# Boundary for the optimisers and gradient clipping (csrc/optim.c). fill_optim() is shared with
# the engine's .pxi (all topic files are one module); the def functions serve the optimiser
# classes' tests and direct use on flat float32/float64 vectors.
from libc.stdint cimport uint64_t
import numpy as _np

_OPT_KINDS = {"sgd": AF_OPT_SGD, "adagrad": AF_OPT_ADAGRAD, "rmsprop": AF_OPT_RMSPROP,
              "adadelta": AF_OPT_ADADELTA, "adam": AF_OPT_ADAM}
# Defaults for keys a config dict may omit (the optimiser classes always give every key).
_OPT_DEFAULTS = {"momentum": 0.0, "nesterov": False, "rho": 0.9, "beta1": 0.9, "beta2": 0.999,
                 "eps": 1e-8, "initial_accumulator": 0.0, "weight_decay": 0.0, "decoupled_wd": False}
_OPT_KEYS = frozenset(_OPT_DEFAULTS) | {"kind", "lr"}


cdef double _cfg_float(dict cfg, str key, double lo, double hi, bint lo_open, bint hi_open) except? -1.0:
    """cfg[key] (or its default) as a finite float in the interval; errors name the key."""
    v = cfg.get(key, _OPT_DEFAULTS.get(key))
    if type(v) is not float:  # a float is a real number: skip the ABC check (8 a call, 2 us)
        import numbers
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError("optimizer config %r must be a real number, got %s %r"
                            % (key, type(v).__name__, v))
    cdef double x = float(v)
    if not (x - x == 0.0):  # NaN or +-inf
        raise ValueError("optimizer config %r must be finite, got %r" % (key, x))
    if (x <= lo if lo_open else x < lo) or (x >= hi if hi_open else x > hi):
        raise ValueError("optimizer config %r must be in %s%g, %g%s, got %r"
                         % (key, "(" if lo_open else "[", lo, hi, ")" if hi_open else "]", x))
    return x


cdef bint _cfg_bool(dict cfg, str key) except -1:
    v = cfg.get(key, _OPT_DEFAULTS[key])
    if not isinstance(v, (bool, _np.bool_)) and v not in (0, 1):
        raise TypeError("optimizer config %r must be a bool, got %s %r" % (key, type(v).__name__, v))
    return bool(v)


cdef int fill_optim(af_optim *o, dict cfg) except -1:
    """Validate cfg (keys: kind, lr, momentum, nesterov, rho, beta1, beta2, eps,
    initial_accumulator, weight_decay, decoupled_wd; all but kind and lr optional) and fill *o."""
    if not isinstance(cfg, dict):
        raise TypeError("optimizer config must be a dict, got %s" % type(cfg).__name__)
    unknown = set(cfg) - _OPT_KEYS
    if unknown:
        raise ValueError("optimizer config has unknown keys %s; expected a subset of %s"
                         % (sorted(unknown), sorted(_OPT_KEYS)))
    if "kind" not in cfg or "lr" not in cfg:
        raise ValueError("optimizer config needs 'kind' and 'lr', got keys %s" % sorted(cfg))
    kind = cfg["kind"]
    if not isinstance(kind, str) or kind.lower() not in _OPT_KINDS:
        raise ValueError("optimizer config 'kind' must be one of %s, got %r"
                         % (sorted(_OPT_KINDS), kind))
    inf = float("inf")
    o.kind = _OPT_KINDS[kind.lower()]
    o.lr = _cfg_float(cfg, "lr", 0.0, inf, False, True)
    o.weight_decay = _cfg_float(cfg, "weight_decay", 0.0, inf, False, True)
    o.decoupled_wd = _cfg_bool(cfg, "decoupled_wd")
    o.momentum = _cfg_float(cfg, "momentum", 0.0, 1.0, False, True)
    o.nesterov = _cfg_bool(cfg, "nesterov")
    o.rho = _cfg_float(cfg, "rho", 0.0, 1.0, False, True)
    o.beta1 = _cfg_float(cfg, "beta1", 0.0, 1.0, False, True)
    o.beta2 = _cfg_float(cfg, "beta2", 0.0, 1.0, False, True)
    o.eps = _cfg_float(cfg, "eps", 0.0, inf, True, True)
    o.initial_accumulator = _cfg_float(cfg, "initial_accumulator", 0.0, inf, False, True)
    if o.nesterov and (o.kind != AF_OPT_SGD or o.momentum <= 0):
        raise ValueError("optimizer config 'nesterov' needs kind 'sgd' and momentum > 0, got kind %r, "
                         "momentum %r" % (kind, o.momentum))
    check_status(af_optim_check(o), "optimizer config")
    return 0


_TINY = {}  # dtype -> its smallest normal number (np.finfo is a few us a call)


cdef int check_eps_dtype(const af_optim *o, dtype) except -1:
    """eps must be a normal number of the dtype the step runs in: below it, float32 stores 0 (or a
    subnormal flushed to 0) and zero gradients give 0 / 0 (see optimizers.Optimizer.check_dtype)."""
    if o.kind == AF_OPT_SGD:
        return 0
    dtype = _np.dtype(dtype)
    tiny = _TINY.get(dtype)
    if tiny is None:
        tiny = _TINY[dtype] = _np.finfo(dtype).tiny
    if o.eps < tiny:
        kind = [k for k, v in _OPT_KINDS.items() if v == o.kind][0]
        raise ValueError("optimizer %r: eps=%r underflows in %s (its smallest normal number is %s)"
                         % (kind, o.eps, dtype.name, tiny))
    return 0


def optim_slots(dict cfg):
    """Number of state vectors (each as long as the parameters) the configuration uses."""
    cdef af_optim o
    fill_optim(&o, cfg)
    return af_optim_slots_used(&o)


cdef object _flat(a, str name, bint writable):
    """a as a 1-D float32/float64 vector C can use: read-only input in another byte order or
    misaligned is copied; arrays written in place must already be native and aligned."""
    if not isinstance(a, _np.ndarray):
        raise TypeError("%s must be a numpy.ndarray, got %s" % (name, type(a).__name__))
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        raise TypeError("%s must have dtype float32 or float64, got %s" % (name, a.dtype))
    if a.ndim != 1 or not a.flags.c_contiguous:
        raise ValueError("%s must be 1-D and C-contiguous, got shape %s" % (name, a.shape))
    if writable and not a.flags.writeable:
        raise ValueError("%s must be writable" % name)
    if not a.dtype.isnative or not a.flags.aligned:
        if writable:
            raise ValueError("%s is written in place and must be aligned and in native byte "
                             "order, got dtype %s %s" % (name, a.dtype.str,
                                                         "aligned" if a.flags.aligned else "unaligned"))
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def optim_step(cfg, param, grad, state, t):
    """One optimiser step in place: param and state are updated from grad.

    param, grad, state: 1-D C-contiguous arrays of one dtype (float32 or float64); state has
    optim_slots(cfg) * len(param) values (or af_optim_state_slots(kind) * len(param)),
    zero before step 1. t: the 1-based step count.

    >>> p = np.ones(3); optim_step({"kind": "sgd", "lr": 0.1}, p, np.ones(3), np.zeros(0), 1)
    """
    cdef af_optim o
    fill_optim(&o, cfg)
    import numbers
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
        raise ValueError("t must be an int >= 1 (the 1-based step count), got %r" % (t,))
    _flat(param, "param", True)
    grad = _flat(grad, "grad", False)
    _flat(state, "state", True)
    if grad.dtype != param.dtype or state.dtype != param.dtype:
        raise TypeError("param, grad and state must share one dtype, got %s, %s, %s"
                        % (param.dtype, grad.dtype, state.dtype))
    check_eps_dtype(&o, param.dtype)
    cdef Py_ssize_t n = param.shape[0]
    if grad.shape[0] != n:
        raise ValueError("grad must have shape (%d,) like param, got %s" % (n, grad.shape))
    used = af_optim_slots_used(&o)
    full = af_optim_state_slots(o.kind)
    if state.shape[0] not in (used * n, full * n):
        raise ValueError("state must have %d (or %d) values for %d parameters, got %d"
                         % (used * n, full * n, n, state.shape[0]))
    if _np.shares_memory(param, grad) or (state.shape[0] and (_np.shares_memory(state, param)
                                                             or _np.shares_memory(state, grad))):
        raise ValueError("param, grad and state must not overlap in memory")
    if n == 0:
        return
    cdef uint64_t tt = t
    if param.dtype == _np.float32:
        _step_f32(&o, param, grad, state, tt)
    else:
        _step_f64(&o, param, grad, state, tt)


cdef int _step_f32(af_optim *o, float[::1] p, const float[::1] g, float[::1] s, uint64_t t) except -1:
    cdef float *sp = &s[0] if s.shape[0] > 0 else NULL
    cdef af_status st
    with nogil:
        st = af_optim_step_f32(o, p.shape[0], &p[0], &g[0], sp, t)
    return check_status(st, "optim_step")


cdef int _step_f64(af_optim *o, double[::1] p, const double[::1] g, double[::1] s, uint64_t t) except -1:
    cdef double *sp = &s[0] if s.shape[0] > 0 else NULL
    cdef af_status st
    with nogil:
        st = af_optim_step_f64(o, p.shape[0], &p[0], &g[0], sp, t)
    return check_status(st, "optim_step")


def clip_value(g, limit):
    """Clip g in place to [-limit, limit] (limit > 0); NaN stays NaN."""
    _flat(g, "g", True)
    import numbers
    if isinstance(limit, bool) or not isinstance(limit, numbers.Real) or not (0 < limit < float("inf")):
        raise ValueError("limit must be a finite number > 0, got %r" % (limit,))
    cdef af_status st
    cdef float[::1] g32
    cdef double[::1] g64
    cdef double lim = limit
    if g.shape[0] == 0:
        return
    if g.dtype == _np.float32:
        g32 = g
        with nogil:
            st = af_clip_value_f32(g32.shape[0], &g32[0], <float>lim)
    else:
        g64 = g
        with nogil:
            st = af_clip_value_f64(g64.shape[0], &g64[0], lim)
    check_status(st, "clip_value")


def l2_norm(g):
    """Global L2 norm of a flat float32/float64 vector, summed in double in fixed-size chunks in
    a fixed order (identical for any thread count)."""
    g = _flat(g, "g", False)
    cdef const float[::1] g32
    cdef const double[::1] g64
    cdef double out = 0.0
    cdef af_status st = AF_OK
    if g.shape[0] == 0:
        return 0.0
    if g.dtype == _np.float32:
        g32 = g
        with nogil:
            st = af_l2_norm_f32(g32.shape[0], &g32[0], &out)
    else:
        g64 = g
        with nogil:
            st = af_l2_norm_f64(g64.shape[0], &g64[0], &out)
    check_status(st, "l2_norm")
    return out


def clip_norm(g, max_norm):
    """Scale g in place so its global L2 norm is at most max_norm; returns the norm before."""
    _flat(g, "g", True)
    import numbers
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) \
            or not (0 < max_norm < float("inf")):
        raise ValueError("max_norm must be a finite number > 0, got %r" % (max_norm,))
    cdef float[::1] g32
    cdef double[::1] g64
    cdef double mn = max_norm, norm = 0.0
    cdef af_status st
    if g.shape[0] == 0:
        return 0.0
    if g.dtype == _np.float32:
        g32 = g
        with nogil:
            st = af_clip_norm_f32(g32.shape[0], &g32[0], mn, &norm)
    else:
        g64 = g
        with nogil:
            st = af_clip_norm_f64(g64.shape[0], &g64[0], mn, &norm)
    check_status(st, "clip_norm")
    return norm
