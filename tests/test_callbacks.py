"""Callbacks and progress output, driven by a tiny fake model and a fake fit loop (no engine)."""
import io
import sys
import types

import numpy as np
import pytest

from annfast import callbacks as cb
from annfast import optimizers
from annfast.progress import Progress, format_logs


class FakeModel:
    """What callbacks need from a model: weights, stop_training, save, optimizer."""

    def __init__(self):
        self.weights = [np.zeros((2, 3)), np.zeros(3)]
        self.stop_training = False
        self.saved = []
        self.optimizer = optimizers.SGD(0.1)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, ws):
        self.weights = [np.array(w, copy=True) for w in ws]

    def save(self, path):
        with open(path, "w") as f:
            f.write("model")
        self.saved.append(path)
        self.saved_weights = self.get_weights()


def fake_fit(model, callbacks, val_losses, train_losses=None, extra=None):
    """Mimic Sequential.fit's epoch loop: epoch e 'trains' by setting every weight to e."""
    cbl = cb.CallbackList(callbacks, model=model)
    model.stop_training = False
    cbl.on_train_begin()
    for epoch, vl in enumerate(val_losses):
        cbl.on_epoch_begin(epoch)
        model.weights = [np.full_like(w, epoch) for w in model.weights]
        logs = {"loss": train_losses[epoch] if train_losses else 1.0 / (epoch + 1), "val_loss": vl}
        if extra:
            logs.update(extra(epoch))
        cbl.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbl.on_train_end()
    return cbl.history


# ---- History / CallbackList / LambdaCallback -------------------------------------------------
def test_history_records_logs():
    m = FakeModel()
    h = fake_fit(m, [], [3.0, 2.0, 1.0])
    assert h.epoch == [0, 1, 2]
    assert h.history["val_loss"] == [3.0, 2.0, 1.0]
    assert h.history["loss"] == [1.0, 0.5, 1.0 / 3]
    h2 = fake_fit(m, [], [np.float32(4.0)])
    assert h2.history["val_loss"] == [4.0] and type(h2.history["val_loss"][0]) is float


def test_lambda_callback_hook_order():
    calls = []
    lam = cb.LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                            on_epoch_begin=lambda e, logs: calls.append(("eb", e)),
                            on_epoch_end=lambda e, logs: calls.append(("ee", e, logs["val_loss"])),
                            on_train_end=lambda logs: calls.append("end"))
    fake_fit(FakeModel(), [lam], [0.5, 0.25])
    assert calls == ["begin", ("eb", 0), ("ee", 0, 0.5), ("eb", 1), ("ee", 1, 0.25), "end"]


def test_user_callback_subclass_sees_model():
    seen = []

    class Recorder(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, self.model.weights[1][0], logs["loss"]))

    fake_fit(FakeModel(), [Recorder()], [1.0, 1.0])
    assert seen == [(0, 0.0, 1.0), (1, 1.0, 0.5)]


def test_callback_list_rejects_non_callbacks():
    with pytest.raises(TypeError, match=r"callbacks\[1\] must be"):
        cb.CallbackList([cb.History(), object()])
    with pytest.raises(TypeError, match="callbacks must be a list"):
        cb.CallbackList("early")
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        cb.LambdaCallback(on_epoch_end=3)


# ---- EarlyStopping ---------------------------------------------------------------------------
def test_early_stopping_patience():
    m = FakeModel()
    es = cb.EarlyStopping(monitor="val_loss", patience=2)
    h = fake_fit(m, [es], [5, 4, 3, 3.5, 3.2, 3.1, 4, 1])
    # best at epoch 2; epochs 3 and 4 do not improve -> stop after epoch 4
    assert es.stopped_epoch == 4 and es.best_epoch == 2 and es.best == 3
    assert h.epoch == [0, 1, 2, 3, 4]
    assert m.weights[0][0, 0] == 4  # without restore the last weights stay


def test_early_stopping_restore_best_weights():
    m = FakeModel()
    es = cb.EarlyStopping(patience=1, restore_best_weights=True)
    fake_fit(m, [es], [5, 2, 3, 4, 0.1])
    assert es.stopped_epoch == 2
    assert all(np.all(w == 1) for w in m.weights)  # weights of epoch 1, the best


