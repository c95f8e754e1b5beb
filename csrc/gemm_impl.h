/* gemm_impl.h: the GEMM driver for one dtype (included twice by gemm.c; see dtype.h).
 *
 * C = alpha * op(A) @ op(B) + beta * C, Goto/BLIS loop nest around a register-blocked
 * micro-kernel chosen at run time (gemm_kern.h):
 *
 *   for jc in steps of NC over n:            B block  op(B)[pc:pc+KC, jc:jc+NC] -> packed (L3)
 *     for pc in steps of KC over k:          (K is never split across threads)
 *       pack B block, NR-column panels split between threads
 *       for ic in steps of MC over m:        A block  op(A)[ic:ic+MC, pc:pc+KC] -> packed (L2)
 *         pack A block, MR-row panels split between threads
 *         for each MR x NR micro-tile (jr-major, contiguous share per thread):
 *           C tile = alpha * Ap_ir @ Bp_jr + (pc == 0 ? beta : 1) * C tile
 *           last K block: C tile = act(C tile + bias)   (epilogue, tile still in L1)
 *
 * Every C element is produced by the same sequence of operations whatever the thread count
 * (threads only choose WHICH tiles they compute), so results are bitwise identical for any
 * number of threads. Tiny products skip packing and use the kernel table's direct loop.
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
    size_t t;
    if (ep && ((unsigned)ep->act >= AF_ACT_COUNT || ep->act == AF_ACT_SOFTMAX)) return AF_EINVAL;
    if (m == 0 || n == 0) return AF_OK;
    if (!c) return AF_EINVAL;
    if (ldc < n || af_mul_size(m, ldc, &t)) return AF_ESHAPE;
    if (k == 0) return AF_OK;
    if (!a || !b) return AF_EINVAL;
    if (lda < (ta ? m : k) || ldb < (tb ? k : n)) return AF_ESHAPE;
    if (af_mul_size(ta ? k : m, lda, &t) || af_mul_size(tb ? n : k, ldb, &t)) return AF_ESHAPE;
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
        if (ep->act != AF_ACT_LINEAR) AF_FN(af_act_row_forward)(ep->act, (T)ep->act_param, nr, cr, cr);
    }
}

/* Packed, blocked, threaded product (see the top of this file). */
static af_status AF_FN(gemm_packed)(const AF_FN(af_gemm_kinfo) *ki, int ta, int tb, size_t m,
                                    size_t n, size_t k, T alpha, const T *a, size_t lda, const T *b,
                                    size_t ldb, T beta, T *c, size_t ldc, const af_epilogue *ep)
{
    const size_t MR = ki->mr, NR = ki->nr, MC = ki->mc, KC = ki->kc, NC = ki->nc;
    /* Workspace: one B block (kc x nc rounded up to NR) then one A block (mc rounded to MR x kc).
     * Bounded by KC*NC + MC*KC elements, so no overflow. */
    size_t kc_max = k < KC ? k : KC;
    size_t nc_max = ((n < NC ? n : NC) + NR - 1) / NR * NR;
    size_t mc_max = ((m < MC ? m : MC) + MR - 1) / MR * MR;
    size_t b_bytes = (kc_max * nc_max * sizeof(T) + 63) / 64 * 64;
    char *ws = (char *)af_gemm_workspace(b_bytes + kc_max * mc_max * sizeof(T));
    if (!ws) return AF_ENOMEM;
    T *bbuf = (T *)ws, *abuf = (T *)(ws + b_bytes);

    /* Packing copies each operand once so the kernel reads it contiguously; it pays off when the
     * packed panel is reused often. An A panel meets every B panel (n / NR times), a B panel every
     * A panel (m / MR times): for skinny products read the operand in place instead (full panels
     * only; a partial edge panel is still packed, zero-padded). B in place needs rows of B, i.e.
     * not transposed, and a row stride that is not a multiple of 4 KB (such strides map every
     * row of a B panel to the same L1 set and thrash it). The choice depends on the shape only,
     * never on the thread count. */
    const int pack_all_a = n > AF_GEMM_INPLACE_A_MAX_N * NR;
    const int pack_all_b = tb || m > AF_GEMM_INPLACE_B_MAX_M * MR || (ldb * sizeof(T)) % 4096 == 0;

    /* Threads only pay off with enough work per barrier; the count never changes results. */
    int nt = af_get_num_threads();
    if ((double)m * (double)n * (double)k < AF_GEMM_PAR_MIN) nt = 1;
    (void)nt;

    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
#ifdef _OPENMP
        size_t tid = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
#else
        size_t tid = 0, nth = 1;
#endif
        for (size_t jc = 0; jc < n; jc += NC) {
            size_t nc = n - jc < NC ? n - jc : NC;
            size_t nbp = (nc + NR - 1) / NR;
            int b_edge = nc % NR != 0;
            for (size_t pc = 0; pc < k; pc += KC) {
                size_t kc = k - pc < KC ? k - pc : KC;
                T beta_pc = pc == 0 ? beta : (T)1;
                int last = pc + kc == k;
                const T *bsrc = tb ? b + jc * ldb + pc : b + pc * ldb + jc;
                /* Everyone is done with the previous blocks before they are overwritten. */
                #pragma omp barrier
                if (pack_all_b)
                    ki->pack_b(tb, kc, nc, bsrc, ldb, bbuf, nbp * tid / nth, nbp * (tid + 1) / nth);
                else if (b_edge && tid == 0)
                    ki->pack_b(tb, kc, nc, bsrc, ldb, bbuf, nbp - 1, nbp);
                for (size_t ic = 0; ic < m; ic += MC) {
                    size_t mc = m - ic < MC ? m - ic : MC;
                    size_t nap = (mc + MR - 1) / MR;
                    int a_edge = mc % MR != 0;
                    const T *asrc = ta ? a + pc * lda + ic : a + ic * lda + pc;
                    if (ic > 0) {
                        #pragma omp barrier
                    }
                    if (pack_all_a)
                        ki->pack_a(ta, mc, kc, asrc, lda, abuf, nap * tid / nth, nap * (tid + 1) / nth);
                    else if (a_edge && tid == nth - 1)
                        ki->pack_a(ta, mc, kc, asrc, lda, abuf, nap - 1, nap);
                    #pragma omp barrier
                    /* This thread's contiguous share of the nap x nbp micro-tiles, jr-major so
                     * a B micro-panel stays in L1 while it meets every A panel. */
                    size_t ntile = nap * nbp;
                    size_t t1 = ntile * (tid + 1) / nth;
                    for (size_t t = ntile * tid / nth; t < t1; t++) {
                        size_t jr = t / nap, ir = t - jr * nap;
                        size_t mr = mc - ir * MR < MR ? mc - ir * MR : MR;
                        size_t nr = nc - jr * NR < NR ? nc - jr * NR : NR;
                        const T *ak, *bk;
                        size_t rsa, csa, ldbk;
                        if (pack_all_a || mr < MR) {
                            ak = abuf + ir * MR * kc, rsa = 1, csa = MR;
                        } else {
                            ak = asrc + ir * MR * (ta ? 1 : lda), rsa = ta ? 1 : lda, csa = ta ? lda : 1;
                        }
                        if (pack_all_b || nr < NR)
                            bk = bbuf + jr * NR * kc, ldbk = NR;
                        else
                            bk = bsrc + jr * NR, ldbk = ldb;
                        T *ct = c + (ic + ir * MR) * ldc + jc + jr * NR;
                        ki->kernel(kc, ak, rsa, csa, bk, ldbk, alpha, beta_pc, ct, ldc, mr, nr);
                        if (last && ep) AF_FN(gemm_epilogue)(ep, mr, nr, ct, ldc, jc + jr * NR);
                    }
                }
            }
        }
    }
    return AF_OK;
}

