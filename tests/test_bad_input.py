"""Bad input at every public entry point: a clear ValueError/TypeError/MemoryError naming the
problem, never a crash, hang or garbage, and the model unchanged afterwards (issue: reliability).
The per-class suites (test_dropin, test_gemm, test_model, test_optimizers, test_saving, test_cli,
test_sklearn) hold more; this table is the cross-cutting sweep and its case count is reported."""
import numpy as np
import pytest

import annfast as af

RNG = np.random.default_rng(0)
X3 = RNG.normal(size=(6, 3))
Y2 = np.eye(2)[[0, 1, 0, 1, 1, 0]]


def model(dtype="float32", **kw):
    m = af.Sequential([af.Dense(5, activation="relu"), af.BatchNormalization(), af.Dropout(0.1),
                       af.Dense(2, activation="softmax")], input_dim=3, dtype=dtype, seed=0)
    m.compile(loss="categorical_crossentropy", optimizer=af.optimizers.Adam(0.01), **kw)
    m.fit(X3, Y2, epochs=1, batch_size=3, verbose=0)  # optimiser state is non-trivial
    return m


def state(m):
    st = m.optimizer_state()
    return [w.copy() for w in m.get_weights()] + [np.array(st["state"], copy=True), st["step"]]


def same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def nan_at(a, idx=(0, 0), value=np.nan):
    a = np.array(a, dtype=float, copy=True)
    a[idx] = value
    return a


def readonly(a):
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


# ---- matmul -------------------------------------------------------------------------------------
A = RNG.normal(size=(4, 3))
B = RNG.normal(size=(3, 5))
MATMUL = [
    ("3-D a", lambda: af.matmul(np.ones((2, 2, 2)), B), ValueError, "2-D"),
    ("0-D a", lambda: af.matmul(np.float64(2.0), B), ValueError, "a"),
    ("inner mismatch", lambda: af.matmul(A, np.ones((4, 5))), ValueError, "3"),
    ("trans inner mismatch", lambda: af.matmul(A, B, trans_a=True), ValueError, "4"),
    ("object a", lambda: af.matmul(np.array([[1, None]], dtype=object), B[:2]), TypeError, "dtype"),
    ("str a", lambda: af.matmul(np.array([["a", "b"]]), B[:2]), TypeError, "dtype"),
    ("complex b", lambda: af.matmul(A, B.astype(complex)), TypeError, "dtype"),
    ("None b", lambda: af.matmul(A, None), TypeError, "b"),
    ("out wrong shape", lambda: af.matmul(A, B, out=np.empty((5, 4))), ValueError, "out"),
    ("out wrong dtype", lambda: af.matmul(A, B, out=np.empty((4, 5), np.float32)), (ValueError, TypeError), "out"),
    ("out not contiguous", lambda: af.matmul(A, B, out=np.empty((4, 10))[:, ::2]), ValueError, "out"),
    ("out read-only", lambda: af.matmul(A, B, out=readonly(np.empty((4, 5)))), ValueError, "out"),
    ("out aliases a", lambda: (lambda s: af.matmul(s, np.eye(4), out=s))(np.ones((4, 4))), ValueError, "overlap"),
    ("out not array", lambda: af.matmul(A, B, out=[[0.0] * 5] * 4), TypeError, "out"),
    ("trans flag not bool", lambda: af.matmul(A, B, trans_a="yes"), TypeError, "trans_a"),
    ("NaN in a", lambda: af.matmul(nan_at(A), B), ValueError, "NaN"),
    ("inf in strided b", lambda: af.matmul(A, nan_at(np.repeat(B, 2, axis=1), (1, 2), np.inf)[:, ::2]), ValueError, "inf"),
    ("NaN in a list", lambda: af.matmul([[1.0, float("nan"), 0.0]], B), ValueError, "NaN"),
    ("check_finite not bool", lambda: af.matmul(A, B, check_finite=None), TypeError, "check_finite"),
]


def test_matmul_check_finite_false_propagates_like_numpy():
    a = nan_at(A)
    got = af.matmul(a, B, check_finite=False)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(a @ B))


@pytest.mark.parametrize("desc,call,exc,frag", MATMUL, ids=[c[0] for c in MATMUL])
def test_matmul_bad_input(desc, call, exc, frag):
    with pytest.raises(exc, match=frag or None):
        call()


