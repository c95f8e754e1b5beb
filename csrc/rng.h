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

#endif
