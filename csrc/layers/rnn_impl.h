/* rnn_impl.h: forward and backward of the recurrent kind for one dtype (included twice by
 * rnn.c). See rnn.c for the maths and the layouts. */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define GEMM af_sgemm
#else
#define GEMM af_dgemm
#endif
#define PGEMM AF_FN(af_gemm_prepacked)
#define STEP AF_FN(af_rnn_step)
#define DIR AF_FN(rnn_dir)

/* What one direction's step loop reads and writes (its rows r0..r1 are given per call). */
typedef struct {
    const af_rnn_cfg *c;
    const af_rnn_layout *L;
    int back;                  /* this direction runs from the last step to the first */
    int dropped_h;             /* recurrent dropout is on (training) */
    T *aux, *scr;              /* this direction's blocks of aux and scratch */
    const T *U;                /* recurrent kernel (H, G H) */
    const T *X, *W;            /* forward: the input (or its dropped-out copy) and the kernel */
    const T *bias, *bias_rn;   /* added in the step kernel (rnn_cell.h); zero rows without bias */
    const T *mask;             /* B x T, or NULL */
    const T *h0, *c0;          /* B x H initial states, or NULL (zeros) */
    const T *zero;             /* a zero row of max(G H, H) */
    /* forward: sequence outputs (NULL: none); backward: their gradients (NULL: none). Row of
     * sample b, output step q: io + b * ld + q * step + col; q is the processing step, or the
     * input step when aligned. */
    T *io;
    size_t ld, step, col;
    int aligned;
    T scale;                   /* backward: factor on the output gradients (ave: 1/2) */
    T *priv;                   /* forward-only GEMV pass: the unit blocks' own regions (rnn_priv) */
    int fuse;                  /* A = X W made beside the step products (rnn_fuse) */
    const af_op_args *args;    /* whole-direction items (rnn_dir_threads): */
    int own;                   /* the item also makes A = X W / the weight gradients */
    AF_FN(af_gemm_bpanels) upk;  /* U (forward) or U^T (backward) packed for the step GEMMs */
    /* backward: where the step products dR U^T find U^T (op(B), row stride ut_ld): its
     * transposed copy in scratch (ut_tb = 0), or U itself read transposed (ut_tb = 1) when
     * every step product takes the prepacked panels, which pack_b then fills from U
     * (rnn_ut_needed) */
    const T *ut_b;
    size_t ut_ld;
    int ut_tb;
} DIR;

static inline size_t AF_FN(rnn_pos)(const DIR *q, size_t s) { return q->back ? q->L->NT - 1 - s : s; }

/* What a forward-only pass whose threads share the units at batch 1-2 (rnn_units_gemv) keeps
 * in unit block (u0, nu)'s own region instead of the layer's rows, for its n rows: the gates'
 * input parts then activations (row b, step p at gate + (b NT + p) G nu, gate g at + g nu), the
 * biases (G nu), c of the last two steps (by step parity, n x nu each) and gru's h U_n + b_hn
 * (n x nu). The layer's gate and c rows interleave the blocks in 256-byte pieces: with one core
 * writing each block's, the cores' prefetchers kept moving the lines between them (a replica of
 * the pass: 1440-1510 ns a step with them, 1230-1300 with each block's in pages of its own). The
 * values and their order are the same either way. h stays in the layer's rows: the cores
 * exchange it. */
typedef struct {
    T *gate, *bias, *c, *rn;
} AF_FN(rnn_priv_t);

static inline void AF_FN(rnn_priv)(const DIR *q, size_t u0, size_t nu, size_t n, AF_FN(rnn_priv_t) *r)
{
    const af_rnn_layout *L = q->L;
    const rnn_priv_offsets o = rnn_priv_at(n, L->NT, L->G, nu);
    T *base = q->priv + u0 / AF_RNN_UNITS * L->priv_stride;
    r->gate = base + o.gate;
    r->bias = base + o.bias;
    r->c = base + o.c;
    r->rn = base + o.rn;
}

/* c after step s (processing order) in a block's own region: the two buffers alternate. */
static inline T *AF_FN(rnn_priv_c)(const AF_FN(rnn_priv_t) *r, size_t s, size_t n, size_t nu)
{
    return r->c + (s & 1) * n * nu;
}

/* Rows r0..r1 before the first step: h_{-1}, the initial state or zeros (kept for the dU GEMM). */
static void AF_FN(rnn_fwd_begin)(const DIR *q, size_t r0, size_t r1)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, TH = L->NT * H, p0 = AF_FN(rnn_pos)(q, 0) * H;
    T *hp = q->aux + L->a_hp + r0 * TH, *hd = q->dropped_h ? q->aux + L->a_hd + r0 * TH : NULL;
    const T *mh = q->dropped_h ? q->aux + L->a_mh + r0 * H : NULL;
    for (size_t b = 0; b < r1 - r0; b++) {
        T *dst = hp + b * TH + p0;
        if (q->h0) memcpy(dst, q->h0 + (r0 + b) * H, H * sizeof(T));
        else memset(dst, 0, H * sizeof(T));
        if (hd)
            for (size_t j = 0; j < H; j++) hd[b * TH + p0 + j] = dst[j] * mh[b * H + j];
    }
}

/* 1 when the recurrent product of n rows and nu units of each gate (n x H times H x G nu) is
 * made row by row by the GEMM's GEMV kernels, called here directly: where af_sgemm / af_dgemm
 * would take its rows path itself (gemm_impl.h: at most 2 rows, more columns than its skinny
 * kernels take, more multiply-adds than its direct loop's 4096), so every value is computed as
 * the GEMM computes it, without the GEMM's checks and dispatch at every step or the packing of a
 * block's columns (gemv_seg reads them in U). Batch-1 and batch-2 inference. */
static inline int AF_FN(rnn_gemv)(const af_rnn_layout *L, size_t n, size_t nu)
{
    size_t gn = L->G * nu;
    return n <= 2 && gn > AF_GEMM_ROWK_MAX_N(AF_FN(af_kern)()->gemm) &&
           (double)n * (double)gn * (double)L->H > 4096.0;
}

/* 1 when a pass at batch 1 makes most of A = X W beside its recurrent GEMVs (rnn_fuse_at, the
 * kernels' gemv_seg) instead of in one GEMM before the step loop: the GEMVs wait on U's
 * lines from L2 with the FMA units half idle, and the projection's operands sit in registers
 * and L1 (batch-1 LSTM(128), 32 steps: its GEMM was 10.5 of 65 us). Where every GEMM that makes
 * A computes each value as one FMA chain from zero, as the passes do, so the bits are those of
 * the GEMM: k within one cache block, no skinny kernel (unit blocks and H at least
 * AF_RNN_UNITS wide), and the step products GEMVs (rnn_gemv) of whole pass widths. */
static inline int AF_FN(rnn_fuse)(const af_rnn_layout *L)
{
    const AF_FN(af_gemm_kinfo) *ki = AF_FN(af_kern)()->gemm;
    const size_t pc = ki->proj_cols;
    return L->B == 1 && pc && L->NT >= 2 * AF_GEMM_PROJ_ROWS && L->F <= ki->kc && rnn_blocks_project(L) &&
           L->H >= AF_RNN_UNITS && AF_RNN_UNITS > AF_GEMM_ROWK_MAX_N(ki) && L->H % pc == 0 &&
           AF_RNN_UNITS % pc == 0 && AF_FN(rnn_gemv)(L, 1, L->H) && AF_FN(rnn_gemv)(L, 1, AF_RNN_UNITS);
}

/* pj: part `part` of `parts` of the projection passes of step s for units u0..u0+nu (its A
 * rows and columns where the step kernel reads them); 0 when there are none. */
