"""save_model / load_model with a fake model implementing the contract (get_config/from_config,
get_weights/set_weights, optimizer_state/set_optimizer_state): exact round trip, format
details, and rejection of corrupt, truncated, foreign and incompatible files."""
import json
import os
import zipfile

import numpy as np
import pytest

import annfast
from annfast.saving import FORMAT_VERSION, load_model, save_model


class FakeNet:
    """A linear model y = x @ W + b with an optimiser state vector, per contracts.md."""

    def __init__(self, n_in, n_out, dtype="float64", seed=0, compiled=True, init_offset=0):
        rng = np.random.default_rng(seed + init_offset)
        self.n_in, self.n_out, self.dtype, self.seed, self.compiled = n_in, n_out, dtype, seed, compiled
        self.W = rng.standard_normal((n_in, n_out)).astype(dtype)
        self.b = rng.standard_normal(n_out).astype(dtype)
        self._step = 0
        self._state = np.zeros(2 * (n_in * n_out + n_out), dtype=dtype) if compiled else None

    def get_config(self):
        cfg = {"input_dim": self.n_in, "dtype": self.dtype, "seed": self.seed,
               "layers": [{"class_name": "Dense", "units": self.n_out}]}
        if self.compiled:
            cfg.update(loss="mse", optimizer=annfast.optimizers.Adam(1e-3).get_config())
        return cfg

    @classmethod
    def from_config(cls, cfg):
        if "layers" not in cfg:
            raise ValueError("config has no layers")
        # other initial weights than the saved model's, so a passing test proves they were loaded
        return cls(cfg["input_dim"], cfg["layers"][0]["units"], cfg["dtype"], seed=cfg["seed"],
                   compiled="optimizer" in cfg, init_offset=1)

    def get_weights(self):
        return [self.W.copy(), self.b.copy()]

    def set_weights(self, ws):
        self.W[...] = ws[0]
        self.b[...] = ws[1]

    def optimizer_state(self):
        return None if self._state is None else {"step": self._step, "state": self._state.copy()}

    def set_optimizer_state(self, d):
        if d["state"].shape != self._state.shape:
            raise ValueError("state length mismatch")
        self._step = d["step"]
        self._state[...] = d["state"]

    def predict(self, x):
        return x @ self.W + self.b

    def save(self, path):
        save_model(self, path)


