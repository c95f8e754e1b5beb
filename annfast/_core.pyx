# cython: language_level=3
"""annfast._core: the Cython boundary to the C engine in csrc/.

One extension module so engine state (ISA, threads) is shared; each topic lives in its own .pxi.
Functions here validate, convert, release the GIL around the C call and map status codes to
Python exceptions. Numerics belong in csrc/.
"""
include "_decl.pxi"
include "_config.pxi"
include "_tutorial.pxi"
include "_checks.pxi"
include "_optim.pxi"
include "_net.pxi"
include "_funcs.pxi"
include "_norm.pxi"
include "_gemm.pxi"
include "_threads.pxi"
