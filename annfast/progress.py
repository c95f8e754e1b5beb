"""Training progress display for ``fit(verbose=...)``.

verbose=0: silent. verbose=2: one line per epoch. verbose=1: on a terminal, a bar sized to the
terminal width (``shutil.get_terminal_size``) redrawn in place during the epoch (tqdm's when
installed), replaced at the epoch's end by ONE summary line with the time, the speed, and every
training and validation metric; when the output is not a terminal (a file, a pipe, CI logs) the
bar is skipped and each epoch writes that summary line only, so a log holds no ``\\r`` redraws.

The summary line is never cut: on a terminal narrower than the line, the time and speed are
dropped and the metrics written compactly (``loss=0.2500 accuracy=0.9500 val_loss=...``, which
fits 80 columns for a loss, one metric and their validation values); a line still too wide
breaks between two metrics (the continuation is indented).

:class:`Progress` is a :class:`~annfast.callbacks.Callback`; ``fit`` puts it FIRST in the callback
list (as Keras does), so messages of later callbacks print after the epoch's line, and calls
``update(samples_done, logs)`` whenever it has new numbers within an epoch (the C engine runs an
epoch, or a slice of one, per call).

>>> import io
>>> out = io.StringIO()
>>> p = Progress(verbose=2, epochs=3, n_samples=100, file=out, use_tqdm=False)
>>> p.on_train_begin(); p.on_epoch_begin(0); p.on_epoch_end(0, {"loss": 0.25})
>>> out.getvalue().startswith("Epoch 1/3 - ")
True
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import IO, Any, Mapping, Optional

from ._validate import check_int
from .callbacks import Callback

__all__ = ["Progress", "format_logs"]

MIN_BAR = 10        # narrowest bar worth drawing; below it the bar's optional parts are dropped
DEFAULT_COLUMNS = 80


def format_logs(logs: Optional[Mapping[str, Any]]) -> str:
    """'loss: 0.1234 - accuracy: 0.9500' from a logs dict (floats with 4 decimals).

    >>> format_logs({"loss": 0.123456, "val_loss": 0.5})
    'loss: 0.1235 - val_loss: 0.5000'
    """
    return " - ".join(_log_parts(logs))


def _log_parts(logs):
    parts = []
    for k, v in (logs or {}).items():
        try:
            parts.append(f"{k}: {float(v):.4f}")
        except (TypeError, ValueError):
            parts.append(f"{k}: {v}")
    return parts


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


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _columns():
    """Terminal width now (it may change between epochs); 80 when unknown."""
    cols = shutil.get_terminal_size((DEFAULT_COLUMNS, 24)).columns
    return cols if cols > 0 else DEFAULT_COLUMNS


def wrap_parts(parts, columns, sep=" - ", indent="    "):
    """Join parts with sep into lines of at most columns - 1 characters, breaking only between
    parts (a part is never cut; one longer than a line gets a line of its own).

    >>> wrap_parts(["Epoch 1/2", "loss: 0.5000", "val_loss: 0.6000"], 30)
    ['Epoch 1/2 - loss: 0.5000', '    val_loss: 0.6000']
    """
    room = max(columns - 1, 1)
    lines, cur = [], ""
    for part in parts:
        if not cur:
            cur = (indent if lines else "") + part
        elif len(cur) + len(sep) + len(part) <= room:
            cur += sep + part
        else:
            lines.append(cur)
            cur = indent + part
    if cur:
        lines.append(cur)
    return lines


class Progress(Callback):
    """Progress output for ``fit``: see the module docstring.

    Parameters: verbose (0, 1 or 2), epochs, n_samples (training samples per epoch), file
    (default sys.stdout), use_tqdm (None: if installed; True: require; False: plain bar),
    width (widest plain bar, in characters; it shrinks to fit the terminal).

    >>> p = Progress(verbose=0, epochs=1, n_samples=10)
    """

    def __init__(self, verbose: int = 1, epochs: int = 1, n_samples: int = 0,
                 file: Optional[IO[str]] = None, use_tqdm: Optional[bool] = None, width: int = 30):
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
        self._epoch = 0

    @property
    def out(self) -> IO[str]:
        return self.file if self.file is not None else sys.stdout

    @property
    def live(self) -> bool:
        """True when a bar is redrawn in place: verbose=1 on a terminal."""
        return self.verbose == 1 and _isatty(self.out)

    def _desc(self, epoch):
        return f"Epoch {epoch + 1}/{self.epochs}"

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._done = 0
        self._last_len = 0
        self._epoch = epoch
        if not self.live:
            return
        if self._tqdm_cls is not None:
            self._bar = self._tqdm_cls(total=self.n_samples, desc=self._desc(epoch), unit="samples",
                                       file=self.out, leave=False, ncols=_columns() - 1)
        else:
            self._draw({})

    def update(self, samples_done, logs=None):
        """Report progress within the current epoch: samples processed so far and the running
        logs (e.g. the mean loss so far)."""
        samples_done = min(check_int(samples_done, "samples_done", minimum=0), self.n_samples)
        delta = samples_done - self._done
        self._done = samples_done
        if not self.live:
            return
        if self._bar is not None:
            if delta > 0:
                self._bar.update(delta)
            self._bar.set_postfix_str(self._tqdm_postfix(logs), refresh=True)
        else:
            self._draw(logs or {})

    def _tqdm_postfix(self, logs):
        """The running logs when tqdm's line has room for them whole; else nothing (tqdm would
        cut them mid-word)."""
        text = format_logs(logs)
        meter = getattr(self._tqdm_cls, "format_meter", None)
        if not text or meter is None:
            return text
        # without ncols tqdm draws a 10-character bar: the rest is what the text needs
        need = len(meter(self._done, self.n_samples, self._elapsed(), prefix=self._desc(self._epoch),
                         unit="samples", postfix=text)) - 10 + MIN_BAR
        return text if need <= _columns() - 1 else ""

    def _elapsed(self):
        return time.perf_counter() - self._t0 if self._t0 is not None else 0.0

    def _bar_text(self, width):
        frac = self._done / self.n_samples if self.n_samples else 1.0
        filled = int(round(width * frac))
        bar = "=" * max(filled - 1, 0) + (">" if 0 < filled < width else "=" if filled else "")
        return bar.ljust(width, ".")

    def _bar_line(self, logs, columns):
        """'Epoch 1/3 500/1000 [====>.....] - 0.5s - 1,000 samples/s - loss: 0.5000' fitted into
        the terminal: the bar shrinks first, then the speed, the time and the logs are dropped."""
        n = self.n_samples
        head = f"{self._desc(self._epoch)} {self._done:>{len(str(n))}}/{n}"
        secs = self._elapsed()
        timing, logs = [f"{secs:.1f}s", _rate(self._done, secs)], _log_parts(logs)
        room = columns - 1
        while True:
            text = "".join(" - " + p for p in timing + logs)
            bar_w = min(self.width, room - len(head) - len(text) - 3)  # " [" + "]"
            if bar_w >= MIN_BAR or not (timing or logs):
                break
            (timing or logs).pop()  # speed, time, then the logs from the right
        line = f"{head} [{self._bar_text(max(bar_w, 1))}]" + text
        return line[:room]  # only a terminal too narrow for even the bar cuts anything

    def _draw(self, logs):
        line = self._bar_line(logs, _columns())
        pad = max(self._last_len - len(line), 0)
        self._last_len = len(line)
        self.out.write("\r" + line + " " * pad)
        self.out.flush()

    def summary(self, epoch, logs, columns=None):
        """The epoch's summary line(s): 'Epoch 1/3 - 0.5s - 2,000 samples/s - loss: ... -
        val_loss: ...'; with columns, fitted to that width as described in the module docstring."""
        secs = self._elapsed()
        full = " - ".join([self._desc(epoch), f"{secs:.1f}s", _rate(self.n_samples, secs)]
                          + _log_parts(logs))
        if columns is None or len(full) <= columns - 1:
            return [full]
        # tqdm-style 'loss=0.2500': loss, accuracy and their val_ twins fit in 80 columns
        compact = [self._desc(epoch)] + [p.replace(": ", "=", 1) for p in _log_parts(logs)]
        return wrap_parts(compact, columns, sep=" ")

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose == 0:
            return
        self._done = self.n_samples
        if not self.live:
            self.out.write(self.summary(epoch, logs)[0] + "\n")
            self.out.flush()
            return
        if self._bar is not None:
            self._bar.close()  # leave=False: tqdm erases its line
            self._bar = None
            self.out.write("\r")
        else:
            self.out.write("\r" + " " * self._last_len + "\r")
        self._last_len = 0
        self.out.write("\n".join(self.summary(epoch, logs, _columns())) + "\n")
        self.out.flush()

    def on_train_end(self, logs=None):
        if self._bar is not None:  # interrupted mid-epoch
            self._bar.close()
            self._bar = None
        elif self._last_len:       # a plain bar left mid-epoch: end its line
            self.out.write("\n")
            self.out.flush()
            self._last_len = 0
