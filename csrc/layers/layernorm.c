/* layernorm.c: layer normalisation over the last axis, each row (sample, position) on its own.
 *
 *   forward   mean = sum_j x_j / n;  var = sum_j (x_j - mean)^2 / n;  rstd = 1 / sqrt(var + eps)
 *             xh = (x - mean) rstd;  y = gamma xh + beta
 *   backward  dgamma = sum_rows dy xh;  dbeta = sum_rows dy
 *             e = dy gamma;  dx = rstd (e - mean_j(e) - xh mean_j(e xh))
 *
 * Rows run in parallel (each on its own); the parameter gradients sum the rows in order inside
 * fixed column blocks, so every result is the same for any thread count. Parameters: gamma (n)
 * if scale, then beta (n) if center. aux keeps (mean, rstd) per row. Positionwise: decoding one
 * position is forward on it. */
#include "fpenv.h"
#include "util.h"
#include "rows.h"
#include "isa_ctx.h"

typedef struct {
    double epsilon;
    int center;   /* beta */
    int scale;    /* gamma */
} af_layernorm_cfg;

static const af_field layernorm_fields[] = {
    {"epsilon", AF_FIELD_REAL, offsetof(af_layernorm_cfg, epsilon), 1e-300, 1e300, NULL},
    {"center", AF_FIELD_BOOL, offsetof(af_layernorm_cfg, center), 0, 1, NULL},
    {"scale", AF_FIELD_BOOL, offsetof(af_layernorm_cfg, scale), 0, 1, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status layernorm_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_layernorm_cfg *c = (const af_layernorm_cfg *)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank < 1) return AF_ESHAPE;
    info->out = in[0];
    info->n_params = af_shape_last(&in[0]) * (size_t)(c->center + c->scale);
    return AF_OK;
}

static void layernorm_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                            size_t B, int training, af_node_sizes *sz)
{
    (void)cfg;
    (void)n_in;
    (void)out;
    (void)training;
    sz->aux = 2 * af_rows(&in[0], B);   /* (mean, rstd) per row */
}

/* Column block of the parameter gradients: fixed, so the partition never depends on threads. */
#define LN_COLS 64
/* Threads only above this many elements (the passes are memory-bound). */
#define LN_PAR_MIN (4 * AF_PAR_MIN)

#define AF_DTYPE_F32
#include "layernorm_impl.h"
#define AF_DTYPE_F64
#include "layernorm_impl.h"

const af_layer_ops af_op_layernorm = {
    "layernorm", layernorm_fields, sizeof(af_layernorm_cfg), 1, 1, AF_OP_POSITIONWISE,
    layernorm_infer, layernorm_sizes, AF_OPS_FN(layernorm_forward), AF_OPS_FN(layernorm_backward),
    {NULL, NULL}};
