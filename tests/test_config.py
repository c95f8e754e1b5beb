"""Build/runtime configuration: ISA dispatch and its overrides, thread count and its sources."""
import os
import subprocess
import sys

import numpy as np
import pytest

import annfast
from annfast._info import config

ALL_ISAS = ("generic", "avx2", "avx512")


def child(code, **env):
    full = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    for k in ("ANNFAST_ISA", "ANNFAST_NUM_THREADS", "OMP_NUM_THREADS"):
        full.pop(k, None)
    full.update(env)
    out = subprocess.run([sys.executable, "-c", "import annfast; " + code], capture_output=True, text=True,
                         env=full, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/..")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_config_fields():
    info = config()
    assert info["version"] == annfast.__version__
    assert "generic" in info["supported_isas"]
    assert info["isa"] in info["supported_isas"]
    assert info["best_isa"] == info["supported_isas"][-1]
    assert info["num_threads"] >= 1 and info["num_procs"] >= 1


@pytest.mark.parametrize("isa", ALL_ISAS)
def test_set_isa_supported_or_clear_error(isa):
    before = annfast.get_isa()
    try:
        if isa in config()["supported_isas"]:
            annfast.set_isa(isa)
            assert annfast.get_isa() == isa
        else:
            with pytest.raises(ValueError, match="not supported"):
                annfast.set_isa(isa)
            assert annfast.get_isa() == before
    finally:
        annfast.set_isa(before)


def test_set_isa_bad_values():
    before = annfast.get_isa()
    with pytest.raises(ValueError, match="one of"):
        annfast.set_isa("sse9")
    with pytest.raises(TypeError):
        annfast.set_isa(2)
    try:
        annfast.set_isa("auto")
        assert annfast.get_isa() == config()["best_isa"]
    finally:
        annfast.set_isa(before)  # ANNFAST_ISA's path for the tests after this one


@pytest.mark.parametrize("isa", ALL_ISAS)
def test_env_isa_override(isa):
    got = child("print(annfast.get_isa())", ANNFAST_ISA=isa)
    want = isa if isa in config()["supported_isas"] else config()["best_isa"]
    assert got == want


# A result from each kernel family in the per-ISA tables (csrc/kernels/isa_ctx.h): GEMM, activation
# rows and e^x, convolution tiles, layer-norm rows, recurrent cells, dropout, batch-norm and
# optimiser blocks. Defines probe() -> hex digest of a short fit's weights and predictions.
PROBE = """
def probe():
    import hashlib
    import numpy as np
    import annfast as af
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 8, 4)), rng.standard_normal((32, 2))
    model = af.Sequential([af.Conv1D(6, 3, activation="gelu"), af.LayerNormalization(), af.Dropout(0.2),
                           af.LSTM(5), af.BatchNormalization(), af.Dense(2)], seed=0)
    model.compile(loss="mse", optimizer="adam")
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    h = hashlib.sha256(model.predict(X).tobytes())
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()
"""


def test_set_isa_switches_kernels_as_env_does():
    """set_isa switches the whole kernel table: after set_isa(path), the ISA reported (read from
    the table itself) and the bits of the probe match a fresh process started with ANNFAST_ISA
    naming that path; setting the first path again gives its bits again."""
    ns = {}
    exec(PROBE, ns)
    isas = config()["supported_isas"]
    before = annfast.get_isa()
    here = {}
    try:
        for isa in isas + isas[:1]:
            annfast.set_isa(isa)
            got = (annfast.get_isa(), ns["probe"]())
            assert here.setdefault(isa, got) == got, isa
    finally:
        annfast.set_isa(before)
    for isa in isas:
        out = child(PROBE + "\nprint(annfast.get_isa(), probe())", ANNFAST_ISA=isa)
        assert tuple(out.split()) == here[isa], isa
    # generic (no FMA) and the vector paths (FMA GEMM) give different bits, so the comparisons
    # above would catch a set_isa that left the old kernels in place
    assert len(isas) == 1 or here[isas[0]][1] != here[isas[-1]][1]


@pytest.mark.parametrize("value", ["sse9", "avx512"])
def test_env_isa_unusable_warns(value):
    if value in config()["supported_isas"]:
        pytest.skip("this CPU supports it")
    code = ("import warnings, sys; warnings.simplefilter('always'); "
            "import annfast")
    full = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), ANNFAST_ISA=value)
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                         env=full, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/..")
    assert out.returncode == 0 and "ANNFAST_ISA" in out.stderr and "RuntimeWarning" in out.stderr


