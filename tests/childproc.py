"""Run test code in a child interpreter with a timeout.

Thread and signal tests run there: a deadlock or a crash then fails one test with its output
instead of hanging or killing the whole pytest run, and signals never reach pytest itself."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANITIZED = os.environ.get("ANNFAST_SANITIZED") == "1"
# generous: the machine is shared and the sanitizer build is several times slower
SCALE = 6 if SANITIZED else 1


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def spawn(code):
    """Start `code` (dedented) in a child Python; stdout/stderr are pipes (text)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=os.path.dirname(ROOT))


def run(code, timeout=120):
    """Run `code` to completion; returns (returncode, stdout, stderr). A child still running after
    `timeout` seconds (times SCALE under the sanitizer) is killed and reported as a hang."""
    child = spawn(code)
    try:
        out, err = child.communicate(timeout=timeout * SCALE)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        return None, out, err + f"\n[childproc] killed after {timeout * SCALE} s: hang"
    return child.returncode, out, err


def check(code, timeout=120):
    """run() and require exit status 0; returns stdout."""
    rc, out, err = run(code, timeout)
    assert rc == 0, f"child exit status {rc}\n--- stdout\n{out}\n--- stderr\n{err}"
    return out
