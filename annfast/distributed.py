"""Data-parallel training over processes with MPI, with the results of one process.

Start the same script on every process with an MPI launcher and pass ``distributed="mpi"``::

    # train.py
    model.fit(X, y, epochs=10, batch_size=128, distributed="mpi")
    if annfast.distributed.is_root():
        model.save("model.npz")

    $ mpiexec -n 2 python train.py

Every process loads the same data (or memory-maps the same file). Each global batch of
``batch_size`` samples is split by sample position into one piece per process; each process
computes the gradient of its piece; the flat gradients are summed (in memory the processes share
when they run on one machine, else by one in-place ``Allreduce``); every process then takes the
same optimiser step. Process 0's initial weights are
broadcast first; batch normalisation uses the statistics of the whole global batch; dropout masks
depend on a sample's position in the global batch, not on the process count; losses and metrics
are summed over the processes; callbacks, the progress bar and history printing run on process 0
only, and a checksum of the weights is compared every epoch (a mismatch raises on every process).

``SplitBatch(2)`` runs the same computation in ONE process (both pieces, added in piece order):
a 2-process run gives bitwise its weights. See docs/distributed.md for launching on a cluster,
what is deterministic and what it costs.

>>> import annfast as af
>>> strategy = af.distributed.SplitBatch(2)       # one process, the pieces of a 2-process run
>>> strategy.parts
2

The compiled engine does not link MPI: mpi4py owns the communicator and the collectives are
called from Python between (and, through a callback, inside) the C passes.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Any, Optional

import numpy as np

__all__ = ["MPIStrategy", "SplitBatch", "DistributedError", "get_strategy", "is_root", "rank", "size"]

INSTALL_HINT = 'pip install "annfast[mpi]"  (installs mpi4py and the MPICH runtime)'
# environment variables MPI launchers set to the number of processes they started
_LAUNCH_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


class DistributedError(RuntimeError):
    """Raised on EVERY process of a distributed call alike: another process rejected the call,
    the processes hold different data, or their weights differ after an epoch. (Any other
    failure of one process ends the whole MPI job, since the others wait for it.)"""


def _import_mpi():
    """mpi4py.MPI, or ImportError saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"distributed='mpi' needs mpi4py: {INSTALL_HINT}; ({exc})") from exc
    return MPI


def _launched_size() -> int:
    """Processes the MPI launcher says it started (0: no launcher seen)."""
    for var in _LAUNCH_SIZE_VARS:
        try:
            n = int(os.environ.get(var, ""))
        except ValueError:
            continue
        if n > 0:
            return n
    return 0


class SplitBatch:
    """Train in ONE process exactly as ``parts`` processes of ``distributed="mpi"`` do: every
    global batch is cut into ``parts`` pieces by sample position, each piece's gradient computed
    on its own and the pieces added in order (batch normalisation with the statistics of the whole
    batch, dropout masks by global position). A 2-process MPI fit gives bitwise the same weights.

    >>> SplitBatch(3).parts
    3
    """

    size, rank = 1, 0

    def __init__(self, parts: int = 2):
        from ._validate import check_int
        self.parts = check_int(parts, "parts", minimum=1)
        self.first, self.count = 0, self.parts

    reduce = None          # nothing to sum over processes

    @property
    def is_root(self) -> bool:
        return True

    # the collectives of a one-process run are the identity
    def Allreduce(self, arr):
        return arr

    def Bcast(self, arr):
        return arr

    def bcast(self, obj):
        return obj

    def allgather(self, obj):
        return [obj]

    def Allgatherv(self, local, out, counts):
        out[...] = local

    def abort(self, exc: BaseException) -> None:
        raise exc

    def __repr__(self):
        return f"SplitBatch(parts={self.parts})"


