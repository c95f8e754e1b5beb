"""Sequential end to end: exact gradients (finite differences, PyTorch autograd), learning,
reproducibility, thread-count independence, batch norm / dropout / L1 / L2 / clipping inside the
C step, the fit loop, configuration and weights round trips, and bad-input checks."""
import os
import signal
import time

import numpy as np
import pytest

import annfast as af
from annfast import callbacks, optimizers

ACTS = af.activations.NAMES
LOSSES = af.losses.NAMES


def out_act(loss, act):
    """Output activation for a loss: the fused pairs for the cross-entropies, else `act`."""
    if loss in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        return "softmax"
    if loss == "binary_crossentropy":
        return "sigmoid"
    return act


def targets(loss, rng, m, k):
    if loss == "categorical_crossentropy":
        return np.eye(k)[rng.integers(0, k, m)]
    if loss == "sparse_categorical_crossentropy":
        return rng.integers(0, k, m)
    if loss == "binary_crossentropy":
        return rng.uniform(size=(m, k))
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], size=(m, k))
    return rng.normal(size=(m, k))


def small_net(act, loss, seed, dtype="float64", n_in=4, k=3, extra=(), **dense_kw):
    layers = [af.Dense(5, activation=act, **dense_kw), *extra, af.Dense(4, activation=act),
              af.Dense(k, activation=out_act(loss, act))]
    model = af.Sequential(layers, input_dim=n_in, dtype=dtype, seed=seed)
    model.compile(loss=loss, optimizer=optimizers.SGD(0.1))
    # non-zero biases: with zero biases a row whose relu units are all off has a next-layer
    # pre-activation of exactly 0, the kink itself, where finite differences see half a slope
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias = rng.normal(scale=0.3, size=layer.bias.shape)
    return model


def params_of(model):
    return [w for layer in model.layers for w in layer.trainable_weights]


def numeric_grad(model, loss_fn, h=1e-6):
    """Central differences of loss_fn() over every trainable parameter (views, in place)."""
    out = []
    for view in params_of(model):
        g = np.zeros_like(view)
        for idx in np.ndindex(view.shape):
            old = view[idx]
            view[idx] = old + h
            lp = loss_fn()
            view[idx] = old - h
            lm = loss_fn()
            view[idx] = old
            g[idx] = (lp - lm) / (2 * h)
        out.append(g)
    return out


def rel_err(a, b):
    a = np.concatenate([x.ravel() for x in a])
    b = np.concatenate([x.ravel() for x in b])
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-30)


# ---- exact gradients --------------------------------------------------------------------------
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_gradients_finite_differences(act, loss):
    rng = np.random.default_rng(abs(hash((act, loss))) % 2**32)
    model = small_net(act, loss, seed=7)
    X = rng.normal(size=(9, 4))
    y = targets(loss, rng, 9, 3)
    got = model.gradients(X, y)
    num = numeric_grad(model, lambda: model.evaluate(X, y))
    # float64 central differences with h = 1e-6: truncation ~1e-12, rounding ~1e-10 relative;
    # a kink (relu, mae, hinge) crossed by +-h would show up as a much larger error.
    assert rel_err(got, num) < 1e-6


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy",
                                  "binary_crossentropy"])
def test_gradients_unfused_probability_path(loss):
    # a trailing Dropout(0) makes the output layer's loss use probabilities, not logits
    rng = np.random.default_rng(11)
    model = af.Sequential([af.Dense(5, activation="tanh"), af.Dense(3, activation=out_act(loss, "tanh")),
                           af.Dropout(0.0)], input_dim=4, dtype="float64", seed=3)
    model.compile(loss=loss, optimizer="sgd")
    X = rng.normal(size=(8, 4))
    y = targets(loss, rng, 8, 3)
    assert rel_err(model.gradients(X, y), numeric_grad(model, lambda: model.evaluate(X, y))) < 1e-6


def test_gradients_penalties_and_no_bias():
    rng = np.random.default_rng(12)
    model = af.Sequential([af.Dense(6, activation="elu", l1=0.01, l2=0.02, use_bias=False),
                           af.Dense(2, activation="linear", kernel_regularizer={"l2": 0.1})],
                          input_dim=3, dtype="float64", seed=1)
    model.compile(loss="mse", optimizer="sgd")
    X, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    assert rel_err(model.gradients(X, y), numeric_grad(model, lambda: model.evaluate(X, y))) < 1e-6
    # evaluate = mean data loss + l1 sum|W| + l2 sum W^2
    W1, W2 = model.layers[0].kernel, model.layers[1].kernel
    p = model.predict(X)
    expect = np.mean(np.mean((p - y) ** 2, axis=1)) + 0.01 * np.abs(W1).sum() + 0.02 * (W1 ** 2).sum() \
        + 0.1 * (W2 ** 2).sum()
    assert model.evaluate(X, y) == pytest.approx(expect, rel=1e-12)


