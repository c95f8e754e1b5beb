#!/usr/bin/env bash
# Build annfast with AddressSanitizer + UBSan in a scratch copy and run the test suite under it.
# Any sanitizer report fails the run (halt_on_error / -fno-sanitize-recover).
#   bash tools/sanitize.sh [pytest args...]      e.g. bash tools/sanitize.sh -x -q tests/test_gemm.py
# CPython itself is not instrumented, so the ASan runtime is preloaded and leak detection is left to
# tools/valgrind.sh and tests/test_reliability.py (CPython keeps interned objects alive at exit).
set -euo pipefail
source "$(dirname "$0")/scratch_build.sh"
scratch_build ANNFAST_SANITIZE=1 tests benchmarks docs tools README.md LICENSE
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$work"
export ANNFAST_SANITIZED=1   # tests that measure memory or time skip under the sanitizer
status=0
# With no arguments: every test file that drives annfast's C code. Left to the normal test job:
# command-line text, signal/fork/thread-policy subprocesses, MPI launches, packaging and plotting
# (no C of their own, and slow under the preloaded runtime), and the AVX-512 emulation check, which
# compiles its own uninstrumented C. Running them instrumented too would add many minutes to
# CI for no code path the rest does not reach (they run in the normal job).
default=(tests)
for f in test_cli.py test_hostile_cli.py test_sigint.py test_fork_threads.py test_mpi.py \
         test_packaging.py test_plotting.py test_config.py test_threads.py test_sklearn_without.py \
         test_gemm_avx512_emulated.py test_datasets.py; do
  default+=("--ignore=tests/$f")
done
[ $# -gt 0 ] || set -- "${default[@]}"
python -m pytest -q -p no:cacheprovider "$@" || status=$?
echo "sanitize.sh: pytest exit code $status (ASan+UBSan, any report aborts the process)"
exit $status