def test_thread_sources_in_priority_order():
    assert child("print(annfast.get_num_threads())", ANNFAST_NUM_THREADS="1", OMP_NUM_THREADS="2") == "1"
    assert child("print(annfast.get_num_threads())", OMP_NUM_THREADS="1") == "1"
    if config()["openmp"]:
        assert child("print(annfast.get_num_threads())") == str(config()["num_procs"])


def test_set_num_threads(threads):
    threads(1)
    assert annfast.get_num_threads() == 1
    for bad, exc in ((0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)):
        with pytest.raises(exc):
            annfast.set_num_threads(bad)
    assert annfast.get_num_threads() == 1


def test_info_cli_lists_build_facts():
    out = child("from annfast.__main__ import main; main(['info'])")
    for word in ("compiler", "OpenMP", "threads", "kernel path"):
        assert word in out


def test_all_finite_scan_layouts():
    import numpy as np
    import annfast._core as core
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        a = rng.normal(size=(37, 29)).astype(dt)
        views = [a, a.T, a[:, ::2], a[::3, 5:9], a[5], a[:, 4], a[:0]]
        assert all(core.all_finite(v) for v in views)
        for bad in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[7, 4] = bad
            for v, hit in ((b, True), (b.T, True), (b[:, 4], True), (b[:, 5:], False), (b[8:], False),
                           (b[7], True), (b[::2, ::2], False)):
                assert core.all_finite(v) is (not hit)


@pytest.mark.parametrize("dt, ut, exp_bits, frac_bits",
                         [(np.float32, np.uint32, 8, 23), (np.float64, np.uint64, 11, 52)])
def test_all_finite_every_kind_of_value(dt, ut, exp_bits, frac_bits):
    """The scan tests each value's bits (an exponent field of all ones is inf or NaN): every NaN
    (quiet, signalling, either sign, any payload) and both infinities are found, and the largest
    finite values, subnormals and -0 pass, at every position within a vector and in the tail."""
    import annfast._core as core
    one = ut(1)
    expo = ((one << ut(exp_bits)) - one) << ut(frac_bits)
    sign = one << ut(exp_bits + frac_bits)
    top = one << ut(frac_bits - 1)
    bad = [expo, expo | sign, expo | top, expo | top | sign, expo | one, expo | one | sign,
           expo | ((one << ut(frac_bits)) - one)]
    good = [expo - one, (expo - one) | sign, one, sign | one, sign, ut(0), top]
    for n in (1, 7, 33):
        a = np.zeros(n, ut)
        for i in range(n):
            for g in good:
                a[i] = g
                assert core.all_finite(a.view(dt)) is True, (n, i, hex(int(g)))
            for b in bad:
                a[i] = b
                assert core.all_finite(a.view(dt)) is False, (n, i, hex(int(b)))
            a[i] = 0


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_all_finite_long_scan_on_threads(dt, threads):
    """From 2^18 values the scan is cut into chunks of 2^16 for annfast's threads: a bad value
    anywhere (first value, either side of a chunk edge, the last value) is found, on 1 and 2
    threads."""
    import annfast._core as core
    n = (1 << 18) + 3 * (1 << 16) + 5
    a = np.ones(n, dtype=dt)
    for t in (1, 2):
        threads(t)
        assert core.all_finite(a) is True
        for pos in (0, (1 << 16) - 1, 1 << 16, 3 * (1 << 16) + 7, n - 1):
            for bad in (np.nan, np.inf, -np.inf):
                a[pos] = bad
                assert core.all_finite(a) is False, (t, pos, bad)
                assert core.all_finite(a.reshape(-1, 1)) is False
                a[pos] = 1
