/* engine_impl.h: the passes over a planned graph for one dtype (included twice by engine.c):
 * forward over the nodes in topological order, the losses of the outputs, backward in reverse
 * order (each node ADDS its input gradients into the input nodes' deltas, or writes them when it
 * is the first: graph.c decides), penalties, clipping and the optimiser step; whole epochs,
 * predict, evaluate and exact gradients. Never switches on a layer kind: each node's
 * af_layer_ops does its own work. */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define DT AF_F32
#define OPTIM_STEP af_optim_step_f32
#define CLIP_VALUE af_clip_value_f32
#define CLIP_NORM af_clip_norm_f32
#else
#define DT AF_F64
#define OPTIM_STEP af_optim_step_f64
#define CLIP_VALUE af_clip_value_f64
#define CLIP_NORM af_clip_norm_f64
#endif

/* Bytes of one sample of a tensor of this shape (float type or int32). */
static size_t AF_FN(sample_bytes)(const af_shape *s)
{
    return af_shape_size(s) * (s->elem == AF_ELEM_INT32 ? sizeof(int32_t) : sizeof(T));
}

/* Where each node's output and delta live for this call. Inputs point at the batch data; alias
 * nodes (and, at inference, nodes that are then the identity) at their input's output. With out
 * (predict), an output node that computes its output writes it straight into the caller's array
 * at sample `start` (aliases of it read it there): no copy of the outputs afterwards. */
static void AF_FN(bind_into)(const af_graph *g, af_plan *p, T *ws, const void *const *xin,
                             int training, T *const *out, size_t start)
{
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        const af_node *nd = &g->nodes[i];
        unsigned f = nd->ops->flags;
        if (f & AF_OP_INPUT) {
            size_t k = 0;
            while (p->input_node[k] != i) k++;   /* graph.c checked every input node is listed */
            p->ptr[i] = (void *)xin[k];
        } else if ((f & AF_OP_ALIAS) || ((f & AF_OP_INFER_IDENTITY) && !training)) {
            p->ptr[i] = p->ptr[nd->inputs[0]];
        } else {
            p->ptr[i] = ws + p->out_off[i];
            for (size_t o = 0; out && o < g->n_outputs; o++)
                if (g->outputs[o] == i) {
                    p->ptr[i] = out[o] + start * af_shape_size(&p->info[i].out);
                    break;
                }
        }
        size_t d = p->delta_off[p->delta_root[i]];
        p->dptr[i] = d == SIZE_MAX ? NULL : ws + d;
    }
}

static void AF_FN(bind)(const af_graph *g, af_plan *p, T *ws, const void *const *xin, int training)
{
    AF_FN(bind_into)(g, p, ws, xin, training, NULL, 0);
}

/* The arguments every call of node i shares (plan.h), with the pass's own. */
static void AF_FN(node_args)(const af_graph *g, const af_plan *p, T *ws, size_t i, size_t B,
                             int training, uint64_t step, uint64_t row0, af_op_args *a)
{
    af_node_args(g, p, ws, sizeof(T), i, B, a);
    a->training = training;
    a->step = step;
    a->row0 = row0;
}

/* Does a node with flags f compute anything forward? Inputs and aliases never do; at inference,
 * nodes that are then the identity (dropout) neither. */
static int AF_FN(runs_forward)(unsigned f, int training)
{
    return !((f & (AF_OP_INPUT | AF_OP_ALIAS)) || ((f & AF_OP_INFER_IDENTITY) && !training));
}

/* Forward of node i (bound). phase, sums, part: a piece of a split batch (see af_op_args;
 * AF_SUMS_NONE, NULL, NULL for a whole batch). */
static af_status AF_FN(forward_node)(const af_graph *g, af_plan *p, T *ws, size_t i, size_t B,
                                     int training, int update_stats, uint64_t step, int fused,
                                     uint64_t row0, int phase, double *sums, const double *part,
                                     int forward_only)
{
    af_op_args a;
    AF_FN(node_args)(g, p, ws, i, B, training, step, row0, &a);
    a.update_stats = update_stats;
    a.forward_only = forward_only;
    a.fused_loss = fused && p->fused[i];
    a.sums_phase = phase;
    a.sums = sums;
    a.sums_part = part;
    const af_layer_ops *ops = g->nodes[i].ops;
    if (!af_profiling()) return ops->forward[DT](&a);
    double t0 = af_profile_now();
    af_status s = ops->forward[DT](&a);
    af_profile_add(ops, 0, t0);
    return s;
}

