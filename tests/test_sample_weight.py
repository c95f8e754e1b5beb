"""sample_weight and class_weight, computed in C: Keras's normalisation in fit/evaluate/gradients
(sum w_i l_i over the batch size), scikit-learn's in the estimators (each batch's objective over
its weight sum), reproduced to rounding against scikit-learn itself."""
import warnings

import numpy as np
import pytest

import annfast as af
from layer_checks import rel_err


def model(dtype="float64", seed=0, loss="sparse_categorical_crossentropy", out=3, act="softmax"):
    m = af.Sequential([af.Dense(6, activation="tanh"), af.Dense(out, activation=act)], input_dim=4,
                      dtype=dtype, seed=seed)
    m.compile(loss=loss, optimizer=af.optimizers.SGD(0.05))
    return m


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, y, rng.uniform(0, 2, size=n)


def test_evaluate_and_gradients_weight_the_loss():
    X, y, w = data()
    m = model()
    p = m.predict(X)
    per = -np.log(p[np.arange(len(y)), y])
    np.testing.assert_allclose(m.evaluate(X, y, sample_weight=w), np.sum(w * per) / len(y), rtol=1e-12)
    # gradients of the weighted loss against central differences of evaluate(sample_weight)
    grads = m.gradients(X, y, sample_weight=w)
    flat = m.layers[0].kernel.reshape(-1)
    num = np.empty(8)
    for k in range(8):
        old = flat[k]
        flat[k] = old + 1e-6
        lp = m.evaluate(X, y, sample_weight=w)
        flat[k] = old - 1e-6
        lm = m.evaluate(X, y, sample_weight=w)
        flat[k] = old
        num[k] = (lp - lm) / 2e-6
    assert rel_err(grads[0].reshape(-1)[:8], num) < 1e-6


