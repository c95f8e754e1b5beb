/* attention.c: dot-product (Luong) attention, as Keras's Attention layer (score_mode "dot").
 *
 * Inputs: query (Tq x D), value (Tk x Dv), then key (Tk x D) if has_key (else key = value), then
 * an int32 mask if has_mask: (Tk) per sample or (Tq x Tk), nonzero = attend.
 *
 *   forward   S = s Q K^T (s: a learned scalar with use_scale, else 1);  P = softmax(S) over
 *             the allowed keys (mask; j <= i when causal);  Y = dropout(P) V      (Tq x Dv)
 *   backward  the attention core's (attn_core.h) with one head; ds = sum Q . (dS K)
 *
 * Parameters: the scale (1 value) with use_scale. aux keeps the row statistics and the
 * probabilities (up to AF_ATT_KEEP_PER_SAMPLE per sample, else recomputed in backward). */
#include "attn_core.h"

#define AF_ATT_KEEP_PER_SAMPLE ((size_t)1 << 20)

static af_status attention_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_pair_attn_cfg *c = (const af_pair_attn_cfg *)cfg;
    af_status s = af_pair_attn_infer(c, n_in, in, info);
    info->n_params = c->use_scale ? 1 : 0;
    return s;
}

static int attention_keep_p(const af_shape *in)
{
    return in[0].dim[0] * in[1].dim[0] <= AF_ATT_KEEP_PER_SAMPLE;
}

/* aux: stat (B Tq 2), [P (B Tq Tk)];  scratch: work, dQ, dK, dV, the scale's partial sums (B) */
static void attention_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                            size_t B, int training, af_node_sizes *sz)
{
    (void)cfg;
    (void)n_in;
    (void)out;
    (void)training;
    size_t Tq = in[0].dim[0], Tk = in[1].dim[0], D = in[0].dim[1], Dv = in[1].dim[1];
    sz->aux = 2 * B * Tq + (attention_keep_p(in) ? B * Tq * af_attn_score_stride(Tq, Tk, D, Dv) : 0);
    sz->scratch = af_attn_work_len(B, 1, Tq, Tk, D, Dv) + B * (Tq * D + Tk * D + Tk * Dv) + B;
}

#define AF_DTYPE_F32
#include "attention_impl.h"
#define AF_DTYPE_F64
#include "attention_impl.h"

const af_layer_ops af_op_attention = {
    "attention", af_pair_attn_fields, sizeof(af_pair_attn_cfg), 2, 4, 0,
    attention_infer, attention_sizes, AF_OPS_FN(attention_forward), AF_OPS_FN(attention_backward),
    {NULL, NULL}};
