/* gemm_skinny_impl.h: kernels for skinny products (n small, 1 .. ~32 columns of C), for ONE
 * (ISA, dtype) pair. Included by gemm_kern_impl.h, which supplies T, KFN, KVN, KMR and the V*
 * vector operations; the ISA file may add
 *   KROWS1                          rows per tile of the one-vector row kernel (default 2 KMR)
 *   KROWS3                          rows per tile of a three-vector row kernel (default: none,
 *                                   two vectors at most; AVX-512's 32 registers take 8 rows)
 *   KCOLNB                          columns per tile of the column kernel (default 6)
 *   VLOADN(p, cnt) / VSTOREN(p, v, cnt)   the first cnt <= KVN lanes only (default: via a buffer)
 *   VH, VHZERO(), VHBCAST(p), VHFMA(a, b, c), VHLOW(v) (lanes 0..KVN/2-1 of a V), VHWIDEN(h) (a V,
 *   upper lanes zero)               a half-width vector (KVN / 2 lanes) for the row kernel's last
 *                                   vector when n leaves half a vector or more unused: a CPU
 *                                   that splits a full-width FMA in two (AMD Zen 4 on AVX-512)
 *                                   then runs e.g. n = 10 doubles as 8 + 4 lanes, 3 halves per
 *                                   row and step instead of 4. Same lanes, same operations, so
 *                                   the same bits as with full vectors.
 *
 * The packed kernel computes MR x NR tiles; with n < NR most lanes of its B vectors are padding
 * (n = 10 uses 10 of 32 float lanes on AVX-512), and packing A costs as much as the product. Two
 * kernels here avoid both, each reading the long operand A in place, once:
 *
 *   row kernel (any op(A)): vectors run along n. C[i, 0:n] for a tile of rows is held in one, two
 *     or (KROWS3) three vectors per row; step p broadcasts op(A)[i, p] for every row of the tile
 *     and multiplies one zero-padded row of a packed copy of op(B) (k x W, W = KVN, 2 KVN or
 *     3 KVN, tiny; read in place where the ISA masks loads). n <= 2 KVN, or 3 KVN with KROWS3.
 *     The last few columns past whole vectors (at most a quarter vector, AF_GEMM_ROWK_TAIL: n = 1-2,
 *     9-10 or 17-18 doubles, 1-4, 17-20 or 33-36 floats on AVX-512) are dot columns instead: dot
 *     products along k of the tile's rows with those columns of op(B), packed as rows (bt), every
 *     lane useful (float n = 1-4: 1.3-2.4x; double n = 10: +13%, Zen 4).
 *   column kernel (op(A) = A^T, so a column of op(A) is a contiguous run of a row of A): vectors run
 *     along m. Step p loads 2 KVN consecutive rows of column p and broadcasts op(B)[p, j] for the
 *     nb columns of the tile, so every lane does useful work whatever n is. Used for the weight
 *     gradients of narrow layers, dW = X^T dZ with dZ of a few columns.
 *
 * Arithmetic per element, in both: acc = 0; for p in order: acc = fma(a_ip, b_pj, acc) (the ISA's
 * VFMA), then C = alpha acc (+ beta C, as VFMA(beta, C, alpha acc)): the same operations as the
 * packed kernel on a single K block. A dot column instead sums KVN such chains (p = l mod KVN,
 * lane l) and adds their results pairwise in a fixed order (rowk_lanes_sum), then the same
 * epilogue: its bits are those of the column alone (n = 1), not those of the vector columns.
 * No K blocking (each tile runs over all of k with its accumulators in registers), and an
 * element's operations depend neither on the tile it falls in nor on the thread computing it, so
 * any split of the rows gives identical bits.
 *
 * Tried and not kept (Zen 4, AVX-512, 1 thread): for op(A) = A, transposing each tile of 2 KVN
 * rows into a k x 2 KVN panel (KTRANSPOSE blocks) and running the column kernel on it. Every
 * lane is then useful, but the transposes cost about as much as the lanes saved: float n = 1-3
 * 1.25-1.7x faster than the row kernel with half vectors, n = 4 about even, n >= 6 and every
 * double n slower (n = 8: 0.6-0.8x). */

