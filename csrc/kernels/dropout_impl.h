/* dropout_impl.h: dropout mask and apply for one dtype (included twice by dropout.c). */
#include "dtype_begin.h"

/* keep_i = draw_i >= thr ? scale : 0;  out[i] = x[i] * keep_i  (or keep_i itself when x is NULL)
 * for i in [lo, lo + len); lo is even, so pairs never straddle blocks. */
/* Unsigned integer as wide as T, to select scale or 0 with a bit mask. */
#if defined(AF_DTYPE_F32)
typedef uint32_t AF_FN(dropout_uint);
#else
typedef uint64_t AF_FN(dropout_uint);
#endif

/* keep = draw >= thr ? scale : 0, branch-free: the scale's bit pattern ANDed with an all-ones or
 * all-zeros mask (a data-dependent branch on random bits would be mispredicted half the time,
 * and compilers turn the plain ternary into one). */
static inline T AF_FN(dropout_keep)(uint64_t draw, uint64_t thr, AF_FN(dropout_uint) scale_bits)
{
    AF_FN(dropout_uint) mask = (AF_FN(dropout_uint))0 - (AF_FN(dropout_uint))(draw >= thr);
    AF_FN(dropout_uint) bits = scale_bits & mask;
    T keep;
    memcpy(&keep, &bits, sizeof keep);
    return keep;
}

/* Element e of the call is global element base + e. For the global elements [lo, hi) (lo even,
 * or lo == base): out[e] = x[e] * keep(base + e), or keep itself when x is NULL. A pair 2k, 2k + 1
 * shares one hash (high half, low half); a block starting on an odd global index takes the low
 * half of its first pair alone. */
static void AF_FN(dropout_block)(uint64_t key, uint64_t thr, T scale, uint64_t base, uint64_t lo,
                                 uint64_t hi, const T *x, T *out)
{
    AF_FN(dropout_uint) sb;
    memcpy(&sb, &scale, sizeof sb);
    if (lo & 1) {
        T k1 = AF_FN(dropout_keep)(af_dropout_pair_hash(key, lo >> 1) & 0xffffffffULL, thr, sb);
        out[lo - base] = x ? x[lo - base] * k1 : k1;
        lo++;
    }
    /* from here the global index lo is even: element j of the block is global lo + j */
    const T *xb = x ? x + (lo - base) : NULL;
    T *ob = out + (lo - base);
    size_t i = 0, len = (size_t)(hi - lo), pair0 = (size_t)(lo >> 1);
    if (xb) {
        for (; i + 1 < len; i += 2) {
            uint64_t h = af_dropout_pair_hash(key, (uint64_t)(pair0 + (i >> 1)));
            ob[i] = xb[i] * AF_FN(dropout_keep)(h >> 32, thr, sb);
            ob[i + 1] = xb[i + 1] * AF_FN(dropout_keep)(h & 0xffffffffULL, thr, sb);
        }
    } else {
        for (; i + 1 < len; i += 2) {
            uint64_t h = af_dropout_pair_hash(key, (uint64_t)(pair0 + (i >> 1)));
            ob[i] = AF_FN(dropout_keep)(h >> 32, thr, sb);
            ob[i + 1] = AF_FN(dropout_keep)(h & 0xffffffffULL, thr, sb);
        }
    }
    if (i < len) {
        T k0 = AF_FN(dropout_keep)(af_dropout_pair_hash(key, (uint64_t)(pair0 + (i >> 1))) >> 32, thr, sb);
        ob[i] = xb ? xb[i] * k0 : k0;
    }
}

/* Global elements [base, base + count) in blocks aligned on multiples of blk global elements,
 * in parallel: the result depends on (seed, step, global index) only. */
static af_status AF_FN(dropout_run)(size_t count, double rate, uint64_t seed, uint64_t step,
                                    uint64_t base, const T *x, T *out)
{
    AF_FP_SCOPE();
    if (!dropout_rate_ok(rate)) return AF_EINVAL;
    if (count == 0) return AF_OK;
    if (!out || base > UINT64_MAX - count) return AF_EINVAL;
    const uint64_t key = af_dropout_key(seed, step);
    const uint64_t thr = af_dropout_threshold(rate);
    const T scale = (T)(1.0 / (1.0 - rate)); /* inverted dropout: E[out] = x */
    const uint64_t blk = 8192, end = base + count, b0 = base / blk;
    size_t nb = (size_t)((end - 1) / blk - b0 + 1);
    /* threads from 128k elements: the vectorised blocks take ~0.3 ns per element, and a parallel
     * region costs more than a smaller call when the cores are shared */
    int nt = (count >= 4 * AF_PAR_MIN) ? af_get_num_threads() : 1;
    (void)nt;
    /* the vectorised block of the path in use (dropout_kern_impl.h; NULL on the generic path):
     * the same masks */
    void (*vblk)(uint64_t, uint32_t, T, uint64_t, size_t, const T *, T *) =
        AF_FN(af_kern)()->dropout_blk;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < nb; b++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        uint64_t lo = (b0 + b) * blk, hi = lo + blk;
        if (lo < base) lo = base;
        if (hi > end) hi = end;
        /* the vectorised block starts on a pair (even global index); a piece starting on an odd
         * one takes its first block on the scalar path (same masks) */
        if (vblk && !(lo & 1))
            vblk(key, (uint32_t)thr, scale, lo, (size_t)(hi - lo), x ? x + (lo - base) : NULL,
                 out + (lo - base));
        else
            AF_FN(dropout_block)(key, thr, scale, base, lo, hi, x, out);
    }
    return AF_OK;
}

af_status AF_FN(af_dropout_mask)(size_t count, double rate, uint64_t seed, uint64_t step, T *mask)
{
    return AF_FN(dropout_run)(count, rate, seed, step, 0, NULL, mask);
}

af_status AF_FN(af_dropout_mask_at)(size_t count, double rate, uint64_t seed, uint64_t step,
                                    uint64_t base, T *mask)
{
    return AF_FN(dropout_run)(count, rate, seed, step, base, NULL, mask);
}

af_status AF_FN(af_dropout_apply)(size_t count, double rate, uint64_t seed, uint64_t step,
                                  const T *x, T *y)
{
    if (count && !x) return AF_EINVAL;
    return AF_FN(dropout_run)(count, rate, seed, step, 0, x, y);
}

af_status AF_FN(af_dropout_apply_at)(size_t count, double rate, uint64_t seed, uint64_t step,
                                     uint64_t base, const T *x, T *y)
{
    if (count && !x) return AF_EINVAL;
    return AF_FN(dropout_run)(count, rate, seed, step, base, x, y);
}

#include "dtype_end.h"
