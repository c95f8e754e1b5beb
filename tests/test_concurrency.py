"""One model used from several threads is serialised: a second thread waits for the running call
to finish (a per-model re-entrant lock), so concurrent calls give exactly what the same calls made
one after the other give. Each race runs RUNS times in a child interpreter with a timeout."""
import copy
import pickle

import numpy as np

import annfast as af
from childproc import check

RUNS = 20

PRELUDE = f"""
import os, tempfile, threading, numpy as np, annfast as af
RUNS = {RUNS}
rng = np.random.default_rng(0)
X = rng.normal(size=(4000, 16)).astype(np.float32)
y = rng.normal(size=(4000, 2)).astype(np.float32)

def model(seed=1):
    m = af.Sequential([af.Dense(64, activation="tanh"), af.Dense(2)], input_dim=16, seed=seed)
    m.compile("mse", af.optimizers.Adam(0.01))
    return m

def same(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))

def in_threads(*targets):
    '''Run the targets in threads started together; returns the exceptions they raised.'''
    errors, barrier = [], threading.Barrier(len(targets))
    def wrap(fn):
        barrier.wait()
        try:
            fn()
        except BaseException as exc:
            errors.append(repr(exc))
    ts = [threading.Thread(target=wrap, args=(fn,)) for fn in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors
"""


def test_two_concurrent_fits_take_all_steps_as_if_run_one_after_the_other():
    out = check(PRELUDE + """
ref = model()
for _ in range(2):
    ref.fit(X, y, epochs=3, batch_size=32, verbose=0)
want = ref.get_weights()
bad = []
for run in range(RUNS):
    m = model()
    fit = lambda: m.fit(X, y, epochs=3, batch_size=32, verbose=0)
    errors = in_threads(fit, fit)
    st = m.optimizer_state()
    if errors or st["step"] != 750 or st["epoch"] != 6 or not same(m.get_weights(), want):
        bad.append((run, errors, st["step"], st["epoch"]))
print("bad", bad)
""")
    assert "bad []" in out, out


def test_racing_gradients_each_return_their_own():
    out = check(PRELUDE + """
m = model()
XA, yA, XB, yB = X[:1000], y[:1000], X[1000:3500], y[1000:3500]
gA, gB = m.gradients(XA, yA), m.gradients(XB, yB)
bad = []
for run in range(RUNS):
    res = {"A": [], "B": []}
    def loop(name, Xs, ys, want):
        def body():
            for _ in range(10):
                res[name].append(same(m.gradients(Xs, ys), want))
        return body
    errors = in_threads(loop("A", XA, yA, gA), loop("B", XB, yB, gB))
    if errors or res["A"] != [True] * 10 or res["B"] != [True] * 10:
        bad.append((run, errors, res["A"].count(False), res["B"].count(False)))
print("bad", bad)
""")
    assert "bad []" in out, out


def test_save_during_fit_waits_and_writes_the_finished_state():
    out = check(PRELUDE + """
ref = model()
ref.fit(X, y, epochs=3, batch_size=32, verbose=0)
want, want_state = ref.get_weights(), ref.optimizer_state()

class Started(af.callbacks.Callback):
    def __init__(self, event):
        super().__init__()
        self.event = event
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.event.set()

tmp = tempfile.mkdtemp()
bad = []
for run in range(RUNS):
    m, started = model(), threading.Event()
    path = os.path.join(tmp, "m%d.npz" % run)
    t = threading.Thread(target=lambda: m.fit(X, y, epochs=3, batch_size=32, verbose=0,
                                              callbacks=[Started(started)]))
    t.start()
    started.wait()
    m.save(path)                         # the fit holds the model: this waits for it to end
    snap = m.get_weights()
    t.join()
    back = af.load_model(path)
    st = back.optimizer_state()
    if not (same(back.get_weights(), want) and same(snap, want) and st["step"] == want_state["step"]
            and np.array_equal(st["state"], want_state["state"])):
        bad.append(run)
print("bad", bad)
""")
    assert "bad []" in out, out


def test_fast_predicts_racing_set_weights_see_one_whole_state():
    """Batch-1 predicts on the fast path (the model taken in C, _busy.pxi) from three threads while
    a fourth swaps the weights between two sets: every output is exactly one set's, never a mix;
    and a predict started while a fit runs waits for the fit's end."""
    out = check(PRELUDE + """
m = model()
w0 = m.get_weights()
w1 = [w * 1.5 + 0.1 for w in w0]
x1 = X[:1].copy()
m.set_weights(w1); out1 = m.predict(x1)
m.set_weights(w0); out0 = m.predict(x1)
assert not np.array_equal(out0, out1)
bad = []
def predicts():
    for _ in range(3000):
        p = m.predict(x1)
        if not (np.array_equal(p, out0) or np.array_equal(p, out1)):
            bad.append(p)
def swaps():
    for i in range(3000):
        m.set_weights(w1 if i % 2 == 0 else w0)
print("errors", in_threads(predicts, predicts, predicts, swaps), "mixed", len(bad))
m.set_weights(w0)
ref = model()
ref.fit(X, y, epochs=2, batch_size=32, verbose=0)
after = ref.predict(x1)
started = threading.Event()
class Started(af.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        started.set()
t = threading.Thread(target=lambda: m.fit(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[Started()]))
t.start()
started.wait()
p = m.predict(x1)                        # waits for the fit: the trained model's output
t.join()
print("after fit", np.array_equal(p, after))
""")
    assert "errors [] mixed 0" in out and "after fit True" in out, out


