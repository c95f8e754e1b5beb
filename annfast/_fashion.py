"""Fashion-MNIST from the IDX files of Debian's ``dataset-fashion-mnist`` package, for the CNN demo,
benchmark and tests.

A stopgap: ``annfast.datasets.load_fashion_mnist`` (being written separately) is used when it
exists; this reader only covers the case where it does not.
"""
import gzip
import os

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _read_idx(path):
    """An IDX file (optionally .gz) as a uint8 array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} values, header says {dims}")
    return arr.reshape(dims)


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}(.gz) not found in {directory}; install Debian's "
        "'dataset-fashion-mnist' package (apt-get install dataset-fashion-mnist) or pass the "
        "directory holding the four IDX files")


def load(directory=None):
    """((x_train, y_train), (x_test, y_test)): images (n, 28, 28) uint8, labels (n,) uint8."""
    try:
        from .datasets import load_fashion_mnist
    except ImportError:
        load_fashion_mnist = None
    if load_fashion_mnist is not None:
        return load_fashion_mnist() if directory is None else load_fashion_mnist(directory)
    directory = directory or DEFAULT_DIR
    parts = {k: _read_idx(_find(directory, v)) for k, v in FILES.items()}
    return (parts["x_train"], parts["y_train"]), (parts["x_test"], parts["y_test"])


def images(x, dtype=np.float32):
    """uint8 images (n, 28, 28) as (n, 28, 28, 1) floats in [0, 1]."""
    return (np.asarray(x, dtype=dtype) / 255.0).reshape(x.shape[0], x.shape[1], x.shape[2], 1)
