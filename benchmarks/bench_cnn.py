"""CNN speed: annfast vs PyTorch CPU in the same process, same networks, same thread count.

1. LeNet-5 training (Conv2D 6@5x5 'same' relu -> MaxPool 2 -> Conv2D 16@5x5 relu -> MaxPool 2 ->
   Flatten -> Dense 120 relu -> Dense 84 relu -> Dense 10 softmax) on 28x28x1 images, float32,
   Adam(1e-3), cross-entropy on integer labels, one epoch over --train-samples images at batch 64
   and at batch 8: samples/s and the ratio annfast / PyTorch.
2. predict of that network on 10,000 images: annfast's Model.predict (input checks included)
   vs the PyTorch model under torch.no_grad() in eval mode (one call on the whole tensor).
3. One mid-size layer alone: 32x32x32 input, 64 filters 3x3 'same', batch 32, float32:
   forward, and forward + backward (kernel, bias and input gradients) against
   torch.nn.functional.conv2d, with GFLOP/s and the fraction of the machine's peak. annfast runs
   the layer through its C engine directly (annfast's input checks skipped, as PyTorch has none
   here); the backward time is (forward + backward) - forward for both. annfast's engine always
   computes a loss (mse here) before its backward pass, where PyTorch is handed dL/dy: the table
   shows annfast's backward with that loss, and without it (minus the time of the same call on a
   parameter-free model of the layer's output shape, which also copies dL/dy once).

    python benchmarks/bench_cnn.py                   # 2 threads, 3 repeats
    python benchmarks/bench_cnn.py --threads 1 --repeats 5

Method (as bench_mlp.py): frameworks interleaved within each repeat (annfast, torch, annfast,
...), each run after 0.25 s of idle so no framework pays for the other's spinning thread pool,
the minimum time of each kept. The images are Fashion-MNIST when its IDX files are installed
(Debian's dataset-fashion-mnist), else uniform noise (speed does not depend on the values).
Peak = threads x clock x FLOP/cycle (64 float32 FLOP/cycle with AVX-512's two FMA pipes, 32 with
AVX2), the clock read from /proc/cpuinfo. On a machine shared with other jobs the numbers move
from run to run; the ratios, taken in the same seconds, move less.
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


def images(n, seed=0):
    """n images (n, 28, 28, 1) float32 in [0, 1] and labels: Fashion-MNIST if installed."""
    try:
        (x, y), _ = af.datasets.load_fashion_mnist(dtype="float32")
        return x[:n, ..., None], y[:n].astype(np.int64), "Fashion-MNIST"
    except (OSError, ValueError):
        rng = np.random.default_rng(seed)
        return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n), "uniform noise"


# ---- LeNet-5 -------------------------------------------------------------------------------------
def annfast_lenet(seed=0):
    model = af.Sequential([
        af.Conv2D(6, 5, padding="same", activation="relu"), af.MaxPooling2D(2),
        af.Conv2D(16, 5, activation="relu"), af.MaxPooling2D(2), af.Flatten(),
        af.Dense(120, activation="relu"), af.Dense(84, activation="relu"),
        af.Dense(10, activation="softmax")], input_shape=(28, 28, 1), dtype="float32", seed=seed)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    return model


def torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def train_epochs(torch, X, y, bs):
    """Functions training one epoch of each framework (models warmed up)."""
    model = annfast_lenet()
    model.fit(X[:bs * 4], y[:bs * 4], epochs=1, batch_size=bs, verbose=0)

    tm = torch_lenet(torch)
    opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    tx = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    ty = torch.from_numpy(y)
    n = X.shape[0]

    def torch_epoch():
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            lossf(tm(tx[idx]), ty[idx]).backward()
            opt.step()
    torch_epoch_warm = tx[:bs * 4], ty[:bs * 4]
    for i in range(0, bs * 4, bs):
        opt.zero_grad()
        lossf(tm(torch_epoch_warm[0][i:i + bs]), torch_epoch_warm[1][i:i + bs]).backward()
        opt.step()
    return (lambda: model.fit(X, y, epochs=1, batch_size=bs, shuffle=True, verbose=0)), torch_epoch


def bench_lenet(torch, args, report):
    X, y, source = images(args.train_samples)
    print(f"LeNet-5 training, {X.shape[0]} {source} images per epoch, float32, Adam(1e-3), "
          f"{args.threads} threads (best of {args.repeats}, interleaved)")
    print(f"{'batch':>6} {'annfast samples/s':>18} {'torch samples/s':>16} {'ratio':>7}")
    for bs in args.batches:
        n = X.shape[0] if bs >= 32 else X.shape[0] // 4
        ours, theirs = train_epochs(torch, X[:n], y[:n], bs)
        t_af, t_th = best_interleaved([ours, theirs], args.repeats)
        r = t_th / t_af
        print(f"{bs:>6} {n / t_af:>18,.0f} {n / t_th:>16,.0f} {r:>6.2f}x", flush=True)
        report[f"train_b{bs}"] = r

    Xp, _, _ = images(10000)
    model = annfast_lenet()
    tm = torch_lenet(torch).eval()
    txp = torch.from_numpy(np.ascontiguousarray(Xp.transpose(0, 3, 1, 2)))
    model.predict(Xp[:256])

    def torch_predict():
        with torch.no_grad():
            tm(txp)
    torch_predict()
    t_af, t_th = best_interleaved([lambda: model.predict(Xp), torch_predict], args.repeats)
    r = t_th / t_af
    print(f"predict 10,000 images: annfast {t_af * 1e3:.1f} ms ({1e4 / t_af:,.0f} images/s), torch "
          f"no_grad {t_th * 1e3:.1f} ms ({1e4 / t_th:,.0f} images/s) -> {r:.2f}x", flush=True)
    report["predict"] = r


# ---- the mid-size layer --------------------------------------------------------------------------
def bench_layer(torch, args, report):
    B, H, C, F, k = 32, 32, 32, 64, 3
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, H, H, C), dtype=np.float32)
    x = af.Input(shape=(H, H, C))
    model = af.Model(x, af.Conv2D(F, k, padding="same")(x), dtype="float32", seed=0)
    model.compile(loss="mse", optimizer="sgd")
    target = np.zeros((B, H, H, F), np.float32)
    xs, ys = model._xy(X, target)           # checked once; the timed calls go straight to C
    fwd_engine, grad_engine = model._get_engine(), model._get_engine(input_grads=True)
    kernel, bias = model.get_weights()
    tx = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    tw = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    tb = torch.from_numpy(bias)
    txg, twg, tbg = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
    gy = torch.from_numpy(np.full((B, F, H, H), 2.0 / target.size, np.float32))

    def af_fwd():
        fwd_engine.predict(xs, B)

    def af_fwd_bwd():
        grad_engine.gradients(xs, ys, B, True, 1)

    def th_fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, tb, padding=1)

    def th_fwd_bwd():
        txg.grad = twg.grad = tbg.grad = None
        torch.nn.functional.conv2d(txg, twg, tbg, padding=1).backward(gy)

    # the loss and its gradient alone: the same call on a parameter-free model (an alias of its
    # input) with the conv's output shape
    xo = af.Input(shape=(H, H, F))
    lonly = af.Model(xo, af.Reshape((H, H, F))(xo), dtype="float32")
    lonly.compile(loss="mse", optimizer="sgd")
    lxs, lys = lonly._xy(rng.standard_normal((B, H, H, F), dtype=np.float32), target)
    loss_engine = lonly._get_engine(input_grads=True)

    def af_loss():
        loss_engine.gradients(lxs, lys, B, True, 1)

    for fn in (af_fwd, af_fwd_bwd, th_fwd, th_fwd_bwd, af_loss):
        fn()
    t = best_interleaved([af_fwd, th_fwd, af_fwd_bwd, th_fwd_bwd, af_loss], args.repeats * 3)
    flop = 2.0 * B * H * H * F * k * k * C
    peak, how = peak_gflops(args.threads)
    print(f"\nConv2D {H}x{H}x{C} -> {F} filters 3x3 'same', batch {B}, float32, {args.threads} threads "
          f"(peak {peak:.0f} GFLOP/s = {how})" if peak else "")
    print(f"{'':>10} {'annfast ms':>11} {'GFLOP/s':>8} {'% peak':>7} {'torch ms':>9} {'GFLOP/s':>8} "
          f"{'% peak':>7} {'ratio':>7}")
    rows = [("forward", t[0], t[1], flop), ("backward+loss", t[2] - t[0], t[3] - t[1], 2 * flop),
            ("backward", t[2] - t[0] - t[4], t[3] - t[1], 2 * flop)]
    for name, ta, tt, fl in rows:
        pa = f"{100 * fl / ta / 1e9 / peak:6.1f}%" if peak else "    -"
        pt = f"{100 * fl / tt / 1e9 / peak:6.1f}%" if peak else "    -"
        print(f"{name:>10} {ta * 1e3:>11.2f} {fl / ta / 1e9:>8.1f} {pa:>7} {tt * 1e3:>9.2f} "
              f"{fl / tt / 1e9:>8.1f} {pt:>7} {tt / ta:>6.2f}x")
        report[f"layer_{name.replace('+', '_')}"] = tt / ta
    print(f"(backward = (forward + backward) - forward: the kernel, bias and input gradients, 2x the "
          f"forward's FLOPs; annfast's includes its mse loss over the {B * H * H * F:,} outputs, "
          f"{t[4] * 1e3:.2f} ms alone, subtracted in the last row)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 8])
    ap.add_argument("--train-samples", type=int, default=6400)
    ap.add_argument("--skip-lenet", action="store_true")
    ap.add_argument("--skip-layer", action="store_true")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("bench_cnn.py compares with PyTorch: pip install torch")
    af.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"annfast {af.__version__} ({af.get_isa()}), torch {torch.__version__}, {args.threads} threads, "
          f"{core_round_trip(af)}")
    report = {}
    if not args.skip_lenet:
        bench_lenet(torch, args, report)
    if not args.skip_layer:
        bench_layer(torch, args, report)
    print("\nratios (> 1: annfast faster): " + ", ".join(f"{k} {v:.2f}x" for k, v in report.items()))


if __name__ == "__main__":
    main()
    print_pool_stats(af)
