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
#include "isa_ctx.h"
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

/* ---- the row-wise part of a pass, by blocks of rows ------------------------------------------
 * Forward, dO and dH are computed row by row: a block of rows goes through all of them while its
 * hidden layer (rows x n_hidden) is in cache, and blocks are independent chunks for annfast's
 * threads (pool.h). Every product a block issues takes the same kernel path with the same
 * arithmetic per element as one product over all rows would (the path depends on the number of
 * rows only below 32 rows, and blocks have at least that many), so the blocking never changes a
 * bit; the weight gradients, which sum over all rows, follow as whole products. */
#define TUT_BLOCK_MIN 32
typedef struct {
    const af_tut_net *net;
    size_t n, rows, nblk;          /* rows per block; the last block also takes the rest */
    const double *x, *y;           /* y: NULL for a forward pass only */
    double *ha, *oa;               /* pre-activations, or NULL: not kept (sigmoid in the GEMM) */
    double *ho, *pred, *d_out, *d_hid;
    int status;                    /* first error (atomic) */
} tut_pass;

/* Forward of rows [i0, i0 + r): H, P, and Ha, Oa when kept. */
static af_status block_forward(const tut_pass *t, size_t i0, size_t r)
{
    const af_tut_net *net = t->net;
    size_t in = net->n_in, h = net->n_hidden, o = net->n_out;
    const double *x = t->x + i0 * in;
    double *ho = t->ho + i0 * h, *pred = t->pred + i0 * o;
    af_status s;
    if (t->ha) {
        double *ha = t->ha + i0 * h, *oa = t->oa + i0 * o;
        if ((s = af_dgemm(0, 0, r, h, in, 1.0, x, in, net->w1, h, 0.0, ha, h)) != AF_OK) return s;
        bias_sigmoid(r, h, net->b1, ha, ho);
        if ((s = af_dgemm(0, 0, r, o, h, 1.0, ho, h, net->w2, o, 0.0, oa, o)) != AF_OK) return s;
        bias_sigmoid(r, o, net->b2, oa, pred);
        return AF_OK;
    }
    /* bias and sigmoid in the GEMM epilogue: the same operations on each element */
    af_epilogue ep = {net->b1, AF_ACT_SIGMOID, 0.0};
    if ((s = af_dgemm_ex(0, 0, r, h, in, 1.0, x, in, net->w1, h, 0.0, ho, h, &ep)) != AF_OK) return s;
    ep.bias = net->b2;
    return af_dgemm_ex(0, 0, r, o, h, 1.0, ho, h, net->w2, o, 0.0, pred, o, &ep);
}

/* dO = (Y - P) * P (1 - P);  dH = (dO W2^T) * H (1 - H), rows [i0, i0 + r). */
static af_status block_deltas(const tut_pass *t, size_t i0, size_t r)
{
    size_t h = t->net->n_hidden, o = t->net->n_out;
    const double *y = t->y + i0 * o, *pred = t->pred + i0 * o, *ho = t->ho + i0 * h;
    double *d_out = t->d_out + i0 * o, *d_hid = t->d_hid + i0 * h;
    /* the derivative products through the ISA's sigmoid-backward kernel, dx = dy * (s (1 - s)):
     * the tutorial's operations in its order, vectorised at the machine's width (this file is
     * built for the baseline ISA) */
    for (size_t i = 0; i < r * o; i++) d_out[i] = y[i] - pred[i];
    af_act_row_backward_f64(AF_ACT_SIGMOID, 0.0, r * o, pred, pred, d_out, d_out);
    af_status s = af_dgemm(0, 1, r, h, o, 1.0, d_out, o, t->net->w2, o, 0.0, d_hid, h);
    if (s != AF_OK) return s;
    af_act_row_backward_f64(AF_ACT_SIGMOID, 0.0, r * h, ho, ho, d_hid, d_hid);
    return AF_OK;
}

