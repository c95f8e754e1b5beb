/* input.c: a graph input. The driver points the node's output at the batch of data, so the kind
 * only declares the per-sample shape and element type. */
#include "util.h"

typedef struct {
    int64_t rank;                  /* count of dims (AF_FIELD_INTS layout) */
    int64_t dims[AF_FIELD_MAX_INTS];   /* per-sample shape */
    int dtype;                     /* af_elem: "float" (the network's) or "int32" (token ids) */
} af_input_cfg;

static const char *const input_dtypes[] = {"float", "int32", NULL};

static const af_field input_fields[] = {
    {"shape", AF_FIELD_INTS, offsetof(af_input_cfg, dims), 1, 1 << 30, NULL},
    {"dtype", AF_FIELD_ENUM, offsetof(af_input_cfg, dtype), 0, 0, input_dtypes},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status input_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_input_cfg *c = (const af_input_cfg *)cfg;
    (void)n_in;
    (void)in;
    if (c->rank < 1 || c->rank > AF_MAX_RANK) return AF_EINVAL;
    info->out.rank = (int)c->rank;
    for (int d = 0; d < c->rank; d++) info->out.dim[d] = (size_t)c->dims[d];
    info->out.elem = (af_elem)c->dtype;
    return AF_OK;
}

const af_layer_ops af_op_input = {
    "input", input_fields, sizeof(af_input_cfg), 0, 0, AF_OP_INPUT,
    input_infer, NULL, {NULL, NULL}, {NULL, NULL}};
