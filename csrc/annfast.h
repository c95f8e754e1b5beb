/* annfast.h: the one header the Cython boundary includes.
 *
 * Plain C11, no Python headers. Every entry point returns an af_status; buffers are provided by the
 * caller; nothing here allocates inside a training step, prints, aborts or exits.
 * Row-major everywhere. GEMM follows BLAS names (m, n, k, lda, trans_a).
 */
#ifndef ANNFAST_H
#define ANNFAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------------------------- */
typedef enum {
    AF_OK = 0,
    AF_EINVAL = 1,     /* bad argument value (null pointer, negative rate, unknown enum) */
    AF_ESHAPE = 2,     /* inconsistent sizes or leading dimensions, size arithmetic overflow */
    AF_ENOMEM = 3,     /* allocation failed (only outside hot loops) */
    AF_ENONFINITE = 4, /* NaN or inf where a finite number is required */
    AF_EINTR = 5,      /* stopped at a clean point: af_request_stop() or Ctrl-C */
    AF_EISA = 6        /* requested instruction set not supported by this CPU or build */
} af_status;

const char *af_status_str(af_status s);

/* ---- build and CPU configuration (cpu.c) -------------------------------------------------- */
typedef enum { AF_ISA_GENERIC = 0, AF_ISA_AVX2 = 1, AF_ISA_AVX512 = 2 } af_isa;

void af_init(void);                 /* reads ANNFAST_ISA / ANNFAST_NUM_THREADS; idempotent */
int af_cpu_has(af_isa isa);         /* 1 if CPU, OS and this build can run that path */
af_status af_set_isa(af_isa isa);   /* AF_EISA if unsupported; never while a kernel runs */
af_isa af_get_isa(void);
af_isa af_best_isa(void);
const char *af_isa_name(af_isa isa);
int af_openmp_enabled(void);
const char *af_compiler(void);
/* Fills buf with a space-separated list of detected CPU features (sse2 avx avx2 fma avx512f ...). */
void af_cpu_features(char *buf, size_t len);

/* ---- threads (cpu.c) ----------------------------------------------------------------------- */
af_status af_set_num_threads(int n);  /* 1 <= n <= 4096; capped at af_num_procs() */
int af_get_num_threads(void);         /* team size for the caller's next region (see threads.h) */
int af_threads_setting(void);         /* the count set (after the cap), without checks */
int af_num_procs(void);

/* ---- interruption (interrupt.c) ------------------------------------------------------------ */
/* Long loops poll af_stop_requested() on the calling thread between batches / epochs (never
 * inside parallel regions) and return AF_EINTR at a clean point.
 *
 * A stop token belongs to one call of one thread: af_stop_bind(tok) makes it the calling
 * thread's current token (returning the previous one, to bind back afterwards);
 * af_request_stop() sets the calling thread's current token (nothing if none is bound). So a
 * stop requested for one thread's call never stops another thread's.
 *
 * SIGINT: af_sigint_install() routes SIGINT to the calling thread's calls until
 * af_sigint_restore(), which puts the previous handler back, marks the bound token (stop and
 * sigint) and returns 1 if SIGINT arrived meanwhile. Only one thread at a time may have it
 * installed (the Python boundary: the main thread, around one C call, and only when Python's
 * SIGINT handler is its default one). The handler itself only sets a sig_atomic_t flag that the
 * installing thread's polls read: other threads' calls never see it. */
typedef struct af_stop_token {
    int stop;    /* set: the call stops at its next clean point (AF_EINTR) */
    int sigint;  /* set by af_sigint_restore() when the stop came from SIGINT */
} af_stop_token;

af_stop_token *af_stop_bind(af_stop_token *tok); /* tok may be NULL; returns the previous token */
void af_request_stop(void);
int af_stop_requested(void);
int af_sigint_install(void);  /* 1 installed, 0 already installed, -1 failed */
int af_sigint_restore(void);  /* 1 if SIGINT arrived since af_sigint_install() */

