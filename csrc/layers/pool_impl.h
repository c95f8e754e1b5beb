/* pool_impl.h: max and average pooling for one dtype (included twice by pool.c). */
#include "dtype_begin.h"

/* Threads for a per-sample loop touching `elems` values. */
static int AF_FN(pool_threads)(size_t B, size_t elems) { return af_slot_threads(B, (double)elems, AF_PAR_MIN); }

static af_status AF_FN(max_pool_forward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK) return s;
    size_t B = a->batch, C = g.C, insz = g.H * g.W * C, outsz = g.OH * g.OW * C;
    const T *X = (const T *)a->x[0];
    T *Y = (T *)a->y;
    int32_t *I = (int32_t *)a->aux;
    int nt = AF_FN(pool_threads)(B, B * (insz + outsz));
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < B; b++) {
        const T *x = X + b * insz;
        for (size_t oh = 0; oh < g.OH; oh++)
            for (size_t ow = 0; ow < g.OW; ow++) {
                size_t h0, h1, w0, w1, o = ((b * g.OH + oh) * g.OW + ow) * C;
                pool_window(&g, oh, ow, &h0, &h1, &w0, &w1);
                T *y = Y + o;
                int32_t *idx = I + o;
                /* the first cell starts the scan; later ones replace it when greater, or NaN
                 * over a number (see pool.c) */
                const T *x0 = x + (h0 * g.W + w0) * C;
                for (size_t c = 0; c < C; c++) {
                    y[c] = x0[c];
                    idx[c] = (int32_t)(h0 * g.W + w0);
                }
                for (size_t h = h0; h < h1; h++)
                    for (size_t w = (h == h0 ? w0 + 1 : w0); w < w1; w++) {
                        const T *xc = x + (h * g.W + w) * C;
                        int32_t cell = (int32_t)(h * g.W + w);
                        for (size_t c = 0; c < C; c++) {
                            T v = xc[c], m = y[c];
                            int take = v > m || (v != v && m == m);
                            y[c] = take ? v : m;
                            idx[c] = take ? cell : idx[c];
                        }
                    }
            }
    }
    return AF_OK;
}

static af_status AF_FN(max_pool_backward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK || !a->dx[0]) return s;
    size_t B = a->batch, C = g.C, insz = g.H * g.W * C, outsz = g.OH * g.OW * C;
    const T *D = (const T *)a->dy;
    const int32_t *I = (const int32_t *)a->aux;
    T *DX = (T *)a->dx[0];
    int acc = a->dx_acc[0];
    int nt = AF_FN(pool_threads)(B, B * (insz + outsz));
    (void)nt;
    /* dx[win, c] += dy: each sample's cells in order, into that sample's gradient only */
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < B; b++) {
        T *dx = DX + b * insz;
        const T *d = D + b * outsz;
        const int32_t *idx = I + b * outsz;
        if (!acc) memset(dx, 0, insz * sizeof(T));
        for (size_t q = 0; q < g.OH * g.OW; q++)
            for (size_t c = 0; c < C; c++) dx[(size_t)idx[q * C + c] * C + c] += d[q * C + c];
    }
    return AF_OK;
}

static af_status AF_FN(avg_pool_forward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK) return s;
    size_t B = a->batch, C = g.C, insz = g.H * g.W * C, outsz = g.OH * g.OW * C;
    const T *X = (const T *)a->x[0];
    T *Y = (T *)a->y;
    int nt = AF_FN(pool_threads)(B, B * (insz + outsz));
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < B; b++) {
        const T *x = X + b * insz;
        for (size_t oh = 0; oh < g.OH; oh++)
            for (size_t ow = 0; ow < g.OW; ow++) {
                size_t h0, h1, w0, w1;
                pool_window(&g, oh, ow, &h0, &h1, &w0, &w1);
                T *y = Y + ((b * g.OH + oh) * g.OW + ow) * C;
                T count = (T)((h1 - h0) * (w1 - w0));
                for (size_t c = 0; c < C; c++) y[c] = 0;
                for (size_t h = h0; h < h1; h++)
                    for (size_t w = w0; w < w1; w++) {
                        const T *xc = x + (h * g.W + w) * C;
                        for (size_t c = 0; c < C; c++) y[c] += xc[c];
                    }
                for (size_t c = 0; c < C; c++) y[c] /= count;
            }
    }
    return AF_OK;
}

static af_status AF_FN(avg_pool_backward)(const af_op_args *a)
{
    af_win_geom g;
    af_status s = pool_geom((const af_pool_cfg *)a->cfg, a->in_shape, &g);
    if (s != AF_OK || !a->dx[0]) return s;
    size_t B = a->batch, C = g.C, insz = g.H * g.W * C, outsz = g.OH * g.OW * C;
    const T *D = (const T *)a->dy;
    T *DX = (T *)a->dx[0];
    int acc = a->dx_acc[0];
    int nt = AF_FN(pool_threads)(B, B * (insz + outsz));
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < B; b++) {
        T *dx = DX + b * insz;
        if (!acc) memset(dx, 0, insz * sizeof(T));
        for (size_t oh = 0; oh < g.OH; oh++)
            for (size_t ow = 0; ow < g.OW; ow++) {
                size_t h0, h1, w0, w1;
                pool_window(&g, oh, ow, &h0, &h1, &w0, &w1);
                const T *d = D + ((b * g.OH + oh) * g.OW + ow) * C;
                T count = (T)((h1 - h0) * (w1 - w0));
                for (size_t h = h0; h < h1; h++)
                    for (size_t w = w0; w < w1; w++) {
                        T *dc = dx + (h * g.W + w) * C;
                        for (size_t c = 0; c < C; c++) dc[c] += d[c] / count;
                    }
            }
    }
    return AF_OK;
}

#include "dtype_end.h"
