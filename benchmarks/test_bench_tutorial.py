"""pytest-benchmark: `pytest benchmarks --benchmark-enable` (compare the two groups' means)."""
import contextlib
import io

import numpy as np
import pytest

from annfast import NeuralNetwork
from annfast.reference import TutorialNeuralNetwork

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
Y = np.array([[0], [1], [1], [0]])


def train(cls):
    np.random.seed(0)
    nn = cls(2, 4, 1)
    with contextlib.redirect_stdout(io.StringIO()):
        nn.train(X, Y, 10000, 0.1)
    return nn


@pytest.mark.benchmark(group="xor-10000-epochs")
@pytest.mark.parametrize("cls", [NeuralNetwork, TutorialNeuralNetwork], ids=["annfast", "numpy-tutorial"])
def test_xor_train(benchmark, cls):
    nn = benchmark(train, cls)
    assert nn.feedforward(X).shape == (4, 1)
