/* rng.h: the counter-based generator behind shuffling and dropout seeds (splitmix64). */
#ifndef AF_RNG_H
#define AF_RNG_H
#include <stddef.h>
#include <stdint.h>

/* splitmix64: the state advances by a constant; the output is a bijective mix of it. */
static inline uint64_t af_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Dropout seed of the node with rng_key k: the model seed mixed with k, so layers draw
 * independent masks (k is a layer's position in its model). */
static inline uint64_t af_layer_seed(uint64_t seed, uint64_t k)
{
    uint64_t st = seed ^ (0x2545F4914F6CDD1DULL * (k + 1));
    return af_splitmix64(&st);
}

/* The epoch's order: identity, then a Fisher-Yates shuffle driven by splitmix64 seeded from
 * (seed, key) only, so the order never depends on earlier calls (order.c). */
void af_shuffle_order(uint64_t seed, uint64_t key, size_t n, uint64_t *perm);

/* Shuffles x[0..n) in place with the swaps NumPy's legacy RandomState.shuffle makes on an array
 * of n integers, drawing from the caller's bit generator (next32/next64 on state: NumPy's
 * bitgen_t functions, so the stream and what it leaves behind are NumPy's own). For i = n-1 .. 1:
 * j = the first draw masked to the smallest all-ones mask >= i that is <= i (32-bit draws while
 * i < 2^32), then swap x[i], x[j]. Applied to any x it permutes x as shuffling arange(n) and
 * indexing x with the result would. */
void af_shuffle_like_numpy(uint64_t *x, size_t n, uint32_t (*next32)(void *),
                           uint64_t (*next64)(void *), void *state);

/* The same shuffle drawing from an MT19937 state held as NumPy's MT19937 bit generator holds it
 * (key[624] words, pos the next word to temper; pos == 624: regenerate first), advanced in
 * place, with the generator inlined (NumPy's next32 through a function pointer costs about 5 ns
 * a draw, most of a 1347-row epoch order). n < 2^32. The caller checks once that the layout is
 * NumPy's (annfast/_decode.pxi compares a few thousand draws) before handing it a state. */
void af_shuffle_mt19937(uint64_t *x, size_t n, uint32_t *key, int *pos);

#endif
