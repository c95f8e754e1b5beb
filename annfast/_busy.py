"""One call at a time per model: a second thread entering a model that is inside a call gets a
clear RuntimeError instead of racing on its buffers. The owning thread may re-enter (fit calls
evaluate; callbacks call get_weights/set_weights). Different models run in parallel.
(The registry lives outside the model object so models stay copyable and picklable.)"""
import contextlib
import functools
import threading

_owners = {}                 # id(model) -> [thread ident, depth]
_lock = threading.Lock()


@contextlib.contextmanager
def exclusive(obj):
    """Hold `obj` for the with-block, or raise RuntimeError if another thread holds it."""
    key, me = id(obj), threading.get_ident()
    with _lock:
        owner = _owners.get(key)
        if owner is not None and owner[0] != me:
            raise RuntimeError(f"this {type(obj).__name__} is already running a call in another thread; "
                               "use one model per thread (different models run in parallel)")
        if owner is None:
            _owners[key] = owner = [me, 0]
        owner[1] += 1
    try:
        yield obj
    finally:
        with _lock:
            owner[1] -= 1
            if owner[1] == 0:
                del _owners[key]


def exclusive_method(fn):
    """Decorator: run a model method under exclusive(self)."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        with exclusive(self):
            return fn(self, *args, **kwargs)
    return wrapper
