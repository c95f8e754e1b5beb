/* tut_kern_impl.h: the tutorial network's whole epoch for small networks (rows.h: tut_ep), for
 * ONE ISA, float64 only; included by rows_kern_impl.h, which supplies RN, RN(vec) (VL lanes),
 * RN(vload) and RN(vstore).
 *
 * tutorial.c's epoch of a network as small as the tutorial's examples (8-16-3 on 64 rows: 25k
 * multiply-adds) is a chain of tiny products, each a call with its own set-up, and elementwise
 * passes between them. Here the rows are laid out as columns (xt: one row of X per column), so
 * every layer's values for VL rows at once are one vector: the forward pass, the deltas and the
 * weight gradients are loops of vector FMAs over the rows, with the biases and the sigmoid's
 * derivative fused in, and nothing leaves the cache. The formulas and their order are
 * tutorial.c's (see there); only the sums over rows take another order: each weight gradient
 * adds its rows in VL lanes, then the lanes pairwise in a fixed order (tut_lanes). */
#if defined(AF_DTYPE_F64)

/* the sum of v's lanes, halves added pairwise (a fixed order) */
static inline T RN(tut_lanes)(RN(vec) v)
{
#if AF_ROWS_VBYTES == 64
    typedef long long RN(lmask) __attribute__((vector_size(64)));
    v += __builtin_shuffle(v, (RN(lmask)){4, 5, 6, 7, 0, 1, 2, 3});
    v += __builtin_shuffle(v, (RN(lmask)){2, 3, 0, 1, 6, 7, 4, 5});
    return v[0] + v[1];
#elif AF_ROWS_VBYTES == 32
    typedef long long RN(lmask) __attribute__((vector_size(32)));
    v += __builtin_shuffle(v, (RN(lmask)){2, 3, 0, 1});
    return v[0] + v[1];
#else
    T s = v[0];
    for (size_t l = 1; l < VL; l++) s += v[l];
    return s;
#endif
}

/* y = s(y) = 1 / (1 + e^-y) over len values (a multiple of VL). e^-y as vexp.h computes it (the
 * same reduction and polynomial), except that 2^k is applied in one scaling: vexp.h splits it in
 * two so e^x stays exact where it is subnormal, but 1 + e^-y never is. NaN in gives NaN: max(lo,
 * x) and min(hi, t) return their second operand for NaN, which keeps it.
 * - AVX-512 scales with scalef: 0.81 -> 0.68 ns a value (1024 values, timed alone).
 * - AVX2 has no scalef: 2^k goes straight into the exponent field, one integer add and shift
 *   (vexp.h's two-step scaling cost a third more operations a value). That needs k in
 *   [-1023, 1023], so e^-y is clamped to [-709, 709] instead of [-746, 710]: beyond -709, 1 + e^-y
 *   is 1 either way (2^-1023 reads as 0); beyond 709 the sigmoid is below the smallest normal
 *   double, which annfast flushes to 0 either way (fpenv.h). So the bits are AVX-512's. 8-16-3 on
 *   64 rows with avx2: 2.85 -> 2.51 us an epoch. */