static int AF_FN(rnn_fuse_job)(const DIR *q, size_t s, size_t u0, size_t nu, size_t part, size_t parts,
                               AF_FN(af_gemm_proj) *pj)
{
    const af_rnn_layout *L = q->L;
    size_t t0, q0, q1;
    if (!q->fuse || !rnn_fuse_at(L, q->back, s, L->G * nu / AF_FN(af_kern)()->gemm->proj_cols, &t0, &q0, &q1))
        return 0;
    pj->k = L->F, pj->x = q->X + t0 * L->F, pj->ldx = L->F;
    pj->w = q->W + u0, pj->ldw = L->GH;
    pj->nseg = L->G, pj->segw = nu, pj->wseg = L->H;
    if (q->priv && nu < L->H) {
        AF_FN(rnn_priv_t) pr;
        AF_FN(rnn_priv)(q, u0, nu, 1, &pr);
        pj->p = pr.gate + t0 * L->G * nu, pj->ldp = L->G * nu, pj->pseg = nu;
    } else {
        pj->p = q->aux + L->a_gate + t0 * L->GH + u0, pj->ldp = L->GH, pj->pseg = L->H;
    }
    pj->pass0 = q0 + (q1 - q0) * part / parts;
    pj->pass1 = q0 + (q1 - q0) * (part + 1) / parts;
    return pj->pass1 > pj->pass0;
}

/* Rows p0..p1 of U (the part of the recurrent product over h_{t-1}[p0:p1]) for the unit block
 * u0..u0+nu of every gate at step s, all B rows, into the block's part of R (as rnn_fwd_step
 * places it): gemv_seg per row, continuing the chains of rows 0..p0 when p0 > 0, so calls over
 * consecutive ranges give the bits of one call over all H rows. A block whose product is a GEMV
 * (rnn_gemv) in a pass whose threads share the units (rnn_units_forward). A fused pass
 * (rnn_fuse) makes part `part` of `parts` of the step's projection passes beside it. */
static void AF_FN(rnn_rec_rows)(const DIR *q, size_t s, size_t u0, size_t nu, size_t p0, size_t p1,
                               size_t part, size_t parts)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, TH = L->NT * H, gn = L->G * nu, p = AF_FN(rnn_pos)(q, s);
    const T *A = (q->dropped_h ? q->aux + L->a_hd : q->aux + L->a_hp) + p * H;
    T *Rb = q->scr + L->s_rec + L->B * L->G * u0;
    const AF_FN(af_gemm_kinfo) *ki = AF_FN(af_kern)()->gemm;
    AF_FN(af_gemm_proj) pj;
    const int fj = AF_FN(rnn_fuse_job)(q, s, u0, nu, part, parts, &pj); /* part `part` of its passes */
    for (size_t b = 0; b < L->B && p1 > p0; b++)
        ki->gemv_seg(p1 - p0, L->G, H, nu, A + b * TH + p0, q->U + p0 * L->GH + u0, L->GH, Rb + b * gn, nu,
                     p0 > 0, fj ? &pj : NULL);
}

/* Forward step s of rows r0..r1, units u0..u0+nu: all of them (u0 = 0, nu = H), or one block
 * whose columns of U are packed in Ub (H, G nu) (rnn_pack_block; not read where rnn_gemv).
 * dummy: an output row nobody reads, for a layer that returns no sequence. rec_ready: a block's
 * recurrent product is already in R (rnn_rec_rows). */
static af_status AF_FN(rnn_fwd_step)(const DIR *q, size_t r0, size_t r1, size_t s, size_t u0, size_t nu,
                                     const T *Ub, T *dummy, int rec_ready)
{
    const af_rnn_cfg *c = q->c;
    const af_rnn_layout *L = q->L;
    const size_t NS = L->NT, H = L->H, GH = L->GH, n = r1 - r0, TH = NS * H, p = AF_FN(rnn_pos)(q, s);
    const int lstm = c->cell == AF_RNN_LSTM;
    T *hp = q->aux + L->a_hp + r0 * TH, *R = q->scr + L->s_rec + r0 * GH;
    T *cs = lstm ? q->aux + L->a_c + r0 * TH : NULL;
    T *hd = q->dropped_h ? q->aux + L->a_hd + r0 * TH : NULL;
    STEP st;
    memset(&st, 0, sizeof st);
    st.rows = n;
    st.units = nu;
    st.stride = H;
    st.act = c->act;
    st.rec_act = c->rec_act;
    const AF_FN(af_gemm_kinfo) *ki = AF_FN(af_kern)()->gemm;
    AF_FN(af_gemm_proj) pj; /* a fused pass's projection passes of this step (rnn_fuse) */
    const int fj = !rec_ready && AF_FN(rnn_fuse_job)(q, s, u0, nu, 0, 1, &pj);
    if (s == 0 && !q->h0) {
        st.rec = (T *)q->zero;                /* h_{-1} = 0: R = 0, one row for all */
        st.ld_rec = 0;
        st.rec_stride = H;
        if (fj) ki->gemv_seg(0, L->G, H, nu, NULL, NULL, 0, NULL, 0, 0, &pj); /* the passes alone */
    } else if (nu == H) {
        /* R = h_{t-1} U: every gate in one GEMM (or its GEMV per row; with a fused pass's
         * projection, the same chains by gemv_seg over all G H columns as one segment) */
        const T *A = hd ? hd + p * H : hp + p * H;
        if (fj) {
            ki->gemv_seg(H, 1, GH, GH, A, q->U, GH, R, GH, 0, &pj);
        } else if (AF_FN(rnn_gemv)(L, n, H)) {
            for (size_t b = 0; b < n; b++) ki->gemv(H, 0, GH, (T)1, A + b * TH, 1, q->U, GH, (T)0, R + b * GH);
        } else {
            af_status e = PGEMM(0, 0, n, GH, H, (T)1, A, TH, q->U, GH, &q->upk, (T)0, R, GH);
            if (e != AF_OK) return e;
        }
        st.rec = R;
        st.ld_rec = GH;
        st.rec_stride = H;
    } else {
        /* the block's gates in one GEMM (or its GEMV per row, on the block's columns of U where
         * they lie), into the block's own part of R: (rows, G nu) */
        const T *A = hd ? hd + p * H : hp + p * H;
        size_t gn = L->G * nu;
        T *Rb = R + n * L->G * u0;
        if (rec_ready) {
            /* made share by share by rnn_units_forward */
        } else if (AF_FN(rnn_gemv)(L, n, nu)) {
            for (size_t b = 0; b < n; b++)
                ki->gemv_seg(H, L->G, H, nu, A + b * TH, q->U + u0, GH, Rb + b * gn, nu, 0, fj ? &pj : NULL);
        } else {
            af_status e = GEMM(0, 0, n, gn, H, (T)1, A, TH, Ub, gn, (T)0, Rb, gn);
            if (e != AF_OK) return e;
        }
        st.rec = Rb - u0;                     /* the kernel adds u0 back below */
        st.ld_rec = gn;
        st.rec_stride = nu;
    }
    st.rec += u0;
    st.gate = q->aux + L->a_gate + r0 * NS * GH + p * GH + u0;
    st.ld_gate = NS * GH;
    st.bias = q->bias + u0;
    st.bias_rn = q->bias_rn + u0;
    st.rn = c->cell == AF_RNN_GRU ? q->aux + L->a_rn + r0 * TH + p * H + u0 : NULL;
    st.ld_rn = st.ld_hp = st.ld_c = TH;
    st.hp = hp + p * H + u0;
    if (lstm) {
        if (s > 0) {
            st.cp = cs + AF_FN(rnn_pos)(q, s - 1) * H + u0;
            st.ld_cp = TH;
        } else if (q->c0) {
            st.cp = q->c0 + r0 * H + u0;
            st.ld_cp = H;
        } else {
            st.cp = q->zero;
            st.ld_cp = 0;
        }
        st.c = cs + p * H + u0;
    }
    if (s + 1 < NS) {
        st.h = hp + AF_FN(rnn_pos)(q, s + 1) * H + u0;
        st.ld_h = TH;
    } else {
        st.h = q->aux + L->a_lh + r0 * H + u0;
        st.ld_h = H;
    }
    if (q->io) {
        st.y = q->io + r0 * q->ld + (q->aligned ? p : s) * q->step + q->col + u0;
        st.ld_y = q->ld;
    } else {
        st.y = dummy + u0;
        st.ld_y = 0;
    }
    st.mask = q->mask ? q->mask + r0 * NS + p : NULL;
    st.ld_mask = NS;
    if (q->priv && nu < H) {
        /* a block of a forward-only GEMV pass: its gates, biases, c (and rn) in its own region */
        AF_FN(rnn_priv_t) pr;
        AF_FN(rnn_priv)(q, u0, nu, n, &pr);
        st.stride = nu;
        st.gate = pr.gate + p * L->G * nu;
        st.ld_gate = NS * L->G * nu;
        st.bias = pr.bias;
        if (lstm) {
            if (s > 0) {
                st.cp = AF_FN(rnn_priv_c)(&pr, s - 1, n, nu);
                st.ld_cp = nu;
            }
            st.c = AF_FN(rnn_priv_c)(&pr, s, n, nu);
            st.ld_c = nu;
        }
        if (st.rn) {
            st.rn = pr.rn;
            st.ld_rn = nu;
        }
    }
    AF_FN(af_rnn_step_forward)(c->cell, &st);
    if (hd && s + 1 < NS) {
        /* the next step's recurrent product sees h_t times the recurrent dropout mask */
        const T *mh = q->aux + L->a_mh + r0 * H;
        size_t p1 = AF_FN(rnn_pos)(q, s + 1) * H;
        for (size_t b = 0; b < n; b++)
            for (size_t j = u0; j < u0 + nu; j++) hd[b * TH + p1 + j] = hp[b * TH + p1 + j] * mh[b * H + j];
    }
    return AF_OK;
}

