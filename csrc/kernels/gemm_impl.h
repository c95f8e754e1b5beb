/* gemm_impl.h: the GEMM driver for one dtype (included twice by gemm.c; see dtype.h).
 *
 * C = alpha * op(A) @ op(B) + beta * C, Goto/BLIS loop nest around a register-blocked
 * micro-kernel, the one of the path in use (gemm_kern.h, isa_ctx.h):
 *
 *   split C into one rectangle per thread (K is never split), then on each rectangle:
 *   for jc in steps of NC over n:            B block  op(B)[pc:pc+KC, jc:jc+NC] -> packed (L3)
 *     for pc in steps of KC over k:
 *       pack B block into NR-column panels
 *       for ic in steps of MC over m:        A block  op(A)[ic:ic+MC, pc:pc+KC] -> packed (L2)
 *         pack A block into MR-row panels
 *         for jr over B panels, ir over A panels: one MR x NR micro-tile
 *           C tile = alpha * Ap_ir @ Bp_jr + (pc == 0 ? beta : 1) * C tile
 *           last K block: C tile = act(C tile + bias)   (epilogue, tile still in L1)
 *
 * Every C element is produced by the same sequence of operations whatever the thread count
 * (threads only choose WHICH tiles they compute), so results are bitwise identical for any
 * number of threads. Small products skip packing (the kernel table's direct loop); one or two
 * rows use a GEMV loop; skinny operands are read in place instead of packed.
 */
#include "dtype_begin.h"

static af_status AF_FN(gemm_check)(int ta, int tb, size_t m, size_t n, size_t k, const T *a,
                                   size_t lda, const T *b, size_t ldb, const T *c, size_t ldc,
                                   const af_epilogue *ep)
{
    if (ep && ((unsigned)ep->act >= AF_ACT_COUNT || ep->act == AF_ACT_SOFTMAX)) return AF_EINVAL;
    if (m == 0 || n == 0) return AF_OK;
    if (!c) return AF_EINVAL;
    if (ldc < n || gemm_mul_overflows(m, ldc)) return AF_ESHAPE;
    if (k == 0) return AF_OK;
    if (!a || !b) return AF_EINVAL;
    if (lda < (ta ? m : k) || ldb < (tb ? k : n)) return AF_ESHAPE;
    if (gemm_mul_overflows(ta ? k : m, lda) || gemm_mul_overflows(tb ? n : k, ldb)) return AF_ESHAPE;
    return AF_OK;
}

/* Epilogue on an mr x nr block of C whose first column is column j of the full C:
 * C = act(C + bias[j:j+nr]); with act == 0 only C += bias (and relu, inline): the caller applies
 * other activations later on a larger block (see gemm_act_rows). */
static void AF_FN(gemm_epilogue)(const af_epilogue *ep, size_t mr, size_t nr, T *c, size_t ldc,
                                 size_t j, int act)
{
    const T *bias = ep->bias ? (const T *)ep->bias + j : NULL;
    if (act && ldc == nr && ep->act != AF_ACT_LINEAR && ep->act != AF_ACT_RELU) {
        /* rows contiguous (a skinny C): one activation call for the block, not one per row */
        if (bias)
            for (size_t r = 0; r < mr; r++)
                for (size_t jj = 0; jj < nr; jj++) c[r * ldc + jj] += bias[jj];
        AF_FN(af_act_row_forward)(ep->act, (T)ep->act_param, mr * nr, c, c);
        return;
    }
    for (size_t r = 0; r < mr; r++) {
        T *cr = c + r * ldc;
        if (bias)
            for (size_t jj = 0; jj < nr; jj++) cr[jj] += bias[jj];
        /* relu inline: a call through the kernel table per tile row (16 values) would cost
         * more than the work. `c < 0 ? 0 : c` keeps NaN (act_kern_impl.h). */
        if (ep->act == AF_ACT_RELU)
            for (size_t jj = 0; jj < nr; jj++) cr[jj] = cr[jj] < 0 ? (T)0 : cr[jj];
        else if (act && ep->act != AF_ACT_LINEAR)
            AF_FN(af_act_row_forward)(ep->act, (T)ep->act_param, nr, cr, cr);
    }
}

/* True for activations computed by a call per row (everything but linear and relu). */
static inline int AF_FN(gemm_act_is_call)(const af_epilogue *ep)
{
    return ep && ep->act != AF_ACT_LINEAR && ep->act != AF_ACT_RELU;
}

/* The activation of the epilogue on an mr x nr block whose bias is already added: one call per
 * row of the block (a packed product calls this per MC x NC block, not per 16-value tile row). */
static void AF_FN(gemm_act_rows)(const af_epilogue *ep, size_t mr, size_t nr, T *c, size_t ldc)
{
    if (ldc == nr) /* contiguous rows (a skinny C): one call for the block */
        AF_FN(af_act_row_forward)(ep->act, (T)ep->act_param, mr * nr, c, c);
    else
        for (size_t r = 0; r < mr; r++)
            AF_FN(af_act_row_forward)(ep->act, (T)ep->act_param, nr, c + r * ldc, c + r * ldc);
}

/* Threads for a product of m n k multiply-adds on the packed and skinny paths (gemm_threads_at). */
static inline size_t AF_FN(gemm_threads)(size_t m, size_t n, size_t k)
{
    return gemm_threads_at((double)m * (double)n * (double)k, AF_GEMM_PAR_MIN);
}

/* One GEMM call as the threads working on it see it: the arguments, the path's plan, and the
 * NaN/inf flag of the checked entry points. */
