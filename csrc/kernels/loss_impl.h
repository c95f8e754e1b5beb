/* loss_impl.h: per-sample losses, their gradients and metric sums for one dtype (see loss.c). */
#include "dtype_begin.h"

/* Index of the largest entry of a row (first one on ties). */
static inline size_t AF_FN(row_argmax)(size_t n, const T *p)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (p[j] > p[best]) best = j;
    return best;
}

/* One row of the loss: returns the per-sample loss, writes g = scale * dloss/dp (if g), and the
 * metric contributions. y is the target row (for SCCE y[0] is the class index, validated). */
static inline T AF_FN(loss_row)(af_loss loss, int from_logits, size_t n, const T *p, const T *y,
                                size_t label, T scale, T *g, double *acc, double *sse)
{
    const T eps = (T)AF_LOSS_EPS, inv_n = (T)1 / (T)n;
    T l = 0, e2 = 0;
    size_t j;
    switch (loss) {
    case AF_LOSS_MSE:
        /* L = mean_j (p_j - y_j)^2;  dL/dp_j = 2 (p_j - y_j) / n */
        for (j = 0; j < n; j++) {
            T d = p[j] - y[j];
            l += d * d;
            if (g) g[j] = scale * (T)2 * d * inv_n;
        }
        e2 = l;
        l *= inv_n;
        break;
    case AF_LOSS_MAE:
        /* L = mean_j |p_j - y_j|;  dL/dp_j = sign(p_j - y_j) / n  (0 at equality) */
        for (j = 0; j < n; j++) {
            T d = p[j] - y[j];
            l += FABS(d);
            e2 += d * d;
            if (g) g[j] = scale * (T)((d > 0) - (d < 0)) * inv_n;
        }
        l *= inv_n;
        break;
    case AF_LOSS_HINGE:
        /* L = mean_j max(0, 1 - y_j p_j);  dL/dp_j = -y_j / n where 1 - y_j p_j > 0
         * (a NaN margin stays in the loss; its gradient is 0, as torch's clamp(min=0)) */
        for (j = 0; j < n; j++) {
            T margin = (T)1 - y[j] * p[j], d = p[j] - y[j];
            l += margin < 0 ? (T)0 : margin;
            e2 += d * d;
            if (g) g[j] = margin > 0 ? -scale * y[j] * inv_n : (T)0;
        }
        l *= inv_n;
        break;
    case AF_LOSS_BCE:
        if (from_logits) {
            /* z = logit, q = sigmoid(z): L = mean_j max(z,0) - z y + log1p(e^-|z|);
             * dL/dz_j = (q_j - y_j) / n. e^-|z| <= 1, so nothing overflows. */
            for (j = 0; j < n; j++) {
                T z = p[j], ez = VEXP(-FABS(z));
                T q = z >= 0 ? (T)1 / ((T)1 + ez) : ez / ((T)1 + ez);
                l += (z > 0 ? z : (T)0) - z * y[j] + LOG1P(ez);
                e2 += (q - y[j]) * (q - y[j]);
                if (g) g[j] = scale * (q - y[j]) * inv_n;
            }
        } else {
            /* q clamped to [eps, 1-eps]: L = -mean_j y log q + (1-y) log(1-q);
             * dL/dq_j = (q - y) / (q (1 - q)) / n */
            for (j = 0; j < n; j++) {
                T q = p[j] < eps ? eps : (p[j] > (T)1 - eps ? (T)1 - eps : p[j]);
                l -= y[j] * LOG(q) + ((T)1 - y[j]) * LOG((T)1 - q);
                e2 += (p[j] - y[j]) * (p[j] - y[j]);
                if (g) g[j] = scale * (q - y[j]) / (q * ((T)1 - q)) * inv_n;
            }
        }
        l *= inv_n;
        break;
    case AF_LOSS_CCE:
    case AF_LOSS_SCCE:
        if (from_logits) {
            /* L = logsumexp(z) - sum_j y_j z_j with logsumexp(z) = max z + log sum_j e^(z_j - max z);
             * dL/dz_j = softmax(z)_j sum_k y_k - y_j  (= softmax(z)_j - y_j for one-hot y). */
            /* e^(z_j - max z) by the vectorised exp (vexp.h, ~1 ulp), kept in g when there is
             * one so each exp is computed once */
            T mx = p[0], s = 0, ysum = 0, yz = 0;
            for (j = 1; j < n; j++) mx = p[j] > mx ? p[j] : mx;
            if (g) for (j = 0; j < n; j++) { g[j] = VEXP(p[j] - mx); s += g[j]; }
            else for (j = 0; j < n; j++) s += VEXP(p[j] - mx);
            T lse = mx + LOG(s), inv_s = (T)1 / s;
            if (loss == AF_LOSS_SCCE) { ysum = 1; yz = p[label]; }
            else for (j = 0; j < n; j++) { ysum += y[j]; yz += y[j] * p[j]; }
            l = ysum * lse - yz;
            for (j = 0; j < n; j++) {
                T q = (g ? g[j] : VEXP(p[j] - mx)) * inv_s;
                T t = loss == AF_LOSS_SCCE ? (T)(j == label) : y[j];
                e2 += (q - t) * (q - t);
                if (g) g[j] = scale * (q * ysum - t);
            }
        } else {
            /* L = -sum_j y_j log max(q_j, eps);  dL/dq_j = -y_j / max(q_j, eps)
             * CCE adds every term, so 0 * log(NaN) makes a NaN anywhere in the row NaN (Keras'
             * -sum y log p); SCCE reads only the label's column (Keras, PyTorch's nll_loss). */
            for (j = 0; j < n; j++) {
                T t = loss == AF_LOSS_SCCE ? (T)(j == label) : y[j];
                T q = p[j] < eps ? eps : p[j];
                if (t != 0 || loss == AF_LOSS_CCE) l -= t * LOG(q);
                e2 += (p[j] - t) * (p[j] - t);
                if (g) g[j] = -scale * t / q;
            }
        }
        break;
    default: break;
    }
    {
        double a = 0;
        if (loss == AF_LOSS_CCE) a = AF_FN(row_argmax)(n, p) == AF_FN(row_argmax)(n, y);
        else if (loss == AF_LOSS_SCCE) a = AF_FN(row_argmax)(n, p) == label;
        else if (n > 1 && (loss == AF_LOSS_MSE || loss == AF_LOSS_MAE))
            a = AF_FN(row_argmax)(n, p) == AF_FN(row_argmax)(n, y);
        else {
            /* Binary: predicted class p > threshold (0 for logits and hinge, else 0.5) against
             * the target's class (y > 0.5, or y > 0 for hinge), averaged over outputs. */
            T thr = (from_logits || loss == AF_LOSS_HINGE) ? (T)0 : (T)0.5;
            T ythr = loss == AF_LOSS_HINGE ? (T)0 : (T)0.5;
            size_t c = 0;
            for (j = 0; j < n; j++) c += (p[j] > thr) == (y[j] > ythr);
            a = (double)c / (double)n;
        }
        *acc = a;
    }
    *sse = (double)e2;
    return l;
}

