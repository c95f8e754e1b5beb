"""Injecting weights by assigning coefs_/intercepts_ (issue 20, item 11): scikit-learn reads
these attributes at every predict and fit, so assigning new arrays (or replacing one array in
the list) must change the predictions exactly as in scikit-learn, be where warm-started training
continues from, and survive pickling. Each case injects the same weights into scikit-learn's own
estimator and compares.

Tolerances: float64 estimators differ from scikit-learn only by the summation order of a few
dot products (relative 1e-15 per term), so 1e-12; a float32 estimator rounds the injected
float64 weights and every product to float32 (eps 6e-8, sums of a handful of terms): 1e-5."""
import pickle
import warnings

import numpy as np
import pytest

from annfast.sklearn import MLPClassifier, MLPRegressor

pytest.importorskip("sklearn", reason="scikit-learn not installed (optional extra)")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkC, MLPRegressor as SkR  # noqa: E402

PARAMS = dict(hidden_layer_sizes=(5,), solver="sgd", batch_size=40, shuffle=False, max_iter=3,
              random_state=0, alpha=0.01, learning_rate_init=0.05, momentum=0.0, tol=0.0,
              n_iter_no_change=10_000)


def data(kind, n=40, d=4, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if kind == "multiclass":
        y = rng.integers(0, 3, n)
    elif kind == "binary":
        y = np.array(["no", "yes"])[rng.integers(0, 2, n)]
    else:
        y = X @ rng.normal(size=d)
    return X, y


def pair(kind, dtype="float64", **kw):
    X, y = data(kind)
    Ours, Theirs = (MLPRegressor, SkR) if kind == "regression" else (MLPClassifier, SkC)
    params = dict(PARAMS, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Ours(dtype=dtype, **params).fit(X, y), Theirs(**params).fit(X, y), X, y


def fresh(est, hidden=None, seed=7):
    """New float64 weights of est's layer sizes (hidden widths replaced if given)."""
    rng = np.random.default_rng(seed)
    sizes = [est.coefs_[0].shape[0]] + (hidden or [c.shape[1] for c in est.coefs_[:-1]]) \
        + [est.coefs_[-1].shape[1]]
    coefs = [rng.normal(size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    return coefs, [rng.normal(size=b) for b in sizes[1:]]


def outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def inject(est, coefs, intercepts):
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_reassigned_lists_predict_like_sklearn(kind):
    ours, theirs, X, _ = pair(kind)
    before = outputs(ours, X)
    coefs, intercepts = fresh(ours)
    inject(ours, coefs, intercepts)
    inject(theirs, coefs, intercepts)
    got = outputs(ours, X)
    assert not np.allclose(got, before)
    np.testing.assert_allclose(got, outputs(theirs, X), rtol=1e-12, atol=1e-14)
    if kind == "regression":
        assert ours.score(X, theirs.predict(X)) == pytest.approx(1.0, abs=1e-12)
    else:
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_replacing_one_array_of_the_list():
    ours, theirs, X, _ = pair("multiclass")
    W = np.random.default_rng(3).normal(size=ours.coefs_[1].shape)
    ours.coefs_[1] = W.copy()       # list item assignment, the list object is unchanged
    theirs.coefs_[1] = W.copy()
    b = np.array([0.5, -1.0, 2.0])
    ours.intercepts_[1] = b.copy()
    theirs.intercepts_[1] = b.copy()
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12, atol=1e-14)


def test_injected_arrays_are_read_at_every_predict():
    """scikit-learn keeps the user's arrays: editing them after the assignment counts too."""
    ours, theirs, X, _ = pair("regression")
    coefs, intercepts = fresh(ours)
    ours.coefs_, ours.intercepts_ = coefs, intercepts          # the same objects, shared
    theirs.coefs_, theirs.intercepts_ = coefs, intercepts
    first = ours.predict(X)
    coefs[0] *= 2.0
    intercepts[1][...] = 3.0
    second = ours.predict(X)
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, theirs.predict(X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_injected_weights_survive_pickling(kind):
    ours, theirs, X, _ = pair(kind)
    coefs, intercepts = fresh(ours)
    inject(ours, coefs, intercepts)
    inject(theirs, coefs, intercepts)
    back = pickle.loads(pickle.dumps(ours))
    np.testing.assert_allclose(outputs(back, X), outputs(theirs, X), rtol=1e-12, atol=1e-14)
    for a, b in zip(back.coefs_ + back.intercepts_, coefs + intercepts):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_training_continues_from_injected_weights_like_sklearn(kind, how):
    """Plain SGD, full batch, no shuffling: one more epoch from the injected weights takes
    scikit-learn's step (the parity tests in test_sklearn.py show the steps agree)."""
    ours, theirs, X, y = pair(kind, warm_start=(how == "warm_start"), max_iter=1)
    coefs, intercepts = fresh(ours)
    inject(ours, coefs, intercepts)
    inject(theirs, coefs, intercepts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (ours, theirs):
            est.partial_fit(X, y) if how == "partial_fit" else est.fit(X, y)
    for a, b, c in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                       coefs + intercepts):
        assert not np.allclose(a, c)  # it trained
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_new_hidden_width_is_adopted_like_sklearn():
    ours, theirs, X, _ = pair("multiclass")
    coefs, intercepts = fresh(ours, hidden=[9])
    inject(ours, coefs, intercepts)
    inject(theirs, coefs, intercepts)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12, atol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.partial_fit(X, theirs.predict(X))  # trains the 9-unit network
    assert [c.shape for c in ours.coefs_] == [(4, 9), (9, 3)]


def test_float32_estimator_rounds_injected_weights():
    ours, theirs, X, _ = pair("multiclass", dtype="float32")
    coefs, intercepts = fresh(ours)
    inject(ours, coefs, intercepts)
    inject(theirs, coefs, intercepts)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert ours.coefs_[0].dtype == np.float64  # the user's arrays are kept, as scikit-learn does
    with pytest.raises(ValueError, match=r"coefs_\[0\] holds 1e\+39 .*overflows float32"):
        ours.coefs_[0] = np.full_like(coefs[0], 1e39)
        ours.predict(X)


@pytest.mark.parametrize("edit,error,match", [
    (lambda e: setattr(e, "coefs_", e.coefs_[:1]), ValueError, r"coefs_ must be a list of 2"),
    (lambda e: setattr(e, "coefs_", None), ValueError, r"coefs_ must be a list"),
    (lambda e: e.coefs_.__setitem__(0, np.ones((3, 5))), ValueError, r"coefs_\[0\] must have shape \(4, "),
    (lambda e: e.coefs_.__setitem__(1, np.ones((6, 3))), ValueError, r"coefs_\[1\] must have shape \(5, "),
    (lambda e: (e.coefs_.__setitem__(1, np.ones((5, 2))), e.intercepts_.__setitem__(1, np.ones(2))),
     ValueError, r"coefs_\[1\] must have 3 columns"),
    (lambda e: e.intercepts_.__setitem__(0, np.ones(4)), ValueError,
     r"intercepts_\[0\] must have shape \(5,\)"),
    (lambda e: e.coefs_.__setitem__(0, np.full((4, 5), "a")), TypeError, r"coefs_\[0\] must"),
], ids=["short-list", "none", "n-features", "chain", "n-outputs", "intercept", "strings"])
def test_bad_injections_are_named(edit, error, match):
    ours, _, X, _ = pair("multiclass")
    edit(ours)
    with pytest.raises(error, match=match):
        ours.predict(X)
