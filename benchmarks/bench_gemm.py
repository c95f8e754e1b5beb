"""GEMM benchmark: annfast.matmul vs numpy.matmul (OpenBLAS) at equal thread counts.

    python benchmarks/bench_gemm.py            # full table, 1 and 2 threads
    python benchmarks/bench_gemm.py --quick    # fewer sizes

Each thread count runs in a fresh subprocess with OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) set
before numpy is imported, and annfast.set_num_threads(t); OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
are removed so OpenBLAS picks its own kernel for this CPU. Times are the minimum of several
repeats (the machine is shared): at 1 thread interleaved, clocked by the calling thread's CPU
time (both libraries compute in that thread); at 2 threads wall time, in blocks of repeats per
library separated by pauses (idle OpenBLAS/OpenMP workers spin for a while after each call and
would steal the second core from the other library if calls were interleaved). Both
libraries write into preallocated outputs.

Theoretical peak = cores x FLOP per cycle x clock (bench_common.peak_gflops): 32 float32 FLOP per
cycle with AVX2 (two 8-lane FMA units), 64 with AVX-512 (32 on AMD Zen 4, which splits a 512-bit
FMA in two), float64 half of that, and the clock from /proc/cpuinfo ("cpu MHz", the nominal clock
the hypervisor reports; turbo can run above it, so fractions > 100% are possible).
"""
import json
import os
import subprocess
import sys
import time

from bench_common import peak_gflops

SQUARE = [64, 128, 256, 512, 1024, 2048]
#: Untimed seconds of each multi-threaded block after its pause (best_times).
WARM = 0.005
MLP = [(128, 784, 512), (128, 512, 256), (128, 256, 10), (784, 128, 512), (128, 512, 784),
       (128, 256, 512)]
# the backward products as the training engine issues them (transposed operands, no copies):
# dW = X^T @ dY and dX = dY @ W^T
MLP_T = [(784, 128, 512, True, False), (128, 512, 784, False, True),
         (512, 128, 256, True, False), (128, 256, 512, False, True),
         (256, 128, 10, True, False), (128, 10, 256, False, True)]
TINY = [((4, 2), (2, 4), False, False), ((4, 4), (4, 1), False, False),
        ((4, 1), (4, 1), False, True), ((4, 4), (4, 1), True, False),
        ((4, 2), (4, 4), True, False), ((1, 784), (784, 512), False, False),
        ((16, 784), (784, 512), False, False)]


def clock_ghz():
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
        return max(mhz) / 1000.0
    except (OSError, ValueError, IndexError):
        return float("nan")


def best_times(fns, clock, min_total=0.3, max_reps=60, blocks=False):
    """Minimum time of each function over repeats.

    blocks=False: interleaved (A, B, A, B, ...), so a burst of load from other processes hits
    both sides alike. blocks=True (multi-threaded runs): each function runs a block of repeats,
    then a pause, then the next function, twice over; interleaving single calls would let one
    library's idle worker threads, which spin-wait for a while after a call (OpenBLAS's pool,
    GOMP's team), occupy the second core while the other library runs. After each pause the
    block first runs its function untimed for WARM seconds: a core idle for 50 ms comes back
    slowly (on a 2-vCPU Zen 3 VM a 13 us product took 15-19 us for the first ~2 ms, whichever
    library ran it), and a block of a short product would otherwise time only that ramp."""
    for f in fns:
        f()
    best = [float("inf")] * len(fns)
    if blocks:
        for _ in range(2):
            for i, f in enumerate(fns):
                time.sleep(0.05)
                t_end = time.perf_counter() + WARM
                while time.perf_counter() < t_end:
                    f()
                total, reps = 0.0, 0
                while reps < 3 or (total < min_total / 2 and reps < max_reps // 2):
                    t = clock()
                    f()
                    dt = clock() - t
                    best[i] = min(best[i], dt)
                    total += dt
                    reps += 1
        return best
    total, reps = 0.0, 0
    while reps < 5 or (total < min_total and reps < max_reps):
        for i, f in enumerate(fns):
            t = clock()
            f()
            dt = clock() - t
            best[i] = min(best[i], dt)
            total += dt
        reps += 1
    return best


def worker(threads, quick):
    import numpy as np

    try:  # the installed annfast (README's install)...
        import annfast
    except ImportError:  # ...or an in-place build in this checkout
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import annfast
    from annfast import _core
    annfast.set_num_threads(threads)
    # One thread: both libraries compute in the calling thread, so its CPU time excludes time
    # the OS gave to other processes. Two threads: wall time.
    clock = time.thread_time if threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    info = _core.build_info()
    peak32 = peak_gflops(threads)[0] or float("nan")
    info["peak"] = peak_gflops(1)[1]
    rows = []
    shapes = [(n, n, n, False, False) for n in (SQUARE[:4] if quick else SQUARE)]
    shapes += [s + (False, False) for s in MLP] + MLP_T
    for dt in (np.float32, np.float64):
        peak = peak32 if dt == np.float32 else peak32 / 2
        for m, k, n, ta, tb in shapes:
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dt)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dt)
            A, B = (a.T if ta else a), (b.T if tb else b)
            c1, c2 = np.empty((m, n), dt), np.empty((m, n), dt)
            t_np, t_af, t_raw = best_times(
                [lambda: np.matmul(A, B, out=c1),
                 lambda: annfast.matmul(a, b, trans_a=ta, trans_b=tb, out=c2),
                 lambda: annfast.matmul(a, b, trans_a=ta, trans_b=tb, out=c2, check_finite=False)],
                clock, blocks=threads > 1)
            fl = 2.0 * m * n * k
            name = f"{m}x{k}{'(T)' if ta else ''} @ {k}x{n}{'(T)' if tb else ''}"
            rows.append(dict(kind="gemm", shape=name, dtype=np.dtype(dt).name,
                             threads=threads, ours=fl / t_af / 1e9, numpy=fl / t_np / 1e9,
                             raw=fl / t_raw / 1e9, peak=fl / t_af / 1e9 / peak))
        # small products: C-level per-call cost (no Python) vs numpy's per-call cost
        for sa, sb, ta, tb in TINY:
            a = rng.standard_normal(sa).astype(dt)
            b = rng.standard_normal(sb).astype(dt)
            m = sa[1] if ta else sa[0]
            n = sb[0] if tb else sb[1]
            c1, c2 = np.empty((m, n), dt), np.empty((m, n), dt)
            A, B = (a.T if ta else a), (b.T if tb else b)
            reps = 200000 if m * n < 100 else 200
            # per-call times of ~1 us: wall clock (a CPU-time clock read costs about as much)
            t_c = min(_core._gemm_repeat(ta, tb, a, b, c2, reps, time.perf_counter) for _ in range(5))
            t_np, t_py = best_times([lambda: np.matmul(A, B, out=c1),
                                     lambda: annfast.matmul(a, b, trans_a=ta, trans_b=tb, out=c2, check_finite=False)],
                                    time.perf_counter, blocks=threads > 1)
            rows.append(dict(kind="small", shape=f"{'T' if ta else ''}{sa} @ {'T' if tb else ''}{sb}",
                             dtype=np.dtype(dt).name, threads=threads, c_ns=t_c * 1e9,
                             py_ns=t_py * 1e9, numpy_ns=t_np * 1e9))
    print(json.dumps(dict(rows=rows, info=info, peak32=peak32)))


