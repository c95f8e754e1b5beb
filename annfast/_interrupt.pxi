# Ctrl-C during long C calls (csrc/interrupt.c): a temporary SIGINT handler sets the C stop flag,
# which the C loops poll between batches / epochs.


cdef class _SigintGuard:
    """Routes Ctrl-C to the C stop flag while a long C call runs (main thread only).

    Usage from a .pxi: g = _SigintGuard(); g.enter(); (nogil call); g.exit()
    exit() returns True if SIGINT arrived, so the caller raises KeyboardInterrupt.
    """
    cdef int installed

    def __cinit__(self):
        self.installed = 0

    cdef void enter(self):
        if _threading.current_thread() is _threading.main_thread():
            self.installed = af_sigint_install() == 1
            if self.installed:
                af_clear_stop()

    cdef bint exit(self):
        cdef bint seen = False
        if self.installed:
            seen = af_sigint_restore() == 1
            af_clear_stop()
            self.installed = 0
        return seen


cdef class FitGuard:
    """Context manager routing Ctrl-C to the C stop flag for a whole fit: a SIGINT during an
    epoch stops it between two batches; one during Python callbacks stops the next epoch before
    its first batch. `interrupted` tells whether a stop was requested (SIGINT or request_stop()),
    `sigint` whether it was Ctrl-C, which fit turns into KeyboardInterrupt once it has cleaned up."""
    cdef _SigintGuard guard
    cdef readonly bint interrupted
    cdef readonly bint sigint

    def __enter__(self):
        self.guard = _SigintGuard()
        self.guard.enter()
        self.interrupted = False
        self.sigint = False
        return self

    def __exit__(self, *exc):
        self.sigint = self.guard.exit()
        self.interrupted = self.sigint or self.interrupted
        af_clear_stop()  # also when no handler was installed (fit outside the main thread)
        return False

    def poll(self):
        """True if a stop was requested (SIGINT or request_stop()) since entering."""
        if af_stop_requested():
            self.interrupted = True
        return self.interrupted


def request_stop():
    """Ask running C loops to stop at their next clean point (as Ctrl-C does during fit)."""
    af_request_stop()
