/* attn_core_impl.h: the attention core (attn_core.h) for one dtype (included twice by
 * attn_core.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define GEMM af_sgemm
#define DROP af_dropout_apply_f32
#else
#define GEMM af_dgemm
#define DROP af_dropout_apply_f64
#endif

/* The allowed keys of query row i of sample b: [0, lim) and the mask row (or NULL). */
static inline const int32_t *AF_FN(attn_row_mask)(const af_attn_args *a, size_t b, size_t i,
                                                  size_t *lim)
{
    *lim = a->causal ? (i + 1 < a->Tk ? i + 1 : a->Tk) : a->Tk;
    if (!a->mask) return NULL;
    return a->mask_rank == 1 ? a->mask + b * a->Tk : a->mask + (b * a->Tq + i) * a->Tk;
}

/* Threads for the task loop: a fixed slot per thread, only with enough work (multiply-adds of
 * the pass; the GEMM's own threshold, about 0.1 ms per core: a parallel region costs more than
 * that when the cores are shared with other processes). */
static int AF_FN(attn_threads)(const af_attn_args *a, double passes)
{
    size_t tasks = a->B * a->H, nt = (size_t)af_get_num_threads();
    double work = passes * (double)tasks * (double)a->Tq * (double)a->Tk * (double)(a->dk + a->dv);
    if (nt > AF_ATTN_SLOTS) nt = AF_ATTN_SLOTS;
    if (nt > tasks) nt = tasks;
    return work >= AF_ATTN_PAR_MIN && nt > 1 ? (int)nt : 1;
}

af_status AF_FN(af_attn_forward)(const af_attn_args *a)
{
    size_t H = a->H, Tq = a->Tq, Tk = a->Tk, dk = a->dk, dv = a->dv, tasks = a->B * H;
    size_t rb = af_attn_block_rows(Tq, Tk), nblk = (Tq + rb - 1) / rb, slot_len = 3 * rb * Tk;
    const AF_FN(af_rows) *k = AF_FN(af_rows_pick)();
    int drop = a->training && a->dropout > 0, nt = AF_FN(attn_threads)(a, 1);
    T scale = (T)a->scale, *P = (T *)a->P, *stat = (T *)a->stat;
    af_status err = AF_OK;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t t = 0; t < tasks; t++) {
        size_t b = t / H, h = t % H;
        T *A = (T *)a->work + (size_t)af_attn_slot() * slot_len, *Pd_buf = A + rb * Tk;
        const T *Q = (const T *)a->Q + b * Tq * a->ldq + h * dk;
        const T *K = (const T *)a->K + b * Tk * a->ldk + h * dk;
        const T *V = (const T *)a->V + b * Tk * a->ldv + h * dv;
        T *O = (T *)a->O + b * Tq * a->ldo + h * dv;
        af_status s = AF_OK;
        for (size_t blk = 0; blk < nblk && s == AF_OK; blk++) {
            size_t i0 = blk * rb, r = Tq - i0 < rb ? Tq - i0 : rb, lim;
            T *S = P ? P + (t * Tq + i0) * Tk : A;
            /* S = scale Q K^T for rows i0 .. i0 + r */
            s = GEMM(0, 1, r, Tk, dk, scale, Q + i0 * a->ldq, a->ldq, K, a->ldk, (T)0, S, Tk);
            for (size_t i = 0; i < r && s == AF_OK; i++) {
                const int32_t *m = AF_FN(attn_row_mask)(a, b, i0 + i, &lim);
                k->sm_fwd(Tk, S + i * Tk, m, lim, stat + 2 * (t * Tq + i0 + i));
            }
            const T *Pd = S;
            if (drop && s == AF_OK) {
                s = DROP(r * Tk, a->dropout, af_layer_seed(a->seed, t * nblk + blk), a->step, S, Pd_buf);
                Pd = Pd_buf;
            }
            /* O = Pd V */
            if (s == AF_OK) s = GEMM(0, 0, r, dv, Tk, (T)1, Pd, Tk, V, a->ldv, (T)0, O + i0 * a->ldo, a->ldo);
        }
        if (s != AF_OK) {
            #pragma omp critical(af_attn_err)
            err = s;
        }
    }
    return err;
}

