"""Arrays in byte orders and layouts the C kernels cannot read directly (issue 20, item 1).

Every public entry point that hands arrays to C must give the same answer for '>f8' / '>f4'
(byte-swapped), unaligned (np.frombuffer at an odd offset), strided, Fortran-ordered and
negatively strided inputs as for the same values in a native C-contiguous array: the fast paths
check byte order and alignment, not only the type number, and convert anything else. float32
data stays float32 whatever its byte order (as NumPy's results do). The low-level _core
functions either convert or refuse with a clear error; they never read swapped or misaligned
memory as native numbers.
"""
import contextlib
import io
import warnings

import numpy as np
import pytest

import annfast as af
from annfast import _core, activations, losses, metrics, optimizers
from hostile_arrays import LAYOUTS, hostile, swapped, unaligned

DTYPES = (np.float32, np.float64)
ROUNDTRIP = ("big_endian", "unaligned", "unaligned_big_endian")  # converted to identical arrays


def same(got, want):
    """Equal values (NaN in the same places) and the same native dtype."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.dtype.isnative, (got.dtype, want.dtype)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def rand(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


# ---------------------------------------------------------------- annfast.matmul
def matmul_bound(a, b, ta=False, tb=False):
    """k * eps bound of a length-k dot product (see tests/test_gemm.py)."""
    A = np.asarray(a.T if ta else a, dtype=np.float64)
    B = np.asarray(b.T if tb else b, dtype=np.float64)
    eps = np.finfo(np.result_type(a.dtype, b.dtype)).eps
    return A @ B, 2 * (A.shape[-1] + 2) * eps * (np.abs(A) @ np.abs(B)) + 1e-300


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_any_layout_equals_numpy(isa, layout, dtype):
    """Tiny (direct loop), one-row (GEMV) and packed products, each operand alone and both in
    the hostile layout, with and without transposes."""
    rng = np.random.default_rng(1)
    for m, k, n in [(2, 3, 3), (1, 70, 33), (64, 40, 48)]:
        for ta, tb in [(False, False), (True, True)]:
            a = rand(rng, (k, m) if ta else (m, k), dtype)
            b = rand(rng, (n, k) if tb else (k, n), dtype)
            want = af.matmul(a, b, trans_a=ta, trans_b=tb)
            ref, bound = matmul_bound(a, b, ta, tb)
            for ha, hb in [(hostile(a, layout), b), (a, hostile(b, layout)),
                           (hostile(a, layout), hostile(b, layout))]:
                got = af.matmul(ha, hb, trans_a=ta, trans_b=tb)
                assert got.dtype == np.dtype(dtype) and got.dtype.isnative
                assert np.all(np.abs(got - ref) <= bound), (layout, m, k, n, ta)
                if layout in ROUNDTRIP:
                    same(got, want)


def test_matmul_issue_example_big_endian():
    a = np.arange(1.0, 7.0).reshape(2, 3).astype(">f8")
    same(af.matmul(a, np.eye(3, dtype=">f8")), np.arange(1.0, 7.0).reshape(2, 3))
    same(af.matmul(a, np.eye(3)), np.arange(1.0, 7.0).reshape(2, 3))


@pytest.mark.parametrize("layout", ROUNDTRIP)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_vectors_and_out_any_layout(isa, layout, dtype):
    """1-D operands, and `out` arrays that are byte-swapped or misaligned (NumPy accepts both and
    stores the values in out's own representation)."""
    rng = np.random.default_rng(2)
    a, b, v = rand(rng, (30, 20), dtype), rand(rng, (20, 25), dtype), rand(rng, 20, dtype)
    same(af.matmul(hostile(v, layout), b), af.matmul(v, b))
    same(af.matmul(a, hostile(v, layout)), af.matmul(a, v))
    assert af.matmul(hostile(v, layout), hostile(v, layout)) == af.matmul(v, v)
    want = af.matmul(a, b)
    out = hostile(np.zeros((30, 25), dtype), layout)
    assert af.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, want)
    out = hostile(np.zeros((30, 25), dtype), layout)
    assert af.matmul(hostile(a, layout), b, out=out) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("layout", ROUNDTRIP)
