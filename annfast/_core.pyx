# cython: language_level=3
"""annfast._core: the Cython boundary to the C engine in csrc/.

One extension module so engine state (ISA, threads) is shared; each topic lives in its own .pxi.
The C API is declared once, in _engine.pxd. Functions here validate, convert, release the GIL
around the C call and map status codes to Python exceptions. Numerics belong in csrc/.
"""
from annfast._engine cimport *

include "_decl.pxi"
include "_interrupt.pxi"
include "_config.pxi"
include "_tutorial.pxi"
include "_checks.pxi"
include "_optim.pxi"
include "_graph.pxi"
include "_split.pxi"
include "_funcs.pxi"
include "_norm.pxi"
include "_gemm.pxi"
include "_decode.pxi"
include "_threads.pxi"
include "_busy.pxi"
