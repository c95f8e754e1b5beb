/* conv_impl.h: convolution forward and backward for one dtype (included twice by conv.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define GEMM_EX af_sgemm_ex
#define GEMM af_sgemm
#else
#define GEMM_EX af_dgemm_ex
#define GEMM af_dgemm
#endif

/* The passes run their fixed tasks (samples, tiles, rows, groups, blocks) on annfast's pool
 * (pool.h): chunk c of a job is tasks [c per, (c + 1) per); the calling thread runs every chunk
 * nobody else has claimed, so it never waits for a thread that has not woken up, and `slot`
 * (unique among the job's threads, < af_slot_threads()) picks the thread's scratch. Which thread
 * runs a task changes nothing in its result. */
typedef struct {
    const conv_plan *p;
    size_t B, n, per;         /* batch; tasks, tasks per chunk */
    const T *x, *W, *bias, *Z, *Y;
    T *out, *D, *scr;
    const af_epilogue *ep;
    af_act act;
    T alpha;
    int relu, flag;           /* relu in the tiles; use_bias (weights) or acc (dx, reduce) */
    size_t ng, stride;        /* weight-gradient groups, values per partial gradient */
    int err;                  /* a failing task's af_status (AF_OK: none), stored atomically */
} AF_FN(conv_job);

/* Tasks [t0, t1) of chunk c. */
static inline void AF_FN(conv_tasks)(const AF_FN(conv_job) *j, size_t c, size_t *t0, size_t *t1)
{
    *t0 = c * j->per;
    *t1 = *t0 + j->per < j->n ? *t0 + j->per : j->n;
}

/* Run fn over n tasks, per to a chunk, on nt threads; returns a failing task's status. */
static af_status AF_FN(conv_run)(af_chunk_fn fn, AF_FN(conv_job) *j, size_t n, size_t per, int nt)
{
    j->n = n;
    j->per = per < 1 ? 1 : per;
    j->err = AF_OK;
    if (n) af_pool_run(fn, j, (n + j->per - 1) / j->per, nt);
    return (af_status)__atomic_load_n(&j->err, __ATOMIC_RELAXED);
}

static inline void AF_FN(conv_fail)(AF_FN(conv_job) *j, af_status s)
{
    if (s != AF_OK) __atomic_store_n(&j->err, (int)s, __ATOMIC_RELAXED);
}

/* The scratch of the thread in `slot`. */
static inline T *AF_FN(conv_slot)(const AF_FN(conv_job) *j, size_t slot)
{
    return j->scr + j->p->slot0 + slot * j->p->slot_len;
}

/* xp[b] = x[b] zero-padded to Hp x Wp, for the B samples (tasks: samples). */
static void AF_FN(conv_pad_chunk)(void *ctx, size_t c, size_t slot)
{
    const AF_FN(conv_job) *j = (const AF_FN(conv_job) *)ctx;
    const af_win_geom *g = &j->p->g;
    size_t padsz = af_win_padded_size(g), row = g->W * g->C, b0, b1;
    (void)slot;
    AF_FN(conv_tasks)(j, c, &b0, &b1);
    for (size_t b = b0; b < b1; b++) {
        T *d = j->out + b * padsz;
        memset(d, 0, padsz * sizeof(T));
        for (size_t h = 0; h < g->H; h++)
            memcpy(d + ((h + g->PT) * g->Wp + g->PL) * g->C, j->x + (b * g->H + h) * row, row * sizeof(T));
    }
}

static void AF_FN(conv_pad)(const conv_plan *p, size_t B, const T *x, T *xp)
{
    AF_FN(conv_job) j = {p, B};
    j.x = x;
    j.out = xp;
    int nt = af_slot_threads(B, (double)B * (double)af_win_padded_size(&p->g), AF_PAR_MIN_MOVE);
    AF_FN(conv_run)(AF_FN(conv_pad_chunk), &j, B, 4, nt);
}

/* Rows [p0, p0 + n) of the im2col matrix (n x K) from the batch x as the layer gets it, the
 * padding read as zeros (no padded copy); off: the offset table (conv_offsets), without padding
 * read at the start of each run. With padding, run s of a cell's window (kernel row kh, ncol
 * kernel columns from kw) covers padded row ih = oh SH + kh DH and columns iw .. iw + ncol - 1,
 * iw = ow SW + kw DW (DW = 1 when ncol > 1): the columns inside the input are copied, the others
 * and whole rows outside it set to zero, the values a padded copy would hold. */