# ---- layers, Sequential construction and compile ------------------------------------------------
CONSTRUCT = [
    ("Dense units 0", lambda: af.Dense(0), ValueError, "units"),
    ("Dense units negative", lambda: af.Dense(-3), ValueError, "units"),
    ("Dense units float", lambda: af.Dense(2.5), TypeError, "units"),
    ("Dense units str", lambda: af.Dense("4"), TypeError, "units"),
    ("Dense units bool", lambda: af.Dense(True), TypeError, "units"),
    ("Dense unknown activation", lambda: af.Dense(3, activation="swishy"), ValueError, "activation"),
    ("Dense activation type", lambda: af.Dense(3, activation=3), (TypeError, ValueError), "activation"),
    ("Dense unknown initializer", lambda: af.Dense(3, kernel_initializer="magic"), ValueError, "initializer"),
    ("Dropout rate 1", lambda: af.Dropout(1.0), ValueError, "rate"),
    ("Dropout rate negative", lambda: af.Dropout(-0.1), ValueError, "rate"),
    ("Dropout rate NaN", lambda: af.Dropout(float("nan")), ValueError, "rate"),
    ("BatchNorm momentum > 1", lambda: af.BatchNormalization(momentum=1.5), ValueError, "momentum"),
    ("BatchNorm epsilon 0", lambda: af.BatchNormalization(epsilon=0.0), ValueError, "epsilon"),
    ("Sequential layer not a layer", lambda: af.Sequential([1]), TypeError, "layers"),
    ("Sequential dtype int", lambda: af.Sequential([af.Dense(1)], dtype="int32"), ValueError, "dtype"),
    ("Sequential seed negative", lambda: af.Sequential([af.Dense(1)], seed=-1), ValueError, "seed"),
    ("Sequential seed float", lambda: af.Sequential([af.Dense(1)], seed=1.5), TypeError, "seed"),
    ("Sequential input_dim 0", lambda: af.Sequential([af.Dense(1)], input_dim=0), ValueError, "input_dim"),
    ("absurd layer size", lambda: af.Sequential([af.Dense(10 ** 12)], input_dim=10 ** 6), (MemoryError, ValueError), ""),
    ("absurd tutorial size", lambda: af.NeuralNetwork(10 ** 7, 10 ** 7, 1), (MemoryError, ValueError), ""),
    ("compile unknown loss", lambda: af.Sequential([af.Dense(1)], input_dim=2).compile("mystery"), ValueError, "loss"),
    ("compile unknown optimizer", lambda: af.Sequential([af.Dense(1)], input_dim=2).compile("mse", "sgdd"), ValueError, "optimizer"),
    ("compile unknown metric", lambda: af.Sequential([af.Dense(1)], input_dim=2).compile("mse", metrics=["f7"]), ValueError, "metric"),
    ("SGD negative lr", lambda: af.optimizers.SGD(learning_rate=-0.1), ValueError, "learning_rate"),
    ("SGD NaN lr", lambda: af.optimizers.SGD(learning_rate=float("nan")), ValueError, "learning_rate"),
    ("SGD str lr", lambda: af.optimizers.SGD(learning_rate="0.1"), TypeError, "learning_rate"),
    ("SGD momentum 1", lambda: af.optimizers.SGD(momentum=1.0), ValueError, "momentum"),
    ("Adam beta_1 1", lambda: af.optimizers.Adam(beta_1=1.0), ValueError, "beta_1"),
    ("Adam epsilon negative", lambda: af.optimizers.Adam(epsilon=-1e-8), ValueError, "epsilon"),
    ("RMSprop rho > 1", lambda: af.optimizers.RMSprop(rho=1.5), ValueError, "rho"),
    ("Adadelta rho negative", lambda: af.optimizers.Adadelta(rho=-0.5), ValueError, "rho"),
    ("Adagrad negative accumulator", lambda: af.optimizers.Adagrad(initial_accumulator_value=-1), ValueError, "initial_accumulator"),
    ("clipnorm negative", lambda: af.optimizers.SGD(clipnorm=-1.0), ValueError, "clipnorm"),
    ("clipvalue zero", lambda: af.optimizers.SGD(clipvalue=0.0), ValueError, "clipvalue"),
    ("initializer unknown", lambda: af.initializers.get("nope"), ValueError, "initializer"),
]


@pytest.mark.parametrize("desc,call,exc,frag", CONSTRUCT, ids=[c[0] for c in CONSTRUCT])
def test_construction_bad_input(desc, call, exc, frag):
    with pytest.raises(exc, match=frag or None):
        call()


# ---- model calls: rejected and the model unchanged ----------------------------------------------
def _set_layer_weights(m, value):
    m.layers[0].kernel = value


