"""Pooling (csrc/layers/pool.c, global_pool.c): MaxPooling/AveragePooling 1D and 2D and the
global poolings against PyTorch (values and input gradients), finite differences, ties and NaN in
max pooling, BatchNormalization and Dropout on images, 1 vs 2 threads, bad input."""
import itertools

import numpy as np
import pytest

import annfast as af
from cnn_checks import TOL, from_torch, rel, to_torch, torch_pool
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check

POOLS = {("max", 2): af.MaxPooling2D, ("avg", 2): af.AveragePooling2D,
         ("max", 1): af.MaxPooling1D, ("avg", 1): af.AveragePooling1D}


def pool_model(layer, shape, dtype):
    x = af.Input(shape=shape)
    model = af.Model(x, layer(x), dtype=dtype, seed=0)
    model.compile(loss="mse", optimizer="sgd")
    return model


def check_pool(kind, rank, shape, pool, strides, padding, batch, dtype, seed=0):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    layer = POOLS[kind, rank](pool, strides=strides, padding=padding)
    model = pool_model(layer, shape, dtype)
    X = rng.normal(size=(batch,) + shape).astype(dtype)
    Y = model.predict(X)
    target = rng.normal(size=Y.shape).astype(dtype)
    dx = model.input_gradients(X, target)[0]
    t = to_torch(torch, X.astype(np.float64), torch.float64)
    y = torch_pool(torch, t, kind, layer.pool_size, layer.strides, padding)
    ((y - torch.tensor(np.moveaxis(target, -1, 1).astype(np.float64))) ** 2).mean().backward()
    assert Y.shape == from_torch(y).shape
    assert rel(Y, from_torch(y)) <= TOL[dtype]
    assert rel(dx, from_torch(t.grad)) <= TOL[dtype]


@pytest.mark.parametrize("kind,pool,strides,padding,size,channels,batch", list(itertools.product(
    ["max", "avg"], [2, 3, (3, 2)], [None, 1, 2], ["valid", "same"], [(9, 7), (8, 8)], [1, 3], [1, 7])))
def test_pool2d_against_torch(kind, pool, strides, padding, size, channels, batch):
    for dtype in ("float64", "float32"):
        check_pool(kind, 2, size + (channels,), pool, strides, padding, batch, dtype)


@pytest.mark.parametrize("kind,pool,strides,padding,length,channels", list(itertools.product(
    ["max", "avg"], [2, 3], [None, 1, 2], ["valid", "same"], [9, 10], [1, 20])))
def test_pool1d_against_torch(kind, pool, strides, padding, length, channels):
    for dtype in ("float64", "float32"):
        check_pool(kind, 1, (length, channels), pool, strides, padding, 5, dtype)


@pytest.mark.parametrize("channels", [1, 5, 17, 40])
def test_pool_channel_blocks_on_every_isa(channels, isa):
    # channel counts around the 16-channel blocks of the max-pool scan
    for kind in ("max", "avg"):
        check_pool(kind, 2, (6, 7, channels), 2, None, "same", 3, "float32")


GLOBAL = {"GlobalAveragePooling2D": (2, lambda t: t.mean(dim=(2, 3))),
          "GlobalMaxPooling2D": (2, lambda t: t.amax(dim=(2, 3))),
          "GlobalAveragePooling1D": (1, lambda t: t.mean(dim=2)),
          "GlobalMaxPooling1D": (1, lambda t: t.amax(dim=2))}


@pytest.mark.parametrize("name", sorted(GLOBAL))
def test_global_pooling_against_torch(name):
    torch = pytest.importorskip("torch")
    rank, ref = GLOBAL[name]
    shape = (5, 4, 6) if rank == 2 else (7, 6)
    rng = np.random.default_rng(1)
    for dtype in ("float64", "float32"):
        model = pool_model(getattr(af, name)(), shape, dtype)
        X = rng.normal(size=(7,) + shape).astype(dtype)
        target = rng.normal(size=(7, 6)).astype(dtype)
        Y, dx = model.predict(X), model.input_gradients(X, target)[0]
        t = to_torch(torch, X.astype(np.float64), torch.float64)
        y = ref(t)
        ((y - torch.tensor(target.astype(np.float64))) ** 2).mean().backward()
        assert rel(Y, y.detach().numpy()) <= TOL[dtype]
        assert rel(dx, from_torch(t.grad)) <= TOL[dtype]


def fd_model(layer, shape):
    x = af.Input(shape=shape)
    h = af.Dense(3, activation="tanh")(x)               # parameters before the pooling
    h = layer(h)
    out = af.Dense(2)(h if len(h.shape) == 2 else af.Flatten()(h))
    model = af.Model(x, out, dtype="float64", seed=2)
    model.compile(loss="mse", optimizer="sgd")
    return model


