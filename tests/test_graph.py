"""The graph engine (issue: engine redesign): every layer kind's gradients by finite differences,
residual and multi-input graphs, shared layers, several outputs, N-d samples, PyTorch autograd,
1 vs 2 threads, bad graphs, save/load of graphs and of files from the previous release, and the
previous engine's numbers reproduced bit for bit."""
import os

import numpy as np
import pytest

import annfast as af
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(1234)


def regression(n, shape, out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n,) + tuple(shape))
    y = rng.normal(size=(n, out))
    return X, y


# ---- every kind by finite differences (float64) ----------------------------------------------
@pytest.mark.parametrize("act", ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
                                 "softmax", "gelu", "swish"])
def test_dense_every_activation(act):
    X, y = regression(9, (4,))
    model = af.Sequential([af.Dense(5, activation=act), af.Dense(2)], input_dim=4, dtype="float64", seed=1)
    model.compile(loss="mse", optimizer="sgd")
    fd_param_check(model, X, y)
    fd_input_check(model, X, y)


def test_batchnorm_and_dropout_training_mode():
    X, y = regression(12, (5,))
    model = af.Sequential([af.Dense(6, activation="tanh"), af.BatchNormalization(), af.Dropout(0.3),
                           af.Dense(2)], input_dim=5, dtype="float64", seed=3)
    model.compile(loss="mse", optimizer="sgd")
    fd_param_check(model, X, y, training=True)
    fd_input_check(model, X, y)
    fd_param_check(model, X, y, training=False)


def test_dense_on_sequences_flatten_reshape():
    X, y = regression(6, (3, 4))
    model = af.Sequential([af.Dense(5, activation="gelu"), af.Reshape((5, 3)), af.Flatten(),
                           af.Dense(2)], input_shape=(3, 4), dtype="float64", seed=4)
    model.compile(loss="mse", optimizer="sgd")
    assert model.layers[0].kernel.shape == (4, 5)
    assert [t.shape for t in [model._nodes[i].tensor for i in range(1, 5)]] == \
        [(None, 3, 5), (None, 5, 3), (None, 15), (None, 2)]
    fd_param_check(model, X, y)
    fd_input_check(model, X, y)


def residual_model(dtype="float64", seed=5, width=6):
    x = af.Input(shape=(4,))
    h = af.Dense(width, activation="relu")(x)
    r = af.Dense(width, activation="gelu")(h)
    h2 = af.Add()([h, r])                       # h feeds two consumers
    r2 = af.Dense(width, activation="swish")(h2)
    out = af.Dense(2)(af.Add()([h2, r2, h]))
    return af.Model(x, out, dtype=dtype, seed=seed)


def test_residual_graph():
    X, y = regression(10, (4,))
    model = residual_model()
    model.compile(loss="mse", optimizer="sgd")
    fd_param_check(model, X, y)
    fd_input_check(model, X, y)


def two_input_model(dtype="float64", seed=6):
    a = af.Input(shape=(3,), name="a")
    b = af.Input(shape=(2, 4), name="b")
    fb = af.Flatten()(af.Dense(3, activation="tanh")(b))
    h = af.Concatenate()([a, fb])
    out = af.Dense(3, activation="softmax")(af.Dense(7, activation="elu")(h))
    return af.Model([a, b], out, dtype=dtype, seed=seed)


def test_two_input_concatenate():
    rng = np.random.default_rng(7)
    Xa, Xb = rng.normal(size=(8, 3)), rng.normal(size=(8, 2, 4))
    y = rng.integers(0, 3, size=8)
    model = two_input_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    fd_param_check(model, [Xa, Xb], y)
    fd_input_check(model, [Xa, Xb], y)
    # a dict by input name works like the list
    np.testing.assert_array_equal(model.predict({"a": Xa, "b": Xb}), model.predict([Xa, Xb]))


