# Build and runtime configuration: ISA choice, threads, CPU features.

af_init()

_ISA_BY_NAME = {"generic": AF_ISA_GENERIC, "avx2": AF_ISA_AVX2, "avx512": AF_ISA_AVX512}


def _warn_unusable_isa_env():
    """ANNFAST_ISA naming a path this CPU/build cannot run is ignored by the C side (the best
    path is used); say so loudly instead of silently."""
    import os
    import warnings
    want = os.environ.get("ANNFAST_ISA", "").strip().lower()
    if not want or want == "auto":
        return
    if want not in _ISA_BY_NAME:
        warnings.warn("ANNFAST_ISA=%r is not one of auto, generic, avx2, avx512; using %s"
                      % (want, af_isa_name(af_get_isa()).decode()), RuntimeWarning, stacklevel=2)
    elif not af_cpu_has(_ISA_BY_NAME[want]):
        warnings.warn("ANNFAST_ISA=%s is not supported by this CPU/build; using %s"
                      % (want, af_isa_name(af_get_isa()).decode()), RuntimeWarning, stacklevel=2)


_warn_unusable_isa_env()


def _warn_capped_env_threads():
    """A thread count from ANNFAST_NUM_THREADS / OMP_NUM_THREADS above the CPUs is capped by
    the C side (cpu.c, same parsing: the first variable holding an int in [1, 4095] counts)."""
    import os
    import warnings
    for var in ("ANNFAST_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if not v.isdigit() or not 0 < int(v) < 4096:
            continue
        if int(v) > af_num_procs():
            warnings.warn("%s=%s: capped at %d, the number of CPUs available to this process"
                          % (var, v, af_num_procs()), RuntimeWarning, stacklevel=2)
        return


_warn_capped_env_threads()


def build_info():
    """Return a dict describing this build and machine (used by annfast.show_config)."""
    cdef char buf[256]
    af_cpu_features(buf, sizeof(buf))
    return {
        "compiler": af_compiler().decode(),
        "openmp": bool(af_openmp_enabled()),
        "num_threads": af_threads_expected(af_threads_setting()),
        "num_procs": af_num_procs(),
        "cpu_features": buf.decode().split(),
        "isa": af_isa_name(af_get_isa()).decode(),
        "best_isa": af_isa_name(af_best_isa()).decode(),
        "supported_isas": [n for n, v in _ISA_BY_NAME.items() if af_cpu_has(v)],
    }


def set_isa(name):
    """Force the kernel path: 'generic', 'avx2', 'avx512', or 'auto' for the best available.

    Every kernel then runs that path's code (one table per path, chosen here). Call it between
    computations: a call running in another thread at the time could mix the two paths.

    >>> annfast.set_isa("generic")   # the portable C path, e.g. to compare results
    >>> annfast.set_isa("auto")      # back to the best path
    """
    if not isinstance(name, str):
        raise TypeError("isa must be a str ('auto', 'generic', 'avx2' or 'avx512'), got %s"
                        % type(name).__name__)
    key = name.lower()
    if key == "auto":
        af_set_isa(af_best_isa())
        return
    if key not in _ISA_BY_NAME:
        raise ValueError("isa must be one of 'auto', 'generic', 'avx2', 'avx512'; got %r" % name)
    if af_set_isa(_ISA_BY_NAME[key]) != AF_OK:
        raise ValueError("isa %r is not supported by this CPU/build; supported: %s"
                         % (name, ", ".join(build_info()["supported_isas"])))


def get_isa():
    """Name of the kernel path in use ('generic', 'avx2' or 'avx512')."""
    return af_isa_name(af_get_isa()).decode()


def set_num_threads(n):
    """Set the number of OpenMP threads annfast uses (results do not depend on it).

    More threads than the CPUs available are capped at that number (RuntimeWarning). Where
    threads cannot start, annfast computes on one thread instead, with a RuntimeWarning: in a
    process created by fork() after annfast ran parallel code (libgomp's pool does not survive
    fork; use the 'spawn' or 'forkserver' start method for parallel workers), and where creating
    the worker threads fails (process-count or address-space limits)."""
    import numbers
    import warnings
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError("n must be a positive int, got %s" % type(n).__name__)
    if n < 1 or n > 4096:
        raise ValueError("n must be between 1 and 4096, got %d" % n)
    if n > af_num_procs():
        warnings.warn("set_num_threads(%d): capped at %d, the number of CPUs available to this "
                      "process" % (n, af_num_procs()), RuntimeWarning, stacklevel=2)
    af_set_num_threads(<int>n)
    cdef int want = af_threads_setting()
    if want <= 1:
        return
    if af_threads_forked():
        warnings.warn("this process was created by fork() from one that had run annfast's "
                      "parallel code: OpenMP threads cannot start here, annfast computes on 1 "
                      "thread (use the 'spawn' or 'forkserver' start method for parallel "
                      "workers)", RuntimeWarning, stacklevel=2)
    elif af_threads_probe(want) < want:
        warnings.warn("could not start %d threads (thread creation failed: process-count or "
                      "memory limits?); annfast computes on 1 thread" % want, RuntimeWarning,
                      stacklevel=2)


def get_num_threads():
    """Number of OpenMP threads annfast's next parallel computation in this thread uses: the
    set count, or 1 where threads cannot start (see set_num_threads; 1 without OpenMP)."""
    return af_threads_expected(af_threads_setting())
