/* add.c: elementwise sum of two or more tensors of one shape (residual connections).
 *   y = x_0 + x_1 + ... (in input order);   dx_k = dy for every k. */
#include "util.h"

typedef struct {
    int unused;
} af_add_cfg;

static const af_field add_fields[] = {{NULL, 0, 0, 0, 0, NULL}};

static af_status add_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    if (!af_inputs_float(n_in, in)) return AF_ESHAPE;
    for (size_t k = 1; k < n_in; k++)
        if (!af_same_shape(&in[0], &in[k])) return AF_ESHAPE;
    info->out = in[0];
    return AF_OK;
}

#define ADD_FNS(T, SUF)                                                                            \
    static af_status add_forward_##SUF(const af_op_args *a)                                        \
    {                                                                                              \
        size_t n = a->batch * af_shape_size(a->out_shape);                                         \
        T *y = (T *)a->y;                                                                          \
        const T *x0 = (const T *)a->x[0], *x1 = (const T *)a->x[1];                              \
        /* y = x0 + x1 in one pass (not a copy, then an add: one read and write of y less) */     \
        af_sum2_##SUF(n, x0, x1, y);                                                               \
        for (size_t k = 2; k < a->n_in; k++) af_copy_add_##SUF(n, (const T *)a->x[k], y, 1);      \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status add_backward_##SUF(const af_op_args *a)                                       \
    {                                                                                              \
        size_t n = a->batch * af_shape_size(a->out_shape);                                         \
        for (size_t k = 0; k < a->n_in; k++)                                                       \
            if (a->dx[k]) af_copy_add_##SUF(n, (const T *)a->dy, (T *)a->dx[k], a->dx_acc[k]);     \
        return AF_OK;                                                                              \
    }
ADD_FNS(float, f32)
ADD_FNS(double, f64)

const af_layer_ops af_op_add = {
    "add", add_fields, sizeof(af_add_cfg), 2, AF_MAX_INPUTS, AF_OP_POSITIONWISE,
    add_infer, NULL, AF_OPS_FN(add_forward), AF_OPS_FN(add_backward)};
