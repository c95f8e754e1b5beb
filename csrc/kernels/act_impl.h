/* act_impl.h: activation forward/backward entry points for one dtype (included by act.c).
 * The row kernels live in act_kern_impl.h, compiled once per ISA; these entry points run the row
 * kernels of the path in use (isa_ctx.h). */
#include "dtype_begin.h"

typedef void (*AF_FN(act_rowf_fn))(af_act, T, size_t, const T *, T *);
typedef void (*AF_FN(act_rowb_fn))(af_act, T, size_t, const T *, const T *, const T *, T *);

void AF_FN(af_vexp_row)(size_t n, const T *x, T *y)
{
    AF_FN(af_kern)()->vexp_row(n, x, y);
}

/* Rows [m c / nch, m (c + 1) / nch) of an activation pass, chunk c of nch (pool.h); each row is
 * computed alone, so the split never changes a result. */
typedef struct {
    af_act act;
    T param;
    size_t m, n, nch, ldx, ldy;
    const T *x, *y, *dy;
    T *out;
    AF_FN(act_rowf_fn) fwd;
    AF_FN(act_rowb_fn) bwd;
    int check; /* forward: look at x for NaN/inf first, a block of rows at a time */
    int bad;   /* set when it holds one (relaxed atomic store) */
} AF_FN(act_job);

/* Values of x per check-then-compute block: the block is still in L1/L2 when f reads it, so the
 * check costs no second trip through memory. */
#define AF_ACT_CHECK_BLOCK 8192

/* Checked forward rows [i0, i1): each block of rows is scanned, then computed; none after a bad
 * one (the caller discards y). */
static void AF_FN(act_checked_rows)(AF_FN(act_job) *j, size_t i0, size_t i1)
{
    size_t per = j->n < AF_ACT_CHECK_BLOCK ? AF_ACT_CHECK_BLOCK / j->n : 1;
    for (size_t b = i0; b < i1; b += per) {
        size_t e = b + per < i1 ? b + per : i1;
        if (__atomic_load_n(&j->bad, __ATOMIC_RELAXED) ||
            !AF_FN(af_all_finite)(e - b, j->n, j->x + b * j->ldx, j->ldx)) {
            __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
            return;
        }
        for (size_t i = b; i < e; i++) j->fwd(j->act, j->param, j->n, j->x + i * j->ldx, j->out + i * j->ldy);
    }
}

static void AF_FN(act_chunk)(void *ctx, size_t c, size_t slot)
{
    (void)slot;
    AF_FN(act_job) *j = (AF_FN(act_job) *)ctx;
    size_t i1 = j->m * (c + 1) / j->nch;
    if (j->check) {
        AF_FN(act_checked_rows)(j, j->m * c / j->nch, i1);
        return;
    }
    for (size_t i = j->m * c / j->nch; i < i1; i++) {
        if (j->fwd)
            j->fwd(j->act, j->param, j->n, j->x + i * j->ldx, j->out + i * j->ldy);
        else
            j->bwd(j->act, j->param, j->n, j->x + i * j->ldx, j->y + i * j->ldx, j->dy + i * j->ldx,
                   j->out + i * j->ldx);
    }
}

/* Threads and chunks for an m x n pass: one chunk below AF_PAR_MIN values, else a few per thread. */
static size_t AF_FN(act_split)(size_t m, size_t n, int *nt)
{
    *nt = m * n >= AF_PAR_MIN ? af_get_num_threads() : 1;
    size_t nch = *nt > 1 ? (size_t)*nt * 4 : 1;
    return nch < m ? nch : m;
}

static af_status AF_FN(act_forward_run)(af_act act, T param, size_t m, size_t n, const T *x,
                                        size_t ldx, T *y, size_t ldy, int check)
{
    AF_FP_SCOPE();
    if ((unsigned)act >= AF_ACT_COUNT) return AF_EINVAL;
    if (m == 0 || n == 0) return AF_OK;
    if (!x || !y || ldx < n || ldy < n) return AF_EINVAL;
    if (check && x == y) return AF_EINVAL; /* a rejected call must leave x as it was */
    size_t total;
    if (af_mul_size(m, ldx, &total) || af_mul_size(m, ldy, &total)) return AF_ESHAPE;
    int nt;
    AF_FN(act_job) job = {act, param, m, n, AF_FN(act_split)(m, n, &nt), ldx, ldy, x, NULL, NULL, y,
                          AF_FN(af_kern)()->act_rowf, NULL, check, 0};
    af_pool_run(AF_FN(act_chunk), &job, job.nch, nt);
    return job.bad ? AF_ENONFINITE : AF_OK;
}

af_status AF_FN(af_act_forward)(af_act act, T param, size_t m, size_t n,
                                const T *x, size_t ldx, T *y, size_t ldy)
{
    return AF_FN(act_forward_run)(act, param, m, n, x, ldx, y, ldy, 0);
}

af_status AF_FN(af_act_forward_checked)(af_act act, T param, size_t m, size_t n,
                                        const T *x, size_t ldx, T *y, size_t ldy)
{
    return AF_FN(act_forward_run)(act, param, m, n, x, ldx, y, ldy, 1);
}

af_status AF_FN(af_act_backward)(af_act act, T param, size_t m, size_t n,
                                 const T *x, const T *y, const T *dy, T *dx, size_t ld)
{
    AF_FP_SCOPE();
    if ((unsigned)act >= AF_ACT_COUNT) return AF_EINVAL;
    if (m == 0 || n == 0) return AF_OK;
    if (!x || !y || !dy || !dx || ld < n) return AF_EINVAL;
    size_t total;
    if (af_mul_size(m, ld, &total)) return AF_ESHAPE;
    int nt;
    AF_FN(act_job) job = {act, param, m, n, AF_FN(act_split)(m, n, &nt), ld, ld, x, y, dy, dx,
                          NULL, AF_FN(af_kern)()->act_rowb, 0, 0};
    af_pool_run(AF_FN(act_chunk), &job, job.nch, nt);
    return AF_OK;
}

/* Public row helpers for other engine files (the GEMM epilogue, the network step). */
void AF_FN(af_act_row_forward)(af_act act, T param, size_t n, const T *x, T *y)
{
    AF_FN(af_kern)()->act_rowf(act, param, n, x, y);
}

void AF_FN(af_act_row_backward)(af_act act, T param, size_t n, const T *x, const T *y,
                                const T *dy, T *dx)
{
    AF_FN(af_kern)()->act_rowb(act, param, n, x, y, dy, dx);
}

#include "dtype_end.h"
