"""Saving and loading models: a documented ``.npz`` format, no pickle.

``save_model(model, path)`` writes, and ``load_model(path)`` reads, one ``.npz`` file (a zip of
uncompressed ``.npy`` arrays, readable with plain NumPy). ``Sequential.save(path)`` calls
``save_model``. Loading never unpickles: nothing in the file is ever executed.

Format, version 1 (see also docs/format.md)
-------------------------------------------
``__annfast__``        uint8 array: UTF-8 JSON metadata (below)
``weight_0000`` ...    the arrays of ``model.get_weights()``, in order, dtype and shape as saved
``optimizer_state``    (only if the model has optimiser state) the flat state vector

Metadata JSON::

    {"format": "annfast-model", "format_version": 1, "annfast_version": "0.1.0",
     "model_class": "Sequential",
     "config": <model.get_config(): architecture, dtype, seed, compile info with the optimiser>,
     "weights": [{"key": "weight_0000", "shape": [784, 256], "dtype": "<f4",
                  "sha256": "<hex digest of the C-order bytes>"}, ...],
     "optimizer": null | {"step": 1200, "epoch": 12, "key": "optimizer_state", "shape": [n],
                          "dtype": ..., "sha256": ...},
     "metadata": {...}}   (optional: save_model(..., metadata=dict); load_model ignores it)

``load_model`` treats the file as untrusted (annfast._untrusted): a regular file only, zip
magic first, members stored uncompressed inside the file, bounded metadata, member names,
``.npy`` headers and sizes checked against the metadata, and for a Sequential the weight shapes
the config needs computed and compared before anything is built or allocated (docs/format.md
lists every check). It then reads the arrays, compares digests, rebuilds the model with
``model_class.from_config(config)``, checks its weight shapes, and calls ``set_weights`` and
``set_optimizer_state``. Any problem raises ``ValueError`` naming it; the file is never
partially applied. Weights and state are stored bit for bit, so a loaded model predicts exactly
(bitwise) what the saved one did, NaN included (a diverged run loads with a RuntimeWarning).

>>> import annfast                                       # doctest: +SKIP
>>> model.save("model.npz")                              # doctest: +SKIP
>>> again = annfast.load_model("model.npz")              # doctest: +SKIP
"""
import hashlib
import json
import os
import secrets
import stat
import warnings
from typing import Any, Dict, Optional, Union

import numpy as np

from . import _untrusted

__all__ = ["save_model", "load_model", "FORMAT_VERSION", "FORMAT_NAME"]

FORMAT_NAME = "annfast-model"
FORMAT_VERSION = 1
_META_KEY = "__annfast__"
_OPT_KEY = "optimizer_state"
_OPT_COUNTERS = ("epoch",)  # optional integer counters saved beside "step"


def _weight_key(i):
    return f"weight_{i:04d}"


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).data).hexdigest()  # no copy of the bytes


def _describe(key, a):
    return {"key": key, "shape": list(a.shape), "dtype": a.dtype.str, "sha256": _digest(a)}


def _check_array(a, what):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(a).__name__}")
    if a.dtype.kind not in "fiub" or a.dtype.hasobject:
        raise TypeError(f"{what} must have a numeric dtype, got {a.dtype}")
    return np.ascontiguousarray(a)


