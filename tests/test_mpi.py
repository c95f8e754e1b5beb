"""Data-parallel training over MPI processes (annfast.distributed), each run started as
`mpiexec -n P python script.py` from here with a timeout (never pytest under mpiexec: one failing
process would leave the others waiting). The scripts are in tests/mpi/; the same computations
run here in one process with SplitBatch(P), which a 2-process run must match bitwise.

Skipped without mpi4py or an mpiexec (pip install "annfast[mpi]" brings both; CI installs it).
2 processes x 1 thread is the main configuration; 3 processes oversubscribe a 2-core machine
(correct, only slower). Each launch trains a few small models for a few seconds."""
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mpi4py")

import annfast as af  # noqa: E402
from annfast.distributed import SplitBatch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "mpi")
sys.path.insert(0, SCRIPTS)
import cases  # noqa: E402

SANITIZED = os.environ.get("ANNFAST_SANITIZED") == "1"
TIMEOUT = 240 * (6 if SANITIZED else 1)    # seconds per launch (a shared, loaded machine)
MODELS = ("mlp", "bn_dropout", "residual", "all_kinds", "cnn", "lstm", "transformer")


def _mpiexec():
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return shutil.which("mpiexec", path=path)


MPIEXEC = _mpiexec()
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich)")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    for var in ("OMP_NUM_THREADS", "ANNFAST_NUM_THREADS", "ANNFAST_MPI_TIMEOUT"):
        env.pop(var, None)
    env.update(extra)
    return env


def launch(procs, args, timeout=TIMEOUT, env=None, cwd=None):
    """mpiexec -n procs python args... (procs None: plain python); (returncode, stdout, stderr),
    returncode None when it had to be killed after `timeout` seconds."""
    cmd = [sys.executable] + list(args)
    if procs is not None:
        cmd = [MPIEXEC, "-n", str(procs)] + cmd
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env or _env(), cwd=cwd, start_new_session=True)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)
        out, err = child.communicate()
        return None, out, err + f"\n[test_mpi] killed after {timeout} s: hang"
    return child.returncode, out, err


def run_cases(procs, outdir, names, env=None):
    rc, out, err = launch(procs, [os.path.join(SCRIPTS, "run_cases.py"), str(outdir)] + list(names),
                          env=env)
    assert rc == 0, f"exit status {rc}\n--- stdout\n{out}\n--- stderr\n{err}"
    results = {}
    for name in names:
        results[name] = []
        for r in range(procs or 1):
            with open(os.path.join(outdir, f"{name}.{r}.pkl"), "rb") as f:
                results[name].append(pickle.load(f))
    return results


