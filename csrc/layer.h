/* layer.h: the operator table every layer kind fills in, and the node a graph is made of.
 *
 * A layer kind (dense, batchnorm, conv2d, lstm, ...) is one file under csrc/layers/ that defines
 * a config struct, a field table describing it, and one af_layer_ops row:
 *
 *   infer     per-sample output shape from the input shapes, parameter / statistics counts,
 *             an optional L1/L2-penalised parameter range, checks of the configuration;
 *   sizes     elements kept for backward (aux, per node) and temporary scratch (shared by all
 *             nodes, one node runs at a time) for a given batch size;
 *   forward   y = f(x...; params), float and double;
 *   backward  from dL/dy: parameter gradients into `grad` and, where asked, dL/dx ADDED into
 *             (or written to) each input's delta.
 *
 * The driver (engine_impl.h) never looks at the kind: it walks the nodes in topological order
 * calling these. Shapes are per sample (the batch dimension is implicit and leads every buffer);
 * every tensor is contiguous, row-major. The graph API users call is in graph.h.
 */
#ifndef AF_LAYER_H
#define AF_LAYER_H
#include <stddef.h>
#include <stdint.h>

#include "annfast.h"

#define AF_MAX_RANK 4          /* per-sample rank: (h, w, c) images, (t, f) sequences, ... */
#define AF_MAX_INPUTS 8        /* inputs of one node (Add of many, attention's q, k, v, mask) */
#define AF_MAX_FIELDS 24
#define AF_FIELD_MAX_INTS 4    /* AF_FIELD_INTS fields hold up to this many integers */

/* Element types a tensor may hold: the network's float type, or int32 (token ids). */
typedef enum { AF_ELEM_FLOAT = 0, AF_ELEM_INT32 = 1 } af_elem;

/* Per-sample shape: rank 0 is a scalar per sample. */
typedef struct {
    int rank;
    size_t dim[AF_MAX_RANK];
    af_elem elem;
} af_shape;

size_t af_shape_size(const af_shape *s);    /* product of the dims (1 for rank 0) */
size_t af_shape_last(const af_shape *s);    /* last dim (1 for rank 0) */

/* ---- configuration fields -------------------------------------------------------------------
 * A field table lets the Cython builder set a kind's config struct by name (unknown names and
 * out-of-range values are rejected there, naming the layer, the key and the range) without any
 * per-kind code outside the kind's own file. */
typedef enum {
    AF_FIELD_INT = 0,     /* int64_t in [lo, hi] */
    AF_FIELD_REAL = 1,    /* double in [lo, hi] (finite) */
    AF_FIELD_BOOL = 2,    /* int, 0 or 1 */
    AF_FIELD_ENUM = 3,    /* int: index into `names` (Python passes the name) */
    AF_FIELD_INTS = 4     /* int64_t[AF_FIELD_MAX_INTS] plus an int64_t count right before it; each
                           * value in [lo, hi], count in [1, AF_FIELD_MAX_INTS] */
} af_field_type;

typedef struct {
    const char *name;          /* as Python spells the keyword */
    af_field_type type;
    size_t offset;             /* offsetof(config struct, member) */
    double lo, hi;             /* allowed range (INT, REAL, INTS) */
    const char *const *names;  /* ENUM: NULL-terminated list of names */
} af_field;

/* ---- nodes ------------------------------------------------------------------------------- */
struct af_layer_ops;

typedef struct af_node {
    const struct af_layer_ops *ops;
    void *cfg;                       /* the kind's config struct (ops->cfg_size bytes) */
    size_t n_inputs;
    size_t inputs[AF_MAX_INPUTS];    /* indices of the nodes feeding this one, in order */
    size_t param_off, stat_off;      /* this node's slices of the flat params / stats */
    uint64_t rng_key;                /* mixed with the graph seed for this node's dropout masks */
} af_node;

/* What infer reports about a node. */
typedef struct {
    af_shape out;                    /* per-sample output shape */
    size_t n_params, n_stats;        /* lengths of the node's slices */
    /* L1/L2 penalty l1 sum|p| + l2 sum p^2 over params[pen_off, pen_off + pen_len) of the node */
    size_t pen_off, pen_len;
    double l1, l2;
    /* The activation this node ends with, when a loss may take its input instead (softmax with
     * categorical cross-entropy, sigmoid with binary): AF_ACT_LINEAR otherwise. */
    af_act final_act;
} af_node_info;

/* Sizes for a batch of B samples, in elements of the network's float type. */
typedef struct {
    size_t aux;                      /* kept from forward to backward */
    size_t scratch;                  /* temporary, shared between nodes */
    /* Doubles of sums over the samples that a training pass of this kind needs when the batch is
     * split into pieces (split.h): batch norm's row count, per-feature sums and sums of squares.
     * 0 (the default) for kinds whose output for a sample depends on that sample alone. */
    size_t sums;
    size_t cache;                    /* kept across the steps of an incremental decode (step) */
} af_node_sizes;

/* Phases of a kind with sums (sizes.sums > 0) in a split batch; see af_op_args.sums_phase. */
enum { AF_SUMS_NONE = 0, AF_SUMS_PARTIAL = 1, AF_SUMS_TOTAL = 2 };

/* Everything a forward or backward call sees. Pointers are to the network's float type (float
 * for the _f32 entry, double for _f64) unless the shape says int32. */
