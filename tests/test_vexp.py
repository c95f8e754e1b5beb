"""The vectorised exp behind sigmoid/softmax (csrc/vexp.h) against libm through NumPy."""
import numpy as np
import pytest

import annfast._core as core


def sigmoid_ref(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


@pytest.mark.parametrize("dtype,ulps", [(np.float64, 4), (np.float32, 4)])
def test_sigmoid_through_vexp_is_within_a_few_ulps(dtype, ulps):
    # vexp is ~1 ulp; sigmoid adds one rounding for the add and one for the divide.
    x = np.concatenate([np.linspace(-50, 50, 200001), [0.0, -0.0, 1e-300, -1e-300, 700.0, -700.0,
                                                       -745.0, 740.0, 88.0, -103.0]]).astype(dtype)
    got = core.act_forward("sigmoid", 0.0, x.reshape(1, -1)).ravel()
    with np.errstate(over="ignore"):
        want = sigmoid_ref(x)
    err = np.abs(got.astype(np.float64) - want)
    tol = ulps * np.finfo(dtype).eps * np.maximum(want, np.finfo(dtype).tiny)
    assert (err <= tol).all(), float(np.max(err / np.maximum(want, 1e-300)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_extremes_no_overflow(dtype):
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4], [0.0, 0.0, 0.0]], dtype=dtype)
    got = core.act_forward("softmax", 0.0, x)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(got[1], 1 / 3, rtol=4 * np.finfo(dtype).eps)
