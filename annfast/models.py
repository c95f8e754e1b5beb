"""Model (functional graphs of layers) and Sequential (a chain), trained by the C graph engine
(csrc/graph.c, csrc/engine_impl.h).

>>> import numpy as np, annfast as af
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
>>> y = np.array([[0], [1], [1], [0]], dtype=np.float32)
>>> model = af.Sequential([af.Dense(8, activation="tanh"), af.Dense(1, activation="sigmoid")],
...                       input_dim=2, seed=0)
>>> model.compile(loss="binary_crossentropy", optimizer=af.optimizers.Adam(0.05))
>>> history = model.fit(X, y, epochs=300, batch_size=4, verbose=0)
>>> bool(np.all((model.predict(X) > 0.5) == (y > 0.5)))
True

The functional form takes several inputs and outputs, residual adds and concatenations:

>>> a = af.Input(shape=(3,)); b = af.Input(shape=(5,))
>>> h = af.Dense(8, activation="relu")(af.Concatenate()([a, b]))
>>> out = af.Dense(1)(af.Add()([h, af.Dense(8)(a)]))
>>> m = af.Model(inputs=[a, b], outputs=out, seed=0)
>>> m.count_params()
137

All parameters live in one flat buffer of the model's dtype (layer weights are views into it); an
epoch (shuffle, mini-batches, forward, loss, backward, penalties, clipping, optimiser update) is
one C call with the GIL released. Python runs once per epoch for the learning-rate schedule,
validation, callbacks and progress.
"""
import math
import os
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Type, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from . import _data
from . import losses as _losses
from . import metrics as _metrics
from ._buffers import aligned_zeros
from ._data_parallel import LOCAL, runner
from ._busy import acquire, exclusive_method, release
from ._settings import generation as _settings_generation
from ._topology import collect, unique_layers
from ._validate import as_array, check_float, check_int
from .layers import Layer
from .layers.base import Input, InputLayer
from .callbacks import Callback, History
from .layers.base import Tensor
from .optimizers import Optimizer

# Inputs or targets: one array, or one per model input/output as a list or a dict by name.
Data = Union[ArrayLike, Sequence[ArrayLike], Dict[str, ArrayLike]]
FloatDType = Union[Literal["float32", "float64"], Type[np.float32], Type[np.float64], np.dtype]

_DTYPES = {"float32": np.float32, "float64": np.float64}
DEFAULT_BATCH = 32        # fit's default batch size (Keras)
PREDICT_CHUNK = 256       # samples per forward call in predict/evaluate/gradients
PROGRESS_SLICES = 20      # C calls per epoch when fit draws a progress bar (verbose=1)


def _check_dtype(dtype):
    name = np.dtype(dtype).name if isinstance(dtype, type) or isinstance(dtype, np.dtype) else dtype
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return name


