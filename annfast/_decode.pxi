# Boundary for greedy decoding of sequence-to-sequence graphs (csrc/decode.h): runs on a
# GraphEngine's inference plan with the GIL released and the engine's lock held.
from libc.stdint cimport int32_t

from annfast._buffers import aligned_zeros as _aligned_zeros

cdef extern from "decode.h" nogil:
    enum:
        AF_DECODE_AUTO
        AF_DECODE_RECOMPUTE
    ctypedef struct af_decode_args:
        size_t target_input
        size_t output
        int32_t start_token
        int32_t end_token
        size_t max_len
        int mode
    size_t af_plan_cache_len(const af_plan *p)
    af_status af_graph_decode_check(const af_graph *g, const af_plan *p, const af_decode_args *da,
                                    int *incremental)
    af_status af_graph_greedy_decode_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                         float *cache, size_t cache_len, const af_data *d,
                                         const af_decode_args *da, int32_t *tgt, int32_t *tokens,
                                         float *scores, int *incremental)
    af_status af_graph_greedy_decode_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                         double *cache, size_t cache_len, const af_data *d,
                                         const af_decode_args *da, int32_t *tgt, int32_t *tokens,
                                         double *scores, int *incremental)


def graph_decode_incremental(GraphEngine eng, Py_ssize_t target_input, Py_ssize_t output):
    """True if the graph decodes one position at a time (every decoder node can), else False."""
    cdef af_decode_args da
    cdef int inc = 0
    cdef _Plan box = eng.plan(1)
    memset(&da, 0, sizeof(da))
    da.target_input = target_input
    da.output = output
    da.max_len = 1
    da.mode = AF_DECODE_AUTO
    check_status(af_graph_decode_check(&eng.g, box.p, &da, &inc), "greedy_decode")
    return bool(inc)


def graph_greedy_decode(GraphEngine eng, list xs, Py_ssize_t target_input, Py_ssize_t output,
                        int start_token, int end_token, Py_ssize_t max_len, Py_ssize_t chunk,
                        bint recompute, bint want_scores=False):
    """(tokens (n x max_len) int32, scores (n x max_len x V) or None, incremental used) for the
    inputs xs (the target input's entry is replaced by the decoder's token buffer)."""
    cdef af_data d
    cdef af_decode_args da
    cdef af_status s
    cdef int inc = 0
    cdef _Plan box = eng.plan(chunk)
    n = xs[target_input].shape[0]
    cdef af_node_info inf
    af_plan_node_info(box.p, eng.g.inputs[target_input], &inf)
    tgt = _np.zeros((n, inf.out.dim[0]), dtype=_np.int32)
    xs = list(xs)
    xs[target_input] = tgt
    eng._data(box, xs, None, &d)
    tokens = _np.zeros((n, max_len), dtype=_np.int32)
    af_plan_node_info(box.p, eng.g.outputs[output], &inf)
    scores = _np.zeros((n, max_len, inf.out.dim[1]), dtype=eng.dtype) if want_scores else None
    cdef void *sp = cnp.PyArray_DATA(scores) if want_scores else NULL
    memset(&da, 0, sizeof(da))
    da.target_input = target_input
    da.output = output
    da.start_token = start_token
    da.end_token = end_token
    da.max_len = max_len
    da.mode = AF_DECODE_RECOMPUTE if recompute else AF_DECODE_AUTO
    cache = _aligned_zeros(af_plan_cache_len(box.p), eng.dtype)
    eng._bind()
    cdef void *ws = cnp.PyArray_DATA(box.ws)
    cdef size_t wl = box.ws.shape[0]
    cdef void *cp = cnp.PyArray_DATA(cache) if cache.shape[0] else NULL
    cdef size_t cl = cache.shape[0]
    cdef int32_t *tp = <int32_t *>cnp.PyArray_DATA(tgt)
    cdef int32_t *kp = <int32_t *>cnp.PyArray_DATA(tokens)
    if n == 0:
        return tokens, scores, True
    with eng._lock:
        if eng.dtype == _np.float32:
            with nogil:
                s = af_graph_greedy_decode_f32(&eng.g, box.p, <float *>ws, wl, <float *>cp, cl, &d, &da,
                                               tp, kp, <float *>sp, &inc)
        else:
            with nogil:
                s = af_graph_greedy_decode_f64(&eng.g, box.p, <double *>ws, wl, <double *>cp, cl, &d, &da,
                                               tp, kp, <double *>sp, &inc)
    check_status(s, "greedy_decode")
    return tokens, scores, bool(inc)


# ---- scikit-learn's epoch order, drawn in C --------------------------------------------------
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid

cdef int _mt_layout_ok = -1  # NumPy's MT19937 state is {uint32 key[624]; int pos}: checked once


cdef bitgen_t *_bitgen_of(rs):
    """The bit generator of a plain numpy.random.RandomState, or NULL."""
    if type(rs) is not _np.random.RandomState:
        return NULL
    capsule = getattr(getattr(rs, "_bit_generator", None), "capsule", None)
    if capsule is None or not PyCapsule_IsValid(capsule, b"BitGenerator"):
        return NULL
    return <bitgen_t *>PyCapsule_GetPointer(capsule, b"BitGenerator")


cdef void _shuffle_with(uint64_t[::1] x, bitgen_t *g, bint mt) noexcept nogil:
    if mt:
        af_shuffle_mt19937(&x[0], x.shape[0], <uint32_t *>g.state, <int *>(<uint32_t *>g.state + 624))
    else:
        af_shuffle_like_numpy(&x[0], x.shape[0], g.next_uint32, g.next_uint64, g.state)


cdef bint _mt_inline_ok():
    """Whether af_shuffle_mt19937 reads NumPy's MT19937 state as NumPy does: the same shuffle
    of 5000 values from the same seed, and the same draw after it (so the state was left as
    NumPy leaves it), as NumPy's own shuffle."""
    global _mt_layout_ok
    if _mt_layout_ok < 0:
        ref, ours = _np.random.RandomState(20261203), _np.random.RandomState(20261203)
        perm = _np.arange(5000)
        ref.shuffle(perm)
        x = _np.arange(5000, dtype=_np.uint64)
        g = _bitgen_of(ours)
        if g != NULL and type(ours._bit_generator) is _np.random.MT19937:
            _shuffle_with(x, g, True)
            _mt_layout_ok = int(_np.array_equal(x, perm) and ref.randint(1 << 30) == ours.randint(1 << 30))
        else:
            _mt_layout_ok = 0
    return _mt_layout_ok == 1


def shuffle_like_numpy(uint64_t[::1] x, rs):
    """Permute x in place as `perm = arange(n); rs.shuffle(perm); x[:] = x[perm]` would, with
    the same draws from rs (a numpy.random.RandomState), in C: an inlined MT19937 on NumPy's
    own state (checked once against NumPy), else through the bit generator's C functions.
    Returns False, touching neither x nor rs, when rs is not a plain RandomState with a bit
    generator capsule (the caller then shuffles in Python)."""
    cdef bitgen_t *g = _bitgen_of(rs)
    if g == NULL:
        return False
    if x.shape[0] < 2:
        return True
    bg = rs._bit_generator
    cdef bint mt = type(bg) is _np.random.MT19937 and x.shape[0] < (1 << 32) and _mt_inline_ok()
    with bg.lock:  # as RandomState.shuffle holds it
        with nogil:
            _shuffle_with(x, g, mt)
    return True


def shuffle_mt_inline_ok():
    """Whether shuffle_like_numpy draws MT19937 inline (NumPy's state layout checked) here."""
    return bool(_mt_inline_ok())
