/* act_kern_impl.h: one activation row, forward and backward, for ONE (ISA, dtype) pair.
 * Included by act_generic.c / act_avx2.c / act_avx512.c, which set the compile target and
 * AF_ACT_ISA; see act_kern.h. Straight-line loops over a row that the compiler vectorises
 * (exp through vexp.h). */
#include "dtype_begin.h"
#include "verf.h"
#define KN(name) AF_FN(AF_CAT(AF_CAT(name, _), AF_ACT_ISA))
/* erf of the exact GELU: vectorisable in float (verf.h, within 3 ulp), libm's in double */
#if defined(AF_DTYPE_F32)
#define GELU_ERF af_erf_f32
#else
#define GELU_ERF erf
#endif

#define SELU_ALPHA ((T)1.6732632423543772848170429916717)
#define SELU_SCALE ((T)1.0507009873554804934193349852946)

/* NaN: f(NaN) = NaN for every activation (NumPy, PyTorch). Comparisons are written so the NaN
 * case takes a branch that keeps it: relu is `x < 0 ? 0 : x` (maxps(0, x), which returns its
 * second operand x when either is NaN), never `x > 0 ? x : 0`, which turns NaN into 0.
 * Backward, for NaN x, gives what PyTorch's autograd gives:
 *   relu (threshold_backward):  x <= 0 ? 0 : dy             NaN x passes dy through
 *   leaky_relu:                 x > 0 ? dy : alpha dy        NaN x gives alpha dy
 *   elu / selu:                 x > 0 ? dy (scale) : dy (y + alpha (scale))   NaN (y is NaN);
 *                               torch's vectorised elu_backward gives NaN too (its scalar tail
 *                               gives dy: it has no single answer, we keep the NaN)
 *   sigmoid, tanh, softmax:     functions of y = f(x) = NaN, so NaN.
 * x may be the activation's output instead of its input (the network passes A): for alpha >= 0
 * it has the same sign and NaN-ness, so the same branch is taken. */

#if defined(AF_DTYPE_F32)
/* tanh in float, vectorisable (libm's tanhf is a scalar call, ~20 ns a value): for |x| < 0.625
 * x g(x^2), g a degree-5 polynomial we fitted to tanh(x)/x by weighted least squares (within one
 * ulp there); else 1 - 2 / (1 + e^{2|x|}) with x's sign, where tanh > 0.55 so nothing cancels, and
 * e^{2|x|} = inf gives 1. NaN takes the second form and stays NaN. Double keeps libm's tanh. */
static inline T KN(tanh_f)(T x)
{
    T a = x < 0 ? -x : x, z = x * x;
    T g = ((((-0.005652355259548741f * z + 0.020583488974709463f) * z - 0.05371848497866412f) * z +
            0.1333109112674949f) * z - 0.33333258722945086f) * z + 1.0f;
    T big = (T)1 - (T)2 / ((T)1 + VEXP_DEN(2 * a));
    return a < (T)0.625 ? x * g : (x < 0 ? -big : big);
}
#define TANH_ROW(x) KN(tanh_f)(x)
#else
#define TANH_ROW(x) TANH(x)
#endif