/* ---- size arithmetic helpers (checked) ----------------------------------------------------- */
/* *out = a * b; returns AF_ESHAPE on overflow. */
af_status af_mul_size(size_t a, size_t b, size_t *out);

/* ---- input checks (finite.c) --------------------------------------------------------------- */
/* 1 if every element of the m x n block (row stride lda) is finite, else 0. */
int af_all_finite_f32(size_t m, size_t n, const float *a, size_t lda);
int af_all_finite_f64(size_t m, size_t n, const double *a, size_t lda);

/* ---- activations (act.c) ------------------------------------------------------------------- */
typedef enum {
    AF_ACT_LINEAR = 0,
    AF_ACT_SIGMOID = 1,
    AF_ACT_TANH = 2,
    AF_ACT_RELU = 3,
    AF_ACT_LEAKY_RELU = 4, /* param = negative slope alpha */
    AF_ACT_ELU = 5,        /* param = alpha */
    AF_ACT_SELU = 6,
    AF_ACT_SOFTMAX = 7,    /* row-wise over the last axis */
    AF_ACT_GELU = 8,       /* x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (exact, as PyTorch's default) */
    AF_ACT_SWISH = 9,      /* x sigmoid(x) (SiLU) */
    AF_ACT_COUNT = 10
} af_act;

/* 1 when f'(x) cannot be had from y = f(x) (gelu, swish): the backward pass then needs x. */
static inline int af_act_needs_input(af_act act) { return act == AF_ACT_GELU || act == AF_ACT_SWISH; }

/* y = f(x) for an m x n row-major block with leading dimension ld (in place allowed: x == y). */
af_status af_act_forward_f32(af_act act, float param, size_t m, size_t n,
                             const float *x, size_t ldx, float *y, size_t ldy);
af_status af_act_forward_f64(af_act act, double param, size_t m, size_t n,
                             const double *x, size_t ldx, double *y, size_t ldy);
/* The same, looking at each block of rows of x for NaN/inf just before computing it (while it is
 * in cache): AF_ENONFINITE when x holds one (y then holds garbage). x and y must not overlap. */
af_status af_act_forward_checked_f32(af_act act, float param, size_t m, size_t n,
                                     const float *x, size_t ldx, float *y, size_t ldy);
af_status af_act_forward_checked_f64(af_act act, double param, size_t m, size_t n,
                                     const double *x, size_t ldx, double *y, size_t ldy);
/* dx = dy * f'(x), using the forward output y where cheaper (sigmoid, tanh, elu, selu), x for
 * gelu and swish, either for the relu family. For softmax: dx_i = y_i * (dy_i - sum_j dy_j y_j) per row. In place allowed: dx == dy. */
af_status af_act_backward_f32(af_act act, float param, size_t m, size_t n,
                              const float *x, const float *y, const float *dy, float *dx, size_t ld);
af_status af_act_backward_f64(af_act act, double param, size_t m, size_t n,
                              const double *x, const double *y, const double *dy, double *dx, size_t ld);

/* ---- GEMM (gemm.c and per-ISA kernels) ----------------------------------------------------- */
/* C = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is m x k, op(B) is k x n.
 * trans_a: A is stored k x m (lda >= m) instead of m x k (lda >= k); likewise trans_b.
 * beta == 0 never reads C. An optional epilogue runs on each C tile while it is in cache:
 * C = act(C + bias[None, :]) (bias may be NULL; act may be AF_ACT_LINEAR; softmax not allowed). */
typedef struct {
    const void *bias;  /* length n, same dtype as C, or NULL */
    af_act act;        /* elementwise activation applied after bias */
    double act_param;
} af_epilogue;

af_status af_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                   float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                   float beta, float *c, size_t ldc);
af_status af_dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                   double alpha, const double *a, size_t lda, const double *b, size_t ldb,
                   double beta, double *c, size_t ldc);