def test_early_stopping_patience_zero_and_min_delta():
    es = cb.EarlyStopping(patience=0)
    fake_fit(FakeModel(), [es], [3, 2, 2.5, 1])
    assert es.stopped_epoch == 2
    es = cb.EarlyStopping(patience=2, min_delta=0.5)
    h = fake_fit(FakeModel(), [es], [3, 2.8, 2.6, 2.4, 1])
    # 2.8 and 2.6 are within min_delta of the best (3): no improvement -> stop at epoch 2
    assert es.stopped_epoch == 2 and h.epoch == [0, 1, 2]


def test_early_stopping_max_mode_auto_for_accuracy():
    es = cb.EarlyStopping(monitor="val_accuracy", patience=2)
    assert es.mode == "max"
    h = fake_fit(FakeModel(), [es], [0] * 6,
                 extra=lambda e: {"val_accuracy": [0.5, 0.7, 0.9, 0.85, 0.8, 0.95][e]})
    assert es.stopped_epoch == 4 and es.best == 0.9
    assert len(h.epoch) == 5


def test_early_stopping_runs_to_end_when_improving():
    m = FakeModel()
    es = cb.EarlyStopping(patience=0, restore_best_weights=True)
    h = fake_fit(m, [es], [5, 4, 3, 2])
    assert es.stopped_epoch is None and not m.stop_training and len(h.epoch) == 4


def test_early_stopping_missing_metric_warns():
    es = cb.EarlyStopping(monitor="val_auc")
    with pytest.warns(RuntimeWarning, match="'val_auc' is not in the logs"):
        h = fake_fit(FakeModel(), [es], [3, 4, 5])
    assert len(h.epoch) == 3


def test_early_stopping_baseline():
    es = cb.EarlyStopping(patience=2, baseline=1.0)
    h = fake_fit(FakeModel(), [es], [3, 2, 1.5, 1.2, 0.5])
    # improving but never beating the baseline: patience counts anyway
    assert es.stopped_epoch == 1 and len(h.epoch) == 2


def test_early_stopping_reset_between_fits():
    m = FakeModel()
    es = cb.EarlyStopping(patience=0)
    fake_fit(m, [es], [1, 2])
    assert es.stopped_epoch == 1
    h = fake_fit(m, [es], [5, 4, 3])  # state reset on train begin: best starts at inf again
    assert es.stopped_epoch is None and len(h.epoch) == 3


def test_early_stopping_argument_checks():
    with pytest.raises(ValueError, match="patience"):
        cb.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        cb.EarlyStopping(mode="up")
    with pytest.raises(TypeError, match="monitor"):
        cb.EarlyStopping(monitor=3)
    with pytest.raises(TypeError, match="restore_best_weights"):
        cb.EarlyStopping(restore_best_weights="yes")


def test_early_stopping_restores_at_train_end_checkpoint_saves_what_it_scored(tmp_path):
    """restore_best_weights acts when training ends (Keras): a ModelCheckpoint later in the
    list saves, at the stopping epoch, the weights that produced that epoch's score (before,
    EarlyStopping restored older weights first and the checkpoint saved those under the new
    score)."""
    m = FakeModel()
    es = cb.EarlyStopping(patience=0, min_delta=0.5, restore_best_weights=True)
    ck = cb.ModelCheckpoint(str(tmp_path / "best.npz"), save_best_only=True)
    h = fake_fit(m, [es, ck], [5.0, 4.9, 1.0])
    assert es.stopped_epoch == 1 and h.epoch == [0, 1]
    assert ck.best == 4.9 and all(np.all(w == 1) for w in m.saved_weights)  # epoch 1's weights
    assert all(np.all(w == 0) for w in m.weights)  # then the best epoch (0) restored at the end


def test_early_stopping_restores_best_even_without_stopping():
    m = FakeModel()
    es = cb.EarlyStopping(patience=5, restore_best_weights=True)
    fake_fit(m, [es], [5, 2, 3, 4])
    assert es.stopped_epoch is None and all(np.all(w == 1) for w in m.weights)


def test_early_stopping_start_from_epoch():
    es = cb.EarlyStopping(patience=0, start_from_epoch=2)
    h = fake_fit(FakeModel(), [es], [1, 2, 3, 4, 5])
    assert es.stopped_epoch == 3 and len(h.epoch) == 4


