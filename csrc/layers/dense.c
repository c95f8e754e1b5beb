/* dense.c: fully connected layer over the last axis.
 *
 *   forward   Z = X W + b,  Y = f(Z)         X (rows x K), W (K x N), b (N), Y (rows x N)
 *   backward  dZ = dY * f'(Z);  db = sum_rows dZ;  dX = dZ W^T;  dW = X^T dZ
 *
 * rows = batch x every leading axis of the sample (a Dense on a (t, f) sequence applies to each
 * step, as in Keras). One GEMM with bias + f fused in its epilogue; f' is read from Y (relu,
 * leaky_relu and elu need only the sign of Z, which Y keeps for alpha >= 0; sigmoid, tanh and
 * softmax are functions of Y), except for gelu and swish, whose Z is kept for backward.
 * Parameters: W (K x N, row-major) then b (N). The penalty covers W. */
#include "util.h"
#include "dense.h"

static const af_field dense_fields[] = {
    {"units", AF_FIELD_INT, offsetof(af_dense_cfg, units), 1, 1 << 30, NULL},
    {"activation", AF_FIELD_ENUM, offsetof(af_dense_cfg, act), 0, 0, af_act_names},
    {"alpha", AF_FIELD_REAL, offsetof(af_dense_cfg, alpha), 0, 1e300, NULL},
    {"use_bias", AF_FIELD_BOOL, offsetof(af_dense_cfg, use_bias), 0, 1, NULL},
    {"l1", AF_FIELD_REAL, offsetof(af_dense_cfg, l1), 0, 1e300, NULL},
    {"l2", AF_FIELD_REAL, offsetof(af_dense_cfg, l2), 0, 1e300, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status dense_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_dense_cfg *c = (const af_dense_cfg *)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank < 1) return AF_ESHAPE;
    size_t k = af_shape_last(&in[0]), n = (size_t)c->units;
    info->out = in[0];
    info->out.dim[in[0].rank - 1] = n;
    if (af_mul_size(k, n, &info->pen_len) || info->pen_len > SIZE_MAX - n) return AF_ESHAPE;
    info->n_params = info->pen_len + (c->use_bias ? n : 0);
    info->l1 = c->l1;
    info->l2 = c->l2;
    if (c->act == AF_ACT_SOFTMAX || c->act == AF_ACT_SIGMOID) info->final_act = (af_act)c->act;
    return AF_OK;
}

static void dense_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                        size_t B, int training, af_node_sizes *sz)
{
    const af_dense_cfg *c = (const af_dense_cfg *)cfg;
    (void)n_in;
    (void)in;
    (void)training;
    /* Z for the activations whose derivative needs it */
    sz->aux = af_act_needs_input((af_act)c->act) ? B * af_shape_size(out) : 0;
}

#define AF_DTYPE_F32
#include "dense_impl.h"
#define AF_DTYPE_F64
#include "dense_impl.h"

const af_layer_ops af_op_dense = {
    "dense", dense_fields, sizeof(af_dense_cfg), 1, 1, AF_OP_GRAD_ALPHA | AF_OP_POSITIONWISE,
    dense_infer, dense_sizes, AF_OPS_FN(dense_forward), AF_OPS_FN(dense_backward)};
