"""annfast.sklearn without scikit-learn installed: the module imports and the estimators train,
with the stand-in base classes of annfast._sklearn_compat (runs whether or not sklearn is
installed: a subprocess hides it)."""
import os
import subprocess
import sys

# the folder holding the annfast that this test run imports (the checkout for an in-place build,
# site-packages for an installed one): subprocesses must import the same, compiled package
import annfast as _annfast_under_test  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(_annfast_under_test.__file__)))


def test_import_and_use_without_sklearn(tmp_path):
    """The module imports and trains with scikit-learn hidden (stand-in base classes)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sklearn.py").write_text("raise ImportError('No module named sklearn')\n")
    code = (
        "import numpy as np, warnings\n"
        "from annfast.sklearn import MLPClassifier, MLPRegressor\n"
        "from annfast._sklearn_compat import HAVE_SKLEARN; assert not HAVE_SKLEARN\n"
        "rng = np.random.default_rng(0); X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0)\n"
        "warnings.simplefilter('ignore')\n"
        "c = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, learning_rate_init=0.01,\n"
        "                  random_state=0).fit(X, y)\n"
        "assert c.score(X, y) > 0.9, c.score(X, y)\n"
        "assert c.get_params()['hidden_layer_sizes'] == (8,)\n"
        "c.set_params(alpha=0.1); assert c.alpha == 0.1\n"
        "r = MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, learning_rate_init=0.01,\n"
        "                 random_state=0).fit(X, X[:, 1])\n"
        "assert r.score(X, X[:, 1]) > 0.8\n"
        "try:\n    c.predict(X[:, :2])\nexcept ValueError as e:\n    assert 'features' in str(e)\n"
        "try:\n    import pandas as pd\nexcept ImportError:\n    pd = None\n"
        "if pd is not None:\n"
        "    df = pd.DataFrame(X, columns=['a', 'b', 'c'])\n"
        "    s = MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(df, y)\n"
        "    assert list(s.feature_names_in_) == ['a', 'b', 'c']\n"
        "    assert (s.predict(df) == s.predict(X)).all()\n"
        "print('ok', repr(c))\n")
    env = dict(os.environ, PYTHONPATH=str(hide) + os.pathsep + ROOT)
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "ok MLPClassifier(hidden_layer_sizes=(8,), alpha=0.1, learning_rate_init=0.01" in res.stdout
