/* tutorial.c: the tutorial's 2-layer sigmoid network (input -> hidden -> output, MSE), float64.
 * Same formulas and update order as the NumPy class in the tutorial, so results agree to rounding:
 *   forward:  Ha = X W1 + b1;  H = s(Ha);  Oa = H W2 + b2;  P = s(Oa)
 *   backward: dO = (Y - P) * P(1-P);  dH = (dO W2^T) * H(1-H)
 *             W2 += (H^T dO) lr;  b2 += sum_rows(dO) lr;  W1 += (X^T dH) lr;  b1 += sum_rows(dH) lr
 * (dH uses W2 before its update, as in the tutorial.) */
#include "annfast.h"
#include "dtype.h"
#include "fpenv.h"
#include "internal.h"
#include "pool.h"

/* Elementwise passes are split between threads from this many values (a thread's share then
 * takes tens of microseconds, more than waking a thread costs). */
#define AF_TUT_PAR_MIN 65536

static af_status check_net(const af_tut_net *net)
{
    if (!net || !net->w1 || !net->b1 || !net->w2 || !net->b2) return AF_EINVAL;
    if (net->n_in == 0 || net->n_hidden == 0 || net->n_out == 0) return AF_ESHAPE;
    size_t t;
    if (af_mul_size(net->n_in, net->n_hidden, &t) || af_mul_size(net->n_hidden, net->n_out, &t))
        return AF_ESHAPE;
    return AF_OK;
}

static af_status check_rows(size_t n, const af_tut_net *net)
{
    size_t t;
    size_t widest = net->n_hidden + net->n_out;
    if (widest < net->n_hidden || af_mul_size(n, widest, &t) || af_mul_size(n, net->n_in, &t))
        return AF_ESHAPE;
    return AF_OK;
}

/* act = act + bias (per row), then out = s(act) = 1 / (1 + e^-act) over the whole contiguous block in
 * one call: sigmoid is elementwise, and one long row vectorises better than n short ones. */
static void bias_sigmoid(size_t n, size_t w, const double *bias, double *act, double *out)
{
    for (size_t i = 0; i < n; i++) {
        double *a = act + i * w;
        for (size_t j = 0; j < w; j++) a[j] += bias[j];
    }
    af_act_row_forward_f64(AF_ACT_SIGMOID, 0.0, n * w, act, out);
}

/* The full forward pass, keeping the pre-activations (hidden_activation, output_activation). */
static af_status forward(const af_tut_net *net, size_t n, const double *x, double *ha, double *ho,
                         double *oa, double *pred)
{
    size_t h = net->n_hidden, o = net->n_out;
    af_status s = af_dgemm(0, 0, n, h, net->n_in, 1.0, x, net->n_in, net->w1, h, 0.0, ha, h);
    if (s != AF_OK) return s;
    bias_sigmoid(n, h, net->b1, ha, ho);
    s = af_dgemm(0, 0, n, o, h, 1.0, ho, h, net->w2, o, 0.0, oa, o);
    if (s != AF_OK) return s;
    bias_sigmoid(n, o, net->b2, oa, pred);
    return AF_OK;
}

/* The forward pass of a training epoch, which needs only the layer outputs: bias and sigmoid run
 * in the GEMM epilogue on each tile of C while it is in cache, writing H and P directly (the same
 * operations on each element as forward(): product, + bias, sigmoid). */
static af_status forward_outputs(const af_tut_net *net, size_t n, const double *x, double *ho,
                                 double *pred)
{
    size_t h = net->n_hidden, o = net->n_out;
    af_epilogue ep = {net->b1, AF_ACT_SIGMOID, 0.0};
    af_status s = af_dgemm_ex(0, 0, n, h, net->n_in, 1.0, x, net->n_in, net->w1, h, 0.0, ho, h, &ep);
    if (s != AF_OK) return s;
    ep.bias = net->b2;
    return af_dgemm_ex(0, 0, n, o, h, 1.0, ho, h, net->w2, o, 0.0, pred, o, &ep);
}

/* b += lr * sum over rows of d, each column summed over the rows in order (as NumPy's
 * sum(axis=0) does, and as a scalar loop per column would), but walking d row by row so the
 * loop vectorises across columns and reads memory in order. Column blocks are independent
 * chunks for annfast's threads (pool.h) when d is large. */
#define TUT_COLS 256
typedef struct {
    size_t n, w;
    const double *d, *ho;
    double lr, *b, *out;
} tut_job;

static void row_sum_chunk(void *ctx, size_t jb, size_t slot)
{
    (void)slot;
    const tut_job *t = (const tut_job *)ctx;
    size_t j0 = jb * TUT_COLS, cw = t->w - j0 < TUT_COLS ? t->w - j0 : TUT_COLS;
    double s[TUT_COLS];
    for (size_t j = 0; j < cw; j++) s[j] = 0.0;
    for (size_t i = 0; i < t->n; i++) {
        const double *r = t->d + i * t->w + j0;
        for (size_t j = 0; j < cw; j++) s[j] += r[j];
    }
    for (size_t j = 0; j < cw; j++) t->b[j0 + j] += s[j] * t->lr;
}

