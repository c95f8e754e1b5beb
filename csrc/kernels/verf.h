/* verf.h: branch-free erf(x) for float that compilers vectorise inside loops (the exact GELU's
 * x Phi(x) in float32; double keeps libm's erf).
 *
 *   |x| <= 1:        erf(x) = x P(x^2),  P of degree 6
 *   1 < |x| < 3.92:  erf(x) = 1 - e^(-x^2) Q((|x| - 2.5) / 1.5),  Q of degree 10
 *   |x| >= 3.92:     erf(x) = 1  (erfc(3.92) < 2^-25)
 * with the sign of x. P and Q are weighted least-squares fits (relative error) of erf(x)/x on
 * [0, 1] (1.4e-9) and of erfc(x) e^(x^2) on [1, 4] (1.8e-7, i.e. below 3e-8 of erf), computed
 * for annfast with NumPy. Accuracy: within 3 ulp of erf in float32; NaN in gives NaN out. */
#ifndef AF_VERF_H
#define AF_VERF_H
#include <math.h>

#include "vexp.h"

static inline float af_erf_f32(float x)
{
    float a = fabsf(x), u = a * a;
    float p = 7.89806637126852e-05f;
    p = p * u - 0.0008024311698093077f;
    p = p * u + 0.005190048820812429f;
    p = p * u - 0.02685480601782293f;
    p = p * u + 0.11283612364857601f;
    p = p * u - 0.37612628836743056f;
    p = p * u + 1.1283791665082517f;
    float t = (a - 2.5f) * 0.6666666666666666f;
    float q = 8.63915522672967e-05f;
    q = q * t - 0.00024351201712899734f;
    q = q * t + 0.00039255978180146515f;
    q = q * t - 0.0009199903184185403f;
    q = q * t + 0.002404656954397467f;
    q = q * t - 0.005608494407406856f;
    q = q * t + 0.012491442743203905f;
    q = q * t - 0.026998679721613513f;
    q = q * t + 0.05611006180694543f;
    q = q * t - 0.11152133686647298f;
    q = q * t + 0.2108063746397006f;
    float big = 1.0f - af_exp_f32(-u) * q;
    /* NaN fails both comparisons and takes `big`, which is NaN */
    float r = a <= 1.0f ? a * p : (a >= 3.92f ? 1.0f : big);
    return copysignf(r, x);
}

#endif
