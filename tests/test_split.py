"""Split-batch training in one process (csrc/split.h, annfast.distributed.SplitBatch): every
global batch cut into pieces by sample position, each piece's gradient on its own, batch norm with
the statistics of the whole batch, dropout masks by global position. This is what each MPI process
computes (tests/test_mpi.py runs the processes); here the pieces' results are checked against the
whole-batch engine.

Tolerances: in float64 the split run differs from the whole-batch run only by the order of
additions (gradient sums per piece, batch norm's shifted one-pass variance): relative differences
~1e-15 per step, which a few SGD steps on these small networks keep far below 1e-9. A wrong piece
(local batch statistics, masks by local index, a 1/piece instead of 1/batch scale) is off by
1e-3 or more. The same holds for the convolution, recurrent and attention models (their dropout
masks drawn by global sample position too: attention's per (sample, head) task, the recurrent
layers' per (sample, feature) masks)."""
import numpy as np
import pytest

import annfast as af
from annfast import _core
from annfast.distributed import SplitBatch
from dist_models import NAMES, build, state
from layer_checks import rel_err


def _fit(name, distributed, batch=32, epochs=2, dtype="float64", optimizer="sgd", **kw):
    model, X, y = build(name, dtype=dtype, optimizer=optimizer)
    hist = model.fit(X, y, epochs=epochs, batch_size=batch, verbose=0, distributed=distributed, **kw)
    return model, hist


# ---- dropout masks by global position ---------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 7, 13, 64])
def test_dropout_piece_draws_the_masks_of_its_global_positions(dtype, width):
    x = np.random.default_rng(0).standard_normal((9, width)).astype(dtype)
    whole = _core.dropout_apply(x, 0.4, seed=3, step=5)
    np.testing.assert_array_equal(whole, x * _core.dropout_mask(x.shape, 0.4, 3, 5, dtype=dtype))
    for cut in range(0, 10):   # odd bases too: a piece may start in the middle of a hash pair
        a = _core.dropout_apply(x[:cut], 0.4, seed=3, step=5)
        b = _core.dropout_apply(x[cut:], 0.4, seed=3, step=5, base=cut * width)
        np.testing.assert_array_equal(np.concatenate([a, b]), whole)


def test_dropout_base_checked():
    with pytest.raises(ValueError, match="base"):
        _core.dropout_apply(np.ones(3), 0.5, 1, 1, base=-1)
    with pytest.raises(ValueError):
        _core.dropout_apply(np.ones(3), 0.5, 1, 1, base=2 ** 64 - 2)   # base + count overflows


# ---- the pieces add up to the whole batch -----------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_split_fit_matches_whole_batch_fit(name, parts):
    whole, h0 = _fit(name, None)
    split, h1 = _fit(name, SplitBatch(parts))
    assert rel_err(state(split), state(whole)) < 1e-9
    np.testing.assert_allclose(h1.history["loss"], h0.history["loss"], rtol=1e-10)
    np.testing.assert_allclose(h1.history["accuracy"], h0.history["accuracy"], rtol=1e-12)


def _weights(n, seed=5):
    """Sample weights with zeros (a piece may hold only zero weights) and a wide range."""
    w = np.random.default_rng(seed).uniform(0.0, 3.0, n)
    w[::7] = 0.0
    return w


@pytest.mark.parametrize("name", ["mlp", "bn_dropout", "all_kinds"])
@pytest.mark.parametrize("parts", [2, 3])
def test_weighted_split_fit_matches_whole_batch_fit(name, parts):
    """sample_weight and class_weight (Keras's normalisation: sum w l / batch size) with weighted
    validation data: a split fit is the whole-batch fit up to the order of the sums."""
    runs = []
    for dist in (None, SplitBatch(parts)):
        model, X, y = build(name, dtype="float64", optimizer="sgd")
        n = y.shape[0]
        Xt = [x[:180] for x in X] if isinstance(X, list) else X[:180]
        Xv = [x[180:] for x in X] if isinstance(X, list) else X[180:]
        h = model.fit(Xt, y[:180], epochs=2, batch_size=32, verbose=0, distributed=dist,
                      sample_weight=_weights(n)[:180], class_weight={0: 1.0, 1: 2.5, 2: 0.5},
                      validation_data=(Xv, y[180:], _weights(n, 6)[180:]))
        runs.append((state(model), h.history,
                     model.evaluate(X, y, sample_weight=_weights(n, 7), distributed=dist)))
    (s0, h0, e0), (s1, h1, e1) = runs
    assert rel_err(s1, s0) < 1e-9
    for k in h0:
        np.testing.assert_allclose(h1[k], h0[k], rtol=1e-10, err_msg=k)
    np.testing.assert_allclose(e1, e0, rtol=1e-12)


