# Declarations from csrc/annfast.h shared by every topic .pxi.
import threading as _threading

cdef extern from "annfast.h" nogil:
    ctypedef enum af_status:
        AF_OK
        AF_EINVAL
        AF_ESHAPE
        AF_ENOMEM
        AF_ENONFINITE
        AF_EINTR
        AF_EISA
    ctypedef enum af_isa:
        AF_ISA_GENERIC
        AF_ISA_AVX2
        AF_ISA_AVX512
    ctypedef enum af_act:
        AF_ACT_LINEAR
        AF_ACT_SIGMOID
        AF_ACT_TANH
        AF_ACT_RELU
        AF_ACT_LEAKY_RELU
        AF_ACT_ELU
        AF_ACT_SELU
        AF_ACT_SOFTMAX
        AF_ACT_COUNT
    ctypedef struct af_epilogue:
        const void *bias
        af_act act
        double act_param

    const char *af_status_str(af_status s)
    void af_init()
    int af_cpu_has(af_isa isa)
    af_status af_set_isa(af_isa isa)
    af_isa af_get_isa()
    af_isa af_best_isa()
    const char *af_isa_name(af_isa isa)
    int af_openmp_enabled()
    const char *af_compiler()
    void af_cpu_features(char *buf, size_t len)
    af_status af_set_num_threads(int n)
    int af_get_num_threads()
    int af_num_procs()


cdef int check_status(af_status s, str context) except -1:
    """Map a C status to a Python exception whose message names the call."""
    if s == AF_OK:
        return 0
    msg = "%s: %s" % (context, af_status_str(s).decode())
    if s == AF_ENOMEM:
        raise MemoryError(msg)
    if s == AF_EINTR:
        raise KeyboardInterrupt(msg)
    raise ValueError(msg)