static void AF_FN(conv_im2col)(const conv_plan *p, const T *x, const size_t *off, size_t p0,
                               size_t n, T *P)
{
    const af_win_geom *g = &p->g;
    size_t seg = conv_seg(g), nseg = p->K / seg, C = g->C, ncol = seg / C;
    af_cell_cursor cur;
    af_cursor_set(g, p0, &cur);
    for (size_t r = 0; r < n; r++, af_cursor_next(g, &cur)) {
        T *dst = P + r * p->K;
        if (!g->padded) {
            const T *src = x + cur.base;
            for (size_t s = 0; s < nseg; s++) {
                const T *from = src + off[s * seg];
                if (seg >= 16)
                    memcpy(dst + s * seg, from, seg * sizeof(T));
                else
                    for (size_t i = 0; i < seg; i++) dst[s * seg + i] = from[i];
            }
            continue;
        }
        const T *img = x + cur.b * g->H * g->W * C;
        for (size_t s = 0; s < nseg; s++) {
            size_t k0 = s * seg, kh = k0 / (g->KW * C), kw = k0 / C - kh * g->KW;
            size_t ih = cur.oh * g->SH + kh * g->DH, iw = cur.ow * g->SW + kw * g->DW;
            T *d = dst + k0;
            if (ih < g->PT || ih - g->PT >= g->H) {
                memset(d, 0, seg * sizeof(T));
                continue;
            }
            /* columns [q0, q1) of the run are inside the input */
            size_t q0 = iw < g->PL ? g->PL - iw : 0, q1 = g->W + g->PL - iw;
            if (q0 > ncol) q0 = ncol;
            if (iw >= g->W + g->PL) q1 = 0;
            if (q1 > ncol) q1 = ncol;
            if (q1 < q0) q1 = q0;
            memset(d, 0, q0 * C * sizeof(T));
            if (q1 > q0)
                memcpy(d + q0 * C, img + ((ih - g->PT) * g->W + iw + q0 - g->PL) * C,
                       (q1 - q0) * C * sizeof(T));
            memset(d + q1 * C, 0, (ncol - q1) * C * sizeof(T));
        }
    }
}

/* col2im for one sample: dxs[base(cell) + off[k]] += dP[r, k] for cells q0 .. q0 + n - 1 (the
 * cells' offsets into `base`, then the ISA tile). */
static void AF_FN(conv_col2im)(const conv_plan *p, const T *dP, const size_t *off, size_t q0,
                               size_t n, size_t *base, T *dxs)
{
    const af_win_geom *g = &p->g;
    size_t seg = conv_seg(g);
    af_cell_cursor cur;
    af_cursor_set(g, q0, &cur);   /* q0 < S: sample 0, i.e. offsets inside dxs */
    for (size_t r = 0; r < n; r++, af_cursor_next(g, &cur)) base[r] = cur.base;
    AF_FN(af_kern)()->conv->col2im(n, dP, p->K, base, off, p->K / seg, seg, dxs);
}

/* ---- forward ------------------------------------------------------------------------------ */

/* Direct path: tiles of rows[1] cells (12) x groups of up to two vectors of filters (tasks:
 * tiles); x: the padded batch, W and bias packed fpad wide (conv_fwd_direct). */
static void AF_FN(conv_direct_chunk)(void *ctx, size_t c, size_t slot)
{
    const AF_FN(conv_job) *j = (const AF_FN(conv_job) *)ctx;
    const conv_plan *p = j->p;
    const AF_FN(af_conv_kinfo) *ki = AF_FN(af_kern)()->conv;
    const af_win_geom *g = &p->g;
    size_t F = p->F, K = p->K, fp = p->fpad, vl = ki->vl, R = ki->rows[1], M = j->B * p->S, t0, t1;
    const size_t *off = (const size_t *)(j->scr + p->offs);
    (void)slot;
    AF_FN(conv_tasks)(j, c, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        size_t base[16], p0 = t * R, nr = M - p0 < R ? M - p0 : R;
        af_cell_cursor cur;
        af_cursor_set(g, p0, &cur);
        for (size_t r = 0; r < R; r++) {
            base[r] = r < nr ? cur.base : base[nr - 1];   /* a short tile repeats its last cell */
            if (r + 1 < nr) af_cursor_next(g, &cur);
        }
        for (size_t f0 = 0; f0 < F; f0 += 2 * vl) {
            size_t nf = F - f0 < 2 * vl ? F - f0 : 2 * vl, fv = (nf + vl - 1) / vl, rows = ki->rows[fv];
            for (size_t r0 = 0; r0 < nr; r0 += rows)
                ki->fwd(fv, K, j->x, base + r0, off, j->W + f0, fp, j->bias ? j->bias + f0 : NULL,
                        j->relu, j->out + (p0 + r0) * F + f0, F, nr - r0 < rows ? nr - r0 : rows, nf);
        }
    }
}

