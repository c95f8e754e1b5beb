/* mha.c: multi-head attention (Vaswani et al.), as Keras's MultiHeadAttention.
 *
 * Inputs: query (Tq x Dq), value (Tk x Dv), then key (Tk x Dk) if has_key (else key = value),
 * then an int32 mask if has_mask: (Tk) per sample (key padding) or (Tq x Tk), nonzero = attend.
 *
 *   forward   Q = Xq Wq + bq;  K = Xk Wk + bk;  V = Xv Wv + bv        (B T rows, H heads)
 *             O_h = attention(Q_h, K_h, V_h), scale 1/sqrt(dk)       (attn_core.h)
 *             Y = [O_1 .. O_H] Wo + bo                                (Tq x Do)
 *   backward  dWo = O^T dY;  dbo = sum dY;  dO = dY Wo^T;  attention backward -> dQ, dK, dV;
 *             dWq = Xq^T dQ;  dbq = sum dQ;  dXq = dQ Wq^T  (likewise K and V)
 *
 * Parameters: Wq (Dq x H dk), bq, Wk (Dk x H dk), bk, Wv (Dv x H dv), bv, Wo (H dv x Do), bo
 * (biases only with use_bias). aux keeps Q, K, V, O, the softmax row statistics and, when it
 * is at most AF_MHA_KEEP_PER_SAMPLE values per sample (or scores == "keep"), the attention
 * probabilities; otherwise backward recomputes them one block of one head per thread at a time.
 *
 * Decoding (step): the query holds one position; keys and values are either whole (cross
 * attention: projected once, at position 0, into the cache) or one position too (causal self
 * attention: each position's K and V rows are appended to the cache). */
#include "attn_core.h"
#include "rows.h"

/* Per-sample probabilities (H Tq Tk) kept for backward in "auto" mode: 4 MiB of float32, i.e.
 * up to 512 tokens with 4 heads, 362 with 8; longer sequences recompute them. */
#define AF_MHA_KEEP_PER_SAMPLE ((size_t)1 << 20)

typedef struct {
    int64_t num_heads, key_dim, value_dim, output_dim;
    int use_bias;
    double dropout;    /* on the attention probabilities, training only */
    int causal;
    int has_key, has_mask;
    int scores;        /* 0 auto, 1 keep, 2 recompute */
} af_mha_cfg;

static const char *const mha_score_modes[] = {"auto", "keep", "recompute", NULL};

static const af_field mha_fields[] = {
    {"num_heads", AF_FIELD_INT, offsetof(af_mha_cfg, num_heads), 1, 1 << 16, NULL},
    {"key_dim", AF_FIELD_INT, offsetof(af_mha_cfg, key_dim), 1, 1 << 20, NULL},
    {"value_dim", AF_FIELD_INT, offsetof(af_mha_cfg, value_dim), 1, 1 << 20, NULL},
    {"output_dim", AF_FIELD_INT, offsetof(af_mha_cfg, output_dim), 1, 1 << 24, NULL},
    {"use_bias", AF_FIELD_BOOL, offsetof(af_mha_cfg, use_bias), 0, 1, NULL},
    {"dropout", AF_FIELD_REAL, offsetof(af_mha_cfg, dropout), 0, 0.99999999999999989, NULL},
    {"causal", AF_FIELD_BOOL, offsetof(af_mha_cfg, causal), 0, 1, NULL},
    {"has_key", AF_FIELD_BOOL, offsetof(af_mha_cfg, has_key), 0, 1, NULL},
    {"has_mask", AF_FIELD_BOOL, offsetof(af_mha_cfg, has_mask), 0, 1, NULL},
    {"scores", AF_FIELD_ENUM, offsetof(af_mha_cfg, scores), 0, 0, mha_score_modes},
    {NULL, 0, 0, 0, 0, NULL}};

/* The sizes every function needs, from the config and the (full) input shapes. */
typedef struct {
    size_t H, dk, dv, Do, Tq, Tk, Dq, Dk, Dv, hk, hv;
    size_t key_in, mask_in;     /* input index of the key (1 = the value) and of the mask (0: none) */
    size_t wq, bq, wk, bk, wv, bv, wo, bo;   /* parameter offsets (bias offsets unused without bias) */
    size_t n_params;
} mha_dims;

