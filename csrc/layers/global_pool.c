/* global_pool.c: the mean or the maximum of each channel over all the cells of a sample (Keras'
 * GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D): (steps, C) or (H, W, C) -> (C).
 *
 *   avg:  y[c] = (1/P) sum_p x[p, c]           dx[p, c] = dy[c] / P   (P cells, times 1/P)
 *   max:  y[c] = max_p x[p, c]                 dx[p*, c] = dy[c] at the winning cell p*
 * Max: the cells are scanned in order and a value replaces the current maximum when greater, so
 * the first of equal maxima wins; a NaN wins over numbers and the first NaN stays (pool.c). The
 * winning cell (int32) is kept in aux. Each sample's sums run over the cells in order; samples
 * run in parallel, so the results do not depend on the thread count. */
#include "util.h"
#include "slots.h"

typedef struct {
    int unused;
} af_gpool_cfg;

static const af_field gpool_fields[] = {{NULL, 0, 0, 0, 0, NULL}};

static af_status gpool_infer_rank(size_t n_in, const af_shape *in, af_node_info *info, int rank)
{
    if (!af_inputs_float(n_in, in) || in[0].rank != rank) return AF_ESHAPE;
    if (af_shape_size(&in[0]) / af_shape_last(&in[0]) > (size_t)INT32_MAX) return AF_ESHAPE;
    info->out.rank = 1;
    info->out.dim[0] = af_shape_last(&in[0]);
    return AF_OK;
}

static af_status gpool1d_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    return gpool_infer_rank(n_in, in, info, 2);
}

static af_status gpool2d_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    return gpool_infer_rank(n_in, in, info, 3);
}

static void gmax_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                       size_t B, int training, af_node_sizes *sz)
{
    (void)cfg;
    (void)n_in;
    (void)in;
    (void)training;
    sz->aux = B * af_shape_size(out);   /* the winning cells, int32 */
}

