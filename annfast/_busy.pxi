# The uncontended paths of annfast/_busy.py's per-model lock, compiled: taking a free model (or
# one this thread holds) and giving it back. They work on _busy.py's own lock and tables (bound
# once by _busy.py), and leave every wait, and the deadlock check, to _busy.py's Python code. In
# Python the pair cost 0.7 us, a third of a small model's batch-1 predict.
from cpython.pythread cimport PyThread_get_thread_ident

cdef object _b_lock = None     # _busy._lock's acquire and release (bound methods: entering the
cdef object _b_unlock = None   # lock with a with-statement cost as much as the rest)
cdef object _b_cond = None     # _busy._cond, a Condition on that lock
cdef dict _b_owners = None     # id(model) -> [owning thread ident, depth]
cdef dict _b_waiting = None    # thread ident -> id(model) it waits for
cdef object _b_wait = None     # _busy._acquire_slow(obj): the waiting path


def _busy_bind(lock, cond, dict owners, dict waiting, wait):
    """Called once by annfast._busy with its lock, condition, tables and waiting path."""
    global _b_lock, _b_unlock, _b_cond, _b_owners, _b_waiting, _b_wait
    _b_lock, _b_unlock, _b_cond = lock.acquire, lock.release, cond
    _b_owners, _b_waiting, _b_wait = owners, waiting, wait


def _busy_acquire(obj):
    """_busy.acquire: take obj for the calling thread, waiting (in Python) while another holds it."""
    key = id(obj)
    me = PyThread_get_thread_ident()
    _b_lock()
    try:
        owner = _b_owners.get(key)
        if owner is None:
            _b_owners[key] = [me, 1]
            return
        if (<list>owner)[0] == me:
            (<list>owner)[1] += 1
            return
    finally:
        _b_unlock()
    _b_wait(obj)


def _busy_release(obj):
    """_busy.release: give obj back (the last release of a nested hold frees it)."""
    key = id(obj)
    _b_lock()
    try:
        owner = <list>_b_owners[key]
        owner[1] -= 1
        if owner[1] == 0:
            del _b_owners[key]
            if _b_waiting:   # nobody waits (the common case): notify_all's Python code is skipped
                _b_cond.notify_all()
    finally:
        _b_unlock()