/* Forward pass of B samples (already bound). training: batch statistics (and running-stat
 * update when update_stats) and dropout masks of `step`. fused: outputs whose loss takes logits
 * stop before their final activation. forward_only: no backward pass follows. */
static af_status AF_FN(forward)(const af_graph *g, af_plan *p, T *ws, size_t B, int training,
                                int update_stats, uint64_t step, int fused, uint64_t row0,
                                int forward_only)
{
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        if (!AF_FN(runs_forward)(g->nodes[i].ops->flags, training)) continue;
        af_status s = AF_FN(forward_node)(g, p, ws, i, B, training, update_stats, step, fused, row0,
                                          AF_SUMS_NONE, NULL, NULL, forward_only);
        if (s != AF_OK) return s;
    }
    return AF_OK;
}

/* Does node i run backward? */
static int AF_FN(runs_backward)(const af_graph *g, const af_plan *p, size_t i)
{
    return p->needs_grad[i] && !(g->nodes[i].ops->flags & (AF_OP_INPUT | AF_OP_ALIAS));
}

/* Backward of node i (bound) from its delta; parameter gradient and plain SGD as in backward.
 * phase, sums, part: as forward_node (split batches never use sgd_lr). */
static af_status AF_FN(backward_node)(const af_graph *g, af_plan *p, T *ws, size_t i, size_t B,
                                      int training, uint64_t step, int acc_grads, T sgd_lr,
                                      uint64_t row0, int phase, double *sums, const double *part)
{
    af_op_args a;
    T *P = (T *)g->params, *G = (T *)g->grads;
    const af_node *nd = &g->nodes[i];
    AF_FN(node_args)(g, p, ws, i, B, training, step, row0, &a);
    a.fused_loss = p->fused[i];   /* the passes that run backward always fuse the loss */
    a.dy = p->dptr[i];
    for (size_t k = 0; k < nd->n_inputs; k++) {
        size_t q = i * AF_MAX_INPUTS + k;
        a.dx[k] = p->need_dx[q] ? p->dptr[nd->inputs[k]] : NULL;
        a.dx_acc[k] = p->dx_acc[q];
    }
    a.sums_phase = phase;
    a.sums = sums;
    a.sums_part = part;
    size_t np = p->info[i].n_params, off = nd->param_off;
    int direct = sgd_lr > 0 && (nd->ops->flags & AF_OP_GRAD_ALPHA);
    if (np) {
        a.grad = direct ? P + off : G + off;
        a.grad_alpha = direct ? -(double)sgd_lr : 1.0;
        a.grad_acc = direct || acc_grads || p->grad_acc[i];
    }
    int prof = af_profiling();       /* read once: the same answer before and after the call */
    double t0 = prof ? af_profile_now() : 0;
    af_status s = nd->ops->backward[DT](&a);
    if (prof) af_profile_add(nd->ops, 1, t0);
    if (s != AF_OK) return s;
    if (np && sgd_lr > 0 && !direct) {
        /* p -= lr g for this node's slice (after its input gradient used the old p) */
        T alpha = -sgd_lr;
        for (size_t j = 0; j < np; j++) P[off + j] += alpha * G[off + j];
    }
    return AF_OK;
}

/* Backward pass from the outputs' deltas (written by loss_pass). Parameter gradients are written
 * (acc_grads: added, for chunked exact gradients) into g->grads; sgd_lr > 0 instead applies plain
 * SGD node by node: kinds flagged AF_OP_GRAD_ALPHA update their parameters inside their gradient
 * GEMM (p = p - lr g, after their input gradient used the old p), the others write g and the
 * step follows right after the node. */
static af_status AF_FN(backward)(const af_graph *g, af_plan *p, T *ws, size_t B, int training,
                                 uint64_t step, int acc_grads, T sgd_lr, uint64_t row0)
{
    for (size_t r = p->n_order; r-- > 0;) {
        size_t i = p->order[r];
        if (!AF_FN(runs_backward)(g, p, i)) continue;
        af_status s = AF_FN(backward_node)(g, p, ws, i, B, training, step, acc_grads, sgd_lr, row0,
                                           AF_SUMS_NONE, NULL, NULL);
        if (s != AF_OK) return s;
    }
    return AF_OK;
}

