/* net_impl.h: forward and backward passes of a network for one dtype (included by train.c).
 *
 * Notation for layer l: input X (B x n_in), output A (B x n_out).
 *   Dense:     Z = X W + b,  A = f(Z)           (one GEMM, bias + f fused in its epilogue)
 *   backward:  dZ = dA * f'(Z)  and  db = sum_rows dZ   (one fused pass, fixed column blocks)
 *              dW = X^T dZ,  dX = dZ W^T        (two GEMMs with transposes)
 * f'(Z) is read from A (relu/leaky/elu/selu need only the sign of Z, which A keeps for alpha >= 0;
 * sigmoid/tanh/softmax are functions of A), so Z is never stored.
 */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define GEMM_EX af_sgemm_ex
#define GEMM af_sgemm
#define BN_TRAIN af_bn_forward_train_f32
#define BN_INFER af_bn_forward_infer_f32
#define BN_BACK af_bn_backward_f32
#define DROPOUT af_dropout_apply_f32
#else
#define GEMM_EX af_dgemm_ex
#define GEMM af_dgemm
#define BN_TRAIN af_bn_forward_train_f64
#define BN_INFER af_bn_forward_infer_f64
#define BN_BACK af_bn_backward_f64
#define DROPOUT af_dropout_apply_f64
#endif

/* Everything one pass needs: the network, its parameter buffers and the workspace layout. */
typedef struct {
    const af_net *net;
    T *ws;
    af_ws_plan plan;
    size_t mb;  /* batch size the workspace was planned for */
    T *P, *G, *S;
} AF_FN(pass);

static T *AF_FN(layer_out)(const AF_FN(pass) *c, size_t l)
{
    size_t o, a;
    af_ws_layer(c->net, &c->plan, c->mb, l, &o, &a);
    return c->ws + o;
}

static T *AF_FN(layer_aux)(const AF_FN(pass) *c, size_t l)
{
    size_t o, a;
    af_ws_layer(c->net, &c->plan, c->mb, l, &o, &a);
    return c->ws + a;
}

/* Input of layer l (l == n_layers: the network output). In inference a dropout layer is the
 * identity and is skipped, so its "output" is its input. */
static const T *AF_FN(layer_in)(const AF_FN(pass) *c, const T *x, size_t l, int training)
{
    while (l > 0) {
        if (training || c->net->layers[l - 1].kind != AF_LAYER_DROPOUT) return AF_FN(layer_out)(c, l - 1);
        l--;
    }
    return x;
}

/* Row-wise softmax in place, rows in parallel. */
static void AF_FN(softmax_rows)(size_t B, size_t n, T *a)
{
    int nt = (B * n >= AF_PAR_MIN) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < B; i++) {
        AF_FP_SCOPE(); /* OpenMP workers flush subnormals too (fpenv.h) */
        AF_FN(af_act_row_forward)(AF_ACT_SOFTMAX, 0, n, a + i * n, a + i * n);
    }
}

/* Forward pass of B rows of x. training: batch-norm batch statistics (and running-stat update
 * when update_stats) and dropout masks of `step`. fused: leave the output layer's logits (the loss
 * is computed from them). final: if non-NULL, the network output goes there (B x n_out). */
