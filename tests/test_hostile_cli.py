"""`annfast predict` with crafted model files (issue 20, items 8 and 12): every malformed model
file is ONE line on stderr and exit 1, never a traceback, a hang or a large allocation; and a
value that overflows the model's float32 says so instead of "NaN or inf".

Most cases call the CLI's main() in this process (an exception escaping it is the traceback a
user would see, and fails the test); the FIFO case runs `python -m annfast` with a timeout."""
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import annfast
from annfast import cli_model
from annfast.__main__ import main

import zipcraft

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(annfast.__file__)))


@pytest.fixture
def base(tmp_path):
    """A 2-feature CSV and the parts of a CLI model file for it: config, metadata, weights."""
    (tmp_path / "x.csv").write_text("a,b\n0.5,1.0\n-1.0,2.0\n")
    model = annfast.Sequential([annfast.Dense(3, activation="softmax")], input_dim=2, seed=0)
    cfg = model.get_config()
    meta = {"task": "classification", "feature_names": ["a", "b"], "target_name": "label",
            "classes": ["r", "g", "b"]}
    return tmp_path, cfg, meta, model.get_weights()


def cli_file(tmp_path, cfg, meta, weights, name="m.npz"):
    """A model file as `annfast train` writes it: annfast's one format, the command line's
    metadata in its "metadata" entry."""
    model = annfast.Sequential.from_config(cfg)
    model.set_weights(weights)
    path = tmp_path / name
    annfast.save_model(model, path, metadata={cli_model.CLI_KEY: meta})
    return path