/* Rows r0..r1 after the last step: the final c. */
static void AF_FN(rnn_fwd_end)(const DIR *q, size_t r0, size_t r1)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, TH = L->NT * H, pl = AF_FN(rnn_pos)(q, L->NT - 1) * H;
    if (q->c->cell != AF_RNN_LSTM) return;
    if (q->priv) { /* each block's c of the last step, from its own region */
        for (size_t k = 0; k < H / AF_RNN_UNITS; k++) {
            size_t u0, nu, n = r1 - r0;
            AF_FN(rnn_priv_t) pr;
            rnn_unit_block(H, k, &u0, &nu);
            AF_FN(rnn_priv)(q, u0, nu, n, &pr);
            for (size_t b = 0; b < n; b++)
                memcpy(q->aux + L->a_lc + (r0 + b) * H + u0, AF_FN(rnn_priv_c)(&pr, L->NT - 1, n, nu) + b * nu,
                       nu * sizeof(T));
        }
        return;
    }
    for (size_t b = r0; b < r1; b++)
        memcpy(q->aux + L->a_lc + b * H, q->aux + L->a_c + b * TH + pl, H * sizeof(T));
}

/* The rows of A = X W made by GEMMs before the step loop, from input step *t0 on: all B T, or a
 * fused pass's first steps' (rnn_fuse_first; the others come with the steps). */
static inline size_t AF_FN(rnn_project_rows)(const DIR *q, size_t *t0)
{
    const size_t m = q->fuse ? rnn_fuse_first(q->L) : q->L->B * q->L->NT;
    *t0 = q->fuse && q->back ? q->L->NT - m : 0;
    return m;
}

/* A = X W for all B T rows of one direction in one GEMM (the biases are added in the step
 * kernel), or the rows rnn_project_rows gives. */
static af_status AF_FN(rnn_project)(const DIR *q)
{
    const af_rnn_layout *L = q->L;
    size_t t0;
    const size_t m = AF_FN(rnn_project_rows)(q, &t0);
    return GEMM(0, 0, m, L->GH, L->F, (T)1, q->X + t0 * L->F, L->F, q->W, L->GH, (T)0,
                q->aux + L->a_gate + t0 * L->GH, L->GH);
}

/* The step loop of one direction over rows r0..r1 (sample block blk); a whole-direction item
 * makes its input projection first. */
static af_status AF_FN(rnn_item_forward)(const DIR *q, size_t r0, size_t r1, size_t blk)
{
    T *dummy = q->scr + q->L->s_dummy + blk * q->L->H;
    if (q->own) {
        af_status e = AF_FN(rnn_project)(q);
        if (e != AF_OK) return e;
    }
    AF_FN(rnn_fwd_begin)(q, r0, r1);
    for (size_t s = 0; s < q->L->NT; s++) {
        af_status e = AF_FN(rnn_fwd_step)(q, r0, r1, s, 0, q->L->H, NULL, dummy, 0);
        if (e != AF_OK) return e;
    }
    AF_FN(rnn_fwd_end)(q, r0, r1);
    return AF_OK;
}

/* The columns of U of the unit block starting at u0, gate by gate, as one contiguous (H, G nu)
 * matrix at scratch s_ut + G u0 H (so a block's recurrent product streams one region). */
static void AF_FN(rnn_pack_block)(const DIR *q, size_t u0)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, GH = L->GH;
    size_t nu, k = u0 / AF_RNN_UNITS;
    rnn_unit_block(H, k, &u0, &nu);
    T *dst = q->scr + L->s_ut + L->G * u0 * H;
    for (size_t i = 0; i < H; i++)
        for (size_t g = 0; g < L->G; g++)
            memcpy(dst + (i * L->G + g) * nu, q->U + i * GH + g * H + u0, nu * sizeof(T));
}

/* Ask for units j0..j1 of h_{t-1} of step s at once (just written by another core): the
 * recurrent product reads them value by value, and would otherwise wait for their cache lines
 * one after the other. */
static inline void AF_FN(rnn_prefetch_h)(const DIR *q, size_t s, size_t j0, size_t j1)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, TH = L->NT * H, p = AF_FN(rnn_pos)(q, s);
    const T *h = (q->dropped_h ? q->aux + L->a_hd : q->aux + L->a_hp) + p * H;
    for (size_t b = 0; b < L->B; b++)
        for (size_t j = j0; j < j1; j += 64 / sizeof(T)) __builtin_prefetch(h + b * TH + j, 0, 3);
}

/* The units of h that thread t of nth sharing the units computes: its whole blocks' (the same
 * cut as rnn_units_forward's). */
static inline void AF_FN(rnn_share)(size_t H, size_t t, size_t nth, size_t *j0, size_t *j1)
{
    const size_t nub = H / AF_RNN_UNITS, k0 = nub * t / nth, k1 = nub * (t + 1) / nth;
    *j0 = k0 * AF_RNN_UNITS;
    *j1 = k1 == nub ? H : k1 * AF_RNN_UNITS;
}

/* Share t's columns of A = X W: its blocks' GEMMs, gate by gate, when the threads
 * sharing the units make them (rnn_blocks_project). */
static af_status AF_FN(rnn_project_share)(const DIR *q, size_t t, size_t nth)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, nub = H / AF_RNN_UNITS, k0 = nub * t / nth, k1 = nub * (t + 1) / nth;
    for (size_t k = k0; k < k1; k++) {
        size_t u0, nu;
        rnn_unit_block(H, k, &u0, &nu);
        T *out = q->aux + L->a_gate + u0;
        size_t ld = L->GH, gs = H;
        if (q->priv) { /* the block's own region, and its biases beside them */
            AF_FN(rnn_priv_t) pr;
            AF_FN(rnn_priv)(q, u0, nu, L->B, &pr);
            out = pr.gate, ld = L->G * nu, gs = nu;
            for (size_t g = 0; g < L->G; g++) memcpy(pr.bias + g * nu, q->bias + g * H + u0, nu * sizeof(T));
        }
        size_t t0;
        const size_t m = AF_FN(rnn_project_rows)(q, &t0);
        for (size_t g = 0; g < L->G && rnn_blocks_project(L); g++) {
            af_status e = GEMM(0, 0, m, nu, L->F, (T)1, q->X + t0 * L->F, L->F, q->W + g * H + u0, L->GH, (T)0,
                               out + t0 * ld + g * gs, ld);
            if (e != AF_OK) return e;
        }
    }
    return AF_OK;
}

