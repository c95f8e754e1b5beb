"""Matrix multiply on annfast's own GEMM engine (csrc/gemm.c).

``matmul(a, b)`` computes ``op(a) @ op(b)`` with the packed, cache-blocked, multi-threaded C
kernels; results are bitwise identical for any ``annfast.set_num_threads`` value.
"""
from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _core

__all__ = ["matmul"]


def _result_dtype(a, b):
    """NumPy's promotion, restricted to the two dtypes the engine computes in.

    float32 with float32 stays float32, anything involving float64 is float64 (as NumPy).
    Integer and bool inputs, alone or mixed with float32, promote as NumPy does: int8/int16/uint8/
    uint16 with float32 give float32, wider ints give float64, and int @ int (which NumPy would
    compute in integers) is computed and returned as float64. float16 is computed as float32.
    Complex and non-numeric inputs raise TypeError.
    """
    for name, x in (("a", a), ("b", b)):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must have a real numeric dtype (bool, int or float), "
                            f"got dtype {x.dtype}")
    dt = np.result_type(a.dtype, b.dtype)
    if dt.kind == "f":
        return np.dtype(np.float32) if dt.itemsize <= 4 else np.dtype(np.float64)
    return np.dtype(np.float64)


def _operand(x, dtype):
    """x as a 2-D array of `dtype` the C code can read without copying when possible.

    Returns (array, transposed): a Fortran-ordered array (e.g. ``w.T``) is passed as its
    C-ordered transpose with the transpose flag flipped; other views with unit inner stride are
    passed with their row stride as leading dimension; anything else is copied."""
    if x.dtype != dtype or not x.flags.aligned:
        x = x.astype(dtype)  # also byte-swapped ('>f8') and misaligned input: a native copy
    item = x.itemsize
    rows, cols = x.shape
    if (cols <= 1 or x.strides[1] == item) and (rows <= 1 or x.strides[0] >= cols * item) \
            and (rows <= 1 or x.strides[0] % item == 0):
        return x, False
    if (rows <= 1 or x.strides[0] == item) and (cols <= 1 or x.strides[1] >= rows * item) \
            and (cols <= 1 or x.strides[1] % item == 0):
        return x.T, True
    return np.ascontiguousarray(x), False


