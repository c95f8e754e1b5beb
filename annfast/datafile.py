"""Read a table of numbers (features plus an optional target column) from CSV, .npy or .npz.

Used by the command line (`annfast train` / `annfast predict`) and usable directly:

>>> from annfast.datafile import load_table            # doctest: +SKIP
>>> t = load_table("iris.csv", target="species")       # doctest: +SKIP
>>> t.X.shape, t.y[:3], t.feature_names[:2]            # doctest: +SKIP
((150, 4), array(['setosa', 'setosa', 'setosa'], dtype='<U10'), ['sepal_length', 'sepal_width'])

Formats
-------
* ``.csv`` / ``.tsv`` / ``.txt``: delimiter sniffed (comma, semicolon, tab or whitespace) unless
  given; the first row is a header when any of its fields is not a number. Feature columns must be
  numeric; the target column may hold strings (class labels). An empty cell (or NA, N/A, NaN,
  null, none, ?) is reported as a missing value with its row and column.
* ``.npy``: one 2-D numeric array; the target is a column index.
* ``.npz``: either arrays ``X`` and ``y`` (the target option, if given, names the target array
  instead of ``y``) or exactly one 2-D array treated like ``.npy``. Loaded with
  ``allow_pickle=False``.

The target is a column name (CSV with header) or an integer index (negative counts from the end);
``target=None`` means every column is a feature (for prediction). Errors are ``ValueError`` with a
one-line message naming the file, the column and the problem.
"""
import csv
import io
import os
from dataclasses import dataclass, field

import numpy as np

_CSV_EXT = (".csv", ".tsv", ".txt")


@dataclass
class Table:
    """What `load_table` returns: features X (float64, 2-D), target y (1-D, numeric or str, or None),
    the feature column names and the target's name (str or None)."""
    X: np.ndarray
    y: object = None
    feature_names: list = field(default_factory=list)
    target_name: object = None