def test_early_stopping_message_prints_at_train_end(capsys):
    es = cb.EarlyStopping(patience=0, verbose=1, restore_best_weights=True)
    lam = cb.LambdaCallback(on_epoch_end=lambda e, logs: print(f"epoch line {e}"))
    fake_fit(FakeModel(), [es, lam], [1, 2, 3])
    out = capsys.readouterr().out.splitlines()
    assert out == ["epoch line 0", "epoch line 1",
                   "Epoch 2: early stopping (best val_loss = 1 at epoch 1)",
                   "Restoring model weights from the end of the best epoch: 1."]


# ---- ModelCheckpoint -------------------------------------------------------------------------
def test_checkpoint_every_epoch_with_formatted_names(tmp_path):
    m = FakeModel()
    ck = cb.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.1f}.npz"), save_best_only=False)
    fake_fit(m, [ck], [3.0, 2.5, 4.0])
    names = [p.split("/")[-1] for p in m.saved]
    assert names == ["m-01-3.0.npz", "m-02-2.5.npz", "m-03-4.0.npz"]
    assert all((tmp_path / n).exists() for n in names)


def test_checkpoint_save_best_only(tmp_path):
    m = FakeModel()
    ck = cb.ModelCheckpoint(str(tmp_path / "best-{epoch}.npz"), monitor="val_loss", save_best_only=True)
    fake_fit(m, [ck], [3.0, 2.0, 2.5, 1.0, 1.0])
    assert [p.split("/")[-1] for p in m.saved] == ["best-1.npz", "best-2.npz", "best-4.npz"]
    ck = cb.ModelCheckpoint(str(tmp_path / "acc.npz"), monitor="val_acc", save_best_only=True)
    m2 = FakeModel()
    fake_fit(m2, [ck], [0] * 3, extra=lambda e: {"val_acc": [0.5, 0.4, 0.6][e]})
    assert len(m2.saved) == 2


def test_checkpoint_bad_format_key(tmp_path):
    ck = cb.ModelCheckpoint(str(tmp_path / "{val_f1}.npz"))
    with pytest.raises(ValueError, match="could not be formatted"):
        fake_fit(FakeModel(), [ck], [1.0])


# ---- LearningRateScheduler / TerminateOnNaN --------------------------------------------------
def test_learning_rate_scheduler():
    m = FakeModel()
    sched = cb.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 else lr)
    h = fake_fit(m, [sched], [1, 1, 1])
    assert h.history["lr"] == [0.1, 0.05, 0.025]
    assert m.optimizer.c_config(3)["lr"] == 0.025
    bad = cb.LearningRateScheduler(lambda epoch, lr: -1)
    with pytest.raises(ValueError, match="returned -1 at epoch 0"):
        fake_fit(FakeModel(), [bad], [1])


def test_learning_rate_scheduler_keras_forms():
    m = FakeModel()
    one_arg = cb.LearningRateScheduler(lambda epoch: 0.5 / (epoch + 1))  # Keras's older form
    h = fake_fit(m, [one_arg], [1, 1])
    assert h.history["learning_rate"] == [0.5, 0.25] == h.history["lr"]


def test_terminate_on_nan_keeps_last_finite_weights():
    m = FakeModel()
    term = cb.TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match=r"Epoch 3: the training loss is nan; training stopped "
                                            r"\(the model holds the weights from the end of epoch 2"):
        h = fake_fit(m, [term], [1] * 5, train_losses=[1.0, 0.5, float("nan"), 0.5, 0.2])
    assert h.epoch == [0, 1, 2] and np.isnan(h.history["loss"][2])
    assert term.stopped_epoch == 2
    assert all(np.all(w == 1) for w in m.weights)  # the fake epoch e sets the weights to e
    m = FakeModel()
    term = cb.TerminateOnNaN(keep_last_finite=False)
    with pytest.warns(RuntimeWarning, match="last finite ones are in TerminateOnNaN.last_finite_weights"):
        fake_fit(m, [term], [1] * 3, train_losses=[1.0, float("inf"), 1.0])
    assert all(np.all(w == 1) for w in m.weights)
    assert all(np.all(w == 0) for w in term.last_finite_weights)
    with pytest.raises(TypeError, match="keep_last_finite"):
        cb.TerminateOnNaN(keep_last_finite=1)


def test_fit_callbacks_order():
    from annfast.progress import Progress
    user = [cb.EarlyStopping(), cb.CSVLogger("x.csv")]
    prog = Progress(verbose=2)
    got = cb.fit_callbacks(user, prog)
    assert got[0] is prog and isinstance(got[1], cb.TerminateOnNaN) and got[2:] == user
    mine = cb.TerminateOnNaN(keep_last_finite=False)
    assert cb.fit_callbacks([mine], None) == [mine]


