/* reshape.c: a sample viewed with another shape of the same size (one dimension may be -1:
 * inferred). An alias of its input, as flatten.c. */
#include "util.h"

typedef struct {
    int64_t rank;                  /* count of target dims (AF_FIELD_INTS layout) */
    int64_t dims[AF_FIELD_MAX_INTS];   /* target per-sample shape; at most one -1 */
} af_reshape_cfg;

static const af_field reshape_fields[] = {
    {"target_shape", AF_FIELD_INTS, offsetof(af_reshape_cfg, dims), -1, 1 << 30, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status reshape_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_reshape_cfg *c = (const af_reshape_cfg *)cfg;
    size_t total = af_shape_size(&in[0]), known = 1;
    int free_dim = -1;
    (void)n_in;
    if (c->rank < 1 || c->rank > AF_MAX_RANK) return AF_EINVAL;
    info->out.rank = (int)c->rank;
    info->out.elem = in[0].elem;
    for (int d = 0; d < c->rank; d++) {
        if (c->dims[d] == -1) {
            if (free_dim >= 0) return AF_EINVAL;
            free_dim = d;
        } else if (c->dims[d] < 1) {
            return AF_EINVAL;
        } else {
            info->out.dim[d] = (size_t)c->dims[d];
            if (af_mul_size(known, info->out.dim[d], &known)) return AF_ESHAPE;
        }
    }
    if (free_dim >= 0) {
        if (total % known) return AF_ESHAPE;
        info->out.dim[free_dim] = total / known;
    }
    return af_shape_size(&info->out) == total ? AF_OK : AF_ESHAPE;
}

static af_status reshape_nothing(const af_op_args *a)
{
    (void)a;
    return AF_OK;
}

const af_layer_ops af_op_reshape = {
    "reshape", reshape_fields, sizeof(af_reshape_cfg), 1, 1, AF_OP_ALIAS,
    reshape_infer, NULL, {reshape_nothing, reshape_nothing}, {reshape_nothing, reshape_nothing}};
