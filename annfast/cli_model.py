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


def load(path):
    """Return (model, meta) from a file written by `save` (or by annfast.save_model)."""
    import annfast
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not an annfast model file ({exc})") from None
    if "format" not in files or str(files["format"]) != FORMAT:
        return _load_plain(path)
    if int(files["version"]) != VERSION:
        raise ValueError(f"{path}: model file version {int(files['version'])} is not supported "
                         f"(this annfast reads version {VERSION})")
    try:
        cfg = json.loads(str(files["config"]))
        meta = json.loads(str(files["meta"]))
        model = annfast.Sequential.from_config(cfg)
        n = sum(1 for k in files if k.startswith("w") and k[1:].isdigit())
        model.set_weights([files[f"w{i}"] for i in range(n)])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt annfast model file ({type(exc).__name__}: {exc})") from None
    for key in ("task", "feature_names", "classes"):
        if key not in meta:
            raise ValueError(f"{path}: corrupt annfast model file (metadata lacks {key!r})")
    return model, meta


def _load_plain(path):
    import annfast
    load_model = getattr(annfast, "load_model", None)
    if load_model is None:
        raise ValueError(f"{path}: not a model file written by 'annfast train'")
    model = load_model(path)
    cfg = model.get_config()
    last = cfg["layers"][-1].get("activation")
    classify = last in ("softmax", "sigmoid")
    units = cfg["layers"][-1].get("units", 1)
    meta = {"task": "classification" if classify else "regression",
            "feature_names": [f"x{i}" for i in range(cfg["input_dim"])], "target_name": None,
            "classes": list(range(max(units, 2))) if classify else None}
    return model, meta
