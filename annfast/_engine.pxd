# _engine.pxd: the C API of csrc/ declared once for the Cython boundary (annfast/_core.pyx and
# its topic .pxi files cimport it; none of them declares C functions itself).
from libc.stdint cimport uint32_t, uint64_t, int64_t

cdef extern from "annfast.h" nogil:
    ctypedef enum af_status:
        AF_OK
        AF_EINVAL
        AF_ESHAPE
        AF_ENOMEM
        AF_ENONFINITE
        AF_EINTR
        AF_EISA
    ctypedef enum af_isa:
        AF_ISA_GENERIC
        AF_ISA_AVX2
        AF_ISA_AVX512
    ctypedef enum af_act:
        AF_ACT_LINEAR
        AF_ACT_SIGMOID
        AF_ACT_TANH
        AF_ACT_RELU
        AF_ACT_LEAKY_RELU
        AF_ACT_ELU
        AF_ACT_SELU
        AF_ACT_SOFTMAX
        AF_ACT_GELU
        AF_ACT_SWISH
        AF_ACT_COUNT
    ctypedef struct af_epilogue:
        const void *bias
        af_act act
        double act_param

    const char *af_status_str(af_status s)
    void af_init()
    int af_cpu_has(af_isa isa)
    af_status af_set_isa(af_isa isa)
    af_isa af_get_isa()
    af_isa af_best_isa()
    const char *af_isa_name(af_isa isa)
    int af_openmp_enabled()
    const char *af_compiler()
    void af_cpu_features(char *buf, size_t len)
    af_status af_set_num_threads(int n)
    int af_threads_setting()
    int af_num_procs()
    ctypedef struct af_stop_token:
        int stop
        int sigint
    af_stop_token *af_stop_bind(af_stop_token *tok)
    void af_request_stop()
    int af_stop_requested()
    int af_sigint_install()
    int af_sigint_restore()

cdef extern from "annfast.h" nogil:
    int af_all_finite_f32(size_t m, size_t n, const float *a, size_t lda)
    int af_all_finite_f64(size_t m, size_t n, const double *a, size_t lda)

cdef extern from "annfast.h" nogil:
    af_status af_act_forward_f32(af_act act, float param, size_t m, size_t n,
                                 const float *x, size_t ldx, float *y, size_t ldy)
    af_status af_act_forward_f64(af_act act, double param, size_t m, size_t n,
                                 const double *x, size_t ldx, double *y, size_t ldy)
    af_status af_act_forward_checked_f32(af_act act, float param, size_t m, size_t n,
                                         const float *x, size_t ldx, float *y, size_t ldy)
    af_status af_act_forward_checked_f64(af_act act, double param, size_t m, size_t n,
                                         const double *x, size_t ldx, double *y, size_t ldy)
    af_status af_act_backward_f32(af_act act, float param, size_t m, size_t n, const float *x,
                                  const float *y, const float *dy, float *dx, size_t ld)
    af_status af_act_backward_f64(af_act act, double param, size_t m, size_t n, const double *x,
                                  const double *y, const double *dy, double *dx, size_t ld)

cdef extern from "loss.h" nogil:
    ctypedef enum af_loss:
        AF_LOSS_MSE
        AF_LOSS_MAE
        AF_LOSS_BCE
        AF_LOSS_CCE
        AF_LOSS_SCCE
        AF_LOSS_HINGE
        AF_LOSS_COUNT
    af_status af_loss_eval_f32(af_loss loss, int from_logits, size_t m, size_t n, const float *p,
                               size_t ldp, const float *y, size_t ldy, float scale,
                               float *row_loss, float *grad, size_t ldg, double *correct,
                               double *sse)
    af_status af_loss_eval_f64(af_loss loss, int from_logits, size_t m, size_t n, const double *p,
                               size_t ldp, const double *y, size_t ldy, double scale,
                               double *row_loss, double *grad, size_t ldg, double *correct,
                               double *sse)

cdef extern from "annfast.h" nogil:
    af_status af_sgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                          const float *a, size_t lda, const float *b, size_t ldb, float beta,
                          float *c, size_t ldc, const af_epilogue *ep)
    af_status af_dgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, double alpha,
                          const double *a, size_t lda, const double *b, size_t ldb, double beta,
                          double *c, size_t ldc, const af_epilogue *ep)
    af_status af_sgemm_checked(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                               const float *a, size_t lda, const float *b, size_t ldb, float beta,
                               float *c, size_t ldc, const af_epilogue *ep)
    af_status af_dgemm_checked(int ta, int tb, size_t m, size_t n, size_t k, double alpha,
                               const double *a, size_t lda, const double *b, size_t ldb,
                               double beta, double *c, size_t ldc, const af_epilogue *ep)

