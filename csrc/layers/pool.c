/* pool.c: max and average pooling over windows of channels-last samples (Keras' MaxPooling2D,
 * AveragePooling2D, MaxPooling1D, AveragePooling1D); window geometry and padding in conv_geom.h
 * (a 1-D sample (steps, C) is (1, steps, C)).
 *
 *   max:  y[cell, c] = max over the window's input cells inside the input of x[., c]
 *         backward: dx[win(cell, c), c] += dy[cell, c], win = the winning input cell kept by forward
 *   avg:  y[cell, c] = (sum over the window's cells inside the input) / (their count)
 *         backward: every such cell gets dy[cell, c] / count
 * With padding="same" the padded cells take no part: they never win a max and are not counted
 * in an average (Keras; PyTorch's count_include_pad=False).
 *
 * Ties and NaN (max): the window is scanned row by row, left to right; a value replaces the
 * current maximum when it is greater, so among equal maxima the FIRST one in scan order wins and
 * gets the gradient (as PyTorch). A NaN always wins over a number and is kept (the first NaN
 * stays): a window holding a NaN outputs NaN and routes its gradient to that NaN's cell.
 *
 * The winning cell (row-major index in the sample, int32) is kept in aux for backward. Samples
 * are independent: forward and backward run sample-parallel, each sample in a fixed order. */
#include "util.h"
#include "conv_geom.h"
#include "slots.h"
#include "pool.h"

typedef struct {
    int64_t n_pool;                  /* AF_FIELD_INTS layout */
    int64_t pool[AF_FIELD_MAX_INTS];
    int64_t n_strides;
    int64_t strides[AF_FIELD_MAX_INTS];
    int padding;
} af_pool_cfg;

static const af_field pool_fields[] = {
    {"pool_size", AF_FIELD_INTS, offsetof(af_pool_cfg, pool), 1, 1 << 20, NULL},
    {"strides", AF_FIELD_INTS, offsetof(af_pool_cfg, strides), 1, 1 << 20, NULL},
    {"padding", AF_FIELD_ENUM, offsetof(af_pool_cfg, padding), 0, 0, af_padding_names},
    {NULL, 0, 0, 0, 0, NULL}};

static const int64_t pool_ones[AF_FIELD_MAX_INTS] = {1, 1, 1, 1};

static af_status pool_geom(const af_pool_cfg *c, const af_shape *in, af_win_geom *g)
{
    if (c->n_strides != c->n_pool) return AF_EINVAL;
    af_status s = af_win_geom_init(g, in, c->pool, c->strides, pool_ones, c->n_pool, c->padding);
    if (s != AF_OK) return s;
    /* cell indices are int32 */
    if (g->H * g->W > (size_t)INT32_MAX) return AF_ESHAPE;
    return AF_OK;
}

static af_status pool_infer_rank(const void *cfg, size_t n_in, const af_shape *in,
                                 af_node_info *info, int rank)
{
    af_win_geom g;
    if (!af_inputs_float(n_in, in) || in[0].rank != rank) return AF_ESHAPE;
    af_status s = pool_geom((const af_pool_cfg *)cfg, &in[0], &g);
    if (s != AF_OK) return s;
    info->out = af_win_out_shape(&g, &in[0], g.C);
    return AF_OK;
}

static af_status pool2d_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    return pool_infer_rank(cfg, n_in, in, info, 3);
}

static af_status pool1d_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    return pool_infer_rank(cfg, n_in, in, info, 2);
}

/* Max pooling keeps the winning cell of every output value (int32; as many elements of the
 * float type hold at least as many int32). */
static void max_pool_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                           size_t B, int training, af_node_sizes *sz)
{
    (void)cfg;
    (void)n_in;
    (void)in;
    (void)training;
    sz->aux = B * af_shape_size(out);
}

/* The input rows [h0, h1) and columns [w0, w1) of output cell (oh, ow)'s window. */
static inline void pool_window(const af_win_geom *g, size_t oh, size_t ow, size_t *h0, size_t *h1,
                               size_t *w0, size_t *w1)
{
    size_t top = oh * g->SH, left = ow * g->SW;   /* in padded coordinates */
    *h0 = top < g->PT ? 0 : top - g->PT;
    *w0 = left < g->PL ? 0 : left - g->PL;
    *h1 = top + g->KH - g->PT < g->H ? top + g->KH - g->PT : g->H;
    *w1 = left + g->KW - g->PL < g->W ? left + g->KW - g->PL : g->W;
}

#define AF_DTYPE_F32
#include "pool_impl.h"
#define AF_DTYPE_F64
#include "pool_impl.h"

const af_layer_ops af_op_max_pool2d = {
    "max_pool2d", pool_fields, sizeof(af_pool_cfg), 1, 1, 0,
    pool2d_infer, max_pool_sizes, AF_OPS_FN(max_pool_forward), AF_OPS_FN(max_pool_backward)};

const af_layer_ops af_op_max_pool1d = {
    "max_pool1d", pool_fields, sizeof(af_pool_cfg), 1, 1, 0,
    pool1d_infer, max_pool_sizes, AF_OPS_FN(max_pool_forward), AF_OPS_FN(max_pool_backward)};

const af_layer_ops af_op_avg_pool2d = {
    "avg_pool2d", pool_fields, sizeof(af_pool_cfg), 1, 1, 0,
    pool2d_infer, NULL, AF_OPS_FN(avg_pool_forward), AF_OPS_FN(avg_pool_backward)};

const af_layer_ops af_op_avg_pool1d = {
    "avg_pool1d", pool_fields, sizeof(af_pool_cfg), 1, 1, 0,
    pool1d_infer, NULL, AF_OPS_FN(avg_pool_forward), AF_OPS_FN(avg_pool_backward)};
