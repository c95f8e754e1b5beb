"""scikit-learn compatible MLPClassifier / MLPRegressor trained by the annfast engine.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` (solvers
'adam' and 'sgd'), built on `annfast.Sequential`: every epoch runs in C.

>>> from sklearn.datasets import load_digits
>>> from annfast.sklearn import MLPClassifier
>>> X, y = load_digits(return_X_y=True)
>>> clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(X, y)   # doctest: +SKIP
>>> clf.score(X, y) > 0.95                                                    # doctest: +SKIP
True

scikit-learn is optional. When it is installed these classes are real scikit-learn estimators
(its BaseEstimator and mixins, `validate_data`, warnings): they pass
``sklearn.utils.estimator_checks.check_estimator`` and work in Pipeline, GridSearchCV,
cross_val_score and clone. Without it, ``annfast._sklearn_compat`` supplies stand-ins with the
same public behaviour (get_params/set_params, score, validation messages, DataFrame feature names).

What is mirrored from scikit-learn
----------------------------------
* Parameters, defaults and fitted attributes (coefs_, intercepts_, loss_curve_, n_iter_, t_,
  classes_, n_features_in_, feature_names_in_, best_loss_, validation_scores_,
  best_validation_score_, n_layers_, n_outputs_, out_activation_).
* Injecting weights by assigning ``coefs_``/``intercepts_`` (new lists, or items of the lists):
  predict, pickling and warm-started fits (warm_start, partial_fit) use the assigned arrays, read
  again at every use, as scikit-learn does; in-place edits of the fitted arrays reach the model
  too. New hidden widths rebuild the network (with a fresh optimiser state).
* Initialisation: uniform(-b, b) with b = sqrt(6 / (fan_in + fan_out)) (2 instead of 6 for
  'logistic'), weights and biases, drawn from ``random_state`` in scikit-learn's order.
* Batch order: each epoch's permutation is drawn from ``random_state`` exactly as scikit-learn
  draws it (and the early-stopping split with its train_test_split), so with the same
  random_state both fit the same batches from the same start: with solver='sgd' the trajectory
  is scikit-learn's up to rounding (tested). Each epoch is then one engine call (all batches in C,
  the rows gathered in C in that order; no per-epoch copies of X).
* Ctrl-C: training stops between two batches, warns "Training interrupted by user." and returns
  the estimator as fitted so far, as scikit-learn's does.
* Objective: mean loss per mini-batch + alpha / (2 * batch) * ||W||^2 (biases not penalised),
  ``loss_curve_`` is the sample-weighted mean of the per-batch objective over the epoch.
* Stopping: the epoch loss (or, with early_stopping, the validation score on a stratified
  validation_fraction split, best weights restored) has not improved by ``tol`` for more than
  ``n_iter_no_change`` epochs; ``ConvergenceWarning`` at max_iter. learning_rate='adaptive' divides
  the rate by 5 instead of stopping (sgd), 'invscaling' uses lr_init / (t_ + 1) ** power_t.

Differences (documented, deliberate)
-------------------------------------
* solver='lbfgs' is not offered (ValueError); sparse X is not accepted (sample_weight is, in fit and
  partial_fit, with scikit-learn's normalisation).
* dtype: the precision the network is trained in. 'float32' by default, like the rest of annfast
  (about twice the float64 speed); 'float64' gives scikit-learn's precision (the parity above is
  tested in float64); None follows X like scikit-learn (float32 stays float32, else float64).
  predict/predict_proba return X's precision whatever the model computes in.
  n_threads: threads for this estimator's fit/predict (None keeps annfast's global setting);
  results do not depend on it.
* Adam adds epsilon as PyTorch/Keras do (to sqrt(v_hat)); scikit-learn adds it before the bias
  correction, i.e. its epsilon is ours / sqrt(1 - beta_2^t): runs agree to ~1e-5 at first and then
  drift apart like any two floating-point runs (digits: 147 vs 158 epochs, same accuracy range).
* The log loss is computed from the logits (no clipping of probabilities at machine epsilon as
  scikit-learn does), so ``loss_curve_`` can differ slightly when some predictions saturate.
* ``n_threads`` sets annfast's global thread count for the duration of fit/predict.
* ``distributed``: None, or ``"mpi"`` (or an ``annfast.distributed`` strategy) to train
  data-parallel over the processes of an MPI launch (``mpiexec -n 2 python script.py``; every
  process calls ``fit`` with the same data and ends with the same weights; process 0's
  random_state draws are used everywhere). It applies to ``fit`` and ``partial_fit`` only:
  ``predict`` and ``score`` run on the calling process alone.
* Regression minimises mean squared error = 2x scikit-learn's squared loss (its 1/2 factor); the
  penalty is doubled to match and, for solver='sgd', the learning rate halved, so the steps are the
  same; ``loss_curve_`` reports scikit-learn's scale (half our MSE). For several outputs (multi-label,
  multi-output) the loss is averaged over outputs (scikit-learn's gradient sums over them).
* Extra activations: 'leaky_relu', 'elu', 'selu' (and the engine's names 'linear', 'sigmoid').
"""
import numbers
import warnings
from typing import Any, Literal, Optional, Sequence, Type, Union

