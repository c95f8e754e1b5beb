"""The model file `annfast train` writes and `annfast predict` reads.

A NumPy .npz (read with allow_pickle=False, so loading never runs code) holding:

    format         "annfast-cli-model"
    version        1
    config         JSON of Sequential.get_config() (architecture, dtype, seed)
    meta           JSON: {"task": "classification"|"regression", "feature_names": [...],
                          "target_name": str|null, "classes": [...]|null}
    w0, w1, ...    Sequential.get_weights(), in order

`predict` also accepts a model saved with ``annfast.save_model`` (no metadata: outputs are class
indices for softmax/sigmoid models, values otherwise).
"""
import json
import os

import numpy as np

FORMAT = "annfast-cli-model"
VERSION = 1


def fold_standardization(model, mean, std):
    """Fold x' = (x - mean) / std into the first Dense layer so the model takes raw features:
    x' W + b = x (W / std[:, None]) + (b - (mean / std) W)."""
    first = model.layers[0]
    W = np.asarray(first.weights, dtype=np.float64)
    b = np.asarray(first.bias, dtype=np.float64)
    scale = 1.0 / np.asarray(std, dtype=np.float64)
    new_W = W * scale[:, None]
    new_b = b - (np.asarray(mean, dtype=np.float64) * scale) @ W
    first.weights = new_W.astype(first.weights.dtype)
    first.bias = new_b.astype(first.bias.dtype)


def save(model, meta, path):
    """Write the model and its metadata to `path` (.npz appended when missing); return the path."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    cfg = model.get_config()
    cfg.pop("optimizer", None)  # inference only
    np.savez(path, format=np.array(FORMAT), version=np.array(VERSION),
             config=np.array(json.dumps(cfg)), meta=np.array(json.dumps(meta)), **arrays)
    return path


MAX_TEXT = 16 << 20  # characters of the config / meta JSON
MAX_JSON_DEPTH = 64
_FIXED = ("format", "version", "config", "meta")


def load(path):
    """Return (model, meta) from a file written by `save` (or by annfast.save_model).

    The file is untrusted (annfast._untrusted, as in annfast.load_model): a regular file, zip
    magic, stored members, bounded JSON; the weight shapes are computed from the config and
    compared with the members' .npy headers before anything is built; and the metadata must fit
    the model (one feature name per input, one class per output). Any problem is a ValueError."""
    from . import _untrusted
    path = os.fspath(path)
    try:
        with _untrusted.open_regular(path) as f:
            z = _untrusted.Npz(f)
            try:
                parts = _read_parts(z) if "format.npy" in z.names else None
            finally:
                z.close()
    except _untrusted.Bad as exc:
        raise ValueError(f"{path}: not an annfast model file, or a corrupt one ({exc})") from None
    if parts is None:
        return _load_plain(path)
    cfg, meta, weights = parts
    return _build(path, cfg, weights), meta


def _read_parts(z):
    """(config, meta, weights) of a file in this module's format, all checked."""
    from . import _untrusted
    from ._layout import sequential_layout
    fmt = _text(z, "format", 64)
    if fmt != FORMAT:
        raise _untrusted.Bad(f"'format' is {fmt[:64]!r}, expected {FORMAT!r}")
    version = _scalar_int(z, "version")
    if version != VERSION:
        raise _untrusted.Bad(f"model file version {version} is not supported (this annfast reads "
                             f"version {VERSION})")
    cfg = _untrusted.parse_json(_text(z, "config", MAX_TEXT), "config", MAX_JSON_DEPTH)
    meta = _untrusted.parse_json(_text(z, "meta", MAX_TEXT), "meta", MAX_JSON_DEPTH)
    try:
        layout = sequential_layout(cfg)
    except (TypeError, ValueError) as exc:
        raise _untrusted.Bad(f"config is not a valid Sequential config: {exc}") from None
    n = len(layout.shapes)
    have = {k[:-4] if k.endswith(".npy") else k for k in z.names} - set(_FIXED)
    missing = sorted(f"w{i}" for i in range(n) if f"w{i}" not in have)
    extra = sorted(have - {f"w{i}" for i in range(n)})
    if missing or extra:
        raise _untrusted.Bad(f"the architecture in the config needs {n} weight arrays"
                             + (f", missing {missing}" if missing else "")
                             + (f", unexpected arrays {extra}" if extra else ""))
    _check_meta(meta, layout)
    headers = [z.check(f"w{i}.npy", f"weight {i}", layout.dtype, shape, source="the config")
               for i, shape in enumerate(layout.shapes)]
    return cfg, meta, [z.read(f"w{i}.npy", h) for i, h in enumerate(headers)]