/* The step loop of the one direction of a batch too small to cut into sample blocks, on nt >= 2
 * threads sharing the units: fixed blocks (rnn_unit_block), each thread taking whole blocks
 * (their columns of U packed first where the GEMM reads them, so each block streams one region);
 * every step, a thread makes the recurrent product and the state update of its units, and
 * before the next step (which reads all of h) waits until every other thread has finished this
 * one: a step counter per thread (rnn_progress), released after the step's states are written,
 * rather than a barrier of the whole team. No thread overwrites what another may still read: a
 * thread is at most one step ahead of the others, and each step writes only its own units of
 * that step's rows (and its own part of R). Each value is computed as on one thread
 * (rnn_item_forward): the GEMM's (and its GEMV's) result for a column never depends on the
 * columns computed with it, and blocks start at multiples of every vector width, so the step
 * kernel's vector and tail parts cover the same units.
 * GEMV blocks (batch 1 and 2) take rnn_units_gemv instead. */
static af_status AF_FN(rnn_units_gemv)(const DIR *q, int nt);

static af_status AF_FN(rnn_units_forward)(const DIR *q, int nt)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, nub = H / AF_RNN_UNITS;
    af_status st[AF_RNN_MAX_ITEMS];
    rnn_progress done[AF_RNN_MAX_ITEMS];
    T *dummy = q->scr + L->s_dummy;
    if (nt < 2) return AF_FN(rnn_item_forward)(q, 0, L->B, 0);
    if (nt > AF_RNN_MAX_ITEMS) nt = AF_RNN_MAX_ITEMS;
    /* GEMV blocks (every block is one when the smallest is) */
    if (AF_FN(rnn_gemv)(L, L->B, AF_RNN_UNITS)) return AF_FN(rnn_units_gemv)(q, nt);
    for (size_t k = 0; k < (size_t)nt; k++) {
        st[k] = AF_OK;
        atomic_init(&done[k].steps, 0);
    }
    AF_FN(rnn_fwd_begin)(q, 0, L->B);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        size_t tid, nth;
        rnn_team_ids(&tid, &nth);
        size_t k0 = nub * tid / nth, k1 = nub * (tid + 1) / nth;
        for (size_t k = k0; k < k1; k++) {
            size_t u0, nu;
            rnn_unit_block(H, k, &u0, &nu);
            if (!AF_FN(rnn_gemv)(L, L->B, nu)) AF_FN(rnn_pack_block)(q, u0);
        }
        af_status e = AF_FN(rnn_project_share)(q, tid, nth); /* its blocks' columns of A = X W */
        for (size_t s = 0; s < L->NT; s++) {
            if (s > 0) {
                rnn_wait_steps(done, nth, tid, s);
                AF_FN(rnn_prefetch_h)(q, s, 0, H);
            }
            for (size_t k = k0; k < k1 && e == AF_OK; k++) {
                size_t u0, nu;
                rnn_unit_block(H, k, &u0, &nu);
                e = AF_FN(rnn_fwd_step)(q, 0, L->B, s, u0, nu, q->scr + L->s_ut + L->G * u0 * H, dummy, 0);
            }
            /* published after a failed step too: the others never wait for a step that never comes */
            atomic_store_explicit(&done[tid].steps, s + 1, memory_order_release);
        }
        st[tid] = e;
    }
    for (size_t k = 0; k < (size_t)nt; k++)
        if (st[k] != AF_OK) return st[k];
    AF_FN(rnn_fwd_end)(q, 0, L->B);
    return AF_OK;
}

/* Share t's projection made by the calling thread unless another has claimed it, in which case
 * wait until that one has made it. Marked made after a failure too (nobody waits forever); the
 * maker returns the error. */
static af_status AF_FN(rnn_claim_project)(const DIR *q, rnn_team *tm, size_t t, size_t nth)
{
    size_t expect = 0;
    af_status e = AF_OK;
    if (atomic_compare_exchange_strong(&tm->proj[t].steps, &expect, 1)) {
        e = AF_FN(rnn_project_share)(q, t, nth);
        atomic_store_explicit(&tm->proj[t].steps, 2, memory_order_release);
    } else {
        rnn_wait_step(&tm->proj[t], 2);
    }
    return e;
}

/* Step s of every block on the first thread alone (before the others have joined), each block
 * computed as its own thread computes it. */
static af_status AF_FN(rnn_solo_step)(const DIR *q, size_t s, T *dummy)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, nub = H / AF_RNN_UNITS;
    for (size_t k = 0; k < nub; k++) {
        size_t u0, nu;
        rnn_unit_block(H, k, &u0, &nu);
        af_status e = AF_FN(rnn_fwd_step)(q, 0, L->B, s, u0, nu, NULL, dummy, 0);
        if (e != AF_OK) return e;
    }
    return AF_OK;
}

/* Step s of thread tid's share (its blocks) once every thread computes its own: the recurrent
 * product share by share of h_{t-1} (rnn_share) in the chains' order, each share once its thread
 * has finished the step before (rnn_rec_rows continues the chains), so the thread of the first
 * share starts on its own units at once and the others overlap their waits with product work;
 * then the blocks' state updates. Skips the work (not the waits) after a failure. */
static af_status AF_FN(rnn_share_step)(const DIR *q, rnn_team *tm, size_t tid, size_t nth, size_t s, T *dummy,
                                      af_status e)
{
    const af_rnn_layout *L = q->L;
    const size_t H = L->H, nub = H / AF_RNN_UNITS, k0 = nub * tid / nth, k1 = nub * (tid + 1) / nth;
    for (size_t o = 0; o < nth && s > 0; o++) {
        size_t j0, j1;
        AF_FN(rnn_share)(H, o, nth, &j0, &j1);
        if (o != tid) {
            rnn_wait_step(&tm->done[o], s);
            AF_FN(rnn_prefetch_h)(q, s, j0, j1);
        }
        for (size_t k = k0; k < k1 && e == AF_OK; k++) {
            size_t u0, nu;
            rnn_unit_block(H, k, &u0, &nu);
            AF_FN(rnn_rec_rows)(q, s, u0, nu, j0, j1, o, nth);
        }
    }
    for (size_t k = k0; k < k1 && e == AF_OK; k++) {
        size_t u0, nu;
        rnn_unit_block(H, k, &u0, &nu);
        e = AF_FN(rnn_fwd_step)(q, 0, L->B, s, u0, nu, NULL, dummy, s > 0);
    }
    return e;
}

/* The first thread of a GEMV pass: its share's projection, then the steps, alone (every share,
 * the others' projections claimed or awaited first) until all the others have joined, then its
 * own share; the step where it switches is published with the others' step counters set to it
 * (it made their states so far). Publishes every step, and the switch (the step count when it
 * never came), after a failure too: the others never wait for what never comes. */
static af_status AF_FN(rnn_units_lead)(const DIR *q, rnn_team *tm, size_t nth, T *dummy)
{
    const af_rnn_layout *L = q->L;
    size_t split = SIZE_MAX;
    af_status e = AF_FN(rnn_claim_project)(q, tm, 0, nth);
    for (size_t s = 0; s < L->NT; s++) {
        if (split == SIZE_MAX && atomic_load_explicit(&tm->joined, memory_order_acquire) == nth - 1) {
            split = s;
            for (size_t t = 1; t < nth; t++) atomic_store_explicit(&tm->done[t].steps, s, memory_order_release);
            atomic_store_explicit(&tm->split, s, memory_order_release);
        }
        if (split != SIZE_MAX) {
            e = AF_FN(rnn_share_step)(q, tm, 0, nth, s, dummy, e);
        } else {
            for (size_t t = 1; t < nth && s == 0; t++) {
                af_status et = AF_FN(rnn_claim_project)(q, tm, t, nth);
                if (e == AF_OK) e = et;
            }
            if (e == AF_OK) e = AF_FN(rnn_solo_step)(q, s, dummy);
        }
        atomic_store_explicit(&tm->done[0].steps, s + 1, memory_order_release);
    }
    if (split == SIZE_MAX) atomic_store_explicit(&tm->split, L->NT, memory_order_release);
    return e;
}

