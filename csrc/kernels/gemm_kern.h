/* gemm_kern.h: the interface between the GEMM driver (gemm.c) and the per-ISA kernels
 * (gemm_generic.c, gemm_avx2.c, gemm_avx512.c). Internal; not part of the public C API.
 *
 * Each ISA file instantiates gemm_kern_impl.h once per dtype and exports a table of
 * af_gemm_kinfo_<dtype>: the register-block shape MR x NR of its micro-kernel, the cache
 * blocks MC/KC/NC, the micro-kernel, the two packing routines and the unpacked direct loop
 * used for small shapes. Packed layouts (all buffers 64-byte aligned):
 *   A block (mc x kc of op(A)) -> ceil(mc/MR) panels, panel = kc columns of MR rows:
 *       Ap[panel][p][r] = op(A)[i0 + r, p], zero for rows past mc
 *   B block (kc x nc of op(B)) -> ceil(nc/NR) panels, panel = kc rows of NR columns:
 *       Bp[panel][p][j] = op(B)[p, j0 + j], zero for columns past nc
 */
#ifndef AF_GEMM_KERN_H
#define AF_GEMM_KERN_H
#include <stddef.h>
#include <stdint.h>
#include "annfast.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_GEMM_X86 1
#else
#define AF_GEMM_X86 0
#endif