cdef extern from "norm.h" nogil:
    af_status af_bn_forward_train_f32(size_t m, size_t n, const float *x, const float *gamma,
                                      const float *beta, double eps, double momentum,
                                      int unbiased_running_var, float *running_mean,
                                      float *running_var, float *mean, float *invstd, float *y)
    af_status af_bn_forward_train_f64(size_t m, size_t n, const double *x, const double *gamma,
                                      const double *beta, double eps, double momentum,
                                      int unbiased_running_var, double *running_mean,
                                      double *running_var, double *mean, double *invstd, double *y)
    af_status af_bn_forward_infer_f32(size_t m, size_t n, const float *x, const float *gamma,
                                      const float *beta, const float *running_mean,
                                      const float *running_var, double eps, float *y)
    af_status af_bn_forward_infer_f64(size_t m, size_t n, const double *x, const double *gamma,
                                      const double *beta, const double *running_mean,
                                      const double *running_var, double eps, double *y)
    af_status af_bn_backward_f32(size_t m, size_t n, const float *x, const float *dy,
                                 const float *gamma, const float *mean, const float *invstd,
                                 float *dx, float *dgamma, float *dbeta)
    af_status af_bn_backward_f64(size_t m, size_t n, const double *x, const double *dy,
                                 const double *gamma, const double *mean, const double *invstd,
                                 double *dx, double *dgamma, double *dbeta)
    uint32_t af_dropout_draw(uint64_t seed, uint64_t step, uint64_t index)
    af_status af_dropout_mask_f32(size_t count, double rate, uint64_t seed, uint64_t step, float *mask)
    af_status af_dropout_mask_f64(size_t count, double rate, uint64_t seed, uint64_t step, double *mask)
    af_status af_dropout_apply_f32(size_t count, double rate, uint64_t seed, uint64_t step,
                                   const float *x, float *y)
    af_status af_dropout_apply_f64(size_t count, double rate, uint64_t seed, uint64_t step,
                                   const double *x, double *y)
    af_status af_dropout_apply_at_f32(size_t count, double rate, uint64_t seed, uint64_t step,
                                      uint64_t base, const float *x, float *y)
    af_status af_dropout_apply_at_f64(size_t count, double rate, uint64_t seed, uint64_t step,
                                      uint64_t base, const double *x, double *y)

cdef extern from "annfast.h" nogil:
    ctypedef struct af_tut_net:
        size_t n_in, n_hidden, n_out
        double *w1
        double *b1
        double *w2
        double *b2
    af_status af_tut_forward(const af_tut_net *net, size_t n, const double *x, double *hidden_act,
                             double *hidden_out, double *out_act, double *pred)
    af_status af_tut_backward(af_tut_net *net, size_t n, const double *x, const double *y,
                              const double *hidden_out, const double *pred, double lr, double *work)
    size_t af_tut_work_size(size_t n_in, size_t n_hidden, size_t n_out, size_t n)
    af_status af_tut_train(af_tut_net *net, size_t n, const double *x, const double *y,
                           size_t epochs, double lr, double *hidden_act, double *hidden_out,
                           double *out_act, double *pred, double *work)

cdef extern from "annfast.h" nogil:
    ctypedef enum af_opt_kind:
        AF_OPT_SGD
        AF_OPT_ADAGRAD
        AF_OPT_RMSPROP
        AF_OPT_ADADELTA
        AF_OPT_ADAM
        AF_OPT_COUNT
    ctypedef struct af_optim:
        af_opt_kind kind
        double lr
        double momentum
        int nesterov
        double rho
        double beta1, beta2
        double eps
        double initial_accumulator
        double weight_decay
        int decoupled_wd
    int af_optim_state_slots(af_opt_kind kind)
    af_status af_optim_check(const af_optim *o)
    af_status af_optim_step_f32(const af_optim *o, size_t n, float *param, const float *grad,
                                float *state, uint64_t t)
    af_status af_optim_step_f64(const af_optim *o, size_t n, double *param, const double *grad,
                                double *state, uint64_t t)
    af_status af_clip_value_f32(size_t n, float *g, float limit)
    af_status af_clip_value_f64(size_t n, double *g, double limit)
    af_status af_l2_norm_f32(size_t n, const float *g, double *out)
    af_status af_l2_norm_f64(size_t n, const double *g, double *out)

cdef extern from "optim.h" nogil:
    int af_optim_slots_used(const af_optim *o)
    af_status af_clip_norm_f32(size_t n, float *g, double max_norm, double *norm_out)
    af_status af_clip_norm_f64(size_t n, double *g, double max_norm, double *norm_out)

cdef extern from "threads.h" nogil:
    int af_threads_expected(int want)
    int af_threads_probe(int want)
    int af_threads_forked()


cdef extern from "layer.h" nogil:
    enum: AF_MAX_RANK
    enum: AF_MAX_INPUTS
    enum: AF_FIELD_MAX_INTS
    ctypedef enum af_elem:
        AF_ELEM_FLOAT
        AF_ELEM_INT32
    ctypedef struct af_shape:
        int rank
        size_t dim[4]
        af_elem elem
    ctypedef enum af_field_type:
        AF_FIELD_INT
        AF_FIELD_REAL
        AF_FIELD_BOOL
        AF_FIELD_ENUM
        AF_FIELD_INTS
    ctypedef struct af_field:
        const char *name
        af_field_type type
        size_t offset
        double lo, hi
        const char *const *names
    ctypedef struct af_node:
        const af_layer_ops *ops
        void *cfg
        size_t n_inputs
        size_t inputs[8]
        size_t param_off, stat_off
        uint64_t rng_key
    ctypedef struct af_node_info:
        af_shape out
        size_t n_params, n_stats
        size_t pen_off, pen_len
        double l1, l2
        af_act final_act
    ctypedef struct af_layer_ops:
        const char *name
        const af_field *fields
        size_t cfg_size
        size_t min_inputs, max_inputs
        unsigned flags
    const af_layer_ops *af_layer_find(const char *name)


