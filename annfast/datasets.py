"""Offline data sets: nothing here downloads.

- :func:`load_fashion_mnist` reads the IDX files of Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist/``) or of any directory, like
  ``keras.datasets.fashion_mnist.load_data()``.
- :func:`make_mnist1d` generates MNIST-1D with the ``mnist1d`` package's ``make_dataset``
  (never its ``get_dataset``, which downloads).
- Seeded synthetic sequence tasks in NumPy: :func:`adding_problem`, :func:`parity`,
  :func:`noisy_sine` (one target per sequence), and sequence-to-sequence tasks over small token
  vocabularies: :func:`reverse_digits`, :func:`sort_digits`, :func:`addition`.
  (scikit-learn's ``load_digits`` needs no wrapper.)

Token convention of the sequence-to-sequence tasks (one :class:`Vocabulary` per task)::

    id 0 = "<pad>"    fills every sequence up to the array's width (after "<end>")
    id 1 = "<start>"  first token of each TARGET row (the decoder's first input)
    id 2 = "<end>"    closes every source and target row
    id 3.. the task's symbols: "0".."9" (and "+" for addition)

    source (n, S): symbols, <end>, <pad>...        e.g. "123+456" -> 1 2 3 + 4 5 6 <end>
    target (n, T): <start>, symbols, <end>, <pad>...      "579" -> <start> 5 7 9 <end>

For teacher forcing feed ``target[:, :-1]`` to the decoder and predict ``target[:, 1:]``.
:func:`decode` (or ``vocab.decode``) turns id rows back into strings.

>>> from annfast import datasets
>>> src, tgt, vocab = datasets.addition(2, digits=3, seed=0)
>>> datasets.decode(src, vocab), datasets.decode(tgt, vocab)      # doctest: +SKIP
(['850+636', '511+381'], ['1486', '892'])
"""
from __future__ import annotations

import gzip
import os
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._validate import check_float, check_int

