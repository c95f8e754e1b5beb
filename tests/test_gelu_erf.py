"""The float32 GELU's vectorised erf (csrc/kernels/verf.h) on every ISA: against erf in float64
over the whole range (below 3 ulp of erf: the GELU within 5e-7 absolute, 1e-6 relative where
1 + erf does not cancel), and its derivative against float64 finite differences."""
import numpy as np
import pytest
from math import erf, sqrt

import annfast as af

_erf = np.vectorize(erf)


def gelu64(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + _erf(x / sqrt(2)))


def test_gelu_float32_accuracy(isa):
    x = np.concatenate([np.linspace(-7, 7, 40001), [0.0, -0.0, 1e-30, -1e-30, 1.41421, 5.5437]]).astype(np.float32)
    ref = gelu64(x)
    y = af.activations.gelu(x)
    assert y.dtype == np.float32
    assert np.abs(y - ref).max() < 5e-7
    # relative where 1 + erf does not cancel (x > -1; below, float32's 1 + erf loses digits in
    # any implementation, torch's and libm's included)
    big = (np.abs(ref) > 1e-3) & (x > -1)
    assert (np.abs(y - ref) / np.abs(ref))[big].max() < 1e-6
    assert np.array_equal(y[-6:-4], [0.0, -0.0]) and np.signbit(y[-5])
    # the derivative in a model: Dense(gelu) backward against float64
    inp = af.Input(shape=(1,))
    m32 = af.Model(inp, af.Dense(1, activation="gelu", use_bias=False)(inp), dtype="float32", seed=0)
    m32.layers[1].kernel = [[1.0]]
    m32.compile(loss="mse", optimizer="sgd")
    xs = np.linspace(-5, 5, 101, dtype=np.float32).reshape(-1, 1)
    g = m32.input_gradients(xs, np.zeros_like(xs))[0].ravel()
    x64 = xs.astype(np.float64).ravel()
    d = 0.5 * (1 + _erf(x64 / sqrt(2))) + x64 * np.exp(-x64 ** 2 / 2) / sqrt(2 * np.pi)
    want = 2 * gelu64(xs.ravel()) * d / xs.size
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(scale=3, size=10000).astype(dtype)
    t = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(af.activations.gelu(x), t, rtol=0, atol=2e-6 if dtype == "float32" else 1e-15)
