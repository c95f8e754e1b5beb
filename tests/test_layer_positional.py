"""PositionalEmbedding and SinusoidalPositionalEncoding (csrc/layers/positional.c): values,
finite differences, PyTorch-style sinusoid table, threads, sequences longer than learned."""
import numpy as np
import pytest

import annfast as af
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check


def sinusoid_table(T, D, wl=10000.0):
    pe = np.zeros((T, D))
    pos = np.arange(T)[:, None]
    w = wl ** (-(np.arange(0, D, 2)) / D)
    pe[:, 0::2] = np.sin(pos * w)
    pe[:, 1::2] = np.cos(pos * w[: D // 2])
    return pe


def test_learned_values_and_gradients():
    rng = np.random.default_rng(1)
    x = af.Input(shape=(5, 4))
    layer = af.PositionalEmbedding(sequence_length=8, output_dim=4)
    model = af.Model(x, af.Dense(2, activation="tanh")(layer(x)), dtype="float64", seed=0)
    model.compile(loss="mse", optimizer="sgd")
    X, Y = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 2))
    P = layer.embeddings.copy()
    W, b = model.layers[2].kernel, model.layers[2].bias
    np.testing.assert_allclose(model.predict(X), np.tanh((X + P[:5]) @ W + b), rtol=1e-13)
    g = model.gradients(X, Y)[0]
    np.testing.assert_array_equal(g[5:], 0)           # positions past the sequence get nothing
    fd_param_check(model, X, Y)
    fd_input_check(model, X, Y)


@pytest.mark.parametrize("D", [6, 7])
def test_sinusoidal_values(D):
    rng = np.random.default_rng(2)
    x = af.Input(shape=(9, D))
    model = af.Model(x, af.SinusoidalPositionalEncoding()(x), dtype="float64")
    model.compile(loss="mse", optimizer="sgd")
    X = rng.normal(size=(2, 9, D))
    np.testing.assert_allclose(model.predict(X), X + sinusoid_table(9, D), rtol=0, atol=1e-15)
    x32 = af.Input(shape=(9, D))
    m32 = af.Model(x32, af.SinusoidalPositionalEncoding(max_wavelength=100.0)(x32), dtype="float32")
    np.testing.assert_allclose(m32.predict(X.astype(np.float32)), X + sinusoid_table(9, D, 100.0),
                               rtol=0, atol=1e-6)
    fd_input_check(model, X, rng.normal(size=X.shape))


def test_threads_bitwise():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(256, 32, 64)), rng.normal(size=(256, 32, 64))

    def make():
        x = af.Input(shape=(32, 64))
        h = af.SinusoidalPositionalEncoding()(af.PositionalEmbedding(40, 64)(x))
        m = af.Model(x, af.Dense(64)(h), seed=1)
        m.compile(loss="mse", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=128)


def test_too_long_and_bad_input(tmp_path):
    with pytest.raises(ValueError, match="12 steps is longer than the 10 positions"):
        af.PositionalEmbedding(10, 4)(af.Input(shape=(12, 4)))
    with pytest.raises(ValueError, match="output_dim=4 but the input has 5 features"):
        af.PositionalEmbedding(10, 4)(af.Input(shape=(8, 5)))
    with pytest.raises(ValueError, match="integer token ids"):
        af.PositionalEmbedding(10, 4)(af.Input(shape=(8,), dtype="int32"))
    with pytest.raises(ValueError, match="\\(steps, features\\)"):
        af.SinusoidalPositionalEncoding()(af.Input(shape=(8,)))
    with pytest.raises(ValueError, match="max_wavelength"):
        af.SinusoidalPositionalEncoding(max_wavelength=0.5)
    ids = af.Input(shape=(6,), dtype="int32")
    model = af.Model(ids, af.PositionalEmbedding(6, 3)(af.Embedding(5, 3)(ids)), seed=0)
    model.compile(loss="mse", optimizer="sgd")
    before = model.get_weights()
    with pytest.raises(ValueError, match="shape"):
        model.fit(np.zeros((2, 7), dtype=int), np.zeros((2, 7, 3)), verbose=0)   # a longer sequence
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.save(tmp_path / "p.npz")
    np.testing.assert_array_equal(af.load_model(tmp_path / "p.npz").layers[2].embeddings, model.layers[2].embeddings)