def test_weighted_split_fit_is_not_the_unweighted_one():
    """The weights reach the split engine (a run ignoring them would pass the test above only if
    the whole-batch run ignored them too)."""
    model, X, y = build("mlp", dtype="float64", optimizer="sgd")
    plain, _ = _fit("mlp", SplitBatch(2))
    model.fit(X, y, epochs=2, batch_size=32, verbose=0, distributed=SplitBatch(2),
              sample_weight=_weights(len(y)))
    assert rel_err(state(model), state(plain)) > 1e-3


def test_all_zero_weight_batch_in_pieces():
    """A global batch whose weights are all 0 under scikit-learn's normalisation (sum w) gives a
    zero loss gradient in both engines, however it is cut."""
    pytest.importorskip("sklearn")
    from annfast.sklearn import MLPRegressor
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((96, 5)), rng.standard_normal(96)
    w = rng.uniform(0.5, 2.0, 96)
    w[32:64] = 0.0
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, batch_size=32, shuffle=False, random_state=0,
              dtype="float64", solver="sgd", learning_rate_init=0.01, alpha=1e-3)
    whole = MLPRegressor(**kw).fit(X, y, sample_weight=w)
    split = MLPRegressor(distributed=SplitBatch(3), **kw).fit(X, y, sample_weight=w)
    for a, b in zip(split.coefs_ + split.intercepts_, whole.coefs_ + whole.intercepts_):
        assert rel_err(a, b) < 1e-9
    np.testing.assert_allclose(split.loss_curve_, whole.loss_curve_, rtol=1e-10)


def test_batches_smaller_than_the_pieces():
    """Batch 2 in 3 pieces, then a last batch of 1: empty pieces take part with zero sums, and
    batch norm's running statistics are still updated once per step. (Few steps: batch norm over
    2 samples amplifies rounding differences step after step.)"""
    runs = []
    for dist in (None, SplitBatch(3)):
        model, X, y = build("all_kinds", dtype="float64", optimizer="sgd")
        model.fit([x[:7] for x in X], y[:7], epochs=1, batch_size=2, verbose=0, distributed=dist)
        runs.append(state(model))
    assert rel_err(runs[1], runs[0]) < 1e-9


@pytest.mark.parametrize("name", ["all_kinds", "cnn", "lstm", "transformer"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_runs_are_bitwise_reproducible_for_any_thread_count(threads, name, dtype):
    runs = []
    for t in (1, 2, 1):
        threads(t)
        runs.append(state(_fit(name, SplitBatch(2), dtype=dtype, optimizer="adam")[0]))
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


@pytest.mark.parametrize("name", ["cnn", "lstm", "transformer"])
@pytest.mark.parametrize("parts", [2, 3])
def test_split_float32_fit_stays_near_the_whole_batch_fit(name, parts):
    """float32, SGD: only rounding (eps32 ~ 6e-8 per operation) separates the runs (measured
    ~1e-7 relative after 14 steps); masks or statistics of the wrong samples are off by 1e-3 or
    more. (Not Adam: parameters whose gradient is 0 up to rounding, a convolution bias before
    batch norm or attention's key bias, take O(lr) steps along the sign of that rounding noise.)"""
    whole, _ = _fit(name, None, dtype="float32")
    split, _ = _fit(name, SplitBatch(parts), dtype="float32")
    assert rel_err(state(split), state(whole)) < 1e-5



def test_split_fit_on_every_instruction_set(isa):
    whole, _ = _fit("bn_dropout", None)
    split, _ = _fit("bn_dropout", SplitBatch(2))
    assert rel_err(state(split), state(whole)) < 1e-9


def test_split_with_validation_and_callbacks():
    log = []
    cb = af.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: log.append(sorted(logs)))
    model, hist = _fit("residual", SplitBatch(2), validation_split=0.2, callbacks=[cb])
    assert log == [["accuracy", "loss", "val_accuracy", "val_loss"]] * 2
    assert len(hist.history["val_loss"]) == 2


def test_split_evaluate_and_predict_are_the_local_ones():
    model, X, y = build("all_kinds")
    np.testing.assert_array_equal(model.predict(X, distributed=SplitBatch(2)), model.predict(X))
    assert model.evaluate(X, y, distributed=SplitBatch(2)) == model.evaluate(X, y)


def test_split_keeps_the_float_type_and_shapes():
    model, X, y = build("mlp", dtype="float32")
    model.fit(X, y, epochs=1, verbose=0, distributed=SplitBatch(2))
    assert model.predict(X).dtype == np.float32


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("parts, err", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                        ("2", TypeError)])
def test_split_batch_parts_checked(parts, err):
    with pytest.raises(err, match="parts"):
        SplitBatch(parts)


