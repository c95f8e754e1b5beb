/* gemm_kern_impl.h: micro-kernel, packing and direct small-shape loop for ONE (ISA, dtype) pair.
 *
 * Included by gemm_generic.c / gemm_avx2.c / gemm_avx512.c once per dtype, after defining:
 *   AF_DTYPE_F32 or AF_DTYPE_F64   the element type (see dtype.h)
 *   AF_KISA                        name suffix of the ISA (generic, avx2, avx512)
 *   AF_KATTR                       function attribute selecting the ISA (target("avx2,fma"), ...)
 *   KMR, KNV, KVN                  micro-tile: KMR rows x KNV vectors of KVN lanes (NR = KNV*KVN)
 *   KMC, KKC, KNC                  cache blocks (see the ISA file for how they were chosen)
 *   V, VZERO(), VSET1(x), VBCAST(p), VLOADU(p), VSTOREU(p, v), VMUL(a, b),
 *   VFMA(a, b, c) = a * b + c      the vector operations
 *   KTRANSPOSE(d, ldd, s, lds)     optional: d[i*ldd + r] = s[r*lds + i] for a KVN x KVN block
 *   KPACKA(d, s, lds)              optional: d[i*KMR + r] = s[r*lds + i] for r < KMR, i < KVN
 *                                  (KVN columns of a full A panel; reads only those KMR x KVN)
 * Everything it defines is undefined again at the end, so it can be included again.
 * The code is written once; the intrinsics behind the V* macros are the only per-ISA part. */
#include <string.h>
#include "dtype_begin.h"

#define KFN(name) AF_FN(AF_CAT(AF_CAT(name, _), AF_KISA))
#define KNR (KNV * KVN)
#define KMIN(x, y) ((x) < (y) ? (x) : (y))

/* NaN/inf detector of the checked entry points (af_*gemm_checked): chk stays zero while every
 * folded vector is finite (x * 0 = 0) and turns NaN for good at the first inf or NaN (inf * 0 =
 * NaN), one FMA per vector of C. Padding lanes may be folded too: they are products with zeros,
 * NaN only when a real input is not finite. chk_report flags *bad if any lane turned NaN. */
#define KCHK_FOLD(chk, x) ((chk) = VFMA((x), VZERO(), (chk)))
static inline __attribute__((always_inline)) AF_KATTR void KFN(chk_report)(V chk, int *bad)
{
    T t[KVN] __attribute__((aligned(64)));
    VSTOREU(t, chk);
    int nf = 0;
    for (int l = 0; l < KVN; l++) nf |= t[l] != t[l];
    if (nf) __atomic_store_n(bad, 1, __ATOMIC_RELAXED);
}

/* Micro-kernel body: the KMR x KNR tile  C = alpha * sum_p A[:, p] B[p, :] + beta * C, where
 * A[r, p] = a[r*rsa + p*csa] and B[p, j] = b[p*ldbk + j]. Each step p is one rank-1 update of the
 * KMR*KNV vector accumulators held in registers: KNV loads of B's row p, KMR broadcasts of A's
 * column p, KMR*KNV FMAs. Only the valid mr x nr corner of the tile is written; beta == 0 never
 * reads C. Inlined several times below: with the packed strides as constants, with general
 * strides (A or B read in place, for shapes where packing costs more than it saves), and with
 * fewer rows for edge panels. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemm_kernel_body)(const int rows, size_t k, const T *restrict a, size_t rsa, size_t csa,
                      const T *restrict b, size_t ldbk, T alpha, T beta, T *restrict c, size_t ldc,
                      size_t mr, size_t nr, const AF_FN(af_gemm_kout) *out)
{
    const T *bias = out ? out->bias : NULL;
    const int relu = out && out->relu;
    int *bad = out ? out->bad : NULL;
    /* rows (a constant after inlining, <= KMR): only the first `rows` rows of the tile are
     * computed; edge panels with few valid rows use a shorter variant. */
    V acc[KMR][KNV];
    /* Start fetching the C tile now; it is needed only after the k loop. */
#pragma GCC unroll 32
    for (int r = 0; r < rows; r++) {
        __builtin_prefetch(c + r * ldc, 1, 3);
        __builtin_prefetch(c + r * ldc + KNR - 1, 1, 3);
    }
#pragma GCC unroll 32
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
        for (int v = 0; v < KNV; v++) acc[r][v] = VZERO();
#pragma GCC unroll 4
    for (size_t p = 0; p < k; p++) {
        V bv[KNV];
#pragma GCC unroll 8
        for (int v = 0; v < KNV; v++) bv[v] = VLOADU(b + v * KVN);
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++) {
            V ar = VBCAST(a + r * rsa);
#pragma GCC unroll 8
            for (int v = 0; v < KNV; v++) acc[r][v] = VFMA(ar, bv[v], acc[r][v]);
        }
        a += csa;
        b += ldbk;
    }
    V va = VSET1(alpha);
    if (bad) { /* the product's values, alpha op(A) op(B), before beta C is added */
        V chk = out->chk ? VLOADU(out->chk) : VZERO();
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
            for (int v = 0; v < KNV; v++) KCHK_FOLD(chk, VMUL(va, acc[r][v]));
        if (out->chk) /* the caller looks once (a look per tile: 2-3% of 128x512 @ 512x256) */
            VSTOREU(out->chk, chk);
        else
            KFN(chk_report)(chk, bad);
    }
    if (mr == (size_t)rows && nr == KNR && alpha == 1 && beta == 0 && !bias && !relu) {
        /* the plain product (1 x is x exactly): stores only, which a short k is bound by
         * (128x10 @ 10x256 double: 12 multiplies a tile fewer) */
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
            for (int v = 0; v < KNV; v++) VSTOREU(c + r * ldc + v * KVN, acc[r][v]);
        return;
    }
    if (mr == (size_t)rows && nr == KNR) {
        V vb = VSET1(beta), bv[KNV];
#pragma GCC unroll 8
        for (int v = 0; v < KNV; v++) bv[v] = bias ? VLOADU(bias + v * KVN) : VZERO();
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
            for (int v = 0; v < KNV; v++) {
                T *cp = c + r * ldc + v * KVN;
                V x = VMUL(va, acc[r][v]);
                if (beta != 0) x = VFMA(vb, VLOADU(cp), x);
                if (bias) x = VADD(x, bv[v]);
                if (relu) x = VRELU(x);
                VSTOREU(cp, x);
            }
        return;
    }
    /* Edge tile: spill alpha * acc, then update only the valid corner (same operations). */
    T tile[KMR * KNR] __attribute__((aligned(64)));