# ---- ReduceLROnPlateau -----------------------------------------------------------------------
def test_reduce_lr_on_plateau_keras_trace():
    """Trace worked by hand from Keras's rule: improvement = beats best by more than min_delta;
    patience 2; after a cut, cooldown 1 epoch during which waiting does not count."""
    m = FakeModel()  # SGD(0.1)
    r = cb.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_delta=0.01, min_lr=0.02)
    val = [1.0, 0.995, 0.99, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    h = fake_fit(m, [r], val)
    # (the lr logged is the one used in the epoch; a cut shows from the next epoch)
    # 0: best 1.0; 1: wait 1; 2: wait 2 -> 0.05, cooldown 1; 3: cooldown over, 0.8 improves;
    # 4: wait 1; 5: wait 2 -> 0.025, cooldown 1; 6: cooldown over in this epoch, so it counts:
    # wait 1; 7: wait 2 -> max(0.0125, min_lr) = 0.02; 8: wait 1; 9: wait 2 but lr is at min_lr
    assert h.history["learning_rate"] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02,
                                          0.02, 0.02]
    assert m.optimizer.learning_rate == 0.02


def test_reduce_lr_on_plateau_max_mode_and_checks():
    m = FakeModel()
    r = cb.ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1, min_delta=0)
    assert r.mode == "max"
    fake_fit(m, [r], [0] * 3, extra=lambda e: {"val_accuracy": [0.5, 0.6, 0.6][e]})
    assert m.optimizer.learning_rate == pytest.approx(0.01)
    with pytest.raises(ValueError, match="factor >= 1.0"):
        cb.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="patience"):
        cb.ReduceLROnPlateau(patience=-1)
    with pytest.warns(RuntimeWarning, match="'val_auc' is not in the logs"):
        fake_fit(FakeModel(), [cb.ReduceLROnPlateau(monitor="val_auc")], [1.0])


# ---- CSVLogger -------------------------------------------------------------------------------
def test_csv_logger_rows_header_append(tmp_path):
    import csv
    path = tmp_path / "log.csv"
    fake_fit(FakeModel(), [cb.CSVLogger(path)], [3.0, 2.0], extra=lambda e: {"acc": np.float32(e / 4)})
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "acc", "loss", "val_loss"]  # Keras: epoch, then sorted keys
    assert rows[1] == ["0", "0.0", "1.0", "3.0"] and rows[2] == ["1", "0.25", "0.5", "2.0"]
    fake_fit(FakeModel(), [cb.CSVLogger(str(path), append=True)], [1.0], extra=lambda e: {"acc": 1})
    rows = list(csv.reader(open(path)))
    assert len(rows) == 4 and rows[3][0] == "0" and rows.count(rows[0]) == 1
    fake_fit(FakeModel(), [cb.CSVLogger(str(path), separator=";")], [1.0, 2.0],
             extra=lambda e: {} if e else {"extra": 5})
    lines = path.read_text().splitlines()
    assert lines == ["epoch;extra;loss;val_loss", "0;5;1.0;1.0", "1;NA;0.5;2.0"]
    with pytest.raises(ValueError, match="separator"):
        cb.CSVLogger(str(path), separator=";;")
    with pytest.raises(TypeError, match="filename"):
        cb.CSVLogger(3)


# ---- progress --------------------------------------------------------------------------------
class Terminal(io.StringIO):
    """A stream that says it is a terminal (the bar is drawn only on one)."""

    def isatty(self):
        return True


@pytest.fixture
def columns(monkeypatch):
    """Simulate a terminal of the given width through shutil.get_terminal_size."""
    import os
    import shutil

    def set_width(cols):
        monkeypatch.setattr(shutil, "get_terminal_size",
                            lambda fallback=(80, 24): os.terminal_size((cols, 24)))
    return set_width


EPOCH_LOGS = {"loss": 0.25, "accuracy": 0.9512, "val_loss": 0.3, "val_accuracy": 0.9141}