#ifndef KROWS1
#define KROWS1 (2 * KMR)
#endif
#ifndef KCOLNB
#define KCOLNB 6
#endif
/* Vectors per row of the row kernel (its widest n: KROWNV KVN); 3 needs KROWS3, the rows of a
 * 3-vector tile (3 KROWS3 accumulators must fit the registers with the B vectors) */
#ifdef KROWS3
#define KROWNV 3
#else
#define KROWNV 2
#define KROWS3 1
#endif
enum { KFN(rowk_nv) = KROWNV }; /* for the kernel table (af_gemm_kinfo.rowk_nv) */
/* Dot columns of the row kernel (rowk_body): at most KDOT (a quarter vector: fewer lanes of a
 * vector along n would be useful than along k), after whole vectors, in tiles of at most KDOTACC
 * accumulators. Not after a half vector: its own broadcast load per row and step already keeps
 * the load ports busy (Zen 4, half + dot columns: 0.7-1.05x the half and full vectors alone). */
#define KDOT (KVN / 4)
#ifndef KDOTACC
#define KDOTACC 10
#endif
enum { KFN(rowk_dot) = KDOT }; /* for the kernel table */
#define KMW (2 * KVN) /* rows per column-kernel tile */
_Static_assert(KCOLNB == 6 || KCOLNB == 12, "gemm_colk's switch covers 6 or 12 columns");
_Static_assert(KROWS1 <= 32 && KMR <= 32, "row kernel tiles");

#ifndef VLOADN
/* Portable partial load/store: the first cnt lanes, through an aligned buffer (others zero). */
#define KSKINNY_OWN_VLOADN 1
#define VLOADN(p, cnt) KFN(vloadn)((p), (cnt))
#define VSTOREN(p, v, cnt) KFN(vstoren)((p), (v), (cnt))
static inline __attribute__((always_inline)) AF_KATTR V KFN(vloadn)(const T *p, size_t cnt)
{
    T buf[KVN] __attribute__((aligned(64)));
    for (size_t l = 0; l < KVN; l++) buf[l] = l < cnt ? p[l] : (T)0;
    return VLOADU(buf);
}
static inline __attribute__((always_inline)) AF_KATTR void KFN(vstoren)(T *p, V v, size_t cnt)
{
    T buf[KVN] __attribute__((aligned(64)));
    VSTOREU(buf, v);
    for (size_t l = 0; l < cnt; l++) p[l] = buf[l];
}
#endif

/* The last B vector of a row-kernel step, cnt valid lanes: where the ISA masks loads natively,
 * loaded masked (zeros past cnt, as in a zero-padded packed copy, so the same bits), which lets
 * the row kernel read B in place; else (a packed, zero-padded B) a plain load. */
#ifdef KSKINNY_OWN_VLOADN
#define KLOADB(p, cnt) VLOADU(p)
#else
#define KLOADB(p, cnt) ((cnt) == KVN ? VLOADU(p) : VLOADN(p, cnt))
#endif

/* ---- row kernel ------------------------------------------------------------------------------
 * `rows` x (nv vectors) tile: C[r, 0:n] = alpha sum_p op(A)[r, p] Bp[p, :] + beta C[r, 0:n] with
 * op(A)[r, p] = a[r*rsa + p*csa] and Bp the packed k x (nv KVN) copy of op(B), zero past n. rows,
 * nv and half are constants after inlining (nv = ceil(n / KVN), 0..KROWNV; half: the last vector
 * is a VH of KVN / 2 lanes, where the ISA has one and n leaves its upper half unused).
 * dot (a constant, 0 or the accumulators per row): t <= dot more columns n..n+t-1, each a dot
 * product along k of a row of op(A) (csa = 1) with a row of bt (op(B)'s column, ldbt >= k
 * rounded up to KVN, zero past k and in rows t..dot-1): lane l of its vector accumulator sums
 * the p = l mod KVN in order from zero (the last KVN-chunk of a row read masked, zeros past k),
 * then the lanes are added pairwise in a fixed order (KHSUM). The vector part then runs KVN
 * steps per chunk, its arithmetic unchanged; half is 0 with dot columns. */
