"""Settings changed after a model has trained: every one the engine uses (optimizer clipnorm and
clipvalue, Dense activation/alpha/l1/l2, Dropout rate, BatchNormalization momentum/epsilon, the
loss) is validated when assigned and used by the next call, exactly as a model built with it
would; sizes (units, use_bias) cannot change once built."""
import math

import numpy as np
import pytest

import annfast as af

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 6))
Y = rng.integers(0, 3, 300)
BASE = dict(act="relu", alpha=None, l1=0.0, l2=0.0, rate=0.2, momentum=0.9, epsilon=1e-3,
            clipnorm=None, clipvalue=None)


def build(**kw):
    c = dict(BASE, **kw)
    layers = [af.Dense(16, activation=c["act"], alpha=c["alpha"], l1=c["l1"], l2=c["l2"]),
              af.BatchNormalization(momentum=c["momentum"], epsilon=c["epsilon"]),
              af.Dropout(c["rate"]), af.Dense(3, activation="softmax")]
    m = af.Sequential(layers, input_dim=6, seed=11)
    m.compile("sparse_categorical_crossentropy",
              af.optimizers.SGD(0.05, momentum=0.9, clipnorm=c["clipnorm"], clipvalue=c["clipvalue"]))
    return m


def target(m, key):
    """(object, attribute) a BASE key lives in."""
    if key in ("clipnorm", "clipvalue"):
        return m.optimizer, key
    if key in ("act", "alpha", "l1", "l2"):
        return m.layers[0], {"act": "activation"}.get(key, key)
    if key == "rate":
        return m.layers[2], key
    return m.layers[1], key


def change(m, before, after):
    for key, value in after.items():
        if before.get(key, BASE[key]) != value:
            setattr(*target(m, key), value)


def same_state(a, b):
    return (all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
            and np.array_equal(a.optimizer_state()["state"], b.optimizer_state()["state"]))


def like(m, **kw):
    """A model built with settings kw holding m's weights and optimiser state."""
    other = build(**kw)
    other.set_weights(m.get_weights())
    other.set_optimizer_state(m.optimizer_state())
    return other


CHANGES = [
    ("clipnorm off", dict(clipnorm=0.05), dict(clipnorm=None)),
    ("clipnorm on", dict(), dict(clipnorm=0.05)),
    ("clipvalue off", dict(clipvalue=0.002), dict(clipvalue=None)),
    ("clipvalue on", dict(), dict(clipvalue=0.002)),
    ("l1", dict(), dict(l1=0.01)),
    ("l2", dict(l2=0.05), dict(l2=0.0)),
    ("dropout off", dict(rate=0.5), dict(rate=0.0)),
    ("dropout on", dict(rate=0.0), dict(rate=0.4)),
    ("activation", dict(act="relu"), dict(act="tanh")),
    ("activation resets alpha", dict(act="tanh"), dict(act="elu")),
    ("alpha", dict(act="leaky_relu"), dict(act="leaky_relu", alpha=0.3)),
    ("bn momentum", dict(momentum=0.9), dict(momentum=0.1)),
    ("bn epsilon", dict(epsilon=1e-3), dict(epsilon=0.5)),
]


@pytest.mark.parametrize("name,before,after", CHANGES, ids=[c[0] for c in CHANGES])
def test_setting_changed_after_fit_is_used_and_saved(name, before, after, tmp_path):
    m = build(**before)
    m.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    fresh, stale = like(m, **after), like(m, **before)
    change(m, before, after)
    assert unnamed(m.get_config()) == unnamed(fresh.get_config())
    np.testing.assert_array_equal(m.predict(X), fresh.predict(X))
    m.save(tmp_path / "m.npz")
    back = af.load_model(tmp_path / "m.npz")
    for model in (m, fresh, stale, back):
        model.fit(X, Y, epochs=2, batch_size=32, verbose=0)
    assert same_state(m, fresh), "the model in memory ignored the change"
    assert same_state(back, m), "the reloaded model trains differently from the one in memory"
    assert not same_state(stale, fresh), "this change has no effect: the test could not fail"
    assert m.evaluate(X, Y) == fresh.evaluate(X, Y)