static void AF_FN(conv_fwd_direct)(const conv_plan *p, size_t B, const T *xp, const T *W,
                                   const T *bias, int relu, T *Y, T *scr)
{
    size_t F = p->F, K = p->K, fp = p->fpad, R = AF_FN(af_kern)()->conv->rows[1];
    size_t M = B * p->S, ntile = (M + R - 1) / R;
    T *wp = scr + p->wpack, *bp = wp + K * fp;
    /* filters packed fp wide, zeros past F (the tiles compute whole vectors) */
    for (size_t k = 0; k < K; k++) {
        memcpy(wp + k * fp, W + k * F, F * sizeof(T));
        for (size_t f = F; f < fp; f++) wp[k * fp + f] = 0;
    }
    if (bias) memcpy(bp, bias, F * sizeof(T));
    for (size_t f = F; f < fp; f++) bp[f] = 0;
    AF_FN(conv_job) j = {p, B};
    j.x = xp;
    j.W = wp;
    j.bias = bias ? bp : NULL;
    j.relu = relu;
    j.out = Y;
    j.scr = scr;
    int nt = af_slot_threads(ntile, (double)M * (double)K * (double)F, AF_CONV_PAR_MIN);
    AF_FN(conv_run)(AF_FN(conv_direct_chunk), &j, ntile, 16, nt);
}

/* Cells path (one input channel, stride 1): output row by output row (tasks: rows), filters by
 * groups. */
static void AF_FN(conv_cells_chunk)(void *ctx, size_t c, size_t slot)
{
    const AF_FN(conv_job) *j = (const AF_FN(conv_job) *)ctx;
    const conv_plan *p = j->p;
    const AF_FN(af_conv_kinfo) *ki = AF_FN(af_kern)()->conv;
    const af_win_geom *g = &p->g;
    size_t F = p->F, K = p->K, padsz = af_win_padded_size(g), r0, r1;
    const size_t *off = (const size_t *)(j->scr + p->offs);
    (void)slot;
    AF_FN(conv_tasks)(j, c, &r0, &r1);
    for (size_t row = r0; row < r1; row++) {
        size_t b = row / g->OH, oh = row - b * g->OH;
        const T *xrow = j->x + b * padsz + oh * g->SH * g->Wp;
        T *yrow = j->out + row * g->OW * F;
        for (size_t f0 = 0; f0 < F; f0 += ki->fwf) {
            size_t nf = F - f0 < ki->fwf ? F - f0 : ki->fwf;
            ki->fwd_cells(K, xrow, off, g->OW, j->W + f0, F, j->bias ? j->bias + f0 : NULL, j->relu,
                          yrow + f0, F, nf);
        }
    }
}

static void AF_FN(conv_fwd_cells)(const conv_plan *p, size_t B, const T *xp, const T *W,
                                  const T *bias, int relu, T *Y, T *scr)
{
    size_t rows = B * p->g.OH;
    AF_FN(conv_job) j = {p, B};
    j.x = xp;
    j.W = W;
    j.bias = bias;
    j.relu = relu;
    j.out = Y;
    j.scr = scr;
    int nt = af_slot_threads(rows, (double)B * p->S * (double)p->K * (double)p->F, AF_CONV_PAR_MIN);
    AF_FN(conv_run)(AF_FN(conv_cells_chunk), &j, rows, 16, nt);
}

/* GEMM path, implicit (no im2col): output rows, claimed in chunks by annfast's pool threads
 * (pool.h; the caller runs every chunk nobody else has taken, so it never waits for a thread
 * that has not woken up). An output row's cells read their input at a constant stride (SW C), and
 * inside a window the values of kernel row kh are contiguous (seg = KW C without dilation, else C
 * per kernel position), so the GEMM micro-kernel reads them in place: for each NR-filter panel,
 * segment s and MR-cell tile,
 *   Z tile = sum over segments s (in order) of A_s Wt_s,  A_s[r, j] = win[base(cell r) + off(s) + j],
 * the partial sum kept in the output between segments (beta = 1 after the first), bias and relu
 * joining the last. Wt is packed once per call. Where the geometry pads, `win` is the row's KH
 * window rows, copied into the thread's slot with their zero padding (no padded copy of the
 * batch, conv_keeps_xpad); the products are those of the padded input, zeros
 * included, in the same order. Without padding the input is read where it lies, and a tile whose
 * unused rows (kernel_rows reads whole tile heights) would reach past its end is copied first. */
