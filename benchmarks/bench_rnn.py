"""Recurrent networks: annfast vs PyTorch CPU, training throughput and batch-1 inference latency.

Models: a one-layer LSTM, GRU, SimpleRNN and bidirectional LSTM (input 64, hidden 128, 32 steps)
whose last output feeds a Dense(10) head; softmax cross-entropy on integer labels, float32,
Adam(1e-3). PyTorch runs the same models (torch.nn.LSTM / GRU / RNN with batch_first, the last
step's output, or h_n of both directions for the bidirectional one, into nn.Linear). Training:
samples/s of one shuffled epoch of --samples sequences at batch --batch, the best of --repeats.
Inference: the time of one predict call on a single 32-step sequence (model.predict vs
torch.no_grad forward), the best of --repeats rounds of --calls calls (each round's first call
comes after the pause, so the mean includes one call on cold caches). A second table splits the
same calls: the first call of a round (median over rounds) and the others (median of all).

    python benchmarks/bench_rnn.py                      # threads 2
    python benchmarks/bench_rnn.py --threads 1 2 --repeats 7
    python benchmarks/bench_rnn.py --features 16 --units 64 --steps 100 --kinds LSTM GRU
    python benchmarks/bench_rnn.py --sweep              # SWEEP's sizes, one line each

--sweep runs each size of SWEEP (small to large layers, short to long sequences, several
batches) once per model, with fewer repeats: where the ratio to PyTorch goes as the layers grow
(its per-operation overhead matters less, both sides' products approach the machine's limit).

Both frameworks get the same thread count (annfast.set_num_threads, torch.set_num_threads). On a
shared machine timings are noisy: frameworks run interleaved (annfast, torch, annfast, ...), each
after ~0.25 s of idle (so neither pays for the other's spinning thread pool), and each one's
minimum is kept. Ratios > 1 mean annfast is faster.
"""
import argparse
import os
import sys
import time

import numpy as np

try:
    import annfast as af
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import annfast as af

from bench_common import best_interleaved, core_round_trip  # noqa: E402

CLASSES = 10
KINDS = ("LSTM", "GRU", "SimpleRNN", "BiLSTM")
#: --sweep's sizes: (model, input features, hidden units, steps, training batch)
SWEEP = (("LSTM", 64, 128, 32, 32), ("LSTM", 16, 64, 100, 128), ("LSTM", 8, 16, 200, 32),
         ("LSTM", 32, 256, 64, 64), ("LSTM", 128, 512, 32, 32), ("LSTM", 256, 1024, 16, 64),
         ("GRU", 16, 32, 50, 256), ("GRU", 32, 256, 64, 64), ("GRU", 256, 512, 32, 128),
         ("SimpleRNN", 32, 256, 64, 64), ("BiLSTM", 64, 256, 32, 32), ("BiLSTM", 128, 512, 32, 32))