def test_loss_assigned_after_fit_is_used():
    m = build()
    m.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    onehot = np.eye(3)[Y]
    fresh = like(m)
    fresh.compile("categorical_crossentropy", fresh.optimizer)   # compile resets the state
    fresh.set_optimizer_state(m.optimizer_state())
    m.loss = "categorical_crossentropy"
    for model in (m, fresh):
        model.fit(X, onehot, epochs=1, batch_size=32, verbose=0)
    assert same_state(m, fresh)


def test_change_made_by_a_callback_applies_from_the_next_epoch():
    class NoDropoutAfterFirst(af.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.layers[2].rate = 0.0

    m = build(rate=0.5)
    m.fit(X, Y, epochs=3, batch_size=32, verbose=0, callbacks=[NoDropoutAfterFirst()])
    ref = build(rate=0.5)
    ref.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    ref = like(ref, rate=0.0)
    ref.fit(X, Y, epochs=2, batch_size=32, verbose=0)
    assert same_state(m, ref)


def unnamed(config):
    """A model config without the layers' automatic names (two models never share them)."""
    return dict(config, layers=[{k: v for k, v in lc.items() if k != "name"} for lc in config["layers"]])


def _layer(i):
    return lambda m: m.layers[i]


BAD = [
    (_layer(0), "activation", "mish", ValueError,
     r"^Dense\.activation \(layers\[0\]\) must be one of linear, .*; got 'mish'"),
    (_layer(0), "activation", 3, TypeError, r"^Dense\.activation \(layers\[0\]\) must be a str"),
    (_layer(0), "alpha", -0.5, ValueError, r"^Dense\.alpha \(layers\[0\]\) must be >= 0\.0, got -0\.5$"),
    (_layer(0), "alpha", "0.1", TypeError, r"^Dense\.alpha \(layers\[0\]\) must be a real number"),
    (_layer(0), "l1", -1, ValueError, r"^Dense\.l1 \(layers\[0\]\) must be >= 0\.0, got -1\.0$"),
    (_layer(0), "l2", math.nan, ValueError, r"^Dense\.l2 \(layers\[0\]\) must be finite and >= 0\.0, got nan$"),
    (_layer(0), "l2", math.inf, ValueError, r"must be finite"),
    (_layer(0), "units", 32, ValueError, r"^Dense\.units \(layers\[0\]\) cannot change once the model is built"),
    (_layer(0), "use_bias", False, ValueError, r"^Dense\.use_bias \(layers\[0\]\) cannot change once"),
    (_layer(1), "momentum", 1.5, ValueError,
     r"^BatchNormalization\.momentum \(layers\[1\]\) must be in \[0\.0, 1\.0\], got 1\.5$"),
    (_layer(1), "epsilon", 0.0, ValueError, r"^BatchNormalization\.epsilon \(layers\[1\]\) must be > 0\.0, got 0\.0$"),
    (_layer(2), "rate", 1.0, ValueError, r"^Dropout\.rate \(layers\[2\]\) must be in \[0\.0, 1\.0\), got 1\.0$"),
    (_layer(2), "rate", -0.1, ValueError, r"^Dropout\.rate \(layers\[2\]\) must be in \[0\.0, 1\.0\), got -0\.1$"),
    (_layer(2), "rate", True, TypeError, r"^Dropout\.rate \(layers\[2\]\) must be a real number, got bool"),
    (lambda m: m.optimizer, "clipnorm", 0.0, ValueError, r"^SGD\.clipnorm must be > 0\.0 \(or None\), got 0\.0$"),
    (lambda m: m.optimizer, "clipvalue", -1, ValueError, r"^SGD\.clipvalue must be > 0\.0 \(or None\), got -1\.0$"),
    (lambda m: m.optimizer, "clipnorm", "1", TypeError, r"^SGD\.clipnorm must be a real number"),
    (lambda m: m, "loss", "bogus", ValueError, r"loss must be one of"),
    (lambda m: m, "loss", 3, TypeError, r"loss must be a str"),
]


@pytest.mark.parametrize("where,attr,value,exc,message", BAD,
                         ids=[f"{b[1]}={b[2]!r}" for b in BAD])
def test_bad_setting_is_refused_at_assignment_and_changes_nothing(where, attr, value, exc, message):
    m = build()
    m.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    obj = where(m)
    old, config = getattr(obj, attr), m.get_config()
    with pytest.raises(exc, match=message):
        setattr(obj, attr, value)
    assert getattr(obj, attr) == old and m.get_config() == config
    ref = like(m)
    for model in (m, ref):
        model.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    assert same_state(m, ref)


def test_sizes_may_change_before_build_only():
    layer = af.Dense(4)
    layer.units, layer.use_bias = 6, False          # not built yet: allowed, and validated
    with pytest.raises(ValueError, match=r"^Dense\.units must be >= 1, got 0$"):
        layer.units = 0
    m = af.Sequential([layer], input_dim=3)
    assert m.layers[0].kernel.shape == (3, 6) and m.layers[0].bias is None
    with pytest.raises(ValueError, match="cannot change once the model is built"):
        layer.units = 6                               # even to the same value: sizes are fixed


def test_constructor_errors_name_the_class_and_setting():
    with pytest.raises(ValueError, match=r"^Dropout\.rate must be in \[0\.0, 1\.0\), got 1\.0$"):
        af.Dropout(1.0)
    with pytest.raises(ValueError, match=r"^Dense\.l2 must be >= 0\.0, got -1\.0$"):
        af.Dense(3, kernel_regularizer={"l2": -1})
    with pytest.raises(ValueError, match=r"^Adam\.clipnorm must be > 0\.0 \(or None\), got 0\.0$"):
        af.optimizers.Adam(clipnorm=0)


def test_empty_sequential_says_it_needs_a_layer():
    X2, y2 = np.ones((4, 3)), np.ones((4, 1))
    m = af.Sequential([])
    m.compile("mse", "sgd")
    for call in (lambda: m.fit(X2, y2, verbose=0), lambda: m.predict(X2),
                 lambda: m.evaluate(X2, y2), lambda: m.gradients(X2, y2), lambda: m.build(3)):
        with pytest.raises(ValueError, match="needs at least one layer"):
            call()
    assert not m.built


@pytest.mark.parametrize("make, attr, value", [
    (lambda: af.LSTM(4), "units", 8),
    (lambda: af.GRU(4, return_sequences=True), "return_sequences", False),
    (lambda: af.SimpleRNN(4), "go_backwards", True),
    (lambda: af.LayerNormalization(), "epsilon", 1e-3),
    (lambda: af.MultiHeadAttention(2, 3), "num_heads", 4),
])
def test_unchecked_settings_of_a_built_layer_cannot_change(make, attr, value):
    """Sizes and modes that are not checked Settings: assigning one once the model is built is
    refused (the engine was built from it), and nothing changes; before build it is accepted."""
    free = make()
    setattr(free, attr, value)
    assert getattr(free, attr) == value
    layer = make()
    x = af.Input(shape=(5, 6))
    y = layer(x, x) if isinstance(layer, af.MultiHeadAttention) else layer(x)
    model = af.Model(x, y, seed=0)
    before = layer.get_config()
    X = np.random.default_rng(0).normal(size=(3, 5, 6))
    pred = model.predict(X)
    with pytest.raises(ValueError, match=rf"{type(layer).__name__}\.{attr} .*cannot change"):
        setattr(layer, attr, value)
    assert layer.get_config() == before
    np.testing.assert_array_equal(model.predict(X), pred)
