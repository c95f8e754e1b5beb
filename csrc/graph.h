/* graph.h: a network as a graph of layer nodes, planned once, trained a whole epoch per call.
 *
 * A graph is an array of af_node (layer.h) over ONE flat parameter buffer, one gradient buffer of
 * the same length and one statistics buffer (batch-norm running mean/variance), so one optimiser
 * call updates the whole model. Graph inputs are nodes of kind "input"; outputs are node indices,
 * each with a loss.
 *
 * af_plan_create checks the graph once (inputs before use, no cycle, shapes through each kind's
 * infer, slices inside the buffers) and computes a topological order and the offset of every
 * node's output, kept-for-backward and delta regions in ONE caller-provided workspace for batches
 * of up to max_batch samples. The epoch, predict, evaluate and gradient entry points then never
 * allocate. One call at a time per plan (the Python model serialises its calls).
 *
 * Loss convention (as Keras): an output of per-sample shape (p..., n) is p = prod(p...) rows of n
 * values; the per-row loss is the mean over the n values for mse, mae, binary_crossentropy and
 * hinge, and the sum over classes for the categorical cross-entropies; a sample's loss is the mean
 * over its p rows; the reported loss is the mean over samples of the weighted sum over outputs,
 * plus the L1/L2 penalties. Targets have the output's shape, or (p...) class indices for the
 * sparse categorical cross-entropy.
 */
#ifndef AF_GRAPH_H
#define AF_GRAPH_H
#include "layer.h"
#include "loss.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AF_MAX_IO 8            /* graph inputs and outputs */

typedef struct {
    af_node *nodes;
    size_t n_nodes;
    size_t n_inputs, n_outputs;
    size_t inputs[AF_MAX_IO];        /* node indices of the graph inputs, in the data's order */
    size_t outputs[AF_MAX_IO];       /* node indices of the outputs */
    af_loss losses[AF_MAX_IO];       /* per output */
    double loss_weights[AF_MAX_IO];  /* per output, >= 0 */
    void *params, *grads, *stats;    /* n_params, n_params, n_stats values of the float type */
    size_t n_params, n_stats;
    double clipnorm;                 /* > 0: scale the gradient to global L2 norm <= clipnorm */
    double clipvalue;                /* > 0: clip each gradient entry to [-clipvalue, clipvalue] */
    uint64_t seed;                   /* dropout masks: (seed, node rng_key, step, index) only */
    af_reduce_fn reduce;             /* data-parallel sums (NULL: one process) */
    void *reduce_ctx;
} af_graph;

typedef struct af_plan af_plan;

enum { AF_F32 = 0, AF_F64 = 1 };
/* Plan options. */
enum {
    AF_PLAN_INPUT_GRADS = 1          /* keep dL/dx for the float graph inputs (af_plan_input_grad) */
};

/* Checks g and plans a workspace for batches of up to max_batch samples of dtype AF_F32/AF_F64.
 * On failure *out is NULL and, if err_node is not NULL, *err_node is the index of the node that
 * failed (SIZE_MAX when the fault is not a node's). */
af_status af_plan_create(const af_graph *g, size_t max_batch, int dtype, unsigned options,
                         af_plan **out, size_t *err_node);
void af_plan_free(af_plan *p);
size_t af_plan_ws_len(const af_plan *p);             /* elements of the float type */
size_t af_plan_max_batch(const af_plan *p);
/* What infer found for node i (SIZE_MAX-checked: AF_EINVAL for a bad index). */
af_status af_plan_node_info(const af_plan *p, size_t i, af_node_info *info);
/* Per-sample shape of the targets of output o (class indices for sparse CE). */
af_status af_plan_target_shape(const af_plan *p, size_t o, af_shape *s);

/* How sample weights normalise a batch's loss (af_data.sw). */
enum {
    AF_SW_BATCH = 0,    /* sum_i w_i l_i / B  (Keras: sum over the batch size) */
    AF_SW_SUM = 1       /* sum_i w_i l_i / sum_i w_i, and the penalty scaled by B / sum_i w_i
                         * (scikit-learn's MLP: its whole objective over the weight sum) */
};

