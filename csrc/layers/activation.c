/* activation.c: an activation as a layer of its own, elementwise over the sample (softmax over
 * the last axis):  y = f(x);  dx = dy * f'(x)  (f' from y where cheaper, see annfast.h). */
#include "util.h"

typedef struct {
    int act;        /* af_act */
    double alpha;   /* leaky_relu slope / elu scale (>= 0) */
} af_activation_cfg;

static const af_field activation_fields[] = {
    {"activation", AF_FIELD_ENUM, offsetof(af_activation_cfg, act), 0, 0, af_act_names},
    {"alpha", AF_FIELD_REAL, offsetof(af_activation_cfg, alpha), 0, 1e300, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status activation_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_activation_cfg *c = (const af_activation_cfg *)cfg;
    if (!af_inputs_float(n_in, in)) return AF_ESHAPE;
    info->out = in[0];
    if (c->act == AF_ACT_SOFTMAX || c->act == AF_ACT_SIGMOID) info->final_act = (af_act)c->act;
    return AF_OK;
}

/* m rows of n: the last axis (softmax's), everything else in the rows. With a fused loss the
 * layer passes its input through (the loss applies softmax/sigmoid itself). */
#define ACTIVATION_FNS(T, SUF)                                                                     \
    static af_status activation_forward_##SUF(const af_op_args *a)                                 \
    {                                                                                              \
        const af_activation_cfg *c = (const af_activation_cfg *)a->cfg;                            \
        size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);                 \
        af_act act = a->fused_loss ? AF_ACT_LINEAR : (af_act)c->act;                               \
        return af_act_forward_##SUF(act, (T)c->alpha, m, n, (const T *)a->x[0], n, (T *)a->y, n);  \
    }                                                                                              \
    static af_status activation_backward_##SUF(const af_op_args *a)                                \
    {                                                                                              \
        const af_activation_cfg *c = (const af_activation_cfg *)a->cfg;                            \
        size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);                 \
        af_act act = a->fused_loss ? AF_ACT_LINEAR : (af_act)c->act;                               \
        if (!a->dx[0]) return AF_OK;                                                               \
        T *dst = a->dx_acc[0] ? (T *)a->dy : (T *)a->dx[0];                                        \
        af_status s = af_act_backward_##SUF(act, (T)c->alpha, m, n, (const T *)a->x[0],            \
                                            (const T *)a->y, (const T *)a->dy, dst, n);            \
        if (s == AF_OK && a->dx_acc[0]) af_copy_add_##SUF(m * n, dst, (T *)a->dx[0], 1);           \
        return s;                                                                                  \
    }
ACTIVATION_FNS(float, f32)
ACTIVATION_FNS(double, f64)

const af_layer_ops af_op_activation = {
    "activation", activation_fields, sizeof(af_activation_cfg), 1, 1, AF_OP_POSITIONWISE,
    activation_infer, NULL, AF_OPS_FN(activation_forward), AF_OPS_FN(activation_backward)};
