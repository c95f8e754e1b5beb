/* flatten.c: a sample of any shape as one vector (batch, prod(shape)). The data is already laid
 * out that way, so the node is an alias of its input: no work forward or backward. */
#include "util.h"

typedef struct {
    int unused;
} af_flatten_cfg;

static const af_field flatten_fields[] = {{NULL, 0, 0, 0, 0, NULL}};

static af_status flatten_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    (void)n_in;
    info->out.rank = 1;
    info->out.dim[0] = af_shape_size(&in[0]);
    info->out.elem = in[0].elem;
    return AF_OK;
}

static af_status flatten_nothing(const af_op_args *a)
{
    (void)a;
    return AF_OK;
}

const af_layer_ops af_op_flatten = {
    "flatten", flatten_fields, sizeof(af_flatten_cfg), 1, 1, AF_OP_ALIAS,
    flatten_infer, NULL, {flatten_nothing, flatten_nothing}, {flatten_nothing, flatten_nothing}};