static void rows_chunk(void *ctx, size_t b, size_t slot)
{
    (void)slot;
    tut_pass *t = (tut_pass *)ctx;
    size_t i0 = b * t->rows, r = b + 1 == t->nblk ? t->n - i0 : t->rows;
    af_status s = block_forward(t, i0, r);
    if (s == AF_OK && t->y) s = block_deltas(t, i0, r);
    if (s != AF_OK) __atomic_store_n(&t->status, (int)s, __ATOMIC_RELAXED);
}

/* Runs the row-wise part over all n rows: blocks of about 256 KB of hidden layer (at least
 * TUT_BLOCK_MIN rows), a few per thread when the pass has enough work for threads. */
static af_status run_rows(tut_pass *t)
{
    const af_tut_net *net = t->net;
    size_t n = t->n, h = net->n_hidden;
    double macs = (double)n * ((double)net->n_in * h + 2.0 * h * net->n_out);
    int nt = macs >= 2.0e6 ? af_get_num_threads() : 1;
    size_t rows = 32768 / (h + net->n_in + net->n_out);
    if (nt > 1 && rows > n / (4 * (size_t)nt)) rows = n / (4 * (size_t)nt);
    if (rows < TUT_BLOCK_MIN) rows = TUT_BLOCK_MIN;
    t->rows = rows;
    t->nblk = n / rows > 0 ? n / rows : 1;
    t->status = AF_OK;
    af_pool_run(rows_chunk, t, t->nblk, nt);
    return (af_status)t->status;
}

/* The full forward pass, keeping the pre-activations (hidden_activation, output_activation). */
static af_status forward(const af_tut_net *net, size_t n, const double *x, double *ha, double *ho,
                         double *oa, double *pred)
{
    tut_pass t = {net, n, 0, 0, x, NULL, ha, oa, ho, pred, NULL, NULL, AF_OK};
    return run_rows(&t);
}

/* b += lr * sum over rows of d, each column summed over the rows in order (as NumPy's
 * sum(axis=0) does, and as a scalar loop per column would). The ISA's column-sum kernel
 * (rows.h) walks d row by row with the sums in vector registers; chunks of TUT_COLS columns are
 * independent jobs for annfast's threads (pool.h) when d is large (a 256-wide hidden layer: 4
 * chunks). */
#define TUT_COLS 64
typedef struct {
    size_t n, w; /* rows, columns (and row stride) of d */
    const double *d;
    double lr, *b;
} tut_sum;

/* Chunk jb: columns [jb TUT_COLS, (jb + 1) TUT_COLS), or the narrower rest. */
static void row_sum_chunk(void *ctx, size_t jb, size_t slot)
{
    (void)slot;
    const tut_sum *t = (const tut_sum *)ctx;
    size_t j0 = jb * TUT_COLS, w = t->w - j0 < TUT_COLS ? t->w - j0 : TUT_COLS;
    double s[TUT_COLS] = {0};
    af_kern_f64()->rows->colsum(t->n, w, t->d + j0, t->w, s);
    for (size_t j = 0; j < w; j++) t->b[j0 + j] += s[j] * t->lr;
}

static void add_row_sum(size_t n, size_t w, const double *d, double lr, double *b)
{
    size_t nblk = (w + TUT_COLS - 1) / TUT_COLS;
    tut_sum t = {n, w, d, lr, b};
    /* af_pool_run runs a single chunk, or work below the threshold, on this thread directly */
    af_pool_run(row_sum_chunk, &t, nblk, n * w >= 4 * AF_TUT_PAR_MIN ? af_get_num_threads() : 1);
}

/* The weight updates from dO and dH (sums over all rows), in the tutorial's order. */
static af_status update(af_tut_net *net, size_t n, const double *x, const double *ho, double lr,
                        const double *d_out, const double *d_hid)
{
    size_t in = net->n_in, h = net->n_hidden, o = net->n_out;
    af_status s;
    /* W2 += (H^T dO) lr, then b2, W1, b1 */
    if ((s = af_dgemm(1, 0, h, o, n, lr, ho, h, d_out, o, 1.0, net->w2, o)) != AF_OK) return s;
    add_row_sum(n, o, d_out, lr, net->b2);
    if ((s = af_dgemm(1, 0, in, h, n, lr, x, in, d_hid, h, 1.0, net->w1, h)) != AF_OK) return s;
    add_row_sum(n, h, d_hid, lr, net->b1);
    return AF_OK;
}

