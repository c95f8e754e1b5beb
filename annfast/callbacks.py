"""Training callbacks (Keras-style hooks called by ``fit`` once per epoch).

The model passed to ``set_model`` needs only what a callback uses: ``stop_training`` (a bool
the loop checks after each epoch), ``get_weights()`` / ``set_weights()`` (EarlyStopping with
restore_best_weights), ``save(path)`` (ModelCheckpoint) and ``optimizer`` (LearningRateScheduler).
Epochs count from 0; ``logs`` is a dict such as ``{"loss": 0.3, "val_loss": 0.4}``.

>>> from annfast import callbacks
>>> stop = callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
>>> log = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)
>>> # model.fit(X, y, epochs=100, validation_split=0.2, callbacks=[stop, log])
"""
import math
import numbers
import warnings

import numpy as np

from ._validate import check_float, check_int

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "LambdaCallback", "LearningRateScheduler", "TerminateOnNaN"]


class Callback:
    """Base class: override any of the hooks. ``self.model`` is set by ``set_model``.

    >>> class Printer(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, logs["loss"])
    >>> Printer().on_epoch_end(0, {"loss": 0.5})
    0 0.5
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params or {})

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
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

    def __init__(self, callbacks=None, model=None, add_history=True, params=None):
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
    restore_best_weights: when stopping, put back the weights of the best epoch.
    baseline: training also stops if the metric never beats this value within patience epochs.

    >>> es = EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False, baseline=None, verbose=0):
        super().__init__()
        self._mon = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._mon.mode, self._mon.min_delta
        self.patience = check_int(patience, "patience", minimum=0)
        if not isinstance(restore_best_weights, (bool, np.bool_)):
            raise TypeError(f"restore_best_weights must be a bool, got {type(restore_best_weights).__name__}")
        self.restore_best_weights = bool(restore_best_weights)
        self.baseline = None if baseline is None else check_float(baseline, "baseline")
        self.verbose = check_int(verbose, "verbose", minimum=0)
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = None
        self.best = self._mon.initial()
        self.best_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._mon.value(logs, "EarlyStopping")
        if current is None:
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
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping (best {self.monitor} = {self.best:.6g} "
                      f"at epoch {self.best_epoch + 1})")


class ModelCheckpoint(Callback):
    """Save the model with ``model.save(path)`` after every epoch, or only when ``monitor``
    improves (save_best_only=True). ``filepath`` may contain ``{epoch}`` (1-based) and any log key,
    e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.

    >>> ckpt = ModelCheckpoint("best.npz", monitor="val_loss", save_best_only=True)
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto", verbose=0):
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

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None):
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


class LearningRateScheduler(Callback):
    """Set the optimiser's learning rate at the start of each epoch to ``schedule(epoch, lr)``
    (lr = the rate the optimiser would use this epoch). The new value replaces the optimiser's
    ``learning_rate`` (a float from then on) and is logged as ``logs["lr"]``.

    >>> sched = LearningRateScheduler(lambda epoch, lr: lr * 0.9 if epoch > 5 else lr)
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = check_int(verbose, "verbose", minimum=0)

    def on_epoch_begin(self, epoch, logs=None):
        opt = getattr(self.model, "optimizer", None)
        if opt is None:
            raise ValueError("LearningRateScheduler needs a compiled model (model.optimizer is None)")
        lr = self.schedule(epoch, opt.lr_at(epoch))
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real) \
                or not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler schedule returned {lr!r} at epoch {epoch}; "
                             f"expected a finite number >= 0")
        opt.learning_rate = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {float(lr):.6g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            opt = getattr(self.model, "optimizer", None)
            if opt is not None:
                logs["lr"] = opt.lr_at(epoch)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    >>> cb = TerminateOnNaN()
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            if self.model is not None:
                self.model.stop_training = True