static void AF_FN(conv_implicit_chunk)(void *ctx, size_t chunk, size_t slot)
{
    const AF_FN(conv_job) *j = (const AF_FN(conv_job) *)ctx;   /* x: unpadded, W: packed */
    const conv_plan *p = j->p;
    const AF_FN(af_gemm_kinfo) *gk = AF_FN(af_kern)()->gemm;
    const af_win_geom *g = &p->g;
    size_t F = p->F, K = p->K, MR = gk->mr, NR = gk->nr, nbp = (F + NR - 1) / NR;
    size_t seg = conv_seg(g), nseg = K / seg, rsa = g->SW * g->C, OW = g->OW;
    size_t prow = g->Wp * g->C, padsz = af_win_padded_size(g), irow = g->W * g->C;
    size_t r0, r1;
    const T *end = j->x + j->B * padsz;   /* unpadded: the end of the input */
    const size_t *off = (const size_t *)(j->scr + p->offs);
    T *spare = AF_FN(conv_slot)(j, slot), *win = spare;
    AF_FN(conv_tasks)(j, chunk, &r0, &r1);
    size_t nslot = conv_win_slots(g);
    int ring = nslot == (g->KH - 1) * g->DH + 1;
    size_t held[AF_CONV_WIN_RING];   /* ring: the padded row (b Hp + ih) each slot holds */
    for (size_t q = 0; q < AF_CONV_WIN_RING; q++) held[q] = SIZE_MAX;
    if (g->padded) /* the tiles' unused rows read past the last slot: zeros */
        memset(win + nslot * prow, 0, AF_CONV_IMPLICIT_MR_MAX * rsa * sizeof(T));
    for (size_t row = r0; row < r1; row++) {
        size_t b = row / g->OH, oh = row - b * g->OH;
        const T *xrow;   /* cell (oh, 0)'s window (unpadded: kernel row kh at kh DH prow) */
        if (g->padded) {
            /* padded row ih = oh SH + kh DH of the window (input row ih - PT, zeros around it)
             * in slot ih mod nslot (ring) or kh, unless the slot holds it already */
            for (size_t kh = 0; kh < g->KH; kh++) {
                size_t ih = oh * g->SH + kh * g->DH, q = ring ? ih % nslot : kh;
                T *d = win + q * prow;
                if (ring && held[q] == b * g->Hp + ih) continue;
                if (ring) held[q] = b * g->Hp + ih;
                if (ih < g->PT || ih - g->PT >= g->H) {
                    memset(d, 0, prow * sizeof(T));
                    continue;
                }
                memset(d, 0, g->PL * g->C * sizeof(T));
                memcpy(d + g->PL * g->C, j->x + (b * g->H + ih - g->PT) * irow, irow * sizeof(T));
                memset(d + g->PL * g->C + irow, 0, (prow - g->PL * g->C - irow) * sizeof(T));
            }
            xrow = win;
        } else {
            xrow = j->x + b * padsz + oh * g->SH * prow;
        }
        T *yrow = j->out + row * OW * F;
        AF_FN(af_gemm_kout) out = {NULL, 0, NULL};
        for (size_t jr = 0; jr < nbp; jr++) {
            size_t nr = F - jr * NR < NR ? F - jr * NR : NR;
            for (size_t s = 0; s < nseg; s++) {
                /* segment s: kernel row kh, first kernel column kw (off[] without kh's rows) */
                size_t k0 = s * seg, kh = k0 / (g->KW * g->C), kwo = off[k0] - kh * g->DH * prow;
                size_t soff = !g->padded ? off[k0]
                            : (ring ? (oh * g->SH + kh * g->DH) % nslot : kh) * prow + kwo;
                const T *wseg = j->W + jr * NR * K + k0 * NR;
                int last = s + 1 == nseg;
                out.bias = last && j->bias ? j->bias + jr * NR : NULL;
                out.relu = last && j->relu;
                for (size_t ow0 = 0; ow0 < OW; ow0 += MR) {
                    size_t mr = OW - ow0 < MR ? OW - ow0 : MR, rr = af_gemm_rows_read(MR, mr);
                    const T *a = xrow + ow0 * rsa + soff;
                    size_t lda = rsa;
                    if (!g->padded && a + (rr - 1) * rsa + seg > end) {
                        for (size_t r = 0; r < rr; r++)
                            if (r < mr) memcpy(spare + r * seg, a + r * rsa, seg * sizeof(T));
                            else memset(spare + r * seg, 0, seg * sizeof(T));
                        a = spare, lda = seg;
                    }
                    gk->kernel_rows(seg, a, lda, 1, wseg, (T)1, s ? (T)1 : (T)0,
                                    yrow + ow0 * F + jr * NR, F, mr, nr,
                                    out.bias || out.relu ? &out : NULL);
                }
            }
        }
    }
}