def test_concatenate_middle_axis():
    rng = np.random.default_rng(8)
    a, b = af.Input(shape=(2, 3)), af.Input(shape=(4, 3))
    out = af.Dense(1)(af.Flatten()(af.Concatenate(axis=1)([a, b])))
    model = af.Model([a, b], out, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer="sgd")
    Xa, Xb, y = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 1))
    W = model.layers[-1].kernel
    expected = np.concatenate([Xa, Xb], axis=1).reshape(5, -1) @ W + model.layers[-1].bias
    np.testing.assert_allclose(model.predict([Xa, Xb]), expected, rtol=1e-12)
    fd_input_check(model, [Xa, Xb], y)


def test_shared_layer_and_two_outputs():
    rng = np.random.default_rng(9)
    a, b = af.Input(shape=(4,)), af.Input(shape=(4,))
    shared = af.Dense(5, activation="tanh")
    ha, hb = shared(a), shared(b)               # one kernel, two calls: gradients add up
    out1 = af.Dense(1, name="sum_head")(af.Add()([ha, hb]))
    out2 = af.Dense(2, activation="softmax", name="cls_head")(af.Concatenate()([ha, hb]))
    model = af.Model([a, b], [out1, out2], dtype="float64", seed=10)
    model.compile(loss=["mse", "sparse_categorical_crossentropy"], optimizer="sgd",
                  loss_weights=[0.5, 2.0], metrics=["accuracy"])
    assert model.count_params() == 4 * 5 + 5 + 5 + 1 + 10 * 2 + 2
    Xa, Xb = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    y1, y2 = rng.normal(size=(9, 1)), rng.integers(0, 2, size=9)
    fd_param_check(model, [Xa, Xb], [y1, y2])
    hist = model.fit([Xa, Xb], [y1, y2], epochs=2, batch_size=4, verbose=0)
    assert set(hist.history) == {"loss", "sum_head_loss", "cls_head_loss", "sum_head_accuracy",
                                 "cls_head_accuracy"}
    h = hist.history
    np.testing.assert_allclose(h["loss"][-1], 0.5 * h["sum_head_loss"][-1] + 2.0 * h["cls_head_loss"][-1],
                               rtol=1e-12)
    p1, p2 = model.predict([Xa, Xb])
    assert p1.shape == (9, 1) and p2.shape == (9, 2)


def test_sequence_output_sparse_crossentropy_per_position():
    rng = np.random.default_rng(11)
    x = af.Input(shape=(5, 3))
    out = af.Dense(4, activation="softmax")(af.Dense(6, activation="relu")(x))
    model = af.Model(x, out, dtype="float64", seed=12)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    X, y = rng.normal(size=(7, 5, 3)), rng.integers(0, 4, size=(7, 5))
    p = model.predict(X)
    expected = -np.log(np.take_along_axis(p, y[..., None], axis=-1)).mean()
    loss, acc = model.evaluate(X, y)
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(acc, (p.argmax(-1) == y).mean(), rtol=1e-12)
    fd_param_check(model, X, y)


# ---- against PyTorch autograd ------------------------------------------------------------------
def test_residual_graph_against_torch():
    torch = pytest.importorskip("torch")
    X, y = regression(10, (4,), seed=13)
    model = residual_model(seed=14)
    model.compile(loss="mse", optimizer="sgd")
    Ws = [torch.tensor(w, requires_grad=True) for w in model.get_weights()]
    tx = torch.tensor(X, requires_grad=True)
    h = torch.relu(tx @ Ws[0] + Ws[1])
    r = torch.nn.functional.gelu(h @ Ws[2] + Ws[3])
    h2 = h + r
    r2 = torch.nn.functional.silu(h2 @ Ws[4] + Ws[5])
    out = (h2 + r2 + h) @ Ws[6] + Ws[7]
    loss = ((out - torch.tensor(y)) ** 2).mean()
    loss.backward()
    np.testing.assert_allclose(model.predict(X), out.detach().numpy(), rtol=1e-12, atol=1e-13)
    got_loss, grads = model.gradients(X, y, return_loss=True)
    np.testing.assert_allclose(got_loss, loss.item(), rtol=1e-12)
    for g, w in zip(grads, Ws):
        np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(model.input_gradients(X, y)[0], tx.grad.numpy(), rtol=1e-10, atol=1e-13)


