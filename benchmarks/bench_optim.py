"""Optimiser update time: annfast's fused C step vs torch.optim, on the parameters of the
784-512-256-10 network (535,818 values), float32 and float64.

Run: python benchmarks/bench_optim.py [--threads N] [--repeats R]
Prints per optimiser: our time per step, torch's (its CPU default and fused/foreach variants
where available) and the ratio torch / ours (> 1 means we are faster). Times are the minimum
over repeats (the machine is shared, so only minima are comparable).
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

SHAPES = [(784, 512), (512,), (512, 256), (256,), (256, 10), (10,)]
N = sum(int(np.prod(s)) for s in SHAPES)

CASES = [
    ("SGD", {"kind": "sgd", "lr": 0.01}, "SGD", {"lr": 0.01}),
    ("SGD momentum", {"kind": "sgd", "lr": 0.01, "momentum": 0.9}, "SGD", {"lr": 0.01, "momentum": 0.9}),
    ("Adagrad", {"kind": "adagrad", "lr": 0.01, "eps": 1e-10}, "Adagrad", {"lr": 0.01}),
    ("RMSprop", {"kind": "rmsprop", "lr": 0.01, "rho": 0.99}, "RMSprop", {"lr": 0.01}),
    ("Adadelta", {"kind": "adadelta", "lr": 1.0, "rho": 0.9, "eps": 1e-6}, "Adadelta", {}),
    ("Adam", {"kind": "adam", "lr": 1e-3}, "Adam", {"lr": 1e-3}),
    ("AdamW", {"kind": "adam", "lr": 1e-3, "weight_decay": 0.01, "decoupled_wd": True}, "AdamW", {"lr": 1e-3}),
]


def best_times(fns, repeats, inner):
    """Min time per call of each fn; the fns take turns inside every repeat, so a burst of load
    from other processes hits all of them alike."""
    for fn in fns:
        fn()  # warm up (threads, page faults, first-step state)
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / inner)
    return best


def ours(cfg, dtype):
    rng = np.random.default_rng(0)
    p = rng.standard_normal(N).astype(dtype)
    g = (rng.standard_normal(N) * 1e-3).astype(dtype)
    s = np.zeros(_core.optim_slots(cfg) * N, dtype=dtype)
    t = [0]

    def step():
        t[0] += 1
        _core.optim_step(cfg, p, g, s, t[0])
    return step


def theirs(torch, name, kw, dtype, variant):
    """torch.optim step function on the network's six parameter tensors, or None if the
    variant is not available for this optimiser."""
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    params = [torch.randn(*s, dtype=tdtype, requires_grad=True) for s in SHAPES]
    for q in params:
        q.grad = torch.randn_like(q) * 1e-3
    extra = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[variant]
    try:
        opt = getattr(torch.optim, name)(params, **kw, **extra)
        opt.step()
    except (RuntimeError, TypeError, ValueError):
        return None
    return opt.step


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=annfast.get_num_threads())
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--inner", type=int, default=20)
    args = ap.parse_args()
    annfast.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"optimiser step over {N:,} parameters, {args.threads} thread(s), min of {args.repeats} x "
          f"{args.inner} steps; torch {getattr(torch, '__version__', 'not installed')}")
    for dtype in (np.float32, np.float64):
        print(f"\n{np.dtype(dtype).name}")
        print(f"{'optimiser':<14} {'annfast ms':>10} {'torch ms':>9} {'foreach':>8} {'fused':>8} "
              f"{'torch/us':>9} {'best/us':>8}")
        for label, cfg, tname, tkw in CASES:
            fns = [ours(cfg, dtype)]
            if torch is not None:
                fns += [theirs(torch, tname, tkw, dtype, v) for v in ("default", "foreach", "fused")]
            else:
                fns += [None, None, None]
            timed = best_times([f for f in fns if f is not None], args.repeats, args.inner)
            it = iter(timed)
            res = [next(it) if f is not None else None for f in fns]
            us, row = res[0], res[1:]
            avail = [r for r in row if r is not None]

            def ms(x):
                return f"{x * 1e3:8.3f}" if x is not None else f"{'-':>8}"
            ratio = f"{row[0] / us:9.2f}" if row[0] else f"{'-':>9}"
            best = f"{min(avail) / us:8.2f}" if avail else f"{'-':>8}"
            print(f"{label:<14} {us * 1e3:10.3f} {ms(row[0]):>9} {ms(row[1])} {ms(row[2])} {ratio} {best}")


if __name__ == "__main__":
    main()