typedef struct {
    const AF_FN(af_gemm_kinfo) *ki;
    int ta, tb;
    size_t m, n, k, lda, ldb, ldc;
    T alpha, beta;
    const T *a, *b;
    T *c;
    const af_epilogue *ep;
    int check_out; /* look at every finished tile of C for NaN/inf (before the epilogue) */
    int bad;       /* set when a looked-at tile holds one (relaxed atomic store) */
    /* packed path: tm x tn thread grid, per-thread workspace, which operands are packed */
    size_t tm, tn, b_bytes, per_thread;
    int pack_all_a, pack_all_b;
    char *ws;
    T *bshared;    /* op(B) packed once for all chunks (one K block, one column block) */
    const T *bpre; /* all of op(B) packed before the call (af_gemm_prepacked), or NULL */
    /* skinny and rows paths: op(B) packed (row stride ldbp), its row kernel's dot columns
     * (rows of ldbt), padded op(A), work units */
    const T *bp, *bt, *atail;
    size_t ldbp, ldbt, unit, nunits, nchunks;
    int rows_multi; /* rows path: its rows computed together (gemm_rows_multi) */
} AF_FN(gemm_call);

/* A finished mr x nr block of C whose first column is column j: look at it for NaN/inf while it
 * is in cache (look == 0: the kernel checked its values already), then apply the epilogue (with
 * act == 0, all of it but an activation computed by a call). */
static inline void AF_FN(gemm_finish)(AF_FN(gemm_call) *g, size_t mr, size_t nr, T *ct, size_t j,
                                      int act, int look)
{
    if (look && g->check_out && !AF_FN(af_all_finite)(mr, nr, ct, g->ldc))
        __atomic_store_n(&g->bad, 1, __ATOMIC_RELAXED);
    if (g->ep) AF_FN(gemm_epilogue)(g->ep, mr, nr, ct, g->ldc, j, act);
}

/* Run the chunks of a call's path on nt threads through annfast's pool (pool.h): chunks are claimed
 * dynamically, so the caller never waits for a thread that has not started one. part(g, chunk,
 * slot) computes one chunk; slot picks the thread's packing buffer. */
