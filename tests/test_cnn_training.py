"""Convolutional networks trained end to end: a small CNN on scikit-learn's 8x8 digits (>= 0.97 test
accuracy, seconds), LeNet-5 on Fashion-MNIST for the issue's recipe (>= 0.88 after 5 epochs of
Adam(1e-3) at batch 64; about a minute on 2 threads, skipped when the IDX files are not installed
or under the sanitizer), and the `annfast demo cnn` command on a small slice."""
import os

import numpy as np
import pytest

import annfast as af

SANITIZED = os.environ.get("ANNFAST_SANITIZED") == "1"


def test_digits_cnn():
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.model_selection import train_test_split
    d = datasets.load_digits()
    X = (d.images / 16.0).reshape(-1, 8, 8, 1)
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=0.25, random_state=0, stratify=d.target)
    model = af.Sequential([af.Conv2D(16, 3, padding="same", activation="relu"), af.MaxPooling2D(2),
                           af.Conv2D(32, 3, padding="same", activation="relu"), af.Flatten(),
                           af.Dense(10, activation="softmax")], input_shape=(8, 8, 1), seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    model.fit(Xtr, ytr, epochs=12, batch_size=32, verbose=0)
    acc = np.mean(np.argmax(model.predict(Xte), axis=1) == yte)
    assert acc >= 0.97, acc


def fashion(dtype="uint8"):
    try:
        return af.datasets.load_fashion_mnist(dtype=dtype)
    except OSError as exc:
        pytest.skip(f"Fashion-MNIST not installed ({exc})")


@pytest.mark.skipif(SANITIZED, reason="5 epochs of LeNet-5 are too slow under AddressSanitizer")
def test_lenet5_fashion_mnist_five_epochs():
    from annfast.demo import lenet5
    (x, y), (xt, yt) = fashion("float32")
    model = lenet5(seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    model.fit(x[..., None], y, epochs=5, batch_size=64, verbose=0)
    acc = np.mean(np.argmax(model.predict(xt[..., None]), axis=1) == yt)
    # PyTorch's LeNet-5 with this recipe reaches ~0.89 (benchmarks/lenet_accuracy.py)
    assert acc >= 0.88, acc


def test_demo_cnn_on_a_slice(tmp_path, capsys):
    # the demo's reader and output, on the first 2,000 training images written as IDX files
    from annfast.demo import cnn_demo
    (x, y), (xt, yt) = fashion()
    for name, arr in (("train-images-idx3-ubyte", x[:2000]), ("train-labels-idx1-ubyte", y[:2000]),
                      ("t10k-images-idx3-ubyte", xt[:500]), ("t10k-labels-idx1-ubyte", yt[:500])):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
        (tmp_path / name).write_bytes(header + arr.astype(np.uint8).tobytes())
    acc = cnn_demo(epochs=1, verbose=0, data_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert "test accuracy" in out and "2,000 training / 500 test images" in out
    assert acc > 0.5
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        cnn_demo(epochs=1, verbose=0, data_dir=str(tmp_path / "missing"))