/* Thread tid > 0 of a GEMV pass: join, then its share's projection (unless the first thread has
 * claimed it) and, from the step the first thread switches at, its share's steps. A thread
 * woken on the first thread's CPU moves off it first (af_leave_cpu, pool.h), or stays out if it cannot:
 * the first then finishes alone. */
static af_status AF_FN(rnn_units_follow)(const DIR *q, rnn_team *tm, size_t tid, size_t nth, int lead_cpu,
                                        T *dummy)
{
    const af_rnn_layout *L = q->L;
    if (!af_leave_cpu(lead_cpu)) return AF_OK;
    /* joined before the projection: a thread that runs now is the first's partner from step 0
     * (announced after it, the first thread finished its own projection first and made step 0
     * of every share alone, 1.25 us of a 62 us batch-1 LSTM call, instead of its own half) */
    atomic_fetch_add_explicit(&tm->joined, 1, memory_order_acq_rel);
    af_status e = AF_FN(rnn_claim_project)(q, tm, tid, nth);
    rnn_wait_change(&tm->split, SIZE_MAX);
    for (size_t s = atomic_load_explicit(&tm->split, memory_order_acquire); s < L->NT; s++) {
        e = AF_FN(rnn_share_step)(q, tm, tid, nth, s, dummy, e);
        atomic_store_explicit(&tm->done[tid].steps, s + 1, memory_order_release);
    }
    return e;
}

typedef struct {
    const DIR *q;
    rnn_team *tm;
    T *dummy;
    int lead_cpu;
    size_t nth;
    af_status *st;
} AF_FN(rnn_gemv_job);

/* Chunk t of a GEMV pass (a pool job of one chunk per thread): the first thread's part, or
 * thread t's. The calling thread runs chunk 0; it runs another chunk only when no worker took
 * it before chunk 0 ended, and then the first thread has made every share alone (none joined). */
static void AF_FN(rnn_gemv_chunk)(void *ctx, size_t t, size_t slot)
{
    AF_FN(rnn_gemv_job) *j = (AF_FN(rnn_gemv_job) *)ctx;
    if (t == 0)
        j->st[0] = AF_FN(rnn_units_lead)(j->q, j->tm, j->nth, j->dummy);
    else if (slot != 0)
        j->st[t] = AF_FN(rnn_units_follow)(j->q, j->tm, t, j->nth, j->lead_cpu, j->dummy);
}

/* The step loop of one direction whose recurrent products are GEMVs (batch 1 and 2), on up to nt
 * threads (af_pool_threads: one on a crowded machine) sharing the units as rnn_units_forward, except that the first thread (the caller,
 * always running) never waits for a thread that has not started: it computes every share alone
 * until all the others have joined (a worker woken from sleep starts late, and one woken on the
 * caller's CPU would share its core: before, a quarter of batch-1 LSTM passes run after short
 * pauses took over 1 ms on 2 vCPUs), then each thread its own. Which thread computes a share's step or projection never
 * changes how: the same calls, so the same bits as one thread. No thread overwrites what another
 * may still read: the switch is published (release) after the first thread's last step alone,
 * and from then on as in rnn_units_forward. */
static af_status AF_FN(rnn_units_gemv)(const DIR *q0, int nt)
{
    const af_rnn_layout *L = q0->L;
    /* forward only (and the blocks make their projections): the blocks' own regions */
    DIR qd = *q0;
    const DIR *q = &qd;
    if (q0->args && q0->args->forward_only && L->priv_stride && L->B <= 2 && rnn_blocks_project(L))
        qd.priv = q0->scr + L->s_priv;
    af_status st[AF_RNN_MAX_ITEMS];
    rnn_team tm;
    /* the pool, not an OpenMP region: a region ends at a barrier that waits for a worker woken
     * late (after a pause, often longer than the whole pass), the pool's caller never does */
    const size_t nth = (size_t)af_pool_threads(nt);
    AF_FN(rnn_gemv_job) job = {q, &tm, q->scr + L->s_dummy, rnn_cpu(), nth, st};
    for (size_t k = 0; k < nth; k++) {
        st[k] = AF_OK;
        atomic_init(&tm.done[k].steps, 0);
        atomic_init(&tm.proj[k].steps, rnn_blocks_project(L) ? 0 : 2);   /* else made before */
    }
    atomic_init(&tm.joined, 0);
    atomic_init(&tm.split, SIZE_MAX);
    AF_FN(rnn_fwd_begin)(q, 0, L->B);
    af_pool_run(AF_FN(rnn_gemv_chunk), &job, nth, (int)nth);
    for (size_t k = 0; k < nth; k++)
        if (st[k] != AF_OK) return st[k];
    AF_FN(rnn_fwd_end)(q, 0, L->B);
    return AF_OK;
}

/* Backpropagation through time of one direction over rows r0..r1: the saved activations become
 * dA in place (and dR_n for gru); scratch gh / gc start as dL/d(final h, c) and end as
 * dL/d(initial h, c). */
static af_status AF_FN(rnn_item_backward)(const DIR *q, size_t r0, size_t r1)
{
    const af_rnn_cfg *c = q->c;
    const af_rnn_layout *L = q->L;
    const size_t NS = L->NT, H = L->H, GH = L->GH, n = r1 - r0, TH = NS * H;
    const int lstm = c->cell == AF_RNN_LSTM, gru = c->cell == AF_RNN_GRU;
    T *gate = q->aux + L->a_gate + r0 * NS * GH, *hp = q->aux + L->a_hp + r0 * TH;
    T *cs = lstm ? q->aux + L->a_c + r0 * TH : NULL, *rn = gru ? q->aux + L->a_rn + r0 * TH : NULL;
    const T *mh = q->dropped_h ? q->aux + L->a_mh + r0 * H : NULL;
    T *R = q->scr + L->s_rec + r0 * GH, *gh = q->scr + L->s_gh + r0 * H;
    T *tmp = q->dropped_h ? q->scr + L->s_tmp + r0 * H : NULL;
    STEP st;
    memset(&st, 0, sizeof st);
    st.rows = n;
    st.units = st.stride = st.rec_stride = H;
    st.act = c->act;
    st.rec_act = c->rec_act;
    st.ld_gate = NS * GH;
    st.ld_rn = st.ld_hp = st.ld_c = TH;
    st.ld_mask = NS;
    st.gh = gh;
    st.gc = lstm ? q->scr + L->s_gc + r0 * H : NULL;
    st.rec = R;
    st.ld_rec = GH;
    for (size_t s = NS; s-- > 0;) {
        size_t p = AF_FN(rnn_pos)(q, s);
        st.gate = gate + p * GH;
        st.rn = gru ? rn + p * H : NULL;
        st.hp = hp + p * H;
        if (lstm) {
            if (s > 0) {
                st.cp = cs + AF_FN(rnn_pos)(q, s - 1) * H;
                st.ld_cp = TH;
            } else if (q->c0) {
                st.cp = q->c0 + r0 * H;
                st.ld_cp = H;
            } else {
                st.cp = q->zero;
                st.ld_cp = 0;
            }
            st.c = cs + p * H;
        }
        if (q->io) {
            st.gy = q->io + r0 * q->ld + (q->aligned ? p : s) * q->step + q->col;
            st.ld_gy = q->ld;
            st.gy_scale = q->scale;
        } else {
            st.gy = q->zero;                  /* no sequence output: dL/dy_t = 0 */
            st.ld_gy = 0;
            st.gy_scale = 0;
        }
        st.mask = q->mask ? q->mask + r0 * NS + p : NULL;
        AF_FN(af_rnn_step_backward)(c->cell, &st);
        if (s == 0 && !q->h0) break;   /* the zero initial state needs no gradient */
        /* dL/dh_{t-1} += dR U^T (times the recurrent dropout mask) */
        const T *dR = gru ? R : st.gate;
        size_t ldr = gru ? GH : NS * GH;
        af_status e;
        if (tmp) {
            if ((e = PGEMM(0, q->ut_tb, n, H, GH, (T)1, dR, ldr, q->ut_b, q->ut_ld, &q->upk, (T)0, tmp, H)) != AF_OK)
                return e;
            for (size_t i = 0; i < n * H; i++) gh[i] += tmp[i] * mh[i];
        } else if ((e = PGEMM(0, q->ut_tb, n, H, GH, (T)1, dR, ldr, q->ut_b, q->ut_ld, &q->upk, (T)1, gh, H)) !=
                   AF_OK) {
            return e;
        }
    }
    return AF_OK;
}

