"""Embedding (integer token ids, csrc/layers/embedding.c) and GlobalAveragePooling1D: values,
finite differences, PyTorch, 1 vs 2 threads, bad ids."""
import numpy as np
import pytest

import annfast as af
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check


def bag_model(vocab=20, dim=8, steps=6, dtype="float64", seed=0):
    ids = af.Input(shape=(steps,), dtype="int32")
    h = af.GlobalAveragePooling1D()(af.Embedding(vocab, dim)(ids))
    return af.Model(ids, af.Dense(3, activation="softmax")(h), dtype=dtype, seed=seed)


def test_values_gradients_and_torch():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 20, size=(9, 6)).astype(np.int16)      # any integer dtype
    X[0, :3] = 7                                                # repeated ids add their gradients
    y = rng.integers(0, 3, size=9)
    model = bag_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    E, W, b = model.get_weights()
    np.testing.assert_allclose(model.layers[1].embeddings, E)
    z = E[X].mean(axis=1) @ W + b
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(model.predict(X), p / p.sum(1, keepdims=True), rtol=1e-12)
    fd_param_check(model, X, y, max_entries=60)
    assert model.input_gradients(X, y) == [None]                # ids have no gradient
    torch = pytest.importorskip("torch")
    emb = torch.nn.Embedding(20, 8, dtype=torch.float64)
    emb.weight.data = torch.tensor(E)
    tw, tb = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    logits = emb(torch.tensor(X.astype(np.int64))).mean(dim=1) @ tw + tb
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    for g, t in zip(model.gradients(X, y), [emb.weight, tw, tb]):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_gap1d_on_floats():
    rng = np.random.default_rng(2)
    x = af.Input(shape=(5, 4))
    model = af.Model(x, af.Dense(2)(af.GlobalAveragePooling1D()(af.Dense(4, activation="tanh")(x))),
                     dtype="float64", seed=3)
    model.compile(loss="mse", optimizer="sgd")
    X, y = rng.normal(size=(6, 5, 4)), rng.normal(size=(6, 2))
    fd_param_check(model, X, y)
    fd_input_check(model, X, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threads_bitwise(dtype):
    rng = np.random.default_rng(4)
    X, y = rng.integers(0, 500, size=(400, 30)), rng.integers(0, 3, size=400)

    def make():
        m = bag_model(vocab=500, dim=96, steps=30, dtype=dtype, seed=5)
        m.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=128)


def test_bad_ids_and_settings():
    model = bag_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    before = model.get_weights()
    y = np.zeros(2, dtype=int)
    with pytest.raises(ValueError, match=r"ids in \[0, 20\]"):
        model.fit(np.array([[0, 1, 2, 3, 4, 20]] * 2), y, verbose=0)
    with pytest.raises(ValueError, match=r"\[-1, 4\]"):
        model.fit(np.array([[0, 1, 2, 3, 4, -1]] * 2), y, verbose=0)
    with pytest.raises(TypeError, match="integer token ids"):
        model.fit(np.zeros((2, 6)), y, verbose=0)               # float-coded ids are refused
    with pytest.raises(ValueError, match="shape"):
        model.predict(np.zeros((2, 5), dtype=int))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="integer token ids"):
        af.Embedding(10, 4)(af.Input(shape=(3,)))
    with pytest.raises(ValueError, match="input_dim"):
        af.Embedding(0, 4)
    with pytest.raises(ValueError, match="sequences"):
        af.GlobalAveragePooling1D()(af.Input(shape=(3,)))
