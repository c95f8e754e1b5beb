"""The few scikit-learn pieces annfast.sklearn needs, with small stand-ins when it is not installed.

With scikit-learn installed the estimators ARE scikit-learn estimators (sklearn's BaseEstimator,
mixins, validate_data, warnings), so they pass check_estimator and work in Pipeline/GridSearchCV.
Without it, the stand-ins below give the same public behaviour for direct use: get_params/set_params
from the __init__ signature, score (accuracy / R^2), input validation with the same messages,
n_features_in_ and feature_names_in_ (pandas DataFrames). Only what the estimators use is here.
"""
import inspect
import warnings
from typing import Any, Dict, Optional

import numpy as np
from numpy.typing import ArrayLike

try:  # pragma: no branch
    import sklearn  # noqa: F401
    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised in the no-sklearn test subprocess
    HAVE_SKLEARN = False


if HAVE_SKLEARN:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin  # noqa: F401
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError  # noqa: F401
    from sklearn.model_selection import train_test_split  # noqa: F401
    from sklearn.utils import check_random_state  # noqa: F401
    from sklearn.utils.multiclass import type_of_target  # noqa: F401
    from sklearn.utils.validation import check_is_fitted  # noqa: F401
    try:
        from sklearn.utils.validation import validate_data as _sk_validate_data
    except ImportError:  # scikit-learn < 1.6
        _sk_validate_data = None

    def validate_data(est, X, y="no_validation", reset=True, **kw):
        """sklearn's validate_data (or the estimator's _validate_data on older versions)."""
        if _sk_validate_data is not None:
            return _sk_validate_data(est, X, y, reset=reset, **kw)
        return est._validate_data(X, y, reset=reset, **kw)