static af_status AF_FN(rnn_weight_grads)(const af_op_args *a, const af_rnn_layout *L, const DIR *q, size_t d);

/* U (forward: op(B) of the step product h U) or U^T (backward: of dR U^T, from q->ut_b) packed
 * once into q's pack region when the step GEMMs of n0..n1 rows take the GEMM's packed path
 * (af_gemm_takes_bpanels), which otherwise packs it at every step (or reads its rows G H apart
 * in place, a stride that maps a panel onto few L1 sets); they then read the panels there, with
 * the same operations. A BiLSTM's training pass (batch 32, AVX2) spent a tenth of
 * its time packing U. */
static void AF_FN(rnn_prepack)(DIR *q, int backward, size_t n0, size_t n1)
{
    const af_rnn_layout *L = q->L;
    const size_t k = backward ? L->GH : L->H, n = backward ? L->H : L->GH;
    if (AF_FN(af_gemm_takes_bpanels)(0, 0, n0, n, k) || AF_FN(af_gemm_takes_bpanels)(0, 0, n1, n, k))
        AF_FN(af_gemm_bpack)(&q->upk, backward ? q->ut_tb : 0, k, n, backward ? q->ut_b : q->U,
                             backward ? q->ut_ld : n, q->scr + L->s_pk, L->pk_len);
}

/* Whether some step product dR U^T of the backward pass reads U^T in place, so needs the
 * transposed copy: not when the row counts of every item (B / nsb rounded down and up) take the
 * packed path, whose prepacked panels rnn_prepack then fills from U directly (the same values,
 * so the same bits; the copy cost a BiLSTM's training pass 1.4%). Whether a product takes
 * panels is asked as for the copy (tb = 0), so the paths taken are those of the copy. */
static int AF_FN(rnn_ut_needed)(const af_rnn_layout *L)
{
    size_t n0 = L->B / L->nsb, n1 = (L->B + L->nsb - 1) / L->nsb;
    return !(AF_FN(af_gemm_takes_bpanels)(0, 0, n0, L->H, L->GH) &&
             AF_FN(af_gemm_takes_bpanels)(0, 0, n1, L->H, L->GH));
}

/* What the items of one pass share (a pool job of one chunk per item). */
typedef struct {
    DIR *dirs;
    const af_rnn_layout *L;
    int backward;
    af_status *st;
} AF_FN(rnn_items_job);

/* Item it: the step loop of direction it / nsb over sample block it % nsb. */
static void AF_FN(rnn_item_chunk)(void *ctx, size_t it, size_t slot)
{
    (void)slot;
    const AF_FN(rnn_items_job) *j = (const AF_FN(rnn_items_job) *)ctx;
    const af_rnn_layout *L = j->L;
    size_t d = it / L->nsb, k = it % L->nsb;
    size_t r0 = L->B * k / L->nsb, r1 = L->B * (k + 1) / L->nsb;
    DIR q = j->dirs[d];
    if (L->nsb == 1) AF_FN(rnn_prepack)(&q, j->backward, r1 - r0, r1 - r0);
    af_status s = j->backward ? AF_FN(rnn_item_backward)(&q, r0, r1) : AF_FN(rnn_item_forward)(&q, r0, r1, k);
    if (j->backward && q.own && s == AF_OK) s = AF_FN(rnn_weight_grads)(q.args, L, &q, d);
    j->st[it] = s;
}

/* The forward (or backward) step loops of every (direction, sample block), on threads when the
 * work pays for it; a whole-direction item's backward also makes its weight gradients. U (or
 * U^T) is packed by the item's thread when a direction is one item, else before the items.
 * The pool, not an OpenMP region: its caller never waits for a worker that has not started
 * (it runs the items nobody took), and a step the thread timing runs alone (tune.h) runs its
 * items alone too. */
static af_status AF_FN(rnn_items)(DIR *dirs, const af_rnn_layout *L, int backward)
{
    size_t items = L->D * L->nsb;
    af_status st[AF_RNN_MAX_ITEMS];
    double work = (double)L->B * (double)L->NT * (double)L->GH * (double)L->H * (double)L->D;
    int nt = items > 1 && work >= AF_RNN_PAR_MIN ? af_get_num_threads() : 1;
    if (nt > (int)items) nt = (int)items;
    for (size_t d = 0; d < L->D && L->nsb > 1; d++)
        AF_FN(rnn_prepack)(&dirs[d], backward, L->B / L->nsb, (L->B + L->nsb - 1) / L->nsb);
    AF_FN(rnn_items_job) job = {dirs, L, backward, st};
    af_pool_run(AF_FN(rnn_item_chunk), &job, items, nt);
    for (size_t it = 0; it < items; it++)
        if (st[it] != AF_OK) return st[it];
    return AF_OK;
}

/* a (op) b for the merge modes other than concat. */
static inline T AF_FN(rnn_merge)(int m, T a, T b)
{
    return m == AF_MERGE_SUM ? a + b : m == AF_MERGE_MUL ? a * b : (T)0.5 * (a + b);
}

/* The parts of one direction every pass shares. */
static void AF_FN(rnn_dir_setup)(const af_op_args *a, const af_rnn_layout *L, size_t d, DIR *q)
{
    const af_rnn_cfg *c = (const af_rnn_cfg *)a->cfg;
    const T *P = (const T *)a->param + d * L->n_per;
    size_t st0 = 1 + (size_t)c->mask;
    memset(q, 0, sizeof *q);
    q->c = c;
    q->L = L;
    q->back = d == 0 ? c->go_backwards : !c->go_backwards;
    q->dropped_h = a->training && c->recurrent_dropout > 0;
    q->aux = (T *)a->aux + d * L->aux_dir;
    q->scr = (T *)a->scratch + d * L->scr_dir;
    q->U = P + L->F * L->GH;
    q->zero = (const T *)a->scratch + L->s_zero;
    q->bias = q->bias_rn = q->zero;
    if (c->use_bias) {
        const T *b = q->U + L->H * L->GH;     /* b, or gru b_ih then b_hh */
        q->bias = b;
        if (c->cell == AF_RNN_GRU) {
            /* b_hr and b_hz add to the pre-activations as b_ir and b_iz do; b_hn goes inside r (.) */
            T *comb = q->scr + L->s_bias;
            for (size_t j = 0; j < L->GH; j++) comb[j] = b[j] + (j < 2 * L->H ? b[L->GH + j] : (T)0);
            q->bias = comb;
            q->bias_rn = b + L->GH + 2 * L->H;
        }
    }
    q->mask = c->mask ? (const T *)a->x[1] : NULL;
    q->h0 = c->initial_state ? (const T *)a->x[st0 + d * L->S] : NULL;
    q->c0 = c->initial_state && L->S == 2 ? (const T *)a->x[st0 + d * L->S + 1] : NULL;
    q->scale = 1;
    q->args = a;
}

/* Where the sequence outputs of direction d go (forward) or come from (backward): straight in
 * the layer's output when one direction or concatenated, else per-direction buffers. */
