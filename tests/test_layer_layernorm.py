"""LayerNormalization (csrc/layers/layernorm.c, rows.h): values, finite differences, PyTorch,
1 vs 2 threads, every ISA, bad input."""
import numpy as np
import pytest

import annfast as af
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check, rel_err


def ln_model(shape, dtype="float64", seed=0, **kw):
    x = af.Input(shape=shape)
    layer = af.LayerNormalization(**kw)
    model = af.Model(x, af.Dense(3)(layer(af.Dense(shape[-1], activation="tanh")(x))), dtype=dtype, seed=seed)
    model.compile(loss="mse", optimizer="sgd")
    return model, layer


def ln_ref(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    return y * (1 if g is None else g) + (0 if b is None else b)


@pytest.mark.parametrize("shape", [(7,), (5, 6), (2, 3, 37)])
@pytest.mark.parametrize("flags", [(True, True), (False, True), (True, False), (False, False)])
def test_values_and_finite_differences(shape, flags):
    rng = np.random.default_rng(1)
    center, scale = flags
    x = af.Input(shape=shape)
    layer = af.LayerNormalization(epsilon=1e-5, center=center, scale=scale)
    model = af.Model(x, layer(x), dtype="float64", seed=0)
    model.compile(loss="mse", optimizer="sgd")
    if scale:
        layer.gamma = rng.normal(size=shape[-1])
    if center:
        layer.beta = rng.normal(size=shape[-1])
    X = rng.normal(size=(4,) + shape) * 3 + 1
    out = model.predict(X)
    np.testing.assert_allclose(out, ln_ref(X, layer.gamma, layer.beta, 1e-5), rtol=1e-12, atol=1e-12)
    Y = rng.normal(size=out.shape)
    if center or scale:
        fd_param_check(model, X, Y)
    fd_input_check(model, X, Y)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_against_torch(dtype, isa):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    X = rng.normal(size=(6, 5, 40)) * 2 - 1
    x = af.Input(shape=(5, 40))
    layer = af.LayerNormalization(epsilon=1e-5)
    model = af.Model(x, layer(x), dtype=dtype, seed=0)
    model.compile(loss="mse", optimizer="sgd")
    tln = torch.nn.LayerNorm(40, eps=1e-5, dtype=tdt)
    with torch.no_grad():
        tln.weight.uniform_(0.5, 1.5)
        tln.bias.uniform_(-1, 1)
    layer.gamma, layer.beta = tln.weight.detach().numpy(), tln.bias.detach().numpy()
    tx = torch.tensor(X, dtype=tdt, requires_grad=True)
    out = tln(tx)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(model.predict(X), out.detach().numpy()) < tol
    Y = rng.normal(size=X.shape)
    ((out - torch.tensor(Y, dtype=tdt)) ** 2).mean().backward()
    g, b = model.gradients(X, Y)
    assert rel_err(g, tln.weight.grad.numpy()) < tol
    assert rel_err(b, tln.bias.grad.numpy()) < tol
    assert rel_err(model.input_gradients(X, Y)[0], tx.grad.numpy()) < tol


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threads_bitwise(dtype):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(256, 16, 64)), rng.normal(size=(256, 16, 3))   # 65k values per batch of 64

    def make():
        m, _ = ln_model((16, 64), dtype=dtype, seed=4)
        m.compile(loss="mse", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=128)


def test_constant_rows_and_bad_input():
    x = af.Input(shape=(4,))
    model = af.Model(x, af.LayerNormalization()(x), dtype="float64")
    out = model.predict(np.full((2, 4), 3.0))        # zero variance: (x - mean) = 0, no NaN
    np.testing.assert_array_equal(out, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="epsilon"):
        af.LayerNormalization(epsilon=0)
    with pytest.raises(TypeError, match="center"):
        af.LayerNormalization(center="yes")
    with pytest.raises(ValueError, match="integer token ids"):
        af.LayerNormalization()(af.Input(shape=(4,), dtype="int32"))


def test_save_load(tmp_path):
    rng = np.random.default_rng(5)
    model, layer = ln_model((3, 8), seed=1, epsilon=1e-4, center=False)
    model.compile(loss="mse", optimizer="adam")
    X, Y = rng.normal(size=(10, 3, 8)), rng.normal(size=(10, 3, 3))
    model.fit(X, Y, epochs=2, verbose=0)
    model.save(tmp_path / "ln.npz")
    again = af.load_model(tmp_path / "ln.npz")
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.layers[2].epsilon == 1e-4 and again.layers[2].center is False