#pragma GCC unroll 32
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
        for (int v = 0; v < KNV; v++) VSTOREU(tile + r * KNR + v * KVN, VMUL(va, acc[r][v]));
    for (size_t r = 0; r < mr; r++) {
        T *cr = c + r * ldc;
        const T *tr = tile + r * KNR;
        for (size_t j = 0; j < nr; j++) {
            T x = beta == 0 ? tr[j] : beta * cr[j] + tr[j];
            if (bias) x += bias[j];
            if (relu) x = x > 0 || x != x ? x : (T)0;
            cr[j] = x;
        }
    }
}

static AF_KATTR void KFN(gemm_kernel)(size_t k, const T *a, size_t rsa, size_t csa, const T *b,
                                      size_t ldbk, T alpha, T beta, T *c, size_t ldc, size_t mr,
                                      size_t nr, const AF_FN(af_gemm_kout) *out)
{
    if (mr < KMR) {
        /* Edge panel (always packed, zero-padded): skip rows that are only padding, e.g. the
         * 2 leftover rows of m = 128 with MR = 6 cost a third of a full tile, not a full one. */
        if (mr <= KMR / 3 && ldbk == KNR)
            KFN(gemm_kernel_body)(KMR / 3, k, a, 1, KMR, b, KNR, alpha, beta, c, ldc, mr, nr, out);
        else if (mr <= KMR / 3)
            KFN(gemm_kernel_body)(KMR / 3, k, a, 1, KMR, b, ldbk, alpha, beta, c, ldc, mr, nr, out);
        else if (mr <= 2 * KMR / 3 && ldbk == KNR)
            KFN(gemm_kernel_body)(2 * KMR / 3, k, a, 1, KMR, b, KNR, alpha, beta, c, ldc, mr, nr, out);
        else if (mr <= 2 * KMR / 3)
            KFN(gemm_kernel_body)(2 * KMR / 3, k, a, 1, KMR, b, ldbk, alpha, beta, c, ldc, mr, nr, out);
        else
            KFN(gemm_kernel_body)(KMR, k, a, 1, KMR, b, ldbk, alpha, beta, c, ldc, mr, nr, out);
    } else if (rsa == 1 && csa == KMR && ldbk == KNR) { /* both packed (the common case) */
        KFN(gemm_kernel_body)(KMR, k, a, 1, KMR, b, KNR, alpha, beta, c, ldc, mr, nr, out);
    } else if (ldbk == KNR) {                          /* A read in place, B packed */
        KFN(gemm_kernel_body)(KMR, k, a, rsa, csa, b, KNR, alpha, beta, c, ldc, mr, nr, out);
    } else if (rsa == 1 && csa == KMR) {               /* A packed, B read in place */
        KFN(gemm_kernel_body)(KMR, k, a, 1, KMR, b, ldbk, alpha, beta, c, ldc, mr, nr, out);
    } else {                                           /* B (and maybe A) read in place */
        KFN(gemm_kernel_body)(KMR, k, a, rsa, csa, b, ldbk, alpha, beta, c, ldc, mr, nr, out);
    }
}

/* A read in place, B packed, mr <= KMR rows (gemm_kern.h: kernel_rows). */
static AF_KATTR void KFN(gemm_kernel_rows)(size_t k, const T *a, size_t rsa, size_t csa, const T *b,
                                           T alpha, T beta, T *c, size_t ldc, size_t mr, size_t nr,
                                           const AF_FN(af_gemm_kout) *out)
{
    if (mr <= KMR / 3)
        KFN(gemm_kernel_body)(KMR / 3, k, a, rsa, csa, b, KNR, alpha, beta, c, ldc, mr, nr, out);
    else if (mr <= 2 * KMR / 3)
        KFN(gemm_kernel_body)(2 * KMR / 3, k, a, rsa, csa, b, KNR, alpha, beta, c, ldc, mr, nr, out);
    else
        KFN(gemm_kernel_body)(KMR, k, a, rsa, csa, b, KNR, alpha, beta, c, ldc, mr, nr, out);
}

/* Accumulator vectors of one GEMV panel: two thirds of the micro-tile's, which leaves registers
 * for the loads (avx512: 16 of 32 zmm; avx2 and generic: 8 of 16). */
#define KGV (KMR * KNV >= 24 ? 16 : 8)

/* Rows ahead whose lines a GEMV panel asks for (KGVPF, set by an ISA's file; 0: none), when B's
 * rows lie less than a page apart. A panel reads a few lines of each row of B, rows ldb apart (a
 * 64-unit gate block of U: 256 bytes every 2 KB), a pattern Zen 3's prefetchers follow late: the
 * block's product (128 x 4 x 64, avx2 float, U in L2) 1.58 -> 1.38 us with the lines 4 rows ahead
 * requested (2 rows: 1.44, 8: 1.59; packed contiguous: 1.29). With rows a page or more apart
 * (double, 512 columns) the requests made a 784 x 512 GEMV from L3 slower (84 -> 123 us), so
 * none then. Values are untouched. */
#ifndef KGVPF
#define KGVPF 0
#endif
static inline size_t KFN(gemv_pf)(size_t ldb) { return AF_GEMM_ROWS_PAGE_APART(ldb * sizeof(T)) ? 0 : KGVPF; }

/* The lines of bytes bytes at p (a panel's part of one row of B). */
static inline __attribute__((always_inline)) void KFN(gemv_prefetch)(const T *p, size_t bytes)
{
    const char *c = (const char *)p, *e = c + bytes - 1;
    for (; c <= e; c += 64) __builtin_prefetch(c, 0, 3);
    if (((uintptr_t)p & 63) != 0) __builtin_prefetch(e, 0, 3); /* the last line when misaligned */
}

/* y = alpha * s (+ beta * y) for one vector of a GEMV row: the one rule of the panels, the
 * streaming pass and the rank-1 rows, so their bits agree. */
static inline __attribute__((always_inline)) AF_KATTR void KFN(gemv_out)(V s, V va, V vb, T beta,
                                                                          T *restrict y)
{
    V r = VMUL(va, s);
    VSTOREU(y, beta == 0 ? r : VFMA(vb, VLOADU(y), r));
}

