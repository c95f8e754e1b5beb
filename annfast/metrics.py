"""Metrics reported by Sequential.fit/evaluate: accuracy and rmse.

>>> from annfast import metrics
>>> metrics.rmse([[1.0], [3.0]], [[1.0], [1.0]])
1.4142135623730951
>>> metrics.accuracy([0, 1, 1], [[0.2], [0.9], [0.4]])
0.6666666666666666

During training they are computed in C from the same forward pass as the loss
(annfast.net.h: af_loss_eval); these functions are the NumPy definitions, for users and tests.
"""
import numpy as np

from ._validate import as_array

NAMES = ("accuracy", "rmse")
ALIASES = {"acc": "accuracy", "root_mean_squared_error": "rmse"}


def get(name):
    """Canonical metric name; ValueError for an unknown one."""
    if not isinstance(name, str):
        raise TypeError(f"metric must be a str (one of {', '.join(NAMES)}), got {type(name).__name__}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in NAMES:
        raise ValueError(f"metric must be one of {', '.join(NAMES)}; got {name!r}")
    return key


def _two_d(a, name):
    a = as_array(a, name)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def accuracy(y_true, y_pred, threshold=0.5):
    """Fraction of correct predictions. Several columns in y_pred: argmax against the argmax
    of one-hot y_true (or against integer labels if y_true has one column). One column:
    (y_pred > threshold) against (y_true > threshold)."""
    p = _two_d(y_pred, "y_pred")
    y = _two_d(y_true, "y_true")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} rows but y_pred has {p.shape[0]}")
    if p.shape[1] > 1:
        labels = y[:, 0] if y.shape[1] == 1 else np.argmax(y, axis=1)
        return float(np.mean(np.argmax(p, axis=1) == labels))
    return float(np.mean((p > threshold) == (y > threshold)))


def rmse(y_true, y_pred):
    """Root mean squared error over all entries."""
    p = _two_d(y_pred, "y_pred")
    y = _two_d(y_true, "y_true")
    if y.shape != p.shape:
        raise ValueError(f"y_true shape {y.shape} does not match y_pred shape {p.shape}")
    return float(np.sqrt(np.mean((p - y) ** 2)))