def old_format_file(tmp_path, cfg, meta, weights):
    """The command line's former file layout (format/version/config/meta/w<i> members)."""
    arrays = {"format": np.array("annfast-cli-model"), "version": np.array(1),
              "config": np.array(json.dumps(cfg)), "meta": np.array(json.dumps(meta)),
              **{f"w{i}": w for i, w in enumerate(weights)}}
    path = tmp_path / "old.npz"
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def predict_error(capsys, model_path, data_path, *fragments, limit=8 << 20):
    """`annfast predict MODEL DATA` fails with one line on stderr and exit 1, allocating
    less than limit bytes."""
    tracemalloc.start()
    try:
        rc = main(["predict", str(model_path), str(data_path)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("annfast predict: error:"), err
    for f in fragments:
        assert f in err, err
    assert peak < limit, f"{peak} bytes allocated to refuse {model_path}"
    return err


def test_good_file_predicts(base, capsys):
    tmp, cfg, meta, w = base
    assert main(["predict", str(cli_file(tmp, cfg, meta, w)), str(tmp / "x.csv")]) == 0
    out = capsys.readouterr().out.split()
    assert out[0] == "label" and set(out[1:]) <= {"r", "g", "b"} and len(out) == 3


@pytest.mark.parametrize("edit,fragment", [
    (lambda m: m.update(classes=["r", "g"]), "classes"),            # IndexError before
    (lambda m: m.update(classes=[]), "classes"),
    (lambda m: m.update(classes=[["r"], {"g": 1}, None]), "classes"),
    (lambda m: m.update(classes=None), "classes"),
    (lambda m: m.update(task="clustering"), "task"),
    (lambda m: m.update(feature_names=["a"]), "feature_names"),
    (lambda m: m.update(feature_names="ab"), "feature_names"),
    (lambda m: m.update(target_name=["y"]), "target_name"),
    (lambda m: m.pop("task"), "task"),
    (lambda m: m.update(task="regression", classes=None), "output"),
], ids=["classes-short", "classes-empty", "classes-nested", "classes-none", "task", "names-short",
        "names-str", "target-list", "no-task", "regression-3-outputs"])
def test_metadata_disagreeing_with_the_model(base, capsys, edit, fragment):
    tmp, cfg, meta, w = base
    edit(meta)
    predict_error(capsys, cli_file(tmp, cfg, meta, w), tmp / "x.csv", fragment)


def test_former_cli_layout_is_refused_with_one_line(base, capsys):
    tmp, cfg, meta, w = base
    predict_error(capsys, old_format_file(tmp, cfg, meta, w), tmp / "x.csv", "metadata")


def test_metadata_that_is_not_an_object(base, capsys):
    tmp, cfg, meta, w = base
    predict_error(capsys, cli_file(tmp, cfg, [1, 2], w), tmp / "x.csv", "metadata")


def test_compressed_cli_file_is_refused(base, capsys):
    tmp, cfg, meta, w = base
    good = cli_file(tmp, cfg, meta, w)
    import zipfile
    with zipfile.ZipFile(good) as zf:
        members = [zipcraft.member(i.filename, zf.read(i), method=8) for i in zf.infolist()]
    bad = tmp / "z.npz"
    bad.write_bytes(zipcraft.build(members))
    predict_error(capsys, bad, tmp / "x.csv", "compressed")


@pytest.mark.parametrize("target", ["/dev/zero", "dir", "junk", "truncated"])
def test_not_a_model_file(base, capsys, target):
    tmp, cfg, meta, w = base
    if target == "dir":
        path = tmp
    elif target == "junk":
        path = tmp / "junk.npz"
        path.write_bytes(os.urandom(300))
    elif target == "truncated":
        raw = cli_file(tmp, cfg, meta, w).read_bytes()
        path = tmp / "t.npz"
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path = target
    predict_error(capsys, path, tmp / "x.csv")


def test_fifo_model_path_fails_without_hanging(base):
    tmp = base[0]
    fifo = tmp / "model.npz"
    os.mkfifo(fifo)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "annfast", "predict", str(fifo), str(tmp / "x.csv")],
                         cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().startswith("annfast predict: error:") and "regular file" in res.stderr


def test_plain_saved_models_of_any_head(base, capsys):
    """Models saved by annfast.save_model: the outputs decide classes, whatever the last layer."""
    tmp = base[0]
    heads = {"bn": [annfast.Dense(3, activation="softmax"), annfast.BatchNormalization()],
             "drop": [annfast.Dense(3, activation="softmax"), annfast.Dropout(0.5)],
             "sigmoid1": [annfast.Dense(1, activation="sigmoid")],
             "linear2": [annfast.Dense(2)]}
    for name, layers in heads.items():
        model = annfast.Sequential(layers, input_dim=2, seed=0)
        annfast.save_model(model, tmp / f"{name}.npz")
        assert main(["predict", str(tmp / f"{name}.npz"), str(tmp / "x.csv")]) == 0, name
        out = capsys.readouterr().out.split()
        assert len(out) == 3, (name, out)


def test_sigmoid_head_labels_follow_the_probability(base, capsys):
    tmp = base[0]
    model = annfast.Sequential([annfast.Dense(1, activation="sigmoid")], input_dim=2, seed=0)
    model.layers[0].kernel = np.array([[10.0], [0.0]])   # p > 0.5 exactly when a > 0
    annfast.save_model(model, tmp / "s.npz")
    assert main(["predict", str(tmp / "s.npz"), str(tmp / "x.csv")]) == 0
    assert capsys.readouterr().out.split()[1:] == ["1", "0"]


def test_value_overflowing_float32_is_named(base, capsys):
    tmp, cfg, meta, w = base
    (tmp / "big.csv").write_text("a,b\n0.5,1e39\n")
    err = predict_error(capsys, cli_file(tmp, cfg, meta, w), tmp / "big.csv", "overflows float32")
    assert "NaN" not in err


def test_random_damage_to_a_cli_file(base):
    """200 seeded byte mutations of a CLI model file: cli_model.load raises ValueError or gives
    the saved weights, nothing else."""
    tmp, cfg, meta, w = base
    raw = cli_file(tmp, cfg, meta, w).read_bytes()
    rng = np.random.default_rng(19)
    refused = 0
    for trial in range(200):
        data = bytearray(raw)
        pos = int(rng.integers(0, len(data)))
        if trial % 3 == 0:
            data[pos] = int(rng.integers(0, 256))
        elif trial % 3 == 1:
            del data[pos:pos + int(rng.integers(1, 40))]
        else:
            data[pos:pos + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        p = tmp / "fuzz.npz"
        p.write_bytes(bytes(data))
        try:
            model, _ = cli_model.load(p)
        except ValueError:
            refused += 1
            continue
        for a, b in zip(w, model.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert refused > 150