MODEL_CALLS = [
    ("fit X NaN", lambda m: m.fit(nan_at(X3), Y2, verbose=0), ValueError, "NaN"),
    ("fit X inf", lambda m: m.fit(nan_at(X3, value=np.inf), Y2, verbose=0), ValueError, "inf"),
    ("fit y NaN", lambda m: m.fit(X3, nan_at(Y2), verbose=0), ValueError, "NaN"),
    ("fit X wrong columns", lambda m: m.fit(np.ones((6, 4)), Y2, verbose=0), ValueError, "3"),
    ("fit X 3-D", lambda m: m.fit(np.ones((6, 3, 1)), Y2, verbose=0), ValueError, "2-D"),
    ("fit X 1-D", lambda m: m.fit(np.ones(6), Y2, verbose=0), ValueError, "2-D"),
    ("fit X empty", lambda m: m.fit(np.ones((0, 3)), np.ones((0, 2)), verbose=0), ValueError, "row"),
    ("fit rows mismatch", lambda m: m.fit(X3, Y2[:5], verbose=0), ValueError, "rows"),
    ("fit y wrong columns", lambda m: m.fit(X3, np.ones((6, 3)), verbose=0), ValueError, "y"),
    ("fit X strings", lambda m: m.fit(np.array([["a"] * 3] * 6), Y2, verbose=0), TypeError, "X"),
    ("fit X complex", lambda m: m.fit(X3.astype(complex), Y2, verbose=0), TypeError, "X"),
    ("fit X object None", lambda m: m.fit(np.array([[None] * 3] * 6, dtype=object), Y2, verbose=0), TypeError, "X"),
    ("fit epochs negative", lambda m: m.fit(X3, Y2, epochs=-1, verbose=0), ValueError, "epochs"),
    ("fit epochs float", lambda m: m.fit(X3, Y2, epochs=1.5, verbose=0), TypeError, "epochs"),
    ("fit batch 0", lambda m: m.fit(X3, Y2, batch_size=0, verbose=0), ValueError, "batch_size"),
    ("fit batch str", lambda m: m.fit(X3, Y2, batch_size="8", verbose=0), TypeError, "batch_size"),
    ("fit validation_split 1", lambda m: m.fit(X3, Y2, validation_split=1.0, verbose=0), ValueError, "validation_split"),
    ("fit validation_data shape", lambda m: m.fit(X3, Y2, validation_data=(np.ones((2, 4)), Y2[:2]), verbose=0), ValueError, ""),
    ("fit validation_data not pair", lambda m: m.fit(X3, Y2, validation_data=X3, verbose=0), ValueError, "validation_data"),
    ("fit verbose 5", lambda m: m.fit(X3, Y2, verbose=5), ValueError, "verbose"),
    ("fit callbacks not callbacks", lambda m: m.fit(X3, Y2, callbacks=[1], verbose=0), TypeError, "callback"),
    ("predict wrong columns", lambda m: m.predict(np.ones((2, 5))), ValueError, "3"),
    ("predict NaN", lambda m: m.predict(nan_at(X3)), ValueError, "NaN"),
    ("predict bool", lambda m: m.predict(np.ones((2, 3), bool)), TypeError, "dtype"),
    ("evaluate rows mismatch", lambda m: m.evaluate(X3, Y2[:2]), ValueError, "rows"),
    ("gradients NaN", lambda m: m.gradients(X3, nan_at(Y2)), ValueError, "NaN"),
    ("set_weights wrong count", lambda m: m.set_weights(m.get_weights()[:-1]), ValueError, "weights"),
    ("set_weights wrong shape", lambda m: m.set_weights([np.ones((9, 9))] + m.get_weights()[1:]), ValueError, "shape"),
    ("set_weights NaN", lambda m: m.set_weights([nan_at(m.get_weights()[0])] + m.get_weights()[1:]), ValueError, "NaN"),
    ("layer.weights wrong shape", lambda m: _set_layer_weights(m, np.ones((2, 2))), ValueError, "shape"),
    ("layer.weights inf", lambda m: _set_layer_weights(m, nan_at(m.layers[0].kernel, value=np.inf)), ValueError, "inf"),
    ("layer.weights strings", lambda m: _set_layer_weights(m, np.full((3, 5), "x")), TypeError, ""),
    ("save to a directory", lambda m: m.save("/"), (ValueError, OSError), ""),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("desc,call,exc,frag", MODEL_CALLS, ids=[c[0] for c in MODEL_CALLS])
def test_model_bad_input_leaves_model_unchanged(desc, call, exc, frag, dtype):
    m = model(dtype)
    before = state(m)
    with pytest.raises(exc, match=frag or None):
        call(m)
    same(state(m), before)
    m.predict(X3)  # still usable


# ---- save / load ----------------------------------------------------------------------------------
def test_load_rejects_garbage_files(tmp_path):
    cases = {"empty.npz": b"", "text.npz": b"hello", "zip-not-model.npz": None}
    np.savez(tmp_path / "zip-not-model.npz", a=np.ones(3))
    for name, data in cases.items():
        p = tmp_path / name
        if data is not None:
            p.write_bytes(data)
        with pytest.raises(ValueError):
            af.load_model(str(p))
    with pytest.raises((FileNotFoundError, ValueError)):
        af.load_model(str(tmp_path / "missing.npz"))


def test_load_rejects_truncated_model_file(tmp_path):
    m = model()
    p = tmp_path / "m.npz"
    m.save(str(p))
    data = p.read_bytes()
    for cut in (len(data) // 3, len(data) - 10):
        q = tmp_path / f"cut{cut}.npz"
        q.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            af.load_model(str(q))


def test_case_count_reported(capsys):
    n = len(MATMUL) + len(CONSTRUCT) + 2 * len(MODEL_CALLS) + 2
    with capsys.disabled():
        print(f"\n[bad-input sweep] {n} cases in this file")
    assert n > 100
