/* pool_impl.h: max and average pooling for one dtype (included twice by pool.c). */
#include "dtype_begin.h"

/* Threads for a per-sample loop touching `elems` values. */
static int AF_FN(pool_threads)(size_t B, size_t elems) { return af_slot_threads(B, (double)elems, AF_PAR_MIN_MOVE); }

/* Max over one window for channels [c0, c0 + n), n <= POOL_CB: the first cell starts the scan,
 * later ones replace it when greater, or when NaN over a number (see pool.c):
 *   take = (m == m) && !(v <= m),   m = take ? v : m,   at = take ? cell : at,
 * as lane masks on 16-byte vectors (a branch per value mispredicts on real data and cost more
 * than the comparisons). Inlined with n a constant (max_window below), so the maxima stay in
 * registers and no loop has a run-time trip count. */
#define POOL_CB 16
#define PV AF_FN(pool_vec)
#define PI AF_FN(pool_ivec)
#define PL (16 / (int)sizeof(T))   /* lanes */
typedef T PV __attribute__((vector_size(16)));
#if defined(AF_DTYPE_F32)
typedef int32_t PI __attribute__((vector_size(16)));
#else
typedef int64_t PI __attribute__((vector_size(16)));
#endif

/* lanes (constant after inlining) values, zeros after them: lane by lane, not through a
 * zeroed buffer in memory (a narrow store read back wide stalls store forwarding) */
static inline __attribute__((always_inline)) PV AF_FN(pool_loadn)(const T *p, size_t lanes)
{
    PV v = {0};
    if (lanes == (size_t)PL) {
        memcpy(&v, p, sizeof v);
        return v;
    }
    for (size_t l = 0; l < lanes; l++) v[l] = p[l];
    return v;
}

static inline __attribute__((always_inline)) void
AF_FN(max_window_n)(const size_t n, const af_win_geom *g, const T *x, size_t h0, size_t h1,
                    size_t w0, size_t w1, size_t c0, T *y, int32_t *idx)
{
    const size_t nv = (n + PL - 1) / PL;
    PV m[POOL_CB / PL];
    PI at[POOL_CB / PL];
    size_t C = g->C;
    const T *x0 = x + (h0 * g->W + w0) * C + c0;
    for (size_t v = 0; v < nv; v++) {
        size_t lanes = n - v * PL < (size_t)PL ? n - v * PL : (size_t)PL;
        m[v] = AF_FN(pool_loadn)(x0 + v * PL, lanes);
        at[v] = (PI){0} + (int32_t)(h0 * g->W + w0);
    }
    for (size_t h = h0; h < h1; h++)
        for (size_t w = (h == h0 ? w0 + 1 : w0); w < w1; w++) {
            const T *xc = x + (h * g->W + w) * C + c0;
            PI cell = (PI){0} + (int32_t)(h * g->W + w);
            for (size_t v = 0; v < nv; v++) {
                size_t lanes = n - v * PL < (size_t)PL ? n - v * PL : (size_t)PL;
                PV xv = AF_FN(pool_loadn)(xc + v * PL, lanes);
                PI take = (m[v] == m[v]) & ~(xv <= m[v]);
                m[v] = (PV)(((PI)xv & take) | ((PI)m[v] & ~take));
                at[v] = (cell & take) | (at[v] & ~take);
            }
        }
    for (size_t v = 0; v < nv; v++) {
        size_t lanes = n - v * PL < (size_t)PL ? n - v * PL : (size_t)PL;
        memcpy(y + v * PL, &m[v], lanes * sizeof(T));
        for (size_t l = 0; l < lanes; l++) idx[v * PL + l] = (int32_t)at[v][l];
    }
}

/* Every window of one sample for channels [c0, c0 + n): the switch on n happens once per
 * sample and channel block, not once per window. y, idx: the sample's output and winning cells. */
static inline __attribute__((always_inline)) void
AF_FN(max_sample_n)(const size_t n, const af_win_geom *g, const T *x, size_t c0, T *y, int32_t *idx)
{
    for (size_t oh = 0; oh < g->OH; oh++)
        for (size_t ow = 0; ow < g->OW; ow++) {
            size_t h0, h1, w0, w1, o = (oh * g->OW + ow) * g->C + c0;
            pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
            AF_FN(max_window_n)(n, g, x, h0, h1, w0, w1, c0, y + o, idx + o);
        }
}

static void AF_FN(max_sample)(size_t n, const af_win_geom *g, const T *x, size_t c0, T *y,
                              int32_t *idx)
{
#define POOL_CASE(k) case k: AF_FN(max_sample_n)(k, g, x, c0, y, idx); break;
    switch (n) {
        POOL_CASE(1) POOL_CASE(2) POOL_CASE(3) POOL_CASE(4) POOL_CASE(5) POOL_CASE(6)
        POOL_CASE(7) POOL_CASE(8) POOL_CASE(9) POOL_CASE(10) POOL_CASE(11) POOL_CASE(12)
        POOL_CASE(13) POOL_CASE(14) POOL_CASE(15) POOL_CASE(16)
    }
#undef POOL_CASE
}

/* The passes below run per sample (each writes only its own sample's output or gradient), two
 * samples to a chunk on annfast's pool (pool.h: the calling thread runs every chunk no other
 * thread has claimed, so it never waits for one that has not woken up). */
typedef struct AF_FN(pooling_job_s) {
    const af_win_geom *g;
    const T *X, *D;           /* input (forward), dL/dy (backward) */
    T *Y;                     /* output (forward) or dx (backward) */
    int32_t *I;               /* max: each output's winning cell (forward writes, backward reads) */
    int acc;                  /* backward: add into dx */
    size_t B;
    void (*sample)(const struct AF_FN(pooling_job_s) *j, size_t b);
} AF_FN(pooling_job);