#ifdef VH
#define KVH (KVN / 2)
#define KHALF(half) (half)
#else
#define KHALF(half) 0
#endif
#define KROWMAX (KROWS1 > KMR ? KROWS1 : KMR)
#define KDOTMAX (KDOT > 0 ? KDOT : 1)

/* The sum of v's lanes: lane l + w added to lane l for w = KVN/2, ..., 1 (a fixed order; an ISA
 * may give KHSUM, the same additions in registers). */
static inline __attribute__((always_inline)) AF_KATTR T KFN(rowk_lanes_sum)(V v)
{
    T l[KVN] __attribute__((aligned(64)));
    VSTOREU(l, v);
#pragma GCC unroll 16
    for (int w = KVN / 2; w > 0; w /= 2)
#pragma GCC unroll 16
        for (int q = 0; q < w; q++) l[q] += l[q + w];
    return l[0];
}
#ifndef KHSUM
#define KHSUM(v) KFN(rowk_lanes_sum)(v)
#endif

/* One vector step p of the row kernel: B's row p (bq) against op(A)[r, p] (aq + r rsa). */
#ifdef VH
#define KROWK_HALF_STEP(aq, bq)                                                                    \
    VH bh = half ? VHLOW(KLOADB((bq) + (nv - 1) * KVN, last)) : VHZERO();
#define KROWK_HALF_FMA(aq, r)                                                                      \
    if (half) acch[r] = VHFMA(VHBCAST((aq) + (r) * rsa), bh, acch[r]);
#else
#define KROWK_HALF_STEP(aq, bq)
#define KROWK_HALF_FMA(aq, r)
#endif
#define KROWK_STEP(aq, bq)                                                                         \
    do {                                                                                           \
        V bv[KROWNV];                                                                              \
        _Pragma("GCC unroll 3") for (int v = 0; v < nf; v++) bv[v] =                               \
            v == nv - 1 ? KLOADB((bq) + v * KVN, last) : VLOADU((bq) + v * KVN);                   \
        /* a full-width load of the first `last` lanes (masked where the ISA has it) narrowed */   \
        KROWK_HALF_STEP(aq, bq)                                                                    \
        _Pragma("GCC unroll 32") for (int r = 0; r < rows; r++) {                                  \
            if (nf > 0) {                                                                          \
                V ar = VBCAST((aq) + r * rsa);                                                     \
                _Pragma("GCC unroll 3") for (int v = 0; v < nf; v++) acc[r][v] =                   \
                    VFMA(ar, bv[v], acc[r][v]);                                                    \
            }                                                                                      \
            /* its own broadcast load: a single full-width use then folds into its FMA */        \
            KROWK_HALF_FMA(aq, r)                                                                  \
        }                                                                                          \
    } while (0)

/* One KVN-chunk of the dot columns: op(A)'s rows from ac (cnt < KVN lanes in the last chunk, else
 * all), bt's from column p. All `dot` of them (bt's rows past t are zeros): no branch on t. */
#define KROWK_DOT_CHUNK(ac, p, cnt)                                                                \
    do {                                                                                           \
        V btv[KDOTMAX];                                                                            \
        _Pragma("GCC unroll 4") for (int j = 0; j < dot; j++) btv[j] = VLOADU(bt + j * ldbt + (p)); \
        _Pragma("GCC unroll 32") for (int r = 0; r < rows; r++) {                                  \
            V av = (cnt) == KVN ? VLOADU((ac) + r * rsa) : VLOADN((ac) + r * rsa, (cnt));          \
            _Pragma("GCC unroll 4") for (int j = 0; j < dot; j++) dacc[r][j] =                     \
                VFMA(av, btv[j], dacc[r][j]);                                                      \
        }                                                                                          \
    } while (0)