/* R rows (R <= 4) x nv vectors (R nv <= KGV; both constants after inlining) of y from B's columns
 * at b: the sums stay in registers while B is walked down row by row, so each step p costs R
 * broadcasts, nv loads and R nv FMAs (no accumulator loads and stores; each vector of B loaded
 * once for the R rows): y_rj = fma(x_r,k-1, b_{k-1,j}, ... fma(x_r0, b_0j, 0)), whatever R.
 * Then y = alpha * sum (+ beta * y). Row r's x at x + r ldx, its y at y + r ldy. One row asks
 * for B's lines ahead (KGVPF); several are bound by their FMAs, not by the loads. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_panel_rows)(const int R, const int nv, size_t k, T alpha, const T *restrict x, size_t ldx,
                     size_t incx, const T *restrict b, size_t ldb, T beta, T *restrict y, size_t ldy)
{
    V s[KGV];
#pragma GCC unroll 16
    for (int v = 0; v < R * nv; v++) s[v] = VZERO();
    const size_t pf = R == 1 ? KFN(gemv_pf)(ldb) : 0;
    for (size_t p = 0; p < k; p++, b += ldb) {
        V xp[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) xp[r] = VBCAST(x + r * ldx + p * incx);
        if (pf && p + pf < k) KFN(gemv_prefetch)(b + pf * ldb, (size_t)nv * KVN * sizeof(T));
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) {
            V bv = VLOADU(b + v * KVN);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) s[r * nv + v] = VFMA(xp[r], bv, s[r * nv + v]);
        }
    }
    V va = VSET1(alpha), vb = VSET1(beta);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) KFN(gemv_out)(s[r * nv + v], va, vb, beta, y + r * ldy + v * KVN);
}

/* One row's panel of nv vectors (gemv_panel_rows with R = 1). */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_panel)(const int nv, size_t k, T alpha, const T *restrict x, size_t incx, const T *restrict b,
                size_t ldb, T beta, T *restrict y)
{
    KFN(gemv_panel_rows)(1, nv, k, alpha, x, 0, incx, b, ldb, beta, y, 0);
}

/* Streaming GEMV (gemv_rows for B wider than a few panels): B's rows in blocks of KGS, each
 * block read row after row from left to right, the sums of up to KGSW columns kept in acc
 * between blocks. A panel instead walks one strip of columns down every row, a few lines from
 * each of k rows: when the rows lie a page apart, and more so when they are not 32-byte aligned
 * (NumPy's 16-byte aligned arrays), the prefetchers miss them. 1 x 784 @ 784 x 512 double on
 * Zen 3 (B in L3, 1 thread): 81 us by panels (57 with B aligned), 45 streaming (NumPy 45).
 * Blocks of 4 rows rather than 8 (fewer streams at once): in one run double 784 x 512 50.6 ->
 * 46.3 us, 1024 x 1024 161 -> 137 us, float 1024 x 1024 74 -> 64 us (6: in between), gains
 * within the spread one build shows between runs on that VM, so weakly established. */
#define KGS 4
#define KGSW (8192 / sizeof(T))

/* acc[0:nv KVN] (nv = 4 or 1) += x_p B[p, 0:nv KVN] for the r rows of a block, in order; first:
 * the block starting the chains (sums from zero, acc not read). */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_stream_cols)(const int nv, const int r, const V *xv, const T *restrict b, size_t ldb,
                      T *restrict acc, int first)
{
    V s[4];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) s[v] = first ? VZERO() : VLOADU(acc + v * KVN);
#pragma GCC unroll 8
    for (int q = 0; q < r; q++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) s[v] = VFMA(xv[q], VLOADU(b + q * ldb + v * KVN), s[v]);
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) VSTOREU(acc + v * KVN, s[v]);
}

/* One block of r rows (a constant after inlining) over the nv vectors of columns at b. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_stream_block)(const int r, size_t nv, const T *restrict x, size_t incx, const T *restrict b,
                       size_t ldb, T *restrict acc, int first)
{
    V xv[KGS];
#pragma GCC unroll 8
    for (int q = 0; q < r; q++) xv[q] = VBCAST(x + q * incx);
    size_t v = 0;
    for (; v + 4 <= nv; v += 4) KFN(gemv_stream_cols)(4, r, xv, b + v * KVN, ldb, acc + v * KVN, first);
    for (; v < nv; v++) KFN(gemv_stream_cols)(1, r, xv, b + v * KVN, ldb, acc + v * KVN, first);
}

/* The nv full vectors of columns at b (y likewise), chunks of KGSW columns at a time. Per
 * column the chain of gemv_panel: fma(x_{k-1}, b_{k-1,j}, ... fma(x_0, b_0j, 0)), each partial
 * sum stored in acc as it is, then y = alpha * sum (+ beta * y) as gemv_panel: the same bits.
 * Kept out of line so that the 8 KB buffer never joins the frame of gemv_rows, whose panels
 * serve the short recurrent products (GCC does not inline it there anyway). */
static __attribute__((noinline)) AF_KATTR void
KFN(gemv_stream)(size_t k, size_t nv, T alpha, const T *restrict x, size_t incx, const T *restrict b,
                 size_t ldb, T beta, T *restrict y)
{
    T acc[KGSW] __attribute__((aligned(64)));
    V va = VSET1(alpha), vb = VSET1(beta);
    for (size_t v0 = 0; v0 < nv; v0 += KGSW / KVN) {
        size_t cv = nv - v0 < KGSW / KVN ? nv - v0 : KGSW / KVN, p = 0;
        const T *bc = b + v0 * KVN;
        /* ceil(k / KGS) blocks of nearly equal size (9 rows: 3 + 3 + 3, not 4 + 4 + 1); with
         * k >= 2 KGS (gemv_rows) each has 3 or 4 rows */
        const size_t nb = (k + KGS - 1) / KGS;
        for (size_t i = 0; i < nb; i++) {
            const size_t p1 = k * (i + 1) / nb;
            const T *xp = x + p * incx, *bp = bc + p * ldb;
            if (p1 - p == KGS)
                KFN(gemv_stream_block)(KGS, cv, xp, incx, bp, ldb, acc, i == 0);
            else
                KFN(gemv_stream_block)(KGS - 1, cv, xp, incx, bp, ldb, acc, i == 0);
            p = p1;
        }
        T *yc = y + v0 * KVN;
        for (size_t v = 0; v < cv; v++) KFN(gemv_out)(VLOADU(acc + v * KVN), va, vb, beta, yc + v * KVN);
    }
}

/* y[j0:j1] = alpha * sum_p x[p*incx] B[p, j0:j1] + beta * y (one row of C, B not transposed), in
 * panels of KGV vectors (then one narrower panel, then the tail columns). Per column the FMA
 * chain over p runs in order from zero whichever panel, chunk or thread computes it, so any
 * split of [0, n) at multiples of KVN gives identical bits. */
