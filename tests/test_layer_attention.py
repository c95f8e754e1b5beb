"""MultiHeadAttention, Attention (dot-product) and AdditiveAttention (csrc/layers/mha.c,
attention.c, additive_attention.c, attn_core.h): values against NumPy, forward and gradients
against torch.nn.MultiheadAttention (float64 to 1e-10, float32 to 1e-4), finite differences,
masks, causal masks, fully masked rows, kept vs recomputed probabilities, row blocks, dropout,
1 vs 2 threads, every ISA, bad input."""
import numpy as np
import pytest

import annfast as af
from attention_refs import (additive_ref, attention_ref, copy_mha, mha_grads_as_torch, mha_ref)
from layer_checks import (assert_dropout_setting_used, assert_threads_bitwise, fd_input_check, fd_param_check,
                          rel_err)


def mha_model(Tq, Tk, Dq, Dv, heads=2, key_dim=3, dtype="float64", mask=None, causal=False, key_dim_in=None,
              seed=0, **kw):
    """Model([query, value, (key), (mask)]) -> MultiHeadAttention."""
    q, v = af.Input(shape=(Tq, Dq)), af.Input(shape=(Tk, Dv))
    ins = [q, v]
    k = m = None
    if key_dim_in:
        k = af.Input(shape=(Tk, key_dim_in))
        ins.append(k)
    if mask is not None:
        m = af.Input(shape=mask, dtype="int32")
        ins.append(m)
    layer = af.MultiHeadAttention(heads, key_dim, **kw)
    model = af.Model(ins, layer(q, v, key=k, attention_mask=m, use_causal_mask=causal), dtype=dtype, seed=seed)
    model.compile(loss="mse", optimizer="sgd")
    return model, layer


def self_attention_model(T, D, heads=2, key_dim=3, dtype="float64", mask=None, causal=False, seed=0, **kw):
    x = af.Input(shape=(T, D))
    ins = [x]
    m = None
    if mask is not None:
        m = af.Input(shape=mask, dtype="int32")
        ins.append(m)
    layer = af.MultiHeadAttention(heads, key_dim, **kw)
    model = af.Model(ins, layer(x, x, attention_mask=m, use_causal_mask=causal), dtype=dtype, seed=seed)
    model.compile(loss="mse", optimizer="sgd")
    return model, layer


def padding_mask(rng, B, T, min_keep=1):
    lengths = rng.integers(min_keep, T + 1, B)
    return (np.arange(T)[None, :] < lengths[:, None]).astype(np.int32)


# ---- values ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["cross", "key", "mask1", "mask2", "causal", "nobias"])
def test_mha_values_against_numpy(case):
    rng = np.random.default_rng(1)
    B, Tq, Tk, Dq, Dv = 3, 5, 7, 6, 4
    kw = {"value_dim": 5, "output_dim": 9} if case == "cross" else {}
    mask = {"mask1": (Tk,), "mask2": (Tq, Tk)}.get(case)
    model, layer = mha_model(Tq, Tk, Dq, Dv, mask=mask, causal=case == "causal", key_dim_in=8 if case == "key" else None,
                             use_bias=case != "nobias", **kw)
    Xq, Xv = rng.normal(size=(B, Tq, Dq)), rng.normal(size=(B, Tk, Dv))
    X = [Xq, Xv]
    Xk = M = None
    if case == "key":
        Xk = rng.normal(size=(B, Tk, 8))
        X.append(Xk)
    if mask:
        M = rng.integers(0, 2, size=(B,) + mask).astype(np.int32)
        M[..., 0] = 1
        X.append(M)
    out = model.predict(X)
    ref = mha_ref(layer, Xq, Xv, Xk, M, causal=case == "causal")
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-13)
    Y = rng.normal(size=out.shape)
    grads = model.gradients(X, Y)
    assert all(np.all(np.isfinite(g)) for g in grads)
    # the key bias cancels in the softmax: its gradient is exactly what rounding leaves (tiny)
    if layer.use_bias:
        assert np.abs(grads[3]).max() < 1e-12
    fd_input_check(model, X, Y)


