/* Clears what dtype_begin.h defined, so the implementation header can be included again. */
#undef T
#undef AF_FN
#undef EXP
#undef VEXP
#undef VEXP_DEN
#undef EXPM1
#undef TANH
#undef ERF
#undef LOG
#undef LOG1P
#undef FABS
#undef SQRT
#undef AF_T_MAX
#undef AF_DTYPE_F32
#undef AF_DTYPE_F64
