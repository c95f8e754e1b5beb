/* act_colsum_impl.h: see af_act_back_colsum_* in internal.h (included twice by act_colsum.c). */
#include "dtype_begin.h"

void AF_FN(af_act_back_colsum)(af_act act, T p, size_t m, size_t n, const T *z, const T *y, T *d,
                               T *db, T alpha, int acc)
{
    int nt = (m * n >= AF_PAR_MIN_PASS) ? af_get_num_threads() : 1;
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
    const T *x = af_act_needs_input(act) ? z : y;
    size_t nblk = (n + AF_COL_BLOCK - 1) / AF_COL_BLOCK;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t jb = 0; jb < nblk; jb++) {
        AF_FP_SCOPE();
        size_t j0 = jb * AF_COL_BLOCK, w = n - j0 < AF_COL_BLOCK ? n - j0 : AF_COL_BLOCK, j;
        T sum[AF_COL_BLOCK];
        for (j = 0; j < w; j++) sum[j] = 0;
        for (size_t i = 0; i < m; i++) {
            const T *xi = x + i * n + j0, *yi = y + i * n + j0;
            T *di = d + i * n + j0;
            if (act == AF_ACT_RELU) {
                /* PyTorch's threshold_backward: a NaN activation passes d (act_kern_impl.h) */
                for (j = 0; j < w; j++) di[j] = yi[j] <= 0 ? (T)0 : di[j];
            } else if (act != AF_ACT_LINEAR) {
                AF_FN(af_act_row_backward)(act, p, w, xi, yi, di, di);
            }
            for (j = 0; j < w; j++) sum[j] += di[j];
        }
        if (db) {
            if (acc) for (j = 0; j < w; j++) db[j0 + j] += alpha * sum[j];
            else for (j = 0; j < w; j++) db[j0 + j] = alpha * sum[j];
        }
    }
}

void AF_FN(af_copy_add)(size_t n, const T *src, T *dst, int acc)
{
    if (!acc) {
        if (src != dst) memcpy(dst, src, n * sizeof(T));
        return;
    }
    int nt = n >= AF_PAR_MIN_PASS ? af_get_num_threads() : 1;
    (void)nt;
    /* the flushing scope once per thread: per element, reading MXCSR would cost more than the
     * add and keep the loop from being vectorised */
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        #pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) dst[i] += src[i];
    }
}

#include "dtype_end.h"