def test_callbacks_reenter_the_model_from_the_fit_thread():
    """The thread that holds the model may call it again (callbacks read weights, evaluate, save,
    predict), also when that fit runs in a worker thread while the main thread waits for it."""
    out = check(PRELUDE + """
tmp = tempfile.mkdtemp()

class Busy(af.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        m = self.model
        m.set_weights(m.get_weights())
        m.evaluate(X[:100], y[:100])
        m.predict(X[:10])
        m.gradients(X[:10], y[:10])
        m.set_optimizer_state(m.optimizer_state())
        m.save(os.path.join(tmp, "cb.npz"))
        m.summary(); m.get_config()

m = model()
results = []
t = threading.Thread(target=lambda: results.append(
    m.fit(X, y, epochs=2, batch_size=256, verbose=0, callbacks=[Busy()])))
t.start()
p = m.predict(X[:10])                     # waits for the fit, then runs
t.join()
print("epochs", len(results[0].history["loss"]), "steps", m.optimizer_state()["step"],
      "finite", bool(np.isfinite(p).all()))
""", timeout=60)
    assert "epochs 2 steps 32 finite True" in out, out


def test_two_models_waiting_on_each_other_raise_instead_of_deadlocking():
    """Thread 1 holds model A and asks for B while thread 2 holds B and asks for A: the thread
    that would close the cycle gets a RuntimeError naming the deadlock; the other proceeds."""
    out = check(PRELUDE + """
bad = []
for run in range(RUNS):
    a, b = model(1), model(2)
    both_in = threading.Barrier(2)

    class Cross(af.callbacks.Callback):
        def __init__(self, other):
            super().__init__()
            self.other = other
        def on_epoch_end(self, epoch, logs=None):
            both_in.wait()
            self.other.predict(X[:5])

    fits = [lambda: a.fit(X[:64], y[:64], epochs=1, verbose=0, callbacks=[Cross(b)]),
            lambda: b.fit(X[:64], y[:64], epochs=1, verbose=0, callbacks=[Cross(a)])]
    errors = in_threads(*fits)
    if len(errors) != 1 or "deadlock" not in errors[0]:
        bad.append((run, errors))
print("bad", bad)
""", timeout=60)
    assert "bad []" in out, out


def test_tutorial_network_from_two_threads_is_serialised():
    out = check(PRELUDE + """
import contextlib, io
from annfast import NeuralNetwork
Xs, ys = rng.normal(size=(256, 8)), rng.uniform(size=(256, 2))

def net():
    np.random.seed(3)
    return NeuralNetwork(8, 32, 2)

names = ("weights_input_hidden", "bias_hidden", "weights_hidden_output", "bias_output")
ref = net()
with contextlib.redirect_stdout(io.StringIO()):
    ref.train(Xs, ys, 400, 0.05)
    ref.train(Xs, ys, 400, 0.05)
want = [getattr(ref, n) for n in names]
bad = []
with contextlib.redirect_stdout(io.StringIO()):
    for run in range(RUNS):
        nn = net()
        train = lambda: nn.train(Xs, ys, 400, 0.05)
        outs = []
        look = lambda: outs.extend(nn.feedforward(Xs).shape for _ in range(20))
        errors = in_threads(train, train, look)
        if errors or not same([getattr(nn, n) for n in names], want) or len(outs) != 20:
            bad.append((run, errors))
print("bad", bad)
""")
    assert "bad []" in out, out


def _trained():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(200, 6)), rng.normal(size=(200, 1))
    m = af.Sequential([af.Dense(8, activation="relu"), af.Dropout(0.1), af.BatchNormalization(),
                       af.Dense(1)], input_dim=6, seed=2)
    m.compile("mse", af.optimizers.Adam(0.01))
    m.fit(X, y, epochs=2, batch_size=32, verbose=0)
    return m, X, y


def test_trained_model_copies_and_pickles_into_a_working_independent_model():
    for clone in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        m, X, y = _trained()
        c = clone(m)
        for a, b in zip(m.get_weights(), c.get_weights()):
            np.testing.assert_array_equal(a, b)
        before = m.get_weights()
        m.fit(X, y, epochs=2, batch_size=32, verbose=0)
        c.fit(X, y, epochs=2, batch_size=32, verbose=0)
        # the copy trained (its layer views follow its own buffer) exactly like the original
        assert not all(np.array_equal(a, b) for a, b in zip(before, c.get_weights()))
        for a, b in zip(m.get_weights(), c.get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c.layers[0].kernel, c.get_weights()[0])
        np.testing.assert_array_equal(m.predict(X), c.predict(X))
        assert c.optimizer_state()["step"] == m.optimizer_state()["step"]
