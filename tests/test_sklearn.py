"""annfast.sklearn estimators: scikit-learn's estimator checks, parity of the objective and the
updates with scikit-learn's own MLP (same initial weights by construction), every task type,
DataFrames and string labels, parameter validation, and the meta-estimators."""
import pickle
import warnings

import numpy as np
import pytest

from annfast.sklearn import MLPClassifier, MLPRegressor

sklearn = pytest.importorskip("sklearn", reason="scikit-learn not installed (optional extra)")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402


def blobs(n=300, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.normal(0, 1, (n, d)), y


# ---------------------------------------------------------------- scikit-learn's own checks
@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_check_estimator(Est):
    from sklearn.utils.estimator_checks import (check_estimator,
                                                check_sample_weight_equivalence_on_dense_data)
    # sample_weight == removed or repeated rows is checked to rtol 1e-7, below float32's
    # resolution: the default float32 estimator agrees to ~1e-7 and fails it, float64 passes
    float32 = "float32 arithmetic cannot agree to rtol 1e-7; checked with dtype='float64' below"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_estimator(Est(), expected_failed_checks={
            "check_sample_weight_equivalence_on_dense_data": float32})
        check_sample_weight_equivalence_on_dense_data(Est.__name__, Est(dtype="float64"))


# ---------------------------------------------------------------- must show: digits
def test_digits_accuracy_at_least_sklearn():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(Xtr, ytr).score(Xte, yte)
        theirs = SkMLP(hidden_layer_sizes=(64,), random_state=0).fit(Xtr, ytr).score(Xte, yte)
    assert ours >= theirs, (ours, theirs)


# ---------------------------------------------------------------- parity with scikit-learn's MLP
def _parity_pair(kind, solver, n_iter, **kw):
    """Fit ours and sklearn's with full-batch, unshuffled epochs from the same initial weights
    (both draw them from random_state in the same order), float64."""
    from sklearn.neural_network import MLPClassifier as SkC, MLPRegressor as SkR
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 5))
    if kind == "multiclass":
        y = rng.integers(0, 3, 60)
    elif kind == "binary":
        y = np.array(["a", "b"])[rng.integers(0, 2, 60)]
    elif kind == "multilabel":
        y = (rng.random((60, 3)) > 0.5).astype(int)
    else:
        y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=60)
    params = dict(hidden_layer_sizes=(7, 6), solver=solver, batch_size=60, shuffle=False,
                  max_iter=n_iter, random_state=3, alpha=0.01, learning_rate_init=0.01,
                  momentum=0.0, tol=0.0, n_iter_no_change=10_000)
    params.update(kw)
    Ours, Theirs = (MLPRegressor, SkR) if kind == "regression" else (MLPClassifier, SkC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = Ours(dtype="float64", **params).fit(X, y)
        b = Theirs(**params).fit(X, y)
    return a, b, X


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_initial_objective_and_sgd_steps_match_sklearn(kind):
    # loss_curve_[0] is the objective at the initial weights: same init + same objective
    # => equal to rounding (float64, a few hundred terms: 1e-12 relative).
    a, b, X = _parity_pair(kind, "sgd", 3)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-9, atol=1e-12)
    if kind != "regression":
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_sgd_momentum_nesterov_and_adam_track_sklearn():
    for nesterov in (False, True):  # same updates written as torch-style momentum buffers
        a, b, _ = _parity_pair("multiclass", "sgd", 5, momentum=0.9, nesterovs_momentum=nesterov)
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-9)
    # Adam: torch-style epsilon placement vs sklearn's folds sqrt(1 - beta2^t) into eps
    # (eps=1e-8 against sqrt(v) ~ 1e-2 here), so agreement is ~1e-6 relative, not rounding.
    a, b, _ = _parity_pair("multiclass", "adam", 5)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-5)


def test_multilabel_objective_is_mean_over_labels():
    # documented difference: our BCE averages over labels, sklearn sums them (same init)
    # (alpha=0 so the objective is the data term alone; same initial weights)
    a, b, _ = _parity_pair("multilabel", "sgd", 1, alpha=0.0)
    np.testing.assert_allclose(a.loss_curve_[0], b.loss_curve_[0] / 3, rtol=1e-10)


# ---------------------------------------------------------------- task types
def test_multiclass_string_labels_and_proba():
    X, y = blobs()
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), random_state=0, max_iter=300).fit(X, labels)
    assert clf.classes_.tolist() == ["ant", "bee", "cat"]
    assert clf.score(X, labels) > 0.95
    P = clf.predict_proba(X)
    assert P.shape == (300, 3)
    assert P.dtype == np.float64  # X's precision, though computed in float32 (the default)
    # float32 softmax: each row sums to 1 within a few float32 ulps (eps 1.2e-7)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    P64 = clone(clf).set_params(dtype="float64").fit(X, labels).predict_proba(X)
    np.testing.assert_allclose(P64.sum(axis=1), 1.0, rtol=1e-12)  # float64: rounding only
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P))
    assert clf.n_features_in_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert [c.shape for c in clf.coefs_] == [(4, 16), (16, 3)]
    assert [c.shape for c in clf.intercepts_] == [(16,), (3,)]
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.best_loss_ == min(clf.loss_curve_)