@pytest.mark.parametrize("bad", ["nccl", 3, object()])
def test_unknown_distributed_value(bad):
    model, X, y = build("mlp")
    before = state(model).copy()
    with pytest.raises(ValueError, match="distributed must be"):
        model.fit(X, y, epochs=1, verbose=0, distributed=bad)
    np.testing.assert_array_equal(state(model), before)


def test_rejected_split_fit_leaves_the_model_unchanged():
    model, X, y = build("bn_dropout")
    before = state(model).copy()
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, y, epochs=1, batch_size=0, verbose=0, distributed=SplitBatch(2))
    np.testing.assert_array_equal(state(model), before)


def test_train_split_pieces_checked():
    model, X, y = build("mlp")
    eng = model._get_engine()
    perm = np.empty(len(X), np.uint64)
    for parts, first, count in [(2, 2, 1), (2, 1, 2), (0, 0, 1), (2, 0, 0)]:
        with pytest.raises(ValueError, match="pieces"):
            _core.train_split(eng, [X], [y], 32, 0, 0, model.optimizer.c_config(0),
                              model._opt_state, 0, perm, parts, first, count)


def test_mpi_without_mpi4py_says_how_to_install(monkeypatch):
    import sys
    from annfast import distributed
    monkeypatch.setattr(distributed, "_world", None)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    model, X, y = build("mlp")
    with pytest.raises(ImportError, match=r'pip install "annfast\[mpi\]"'):
        model.fit(X, y, epochs=1, verbose=0, distributed="mpi")


# ---- scikit-learn -----------------------------------------------------------------------------
def test_sklearn_split_batch():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.datasets import load_digits
    from annfast.sklearn import MLPClassifier
    X, y = load_digits(return_X_y=True)
    kw = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0, batch_size=64, dtype="float64",
              solver="sgd", learning_rate_init=0.05)
    whole = MLPClassifier(**kw).fit(X, y)
    est = MLPClassifier(distributed=SplitBatch(2), **kw)
    assert clone(est).get_params()["distributed"].parts == 2
    split = est.fit(X, y)
    for a, b in zip(split.coefs_ + split.intercepts_, whole.coefs_ + whole.intercepts_):
        assert rel_err(a, b) < 1e-9
    np.testing.assert_allclose(split.loss_curve_, whole.loss_curve_, rtol=1e-10)
    with pytest.raises(ValueError, match="distributed must be"):
        MLPClassifier(distributed="gloo", max_iter=1).fit(X, y)


