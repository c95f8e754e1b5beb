/* additive_attention_impl.h: additive attention for one dtype (additive_attention.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define GEMM af_sgemm
#define DROP af_dropout_apply_f32
#define COPY_ADD af_copy_add_f32
#else
#define GEMM af_dgemm
#define DROP af_dropout_apply_f64
#define COPY_ADD af_copy_add_f64
#endif

/* What forward and backward share. */
typedef struct {
    size_t B, Tq, Tk, D, Dv, key_in, mask_in;
    const T *Q, *K, *V, *w;
    const int32_t *mask;
    int mask_rank, causal, drop;
    T *stat, *P;
} AF_FN(add_ctx);

static void AF_FN(add_ctx_of)(const af_op_args *a, AF_FN(add_ctx) *x)
{
    const af_pair_attn_cfg *c = (const af_pair_attn_cfg *)a->cfg;
    x->B = a->batch;
    x->Tq = a->in_shape[0].dim[0];
    x->Tk = a->in_shape[1].dim[0];
    x->D = a->in_shape[0].dim[1];
    x->Dv = a->in_shape[1].dim[1];
    x->key_in = c->has_key ? 2 : 1;
    x->mask_in = c->has_mask ? 2 + (size_t)c->has_key : 0;
    x->Q = (const T *)a->x[0];
    x->K = (const T *)a->x[x->key_in];
    x->V = (const T *)a->x[1];
    x->w = c->use_scale ? (const T *)a->param : NULL;
    x->mask = x->mask_in ? (const int32_t *)a->x[x->mask_in] : NULL;
    x->mask_rank = x->mask_in ? a->in_shape[x->mask_in].rank : 0;
    x->causal = c->causal;
    x->drop = a->training && c->dropout > 0;
    x->stat = (T *)a->aux;
    x->P = additive_keep_p(a->in_shape) ? x->stat + 2 * x->B * x->Tq : NULL;
}

static inline const int32_t *AF_FN(add_row_mask)(const AF_FN(add_ctx) *x, size_t b, size_t i,
                                                 size_t *lim)
{
    *lim = x->causal ? (i + 1 < x->Tk ? i + 1 : x->Tk) : x->Tk;
    if (!x->mask) return NULL;
    return x->mask_rank == 1 ? x->mask + b * x->Tk : x->mask + (b * x->Tq + i) * x->Tk;
}

/* Row i of sample b's scores into s (allowed keys only; the others 0), then P or the stat. */
static void AF_FN(add_scores)(const AF_FN(add_ctx) *x, size_t b, size_t i, T *s)
{
    size_t lim;
    const int32_t *m = AF_FN(add_row_mask)(x, b, i, &lim);
    const T *q = x->Q + (b * x->Tq + i) * x->D;
    for (size_t j = 0; j < x->Tk; j++) {
        T acc = 0;
        if (j < lim && (!m || m[j])) {
            const T *k = x->K + (b * x->Tk + j) * x->D;
            if (x->w) for (size_t d = 0; d < x->D; d++) acc += x->w[d] * TANH(q[d] + k[d]);
            else for (size_t d = 0; d < x->D; d++) acc += TANH(q[d] + k[d]);
        }
        s[j] = acc;
    }
}

static int AF_FN(add_threads)(const AF_FN(add_ctx) *x)
{
    size_t nt = (size_t)af_get_num_threads(), slots = additive_slots(x->B);
    if (nt > slots) nt = slots;
    double work = (double)x->B * (double)x->Tq * (double)x->Tk * (double)(x->D + x->Dv);
    return work >= 2e4 && nt > 1 ? (int)nt : 1;
}

static af_status AF_FN(additive_forward)(const af_op_args *a)
{
    AF_FN(add_ctx) x;
    AF_FN(add_ctx_of)(a, &x);
    const af_pair_attn_cfg *c = (const af_pair_attn_cfg *)a->cfg;
    const AF_FN(af_rows) *k = AF_FN(af_kern)()->rows;
    size_t Tq = x.Tq, Tk = x.Tk, slot_len = 3 * Tq * Tk;
    int nt = AF_FN(add_threads)(&x);
    af_status err = AF_OK;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < x.B; b++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        T *A = (T *)a->scratch + (size_t)af_attn_slot() * slot_len, *Pd_buf = A + Tq * Tk;
        T *S = x.P ? x.P + b * Tq * Tk : A;
        size_t lim;
        for (size_t i = 0; i < Tq; i++) {
            AF_FN(add_scores)(&x, b, i, S + i * Tk);
            const int32_t *m = AF_FN(add_row_mask)(&x, b, i, &lim);
            k->sm_fwd(Tk, S + i * Tk, m, lim, x.stat + 2 * (b * Tq + i));
        }
        const T *Pd = S;
        af_status s = AF_OK;
        if (x.drop) {
            s = DROP(Tq * Tk, c->dropout, af_layer_seed(a->seed, a->row0 + b), a->step, S, Pd_buf);
            Pd = Pd_buf;
        }
        if (s == AF_OK)
            s = GEMM(0, 0, Tq, x.Dv, Tk, (T)1, Pd, Tk, x.V + b * Tk * x.Dv, x.Dv, (T)0,
                     (T *)a->y + b * Tq * x.Dv, x.Dv);
        if (s != AF_OK) {
            #pragma omp critical(af_add_err)
            err = s;
        }
    }
    return err;
}