import numpy as np
from numpy.typing import ArrayLike

from ._validate import cast_checked
from ._sklearn_compat import (HAVE_SKLEARN, BaseEstimator, ClassifierMixin, ConvergenceWarning,
                              RegressorMixin, check_is_fitted, check_random_state, column_or_1d_warn,
                              train_test_split, type_of_target, validate_data)

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names -> the engine's; the engine's own names are accepted too.
_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "linear": "linear", "sigmoid": "sigmoid", "leaky_relu": "leaky_relu", "elu": "elu",
                "selu": "selu"}
_SOLVERS = ("adam", "sgd")
_LR_SCHEDULES = ("constant", "invscaling", "adaptive")
_DTYPES = {None: None, "float32": np.float32, "float64": np.float64, np.float32: np.float32,
           np.float64: np.float64}


def _check_number(est, name, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
    """Validate hyperparameter `name` of `est`; error names it, the range and the value."""
    v = getattr(est, name)
    ok_type = isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real)
    if isinstance(v, (bool, np.bool_)) or not ok_type:
        kind = "an int" if integer else "a real number"
        raise ValueError(f"{name} must be {kind}, got {v!r} ({type(v).__name__})")
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {v!r}")
    return int(v) if integer else float(v)


def _check_choice(est, name, choices):
    v = getattr(est, name)
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {v!r}")
    return v


def _check_bool(est, name):
    v = getattr(est, name)
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {v!r}")
    return bool(v)


class _LearningRate:
    """The optimiser's learning-rate schedule: a callable (epoch -> lr) whose value the
    estimator sets between epochs (invscaling, adaptive), so one engine fit call can run them."""

    def __init__(self, value):
        self.value = float(value)

    def __call__(self, epoch):
        return self.value


def _engine():
    """The annfast engine pieces (imported late so this module imports on its own)."""
    import annfast
    from annfast import optimizers
    return annfast, optimizers