static void AF_FN(conv_fwd_implicit)(const conv_plan *p, size_t B, const T *x, const T *W,
                                     const T *bias, int relu, T *Y, T *scr)
{
    const AF_FN(af_gemm_kinfo) *gk = AF_FN(af_kern)()->gemm;
    size_t F = p->F, K = p->K, nbp = (F + gk->nr - 1) / gk->nr, rows = B * p->g.OH;
    T *wk = scr + p->wpack;   /* nbp panels of K x NR */
    if (rows == 0) return;
    gk->pack_b(0, K, F, W, F, wk, 0, nbp);
    int nt = af_slot_threads(rows, (double)B * p->S * (double)K * (double)F, AF_CONV_PAR_MIN);
    /* chunks of whole rows, many per thread: a thread that starts late takes fewer */
    size_t nch = nt > 1 ? (size_t)nt * AF_CONV_IMPLICIT_CHUNKS : 1;
    if (nch > rows) nch = rows;
    AF_FN(conv_job) j = {p, B};
    j.x = x;
    j.W = wk;
    j.bias = bias;
    j.relu = relu;
    j.out = Y;
    j.scr = scr;
    AF_FN(conv_run)(AF_FN(conv_implicit_chunk), &j, rows, (rows + nch - 1) / nch, nt);
}

/* GEMM path: an im2col block of mb cells per task (from x as the layer gets it), Z = P Wt
 * (+ epilogue) straight into Y. */
static void AF_FN(conv_gemm_chunk)(void *ctx, size_t c, size_t slot)
{
    AF_FN(conv_job) *j = (AF_FN(conv_job) *)ctx;
    const conv_plan *p = j->p;
    size_t M = j->B * p->S, K = p->K, F = p->F, b0, b1;
    T *P = AF_FN(conv_slot)(j, slot);
    AF_FN(conv_tasks)(j, c, &b0, &b1);
    for (size_t blk = b0; blk < b1; blk++) {
        size_t p0 = blk * p->mb, n = M - p0 < p->mb ? M - p0 : p->mb;
        AF_FN(conv_im2col)(p, j->x, (const size_t *)(j->scr + p->offs), p0, n, P);
        AF_FN(conv_fail)(j, GEMM_EX(0, 0, n, F, K, (T)1, P, K, j->W, F, (T)0, j->out + p0 * F, F, j->ep));
    }
}

static af_status AF_FN(conv_fwd_gemm)(const conv_plan *p, size_t B, const T *xp, const T *W,
                                      const af_epilogue *ep, T *Y, T *scr)
{
    size_t M = B * p->S, nblk = (M + p->mb - 1) / p->mb;
    AF_FN(conv_job) j = {p, B};
    j.x = xp;
    j.W = W;
    j.ep = ep;
    j.out = Y;
    j.scr = scr;
    int nt = af_slot_threads(nblk, (double)M * (double)p->K * (double)p->F, AF_CONV_PAR_MIN);
    return AF_FN(conv_run)(AF_FN(conv_gemm_chunk), &j, nblk, 1, nt);
}

static af_status AF_FN(conv_forward)(const af_op_args *a)
{
    const af_conv_cfg *c = (const af_conv_cfg *)a->cfg;
    conv_plan p;
    af_status s = conv_setup(c, a->in_shape, a->batch, sizeof(T), &p);
    if (s != AF_OK) return s;
    size_t B = a->batch, M = B * p.S, F = p.F;
    const T *x = (const T *)a->x[0], *W = (const T *)a->param;
    const T *bias = c->use_bias ? W + p.K * F : NULL;
    T *Y = (T *)a->y, *aux = (T *)a->aux, *scr = (T *)a->scratch;
    af_act act = (af_act)c->act;
    int keep_z = af_act_needs_input(act);
    /* f in the epilogue when elementwise; softmax (over the filters), gelu and swish after */
    af_act ep_act = (act == AF_ACT_SOFTMAX || a->fused_loss || keep_z) ? AF_ACT_LINEAR : act;
    T *Z = keep_z ? aux + p.zkeep : Y;
    const AF_FN(af_gemm_kinfo) *gk = AF_FN(af_kern)()->gemm;
    int implicit = conv_implicit(&p) && gk->nr <= AF_CONV_GEMM_NR_MAX && gk->mr <= AF_CONV_IMPLICIT_MR_MAX;
    /* the direct and cells tiles read a padded copy of the batch (kept for the backward); the
     * GEMM paths read the input as it is, padding with zeros as they go */
    const T *xp = x;
    if (conv_keeps_xpad(&p)) {
        AF_FN(conv_pad)(&p, B, x, aux + p.xpad);
        xp = aux + p.xpad;
    }
    conv_offsets(&p.g, (size_t *)(scr + p.offs));
    af_epilogue ep = {bias, ep_act, c->alpha};
    if (p.path == CONV_POINTWISE) {
        s = GEMM_EX(0, 0, M, F, p.K, (T)1, xp, p.K, W, F, (T)0, Z, F, &ep);
    } else if (p.path == CONV_GEMM && !implicit) {
        s = AF_FN(conv_fwd_gemm)(&p, B, x, W, &ep, Z, scr);
    } else {   /* bias and relu inside the tiles, other activations after */
        int relu = ep_act == AF_ACT_RELU;
        if (p.path == CONV_DIRECT)
            AF_FN(conv_fwd_direct)(&p, B, xp, W, bias, relu, Z, scr);
        else if (p.path == CONV_CELLS)
            AF_FN(conv_fwd_cells)(&p, B, xp, W, bias, relu, Z, scr);
        else
            AF_FN(conv_fwd_implicit)(&p, B, x, W, bias, relu, Z, scr);
        if (ep_act != AF_ACT_LINEAR && !relu)
            s = AF_FN(af_act_forward)(ep_act, (T)c->alpha, 1, M * F, Z, M * F, Z, M * F);
    }
    if (s != AF_OK) return s;
    if (keep_z && !a->fused_loss) return AF_FN(af_act_forward)(act, (T)c->alpha, M, F, Z, F, Y, F);
    if (keep_z) memcpy(Y, Z, M * F * sizeof(T));
    if (act == AF_ACT_SOFTMAX && !a->fused_loss) return AF_FN(af_act_forward)(act, 0, M, F, Y, F, Y, F);
    return AF_OK;
}

