"""Sequential: a stack of layers trained by the C engine (csrc/net.c, csrc/train.c).

>>> import numpy as np, annfast as af
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
>>> y = np.array([[0], [1], [1], [0]], dtype=np.float32)
>>> model = af.Sequential([af.Dense(8, activation="tanh"), af.Dense(1, activation="sigmoid")],
...                       input_dim=2, seed=0)
>>> model.compile(loss="binary_crossentropy", optimizer=af.optimizers.Adam(0.05))
>>> history = model.fit(X, y, epochs=300, batch_size=4, verbose=0)
>>> bool(np.all((model.predict(X) > 0.5) == (y > 0.5)))
True

All parameters live in one flat buffer of the model's dtype (layer.weights etc. are views into
it); an epoch (shuffle, mini-batches, forward, loss, backward, penalties, clipping, optimiser
update) is one C call with the GIL released. Python runs once per epoch for the learning-rate
schedule, validation, callbacks and progress.
"""
import math

import numpy as np

from . import _core
from . import losses as _losses
from . import metrics as _metrics
from ._buffers import aligned_zeros
from ._busy import exclusive_method
from ._settings import Setting, generation as _settings_generation
from ._validate import as_2d, check_float, check_int
from .layers import Layer

_DTYPES = {"float32": np.float32, "float64": np.float64}
DEFAULT_BATCH = 32        # fit's default batch size (Keras)
PREDICT_CHUNK = 256       # rows per forward call in predict/evaluate/gradients
PROGRESS_SLICES = 20      # C calls per epoch when fit draws a progress bar (verbose=1)


def _check_dtype(dtype):
    name = np.dtype(dtype).name if isinstance(dtype, type) or isinstance(dtype, np.dtype) else dtype
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return name


def _check_loss(value, label):
    return None if value is None else _losses.get(value)


