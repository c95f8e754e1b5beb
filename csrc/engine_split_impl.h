/* engine_split_impl.h: training over split batches (split.h) for one dtype, included twice by
 * engine.c after engine_impl.h, whose node passes (bind, forward_node, backward_node, loss_pass,
 * penalty, clip, gather_rows) it drives piece by piece. Never switches on a layer kind: a node
 * with cross-sample sums is recognised by its planned sizes.sums only. */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define DT AF_F32
#define OPTIM_STEP af_optim_step_f32
#define OPTIM_PREPARE af_optim_prepare_f32
#define OPTIM_RANGE af_optim_range_f32
#else
#define DT AF_F64
#define OPTIM_STEP af_optim_step_f64
#define OPTIM_PREPARE af_optim_prepare_f64
#define OPTIM_RANGE af_optim_range_f64
#endif

/* What a step knows about the caller's pieces. k is a local index: piece first + k. */
typedef struct {
    const af_graph *g;
    af_plan *p;
    const af_split *sp;
    const af_data *d;
    const af_epoch_args *e;
    size_t start, Bg;              /* the global batch: rows start .. start + Bg of the order */
    double den, pen_factor;        /* its loss denominator and penalty factor (batch_den) */
    uint64_t t;                    /* 1-based optimiser step */
    size_t L;                      /* af_split_sums_len */
    af_plan *views;                /* a plan view per piece when pieces run at once, else NULL */
    af_status *st;                 /* their statuses */
    double *pen_part;              /* the penalty's value per block of AF_UPD_BLOCK parameters */
} AF_FN(split_ctx);

static T *AF_FN(piece_ws)(const AF_FN(split_ctx) *c, size_t k) { return (T *)c->sp->ws[k]; }

/* The graph as piece k sees it: its own gradient buffer. */
static af_graph AF_FN(piece_graph)(const AF_FN(split_ctx) *c, size_t k)
{
    af_graph gk = *c->g;
    if (k > 0) gk.grads = c->sp->grads[k - 1];
    return gk;
}

/* Piece k's plan: its own view when pieces run at once (each binds its own pointers, plan.h),
 * else the shared one. */
static af_plan *AF_FN(piece_plan)(const AF_FN(split_ctx) *c, size_t k)
{
    return c->views ? &c->views[k] : c->p;
}

static void AF_FN(piece_rows)(const AF_FN(split_ctx) *c, size_t k, size_t *lo, size_t *B)
{
    size_t hi;
    af_split_piece(c->Bg, c->sp->parts, c->sp->first + k, lo, &hi);
    *B = hi - *lo;
}

/* Points the plan at piece k's data and workspace (gathered rows are in the workspace already);
 * with ys, its targets, and its sample weights (NULL: none) into *w. */
static void AF_FN(bind_piece)(const AF_FN(split_ctx) *c, size_t k, const T **ys, const T **w)
{
    const void *xs[AF_MAX_IO];
    const T *yl[AF_MAX_IO];
    size_t lo, B;
    T *ws = AF_FN(piece_ws)(c, k);
    af_plan *p = AF_FN(piece_plan)(c, k);
    AF_FN(piece_rows)(c, k, &lo, &B);
    const T *wl;
    if (c->e->order) {
        for (size_t i = 0; i < c->g->n_inputs; i++) xs[i] = ws + p->xb_off[i];
        for (size_t o = 0; o < c->g->n_outputs; o++) yl[o] = ws + p->yb_off[o];
        wl = c->d->sw ? ws + p->sw_off : NULL;
    } else {
        wl = AF_FN(slice_rows)(c->g, p, c->d, c->start + lo, xs, yl);
    }
    AF_FN(bind)(c->g, p, ws, xs, 1);
    if (ys)
        for (size_t o = 0; o < c->g->n_outputs; o++) ys[o] = yl[o];
    if (w) *w = wl;
}

/* The global batch's loss denominator and penalty factor, as batch_den computes them for one
 * process: the weight sum is taken over the batch's rows in order from the full weight array
 * (every caller holds all of it), so every process and piece count gets the same values. */
static void AF_FN(split_den)(AF_FN(split_ctx) *c)
{
    const af_data *d = c->d;
    c->den = (double)c->Bg;
    c->pen_factor = 1.0;
    if (!d->sw || d->sw_norm != AF_SW_SUM) return;
    const T *w = (const T *)d->sw;
    double sum = 0;
    for (size_t i = 0; i < c->Bg; i++)
        sum += (double)w[c->e->order ? c->e->perm[c->start + i] : c->start + i];
    if (sum > 0) {
        c->den = sum;
        c->pen_factor = (double)c->e->batch / sum;
    }
}

