/* finite_impl.h: all-finite scan of a strided m x n block, one dtype (included by finite.c). */
#include "dtype_begin.h"

int AF_FN(af_all_finite)(size_t m, size_t n, const T *a, size_t lda)
{
    AF_FP_SCOPE();
    if (!a || m == 0 || n == 0) return 1;
    if (lda == n) { /* contiguous rows: one long row (short rows cost a loop set-up each) */
        n *= m;
        m = 1;
    }
    for (size_t i = 0; i < m; i++) {
        const T *r = a + i * lda;
        /* x - x is 0 for finite x and NaN for inf/NaN, and NaN != 0. OR-ing the comparisons is
         * associative, so the loop vectorises (a floating-point sum would not, without fast-math). */
        int bad = 0;
        for (size_t j = 0; j < n; j++) bad |= (r[j] - r[j]) != 0;
        if (bad) return 0;
    }
    return 1;
}

#include "dtype_end.h"
