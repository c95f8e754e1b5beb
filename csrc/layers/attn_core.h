/* attn_core.h: scaled dot-product attention over (batch, head) tasks, shared by the
 * multi-head attention (mha.c) and dot-product attention (attention.c) kinds.
 *
 * For each sample b and head h (Q_bh: Tq x dk, K_bh: Tk x dk, V_bh: Tk x dv, strided views):
 *   forward   S = scale Q K^T;  P = softmax over each row of S restricted to the allowed keys
 *             (the mask, and j <= i when causal); Pd = dropout(P) (training);  O = Pd V
 *   backward  dV = Pd^T dO;  dPd = dO V^T;  dP = dropout(dPd);
 *             dS = P * (dP - rowsum(P * dP));  dQ = scale dS K;  dK = scale dS^T Q
 * A row with no allowed key gives P = 0 (so O = 0 and no gradient): a defined result, never NaN.
 *
 * Tasks run over the threads in a fixed order; each writes only its own head's slices of O, dQ,
 * dK, dV, so results are the same bits for any thread count. Inside a task the query rows go in
 * blocks of at most AF_ATTN_BLOCK / Tk rows, so a thread holds only a block of one head's score
 * matrix at a time (in its slot of `work`: three blocks, and K^T or V^T); dK and dV add the
 * blocks in order.
 *
 * P is either kept for backward (B x H x Tq x Tk, `P` non-NULL) or recomputed there from Q, K
 * and the per-row (max, 1/sum) in `stat` (bit for bit the forward's P). Dropout masks come
 * from (seed, step, task, block), regenerated in backward; the task counts samples from row0,
 * so a piece of a split batch draws the masks its samples get in the whole batch. */
#ifndef AF_ATTN_CORE_H
#define AF_ATTN_CORE_H
#ifdef _OPENMP
#include <omp.h>
#endif
#include "rows.h"
#include "util.h"

/* Elements of one score block (a slot holds three): 64 KiB of float32, cache-resident. */
#define AF_ATTN_BLOCK 16384
/* Threads only from this many multiply-adds per pass (as the GEMM). */
#define AF_ATTN_PAR_MIN 2.0e6
/* Slots (threads working at once) at most. */
#define AF_ATTN_SLOTS 16
/* Keep P (B*H*Tq*Tk elements) up to this many elements in "auto" mode, else recompute it:
 * 64 MiB of float32 (batch 16, 4 heads, 512 x 512 scores). */
#define AF_ATTN_KEEP_MAX ((size_t)1 << 24)

typedef struct {
    size_t B, H, Tq, Tk, dk, dv;
    /* row t of sample b, head h of X is at X + (b T + t) ldx + h d */
    const void *Q, *K, *V;
    size_t ldq, ldk, ldv;
    void *O;
    size_t ldo;
    double scale;
    int causal;                 /* key j allowed for query i only if j <= i */
    const int32_t *mask;        /* nonzero = allowed; NULL: every key */
    int mask_rank;              /* 1: Tk per sample (keys), 2: Tq x Tk per sample */
    double dropout;             /* on P, training only */
    int training;
    uint64_t seed, step;
    uint64_t row0;              /* position of sample 0 in the whole batch (dropout masks) */
    void *P;                    /* B H Tq rows of af_attn_score_stride kept probabilities, or NULL
                                 * (recompute) */
    void *stat;                 /* B H Tq x 2: (max, 1/sum) of each row */
    void *work;                 /* af_attn_work_len elements */
    /* backward */
    const void *dO;
    size_t lddo;
    void *dQ, *dK, *dV;
    size_t lddq, lddk, lddv;
    /* if non-NULL (B H entries): sum over the task of Q . (dS K), the gradient of the scores'
     * scale as a parameter (attention.c); dQ then still gets scale dS K */
    void *dscale_part;
} af_attn_args;

/* The inputs of attention.c and additive_attention.c: query (Tq x D), value (Tk x Dv), key
 * (Tk x D) if has_key, int32 mask (Tk) or (Tq x Tk) if has_mask. */
