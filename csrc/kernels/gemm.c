/* gemm.c: GEMM entry points, the per-thread packing workspace, and the driver (gemm_impl.h,
 * once per dtype). The micro-kernels live in gemm_generic.c / gemm_avx2.c / gemm_avx512.c. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "annfast.h"
#include "fpenv.h"
#include "gemm_kern.h"
#include "isa_ctx.h"
#include "internal.h"
#include "pool.h"

/* Products with m*n*k at most this many multiply-adds skip packing (direct loop), unless both
 * operands are transposed (the direct loop then reads both with strides; packing is faster).
 * Measured on Zen 3: at 16^3 direct and packed cost the same (~0.65 us float32). */
#ifndef AF_GEMM_DIRECT_MAX
#define AF_GEMM_DIRECT_MAX 4096.0
#endif
/* Up to this many rows of C (B not transposed) use the row-by-row GEMV loop; so do rank-1
 * products (k == 1) at least this wide (narrower rows cost more per row than per tile). */
#define AF_GEMM_GEMV_MAX_M 2
/* Up to this many rows of C = A B (k >= 2) go the rows path too, computed together (gemv_multi). */
#ifndef AF_GEMM_MULTI_MAX_M
#define AF_GEMM_MULTI_MAX_M 8
#endif
#define AF_GEMM_RANK1_MIN_N 64
/* Read A in place when n <= this many NR panels; B in place when m <= this many MR panels. */
#ifndef AF_GEMM_INPLACE_A_MAX_N
#define AF_GEMM_INPLACE_A_MAX_N 2
#endif
#ifndef AF_GEMM_INPLACE_B_MAX_M
#define AF_GEMM_INPLACE_B_MAX_M 4
#endif
/* ...and B in place at any m when all of op(B) takes at most this many bytes: it then stays in L1
 * for every A panel, and packing it only cost a copy (100x64 @ 64x64 float, one thread: 6.7 ->
 * 6.1 us; 256x128 @ 128x64: 23.0 -> 21.5 us; nothing measured slower). */
#ifndef AF_GEMM_INPLACE_B_BYTES
#define AF_GEMM_INPLACE_B_BYTES 32768
#endif
/* Products C = A B with fewer rows than this and more than one K block (a small batch's X W) sum
 * their K range in two halves, each thread-owned (gemm_packed_ksplit); weight gradients A^T B with
 * k below this split the rows of C first, so W's halves stay with the same threads. */
#ifndef AF_GEMM_KSPLIT_MAX_M
#define AF_GEMM_KSPLIT_MAX_M 32
#endif
/* Below this many multiply-adds one thread does all the work (~25 us of float32 work on one
 * core). A product split between threads also splits its operands between the cores' caches: a
 * layer's product inside a training step finds A, B and C in the calling core's cache, and a
 * worker must first fetch its share from there. Standalone, repeated on the same arrays, a
 * 200 x 64 x 64 product gains from a second thread; inside a training step it loses: fitting
 * digits with a (64,) MLP at batch 200 (two 819k-MAC products per batch) took 450 us per epoch
 * on 2 threads against 350 us on one with 5e5 here, and 360 us on 2 threads with 2e6. */
#ifndef AF_GEMM_PAR_MIN
#define AF_GEMM_PAR_MIN 2.0e6
#endif
/* ...except on the rows path (up to AF_GEMM_MULTI_MAX_M rows of C, or a rank-1 update), which
 * streams its operand at a few FMAs per value loaded (once per row, or once for the rows it
 * computes together): bound by the cache or memory bandwidth of one core, not by its FMAs. From
 * this many bytes streamed two cores read twice as fast, and the work is split from there.
 * 1 x k @ k x n, out= given, medians, 2 vCPUs (Zen 4), 2 threads
 * against 1: f32 128x256 (128 KB) 0.86x; 256x256 1.03x; 256x512 (512 KB) 1.46x with the cores
 * 50 ns apart, 1.22x 350 ns apart; 784x512 1.85x / 1.77x; f64 256x512 1.47x / 1.45x; 784x512
 * 1.45x. A 784-512-256-10 MLP's batch-1 predict: 31 -> 21 us. A training step's products run
 * on the threads its timing picks (tune.h): batch-1 steps stay on one. */
