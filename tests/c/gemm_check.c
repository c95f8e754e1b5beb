/* gemm_check.c: C-level GEMM check against a naive float64 reference (no Python).
 * Built and run by tests/test_gemm_avx512_emulated.py: once with the normal sources, once with
 * -DAF_GEMM_EMULATE_AVX512 (the AVX-512 kernel shapes on generic 64-byte vectors).
 * Covers sizes around the AVX-512 register and cache blocks (12, 32, 192, 480), all transposes,
 * padded leading dimensions, alpha/beta, 1 and 2 threads. Exit status 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "annfast.h"

static unsigned g_seed = 1;
static double rnd(void)
{
    g_seed = g_seed * 1103515245u + 12345u;
    return ((g_seed >> 8) & 0xffff) / 32768.0 - 1.0;
}

int main(void)
{
    /* n takes every third: 1, 5, 13, 20, 33, 100, 481 (20 and 33: three-vector row tiles) */
    const size_t sz[] = {1, 2, 3, 5, 11, 12, 13, 16, 17, 20, 31, 32, 33, 40, 95, 100, 191, 193, 481, 500};
    const int nsz = sizeof sz / sizeof sz[0];
    long bad = 0, cases = 0;
    for (int th = 1; th <= 2; th++) {
        af_set_num_threads(th);
        for (int x = 0; x < nsz; x++)
            for (int y = 0; y < nsz; y += 3)
                for (int z = 0; z < nsz; z += 2)
                    for (int t = 0; t < 4; t++) {
                        int ta = t & 1, tb = t >> 1;
                        size_t m = sz[x], n = sz[y], k = sz[(z + x) % nsz];
                        if ((double)m * n * k > 3e6) continue;
                        size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
                        size_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
                        double *a = malloc(8 * na), *b = malloc(8 * nb), *c = malloc(8 * nc), *c0 = malloc(8 * nc);
                        float *fa = malloc(4 * na), *fb = malloc(4 * nb), *fc = malloc(4 * nc);
                        if (!a || !b || !c || !c0 || !fa || !fb || !fc) return 2;
                        for (size_t i = 0; i < na; i++) fa[i] = (float)(a[i] = (float)rnd());
                        for (size_t i = 0; i < nb; i++) fb[i] = (float)(b[i] = (float)rnd());
                        for (size_t i = 0; i < nc; i++) fc[i] = (float)(c[i] = c0[i] = (float)rnd());
                        if (af_dgemm(ta, tb, m, n, k, 1.5, a, lda, b, ldb, -0.5, c, ldc) != AF_OK) return 3;
                        if (af_sgemm(ta, tb, m, n, k, 1.5f, fa, lda, fb, ldb, -0.5f, fc, ldc) != AF_OK) return 3;
                        for (size_t i = 0; i < m; i++)
                            for (size_t j = 0; j < n; j++) {
                                double r = 0, mag = 0;
                                for (size_t p = 0; p < k; p++) {
                                    double u = ta ? a[p * lda + i] : a[i * lda + p];
                                    double v = tb ? b[j * ldb + p] : b[p * ldb + j];
                                    r += u * v;
                                    mag += fabs(u * v);
                                }
                                r = 1.5 * r - 0.5 * c0[i * ldc + j];
                                mag = 1.5 * mag + 0.5 * fabs(c0[i * ldc + j]);
                                /* k * eps bounds (see tests/test_gemm.py) */
                                double ed = fabs(c[i * ldc + j] - r), ef = fabs(fc[i * ldc + j] - r);
                                if (ed > 2 * (k + 2) * 2.3e-16 * mag + 1e-300 ||
                                    ef > 2 * (k + 2) * 1.2e-7 * mag + 1e-30) {
                                    if (bad < 5)
                                        printf("mismatch m=%zu n=%zu k=%zu ta=%d tb=%d threads=%d: %g %g\n",
                                               m, n, k, ta, tb, th, ed, ef);
                                    bad++;
                                }
                            }
                        cases++;
                        free(a), free(b), free(c), free(c0), free(fa), free(fb), free(fc);
                    }
    }
    printf("%ld cases, %ld bad elements\n", cases, bad);
    return bad != 0;
}
