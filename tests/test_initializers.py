"""Initialisers: statistics vs formulas, bounds, fans, seeded reproducibility, names and configs."""
import json
import math

import numpy as np
import pytest

from annfast import initializers as ini

SHAPE = (300, 500)  # 150k draws: fan_in 300, fan_out 500
N = SHAPE[0] * SHAPE[1]

# name -> (expected mean, expected std, uniform bound or None)
EXPECTED = {
    "random_normal": (0.0, 0.05, None),
    "random_uniform": (0.0, 0.1 / math.sqrt(12), 0.05),
    "glorot_normal": (0.0, math.sqrt(2 / 800), None),
    "glorot_uniform": (0.0, math.sqrt(6 / 800) / math.sqrt(3), math.sqrt(6 / 800)),
    "he_normal": (0.0, math.sqrt(2 / 300), None),
    "he_uniform": (0.0, math.sqrt(6 / 300) / math.sqrt(3), math.sqrt(6 / 300)),
    "lecun_normal": (0.0, math.sqrt(1 / 300), None),
    "lecun_uniform": (0.0, math.sqrt(3 / 300) / math.sqrt(3), math.sqrt(3 / 300)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_statistics_match_formula(name, dtype):
    mean, std, bound = EXPECTED[name]
    w = ini.get(name)(SHAPE, np.random.default_rng(42), dtype)
    assert w.shape == SHAPE and w.dtype == dtype and w.flags.c_contiguous
    # sample mean has std sigma / sqrt(N); sample std has relative std ~ 1 / sqrt(2N) (normal)
    # and smaller for uniform. Six-sigma bands: a wrong scale (e.g. fan_out instead of fan_in,
    # or a missing sqrt(3)) is off by >= 20%, far outside them.
    assert abs(w.mean() - mean) < 6 * std / math.sqrt(N)
    assert abs(w.std() / std - 1) < 6 / math.sqrt(2 * N)
    if bound is not None:
        assert w.min() >= -bound and w.max() <= bound
        assert w.max() > bound * (1 - 1e-3) and w.min() < -bound * (1 - 1e-3)
    else:
        # normal: about 4.55% of draws beyond 2 sigma (untruncated, as torch.nn.init)
        frac = np.mean(np.abs(w - mean) > 2 * std)
        assert abs(frac - 0.0455) < 6 * math.sqrt(0.0455 * 0.9545 / N)


def test_constants():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(ini.get("zeros")((3, 4), rng, np.float32), np.zeros((3, 4)))
    np.testing.assert_array_equal(ini.get("ones")((5,), rng, np.float64), np.ones(5))


def test_parameterised_random():
    w = ini.RandomNormal(mean=2.0, stddev=0.5)((200, 500), np.random.default_rng(1))
    assert abs(w.mean() - 2.0) < 6 * 0.5 / math.sqrt(w.size)
    assert abs(w.std() / 0.5 - 1) < 6 / math.sqrt(2 * w.size)
    u = ini.RandomUniform(1.0, 3.0)((200, 500), np.random.default_rng(1))
    assert u.min() >= 1.0 and u.max() <= 3.0
    assert abs(u.mean() - 2.0) < 6 * (2 / math.sqrt(12)) / math.sqrt(u.size)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seeded_reproducibility(name):
    f = ini.get(name)
    a = f((20, 30), np.random.default_rng(7), np.float64)
    b = f((20, 30), np.random.default_rng(7), np.float64)
    c = f((20, 30), np.random.default_rng(8), np.float64)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # one seed gives the same weights in both dtypes (drawn in float64, then rounded)
    a32 = f((20, 30), np.random.default_rng(7), np.float32)
    np.testing.assert_array_equal(a32, a.astype(np.float32))
    # an int seed is accepted in place of a Generator
    np.testing.assert_array_equal(f((20, 30), 7, np.float64), a)


@pytest.mark.parametrize("name", ["glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
                                  "lecun_normal", "lecun_uniform"])
def test_gain_scales_std_and_bound(name):
    mean, std, bound = EXPECTED[name]
    cls = type(ini.get(name))
    w = cls(gain=4.0)(SHAPE, np.random.default_rng(3), np.float64)
    assert abs(w.std() / (4 * std) - 1) < 6 / math.sqrt(2 * N)
    if bound is not None:
        assert np.abs(w).max() <= 4 * bound and np.abs(w).max() > 4 * bound * (1 - 1e-3)
    assert cls(gain=4.0).get_config() == {"class_name": name, "gain": 4.0}
    assert ini.get({"class_name": name, "gain": 4.0}) == cls(gain=4.0)
    with pytest.raises(ValueError, match="gain"):
        cls(gain=0.0)


def test_compute_fans():
    assert ini.compute_fans((784, 256)) == (784, 256)
    assert ini.compute_fans((10,)) == (10, 10)
    assert ini.compute_fans(()) == (1, 1)
    assert ini.compute_fans((3, 4, 5)) == (15, 20)
    assert ini.compute_fans(7) == (7, 7)
    # the scale uses shape[0] as fan_in: a transposed shape gives another He std
    he = ini.HeNormal()
    assert he.std((100, 10)) == math.sqrt(2 / 100)
    assert he.std((10, 100)) == math.sqrt(2 / 10)
    assert ini.GlorotUniform().limit((100, 10)) == pytest.approx(math.sqrt(6 / 110), rel=1e-15)


def test_aliases_and_get():
    assert isinstance(ini.get("xavier_normal"), ini.GlorotNormal)
    assert isinstance(ini.get("xavier_uniform"), ini.GlorotUniform)
    assert isinstance(ini.get("kaiming_normal"), ini.HeNormal)
    assert isinstance(ini.get("Kaiming_Uniform"), ini.HeUniform)
    assert isinstance(ini.get("lecun_normal"), ini.LecunNormal)

    def custom(shape, rng, dtype):
        return np.full(shape, 0.5, dtype=dtype)

    assert ini.get(custom) is custom
    with pytest.raises(ValueError, match="unknown initializer 'he'"):
        ini.get("he")
    with pytest.raises(TypeError, match="initializer must be"):
        ini.get(3.5)


def test_default_for_activation():
    assert isinstance(ini.default_for("relu"), ini.HeNormal)
    assert isinstance(ini.default_for("leaky_relu"), ini.HeNormal)
    assert isinstance(ini.default_for("elu"), ini.HeNormal)
    assert isinstance(ini.default_for("selu"), ini.LecunNormal)
    for act in (None, "linear", "sigmoid", "tanh", "softmax"):
        assert isinstance(ini.default_for(act), ini.GlorotUniform)


@pytest.mark.parametrize("init", [ini.RandomNormal(1.0, 2.0), ini.RandomUniform(-1, 2), ini.HeUniform(),
                                  ini.GlorotNormal(gain=4.0),
                                  ini.Zeros(), ini.LecunNormal()])
def test_config_round_trip(init):
    cfg = json.loads(json.dumps(ini.serialize(init)))
    again = ini.get(cfg)
    assert again == init
    np.testing.assert_array_equal(again((4, 5), 3), init((4, 5), 3))
    assert ini.serialize(lambda s, r, d: None) is None


def test_argument_checks():
    f = ini.get("he_normal")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        f((2, 2), np.random.default_rng(0), np.int32)
    with pytest.raises(TypeError, match="rng must be"):
        f((2, 2), "seed", np.float64)
    with pytest.raises(ValueError, match="shape"):
        f((2, -1), np.random.default_rng(0), np.float64)
    with pytest.raises(ValueError, match="stddev"):
        ini.RandomNormal(stddev=-1)
    with pytest.raises(ValueError, match="maxval"):
        ini.RandomUniform(1, 0)
    with pytest.raises(ValueError, match="bad config"):
        ini.get({"class_name": "random_normal", "sigma": 1})


@pytest.mark.parametrize("shape", [(6, 6), (40, 12), (12, 40), (3, 5, 4), (1, 9), (9, 1)])
def test_orthogonal_rows_or_columns_orthonormal(shape):
    w = ini.Orthogonal(gain=2.5)(shape, np.random.default_rng(4), np.float64)
    assert w.shape == shape and w.dtype == np.float64
    m = w.reshape(-1, shape[-1]) / 2.5
    small = min(m.shape)
    g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T   # small x small
    # Householder QR in float64: orthonormal to a few ulps per entry
    np.testing.assert_allclose(g, np.eye(small), rtol=0, atol=20 * small * np.finfo(np.float64).eps)


def test_orthogonal_is_the_q_with_positive_r_diagonal_and_seeded():
    """Q of the QR of the seeded normal draw with R's diagonal made positive: the unique
    factorisation, so Q^T A is upper triangular with a positive diagonal (the sign fold that
    makes the distribution uniform)."""
    rng = np.random.default_rng(11)
    a = np.random.default_rng(11).normal(size=(30, 8))
    q = ini.Orthogonal()((30, 8), rng, np.float64)
    r = q.T @ a
    np.testing.assert_allclose(np.tril(r, -1), 0, atol=1e-12)
    assert (np.diag(r) > 0).all()
    np.testing.assert_array_equal(ini.Orthogonal()((30, 8), 11, np.float64), q)
    np.testing.assert_array_equal(ini.Orthogonal()((30, 8), 11, np.float32), q.astype(np.float32))
    # wide: the transpose of the tall case's draw
    np.testing.assert_array_equal(ini.Orthogonal()((8, 30), 11, np.float64), q.T)
    with pytest.raises(ValueError, match="2 or more axes"):
        ini.Orthogonal()((5,), 0, np.float64)


def test_orthogonal_leaves_numpy_blas_threads_as_they_were(monkeypatch):
    """The QR runs on one BLAS thread (threadpoolctl, when installed); the user's setting is
    back afterwards, and without threadpoolctl the values are the same."""
    a = ini.Orthogonal()((64, 16), 5, np.float64)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        threadpool_info = None
    if threadpool_info and any(d["user_api"] == "blas" for d in threadpool_info()):
        with threadpool_limits(limits=3, user_api="blas"):   # the user's setting
            b = ini.Orthogonal()((64, 16), 5, np.float64)
            assert {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"} == {3}
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(ini, "_BLAS_CONTROLLER", False)   # as if threadpoolctl were missing
    np.testing.assert_array_equal(ini.Orthogonal()((64, 16), 5, np.float64), a)