def test_unit_weights_change_nothing_and_zero_weights_drop_samples():
    X, y, _ = data()
    a, b, c = model(), model(), model()
    ha = a.fit(X, y, epochs=3, batch_size=8, verbose=0)
    hb = b.fit(X, y, epochs=3, batch_size=8, verbose=0, sample_weight=np.ones(len(y)))
    assert ha.history == hb.history
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    # a zero weight: that sample's gradient vanishes (full batch, SGD)
    w = np.ones(len(y))
    w[:10] = 0
    g = c.gradients(X, y, sample_weight=w)
    g_rest = c.gradients(X[10:], y[10:])
    for u, v in zip(g, g_rest):   # sum over the 30 kept / 40 versus mean over 30: a 3/4 factor
        np.testing.assert_allclose(u, 0.75 * v, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_class_weight_equals_the_matching_sample_weight(dtype):
    X, y, _ = data()
    cw = {0: 0.5, 1: 2.0, 2: 1.5}
    a, b = model(dtype), model(dtype)
    ha = a.fit(X, y, epochs=3, batch_size=8, verbose=0, class_weight=cw)
    hb = b.fit(X, y, epochs=3, batch_size=8, verbose=0, sample_weight=np.array([cw[c] for c in y]))
    assert ha.history == hb.history
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    # one-hot targets and binary targets look the class up the same way
    onehot = model(dtype, loss="categorical_crossentropy")
    ref = model(dtype)
    onehot.fit(X, np.eye(3)[y], epochs=2, batch_size=8, verbose=0, class_weight=cw)
    ref.fit(X, y, epochs=2, batch_size=8, verbose=0, class_weight=cw)
    for u, v in zip(onehot.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5 if dtype == "float32" else 1e-12)
    yb = (y > 0).astype(float)
    c = model(dtype, loss="binary_crossentropy", out=1, act="sigmoid")
    d = model(dtype, loss="binary_crossentropy", out=1, act="sigmoid")
    c.fit(X, yb, epochs=2, batch_size=8, verbose=0, class_weight={0: 3.0, 1: 0.25})
    d.fit(X, yb, epochs=2, batch_size=8, verbose=0, sample_weight=np.where(yb > 0, 0.25, 3.0))
    for u, v in zip(c.get_weights(), d.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_weights_follow_the_shuffle_and_the_validation_split():
    X, y, w = data(60)
    a, b = model(), model()
    a.fit(X, y, epochs=2, batch_size=7, verbose=0, sample_weight=w, validation_split=0.25)
    # the same model, with the split done by hand and the weights given with the validation data
    b.fit(X[:45], y[:45], epochs=2, batch_size=7, verbose=0, sample_weight=w[:45],
          validation_data=(X[45:], y[45:], w[45:]))
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_allclose(a.history.history["val_loss"], b.history.history["val_loss"], rtol=1e-12)


def test_bad_weights_are_refused_and_change_nothing():
    X, y, w = data()
    m = model()
    before = m.get_weights()
    for bad, err, msg in ((w[:-1], ValueError, "40 weights"), (-w, ValueError, ">= 0"),
                          (np.where(w > 1, np.nan, w), ValueError, "finite"),
                          (w.reshape(-1, 2), ValueError, "1-D")):
        with pytest.raises(err, match=msg):
            m.fit(X, y, verbose=0, sample_weight=bad)
    with pytest.raises(TypeError, match="class_weight"):
        m.fit(X, y, verbose=0, class_weight=[1, 2, 3])
    with pytest.raises(ValueError, match="class_weight\\[1\\]"):
        m.fit(X, y, verbose=0, class_weight={1: -1.0})
    reg = af.Sequential([af.Dense(1)], input_dim=4)
    reg.compile(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match="classification loss"):
        reg.fit(X, X[:, 0], verbose=0, class_weight={0: 1.0})
    for u, v in zip(before, m.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert m.optimizer_state()["step"] == 0


# ---- the estimators against scikit-learn ------------------------------------------------------
def _pair(kind, batch, momentum, early=False, weights=None):
    from sklearn.neural_network import MLPClassifier as SkC, MLPRegressor as SkR
    from annfast.sklearn import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(3)
    X = rng.normal(size=(70, 5))
    y = {"multiclass": rng.integers(0, 3, 70), "binary": rng.integers(0, 2, 70),
         "regression": X @ rng.normal(size=5)}[kind]
    w = rng.uniform(0, 3, 70) if weights is None else weights
    w[3] = 0.0                                  # a sample that does not count at all
    params = dict(hidden_layer_sizes=(7, 6), solver="sgd", batch_size=batch, shuffle=True,
                  max_iter=6, random_state=3, alpha=0.01, learning_rate_init=0.01, momentum=momentum,
                  tol=0.0, n_iter_no_change=10_000, early_stopping=early)
    Ours, Theirs = (MLPRegressor, SkR) if kind == "regression" else (MLPClassifier, SkC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = Ours(dtype="float64", **params).fit(X, y, sample_weight=w)
        b = Theirs(**params).fit(X, y, sample_weight=w)
    return a, b, X


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
@pytest.mark.parametrize("batch", [70, 16])        # full batch, and a last batch of 6
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_estimators_reproduce_sklearn_with_sample_weight(kind, batch, momentum):
    pytest.importorskip("sklearn")
    a, b, X = _pair(kind, batch, momentum)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-9)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_estimators_weighted_early_stopping_scores_match_sklearn(kind):
    pytest.importorskip("sklearn")
    a, b, _ = _pair(kind, 16, 0.0, early=True)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-9)


def test_estimator_bad_sample_weight():
    from annfast.sklearn import MLPClassifier
    X, y, w = data()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    for bad, msg in ((w[:5], "40 weights"), (-w, ">= 0"), (np.full(40, np.inf), "NaN or inf")):
        with pytest.raises(ValueError, match=msg):
            clf.fit(X, y, sample_weight=bad)
    assert not hasattr(clf, "coefs_")