def test_gradients_accumulate_over_chunks():
    # more rows than one forward chunk: the gradient of the mean is the weighted mean of parts
    rng = np.random.default_rng(13)
    model = small_net("relu", "categorical_crossentropy", seed=2)
    X = rng.normal(size=(600, 4))
    y = targets("categorical_crossentropy", rng, 600, 3)
    whole = model.gradients(X, y)
    a, b = model.gradients(X[:250], y[:250]), model.gradients(X[250:], y[250:])
    for g, ga, gb in zip(whole, a, b):
        np.testing.assert_allclose(g, (250 * ga + 350 * gb) / 600, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("training", [False, True])
def test_gradients_batchnorm(training):
    rng = np.random.default_rng(14)
    model = af.Sequential([af.Dense(6, activation="tanh"), af.BatchNormalization(momentum=0.9),
                           af.Dense(3, activation="softmax")], input_dim=4, dtype="float64", seed=5)
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    bn = model.layers[1]
    bn.moving_mean = rng.normal(size=6) * 0.1
    bn.moving_variance = rng.uniform(0.5, 2, size=6)
    bn.gamma = rng.uniform(0.5, 1.5, size=6)
    bn.beta = rng.normal(size=6) * 0.1
    X = rng.normal(size=(10, 4))
    y = targets("categorical_crossentropy", rng, 10, 3)
    stats_before = [bn.moving_mean.copy(), bn.moving_variance.copy()]
    loss, got = model.gradients(X, y, training=training, return_loss=True)

    def f():
        return model.gradients(X, y, training=training, return_loss=True)[0]
    assert rel_err(got, numeric_grad(model, f)) < 1e-6
    # gradients never touch the running statistics
    np.testing.assert_array_equal(bn.moving_mean, stats_before[0])
    np.testing.assert_array_equal(bn.moving_variance, stats_before[1])
    if not training:
        assert loss == pytest.approx(model.evaluate(X, y), rel=1e-14)


def test_gradients_dropout_fixed_mask():
    rng = np.random.default_rng(15)
    model = af.Sequential([af.Dense(8, activation="relu"), af.Dropout(0.4), af.Dense(2)],
                          input_dim=3, dtype="float64", seed=9)
    model.compile(loss="mse", optimizer="sgd")
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))

    def f():  # the mask depends on (seed, next step, index) only: fixed while we probe
        return model.gradients(X, y, training=True, return_loss=True)[0]
    loss, got = model.gradients(X, y, training=True, return_loss=True)
    assert rel_err(got, numeric_grad(model, f)) < 1e-6
    assert loss != pytest.approx(model.evaluate(X, y))  # training mode really drops units


def test_dropout_statistics_and_inference_identity():
    n, rate = 4000, 0.3
    model = af.Sequential([af.Dense(n, use_bias=False), af.Dropout(rate)], input_dim=1, dtype="float64", seed=1)
    model.compile(loss="mse", optimizer="sgd")
    model.layers[0].kernel = np.ones((1, n))
    X, y = np.ones((1, 1)), np.zeros((1, n))
    np.testing.assert_array_equal(model.predict(X), np.ones((1, n)))  # identity at inference
    loss, (gW,) = model.gradients(X, y, training=True, return_loss=True)
    kept = np.count_nonzero(gW) / n
    # binomial(4000, 0.7): std of the kept fraction ~0.007; 5 sigma
    assert abs(kept - (1 - rate)) < 0.036
    # kept outputs are 1 / (1 - rate): loss = kept / (1 - rate)^2
    assert loss == pytest.approx(kept / (1 - rate) ** 2, rel=1e-12)


