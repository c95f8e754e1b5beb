"""Helpers of the attention tests: copying torch.nn weights into annfast layers, and NumPy
references of the attention layers (float64)."""
import numpy as np


def t2n(t):
    return t.detach().cpu().numpy().astype(np.float64)


def copy_mha(layer, tmha, dtype=np.float64):
    """torch.nn.MultiheadAttention(E, H, kdim, vdim) weights into an annfast MultiHeadAttention
    (key_dim = value_dim = E / H, output E): torch's rows are output features, head-major."""
    E, H = tmha.embed_dim, tmha.num_heads
    hd = E // H
    if tmha._qkv_same_embed_dim:
        W = t2n(tmha.in_proj_weight)
        Wq, Wk, Wv = W[:E], W[E:2 * E], W[2 * E:]
    else:
        Wq, Wk, Wv = t2n(tmha.q_proj_weight), t2n(tmha.k_proj_weight), t2n(tmha.v_proj_weight)
    layer.query_kernel = Wq.T.reshape(-1, H, hd)
    layer.key_kernel = Wk.T.reshape(-1, H, hd)
    layer.value_kernel = Wv.T.reshape(-1, H, hd)
    layer.output_kernel = t2n(tmha.out_proj.weight).T.reshape(H, hd, E)
    if tmha.in_proj_bias is not None:
        b = t2n(tmha.in_proj_bias)
        layer.query_bias, layer.key_bias, layer.value_bias = (b[:E].reshape(H, hd), b[E:2 * E].reshape(H, hd),
                                                              b[2 * E:].reshape(H, hd))
        layer.output_bias = t2n(tmha.out_proj.bias)


def mha_grads_as_torch(grads, E, H):
    """annfast MHA gradients (query/key/value kernels, biases, output) in torch's layout:
    (dWq, dWk, dWv (each E_out x E_in), dbq, dbk, dbv, dWo, dbo)."""
    gq, gbq, gk, gbk, gv, gbv, go, gbo = grads
    return (gq.reshape(gq.shape[0], -1).T, gk.reshape(gk.shape[0], -1).T, gv.reshape(gv.shape[0], -1).T,
            gbq.reshape(-1), gbk.reshape(-1), gbv.reshape(-1), go.reshape(-1, E).T, gbo)


def copy_linear(dense, tlin):
    dense.kernel = t2n(tlin.weight).T
    dense.bias = t2n(tlin.bias)


def copy_norm(ln, tln):
    ln.gamma = t2n(tln.weight)
    ln.beta = t2n(tln.bias)


def allowed(Tq, Tk, mask=None, causal=False):
    """(B or 1, Tq, Tk) boolean: keys each query may attend to (mask: (B, Tk) or (B, Tq, Tk))."""
    ok = np.ones((1, Tq, Tk), dtype=bool)
    if causal:
        ok = ok & np.tril(np.ones((Tq, Tk), dtype=bool))[None]
    if mask is not None:
        m = np.asarray(mask) != 0
        ok = ok & (m[:, None, :] if m.ndim == 2 else m)
    return ok


def masked_softmax(S, ok):
    """Softmax over the last axis restricted to ok; rows with nothing allowed give 0."""
    S = np.where(ok, S, -np.inf)
    mx = np.max(S, axis=-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0)
    E = np.where(ok, np.exp(S - mx), 0)
    s = E.sum(-1, keepdims=True)
    return np.where(s > 0, E / np.where(s > 0, s, 1), 0)


def mha_ref(layer, Xq, Xv, Xk=None, mask=None, causal=False):
    """NumPy forward of an annfast MultiHeadAttention with its current weights."""
    Xk = Xv if Xk is None else Xk
    Wq, Wk, Wv, Wo = (np.asarray(w, np.float64) for w in (layer.query_kernel, layer.key_kernel,
                                                           layer.value_kernel, layer.output_kernel))
    bias = layer.use_bias
    Q = np.einsum("btd,dhk->bhtk", Xq, Wq) + (layer.query_bias[None, :, None] if bias else 0)
    K = np.einsum("btd,dhk->bhtk", Xk, Wk) + (layer.key_bias[None, :, None] if bias else 0)
    V = np.einsum("btd,dhk->bhtk", Xv, Wv) + (layer.value_bias[None, :, None] if bias else 0)
    S = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(Wq.shape[-1])
    ok = allowed(Xq.shape[1], Xv.shape[1], mask, causal)[:, None]
    O = masked_softmax(S, ok) @ V
    return np.einsum("bhtv,hvo->bto", O, Wo) + (layer.output_bias if bias else 0)


def attention_ref(Q, V, K=None, mask=None, causal=False, scale=1.0):
    K = V if K is None else K
    S = scale * Q @ K.transpose(0, 2, 1)
    return masked_softmax(S, allowed(Q.shape[1], V.shape[1], mask, causal)) @ V


def additive_ref(Q, V, K=None, w=None, mask=None, causal=False):
    K = V if K is None else K
    t = np.tanh(Q[:, :, None, :] + K[:, None, :, :])
    S = (t * (1.0 if w is None else w)).sum(-1)
    return masked_softmax(S, allowed(Q.shape[1], V.shape[1], mask, causal)) @ V