__all__ = ["load_fashion_mnist", "read_idx", "make_mnist1d", "adding_problem", "parity",
           "noisy_sine", "reverse_digits", "sort_digits", "addition", "Vocabulary", "decode",
           "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES", "PAD", "START", "END"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
PAD, START, END = 0, 1, 2

# IDX type codes (third magic byte) -> big-endian NumPy dtypes
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

ArrayPair = Tuple[np.ndarray, np.ndarray]


# ---- IDX files and Fashion-MNIST --------------------------------------------------------------
def read_idx(path: Union[str, "os.PathLike[str]"]) -> np.ndarray:
    """One IDX file (gzipped or not) as a NumPy array in native byte order.

    The header is checked: two zero bytes, a known type code, 1 to 4 dimensions, and a file
    size equal to header + product(dims) * itemsize (a truncated or padded file is rejected).
    Raises ValueError naming the file and the problem.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (the magic number must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x} "
                         f"(expected one of {', '.join(f'0x{c:02x}' for c in _IDX_TYPES)})")
    if not 1 <= ndim <= 4:
        raise ValueError(f"{path}: IDX header gives {ndim} dimensions, expected 1 to 4")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says shape {dims} of {dtype.name} ({expected} bytes "
                         f"with the header) but the data has {len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def _find(directory, stem):
    for name in (stem + ".gz", stem):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def load_fashion_mnist(path: Optional[Union[str, "os.PathLike[str]"]] = None,
                       dtype: DTypeLike = "uint8") -> Tuple[ArrayPair, ArrayPair]:
    """Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``, like Keras's
    ``fashion_mnist.load_data()``: images ``(60000, 28, 28)`` and ``(10000, 28, 28)``, labels
    ``(n,)`` uint8 in 0..9 (names in ``FASHION_MNIST_CLASSES``).

    path: the directory holding the four IDX files (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
    optionally ``.gz``); default ``/usr/share/datasets/fashion-mnist``, where Debian's
    ``dataset-fashion-mnist`` package installs them (``apt-get install dataset-fashion-mnist``).
    dtype: ``"uint8"`` (default) returns the raw pixels 0..255 as Keras does; a float dtype
    (``"float32"``, ``"float64"``) returns the pixels divided by 255, in [0, 1].

    Raises FileNotFoundError naming the directory and the Debian package when files are
    missing, and ValueError when a file's IDX header or size is wrong.

    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()   # doctest: +SKIP
    >>> x_train.shape, x_train.dtype, y_train[:5]                       # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'), array([9, 0, 0, 3, 0], dtype=uint8))
    """
    out_dtype = np.dtype(dtype)
    if out_dtype != np.uint8 and out_dtype.kind != "f":
        raise ValueError(f"dtype must be 'uint8' or a float dtype, got {out_dtype}")
    directory = FASHION_MNIST_DIR if path is None else os.fspath(path)
    found = {key: _find(directory, stem) for key, stem in FASHION_MNIST_FILES.items()}
    missing = [FASHION_MNIST_FILES[k] for k, v in found.items() if v is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {directory}: missing {', '.join(missing)} (or .gz). "
            f"Install Debian's package (apt-get install dataset-fashion-mnist, which puts the files "
            f"in {FASHION_MNIST_DIR}) or pass path= a directory holding the four IDX files.")
    arrays = {key: read_idx(p) for key, p in found.items()}
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        _check_pair(x, y, found["x_" + split], found["y_" + split])
    convert = (lambda x: x) if out_dtype == np.uint8 else (lambda x: x.astype(out_dtype) / out_dtype.type(255))
    return ((convert(arrays["x_train"]), arrays["y_train"]),
            (convert(arrays["x_test"]), arrays["y_test"]))


def _check_pair(x, y, x_path, y_path):
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"{x_path}: expected uint8 images of shape (n, 28, 28), got "
                         f"{x.dtype} {x.shape}")
    if y.dtype != np.uint8 or y.ndim != 1:
        raise ValueError(f"{y_path}: expected a 1-D uint8 label array, got {y.dtype} {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{y_path}: {y.shape[0]} labels for {x.shape[0]} images in {x_path}")
    if y.size and y.max() > 9:
        raise ValueError(f"{y_path}: labels must be 0..9, found {int(y.max())}")


# ---- MNIST-1D ---------------------------------------------------------------------------------
def make_mnist1d(seed: int = 42, **kwargs) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D generated locally: ``(x_train, y_train, x_test, y_test)``, by default 4000 and
    1000 sequences of 40 float64 values with int labels 0..9 (mnist1d's defaults: 5000 samples,
    an 80/20 split; seed 42 gives the published data set).

    Calls ``mnist1d.data.make_dataset`` with mnist1d's default arguments, ``seed`` and any
    overrides (``num_samples``, ``train_split``, ``final_seq_length``, ``iid_noise_scale``,
    ...; see ``mnist1d.data.get_dataset_args``); never ``get_dataset``, which downloads. The
    global ``random`` / ``numpy.random`` states, which mnist1d reseeds, are restored.
    Needs the ``mnist1d`` package (``pip install mnist1d``).

    >>> x_train, y_train, x_test, y_test = make_mnist1d()     # doctest: +SKIP
    >>> x_train.shape, x_test.shape                            # doctest: +SKIP
    ((4000, 40), (1000, 40))
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ImportError("make_mnist1d needs the mnist1d package: pip install mnist1d") from None
    args = get_dataset_args(as_dict=True)
    args.pop("url", None)  # nothing is downloaded
    unknown = sorted(set(kwargs) - set(args))
    if unknown:
        raise ValueError(f"unknown mnist1d arguments {unknown}; valid: {sorted(args)}")
    args.update(kwargs, seed=check_int(seed, "seed", minimum=0))
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(_Args(args))
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return data["x"], data["y"], data["x_test"], data["y_test"]


class _Args:
    """The attribute view make_dataset expects."""

    def __init__(self, d):
        self.__dict__.update(d)


# ---- synthetic sequence tasks (one target per sequence) ---------------------------------------
def _rng(seed):
    return np.random.default_rng(check_int(seed, "seed", minimum=0))


def adding_problem(n: int, steps: int, seed: int = 0, dtype: DTypeLike = "float32") -> ArrayPair:
    """The adding problem (Hochreiter & Schmidhuber 1997): ``x`` is ``(n, steps, 2)``; channel 0
    holds uniform values in [0, 1), channel 1 marks exactly two steps with 1.0 (one in each
    half of the sequence); the target ``y`` ``(n, 1)`` is the sum of the two marked values.
    Predicting 1.0 always gives a mean squared error of about 1/6.

    >>> x, y = adding_problem(4, 10)
    >>> x.shape, y.shape
    ((4, 10, 2), (4, 1))
    """
    n = check_int(n, "n", minimum=1)
    steps = check_int(steps, "steps", minimum=2)
    rng = _rng(seed)
    values = rng.random((n, steps))
    half = steps // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, steps, n)
    marks = np.zeros((n, steps))
    rows = np.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = np.stack([values, marks], axis=-1).astype(dtype)
    y = (values[rows, first] + values[rows, second]).reshape(n, 1).astype(dtype)
    return x, y


def parity(n: int, steps: int, seed: int = 0, dtype: DTypeLike = "float32") -> ArrayPair:
    """Parity of a bit sequence: ``x`` ``(n, steps, 1)`` of 0.0/1.0, ``y`` ``(n, 1)`` = 1.0
    when the number of ones is odd (binary classification; chance is 50%).

    >>> x, y = parity(3, 8)
    >>> bool(((x.sum(axis=(1, 2)) % 2) == y[:, 0]).all())
    True
    """
    n = check_int(n, "n", minimum=1)
    steps = check_int(steps, "steps", minimum=1)
    bits = _rng(seed).integers(0, 2, (n, steps))
    return bits[..., None].astype(dtype), (bits.sum(axis=1) % 2).reshape(n, 1).astype(dtype)


def noisy_sine(n: int, steps: int, seed: int = 0, noise: float = 0.1,
               dtype: DTypeLike = "float32") -> ArrayPair:
    """Next-value regression on noisy sine waves: sequence i is
    ``a sin(w t + p) + noise * N(0, 1)`` at t = 0..steps-1, with amplitude a in [0.5, 1.5),
    angular frequency w in [0.1, 0.5) rad/step and phase p in [0, 2 pi); ``x`` is
    ``(n, steps, 1)`` and the target ``y`` ``(n, 1)`` the NOISE-FREE value at t = steps, so the
    best possible mean squared error is 0.

    >>> x, y = noisy_sine(2, 30, noise=0.0)
    >>> x.shape, y.shape
    ((2, 30, 1), (2, 1))
    """
    n = check_int(n, "n", minimum=1)
    steps = check_int(steps, "steps", minimum=1)
    noise = check_float(noise, "noise", minimum=0.0)
    rng = _rng(seed)
    amp = rng.uniform(0.5, 1.5, (n, 1))
    freq = rng.uniform(0.1, 0.5, (n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1))
    t = np.arange(steps + 1)
    clean = amp * np.sin(freq * t + phase)
    x = clean[:, :steps] + noise * rng.standard_normal((n, steps))
    return x[..., None].astype(dtype), clean[:, steps:].astype(dtype)


# ---- sequence-to-sequence tasks ---------------------------------------------------------------
@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id: ids 0, 1, 2 are ``<pad>``, ``<start>``, ``<end>`` (see the module
    docstring); the task's symbols follow.

    >>> v = Vocabulary.of("0123456789")
    >>> v.encode("42"), v.decode([1, 7, 5, 2, 0])
    ([7, 5], '42')
    """
    tokens: Tuple[str, ...]

    PAD = PAD
    START = START
    END = END
    SPECIALS = ("<pad>", "<start>", "<end>")

    @classmethod
    def of(cls, symbols: Sequence[str]) -> "Vocabulary":
        return cls(cls.SPECIALS + tuple(symbols))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> Dict[str, int]:
        """token -> id."""
        return {t: i for i, t in enumerate(self.tokens)}

    def encode(self, text: str) -> List[int]:
        """Ids of the characters of text (no start/end tokens); KeyError names an unknown one."""
        index = self.index
        try:
            return [index[ch] for ch in text]
        except KeyError as exc:
            raise KeyError(f"{exc.args[0]!r} is not in the vocabulary {self.tokens[3:]}") from None

    def decode(self, ids: ArrayLike) -> Union[str, List[str]]:
        """The string of one id row (stops at ``<end>``, skips ``<start>`` and ``<pad>``), or a
        list of strings for a 2-D array of rows."""
        arr = np.asarray(ids)
        if arr.ndim == 2:
            return [self.decode(row) for row in arr]
        if arr.ndim != 1:
            raise ValueError(f"ids must be 1-D (one sequence) or 2-D (rows), got shape {arr.shape}")
        out = []
        for i in arr.tolist():
            if i == END:
                break
            if i in (PAD, START):
                continue
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"token id {i} is outside the vocabulary (0..{len(self.tokens) - 1})")
            out.append(self.tokens[i])
        return "".join(out)