# ---- threads -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_graphs_bitwise_identical_on_1_and_2_threads(dtype):
    rng = np.random.default_rng(15)
    X = rng.normal(size=(300, 4)).astype(dtype)
    y = rng.normal(size=(300, 2)).astype(dtype)

    def make():
        m = residual_model(dtype=dtype, seed=16, width=300)
        m.compile(loss="mse", optimizer=af.optimizers.Adam(1e-3))
        return m

    assert_threads_bitwise(make, X, y, batch_size=128)

    Xa, Xb = rng.normal(size=(200, 3)).astype(dtype), rng.normal(size=(200, 2, 4)).astype(dtype)
    yc = rng.integers(0, 3, size=200)

    def make2():
        m = two_input_model(dtype=dtype, seed=17)
        m.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
        return m

    assert_threads_bitwise(make2, [Xa, Xb], yc)


# ---- bad graphs ------------------------------------------------------------------------------
def test_bad_graphs_are_clear_errors():
    x = af.Input(shape=(4,))
    other = af.Input(shape=(3,))
    with pytest.raises(ValueError, match="not used by any output"):
        af.Model([x, other], af.Dense(2)(x))
    with pytest.raises(ValueError, match="not in inputs"):
        af.Model(x, af.Add()([af.Dense(3)(x), other]))
    with pytest.raises(ValueError, match="one shape"):
        af.Add()([af.Dense(3)(x), af.Dense(4)(x)])
    with pytest.raises(ValueError, match="other axes must match"):
        af.Concatenate(axis=1)([af.Input(shape=(2, 3)), af.Input(shape=(2, 4))])
    with pytest.raises(ValueError, match="batch axis"):
        af.Concatenate(axis=0)
    with pytest.raises(TypeError, match="annfast tensor"):
        af.Dense(2)(np.ones((3, 4)))
    with pytest.raises(ValueError, match="2 to 8 input tensors"):
        af.Add()([x])
    shared = af.Dense(2)
    shared(x)
    with pytest.raises(ValueError, match="same input shape"):
        shared(other)
    m = af.Model(x, af.Dense(1)(x))
    layer = m.layers[1]
    with pytest.raises(ValueError, match="belongs to a built model"):
        layer(af.Input(shape=(4,)))
    with pytest.raises(TypeError, match="af.Input"):
        af.Model(np.ones(3), af.Dense(1)(x))
    with pytest.raises(ValueError, match="must come from af.Input"):
        af.Model(af.Dense(1)(x), af.Dense(1)(x))