static AF_KATTR void KFN(gemv_rows)(size_t k, size_t j0, size_t j1, T alpha, const T *restrict x,
                                    size_t incx, const T *restrict b, size_t ldb, T beta,
                                    T *restrict y)
{
    V va = VSET1(alpha), vb = VSET1(beta);
    if (k == 1) {
        /* A rank-1 row (batch-1 weight updates): y = alpha (x0 b) + beta y in one streaming pass,
         * by the same operations as the panels (x0 b rounded, times alpha, then beta y). */
        V x0 = VBCAST(x);
        size_t j = j0;
        for (; j + KVN <= j1; j += KVN) KFN(gemv_out)(VMUL(x0, VLOADU(b + j)), va, vb, beta, y + j);
        for (; j < j1; j++) {
            T r = alpha * (x[0] * b[j]);
            y[j] = beta == 0 ? r : beta * y[j] + r;
        }
        return;
    }
    size_t j = j0;
    /* Streaming when B's rows lie a page or more apart and B is too big to stay in L2 between
     * calls; the panels keep the rest. Streaming gains there (Zen 3, 1 x k @ k x n, 1 thread,
     * one run): double 784 x 512 57 -> 46 us, 1024 x 1024 251 -> 143 us, 128 x 512 12.4 -> 7.4
     * us, 2 x 784 @ 784 x 512 166 -> 95 us; float 1024 x 1024 123 -> 63 us. Elsewhere it
     * measured within 10% of the panels either way (rows 2 KB apart, float 784 x 512: 28.9 vs
     * 29.0 us; double 512 x 256: 18.8 vs 17.6; B in L2, double 20 x 1000: 1.9 vs 2.1; 9 x 2048:
     * 2.3 vs 1.9), so the panels, whose prefetches serve the recurrent layers' U, keep those. */
    if (k >= 2 * KGS && AF_GEMM_ROWS_PAGE_APART(ldb * sizeof(T)) && k * ldb * sizeof(T) >= 262144 &&
        j1 - j0 >= 2 * KGV * KVN) {
        KFN(gemv_stream)(k, (j1 - j0) / KVN, alpha, x, incx, b + j, ldb, beta, y + j);
        j += (j1 - j0) / KVN * KVN;
    }
    for (; j + KGV * KVN <= j1; j += KGV * KVN) KFN(gemv_panel)(KGV, k, alpha, x, incx, b + j, ldb, beta, y + j);
    /* the rest in panels of KGV / 2, ..., 2, 1 vectors */
#pragma GCC unroll 4
    for (int nv = KGV / 2; nv >= 1; nv /= 2)
        if (j + nv * KVN <= j1) {
            KFN(gemv_panel)(nv, k, alpha, x, incx, b + j, ldb, beta, y + j);
            j += nv * KVN;
        }
    if (j < j1) {
        /* tail columns (fewer than KVN, only at the end of the row): one zero-padded vector */
        T row[KVN] __attribute__((aligned(64))), acc[KVN] __attribute__((aligned(64)));
        V s = VZERO();
        for (size_t l = 0; l < KVN; l++) row[l] = 0;
        for (size_t q = 0; q < k; q++) {
            for (size_t l = 0; l < j1 - j; l++) row[l] = b[q * ldb + j + l];
            s = VFMA(VBCAST(x + q * incx), VLOADU(row), s);
        }
        VSTOREU(acc, s);
        for (size_t l = 0; l < j1 - j; l++) y[j + l] = beta == 0 ? alpha * acc[l] : beta * y[j + l] + alpha * acc[l];
    }
}

/* Columns [j0, j1) of R rows (a constant after inlining) by gemv_panel_rows: panels of KGV / R
 * vectors rounded down to a power of two (3 rows: 4 vectors, so that panels start a whole number
 * of cache lines apart, not 5 vectors), then narrower ones; the tail columns (fewer than a
 * vector) row by row as gemv_rows computes them. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_rows_group)(const int R, size_t k, size_t j0, size_t j1, T alpha, const T *x, size_t ldx,
                     size_t incx, const T *b, size_t ldb, T beta, T *y, size_t ldy)
{
    const int cm = KGV / R >= 8 ? 8 : KGV / R >= 4 ? 4 : KGV / R >= 2 ? 2 : 1;
    size_t j = j0;
    for (; j + (size_t)cm * KVN <= j1; j += (size_t)cm * KVN)
        KFN(gemv_panel_rows)(R, cm, k, alpha, x, ldx, incx, b + j, ldb, beta, y + j, ldy);
#pragma GCC unroll 4
    for (int nv = 8; nv >= 1; nv /= 2)
        if (nv < cm && j + (size_t)nv * KVN <= j1) {
            KFN(gemv_panel_rows)(R, nv, k, alpha, x, ldx, incx, b + j, ldb, beta, y + j, ldy);
            j += (size_t)nv * KVN;
        }
    for (int r = 0; r < R && j < j1; r++)
        KFN(gemv_rows)(k, j, j1, alpha, x + r * ldx, incx, b, ldb, beta, y + r * ldy);
}

/* gemv_multi (gemm_kern.h): rows in groups of 4, then the 3 or 2 left together, or the last one
 * as gemv_rows makes a row (streaming B when its rows lie a page apart). */
static AF_KATTR void KFN(gemv_multi)(size_t m, size_t k, size_t j0, size_t j1, T alpha, const T *x,
                                     size_t ldx, size_t incx, const T *b, size_t ldb, T beta, T *y,
                                     size_t ldy)
{
    size_t i = 0;
    for (; i + 4 <= m; i += 4)
        KFN(gemv_rows_group)(4, k, j0, j1, alpha, x + i * ldx, ldx, incx, b, ldb, beta, y + i * ldy, ldy);
    if (m - i == 3)
        KFN(gemv_rows_group)(3, k, j0, j1, alpha, x + i * ldx, ldx, incx, b, ldb, beta, y + i * ldy, ldy);
    else if (m - i == 2)
        KFN(gemv_rows_group)(2, k, j0, j1, alpha, x + i * ldx, ldx, incx, b, ldb, beta, y + i * ldy, ldy);
    else if (m - i == 1)
        KFN(gemv_rows)(k, j0, j1, alpha, x + i * ldx, incx, b, ldb, beta, y + i * ldy);
}

/* Vectors of W a projection pass (af_gemm_proj) takes: with AF_GEMM_PROJ_ROWS rows, KPR KPV
 * accumulators, KPV loads and a broadcast beside a GEMV panel's KGV accumulators and broadcast
 * (avx512: 16 + 8 + 2 + 1 + 1 of 32 zmm; avx2: 8 + 4 + 1 + 1 + 1 of 16 ymm). */
