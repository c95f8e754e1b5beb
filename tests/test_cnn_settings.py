"""Conv and pooling settings assigned after construction (the Setting descriptors of
annfast/_settings.py): activation, alpha, l1 and l2 of Conv1D/Conv2D are checked when assigned
and used by the next call exactly as a model built with them; sizes and window geometry cannot
change once built; a refused assignment changes nothing."""
import numpy as np
import pytest

import annfast as af

rng = np.random.default_rng(3)
X = rng.normal(size=(40, 8, 8, 2))
Y = rng.integers(0, 3, 40)


def build(act="relu", alpha=None, l1=0.0, l2=0.0):
    m = af.Sequential([af.Conv2D(4, 3, activation=act, alpha=alpha, l1=l1, l2=l2), af.MaxPooling2D(2),
                       af.Flatten(), af.Dense(3, activation="softmax")], input_shape=(8, 8, 2), seed=5)
    m.compile("sparse_categorical_crossentropy", af.optimizers.SGD(0.05, momentum=0.9))
    return m


def like(m, **kw):
    other = build(**kw)
    other.set_weights(m.get_weights())
    other.set_optimizer_state(m.optimizer_state())
    return other


def same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


CHANGES = [("activation", {}, {"act": "tanh"}),
           ("alpha", {"act": "leaky_relu"}, {"act": "leaky_relu", "alpha": 0.4}),
           ("l1", {}, {"l1": 0.02}),
           ("l2", {"l2": 0.05}, {"l2": 0.0})]


@pytest.mark.parametrize("name,before,after", CHANGES, ids=[c[0] for c in CHANGES])
def test_conv_setting_changed_after_fit_is_used(name, before, after):
    m = build(**before)
    m.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    fresh, stale = like(m, **after), like(m, **before)
    conv = m.layers[0]
    for key, value in after.items():
        if before.get(key) != value:
            setattr(conv, {"act": "activation"}.get(key, key), value)
    for model in (m, fresh, stale):
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    assert same_weights(m, fresh), "the model in memory ignored the change"
    assert not same_weights(stale, fresh), "this change has no effect: the test could not fail"


BAD = [
    (0, "activation", "mish", ValueError, r"^Conv2D\.activation \(layers\[0\]\) must be one of"),
    (0, "alpha", -1.0, ValueError, r"^Conv2D\.alpha \(layers\[0\]\) must be >= 0\.0"),
    (0, "l2", float("nan"), ValueError, r"^Conv2D\.l2 \(layers\[0\]\) must be finite"),
    (0, "filters", 8, ValueError, r"^Conv2D\.filters \(layers\[0\]\) cannot change once the model is built"),
    (0, "kernel_size", 3, ValueError, r"^Conv2D\.kernel_size \(layers\[0\]\) cannot change once"),
    (0, "strides", 2, ValueError, r"^Conv2D\.strides \(layers\[0\]\) cannot change once"),
    (0, "padding", "same", ValueError, r"^Conv2D\.padding \(layers\[0\]\) cannot change once"),
    (0, "use_bias", False, ValueError, r"^Conv2D\.use_bias \(layers\[0\]\) cannot change once"),
    (1, "pool_size", 1, ValueError, r"^MaxPooling2D\.pool_size \(layers\[1\]\) cannot change once"),
    (1, "strides", 1, ValueError, r"^MaxPooling2D\.strides \(layers\[1\]\) cannot change once"),
]


@pytest.mark.parametrize("i,attr,value,exc,message", BAD, ids=[f"{b[1]}={b[2]!r}" for b in BAD])
def test_bad_or_frozen_setting_is_refused_and_changes_nothing(i, attr, value, exc, message):
    m = build()
    m.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    layer = m.layers[i]
    old, config = getattr(layer, attr), m.get_config()
    with pytest.raises(exc, match=message):
        setattr(layer, attr, value)
    assert getattr(layer, attr) == old and m.get_config() == config
    ref = like(m)
    for model in (m, ref):
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    assert same_weights(m, ref)


def test_geometry_may_change_before_build_and_is_validated():
    conv, pool = af.Conv1D(3, 2), af.MaxPooling1D(2)
    conv.kernel_size, conv.strides, pool.pool_size = 3, (2,), 3
    assert conv.kernel_size == (3,) and conv.strides == (2,) and pool.pool_size == (3,)
    with pytest.raises(TypeError, match=r"^Conv1D\.kernel_size must be an int or a tuple of 1 ints"):
        conv.kernel_size = (3, 3)
    with pytest.raises(ValueError, match=r"^MaxPooling1D\.strides must be positive"):
        pool.strides = 0
    m = af.Sequential([conv, pool], input_shape=(20, 2))
    # conv: (20 - 3) // 2 + 1 = 9 steps; pool window 3 with the strides resolved at construction
    # (the pool_size of then, 2, as Keras): (9 - 3) // 2 + 1 = 4 steps
    assert m.predict(np.zeros((1, 20, 2))).shape == (1, 4, 3)
    assert m.layers[0].kernel.shape == (3, 2, 3)