FD_LAYERS = {
    "max2d": (lambda: af.MaxPooling2D(2, padding="same"), (5, 6, 2)),
    "max2d-overlap": (lambda: af.MaxPooling2D(3, strides=1), (5, 6, 2)),
    "avg2d": (lambda: af.AveragePooling2D((2, 3), strides=(1, 2), padding="same"), (5, 6, 2)),
    "max1d": (lambda: af.MaxPooling1D(3, strides=2, padding="same"), (9, 2)),
    "avg1d": (lambda: af.AveragePooling1D(2), (9, 2)),
    "gavg2d": (lambda: af.GlobalAveragePooling2D(), (4, 5, 2)),
    "gmax2d": (lambda: af.GlobalMaxPooling2D(), (4, 5, 2)),
    "gmax1d": (lambda: af.GlobalMaxPooling1D(), (7, 2)),
    "gavg1d": (lambda: af.GlobalAveragePooling1D(), (7, 2)),
}


@pytest.mark.parametrize("name", sorted(FD_LAYERS))
def test_finite_differences(name):
    make, shape = FD_LAYERS[name]
    rng = np.random.default_rng(3)
    model = fd_model(make(), shape)
    X, y = rng.normal(size=(4,) + shape), rng.normal(size=(4, 2))
    fd_param_check(model, X, y)
    fd_input_check(model, X, y)


def test_max_ties_go_to_the_first_cell():
    # equal maxima: the first in row-major window order wins and gets the whole gradient
    model = pool_model(af.MaxPooling2D(2), (2, 4, 1), "float64")
    X = np.array([[[[3.0], [3.0], [1.0], [1.0]], [[3.0], [0.0], [1.0], [1.0]]]])           # (1, 2, 4, 1)
    dx = model.input_gradients(X, np.zeros((1, 1, 2, 1)))[0]
    np.testing.assert_array_equal(model.predict(X)[0, 0, :, 0], [3.0, 1.0])
    g = dx[0, :, :, 0]
    assert g[0, 0] != 0 and g[0, 2] != 0
    assert np.count_nonzero(g) == 2
    gm = pool_model(af.GlobalMaxPooling1D(), (4, 1), "float64")
    dx = gm.input_gradients(np.array([[[2.0], [5.0], [5.0], [1.0]]]), np.zeros((1, 1)))[0]
    np.testing.assert_array_equal(dx[0, :, 0] != 0, [False, True, False, False])


@pytest.mark.parametrize("dtype,big", [("float32", 1e30), ("float64", 1e200)])
def test_nan_propagates_through_max_pooling(dtype, big):
    # Inputs are checked for NaN, so make one inside: a 1x1 convolution to two channels,
    # big x and -big x / 2, then one summing them: inf + -inf = NaN where x = big (finite
    # elsewhere). A window holding that NaN outputs NaN, never one of its numbers.
    x = af.Input(shape=(1, 6, 1))
    split, merge = af.Conv2D(2, 1, use_bias=False), af.Conv2D(1, 1, use_bias=False)
    h = merge(split(x))
    model = af.Model(x, [af.MaxPooling2D((1, 2))(h), af.GlobalMaxPooling2D()(h),
                         af.AveragePooling2D((1, 2))(h)], dtype=dtype)
    model.compile(loss="mse", optimizer="sgd")
    split.kernel = np.array([big, -big / 2]).reshape(1, 1, 1, 2)
    merge.kernel = np.ones((1, 1, 2, 1))
    X = np.array([0.0, 1.0, 2.0, big, 4.0, 5.0]).reshape(1, 1, 6, 1)
    win, glob, avg = model.predict(X)
    np.testing.assert_array_equal(np.isnan(win[0, 0, :, 0]), [False, True, False])
    np.testing.assert_array_equal(np.isnan(avg[0, 0, :, 0]), [False, True, False])
    assert np.isnan(glob[0, 0])
    np.testing.assert_allclose(win[0, 0, [0, 2], 0], [big / 2, 2.5 * big], rtol=1e-6)
    # the NaN's gradient reaches the weights (it is not dropped on the way back)
    grads = model.gradients(X, [np.zeros((1, 1, 3, 1)), np.zeros((1, 1)), np.zeros((1, 1, 3, 1))])
    assert np.isnan(grads[1]).any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_and_dropout_on_images(dtype):
    # per channel (the last axis) over batch x height x width, as torch.nn.BatchNorm2d
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = af.Input(shape=(5, 6, 3))
    model = af.Model(x, af.BatchNormalization()(x), dtype=dtype)
    model.compile(loss="mse", optimizer="sgd")
    bn = model.layers[1]
    bn.gamma, bn.beta = rng.normal(size=3) + 1, rng.normal(size=3)
    X = (rng.normal(size=(8, 5, 6, 3)) * [1, 3, 0.5] + [0, 2, -1]).astype(dtype)
    target = rng.normal(size=X.shape).astype(dtype)
    loss, (gg, gb) = model.gradients(X, target, training=True, return_loss=True)
    dx = model.input_gradients(X, target)[0]
    t = to_torch(torch, X.astype(np.float64), torch.float64)
    tbn = torch.nn.BatchNorm2d(3, eps=bn.epsilon, dtype=torch.float64).train()
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(bn.gamma, dtype=torch.float64))
        tbn.bias.copy_(torch.tensor(bn.beta, dtype=torch.float64))
    y = tbn(t)
    l = ((y - torch.tensor(np.moveaxis(target, -1, 1).astype(np.float64))) ** 2).mean()
    l.backward()
    assert abs(loss - l.item()) <= TOL[dtype] * abs(l.item())
    assert rel(gg, tbn.weight.grad.numpy()) <= TOL[dtype]
    assert rel(gb, tbn.bias.grad.numpy()) <= TOL[dtype]
    assert rel(dx, from_torch(t.grad)) <= TOL[dtype]
    # Dropout on images: whole values dropped at the given rate and the rest scaled
    xd = af.Input(shape=(16, 16, 4))
    dm = af.Model(xd, af.Dropout(0.25)(xd), dtype=dtype, seed=5)
    dm.compile(loss="mse", optimizer="sgd")
    ones = np.ones((8, 16, 16, 4), dtype)
    g = dm.input_gradients(ones, np.zeros_like(ones))[0]
    kept = g != 0
    assert abs(kept.mean() - 0.75) < 0.03
    np.testing.assert_allclose(dm.predict(ones), ones)       # identity at inference