/* A node's n sums over the whole batch: every piece's partial summed in piece order into slot
 * 0, then over processes. */
static af_status AF_FN(total_sums)(const AF_FN(split_ctx) *c, size_t n)
{
    double *tot = c->sp->sums;
    memset(tot, 0, n * sizeof *tot);
    for (size_t k = 0; k < c->sp->count; k++) {
        const double *part = c->sp->sums + (k + 1) * c->L;
        for (size_t j = 0; j < n; j++) tot[j] += part[j];
    }
    return c->g->reduce ? c->g->reduce(c->g->reduce_ctx, tot, n, AF_F64) : AF_OK;
}

/* Node i of every piece in two phases around total_sums (backward when `back`). Empty pieces
 * (a batch smaller than the number of pieces) take part with B = 0: zero partial sums, and the
 * TOTAL call, where the last piece updates the running statistics after every piece read them. */
static af_status AF_FN(sums_node)(const AF_FN(split_ctx) *c, size_t i, int back)
{
    size_t n = c->p->sz[i].sums, lo, B;
    af_status s;
    for (int phase = AF_SUMS_PARTIAL; phase <= AF_SUMS_TOTAL; phase++) {
        for (size_t k = 0; k < c->sp->count; k++) {
            double *part = c->sp->sums + (k + 1) * c->L;
            double *arg = phase == AF_SUMS_PARTIAL ? part : c->sp->sums;
            const double *own = phase == AF_SUMS_PARTIAL ? NULL : part;
            af_graph gk = AF_FN(piece_graph)(c, k);
            AF_FN(piece_rows)(c, k, &lo, &B);
            AF_FN(bind_piece)(c, k, NULL, NULL);
            if (back)
                s = AF_FN(backward_node)(&gk, c->p, AF_FN(piece_ws)(c, k), i, B, 1, c->t, 0, 0, lo,
                                         phase, arg, own);
            else
                s = AF_FN(forward_node)(&gk, c->p, AF_FN(piece_ws)(c, k), i, B, 1,
                                        k + 1 == c->sp->count, c->t, 1, lo, phase, arg, own, 0);
            if (s != AF_OK) return s;
        }
        if (phase == AF_SUMS_PARTIAL && (s = AF_FN(total_sums)(c, n)) != AF_OK) return s;
    }
    return AF_OK;
}

/* Is the node at position r of the order one whose training pass sums over samples? */
static int AF_FN(has_sums)(const AF_FN(split_ctx) *c, size_t r, int back)
{
    size_t i = c->p->order[r];
    if (!c->p->sz[i].sums) return 0;
    return back ? AF_FN(runs_backward)(c->g, c->p, i)
                : AF_FN(runs_forward)(c->g->nodes[i].ops->flags, 1);
}

/* Forward of every piece, node by node between the nodes with sums (which need all pieces'
 * partial sums before any piece can go on). */
static af_status AF_FN(split_forward)(const AF_FN(split_ctx) *c)
{
    size_t n_order = c->p->n_order, lo, B;
    af_status s;
    for (size_t r = 0; r < n_order;) {
        size_t r1 = r;
        while (r1 < n_order && !AF_FN(has_sums)(c, r1, 0)) r1++;
        for (size_t k = 0; k < c->sp->count; k++) {
            AF_FN(piece_rows)(c, k, &lo, &B);
            if (!B || r1 == r) continue;
            AF_FN(bind_piece)(c, k, NULL, NULL);
            for (size_t q = r; q < r1; q++) {
                size_t i = c->p->order[q];
                if (!AF_FN(runs_forward)(c->g->nodes[i].ops->flags, 1)) continue;
                s = AF_FN(forward_node)(c->g, c->p, AF_FN(piece_ws)(c, k), i, B, 1, 1, c->t, 1, lo,
                                        AF_SUMS_NONE, NULL, NULL, 0);
                if (s != AF_OK) return s;
            }
        }
        if (r1 == n_order) break;
        if ((s = AF_FN(sums_node)(c, c->p->order[r1], 0)) != AF_OK) return s;
        r = r1 + 1;
    }
    return AF_OK;
}

/* Backward of every piece in reverse order, each into its own gradient buffer (an empty piece's
 * gradient is zero), segmented like split_forward. */
