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
    W = np.asarray(first.kernel, dtype=np.float64)
    b = np.asarray(first.bias, dtype=np.float64)
    scale = 1.0 / np.asarray(std, dtype=np.float64)
    first.kernel = (W * scale[:, None]).astype(first.kernel.dtype)
    first.bias = (b - (np.asarray(mean, dtype=np.float64) * scale) @ W).astype(first.bias.dtype)


def fold_target_scaling(model, mean, std):
    """Fold y = y' std + mean into the last (linear) Dense layer, so a network trained on
    standardised targets returns raw-scale ones: W std, b std + mean."""
    last = model.layers[-1]
    W = np.asarray(last.kernel, dtype=np.float64)
    b = np.asarray(last.bias, dtype=np.float64)
    last.kernel = (W * std).astype(last.kernel.dtype)
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
    """(model, meta) from a file written by `annfast train` or by annfast.save_model. The file
    is read once, as untrusted, by annfast.saving (docs/format.md), and the command-line
    metadata must describe the model (one feature name per input, one label per output)."""
    from .saving import load_model_with_metadata
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, expected a model file")
    if os.path.isfile(path) and _looks_like_text(path):
        raise ValueError(f"{path} is not an annfast model file (a model is the .npz written by "
                         f"'annfast train' or annfast.save_model; usage: annfast predict MODEL DATA)")
    model, extra = load_model_with_metadata(path)
    n_in, n_out = _widths(path, model)
    meta = (extra or {}).get(CLI_KEY)
    if meta is None:
        return model, _plain_meta(model, n_in, n_out)
    try:
        _check_meta(meta, n_in, n_out)
    except ValueError as exc:
        raise ValueError(f"{path}: corrupt command-line metadata: {exc}") from None
    return model, meta


def _widths(path, model):
    """(input width, output width) of a model the command line can use: vectors in and out."""
    shapes = [t.sample_shape for t in model.inputs] + [t.sample_shape for t in model.outputs]
    if len(model.inputs) != 1 or len(model.outputs) != 1 or any(len(s) != 1 for s in shapes):
        raise ValueError(f"{path}: the command line takes models with one vector input and one vector "
                         f"output; this one has inputs {[t.shape for t in model.inputs]} and outputs "
                         f"{[t.shape for t in model.outputs]}")
    return shapes[0][0], shapes[1][0]


def _short(v):
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_meta(meta, n_in, n_out):
    """The metadata must describe the model: its inputs, its outputs, a known task."""
    if not isinstance(meta, dict):
        raise ValueError(f"metadata must be a JSON object, got {type(meta).__name__}")
    task = meta.get("task")
    if task not in ("classification", "regression"):
        raise ValueError(f"'task' must be 'classification' or 'regression', got {_short(task)}")
    names = meta.get("feature_names")
    if not isinstance(names, list) or len(names) != n_in or not all(isinstance(n, str) for n in names):
        raise ValueError(f"'feature_names' must list the model's {n_in} input names, got {_short(names)}")
    target = meta.get("target_name")
    if target is not None and not isinstance(target, str):
        raise ValueError(f"'target_name' must be a name or null, got {_short(target)}")
    if task == "regression":
        if n_out != 1:
            raise ValueError(f"a regression model file must have one output; this model has {n_out}")
        return
    classes = meta.get("classes")
    need = 2 if n_out == 1 else n_out  # one sigmoid output: two classes
    if not isinstance(classes, list) or len(classes) != need or \
            not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in classes) or \
            len({(type(c).__name__, c) for c in classes}) != len(classes):
        raise ValueError(f"'classes' must list {need} distinct labels (strings or numbers), one per model "
                         f"output; got {_short(classes)}")


def _plain_meta(model, n_in, n_out):
    """A model saved without command-line metadata: classes are the output indices when the last
    layer ends in softmax/sigmoid (one sigmoid output: classes 0 and 1), else values."""
    last = model.layers[-1]
    classify = getattr(last, "activation", None) in ("softmax", "sigmoid")
    return {"task": "classification" if classify else "regression",
            "feature_names": [f"x{i}" for i in range(n_in)], "target_name": None,
            "classes": list(range(max(n_out, 2))) if classify else None}