static void AF_FN(pooling_chunk)(void *ctx, size_t c, size_t slot)
{
    const AF_FN(pooling_job) *j = (const AF_FN(pooling_job) *)ctx;
    size_t b1 = 2 * c + 2 < j->B ? 2 * c + 2 : j->B;
    (void)slot;
    for (size_t b = 2 * c; b < b1; b++) j->sample(j, b);
}

static void AF_FN(pooling_run)(AF_FN(pooling_job) *j)
{
    size_t insz = j->g->H * j->g->W * j->g->C, outsz = j->g->OH * j->g->OW * j->g->C;
    int nt = AF_FN(pool_threads)(j->B, j->B * (insz + outsz));
    if (j->B) af_pool_run(AF_FN(pooling_chunk), j, (j->B + 1) / 2, nt);
}

static void AF_FN(max_fwd_sample)(const AF_FN(pooling_job) *j, size_t b)
{
    const af_win_geom *g = j->g;
    size_t C = g->C, insz = g->H * g->W * C, outsz = g->OH * g->OW * C;
    for (size_t c0 = 0; c0 < C; c0 += POOL_CB)
        AF_FN(max_sample)(C - c0 < POOL_CB ? C - c0 : POOL_CB, g, j->X + b * insz, c0,
                          j->Y + b * outsz, j->I + b * outsz);
}

static af_status AF_FN(max_pool_forward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK) return s;
    AF_FN(pooling_job) j = {&g, (const T *)a->x[0], NULL, (T *)a->y, (int32_t *)a->aux, 0,
                            a->batch, AF_FN(max_fwd_sample)};
    AF_FN(pooling_run)(&j);
    return AF_OK;
}

/* dx[win, c] += dy: each sample's cells in order, into that sample's gradient only */
static void AF_FN(max_bwd_sample)(const AF_FN(pooling_job) *j, size_t b)
{
    const af_win_geom *g = j->g;
    size_t C = g->C, insz = g->H * g->W * C, outsz = g->OH * g->OW * C;
    T *dx = j->Y + b * insz;
    const T *d = j->D + b * outsz;
    const int32_t *idx = j->I + b * outsz;
    if (!j->acc) memset(dx, 0, insz * sizeof(T));
    for (size_t q = 0; q < g->OH * g->OW; q++)
        for (size_t c = 0; c < C; c++) dx[(size_t)idx[q * C + c] * C + c] += d[q * C + c];
}

static af_status AF_FN(max_pool_backward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK || !a->dx[0]) return s;
    AF_FN(pooling_job) j = {&g, NULL, (const T *)a->dy, (T *)a->dx[0], (int32_t *)a->aux,
                            a->dx_acc[0], a->batch, AF_FN(max_bwd_sample)};
    AF_FN(pooling_run)(&j);
    return AF_OK;
}

static void AF_FN(avg_fwd_sample)(const AF_FN(pooling_job) *j, size_t b)
{
    const af_win_geom *g = j->g;
    size_t C = g->C, insz = g->H * g->W * C;
    const T *x = j->X + b * insz;
    for (size_t oh = 0; oh < g->OH; oh++)
        for (size_t ow = 0; ow < g->OW; ow++) {
            size_t h0, h1, w0, w1;
            pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
            T *y = j->Y + ((b * g->OH + oh) * g->OW + ow) * C;
            T count = (T)((h1 - h0) * (w1 - w0));
            for (size_t c = 0; c < C; c++) y[c] = 0;
            for (size_t h = h0; h < h1; h++)
                for (size_t w = w0; w < w1; w++) {
                    const T *xc = x + (h * g->W + w) * C;
                    for (size_t c = 0; c < C; c++) y[c] += xc[c];
                }
            for (size_t c = 0; c < C; c++) y[c] /= count;
        }
}

static af_status AF_FN(avg_pool_forward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK) return s;
    AF_FN(pooling_job) j = {&g, (const T *)a->x[0], NULL, (T *)a->y, NULL, 0, a->batch,
                            AF_FN(avg_fwd_sample)};
    AF_FN(pooling_run)(&j);
    return AF_OK;
}

static void AF_FN(avg_bwd_sample)(const AF_FN(pooling_job) *j, size_t b)
{
    const af_win_geom *g = j->g;
    size_t C = g->C, insz = g->H * g->W * C;
    T *dx = j->Y + b * insz;
    if (!j->acc) memset(dx, 0, insz * sizeof(T));
    for (size_t oh = 0; oh < g->OH; oh++)
        for (size_t ow = 0; ow < g->OW; ow++) {
            size_t h0, h1, w0, w1;
            pool_window(g, oh, ow, &h0, &h1, &w0, &w1);
            const T *d = j->D + ((b * g->OH + oh) * g->OW + ow) * C;
            T count = (T)((h1 - h0) * (w1 - w0));
            for (size_t h = h0; h < h1; h++)
                for (size_t w = w0; w < w1; w++) {
                    T *dc = dx + (h * g->W + w) * C;
                    for (size_t c = 0; c < C; c++) dc[c] += d[c] / count;
                }
        }
}

static af_status AF_FN(avg_pool_backward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK || !a->dx[0]) return s;
    AF_FN(pooling_job) j = {&g, NULL, (const T *)a->dy, (T *)a->dx[0], NULL, a->dx_acc[0],
                            a->batch, AF_FN(avg_bwd_sample)};
    AF_FN(pooling_run)(&j);
    return AF_OK;
}

#undef POOL_CB
#undef PV
#undef PI
#undef PL
#include "dtype_end.h"
