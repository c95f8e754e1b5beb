/* rows_kern_impl.h: the row kernels of rows.h for ONE (ISA, dtype) pair; included by
 * rows_generic.c / rows_avx2.c / rows_avx512.c, which set the compile target and AF_ROWS_ISA. */
#include "dtype_begin.h"
#define RN(name) AF_FN(AF_CAT(AF_CAT(name, _), AF_ROWS_ISA))
#define LANES AF_ROW_LANES

/* sum_j v[j] in lanes (see rows.h). */
static inline T RN(lane_total)(const T *lane)
{
    T s = 0;
    for (int q = 0; q < LANES; q++) s += lane[q];
    return s;
}

static void RN(ln_fwd)(size_t n, const T *x, const T *g, const T *b, T eps, T *y, T *stat)
{
    T lane[LANES] = {0};
    size_t j, q;
    for (j = 0; j + LANES <= n; j += LANES)
        for (q = 0; q < LANES; q++) lane[q] += x[j + q];
    for (q = 0; j + q < n; q++) lane[q] += x[j + q];
    T mean = RN(lane_total)(lane) / (T)n;
    for (q = 0; q < LANES; q++) lane[q] = 0;
    for (j = 0; j + LANES <= n; j += LANES)
        for (q = 0; q < LANES; q++) {
            T d = x[j + q] - mean;
            lane[q] += d * d;
        }
    for (q = 0; j + q < n; q++) {
        T d = x[j + q] - mean;
        lane[q] += d * d;
    }
    T rstd = (T)1 / SQRT(RN(lane_total)(lane) / (T)n + eps);
    stat[0] = mean;
    stat[1] = rstd;
    if (g && b) for (j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd * g[j] + b[j];
    else if (g) for (j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd * g[j];
    else if (b) for (j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd + b[j];
    else for (j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd;
}

static void RN(ln_bwd)(size_t n, const T *x, const T *dy, const T *g, const T *stat, T *dx, int acc)
{
    T mean = stat[0], rstd = stat[1];
    T la[LANES] = {0}, lc[LANES] = {0};
    size_t j, q;
    for (j = 0; j + LANES <= n; j += LANES)
        for (q = 0; q < LANES; q++) {
            T e = g ? dy[j + q] * g[j + q] : dy[j + q];
            la[q] += e;
            lc[q] += e * ((x[j + q] - mean) * rstd);
        }
    for (q = 0; j + q < n; q++) {
        T e = g ? dy[j + q] * g[j + q] : dy[j + q];
        la[q] += e;
        lc[q] += e * ((x[j + q] - mean) * rstd);
    }
    T a = RN(lane_total)(la) / (T)n, c = RN(lane_total)(lc) / (T)n;
    if (acc) {
        for (j = 0; j < n; j++) {
            T e = g ? dy[j] * g[j] : dy[j];
            dx[j] += rstd * (e - a - ((x[j] - mean) * rstd) * c);
        }
    } else {
        for (j = 0; j < n; j++) {
            T e = g ? dy[j] * g[j] : dy[j];
            dx[j] = rstd * (e - a - ((x[j] - mean) * rstd) * c);
        }
    }
}

/* allowed(j) as 0/1 */
#define ALLOWED(j) ((j) < lim && (!mask || mask[j] != 0))

static void RN(sm_fwd)(size_t n, T *s, const int32_t *mask, size_t lim, T *stat)
{
    T mx = -(T)INFINITY;
    size_t j, q;
    if (lim > n) lim = n;
    if (mask) {
        for (j = 0; j < lim; j++) mx = (mask[j] != 0 && s[j] > mx) ? s[j] : mx;
    } else {
        for (j = 0; j < lim; j++) mx = s[j] > mx ? s[j] : mx;
    }
    int any_nan = 0;
    for (j = 0; j < lim; j++) any_nan |= (s[j] != s[j]) && ALLOWED(j);
    if (mx == -(T)INFINITY && !any_nan) {
        /* nothing to attend to: a row of zeros (documented), never 0/0 */
        for (j = 0; j < n; j++) s[j] = 0;
        stat[0] = -(T)INFINITY;
        stat[1] = 0;
        return;
    }
    T lane[LANES] = {0};
    if (mask) {
        for (j = 0; j < lim; j++) {
            T e = VEXP(s[j] - mx);
            s[j] = mask[j] != 0 ? e : (T)0;
        }
    } else {
        for (j = 0; j < lim; j++) s[j] = VEXP(s[j] - mx);
    }
    for (j = lim; j < n; j++) s[j] = 0;
    for (j = 0; j + LANES <= lim; j += LANES)
        for (q = 0; q < LANES; q++) lane[q] += s[j + q];
    for (q = 0; j + q < lim; q++) lane[q] += s[j + q];
    T inv = (T)1 / RN(lane_total)(lane);
    for (j = 0; j < lim; j++) s[j] *= inv;
    stat[0] = mx;
    stat[1] = inv;
}

static void RN(sm_prob)(size_t n, const T *s, const int32_t *mask, size_t lim, const T *stat, T *p)
{
    T mx = stat[0], inv = stat[1];
    size_t j;
    if (lim > n) lim = n;
    if (mx == -(T)INFINITY) {
        for (j = 0; j < n; j++) p[j] = 0;
        return;
    }
    if (mask) {
        for (j = 0; j < lim; j++) {
            T e = VEXP(s[j] - mx);
            p[j] = mask[j] != 0 ? e * inv : (T)0;
        }
    } else {
        for (j = 0; j < lim; j++) p[j] = VEXP(s[j] - mx) * inv;
    }
    for (j = lim; j < n; j++) p[j] = 0;
}

static void RN(sm_bwd)(size_t n, const T *p, T *d)
{
    T lane[LANES] = {0};
    size_t j, q;
    for (j = 0; j + LANES <= n; j += LANES)
        for (q = 0; q < LANES; q++) lane[q] += p[j + q] * d[j + q];
    for (q = 0; j + q < n; q++) lane[q] += p[j + q] * d[j + q];
    T dot = RN(lane_total)(lane);
    for (j = 0; j < n; j++) d[j] = p[j] * (d[j] - dot);
}

#undef ALLOWED

/* Vectors of AF_ROWS_VBYTES bytes (GCC/Clang vector extensions: the compile target picks the
 * instructions); loads and stores through memcpy (no alignment needed). */
typedef T RN(vec) __attribute__((vector_size(AF_ROWS_VBYTES)));
#define VL (AF_ROWS_VBYTES / sizeof(T))

static inline RN(vec) RN(vload)(const T *p)
{
    RN(vec) v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void RN(vstore)(T *p, RN(vec) v) { memcpy(p, &v, sizeof v); }

/* C = alpha op(A) B with n a multiple of AF_ROW_VN: 4 rows x 1 vector of C in registers, p in
 * order (see rows.h). */
static void RN(mm)(size_t m, size_t n, size_t k, T alpha, const T *A, size_t sai, size_t sap,
                   const T *B, size_t ldb, T *C, size_t ldc)
{
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const T *a0 = A + i * sai, *a1 = a0 + sai, *a2 = a1 + sai, *a3 = a2 + sai;
        for (size_t j = 0; j < n; j += VL) {
            RN(vec) c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
            for (size_t p = 0; p < k; p++) {
                RN(vec) b = RN(vload)(B + p * ldb + j);
                size_t o = p * sap;
                c0 += a0[o] * b;
                c1 += a1[o] * b;
                c2 += a2[o] * b;
                c3 += a3[o] * b;
            }
            RN(vstore)(C + i * ldc + j, alpha * c0);
            RN(vstore)(C + (i + 1) * ldc + j, alpha * c1);
            RN(vstore)(C + (i + 2) * ldc + j, alpha * c2);
            RN(vstore)(C + (i + 3) * ldc + j, alpha * c3);
        }
    }
    for (; i < m; i++)
        for (size_t j = 0; j < n; j += VL) {
            RN(vec) c = {0};
            for (size_t p = 0; p < k; p++) c += A[i * sai + p * sap] * RN(vload)(B + p * ldb + j);
            RN(vstore)(C + i * ldc + j, alpha * c);
        }
}

/* s[j] += d[0][j] + d[1][j] + ... + d[m-1][j] for j < w (see rows.h). Each column is one chain of
 * adds in row order, so no vector width changes a bit; eight vectors of columns stay in registers
 * for the walk down the rows (eight chains hide the add's latency). Columns past the last whole
 * vector: the row's last vector again, from the sums so far, storing only its new lanes. */
#define CS_LOAD(u) RN(vec) a##u = RN(vload)(s + j + (u) * VL)
#define CS_ADD(u) a##u += RN(vload)(r + (u) * VL)
#define CS_STORE(u) RN(vstore)(s + j + (u) * VL, a##u)
static void RN(colsum)(size_t m, size_t w, const T *d, size_t ld, T *s)
{
    size_t j = 0;
    for (; j + 8 * VL <= w; j += 8 * VL) {
        CS_LOAD(0); CS_LOAD(1); CS_LOAD(2); CS_LOAD(3); CS_LOAD(4); CS_LOAD(5); CS_LOAD(6); CS_LOAD(7);
        const T *r = d + j;
        for (size_t i = 0; i < m; i++, r += ld) {
            CS_ADD(0); CS_ADD(1); CS_ADD(2); CS_ADD(3); CS_ADD(4); CS_ADD(5); CS_ADD(6); CS_ADD(7);
        }
        CS_STORE(0); CS_STORE(1); CS_STORE(2); CS_STORE(3);
        CS_STORE(4); CS_STORE(5); CS_STORE(6); CS_STORE(7);
    }
    for (; j + 2 * VL <= w; j += 2 * VL) {
        CS_LOAD(0); CS_LOAD(1);
        const T *r = d + j;
        for (size_t i = 0; i < m; i++, r += ld) { CS_ADD(0); CS_ADD(1); }
        CS_STORE(0); CS_STORE(1);
    }
    if (j + VL <= w) {
        CS_LOAD(0);
        const T *r = d + j;
        for (size_t i = 0; i < m; i++, r += ld) CS_ADD(0);
        CS_STORE(0);
        j += VL;
    }
    if (j == w) return;
    if (w >= VL) { /* the last vector [w - VL, w): lanes before j are recomputed, not stored */
        size_t j0 = w - VL;
        T tail[VL];
        memcpy(tail, s + j0, sizeof tail);
        RN(vec) a = RN(vload)(tail);
        for (const T *r = d + j0, *e = r + m * ld; r != e; r += ld) a += RN(vload)(r);
        RN(vstore)(tail, a);
        memcpy(s + j, tail + (j - j0), (w - j) * sizeof(T));
        return;
    }
    for (size_t i = 0; i < m; i++)
        for (size_t c = 0; c < w; c++) s[c] += d[i * ld + c];
}
#undef CS_LOAD
#undef CS_ADD
#undef CS_STORE

#include "tut_kern_impl.h"

#undef VL

const AF_FN(af_rows) AF_FN(AF_CAT(af_rows_, AF_ROWS_ISA)) = {RN(ln_fwd), RN(ln_bwd), RN(sm_fwd),
                                                              RN(sm_prob), RN(sm_bwd), RN(mm),
                                                              RN(colsum), AF_TUT_EP};
#undef AF_TUT_EP

#undef LANES
#undef RN
#include "dtype_end.h"