af_status af_sgemm_ex(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                      float beta, float *c, size_t ldc, const af_epilogue *ep);
af_status af_dgemm_ex(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      double alpha, const double *a, size_t lda, const double *b, size_t ldb,
                      double beta, double *c, size_t ldc, const af_epilogue *ep);
/* The same, also returning AF_ENONFINITE when A or B holds NaN or inf. The check costs a look at
 * either the inputs before computing or each finished tile of C while it is in cache, whichever
 * is smaller. On AF_ENONFINITE, C may already hold the product (with NaN/inf where they
 * propagate) and the epilogue may have run: callers that must not expose it overwrite C. */
af_status af_sgemm_checked(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                           float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                           float beta, float *c, size_t ldc, const af_epilogue *ep);
af_status af_dgemm_checked(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                           double alpha, const double *a, size_t lda, const double *b, size_t ldb,
                           double beta, double *c, size_t ldc, const af_epilogue *ep);

/* ---- threads and floating-point mode (pool.c, fpenv.c) ------------------------------------- */
/* Idle spin of annfast's worker threads before they sleep, in microseconds (ANNFAST_SPIN_US, or
 * 0 with OMP_WAIT_POLICY=passive, else 100). */
int af_pool_spin_us(void);
/* Busy-machine detection (ANNFAST_BUSY_CHECK, default on): when the calling thread keeps being
 * preempted, parallel kernels run on it alone. af_pool_set_busy_check(-1) only reads it. */
int af_pool_set_busy_check(int on);
/* Diagnostics since the process started: jobs run on several threads, jobs (or GEMMs planned)
 * alone because the machine was crowded, crowded windows found by the preemption rate, by
 * repeated slow waits, woken workers that moved off their submitter's CPU. */
void af_pool_stats(unsigned long out[5]);
/* Training steps that ran on one thread because timing them (tune.h) found one thread faster
 * than all, since the process started; whether that timing is on
 * (ANNFAST_THREAD_TUNING, default on). */
unsigned long af_tune_ones(void);
int af_tune_enabled(void);
/* The thread choice of tune.h on given times, for tests: call i takes one[i] on one thread or
 * all[i] on all of them; modes[i] is the mode chosen for it (0 one thread, 1 all). */
void af_tune_simulate(const double *one, const double *all, size_t n, unsigned char *modes);
/* For tests: out[0] = af_get_num_threads() now, out[1] = the same on a step run alone (as the
 * thread timing runs one: af_pool_solo), out[2] = the same inside a pool job's chunk. */
void af_num_threads_probe(int out[3]);
/* Mean time in ns for a write on one core to be answered from another (corelat.c): two threads
 * pinned to the first two CPUs the process may use pass a counter `rounds` times. -1 with fewer
 * than two CPUs, where threads cannot be pinned, or when the machine is too busy to finish
 * within about a second. */
double af_core_round_trip_ns(long rounds);
/* Per-kind profile of the engine's forward / backward calls (profile.c): af_profile_enable(1)
 * clears it and starts timing by the wall clock, (2) by the calling thread's CPU time (one
 * thread on a busy machine), (0) stops; af_profile_row(k, ...) reads row k (0 past the last). */
void af_profile_enable(int on);
int af_profile_row(size_t k, const char **name, double seconds[2], unsigned long calls[2]);
/* The calling thread's MXCSR (x86) or FPCR (arm64), 0 elsewhere; the setter is for tests. */
unsigned long af_fp_control_get(void);
void af_fp_control_set(unsigned long v);

