/* vexp.h: branch-free exp(x) for float and double that compilers vectorise inside loops.
 *
 * glibc's exp is accurate but scalar (one call per element); activation loops (sigmoid, softmax)
 * spend most of their time there. This is the classic reduction:
 *     x = k ln2 + r,  k = rint(x / ln2),  |r| <= ln2/2
 *     e^x = 2^k * e^r,  e^r by its Taylor polynomial (degree 13 for double, 7 for float),
 * with ln2 split in a high part (trailing zero bits, so k*LN2_HI is exact) and a low part, and 2^k
 * built directly in the exponent bits. 2^k is applied as 2^k1 * 2^k2 (k1 + k2 = k) so results that
 * underflow to subnormals or overflow to inf come out right without branches.
 * Accuracy: within about 1 ulp of the correctly rounded result over the whole range (tested against
 * libm in tests/test_activations_exp.py); NaN in gives NaN out. */
#ifndef AF_VEXP_H
#define AF_VEXP_H

#include <stdint.h>
#include <string.h>

static inline double af_bits_to_f64(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t af_f64_to_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static inline float af_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t af_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* 2^k for an integer-valued double k in [-1022, 1023], via the exponent field. */
static inline double af_pow2i_f64(double k)
{
    const double magic = 6755399441055744.0; /* 1.5 * 2^52: k + magic holds k in its low bits */
    uint64_t bits = af_f64_to_bits(k + magic) - af_f64_to_bits(magic) + 1023u;
    return af_bits_to_f64(bits << 52);
}

/* The reduction and polynomial of e^x for x already clamped: 1 + p ~ e^r, and k + magic (x =
 * k ln2 + r; magic's low 12 bits are 0, so that double's bits end in k). */
static inline double af_exp_poly_f64(double x, double *kbp)
{
    const double log2e = 1.4426950408889634074, magic = 6755399441055744.0;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double kb = x * log2e + magic, k = kb - magic;  /* rint(x / ln2) */
    double r = (x - k * ln2_hi) - k * ln2_lo;
    /* e^r = sum r^i / i!, i <= 13: truncation error < 2e-18 for |r| <= 0.347 */
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r;     /* r + r^2 (1/2 + ...): keeps the leading terms exact-ish */
    *kbp = kb;
    return 1.0 + p;
}

static inline double af_exp_f64(double x)
{
    const double magic = 6755399441055744.0;
    x = x < -746.0 ? -746.0 : x;  /* beyond these e^x is 0 or inf; clamping keeps k in range */
    x = x > 710.0 ? 710.0 : x;
    double kb, p = af_exp_poly_f64(x, &kb), k = kb - magic;
    double k1 = (k * 0.5 + magic) - magic; /* split 2^k so both halves stay normal */
    return p * af_pow2i_f64(k1) * af_pow2i_f64(k - k1);
}

/* e^x for the denominators 1 + e^x of a sigmoid or tanh computed with subnormal results flushed
 * to 0 (fpenv.h: every annfast entry point and worker), with a third fewer operations: 2^k is
 * applied in one step, k kept in [-1023, 1024] by clamping x to [-709, 710], where 2^-1023 is
 * built as 0 and 2^1024 as inf. Where af_exp_f64's result is normal the two are the same bits;
 * below, e^x vanishes beside 1 either way; from k = 1024 (x > 709.43) this gives inf where
 * af_exp_f64 may still be finite, but 1 / (1 + e^x) is then below the smallest normal (flushed
 * to 0, as 1 / inf is) and 2 / (1 + e^x) vanishes beside 1. At the clamps both give 0 and inf
 * exactly. */
static inline double af_exp_den_f64(double x)
{
    x = x < -709.0 ? -709.0 : x;
    x = x > 710.0 ? 710.0 : x;
    double kb, p = af_exp_poly_f64(x, &kb);
    return p * af_bits_to_f64((af_f64_to_bits(kb) + 1023u) << 52); /* 2^k straight from k + magic */
}

static inline float af_pow2i_f32(float k)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    uint32_t bits = af_f32_to_bits(k + magic) - af_f32_to_bits(magic) + 127u;
    return af_bits_to_f32(bits << 23);
}

/* af_exp_poly_f64 for float: degree 7 (magic's low 9 bits are 0) */
static inline float af_exp_poly_f32(float x, float *kbp)
{
    const float log2e = 1.44269504088896341f, magic = 12582912.0f;
    const float ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723212e-6f;
    float kb = x * log2e + magic, k = kb - magic;
    float r = (x - k * ln2_hi) - k * ln2_lo;
    /* degree 7: truncation error < 6e-9 relative for |r| <= 0.347 */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * (r * r) + r;
    *kbp = kb;
    return 1.0f + p;
}

static inline float af_exp_f32(float x)
{
    const float magic = 12582912.0f;
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    float kb, p = af_exp_poly_f32(x, &kb), k = kb - magic;
    float k1 = (k * 0.5f + magic) - magic;
    return p * af_pow2i_f32(k1) * af_pow2i_f32(k - k1);
}

/* af_exp_den_f64 for float: x clamped to [-88.3, 89], k in [-127, 128] */
static inline float af_exp_den_f32(float x)
{
    x = x < -88.3f ? -88.3f : x;
    x = x > 89.0f ? 89.0f : x;
    float kb, p = af_exp_poly_f32(x, &kb);
    return p * af_bits_to_f32((af_f32_to_bits(kb) + 127u) << 23);
}

#endif
