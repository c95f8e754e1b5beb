"""fork() after parallel work, and thread creation that fails (issue 20, items 6 and 7).

libgomp's thread pool does not survive fork(): a child forked after a parallel region that starts
another one waits forever for workers that do not exist (os.fork, or a default multiprocessing
Pool on Linux). annfast registers an at-fork handler: such a child computes single-threaded
(bitwise the same results), a child forked before any parallel work keeps its threads.

libgomp calls exit(1) when it cannot create a worker thread (RLIMIT_NPROC in containers, an
address-space limit). annfast caps the thread count at the CPUs available (RuntimeWarning above
it) and starts the workers a team needs once itself before libgomp does; if that fails it warns
and computes on one thread instead of letting the process die.

Every scenario runs in a fresh interpreter with a timeout (a hang fails the test instead of
blocking the suite); scenarios that fork kill their own children when they overrun.
"""
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import pytest

import annfast
from annfast._info import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFO = config()
PROCS = INFO["num_procs"]
SANITIZED = os.environ.get("ANNFAST_SANITIZED") == "1"
TIMEOUT = 240 if SANITIZED else 120
threaded = pytest.mark.skipif(not INFO["openmp"] or PROCS < 2,
                              reason="needs an OpenMP build on a machine with 2+ CPUs")
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork/rlimit semantics of Linux")


def run(code, **env):
    """Run `code` in a new interpreter (its own session, so a hang is killed with everything it
    forked); returns (returncode, stdout, stderr)."""
    full = {k: v for k, v in os.environ.items() if k not in ("ANNFAST_NUM_THREADS", "OMP_NUM_THREADS")}
    full.update(PYTHONPATH=os.pathsep.join(p for p in sys.path if p), OPENBLAS_NUM_THREADS="1", **env)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=full, cwd=os.path.dirname(ROOT),
                             start_new_session=True)
    try:
        out, err = child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        pytest.fail(f"child still running after {TIMEOUT} s (hang)\n{out}\n{err}")
    return child.returncode, out, err


def check(code, **env):
    rc, out, err = run(code, **env)
    if out.strip().startswith("SKIP"):
        pytest.skip(out.strip()[5:])
    assert rc == 0 and out.strip().endswith("ok"), f"exit {rc}\nstdout:\n{out}\nstderr:\n{err}"
    return out, err


# waits for a forked child at most 60 s, killing it if it hangs
WAIT = """
import os, signal, sys, time
def wait(pid, limit=60.0):
    deadline = time.monotonic() + limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            print("forked child hung")
            sys.exit(3)
        time.sleep(0.02)
"""


# ---------------------------------------------------------------- item 6: fork
@threaded
@linux
@pytest.mark.parametrize("rep", range(2))
def test_os_fork_after_parallel_matmul(rep):
    """The issue's case, three forks in a row: the child's matmul and a training run finish
    with the parent's bits on one thread; the parent keeps its threads."""
    check(WAIT + textwrap.dedent("""
    import numpy as np, annfast as af
    af.set_num_threads(2)
    A = np.random.default_rng(0).standard_normal((800, 800))
    want = af.matmul(A, A)                      # starts libgomp's pool here
    X, y = A[:256], A[:256, :1]
    def train():
        m = af.Sequential([af.Dense(64, activation="relu"), af.Dense(1)], input_dim=800, seed=0)
        m.compile("mse", "adam")
        m.fit(X, y, epochs=2, batch_size=128, verbose=0)
        return m.get_weights()
    wtrain = train()
    for attempt in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                ok = np.array_equal(af.matmul(A, A), want) and af.get_num_threads() == 1
                ok = ok and all(np.array_equal(a, b) for a, b in zip(train(), wtrain))
                os._exit(0 if ok else 2)
            except BaseException:
                os._exit(4)
        rc = wait(pid)
        assert rc == 0, f"forked child exited {rc}"
    assert af.get_num_threads() == 2 and np.array_equal(af.matmul(A, A), want)
    print("ok")
    """))


POOL = """
import multiprocessing as mp
import numpy as np, annfast as af

def work(seed):
    B = np.random.default_rng(seed).standard_normal((600, 600))
    return af.matmul(B, B), af.get_num_threads()

af.set_num_threads(2)
A = np.random.default_rng(9).standard_normal((800, 800))
af.matmul(A, A)                                 # starts libgomp's pool here
want = [work(s)[0] for s in range(4)]
for rep in range(3):
    with {pool} as pool:
        got = pool.map_async(work, range(4)).get(timeout=60)  # a hang raises TimeoutError
    assert all(np.array_equal(g, w) for (g, _), w in zip(got, want))
    assert {{n for _, n in got}} == {{1}}, [n for _, n in got]
print("ok")
"""


@threaded
@linux
def test_fork_pool_after_parallel_matmul():
    check(POOL.format(pool='mp.get_context("fork").Pool(2)'))


@threaded
@linux
def test_default_pool_after_parallel_matmul():
    if __import__("multiprocessing").get_start_method() != "fork":
        pytest.skip("the default start method here is not fork")
    check(POOL.format(pool="mp.Pool(2)"))


@threaded
@linux
def test_fork_before_any_parallel_work_keeps_threads():
    """Nothing to lose before the pool exists: such a child keeps annfast's thread count."""
    check(WAIT + textwrap.dedent("""
    import numpy as np, annfast as af
    af.set_num_threads(2)
    A = np.random.default_rng(0).standard_normal((800, 800))
    pid = os.fork()
    if pid == 0:
        ok = af.get_num_threads() == 2 and np.allclose(af.matmul(A, A), A @ A)
        os._exit(0 if ok else 2)
    assert wait(pid) == 0
    print("ok")
    """))


