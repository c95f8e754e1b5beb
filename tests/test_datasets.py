"""annfast.datasets: IDX reading and Fashion-MNIST (the Debian package's files, plus tiny files
written here for every header error), MNIST-1D through make_dataset only, and the synthetic
sequence tasks checked against their definitions."""
import gzip
import os
import random
import struct

import numpy as np
import pytest

from annfast import datasets
from annfast.datasets import END, PAD, START

DEBIAN_DIR = datasets.FASHION_MNIST_DIR
have_fashion = all(os.path.exists(os.path.join(DEBIAN_DIR, stem + ".gz")) or
                   os.path.exists(os.path.join(DEBIAN_DIR, stem))
                   for stem in datasets.FASHION_MNIST_FILES.values())
needs_fashion = pytest.mark.skipif(
    not have_fashion, reason=f"Fashion-MNIST IDX files not in {DEBIAN_DIR} "
                             "(apt-get install dataset-fashion-mnist)")


# ---- IDX --------------------------------------------------------------------------------------
def idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    dtype = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dtype).tobytes()


def write_fashion(directory, n_train=6, n_test=4, gz=True, seed=0, edit=None):
    """Four tiny IDX files in Fashion-MNIST's layout; edit(name, bytes) may corrupt one."""
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28)), "y_train": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": rng.integers(0, 10, n_test)}
    os.makedirs(directory, exist_ok=True)
    for key, stem in datasets.FASHION_MNIST_FILES.items():
        raw = idx_bytes(arrays[key])
        if edit is not None:
            raw = edit(key, raw)
        path = os.path.join(directory, stem + (".gz" if gz else ""))
        with open(path, "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)
    return {k: v.astype(np.uint8) for k, v in arrays.items()}


@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16),
                                        (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_every_type_gzipped_or_not(tmp_path, code, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - (0 if code == 0x08 else 5)).astype(dtype)
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr, code))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(arr, code)))
    for name in ("a.idx", "a.idx.gz"):
        got = datasets.read_idx(tmp_path / name)
        assert got.dtype == np.dtype(dtype).newbyteorder("=") and got.dtype.isnative
        np.testing.assert_array_equal(got, arr)
        got[0, 0, 0] = 1  # a writable copy


@pytest.mark.parametrize("raw,match", [
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "two zero bytes"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x05" + b"\x00" * 20, "5 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 4) + b"\x01\x02\x03", r"shape \(4,\) of uint8 \(12 bytes .* 11 bytes"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x01\x02\x03", r"\(10 bytes with the header\) but the data has 11"),
    (b"\x00\x00", "not an IDX file"),
])
def test_read_idx_rejects_bad_headers(tmp_path, raw, match):
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        datasets.read_idx(tmp_path / "bad")


