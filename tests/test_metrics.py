"""annfast.metrics: the NumPy definitions against scikit-learn, and metrics in fit/evaluate
(named ones computed at the epoch's end, callables) against the formulas on model.predict."""
import numpy as np
import pytest

import annfast as af
from annfast import metrics, optimizers


def test_names_aliases_and_callables():
    assert metrics.get("MAE") == "mae" and metrics.get("mean_absolute_error") == "mae"
    assert metrics.get("acc") == "accuracy"
    for n in ("precision", "recall", "auc"):
        assert metrics.get(n) == n

    def f1(y_true, y_pred):
        return 0.0
    assert metrics.get(f1) is f1 and metrics.name(f1) == "f1"
    with pytest.raises(ValueError, match="metric must be one of"):
        metrics.get("f2")
    with pytest.raises(TypeError, match="or a callable"):
        metrics.get(3)
    assert metrics.config_names(["mae", f1, "accuracy"]) == ["mae", "accuracy"]


def test_binary_metrics_match_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.35 * y + rng.uniform(0, 0.7, 500), 0, 1)
    p[:50] = np.round(p[:50], 1)  # ties
    assert metrics.precision(y, p) == pytest.approx(skm.precision_score(y, p > 0.5), abs=1e-15)
    assert metrics.recall(y, p) == pytest.approx(skm.recall_score(y, p > 0.5), abs=1e-15)
    assert metrics.auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert metrics.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-15)


def test_multiclass_metrics_micro_average_like_keras():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[labels]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(3)[labels]
    for y in (onehot, labels):  # integer labels are one-hot encoded first
        assert metrics.precision(y, p) == pytest.approx(
            skm.precision_score(onehot.ravel(), p.ravel() > 0.5), abs=1e-15)
        assert metrics.recall(y, p) == pytest.approx(
            skm.recall_score(onehot.ravel(), p.ravel() > 0.5), abs=1e-15)
        assert metrics.auc(y, p) == pytest.approx(
            skm.roc_auc_score(onehot, p, average="micro"), abs=1e-12)


def test_metric_edge_cases():
    assert metrics.precision([1, 0], [0.1, 0.2]) == 0.0      # nothing predicted positive
    assert metrics.recall([0, 0], [0.9, 0.2]) == 0.0         # no positive target
    assert np.isnan(metrics.auc([1, 1], [0.3, 0.4]))         # one class only
    assert metrics.auc([0, 1], [0.5, 0.5]) == 0.5            # a tie counts one half
    with pytest.raises(ValueError, match="does not match"):
        metrics.mae(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="class indices"):
        metrics.precision([0, 5], np.full((2, 3), 0.3))


def classifier(metric_list, loss="sparse_categorical_crossentropy"):
    model = af.Sequential([af.Dense(6, activation="tanh"), af.Dense(3, activation="softmax")],
                          input_dim=4, dtype="float64", seed=3)
    model.compile(loss=loss, optimizer=optimizers.Adam(0.02), metrics=metric_list)
    return model


def data(seed, n):
    centers = np.random.default_rng(9).normal(scale=1.5, size=(3, 4))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return centers[labels] + rng.normal(size=(n, 4)), labels


def test_fit_logs_epoch_end_metrics_and_callables():
    """'mae', 'precision', 'recall', 'auc' and a callable are evaluated on the end-of-epoch
    weights, on the training and the validation rows, and evaluate() returns them in order."""
    X, y = data(0, 240)
    Xv, yv = data(1, 120)
    seen = []

    def top2(y_true, y_pred):
        seen.append((y_true.shape, y_pred.shape))
        best2 = np.argsort(y_pred, axis=1)[:, -2:]
        return float(np.mean(np.any(best2 == y_true.astype(int), axis=1)))

    names = ["accuracy", "mae", "precision", "recall", "auc", top2]
    model = classifier(names)
    per_epoch = []
    grab = af.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: per_epoch.append((model.predict(X), model.predict(Xv), dict(logs))))
    model.fit(X, y, epochs=3, batch_size=32, validation_data=(Xv, yv), callbacks=[grab], verbose=0)
    assert seen[0] == ((240, 1), (240, 3))  # prepared targets: (n, 1) class indices
    for p, pv, logs in per_epoch:
        for prefix, pred, labels in (("", p, y), ("val_", pv, yv)):
            assert logs[prefix + "mae"] == pytest.approx(metrics.mae(labels, pred), rel=1e-12)
            assert logs[prefix + "precision"] == pytest.approx(metrics.precision(labels, pred), rel=1e-12)
            assert logs[prefix + "recall"] == pytest.approx(metrics.recall(labels, pred), rel=1e-12)
            assert logs[prefix + "auc"] == pytest.approx(metrics.auc(labels, pred), rel=1e-12)
            assert logs[prefix + "top2"] == pytest.approx(top2(labels[:, None], pred), rel=1e-12)
    out = model.evaluate(Xv, yv)
    pv = model.predict(Xv)
    assert len(out) == 1 + len(names)
    assert out[2:] == pytest.approx([metrics.mae(yv, pv), metrics.precision(yv, pv),
                                     metrics.recall(yv, pv), metrics.auc(yv, pv),
                                     top2(yv[:, None], pv)], rel=1e-12)
    assert model.get_config()["metrics"] == ["accuracy", "mae", "precision", "recall", "auc"]


def test_hinge_metrics_threshold_at_zero():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(float)
    model = af.Sequential([af.Dense(1)], input_dim=2, dtype="float64", seed=0)
    model.compile(loss="hinge", optimizer=optimizers.SGD(0.1), metrics=["precision", "recall"])
    model.fit(X, y, epochs=5, batch_size=20, verbose=0)
    _, prec, rec = model.evaluate(X, y)
    s = model.predict(X)[:, 0]
    tp = np.sum((s > 0) & (y == 1))
    assert prec == pytest.approx(tp / np.sum(s > 0)) and rec == pytest.approx(tp / np.sum(y == 1))
    assert prec > 0.9 and rec > 0.9


def test_callable_metric_must_return_a_number():
    X, y = data(0, 30)
    model = classifier([lambda yt, yp: "bad"])
    with pytest.raises(TypeError, match="must return a number"):
        model.fit(X, y, epochs=1, verbose=0)