#define AF_GEMM_KINFO(T, SUF)                                                                        \
    /* What the micro-kernel does with its tile besides storing alpha A@B + beta C: add bias[j]   \
     * (bias points at the tile's first column), apply relu (x if x > 0 or NaN, else +0), set    \
     * *bad when a value of alpha A@B is NaN or inf (checked entry points); with chk (vn lanes,  \
     * zeroed by the caller), fold the values into chk instead, for the caller to look at once   \
     * (gemm_block in gemm_impl.h) rather than after every tile. */                              \
    typedef struct {                                                                                 \
        const T *bias;                                                                               \
        int relu;                                                                                    \
        int *bad;                                                                                    \
        T *chk;                                                                                      \
    } af_gemm_kout_##SUF;                                                                            \
    /* Part of a product P = X W made beside a recurrent GEMV (gemv_seg): AF_GEMM_PROJ_ROWS      \
     * rows of X (row r at x + r ldx, k values) times W's columns, taken as nseg segments of segw \
     * columns (segment s of W at w + s wseg, rows ldw apart; of P at p + s pseg, rows ldp apart; \
     * segw a multiple of proj_cols), proj_cols columns a pass, passes [pass0, pass1) counted    \
     * segment by segment. Each value by the GEMM's chain from zero (gemm_kernel_body, k <= kc):  \
     * fma(x_{k-1}, w_{k-1,j}, ... fma(x_0, w_0j, 0)), so the same bits as the GEMM. */           \
    typedef struct {                                                                                 \
        size_t k;                                                                                    \
        const T *x;                                                                                  \
        size_t ldx;                                                                                  \
        const T *w;                                                                                  \
        size_t ldw;                                                                                  \
        T *p;                                                                                        \
        size_t ldp, nseg, segw, wseg, pseg, pass0, pass1;                                            \
    } af_gemm_proj_##SUF;                                                                            \
    typedef struct {                                                                                 \
        size_t mr, nr;      /* micro-tile: mr rows x nr columns of C held in registers */            \
        size_t mc, kc, nc;  /* cache blocks: A block mc x kc in L2, B panel kc x nr in L1 */        \
        size_t vn;          /* lanes per vector */                                                  \
        size_t rowk_nv;     /* the skinny row kernel's widest n, in vectors (2 or 3) */             \
        size_t rowk_dot;    /* the most dot columns it takes: AF_GEMM_ROWK_TAIL */              \
        /* C[0:mr_, 0:nr_] = alpha * A @ B + beta * C (beta == 0: C not read) for the mr x nr    \
         * tile with A[r, p] = a[r*rsa + p*csa], B[p, j] = b[p*ldbk + j]; packed: rsa = 1,         \
         * csa = mr, ldbk = nr. mr_ <= mr, nr_ <= nr is the valid corner; the kernel reads full   \
         * mr x k of A and k x nr of B, so edge panels must be packed (zero-padded). out: see       \
         * af_gemm_kout (NULL: plain store). */                                                     \
        void (*kernel)(size_t k, const T *a, size_t rsa, size_t csa, const T *b, size_t ldbk,      \
                       T alpha, T beta, T *c, size_t ldc, size_t mr_, size_t nr_,                   \
                       const af_gemm_kout_##SUF *out);                                              \
        /* Pack panels [p0, p1) of op(A)[0:mc, 0:kc]; a points at op(A)[0, 0]. */                   \
        void (*pack_a)(int ta, size_t mc, size_t kc, const T *a, size_t lda, T *ap, size_t p0,      \
                       size_t p1);                                                                   \
        /* Pack panels [p0, p1) of op(B)[0:kc, 0:nc]; b points at op(B)[0, 0]. */                   \
        void (*pack_b)(int tb, size_t kc, size_t nc, const T *b, size_t ldb, T *bp, size_t p0,      \
                       size_t p1);                                                                   \
        /* Unpacked C = alpha op(A) op(B) + beta C for small shapes (no epilogue). */               \
        void (*direct)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,           \
                       size_t lda, const T *b, size_t ldb, T beta, T *c, size_t ldc);               \
        /* One row of C, columns [j0, j1): y = alpha x @ B + beta y, x[p] at x[p*incx]. */         \
        void (*gemv)(size_t k, size_t j0, size_t j1, T alpha, const T *x, size_t incx, const T *b,  \
                     size_t ldb, T beta, T *y);                                                      \
        /* One row of C = x @ B^T, columns [j0, j1): y[j] = alpha dot(x, B[j, :k]) + beta y[j],   \
         * x contiguous. */                                                                          \
        void (*gemv_t)(size_t k, size_t j0, size_t j1, T alpha, const T *x, const T *b, size_t ldb, \
                       T beta, T *y);                                                                \
        /* Skinny products (gemm_skinny_impl.h), rows [0, m) of C; bp holds op(B)                \
         * with row stride ldbp. Row kernel, n <= rowk_nv vn: op(A)[i, p] = a[i*rsa + p*csa];    \
         * bp rows of W = vn, 2 vn or 3 vn values (n rounded up), zero past column n; bt (or NULL: \
         * none) rowk_dot rows of ldbt >= k rounded up to vn values for its dot columns (used when  \
         * csa = 1): the last AF_GEMM_ROWK_TAIL(n) columns of op(B), zeros past k and after them.  \
         * Column                                                                                  \
         * kernel, op(A)[i, p] = a[p*lda + i]; when m < vn, atail = op(A) as k rows of vn values   \
         * padded with zeros.                                                                      \
         * out: bias (from column 0 of C), relu, NaN/inf flag as for the micro-kernel. */          \
        void (*rowk)(size_t m, size_t n, size_t k, T alpha, const T *a, size_t rsa, size_t csa,     \
                     const T *bp, size_t ldbp, const T *bt, size_t ldbt, T beta, T *c, size_t ldc,  \
                     const af_gemm_kout_##SUF *out);                                                \
        void (*colk)(size_t m, size_t n, size_t k, T alpha, const T *a, size_t lda, const T *atail, \
                     const T *bp, size_t ldbp, T beta, T *c, size_t ldc,                            \
                     const af_gemm_kout_##SUF *out);                                                \
        /* The micro-kernel with A read in place for any mr <= MR (implicit GEMM: a convolution  \
         * reading its input where it lies), B packed (ldbk = NR): reads af_gemm_rows_read(MR,   \
         * mr) rows of A, which the caller makes sure are readable. */                             \
        void (*kernel_rows)(size_t k, const T *a, size_t rsa, size_t csa, const T *b, T alpha,      \
                            T beta, T *c, size_t ldc, size_t mr, size_t nr,                         \
                            const af_gemm_kout_##SUF *out);                                         \
        /* One row of C from nseg column segments of B, w columns each, seg apart:                \
         * y[s*ldy + j] = sum_p x[p] b[p*ldb + s*seg + j] (s < nseg, j < w), each value by the     \
         * same FMA chain as gemv with alpha 1, beta 0 (so the same bits): a recurrent step's     \
         * product with one block of units of every gate, U read in place. cont: each chain starts \
         * from the value in y instead of zero, so calls over consecutive row ranges of B (x and  \
         * b advanced alike) give the bits of one call over all of them. pj (NULL: none): its     \
         * passes made between the rows (the GEMV waits on B's lines from L2 with the FMA units   \
         * half idle, a projection's operands are in registers and L1); with k = 0 the passes     \
         * alone, y untouched. */                                                                   \
        void (*gemv_seg)(size_t k, size_t nseg, size_t seg, size_t w, const T *x, const T *b,      \
                         size_t ldb, T *y, size_t ldy, int cont, const af_gemm_proj_##SUF *pj);     \
        /* m rows of C, columns [j0, j1): row i is gemv's row with x at x + i ldx and y at        \
         * y + i ldy, each value by gemv's FMA chain (so the same bits), each vector of B loaded   \
         * once for up to 4 rows (by panels; a last row alone as gemv makes it). For k >= 2. */     \
        void (*gemv_multi)(size_t m, size_t k, size_t j0, size_t j1, T alpha, const T *x,          \
                           size_t ldx, size_t incx, const T *b, size_t ldb, T beta, T *y,          \
                           size_t ldy);                                                             \
        size_t proj_cols;   /* columns of one af_gemm_proj pass; 0: gemv_seg takes none */          \
    } af_gemm_kinfo_##SUF;

/* A page: B's rows this far apart or more (ldb_bytes, the row stride in bytes) map a GEMV's
 * column panel onto few cache sets and hold one row a page, so there a GEMV streams B row by row
 * (gemv_rows' streaming pass), the panels ask for no lines ahead (gemv_pf) and two rows are not
 * computed together (gemm_rows_multi); a stride of whole pages also makes the packed path pack
 * all of B (gemm_pack_all_b). The one definition for the kernels and the driver. */
#define AF_GEMM_PAGE_BYTES 4096
#define AF_GEMM_ROWS_PAGE_APART(ldb_bytes) ((ldb_bytes) >= AF_GEMM_PAGE_BYTES)

/* Rows of X in each pass of a projection made beside a GEMV (af_gemm_proj). */
#define AF_GEMM_PROJ_ROWS 4

/* The widest n (columns of C) the skinny row kernel of kernel table ki takes: the skinny path's
 * choice (gemm_impl.h) and the recurrent layers' GEMV rule (rnn_impl.h) both read it. */
#define AF_GEMM_ROWK_MAX_N(ki) ((ki)->rowk_nv * (ki)->vn)

/* How many of the row kernel's n columns are dot columns (gemm_skinny_impl.h, rowk_body): the
 * n % vn columns past whole vectors when they are at most dot (a quarter vector) and the vectors
 * are at most two; else none. The skinny path packs them (bt) by this rule, the kernel reads
 * them by it. */
#define AF_GEMM_ROWK_TAIL_OF(n, dot, vn)                                                           \
    ((n) % (vn) <= (dot) && (n) - (n) % (vn) <= 2 * (vn) ? (n) % (vn) : 0)
#define AF_GEMM_ROWK_TAIL(ki, n) AF_GEMM_ROWK_TAIL_OF(n, (ki)->rowk_dot, (ki)->vn)

/* Rows of A that kernel_rows reads for a tile of mr <= MR rows: the shortest of its three tile
 * heights (MR / 3, 2 MR / 3, MR) that covers them. */
static inline size_t af_gemm_rows_read(size_t MR, size_t mr)
{
    return mr <= MR / 3 ? MR / 3 : mr <= 2 * MR / 3 ? 2 * MR / 3 : MR;
}

AF_GEMM_KINFO(float, f32)
AF_GEMM_KINFO(double, f64)

extern const af_gemm_kinfo_f32 af_gemm_generic_f32;
extern const af_gemm_kinfo_f64 af_gemm_generic_f64;
#if AF_GEMM_X86
extern const af_gemm_kinfo_f32 af_gemm_avx2_f32;
extern const af_gemm_kinfo_f64 af_gemm_avx2_f64;
extern const af_gemm_kinfo_f32 af_gemm_avx512_f32;
extern const af_gemm_kinfo_f64 af_gemm_avx512_f64;
#endif

/* op(B) packed once for many products with it (a recurrent kernel at every step of a pass): the
 * packed path's panels of op(B) (gemm_impl.h), K block after K block, each block all of op(B)'s
 * column panels. A product given it (af_gemm_prepacked) takes its panels from there instead of
 * packing op(B) at every call, on the path and with the operations af_gemm takes for the same
 * arguments, so with the same bits, except that it never splits K (af_gemm splits it for fewer
 * than AF_GEMM_KSPLIT_MAX_M rows and K over one block, packing B anew each time): its rows are
 * then those af_gemm gives with AF_GEMM_KSPLIT_MAX_M rows or more. It serves only the same op(B)
 * (b, ldb, tb, k, n) on the kernels that packed it (ki); otherwise the product packs as usual (and
 * may split). */
#define AF_GEMM_BPACK(T, SUF)                                                                       \
    typedef struct {                                                                                \
        const void *ki; /* the kernels that packed it; NULL: not packed */                          \
        const T *b;                                                                                 \
        size_t ldb, k, n;                                                                           \
        int tb;                                                                                     \
        const T *buf;                                                                               \
    } af_gemm_bpanels_##SUF;                                                                        \
    /* 1 when af_gemm_prepacked with these arguments takes the packed path, where op(B)'s panels \
     * packed before serve it (it reads op(B) there instead of packing it or reading full panels   \
     * in place: the same values, in the same order; and never splits K then). */                  \
    int af_gemm_takes_bpanels_##SUF(int ta, int tb, size_t m, size_t n, size_t k);                  \
    /* Pack op(B) (k x n) into buf of cap elements (p->ki NULL when it does not fit: products       \
     * then pack as usual). */                                                                      \
    void af_gemm_bpack_##SUF(af_gemm_bpanels_##SUF *p, int tb, size_t k, size_t n, const T *b,      \
                             size_t ldb, T *buf, size_t cap);                                       \
    /* af_gemm (no epilogue) reading op(B)'s panels from p where it serves. */                      \
    af_status af_gemm_prepacked_##SUF(int ta, int tb, size_t m, size_t n, size_t k, T alpha,        \
                                      const T *a, size_t lda, const T *b, size_t ldb,               \
                                      const af_gemm_bpanels_##SUF *p, T beta, T *c, size_t ldc);
AF_GEMM_BPACK(float, f32)
AF_GEMM_BPACK(double, f64)

/* Per-calling-thread packing workspace (gemm.c): at least `bytes`, 64-byte aligned, reused by
 * later calls from the same thread and freed when the thread exits. NULL if allocation fails. */
void *af_gemm_workspace(size_t bytes);

#endif