def test_read_idx_corrupt_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros(100)))
    (tmp_path / "cut.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="corrupt gzip"):
        datasets.read_idx(tmp_path / "cut.gz")


# ---- Fashion-MNIST from any directory ---------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_load_fashion_mnist_from_a_directory(tmp_path, gz):
    arrays = write_fashion(tmp_path / "fm", gz=gz)
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(tmp_path / "fm")
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"), (y_test, "y_test")):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])
    (xf, _), (xt, _) = datasets.load_fashion_mnist(str(tmp_path / "fm"), dtype="float32")
    assert xf.dtype == np.float32 and xt.shape == (4, 28, 28)
    np.testing.assert_array_equal(xf, arrays["x_train"].astype(np.float32) / np.float32(255))
    with pytest.raises(ValueError, match="dtype must be 'uint8' or a float dtype"):
        datasets.load_fashion_mnist(tmp_path / "fm", dtype="int16")


def test_load_fashion_mnist_missing_files_names_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing train-images-idx3-ubyte.*"
                                                r"apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(tmp_path)
    write_fashion(tmp_path / "part")
    os.remove(tmp_path / "part" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match=r"missing t10k-labels-idx1-ubyte \(or .gz\)"):
        datasets.load_fashion_mnist(tmp_path / "part")


def corrupt(target, how):
    def edit(key, raw):
        return how(raw) if key == target else raw
    return edit


@pytest.mark.parametrize("edit,match", [
    (corrupt("x_train", lambda r: r[:-1]), "data has"),                         # truncated
    (corrupt("y_test", lambda r: r + b"\x00"), "data has"),                     # trailing byte
    (corrupt("y_train", lambda r: b"\x00\x01" + r[2:]), "two zero bytes"),       # magic
    (corrupt("x_test", lambda r: r[:2] + b"\x0d" + r[3:]), "IDX header says"),  # type: size off
    (corrupt("y_train", lambda r: r[:-1] + b"\x0c"), "labels must be 0..9, found 12"),
    (corrupt("y_test", lambda r: r[:4] + struct.pack(">I", 3) + r[8:-1]), "3 labels for 4 images"),
    (corrupt("x_train", lambda r: r[:4] + struct.pack(">III", 6, 28, 14) + r[16:16 + 6 * 28 * 14]),
     r"images of shape \(n, 28, 28\)"),
    (corrupt("y_train", lambda r: idx_bytes(np.zeros((6, 1)))), "1-D uint8 label array"),
])
def test_load_fashion_mnist_rejects_corrupt_files(tmp_path, edit, match):
    write_fashion(tmp_path, gz=False, edit=edit)
    with pytest.raises(ValueError, match=match):
        datasets.load_fashion_mnist(tmp_path)


@needs_fashion
def test_fashion_mnist_from_the_debian_package():
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == y_train.dtype == np.uint8
    assert y_train[:5].tolist() == [9, 0, 0, 3, 0]            # as keras.datasets documents
    assert np.bincount(y_train).tolist() == [6000] * 10       # balanced classes
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.min() == 0 and x_train.max() == 255
    assert len(datasets.FASHION_MNIST_CLASSES) == 10


# ---- MNIST-1D ---------------------------------------------------------------------------------
def test_make_mnist1d_uses_make_dataset_never_get_dataset(monkeypatch):
    data = pytest.importorskip("mnist1d.data", reason="mnist1d not installed (pip install mnist1d)")

    def no_download(*a, **k):
        raise AssertionError("get_dataset downloads; make_mnist1d must not call it")
    monkeypatch.setattr(data, "get_dataset", no_download)
    np.random.seed(7)
    random.seed(7)
    before = (np.random.get_state()[1].copy(), random.getstate())
    x_train, y_train, x_test, y_test = datasets.make_mnist1d()
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert y_train.shape == (4000,) and set(np.unique(y_train).tolist()) == set(range(10))
    reference = data.make_dataset()  # mnist1d's defaults: the same arrays
    np.testing.assert_array_equal(x_train, reference["x"])
    np.testing.assert_array_equal(y_test, reference["y_test"])


def test_make_mnist1d_arguments():
    pytest.importorskip("mnist1d", reason="mnist1d not installed (pip install mnist1d)")
    a = datasets.make_mnist1d(seed=1, num_samples=500)
    b = datasets.make_mnist1d(seed=2, num_samples=500)
    assert a[0].shape == (400, 40) and a[2].shape == (100, 40)
    assert not np.array_equal(a[0], b[0])
    with pytest.raises(ValueError, match=r"unknown mnist1d arguments \['url'\]"):
        datasets.make_mnist1d(url="x")


def test_make_mnist1d_without_the_package(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match="pip install mnist1d"):
        datasets.make_mnist1d()


# ---- one-target sequence tasks ----------------------------------------------------------------
def test_adding_problem_definition():
    x, y = datasets.adding_problem(2000, 50, seed=3)
    assert x.shape == (2000, 50, 2) and y.shape == (2000, 1) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2) and set(np.unique(marks).tolist()) == {0.0, 1.0}
    assert np.all(marks[:, :25].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=1), rtol=1e-6)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.02)  # the constant baseline
    again = datasets.adding_problem(2000, 50, seed=3)
    np.testing.assert_array_equal(again[0], x)
    assert not np.array_equal(datasets.adding_problem(2000, 50, seed=4)[0], x)
    with pytest.raises(ValueError, match="steps"):
        datasets.adding_problem(3, 1)


def test_parity_definition():
    x, y = datasets.parity(1000, 12, seed=1, dtype="float64")
    assert x.shape == (1000, 12, 1) and y.shape == (1000, 1) and x.dtype == np.float64
    np.testing.assert_array_equal(y[:, 0], x[:, :, 0].sum(axis=1) % 2)
    assert 0.4 < y.mean() < 0.6


