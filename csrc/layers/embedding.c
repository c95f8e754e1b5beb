/* embedding.c: token ids to vectors, a row of a learned table per id.
 *
 *   forward   y[i, :] = W[id_i, :]                      ids (any shape, int32), W (V x D)
 *   backward  dW[v, :] = sum over i with id_i = v of dy[i, :]
 *
 * The gradient is formed by D-column blocks (each block runs over every id in order), so the sum
 * for each entry of W has a fixed order whatever the thread count. Ids outside [0, V) are an
 * error (AF_EINVAL; the Python side checks first, with a message). The input is int32: no
 * float-coded indices. */
#include "util.h"

typedef struct {
    int64_t input_dim;    /* V: the vocabulary size */
    int64_t output_dim;   /* D */
} af_embedding_cfg;

static const af_field embedding_fields[] = {
    {"input_dim", AF_FIELD_INT, offsetof(af_embedding_cfg, input_dim), 1, 1 << 30, NULL},
    {"output_dim", AF_FIELD_INT, offsetof(af_embedding_cfg, output_dim), 1, 1 << 24, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static af_status embedding_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_embedding_cfg *c = (const af_embedding_cfg *)cfg;
    (void)n_in;
    if (in[0].elem != AF_ELEM_INT32 || in[0].rank >= AF_MAX_RANK) return AF_ESHAPE;
    info->out = in[0];
    info->out.elem = AF_ELEM_FLOAT;
    info->out.dim[info->out.rank++] = (size_t)c->output_dim;
    if (af_mul_size((size_t)c->input_dim, (size_t)c->output_dim, &info->n_params)) return AF_ESHAPE;
    return AF_OK;
}

/* Column block of the gradient pass: fixed, so the partition never depends on the threads. */
#define EMB_COLS 64

#define EMBEDDING_FNS(T, SUF)                                                                      \
    static af_status embedding_forward_##SUF(const af_op_args *a)                                  \
    {                                                                                              \
        const af_embedding_cfg *c = (const af_embedding_cfg *)a->cfg;                              \
        size_t n = a->batch * af_shape_size(a->in_shape), d = (size_t)c->output_dim;               \
        const int32_t *ids = (const int32_t *)a->x[0];                                             \
        const T *W = (const T *)a->param;                                                          \
        for (size_t i = 0; i < n; i++)                                                             \
            if (ids[i] < 0 || ids[i] >= c->input_dim) return AF_EINVAL;                            \
        for (size_t i = 0; i < n; i++)                                                             \
            memcpy((T *)a->y + i * d, W + (size_t)ids[i] * d, d * sizeof(T));                      \
        return AF_OK;                                                                              \
    }                                                                                              \
    static af_status embedding_backward_##SUF(const af_op_args *a)                                 \
    {                                                                                              \
        const af_embedding_cfg *c = (const af_embedding_cfg *)a->cfg;                              \
        size_t n = a->batch * af_shape_size(a->in_shape), d = (size_t)c->output_dim;               \
        size_t v = (size_t)c->input_dim, nblk = (d + EMB_COLS - 1) / EMB_COLS;                     \
        const int32_t *ids = (const int32_t *)a->x[0];                                             \
        const T *dy = (const T *)a->dy;                                                            \
        T *G = (T *)a->grad;                                                                       \
        if (!a->grad_acc) memset(G, 0, v * d * sizeof(T));                                         \
        int nt = n * d >= AF_PAR_MIN && nblk > 1 ? af_get_num_threads() : 1;                      \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1)")                  \
        for (size_t b = 0; b < nblk; b++) {                                                        \
            size_t j0 = b * EMB_COLS, w = d - j0 < EMB_COLS ? d - j0 : EMB_COLS;                   \
            for (size_t i = 0; i < n; i++) {                                                       \
                T *g = G + (size_t)ids[i] * d + j0;                                                \
                const T *s = dy + i * d + j0;                                                      \
                for (size_t j = 0; j < w; j++) g[j] += s[j];                                       \
            }                                                                                      \
        }                                                                                          \
        return AF_OK;                                                                              \
    }
EMBEDDING_FNS(float, f32)
EMBEDDING_FNS(double, f64)

const af_layer_ops af_op_embedding = {
    "embedding", embedding_fields, sizeof(af_embedding_cfg), 1, 1, AF_OP_POSITIONWISE,
    embedding_infer, NULL, AF_OPS_FN(embedding_forward), AF_OPS_FN(embedding_backward)};