static void add_row_sum(size_t n, size_t w, const double *d, double lr, double *b)
{
    size_t nblk = (w + TUT_COLS - 1) / TUT_COLS;
    tut_job t = {n, w, d, NULL, lr, b, NULL};
    af_pool_run(row_sum_chunk, &t, nblk, n * w >= 4 * AF_TUT_PAR_MIN ? af_get_num_threads() : 1);
}

/* dH = dH * H (1 - H), elementwise, in chunks of AF_TUT_PAR_MIN values. */
static void slope_chunk(void *ctx, size_t b, size_t slot)
{
    (void)slot;
    const tut_job *t = (const tut_job *)ctx;
    size_t i0 = b * AF_TUT_PAR_MIN, i1 = i0 + AF_TUT_PAR_MIN < t->n ? i0 + AF_TUT_PAR_MIN : t->n;
    const double *ho = t->ho;
    double *d = t->out;
    for (size_t i = i0; i < i1; i++) d[i] = d[i] * (ho[i] * (1.0 - ho[i]));
}

static void times_sigmoid_slope(size_t count, const double *ho, double *d)
{
    size_t nblk = (count + AF_TUT_PAR_MIN - 1) / AF_TUT_PAR_MIN;
    tut_job t = {count, 0, NULL, ho, 0.0, NULL, d};
    af_pool_run(slope_chunk, &t, nblk, nblk > 1 ? af_get_num_threads() : 1);
}

static af_status backward(af_tut_net *net, size_t n, const double *x, const double *y,
                          const double *ho, const double *pred, double lr, double *work)
{
    size_t in = net->n_in, h = net->n_hidden, o = net->n_out;
    double *d_out = work, *d_hid = work + n * o;
    /* dO = (Y - P) * P (1 - P) */
    for (size_t i = 0; i < n * o; i++) d_out[i] = (y[i] - pred[i]) * (pred[i] * (1.0 - pred[i]));
    /* dH = (dO W2^T) * H (1 - H) */
    af_status s = af_dgemm(0, 1, n, h, o, 1.0, d_out, o, net->w2, o, 0.0, d_hid, h);
    if (s != AF_OK) return s;
    times_sigmoid_slope(n * h, ho, d_hid);
    /* W2 += (H^T dO) lr, then b2, W1, b1 in the tutorial's order */
    if ((s = af_dgemm(1, 0, h, o, n, lr, ho, h, d_out, o, 1.0, net->w2, o)) != AF_OK) return s;
    add_row_sum(n, o, d_out, lr, net->b2);
    if ((s = af_dgemm(1, 0, in, h, n, lr, x, in, d_hid, h, 1.0, net->w1, h)) != AF_OK) return s;
    add_row_sum(n, h, d_hid, lr, net->b1);
    return AF_OK;
}

af_status af_tut_forward(const af_tut_net *net, size_t n, const double *x,
                         double *hidden_act, double *hidden_out, double *out_act, double *pred)
{
    AF_FP_SCOPE();
    af_status s = check_net(net);
    if (s != AF_OK) return s;
    if (n == 0) return AF_OK;
    if (!x || !hidden_act || !hidden_out || !out_act || !pred) return AF_EINVAL;
    if ((s = check_rows(n, net)) != AF_OK) return s;
    return forward(net, n, x, hidden_act, hidden_out, out_act, pred);
}

af_status af_tut_backward(af_tut_net *net, size_t n, const double *x, const double *y,
                          const double *hidden_out, const double *pred, double lr, double *work)
{
    AF_FP_SCOPE();
    af_status s = check_net(net);
    if (s != AF_OK) return s;
    if (!(lr - lr == 0.0)) return AF_ENONFINITE;
    if (n == 0) return AF_OK;
    if (!x || !y || !hidden_out || !pred || !work) return AF_EINVAL;
    if ((s = check_rows(n, net)) != AF_OK) return s;
    return backward(net, n, x, y, hidden_out, pred, lr, work);
}

af_status af_tut_train(af_tut_net *net, size_t n, const double *x, const double *y,
                       size_t epochs, double lr, double *hidden_act, double *hidden_out,
                       double *out_act, double *pred, double *work)
{
    AF_FP_SCOPE();
    af_status s = check_net(net);
    if (s != AF_OK) return s;
    if (!(lr - lr == 0.0)) return AF_ENONFINITE;
    if (n == 0 || epochs == 0) return AF_OK;
    if (!x || !y || !hidden_act || !hidden_out || !out_act || !pred || !work) return AF_EINVAL;
    if ((s = check_rows(n, net)) != AF_OK) return s;
    for (size_t e = 0; e < epochs; e++) {
        if (af_stop_requested()) {
            /* the epochs so far kept no pre-activations: leave all four outputs as the forward
             * pass of the weights we stop with (a consistent state for feedforward/backward) */
            if (e > 0 && (s = forward(net, n, x, hidden_act, hidden_out, out_act, pred)) != AF_OK) return s;
            return AF_EINTR;
        }
        /* the pre-activations are kept only from the last epoch, the one the caller sees */
        s = e + 1 == epochs ? forward(net, n, x, hidden_act, hidden_out, out_act, pred)
                            : forward_outputs(net, n, x, hidden_out, pred);
        if (s != AF_OK) return s;
        if ((s = backward(net, n, x, y, hidden_out, pred, lr, work)) != AF_OK) return s;
    }
    return AF_OK;
}