static af_status AF_FN(forward)(const AF_FN(pass) *c, size_t B, const T *x, int training,
                                int update_stats, uint64_t step, int fused, T *final)
{
    const af_net *net = c->net;
    const T *in = x;
    af_status s = AF_OK;
    for (size_t l = 0; l < net->n_layers; l++) {
        const af_layer *ly = &net->layers[l];
        int last = l + 1 == net->n_layers;
        T *out = (last && final) ? final : AF_FN(layer_out)(c, l);
        switch (ly->kind) {
        case AF_LAYER_DENSE: {
            /* A = f(X W + b): bias and elementwise f in the GEMM epilogue; softmax (row-wise)
             * after it, unless the loss takes the logits. */
            af_epilogue ep;
            ep.bias = ly->use_bias ? (const void *)(c->P + ly->b_off) : NULL;
            ep.act = (ly->act == AF_ACT_SOFTMAX || (last && fused)) ? AF_ACT_LINEAR : ly->act;
            ep.act_param = ly->act_param;
            s = GEMM_EX(0, 0, B, ly->n_out, ly->n_in, (T)1, in, ly->n_in, c->P + ly->w_off,
                        ly->n_out, (T)0, out, ly->n_out, &ep);
            if (s != AF_OK) return s;
            if (ly->act == AF_ACT_SOFTMAX && !(last && fused)) AF_FN(softmax_rows)(B, ly->n_out, out);
            break;
        }
        case AF_LAYER_BATCHNORM: {
            /* y = gamma (x - mu) / sqrt(var + eps) + beta: batch statistics in training (mean
             * and 1/std saved in the aux region for backward), running statistics otherwise. */
            size_t n = ly->n_in;
            const T *gamma = c->P + ly->w_off, *beta = c->P + ly->b_off;
            T *rmean = c->S + ly->s_off, *rvar = rmean + n;
            if (training) {
                T *mean = AF_FN(layer_aux)(c, l), *invstd = mean + n;
                s = BN_TRAIN(B, n, in, gamma, beta, ly->eps, ly->momentum, 0,
                             update_stats ? rmean : NULL, update_stats ? rvar : NULL, mean, invstd, out);
            } else {
                s = BN_INFER(B, n, in, gamma, beta, rmean, rvar, ly->eps, out);
            }
            if (s != AF_OK) return s;
            break;
        }
        case AF_LAYER_DROPOUT:
            /* inverted dropout: y = x * keep / (1 - rate), keep drawn from (seed_l, step, index);
             * identity (skipped) at inference */
            if (!training) {
                if (last && final) memcpy(final, in, B * ly->n_in * sizeof(T));
                continue;
            }
            s = DROPOUT(B * ly->n_in, ly->rate, af_layer_seed(net->seed, l), step, in, out);
            if (s != AF_OK) return s;
            break;
        default:
            return AF_EINVAL;
        }
        in = out;
    }
    return AF_OK;
}

/* dZ = dA * f'(A) in place in d (B x n), and with s = sum over rows of dZ:
 * db = alpha s (beta == 0) or db + alpha s (beta == 1): alpha 1 writes or accumulates the bias
 * gradient, alpha -lr applies a plain SGD step to the bias itself.
 * Columns are split into fixed blocks of AF_COL_BLOCK; each block sums its rows in order, so the
 * result is the same for any number of threads. Softmax (a row-wise Jacobian) is applied per row
 * first, then only the column sums run. */
static void AF_FN(act_back_colsum)(af_act act, T p, size_t B, size_t n, const T *a, T *d, T *db,
                                   T alpha, int beta)
{
    int nt = (B * n >= AF_PAR_MIN_PASS) ? af_get_num_threads() : 1;
    (void)nt;
    if (act == AF_ACT_SOFTMAX) {
        #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (size_t i = 0; i < B; i++) {
            AF_FP_SCOPE(); /* OpenMP workers flush subnormals too (fpenv.h) */
            AF_FN(af_act_row_backward)(act, p, n, a + i * n, a + i * n, d + i * n, d + i * n);
        }
        act = AF_ACT_LINEAR;
    }
    if (act == AF_ACT_LINEAR && !db) return;
    size_t nblk = (n + AF_COL_BLOCK - 1) / AF_COL_BLOCK;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t jb = 0; jb < nblk; jb++) {
        AF_FP_SCOPE(); /* OpenMP workers flush subnormals too (fpenv.h) */
        size_t j0 = jb * AF_COL_BLOCK, w = n - j0 < AF_COL_BLOCK ? n - j0 : AF_COL_BLOCK, j;
        T sum[AF_COL_BLOCK];
        for (j = 0; j < w; j++) sum[j] = 0;
        for (size_t i = 0; i < B; i++) {
            const T *ai = a + i * n + j0;
            T *di = d + i * n + j0;
            if (act == AF_ACT_RELU) {
                for (j = 0; j < w; j++) di[j] = ai[j] > 0 ? di[j] : (T)0;
            } else if (act != AF_ACT_LINEAR) {
                AF_FN(af_act_row_backward)(act, p, w, ai, ai, di, di);
            }
            for (j = 0; j < w; j++) sum[j] += di[j];
        }
        if (db) {
            if (beta) for (j = 0; j < w; j++) db[j0 + j] += alpha * sum[j];
            else for (j = 0; j < w; j++) db[j0 + j] = alpha * sum[j];
        }
    }
}

/* Backward of inference-mode batch norm (running statistics are constants):
 *   r_j = 1 / sqrt(running_var_j + eps),  xhat = (x - running_mean) r
 *   dx = dy gamma r;  dgamma_j = sum_i dy_ij xhat_ij;  dbeta_j = sum_i dy_ij  (+= when acc)
 * Fixed column blocks, rows summed in order: thread-count independent. */
