/* gemm_impl.h: the GEMM driver for one dtype (included twice by gemm.c; see dtype.h).
 *
 * C = alpha * op(A) @ op(B) + beta * C, Goto/BLIS loop nest around a register-blocked
 * micro-kernel chosen at run time (gemm_kern.h):
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
 * number of threads. Tiny products skip packing (the kernel table's direct loop); one or two
 * rows use a GEMV loop; skinny operands are read in place instead of packed.
 */
#include "dtype_begin.h"

static const AF_FN(af_gemm_kinfo) *AF_FN(gemm_pick)(void)
{
    switch (af_get_isa()) {
#if AF_GEMM_X86
    case AF_ISA_AVX512: return &AF_FN(af_gemm_avx512);
    case AF_ISA_AVX2: return &AF_FN(af_gemm_avx2);
#endif
    default: return &AF_FN(af_gemm_generic);
    }
}

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
 * C = act(C + bias[j:j+nr]). */
static void AF_FN(gemm_epilogue)(const af_epilogue *ep, size_t mr, size_t nr, T *c, size_t ldc,
                                 size_t j)
{
    const T *bias = ep->bias ? (const T *)ep->bias + j : NULL;
    for (size_t r = 0; r < mr; r++) {
        T *cr = c + r * ldc;
        if (bias)
            for (size_t jj = 0; jj < nr; jj++) cr[jj] += bias[jj];
        /* relu inline: a call through the ISA dispatch per tile row (16 values) would cost
         * more than the work */
        if (ep->act == AF_ACT_RELU)
            for (size_t jj = 0; jj < nr; jj++) cr[jj] = cr[jj] > 0 ? cr[jj] : (T)0;
        else if (ep->act != AF_ACT_LINEAR)
            AF_FN(af_act_row_forward)(ep->act, (T)ep->act_param, nr, cr, cr);
    }
}

/* Tiny products (a few dozen multiply-adds, e.g. the tutorial network's 4x2 @ 2x4): one scalar
 * dot product per element of C through the operands' strides, no dispatch, no packing, no
 * temporaries; C[i, j] = alpha * sum_p op(A)[i, p] op(B)[p, j] (+ beta * C[i, j]). */
static void AF_FN(gemm_tiny)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,
                             size_t lda, const T *b, size_t ldb, T beta, T *c, size_t ldc)
{
    const size_t sai = ta ? 1 : lda, sap = ta ? lda : 1;  /* op(A)[i, p] = a[i*sai + p*sap] */
    const size_t sbp = tb ? 1 : ldb, sbj = tb ? ldb : 1;  /* op(B)[p, j] = b[p*sbp + j*sbj] */
    for (size_t i = 0; i < m; i++) {
        const T *ai = a + i * sai;
        T *ci = c + i * ldc;
        for (size_t j = 0; j < n; j++) {
            const T *bj = b + j * sbj;
            T s = 0;
            for (size_t p = 0; p < k; p++) s += ai[p * sap] * bj[p * sbp];
            ci[j] = beta == 0 ? alpha * s : alpha * s + beta * ci[j];
        }
    }
}

/* Serial blocked product on one thread's rectangle of C (see the top of this file), with that
 * thread's own packing buffers. j_off: column of this rectangle in the full C (for the bias).
 * pack_all_a / pack_all_b: pack every panel, or read full panels in place (edge panels are
 * always packed, zero-padded, since the kernel reads whole MR x kc / kc x NR panels). */
static void AF_FN(gemm_block)(const AF_FN(af_gemm_kinfo) *ki, int ta, int tb, size_t m, size_t n,
                              size_t k, T alpha, const T *a, size_t lda, const T *b, size_t ldb,
                              T beta, T *c, size_t ldc, const af_epilogue *ep, size_t j_off,
                              int pack_all_a, int pack_all_b, T *abuf, T *bbuf)
{
    const size_t MR = ki->mr, NR = ki->nr, MC = ki->mc, NC = ki->nc;
    /* K blocks of equal size (at most KC): 784 = 4 x 196 rather than 3 x 256 + 16, so no block
     * is too short to amortise loading and storing the C tiles. Depends on k only. */
    const size_t nkb = (k + ki->kc - 1) / ki->kc, KB = (k + nkb - 1) / nkb;
    for (size_t jc = 0; jc < n; jc += NC) {
        size_t nc = n - jc < NC ? n - jc : NC;
        size_t nbp = (nc + NR - 1) / NR;
        for (size_t pc = 0; pc < k; pc += KB) {
            size_t kc = k - pc < KB ? k - pc : KB;
            T beta_pc = pc == 0 ? beta : (T)1;  /* later K blocks accumulate onto C */
            int last = pc + kc == k;
            const T *bsrc = tb ? b + jc * ldb + pc : b + pc * ldb + jc;
            if (pack_all_b)
                ki->pack_b(tb, kc, nc, bsrc, ldb, bbuf, 0, nbp);
            else if (!pack_all_b && nc % NR)
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
                        ki->kernel(kc, ak, rsa, csa, bk, ldbk, alpha, beta_pc, ct, ldc, mr, nr);
                        if (last && ep) AF_FN(gemm_epilogue)(ep, mr, nr, ct, ldc, j_off + jc + jr * NR);
                    }
                }
            }
        }
    }
}