#define AF_GEMM_RUN(part, g, nchunks, nt)                                                       \
    af_pool_run(AF_FN(part##_chunk), (g), (nchunks), (int)(nt))

/* Chunks per thread on the GEMV and skinny paths: two for large products, so a thread that the
 * OS delays in the middle of its chunk leaves the others more than a single chunk to share; one
 * below 8e6 multiply-adds. (The packed path takes one rectangle per thread: see gemm_packed.) */
static inline size_t AF_FN(gemm_chunks_per_thread)(size_t m, size_t n, size_t k)
{
    return (double)m * (double)n * (double)k >= 8.0e6 ? 2 : 1;
}

/* Where K block pc's (kc rows) panel of op(B)'s columns from col (a multiple of NR) lies in
 * op(B) packed whole (af_gemm_bpack): block after block, each all n columns' panels. */
static inline size_t AF_FN(gemm_bpanel_at)(size_t NR, size_t n, size_t pc, size_t kc, size_t col)
{
    return pc * ((n + NR - 1) / NR * NR) + col / NR * NR * kc;
}

/* Serial blocked product on one thread's rectangle of C: rows [r0, r0+m), columns [c0, c0+n)
 * (see the top of this file), with that thread's own packing buffers. Edge panels are always
 * packed (zero-padded, the kernel reads whole MR x kc / kc x NR panels); full panels are packed
 * or read in place as g->pack_all_a / g->pack_all_b say. */
static void AF_FN(gemm_block)(AF_FN(gemm_call) *g, size_t r0, size_t m, size_t c0, size_t n,
                              T *abuf, T *bbuf)
{
    const AF_FN(af_gemm_kinfo) *ki = g->ki;
    const int ta = g->ta, tb = g->tb, pack_all_a = g->pack_all_a, pack_all_b = g->pack_all_b;
    const size_t k = g->k, lda = g->lda, ldb = g->ldb, ldc = g->ldc;
    const T *a = ta ? g->a + r0 : g->a + r0 * lda, *b = tb ? g->b + c0 * ldb : g->b + c0;
    T *c = g->c + r0 * ldc + c0;
    const size_t MR = ki->mr, NR = ki->nr, MC = ki->mc, NC = ki->nc;
    const T *bias = g->ep && g->ep->bias ? (const T *)g->ep->bias : NULL;
    const int relu = g->ep && g->ep->act == AF_ACT_RELU;
    /* the kernels fold the checked values into chk; looked at once, at the end */
    T chk[16] __attribute__((aligned(64))) = {0};
    AF_FN(af_gemm_kout) out = {NULL, 0, g->check_out ? &g->bad : NULL, chk};
    /* K blocks of equal size (at most KC): 784 = 4 x 196 rather than 3 x 256 + 16, so no block
     * is too short to amortise loading and storing the C tiles. Depends on k only. */
    const size_t nkb = (k + ki->kc - 1) / ki->kc, KB = (k + nkb - 1) / nkb;
    for (size_t jc = 0; jc < n; jc += NC) {
        size_t nc = n - jc < NC ? n - jc : NC;
        size_t nbp = (nc + NR - 1) / NR;
        for (size_t pc = 0; pc < k; pc += KB) {
            size_t kc = k - pc < KB ? k - pc : KB;
            T beta_pc = pc == 0 ? g->beta : (T)1; /* later K blocks accumulate onto C */
            int last = pc + kc == k;
            const T *bsrc = tb ? b + jc * ldb + pc : b + pc * ldb + jc;
            if (g->bpre) /* all of op(B), packed before the call: K block pc's panels */
                bbuf = (T *)g->bpre + AF_FN(gemm_bpanel_at)(NR, g->n, pc, kc, c0 + jc);
            else if (g->bshared) /* all of op(B), packed once for every chunk (gemm_packed) */
                bbuf = g->bshared;
            else if (pack_all_b)
                ki->pack_b(tb, kc, nc, bsrc, ldb, bbuf, 0, nbp);
            else if (nc % NR)
                ki->pack_b(tb, kc, nc, bsrc, ldb, bbuf, nbp - 1, nbp);
            for (size_t ic = 0; ic < m; ic += MC) {
                size_t mc = m - ic < MC ? m - ic : MC;
                size_t nap = (mc + MR - 1) / MR;
                const T *asrc = ta ? a + pc * lda + ic : a + ic * lda + pc;
                if (pack_all_a)
                    ki->pack_a(ta, mc, kc, asrc, lda, abuf, 0, nap);
                else if (mc % MR)
                    ki->pack_a(ta, mc, kc, asrc, lda, abuf, nap - 1, nap);
                /* jr outer, ir inner: a B micro-panel stays in L1 while it meets every A panel
                 * of the block (which stays in L2). */
                for (size_t jr = 0; jr < nbp; jr++) {
                    size_t nr = nc - jr * NR < NR ? nc - jr * NR : NR;
                    const T *bk;
                    size_t ldbk;
                    if (pack_all_b || nr < NR)
                        bk = bbuf + jr * NR * kc, ldbk = NR;
                    else
                        bk = bsrc + jr * NR, ldbk = ldb;
                    for (size_t ir = 0; ir < nap; ir++) {
                        size_t mr = mc - ir * MR < MR ? mc - ir * MR : MR;
                        const T *ak;
                        size_t rsa, csa;
                        if (pack_all_a || mr < MR)
                            ak = abuf + ir * MR * kc, rsa = 1, csa = MR;
                        else
                            ak = asrc + ir * MR * (ta ? 1 : lda), rsa = ta ? 1 : lda, csa = ta ? lda : 1;
                        T *ct = c + (ic + ir * MR) * ldc + jc + jr * NR;
                        /* every K block's product is checked (an input reaches only its own);
                         * bias and relu join the last block's store */
                        out.bias = last && bias ? bias + c0 + jc + jr * NR : NULL;
                        out.relu = last && relu;
                        ki->kernel(kc, ak, rsa, csa, bk, ldbk, g->alpha, beta_pc, ct, ldc, mr, nr,
                                   out.bias || out.relu || out.bad ? &out : NULL);
                    }
                }
                /* the finished mc x nc block (in L2): activation by one call per row */
                if (last && AF_FN(gemm_act_is_call)(g->ep))
                    AF_FN(gemm_act_rows)(g->ep, mc, nc, c + ic * ldc + jc, ldc);
            }
        }
    }
    if (out.bad && !AF_FN(af_all_finite)(1, ki->vn, chk, ki->vn)) /* a lane turned NaN */
        __atomic_store_n(&g->bad, 1, __ATOMIC_RELAXED);
}

/* Chunk t of the packed product: cell (t / tn, t % tn) of the tm x tn grid of rectangles of C,
 * edges at multiples of MR rows / NR columns; slot picks the thread's packing buffers. */
static void AF_FN(gemm_packed_chunk)(void *ctx, size_t t, size_t slot)
{
    AF_FN(gemm_call) *g = (AF_FN(gemm_call) *)ctx;
    const size_t MR = g->ki->mr, NR = g->ki->nr, tm = g->tm, tn = g->tn;
    const size_t nap = (g->m + MR - 1) / MR, nbp = (g->n + NR - 1) / NR;
    size_t ti = t / tn, tj = t % tn;
    size_t r0 = nap * ti / tm * MR, r1 = nap * (ti + 1) / tm * MR;
    size_t c0 = nbp * tj / tn * NR, c1 = nbp * (tj + 1) / tn * NR;
    if (r1 > g->m) r1 = g->m;
    if (c1 > g->n) c1 = g->n;
    if (r0 >= r1 || c0 >= c1) return;
    char *mine = g->ws + slot * g->per_thread;
    AF_FN(gemm_block)(g, r0, r1 - r0, c0, c1 - c0, (T *)(mine + g->b_bytes), (T *)mine);
}

/* K split (small batches): C = op(A) B with m < AF_GEMM_KSPLIT_MAX_M rows, A and B not
 * transposed, and K over more than one K block is summed in two halves at a multiple of MR (the
 * point where a weight gradient's rows split, see gemm_packed): part 0 = alpha A[:, :ks] B[:ks]
 * + beta C into C, part 1 = alpha A[:, ks:] B[ks:] into scratch, then C += part 1 and the
 * epilogue. Each part is one chunk, so on two threads each reads its own half of B's rows (W at a
 * small batch: the product is bound by reading W, and each half stays in its thread's cache with
 * the rows of the gradient update it makes); on one thread the same two parts run in turn, so
 * the bits are the same. Depends on the shape only. */
static size_t AF_FN(gemm_ksplit_at)(const AF_FN(af_gemm_kinfo) *ki, int ta, int tb, size_t m, size_t k)
{
    if (ta || tb || m >= AF_GEMM_KSPLIT_MAX_M || k <= ki->kc) return 0;
    return (k + ki->mr - 1) / ki->mr / 2 * ki->mr;
}

static void AF_FN(gemm_ksplit_chunk)(void *ctx, size_t t, size_t slot)
{
    AF_FN(gemm_call) *part = (AF_FN(gemm_call) *)ctx + t;
    char *mine = part->ws + slot * part->per_thread;
    AF_FN(gemm_block)(part, 0, part->m, 0, part->n, (T *)(mine + part->b_bytes), (T *)mine);
}

/* Whether the packed path packs all of op(B) rather than reading its full panels in place (see
 * gemm_packed). */
static inline int AF_FN(gemm_pack_all_b)(int tb, size_t m, size_t n, size_t k, size_t ldb, size_t MR)
{
    return tb || (ldb * sizeof(T)) % AF_GEMM_PAGE_BYTES == 0 ||
           (m > AF_GEMM_INPLACE_B_MAX_M * MR && (double)k * n * sizeof(T) > AF_GEMM_INPLACE_B_BYTES);
}

static af_status AF_FN(gemm_packed_ksplit)(AF_FN(gemm_call) *g, size_t ks)
{
    const AF_FN(af_gemm_kinfo) *ki = g->ki;
    const size_t m = g->m, n = g->n, k = g->k, MR = ki->mr, NR = ki->nr, KC = ki->kc, NC = ki->nc;
    const size_t nap = (m + MR - 1) / MR, nbp = (n + NR - 1) / NR;
    AF_FN(gemm_call) part[2];
    part[0] = *g;
    part[0].k = ks;
    part[0].ep = NULL;
    part[1] = part[0];
    part[1].a = g->a + ks;
    part[1].b = g->b + ks * g->ldb;
    part[1].k = k - ks;
    part[1].beta = 0;
    part[1].ldc = n;
    for (int p = 0; p < 2; p++) {
        part[p].pack_all_a = n > AF_GEMM_INPLACE_A_MAX_N * NR;
        part[p].pack_all_b =
            (g->ldb * sizeof(T)) % AF_GEMM_PAGE_BYTES == 0 || m > AF_GEMM_INPLACE_B_MAX_M * MR;
        part[p].bshared = NULL;
        part[p].bpre = NULL;
        part[p].bad = 0;
    }
    size_t nt = AF_FN(gemm_threads)(m, n, k);
    if (nt > 2) nt = 2;
    size_t kmax = ks > k - ks ? ks : k - ks; /* the longer part (ks is rounded to MR) */
    size_t kc_max = kmax < KC ? kmax : KC, nc_max = nbp * NR < NC ? nbp * NR : NC;
    size_t b_bytes = (kc_max * nc_max * sizeof(T) + 63) / 64 * 64;
    size_t per_thread = (b_bytes + kc_max * nap * MR * sizeof(T) + 63) / 64 * 64;
    char *ws = (char *)af_gemm_workspace(per_thread * nt + m * n * sizeof(T) + 64);
    if (!ws) return AF_ENOMEM;
    T *rest = (T *)(ws + per_thread * nt);
    for (int p = 0; p < 2; p++) {
        part[p].ws = ws;
        part[p].b_bytes = b_bytes;
        part[p].per_thread = per_thread;
    }
    part[1].c = rest;
    af_pool_run(AF_FN(gemm_ksplit_chunk), part, 2, (int)nt);
    if (part[0].bad || part[1].bad) __atomic_store_n(&g->bad, 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < m; i++) {
        T *ci = g->c + i * g->ldc;
        const T *ri = rest + i * n;
        for (size_t j = 0; j < n; j++) ci[j] += ri[j];
    }
    if (g->ep) AF_FN(gemm_epilogue)(g->ep, m, n, g->c, g->ldc, 0, 1);
    return AF_OK;
}

/* Packed product, threaded by splitting C into one rectangle per thread (a tm x tn grid). Each
 * thread runs the serial blocked product on its own rectangle with its own buffers: no
 * barriers, so a thread that the OS delays holds nobody up. Every C element sees the same K
 * blocking and the same kernel arithmetic as on one thread, so results are bitwise identical
 * for any thread count. Columns are split first (each thread then packs a disjoint part of B;
 * A blocks are packed by every thread, a cost of 1/(n/tn) of the product); rows when C has too
 * few column panels. */
static af_status AF_FN(gemm_packed)(AF_FN(gemm_call) *g)
{
    const AF_FN(af_gemm_kinfo) *ki = g->ki;
    const size_t m = g->m, n = g->n, k = g->k;
    const size_t MR = ki->mr, NR = ki->nr, MC = ki->mc, KC = ki->kc, NC = ki->nc;
    size_t nap = (m + MR - 1) / MR, nbp = (n + NR - 1) / NR;
    /* not with op(B) packed before the call: the split packs (or reads) B anew in every call,
     * where a recurrent layer's step products read the same U at every step (an LSTM(512)'s
     * forward step at 16 rows packed its 4 MB every time; af_gemm_takes_bpanels) */
    size_t ks = g->bpre ? 0 : AF_FN(gemm_ksplit_at)(ki, g->ta, g->tb, m, k);
    if (ks) return AF_FN(gemm_packed_ksplit)(g, ks);

    /* Packing copies each operand once so the kernel reads it contiguously; it pays off when the
     * packed panel is reused often. An A panel meets every B panel (n / NR times), a B panel every
     * A panel (m / MR times): for skinny products read the operand in place instead, and B when
     * all of it fits in L1. B in place needs rows of B, i.e. not transposed, and a row stride that
     * is not a multiple of 4 KB (such strides map every row of a B panel to the same L1 set and
     * thrash it). The choice depends on the shape only, never on the thread count. */
    g->pack_all_a = n > AF_GEMM_INPLACE_A_MAX_N * NR;
    g->pack_all_b = g->bpre || AF_FN(gemm_pack_all_b)(g->tb, m, n, k, g->ldb, MR);

    /* Chunk grid: one rectangle per thread when threads pay off (enough work), columns split
     * first (largest split with >= 2 panels per chunk). Two rectangles per thread, meant to let
     * a thread that the OS delays leave more than one chunk to share, measured 3-10% slower at
     * 2 threads idle on every shape from 64x784x512 to 1024^3, f32 and f64 (each chunk packs
     * its own operands and runs narrower blocks); a thread that never starts still costs
     * nothing (its chunk is claimed by the others), and one kept from its core for long is
     * caught by the pool's busy-machine detection (pool.c). */
    size_t nt = AF_FN(gemm_threads)(m, n, k), tm = 1, tn = 1;
    size_t nch = nt > 1 ? nt : 1;
    /* Columns first, also where splitting rows would pack less (a weight gradient X^T dZ alone
     * runs up to 1.5x faster split by rows): in a training step the weights W are then split
     * the same way in the forward product X W (B) and in the update fused into X^T dZ (C), and
     * each thread finds its part of W in its own core's cache (784-512-256-10 step at batch 16,
     * 2 threads: 298 us with columns first, 326 us splitting rows of the gradients). */
    for (size_t d = nch; d >= 1; d--)
        if (nch % d == 0 && (d == 1 || nbp >= 2 * d)) {
            tn = d;
            break;
        }
    /* ...except a small batch's weight gradient A^T B (k < AF_GEMM_KSPLIT_MAX_M): its C is W,
     * whose halves of rows the forward product's K split (gemm_packed_ksplit) gives to the same
     * threads; each thread then updates the contiguous rows it has in its cache */
    if (g->ta && k < AF_GEMM_KSPLIT_MAX_M && nap >= 2 * nch) tn = 1;
    tm = nch / tn;
    if (tm > nap) tm = nap;
    nch = tm * tn;
    if (nt > nch) nt = nch;
    g->tm = tm;
    g->tn = tn;

    /* Per-thread workspace: a B block (kc x nc rounded up to NR) then an A block (mc rounded
     * up to MR, x kc), sized for the largest rectangle; at most KC*NC + MC*KC elements. */
    size_t rows_max = (nap + tm - 1) / tm * MR, cols_max = (nbp + tn - 1) / tn * NR;
    size_t kc_max = k < KC ? k : KC;
    size_t nc_max = cols_max < NC ? cols_max : NC;
    size_t mc_max = rows_max < MC ? rows_max : MC;
    g->b_bytes = (kc_max * nc_max * sizeof(T) + 63) / 64 * 64;
    g->per_thread = (g->b_bytes + kc_max * mc_max * sizeof(T) + 63) / 64 * 64;
    /* Chunks that split only rows all need the same B panels: with one K block and one column
     * block, the calling thread packs them once for all (after the per-thread buffers). */
    int share = nch > 1 && tn == 1 && k <= KC && n <= NC && g->pack_all_b && !g->bpre;
    size_t shared_bytes = share ? (k * nbp * NR * sizeof(T) + 63) / 64 * 64 : 0;
    g->ws = (char *)af_gemm_workspace(g->per_thread * nt + shared_bytes);
    if (!g->ws) return AF_ENOMEM;
    if (share) {
        g->bshared = (T *)(g->ws + g->per_thread * nt);
        ki->pack_b(g->tb, k, n, g->b, g->ldb, g->bshared, 0, nbp);
    }
    AF_GEMM_RUN(gemm_packed, g, nch, nt);
    return AF_OK;
}

/* Whether the rows path computes its rows together (gemv_multi: B read once for up to 4 rows):
 * C = A B with k >= 2 and more than two rows, or two rows whose B rows lie less than a page apart
 * (further apart, a single row streams B, gemv_rows, faster than panels). The same bits either
 * way. */
static inline int AF_FN(gemm_rows_multi)(const AF_FN(gemm_call) *g)
{
    return !g->tb && g->k >= 2 &&
           (g->m > AF_GEMM_GEMV_MAX_M || (g->m == 2 && !AF_GEMM_ROWS_PAGE_APART(g->ldb * sizeof(T))));
}

/* Chunk t of the rows path: a range of the blocks of g->unit columns. */
static void AF_FN(gemm_rows_chunk)(void *ctx, size_t t, size_t slot)
{
    (void)slot;
    AF_FN(gemm_call) *g = (AF_FN(gemm_call) *)ctx;
    const AF_FN(af_gemm_kinfo) *ki = g->ki;
    const size_t unit = g->unit, nblk = g->nunits, nch = g->nchunks, lda = g->lda, ldc = g->ldc;
    size_t j0 = nblk * t / nch * unit, j1 = nblk * (t + 1) / nch * unit;
    if (j1 > g->n) j1 = g->n;
    if (j0 < j1 && g->rows_multi) {
        ki->gemv_multi(g->m, g->k, j0, j1, g->alpha, g->a, g->ta ? 1 : lda, g->ta ? lda : 1, g->b, g->ldb,
                       g->beta, g->c, ldc);
        AF_FN(gemm_finish)(g, g->m, j1 - j0, g->c + j0, j0, 1, 1);
        return;
    }
    for (size_t i = 0; i < g->m && j0 < j1; i++) {
        if (g->tb)
            ki->gemv_t(g->k, j0, j1, g->alpha, g->a + i * lda, g->b, g->ldb, g->beta, g->c + i * ldc);
        else
            ki->gemv(g->k, j0, j1, g->alpha, g->ta ? g->a + i : g->a + i * lda, g->ta ? lda : 1, g->b,
                     g->ldb, g->beta, g->c + i * ldc);
    }
    if (j0 < j1) AF_FN(gemm_finish)(g, g->m, j1 - j0, g->c + j0, j0, 1, 1);
}

/* Chunks for nunits work units on nt threads (a few per thread, at most one unit each). */
static inline size_t AF_FN(gemm_chunks)(AF_FN(gemm_call) *g, size_t *nt)
{
    size_t nch = *nt > 1 ? *nt * AF_FN(gemm_chunks_per_thread)(g->m, g->n, g->k) : 1;
    if (nch > g->nunits) nch = g->nunits;
    if (*nt > nch) *nt = nch;
    return g->nchunks = nch;
}

/* A few rows of C: GEMV (B not transposed: rows of B scaled and summed, gemv_multi for the rows
 * together or row by row; B^T, A not transposed: dot products with the rows of B), columns split
 * between threads in blocks of 4 NR (each column's arithmetic does not depend on the split), from
 * AF_GEMM_ROWS_PAR_MIN_BYTES streamed (B once for the rows together, else once a row). */
static void AF_FN(gemm_rows)(AF_FN(gemm_call) *g)
{
    g->unit = 4 * g->ki->nr;
    g->nunits = (g->n + g->unit - 1) / g->unit;
    g->rows_multi = AF_FN(gemm_rows_multi)(g);
    double reads = g->rows_multi ? 1.0 : (double)g->m;
    size_t nt = gemm_threads_at(reads * (double)g->n * (double)g->k * sizeof(T), AF_GEMM_ROWS_PAR_MIN_BYTES);
    size_t nch = AF_FN(gemm_chunks)(g, &nt);
    AF_GEMM_RUN(gemm_rows, g, nch, nt);
}

/* Chunk t of the skinny path: a range of whole work units of rows (the last range also takes
 * the leftover rows). */
static void AF_FN(gemm_skinny_chunk)(void *ctx, size_t t, size_t slot)
{
    (void)slot;
    AF_FN(gemm_call) *g = (AF_FN(gemm_call) *)ctx;
    const size_t unit = g->unit, nunits = g->nunits, nch = g->nchunks, ldc = g->ldc;
    size_t r0 = nunits * t / nch * unit, r1 = t + 1 == nch ? g->m : nunits * (t + 1) / nch * unit;
    T *c = g->c + r0 * ldc;
    const af_epilogue *ep = g->ep;
    AF_FN(af_gemm_kout) o = {ep && ep->bias ? (const T *)ep->bias : NULL, ep && ep->act == AF_ACT_RELU,
                             g->check_out ? &g->bad : NULL};
    const AF_FN(af_gemm_kout) *out = o.bias || o.relu || o.bad ? &o : NULL;
    if (g->ta)
        g->ki->colk(r1 - r0, g->n, g->k, g->alpha, g->a + r0, g->lda, g->atail, g->bp, g->ldbp,
                    g->beta, c, ldc, out);
    else
        g->ki->rowk(r1 - r0, g->n, g->k, g->alpha, g->a + r0 * g->lda, g->lda, 1, g->bp, g->ldbp, g->bt,
                    g->ldbt, g->beta, c, ldc, out);
    /* bias and relu ran in the kernel's store; other activations by call, on the chunk's rows */
    if (AF_FN(gemm_act_is_call)(ep)) AF_FN(gemm_act_rows)(ep, r1 - r0, g->n, c, ldc);
}

/* Skinny products (n small): the row kernel (vectors along n, op(A) read in place) or, when
 * op(A) = A^T, the column kernel (vectors along m, contiguous columns of op(A)); see
 * gemm_skinny_impl.h. The calling thread packs op(B) (k x n, small) when the kernel cannot read
 * it in place, and for the column kernel on fewer rows than a vector a zero-padded copy of
 * op(A); then threads take ranges of rows (each row's arithmetic does not depend on the range)
 * and check and finish their own rows. */
static af_status AF_FN(gemm_skinny)(AF_FN(gemm_call) *g)
{
    const size_t vn = g->ki->vn, m = g->m, n = g->n, k = g->k, lda = g->lda, ldb = g->ldb;
    const T *a = g->a, *b = g->b;
    const int tb = g->tb;
    /* Row kernel: op(B) as k rows of W = vn, 2 vn or 3 vn values, zero past n; in place when B's rows
     * are exactly that. Column kernel: any row stride, so B is read in place unless transposed. */
    const size_t w = g->ta ? n : (n + vn - 1) / vn * vn;
    /* B's rows read in place by the row kernel where the ISA masks its last vector's load
     * natively (128x256 @ 256x10 float64: a 32 KB copy less per call) */
    const int in_place = !g->ta && !tb && af_isa_ctx()->isa != AF_ISA_GENERIC;
    const int pack = tb || (!g->ta && n != w && !in_place);
    const int tail = g->ta && m < vn;
    /* the row kernel's dot columns (AF_GEMM_ROWK_TAIL) as rows of op(B)'s columns, zero past k */
    const size_t nd = g->ta ? 0 : AF_GEMM_ROWK_TAIL(g->ki, n), ldt = (k + vn - 1) / vn * vn;
    const size_t bsz = pack ? (k * w + 15) / 16 * 16 : 0, dsz = nd ? g->ki->rowk_dot * ldt : 0;
    T *ws = NULL;
    if (pack || tail || nd) {
        ws = (T *)af_gemm_workspace((bsz + dsz + (tail ? k * vn : 0)) * sizeof(T));
        if (!ws) return AF_ENOMEM;
    }
    g->bt = NULL, g->ldbt = 0;
    if (nd) {
        T *d = ws + bsz;
        memset(d, 0, dsz * sizeof(T)); /* the kernel computes rowk_dot columns, stores nd */
        for (size_t j = 0; j < nd; j++) {
            const size_t col = n - nd + j;
            for (size_t p = 0; p < k; p++) d[j * ldt + p] = tb ? b[col * ldb + p] : b[p * ldb + col];
        }
        g->bt = d, g->ldbt = ldt;
    }
    if (pack) {
        for (size_t p = 0; p < k; p++)
            for (size_t j = 0; j < w; j++) ws[p * w + j] = j >= n ? (T)0 : tb ? b[j * ldb + p] : b[p * ldb + j];
        g->bp = ws, g->ldbp = w;
    } else {
        g->bp = b, g->ldbp = ldb;
    }
    if (tail) {
        T *t = ws + bsz + dsz;
        for (size_t p = 0; p < k; p++)
            for (size_t r = 0; r < vn; r++) t[p * vn + r] = r < m ? a[p * lda + r] : (T)0;
        g->atail = t;
    }
    /* Threads own ranges of whole tiles (2 vn rows for the column kernel, 12 for the row
     * kernel); the last range also takes the leftover rows, so a range of the column kernel has
     * at least 2 vn rows or is all of C. */
    g->unit = g->ta ? 2 * vn : 12;
    g->nunits = m / g->unit > 0 ? m / g->unit : 1;
    size_t nt = AF_FN(gemm_threads)(m, n, k);
    size_t nch = AF_FN(gemm_chunks)(g, &nt);
    AF_GEMM_RUN(gemm_skinny, g, nch, nt);
    return AF_OK;
}

/* Skinny path: op(A) = A^T with up to 32 columns (column kernel); else n up to the row kernel's
 * two or three vectors. */
static inline int AF_FN(gemm_is_skinny)(const AF_FN(af_gemm_kinfo) *ki, int ta, size_t n)
{
    return ta ? n <= 32 : n <= AF_GEMM_ROWK_MAX_N(ki);
}

/* The serial paths (direct loop, no product term) on the calling thread. */
static void AF_FN(gemm_serial)(AF_FN(gemm_call) *g)
{
    const size_t m = g->m, n = g->n, k = g->k, ldc = g->ldc;
    T *c = g->c;
    if (k == 0 || g->alpha == 0) {
        /* No product term (BLAS semantics: A and B are not read): C = beta * C. */
        for (size_t i = 0; i < m; i++) {
            T *ci = c + i * ldc;
            if (g->beta == 0)
                for (size_t j = 0; j < n; j++) ci[j] = 0;
            else if (g->beta != 1)
                for (size_t j = 0; j < n; j++) ci[j] *= g->beta;
        }
    } else {
        g->ki->direct(g->ta, g->tb, m, n, k, g->alpha, g->a, g->lda, g->b, g->ldb, g->beta, c, ldc);
    }
    AF_FN(gemm_finish)(g, m, n, c, 0, 1, 1);
}

/* The path a product of this shape takes (see the top of this file); alpha_zero: alpha == 0. */
static int AF_FN(gemm_path)(const AF_FN(af_gemm_kinfo) *ki, int ta, int tb, size_t m, size_t n, size_t k,
                            int alpha_zero, int prepacked)
{
    /* no product term. Products of a few multiply-adds take the paths below like any other:
     * a scalar loop of their own (m, n, k <= 8, unfused) gave a small layer's batch-1 rows bits
     * other than the same rows in a batch (an ulp), at no measurable gain (XOR tutorial 1.56 ms
     * either way) */
    if (k == 0 || alpha_zero) return AF_GP_ZERO;
    if (AF_FN(gemm_is_skinny)(ki, ta, n)) return AF_GP_SKINNY;
    if ((double)m * (double)n * (double)k <= AF_GEMM_DIRECT_MAX && !tb) return AF_GP_DIRECT;
    /* k == 1 is a rank-1 update (batch-1 weight gradients, C += alpha a b^T), bound by streaming
     * C through memory: row by row, not one micro-kernel call per tile */
    if ((m <= AF_GEMM_GEMV_MAX_M || (k == 1 && n >= AF_GEMM_RANK1_MIN_N)) && !tb) return AF_GP_ROWS;
    /* a small batch's C = A B: its rows together (gemv_multi), each vector of B loaded once for up
     * to 4 rows, rather than B packed for micro-tiles mostly of padding rows. Not where B comes
     * packed already (a recurrent layer's U, packed once for every step): the micro-kernel then
     * costs less (GRU(128) predict at batch 8: 259 us packed, 416 us together) */
    if (m <= AF_GEMM_MULTI_MAX_M && k >= 2 && !tb && !prepacked) return AF_GP_ROWS;
    /* rows of C = A B^T (batch-1 input gradients dx = dz W^T): vector dot products with the
     * contiguous rows of B, where the direct loop ran one scalar dot at a time */
    if (m <= AF_GEMM_GEMV_MAX_M && !ta) return AF_GP_ROWS;
    return AF_GP_PACKED;
}

/* The whole product on the path its shape calls for. */
static af_status AF_FN(gemm_dispatch)(AF_FN(gemm_call) *g)
{
    g->ki = AF_FN(af_kern)()->gemm;
    switch (AF_FN(gemm_path)(g->ki, g->ta, g->tb, g->m, g->n, g->k, g->alpha == 0, g->bpre != NULL)) {
    case AF_GP_ZERO:
        AF_FN(gemm_serial)(g);
        return AF_OK;
    case AF_GP_SKINNY:
        return AF_FN(gemm_skinny)(g);
    case AF_GP_DIRECT:
        AF_FN(gemm_serial)(g);
        return AF_OK;
    case AF_GP_ROWS:
        AF_FN(gemm_rows)(g);
        return AF_OK;
    default:
        /* the epilogue runs inside, tile by tile, while each tile is in L1 */
        return AF_FN(gemm_packed)(g);
    }
}

/* C = alpha op(A) op(B) + beta C, then the epilogue. check: also report AF_ENONFINITE when A or
 * B holds NaN or inf. The check looks at whichever costs less next to the product: the inputs
 * before computing (m k + k n values, C then untouched), or the product's values as the kernels
 * produce them (one FMA per vector of C, KCHK_FOLD in gemm_kern_impl.h; a scan of C on the
 * direct and GEMV paths). A NaN or inf input always reaches the product (NaN times
 * anything is NaN; inf times anything is inf or NaN, and a sum with inf or NaN in it is not
 * finite), so a finite product proves finite inputs; a non-finite one is then told apart from an
 * overflow by scanning the inputs. In that case C holds the IEEE result and the epilogue has
 * run. */
static af_status AF_FN(gemm_run)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,
                                 size_t lda, const T *b, size_t ldb, T beta, T *c, size_t ldc,
                                 const af_epilogue *ep, int check, const AF_FN(af_gemm_bpanels) *pre)
{
    AF_FP_SCOPE();
    af_status s = AF_FN(gemm_check)(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, ep);
    if (s != AF_OK || m == 0 || n == 0) return s;
    if (ep && !ep->bias && ep->act == AF_ACT_LINEAR) ep = NULL;
    check = check && k > 0 && alpha != 0; /* A and B are not read otherwise */
    /* input scan: ~3 operations per value of A and B; output check: one FMA per vector of C
     * inside the kernels (a scan of C on the small paths), ~1/k of the product */
    int check_in = check && 3.0 * ((double)m * k + (double)k * n) < (double)m * n;
    if (check_in && !(AF_FN(af_all_finite)(ta ? k : m, ta ? m : k, a, lda) &&
                      AF_FN(af_all_finite)(tb ? n : k, tb ? k : n, b, ldb)))
        return AF_ENONFINITE;
    AF_FN(gemm_call) g;
    memset(&g, 0, sizeof g);
    g.ta = ta, g.tb = tb, g.m = m, g.n = n, g.k = k, g.lda = lda, g.ldb = ldb, g.ldc = ldc;
    g.alpha = alpha, g.beta = beta, g.a = a, g.b = b, g.c = c, g.ep = ep;
    g.check_out = check && !check_in;
    if (pre && pre->ki == (const void *)AF_FN(af_kern)()->gemm && pre->b == b && pre->ldb == ldb &&
        pre->tb == tb && pre->k == k && pre->n == n)
        g.bpre = pre->buf;
    s = AF_FN(gemm_dispatch)(&g);
    if (s == AF_OK && g.bad &&
        !(AF_FN(af_all_finite)(ta ? k : m, ta ? m : k, a, lda) &&
          AF_FN(af_all_finite)(tb ? n : k, tb ? k : n, b, ldb)))
        s = AF_ENONFINITE;
    return s;
}

af_status AF_FN(af_gemm_ex)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,
                            size_t lda, const T *b, size_t ldb, T beta, T *c, size_t ldc,
                            const af_epilogue *ep)
{
    return AF_FN(gemm_run)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep, 0, NULL);
}

