"""What tests/test_mpi.py computes twice: under mpiexec with distributed="mpi" (run_cases.py, one
result file per process) and in the pytest process with SplitBatch(P), which must give the same
bits. Each case returns a dict of plain values and arrays."""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))      # tests/: dist_models

import annfast as af  # noqa: E402
from dist_models import build, state  # noqa: E402


def fit_model(name, distributed):
    """A model of dist_models fitted 2 epochs (float32, Adam, batch 32: 7 batches, the last of 11),
    with validation; then evaluate and predict over the processes too."""
    model, X, y = build(name)
    hist = model.fit(X, y, epochs=2, batch_size=32, verbose=0, validation_split=0.1,
                     distributed=distributed)
    return {"state": state(model), "history": hist.history,
            "evaluate": model.evaluate(X, y, distributed=distributed),
            "predict": model.predict(X, distributed=distributed)}


def fit_callbacks(distributed):
    """Callbacks run on process 0 only; what they change (learning rate, best weights restored,
    stop) reaches every process. EarlyStopping's min_delta makes epoch 0 the best one: the fit
    stops after epoch 2 and puts epoch 0's weights back."""
    model, X, y = build("bn_dropout")
    calls = []
    cbs = [af.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: calls.append(epoch)),
           af.callbacks.LearningRateScheduler(lambda epoch, lr: 0.02 / (1 + epoch)),
           af.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0,
                                      restore_best_weights=True)]
    hist = model.fit(X, y, epochs=8, batch_size=32, verbose=0, validation_split=0.2, callbacks=cbs,
                     distributed=distributed)
    return {"state": state(model), "history": hist.history, "calls": calls,
            "lr": float(model.optimizer.learning_rate)}


def fit_sklearn(distributed):
    from sklearn.datasets import load_digits
    from annfast.sklearn import MLPClassifier
    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=4, batch_size=64, early_stopping=True,
                        random_state=0, distributed=distributed).fit(X, y)
    return {"state": np.concatenate([a.ravel() for a in clf.coefs_ + clf.intercepts_]),
            "loss_curve": clf.loss_curve_, "validation_scores": clf.validation_scores_}


def fit_weighted(distributed):
    """sample_weight, class_weight and weighted validation data (Keras's normalisation: every
    process divides by the global batch size) on batch norm + dropout, a weighted evaluate, and
    a scikit-learn estimator with sample_weight (each global batch over its weight sum, which
    every process computes from the whole weight array)."""
    from sklearn.datasets import load_digits
    from annfast.sklearn import MLPClassifier
    model, X, y = build("bn_dropout")
    n = y.shape[0]
    w = np.random.default_rng(5).uniform(0.0, 3.0, n).astype(X.dtype)
    w[::7] = 0
    hist = model.fit(X[:180], y[:180], epochs=2, batch_size=32, verbose=0, distributed=distributed,
                     sample_weight=w[:180], class_weight={0: 1.0, 1: 2.5, 2: 0.5},
                     validation_data=(X[180:], y[180:], w[180:]))
    Xd, yd = load_digits(return_X_y=True)
    wd = np.random.default_rng(6).uniform(0.0, 2.0, len(yd))
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=3, batch_size=64, early_stopping=True,
                        alpha=1e-3, random_state=0, distributed=distributed).fit(Xd, yd, sample_weight=wd)
    return {"state": state(model), "history": hist.history,
            "evaluate": model.evaluate(X, y, sample_weight=w, distributed=distributed),
            "sk_state": np.concatenate([a.ravel() for a in clf.coefs_ + clf.intercepts_]),
            "sk_loss_curve": clf.loss_curve_, "sk_validation_scores": clf.validation_scores_}


def run(case, distributed):
    if case == "weighted":
        return fit_weighted(distributed)
    if case == "callbacks":
        return fit_callbacks(distributed)
    if case == "sklearn":
        return fit_sklearn(distributed)
    return fit_model(case, distributed)