/* Losses of a forward pass of B samples (bound): per output, per-row loss / accuracy / squared
 * error summed in row order into *sums, a sample's value being the mean over its rows. w: the
 * batch's sample weights (NULL: all 1) weight the losses (not the accuracy and squared error).
 * With den > 0 each output's delta gets weight / (den x rows per sample) * w_b * dLoss/dout: the
 * gradient of sum_b w_b loss_b / den. Adds the batch's summed weighted loss to *lsum. */
static af_status AF_FN(loss_pass)(const af_graph *g, af_plan *p, T *ws, size_t B,
                                  const T *const *y, const T *w, int fused, double den,
                                  double *lsum, af_epoch_stats *sums)
{
    double total = 0;
    for (size_t o = 0; o < g->n_outputs; o++) {
        size_t i = g->outputs[o];
        const af_shape *sh = &p->info[i].out;
        size_t n = af_shape_last(sh), per = af_shape_size(sh) / n, rows = B * per;
        size_t ycols = g->losses[o] == AF_LOSS_SCCE ? 1 : n, cap = p->max_batch * per;
        T *rl = ws + p->rows_off, *ra = rl + cap, *rs = ra + cap;
        T scale = 0, *grad = den > 0 ? (T *)p->dptr[i] : NULL;
        if (grad) {
            scale = (T)1 / (T)(den * (double)per);
            if (g->loss_weights[o] != 1.0) scale *= (T)g->loss_weights[o];
        }
        af_status s = AF_FN(af_loss_rows)(g->losses[o], fused && p->fused[i], rows, n,
                                          (const T *)p->ptr[i], n, y[o], ycols, scale, grad, n,
                                          rl, ra, rs);
        if (s != AF_OK) return s;
        if (w) {
            /* l_b <- w_b l_b; dLoss/dout rows of sample b <- w_b (...) */
            for (size_t q = 0; q < rows; q++) {
                T wq = w[q / per];
                rl[q] *= wq;
                if (grad)
                    for (size_t j = 0; j < n; j++) grad[q * n + j] *= wq;
            }
        }
        double ls = 0, cs = 0, es = 0;
        if (per == 1) {
            for (size_t b = 0; b < B; b++) { ls += rl[b]; cs += ra[b]; es += rs[b]; }
        } else {
            for (size_t b = 0; b < B; b++) {
                double l = 0, c = 0;
                for (size_t q = b * per; q < (b + 1) * per; q++) { l += rl[q]; c += ra[q]; es += rs[q]; }
                ls += l / (double)per;
                cs += c / (double)per;
            }
        }
        if (sums) {
            sums->out_loss[o] += ls;
            sums->correct[o] += cs;
            sums->sse[o] += es;
        }
        total += g->loss_weights[o] == 1.0 ? ls : g->loss_weights[o] * ls;
    }
    *lsum += total;
    return AF_OK;
}

/* Sum of n sample weights (in order), or n when there are none. */
static double AF_FN(weight_sum)(const T *w, size_t n)
{
    if (!w) return (double)n;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)w[i];
    return s;
}

/* The loss denominator and the penalty's factor for a batch of B samples (weights w) drawn at
 * nominal batch size `nominal`: Keras's normalisation divides by B (factor 1); scikit-learn's by
 * the weight sum, its penalty too: factor nominal / sum w, with the penalty coefficient set for
 * the nominal batch (scikit-learn's alpha / (2 nominal)), so the whole objective is over the
 * weight sum, the last, smaller batch included. A batch of zero total weight contributes
 * nothing (its gradient is 0). */
static double AF_FN(batch_den)(const af_data *d, const T *w, size_t B, size_t nominal,
                               double *pen_factor)
{
    double den = (double)B;
    *pen_factor = 1.0;
    if (w && d->sw_norm == AF_SW_SUM) {
        double sum = AF_FN(weight_sum)(w, B);
        if (sum > 0) {
            den = sum;
            *pen_factor = (double)nominal / sum;
        }
    }
    return den;
}