af_status AF_FN(af_attn_backward)(const af_attn_args *a)
{
    size_t H = a->H, Tq = a->Tq, Tk = a->Tk, dk = a->dk, dv = a->dv, tasks = a->B * H;
    size_t rb = af_attn_block_rows(Tq, Tk), nblk = (Tq + rb - 1) / rb, slot_len = 3 * rb * Tk;
    const AF_FN(af_rows) *k = AF_FN(af_rows_pick)();
    int drop = a->training && a->dropout > 0, nt = AF_FN(attn_threads)(a, 2);
    T scale = (T)a->scale, *P = (T *)a->P, *stat = (T *)a->stat, *part = (T *)a->dscale_part;
    af_status err = AF_OK;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t t = 0; t < tasks; t++) {
        size_t b = t / H, h = t % H;
        T *A = (T *)a->work + (size_t)af_attn_slot() * slot_len, *Pd_buf = A + rb * Tk;
        T *C = Pd_buf + rb * Tk;
        const T *Q = (const T *)a->Q + b * Tq * a->ldq + h * dk;
        const T *K = (const T *)a->K + b * Tk * a->ldk + h * dk;
        const T *V = (const T *)a->V + b * Tk * a->ldv + h * dv;
        const T *dO = (const T *)a->dO + b * Tq * a->lddo + h * dv;
        T *dQ = (T *)a->dQ + b * Tq * a->lddq + h * dk;
        T *dK = (T *)a->dK + b * Tk * a->lddk + h * dk;
        T *dV = (T *)a->dV + b * Tk * a->lddv + h * dv;
        T dscale = 0;
        af_status s = AF_OK;
        for (size_t blk = 0; blk < nblk && s == AF_OK; blk++) {
            size_t i0 = blk * rb, r = Tq - i0 < rb ? Tq - i0 : rb, lim, i;
            T beta = blk ? (T)1 : (T)0;
            const T *Pb = P ? P + (t * Tq + i0) * Tk : A;
            if (!P) {
                /* recompute P from the scores and the forward's (max, 1/sum): the same bits */
                s = GEMM(0, 1, r, Tk, dk, scale, Q + i0 * a->ldq, a->ldq, K, a->ldk, (T)0, A, Tk);
                for (i = 0; i < r && s == AF_OK; i++) {
                    const int32_t *m = AF_FN(attn_row_mask)(a, b, i0 + i, &lim);
                    k->sm_prob(Tk, A + i * Tk, m, lim, stat + 2 * (t * Tq + i0 + i), A + i * Tk);
                }
            }
            uint64_t seed = af_layer_seed(a->seed, t * nblk + blk);
            const T *Pd = Pb;
            if (drop && s == AF_OK) {
                s = DROP(r * Tk, a->dropout, seed, a->step, Pb, Pd_buf);
                Pd = Pd_buf;
            }
            const T *dOb = dO + i0 * a->lddo, *Qb = Q + i0 * a->ldq;
            T *dQb = dQ + i0 * a->lddq;
            /* dV (+)= Pd^T dO;  dPd = dO V^T;  dP = dropout(dPd) */
            if (s == AF_OK) s = GEMM(1, 0, Tk, dv, r, (T)1, Pd, Tk, dOb, a->lddo, beta, dV, a->lddv);
            if (s == AF_OK) s = GEMM(0, 1, r, Tk, dv, (T)1, dOb, a->lddo, V, a->ldv, (T)0, C, Tk);
            if (drop && s == AF_OK) s = DROP(r * Tk, a->dropout, seed, a->step, C, C);
            if (s != AF_OK) break;
            /* dS = P (dP - rowsum(P dP)) */
            for (i = 0; i < r; i++) k->sm_bwd(Tk, Pb + i * Tk, C + i * Tk);
            if (part) {
                /* dQ = dS K first unscaled: sum Q . (dS K) is the scale's gradient */
                s = GEMM(0, 0, r, dk, Tk, (T)1, C, Tk, K, a->ldk, (T)0, dQb, a->lddq);
                for (i = 0; i < r && s == AF_OK; i++)
                    for (size_t j = 0; j < dk; j++) {
                        dscale += Qb[i * a->ldq + j] * dQb[i * a->lddq + j];
                        dQb[i * a->lddq + j] *= scale;
                    }
            } else {
                s = GEMM(0, 0, r, dk, Tk, scale, C, Tk, K, a->ldk, (T)0, dQb, a->lddq);
            }
            /* dK (+)= scale dS^T Q */
            if (s == AF_OK) s = GEMM(1, 0, Tk, dk, r, scale, C, Tk, Qb, a->ldq, beta, dK, a->lddk);
        }
        if (part) part[t] = dscale;
        if (s != AF_OK) {
            #pragma omp critical(af_attn_err)
            err = s;
        }
    }
    return err;
}

af_status AF_FN(af_attn_row)(size_t B, size_t H, size_t Tk, size_t lim, size_t dk, size_t dv,
                             const T *q, size_t ldq, const T *K, size_t ldk, const T *V, size_t ldv,
                             T *o, size_t ldo, double scale, const int32_t *mask, size_t mask_ld,
                             T *work)
{
    const AF_FN(af_rows) *k = AF_FN(af_rows_pick)();
    size_t tasks = B * H;
    int nt = (double)tasks * (double)lim * (double)(dk + dv) >= AF_ATTN_PAR_MIN ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t t = 0; t < tasks; t++) {
        size_t b = t / H, h = t % H;
        const T *qh = q + b * ldq + h * dk;
        const T *Kb = K + b * Tk * ldk + h * dk, *Vb = V + b * Tk * ldv + h * dv;
        T *s = work + t * Tk, *oh = o + b * ldo + h * dv;
        for (size_t j = 0; j < lim; j++) {
            const T *kj = Kb + j * ldk;
            T d = 0;
            for (size_t c = 0; c < dk; c++) d += qh[c] * kj[c];
            s[j] = (T)scale * d;
        }
        T st[2];
        k->sm_fwd(Tk, s, mask ? mask + b * mask_ld : NULL, lim, st);
        for (size_t c = 0; c < dv; c++) oh[c] = 0;
        for (size_t j = 0; j < lim; j++) {
            const T *vj = Vb + j * ldv;
            T p = s[j];
            for (size_t c = 0; c < dv; c++) oh[c] += p * vj[c];
        }
    }
    return AF_OK;
}

#undef GEMM
#undef DROP
#include "dtype_end.h"