def _create_temp(path):
    """(fd, name) of a new file beside path, for an atomic replace. Its mode is what a plain
    open() would give a new file (0666 minus the umask, applied by the kernel; mkstemp's 0600
    would not honour it), or the mode of the file being replaced, which is kept."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st = os.stat(path)
        keep = stat.S_IMODE(st.st_mode) & 0o777 if stat.S_ISREG(st.st_mode) else None
    except OSError:
        keep = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".annfast-save-{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if keep is not None:
            try:
                os.chmod(tmp, keep)  # our own fresh name (O_EXCL); chmod exists everywhere
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp
    raise FileExistsError(f"could not create a temporary file in {directory!r}")


def save_model(model: Any, path: Union[str, "os.PathLike[str]"],
               metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write ``model`` to ``path`` in the annfast .npz format (see the module docstring).

    The model provides ``get_config()`` (JSON-able), ``get_weights()`` and optionally
    ``optimizer_state()`` -> ``{"step": int, "state": ndarray}`` or None. The file is written to
    a temporary name and renamed, so an interrupted save never leaves a half-written file.
    metadata: an optional JSON-able dict stored as the metadata's ``"metadata"`` entry (the
    command line keeps feature names and class labels there); ``load_model`` ignores it. A new
    file gets mode 0666 minus the umask (as open() gives); a replaced file keeps its mode.
    Weights holding NaN or inf are saved as they are (load_model warns about them).

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
    fd, tmp = _create_temp(path)
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


MAX_METADATA_BYTES = 16 << 20  # the JSON metadata; a 1000-layer model needs well under 1 MiB
MAX_JSON_DEPTH = 64            # nesting of the metadata; annfast's own is under 10 levels
MAX_COUNTER = 2 ** 63 - 1      # step and epoch: what the engine's 64-bit counters take with room
_MODEL_CLASSES = ("Sequential", "Model")
_Bad = _untrusted.Bad


def _read_meta(z):
    """The metadata dict of the open archive z, its size and nesting bounded."""
    name = _META_KEY + ".npy"
    if name not in z.names:
        raise _Bad(f"no {_META_KEY!r} metadata entry (not an annfast model file)")
    h = z.header(name)
    if h.dtype != np.uint8 or len(h.shape) != 1:
        raise _Bad("metadata entry has the wrong type")
    if h.shape[0] > MAX_METADATA_BYTES:
        raise _Bad(f"metadata is larger than {MAX_METADATA_BYTES} bytes ({h.shape[0]})")
    raw = z.read(name, z.check(name, "metadata", h.dtype.str, h.shape)).tobytes()
    meta = _untrusted.parse_json(raw, "metadata", MAX_JSON_DEPTH)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _Bad(f"metadata 'format' is {meta.get('format') if isinstance(meta, dict) else None!r}, "
                   f"expected {FORMAT_NAME!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _Bad(f"unsupported format_version {version!r}; this annfast reads version {FORMAT_VERSION}"
                   + (" (the file was written by a newer annfast)" if isinstance(version, int)
                      and version > FORMAT_VERSION else ""))
    for key in ("model_class", "config", "weights", "optimizer"):
        if key not in meta:
            raise _Bad(f"metadata is missing {key!r}")
    if not isinstance(meta["weights"], list) or not isinstance(meta["config"], dict):
        raise _Bad("metadata 'weights' must be a list and 'config' a dict")
    if meta["optimizer"] is not None and not isinstance(meta["optimizer"], dict):
        raise _Bad("metadata 'optimizer' must be null or a dict")
    return meta


def _is_count(v, limit):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= limit


def _check_entry(d, what, key):
    """An array description {key, shape, dtype, sha256} from the metadata, checked."""
    if not isinstance(d, dict) or not {"key", "shape", "dtype", "sha256"} <= set(d):
        raise _Bad(f"metadata entry for {what} is malformed")
    if d["key"] != key:
        raise _Bad(f"metadata entry for {what} has key {d['key']!r}, expected {key!r}")
    shape = d["shape"]
    if not isinstance(shape, list) or len(shape) > 32 or not all(_is_count(n, MAX_COUNTER) for n in shape):
        raise _Bad(f"metadata entry for {what} has an invalid shape {shape!r}")
    try:
        dtype = np.dtype(d["dtype"]) if isinstance(d["dtype"], str) else None
    except Exception:  # NumPy parses the string: anything it cannot parse is unsupported
        dtype = None
    if dtype is None or dtype.kind not in "biuf" or dtype.str != d["dtype"]:
        raise _Bad(f"metadata entry for {what} has an unsupported dtype {d['dtype']!r}")
    if not isinstance(d["sha256"], str) or len(d["sha256"]) != 64:
        raise _Bad(f"metadata entry for {what} has an invalid sha256")
    return d


def _entries(meta):
    """[(description, what)] of every array the metadata lists, and the optimiser counters."""
    entries = [(_check_entry(d, f"weight {i}", _weight_key(i)), f"weight {i}")
               for i, d in enumerate(meta["weights"])]
    opt, counters = meta["optimizer"], None
    if opt is not None:
        entries.append((_check_entry(opt, "optimizer state", _OPT_KEY), "optimizer state"))
        counters = {}
        for key in ("step",) + _OPT_COUNTERS:
            if key not in opt and key != "step":
                continue
            v = opt.get(key)
            if not _is_count(v, MAX_COUNTER):
                raise _Bad(f"optimizer {key} must be an int in [0, 2**63), got {v!r}")
            counters[key] = v
    return entries, counters


def _check_members(z, entries):
    expected = {_META_KEY + ".npy"} | {d["key"] + ".npy" for d, _ in entries}
    for d, what in entries:
        if d["key"] + ".npy" not in z.names:
            raise _Bad(f"missing array {d['key']!r} ({what})")
    extra = set(z.names) - expected
    if extra:
        raise _Bad(f"unexpected arrays {sorted(n[:-4] if n.endswith('.npy') else n for n in extra)}")


def _check_layout(cls, meta, entries):
    """For annfast's models: the arrays the config needs (computed, nothing built) must be the
    ones the metadata lists, so a small file cannot make the loader build a huge model."""
    from ._layout import layout as config_layout
    try:
        layout = config_layout(cls, meta["config"])
    except (TypeError, ValueError) as exc:
        raise _Bad(f"the saved architecture is not valid for {cls.__name__}: {exc}") from None
    weights = [d for d, what in entries if what != "optimizer state"]
    if len(weights) != len(layout.shapes):
        raise _Bad(f"the architecture in the config needs {len(layout.shapes)} weight arrays, "
                   f"the file has {len(weights)}")
    for i, (d, shape) in enumerate(zip(weights, layout.shapes)):
        if d["shape"] != list(shape):
            raise _Bad(f"weight {i} has shape {d['shape']} in the file but the architecture needs "
                       f"{list(shape)}")
        if d["dtype"] != layout.dtype:
            raise _Bad(f"weight {i} has dtype {d['dtype']} in the file but the config says "
                       f"{np.dtype(layout.dtype).name}")
    opt = meta["optimizer"]
    if opt is not None:
        if layout.slots is None:
            raise _Bad("the file has optimizer state but its config has no loss (not compiled)")
        need = [layout.slots * layout.n_params]
        if opt["shape"] != need or opt["dtype"] != layout.dtype:
            raise _Bad(f"optimizer state does not fit the model: the file has {opt['dtype']} "
                       f"{opt['shape']}, the config's optimiser needs {layout.dtype} {need}")


def _resolve_class(name, model_class):
    if model_class is not None:
        return model_class
    if not isinstance(name, str) or name not in _MODEL_CLASSES:
        raise _Bad(f"unknown model_class {name!r} (annfast loads {', '.join(_MODEL_CLASSES)}); "
                   "pass model_class= to load another class")
    import annfast
    return getattr(annfast, name)


def _read_arrays(z, entries):
    """The listed arrays: every header checked first, then read, then digests compared."""
    headers = [z.check(d["key"] + ".npy", what, d["dtype"], d["shape"]) for d, what in entries]
    arrays = []
    for (d, what), h in zip(entries, headers):
        a = z.read(d["key"] + ".npy", h)
        if _digest(a) != d["sha256"]:
            raise _Bad(f"array {d['key']!r} ({what}) is corrupt (checksum mismatch)")
        arrays.append(a)
    return arrays


def _read_file(path, model_class):
    """(class, metadata, weights, optimizer state or None, counters), all checked."""
    with _untrusted.open_regular(path) as f:
        z = _untrusted.Npz(f)
        try:
            meta = _read_meta(z)
            cls = _resolve_class(meta["model_class"], model_class)
            entries, counters = _entries(meta)
            _check_members(z, entries)
            from .models import Model
            if isinstance(cls, type) and issubclass(cls, Model):
                _check_layout(cls, meta, entries)
            arrays = _read_arrays(z, entries)
        finally:
            z.close()
    if meta["optimizer"] is not None:
        return cls, meta, arrays[:-1], arrays[-1], counters
    return cls, meta, arrays, None, None


def _nonfinite(arrays):
    return [i for i, a in enumerate(arrays) if a.dtype.kind == "f" and not np.isfinite(a).all()]


def _weight_views(model):
    """The arrays set_weights writes into, for a model with annfast layers (else None)."""
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not all(hasattr(l, "trainable_weights") for l in layers):
        return None
    return [w for layer in layers for w in layer.trainable_weights + layer.non_trainable_weights]


def _apply(model, path, weights, state, counters):
    """set_weights / set_optimizer_state. NaN or inf (a diverged run) is loaded bit for bit with
    a warning: the public setters refuse it, so they check finite stand-ins of the same shapes
    and the values are then copied into the model's buffers."""
    bad_w = _nonfinite(weights)
    bad_s = state is not None and bool(_nonfinite([state]))
    if bad_w or bad_s:
        where = ([f"weights {bad_w}"] if bad_w else []) + (["the optimizer state"] if bad_s else [])
        warnings.warn(f"{path!r} holds NaN or inf in {' and '.join(where)} (a diverged model?); "
                      "loaded bit for bit as saved", RuntimeWarning, stacklevel=3)
    views = _weight_views(model) if bad_w else None
    model.set_weights([np.nan_to_num(w) for w in weights] if views is not None else weights)
    if views is not None:
        for view, w in zip(views, weights):
            view[...] = w
    if state is None:
        return
    setter = getattr(model, "set_optimizer_state", None)
    if not callable(setter):
        raise ValueError(f"cannot load {path!r}: the file has optimizer state but "
                         f"{type(model).__name__} has no set_optimizer_state")
    raw = bad_s and isinstance(getattr(model, "_opt_state", None), np.ndarray)
    try:
        setter(dict(counters, state=np.nan_to_num(state) if raw else state))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot load {path!r}: optimizer state does not fit the model: {exc}") from None
    if raw:
        model._opt_state[...] = state  # Sequential's optimiser buffer (set_optimizer_state refuses NaN)


