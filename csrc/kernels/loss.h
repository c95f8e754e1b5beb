/* loss.h: losses (mse, mae, binary/categorical/sparse cross-entropy, hinge), their gradients and
 * metric sums, for an m x n block of predictions (loss.c, loss_impl.h). */
#ifndef AF_LOSS_H
#define AF_LOSS_H
#include "annfast.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* The engine's form: per-row loss, accuracy and squared error into row arrays (each may be NULL)
 * and the scaled gradient; rows run in parallel, the caller sums the row arrays in row order
 * (bitwise identical for any thread count). */
af_status af_loss_rows_f32(af_loss loss, int from_logits, size_t m, size_t n, const float *p,
                           size_t ldp, const float *y, size_t ldy, float scale, float *grad,
                           size_t ldg, float *row_loss, float *row_acc, float *row_sse);
af_status af_loss_rows_f64(af_loss loss, int from_logits, size_t m, size_t n, const double *p,
                           size_t ldp, const double *y, size_t ldy, double scale, double *grad,
                           size_t ldg, double *row_loss, double *row_acc, double *row_sse);

#ifdef __cplusplus
}
#endif
#endif