def run_progress(verbose, epochs=2, n=1000, use_tqdm=False, stream=None, logs=EPOCH_LOGS):
    out = io.StringIO() if stream is None else stream
    p = Progress(verbose=verbose, epochs=epochs, n_samples=n, file=out, use_tqdm=use_tqdm)
    p.on_train_begin()
    for e in range(epochs):
        p.on_epoch_begin(e)
        for k in range(1, 21):  # fit reports up to 20 times per epoch
            p.update(n * k // 20, {"loss": 0.5})
        p.on_epoch_end(e, dict(logs))
    p.on_train_end()
    return out.getvalue()


def screen_lines(text):
    """What stays on a terminal: per line, the text after its last carriage return."""
    return [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")[:-1]]


def drawn_segments(text):
    """Every string written between two cursor returns (each must fit the terminal)."""
    return text.replace("\n", "\r").split("\r")


def test_progress_verbose_0_is_silent():
    assert run_progress(0) == ""
    assert run_progress(0, stream=Terminal()) == ""


def test_progress_verbose_2_one_line_per_epoch():
    for stream in (io.StringIO(), Terminal()):
        text = run_progress(2, epochs=3, stream=stream)
        lines = text.splitlines()
        assert len(lines) == 3
        for i, line in enumerate(lines):
            assert line.startswith(f"Epoch {i + 1}/3 - ")
            assert "samples/s" in line and line.endswith(
                "loss: 0.2500 - accuracy: 0.9512 - val_loss: 0.3000 - val_accuracy: 0.9141")
        assert "\r" not in text


@pytest.mark.parametrize("use_tqdm", [False, None])
def test_progress_verbose_1_not_a_tty_writes_plain_lines(use_tqdm):
    """Redirected output (a file, a pipe, CI): one complete line per epoch and no redraws,
    whether or not tqdm is installed (the issue measured 26 KB of \\r redraws for 20 epochs)."""
    text = run_progress(1, epochs=20, n=1000, use_tqdm=use_tqdm)
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 20
    for i, line in enumerate(lines):
        assert line.startswith(f"Epoch {i + 1}/20 - ") and "samples/s" in line
        assert line.endswith("loss: 0.2500 - accuracy: 0.9512 - val_loss: 0.3000 - val_accuracy: 0.9141")
    assert len(text) < 20 * 150


@pytest.mark.parametrize("cols", [80, 120])
def test_progress_bar_fits_terminal(columns, cols):
    """On a terminal the bar never wraps (each redraw fits in cols - 1 characters) and each epoch
    leaves exactly ONE line holding every training and validation metric."""
    columns(cols)
    text = run_progress(1, epochs=20, n=60000, stream=Terminal())
    segments = drawn_segments(text)
    assert max(map(len, segments)) <= cols - 1, max(segments, key=len)
    bars = [s for s in segments if "[" in s]
    assert len(bars) >= 20 * 20 and all(s.startswith("Epoch ") for s in bars)
    assert any("30000/60000 [" in s and "loss: 0.5000" in s for s in bars)
    lines = screen_lines(text)
    assert len(lines) == 20
    for i, line in enumerate(lines):
        assert line.startswith(f"Epoch {i + 1}/20")
        for key, value in (("loss", "0.2500"), ("accuracy", "0.9512"), ("val_loss", "0.3000"),
                           ("val_accuracy", "0.9141")):
            assert f" {key}: {value}" in line or f" {key}={value}" in line, line
    if cols == 120:  # room for the full form with time and speed
        assert "samples/s - loss: 0.2500" in lines[0]


def test_progress_narrow_terminal_wraps_between_metrics(columns):
    """Narrower than the summary: the line breaks between metrics, never inside one."""
    columns(40)
    text = run_progress(1, epochs=2, stream=Terminal())
    assert max(map(len, drawn_segments(text))) <= 39
    lines = screen_lines(text)
    assert lines[0] == "Epoch 1/2 loss=0.2500 accuracy=0.9512"
    assert lines[1] == "    val_loss=0.3000 val_accuracy=0.9141"
    assert len(lines) == 4


def fake_tqdm_module(monkeypatch, events):
    from tqdm import tqdm as real  # the real meter formatting, to size the postfix like tqdm

    class FakeTqdm:
        format_meter = staticmethod(real.format_meter)

        def __init__(self, total, desc, ncols=None, leave=True, **kw):
            self.n = 0
            events.append(("new", total, desc, ncols, leave))

        def update(self, k):
            self.n += k
            events.append(("update", k))

        def set_postfix_str(self, s, refresh=True):
            events.append(("postfix", s))

        def close(self):
            events.append(("close", self.n))

    mod = types.ModuleType("tqdm")
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeTqdm
    mod.auto = auto
    monkeypatch.setitem(sys.modules, "tqdm", mod)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)


@pytest.mark.parametrize("cols", [80, 120])
def test_progress_tqdm_used_on_a_terminal(monkeypatch, columns, cols):
    pytest.importorskip("tqdm")
    columns(cols)
    events = []
    fake_tqdm_module(monkeypatch, events)
    text = run_progress(1, epochs=1, n=100, use_tqdm=None, stream=Terminal())
    assert events[0] == ("new", 100, "Epoch 1/1", cols - 1, False)  # sized; erased when done
    assert ("update", 5) in events and ("close", 100) in events
    postfixes = [e[1] for e in events if e[0] == "postfix"]
    assert postfixes and all(p in ("", "loss: 0.5000") for p in postfixes)  # whole or nothing
    lines = screen_lines(text)
    assert len(lines) == 1 and "val_accuracy" in lines[0] and "0.9141" in lines[0]


@pytest.mark.parametrize("cols", [80, 120])
def test_progress_real_tqdm_fits_and_shows_validation(columns, cols):
    """With tqdm itself: no redraw wider than the terminal, the running loss never cut
    mid-word, and the epoch's line holds the validation metrics."""
    pytest.importorskip("tqdm")
    columns(cols)
    text = run_progress(1, epochs=3, n=60000, use_tqdm=True, stream=Terminal())
    segments = drawn_segments(text)
    assert max(map(len, segments)) <= cols - 1
    meters = [s for s in segments if "samples/s" in s and "%|" in s]
    assert meters
    for s in meters:
        assert "loss" not in s or s.endswith("loss: 0.5000]"), s
    lines = screen_lines(text)
    assert len(lines) == 3
    assert all(("val_accuracy: 0.9141" in ln or "val_accuracy=0.9141" in ln) for ln in lines)


def test_progress_interrupted_mid_epoch_ends_the_line(columns):
    columns(80)
    out = Terminal()
    p = Progress(verbose=1, epochs=2, n_samples=100, file=out, use_tqdm=False)
    p.on_train_begin()
    p.on_epoch_begin(0)
    p.update(50, {"loss": 0.5})
    p.on_train_end()
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1


def test_progress_require_tqdm_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="tqdm"):
        Progress(verbose=1, epochs=1, n_samples=1, use_tqdm=True)
    assert Progress(verbose=1, epochs=1, n_samples=1, use_tqdm=None)._tqdm_cls is None


