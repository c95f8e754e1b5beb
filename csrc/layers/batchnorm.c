/* batchnorm.c: batch normalisation over the last axis (features, or channels of an image).
 *
 * Training, per feature j over the rows (batch x leading axes):
 *   mean_j, var_j (biased);  xhat = (x - mean) / sqrt(var + eps);  y = gamma xhat + beta
 *   running = momentum running + (1 - momentum) batch        (Keras convention)
 *   backward: dbeta = sum dy;  dgamma = sum dy xhat;
 *             dx = gamma invstd / m (m dy - dbeta - xhat dgamma)
 * Inference uses the running statistics, which are then constants:
 *   y = gamma (x - rmean) r + beta,  r = 1 / sqrt(rvar + eps);  dx = dy gamma r
 * Parameters: gamma (C) then beta (C). Statistics: running mean (C) then running variance (C).
 * Kept for backward: the batch mean and inverse std (C each). The kernels are in batchnorm.c of
 * the kernels (norm.h). A piece of a batch split over processes (split.h) normalises with the
 * statistics of the whole batch: batchnorm_split_impl.h. */
#include "util.h"
#include "norm.h"

typedef struct {
    double momentum;   /* weight of the old running value, in [0, 1] */
    double eps;        /* > 0 */
} af_batchnorm_cfg;

static const af_field batchnorm_fields[] = {
    {"momentum", AF_FIELD_REAL, offsetof(af_batchnorm_cfg, momentum), 0, 1, NULL},
    {"epsilon", AF_FIELD_REAL, offsetof(af_batchnorm_cfg, eps), 1e-300, 1e300, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status batchnorm_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank < 1) return AF_ESHAPE;
    size_t c = af_shape_last(&in[0]);
    info->out = in[0];
    info->n_params = 2 * c;
    info->n_stats = 2 * c;
    return AF_OK;
}

static void batchnorm_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                            size_t B, int training, af_node_sizes *sz)
{
    (void)cfg;
    (void)n_in;
    (void)out;
    (void)B;
    (void)training;
    sz->aux = 2 * af_shape_last(&in[0]);       /* batch mean, inverse std */
    sz->scratch = 2 * af_shape_last(&in[0]);   /* gradients when they are added to shared ones */
    sz->sums = 1 + 2 * af_shape_last(&in[0]);  /* split batches: count, two sums per feature */
}

#define AF_DTYPE_F32
#include "batchnorm_split_impl.h"
#define AF_DTYPE_F64
#include "batchnorm_split_impl.h"
#define AF_DTYPE_F32
#include "batchnorm_impl.h"
#define AF_DTYPE_F64
#include "batchnorm_impl.h"

const af_layer_ops af_op_batchnorm = {
    "batchnorm", batchnorm_fields, sizeof(af_batchnorm_cfg), 1, 1, 0,
    batchnorm_infer, batchnorm_sizes, AF_OPS_FN(batchnorm_forward), AF_OPS_FN(batchnorm_backward)};
