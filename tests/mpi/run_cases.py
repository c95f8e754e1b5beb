"""mpiexec -n P python run_cases.py OUTDIR CASE...: runs cases.run(CASE, "mpi") on every process
and pickles each result to OUTDIR/CASE.RANK.pkl (with the process count, thread count and whether the gradient was summed in shared memory)."""
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import annfast as af  # noqa: E402
import cases  # noqa: E402

out, names = sys.argv[1], sys.argv[2:]
for name in names:
    result = cases.run(name, "mpi")
    world = af.distributed.get_strategy("mpi")
    result.update(rank=af.distributed.rank(), size=af.distributed.size(),
                  threads=af.get_num_threads(),
                  shared_memory=world is not None and world._shm is not None)
    with open(os.path.join(out, f"{name}.{af.distributed.rank()}.pkl"), "wb") as f:
        pickle.dump(result, f)
print(f"process {af.distributed.rank()} done", flush=True)