#define KPR AF_GEMM_PROJ_ROWS
#define KPV (KGV >= 16 ? 2 : 1)
/* 1 where the recurrent layers make their projection beside the GEMVs (proj_cols; set by an
 * ISA's file): avx512 only. With 16 registers (avx2, generic) the passes cost more than they
 * hide: batch-1 LSTM(128) predict on 2 threads, avx2 72 -> 80 us, generic 142 -> 168 us. */
#ifndef KPROJ
#define KPROJ 0
#endif

/* Where pass q of pj reads W and writes P. */
static inline __attribute__((always_inline)) void KFN(proj_at)(const AF_FN(af_gemm_proj) *pj, size_t q,
                                                               const T **w, T **out)
{
    const size_t per = pj->segw / (KPV * KVN), c = q % per * (KPV * KVN);
    *w = pj->w + q / per * pj->wseg + c;
    *out = pj->p + q / per * pj->pseg + c;
}

/* The KPR rows of X a pass reads, step by step: xt[p KPR + r] = x[r ldx + p] (so a step's
 * broadcasts read one place, and the loops keep few pointers live). */
static inline void KFN(proj_xt)(const AF_FN(af_gemm_proj) *pj, T *xt)
{
    for (size_t p = 0; p < pj->k; p++)
        for (int r = 0; r < KPR; r++) xt[p * KPR + r] = pj->x[r * pj->ldx + p];
}

/* One step of a pass: c += x_p w_p for its rows and columns (xt at step p, w at W's row p). */
static inline __attribute__((always_inline)) AF_KATTR void KFN(proj_step)(V *c, const T *xt, const T *w)
{
    V wv[KPV];
#pragma GCC unroll 4
    for (int v = 0; v < KPV; v++) wv[v] = VLOADU(w + v * KVN);
#pragma GCC unroll 4
    for (int r = 0; r < KPR; r++) {
        V a = VBCAST(xt + r);
#pragma GCC unroll 4
        for (int v = 0; v < KPV; v++) c[r * KPV + v] = VFMA(a, wv[v], c[r * KPV + v]);
    }
}

static inline __attribute__((always_inline)) AF_KATTR void KFN(proj_store)(V *c, T *out, size_t ldp)
{
#pragma GCC unroll 4
    for (int r = 0; r < KPR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < KPV; v++) VSTOREU(out + r * ldp + v * KVN, c[r * KPV + v]);
}

/* Passes [q0, q1) of pj alone (xt: proj_xt's). */
static AF_KATTR void KFN(proj_passes)(const AF_FN(af_gemm_proj) *pj, const T *xt, size_t q0, size_t q1)
{
    for (size_t q = q0; q < q1; q++) {
        V c[KPR * KPV];
        const T *w;
        T *out;
        KFN(proj_at)(pj, q, &w, &out);
#pragma GCC unroll 8
        for (int i = 0; i < KPR * KPV; i++) c[i] = VZERO();
        for (size_t p = 0; p < pj->k; p++) KFN(proj_step)(c, xt + p * KPR, w + p * pj->ldw);
        KFN(proj_store)(c, out, pj->ldp);
    }
}

/* One row of a gemv_seg panel: s += x_p b_p over sg segments x cv vectors, segment g's row at
 * bg[g]; then each bg[g] moves to the next row. Pointers per segment rather than offsets from
 * one: the compiler kept each (segment, vector) offset in a register of its own and read 6 of
 * the 16 back from the stack every row, over a dozen with a projection pass beside them. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_seg_row)(const int sg, const int cv, V *s, V xp, const T **bg, size_t ldb)
{
#pragma GCC unroll 4
    for (int g = 0; g < sg; g++) {
#pragma GCC unroll 16
        for (int v = 0; v < cv; v++) s[g * cv + v] = VFMA(xp, VLOADU(bg[g] + v * KVN), s[g * cv + v]);
        bg[g] += ldb;
    }
}

/* One panel of gemv_seg: sg segments x cv vectors of each (sg cv <= KGV, constants after
 * inlining), the vectors of segment s starting at b + s seg. Per column the chain of gemv_panel:
 * sum = fma(x_{k-1}, b_{k-1,j}, ... fma(x_0, b_0j, 0)), stored as it is (gemv_panel's alpha 1
 * times it and beta 0 leave it unchanged); cont: from y's value instead of 0. With passes
 * [q0, q1) of pj (none when q0 == q1; xt: proj_xt's) between its rows: a pass step after each
 * row while both last, then the rest of either alone. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_seg_panel)(const int sg, const int cv, size_t k, const T *restrict x, const T *restrict b,
                    size_t ldb, size_t seg, T *restrict y, size_t ldy, int cont,
                    const AF_FN(af_gemm_proj) *pj, const T *xt, size_t q0, size_t q1)
{
    V s[KGV];
    const T *bg[4];
#pragma GCC unroll 4
    for (int g = 0; g < sg; g++) {
        bg[g] = b + g * seg;
#pragma GCC unroll 16
        for (int v = 0; v < cv; v++) s[g * cv + v] = cont ? VLOADU(y + g * ldy + v * KVN) : VZERO();
    }
    const size_t pf = KFN(gemv_pf)(ldb);
    size_t p = 0;
    for (size_t q = q0; q < q1; q++) {
        V c[KPR * KPV];
        const T *w, *xs = xt;
        T *out;
        const size_t F = pj->k, ldw = pj->ldw, n = F < k - p ? F : k - p; /* n steps beside rows */
        KFN(proj_at)(pj, q, &w, &out);
#pragma GCC unroll 8
        for (int i = 0; i < KPR * KPV; i++) c[i] = VZERO();
        for (size_t i = 0; i < n; i++, p++, xs += KPR, w += ldw) {
            if (pf && p + pf < k)
#pragma GCC unroll 4
                for (int g = 0; g < sg; g++) KFN(gemv_prefetch)(bg[g] + pf * ldb, (size_t)cv * KVN * sizeof(T));
            KFN(gemv_seg_row)(sg, cv, s, VBCAST(x + p), bg, ldb);
            KFN(proj_step)(c, xs, w);
        }
        for (size_t i = n; i < F; i++, xs += KPR, w += ldw) KFN(proj_step)(c, xs, w);
        KFN(proj_store)(c, out, pj->ldp);
    }
    for (; p < k; p++) {
        if (pf && p + pf < k)
#pragma GCC unroll 4
            for (int g = 0; g < sg; g++) KFN(gemv_prefetch)(bg[g] + pf * ldb, (size_t)cv * KVN * sizeof(T));
        KFN(gemv_seg_row)(sg, cv, s, VBCAST(x + p), bg, ldb);
    }
#pragma GCC unroll 4
    for (int g = 0; g < sg; g++)
