"""Reliability: no leaks over many cycles, Ctrl-C stops training cleanly, concurrent models."""
import contextlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import annfast
from annfast import NeuralNetwork
from memtools import rss_kib

SANITIZED = os.environ.get("ANNFAST_SANITIZED") == "1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




def quiet_train(nn, X, y, epochs, lr):
    with contextlib.redirect_stdout(io.StringIO()):
        nn.train(X, y, epochs, lr)


@pytest.mark.skipif(SANITIZED or not os.path.exists("/proc/self/status"),
                    reason="needs /proc and an uninstrumented allocator")
def test_create_train_predict_destroy_cycles_keep_memory_flat():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 16)), rng.uniform(size=(64, 4))

    def cycle():
        nn = NeuralNetwork(16, 32, 4)
        quiet_train(nn, X, y, 20, 0.01)
        nn.feedforward(X)
        nn.backward(X, y, 0.01)
        if hasattr(annfast, "matmul"):
            annfast.matmul(X, X.T)

    for _ in range(200):  # warm up allocator pools and caches
        cycle()
    before = rss_kib()
    for _ in range(1000):
        cycle()
    grown = rss_kib() - before
    # A leak of even one 64x32 buffer per cycle would be > 16 MiB over 1000 cycles.
    assert grown < 4096, f"resident memory grew by {grown} KiB over 1000 cycles"


def run_child(code, timeout=60):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=os.path.dirname(ROOT))


def interrupt_child(code, after):
    """Run `code` in a child that prints "ready" then trains; send SIGINT `after` seconds later.
    Returns (returncode, stdout, stderr, seconds from SIGINT to exit)."""
    child = run_child(code)
    try:
        assert child.stdout.readline().strip().startswith("ready")
        time.sleep(after)  # let it get deep into the C loop
        t0 = time.perf_counter()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        return child.returncode, out, err, time.perf_counter() - t0
    finally:
        child.kill()


# the 1 s promise plus process exit, generous on a loaded CI machine or under the sanitizer
# A hang guard, not a timing assertion (tests never assert speed): a child that has not exited
# this long after SIGINT did not stop at a clean point; on a loaded 2-core machine a prompt exit
# has been seen to take 2-9 s.
EXIT_BOUND = 30.0 * (3 if SANITIZED else 1)

CHILD_TRAIN = """
import sys, time, numpy as np
from annfast import NeuralNetwork
np.random.seed(0)
nn = NeuralNetwork(32, 256, 8)
rng = np.random.default_rng(0)
X, y = rng.normal(size=(512, 32)), rng.uniform(size=(512, 8))
print("ready", flush=True)
try:
    nn.train(X, y, 10**9, 0.001)
except KeyboardInterrupt:
    t = time.perf_counter()
    out = nn.feedforward(X)           # the model is usable afterwards
    ok = np.isfinite(out).all() and np.isfinite(nn.weights_input_hidden).all()
    print("interrupted", bool(ok), flush=True)
    sys.exit(0)
print("not interrupted", flush=True)
sys.exit(1)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_training_within_a_second():
    rc, out, err, elapsed = interrupt_child(CHILD_TRAIN, after=1.0)
    assert rc == 0, err
    assert "interrupted True" in out
    assert elapsed < EXIT_BOUND


def test_two_threads_train_two_models_like_sequential():
    rng = np.random.default_rng(1)
    data = [(rng.normal(size=(128, 10)), rng.uniform(size=(128, 3))) for _ in range(2)]

    def make(seed):
        np.random.seed(seed)
        return NeuralNetwork(10, 24, 3)

    sequential = []
    for seed, (X, y) in zip((1, 2), data):
        nn = make(seed)
        quiet_train(nn, X, y, 300, 0.05)
        sequential.append(nn)

    concurrent = [make(1), make(2)]
    errors = []

    def work(nn, X, y):
        try:
            nn.train(X, y, 300, 0.05)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with contextlib.redirect_stdout(io.StringIO()):
        threads = [threading.Thread(target=work, args=(nn, X, y)) for nn, (X, y) in zip(concurrent, data)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    for a, b in zip(concurrent, sequential):
        for p in ("weights_input_hidden", "weights_hidden_output", "bias_hidden", "bias_output"):
            np.testing.assert_array_equal(getattr(a, p), getattr(b, p))


def test_same_model_from_two_threads_is_serialised():
    """A second thread calling a network that is training waits for the training to end (it is
    never refused, never sees half-updated weights)."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(512, 32)), rng.uniform(size=(512, 8))
    np.random.seed(4)
    nn = NeuralNetwork(32, 128, 8)
    np.random.seed(4)
    ref = NeuralNetwork(32, 128, 8)
    quiet_train(ref, X, y, 300, 0.001)
    started = threading.Event()
    errors = []

    def long_train():
        started.set()
        try:
            quiet_train(nn, X, y, 300, 0.001)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    t = threading.Thread(target=long_train)
    t.start()
    started.wait()
    time.sleep(0.01)            # usually inside the C loop by now; either order is correct
    out = nn.feedforward(X)     # waits for the training if it holds the network
    t.join()
    assert not errors
    np.testing.assert_array_equal(nn.weights_input_hidden, ref.weights_input_hidden)
    # the forward pass saw the weights before or after the whole training, never in between
    np.random.seed(4)
    fresh = NeuralNetwork(32, 128, 8)
    assert np.array_equal(out, ref.feedforward(X)) or np.array_equal(out, fresh.feedforward(X))


CHILD_FIT = """
import sys, numpy as np, annfast as af
rng = np.random.default_rng(0)
X = rng.normal(size=(20000, 256)).astype(np.float32)
y = rng.integers(0, 10, 20000)
m = af.Sequential([af.Dense(512, activation="relu"), af.Dense(10, activation="softmax")],
                  input_dim=256, seed=0)
m.compile("sparse_categorical_crossentropy", "adam")
print("ready", flush=True)
try:
    m.fit(X, y, epochs=10**6, batch_size=64, verbose=0)
except KeyboardInterrupt:
    p = m.predict(X[:5])
    ok = np.isfinite(p).all() and m.interrupted and all(np.isfinite(w).all() for w in m.get_weights())
    print("interrupted", bool(ok), flush=True)
    sys.exit(0)
print("not interrupted", flush=True)
sys.exit(1)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_fit_within_a_second():
    rc, out, err, elapsed = interrupt_child(CHILD_FIT, after=1.5)
    assert rc == 0, err
    assert "interrupted True" in out
    assert elapsed < EXIT_BOUND


CHILD_ESTIMATOR = """
import sys, warnings, numpy as np
from annfast.sklearn import MLPClassifier
rng = np.random.default_rng(0)
X = rng.normal(size=(4000, 64))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
clf = MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=10**6, tol=0, n_iter_no_change=10**6,
                    random_state=0)
print("ready", flush=True)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    clf.fit(X, y)
msgs = [str(x.message) for x in w]
ok = np.isfinite(clf.predict_proba(X)).all() and clf.n_iter_ == len(clf.loss_curve_)
print("returned", "Training interrupted by user." in msgs, bool(ok), flush=True)
"""


def test_ctrl_c_during_estimator_fit_warns_and_returns_like_sklearn():
    """scikit-learn's MLP catches Ctrl-C, warns "Training interrupted by user." and returns the
    estimator fitted so far; ours stops between two batches and does the same."""
    pytest.importorskip("sklearn")
    rc, out, err, elapsed = interrupt_child(CHILD_ESTIMATOR, after=2.0)
    assert rc == 0, err
    assert "returned True True" in out
    assert elapsed < EXIT_BOUND
