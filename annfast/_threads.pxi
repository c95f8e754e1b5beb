# Thread policy and floating-point mode (csrc/pool.c, csrc/fpenv.c); see docs/threads.md.

cdef extern from "annfast.h" nogil:
    int af_pool_spin_us()
    int af_pool_set_busy_check(int on)
    int af_tune_enabled()
    void af_pool_stats(unsigned long out[5])
    unsigned long af_tune_ones()
    void af_tune_simulate(const double *one, const double *all, size_t n, unsigned char *modes)
    void af_num_threads_probe(int out[3])
    double af_core_round_trip_ns(long rounds) nogil
    void af_profile_enable(int on)
    int af_profile_row(size_t k, const char **name, double seconds[2], unsigned long calls[2])
    unsigned long af_fp_control_get()
    void af_fp_control_set(unsigned long v)


def thread_policy():
    """annfast's threading policy as a dict (see docs/threads.md).

    num_threads: threads per operation at most (set_num_threads); spin_us: how long idle workers
    spin before sleeping (ANNFAST_SPIN_US); busy_check: whether kernels fall back to one thread
    while the machine is crowded (ANNFAST_BUSY_CHECK); thread_tuning: whether training steps
    time one thread against all and keep the faster (ANNFAST_THREAD_TUNING);
    openmp_spin: the GOMP_SPINCOUNT annfast gave libgomp when it loaded, or None when the user's
    OMP_WAIT_POLICY / GOMP_SPINCOUNT were left in charge.

    >>> import annfast
    >>> sorted(annfast.thread_policy())
    ['busy_check', 'num_threads', 'openmp_spin', 'spin_us', 'thread_tuning']
    """
    from annfast import _omp_env
    return {
        "num_threads": af_threads_expected(af_threads_setting()),
        "spin_us": af_pool_spin_us(),
        "busy_check": bool(af_pool_set_busy_check(-1)),
        "thread_tuning": bool(af_tune_enabled()),
        "openmp_spin": _omp_env.applied,
    }


def _set_busy_check(on):
    """Switch busy-machine detection on or off (tests; ANNFAST_BUSY_CHECK=0 does it at start)."""
    af_pool_set_busy_check(1 if on else 0)


def _pool_stats():
    """Counters of the worker pool since the process started (csrc/pool.c): jobs run on several
    threads ("parallel"), jobs run (or GEMMs planned) on the calling thread alone because the
    machine was crowded ("crowded"), and crowded windows found by the preemption rate ("by_rate") or by repeated slow
    waits for the other threads ("by_slow_wait"); workers woken onto their submitter's CPU that moved
    off it ("moved", see docs/threads.md); training steps that ran on one thread because timing
    found it faster than all ("tuned_one", csrc/tune.h). Benchmarks print them
    next to their figures."""
    cdef unsigned long v[5]
    af_pool_stats(v)
    return {"parallel": v[0], "crowded": v[1], "by_rate": v[2], "by_slow_wait": v[3], "moved": v[4],
            "tuned_one": af_tune_ones()}


def _num_threads_probe():
    """(tests) The team size an OpenMP region would get now, on a step the thread timing runs
    alone, and inside a pool job's chunk: (threads, 1, 1) unless the machine looks crowded."""
    cdef int out[3]
    af_num_threads_probe(out)
    return out[0], out[1], out[2]


def _tune_simulate(one, all_):
    """The thread choice of csrc/tune.h on given times (tests): call i takes one[i] seconds on one
    thread or all_[i] on all of them; returns the modes chosen (0 one thread, 1 all) as uint8."""
    a = np.ascontiguousarray(one, dtype=np.float64)
    b = np.ascontiguousarray(all_, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"one and all_ must be 1-D of one length, got shapes {a.shape} and {b.shape}")
    cdef double[::1] av = a
    cdef double[::1] bv = b
    out = np.zeros(a.shape[0], dtype=np.uint8)
    cdef unsigned char[::1] ov = out
    if a.shape[0]:
        af_tune_simulate(&av[0], &bv[0], <size_t>a.shape[0], &ov[0])
    return out


def _core_round_trip_ns(rounds=20000):
    """Nanoseconds for a write on one core to be answered from another (csrc/corelat.c), or
    None where it cannot be measured (one CPU, pinning refused, a machine too busy). Benchmarks
    print it: hand-offs between threads cost this much, several times per training step."""
    cdef long r = rounds
    cdef double ns
    if r < 4:
        raise ValueError(f"rounds must be at least 4, got {rounds}")
    with nogil:
        ns = af_core_round_trip_ns(r)
    return None if ns < 0 else ns


def _profile(on=None, cpu_time=False):
    """Time per layer kind in the engine's passes (csrc/profile.c), for finding where a model's
    step goes: _profile(True) clears and starts (cpu_time: the calling thread's CPU time rather
    than the wall clock, for one thread on a busy machine), _profile(False) stops; either way (and
    with no argument) returns {kind: (forward s, backward s, forward calls, backward calls)}."""
    cdef const char *name
    cdef double sec[2]
    cdef unsigned long calls[2]
    cdef size_t k = 0
    if on is not None:
        af_profile_enable((2 if cpu_time else 1) if on else 0)
    out = {}
    while af_profile_row(k, &name, sec, calls):
        out[name.decode()] = (sec[0], sec[1], calls[0], calls[1])
        k += 1
    return out


def _fp_control(value=None):
    """The calling thread's MXCSR (x86) / FPCR (arm64) value, or 0 where unknown; with value,
    set it first (tests of the flush-to-zero scoping)."""
    if value is not None:
        af_fp_control_set(<unsigned long>value)
    return af_fp_control_get()
