"""LeNet-5 on Fashion-MNIST: the test accuracy of annfast and of PyTorch after the same recipe.

Recipe: 60,000 training images scaled to [0, 1], LeNet-5 (annfast.demo.lenet5; the same layers in
PyTorch), Adam(1e-3), batch 64, cross-entropy, 5 epochs, a fixed seed (each framework's own
initialisation: He normal for annfast's relu layers, PyTorch's default for its own), then the
accuracy on the 10,000 test images. The images come from the IDX files of Debian's
dataset-fashion-mnist package.

    python benchmarks/lenet_accuracy.py                    # both frameworks, 2 threads
    python benchmarks/lenet_accuracy.py --skip-torch --epochs 5 --seed 1
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
from annfast.demo import lenet5


def annfast_run(data, epochs, seed):
    (X, y), (Xt, yt) = data
    model = lenet5(seed=seed)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    t0 = time.perf_counter()
    for e in range(epochs):
        model.fit(X, y, epochs=1, batch_size=64, verbose=0)
        acc = float(np.mean(np.argmax(model.predict(Xt), axis=1) == yt))
        print(f"  annfast epoch {e + 1}: test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return acc


def torch_run(data, epochs, seed):
    import torch
    nn = torch.nn
    (X, y), (Xt, yt) = data
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                          nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    tx = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    ty = torch.from_numpy(y.astype(np.int64))
    txt = torch.from_numpy(np.ascontiguousarray(Xt.transpose(0, 3, 1, 2)))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for e in range(epochs):
        model.train()
        perm = torch.randperm(len(ty), generator=gen)
        for i in range(0, len(ty), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            lossf(model(tx[idx]), ty[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(txt).argmax(1).numpy() == yt).mean())
        print(f"  torch   epoch {e + 1}: test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    (x, y), (xt, yt) = af.datasets.load_fashion_mnist(args.data_dir, dtype="float32")
    data = ((x[..., None], y.astype(np.int64)), (xt[..., None], yt.astype(np.int64)))
    af.set_num_threads(args.threads)
    print(f"LeNet-5, Fashion-MNIST, Adam(1e-3), batch 64, {args.epochs} epochs, seed {args.seed}, "
          f"{args.threads} threads")
    ours = annfast_run(data, args.epochs, args.seed)
    line = f"test accuracy: annfast {ours:.4f}"
    if not args.skip_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            torch.set_num_threads(args.threads)
            theirs = torch_run(data, args.epochs, args.seed)
            line += f", PyTorch {theirs:.4f} (difference {100 * (ours - theirs):+.2f} points)"
    print(line)


if __name__ == "__main__":
    main()
