"""Saving and loading models: a documented ``.npz`` format, no pickle.

``save_model(model, path)`` writes, and ``load_model(path)`` reads, one ``.npz`` file (a zip of
``.npy`` arrays, readable with plain NumPy). ``Sequential.save(path)`` calls ``save_model``.
Loading uses ``np.load(allow_pickle=False)``: nothing in the file is ever executed.

Format, version 1 (see also docs/format.md)
-------------------------------------------
``__annfast__``        uint8 array: UTF-8 JSON metadata (below)
``weight_0000`` ...    the arrays of ``model.get_weights()``, in order, dtype and shape as saved
``optimizer_state``    (only if the model has optimiser state) the flat state vector

Metadata JSON::

    {"format": "annfast-model", "format_version": 1, "annfast_version": "0.1.0",
     "model_class": "Sequential",
     "config": <model.get_config(): architecture, dtype, seed, compile info with the optimiser>,
     "weights": [{"key": "weight_0000", "shape": [784, 256], "dtype": "float32",
                  "sha256": "<hex digest of the C-order bytes>"}, ...],
     "optimizer": null | {"step": 1200, "epoch": 12, "key": "optimizer_state", "shape": [n],
                          "dtype": ..., "sha256": ...},
     "metadata": {...}}   (optional: save_model(..., metadata=dict); load_model ignores it)

``load_model`` rebuilds the model with ``model_class.from_config(config)``, checks every array
against the metadata (presence, shape, dtype, digest) and against the shapes of the rebuilt
model, then calls ``set_weights`` and ``set_optimizer_state``. Any mismatch, a truncated or
corrupt file, another format or a newer format version raises ``ValueError`` naming the
problem; the file is never partially applied. Weights and state are stored bit for bit, so a
loaded model predicts exactly (bitwise) what the saved one did.

>>> import annfast                                       # doctest: +SKIP
>>> model.save("model.npz")                              # doctest: +SKIP
>>> again = annfast.load_model("model.npz")              # doctest: +SKIP
"""
import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from typing import Any, Dict, Optional, Union

import numpy as np

__all__ = ["save_model", "load_model", "FORMAT_VERSION", "FORMAT_NAME"]

FORMAT_NAME = "annfast-model"
FORMAT_VERSION = 1
_META_KEY = "__annfast__"
_OPT_KEY = "optimizer_state"
_OPT_COUNTERS = ("epoch",)  # optional integer counters saved beside "step"


def _weight_key(i):
    return f"weight_{i:04d}"


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _describe(key, a):
    return {"key": key, "shape": list(a.shape), "dtype": a.dtype.str, "sha256": _digest(a)}


def _check_array(a, what):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(a).__name__}")
    if a.dtype.kind not in "fiub" or a.dtype.hasobject:
        raise TypeError(f"{what} must have a numeric dtype, got {a.dtype}")
    return np.ascontiguousarray(a)