static af_status AF_FN(additive_backward)(const af_op_args *a)
{
    AF_FN(add_ctx) x;
    AF_FN(add_ctx_of)(a, &x);
    const af_pair_attn_cfg *c = (const af_pair_attn_cfg *)a->cfg;
    const AF_FN(af_rows) *k = AF_FN(af_kern)()->rows;
    size_t B = x.B, Tq = x.Tq, Tk = x.Tk, D = x.D, Dv = x.Dv, slot_len = 3 * Tq * Tk;
    T *dQ = (T *)a->scratch + additive_slots(B) * slot_len, *dK = dQ + B * Tq * D;
    T *dV = dK + B * Tk * D, *part = dV + B * Tk * Dv;
    const T *dY = (const T *)a->dy;
    int nt = AF_FN(add_threads)(&x);
    af_status err = AF_OK;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < B; b++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        T *A = (T *)a->scratch + (size_t)af_attn_slot() * slot_len, *Pd_buf = A + Tq * Tk;
        T *C = Pd_buf + Tq * Tk, *dq = dQ + b * Tq * D, *dk = dK + b * Tk * D, *pw = part + b * D;
        const T *Vb = x.V + b * Tk * Dv, *dYb = dY + b * Tq * Dv, *Pb = x.P ? x.P + b * Tq * Tk : A;
        size_t lim, i, j, d;
        if (!x.P)
            for (i = 0; i < Tq; i++) {
                AF_FN(add_scores)(&x, b, i, A + i * Tk);
                const int32_t *m = AF_FN(add_row_mask)(&x, b, i, &lim);
                k->sm_prob(Tk, A + i * Tk, m, lim, x.stat + 2 * (b * Tq + i), A + i * Tk);
            }
        uint64_t seed = af_layer_seed(a->seed, a->row0 + b);   /* global position */
        const T *Pd = Pb;
        af_status s = AF_OK;
        if (x.drop) {
            s = DROP(Tq * Tk, c->dropout, seed, a->step, Pb, Pd_buf);
            Pd = Pd_buf;
        }
        /* dV = Pd^T dY;  dP = dropout(dY V^T);  dS = P (dP - rowsum(P dP)) */
        if (s == AF_OK) s = GEMM(1, 0, Tk, Dv, Tq, (T)1, Pd, Tk, dYb, Dv, (T)0, dV + b * Tk * Dv, Dv);
        if (s == AF_OK) s = GEMM(0, 1, Tq, Tk, Dv, (T)1, dYb, Dv, Vb, Dv, (T)0, C, Tk);
        if (s == AF_OK && x.drop) s = DROP(Tq * Tk, c->dropout, seed, a->step, C, C);
        if (s == AF_OK) {
            for (i = 0; i < Tq; i++) k->sm_bwd(Tk, Pb + i * Tk, C + i * Tk);
            for (i = 0; i < Tq * D; i++) dq[i] = 0;
            for (i = 0; i < Tk * D; i++) dk[i] = 0;
            for (d = 0; d < D; d++) pw[d] = 0;
            for (i = 0; i < Tq; i++) {
                const T *q = x.Q + (b * Tq + i) * D;
                for (j = 0; j < Tk; j++) {
                    T ds = C[i * Tk + j];
                    if (ds == 0) continue;            /* masked keys (and exact zeros) add nothing */
                    const T *kj = x.K + (b * Tk + j) * D;
                    for (d = 0; d < D; d++) {
                        T t = TANH(q[d] + kj[d]);
                        T g = ds * (x.w ? x.w[d] : (T)1) * ((T)1 - t * t);
                        dq[i * D + d] += g;
                        dk[j * D + d] += g;
                        pw[d] += ds * t;
                    }
                }
            }
        }
        if (s != AF_OK) {
            #pragma omp critical(af_add_err)
            err = s;
        }
    }
    if (err != AF_OK) return err;
    if (c->use_scale) {
        T *G = (T *)a->grad;
        for (size_t d = 0; d < D; d++) {
            T g = 0;
            for (size_t b = 0; b < B; b++) g += part[b * D + d];
            G[d] = a->grad_acc ? G[d] + g : g;
        }
    }
    if (a->dx[0]) COPY_ADD(B * Tq * D, dQ, (T *)a->dx[0], a->dx_acc[0]);
    if (a->dx[1]) COPY_ADD(B * Tk * Dv, dV, (T *)a->dx[1], a->dx_acc[1]);
    if (a->dx[x.key_in]) COPY_ADD(B * Tk * D, dK, (T *)a->dx[x.key_in], x.key_in == 1 ? 1 : a->dx_acc[2]);
    return AF_OK;
}

#undef GEMM
#undef DROP
#undef COPY_ADD
#include "dtype_end.h"