/* The data of one call: n samples; x[i] for graph input i (n x input shape, float type or
 * int32), y[o] for output o (n x target shape, float type; may be NULL for predict); sw: n
 * sample weights (float type, finite, >= 0) or NULL (all 1), normalised as sw_norm says. */
typedef struct {
    size_t n;
    const void *x[AF_MAX_IO];
    const void *y[AF_MAX_IO];
    const void *sw;
    int sw_norm;
} af_data;

/* Row order of an epoch. */
enum {
    AF_ORDER_IDENTITY = 0,  /* rows in storage order */
    AF_ORDER_SHUFFLE = 1,   /* the engine's own seeded permutation, written to perm */
    AF_ORDER_GIVEN = 2      /* perm as the caller filled it (n row indices, each < n; repeats
                             * allowed), e.g. scikit-learn's draw order */
};

typedef struct {
    size_t batch;           /* samples per step (the last may be smaller); <= plan max_batch */
    int order;              /* AF_ORDER_* */
    uint64_t shuffle_key;   /* AF_ORDER_SHUFFLE: the order depends on (seed, key) only */
    size_t first_batch;     /* run batches first_batch .. first_batch + max_batches - 1 */
    size_t max_batches;     /* (0, SIZE_MAX: the whole epoch); the order is computed by the call
                             * with first_batch == 0 and kept in perm for later slices */
    uint64_t *perm;         /* n entries (AF_ORDER_SHUFFLE / GIVEN) */
} af_epoch_args;

/* Per-epoch (or per-call) sums. */
typedef struct {
    double loss_sum;                 /* sum over samples of (weighted loss + batch penalty) */
    double out_loss[AF_MAX_IO];      /* sum over samples of each output's own loss */
    double correct[AF_MAX_IO];       /* per output: sum of per-sample accuracies */
    double sse[AF_MAX_IO];           /* per output: sum of squared errors */
    size_t n_seen;                   /* samples processed (all of them unless interrupted) */
    size_t n_batches;                /* optimiser steps taken */
} af_epoch_stats;

/* One epoch: for each mini-batch in the chosen order: forward in training mode, losses and their
 * gradients, backward, L1/L2 penalties, clipping, af_optim_step with t = ++*step. Polls
 * af_stop_requested() between batches and returns AF_EINTR with the parameters of the last
 * completed step. ws: af_plan_ws_len(p) elements. */
af_status af_graph_train_epoch_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                   const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                   float *opt_state, uint64_t *step, af_epoch_stats *out);
af_status af_graph_train_epoch_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                   const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                   double *opt_state, uint64_t *step, af_epoch_stats *out);

/* Inference-mode outputs (probabilities for softmax/sigmoid outputs) of the n samples into
 * out[o] (n x output shape), in chunks of the plan's max_batch. */
af_status af_graph_predict_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                               const af_data *d, float *const *out);
af_status af_graph_predict_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                               const af_data *d, double *const *out);

/* Inference-mode loss over the n samples (mean, + penalties) and the per-output sums. */
af_status af_graph_evaluate_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                const af_data *d, double *loss, af_epoch_stats *sums);
af_status af_graph_evaluate_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                const af_data *d, double *loss, af_epoch_stats *sums);

/* Exact gradient of the mean loss (+ penalties) over the n samples into g->grads; *loss gets that
 * value. training == 0: inference mode, accumulated over chunks of max_batch. training == 1:
 * training mode as ONE batch (n <= max_batch): batch statistics (running statistics NOT updated)
 * and the dropout masks of step `step`. No clipping. With AF_PLAN_INPUT_GRADS, the gradient with
 * respect to each float graph input is then in af_plan_input_grad (training == 1 only). */
af_status af_graph_gradients_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                 const af_data *d, int training, uint64_t step, double *loss);
af_status af_graph_gradients_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                 const af_data *d, int training, uint64_t step, double *loss);
/* Offset (in elements of ws) of dL/dx for graph input i after af_graph_gradients (training).
 * AF_EINVAL when the plan keeps none. */
af_status af_plan_input_grad(const af_plan *p, size_t i, size_t *offset);

/* Names of the kinds, activations and losses (NULL past the end), for the Python side. */
const char *af_layer_kind_name(size_t i);
const char *af_act_name(size_t i);
const char *af_loss_name(size_t i);

#ifdef __cplusplus
}
#endif
#endif
