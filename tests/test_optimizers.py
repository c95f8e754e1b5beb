"""Optimisers (csrc/optim.c via annfast.optimizers): first steps vs hand-written NumPy updates for
both dtypes, vs torch.optim in float64, clipping bounds and thread-count determinism, schedules,
configs and argument validation."""
import json

import numpy as np
import pytest

import annfast
from annfast import _core, optimizers as opt


# ---- NumPy references: textbook formulas, written independently of the C code --------------
def ref_run(kind, h, p, grads):
    """Apply len(grads) steps of optimiser `kind` with hyperparameters h to p (float64 math)."""
    p = p.astype(np.float64).copy()
    wd, dec = h.get("weight_decay", 0.0), h.get("decoupled_wd", False)
    lr = h["lr"]
    s1 = np.zeros_like(p)
    s2 = np.zeros_like(p)
    if kind == "adagrad":
        s1[:] = h["initial_accumulator"]
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if wd and not dec:
            g = g + wd * p
        if wd and dec:
            p = p * (1 - lr * wd)
        if kind == "sgd":
            mom = h.get("momentum", 0.0)
            if mom:
                s1 = mom * s1 + g if t > 1 else g.copy()
                step = g + mom * s1 if h.get("nesterov") else s1
            else:
                step = g
            p = p - lr * step
        elif kind == "adagrad":
            s1 = s1 + g ** 2
            p = p - lr * g / (np.sqrt(s1) + h["eps"])
        elif kind == "rmsprop":
            s1 = h["rho"] * s1 + (1 - h["rho"]) * g ** 2
            step = g / (np.sqrt(s1) + h["eps"])
            if h.get("momentum", 0.0):
                s2 = h["momentum"] * s2 + step
                step = s2
            p = p - lr * step
        elif kind == "adadelta":
            s1 = h["rho"] * s1 + (1 - h["rho"]) * g ** 2
            d = np.sqrt(s2 + h["eps"]) / np.sqrt(s1 + h["eps"]) * g
            s2 = h["rho"] * s2 + (1 - h["rho"]) * d ** 2
            p = p - lr * d
        elif kind == "adam":
            b1, b2 = h["beta1"], h["beta2"]
            s1 = b1 * s1 + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g ** 2
            mhat = s1 / (1 - b1 ** t)
            vhat = s2 / (1 - b2 ** t)
            p = p - lr * mhat / (np.sqrt(vhat) + h["eps"])
        else:
            raise AssertionError(kind)
    return p


