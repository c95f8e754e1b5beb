/* toolkit_kernels.c: drives the optimiser, clipping, batch-norm, dropout, column-sum and tutorial-epoch kernels
 * from plain C over awkward sizes (block and chunk edges, m = 1, in-place calls, 1 and 2 threads)
 * plus argument checks, vexp.h's e^x of the recurrent cells against its general one, and GEMMs
 * given op(B)'s panels packed before against the plain GEMM.
 * tests/test_c_kernels.py builds it with AddressSanitizer/UBSan and runs it. */
#include "optim.h"
#include "norm.h"
#include "isa_ctx.h"
#include "fpenv.h"
#include "vexp.h"
#include "gemm_kern.h"
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static double rnd(void){ return (double)rand()/RAND_MAX - 0.5; }

/* The column-sum kernel (rows.h) of every path this CPU runs: each width's vector groups and
 * tails, rows 0..33, a row stride past the width (ASan sees any read beyond a row's last used
 * element in the last row), NaN kept; bitwise the scalar loop (each column in row order). */
#define COLSUM_CHECK(T, SUF)                                                                       \
  static int colsum_check_##SUF(void) {                                                             \
    size_t ms[] = {0, 1, 2, 17, 33};                                                               \
    af_isa keep = af_get_isa();                                                                    \
    for (int isa = AF_ISA_GENERIC; isa <= AF_ISA_AVX512; isa++) {                                  \
      if (af_set_isa((af_isa)isa) != AF_OK) continue;                                              \
      for (size_t w = 0; w <= 140; w++) for (size_t a = 0; a < 5; a++) {                          \
        size_t m = ms[a], ld = w + 3, len = m ? (m - 1) * ld + w : 0;                              \
        T *d = malloc((len ? len : 1) * sizeof(T)), *s = malloc((w ? w : 1) * sizeof(T));          \
        T *ref = malloc((w ? w : 1) * sizeof(T));                                                  \
        for (size_t i = 0; i < len; i++) d[i] = (T)rnd();                                          \
        if (len > 5) d[len / 2] = (T)NAN;                                                          \
        for (size_t j = 0; j < w; j++) s[j] = ref[j] = (T)rnd();                                   \
        for (size_t i = 0; i < m; i++) for (size_t j = 0; j < w; j++) ref[j] += d[i * ld + j];    \
        af_isa_ctx()->SUF.rows->colsum(m, w, d, ld, s);                                            \
        int bad = memcmp(s, ref, w * sizeof(T)) != 0;                                              \
        free(d); free(s); free(ref);                                                               \
        if (bad) { printf("colsum " #SUF " isa %d w %zu m %zu\n", isa, w, m); return 1; }         \
      }                                                                                            \
    }                                                                                              \
    af_set_isa(keep);                                                                              \
    return 0;                                                                                      \
  }
COLSUM_CHECK(float, f32)
COLSUM_CHECK(double, f64)

/* The tutorial's fused epoch (rows.h tut_ep) of every path this CPU runs against the formulas
 * of tutorial.c as plain loops over rows: the forward pass's four outputs and the updated
 * weights within 1e-12 of the largest value (the sums over rows and e^x are ordered and
 * rounded differently); rows padded to 8 (ASan sees reads past the buffers); a NaN bias gives
 * NaN outputs, never zeros. */
static double tut_ref_sig(double a) { return 1.0 / (1.0 + exp(-a)); }
static int tut_close(const double *a, const double *b, size_t len)
{
  double big = 0, err = 0;
  for (size_t i = 0; i < len; i++) {
    if (isnan(b[i]) != isnan(a[i])) return 0;
    if (isnan(b[i])) continue;
    big = fmax(big, fabs(b[i])); err = fmax(err, fabs(a[i] - b[i]));
  }
  return err <= 1e-12 * fmax(big, 1e-300);
}
static int tut_ep_check(void)
{
  size_t shapes[][4] = {{1, 1, 1, 1}, {4, 2, 4, 1}, {13, 3, 5, 2}, {37, 7, 9, 3}, {64, 8, 16, 3}, {70, 17, 6, 7}};
  af_isa keep = af_get_isa();
  for (int isa = AF_ISA_GENERIC; isa <= AF_ISA_AVX512; isa++) {
    if (af_set_isa((af_isa)isa) != AF_OK) continue;
    for (size_t c = 0; c < 12; c++) {
      size_t n = shapes[c % 6][0], ni = shapes[c % 6][1], nh = shapes[c % 6][2], no = shapes[c % 6][3];
      size_t np = (n + 7) / 8 * 8, nw = ni * nh + nh + nh * no + no;
      int nan = c >= 6;
      double *x = malloc(n * ni * 8), *y = malloc(n * no * 8), *w = malloc(nw * 8), *wr = malloc(nw * 8);
      double *xt = malloc(ni * np * 8), *yt = malloc(no * np * 8), *ht = malloc(nh * np * 8), *ot = malloc(no * np * 8);
      double *dh = malloc(nh * np * 8), *out = malloc(2 * n * (nh + no) * 8), *ref = malloc(2 * n * (nh + no) * 8);
      double *dor = malloc(n * no * 8), *dhr = malloc(n * nh * 8);
      for (size_t i = 0; i < n * ni; i++) x[i] = 3 * rnd();
      for (size_t i = 0; i < n * no; i++) y[i] = rnd() + 0.5;
      for (size_t i = 0; i < nw; i++) w[i] = wr[i] = 2 * rnd();
      double *w1 = wr, *b1 = w1 + ni * nh, *w2 = b1 + nh, *b2 = w2 + nh * no, lr = 0.3;
      if (nan) w[ni * nh] = b1[0] = NAN;
      for (size_t k = 0; k < ni; k++) for (size_t i = 0; i < np; i++) xt[k * np + i] = i < n ? x[i * ni + k] : 0;
      for (size_t j = 0; j < no; j++) for (size_t i = 0; i < np; i++) yt[j * np + i] = i < n ? y[i * no + j] : 0;
      double *ha = out, *ho = ha + n * nh, *oa = ho + n * nh, *pr = oa + n * no;
      af_tut_ep_f64 e = {n, np, ni, nh, no, xt, yt, w, w + ni * nh, w + ni * nh + nh, w + ni * nh + nh + nh * no,
                         lr, ht, ot, dh, ha, ho, oa, pr};
      af_isa_ctx()->f64.rows->tut_ep(&e);
      double *rha = ref, *rho = rha + n * nh, *roa = rho + n * nh, *rpr = roa + n * no;
      for (size_t i = 0; i < n; i++) {
        for (size_t u = 0; u < nh; u++) {
          double a = 0; for (size_t k = 0; k < ni; k++) a += x[i * ni + k] * w1[k * nh + u];
          rha[i * nh + u] = a + b1[u]; rho[i * nh + u] = tut_ref_sig(a + b1[u]);
        }
        for (size_t j = 0; j < no; j++) {
          double a = 0; for (size_t u = 0; u < nh; u++) a += rho[i * nh + u] * w2[u * no + j];
          double p = tut_ref_sig(a + b2[j]);
          roa[i * no + j] = a + b2[j]; rpr[i * no + j] = p;
          dor[i * no + j] = (y[i * no + j] - p) * (p * (1 - p));
        }
        for (size_t u = 0; u < nh; u++) {
          double a = 0, h = rho[i * nh + u]; for (size_t j = 0; j < no; j++) a += dor[i * no + j] * w2[u * no + j];
          dhr[i * nh + u] = a * (h * (1 - h));
        }
      }
      for (size_t u = 0; u < nh; u++) for (size_t j = 0; j < no; j++) {
        double g = 0; for (size_t i = 0; i < n; i++) g += rho[i * nh + u] * dor[i * no + j]; w2[u * no + j] += g * lr; }
      for (size_t j = 0; j < no; j++) { double g = 0; for (size_t i = 0; i < n; i++) g += dor[i * no + j]; b2[j] += g * lr; }
      for (size_t k = 0; k < ni; k++) for (size_t u = 0; u < nh; u++) {
        double g = 0; for (size_t i = 0; i < n; i++) g += x[i * ni + k] * dhr[i * nh + u]; w1[k * nh + u] += g * lr; }
      for (size_t u = 0; u < nh; u++) { double g = 0; for (size_t i = 0; i < n; i++) g += dhr[i * nh + u]; b1[u] += g * lr; }
      int bad = !tut_close(out, ref, 2 * n * (nh + no)) || !tut_close(w, wr, nw);
      for (size_t i = 0; nan && i < n * no; i++) bad |= !isnan(pr[i]);
      free(x); free(y); free(w); free(wr); free(xt); free(yt); free(ht); free(ot); free(dh); free(out); free(ref);
      free(dor); free(dhr);
      if (bad) { printf("tut_ep isa %d shape %zu nan %d\n", isa, c % 6, nan); return 1; }
    }
  }
  af_set_isa(keep);
  return 0;
}

/* vexp.h's af_exp_den (one-step 2^k) against af_exp in what the recurrent cells compute,
 * 1 / (1 + e^-x) and 1 - 2 / (1 + e^2x), with subnormal results flushed as in every annfast
 * thread: the same bits (NaN for NaN) for every float around both clamps, every 251st float
 * pattern, and doubles from a sweep of [-760, 760] and random patterns. */
#define DEN_SAME(T, x, EXP, DEN, bad)                                                             \
  do {                                                                                            \
    T s0 = (T)1 / ((T)1 + EXP(-(x))), s1 = (T)1 / ((T)1 + DEN(-(x)));                            \
    T t0 = (T)1 - (T)2 / ((T)1 + EXP((T)2 * (x))), t1 = (T)1 - (T)2 / ((T)1 + DEN((T)2 * (x)));   \
    if (!(isnan(s0) && isnan(s1)) && memcmp(&s0, &s1, sizeof(T))) bad++;                          \
    if (!(isnan(t0) && isnan(t1)) && memcmp(&t0, &t1, sizeof(T))) bad++;                          \
  } while (0)
static int den_check(void)
{
  if (AF_FP_FLUSH == 0) return 0; /* no flush-to-zero to rely on */
  af_fpenv keep = af_fp_get();
  af_fp_put(keep | AF_FP_FLUSH);
  size_t bad = 0;
  float ends[] = {-90.0f, -42.0f, 42.0f, 87.0f};
  for (int e = 0; e < 4; e++)
    for (float x = ends[e]; x <= ends[e] + 3.0f; x = nextafterf(x, 1e9f)) DEN_SAME(float, x, af_exp_f32, af_exp_den_f32, bad);
  for (uint64_t u = 0; u < (1ull << 32); u += 251) {
    uint32_t b = (uint32_t)u;
    float x;
    memcpy(&x, &b, 4);
    DEN_SAME(float, x, af_exp_f32, af_exp_den_f32, bad);
  }
  for (double x = -760; x <= 760; x += 1.0 / 512) DEN_SAME(double, x, af_exp_f64, af_exp_den_f64, bad);
  uint64_t r = 88172645463325252ull;
  for (int i = 0; i < 1000000; i++) {
    r ^= r << 13; r ^= r >> 7; r ^= r << 17;
    double x;
    memcpy(&x, &r, 8);
    DEN_SAME(double, x, af_exp_f64, af_exp_den_f64, bad);
  }
  af_fp_put(keep);
  if (bad) printf("af_exp_den: %zu results differ from af_exp's\n", bad);
  return bad != 0;
}

/* af_gemm_prepacked (gemm_kern.h) on every path this CPU runs, 1 and 2 threads: bitwise the
 * plain GEMM for shapes on and off its packed path (m 1..100, several K blocks, column edges,
 * op(B) transposed or not, beta 0 and 1), except that it never splits K: on the packed path its
 * rows are those of the plain GEMM of A padded to 32 rows (no K split there; a packed product
 * computes each row the same for any row count); panels that do not fit leave ki NULL; panels of
 * another matrix are not used (the result is then the plain GEMM's, K split or not). */
#define BPANELS_CHECK(T, SUF, GEMMX)                                                                    \
  static int bpanels_check_##SUF(void) {                                                            \
    size_t ms[] = {1, 16, 61}, ks[] = {7, 600}, ns[] = {5, 129};                                 \
    af_isa keep = af_get_isa();                                                                    \
    for (int isa = AF_ISA_GENERIC; isa <= AF_ISA_AVX512; isa++) {                                  \
      if (af_set_isa((af_isa)isa) != AF_OK) continue;                                              \
      for (int th = 1; th <= 2; th++) { af_set_num_threads(th);                                    \
      for (size_t a = 0; a < 3; a++) for (size_t b = 0; b < 2; b++) for (size_t c = 0; c < 2; c++) \
      for (int tb = 0; tb < 2; tb++) {                                                             \
        size_t m = ms[a], k = ks[b], n = ns[c], ldb = tb ? k + 3 : n + 3, cap = k * (n + 64);      \
        T *A = malloc(m * k * sizeof(T)), *B = malloc((tb ? n : k) * ldb * sizeof(T));             \
        T *C0 = malloc(m * n * sizeof(T)), *C1 = malloc(m * n * sizeof(T)), *P = malloc(cap * sizeof(T)); \
        size_t mp = m < 32 ? 32 : m; /* rows of the padded reference */                            \
        T *Ap = malloc(mp * k * sizeof(T)), *Cp = malloc(mp * n * sizeof(T));                      \
        for (size_t i = 0; i < m * k; i++) A[i] = (T)rnd();                                        \
        for (size_t i = 0; i < mp * k; i++) Ap[i] = i < m * k ? A[i] : (T)rnd();                   \
        for (size_t i = 0; i < (tb ? n : k) * ldb; i++) B[i] = (T)rnd();                           \
        af_gemm_bpanels_##SUF pk, small;                                                           \
        af_gemm_bpack_##SUF(&pk, tb, k, n, B, ldb, P, cap);                                        \
        af_gemm_bpack_##SUF(&small, tb, k, n, B, ldb, P, k * n / 2);                               \
        int bad = pk.ki == NULL || small.ki != NULL;                                               \
        int packed = af_gemm_takes_bpanels_##SUF(0, tb, m, n, k);                                  \
        for (int beta = 0; beta < 2 && !bad; beta++) {                                             \
          for (size_t i = 0; i < mp * n; i++) Cp[i] = (T)rnd();                                    \
          for (size_t i = 0; i < m * n; i++) C0[i] = C1[i] = Cp[i];                                \
          if (packed) {                                                                            \
            GEMMX(0, tb, mp, n, k, (T)1.5, Ap, k, B, ldb, (T)beta, Cp, n, NULL);                   \
            memcpy(C0, Cp, m * n * sizeof(T));                                                     \
          } else {                                                                                 \
            GEMMX(0, tb, m, n, k, (T)1.5, A, k, B, ldb, (T)beta, C0, n, NULL);                     \
          }                                                                                        \
          af_gemm_prepacked_##SUF(0, tb, m, n, k, (T)1.5, A, k, B, ldb, &pk, (T)beta, C1, n);      \
          bad = memcmp(C0, C1, m * n * sizeof(T)) != 0;                                            \
          /* panels of another B (here: B + 1) are not taken */                                    \
          for (size_t i = 0; i < m * n; i++) C1[i] = (T)0;                                         \
          GEMMX(0, tb, m, n, k, (T)1, A, k, B + 1, ldb, (T)0, C0, n, NULL);             \
          af_gemm_prepacked_##SUF(0, tb, m, n, k, (T)1, A, k, B + 1, ldb, &pk, (T)0, C1, n);       \
          bad = bad || memcmp(C0, C1, m * n * sizeof(T)) != 0;                                     \
        }                                                                                          \
        free(A); free(B); free(C0); free(C1); free(P); free(Ap); free(Cp);                         \
        if (bad) {                                                                                 \
          printf("bpanels " #SUF " isa %d th %d m %zu k %zu n %zu tb %d\n", isa, th, m, k, n, tb); \
          return 1;                                                                                \
        }                                                                                          \
      }}                                                                                           \
    }                                                                                              \
    af_set_isa(keep);                                                                              \
    af_set_num_threads(1);                                                                         \
    return 0;                                                                                      \
  }
BPANELS_CHECK(float, f32, af_sgemm_ex)
BPANELS_CHECK(double, f64, af_dgemm_ex)

int main(void){
  if (bpanels_check_f32() || bpanels_check_f64()) return 11;
  if (colsum_check_f32() || colsum_check_f64()) return 8;
  if (tut_ep_check()) return 9;
  if (den_check()) return 10;
  size_t sizes[] = {1, 7, 4095, 4096, 4097, 40000, 70001};
  for (int th = 1; th <= 2; th++) { af_set_num_threads(th);
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
    size_t n = sizes[si];
    float *p = malloc(n*4), *g = malloc(n*4), *s = calloc(2*n, 4);
    double *pd = malloc(n*8), *gd = malloc(n*8), *sd = calloc(2*n, 8);
    for (size_t i = 0; i < n; i++) { p[i] = rnd(); g[i] = rnd(); pd[i] = p[i]; gd[i] = g[i]; }
    for (int k = 0; k < AF_OPT_COUNT; k++) {
      af_optim o = {0}; o.kind = k; o.lr = 0.01; o.momentum = 0.5; o.rho = 0.9; o.beta1 = 0.9; o.beta2 = 0.999;
      o.eps = 1e-7; o.initial_accumulator = 0.1; o.weight_decay = 0.01; o.decoupled_wd = k == AF_OPT_ADAM;
      o.nesterov = k == AF_OPT_SGD;
      for (uint64_t t = 1; t <= 3; t++) {
        if (af_optim_step_f32(&o, n, p, g, s, t) || af_optim_step_f64(&o, n, pd, gd, sd, t)) { printf("step fail\n"); return 1; }
      }
    }
    double nr; af_l2_norm_f32(n, g, &nr); af_l2_norm_f64(n, gd, &nr);
    af_clip_value_f32(n, g, 0.2f); af_clip_norm_f64(n, gd, 0.5, &nr);
    af_dropout_apply_f32(n, 0.3, 1, 2, g, g); af_dropout_mask_f64(n, 0.3, 1, 2, gd);
    free(p); free(g); free(s); free(pd); free(gd); free(sd);
  }
  size_t ms[] = {1, 3, 128}, ns[] = {1, 63, 64, 65, 300};
  for (int a = 0; a < 3; a++) for (int b = 0; b < 5; b++) {
    size_t m = ms[a], n = ns[b];
    float *x = malloc(m*n*4), *y = malloc(m*n*4), *dx = malloc(m*n*4), *gm = malloc(n*4), *bt = malloc(n*4),
          *rm = calloc(n,4), *rv = calloc(n,4), *mu = malloc(n*4), *is = malloc(n*4), *dg = malloc(n*4), *db = malloc(n*4);
    for (size_t i = 0; i < m*n; i++) x[i] = rnd();
    for (size_t j = 0; j < n; j++) { gm[j] = 1; bt[j] = 0; }
    if (af_bn_forward_train_f32(m, n, x, gm, bt, 1e-3, 0.9, 1, rm, rv, mu, is, y)) { printf("bn fail\n"); return 1; }
    af_bn_backward_f32(m, n, x, y, gm, mu, is, dx, dg, db);
    af_bn_backward_f32(m, n, x, y, NULL, mu, is, y, NULL, NULL); /* in place, no gamma */
    af_bn_forward_infer_f32(m, n, x, NULL, NULL, rm, rv, 1e-3, x); /* in place */
    free(x); free(y); free(dx); free(gm); free(bt); free(rm); free(rv); free(mu); free(is); free(dg); free(db);
  }}
  /* argument checks */
  af_optim bad = {0}; bad.kind = 9;
  if (af_optim_check(&bad) != AF_EINVAL || af_optim_step_f32(NULL, 1, NULL, NULL, NULL, 1) != AF_EINVAL) return 2;
  if (af_bn_forward_train_f32(0, 3, NULL, NULL, NULL, 1e-3, 0.9, 0, NULL, NULL, NULL, NULL, NULL) != AF_ESHAPE) return 3;
  if (af_bn_forward_train_f32((size_t)1 << 40, (size_t)1 << 40, NULL, NULL, NULL, 1e-3, 0.9, 0, NULL, NULL, NULL, NULL, NULL) != AF_ESHAPE) return 4;
  if (af_dropout_mask_f32(3, 1.0, 0, 0, (float *)&bad) != AF_EINVAL) return 5;
  { /* an eps float32 cannot hold (1e-50 -> 0: 0 / 0 for zero gradients) is refused, untouched */
    af_optim tiny = {0}; tiny.kind = AF_OPT_ADAM; tiny.lr = 0.01; tiny.beta1 = 0.9; tiny.beta2 = 0.999;
    tiny.eps = 1e-50;
    float pf[2] = {1, 1}, gf[2] = {0, 1}, sf[4] = {0};
    double pd[2] = {1, 1}, gd[2] = {0, 1}, sd[4] = {0};
    if (af_optim_step_f32(&tiny, 2, pf, gf, sf, 1) != AF_EINVAL || pf[0] != 1 || pf[1] != 1) return 6;
    if (af_optim_step_f64(&tiny, 2, pd, gd, sd, 1) != AF_OK || pd[0] != 1 || !(pd[1] < 1)) return 7;
  }
  printf("ok\n"); return 0;
}
