/* act_colsum_impl.h: see af_act_back_colsum_* in internal.h (included twice by act_colsum.c). */
#include "dtype_begin.h"

/* The column pass as a pool job: chunk t takes a range of whole blocks of AF_COL_BLOCK columns,
 * each summed over all rows in order, so which thread takes a block never changes its bits. */
typedef struct {
    af_act act;
    T p, alpha;
    size_t m, n, nch;
    const T *x, *y;
    T *d, *db;
    int acc;
} AF_FN(colsum_job);

/* One block of columns [j0, j0 + w): d = f'(.) d in place, then db = alpha sum_rows d (+ db).
 * By groups of AF_COLSUM_ROWS rows: their derivative, then the ISA's column sum (rows.h) adds
 * them to the sums while they are in L1 (each column in row order: the same bits as one pass). */
#define AF_COLSUM_ROWS 16
static void AF_FN(colsum_block)(const AF_FN(colsum_job) *jb, size_t j0, size_t w)
{
    const size_t n = jb->n;
    const af_act act = jb->act;
    void (*colsum)(size_t, size_t, const T *, size_t, T *) = AF_FN(af_kern)()->rows->colsum;
    T sum[AF_COL_BLOCK] = {0};
    size_t j;
    for (size_t i0 = 0; i0 < jb->m; i0 += AF_COLSUM_ROWS) {
        size_t i1 = jb->m - i0 < AF_COLSUM_ROWS ? jb->m : i0 + AF_COLSUM_ROWS;
        for (size_t i = i0; i < i1; i++) {
            const T *xi = jb->x + i * n + j0, *yi = jb->y + i * n + j0;
            T *di = jb->d + i * n + j0;
            if (act == AF_ACT_RELU) {
                /* PyTorch's threshold_backward: a NaN activation passes d (act_kern_impl.h) */
                for (j = 0; j < w; j++) di[j] = yi[j] <= 0 ? (T)0 : di[j];
            } else if (act != AF_ACT_LINEAR) {
                AF_FN(af_act_row_backward)(act, jb->p, w, xi, yi, di, di);
            }
        }
        if (jb->db) colsum(i1 - i0, w, jb->d + i0 * n + j0, n, sum);
    }
    if (jb->db) {
        if (jb->acc) for (j = 0; j < w; j++) jb->db[j0 + j] += jb->alpha * sum[j];
        else for (j = 0; j < w; j++) jb->db[j0 + j] = jb->alpha * sum[j];
    }
}

static void AF_FN(colsum_chunk)(void *ctx, size_t t, size_t slot)
{
    (void)slot;
    const AF_FN(colsum_job) *j = (const AF_FN(colsum_job) *)ctx;
    size_t nblk = (j->n + AF_COL_BLOCK - 1) / AF_COL_BLOCK;
    for (size_t b = nblk * t / j->nch; b < nblk * (t + 1) / j->nch; b++) {
        size_t j0 = b * AF_COL_BLOCK;
        AF_FN(colsum_block)(j, j0, j->n - j0 < AF_COL_BLOCK ? j->n - j0 : AF_COL_BLOCK);
    }
}

void AF_FN(af_act_back_colsum)(af_act act, T p, size_t m, size_t n, const T *z, const T *y, T *d,
                               T *db, T alpha, int acc)
{
    int nt = m * n >= AF_PAR_MIN_PASS ? af_get_num_threads() : 1;
    (void)nt;
    if (act == AF_ACT_SOFTMAX) {
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h), once per thread */
            #pragma omp for schedule(static)
            for (size_t i = 0; i < m; i++)
                AF_FN(af_act_row_backward)(act, p, n, y + i * n, y + i * n, d + i * n, d + i * n);
        }
        act = AF_ACT_LINEAR;
    }
    if (act == AF_ACT_LINEAR && !db) return;
    /* on the pool from AF_PAR_MIN_COLS values (1.7-6% off a 784-512x3-10 residual step at batch
     * 128-256 on 2 threads, against an OpenMP loop from 4x that) */
    int pt = colsum_threads(m * n);
    size_t nblk = (n + AF_COL_BLOCK - 1) / AF_COL_BLOCK;
    size_t nch = pt > 1 && nblk > 1 ? (nblk < (size_t)pt ? nblk : (size_t)pt) : 1;
    AF_FN(colsum_job) job = {act, p, alpha, m, n, nch, af_act_needs_input(act) ? z : y, y, d, db, acc};
    af_pool_run(AF_FN(colsum_chunk), &job, job.nch, pt);
}

/* The elementwise passes below as a pool job: chunk t takes elements [n t / nch, n (t + 1) / nch)
 * rounded to 16 (a 64-byte line of floats): each element's result is the same whichever
 * thread computes it. op 0: y = a (a copy); 1: y += a; 2: y = a + b. */
typedef struct {
    int op;
    size_t n, nch;
    const T *a, *b;
    T *y;
} AF_FN(elem_job);

static void AF_FN(elem_chunk)(void *ctx, size_t t, size_t slot)
{
    (void)slot;
    const AF_FN(elem_job) *j = (const AF_FN(elem_job) *)ctx;
    size_t i0 = j->n * t / j->nch / 16 * 16, i1 = t + 1 == j->nch ? j->n : j->n * (t + 1) / j->nch / 16 * 16;
    const T *a = j->a, *b = j->b;
    T *y = j->y;
    if (j->op == 0) memcpy(y + i0, a + i0, (i1 - i0) * sizeof(T));
    else if (j->op == 1) for (size_t i = i0; i < i1; i++) y[i] += a[i];
    else for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
}

/* The memory-bound passes of a step (a residual block's Add, forward and backward) on the
 * pool's threads from AF_PAR_MIN_COLS elements, never in an OpenMP region of their own. */
static void AF_FN(elem_run)(int op, size_t n, const T *a, const T *b, T *y)
{
    AF_FP_SCOPE(); /* the calling thread's part flushes subnormals as the pool's workers do */
    int pt = colsum_threads(n);
    AF_FN(elem_job) job = {op, n, pt > 1 ? (size_t)pt : 1, a, b, y};
    af_pool_run(AF_FN(elem_chunk), &job, job.nch, pt);
}

void AF_FN(af_copy_add)(size_t n, const T *src, T *dst, int acc)
{
    if (!acc && src == dst) return;
    AF_FN(elem_run)(acc ? 1 : 0, n, src, NULL, dst);
}

void AF_FN(af_sum2)(size_t n, const T *a, const T *b, T *y)
{
    AF_FN(elem_run)(2, n, a, b, y);
}

#include "dtype_end.h"
