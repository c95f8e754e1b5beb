"""Optimiser epsilon that the model's dtype cannot hold (issue 20, item 3).

Adam(0.01, epsilon=1e-50) in a float32 model stored eps as 0.0f, so every weight with an exactly
zero gradient became 0 / 0 = NaN on the first step (PyTorch and Keras do the same, silently).
annfast refuses such a value with a ValueError naming the optimiser, the value and the dtype's
smallest normal number (a subnormal eps would also be flushed to zero where denormals are),
before anything changes; values the dtype holds train as before. Checked for the four
optimisers that use epsilon (and AdamW), float32 and float64 models, on every ISA path.
"""
import warnings

import numpy as np
import pytest

import annfast as af
from annfast import _core, optimizers

EPS_OPTIMISERS = {"Adagrad": lambda e: optimizers.Adagrad(0.05, epsilon=e),
                  "RMSprop": lambda e: optimizers.RMSprop(0.01, epsilon=e),
                  "Adadelta": lambda e: optimizers.Adadelta(1.0, epsilon=e),
                  "Adam": lambda e: optimizers.Adam(0.01, epsilon=e),
                  "AdamW": lambda e: optimizers.AdamW(0.01, epsilon=e)}
TINY = {"float32": float(np.finfo(np.float32).tiny), "float64": float(np.finfo(np.float64).tiny)}
TOO_SMALL = {"float32": [1e-50, 1e-39, float(np.finfo(np.float32).smallest_subnormal)],
             "float64": [1e-320, float(np.finfo(np.float64).smallest_subnormal)]}


def data(seed=0):
    """Rows whose first feature is always 0, so the weights it feeds get exactly zero gradients
    (the elements that turned into 0 / 0)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(32, 3))
    X[:, 0] = 0.0
    return X, X[:, 1:2] - 2 * X[:, 2:3]


def model(dtype, opt):
    m = af.Sequential([af.Dense(4, activation="tanh"), af.Dense(1)], input_dim=3, dtype=dtype, seed=1)
    m.compile("mse", opt)
    return m


def refused(exc, name, eps, dtype):
    """The message names the optimiser, the value, the dtype and its smallest normal number."""
    msg = str(exc.value)
    for part in (name, repr(eps), dtype, str(np.finfo(dtype).tiny)):
        assert part in msg, (part, msg)


@pytest.mark.parametrize("name", sorted(EPS_OPTIMISERS))
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_epsilon_below_smallest_normal_is_refused(isa, name, dtype):
    X, y = data()
    for eps in TOO_SMALL[dtype]:
        m = af.Sequential([af.Dense(4, activation="tanh"), af.Dense(1)], input_dim=3, dtype=dtype, seed=1)
        with pytest.raises(ValueError) as exc:
            m.compile("mse", EPS_OPTIMISERS[name](eps))
        refused(exc, name, eps, dtype)
        assert m.loss is None  # the rejected compile left the model uncompiled


@pytest.mark.parametrize("name", sorted(EPS_OPTIMISERS))
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_epsilon_changed_after_compile_is_refused_by_fit(isa, name, dtype):
    """The optimiser object is the user's to edit: fit checks again, before any change."""
    X, y = data()
    m = model(dtype, EPS_OPTIMISERS[name](1e-7))
    m.fit(X, y, epochs=1, batch_size=8, verbose=0)
    before, state = m.get_weights(), m.optimizer_state()
    m.optimizer.epsilon = TOO_SMALL[dtype][0]
    with pytest.raises(ValueError) as exc:
        m.fit(X, y, epochs=2, batch_size=8, verbose=0)
    refused(exc, name, TOO_SMALL[dtype][0], dtype)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.optimizer_state()["state"], state["state"])
    assert m.optimizer_state()["step"] == state["step"]


@pytest.mark.parametrize("name", sorted(EPS_OPTIMISERS))
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_smallest_normal_epsilon_trains_finite(isa, name, dtype):
    """eps = the dtype's smallest normal (and 1e-50 in float64) is accepted and keeps every
    weight finite, the zero-gradient ones unchanged."""
    X, y = data()
    for eps in (TINY[dtype], 1e-50) if dtype == "float64" else (TINY[dtype],):
        m = model(dtype, EPS_OPTIMISERS[name](eps))
        w0 = m.layers[0].kernel[0].copy()
        m.fit(X, y, epochs=3, batch_size=8, verbose=0)
        for w in m.get_weights():
            assert np.isfinite(w).all()
        if name != "AdamW":  # decoupled decay moves every weight
            np.testing.assert_array_equal(m.layers[0].kernel[0], w0)


