"""Helpers shared by the benchmark scripts."""


def print_pool_stats(af):
    """How often annfast's busy-machine detection ran work on one thread during this run: a
    benchmark on a machine busy with other work measures that fallback, not the threads."""
    st = af._core._pool_stats()
    print(f"\nannfast pool: {st['parallel']:,} parallel jobs; {st['crowded']:,} run or planned alone "
          f"while the machine looked crowded (found by preemption rate {st['by_rate']:,} times, by "
          f"slow waits {st['by_slow_wait']:,}; ANNFAST_BUSY_CHECK=0 turns the detection off); "
          f"{st.get('moved', 0):,} woken workers moved off their caller's CPU")