def test_batchnorm_running_statistics_update_in_fit():
    rng = np.random.default_rng(16)
    X = rng.normal(loc=3, scale=2, size=(50, 3))
    model = af.Sequential([af.Dense(3, use_bias=False), af.BatchNormalization(momentum=0.0)],
                          input_dim=3, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer=optimizers.SGD(0.0))
    model.layers[0].kernel = np.eye(3)
    model.fit(X, np.zeros((50, 3)), epochs=1, batch_size=50, verbose=0)
    bn = model.layers[1]
    # momentum 0: running stats are the last batch's mean and biased variance
    np.testing.assert_allclose(bn.moving_mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance, X.var(axis=0), rtol=1e-12)
    # inference uses them: outputs standardised (eps = 1e-3 shrinks them slightly)
    out = model.predict(X)
    np.testing.assert_allclose(out, (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-3), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_against_torch(loss):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    act = "elu"
    model = small_net(act, loss, seed=4)
    X = rng.normal(size=(11, 4))
    y = targets(loss, rng, 11, 3)
    got = model.gradients(X, y)
    ps = [torch.tensor(w.copy(), requires_grad=True) for w in params_of(model)]
    h = torch.tensor(X)
    F = torch.nn.functional
    for i in range(3):
        z = h @ ps[2 * i] + ps[2 * i + 1]
        h = F.elu(z) if i < 2 else z
    k = out_act(loss, act)
    ty = torch.tensor(np.asarray(y, dtype=float))
    if loss == "categorical_crossentropy":
        t = F.cross_entropy(h, ty)
    elif loss == "sparse_categorical_crossentropy":
        t = F.cross_entropy(h, ty.long())
    elif loss == "binary_crossentropy":
        t = F.binary_cross_entropy_with_logits(h, ty)
    else:
        p = F.elu(h) if k == "elu" else h
        t = {"mse": lambda: F.mse_loss(p, ty), "mae": lambda: F.l1_loss(p, ty),
             "hinge": lambda: torch.clamp(1 - ty * p, min=0).mean()}[loss]()
    t.backward()
    # float64 on both sides, different summation orders: agreement ~1e-13
    assert rel_err(got, [q.grad.numpy() for q in ps]) < 1e-10
    assert model.evaluate(X, y) == pytest.approx(t.item(), rel=1e-12)


# ---- learning ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_learns_xor(dtype):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([[0], [1], [1], [0]], dtype=float)
    model = af.Sequential([af.Dense(8, activation="tanh"), af.Dense(1, activation="sigmoid")],
                          input_dim=2, dtype=dtype, seed=0)
    model.compile(loss="binary_crossentropy", optimizer=optimizers.SGD(0.5, momentum=0.9),
                  metrics=["accuracy"])
    hist = model.fit(X, y, epochs=500, batch_size=4, verbose=0)
    assert hist.history["accuracy"][-1] == 1.0
    assert hist.history["loss"][-1] < 0.05
    np.testing.assert_array_equal(model.predict(X) > 0.5, y > 0.5)


def test_learns_sin_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(-np.pi, np.pi, size=(1000, 1))
    y = np.sin(X)
    model = af.Sequential([af.Dense(32, activation="tanh"), af.Dense(32, activation="tanh"), af.Dense(1)],
                          input_dim=1, seed=1)
    model.compile(loss="mse", optimizer=optimizers.Adam(0.01), metrics=["rmse"])
    hist = model.fit(X, y, epochs=100, batch_size=32, verbose=0)
    Xt = np.linspace(-np.pi, np.pi, 200).reshape(-1, 1)
    rmse = af.metrics.rmse(np.sin(Xt), model.predict(Xt))
    assert rmse < 0.05, rmse
    assert hist.history["rmse"][-1] == pytest.approx(np.sqrt(hist.history["loss"][-1]), rel=0.5)


def make_blobs(rng, n, k=4, d=5):
    centers = rng.normal(scale=3, size=(k, d))
    labels = rng.integers(0, k, n)
    return centers[labels] + rng.normal(size=(n, d)), labels


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_learns_classification(loss):
    rng = np.random.default_rng(1)
    X, labels = make_blobs(rng, 1500)
    y = labels if loss.startswith("sparse") else np.eye(4)[labels]
    model = af.Sequential([af.Dense(32, activation="relu"), af.Dense(4, activation="softmax")],
                          input_dim=5, seed=2)
    model.compile(loss=loss, optimizer=optimizers.Adam(0.01), metrics=["accuracy"])
    hist = model.fit(X[:1000], y[:1000], epochs=30, batch_size=64, validation_data=(X[1000:], y[1000:]),
                     verbose=0)
    # well-separated blobs (centre spread 3 sd): > 90% held-out accuracy
    assert hist.history["val_accuracy"][-1] > 0.9
    acc = af.metrics.accuracy(labels[1000:], model.predict(X[1000:]))
    assert acc == pytest.approx(hist.history["val_accuracy"][-1])
    loss_val, acc_val = model.evaluate(X[1000:], y[1000:])
    assert acc_val == pytest.approx(acc) and loss_val == pytest.approx(hist.history["val_loss"][-1])


def test_learns_hinge_with_01_labels():
    rng = np.random.default_rng(2)
    X, labels = make_blobs(rng, 600, k=2)
    model = af.Sequential([af.Dense(16, activation="relu"), af.Dense(1)], input_dim=5, seed=0)
    model.compile(loss="hinge", optimizer=optimizers.SGD(0.05), metrics=["accuracy"])
    hist = model.fit(X, labels.reshape(-1, 1), epochs=30, batch_size=32, verbose=0)
    assert hist.history["accuracy"][-1] > 0.95


@pytest.mark.parametrize("opt", ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW"])
def test_every_optimizer_trains(opt):
    rng = np.random.default_rng(3)
    X, labels = make_blobs(rng, 400, k=3)
    lr = {"Adadelta": 1.0, "SGD": 0.05}.get(opt, 0.01)
    model = af.Sequential([af.Dense(16, activation="relu"), af.Dense(3, activation="softmax")],
                          input_dim=5, seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=getattr(optimizers, opt)(lr))
    hist = model.fit(X, labels, epochs=20, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]


def test_batch_sizes_full_mini_stochastic():
    rng = np.random.default_rng(4)
    X, labels = make_blobs(rng, 64, k=2)
    for bs in (1, 7, 64, 1000):
        model = af.Sequential([af.Dense(8, activation="relu"), af.Dense(1, activation="sigmoid")],
                              input_dim=5, seed=0)
        model.compile(loss="binary_crossentropy", optimizer=optimizers.SGD(0.05))
        model.fit(X, labels, epochs=5, batch_size=bs, verbose=0)
        assert model.optimizer_state()["step"] == 5 * -(-64 // min(bs, 64))


# ---- determinism ------------------------------------------------------------------------------
def train_once(dtype="float32", threads=None, seed=42, epochs=3):
    # widths so that every parallel path runs with 2 threads: 128 x 1100 elements in the
    # activation-derivative/bias pass, 1100 x 128 weights in the penalty, batch norm over 1100
    rng = np.random.default_rng(0)
    X, labels = make_blobs(rng, 300, k=10, d=64)
    model = af.Sequential([af.Dense(1100, activation="relu"), af.BatchNormalization(), af.Dropout(0.2),
                           af.Dense(128, activation="tanh", l2=1e-4), af.Dense(10, activation="softmax")],
                          input_dim=64, dtype=dtype, seed=seed)
    model.compile(loss="sparse_categorical_crossentropy",
                  optimizer=optimizers.Adam(0.001, clipnorm=1.0))
    old = af.get_num_threads()
    try:
        if threads:
            af.set_num_threads(threads)
        hist = model.fit(X, labels, epochs=epochs, batch_size=128, verbose=0)
        pred = model.predict(X)
    finally:
        af.set_num_threads(old)
    return hist.history["loss"], model.get_weights(), pred


def test_seeded_runs_bitwise_reproducible():
    a, b = train_once(), train_once()
    assert a[0] == b[0]
    for wa, wb in zip(a[1], b[1]):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a[2], b[2])
    c = train_once(seed=43)
    assert c[0] != a[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_vs_two_threads_identical(dtype):
    a, b = train_once(dtype, threads=1, epochs=2), train_once(dtype, threads=2, epochs=2)
    assert a[0] == b[0]
    for wa, wb in zip(a[1], b[1]):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a[2], b[2])


# ---- clipping ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["clipvalue", "clipnorm"])
def test_clipping_in_the_step(kind):
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(16, 3)), rng.normal(scale=10, size=(16, 2))
    model = af.Sequential([af.Dense(4, activation="tanh"), af.Dense(2)], input_dim=3, dtype="float64", seed=0)
    limit = 0.05
    model.compile(loss="mse", optimizer=optimizers.SGD(1.0, **{kind: limit}))
    before = np.concatenate([w.ravel() for w in params_of(model)])
    g = np.concatenate([w.ravel() for w in model.gradients(X, y, training=True)])
    model.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    after = np.concatenate([w.ravel() for w in params_of(model)])
    step = before - after
    if kind == "clipvalue":
        expect = np.clip(g, -limit, limit)
        assert np.abs(step).max() <= limit * (1 + 1e-12)
    else:
        norm = np.linalg.norm(g)
        assert norm > limit  # the case is a real clip
        expect = g * (limit / norm)
        assert np.linalg.norm(step) == pytest.approx(limit, rel=1e-12)
    np.testing.assert_allclose(step, expect, rtol=1e-12, atol=1e-15)


def test_l2_penalty_shrinks_weights():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(100, 5)), rng.normal(size=(100, 1))
    norms = []
    for l2 in (0.0, 0.1):
        model = af.Sequential([af.Dense(16, activation="relu", l2=l2), af.Dense(1)], input_dim=5, seed=0)
        model.compile(loss="mse", optimizer=optimizers.SGD(0.05))
        model.fit(X, y, epochs=30, verbose=0)
        norms.append(np.linalg.norm(model.layers[0].kernel))
    assert norms[1] < 0.8 * norms[0]