def test_bad_fit_inputs_leave_the_model_unchanged():
    model = two_input_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    rng = np.random.default_rng(18)
    Xa, Xb, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2, 4)), rng.integers(0, 3, size=6)
    before = model.get_weights()
    with pytest.raises(ValueError, match="2 inputs"):
        model.fit(Xa, y, verbose=0)
    with pytest.raises(ValueError, match="2 inputs"):
        model.fit([Xa, Xb, Xb], y, verbose=0)
    with pytest.raises(ValueError, match=r"X\[1\].*shape"):
        model.fit([Xa, Xb.reshape(6, 8)], y, verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit([Xa, Xb[:5]], y, verbose=0)
    with pytest.raises(ValueError, match="keys"):
        model.fit({"a": Xa, "c": Xb}, y, verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit([Xa, np.full_like(Xb, np.nan)], y, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer_state()["step"] == 0


def test_cycles_in_a_config_are_refused():
    model = residual_model()
    cfg = model.get_config()
    # make the first Dense take its input from the last Add: a cycle
    first = next(lc for lc in cfg["layers"] if lc["class_name"] == "Dense")
    last_add = [lc for lc in cfg["layers"] if lc["class_name"] == "Add"][-1]
    first["inbound_nodes"] = [[[last_add["name"], 0]]]
    with pytest.raises(ValueError, match="cycle"):
        af.Model.from_config(cfg)


def test_c_plan_refuses_a_cycle():
    p = np.zeros(40)
    inp = {"kind": "input", "name": "x", "inputs": [], "config": {"shape": (2,), "dtype": "float"}}
    add = {"kind": "add", "name": "loop", "inputs": [0, 2], "config": {}}
    act = {"kind": "activation", "name": "act", "inputs": [1], "config": {"activation": "relu", "alpha": 0.0}}
    with pytest.raises(ValueError, match="network|loop|act"):
        af._core.GraphEngine([inp, add, act], [0], [2], ["mse"], [1.0], p, np.zeros_like(p), np.zeros(0))


# ---- summary, save / load ------------------------------------------------------------------
def test_summary_prints_layers_shapes_and_counts(capsys):
    model = two_input_model()
    text = model.summary()
    assert text == capsys.readouterr().out.rstrip("\n")
    for needle in ("Concatenate", "(None, 2, 3)", "(None, 9)", "Total params", f"{model.count_params()}",
                   "Connected to"):
        assert needle in text
    seq = af.Sequential([af.Dense(3), af.BatchNormalization()], input_dim=2)
    assert "Non-trainable params: 6" in seq.summary(print_fn=None)


def test_functional_save_load_continues_identically(tmp_path):
    rng = np.random.default_rng(19)
    Xa, Xb, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2, 4)), rng.integers(0, 3, size=40)
    model = two_input_model(dtype="float32", seed=20)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(0.01),
                  metrics=["accuracy"])
    model.fit([Xa, Xb], y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    again = af.load_model(tmp_path / "m.npz")
    assert type(again) is af.Model
    np.testing.assert_array_equal(again.predict([Xa, Xb]), model.predict([Xa, Xb]))
    h1 = model.fit([Xa, Xb], y, epochs=2, batch_size=8, verbose=0).history
    h2 = again.fit([Xa, Xb], y, epochs=2, batch_size=8, verbose=0).history
    assert h1 == h2
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(os.environ.get("ANNFAST_SANITIZED") == "1",
                    reason="a reference written by the -O3 build: the -O1 instrumented build contracts multiply-adds differently")
def test_file_from_the_previous_release_loads():
    path = os.path.join(HERE, "data", "model_v0_1_0.npz")
    expected = np.load(os.path.join(HERE, "data", "model_v0_1_0_expected.npz"))
    model = af.load_model(path)
    assert type(model) is af.Sequential
    # the reference was predicted by that release's kernels on a path with fused multiply-adds;
    # the portable path rounds each product before adding it, and a product with few columns
    # now sums along k in vector lanes (the row kernel's dot columns, gemm_skinny_impl.h):
    # 2-3 float32 ulps at most here. The loaded weights and optimiser state below are exact.
    np.testing.assert_allclose(model.predict(expected["X"]), expected["pred"],
                               rtol=16 * np.finfo(np.float32).eps, atol=0)
    assert model.optimizer_state()["step"] == int(expected["step"])
    np.testing.assert_array_equal(model.optimizer_state()["state"], expected["state"])


@pytest.mark.skipif(os.environ.get("ANNFAST_SANITIZED") == "1",
                    reason="a reference written by the -O3 build: the -O1 instrumented build contracts multiply-adds differently")
def test_previous_engine_numbers_reproduced():
    # tests/data/engine_reference.npz was written by tests/make_engine_reference.py with the
    # engine before the graph redesign: same seeds, same numbers, for every path (fused SGD,
    # batch norm, dropout, penalties, clipping, every optimiser and loss, both dtypes). The
    # redesign itself reproduced it bit for bit (372/372 arrays). The skinny-product GEMM path
    # (csrc/kernels/gemm_skinny_impl.h) since sums small products in another order, so arrays agree
    # to a few units of rounding relative to their largest entry: 16 eps of the dtype covers three
    # epochs of differently ordered sums (measured worst: 3.7 eps float32, 8 eps float64). So does
    # the small-batch K split (gemm_impl.h: gemm_packed_ksplit): a product with fewer than 32 rows
    # and K over more than one cache block adds two halves of K at the end instead of running its
    # K blocks one after the other.
    # float32 tanh is no longer libm's tanhf but a vectorised one (csrc/kernels/act_kern_impl.h,
    # within 1.3 ulp): the tanh case's arrays are measured against the largest weight of
    # that model instead, since two of its arrays hold only tiny values (a batch-norm shift with
    # max |w| 2e-5) that one-ulp changes moved by 8e-9 over three epochs of Adam.
    # The portable path (ANNFAST_ISA=generic) has no fused multiply-add, so its products round
    # twice: its arrays are measured against the largest weight of their model, as above (the
    # tanh case's float64 batch-norm shift, max |w| 4e-4, moved by 1.8e-17). So are the tanh
    # case's float64 arrays: products with a few columns sum along k in vector lanes since (the
    # row kernel's dot columns), which moved that shift by 3.8e-18 on AVX-512; the other cases'
    # arrays stayed within 9 eps of their own largest entry (AVX-512 and AVX2).
    portable = af.get_isa() == "generic"
    import make_engine_reference as mk
    ref = np.load(os.path.join(HERE, "data", "engine_reference.npz"))
    got = mk.all_results()
    assert sorted(ref.files) == sorted(got)

    def model_scale(key):
        case = key.rsplit("/", 1)[0] + "/"
        return max(float(np.max(np.abs(ref[k]))) for k in ref.files
                   if k.startswith(case) and ref[k].dtype.kind == "f" and ref[k].size)

    for key in ref.files:
        a, b = np.asarray(got[key]), np.asarray(ref[key])
        assert a.shape == b.shape and a.dtype == b.dtype, key
        if a.dtype.kind != "f" or a.size == 0:
            np.testing.assert_array_equal(a, b, err_msg=key)
            continue
        eps = np.finfo(np.float32 if "float32" in key else np.float64).eps
        scale = float(np.max(np.abs(b.astype(np.float64))))
        if "tanh" in key or portable:
            scale = model_scale(key)
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b), err_msg=key)
        assert float(np.max(np.abs(a.astype(np.float64) - b))) <= 16 * eps * scale, key


