"""Shared fixtures: run a test under every kernel path this CPU supports, restore engine state."""
import os
import sys

import pytest

import annfast

if os.environ.get("ANNFAST_SANITIZED") == "1":
    # Under the ASan-preloaded interpreter, PyTorch's own libraries are not ours to check and make
    # the run slow and noisy: its oracle tests skip (they run in the normal test job).
    class _NoTorch:
        """Meta-path finder that makes `import torch` fail (leaves sys.modules untouched, so
        libraries probing sys.modules for torch are not confused)."""

        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("torch is disabled under the sanitizer", name="torch")
            return None

    sys.meta_path.insert(0, _NoTorch())


# Tests check threaded paths and their bits: run them threaded even when the machine is busy
# (the busy-machine fallback of csrc/pool.c would otherwise make a crowded CI run serial, hiding
# the parallel paths); tests/test_threads.py switches it back on where it is the subject.
annfast._core._set_busy_check(False)


def supported_isas():
    from annfast._info import config
    return config()["supported_isas"]


@pytest.fixture(params=supported_isas())
def isa(request):
    """Force each supported instruction-set path in turn."""
    before = annfast.get_isa()
    annfast.set_isa(request.param)
    yield request.param
    annfast.set_isa(before)


@pytest.fixture
def threads():
    """Set the thread count inside a test; restored afterwards."""
    before = annfast.get_num_threads()
    yield annfast.set_num_threads
    annfast.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _isa_restored():
    """Every test module leaves the kernel path it found (ANNFAST_ISA's, or the best one): tests
    that launch processes compare their bits with this process's."""
    before = annfast.get_isa()
    yield
    assert annfast.get_isa() == before, "a test module changed the kernel path without restoring it"