# ---- fit loop ---------------------------------------------------------------------------------
class Recorder(callbacks.Callback):
    def __init__(self, stop_at=None):
        self.events, self.stop_at = [], stop_at

    def on_train_begin(self, logs=None):
        self.events.append("begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs)))
        if self.stop_at is not None and epoch == self.stop_at:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append("end")


def blob_model(seed=0, **compile_kw):
    model = af.Sequential([af.Dense(8, activation="relu"), af.Dense(3, activation="softmax")],
                          input_dim=5, seed=seed)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.SGD(0.05),
                  metrics=["accuracy"], **compile_kw)
    return model


def test_callbacks_history_validation_split():
    rng = np.random.default_rng(7)
    X, labels = make_blobs(rng, 200, k=3)
    model = blob_model()
    rec = Recorder(stop_at=2)
    hist = model.fit(X, labels, epochs=10, batch_size=16, validation_split=0.25, callbacks=[rec], verbose=0)
    assert rec.events[0] == "begin" and rec.events[-1] == "end"
    assert [e[1] for e in rec.events if e[0] == "epoch_end"] == [0, 1, 2]  # stop_training honoured
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist.history["loss"]) == 3
    # validation = the last 25% of the rows, evaluated after the epoch
    assert hist.history["val_loss"][-1] == pytest.approx(model.evaluate(X[150:], labels[150:])[0], rel=1e-6)
    assert model.optimizer_state()["step"] == 3 * -(-150 // 16)


def test_ctrl_c_in_a_callback_raises_there_with_consistent_weights():
    """Callbacks run under Python's own SIGINT handler (the engine routes Ctrl-C only while a C
    call runs): KeyboardInterrupt is raised inside the callback and leaves fit, the model keeps
    the weights of its completed epochs, and the next fit runs normally."""
    rng = np.random.default_rng(8)
    X, labels = make_blobs(rng, 200, k=3)

    class Interrupt(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(2)     # interrupted at once: never completes
                raise AssertionError("the callback was not interrupted")

    model = blob_model(seed=3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, labels, epochs=10, batch_size=16, callbacks=[Interrupt()], verbose=0)
    # History comes after the user's callbacks: the interrupted epoch is not recorded
    assert model.interrupted and len(model.history.history["loss"]) == 1
    ref = blob_model(seed=3)
    ref.fit(X, labels, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    hist = model.fit(X, labels, epochs=1, batch_size=16, verbose=0)
    assert not model.interrupted and len(hist.history["loss"]) == 1


def test_request_stop_inside_an_epoch_keeps_consistent_weights():
    rng = np.random.default_rng(9)
    X, labels = make_blobs(rng, 200, k=3)

    class Stop(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                af._core.request_stop()

    model = blob_model(seed=4)
    hist = model.fit(X, labels, epochs=5, batch_size=16, callbacks=[Stop()], verbose=0)
    assert model.interrupted and len(hist.history["loss"]) == 1
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_fit_verbose_outputs(capsys):
    rng = np.random.default_rng(10)
    X, labels = make_blobs(rng, 100, k=3)
    for verbose in (1, 2):
        model = blob_model()
        model.fit(X, labels, epochs=2, batch_size=16, verbose=verbose)
        out = capsys.readouterr()
        text = out.out + out.err
        assert "loss" in text and "2" in text
    model = blob_model()
    model.fit(X, labels, epochs=2, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_learning_rate_schedule_is_applied_per_epoch():
    rng = np.random.default_rng(11)
    X, labels = make_blobs(rng, 100, k=3)
    seen = []

    def schedule(epoch):  # lr 0.1 in epoch 0, then 0: later epochs must not move the weights
        seen.append(epoch)
        return 0.1 if epoch == 0 else 0.0

    def make():
        m = af.Sequential([af.Dense(3, activation="softmax")], input_dim=5, seed=0)
        m.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.SGD(schedule))
        return m
    a, b = make(), make()
    a.fit(X, labels, epochs=3, verbose=0)
    assert {0, 1, 2} <= set(seen)
    b.fit(X, labels, epochs=1, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # a second fit continues the schedule's clock (epoch 3: lr 0)
    b.fit(X, labels, epochs=1, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert b.optimizer_state()["epoch"] == 2


# ---- configuration, weights, state --------------------------------------------------------------
def test_config_roundtrip_and_weights():
    import json
    model = af.Sequential([af.Dense(6, activation="leaky_relu", alpha=0.2, l1=1e-3, kernel_initializer="he_uniform"),
                           af.BatchNormalization(momentum=0.9, epsilon=1e-4), af.Dropout(0.1),
                           af.Dense(2, activation="sigmoid")], input_dim=4, dtype="float64", seed=5)
    model.compile(loss="binary_crossentropy", optimizer=optimizers.Adam(0.01), metrics=["accuracy"])
    cfg = json.loads(json.dumps(model.get_config()))
    clone = af.Sequential.from_config(cfg)
    assert clone.get_config() == cfg
    X = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))  # same seed, same init
    w = model.get_weights()
    assert [a.shape for a in w] == [(4, 6), (6,), (6,), (6,), (6,), (6,), (6, 2), (2,)]
    w[0] = w[0] + 1
    clone.set_weights(w)
    np.testing.assert_array_equal(clone.layers[0].kernel, w[0])
    assert clone.count_params() == 4 * 6 + 6 + 12 + 6 * 2 + 2


def test_optimizer_state_continues_training_exactly():
    rng = np.random.default_rng(12)
    X, labels = make_blobs(rng, 120, k=3)
    a = blob_model(seed=6)
    a.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.Adam(0.01))
    a.fit(X, labels, epochs=2, batch_size=16, verbose=0)
    b = blob_model(seed=6)
    b.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.Adam(0.01))
    b.fit(X, labels, epochs=1, batch_size=16, verbose=0)
    c = af.Sequential.from_config(b.get_config())
    c.set_weights(b.get_weights())
    c.set_optimizer_state(b.optimizer_state())
    c.fit(X, labels, epochs=1, batch_size=16, verbose=0)
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wc)


def test_layer_views_are_live():
    model = af.Sequential([af.Dense(2, activation="linear")], input_dim=2, dtype="float64", seed=0)
    model.layers[0].kernel = np.eye(2)
    model.layers[0].bias = [1.0, -1.0]
    np.testing.assert_array_equal(model.predict([[2.0, 3.0]]), [[3.0, 2.0]])
    with pytest.raises(ValueError, match="shape"):
        model.layers[0].kernel = np.eye(3)
    with pytest.raises(ValueError, match="finite"):
        model.layers[0].bias = [np.nan, 0.0]
    np.testing.assert_array_equal(model.layers[0].bias, [1.0, -1.0])


# ---- bad input --------------------------------------------------------------------------------
def snapshot(model):
    return [w.copy() for w in model.get_weights()], model.optimizer_state()


def assert_unchanged(model, snap):
    for a, b in zip(snap[0], model.get_weights()):
        np.testing.assert_array_equal(a, b)
    st = model.optimizer_state()
    assert st["step"] == snap[1]["step"]
    np.testing.assert_array_equal(st["state"], snap[1]["state"])


def test_bad_fit_arguments_leave_model_unchanged():
    rng = np.random.default_rng(13)
    X, labels = make_blobs(rng, 50, k=3)
    model = blob_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.Adam(0.01))
    model.fit(X, labels, epochs=1, verbose=0)
    snap = snapshot(model)
    bad = [
        (dict(X=X[:, :4]), ValueError, "columns"),
        (dict(X=X.astype(str)), TypeError, "dtype"),
        (dict(X=np.where(X > 2, np.nan, X)), ValueError, "NaN"),
        (dict(y=labels[:-1]), ValueError, "rows"),
        (dict(y=labels + 5), ValueError, "class indices"),
        (dict(epochs=-1), ValueError, "epochs"),
        (dict(epochs=1.5), TypeError, "epochs"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(validation_split=1.0), ValueError, "validation_split"),
        (dict(validation_split=0.1, validation_data=(X, labels)), ValueError, "not both"),
        (dict(validation_data=(X[:, :2], labels)), ValueError, "columns"),
        (dict(verbose=3), ValueError, "verbose"),
        (dict(callbacks=[object()]), TypeError, "callbacks"),
        (dict(shuffle="yes"), TypeError, "shuffle"),
    ]
    for kw, exc, msg in bad:
        args = dict(X=X, y=labels, epochs=1, verbose=0)
        args.update(kw)
        with pytest.raises(exc, match=msg):
            model.fit(args.pop("X"), args.pop("y"), **args)
        assert_unchanged(model, snap)
    with pytest.raises(ValueError, match="columns"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="rows"):
        model.evaluate(X, labels[:3])
    with pytest.raises(ValueError, match="class indices"):
        model.gradients(X, labels - 1)
    with pytest.raises(ValueError, match="weights"):
        model.set_weights(model.get_weights()[:-1])
    w = model.get_weights()
    w[-1] = np.zeros(7)
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(w)
    with pytest.raises(ValueError, match="values"):
        model.set_optimizer_state({"step": 1, "state": np.zeros(3)})
    assert_unchanged(model, snap)


