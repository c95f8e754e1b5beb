/* conv_kern.c: picks the direct convolution tiles of the selected instruction set. */
#include "conv_kern.h"

const af_conv_kinfo_f32 *af_conv_pick_f32(void)
{
    switch (af_get_isa()) {
#if AF_CONV_X86
    case AF_ISA_AVX512: return &af_conv_avx512_f32;
    case AF_ISA_AVX2: return &af_conv_avx2_f32;
#endif
    default: return &af_conv_generic_f32;
    }
}

const af_conv_kinfo_f64 *af_conv_pick_f64(void)
{
    switch (af_get_isa()) {
#if AF_CONV_X86
    case AF_ISA_AVX512: return &af_conv_avx512_f64;
    case AF_ISA_AVX2: return &af_conv_avx2_f64;
#endif
    default: return &af_conv_generic_f64;
    }
}
