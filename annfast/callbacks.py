"""Training callbacks (Keras-style hooks called by ``fit`` once per epoch).

The model passed to ``set_model`` needs only what a callback uses: ``stop_training`` (a bool
the loop checks after each epoch), ``get_weights()`` / ``set_weights()`` (EarlyStopping with
restore_best_weights, TerminateOnNaN), ``save(path)`` (ModelCheckpoint) and ``optimizer``
(LearningRateScheduler, ReduceLROnPlateau). Epochs count from 0; ``logs`` is a dict such as
``{"loss": 0.3, "val_loss": 0.4}``.

Order within an epoch's end, as in Keras: ``fit`` calls the progress display first (so the
epoch's own line prints before any callback's message), then :class:`TerminateOnNaN` (one is
added by default), then the user's callbacks in the order given, then the :class:`History`.

>>> from annfast import callbacks
>>> stop = callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
>>> log = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)
>>> # model.fit(X, y, epochs=100, validation_split=0.2, callbacks=[stop, log])
"""
from __future__ import annotations

import csv
import inspect
import math
import numbers
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from ._validate import check_float, check_int

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "LambdaCallback", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
           "TerminateOnNaN"]

Logs = Optional[Dict[str, Any]]


class Callback:
    """Base class: override any of the hooks. ``self.model`` is set by ``set_model``.

    >>> class Printer(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, logs["loss"])
    >>> Printer().on_epoch_end(0, {"loss": 0.5})
    0 0.5
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: Dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: Optional[Dict[str, Any]]) -> None:
        self.params = dict(params or {})

    def on_train_begin(self, logs: Logs = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        pass

    def on_train_end(self, logs: Logs = None) -> None:
        pass


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is the list of losses and
    ``history.epoch`` the epoch numbers. ``fit`` returns it.

    >>> h = History(); h.on_train_begin(); h.on_epoch_end(0, {"loss": 1.0}); h.history
    {'loss': [1.0]}
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(int(epoch))
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(_scalar(v))

    def plot(self, path=None, **kwargs):
        """Draw the training curves (loss and metrics per epoch; needs matplotlib); see
        annfast.plot_history for the arguments."""
        from .plotting import plot_history
        return plot_history(self, path, **kwargs)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def _scalar(v):
    """Plain Python number for NumPy scalars (keeps logs JSON-able)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


class CallbackList:
    """Dispatches each hook to a list of callbacks in order (used by ``fit``).

    With add_history=True a fresh :class:`History` is put last (so it records what earlier
    callbacks add to the logs, e.g. ``lr``) and exposed as ``.history``.

    >>> cbs = CallbackList([TerminateOnNaN()], model=None)
    >>> cbs.on_train_begin(); cbs.on_epoch_end(0, {"loss": 0.1}); cbs.history.history
    {'loss': [0.1]}
    """

    def __init__(self, callbacks: Optional[Union[Callback, Sequence[Callback]]] = None, model: Any = None,
                 add_history: bool = True, params: Optional[Dict[str, Any]] = None):
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of annfast.callbacks.Callback, got "
                            f"{type(callbacks).__name__}")
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}] must be an annfast.callbacks.Callback, got "
                                f"{type(cb).__name__}")
        self.history = History() if add_history else None
        self.callbacks = list(callbacks) + ([self.history] if add_history else [])
        for cb in self.callbacks:
            cb.set_params(params)
            cb.set_model(model)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)


def _resolve_mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor.lower()
        return "max" if any(k in name for k in ("acc", "auc", "r2", "precision", "recall", "f1")) else "min"
    return mode