@threaded
@linux
def test_set_num_threads_in_forked_child_warns_and_stays_single():
    check(WAIT + textwrap.dedent("""
    import warnings
    import numpy as np, annfast as af
    af.set_num_threads(2)
    A = np.random.default_rng(0).standard_normal((500, 500))
    want = af.matmul(A, A)
    pid = os.fork()
    if pid == 0:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            af.set_num_threads(2)
        msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
        ok = any("fork" in m for m in msgs) and af.get_num_threads() == 1
        ok = ok and np.array_equal(af.matmul(A, A), want)
        os._exit(0 if ok else 2)
    assert wait(pid) == 0
    print("ok")
    """))


# ---------------------------------------------------------------- item 7: thread limits
@pytest.mark.skipif(not INFO["openmp"], reason="needs an OpenMP build")
def test_thread_count_capped_at_cpus_with_warning():
    before = annfast.get_num_threads()
    try:
        for n in (PROCS + 1, 4096):
            with pytest.warns(RuntimeWarning, match=f"capped at {PROCS}"):
                annfast.set_num_threads(n)
            assert annfast.get_num_threads() == PROCS
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            annfast.set_num_threads(PROCS)  # at the cap: silent
        assert annfast.get_num_threads() == PROCS
    finally:
        annfast.set_num_threads(before)


@pytest.mark.skipif(not INFO["openmp"], reason="needs an OpenMP build")
@pytest.mark.parametrize("var", ["ANNFAST_NUM_THREADS", "OMP_NUM_THREADS"])
def test_thread_count_from_environment_capped(var):
    out, err = check(f"""
    import warnings
    warnings.simplefilter("always")
    import annfast
    assert annfast.get_num_threads() == {PROCS}, annfast.get_num_threads()
    print("ok")
    """, **{var: str(PROCS + 7)})
    assert "RuntimeWarning" in err and f"capped at {PROCS}" in err, err


NPROC = """
import os, resource, sys, threading, warnings
import numpy as np, annfast as af
A = np.random.default_rng(0).standard_normal((400, 400))
{setup}
if os.geteuid() == 0:            # root is exempt from RLIMIT_NPROC: become nobody first
    try:
        os.setgid(65534); os.setuid(65534)
    except OSError as e:
        print("SKIP cannot drop root privileges:", e); sys.exit(0)
resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
try:                             # the limit must bite, or there is nothing to test
    t = threading.Thread(target=lambda: None); t.start(); t.join()
    print("SKIP RLIMIT_NPROC is not enforced here"); sys.exit(0)
except RuntimeError:
    pass
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    {action}
    m = af.Sequential([af.Dense(32, activation="relu"), af.Dense(1)], input_dim=400, seed=0)
    m.compile("mse", "adam")
    m.fit(A, A[:, :1], epochs=1, batch_size=400, verbose=0)
msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
assert af.get_num_threads() == 1, af.get_num_threads()
{expect}
print("ok")
"""


@threaded
@linux
@pytest.mark.parametrize("rep", range(2))
def test_rlimit_nproc_set_num_threads_warns_and_computes(rep):
    """set_num_threads(2) where no thread can start: a RuntimeWarning, then single-threaded
    results equal to the 1-thread ones (libgomp used to exit(1) at the first product)."""
    check(NPROC.format(
        setup="af.set_num_threads(1); want = af.matmul(A, A)",
        action="af.set_num_threads(2); got = af.matmul(A, A)",
        expect="assert np.array_equal(got, want)\n"
               "assert any('thread' in m and '1' in m for m in msgs), msgs"))


@threaded
@linux
def test_rlimit_nproc_default_threads_fall_back_silently_in_c():
    """No set_num_threads at all (the default: every CPU): the first parallel region finds it
    cannot start its workers and runs on one thread."""
    check(NPROC.format(setup="assert af.get_num_threads() >= 2",
                       action="got = af.matmul(A, A)",
                       expect="assert np.allclose(got, A @ A)"))


@threaded
@linux
@pytest.mark.skipif(SANITIZED, reason="AddressSanitizer reserves terabytes of address space")
@pytest.mark.parametrize("rep", range(2))
def test_rlimit_as_huge_thread_count_warns_and_computes(rep):
    """set_num_threads(4096) under an address-space limit with room for the product but not
    for one more 8 MiB thread stack: capped (warning), the workers cannot start (warning),
    one thread computes the right answer; the process lives."""
    check("""
    import re, resource, sys, threading, warnings
    import numpy as np, annfast as af
    A = np.random.default_rng(0).standard_normal((400, 400))
    af.set_num_threads(1)
    want = af.matmul(A, A)
    vm = int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 6 * 2**20, resource.RLIM_INFINITY))
    try:
        t = threading.Thread(target=lambda: None); t.start(); t.join()
        print("SKIP a thread still fits under the address-space limit"); sys.exit(0)
    except RuntimeError:
        pass
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        af.set_num_threads(4096)
        got = af.matmul(A, A)
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    assert any("capped at" in m for m in msgs), msgs
    assert any("could not start" in m for m in msgs), msgs
    assert af.get_num_threads() == 1 and np.array_equal(got, want)
    print("ok")
    """)


@threaded
def test_threads_verified_per_calling_thread():
    """Each Python thread that runs C code gets its own libgomp team: a second thread's first
    parallel product works too (its workers are checked on its own first use)."""
    check("""
    import threading
    import numpy as np, annfast as af
    af.set_num_threads(2)
    A = np.random.default_rng(0).standard_normal((500, 500))
    want = af.matmul(A, A)
    out = []
    ts = [threading.Thread(target=lambda: out.append(np.array_equal(af.matmul(A, A), want)))
          for _ in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert out == [True] * 4 and af.get_num_threads() == 2
    print("ok")
    """)