static void AF_FN(bn_back_infer)(size_t B, size_t n, const T *x, const T *dy, const T *gamma,
                                 const T *stats, double eps, T *dx, T *dgamma, T *dbeta, int acc)
{
    const T *rmean = stats, *rvar = stats + n;
    size_t nblk = (n + AF_COL_BLOCK - 1) / AF_COL_BLOCK;
    int nt = (B * n >= AF_PAR_MIN) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t jb = 0; jb < nblk; jb++) {
        AF_FP_SCOPE(); /* OpenMP workers flush subnormals too (fpenv.h) */
        size_t j0 = jb * AF_COL_BLOCK, w = n - j0 < AF_COL_BLOCK ? n - j0 : AF_COL_BLOCK, j;
        T r[AF_COL_BLOCK], sg[AF_COL_BLOCK], sb[AF_COL_BLOCK];
        for (j = 0; j < w; j++) {
            r[j] = (T)1 / SQRT(rvar[j0 + j] + (T)eps);
            sg[j] = 0;
            sb[j] = 0;
        }
        for (size_t i = 0; i < B; i++) {
            const T *xi = x + i * n + j0, *di = dy + i * n + j0;
            T *oi = dx + i * n + j0;
            for (j = 0; j < w; j++) {
                sg[j] += di[j] * (xi[j] - rmean[j0 + j]) * r[j];
                sb[j] += di[j];
                oi[j] = di[j] * gamma[j0 + j] * r[j];
            }
        }
        for (j = 0; j < w; j++) {
            dgamma[j0 + j] = acc ? dgamma[j0 + j] + sg[j] : sg[j];
            dbeta[j0 + j] = acc ? dbeta[j0 + j] + sb[j] : sb[j];
        }
    }
}

/* Backward pass from d (B x n_out: dLoss/dA of the output, or dLoss/dZ when fused), which is one
 * of the two ping-pong delta buffers. Fills (acc: adds to) the gradient of every parameter.
 * sgd_lr > 0 (acc == 0): fused plain SGD instead -- each layer's update p -= lr g is applied by
 * the gradient GEMM itself (W = W - lr X^T dZ, alpha -lr, beta 1) after dX has used the old W,
 * so the gradient is never written out and no separate optimiser pass runs. */
static af_status AF_FN(backward)(const AF_FN(pass) *c, size_t B, const T *x, int training,
                                 uint64_t step, int fused, T *d, int acc, T sgd_lr)
{
    const af_net *net = c->net;
    T *d0 = c->ws + c->plan.d0, *d1 = c->ws + c->plan.d1;
    T *other = d == d0 ? d1 : d0;
    int sgd = sgd_lr > 0;
    T alpha = sgd ? -sgd_lr : (T)1, beta = (sgd || acc) ? (T)1 : (T)0;
    T *dst = sgd ? c->P : c->G;  /* where dW and db land */
    af_status s = AF_OK;
    for (size_t l = net->n_layers; l-- > 0;) {
        const af_layer *ly = &net->layers[l];
        const T *in = AF_FN(layer_in)(c, x, l, training);
        int need_dx = l > 0;
        switch (ly->kind) {
        case AF_LAYER_DENSE: {
            const T *a = AF_FN(layer_out)(c, l);
            af_act act = (l + 1 == net->n_layers && fused) ? AF_ACT_LINEAR : ly->act;
            /* dZ = dA * f'(Z);  db = sum_rows dZ */
            AF_FN(act_back_colsum)(act, (T)ly->act_param, B, ly->n_out, a, d,
                                   ly->use_bias ? dst + ly->b_off : NULL, alpha, beta != 0);
            if (need_dx) {
                /* dX = dZ W^T   (B x n_in), with W before any update */
                s = GEMM(0, 1, B, ly->n_in, ly->n_out, (T)1, d, ly->n_out, c->P + ly->w_off,
                         ly->n_out, (T)0, other, ly->n_in);
                if (s != AF_OK) return s;
            }
            /* dW = X^T dZ   (n_in x n_out, summed over the batch), or W -= lr X^T dZ */
            s = GEMM(1, 0, ly->n_in, ly->n_out, B, alpha, in, ly->n_in, d, ly->n_out, beta,
                     dst + ly->w_off, ly->n_out);
            if (s != AF_OK) return s;
            if (need_dx) { T *t = d; d = other; other = t; }
            break;
        }
        case AF_LAYER_BATCHNORM: {
            size_t n = ly->n_in;
            const T *gamma = c->P + ly->w_off;
            if (training) {
                /* dx = gamma invstd / B (B dy - dbeta - xhat dgamma), dgamma = sum dy xhat,
                 * dbeta = sum dy (one batch: never accumulated, see af_net_gradients) */
                const T *mean = AF_FN(layer_aux)(c, l), *invstd = mean + n;
                s = BN_BACK(B, n, in, d, gamma, mean, invstd, other, c->G + ly->w_off, c->G + ly->b_off);
                if (s != AF_OK) return s;
            } else {
                AF_FN(bn_back_infer)(B, n, in, d, gamma, c->S + ly->s_off, ly->eps, other,
                                     c->G + ly->w_off, c->G + ly->b_off, acc);
            }
            if (sgd) {
                /* gamma -= lr dgamma;  beta -= lr dbeta  (after dx used gamma) */
                for (size_t j = 0; j < n; j++) c->P[ly->w_off + j] += alpha * c->G[ly->w_off + j];
                for (size_t j = 0; j < n; j++) c->P[ly->b_off + j] += alpha * c->G[ly->b_off + j];
            }
            T *t = d; d = other; other = t;
            break;
        }
        case AF_LAYER_DROPOUT:
            /* dx = dy * keep / (1 - rate) with the forward's mask (regenerated, in place) */
            if (training) {
                s = DROPOUT(B * ly->n_in, ly->rate, af_layer_seed(net->seed, l), step, d, d);
                if (s != AF_OK) return s;
            }
            break;
        default:
            return AF_EINVAL;
        }
    }
    return AF_OK;
}

