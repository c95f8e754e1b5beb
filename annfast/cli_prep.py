"""Data preparation for `annfast train`: the task-detection rule, the validation split and the
standardisation statistics (from training rows only).

>>> import numpy as np
>>> detect_task(np.array([0.0, 1.0, 2.0, 1.0]))[0]
'classification'
>>> detect_task(np.array([0.5, 1.25, 2.0]))[0]
'regression'
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

MAX_CLASSES = 20          # integral targets with at most this many values (or 5% of rows) are classes
CLASS_FRACTION = 0.05


def detect_task(y: np.ndarray) -> Tuple[str, str]:
    """('classification' | 'regression', reason) from the target VALUES, the same for CSV, .npy
    and .npz: strings or booleans are classes; numbers are classes when they are all integers
    and take at most max(20, 5% of the rows) distinct values (and fewer than the rows); anything
    else is regression. ``--task`` overrides it."""
    y = np.asarray(y)
    if y.dtype.kind in "USOb":
        return "classification", "the target holds labels"
    if y.dtype.kind not in "iuf":
        return "regression", f"the target has dtype {y.dtype}"
    values = np.unique(y)
    if y.dtype.kind == "f" and not np.all(values == np.round(values)):
        return "regression", "the target has fractional values"
    limit = max(MAX_CLASSES, int(CLASS_FRACTION * y.size))
    if values.size <= limit and values.size < y.size:
        return "classification", f"integer target with {values.size} distinct values"
    return "regression", f"integer target with {values.size} distinct values (more than {limit})"


def integral_labels(y: np.ndarray) -> np.ndarray:
    """Float class labels that are whole numbers as int64 (so 1.0 prints as 1), else y."""
    if y.dtype.kind == "f" and y.size and np.all(y == np.round(y)) and np.all(np.abs(y) < 2 ** 53):
        return y.astype(np.int64)
    return y


def split_rows(n: int, fraction: float, seed: int,
               labels: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices: a seeded shuffle, stratified by ``labels`` (class
    indices) when given, so each class keeps its share on both sides (a class is never moved
    out of training entirely). fraction 0 gives no validation rows."""
    rng = np.random.default_rng(seed)
    if fraction <= 0:
        return rng.permutation(n), np.empty(0, dtype=np.intp)
    if labels is None:
        perm = rng.permutation(n)
        n_val = int(n * fraction)
        val, train = perm[:n_val], perm[n_val:]
    else:
        val_parts, train_parts = [], []
        for c in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == c))
            k = min(int(round(fraction * rows.size)), rows.size - 1)
            val_parts.append(rows[:k])
            train_parts.append(rows[k:])
        val, train = np.concatenate(val_parts), np.concatenate(train_parts)
        val, train = rng.permutation(val), rng.permutation(train)
    if val.size < 1 or train.size < 1:
        raise ValueError(f"--validation-split {fraction} leaves {val.size} of {n} rows for "
                         "validation; need at least one row on each side")
    return train, val


def standardization(X: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant) of X."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)