/* l1 |w| + l2 w^2 summed over w[a, b) in AF_SUM_LANES interleaved partial sums (entry k into
 * lane (k - a) % AF_SUM_LANES), added in lane order: a fixed order the compiler can vectorise.
 * With l1 == 0 (scikit-learn's alpha) the same sums without the terms 0 |w| (finite weights). */
static T AF_FN(pen_value)(const T *w, size_t a, size_t b, T l1, T l2)
{
    /* the lanes as one vector of the compiler's (GCC/Clang vector extension): written as an
     * array, GCC interleaved and shuffled them (2.4 us a step for 4810 weights) */
    typedef T lanes_t __attribute__((vector_size(AF_SUM_LANES * sizeof(T))));
    lanes_t acc = {0};
    T s = 0;
    size_t k = a;
    if (l1 == 0) {
        for (; k + AF_SUM_LANES <= b; k += AF_SUM_LANES) {
            lanes_t x;
            memcpy(&x, w + k, sizeof x);
            acc += l2 * x * x;
        }
    } else {
        for (; k + AF_SUM_LANES <= b; k += AF_SUM_LANES)
            for (size_t q = 0; q < AF_SUM_LANES; q++) acc[q] += l1 * FABS(w[k + q]) + l2 * w[k + q] * w[k + q];
    }
    for (size_t q = 0; k + q < b; q++) acc[q] += l1 * FABS(w[k + q]) + l2 * w[k + q] * w[k + q];
    for (size_t q = 0; q < AF_SUM_LANES; q++) s += acc[q];
    return s;
}

/* gr[a, b) += f (l1 sign(w) + 2 l2 w); f == 1 (every unweighted batch) without the multiply. */
static void AF_FN(pen_grad)(const T *w, T *gr, size_t a, size_t b, T l1, T l2, T f)
{
    if (f == (T)1)
        for (size_t k = a; k < b; k++) {
            T wi = w[k], sg = (T)((wi > 0) - (wi < 0));
            gr[k] += l1 * sg + (T)2 * l2 * wi;
        }
    else
        for (size_t k = a; k < b; k++) {
            T wi = w[k], sg = (T)((wi > 0) - (wi < 0));
            gr[k] += f * (l1 * sg + (T)2 * l2 * wi);
        }
}

/* One node's penalty as a pool job: chunk ch sums its AF_SUM_CHUNK weights' penalty into
 * part[ch] (pen_value) and, when grad, adds f (l1 sign(w) + 2 l2 w) to the gradient. */
typedef struct {
    const T *w;
    T *gr, *part;
    T l1, l2, f;
    size_t len;
    int grad;
} AF_FN(pen_job);

static void AF_FN(pen_chunk)(void *ctx, size_t ch, size_t slot)
{
    (void)slot;
    const AF_FN(pen_job) *j = (const AF_FN(pen_job) *)ctx;
    size_t i0 = ch * AF_SUM_CHUNK, i1 = i0 + AF_SUM_CHUNK < j->len ? i0 + AF_SUM_CHUNK : j->len;
    j->part[ch] = AF_FN(pen_value)(j->w, i0, i1, j->l1, j->l2);
    if (j->grad) AF_FN(pen_grad)(j->w, j->gr, i0, i1, j->l1, j->l2, j->f);
}

/* L1/L2 penalties: returns sum over nodes of l1 |W| + l2 W^2 over each node's penalised range
 * and, when grad, adds l1 sign(W) + 2 l2 W to the gradient. Fixed chunks of AF_SUM_CHUNK
 * weights (pen_chunk), on the pool's threads from AF_PAR_MIN weights; the chunk sums are then
 * added in order (thread-count independent). Below that, the chunks run on this thread (an
 * OpenMP region here cost every step of a small regularised network, scikit-learn's default). */