/* L1/L2 penalties of the Dense kernels: returns sum_l l1 |W_l| + l2 W_l^2 and, when grad, adds
 * l1 sign(W) + 2 l2 W to the gradient. Fixed chunks of AF_SUM_CHUNK weights, each summed in
 * order in parallel; the chunk sums are then added in order (thread-count independent). */
static double AF_FN(penalty)(const AF_FN(pass) *c, int grad)
{
    const af_net *net = c->net;
    T *part = c->ws + c->plan.part;
    double total = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const af_layer *ly = &net->layers[l];
        if (ly->kind != AF_LAYER_DENSE || (ly->l1 == 0 && ly->l2 == 0)) continue;
        size_t len = ly->n_in * ly->n_out, nch = (len + AF_SUM_CHUNK - 1) / AF_SUM_CHUNK;
        const T *w = c->P + ly->w_off;
        T *g = c->G + ly->w_off, l1 = (T)ly->l1, l2 = (T)ly->l2;
        int nt = len >= AF_PAR_MIN ? af_get_num_threads() : 1;
        (void)nt;
        #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (size_t ch = 0; ch < nch; ch++) {
            AF_FP_SCOPE(); /* OpenMP workers flush subnormals too (fpenv.h) */
            size_t i0 = ch * AF_SUM_CHUNK, i1 = i0 + AF_SUM_CHUNK < len ? i0 + AF_SUM_CHUNK : len;
            /* AF_SUM_LANES interleaved partial sums (entry i into lane i % AF_SUM_LANES), added
             * in lane order: a fixed order the compiler can vectorise, where one running sum is
             * a serial chain of dependent adds */
            T lane[AF_SUM_LANES] = {0}, s = 0;
            size_t i = i0;
            for (; i + AF_SUM_LANES <= i1; i += AF_SUM_LANES)
                for (size_t q = 0; q < AF_SUM_LANES; q++) {
                    T wi = w[i + q];
                    lane[q] += l1 * FABS(wi) + l2 * wi * wi;
                }
            for (size_t q = 0; i + q < i1; q++) {
                T wi = w[i + q];
                lane[q] += l1 * FABS(wi) + l2 * wi * wi;
            }
            for (size_t q = 0; q < AF_SUM_LANES; q++) s += lane[q];
            if (grad)
                for (i = i0; i < i1; i++) {
                    T wi = w[i], sg = (T)((wi > 0) - (wi < 0));
                    g[i] += l1 * sg + (T)2 * l2 * wi;
                }
            part[ch] = s;
        }
        for (size_t ch = 0; ch < nch; ch++) total += (double)part[ch];
    }
    return total;
}

#undef GEMM_EX
#undef GEMM
#undef BN_TRAIN
#undef BN_INFER
#undef BN_BACK
#undef DROPOUT
#include "dtype_end.h"
