"""Argument checks shared by the Python API. Every error names the argument, what was expected
and what was received; nothing is modified before all checks pass."""
import numbers

import numpy as np

from . import _core

_NUMERIC_KINDS = "iuf"


def check_int(value, name, minimum=None):
    """An integer (Python or NumPy, not bool) >= minimum; returned as int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(value, name, minimum=None, maximum=None, strict_min=False):
    """A finite real number (Python or NumPy, not bool), optionally bounded; returned as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def float_dtype(arr):
    """The engine dtype for arr's values: float32 for 4-byte floats in either byte order
    (as NumPy keeps float32 results float32), float64 for everything else."""
    return np.dtype(np.float32) if arr.dtype.kind == "f" and arr.dtype.itemsize == 4 \
        else np.dtype(np.float64)


def behaved(arr):
    """arr itself if C can read it as native numbers (native byte order, aligned), else an
    aligned native copy in the same memory order."""
    if arr.dtype.isnative and arr.flags.aligned:
        return arr
    return arr.astype(arr.dtype.newbyteorder("="), order="K")


def as_array(data, name, dtype=np.float64, allow_bool=False):
    """Convert array-like input to a C-contiguous, aligned, native-byte-order ndarray of `dtype`,
    rejecting non-numeric data.

    Never returns the caller's array when it would need to be written to: callers that write
    must copy. NaN/inf are rejected."""
    if data is None:
        raise TypeError(f"{name} must be an array of numbers, got None")
    if isinstance(data, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {type(data).__name__}")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from None
    kinds = _NUMERIC_KINDS + ("b" if allow_bool else "")
    if arr.dtype.kind not in kinds:
        if arr.dtype.kind == "O":
            if any(v is None or isinstance(v, (str, bytes, complex)) for v in arr.flat):
                raise TypeError(f"{name} must contain numbers only, got dtype object with None, "
                                f"str or complex entries")
            try:
                arr = arr.astype(np.float64)
            except OverflowError:
                raise ValueError(f"{name} holds an integer too large for float64") from None
            except (ValueError, TypeError):
                raise TypeError(f"{name} must contain numbers only, got dtype object "
                                f"with non-numeric entries") from None
        else:
            raise TypeError(f"{name} must have a real numeric dtype (int or float), "
                            f"got dtype {arr.dtype}")
    out, finite = _cast(arr, dtype, name)
    if not finite:
        raise ValueError(f"{name} contains NaN or inf; all values must be finite")
    return out


def _cast(arr, dtype, name):
    """(arr as a C-contiguous array of dtype, whether all of it is finite); a finite value
    that overflows dtype (1e39 in float32) is a ValueError saying so, not a silent inf."""
    dtype = np.dtype(dtype)
    if type(arr) is np.ndarray and arr.ndim and arr.dtype == dtype and dtype.isnative and \
            arr.flags.c_contiguous and arr.flags.aligned:
        out = arr            # nothing to convert (no overflow to silence)
    else:
        with np.errstate(over="ignore"):
            out = behaved(np.ascontiguousarray(arr, dtype=dtype))  # an unaligned input is copied here
    # a float array is scanned in C (as one row: out is C-contiguous), without a temporary
    if not out.size or (_core.all_finite(out.reshape(-1)) if out.dtype.kind == "f" else np.isfinite(out).all()):
        return out, True
    over = np.isfinite(arr) & ~np.isfinite(out)
    if over.any():
        idx = np.unravel_index(int(np.argmax(over)), out.shape)
        raise ValueError(f"{name} holds {arr[idx].item()!r} at index {tuple(map(int, idx))}, which "
                         f"overflows {out.dtype.name} (largest finite value "
                         f"{np.finfo(out.dtype).max:.6g})")
    return out, False


def cast_checked(arr, dtype, name):
    """arr (a numeric ndarray) converted to dtype, refusing finite values that overflow it;
    NaN and inf already in arr pass through unchanged."""
    return _cast(arr, dtype, name)[0]


def as_2d(data, name, n_cols=None, dtype=np.float64):
    """as_array, then require 2-D (a 1-D vector is one row) with n_cols columns if given."""
    arr = as_array(data, name, dtype)
    if arr.ndim == 1 and n_cols is not None and arr.shape[0] == n_cols:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_cols if n_cols is not None else 'n_features'}),"
                         f" got shape {arr.shape}")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns, got shape {arr.shape}")
    return arr
