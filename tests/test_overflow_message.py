"""A finite value too large for the model's dtype (1e39 in float32) is reported as an overflow
naming the argument, the value and where it is, not as "NaN or inf" and never turned silently
into inf (issue 20, item 12). Real NaN/inf keep their own message."""
import re
import warnings

import numpy as np
import pytest

import annfast
from annfast._validate import as_array, cast_checked


def model32(loss="mse"):
    m = annfast.Sequential([annfast.Dense(2)], input_dim=3, seed=0)
    m.compile(loss, "sgd")
    return m


X = np.ones((4, 3))
Y = np.ones((4, 2))


def big(a, at, value=1e39):
    a = np.array(a, dtype=np.float64)
    a[at] = value
    return a


@pytest.mark.parametrize("call,arg", [
    (lambda m: m.predict(big(X, (2, 1))), "X"),
    (lambda m: m.fit(big(X, (2, 1)), Y, verbose=0), "X"),
    (lambda m: m.fit(X, big(Y, (3, 0)), verbose=0), "y"),
    (lambda m: m.fit(X, big(Y, (3, 0), -1e39), verbose=0), "y"),
    (lambda m: m.evaluate(X, big(Y, (1, 1))), "y"),
    (lambda m: m.gradients(X, big(Y, (1, 1))), "y"),
    (lambda m: m.fit(X, Y, validation_data=(big(X, (0, 0)), Y), verbose=0), "validation_data X"),
    (lambda m: m.set_weights([big(m.get_weights()[0], (0, 0)), m.get_weights()[1]]), "weights[0]"),
], ids=["predict-X", "fit-X", "fit-y", "fit-y-negative", "evaluate-y", "gradients-y",
        "validation-X", "set_weights"])
def test_float32_model_names_the_overflow(call, arg):
    m = model32()
    before = m.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered in cast" on the way
        message = rf"^{re.escape(arg)} holds -?1e\+39 at index .*overflows float32"
        with pytest.raises(ValueError, match=message):
            call(m)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)  # a rejected call changes nothing


def test_nan_and_inf_keep_their_message():
    m = model32()
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="NaN or inf"):
            m.predict(big(X, (0, 0), bad))


def test_float64_model_accepts_1e39_and_huge_ints_are_named():
    m = annfast.Sequential([annfast.Dense(2)], input_dim=3, seed=0, dtype="float64")
    assert np.isfinite(m.predict(big(X, (0, 0)))).all()
    with pytest.raises(ValueError, match="too large for float64"):
        m.predict([[10 ** 400, 1, 2]])


def test_helpers():
    with pytest.raises(ValueError, match=r"^a holds 4e\+38 at index \(1,\), which overflows float32"):
        as_array([1.0, 4e38], "a", np.float32)
    assert as_array([3e38], "a", np.float32)[0] == np.float32(3e38)  # below the limit: fine
    out = cast_checked(np.array([np.nan, np.inf, 2.0]), np.float32, "w")
    assert np.isnan(out[0]) and np.isinf(out[1]) and out[2] == 2
    with pytest.raises(ValueError, match=r"w holds 1e\+300 at index \(0, 1\)"):
        cast_checked(np.array([[np.nan, 1e300]]), np.float32, "w")


def test_sklearn_estimators():
    pytest.importorskip("sklearn")
    from annfast.sklearn import MLPClassifier, MLPRegressor
    Xs = np.random.default_rng(0).standard_normal((20, 3))
    ys = np.arange(20) % 2
    for est in (MLPClassifier(hidden_layer_sizes=(3,), max_iter=2),
                MLPRegressor(hidden_layer_sizes=(3,), max_iter=2)):
        with pytest.raises(ValueError, match=r"X holds 1e\+39 .*overflows float32"):
            est.fit(big(Xs, (4, 2)), ys)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xs, ys)
        with pytest.raises(ValueError, match=r"X holds 1e\+39 .*overflows float32"):
            est.predict(big(Xs, (4, 2)))
    with pytest.raises(ValueError, match=r"y holds 1e\+39 .*overflows float32"):
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(Xs, big(ys, 3))
