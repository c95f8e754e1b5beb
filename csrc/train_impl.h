/* train_impl.h: whole epochs, predict, evaluate and exact gradients for one dtype (train.c).
 * Uses forward/backward/penalty from net_impl.h, included just before this file. */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define OPTIM_STEP af_optim_step_f32
#define CLIP_VALUE af_clip_value_f32
#define CLIP_NORM af_clip_norm_f32
#else
#define OPTIM_STEP af_optim_step_f64
#define CLIP_VALUE af_clip_value_f64
#define CLIP_NORM af_clip_norm_f64
#endif

/* Sets up a pass over a workspace of ws_len elements planned for batches of up to mb rows. */
static af_status AF_FN(pass_init)(AF_FN(pass) *c, const af_net *net, T *ws, size_t ws_len,
                                  size_t mb)
{
    af_status s = af_ws_plan_make(net, mb, &c->plan);
    if (s != AF_OK) return s;
    if (!ws || ws_len < c->plan.end) return AF_ESHAPE;
    c->net = net;
    c->ws = ws;
    c->mb = mb;
    c->P = (T *)net->params;
    c->G = (T *)net->grads;
    c->S = (T *)net->stats;
    return AF_OK;
}

/* Checks the data arrays of an entry point: n rows of x (n x n_in) and y (n x y_cols). */
static af_status AF_FN(check_data)(const af_net *net, size_t n, const T *x, const T *y, int need_y)
{
    size_t t;
    if (!x || (need_y && !y)) return AF_EINVAL;
    if (af_mul_size(n, net->n_in, &t) || af_mul_size(n, af_net_y_cols(net), &t)) return AF_ESHAPE;
    return AF_OK;
}

/* Loss of a forward pass already in the workspace: per-row loss/accuracy/squared error of the B
 * output rows, summed in row order into the accumulators; d (if non-NULL) gets scale * dL/dout. */
static af_status AF_FN(loss_pass)(const AF_FN(pass) *c, size_t B, const T *x, const T *y,
                                  int training, int fused, T scale, T *d, double *loss_sum,
                                  double *correct, double *sse)
{
    const af_net *net = c->net;
    size_t n_out = net->layers[net->n_layers - 1].n_out, ycols = af_net_y_cols(net);
    const T *out = AF_FN(layer_in)(c, x, net->n_layers, training);
    T *rl = c->ws + c->plan.rows, *ra = rl + c->mb, *rs = ra + c->mb;
    af_status s = AF_FN(af_loss_rows)(net->loss, fused, B, n_out, out, n_out, y, ycols, scale, d,
                                      n_out, rl, ra, rs);
    if (s != AF_OK) return s;
    double ls = 0, cs = 0, es = 0;
    for (size_t i = 0; i < B; i++) { ls += rl[i]; cs += ra[i]; es += rs[i]; }
    *loss_sum += ls;
    if (correct) *correct += cs;
    if (sse) *sse += es;
    return AF_OK;
}

/* Does any Dense layer carry an L1/L2 penalty? */
static int AF_FN(has_penalty)(const af_net *net)
{
    for (size_t l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == AF_LAYER_DENSE && (net->layers[l].l1 > 0 || net->layers[l].l2 > 0))
            return 1;
    return 0;
}

/* Gradient clipping over the flat gradient: by global L2 norm, then by value. */
static af_status AF_FN(clip)(const af_net *net, T *g)
{
    af_status s = AF_OK;
    /* g <- g * clipnorm / ||g|| when ||g|| > clipnorm */
    if (net->clipnorm > 0 && (s = CLIP_NORM(net->n_params, g, net->clipnorm, NULL)) != AF_OK) return s;
    if (net->clipvalue > 0) s = CLIP_VALUE(net->n_params, g, (T)net->clipvalue);
    return s;
}

/* Copies the B rows idx[0..B) of x and y into the batch buffers xb, yb. Random rows of a large
 * x are memory-latency-bound: two threads halve the wait. Small batches use one thread, with no
 * parallel region per step. */
static void AF_FN(gather_rows)(size_t B, size_t n_in, size_t ycols, const T *x, const T *y,
                               const uint64_t *idx, T *xb, T *yb)
{
    int nt = B * n_in >= AF_PAR_MIN_GATHER ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < B; i++) {
        memcpy(xb + i * n_in, x + idx[i] * n_in, n_in * sizeof(T));
        memcpy(yb + i * ycols, y + idx[i] * ycols, ycols * sizeof(T));
    }
}

