/* decode.h: greedy decoding of a sequence-to-sequence graph (decode.c).
 *
 * The graph has an int32 input of per-sample shape (T) holding the decoder's tokens (the
 * shifted target in training: start token, then the target's tokens) and an output of shape
 * (T x V) scoring the next token at each position. Decoding writes the start token at position
 * 0, then for pos = 0, 1, ..., max_len - 1 takes the highest-scoring token at pos as the output
 * and, if pos + 1 < T, as the decoder's input at pos + 1.
 *
 * Nodes that do not depend on the decoder input (the encoder) run once per batch. The others run
 * either
 *   incrementally: one position per step, each node through ops->step (attention keeps the keys
 *     and values of earlier positions in its cache) or, for AF_OP_POSITIONWISE kinds, forward
 *     on that position alone; the whole prefix is never recomputed; or
 *   by recomputing: forward over all T positions at every step (any graph whose outputs at
 *     position pos do not depend on later inputs, e.g. with recurrent layers).
 * AF_DECODE_AUTO picks incremental decoding when every decoder node supports it.
 * Inference mode throughout (no dropout); batches of up to the plan's max_batch samples. */
#ifndef AF_DECODE_H
#define AF_DECODE_H
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { AF_DECODE_AUTO = 0, AF_DECODE_RECOMPUTE = 1 };

typedef struct {
    size_t target_input;     /* graph input holding the decoder's tokens (int32, shape (T)) */
    size_t output;           /* graph output scoring the tokens (shape (T x V)) */
    int32_t start_token;
    int32_t end_token;       /* < 0: none; else once emitted, every later token is end_token */
    size_t max_len;          /* 1 <= max_len <= T */
    int mode;                /* AF_DECODE_AUTO or AF_DECODE_RECOMPUTE */
} af_decode_args;

/* Elements of the float type the caches of incremental decoding need (the plan's batch size). */
size_t af_plan_cache_len(const af_plan *p);

/* 1 if the graph decodes incrementally for these arguments (AF_DECODE_AUTO), else 0;
 * AF_EINVAL / AF_ESHAPE if the arguments do not fit the graph. */
af_status af_graph_decode_check(const af_graph *g, const af_plan *p, const af_decode_args *da,
                                int *incremental);

/* Greedy decoding of d->n samples (d->x[target_input] is ignored). tgt: n x T int32 work space
 * (the decoder inputs, filled as decoding goes); tokens: n x max_len output; scores: NULL, or
 * n x max_len x V outputs (the output node's values at each decoded position: probabilities
 * for a softmax output). *incremental gets the mode used. AF_EINTR when a stop was requested
 * (between two positions). */
af_status af_graph_greedy_decode_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                     float *cache, size_t cache_len, const af_data *d,
                                     const af_decode_args *da, int32_t *tgt, int32_t *tokens,
                                     float *scores, int *incremental);
af_status af_graph_greedy_decode_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                     double *cache, size_t cache_len, const af_data *d,
                                     const af_decode_args *da, int32_t *tgt, int32_t *tokens,
                                     double *scores, int *incremental);

#ifdef __cplusplus
}
#endif
#endif
