"""Loss functions on arrays, computed by the engine's C kernels (csrc/loss.c).

Every function takes ``(y_true, y_pred)`` of shape (n_samples, n_outputs) (a 1-D array is one
column) and returns the per-sample losses, shape (n_samples,). The per-sample loss is the mean
over outputs for mse, mae, binary_crossentropy and hinge and the sum over classes for the
categorical cross-entropies (the Keras convention); models report the mean over samples.

>>> import numpy as np
>>> from annfast import losses
>>> losses.mse([[1.0], [0.0]], [[0.5], [0.0]])
array([0.25, 0.  ])
>>> loss, grad = losses.loss_and_gradient("mse", [[1.0]], [[0.5]])

Names: mse (mean_squared_error), mae (mean_absolute_error), binary_crossentropy (log_loss),
categorical_crossentropy, sparse_categorical_crossentropy, hinge. Probabilities are clamped to
[1e-7, 1 - 1e-7] before a logarithm; with ``from_logits=True`` (binary and categorical
cross-entropies) the fused stable forms are used instead. For hinge, labels 0/1 are converted
to -1/+1. RMSE is a metric (annfast.metrics.rmse), not a training loss.
"""
from typing import Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._validate import as_array, cast_checked, float_dtype

NAMES = tuple(_core.LOSSES)  # the C engine's table, in its order
ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "log_loss": "binary_crossentropy",
           "bce": "binary_crossentropy", "cce": "categorical_crossentropy",
           "crossentropy": "categorical_crossentropy",
           "sparse_crossentropy": "sparse_categorical_crossentropy"}
FROM_LOGITS_OK = ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy")


def get(name: str) -> str:
    """Canonical loss name for a name or alias (case-insensitive); ValueError otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"loss must be a str (one of {', '.join(NAMES)}), got {type(name).__name__}")
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in NAMES:
        raise ValueError(f"loss must be one of {', '.join(NAMES)} (or an alias: "
                         f"{', '.join(sorted(ALIASES))}); got {name!r}")
    return key


def prepare_targets(name, y, n_outputs, dtype, argname="y"):
    """Targets as a C-contiguous (n, n_outputs) array of dtype ((n, 1) class indices for the
    sparse loss), validated for the loss: class indices integral in range, hinge labels in
    {-1, 1} (0/1 converted), cross-entropy targets in [0, 1]."""
    y = as_array(y, argname, np.float64, allow_bool=True)
    if name == "sparse_categorical_crossentropy":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{argname} must be a 1-D array of class indices for "
                             f"sparse_categorical_crossentropy, got shape {y.shape}")
        if y.size and (np.any(y != np.round(y)) or y.min() < 0 or y.max() >= n_outputs):
            raise ValueError(f"{argname} must hold integer class indices in [0, {n_outputs}), got values "
                             f"in [{y.min()}, {y.max()}]")
        return cast_checked(y.reshape(-1, 1), dtype, argname)
    if y.ndim == 1 and n_outputs == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise ValueError(f"{argname} must have shape (n_samples, {n_outputs}), got {y.shape}")
    if name == "hinge":
        vals = np.unique(y)
        if np.all(np.isin(vals, (0.0, 1.0))):
            y = 2.0 * y - 1.0
        elif not np.all(np.isin(vals, (-1.0, 1.0))):
            raise ValueError(f"{argname} must hold labels -1/+1 (or 0/1) for hinge, got values {vals[:5]}")
    elif name in FROM_LOGITS_OK and y.size and (y.min() < 0 or y.max() > 1):
        raise ValueError(f"{argname} must lie in [0, 1] for {name}, got values in [{y.min()}, {y.max()}]")
    return cast_checked(y, dtype, argname)  # 1e39 in a float32 model: an error, not inf


def _pred(y_pred):
    arr = np.asarray(y_pred)
    dtype = float_dtype(arr)  # float32 stays float32 in either byte order
    p = as_array(arr, "y_pred", dtype)
    if p.ndim == 1:
        p = p.reshape(-1, 1)
    if p.ndim != 2:
        raise ValueError(f"y_pred must be 1-D or 2-D (n_samples, n_outputs), got shape {p.shape}")
    return np.ascontiguousarray(p)


def loss_and_gradient(name: str, y_true: ArrayLike, y_pred: ArrayLike,
                      from_logits: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(per-sample losses (n,), gradient of their MEAN with respect to y_pred (n, n_outputs))."""
    key = get(name)
    if from_logits and key not in FROM_LOGITS_OK:
        raise ValueError(f"from_logits applies to {', '.join(FROM_LOGITS_OK)}, not {key!r}")
    p = _pred(y_pred)
    y = prepare_targets(key, y_true, p.shape[1], p.dtype, "y_true")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} rows but y_pred has {p.shape[0]}")
    scale = 1.0 / max(p.shape[0], 1)
    rl, g, _, _ = _core.loss_eval(key, bool(from_logits), p, y, scale)
    return rl, g


def loss(name: str, y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False) -> np.ndarray:
    """Per-sample losses of the named loss."""
    return loss_and_gradient(name, y_true, y_pred, from_logits)[0]


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Mean squared error per sample: mean_j (y_pred - y_true)^2."""
    return loss("mse", y_true, y_pred)


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Mean absolute error per sample: ``mean_j |y_pred - y_true|``."""
    return loss("mae", y_true, y_pred)


def binary_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False) -> np.ndarray:
    """-mean_j [y log p + (1 - y) log(1 - p)] per sample (p clamped, or sigmoid of logits)."""
    return loss("binary_crossentropy", y_true, y_pred, from_logits)


def categorical_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False) -> np.ndarray:
    """-sum_j y_j log p_j per sample, one-hot y (p clamped, or softmax of logits)."""
    return loss("categorical_crossentropy", y_true, y_pred, from_logits)


def sparse_categorical_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False) -> np.ndarray:
    """-log p[label] per sample, integer labels."""
    return loss("sparse_categorical_crossentropy", y_true, y_pred, from_logits)


def hinge(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """mean_j max(0, 1 - y_true y_pred) per sample, labels -1/+1 (0/1 converted)."""
    return loss("hinge", y_true, y_pred)


mean_squared_error = mse
mean_absolute_error = mae
log_loss = binary_crossentropy