def load_table(path, target=-1, delimiter=None):
    """Load `path` (.csv/.tsv/.txt, .npy or .npz) into a `Table`.

    target: column name or int index of the target column (default the last column), or None for
    features only. delimiter: CSV field separator (sniffed when None).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, expected a data file")
    ext = os.path.splitext(path)[1].lower()
    if ext in _CSV_EXT:
        return _load_csv(path, target, delimiter)
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a readable .npy file ({exc})") from None
        return _split_array(arr, target, path)
    if ext == ".npz":
        return _load_npz(path, target)
    raise ValueError(f"{path}: unsupported file type {ext or '(none)'!r}; expected .csv, .tsv, .txt, "
                     f".npy or .npz")


# ---- .npy / .npz ----

def _column_index(target, n_cols, names, path):
    """Resolve a target given as name or (possibly negative) index to a column index."""
    if isinstance(target, str):
        if target in names:
            return names.index(target)
        try:
            target = int(target)
        except ValueError:
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise ValueError(f"{path}: no column named {target!r} (columns: {shown})") from None
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, np.integer)):
        raise TypeError(f"target must be a column name or int index, got {type(target).__name__}")
    if not -n_cols <= target < n_cols:
        raise ValueError(f"{path}: target column index {target} out of range for {n_cols} columns")
    return int(target) % n_cols


def _numeric_2d(arr, path, what="array"):
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{path}: {what} must be 2-D (rows, columns), got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {what} must be numeric, got dtype {arr.dtype}")
    return arr


def _split_array(arr, target, path):
    arr = _numeric_2d(arr, path)
    n_cols = arr.shape[1]
    names = [f"x{i}" for i in range(n_cols)]
    if target is None:
        return Table(_finite(arr.astype(np.float64), path), None, names, None)
    j = _column_index(target, n_cols, names, path)
    if n_cols < 2:
        raise ValueError(f"{path}: need at least 2 columns (features and a target), got 1")
    keep = [i for i in range(n_cols) if i != j]
    X = np.ascontiguousarray(arr[:, keep], dtype=np.float64)
    y = arr[:, j].copy()
    _finite(y.reshape(-1, 1).astype(np.float64), path, [names[j] + " (target)"])
    return Table(_finite(X, path, [names[i] for i in keep]), y, [names[i] for i in keep], names[j])


def _load_npz(path, target):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    ykey = target if isinstance(target, str) else "y"
    if "X" in arrays:
        X = _numeric_2d(arrays["X"], path, "array 'X'")
        names = [f"x{i}" for i in range(X.shape[1])]
        if target is None:
            return Table(_finite(X.astype(np.float64), path), None, names, None)
        if ykey not in arrays:
            raise ValueError(f"{path}: no array named {ykey!r} for the target "
                             f"(arrays: {', '.join(sorted(arrays))})")
        y = arrays[ykey]
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"{path}: target {ykey!r} must be 1-D with {X.shape[0]} entries (one per "
                             f"row of X), got shape {y.shape}")
        return Table(_finite(X.astype(np.float64), path), y, names, ykey)
    if len(arrays) == 1:
        return _split_array(next(iter(arrays.values())), target, path)
    raise ValueError(f"{path}: expected arrays 'X' and 'y' or a single array, got "
                     f"{', '.join(sorted(arrays)) or 'none'}")


def _finite(X, path, names=None):
    if X.size and not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        what = "missing value (NaN)" if np.isnan(X[r, c]) else f"non-finite value ({X[r, c]})"
        col = repr(names[c]) if names is not None else str(c)
        raise ValueError(f"{path}: {what} in row {r + 1}, feature column {col}")
    return X


MISSING = ("", "na", "n/a", "nan", "null", "none", "?")  # spellings of an empty cell, lower case


def _check_missing(cells, names, path, has_header):
    """ValueError naming the first empty / NA cell: its data row, file line and column."""
    if not cells.size:
        return
    missing = np.isin(np.char.lower(np.char.strip(cells)), MISSING)
    if missing.any():
        r, c = np.argwhere(missing)[0]
        line = r + (2 if has_header else 1)
        shown = f" ({str(cells[r, c])!r})" if cells[r, c].strip() else ""
        raise ValueError(f"{path}: missing value{shown} in column {names[c]!r}, data row {r + 1} "
                         f"(line {line}); fill or drop it")


# ---- CSV ----

def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_rows(path, delimiter):
    with open(path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: file is empty")
    if delimiter is None:
        first = lines[0]
        for cand in (",", ";", "\t"):
            if cand in first:
                delimiter = cand
                break
    if delimiter is None:  # whitespace-separated (or a single column)
        return [ln.split() for ln in lines]
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO("\n".join(lines)),
                                                           delimiter=delimiter)]


def _load_csv(path, target, delimiter):
    rows = _read_rows(path, delimiter)
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise ValueError(f"{path}: no data rows")
    n_cols = len(header) if header is not None else len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != n_cols:
            line = i + (2 if header is not None else 1)
            raise ValueError(f"{path}: line {line} has {len(row)} fields, expected {n_cols}")
    names = list(header) if header is not None else [f"x{i}" for i in range(n_cols)]
    cells = np.array(rows, dtype=str)
    if target is None:
        keep, j = list(range(n_cols)), None
    else:
        j = _column_index(target, n_cols, names, path)
        if n_cols < 2:
            raise ValueError(f"{path}: need at least 2 columns (features and a target), got 1")
        keep = [i for i in range(n_cols) if i != j]
    _check_missing(cells, names, path, header is not None)
    X = np.empty((cells.shape[0], len(keep)), dtype=np.float64)
    for out_col, c in enumerate(keep):
        try:
            X[:, out_col] = cells[:, c].astype(np.float64)
        except ValueError:
            bad = next(k for k, v in enumerate(cells[:, c]) if not _is_number(v))
            raise ValueError(f"{path}: column {names[c]!r} is not numeric (row {bad + 1}: "
                             f"{str(cells[bad, c])!r})") from None
    X = _finite(X, path, [names[i] for i in keep])
    if j is None:
        return Table(X, None, [names[i] for i in keep], None)
    ycol = cells[:, j]
    try:
        y = ycol.astype(np.float64)
        if np.all(y == np.round(y)) and np.all(np.abs(y) < 2 ** 53):
            y = y.astype(np.int64)
    except ValueError:
        y = ycol
    return Table(X, y, [names[i] for i in keep], names[j])
