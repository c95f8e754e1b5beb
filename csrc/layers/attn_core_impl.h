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

/* dst (d x ps) = src^T, src: n rows of d at stride ld; columns n .. ps of dst are 0. */
static void AF_FN(attn_transpose)(size_t n, size_t d, const T *src, size_t ld, T *dst, size_t ps)
{
    for (size_t c = 0; c < d; c++) {
        for (size_t i = 0; i < n; i++) dst[c * ps + i] = src[i * ld + c];
        for (size_t i = n; i < ps; i++) dst[c * ps + i] = 0;
    }
}

/* What every task of a pass shares. */
typedef struct {
    const af_attn_args *a;
    const AF_FN(af_rows) *k;
    size_t rb, nblk, ps, slot_len;
    int vec, drop;
} AF_FN(attn_pass);

static void AF_FN(attn_pass_of)(const af_attn_args *a, AF_FN(attn_pass) *x)
{
    x->a = a;
    x->k = AF_FN(af_kern)()->rows;
    x->rb = af_attn_block_rows(a->Tq, a->Tk);
    x->nblk = (a->Tq + x->rb - 1) / x->rb;
    x->vec = af_attn_vec(a->Tq, a->Tk, a->dk, a->dv);
    x->ps = af_attn_score_stride(a->Tq, a->Tk, a->dk, a->dv);
    x->slot_len = attn_slot_len(a->Tq, a->Tk, a->dk, a->dv);
    x->drop = a->training && a->dropout > 0;
}

/* The three products with the score rows as output or left operand:
 *   S (r x Tk, row stride ps) = alpha Q K^T      (scores;  dP = dO V^T likewise)
 *   C (r x n) = alpha S B                          (O = P V;  dQ = dS K)
 *   C (Tk x n) (+)= alpha S^T B                    (dV = P^T dO;  dK = dS^T Q; beta 0 or 1)
 * through the row kernels (vec: K^T in tr first) or the GEMM. */
static af_status AF_FN(attn_abt)(const AF_FN(attn_pass) *x, size_t r, size_t d, T alpha,
                                 const T *A, size_t lda, const T *B, size_t ldb, T *tr, T *S)
{
    size_t Tk = x->a->Tk, ps = x->ps;
    if (!x->vec) return GEMM(0, 1, r, Tk, d, alpha, A, lda, B, ldb, (T)0, S, ps);
    AF_FN(attn_transpose)(Tk, d, B, ldb, tr, ps);
    x->k->mm(r, ps, d, alpha, A, lda, 1, tr, ps, S, ps);
    return AF_OK;
}

static af_status AF_FN(attn_sb)(const AF_FN(attn_pass) *x, size_t r, size_t n, T alpha, const T *S,
                                const T *B, size_t ldb, T *C, size_t ldc)
{
    size_t Tk = x->a->Tk, ps = x->ps;
    if (!x->vec) return GEMM(0, 0, r, n, Tk, alpha, S, ps, B, ldb, (T)0, C, ldc);
    x->k->mm(r, n, Tk, alpha, S, ps, 1, B, ldb, C, ldc);
    return AF_OK;
}

static af_status AF_FN(attn_stb)(const AF_FN(attn_pass) *x, size_t r, size_t n, T alpha, const T *S,
                                 const T *B, size_t ldb, T beta, T *C, size_t ldc)
{
    size_t Tk = x->a->Tk, ps = x->ps;
    if (!x->vec) return GEMM(1, 0, Tk, n, r, alpha, S, ps, B, ldb, beta, C, ldc);
    x->k->mm(Tk, n, r, alpha, S, 1, ps, B, ldb, C, ldc);   /* one block: beta is 0 */
    return AF_OK;
}

/* The dropout seed of rows block blk of task t: the task numbered by global sample position. */
static uint64_t AF_FN(attn_drop_seed)(const AF_FN(attn_pass) *x, size_t t, size_t blk)
{
    return af_layer_seed(x->a->seed, ((uint64_t)x->a->row0 * x->a->H + t) * x->nblk + blk);
}

/* Softmax rows i0 .. i0 + r of task t (in place over the scores S). */
static void AF_FN(attn_softmax)(const AF_FN(attn_pass) *x, size_t t, size_t i0, size_t r, T *S)
{
    const af_attn_args *a = x->a;
    size_t lim, b = t / a->H;
    for (size_t i = 0; i < r; i++) {
        const int32_t *m = AF_FN(attn_row_mask)(a, b, i0 + i, &lim);
        x->k->sm_fwd(a->Tk, S + i * x->ps, m, lim, (T *)a->stat + 2 * (t * a->Tq + i0 + i));
    }
}

