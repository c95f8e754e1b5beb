"""One-process fits of small dense networks cut every batch into two pieces that annfast's threads
compute at once (csrc/split.c af_local_pieces decides; csrc/engine_split_impl.h runs the pieces'
passes as one pool job and the update as another, in blocks). The cut depends on the network and
the batch size only, so every thread count gives the same bits; it is the computation of
SplitBatch(2), so that gives the same bits too; and it differs from an uncut step only by the
order in which the gradient sums the samples.

Tolerance of the uncut comparison: float64, a few Adam steps of a small network; per step the two
gradients differ by the rounding of sums over <= 200 terms (~1e-16 relative), which Adam's
normalised steps keep ~1e-14 relative in the weights. A wrong cut (a piece's mean instead of the
batch's, a piece left out, the penalty counted twice) is off by 1e-3 or more."""
import numpy as np
import pytest

import annfast as af
from annfast import _core
from annfast._data_parallel import LOCAL
from annfast.distributed import SplitBatch
from layer_checks import rel_err


def mlp(sizes, dtype="float32", l2=0.0, dropout=0.0, seed=5, optimizer="adam"):
    layers = []
    for h in sizes[1:-1]:
        layers.append(af.Dense(h, activation="relu", l2=l2))
        if dropout:
            layers.append(af.Dropout(dropout))
    layers.append(af.Dense(sizes[-1], activation="softmax"))
    model = af.Sequential(layers, input_dim=sizes[0], dtype=dtype, seed=seed)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)
    return model


def data(n, d, k, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), np.eye(k, dtype=dtype)[rng.integers(0, k, n)]


def state(model):
    return np.concatenate([model._params, model._stats, model._opt_state])


# ---- the policy --------------------------------------------------------------------------------
def test_small_dense_networks_are_cut_from_64_rows():
    eng = mlp([64, 64, 10])._get_engine()
    assert [_core.local_pieces(eng, b) for b in (1, 16, 63, 64, 200, 5000)] == [1, 1, 1, 2, 2, 2]


def test_large_dense_networks_are_cut_from_192_rows_only():
    eng = mlp([784, 512, 256, 10])._get_engine()       # 535k weights
    assert [_core.local_pieces(eng, b) for b in (64, 128, 191, 192, 256)] == [1, 1, 1, 2, 2]
    huge = mlp([1000, 1024, 10])._get_engine()          # over a million weights: never
    assert _core.local_pieces(huge, 1024) == 1


def test_other_networks_are_not_cut():
    bn = af.Sequential([af.Dense(16), af.BatchNormalization(), af.Dense(3, activation="softmax")],
                       input_dim=8, seed=0)
    conv = af.Sequential([af.Conv2D(4, 3, activation="relu"), af.Flatten(), af.Dense(3, activation="softmax")],
                         input_shape=(8, 8, 1), seed=0)
    rnn = af.Sequential([af.LSTM(8), af.Dense(3, activation="softmax")], input_shape=(5, 4), seed=0)
    for model in (bn, conv, rnn):
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        assert _core.local_pieces(model._get_engine(), 256) == 1
    with pytest.raises(ValueError, match="batch size must be >= 1"):
        _core.local_pieces(mlp([4, 3])._get_engine(), 0)


# ---- the same bits for any thread count, and as SplitBatch(2) -----------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_cut_fit_is_bitwise_the_same_for_any_thread_count(threads, dtype, optimizer):
    X, y = data(530, 20, 4, dtype)
    w = np.random.default_rng(1).uniform(0.5, 2.0, 530).astype(dtype)
    runs = []
    for t in (1, 2, 1):
        threads(t)
        model = mlp([20, 48, 32, 4], dtype, l2=1e-3, dropout=0.2, optimizer=optimizer)
        assert _core.local_pieces(model._get_engine(), 100) == 2
        hist = model.fit(X, y, epochs=3, batch_size=100, sample_weight=w, verbose=0)
        runs.append((state(model), np.array(hist.history["loss"])))
    for s, h in runs[1:]:
        np.testing.assert_array_equal(s, runs[0][0])
        np.testing.assert_array_equal(h, runs[0][1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cut_fit_is_bitwise_split_batch_2(dtype):
    X, y = data(403, 16, 3, dtype)
    runs = []
    for dist in (None, SplitBatch(2)):
        model = mlp([16, 40, 3], dtype, l2=1e-4, dropout=0.1)
        hist = model.fit(X, y, epochs=2, batch_size=128, verbose=0, distributed=dist)
        runs.append((state(model), hist.history["loss"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_cut_fit_is_the_uncut_fit_up_to_rounding():
    """One epoch through the engine's uncut path (train_epoch) and through the cut one (what fit
    runs), from the same weights, float64."""
    X, y = data(600, 12, 3, "float64")
    out = []
    for cut in (False, True):
        model = mlp([12, 32, 3], "float64", l2=1e-3, seed=9)
        model.fit(X[:1], y[:1], epochs=1, batch_size=1, verbose=0)   # builds; one tiny step
        eng = model._get_engine()
        cfg = model.optimizer.c_config(0)
        perm = np.arange(600, dtype=np.uint64)
        args = ([X], [y], 200, 0, 0, cfg, model._opt_state, model._step, perm)
        stats, _, _ = LOCAL.train(eng, *args) if cut else eng.train_epoch(*args)
        out.append((state(model), stats["loss_sum"]))
    assert _core.local_pieces(eng, 200) == 2
    assert not np.array_equal(out[1][0], out[0][0])      # the sums did run in another order
    assert rel_err(out[1][0], out[0][0]) < 1e-12
    assert abs(out[1][1] - out[0][1]) <= 1e-12 * abs(out[0][1])


def test_update_in_blocks_is_the_update_after_the_sum():
    """The pieces' update in blocks on threads (no sum over processes) against the same step with
    a sum over processes between the pieces' gradients and the update (a do-nothing reduce, which
    takes the serial path): bitwise the same weights, optimiser state and loss."""
    X, y = data(700, 30, 5, "float32")
    out = []
    for reduce in (None, lambda arr: None):
        model = mlp([30, 2100, 5], "float32", l2=1e-3, seed=4)          # 73k weights: 72 blocks
        model.fit(X[:1], y[:1], epochs=1, batch_size=1, verbose=0)
        eng = model._get_engine()
        pieces, step, _ = _core.train_split(eng, [X], [y], 100, 0, 0, model.optimizer.c_config(0),
                                            model._opt_state, model._step, np.arange(700, dtype=np.uint64),
                                            2, 0, 2, reduce)
        out.append((state(model), [p["loss_sum"] for p in pieces], step))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert out[0][1] == out[1][1] and out[0][2] == out[1][2]


def test_stop_request_ends_a_cut_fit_after_its_last_whole_step():
    """request_stop() during a cut fit (here at the start of the second epoch) stops before the
    next step: the weights are those of a one-epoch fit, bit for bit."""
    X, y = data(400, 10, 3)

    class Stop(af.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                _core.request_stop()

    stopped, once = mlp([10, 24, 3], seed=2), mlp([10, 24, 3], seed=2)
    assert _core.local_pieces(stopped._get_engine(), 100) == 2
    hist = stopped.fit(X, y, epochs=4, batch_size=100, shuffle=False, callbacks=[Stop()], verbose=0)
    once.fit(X, y, epochs=1, batch_size=100, shuffle=False, verbose=0)
    assert stopped.interrupted and len(hist.history["loss"]) == 1
    np.testing.assert_array_equal(state(stopped), state(once))