#if defined(AF_ROWS_AVX512)
#define TUT_VT __m512d
#define TUT_V(op) _mm512_##op
#define TUT_LO -746.0
#define TUT_HI 710.0
#elif defined(AF_ROWS_AVX2)
#define TUT_VT __m256d
#define TUT_V(op) _mm256_##op
#define TUT_LO -709.0
#define TUT_HI 709.0
#endif
static void RN(tut_sigmoid)(size_t len, T *y)
{
#if defined(TUT_VT)
    const TUT_VT log2e = TUT_V(set1_pd)(1.4426950408889634074), magic = TUT_V(set1_pd)(6755399441055744.0);
    const TUT_VT ln2_hi = TUT_V(set1_pd)(6.93147180369123816490e-01);
    const TUT_VT ln2_lo = TUT_V(set1_pd)(1.90821492927058770002e-10);
    const TUT_VT lo = TUT_V(set1_pd)(TUT_LO), hi = TUT_V(set1_pd)(TUT_HI), one = TUT_V(set1_pd)(1.0);
    for (size_t i = 0; i < len; i += sizeof(TUT_VT) / sizeof(T)) {
        TUT_VT x = TUT_V(sub_pd)(TUT_V(setzero_pd)(), TUT_V(loadu_pd)(y + i));
        TUT_VT t = TUT_V(min_pd)(hi, TUT_V(max_pd)(lo, x));
        TUT_VT kb = TUT_V(fmadd_pd)(t, log2e, magic); /* k + magic: k in the low bits */
        TUT_VT k = TUT_V(sub_pd)(kb, magic);
        TUT_VT r = TUT_V(sub_pd)(TUT_V(fnmadd_pd)(k, ln2_hi, t), TUT_V(mul_pd)(k, ln2_lo));
        TUT_VT p = TUT_V(set1_pd)(1.0 / 6227020800.0);
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 479001600.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 39916800.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 3628800.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 362880.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 40320.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 5040.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 720.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 120.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 24.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(1.0 / 6.0));
        p = TUT_V(fmadd_pd)(p, r, TUT_V(set1_pd)(0.5));
        p = TUT_V(fmadd_pd)(p, TUT_V(mul_pd)(r, r), r);
#if defined(AF_ROWS_AVX512)
        TUT_VT ex = _mm512_scalef_pd(_mm512_add_pd(one, p), k);
#else
        /* magic's low 12 bits are 0, so (bits(k + magic) + 1023) << 52 is 2^k */
        const __m256i bias = _mm256_set1_epi64x(1023);
        TUT_VT two_k = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_castpd_si256(kb), bias), 52));
        TUT_VT ex = _mm256_mul_pd(_mm256_add_pd(one, p), two_k);
#endif
        TUT_V(storeu_pd)(y + i, TUT_V(div_pd)(one, TUT_V(add_pd)(one, ex)));
    }
#else
    for (size_t i = 0; i < len; i++) y[i] = (T)1 / ((T)1 + VEXP_DEN(-y[i]));
#endif
}
#undef TUT_VT
#undef TUT_V
#undef TUT_LO
#undef TUT_HI

/* the column-laid values v (w x np) as rows of out (n x w) */
static void RN(tut_rows_out)(const T *v, size_t w, size_t n, size_t np, T *out)
{
    for (size_t c = 0; c < w; c++)
        for (size_t i = 0; i < n; i++) out[i * w + c] = v[c * np + i];
}

/* Register blocks: accumulators of a block of rows x outputs (tut_units) or of rows x columns
 * (tut_dots) must fit the register file with the loads beside them: AVX-512's 32 registers take
 * 4 x 4; the 16 of AVX2 (and SSE) 4 x 3 (4 x 4 spilled an accumulator in both loops, with a
 * store-to-load stall each iteration: 8-16-3 on 64 rows 3.27 -> 2.84 us an epoch with avx2). */
#if AF_ROWS_VBYTES == 64
#define TUT_RV 4
#define TUT_CB 4
#else
#define TUT_RV 3
#define TUT_CB 3
#endif

/* Outputs u0..u0+U (U a constant after inlining) of tut_layer: TUT_RV vectors of rows at a time
 * (U TUT_RV independent FMA chains), then the rows left a vector at a time. */
static inline __attribute__((always_inline)) void RN(tut_units)(const int U, size_t u0, size_t nin, size_t nw,
                                                                size_t np, const T *in, const T *w, const T *b,
                                                                T *z)
{
    size_t i = 0;
    for (; i + TUT_RV * VL <= np; i += TUT_RV * VL) {
        RN(vec) a[4][TUT_RV];
#pragma GCC unroll 4
        for (int q = 0; q < U; q++)
#pragma GCC unroll 4
            for (int v = 0; v < TUT_RV; v++) a[q][v] = (RN(vec)){0};
        for (size_t k = 0; k < nin; k++) {
            const T *r = in + k * np + i;
            RN(vec) x[TUT_RV];
#pragma GCC unroll 4
            for (int v = 0; v < TUT_RV; v++) x[v] = RN(vload)(r + v * VL);
#pragma GCC unroll 4
            for (int q = 0; q < U; q++) {
                const T wq = w[k * nw + u0 + q];
#pragma GCC unroll 4
                for (int v = 0; v < TUT_RV; v++) a[q][v] += wq * x[v];
            }
        }
#pragma GCC unroll 4
        for (int q = 0; q < U; q++)
#pragma GCC unroll 4
            for (int v = 0; v < TUT_RV; v++) RN(vstore)(z + (u0 + q) * np + i + v * VL, a[q][v] + b[u0 + q]);
    }
    for (; i < np; i += VL) {
        RN(vec) a[4];
        for (int q = 0; q < U; q++) a[q] = (RN(vec)){0};
        for (size_t k = 0; k < nin; k++) {
            RN(vec) x = RN(vload)(in + k * np + i);
#pragma GCC unroll 4
            for (int q = 0; q < U; q++) a[q] += w[k * nw + u0 + q] * x;
        }
#pragma GCC unroll 4
        for (int q = 0; q < U; q++) RN(vstore)(z + (u0 + q) * np + i, a[q] + b[u0 + q]);
    }
}

