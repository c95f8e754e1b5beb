/* dense_impl.h: dense forward and backward for one dtype (included twice by dense.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define GEMM_EX af_sgemm_ex
#define GEMM af_sgemm
#else
#define GEMM_EX af_dgemm_ex
#define GEMM af_dgemm
#endif

static af_status AF_FN(dense_forward)(const af_op_args *a)
{
    const af_dense_cfg *c = (const af_dense_cfg *)a->cfg;
    size_t M = af_rows(a->in_shape, a->batch), K = af_shape_last(a->in_shape), N = (size_t)c->units;
    const T *X = (const T *)a->x[0], *W = (const T *)a->param;   /* X: M x K, W: K x N */
    T *Y = (T *)a->y;                                              /* Y: M x N */
    af_act act = (af_act)c->act;
    int keep_z = af_act_needs_input(act);
    af_epilogue ep;
    ep.bias = c->use_bias ? (const void *)(W + K * N) : NULL;
    /* Y = f(X W + b): bias and elementwise f in the GEMM epilogue; softmax (row-wise) after it,
     * unless the loss takes the logits; gelu/swish: Z kept, then f */
    ep.act = (act == AF_ACT_SOFTMAX || a->fused_loss || keep_z) ? AF_ACT_LINEAR : act;
    ep.act_param = c->alpha;
    T *Z = keep_z ? (T *)a->aux : Y;
    af_status s = GEMM_EX(0, 0, M, N, K, (T)1, X, K, W, N, (T)0, Z, N, &ep);
    if (s != AF_OK) return s;
    if (keep_z && !a->fused_loss) return AF_FN(af_act_forward)(act, (T)c->alpha, M, N, Z, N, Y, N);
    if (keep_z) memcpy(Y, Z, M * N * sizeof(T));
    if (act == AF_ACT_SOFTMAX && !a->fused_loss) return AF_FN(af_act_forward)(act, 0, M, N, Y, N, Y, N);
    return AF_OK;
}

static af_status AF_FN(dense_backward)(const af_op_args *a)
{
    const af_dense_cfg *c = (const af_dense_cfg *)a->cfg;
    size_t M = af_rows(a->in_shape, a->batch), K = af_shape_last(a->in_shape), N = (size_t)c->units;
    const T *X = (const T *)a->x[0], *W = (const T *)a->param;
    T *D = (T *)a->dy, *G = (T *)a->grad;   /* D: M x N (becomes dZ); G: dW (K x N) then db (N) */
    T alpha = (T)a->grad_alpha, beta = a->grad_acc ? (T)1 : (T)0;
    af_act act = a->fused_loss ? AF_ACT_LINEAR : (af_act)c->act;
    /* dZ = dY * f'(Z);  db = alpha sum_rows dZ (+ db) */
    AF_FN(af_act_back_colsum)(act, (T)c->alpha, M, N, (const T *)a->aux, (const T *)a->y, D,
                              c->use_bias ? G + K * N : NULL, alpha, a->grad_acc);
    af_status s;
    if (a->dx[0]) {
        /* dX = dZ W^T (+ dX), with W before any update */
        s = GEMM(0, 1, M, K, N, (T)1, D, N, W, N, a->dx_acc[0] ? (T)1 : (T)0, (T *)a->dx[0], K);
        if (s != AF_OK) return s;
    }
    /* dW = alpha X^T dZ (+ dW): the gradient, or with alpha = -lr and G = W a plain SGD step */
    return GEMM(1, 0, K, N, M, alpha, X, K, D, N, beta, G, N);
}

#undef GEMM_EX
#undef GEMM
#include "dtype_end.h"
