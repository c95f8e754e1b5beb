"""The command line, run as a user runs it: `python -m annfast ...` in a subprocess whose cwd is a
temporary directory (from the repository root Python would import the uncompiled source folder)
and with PYTHONPATH at the folder of the annfast this run imports (in-place build or installed). Every error path must exit
non-zero with ONE line on stderr and no traceback."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

# the folder holding the annfast that this test run imports (the checkout for an in-place build,
# site-packages for an installed one): subprocesses must import the same, compiled package
import annfast as _annfast_under_test  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(_annfast_under_test.__file__)))


def run_cli(args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "annfast", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(res, *fragments, code=None):
    assert res.returncode != 0, res.stdout + res.stderr
    if code is not None:
        assert res.returncode == code
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


@pytest.fixture
def data(tmp_path):
    """Small files the tests write: a 3-class CSV with string labels and a header, a regression
    .npy (target last column) and an .npz with X/y."""
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [3, 3], [0, 3]])
    lab = rng.integers(0, 3, 300)
    X = centers[lab] + rng.normal(0, 0.5, (300, 2))
    names = np.array(["red", "green", "blue"])[lab]
    lines = ["f1,f2,colour"] + [f"{a:.5f},{b:.5f},{c}" for (a, b), c in zip(X, names)]
    (tmp_path / "cls.csv").write_text("\n".join(lines) + "\n")
    Xr = rng.uniform(-1, 1, (400, 3))
    yr = Xr @ np.array([1.0, -2.0, 0.5]) + 0.3
    np.save(tmp_path / "reg.npy", np.column_stack([Xr, yr]))
    np.savez(tmp_path / "cls.npz", X=X, y=lab)
    return tmp_path


def test_help_everywhere(tmp_path):
    for cmd in ([], ["demo"], ["info"], ["train"], ["predict"], ["bench"]):
        res = run_cli(cmd + ["--help"], tmp_path)
        assert res.returncode == 0, res.stderr
        assert "usage: annfast" in res.stdout
    res = run_cli([], tmp_path)  # no command: help, exit 2
    assert res.returncode == 2 and "train" in res.stdout and "bench" in res.stdout


def test_info(tmp_path):
    res = run_cli(["info"], tmp_path)
    assert res.returncode == 0, res.stderr
    for word in ("annfast", "compiler", "OpenMP", "threads", "kernel path"):
        assert word in res.stdout


def test_option_errors_are_one_line(tmp_path):
    cases = [
        (["nosuchcommand"], "invalid choice"),
        (["train"], "required"),
        (["train", "x.csv", "--epochs", "0"], "--epochs"),
        (["train", "x.csv", "--epochs", "ten"], "positive integer"),
        (["train", "x.csv", "--hidden", "64,a"], "comma-separated"),
        (["train", "x.csv", "--hidden", "64,0"], ">= 1"),
        (["train", "x.csv", "--lr", "-1"], "positive"),
        (["train", "x.csv", "--validation-split", "1.5"], "[0, 1)"),
        (["train", "x.csv", "--optimizer", "lbfgs"], "invalid choice"),
        (["train", "x.csv", "--bogus"], "unrecognized arguments"),
        (["predict", "m.npz"], "required"),
        (["bench", "--size", "huge"], "invalid choice"),
        (["bench", "--repeats", "-2"], "positive integer"),
        (["demo", "--epochs", "-5"], "positive integer"),
    ]
    for args, frag in cases:
        res = run_cli(args, tmp_path)
        assert_one_line_error(res, frag, code=2)
        assert res.stderr.startswith("annfast")


def test_file_errors_are_one_line(data):
    (data / "bad.csv").write_text("a,b\n1,x\n2,3\n")
    (data / "ragged.csv").write_text("a,b,c\n1,2,3\n4,5\n")
    (data / "notes.json").write_text("{}")
    cases = [
        (["train", "missing.csv"], "no such file: missing.csv"),
        (["train", "cls.csv", "--target", "nosuch"], "no column named 'nosuch'"),
        (["train", "cls.csv", "--target", "7"], "out of range"),
        (["train", "bad.csv", "--target", "a"], "column 'b' is not numeric"),
        (["train", "ragged.csv"], "line 3 has 2 fields"),
        (["train", "notes.json"], "unsupported file type"),
        (["train", "cls.npz", "--target", "labels"], "no array named 'labels'"),
        (["train", "cls.csv", "--task", "regression"], "not numeric"),
        (["predict", "missing.npz", "cls.csv"], "no such model file"),
        (["predict", "notes.json", "cls.csv"], "not an annfast model file"),
    ]
    for args, frag in cases:
        res = run_cli(args, data)
        assert_one_line_error(res, frag, code=1)


def test_train_predict_classification_csv(data):
    res = run_cli(["train", "cls.csv", "--target", "colour", "--hidden", "16", "--epochs", "15",
                   "--batch-size", "16", "--lr", "0.01", "--validation-split", "0.2", "--verbose", "2",
                   "-o", "m.npz"], data)
    assert res.returncode == 0, res.stderr
    assert "classification (3 classes)" in res.stdout and "saved model to m.npz" in res.stdout
    assert (data / "m.npz").exists()
    res = run_cli(["predict", "m.npz", "cls.csv"], data)  # target column found by name, dropped
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines[0] == "colour" and len(lines) == 301
    assert set(lines[1:]) <= {"red", "green", "blue"}
    acc = float(res.stderr.split("accuracy on cls.csv: ")[1].split()[0])
    assert acc > 0.9  # well-separated blobs
    res = run_cli(["predict", "m.npz", "cls.csv", "--proba", "-o", "p.csv"], data)
    assert res.returncode == 0, res.stderr
    P = np.loadtxt(data / "p.csv", delimiter=",", skiprows=1)
    assert P.shape == (300, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-4)  # softmax rows, float32 printed %.6g
    header = (data / "p.csv").read_text().splitlines()[0].split(",")
    assert sorted(header) == ["p_blue", "p_green", "p_red"]
    # features-only file with the wrong width
    np.save(data / "wide.npy", np.ones((3, 5)))
    assert_one_line_error(run_cli(["predict", "m.npz", "wide.npy"], data), "expects 2", code=1)


def test_train_predict_regression_npy(data):
    res = run_cli(["train", "reg.npy", "--hidden", "", "--optimizer", "sgd", "--lr", "0.05",
                   "--epochs", "40", "--dtype", "float64", "--verbose", "0", "-o", "r"], data)
    assert res.returncode == 0, res.stderr
    assert "regression" in res.stdout and (data / "r.npz").exists()
    res = run_cli(["predict", "r.npz", "reg.npy", "--target", "-1"], data)
    assert res.returncode == 0, res.stderr
    rmse = float(res.stderr.split("RMSE on reg.npy: ")[1].split(",")[0])
    assert rmse < 0.05  # a linear target, a linear model (no hidden layer)
    assert_one_line_error(run_cli(["predict", "r.npz", "reg.npy", "--target", "-1", "--proba"], data),
                          "--proba needs a classification model", code=1)


def test_train_plot_and_npz(data):
    pytest.importorskip("matplotlib")
    res = run_cli(["train", "cls.npz", "--epochs", "3", "--verbose", "1", "--plot", "curve.png",
                   "-o", "n.npz"], data)
    assert res.returncode == 0, res.stderr
    assert (data / "curve.png").stat().st_size > 1000


def test_corrupt_model_file(data):
    np.savez(data / "fake.npz", format=np.array("annfast-cli-model"), version=np.array(1))
    assert_one_line_error(run_cli(["predict", "fake.npz", "cls.csv"], data),
                          "not an annfast model file", code=1)
    (data / "cut.npz").write_bytes(b"PK\x03\x04" + b"\0" * 20)
    assert_one_line_error(run_cli(["predict", "cut.npz", "cls.csv"], data), "cut.npz", code=1)


def test_csv_given_as_model_file(data):
    """Swapped arguments: a clear message, not NumPy's allow_pickle advice."""
    res = run_cli(["predict", "cls.csv", "cls.npz"], data)
    assert_one_line_error(res, "cls.csv is not an annfast model file", "annfast predict MODEL DATA",
                          code=1)
    assert "pickle" not in res.stderr


