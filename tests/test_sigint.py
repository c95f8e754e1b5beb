"""Ctrl-C (SIGINT) during training: the engine routes SIGINT to the training call only when
Python's own handler is the default one, only while a C call runs, and only to the call of the
main thread (each call has its own stop token). An ignored SIGINT stays ignored, a user's handler
is called, a slow callback is interrupted by KeyboardInterrupt as any Python code is, and Ctrl-C
in one thread never stops another thread's training. Every case runs in a child interpreter."""
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import annfast as af
from childproc import ROOT, check

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CROSS_THREAD_RUNS = 24

PRELUDE = """
import contextlib, io, os, signal, sys, threading, time, numpy as np, annfast as af
rng = np.random.default_rng(0)
X = rng.normal(size=(8000, 64)).astype(np.float32)
y = rng.integers(0, 4, 8000)

def model(seed=0, width=256):
    m = af.Sequential([af.Dense(width, activation="relu"), af.Dense(4, activation="softmax")],
                      input_dim=64, seed=seed)
    m.compile("sparse_categorical_crossentropy", af.optimizers.Adam(0.001))
    return m

def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))

class Pester:
    '''A thread that sends SIGINT to this process every `every` seconds while in the with-block.'''
    def __init__(self, every=0.02):
        self.every, self.sent, self.done = every, 0, threading.Event()
    def _run(self):
        while not self.done.wait(self.every):
            os.kill(os.getpid(), signal.SIGINT)
            self.sent += 1
    def __enter__(self):
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        return self
    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

class OnTrain(af.callbacks.Callback):
    '''Calls begin() at on_train_begin and end() at on_train_end.'''
    def __init__(self, begin=lambda: None, end=lambda: None):
        super().__init__()
        self.begin, self.end = begin, end
    def on_train_begin(self, logs=None):
        self.begin()
    def on_train_end(self, logs=None):
        self.end()
"""


def test_ignored_sigint_stays_ignored_during_fit_and_train():
    out = check(PRELUDE + """
signal.signal(signal.SIGINT, signal.SIG_IGN)      # as under nohup or in worker processes
m = model()
with Pester() as p:
    h = m.fit(X, y, epochs=6, batch_size=32, verbose=0)
print("fit", len(h.history["loss"]), m.interrupted, p.sent > 0, flush=True)
np.random.seed(0)
nn = af.NeuralNetwork(64, 128, 4)
Xt, yt = X[:200].astype(float), rng.uniform(size=(200, 4))
with Pester() as p, contextlib.redirect_stdout(io.StringIO()):
    # one call of 150 epochs can end before the first signal (20 ms): train until some came
    for _ in range(2000):
        nn.train(Xt, yt, 150, 0.01)
        if p.sent >= 3:
            break
print("train done", p.sent > 0, flush=True)
""")
    assert "fit 6 False True" in out and "train done True" in out, out


def test_user_sigint_handler_is_called_and_fit_goes_on():
    out = check(PRELUDE + """
calls, in_fit = [], [False]
signal.signal(signal.SIGINT, lambda signum, frame: calls.append(in_fit[0]))
track = OnTrain(lambda: in_fit.__setitem__(0, True), lambda: in_fit.__setitem__(0, False))
m = model()
ok = True
with Pester(every=0.05) as p:
    # one 6-epoch fit can end before the first signal (50 ms): fit until one saw the handler run
    for _ in range(500):
        h = m.fit(X, y, epochs=6, batch_size=32, verbose=0, callbacks=[track])
        ok = ok and len(h.history["loss"]) == 6 and not m.interrupted
        if any(calls):
            break
print("every fit ran 6 epochs", ok, "handler called during fit", any(calls), flush=True)
""")
    assert "every fit ran 6 epochs True handler called during fit True" in out, out


def test_user_handler_may_stop_training_with_request_stop():
    out = check(PRELUDE + """
signal.signal(signal.SIGINT, lambda signum, frame: af._core.request_stop())
kick = lambda: threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
m = model()
h = m.fit(X, y, epochs=10**5, batch_size=32, verbose=0, callbacks=[OnTrain(kick)])
print("returned", m.interrupted, len(h.history.get("loss", [])) < 10**5, flush=True)
""")
    assert "returned True True" in out, out


def test_sigint_in_a_slow_callback_raises_there():
    """The engine's handler is not installed while Python callbacks run: Ctrl-C interrupts a
    callback at once with KeyboardInterrupt; the model keeps the weights of the completed epochs
    and Python's handler is in place afterwards."""
    out = check(PRELUDE + """
class Slow(af.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("callback finished", flush=True)

m = model()
try:
    m.fit(X, y, epochs=5, batch_size=32, verbose=0, callbacks=[Slow()])
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    ref = model()
    ref.fit(X, y, epochs=2, batch_size=32, verbose=0)
    print("KeyboardInterrupt", m.interrupted, len(m.history.history["loss"]),
          same(m.get_weights(), ref.get_weights()), flush=True)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    print("signal lost", flush=True)
except KeyboardInterrupt:
    print("python handler in place", flush=True)
""", timeout=60)
    assert "callback finished" not in out and "KeyboardInterrupt True 1 True" in out, out
    assert "python handler in place" in out, out


