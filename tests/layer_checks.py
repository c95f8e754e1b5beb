"""Checks every layer kind's tests share: finite-difference gradients (float64) of the parameters
and of the inputs, and bitwise equality of training on 1 and 2 threads.

The finite differences perturb one value at a time and difference the model's own loss (the
training-mode loss with fixed dropout masks and batch statistics when training=True, else
evaluate()): central differences with h = 1e-6 have truncation error O(h^2) ~ 1e-12 and rounding
error ~ 1e-16 / h ~ 1e-10 relative to the loss, so a correct gradient agrees to ~1e-8 relative
in norm; we require 1e-6 (the issue's bound), far below what a wrong formula gives (~1e-1).
"""
import numpy as np
import pytest

import annfast as af


def rel_err(a, b):
    a, b = np.ravel(a), np.ravel(b)
    den = max(np.linalg.norm(a), np.linalg.norm(b), 1e-30)
    return float(np.linalg.norm(a - b) / den)


def _loss(model, X, y, training):
    if training:
        return model.gradients(X, y, training=True, return_loss=True)[0]
    loss = model.evaluate(X, y)
    return loss[0] if isinstance(loss, list) else loss     # [loss, per output..., metrics...]


def fd_param_check(model, X, y, training=False, h=1e-6, max_entries=40, seed=0, tol=1e-6):
    """Analytic gradients of every trainable parameter against central differences on up to
    max_entries entries per array (chosen at random). Returns the worst relative error."""
    rng = np.random.default_rng(seed)
    grads = model.gradients(X, y, training=training)
    views = [w for layer in model.layers for w in layer.trainable_weights]
    assert len(views) == len(grads)
    worst = 0.0
    for view, g in zip(views, grads):
        flat = view.reshape(-1)
        idx = rng.choice(flat.size, size=min(max_entries, flat.size), replace=False)
        num = np.empty(idx.size)
        for k, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + h
            lp = _loss(model, X, y, training)
            flat[i] = old - h
            lm = _loss(model, X, y, training)
            flat[i] = old
            num[k] = (lp - lm) / (2 * h)
        err = rel_err(g.reshape(-1)[idx], num)
        worst = max(worst, err)
        assert err < tol, f"parameter gradient off: relative error {err:.3g}"
    return worst


def fd_input_check(model, X, y, h=1e-6, max_entries=40, seed=0, tol=1e-6):
    """dLoss/dX (training-mode loss, X one batch) against central differences."""
    rng = np.random.default_rng(seed)
    xs = X if isinstance(X, (list, tuple)) else [X]
    dxs = model.input_gradients(X, y)
    worst = 0.0
    for k, (x, dx) in enumerate(zip(xs, dxs)):
        if dx is None:
            continue
        flat = x.reshape(-1)
        idx = rng.choice(flat.size, size=min(max_entries, flat.size), replace=False)
        num = np.empty(idx.size)
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + h
            lp = _loss(model, X, y, True)
            flat[i] = old - h
            lm = _loss(model, X, y, True)
            flat[i] = old
            num[j] = (lp - lm) / (2 * h)
        err = rel_err(dx.reshape(-1)[idx], num)
        worst = max(worst, err)
        assert err < tol, f"input {k} gradient off: relative error {err:.3g}"
    return worst


def train_on_threads(make_model, X, y, threads, epochs=2, batch_size=16):
    """Weights after training a fresh model on the given number of threads."""
    before = af.get_num_threads()
    af.set_num_threads(threads)
    try:
        model = make_model()
        model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0)
        return model.get_weights(), model.predict(X)
    finally:
        af.set_num_threads(before)


def assert_threads_bitwise(make_model, X, y, **kw):
    w1, p1 = train_on_threads(make_model, X, y, 1, **kw)
    w2, p2 = train_on_threads(make_model, X, y, 2, **kw)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(p1 if isinstance(p1, list) else [p1], p2 if isinstance(p2, list) else [p2]):
        np.testing.assert_array_equal(a, b)


def assert_dropout_setting_used(model, layer, X, Y, rates=("dropout",)):
    """Assigning a dropout rate after training is checked (a bad value is a clear ValueError,
    the old value kept) and used by the next fit; setting it back gives the first result again."""
    def epoch(**rate):
        for k, v in rate.items():
            setattr(layer, k, v)
        model.set_weights(w)
        model.fit(X, Y, epochs=1, batch_size=4, shuffle=False, verbose=0)
        return model.get_weights()

    w = model.get_weights()
    for name in rates:
        with pytest.raises(ValueError, match=name):
            setattr(layer, name, 1.0)
        assert getattr(layer, name) == 0.0
        base = epoch(**{name: 0.0})
        dropped = epoch(**{name: 0.5})
        again = epoch(**{name: 0.0})
        assert any(not np.array_equal(a, b) for a, b in zip(base, dropped)), name
        assert all(np.array_equal(a, b) for a, b in zip(base, again)), name