def test_noisy_sine_target_is_the_clean_continuation():
    x, y = datasets.noisy_sine(200, 30, seed=2, noise=0.0, dtype="float64")
    assert x.shape == (200, 30, 1) and y.shape == (200, 1)
    s = np.concatenate([x[:, :, 0], y], axis=1)
    # a sine satisfies s[t+1] + s[t-1] = 2 cos(w) s[t]: fit c = 2 cos(w) per row on x alone...
    prev, mid, nxt = x[:, :-2, 0], x[:, 1:-1, 0], x[:, 2:, 0]
    c = np.sum((nxt + prev) * mid, axis=1) / np.sum(mid * mid, axis=1)
    assert np.all((c > 2 * np.cos(0.5) - 1e-9) & (c < 2 * np.cos(0.1) + 1e-9))
    # ...then the target is the next term of that recurrence
    np.testing.assert_allclose(y[:, 0], c * s[:, -2] - s[:, -3], atol=1e-9)
    noisy, y2 = datasets.noisy_sine(200, 30, seed=2, noise=0.1, dtype="float64")
    np.testing.assert_array_equal(y2, y)  # same waves, noise on the inputs only
    assert np.std(noisy - x) == pytest.approx(0.1, rel=0.05)


# ---- sequence-to-sequence tasks ---------------------------------------------------------------
def check_layout(src, tgt):
    """<start> first in targets only; <end> closes each row; only <pad> after it."""
    assert src.dtype == tgt.dtype == np.int32
    assert np.all(tgt[:, 0] == START) and not np.any(src == START)
    for rows in (src, tgt):
        ends = np.argmax(rows == END, axis=1)
        assert np.all(rows[np.arange(len(rows)), ends] == END)
        after = np.arange(rows.shape[1]) > ends[:, None]
        assert np.all(rows[after] == PAD) and not np.any(rows[~after] == PAD)


def test_reverse_and_sort_digits():
    src, tgt, vocab = datasets.reverse_digits(50, length=10, seed=0)
    assert src.shape == (50, 11) and tgt.shape == (50, 12) and len(vocab) == 13
    assert vocab.tokens[:3] == ("<pad>", "<start>", "<end>") and vocab.tokens[3:] == tuple("0123456789")
    check_layout(src, tgt)
    for s, t in zip(datasets.decode(src, vocab), datasets.decode(tgt, vocab)):
        assert len(s) == 10 and s[::-1] == t
    src, tgt, vocab = datasets.sort_digits(50, length=7, seed=1)
    assert src.shape == (50, 8) and tgt.shape == (50, 9)
    check_layout(src, tgt)
    for s, t in zip(vocab.decode(src), vocab.decode(tgt)):
        assert "".join(sorted(s)) == t
    again = datasets.sort_digits(50, length=7, seed=1)
    np.testing.assert_array_equal(again[0], src)


def test_addition_task():
    src, tgt, vocab = datasets.addition(500, digits=3, seed=5)
    assert src.shape == (500, 8) and tgt.shape == (500, 6) and len(vocab) == 14
    check_layout(src, tgt)
    for s, t in zip(datasets.decode(src, vocab), datasets.decode(tgt, vocab)):
        a, b = s.split("+")
        assert int(a) + int(b) == int(t) and a == str(int(a)) and b == str(int(b))
        assert len(a) <= 3 and len(b) <= 3
    assert max(len(t) for t in vocab.decode(tgt)) == 4  # some sums carry into a fourth digit
    assert datasets.decode(src[0], vocab) == vocab.decode(src)[0]
    with pytest.raises(ValueError, match="digits must be <= 18"):
        datasets.addition(2, digits=19)


def test_vocabulary_encode_decode():
    v = datasets.Vocabulary.of("ab")
    assert v.encode("ba") == [4, 3] and v.decode([START, 4, 3, END, 3]) == "ba"
    assert v.decode(np.array([[START, 3, END, PAD], [START, 4, 4, END]])) == ["a", "bb"]
    with pytest.raises(KeyError, match="'c' is not in the vocabulary"):
        v.encode("c")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.decode([9])
    with pytest.raises(ValueError, match="1-D"):
        v.decode(np.zeros((1, 1, 1), dtype=int))
