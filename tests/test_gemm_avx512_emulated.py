"""Build the C engine with a small C driver (tests/c/gemm_check.c) and check GEMM without Python.

'avx512-emulated' compiles csrc/gemm_avx512.c with -DAF_GEMM_EMULATE_AVX512: the AVX-512 kernels'
exact block shapes (12 x 32 / 12 x 16 register tiles, KC = 192, MC = 480 / 240, NC = 3072) from
the same template, on 64-byte GCC generic vectors, under the avx2 names so this CPU runs them.
It checks everything of the AVX-512 path except the intrinsics themselves (the nine V* macros, and
the packing transposes KTRANSPOSE / KPACKA, which become plain loops with the same contracts, so
their callers' block, remainder and edge logic still runs), which is the best available here
without AVX-512 hardware; tests/test_gemm.py covers the intrinsics on AVX-512 CPUs. 'native'
runs the same driver on the normal build (all paths the CPU supports through the best ISA).
"""
import glob
import os
import platform
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 only")
@pytest.mark.parametrize("mode", ["native", "avx512-emulated"])
def test_gemm_c_driver(tmp_path, mode):
    import annfast
    if "avx2" not in annfast._core.build_info()["supported_isas"]:
        pytest.skip("the emulated build runs under the avx2 dispatch; this CPU lacks AVX2")
    kernels = os.path.join(ROOT, "csrc", "kernels")
    srcs = [os.path.join(ROOT, "csrc", f) for f in ("cpu.c", "threads.c", "pool.c", "fpenv.c")]
    # every kernel file: the kernel tables cpu.c selects from (csrc/kernels/isa_ctx.c) name them all
    srcs += sorted(glob.glob(os.path.join(kernels, "*.c")))
    flags = ["-O2", "-std=gnu11", "-fopenmp"]
    if mode == "avx512-emulated":
        # 64-byte generic vectors in the kernels' unrolled tiles take GCC 2+ minutes at -O2
        # (136 s for gemm_avx512.c), 23 s at -O1; the logic checked is the same
        flags[0] = "-O1"
        srcs = [s for s in srcs if not s.endswith("gemm_avx2.c")]
        # the avx2 dispatch slots point at the emulated AVX-512 tables
        flags += ["-DAF_GEMM_EMULATE_AVX512", "-Daf_gemm_avx512_f32=af_gemm_avx2_f32",
                  "-Daf_gemm_avx512_f64=af_gemm_avx2_f64"]
    exe = str(tmp_path / "gemm_check")
    build = subprocess.run([CC] + flags + ["-I", os.path.join(ROOT, "csrc"), "-I", kernels,
                                           os.path.join(ROOT, "tests", "c", "gemm_check.c")]
                           + srcs + ["-o", exe, "-lm"], capture_output=True, text=True)
    if build.returncode != 0 and "fopenmp" in build.stderr:
        pytest.skip("compiler without OpenMP")
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, ANNFAST_ISA="avx2")
    run = subprocess.run([exe], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 bad elements" in run.stdout