static af_status AF_FN(split_backward)(const AF_FN(split_ctx) *c)
{
    size_t lo, B;
    af_status s;
    for (size_t r = c->p->n_order; r > 0;) {
        size_t r0 = r;   /* positions [r0, r) hold no node with sums */
        while (r0 > 0 && !AF_FN(has_sums)(c, r0 - 1, 1)) r0--;
        for (size_t k = 0; k < c->sp->count; k++) {
            AF_FN(piece_rows)(c, k, &lo, &B);
            if (!B || r0 == r) continue;
            af_graph gk = AF_FN(piece_graph)(c, k);
            AF_FN(bind_piece)(c, k, NULL, NULL);
            for (size_t q = r; q-- > r0;) {
                size_t i = c->p->order[q];
                if (!AF_FN(runs_backward)(c->g, c->p, i)) continue;
                s = AF_FN(backward_node)(&gk, c->p, AF_FN(piece_ws)(c, k), i, B, 1, c->t, 0, 0, lo,
                                         AF_SUMS_NONE, NULL, NULL);
                if (s != AF_OK) return s;
            }
        }
        if (r0 == 0) break;
        if ((s = AF_FN(sums_node)(c, c->p->order[r0 - 1], 1)) != AF_OK) return s;
        r = r0 - 1;
    }
    return AF_OK;
}

/* The whole pass of piece k when no node sums over samples: its rows gathered, forward, loss and
 * backward into its own gradient buffer, on its own plan view and workspace. Nothing is shared
 * with another piece, so the pieces run at once on annfast's threads (kernels inside run
 * serially, pool.h), and each computes what split_forward / split_backward compute for it. */
static af_status AF_FN(piece_pass)(const AF_FN(split_ctx) *c, size_t k)
{
    size_t lo, B;
    AF_FN(piece_rows)(c, k, &lo, &B);
    af_graph gk = AF_FN(piece_graph)(c, k);
    if (!B) {
        if (gk.n_params) memset(gk.grads, 0, gk.n_params * sizeof(T));
        return AF_OK;
    }
    af_plan *p = AF_FN(piece_plan)(c, k);
    T *ws = AF_FN(piece_ws)(c, k);
    const void *xs[AF_MAX_IO];
    const T *ys[AF_MAX_IO], *w;
    if (c->e->order)
        (void)AF_FN(gather_rows)(&gk, p, ws, c->d, B, c->e->perm + c->start + lo, xs, ys);
    AF_FN(bind_piece)(c, k, ys, &w);
    af_status s = AF_FN(forward)(&gk, p, ws, B, 1, 1, c->t, 1, lo, 0);
    if (s != AF_OK) return s;
    double lsum = 0;
    if ((s = AF_FN(loss_pass)(&gk, p, ws, B, ys, w, 1, c->den, &lsum, &c->sp->stats[k])) != AF_OK)
        return s;
    if (c->den != (double)c->Bg) lsum *= (double)c->Bg / c->den;   /* as split_step */
    c->sp->stats[k].loss_sum += lsum;
    c->sp->stats[k].n_seen += B;
    return AF_FN(backward)(&gk, p, ws, B, 1, c->t, 0, 0, lo);
}

static void AF_FN(piece_chunk)(void *ctx, size_t k, size_t slot)
{
    (void)slot;
    const AF_FN(split_ctx) *c = (const AF_FN(split_ctx) *)ctx;
    c->st[k] = AF_FN(piece_pass)(c, k);
}

/* Every piece's pass at once (one pool job, a chunk per piece); the first failure. */
static af_status AF_FN(pieces_at_once)(const AF_FN(split_ctx) *c)
{
    size_t n = c->sp->count;
    for (size_t k = 0; k < n; k++) c->st[k] = AF_OK;
    af_pool_run(AF_FN(piece_chunk), (void *)c, n, af_get_num_threads());
    for (size_t k = 0; k < n; k++)
        if (c->st[k] != AF_OK) return c->st[k];
    return AF_OK;
}

/* Every piece's pass in turn, node by node (a node with sums needs every piece's partial sums
 * before any piece can go on). */