class _BaseMLP(BaseEstimator):
    """Shared parameter handling, model building and the training loop."""

    def __init__(self, hidden_layer_sizes: Union[int, Sequence[int]] = (100,),
                 activation: Literal["identity", "logistic", "tanh", "relu", "linear", "sigmoid",
                                     "leaky_relu", "elu", "selu"] = "relu", *,
                 solver: Literal["adam", "sgd"] = "adam", alpha: float = 0.0001,
                 batch_size: Union[int, Literal["auto"]] = "auto",
                 learning_rate: Literal["constant", "invscaling", "adaptive"] = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Union[int, np.random.RandomState, None] = None,
                 tol: float = 1e-4, verbose: Union[bool, int] = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 dtype: Union[Literal["float32", "float64"], Type[np.float32], Type[np.float64],
                              None] = "float32",
                 n_threads: Optional[int] = None, distributed: Optional[Any] = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.n_threads = n_threads
        self.distributed = distributed

    # ---------------------------------------------------------------- parameters
    def _validated_params(self):
        """Check every hyperparameter (ValueError naming it) and return them normalised.
        Nothing on the estimator changes here, so a rejected fit leaves it as it was."""
        hls = self.hidden_layer_sizes
        if isinstance(hls, numbers.Integral) and not isinstance(hls, (bool, np.bool_)):
            hls = [hls]
        try:
            hls = list(hls)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, got "
                             f"{self.hidden_layer_sizes!r}") from None
        if any(isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral) for h in hls):
            raise ValueError(f"hidden_layer_sizes must contain ints, got {self.hidden_layer_sizes!r}")
        if any(h <= 0 for h in hls):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}")
        p = {"hidden": [int(h) for h in hls]}
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not supported by annfast; use 'adam' or 'sgd'")
        p["solver"] = _check_choice(self, "solver", _SOLVERS)
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(map(repr, _ACTIVATIONS))}; "
                             f"got {self.activation!r}")
        p["activation"] = _ACTIVATIONS[self.activation]
        p["alpha"] = _check_number(self, "alpha", lo=0.0)
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(f"batch_size must be 'auto' or a positive int, got {self.batch_size!r}")
            p["batch_size"] = "auto"
        else:
            p["batch_size"] = _check_number(self, "batch_size", lo=1, integer=True)
        p["learning_rate"] = _check_choice(self, "learning_rate", _LR_SCHEDULES)
        p["learning_rate_init"] = _check_number(self, "learning_rate_init", lo=0.0, lo_open=True)
        p["power_t"] = _check_number(self, "power_t", lo=0.0)
        p["max_iter"] = _check_number(self, "max_iter", lo=1, integer=True)
        p["shuffle"] = _check_bool(self, "shuffle")
        p["tol"] = _check_number(self, "tol", lo=0.0)
        p["verbose"] = _check_verbose(self.verbose)
        p["warm_start"] = _check_bool(self, "warm_start")
        p["momentum"] = _check_number(self, "momentum", lo=0.0, hi=1.0)
        p["nesterov"] = _check_bool(self, "nesterovs_momentum")
        p["early_stopping"] = _check_bool(self, "early_stopping")
        p["validation_fraction"] = _check_number(self, "validation_fraction", lo=0.0, hi=1.0,
                                                 hi_open=True)
        p["beta_1"] = _check_number(self, "beta_1", lo=0.0, hi=1.0, hi_open=True)
        p["beta_2"] = _check_number(self, "beta_2", lo=0.0, hi=1.0, hi_open=True)
        p["epsilon"] = _check_number(self, "epsilon", lo=0.0, lo_open=True)
        p["n_iter_no_change"] = _check_number(self, "n_iter_no_change", lo=1, integer=True)
        key = self.dtype
        if isinstance(key, np.dtype):
            key = key.type
        if key not in _DTYPES:
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        p["dtype"] = _DTYPES[key]
        if self.n_threads is not None:
            p["n_threads"] = _check_number(self, "n_threads", lo=1, integer=True)
        else:
            p["n_threads"] = None
        p["distributed"] = _check_distributed(self.distributed)
        if p["early_stopping"] and p["validation_fraction"] == 0.0:
            raise ValueError("validation_fraction must be > 0 when early_stopping=True, got 0.0")
        check_random_state(self.random_state)  # raises ValueError for an unusable random_state
        return p

    # ---------------------------------------------------------------- model
    def _build(self, p, n_features, n_outputs, dtype, rs):
        """Create the Sequential (hidden layers + output layer) and initialise it like sklearn."""
        annfast, _ = _engine()
        sizes = [n_features] + p["hidden"] + [n_outputs]
        # scikit-learn's Glorot-uniform draw order: per layer, weights then biases.
        factor = 2.0 if p["activation"] == "sigmoid" else 6.0
        weights = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            weights.append(rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
            weights.append(rs.uniform(-bound, bound, fan_out).astype(dtype))
        # the engine's own RNG is unused: batches are formed from scikit-learn's permutations
        self._arch = {"hidden": list(p["hidden"]), "activation": p["activation"],
                      "n_features": n_features, "n_outputs": n_outputs, "dtype": np.dtype(dtype).name,
                      "seed": 0}
        self._rebuild_from_arch(weights)
        self._sync_attributes()

    def _rebuild_from_arch(self, weights):
        annfast, _ = _engine()
        a = self._arch
        # weights are set right after, so skip the engine's own random initialisation
        layers = [annfast.Dense(h, activation=a["activation"], kernel_initializer="zeros")
                  for h in a["hidden"]]
        layers.append(annfast.Dense(a["n_outputs"], activation=self._out_engine_activation,
                                    kernel_initializer="zeros"))
        self._model = annfast.Sequential(layers, input_dim=a["n_features"], dtype=a["dtype"],
                                         seed=a["seed"])
        self._model.set_weights(weights)

    def _sync_attributes(self):
        """coefs_/intercepts_ are views of the model's parameters (in-place edits reach the model)."""
        layers = self._model.layers
        self.coefs_ = [layer.kernel for layer in layers]
        self.intercepts_ = [layer.bias for layer in layers]
        self.n_layers_ = len(layers) + 1
        self.n_outputs_ = self._arch["n_outputs"]
        self.out_activation_ = self._out_sklearn_activation

    def _adopt_assigned_weights(self):
        """scikit-learn reads coefs_/intercepts_ at every predict and fit, so arrays assigned to
        them (the usual way to inject weights) must count. Arrays that are not this model's own
        views are checked and copied in, at every use (the user's arrays stay in coefs_, as in
        scikit-learn); new hidden widths rebuild the network (and reset the optimiser state)."""
        views = [v for layer in self._model.layers for v in (layer.kernel, layer.bias)]
        coefs, intercepts = getattr(self, "coefs_", None), getattr(self, "intercepts_", None)
        if _interleaved_views(coefs, intercepts, views):
            return
        weights = self._checked_assigned(coefs, intercepts)
        if [w.shape for w in weights] != [v.shape for v in views]:
            self._arch = dict(self._arch, hidden=[w.shape[1] for w in weights[0:-2:2]])  # a new dict:
            # a fit rejected after this restores the old __dict__, old model and old _arch together
            self._rebuild_from_arch([np.zeros(w.shape, w.dtype) for w in weights])
            self.__dict__.pop("_compiled_batch", None)  # the next fit compiles a fresh optimiser
            views = [v for layer in self._model.layers for v in (layer.kernel, layer.bias)]
        for view, w in zip(views, weights):
            view[...] = w  # NaN/inf copied as given, as scikit-learn would use them

    def _checked_assigned(self, coefs, intercepts):
        """[W0, b0, W1, b1, ...] from assigned coefs_/intercepts_ in the model's dtype, checked
        to chain n_features_in_ -> ... -> n_outputs_ over n_layers_ - 1 layers."""
        n = self.n_layers_ - 1
        for name, arrays in (("coefs_", coefs), ("intercepts_", intercepts)):
            if not isinstance(arrays, (list, tuple)) or len(arrays) != n:
                got = type(arrays).__name__
                if isinstance(arrays, (list, tuple)):
                    got += f" of {len(arrays)}"
                raise ValueError(f"{name} must be a list of {n} arrays (one per layer), got {got}")
        width, out = self.n_features_in_, []
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            W, b = _numeric(W, f"coefs_[{i}]"), _numeric(b, f"intercepts_[{i}]")
            if W.ndim != 2 or W.shape[0] != width:
                raise ValueError(f"coefs_[{i}] must have shape ({width}, n_units), got {W.shape}")
            if b.shape != (W.shape[1],):
                raise ValueError(f"intercepts_[{i}] must have shape ({W.shape[1]},) to match "
                                 f"coefs_[{i}], got {b.shape}")
            width = W.shape[1]
            dtype = self._arch["dtype"]
            out += [cast_checked(W, dtype, f"coefs_[{i}]"),
                    cast_checked(b, dtype, f"intercepts_[{i}]")]
        if width != self.n_outputs_:
            raise ValueError(f"coefs_[{n - 1}] must have {self.n_outputs_} columns (the outputs), "
                             f"got {width}")
        return out

    def _compile(self, p, batch):
        """(Re)create the optimiser; the penalty is alpha / (2 * batch) * ||W||^2 per batch."""
        _, optimizers = _engine()
        lr = p["learning_rate_init"] * self._lr_scale(p)
        self._lr = _LearningRate(lr)
        if p["solver"] == "adam":
            opt = optimizers.Adam(learning_rate=self._lr, beta_1=p["beta_1"], beta_2=p["beta_2"],
                                  epsilon=p["epsilon"])
        else:
            opt = optimizers.SGD(learning_rate=self._lr, momentum=p["momentum"],
                                 nesterov=p["nesterov"] and p["momentum"] > 0)
        self._set_penalty(p["alpha"] / (2.0 * batch) * self._penalty_scale)
        self._model.compile(loss=self._loss, optimizer=opt)
        self._compiled_batch = batch

    def _set_penalty(self, l2):
        """L2 coefficient of every Dense kernel (the engine adds l2 * sum W^2 per batch)."""
        for layer in self._model.layers:
            layer.l2 = float(l2)

    def _lr_scale(self, p):
        return 1.0

    # ---------------------------------------------------------------- training
    def _fit(self, X, y, incremental=False, classes=None, sample_weight=None):
        """Validate everything, then train; a call rejected before training leaves the
        estimator (and its model) exactly as it was."""
        saved = dict(self.__dict__)
        try:
            return self._fit_checked(X, y, incremental, classes, sample_weight)
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_checked(self, X, y, incremental, classes, sample_weight=None):
        from ._data_parallel import LOCAL, runner
        # a data-parallel fit (distributed=): every process checks; one rejecting rejects on all
        run = runner(self.distributed) if self.distributed is not None else LOCAL
        with run.agreed("fit"):
            p, X, y, Y, SW, first_pass, dtype, batch, early = self._fit_inputs(
                X, y, incremental, classes, sample_weight)
        with run.guard(), _threads(p["n_threads"]):
            rs = check_random_state(self.random_state)
            if run.distributed:   # process 0's draws (initial weights, splits, orders) everywhere
                rs.set_state(run.same(rs.get_state()))
            self._fit_prepared(p, X, y, Y, SW, first_pass, dtype, batch, early, incremental, rs, run)
        return self

    def _fit_inputs(self, X, y, incremental, classes, sample_weight=None):
        """Checked hyperparameters and data for _fit_checked (weights assigned to coefs_ adopted
        for a warm start)."""
        p = self._validated_params()
        if incremental and p["early_stopping"]:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "_model") or (not p["warm_start"] and not incremental)
        if not first_pass:  # warm start / partial_fit go on from assigned weights
            self._adopt_assigned_weights()
            self._sync_attributes()  # from here on coefs_ show the weights being trained
        X, y = validate_data(self, X, y, reset=first_pass, multi_output=True,
                             dtype=(np.float64, np.float32), **self._y_validation)
        if y.ndim == 2 and y.shape[1] == 1 and self._ravel_column_y:
            y = column_or_1d_warn(y)
        dtype = (p["dtype"] or (np.float32 if X.dtype == np.float32 else np.float64)) if first_pass \
            else np.dtype(self._arch["dtype"]).type
        Y = cast_checked(self._encode_targets(y, first_pass, incremental, classes), dtype, "y")
        X = cast_checked(X, dtype, "X")  # 1e39 in a float32 estimator: an error, not inf
        SW = _check_weights(sample_weight, X.shape[0], dtype)
        if not first_pass and Y.shape[1] != self._arch["n_outputs"]:
            raise ValueError(f"y has {Y.shape[1]} outputs but the fitted model has "
                             f"{self._arch['n_outputs']}; refit without warm_start")
        n = X.shape[0]
        batch = n if p["batch_size"] == "auto" and n < 200 else (200 if p["batch_size"] == "auto"
                                                                 else p["batch_size"])
        if p["batch_size"] != "auto" and p["batch_size"] > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to "
                          "be clipped", UserWarning, stacklevel=4)
        batch = max(1, min(batch, n))
        early = p["early_stopping"] and not incremental
        if early and int(np.ceil(p["validation_fraction"] * n)) < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        return p, X, y, Y, SW, first_pass, dtype, batch, early

    def _fit_prepared(self, p, X, y, Y, SW, first_pass, dtype, batch, early, incremental, rs, run):
        """_fit_checked once everything is checked: build or update the model, then train."""
        if first_pass:
            self._build(p, X.shape[1], Y.shape[1], dtype, rs)
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if p["early_stopping"] and not incremental:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        if first_pass or not incremental or getattr(self, "_compiled_batch", None) != batch:
            if incremental and not first_pass and hasattr(self, "_compiled_batch"):
                state = self._model.optimizer_state()
                self._compile(p, batch)
                self._model.set_optimizer_state(state)
            else:
                self._compile(p, batch)
        X_val = Y_val = SW_val = None
        if early:
            # scikit-learn stratifies when the encoded targets are one column (binary)
            stratify = y if (self._is_classifier and Y.shape[1] == 1 and y.ndim == 1) else None
            if SW is None:
                X, X_val, Y, Y_val = train_test_split(X, Y, random_state=rs,
                                                      test_size=p["validation_fraction"],
                                                      stratify=stratify)
            else:  # the weights split with their rows, as scikit-learn does
                X, X_val, Y, Y_val, SW, SW_val = train_test_split(
                    X, Y, SW, random_state=rs, test_size=p["validation_fraction"], stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            batch = min(batch, X.shape[0])
            if batch != self._compiled_batch:
                self._compile(p, batch)
            if self.validation_scores_ is None:  # warm start from a fit without early stopping
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
        self._run(p, X, Y, batch, 1 if incremental else p["max_iter"], incremental,
                  X_val, Y_val, rs, run, SW, SW_val)

    def _run(self, p, X, Y, batch, epochs, incremental, X_val, Y_val, rs, run, SW=None, SW_val=None):
        """The epoch loop. Each epoch is one engine call (all mini-batches in C, GIL released,
        rows gathered in C in the given order); Python only draws scikit-learn's permutation
        from random_state (so the batch order, and with it the whole trajectory, is
        scikit-learn's) and applies its stopping rule. Ctrl-C stops between two batches, with a
        warning, as scikit-learn's does."""
        from . import _core
        from ._busy import exclusive
        # the whole loop holds the model, as Sequential.fit does (another thread waits)
        with exclusive(self._model), _core.FitGuard():
            self._run_epochs(p, X, Y, batch, epochs, incremental, X_val, Y_val, rs, run, SW, SW_val)

    def _run_epochs(self, p, X, Y, batch, epochs, incremental, X_val, Y_val, rs, run, SW=None,
                    SW_val=None):
        from . import _core
        early = X_val is not None
        halve = 0.5 if self._is_regressor else 1.0  # report sklearn's squared-loss scale
        scale = self._lr_scale(p)
        n = X.shape[0]
        X, Y = self._model._fit_setup_checked(X, Y)
        run.begin(self._model, X, Y)  # data-parallel: process 0's model everywhere, same data
        talk = p["verbose"] and run.is_root
        order = np.arange(n, dtype=np.uint64) if p["shuffle"] else None
        best = None
        stopped = False
        self.n_iter_ = 0
        try:
            for _ in range(epochs):
                if p["shuffle"] and not _core.shuffle_like_numpy(order, rs):
                    perm = np.arange(n)
                    rs.shuffle(perm)  # what sklearn.utils.shuffle draws (the call above draws
                    order = order[perm]  # the same, in C)
                loss, interrupted = self._model._epoch_in_order(X, Y, batch, order, run, SW)
                if interrupted:
                    warnings.warn("Training interrupted by user.", UserWarning, stacklevel=6)
                    stopped = True
                    break
                loss = float(loss) * halve
                self.loss_curve_.append(loss)
                self.n_iter_ += 1
                self.t_ += n
                if talk:
                    print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
                if early:
                    score = self._val_score(X_val, Y_val, SW_val)
                    self.validation_scores_.append(score)
                    if talk:
                        print(f"Validation score: {score:f}")
                    if score < self.best_validation_score_ + p["tol"]:
                        self._no_improvement_count += 1
                    else:
                        self._no_improvement_count = 0
                    if score > self.best_validation_score_:
                        self.best_validation_score_ = score
                        best = self._model.get_weights()
                else:
                    if loss > self.best_loss_ - p["tol"]:
                        self._no_improvement_count += 1
                    else:
                        self._no_improvement_count = 0
                    if loss < self.best_loss_:
                        self.best_loss_ = loss
                if p["solver"] == "sgd" and p["learning_rate"] == "invscaling":
                    self._lr.value = p["learning_rate_init"] * scale / (self.t_ + 1) ** p["power_t"]
                if self._no_improvement_count > p["n_iter_no_change"]:
                    what = "Validation score" if early else "Training loss"
                    msg = (f"{what} did not improve more than tol={p['tol']:f} for "
                           f"{p['n_iter_no_change']} consecutive epochs.")
                    if p["solver"] == "sgd" and p["learning_rate"] == "adaptive" \
                            and self._lr.value > 1e-6 * scale:
                        self._lr.value /= 5.0
                        self._no_improvement_count = 0
                        if talk:
                            print(msg + f" Setting learning rate to {self._lr.value / scale:f}")
                    else:
                        if talk:
                            print(msg + (" Learning rate too small. Stopping."
                                         if p["learning_rate"] == "adaptive" and p["solver"] == "sgd"
                                         else " Stopping."))
                        stopped = True
                        break
        except KeyboardInterrupt:
            # Ctrl-C while Python code ran between two engine calls: as scikit-learn does
            warnings.warn("Training interrupted by user.", UserWarning, stacklevel=6)
            stopped = True
        if early and best is not None:
            self._model.set_weights(best)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        if not incremental and not stopped and run.is_root:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({p['max_iter']}) reached and "
                          f"the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=5)

    # ---------------------------------------------------------------- prediction
    def _forward(self, X):
        """Network outputs for X, returned in X's precision (float32 input: float32, else
        float64) whatever the model computes in, as scikit-learn does."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        self._adopt_assigned_weights()
        out_dtype = X.dtype
        X = cast_checked(X, self._arch["dtype"], "X")
        with _threads(self.n_threads if isinstance(self.n_threads, numbers.Integral)
                      and not isinstance(self.n_threads, bool) and self.n_threads >= 1 else None):
            return np.asarray(self._model.predict(X), dtype=out_dtype)

    # ---------------------------------------------------------------- pickling
    def __getstate__(self):
        if getattr(self, "_model", None) is not None:
            self._adopt_assigned_weights()  # pickle the weights predict would use
        state = self.__dict__.copy()
        model = state.pop("_model", None)
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        state.pop("_lr", None)
        if model is not None:
            state["_weights_blob"] = model.get_weights()
            if hasattr(self, "_compiled_batch"):
                try:
                    state["_optimizer_blob"] = model.optimizer_state()
                except (AttributeError, RuntimeError, ValueError):
                    state.pop("_compiled_batch", None)
            state["_lr_value"] = getattr(getattr(self, "_lr", None), "value", None)
        return state

    def __setstate__(self, state):
        weights = state.pop("_weights_blob", None)
        opt = state.pop("_optimizer_blob", None)
        lr_value = state.pop("_lr_value", None)
        self.__dict__.update(state)
        if weights is not None:
            self._rebuild_from_arch(weights)
            self._sync_attributes()
            if opt is not None and hasattr(self, "_compiled_batch"):
                self._compile(self._validated_params(), self._compiled_batch)
                if lr_value is not None:
                    self._lr.value = lr_value
                self._model.set_optimizer_state(opt)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return tags


def _interleaved_views(coefs, intercepts, views):
    """True if coefs_/intercepts_ are still exactly the model's own views [W0, b0, W1, ...]."""
    if not isinstance(coefs, list) or not isinstance(intercepts, list) or len(coefs) != len(intercepts):
        return False
    given = [a for pair in zip(coefs, intercepts) for a in pair]
    return len(given) == len(views) and all(a is v for a, v in zip(given, views))


def _numeric(a, name):
    """a as an ndarray of a real numeric dtype (TypeError naming it otherwise)."""
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers, got "
                        f"{type(a).__name__}{'' if arr is None else ' of dtype ' + str(arr.dtype)}")
    return arr


