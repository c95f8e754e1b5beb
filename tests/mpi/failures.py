"""mpiexec -n 2 python failures.py MODE: a process failing during a distributed fit.

raise  process 0's callback raises: it prints the error and ends the MPI job (abort)
kill   process 1 is killed (SIGKILL) mid-fit: the launcher ends the job
hang   process 0's callback never returns: process 1 gives up after its 2 s collective timeout
agree  errors every process sees alike (a call one process rejects, different data, weights that
       differ after an epoch): DistributedError on both processes, the job goes on; each process
       writes its report lines to OUTDIR/agree.RANK.txt (failures.py agree OUTDIR): the launcher
       forwards the processes' stdout through one pipe, where lines of two processes can run
       together
"""
import os
import signal
import sys
import threading
import time

import numpy as np
from mpi4py import MPI

import annfast as af

mode = sys.argv[1]
rank = MPI.COMM_WORLD.Get_rank()


def model_and_data(n=400):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 8)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]
    model = af.Sequential([af.Dense(8, activation="relu"), af.Dense(2, activation="softmax")],
                          input_dim=8, seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model, X, y


class AtEpoch(af.callbacks.Callback):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.fn()


def boom():
    raise RuntimeError("callback failure on purpose")


if mode == "raise":
    model, X, y = model_and_data()
    model.fit(X, y, epochs=5, verbose=0, callbacks=[AtEpoch(boom)], distributed="mpi")
elif mode == "kill":
    model, X, y = model_and_data()
    if rank == 1:
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
    model.fit(X, y, epochs=10 ** 6, verbose=0, distributed="mpi")
elif mode == "hang":
    model, X, y = model_and_data()
    strategy = af.distributed.MPIStrategy(timeout=2)
    model.fit(X, y, epochs=5, verbose=0, callbacks=[AtEpoch(lambda: time.sleep(600))],
              distributed=strategy)
elif mode == "agree":
    lines = []

    def report(what, fn):
        try:
            fn()
            lines.append(f"{what} rank {rank}: no error")
        except Exception as exc:
            lines.append(f"{what} rank {rank}: {type(exc).__name__}: {exc}")

    model, X, y = model_and_data()
    report("reject", lambda: model.fit(X, y, epochs=1, batch_size=0 if rank == 1 else 32, verbose=0,
                                       distributed="mpi"))
    model, X, y = model_and_data()
    report("data", lambda: model.fit(X + rank, y, epochs=1, verbose=0, distributed="mpi"))

    model, X, y = model_and_data()

    def poke(y_true, y_pred):   # runs on every process at each epoch's end
        if rank == 1:
            model._params[0] += 1.0
        return 0.0

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=[poke])
    report("weights", lambda: model.fit(X, y, epochs=2, verbose=0, distributed="mpi"))
    model, X, y = model_and_data()
    report("after", lambda: model.fit(X, y, epochs=1, verbose=0, distributed="mpi"))
    with open(os.path.join(sys.argv[2], f"agree.{rank}.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
print(f"rank {rank} finished", flush=True)
