"""The drop-in NeuralNetwork against the tutorial's NumPy class, same run, printed as ratios.

    python benchmarks/bench_tutorial.py [--threads N]
"""
import argparse
import contextlib
import io
import os
import sys
import time

import numpy as np

try:
    import annfast
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import annfast
from annfast import NeuralNetwork
from annfast.reference import TutorialNeuralNetwork

CASES = [
    # name, (in, hidden, out), n_samples, epochs, learning_rate
    ("XOR 2-4-1, 10000 epochs", (2, 4, 1), 4, 10000, 0.1),
    ("8-16-3 on 64 samples, 2000 epochs", (8, 16, 3), 64, 2000, 0.01),
    ("64-256-10 on 1024 samples, 20 epochs", (64, 256, 10), 1024, 20, 0.001),
]


def data(sizes, n):
    if sizes == (2, 4, 1):
        return np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), np.array([[0], [1], [1], [0]])
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, sizes[0])), rng.uniform(size=(n, sizes[2]))


def time_train(cls, sizes, X, y, epochs, lr, repeats):
    best = float("inf")
    for _ in range(repeats):
        np.random.seed(0)
        nn = cls(*sizes)
        with contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            nn.train(X, y, epochs, lr)
            best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if args.threads:
        annfast.set_num_threads(args.threads)
    print(f"annfast {annfast.__version__}, kernel path {annfast.get_isa()}, "
          f"{annfast.get_num_threads()} thread(s), float64")
    print(f"{'case':40s} {'annfast':>12s} {'NumPy class':>12s} {'speed-up':>9s}")
    for name, sizes, n, epochs, lr in CASES:
        X, y = data(sizes, n)
        ours = time_train(NeuralNetwork, sizes, X, y, epochs, lr, args.repeats)
        ref = time_train(TutorialNeuralNetwork, sizes, X, y, epochs, lr, max(2, args.repeats // 2))
        print(f"{name:40s} {ours * 1e3:10.2f}ms {ref * 1e3:10.1f}ms {ref / ours:8.1f}x")


if __name__ == "__main__":
    main()