static double AF_FN(penalty)(const af_graph *g, const af_plan *p, T *ws, int grad, double factor)
{
    T *part = ws + p->part_off;
    double total = 0;
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        const af_node_info *inf = &p->info[i];
        if (!inf->pen_len || (inf->l1 == 0 && inf->l2 == 0)) continue;
        size_t len = inf->pen_len, nch = (len + AF_SUM_CHUNK - 1) / AF_SUM_CHUNK;
        size_t off = g->nodes[i].param_off + inf->pen_off;
        AF_FN(pen_job) job = {(const T *)g->params + off, (T *)g->grads + off, part, (T)inf->l1, (T)inf->l2,
                              (T)factor, len, grad};
        af_pool_run(AF_FN(pen_chunk), &job, nch, len >= AF_PAR_MIN ? af_get_num_threads() : 1);
        for (size_t ch = 0; ch < nch; ch++) total += (double)part[ch];
    }
    return total * factor;
}

static int AF_FN(has_penalty)(const af_plan *p)
{
    for (size_t r = 0; r < p->n_order; r++) {
        const af_node_info *inf = &p->info[p->order[r]];
        if (inf->pen_len && (inf->l1 > 0 || inf->l2 > 0)) return 1;
    }
    return 0;
}

/* Gradient clipping over the flat gradient: by global L2 norm, then by value. */
static af_status AF_FN(clip)(const af_graph *g, T *gr)
{
    af_status s = AF_OK;
    /* g <- g * clipnorm / ||g|| when ||g|| > clipnorm */
    if (g->clipnorm > 0 && (s = CLIP_NORM(g->n_params, gr, g->clipnorm, NULL)) != AF_OK) return s;
    if (g->clipvalue > 0) s = CLIP_VALUE(g->n_params, gr, (T)g->clipvalue);
    return s;
}

/* Checks the data of a call: pointers present and every size computable without overflow. */
static af_status AF_FN(check_data)(const af_graph *g, const af_plan *p, const af_data *d,
                                   int need_y)
{
    size_t t;
    if (!d) return AF_EINVAL;
    for (size_t k = 0; k < g->n_inputs; k++)
        if (!d->x[k] || af_mul_size(d->n, AF_FN(sample_bytes)(&p->info[g->inputs[k]].out), &t))
            return d->x[k] ? AF_ESHAPE : AF_EINVAL;
    if (d->sw) {
        if (d->sw_norm != AF_SW_BATCH && d->sw_norm != AF_SW_SUM) return AF_EINVAL;
        for (size_t i = 0; i < d->n; i++) {
            T v = ((const T *)d->sw)[i];
            if (!(v >= 0 && v - v == 0)) return AF_EINVAL;
        }
    }
    if (need_y)
        for (size_t o = 0; o < g->n_outputs; o++) {
            af_shape ts;
            af_plan_target_shape(p, o, &ts);
            if (!d->y[o]) return AF_EINVAL;
            if (af_mul_size(d->n, af_shape_size(&ts) * sizeof(T), &t)) return AF_ESHAPE;
        }
    return AF_OK;
}

/* The plan must be for this graph's dtype and the workspace big enough. */
static af_status AF_FN(check_call)(const af_graph *g, const af_plan *p, const T *ws, size_t ws_len)
{
    if (!g || !p || p->dtype != DT || p->n_nodes != g->n_nodes) return AF_EINVAL;
    if (!ws || ws_len < p->ws_len) return AF_ESHAPE;
    return AF_OK;
}

/* Pointers to rows [start, start + B) of every input and target (storage order). */
static const T *AF_FN(slice_rows)(const af_graph *g, const af_plan *p, const af_data *d,
                                  size_t start, const void **xs, const T **ys)
{
    for (size_t k = 0; k < g->n_inputs; k++)
        xs[k] = (const char *)d->x[k] + start * AF_FN(sample_bytes)(&p->info[g->inputs[k]].out);
    for (size_t o = 0; o < g->n_outputs && ys; o++) {
        af_shape ts;
        af_plan_target_shape(p, o, &ts);
        ys[o] = d->y[o] ? (const T *)d->y[o] + start * af_shape_size(&ts) : NULL;
    }
    return d->sw ? (const T *)d->sw + start : NULL;
}

/* A batch gather as a pool job: chunk t copies rows [B t / nch, B (t + 1) / nch). */
typedef struct {
    const af_graph *g;
    const af_plan *p;
    T *ws;
    const af_data *d;
    const uint64_t *idx;
    const size_t *xbytes, *ylen;
    size_t B, nch;
} AF_FN(gather_job);