DIGITS = Vocabulary.of("0123456789")
ARITHMETIC = Vocabulary.of("0123456789+")


def decode(ids: ArrayLike, vocab: Vocabulary) -> Union[str, List[str]]:
    """``vocab.decode(ids)``: one id row -> str, a 2-D array -> list of str."""
    return vocab.decode(ids)


def _pack(rows: List[List[int]], start: bool) -> np.ndarray:
    """Rows of symbol ids -> (n, width) int32: [<start>] symbols <end> <pad>..."""
    width = max(len(r) for r in rows) + 1 + int(start)
    out = np.full((len(rows), width), PAD, dtype=np.int32)
    for i, r in enumerate(rows):  # building token rows is bookkeeping, not numerics
        seq = ([START] if start else []) + r + [END]
        out[i, :len(seq)] = seq
    return out


def _digit_rows(digits: np.ndarray) -> List[List[int]]:
    return (digits + 3).tolist()  # digit d has id d + 3 in DIGITS and ARITHMETIC


def reverse_digits(n: int, length: int = 10, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, Vocabulary]:
    """Reverse a string of ``length`` random digits: ``source`` ``(n, length + 1)``,
    ``target`` ``(n, length + 2)`` int32 ids over :data:`DIGITS` (13 tokens).

    >>> src, tgt, vocab = reverse_digits(1, length=4, seed=1)
    >>> vocab.decode(src[0])[::-1] == vocab.decode(tgt[0])
    True
    """
    n = check_int(n, "n", minimum=1)
    length = check_int(length, "length", minimum=1)
    digits = _rng(seed).integers(0, 10, (n, length))
    return _pack(_digit_rows(digits), False), _pack(_digit_rows(digits[:, ::-1]), True), DIGITS