def test_bad_construction_and_compile():
    with pytest.raises(ValueError, match="units"):
        af.Dense(0)
    with pytest.raises(ValueError, match="activation"):
        af.Dense(3, activation="mish")
    with pytest.raises(ValueError, match="rate"):
        af.Dropout(1.0)
    with pytest.raises(ValueError, match="momentum"):
        af.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        af.BatchNormalization(epsilon=0)
    with pytest.raises(ValueError, match="l2"):
        af.Dense(3, l2=-1)
    with pytest.raises(ValueError, match="dtype"):
        af.Sequential([af.Dense(1)], dtype="float16")
    with pytest.raises(TypeError, match="layers\\[0\\]"):
        af.Sequential(["dense"])
    layer = af.Dense(2)
    af.Sequential([layer], input_dim=2)
    with pytest.raises(ValueError, match="belongs"):
        af.Sequential([layer], input_dim=2)
    model = af.Sequential([af.Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match="compile"):
        model.fit([[1.0, 2.0]], [[1.0]])
    with pytest.raises(ValueError, match="loss"):
        model.compile(loss="cross_entropyy")
    with pytest.raises(ValueError, match="metric"):
        model.compile(loss="mse", metrics=["f1"])
    assert model.loss is None


def test_input_dim_inferred_and_float_list_inputs():
    model = af.Sequential([af.Dense(3, activation="relu"), af.Dense(1)], seed=0)
    model.compile(loss="mse", optimizer="adam")
    model.fit([[1, 2], [3, 4]], [1, 2], epochs=2, verbose=0)
    assert model.input_dim == 2 and model.predict([[1, 2]]).shape == (1, 1)
    assert model.predict(np.ones((3, 2), dtype=np.int64)).dtype == np.float32


def test_save_load_roundtrip_continues_training_exactly(tmp_path):
    rng = np.random.default_rng(14)
    X, labels = make_blobs(rng, 150, k=3)
    model = af.Sequential([af.Dense(8, activation="relu"), af.BatchNormalization(), af.Dropout(0.2),
                           af.Dense(3, activation="softmax")], input_dim=5, seed=1)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.Adam(0.01), metrics=["accuracy"])
    model.fit(X, labels, epochs=2, batch_size=32, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    clone = af.load_model(path)
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    model.fit(X, labels, epochs=1, batch_size=32, verbose=0)
    clone.fit(X, labels, epochs=1, batch_size=32, verbose=0)
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_plain_sgd_matches_the_optimizer_step(dtype):
    # Plain SGD is applied inside the gradient GEMMs (W += -lr X^T dZ); a clipvalue no gradient
    # reaches forces the separate af_optim_step path with the same mathematics.
    rng = np.random.default_rng(15)
    X, labels = make_blobs(rng, 300, k=3)
    out = []
    for opt in (optimizers.SGD(0.05), optimizers.SGD(0.05, clipvalue=1e30)):
        model = af.Sequential([af.Dense(16, activation="relu"), af.BatchNormalization(),
                               af.Dense(3, activation="softmax")], input_dim=5, dtype=dtype, seed=2)
        model.compile(loss="sparse_categorical_crossentropy", optimizer=opt)
        model.fit(X, labels, epochs=3, batch_size=32, verbose=0)
        out.append(model.get_weights())
    # same update; only the rounding of alpha*acc + c inside the GEMM may differ (FMA)
    tol = 1e-4 if dtype == "float32" else 1e-11
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_deep_sigmoid_network_stalls_with_sgd_and_trains_with_batchnorm_or_adam():
    """Issue 6's demonstration, 10 sigmoid layers of 32 on a 2-class problem, 20-30 epochs.
    Measured: plain SGD (lr 0.1) with small random-normal or Glorot init stays at loss ~0.69
    (chance, accuracy ~0.52: vanishing gradients); the same SGD with BatchNormalization after every
    layer reaches loss ~0.01 / accuracy ~1.0; Adam (lr 0.003) with Glorot init reaches loss
    ~0.0004 / accuracy 1.0."""
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=1.5, size=(2, 10))
    labels = rng.integers(0, 2, 1000)
    X = centers[labels] + rng.normal(size=(1000, 10))

    def run(init, bn, opt, epochs):
        layers = []
        for _ in range(10):
            layers.append(af.Dense(32, activation="sigmoid", kernel_initializer=init))
            if bn:
                layers.append(af.BatchNormalization())
        layers.append(af.Dense(2, activation="softmax", kernel_initializer=init))
        model = af.Sequential(layers, input_dim=10, seed=0)
        model.compile(loss="sparse_categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
        hist = model.fit(X, labels, epochs=epochs, batch_size=32, verbose=0)
        return hist.history["loss"][-1], hist.history["accuracy"][-1]

    small = {"class_name": "random_normal", "stddev": 0.05}
    for init in (small, "glorot_uniform"):
        loss, acc = run(init, False, optimizers.SGD(0.1), 20)
        assert loss > 0.6 and acc < 0.7  # stalled near chance (ln 2 = 0.693)
    loss, acc = run(small, True, optimizers.SGD(0.1), 20)
    assert loss < 0.1 and acc > 0.95
    loss, acc = run("glorot_uniform", False, optimizers.Adam(0.003), 30)
    assert loss < 0.1 and acc > 0.95


def test_progress_slices_give_the_same_training(monkeypatch):
    # verbose=1 on a terminal runs each epoch as several C calls (for the bar); same results
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    rng = np.random.default_rng(16)
    X, labels = make_blobs(rng, 500, k=3)
    out = []
    for verbose in (0, 1):
        model = blob_model(seed=5)
        hist = model.fit(X, labels, epochs=2, batch_size=8, verbose=verbose)
        out.append((hist.history, model.get_weights()))
    # epoch losses are sums of per-slice sums (double): equal up to the order of additions
    for k in out[0][0]:
        assert out[0][0][k] == pytest.approx(out[1][0][k], rel=1e-12)
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_array_equal(a, b)
    assert screen.getvalue().count("/500") >= 2 * 16  # redrawn mid-epoch (plain bar or tqdm)


def test_c_engine_rejects_inconsistent_descriptions():
    # the graph engine checks a description itself (field tables in Cython, af_plan_create in C):
    # every error is a ValueError naming the layer, and a cycle or a dangling index is refused
    p = np.zeros(10, dtype=np.float64)
    g, s = np.zeros_like(p), np.zeros(0)
    inp = {"kind": "input", "name": "x", "inputs": [], "config": {"shape": (2,), "dtype": "float"}}
    cfg = {"units": 3, "activation": "relu", "alpha": 0.0, "use_bias": True, "l1": 0.0, "l2": 0.0}
    ok = {"kind": "dense", "name": "d", "inputs": [0], "config": cfg, "param_off": 0}

    def engine(dense, outputs=(1,)):
        return af._core.GraphEngine([inp, dense], [0], list(outputs), ["mse"], [1.0], p, g, s)

    engine(ok)
    bad = [(dict(ok, param_off=5), "layer 'd' \\(dense\\)"),
           (dict(ok, config=dict(cfg, units=4)), "layer 'd'"),
           (dict(ok, config=dict(cfg, activation="elu", alpha=-1.0)), "alpha"),
           (dict(ok, config=dict(cfg, l2=-1.0)), "l2"),
           (dict(ok, config=dict(cfg, bogus=1)), "unknown setting 'bogus'"),
           (dict(ok, config={k: v for k, v in cfg.items() if k != "units"}), "missing setting 'units'"),
           (dict(ok, kind="dropout", config={"rate": 1.0}), "rate"),
           (dict(ok, kind="batchnorm", config={"momentum": 0.9, "epsilon": 0.0}), "epsilon"),
           (dict(ok, kind="conv9"), "unknown layer kind"),
           (dict(ok, inputs=[5]), "not a node index"),
           (dict(ok, inputs=[1]), "network"),                  # a cycle: the node feeds itself
           (dict(ok, inputs=[0, 0]), "inputs")]
    for spec, msg in bad:
        with pytest.raises(ValueError, match=msg):
            engine(spec)
    with pytest.raises(TypeError, match="units"):
        engine(dict(ok, config=dict(cfg, units=2.5)))
    with pytest.raises(TypeError):
        af._core.GraphEngine([inp, ok], [0], [1], ["mse"], [1.0], p, g.astype(np.float32), s)


def test_early_stopping_and_checkpoint_with_a_real_model(tmp_path):
    rng = np.random.default_rng(17)
    X, labels = make_blobs(rng, 200, k=3)
    model = blob_model(seed=8)
    snapshots = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(model.get_weights()))
    # min_delta larger than any realistic improvement: nothing "improves" after epoch 0
    stop = callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=10.0, restore_best_weights=True)
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_loss", save_best_only=True)
    hist = model.fit(X, labels, epochs=20, batch_size=16, validation_split=0.2,
                     callbacks=[record, ckpt, stop], verbose=0)
    assert len(hist.history["loss"]) == 3 and model.stop_training
    for a, b in zip(model.get_weights(), snapshots[0]):  # restored to epoch 0's weights
        np.testing.assert_array_equal(a, b)
    best = int(np.argmin(hist.history["val_loss"]))
    saved = af.load_model(tmp_path / "best.npz")
    for a, b in zip(saved.get_weights(), snapshots[best]):
        np.testing.assert_array_equal(a, b)