/* Per row of an m x n block: the largest entry and its index, the first one on ties (as
 * row_argmax). Which entry wins is data-dependent: compiled as a branch it mispredicted about
 * once per row (~70 cycles a row of 10, a tenth of a small training step); marked unpredictable,
 * GCC and Clang select with cmov/blend instead (~18 cycles). */
#if defined(__GNUC__) && (__GNUC__ >= 9 || defined(__clang__))
#define AF_UNPREDICTABLE(c) __builtin_expect_with_probability((c), 1, 0.5)
#else
#define AF_UNPREDICTABLE(c) (c)
#endif
/* Step j of one row's select chain: the larger entry wins, the first one on ties. */
#define AF_ARGMAX_STEP(r, b, a)                                                                    \
    do {                                                                                           \
        T x_ = (r)[j];                                                                             \
        int up_ = AF_UNPREDICTABLE(x_ > (b));                                                      \
        (b) = up_ ? x_ : (b);                                                                      \
        (a) = up_ ? j : (a);                                                                       \
    } while (0)
static void AF_FN(rows_argmax)(size_t m, size_t n, const T *v, size_t ld, T *mx, size_t *top)
{
    size_t i = 0;
    /* four rows side by side, column by column, in registers: each row's steps as in the loop
     * below for the rest, but the four select chains overlap instead of running one after another (a
     * row of 10 is ~40 cycles of chain latency) */
    for (; i + 4 <= m; i += 4) {
        const T *r0 = v + i * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        T b0 = r0[0], b1 = r1[0], b2 = r2[0], b3 = r3[0];
        size_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t j = 1; j < n; j++) {
            AF_ARGMAX_STEP(r0, b0, a0);
            AF_ARGMAX_STEP(r1, b1, a1);
            AF_ARGMAX_STEP(r2, b2, a2);
            AF_ARGMAX_STEP(r3, b3, a3);
        }
        mx[i] = b0, mx[i + 1] = b1, mx[i + 2] = b2, mx[i + 3] = b3;
        top[i] = a0, top[i + 1] = a1, top[i + 2] = a2, top[i + 3] = a3;
    }
    for (; i < m; i++) {
        const T *r = v + i * ld;
        T best = r[0];
        size_t at = 0;
        for (size_t j = 1; j < n; j++) AF_ARGMAX_STEP(r, best, at);
        mx[i] = best;
        top[i] = at;
    }
}
#undef AF_ARGMAX_STEP
#undef AF_UNPREDICTABLE