class Model:
    """A graph of layers from af.Input tensors to output tensors, trained in C.

    Parameters
    ----------
    inputs : an af.Input tensor or a list of them (the order of fit's X list)
    outputs : a tensor or a list of them (the order of y and of predict's outputs)
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

    Settings used in C (layer activations, penalties, dropout rates, batch-norm momentum and
    epsilon, the optimiser's clipnorm/clipvalue, the loss) are checked when assigned and may
    change after training: the next call uses the new value.

    See the module docstring for an example.
    """

    def __init__(self, inputs: Union[Tensor, Sequence[Tensor]], outputs: Union[Tensor, Sequence[Tensor]],
                 dtype: FloatDType = "float32", seed: Optional[int] = None,
                 name: Optional[str] = None) -> None:
        self._setup(dtype, seed, name)
        self._build_graph(inputs, outputs)

    def _setup(self, dtype, seed, name):
        self._dtype_name = _check_dtype(dtype)
        self.dtype = np.dtype(_DTYPES[self._dtype_name])
        if seed is not None:
            seed = check_int(seed, "seed", minimum=0)
        self.seed = seed
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name or type(self).__name__.lower()
        self._params = self._grads = self._stats = None
        self._engine = None
        self._engine_key = self._engine_stamp = None   # see _get_engine
        self._nodes = None
        self._plain_input = None   # see _predict_fast
        self.losses = None
        self.loss_weights = None
        self.optimizer = None
        self.metrics = []
        self._opt_state = None
        self._step = 0
        self._epoch = 0
        self.stop_training = False
        self.interrupted = False
        self.history = None

    # ---- the loss as a setting ---------------------------------------------------------------
    @property
    def loss(self):
        """The loss: a name, or a list of names with several outputs (None before compile).
        Assigning it later is checked and used by the next call."""
        if self.losses is None:
            return None
        return self.losses[0] if len(self.losses) == 1 else list(self.losses)

    @loss.setter
    def loss(self, value):
        if value is None:
            self.losses = None
            return
        n_out = len(self._outputs) if self._nodes is not None else 1
        self.losses = [_losses.get(v) for v in self._per_output(value, n_out, "loss")]
        from . import _settings
        _settings.bump()

    # ---- copy and pickle ---------------------------------------------------------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        # the C description of this object's buffers: rebuilt on demand
        state["_engine"] = state["_engine_key"] = state["_engine_stamp"] = None
        state.pop("_engine_dx", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for layer in self.__dict__.get("_all_layers") or []:  # views into this copy's buffers
            layer._rebind_views()

    # ---- structure ---------------------------------------------------------------------------
    def _build_graph(self, inputs, outputs):
        """Collect the nodes, lay out the parameters in one buffer and initialise them."""
        ins, outs, nodes, index = collect(inputs, outputs)
        if len(nodes) > 1 and all(isinstance(nd.layer, InputLayer) for nd in nodes):
            raise ValueError("a model needs at least one layer")
        layers = unique_layers(nodes)
        n_params = n_stats = 0
        layout = []
        for layer in layers:
            offs, soffs = {}, {}
            for pname, shape in layer.param_shapes(layer._input_shape):
                offs[pname] = (n_params, shape)
                n_params += int(np.prod(shape))
            for sname, shape in layer.stat_shapes(layer._input_shape):
                soffs[sname] = (n_stats, shape)
                n_stats += int(np.prod(shape))
            layout.append((offs, soffs))
        params = aligned_zeros(n_params, self.dtype)
        stats = aligned_zeros(n_stats, self.dtype)
        seq = np.random.SeedSequence(self.seed)
        rng = np.random.default_rng(seq)
        for layer, (offs, soffs) in zip(layers, layout):
            layer._param_off = min((v[0] for v in offs.values()), default=0)
            layer._stat_off = min((v[0] for v in soffs.values()), default=0)
            layer._bind_views(params, stats)
            layer.init_params(rng, self.dtype)
        for layer in layers:
            layer._model = self
        self._params, self._stats = params, stats
        self._grads = aligned_zeros(n_params, self.dtype)
        # Shuffle order and dropout masks: a 64-bit key derived from the seed.
        self._c_seed = int(seq.spawn(1)[0].generate_state(1, np.uint64)[0])
        self._inputs, self._outputs, self._nodes, self._all_layers = ins, outs, nodes, layers
        self._input_layers = [t._layer for t in ins]
        self._tensor_node = index
        self._engine = None
        self._plain_input = None      # see _predict_fast
        if self.optimizer is not None:
            self._reset_optimizer()

    @property
    def layers(self):
        """The layers, in order of first use (a copy of the list; Input layers included, as Keras
        lists them for functional models)."""
        return [] if self._nodes is None else list(self._all_layers)

    @property
    def inputs(self):
        return list(self._inputs) if self._nodes is not None else []

    @property
    def outputs(self):
        return list(self._outputs) if self._nodes is not None else []

    @property
    def built(self):
        return self._params is not None

    @exclusive_method
    def count_params(self) -> int:
        """Number of trainable parameters (0 before build)."""
        return 0 if self._params is None else int(self._params.size)

    def _output_shapes(self):
        return [t.sample_shape for t in self._outputs]

    def _c_nodes(self):
        """The node descriptions the C engine takes."""
        out, key = [], 0
        for nd in self._nodes:
            layer = nd.layer
            spec = {"kind": layer.kind, "name": layer.name, "inputs": nd.inputs,
                    "config": layer.c_config(), "param_off": getattr(layer, "_param_off", 0),
                    "stat_off": getattr(layer, "_stat_off", 0), "rng_key": key}
            if not isinstance(layer, InputLayer):
                key += 1        # dropout masks: a node's position among the layer calls
            out.append(spec)
        return out

    def _get_engine(self, input_grads=False):
        """The C engine of this graph. Settings used in C (layer activation/alpha/l1/l2/rate/
        momentum/epsilon, optimizer clipnorm/clipvalue, the loss) may change after it was made:
        any assignment to a Setting advances a global generation, and when it moved (or the
        optimizer object was replaced) the description is recomputed and, if it differs, the
        engine is rebuilt (its workspaces with it). The common case costs one comparison per call.
        input_grads: a second engine that also keeps dLoss/dinputs (input_gradients), tied to the
        current one."""
        stamp = (_settings_generation(), self.optimizer)
        fresh = self._engine is not None and self._engine_stamp is not None and \
            self._engine_stamp[0] == stamp[0] and self._engine_stamp[1] is stamp[1]
        if not fresh:
            args = self._engine_args()
            key = (args[0], args[3], args[4], args[8], args[9])
            if self._engine is None or key != self._engine_key:
                self._engine = _core.GraphEngine(*args)
                self._engine_key = key
            self._engine_stamp = stamp
        if not input_grads:
            return self._engine
        pair = getattr(self, "_engine_dx", None)
        if pair is None or pair[0] is not self._engine:
            self._engine_dx = pair = (self._engine, _core.GraphEngine(*self._engine_args(), input_grads=True))
        return pair[1]

    def _engine_args(self):
        opt = self.optimizer
        clipnorm = (opt.clipnorm or 0.0) if opt is not None else 0.0
        clipvalue = (opt.clipvalue or 0.0) if opt is not None else 0.0
        n_out = len(self._outputs)
        index = {id(nd.tensor): i for i, nd in enumerate(self._nodes)}
        return (self._c_nodes(), [index[id(t)] for t in self._inputs],
                [index[id(t)] for t in self._outputs], list(self.losses or ["mse"] * n_out),
                list(self.loss_weights or [1.0] * n_out), self._params, self._grads, self._stats,
                clipnorm, clipvalue, self._c_seed)

    # ---- compile -----------------------------------------------------------------------------
    @exclusive_method
    def compile(self, *args: Any, loss: Union[str, Sequence[str], Dict[str, str], None] = None,
                optimizer: Union[str, Optimizer, Dict[str, Any], None] = None,
                metrics: Union[str, Sequence[_metrics.Metric], None] = None,
                loss_weights: Union[float, Sequence[float], Dict[str, float], None] = None) -> None:
        """Set the loss (a name, or one per output as a list or a dict by output name), the
        optimiser (name or annfast.optimizers instance; default 'sgd'), the metrics (names from
        annfast.metrics.NAMES, or callables fn(y_true, y_pred) evaluated at each epoch's end; see
        annfast.metrics) and, with several outputs, loss_weights (the loss is their weighted sum).
        Resets the optimiser state.

        Positional arguments work in Keras's order compile(optimizer, loss, metrics) and in
        annfast's earlier compile(loss, optimizer, metrics): the first is the optimiser when it is
        an optimiser (an instance or one of its names), else the loss."""
        from . import optimizers
        if len(args) > 3:
            raise TypeError(f"compile takes at most 3 positional arguments, got {len(args)}")
        first_is_opt = bool(args) and (isinstance(args[0], optimizers.Optimizer) or (
            isinstance(args[0], str) and args[0].lower() in optimizers.names()))
        named = dict(zip(("optimizer", "loss", "metrics") if first_is_opt else ("loss", "optimizer", "metrics"),
                         args))
        for key, value in (("loss", loss), ("optimizer", optimizer), ("metrics", metrics)):
            if key in named and value is not None:
                raise TypeError(f"compile got {key} both positionally and as a keyword")
            if value is not None:
                named[key] = value
        loss, optimizer, metrics = named.get("loss"), named.get("optimizer", "sgd"), named.get("metrics")
        if loss is None:
            raise ValueError("compile needs a loss, e.g. compile(optimizer='adam', loss='mse')")
        n_out = len(self._outputs) if self._nodes is not None else 1
        losses = self._per_output(loss, n_out, "loss")
        losses = [_losses.get(name) for name in losses]
        weights = None
        if loss_weights is not None:
            weights = [check_float(w, "loss_weights", minimum=0.0)
                       for w in self._per_output(loss_weights, n_out, "loss_weights", scalar_ok=False)]
        optimizer = optimizers.get(optimizer)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, str):
            metrics = [metrics]
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be None or a list of names, got {type(metrics).__name__}")
        metrics = [_metrics.get(m) for m in metrics]
        optimizer.check_dtype(self.dtype)  # an epsilon float32 cannot hold, before any change
        self.losses, self.loss_weights = losses, weights
        self.loss = losses[0] if len(losses) == 1 else list(losses)
        self.optimizer, self.metrics = optimizer, list(dict.fromkeys(metrics))
        self._engine = None
        if self.built:
            self._reset_optimizer()

    def _per_output(self, value, n_out, what, scalar_ok=True):
        names = [t.name for t in self._outputs] if self._nodes is not None else []
        if isinstance(value, dict):
            if sorted(value) != sorted(names):
                raise ValueError(f"{what} as a dict must have the output names {names} as keys, got "
                                 f"{sorted(value)}")
            return [value[k] for k in names]
        if isinstance(value, (list, tuple)):
            if len(value) != n_out:
                raise ValueError(f"{what} must give one entry per output ({n_out}), got {len(value)}")
            return list(value)
        if not scalar_ok and n_out > 1:
            raise ValueError(f"{what} must be a list or dict with one entry per output ({n_out})")
        return [value] * n_out

    def _reset_optimizer(self):
        slots = self.optimizer.state_slots
        self._opt_state = aligned_zeros(slots * self._params.size, self.dtype)
        self._step = 0
        self._epoch = 0

    def _require_compiled(self, what):
        if self.loss is None:
            raise ValueError(f"call compile(loss=..., optimizer=...) before {what}")

    # ---- data --------------------------------------------------------------------------------
    def _xs(self, X, name="X"):
        xs = _data.inputs_list(X, self._input_layers, self.dtype, name)
        # token ids against the vocabulary of the layers they feed (the C kinds check again)
        for nd in self._nodes:
            check = getattr(nd.layer, "check_ids", None)
            src = self._nodes[nd.inputs[0]].layer if check is not None and nd.inputs else None
            if src is not None and src in self._input_layers:
                k = self._input_layers.index(src)
                check(xs[k], name if len(xs) == 1 else f"{name}[{k}]")
        return xs

    def _xy(self, X, y, xname="X", yname="y"):
        xs = self._xs(X, xname)
        ys = _data.targets_list(y, self.losses, self._output_shapes(), self.dtype, yname)
        if ys[0].shape[0] != xs[0].shape[0]:
            raise ValueError(f"{xname} has {xs[0].shape[0]} rows but {yname} has {ys[0].shape[0]}")
        if any(t.shape[0] != ys[0].shape[0] for t in ys):
            raise ValueError(f"the target arrays of {yname} must have the same number of samples")
        return xs, ys

    def _prepare(self, X, y):
        """Converted, checked inputs and targets (building a lazily built model first needs no
        change: _xy_unbuilt checks without building)."""
        return self._xy(X, y)

    # ---- training ----------------------------------------------------------------------------
    @exclusive_method
    def fit(self, X: Data, y: Data, epochs: int = 1, batch_size: Optional[int] = None, shuffle: bool = True,
            validation_data: Union[Tuple[Data, Data], Tuple[Data, Data, Optional[ArrayLike]], None] = None,
            validation_split: float = 0.0, callbacks: Union[Callback, Sequence[Callback], None] = None,
            verbose: int = 1, sample_weight: Optional[ArrayLike] = None,
            class_weight: Optional[Dict[int, float]] = None,
            distributed: Optional[Any] = None) -> History:
        """Train for `epochs` epochs; returns a History (history.history: per-epoch 'loss',
        requested metrics, and 'val_*' when validating).

        sample_weight: one weight per sample (>= 0; the loss of a batch is sum w_i l_i / batch
        size, as Keras); class_weight: {class index: weight} for a single-output classifier,
        giving each sample its class's weight (multiplied with sample_weight when both are
        given); validation_data may be (X_val, y_val, sample_weight_val). Computed in C.

        X: one array, or a list (dict by input name) for several inputs; y likewise per output.
        batch_size: samples per step (default 32; larger than the data means full-batch).
        validation_split: fraction of the LAST rows (before shuffling) held out for validation.
        callbacks: annfast.callbacks.Callback objects, called after the progress display and
        a default TerminateOnNaN (a non-finite loss stops training with a warning and puts back
        the weights of the last epoch whose loss was finite; pass your own TerminateOnNaN to
        change that). verbose: 0 silent, 1 a progress bar sized to the terminal and one summary
        line per epoch (only the line when stdout is not a terminal), 2 one line per epoch.
        Ctrl-C stops at a clean point between two batches: the
        model keeps the weights of the last completed step, model.interrupted is set,
        model.history holds the history so far, and KeyboardInterrupt is raised.
        (annfast._core.request_stop() stops the same way but returns the history.)
        distributed: None (this process), "mpi" (data-parallel over the processes of an MPI
        launch: each process passes the same data and computes its share of every batch; see
        annfast.distributed) or an annfast.distributed strategy (MPIStrategy, SplitBatch).
        """
        from . import callbacks as _cbs
        run = runner(distributed)
        with run.agreed("fit"):   # a call any process rejects is rejected on every process
            xs, ys, sw, val, epochs, batch_size, verbose, cbs = self._fit_checked_args(
                X, y, epochs, batch_size, shuffle, validation_data, validation_split, callbacks,
                verbose, sample_weight, class_weight)
        with run.guard():
            return self._fit_run(run, xs, ys, sw, val, epochs, batch_size, shuffle, verbose, cbs)

    def _fit_checked_args(self, X, y, epochs, batch_size, shuffle, validation_data,
                          validation_split, callbacks, verbose, sample_weight, class_weight):
        """fit's arguments converted and checked; nothing in the model changes here."""
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
        xs, ys = self._prepare(X, y)
        n = xs[0].shape[0]
        if n == 0:
            raise ValueError("X must have at least one row")
        sw = self._sample_weight(sample_weight, class_weight, ys, n)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (X_val, y_val) or "
                                 "(X_val, y_val, sample_weight_val)")
            val = self._prepare_val(*validation_data[:2], xs)
            if val[0][0].shape[0] == 0:
                raise ValueError("validation_data must have at least one row")
            if len(validation_data) == 3:
                val = val + (self._sample_weight(validation_data[2], None, val[1], val[0][0].shape[0],
                                                 "validation_data sample_weight"),)
        elif split > 0:
            n_val = int(n * split)
            if n_val < 1 or n_val >= n:
                raise ValueError(f"validation_split={split} leaves {n_val} of {n} rows for "
                                 "validation; need at least one row on each side")
            val = (_data.rows(xs, slice(n - n_val, None)), _data.rows(ys, slice(n - n_val, None)))
            if sw is not None:
                val = val + (np.ascontiguousarray(sw[n - n_val:]),)
                sw = np.ascontiguousarray(sw[:n - n_val])
            xs, ys = _data.rows(xs, slice(0, n - n_val)), _data.rows(ys, slice(0, n - n_val))
            n -= n_val
        self.optimizer.check_dtype(self.dtype)  # it may have been edited since compile
        return xs, ys, sw, val, epochs, batch_size, verbose, cbs

    def _fit_run(self, run, xs, ys, sw, val, epochs, batch_size, shuffle, verbose, cbs):
        """fit after its checks passed: from here on the model may change. run: LOCAL, or a
        data-parallel run (callbacks and progress on process 0 only; the others follow it)."""
        from . import callbacks as _cbs
        n = xs[0].shape[0]
        self._ensure_built(xs)
        batch = min(batch_size, n)
        self._get_engine()  # the C description is checked before any callback runs
        self._sync_opt_state()
        run.begin(self, xs, ys, sw)  # process 0's weights and state everywhere; the same data
        perm = np.empty(n, dtype=np.uint64)
        progress = None
        if verbose and run.is_root:
            from .progress import Progress
            progress = Progress(verbose=verbose, epochs=epochs, n_samples=n)
        user = _cbs.fit_callbacks(cbs.callbacks[:-1], progress) if run.is_root else []
        n_batches = -(-n // batch)
        # verbose=1 on a terminal draws a bar within the epoch: the C epoch then runs in up to
        # PROGRESS_SLICES calls of whole batches (same order and results as one call)
        per_call = -(-n_batches // PROGRESS_SLICES) if progress is not None and progress.live \
            else n_batches
        params = {"epochs": epochs, "batch_size": batch, "samples": n, "verbose": verbose,
                  "metrics": list(self.metrics)}
        cbs = _cbs.CallbackList(user, model=self, params=params)
        self.stop_training = False
        self.interrupted = False
        with _core.FitGuard() as guard:
            try:
                cbs.on_train_begin({})
                for epoch in range(epochs):
                    cbs.on_epoch_begin(epoch, {})
                    cfg = run.same(self.optimizer.c_config(self._epoch))  # process 0's schedule
                    # (the engine again: a callback may have changed a setting)
                    stats, stopped = self._run_epoch(self._get_engine(), xs, ys, batch, bool(shuffle),
                                                     cfg, perm, n_batches, per_call, progress, run,
                                                     sw)
                    if run.any(stopped or guard.poll()):
                        # Ctrl-C or request_stop(): the weights are those of the last completed step
                        self.interrupted = True
                        break
                    self._epoch += 1
                    stats = run.total(stats)
                    logs = self._logs(stats, stats["n_seen"])
                    logs.update(_metrics.epoch_end_logs(self, xs, ys))
                    if val is not None:
                        logs.update({"val_" + k: v for k, v in self._evaluate_logs(*val, run=run).items()})
                    run.check_weights(self)
                    with run.root_callbacks(self):
                        cbs.on_epoch_end(epoch, logs)
                    if self.stop_training:
                        break
                with run.root_callbacks(self):
                    cbs.on_train_end({})
            except KeyboardInterrupt:
                # Ctrl-C while Python ran (a callback, validation): raised there, as in any Python
                # code; the engine's calls are whole, so the weights are of a completed step
                self.interrupted = True
                self.history = cbs.history
                raise
        self.history = cbs.history
        if run.distributed:  # process 0's history (its callbacks may add keys) everywhere
            cbs.history.history, cbs.history.epoch = run.same((cbs.history.history, cbs.history.epoch))
        if guard.sigint:
            raise KeyboardInterrupt(f"training interrupted after {len(cbs.history.epoch)} complete "
                                    "epoch(s); the model keeps the weights of its last completed step "
                                    "and model.history holds the history so far")
        if self.interrupted and verbose:
            print(f"Training interrupted after {len(cbs.history.epoch)} complete epoch(s); "
                  "the model keeps the weights of its last completed step.")
        return cbs.history

    def _prepare_val(self, X, y, xs):
        return self._xy(X, y, xname="validation_data X", yname="validation_data y")

    def _sync_opt_state(self):
        if self._opt_state.size != self.optimizer.state_slots * self._params.size:
            # the optimiser was reconfigured after compile (e.g. momentum switched on): fresh state
            self._opt_state = aligned_zeros(self.optimizer.state_slots * self._params.size, self.dtype)

    @exclusive_method
    def _fit_setup_checked(self, X, y):
        """(X, y) converted and checked as fit would, for _epoch_in_order."""
        self._require_compiled("fit")
        xs, ys = self._prepare(X, y)
        self.optimizer.check_dtype(self.dtype)
        self._ensure_built(xs)
        self._sync_opt_state()
        return xs, ys

    @exclusive_method
    def _epoch_in_order(self, X, y, batch, order, run=None, sample_weight=None):
        """One epoch over the samples of X, y (lists from _fit_setup_checked) taken in the given
        order (uint64 row indices; None: storage order), as one C call. For annfast.sklearn,
        which draws scikit-learn's row order itself and needs none of fit's callbacks; the
        caller holds a _core.FitGuard for Ctrl-C. run: a data-parallel run (process 0's order
        and settings are used everywhere; the loss is summed over the processes). sample_weight
        (already checked, the model dtype) is normalised as scikit-learn does: each batch's
        objective over its weight sum. Returns (mean loss, interrupted)."""
        run = LOCAL if run is None else run
        given = order is not None
        n = X[0].shape[0]
        perm = run.same_array(order) if given else np.empty(n, dtype=np.uint64)
        cfg = run.same(self.optimizer.c_config(self._epoch))
        engine = self._get_engine()
        stats, self._step, stopped = run.train(
            engine, X, y, min(batch, n), 2 if given else 0, 0, cfg, self._opt_state, self._step, perm,
            sw=sample_weight, sw_norm=1)
        stopped = run.any(stopped)
        if not stopped:
            self._epoch += 1
            stats = run.total(stats)
        return stats["loss_sum"] / max(stats["n_seen"], 1), stopped

    def _run_epoch(self, engine, xs, ys, batch, shuffle, cfg, perm, n_batches, per_call, progress,
                   run=None, sw=None):
        """One epoch as one C call, or as slices of per_call batches with a progress update
        after each. Returns (summed stats, interrupted). run: a data-parallel run (its
        train() splits every batch; the stats are this process's)."""
        run = LOCAL if run is None else run
        key = self._step  # the shuffle order is keyed by the step count at the epoch's start
        total = None
        for first in range(0, n_batches, per_call):
            stats, self._step, stopped = run.train(
                engine, xs, ys, batch, int(shuffle), key, cfg, self._opt_state, self._step, perm, first,
                per_call, sw=sw)
            total = stats if total is None else _add_stats(total, stats)
            if stopped:
                return total, True
            if progress is not None and per_call < n_batches:
                progress.update(total["n_seen"], {"loss": total["loss_sum"] / total["n_seen"]})
        return total, False

    def _ensure_built(self, xs):
        """Functional models are built at construction; Sequential builds from the data."""

    def _sample_weight(self, sample_weight, class_weight, ys, n, name="sample_weight"):
        """Per-sample weights (the model dtype) from sample_weight and class_weight, or None."""
        if sample_weight is None and class_weight is None:
            return None
        w = np.ones(n)
        if sample_weight is not None:
            sw = as_array(sample_weight, name, np.float64).reshape(-1) if np.ndim(sample_weight) \
                else None
            if sw is None or np.ndim(sample_weight) != 1 or sw.shape[0] != n:
                raise ValueError(f"{name} must be a 1-D array of {n} weights (one per sample), got "
                                 f"shape {np.shape(sample_weight)}")
            if sw.size and sw.min() < 0:
                raise ValueError(f"{name} must be >= 0, got a minimum of {sw.min()}")
            w = w * sw
        if class_weight is not None:
            w = w * self._class_weights(class_weight, ys)
        return np.ascontiguousarray(w, dtype=self.dtype)

    def _class_weights(self, class_weight, ys):
        """Each sample's class weight (Keras: one output, classes as the targets give them)."""
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class index: weight}}, got "
                            f"{type(class_weight).__name__}")
        if len(ys) != 1:
            raise ValueError("class_weight is for models with one output; give sample_weight instead")
        y, loss = ys[0], self.losses[0]
        if loss == "sparse_categorical_crossentropy":
            labels = y.reshape(y.shape[0], -1)[:, 0]
        elif loss == "categorical_crossentropy":
            labels = y.reshape(y.shape[0], -1, y.shape[-1]).argmax(-1)[:, 0]
        elif loss in ("binary_crossentropy", "hinge") and y[0].size == 1:
            labels = (y.reshape(-1) > (0 if loss == "hinge" else 0.5)).astype(int)
        else:
            raise ValueError(f"class_weight needs a classification loss with one class per sample, got "
                             f"{loss!r} with targets of shape {y.shape[1:]}")
        table = {}
        for k, v in class_weight.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
                raise TypeError(f"class_weight keys must be class indices (ints), got {k!r}")
            table[int(k)] = check_float(v, f"class_weight[{k}]", minimum=0.0)
        return np.array([table.get(int(c), 1.0) for c in labels])

    def _logs(self, stats, n):
        logs = {"loss": float(stats["loss_sum"] / n)}
        multi = len(self._outputs) > 1
        for o, t in enumerate(self._outputs):
            prefix = f"{t.name}_" if multi else ""
            if multi:
                logs[prefix + "loss"] = float(stats["out_loss"][o] / n)
            for m in self.metrics:
                if m == "accuracy":
                    logs[prefix + "accuracy"] = float(stats["correct"][o] / n)
                elif m == "rmse":
                    logs[prefix + "rmse"] = float(math.sqrt(stats["sse"][o] / (n * int(np.prod(t.sample_shape)))))
        return logs

    # ---- inference ---------------------------------------------------------------------------
    def _chunk(self, batch_size, n):
        chunk = PREDICT_CHUNK if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        return max(1, min(chunk, n))

    def predict(self, X: Data, batch_size: Optional[int] = None,
                verbose: int = 0,
                distributed: Optional[Any] = None) -> Union[np.ndarray, List[np.ndarray]]:
        """Outputs for the samples of X (inference mode: batch-norm running statistics, no
        dropout; softmax/sigmoid outputs are probabilities), computed in C in chunks of batch_size
        samples. One array, or a list with several outputs. distributed="mpi": each process of an
        MPI launch predicts a share of the rows and every process returns all of them."""
        if type(X) is np.ndarray and distributed is None and batch_size is None \
                and type(verbose) is int and verbose >= 0:
            outs = self._predict_fast(X)
            if outs is not None:
                return outs[0] if len(outs) == 1 else outs
        return self._predict(X, batch_size, verbose, distributed)

    @exclusive_method
    def _predict(self, X, batch_size, verbose, distributed):
        run = runner(distributed)
        with run.agreed("predict"):
            check_int(verbose, "verbose", minimum=0)   # accepted for Keras's signature; nothing printed
            xs = self._xs(X)
            chunk = self._chunk(batch_size, xs[0].shape[0])
        self._ensure_built(xs)
        with run.guard():
            outs = run.predict(self._get_engine(), xs, chunk)
        return outs[0] if len(outs) == 1 else outs

    def _predict_fast(self, X):
        """predict's outputs for a plain call on a built model with one float input given as a
        ready ndarray (GraphEngine.predict_fast makes every check in C), or None: the general
        path then converts and checks X. Batch-1 inference spent more time in Python than in C
        for small models: this path is one function holding the model (the decorator's frame
        and the general path's frames cost over a third of a small model's 2.9 us, and over 30
        us of its first call after a pause)."""
        acquire(self)
        try:
            if self._params is None:
                return None
            plain = getattr(self, "_plain_input", None)
            if plain is None:    # (also a model pickled before it existed)
                # an input that a layer checks as token ids (_xs) takes the general path
                self._plain_input = plain = len(self._input_layers) == 1 and not any(
                    getattr(nd.layer, "check_ids", None) is not None and nd.inputs
                    and self._nodes[nd.inputs[0]].layer in self._input_layers for nd in self._nodes)
            if not plain:
                return None
            return self._get_engine().predict_fast(X, PREDICT_CHUNK)
        finally:
            release(self)

    def _evaluate_logs(self, xs, ys, sw=None, chunk=None, run=None):
        chunk = self._chunk(chunk, xs[0].shape[0])
        loss, sums = (run or LOCAL).evaluate(self._get_engine(), xs, ys, chunk, sw)
        sums["loss_sum"] = loss * xs[0].shape[0]
        logs = self._logs(sums, xs[0].shape[0])
        logs.update(_metrics.epoch_end_logs(self, xs, ys, chunk))
        return logs

    @exclusive_method
    def evaluate(self, X: Data, y: Data, batch_size: Optional[int] = None,
                 sample_weight: Optional[ArrayLike] = None, verbose: int = 0,
                 distributed: Optional[Any] = None) -> Union[float, List[float]]:
        """Mean loss over the samples (plus the L1/L2 penalties) in inference mode; with metrics
        compiled (or several outputs), a list ``[loss, *output losses, *metrics]`` in Keras's
        order (output losses only with several outputs; metrics in compile order, per output).
        distributed="mpi": each process of an MPI launch evaluates a share of the rows; the sums
        are added over the processes, which all return the result."""
        run = runner(distributed)
        with run.agreed("evaluate"):
            self._require_compiled("evaluate")
            xs, ys = self._prepare(X, y)
            if xs[0].shape[0] == 0:
                raise ValueError("X must have at least one row")
            chunk = self._chunk(batch_size, xs[0].shape[0])
            check_int(verbose, "verbose", minimum=0)   # accepted for Keras's signature; nothing printed
            sw = self._sample_weight(sample_weight, None, ys, xs[0].shape[0])
        self._ensure_built(xs)
        with run.guard():
            logs = self._evaluate_logs(xs, ys, sw, chunk, run)
        if len(logs) == 1:
            return logs["loss"]
        names = [t.name for t in self._outputs] if len(self._outputs) > 1 else [None]
        keys = ["loss"] + ([f"{o}_loss" for o in names] if names[0] else [])
        keys += [(f"{o}_" if o else "") + _metrics.name(m) for o in names for m in self.metrics]
        return [logs[k] for k in keys]

    @exclusive_method
    def gradients(self, X: Data, y: Data, training: bool = False, return_loss: bool = False,
                  sample_weight: Optional[ArrayLike] = None
                  ) -> Union[List[np.ndarray], Tuple[float, List[np.ndarray]]]:
        """Exact gradient of evaluate(X, y) (the mean loss plus penalties) with respect to every
        trainable parameter, as a list of arrays ordered like the layers' trainable_weights
        ([layers[0].kernel, layers[0].bias, layers[1].kernel, ...]).

        training=True differentiates the training-mode loss instead, with X as ONE batch:
        batch-norm batch statistics (running statistics untouched) and the dropout masks the
        next training step would draw. return_loss=True returns (loss, grads). sample_weight
        weights the samples as in fit (sum w_i l_i / n)."""
        self._require_compiled("gradients")
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be a bool, got {type(training).__name__}")
        xs, ys = self._prepare(X, y)
        if xs[0].shape[0] == 0:
            raise ValueError("X must have at least one row")
        self._ensure_built(xs)
        n = xs[0].shape[0]
        chunk = n if training else self._chunk(None, n)
        sw = self._sample_weight(sample_weight, None, ys, n)
        loss, _ = self._get_engine().gradients(xs, ys, chunk, bool(training), self._step + 1, sw=sw)
        grads = []
        for layer in self._all_layers:
            o = layer._param_off if layer.param_shapes(layer._input_shape) else 0
            for _, shape in layer.param_shapes(layer._input_shape):
                size = int(np.prod(shape))
                grads.append(self._grads[o:o + size].reshape(shape).copy())
                o += size
        return (loss, grads) if return_loss else grads

    @exclusive_method
    def input_gradients(self, X: Data, y: Data) -> List[Optional[np.ndarray]]:
        """dLoss/dX of the training-mode loss with X as one batch (as gradients(training=True)):
        one array per model input, None for integer (token id) inputs."""
        self._require_compiled("input_gradients")
        xs, ys = self._prepare(X, y)
        if xs[0].shape[0] == 0:
            raise ValueError("X must have at least one row")
        self._ensure_built(xs)
        _, dx = self._get_engine(input_grads=True).gradients(xs, ys, xs[0].shape[0], True, self._step + 1)
        return dx

    # ---- weights and state -------------------------------------------------------------------
    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{what} needs a built model (give input_dim or call fit/build first)")

    def _weight_views(self):
        return [w for layer in self._all_layers for w in layer.trainable_weights + layer.non_trainable_weights]

    @exclusive_method
    def get_weights(self) -> List[np.ndarray]:
        """Copies of all weights: per layer its trainable parameters then its statistics
        (Dense: W, b; BatchNormalization: gamma, beta, moving_mean, moving_variance)."""
        self._require_built("get_weights")
        return [w.copy() for w in self._weight_views()]

    @exclusive_method
    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Set all weights from a list shaped like get_weights() (checked fully before any copy)."""
        self._require_built("set_weights")
        targets = self._weight_views()
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
    def optimizer_state(self) -> Dict[str, Any]:
        """{'step': steps taken, 'epoch': epochs trained (the schedule's clock), 'state': copy
        of the flat optimiser state}."""
        self._require_compiled("optimizer_state")
        self._require_built("optimizer_state")
        return {"step": int(self._step), "epoch": int(self._epoch), "state": self._opt_state.copy()}

    @exclusive_method
    def set_optimizer_state(self, state: Dict[str, Any]) -> None:
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
    def _compile_config(self):
        if self.loss is None:
            return {}
        cfg = {"loss": self.loss, "optimizer": self.optimizer.get_config(),
               "metrics": _metrics.config_names(self.metrics)}
        if self.loss_weights is not None:
            cfg["loss_weights"] = list(self.loss_weights)
        return cfg

    @exclusive_method
    def get_config(self) -> Dict[str, Any]:
        """JSON-able description: the layers with the calls feeding them, the inputs and
        outputs, dtype, seed (+ loss, optimizer, metrics once compiled)."""
        from ._graph_config import call_refs
        index = {id(nd.tensor): i for i, nd in enumerate(self._nodes)}
        calls, ref = call_refs(self._nodes)
        layers = []
        for layer in self._all_layers:
            if id(layer) not in calls:
                continue       # made by its owner's call (a mask, a slice of a packed output)
            c = layer.get_config()
            c["inbound_nodes"] = [[ref[i] for i in nd.inputs[:nd.tensor._n_data]] for nd in calls[id(layer)]]
            kwargs = [{k: ([ref[index[id(t)]] for t in v] if isinstance(v, list) else ref[index[id(v)]])
                       for k, v in nd.tensor._call_kwargs.items()} for nd in calls[id(layer)]]
            if any(kwargs):
                c["call_kwargs"] = kwargs
            layers.append(c)
        cfg = {"class_name": "Model", "name": self.name, "dtype": self._dtype_name, "seed": self.seed,
               "layers": layers, "inputs": [t.name for t in self._inputs],
               "outputs": [ref[index[id(t)]] for t in self._outputs]}
        cfg.update(self._compile_config())
        return cfg

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Model":
        """A new model (fresh weights from the seed) from get_config() output, compiled if the
        config holds a loss."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        if cls is Model and config.get("class_name", "Model") == "Sequential":
            return Sequential.from_config(config)
        from ._graph_config import model_from_config
        model = model_from_config(cls, config)
        model._compile_from_config(config)
        return model

    def _compile_from_config(self, config):
        if config.get("loss") is not None:
            from . import optimizers
            opt = config.get("optimizer", "sgd")
            opt = optimizers.Optimizer.from_config(opt) if isinstance(opt, dict) else opt
            self.compile(optimizer=opt, loss=config["loss"], metrics=config.get("metrics"),
                         loss_weights=config.get("loss_weights"))

    @exclusive_method
    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Save architecture, weights and optimiser state (annfast.saving format)."""
        from .saving import save_model
        save_model(self, path)

    @exclusive_method
    def summary(self, print_fn: Optional[Callable[[str], Any]] = print) -> str:
        """Print a table of the layers: output shape, parameter count, inputs (and return it)."""
        from ._summary import summary_text
        text = summary_text(self)
        if print_fn is not None:
            print_fn(text)
        return text

    def __repr__(self):
        state = f"{self.count_params()} parameters" if self.built else "not built"
        return f"<annfast.{type(self).__name__} {self.name!r}: {len(self.layers)} layers, {state}, {self._dtype_name}>"


def _add_stats(a, b):
    out = dict(a)
    for k in ("loss_sum", "n_seen", "n_batches"):
        out[k] = a[k] + b[k]
    for k in ("out_loss", "correct", "sse"):
        out[k] = [x + y for x, y in zip(a[k], b[k])]
    return out


class Sequential(Model):
    """A feed-forward network: layers applied in order, trained in C.

    Parameters
    ----------
    layers : list of layers
    input_dim : int or None: the width of vector samples
    input_shape : tuple or None: the per-sample shape of N-d samples, e.g. (28, 28, 1)
        (neither: taken from the first X seen by fit/predict)
    dtype : 'float32' (default) or 'float64'; all parameters and computation use it
    seed : int or None; makes initialisation, shuffling and dropout reproducible

    See the module docstring for an example.
    """

    def __init__(self, layers: Optional[Sequence[Layer]] = None, input_dim: Optional[int] = None,
                 dtype: FloatDType = "float32", seed: Optional[int] = None,
                 input_shape: Optional[Sequence[int]] = None, name: Optional[str] = None) -> None:
        self._setup(dtype, seed, name)
        layers = [] if layers is None else list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer) or isinstance(layer, InputLayer):
                raise TypeError(f"layers[{i}] must be an annfast layer (Dense, BatchNormalization, "
                                f"Dropout, ...), got {type(layer).__name__}")
            layer.check_supported()
            if layer.built or layer._input_shape is not None:
                raise ValueError(f"layers[{i}] already belongs to a model; create a new layer object")
        if len(set(map(id, layers))) != len(layers):
            raise ValueError("the same layer object appears twice in layers")
        self._layers = layers
        self.input_dim = None
        self.input_shape = None
        if input_dim is not None and input_shape is not None:
            raise ValueError("give input_dim or input_shape, not both")
        if input_dim is not None:
            self.build(input_dim)
        elif input_shape is not None:
            self.build(input_shape)

    @property
    def layers(self):
        """The layers, in order (a copy of the list)."""
        return list(self._layers)

    @exclusive_method
    def add(self, layer: Layer) -> None:
        """Append a layer (only before the model is built)."""
        if self.built:
            raise ValueError("cannot add layers to a built model")
        if not isinstance(layer, Layer) or isinstance(layer, InputLayer):
            raise TypeError(f"layer must be an annfast layer, got {type(layer).__name__}")
        layer.check_supported()
        if layer.built or layer._input_shape is not None or any(layer is other for other in self._layers):
            raise ValueError("this layer object already belongs to a model")
        self._layers.append(layer)

    def _shape_arg(self, shape):
        from .layers.base import _shape_tuple
        import numbers
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            return (check_int(shape, "input_dim", minimum=1),)
        if isinstance(shape, bool) or not isinstance(shape, (tuple, list)):
            raise TypeError(f"input_dim must be an int (or input_shape a tuple), got {type(shape).__name__}")
        return _shape_tuple(shape, "input_shape")

    def _dry_run(self, shape):
        """The output shape of the chain for per-sample input `shape`, checking every layer
        without changing any (so a rejected call leaves the model as it was)."""
        if not self._layers:
            raise ValueError("a Sequential model needs at least one layer")
        dtype = self._input_dtype()
        for layer in self._layers:
            if getattr(layer, "return_state", False):
                raise ValueError(f"{layer.name}: return_state=True makes a layer return several tensors; "
                                 "a Sequential model is a chain of single tensors (use af.Model)")
            layer.check_input(shape, dtype)
            shape, dtype = tuple(layer.output_shape(shape)), "float"
        return shape

    def _input_dtype(self):
        """'int32' when the first layer takes token ids (Embedding), else 'float'."""
        return getattr(self._layers[0], "input_dtype", "float") if self._layers else "float"

    def _unbuilt_x(self, X, name):
        """X of a model not built yet, converted as its first layer takes it (floats, or integer
        token ids checked against an Embedding's vocabulary)."""
        if self._input_dtype() != "int32":
            return as_array(X, name, self.dtype)
        arr = np.asarray(X)
        if arr.ndim < 2:
            raise ValueError(f"{name} must be 2-D (n_samples, steps) token ids, got shape {arr.shape}")
        arr = _data.int_input(arr, name, arr.shape[1:])
        self._layers[0].check_ids(arr, name)
        return arr

    @exclusive_method
    def build(self, input_shape: Union[int, Sequence[int]]) -> None:
        """Create the parameter buffers for samples of this shape (an int: vectors of that width)
        and initialise them."""
        shape = self._shape_arg(input_shape)
        if self.built:
            if shape != self.input_shape:
                if len(shape) == 1 and len(self.input_shape) == 1:
                    raise ValueError(f"model is built for input_dim={self.input_dim}, got {shape[0]}")
                raise ValueError(f"model is built for input_shape={self.input_shape}, got {shape}")
            return
        self._dry_run(shape)
        x = Input(shape=shape, dtype="int32" if self._input_dtype() == "int32" else "float32",
                  name=f"{self.name}_input")
        t = x
        for layer in self._layers:
            t = layer(t)
        self._build_graph(x, t)
        self.input_shape = shape
        self.input_dim = shape[0] if len(shape) == 1 else None

    def _prepare(self, X, y):
        if self.built:
            return self._xy(X, y)
        xs = [self._unbuilt_x(X, "X")] if not isinstance(X, dict) else None
        if xs is None or xs[0].ndim < 2 or 0 in xs[0].shape[1:]:
            raise ValueError(f"X must be 2-D (n_samples, n_features) or N-d (n_samples, *sample_shape), "
                             f"got shape {np.shape(X)}")
        out = self._dry_run(xs[0].shape[1:])
        ys = _data.targets_list(y, self.losses, [out], self.dtype, "y")
        if ys[0].shape[0] != xs[0].shape[0]:
            raise ValueError(f"X has {xs[0].shape[0]} rows but y has {ys[0].shape[0]}")
        return xs, ys

    def _prepare_val(self, X, y, xs):
        if self.built:
            return self._xy(X, y, xname="validation_data X", yname="validation_data y")
        if self._input_dtype() == "int32":
            xv = _data.int_input(X, "validation_data X", xs[0].shape[1:])
            self._layers[0].check_ids(xv, "validation_data X")
        else:
            xv = _data.float_input(X, "validation_data X", xs[0].shape[1:], self.dtype)
        out = self._dry_run(xs[0].shape[1:])
        yv = _data.targets_list(y, self.losses, [out], self.dtype, "validation_data y")
        if yv[0].shape[0] != xv.shape[0]:
            raise ValueError(f"validation_data X has {xv.shape[0]} rows but y has {yv[0].shape[0]}")
        return [xv], yv

    def _xs(self, X, name="X"):
        if self.built:
            return super()._xs(X, name)
        arr = self._unbuilt_x(X, name)
        if arr.ndim < 2 or 0 in arr.shape[1:]:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
        return [arr]

    def _ensure_built(self, xs):
        if not self.built:
            self.build(xs[0].shape[1:] if xs[0].ndim > 2 else xs[0].shape[1])

    def predict(self, X: Data, batch_size: Optional[int] = None,
                verbose: int = 0,
                distributed: Optional[Any] = None) -> Union[np.ndarray, List[np.ndarray]]:
        if not self._layers:
            raise ValueError("a Sequential model needs at least one layer")
        return Model.predict(self, X, batch_size, verbose, distributed)

    def _require_compiled(self, what):
        if what in ("fit", "evaluate", "gradients") and not self._layers:
            raise ValueError(f"a Sequential model needs at least one layer before {what}")
        super()._require_compiled(what)

    # ---- configuration -----------------------------------------------------------------------
    @exclusive_method
    def get_config(self) -> Dict[str, Any]:
        """JSON-able description: input_dim (or input_shape), dtype, seed, layers (+ loss,
        optimizer, metrics once compiled)."""
        cfg = {"input_dim": self.input_dim, "dtype": self._dtype_name, "seed": self.seed,
               "layers": [layer.get_config() for layer in self._layers]}
        if self.input_shape is not None and len(self.input_shape) > 1:
            cfg["input_shape"] = list(self.input_shape)
        cfg.update(self._compile_config())
        return cfg

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Sequential":
        """A new model (fresh weights from the seed) from get_config() output, compiled if the
        config holds a loss."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        unknown = set(config) - {"input_dim", "input_shape", "dtype", "seed", "layers", "loss",
                                 "optimizer", "metrics", "loss_weights", "class_name", "name"}
        if unknown:
            raise ValueError(f"unknown Sequential config keys {sorted(unknown)}")
        if not isinstance(config.get("layers"), list):
            raise ValueError("config['layers'] must be a list of layer configs")
        layers = [Layer.from_config(c) for c in config["layers"]]
        shape = config.get("input_shape")
        model = cls(layers, input_dim=config.get("input_dim") if shape is None else None,
                    input_shape=tuple(shape) if shape is not None else None,
                    dtype=config.get("dtype", "float32"), seed=config.get("seed"))
        model._compile_from_config(config)
        return model