/* One backward step from H and P of the last forward pass (dH uses W2 before its update). */
static af_status backward(af_tut_net *net, size_t n, const double *x, const double *y,
                          const double *ho, const double *pred, double lr, double *work)
{
    double *d_out = work, *d_hid = work + n * net->n_out;
    /* the deltas of all rows at once (block_deltas only reads H and P) */
    tut_pass t = {net, n, n, 1, x, y, NULL, NULL, (double *)ho, (double *)pred, d_out, d_hid, AF_OK};
    af_status s = block_deltas(&t, 0, n);
    if (s != AF_OK) return s;
    return update(net, n, x, ho, lr, d_out, d_hid);
}

/* ---- a training epoch in pieces ------------------------------------------------------------
 * The rows are cut into a fixed number of pieces (tut_pieces: from the sizes alone, never the
 * thread count). Each piece is one job for annfast's threads (pool.h): its forward pass and
 * deltas (run_rows, serial inside the job), then its own weight and bias gradients (H_p^T dO_p,
 * column sums of dO_p, X_p^T dH_p, column sums of dH_p) while its rows are in that core's cache.
 * The update then adds the pieces' gradients in piece order: W += (G_0 + G_1 + ...) lr. Against
 * one product over all rows, only the order in which the sums over rows are added changes (the
 * tutorial's float64 to a few ulps, like any other blocking of the sum); the bits are the same for
 * any number of threads. Before, each product of an epoch was threaded on its own: the weight
 * gradients then read all of H and dH, half of them from the other core's cache, and 8-16-3 on
 * 64 rows ran on one thread. */
#define TUT_PIECE_ROWS 512
static size_t tut_pieces(const af_tut_net *net, size_t n)
{
    /* Small epochs stay whole: on 8-16-3 x 64 rows (14k multiply-adds) two pieces on two threads
     * took 3.8 us an epoch against 2.9 us whole, the weights and gradients crossing between the
     * cores each epoch; the same 2e6 as run_rows's threads (64-256-10 x 1024 rows: 22e6) */
    double macs = (double)n * ((double)net->n_in * net->n_hidden + 2.0 * net->n_hidden * net->n_out);
    if (n < 2 * TUT_BLOCK_MIN || macs < 2.0e6) return 1;
    size_t p = n / TUT_PIECE_ROWS;
    return p < 2 ? 2 : p > 16 ? 16 : p;
}

/* ---- small networks: the whole epoch in one kernel ---------------------------------------------
 * An epoch that stays whole (tut_pieces), with at most TUT_FUSED_INPUTS inputs, and whose rows,
 * laid out as columns (padded to AF_TUT_LANES), fit in TUT_FUSED_MAX doubles of buffers runs as
 * one kernel of the ISA in use (rows.h tut_ep): 8-16-3 on 64 rows 2.9 -> 2.2 us an epoch, XOR
 * 0.32 -> 0.12 us, 20-20-2 on 200 rows 33 -> 11 us. Wider inputs are left to the products: the
 * kernel's weight gradient ends each of its in x hidden sums with a sum of lanes, which costs
 * more than the vector work when the rows are few (300-8-1 on 16 rows: 4.8 us as products,
 * 5.9 us fused). Every epoch of such a network takes the kernel, the last one (which keeps the
 * forward pass's values) too, so a call's epochs give the same bits however they are split. */
#define TUT_FUSED_MAX 32768
#define TUT_FUSED_INPUTS 128
static size_t tut_np(size_t n) { return (n + AF_TUT_LANES - 1) / AF_TUT_LANES * AF_TUT_LANES; }

