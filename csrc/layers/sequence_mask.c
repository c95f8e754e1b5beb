/* sequence_mask.c: the (steps,) mask of a sequence, 1.0 for a step that counts and 0.0 for
 * padding, as a float tensor that mask-aware kinds (rnn) take as an extra input.
 *
 *   mode ids:     m[t] = 1 if any id of step t (int32, shape (T, ...)) is nonzero
 *                 (Embedding(mask_zero=True): id 0 is padding)
 *   mode values:  m[t] = 1 if any feature of step t (float, shape (T, ...)) differs from
 *                 mask_value (the Masking layer)
 *
 * The mask is piecewise constant in a float input: its gradient is 0. */
#include "util.h"

typedef struct {
    int mode;             /* 0 ids, 1 values */
    double mask_value;
} af_seqmask_cfg;

static const char *const seqmask_modes[] = {"ids", "values", NULL};

static const af_field seqmask_fields[] = {
    {"mode", AF_FIELD_ENUM, offsetof(af_seqmask_cfg, mode), 0, 0, seqmask_modes},
    {"mask_value", AF_FIELD_REAL, offsetof(af_seqmask_cfg, mask_value), -1e300, 1e300, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status seqmask_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_seqmask_cfg *c = (const af_seqmask_cfg *)cfg;
    (void)n_in;
    if (in[0].rank < 1 || in[0].elem != (c->mode == 0 ? AF_ELEM_INT32 : AF_ELEM_FLOAT)) return AF_ESHAPE;
    info->out.rank = 1;
    info->out.dim[0] = in[0].dim[0];
    info->out.elem = AF_ELEM_FLOAT;
    return AF_OK;
}

#define SEQMASK_FNS(T, SUF)                                                                        \
    static af_status seqmask_forward_##SUF(const af_op_args *a)                                    \
    {                                                                                              \
        const af_seqmask_cfg *c = (const af_seqmask_cfg *)a->cfg;                                  \
        size_t steps = a->batch * a->in_shape[0].dim[0];                                           \
        size_t per = af_shape_size(&a->in_shape[0]) / a->in_shape[0].dim[0];                       \
        T *m = (T *)a->y;                                                                          \
        for (size_t i = 0; i < steps; i++) {                                                       \
            int keep = 0;                                                                          \
            if (c->mode == 0) {                                                                    \
                const int32_t *id = (const int32_t *)a->x[0] + i * per;                            \
                for (size_t k = 0; k < per; k++) keep |= id[k] != 0;                               \
            } else {                                                                               \
                const T *v = (const T *)a->x[0] + i * per, mv = (T)c->mask_value;                  \
                for (size_t k = 0; k < per; k++) keep |= v[k] != mv;                               \
            }                                                                                      \
            m[i] = keep ? (T)1 : (T)0;                                                             \
        }                                                                                          \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status seqmask_backward_##SUF(const af_op_args *a)                                   \
    {                                                                                              \
        if (a->dx[0] && !a->dx_acc[0])                                                             \
            memset(a->dx[0], 0, a->batch * af_shape_size(&a->in_shape[0]) * sizeof(T));            \
        return AF_OK;                                                                              \
    }
SEQMASK_FNS(float, f32)
SEQMASK_FNS(double, f64)

const af_layer_ops af_op_sequence_mask = {
    "sequence_mask", seqmask_fields, sizeof(af_seqmask_cfg), 1, 1, 0,
    seqmask_infer, NULL, AF_OPS_FN(seqmask_forward), AF_OPS_FN(seqmask_backward)};
