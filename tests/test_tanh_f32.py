"""The float32 tanh (csrc/kernels/act_kern_impl.h: a fitted polynomial below |x| = 0.625, the
e^{2|x|} form above, both vectorised) on every ISA: within 1.5 ulp of tanh in float64 over the
whole normal range (NumPy's float32 tanh reaches about 1.4), odd, exactly +-1 far out, NaN kept."""
import numpy as np

import annfast as af
from annfast import _core


def ulps(y, ref):
    return np.abs(y.astype(np.float64) - ref) / np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)


def test_tanh_float32_accuracy(isa):
    x = np.concatenate([np.linspace(-12, 12, 400001), np.logspace(-37, 1, 20001),
                        np.nextafter(np.float32([0.625, -0.625]), 0), [0.625, -0.625]]).astype(np.float32)
    y = af.activations.tanh(x)
    assert y.dtype == np.float32
    assert ulps(y, np.tanh(x.astype(np.float64))).max() < 1.5
    assert np.array_equal(af.activations.tanh(-x), -y)   # odd, sign of zero included


def test_tanh_float32_limits_and_nan(isa):
    x = np.float32([0.0, -0.0, 10.0, -10.0, 50.0, -50.0, 3e38, np.inf, -np.inf, np.nan])
    y = _core.act_forward("tanh", 0.0, x[None, :])[0]   # the kernel itself: inf and NaN allowed
    assert np.array_equal(y[:2], [0.0, -0.0]) and np.signbit(y[1])
    assert np.array_equal(y[2:9], [1, -1, 1, -1, 1, 1, -1]) and np.isnan(y[9])