def assert_same(a, b, what):
    """Bitwise equality of nested results (dicts, lists, arrays, floats)."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), what
        for k in a:
            assert_same(a[k], b[k], f"{what}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{what}[{i}]")
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=what)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    names = list(MODELS) + ["callbacks"]
    try:
        import sklearn  # noqa: F401
        names += ["sklearn", "weighted"]
    except ImportError:
        pass
    return run_cases(2, tmp_path_factory.mktemp("mpi2"), names)


@pytest.mark.parametrize("name", MODELS)
def test_two_processes_give_the_bits_of_one_process_split_batch(two_processes, name):
    """Weights, statistics and the whole loss history of a 2-process fit are bitwise those of
    one process computing both pieces (SplitBatch(2)); both processes end identical."""
    ref = cases.fit_model(name, SplitBatch(2))
    for r in (0, 1):
        got = two_processes[name][r]
        assert got["size"] == 2 and got["rank"] == r
        assert got["shared_memory"], "one machine: the gradient is summed in shared memory"
        assert_same(got["state"], ref["state"], f"{name} rank {r} state")
        assert_same(got["history"], ref["history"], f"{name} rank {r} history")
        # evaluate / predict split over rows: the same values up to the order of the sums
        np.testing.assert_allclose(got["evaluate"], ref["evaluate"], rtol=1e-12)
        np.testing.assert_allclose(got["predict"], ref["predict"], rtol=1e-6, atol=1e-7)


def test_threads_per_process_default_to_cores_over_local_processes(two_processes):
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    assert [r["threads"] for r in two_processes["mlp"]] == [max(1, cores // 2)] * 2


def test_callbacks_run_on_process_0_only_and_reach_everyone(two_processes):
    ref = cases.fit_callbacks(SplitBatch(2))
    p0, p1 = two_processes["callbacks"]
    assert p0["calls"] == ref["calls"] and p1["calls"] == []
    assert len(ref["calls"]) < 8                       # EarlyStopping stopped the fit
    for got in (p0, p1):
        assert_same(got["state"], ref["state"], "restored best weights")
        assert_same(got["history"], ref["history"], "history (with process 0's lr entries)")
        assert got["lr"] == ref["lr"]                  # the scheduler's rate on every process


def test_sklearn_estimator_over_two_processes(two_processes):
    pytest.importorskip("sklearn")
    ref = cases.fit_sklearn(SplitBatch(2))
    for got in two_processes["sklearn"]:
        for key in ("state", "loss_curve", "validation_scores"):
            assert_same(got[key], ref[key], f"sklearn {key}")


def test_sample_and_class_weights_over_two_processes(two_processes):
    """Weighted training (Model.fit with sample_weight, class_weight and weighted validation data;
    an estimator with sample_weight) over 2 processes: the bits of SplitBatch(2)."""
    pytest.importorskip("sklearn")
    ref = cases.fit_weighted(SplitBatch(2))
    for r, got in enumerate(two_processes["weighted"]):
        for key in ("state", "history", "sk_state", "sk_loss_curve", "sk_validation_scores"):
            assert_same(got[key], ref[key], f"weighted rank {r} {key}")
        np.testing.assert_allclose(got["evaluate"], ref["evaluate"], rtol=1e-12)


def test_three_processes_same_bits_run_to_run_and_on_every_process(tmp_path):
    names = ("mlp", "bn_dropout", "all_kinds", "cnn", "lstm", "transformer")
    runs = []
    for i in (0, 1):
        (tmp_path / f"run{i}").mkdir()
        runs.append(run_cases(3, tmp_path / f"run{i}", names))
    for name in names:
        first = runs[0][name][0]
        for run in runs:
            for r, got in enumerate(run[name]):
                assert_same(got["state"], first["state"], f"{name} process {r}")
                assert_same(got["history"], first["history"], f"{name} process {r} history")
    # processes on one machine sum the gradient in shared memory, in rank order as one process
    # adds its pieces: the weights are bitwise SplitBatch(3)'s (the MLP has no batch statistics,
    # whose sums still go through MPI)
    ref = cases.fit_model("mlp", SplitBatch(3))
    assert_same(runs[0]["mlp"][0]["state"], ref["state"], "mlp 3 processes vs SplitBatch(3)")


def test_allreduce_path_gives_the_bits_of_the_shared_memory_path(tmp_path, two_processes):
    """ANNFAST_MPI_SHM=0: the gradient summed by MPI Allreduce (as processes on several machines
    do) instead of in shared memory; two processes give the same bits either way."""
    names = ("mlp", "bn_dropout")
    got = run_cases(2, tmp_path, names, env=_env(ANNFAST_MPI_SHM="0"))
    for name in names:
        for r in (0, 1):
            assert not got[name][r]["shared_memory"]
            assert_same(got[name][r]["state"], two_processes[name][r]["state"], f"{name} rank {r}")
            assert_same(got[name][r]["history"], two_processes[name][r]["history"], f"{name} {r}")


@pytest.mark.parametrize("mode, expect", [
    ("raise", "callback failure on purpose"),
    ("kill", ""),
    ("hang", "waited more than 2 s"),
])
def test_a_failing_process_ends_the_job_with_a_message(mode, expect):
    rc, out, err = launch(2, [os.path.join(SCRIPTS, "failures.py"), mode], timeout=120)
    assert rc is not None, f"the job hung\n{out}\n{err}"
    assert rc != 0 and "finished" not in out
    assert expect in err
    if mode == "raise":
        assert "annfast: process 0 of 2 failed during a distributed call" in err
    if mode == "kill":
        assert "BAD TERMINATION" in out + err or "Killed" in out + err


def test_errors_every_process_sees_alike_raise_everywhere(tmp_path):
    rc, out, err = launch(2, [os.path.join(SCRIPTS, "failures.py"), "agree", str(tmp_path)],
                          timeout=120)
    assert rc == 0, f"{out}\n{err}"
    lines = [ln for r in (0, 1) for ln in (tmp_path / f"agree.{r}.txt").read_text().splitlines()]

    def line(what, r):
        return next(ln for ln in lines if ln.startswith(f"{what} rank {r}:"))

    assert "ValueError: batch_size must be >= 1" in line("reject", 1)
    assert "DistributedError: fit: process 1 rejected the call: ValueError" in line("reject", 0)
    for r in (0, 1):
        assert "DistributedError" in line("data", r) and "other data" in line("data", r)
        assert "DistributedError" in line("weights", r) and "weights differ" in line("weights", r)
        assert line("after", r).endswith("no error")


def test_cli_train_over_two_processes(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 3))
    lines = ["a,b,c,label"] + [",".join(f"{v:.6f}" for v in row) + f",{int(row[0] + row[1] > 0)}"
                               for row in X]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    rc, out, err = launch(2, ["-m", "annfast", "train", "data.csv", "--epochs", "3", "--distributed",
                              "mpi", "--verbose", "2", "-o", "model.npz", "--validation-split",
                              "0.25"], cwd=str(tmp_path))
    assert rc == 0, f"{out}\n{err}"
    assert out.count("annfast train:") == 1 and out.count("Epoch 1/3") == 1   # process 0 talks
    assert "x 2 MPI processes" in out and out.count("saved model to") == 1
    model = af.load_model(str(tmp_path / "model.npz"))
    assert model.predict(np.zeros((1, 3))).shape == (1, 2)


def test_one_process_without_a_launcher_runs_locally(tmp_path):
    """distributed="mpi" in a plain `python script.py`: one process, the plain local fit."""
    rc, out, err = launch(None, [os.path.join(SCRIPTS, "run_cases.py"), str(tmp_path), "mlp"])
    assert rc == 0, f"{out}\n{err}"
    with open(tmp_path / "mlp.0.pkl", "rb") as f:
        got = pickle.load(f)
    assert got["size"] == 1
    assert_same(got["state"], cases.fit_model("mlp", None)["state"], "one-process state")


def test_processes_mpi_cannot_see_are_an_error(tmp_path):
    """A launcher that says 2 processes while MPI sees one (mpi4py built for another MPI)."""
    rc, out, err = launch(None, [os.path.join(SCRIPTS, "run_cases.py"), str(tmp_path), "mlp"],
                          env=_env(OMPI_COMM_WORLD_SIZE="2"))
    assert rc != 0 and "MPI sees only this one" in err


def test_ci_installs_the_mpi_extra():
    root = os.path.dirname(HERE)
    pyproject = open(os.path.join(root, "pyproject.toml"), encoding="utf-8").read()
    extra = pyproject.split("mpi = [")[1].split("]")[0]
    assert '"mpi4py>=4"' in extra and '"mpich"' in extra
    # CI installs the extra's packages themselves (".[mpi]" would build annfast a second time)
    assert 'pip install -q "mpi4py>=4" mpich' in open(os.path.join(root, ".ci", "run"), encoding="utf-8").read()