def load_model(path: Union[str, "os.PathLike[str]"], model_class: Optional[type] = None) -> Any:
    """Read a model written by :func:`save_model`; returns a new model ready to predict (and,
    if it was compiled, to continue training with its optimiser state).

    model_class: the class to rebuild (default: the annfast class named in the file, e.g.
    Sequential). Raises ValueError for any malformed, hostile, truncated, foreign or
    incompatible file (checked before anything large is allocated: see docs/format.md), and
    FileNotFoundError if the path does not exist. Weights holding NaN or inf (a diverged run)
    load bit for bit with a RuntimeWarning.

    >>> model = load_model("model.npz")  # doctest: +SKIP
    """
    return load_model_with_metadata(path, model_class)[0]


def load_model_with_metadata(path, model_class=None):
    """(model, the file's optional ``metadata`` entry or None), reading the file once; see
    load_model. The command line keeps its feature names and class labels there."""
    path = os.fspath(path)
    try:
        cls, meta, weights, state, counters = _read_file(path, model_class)
    except _Bad as exc:
        raise ValueError(f"cannot load {path!r}: {exc}") from None
    try:
        model = cls.from_config(meta["config"])
    except MemoryError:
        raise
    except Exception as exc:  # any failure to rebuild from the file's config is a bad file
        raise ValueError(f"cannot load {path!r}: the saved architecture is not valid for "
                         f"{getattr(cls, '__name__', cls)}: {type(exc).__name__}: {exc}") from exc
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
    _apply(model, path, weights, state, counters)
    extra = meta.get("metadata")
    return model, (extra if isinstance(extra, dict) else None)
