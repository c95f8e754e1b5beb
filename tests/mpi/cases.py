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


def run(case, distributed):
    if case == "callbacks":
        return fit_callbacks(distributed)
    if case == "sklearn":
        return fit_sklearn(distributed)
    return fit_model(case, distributed)