/* Doubles of the fused epoch's buffers (xt, yt, ht, ot, dh), or 0 when the epoch is not fused. */
static size_t tut_fused_len(const af_tut_net *net, size_t n)
{
    double len = (double)tut_np(n) * ((double)net->n_in + 2.0 * net->n_out + 2.0 * net->n_hidden);
    if (n == 0 || len > TUT_FUSED_MAX || net->n_in > TUT_FUSED_INPUTS || tut_pieces(net, n) != 1) return 0;
    return (size_t)len;
}

/* Doubles of a piece's gradients: W1, b1, W2, b2 (in that order). */
static size_t grad_len(const af_tut_net *net)
{
    return net->n_in * net->n_hidden + net->n_hidden + net->n_hidden * net->n_out + net->n_out;
}

size_t af_tut_work_size(size_t n_in, size_t n_hidden, size_t n_out, size_t n)
{
    size_t rows, grads, total;
    af_tut_net shape = {n_in, n_hidden, n_out, NULL, NULL, NULL, NULL};
    if (af_mul_size(n, n_hidden + n_out, &rows) || n_hidden + n_out < n_hidden) return 0;
    if (n_in + n_out + 1 <= n_in || af_mul_size(n_in + n_out + 1, n_hidden, &grads) || grads + n_out < grads)
        return 0;
    if (af_mul_size(tut_pieces(&shape, n), grad_len(&shape), &grads)) return 0;
    total = rows + grads;
    if (total < rows) return 0;
    size_t fused = tut_fused_len(&shape, n);
    return fused > total ? fused : total;
}

typedef struct {
    tut_pass all;      /* the whole pass; a piece takes its rows' part */
    size_t pieces;
    double *grads;     /* pieces x grad_len */
    int status;
} tut_pieces_job;

static af_status piece_run(tut_pieces_job *j, size_t p)
{
    const tut_pass *a = &j->all;
    const af_tut_net *net = a->net;
    size_t in = net->n_in, h = net->n_hidden, o = net->n_out;
    size_t r0 = a->n * p / j->pieces, r = a->n * (p + 1) / j->pieces - r0;
    tut_pass t = {net, r, 0, 0, a->x + r0 * in, a->y + r0 * o, a->ha ? a->ha + r0 * h : NULL,
                  a->oa ? a->oa + r0 * o : NULL, a->ho + r0 * h, a->pred + r0 * o,
                  a->d_out + r0 * o, a->d_hid + r0 * h, AF_OK};
    af_status s = run_rows(&t);
    if (s != AF_OK) return s;
    double *gw1 = j->grads + p * grad_len(net), *gb1 = gw1 + in * h, *gw2 = gb1 + h, *gb2 = gw2 + h * o;
    const af_rows_f64 *rows = af_kern_f64()->rows;
    if ((s = af_dgemm(1, 0, h, o, r, 1.0, t.ho, h, t.d_out, o, 0.0, gw2, o)) != AF_OK) return s;
    for (size_t c = 0; c < o; c++) gb2[c] = 0.0;
    rows->colsum(r, o, t.d_out, o, gb2);
    if ((s = af_dgemm(1, 0, in, h, r, 1.0, t.x, in, t.d_hid, h, 0.0, gw1, h)) != AF_OK) return s;
    for (size_t c = 0; c < h; c++) gb1[c] = 0.0;
    rows->colsum(r, h, t.d_hid, h, gb1);
    return AF_OK;
}

static void piece_chunk(void *ctx, size_t p, size_t slot)
{
    (void)slot;
    tut_pieces_job *j = (tut_pieces_job *)ctx;
    af_status s = piece_run(j, p);
    if (s != AF_OK) __atomic_store_n(&j->status, (int)s, __ATOMIC_RELAXED);
}

/* v += (g_0 + g_1 + ... + g_{P-1}) lr over [0, len), g_p = g + p stride: the tutorial's
 * `v += dot(...) * lr` with the dot's sum over rows taken piece by piece. */
static void add_pieces(size_t len, size_t pieces, const double *g, size_t stride, double lr, double *v)
{
    for (size_t i = 0; i < len; i++) {
        double sum = g[i];
        for (size_t p = 1; p < pieces; p++) sum += g[p * stride + i];
        v[i] += sum * lr;
    }
}

