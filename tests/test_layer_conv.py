"""Conv2D and Conv1D (csrc/layers/conv.c, conv_kern*): outputs and gradients (kernel, bias,
input) against PyTorch with the same weights over strides, padding, dilation, odd and even sizes,
1 and 3 channels, batch 1 and 7, each of the three paths (direct, im2col + GEMM, pointwise);
finite differences; every instruction-set path; 1 vs 2 threads; bad input."""
import itertools

import numpy as np
import pytest

import annfast as af
from cnn_checks import TOL, from_torch, rel, to_torch, torch_conv, torch_kernel_grad
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check

TORCH_ACTS = {"linear": lambda t, torch: t, "relu": lambda t, torch: torch.relu(t),
              "tanh": lambda t, torch: torch.tanh(t),
              "gelu": lambda t, torch: torch.nn.functional.gelu(t),
              "swish": lambda t, torch: torch.nn.functional.silu(t),
              "softmax": lambda t, torch: torch.softmax(t, dim=1)}


def conv_model(cls, sample_shape, dtype, seed=0, **kw):
    x = af.Input(shape=sample_shape)
    model = af.Model(x, cls(**kw)(x), dtype=dtype, seed=seed)
    model.compile(loss="mse", optimizer="sgd")
    return model


def check_against_torch(cls, sample_shape, batch, dtype, seed=0, **kw):
    """Forward, kernel / bias / input gradients of a one-layer model against PyTorch in float64
    on the same (dtype-rounded) weights and data; relative errors within TOL[dtype]."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    model = conv_model(cls, sample_shape, dtype, seed, **kw)
    layer = model.layers[1]
    kernel, bias = model.get_weights()
    model.set_weights([kernel, rng.normal(size=bias.shape)])
    kernel, bias = model.get_weights()
    X = rng.normal(size=(batch,) + tuple(sample_shape)).astype(dtype)
    Y = model.predict(X)
    target = rng.normal(size=Y.shape).astype(dtype)
    gk, gb = model.gradients(X, target)
    dx = model.input_gradients(X, target)[0]

    t = to_torch(torch, X.astype(np.float64), torch.float64)
    z, w, b = torch_conv(torch, t, kernel.astype(np.float64), bias.astype(np.float64),
                         layer.strides, layer.padding, layer.dilation_rate)
    y = TORCH_ACTS[layer.activation](z, torch)
    ((y - torch.tensor(np.moveaxis(target, -1, 1).astype(np.float64))) ** 2).mean().backward()
    errs = {"forward": rel(Y, from_torch(y)), "kernel": rel(gk, torch_kernel_grad(w)),
            "bias": rel(gb, b.grad.numpy()), "input": rel(dx, from_torch(t.grad))}
    assert max(errs.values()) <= TOL[dtype], errs
    assert Y.shape == from_torch(y).shape
    return errs


# The grid: strides 1 and 2, valid and same, dilation 1 and 2, odd and even sizes, 1 and 3
# input channels, batch 1 and 7. One channel takes the direct path (6 filters, as LeNet's first
# layer), three channels with a 5x3 kernel the im2col + GEMM path (K = 45, 20 filters).
GRID = list(itertools.product([1, 2], ["valid", "same"], [1, 2], [(11, 9), (10, 10)], [1, 3], [1, 7]))


@pytest.mark.parametrize("stride,padding,dilation,size,channels,batch", GRID)
def test_conv2d_against_torch(stride, padding, dilation, size, channels, batch):
    filters, kernel = (6, 5) if channels == 1 else (20, (5, 3))
    for dtype in ("float64", "float32"):
        check_against_torch(af.Conv2D, size + (channels,), batch, dtype, filters=filters,
                            kernel_size=kernel, strides=stride, padding=padding,
                            dilation_rate=dilation, activation="relu" if batch == 7 else None)


@pytest.mark.parametrize("stride,padding,dilation,length,channels,batch",
                         list(itertools.product([1, 2], ["valid", "same"], [1, 2], [23, 24], [1, 3], [1, 7])))
def test_conv1d_against_torch(stride, padding, dilation, length, channels, batch):
    filters, kernel = (6, 5) if channels == 1 else (24, 11)
    for dtype in ("float64", "float32"):
        check_against_torch(af.Conv1D, (length, channels), batch, dtype, filters=filters,
                            kernel_size=kernel, strides=stride, padding=padding,
                            dilation_rate=dilation, activation="tanh" if batch == 7 else None)


# One case per path and tile shape: direct with a partial vector (6 filters), direct with two
# vectors (20 filters over 9 inputs per window: K < 32), 16 filters exactly, the GEMM path with
# mixed strides and dilation, the pointwise path; activations kept for backward (gelu, swish) and
# applied after the GEMM (softmax over the filters).
PATHS = {
    "direct-6": dict(shape=(12, 11, 1), filters=6, kernel_size=5, padding="same", activation="relu"),
    "direct-20": dict(shape=(10, 9, 1), filters=20, kernel_size=3, strides=(1, 2), activation="gelu"),
    "direct-16": dict(shape=(14, 14, 6), filters=16, kernel_size=5, activation="relu"),
    "gemm": dict(shape=(13, 12, 5), filters=33, kernel_size=(3, 4), strides=(2, 1), dilation_rate=(1, 2),
                 padding="same", activation="swish"),
    "gemm-softmax": dict(shape=(7, 8, 8), filters=17, kernel_size=3, activation="softmax"),
    # the GEMM path's forward reading the input in place (output rows >= 8 cells, window rows of
    # >= 16 values): 21-cell rows end in a part tile whose unused rows would read past the input
    "implicit": dict(shape=(6, 21, 16), filters=40, kernel_size=3, padding="same", activation="relu"),
    "implicit-strided": dict(shape=(9, 17, 8), filters=33, kernel_size=(2, 3), strides=2, activation="tanh"),
    "pointwise": dict(shape=(6, 5, 7), filters=24, kernel_size=1, activation="elu"),
}


@pytest.mark.parametrize("case", sorted(PATHS))
def test_paths_on_every_isa(case, isa):
    kw = dict(PATHS[case])
    if kw["activation"] == "elu":
        kw["activation"] = None      # elu has no torch twin in TORCH_ACTS; linear is enough here
    shape = kw.pop("shape")
    for dtype in ("float64", "float32"):
        for batch in (1, 7):
            check_against_torch(af.Conv2D, shape, batch, dtype, seed=batch, **kw)


# The implicit GEMM forward (gemm path, output rows of >= 8 cells, window rows of >= 16 values)
# copies each output row's window rows with their zero padding itself, no padded batch (the
# backward pads): strides, dilation, 'same' (even kernel widths pad unevenly) and 'valid', odd
# and even sizes, first and last rows and columns all in padding, filters filling one and a half
# micro-tile panels, batch 1 and 7, on every instruction set.
IMPLICIT = list(itertools.product([1, 2], [1, 2], ["same", "valid"], [((9, 21), 3), ((12, 26), (2, 4))]))


@pytest.mark.parametrize("stride,dilation,padding,size_kernel", IMPLICIT)
def test_implicit_forward_against_torch(stride, dilation, padding, size_kernel, isa):
    (h, w), kernel = size_kernel
    kw = kernel if isinstance(kernel, int) else kernel[1]
    span = (kw - 1) * dilation + 1
    ow = -(-w // stride) if padding == "same" else (w - span) // stride + 1
    assert ow >= 8      # the implicit path's row length, so the case tests what it says
    for dtype in ("float64", "float32"):
        for batch in (1, 7):
            check_against_torch(af.Conv2D, (h, w, 16), batch, dtype, seed=batch, filters=40,
                                kernel_size=kernel, strides=stride, padding=padding,
                                dilation_rate=dilation, activation="relu" if batch == 7 else None)


@pytest.mark.parametrize("shape,kw", [
    ((20, 12, 16), dict(kernel_size=3, dilation_rate=(8, 1))),       # a window over 17 rows: no ring
    ((5, 15, 16), dict(kernel_size=(1, 3))),                         # one row a window
    ((11, 14, 16), dict(kernel_size=(4, 2), strides=(3, 1))),        # rows skipped between windows
    ((3, 12, 16), dict(kernel_size=3)),          # the next sample's first window: the same rows
])
def test_implicit_window_rows(shape, kw, isa, threads):
    # the padded implicit forward keeps window rows in a ring of slots (one per input row the
    # window spans) reused by the next output row of its chunk; longer spans copy every row each
    # time. One thread: one chunk of all rows, across samples; two: chunks of a row or a few.
    for n in (1, 2):
        threads(n)
        for dtype in ("float64", "float32"):
            for batch in (1, 7):
                check_against_torch(af.Conv2D, shape, batch, dtype, seed=batch, filters=40,
                                    padding="same", activation="relu", **kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_implicit_forward_nonfinite_weight(dtype, isa):
    # an inf weight meets the zero padding at the borders: 0 * inf = NaN there, as with a padded
    # copy of the input; a NaN weight makes its filter NaN everywhere, borders included
    rng = np.random.default_rng(3)
    x = af.Input(shape=(6, 17, 16))
    model = af.Model(x, af.Conv2D(40, 3, padding="same")(x), dtype=dtype, seed=0)
    X = rng.normal(size=(2, 6, 17, 16)).astype(dtype)
    kernel = model.layers[1].kernel
    kernel[0, 0, 5, 33] = np.inf
    kernel[2, 1, 7, 3] = np.nan
    Y = model.predict(X)
    xp = np.pad(X.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    with np.errstate(invalid="ignore"):
        ref = sum(np.einsum("bhwc,cf->bhwf", xp[:, i:i + 6, j:j + 17], kernel[i, j].astype(np.float64))
                  for i in range(3) for j in range(3))
    np.testing.assert_array_equal(np.isnan(Y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(Y), np.isinf(ref))
    assert np.isnan(Y[..., 3]).all() and np.isnan(Y[:, 0, :, 33]).all() and np.isnan(Y[:, :, 0, 33]).all()
    assert np.isinf(Y[:, 1:, 1:, 33]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_implicit_threads_bitwise(dtype):
    # training through the implicit forward (and the backward's own padded copy), odd sizes and
    # a last batch of another size
    rng = np.random.default_rng(15)
    X, y = rng.normal(size=(45, 11, 19, 16)), rng.normal(size=(45, 3))

    def make():
        m = af.Sequential([af.Conv2D(40, 3, padding="same", activation="relu"),
                           af.Conv2D(24, (2, 4), strides=(1, 2), dilation_rate=(2, 1), padding="same"),
                           af.Flatten(), af.Dense(3)], input_shape=(11, 19, 16), dtype=dtype, seed=16)
        m.compile(loss="mse", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=32)


@pytest.mark.parametrize("case", sorted(PATHS))
def test_finite_differences(case):
    kw = dict(PATHS[case])
    shape = kw.pop("shape")
    rng = np.random.default_rng(5)
    x = af.Input(shape=shape)
    h = af.Conv2D(**kw)(x)
    model = af.Model(x, af.Dense(3)(af.Flatten()(h)), dtype="float64", seed=6)
    model.compile(loss="mse", optimizer="sgd")
    weights = model.get_weights()
    weights[1] = rng.normal(size=weights[1].shape) * 0.1
    model.set_weights(weights)
    X, y = rng.normal(size=(4,) + shape), rng.normal(size=(4, 3))
    fd_param_check(model, X, y, max_entries=30)
    fd_input_check(model, X, y, max_entries=30)


def conv1d_stack(l2, l1, seed=8):
    x = af.Input(shape=(15, 3))
    h = af.Conv1D(20, 4, strides=2, padding="same", activation="tanh", l2=l2)(x)
    h = af.Conv1D(5, 3, dilation_rate=2, l1=l1)(h)
    model = af.Model(x, af.Dense(2)(af.Flatten()(h)), dtype="float64", seed=seed)
    model.compile(loss="mse", optimizer="sgd")
    return model


def test_conv1d_finite_differences_and_penalty():
    rng = np.random.default_rng(7)
    model = conv1d_stack(0.01, 0.02)
    X, y = rng.normal(size=(5, 15, 3)), rng.normal(size=(5, 2))
    fd_param_check(model, X, y, max_entries=30)
    fd_input_check(model, X, y, max_entries=30)
    # the penalties cover the kernels only
    plain = conv1d_stack(0.0, 0.0)
    plain.set_weights(model.get_weights())
    k0, _, k1, _, _, _ = model.get_weights()
    np.testing.assert_allclose(model.evaluate(X, y) - plain.evaluate(X, y),
                               0.01 * np.sum(k0 ** 2) + 0.02 * np.sum(np.abs(k1)), rtol=1e-12)


def test_kernel_layout_and_initializer():
    x = af.Input(shape=(28, 28, 1))
    model = af.Model(x, af.Conv2D(6, (5, 3), activation="relu")(x), seed=0)
    conv = model.layers[1]
    assert conv.kernel.shape == (5, 3, 1, 6) and conv.bias.shape == (6,)
    assert model.count_params() == 5 * 3 * 6 + 6
    # He normal for relu with Keras' fan_in = kh * kw * in_channels
    x = af.Input(shape=(9, 9, 64))
    big = af.Model(x, af.Conv2D(128, 3, activation="relu")(x), seed=1, dtype="float64")
    std = big.layers[1].kernel.std()
    assert abs(std / np.sqrt(2.0 / (3 * 3 * 64)) - 1) < 0.02
    np.testing.assert_array_equal(big.layers[1].bias, 0)
    # a plain callable gets the kernel's own shape
    seen = []

    def init(shape, rng, dtype):
        seen.append(shape)
        return np.full(shape, 0.5, dtype)
    x = af.Input(shape=(4, 4, 2))
    m = af.Model(x, af.Conv2D(3, 2, kernel_initializer=init)(x), seed=0)
    assert seen == [(2, 2, 2, 3)]
    np.testing.assert_array_equal(m.layers[1].kernel, 0.5)


def test_save_load_and_config(tmp_path):
    rng = np.random.default_rng(9)
    model = af.Sequential([af.Conv2D(4, 3, strides=2, padding="same", activation="relu", l2=1e-3),
                           af.Reshape((-1, 4)), af.Conv1D(3, 2, dilation_rate=2), af.Flatten(), af.Dense(2)],
                          input_shape=(7, 6, 2), seed=0)
    model.compile(loss="mse", optimizer="adam")
    X, y = rng.normal(size=(5, 7, 6, 2)), rng.normal(size=(5, 2))
    model.fit(X, y, epochs=2, verbose=0)
    path = tmp_path / "m.annfast"
    model.save(path)
    loaded = af.load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    cfg = loaded.layers[0].get_config()
    assert cfg["kernel_size"] == [3, 3] and cfg["strides"] == [2, 2] and cfg["padding"] == "same"
    assert cfg["l2"] == 1e-3 and cfg["activation"] == "relu"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threads_bitwise(dtype):
    rng = np.random.default_rng(10)
    X, y = rng.normal(size=(96, 16, 16, 3)), rng.integers(0, 4, size=96)

    def make():
        m = af.Sequential([af.Conv2D(6, 5, padding="same", activation="relu"),         # direct
                           af.Conv2D(24, 3, strides=2, padding="same", activation="relu"),  # GEMM
                           af.Conv2D(20, 1),                                               # pointwise
                           af.Flatten(), af.Dense(4, activation="softmax")],
                          input_shape=(16, 16, 3), dtype=dtype, seed=11)
        m.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=48)


def test_threads_bitwise_lenet():
    # LeNet-5 (the cells path first, then direct), float32, a last batch of another size
    from annfast.demo import lenet5
    rng = np.random.default_rng(13)
    X, y = rng.random((100, 28, 28, 1)), rng.integers(0, 10, size=100)

    def make():
        m = lenet5(seed=14)
        m.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=64)


BAD_LAYERS = [
    (lambda: af.Conv2D(0, 3), ValueError, "filters"),
    (lambda: af.Conv2D(-2, 3), ValueError, "filters"),
    (lambda: af.Conv2D(4, 0), ValueError, "kernel_size"),
    (lambda: af.Conv2D(4, (3, -1)), ValueError, "kernel_size"),
    (lambda: af.Conv2D(4, (3, 3, 3)), TypeError, "kernel_size"),
    (lambda: af.Conv2D(4, 3, strides=0), ValueError, "strides"),
    (lambda: af.Conv2D(4, 3, strides=(1, 0)), ValueError, "strides"),
    (lambda: af.Conv2D(4, 3, dilation_rate=0), ValueError, "dilation_rate"),
    (lambda: af.Conv2D(4, 3, padding="full"), ValueError, "padding"),
    (lambda: af.Conv2D(4, 2.5), TypeError, "kernel_size"),
    (lambda: af.Conv2D(4, 3, activation="nope"), ValueError, "activation"),
    (lambda: af.Conv1D(4, (3, 3)), TypeError, "kernel_size"),
    (lambda: af.Conv1D(4, 3, strides=0), ValueError, "strides"),
]


@pytest.mark.parametrize("make,exc,match", BAD_LAYERS)
def test_bad_settings(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_shapes_and_data_leave_the_model_unchanged():
    with pytest.raises(ValueError, match="images"):
        af.Conv2D(4, 3)(af.Input(shape=(28, 28)))                      # wrong rank
    with pytest.raises(ValueError, match="sequences"):
        af.Conv1D(4, 3)(af.Input(shape=(28, 28, 1)))
    with pytest.raises(ValueError, match=r"spans \(5, 5\).*larger than the input \(3, 3\)"):
        af.Conv2D(4, 5)(af.Input(shape=(3, 3, 1)))                     # kernel > input
    with pytest.raises(ValueError, match=r"dilation \(3, 3\) spans \(7, 7\)"):
        af.Conv2D(4, 3, dilation_rate=3)(af.Input(shape=(6, 9, 1)))
    af.Conv2D(4, 5, padding="same")(af.Input(shape=(3, 3, 1)))         # 'same' pads: fine
    with pytest.raises(ValueError, match="larger than the input"):
        af.Sequential([af.Conv2D(2, 4)], input_shape=(3, 8, 1))

    rng = np.random.default_rng(12)
    model = af.Sequential([af.Conv2D(4, 3, activation="relu"), af.Flatten(), af.Dense(2)],
                          input_shape=(6, 6, 1), seed=0)
    model.compile(loss="mse", optimizer="adam")
    X, y = rng.normal(size=(4, 6, 6, 1)), rng.normal(size=(4, 2))
    before = model.get_weights()
    bad = X.copy()
    bad[2, 3, 1, 0] = np.nan
    for call, exc, match in [
            (lambda: model.fit(bad, y, verbose=0), ValueError, "NaN"),
            (lambda: model.predict(bad), ValueError, "NaN"),
            (lambda: model.fit(np.where(np.isnan(bad), np.inf, bad), y, verbose=0), ValueError, "inf"),
            (lambda: model.fit(rng.normal(size=(4, 6, 6, 3)), y, verbose=0), ValueError, r"\(n_samples, 6, 6, 1\)"),
            (lambda: model.predict(rng.normal(size=(4, 6, 6))), ValueError, r"\(n_samples, 6, 6, 1\)"),
            (lambda: model.predict(rng.normal(size=(4, 7, 6, 1))), ValueError, "shape")]:
        with pytest.raises(exc, match=match):
            call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model._step == 0


def test_c_config_checks():
    # the C field table checks every setting again (a config built by hand)
    from annfast import _core
    fields = {f[0]: f for f in _core.layer_fields("conv2d")}
    assert fields["kernel_size"][1] == "ints" and fields["padding"][4] == ["valid", "same"]
