"""Synthetic sequence tasks for the seq2seq tests (local generators until annfast.datasets
provides them): digit reversal and multi-digit addition, seeded. Tokens: digits 0-9, 10 is '+'
in sources and the start token of targets."""
import numpy as np

START = 10


def reverse_task(n, length=10, seed=0):
    """(sources, targets): random digit strings and the same strings reversed."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 10, (n, length))
    return src, src[:, ::-1].copy()


def _digits(v, n):
    return np.stack([(v // 10 ** (n - 1 - i)) % 10 for i in range(n)], axis=1)


def addition_task(n, digits=3, seed=0):
    """(sources "abc+def" as 2 digits + 1 tokens, targets: the sum as digits + 1 digits, leading
    zeros kept)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 10 ** digits, n), rng.integers(0, 10 ** digits, n)
    src = np.concatenate([_digits(a, digits), np.full((n, 1), 10), _digits(b, digits)], axis=1)
    return src, _digits(a + b, digits + 1)
