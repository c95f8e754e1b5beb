"""`annfast bench`: our kernels and training against NumPy (and PyTorch / scikit-learn when
installed), all measured in this run; prints a table of times and speed-ups.

    annfast bench --size small --threads 2 --plot bench.png

Every figure is the minimum over --repeats runs (the machine may be busy); speed-up = peer time /
annfast time, so > 1 means annfast is faster. Training rows time one epoch of the same network
(relu hidden layers, softmax cross-entropy, plain SGD, same batch size) on the same random data.
"""
import time

import numpy as np

from .cli_common import positive_int

SIZES = {  # matmul n, activation elements, (samples, layer sizes), batch
    "tiny": {"gemm": 128, "act": 100_000, "mlp": (2_000, [64, 64, 64, 10]), "batch": 64},
    "small": {"gemm": 512, "act": 1_000_000, "mlp": (10_000, [784, 256, 128, 10]), "batch": 128},
    "medium": {"gemm": 1024, "act": 4_000_000, "mlp": (60_000, [784, 512, 256, 10]), "batch": 128},
}


def add_parser(sub):
    p = sub.add_parser("bench", help="time kernels and training against NumPy/PyTorch/scikit-learn",
                       description="Benchmark annfast against NumPy (and PyTorch / scikit-learn when "
                                   "installed) in the same run.")
    p.add_argument("--size", choices=tuple(SIZES), default="small", help="problem sizes (default small)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision for every contender (default float32)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for annfast and PyTorch (default: annfast's current setting)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="repeats (at least; calls under 50 ms repeat for 50 ms); the minimum is kept (default 3)")
    p.add_argument("--no-peers", action="store_true", help="NumPy only (skip PyTorch and scikit-learn)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw the speed-ups (needs matplotlib)")
    p.set_defaults(func=run)
    return p


def best_time(fn, repeats, min_time=0.05, pause=0.1):
    """Minimum wall time of fn() over at least `repeats` calls and, for calls shorter than that,
    at least min_time seconds of them (at most 1000), after a pause (another library's threads
    still spinning from its last call would take a core) and one warm-up call. A few calls of a
    sub-millisecond kernel are not enough: its first calls pay for a new output's pages (a 4 MB
    array: about 950 page faults, 2-3 ms, then warm-up for a few more calls), so three calls
    compared one library's warm-up with another's."""
    time.sleep(pause)
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_time and len(times) < 1000):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---- the same MLP epoch in plain NumPy (the yardstick) ----

def _numpy_init(sizes, dtype, seed):
    rng = np.random.default_rng(seed)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params.append((rng.normal(0, np.sqrt(2.0 / a), (a, b)).astype(dtype), np.zeros(b, dtype)))
    return params