static void mha_dims_of(const af_mha_cfg *c, const af_shape *in, mha_dims *d)
{
    d->H = (size_t)c->num_heads;
    d->dk = (size_t)c->key_dim;
    d->dv = (size_t)c->value_dim;
    d->Do = (size_t)c->output_dim;
    d->hk = d->H * d->dk;
    d->hv = d->H * d->dv;
    d->key_in = c->has_key ? 2 : 1;
    d->mask_in = c->has_mask ? 2 + (size_t)c->has_key : 0;
    d->Tq = in[0].dim[0];
    d->Dq = in[0].dim[1];
    d->Tk = in[1].dim[0];
    d->Dv = in[1].dim[1];
    d->Dk = in[d->key_in].dim[1];
    size_t nb = c->use_bias ? 1 : 0, o = 0;
    d->wq = o; o += d->Dq * d->hk; d->bq = o; o += nb * d->hk;
    d->wk = o; o += d->Dk * d->hk; d->bk = o; o += nb * d->hk;
    d->wv = o; o += d->Dv * d->hv; d->bv = o; o += nb * d->hv;
    d->wo = o; o += d->hv * d->Do; d->bo = o; o += nb * d->Do;
    d->n_params = o;
}

static af_status mha_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_mha_cfg *c = (const af_mha_cfg *)cfg;
    if (n_in != 2 + (size_t)c->has_key + (size_t)c->has_mask) return AF_EINVAL;
    size_t nf = 2 + (size_t)c->has_key;
    if (!af_inputs_float(nf, in)) return AF_ESHAPE;
    for (size_t k = 0; k < nf; k++)
        if (in[k].rank != 2) return AF_ESHAPE;
    if (c->has_key && in[2].dim[0] != in[1].dim[0]) return AF_ESHAPE;
    if (c->has_mask) {
        const af_shape *m = &in[nf];
        if (m->elem != AF_ELEM_INT32) return AF_ESHAPE;
        if (!((m->rank == 1 && m->dim[0] == in[1].dim[0]) ||
              (m->rank == 2 && m->dim[0] == in[0].dim[0] && m->dim[1] == in[1].dim[0])))
            return AF_ESHAPE;
    }
    /* sizes: every product below must fit (checked with a generous bound) */
    double np = ((double)in[0].dim[1] + (double)in[nf - 1].dim[1]) * (double)c->num_heads * (double)c->key_dim +
                ((double)in[1].dim[1] + (double)c->output_dim) * (double)c->num_heads * (double)c->value_dim;
    if (np > 1e15) return AF_ESHAPE;
    mha_dims d;
    mha_dims_of(c, in, &d);
    info->out.rank = 2;
    info->out.dim[0] = d.Tq;
    info->out.dim[1] = d.Do;
    info->out.elem = AF_ELEM_FLOAT;
    info->n_params = d.n_params;
    return AF_OK;
}

static int mha_keep_p(const af_mha_cfg *c, const mha_dims *d)
{
    if (c->scores != 0) return c->scores == 1;
    return d->H * d->Tq * d->Tk <= AF_MHA_KEEP_PER_SAMPLE;
}

/* aux: Q, K, V, O, stat, [P];  scratch: attention work, dO, dQ, dK, dV;
 * cache: K, V (all positions), q, scores, o of one position. */
static void mha_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                      size_t B, int training, af_node_sizes *sz)
{
    const af_mha_cfg *c = (const af_mha_cfg *)cfg;
    mha_dims d;
    (void)n_in;
    (void)out;
    (void)training;
    mha_dims_of(c, in, &d);
    size_t q = B * d.Tq * d.hk, k = B * d.Tk * d.hk, v = B * d.Tk * d.hv, o = B * d.Tq * d.hv;
    size_t ps = af_attn_score_stride(d.Tq, d.Tk, d.dk, d.dv);
    sz->aux = q + k + v + o + 2 * B * d.H * d.Tq + (mha_keep_p(c, &d) ? B * d.H * d.Tq * ps : 0);
    sz->scratch = af_attn_work_len(B, d.H, d.Tq, d.Tk, d.dk, d.dv) + o + q + k + v;
    sz->cache = k + v + B * d.hk + B * d.H * d.Tk + B * d.hv;
}

#define AF_DTYPE_F32
#include "mha_impl.h"
#define AF_DTYPE_F64
#include "mha_impl.h"

const af_layer_ops af_op_mha = {
    "mha", mha_fields, sizeof(af_mha_cfg), 2, 4, 0,
    mha_infer, mha_sizes, AF_OPS_FN(mha_forward), AF_OPS_FN(mha_backward), AF_OPS_FN(mha_step)};
