"""annfast.sklearn.MLPClassifier/MLPRegressor against scikit-learn's MLP, same run, same settings.

    python benchmarks/bench_sklearn.py [--repeats 3] [--threads N]

Main case (issue 7's "must show"): load_digits, 75/25 split (random_state=0),
MLPClassifier(hidden_layer_sizes=(64,), random_state=0), every other setting at its default
(adam, batch 200, alpha 1e-4, max_iter 200, tol 1e-4, n_iter_no_change 10): annfast trains in
float32 (its default dtype), scikit-learn in float64 (it follows X). Reported: test accuracy of
each, fit time (min of --repeats, fits interleaved), epochs run, and the speed-up. Extra rows:
annfast with dtype='float64' (scikit-learn's precision), and larger synthetic classification /
regression problems (default settings, max_iter=30).
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np


def fit_times(makers, X, y, repeats):
    """Fit each estimator `repeats` times, interleaved (ours, theirs, ours, ...) so both see the
    same machine load; return [(min seconds, last fitted estimator)] in the order given."""
    best = [float("inf")] * len(makers)
    fitted = [None] * len(makers)
    for _ in range(repeats):
        for i, make in enumerate(makers):
            est = make()
            time.sleep(0.25)  # let the previous fit's thread pools (OpenBLAS spins ~0.1 s) idle
            t0 = time.perf_counter()
            est.fit(X, y)
            best[i] = min(best[i], time.perf_counter() - t0)
            fitted[i] = est
    return list(zip(best, fitted))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--digits-only", action="store_true", help="only the load_digits cases")
    args = ap.parse_args()

    try:  # the installed annfast (README's install)...
        import annfast
    except ImportError:  # ...or an in-place build in this checkout
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import annfast
    from annfast.sklearn import MLPClassifier
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkC
    warnings.simplefilter("ignore", ConvergenceWarning)
    if args.threads:
        annfast.set_num_threads(args.threads)
    nt = annfast.get_num_threads()

    rows = []

    def compare(name, ours_make, sk_make, X, y, Xte, yte, metric):
        (t_ours, ours), (t_sk, sk) = fit_times([ours_make, sk_make], X, y, args.repeats)
        rows.append((name, ours.score(Xte, yte), sk.score(Xte, yte), metric, ours.n_iter_,
                     sk.n_iter_, t_ours, t_sk))

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    compare("digits (64,) default (float32)",
            lambda: MLPClassifier(hidden_layer_sizes=(64,), random_state=0),
            lambda: SkC(hidden_layer_sizes=(64,), random_state=0), Xtr, ytr, Xte, yte, "acc")
    compare("digits (64,) ours dtype=float64",
            lambda: MLPClassifier(hidden_layer_sizes=(64,), random_state=0, dtype="float64"),
            lambda: SkC(hidden_layer_sizes=(64,), random_state=0), Xtr, ytr, Xte, yte, "acc")

    for name, ours, sk, data in ([] if args.digits_only else _larger_cases()):
        compare(name, ours, sk, *data)
    _print(rows, nt, args.repeats)


def _larger_cases():
    from annfast.sklearn import MLPClassifier, MLPRegressor
    from sklearn.datasets import make_classification, make_regression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkC, MLPRegressor as SkR
    Xc, yc = make_classification(n_samples=20_000, n_features=50, n_informative=30, n_classes=5,
                                 random_state=0)
    a, b, c, d = train_test_split(Xc, yc, test_size=0.25, random_state=0)
    yield ("synthetic 15k x 50, (128,64), 30 it",
           lambda: MLPClassifier(hidden_layer_sizes=(128, 64), max_iter=30, random_state=0),
           lambda: SkC(hidden_layer_sizes=(128, 64), max_iter=30, random_state=0), (a, c, b, d, "acc"))
    Xr, yr = make_regression(n_samples=20_000, n_features=20, noise=5.0, random_state=0)
    yr = yr / yr.std()
    a, b, c, d = train_test_split(Xr, yr, test_size=0.25, random_state=0)
    yield ("regression 15k x 20, (64,64), 30 it",
           lambda: MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=30, random_state=0),
           lambda: SkR(hidden_layer_sizes=(64, 64), max_iter=30, random_state=0), (a, c, b, d, "R^2"))


def _print(rows, nt, repeats):
    print(f"annfast.sklearn vs scikit-learn {__import__('sklearn').__version__} MLP, same run, "
          f"{nt} annfast threads, min of {repeats} fits")
    head = f"{'case':38s} {'metric':>6s} {'annfast':>8s} {'sklearn':>8s} {'epochs':>9s} " \
           f"{'annfast s':>10s} {'sklearn s':>10s} {'speed-up':>9s}"
    print(head)
    print("-" * len(head))
    for name, s_ours, s_sk, metric, it_o, it_s, t_o, t_s in rows:
        print(f"{name:38s} {metric:>6s} {s_ours:8.4f} {s_sk:8.4f} {f'{it_o}/{it_s}':>9s} "
              f"{t_o:10.4f} {t_s:10.4f} {t_s / t_o:8.1f}x")


if __name__ == "__main__":
    main()