def test_matmul_finite_check_sees_swapped_nan(layout):
    """The NaN check reads values, not misread bytes: NaN in a '>f8' operand is refused, and a
    finite value whose swapped bytes look like NaN is accepted."""
    a = np.ones((3, 3))
    a[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        af.matmul(hostile(a, layout), np.eye(3))
    tricky = np.array([[np.nan]]).byteswap()  # a finite subnormal whose bytes, swapped, are NaN
    assert np.isfinite(tricky).all()
    # accepted; the product is the subnormal flushed to zero (annfast computes with FTZ/DAZ,
    # docs/threads.md), where NumPy keeps it
    same(af.matmul(hostile(tricky, layout), np.ones((1, 1))), np.zeros((1, 1)))
    big = np.array([[1e-300]]) * 1e10     # a normal value: read correctly whatever the layout
    same(af.matmul(hostile(big, layout), np.ones((1, 1))), big @ np.ones((1, 1)))


# ---------------------------------------------------------------- the NaN check itself
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_all_finite_any_layout(layout, dtype, bad):
    rng = np.random.default_rng(3)
    for shape in [(37,), (5, 9), (1, 1), (64, 3)]:
        for pos in (0, -1):
            x = rand(rng, shape, dtype)
            if bad is not None:
                x.flat[pos] = bad
            assert _core.all_finite(hostile(x, layout)) == bool(np.isfinite(x).all()), (shape, pos)
    # finite values whose swapped bytes are NaN/inf patterns
    tricky = np.array([np.nan, np.inf, 1.0], dtype).byteswap()
    assert np.isfinite(tricky).all()
    assert _core.all_finite(hostile(tricky, layout)) is True


# ---------------------------------------------------------------- activations and losses
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_any_layout(isa, layout, dtype):
    rng = np.random.default_rng(4)
    x, dy = rand(rng, (6, 37), dtype, 3.0), rand(rng, (6, 37), dtype)
    for name in activations.NAMES:
        same(activations.apply(name, hostile(x, layout)), activations.apply(name, x))
        same(activations.derivative(name, hostile(x, layout), dy=hostile(dy, layout)),
             activations.derivative(name, x, dy=dy))
    same(activations.relu(hostile(x[0], layout)), activations.relu(x[0]))
    same(activations.leaky_relu(hostile(x, layout), 0.2), activations.leaky_relu(x, 0.2))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_any_layout(isa, layout, dtype):
    rng = np.random.default_rng(5)
    n, k = 9, 4
    p = rng.uniform(0.05, 0.95, (n, k)).astype(dtype)
    labels = rng.integers(0, k, n)
    onehot = np.eye(k, dtype=dtype)[labels]
    for name in losses.NAMES:
        y = labels if name == "sparse_categorical_crossentropy" else onehot
        for logits in (False, True) if name in losses.FROM_LOGITS_OK else (False,):
            want = losses.loss_and_gradient(name, y, p, from_logits=logits)
            got = losses.loss_and_gradient(name, hostile(y, layout), hostile(p, layout),
                                           from_logits=logits)
            same(got[0], want[0])
            same(got[1], want[1])
    assert metrics.rmse(hostile(onehot, layout), hostile(p, layout)) == metrics.rmse(onehot, p)
    assert metrics.accuracy(hostile(labels, layout), hostile(p, layout)) == metrics.accuracy(labels, p)


# ---------------------------------------------------------------- optimisers on flat arrays
OPTIMISERS = [lambda: optimizers.SGD(0.1, momentum=0.9, clipnorm=0.5),
              lambda: optimizers.Adagrad(0.1, clipvalue=0.3),
              lambda: optimizers.RMSprop(0.01, momentum=0.5),
              lambda: optimizers.Adadelta(1.0),
              lambda: optimizers.Adam(0.01, weight_decay=0.1)]


@pytest.mark.parametrize("layout", ("big_endian", "unaligned", "unaligned_big_endian", "strided",
                                    "reversed"))
@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_update_any_layout(isa, layout, dtype):
    """Optimizer.update writes into the caller's param and state arrays whatever their layout
    (as a NumPy in-place operation would) and reads grad in any layout."""
    rng = np.random.default_rng(6)
    n = 70
    for make in OPTIMISERS:
        opt = make()
        p0, g = rand(rng, n, dtype), rand(rng, n, dtype)
        p_ref, s_ref = p0.copy(), np.zeros(opt.state_slots * n, dtype)
        p_h, s_h = hostile(p0, layout), hostile(np.zeros(opt.state_slots * n, dtype), layout)
        for t in (1, 2, 3):
            opt.update(p_ref, g, s_ref, t)
            make().update(p_h, hostile(g, layout), s_h, t)
        assert p_h.dtype.newbyteorder("=") == np.dtype(dtype)
        np.testing.assert_array_equal(p_h, p_ref)
        np.testing.assert_array_equal(s_h, s_ref)


# ---------------------------------------------------------------- the tutorial class
def quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tutorial_network_any_layout(isa, layout):
    """X, y and the weight attributes in hostile layouts: same outputs and the same trained
    weights as native arrays, written back into the caller's weight arrays."""
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(12, 3)), rng.uniform(size=(12, 2))
    np.random.seed(0)
    ref = af.NeuralNetwork(3, 5, 2)
    np.random.seed(0)
    nn = af.NeuralNetwork(3, 5, 2)
    for name in ("weights_input_hidden", "weights_hidden_output", "bias_hidden", "bias_output"):
        value = getattr(nn, name) + (0.1 if "bias" in name else 0.0)
        setattr(ref, name, value.copy())
        setattr(nn, name, hostile(value, layout))
    same(nn.feedforward(hostile(X, layout)), ref.feedforward(X))
    nn.backward(hostile(X, layout), hostile(y, layout), 0.5)
    ref.backward(X, y, 0.5)
    quiet(nn.train, hostile(X, layout), hostile(y, layout), 30, 0.1)
    quiet(ref.train, X, y, 30, 0.1)
    for name in ("weights_input_hidden", "weights_hidden_output", "bias_hidden", "bias_output"):
        np.testing.assert_array_equal(getattr(nn, name), getattr(ref, name))
    same(nn.feedforward(X), ref.feedforward(X))