class _Monitor:
    """Tracks the best value of one logged metric."""

    def __init__(self, monitor, mode, min_delta):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a str, got {type(monitor).__name__}")
        self.monitor = monitor
        self.mode = _resolve_mode(mode, monitor)
        self.min_delta = abs(check_float(min_delta, "min_delta"))

    def initial(self):
        return math.inf if self.mode == "min" else -math.inf

    def improved(self, current, best):
        """current beats best by more than min_delta in the monitored direction."""
        if self.mode == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def value(self, logs, who):
        v = (logs or {}).get(self.monitor)
        if v is None:
            warnings.warn(f"{who}: monitored metric {self.monitor!r} is not in the logs "
                          f"(available: {sorted(logs or {})}); skipping", RuntimeWarning, stacklevel=3)
            return None
        return float(v)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` consecutive epochs (Keras semantics: with patience=0, the first epoch without
    improvement stops). mode: 'min', 'max' or 'auto' (max for accuracy-like names).
    restore_best_weights: at the END of training (stopped early or not), put back the weights
    of the best epoch, as Keras does; callbacks later in the list therefore see, during every
    epoch, the weights that produced that epoch's logs (a ModelCheckpoint saves what it scored).
    baseline: training also stops if the metric never beats this value within patience epochs.
    start_from_epoch: epochs to wait before monitoring (warm-up). verbose=1 prints
    "Epoch N: early stopping" (and the restore) when training ends, after the epoch lines.

    >>> es = EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False,
                 baseline: Optional[float] = None, verbose: int = 0, start_from_epoch: int = 0):
        super().__init__()
        self._mon = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._mon.mode, self._mon.min_delta
        self.patience = check_int(patience, "patience", minimum=0)
        if not isinstance(restore_best_weights, (bool, np.bool_)):
            raise TypeError(f"restore_best_weights must be a bool, got {type(restore_best_weights).__name__}")
        self.restore_best_weights = bool(restore_best_weights)
        self.baseline = None if baseline is None else check_float(baseline, "baseline")
        self.verbose = check_int(verbose, "verbose", minimum=0)
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", minimum=0)
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = None
        self.best = self._mon.initial()
        self.best_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._mon.value(logs, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # so there is always something to restore, even if no epoch ever improves
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._mon.improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._mon.improved(current, self.baseline):
                self.wait = 0
                return
            # improving but still not past the baseline: patience keeps counting
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping (best {self.monitor} = "
                  f"{self.best:.6g} at epoch {self.best_epoch + 1})")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model with ``model.save(path)`` after every epoch, or only when ``monitor``
    improves (save_best_only=True). ``filepath`` may contain ``{epoch}`` (1-based) and any log key,
    e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.

    >>> ckpt = ModelCheckpoint("best.npz", monitor="val_loss", save_best_only=True)
    """

    def __init__(self, filepath: Union[str, bytes, "os.PathLike[str]"], monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto", verbose: int = 0):
        super().__init__()
        if not isinstance(filepath, (str, bytes)) and not hasattr(filepath, "__fspath__"):
            raise TypeError(f"filepath must be a str or path-like, got {type(filepath).__name__}")
        self.filepath = filepath
        self._mon = _Monitor(monitor, mode, 0.0)
        self.monitor, self.mode = monitor, self._mon.mode
        if not isinstance(save_best_only, (bool, np.bool_)):
            raise TypeError(f"save_best_only must be a bool, got {type(save_best_only).__name__}")
        self.save_best_only = bool(save_best_only)
        self.verbose = check_int(verbose, "verbose", minimum=0)
        self.best = self._mon.initial()
        self.saved = []  # paths written, in order

    def on_train_begin(self, logs=None):
        self.best = self._mon.initial()

    def _path(self, epoch, logs):
        import os
        path = os.fspath(self.filepath)
        if isinstance(path, bytes):
            path = path.decode()
        try:
            return path.format(epoch=epoch + 1, **{k: _scalar(v) for k, v in (logs or {}).items()})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint filepath {path!r} could not be formatted with epoch and "
                             f"logs {sorted(logs or {})}: {exc}") from None

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            current = self._mon.value(logs, "ModelCheckpoint")
            if current is None or not self._mon.improved(current, self.best):
                return
            self.best = current
        path = self._path(epoch, logs)
        self.model.save(path)
        self.saved.append(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class LambdaCallback(Callback):
    """A callback from plain functions: on_epoch_end(epoch, logs), on_epoch_begin(epoch, logs),
    on_train_begin(logs), on_train_end(logs).

    >>> losses = []
    >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    """

    def __init__(self, on_epoch_begin: Optional[Callable[[int, Logs], None]] = None,
                 on_epoch_end: Optional[Callable[[int, Logs], None]] = None,
                 on_train_begin: Optional[Callable[[Logs], None]] = None,
                 on_train_end: Optional[Callable[[Logs], None]] = None):
        super().__init__()
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
        self._fns = (on_epoch_begin, on_epoch_end, on_train_begin, on_train_end)

    def on_epoch_begin(self, epoch, logs=None):
        if self._fns[0]:
            self._fns[0](epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._fns[1]:
            self._fns[1](epoch, logs)

    def on_train_begin(self, logs=None):
        if self._fns[2]:
            self._fns[2](logs)

    def on_train_end(self, logs=None):
        if self._fns[3]:
            self._fns[3](logs)


def _current_lr(model, epoch, who):
    opt = getattr(model, "optimizer", None)
    if opt is None:
        raise ValueError(f"{who} needs a compiled model (model.optimizer is None)")
    return opt, float(opt.lr_at(epoch))


def _checked_lr(lr, who, epoch):
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real) \
            or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"{who} schedule returned {lr!r} at epoch {epoch}; "
                         f"expected a finite number >= 0")
    return float(lr)


def _takes_two_args(fn):
    """Keras calls schedule(epoch, lr), or schedule(epoch) for a one-argument function."""
    try:
        inspect.signature(fn).bind(0, 0.1)
        return True
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): assume the current API
        return True


class LearningRateScheduler(Callback):
    """Set the optimiser's learning rate at the start of each epoch to ``schedule(epoch, lr)``
    (Keras semantics: lr = the rate the optimiser would use this epoch; a one-argument
    ``schedule(epoch)`` works too). The new value replaces the optimiser's ``learning_rate``
    (a float from then on, so it replaces a schedule object) and is logged as
    ``logs["learning_rate"]`` (and ``logs["lr"]``, the older Keras name).

    >>> sched = LearningRateScheduler(lambda epoch, lr: lr * 0.9 if epoch > 5 else lr)
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule = schedule
        self._two_args = _takes_two_args(schedule)
        self.verbose = check_int(verbose, "verbose", minimum=0)

    def on_epoch_begin(self, epoch, logs=None):
        opt, lr = _current_lr(self.model, epoch, "LearningRateScheduler")
        lr = self.schedule(epoch, lr) if self._two_args else self.schedule(epoch)
        opt.learning_rate = _checked_lr(lr, "LearningRateScheduler", epoch)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr):.6g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            opt = getattr(self.model, "optimizer", None)
            if opt is not None:
                logs["learning_rate"] = logs["lr"] = float(opt.lr_at(epoch))


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (Keras semantics): an improvement beats the best value by more than
    ``min_delta``; after a reduction, ``cooldown`` epochs pass before counting again; the rate
    never goes below ``min_lr``. The rate used in each epoch is logged as
    ``logs["learning_rate"]``. The reduced value replaces the optimiser's ``learning_rate`` (a
    float from then on).

    >>> plateau = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-5)
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0):
        super().__init__()
        self.factor = check_float(factor, "factor", minimum=0.0)
        if not self.factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got {factor}")
        self._mon = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._mon.mode, self._mon.min_delta
        self.patience = check_int(patience, "patience", minimum=0)
        self.verbose = check_int(verbose, "verbose", minimum=0)
        self.cooldown = check_int(cooldown, "cooldown", minimum=0)
        self.min_lr = check_float(min_lr, "min_lr", minimum=0.0)
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.best = self._mon.initial()
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        opt, lr = _current_lr(self.model, epoch, "ReduceLROnPlateau")
        if logs is not None:
            logs["learning_rate"] = lr
        current = self._mon.value(logs, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._mon.improved(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and lr > self.min_lr:
                new_lr = max(lr * self.factor, self.min_lr)
                opt.learning_rate = new_lr
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr:.6g}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (from 0) then the log keys in sorted order, as
    Keras does. append=True adds to an existing file (no second header); a key missing in some
    epoch is written as ``NA``. The file is closed when training ends.

    >>> log = CSVLogger("training.csv")
    """

    def __init__(self, filename: Union[str, "os.PathLike[str]"], separator: str = ",",
                 append: bool = False):
        super().__init__()
        if not isinstance(filename, str) and not hasattr(filename, "__fspath__"):
            raise TypeError(f"filename must be a str or path-like, got {type(filename).__name__}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        if not isinstance(append, (bool, np.bool_)):
            raise TypeError(f"append must be a bool, got {type(append).__name__}")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys: Optional[List[str]] = None
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                header = not f.readline()
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self._header = header
        self.keys, self._writer = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self.keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.sep)
            if self._header:
                self._writer.writerow(["epoch"] + self.keys)
        self._writer.writerow([epoch] + [_csv_value(logs.get(k, "NA")) for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
        self._file, self._writer = None, None


def _csv_value(v):
    v = _scalar(v)
    if isinstance(v, np.ndarray):
        return "[" + ", ".join(map(str, v.ravel().tolist())) + "]"
    return v


class TerminateOnNaN(Callback):
    """Stop training when the training loss becomes NaN or infinite, and (keep_last_finite=True,
    the default) put back the weights and optimiser state the model had at the end of the last
    epoch whose loss was finite, so the model stays usable. A RuntimeWarning says which epoch
    failed and what the model now holds; ``stopped_epoch`` is that epoch (None if none failed)
    and ``last_finite_weights`` the weights kept (a list like ``model.get_weights()``; with
    keep_last_finite=False the model keeps the non-finite weights and this list is how to get
    the good ones back: ``model.set_weights(cb.last_finite_weights)``).

    ``Sequential.fit`` adds one of these (first, after the progress display) unless the
    callbacks already hold one, so a diverging run always stops cleanly. The check is per
    epoch (the engine runs an epoch in C); the epoch's loss is recorded in the History.

    >>> cb = TerminateOnNaN()
    """

    def __init__(self, keep_last_finite: bool = True):
        super().__init__()
        if not isinstance(keep_last_finite, (bool, np.bool_)):
            raise TypeError(f"keep_last_finite must be a bool, got {type(keep_last_finite).__name__}")
        self.keep_last_finite = bool(keep_last_finite)
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None
        self.last_finite_weights = None
        self._opt_state = None
        self._last_good = None  # epochs completed with a finite loss, for the message

    def on_epoch_begin(self, epoch, logs=None):
        # the weights now are those at the end of the previous (finite) epoch
        get = getattr(self.model, "get_weights", None)
        self.last_finite_weights = get() if callable(get) else None
        state = getattr(self.model, "optimizer_state", None)
        compiled = getattr(self.model, "optimizer", None) is not None
        self._opt_state = state() if callable(state) and compiled else None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            self._last_good = epoch
            return
        self.stopped_epoch = epoch
        if self.model is not None:
            self.model.stop_training = True
        kept = ""
        snapshot_finite = self.last_finite_weights is not None and all(
            np.isfinite(w).all() for w in self.last_finite_weights)
        if self.last_finite_weights is not None and not snapshot_finite:
            # the weights were not finite before this epoch either (set so by the user, or an
            # earlier run): nothing finite to go back to
            kept = "the weights were already non-finite before this epoch; nothing to restore"
        elif self.keep_last_finite and self.last_finite_weights is not None:
            self.model.set_weights(self.last_finite_weights)
            if self._opt_state is not None:
                self.model.set_optimizer_state(self._opt_state)
            kept = (f"the model holds the weights from the end of epoch {self._last_good + 1}, the "
                    "last with a finite loss" if self._last_good is not None else
                    "the model holds the weights it had before training")
        elif self.last_finite_weights is not None:
            kept = ("the model keeps the non-finite weights; the last finite ones are in "
                    "TerminateOnNaN.last_finite_weights")
        warnings.warn(f"Epoch {epoch + 1}: the training loss is {float(loss)}; training stopped"
                      + (f" ({kept})" if kept else "") + ". A smaller learning rate, gradient "
                      "clipping (clipnorm) or standardised inputs usually help.",
                      RuntimeWarning, stacklevel=2)


def fit_callbacks(user: Sequence[Callback], progress: Optional[Callback] = None) -> List[Callback]:
    """The callbacks fit runs, in Keras's order: the progress display first (its epoch line
    prints before any callback's message), a default TerminateOnNaN unless the user gave one,
    then the user's callbacks in their order."""
    front = [progress] if progress is not None else []
    if not any(isinstance(cb, TerminateOnNaN) for cb in user):
        front.append(TerminateOnNaN())
    return front + list(user)
