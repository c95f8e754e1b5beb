/* positional.c: position information added to an embedded sequence x (T x D per sample).
 *
 * pos_embedding (learned, as Keras-Hub's PositionEmbedding added to its input):
 *   forward   y[t] = x[t] + P[t]              P: (L x D) parameters, T <= L
 *   backward  dx = dy;  dP[t] = sum_b dy[b, t]  (t < T; rows t >= T get 0)
 * sinusoidal (Vaswani et al.; no parameters):
 *   y[t] = x[t] + pe[t],  pe[t, 2i] = sin(t w_i),  pe[t, 2i + 1] = cos(t w_i),
 *   w_i = max_wavelength^(-2i / D);  dx = dy
 * The table pe is computed in double once per workspace (aux keeps it, flagged by its last
 * element) and rounded to the network's type.
 * Decoding (step): position a->pos of x gets P[pos] or pe[pos].
 * dP sums the batch in order for each row of P; rows run in parallel: thread-count independent. */
#include "util.h"

typedef struct {
    int64_t sequence_length;   /* L */
} af_posemb_cfg;

typedef struct {
    double max_wavelength;
} af_sinpe_cfg;

static const af_field posemb_fields[] = {
    {"sequence_length", AF_FIELD_INT, offsetof(af_posemb_cfg, sequence_length), 1, 1 << 24, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static const af_field sinpe_fields[] = {
    {"max_wavelength", AF_FIELD_REAL, offsetof(af_sinpe_cfg, max_wavelength), 1, 1e300, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status posemb_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_posemb_cfg *c = (const af_posemb_cfg *)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank != 2) return AF_ESHAPE;
    if (in[0].dim[0] > (size_t)c->sequence_length) return AF_ESHAPE;   /* longer than learned */
    info->out = in[0];
    return af_mul_size((size_t)c->sequence_length, in[0].dim[1], &info->n_params);
}

static af_status sinpe_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    (void)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank != 2) return AF_ESHAPE;
    info->out = in[0];
    return AF_OK;
}

static void sinpe_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                        size_t B, int training, af_node_sizes *sz)
{
    (void)cfg;
    (void)n_in;
    (void)out;
    (void)B;
    (void)training;
    sz->aux = af_shape_size(&in[0]) + 1;   /* the table and its "computed" flag */
}

/* pe[t, j] in double */
static double sinpe_value(double max_wl, size_t D, size_t t, size_t j)
{
    double w = pow(max_wl, -(double)(j - j % 2) / (double)D);
    return j % 2 ? cos((double)t * w) : sin((double)t * w);
}