static inline af_status af_attn_check_inputs(size_t n_in, const af_shape *in, int has_key, int has_mask)
{
    size_t nf = 2 + (size_t)has_key;
    if (n_in != nf + (size_t)has_mask) return AF_EINVAL;
    if (!af_inputs_float(nf, in)) return AF_ESHAPE;
    for (size_t k = 0; k < nf; k++)
        if (in[k].rank != 2) return AF_ESHAPE;
    const af_shape *key = &in[has_key ? 2 : 1];
    if (key->dim[0] != in[1].dim[0] || key->dim[1] != in[0].dim[1]) return AF_ESHAPE;
    if (has_mask) {
        const af_shape *m = &in[nf];
        if (m->elem != AF_ELEM_INT32) return AF_ESHAPE;
        if (!((m->rank == 1 && m->dim[0] == in[1].dim[0]) ||
              (m->rank == 2 && m->dim[0] == in[0].dim[0] && m->dim[1] == in[1].dim[0])))
            return AF_ESHAPE;
    }
    return AF_OK;
}

/* The settings of attention.c and additive_attention.c (the same fields for both kinds). */
typedef struct {
    int use_scale;
    double dropout;
    int causal;
    int has_key, has_mask;
} af_pair_attn_cfg;

extern const af_field af_pair_attn_fields[];

/* Their shared shape inference: checks the inputs, output (Tq x Dv); the caller sets n_params. */
static inline af_status af_pair_attn_infer(const af_pair_attn_cfg *c, size_t n_in, const af_shape *in,
                                           af_node_info *info)
{
    af_status s = af_attn_check_inputs(n_in, in, c->has_key, c->has_mask);
    if (s != AF_OK) return s;
    info->out.rank = 2;
    info->out.dim[0] = in[0].dim[0];
    info->out.dim[1] = in[1].dim[1];
    info->out.elem = AF_ELEM_FLOAT;
    return AF_OK;
}

/* The work slot of the calling thread inside a task loop (thread number < the slots). */
static inline int af_attn_slot(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Heads (one query block) of at most this many multiply-adds per product, with dk and dv
 * multiples of AF_ROW_VN, run their six products through the row kernels' register-blocked
 * product (rows.h mm: no packing, the fastest for these sizes) on score rows padded to a
 * multiple of AF_ROW_VN; the others through the packed GEMM. */
#define AF_ATTN_VEC_MAX ((double)(1 << 20))

/* Rows per query block; 1 if the head takes the row kernels' product; the row stride of the
 * scores and kept probabilities; the elements of `work` for batches of B. */
size_t af_attn_block_rows(size_t Tq, size_t Tk);
int af_attn_vec(size_t Tq, size_t Tk, size_t dk, size_t dv);
size_t af_attn_score_stride(size_t Tq, size_t Tk, size_t dk, size_t dv);
size_t af_attn_work_len(size_t B, size_t H, size_t Tq, size_t Tk, size_t dk, size_t dv);

af_status af_attn_forward_f32(const af_attn_args *a);
af_status af_attn_forward_f64(const af_attn_args *a);
af_status af_attn_backward_f32(const af_attn_args *a);
af_status af_attn_backward_f64(const af_attn_args *a);

/* One query row per sample (incremental decoding) against keys [0, lim): for each b, h
 *   s_j = scale q . k_j (allowed j only);  p = softmax(s);  o = sum_j p_j v_j
 * q: B rows (ldq), K/V: B x Tk rows (ldk, ldv), o: B rows (ldo); mask: B rows of Tk (or NULL);
 * work: B H Tk elements. */
af_status af_attn_row_f32(size_t B, size_t H, size_t Tk, size_t lim, size_t dk, size_t dv,
                          const float *q, size_t ldq, const float *K, size_t ldk, const float *V,
                          size_t ldv, float *o, size_t ldo, double scale, const int32_t *mask,
                          size_t mask_ld, float *work);
af_status af_attn_row_f64(size_t B, size_t H, size_t Tk, size_t lim, size_t dk, size_t dv,
                          const double *q, size_t ldq, const double *K, size_t ldk, const double *V,
                          size_t ldv, double *o, size_t ldo, double scale, const int32_t *mask,
                          size_t mask_ld, double *work);

#endif