static void AF_FN(gather_chunk)(void *ctx, size_t t, size_t slot)
{
    (void)slot;
    const AF_FN(gather_job) *j = (const AF_FN(gather_job) *)ctx;
    const af_graph *g = j->g;
    const af_plan *p = j->p;
    for (size_t i = j->B * t / j->nch; i < j->B * (t + 1) / j->nch; i++) {
        for (size_t k = 0; k < g->n_inputs; k++)
            memcpy((char *)(j->ws + p->xb_off[k]) + i * j->xbytes[k],
                   (const char *)j->d->x[k] + j->idx[i] * j->xbytes[k], j->xbytes[k]);
        for (size_t o = 0; o < g->n_outputs; o++)
            memcpy(j->ws + p->yb_off[o] + i * j->ylen[o], (const T *)j->d->y[o] + j->idx[i] * j->ylen[o],
                   j->ylen[o] * sizeof(T));
    }
}

/* Copies the B rows idx[0..B) of every input and target into the batch buffers. Random rows of
 * a large x are memory-latency-bound: two threads halve the wait. On annfast's pool, like the
 * products around it (an OpenMP team here woke threads of its own next to the pool's, on the
 * same cores, every step). Small batches use one thread. */
static const T *AF_FN(gather_rows)(const af_graph *g, const af_plan *p, T *ws, const af_data *d,
                                   size_t B, const uint64_t *idx, const void **xs, const T **ys)
{
    size_t xbytes[AF_MAX_IO], ylen[AF_MAX_IO], total = 0;
    for (size_t k = 0; k < g->n_inputs; k++) {
        xbytes[k] = AF_FN(sample_bytes)(&p->info[g->inputs[k]].out);
        xs[k] = ws + p->xb_off[k];
        total += xbytes[k] / sizeof(T);
    }
    for (size_t o = 0; o < g->n_outputs; o++) {
        af_shape ts;
        af_plan_target_shape(p, o, &ts);
        ylen[o] = af_shape_size(&ts);
        ys[o] = ws + p->yb_off[o];
    }
    int nt = B * total >= AF_PAR_MIN_GATHER ? af_get_num_threads() : 1;
    AF_FN(gather_job) job = {g, p, ws, d, idx, xbytes, ylen, B, (size_t)nt};
    af_pool_run(AF_FN(gather_chunk), &job, job.nch, nt);
    if (!d->sw) return NULL;
    T *w = ws + p->sw_off;
    for (size_t i = 0; i < B; i++) w[i] = ((const T *)d->sw)[idx[i]];
    return w;
}

/* One step of af_graph_train_epoch on B rows from `start` (through `perm` when given). */
static af_status AF_FN(train_step)(const af_graph *g, af_plan *p, T *ws, const af_data *d,
                                   const uint64_t *perm, size_t start, size_t B, size_t batch,
                                   const af_optim *opt, T *opt_state, int plain_sgd, uint64_t *step,
                                   af_epoch_stats *out)
{
    const void *xs[AF_MAX_IO];
    const T *ys[AF_MAX_IO];
    af_status s;
    const T *w = perm ? AF_FN(gather_rows)(g, p, ws, d, B, perm, xs, ys) : AF_FN(slice_rows)(g, p, d, start, xs, ys);
    double pen_factor, den = AF_FN(batch_den)(d, w, B, batch, &pen_factor);
    uint64_t t = *step + 1;
    double lsum = 0;
    AF_FN(bind)(g, p, ws, xs, 1);
    /* forward, losses and dLoss/dout (mean over the batch), backward */
    if ((s = AF_FN(forward)(g, p, ws, B, 1, 1, t, 1, 0, 0)) != AF_OK) return s;
    if ((s = AF_FN(loss_pass)(g, p, ws, B, ys, w, 1, den, &lsum, out)) != AF_OK) return s;
    if (den != (double)B) lsum *= (double)B / den;   /* B times the batch's loss */
    if (plain_sgd) {
        if ((s = AF_FN(backward)(g, p, ws, B, 1, t, 0, (T)opt->lr, 0)) != AF_OK) return s;
    } else {
        if ((s = AF_FN(backward)(g, p, ws, B, 1, t, 0, 0, 0)) != AF_OK) return s;
        /* + L1/L2 penalty (value and gradient), clipping, one fused optimiser update */
        lsum += (double)B * AF_FN(penalty)(g, p, ws, 1, pen_factor);
        if ((s = AF_FN(clip)(g, (T *)g->grads)) != AF_OK) return s;
        if ((s = OPTIM_STEP(opt, g->n_params, (T *)g->params, (const T *)g->grads, opt_state, t)) != AF_OK)
            return s;
    }
    *step = t;
    out->loss_sum += lsum;
    out->n_seen += B;
    out->n_batches++;
    return AF_OK;
}