typedef struct {
    const af_node *node;
    const void *cfg;
    size_t batch;                          /* B: samples in this call */
    size_t n_in;
    const af_shape *in_shape;              /* [n_in] */
    const af_shape *out_shape;
    const void *x[AF_MAX_INPUTS];          /* inputs, each B x in_shape */
    void *y;                               /* output, B x out_shape */
    void *aux;                             /* sizes.aux elements, kept for backward */
    void *scratch;                         /* sizes.scratch elements */
    void *param;                           /* params + node->param_off (NULL if none) */
    void *stat;                            /* stats + node->stat_off (NULL if none) */
    int training;                          /* batch statistics, dropout */
    int update_stats;                      /* training: also update running statistics */
    int fused_loss;                        /* output node: stop before final_act (logits) */
    int forward_only;                      /* no backward follows (predict, evaluate): what only
                                              backward reads in aux need not be kept */
    uint64_t step;                         /* 1-based optimiser step (dropout masks) */
    uint64_t seed;                         /* this node's seed (graph seed mixed with rng_key) */
    uint64_t row0;                         /* global index of the batch's first sample */
    /* backward only */
    void *dy;                              /* dL/dy (B x out_shape); the op may overwrite it */
    void *dx[AF_MAX_INPUTS];               /* dL/dx_i destinations, NULL where not needed */
    int dx_acc[AF_MAX_INPUTS];             /* 1: add into dx[i]; 0: overwrite */
    /* Parameter gradient g (n_params): grad = grad_alpha g + (grad_acc ? grad : 0). Only kinds
     * flagged AF_OP_GRAD_ALPHA see grad_alpha != 1: fused plain SGD passes the parameters
     * themselves with alpha = -lr, so the gradient GEMM applies the update. */
    void *grad;
    double grad_alpha;
    int grad_acc;
    /* Split batches (split.h: data-parallel training, or one process computing the same pieces):
     * the call sees one piece of a larger batch. A kind with sizes.sums > 0 then runs a training
     * forward (and backward) in two calls, the driver summing over every piece in between:
     *   AF_SUMS_PARTIAL  write this piece's sums[0 .. sizes.sums) and nothing else;
     *   AF_SUMS_TOTAL    sums holds the sums over the whole batch and sums_part this piece's own
     *                    (as it wrote them): finish the pass. Parameter gradients are this
     *                    piece's share only: the driver adds the pieces' gradients afterwards.
     * A piece may be empty (batch 0, when the batch has fewer samples than pieces): it still gets
 * both calls. State the calls read (running statistics) changes only in the TOTAL call that has
 * update_stats set: the driver sets it on the last piece of a step, after every other piece.
 * AF_SUMS_NONE: the batch is whole (every other call). Kinds without sums never see a phase. */
    int sums_phase;
    double *sums;
    const double *sums_part;
    /* incremental decoding only: the inputs whose bit is set in step_in, and the output, hold
     * ONE position (pos) of axis 0: B x 1 x (the other axes). For ops->step, in_shape and
     * out_shape are the full shapes (the kind sees how long the sequences are); for the
     * forward of an AF_OP_POSITIONWISE kind they say dim[0] == 1. Other inputs are whole. */
    size_t pos;
    unsigned step_in;
    void *cache;                           /* sizes.cache elements, kept from step to step */
} af_op_args;

typedef af_status (*af_op_fn)(const af_op_args *a);

/* Flags of a kind. */
enum {
    AF_OP_INFER_IDENTITY = 1,  /* at inference the output equals input 0 (dropout): skipped */
    AF_OP_ALIAS = 2,           /* output is always input 0's memory (flatten, reshape): forward
                                * and backward do nothing; the delta is input 0's delta too */
    AF_OP_GRAD_ALPHA = 4,      /* backward honours grad_alpha (see af_op_args) */
    AF_OP_INPUT = 8,           /* a graph input: the driver binds the data to its output */
    AF_OP_POSITIONWISE = 16    /* position t of axis 0 of the output depends only on position t
                                * of the inputs (dense, layer norm, add on sequences): decoding
                                * one position at a time is forward on a length-1 axis 0 */
};

typedef struct af_layer_ops {
    const char *name;                  /* the kind as Python spells it: "dense", "add", ... */
    const af_field *fields;            /* NULL-name terminated */
    size_t cfg_size;
    size_t min_inputs, max_inputs;
    unsigned flags;
    /* Checks cfg against the input shapes and fills *info. AF_ESHAPE / AF_EINVAL on mismatch. */
    af_status (*infer)(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info);
    /* Sizes for batches of B samples (may be NULL: nothing kept, no scratch). */
    void (*sizes)(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out, size_t B,
                  int training, af_node_sizes *sz);
    af_op_fn forward[2];               /* [0] float, [1] double */
    af_op_fn backward[2];              /* NULL: the kind has no gradient (e.g. an input) */
    /* Incremental decoding (decode.c): output position a->pos from the inputs at that position
     * (and whatever the kind kept in a->cache at earlier positions); inference mode. NULL: the
     * kind decodes by forward on one position if AF_OP_POSITIONWISE, else not at all (the
     * decoder then recomputes the whole prefix at every step). */
    af_op_fn step[2];
} af_layer_ops;

/* The table of every kind (graph.c), NULL-terminated; and lookup by name. */
extern const af_layer_ops *const af_layer_kinds[];
const af_layer_ops *af_layer_find(const char *name);

#endif