def test_mha_finite_differences_with_dropout():
    rng = np.random.default_rng(2)
    model, layer = mha_model(4, 6, 5, 3, heads=3, key_dim=2, mask=(6,), dropout=0.3, use_bias=False)
    X = [rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 6, 3)), padding_mask(rng, 3, 6)]
    Y = rng.normal(size=(3, 4, 5))
    fd_param_check(model, X, Y, training=True)
    fd_input_check(model, X, Y)
    fd_param_check(model, X, Y, training=False)


# ---- against torch.nn.MultiheadAttention -----------------------------------------------------------
def torch_mha_case(torch, kind, dtype, seed=0):
    """(annfast model, its layer, torch module, torch callable of the inputs, the inputs).
    Kinds starting with "vec": heads of 16 features, whose products take the row kernels'
    register-blocked path (attn_core.h); the others (4 features) the GEMM."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    B, T, S, E, H = 3, 6, 8, 8, 2
    if kind.startswith("vec"):
        kind, T, S, E = kind[3:], 13, 21, 32
    tdt = torch.float64 if dtype == "float64" else torch.float32
    kdim = vdim = E if kind != "kvdims" else None
    if kind == "kvdims":
        kdim, vdim = 5, 7
    tm = torch.nn.MultiheadAttention(E, H, batch_first=True, kdim=kdim, vdim=vdim, dtype=tdt)
    with torch.no_grad():   # non-zero biases
        for p in tm.parameters():
            if p.ndim == 1:
                p.uniform_(-0.5, 0.5)
    Xq = rng.normal(size=(B, T, E))
    Tk = T if kind in ("self", "causal", "padself", "causalpad") else S
    Xv = Xq if Tk == T and kind != "kvdims" else rng.normal(size=(B, Tk, vdim))
    Xk = rng.normal(size=(B, Tk, kdim)) if kind == "kvdims" else None
    mask = None
    if kind in ("padself", "padcross", "causalpad"):
        mask = padding_mask(rng, B, Tk)
    if kind == "full":
        mask = (rng.random((B, T, Tk)) < 0.7).astype(np.int32)
        mask[:, :, 0] = 1
    causal = kind in ("causal", "causalpad")
    self_attn = kind in ("self", "causal", "padself", "causalpad")
    if self_attn:
        model, layer = self_attention_model(T, E, heads=H, key_dim=E // H, dtype=dtype,
                                            mask=None if mask is None else mask.shape[1:], causal=causal)
        X = [Xq] + ([mask] if mask is not None else [])
    else:
        model, layer = mha_model(T, Tk, E, vdim, heads=H, key_dim=E // H, dtype=dtype,
                                 mask=None if mask is None else mask.shape[1:], key_dim_in=kdim if Xk is not None else None)
        X = [Xq, Xv] + ([Xk] if Xk is not None else []) + ([mask] if mask is not None else [])
    copy_mha(layer, tm)

    def run(tq, tv, tk):
        kpm = am = None
        if mask is not None and mask.ndim == 2:
            kpm = torch.tensor(mask == 0)
        if mask is not None and mask.ndim == 3:
            am = torch.tensor(np.repeat(mask == 0, H, axis=0))
        if causal:
            c = torch.triu(torch.ones(T, Tk, dtype=torch.bool), 1)
            am = c if am is None else am | c
        return tm(tq, tk, tv, key_padding_mask=kpm, attn_mask=am, need_weights=False)[0]
    return model, layer, tm, run, X, (Xq, Xv if not self_attn else None, Xk)


@pytest.mark.parametrize("kind", ["self", "causal", "padself", "causalpad", "cross", "padcross", "full", "kvdims",
                                  "veccausalpad", "vecpadcross", "vecfull"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mha_against_torch(kind, dtype):
    torch = pytest.importorskip("torch")
    model, layer, tm, run, X, (Xq, Xv, Xk) = torch_mha_case(torch, kind, dtype)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    tq = torch.tensor(Xq, dtype=tdt, requires_grad=True)
    tv = tq if Xv is None else torch.tensor(Xv, dtype=tdt, requires_grad=True)
    tk = tv if Xk is None else torch.tensor(Xk, dtype=tdt, requires_grad=True)
    out = run(tq, tv, tk)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(model.predict(X), out.detach().numpy()) < tol
    rng = np.random.default_rng(5)
    Y = rng.normal(size=tuple(out.shape))
    loss = ((out - torch.tensor(Y, dtype=tdt)) ** 2).mean()
    loss.backward()
    E, H = tm.embed_dim, tm.num_heads
    grads = mha_grads_as_torch(model.gradients(X, Y), E, H)
    if tm._qkv_same_embed_dim:
        tw = [tm.in_proj_weight.grad[:E], tm.in_proj_weight.grad[E:2 * E], tm.in_proj_weight.grad[2 * E:]]
    else:
        tw = [tm.q_proj_weight.grad, tm.k_proj_weight.grad, tm.v_proj_weight.grad]
    tb = tm.in_proj_bias.grad
    want = tw + [tb[:E], tb[E:2 * E], tb[2 * E:], tm.out_proj.weight.grad, tm.out_proj.bias.grad]
    for i, (g, t) in enumerate(zip(grads, want)):
        if i == 4:   # the key bias: zero in exact arithmetic
            assert np.abs(g).max() < (1e-12 if dtype == "float64" else 1e-5)
            continue
        assert rel_err(g, t.numpy()) < tol, f"gradient {i}"
    dx = model.input_gradients(X, Y)
    assert rel_err(dx[0], tq.grad.numpy()) < tol
    if Xv is not None:
        assert rel_err(dx[1], tv.grad.numpy()) < tol
    if Xk is not None:
        assert rel_err(dx[2], tk.grad.numpy()) < tol


def test_mha_every_isa(isa):
    """The row kernels (softmax, layer norm) and the GEMM of each ISA, against torch in float64."""
    torch = pytest.importorskip("torch")
    for kind in ("causalpad", "full", "veccausalpad"):
        model, layer, tm, run, X, (Xq, Xv, Xk) = torch_mha_case(torch, kind, "float64", seed=3)
        tq = torch.tensor(Xq, requires_grad=True)
        tv = tq if Xv is None else torch.tensor(Xv, requires_grad=True)
        out = run(tq, tv, tv)
        assert rel_err(model.predict(X), out.detach().numpy()) < 1e-10
        Y = np.random.default_rng(1).normal(size=tuple(out.shape))
        ((out - torch.tensor(Y)) ** 2).mean().backward()
        assert rel_err(model.input_gradients(X, Y)[0], tq.grad.numpy()) < 1e-10


# ---- probabilities kept or recomputed, row blocks, fully masked rows ------------------------------
@pytest.mark.parametrize("T,key_dim", [(6, 4), (150, 4), (23, 16)])   # 150^2 scores: query rows in blocks;
def test_kept_and_recomputed_probabilities_agree_bitwise(T, key_dim):  # key_dim 16: the row kernels' products
    rng = np.random.default_rng(4)
    B, D = 2, 8
    X = [rng.normal(size=(B, T, D)), padding_mask(rng, B, T)]
    Y = rng.normal(size=(B, T, D))
    results = []
    for mode in ("keep", "recompute"):
        model, layer = self_attention_model(T, D, heads=2, key_dim=key_dim, mask=(T,), causal=True, dropout=0.2,
                                            seed=7)
        layer._scores = mode
        model._engine = None
        loss, g = model.gradients(X, Y, training=True, return_loss=True)
        results.append((model.predict(X), loss, g, model.input_gradients(X, Y)))
        if T > 20:
            ref = mha_ref(layer, X[0], X[0], None, X[1], causal=True)
            assert rel_err(results[-1][0], ref) < 1e-12
    (p1, l1, g1, d1), (p2, l2, g2, d2) = results
    np.testing.assert_array_equal(p1, p2)
    assert l1 == l2
    for a, b in zip(g1 + d1, g2 + d2):
        np.testing.assert_array_equal(a, b)


def test_fully_masked_rows_are_defined():
    """A query with no key to attend to gets attention output 0 (so the layer outputs its output
    bias) and no gradient through the scores: never NaN."""
    rng = np.random.default_rng(5)
    model, layer = self_attention_model(5, 4, mask=(5, 5))
    layer.output_bias = rng.normal(size=4)
    M = np.ones((2, 5, 5), dtype=np.int32)
    M[0, 2, :] = 0                      # sample 0, query 2: nothing allowed
    M[1] = 0                            # sample 1: every row
    X = [rng.normal(size=(2, 5, 4)), M]
    out = model.predict(X)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0, 2], layer.output_bias, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out[1], np.broadcast_to(layer.output_bias, (5, 4)), rtol=0, atol=1e-15)
    np.testing.assert_allclose(out, mha_ref(layer, X[0], X[0], None, M), rtol=1e-12, atol=1e-13)
    Y = rng.normal(size=out.shape)
    g = model.gradients(X, Y)
    assert all(np.all(np.isfinite(a)) for a in g)
    fd_input_check(model, X, Y)
    # causal + padding where key 0 is padding: the first query sees nothing
    model2, layer2 = self_attention_model(4, 4, mask=(4,), causal=True)
    X2 = [rng.normal(size=(1, 4, 4)), np.array([[0, 1, 1, 1]], dtype=np.int32)]
    out2 = model2.predict(X2)
    np.testing.assert_allclose(out2[0, 0], layer2.output_bias, atol=1e-15)
    assert np.all(np.isfinite(model2.input_gradients(X2, np.zeros((1, 4, 4)))[0]))


def test_dropout_masks_reproducible_and_inference_identity():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, 6, 8))
    model, layer = self_attention_model(6, 8, heads=2, key_dim=4, dropout=0.5, seed=1)
    plain, layer0 = self_attention_model(6, 8, heads=2, key_dim=4, dropout=0.0, seed=1)
    np.testing.assert_array_equal(model.predict(X), plain.predict(X))   # inference: no dropout
    Y = np.zeros((4, 6, 8))
    l1, g1 = model.gradients(X, Y, training=True, return_loss=True)
    l2, g2 = model.gradients(X, Y, training=True, return_loss=True)
    assert l1 == l2 and all(np.array_equal(a, b) for a, b in zip(g1, g2))
    l0 = plain.gradients(X, Y, training=True, return_loss=True)[0]
    assert l1 != l0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mha_threads_bitwise(dtype):
    rng = np.random.default_rng(7)
    T, D = 32, 16       # batches of 64: 64 x 4 heads x 32^2 x 16 multiply-adds, over the threshold
    X = [rng.normal(size=(128, T, D)), padding_mask(rng, 128, T)]
    y = rng.normal(size=(128, T, D))

    def make():
        x, m = af.Input(shape=(T, D)), af.Input(shape=(T,), dtype="int32")
        h = af.MultiHeadAttention(4, 8, dropout=0.1)(x, x, attention_mask=m, use_causal_mask=True)
        h = af.LayerNormalization()(af.Add()([x, h]))
        model = af.Model([x, m], h, dtype=dtype, seed=3)
        model.compile(loss="mse", optimizer="adam")
        return model

    assert_threads_bitwise(make, X, y, batch_size=64)


# ---- Attention (dot product) and AdditiveAttention ----------------------------------------------
def pair_model(cls, Tq, Tk, D, Dv, dtype="float64", key=False, mask=None, causal=False, **kw):
    q, v = af.Input(shape=(Tq, D)), af.Input(shape=(Tk, Dv))
    ins = [q, v] + ([af.Input(shape=(Tk, D))] if key else [])
    m = af.Input(shape=mask, dtype="int32") if mask else None
    layer = cls(**kw)
    out = layer(ins, attention_mask=m, use_causal_mask=causal)
    model = af.Model(ins + ([m] if m is not None else []), out, dtype=dtype, seed=2)
    model.compile(loss="mse", optimizer="sgd")
    return model, layer


@pytest.mark.parametrize("cls", [af.Attention, af.AdditiveAttention])
@pytest.mark.parametrize("case", ["plain", "key", "mask1", "mask2", "causal", "noscale", "wide"])
def test_pair_attention_values_and_gradients(cls, case):
    rng = np.random.default_rng(8)
    B, Tq, Tk, D = 3, 4, 6, (16 if case == "wide" else 5)   # 16 features: the row kernels' products
    Dv = 3 if case == "key" else D                  # without a key input the value is the key
    mask = {"mask1": (Tk,), "mask2": (Tq, Tk)}.get(case)
    use_scale = case != "noscale"
    model, layer = pair_model(cls, Tq, Tk, D, Dv, key=case == "key", mask=mask, causal=case == "causal",
                              use_scale=use_scale)
    if cls is af.Attention and use_scale:
        layer.scale = [0.7]
    Q, V = rng.normal(size=(B, Tq, D)), rng.normal(size=(B, Tk, Dv))
    K = rng.normal(size=(B, Tk, D)) if case == "key" else None
    M = None
    X = [Q, V] + ([K] if K is not None else [])
    if mask:
        M = rng.integers(0, 2, size=(B,) + mask).astype(np.int32)
        M[..., 1] = 1
        X.append(M)
    if cls is af.Attention:
        ref = attention_ref(Q, V, K, M, case == "causal", scale=0.7 if use_scale else 1.0)
    else:
        ref = additive_ref(Q, V, K, layer.scale if use_scale else None, M, case == "causal")
    out = model.predict(X)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-13)
    Y = rng.normal(size=out.shape)
    if use_scale:
        fd_param_check(model, X, Y)
    fd_input_check(model, X, Y)


@pytest.mark.parametrize("cls", [af.Attention, af.AdditiveAttention])
def test_pair_attention_dropout_fd_and_threads(cls):
    rng = np.random.default_rng(9)
    model, layer = pair_model(cls, 4, 5, 3, 3, mask=(5,), dropout=0.25, use_scale=True)
    X = [rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 5, 3)), padding_mask(rng, 3, 5)]
    Y = rng.normal(size=(3, 4, 3))
    fd_param_check(model, X, Y, training=True)
    fd_input_check(model, X, Y)
    Xb = [rng.normal(size=(128, 40, 16)), rng.normal(size=(128, 48, 16))]   # over the thread thresholds
    yb = rng.normal(size=(128, 40, 16))

    def make():
        m, _ = pair_model(cls, 40, 48, 16, 16, dtype="float32", dropout=0.1, use_scale=True)
        m.compile(loss="mse", optimizer="adam")
        return m

    assert_threads_bitwise(make, Xb, yb, batch_size=64)


def test_attention_against_torch_sdpa():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    Q, K, V = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 7, 4)), rng.normal(size=(2, 7, 3))
    model, layer = pair_model(af.Attention, 5, 7, 4, 3, key=True, causal=True, use_scale=True)
    layer.scale = [0.5]
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (Q, K, V))
    mask = torch.tril(torch.ones(5, 7, dtype=torch.bool))
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=mask, scale=0.5)
    assert rel_err(model.predict([Q, V, K]), out.detach().numpy()) < 1e-12
    Y = rng.normal(size=(2, 5, 3))
    ((out - torch.tensor(Y)) ** 2).mean().backward()
    dq, dv, dk = model.input_gradients([Q, V, K], Y)
    for a, t in ((dq, tq), (dv, tv), (dk, tk)):
        assert rel_err(a, t.grad.numpy()) < 1e-10


# ---- bad input ---------------------------------------------------------------------------------------
def test_bad_settings_and_calls():
    with pytest.raises(ValueError, match="num_heads"):
        af.MultiHeadAttention(0, 4)
    with pytest.raises(ValueError, match="dropout"):
        af.MultiHeadAttention(2, 4, dropout=1.0)
    with pytest.raises(TypeError, match="use_bias"):
        af.MultiHeadAttention(2, 4, use_bias=1)
    with pytest.raises(ValueError, match="score_mode"):
        af.Attention(score_mode="concat")
    x, y = af.Input(shape=(5, 8)), af.Input(shape=(6, 8))
    with pytest.raises(TypeError, match="mha\\(query, value"):
        af.MultiHeadAttention(2, 4)(x)
    with pytest.raises(ValueError, match="per-sample shape \\(steps, features\\)"):
        af.MultiHeadAttention(2, 4)(af.Input(shape=(8,)), af.Input(shape=(8,)))
    with pytest.raises(ValueError, match="integer token ids"):
        af.MultiHeadAttention(2, 4)(af.Input(shape=(5,), dtype="int32"), x)
    with pytest.raises(ValueError, match="same number of steps"):
        af.MultiHeadAttention(2, 4)(x, y, key=af.Input(shape=(7, 8)))
    with pytest.raises(ValueError, match="attention_mask must be an integer tensor"):
        af.MultiHeadAttention(2, 4)(x, y, attention_mask=af.Input(shape=(6,)))
    with pytest.raises(ValueError, match=r"\(query_steps, key_steps\) = \(5, 6\) or \(key_steps,\) = \(6,\)"):
        af.MultiHeadAttention(2, 4)(x, y, attention_mask=af.Input(shape=(5,), dtype="int32"))
    with pytest.raises(ValueError, match="same number of features"):
        af.Attention()([x, af.Input(shape=(6, 3))])
    shared = af.MultiHeadAttention(2, 4)
    shared(x, x)
    with pytest.raises(ValueError, match="shared"):
        shared(x, x, use_causal_mask=True)


def test_bad_data_leaves_model_unchanged():
    rng = np.random.default_rng(11)
    model, layer = mha_model(5, 6, 4, 4, mask=(6,))
    model.compile(loss="mse", optimizer="adam")
    before = model.get_weights()
    Xq, Xv, M = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 6, 4)), np.ones((3, 6), dtype=np.int32)
    Y = rng.normal(size=(3, 5, 4))
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit([Xq, Xv[:2], M], Y, verbose=0)                  # query/value batches differ
    with pytest.raises(ValueError, match="shape"):
        model.fit([Xq, Xv, np.ones((3, 5), dtype=np.int32)], Y, verbose=0)   # mask of the wrong shape
    with pytest.raises(TypeError, match="integer"):
        model.fit([Xq, Xv, np.ones((3, 6))], Y, verbose=0)                   # float mask data
    with pytest.raises(ValueError):
        model.fit([Xq, np.full((3, 6, 4), np.nan), M], Y, verbose=0)          # NaN rejected up front
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict([Xq, Xv, M.astype(bool)]), model.predict([Xq, Xv, M]))


def test_save_load_summary(tmp_path):
    rng = np.random.default_rng(12)
    q, v, m = af.Input(shape=(5, 6)), af.Input(shape=(7, 6)), af.Input(shape=(7,), dtype="int32")
    h = af.MultiHeadAttention(2, 3, value_dim=4, output_dim=5, dropout=0.1)(q, v, attention_mask=m,
                                                                              use_causal_mask=True)
    h2 = af.Attention(use_scale=True)([q, v], attention_mask=m)
    h3 = af.AdditiveAttention()([q, v])
    out = af.Concatenate()([h, h2, h3])
    model = af.Model([q, v, m], out, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer="adam")
    X = [rng.normal(size=(4, 5, 6)), rng.normal(size=(4, 7, 6)), padding_mask(rng, 4, 7)]
    Y = rng.normal(size=(4, 5, 17))
    model.fit(X, Y, epochs=2, verbose=0)
    path = tmp_path / "att.npz"
    model.save(path)
    again = af.load_model(path)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    text = model.summary(print_fn=None)
    assert "MultiHeadAttention" in text and "AdditiveAttention" in text
    assert model.count_params() == sum(w.size for w in model.get_weights())


@pytest.mark.parametrize("make", [lambda: af.MultiHeadAttention(2, 2), lambda: af.Attention(use_scale=True),
                                  af.AdditiveAttention])   # (a weight for the update to show the rate)
def test_dropout_rate_assigned_after_training_is_checked_and_used(make):
    X = np.random.default_rng(0).normal(size=(8, 5, 4))
    x = af.Input(shape=(5, 4))
    layer = make()
    y = layer(x, x) if isinstance(layer, af.MultiHeadAttention) else layer([x, x])
    model = af.Model(x, af.GlobalAveragePooling1D()(y), dtype="float64", seed=0)
    model.compile(loss="mse", optimizer="sgd")
    assert_dropout_setting_used(model, layer, X, np.zeros((8, 4)))
