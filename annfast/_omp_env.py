"""The spin-wait of OpenMP worker threads, bounded for annfast unless the user chose one.

annfast's kernels run on its own worker pool (csrc/pool.c); a few engine loops still use OpenMP.
libgomp's idle workers spin about 300000 PAUSE iterations (~10 ms here) after each parallel loop
before sleeping: on a busy machine they take cores from annfast's own workers and from other
programs. libgomp reads GOMP_SPINCOUNT / OMP_WAIT_POLICY once, when the library is loaded, so
annfast sets a short spin (about 0.1 ms) in the environment while its extension (and with it
libgomp) loads, then puts the environment back as it was: child processes, and OpenMP runtimes
loaded later (PyTorch's, scikit-learn's), see the user's settings. When the user has set
OMP_WAIT_POLICY or GOMP_SPINCOUNT, or libgomp was already loaded by another module, nothing
changes. See docs/threads.md.
"""
import contextlib
import os

#: PAUSE iterations an idle OpenMP worker spins before sleeping (~35 ns each on current x86).
GOMP_SPINCOUNT = "3000"
#: The value given to libgomp when annfast loaded, or None when the user's settings applied.
applied = None


@contextlib.contextmanager
def bounded_openmp_spin():
    """Set GOMP_SPINCOUNT for the duration of the block when the user has set neither it nor
    OMP_WAIT_POLICY; restore the environment afterwards."""
    global applied
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT
    applied = int(GOMP_SPINCOUNT)
    try:
        yield
    finally:
        os.environ.pop("GOMP_SPINCOUNT", None)
