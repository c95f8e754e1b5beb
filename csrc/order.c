/* order.c: the seeded row order of an epoch (Fisher-Yates over splitmix64). */
#include "rng.h"

/* Uniform integer in [0, bound) without modulo bias (Lemire's multiply-shift with rejection). */
static uint64_t bounded(uint64_t *st, uint64_t bound)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 m = (unsigned __int128)af_splitmix64(st) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t thr = (0 - bound) % bound;
        while (low < thr) {
            m = (unsigned __int128)af_splitmix64(st) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
#else
    uint64_t lim = UINT64_MAX - UINT64_MAX % bound, r;
    do r = af_splitmix64(st); while (r >= lim);
    return r % bound;
#endif
}

void af_shuffle_order(uint64_t seed, uint64_t key, size_t n, uint64_t *perm)
{
    uint64_t st = seed ^ (0xD1B54A32D192ED03ULL * (key + 1));
    af_splitmix64(&st);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    /* Fisher-Yates: for i = n-1 .. 1 swap perm[i] with perm[j], j uniform in [0, i]. */
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bounded(&st, i);
        uint64_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}