#pragma GCC unroll 16
        for (int v = 0; v < cv; v++) VSTOREU(y + g * ldy + v * KVN, s[g * cv + v]);
}

/* One panel of a gemv_seg_group: the next of np panels, which makes its share of pj's passes. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_seg_panel_at)(const int sg, const int cv, size_t k, const T *x, const T *b, size_t ldb, size_t seg,
                       T *y, size_t ldy, int cont, const AF_FN(af_gemm_proj) *pj, const T *xt, size_t *pi,
                       size_t np)
{
    size_t q0 = 0, q1 = 0;
    if (pj) {
        const size_t n = pj->pass1 - pj->pass0;
        q0 = pj->pass0 + n * *pi / np, q1 = pj->pass0 + n * (*pi + 1) / np;
        ++*pi;
    }
    KFN(gemv_seg_panel)(sg, cv, k, x, b, ldb, seg, y, ldy, cont, pj, xt, q0, q1);
}

/* The nv full vectors of sg segments (sg constant after inlining): panels of KGV / sg vectors of
 * each segment, then the rest in panels of 8, 4, 2, 1 (fewer than KGV / sg are left). */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(gemv_seg_group)(const int sg, size_t k, size_t nv, const T *x, const T *b, size_t ldb, size_t seg,
                    T *y, size_t ldy, int cont, const AF_FN(af_gemm_proj) *pj, const T *xt, size_t *pi,
                    size_t np)
{
    const int cm = KGV / sg;
    size_t v = 0;
    for (; v + (size_t)cm <= nv; v += (size_t)cm)
        KFN(gemv_seg_panel_at)(sg, cm, k, x, b + v * KVN, ldb, seg, y + v * KVN, ldy, cont, pj, xt, pi, np);
#pragma GCC unroll 4
    for (int c = 8; c >= 1; c /= 2)
        if (c < cm && v + (size_t)c <= nv) {
            KFN(gemv_seg_panel_at)(sg, c, k, x, b + v * KVN, ldb, seg, y + v * KVN, ldy, cont, pj, xt, pi, np);
            v += (size_t)c;
        }
}

/* The panels gemv_seg_group makes for nv vectors of sg segments. */
static inline size_t KFN(gemv_seg_panels)(size_t sg, size_t nv)
{
    const size_t cm = KGV / sg;
    size_t n = nv / cm, v = n * cm;
    for (size_t c = 8; c >= 1; c /= 2)
        if (c < cm && v + c <= nv) n++, v += c;
    return n;
}

/* gemv_seg (gemm_kern.h): segments in groups of up to 4 (the gates of a cell), the full vectors
 * of each by panels, then the last w % KVN columns of each segment as one zero-padded vector (as
 * gemv_rows's tail). Which panel or lane a column falls in never changes its chain. pj's passes
 * are shared out evenly among the panels. */
static AF_KATTR void KFN(gemv_seg)(size_t k, size_t nseg, size_t seg, size_t w, const T *restrict x,
                                   const T *restrict b, size_t ldb, T *restrict y, size_t ldy, int cont,
                                   const AF_FN(af_gemm_proj) *pj)
{
    T xt[KKC * KPR] __attribute__((aligned(64)));
    if (pj && pj->pass0 >= pj->pass1) pj = NULL;
    if (pj) KFN(proj_xt)(pj, xt); /* once for every panel */
    if (k == 0 && pj) {
        KFN(proj_passes)(pj, xt, pj->pass0, pj->pass1);
        return;
    }
    const size_t nv = w / KVN, j = nv * KVN;
    /* As many whole segments per group as a panel holds (1 to 4), so that each pass over B's
     * rows reads whole runs of the segments' rows: an LSTM's 64-unit block on avx2 (8 vectors a
     * gate) one gate a pass, not 4 gates x 2 vectors; avx512 (4 vectors a gate) still takes all 4
     * gates in one pass. The block's product (128 x 4 x 64): avx2 float 1.7 -> 1.1 us, double 3.5
     * -> 2.5 us, generic float 3.6 -> 1.9 us; batch-1 LSTM predict on 2 threads with avx2
     * 104 -> 72 us. */
    const size_t fit = nv ? KGV / nv : 4, gmax = fit < 1 ? 1 : fit > 4 ? 4 : fit;
    size_t np = 0, pi = 0; /* panels in all, and made so far (pj's passes spread over them) */
    for (size_t s0 = 0; s0 < nseg && pj; s0 += gmax)
        np += KFN(gemv_seg_panels)(nseg - s0 < gmax ? nseg - s0 : gmax, nv);
    if (np == 0 && pj) { /* no whole vector (pj's segments never are so narrow) */
        KFN(proj_passes)(pj, xt, pj->pass0, pj->pass1);
        pj = NULL;
    }
    for (size_t s0 = 0; s0 < nseg;) {
        size_t sg = nseg - s0 < gmax ? nseg - s0 : gmax;
        const T *bs = b + s0 * seg;
        T *ys = y + s0 * ldy;
        if (sg == 4) KFN(gemv_seg_group)(4, k, nv, x, bs, ldb, seg, ys, ldy, cont, pj, xt, &pi, np);
        else if (sg == 3) KFN(gemv_seg_group)(3, k, nv, x, bs, ldb, seg, ys, ldy, cont, pj, xt, &pi, np);
        else if (sg == 2) KFN(gemv_seg_group)(2, k, nv, x, bs, ldb, seg, ys, ldy, cont, pj, xt, &pi, np);
        else KFN(gemv_seg_group)(1, k, nv, x, bs, ldb, seg, ys, ldy, cont, pj, xt, &pi, np);
        s0 += sg;
    }
    for (size_t s = 0; s < nseg && j < w; s++) {
        T row[KVN] __attribute__((aligned(64))), acc[KVN] __attribute__((aligned(64)));
        const T *bs = b + s * seg + j;
        for (size_t l = 0; l < KVN; l++) row[l] = cont && l < w - j ? y[s * ldy + j + l] : (T)0;
        V sum = VLOADU(row);       /* the chains' start: zeros, or y's values (padding zero) */
        for (size_t l = 0; l < KVN; l++) row[l] = 0;
        for (size_t q = 0; q < k; q++) {
            for (size_t l = 0; l < w - j; l++) row[l] = bs[q * ldb + l];
            sum = VFMA(VBCAST(x + q), VLOADU(row), sum);
        }
        VSTOREU(acc, sum);
        for (size_t l = 0; l < w - j; l++) y[s * ldy + j + l] = acc[l];
    }
}

