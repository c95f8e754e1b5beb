"""The graph engine's overhead and residual graphs: annfast vs NumPy vs PyTorch CPU, same run.

1. The 784-512-256-10 MLP (relu/softmax CE, float32, SGD) built as af.Sequential and as a
   functional af.Model: samples/s of both, against NumPy and PyTorch, and the functional form's
   ratio to the Sequential one (they run the same C nodes: the ratio shows the API's cost).
2. A residual MLP: 784 -> Dense 512 relu -> two blocks h = h + Dense 512 relu (h) -> Dense 10
   softmax, against the same model in PyTorch.

    python benchmarks/bench_graph.py                        # threads 2, batches 16 and 128
    python benchmarks/bench_graph.py --threads 1 2 --batches 128 --repeats 5

Same method as bench_mlp.py: equal thread counts, epochs interleaved across frameworks with an
idle pause before each, minimum of --repeats kept.
"""
import argparse
import os
import sys

import numpy as np

try:
    import annfast as af
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import annfast as af
from bench_mlp import LR, SIZES, best_interleaved, data, numpy_epoch, torch_epoch

WIDTH = 512


from bench_common import core_round_trip, print_pool_stats

def functional_mlp():
    x = af.Input(shape=(SIZES[0],))
    h = af.Dense(SIZES[1], activation="relu")(x)
    h = af.Dense(SIZES[2], activation="relu")(h)
    out = af.Dense(SIZES[3], activation="softmax")(h)
    return af.Model(x, out, dtype="float32", seed=0)


def sequential_mlp():
    return af.Sequential([af.Dense(SIZES[1], activation="relu"), af.Dense(SIZES[2], activation="relu"),
                          af.Dense(SIZES[3], activation="softmax")], input_dim=SIZES[0], dtype="float32",
                         seed=0)


def residual_model():
    x = af.Input(shape=(SIZES[0],))
    h = af.Dense(WIDTH, activation="relu")(x)
    for _ in range(2):
        h = af.Add()([h, af.Dense(WIDTH, activation="relu")(h)])
    return af.Model(x, af.Dense(SIZES[3], activation="softmax")(h), dtype="float32", seed=0)


def annfast_epoch(make, X, y, bs):
    model = make()
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.SGD(LR))
    model.fit(X[: bs * 2], y[: bs * 2], epochs=1, batch_size=bs, verbose=0)
    return lambda: model.fit(X, y, epochs=1, batch_size=bs, verbose=0)


def torch_residual_epoch(X, y, bs, threads):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Res(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(SIZES[0], WIDTH)
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(WIDTH, WIDTH) for _ in range(2)])
            self.out = torch.nn.Linear(WIDTH, SIZES[3])

        def forward(self, x):
            h = torch.relu(self.inp(x))
            for blk in self.blocks:
                h = h + torch.relu(blk(h))
            return self.out(h)

    model = Res()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)

    def epoch(n_rows=X.shape[0]):
        perm = torch.randperm(n_rows)
        for i in range(0, n_rows, bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            lossf(model(tX[idx]), ty[idx]).backward()
            opt.step()
    epoch(bs * 2)
    return epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 128])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=int, default=8192)
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    print(f"annfast graph benchmark  isa={af.get_isa()}  cores={os.cpu_count()}  torch={have_torch}  "
          f"{core_round_trip(af)}")
    for threads in args.threads:
        af.set_num_threads(threads)
        print(f"\nthreads={threads}: MLP {'-'.join(map(str, SIZES))}, float32, SGD")
        print(f"{'batch':>6} {'Sequential/s':>13} {'Model/s':>10} {'numpy/s':>10} {'torch/s':>10} "
              f"{'Model/Seq':>10} {'vs numpy':>9} {'vs torch':>9}")
        for bs in args.batches:
            X, y = data(args.samples)
            epochs = [annfast_epoch(sequential_mlp, X, y, bs), annfast_epoch(functional_mlp, X, y, bs),
                      numpy_epoch(X, y, bs, threads)]
            if have_torch:
                epochs.append(torch_epoch(X, y, bs, threads))
            t_seq, t_fun, t_np, *t_th = best_interleaved(epochs, args.repeats)
            n = args.samples
            s_th = n / t_th[0] if t_th else float("nan")
            worst = min(n / t_seq, n / t_fun)
            print(f"{bs:>6} {n / t_seq:>13,.0f} {n / t_fun:>10,.0f} {n / t_np:>10,.0f} {s_th:>10,.0f} "
                  f"{t_seq / t_fun:>9.3f}x {worst / (n / t_np):>8.2f}x {worst / s_th:>8.2f}x", flush=True)
        print(f"\nthreads={threads}: residual MLP 784-512-(512+512)x2-10, float32, SGD")
        print(f"{'batch':>6} {'annfast/s':>11} {'torch/s':>10} {'vs torch':>9}")
        for bs in args.batches:
            X, y = data(args.samples)
            epochs = [annfast_epoch(residual_model, X, y, bs)]
            if have_torch:
                epochs.append(torch_residual_epoch(X, y, bs, threads))
            t_af, *t_th = best_interleaved(epochs, args.repeats)
            n = args.samples
            s_th = n / t_th[0] if t_th else float("nan")
            print(f"{bs:>6} {n / t_af:>11,.0f} {s_th:>10,.0f} {(n / t_af) / s_th:>8.2f}x", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
    print_pool_stats(af)