/* ---- backward ----------------------------------------------------------------------------- */

/* dZ = dY * f'(Z) in place over cells [p0, p0 + n). */
static void AF_FN(conv_dz)(af_act act, T alpha, size_t F, size_t p0, size_t n, const T *Z,
                           const T *Y, T *D)
{
    if (act == AF_ACT_LINEAR) return;
    const T *y = Y + p0 * F, *z = Z ? Z + p0 * F : y;
    T *d = D + p0 * F;
    if (act == AF_ACT_SOFTMAX) {
        for (size_t r = 0; r < n; r++) AF_FN(af_act_row_backward)(act, alpha, F, y + r * F, y + r * F, d + r * F, d + r * F);
    } else if (act == AF_ACT_RELU) {
        for (size_t i = 0; i < n * F; i++) d[i] = y[i] > 0 ? d[i] : (T)0;
    } else {
        AF_FN(af_act_row_backward)(act, alpha, n * F, af_act_needs_input(act) ? z : y, y, d, d);
    }
}

/* One chunk's weight gradient into part (K x F): written (first) or added. xp: the padded copy
 * (direct, cells) or the input itself (pointwise, gemm: its im2col pads as it goes). */
static af_status AF_FN(conv_dw_chunk)(const conv_plan *p, const T *xp, const T *D, size_t p0,
                                      size_t n, int first, T *part, T *slot, const size_t *off)
{
    size_t K = p->K, F = p->F;
    if (p->path == CONV_POINTWISE)
        return GEMM(1, 0, K, F, n, (T)1, xp + p0 * K, K, D + p0 * F, F, first ? (T)0 : (T)1, part, F);
    if (p->path == CONV_GEMM) {
        AF_FN(conv_im2col)(p, xp, off, p0, n, slot);
        return GEMM(1, 0, K, F, n, (T)1, slot, K, D + p0 * F, F, first ? (T)0 : (T)1, part, F);
    }
    if (p->path == CONV_CELLS) {
        /* whole output rows: their input rows, dZ transposed (filter-major, rows padded with
         * zeros to owp), then tiles of dwk kernel positions x dwf filters */
        const AF_FN(af_conv_kinfo) *ki = AF_FN(af_kern)()->conv;
        const af_win_geom *g = &p->g;
        size_t OW = g->OW, rows = n / OW, owp = p->owp, ldf = (p->chunk / OW) * owp;
        size_t padsz = af_win_padded_size(g);
        T *dzt = slot;
        size_t *rbase = (size_t *)(slot + F * ldf);
        for (size_t r = 0; r < rows; r++) {
            size_t row = p0 / OW + r, b = row / g->OH, oh = row - b * g->OH;
            const T *d = D + (p0 + r * OW) * F;
            rbase[r] = b * padsz + oh * g->SH * g->Wp;
            for (size_t f = 0; f < F; f++) {
                T *t = dzt + f * ldf + r * owp;
                for (size_t c = 0; c < OW; c++) t[c] = d[c * F + f];
                for (size_t c = OW; c < owp; c++) t[c] = 0;
            }
        }
        for (size_t k0 = 0; k0 < K; k0 += ki->dwk)
            for (size_t f0 = 0; f0 < F; f0 += ki->dwf)
                ki->dw_cells(rows, xp, rbase, off + k0, K - k0 < ki->dwk ? K - k0 : ki->dwk, OW,
                             dzt + f0 * ldf, ldf, owp, F - f0 < ki->dwf ? F - f0 : ki->dwf,
                             part + k0 * F + f0, F, !first);
        return AF_OK;
    }
    /* direct: the cells' offsets, then tiles of kernel positions reading dZ in place */
    const AF_FN(af_conv_kinfo) *ki = AF_FN(af_kern)()->conv;
    const af_win_geom *g = &p->g;
    size_t vl = ki->vl, *base = (size_t *)slot;
    af_cell_cursor cur;
    af_cursor_set(g, p0, &cur);
    for (size_t r = 0; r < n; r++, af_cursor_next(g, &cur)) base[r] = cur.base;
    for (size_t f0 = 0; f0 < F; f0 += 2 * vl) {
        size_t nf = F - f0 < 2 * vl ? F - f0 : 2 * vl, fv = (nf + vl - 1) / vl, J = ki->rows[fv];
        for (size_t k0 = 0; k0 < K; k0 += J)
            ki->dw(fv, n, xp, base, off + k0, D + p0 * F + f0, F, part + k0 * F + f0, F,
                   K - k0 < J ? K - k0 : J, nf, !first);
    }
    return AF_OK;
}

