"""Validated settings: attributes checked whenever they are assigned, in a constructor or later.

    class Dropout(Layer):
        rate = Setting(real(0.0, 1.0, hi_open=True))

``obj.rate = v`` runs the check with a label naming the class, the attribute and, for a layer in a
model, its position ("Dropout.rate (layers[2])"), and stores the checked value in obj.__dict__
under the same name (so copies and pickles are plain). frozen=True refuses any change once the
owner is built (sizes). Every accepted assignment advances a global generation number: a model
compares it before each C call and rebuilds its C description only when something changed
(Sequential._get_engine), so a setting changed after training is used by the next call.
"""
import math
import numbers
import threading

import numpy as np

_lock = threading.Lock()
_generation = 0


def generation():
    """Changes whenever any Setting of any object is assigned."""
    return _generation


def bump():
    """Advance the generation: for settings kept as properties rather than Setting descriptors
    (a model's loss)."""
    global _generation
    with _lock:
        _generation += 1


class Setting:
    """A data descriptor: check(value, label) -> stored value; after(obj) runs after a change."""

    def __init__(self, check, frozen=False, after=None, doc=None):
        self.check, self.frozen, self.after = check, frozen, after
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}") from None

    def __set__(self, obj, value):
        label = f"{type(obj).__name__}.{self.name}"
        where = getattr(obj, "_position", lambda: None)()
        if where:
            label += f" ({where})"
        if self.frozen and getattr(obj, "built", False):
            raise ValueError(f"{label} cannot change once the model is built (it sizes the weights); "
                             "build a new model with the new value")
        obj.__dict__[self.name] = self.check(value, label)
        if self.after is not None:
            self.after(obj)
        bump()


def _range(lo, hi, lo_open, hi_open):
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def real(lo=None, hi=None, lo_open=False, hi_open=False, none=False, none_value=None):
    """A check: a finite real number (not bool) in the range, returned as float. none=True
    accepts None and stores none_value. Errors give the label, the range and the value."""
    rng = _range(float(lo), None if hi is None else float(hi), lo_open, hi_open) if lo is not None else ""
    alt = " (or None)" if none and none_value is None else ""

    def check(value, label):
        if value is None and none:
            return none_value
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{label} must be a real number{alt}, got {type(value).__name__} {value!r}")
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{label} must be finite{' and ' + rng if rng else ''}{alt}, got {v}")
        if lo is not None and ((v <= lo if lo_open else v < lo) or
                               (hi is not None and (v >= hi if hi_open else v > hi))):
            raise ValueError(f"{label} must be {rng}{alt}, got {v}")
        return v
    return check


def integer(minimum):
    """A check: an int (Python or NumPy, not bool) >= minimum."""
    def check(value, label):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{label} must be an int, got {type(value).__name__} {value!r}")
        if value < minimum:
            raise ValueError(f"{label} must be >= {minimum}, got {value}")
        return int(value)
    return check


def boolean(value, label):
    """A check: a bool (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{label} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)