def test_missing_cell_reported_as_missing(data):
    (data / "hole.csv").write_text("a,b,y\n1,2,0\n3,,1\n5,6,0\n")
    res = run_cli(["train", "hole.csv"], data)
    assert_one_line_error(res, "missing value in column 'b', data row 2 (line 3)", code=1)
    assert "not numeric" not in res.stderr


def test_demo_small(tmp_path):
    res = run_cli(["demo", "--epochs", "200", "--class-epochs", "3"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Tutorial XOR network" in res.stdout
    assert "Classification: 3 interleaved spirals" in res.stdout
    assert "test accuracy" in res.stdout


def test_bench_tiny_with_plot(tmp_path):
    args = ["bench", "--size", "tiny", "--repeats", "1", "--threads", "1"]
    try:
        import matplotlib  # noqa: F401
        args += ["--plot", "bench.png"]
    except ImportError:
        pass
    res = run_cli(args, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "speed-up" in res.stdout and "NumPy" in res.stdout and "train epoch" in res.stdout
    if "--plot" in args:
        assert (tmp_path / "bench.png").stat().st_size > 1000


def test_bench_best_time_samples_short_calls_for_min_time():
    """`annfast bench` keeps the fastest of at least `repeats` calls, and of enough calls to fill
    min_time when they are short (a sub-millisecond kernel's first calls pay for new pages);
    at most 1000; never fewer than `repeats` for slow calls."""
    from annfast.cli_bench import best_time
    calls = []

    def fast():
        calls.append(1)
    assert best_time(fast, 3, min_time=0.02, pause=0) >= 0
    assert 100 < len(calls) <= 1001          # the warm-up call, then until min_time or 1000
    calls.clear()

    def slow():
        calls.append(1)
        time.sleep(0.004)
    assert best_time(slow, 3, min_time=0.0, pause=0) >= 0.004
    assert len(calls) == 4                   # warm-up + exactly `repeats`


def test_plot_without_matplotlib_is_one_line_error(data, tmp_path):
    # a sitecustomize that hides matplotlib, to exercise the 'not installed' path
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "matplotlib.py").write_text("raise ImportError('No module named matplotlib')\n")
    env_root = str(hide) + os.pathsep + ROOT
    env = dict(os.environ, PYTHONPATH=env_root)
    res = subprocess.run([sys.executable, "-m", "annfast", "train", "cls.csv", "--plot", "c.png"],
                         cwd=data, env=env, capture_output=True, text=True, timeout=120)
    assert_one_line_error(res, "needs matplotlib", code=1)


def test_predict_with_plain_saved_model(data):
    """A model saved with annfast.save_model (no CLI metadata) predicts class indices."""
    import annfast
    model = annfast.Sequential([annfast.Dense(3, activation="softmax")], input_dim=2, dtype="float64",
                               seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    model.set_weights([np.array([[5.0, -5.0, 0.0], [0.0, 0.0, 5.0]]), np.zeros(3)])
    model.save(str(data / "plain.npz"))
    np.save(data / "pts.npy", np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))
    res = run_cli(["predict", "plain.npz", "pts.npy"], data)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["prediction", "0", "1", "2"]


def test_version(tmp_path):
    import annfast
    res = run_cli(["--version"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"annfast {annfast.__version__}"


def test_license_file_matches_pyproject():
    """pyproject.toml says MIT; the LICENSE file it names must exist and be the MIT text."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pyproject = open(os.path.join(repo, "pyproject.toml"), encoding="utf-8").read()
    assert 'license = "MIT"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    text = open(os.path.join(repo, "LICENSE"), encoding="utf-8").read()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


# ---- data handling of `annfast train` (issue 19) ---------------------------------------------
def write_csv(path, X, y, names=None):
    names = names or [f"f{i}" for i in range(X.shape[1])] + ["label"]
    rows = [",".join(names)] + [",".join(f"{v:.6f}" for v in x) + f",{t}" for x, t in zip(X, y)]
    path.write_text("\n".join(rows) + "\n")


def last_value(stdout, key):
    """The value of `key: v` on the last epoch line printed with --verbose 2."""
    line = [ln for ln in stdout.splitlines() if ln.startswith("Epoch ")][-1]
    return float(line.split(f" {key}: ")[1].split()[0])


def test_class_sorted_csv_validation_split_is_stratified(tmp_path):
    """A CSV sorted by class: the held-out rows must hold every class (before, the last 20% were
    one class and val_accuracy stayed 0)."""
    rng = np.random.default_rng(5)
    centers = np.array([[0, 0], [4, 0], [0, 4]])
    labels = np.repeat([0, 1, 2], 100)                      # sorted by class
    X = centers[labels] + rng.normal(0, 0.5, (300, 2))
    write_csv(tmp_path / "sorted.csv", X, np.array(["a", "b", "c"])[labels])
    res = run_cli(["train", "sorted.csv", "--epochs", "15", "--lr", "0.02", "--validation-split",
                   "0.2", "--verbose", "2"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "60 shuffled stratified validation rows" in res.stdout
    assert last_value(res.stdout, "val_accuracy") > 0.9


def test_split_rows_stratified_and_seeded():
    from annfast.cli_prep import split_rows
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, val = split_rows(100, 0.2, seed=3, labels=labels)
    assert sorted(np.r_[train, val].tolist()) == list(range(100))
    assert np.bincount(labels[val]).tolist() == [10, 6, 4]   # each class keeps its share
    again = split_rows(100, 0.2, seed=3, labels=labels)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    assert not np.array_equal(split_rows(100, 0.2, seed=4, labels=labels)[1], val)
    train, val = split_rows(10, 0.3, seed=0)
    assert val.size == 3 and train.size == 7 and not np.array_equal(np.sort(val), [7, 8, 9])
    # a singleton class stays in training
    _, val = split_rows(5, 0.5, seed=0, labels=np.array([0, 0, 0, 0, 1]))
    assert 4 not in val.tolist()
    with pytest.raises(ValueError, match="need at least one row on each side"):
        split_rows(3, 0.2, seed=0)


def test_standardisation_statistics_from_training_rows_only(tmp_path, monkeypatch, capsys):
    """In-process: the mean/std folded into the model come from the training rows alone."""
    import annfast.cli_prep as prep
    from annfast.__main__ import main
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    write_csv(tmp_path / "d.csv", X, y)
    seen = []
    real_split, real_stats = prep.split_rows, prep.standardization
    monkeypatch.setattr(prep, "split_rows", lambda *a, **k: seen.append(real_split(*a, **k)) or seen[-1])
    monkeypatch.setattr(prep, "standardization", lambda A: seen.append(A.copy()) or real_stats(A))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "d.csv", "--target", "label", "--epochs", "1", "--validation-split",
                 "0.25", "--verbose", "0", "-o", "m.npz"]) == 0
    (train, val), stats_rows = seen[0], seen[1]
    assert val.size == 50 and stats_rows.shape == (150, 3)
    X_read = np.round(X, 6)  # as written to the CSV
    np.testing.assert_array_equal(np.sort(stats_rows, axis=0), np.sort(X_read[train], axis=0))


def test_task_rule_is_the_same_for_every_format(tmp_path):
    """The same table is the same task from .csv, .npy and .npz; --task overrides."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] > 0).astype(float) + (X[:, 1] > 0)        # 0., 1., 2. as floats
    write_csv(tmp_path / "t.csv", X, [f"{v:.1f}" for v in y])
    np.save(tmp_path / "t.npy", np.column_stack([X, y]))
    np.savez(tmp_path / "t.npz", X=X, y=y)
    for name in ("t.csv", "t.npy", "t.npz"):
        res = run_cli(["train", name, "--epochs", "1", "--verbose", "0", "-o", "m.npz"], tmp_path)
        assert res.returncode == 0, res.stderr
        assert "-> classification (3 classes) [integer target with 3 distinct values" in res.stdout, name
        res = run_cli(["train", name, "--epochs", "1", "--verbose", "0", "--task", "regression",
                       "-o", "m.npz"], tmp_path)
        assert res.returncode == 0 and "-> regression [--task" in res.stdout, name
    from annfast.cli_prep import detect_task
    assert detect_task(np.array(["x", "y"]))[0] == "classification"
    assert detect_task(np.arange(100.0))[0] == "regression"           # 100 distinct values
    assert detect_task(np.array([0.5, 1.0, 0.5]))[0] == "regression"   # fractional


def test_regression_targets_standardised_diabetes_r2(tmp_path):
    """Regression targets are standardised and the scaling folded into the last layer: on
    scikit-learn's diabetes data the held-out R^2 is in the range of a linear model's (before,
    about 0.16 at best, negative with 20 epochs)."""
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.linear_model import LinearRegression
    X, y = datasets.load_diabetes(return_X_y=True, scaled=False)
    perm = np.random.default_rng(0).permutation(y.size)
    tr, te = perm[:353], perm[353:]
    names = [f"f{i}" for i in range(10)] + ["target"]
    write_csv(tmp_path / "train.csv", X[tr], y[tr].astype(int), names)
    write_csv(tmp_path / "test.csv", X[te], y[te].astype(int), names)
    res = run_cli(["train", "train.csv", "--target", "target", "--epochs", "20", "--verbose", "0",
                   "-o", "d.npz"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "-> regression" in res.stdout
    res = run_cli(["predict", "d.npz", "test.csv"], tmp_path)
    assert res.returncode == 0, res.stderr
    r2 = float(res.stderr.split("R^2 ")[1].split()[0])
    linear = LinearRegression().fit(X[tr], y[tr]).score(X[te], y[te])  # 0.35 on this split
    assert r2 > 0.75 * linear, (r2, linear)
    import annfast
    model = annfast.load_model(str(tmp_path / "d.npz"))
    pred = model.predict(X[te])[:, 0]
    assert abs(pred.mean() - y[tr].mean()) < 0.25 * y.std()  # raw-scale outputs


def test_cli_model_is_the_library_format(data):
    """`annfast train` writes annfast's one format: annfast.load_model opens it and predicts
    what `annfast predict` prints; the CLI metadata travels in the file."""
    import json
    import annfast
    res = run_cli(["train", "cls.csv", "--target", "colour", "--hidden", "8", "--epochs", "5",
                   "--verbose", "0", "-o", "m.npz"], data)
    assert res.returncode == 0, res.stderr
    model = annfast.load_model(str(data / "m.npz"))
    table = np.loadtxt(data / "cls.csv", delimiter=",", skiprows=1, usecols=(0, 1))
    proba = model.predict(table.astype(np.float32))
    res = run_cli(["predict", "m.npz", "cls.csv", "--proba"], data)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    header = lines[0].split(",")
    printed = np.array([[np.float32(v) for v in ln.split(",")] for ln in lines[1:]])
    np.testing.assert_array_equal(printed, proba)  # shortest float32 text reads back exactly
    with np.load(data / "m.npz") as z:
        meta = json.loads(z["__annfast__"].tobytes())
    assert meta["format"] == "annfast-model"
    cli = meta["metadata"]["cli"]
    assert cli["task"] == "classification" and cli["feature_names"] == ["f1", "f2"]
    assert header == [f"p_{c}" for c in cli["classes"]] and sorted(cli["classes"]) == ["blue", "green", "red"]


def test_predictions_print_float32_digits(data):
    res = run_cli(["train", "reg.npy", "--epochs", "2", "--verbose", "0", "-o", "r.npz"], data)
    assert res.returncode == 0, res.stderr
    res = run_cli(["predict", "r.npz", "reg.npy", "--target", "-1"], data)
    assert res.returncode == 0, res.stderr
    values = res.stdout.split()[1:]
    assert len(values) == 400
    for text in values:
        v = np.float32(text)
        assert str(v) == text  # the shortest float32 text, not float64's 0.30000001192092896