/* dZ, then the weight and bias gradients of each group of chunks into its partial sums (tasks:
 * groups). */
static void AF_FN(conv_dw_group)(void *ctx, size_t c, size_t slot)
{
    AF_FN(conv_job) *j = (AF_FN(conv_job) *)ctx;
    const conv_plan *p = j->p;
    size_t M = j->B * p->S, K = p->K, F = p->F, ng = j->ng, g0, g1;
    size_t nch = (M + p->chunk - 1) / p->chunk;
    const size_t *off = (const size_t *)(j->scr + p->offs);
    const AF_FN(af_conv_kinfo) *ki = AF_FN(af_kern)()->conv;
    T *slotp = AF_FN(conv_slot)(j, slot);
    AF_FN(conv_tasks)(j, c, &g0, &g1);
    for (size_t gi = g0; gi < g1; gi++) {
        T *part = j->scr + p->part + gi * j->stride;
        size_t c0 = nch * gi / ng, c1 = nch * (gi + 1) / ng;
        for (size_t ch = c0; ch < c1; ch++) {
            size_t p0 = ch * p->chunk, n = M - p0 < p->chunk ? M - p0 : p->chunk;
            int first = ch == c0;
            AF_FN(conv_dz)(j->act, j->alpha, F, p0, n, j->Z, j->Y, j->D);
            /* db partial: this chunk's cells in order */
            if (j->flag) ki->colsum(n, j->D + p0 * F, F, F, part + K * F, !first);
            AF_FN(conv_fail)(j, AF_FN(conv_dw_chunk)(p, j->x, j->D, p0, n, first, part, slotp, off));
        }
    }
}

static af_status AF_FN(conv_bwd_weights)(const conv_plan *p, size_t B, af_act act, T alpha,
                                         const T *Z, const T *Y, const T *xp, T *D, int use_bias,
                                         T *scr, size_t ng)
{
    size_t M = B * p->S;
    AF_FN(conv_job) j = {p, B};
    j.act = act;
    j.alpha = alpha;
    j.Z = Z;
    j.Y = Y;
    j.x = xp;
    j.D = D;
    j.flag = use_bias;
    j.scr = scr;
    j.ng = ng;
    j.stride = p->K * p->F + p->F;
    int nt = af_slot_threads(ng, (double)M * (double)p->K * (double)p->F, AF_CONV_PAR_MIN);
    return AF_FN(conv_run)(AF_FN(conv_dw_group), &j, ng, 1, nt);
}

/* grad = sum over groups in order (+ grad when acc), blocks of 4096 values (tasks: blocks). */
static void AF_FN(conv_reduce_chunk)(void *ctx, size_t c, size_t slot)
{
    const AF_FN(conv_job) *j = (const AF_FN(conv_job) *)ctx;
    const T *part = j->x;
    T *grad = j->out;
    size_t len = j->B, b0, b1;   /* B: the values to sum */
    (void)slot;
    AF_FN(conv_tasks)(j, c, &b0, &b1);
    for (size_t blk = b0; blk < b1; blk++) {
        size_t i0 = blk * 4096, i1 = len - i0 < 4096 ? len : i0 + 4096;
        for (size_t i = i0; i < i1; i++) {
            T s = part[i];
            for (size_t gi = 1; gi < j->ng; gi++) s += part[gi * j->stride + i];
            grad[i] = j->flag ? grad[i] + s : s;
        }
    }
}

static void AF_FN(conv_reduce)(size_t ng, size_t per, size_t len, const T *part, T *grad, int acc)
{
    AF_FN(conv_job) j = {NULL, len};
    j.x = part;
    j.out = grad;
    j.ng = ng;
    j.stride = per;
    j.flag = acc;
    size_t nblk = (len + 4095) / 4096;
    int nt = af_slot_threads(nblk, (double)len * (double)ng, AF_PAR_MIN_MOVE);
    AF_FN(conv_run)(AF_FN(conv_reduce_chunk), &j, nblk, 1, nt);
}