def test_layer_names_are_unique_per_class_and_within_a_model():
    a, b = af.Dense(2), af.Dense(2)
    assert a.name.startswith("dense_") and a.name != b.name
    x = af.Input(shape=(3,))
    with pytest.raises(ValueError, match="named 'twin'"):
        af.Model(x, af.Dense(1, name="twin")(af.Dense(4, name="twin")(x)))


def test_predict_outputs_written_in_place_and_copied():
    # predict binds an output node that computes its values to the caller's array (no copy);
    # outputs that are inputs, aliases or inference identities of other nodes are copied. Chunks
    # of 8 of 23 samples: each chunk's outputs land at its own offset.
    rng = np.random.default_rng(21)
    x = af.Input(shape=(5,))
    h = af.Dense(7, activation="tanh")(x)
    y = af.Dense(3)(h)
    model = af.Model(x, [h, y, af.Reshape((7, 1))(h), x, af.Dropout(0.5)(y)], seed=0, dtype="float64")
    X = rng.normal(size=(23, 5))
    outs = model.predict(X, batch_size=8)
    w1, b1, w2, b2 = model.get_weights()
    hx = np.tanh(X @ w1 + b1)
    np.testing.assert_allclose(outs[0], hx, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(outs[1], hx @ w2 + b2, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(outs[2][..., 0], outs[0])
    np.testing.assert_array_equal(outs[3], X)
    np.testing.assert_array_equal(outs[4], outs[1])
    again = model.predict(X, batch_size=8)       # fresh arrays: nothing kept from the last call
    for a, b in zip(outs, again):
        np.testing.assert_array_equal(a, b)