static inline __attribute__((always_inline)) AF_KATTR void
KFN(rowk_body)(const int rows, const int nv, const int half_, const int dot, size_t k, const T *restrict a,
               size_t rsa, size_t csa, const T *restrict bp, size_t ldbp, const T *restrict bt, size_t ldbt,
               size_t t, T alpha, T beta, T *restrict c, size_t ldc, size_t n, const AF_FN(af_gemm_kout) *out)
{
    const int half = KHALF(half_), nf = nv - half; /* full-width vectors */
    const T *bias = out ? out->bias : NULL;
    const int relu = out && out->relu;
    int *bad = out ? out->bad : NULL;
    V acc[KROWMAX][KROWNV + 1];
    V dacc[KROWMAX][KDOTMAX];
#ifdef VH
    VH acch[KROWMAX];
#endif
#pragma GCC unroll 32
    for (int r = 0; r < rows; r++) {
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[r][v] = VZERO();
#ifdef VH
        acch[r] = VHZERO();
#endif
#pragma GCC unroll 4
        for (int j = 0; j < dot; j++) dacc[r][j] = VZERO();
    }
    size_t last = nv ? n - (size_t)(nv - 1) * KVN : KVN; /* valid lanes of the last vector, 1..KVN */
    size_t p = 0;
    if (dot) { /* csa = 1: the chunk's steps and its dot read op(A) at the same a */
        for (; p + KVN <= k; p += KVN) {
            if (nv > 0)
#pragma GCC unroll 2
                for (int q = 0; q < KVN; q++) {
                    KROWK_STEP(a + q, bp);
                    bp += ldbp;
                }
            KROWK_DOT_CHUNK(a, p, KVN);
            a += KVN;
        }
        if (p < k) KROWK_DOT_CHUNK(a, p, k - p);
    }
    if (nv > 0)
#pragma GCC unroll 2
        for (; p < k; p++) {
            KROWK_STEP(a, bp);
            a += csa;
            bp += ldbp;
        }
#ifdef VH
    /* the half vectors widened (upper lanes zero) from here on: stores and checks as before */
    if (half)
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++) acc[r][nv - 1] = VHWIDEN(acch[r]);
#endif
    /* the dot columns as one more vector of t lanes (zeros past t) */
    if (dot)
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++) {
            T d[KVN] __attribute__((aligned(64)));
            for (int l = 0; l < KVN; l++) d[l] = 0;
#pragma GCC unroll 4
            for (int j = 0; j < dot; j++)
                if ((size_t)j < t) d[j] = KHSUM(dacc[r][j]);
            acc[r][nv] = VLOADU(d);
        }
    const int nout = nv + (dot ? 1 : 0); /* vectors of C per row */
    V va = VSET1(alpha), vb = VSET1(beta);
    if (bad) { /* padding lanes are products with zeros: see KCHK_FOLD */
        V chk = VZERO();
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 4
            for (int v = 0; v < nout; v++) KCHK_FOLD(chk, VMUL(va, acc[r][v]));
        KFN(chk_report)(chk, bad);
    }
    /* each vector's columns (the dot vector's at n, a multiple of KVN) and bias, the last ones
     * maybe partial; zero lanes past them */
    V bb[KROWNV + 1];
    size_t lanes[KROWNV + 1], col[KROWNV + 1];
#pragma GCC unroll 4
    for (int v = 0; v < nout; v++) {
        lanes[v] = v < nv - 1 ? KVN : v == nv - 1 ? last : t;
        col[v] = v < nv ? (size_t)v * KVN : n;
        bb[v] = !bias ? VZERO() : lanes[v] == KVN ? VLOADU(bias + col[v]) : VLOADN(bias + col[v], lanes[v]);
    }
#pragma GCC unroll 32
    for (int r = 0; r < rows; r++) {
#pragma GCC unroll 4
        for (int v = 0; v < nout; v++) {
            T *cv = c + r * ldc + col[v];
            const int whole = lanes[v] == KVN;
            V x = VMUL(va, acc[r][v]);
            if (beta != 0) x = VFMA(vb, whole ? VLOADU(cv) : VLOADN(cv, lanes[v]), x);
            if (bias) x = VADD(x, bb[v]);
            if (relu) x = VRELU(x);
            if (whole)
                VSTOREU(cv, x);
            else
                VSTOREN(cv, x, lanes[v]);
        }
    }
}
#undef KROWK_STEP
#undef KROWK_HALF_STEP
#undef KROWK_HALF_FMA
#undef KROWK_DOT_CHUNK