af_status AF_FN(af_graph_train_epoch)(const af_graph *g, af_plan *p, T *ws, size_t ws_len,
                                      const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                      T *opt_state, uint64_t *step, af_epoch_stats *out)
{
    AF_FP_SCOPE();
    af_status s = AF_FN(check_call)(g, p, ws, ws_len);
    if (s != AF_OK) return s;
    if (!e || !opt || !step || !out || e->batch == 0 || e->batch > p->max_batch) return AF_EINVAL;
    memset(out, 0, sizeof *out);
    if ((s = af_optim_check(opt)) != AF_OK) return s;
    int slots = af_optim_slots_used(opt);
    if (slots < 0) return AF_EINVAL;
    if (slots > 0 && g->n_params && !opt_state) return AF_EINVAL;
    if ((s = AF_FN(check_data)(g, p, d, 1)) != AF_OK) return s;
    size_t n = d->n, batch = e->batch;
    if (n == 0) return AF_OK;
    if ((unsigned)e->order > AF_ORDER_GIVEN || (e->order && !e->perm)) return AF_EINVAL;
    if (e->order == AF_ORDER_GIVEN)
        for (size_t i = 0; i < n; i++)
            if (e->perm[i] >= n) return AF_EINVAL;
    size_t start0;
    if (af_mul_size(e->first_batch, batch, &start0)) return AF_ESHAPE;
    if (e->order == AF_ORDER_SHUFFLE && e->first_batch == 0) af_shuffle_order(g->seed, e->shuffle_key, n, e->perm);
    /* Plain SGD (no momentum, weight decay, clipping, penalties or shared weights) is fused into
     * the backward pass: the same update p - lr g, without writing g out or a separate pass. */
    int plain_sgd = opt->kind == AF_OPT_SGD && opt->momentum == 0 && opt->weight_decay == 0 &&
                    opt->lr > 0 && g->clipnorm == 0 && g->clipvalue == 0 && !AF_FN(has_penalty)(p) &&
                    !p->shared_params && !g->reduce;
    /* each step on all threads or, where timing finds it faster, on this one alone, kernels
     * included (tune.h, as the cut steps of engine_split_impl.h): the same bits either way */
    static _Thread_local af_tune tune;
    const int nt = af_get_num_threads();
    for (size_t start = start0, nb = 0; start < n && nb < e->max_batches; start += batch, nb++) {
        if (af_stop_requested()) return AF_EINTR;
        size_t B = n - start < batch ? n - start : batch;
        af_tune_call tc = af_tune_begin(&tune, nt, (uintptr_t)g->params, B);
        s = AF_FN(train_step)(g, p, ws, d, e->order ? e->perm + start : NULL, start, B, batch,
                              opt, opt_state, plain_sgd, step, out);
        af_tune_end(&tune, &tc);
        if (s != AF_OK) return s;
    }
    return AF_OK;
}

af_status AF_FN(af_graph_predict)(const af_graph *g, af_plan *p, T *ws, size_t ws_len,
                                  const af_data *d, T *const *out)
{
    AF_FP_SCOPE();
    af_status s = AF_FN(check_call)(g, p, ws, ws_len);
    if (s != AF_OK) return s;
    if ((s = AF_FN(check_data)(g, p, d, 0)) != AF_OK) return s;
    if (!out) return AF_EINVAL;
    for (size_t o = 0; o < g->n_outputs; o++)
        if (!out[o] && d->n) return AF_EINVAL;
    const void *xs[AF_MAX_IO];
    for (size_t start = 0; start < d->n; start += p->max_batch) {
        size_t B = d->n - start < p->max_batch ? d->n - start : p->max_batch;
        (void)AF_FN(slice_rows)(g, p, d, start, xs, NULL);
        AF_FN(bind_into)(g, p, ws, xs, 0, out, start);
        if ((s = AF_FN(forward)(g, p, ws, B, 0, 0, 0, 0, start, 1)) != AF_OK) return s;
        /* outputs that are inputs, aliases or (at inference) identities of other nodes' */
        for (size_t o = 0; o < g->n_outputs; o++) {
            size_t len = af_shape_size(&p->info[g->outputs[o]].out);
            if ((const T *)p->ptr[g->outputs[o]] != out[o] + start * len)
                memcpy(out[o] + start * len, p->ptr[g->outputs[o]], B * len * sizeof(T));
        }
    }
    return AF_OK;
}

