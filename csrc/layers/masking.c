/* masking.c: the Masking layer's data path: steps whose features all equal mask_value become 0,
 * the others pass unchanged (Keras); its mask comes from a sequence_mask node on the same input.
 *
 *   y[t, :] = m[t] x[t, :],  m[t] = 1 if any x[t, k] != mask_value else 0;   dx = m dy */
#include "util.h"

typedef struct {
    double mask_value;
} af_masking_cfg;

static const af_field masking_fields[] = {
    {"mask_value", AF_FIELD_REAL, offsetof(af_masking_cfg, mask_value), -1e300, 1e300, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status masking_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank < 2) return AF_ESHAPE;
    info->out = in[0];
    return AF_OK;
}

/* dst = keep(step of x) * src over every step; acc: add into dst. */
#define MASKING_FNS(T, SUF)                                                                        \
    static void masking_apply_##SUF(const af_op_args *a, const T *src, T *dst, int acc)            \
    {                                                                                              \
        const af_masking_cfg *c = (const af_masking_cfg *)a->cfg;                                  \
        size_t steps = a->batch * a->in_shape[0].dim[0];                                           \
        size_t per = af_shape_size(&a->in_shape[0]) / a->in_shape[0].dim[0];                       \
        const T *x = (const T *)a->x[0], mv = (T)c->mask_value;                                    \
        for (size_t i = 0; i < steps; i++) {                                                       \
            int keep = 0;                                                                          \
            for (size_t k = 0; k < per; k++) keep |= x[i * per + k] != mv;                         \
            T m = keep ? (T)1 : (T)0;                                                              \
            for (size_t k = 0; k < per; k++)                                                       \
                dst[i * per + k] = (acc ? dst[i * per + k] : (T)0) + m * src[i * per + k];         \
        }                                                                                          \
    }                                                                                              \
    static af_status masking_forward_##SUF(const af_op_args *a)                                    \
    {                                                                                              \
        masking_apply_##SUF(a, (const T *)a->x[0], (T *)a->y, 0);                                  \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status masking_backward_##SUF(const af_op_args *a)                                   \
    {                                                                                              \
        if (a->dx[0]) masking_apply_##SUF(a, (const T *)a->dy, (T *)a->dx[0], a->dx_acc[0]);       \
        return AF_OK;                                                                              \
    }
MASKING_FNS(float, f32)
MASKING_FNS(double, f64)

const af_layer_ops af_op_masking = {
    "masking", masking_fields, sizeof(af_masking_cfg), 1, 1, 0,
    masking_infer, NULL, AF_OPS_FN(masking_forward), AF_OPS_FN(masking_backward)};