/* Rows [0, m) of C (n <= KROWNV KVN columns) through the row kernel: full tiles of KROWS1 (one
 * vector), KMR (two) or KROWS3 (three) rows, then 8, 4, 2, 1-row tiles for the rest; the last
 * vector a half one where the ISA has them and n leaves it room. With bt (op(A) read along its
 * rows, csa = 1), the last rowk_tail(n) columns are dot columns (rowk_body), in tiles whose
 * accumulators fit the registers: KDOTACC of them. */
#define KROWK_TILE(R, NV, H, D)                                                                    \
    for (; i + (R) <= m; i += (R))                                                                 \
        KFN(rowk_body)((R), (NV), (H), (D), k, a + i * rsa, rsa, csa, bp, ldbp, (D) ? bt : NULL,     \
                       (D) ? ldbt : 0, (D) ? t : 0, alpha, beta, c + i * ldc, ldc, nm, out)
#define KROWK_TILES(NV, H)                                                                         \
    do {                                                                                           \
        const int full_ = (NV) == 1 ? KROWS1 : (NV) == 2 ? KMR : KROWS3;                           \
        KROWK_TILE(full_, NV, H, 0);                                                               \
        if (full_ > 8) KROWK_TILE(8, NV, H, 0);                                                    \
        if (full_ > 4) KROWK_TILE(4, NV, H, 0);                                                    \
        KROWK_TILE(2, NV, H, 0);                                                                   \
        KROWK_TILE(1, NV, H, 0);                                                                   \
    } while (0)
/* dot tiles never have a half vector */
#define KROWK_DOT_TILES(NV, D)                                                                     \
    do {                                                                                           \
        const int acc_ = (NV) + (D);                                                               \
        if (8 * acc_ <= KDOTACC) KROWK_TILE(8, NV, 0, D);                                          \
        if (4 * acc_ <= KDOTACC) KROWK_TILE(4, NV, 0, D);                                          \
        KROWK_TILE(2, NV, 0, D);                                                                   \
        KROWK_TILE(1, NV, 0, D);                                                                   \
    } while (0)
/* nm: 0, or one or two whole vectors (AF_GEMM_ROWK_TAIL) */
#define KROWK_DOT_ALL(D)                                                                           \
    do {                                                                                           \
        if (nv == 0) KROWK_DOT_TILES(0, D);                                                        \
        else if (nv == 1) KROWK_DOT_TILES(1, D);                                                   \
        else KROWK_DOT_TILES(2, D);                                                                \
    } while (0)

/* The row kernel with t > 0 dot columns after nm vector columns: apart from the vector-only
 * tiles (their registers are allocated as if alone: inlined together, the half-vector tiles'
 * row offsets were spilled, -15-30%). */
static __attribute__((noinline)) AF_KATTR void
KFN(gemm_rowk_dot)(size_t m, size_t nm, size_t t, size_t k, T alpha, const T *a, size_t rsa, size_t csa,
                   const T *bp, size_t ldbp, const T *bt, size_t ldbt, T beta, T *c, size_t ldc,
                   const AF_FN(af_gemm_kout) *out)
{
    size_t i = 0;
    const size_t nv = nm / KVN;
    /* KDOT dot columns, or half as many when t is at most that (bt's rows past t are zeros) */
#if KDOT >= 2
    if (t <= KDOT / 2) KROWK_DOT_ALL(KDOT / 2);
    else
#endif
        KROWK_DOT_ALL(KDOT);
}

static AF_KATTR void KFN(gemm_rowk)(size_t m, size_t n, size_t k, T alpha, const T *a, size_t rsa,
                                    size_t csa, const T *bp, size_t ldbp, const T *bt, size_t ldbt,
                                    T beta, T *c, size_t ldc, const AF_FN(af_gemm_kout) *out)
{
    const size_t t = bt && csa == 1 ? AF_GEMM_ROWK_TAIL_OF(n, (size_t)KDOT, (size_t)KVN) : 0;
    if (t > 0) {
        KFN(gemm_rowk_dot)(m, n - t, t, k, alpha, a, rsa, csa, bp, ldbp, bt, ldbt, beta, c, ldc, out);
        return;
    }
    size_t i = 0;
    const size_t nv = (n + KVN - 1) / KVN, nm = n;
#ifdef VH
    const int half = n - (nv - 1) * KVN <= KVH;
#else
    const int half = 0;
#endif
    if (nv == 1) {
        if (half) KROWK_TILES(1, 1);
        else KROWK_TILES(1, 0);
    } else if (nv == 2) {
        if (half) KROWK_TILES(2, 1);
        else KROWK_TILES(2, 0);
    }
#if KROWNV > 2
    else {
        if (half) KROWK_TILES(3, 1);
        else KROWK_TILES(3, 0);
    }
#endif
}
#undef KROWK_TILES
#undef KROWK_TILE
#undef KHALF
#undef KROWMAX
#ifdef VH
#undef KVH
#endif

