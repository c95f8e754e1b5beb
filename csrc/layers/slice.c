/* slice.c: a contiguous run of each sample's values, viewed with a shape: how a layer that packs
 * several results in one output (an RNN's sequence and final states) hands them out as separate
 * tensors.
 *
 *   y[b] = reshape(x[b].flat[start : start + size(shape)], shape)
 *   dx[b].flat[start : start + size] (+)= dy[b]   (the first writer also zeroes the rest) */
#include "util.h"

typedef struct {
    int64_t start;                     /* first value, per sample */
    int64_t rank;                      /* count of dims (AF_FIELD_INTS layout) */
    int64_t dims[AF_FIELD_MAX_INTS];   /* the output's per-sample shape */
} af_slice_cfg;

static const af_field slice_fields[] = {
    {"start", AF_FIELD_INT, offsetof(af_slice_cfg, start), 0, 1e15, NULL},
    {"shape", AF_FIELD_INTS, offsetof(af_slice_cfg, dims), 1, 1 << 30, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status slice_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_slice_cfg *c = (const af_slice_cfg *)cfg;
    size_t len = 1;
    if (!af_inputs_float(n_in, in) || c->rank < 1 || c->rank > AF_MAX_RANK) return AF_ESHAPE;
    info->out.rank = (int)c->rank;
    info->out.elem = AF_ELEM_FLOAT;
    for (int d = 0; d < c->rank; d++) {
        info->out.dim[d] = (size_t)c->dims[d];
        if (af_mul_size(len, info->out.dim[d], &len)) return AF_ESHAPE;
    }
    size_t total = af_shape_size(&in[0]);
    return (size_t)c->start <= total && len <= total - (size_t)c->start ? AF_OK : AF_ESHAPE;
}

#define SLICE_FNS(T, SUF)                                                                          \
    static af_status slice_forward_##SUF(const af_op_args *a)                                      \
    {                                                                                              \
        const af_slice_cfg *c = (const af_slice_cfg *)a->cfg;                                      \
        size_t total = af_shape_size(&a->in_shape[0]), len = af_shape_size(a->out_shape);          \
        for (size_t b = 0; b < a->batch; b++)                                                      \
            memcpy((T *)a->y + b * len, (const T *)a->x[0] + b * total + c->start, len * sizeof(T)); \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status slice_backward_##SUF(const af_op_args *a)                                     \
    {                                                                                              \
        const af_slice_cfg *c = (const af_slice_cfg *)a->cfg;                                      \
        size_t total = af_shape_size(&a->in_shape[0]), len = af_shape_size(a->out_shape);          \
        T *dx = (T *)a->dx[0];                                                                     \
        const T *dy = (const T *)a->dy;                                                            \
        if (!dx) return AF_OK;                                                                     \
        if (!a->dx_acc[0]) memset(dx, 0, a->batch * total * sizeof(T));                            \
        for (size_t b = 0; b < a->batch; b++) {                                                    \
            T *d = dx + b * total + c->start;                                                      \
            for (size_t i = 0; i < len; i++) d[i] += dy[b * len + i];                              \
        }                                                                                          \
        return AF_OK;                                                                              \
    }
SLICE_FNS(float, f32)
SLICE_FNS(double, f64)

const af_layer_ops af_op_slice = {
    "slice", slice_fields, sizeof(af_slice_cfg), 1, 1, 0,
    slice_infer, NULL, AF_OPS_FN(slice_forward), AF_OPS_FN(slice_backward)};
