"""Activations: values against NumPy formulas, derivatives against central finite differences
(float64), float32 agreement, and PyTorch's functions when installed."""
import math

import numpy as np
import pytest

from annfast import activations as A

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def ref(name, x, alpha=None):
    """Plain NumPy definitions."""
    if name == "linear":
        return x.copy()
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        a = 0.01 if alpha is None else alpha
        return np.where(x > 0, x, a * x)
    if name == "elu":
        a = 1.0 if alpha is None else alpha
        return np.where(x > 0, x, a * np.expm1(x))
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "gelu":
        return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    if name == "swish":
        return x / (1.0 + np.exp(-x))
    raise KeyError(name)


def away_from_kinks(x):
    """Move points off the kink at 0 so one-sided slopes do not enter the finite differences."""
    return np.where(np.abs(x) < 1e-3, x + 0.01, x)


@pytest.mark.parametrize("name", A.NAMES)
def test_values_float64(name):
    rng = np.random.default_rng(1)
    x = rng.normal(scale=3, size=(6, 5))
    # float64 formulas evaluated the same way: agreement to a few ulps
    np.testing.assert_allclose(A.apply(name, x), ref(name, x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", A.NAMES)
def test_values_float32(name):
    rng = np.random.default_rng(2)
    x = rng.normal(scale=3, size=(4, 7)).astype(np.float32)
    y = A.apply(name, x)
    assert y.dtype == np.float32
    # float32 keeps ~7 significant digits; expf/tanhf may differ from libm double by a few ulps
    np.testing.assert_allclose(y, ref(name, x.astype(np.float64)), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("alpha", [0.0, 0.2, 2.0])
@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
def test_alpha(name, alpha):
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(A.apply(name, x, alpha=alpha), ref(name, x, alpha), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", A.NAMES)
def test_derivative_finite_differences(name):
    rng = np.random.default_rng(3)
    x = away_from_kinks(rng.normal(scale=2, size=(5, 4)))
    dy = rng.normal(size=x.shape)
    got = A.derivative(name, x, dy)
    # d/dx_k of sum(dy * f(x)), central differences: truncation O(h^2) ~ 1e-12 at h = 1e-6,
    # rounding ~ 1e-16 / 1e-6 = 1e-10 -> compare with 1e-7 relative.
    h = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (np.sum(dy * ref(name, xp)) - np.sum(dy * ref(name, xm))) / (2 * h)
    np.testing.assert_allclose(got, num, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", [n for n in A.NAMES if n != "softmax"])
def test_elementwise_derivative_default_dy(name):
    x = away_from_kinks(np.linspace(-4, 4, 17))
    h = 1e-6
    num = (ref(name, x + h) - ref(name, x - h)) / (2 * h)
    np.testing.assert_allclose(A.derivative(name, x), num, rtol=1e-7, atol=1e-8)


def test_derivative_float32_matches_float64():
    rng = np.random.default_rng(4)
    x = away_from_kinks(rng.normal(size=(3, 6)))
    dy = rng.normal(size=x.shape)
    for name in A.NAMES:
        d32 = A.derivative(name, x.astype(np.float32), dy.astype(np.float32))
        assert d32.dtype == np.float32
        # float32 inputs are rounded (rel 6e-8) before f' is evaluated: 1e-5 covers it
        np.testing.assert_allclose(d32, A.derivative(name, x, dy), rtol=1e-5, atol=1e-6)


def test_extreme_inputs_are_finite():
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]])
    for name in A.NAMES:
        y = A.apply(name, x) if name not in ("elu", "selu") else A.apply(name, np.clip(x, -1e4, 50))
        assert np.all(np.isfinite(y)) or name in ("linear", "relu", "leaky_relu"), name
    s = A.softmax(np.array([1000.0, 0.0, -1000.0]))
    np.testing.assert_allclose(s, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(A.sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])


def test_named_functions_and_shapes():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 12
    np.testing.assert_array_equal(A.relu(x), np.maximum(x, 0))
    assert A.softmax(x).shape == x.shape
    np.testing.assert_allclose(A.softmax(x).sum(axis=-1), 1.0)
    np.testing.assert_allclose(A.leaky_relu(x, 0.5), np.where(x > 0, x, 0.5 * x))
    assert A.relu(3.0).shape == ()
    assert A.relu([1, -2]).dtype == np.float64


def test_bad_inputs():
    with pytest.raises(ValueError, match="activation"):
        A.apply("mish", np.ones(3))
    with pytest.raises(TypeError):
        A.apply(3, np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        A.relu(np.array([1.0, np.nan]))
    with pytest.raises(TypeError):
        A.relu(np.array(["a"]))
    with pytest.raises(ValueError, match="alpha"):
        A.leaky_relu(np.ones(2), alpha=-1.0)
    with pytest.raises(ValueError, match="dy"):
        A.derivative("relu", np.ones(3), dy=np.ones(4))


@pytest.mark.parametrize("name", A.NAMES)
def test_against_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = away_from_kinks(rng.normal(scale=2, size=(4, 6)))
    dy = rng.normal(size=x.shape)
    tx = torch.tensor(x, requires_grad=True)
    fn = {"linear": lambda t: t, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
          "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
          "elu": torch.nn.functional.elu, "selu": torch.selu,
          "softmax": lambda t: torch.softmax(t, dim=-1), "gelu": torch.nn.functional.gelu,
          "swish": torch.nn.functional.silu}[name]
    ty = fn(tx)
    ty.backward(torch.tensor(dy))
    # both float64; different but equivalent formulas -> agreement to ~1e-13
    np.testing.assert_allclose(A.apply(name, x), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(A.derivative(name, x, dy), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


# ---- NaN/inf check fused into the forward pass (activations.apply on ready arrays) ----------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", [0, 8191, 8192, 123457, -1])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fused_check_finds_a_bad_value_in_any_block(dtype, where, bad):
    """The check runs block by block (8192 values) just before each block is computed, on every
    thread's rows: a bad value in the first, a middle or the last block is found."""
    x = np.random.default_rng(0).standard_normal((300, 1000)).astype(dtype)
    x.flat[where] = bad
    for name in ("relu", "sigmoid", "softmax"):
        with pytest.raises(ValueError, match="x contains NaN or inf"):
            getattr(A, name)(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (300, 1000), (2, 3, 40)])
def test_fused_check_path_gives_the_general_paths_values(dtype, shape):
    """A ready array (checked inside the pass) and a strided view of the same values (checked
    by the general path first, then copied) give identical results."""
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    strided = np.repeat(x, 2, axis=-1)[..., ::2]
    assert not strided.flags.c_contiguous
    for name in ("relu", "sigmoid", "tanh", "softmax", "gelu"):
        fast, general = getattr(A, name)(x), getattr(A, name)(strided)
        assert fast.dtype == general.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(fast, general)