/* ---- column kernel ---------------------------------------------------------------------------
 * (mv KVN) x nb tile: C[r, j] = alpha sum_p a[p*lda + r] bp[p*ldbp + j] + beta C[r, j] for
 * r0 <= r < mv KVN (rows below r0 were written by an overlapping tile), j < nb. The accumulators
 * hold the tile transposed (a vector per column of C and per KVN rows); they are scaled by alpha
 * in registers and written out row by row. Consecutive p are lda apart: rows of A read with a
 * large stride, which the hardware prefetchers follow poorly, so the kernel prefetches KPF rows
 * ahead. */
#define KPF 8
static inline __attribute__((always_inline)) AF_KATTR void
KFN(colk_body)(const int nb, const int mv, size_t k, const T *restrict a, size_t lda,
               const T *restrict bp, size_t ldbp, T alpha, T beta, T *restrict c, size_t ldc,
               size_t r0, const T *bias, const AF_FN(af_gemm_kout) *out)
{
    const int relu = out && out->relu;
    int *bad = out ? out->bad : NULL;
    V acc[KCOLNB][2];
#pragma GCC unroll 16
    for (int j = 0; j < nb; j++) acc[j][0] = acc[j][1] = VZERO();
#pragma GCC unroll 2
    for (size_t p = 0; p < k; p++) {
        __builtin_prefetch(a + KPF * lda, 0, 3);
        if (mv > 1) __builtin_prefetch(a + KPF * lda + KVN, 0, 3);
        V a0 = VLOADU(a), a1 = mv > 1 ? VLOADU(a + KVN) : VZERO();
#pragma GCC unroll 16
        for (int j = 0; j < nb; j++) {
            V bj = VBCAST(bp + j);
            acc[j][0] = VFMA(a0, bj, acc[j][0]);
            if (mv > 1) acc[j][1] = VFMA(a1, bj, acc[j][1]);
        }
        a += lda;
        bp += ldbp;
    }
    T tile[KCOLNB][KMW] __attribute__((aligned(64)));
    V va = VSET1(alpha);
    V chk = VZERO();
#pragma GCC unroll 16
    for (int j = 0; j < nb; j++) {
        V x0 = VMUL(va, acc[j][0]), x1 = VMUL(va, acc[j][1]);
        VSTOREU(tile[j], x0);
        if (mv > 1) VSTOREU(tile[j] + KVN, x1);
        if (bad) { /* see KCHK_FOLD; rows below r0 belong to another tile, no harm */
            KCHK_FOLD(chk, x0);
            if (mv > 1) KCHK_FOLD(chk, x1);
        }
    }
    if (bad) KFN(chk_report)(chk, bad);
    for (size_t r = r0; r < (size_t)(mv * KVN); r++) {
        T *cr = c + r * ldc;
        for (int j = 0; j < nb; j++) {
            T x = beta == 0 ? tile[j][r] : beta * cr[j] + tile[j][r];
            if (bias) x += bias[j];
            if (relu) x = x > 0 || x != x ? x : (T)0;
            cr[j] = x;
        }
    }
}
#undef KPF