static af_status AF_FN(pieces_in_turn)(const AF_FN(split_ctx) *c)
{
    const af_graph *g = c->g;
    const af_split *sp = c->sp;
    size_t lo, B;
    af_status s;
    for (size_t k = 0; k < sp->count; k++) {
        AF_FN(piece_rows)(c, k, &lo, &B);
        af_graph gk = AF_FN(piece_graph)(c, k);
        if (!B) {
            if (g->n_params) memset(gk.grads, 0, g->n_params * sizeof(T));
        } else if (c->e->order) {
            const void *xs[AF_MAX_IO];
            const T *ys[AF_MAX_IO];
            (void)AF_FN(gather_rows)(g, c->p, AF_FN(piece_ws)(c, k), c->d, B,
                               c->e->perm + c->start + lo, xs, ys);
        }
    }
    if ((s = AF_FN(split_forward)(c)) != AF_OK) return s;
    /* losses and dLoss/dout of each piece: the gradient of the (weighted) mean over the global
     * batch, each sample's term w_b / den as one process computes it */
    for (size_t k = 0; k < sp->count; k++) {
        const T *ys[AF_MAX_IO], *w;
        double lsum = 0;
        AF_FN(piece_rows)(c, k, &lo, &B);
        if (!B) continue;
        AF_FN(bind_piece)(c, k, ys, &w);
        s = AF_FN(loss_pass)(g, c->p, AF_FN(piece_ws)(c, k), B, ys, w, 1, c->den, &lsum,
                             &sp->stats[k]);
        if (s != AF_OK) return s;
        if (c->den != (double)c->Bg) lsum *= (double)c->Bg / c->den;   /* as the epoch loop */
        sp->stats[k].loss_sum += lsum;
        sp->stats[k].n_seen += B;
    }
    return AF_FN(split_backward)(c);
}

/* ---- the update after the pieces' passes, in blocks on annfast's threads ---------------------
 * Every parameter's gradient is the sum of the pieces' in piece order, plus its penalty's, then
 * the optimiser updates it: elementwise, so fixed blocks of AF_UPD_BLOCK parameters are
 * independent. A chunk of the job (one per thread, pool.h) takes a run of blocks and does all
 * three on each while the block is in its cache: the same operations on each element as the
 * passes one after another (af_copy_add, penalty, the optimiser step), so the same bits for any
 * thread count, and the same as those passes. (Each thread then writes the parameters it updates
 * once, instead of the caller writing all of them after the other thread read them.) */
#define AF_UPD_BLOCK 1024

typedef struct {
    const AF_FN(split_ctx) *c;
    const struct AF_FN(af_opt_consts) *oc;
    T *opt_state;
    T pen_f;                       /* the penalty factor */
    size_t nblk, nch;
} AF_FN(update_job);

/* Node i's penalised weights within [lo, hi): [*a, *b) (empty when a >= b). */
static void AF_FN(pen_range)(const af_graph *g, const af_plan *p, size_t i, size_t lo, size_t hi,
                            size_t *a, size_t *b)
{
    const af_node_info *inf = &p->info[i];
    *a = g->nodes[i].param_off + inf->pen_off;
    *b = *a + inf->pen_len;
    if (*a < lo) *a = lo;
    if (*b > hi) *b = hi;
}

static int AF_FN(penalised)(const af_node_info *inf)
{
    return inf->pen_len && (inf->l1 != 0 || inf->l2 != 0);
}

/* The penalty's value on block blk's parameters (before the update): per penalised node in
 * order, pen_value over its part of the block, added in double. Blocks are fixed, so the sum of
 * their values in block order (penalty_total) does not depend on the thread count or on who
 * computes which block. */
static double AF_FN(penalty_block)(const af_graph *g, const af_plan *p, size_t blk)
{
    size_t lo = blk * AF_UPD_BLOCK, hi = lo + AF_UPD_BLOCK < g->n_params ? lo + AF_UPD_BLOCK : g->n_params;
    double total = 0;
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r], a, b;
        if (!AF_FN(penalised)(&p->info[i])) continue;
        AF_FN(pen_range)(g, p, i, lo, hi, &a, &b);
        if (a < b)
            total += (double)AF_FN(pen_value)((const T *)g->params, a, b, (T)p->info[i].l1, (T)p->info[i].l2);
    }
    return total;
}

/* The penalty's value (times the batch's factor) from the block values in block order. */
static double AF_FN(penalty_total)(const AF_FN(split_ctx) *c)
{
    size_t nblk = (c->g->n_params + AF_UPD_BLOCK - 1) / AF_UPD_BLOCK;
    double total = 0;
    for (size_t b = 0; b < nblk; b++) total += c->pen_part[b];
    return total * c->pen_factor;
}