#ifndef AF_GEMM_ROWS_PAR_MIN_BYTES
#define AF_GEMM_ROWS_PAR_MIN_BYTES 524288.0
#endif

/* 1 if x * y overflows size_t (the element count of a rows x ld matrix); inline because the
 * checks run on every call, including tiny products costing a few tens of nanoseconds. */
static inline int gemm_mul_overflows(size_t x, size_t y)
{
#if defined(__GNUC__) || defined(__clang__)
    size_t r;
    return __builtin_mul_overflow(x, y, &r);
#else
    size_t r;
    return af_mul_size(x, y, &r) != AF_OK;
#endif
}

/* ---- per-calling-thread workspace --------------------------------------------------------
 * Each thread that calls GEMM (e.g. two Python threads) owns one 64-byte aligned buffer that only
 * grows; the OpenMP team working for that call shares it. It is freed when the thread exits. */
typedef struct {
    void *p;
    size_t bytes;
} af_ws;

static pthread_key_t g_ws_key;
static pthread_once_t g_ws_once = PTHREAD_ONCE_INIT;
static int g_ws_key_ok = 0;

static void ws_free(void *x)
{
    af_ws *w = (af_ws *)x;
    if (w) free(w->p);
    free(w);
}

static void ws_make_key(void) { g_ws_key_ok = pthread_key_create(&g_ws_key, ws_free) == 0; }

void *af_gemm_workspace(size_t bytes)
{
    pthread_once(&g_ws_once, ws_make_key);
    if (!g_ws_key_ok) return NULL;
    af_ws *w = (af_ws *)pthread_getspecific(g_ws_key);
    if (!w) {
        w = (af_ws *)calloc(1, sizeof *w);
        if (!w) return NULL;
        if (pthread_setspecific(g_ws_key, w) != 0) {
            free(w);
            return NULL;
        }
    }
    if (w->bytes < bytes) {
        size_t want = (bytes + 4095) / 4096 * 4096;
        void *p = aligned_alloc(64, want);
        if (!p) return NULL;
        free(w->p);
        w->p = p;
        w->bytes = want;
    }
    return w->p;
}

/* 1 when called from inside an OpenMP parallel region (a layer that splits its batch over
 * threads and multiplies per block): the product then runs on its caller's thread alone, instead
 * of every team member competing for the pool. Results do not depend on it (see gemm_impl.h). */
static inline int gemm_nested(void)
{
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

/* Threads for `work` on a path that splits from `min` of it: all of annfast's threads unless the
 * pool would run the job alone anyway (af_get_num_threads asks af_pool_threads), else one. */
static inline size_t gemm_threads_at(double work, double min)
{
    return work < min || gemm_nested() ? 1 : (size_t)af_get_num_threads();
}

/* The paths of a product (gemm_path in gemm_impl.h). */
enum { AF_GP_ZERO, AF_GP_SKINNY, AF_GP_DIRECT, AF_GP_ROWS, AF_GP_PACKED };

#define AF_DTYPE_F32
#include "gemm_impl.h"
#define AF_DTYPE_F64
#include "gemm_impl.h"

af_status af_sgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc,
                      const af_epilogue *ep)
{
    return af_gemm_ex_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}

af_status af_dgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, double alpha, const double *a,
                      size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc,
                      const af_epilogue *ep)
{
    return af_gemm_ex_f64(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}

af_status af_sgemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    return af_gemm_ex_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

af_status af_dgemm(int ta, int tb, size_t m, size_t n, size_t k, double alpha, const double *a,
                   size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc)
{
    return af_gemm_ex_f64(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

af_status af_sgemm_checked(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                           size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc,
                           const af_epilogue *ep)
{
    return af_gemm_checked_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}

af_status af_dgemm_checked(int ta, int tb, size_t m, size_t n, size_t k, double alpha,
                           const double *a, size_t lda, const double *b, size_t ldb, double beta,
                           double *c, size_t ldc, const af_epilogue *ep)
{
    return af_gemm_checked_f64(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}
