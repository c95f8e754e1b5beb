"""Build annfast: the C engine in csrc/ plus the Cython boundary, as one extension module.

One module (annfast._core) so that global engine state (selected ISA, thread count) is shared.
No -march flags: ISA-specific kernels carry their own target attributes and are picked at run time.
Set ANNFAST_SANITIZE=1 to build with AddressSanitizer/UBSan (see tools/sanitize.sh).
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from glob import glob

import numpy
from Cython.Build import cythonize
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def compiler_accepts(flags, code="int main(void){return 0;}\n", libs=()):
    """True if the C compiler builds and links a tiny program with these flags."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write(code)
        cmd = cc.split() + list(flags) + [src, "-o", os.path.join(d, "t")] + list(libs)
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


OMP_TEST = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
use_openmp = os.environ.get("ANNFAST_NO_OPENMP") != "1" and compiler_accepts(
    ["-fopenmp"], OMP_TEST, ["-fopenmp"])
if not use_openmp:
    print("annfast: compiler has no OpenMP; building single-threaded", file=sys.stderr)

cc_name = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
try:
    cc_version = subprocess.run([cc_name, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
except (OSError, IndexError):
    cc_version = cc_name

# -fno-trapping-math: nothing here relies on FP exceptions; it lets GCC if-convert the clamps in
# vexp.h so activation loops vectorise. It changes no IEEE results (no reassociation, no fast-math).
compile_args = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-fno-trapping-math", "-Wall",
                "-Wno-unused-function", "-Wno-unknown-pragmas"]
# sqrt/div loops (optimisers, batch norm) vectorise only without errno semantics; nothing reads errno.
compile_args.append("-fno-math-errno")
link_args = []
if use_openmp:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")
if os.environ.get("ANNFAST_SANITIZE") == "1":
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args = [a for a in compile_args if a != "-O3"] + ["-O1", "-g"] + san
    link_args += san
if os.environ.get("ANNFAST_DEBUG") == "1":
    compile_args += ["-g"]

macros = [
    ("ANNFAST_OPENMP", "1" if use_openmp else "0"),
    ("ANNFAST_COMPILER", '"%s"' % cc_version.replace('"', "'")),
    ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
]

ext = Extension(
    "annfast._core",
    sources=["annfast/_core.pyx"] + sorted(glob("csrc/*.c") + glob("csrc/*/*.c")),
    include_dirs=["csrc", "csrc/kernels", "csrc/layers", numpy.get_include()],
    depends=sorted(glob("csrc/*.h") + glob("csrc/*/*.h") + glob("annfast/*.pxi") + glob("annfast/*.pxd")),
    define_macros=macros,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)



class ParallelBuildExt(build_ext):
    """Compile the extension's C files on every core. setuptools' -j runs whole extensions in
    parallel, and annfast is one extension of ~70 files: without this, pip compiles them one after
    another (the Cython module, the longest, is first in the list so it starts at once).
    ANNFAST_BUILD_JOBS sets the number of compilers (default: the CPUs available)."""

    def build_extensions(self):
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        jobs = int(os.environ.get("ANNFAST_BUILD_JOBS") or cpus)
        cc = self.compiler

        def compile_parallel(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                             extra_preargs=None, extra_postargs=None, depends=None):
            macros, objects, extra, pp_opts, build = cc._setup_compile(
                output_dir, macros, include_dirs, sources, depends, extra_postargs)
            cc_args = cc._get_cc_args(pp_opts, debug, extra_preargs)

            def one(obj):
                if obj in build:  # absent: up to date
                    src, ext = build[obj]
                    cc._compile(obj, src, ext, cc_args, extra, pp_opts)
            with ThreadPoolExecutor(max(1, jobs)) as pool:
                list(pool.map(one, objects))  # list(): re-raise a compiler error here
            return objects

        if jobs > 1 and hasattr(cc, "_setup_compile") and hasattr(cc, "_compile"):
            cc.compile = compile_parallel
        super().build_extensions()


setup(
    cmdclass={"build_ext": ParallelBuildExt},
    ext_modules=cythonize([ext], language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True, "embedsignature": True}),
)