/* The penalty's gradient on parameters [lo, hi), per penalised node in order, as pen_chunk adds
 * it: g += f (l1 sign(w) + 2 l2 w). */
static void AF_FN(penalty_grad_range)(const af_graph *g, const af_plan *p, size_t lo, size_t hi, T f)
{
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r], a, b;
        if (!AF_FN(penalised)(&p->info[i])) continue;
        AF_FN(pen_range)(g, p, i, lo, hi, &a, &b);
        if (a < b)
            AF_FN(pen_grad)((const T *)g->params, (T *)g->grads, a, b, (T)p->info[i].l1, (T)p->info[i].l2, f);
    }
}

static void AF_FN(update_block)(const AF_FN(update_job) *j, size_t blk)
{
    const af_graph *g = j->c->g;
    const af_split *sp = j->c->sp;
    size_t n = g->n_params, lo = blk * AF_UPD_BLOCK, hi = lo + AF_UPD_BLOCK < n ? lo + AF_UPD_BLOCK : n;
    T *G = (T *)g->grads;
    j->c->pen_part[blk] = AF_FN(penalty_block)(g, j->c->p, blk);
    for (size_t k = 1; k < sp->count; k++) {
        const T *x = (const T *)sp->grads[k - 1];
        for (size_t i = lo; i < hi; i++) G[i] += x[i];
    }
    AF_FN(penalty_grad_range)(g, j->c->p, lo, hi, j->pen_f);
    OPTIM_RANGE(j->oc, n, lo, hi - lo, (T *)g->params, G, j->opt_state);
}

/* Chunk ch: blocks [ceil(nblk ch / nch), ceil(nblk (ch + 1) / nch)): the first chunks take the
 * odd block (and the last, partial block goes to the last chunk), as the calling thread (chunk
 * 0, pool.h) starts before a worker does. */
static void AF_FN(update_chunk)(void *ctx, size_t ch, size_t slot)
{
    (void)slot;
    const AF_FN(update_job) *j = (const AF_FN(update_job) *)ctx;
    size_t b0 = (j->nblk * ch + j->nch - 1) / j->nch, b1 = (j->nblk * (ch + 1) + j->nch - 1) / j->nch;
    for (size_t b = b0; b < b1; b++) AF_FN(update_block)(j, b);
}

/* Where nothing comes between the sum of the pieces' gradients and the optimiser (no sum over
 * processes, no clipping, shared weights or penalty on weights a node shares; split_step), the
 * update as that job; 0 when it does not apply. The penalty's value is taken first, as
 * split_step takes it (weights before the update). */
static int AF_FN(update_fuses)(const AF_FN(split_ctx) *c)
{
    const af_graph *g = c->g;
    return !g->reduce && g->clipnorm == 0 && g->clipvalue == 0 && !c->p->shared_params && g->n_params;
}

/* The update job of step c (one chunk until the caller sets nch), its optimiser constants in oc. */
static af_status AF_FN(update_prepare)(const AF_FN(split_ctx) *c, const af_optim *opt, T *opt_state,
                                       struct AF_FN(af_opt_consts) *oc, AF_FN(update_job) *j)
{
    af_status s = OPTIM_PREPARE(opt, c->t, oc);
    if (s != AF_OK) return s;
    size_t nblk = (c->g->n_params + AF_UPD_BLOCK - 1) / AF_UPD_BLOCK;
    if (nblk > UINT32_MAX) return AF_ESHAPE;   /* step_job's block counters are 32-bit */
    *j = (AF_FN(update_job)){c, oc, opt_state, (T)c->pen_factor, nblk, 1};
    return AF_OK;
}

static af_status AF_FN(update_at_once)(const AF_FN(split_ctx) *c, const af_optim *opt, T *opt_state)
{
    struct AF_FN(af_opt_consts) oc;
    AF_FN(update_job) j;
    af_status s = AF_FN(update_prepare)(c, opt, opt_state, &oc, &j);
    if (s != AF_OK) return s;
    int nt = j.nblk >= 2 ? af_get_num_threads() : 1;
    j.nch = (size_t)nt < j.nblk ? (size_t)nt : j.nblk;
    af_pool_run(AF_FN(update_chunk), &j, j.nch, nt);
    if (c->sp->first == 0) c->sp->stats[0].loss_sum += (double)c->Bg * AF_FN(penalty_total)(c);
    return AF_OK;
}

