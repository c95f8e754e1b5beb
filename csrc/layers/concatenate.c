/* concatenate.c: joins tensors along one axis (the others must match).
 * Seen as outer x (width_k along the axis and everything after it) blocks:
 *   y[o, off_k : off_k + w_k] = x_k[o, :]   for every outer index o;   dx_k = the same slice of dy.
 * Pure data movement. */
#include "util.h"

typedef struct {
    int64_t axis;   /* per-sample axis; negative counts from the end (-1: the last) */
} af_concatenate_cfg;

static const af_field concatenate_fields[] = {
    {"axis", AF_FIELD_INT, offsetof(af_concatenate_cfg, axis), -AF_MAX_RANK, AF_MAX_RANK - 1, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status concatenate_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_concatenate_cfg *c = (const af_concatenate_cfg *)cfg;
    int r = in[0].rank, ax = (int)(c->axis < 0 ? c->axis + r : c->axis);
    if (!af_inputs_float(n_in, in) || ax < 0 || ax >= r) return AF_ESHAPE;
    info->out = in[0];
    for (size_t k = 1; k < n_in; k++) {
        if (in[k].rank != r) return AF_ESHAPE;
        for (int d = 0; d < r; d++)
            if (d != ax && in[k].dim[d] != in[0].dim[d]) return AF_ESHAPE;
        info->out.dim[ax] += in[k].dim[ax];
    }
    return AF_OK;
}

/* Per-sample outer count and each input's contiguous block width (in values). */
static size_t concat_outer(const af_op_args *a, size_t *width)
{
    const af_concatenate_cfg *c = (const af_concatenate_cfg *)a->cfg;
    int r = a->in_shape[0].rank, ax = (int)(c->axis < 0 ? c->axis + r : c->axis);
    size_t outer = 1;
    for (int d = 0; d < ax; d++) outer *= a->in_shape[0].dim[d];
    for (size_t k = 0; k < a->n_in; k++) width[k] = af_shape_size(&a->in_shape[k]) / outer;
    return outer * a->batch;
}

#define CONCAT_FNS(T, SUF)                                                                         \
    static af_status concatenate_forward_##SUF(const af_op_args *a)                                \
    {                                                                                              \
        size_t w[AF_MAX_INPUTS], outer = concat_outer(a, w), wy = 0;                               \
        for (size_t k = 0; k < a->n_in; k++) wy += w[k];                                           \
        for (size_t o = 0; o < outer; o++) {                                                       \
            T *y = (T *)a->y + o * wy;                                                             \
            for (size_t k = 0; k < a->n_in; k++) {                                                 \
                memcpy(y, (const T *)a->x[k] + o * w[k], w[k] * sizeof(T));                        \
                y += w[k];                                                                         \
            }                                                                                      \
        }                                                                                          \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status concatenate_backward_##SUF(const af_op_args *a)                               \
    {                                                                                              \
        size_t w[AF_MAX_INPUTS], outer = concat_outer(a, w), wy = 0;                               \
        for (size_t k = 0; k < a->n_in; k++) wy += w[k];                                           \
        for (size_t o = 0; o < outer; o++) {                                                       \
            const T *dy = (const T *)a->dy + o * wy;                                               \
            for (size_t k = 0; k < a->n_in; k++) {                                                 \
                if (a->dx[k]) af_copy_add_##SUF(w[k], dy, (T *)a->dx[k] + o * w[k], a->dx_acc[k]); \
                dy += w[k];                                                                        \
            }                                                                                      \
        }                                                                                          \
        return AF_OK;                                                                              \
    }
CONCAT_FNS(float, f32)
CONCAT_FNS(double, f64)

const af_layer_ops af_op_concatenate = {
    "concatenate", concatenate_fields, sizeof(af_concatenate_cfg), 2, AF_MAX_INPUTS, 0,
    concatenate_infer, NULL, AF_OPS_FN(concatenate_forward), AF_OPS_FN(concatenate_backward)};