def main():
    quick = "--quick" in sys.argv
    if "--worker" in sys.argv:
        worker(int(sys.argv[sys.argv.index("--worker") + 1]), quick)
        return
    results = []
    for t in (1, 2):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t))
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
        out = subprocess.run([sys.executable, __file__, "--worker", str(t)] + (["--quick"] if quick else []),
                             env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    info = results[0]["info"]
    print("annfast = annfast.matmul with its defaults (NaN/inf check on, done inside the product); "
          "'no check' = check_finite=False. GFLOP/s, higher is better; ratio = annfast / numpy.")
    print(f"annfast GEMM vs numpy.matmul ({info['isa']} kernels, {info['compiler']}); "
          f"clock {clock_ghz():.3f} GHz from /proc/cpuinfo")
    print(f"peak float32 = {info['peak']} = {results[0]['peak32']:.1f} GFLOP/s per thread; "
          f"float64 half of that")
    print()
    print(f"{'shape':>26} {'dtype':>8} {'thr':>3} {'annfast':>9} {'no check':>9} {'numpy':>9} {'ratio':>6} "
          f"{'%peak':>6}")
    gf = {}
    for res in results:
        for r in res["rows"]:
            if r["kind"] != "gemm":
                continue
            gf[(r["shape"], r["dtype"], r["threads"])] = r["ours"]
            print(f"{r['shape']:>26} {r['dtype']:>8} {r['threads']:>3} {r['ours']:>9.1f} {r['raw']:>9.1f} "
                  f"{r['numpy']:>9.1f} {r['ours'] / r['numpy']:>6.2f} {100 * r['peak']:>5.0f}%")
    print()
    for dt in ("float32", "float64"):
        key = "1024x1024 @ 1024x1024"
        if (key, dt, 1) in gf:
            print(f"2-thread speed-up at n=1024 {dt}: {gf[(key, dt, 2)] / gf[(key, dt, 1)]:.2f}x")
    print()
    print("small products, time per call: annfast C entry point (no Python), annfast.matmul "
          "from Python, numpy.matmul from Python")
    print(f"{'shape':>28} {'dtype':>8} {'thr':>3} {'C ns':>9} {'matmul ns':>10} {'numpy ns':>9}")
    for res in results:
        for r in res["rows"]:
            if r["kind"] == "small":
                print(f"{r['shape']:>28} {r['dtype']:>8} {r['threads']:>3} {r['c_ns']:>9.0f} "
                      f"{r['py_ns']:>10.0f} {r['numpy_ns']:>9.0f}")


if __name__ == "__main__":
    main()
