"""Recurrent networks learn: the adding problem over 50 steps (an LSTM reaches test MSE < 0.01,
where always predicting 1 gives ~0.17), noisy-sine regression, and a short MNIST-1D run (GRU(64), 12 epochs).
Small versions of benchmarks/rnn_accuracy.py that fit the CI budget; the data are generated
locally by annfast.datasets (nothing is downloaded)."""
import os

import numpy as np
import pytest

import annfast as af
from annfast.datasets import adding_problem, make_mnist1d, noisy_sine


@pytest.mark.skipif(os.environ.get("ANNFAST_SANITIZED") == "1",
                    reason="a training-accuracy bound, minutes under the instrumented build; its kernels run in the shorter tests")
def test_lstm_solves_the_adding_problem_with_50_steps():
    X, y = adding_problem(4000, 50, seed=0)
    Xt, yt = adding_problem(1000, 50, seed=1)
    x = af.Input(shape=(50, 2))
    model = af.Model(x, af.Dense(1)(af.LSTM(32)(x)), seed=0)
    model.compile(loss="mse", optimizer=af.optimizers.Adam(0.01))
    assert model.evaluate(Xt, yt) > 0.1
    model.fit(X, y, epochs=7, batch_size=32, verbose=0)
    assert model.evaluate(Xt, yt) < 0.01


def test_gru_predicts_noisy_sine_waves():
    X, y = noisy_sine(2000, 30, seed=2)
    Xt, yt = noisy_sine(500, 30, seed=3)
    x = af.Input(shape=(30, 1))
    model = af.Model(x, af.Dense(1)(af.GRU(16)(x)), seed=4)
    model.compile(loss="mse", optimizer=af.optimizers.Adam(0.01))
    model.fit(X, y, epochs=10, batch_size=32, verbose=0)
    assert model.evaluate(Xt, yt) < 0.05           # the target's variance is ~0.5


@pytest.mark.skipif(os.environ.get("ANNFAST_SANITIZED") == "1",
                    reason="a training-accuracy bound, minutes under the instrumented build; its kernels run in the shorter tests")
def test_gru_on_mnist1d():
    pytest.importorskip("mnist1d")
    x_tr, y_tr, x_te, y_te = make_mnist1d()
    x = af.Input(shape=(40, 1))
    model = af.Model(x, af.Dense(10, activation="softmax")(af.GRU(64)(x)), seed=5)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(5e-3),
                  metrics=["accuracy"])
    model.fit(x_tr[:, :, None], y_tr, epochs=12, batch_size=64, verbose=0)
    # 0.96 here (chance 0.1); benchmarks/rnn_accuracy.py runs the full GRU(128), 60 epochs
    assert model.evaluate(x_te[:, :, None], y_te)[1] > 0.85
