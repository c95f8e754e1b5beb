/* additive_attention.c: additive (Bahdanau) attention, as Keras's AdditiveAttention layer.
 *
 * Inputs as attention.c: query (Tq x D), value (Tk x Dv), key (Tk x D) if has_key (else the
 * value), an int32 mask (Tk) or (Tq x Tk) if has_mask.
 *
 *   forward   S_ij = sum_d w_d tanh(q_id + k_jd)  (w: learned, D values, with use_scale; else 1)
 *             P = softmax(S) over the allowed keys;  Y = dropout(P) V
 *   backward  dV = Pd^T dY;  dP = dropout(dY V^T);  dS = P (dP - rowsum(P dP));
 *             with t = tanh(q_id + k_jd), g = dS_ij w_d (1 - t^2):
 *             dq_id += g;  dk_jd += g;  dw_d += dS_ij t
 * One task per sample (threads over samples; dw sums the samples' partials in order). tanh is
 * recomputed in backward (B Tq Tk D values are never stored). A row with no allowed key gives
 * P = 0. */
#include "attn_core.h"
#include "fpenv.h"
#include "norm.h"
#include "rng.h"
#include "rows.h"
#include "isa_ctx.h"

#define AF_ADD_KEEP_PER_SAMPLE ((size_t)1 << 20)

static af_status additive_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_pair_attn_cfg *c = (const af_pair_attn_cfg *)cfg;
    af_status s = af_pair_attn_infer(c, n_in, in, info);
    info->n_params = c->use_scale ? in[0].dim[1] : 0;
    return s;
}

static int additive_keep_p(const af_shape *in)
{
    return in[0].dim[0] * in[1].dim[0] <= AF_ADD_KEEP_PER_SAMPLE;
}

static size_t additive_slots(size_t B) { return B < AF_ATTN_SLOTS ? B : AF_ATTN_SLOTS; }

/* aux: stat (B Tq 2), [P (B Tq Tk)];  scratch: 3 Tq Tk per slot, dQ, dK, dV, dw partials (B D) */
static void additive_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                           size_t B, int training, af_node_sizes *sz)
{
    (void)cfg;
    (void)n_in;
    (void)out;
    (void)training;
    size_t Tq = in[0].dim[0], Tk = in[1].dim[0], D = in[0].dim[1], Dv = in[1].dim[1];
    sz->aux = 2 * B * Tq + (additive_keep_p(in) ? B * Tq * Tk : 0);
    sz->scratch = additive_slots(B) * 3 * Tq * Tk + B * (Tq * D + Tk * D + Tk * Dv + D);
}

#define AF_DTYPE_F32
#include "additive_attention_impl.h"
#define AF_DTYPE_F64
#include "additive_attention_impl.h"

const af_layer_ops af_op_additive_attention = {
    "additive_attention", af_pair_attn_fields, sizeof(af_pair_attn_cfg), 2, 4, 0,
    additive_infer, additive_sizes, AF_OPS_FN(additive_forward), AF_OPS_FN(additive_backward),
    {NULL, NULL}};
