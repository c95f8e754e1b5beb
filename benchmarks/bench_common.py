"""Helpers shared by the benchmark scripts."""
import time

#: Idle seconds before each timed run. Thread pools keep spinning for a while after their last
#: job (OpenBLAS's for about 2^28 cycles, ~0.1 s; OpenMP's for a shorter time; annfast's 0.1 ms)
#: and would steal the cores from whichever framework runs next.
PAUSE = 0.25


def best_interleaved(fns, repeats, pause=PAUSE):
    """Minimum time of each function over `repeats` rounds, run in turn within each round (A, B,
    C, A, B, C, ...) so that every framework sees the same machine load: on a shared, noisy
    machine a slow spell then hits all of them rather than one. Each run starts after `pause`
    seconds of idle."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            time.sleep(pause)
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def peak_gflops(threads):
    """(float32 GFLOP/s, description) from /proc/cpuinfo's nominal clock and vector width, or
    (None, 'unknown'). Nominal: a VM reports its base clock, and boost runs above it (an AMD EPYC
    9xx4 VM: 2.6 GHz reported, ~3.5 GHz measured with a dependent-add loop)."""
    mhz, flags, vendor, family = None, "", "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if mhz is None and key == "cpu MHz":
                    mhz = float(value)
                elif not flags and key == "flags":
                    flags = value.split()
                elif not vendor and key == "vendor_id":
                    vendor = value
                elif not family and key == "cpu family":
                    family = value
    except (OSError, ValueError):
        return None, "unknown"
    if mhz is None:
        return None, "unknown"
    # Zen 4 (AMD family 25 with AVX-512) runs a 512-bit FMA as two 256-bit halves: 32 FLOP/cycle
    wide = "avx512f" in flags and not (vendor == "AuthenticAMD" and family == "25")
    per_cycle = 64 if wide else 32 if "fma" in flags else 16
    return threads * mhz * 1e-3 * per_cycle, f"{threads} x {mhz:.0f} MHz x {per_cycle} FLOP/cycle"



def core_round_trip(af):
    """'core-to-core round trip N ns' for a benchmark's header (csrc/corelat.c): threads hand data
    from core to core several times per training step, so 2-thread figures from machines, or VM
    placements, that differ in it are not comparable (2 vCPUs of one AMD EPYC VM: ~380-480 ns on
    a day when batch-16 MLP training gained 1.25x from a second thread, 1.8x on another)."""
    ns = af._core._core_round_trip_ns()
    return "core-to-core round trip " + ("unknown" if ns is None else f"{ns:.0f} ns")


def print_pool_stats(af):
    """How often annfast's busy-machine detection ran work on one thread during this run: a
    benchmark on a machine busy with other work measures that fallback, not the threads."""
    st = af._core._pool_stats()
    print(f"\nannfast pool: {st['parallel']:,} parallel jobs; {st['crowded']:,} run or planned alone "
          f"while the machine looked crowded (found by preemption rate {st['by_rate']:,} times, by "
          f"slow waits {st['by_slow_wait']:,}; ANNFAST_BUSY_CHECK=0 turns the detection off); "
          f"{st.get('moved', 0):,} woken workers moved off their caller's CPU; "
          f"{st.get('tuned_one', 0):,} training steps run on one thread because timing found it "
          "faster (ANNFAST_THREAD_TUNING=0 turns that off)")
