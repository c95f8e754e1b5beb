"""The model file of `annfast train` / `annfast predict`: the ONE annfast format (annfast.saving,
docs/format.md), so ``annfast.load_model`` opens what `annfast train` wrote and `annfast predict`
takes what ``model.save`` wrote.

What the command line needs beyond the network rides in the format's optional metadata::

    {"cli": {"task": "classification" | "regression", "feature_names": [...],
             "target_name": str | null, "classes": [...] | null}}

Feature standardisation is folded into the first Dense layer and target standardisation
(regression) into the last, so the saved network takes raw features and returns raw targets.
A model saved without that metadata predicts class indices for softmax/sigmoid outputs and
values otherwise.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Tuple

import numpy as np

CLI_KEY = "cli"


def fold_standardization(model, mean, std):
    """Fold x' = (x - mean) / std into the first Dense layer so the model takes raw features:
    x' W + b = x (W / std[:, None]) + (b - (mean / std) W)."""
    first = model.layers[0]
    W = np.asarray(first.weights, dtype=np.float64)
    b = np.asarray(first.bias, dtype=np.float64)
    scale = 1.0 / np.asarray(std, dtype=np.float64)
    first.weights = (W * scale[:, None]).astype(first.weights.dtype)
    first.bias = (b - (np.asarray(mean, dtype=np.float64) * scale) @ W).astype(first.bias.dtype)


def fold_target_scaling(model, mean, std):
    """Fold y = y' std + mean into the last (linear) Dense layer, so a network trained on
    standardised targets returns raw-scale ones: W std, b std + mean."""
    last = model.layers[-1]
    W = np.asarray(last.weights, dtype=np.float64)
    b = np.asarray(last.bias, dtype=np.float64)
    last.weights = (W * std).astype(last.weights.dtype)
    last.bias = (b * std + mean).astype(last.bias.dtype)


def save(model, meta: Dict[str, Any], path) -> str:
    """Write the model with its command-line metadata (.npz appended when missing); return
    the path."""
    from .saving import save_model
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    save_model(model, path, metadata={CLI_KEY: meta})
    return path


def _looks_like_text(path):
    with open(path, "rb") as f:
        head = f.read(4)
    return not head.startswith(b"PK")  # an .npz is a zip archive


def load(path) -> Tuple[Any, Dict[str, Any]]:
    """(model, meta) from a file written by `annfast train` or by annfast.save_model."""
    from .saving import load_model
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, expected a model file")
    if _looks_like_text(path):
        raise ValueError(f"{path} is not an annfast model file (a model is the .npz written by "
                         f"'annfast train' or annfast.save_model; usage: annfast predict MODEL DATA)")
    model = load_model(path)
    meta = _cli_metadata(path)
    return model, (meta if meta is not None else _plain_meta(model))


def _cli_metadata(path):
    """The 'cli' entry of the file's metadata, or None. Read after load_model accepted the file."""
    from .saving import _META_KEY
    with np.load(path, allow_pickle=False) as z:
        info = json.loads(z[_META_KEY].tobytes().decode("utf-8"))
    meta = (info.get("metadata") or {}).get(CLI_KEY)
    if meta is None:
        return None
    if not isinstance(meta, dict) or any(k not in meta for k in ("task", "feature_names", "classes")):
        raise ValueError(f"{path}: corrupt command-line metadata (needs task, feature_names, classes)")
    return meta


def _plain_meta(model):
    cfg = model.get_config()
    last = cfg["layers"][-1]
    classify = last.get("activation") in ("softmax", "sigmoid")
    units = last.get("units", 1)
    return {"task": "classification" if classify else "regression",
            "feature_names": [f"x{i}" for i in range(cfg["input_dim"])], "target_name": None,
            "classes": list(range(max(units, 2))) if classify else None}
