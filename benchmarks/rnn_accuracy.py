"""Accuracy of the recurrent layers on MNIST-1D and the adding problem, annfast and PyTorch with
the same recipe (too long for the test suite; tests/test_rnn_tasks.py runs small versions).

MNIST-1D (generated locally by mnist1d's make_dataset with its default arguments: 4000 training
and 1000 test sequences of 40 values, 10 classes): GRU(128) -> Dense(10) and LSTM(128) ->
Dense(10), each sequence fed as 40 steps of 1 feature; softmax cross-entropy, Adam(3e-3), batch
64, 60 epochs; test accuracy at the end (and the best over epochs).
Adding problem (50 steps; 10000 training and 1000 test sequences): LSTM(64) -> Dense(1), MSE,
Adam(1e-2), batch 64, 20 epochs; test mean squared error (always predicting 1 gives ~0.167).

    python benchmarks/rnn_accuracy.py                        # everything, both frameworks
    python benchmarks/rnn_accuracy.py --tasks gru --epochs 30 --no-torch

Seeds are fixed; annfast runs on --threads threads (default 2), PyTorch on as many.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import annfast as af
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(HERE, ".."))
    import annfast as af
from annfast.datasets import adding_problem, make_mnist1d  # noqa: E402  (after the in-place fallback)


def annfast_run(kind, data, epochs, lr, batch, units, loss, seed=0):
    x_tr, y_tr, x_te, y_te = data
    x = af.Input(shape=x_tr.shape[1:])
    h = getattr(af, kind)(units)(x)
    out = af.Dense(10, activation="softmax")(h) if loss == "ce" else af.Dense(1)(h)
    model = af.Model(x, out, seed=seed)
    model.compile(loss="sparse_categorical_crossentropy" if loss == "ce" else "mse",
                  optimizer=af.optimizers.Adam(lr), metrics=["accuracy"] if loss == "ce" else None)
    scores = []
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.fit(x_tr, y_tr, epochs=1, batch_size=batch, verbose=0)
        r = model.evaluate(x_te, y_te)
        scores.append(r[1] if loss == "ce" else r)
    return scores, time.perf_counter() - t0


def torch_run(kind, data, epochs, lr, batch, units, loss, seed=0):
    import torch
    torch.manual_seed(seed)
    x_tr, y_tr, x_te, y_te = (torch.from_numpy(np.asarray(a)) for a in data)
    rnn = getattr(torch.nn, kind)(x_tr.shape[2], units, batch_first=True)
    head = torch.nn.Linear(units, 10 if loss == "ce" else 1)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=lr)
    lossf = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()

    def forward(xb):
        return head(rnn(xb)[0][:, -1])
    scores = []
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(x_tr.shape[0])
        for i in range(0, x_tr.shape[0], batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            lossf(forward(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        with torch.no_grad():
            out = forward(x_te)
            scores.append(float((out.argmax(1) == y_te).float().mean()) if loss == "ce"
                          else float(lossf(out, y_te)))
    return scores, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["gru", "lstm", "adding"], choices=["gru", "lstm", "adding"])
    ap.add_argument("--epochs", type=int, default=None, help="override every task's epoch count")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    af.set_num_threads(args.threads)
    have_torch = not args.no_torch
    if have_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            have_torch = False
    mnist = None
    for task in args.tasks:
        if task in ("gru", "lstm"):
            if mnist is None:
                x_tr, y_tr, x_te, y_te = make_mnist1d()
                mnist = (x_tr[..., None].astype(np.float32), y_tr.astype(np.int64),
                         x_te[..., None].astype(np.float32), y_te.astype(np.int64))
            spec = (task.upper(), mnist, args.epochs or 60, 3e-3, 64, 128, "ce")
            what = f"MNIST-1D {task.upper()}(128) -> Dense(10), Adam(3e-3), batch 64, {spec[2]} epochs: test accuracy"
        else:
            data = adding_problem(10000, 50, seed=0) + adding_problem(1000, 50, seed=1)
            spec = ("LSTM", data, args.epochs or 20, 1e-2, 64, 64, "mse")
            what = f"adding problem (50 steps) LSTM(64) -> Dense(1), Adam(1e-2), batch 64, {spec[2]} epochs: test MSE"
        print(what, flush=True)
        runs = [("annfast", annfast_run)] + ([("torch", torch_run)] if have_torch else [])
        for name, fn in runs:
            scores, secs = fn(*spec)
            best = max(scores) if spec[-1] == "ce" else min(scores)
            print(f"  {name:8s} final {scores[-1]:.4f}  best {best:.4f}  ({secs:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