#define GPOOL_FNS(T, SUF)                                                                          \
    static af_status gavg_forward_##SUF(const af_op_args *a)                                       \
    {                                                                                              \
        size_t C = af_shape_last(a->in_shape), P = af_shape_size(a->in_shape) / C, B = a->batch;   \
        T inv = (T)1 / (T)P;                                                                       \
        int nt = af_slot_threads(B, (double)B * P * C, AF_PAR_MIN_MOVE);                                \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(dynamic, 4) num_threads(nt) if (nt > 1)")              \
        for (size_t b = 0; b < B; b++) {                                                           \
            AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */                                      \
            const T *x = (const T *)a->x[0] + b * P * C;                                           \
            T *y = (T *)a->y + b * C;                                                              \
            for (size_t c = 0; c < C; c++) y[c] = x[c];                                            \
            for (size_t p = 1; p < P; p++)                                                         \
                for (size_t c = 0; c < C; c++) y[c] += x[p * C + c];                               \
            for (size_t c = 0; c < C; c++) y[c] *= inv;                                            \
        }                                                                                          \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status gavg_backward_##SUF(const af_op_args *a)                                      \
    {                                                                                              \
        size_t C = af_shape_last(a->in_shape), P = af_shape_size(a->in_shape) / C, B = a->batch;   \
        T inv = (T)1 / (T)P;                                                                       \
        if (!a->dx[0]) return AF_OK;                                                               \
        int acc = a->dx_acc[0], nt = af_slot_threads(B, (double)B * P * C, AF_PAR_MIN_MOVE);            \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(dynamic, 4) num_threads(nt) if (nt > 1)")              \
        for (size_t b = 0; b < B; b++) {                                                           \
            AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */                                      \
            const T *dy = (const T *)a->dy + b * C;                                                \
            T *dx = (T *)a->dx[0] + b * P * C;                                                     \
            for (size_t p = 0; p < P; p++) {                                                       \
                T *d = dx + p * C;                                                                 \
                if (acc)                                                                           \
                    for (size_t c = 0; c < C; c++) d[c] += dy[c] * inv;                            \
                else                                                                               \
                    for (size_t c = 0; c < C; c++) d[c] = dy[c] * inv;                             \
            }                                                                                      \
        }                                                                                          \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status gmax_forward_##SUF(const af_op_args *a)                                       \
    {                                                                                              \
        size_t C = af_shape_last(a->in_shape), P = af_shape_size(a->in_shape) / C, B = a->batch;   \
        int nt = af_slot_threads(B, (double)B * P * C, AF_PAR_MIN_MOVE);                                \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(dynamic, 4) num_threads(nt) if (nt > 1)")              \
        for (size_t b = 0; b < B; b++) {                                                           \
            AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */                                      \
            const T *x = (const T *)a->x[0] + b * P * C;                                           \
            T *y = (T *)a->y + b * C;                                                              \
            int32_t *idx = (int32_t *)a->aux + b * C;                                              \
            for (size_t c = 0; c < C; c++) {                                                       \
                y[c] = x[c];                                                                       \
                idx[c] = 0;                                                                        \
            }                                                                                      \
            for (size_t p = 1; p < P; p++)                                                         \
                for (size_t c = 0; c < C; c++) {                                                   \
                    T v = x[p * C + c], m = y[c];                                                  \
                    int take = v > m || (v != v && m == m);                                        \
                    y[c] = take ? v : m;                                                           \
                    idx[c] = take ? (int32_t)p : idx[c];                                           \
                }                                                                                  \
        }                                                                                          \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status gmax_backward_##SUF(const af_op_args *a)                                      \
    {                                                                                              \
        size_t C = af_shape_last(a->in_shape), P = af_shape_size(a->in_shape) / C, B = a->batch;   \
        if (!a->dx[0]) return AF_OK;                                                               \
        int acc = a->dx_acc[0], nt = af_slot_threads(B, (double)B * P * C, AF_PAR_MIN_MOVE);            \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(dynamic, 4) num_threads(nt) if (nt > 1)")              \
        for (size_t b = 0; b < B; b++) {                                                           \
            AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */                                      \
            const T *dy = (const T *)a->dy + b * C;                                                \
            const int32_t *idx = (const int32_t *)a->aux + b * C;                                  \
            T *dx = (T *)a->dx[0] + b * P * C;                                                     \
            if (!acc) memset(dx, 0, P * C * sizeof(T));                                            \
            for (size_t c = 0; c < C; c++) dx[(size_t)idx[c] * C + c] += dy[c];                    \
        }                                                                                          \
        return AF_OK;                                                                              \
    }
GPOOL_FNS(float, f32)
GPOOL_FNS(double, f64)

const af_layer_ops af_op_global_avg_pool1d = {
    "global_avg_pool1d", gpool_fields, sizeof(af_gpool_cfg), 1, 1, 0,
    gpool1d_infer, NULL, AF_OPS_FN(gavg_forward), AF_OPS_FN(gavg_backward)};

const af_layer_ops af_op_global_avg_pool2d = {
    "global_avg_pool2d", gpool_fields, sizeof(af_gpool_cfg), 1, 1, 0,
    gpool2d_infer, NULL, AF_OPS_FN(gavg_forward), AF_OPS_FN(gavg_backward)};

const af_layer_ops af_op_global_max_pool1d = {
    "global_max_pool1d", gpool_fields, sizeof(af_gpool_cfg), 1, 1, 0,
    gpool1d_infer, gmax_sizes, AF_OPS_FN(gmax_forward), AF_OPS_FN(gmax_backward)};

const af_layer_ops af_op_global_max_pool2d = {
    "global_max_pool2d", gpool_fields, sizeof(af_gpool_cfg), 1, 1, 0,
    gpool2d_infer, gmax_sizes, AF_OPS_FN(gmax_forward), AF_OPS_FN(gmax_backward)};
