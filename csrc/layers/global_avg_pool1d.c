/* global_avg_pool1d.c: the mean over the steps of a sequence.
 *
 *   forward   y[f] = (1/T) sum_t x[t, f]          x (T x F) per sample, y (F)
 *   backward  dx[t, f] = dy[f] / T
 *
 * Each sample's sums run over t in order (independent of the thread count). */
#include "util.h"

typedef struct {
    int unused;
} af_gap1d_cfg;

static const af_field gap1d_fields[] = {{NULL, 0, 0, 0, 0, NULL}};

static af_status gap1d_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank != 2) return AF_ESHAPE;
    info->out.rank = 1;
    info->out.dim[0] = in[0].dim[1];
    return AF_OK;
}

#define GAP1D_FNS(T, SUF)                                                                          \
    static af_status gap1d_forward_##SUF(const af_op_args *a)                                      \
    {                                                                                              \
        size_t steps = a->in_shape[0].dim[0], f = a->in_shape[0].dim[1];                           \
        T inv = (T)1 / (T)steps;                                                                   \
        int nt = a->batch * steps * f >= AF_PAR_MIN ? af_get_num_threads() : 1;                    \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1)")                  \
        for (size_t b = 0; b < a->batch; b++) {                                                    \
            const T *x = (const T *)a->x[0] + b * steps * f;                                       \
            T *y = (T *)a->y + b * f;                                                              \
            for (size_t j = 0; j < f; j++) y[j] = x[j];                                            \
            for (size_t t = 1; t < steps; t++)                                                     \
                for (size_t j = 0; j < f; j++) y[j] += x[t * f + j];                               \
            for (size_t j = 0; j < f; j++) y[j] *= inv;                                            \
        }                                                                                          \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status gap1d_backward_##SUF(const af_op_args *a)                                     \
    {                                                                                              \
        size_t steps = a->in_shape[0].dim[0], f = a->in_shape[0].dim[1];                           \
        T inv = (T)1 / (T)steps;                                                                   \
        if (!a->dx[0]) return AF_OK;                                                               \
        for (size_t b = 0; b < a->batch; b++) {                                                    \
            const T *dy = (const T *)a->dy + b * f;                                                \
            T *dx = (T *)a->dx[0] + b * steps * f;                                                 \
            for (size_t t = 0; t < steps; t++)                                                     \
                for (size_t j = 0; j < f; j++)                                                     \
                    dx[t * f + j] = (a->dx_acc[0] ? dx[t * f + j] : (T)0) + dy[j] * inv;           \
        }                                                                                          \
        return AF_OK;                                                                              \
    }
GAP1D_FNS(float, f32)
GAP1D_FNS(double, f64)

const af_layer_ops af_op_global_avg_pool1d = {
    "global_avg_pool1d", gap1d_fields, sizeof(af_gap1d_cfg), 1, 1, 0,
    gap1d_infer, NULL, AF_OPS_FN(gap1d_forward), AF_OPS_FN(gap1d_backward)};