def timed_calls(call, calls):
    """Run call() `calls` times; the duration of each, in seconds."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def split_calls(log):
    """(median first call of a round, median of the other calls) in microseconds."""
    first = sorted(r[0] for r in log)
    rest = sorted(t for r in log for t in r[1:])
    return first[len(first) // 2] * 1e6, rest[len(rest) // 2] * 1e6


def data(n, steps, features, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, steps, features)).astype(np.float32), rng.integers(0, CLASSES, n)


# ---- annfast ----------------------------------------------------------------------------------
def annfast_model(kind, units, X):
    x = af.Input(shape=X.shape[1:])
    if kind == "BiLSTM":
        h = af.Bidirectional(af.LSTM(units))(x)
    else:
        h = getattr(af, kind)(units)(x)
    model = af.Model(x, af.Dense(CLASSES, activation="softmax")(h), dtype="float32", seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    return model


def annfast_fns(kind, units, X, y, bs, x1, calls):
    model = annfast_model(kind, units, X)
    model.fit(X[: 2 * bs], y[: 2 * bs], epochs=1, batch_size=bs, verbose=0)   # plans, warm caches
    model.predict(x1)

    def train():
        model.fit(X, y, epochs=1, batch_size=bs, shuffle=True, verbose=0)

    def infer():
        infer.log.append(timed_calls(lambda: model.predict(x1), calls))
    infer.log = []
    return train, infer


# ---- PyTorch ----------------------------------------------------------------------------------
def torch_fns(kind, units, X, y, bs, x1, calls):
    import torch
    torch.manual_seed(0)
    cls = {"LSTM": torch.nn.LSTM, "BiLSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}[kind]
    bi = kind == "BiLSTM"
    rnn = cls(X.shape[2], units, batch_first=True, bidirectional=bi)
    head = torch.nn.Linear(units * (2 if bi else 1), CLASSES)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    tX, ty, t1 = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(x1)

    def forward(xb):
        out, hn = rnn(xb)
        if bi:
            hn = hn[0] if isinstance(hn, tuple) else hn
            return head(torch.cat([hn[0], hn[1]], dim=1))
        return head(out[:, -1])

    def train(n_rows=X.shape[0]):
        perm = torch.randperm(n_rows)
        for i in range(0, n_rows, bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            lossf(forward(tX[idx]), ty[idx]).backward()
            opt.step()

    def infer():
        with torch.no_grad():
            infer.log.append(timed_calls(lambda: torch.softmax(forward(t1), dim=1), calls))
    infer.log = []
    train(2 * bs)
    infer()
    infer.log.clear()
    return train, infer


def run_one(kind, units, X, y, batch, x1, calls, repeats, have_torch):
    """(annfast samples/s, annfast us per call, torch samples/s, torch us, the calls' split) of
    one model, PyTorch's None without it: interleaved rounds, each one's best."""
    fns = list(annfast_fns(kind, units, X, y, batch, x1, calls))
    if have_torch:
        fns += list(torch_fns(kind, units, X, y, batch, x1, calls))
    best = best_interleaved(fns, repeats)
    n = X.shape[0]
    t_sps, t_us = (n / best[2], best[3] / calls * 1e6) if have_torch else (None, None)
    return n / best[0], best[1] / calls * 1e6, t_sps, t_us, [split_calls(f.log) for f in fns[1::2]]


def ratios(a_sps, a_us, t_sps, t_us):
    """The columns after annfast's samples/s: torch's figures and both ratios (or annfast's us)."""
    if t_sps is None:
        return f"{'':>10} {'':>8} | {a_us:>10.1f}"
    return f"{t_sps:>10.0f} {a_sps / t_sps:>7.2f}x | {a_us:>10.1f} {t_us:>9.1f} {t_us / a_us:>7.2f}x"


def sweep(args, have_torch):
    """One line per size of SWEEP (threads: the first of --threads)."""
    af.set_num_threads(args.threads[0])
    if have_torch:
        import torch
        torch.set_num_threads(args.threads[0])
    print(f"threads {args.threads[0]}; training: {args.samples} sequences per epoch at the batch shown")
    head = (f"{'model':>9} {'in':>4} {'units':>5} {'steps':>5} {'batch':>5} | {'annfast/s':>10} {'torch/s':>10} "
            f"{'train x':>8} | {'annfast us':>10} {'torch us':>9} {'infer x':>8}")
    print(head)
    print("-" * len(head))
    for kind, features, units, steps, batch in SWEEP:
        X, y = data(args.samples, steps, features)
        a_sps, a_us, t_sps, t_us, _ = run_one(kind, units, X, y, batch, X[:1].copy(), args.calls, args.repeats,
                                             have_torch)
        print(f"{kind:>9} {features:>4} {units:>5} {steps:>5} {batch:>5} | {a_sps:>10.0f} "
              + ratios(a_sps, a_us, t_sps, t_us), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--features", type=int, default=64, help="inputs per step")
    ap.add_argument("--units", type=int, default=128, help="hidden units")
    ap.add_argument("--steps", type=int, default=32, help="steps per sequence")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--samples", type=int, default=None, help="sequences per timed epoch (default 1024, "
                    "with --sweep 512)")
    ap.add_argument("--calls", type=int, default=50, help="batch-1 predict calls per timing")
    ap.add_argument("--repeats", type=int, default=None, help="rounds (default 5, with --sweep 3)")
    ap.add_argument("--sweep", action="store_true", help="the sizes of SWEEP instead of one size")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    if args.samples is None:
        args.samples = 512 if args.sweep else 1024
    if min(args.features, args.units, args.steps, args.batch, args.samples, args.calls) < 1:
        ap.error("--features, --units, --steps, --batch, --samples and --calls must be at least 1")
    if args.repeats is None:
        args.repeats = 3 if args.sweep else 5
    try:
        import torch
        have_torch = not args.no_torch
    except ImportError:
        have_torch = False
    print(f"annfast RNN benchmark: Dense({CLASSES}) head, float32, Adam")
    print(f"isa={af.get_isa()}  cores={os.cpu_count()}  torch={torch.__version__ if have_torch else 'no'}  "
          f"load={os.getloadavg()[0]:.1f}  {core_round_trip(af)}")
    if args.sweep:
        sweep(args, have_torch)
        print("ratios: annfast speed / torch speed (> 1: annfast faster)")
        return
    X, y = data(args.samples, args.steps, args.features)
    x1 = X[:1].copy()
    print(f"input {args.features}, hidden {args.units}, {args.steps} steps; batch {args.batch}, "
          f"{args.samples} sequences per epoch")
    head = (f"{'threads':>7} {'model':>9} | {'annfast/s':>10} {'torch/s':>10} {'train x':>8} | "
            f"{'annfast us':>10} {'torch us':>9} {'infer x':>8}")
    print(head)
    print("-" * len(head))
    detail = []
    for threads in args.threads:
        af.set_num_threads(threads)
        if have_torch:
            torch.set_num_threads(threads)
        for kind in args.kinds:
            a_sps, a_us, t_sps, t_us, split = run_one(kind, args.units, X, y, args.batch, x1, args.calls,
                                                      args.repeats, have_torch)
            detail.append((threads, kind, split))
            print(f"{threads:>7} {kind:>9} | {a_sps:>10.0f} " + ratios(a_sps, a_us, t_sps, t_us), flush=True)
    print("ratios: annfast speed / torch speed (> 1: annfast faster); the machine may be shared, "
          "so rerun at a quiet moment before drawing conclusions")
    print(f"\nbatch-1 predict, per call (us): first call after each pause (median of {args.repeats} rounds), "
          "then the other calls (median)")
    print(f"{'threads':>7} {'model':>9} | {'annfast 1st':>11} {'torch 1st':>10} | {'annfast':>8} {'torch':>8} "
          f"{'ratio':>7}")
    for threads, kind, parts in detail:
        line = f"{threads:>7} {kind:>9} | {parts[0][0]:>11.1f} "
        if len(parts) > 1:
            line += (f"{parts[1][0]:>10.1f} | {parts[0][1]:>8.1f} {parts[1][1]:>8.1f} "
                     f"{parts[1][1] / parts[0][1]:>6.2f}x")
        else:
            line += f"{'':>10} | {parts[0][1]:>8.1f}"
        print(line)


if __name__ == "__main__":
    main()