static void AF_FN(rnn_dir_io)(const af_rnn_layout *L, size_t d, T *y, T *buf, DIR *q)
{
    const af_rnn_cfg *c = q->c;
    if (!c->return_sequences) return;
    q->aligned = L->D == 2;
    if (L->D == 1 || c->merge == AF_MERGE_CONCAT) {
        q->io = y, q->ld = L->out_len, q->step = L->hout, q->col = d * L->H;
    } else {
        q->io = buf, q->ld = L->NT * L->H, q->step = L->H, q->col = 0;
    }
}

static af_status AF_FN(rnn_forward)(const af_op_args *a)
{
    const af_rnn_cfg *c = (const af_rnn_cfg *)a->cfg;
    af_rnn_layout L;
    rnn_layout(c, a->in_shape, a->batch, &L);
    const size_t B = L.B, NS = L.NT, F = L.F, H = L.H, GH = L.GH, D = L.D, ol = L.out_len;
    const T *X = (const T *)a->x[0];
    T *y = (T *)a->y;
    DIR dirs[2];
    /* one sequence block: threads may share the units instead (0: sample blocks) */
    int nt_units = 0;
    if (rnn_unit_blocks(&L)) {
        size_t nub = H / AF_RNN_UNITS;
        nt_units = (double)B * (double)H * (double)GH >= AF_RNN_PAR_MIN_STEP ? af_get_num_threads() : 1;
        if (nt_units > (int)nub) nt_units = (int)nub;
    }
    const int own = rnn_dir_threads(&L);
    memset((T *)a->scratch + L.s_zero, 0, (GH > H ? GH : H) * sizeof(T));
    for (size_t d = 0; d < D; d++) {
        DIR *q = &dirs[d];
        AF_FN(rnn_dir_setup)(a, &L, d, q);
        AF_FN(rnn_dir_io)(&L, d, y, q->aux + L.a_ys, q);
        const T *W = (const T *)a->param + d * L.n_per, *Xin = X;
        if (a->training && c->dropout > 0) {
            /* x times a per-(sample, feature) mask, the same for every step (Keras), drawn by
             * the sample's position in the whole batch (row0: a piece of a split batch) */
            T *mx = q->aux + L.a_mx, *xd = q->aux + L.a_xd;
            af_status e = AF_FN(af_dropout_mask_at)(B * F, c->dropout, af_layer_seed(a->seed, 2 * d), a->step,
                                                   a->row0 * F, mx);
            if (e != AF_OK) return e;
            for (size_t b = 0; b < B; b++)
                for (size_t t = 0; t < NS; t++)
                    for (size_t f = 0; f < F; f++) xd[(b * NS + t) * F + f] = X[(b * NS + t) * F + f] * mx[b * F + f];
            Xin = xd;
        }
        if (q->dropped_h) {
            af_status e = AF_FN(af_dropout_mask_at)(B * H, c->recurrent_dropout, af_layer_seed(a->seed, 2 * d + 1),
                                                   a->step, a->row0 * H, q->aux + L.a_mh);
            if (e != AF_OK) return e;
        }
        q->X = Xin;
        q->W = W;
        q->own = own;
        q->fuse = AF_FN(rnn_fuse)(&L);
        /* A = X W here, unless each direction's thread makes its own (rnn_dir_threads) or the
         * threads sharing the units make their columns (rnn_units_forward) */
        if (!own && (nt_units < 2 || !rnn_blocks_project(&L))) {
            af_status e = AF_FN(rnn_project)(q);
            if (e != AF_OK) return e;
        }
    }
    af_status e;
    if (nt_units) {
        e = AF_FN(rnn_units_forward)(&dirs[0], nt_units);
    } else {
        e = AF_FN(rnn_items)(dirs, &L, 0);
    }
    if (e != AF_OK) return e;
    const T *lh0 = dirs[0].aux + L.a_lh, *lh1 = D == 2 ? dirs[1].aux + L.a_lh : NULL;
    if (c->return_sequences && D == 2 && c->merge != AF_MERGE_CONCAT) {
        const T *y0 = dirs[0].aux + L.a_ys, *y1 = dirs[1].aux + L.a_ys;
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < NS * H; i++)
                y[b * ol + i] = AF_FN(rnn_merge)(c->merge, y0[b * NS * H + i], y1[b * NS * H + i]);
    } else if (!c->return_sequences) {
        for (size_t b = 0; b < B; b++) {
            T *yb = y + b * ol;
            if (D == 1 || c->merge == AF_MERGE_CONCAT) {
                memcpy(yb, lh0 + b * H, H * sizeof(T));
                if (D == 2) memcpy(yb + H, lh1 + b * H, H * sizeof(T));
            } else {
                for (size_t j = 0; j < H; j++) yb[j] = AF_FN(rnn_merge)(c->merge, lh0[b * H + j], lh1[b * H + j]);
            }
        }
    }
    if (c->return_state)
        for (size_t b = 0; b < B; b++)
            for (size_t d = 0; d < D; d++) {
                T *dst = y + b * ol + L.seq_len + d * L.S * H;
                memcpy(dst, dirs[d].aux + L.a_lh + b * H, H * sizeof(T));
                if (L.S == 2) memcpy(dst + H, dirs[d].aux + L.a_lc + b * H, H * sizeof(T));
            }
    return AF_OK;
}

typedef struct {
    const DIR *dirs;
    const af_rnn_layout *L;
} AF_FN(rnn_ut_job);

/* Column block t % nb (32 columns of U, 32 rows of U^T) of direction t / nb, in 32 x 32 tiles. */
static void AF_FN(rnn_ut_chunk)(void *ctx, size_t t, size_t slot)
{
    (void)slot;
    const AF_FN(rnn_ut_job) *j = (const AF_FN(rnn_ut_job) *)ctx;
    const size_t H = j->L->H, GH = j->L->GH, nb = (GH + 31) / 32;
    const DIR *q = &j->dirs[t / nb];
    T *UT = q->scr + j->L->s_ut;
    size_t j0 = t % nb * 32;
    for (size_t i0 = 0; i0 < H; i0 += 32)
        for (size_t i = i0; i < H && i < i0 + 32; i++)
            for (size_t c = j0; c < GH && c < j0 + 32; c++) UT[c * H + i] = q->U[i * GH + c];
}

/* U^T (G H, H) of every direction into scratch, so each step's dR U^T reads its operand in
 * place; threads (the pool) take whole column blocks. */
static void AF_FN(rnn_transpose_u)(const DIR *dirs, const af_rnn_layout *L)
{
    const size_t nb = (L->GH + 31) / 32;
    int nt = L->D * L->GH * L->H >= AF_PAR_MIN ? af_get_num_threads() : 1;
    AF_FN(rnn_ut_job) job = {dirs, L};
    af_pool_run(AF_FN(rnn_ut_chunk), &job, L->D * nb, nt);
}

/* dL/d(final h, c) of direction d from the last-step output and the returned states. */
static void AF_FN(rnn_final_grads)(const af_rnn_layout *L, const DIR *dirs, size_t d, const T *dy)
{
    const af_rnn_cfg *c = dirs[0].c;
    const size_t B = L->B, H = L->H, ol = L->out_len;
    T *gh = dirs[d].scr + L->s_gh, *gc = L->S == 2 ? dirs[d].scr + L->s_gc : NULL;
    const T *other = L->D == 2 ? dirs[1 - d].aux + L->a_lh : NULL;
    memset(gh, 0, B * H * sizeof(T));
    if (gc) memset(gc, 0, B * H * sizeof(T));
    for (size_t b = 0; b < B; b++) {
        const T *g = dy + b * ol;
        T *o = gh + b * H;
        if (!c->return_sequences) {
            if (L->D == 1) for (size_t j = 0; j < H; j++) o[j] = g[j];
            else if (c->merge == AF_MERGE_CONCAT) for (size_t j = 0; j < H; j++) o[j] = g[d * H + j];
            else if (c->merge == AF_MERGE_SUM) for (size_t j = 0; j < H; j++) o[j] = g[j];
            else if (c->merge == AF_MERGE_AVE) for (size_t j = 0; j < H; j++) o[j] = (T)0.5 * g[j];
            else for (size_t j = 0; j < H; j++) o[j] = g[j] * other[b * H + j];
        }
        if (c->return_state) {
            const T *gs = g + L->seq_len + d * L->S * H;
            for (size_t j = 0; j < H; j++) o[j] += gs[j];
            if (gc) for (size_t j = 0; j < H; j++) gc[b * H + j] = gs[H + j];
        }
    }
}

