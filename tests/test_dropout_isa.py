"""The vectorised dropout blocks (csrc/kernels/dropout_kern_impl.h, AVX2 and AVX-512) draw the
same masks as the scalar block, bit for bit, on every length (odd tails, several chunks and
blocks), keep NaN where it is dropped (x * 0), and match the documented per-element draws."""
import numpy as np
import pytest

import annfast
from annfast import _core


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masks_identical_on_every_isa(dtype):
    x = np.random.default_rng(1).standard_normal(20_001).astype(dtype)
    x[[0, 5, 130, 20_000]] = np.nan
    before = annfast.get_isa()
    from annfast._info import config
    outs = {}
    try:
        for isa in config()["supported_isas"]:
            annfast.set_isa(isa)
            outs[isa] = [(_core.dropout_mask(n, r, 7, 3, dtype), _core.dropout_apply(x[:n], r, 7, 3))
                         for n in (1, 2, 3, 127, 128, 129, 8191, 8193, 20_001) for r in (0.1, 0.5, 0.9)]
    finally:
        annfast.set_isa(before)
    ref = outs["generic"]
    for isa, got in outs.items():
        for (m0, y0), (m1, y1) in zip(ref, got):
            np.testing.assert_array_equal(m0, m1, err_msg=isa)
            np.testing.assert_array_equal(y0, y1, err_msg=isa)
    mask = ref[-2][0]       # n = 20001, rate 0.5
    draws = np.array([_core.dropout_draw(7, 3, i) for i in range(0, 20_001, 97)], dtype=np.uint64)
    np.testing.assert_array_equal(mask[::97] == 0, draws < np.uint64(2 ** 31))
    y = ref[-2][1]
    assert np.isnan(y[[0, 5, 130, 20_000]]).all()
