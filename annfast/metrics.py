"""Metrics reported by Sequential.fit/evaluate.

>>> from annfast import metrics
>>> metrics.rmse([[1.0], [3.0]], [[1.0], [1.0]])
1.4142135623730951
>>> metrics.accuracy([0, 1, 1], [[0.2], [0.9], [0.4]])
0.6666666666666666
>>> metrics.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75

Names for ``compile(metrics=[...])``:

- ``accuracy`` and ``rmse`` are computed in C from the same forward pass as the loss, averaged
  over the epoch's batches (the weights change during the epoch, as in Keras);
- ``mae``, ``precision``, ``recall``, ``auc`` and any callable ``fn(y_true, y_pred) -> float``
  are evaluated at the END of each epoch on the whole training set (one extra inference pass)
  and on the validation data, with the functions below.

A callable receives the targets as ``fit`` prepared them (a float array ``(n, outputs)``;
``(n, 1)`` class indices for ``sparse_categorical_crossentropy``) and ``model.predict`` output;
it is logged under its ``__name__`` (``val_`` + name for validation). Callables are not saved
with the model (``get_config`` lists named metrics only).

Classification metrics treat every output column as a binary decision, as Keras does:
``precision`` and ``recall`` threshold predictions at 0.5 (at 0 for the hinge loss, whose
outputs are scores) and micro-average over columns (integer labels for several outputs are
one-hot encoded first); ``auc`` is the exact area under the ROC curve of the flattened columns
(micro average; Keras approximates it with 200 thresholds), NaN when only one class occurs.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_array

NAMES = ("accuracy", "rmse", "mae", "precision", "recall", "auc")
C_METRICS = ("accuracy", "rmse")  # computed in C during the epoch; the rest at its end
ALIASES = {"acc": "accuracy", "root_mean_squared_error": "rmse", "mean_absolute_error": "mae"}

Metric = Union[str, Callable[[np.ndarray, np.ndarray], float]]


def get(metric: Metric) -> Metric:
    """Canonical metric name, or the callable itself; ValueError for an unknown name."""
    if callable(metric) and not isinstance(metric, str):
        return metric
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a str (one of {', '.join(NAMES)}) or a callable "
                        f"fn(y_true, y_pred), got {type(metric).__name__}")
    key = ALIASES.get(metric.lower(), metric.lower())
    if key not in NAMES:
        raise ValueError(f"metric must be one of {', '.join(NAMES)} or a callable; got {metric!r}")
    return key


def name(metric: Metric) -> str:
    """The key a metric is logged under: its name, or a callable's ``__name__``."""
    if isinstance(metric, str):
        return metric
    return getattr(metric, "__name__", type(metric).__name__)


def config_names(metrics: Sequence[Metric]) -> List[str]:
    """The metrics that can be saved with a model (named ones; callables are code)."""
    return [m for m in metrics if isinstance(m, str)]


def _two_d(a, argname):
    a = as_array(a, argname)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _pair(y_true, y_pred):
    """y_true, y_pred as 2-D float arrays of one shape; integer labels for several outputs
    become one-hot."""
    p = _two_d(y_pred, "y_pred")
    y = _two_d(y_true, "y_true")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} rows but y_pred has {p.shape[0]}")
    if y.shape[1] == 1 and p.shape[1] > 1:
        labels = y[:, 0]
        if np.any(labels != np.round(labels)) or labels.min(initial=0) < 0 \
                or labels.max(initial=0) >= p.shape[1]:
            raise ValueError(f"y_true must hold class indices in [0, {p.shape[1]}) for "
                             f"{p.shape[1]} outputs")
        y = np.eye(p.shape[1])[labels.astype(np.intp)]
    if y.shape != p.shape:
        raise ValueError(f"y_true shape {y.shape} does not match y_pred shape {p.shape}")
    return y, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5) -> float:
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


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error over all entries."""
    p = _two_d(y_pred, "y_pred")
    y = _two_d(y_true, "y_true")
    if y.shape != p.shape:
        raise ValueError(f"y_true shape {y.shape} does not match y_pred shape {p.shape}")
    return float(np.sqrt(np.mean((p - y) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error over all entries.

    >>> mae([[1.0], [3.0]], [[2.0], [1.0]])
    1.5
    """
    y, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - y)))


def _confusion(y_true, y_pred, threshold):
    y, p = _pair(y_true, y_pred)
    pos, pred = y > threshold, p > threshold
    tp = int(np.count_nonzero(pos & pred))
    return tp, int(np.count_nonzero(~pos & pred)), int(np.count_nonzero(pos & ~pred))


def precision(y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5) -> float:
    """TP / (TP + FP) over every output column, with predictions and targets above threshold
    counted positive (0.0 when nothing is predicted positive, as Keras).

    >>> precision([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1])
    0.5
    """
    tp, fp, _ = _confusion(y_true, y_pred, threshold)
    return tp / (tp + fp) if tp + fp else 0.0


def recall(y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5) -> float:
    """TP / (TP + FN) over every output column (0.0 when there is no positive target).

    >>> recall([1, 0, 1, 1], [0.9, 0.8, 0.2, 0.7])
    0.6666666666666666
    """
    tp, _, fn = _confusion(y_true, y_pred, threshold)
    return tp / (tp + fn) if tp + fn else 0.0


def auc(y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5) -> float:
    """Exact area under the ROC curve of the flattened output columns (targets above threshold
    are positives; ties count one half): the Mann-Whitney statistic from average ranks."""
    y, p = _pair(y_true, y_pred)
    pos = (y > threshold).ravel()
    scores = p.ravel()
    n_pos = int(np.count_nonzero(pos))
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)                     # 1-based rank of each tie group's last member
    average_rank = last - (counts - 1) / 2.0
    rank_sum = float(np.sum(average_rank[inverse.ravel()][pos]))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


_EPOCH_END = {"mae": mae, "precision": precision, "recall": recall, "auc": auc}


def _value(metric, y_true, y_pred, loss):
    if isinstance(metric, str):
        fn = _EPOCH_END[metric]
        if metric == "mae":
            return fn(y_true, y_pred)
        return fn(y_true, y_pred, threshold=0.0 if loss == "hinge" else 0.5)
    value = metric(y_true, y_pred)
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
        raise TypeError(f"metric {name(metric)!r} must return a number, got {type(value).__name__}")
    return float(value)


def epoch_end_logs(model: Any, X: Any, y: Any, batch_size: Optional[int] = None) -> Dict[str, float]:
    """Values of the model's metrics that are not computed in C (see the module docstring),
    from one ``model.predict(X)``; {} when there are none (no extra pass). X and y are the
    model's prepared lists (one array per input / output); with several outputs each metric is
    logged per output as ``<output name>_<metric>``; a sequence output is seen as its rows."""
    wanted = [m for m in model.metrics if m not in C_METRICS]
    if not wanted:
        return {}
    preds = model.predict(X, batch_size=batch_size)
    preds = preds if isinstance(preds, list) else [preds]
    ys = y if isinstance(y, list) else [y]
    outputs = model.outputs
    multi = len(outputs) > 1
    losses = model.losses or [model.loss] * len(outputs)
    logs = {}
    for o, (y_true, y_pred) in enumerate(zip(ys, preds)):
        width = y_pred.shape[-1]
        y_pred = y_pred.reshape(-1, width)
        y_true = y_true.reshape(y_pred.shape[0], -1)
        prefix = f"{outputs[o].name}_" if multi else ""
        for m in wanted:
            logs[prefix + name(m)] = _value(m, y_true, y_pred, losses[o])
    return logs