def test_bn_on_images_finite_differences():
    rng = np.random.default_rng(6)
    x = af.Input(shape=(4, 5, 2))
    h = af.Conv2D(3, 3, padding="same", use_bias=False)(x)   # a bias before BN has no gradient
    h = af.BatchNormalization()(h)
    h = af.MaxPooling2D(2)(af.Activation("tanh")(h))
    model = af.Model(x, af.Dense(2)(af.Flatten()(h)), dtype="float64", seed=7)
    model.compile(loss="mse", optimizer="sgd")
    X, y = rng.normal(size=(6, 4, 5, 2)), rng.normal(size=(6, 2))
    fd_param_check(model, X, y, training=True)
    fd_input_check(model, X, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threads_bitwise(dtype):
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(64, 24, 24, 3)), rng.integers(0, 3, size=64)

    def make():
        m = af.Sequential([af.Conv2D(8, 3, activation="relu"), af.BatchNormalization(),
                           af.MaxPooling2D(2, padding="same"), af.Dropout(0.2),
                           af.AveragePooling2D(3, strides=1), af.Conv2D(20, 3, padding="same"),
                           af.GlobalMaxPooling2D(), af.Dense(3, activation="softmax")],
                          input_shape=(24, 24, 3), dtype=dtype, seed=9)
        m.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=32)


BAD = [
    (lambda: af.MaxPooling2D(0), ValueError, "pool_size"),
    (lambda: af.MaxPooling2D((2, -2)), ValueError, "pool_size"),
    (lambda: af.AveragePooling2D(2, strides=0), ValueError, "strides"),
    (lambda: af.MaxPooling1D(2, padding="causal"), ValueError, "padding"),
    (lambda: af.MaxPooling1D((2, 2)), TypeError, "pool_size"),
    (lambda: af.MaxPooling2D(2)(af.Input(shape=(8, 8))), ValueError, "images"),
    (lambda: af.MaxPooling1D(2)(af.Input(shape=(8, 8, 1))), ValueError, "sequences"),
    (lambda: af.GlobalMaxPooling2D()(af.Input(shape=(8, 8))), ValueError, "images"),
    (lambda: af.GlobalMaxPooling1D()(af.Input(shape=(8,))), ValueError, "sequences"),
    (lambda: af.MaxPooling2D(5)(af.Input(shape=(4, 8, 1))), ValueError, "larger than the input"),
    (lambda: af.AveragePooling1D(3)(af.Input(shape=(2, 3))), ValueError, "larger than the input"),
]


@pytest.mark.parametrize("make,exc,match", BAD)
def test_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_aliases_and_config():
    assert af.MaxPool2D is af.MaxPooling2D and af.AvgPool1D is af.AveragePooling1D
    layer = af.MaxPooling2D((3, 2), padding="SAME")
    assert layer.strides == (3, 2) and layer.padding == "same"
    again = af.layers.Layer.from_config(layer.get_config())
    assert type(again) is af.MaxPooling2D and again.pool_size == (3, 2)
