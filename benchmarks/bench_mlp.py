"""MLP training throughput: annfast vs plain NumPy vs PyTorch CPU, same run, same network.

Network 784-512-256-10, relu/relu/softmax, cross-entropy on integer labels, float32, plain SGD
(lr 0.01), one shuffled epoch per timing; samples/s is the best of --repeats epochs. Each
framework gets the same thread count (annfast.set_num_threads, torch.set_num_threads, and
threadpoolctl for NumPy's BLAS). Also: Adam vs SGD step time at batch 128 (issue 6).

    python benchmarks/bench_mlp.py                 # threads 1 and 2, batches 1 16 64 128 256
    python benchmarks/bench_mlp.py --threads 2 --batches 128 --repeats 5

Fraction of peak: useful FLOPs per sample (forward 2*sum(n_in*n_out); backward dW for every
layer plus dX for all but the first: 2.41 MFLOP) times samples/s, over threads x clock x
FLOPs/cycle (64 with AVX-512: two 16-lane FMA pipes; 32 with AVX2+FMA), the clock from
/proc/cpuinfo. Timings on a shared 2-core machine are noisy: the frameworks' epochs are
interleaved (annfast, numpy, torch, annfast, ...) and each one's minimum over --repeats is shown.
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

from bench_common import best_interleaved, core_round_trip, peak_gflops, print_pool_stats  # noqa: E402

SIZES = (784, 512, 256, 10)
LR = 0.01


def flops_per_sample():
    fwd = sum(2 * a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    dx = sum(2 * a * b for a, b in zip(SIZES[1:-1], SIZES[2:]))  # no input gradient for layer 1
    return fwd + fwd + dx  # forward, dW (same FLOPs as forward), dX


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], n)
    return X, y


# ---- annfast ------------------------------------------------------------------------------------
def annfast_model(optimizer=None):
    model = af.Sequential([af.Dense(SIZES[1], activation="relu"), af.Dense(SIZES[2], activation="relu"),
                           af.Dense(SIZES[3], activation="softmax")], input_dim=SIZES[0], dtype="float32", seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer or af.optimizers.SGD(LR))
    return model


def annfast_epoch(X, y, bs, optimizer=None):
    """A warmed-up annfast model and a function training it one shuffled epoch."""
    model = annfast_model(optimizer)
    model.fit(X[: bs * 2], y[: bs * 2], epochs=1, batch_size=bs, verbose=0)  # workspace, warm caches
    return lambda: model.fit(X, y, epochs=1, batch_size=bs, shuffle=True, verbose=0)


# ---- plain NumPy --------------------------------------------------------------------------------
class NumpyMLP:
    """The same network and SGD step in plain NumPy (BLAS matmuls, in-place elementwise ops)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.W, self.b = [], []
        for a, b in zip(SIZES[:-1], SIZES[1:]):
            self.W.append((rng.normal(size=(a, b)) * np.sqrt(2.0 / a)).astype(np.float32))
            self.b.append(np.zeros(b, dtype=np.float32))
        self.rng = np.random.default_rng(seed + 1)

    def epoch(self, X, y, bs):
        n = X.shape[0]
        perm = self.rng.permutation(n)
        W, b = self.W, self.b
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = X[idx], y[idx]
            m = xb.shape[0]
            h1 = xb @ W[0]
            h1 += b[0]
            np.maximum(h1, 0, out=h1)
            h2 = h1 @ W[1]
            h2 += b[1]
            np.maximum(h2, 0, out=h2)
            z = h2 @ W[2]
            z += b[2]
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            z[np.arange(m), yb] -= 1          # dL/dz = softmax - onehot, / m for the mean
            z *= np.float32(1.0 / m)
            d2 = z @ W[2].T
            d2 *= h2 > 0
            d1 = d2 @ W[1].T
            d1 *= h1 > 0
            for Wl, bl, a, d in ((W[2], b[2], h2, z), (W[1], b[1], h1, d2), (W[0], b[0], xb, d1)):
                Wl -= np.float32(LR) * (a.T @ d)
                bl -= np.float32(LR) * d.sum(axis=0)


