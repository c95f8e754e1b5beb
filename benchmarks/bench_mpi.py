"""Data-parallel training over MPI: annfast 1 process x 2 threads vs 2 processes x 1 thread, the
share of each step spent summing the gradient (in shared memory on one machine, else an MPI
Allreduce), and PyTorch DistributedDataParallel (gloo,
2 processes x 1 thread) on the same model.

Model 784-512-256-10 (relu, relu, softmax), sparse categorical cross-entropy, Adam (lr 1e-3),
float32, global batch 128 (64 per process with 2 processes), shuffled epochs of --samples rows
of Fashion-MNIST (random data when the IDX files are missing). samples/s is the best epoch over
--repeats rounds; the rounds interleave the configurations (annfast local, annfast MPI, PyTorch
DDP, PyTorch local), each one a fresh process (or pair of processes started by mpiexec) after a
pause, so one configuration's threads never compete with another's.

    python benchmarks/bench_mpi.py                      # the table above, 3 rounds
    python benchmarks/bench_mpi.py --repeats 5 --samples 25600
    python benchmarks/bench_mpi.py --allreduce          # gradient sum time vs size (P=2): MPI
                                                        # Allreduce and the shared-memory sum
    python benchmarks/bench_mpi.py --quick              # smoke run: the script works

Timings on a shared 2-core machine are noisy: the table says the load average at the start.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (784, 512, 256, 10)


def _annfast():
    try:
        import annfast as af
    except ImportError:  # a source checkout with an in-place build
        sys.path.insert(0, os.path.join(HERE, ".."))
        import annfast as af
    return af


def load_data(n):
    af = _annfast()
    try:
        (X, y), _ = af.datasets.load_fashion_mnist()
        X = X[:n].reshape(min(n, len(X)), -1).astype(np.float32) / 255.0
        y = y[:n].astype(np.int64)
    except (OSError, ValueError):
        X = np.random.default_rng(0).random((n, SIZES[0]), dtype=np.float32)
        y = np.random.default_rng(1).integers(0, SIZES[-1], n)
    return X, y


def mpiexec():
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        sys.exit("bench_mpi: mpiexec not found (pip install \"annfast[mpi]\")")
    return exe


# ---- workers: one configuration each, print 'RESULT key=value ...' on rank 0 ---------------------
def worker_annfast(args, distributed):
    af = _annfast()
    from annfast import distributed as dist
    if distributed:
        strategy = dist.MPIStrategy(threads=1)
        rank = strategy.rank
    else:
        af.set_num_threads(args.threads)
        strategy, rank = None, 0
    X, y = load_data(args.samples)
    model = af.Sequential([af.Dense(512, activation="relu"), af.Dense(256, activation="relu"),
                           af.Dense(10, activation="softmax")], input_dim=784, seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    model.fit(X, y, epochs=1, batch_size=args.batch, verbose=0, distributed=strategy)  # warm-up
    best = best_grad = best_comm = None
    for _ in range(args.epochs):
        if strategy is not None:
            strategy.comm.Barrier()
            strategy.grad_seconds = strategy.comm_seconds = 0.0
        t0 = time.perf_counter()
        model.fit(X, y, epochs=1, batch_size=args.batch, verbose=0, distributed=strategy)
        dt = time.perf_counter() - t0
        if best is None or dt < best:
            best = dt
            if strategy is not None:
                best_grad, best_comm = strategy.grad_seconds, strategy.comm_seconds
    if rank == 0:
        extra = "" if strategy is None else f" grad={best_grad:.6f} comm={best_comm:.6f}"
        print(f"RESULT epoch={best:.6f} steps={-(-len(X) // args.batch)}{extra}", flush=True)


def worker_torch(args, distributed):
    import torch
    import torch.distributed as tdist
    torch.set_num_threads(1 if distributed else args.threads)
    rank, size = 0, 1
    if distributed:
        rank, size = int(os.environ["PMI_RANK"]), int(os.environ["PMI_SIZE"])
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        tdist.init_process_group("gloo", rank=rank, world_size=size)
    X, y = load_data(args.samples)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, 10))
    model = torch.nn.parallel.DistributedDataParallel(net) if distributed else net
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    per = args.batch // size

    def epoch(seed):
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
        for start in range(0, len(X), args.batch):
            idx = order[start:start + args.batch][rank * per:(rank + 1) * per]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(X[idx]), y[idx]).backward()
            opt.step()

    epoch(0)
    best = None
    for e in range(args.epochs):
        if distributed:
            tdist.barrier()
        t0 = time.perf_counter()
        epoch(e + 1)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    if rank == 0:
        print(f"RESULT epoch={best:.6f} steps={-(-len(X) // args.batch)}", flush=True)
    if distributed:
        tdist.destroy_process_group()


def worker_allreduce(args):
    """Per gradient size: MPI Allreduce, and the shared-memory sum fit uses on one machine."""
    from mpi4py import MPI
    _annfast()
    from annfast import distributed as dist
    comm = MPI.COMM_WORLD
    strategy = dist.MPIStrategy(threads=1)

    def best_of(fn):
        for _ in range(3):
            fn()
        best = None
        for _ in range(args.epochs * 10):
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        return best

    for n in (1_000, 10_000, 100_000, 535_818, 1_000_000, 4_000_000):
        a = np.ones(n, dtype=np.float32)
        t_mpi = best_of(lambda: comm.Allreduce(MPI.IN_PLACE, a))
        shared = strategy.grad_buffer(n, np.float32)
        t_shm = best_of(lambda: strategy.reduce(shared)) if shared is not None else float("nan")
        if comm.rank == 0:
            print(f"RESULT n={n} seconds={t_mpi:.9f} shared={t_shm:.9f}", flush=True)


# ---- driver ------------------------------------------------------------------------------------
def run(kind, args, procs):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--samples", str(args.samples),
           "--batch", str(args.batch), "--epochs", str(args.epochs), "--threads", str(args.threads)]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("ANNFAST_NUM_THREADS", None)
    if procs > 1:
        cmd = [mpiexec(), "-n", str(procs)] + cmd
        env["MASTER_PORT"] = str(29500 + os.getpid() % 1000)
    time.sleep(0.25)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    if out.returncode != 0 or not lines:
        sys.exit(f"bench_mpi: {kind} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return [dict(kv.split("=") for kv in ln.split()[1:]) for ln in lines]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=12800)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per worker run")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    p.add_argument("--threads", type=int, default=2, help="threads of the one-process runs")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--allreduce", action="store_true", help="Allreduce time vs size only")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run (1280 samples, 1 epoch, 1 round): proves the script runs")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.samples, args.epochs, args.repeats = min(args.samples, 1280), 1, 1
    workers = {"annfast_local": lambda: worker_annfast(args, False),
               "annfast_mpi": lambda: worker_annfast(args, True),
               "torch_local": lambda: worker_torch(args, False),
               "torch_ddp": lambda: worker_torch(args, True),
               "allreduce": lambda: worker_allreduce(args)}
    if args.worker:
        return workers[args.worker]()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared machine: noisy)")
    if args.allreduce:
        res = run("allreduce", args, 2)
        print(f"{'float32 values':>14} {'MB':>8} {'Allreduce us':>13} {'GB/s (2(P-1)/P x bytes / t)':>28} "
              f"{'shared-memory sum us':>21} {'ratio':>6}")
        for r in res:
            n, t, ts = int(r["n"]), float(r["seconds"]), float(r["shared"])
            print(f"{n:>14,} {4 * n / 1e6:>8.3f} {t * 1e6:>13.1f} {4 * n / t / 1e9:>28.2f} "
                  f"{ts * 1e6:>21.1f} {t / ts:>5.2f}x")
        return
    configs = [("annfast_local", 1), ("annfast_mpi", 2)]
    try:
        import torch  # noqa: F401
        if not args.no_torch:
            configs += [("torch_ddp", 2), ("torch_local", 1)]
    except ImportError:
        print("PyTorch is not installed: its rows are skipped")
    best = {}
    for _ in range(args.repeats):
        for kind, procs in configs:
            r = run(kind, args, procs)[0]
            if kind not in best or float(r["epoch"]) < float(best[kind]["epoch"]):
                best[kind] = r
    steps = int(best["annfast_local"]["steps"])
    rate = {k: args.samples / float(v["epoch"]) for k, v in best.items()}
    print(f"MLP 784-512-256-10, Adam, float32, global batch {args.batch}, {args.samples} samples, "
          f"best of {args.repeats} rounds x {args.epochs} epochs")
    print(f"{'configuration':<34} {'samples/s':>10} {'ms/step':>8}")
    names = {"annfast_local": f"annfast 1 process x {args.threads} threads",
             "annfast_mpi": "annfast MPI 2 processes x 1 thread",
             "torch_ddp": "PyTorch DDP gloo 2 proc x 1 thread",
             "torch_local": f"PyTorch 1 process x {args.threads} threads"}
    for k, _ in configs:
        print(f"{names[k]:<34} {rate[k]:>10,.0f} {float(best[k]['epoch']) / steps * 1e3:>8.3f}")
    m = best["annfast_mpi"]
    print(f"annfast MPI / annfast local: {rate['annfast_mpi'] / rate['annfast_local']:.3f} (target >= 0.85)")
    print(f"gradient sum share of the MPI step: {float(m['grad']) / float(m['epoch']):.1%} "
          f"(target <= 10%); all collectives: {float(m['comm']) / float(m['epoch']):.1%}")
    if "torch_ddp" in rate:
        print(f"annfast MPI / PyTorch DDP: {rate['annfast_mpi'] / rate['torch_ddp']:.2f} (target >= 1.5)")


if __name__ == "__main__":
    main()