def test_binary_and_multilabel():
    X, y = blobs(k=2)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, max_iter=300).fit(X, y == 1)
    assert clf.classes_.tolist() == [False, True] and clf.out_activation_ == "logistic"
    assert clf.predict_proba(X).shape == (300, 2) and clf.score(X, y == 1) > 0.95
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5]).astype(int)
    ml = MLPClassifier(hidden_layer_sizes=(32,), random_state=0, max_iter=500,
                       learning_rate_init=0.01).fit(X, Y)
    assert ml.classes_.tolist() == [0, 1, 2]
    pred = ml.predict(X)
    assert pred.shape == (400, 3) and set(np.unique(pred)) <= {0, 1}
    assert (pred == Y).mean() > 0.95
    assert ml.predict_proba(X).shape == (400, 3)


def test_multioutput_regression_and_float32():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (500, 3))
    Y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]])
    reg = MLPRegressor(hidden_layer_sizes=(32, 32), activation="tanh", learning_rate_init=0.01,
                       max_iter=400, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (500, 2) and reg.score(X, Y) > 0.9
    # default dtype float32: computes in float32, predicts in the precision of the X it is given
    r32 = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, Y[:, 0])
    assert r32.coefs_[0].dtype == np.float32 and r32.predict(X).dtype == np.float64
    assert r32.predict(X.astype(np.float32)).dtype == np.float32
    assert r32.predict(X).shape == (500,)
    r64 = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0, dtype="float64").fit(
        X.astype(np.float32), Y[:, 0])
    assert r64.coefs_[0].dtype == np.float64
    # dtype=None follows X like scikit-learn
    rn = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0, dtype=None)
    assert rn.fit(X, Y[:, 0]).coefs_[0].dtype == np.float64
    assert rn.fit(X.astype(np.float32), Y[:, 0]).coefs_[0].dtype == np.float32


def test_pandas_dataframe_feature_names():
    pd = pytest.importorskip("pandas", reason="pandas not installed (optional)")
    X, y = blobs(d=3)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(df, pd.Series(y))
    assert clf.feature_names_in_.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(clf.predict(df), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[["c", "b", "a"]])


# ---------------------------------------------------------------- training controls
def test_stopping_rule_and_convergence_warning():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(5\)"):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    assert clf.n_iter_ == 5
    # tol huge: only the first epoch "improves" (on inf) -> stop when the count exceeds 3
    clf = MLPClassifier(hidden_layer_sizes=(8,), tol=1e9, n_iter_no_change=3, random_state=0).fit(X, y)
    assert clf.n_iter_ == 5
    from sklearn.neural_network import MLPClassifier as SkMLP
    assert SkMLP(hidden_layer_sizes=(8,), tol=1e9, n_iter_no_change=3, random_state=0).fit(X, y).n_iter_ == 5


def test_early_stopping_keeps_best_validation_weights():
    X, y = blobs(n=400)
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=2,
                        tol=1e9, random_state=0).fit(X, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_ == 4
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    reg = MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, X[:, 0] * 2)
    assert reg.validation_scores_[-1] <= 1.0 and len(reg.validation_scores_) == reg.n_iter_


def test_learning_rate_schedules():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling",
                        power_t=0.5, learning_rate_init=0.1, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.t_ == 900
    assert clf._lr.value == pytest.approx(0.1 / (900 + 1) ** 0.5)
    ada = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                        learning_rate_init=0.1, tol=1e9, n_iter_no_change=2, max_iter=200,
                        random_state=0).fit(X, y)
    # adaptive: after 3 non-improving epochs divide by 5 while > 1e-6 (8 times from 0.1), then stop
    assert ada._lr.value == pytest.approx(0.1 / 5 ** 8) and ada.n_iter_ == 1 + 3 * 9


