/* layernorm_impl.h: layer-norm forward and backward for one dtype (included twice by layernorm.c). */
#include "dtype_begin.h"

static af_status AF_FN(layernorm_forward)(const af_op_args *a)
{
    const af_layernorm_cfg *c = (const af_layernorm_cfg *)a->cfg;
    size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);
    const T *X = (const T *)a->x[0], *P = (const T *)a->param;   /* X: m x n */
    const T *g = c->scale ? P : NULL, *b = c->center ? P + (c->scale ? n : 0) : NULL;
    T *Y = (T *)a->y, *st = (T *)a->aux, eps = (T)c->epsilon;    /* st: m x 2 */
    const AF_FN(af_rows) *k = AF_FN(af_kern)()->rows;
    int nt = m * n >= LN_PAR_MIN ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h), once per thread, not per row */
        #pragma omp for schedule(static)
        for (size_t i = 0; i < m; i++) k->ln_fwd(n, X + i * n, g, b, eps, Y + i * n, st + 2 * i);
    }
    return AF_OK;
}

/* dgamma_j = sum_i dy_ij xh_ij, dbeta_j = sum_i dy_ij over rows i in order, per column block. */
static void AF_FN(layernorm_param_grads)(size_t m, size_t n, const T *X, const T *D, const T *st,
                                         T *dg, T *db, int acc, int nt)
{
    size_t nblk = (n + LN_COLS - 1) / LN_COLS;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t jb = 0; jb < nblk; jb++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        size_t j0 = jb * LN_COLS, w = n - j0 < LN_COLS ? n - j0 : LN_COLS, j;
        T sg[LN_COLS], sb[LN_COLS];
        for (j = 0; j < w; j++) sg[j] = sb[j] = 0;
        for (size_t i = 0; i < m; i++) {
            const T *x = X + i * n + j0, *d = D + i * n + j0;
            T mean = st[2 * i], rstd = st[2 * i + 1];
            for (j = 0; j < w; j++) {
                sg[j] += d[j] * ((x[j] - mean) * rstd);
                sb[j] += d[j];
            }
        }
        for (j = 0; j < w; j++) {
            if (dg) dg[j0 + j] = (acc ? dg[j0 + j] : (T)0) + sg[j];
            if (db) db[j0 + j] = (acc ? db[j0 + j] : (T)0) + sb[j];
        }
    }
}

static af_status AF_FN(layernorm_backward)(const af_op_args *a)
{
    const af_layernorm_cfg *c = (const af_layernorm_cfg *)a->cfg;
    size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);
    const T *X = (const T *)a->x[0], *P = (const T *)a->param, *st = (const T *)a->aux;
    const T *g = c->scale ? P : NULL;
    T *D = (T *)a->dy, *G = (T *)a->grad;
    int nt = m * n >= LN_PAR_MIN ? af_get_num_threads() : 1;
    /* parameter gradients first: dx may be written over dy */
    if (c->scale || c->center)
        AF_FN(layernorm_param_grads)(m, n, X, D, st, c->scale ? G : NULL,
                                     c->center ? G + (c->scale ? n : 0) : NULL, a->grad_acc, nt);
    if (!a->dx[0]) return AF_OK;
    const AF_FN(af_rows) *k = AF_FN(af_kern)()->rows;
    T *dX = (T *)a->dx[0];
    int acc = a->dx_acc[0];
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h), once per thread, not per row */
        #pragma omp for schedule(static)
        for (size_t i = 0; i < m; i++) k->ln_bwd(n, X + i * n, D + i * n, g, st + 2 * i, dX + i * n, acc);
    }
    return AF_OK;
}

#include "dtype_end.h"
