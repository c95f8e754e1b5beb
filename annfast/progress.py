"""Training progress display for ``fit(verbose=...)``.

verbose=0: silent. verbose=1: a progress bar per epoch with loss/metrics and samples/s (tqdm when
installed, otherwise a plain one-line bar redrawn with a carriage return). verbose=2: one line
per epoch. :class:`Progress` is a :class:`~annfast.callbacks.Callback`; ``fit`` calls
``update(samples_done, logs)`` whenever it has new numbers within an epoch (the C engine runs an
epoch, or a slice of one, per call).

>>> import io
>>> out = io.StringIO()
>>> p = Progress(verbose=2, epochs=3, n_samples=100, file=out, use_tqdm=False)
>>> p.on_train_begin(); p.on_epoch_begin(0); p.on_epoch_end(0, {"loss": 0.25})
>>> out.getvalue().startswith("Epoch 1/3 - ")
True
"""
import sys
import time

from ._validate import check_int
from .callbacks import Callback

__all__ = ["Progress", "format_logs"]


def format_logs(logs):
    """'loss: 0.1234 - accuracy: 0.9500' from a logs dict (floats with 4 significant decimals).

    >>> format_logs({"loss": 0.123456, "val_loss": 0.5})
    'loss: 0.1235 - val_loss: 0.5000'
    """
    parts = []
    for k, v in (logs or {}).items():
        try:
            parts.append(f"{k}: {float(v):.4f}")
        except (TypeError, ValueError):
            parts.append(f"{k}: {v}")
    return " - ".join(parts)


def _rate(samples, seconds):
    return f"{samples / seconds:,.0f} samples/s" if seconds > 0 else "- samples/s"


def _tqdm_class(use_tqdm):
    if use_tqdm is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if use_tqdm:
            raise ImportError("use_tqdm=True but tqdm is not installed (pip install tqdm)") from None
        return None
    return tqdm


class Progress(Callback):
    """Progress output for ``fit``: see the module docstring.

    Parameters: verbose (0, 1 or 2), epochs, n_samples (training samples per epoch), file
    (default sys.stdout), use_tqdm (None: if installed; True: require; False: plain bar),
    width (characters of the plain bar).

    >>> p = Progress(verbose=0, epochs=1, n_samples=10)
    """

    def __init__(self, verbose=1, epochs=1, n_samples=0, file=None, use_tqdm=None, width=30):
        super().__init__()
        self.verbose = check_int(verbose, "verbose", minimum=0)
        if self.verbose > 2:
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose}")
        self.epochs = check_int(epochs, "epochs", minimum=0)
        self.n_samples = check_int(n_samples, "n_samples", minimum=0)
        self.file = file
        self.width = check_int(width, "width", minimum=1)
        self._tqdm_cls = _tqdm_class(use_tqdm) if self.verbose == 1 else None
        self._bar = None
        self._t0 = None
        self._done = 0
        self._last_len = 0

    @property
    def out(self):
        return self.file if self.file is not None else sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._done = 0
        self._last_len = 0
        if self.verbose != 1:
            return
        desc = f"Epoch {epoch + 1}/{self.epochs}"
        if self._tqdm_cls is not None:
            self._bar = self._tqdm_cls(total=self.n_samples, desc=desc, unit="samples", file=self.out,
                                       leave=True, dynamic_ncols=True)
        else:
            self.out.write(desc + "\n")
            self._draw({})

    def update(self, samples_done, logs=None):
        """Report progress within the current epoch: samples processed so far and the running
        logs (e.g. the mean loss so far)."""
        samples_done = min(check_int(samples_done, "samples_done", minimum=0), self.n_samples)
        delta = samples_done - self._done
        self._done = samples_done
        if self.verbose != 1:
            return
        if self._bar is not None:
            if delta > 0:
                self._bar.update(delta)
            if logs:
                self._bar.set_postfix_str(format_logs(logs), refresh=True)
        else:
            self._draw(logs or {})

    def _elapsed(self):
        return time.perf_counter() - self._t0 if self._t0 is not None else 0.0

    def _draw(self, logs, final=False):
        n, done = self.n_samples, self._done
        frac = done / n if n else 1.0
        filled = int(round(self.width * frac))
        bar = "=" * max(filled - 1, 0) + (">" if 0 < filled < self.width else "=" if filled else "")
        bar = bar.ljust(self.width, ".")
        digits = len(str(n))
        secs = self._elapsed()
        line = f"{done:>{digits}}/{n} [{bar}] - {secs:.1f}s - {_rate(done, secs)}"
        if logs:
            line += " - " + format_logs(logs)
        pad = max(self._last_len - len(line), 0)
        self._last_len = len(line)
        self.out.write("\r" + line + " " * pad + ("\n" if final else ""))
        self.out.flush()

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose == 0:
            return
        self._done = self.n_samples
        secs = self._elapsed()
        if self.verbose == 2:
            line = f"Epoch {epoch + 1}/{self.epochs} - {secs:.1f}s - {_rate(self.n_samples, secs)}"
            if logs:
                line += " - " + format_logs(logs)
            self.out.write(line + "\n")
            self.out.flush()
        elif self._bar is not None:
            self._bar.update(self.n_samples - self._bar.n)
            self._bar.set_postfix_str(format_logs(logs) + f" - {_rate(self.n_samples, secs)}", refresh=True)
            self._bar.close()
            self._bar = None
        else:
            self._draw(logs or {}, final=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:  # interrupted mid-epoch
            self._bar.close()
            self._bar = None
        elif self.verbose == 1 and self._last_len and self._done < self.n_samples:
            self.out.write("\n")
            self.out.flush()
