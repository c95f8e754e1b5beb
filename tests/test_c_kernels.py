"""Build tests/c/toolkit_kernels.c against csrc/ (no Python) with AddressSanitizer and UBSan
and run it: out-of-bounds accesses, overflow or undefined behaviour in the optimiser, clipping,
batch-norm and dropout kernels fail the test. Skipped when no C compiler with sanitizers is
available."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
# every kernel file: the kernel tables cpu.c selects from (kernels/isa_ctx.c) name them all
SOURCES = ["cpu.c", "threads.c", "pool.c", "fpenv.c"] + sorted(
    os.path.relpath(p, CSRC) for p in glob.glob(os.path.join(CSRC, "kernels", "*.c")))


@pytest.mark.skipif(sys.platform != "linux", reason="sanitizer build tested on Linux only")
def test_kernels_clean_under_sanitizers(tmp_path):
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler {cc!r}")
    exe = tmp_path / "toolkit_kernels"
    cmd = [cc, "-O1", "-g", "-std=gnu11", "-fopenmp", "-fno-math-errno", "-Wall",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-I", CSRC,
           "-I", os.path.join(CSRC, "kernels"),
           os.path.join(ROOT, "tests", "c", "toolkit_kernels.c")] + \
          [os.path.join(CSRC, s) for s in SOURCES] + ["-o", str(exe), "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    if build.returncode != 0:
        if "sanitize" in build.stderr or "omp" in build.stderr:
            pytest.skip("compiler lacks sanitizer/OpenMP support: " + build.stderr[-300:])
        raise AssertionError(build.stderr)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1")
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "ok"
