"""One call at a time per model: a second thread entering a model that is inside a C call gets a
clear RuntimeError instead of racing on its buffers. Different models run in parallel.
(Kept outside the model object so models stay copyable and picklable.)"""
import contextlib
import threading

_busy = set()
_lock = threading.Lock()


@contextlib.contextmanager
def exclusive(obj):
    """Hold `obj` for the duration of the with-block, or raise RuntimeError if another thread does."""
    key = id(obj)
    with _lock:
        if key in _busy:
            raise RuntimeError(f"this {type(obj).__name__} is already running a call in another thread; "
                               "use one model per thread (different models run in parallel)")
        _busy.add(key)
    try:
        yield obj
    finally:
        with _lock:
            _busy.discard(key)