/* Rows of loss_row's softmax cross-entropy from logits, with a gradient (the training step's
 * case), for a block of m <= AF_LOSS_ROW_BLOCK rows. Row by row, a few classes (often 10) make
 * every sum a short serial chain and leave the vector lanes idle; here the exps of the whole
 * block run in one flat call of the exp kernel of the path in use, and the per-row sums run with
 * the row as the inner index, so the chains of different rows proceed side by side. Each row's values
 * come from the same operations in the same order as in loss_row; only the exp may differ from
 * loss_row's in the last bit (an FMA-contracted build of the same polynomial). */
static void AF_FN(softmax_ce_block)(int sparse, size_t m, size_t n, const T *p, size_t ldp,
                                    const T *y, size_t ldy, T scale, T *g, size_t ldg,
                                    T *row_loss, T *row_acc, T *row_sse)
{
    T mx[AF_LOSS_ROW_BLOCK], s[AF_LOSS_ROW_BLOCK], ysum[AF_LOSS_ROW_BLOCK], yz[AF_LOSS_ROW_BLOCK];
    T e2[AF_LOSS_ROW_BLOCK], ymx[AF_LOSS_ROW_BLOCK];
    size_t top[AF_LOSS_ROW_BLOCK], ytop[AF_LOSS_ROW_BLOCK], i, j;
    /* row maxima of the logits and of one-hot targets (or the sparse labels) */
    AF_FN(rows_argmax)(m, n, p, ldp, mx, top);
    if (sparse) for (i = 0; i < m; i++) ytop[i] = (size_t)y[i * ldy];
    else AF_FN(rows_argmax)(m, n, y, ldy, ymx, ytop);
    for (i = 0; i < m; i++) s[i] = ysum[i] = yz[i] = e2[i] = 0;
    /* g = e^(z - max z) */
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) g[i * ldg + j] = p[i * ldp + j] - mx[i];
    if (ldg == n) AF_FN(af_vexp_row)(m * n, g, g);
    else for (i = 0; i < m; i++) AF_FN(af_vexp_row)(n, g + i * ldg, g + i * ldg);
    for (j = 0; j < n; j++)
        for (i = 0; i < m; i++) {
            s[i] += g[i * ldg + j];
            if (!sparse) {
                ysum[i] += y[i * ldy + j];
                yz[i] += y[i * ldy + j] * p[i * ldp + j];
            }
        }
    for (i = 0; i < m; i++) {
        if (sparse) { ysum[i] = 1; yz[i] = p[i * ldp + ytop[i]]; }
        if (row_loss) row_loss[i] = ysum[i] * (mx[i] + LOG(s[i])) - yz[i];
        s[i] = (T)1 / s[i];
    }
    /* q = softmax(z); gradient scale (q sum y - y) */
    for (j = 0; j < n; j++)
        for (i = 0; i < m; i++) {
            T q = g[i * ldg + j] * s[i], t = sparse ? (T)(j == ytop[i]) : y[i * ldy + j];
            e2[i] += (q - t) * (q - t);
            g[i * ldg + j] = scale * (q * ysum[i] - t);
        }
    for (i = 0; i < m; i++) {
        if (row_acc) row_acc[i] = (T)(top[i] == ytop[i]);
        if (row_sse) row_sse[i] = e2[i];
    }
}

static af_status AF_FN(loss_check)(af_loss loss, int from_logits, size_t m, size_t n,
                                   const T *p, size_t ldp, const T *y, size_t ldy, size_t ldg,
                                   int has_grad)
{
    if ((unsigned)loss >= AF_LOSS_COUNT) return AF_EINVAL;
    if (m == 0) return AF_OK;
    if (n == 0 || !p || !y) return AF_EINVAL;
    size_t ycols = loss == AF_LOSS_SCCE ? 1 : n, t;
    if (ldp < n || ldy < ycols || (has_grad && ldg < n)) return AF_ESHAPE;
    if (af_mul_size(m, ldp, &t) || af_mul_size(m, ldy, &t) || (has_grad && af_mul_size(m, ldg, &t)))
        return AF_ESHAPE;
    if (from_logits && loss != AF_LOSS_BCE && loss != AF_LOSS_CCE && loss != AF_LOSS_SCCE)
        return AF_EINVAL;
    if (loss == AF_LOSS_SCCE)
        for (size_t i = 0; i < m; i++) {
            T c = y[i * ldy];
            if (!(c >= 0 && c < (T)n) || c != (T)(size_t)c) return AF_EINVAL;
        }
    return AF_OK;
}

/* Rows of af_loss_rows in chunks (pool.h): blocks of AF_LOSS_ROW_BLOCK rows for the fused softmax
 * cross-entropy, else ranges of rows; each row's values do not depend on the chunking. */