# ---------------------------------------------------------------- Sequential and the engine
def small_model(dtype, seed=3):
    m = af.Sequential([af.Dense(8, activation="relu"), af.BatchNormalization(),
                       af.Dense(3, activation="softmax")], input_dim=5, dtype=dtype, seed=seed)
    m.compile("categorical_crossentropy", optimizers.Adam(0.01))
    return m


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_sequential_any_layout(isa, layout, dtype):
    """fit, predict, evaluate, gradients, set_weights and the layer attribute setters."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 5))
    Y = np.eye(3)[rng.integers(0, 3, 40)]
    ref, m = small_model(dtype), small_model(dtype)
    h_ref = ref.fit(X, Y, epochs=2, batch_size=16, verbose=0, shuffle=False, validation_data=(X, Y))
    h = m.fit(hostile(X, layout), hostile(Y, layout), epochs=2, batch_size=16, verbose=0,
              shuffle=False, validation_data=(hostile(X, layout), hostile(Y, layout)))
    assert h.history == h_ref.history
    for a, b in zip(m.get_weights(), ref.get_weights()):
        same(a, b)
    state = ref.optimizer_state()
    m.set_optimizer_state(dict(state, state=hostile(state["state"], layout)))
    same(m.optimizer_state()["state"], state["state"])
    same(m.predict(hostile(X, layout)), ref.predict(X))
    assert m.evaluate(hostile(X, layout), hostile(Y, layout)) == ref.evaluate(X, Y)
    for a, b in zip(m.gradients(hostile(X, layout), hostile(Y, layout)), ref.gradients(X, Y)):
        same(a, b)
    fresh = small_model(dtype, seed=9)
    fresh.set_weights([hostile(w.astype(np.float64), layout) for w in ref.get_weights()])
    same(fresh.predict(X), ref.predict(X))
    fresh = small_model(dtype, seed=9)
    for lf, lr in zip(fresh.layers, ref.layers):
        names = ("kernel", "bias") if isinstance(lr, af.Dense) else \
            ("gamma", "beta", "moving_mean", "moving_variance")
        for name in names:
            setattr(lf, name, hostile(getattr(lr, name).copy(), layout))
    same(fresh.predict(hostile(X, layout)), ref.predict(X))


@pytest.mark.parametrize("layout", ("big_endian", "unaligned", "strided", "fortran"))
def test_sklearn_estimators_any_layout(isa, layout):
    pytest.importorskip("sklearn", reason="scikit-learn not installed (optional extra)")
    from sklearn.exceptions import ConvergenceWarning
    from annfast.sklearn import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    r = X @ np.array([1.0, -2.0, 0.5, 0.0])
    for est, target in ((MLPClassifier, y), (MLPRegressor, r)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 5 iterations on purpose
            ref = est(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, target)
            got = est(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(
                hostile(X, layout), hostile(target, layout))
            got.partial_fit(hostile(X, layout), hostile(target, layout))
            ref.partial_fit(X, target)
        assert got.score(hostile(X, layout), hostile(target, layout)) == ref.score(X, target)
        if est is MLPClassifier:
            same(got.predict_proba(hostile(X, layout)), ref.predict_proba(X))
        # class labels keep the caller's label dtype (as in scikit-learn); values must match
        np.testing.assert_array_equal(got.predict(hostile(X, layout)), ref.predict(X))
        np.testing.assert_array_equal(got.predict(X), ref.predict(X))
        if est is MLPRegressor:
            same(got.predict(hostile(X, layout)), ref.predict(X))


# ---------------------------------------------------------------- the _core boundary itself
def core_calls(x, y, dtype):
    """(name, thunk) pairs handing x (and y, same shape) to each _core entry point that reads
    arrays; each returns a value to compare with the native call."""
    c = np.zeros((x.shape[0], x.shape[0]), dtype)
    yield "gemm", lambda: (_core.gemm(False, True, 1.0, x, y, 0.0, c), c.copy())[1]
    yield "act_forward", lambda: _core.act_forward("tanh", 0.0, x)
    yield "act_backward", lambda: _core.act_backward("tanh", 0.0, x, x, y)
    yield "loss_eval", lambda: _core.loss_eval("mse", False, x, y)[0]
    yield "batchnorm_forward", lambda: _core.batchnorm_forward(x)[0]
    yield "dropout_apply", lambda: _core.dropout_apply(x, 0.5, 1, 2)
    yield "l2_norm", lambda: _core.l2_norm(x.reshape(-1))
    yield "all_finite", lambda: _core.all_finite(x)
    if dtype == np.float64:  # the tutorial network is float64 only; x is its input X
        def tutorial():
            n = x.shape[0]
            outs = [np.empty((n, 4)), np.empty((n, 4)), np.empty((n, 2)), np.empty((n, 2))]
            _core.tut_forward(np.full((x.shape[1], 4), 0.1), np.zeros(4), np.ones((4, 2)),
                              np.zeros(2), x, *outs)
            return outs[-1]
        yield "tut_forward", tutorial


@pytest.mark.parametrize("layout", ROUNDTRIP)
@pytest.mark.parametrize("dtype", DTYPES)
def test_core_boundary_converts_or_refuses(isa, layout, dtype):
    """Each low-level entry point given swapped or misaligned arrays returns what it returns for
    native ones, or raises TypeError/ValueError saying why; never a misread result."""
    rng = np.random.default_rng(10)
    x, y = rand(rng, (6, 9), dtype), rand(rng, (6, 9), dtype)
    want = dict((name, f()) for name, f in core_calls(x, y, dtype))
    for name, f in core_calls(hostile(x, layout), hostile(y, layout), dtype):
        try:
            got = f()
        except (TypeError, ValueError) as exc:
            assert any(w in str(exc) for w in ("byte order", "aligned", "endian")), (name, str(exc))
            continue
        np.testing.assert_array_equal(got, want[name], err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_core_in_place_arguments_refuse_foreign_layouts(dtype):
    """Arguments C writes into cannot be converted behind the caller's back: refused clearly."""
    for bad in (swapped(np.zeros(8, dtype)), unaligned(np.zeros(8, dtype))):
        with pytest.raises((TypeError, ValueError), match="byte order|aligned"):
            _core.clip_value(bad, 1.0)
        with pytest.raises((TypeError, ValueError), match="byte order|aligned"):
            _core.optim_step({"kind": "sgd", "lr": 0.1}, bad, np.ones(8, dtype), np.zeros(0, dtype), 1)
    for c in (swapped(np.zeros((8, 8), dtype)), unaligned(np.zeros((8, 8), dtype))):
        with pytest.raises((TypeError, ValueError), match="byte order|aligned"):
            _core.gemm(False, False, 1.0, np.ones((8, 1), dtype), np.ones((1, 8), dtype), 0.0, c)
