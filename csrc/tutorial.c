/* tutorial.c: the tutorial's 2-layer sigmoid network (input -> hidden -> output, MSE), float64.
 * Same formulas and update order as the NumPy class in the tutorial, so results agree to rounding:
 *   forward:  Ha = X W1 + b1;  H = s(Ha);  Oa = H W2 + b2;  P = s(Oa)
 *   backward: dO = (Y - P) * P(1-P);  dH = (dO W2^T) * H(1-H)
 *             W2 += (H^T dO) lr;  b2 += sum_rows(dO) lr;  W1 += (X^T dH) lr;  b1 += sum_rows(dH) lr
 * (dH uses W2 before its update, as in the tutorial.) */
#include "annfast.h"
#include "internal.h"

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

/* b += lr * sum over rows of d (rows summed in order, as NumPy's sum(axis=0) does). */
static void add_row_sum(size_t n, size_t w, const double *d, double lr, double *b)
{
    for (size_t j = 0; j < w; j++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += d[i * w + j];
        b[j] += s * lr;
    }
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
    for (size_t i = 0; i < n * h; i++) d_hid[i] = d_hid[i] * (ho[i] * (1.0 - ho[i]));
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
    af_status s = check_net(net);
    if (s != AF_OK) return s;
    if (!(lr - lr == 0.0)) return AF_ENONFINITE;
    if (n == 0 || epochs == 0) return AF_OK;
    if (!x || !y || !hidden_act || !hidden_out || !out_act || !pred || !work) return AF_EINVAL;
    if ((s = check_rows(n, net)) != AF_OK) return s;
    for (size_t e = 0; e < epochs; e++) {
        if (af_stop_requested()) return AF_EINTR;
        if ((s = forward(net, n, x, hidden_act, hidden_out, out_act, pred)) != AF_OK) return s;
        if ((s = backward(net, n, x, y, hidden_out, pred, lr, work)) != AF_OK) return s;
    }
    return AF_OK;
}
