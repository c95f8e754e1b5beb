"""The Activation layer (csrc/layers/activation.c, annfast/layers/activation.py): the worked
example of docs/adding-a-layer.md. Values against the activation functions, gradients by finite
differences and against PyTorch, a fused softmax output, 1 vs 2 threads, bad input."""
import numpy as np
import pytest

import annfast as af
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check

ACTS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softmax", "gelu", "swish"]


def model_with(act, dtype="float64", seed=0):
    x = af.Input(shape=(3, 4))
    out = af.Dense(4)(af.Activation(act)(af.Dense(4)(x)))
    return af.Model(x, out, dtype=dtype, seed=seed)


@pytest.mark.parametrize("act", ACTS)
def test_values_and_gradients(act):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(7, 3, 4)), rng.normal(size=(7, 3, 4))
    model = model_with(act)
    model.compile(loss="mse", optimizer="sgd")
    W0, b0, W1, b1 = model.get_weights()
    h = af.activations.apply(act, X @ W0 + b0)          # softmax over the last axis
    np.testing.assert_allclose(model.predict(X), h @ W1 + b1, rtol=1e-12, atol=1e-14)
    fd_param_check(model, X, y)
    fd_input_check(model, X, y)


@pytest.mark.parametrize("act", ["gelu", "swish", "softmax", "elu"])
def test_against_torch(act):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3, 4))
    model = model_with(act, seed=3)
    model.compile(loss="mse", optimizer="sgd")
    W = [torch.tensor(w, requires_grad=True) for w in model.get_weights()]
    fn = {"gelu": torch.nn.functional.gelu, "swish": torch.nn.functional.silu,
          "softmax": lambda t: torch.softmax(t, dim=-1), "elu": torch.nn.functional.elu}[act]
    out = fn(torch.tensor(X) @ W[0] + W[1]) @ W[2] + W[3]
    ((out - torch.tensor(y)) ** 2).mean().backward()
    for g, w in zip(model.gradients(X, y), W):
        np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_softmax_output_takes_the_fused_cross_entropy():
    # Activation('softmax') as the output with categorical cross-entropy: the loss takes the
    # logits (stable for huge logits), and predict still returns probabilities
    rng = np.random.default_rng(4)
    x = af.Input(shape=(3,))
    model = af.Model(x, af.Activation("softmax")(af.Dense(4)(x)), dtype="float64", seed=5)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    model.layers[1].kernel = np.full((3, 4), 300.0) * np.array([1, -1, 0, 0.5])
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 4, size=6)
    assert np.isfinite(model.evaluate(X, y))
    assert all(np.isfinite(g).all() for g in model.gradients(X, y))
    np.testing.assert_allclose(model.predict(X).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threads_bitwise(dtype):
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(200, 3, 4)).astype(dtype), rng.normal(size=(200, 3, 4)).astype(dtype)

    def make():
        m = model_with("gelu", dtype=dtype, seed=7)
        m.compile(loss="mse", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y)


def test_bad_input():
    with pytest.raises(ValueError, match="activation"):
        af.Activation("mish")
    with pytest.raises(TypeError, match="activation"):
        af.Activation(3)
    with pytest.raises(ValueError, match="alpha"):
        af.Activation("leaky_relu", alpha=-0.5)
    ids = af.Input(shape=(4,), dtype="int32")
    with pytest.raises(ValueError, match="float inputs"):
        af.Activation("relu")(ids)
    layer = af.Activation("relu")
    assert af.layers.Layer.from_config(layer.get_config()).get_config() == layer.get_config()