af_status AF_FN(af_graph_evaluate)(const af_graph *g, af_plan *p, T *ws, size_t ws_len,
                                   const af_data *d, double *loss, af_epoch_stats *sums)
{
    AF_FP_SCOPE();
    af_status s = AF_FN(check_call)(g, p, ws, ws_len);
    if (s != AF_OK) return s;
    if (!loss || !d || d->n == 0) return AF_EINVAL;
    if ((s = AF_FN(check_data)(g, p, d, 1)) != AF_OK) return s;
    af_epoch_stats local;
    if (!sums) sums = &local;
    memset(sums, 0, sizeof *sums);
    const void *xs[AF_MAX_IO];
    const T *ys[AF_MAX_IO];
    double lsum = 0;
    for (size_t start = 0; start < d->n; start += p->max_batch) {
        size_t B = d->n - start < p->max_batch ? d->n - start : p->max_batch;
        const T *w = AF_FN(slice_rows)(g, p, d, start, xs, ys);
        AF_FN(bind)(g, p, ws, xs, 0);
        if ((s = AF_FN(forward)(g, p, ws, B, 0, 0, 0, 1, start, 1)) != AF_OK) return s;
        if ((s = AF_FN(loss_pass)(g, p, ws, B, ys, w, 1, 0, &lsum, sums)) != AF_OK) return s;
    }
    double pen_factor, den = AF_FN(batch_den)(d, (const T *)d->sw, d->n, d->n, &pen_factor);
    sums->n_seen = d->n;
    sums->loss_sum = lsum;
    *loss = lsum / den + AF_FN(penalty)(g, p, ws, 0, pen_factor);
    return AF_OK;
}

af_status AF_FN(af_graph_gradients)(const af_graph *g, af_plan *p, T *ws, size_t ws_len,
                                    const af_data *d, int training, uint64_t step, double *loss)
{
    AF_FP_SCOPE();
    af_status s = AF_FN(check_call)(g, p, ws, ws_len);
    if (s != AF_OK) return s;
    if (!loss || !d || d->n == 0) return AF_EINVAL;
    if ((s = AF_FN(check_data)(g, p, d, 1)) != AF_OK) return s;
    if (training && d->n > p->max_batch) return AF_ESHAPE;
    const void *xs[AF_MAX_IO];
    const T *ys[AF_MAX_IO];
    double lsum = 0, pen_factor, den = AF_FN(batch_den)(d, (const T *)d->sw, d->n, d->n, &pen_factor);
    /* d(mean loss)/dout = (w_i/den) dL_i/dout per sample; chunks add into the gradient */
    for (size_t start = 0; start < d->n; start += p->max_batch) {
        size_t B = d->n - start < p->max_batch ? d->n - start : p->max_batch;
        const T *w = AF_FN(slice_rows)(g, p, d, start, xs, ys);
        AF_FN(bind)(g, p, ws, xs, training);
        if ((s = AF_FN(forward)(g, p, ws, B, training, 0, step, 1, start, 0)) != AF_OK) return s;
        if ((s = AF_FN(loss_pass)(g, p, ws, B, ys, w, 1, den, &lsum, NULL)) != AF_OK) return s;
        if ((s = AF_FN(backward)(g, p, ws, B, training, step, start > 0, 0, start)) != AF_OK) return s;
    }
    *loss = lsum / den + AF_FN(penalty)(g, p, ws, 1, pen_factor);
    return AF_OK;
}

#undef DT
#undef OPTIM_STEP
#undef CLIP_VALUE
#undef CLIP_NORM
#include "dtype_end.h"