/* dW, dU and db of direction d after its step loops. */
static af_status AF_FN(rnn_weight_grads)(const af_op_args *a, const af_rnn_layout *L, const DIR *q, size_t d)
{
    const af_rnn_cfg *c = q->c;
    const size_t B = L->B, NS = L->NT, F = L->F, H = L->H, GH = L->GH, BT = B * NS;
    const int gru = c->cell == AF_RNN_GRU, dropped_x = a->training && c->dropout > 0;
    const T *dA = q->aux + L->a_gate, *Xin = dropped_x ? q->aux + L->a_xd : (const T *)a->x[0];
    const T *Hs = q->dropped_h ? q->aux + L->a_hd : q->aux + L->a_hp;
    T *G = (T *)a->grad + d * L->n_per, beta = a->grad_acc ? (T)1 : (T)0;
    af_status e;
    /* dW = X^T dA;  dU = H_prev^T dR (gru: dR_n in its own buffer) */
    if ((e = GEMM(1, 0, F, GH, BT, (T)1, Xin, F, dA, GH, beta, G, GH)) != AF_OK) return e;
    if ((e = GEMM(1, 0, H, gru ? 2 * H : GH, BT, (T)1, Hs, H, dA, GH, beta, G + F * GH, GH)) != AF_OK) return e;
    if (gru && (e = GEMM(1, 0, H, H, BT, (T)1, Hs, H, q->aux + L->a_rn, H, beta, G + F * GH + 2 * H, GH)) != AF_OK)
        return e;
    if (c->use_bias) {
        /* db_ih = column sums of dA; gru db_hh = those of dR = [dA_r, dA_z, dR_n] */
        T *sum = q->scr + L->s_sum, *gb = G + F * GH + H * GH;
        AF_FN(af_act_back_colsum)(AF_ACT_LINEAR, 0, BT, GH, NULL, NULL, (T *)dA, sum, (T)1, 0);
        if (gru) AF_FN(af_act_back_colsum)(AF_ACT_LINEAR, 0, BT, H, NULL, NULL, q->aux + L->a_rn, sum + GH, (T)1, 0);
        for (size_t j = 0; j < GH; j++) gb[j] = beta * gb[j] + sum[j];
        if (gru) {
            for (size_t j = 0; j < 2 * H; j++) gb[GH + j] = beta * gb[GH + j] + sum[j];
            for (size_t j = 0; j < H; j++) gb[GH + 2 * H + j] = beta * gb[GH + 2 * H + j] + sum[GH + j];
        }
    }
    return AF_OK;
}

/* dX (+)= dA W^T of direction d (times the input dropout mask); direction 1 adds to direction
 * 0's, so the directions take turns. */
static af_status AF_FN(rnn_input_grads)(const af_op_args *a, const af_rnn_layout *L, const DIR *q, size_t d)
{
    const af_rnn_cfg *c = q->c;
    const size_t B = L->B, NS = L->NT, F = L->F, GH = L->GH, BT = B * NS;
    const int dropped_x = a->training && c->dropout > 0;
    const T *W = (const T *)a->param + d * L->n_per, *dA = q->aux + L->a_gate;
    af_status e;
    if (!a->dx[0]) return AF_OK;
    T *dX = (T *)a->dx[0], bx = d > 0 || a->dx_acc[0] ? (T)1 : (T)0;
    if (!dropped_x) return GEMM(0, 1, BT, F, GH, (T)1, dA, GH, W, GH, bx, dX, F);
    T *tmp = (T *)a->scratch + L->s_dx;
    const T *mx = q->aux + L->a_mx;
    if ((e = GEMM(0, 1, BT, F, GH, (T)1, dA, GH, W, GH, (T)0, tmp, F)) != AF_OK) return e;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < NS; t++)
            for (size_t f = 0; f < F; f++) {
                size_t i = (b * NS + t) * F + f;
                dX[i] = (bx != 0 ? dX[i] : (T)0) + tmp[i] * mx[b * F + f];
            }
    return AF_OK;
}

static af_status AF_FN(rnn_backward)(const af_op_args *a)
{
    const af_rnn_cfg *c = (const af_rnn_cfg *)a->cfg;
    af_rnn_layout L;
    rnn_layout(c, a->in_shape, a->batch, &L);
    const size_t B = L.B, NS = L.NT, H = L.H, GH = L.GH, D = L.D, ol = L.out_len;
    const T *dy = (const T *)a->dy;
    DIR dirs[2];
    memset((T *)a->scratch + L.s_zero, 0, (GH > H ? GH : H) * sizeof(T));
    for (size_t d = 0; d < D; d++) {
        DIR *q = &dirs[d];
        AF_FN(rnn_dir_setup)(a, &L, d, q);
        AF_FN(rnn_dir_io)(&L, d, (T *)dy, q->scr + L.s_gy, q);
        if (c->merge == AF_MERGE_AVE && D == 2) q->scale = (T)0.5;
        if (c->return_sequences && D == 2 && c->merge == AF_MERGE_MUL) {
            /* d y_d = dy * y_other */
            const T *oth = dirs[0].aux + (1 - d) * L.aux_dir + L.a_ys;
            for (size_t b = 0; b < B; b++)
                for (size_t i = 0; i < NS * H; i++) q->io[b * NS * H + i] = dy[b * ol + i] * oth[b * NS * H + i];
        } else if (c->return_sequences && D == 2 && c->merge != AF_MERGE_CONCAT) {
            q->io = (T *)dy, q->ld = ol;    /* sum, ave: read dy itself */
        }
    }
    const int copy_ut = AF_FN(rnn_ut_needed)(&L);
    if (copy_ut) AF_FN(rnn_transpose_u)(dirs, &L);
    for (size_t d = 0; d < D; d++) {
        dirs[d].ut_b = copy_ut ? dirs[d].scr + L.s_ut : dirs[d].U;
        dirs[d].ut_ld = copy_ut ? H : GH;
        dirs[d].ut_tb = !copy_ut;
        AF_FN(rnn_final_grads)(&L, dirs, d, dy);
    }
    const int own = rnn_dir_threads(&L);
    for (size_t d = 0; d < D; d++) dirs[d].own = own;
    af_status e = AF_FN(rnn_items)(dirs, &L, 1);
    if (e != AF_OK) return e;
    for (size_t d = 0; d < D; d++) {
        if (!own && (e = AF_FN(rnn_weight_grads)(a, &L, &dirs[d], d)) != AF_OK) return e;
        if ((e = AF_FN(rnn_input_grads)(a, &L, &dirs[d], d)) != AF_OK) return e;
    }
    /* the initial states' gradients: what is left in gh / gc */
    size_t st0 = 1 + (size_t)c->mask;
    for (size_t k = st0; c->initial_state && k < a->n_in; k++) {
        if (!a->dx[k]) continue;
        size_t d = (k - st0) / L.S, which = (k - st0) % L.S;
        const T *src = dirs[d].scr + (which ? L.s_gc : L.s_gh);
        AF_FN(af_copy_add)(B * H, src, (T *)a->dx[k], a->dx_acc[k]);
    }
    /* the mask is not differentiated */
    if (c->mask && a->dx[1] && !a->dx_acc[1]) memset(a->dx[1], 0, B * NS * sizeof(T));
    return AF_OK;
}

#undef GEMM
#undef PGEMM
#undef STEP
#undef DIR
#include "dtype_end.h"