typedef struct {
    af_loss loss;
    int from_logits;
    size_t m, n, ldp, ldy, ldg, rows; /* rows per chunk */
    const T *p, *y;
    T scale;
    T *grad, *row_loss, *row_acc, *row_sse;
} AF_FN(loss_job);

static void AF_FN(loss_softmax_chunk)(void *ctx, size_t b, size_t slot)
{
    (void)slot;
    const AF_FN(loss_job) *j = (const AF_FN(loss_job) *)ctx;
    size_t i0 = b * j->rows, r = j->m - i0 < j->rows ? j->m - i0 : j->rows;
    AF_FN(softmax_ce_block)(j->loss == AF_LOSS_SCCE, r, j->n, j->p + i0 * j->ldp, j->ldp,
                            j->y + i0 * j->ldy, j->ldy, j->scale, j->grad + i0 * j->ldg, j->ldg,
                            j->row_loss ? j->row_loss + i0 : NULL, j->row_acc ? j->row_acc + i0 : NULL,
                            j->row_sse ? j->row_sse + i0 : NULL);
}

static void AF_FN(loss_rows_chunk)(void *ctx, size_t b, size_t slot)
{
    (void)slot;
    const AF_FN(loss_job) *j = (const AF_FN(loss_job) *)ctx;
    size_t i1 = (b + 1) * j->rows < j->m ? (b + 1) * j->rows : j->m;
    for (size_t i = b * j->rows; i < i1; i++) {
        size_t label = j->loss == AF_LOSS_SCCE ? (size_t)j->y[i * j->ldy] : 0;
        double a = 0, e = 0;
        T l = AF_FN(loss_row)(j->loss, j->from_logits, j->n, j->p + i * j->ldp, j->y + i * j->ldy, label,
                              j->scale, j->grad ? j->grad + i * j->ldg : NULL, &a, &e);
        if (j->row_loss) j->row_loss[i] = l;
        if (j->row_acc) j->row_acc[i] = (T)a;
        if (j->row_sse) j->row_sse[i] = (T)e;
    }
}

/* Engine entry (internal.h): per-row loss, accuracy and squared error into row arrays (each may
 * be NULL) and the scaled gradient; rows are independent, so this runs in parallel and the
 * caller sums the row arrays in row order (bitwise identical for any thread count). */
af_status AF_FN(af_loss_rows)(af_loss loss, int from_logits, size_t m, size_t n, const T *p,
                              size_t ldp, const T *y, size_t ldy, T scale, T *grad, size_t ldg,
                              T *row_loss, T *row_acc, T *row_sse)
{
    AF_FP_SCOPE();
    af_status s = AF_FN(loss_check)(loss, from_logits, m, n, p, ldp, y, ldy, ldg, grad != NULL);
    if (s != AF_OK || m == 0) return s;
    int nt = (m * n >= AF_PAR_MIN) ? af_get_num_threads() : 1;
    AF_FN(loss_job) j = {loss, from_logits, m, n, ldp, ldy, ldg, AF_LOSS_ROW_BLOCK, p, y, scale,
                         grad, row_loss, row_acc, row_sse};
    if (from_logits && grad && (loss == AF_LOSS_CCE || loss == AF_LOSS_SCCE)) {
        af_pool_run(AF_FN(loss_softmax_chunk), &j, (m + j.rows - 1) / j.rows, nt);
        return AF_OK;
    }
    af_pool_run(AF_FN(loss_rows_chunk), &j, (m + j.rows - 1) / j.rows, nt);
    return AF_OK;
}

af_status AF_FN(af_loss_eval)(af_loss loss, int from_logits, size_t m, size_t n, const T *p,
                              size_t ldp, const T *y, size_t ldy, T scale, T *row_loss, T *grad,
                              size_t ldg, double *correct, double *sse)
{
    AF_FP_SCOPE();
    af_status s = AF_FN(loss_check)(loss, from_logits, m, n, p, ldp, y, ldy, ldg, grad != NULL);
    if (s != AF_OK || m == 0) return s;
    /* Sequential in row order: the metric sums are then independent of the thread count. */
    double csum = 0, esum = 0;
    for (size_t i = 0; i < m; i++) {
        size_t label = loss == AF_LOSS_SCCE ? (size_t)y[i * ldy] : 0;
        double a = 0, e = 0;
        T l = AF_FN(loss_row)(loss, from_logits, n, p + i * ldp, y + i * ldy, label, scale,
                              grad ? grad + i * ldg : NULL, &a, &e);
        if (row_loss) row_loss[i] = l;
        csum += a;
        esum += e;
    }
    if (correct) *correct += csum;
    if (sse) *sse += esum;
    return AF_OK;
}

#include "dtype_end.h"