@pytest.mark.parametrize("name", sorted(EPS_OPTIMISERS))
def test_float64_model_matches_torch_with_tiny_epsilon(name):
    """A float64 model with eps=1e-50 takes torch.optim's steps (eps far below every sqrt(v))."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed (optional oracle)")
    opt = EPS_OPTIMISERS[name](1e-50)
    rng = np.random.default_rng(2)
    p0, grads = rng.normal(size=20), rng.normal(size=(3, 20))
    grads[:, :5] = 0.0
    p, state = p0.copy(), np.zeros(opt.state_slots * 20)
    tp = torch.nn.Parameter(torch.tensor(p0))
    cls = {"Adagrad": torch.optim.Adagrad, "RMSprop": torch.optim.RMSprop,
           "Adadelta": torch.optim.Adadelta, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}[name]
    kw = {"lr": opt.lr_at(0), "eps": 1e-50}
    if name == "RMSprop":
        kw["alpha"] = opt.rho
    if name == "Adadelta":
        kw["rho"] = opt.rho
    if name == "AdamW":
        kw["weight_decay"] = opt.weight_decay
    topt = cls([tp], **kw)
    for t, g in enumerate(grads, start=1):
        opt.update(p, g, state, t)
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-15)
    if name != "AdamW":  # zero gradients, no decay: unchanged (no 0 / 0)
        np.testing.assert_array_equal(p[:5], p0[:5])


@pytest.mark.parametrize("name", sorted(EPS_OPTIMISERS))
def test_update_on_flat_arrays_checks_their_dtype(name):
    opt = EPS_OPTIMISERS[name](1e-50)
    p32 = np.ones(4, np.float32)
    with pytest.raises(ValueError) as exc:
        opt.update(p32, np.zeros(4, np.float32), np.zeros(opt.state_slots * 4, np.float32), 1)
    refused(exc, name, 1e-50, "float32")
    np.testing.assert_array_equal(p32, 1.0)
    p64 = np.ones(4)
    opt.update(p64, np.zeros(4), np.zeros(opt.state_slots * 4), 1)
    assert np.isfinite(p64).all()


@pytest.mark.parametrize("kind", ("adagrad", "rmsprop", "adadelta", "adam"))
def test_core_boundary_refuses_underflowing_epsilon(kind):
    """The C boundary checks too (configs built by hand, or by code that skips the classes)."""
    cfg = {"kind": kind, "lr": 0.01, "eps": 1e-50}
    slots = _core.optim_slots(cfg)
    p = np.ones(4, np.float32)
    with pytest.raises(ValueError) as exc:
        _core.optim_step(cfg, p, np.zeros(4, np.float32), np.zeros(slots * 4, np.float32), 1)
    for part in (kind, "1e-50", "float32", str(np.finfo(np.float32).tiny)):
        assert part in str(exc.value), (part, str(exc.value))
    np.testing.assert_array_equal(p, 1.0)
    p = np.ones(4)
    _core.optim_step(cfg, p, np.zeros(4), np.zeros(slots * 4), 1)  # float64 holds 1e-50
    np.testing.assert_array_equal(p, 1.0)


def test_sgd_ignores_epsilon():
    X, y = data()
    m = model("float32", optimizers.SGD(0.1, momentum=0.9))
    m.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())


def test_sklearn_estimator_refuses_underflowing_epsilon():
    pytest.importorskip("sklearn", reason="scikit-learn not installed (optional extra)")
    from annfast.sklearn import MLPRegressor
    X, y = data()
    est = MLPRegressor(hidden_layer_sizes=(4,), epsilon=1e-50, max_iter=3, random_state=0)
    with pytest.raises(ValueError, match="Adam.*1e-50.*float32"):
        est.fit(X, y.ravel())  # the estimators train in float32 by default
    assert not hasattr(est, "coefs_")  # the rejected fit left the estimator unfitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3 iterations: ConvergenceWarning
        est.set_params(dtype="float64").fit(X, y.ravel())  # 1e-50 is a normal float64
    assert all(np.isfinite(c).all() for c in est.coefs_)
