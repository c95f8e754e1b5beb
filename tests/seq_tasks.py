"""Small local sequence data for the recurrent tests and examples, generated in NumPy (nothing is
downloaded). These mirror the interface of annfast.datasets (written on another branch:
adding_problem, parity, noisy_sine, make_mnist1d); once it is merged the tests should use it.
"""
import numpy as np


def adding_problem(n, steps, seed=0, dtype="float32"):
    """x (n, steps, 2): channel 0 uniform values in [0, 1), channel 1 marks two steps (one in
    each half); y (n, 1): the sum of the two marked values. Always predicting 1 gives MSE 1/6."""
    rng = np.random.default_rng(seed)
    values = rng.random((n, steps))
    rows = np.arange(n)
    first = rng.integers(0, steps // 2, n)
    second = rng.integers(steps // 2, steps, n)
    marks = np.zeros((n, steps))
    marks[rows, first] = marks[rows, second] = 1.0
    x = np.stack([values, marks], axis=-1).astype(dtype)
    return x, (values[rows, first] + values[rows, second])[:, None].astype(dtype)


def parity(n, steps, seed=0, dtype="float32"):
    """x (n, steps, 1) bits; y (n, 1) = 1 when the count of ones is odd."""
    bits = np.random.default_rng(seed).integers(0, 2, (n, steps))
    return bits[..., None].astype(dtype), (bits.sum(axis=1) % 2)[:, None].astype(dtype)


def noisy_sine(n, steps, seed=0, noise=0.1, dtype="float32"):
    """x (n, steps, 1): a sin(w t + p) plus Gaussian noise; y (n, 1): the clean value at t = steps."""
    rng = np.random.default_rng(seed)
    amp, freq = rng.uniform(0.5, 1.5, (n, 1)), rng.uniform(0.1, 0.5, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    clean = amp * np.sin(freq * np.arange(steps + 1) + phase)
    x = clean[:, :steps] + noise * rng.standard_normal((n, steps))
    return x[..., None].astype(dtype), clean[:, steps:].astype(dtype)


def make_mnist1d(seed=42):
    """MNIST-1D with mnist1d's default arguments, generated locally by make_dataset (never
    get_dataset, which downloads): (x_train (4000, 40), y_train, x_test (1000, 40), y_test)."""
    import random
    from mnist1d.data import get_dataset_args, make_dataset
    args = get_dataset_args()
    args.seed = seed
    state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
    return d["x"], d["y"], d["x_test"], d["y_test"]
