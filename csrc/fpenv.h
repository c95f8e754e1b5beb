/* fpenv.h: flush-to-zero / denormals-are-zero while annfast computes. Internal.
 *
 * Arithmetic on subnormal numbers (|x| < 1.2e-38 in float32, 2.2e-308 in float64) takes a
 * microcode assist on x86 (~100 cycles instead of 4): a network whose gradients decay into that
 * range would train many times slower for no useful precision. So every thread computing for
 * annfast runs with FTZ (subnormal results become 0) and DAZ (subnormal inputs read as 0):
 *   - the calling thread from entry to return of each public C entry point (AF_FP_SCOPE(), which
 *     restores the caller's MXCSR / FPCR exactly, exception flags included, on every return path);
 *   - annfast's pool workers for their whole life (pool.c; they run only annfast's code);
 *   - OpenMP worker threads inside the engine's parallel loops (AF_FP_SCOPE() in the loop body).
 * Every thread of a computation uses the same mode, so results stay bitwise identical for any
 * thread count. */
#ifndef AF_FPENV_H
#define AF_FPENV_H

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <xmmintrin.h>
typedef unsigned af_fpenv;
#define AF_FP_FLUSH 0x8040u /* MXCSR FTZ (bit 15) | DAZ (bit 6) */
static inline af_fpenv af_fp_get(void) { return _mm_getcsr(); }
static inline void af_fp_put(af_fpenv v) { _mm_setcsr(v); }
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
typedef unsigned long af_fpenv;
#define AF_FP_FLUSH (1ul << 24) /* FPCR.FZ: flushes subnormal inputs and outputs */
static inline af_fpenv af_fp_get(void)
{
    unsigned long v;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
    return v;
}
static inline void af_fp_put(af_fpenv v) { __asm__ __volatile__("msr fpcr, %0" : : "r"(v)); }
#else
typedef unsigned af_fpenv;
#define AF_FP_FLUSH 0u /* no portable control: subnormals computed as the hardware does */
static inline af_fpenv af_fp_get(void) { return 0; }
static inline void af_fp_put(af_fpenv v) { (void)v; }
#endif

/* Turn flushing on; returns the state to restore. Writes the register only when it changes. */
static inline af_fpenv af_fp_enter(void)
{
    af_fpenv old = af_fp_get();
    if ((old & AF_FP_FLUSH) != AF_FP_FLUSH) af_fp_put(old | AF_FP_FLUSH);
    return old;
}

/* Put back the state af_fp_enter returned (flags raised meanwhile are dropped with it). */
static inline void af_fp_leave(const af_fpenv *old)
{
    if (af_fp_get() != *old) af_fp_put(*old);
}

/* Flushing on until the end of the enclosing block, restored on every way out of it. */
#if defined(__GNUC__) || defined(__clang__)
#define AF_FP_SCOPE() \
    af_fpenv af_fp_saved_ __attribute__((cleanup(af_fp_leave), unused)) = af_fp_enter()
#else
#define AF_FP_SCOPE() ((void)0)
#endif

#endif