def test_progress_argument_checks_and_format():
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2"):
        Progress(verbose=3)
    assert format_logs({"loss": np.float32(0.5), "note": "x"}) == "loss: 0.5000 - note: x"


# ---- with the engine: Sequential.fit ---------------------------------------------------------
def blobs(seed=0, n=300):
    centers = np.random.default_rng(100).normal(scale=2.0, size=(3, 4))  # one problem
    rng = np.random.default_rng(seed)                                     # its samples
    labels = rng.integers(0, 3, n)
    return (centers[labels] + rng.normal(size=(n, 4))).astype(np.float32), labels


def small_model(seed=0, lr=0.05, **kw):
    import annfast as af
    model = af.Sequential([af.Dense(8, activation="relu"), af.Dense(3, activation="softmax")],
                          input_dim=4, seed=seed)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.SGD(lr),
                  metrics=["accuracy"], **kw)
    return model


def test_fit_checkpoint_file_holds_the_weights_of_its_score(tmp_path):
    """The issue's case: EarlyStopping (min_delta) stops at an epoch that ModelCheckpoint
    (no min_delta) counts as an improvement; the file must hold that epoch's weights."""
    import annfast as af
    X, y = blobs()
    Xv, yv = blobs(seed=1, n=200)
    model = small_model()
    es = cb.EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0, restore_best_weights=True)
    ck = cb.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_loss", save_best_only=True)
    h = model.fit(X, y, epochs=10, batch_size=16, validation_data=(Xv, yv), callbacks=[es, ck],
                  verbose=0)
    assert es.stopped_epoch == 1 and h.history["val_loss"][1] < h.history["val_loss"][0]
    assert ck.saved[-1].endswith("best.npz") and ck.best == h.history["val_loss"][1]
    saved = af.load_model(str(tmp_path / "best.npz"))
    assert saved.evaluate(Xv, yv)[0] == pytest.approx(ck.best, rel=1e-6)
    # and the model itself went back to the best epoch of EarlyStopping (epoch 0) at the end
    assert model.evaluate(Xv, yv)[0] == pytest.approx(h.history["val_loss"][0], rel=1e-6)