/* dx sample by sample (tasks: samples): dP = dZ Wt^T block by block, col2im into the sample's own
 * image. W: the kernel, D: dZ, out: dx, flag: add into dx. */
static void AF_FN(conv_dx_sample)(void *ctx, size_t c, size_t slot)
{
    AF_FN(conv_job) *j = (AF_FN(conv_job) *)ctx;
    const conv_plan *p = j->p;
    const af_win_geom *g = &p->g;
    size_t K = p->K, F = p->F, S = p->S, padsz = af_win_padded_size(g), insz = g->H * g->W * g->C;
    size_t b0, b1;
    int acc = j->flag;
    T *sl = AF_FN(conv_slot)(j, slot), *dP = sl;
    size_t *base = (size_t *)(sl + af_round_up(p->mbx * K + (g->padded ? padsz : 0), 16));
    AF_FN(conv_tasks)(j, c, &b0, &b1);
    for (size_t b = b0; b < b1; b++) {
        T *img = g->padded ? sl + p->mbx * K : j->out + b * insz;
        if (g->padded)
            memset(img, 0, padsz * sizeof(T));
        else if (!acc)
            memset(img, 0, insz * sizeof(T));
        for (size_t q0 = 0; q0 < S; q0 += p->mbx) {
            size_t n = S - q0 < p->mbx ? S - q0 : p->mbx;
            af_status s = GEMM(0, 1, n, K, F, (T)1, j->D + (b * S + q0) * F, F, j->W, F, (T)0, dP, K);
            if (s != AF_OK) {
                AF_FN(conv_fail)(j, s);
                return;
            }
            AF_FN(conv_col2im)(p, dP, (const size_t *)(j->scr + p->offs), q0, n, base, img);
        }
        if (g->padded) {
            /* the interior of the padded image is the sample's gradient */
            size_t row = g->W * g->C;
            for (size_t h = 0; h < g->H; h++) {
                const T *src = img + ((h + g->PT) * g->Wp + g->PL) * g->C;
                T *dst = j->out + b * insz + h * row;
                if (acc)
                    for (size_t i = 0; i < row; i++) dst[i] += src[i];
                else
                    memcpy(dst, src, row * sizeof(T));
            }
        }
    }
}

static af_status AF_FN(conv_bwd_input)(const conv_plan *p, size_t B, const T *D, const T *W,
                                       T *dx, int acc, T *scr)
{
    size_t K = p->K, F = p->F, S = p->S;
    if (p->path == CONV_POINTWISE)
        return GEMM(0, 1, B * S, K, F, (T)1, D, F, W, F, acc ? (T)1 : (T)0, dx, K);
    AF_FN(conv_job) j = {p, B};
    j.D = (T *)D;
    j.W = W;
    j.out = dx;
    j.flag = acc;
    j.scr = scr;
    int nt = af_slot_threads(B, (double)B * S * K * F, AF_CONV_PAR_MIN);
    return AF_FN(conv_run)(AF_FN(conv_dx_sample), &j, B, 1, nt);
}

static af_status AF_FN(conv_backward)(const af_op_args *a)
{
    const af_conv_cfg *c = (const af_conv_cfg *)a->cfg;
    conv_plan p;
    af_status s = conv_setup(c, a->in_shape, a->batch, sizeof(T), &p);
    if (s != AF_OK) return s;
    size_t B = a->batch, K = p.K, F = p.F, ng = conv_groups(&p, B * p.S);
    const T *x = (const T *)a->x[0], *W = (const T *)a->param;
    T *aux = (T *)a->aux, *scr = (T *)a->scratch, *D = (T *)a->dy, *G = (T *)a->grad;
    const T *xp = conv_keeps_xpad(&p) ? aux + p.xpad : x;   /* the forward's padded copy, or x */
    const T *Z = af_act_needs_input((af_act)c->act) ? aux + p.zkeep : NULL;
    af_act act = a->fused_loss ? AF_ACT_LINEAR : (af_act)c->act;
    conv_offsets(&p.g, (size_t *)(scr + p.offs));
    s = AF_FN(conv_bwd_weights)(&p, B, act, (T)c->alpha, Z, (const T *)a->y, xp, D, c->use_bias,
                                scr, ng);
    if (s != AF_OK) return s;
    if (a->dx[0]) {
        /* before the gradient is written: W is the forward's (no fused update here) */
        s = AF_FN(conv_bwd_input)(&p, B, D, W, (T *)a->dx[0], a->dx_acc[0], scr);
        if (s != AF_OK) return s;
    }
    AF_FN(conv_reduce)(ng, K * F + F, c->use_bias ? K * F + F : K * F, scr + p.part, G, a->grad_acc);
    return AF_OK;
}

#undef GEMM_EX
#undef GEMM
#include "dtype_end.h"