def test_concurrent_predict_from_threads_is_safe():
    import threading
    rng = np.random.default_rng(18)
    X = rng.normal(size=(2000, 5))
    model = blob_model(seed=9)
    expect = model.predict(X)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(model.predict(X))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 20
    for r in results:
        np.testing.assert_array_equal(r, expect)


def test_reconfigured_optimizer_gets_fresh_state():
    rng = np.random.default_rng(19)
    X, labels = make_blobs(rng, 64, k=3)
    model = blob_model()
    model.fit(X, labels, epochs=1, verbose=0)
    model.optimizer.momentum = 0.9  # needs one state slot now
    model.fit(X, labels, epochs=1, verbose=0)
    assert model.optimizer_state()["state"].size == model.count_params()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_buffers_start_on_a_cache_line(dtype):
    # NumPy's large arrays start 16 bytes past a 64-byte boundary; every vector access of the GEMM
    # kernels to such weights spans two cache lines (annfast/_buffers.py). The model allocates
    # parameters, gradients, statistics, optimiser state and workspaces on 64-byte boundaries,
    # also after the optimiser is reconfigured.
    from annfast._buffers import aligned_zeros
    for n in (0, 1, 3, 1000):
        a = aligned_zeros(n, dtype)
        assert a.shape == (n,) and a.dtype == np.dtype(dtype)
        assert a.flags.c_contiguous and a.flags.writeable and not a.any()
        assert n == 0 or a.ctypes.data % 64 == 0  # an empty array has no data to align
    model = af.Sequential([af.Dense(48, activation="relu"), af.BatchNormalization(),
                           af.Dense(3, activation="softmax")], input_dim=20, dtype=dtype, seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.Adam(1e-3))
    X = np.random.default_rng(0).normal(size=(40, 20))
    y = np.arange(40) % 3
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    engine = model._get_engine()
    buffers = [model._params, model._grads, model._stats, model._opt_state,
               engine.plan(16).ws, engine.plan(5).ws]
    assert [b.ctypes.data % 64 for b in buffers] == [0] * len(buffers)
    assert model.layers[0].kernel.ctypes.data % 64 == 0
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizers.SGD(0.1))
    model.optimizer.momentum = 0.9  # state re-allocated by fit
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert model._opt_state.size == model.count_params() and model._opt_state.ctypes.data % 64 == 0