def test_fit_early_stopping_message_after_epoch_line(capsys):
    X, y = blobs()
    model = small_model()
    es = cb.EarlyStopping(monitor="loss", patience=0, min_delta=10.0, verbose=1)
    model.fit(X, y, epochs=5, batch_size=16, callbacks=[es], verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(" - ")[0] for ln in lines] == ["Epoch 1/5", "Epoch 2/5",
                                                     "Epoch 2: early stopping (best loss = "
                                                     + lines[2].split("= ")[1]]


def test_fit_verbose_1_redirected_writes_one_line_per_epoch(capsys):
    """stdout captured (not a terminal): one complete line per epoch, validation included."""
    X, y = blobs()
    model = small_model()
    model.fit(X, y, epochs=20, batch_size=8, validation_split=0.2, verbose=1)
    text = capsys.readouterr().out
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 20
    for i, line in enumerate(lines):
        assert line.startswith(f"Epoch {i + 1}/20 - ")
        assert " - loss: " in line and " - accuracy: " in line
        assert " - val_loss: " in line and " - val_accuracy: " in line


def diverging_model(**kw):
    import annfast as af
    rng = np.random.default_rng(3)
    X = rng.normal(scale=30.0, size=(64, 3))
    y = X @ np.array([[1.0], [2.0], [3.0]])
    model = af.Sequential([af.Dense(1)], input_dim=3, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer=optimizers.SGD(0.01), **kw)
    return model, X, y


def test_fit_stops_on_nonfinite_loss_and_keeps_last_finite_weights():
    model, X, y = diverging_model()
    reference, _, _ = diverging_model()
    with pytest.warns(RuntimeWarning, match=r"the training loss is (nan|inf); training stopped "
                                            r"\(the model holds the weights from the end of epoch"):
        h = model.fit(X, y, epochs=100, batch_size=8, verbose=0)
    losses = h.history["loss"]
    assert not np.isfinite(losses[-1]) and np.all(np.isfinite(losses[:-1])) and len(losses) < 100
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert np.all(np.isfinite(model.predict(X)))
    # the kept weights are exactly those after the last finite epoch (same seed, same steps)
    reference.fit(X, y, epochs=len(losses) - 1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer_state()["step"] == reference.optimizer_state()["step"]


def test_fit_user_terminate_on_nan_replaces_default():
    model, X, y = diverging_model()
    term = cb.TerminateOnNaN(keep_last_finite=False)
    with pytest.warns(RuntimeWarning, match="non-finite weights"):
        h = model.fit(X, y, epochs=100, batch_size=8, verbose=0, callbacks=[term])
    reference, _, _ = diverging_model()
    reference.fit(X, y, epochs=len(h.epoch) - 1, batch_size=8, verbose=0)
    for kept, ref, now in zip(term.last_finite_weights, reference.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(kept, ref)
        assert not np.array_equal(now, ref)  # the model itself keeps the failed epoch's weights


def test_fit_reduce_lr_on_plateau_and_csv_logger(tmp_path):
    """With the engine: the reduced rate is the one the next epochs train with, and the CSV
    log holds one row per epoch with the logged rate."""
    import csv
    X, y = blobs()
    model = small_model(lr=0.1)
    plateau = cb.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=100.0)
    log = cb.CSVLogger(tmp_path / "log.csv")
    h = model.fit(X, y, epochs=4, batch_size=32, callbacks=[plateau, log], verbose=0)
    # epoch 0 improves on inf; every later epoch misses min_delta and halves the rate
    assert h.history["learning_rate"] == [0.1, 0.1, 0.05, 0.025]
    assert model.optimizer.c_config(model.optimizer_state()["epoch"])["lr"] == 0.0125
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert [float(r["learning_rate"]) for r in rows] == h.history["learning_rate"]
    assert [float(r["loss"]) for r in rows] == h.history["loss"]
    # the same run with those rates set by hand trains to the same weights
    again = small_model(lr=0.1)
    rates = cb.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** max(epoch - 1, 0))
    again.fit(X, y, epochs=4, batch_size=32, callbacks=[rates], verbose=0)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
