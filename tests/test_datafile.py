"""annfast.datafile.load_table: CSV (header/no header, delimiters, string targets), .npy, .npz,
and every error path with a message naming the problem."""
import numpy as np
import pytest

from annfast.datafile import load_table


def write(path, text):
    path.write_text(text)
    return path


def test_csv_with_header_and_string_target(tmp_path):
    p = write(tmp_path / "d.csv", "a,b,label\n1,2,cat\n3.5,4,dog\n5,-6,cat\n")
    t = load_table(p, target="label")
    np.testing.assert_array_equal(t.X, [[1, 2], [3.5, 4], [5, -6]])
    assert t.X.dtype == np.float64
    assert t.y.tolist() == ["cat", "dog", "cat"]
    assert t.feature_names == ["a", "b"] and t.target_name == "label"


def test_csv_default_last_column_integer_target_and_index(tmp_path):
    p = write(tmp_path / "d.csv", "1,2,0\n3,4,1\n5,6,1\n")
    t = load_table(p)
    assert t.y.dtype.kind == "i" and t.y.tolist() == [0, 1, 1]
    t0 = load_table(p, target=0)
    np.testing.assert_array_equal(t0.X, [[2, 0], [4, 1], [6, 1]])
    assert t0.y.tolist() == [1, 3, 5]
    assert load_table(p, target="1").y.tolist() == [2, 4, 6]  # numeric string = index


def test_csv_float_target_semicolon_tab_whitespace(tmp_path):
    for sep in (";", "\t", " "):
        p = write(tmp_path / "d.txt", f"x{sep}y\n1{sep}0.5\n2{sep}1.5\n")
        t = load_table(p, target="y")
        assert t.y.dtype == np.float64 and t.y.tolist() == [0.5, 1.5]


def test_csv_features_only_and_comments(tmp_path):
    p = write(tmp_path / "d.csv", "# comment\na,b\n1,2\n\n3,4\n")
    t = load_table(p, target=None)
    assert t.y is None and t.X.shape == (2, 2) and t.feature_names == ["a", "b"]


def test_npy_and_npz(tmp_path):
    arr = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "a.npy", arr)
    t = load_table(tmp_path / "a.npy", target=1)
    np.testing.assert_array_equal(t.X, arr[:, [0, 2]])
    np.testing.assert_array_equal(t.y, arr[:, 1])
    np.savez(tmp_path / "b.npz", X=arr, y=np.array([0, 1, 0, 1]))
    t = load_table(tmp_path / "b.npz")
    np.testing.assert_array_equal(t.X, arr)
    assert t.y.tolist() == [0, 1, 0, 1]
    np.savez(tmp_path / "c.npz", X=arr, labels=np.array([1, 2, 3, 4]))
    assert load_table(tmp_path / "c.npz", target="labels").y.tolist() == [1, 2, 3, 4]
    assert load_table(tmp_path / "c.npz", target=None).y is None
    np.savez(tmp_path / "d.npz", data=arr)
    assert load_table(tmp_path / "d.npz").X.shape == (4, 2)


@pytest.mark.parametrize("content,target,match", [
    ("a,b\n1,2\n", "zzz", "no column named 'zzz'"),
    ("a,b\n1,2\n", 5, "out of range"),
    ("a,b\n1,x\n", 0, "column 'b' is not numeric"),
    ("a,b\n1,2,3\n", -1, "line 2 has 3 fields, expected 2"),
    ("", -1, "empty"),
    ("a,b\n", -1, "no data rows"),
    ("a\n1\n2\n", -1, "at least 2 columns"),
    ("a,b,c\n1,inf,3\n", -1, r"non-finite value \(inf\) in row 1, feature column 'b'"),
    # a missing cell is reported as missing, with its row and column (not as "not numeric")
    ("a,b,c\n1,2,3\n1,,3\n", -1, r"missing value in column 'b', data row 2 \(line 3\)"),
    ("a,b,c\n1,NaN,3\n", -1, r"missing value \('NaN'\) in column 'b', data row 1"),
    ("1,2,3\n4,5, \n", -1, r"missing value in column 'x2', data row 2 \(line 2\)"),
    ("a,b,label\n1,2,cat\n3,4,NA\n", "label", r"missing value \('NA'\) in column 'label'"),
])
def test_csv_errors(tmp_path, content, target, match):
    p = write(tmp_path / "bad.csv", content)
    with pytest.raises(ValueError, match=match):
        load_table(p, target=target)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_table(tmp_path / "missing.csv")
    with pytest.raises(IsADirectoryError):
        load_table(tmp_path)
    with pytest.raises(ValueError, match="unsupported file type '.json'"):
        load_table(write(tmp_path / "x.json", "{}"))
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_table(write(tmp_path / "x.npy", "garbage"))
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="must be numeric"):
        load_table(tmp_path / "s.npy")
    np.save(tmp_path / "o.npy", np.array([1, 2], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_table(tmp_path / "o.npy")
    np.savez(tmp_path / "m.npz", X=np.ones((3, 2)), y=np.ones(4))
    with pytest.raises(ValueError, match="one per row"):
        load_table(tmp_path / "m.npz")
    np.savez(tmp_path / "k.npz", X=np.ones((3, 2)))
    with pytest.raises(ValueError, match="no array named 'y'"):
        load_table(tmp_path / "k.npz")
    np.save(tmp_path / "nan.npy", np.array([[1.0, 2.0, 0.0], [np.nan, 1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"missing value \(NaN\) in row 2, feature column 'x0'"):
        load_table(tmp_path / "nan.npy")
    np.save(tmp_path / "nany.npy", np.array([[1.0, 2.0, 0.0], [0.0, 1.0, np.nan]]))
    with pytest.raises(ValueError, match=r"missing value \(NaN\) in row 2, feature column 'x2 \(target\)'"):
        load_table(tmp_path / "nany.npy")
    np.savez(tmp_path / "two.npz", a=np.ones((3, 2)), b=np.ones(3))
    with pytest.raises(ValueError, match="expected arrays 'X' and 'y'"):
        load_table(tmp_path / "two.npz")
    with pytest.raises(TypeError, match="column name or int"):
        load_table(write(tmp_path / "ok.csv", "1,2\n"), target=1.5)
