/* isa_ctx.h: the kernels of one instruction-set path (generic, AVX2+FMA, AVX-512) in one table,
 * af_kernels, with one static const table per path (isa_ctx.c). Internal.
 *
 * Why: one place decides which path runs. af_init (ANNFAST_ISA or the best path, cpu.c) and
 * af_set_isa point af_isa_cur at a table once; kernels read af_isa_ctx()->f32.gemm (or
 * AF_FN(af_kern)()->gemm in a dtype template) instead of testing the ISA at every call. Tests
 * force each path with ANNFAST_ISA or annfast.set_isa and compare the bits.
 *
 * af_isa_cur is a plain pointer, stored without a lock and read by kernels on every thread (some
 * per row or per step): af_set_isa must not be called while a kernel runs, or one computation
 * could mix two paths. annfast.set_isa is for use between computations (its docstring says so). */
#ifndef AF_ISA_CTX_H
#define AF_ISA_CTX_H
#include <stddef.h>
#include <stdint.h>

#include "annfast.h"
#include "act_kern.h"
#include "batchnorm_kern.h"
#include "conv_kern.h"
#include "dropout_kern.h"
#include "gemm_kern.h"
#include "optim_kernels.h"
#include "rnn_cell.h"
#include "rows.h"

/* The AVX2 and AVX-512 tables exist where every family compiles its x86 kernels (x86 with
 * GCC/Clang: the family macros agree there). */
#define AF_ISA_X86                                                                                 \
    (AF_GEMM_X86 && AF_ACT_X86 && AF_ROWS_X86 && AF_CONV_X86 && AF_RNN_X86 && AF_OPT_HAVE_AVX2 &&  \
     AF_BN_HAVE_AVX2 && AF_DROPOUT_X86)

#define AF_KERNELS_TYPE(T, SUF)                                                                    \
    typedef struct {                                                                               \
        const af_gemm_kinfo_##SUF *gemm; /* GEMM blocks and micro-kernels (gemm_kern.h) */         \
        /* activation rows and e^x (act_kern.h) */                                                 \
        void (*act_rowf)(af_act, T, size_t, const T *, T *);                                       \
        void (*act_rowb)(af_act, T, size_t, const T *, const T *, const T *, T *);                 \
        void (*vexp_row)(size_t, const T *, T *);                                                  \
        const af_rows_##SUF *rows;       /* layer norm, attention softmax (rows.h) */              \
        const af_conv_kinfo_##SUF *conv; /* direct convolution tiles (conv_kern.h) */              \
        void (*rnn_fwd)(int cell, const af_rnn_step_##SUF *s); /* recurrent steps (rnn_cell.h) */ \
        void (*rnn_bwd)(int cell, const af_rnn_step_##SUF *s);                                     \
        af_opt_block_fn_##SUF opt_block; /* optimiser step on one block (optim_kernels.h) */       \
        const af_bn_kern_##SUF *bn;      /* batch-norm column blocks (batchnorm_kern.h) */         \
        /* dropout block (dropout_kern.h); NULL: the scalar block of dropout_impl.h */             \
        void (*dropout_blk)(uint64_t key, uint32_t thr, T scale, uint64_t lo, size_t len,          \
                            const T *x, T *out);                                                   \
    } af_kernels_##SUF;
AF_KERNELS_TYPE(float, f32)
AF_KERNELS_TYPE(double, f64)
#undef AF_KERNELS_TYPE

typedef struct {
    af_isa isa; /* what af_get_isa reports */
    af_kernels_f32 f32;
    af_kernels_f64 f64;
} af_kernels;

/* The table of a path, or NULL where this build has none (isa_ctx.c). */
const af_kernels *af_isa_table(af_isa isa);

/* The table in use; set only by af_init and af_set_isa (cpu.c). NULL before af_init. */
extern const af_kernels *af_isa_cur;

static inline const af_kernels *af_isa_ctx(void)
{
    const af_kernels *k = af_isa_cur;
    if (!k) { /* a C caller that never called af_init: pick the path now */
        af_init();
        k = af_isa_cur;
    }
    return k;
}

static inline const af_kernels_f32 *af_kern_f32(void) { return &af_isa_ctx()->f32; }
static inline const af_kernels_f64 *af_kern_f64(void) { return &af_isa_ctx()->f64; }

#endif