def matmul(a: ArrayLike, b: ArrayLike, *, trans_a: bool = False, trans_b: bool = False,
           out: Optional[np.ndarray] = None, check_finite: bool = True) -> np.ndarray:
    """Matrix product ``op(a) @ op(b)`` with ``op(x) = x.T`` when ``trans_x`` is true.

    Parameters
    ----------
    a, b : array_like, 1-D or 2-D, real numbers
        1-D operands follow ``numpy.matmul``: a 1-D ``a`` is a row vector, a 1-D ``b`` a column
        vector, and the added dimension is removed from the result (``trans_*`` must then be
        False). Arrays with more than 2 dimensions raise ValueError.
        Dtypes: float32 stays float32, float64 stays float64, mixed and integer inputs follow
        NumPy's promotion except that integer-only products are computed in float64 (see
        ``_result_dtype``).
    trans_a, trans_b : bool
        Use the transpose of ``a`` / ``b`` without copying it.
    out : ndarray, optional
        C-contiguous array of the result's shape and dtype (in either byte order), not
        overlapping ``a`` or ``b``; the result is written there and ``out`` is returned.

    check_finite : bool
        Reject NaN/inf in ``a`` and ``b`` with ValueError (default). Pass False to compute with
        them and propagate NaN as NumPy. The check costs nothing measurable: for float32/float64
        operands read in place it runs inside the product, on the inputs or on each finished
        block of the result while it is in cache (a NaN or inf input always reaches the result),
        whichever is smaller. The result may then be computed before the error is found: a new
        result array is discarded, and ``out`` is filled with NaN before ValueError is raised,
        so it never holds a half-written product.

    Notes
    -----
    Strided views whose rows are contiguous (e.g. ``x[:, 2:10]``) and transposed views
    (``x.T``) are read in place; other layouts, and arrays in non-native byte order (``'>f8'``)
    or at misaligned addresses, are copied first.

    Examples
    --------
    >>> import numpy as np, annfast
    >>> annfast.matmul(np.ones((2, 3)), np.ones((3, 2))).tolist()
    [[3.0, 3.0], [3.0, 3.0]]
    >>> annfast.matmul(np.ones((3, 2), np.float32), np.ones((3, 4), np.float32), trans_a=True).shape
    (2, 4)
    """
    for name, flag in (("trans_a", trans_a), ("trans_b", trans_b), ("check_finite", check_finite)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__} {flag!r}")
    # Fast path: two 2-D arrays of one float dtype in a layout read in place (and a valid `out`);
    # the NaN/inf check then runs inside the C product (see _core._matmul_fast).
    r = _core._matmul_fast(a, b, bool(trans_a), bool(trans_b), out, bool(check_finite))
    if r is not None:
        return r
    if check_finite:
        for name, x in (("a", a), ("b", b)):
            try:
                finite = x is None or isinstance(x, (str, bytes)) or _core.all_finite(x)
            except (ValueError, TypeError):
                finite = True  # not convertible: the checks below give the precise error
            if not finite:
                raise ValueError(f"{name} contains NaN or inf; pass check_finite=False to "
                                 "compute with non-finite values as NumPy does")
    a_in = np.asarray(a)
    b_in = np.asarray(b)
    dtype = _result_dtype(a_in, b_in)
    for name, x in (("a", a_in), ("b", b_in)):
        if x.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D, got {x.ndim}-D with shape {x.shape}")
    if (a_in.ndim == 1 and trans_a) or (b_in.ndim == 1 and trans_b):
        raise ValueError("trans_a/trans_b apply to 2-D operands only; got a 1-D operand "
                         "with its transpose flag set")
    a2 = a_in.reshape(1, -1) if a_in.ndim == 1 else a_in
    b2 = b_in.reshape(-1, 1) if b_in.ndim == 1 else b_in
    ta, tb = bool(trans_a), bool(trans_b)
    m, k = (a2.shape[1], a2.shape[0]) if ta else a2.shape
    kb, n = (b2.shape[1], b2.shape[0]) if tb else b2.shape
    if k != kb:
        raise ValueError(f"matmul: inner dimensions differ: op(a) has shape {(m, k)} "
                         f"(a.shape={a_in.shape}, trans_a={ta}) and op(b) has shape {(kb, n)} "
                         f"(b.shape={b_in.shape}, trans_b={tb})")
    shape = (m, n)
    if a_in.ndim == 1 and b_in.ndim == 1:
        shape = ()
    elif a_in.ndim == 1:
        shape = (n,)
    elif b_in.ndim == 1:
        shape = (m,)
    if out is None:
        result = np.empty(shape, dtype=dtype)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        if out.shape != shape or out.dtype.newbyteorder("=") != dtype:
            raise ValueError(f"out must have shape {shape} and dtype {dtype}, got shape "
                             f"{out.shape} and dtype {out.dtype}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writeable C-contiguous array")
        if np.shares_memory(out, a_in) or np.shares_memory(out, b_in):
            raise ValueError("out must not overlap a or b")
        # C writes native numbers to aligned memory: otherwise compute aside and copy in
        result = out if out.dtype.isnative and out.flags.aligned else np.empty(shape, dtype)
    A, fa = _operand(a2, dtype)
    B, fb = _operand(b2, dtype)
    _core.gemm(ta != fa, tb != fb, 1.0, A, B, 0.0, result.reshape(m, n))
    if out is not None and result is not out:
        out[...] = result
        return out
    if out is None and result.ndim == 0:
        return result[()]  # 1-D @ 1-D gives a scalar, as numpy.matmul
    return result