/* Dot products of x with `rows` contiguous rows of B: out[r] = sum_p x[p] B[r, p] over p < k.
 * Each row keeps two vector partial sums (even and odd KVN-chunks of p, so two FMA chains per row
 * are in flight), whose lanes are then added in a fixed order, then the scalar tail. The order
 * depends on k alone, so a row gives the same bits in a group of 4 or alone. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(dot_rows_body)(const int rows, size_t k, const T *restrict x, const T *restrict b, size_t ldb,
                   T *restrict out)
{
    V s0[4], s1[4];
    const size_t k2 = k / (2 * KVN) * (2 * KVN);
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++) s0[r] = s1[r] = VZERO();
    for (size_t p = 0; p < k2; p += 2 * KVN) {
        V x0 = VLOADU(x + p), x1 = VLOADU(x + p + KVN);
#pragma GCC unroll 4
        for (int r = 0; r < rows; r++) {
            s0[r] = VFMA(x0, VLOADU(b + r * ldb + p), s0[r]);
            s1[r] = VFMA(x1, VLOADU(b + r * ldb + p + KVN), s1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        T l0[KVN] __attribute__((aligned(64))), l1[KVN] __attribute__((aligned(64))), sum = 0;
        VSTOREU(l0, s0[r]);
        VSTOREU(l1, s1[r]);
        for (int l = 0; l < KVN; l++) sum += l0[l] + l1[l];
        for (size_t p = k2; p < k; p++) sum += x[p] * b[r * ldb + p];
        out[r] = sum;
    }
}

/* y[j] = alpha * sum_p x[p] B[j, p] + beta * y[j] for j in [j0, j1): one row of C = x @ B^T, read
 * as dot products of x with the contiguous rows of B (B^T is never packed; batch-1 input
 * gradients dx = dz W^T). Rows go in groups of 4 (x loaded once per group); each y[j] is
 * computed the same way whatever j0, j1 (thread split). beta == 0 never reads y. */
static AF_KATTR void KFN(gemv_t)(size_t k, size_t j0, size_t j1, T alpha, const T *restrict x,
                                 const T *restrict b, size_t ldb, T beta, T *restrict y)
{
    T d[4];
    for (size_t j = j0; j < j1;) {
        int rows = j1 - j >= 4 ? 4 : 1;
        if (rows == 4)
            KFN(dot_rows_body)(4, k, x, b + j * ldb, ldb, d);
        else
            KFN(dot_rows_body)(1, k, x, b + j * ldb, ldb, d);
        for (int r = 0; r < rows; r++, j++) y[j] = beta == 0 ? alpha * d[r] : alpha * d[r] + beta * y[j];
    }
}

/* Pack MR-row panels [q0, q1) of op(A)[0:mc, 0:kc] (op(A)[i, p] = ta ? a[p*lda+i] : a[i*lda+p])
 * into Ap[q][p][r], zero-padding rows past mc so the kernel never branches on edges. */
static AF_KATTR void KFN(gemm_pack_a)(int ta, size_t mc, size_t kc, const T *restrict a, size_t lda,
                                      T *restrict ap, size_t q0, size_t q1)
{
    for (size_t q = q0; q < q1; q++) {
        size_t i0 = q * KMR, mr = KMIN((size_t)KMR, mc - i0);
        T *dst = ap + q * KMR * kc;
        if (!ta) {
            const T *src = a + i0 * lda;
            if (mr == KMR) {
                /* Transpose KMR rows into column-interleaved order, KVN columns at a time in
                 * registers where the ISA has a hook, else (and for the rest) 4 at a time. */
                size_t p = 0;
#ifdef KPACKA
                for (; p + KVN <= kc; p += KVN) KPACKA(dst + p * KMR, src + p, lda);
                /* The last kc % KVN columns: one more block ending at column kc (it rewrites a
                 * few columns with the same values; never reads past kc). */
                if (p < kc && kc >= KVN) {
                    KPACKA(dst + (kc - KVN) * KMR, src + kc - KVN, lda);
                    p = kc;
                }
#endif
                for (; p + 4 <= kc; p += 4)
#pragma GCC unroll 32
                    for (int r = 0; r < KMR; r++) {
                        const T *s = src + r * lda + p;
                        dst[(p + 0) * KMR + r] = s[0];
                        dst[(p + 1) * KMR + r] = s[1];
                        dst[(p + 2) * KMR + r] = s[2];
                        dst[(p + 3) * KMR + r] = s[3];
                    }
                for (; p < kc; p++)
#pragma GCC unroll 32
                    for (int r = 0; r < KMR; r++) dst[p * KMR + r] = src[r * lda + p];
            } else {
                for (size_t p = 0; p < kc; p++)
                    for (size_t r = 0; r < KMR; r++) dst[p * KMR + r] = r < mr ? src[r * lda + p] : (T)0;
            }
        } else {
            /* op(A) = A^T: the panel's column p is a contiguous run of row p of A, one copy of
             * fixed size (vector moves; the element loop it replaced compiled to scalar ones: a
             * weight gradient X^T dZ, 784 x 128 @ 128 x 512 float on 2 threads, 338 -> 317 us).
             * Walking A row by row across the panels instead was slower (348 us). */
            const T *src = a + i0;
            if (mr == KMR) {
                for (size_t p = 0; p < kc; p++) memcpy(dst + p * KMR, src + p * lda, KMR * sizeof(T));
            } else {
                for (size_t p = 0; p < kc; p++)
                    for (size_t r = 0; r < KMR; r++) dst[p * KMR + r] = r < mr ? src[p * lda + r] : (T)0;
            }
        }
    }
}

/* Pack NR-column panels [q0, q1) of op(B)[0:kc, 0:nc] (op(B)[p, j] = tb ? b[j*ldb+p] :
 * b[p*ldb+j]) into Bp[q][p][j], zero-padding columns past nc. */
