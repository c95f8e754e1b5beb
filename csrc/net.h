/* net.h: a feed-forward network described once to C, its losses, and whole training epochs.
 *
 * A network is an array of layers (Dense, BatchNormalization, Dropout) over ONE flat parameter
 * buffer (all trainable parameters of the model, contiguous) and one gradient buffer of the same
 * length, so one optimiser call (af_optim_step_*) updates the whole model. Non-trainable state
 * (batch-norm running mean/variance) lives in a third buffer, `stats`.
 *
 * Every activation, delta and scratch array a step needs lives in ONE caller-provided workspace
 * whose size af_net_workspace_size() returns for a given maximum batch size; the epoch, predict,
 * evaluate and gradient entry points never allocate. Row-major throughout; all buffers are of the
 * network's dtype (float for *_f32 entry points, double for *_f64).
 *
 * Loss convention (as Keras): the per-sample loss is the mean over outputs for mse, mae,
 * binary_crossentropy and hinge, and the sum over classes for the two categorical cross-entropies;
 * the reported loss is the mean over samples, plus the L1/L2 penalties of the Dense kernels
 * (l1 * sum |W| + l2 * sum W^2).
 */
#ifndef ANNFAST_NET_H
#define ANNFAST_NET_H

#include "annfast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- losses (loss.c) ----------------------------------------------------------------------- */
typedef enum {
    AF_LOSS_MSE = 0,
    AF_LOSS_MAE = 1,
    AF_LOSS_BCE = 2,   /* binary cross-entropy; targets in [0, 1] */
    AF_LOSS_CCE = 3,   /* categorical cross-entropy; one-hot (or probability) targets */
    AF_LOSS_SCCE = 4,  /* sparse categorical cross-entropy; targets are class indices (m x 1) */
    AF_LOSS_HINGE = 5, /* targets -1/+1 */
    AF_LOSS_COUNT = 6
} af_loss;

/* Clamp for probabilities fed to a logarithm when the loss is not computed from logits. */
#define AF_LOSS_EPS 1e-7

/* Per-sample loss and its gradient for an m x n block of predictions p (leading dimension ldp)
 * against targets y (m x n, or m x 1 class indices for SCCE; leading dimension ldy).
 * from_logits (BCE: p are sigmoid logits; CCE/SCCE: p are softmax logits) uses the fused, stable
 * forms  BCE = max(z,0) - z y + log1p(e^-|z|),  CE = logsumexp(z) - sum_j y_j z_j,  whose
 * gradients are sigmoid(z) - y and softmax(z) - y (no exp overflow, no log(0)).
 * row_loss (length m) and grad (m x n, leading dimension ldg; grad = scale * dloss_i/dp) may each
 * be NULL. Also accumulates, when the pointers are non-NULL, the metric sums
 *   *correct += per-sample accuracy (argmax match for CE or multi-output, thresholded match
 *                averaged over outputs for binary/hinge/single-output losses),
 *   *sse     += sum of squared errors between the predicted probabilities/values and y.
 * Returns AF_EINVAL for a class index outside [0, n) with SCCE. */
af_status af_loss_eval_f32(af_loss loss, int from_logits, size_t m, size_t n, const float *p,
                           size_t ldp, const float *y, size_t ldy, float scale, float *row_loss,
                           float *grad, size_t ldg, double *correct, double *sse);
af_status af_loss_eval_f64(af_loss loss, int from_logits, size_t m, size_t n, const double *p,
                           size_t ldp, const double *y, size_t ldy, double scale, double *row_loss,
                           double *grad, size_t ldg, double *correct, double *sse);

/* ---- network description ------------------------------------------------------------------- */
typedef enum { AF_LAYER_DENSE = 0, AF_LAYER_BATCHNORM = 1, AF_LAYER_DROPOUT = 2, AF_LAYER_COUNT = 3 }
    af_layer_kind;

typedef struct {
    af_layer_kind kind;
    size_t n_in, n_out;    /* BATCHNORM and DROPOUT: n_out == n_in */
    /* DENSE: y = act(x W + b), W (n_in x n_out) at params + w_off, b (n_out) at params + b_off. */
    af_act act;
    double act_param;      /* leaky_relu / elu alpha (>= 0) */
    int use_bias;
    size_t w_off, b_off;   /* BATCHNORM: gamma at w_off, beta at b_off (n_in each) */
    double l1, l2;         /* DENSE kernel penalties (>= 0) */
    /* BATCHNORM: running mean at stats + s_off, running variance at stats + s_off + n_in;
     * training updates them as r = momentum r + (1 - momentum) batch_stat (Keras convention). */
    size_t s_off;
    double momentum, eps;
    double rate;           /* DROPOUT: drop probability in [0, 1) (inverted dropout) */
} af_layer;

typedef struct {
    const af_layer *layers;
    size_t n_layers;
    size_t n_in;           /* input width; layers[0].n_in */
    af_loss loss;
    void *params;          /* n_params values of the network dtype */
    void *grads;           /* n_params values: filled by the step / af_net_gradients */
    void *stats;           /* n_stats values (BN running statistics) */
    size_t n_params, n_stats;
    double clipnorm;       /* > 0: scale the gradient to global L2 norm <= clipnorm; 0 = off */
    double clipvalue;      /* > 0: clip each gradient entry to [-clipvalue, clipvalue]; 0 = off */
    uint64_t seed;         /* dropout masks: bits depend on (seed, step, index) only */
} af_net;

