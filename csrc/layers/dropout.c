/* dropout.c: inverted dropout. Training: y = x * keep / (1 - rate), keep drawn from
 * (seed, step, element index) by a counter-based generator (norm.h), so masks are reproducible,
 * independent of the thread count, and regenerated in backward instead of stored:
 *   dx = dy * keep / (1 - rate).
 * The element index is global within the batch: element j of sample i of a call whose first
 * sample sits at position row0 of the batch is (row0 + i) * width + j (width: values per sample),
 * so a batch split over processes draws the masks of the whole batch (row0 = 0: the call is the
 * whole batch).
 * Inference: the identity (the driver skips the node; in an inference-mode gradient dx = dy). */
#include "util.h"
#include "norm.h"

typedef struct {
    double rate;   /* drop probability in [0, 1) */
} af_dropout_cfg;

static const af_field dropout_fields[] = {
    {"rate", AF_FIELD_REAL, offsetof(af_dropout_cfg, rate), 0, 0.99999999999999989, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status dropout_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    if (!af_inputs_float(n_in, in)) return AF_ESHAPE;
    info->out = in[0];
    return AF_OK;
}

#define DROPOUT_FNS(T, SUF)                                                                        \
    static af_status dropout_forward_##SUF(const af_op_args *a)                                    \
    {                                                                                              \
        const af_dropout_cfg *c = (const af_dropout_cfg *)a->cfg;                                  \
        size_t width = af_shape_size(a->in_shape);                                                 \
        return af_dropout_apply_at_##SUF(a->batch * width, c->rate, a->seed, a->step,              \
                                         a->row0 * width, (const T *)a->x[0], (T *)a->y);          \
    }                                                                                              \
    static af_status dropout_backward_##SUF(const af_op_args *a)                                   \
    {                                                                                              \
        const af_dropout_cfg *c = (const af_dropout_cfg *)a->cfg;                                  \
        size_t width = af_shape_size(a->in_shape), count = a->batch * width;                       \
        if (!a->dx[0]) return AF_OK;                                                               \
        T *dst = a->dx_acc[0] ? (T *)a->dy : (T *)a->dx[0];                                        \
        if (a->training) {                                                                         \
            af_status s = af_dropout_apply_at_##SUF(count, c->rate, a->seed, a->step,              \
                                                    a->row0 * width, (const T *)a->dy, dst);       \
            if (s != AF_OK) return s;                                                              \
        }                                                                                          \
        af_copy_add_##SUF(count, a->training ? dst : (const T *)a->dy, (T *)a->dx[0],              \
                          a->dx_acc[0]);                                                           \
        return AF_OK;                                                                              \
    }
DROPOUT_FNS(float, f32)
DROPOUT_FNS(double, f64)

const af_layer_ops af_op_dropout = {
    "dropout", dropout_fields, sizeof(af_dropout_cfg), 1, 1, AF_OP_INFER_IDENTITY,
    dropout_infer, NULL, AF_OPS_FN(dropout_forward), AF_OPS_FN(dropout_backward)};