/* ---- pieces and update in one job --------------------------------------------------------------
 * Where the pieces run at once and the update fuses, one pool job does both: each thread claims
 * pieces until none is left, waits until every piece is done (only for pieces that running
 * threads are computing), then claims blocks of the update: the thread of piece 0 from the first
 * block up, the others from the last block down, so each thread mostly updates the same blocks
 * step after step (they stay in its cache). One wake-up and one join a step instead of two
 * (digits MLP: ~2 us of a 28 us step). A thread that joins late finds the pieces taken and helps
 * with the blocks, or finds nothing to do: nobody waits for a piece that no thread has started.
 * Each element sees the operations of pieces_at_once then update_at_once: the same bits. */
typedef struct {
    AF_FN(update_job) u;
    atomic_size_t role, done;       /* next piece to claim; pieces finished */
    _Atomic uint64_t ends;          /* update blocks not claimed yet: [lo, hi) as lo | hi << 32 */
    atomic_int failed;
} AF_FN(step_job);

/* Block claimed from the low or the high end of what is left; SIZE_MAX when nothing is. */
static size_t AF_FN(claim_block)(AF_FN(step_job) *j, int low)
{
    uint64_t e = atomic_load_explicit(&j->ends, memory_order_relaxed);
    for (;;) {
        uint32_t lo = (uint32_t)e, hi = (uint32_t)(e >> 32);
        if (lo >= hi) return SIZE_MAX;
        uint64_t next = low ? e + 1 : e - ((uint64_t)1 << 32);
        if (atomic_compare_exchange_weak_explicit(&j->ends, &e, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return low ? lo : hi - 1;
    }
}

static void AF_FN(step_chunk)(void *ctx, size_t ch, size_t slot)
{
    (void)ch;
    (void)slot;
    AF_FN(step_job) *j = (AF_FN(step_job) *)ctx;
    const AF_FN(split_ctx) *c = j->u.c;
    size_t n = c->sp->count, first = SIZE_MAX, k, b;
    while ((k = atomic_fetch_add_explicit(&j->role, 1, memory_order_relaxed)) < n) {
        if (first == SIZE_MAX) first = k;
        c->st[k] = AF_FN(piece_pass)(c, k);
        if (c->st[k] != AF_OK) atomic_store_explicit(&j->failed, 1, memory_order_relaxed);
        /* release: this piece's gradient is visible to whoever reads done == n (acquire) */
        atomic_fetch_add_explicit(&j->done, 1, memory_order_release);
    }
    unsigned spins = 0;
    while (atomic_load_explicit(&j->done, memory_order_acquire) < n) af_pool_backoff(&spins);
    if (atomic_load_explicit(&j->failed, memory_order_relaxed)) return;
    while ((b = AF_FN(claim_block)(j, first == 0)) != SIZE_MAX) AF_FN(update_block)(&j->u, b);
}

static af_status AF_FN(step_at_once)(const AF_FN(split_ctx) *c, const af_optim *opt, T *opt_state)
{
    struct AF_FN(af_opt_consts) oc;
    AF_FN(step_job) j;
    af_status s = AF_FN(update_prepare)(c, opt, opt_state, &oc, &j.u);
    if (s != AF_OK) return s;
    atomic_init(&j.role, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.ends, (uint64_t)j.u.nblk << 32);
    atomic_init(&j.failed, 0);
    /* one thread where timing finds it faster than all of them (tune.h): the same bits. Alone
     * means the kernels inside too (af_pool_solo): a piece's products split between the cores
     * while the pieces are not cost more than either (measured with the vCPUs 330 ns apart:
     * 94 ms an epoch against 57 on two threads and 49 on one) */
    static _Thread_local af_tune tune;
    af_tune_call tc = af_tune_begin(&tune, af_get_num_threads(),
                                    (uintptr_t)c->g->params ^ (uintptr_t)c->sp->count, c->Bg);
    af_pool_run(AF_FN(step_chunk), &j, (size_t)tc.threads, tc.threads);
    af_tune_end(&tune, &tc);
    for (size_t k = 0; k < c->sp->count; k++)
        if (c->st[k] != AF_OK) return c->st[k];
    if (c->sp->first == 0) c->sp->stats[0].loss_sum += (double)c->Bg * AF_FN(penalty_total)(c);
    return AF_OK;
}

/* A step whose update is not fused into its pieces' pass: the pieces, then their gradients in
 * piece order (and over processes), the penalty, clipping and one optimiser update. */
static af_status AF_FN(split_step_apart)(const AF_FN(split_ctx) *c, const af_optim *opt, T *opt_state)
{
    const af_graph *g = c->g;
    const af_split *sp = c->sp;
    af_status s = c->views ? AF_FN(pieces_at_once)(c) : AF_FN(pieces_in_turn)(c);
    if (s != AF_OK) return s;
    if (AF_FN(update_fuses)(c)) return AF_FN(update_at_once)(c, opt, opt_state);
    /* the pieces' gradients in piece order, then over processes */
    T *G = (T *)g->grads;
    for (size_t k = 1; k < sp->count; k++) AF_FN(af_copy_add)(g->n_params, (const T *)sp->grads[k - 1], G, 1);
    if (g->reduce && g->n_params && (s = g->reduce(g->reduce_ctx, G, g->n_params, DT)) != AF_OK) return s;
    /* + L1/L2 penalty (value by blocks as update_at_once takes it, then the gradient), clipping,
     * one optimiser update: the same everywhere */
    size_t nblk = (g->n_params + AF_UPD_BLOCK - 1) / AF_UPD_BLOCK;
    for (size_t b = 0; b < nblk; b++) c->pen_part[b] = AF_FN(penalty_block)(g, c->p, b);
    AF_FN(penalty_grad_range)(g, c->p, 0, g->n_params, (T)c->pen_factor);
    if (sp->first == 0) sp->stats[0].loss_sum += (double)c->Bg * AF_FN(penalty_total)(c);
    if ((s = AF_FN(clip)(g, G)) != AF_OK) return s;
    return OPTIM_STEP(opt, g->n_params, (T *)g->params, G, opt_state, c->t);
}

/* One optimiser step over the global batch [start, start + Bg) of the order: the pieces and the
 * update in one pool job where the update fuses (step_at_once), else one after the other
 * (split_step_apart), on all threads or, where timing finds it faster, on this one alone, as
 * step_at_once runs (tune.h). */
static af_status AF_FN(split_step)(const AF_FN(split_ctx) *c, const af_optim *opt, T *opt_state)
{
    const af_split *sp = c->sp;
    af_status s;
    if (c->views && AF_FN(update_fuses)(c)) {
        s = AF_FN(step_at_once)(c, opt, opt_state);
    } else {
        static _Thread_local af_tune tune;
        af_tune_call tc = af_tune_begin(&tune, af_get_num_threads(),
                                        (uintptr_t)c->g->params ^ (uintptr_t)sp->count, c->Bg);
        s = AF_FN(split_step_apart)(c, opt, opt_state);
        af_tune_end(&tune, &tc);
    }
    if (s != AF_OK) return s;
    for (size_t k = 0; k < sp->count; k++) sp->stats[k].n_batches++;
    return AF_OK;
}

/* The stop requests of every process, summed: all stop at the same step. */
static af_status AF_FN(split_stop)(const af_graph *g, int *stop)
{
    double flag = af_stop_requested() ? 1.0 : 0.0;
    af_status s = g->reduce ? g->reduce(g->reduce_ctx, &flag, 1, AF_F64) : AF_OK;
    *stop = flag > 0;
    return s;
}

static af_status AF_FN(check_split)(const af_graph *g, const af_plan *p, const af_split *sp)
{
    if (!sp || sp->parts == 0 || sp->count == 0 || sp->first >= sp->parts ||
        sp->count > sp->parts - sp->first || !sp->ws || !sp->stats)
        return AF_EINVAL;
    if (sp->count > 1 && g->n_params && !sp->grads) return AF_EINVAL;
    for (size_t k = 0; k < sp->count; k++) {
        if (!sp->ws[k]) return AF_EINVAL;
        if (k > 0 && g->n_params && !sp->grads[k - 1]) return AF_EINVAL;
    }
    if (sp->ws_len < p->ws_len) return AF_ESHAPE;
    if (af_split_sums_len(p) && !sp->sums) return AF_EINVAL;
    return AF_OK;
}

/* The call's scratch, one allocation (free it; NULL when out of memory): the penalty's block
 * partials and, where no node sums over samples so the pieces run at once (pieces_at_once), a
 * view of the plan per piece (the shared plan's arrays but its own per-call pointers, plan.h)
 * and a status per piece. */
static void *AF_FN(split_scratch)(AF_FN(split_ctx) *c)
{
    const af_plan *p = c->p;
    size_t count = c->sp->count, nblk = (c->g->n_params + AF_UPD_BLOCK - 1) / AF_UPD_BLOCK;
    size_t nview = count > 1 && c->L == 0 ? count : 0, nptr, bytes;
    if (af_mul_size(2 * nview, p->n_nodes, &nptr) || af_mul_size(nptr, sizeof(void *), &bytes) ||
        bytes > SIZE_MAX / 2 - nview * (sizeof(af_plan) + sizeof(af_status)) - (nblk + 1) * sizeof(double))
        return NULL;
    void **ptrs = (void **)malloc(bytes + nview * (sizeof(af_plan) + sizeof(af_status)) +
                                  (nblk + 1) * sizeof(double));
    if (!ptrs) return NULL;
    c->pen_part = (double *)(ptrs + nptr);      /* doubles, then the views: both 8-byte aligned */
    af_plan *views = (af_plan *)(c->pen_part + nblk + 1);
    for (size_t k = 0; k < nview; k++) {
        views[k] = *p;
        views[k].ptr = ptrs + 2 * k * p->n_nodes;
        views[k].dptr = views[k].ptr + p->n_nodes;
    }
    c->views = nview ? views : NULL;
    c->st = nview ? (af_status *)(views + nview) : NULL;
    return ptrs;
}

/* The steps of the call from the global batch at start0. */
static af_status AF_FN(split_batches)(AF_FN(split_ctx) *c, size_t start0, const af_optim *opt,
                                      T *opt_state, uint64_t *step)
{
    size_t n = c->d->n, batch = c->e->batch;
    af_status s;
    for (size_t start = start0, nb = 0; start < n && nb < c->e->max_batches; start += batch, nb++) {
        int stop;
        if ((s = AF_FN(split_stop)(c->g, &stop)) != AF_OK) return s;
        if (stop) return AF_EINTR;
        c->start = start;
        c->Bg = n - start < batch ? n - start : batch;
        AF_FN(split_den)(c);
        c->t = *step + 1;
        if ((s = AF_FN(split_step)(c, opt, opt_state)) != AF_OK) return s;
        *step = c->t;
    }
    return AF_OK;
}

af_status AF_FN(af_graph_train_split)(const af_graph *g, af_plan *p, const af_split *sp,
                                      const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                      T *opt_state, uint64_t *step)
{
    AF_FP_SCOPE();
    af_status s;
    if (!sp || !sp->ws) return AF_EINVAL;
    if ((s = AF_FN(check_call)(g, p, (const T *)sp->ws[0], sp->ws_len)) != AF_OK) return s;
    if ((s = AF_FN(check_split)(g, p, sp)) != AF_OK) return s;
    if (!e || !opt || !step || e->batch == 0) return AF_EINVAL;
    /* a piece holds at most ceil(batch / parts) samples: the plan's batch */
    if ((e->batch - 1) / sp->parts + 1 > p->max_batch) return AF_EINVAL;
    memset(sp->stats, 0, sp->count * sizeof *sp->stats);
    if ((s = af_optim_check(opt)) != AF_OK) return s;
    int slots = af_optim_slots_used(opt);
    if (slots < 0) return AF_EINVAL;
    if (slots > 0 && g->n_params && !opt_state) return AF_EINVAL;
    if ((s = AF_FN(check_data)(g, p, d, 1)) != AF_OK) return s;
    size_t n = d->n, batch = e->batch, start0;
    if (n == 0) return AF_OK;
    if ((unsigned)e->order > AF_ORDER_GIVEN || (e->order && !e->perm)) return AF_EINVAL;
    if (e->order == AF_ORDER_GIVEN)
        for (size_t i = 0; i < n; i++)
            if (e->perm[i] >= n) return AF_EINVAL;
    if (af_mul_size(e->first_batch, batch, &start0)) return AF_ESHAPE;
    if (e->order == AF_ORDER_SHUFFLE && e->first_batch == 0) af_shuffle_order(g->seed, e->shuffle_key, n, e->perm);
    AF_FN(split_ctx) c = {g, p, sp, d, e, 0, 0, 0, 1, 0, af_split_sums_len(p), NULL, NULL, NULL};
    void *scratch = AF_FN(split_scratch)(&c);
    if (!scratch) return AF_ENOMEM;
    s = AF_FN(split_batches)(&c, start0, opt, opt_state, step);
    free(scratch);
    return s;
}

#undef DT
#undef OPTIM_STEP
#undef OPTIM_PREPARE
#undef OPTIM_RANGE
#include "dtype_end.h"
