"""Batch (full), mini-batch and stochastic (batch_size=1) gradient descent through fit, with
SGD, momentum and Adam: a linear model (Dense(2), mse, float64, no shuffling) against a NumPy
loop applying the textbook updates to the same mini-batches in the same order. This checks
that fit drives the C optimiser exactly as the formulas say (step count, state, schedule)."""
import numpy as np
import pytest

import annfast as af

N, D, K = 12, 3, 2


def data():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((N, D))
    Y = rng.standard_normal((N, K))
    return X, Y


def numpy_fit(W, b, X, Y, batch, epochs, kind, lr):
    """Reference: mse = mean over rows and outputs of (p - y)^2, so dL/dp = 2 (p - y) / (B K)."""
    params = [W.copy(), b.copy()]
    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    t = 0
    for _ in range(epochs):
        for s in range(0, N, batch):
            xb, yb = X[s:s + batch], Y[s:s + batch]
            p = xb @ params[0] + params[1]
            dp = 2 * (p - yb) / (xb.shape[0] * K)
            grads = [xb.T @ dp, dp.sum(axis=0)]
            t += 1
            for i, g in enumerate(grads):
                if kind == "sgd":
                    params[i] = params[i] - lr * g
                elif kind == "momentum":
                    m[i] = 0.9 * m[i] + g
                    params[i] = params[i] - lr * m[i]
                else:  # adam
                    m[i] = 0.9 * m[i] + 0.1 * g
                    v[i] = 0.999 * v[i] + 0.001 * g * g
                    mhat, vhat = m[i] / (1 - 0.9 ** t), v[i] / (1 - 0.999 ** t)
                    params[i] = params[i] - lr * mhat / (np.sqrt(vhat) + 1e-8)
    return params, t


OPTS = {"sgd": lambda: af.optimizers.SGD(0.05), "momentum": lambda: af.optimizers.SGD(0.05, momentum=0.9),
        "adam": lambda: af.optimizers.Adam(0.01)}


@pytest.mark.parametrize("kind", sorted(OPTS))
@pytest.mark.parametrize("batch", [N, 4, 1], ids=["full-batch", "mini-batch", "stochastic"])
def test_gradient_descent_modes_match_numpy(kind, batch):
    X, Y = data()
    model = af.Sequential([af.Dense(K)], input_dim=D, dtype="float64", seed=0)
    model.compile("mse", OPTS[kind]())
    W0, b0 = model.get_weights()
    model.fit(X, Y, epochs=3, batch_size=batch, shuffle=False, verbose=0)
    (W, b), steps = numpy_fit(W0, b0, X, Y, batch, 3, kind, model.optimizer.learning_rate)
    assert model.optimizer_state()["step"] == steps == 3 * (N // batch)
    # float64, at most 36 steps of a few O(1) operations each: differences come only from
    # summation order inside the GEMMs (~1e-16 relative per step)
    got_W, got_b = model.get_weights()
    np.testing.assert_allclose(got_W, W, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got_b, b, rtol=1e-12, atol=1e-13)
    assert not np.allclose(got_W, W0)


def _mlp(dtype):
    model = af.Sequential([af.Dense(6, activation="relu"), af.Dense(3, activation="softmax")],
                          input_dim=D, dtype=dtype, seed=2)
    model.compile(loss="categorical_crossentropy", optimizer=af.optimizers.Adam(0.01))
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_epochs_in_a_given_order_match_reordered_data(dtype):
    """The engine's caller-given row order (annfast.sklearn draws scikit-learn's): each epoch
    gathers the rows in C, bit for bit as training on the reordered copies in storage order;
    repeated indices are allowed (sampling with replacement)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, D))
    Y = np.eye(3)[rng.integers(0, 3, N)]
    a, b = _mlp(dtype), _mlp(dtype)
    Xa, Ya = a._fit_setup_checked(X, Y)
    losses = []
    for order in (rng.permutation(N), rng.permutation(N), rng.integers(0, N, N)):
        loss, stopped = a._epoch_in_order(Xa, Ya, 5, order.astype(np.uint64))
        assert not stopped
        hist = b.fit(X[order], Y[order], epochs=1, batch_size=5, shuffle=False, verbose=0)
        losses.append((loss, hist.history["loss"][0]))
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    assert all(la == lb for la, lb in losses)


def test_given_order_out_of_range_is_rejected_before_any_step():
    model = _mlp("float64")
    X, Y = model._fit_setup_checked(np.ones((N, D)), np.eye(3)[np.arange(N) % 3])
    before = [w.copy() for w in model.get_weights()]
    bad = np.arange(N, dtype=np.uint64)
    bad[7] = N
    with pytest.raises(ValueError, match=r"perm must hold row indices in \[0, 12\), got 12"):
        model._epoch_in_order(X, Y, 4, bad)
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)
    assert model._step == 0
