/* toolkit_kernels.c: drives the optimiser, clipping, batch-norm, dropout and column-sum kernels
 * from plain C over awkward sizes (block and chunk edges, m = 1, in-place calls, 1 and 2 threads)
 * plus argument checks. tests/test_c_kernels.py builds it with AddressSanitizer/UBSan and runs it. */
#include "optim.h"
#include "norm.h"
#include "isa_ctx.h"
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

int main(void){
  if (colsum_check_f32() || colsum_check_f64()) return 8;
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
