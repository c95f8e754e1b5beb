"""Flush-to-zero / denormals-are-zero (csrc/fpenv.h): on in every thread annfast computes with,
and the caller's floating-point control word (MXCSR on x86, FPCR on arm64) exactly as it was
after every entry point.

_core._fp_control() reads (and, for these tests, sets) the calling thread's control word.
"""
import os
import statistics
import time

import numpy as np
import pytest

import annfast
from annfast import _core

needs_fp_control = pytest.mark.skipif(_core._fp_control() == 0,
                                      reason="no floating-point control word on this platform")
FTZ_DAZ = 0x8040  # MXCSR bits 15 and 6


def _model(dtype="float32", n_in=20):
    m = annfast.Sequential([annfast.Dense(16, activation="relu"), annfast.Dense(3, activation="softmax")],
                           input_dim=n_in, dtype=dtype, seed=0)
    m.compile(loss="sparse_categorical_crossentropy", optimizer=annfast.optimizers.Adam(1e-3))
    return m


def entry_points():
    """One call of every kind of C entry point reachable from Python."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 20)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    big = rng.normal(size=(300, 300))
    calls = {
        "matmul": lambda: annfast.matmul(big, big),
        "matmul skinny": lambda: annfast.matmul(big, big[:, :5]),
        "matmul unchecked": lambda: annfast.matmul(big, big, check_finite=False),
        "gemm": lambda: _core.gemm(False, False, 1.0, big, big, 0.0, np.zeros((300, 300)),
                                   activation="sigmoid"),
        "all_finite": lambda: _core.all_finite(big),
        "activation": lambda: annfast.activations.apply("tanh", big),
        "activation derivative": lambda: annfast.activations.derivative("elu", big),
        "loss": lambda: annfast.losses.loss("categorical_crossentropy", np.eye(3)[y],
                                            np.full((64, 3), 1 / 3)),
        "optimizer": lambda: annfast.optimizers.Adam(clipnorm=1.0, clipvalue=0.5).update(
            np.ones(1000), np.ones(1000), np.zeros(2000), t=1),
        "l2_norm": lambda: _core.l2_norm(np.ones(100000)),
        "batchnorm": lambda: _core.batchnorm_forward(big),
        "dropout": lambda: _core.dropout_apply(big, 0.5, 1, 1),
        "fit/predict/evaluate/gradients": lambda: (_fit_all(X, y)),
        "tutorial": lambda: _tutorial(),
    }
    try:
        from annfast.sklearn import MLPClassifier
        calls["sklearn"] = lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=3,
                                                 random_state=0).fit(X, y).predict(X)
    except ImportError:  # pragma: no cover - scikit-learn missing
        pass
    return calls


def _fit_all(X, y):
    import warnings
    m = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, y, epochs=2, batch_size=16, verbose=0)
    m.predict(X)
    m.evaluate(X, y)
    m.gradients(X, y)


def _tutorial():
    import contextlib
    import io
    nn = annfast.NeuralNetwork(2, 4, 1)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    with contextlib.redirect_stdout(io.StringIO()):
        nn.train(X, np.array([[0], [1], [1], [0]]), 10, 0.1)
    nn.feedforward(X)
    nn.backward(X, np.array([[0], [1], [1], [0]]), 0.1)


# The exception flags (MXCSR bits 0-5) are sticky status, not control: NumPy's ufuncs clear
# them after every operation, so Python-level calls are compared on the control bits only.
FLAGS = 0x3F


@needs_fp_control
@pytest.mark.parametrize("nthreads", [1, 2])
def test_caller_fp_control_unchanged_after_every_entry_point(nthreads, threads):
    """Each call leaves the caller's control bits as it found them: flushing off stays off,
    flushing on stays on."""
    threads(nthreads)
    before = _core._fp_control()
    try:
        for start in (before & ~FTZ_DAZ, before | FTZ_DAZ):
            for name, call in entry_points().items():
                _core._fp_control(start)
                call()
                after = _core._fp_control()
                assert after & ~FLAGS == start & ~FLAGS, f"{name}: {start:#x} became {after:#x}"
    finally:
        _core._fp_control(before)


@needs_fp_control
def test_c_entry_points_restore_the_exact_word(threads):
    """Straight C calls (no NumPy ufunc in between) give back the exact word, exception flags
    included: ours (the product below raises 'inexact') are dropped, the caller's are kept."""
    big = np.random.default_rng(1).normal(size=(300, 300))
    c = np.zeros((300, 300))
    before = _core._fp_control()
    try:
        for nthreads in (1, 2):
            threads(nthreads)
            for start in ((before & ~FTZ_DAZ) & ~FLAGS, (before & ~FTZ_DAZ) | 0x01, before | FTZ_DAZ):
                for call in (lambda: _core.gemm(False, False, 1.0, big, big, 0.0, c),
                             lambda: _core.gemm(True, False, 1.0, big, big[:, :7], 0.0, c[:, :7]),
                             lambda: _core.all_finite(big),
                             lambda: _core.l2_norm(big.ravel())):
                    _core._fp_control(start)
                    call()
                    after = _core._fp_control()
                    assert after == start, f"{start:#x} became {after:#x}"
    finally:
        _core._fp_control(before)


