/* rnn.h: the configuration and buffer layout of the recurrent kind (rnn.c, rnn_impl.h). */
#ifndef AF_LAYER_RNN_H
#define AF_LAYER_RNN_H
#include <stddef.h>
#include <stdint.h>

#include "rnn_cell.h"

enum { AF_MERGE_CONCAT = 0, AF_MERGE_SUM = 1, AF_MERGE_MUL = 2, AF_MERGE_AVE = 3 };

typedef struct {
    int cell;                 /* af_rnn_cell */
    int64_t units;            /* H */
    int act, rec_act;         /* af_act: activation (tanh), recurrent_activation (sigmoid) */
    int use_bias;
    int return_sequences;     /* output every step (else the last state) */
    int return_state;         /* the output also packs the final states (see rnn.c) */
    int go_backwards;         /* process the steps last to first */
    int bidirectional;        /* a second direction, going the other way; outputs merged */
    int merge;                /* AF_MERGE_*: how the two directions' outputs combine */
    int mask;                 /* input 1 is a (steps,) mask */
    int initial_state;        /* the last inputs are the initial states */
    double dropout;           /* of the inputs, one mask per sample and feature for all steps */
    double recurrent_dropout; /* of h_{t-1} in the recurrent product, likewise */
} af_rnn_cfg;

/* Sizes and offsets for a batch of B samples, in elements of the float type. aux (kept from
 * forward to backward) and scratch each hold one block per direction, d * *_dir + offset. */
typedef struct {
    size_t B, NT, F, H, G, GH, D;   /* NT: steps */
    size_t S;                 /* states per direction: 2 for lstm (h, c), else 1 */
    size_t nsb;               /* sample blocks per direction (the independent work items) */
    size_t n_per;             /* parameters per direction */
    size_t seq_len, out_len;  /* per sample: the sequence (or last-step) part, the whole output */
    size_t hout;              /* width of one merged step: 2H for concat, else H */
    /* aux, per direction */
    size_t aux_dir, a_gate, a_hp, a_c, a_rn, a_ys, a_lh, a_lc, a_xd, a_mx, a_hd, a_mh;
    /* scratch, per direction, then shared */
    size_t scr_dir, s_rec, s_gh, s_gc, s_tmp, s_dummy, s_ut, s_gy, s_bias, s_priv, priv_stride;
    size_t s_pk, pk_len;      /* U or U^T packed once per pass for the step GEMMs (rnn_prepack) */
    size_t s_zero, s_dx, s_sum, scr_total;
} af_rnn_layout;

#endif