/* Columns [0, n) of one tile of mv KVN rows (rows below r0 left alone); bp has row stride ldbp. */
static inline __attribute__((always_inline)) AF_KATTR void
KFN(colk_tile)(const int mv, size_t n, size_t k, T alpha, const T *a, size_t lda, const T *bp,
               size_t ldbp, T beta, T *c, size_t ldc, size_t r0, const AF_FN(af_gemm_kout) *out)
{
    const T *bias = out ? out->bias : NULL;
    for (size_t j = 0; j < n; j += KCOLNB) {
        size_t nb = n - j < KCOLNB ? n - j : KCOLNB;
        switch (nb) {
#define KCOLK_CASE(NB)                                                                             \
    case NB:                                                                                       \
        KFN(colk_body)(NB, mv, k, a, lda, bp + j, ldbp, alpha, beta, c + j, ldc, r0,               \
                       bias ? bias + j : NULL, out);                                               \
        break;
            KCOLK_CASE(1) KCOLK_CASE(2) KCOLK_CASE(3) KCOLK_CASE(4) KCOLK_CASE(5)
#if KCOLNB > 6
            KCOLK_CASE(6) KCOLK_CASE(7) KCOLK_CASE(8) KCOLK_CASE(9) KCOLK_CASE(10) KCOLK_CASE(11)
#endif
#undef KCOLK_CASE
        default:
            KFN(colk_body)(KCOLNB, mv, k, a, lda, bp + j, ldbp, alpha, beta, c + j, ldc, r0,
                           bias ? bias + j : NULL, out);
            break;
        }
    }
}

/* Rows [0, m) of C = op(A) Bp with op(A)[i, p] = a[p*lda + i] (A^T read in place), Bp = packed
 * k x n copy of op(B) (row stride n). Tiles of 2 KVN rows, then one of KVN; the last rows are
 * covered by a tile ending at row m that overlaps the previous one (recomputing a few rows with
 * the same operations, written once), so nothing is read past row m. Only when m < KVN does the
 * tile come from atail, a k x KVN copy of op(A) padded with zeros, computed into a scratch tile
 * of which the m valid rows are copied out. */
static AF_KATTR void KFN(gemm_colk)(size_t m, size_t n, size_t k, T alpha, const T *a, size_t lda,
                                    const T *atail, const T *bp, size_t ldbp, T beta, T *c,
                                    size_t ldc, const AF_FN(af_gemm_kout) *out)
{
    if (m < KVN) {
        T tile[KVN * KCOLNB] __attribute__((aligned(64)));
        for (size_t j = 0; j < n; j += KCOLNB) {
            size_t nb = n - j < KCOLNB ? n - j : KCOLNB;
            for (size_t r = 0; r < KVN; r++)
                for (size_t q = 0; q < nb; q++)
                    tile[r * KCOLNB + q] = beta == 0 || r >= m ? (T)0 : c[r * ldc + j + q];
            AF_FN(af_gemm_kout) o = {out && out->bias ? out->bias + j : NULL, out && out->relu,
                                     out ? out->bad : NULL};
            KFN(colk_tile)(1, nb, k, alpha, atail, KVN, bp + j, ldbp, beta, tile, KCOLNB, 0, &o);
            for (size_t r = 0; r < m; r++)
                for (size_t q = 0; q < nb; q++) c[r * ldc + j + q] = tile[r * KCOLNB + q];
        }
        return;
    }
    size_t i = 0;
    for (; i + KMW <= m; i += KMW)
        KFN(colk_tile)(2, n, k, alpha, a + i, lda, bp, ldbp, beta, c + i * ldc, ldc, 0, out);
    if (i + KVN <= m) {
        KFN(colk_tile)(1, n, k, alpha, a + i, lda, bp, ldbp, beta, c + i * ldc, ldc, 0, out);
        i += KVN;
    }
    if (i < m) /* fewer than KVN rows left, m >= KVN: a one-vector tile ending at row m */
        KFN(colk_tile)(1, n, k, alpha, a + m - KVN, lda, bp, ldbp, beta, c + (m - KVN) * ldc, ldc,
                       KVN - (m - i), out);
}

#undef KLOADB
#ifdef KSKINNY_OWN_VLOADN
#undef VLOADN
#undef VSTOREN
#undef KSKINNY_OWN_VLOADN
#endif
#ifdef VH
#undef VH
#undef VHZERO
#undef VHBCAST
#undef VHLOW
#undef VHFMA
#undef VHWIDEN
#endif
#undef KROWS1
#undef KROWS3
#undef KROWNV
#undef KDOT
#undef KDOTACC
#undef KDOTMAX
#undef KHSUM
#undef KCOLNB
#undef KMW