/* Packed product, threaded by splitting C into one rectangle per thread (a tm x tn grid, edges at
 * multiples of MR rows / NR columns). Each thread runs the serial blocked product on its own
 * rectangle with its own buffers: no barriers, so a thread that the OS delays holds nobody up.
 * Every C element sees the same K blocking and the same kernel arithmetic as on one thread, so
 * results are bitwise identical for any thread count. Columns are split first (each thread then
 * packs a disjoint part of B; A blocks are packed by every thread, a cost of 1/(n/tn) of the
 * product); rows when C has too few column panels. */
static af_status AF_FN(gemm_packed)(const AF_FN(af_gemm_kinfo) *ki, int ta, int tb, size_t m,
                                    size_t n, size_t k, T alpha, const T *a, size_t lda, const T *b,
                                    size_t ldb, T beta, T *c, size_t ldc, const af_epilogue *ep)
{
    const size_t MR = ki->mr, NR = ki->nr, MC = ki->mc, KC = ki->kc, NC = ki->nc;
    size_t nap = (m + MR - 1) / MR, nbp = (n + NR - 1) / NR;

    /* Packing copies each operand once so the kernel reads it contiguously; it pays off when the
     * packed panel is reused often. An A panel meets every B panel (n / NR times), a B panel every
     * A panel (m / MR times): for skinny products read the operand in place instead. B in place
     * needs rows of B, i.e. not transposed, and a row stride that is not a multiple of 4 KB (such
     * strides map every row of a B panel to the same L1 set and thrash it). The choice depends on
     * the shape only, never on the thread count. */
    const int pack_all_a = n > AF_GEMM_INPLACE_A_MAX_N * NR;
    const int pack_all_b = tb || m > AF_GEMM_INPLACE_B_MAX_M * MR || (ldb * sizeof(T)) % 4096 == 0;

    /* Thread grid: threads only pay off with enough work per thread. */
    size_t nt = (size_t)gemm_threads(), tm = 1, tn = 1;
    if ((double)m * (double)n * (double)k < AF_GEMM_PAR_MIN) nt = 1;
    for (size_t d = nt; d >= 1; d--)  /* largest column split with >= 2 panels per thread */
        if (nt % d == 0 && (d == 1 || nbp >= 2 * d)) {
            tn = d;
            break;
        }
    tm = nt / tn;
    if (tm > nap) tm = nap;
    nt = tm * tn;

    /* Per-thread workspace: a B block (kc x nc rounded up to NR) then an A block (mc rounded
     * up to MR, x kc), sized for the largest rectangle; at most KC*NC + MC*KC elements. */
    size_t rows_max = (nap + tm - 1) / tm * MR, cols_max = (nbp + tn - 1) / tn * NR;
    size_t kc_max = k < KC ? k : KC;
    size_t nc_max = cols_max < NC ? cols_max : NC;
    size_t mc_max = rows_max < MC ? rows_max : MC;
    size_t b_bytes = (kc_max * nc_max * sizeof(T) + 63) / 64 * 64;
    size_t per_thread = (b_bytes + kc_max * mc_max * sizeof(T) + 63) / 64 * 64;
    char *ws = (char *)af_gemm_workspace(per_thread * nt);
    if (!ws) return AF_ENOMEM;

    #pragma omp parallel for schedule(static, 1) num_threads((int)nt) if (nt > 1)
    for (size_t t = 0; t < nt; t++) {
        size_t ti = t / tn, tj = t % tn;
        size_t r0 = nap * ti / tm * MR, r1 = nap * (ti + 1) / tm * MR;
        size_t c0 = nbp * tj / tn * NR, c1 = nbp * (tj + 1) / tn * NR;
        if (r1 > m) r1 = m;
        if (c1 > n) c1 = n;
        if (r0 >= r1 || c0 >= c1) continue;
        char *mine = ws + t * per_thread;
        AF_FN(gemm_block)(ki, ta, tb, r1 - r0, c1 - c0, k, alpha, ta ? a + r0 : a + r0 * lda, lda,
                          tb ? b + c0 * ldb : b + c0, ldb, beta, c + r0 * ldc + c0, ldc, ep, c0,
                          pack_all_a, pack_all_b, (T *)(mine + b_bytes), (T *)mine);
    }
    return AF_OK;
}