/* z[u] (np values) = b[u] + sum_k w[k][u] in[k] for u < nw outputs of nin inputs (w: nin x nw):
 * four outputs at a time, then the 1-3 left together (each value the same chain over k from 0) */
static void RN(tut_layer)(size_t nin, size_t nw, size_t np, const T *in, const T *w, const T *b, T *z)
{
    size_t u = 0;
    for (; u + 4 <= nw; u += 4) RN(tut_units)(4, u, nin, nw, np, in, w, b, z);
    switch (nw - u) {
    case 3: RN(tut_units)(3, u, nin, nw, np, in, w, b, z); break;
    case 2: RN(tut_units)(2, u, nin, nw, np, in, w, b, z); break;
    case 1: RN(tut_units)(1, u, nin, nw, np, in, w, b, z); break;
    default: break;
    }
}

/* The sums of tut_grad for rows r0..r0+R of a and columns c0..c0+C of d (constants after
 * inlining): R C independent FMA chains over the np columns, sharing their loads. */
static inline __attribute__((always_inline)) void RN(tut_dots)(const int R, const int C, size_t r0, size_t c0,
                                                               size_t np, const T *a, const T *d, T lr, T *v,
                                                               size_t vr, size_t vc)
{
    RN(vec) s[4][4];
    for (int q = 0; q < R; q++)
        for (int c = 0; c < C; c++) s[q][c] = (RN(vec)){0};
    for (size_t i = 0; i < np; i += VL) {
        RN(vec) x[4], y[4];
#pragma GCC unroll 4
        for (int q = 0; q < R; q++) x[q] = RN(vload)(a + (r0 + q) * np + i);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) y[c] = RN(vload)(d + (c0 + c) * np + i);
#pragma GCC unroll 4
        for (int q = 0; q < R; q++)
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) s[q][c] += x[q] * y[c];
    }
#pragma GCC unroll 4
    for (int q = 0; q < R; q++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) v[(r0 + q) * vr + (c0 + c) * vc] += RN(tut_lanes)(s[q][c]) * lr;
}

/* The columns c0..nd of rows r0..r0+R (R constant after inlining): TUT_CB at a time, then the rest. */
static inline __attribute__((always_inline)) void RN(tut_dot_rows)(const int R, size_t r0, size_t nd, size_t np,
                                                                   const T *a, const T *d, T lr, T *v, size_t vr,
                                                                   size_t vc)
{
    size_t c = 0;
    for (; c + TUT_CB <= nd; c += TUT_CB) RN(tut_dots)(R, TUT_CB, r0, c, np, a, d, lr, v, vr, vc);
    for (; c < nd; c++) RN(tut_dots)(R, 1, r0, c, np, a, d, lr, v, vr, vc);
}

/* v[r vr + c vc] += lr * (sum over the np columns of a[r] * d[c]) for r < na, c < nd: blocks of
 * up to four rows by four columns. */
static void RN(tut_grad)(size_t na, size_t nd, size_t np, const T *a, const T *d, T lr, T *v, size_t vr,
                         size_t vc)
{
    size_t r = 0;
    for (; r + 4 <= na; r += 4) RN(tut_dot_rows)(4, r, nd, np, a, d, lr, v, vr, vc);
    switch (na - r) {
    case 3: RN(tut_dot_rows)(3, r, nd, np, a, d, lr, v, vr, vc); break;
    case 2: RN(tut_dot_rows)(2, r, nd, np, a, d, lr, v, vr, vc); break;
    case 1: RN(tut_dot_rows)(1, r, nd, np, a, d, lr, v, vr, vc); break;
    default: break;
    }
}

