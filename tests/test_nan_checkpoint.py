"""A diverged model (NaN/inf weights or optimiser state) saves and loads bit for bit, with a
RuntimeWarning on load, as the format promises (issue 20, item 9): the checkpoint of a diverged
run is what a user needs to debug it."""
import warnings

import numpy as np
import pytest

import annfast


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bitwise(xs, ys):
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(bits(x), bits(y))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_and_inf_weights_round_trip_bit_for_bit(tmp_path, dtype):
    model = annfast.Sequential([annfast.Dense(4, activation="tanh"), annfast.BatchNormalization(),
                                annfast.Dense(2)], input_dim=3, dtype=dtype, seed=0)
    model.compile("mse", annfast.optimizers.Adam())
    w = model.layers[0].kernel  # a view into the model: bypasses set_weights' finiteness check
    quiet_nan_with_payload = np.array([0x7FC01234], np.uint32).view(np.float32)[0] \
        if dtype == "float32" else np.array([0x7FF8000000ABCDEF], np.uint64).view(np.float64)[0]
    w[0, 0] = quiet_nan_with_payload
    w[1, 1], w[2, 2] = np.inf, -np.inf
    w[0, 1] = -np.nan
    model.layers[1].moving_variance[...] = np.nan  # a statistic, not a trainable weight
    path = tmp_path / "diverged.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # saving a diverged model is not an error
        model.save(path)
    with pytest.warns(RuntimeWarning, match=r"NaN or inf in weights \[0, 5\].*bit for bit"):
        again = annfast.load_model(path)
    assert_bitwise(model.get_weights(), again.get_weights())
    assert_bitwise([model.optimizer_state()["state"]], [again.optimizer_state()["state"]])
    X = np.ones((2, 3))
    np.testing.assert_array_equal(np.isnan(model.predict(X)), np.isnan(again.predict(X)))


def test_nan_optimizer_state_alone_loads_with_warning(tmp_path):
    model = annfast.Sequential([annfast.Dense(2)], input_dim=2, seed=0)
    model.compile("mse", annfast.optimizers.SGD(0.1, momentum=0.9))
    model.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=1, verbose=0)
    state = model.optimizer_state()
    state["state"][3] = np.nan
    model._opt_state[...] = state["state"]  # set_optimizer_state refuses NaN by design
    model.save(tmp_path / "m.npz")
    with pytest.warns(RuntimeWarning, match="NaN or inf in the optimizer state"):
        again = annfast.load_model(tmp_path / "m.npz")
    assert_bitwise(model.get_weights(), again.get_weights())
    assert_bitwise([model.optimizer_state()["state"]], [again.optimizer_state()["state"]])
    assert again.optimizer_state()["step"] == model.optimizer_state()["step"] == 1


def test_finite_model_loads_without_warning(tmp_path):
    model = annfast.Sequential([annfast.Dense(2)], input_dim=2, seed=0)
    model.save(tmp_path / "ok.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        annfast.load_model(tmp_path / "ok.npz")


def test_checkpoint_of_a_diverged_run_loads(tmp_path):
    """SGD with momentum and a far too large rate: the loss goes to inf, then NaN. Every epoch's
    checkpoint is written (up to the epoch whose loss is NaN: fit stops there, and
    keep_last_finite=False keeps the diverged weights), and the last one reloads the diverged
    state bit for bit."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)) * 10
    y = X @ rng.standard_normal((4, 1))
    model = annfast.Sequential([annfast.Dense(8, activation="tanh"), annfast.Dense(1)],
                               input_dim=4, seed=0)
    model.compile("mse", annfast.optimizers.SGD(50.0, momentum=0.9))
    ckpt = annfast.callbacks.ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}.npz"),
                                             save_best_only=False)
    stop = annfast.callbacks.TerminateOnNaN(keep_last_finite=False)
    hist = model.fit(X, y, epochs=6, batch_size=16, callbacks=[stop, ckpt], verbose=0)
    assert not np.isfinite(hist.history["loss"][-1])           # the run did diverge
    assert not all(np.isfinite(w).all() for w in model.get_weights())
    epochs = len(hist.history["loss"])
    assert len(ckpt.saved) == epochs
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        last = annfast.load_model(ckpt.saved[-1])
    assert_bitwise(model.get_weights(), last.get_weights())
    s0, s1 = model.optimizer_state(), last.optimizer_state()
    assert (s0["step"], s0["epoch"]) == (s1["step"], s1["epoch"]) == (4 * epochs, epochs)
    assert_bitwise([s0["state"]], [s1["state"]])