class MPIStrategy:
    """Data-parallel training over the processes of an MPI communicator (mpi4py).
    ``fit(..., distributed="mpi")`` uses one MPIStrategy over COMM_WORLD, made on first use.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Default MPI.COMM_WORLD. Every process of it makes the distributed calls together.
    threads : int, optional
        OpenMP threads per process. Default: ANNFAST_NUM_THREADS or OMP_NUM_THREADS when set,
        or a count given to annfast.set_num_threads before, else the CPUs of this machine
        divided by the processes on it.
    timeout : float, optional
        Seconds a process may wait in one collective before it ends the MPI job with a message
        naming the wait. Default None (also read from ANNFAST_MPI_TIMEOUT): rely on the
        launcher, which ends the job when a process dies.
    check_weights : bool
        Compare a checksum of the weights over the processes after every epoch.
    shared_memory : bool
        When every process runs on one machine, sum the gradient in memory the processes share
        (each adds its own range of everyone's buffers, then all hold the total) instead of an
        MPI Allreduce: 2.5 to 5x less time for a 2 MB gradient, and the pieces are added in rank
        order as one process adds them (bitwise one process's result for any process count).
        Default True; ANNFAST_MPI_SHM=0 turns it off. Processes on several machines always use
        the Allreduce.
    """

    def __init__(self, comm: Any = None, threads: Optional[int] = None,
                 timeout: Optional[float] = None, check_weights: bool = True,
                 shared_memory: bool = True):
        from ._validate import check_float, check_int
        MPI = _import_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.size, self.rank = self.comm.Get_size(), self.comm.Get_rank()
        launched = _launched_size()
        if self.size == 1 and launched > 1:
            raise RuntimeError(
                f"the MPI launcher started {launched} processes but MPI sees only this one: mpi4py "
                "is built for another MPI than the mpiexec used; start the job with the mpiexec "
                f"of the MPI mpi4py uses ({sys.executable} -m mpi4py --mpi-library shows it)")
        self.parts, self.first, self.count = self.size, self.rank, 1
        if timeout is None and os.environ.get("ANNFAST_MPI_TIMEOUT"):
            timeout = float(os.environ["ANNFAST_MPI_TIMEOUT"])
        self.timeout = None if timeout is None else check_float(timeout, "timeout", minimum=0.0)
        self.check_weights = bool(check_weights)
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_size = node.Get_size()
        # the gradient summed in shared memory needs every process on this machine
        self.shared_memory = (bool(shared_memory) and os.environ.get("ANNFAST_MPI_SHM", "1") != "0"
                              and self.size > 1 and self.local_size == self.size)
        self._node = node if self.shared_memory else None
        if not self.shared_memory:
            node.Free()
        self._shm = None      # (key, window, buffers in rank order, range bounds)
        if threads is not None:
            threads = check_int(threads, "threads", minimum=1)
        self.threads = threads
        _set_threads(threads, self.local_size)
        # time spent in collectives (bench_mpi reads it): seconds and calls, gradient ones apart
        self.comm_seconds = self.grad_seconds = 0.0
        self.comm_calls = 0
        self._grad_size = None
        self._busy_since = None
        self._busy_what = ""
        if self.timeout:
            threading.Thread(target=self._watchdog, name="annfast-mpi-watchdog", daemon=True).start()

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def __repr__(self):
        return f"MPIStrategy(rank={self.rank}, size={self.size}, threads={self.threads})"

    # ---- collectives: uppercase (buffer) forms on NumPy arrays; small control objects pickled --
    def _timed(self, what, fn, *args, grad=None):
        t0 = time.perf_counter()
        self._busy_what, self._busy_since = what, time.monotonic()
        try:
            return fn(*args)
        finally:
            self._busy_since = None
            dt = time.perf_counter() - t0
            self.comm_seconds += dt
            self.comm_calls += 1
            if grad is None:
                grad = what == "Allreduce" and args and getattr(args[1], "size", 0) == self._grad_size
            if grad:
                self.grad_seconds += dt

    def Allreduce(self, arr):
        """arr <- its sum over the processes, in place (the gradient, statistics, flags)."""
        self._timed("Allreduce", self.comm.Allreduce, self.MPI.IN_PLACE, arr)
        return arr

    @property
    def reduce(self):
        return self._reduce if self._shm is not None else self.Allreduce

    def _reduce(self, arr):
        """The C passes' reduce: this process's shared gradient buffer summed in shared memory,
        anything else (batch statistics, the stop flag) by Allreduce."""
        shm = self._shm
        mine = shm[2][self.rank]
        if arr.size == mine.size and arr.ctypes.data == mine.ctypes.data and arr.dtype == mine.dtype:
            self._timed("the shared-memory gradient sum", self._sum_shared, shm, grad=True)
            return arr
        return self.Allreduce(arr)

    def _sum_shared(self, shm):
        from . import _core
        _, _, bufs, bounds = shm
        self._node.Barrier()                 # every buffer written
        _core.split_sum_all(bufs, bounds[self.rank], bounds[self.rank + 1])
        self._node.Barrier()                 # every range summed: each buffer holds the total

    def grad_buffer(self, n, dtype):
        """This process's gradient buffer in memory shared by the processes (None when the
        gradient is summed by Allreduce): n values of dtype, 64-byte aligned. Collective: every
        process calls it with the same n and dtype; the memory is kept for the next calls."""
        if not self.shared_memory or n == 0:
            return None
        dtype = np.dtype(dtype)
        key = (n, dtype.str)
        if self._shm is not None and self._shm[0] == key:
            return self._shm[2][self.rank]
        self._free_shared()
        stride = -(-n * dtype.itemsize // 64) * 64          # bytes per buffer, whole cache lines
        MPI, P = self.MPI, self.size
        # room in /dev/shm (small in some containers): process 0 decides for everyone
        if not self._node.bcast(_shm_room() >= 2 * (P * stride + 64) if self.rank == 0 else None, 0):
            self.shared_memory = False
            return None
        win = MPI.Win.Allocate_shared(P * stride + 64 if self._node.Get_rank() == 0 else 0, 1,
                                      comm=self._node)
        mem, _ = win.Shared_query(0)
        raw = np.frombuffer(mem, dtype=np.uint8)
        skew = -raw.ctypes.data % 64
        # the same offset must align the segment in every process's mapping of it
        if len(set(self._node.allgather(skew))) != 1:
            win.Free()
            self.shared_memory = False
            return None
        bufs = [raw[skew + q * stride: skew + q * stride + n * dtype.itemsize].view(dtype)
                for q in range(P)]
        # ranges in whole cache lines, so two processes never write one line
        per = 64 // dtype.itemsize
        bounds = [min(n, (n * q // P) // per * per) for q in range(P)] + [n]
        self._shm = (key, win, bufs, bounds)
        return bufs[self.rank]

    def _free_shared(self):
        if self._shm is not None:
            win = self._shm[1]
            self._shm = None
            win.Free()

    def Bcast(self, arr):
        """arr <- process 0's arr, in place."""
        self._timed("Bcast", self.comm.Bcast, arr, 0)
        return arr

    def bcast(self, obj):
        """Process 0's small Python object (settings, flags) on every process."""
        return self._timed("bcast", self.comm.bcast, obj, 0)

    def allgather(self, obj):
        return self._timed("allgather", self.comm.allgather, obj)

    def Allgatherv(self, local, out, counts):
        """out <- the processes' `local` arrays one after the other (counts elements each)."""
        counts = np.asarray(counts, dtype=np.int64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._timed("Allgatherv", self.comm.Allgatherv, local, [out, (counts, displs)])

    def abort(self, exc: BaseException) -> None:
        """Print exc and end every process of the job (the others may be waiting in a
        collective this process will never enter)."""
        sys.stderr.write(f"annfast: process {self.rank} of {self.size} failed during a distributed "
                         f"call and ends the whole MPI job:\n")
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        _flush_before_abort()
        self.comm.Abort(1)

    def _watchdog(self):
        while True:
            time.sleep(min(1.0, max(self.timeout / 4, 0.01)))
            since = self._busy_since
            if since is not None and time.monotonic() - since > self.timeout:
                sys.stderr.write(
                    f"annfast: process {self.rank} of {self.size} waited more than {self.timeout:g} s "
                    f"in {self._busy_what}: another process died or stopped; ending the MPI job\n")
                _flush_before_abort()
                self.comm.Abort(2)


def _shm_room():
    """Free bytes in /dev/shm, where MPI places shared memory (unlimited where it is absent)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return float("inf")
    return st.f_bavail * st.f_frsize


def _flush_before_abort():
    """Flush stderr, then give the launcher a moment to forward it: MPI_Abort makes mpiexec kill
    every process, and on a loaded machine it could do so before reading the message from the
    pipe (a test saw the job end with an empty stderr)."""
    sys.stderr.flush()
    time.sleep(0.5)


def _set_threads(threads, local_size):
    """threads, else a count chosen before (ANNFAST_NUM_THREADS / OMP_NUM_THREADS, or
    set_num_threads with another value than the default, all CPUs), else the CPUs of this
    machine divided by the processes on it: mpiexec -n 2 on 2 cores does not oversubscribe."""
    from . import _core
    if threads is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        if any(os.environ.get(v) for v in ("ANNFAST_NUM_THREADS", "OMP_NUM_THREADS")) \
                or _core.get_num_threads() != cores:
            return
        threads = max(1, cores // max(local_size, 1))
    _core.set_num_threads(threads)


_world = None       # the MPIStrategy of distributed="mpi"


def get_strategy(distributed: Any):
    """The strategy a `distributed` argument names: None for a plain single-process call (None,
    False, or "mpi" in a one-process launch), else an MPIStrategy / SplitBatch.

    Raises ImportError when "mpi" is asked without mpi4py, RuntimeError when the launcher started
    several processes that MPI does not see together."""
    global _world
    if distributed is None or distributed is False:
        return None
    if isinstance(distributed, (MPIStrategy, SplitBatch)):
        if isinstance(distributed, MPIStrategy) and distributed.size == 1:
            return None
        return distributed
    if isinstance(distributed, str) and distributed.lower() == "mpi":
        if _world is None:
            _world = MPIStrategy()
        return _world if _world.size > 1 else None
    raise ValueError(f"distributed must be None, 'mpi', an annfast.distributed.MPIStrategy or "
                     f"SplitBatch, got {distributed!r}")


def _world_or_none():
    if _world is not None:
        return _world
    if "mpi4py.MPI" not in sys.modules:
        return None
    MPI = sys.modules["mpi4py.MPI"]
    return MPI.COMM_WORLD if MPI.Is_initialized() and not MPI.Is_finalized() else None


def rank() -> int:
    """This process's rank in COMM_WORLD (0 without MPI or before MPI starts)."""
    w = _world_or_none()
    return 0 if w is None else (w.rank if isinstance(w, MPIStrategy) else w.Get_rank())


def size() -> int:
    """Processes in COMM_WORLD (1 without MPI or before MPI starts)."""
    w = _world_or_none()
    return 1 if w is None else (w.size if isinstance(w, MPIStrategy) else w.Get_size())


def is_root() -> bool:
    """True on process 0 (and without MPI): where to save files or print."""
    return rank() == 0
