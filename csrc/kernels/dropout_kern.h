/* dropout_kern.h: the dropout block of dropout_impl.h vectorised per ISA (dropout_avx2.c,
 * dropout_avx512.c): the same masks as the scalar block, bit for bit. Internal. */
#ifndef AF_DROPOUT_KERN_H
#define AF_DROPOUT_KERN_H
#include <stddef.h>
#include <stdint.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define AF_DROPOUT_X86 1
#else
#define AF_DROPOUT_X86 0
#endif

/* out[i] = x[i] * keep_{lo+i} (keep itself when x is NULL) for i in [0, len): x and out point at
 * global element lo (even), whose draw is that of pair lo / 2;
 * keep_i = draw_i >= thr ? scale : 0 (see dropout.c for the draws). */
#define AF_DROPOUT_DECLARE(ISA)                                                                    \
    void af_dropout_blk_##ISA##_f32(uint64_t key, uint32_t thr, float scale, uint64_t lo, size_t len, \
                                    const float *x, float *out);                                   \
    void af_dropout_blk_##ISA##_f64(uint64_t key, uint32_t thr, double scale, uint64_t lo,           \
                                    size_t len, const double *x, double *out);
#if AF_DROPOUT_X86
AF_DROPOUT_DECLARE(avx2)
AF_DROPOUT_DECLARE(avx512)
#endif
#endif
