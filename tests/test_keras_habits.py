"""What Keras users expect of models and layers (issue 19): layer.weights as Keras lists them,
pickling and deep copies of trained (functional) models, summary() printing, repr, Keras's
compile order, verbose= in predict/evaluate, a warning for a one-unit softmax, and a clear error
for layers written in Python."""
import copy
import pickle

import numpy as np
import pytest

import annfast as af


def trained(functional=False, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    if functional:
        x = af.Input(shape=(5,))
        h = af.Dense(8, activation="relu")(x)
        out = af.Dense(3, activation="softmax")(af.Add()([h, af.Dense(8)(x)]))
        m = af.Model(x, out, seed=seed)
    else:
        m = af.Sequential([af.Dense(8, activation="relu"), af.BatchNormalization(), af.Dropout(0.2),
                           af.Dense(3, activation="softmax")], input_dim=5, seed=seed)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(X, y, epochs=2, batch_size=16, verbose=0)
    m.predict(X)
    return m, X, y


def test_layer_weights_are_keras_lists():
    m, _, _ = trained()
    dense, bn = m.layers[0], m.layers[1]
    assert [w.shape for w in dense.weights] == [(5, 8), (8,)]
    assert dense.weights[0] is not None and np.shares_memory(dense.weights[0], dense.kernel)
    assert [w.shape for w in bn.weights] == [(8,)] * 4
    w = dense.get_weights()
    dense.set_weights([np.zeros((5, 8)), np.ones(8)])
    assert not dense.kernel.any() and (dense.bias == 1).all()
    dense.set_weights(w)
    with pytest.raises(AttributeError, match="set_weights"):
        dense.weights = w
    with pytest.raises(ValueError, match="shape"):
        dense.set_weights([np.zeros((4, 8)), np.ones(8)])


@pytest.mark.parametrize("functional", [False, True])
def test_trained_models_pickle_and_deepcopy(functional):
    m, X, y = trained(functional)
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        np.testing.assert_array_equal(clone.predict(X), m.predict(X))
        # the copy owns its buffers: training it leaves the original alone, and continues
        # exactly as the original would
        before = m.get_weights()
        h1 = clone.fit(X, y, epochs=1, batch_size=16, verbose=0).history
        for a, b in zip(before, m.get_weights()):
            np.testing.assert_array_equal(a, b)
        twin = copy.deepcopy(m)
        h2 = twin.fit(X, y, epochs=1, batch_size=16, verbose=0).history
        assert h1 == h2


def test_summary_prints_and_returns_and_repr(capsys):
    m, _, _ = trained()
    text = m.summary()
    assert text == capsys.readouterr().out.rstrip("\n") and "Total params" in text
    assert "Sequential" in repr(m) and str(m.count_params()) in repr(m)


def test_compile_in_keras_order_and_verbose_keywords():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    a = af.Sequential([af.Dense(1)], input_dim=3, seed=0)
    a.compile(af.optimizers.Adam(0.01), "mse", ["rmse"])        # Keras: optimizer, loss, metrics
    b = af.Sequential([af.Dense(1)], input_dim=3, seed=0)
    b.compile("mse", af.optimizers.Adam(0.01), ["rmse"])        # annfast's earlier order
    assert a.loss == b.loss == "mse" and a.metrics == b.metrics == ["rmse"]
    assert a.fit(X, y, epochs=2, verbose=0).history == b.fit(X, y, epochs=2, verbose=0).history
    a.predict(X, verbose=0)
    a.evaluate(X, y, verbose=0)
    with pytest.raises(TypeError, match="both"):
        a.compile("adam", "mse", loss="mae")
    with pytest.raises(ValueError, match="needs a loss"):
        a.compile("adam")


def test_one_unit_softmax_warns():
    with pytest.warns(UserWarning, match="softmax over a last axis of size 1"):
        af.Sequential([af.Dense(4), af.Dense(1, activation="softmax")], input_dim=2)
    with pytest.warns(UserWarning, match="sigmoid"):
        af.Activation("softmax")(af.Input(shape=(3, 1)))


def test_python_layers_are_refused_with_a_clear_message():
    class MyLayer(af.layers.Layer):
        def output_shape(self, input_shape):
            return input_shape

    with pytest.raises(TypeError, match="written in Python .* not supported"):
        af.Sequential([af.Dense(2), MyLayer()], input_dim=3)
    with pytest.raises(TypeError, match="adding-a-layer"):
        MyLayer()(af.Input(shape=(3,)))
