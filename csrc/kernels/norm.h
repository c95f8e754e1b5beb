/* norm.h: batch normalisation and dropout kernels (batchnorm.c, dropout.c), float and double.
 * Standalone: the network engine calls them from its layer list. Plain C11, no Python headers.
 * Row-major m x n batches (m samples, n features), contiguous (leading dimension n).
 * Every entry point checks its arguments and returns an af_status; nothing allocates. */
#ifndef AF_NORM_H
#define AF_NORM_H
#include "annfast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- batch normalisation (batchnorm.c) ---------------------------------------------------- */
/* Training forward, per feature j over the m rows:
 *     mean_j = sum_i x_ij / m;   var_j = sum_i (x_ij - mean_j)^2 / m        (biased, two-pass)
 *     invstd_j = 1 / sqrt(var_j + eps);   y_ij = gamma_j (x_ij - mean_j) invstd_j + beta_j
 * Running statistics (Keras convention, momentum is the weight of the old value):
 *     running_mean = momentum running_mean + (1 - momentum) mean
 *     running_var  = momentum running_var  + (1 - momentum) var'
 * with var' = var (Keras) or var * m / (m - 1) when unbiased_running_var is set (PyTorch; needs
 * m > 1, else var). Statistics are accumulated in double.
 * gamma / beta may be NULL (scale 1 / shift 0); running_mean and running_var may both be NULL
 * (no update). mean and invstd (length n) are outputs the backward pass needs.
 * eps > 0, 0 <= momentum <= 1. y may equal x (in place). Bitwise identical for any thread count
 * (threads split the features; each feature's sums run over rows in order). */
af_status af_bn_forward_train_f32(size_t m, size_t n, const float *x, const float *gamma,
                                  const float *beta, double eps, double momentum,
                                  int unbiased_running_var, float *running_mean, float *running_var,
                                  float *mean, float *invstd, float *y);
af_status af_bn_forward_train_f64(size_t m, size_t n, const double *x, const double *gamma,
                                  const double *beta, double eps, double momentum,
                                  int unbiased_running_var, double *running_mean, double *running_var,
                                  double *mean, double *invstd, double *y);

/* Inference forward: y_ij = gamma_j (x_ij - running_mean_j) / sqrt(running_var_j + eps) + beta_j.
 * gamma / beta may be NULL. y may equal x. */
af_status af_bn_forward_infer_f32(size_t m, size_t n, const float *x, const float *gamma,
                                  const float *beta, const float *running_mean,
                                  const float *running_var, double eps, float *y);
af_status af_bn_forward_infer_f64(size_t m, size_t n, const double *x, const double *gamma,
                                  const double *beta, const double *running_mean,
                                  const double *running_var, double eps, double *y);

/* Backward of the training forward, from x and the saved mean / invstd (xhat = (x - mean) invstd):
 *     dbeta_j  = sum_i dy_ij;          dgamma_j = sum_i dy_ij xhat_ij
 *     dx_ij    = gamma_j invstd_j / m (m dy_ij - dbeta_j - xhat_ij dgamma_j)
 * dgamma / dbeta are overwritten (may be NULL if not wanted; the sums are still formed for dx).
 * gamma may be NULL (scale 1). dx may equal dy (in place). Sums in double. */
af_status af_bn_backward_f32(size_t m, size_t n, const float *x, const float *dy,
                             const float *gamma, const float *mean, const float *invstd,
                             float *dx, float *dgamma, float *dbeta);
af_status af_bn_backward_f64(size_t m, size_t n, const double *x, const double *dy,
                             const double *gamma, const double *mean, const double *invstd,
                             double *dx, double *dgamma, double *dbeta);

/* ---- dropout (dropout.c) ------------------------------------------------------------------ */
/* Inverted dropout with a counter-based RNG: element i of the call for (seed, step) is dropped
 * iff  af_dropout_draw(seed, step, i) < floor(rate 2^32)  (32-bit draws: element 2k takes the
 * high and element 2k+1 the low half of one splitmix64-style hash of (seed, step, k)). Kept
 * elements are scaled by 1 / (1 - rate), so E[y] = x. The mask depends only on
 * (seed, step, i): identical for any thread count, and the backward pass regenerates it instead
 * of storing it. 0 <= rate < 1; rate 0 is the identity.
 * The engine uses a distinct seed per layer and step = the global batch counter. */
uint32_t af_dropout_draw(uint64_t seed, uint64_t step, uint64_t index);

/* mask[i] = keep ? 1 / (1 - rate) : 0 for i < count. */
af_status af_dropout_mask_f32(size_t count, double rate, uint64_t seed, uint64_t step, float *mask);
af_status af_dropout_mask_f64(size_t count, double rate, uint64_t seed, uint64_t step, double *mask);
/* The mask of elements base .. base + count - 1 of a larger call (see af_dropout_apply_at). */
af_status af_dropout_mask_at_f32(size_t count, double rate, uint64_t seed, uint64_t step, uint64_t base,
                                 float *mask);
af_status af_dropout_mask_at_f64(size_t count, double rate, uint64_t seed, uint64_t step, uint64_t base,
                                 double *mask);
/* y = x * mask (in place allowed). Used for the forward pass (x = activations) and for the
 * backward pass (x = dy, y = dx) with the same (seed, step). */
af_status af_dropout_apply_f32(size_t count, double rate, uint64_t seed, uint64_t step,
                               const float *x, float *y);
af_status af_dropout_apply_f64(size_t count, double rate, uint64_t seed, uint64_t step,
                               const double *x, double *y);
/* The same for elements base .. base + count - 1 of a larger call: y[e] = x[e] * mask[base + e],
 * bitwise what af_dropout_apply over the whole gives those elements (a piece of a batch split
 * over processes draws the masks of its samples' positions in the whole batch). */
af_status af_dropout_apply_at_f32(size_t count, double rate, uint64_t seed, uint64_t step,
                                  uint64_t base, const float *x, float *y);
af_status af_dropout_apply_at_f64(size_t count, double rate, uint64_t seed, uint64_t step,
                                  uint64_t base, const double *x, double *y);

#ifdef __cplusplus
}
#endif
#endif
