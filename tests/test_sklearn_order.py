"""scikit-learn's epoch order drawn in C (_core.shuffle_like_numpy): the same permutation as
RandomState.shuffle on arange(n) followed by indexing, and the generator left in the same state."""
import numpy as np
import pytest

from annfast import _core


def numpy_way(order, rs):
    perm = np.arange(order.shape[0])
    rs.shuffle(perm)
    return order[perm]


@pytest.mark.parametrize("make", [
    lambda seed: np.random.RandomState(seed),                      # MT19937, inlined in C
    lambda seed: np.random.RandomState(np.random.PCG64(seed)),     # through the bitgen_t pointers
], ids=["mt19937", "pcg64"])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 17, 623, 624, 625, 1347, 5000, 70001])
def test_same_permutation_and_state_as_numpy(make, n):
    for seed in range(12):
        ref, ours = make(seed), make(seed)
        ref.uniform(size=seed % 7)     # start anywhere in the key (MT19937: pos 0..6 words in)
        ours.uniform(size=seed % 7)
        order = (np.arange(n, dtype=np.uint64)[::-1] * 7 + 3).copy()
        want = numpy_way(order.copy(), ref)
        assert _core.shuffle_like_numpy(order, ours) is True
        np.testing.assert_array_equal(order, want)
        assert ref.randint(1 << 30, size=5).tolist() == ours.randint(1 << 30, size=5).tolist()


def test_numpy_mt19937_is_drawn_inline():
    """The inlined generator agrees with this NumPy (else it falls back to NumPy's functions,
    correct but slower, and the tests above would not cover it)."""
    assert _core.shuffle_mt_inline_ok()


def test_many_epochs_in_a_row_cross_key_regenerations():
    ref, ours = np.random.RandomState(7), np.random.RandomState(7)
    order_ref = order = np.arange(1000, dtype=np.uint64)
    order = order.copy()
    for _ in range(40):   # about 56000 draws: the 624-word key regenerated ~90 times
        order_ref = numpy_way(order_ref, ref)
        _core.shuffle_like_numpy(order, ours)
        np.testing.assert_array_equal(order, order_ref)
    assert ref.uniform() == ours.uniform()


def test_other_generators_are_left_to_python():
    class Sub(np.random.RandomState):
        pass
    order = np.arange(10, dtype=np.uint64)
    for rs in (np.random.default_rng(0), Sub(0), None, object()):
        assert _core.shuffle_like_numpy(order, rs) is False
    np.testing.assert_array_equal(order, np.arange(10))


def test_rejects_wrong_array():
    rs = np.random.RandomState(0)
    with pytest.raises((TypeError, ValueError)):
        _core.shuffle_like_numpy(np.arange(10, dtype=np.int32), rs)
    with pytest.raises((TypeError, ValueError)):
        _core.shuffle_like_numpy(np.arange(20, dtype=np.uint64)[::2], rs)