#define POS_FNS(T, SUF)                                                                            \
    /* y[b, t] = x[b, t] + add[t] for the steps x D values of each sample */                        \
    static void pos_add_##SUF(size_t B, size_t steps, size_t D, const T *x, const T *add, T *y)   \
    {                                                                                              \
        size_t per = steps * D;                                                                    \
        int nt = B * per >= 4 * AF_PAR_MIN ? af_get_num_threads() : 1;                             \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1)")                  \
        for (size_t b = 0; b < B; b++)                                                             \
            for (size_t j = 0; j < per; j++) y[b * per + j] = x[b * per + j] + add[j];            \
    }                                                                                              \
    static af_status posemb_forward_##SUF(const af_op_args *a)                                     \
    {                                                                                              \
        pos_add_##SUF(a->batch, a->in_shape[0].dim[0], a->in_shape[0].dim[1], (const T *)a->x[0], \
                      (const T *)a->param, (T *)a->y);                                             \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status posemb_step_##SUF(const af_op_args *a)                                        \
    {                                                                                              \
        const af_posemb_cfg *c = (const af_posemb_cfg *)a->cfg;                                    \
        size_t D = a->in_shape[0].dim[1];                                                          \
        if (!(a->step_in & 1) || a->pos >= (size_t)c->sequence_length) return AF_EINVAL;          \
        pos_add_##SUF(a->batch, 1, D, (const T *)a->x[0], (const T *)a->param + a->pos * D,        \
                      (T *)a->y);                                                                  \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status posemb_backward_##SUF(const af_op_args *a)                                    \
    {                                                                                              \
        const af_posemb_cfg *c = (const af_posemb_cfg *)a->cfg;                                    \
        size_t B = a->batch, steps = a->in_shape[0].dim[0], D = a->in_shape[0].dim[1];             \
        size_t L = (size_t)c->sequence_length;                                                     \
        const T *dy = (const T *)a->dy;                                                            \
        T *G = (T *)a->grad;                                                                       \
        int nt = B * steps * D >= 4 * AF_PAR_MIN ? af_get_num_threads() : 1;                       \
        (void)nt;                                                                                  \
        /* dP[t] = sum_b dy[b, t], each row summing the batch in order */                          \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1)")                  \
        for (size_t t = 0; t < L; t++) {                                                           \
            T *g = G + t * D;                                                                      \
            if (!a->grad_acc)                                                                      \
                for (size_t j = 0; j < D; j++) g[j] = 0;                                           \
            if (t >= steps) continue;                                                              \
            for (size_t b = 0; b < B; b++) {                                                       \
                const T *d = dy + (b * steps + t) * D;                                             \
                for (size_t j = 0; j < D; j++) g[j] += d[j];                                       \
            }                                                                                      \
        }                                                                                          \
        if (a->dx[0]) af_copy_add_##SUF(B * steps * D, dy, (T *)a->dx[0], a->dx_acc[0]);           \
        return AF_OK;                                                                              \
    }                                                                                              \
    static const T *sinpe_table_##SUF(const af_op_args *a)                                         \
    {                                                                                              \
        const af_sinpe_cfg *c = (const af_sinpe_cfg *)a->cfg;                                      \
        size_t steps = a->in_shape[0].dim[0], D = a->in_shape[0].dim[1];                           \
        T *pe = (T *)a->aux;                                                                       \
        if (pe[steps * D] != (T)1) {                                                               \
            for (size_t t = 0; t < steps; t++)                                                     \
                for (size_t j = 0; j < D; j++) pe[t * D + j] = (T)sinpe_value(c->max_wavelength, D, t, j); \
            pe[steps * D] = 1;                                                                     \
        }                                                                                          \
        return pe;                                                                                 \
    }                                                                                              \
    static af_status sinpe_forward_##SUF(const af_op_args *a)                                      \
    {                                                                                              \
        pos_add_##SUF(a->batch, a->in_shape[0].dim[0], a->in_shape[0].dim[1], (const T *)a->x[0], \
                      sinpe_table_##SUF(a), (T *)a->y);                                            \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status sinpe_step_##SUF(const af_op_args *a)                                         \
    {                                                                                              \
        size_t D = a->in_shape[0].dim[1];                                                          \
        if (!(a->step_in & 1) || a->pos >= a->in_shape[0].dim[0]) return AF_EINVAL;                \
        pos_add_##SUF(a->batch, 1, D, (const T *)a->x[0], sinpe_table_##SUF(a) + a->pos * D,       \
                      (T *)a->y);                                                                  \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status sinpe_backward_##SUF(const af_op_args *a)                                     \
    {                                                                                              \
        if (a->dx[0])                                                                              \
            af_copy_add_##SUF(a->batch * af_shape_size(a->in_shape), (const T *)a->dy,             \
                              (T *)a->dx[0], a->dx_acc[0]);                                        \
        return AF_OK;                                                                              \
    }
POS_FNS(float, f32)
POS_FNS(double, f64)

const af_layer_ops af_op_pos_embedding = {
    "pos_embedding", posemb_fields, sizeof(af_posemb_cfg), 1, 1, 0,
    posemb_infer, NULL, AF_OPS_FN(posemb_forward), AF_OPS_FN(posemb_backward),
    AF_OPS_FN(posemb_step)};

const af_layer_ops af_op_sinusoidal = {
    "sinusoidal", sinpe_fields, sizeof(af_sinpe_cfg), 1, 1, 0,
    sinpe_infer, sinpe_sizes, AF_OPS_FN(sinpe_forward), AF_OPS_FN(sinpe_backward),
    AF_OPS_FN(sinpe_step)};
