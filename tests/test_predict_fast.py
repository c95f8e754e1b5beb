"""Model.predict's fast path (a ready ndarray for a one-input float model, checked in C by
GraphEngine.predict_fast) gives what the general path gives, and refuses what it refuses."""
import numpy as np
import pytest

import annfast as af


def _lstm_model(dtype, outputs=1):
    x = af.Input(shape=(6, 5))
    h = af.LSTM(16)(x)
    outs = [af.Dense(3, activation="softmax")(h)] + [af.Dense(2)(h) for _ in range(outputs - 1)]
    return af.Model(x, outs if outputs > 1 else outs[0], dtype=dtype, seed=3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_fast_path_same_bits_as_general_path(dtype, outputs):
    model = _lstm_model(dtype, outputs)
    rng = np.random.default_rng(0)
    for n in (1, 2, 300):            # 300 rows: more than one predict chunk
        X = rng.normal(size=(n, 6, 5)).astype(dtype)
        assert model._get_engine().predict_fast(X, 256) is not None      # the path is taken
        fast = model.predict(X)
        general = model.predict(X, batch_size=256)     # a batch_size takes the general path
        fast, general = (fast, general) if outputs > 1 else ([fast], [general])
        for a, b in zip(fast, general):
            assert a.dtype == np.dtype(dtype) and a.shape[0] == n
            np.testing.assert_array_equal(a, b)


def test_fast_path_refusals_and_conversions_as_general_path():
    model = _lstm_model("float32")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 6, 5)).astype(np.float32)
    ref = model.predict(X, batch_size=256)
    eng = model._get_engine()
    for other in (X.astype(np.float64), np.asfortranarray(X), X.astype(">f4"), X[:0], X[:, :5]):
        assert eng.predict_fast(other, 256) is None
    # other dtypes, strided and byte-swapped arrays, lists: converted by the general path
    np.testing.assert_array_equal(model.predict(X.astype(np.float64)), ref)
    np.testing.assert_array_equal(model.predict(np.asfortranarray(X)), ref)
    np.testing.assert_array_equal(model.predict(X.astype(">f4")), ref)
    np.testing.assert_array_equal(model.predict(X.tolist()), ref)
    wide = np.zeros((2, 6, 10), np.float32)
    wide[:, :, ::2] = X
    np.testing.assert_array_equal(model.predict(wide[:, :, ::2]), ref)
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[1, 4, 2] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            model.predict(Xb)
    with pytest.raises(ValueError, match="shape"):
        model.predict(np.zeros((2, 6, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        model.predict(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match="verbose"):
        model.predict(X, verbose=True)
    assert model.predict(np.zeros((0, 6, 5), np.float32)).shape == (0, 3)


def test_fast_path_sequential_and_token_inputs():
    seq = af.Sequential([af.Dense(4, activation="relu"), af.Dense(2)], input_dim=3, seed=0)
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(seq.predict(X), seq.predict(X, batch_size=256))
    # token ids are checked against the vocabulary on the general path, whatever the dtype
    x = af.Input(shape=(4,), dtype="int32")
    model = af.Model(x, af.Dense(2)(af.Flatten()(af.Embedding(10, 3)(x))), seed=0)
    ids = np.array([[1, 2, 3, 9]], np.int32)
    assert model._get_engine().predict_fast(ids, 256) is None
    np.testing.assert_array_equal(model.predict(ids), model.predict(ids, batch_size=256))
    with pytest.raises(ValueError):
        model.predict(np.array([[1, 2, 3, 10]], np.int32))


def test_fast_path_sees_setting_changes_and_sequence_outputs():
    """The fast path checks the engine's freshness inline: a setting changed after a predict (which
    rebuilds the C description) is used by the next fast predict, exactly as by the general path;
    rank-2 per-sample outputs (return_sequences) come out of the cached C shapes."""
    x = af.Input(shape=(6, 5))
    seq = af.LSTM(4, return_sequences=True)(x)
    head = af.Dense(3, activation="tanh")
    model = af.Model(x, [seq, head(af.Flatten()(seq))], dtype="float64", seed=4)
    X = np.random.default_rng(2).normal(size=(3, 6, 5))
    s0, y0 = model.predict(X)
    assert s0.shape == (3, 6, 4) and y0.shape == (3, 3)
    head.activation = "sigmoid"
    s1, y1 = model._predict_fast(X)         # the fast path itself, not a fallback
    np.testing.assert_array_equal(s1, s0)
    z = np.arctanh(y0)                       # the head's pre-activation
    np.testing.assert_allclose(y1, 1 / (1 + np.exp(-z)), rtol=1e-12)
    for a, b in zip((s1, y1), model.predict(X, batch_size=2)):
        np.testing.assert_array_equal(a, b)
    model.compile(loss=["mse", "mse"], optimizer="adam")    # a new optimiser object: re-stamped
    np.testing.assert_array_equal(model._predict_fast(X)[1], y1)


def test_fast_path_builds_an_unbuilt_sequential_on_the_general_path():
    seq = af.Sequential([af.Dense(2)], seed=0)
    X = np.ones((2, 3), np.float32)
    out = seq.predict(X)                 # not built: the general path builds it from X
    assert out.shape == (2, 2) and seq.built
    np.testing.assert_array_equal(seq.predict(X), out)