def trained(dtype="float32"):
    m = FakeNet(5, 3, dtype)
    rng = np.random.default_rng(9)
    m._state[...] = rng.standard_normal(m._state.size).astype(dtype)
    m._step = 1234
    return m


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_exact(tmp_path, dtype):
    m = trained(dtype)
    path = tmp_path / "model.npz"
    save_model(m, path)
    again = load_model(path, model_class=FakeNet)
    for a, b in zip(m.get_weights(), again.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert again.optimizer_state()["step"] == 1234
    np.testing.assert_array_equal(again.optimizer_state()["state"], m.optimizer_state()["state"])
    x = np.random.default_rng(1).standard_normal((10, 5)).astype(dtype)
    assert np.array_equal(again.predict(x), m.predict(x))  # bitwise equal predictions
    assert again.get_config() == m.get_config()


def test_uncompiled_model_has_no_optimizer_entry(tmp_path):
    m = FakeNet(4, 2, compiled=False)
    path = str(tmp_path / "plain.npz")
    save_model(m, path)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["__annfast__", "weight_0000", "weight_0001"]
    again = load_model(path, model_class=FakeNet)
    assert again.optimizer_state() is None
    np.testing.assert_array_equal(again.W, m.W)


def test_documented_layout_readable_with_plain_numpy(tmp_path):
    m = trained()
    path = tmp_path / "m.npz"
    m.save(path)
    assert not (tmp_path / "m.npz.npz").exists()  # no suffix appended
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__annfast__"].tobytes().decode())
        np.testing.assert_array_equal(z["weight_0000"], m.W)
        np.testing.assert_array_equal(z["optimizer_state"], m._state)
    assert meta["format"] == "annfast-model" and meta["format_version"] == FORMAT_VERSION
    assert meta["model_class"] == "FakeNet"
    assert meta["config"]["optimizer"]["class_name"] == "Adam"
    assert [w["shape"] for w in meta["weights"]] == [[5, 3], [3]]
    assert meta["optimizer"]["step"] == 1234
    assert [p for p in os.listdir(tmp_path) if p.startswith(".annfast-save")] == []


def test_any_suffix_and_overwrite(tmp_path):
    m = trained()
    path = tmp_path / "ckpt.bin"
    save_model(m, path)
    m.W += 1
    save_model(m, path)  # overwrite in place (atomic rename)
    np.testing.assert_array_equal(load_model(path, model_class=FakeNet).W, m.W)


# ---- rejection ------------------------------------------------------------------------------
def rewrite(src, dst, edit):
    """Copy an annfast file, letting edit(arrays, meta) change arrays/metadata."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__annfast__"].tobytes().decode())
    edit(arrays, meta)
    arrays["__annfast__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    save_model(trained(), path)
    return path


def expect_bad(path, match):
    with pytest.raises(ValueError, match=match):
        load_model(path, model_class=FakeNet)


def test_rejects_random_bytes(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(os.urandom(1000))
    expect_bad(p, "not an .npz")


def test_rejects_truncated(saved, tmp_path):
    raw = saved.read_bytes()
    for frac in (0.3, 0.6, 0.95):
        p = tmp_path / f"trunc{frac}.npz"
        p.write_bytes(raw[: int(len(raw) * frac)])
        expect_bad(p, "corrupt or truncated")


def test_rejects_flipped_bytes(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    # flip one byte inside the weight_0000 payload: the zip CRC or our checksum must catch it
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("weight_0000.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    pos = start + info.compress_size - 8
    raw[pos] ^= 0xFF
    p = tmp_path / "flipped.npz"
    p.write_bytes(bytes(raw))
    expect_bad(p, "corrupt|checksum")


def test_rejects_checksum_mismatch(saved, tmp_path):
    def edit(arrays, meta):
        arrays["weight_0001"] = arrays["weight_0001"] + np.float32(1)  # valid zip, wrong data
    expect_bad(rewrite(saved, tmp_path / "c.npz", edit), "checksum")


def test_rejects_wrong_version(saved, tmp_path):
    def edit(arrays, meta):
        meta["format_version"] = FORMAT_VERSION + 1
    expect_bad(rewrite(saved, tmp_path / "v.npz", edit), "unsupported format_version 2.*newer")

    def edit0(arrays, meta):
        meta["format_version"] = "1"
    expect_bad(rewrite(saved, tmp_path / "v0.npz", edit0), "unsupported format_version")


def test_rejects_foreign_npz(tmp_path):
    p = tmp_path / "other.npz"
    with open(p, "wb") as f:
        np.savez(f, a=np.ones(3))
    expect_bad(p, "not an annfast model file")

    def edit(arrays, meta):
        meta["format"] = "keras"
    good = tmp_path / "g.npz"
    save_model(trained(), good)
    expect_bad(rewrite(good, tmp_path / "k.npz", edit), "'format' is 'keras'")


def test_rejects_missing_keys(saved, tmp_path):
    def drop_weight(arrays, meta):
        del arrays["weight_0001"]
    expect_bad(rewrite(saved, tmp_path / "a.npz", drop_weight), "missing array 'weight_0001'")

    def drop_state(arrays, meta):
        del arrays["optimizer_state"]
    expect_bad(rewrite(saved, tmp_path / "b.npz", drop_state), "missing array 'optimizer_state'")

    def drop_meta(arrays, meta):
        del meta["config"]
    expect_bad(rewrite(saved, tmp_path / "c.npz", drop_meta), "missing 'config'")

    def extra(arrays, meta):
        arrays["weight_0007"] = np.ones(2)
    expect_bad(rewrite(saved, tmp_path / "d.npz", extra), "unexpected arrays")


def test_rejects_shape_mismatch(saved, tmp_path):
    def units(arrays, meta):
        meta["config"]["layers"][0]["units"] = 4  # architecture no longer fits the arrays
    expect_bad(rewrite(saved, tmp_path / "s.npz", units), r"weight 0 has shape \(5, 3\) in the file but \(5, 4\)")

    def dtype(arrays, meta):
        meta["config"]["dtype"] = "float64"
    expect_bad(rewrite(saved, tmp_path / "t.npz", dtype), "dtype float32 in the file but float64")

    def meta_shape(arrays, meta):
        meta["weights"][0]["shape"] = [3, 5]
    expect_bad(rewrite(saved, tmp_path / "u.npz", meta_shape), "metadata says")

    def state_len(arrays, meta):
        s = arrays["optimizer_state"][:-1]
        arrays["optimizer_state"] = s
        meta["optimizer"].update(shape=[s.size], sha256=__import__("hashlib").sha256(s.tobytes()).hexdigest())
    expect_bad(rewrite(saved, tmp_path / "v.npz", state_len), "optimizer state does not fit")


def test_rejects_bad_config_and_pickle(saved, tmp_path):
    def no_layers(arrays, meta):
        del meta["config"]["layers"]
    expect_bad(rewrite(saved, tmp_path / "n.npz", no_layers), "architecture is not valid")
    p = tmp_path / "pickled.npz"
    with open(p, "wb") as f:
        np.savez(f, __annfast__=np.array([{"evil": 1}], dtype=object))
    expect_bad(p, "pickled")


def test_unknown_model_class_without_override(saved):
    with pytest.raises(ValueError, match="unknown model_class 'FakeNet'"):
        load_model(saved)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.npz", model_class=FakeNet)


def test_save_rejects_unserialisable_config(tmp_path):
    m = trained()
    m.get_config = lambda: {"fn": lambda x: x}
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_model(m, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_load_does_not_touch_other_models(saved, tmp_path):
    """A failed load never changes anything: it builds a fresh model and returns nothing."""
    m = trained()
    before = m.get_weights()

    def units(arrays, meta):
        meta["config"]["layers"][0]["units"] = 4
    with pytest.raises(ValueError):
        load_model(rewrite(saved, tmp_path / "bad.npz", units), model_class=FakeNet)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_top_level_exports():
    assert annfast.load_model is load_model
    assert annfast.save_model is save_model


# ---- real Sequential models ------------------------------------------------------------------
def sequential(dtype, optimizer):
    model = annfast.Sequential([annfast.Dense(16, activation="relu"), annfast.BatchNormalization(),
                                annfast.Dropout(0.2), annfast.Dense(3, activation="softmax")],
                               input_dim=6, dtype=dtype, seed=3)
    model.compile("categorical_crossentropy", optimizer, metrics=["accuracy"])
    return model


def blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 6)) + np.eye(3, 6)[y] * 3
    return X, np.eye(3)[y]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make_opt", [
    lambda: annfast.optimizers.Adam(learning_rate=annfast.optimizers.StepDecay(0.01, 0.5, 2)),
    lambda: annfast.optimizers.SGD(0.05, momentum=0.9, nesterov=True, clipnorm=1.0),
    lambda: annfast.optimizers.SGD(0.05),
    lambda: annfast.optimizers.RMSprop(0.01, momentum=0.5),
], ids=["adam-schedule", "nesterov-clip", "sgd", "rmsprop"])
def test_sequential_round_trip(tmp_path, dtype, make_opt):
    X, y = blobs()
    model = sequential(dtype, make_opt())
    model.fit(X, y, epochs=3, batch_size=32, verbose=0)
    path = tmp_path / "seq.npz"
    model.save(path)
    again = annfast.load_model(path)
    assert type(again) is annfast.Sequential
    assert again.get_config() == model.get_config()
    for a, b in zip(model.get_weights(), again.get_weights()):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    s0, s1 = model.optimizer_state(), again.optimizer_state()
    assert (s0["step"], s0["epoch"]) == (s1["step"], s1["epoch"]) == (24, 3)
    np.testing.assert_array_equal(s0["state"], s1["state"])
    # predictions bitwise equal (inference: batch norm uses the restored running statistics)
    assert np.array_equal(model.predict(X), again.predict(X))
    # training continues identically: optimiser moments, step count and schedule clock restored
    model.fit(X, y, epochs=2, batch_size=32, verbose=0)
    again.fit(X, y, epochs=2, batch_size=32, verbose=0)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sequential_uncompiled_round_trip(tmp_path):
    model = annfast.Sequential([annfast.Dense(4, activation="tanh"), annfast.Dense(2)], input_dim=3,
                               seed=1, dtype="float64")
    path = tmp_path / "plain.npz"
    annfast.save_model(model, path)
    again = annfast.load_model(path)
    X = np.random.default_rng(2).standard_normal((7, 3))
    assert np.array_equal(model.predict(X), again.predict(X))
    assert again.optimizer is None


def test_sequential_corrupt_and_mismatched_files(tmp_path):
    X, y = blobs()
    model = sequential("float32", annfast.optimizers.Adam())
    model.fit(X, y, epochs=1, verbose=0)
    good = tmp_path / "good.npz"
    model.save(good)
    raw = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        annfast.load_model(tmp_path / "trunc.npz")

    def wider(arrays, meta):
        meta["config"]["layers"][0]["units"] = 17
    with pytest.raises(ValueError, match="weight 0 has shape"):
        annfast.load_model(rewrite(good, tmp_path / "wide.npz", wider))

    def other_opt(arrays, meta):
        meta["config"]["optimizer"] = {"class_name": "Adagrad"}  # 1 state slot instead of 2
    with pytest.raises(ValueError, match="optimizer state does not fit"):
        annfast.load_model(rewrite(good, tmp_path / "opt.npz", other_opt))


def test_checkpoint_and_early_stopping_with_fit(tmp_path):
    X, y = blobs(300)
    model = sequential("float64", annfast.optimizers.Adam(0.01))
    ckpt = annfast.callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_loss",
                                             save_best_only=True)
    stop = annfast.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    hist = model.fit(X, y, epochs=60, batch_size=16, validation_split=0.25, callbacks=[ckpt, stop],
                     verbose=0)
    val = hist.history["val_loss"]
    assert ckpt.saved and len(val) <= 60
    best_epoch = int(np.argmin(val))
    assert stop.best_epoch == best_epoch
    best = annfast.load_model(tmp_path / "best.npz")
    # seeded, so deterministic: this run stops early (at epoch 11, best epoch 9)
    assert stop.stopped_epoch is not None and model.stop_training
    assert len(val) == stop.stopped_epoch + 1 == best_epoch + 3
    # restored best weights == the checkpoint of the best epoch, bit for bit
    for a, b in zip(model.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model.evaluate(X[-75:], y[-75:])[0], val[best_epoch], rtol=1e-12)


def test_optional_metadata_entry(tmp_path):
    """save_model(..., metadata=dict) stores a JSON object (the command line's labels and
    feature names); load_model ignores it and the model round-trips as without."""
    model = trained()
    path = str(tmp_path / "m.npz")
    save_model(model, path, metadata={"cli": {"task": "regression", "classes": None}})
    with np.load(path) as z:
        meta = json.loads(z["__annfast__"].tobytes())
    assert meta["metadata"] == {"cli": {"task": "regression", "classes": None}}
    again = load_model(path, model_class=FakeNet)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    save_model(model, str(tmp_path / "plain.npz"))
    with np.load(str(tmp_path / "plain.npz")) as z:
        assert "metadata" not in json.loads(z["__annfast__"].tobytes())
    with pytest.raises(ValueError, match="metadata must be JSON-serialisable"):
        save_model(model, str(tmp_path / "bad.npz"), metadata={"x": object()})
    with pytest.raises(TypeError, match="metadata must be a dict"):
        save_model(model, str(tmp_path / "bad.npz"), metadata=[1])
    assert not os.path.exists(tmp_path / "bad.npz")