def _check_distributed(value):
    """None, "mpi" or an annfast.distributed strategy (resolved at fit)."""
    from .distributed import MPIStrategy, SplitBatch
    if value is None or isinstance(value, (MPIStrategy, SplitBatch)) or \
            (isinstance(value, str) and value.lower() == "mpi"):
        return value
    raise ValueError(f"distributed must be None, 'mpi' or an annfast.distributed strategy, got {value!r}")


def _check_verbose(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral) and v >= 0:
        return bool(v)
    raise ValueError(f"verbose must be a bool or a non-negative int, got {v!r}")


class _threads:
    """Context manager: run with n OpenMP threads (None: leave annfast's setting alone)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        if self.n is not None:
            import annfast
            self.old = annfast.get_num_threads()
            annfast.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.n is not None:
            import annfast
            annfast.set_num_threads(self.old)
        return False


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier (log loss), a faster drop-in for scikit-learn's.

    Binary targets use one logistic output, multi-class a softmax, multi-label indicator
    matrices one logistic output per label. Class labels may be any sortable values (ints,
    strings). See the module docstring for the parameters and what is mirrored from scikit-learn.

    Example
    -------
    >>> import numpy as np
    >>> from annfast.sklearn import MLPClassifier
    >>> X = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]] * 25)
    >>> y = np.array(["no", "yes", "yes", "no"] * 25)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), solver="adam", learning_rate_init=0.05,
    ...                     max_iter=500, random_state=0).fit(X, y)
    >>> clf.predict([[0., 1.], [1., 1.]]).tolist()
    ['yes', 'no']
    """

    _is_classifier = True
    _is_regressor = False
    _ravel_column_y = True
    _y_validation = {}
    _penalty_scale = 1.0

    @property
    def _loss(self):
        return "categorical_crossentropy" if self._kind == "multiclass" else "binary_crossentropy"

    @property
    def _out_engine_activation(self):
        return "softmax" if self._kind == "multiclass" else "sigmoid"

    @property
    def _out_sklearn_activation(self):
        return "softmax" if self._kind == "multiclass" else "logistic"

    def _encode_targets(self, y, first_pass, incremental, classes):
        """Define classes_ (first fit) or check y against it; return the target matrix."""
        kind = _classification_kind(y)
        if incremental and not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            classes = np.asarray(classes)
            if kind == "multilabel":
                classes = np.arange(y.shape[1])
            else:
                classes = np.unique(classes)
                _check_class_count(classes)
                kind = "binary" if classes.size == 2 else "multiclass"
            self.classes_, self._kind = classes, kind
        elif first_pass:
            if kind == "multilabel":
                self.classes_ = np.arange(y.shape[1])
            else:
                self.classes_ = np.unique(y)
                _check_class_count(self.classes_)
                kind = "binary" if self.classes_.size == 2 else "multiclass"
            self._kind = kind
        else:
            if incremental and classes is not None and \
                    not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
                raise ValueError(f"`classes={np.unique(np.asarray(classes))!r}` is not the same as "
                                 f"on the first call to partial_fit, was: {self.classes_!r}")
            if (kind == "multilabel") != (self._kind == "multilabel"):
                raise ValueError(f"y is {kind} but the model was fitted for {self._kind} targets")
            if kind != "multilabel":
                found = np.unique(y)
                if self.warm_start and not incremental and \
                        not np.array_equal(found, self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same classes as "
                                     f"in the previous call to fit. Previously got {self.classes_}, "
                                     f"`y` has {found}")
                if np.setdiff1d(found, self.classes_).size:
                    raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                     f"{self.classes_}. 'y' has {found}.")
        if self._kind == "multilabel":
            if y.shape[1] != self.classes_.size:
                raise ValueError(f"y has {y.shape[1]} labels, the model {self.classes_.size}")
            return np.asarray(y, dtype=np.float64)
        idx = np.searchsorted(self.classes_, y)
        if self._kind == "binary":
            return (idx == 1).astype(np.float64).reshape(-1, 1)
        Y = np.zeros((y.shape[0], self.classes_.size))
        Y[np.arange(y.shape[0]), idx] = 1.0
        return Y

    def _decode(self, P):
        if self._kind == "multilabel":
            return (P > 0.5).astype(int)
        if self._kind == "binary":
            return self.classes_[(P[:, 0] > 0.5).astype(int)]
        return self.classes_[np.argmax(P, axis=1)]

    def _val_score(self, X_val, Y_val, SW_val=None):
        """Accuracy on the encoded validation targets (exact match for multi-label), weighted by
        SW_val as scikit-learn's score is."""
        P = np.asarray(self._model.predict(X_val))
        if self._kind == "multiclass":
            hit = np.argmax(P, axis=1) == np.argmax(Y_val, axis=1)
        else:
            hit = np.all((P > 0.5) == (Y_val > 0.5), axis=1)
        return float(np.average(hit, weights=None if SW_val is None else SW_val.astype(np.float64)))

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> "MLPClassifier":
        """Fit the model to X (n_samples, n_features) and labels y (n_samples,) or a multi-label
        indicator matrix (n_samples, n_labels); sample_weight (n_samples,) weights each sample's
        loss as scikit-learn does (each batch's objective over its weight sum). Returns self."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                    classes: Optional[ArrayLike] = None) -> "MLPClassifier":
        """One epoch over (X, y), keeping the optimiser state between calls. `classes` (all
        labels that will ever appear) is required on the first call."""
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels (n_samples,), or a 0/1 matrix for multi-label models."""
        return self._decode(self._forward(X))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns ordered as classes_."""
        P = self._forward(X)
        if self._kind == "binary":
            return np.hstack([1.0 - P, P])
        return P

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (squared error, identity output), a faster drop-in for
    scikit-learn's. y may be (n_samples,) or (n_samples, n_outputs).

    Example
    -------
    >>> import numpy as np
    >>> from annfast.sklearn import MLPRegressor
    >>> X = np.linspace(-3, 3, 200).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", learning_rate_init=0.01,
    ...                    max_iter=2000, random_state=0).fit(X, np.sin(X).ravel())
    >>> bool(reg.score(X, np.sin(X).ravel()) > 0.95)
    True
    """

    _is_classifier = False
    _is_regressor = True
    _ravel_column_y = True
    _y_validation = {"y_numeric": True}
    _loss = "mse"
    _out_engine_activation = "linear"
    _out_sklearn_activation = "identity"
    # our MSE is twice sklearn's squared loss: double the penalty so the objective is 2x theirs
    _penalty_scale = 2.0

    def _lr_scale(self, p):
        # SGD on 2x the objective with half the rate takes sklearn's steps (Adam is scale-free).
        return 0.5 if p["solver"] == "sgd" else 1.0

    def _encode_targets(self, y, first_pass, incremental, classes):
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _val_score(self, X_val, Y_val, SW_val=None):
        P = np.asarray(self._model.predict(X_val), dtype=np.float64)
        return _r2(Y_val.astype(np.float64), P, None if SW_val is None else SW_val.astype(np.float64))

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> "MLPRegressor":
        """Fit the model to X (n_samples, n_features) and y (n_samples,) or (n_samples, n_outputs);
        sample_weight (n_samples,) weights each sample's loss as scikit-learn does."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X: ArrayLike, y: ArrayLike,
                    sample_weight: Optional[ArrayLike] = None) -> "MLPRegressor":
        """One epoch over (X, y), keeping the optimiser state between calls."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions (n_samples,) for one output, else (n_samples, n_outputs)."""
        P = self._forward(X)
        return P.ravel() if P.shape[1] == 1 else P

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}