def sort_digits(n: int, length: int = 10, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, Vocabulary]:
    """Sort a string of ``length`` random digits ascending: shapes as :func:`reverse_digits`.

    >>> src, tgt, vocab = sort_digits(1, length=5, seed=2)
    >>> "".join(sorted(vocab.decode(src[0]))) == vocab.decode(tgt[0])
    True
    """
    n = check_int(n, "n", minimum=1)
    length = check_int(length, "length", minimum=1)
    digits = _rng(seed).integers(0, 10, (n, length))
    return _pack(_digit_rows(digits), False), _pack(_digit_rows(np.sort(digits, axis=1)), True), DIGITS


def addition(n: int, digits: int = 3, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, Vocabulary]:
    """Integer addition as text: source ``"a+b"`` with a, b uniform in [0, 10**digits) written
    without leading zeros (e.g. ``"123+456"``), target their sum (``"579"``). ``source`` is
    ``(n, 2 * digits + 2)`` and ``target`` ``(n, digits + 3)`` int32 ids over
    :data:`ARITHMETIC` (14 tokens), padded as described in the module docstring.

    >>> src, tgt, vocab = addition(3, digits=2, seed=0)
    >>> [eval(s) == int(t) for s, t in zip(vocab.decode(src), vocab.decode(tgt))]
    [True, True, True]
    """
    n = check_int(n, "n", minimum=1)
    digits = check_int(digits, "digits", minimum=1)
    if digits > 18:
        raise ValueError(f"digits must be <= 18 (int64 sums), got {digits}")
    rng = _rng(seed)
    a = rng.integers(0, 10 ** digits, n)
    b = rng.integers(0, 10 ** digits, n)
    source = [ARITHMETIC.encode(f"{x}+{y}") for x, y in zip(a.tolist(), b.tolist())]
    target = [ARITHMETIC.encode(str(s)) for s in (a + b).tolist()]
    src, tgt = _pack(source, False), _pack(target, True)
    # fixed widths whatever the draw: 2 * digits + 1 symbols + <end>; <start> + digits + 1 + <end>
    return _widen(src, 2 * digits + 2), _widen(tgt, digits + 3), ARITHMETIC


def _widen(ids: np.ndarray, width: int) -> np.ndarray:
    if ids.shape[1] == width:
        return ids
    out = np.full((ids.shape[0], width), PAD, dtype=ids.dtype)
    out[:, :ids.shape[1]] = ids
    return out