def numpy_epoch(X, y, bs, threads):
    from threadpoolctl import threadpool_limits
    net = NumpyMLP()

    def epoch():
        with threadpool_limits(limits=threads):
            net.epoch(X, y, bs)
    with threadpool_limits(limits=threads):
        net.epoch(X[: bs * 2], y[: bs * 2], bs)
    return epoch


# ---- PyTorch ------------------------------------------------------------------------------------
def torch_epoch(X, y, bs, threads, adam=False):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(),
                                torch.nn.Linear(SIZES[1], SIZES[2]), torch.nn.ReLU(),
                                torch.nn.Linear(SIZES[2], SIZES[3]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3) if adam else torch.optim.SGD(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    n = X.shape[0]

    def epoch(n_rows=n):
        perm = torch.randperm(n_rows)
        for i in range(0, n_rows, bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(tX[idx]), ty[idx])
            loss.backward()
            opt.step()
    epoch(min(n, bs * 2))
    return epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 128, 256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=8192, help="rows per epoch (batch >= 16)")
    ap.add_argument("--small-samples", type=int, default=1024, help="rows per epoch at batch 1")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
        have_torch = not args.no_torch
    except ImportError:
        have_torch = False
    fps = flops_per_sample()
    print(f"annfast MLP benchmark: {'-'.join(map(str, SIZES))}, relu/softmax CE, float32, SGD lr={LR}")
    print(f"isa={af.get_isa()}  cores={os.cpu_count()}  torch={'yes' if have_torch else 'no'}  "
          f"{fps / 1e6:.2f} MFLOP/sample  {core_round_trip(af)}")
    rows = []
    for threads in args.threads:
        af.set_num_threads(threads)
        peak, how = peak_gflops(threads)
        print(f"\nthreads={threads}   peak {peak:.0f} GFLOP/s ({how})" if peak else f"\nthreads={threads}")
        print(f"{'batch':>6} {'annfast/s':>11} {'numpy/s':>11} {'torch/s':>11} {'vs numpy':>9} "
              f"{'vs torch':>9} {'%peak':>6}")
        for bs in args.batches:
            n = args.small_samples if bs < 16 else args.samples
            X, y = data(n)
            epochs = [annfast_epoch(X, y, bs), numpy_epoch(X, y, bs, threads)]
            if have_torch:
                epochs.append(torch_epoch(X, y, bs, threads))
            t_af, t_np, *t_rest = best_interleaved(epochs, args.repeats)
            t_th = t_rest[0] if t_rest else float("nan")
            s_af, s_np, s_th = n / t_af, n / t_np, n / t_th
            pct = 100 * s_af * fps / (peak * 1e9) if peak else float("nan")
            rows.append((threads, bs, s_af, s_np, s_th))
            print(f"{bs:>6} {s_af:>11,.0f} {s_np:>11,.0f} {s_th:>11,.0f} {s_af / s_np:>8.2f}x "
                  f"{s_af / s_th:>8.2f}x {pct:>5.1f}%", flush=True)
    # Adam vs SGD step time (issue 6: Adam within 10% of SGD), batch 128, most threads
    threads = max(args.threads)
    af.set_num_threads(threads)
    X, y = data(args.samples)
    steps = -(-args.samples // 128)
    # interleaved repeats, so all see the same machine load
    epochs = [annfast_epoch(X, y, 128), annfast_epoch(X, y, 128, af.optimizers.Adam(1e-3))]
    if have_torch:
        epochs += [torch_epoch(X, y, 128, threads), torch_epoch(X, y, 128, threads, adam=True)]
    t_sgd, t_adam, *t_torch = best_interleaved(epochs, max(args.repeats, 3))
    print(f"\nAdam vs SGD, batch 128, threads={threads}: SGD {1e3 * t_sgd / steps:.3f} ms/step, "
          f"Adam {1e3 * t_adam / steps:.3f} ms/step, Adam/SGD = {t_adam / t_sgd:.3f}")
    if have_torch:
        print(f"  (torch: SGD {1e3 * t_torch[0] / steps:.3f} ms/step, "
              f"Adam {1e3 * t_torch[1] / steps:.3f} ms/step)")
    return rows


if __name__ == "__main__":
    main()
    print_pool_stats(af)
