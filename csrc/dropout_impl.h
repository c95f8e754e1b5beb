/* dropout_impl.h: dropout mask and apply for one dtype (included twice by dropout.c). */
#include "dtype_begin.h"

/* out[i] = (x ? x[i] : 1) * (keep_i ? scale : 0) for i in [lo, lo + len), keep_i from the bits. */
static void AF_FN(dropout_block)(uint64_t key, uint64_t thr, T scale, size_t lo, size_t len,
                                 const T *x, T *out)
{
    for (size_t i = lo; i < lo + len; i++) {
        uint64_t u = af_dropout_bits_k(key, (uint64_t)i) >> 11; /* top 53 bits */
        T keep = u >= thr ? scale : (T)0;
        out[i] = x ? x[i] * keep : keep;
    }
}

static af_status AF_FN(dropout_run)(size_t count, double rate, uint64_t seed, uint64_t step,
                                    const T *x, T *out)
{
    if (!dropout_rate_ok(rate)) return AF_EINVAL;
    if (count == 0) return AF_OK;
    if (!out) return AF_EINVAL;
    const uint64_t key = af_dropout_key(seed, step);
    const uint64_t thr = af_dropout_threshold(rate);
    const T scale = (T)(1.0 / (1.0 - rate)); /* inverted dropout: E[out] = x */
    const size_t blk = 8192;
    size_t nb = (count + blk - 1) / blk;
    int nt = (count >= AF_PAR_MIN / 4) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * blk;
        size_t len = count - lo < blk ? count - lo : blk;
        AF_FN(dropout_block)(key, thr, scale, lo, len, x, out);
    }
    return AF_OK;
}

af_status AF_FN(af_dropout_mask)(size_t count, double rate, uint64_t seed, uint64_t step, T *mask)
{
    return AF_FN(dropout_run)(count, rate, seed, step, NULL, mask);
}

af_status AF_FN(af_dropout_apply)(size_t count, double rate, uint64_t seed, uint64_t step,
                                  const T *x, T *y)
{
    if (count && !x) return AF_EINVAL;
    return AF_FN(dropout_run)(count, rate, seed, step, x, y);
}

#include "dtype_end.h"