def test_partial_fit_and_warm_start():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for _ in range(3):
        clf.partial_fit(X[:150], y[:150], classes=[0, 1, 2])
    # as scikit-learn 1.9: n_iter_ counts the epochs of the last call, loss_curve_ all of them
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 3 and clf.t_ == 450
    clf.partial_fit(X[150:], y[150:])
    assert len(clf.loss_curve_) == 4
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 5)
    ws = MLPClassifier(hidden_layer_sizes=(8,), warm_start=True, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ws.fit(X, y)
        w0 = ws.coefs_[0].copy()
        ws.fit(X, y)
    assert ws.n_iter_ == 2 and len(ws.loss_curve_) == 4 and not np.array_equal(w0, ws.coefs_[0])
    with pytest.raises(ValueError, match="same classes"):
        ws.fit(X, np.where(y == 2, 1, y))
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_reproducible_and_thread_independent():
    X, y = blobs()
    fits = [MLPClassifier(hidden_layer_sizes=(16,), random_state=7, max_iter=30, n_threads=t).fit(X, y)
            for t in (1, 2, 1)]
    for f in fits[1:]:
        for a, b in zip(fits[0].coefs_, f.coefs_):
            np.testing.assert_array_equal(a, b)


def test_coefs_are_live_views_and_pickle_roundtrip():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.partial_fit(X, y)  # optimiser state survived the round trip
    clf.coefs_[-1][...] = 0.0
    clf.intercepts_[-1][...] = 0.0
    np.testing.assert_allclose(clf.predict_proba(X), 1.0 / 3.0)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("param,value,match", [
    ("hidden_layer_sizes", (8, 0), "hidden_layer_sizes must be > 0"),
    ("hidden_layer_sizes", "8", "must contain ints"),
    ("activation", "softplus", "activation must be one of"),
    ("solver", "lbfgs", "not supported by annfast"),
    ("solver", "rmsprop", "solver must be one of"),
    ("alpha", -1.0, "alpha must be >= 0"),
    ("batch_size", 0, "batch_size must be >= 1"),
    ("batch_size", "big", "batch_size must be 'auto'"),
    ("learning_rate", "cosine", "learning_rate must be one of"),
    ("learning_rate_init", 0.0, "learning_rate_init must be > 0"),
    ("max_iter", 0, "max_iter must be >= 1"),
    ("max_iter", 2.5, "max_iter must be an int"),
    ("shuffle", "yes", "shuffle must be True or False"),
    ("tol", -1e-3, "tol must be >= 0"),
    ("momentum", 1.5, "momentum must be <= 1"),
    ("validation_fraction", 1.0, "validation_fraction must be < 1"),
    ("beta_1", 1.0, "beta_1 must be < 1"),
    ("epsilon", 0.0, "epsilon must be > 0"),
    ("n_iter_no_change", 0, "n_iter_no_change must be >= 1"),
    ("dtype", "float16", "dtype must be None"),
    ("n_threads", 0, "n_threads must be >= 1"),
    ("verbose", -1, "verbose must be"),
])
def test_bad_parameters_rejected_and_model_unchanged(param, value, match):
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    before = [c.copy() for c in clf.coefs_]
    clf.set_params(**{param: value})
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    for a, b in zip(before, clf.coefs_):
        np.testing.assert_array_equal(a, b)


def test_bad_data_rejected():
    X, y = blobs()
    clf = MLPClassifier(max_iter=5)
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X, np.zeros(300))
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(np.full_like(X, np.nan), y)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)


# ---------------------------------------------------------------- meta-estimators
def test_pipeline_gridsearch_cross_val_clone():
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = blobs(n=240)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=200,
                                                         random_state=0))
    from sklearn.neural_network import MLPClassifier as SkMLP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        sk = cross_val_score(make_pipeline(StandardScaler(), SkMLP(hidden_layer_sizes=(8,),
                                                                   random_state=0)), X, y, cv=3)
        # same init and batch order as scikit-learn: fold scores agree up to a few samples
        assert scores.shape == (3,) and abs(scores.mean() - sk.mean()) < 0.03
        assert scores.min() > 0.8
        gs = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2],
                                 "mlpclassifier__hidden_layer_sizes": [(4,), (8,)]}, cv=2).fit(X, y)
    assert gs.best_score_ > 0.8 and len(gs.cv_results_["params"]) == 4
    assert gs.best_estimator_.predict(X).shape == (240,)
    c = clone(MLPRegressor(hidden_layer_sizes=(3, 2), alpha=0.5, dtype="float32", n_threads=1))
    assert c.get_params()["hidden_layer_sizes"] == (3, 2) and c.get_params()["dtype"] == "float32"
    assert not hasattr(c, "coefs_")


def test_verbose_prints_sklearn_lines(capsys):
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), tol=1e9, n_iter_no_change=1, verbose=True,
                        random_state=0).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Iteration 1, loss = {clf.loss_curve_[0]:.8f}"
    assert len([ln for ln in out if ln.startswith("Iteration")]) == clf.n_iter_ == 3
    assert out[-1].startswith("Training loss did not improve more than tol=") and \
        out[-1].endswith("Stopping.")


def test_partial_fit_keeps_optimizer_state_like_sklearn():
    # momentum buffers must carry over between partial_fit calls: three calls of ours and of
    # scikit-learn's from the same initial weights end at the same weights (float64 rounding).
    from sklearn.neural_network import MLPClassifier as SkC
    X, y = blobs(n=90)
    params = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.9, batch_size=30, shuffle=False,
                  random_state=0, learning_rate_init=0.05)
    a, b = MLPClassifier(dtype="float64", **params), SkC(**params)
    for _ in range(3):
        a.partial_fit(X, y, classes=[0, 1, 2])
        b.partial_fit(X, y, classes=[0, 1, 2])
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-9)
