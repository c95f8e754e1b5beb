"""TransformerEncoderLayer / TransformerDecoderLayer (compositions of MultiHeadAttention, Dense,
LayerNormalization, Add, Dropout) against torch.nn with copied weights: post-norm and pre-norm,
relu and gelu, causal and padding masks; forward and every gradient to 1e-10 in float64 and 1e-4
in float32; threads; save/load; bad input."""
import numpy as np
import pytest

import annfast as af
from attention_refs import copy_linear, copy_mha, copy_norm, mha_grads_as_torch, t2n
from layer_checks import assert_threads_bitwise, fd_input_check, fd_param_check, rel_err

B, T, S, D, H, F = 3, 6, 7, 8, 2, 16


def padding(rng, n, steps):
    lengths = rng.integers(1, steps + 1, n)
    return (np.arange(steps)[None, :] < lengths[:, None]).astype(np.int32)


def float_mask(torch, M, tdt):
    """A 0 / -inf additive key padding mask (torch wants one mask type for every mask)."""
    return torch.tensor(np.where(M == 0, -np.inf, 0.0), dtype=tdt)


def grads_by_layer(model, grads):
    out, k = {}, 0
    for layer in model.layers:
        n = len(layer.param_shapes(layer._input_shape)) if layer._input_shape is not None else 0
        out[layer.name] = grads[k:k + n]
        k += n
    return out