/* One or two rows of C: row-by-row GEMV (B not transposed: rows of B scaled and summed; B^T, A
 * not transposed: dot products with the rows of B), columns split between threads in blocks of
 * 4 NR (each column's arithmetic does not depend on the split). */
static void AF_FN(gemm_rows)(const AF_FN(af_gemm_kinfo) *ki, int ta, int tb, size_t m, size_t n,
                             size_t k, T alpha, const T *a, size_t lda, const T *b, size_t ldb,
                             T beta, T *c, size_t ldc)
{
    size_t unit = 4 * ki->nr, nblk = (n + unit - 1) / unit;
    int nt = gemm_threads();
    if ((double)m * (double)n * (double)k < AF_GEMM_PAR_MIN || nblk < 2) nt = 1;
    (void)nt;
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
#ifdef _OPENMP
        size_t tid = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
#else
        size_t tid = 0, nth = 1;
#endif
        size_t j0 = nblk * tid / nth * unit, j1 = nblk * (tid + 1) / nth * unit;
        if (j1 > n) j1 = n;
        for (size_t i = 0; i < m && j0 < j1; i++) {
            if (tb)
                ki->gemv_t(k, j0, j1, alpha, a + i * lda, b, ldb, beta, c + i * ldc);
            else
                ki->gemv(k, j0, j1, alpha, ta ? a + i : a + i * lda, ta ? lda : 1, b, ldb, beta,
                         c + i * ldc);
        }
    }
}

af_status AF_FN(af_gemm_ex)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,
                            size_t lda, const T *b, size_t ldb, T beta, T *c, size_t ldc,
                            const af_epilogue *ep)
{
    af_status s = AF_FN(gemm_check)(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, ep);
    if (s != AF_OK || m == 0 || n == 0) return s;
    if (ep && !ep->bias && ep->act == AF_ACT_LINEAR) ep = NULL;
    if (k == 0 || alpha == 0) {
        /* No product term (BLAS semantics: A and B are not read): C = beta * C. */
        for (size_t i = 0; i < m; i++) {
            T *ci = c + i * ldc;
            if (beta == 0)
                for (size_t j = 0; j < n; j++) ci[j] = 0;
            else if (beta != 1)
                for (size_t j = 0; j < n; j++) ci[j] *= beta;
        }
    } else if (m <= AF_GEMM_TINY_MAX && n <= AF_GEMM_TINY_MAX && k <= AF_GEMM_TINY_MAX) {
        AF_FN(gemm_tiny)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
        const AF_FN(af_gemm_kinfo) *ki = AF_FN(gemm_pick)();
        if ((double)m * (double)n * (double)k <= AF_GEMM_DIRECT_MAX && !(ta && tb)) {
            ki->direct(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else if ((m <= AF_GEMM_GEMV_MAX_M || (k == 1 && n >= AF_GEMM_RANK1_MIN_N)) && !tb) {
            /* k == 1 is a rank-1 update (batch-1 weight gradients, C += alpha a b^T), bound by
             * streaming C through memory: row by row, not one micro-kernel call per tile */
            AF_FN(gemm_rows)(ki, ta, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else if (m <= AF_GEMM_GEMV_MAX_M && !ta) {
            /* rows of C = A B^T (batch-1 input gradients dx = dz W^T): vector dot products with
             * the contiguous rows of B, where the direct loop ran one scalar dot at a time */
            AF_FN(gemm_rows)(ki, 0, 1, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else if (m <= AF_GEMM_GEMV_MAX_M) {
            ki->direct(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else {
            /* the epilogue runs inside, tile by tile, while each tile is in L1 */
            return AF_FN(gemm_packed)(ki, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
        }
    }
    if (ep) AF_FN(gemm_epilogue)(ep, m, n, c, ldc, 0);
    return AF_OK;
}

#include "dtype_end.h"