af_status AF_FN(af_attn_forward)(const af_attn_args *a)
{
    size_t H = a->H, Tq = a->Tq, Tk = a->Tk, dk = a->dk, dv = a->dv, tasks = a->B * H;
    AF_FN(attn_pass) x;
    AF_FN(attn_pass_of)(a, &x);
    size_t rb = x.rb, ps = x.ps;
    int nt = AF_FN(attn_threads)(a, 1);
    T *P = (T *)a->P;
    af_status err = AF_OK;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t t = 0; t < tasks; t++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        size_t b = t / H, h = t % H;
        T *A = (T *)a->work + (size_t)af_attn_slot() * x.slot_len, *Pd_buf = A + rb * ps;
        T *tr = Pd_buf + 2 * rb * ps;
        const T *Q = (const T *)a->Q + b * Tq * a->ldq + h * dk;
        const T *K = (const T *)a->K + b * Tk * a->ldk + h * dk;
        const T *V = (const T *)a->V + b * Tk * a->ldv + h * dv;
        T *O = (T *)a->O + b * Tq * a->ldo + h * dv;
        af_status s = AF_OK;
        for (size_t blk = 0; blk < x.nblk && s == AF_OK; blk++) {
            size_t i0 = blk * rb, r = Tq - i0 < rb ? Tq - i0 : rb;
            T *S = P ? P + (t * Tq + i0) * ps : A;
            /* S = scale Q K^T for rows i0 .. i0 + r;  P = softmax(S) */
            s = AF_FN(attn_abt)(&x, r, dk, (T)a->scale, Q + i0 * a->ldq, a->ldq, K, a->ldk, tr, S);
            if (s != AF_OK) break;
            AF_FN(attn_softmax)(&x, t, i0, r, S);
            const T *Pd = S;
            if (x.drop) {
                s = DROP(r * ps, a->dropout, AF_FN(attn_drop_seed)(&x, t, blk), a->step, S, Pd_buf);
                Pd = Pd_buf;
            }
            /* O = Pd V */
            if (s == AF_OK) s = AF_FN(attn_sb)(&x, r, dv, (T)1, Pd, V, a->ldv, O + i0 * a->ldo, a->ldo);
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
    AF_FN(attn_pass) x;
    AF_FN(attn_pass_of)(a, &x);
    size_t rb = x.rb, ps = x.ps;
    int nt = AF_FN(attn_threads)(a, 2);
    T scale = (T)a->scale, *P = (T *)a->P, *stat = (T *)a->stat, *part = (T *)a->dscale_part;
    af_status err = AF_OK;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t t = 0; t < tasks; t++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        size_t b = t / H, h = t % H;
        T *A = (T *)a->work + (size_t)af_attn_slot() * x.slot_len, *Pd_buf = A + rb * ps;
        T *C = Pd_buf + rb * ps, *tr = C + rb * ps;
        const T *Q = (const T *)a->Q + b * Tq * a->ldq + h * dk;
        const T *K = (const T *)a->K + b * Tk * a->ldk + h * dk;
        const T *V = (const T *)a->V + b * Tk * a->ldv + h * dv;
        const T *dO = (const T *)a->dO + b * Tq * a->lddo + h * dv;
        T *dQ = (T *)a->dQ + b * Tq * a->lddq + h * dk;
        T *dK = (T *)a->dK + b * Tk * a->lddk + h * dk;
        T *dV = (T *)a->dV + b * Tk * a->lddv + h * dv;
        T dscale = 0;
        af_status s = AF_OK;
        for (size_t blk = 0; blk < x.nblk && s == AF_OK; blk++) {
            size_t i0 = blk * rb, r = Tq - i0 < rb ? Tq - i0 : rb, lim, i;
            T beta = blk ? (T)1 : (T)0;
            const T *Pb = P ? P + (t * Tq + i0) * ps : A;
            const T *dOb = dO + i0 * a->lddo, *Qb = Q + i0 * a->ldq;
            T *dQb = dQ + i0 * a->lddq;
            if (!P) {
                /* recompute P from the scores and the forward's (max, 1/sum): the same bits */
                s = AF_FN(attn_abt)(&x, r, dk, scale, Qb, a->ldq, K, a->ldk, tr, A);
                for (i = 0; i < r && s == AF_OK; i++) {
                    const int32_t *m = AF_FN(attn_row_mask)(a, b, i0 + i, &lim);
                    x.k->sm_prob(Tk, A + i * ps, m, lim, stat + 2 * (t * Tq + i0 + i), A + i * ps);
                }
            }
            uint64_t seed = AF_FN(attn_drop_seed)(&x, t, blk);
            const T *Pd = Pb;
            if (x.drop && s == AF_OK) {
                s = DROP(r * ps, a->dropout, seed, a->step, Pb, Pd_buf);
                Pd = Pd_buf;
            }
            /* dV (+)= Pd^T dO;  dPd = dO V^T;  dP = dropout(dPd) */
            if (s == AF_OK) s = AF_FN(attn_stb)(&x, r, dv, (T)1, Pd, dOb, a->lddo, beta, dV, a->lddv);
            if (s == AF_OK) s = AF_FN(attn_abt)(&x, r, dv, (T)1, dOb, a->lddo, V, a->ldv, tr, C);
            if (x.drop && s == AF_OK) s = DROP(r * ps, a->dropout, seed, a->step, C, C);
            if (s != AF_OK) break;
            /* dS = P (dP - rowsum(P dP)) */
            for (i = 0; i < r; i++) x.k->sm_bwd(Tk, Pb + i * ps, C + i * ps);
            /* dQ = scale dS K (unscaled first for a learned scale: sum Q . (dS K) is its gradient) */
            s = AF_FN(attn_sb)(&x, r, dk, part ? (T)1 : scale, C, K, a->ldk, dQb, a->lddq);
            if (part)
                for (i = 0; i < r && s == AF_OK; i++)
                    for (size_t j = 0; j < dk; j++) {
                        dscale += Qb[i * a->ldq + j] * dQb[i * a->lddq + j];
                        dQb[i * a->lddq + j] *= scale;
                    }
            /* dK (+)= scale dS^T Q */
            if (s == AF_OK) s = AF_FN(attn_stb)(&x, r, dk, scale, C, Qb, a->ldq, beta, dK, a->lddk);
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
    const AF_FN(af_rows) *k = AF_FN(af_kern)()->rows;
    size_t tasks = B * H;
    int nt = (double)tasks * (double)lim * (double)(dk + dv) >= AF_ATTN_PAR_MIN ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t t = 0; t < tasks; t++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
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
