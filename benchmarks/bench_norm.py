"""Batch norm and dropout kernels: annfast (csrc/batchnorm.c, csrc/dropout.c) vs PyTorch CPU.

Run: python benchmarks/bench_norm.py [--threads N] [--repeats R]
Per batch shape (m samples x n features) and dtype: batch-norm training forward, backward
(torch: autograd backward of F.batch_norm, i.e. dx, dgamma, dbeta), inference forward, and
dropout forward (mask generation + scaling). Times are per call, minimum over repeats, the
implementations taking turns so a burst of machine load hits both; the ratio is torch / ours
(> 1: we are faster). Our numbers include the Cython boundary (argument checks, allocation of
the outputs), which the engine's in-step calls do not pay.
"""
import argparse
import os
import sys
import time

import numpy as np

try:
    import annfast
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import annfast
from annfast import _core

SHAPES = [(128, 512), (128, 256), (1024, 512)]


def best_times(fns, repeats, inner):
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / inner)
    return best


def cases(torch, m, n, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, n)).astype(dtype)
    dy = rng.standard_normal((m, n)).astype(dtype)
    g = rng.uniform(0.5, 1.5, n).astype(dtype)
    b = rng.uniform(-1, 1, n).astype(dtype)
    rm, rv = np.zeros(n, dtype), np.ones(n, dtype)
    _, mean, invstd = _core.batchnorm_forward(x, g, b, rm, rv)
    step = [0]

    def drop():
        step[0] += 1
        _core.dropout_apply(x, 0.5, 7, step[0])
    ours = {
        "bn train fwd": lambda: _core.batchnorm_forward(x, g, b, rm, rv),
        "bn backward": lambda: _core.batchnorm_backward(x, dy, g, mean, invstd),
        "bn infer fwd": lambda: _core.batchnorm_forward(x, g, b, rm, rv, training=False),
        "dropout fwd": drop,
    }
    if torch is None:
        return {k: (f, None) for k, f in ours.items()}
    F = torch.nn.functional
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(g, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    tdy = torch.tensor(dy)
    ty = F.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.01, eps=1e-3)

    def t_train():
        with torch.no_grad():
            F.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.01, eps=1e-3)

    def t_back():
        torch.autograd.grad(ty, (tx, tg, tb), tdy, retain_graph=True)

    def t_infer():
        with torch.no_grad():
            F.batch_norm(tx, trm, trv, tg, tb, training=False, eps=1e-3)

    def t_drop():
        with torch.no_grad():
            F.dropout(tx, 0.5, training=True)
    theirs = {"bn train fwd": t_train, "bn backward": t_back, "bn infer fwd": t_infer, "dropout fwd": t_drop}
    return {k: (ours[k], theirs[k]) for k in ours}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=annfast.get_num_threads())
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--inner", type=int, default=50)
    args = ap.parse_args()
    annfast.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"batch norm / dropout kernels, {args.threads} thread(s), min of {args.repeats} x {args.inner} "
          f"calls; torch {getattr(torch, '__version__', 'not installed')}")
    print(f"{'dtype':<8} {'m x n':<11} {'kernel':<13} {'annfast us':>10} {'torch us':>9} {'torch/us':>8}")
    for dtype in (np.float32, np.float64):
        for m, n in SHAPES:
            for name, (ours, theirs) in cases(torch, m, n, dtype).items():
                fns = [ours] + ([theirs] if theirs else [])
                t = best_times(fns, args.repeats, args.inner)
                tt = f"{t[1] * 1e6:9.1f}" if theirs else f"{'-':>9}"
                ratio = f"{t[1] / t[0]:8.2f}" if theirs else f"{'-':>8}"
                print(f"{np.dtype(dtype).name:<8} {f'{m}x{n}':<11} {name:<13} {t[0] * 1e6:10.1f} {tt} {ratio}")


if __name__ == "__main__":
    main()