class Sequential:
    """A feed-forward network: layers applied in order, trained in C.

    Parameters
    ----------
    layers : list of Dense / BatchNormalization / Dropout
    input_dim : int or None (then taken from the first X seen by fit/predict)
    dtype : 'float32' (default) or 'float64'; all parameters and computation use it
    seed : int or None; makes initialisation, shuffling and dropout reproducible

    Threads: every public method (fit, predict, evaluate, gradients, get/set_weights,
    optimizer_state/set_optimizer_state, save, build, compile, summary, ...) holds the model for
    the whole call. Another thread calling the same model waits until that call returns, so
    concurrent calls give the results of running them one after the other (two concurrent
    fit(epochs=3) train 6 epochs; save() during a fit writes the state the fit ends with). The
    thread holding the model may call it again (callbacks may call evaluate, get_weights, save).
    A wait that would deadlock (two threads each holding one model and asking for the other's)
    raises RuntimeError. Different models run in parallel.

    See the module docstring for an example.
    """

    # The loss (a name; set by compile). Assigning it later is checked and used by the next call.
    loss = Setting(_check_loss)

    def __init__(self, layers=None, input_dim=None, dtype="float32", seed=None):
        self._dtype_name = _check_dtype(dtype)
        self.dtype = np.dtype(_DTYPES[self._dtype_name])
        if seed is not None:
            seed = check_int(seed, "seed", minimum=0)
        self.seed = seed
        layers = [] if layers is None else list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be an annfast layer (Dense, BatchNormalization, "
                                f"Dropout), got {type(layer).__name__}")
            if layer.built:
                raise ValueError(f"layers[{i}] already belongs to a model; create a new layer object")
        if len(set(map(id, layers))) != len(layers):
            raise ValueError("the same layer object appears twice in layers")
        self._layers = layers
        self.input_dim = None
        self._params = self._grads = self._stats = None
        self._engine = None
        self._engine_key = self._engine_stamp = None   # see _get_engine
        self.loss = None
        self.optimizer = None
        self.metrics = []
        self._opt_state = None
        self._step = 0
        self._epoch = 0
        self.stop_training = False
        self.interrupted = False
        self.history = None
        if input_dim is not None:
            self.build(input_dim)

    # ---- copy and pickle ---------------------------------------------------------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        # a C description of this object's buffers: rebuilt on demand
        state["_engine"] = state["_engine_key"] = state["_engine_stamp"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for layer in self._layers:  # point the layers' views at this copy's buffers
            layer._rebind_views()

    # ---- structure ---------------------------------------------------------------------------
    @property
    def layers(self):
        """The layers, in order (a copy of the list)."""
        return list(self._layers)

    @property
    def built(self):
        return self._params is not None

    @exclusive_method
    def add(self, layer):
        """Append a layer (only before the model is built)."""
        if self.built:
            raise ValueError("cannot add layers to a built model")
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be an annfast layer, got {type(layer).__name__}")
        if layer.built or any(layer is other for other in self._layers):
            raise ValueError("this layer object already belongs to a model")
        self._layers.append(layer)

    @exclusive_method
    def build(self, input_dim):
        """Create the parameter buffers for inputs of width input_dim and initialise them."""
        input_dim = check_int(input_dim, "input_dim", minimum=1)
        if self.built:
            if input_dim != self.input_dim:
                raise ValueError(f"model is built for input_dim={self.input_dim}, got {input_dim}")
            return
        self._require_layers()
        width, n_params, n_stats, layout = input_dim, 0, 0, []
        for layer in self._layers:
            layer._attach(self, width)
            offs, soffs = {}, {}
            for name, shape in layer._param_shapes():
                offs[name] = (n_params, shape)
                n_params += int(np.prod(shape))
            for name, shape in layer._stat_shapes():
                soffs[name] = (n_stats, shape)
                n_stats += int(np.prod(shape))
            layout.append((offs, soffs))
            width = layer.n_out
        params = aligned_zeros(n_params, self.dtype)
        stats = aligned_zeros(n_stats, self.dtype)
        seq = np.random.SeedSequence(self.seed)
        rng = np.random.default_rng(seq)
        for layer, (offs, soffs) in zip(self._layers, layout):
            layer._offsets = {k: v[0] for k, v in offs.items()}
            layer._stat_offsets = {k: v[0] for k, v in soffs.items()}
            layer._bind_views(params, stats)
            layer._init_params(rng, self.dtype)
        for layer in self._layers:
            layer._model = self
        self._params, self._stats = params, stats
        self._grads = aligned_zeros(n_params, self.dtype)
        # Shuffle order and dropout masks: a 64-bit key derived from the seed.
        self._c_seed = int(seq.spawn(1)[0].generate_state(1, np.uint64)[0])
        self.input_dim = input_dim
        self._engine = None
        if self.optimizer is not None:
            self._reset_optimizer()

    @exclusive_method
    def count_params(self):
        """Number of trainable parameters (0 before build)."""
        return 0 if self._params is None else int(self._params.size)

    def _get_engine(self):
        """The C description of the network. Settings used in C (layer activation/alpha/l1/l2/
        rate/momentum/epsilon, optimizer clipnorm/clipvalue, the loss) may change after it was
        made: any assignment to a Setting advances a global generation, and when it moved (or the
        optimizer object was replaced) the description is recomputed and, if it differs, rebuilt
        (its workspaces with it). The common case costs one comparison per C call."""
        stamp = (_settings_generation(), self.optimizer)
        if self._engine is not None and self._engine_stamp is not None and \
                self._engine_stamp[0] == stamp[0] and self._engine_stamp[1] is stamp[1]:
            return self._engine
        specs = [layer._spec(layer._offsets, layer._stat_offsets) for layer in self._layers]
        opt = self.optimizer
        clipnorm = (opt.clipnorm or 0.0) if opt is not None else 0.0
        clipvalue = (opt.clipvalue or 0.0) if opt is not None else 0.0
        key = (specs, self.loss or "mse", clipnorm, clipvalue)
        if self._engine is None or key != self._engine_key:
            self._engine = _core.NetEngine(specs, self.input_dim, key[1], self._params, self._grads,
                                           self._stats, clipnorm, clipvalue, self._c_seed)
            self._engine_key = key
        self._engine_stamp = stamp
        return self._engine

    # ---- compile -----------------------------------------------------------------------------
    @exclusive_method
    def compile(self, loss, optimizer="sgd", metrics=None):
        """Set the loss (name), the optimiser (name or annfast.optimizers instance) and the
        metrics ('accuracy', 'rmse'). Resets the optimiser state."""
        from . import optimizers
        loss = _losses.get(loss)
        optimizer = optimizers.get(optimizer)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, str):
            metrics = [metrics]
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be None or a list of names, got {type(metrics).__name__}")
        metrics = [_metrics.get(m) for m in metrics]
        self.loss, self.optimizer, self.metrics = loss, optimizer, list(dict.fromkeys(metrics))
        self._engine = None
        if self.built:
            self._reset_optimizer()

    def _reset_optimizer(self):
        slots = self.optimizer.state_slots
        self._opt_state = aligned_zeros(slots * self._params.size, self.dtype)
        self._step = 0
        self._epoch = 0

    def _require_compiled(self, what):
        if self.loss is None:
            raise ValueError(f"call compile(loss=..., optimizer=...) before {what}")

    # ---- data --------------------------------------------------------------------------------
    def _x(self, X, name="X"):
        n_cols = self.input_dim
        X = as_2d(X, name, n_cols=n_cols, dtype=self.dtype)
        if X.shape[1] == 0:
            raise ValueError(f"{name} must have at least one column, got shape {X.shape}")
        return X

    def _n_out(self):
        return self._layers[-1].n_out

    def _xy(self, X, y, xname="X", yname="y"):
        X = self._x(X, xname)
        y = _losses.prepare_targets(self.loss, y, self._n_out(), self.dtype, yname)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"{xname} has {X.shape[0]} rows but {yname} has {y.shape[0]}")
        return X, y

    # ---- training ----------------------------------------------------------------------------
    @exclusive_method
    def fit(self, X, y, epochs=1, batch_size=None, shuffle=True, validation_data=None,
            validation_split=0.0, callbacks=None, verbose=1):
        """Train for `epochs` epochs; returns a History (history.history: per-epoch 'loss',
        requested metrics, and 'val_*' when validating).

        batch_size: rows per step (default 32; larger than the data means full-batch).
        validation_split: fraction of the LAST rows (before shuffling) held out for validation.
        callbacks: annfast.callbacks.Callback objects. verbose: 0 silent, 1 progress bar per
        epoch, 2 one line per epoch. Ctrl-C stops at a clean point between two batches: the
        model keeps the weights of the last completed step, model.interrupted is set,
        model.history holds the history so far, and KeyboardInterrupt is raised.
        (annfast._core.request_stop() from a callback stops the same way but returns the history.)
        Ctrl-C is routed to the engine only while a C call runs in the main thread and only if
        Python's SIGINT handler is the default one: callbacks are interrupted by KeyboardInterrupt
        like any Python code, an ignored SIGINT stays ignored, your own handler is called (between
        C calls; it may call request_stop()), and training in other threads goes on.
        """
        from . import callbacks as _cbs
        self._require_compiled("fit")
        epochs = check_int(epochs, "epochs", minimum=0)
        batch_size = DEFAULT_BATCH if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
        verbose = check_int(verbose, "verbose", minimum=0)
        if verbose > 2:
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose}")
        split = check_float(validation_split, "validation_split", minimum=0.0)
        if split >= 1:
            raise ValueError(f"validation_split must be in [0, 1), got {split}")
        if validation_data is not None and split > 0:
            raise ValueError("give validation_data or validation_split, not both")
        cbs = _cbs.CallbackList(callbacks, model=None)  # validates the list; bound to self below
        X, y = self._xy(X, y) if self.built else self._xy_unbuilt(X, y)
        if X.shape[0] == 0:
            raise ValueError("X must have at least one row")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            val = self._xy(*validation_data, xname="validation_data X", yname="validation_data y") \
                if self.built else self._xy_unbuilt(*validation_data, n_cols=X.shape[1])
            if val[0].shape[0] == 0:
                raise ValueError("validation_data must have at least one row")
        elif split > 0:
            n_val = int(X.shape[0] * split)
            if n_val < 1 or n_val >= X.shape[0]:
                raise ValueError(f"validation_split={split} leaves {n_val} of {X.shape[0]} rows for "
                                 "validation; need at least one row on each side")
            val = (X[-n_val:], y[-n_val:])
            X, y = np.ascontiguousarray(X[:-n_val]), np.ascontiguousarray(y[:-n_val])
        # All checks passed: from here on the model may change.
        if not self.built:
            self.build(X.shape[1])
        batch = min(batch_size, X.shape[0])
        self._get_engine()  # the C description is checked before any callback runs
        self._sync_opt_state()
        perm = np.empty(X.shape[0], dtype=np.uint64)
        user = list(cbs.callbacks[:-1])
        progress = None
        if verbose:
            from .progress import Progress
            progress = Progress(verbose=verbose, epochs=epochs, n_samples=X.shape[0])
            user.append(progress)
        n_batches = -(-X.shape[0] // batch)
        # verbose=1 draws a bar within the epoch: the C epoch then runs in up to PROGRESS_SLICES
        # calls of whole batches (same order and results as one call)
        per_call = -(-n_batches // PROGRESS_SLICES) if verbose == 1 else n_batches
        params = {"epochs": epochs, "batch_size": batch, "samples": X.shape[0], "verbose": verbose,
                  "metrics": list(self.metrics)}
        cbs = _cbs.CallbackList(user, model=self, params=params)
        self.stop_training = False
        self.interrupted = False
        with _core.FitGuard() as guard:
            try:
                cbs.on_train_begin({})
                for epoch in range(epochs):
                    cbs.on_epoch_begin(epoch, {})
                    cfg = self.optimizer.c_config(self._epoch)
                    # (the engine again: a callback may have changed a setting)
                    stats, stopped = self._run_epoch(self._get_engine(), X, y, batch, bool(shuffle),
                                                     cfg, perm, n_batches, per_call, progress)
                    if stopped or guard.poll():
                        # Ctrl-C or request_stop(): the weights are those of the last completed step
                        self.interrupted = True
                        break
                    self._epoch += 1
                    logs = self._logs(stats["loss_sum"] / stats["n_seen"], stats["correct"],
                                      stats["sse"], stats["n_seen"])
                    if val is not None:
                        logs.update({"val_" + k: v for k, v in self._evaluate_logs(*val).items()})
                    cbs.on_epoch_end(epoch, logs)
                    if self.stop_training:
                        break
                cbs.on_train_end({})
            except KeyboardInterrupt:
                # Ctrl-C while Python ran (a callback, validation): raised there, as in any Python
                # code; the engine's calls are whole, so the weights are of a completed step
                self.interrupted = True
                self.history = cbs.history
                raise
        self.history = cbs.history
        if guard.sigint:
            raise KeyboardInterrupt(f"training interrupted after {len(cbs.history.epoch)} complete "
                                    "epoch(s); the model keeps the weights of its last completed step "
                                    "and model.history holds the history so far")
        if self.interrupted and verbose:
            print(f"Training interrupted after {len(cbs.history.epoch)} complete epoch(s); "
                  "the model keeps the weights of its last completed step.")
        return cbs.history

    def _sync_opt_state(self):
        if self._opt_state.size != self.optimizer.state_slots * self._params.size:
            # the optimiser was reconfigured after compile (e.g. momentum switched on): fresh state
            self._opt_state = aligned_zeros(self.optimizer.state_slots * self._params.size, self.dtype)

    @exclusive_method
    def _fit_setup_checked(self, X, y):
        """(X, y) converted and checked as fit would, for _epoch_in_order."""
        self._require_compiled("fit")
        X, y = self._xy(X, y) if self.built else self._xy_unbuilt(X, y)
        self._ensure_built(X)
        self._sync_opt_state()
        return X, y

    @exclusive_method
    def _epoch_in_order(self, X, y, batch, order):
        """One epoch over the rows of X, y (from _fit_setup_checked) taken in the given order
        (uint64 row indices; None: storage order), as one C call. For annfast.sklearn, which draws
        scikit-learn's row order itself and needs none of fit's callbacks; the caller holds a
        _core.FitGuard for Ctrl-C. Returns (mean loss, interrupted)."""
        given = order is not None
        perm = order if given else np.empty(X.shape[0], dtype=np.uint64)
        cfg = self.optimizer.c_config(self._epoch)
        stats, self._step, stopped = self._get_engine().train_epoch(
            X, y, min(batch, X.shape[0]), 2 if given else 0, 0, cfg, self._opt_state, self._step,
            perm)
        if not stopped:
            self._epoch += 1
        return stats["loss_sum"] / max(stats["n_seen"], 1), stopped

    def _run_epoch(self, engine, X, y, batch, shuffle, cfg, perm, n_batches, per_call, progress):
        """One epoch as one C call, or as slices of per_call batches with a progress update
        after each. Returns (summed stats, interrupted)."""
        key = self._step  # the shuffle order is keyed by the step count at the epoch's start
        total = {"loss_sum": 0.0, "correct": 0.0, "sse": 0.0, "n_seen": 0, "n_batches": 0}
        for first in range(0, n_batches, per_call):
            stats, self._step, stopped = engine.train_epoch(
                X, y, batch, shuffle, key, cfg, self._opt_state, self._step, perm, first, per_call)
            for k in total:
                total[k] += stats[k]
            if stopped:
                return total, True
            if progress is not None and per_call < n_batches:
                progress.update(total["n_seen"], {"loss": total["loss_sum"] / total["n_seen"]})
        return total, False

    def _require_layers(self):
        if not self._layers:
            raise ValueError("a Sequential model needs at least one layer (give layers or call add())")

    def _check_buildable(self, X):
        self._require_layers()
        if X.ndim != 2 or X.shape[1] == 0:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")

    def _xy_unbuilt(self, X, y, n_cols=None):
        """_xy for a model not built yet: the width comes from X."""
        self._require_layers()
        X = as_2d(X, "X", n_cols=n_cols, dtype=self.dtype)
        self._check_buildable(X)
        y = _losses.prepare_targets(self.loss, y, self._unbuilt_width(X.shape[1]), self.dtype, "y")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        return X, y

    def _unbuilt_width(self, width):
        for layer in self._layers:
            width = layer.units if layer.kind == "dense" else width
        return width

    def _logs(self, loss, correct, sse, n):
        logs = {"loss": float(loss)}
        for m in self.metrics:
            if m == "accuracy":
                logs["accuracy"] = float(correct / n)
            elif m == "rmse":
                logs["rmse"] = float(math.sqrt(sse / (n * self._n_out())))
        return logs

    # ---- inference ---------------------------------------------------------------------------
    def _chunk(self, batch_size, n):
        chunk = PREDICT_CHUNK if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        return max(1, min(chunk, n))

    def _ensure_built(self, X):
        if not self.built:
            self._check_buildable(X)
            self.build(X.shape[1])

    @exclusive_method
    def predict(self, X, batch_size=None):
        """Outputs for the rows of X (inference mode: batch-norm running statistics, no dropout;
        softmax/sigmoid outputs are probabilities), computed in C in chunks of batch_size rows."""
        X = self._x(X)
        chunk = self._chunk(batch_size, X.shape[0])
        self._ensure_built(X)
        return self._get_engine().predict(X, chunk)

    def _evaluate_logs(self, X, y, chunk=None):
        chunk = self._chunk(chunk, X.shape[0])
        loss, correct, sse = self._get_engine().evaluate(X, y, chunk)
        return self._logs(loss, correct, sse, X.shape[0])

    @exclusive_method
    def evaluate(self, X, y, batch_size=None):
        """Mean loss over the rows (plus the L1/L2 penalties) in inference mode; with metrics
        compiled, a list [loss, *metrics] in compile order."""
        self._require_compiled("evaluate")
        X, y = self._xy(X, y) if self.built else self._xy_unbuilt(X, y)
        if X.shape[0] == 0:
            raise ValueError("X must have at least one row")
        chunk = self._chunk(batch_size, X.shape[0])
        self._ensure_built(X)
        logs = self._evaluate_logs(X, y, chunk)
        if not self.metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[m] for m in self.metrics]

    @exclusive_method
    def gradients(self, X, y, training=False, return_loss=False):
        """Exact gradient of evaluate(X, y) (the mean loss plus penalties) with respect to every
        trainable parameter, as a list of arrays ordered like the layers' trainable_weights
        ([layers[0].weights, layers[0].bias, layers[1].weights, ...]).

        training=True differentiates the training-mode loss instead, with X as ONE batch:
        batch-norm batch statistics (running statistics untouched) and the dropout masks the
        next training step would draw. return_loss=True returns (loss, grads)."""
        self._require_compiled("gradients")
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be a bool, got {type(training).__name__}")
        X, y = self._xy(X, y) if self.built else self._xy_unbuilt(X, y)
        if X.shape[0] == 0:
            raise ValueError("X must have at least one row")
        self._ensure_built(X)
        chunk = X.shape[0] if training else self._chunk(None, X.shape[0])
        loss = self._get_engine().gradients(X, y, chunk, bool(training), self._step + 1)
        grads = []
        for layer in self._layers:
            for name, shape in layer._param_shapes():
                o = layer._offsets[name]
                grads.append(self._grads[o:o + int(np.prod(shape))].reshape(shape).copy())
        return (loss, grads) if return_loss else grads

    # ---- weights and state -------------------------------------------------------------------
    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{what} needs a built model (give input_dim or call fit/build first)")

    @exclusive_method
    def get_weights(self):
        """Copies of all weights: per layer its trainable parameters then its statistics
        (Dense: W, b; BatchNormalization: gamma, beta, moving_mean, moving_variance)."""
        self._require_built("get_weights")
        return [w.copy() for layer in self._layers
                for w in layer.trainable_weights + layer.non_trainable_weights]

    @exclusive_method
    def set_weights(self, weights):
        """Set all weights from a list shaped like get_weights() (checked fully before any copy)."""
        self._require_built("set_weights")
        targets = [w for layer in self._layers for w in layer.trainable_weights + layer.non_trainable_weights]
        if not isinstance(weights, (list, tuple)) or len(weights) != len(targets):
            got = len(weights) if isinstance(weights, (list, tuple)) else type(weights).__name__
            raise ValueError(f"weights must be a list of {len(targets)} arrays, got {got}")
        from ._validate import as_array
        arrays = []
        for i, (w, t) in enumerate(zip(weights, targets)):
            a = as_array(w, f"weights[{i}]", self.dtype)
            if a.shape != t.shape:
                raise ValueError(f"weights[{i}] must have shape {t.shape}, got {a.shape}")
            arrays.append(a)
        for a, t in zip(arrays, targets):
            t[...] = a

    @exclusive_method
    def optimizer_state(self):
        """{'step': steps taken, 'epoch': epochs trained (the schedule's clock), 'state': copy
        of the flat optimiser state}."""
        self._require_compiled("optimizer_state")
        self._require_built("optimizer_state")
        return {"step": int(self._step), "epoch": int(self._epoch), "state": self._opt_state.copy()}

    @exclusive_method
    def set_optimizer_state(self, state):
        """Restore optimizer_state() output (of the same model and optimiser)."""
        self._require_compiled("set_optimizer_state")
        self._require_built("set_optimizer_state")
        if not isinstance(state, dict) or "step" not in state or "state" not in state:
            raise ValueError("state must be a dict with keys 'step' and 'state'")
        step = check_int(state["step"], "state['step']", minimum=0)
        epoch = check_int(state.get("epoch", self._epoch), "state['epoch']", minimum=0)
        from ._validate import as_array
        arr = as_array(state["state"], "state['state']", self.dtype).reshape(-1)
        if arr.shape != self._opt_state.shape:
            raise ValueError(f"state['state'] must have {self._opt_state.size} values for this model "
                             f"and optimiser, got {arr.size}")
        self._opt_state[...] = arr
        self._step, self._epoch = step, epoch

    # ---- configuration -----------------------------------------------------------------------
    @exclusive_method
    def get_config(self):
        """JSON-able description: input_dim, dtype, seed, layers (+ loss, optimizer, metrics
        once compiled)."""
        cfg = {"input_dim": self.input_dim, "dtype": self._dtype_name, "seed": self.seed,
               "layers": [layer.get_config() for layer in self._layers]}
        if self.loss is not None:
            cfg.update(loss=self.loss, optimizer=self.optimizer.get_config(), metrics=list(self.metrics))
        return cfg

    @classmethod
    def from_config(cls, config):
        """A new model (fresh weights from the seed) from get_config() output, compiled if the
        config holds a loss."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        unknown = set(config) - {"input_dim", "dtype", "seed", "layers", "loss", "optimizer", "metrics"}
        if unknown:
            raise ValueError(f"unknown Sequential config keys {sorted(unknown)}")
        if not isinstance(config.get("layers"), list):
            raise ValueError("config['layers'] must be a list of layer configs")
        layers = [Layer.from_config(c) for c in config["layers"]]
        model = cls(layers, input_dim=config.get("input_dim"), dtype=config.get("dtype", "float32"),
                    seed=config.get("seed"))
        if config.get("loss") is not None:
            from . import optimizers
            model.compile(config["loss"], optimizers.Optimizer.from_config(config["optimizer"])
                          if isinstance(config.get("optimizer"), dict) else config.get("optimizer", "sgd"),
                          config.get("metrics"))
        return model

    @exclusive_method
    def save(self, path):
        """Save architecture, weights and optimiser state (annfast.saving format)."""
        from .saving import save_model
        save_model(self, path)

    @exclusive_method
    def summary(self):
        """A text table of the layers and parameter counts (returned, not printed)."""
        lines = [f"Sequential (dtype={self._dtype_name}, input_dim={self.input_dim})"]
        for i, layer in enumerate(self._layers):
            n = sum(int(np.prod(s)) for _, s in layer._param_shapes()) if layer.built else "?"
            lines.append(f"  {i}: {layer!r}  params={n}")
        lines.append(f"  total trainable parameters: {self.count_params()}")
        return "\n".join(lines)
