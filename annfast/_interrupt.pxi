# Stopping training: per-call stop tokens (csrc/interrupt.c) and Ctrl-C.
#
# FitGuard opens a training loop (a whole fit) in the calling thread and owns its stop token.
# _SigintGuard wraps each C call of the loop: it binds that token to the thread for the call and,
# in the main thread when Python's SIGINT handler is the default one, routes Ctrl-C to it. So:
# - an ignored SIGINT (SIG_IGN) or a handler of the user's stays in charge (the user's handler
#   runs between C calls, as Python runs handlers while C holds the thread);
# - Python callbacks run under Python's own handler: Ctrl-C raises KeyboardInterrupt there;
# - Ctrl-C stops the main thread's call only, request_stop() the calling thread's loop only.
import signal as _signal
import _signal as _csignal   # its getsignal without signal.getsignal's enum conversion (us a call)
from cpython.exc cimport PyErr_CheckSignals

_scopes = _threading.local()   # .stack: this thread's open FitGuards, innermost last


cdef class FitGuard:
    """Context manager around one training loop in the calling thread (Sequential.fit, an
    estimator's fit). Its C calls see this loop's stop token, set by request_stop() from the
    same thread (a callback, a SIGINT handler of your own) or by Ctrl-C during a C call; the
    loop then stops between two batches. interrupted: a stop was requested; sigint: by Ctrl-C
    (fit turns that into KeyboardInterrupt once it has cleaned up)."""
    cdef af_stop_token token

    def __enter__(self):
        self.token.stop = 0
        self.token.sigint = 0
        stack = _scopes.__dict__.setdefault("stack", [])
        stack.append(self)
        return self

    def __exit__(self, *exc):
        stack = _scopes.stack
        if stack[len(stack) - 1] is self:
            stack.pop()
        else:
            stack.remove(self)
        return False

    @property
    def interrupted(self):
        return self.token.stop != 0

    @property
    def sigint(self):
        return self.token.sigint != 0

    def poll(self):
        """True if a stop was requested (request_stop() or Ctrl-C) since entering."""
        return self.token.stop != 0


cdef FitGuard _current_scope():
    stack = getattr(_scopes, "stack", None)
    return stack[len(stack) - 1] if stack else None


def request_stop():
    """Stop the training loop running in the calling thread (Sequential.fit or an annfast.sklearn
    estimator's fit) at its next clean point between two batches: fit returns normally with
    model.interrupted set (Ctrl-C stops it the same way but raises KeyboardInterrupt). Call it
    from a callback, or from a SIGINT handler of your own (it runs in the main thread, between
    C calls). Other threads' training is not affected. Returns True if a loop of this thread was
    asked to stop, False if none is running (then nothing happens)."""
    cdef FitGuard scope = _current_scope()
    if scope is None:
        return False
    scope.token.stop = 1
    return True


cdef class _SigintGuard:
    """Around ONE C call that polls the stop token:

        g = _SigintGuard(); g.enter()
        try: (nogil call)
        finally: sigint = g.exit()

    enter() binds the token of this thread's innermost FitGuard (else one of the guard's own) and,
    in the main thread when Python's SIGINT handler is signal.default_int_handler, installs the
    engine's handler. exit() undoes both and returns True if SIGINT arrived meanwhile (the bound
    token is then marked stop + sigint)."""
    cdef af_stop_token own
    cdef af_stop_token *prev
    cdef readonly FitGuard scope   # keeps the bound token alive while it is bound
    cdef bint bound, installed

    cdef int enter(self) except -1:
        self.scope = _current_scope()
        self.own.stop = self.own.sigint = 0
        self.prev = af_stop_bind(&self.scope.token if self.scope is not None else &self.own)
        self.bound = True
        if (_threading.current_thread() is _threading.main_thread()
                and _csignal.getsignal(_csignal.SIGINT) is _csignal.default_int_handler):
            self.installed = af_sigint_install() == 1
            if self.installed:
                try:
                    PyErr_CheckSignals()   # a Ctrl-C Python caught just before: raise it now
                except BaseException:
                    self.exit()
                    raise
        return 0

    cdef bint exit(self):
        cdef bint seen = False
        if self.installed:
            seen = af_sigint_restore() == 1
            self.installed = False
        if self.bound:
            af_stop_bind(self.prev)
            self.bound = False
        return seen