def compare_block_grads(block, tblock, g, tol, cross=False):
    """Every parameter gradient of the block's parts against torch's .grad."""
    parts = [(block.self_attn, tblock.self_attn)] + ([(block.cross_attn, tblock.multihead_attn)] if cross else [])
    for ours, theirs in parts:
        mine = mha_grads_as_torch(g[ours.name], D, H)
        W = theirs.in_proj_weight.grad
        b = theirs.in_proj_bias.grad
        want = [W[:D], W[D:2 * D], W[2 * D:], b[:D], b[D:2 * D], b[2 * D:], theirs.out_proj.weight.grad,
                theirs.out_proj.bias.grad]
        for i, (a, t) in enumerate(zip(mine, want)):
            if i == 4:
                assert np.abs(a).max() < tol * 1e-2
            else:
                assert rel_err(a, t2n(t)) < tol, f"{ours.name} gradient {i}"
    for ours, theirs in ((block.linear1, tblock.linear1), (block.linear2, tblock.linear2)):
        gw, gb = g[ours.name]
        assert rel_err(gw, t2n(theirs.weight.grad).T) < tol
        assert rel_err(gb, t2n(theirs.bias.grad)) < tol
    norms = ("norm1", "norm2", "norm3") if cross else ("norm1", "norm2")
    for n in norms:
        gg, gb = g[getattr(block, n).name]
        assert rel_err(gg, t2n(getattr(tblock, n).weight.grad)) < tol
        assert rel_err(gb, t2n(getattr(tblock, n).bias.grad)) < tol


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("masks", ["none", "padding", "causal+padding"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_encoder_layer_against_torch(norm_first, activation, masks, dtype, wide=False):
    global D, F
    if wide:      # heads of 16 features: the row kernels' products (attn_core.h)
        D, F = 32, 40
    try:
        _encoder_against_torch(norm_first, activation, masks, dtype)
    finally:
        D, F = 8, 16


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_wide_heads_against_torch(dtype):
    test_encoder_layer_against_torch(False, "gelu", "causal+padding", dtype, wide=True)
    test_decoder_layer_against_torch(True, "relu", dtype, wide=True)


def _encoder_against_torch(norm_first, activation, masks, dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    tl = torch.nn.TransformerEncoderLayer(D, H, F, dropout=0.0, activation=activation, batch_first=True,
                                          norm_first=norm_first, dtype=tdt)
    x = af.Input(shape=(T, D))
    m = af.Input(shape=(T,), dtype="int32") if masks != "none" else None
    enc = af.TransformerEncoderLayer(D, H, F, dropout=0.0, activation=activation, norm_first=norm_first)
    model = af.Model([x] + ([m] if m is not None else []),
                     enc(x, attention_mask=m, use_causal_mask=masks.startswith("causal")), dtype=dtype)
    model.compile(loss="mse", optimizer="sgd")
    copy_mha(enc.self_attn, tl.self_attn)
    copy_linear(enc.linear1, tl.linear1)
    copy_linear(enc.linear2, tl.linear2)
    copy_norm(enc.norm1, tl.norm1)
    copy_norm(enc.norm2, tl.norm2)
    Xv = rng.normal(size=(B, T, D))
    M = padding(rng, B, T)
    X = [Xv] + ([M] if m is not None else [])
    tx = torch.tensor(Xv, dtype=tdt, requires_grad=True)
    kw = {}
    if m is not None:
        kw["src_key_padding_mask"] = float_mask(torch, M, tdt)
    if masks.startswith("causal"):
        kw["src_mask"] = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=tdt)
        kw["is_causal"] = True
    tl.train()
    out = tl(tx, **kw)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(model.predict(X), t2n(out)) < tol
    Y = rng.normal(size=(B, T, D))
    ((out - torch.tensor(Y, dtype=tdt)) ** 2).mean().backward()
    compare_block_grads(enc, tl, grads_by_layer(model, model.gradients(X, Y)), tol)
    assert rel_err(model.input_gradients(X, Y)[0], t2n(tx.grad)) < tol


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_decoder_layer_against_torch(norm_first, activation, dtype, wide=False):
    global D, F
    if wide:
        D, F = 32, 40
    try:
        _decoder_against_torch(norm_first, activation, dtype)
    finally:
        D, F = 8, 16


def _decoder_against_torch(norm_first, activation, dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    rng = np.random.default_rng(3)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    tl = torch.nn.TransformerDecoderLayer(D, H, F, dropout=0.0, activation=activation, batch_first=True,
                                          norm_first=norm_first, dtype=tdt)
    tgt, mem = af.Input(shape=(T, D)), af.Input(shape=(S, D))
    tm, mm = af.Input(shape=(T,), dtype="int32"), af.Input(shape=(S,), dtype="int32")
    dec = af.TransformerDecoderLayer(D, H, F, dropout=0.0, activation=activation, norm_first=norm_first)
    model = af.Model([tgt, mem, tm, mm], dec([tgt, mem], attention_mask=tm, memory_mask=mm), dtype=dtype)
    model.compile(loss="mse", optimizer="sgd")
    copy_mha(dec.self_attn, tl.self_attn)
    copy_mha(dec.cross_attn, tl.multihead_attn)
    copy_linear(dec.linear1, tl.linear1)
    copy_linear(dec.linear2, tl.linear2)
    for n in ("norm1", "norm2", "norm3"):
        copy_norm(getattr(dec, n), getattr(tl, n))
    Xt, Xm = rng.normal(size=(B, T, D)), rng.normal(size=(B, S, D))
    Mt, Mm = padding(rng, B, T), padding(rng, B, S)
    X = [Xt, Xm, Mt, Mm]
    tt = torch.tensor(Xt, dtype=tdt, requires_grad=True)
    tmem = torch.tensor(Xm, dtype=tdt, requires_grad=True)
    tl.train()
    out = tl(tt, tmem, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=tdt),
             tgt_is_causal=True, tgt_key_padding_mask=float_mask(torch, Mt, tdt),
             memory_key_padding_mask=float_mask(torch, Mm, tdt))
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(model.predict(X), t2n(out)) < tol
    Y = rng.normal(size=(B, T, D))
    ((out - torch.tensor(Y, dtype=tdt)) ** 2).mean().backward()
    compare_block_grads(dec, tl, grads_by_layer(model, model.gradients(X, Y)), tol, cross=True)
    dt, dm = model.input_gradients(X, Y)[:2]
    assert rel_err(dt, t2n(tt.grad)) < tol
    assert rel_err(dm, t2n(tmem.grad)) < tol


def test_finite_differences_with_dropout():
    rng = np.random.default_rng(4)
    tgt, mem = af.Input(shape=(4, 6)), af.Input(shape=(5, 6))
    memory = af.TransformerEncoderLayer(6, 2, 10, dropout=0.2, activation="gelu")(mem)
    out = af.TransformerDecoderLayer(6, 3, 10, dropout=0.2, norm_first=True)([tgt, memory])
    model = af.Model([tgt, mem], out, dtype="float64", seed=1)
    model.compile(loss="mse", optimizer="sgd")
    X, Y = [rng.normal(size=(2, 4, 6)), rng.normal(size=(2, 5, 6))], rng.normal(size=(2, 4, 6))
    # key biases are exactly cancelled by the softmax: skip arrays whose gradient is ~0
    grads = model.gradients(X, Y, training=True)
    assert sum(np.abs(g).max() < 1e-12 for g in grads) == 3
    fd_input_check(model, X, Y)
    views = [w for layer in model.layers for w in layer.trainable_weights]
    for view, g in zip(views, grads):
        if np.abs(g).max() < 1e-12:
            continue
        flat = view.reshape(-1)
        i = int(np.argmax(np.abs(g)))
        old, h = flat[i], 1e-6
        flat[i] = old + h
        lp = model.gradients(X, Y, training=True, return_loss=True)[0]
        flat[i] = old - h
        lm = model.gradients(X, Y, training=True, return_loss=True)[0]
        flat[i] = old
        assert abs((lp - lm) / (2 * h) - g.reshape(-1)[i]) <= 1e-6 * max(1.0, abs(g.reshape(-1)[i]))


def test_threads_bitwise_seq2seq():
    rng = np.random.default_rng(5)
    src = rng.integers(0, 10, (256, 12))
    y = src[:, ::-1].copy()
    X = [src, af.seq2seq.shift_right(y, 10)]

    def make():
        m = af.seq2seq.transformer(10, 11, 12, 12, d_model=32, num_heads=4, dim_feedforward=64, num_layers=1,
                                   dropout=0.1, seed=2)
        m.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        return m

    assert_threads_bitwise(make, X, y, batch_size=64)


def test_blocks_bad_input_save_load_summary(tmp_path):
    with pytest.raises(ValueError, match=r"d_model \(10\) must be divisible by num_heads \(4\)"):
        af.TransformerEncoderLayer(10, 4)
    with pytest.raises(ValueError, match="activation"):
        af.TransformerDecoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"\(steps, d_model=8\)"):
        af.TransformerEncoderLayer(8, 2)(af.Input(shape=(5, 6)))
    with pytest.raises(TypeError, match=r"\[target, memory\]"):
        af.TransformerDecoderLayer(8, 2)(af.Input(shape=(5, 8)))
    rng = np.random.default_rng(6)
    model = af.seq2seq.transformer(7, 8, 5, 4, d_model=8, num_heads=2, dim_feedforward=12, num_layers=1, seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    src, y = rng.integers(0, 7, (6, 5)), rng.integers(0, 7, (6, 4))
    X = [src, af.seq2seq.shift_right(y, 7)]
    model.fit(X, y, epochs=2, verbose=0)
    model.save(tmp_path / "t.npz")
    again = af.load_model(tmp_path / "t.npz")
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(af.seq2seq.greedy_decode(again, src, 7), af.seq2seq.greedy_decode(model, src, 7))
    text = model.summary(print_fn=None)
    assert "transformer_encoder0_self_attn (MultiHeadAttention)" in text
    assert model.count_params() == sum(w.size for w in model.get_weights())
