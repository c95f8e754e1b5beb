/* isa_ctx.c: the kernel table of each instruction-set path (isa_ctx.h). */
#include "isa_ctx.h"

/* Every family's kernels of path ISA for one dtype. Batch norm and the optimisers have a baseline
 * and an AVX2+FMA copy only (BLK: the AVX-512 path uses the AVX2 one); the generic dropout block
 * is the scalar loop of dropout_impl.h (DROP = NULL). */
#define AF_KERNELS(ISA, BLK, DROP, SUF)                                                            \
    {                                                                                              \
        .gemm = &af_gemm_##ISA##_##SUF,                                                            \
        .act_rowf = af_act_rowf_##ISA##_##SUF,                                                     \
        .act_rowb = af_act_rowb_##ISA##_##SUF,                                                     \
        .vexp_row = af_vexp_row_##ISA##_##SUF,                                                     \
        .rows = &af_rows_##ISA##_##SUF,                                                            \
        .conv = &af_conv_##ISA##_##SUF,                                                            \
        .rnn_fwd = af_rnn_fwd_##ISA##_##SUF,                                                       \
        .rnn_bwd = af_rnn_bwd_##ISA##_##SUF,                                                       \
        .opt_block = af_opt_block_##BLK##_##SUF,                                                   \
        .bn = &af_bn_##BLK##_##SUF,                                                                \
        .dropout_blk = DROP,                                                                       \
    }

static const af_kernels k_generic = {AF_ISA_GENERIC, AF_KERNELS(generic, generic, NULL, f32),
                                     AF_KERNELS(generic, generic, NULL, f64)};

#if AF_ISA_X86
static const af_kernels k_avx2 = {AF_ISA_AVX2,
                                  AF_KERNELS(avx2, avx2, af_dropout_blk_avx2_f32, f32),
                                  AF_KERNELS(avx2, avx2, af_dropout_blk_avx2_f64, f64)};

static const af_kernels k_avx512 = {AF_ISA_AVX512,
                                    AF_KERNELS(avx512, avx2, af_dropout_blk_avx512_f32, f32),
                                    AF_KERNELS(avx512, avx2, af_dropout_blk_avx512_f64, f64)};
#endif

/* Indexed by af_isa; NULL: the path is not in this build. */
static const af_kernels *const tables[AF_ISA_AVX512 + 1] = {
    [AF_ISA_GENERIC] = &k_generic,
#if AF_ISA_X86
    [AF_ISA_AVX2] = &k_avx2,
    [AF_ISA_AVX512] = &k_avx512,
#endif
};

const af_kernels *af_isa_table(af_isa isa)
{
    return (unsigned)isa <= AF_ISA_AVX512 ? tables[isa] : NULL;
}