af_status AF_FN(af_net_train_epoch)(const af_net *net, T *ws, size_t ws_len, size_t n, const T *x,
                                    const T *y, size_t batch, int shuffle, uint64_t shuffle_key,
                                    size_t first_batch, size_t max_batches,
                                    const af_optim *opt, T *opt_state, uint64_t *step,
                                    uint64_t *perm, af_epoch_stats *out)
{
    AF_FP_SCOPE();
    AF_FN(pass) c;
    if (!opt || !step || !out || batch == 0) return AF_EINVAL;
    memset(out, 0, sizeof *out);
    af_status s = AF_FN(pass_init)(&c, net, ws, ws_len, batch);
    if (s != AF_OK) return s;
    if ((s = af_optim_check(opt)) != AF_OK) return s;
    int slots = af_optim_slots_used(opt);
    if (slots < 0) return AF_EINVAL;
    if (slots > 0 && net->n_params && !opt_state) return AF_EINVAL;
    if (n == 0) return AF_OK;
    if ((s = AF_FN(check_data)(net, n, x, y, 1)) != AF_OK) return s;
    if ((unsigned)shuffle > AF_ORDER_GIVEN || (shuffle && !perm)) return AF_EINVAL;
    if (shuffle == AF_ORDER_GIVEN)
        for (size_t i = 0; i < n; i++)
            if (perm[i] >= n) return AF_EINVAL;

    size_t n_in = net->n_in, ycols = af_net_y_cols(net);
    int fused = af_net_fused_output(net);
    T *xb = ws + c.plan.xb, *yb = ws + c.plan.yb, *d0 = ws + c.plan.d0;
    size_t start0;
    if (af_mul_size(first_batch, batch, &start0)) return AF_ESHAPE;
    if (shuffle == AF_ORDER_SHUFFLE && first_batch == 0) af_shuffle_order(net->seed, shuffle_key, n, perm);
    /* Plain SGD (no momentum, weight decay, clipping or penalties) is fused into the backward
     * GEMMs: the same update p - lr g, without writing g out or a separate pass over p. */
    int plain_sgd = opt->kind == AF_OPT_SGD && opt->momentum == 0 && opt->weight_decay == 0 &&
                    opt->lr > 0 && net->clipnorm == 0 && net->clipvalue == 0 && !AF_FN(has_penalty)(net);

    for (size_t start = start0, nb = 0; start < n && nb < max_batches; start += batch, nb++) {
        if (af_stop_requested()) return AF_EINTR;
        size_t B = n - start < batch ? n - start : batch;
        const T *xs = x + start * n_in, *ys = y + start * ycols;
        if (shuffle) {
            AF_FN(gather_rows)(B, n_in, ycols, x, y, perm + start, xb, yb);
            xs = xb;
            ys = yb;
        }
        uint64_t t = *step + 1;
        double lsum = 0;
        /* forward, loss and dLoss/dout (mean over the batch: scale 1/B), backward */
        if ((s = AF_FN(forward)(&c, B, xs, 1, 1, t, fused, NULL)) != AF_OK) return s;
        if ((s = AF_FN(loss_pass)(&c, B, xs, ys, 1, fused, (T)1 / (T)B, d0, &lsum, &out->correct,
                                  &out->sse)) != AF_OK)
            return s;
        if (plain_sgd) {
            /* backward applies p -= lr g layer by layer inside the gradient GEMMs */
            if ((s = AF_FN(backward)(&c, B, xs, 1, t, fused, d0, 0, (T)opt->lr)) != AF_OK) return s;
        } else {
            if ((s = AF_FN(backward)(&c, B, xs, 1, t, fused, d0, 0, 0)) != AF_OK) return s;
            /* + L1/L2 penalty (value and gradient), clipping, one fused optimiser update */
            lsum += (double)B * AF_FN(penalty)(&c, 1);
            if ((s = AF_FN(clip)(net, c.G)) != AF_OK) return s;
            if ((s = OPTIM_STEP(opt, net->n_params, c.P, c.G, opt_state, t)) != AF_OK) return s;
        }
        *step = t;
        out->loss_sum += lsum;
        out->n_seen += B;
        out->n_batches++;
    }
    return AF_OK;
}