static AF_KATTR void KFN(gemm_pack_b)(int tb, size_t kc, size_t nc, const T *restrict b, size_t ldb,
                                      T *restrict bp, size_t q0, size_t q1)
{
    size_t qfull = nc / KNR < q1 ? nc / KNR : q1; /* panels [q0, qfull) are full */
    if (!tb) {
        /* Walk B row by row (sequential reads, no page-stride jumps) scattering NR-wide pieces
         * into the panels. */
        for (size_t p = 0; p < kc; p++) {
            const T *src = b + p * ldb;
            for (size_t q = q0; q < qfull; q++)
#pragma GCC unroll 8
                for (int v = 0; v < KNV; v++)
                    VSTOREU(bp + q * KNR * kc + p * KNR + v * KVN, VLOADU(src + q * KNR + v * KVN));
        }
    }
    for (size_t q = tb ? q0 : (qfull > q0 ? qfull : q0); q < q1; q++) {
        size_t j0 = q * KNR, nr = KMIN((size_t)KNR, nc - j0);
        T *dst = bp + q * KNR * kc;
        if (!tb) {
            const T *src = b + j0;
            for (size_t p = 0; p < kc; p++)
                for (size_t j = 0; j < KNR; j++) dst[p * KNR + j] = j < nr ? src[p * ldb + j] : (T)0;
        } else {
            /* op(B) = B^T: row j of B holds column j of op(B); copy it down column j of the panel. */
            const T *src = b + j0 * ldb;
            size_t j = 0;
#ifdef KTRANSPOSE
            /* Whole groups of KVN rows of B (all of a full panel): KVN x KVN register transposes
             * (rows of B -> rows of the panel). The last kc % KVN columns: one more block ending
             * at column kc, rewriting a few panel rows with the same values (reads stay < kc).
             * The other rows (and all when kc < KVN) go one by one below. */
            size_t jv = nr / KVN * KVN;
            if (jv && kc >= KVN) {
                for (size_t p = 0; p < kc; p += KVN) {
                    size_t pp = p + KVN <= kc ? p : kc - KVN;
                    for (size_t v = 0; v < jv; v += KVN)
                        KTRANSPOSE(dst + pp * KNR + v, KNR, src + v * ldb + pp, ldb);
                }
                j = jv;
            }
#endif
            for (; j < nr; j++) {
                const T *s = src + j * ldb;
                for (size_t p = 0; p < kc; p++) dst[p * KNR + j] = s[p];
            }
            for (; j < KNR; j++)
                for (size_t p = 0; p < kc; p++) dst[p * KNR + j] = 0;
        }
    }
}

/* Direct (unpacked) C = alpha op(A) op(B) + beta C for small shapes, where packing would cost
 * more than the product. Works on strips of up to 4 rows x KDB columns of C held in a local
 * accumulator. Not B^T: rank-1 updates acc[r, :] += op(A)[i, p] * B[p, :] along contiguous rows
 * of B; B^T: dot products of op(A)'s row with B's row, summed in 8 interleaved partial sums
 * combined in a fixed order. */
#define KDB 64
/* The direct loop's multiply-adds written as the vector kernels make them: fused where the ISA
 * has FMA (KFUSED), so a product gives the same bits on this path as on the packed one whatever
 * the compiler contracts (at -O3 it fused a * b + c itself; the -O1 sanitizer build did not, and
 * batch-1 rows of a layer differed from the same rows in a batch by an ulp). */
#if defined(KFUSED) && defined(AF_DTYPE_F32)
#define KSFMA(a, b, c) __builtin_fmaf(a, b, c)
#elif defined(KFUSED)
#define KSFMA(a, b, c) __builtin_fma(a, b, c)
#else
#define KSFMA(a, b, c) ((a) * (b) + (c))
#endif
static AF_KATTR void KFN(gemm_direct)(int ta, int tb, size_t m, size_t n, size_t k, T alpha,
                                      const T *restrict a, size_t lda, const T *restrict b,
                                      size_t ldb, T beta, T *restrict c, size_t ldc)
{
    const size_t sa_i = ta ? 1 : lda, sa_p = ta ? lda : 1; /* op(A)[i, p] = a[i*sa_i + p*sa_p] */
    T acc[4][KDB] __attribute__((aligned(64)));
    for (size_t i0 = 0; i0 < m; i0 += 4) {
        size_t mb = KMIN((size_t)4, m - i0);
        for (size_t j0 = 0; j0 < n; j0 += KDB) {
            size_t nb = KMIN((size_t)KDB, n - j0);
            if (!tb) {
                for (size_t r = 0; r < mb; r++)
                    for (size_t j = 0; j < nb; j++) acc[r][j] = 0;
                for (size_t p = 0; p < k; p++) {
                    const T *brow = b + p * ldb + j0;
                    for (size_t r = 0; r < mb; r++) {
                        T av = a[(i0 + r) * sa_i + p * sa_p];
                        T *ar = acc[r];
                        for (size_t j = 0; j < nb; j++) ar[j] = KSFMA(av, brow[j], ar[j]);
                    }
                }
            } else {
                for (size_t r = 0; r < mb; r++) {
                    const T *arow = a + (i0 + r) * sa_i;
                    for (size_t j = 0; j < nb; j++) {
                        const T *bj = b + (j0 + j) * ldb;
                        T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                        size_t p = 0;
                        if (sa_p == 1)
                            for (; p + 8 <= k; p += 8)
                                for (int l = 0; l < 8; l++) s[l] = KSFMA(arow[p + l], bj[p + l], s[l]);
                        for (; p < k; p++) s[0] = KSFMA(arow[p * sa_p], bj[p], s[0]);
                        acc[r][j] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
                    }
                }
            }
            for (size_t r = 0; r < mb; r++) {
                T *cr = c + (i0 + r) * ldc + j0;
                const T *ar = acc[r];
                if (beta == 0)
                    for (size_t j = 0; j < nb; j++) cr[j] = alpha * ar[j];
                else
                    for (size_t j = 0; j < nb; j++) cr[j] = KSFMA(beta, cr[j], alpha * ar[j]);
            }
        }
    }
}

#include "gemm_skinny_impl.h"

const AF_FN(af_gemm_kinfo) KFN(af_gemm) = {
    KMR, KNR, KMC, KKC, KNC, KVN, KFN(rowk_nv), KFN(rowk_dot),
    KFN(gemm_kernel), KFN(gemm_pack_a), KFN(gemm_pack_b), KFN(gemm_direct), KFN(gemv_rows),
    KFN(gemv_t), KFN(gemm_rowk), KFN(gemm_colk), KFN(gemm_kernel_rows), KFN(gemv_seg),
    KFN(gemv_multi), KPROJ ? KPV * KVN : 0
};

#undef KDB
#undef KSFMA
#undef KFUSED
#undef KCHK_FOLD
#undef VADD
#undef VRELU
#undef VLOADN
#undef VSTOREN
#undef KTRANSPOSE
#undef KPACKA
#undef KFN
#undef KNR
#undef KMIN
#undef KGV
#undef KPR
#undef KPV
#undef KPROJ
#undef KGVPF
#undef KGS
#undef KGSW
#undef KMR
#undef KNV
#undef KVN
#undef KMC
#undef KKC
#undef KNC
#undef V
#undef VZERO
#undef VSET1
#undef VBCAST
#undef VLOADU
#undef VSTOREU
#undef VMUL
#undef VFMA
#include "dtype_end.h"
