# Thread policy and floating-point mode (csrc/pool.c, csrc/fpenv.c); see docs/threads.md.

cdef extern from "annfast.h" nogil:
    int af_pool_spin_us()
    int af_pool_set_busy_check(int on)
    unsigned long af_fp_control_get()
    void af_fp_control_set(unsigned long v)


def thread_policy():
    """annfast's threading policy as a dict (see docs/threads.md).

    num_threads: threads per operation at most (set_num_threads); spin_us: how long idle workers
    spin before sleeping (ANNFAST_SPIN_US); busy_check: whether kernels fall back to one thread
    while the machine is crowded (ANNFAST_BUSY_CHECK); openmp_spin: the GOMP_SPINCOUNT annfast
    gave libgomp when it loaded, or None when the user's OMP_WAIT_POLICY / GOMP_SPINCOUNT were
    left in charge.

    >>> import annfast
    >>> sorted(annfast.thread_policy())
    ['busy_check', 'num_threads', 'openmp_spin', 'spin_us']
    """
    from annfast import _omp_env
    return {
        "num_threads": af_get_num_threads(),
        "spin_us": af_pool_spin_us(),
        "busy_check": bool(af_pool_set_busy_check(-1)),
        "openmp_spin": _omp_env.applied,
    }


def _set_busy_check(on):
    """Switch busy-machine detection on or off (tests; ANNFAST_BUSY_CHECK=0 does it at start)."""
    af_pool_set_busy_check(1 if on else 0)


def _fp_control(value=None):
    """The calling thread's MXCSR (x86) / FPCR (arm64) value, or 0 where unknown; with value,
    set it first (tests of the flush-to-zero scoping)."""
    if value is not None:
        af_fp_control_set(<unsigned long>value)
    return af_fp_control_get()