/* Width of the target rows: 1 for SCCE, else the output width. */
size_t af_net_y_cols(const af_net *net);
/* Checks every layer (kinds, sizes chain, offsets inside the buffers, hyperparameter ranges). */
af_status af_net_check(const af_net *net);
/* Number of elements (of the network dtype) of the workspace for batches of up to max_batch rows
 * (the same for both dtypes; also valid when n_rows passed later is smaller). */
af_status af_net_workspace_size(const af_net *net, size_t max_batch, size_t *n_elems);

/* Per-epoch results of af_net_train_epoch_*. */
typedef struct {
    double loss_sum;   /* sum over samples of (per-sample loss + batch penalty) */
    double correct;    /* sum of per-sample accuracies (see af_loss_eval_*) */
    double sse;        /* sum of squared errors */
    size_t n_seen;     /* samples processed (all of them unless interrupted) */
    size_t n_batches;  /* optimiser steps taken */
} af_epoch_stats;

/* Row order of an epoch (the `shuffle` argument of af_net_train_epoch_*). */
enum {
    AF_ORDER_IDENTITY = 0,  /* rows in storage order */
    AF_ORDER_SHUFFLE = 1,   /* the engine's own seeded permutation, written to perm */
    AF_ORDER_GIVEN = 2      /* perm as the caller filled it (n row indices, each < n; repeats
                             * allowed), e.g. scikit-learn's draw order */
};

/* One epoch: order = identity, or (AF_ORDER_SHUFFLE) a Fisher-Yates permutation from splitmix64
 * seeded by (net->seed, shuffle_key) only (the Python model passes its step count at the epoch's
 * start, so a saved and reloaded model continues with the same orders), or (AF_ORDER_GIVEN) the
 * caller's perm, checked before any step; then for each mini-batch of `batch`
 * rows (the last one may be smaller): forward in training mode, loss gradient, backward, L1/L2,
 * clipping, af_optim_step with t = ++*step.
 * Only batches first_batch .. first_batch + max_batches - 1 run (0, SIZE_MAX: the whole epoch), so
 * a caller may split an epoch into slices to report progress; the order is computed by the call
 * with first_batch == 0 and kept in perm for the later slices of the same epoch.
 * perm: caller's buffer of n entries. ws: af_net_workspace_size(net, batch) elements.
 * Polls af_stop_requested() between batches and returns AF_EINTR with the parameters as left by
 * the last completed step (stats describes the completed batches). */
af_status af_net_train_epoch_f32(const af_net *net, float *ws, size_t ws_len, size_t n,
                                 const float *x, const float *y, size_t batch, int shuffle,
                                 uint64_t shuffle_key, size_t first_batch, size_t max_batches,
                                 const af_optim *opt, float *opt_state,
                                 uint64_t *step, uint64_t *perm, af_epoch_stats *out);
af_status af_net_train_epoch_f64(const af_net *net, double *ws, size_t ws_len, size_t n,
                                 const double *x, const double *y, size_t batch, int shuffle,
                                 uint64_t shuffle_key, size_t first_batch, size_t max_batches,
                                 const af_optim *opt, double *opt_state,
                                 uint64_t *step, uint64_t *perm, af_epoch_stats *out);

/* Inference-mode outputs (probabilities for softmax/sigmoid outputs) of n rows into out (n x
 * n_out), computed in chunks of up to `chunk` rows; ws sized for `chunk`. */
af_status af_net_predict_f32(const af_net *net, float *ws, size_t ws_len, size_t chunk, size_t n,
                             const float *x, float *out);
af_status af_net_predict_f64(const af_net *net, double *ws, size_t ws_len, size_t chunk, size_t n,
                             const double *x, double *out);

/* Inference-mode mean loss over n rows (+ penalties) into *loss, and the metric sums (may be
 * NULL) over the n rows. */
af_status af_net_evaluate_f32(const af_net *net, float *ws, size_t ws_len, size_t chunk, size_t n,
                              const float *x, const float *y, double *loss, double *correct,
                              double *sse);
af_status af_net_evaluate_f64(const af_net *net, double *ws, size_t ws_len, size_t chunk, size_t n,
                              const double *x, const double *y, double *loss, double *correct,
                              double *sse);

/* Exact gradient of the mean loss (+ penalties) over n rows into net->grads; *loss gets that value.
 * training == 0: inference mode (what af_net_evaluate computes), accumulated over chunks.
 * training == 1: training mode as one batch (chunk must be >= n): batch-norm batch statistics
 * (running statistics are NOT updated) and dropout masks of step `step`. No clipping. */
af_status af_net_gradients_f32(const af_net *net, float *ws, size_t ws_len, size_t chunk, size_t n,
                               const float *x, const float *y, int training, uint64_t step,
                               double *loss);
af_status af_net_gradients_f64(const af_net *net, double *ws, size_t ws_len, size_t chunk, size_t n,
                               const double *x, const double *y, int training, uint64_t step,
                               double *loss);

#ifdef __cplusplus
}
#endif
#endif