af_status AF_FN(af_gemm_checked)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,
                                 size_t lda, const T *b, size_t ldb, T beta, T *c, size_t ldc,
                                 const af_epilogue *ep)
{
    return AF_FN(gemm_run)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep, 1, NULL);
}

int AF_FN(af_gemm_takes_bpanels)(int ta, int tb, size_t m, size_t n, size_t k)
{
    return AF_FN(gemm_path)(AF_FN(af_kern)()->gemm, ta, tb, m, n, k, 0, 1) == AF_GP_PACKED;
}

/* K blocks as gemm_block cuts k; block pc's panels at pc * (n rounded up to NR). */
void AF_FN(af_gemm_bpack)(AF_FN(af_gemm_bpanels) *p, int tb, size_t k, size_t n, const T *b, size_t ldb,
                          T *buf, size_t cap)
{
    const AF_FN(af_gemm_kinfo) *ki = AF_FN(af_kern)()->gemm;
    const size_t NR = ki->nr, nbp = (n + NR - 1) / NR;
    memset(p, 0, sizeof *p);
    if (k == 0 || n == 0 || (double)k * (double)(nbp * NR) > (double)cap) return;
    const size_t nkb = (k + ki->kc - 1) / ki->kc, KB = (k + nkb - 1) / nkb;
    for (size_t pc = 0; pc < k; pc += KB) {
        size_t kc = k - pc < KB ? k - pc : KB;
        T *dst = buf + AF_FN(gemm_bpanel_at)(NR, n, pc, kc, 0);
        ki->pack_b(tb, kc, n, tb ? b + pc : b + pc * ldb, ldb, dst, 0, nbp);
    }
    p->ki = ki, p->b = b, p->ldb = ldb, p->k = k, p->n = n, p->tb = tb, p->buf = buf;
}

af_status AF_FN(af_gemm_prepacked)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,
                                   size_t lda, const T *b, size_t ldb, const AF_FN(af_gemm_bpanels) *p, T beta,
                                   T *c, size_t ldc)
{
    return AF_FN(gemm_run)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, 0, p);
}

#include "dtype_end.h"