def test_ctrl_c_stops_only_the_main_threads_fit_across_runs():
    """Ctrl-C while the main thread and a worker thread both train: the main thread's fit stops
    with KeyboardInterrupt, the worker's fits (one after another, running through the signal and
    through the end of the main fit) all complete exactly as they would alone, and a worker's fit
    ending never clears the main thread's Ctrl-C."""
    out = check(PRELUDE + f"""
RUNS = {CROSS_THREAD_RUNS}
Xb, yb = X[:1500], y[:1500]
ref = model(seed=7, width=32)
ref.fit(Xb, yb, epochs=2, batch_size=32, verbose=0)
want = ref.get_weights()
bad = []
for run in range(RUNS):
    stop_worker, results = threading.Event(), []
    def worker():
        while not stop_worker.is_set():
            b = model(seed=7, width=32)
            h = b.fit(Xb, yb, epochs=2, batch_size=32, verbose=0)
            results.append(len(h.history["loss"]) == 2 and not b.interrupted and same(b.get_weights(), want))
    t = threading.Thread(target=worker)
    t.start()
    kick = lambda: threading.Timer(0.1 + 0.01 * (run % 7), os.kill, (os.getpid(), signal.SIGINT)).start()
    a = model(seed=run)
    try:
        a.fit(X, y, epochs=200, batch_size=32, verbose=0, callbacks=[OnTrain(kick)])
        outcome = "missed"
    except KeyboardInterrupt:
        outcome = "stopped"
    stop_worker.set()
    t.join()
    if outcome != "stopped" or not results or not all(results):
        bad.append((run, outcome, len(results), results.count(False)))
print("bad", bad, flush=True)
""", timeout=300)
    assert "bad []" in out, out


def test_request_stop_stops_only_the_calling_threads_fit():
    """request_stop() from a worker's callback stops that worker's fit, not the main thread's
    (which is inside its fit meanwhile); one made outside any fit does not stop a later fit."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 8))
    y = rng.normal(size=(400, 1))

    def model():
        m = af.Sequential([af.Dense(16, activation="tanh"), af.Dense(1)], input_dim=8, seed=3)
        m.compile("mse", "adam")
        return m

    in_fit, requested, main_done = threading.Event(), threading.Event(), threading.Event()

    class Gate(af.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                in_fit.set()
                assert requested.wait(30)

    class StopMe(af.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            af._core.request_stop()
            requested.set()
            main_done.wait(30)    # keep the worker's fit (and its stop request) alive meanwhile

    worker_model, results = model(), {}

    def worker():
        assert in_fit.wait(30)
        h = worker_model.fit(X, y, epochs=5, batch_size=16, verbose=0, callbacks=[StopMe()])
        results["worker"] = (len(h.history["loss"]), worker_model.interrupted)

    t = threading.Thread(target=worker)
    t.start()
    main = model()
    try:
        h = main.fit(X, y, epochs=3, batch_size=16, verbose=0, callbacks=[Gate()])
    finally:
        main_done.set()
        t.join(60)
    assert (len(h.history["loss"]), main.interrupted) == (3, False)
    assert results["worker"] == (1, True)

    af._core.request_stop()          # no fit running in this thread: nothing to stop
    for run_in_thread in (True, False):
        m = model()
        out = {}
        fit = lambda: out.update(h=m.fit(X, y, epochs=2, batch_size=16, verbose=0))
        if run_in_thread:
            th = threading.Thread(target=fit)
            th.start()
            th.join(60)
        else:
            fit()
        assert len(out["h"].history["loss"]) == 2 and not m.interrupted


@pytest.mark.skipif(sys.platform != "linux", reason="sanitizer builds tested on Linux only")
@pytest.mark.parametrize("sanitizer", ["thread", "address,undefined"])
def test_stop_tokens_from_c_with_two_threads(tmp_path, sanitizer):
    """tests/c/stop_tokens.c: per-thread tokens, request_stop on the calling thread only, and a
    SIGINT handled on a worker thread reaching only the installing thread's call; built with
    ThreadSanitizer (data races on the flag the handler sets) and with ASan + UBSan."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler {cc!r}")
    exe = tmp_path / "stop_tokens"
    cmd = [cc, "-O1", "-g", "-std=gnu11", "-Wall", "-pthread", f"-fsanitize={sanitizer}",
           "-I", os.path.join(ROOT, "csrc"), os.path.join(ROOT, "tests", "c", "stop_tokens.c"),
           os.path.join(ROOT, "csrc", "interrupt.c"), "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    if build.returncode != 0:
        if "sanitize" in build.stderr or "tsan" in build.stderr or "asan" in build.stderr:
            pytest.skip("compiler lacks this sanitizer: " + build.stderr[-300:])
        raise AssertionError(build.stderr)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # not the suite's ASan preload
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