/* v[r] += lr * (sum over the np columns of a[r]) for r < na (the bias gradients) */
static void RN(tut_bias_grad)(size_t na, size_t np, const T *a, T lr, T *v)
{
    for (size_t r = 0; r < na; r++) {
        RN(vec) s0 = {0};
        for (size_t i = 0; i < np; i += VL) s0 += RN(vload)(a + r * np + i);
        v[r] += RN(tut_lanes)(s0) * lr;
    }
}

static void RN(tut_ep)(const AF_FN(af_tut_ep) *e)
{
    const size_t n = e->n, np = e->np, ni = e->ni, nh = e->nh, no = e->no;
    T *ht = e->ht, *ot = e->ot, *dh = e->dh;
    /* forward: Ha = X W1 + b1, H = s(Ha), Oa = H W2 + b2, P = s(Oa) */
    RN(tut_layer)(ni, nh, np, e->xt, e->w1, e->b1, ht);
    if (e->ha) RN(tut_rows_out)(ht, nh, n, np, e->ha);
    RN(tut_sigmoid)(nh * np, ht);
    RN(tut_layer)(nh, no, np, ht, e->w2, e->b2, ot);
    if (e->oa) RN(tut_rows_out)(ot, no, n, np, e->oa);
    RN(tut_sigmoid)(no * np, ot);
    if (e->ho) RN(tut_rows_out)(ht, nh, n, np, e->ho);
    if (e->pred) RN(tut_rows_out)(ot, no, n, np, e->pred);
    /* dO = (Y - P) * P (1 - P), zero on the padding columns, in place of P */
    for (size_t j = 0; j < no; j++) {
        T *o = ot + j * np;
        const T *y = e->yt + j * np;
        for (size_t i = 0; i < n; i++) o[i] = (y[i] - o[i]) * (o[i] * ((T)1 - o[i]));
        for (size_t i = n; i < np; i++) o[i] = 0;
    }
    /* dH = (dO W2^T) * H (1 - H), W2 before its update: four vectors of rows per pass over the
     * outputs, each weight broadcast once for the four (8-16-3 on 64 rows: 3.94 -> 3.27 us an
     * epoch with avx2, 2.52 -> 2.46 with avx512); each value the same chain over j as before */
    for (size_t u = 0; u < nh; u++) {
        const T *w = e->w2 + u * no;
        size_t i = 0;
        for (; i + 4 * VL <= np; i += 4 * VL) {
            RN(vec) z0 = {0}, z1 = {0}, z2 = {0}, z3 = {0};
            for (size_t j = 0; j < no; j++) {
                const T *o = ot + j * np + i;
                z0 += w[j] * RN(vload)(o), z1 += w[j] * RN(vload)(o + VL);
                z2 += w[j] * RN(vload)(o + 2 * VL), z3 += w[j] * RN(vload)(o + 3 * VL);
            }
            const T *hu = ht + u * np + i;
            RN(vec) h0 = RN(vload)(hu), h1 = RN(vload)(hu + VL), h2 = RN(vload)(hu + 2 * VL), h3 = RN(vload)(hu + 3 * VL);
            T *d = dh + u * np + i;
            RN(vstore)(d, z0 * (h0 * ((T)1 - h0))), RN(vstore)(d + VL, z1 * (h1 * ((T)1 - h1)));
            RN(vstore)(d + 2 * VL, z2 * (h2 * ((T)1 - h2))), RN(vstore)(d + 3 * VL, z3 * (h3 * ((T)1 - h3)));
        }
        for (; i < np; i += VL) {
            RN(vec) z = {0};
            for (size_t j = 0; j < no; j++) z += w[j] * RN(vload)(ot + j * np + i);
            RN(vec) h = RN(vload)(ht + u * np + i);
            RN(vstore)(dh + u * np + i, z * (h * ((T)1 - h)));
        }
    }
    /* the tutorial's order: W2 += (H^T dO) lr, b2, W1 += (X^T dH) lr, b1 */
    RN(tut_grad)(no, nh, np, ot, ht, e->lr, e->w2, 1, no);   /* W2[u][j] += sum dO[j] H[u] */
    RN(tut_bias_grad)(no, np, ot, e->lr, e->b2);
    RN(tut_grad)(ni, nh, np, e->xt, dh, e->lr, e->w1, nh, 1);
    RN(tut_bias_grad)(nh, np, dh, e->lr, e->b1);
}
#define AF_TUT_EP RN(tut_ep)
#undef TUT_RV
#undef TUT_CB
#else
#define AF_TUT_EP NULL
#endif