@needs_fp_control
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_inputs_are_zero_in_every_thread(dtype, threads):
    """DAZ in the caller and in every worker: subnormal inputs count as zero, so A B with A all
    subnormal is exactly 0 on every chunk, whichever thread computed it (a thread without DAZ
    would give k * 1e-40-sized values). The caller's own mode is left off throughout."""
    tiny = np.finfo(dtype).tiny / 4  # subnormal
    _core._set_busy_check(False)  # make sure the worker threads take part
    try:
        for nthreads in (1, 2):
            threads(nthreads)
            for m, n, k in [(600, 600, 64), (3000, 10, 300), (5, 700, 700)]:
                a = np.full((m, k), tiny, dtype)
                b = np.ones((k, n), dtype)
                assert (np.abs(a) < np.finfo(dtype).tiny).all() and (a != 0).all()
                c = annfast.matmul(a, b)
                assert not c.any(), (nthreads, m, n, k)
                assert (annfast.matmul(a, b, check_finite=False) == 0).all()
    finally:
        _core._set_busy_check(True)


def test_training_with_subnormals_is_thread_count_independent(threads):
    """Every thread flushes the same way, so a run whose values fall into the subnormal range
    gives the same weights on 1 and 2 threads."""
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(2048, 20)) * 1e-38).astype(np.float32)  # mostly subnormal
    y = rng.integers(0, 3, 2048)
    weights = []
    _core._set_busy_check(False)
    try:
        for nthreads in (1, 2):
            threads(nthreads)
            m = _model()
            m.fit(X, y, epochs=2, batch_size=512, verbose=0)
            weights.append([w.copy() for w in m.get_weights()])
    finally:
        _core._set_busy_check(True)
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


def _epoch_times(model, X, y, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.fit(X, y, epochs=1, batch_size=256, verbose=0, shuffle=False)
        times.append(time.perf_counter() - t0)
    return times


@pytest.mark.skipif(os.environ.get("ANNFAST_SANITIZED") == "1", reason="timing under the sanitizer")
def test_subnormal_gradients_do_not_slow_training():
    """A run whose inputs, pre-activations and weight gradients are subnormal trains no slower
    per epoch than the same run on normal numbers. Without flushing, every multiply-add with a
    subnormal operand takes a microcode assist (about 100 cycles on x86) and this run is several
    times slower. Relative timing in one process: medians of interleaved epochs, with a margin
    (1.5x) far above the noise and far below the slowdown it guards against."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4096, 200)).astype(np.float32)
    X_sub = X * np.float32(1e-39)
    assert (np.abs(X_sub[X != 0]) < np.finfo(np.float32).tiny).all()  # really subnormal
    y = rng.integers(0, 3, 4096)
    normal, sub = _model(n_in=200), _model(n_in=200)
    normal.fit(X[:512], y[:512], epochs=1, batch_size=256, verbose=0)
    sub.fit(X_sub[:512], y[:512], epochs=1, batch_size=256, verbose=0)
    t_normal, t_sub = [], []
    for _ in range(5):
        t_normal += _epoch_times(normal, X, y, 1)
        t_sub += _epoch_times(sub, X_sub, y, 1)
    ratio = statistics.median(t_sub) / statistics.median(t_normal)
    assert ratio < 1.5, f"subnormal epochs {ratio:.2f}x the normal ones"