cdef extern from "graph.h" nogil:
    enum: AF_MAX_IO
    ctypedef af_status (*af_reduce_fn)(void *ctx, void *buf, size_t n, int dtype)
    ctypedef struct af_graph:
        af_node *nodes
        size_t n_nodes
        size_t n_inputs, n_outputs
        size_t inputs[8]
        size_t outputs[8]
        af_loss losses[8]
        double loss_weights[8]
        void *params
        void *grads
        void *stats
        size_t n_params, n_stats
        double clipnorm, clipvalue
        uint64_t seed
        af_reduce_fn reduce
        void *reduce_ctx
    ctypedef struct af_plan:
        pass
    enum:
        AF_F32
        AF_F64
    enum:
        AF_PLAN_INPUT_GRADS
    enum:
        AF_SW_BATCH
        AF_SW_SUM
    ctypedef struct af_data:
        size_t n
        const void *x[8]
        const void *y[8]
        const void *sw
        int sw_norm
    ctypedef struct af_epoch_args:
        size_t batch
        int order
        uint64_t shuffle_key
        size_t first_batch, max_batches
        uint64_t *perm
    ctypedef struct af_epoch_stats:
        double loss_sum
        double out_loss[8]
        double correct[8]
        double sse[8]
        size_t n_seen, n_batches
    af_status af_plan_create(const af_graph *g, size_t max_batch, int dtype, unsigned options,
                             af_plan **out, size_t *err_node)
    void af_plan_free(af_plan *p)
    size_t af_plan_ws_len(const af_plan *p)
    af_status af_plan_node_info(const af_plan *p, size_t i, af_node_info *info)
    af_status af_plan_target_shape(const af_plan *p, size_t o, af_shape *s)
    af_status af_plan_input_grad(const af_plan *p, size_t i, size_t *offset)
    af_status af_graph_train_epoch_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                       const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                       float *opt_state, uint64_t *step, af_epoch_stats *out)
    af_status af_graph_train_epoch_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                       const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                       double *opt_state, uint64_t *step, af_epoch_stats *out)
    af_status af_graph_predict_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                   const af_data *d, float *const *out)
    af_status af_graph_predict_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                   const af_data *d, double *const *out)
    af_status af_graph_evaluate_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                    const af_data *d, double *loss, af_epoch_stats *sums)
    af_status af_graph_evaluate_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                    const af_data *d, double *loss, af_epoch_stats *sums)
    af_status af_graph_gradients_f32(const af_graph *g, af_plan *p, float *ws, size_t ws_len,
                                     const af_data *d, int training, uint64_t step, double *loss)
    af_status af_graph_gradients_f64(const af_graph *g, af_plan *p, double *ws, size_t ws_len,
                                     const af_data *d, int training, uint64_t step, double *loss)
    const char *af_layer_kind_name(size_t i)
    const char *af_act_name(size_t i)
    const char *af_loss_name(size_t i)


cdef extern from "split.h" nogil:
    ctypedef struct af_split:
        size_t parts
        size_t first, count
        void *const *ws
        size_t ws_len
        void *const *grads
        double *sums
        af_epoch_stats *stats
    size_t af_split_sums_len(const af_plan *p)
    size_t af_local_pieces(const af_graph *g, const af_plan *p, size_t batch)
    af_status af_graph_train_split_f32(const af_graph *g, af_plan *p, const af_split *sp,
                                       const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                       float *opt_state, uint64_t *step)
    af_status af_graph_train_split_f64(const af_graph *g, af_plan *p, const af_split *sp,
                                       const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                       double *opt_state, uint64_t *step)
    af_status af_split_sum_all_f32(size_t nbuf, float *const *bufs, size_t lo, size_t hi)
    af_status af_split_sum_all_f64(size_t nbuf, double *const *bufs, size_t lo, size_t hi)

cdef extern from "rng.h" nogil:
    void af_shuffle_like_numpy(uint64_t *x, size_t n, uint32_t (*next32)(void *) noexcept nogil,
                               uint64_t (*next64)(void *) noexcept nogil, void *state)
    void af_shuffle_mt19937(uint64_t *x, size_t n, uint32_t *key, int *pos)

# NumPy's C interface to its bit generators (the capsule of a BitGenerator holds one).
cdef extern from "numpy/random/bitgen.h" nogil:
    ctypedef struct bitgen_t:
        void *state
        uint64_t (*next_uint64)(void *st) noexcept nogil
        uint32_t (*next_uint32)(void *st) noexcept nogil
