/* dropout_kern_impl.h: the dropout block for ONE (ISA, dtype) pair, included by dropout_avx2.c /
 * dropout_avx512.c. Pairs of elements share one 64-bit hash (element 2k its high half, 2k + 1
 * its low half, as dropout.c defines); the hashes of a chunk of pairs are formed in one
 * vectorisable loop, rotated so that memory order puts the high half first (little-endian), and
 * read back as 32-bit draws by a second vectorisable loop. */
#include "dtype_begin.h"
#define KN(name) AF_FN(AF_CAT(AF_CAT(name, _), AF_DROPOUT_ISA))
#define PAIRS 64

static inline uint64_t KN(mix64)(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Global elements [lo, lo + len) (lo even); x and out point at global element lo. */
void KN(af_dropout_blk)(uint64_t key, uint32_t thr, T scale, uint64_t lo, size_t len, const T *x, T *out)
{
    uint64_t h[PAIRS];
    uint32_t d[2 * PAIRS];
    uint64_t p0 = lo >> 1;
    size_t npairs = (len + 1) / 2;
    for (size_t k0 = 0; k0 < npairs; k0 += PAIRS) {
        size_t n = npairs - k0 < PAIRS ? npairs - k0 : PAIRS, e = 2 * k0, m = 2 * n;
        for (size_t k = 0; k < n; k++) {
            uint64_t v = KN(mix64)(key + (p0 + k0 + k + 1) * 0x9e3779b97f4a7c15ULL);
            h[k] = (v << 32) | (v >> 32);
        }
        memcpy(d, h, n * sizeof(uint64_t));
        if (e + m > len) m = len - e;   /* an odd tail: its last element takes a high half */
        if (x) {
            for (size_t j = 0; j < m; j++) out[e + j] = x[e + j] * (d[j] >= thr ? scale : (T)0);
        } else {
            for (size_t j = 0; j < m; j++) out[e + j] = d[j] >= thr ? scale : (T)0;
        }
    }
}

#undef PAIRS
#undef KN
#include "dtype_end.h"
