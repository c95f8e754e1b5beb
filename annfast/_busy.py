"""One call at a time per model: a per-model re-entrant lock that makes a second thread WAIT.

A thread entering a model that another thread is using blocks until that call returns, so calls
from several threads run one after the other, with the results of running them in sequence (two
concurrent fit(epochs=3) take all 6 epochs; gradients() copies its result out before the model is
released; save() writes the state after the running call). The owning thread may re-enter: fit
calls evaluate, callbacks call get_weights/set_weights/evaluate/save. Different models run in
parallel.

A wait that would close a cycle (thread 1 holds model A and waits for B while thread 2 holds B
and asks for A, e.g. from callbacks) raises RuntimeError in the thread that would close it,
instead of deadlocking; waits that go through something else (a callback joining a thread that
uses the model) cannot be seen and do deadlock.

The bookkeeping lives here, keyed by id(model) and present only while a call runs, so the model
objects carry no lock: they stay copyable and picklable.
"""
import functools
import threading
from contextlib import contextmanager

from . import _core

_lock = threading.Lock()
_cond = threading.Condition(_lock)   # entered through _lock itself: the C-level with, not
                                     # Condition's Python __enter__/__exit__ (every model call)
_owners = {}     # id(model) -> [owning thread ident, depth]; only while a call runs
_waiting = {}    # thread ident -> id(model) it waits for


def _would_deadlock(key, me):
    """True if waiting for `key` closes a cycle: its owner waits (transitively) for a model `me`
    holds. Called with _cond held."""
    seen = set()
    while key in _owners:
        owner = _owners[key][0]
        if owner == me:
            return True
        if owner in seen:
            return False
        seen.add(owner)
        key = _waiting.get(owner)
        if key is None:
            return False
    return False


def _acquire_slow(obj):
    """acquire's path when another thread holds `obj`: wait for it (or refuse a deadlock)."""
    key, me = id(obj), threading.get_ident()
    with _lock:
        while True:
            owner = _owners.get(key)
            if owner is None:
                _owners[key] = [me, 1]
                return
            if owner[0] == me:
                owner[1] += 1
                return
            if _would_deadlock(key, me):
                raise RuntimeError(
                    f"deadlock: this thread holds a model that the thread running a call on this "
                    f"{type(obj).__name__} is waiting for; do not call one model from another "
                    "model's callbacks while both are used from different threads")
            _waiting[me] = key
            try:
                _cond.wait()
            finally:
                del _waiting[me]


# acquire(obj): take `obj` for the calling thread, waiting while another thread holds it (the
# free and re-entered cases in C, _core._busy_acquire; the waits in _acquire_slow above).
# release(obj): give it back. Both on this module's lock and tables.
_core._busy_bind(_lock, _cond, _owners, _waiting, _acquire_slow)
acquire = _core._busy_acquire
release = _core._busy_release


@contextmanager
def exclusive(obj):
    """Hold `obj` for the with-block (waiting for another thread's call on it to finish)."""
    acquire(obj)
    try:
        yield obj
    finally:
        release(obj)


def exclusive_method(fn):
    """Decorator: run a model method while holding the model (see the module docstring)."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        acquire(self)
        try:
            return fn(self, *args, **kwargs)
        finally:
            release(self)
    return wrapper