def save_model(model: Any, path: Union[str, "os.PathLike[str]"],
               metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write ``model`` to ``path`` in the annfast .npz format (see the module docstring).

    The model provides ``get_config()`` (JSON-able), ``get_weights()`` and optionally
    ``optimizer_state()`` -> ``{"step": int, "state": ndarray}`` or None. The file is written to
    a temporary name and renamed, so an interrupted save never leaves a half-written file.
    metadata: an optional JSON-able dict stored as the metadata's ``"metadata"`` entry (the
    command line keeps feature names and class labels there); ``load_model`` ignores it.

    >>> save_model(model, "model.npz")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    config = model.get_config()
    try:
        config_json = json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model.get_config() must be JSON-serialisable to save the model: {exc}") from None
    weights = model.get_weights()
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"model.get_weights() must return a list of arrays, got {type(weights).__name__}")
    arrays = {}
    descr = []
    for i, w in enumerate(weights):
        w = _check_array(w, f"weight {i}")
        key = _weight_key(i)
        arrays[key] = w
        descr.append(_describe(key, w))
    opt_meta = None
    get_state = getattr(model, "optimizer_state", None)
    # a model whose optimizer attribute is None is not compiled: it has no optimiser state
    compiled = getattr(model, "optimizer", True) is not None
    state = get_state() if callable(get_state) and compiled else None
    if state is not None:
        if not isinstance(state, dict) or "step" not in state or "state" not in state:
            raise TypeError("model.optimizer_state() must return None or a dict with 'step' and 'state'")
        counters = {}
        for key in ("step",) + _OPT_COUNTERS:
            if key not in state:
                continue
            v = state[key]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"optimizer state {key!r} must be an int >= 0, got {v!r}")
            counters[key] = int(v)
        s = _check_array(np.asarray(state["state"]), "optimizer state")
        arrays[_OPT_KEY] = s
        opt_meta = dict(_describe(_OPT_KEY, s), **counters)
    from . import __version__
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "annfast_version": __version__,
            "model_class": type(model).__name__, "config": config_json, "weights": descr,
            "optimizer": opt_meta}
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
        try:
            meta["metadata"] = json.loads(json.dumps(metadata, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".annfast-save-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: NumPy adds no suffix
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _Bad(ValueError):
    pass


def _read_file(path):
    """All arrays of the file, metadata parsed; raises _Bad with the reason."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such model file: {path!r}") from None
    if not raw.startswith(b"PK"):
        raise _Bad("not an .npz (zip) file")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            files = set(npz.files)
            if _META_KEY not in files:
                raise _Bad(f"no {_META_KEY!r} metadata entry (not an annfast model file)")
            arrays = {k: npz[k] for k in npz.files}
    except _Bad:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise _Bad(f"corrupt or truncated file ({type(exc).__name__}: {exc})") from None
    meta_arr = arrays.pop(_META_KEY)
    if meta_arr.dtype != np.uint8 or meta_arr.ndim != 1:
        raise _Bad("metadata entry has the wrong type")
    try:
        meta = json.loads(meta_arr.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Bad(f"metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _Bad(f"metadata 'format' is {meta.get('format') if isinstance(meta, dict) else None!r}, "
                   f"expected {FORMAT_NAME!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise _Bad(f"unsupported format_version {version!r}; this annfast reads version {FORMAT_VERSION}"
                   + (" (the file was written by a newer annfast)" if isinstance(version, int)
                      and version > FORMAT_VERSION else ""))
    for key in ("model_class", "config", "weights", "optimizer"):
        if key not in meta:
            raise _Bad(f"metadata is missing {key!r}")
    if not isinstance(meta["weights"], list) or not isinstance(meta["config"], dict):
        raise _Bad("metadata 'weights' must be a list and 'config' a dict")
    return meta, arrays


def _take(arrays, d, what):
    """The array described by d, checked for presence, dtype, shape and digest."""
    if not isinstance(d, dict) or not {"key", "shape", "dtype", "sha256"} <= set(d):
        raise _Bad(f"metadata entry for {what} is malformed")
    key = d["key"]
    if key not in arrays:
        raise _Bad(f"missing array {key!r} ({what})")
    a = arrays[key]
    if a.dtype.str != d["dtype"] or list(a.shape) != list(d["shape"]):
        raise _Bad(f"array {key!r} ({what}) is {a.dtype.str} {list(a.shape)}, metadata says "
                   f"{d['dtype']} {d['shape']}")
    if _digest(a) != d["sha256"]:
        raise _Bad(f"array {key!r} ({what}) is corrupt (checksum mismatch)")
    return a


def _resolve_class(name, model_class):
    if model_class is not None:
        return model_class
    import annfast
    cls = getattr(annfast, name, None) if isinstance(name, str) else None
    if not isinstance(cls, type) or not hasattr(cls, "from_config"):
        raise _Bad(f"unknown model_class {name!r}; pass model_class= to load it")
    return cls


def load_model(path: Union[str, "os.PathLike[str]"], model_class: Optional[type] = None) -> Any:
    """Read a model written by :func:`save_model`; returns a new model ready to predict (and,
    if it was compiled, to continue training with its optimiser state).

    model_class: the class to rebuild (default: the annfast class named in the file, e.g.
    Sequential). Raises ValueError for a corrupt, truncated, foreign or incompatible file, and
    FileNotFoundError if the path does not exist.

    >>> model = load_model("model.npz")  # doctest: +SKIP
    """
    path = os.fspath(path)
    try:
        meta, arrays = _read_file(path)
        weights = [_take(arrays, d, f"weight {i}") for i, d in enumerate(meta["weights"])]
        opt = meta["optimizer"]
        state = None
        if opt is not None:
            state = _take(arrays, opt, "optimizer state")
            counters = {}
            for key in ("step",) + _OPT_COUNTERS:
                if key not in opt and key != "step":
                    continue
                v = opt.get(key)
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise _Bad(f"optimizer {key} must be an int >= 0, got {v!r}")
                counters[key] = v
        known = {_weight_key(i) for i in range(len(weights))} | ({_OPT_KEY} if opt else set())
        extra = set(arrays) - known
        if extra:
            raise _Bad(f"unexpected arrays {sorted(extra)}")
        cls = _resolve_class(meta["model_class"], model_class)
    except _Bad as exc:
        raise ValueError(f"cannot load {path!r}: {exc}") from None
    try:
        model = cls.from_config(meta["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot load {path!r}: the saved architecture is not valid for "
                         f"{cls.__name__}: {exc}") from None
    current = model.get_weights()
    if len(current) != len(weights):
        raise ValueError(f"cannot load {path!r}: the file has {len(weights)} weight arrays but the "
                         f"rebuilt model has {len(current)}")
    for i, (have, got) in enumerate(zip(current, weights)):
        if tuple(np.shape(have)) != got.shape:
            raise ValueError(f"cannot load {path!r}: weight {i} has shape {got.shape} in the file but "
                             f"{tuple(np.shape(have))} in the rebuilt model")
        if np.asarray(have).dtype != got.dtype:
            raise ValueError(f"cannot load {path!r}: weight {i} has dtype {got.dtype} in the file but "
                             f"{np.asarray(have).dtype} in the rebuilt model")
    model.set_weights(weights)
    if state is not None:
        setter = getattr(model, "set_optimizer_state", None)
        if not callable(setter):
            raise ValueError(f"cannot load {path!r}: the file has optimizer state but "
                             f"{cls.__name__} has no set_optimizer_state")
        try:
            setter(dict(counters, state=state))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot load {path!r}: optimizer state does not fit the model: {exc}") from None
    return model