def _text(z, key, max_chars):
    """The 0-d unicode member `key` as a str of at most max_chars characters."""
    from . import _untrusted
    name = key + ".npy"
    if name not in z.names:
        raise _untrusted.Bad(f"missing member {key!r}")
    h = z.header(name, kinds="U")
    if h.shape != ():
        raise _untrusted.Bad(f"member {key!r} must be a string, got an array of shape {h.shape}")
    if h.dtype.itemsize // 4 > max_chars:
        raise _untrusted.Bad(f"member {key!r} is longer than {max_chars} characters")
    arr = z.read(name, z.check(name, key, h.dtype.str, (), kinds="U"))
    try:
        return str(arr[()])
    except (ValueError, UnicodeError):
        raise _untrusted.Bad(f"member {key!r} is not valid text") from None


def _scalar_int(z, key):
    from . import _untrusted
    name = key + ".npy"
    if name not in z.names:
        raise _untrusted.Bad(f"missing member {key!r}")
    h = z.header(name, kinds="iu")
    if h.shape != ():
        raise _untrusted.Bad(f"member {key!r} must be a scalar int, got shape {h.shape}")
    return int(z.read(name, z.check(name, key, h.dtype.str, (), kinds="iu")))


def _short(v):
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_meta(meta, layout):
    """The metadata must describe the model: its inputs, its outputs, a known task."""
    from ._untrusted import Bad
    if not isinstance(meta, dict):
        raise Bad(f"metadata must be a JSON object, got {type(meta).__name__}")
    task = meta.get("task")
    if task not in ("classification", "regression"):
        raise Bad(f"metadata 'task' must be 'classification' or 'regression', got {_short(task)}")
    names = meta.get("feature_names")
    if not isinstance(names, list) or len(names) != layout.n_in or \
            not all(isinstance(n, str) for n in names):
        raise Bad(f"metadata 'feature_names' must list the model's {layout.n_in} input names, "
                  f"got {_short(names)}")
    target = meta.get("target_name")
    if target is not None and not isinstance(target, str):
        raise Bad(f"metadata 'target_name' must be a name or null, got {_short(target)}")
    if task == "regression":
        if layout.n_out != 1:
            raise Bad(f"a regression model file must have one output; this model has {layout.n_out}")
        return
    classes = meta.get("classes")
    need = 2 if layout.n_out == 1 else layout.n_out  # one sigmoid output: two classes
    if not isinstance(classes, list) or len(classes) != need or \
            not all(isinstance(c, (str, int, float)) for c in classes) or \
            len({(type(c).__name__, c) for c in classes}) != len(classes):
        raise Bad(f"metadata 'classes' must list {need} distinct labels (strings or numbers), one "
                  f"per model output; got {_short(classes)}")


def _build(path, cfg, weights):
    import annfast
    from .saving import _apply
    try:
        model = annfast.Sequential.from_config(cfg)
    except MemoryError:
        raise
    except Exception as exc:  # any failure to rebuild from the file's config is a bad file
        raise ValueError(f"{path}: corrupt annfast model file (the architecture is not valid: "
                         f"{type(exc).__name__}: {exc})") from exc
    _apply(model, path, weights, None, None)  # NaN/inf weights load as saved, with a warning
    return model


def _load_plain(path):
    """A model saved by annfast.save_model: classes are the output indices when the last Dense
    layer is softmax/sigmoid (one sigmoid output: classes 0 and 1), else values."""
    import annfast
    model = annfast.load_model(path)
    dense = [layer for layer in model.layers if layer.kind == "dense"]
    classify = bool(dense) and dense[-1].activation in ("softmax", "sigmoid")
    n_out = model.layers[-1].n_out
    meta = {"task": "classification" if classify else "regression",
            "feature_names": [f"x{i}" for i in range(model.input_dim)], "target_name": None,
            "classes": list(range(max(n_out, 2))) if classify else None}
    return model, meta