def numpy_epoch(params, X, Y, batch, lr, rng):
    """One SGD epoch: relu hidden layers, softmax + mean cross-entropy, shuffled mini-batches."""
    perm = rng.permutation(X.shape[0])
    for s in range(0, X.shape[0], batch):
        idx = perm[s:s + batch]
        acts = [X[idx]]
        for i, (W, b) in enumerate(params):
            z = acts[-1] @ W + b
            acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
        z = acts[-1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        delta = (e / e.sum(axis=1, keepdims=True) - Y[idx]) / idx.size  # d(mean CE)/dz
        for i in range(len(params) - 1, -1, -1):
            W, b = params[i]
            gW, gb = acts[i].T @ delta, delta.sum(axis=0)
            if i:
                delta = (delta @ W.T) * (acts[i] > 0)
            W -= lr * gW
            b -= lr * gb


def _torch_epoch_fn(torch, sizes, X, Y, batch, lr, dtype):
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b).to(tdt))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(np.argmax(Y, axis=1))
    lossf = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(Xt.shape[0], generator=gen)
        for s in range(0, Xt.shape[0], batch):
            idx = perm[s:s + batch]
            opt.zero_grad(set_to_none=True)
            lossf(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    return epoch


def _rows(args):
    """Run every benchmark; return (label, annfast s, peer name, peer s) rows."""
    import annfast
    cfg = SIZES[args.size]
    dt = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    rows = []
    reps = args.repeats

    # -- kernels --
    n = cfg["gemm"]
    A, B = rng.standard_normal((n, n)).astype(dt), rng.standard_normal((n, n)).astype(dt)
    matmul = getattr(annfast, "matmul", None)
    if matmul is not None:
        rows.append((f"matmul {n}x{n}x{n}", best_time(lambda: matmul(A, B), reps),
                     "NumPy", best_time(lambda: A @ B, reps)))
    acts = getattr(annfast, "activations", None)
    v = rng.standard_normal(cfg["act"]).astype(dt).reshape(-1, 1000)
    if acts is not None:
        rows.append((f"relu {v.size:,}", best_time(lambda: acts.relu(v), reps),
                     "NumPy", best_time(lambda: np.maximum(v, 0), reps)))
        rows.append((f"sigmoid {v.size:,}", best_time(lambda: acts.sigmoid(v), reps),
                     "NumPy", best_time(lambda: 1 / (1 + np.exp(-v)), reps)))
        rows.append((f"softmax {v.shape[0]}x{v.shape[1]}", best_time(lambda: acts.softmax(v), reps),
                     "NumPy", best_time(lambda: _np_softmax(v), reps)))

    # -- training: one epoch of the same MLP --
    n_samples, sizes = cfg["mlp"]
    batch, lr = cfg["batch"], 0.01
    X = rng.standard_normal((n_samples, sizes[0])).astype(dt)
    labels = rng.integers(0, sizes[-1], n_samples)
    Y = np.eye(sizes[-1], dtype=dt)[labels]
    model = annfast.Sequential([annfast.Dense(h, activation="relu") for h in sizes[1:-1]]
                               + [annfast.Dense(sizes[-1], activation="softmax")],
                               input_dim=sizes[0], dtype=args.dtype, seed=0)
    model.compile(loss="categorical_crossentropy", optimizer=annfast.optimizers.SGD(learning_rate=lr))
    ours = best_time(lambda: model.fit(X, Y, epochs=1, batch_size=batch, verbose=0), reps)
    label = f"train epoch {'-'.join(map(str, sizes))} b{batch} n={n_samples:,}"
    params = _numpy_init(sizes, dt, 0)
    prng = np.random.default_rng(1)
    rows.append((label, ours, "NumPy", best_time(lambda: numpy_epoch(params, X, Y, batch, lr, prng), reps)))
    if not args.no_peers:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            torch.set_num_threads(annfast.get_num_threads())
            rows.append((label, ours, "PyTorch",
                         best_time(_torch_epoch_fn(torch, sizes, X, Y, batch, lr, dt), reps)))
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError:
            MLPClassifier = None
        if MLPClassifier is not None:
            sk = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), solver="sgd", momentum=0.0,
                               alpha=0.0, batch_size=batch, learning_rate_init=lr, random_state=0)
            classes = np.arange(sizes[-1])
            rows.append((label, ours, "scikit-learn",
                         best_time(lambda: sk.partial_fit(X, labels, classes=classes), reps)))
    return rows


def _np_softmax(v):
    e = np.exp(v - v.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def format_table(rows):
    """Text table: benchmark, peer, annfast ms, peer ms, speed-up."""
    head = ("benchmark", "peer", "annfast ms", "peer ms", "speed-up")
    body = [(lab, peer, f"{ours * 1e3:.3f}", f"{theirs * 1e3:.3f}", f"{theirs / ours:.2f}x")
            for lab, ours, peer, theirs in rows]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(5)]
    line = "  ".join("{:<%d}" % w if i < 2 else "{:>%d}" % w for i, w in enumerate(widths))
    out = [line.format(*head), "  ".join("-" * w for w in widths)]
    out += [line.format(*r) for r in body]
    return "\n".join(out)


def run(args):
    import annfast
    if args.plot is not None:
        from .plotting import _pyplot
        _pyplot()  # fail before the (long) benchmark when matplotlib is missing
    if args.threads is not None:
        annfast.set_num_threads(args.threads)
    print(f"annfast bench: size {args.size}, {args.dtype}, {annfast.get_num_threads()} threads, "
          f"ISA {annfast.get_isa()}, min of {args.repeats}+ runs (short ones: 50 ms of them)")
    rows = _rows(args)
    print(format_table(rows))
    missing = [n for n in ("matmul", "activations") if getattr(annfast, n, None) is None]
    if missing:
        print(f"(not in this build: {', '.join(missing)})")
    if args.plot is not None:
        from .plotting import plot_benchmark
        plot_benchmark([(f"{lab} vs {peer}", theirs / ours) for lab, ours, peer, theirs in rows],
                       args.plot, title=f"annfast speed-up, {args.dtype}, "
                                        f"{annfast.get_num_threads()} threads")
        print(f"saved plot to {args.plot}")
    return 0