/* One or two rows of C with B not transposed: row-by-row GEMV, columns split between threads in
 * blocks of 4 NR (each column's arithmetic does not depend on the split). */
static void AF_FN(gemm_rows)(const AF_FN(af_gemm_kinfo) *ki, int ta, size_t m, size_t n, size_t k,
                             T alpha, const T *a, size_t lda, const T *b, size_t ldb, T beta, T *c,
                             size_t ldc)
{
    size_t unit = 4 * ki->nr, nblk = (n + unit - 1) / unit;
    int nt = af_get_num_threads();
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
        for (size_t i = 0; i < m && j0 < j1; i++)
            ki->gemv(k, j0, j1, alpha, ta ? a + i : a + i * lda, ta ? lda : 1, b, ldb, beta,
                     c + i * ldc);
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
    } else {
        const AF_FN(af_gemm_kinfo) *ki = AF_FN(gemm_pick)();
        if ((double)m * (double)n * (double)k <= AF_GEMM_DIRECT_MAX) {
            ki->direct(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else if (m <= AF_GEMM_GEMV_MAX_M && !tb) {
            AF_FN(gemm_rows)(ki, ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else if (m <= AF_GEMM_GEMV_MAX_M) {
            ki->direct(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else {
            s = AF_FN(gemm_packed)(ki, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
            return s;   /* the epilogue ran inside, tile by tile */
        }
    }
    if (ep) AF_FN(gemm_epilogue)(ep, m, n, c, ldc, 0);
    return AF_OK;
}

#include "dtype_end.h"
