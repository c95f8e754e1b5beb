"""Inputs and targets of a model as the C engine takes them: one C-contiguous array per model
input (the model's float type, or int32 token ids) and per output (targets in the model's float
type), checked against the per-sample shapes, with messages naming the argument."""
import numpy as np

from . import losses as _losses
from ._validate import as_array

_INT32 = np.iinfo(np.int32)


def _sample_shape_str(shape):
    return "(n_samples, " + ", ".join(map(str, shape)) + ")"


def float_input(x, name, shape, dtype):
    """One float input: (n,) + shape; a single sample of a vector input may come as 1-D."""
    arr = as_array(x, name, dtype)
    if arr.ndim == 1 and len(shape) == 1 and arr.shape[0] == shape[0]:
        arr = arr.reshape(1, -1)
    if arr.ndim == 1 and shape == (1,):
        arr = arr.reshape(-1, 1)
    if arr.shape[1:] != tuple(shape):
        if len(shape) == 1:
            raise ValueError(f"{name} must be 2-D (n_samples, {shape[0]}) with {shape[0]} columns, "
                             f"got shape {arr.shape}")
        raise ValueError(f"{name} must have shape {_sample_shape_str(shape)}, got {arr.shape}")
    return arr


def int_input(x, name, shape):
    """Token ids: any integer array (or integral floats are refused: ids must be integers)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":     # bool: 0/1 masks (attention masks)
        raise TypeError(f"{name} must hold integer token ids (an integer dtype), got dtype {arr.dtype}")
    if arr.ndim == len(shape) and arr.shape == tuple(shape):
        arr = arr.reshape((1,) + arr.shape)
    if arr.shape[1:] != tuple(shape):
        raise ValueError(f"{name} must have shape {_sample_shape_str(shape)}, got {arr.shape}")
    if arr.size and (arr.min() < _INT32.min or arr.max() > _INT32.max):
        raise ValueError(f"{name} holds ids outside the int32 range")
    return np.ascontiguousarray(arr, dtype=np.int32)


def inputs_list(X, input_layers, dtype, name="X"):
    """The model's input arrays from X: one array (one input), a list in input order, or a dict
    by input name."""
    n = len(input_layers)
    if isinstance(X, dict):
        names = [layer.name for layer in input_layers]
        unknown = sorted(set(X) - set(names))
        missing = [k for k in names if k not in X]
        if unknown or missing:
            raise ValueError(f"{name} as a dict must have the keys {names}; "
                             f"{'unknown ' + str(unknown) if unknown else 'missing ' + str(missing)}")
        X = [X[k] for k in names]
    elif n == 1 and not (isinstance(X, (list, tuple)) and len(X) == 1 and isinstance(X[0], np.ndarray)):
        X = [X]   # one input: X is its data (a nested list of numbers included)
    if not isinstance(X, (list, tuple)) or len(X) != n:
        got = len(X) if isinstance(X, (list, tuple)) else type(X).__name__
        raise ValueError(f"the model has {n} inputs: give {name} as a list of {n} arrays "
                         f"(or a dict by input name), got {got}")
    out = []
    for k, (x, layer) in enumerate(zip(X, input_layers)):
        what = name if n == 1 else f"{name}[{k}] ({layer.name})"
        out.append(int_input(x, what, layer.shape) if layer.is_int
                   else float_input(x, what, layer.shape, dtype))
    rows = {a.shape[0] for a in out}
    if len(rows) > 1:
        raise ValueError(f"the arrays of {name} must have the same number of samples, got "
                         f"{[a.shape[0] for a in out]}")
    return out


def prepare_targets(loss, y, out_shape, dtype, argname="y"):
    """Targets of one output of per-sample shape out_shape: (n,) + out_shape, or class indices
    (n,) + out_shape[:-1] for the sparse loss (a trailing axis of 1 is accepted)."""
    if len(out_shape) == 1:
        return _losses.prepare_targets(loss, y, out_shape[0], dtype, argname)
    lead, n_cls = tuple(out_shape[:-1]), out_shape[-1]
    if loss == "sparse_categorical_crossentropy":
        arr = as_array(y, argname, np.float64, allow_bool=True)
        if arr.shape[1:] == lead + (1,):
            arr = arr.reshape(arr.shape[:-1])
        if arr.shape[1:] != lead:
            raise ValueError(f"{argname} must hold class indices of shape {_sample_shape_str(lead)} for "
                             f"sparse_categorical_crossentropy, got shape {arr.shape}")
        if arr.size and (np.any(arr != np.round(arr)) or arr.min() < 0 or arr.max() >= n_cls):
            raise ValueError(f"{argname} must hold integer class indices in [0, {n_cls}), got values in "
                             f"[{arr.min()}, {arr.max()}]")
        return np.ascontiguousarray(arr, dtype=dtype)
    arr = as_array(y, argname, np.float64, allow_bool=True)
    if arr.shape[1:] != tuple(out_shape):
        raise ValueError(f"{argname} must have shape {_sample_shape_str(out_shape)}, got {arr.shape}")
    # the value checks of the loss (hinge labels, probabilities) on the rows of the last axis
    flat = _losses.prepare_targets(loss, arr.reshape(-1, n_cls), n_cls, dtype, argname)
    return np.ascontiguousarray(flat.reshape(arr.shape), dtype=dtype)


def targets_list(y, losses, out_shapes, dtype, name="y"):
    """Targets per output from y: one array (one output) or a list in output order."""
    n = len(out_shapes)
    if n == 1 and not (isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(y[0], np.ndarray)):
        y = [y]
    if not isinstance(y, (list, tuple)) or len(y) != n:
        got = len(y) if isinstance(y, (list, tuple)) else type(y).__name__
        raise ValueError(f"the model has {n} outputs: give {name} as a list of {n} target arrays, got {got}")
    return [prepare_targets(loss, t, shape, dtype, name if n == 1 else f"{name}[{o}]")
            for o, (t, loss, shape) in enumerate(zip(y, losses, out_shapes))]


def rows(arrays, sl):
    """The same rows of every array, contiguous."""
    return [np.ascontiguousarray(a[sl]) for a in arrays]