af_status AF_FN(af_net_predict)(const af_net *net, T *ws, size_t ws_len, size_t chunk, size_t n,
                                const T *x, T *out)
{
    AF_FP_SCOPE();
    AF_FN(pass) c;
    af_status s = AF_FN(pass_init)(&c, net, ws, ws_len, chunk);
    if (s != AF_OK) return s;
    if (n == 0) return AF_OK;
    if (!out || (s = AF_FN(check_data)(net, n, x, NULL, 0)) != AF_OK) return s;
    size_t n_out = net->layers[net->n_layers - 1].n_out, t;
    if (af_mul_size(n, n_out, &t)) return AF_ESHAPE;
    for (size_t start = 0; start < n; start += chunk) {
        size_t B = n - start < chunk ? n - start : chunk;
        T *dst = out + start * n_out;
        if ((s = AF_FN(forward)(&c, B, x + start * net->n_in, 0, 0, 0, 0, dst)) != AF_OK) return s;
    }
    return AF_OK;
}

af_status AF_FN(af_net_evaluate)(const af_net *net, T *ws, size_t ws_len, size_t chunk, size_t n,
                                 const T *x, const T *y, double *loss, double *correct, double *sse)
{
    AF_FP_SCOPE();
    AF_FN(pass) c;
    af_status s = AF_FN(pass_init)(&c, net, ws, ws_len, chunk);
    if (s != AF_OK) return s;
    if (!loss) return AF_EINVAL;
    if (n == 0) return AF_EINVAL;
    if ((s = AF_FN(check_data)(net, n, x, y, 1)) != AF_OK) return s;
    int fused = af_net_fused_output(net);
    size_t ycols = af_net_y_cols(net);
    double lsum = 0;
    for (size_t start = 0; start < n; start += chunk) {
        size_t B = n - start < chunk ? n - start : chunk;
        const T *xs = x + start * net->n_in;
        if ((s = AF_FN(forward)(&c, B, xs, 0, 0, 0, fused, NULL)) != AF_OK) return s;
        if ((s = AF_FN(loss_pass)(&c, B, xs, y + start * ycols, 0, fused, 0, NULL, &lsum, correct,
                                  sse)) != AF_OK)
            return s;
    }
    *loss = lsum / (double)n + AF_FN(penalty)(&c, 0);
    return AF_OK;
}

af_status AF_FN(af_net_gradients)(const af_net *net, T *ws, size_t ws_len, size_t chunk, size_t n,
                                  const T *x, const T *y, int training, uint64_t step, double *loss)
{
    AF_FP_SCOPE();
    AF_FN(pass) c;
    af_status s = AF_FN(pass_init)(&c, net, ws, ws_len, chunk);
    if (s != AF_OK) return s;
    if (!loss || n == 0) return AF_EINVAL;
    if ((s = AF_FN(check_data)(net, n, x, y, 1)) != AF_OK) return s;
    if (training && chunk < n) return AF_ESHAPE;
    int fused = af_net_fused_output(net);
    size_t ycols = af_net_y_cols(net);
    T *d0 = ws + c.plan.d0;
    double lsum = 0;
    /* d(mean loss)/dout = (1/n) dL_i/dout per row; chunks add into the gradient. */
    for (size_t start = 0; start < n; start += chunk) {
        size_t B = n - start < chunk ? n - start : chunk;
        const T *xs = x + start * net->n_in;
        if ((s = AF_FN(forward)(&c, B, xs, training, 0, step, fused, NULL)) != AF_OK) return s;
        if ((s = AF_FN(loss_pass)(&c, B, xs, y + start * ycols, training, fused, (T)1 / (T)n, d0,
                                  &lsum, NULL, NULL)) != AF_OK)
            return s;
        if ((s = AF_FN(backward)(&c, B, xs, training, step, fused, d0, start > 0, 0)) != AF_OK) return s;
    }
    *loss = lsum / (double)n + AF_FN(penalty)(&c, 1);
    return AF_OK;
}

#undef OPTIM_STEP
#undef CLIP_VALUE
#undef CLIP_NORM
#include "dtype_end.h"