else:
    class NotFittedError(ValueError, AttributeError):
        """Raised when predict/score is called before fit."""

    class ConvergenceWarning(UserWarning):
        """Training stopped at max_iter before the stopping criterion was met."""

    class DataConversionWarning(UserWarning):
        """A column-vector y was flattened to 1-D."""

    class BaseEstimator:
        """get_params/set_params/repr from the __init__ signature (scikit-learn's convention)."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p.name for p in sig.parameters.values()
                          if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep: bool = True) -> Dict[str, Any]:
            return {k: getattr(self, k) for k in self._get_param_names()}

        def set_params(self, **params: Any) -> "BaseEstimator":
            valid = self._get_param_names()
            for k, v in params.items():
                if k not in valid:
                    raise ValueError(f"Invalid parameter {k!r} for estimator {type(self).__name__}. "
                                     f"Valid parameters are: {valid!r}.")
                setattr(self, k, v)
            return self

        def __repr__(self):
            sig = inspect.signature(type(self).__init__)
            changed = [f"{k}={getattr(self, k)!r}" for k, p in sig.parameters.items()
                       if k != "self" and not _same(getattr(self, k), p.default)]
            return f"{type(self).__name__}({', '.join(changed)})"

    class ClassifierMixin:
        _estimator_type = "classifier"

        def score(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> float:
            """Mean accuracy (exact match of all labels for multi-label targets)."""
            pred = self.predict(X)
            y = np.asarray(y)
            hit = (pred == y) if pred.ndim == 1 else np.all(pred == y, axis=1)
            return float(np.average(hit, weights=sample_weight))

    class RegressorMixin:
        _estimator_type = "regressor"

        def score(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> float:
            """Coefficient of determination R^2 (averaged uniformly over outputs)."""
            pred = self.predict(X)
            y = np.asarray(y, dtype=np.float64).reshape(pred.shape)
            w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            ss_res = np.average((y - pred) ** 2, axis=0, weights=w)
            ss_tot = np.average((y - np.average(y, axis=0, weights=w)) ** 2, axis=0, weights=w)
            r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1),
                          np.where(ss_res > 0, 0.0, 1.0))
            return float(np.mean(r2))

    def check_random_state(seed):
        if seed is None or seed is np.random:
            return np.random.mtrand._rand
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return np.random.RandomState(seed)
        if isinstance(seed, np.random.RandomState):
            return seed
        raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")

    def check_is_fitted(est, attributes=None):
        if not any(k.endswith("_") and not k.startswith("__") for k in vars(est)):
            raise NotFittedError(f"This {type(est).__name__} instance is not fitted yet. Call 'fit' "
                                 f"with appropriate arguments before using this estimator.")

    def type_of_target(y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.all(y == np.round(y))):
                vals = np.unique(y)
                return "multilabel-indicator" if set(vals.tolist()) <= {0, 1} else \
                    "multiclass-multioutput"
            return "continuous-multioutput"
        y = y.ravel()
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            return "continuous"
        return "binary" if np.unique(y).size <= 2 else "multiclass"

    def train_test_split(*arrays, test_size, random_state, stratify=None):
        rng = check_random_state(random_state)
        n = arrays[0].shape[0]
        n_test = max(1, int(np.ceil(test_size * n)))
        perm = rng.permutation(n)
        test, train = perm[:n_test], perm[n_test:]
        out = []
        for a in arrays:
            out += [a[train], a[test]]
        return out

    def validate_data(est, X, y="no_validation", reset=True, multi_output=False, y_numeric=False,
                      dtype=(np.float64, np.float32), **_):
        """Array conversion and checks with scikit-learn's messages (subset used by annfast)."""
        names = _feature_names(X)
        X = _check_X(X, dtype)
        if reset:
            est.n_features_in_ = X.shape[1]
            if names is not None:
                est.feature_names_in_ = names
            elif hasattr(est, "feature_names_in_"):
                del est.feature_names_in_
        else:
            fitted = getattr(est, "feature_names_in_", None)
            if fitted is not None and names is not None and list(fitted) != list(names):
                raise ValueError("The feature names should match those that were passed during fit.")
            if X.shape[1] != est.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                                 f"expecting {est.n_features_in_} features as input.")
        if isinstance(y, str) and y == "no_validation":
            return X
        if y is None:
            raise ValueError(f"requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and not multi_output and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                             f"[{X.shape[0]}, {y.shape[0] if y.ndim else 0}]")
        if y_numeric or y.dtype.kind == "f":
            if y.dtype.kind == "O":
                y = y.astype(np.float64)
            if y.dtype.kind in "f" and not np.isfinite(y).all():
                raise ValueError("Input y contains NaN or infinity.")
        return X, y

    def _check_X(X, dtype):
        if hasattr(X, "toarray"):
            raise TypeError("sparse input is not supported without scikit-learn; pass a dense array")
        arr = np.asarray(X)
        if arr.dtype.kind not in "biuf":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"could not convert X (dtype {arr.dtype}) to numbers") from None
        if arr.ndim != 2:
            raise ValueError(f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data "
                             f"either using array.reshape(-1, 1) if your data has a single feature "
                             f"or array.reshape(1, -1) if it contains a single sample.")
        if arr.shape[0] < 1:
            raise ValueError(f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 "
                             f"is required.")
        if arr.shape[1] < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 "
                             f"is required.")
        out_dtype = arr.dtype if arr.dtype in dtype else dtype[0]
        arr = np.asarray(arr, dtype=out_dtype)
        if not np.isfinite(arr).all():
            raise ValueError("Input X contains NaN or infinity.")
        return arr

    def _feature_names(X):
        cols = getattr(X, "columns", None)
        if cols is None:
            return None
        names = np.asarray([c for c in cols], dtype=object)
        if len(names) and all(isinstance(c, str) for c in names):
            return names
        return None

    def _same(a, b):
        try:
            return bool(a == b) if not isinstance(a, np.ndarray) else False
        except Exception:  # noqa: BLE001 - repr helper only
            return False


def column_or_1d_warn(y):
    """Flatten a (n, 1) target to 1-D with scikit-learn's DataConversionWarning."""
    warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the "
                  "shape of y to (n_samples, ), for example using ravel().",
                  DataConversionWarning, stacklevel=3)
    return np.ravel(y)