CASES = {
    "sgd": {"kind": "sgd", "lr": 0.1},
    "sgd_wd": {"kind": "sgd", "lr": 0.1, "weight_decay": 0.05},
    "momentum": {"kind": "sgd", "lr": 0.05, "momentum": 0.9},
    "nesterov": {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    "sgdw": {"kind": "sgd", "lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "decoupled_wd": True},
    "adagrad": {"kind": "adagrad", "lr": 0.1, "eps": 1e-10, "initial_accumulator": 0.0},
    "adagrad_init": {"kind": "adagrad", "lr": 0.1, "eps": 1e-10, "initial_accumulator": 0.1,
                     "weight_decay": 0.01},
    "rmsprop": {"kind": "rmsprop", "lr": 0.01, "rho": 0.99, "eps": 1e-8},
    "rmsprop_mom": {"kind": "rmsprop", "lr": 0.01, "rho": 0.9, "eps": 1e-8, "momentum": 0.8,
                    "weight_decay": 0.02},
    "adadelta": {"kind": "adadelta", "lr": 1.0, "rho": 0.9, "eps": 1e-6},
    "adadelta_wd": {"kind": "adadelta", "lr": 0.5, "rho": 0.95, "eps": 1e-6, "weight_decay": 0.1},
    "adam": {"kind": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "adam_l2": {"kind": "adam", "lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-8,
                "weight_decay": 0.1},
    "adamw": {"kind": "adam", "lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
              "weight_decay": 0.1, "decoupled_wd": True},
}


ISAS = [i for i in ("generic", "avx2") if i in _core.build_info()["supported_isas"]]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run a test once per kernel path (baseline and AVX2+FMA where the CPU has it)."""
    before = annfast.get_isa()  # ANNFAST_ISA's path, or the best one
    annfast.set_isa(request.param)
    yield request.param
    annfast.set_isa(before)


def run_c(cfg, p0, grads, dtype):
    p = p0.astype(dtype)
    state = np.zeros(_core.optim_slots(cfg) * p.size, dtype=dtype)
    for t, g in enumerate(grads, start=1):
        _core.optim_step(cfg, p, g.astype(dtype), state, t)
    return p


def data(n=1000, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) * (0.5 + t) for t in range(steps)]
    # a few tiny and exactly-zero gradients exercise eps
    for g in grads:
        g[:5] = 0.0
        g[5:10] *= 1e-9
    return p0, grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_steps_match_numpy_float64(name, isa):
    cfg = CASES[name]
    p0, grads = data()
    got = run_c(cfg, p0, grads, np.float64)
    want = ref_run(cfg["kind"], cfg, p0, grads)
    # float64: same formulas in a different evaluation order; each step rounds a handful of
    # O(1) terms, so the error is a few eps64 (2.2e-16) times |p| or the step terms: 1e-12
    # relative with a 1e-13 absolute floor (entries near zero after cancellation) is generous.
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    assert not np.array_equal(got, p0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_steps_match_numpy_float32(name, isa):
    cfg = CASES[name]
    p0, grads = data()
    p0 = p0.astype(np.float32).astype(np.float64)
    grads = [g.astype(np.float32).astype(np.float64) for g in grads]
    got = run_c(cfg, p0, grads, np.float32)
    want = ref_run(cfg["kind"], cfg, p0, grads)
    # float32 arithmetic vs a float64 reference on the same float32 inputs: each step rounds
    # ~10 operations at eps32/2 = 6e-8 relative to values of size |p| (up to ~4) or the step
    # (<= lr * O(1)); five steps bound the error by ~3e-6 and we observe <= 6e-7. A wrong formula
    # (missing bias correction, momentum or decay) moves p by >= 1e-4 in these cases.
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=2e-6)
    assert got.dtype == np.float32


@pytest.mark.parametrize("name", ["adam", "rmsprop_mom", "adadelta", "momentum"])
def test_state_layout_is_slot_major(name):
    """Slot 0 occupies state[:n], slot 1 state[n:2n] (the layout the engine relies on)."""
    cfg = CASES[name]
    rng = np.random.default_rng(1)
    n = 7
    p0 = rng.standard_normal(n)
    p = p0.copy()
    g = rng.standard_normal(n)
    state = np.zeros(_core.optim_slots(cfg) * n)
    _core.optim_step(cfg, p, g, state, 1)
    if cfg["kind"] == "adam":
        np.testing.assert_allclose(state[:n], (1 - cfg["beta1"]) * g, rtol=1e-15)
        np.testing.assert_allclose(state[n:], (1 - cfg["beta2"]) * g * g, rtol=1e-15)
    elif cfg["kind"] == "rmsprop":
        gp = g + cfg["weight_decay"] * p0
        E = (1 - cfg["rho"]) * gp ** 2
        np.testing.assert_allclose(state[:n], E, rtol=1e-15)
        np.testing.assert_allclose(state[n:], gp / (np.sqrt(E) + cfg["eps"]), rtol=1e-15)
    elif cfg["kind"] == "adadelta":
        np.testing.assert_allclose(state[:n], (1 - cfg["rho"]) * g * g, rtol=1e-15)
        assert np.all(state[n:] > 0)
    else:
        np.testing.assert_array_equal(state, g)  # first momentum buffer is the gradient


def test_full_state_length_also_accepted():
    """Callers may size state by af_optim_state_slots(kind) (2 for RMSprop) even if 1 is used."""
    cfg = CASES["rmsprop"]
    p0, grads = data(n=50, steps=2)
    p = p0.copy()
    state = np.zeros(2 * 50)
    for t, g in enumerate(grads, 1):
        _core.optim_step(cfg, p, g, state, t)
    np.testing.assert_array_equal(p, run_c(cfg, p0, grads, np.float64))
    assert np.all(state[50:] == 0)


TORCH_CASES = [
    ("sgd", lambda t, p: t.optim.SGD(p, lr=0.1)),
    ("sgd_wd", lambda t, p: t.optim.SGD(p, lr=0.1, weight_decay=0.05)),
    ("momentum", lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("nesterov", lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adagrad", lambda t, p: t.optim.Adagrad(p, lr=0.1, eps=1e-10)),
    ("adagrad_init", lambda t, p: t.optim.Adagrad(p, lr=0.1, eps=1e-10, initial_accumulator_value=0.1,
                                                  weight_decay=0.01)),
    ("rmsprop", lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
    ("rmsprop_mom", lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8, momentum=0.8,
                                                 weight_decay=0.02)),
    ("adadelta", lambda t, p: t.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6)),
    ("adadelta_wd", lambda t, p: t.optim.Adadelta(p, lr=0.5, rho=0.95, eps=1e-6, weight_decay=0.1)),
    ("adam", lambda t, p: t.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)),
    ("adam_l2", lambda t, p: t.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)),
    ("adamw", lambda t, p: t.optim.AdamW(p, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
]


@pytest.mark.parametrize("name,make", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_optim_float64(name, make, isa):
    torch = pytest.importorskip("torch")
    p0, grads = data(n=2000, steps=8, seed=3)
    tp = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    topt = make(torch, [tp])
    for g in grads:
        tp.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
    got = run_c(CASES[name], p0, grads, np.float64)
    # float64, 8 steps: torch evaluates the same expressions (we mirror its operation order
    # where it matters), so differences are a few eps64; rtol 1e-12 plus an absolute floor of
    # 1e-13 for entries that cancel to ~0.
    np.testing.assert_allclose(got, tp.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("optimizer,name", [
    (lambda: opt.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01), "nesterov"),
    (lambda: opt.Adagrad(0.1, initial_accumulator_value=0.1, weight_decay=0.01), "adagrad_init"),
    (lambda: opt.RMSprop(0.01, rho=0.9, momentum=0.8, weight_decay=0.02), "rmsprop_mom"),
    (lambda: opt.Adadelta(0.5, rho=0.95, weight_decay=0.1), "adadelta_wd"),
    (lambda: opt.Adam(1e-2, beta_1=0.8, beta_2=0.99, weight_decay=0.1), "adam_l2"),
    (lambda: opt.AdamW(1e-2, weight_decay=0.1), "adamw"),
])
def test_classes_produce_the_c_configs(optimizer, name):
    o = optimizer()
    cfg = o.c_config(0)
    want = CASES[name]
    for key, value in want.items():
        assert cfg[key] == value, key
    p0, grads = data(n=100, steps=3)
    p = p0.copy()
    state = np.zeros(o.state_slots * p.size)
    for t, g in enumerate(grads, 1):
        o.update(p, g, state, t)
    np.testing.assert_array_equal(p, run_c(want, p0, grads, np.float64))


def test_defaults_follow_torch():
    torch = pytest.importorskip("torch")
    w = [torch.zeros(1, requires_grad=True)]
    pairs = [(opt.SGD(), torch.optim.SGD(w)), (opt.Adagrad(), torch.optim.Adagrad(w)),
             (opt.RMSprop(), torch.optim.RMSprop(w)), (opt.Adadelta(), torch.optim.Adadelta(w)),
             (opt.Adam(), torch.optim.Adam(w)), (opt.AdamW(), torch.optim.AdamW(w))]
    for ours, theirs in pairs:
        d = theirs.defaults
        if not isinstance(ours, opt.SGD):  # SGD keeps 0.01 (Keras; torch 2.x moved to 1e-3)
            assert ours.learning_rate == d["lr"]
        assert ours.weight_decay == d["weight_decay"]
        if "eps" in d:
            assert ours.epsilon == d["eps"]
        if "betas" in d:
            assert (ours.beta_1, ours.beta_2) == d["betas"]
        if "alpha" in d:
            assert ours.rho == d["alpha"]
        if "rho" in d:
            assert ours.rho == d["rho"]
        if "initial_accumulator_value" in d:
            assert ours.initial_accumulator_value == d["initial_accumulator_value"]


def test_state_slots():
    assert opt.SGD().state_slots == 0
    assert opt.SGD(momentum=0.9).state_slots == 1
    assert opt.Adagrad().state_slots == 1
    assert opt.RMSprop().state_slots == 1
    assert opt.RMSprop(momentum=0.5).state_slots == 2
    assert opt.Adadelta().state_slots == 2
    assert opt.Adam().state_slots == 2
    assert opt.AdamW().state_slots == 2


# ---- determinism ---------------------------------------------------------------------------
@pytest.fixture
def restore_threads():
    n = annfast.get_num_threads()
    yield
    annfast.set_num_threads(n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["adam", "rmsprop_mom", "nesterov", "adadelta", "adagrad_init"])
def test_step_identical_for_1_and_2_threads(name, dtype, restore_threads, isa):
    rng = np.random.default_rng(5)
    n = 200_003  # above the parallel threshold, not a multiple of the block size
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) for _ in range(3)]
    results = []
    for threads in (1, 2):
        annfast.set_num_threads(threads)
        results.append(run_c(CASES[name], p0, grads, dtype))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_norm_identical_for_1_and_2_threads(dtype, restore_threads):
    rng = np.random.default_rng(6)
    for n in (1, 4095, 4097, 100_000, 1_048_577, 3_000_001):
        g = rng.standard_normal(n).astype(dtype)
        annfast.set_num_threads(1)
        a = _core.l2_norm(g)
        annfast.set_num_threads(2)
        b = _core.l2_norm(g)
        assert a == b, n
        # summed in double: float64 input agrees with NumPy's pairwise sum to ~1e-15 relative;
        # float32 input is squared and summed in double, so it matches the float64 norm of the
        # same values equally well.
        np.testing.assert_allclose(a, np.linalg.norm(g.astype(np.float64)), rtol=1e-13)


# ---- clipping ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_value_bounds(dtype):
    rng = np.random.default_rng(7)
    g = (rng.standard_normal(100_001) * 3).astype(dtype)
    want = np.clip(g, -1.5, 1.5)
    _core.clip_value(g, 1.5)
    assert g.max() <= dtype(1.5) and g.min() >= dtype(-1.5)
    np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_norm(dtype, restore_threads):
    rng = np.random.default_rng(8)
    g0 = rng.standard_normal(300_000).astype(dtype)
    norm0 = float(np.linalg.norm(g0.astype(np.float64)))
    outs = []
    for threads in (1, 2):
        annfast.set_num_threads(threads)
        g = g0.copy()
        before = _core.clip_norm(g, 10.0)
        outs.append(g)
        np.testing.assert_allclose(before, norm0, rtol=1e-13)
    np.testing.assert_array_equal(outs[0], outs[1])
    g = outs[0]
    # the result has norm max_norm up to rounding of one scale per element (eps of the dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert np.linalg.norm(g.astype(np.float64)) <= 10.0 * (1 + tol)
    np.testing.assert_allclose(np.linalg.norm(g.astype(np.float64)), 10.0, rtol=tol)
    # direction preserved: g = g0 * (10 / norm0)
    np.testing.assert_allclose(g, g0 * (10.0 / norm0), rtol=2 * np.finfo(dtype).eps)
    # below the threshold nothing changes (bitwise)
    small = g0.copy()
    _core.clip_norm(small, 2 * norm0)
    np.testing.assert_array_equal(small, g0)


def test_optimizer_update_applies_clipping():
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal(50)
    g = rng.standard_normal(50) * 10
    o = opt.SGD(0.1, clipvalue=0.5, clipnorm=3.0)
    p = p0.copy()
    g_before = g.copy()
    o.update(p, g, np.zeros(0), 1)
    np.testing.assert_array_equal(g, g_before)  # caller's gradient untouched
    gc = g * min(1.0, 3.0 / np.linalg.norm(g))  # norm first, then value (as the C step)
    gc = np.clip(gc, -0.5, 0.5)
    np.testing.assert_allclose(p, p0 - 0.1 * gc, rtol=1e-14, atol=1e-15)


# ---- schedules -----------------------------------------------------------------------------
def test_step_decay_and_exponential_decay():
    s = opt.StepDecay(0.1, drop=0.5, every=3)
    assert [s(e) for e in range(7)] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    e = opt.ExponentialDecay(0.2, rate=0.9, steps=2)
    np.testing.assert_allclose([e(k) for k in range(4)], 0.2 * 0.9 ** (np.arange(4) / 2), rtol=1e-15)
    es = opt.ExponentialDecay(0.2, rate=0.9, steps=2, staircase=True)
    np.testing.assert_allclose([es(k) for k in range(4)], [0.2, 0.2, 0.18, 0.18], rtol=1e-15)
    o = opt.Adam(learning_rate=s)
    assert o.c_config(epoch=3)["lr"] == 0.05
    assert opt.SGD(learning_rate=lambda ep: 1.0 / (ep + 1)).c_config(3)["lr"] == 0.25


def test_callable_schedule_bad_value():
    o = opt.SGD(learning_rate=lambda ep: -1.0)
    with pytest.raises(ValueError, match="epoch 2"):
        o.c_config(2)
    with pytest.raises(ValueError, match="epoch"):
        opt.SGD(learning_rate=lambda ep: float("nan")).c_config(0)


# ---- configs -------------------------------------------------------------------------------
@pytest.mark.parametrize("o", [
    opt.SGD(0.1, momentum=0.9, nesterov=True, clipnorm=1.0), opt.Adagrad(clipvalue=0.5),
    opt.RMSprop(rho=0.9, momentum=0.1), opt.Adadelta(weight_decay=0.1), opt.Adam(epsilon=1e-7),
    opt.AdamW(learning_rate=opt.ExponentialDecay(0.01, 0.5, steps=4, staircase=True)),
    opt.SGD(learning_rate=opt.StepDecay(0.5, 0.1, 2)),
])
def test_config_round_trip_through_json(o):
    cfg = json.loads(json.dumps(o.get_config()))
    o2 = opt.Optimizer.from_config(cfg)
    assert type(o2) is type(o)
    assert o2.get_config() == o.get_config()
    for epoch in (0, 1, 5):
        assert o2.c_config(epoch) == o.c_config(epoch)
    assert opt.get(cfg).get_config() == o.get_config()
    assert type(o).from_config(cfg).get_config() == o.get_config()


def test_callable_lr_config_warns_and_saves_value():
    o = opt.SGD(learning_rate=lambda ep: 0.5 ** ep)
    o.c_config(2)
    with pytest.warns(UserWarning, match="cannot be serialised"):
        cfg = o.get_config()
    assert cfg["learning_rate"] == 0.25


def test_get():
    assert isinstance(opt.get("Adam"), opt.Adam)
    assert isinstance(opt.get("adamw"), opt.AdamW)
    assert isinstance(opt.get("sgd"), opt.SGD)
    inst = opt.RMSprop()
    assert opt.get(inst) is inst
    with pytest.raises(ValueError, match="unknown optimizer 'nadam'"):
        opt.get("nadam")
    with pytest.raises(TypeError, match="optimizer must be"):
        opt.get(3)
    with pytest.raises(ValueError, match="class_name"):
        opt.Optimizer.from_config({"class_name": "Nope"})
    with pytest.raises(ValueError, match="bad config for Adam"):
        opt.Optimizer.from_config({"class_name": "Adam", "momentum": 0.9})
    with pytest.raises(ValueError, match="class_name"):
        opt.SGD.from_config({"class_name": "Adam"})


# ---- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: opt.SGD(-0.1), "learning_rate"),
    (lambda: opt.SGD(float("nan")), "learning_rate"),
    (lambda: opt.SGD(momentum=1.0), "momentum"),
    (lambda: opt.SGD(momentum=-0.1), "momentum"),
    (lambda: opt.SGD(nesterov=True), "nesterov"),
    (lambda: opt.Adam(beta_1=1.0), "beta_1"),
    (lambda: opt.Adam(beta_2=-0.5), "beta_2"),
    (lambda: opt.Adam(epsilon=0.0), "epsilon"),
    (lambda: opt.RMSprop(rho=1.0), "rho"),
    (lambda: opt.Adagrad(initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda: opt.Adadelta(weight_decay=-1), "weight_decay"),
    (lambda: opt.Adam(clipnorm=0.0), "clipnorm"),
    (lambda: opt.Adam(clipvalue=-1.0), "clipvalue"),
    (lambda: opt.StepDecay(0.1, every=0), "every"),
    (lambda: opt.ExponentialDecay(0.1, rate=0.0), "rate"),
])
def test_bad_hyperparameters_rejected(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_type_errors():
    with pytest.raises(TypeError, match="nesterov"):
        opt.SGD(momentum=0.5, nesterov=1)
    with pytest.raises(TypeError, match="learning_rate"):
        opt.SGD("fast")


@pytest.mark.parametrize("cfg,match", [
    ({"kind": "sgd"}, "'lr'"),
    ({"kind": "lion", "lr": 0.1}, "kind"),
    ({"kind": "sgd", "lr": 0.1, "betas": 1}, "unknown keys"),
    ({"kind": "adam", "lr": 0.1, "beta1": 1.5}, "beta1"),
    ({"kind": "adam", "lr": 0.1, "eps": 0.0}, "eps"),
    ({"kind": "adam", "lr": 0.1, "nesterov": True, "momentum": 0.5}, "nesterov"),
    ({"kind": "sgd", "lr": float("inf")}, "lr"),
])
def test_fill_optim_validation(cfg, match):
    p = np.zeros(3)
    with pytest.raises((ValueError, TypeError), match=match):
        _core.optim_step(cfg, p, np.ones(3), np.zeros(6), 1)


def test_optim_step_argument_checks():
    cfg = CASES["adam"]
    p = np.zeros(4)
    g = np.ones(4)
    s = np.zeros(8)
    with pytest.raises(ValueError, match="t must be"):
        _core.optim_step(cfg, p, g, s, 0)
    with pytest.raises(ValueError, match="state must have 8"):
        _core.optim_step(cfg, p, g, np.zeros(7), 1)
    with pytest.raises(ValueError, match="grad must have shape"):
        _core.optim_step(cfg, p, np.ones(5), s, 1)
    with pytest.raises(TypeError, match="share one dtype"):
        _core.optim_step(cfg, p, g.astype(np.float32), s, 1)
    with pytest.raises(ValueError, match="1-D and C-contiguous"):
        _core.optim_step(cfg, np.zeros(8)[::2], g, s, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.optim_step(cfg, np.zeros(4, dtype=np.int64), g, s, 1)
    with pytest.raises(ValueError, match="overlap"):
        _core.optim_step(cfg, p, p, s, 1)
    ro = np.zeros(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        _core.optim_step(cfg, ro, g, s, 1)
    np.testing.assert_array_equal(p, 0)  # rejected calls changed nothing
    with pytest.raises(ValueError, match="limit"):
        _core.clip_value(np.ones(3), 0.0)
    with pytest.raises(ValueError, match="max_norm"):
        _core.clip_norm(np.ones(3), float("inf"))