def test_sklearn_weighted_split_batch():
    """scikit-learn's normalisation (each batch's objective over its weight sum, the L2 penalty
    scaled with it) over split batches, with early stopping splitting the weights with the rows."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from annfast.sklearn import MLPClassifier
    X, y = load_digits(return_X_y=True)
    w = _weights(len(y))
    kw = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0, batch_size=64, dtype="float64",
              solver="sgd", learning_rate_init=0.05, alpha=1e-3, early_stopping=True)
    whole = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    split = MLPClassifier(distributed=SplitBatch(2), **kw).fit(X, y, sample_weight=w)
    for a, b in zip(split.coefs_ + split.intercepts_, whole.coefs_ + whole.intercepts_):
        assert rel_err(a, b) < 1e-9
    np.testing.assert_allclose(split.loss_curve_, whole.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(split.validation_scores_, whole.validation_scores_, rtol=1e-12)
    unweighted = MLPClassifier(distributed=SplitBatch(2), **kw).fit(X, y)
    assert rel_err(unweighted.coefs_[0], split.coefs_[0]) > 1e-3


# ---- the shared-memory gradient sum of processes on one machine (annfast.distributed) ----------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nbuf", [1, 2, 3, 4])
def test_split_sum_all_adds_in_buffer_order_into_every_buffer(dtype, nbuf):
    """Ranges summed one call each (as each process sums its own) leave in every buffer the sum in
    buffer order, bitwise the order one process adds its pieces in; NaN and inf propagate."""
    rng = np.random.default_rng(nbuf)
    n = 1000 + 37
    bufs = [(rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dtype) for _ in range(nbuf)]
    bufs[0][5] = np.nan
    bufs[-1][9] = np.inf
    ref = bufs[0].copy()
    for b in bufs[1:]:
        ref += b                      # NumPy: one rounding per add, left to right
    bounds = [0, 16, 16, 515, n]      # an empty range and ranges not on a block boundary
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        _core.split_sum_all(bufs, lo, hi)
    for q, b in enumerate(bufs):
        np.testing.assert_array_equal(b, ref, err_msg=f"buffer {q}")
    assert np.isnan(ref[5]) and (nbuf == 1 or np.isinf(ref[9]))


def test_split_sum_all_rejects_bad_buffers_and_ranges():
    a, b = np.zeros(8, np.float32), np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="at least one"):
        _core.split_sum_all([], 0, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.split_sum_all([np.zeros(8, np.int64)], 0, 8)
    with pytest.raises(TypeError, match="float32"):
        _core.split_sum_all([a, np.zeros(8, np.float64)], 0, 8)
    with pytest.raises(ValueError, match="one length"):
        _core.split_sum_all([a, np.zeros(9, np.float32)], 0, 8)
    with pytest.raises(ValueError, match="range"):
        _core.split_sum_all([a, b], 5, 4)
    with pytest.raises(ValueError, match="range"):
        _core.split_sum_all([a, b], 0, 9)
    with pytest.raises(TypeError, match="contiguous"):
        _core.split_sum_all([a, np.zeros(16, np.float32)[::2]], 0, 8)
    ro = np.zeros(8, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        _core.split_sum_all([a, ro], 0, 8)
    np.testing.assert_array_equal(a, 0)


def test_train_split_rejects_a_shared_gradient_buffer_it_cannot_use():
    """The buffer annfast.distributed passes must have the engine's dtype, room for every
    parameter and 64-byte alignment; anything else is refused before C reads it."""
    model, X, y = build("mlp")
    eng = model._get_engine()
    n = model._params.size
    args = (eng, [X], [y], 32, 0, 0, model.optimizer.c_config(0), model._opt_state, 0,
            np.empty(len(X), np.uint64), 1, 0, 1)
    before = state(model).copy()
    raw = np.zeros(n + 64, model._params.dtype)
    off = (-raw.ctypes.data % 64) // raw.itemsize
    other = np.float64 if raw.dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match=raw.dtype.name):
        _core.train_split(*args, shared_grads=np.zeros(n, other))
    with pytest.raises(ValueError, match="parameters"):
        _core.train_split(*args, shared_grads=raw[off:off + n - 1])
    with pytest.raises(ValueError, match="64-byte"):
        _core.train_split(*args, shared_grads=raw[off + 1:off + 1 + n])
    np.testing.assert_array_equal(state(model), before)
    # an aligned buffer: the steps run, the gradient lands there, not in the model's own buffer
    buf = raw[off:off + n]
    own = model._grads.copy()
    _core.train_split(*args, shared_grads=buf)
    assert np.any(buf != 0) and not np.array_equal(state(model), before)
    np.testing.assert_array_equal(model._grads, own)