/* One training epoch: forward (pre-activations kept when ha != NULL), deltas, updates. */
static af_status epoch(af_tut_net *net, size_t n, const double *x, const double *y, double lr,
                       double *ha, double *ho, double *oa, double *pred, double *work)
{
    double *d_out = work, *d_hid = work + n * net->n_out;
    tut_pass t = {net, n, 0, 0, x, y, ha, oa, ho, pred, d_out, d_hid, AF_OK};
    size_t pieces = tut_pieces(net, n);
    if (pieces == 1) {
        af_status s = run_rows(&t);
        if (s != AF_OK) return s;
        return update(net, n, x, ho, lr, d_out, d_hid);
    }
    tut_pieces_job j = {t, pieces, d_hid + n * net->n_hidden, AF_OK};
    af_pool_run(piece_chunk, &j, pieces, af_get_num_threads());
    if (j.status != AF_OK) return (af_status)j.status;
    /* the tutorial's order: W2, b2, W1, b1 (each from its own gradients: order-free) */
    size_t in = net->n_in, h = net->n_hidden, o = net->n_out, gl = grad_len(net);
    const double *gw1 = j.grads, *gb1 = gw1 + in * h, *gw2 = gb1 + h, *gb2 = gw2 + h * o;
    add_pieces(h * o, pieces, gw2, gl, lr, net->w2);
    add_pieces(o, pieces, gb2, gl, lr, net->b2);
    add_pieces(in * h, pieces, gw1, gl, lr, net->w1);
    add_pieces(h, pieces, gb1, gl, lr, net->b1);
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

/* v (n x w, rows) into vt (w x np, a row per column), zero past n. */
static void tut_columns(const double *v, size_t w, size_t n, size_t np, double *vt)
{
    for (size_t c = 0; c < w; c++) {
        for (size_t i = 0; i < n; i++) vt[c * np + i] = v[i * w + c];
        for (size_t i = n; i < np; i++) vt[c * np + i] = 0.0;
    }
}

/* The fused kernel's arguments over work (tut_fused_len > 0): X and Y laid out as columns, the
 * scratch after them; the forward outputs are set for the last epoch only. */
static af_tut_ep_f64 fused_setup(af_tut_net *net, size_t n, const double *x, const double *y, double lr,
                                 double *work)
{
    size_t np = tut_np(n), ni = net->n_in, nh = net->n_hidden, no = net->n_out;
    af_tut_ep_f64 ep = {n, np, ni, nh, no, work, work + ni * np, net->w1, net->b1, net->w2, net->b2, lr,
                        work + (ni + no) * np, work + (ni + no + nh) * np, work + (ni + 2 * no + nh) * np,
                        NULL, NULL, NULL, NULL};
    tut_columns(x, ni, n, np, work);
    tut_columns(y, no, n, np, work + ni * np);
    return ep;
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
    const int fused = tut_fused_len(net, n) > 0;
    af_tut_ep_f64 ep;
    if (fused) ep = fused_setup(net, n, x, y, lr, work);
    for (size_t e = 0; e < epochs; e++) {
        if (af_stop_requested()) {
            /* the epochs so far kept no pre-activations: leave all four outputs as the forward
             * pass of the weights we stop with (a consistent state for feedforward/backward) */
            if (e > 0 && (s = forward(net, n, x, hidden_act, hidden_out, out_act, pred)) != AF_OK) return s;
            return AF_EINTR;
        }
        /* the pre-activations are kept only from the last epoch, the one the caller sees */
        int keep = e + 1 == epochs;
        if (fused) {
            if (keep) ep.ha = hidden_act, ep.ho = hidden_out, ep.oa = out_act, ep.pred = pred;
            af_kern_f64()->rows->tut_ep(&ep);
            continue;
        }
        s = epoch(net, n, x, y, lr, keep ? hidden_act : NULL, hidden_out, keep ? out_act : NULL, pred,
                  work);
        if (s != AF_OK) return s;
    }
    return AF_OK;
}