/* ---- optimisers (optim.c) ------------------------------------------------------------------ */
/* One fused update over a flat parameter vector (all layers' parameters contiguous), so a whole
 * model is updated by one call. state holds af_optim_state_slots(kind) arrays of n values each,
 * slot-major ([slot][n]), zero-initialised by the caller before the first step; t is the 1-based
 * step count (Adam's bias correction). Formulas follow PyTorch's torch.optim defaults:
 *   SGD:      v = momentum v + g;  p -= lr (nesterov ? g + momentum v : v)      (v only if momentum)
 *   Adagrad:  G += g^2;  p -= lr g / (sqrt(G) + eps)          (G starts at initial_accumulator)
 *   RMSprop:  E = rho E + (1-rho) g^2;  p -= lr g / (sqrt(E) + eps)  (+ momentum buffer if > 0)
 *   Adadelta: E = rho E + (1-rho) g^2;  d = sqrt(D + eps)/sqrt(E + eps) g;
 *             D = rho D + (1-rho) d^2;  p -= lr d
 *   Adam:     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr mhat / (sqrt(vhat) + eps)
 * weight_decay: L2 added to the gradient (g += wd p), or decoupled (p -= lr wd p, AdamW) when
 * decoupled_wd is set. */
typedef enum {
    AF_OPT_SGD = 0, AF_OPT_ADAGRAD = 1, AF_OPT_RMSPROP = 2, AF_OPT_ADADELTA = 3, AF_OPT_ADAM = 4,
    AF_OPT_COUNT = 5
} af_opt_kind;

typedef struct {
    af_opt_kind kind;
    double lr;
    double momentum;            /* SGD, RMSprop */
    int nesterov;               /* SGD */
    double rho;                 /* RMSprop (alpha), Adadelta */
    double beta1, beta2;        /* Adam */
    double eps;
    double initial_accumulator; /* Adagrad */
    double weight_decay;
    int decoupled_wd;           /* AdamW-style */
} af_optim;

int af_optim_state_slots(af_opt_kind kind);   /* -1 for an unknown kind */
af_status af_optim_check(const af_optim *o);  /* hyperparameter ranges */
af_status af_optim_step_f32(const af_optim *o, size_t n, float *param, const float *grad,
                            float *state, uint64_t t);
af_status af_optim_step_f64(const af_optim *o, size_t n, double *param, const double *grad,
                            double *state, uint64_t t);
/* Gradient clipping: by value in place, and the global L2 norm summed in fixed-size chunks in a
 * fixed order (bitwise identical for any thread count). */
af_status af_clip_value_f32(size_t n, float *g, float limit);
af_status af_clip_value_f64(size_t n, double *g, double limit);
af_status af_l2_norm_f32(size_t n, const float *g, double *out);
af_status af_l2_norm_f64(size_t n, const double *g, double *out);

/* ---- the tutorial's fixed 2-layer sigmoid network (tutorial.c), float64 ------------------- */
typedef struct {
    size_t n_in, n_hidden, n_out;
    double *w1;  /* n_in x n_hidden */
    double *b1;  /* n_hidden */
    double *w2;  /* n_hidden x n_out */
    double *b2;  /* n_out */
} af_tut_net;

/* Forward pass for n samples; fills the four activation buffers (n x n_hidden, n x n_out). */
af_status af_tut_forward(const af_tut_net *net, size_t n, const double *x,
                         double *hidden_act, double *hidden_out, double *out_act, double *pred);
/* One tutorial backward step from the buffers of the last forward pass.
 * work: at least n * (n_hidden + n_out) doubles. */
af_status af_tut_backward(af_tut_net *net, size_t n, const double *x, const double *y,
                          const double *hidden_out, const double *pred, double lr, double *work);
/* Doubles of train's work buffer for n samples (backward needs only n * (n_hidden + n_out)); 0
 * when the size overflows. */
size_t af_tut_work_size(size_t n_in, size_t n_hidden, size_t n_out, size_t n);
/* epochs x (forward; backward); leaves the last forward's buffers filled. Polls the stop flag.
 * work: at least af_tut_work_size doubles. */
af_status af_tut_train(af_tut_net *net, size_t n, const double *x, const double *y,
                       size_t epochs, double lr, double *hidden_act, double *hidden_out,
                       double *out_act, double *pred, double *work);

#ifdef __cplusplus
}
#endif
#endif