/* y = f(x) for one row; softmax handled by the caller. */
void KN(af_act_rowf)(af_act act, T p, size_t n, const T *x, T *y)
{
    size_t j;
    switch (act) {
    case AF_ACT_LINEAR: for (j = 0; j < n; j++) y[j] = x[j]; break;
    /* sigma(x) = 1 / (1 + e^-x); e^-x overflows to inf for x << 0, giving 0, never NaN. e^x as
     * VEXP_DEN: in 1 + e^x the bits of VEXP (vexp.h), a third fewer operations */
    case AF_ACT_SIGMOID: for (j = 0; j < n; j++) y[j] = (T)1 / ((T)1 + VEXP_DEN(-x[j])); break;
    case AF_ACT_TANH: for (j = 0; j < n; j++) y[j] = TANH_ROW(x[j]); break;
    case AF_ACT_RELU: for (j = 0; j < n; j++) y[j] = x[j] < 0 ? (T)0 : x[j]; break;
    case AF_ACT_LEAKY_RELU: for (j = 0; j < n; j++) y[j] = x[j] > 0 ? x[j] : p * x[j]; break;
    case AF_ACT_ELU: for (j = 0; j < n; j++) y[j] = x[j] > 0 ? x[j] : p * EXPM1(x[j]); break;
    case AF_ACT_SELU:
        for (j = 0; j < n; j++) y[j] = SELU_SCALE * (x[j] > 0 ? x[j] : SELU_ALPHA * EXPM1(x[j]));
        break;
    case AF_ACT_SOFTMAX: {
        /* softmax(x)_j = e^(x_j - max x) / sum_i e^(x_i - max x): shifting keeps exp <= 1. */
        T mx = n ? x[0] : (T)0, s = 0;
        for (j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
        for (j = 0; j < n; j++) y[j] = VEXP(x[j] - mx);
        for (j = 0; j < n; j++) s += y[j];
        T inv = (T)1 / s;
        for (j = 0; j < n; j++) y[j] *= inv;
        break;
    }
    case AF_ACT_GELU:
        for (j = 0; j < n; j++) y[j] = (T)0.5 * x[j] * ((T)1 + GELU_ERF(x[j] * (T)M_SQRT1_2));
        break;
    /* swish(x) = x / (1 + e^-x) */
    case AF_ACT_SWISH: for (j = 0; j < n; j++) y[j] = x[j] / ((T)1 + VEXP(-x[j])); break;
    default: break;
    }
}

/* y = e^x over a row (vexp.h); for the loss's softmax, whose rows are gathered into one. */
void KN(af_vexp_row)(size_t n, const T *x, T *y)
{
    for (size_t j = 0; j < n; j++) y[j] = VEXP(x[j]);
}

/* dx = dy * f'(x) for one row. */
void KN(af_act_rowb)(af_act act, T p, size_t n, const T *x, const T *y, const T *dy, T *dx)
{
    size_t j;
    switch (act) {
    case AF_ACT_LINEAR: for (j = 0; j < n; j++) dx[j] = dy[j]; break;
    case AF_ACT_SIGMOID: for (j = 0; j < n; j++) dx[j] = dy[j] * (y[j] * ((T)1 - y[j])); break;
    case AF_ACT_TANH: for (j = 0; j < n; j++) dx[j] = dy[j] * ((T)1 - y[j] * y[j]); break;
    case AF_ACT_RELU: for (j = 0; j < n; j++) dx[j] = x[j] <= 0 ? (T)0 : dy[j]; break;
    case AF_ACT_LEAKY_RELU: for (j = 0; j < n; j++) dx[j] = x[j] > 0 ? dy[j] : p * dy[j]; break;
    /* elu'(x) = alpha e^x = y + alpha for x <= 0 */
    case AF_ACT_ELU: for (j = 0; j < n; j++) dx[j] = x[j] > 0 ? dy[j] : dy[j] * (y[j] + p); break;
    /* selu'(x) = scale alpha e^x = y + scale alpha for x <= 0 */
    case AF_ACT_SELU:
        for (j = 0; j < n; j++)
            dx[j] = x[j] > 0 ? dy[j] * SELU_SCALE : dy[j] * (y[j] + SELU_SCALE * SELU_ALPHA);
        break;
    case AF_ACT_SOFTMAX: {
        /* Jacobian-vector product: dx_j = y_j (dy_j - sum_i dy_i y_i) */
        T dot = 0;
        for (j = 0; j < n; j++) dot += dy[j] * y[j];
        for (j = 0; j < n; j++) dx[j] = y[j] * (dy[j] - dot);
        break;
    }
    /* gelu'(x) = Phi(x) + x phi(x),  phi(x) = e^(-x^2/2) / sqrt(2 pi) */
    case AF_ACT_GELU:
        for (j = 0; j < n; j++) {
            T cdf = (T)0.5 * ((T)1 + GELU_ERF(x[j] * (T)M_SQRT1_2));
            T pdf = VEXP((T)-0.5 * x[j] * x[j]) * (T)0.39894228040143267793994605993438;
            dx[j] = dy[j] * (cdf + x[j] * pdf);
        }
        break;
    /* swish'(x) = s (1 + x (1 - s)),  s = sigmoid(x) */
    case AF_ACT_SWISH:
        for (j = 0; j < n; j++) {
            T sg = (T)1 / ((T)1 + VEXP_DEN(-x[j]));
            dx[j] = dy[j] * (sg * ((T)1 + x[j] * ((T)1 - sg)));
        }
        break;
    default: break;
    }
}

#undef GELU_ERF
#undef SELU_ALPHA
#undef SELU_SCALE
#undef KN
#undef TANH_ROW
#include "dtype_end.h"