def _check_weights(sample_weight, n, dtype):
    """sample_weight as a C-contiguous (n,) array of dtype (finite, >= 0), or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must be a 1-D array of {n} weights, got shape {w.shape}")
    if w.dtype.kind not in "iuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}")
    w = cast_checked(w.astype(np.float64), dtype, "sample_weight")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or inf")
    if w.size and w.min() < 0:
        raise ValueError(f"sample_weight must be >= 0, got a minimum of {w.min()}")
    if w.size and not w.any():
        raise ValueError("sample_weight must contain at least one non-zero weight")
    return np.ascontiguousarray(w)


def _r2(Y, P, W=None):
    """Coefficient of determination, averaged over outputs (weighted rows as r2_score)."""
    W = np.ones(Y.shape[0]) if W is None else W
    mean = np.average(Y, axis=0, weights=W)
    ss_res = (W[:, None] * (Y - P) ** 2).sum(axis=0)
    ss_tot = (W[:, None] * (Y - mean) ** 2).sum(axis=0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                  np.where(ss_res > 0, 0.0, 1.0))
    return float(np.mean(r2))


def _classification_kind(y):
    t = type_of_target(y)
    if t == "multilabel-indicator":
        return "multilabel"
    if t in ("binary", "multiclass"):
        return t
    if t == "multiclass-multioutput":
        raise ValueError("Multioutput target data is not supported with label binarization")
    raise ValueError(f"Unknown label type: {t}. Maybe you are trying to fit a classifier, which "
                     f"expects discrete classes on a regression target with continuous values.")


def _check_class_count(classes):
    if classes.size < 2:
        raise ValueError(f"MLPClassifier needs samples of at least 2 classes in the data, but the "
                         f"data contains only one class: {classes[0]!r}")


if not HAVE_SKLEARN:  # the stand-in BaseEstimator has no tags machinery
    del _BaseMLP.__sklearn_tags__, MLPClassifier.__sklearn_tags__, MLPRegressor.__sklearn_tags__
