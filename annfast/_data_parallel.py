"""How Model.fit / evaluate / predict and the scikit-learn estimators run: LOCAL (one process,
the engine's own epoch) or SPLIT over a strategy of annfast.distributed (MPI processes, or one
process computing the pieces of several). Model code calls the same methods either way; the local
ones do nothing, so a plain fit runs exactly as before.

Every collective of a split run is entered by every process in the same order: a process that
fails between two of them ends the MPI job (abort) instead of leaving the others waiting.
"""
import contextlib
import zlib

import numpy as np

from . import _core
from .distributed import DistributedError


_NOTHING = contextlib.nullcontext()


class LocalRun:
    """One process, whole batches (the default)."""

    distributed = False
    is_root = True

    # one shared do-nothing context: a generator-based one cost microseconds per predict call
    def agreed(self, what):
        return _NOTHING

    def guard(self):
        return _NOTHING

    @contextlib.contextmanager
    def root_callbacks(self, model):
        yield

    def begin(self, model, xs, ys, sw=None):
        pass

    def same(self, obj):
        return obj

    def same_array(self, arr):
        return arr

    def any(self, flag):
        return bool(flag)

    def train(self, engine, xs, ys, batch, order, key, cfg, opt_state, step, perm, first_batch=0,
              max_batches=None, sw=None, sw_norm=0):
        """engine.train_epoch, or, for a network of small dense layers, the same epoch with each
        batch cut into pieces that annfast's threads compute at once (csrc/split.c decides, from
        the network and the batch size only)."""
        parts = _core.local_pieces(engine, batch)
        if parts == 1:
            return engine.train_epoch(xs, ys, batch, order, key, cfg, opt_state, step, perm,
                                      first_batch, max_batches, sw, sw_norm)
        pieces, step, stopped = _core.train_split(engine, xs, ys, batch, order, key, cfg, opt_state,
                                                  step, perm, parts, 0, parts, None, first_batch,
                                                  max_batches, sw, sw_norm)
        return _sum_pieces(pieces), step, stopped

    def total(self, stats):
        return stats

    def check_weights(self, model):
        pass

    def evaluate(self, engine, xs, ys, chunk, sw=None):
        return engine.evaluate(xs, ys, chunk, sw=sw)

    def predict(self, engine, xs, chunk):
        return engine.predict(xs, chunk)


LOCAL = LocalRun()


def runner(distributed):
    """The run a `distributed` argument asks for (LOCAL for None / a one-process launch)."""
    if distributed is None:   # the common case, without the import and the lookup
        return LOCAL
    from .distributed import get_strategy
    strategy = get_strategy(distributed)
    return LOCAL if strategy is None else SplitRun(strategy)


def _rows(n, parts, q):
    """Rows [lo, hi) of part q when n rows are cut into `parts` (as csrc/split.c cuts batches)."""
    return (n // parts) * q + (n % parts) * q // parts, (n // parts) * (q + 1) + (n % parts) * (q + 1) // parts


def _sum_pieces(pieces):
    """The stats of one call's pieces summed (steps counted once)."""
    total = pieces[0]
    for p in pieces[1:]:
        total = _add(total, p)
    total["n_batches"] = pieces[0]["n_batches"]
    return total


def _checksum(arrays):
    crc = 0
    for a in arrays:
        crc = zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B"), crc)
    return crc


class SplitRun:
    """A run over a strategy: pieces of every batch on each process, sums over processes."""

    distributed = True

    def __init__(self, strategy):
        self.s = strategy
        self.is_root = strategy.is_root
        self.multi = strategy.size > 1

    # ---- agreement and failure ----------------------------------------------------------------
    @contextlib.contextmanager
    def agreed(self, what):
        """Checks run on every process; a call one process rejects is rejected on all (its own
        error there, a DistributedError naming it elsewhere), before any process changes
        anything."""
        err = None
        try:
            yield
        except Exception as exc:   # noqa: BLE001 - re-raised below on every process
            err = exc
        msgs = self.s.allgather(None if err is None else f"{type(err).__name__}: {err}")
        if err is not None:
            raise err
        for r, m in enumerate(msgs):
            if m is not None:
                raise DistributedError(f"{what}: process {r} rejected the call: {m}")

    @contextlib.contextmanager
    def guard(self):
        """Around the collectives of a call: an exception on a process of a multi-process run
        ends the job (abort) rather than leave the others waiting, unless every process raises
        it alike (DistributedError)."""
        try:
            yield
        except BaseException as exc:
            if not self.multi or isinstance(exc, DistributedError):
                raise
            self.s.abort(exc)
            raise

    # ---- the start: one model everywhere, the same data ----------------------------------------
    def begin(self, model, xs, ys, sw=None):
        """The data (and sample weights) checked to be the same on every process (shape, dtype
        and a sample of rows), then process 0's weights, statistics, optimiser state, step counters and seed on every
        process."""
        s = self.s
        if not self.multi:
            return
        n = xs[0].shape[0]
        probe = np.unique(np.linspace(0, n - 1, min(n, 16)).astype(np.int64))
        arrays = list(xs) + list(ys) + ([] if sw is None else [sw])
        mine = [(a.shape, a.dtype.str, _checksum([a[probe]])) for a in arrays]
        for r, other in enumerate(s.allgather(mine)):
            if other != mine:
                raise DistributedError(
                    f"distributed call: process {r} has other data than process {s.rank} (shapes, "
                    f"dtypes or values differ: {other} vs {mine}); every process must pass the "
                    "same data")
        s._grad_size = model._params.size
        for arr in (model._params, model._stats, model._opt_state):
            if arr is not None and arr.size:
                s.Bcast(arr)
        seed = model._c_seed
        model._step, model._epoch, model._c_seed = s.bcast((model._step, model._epoch, model._c_seed))
        if model._c_seed != seed:       # the engines hold the seed: rebuilt with process 0's
            model._engine = model._engine_key = None
            model._engine_dx = None

    # ---- process 0 decides, everyone follows ---------------------------------------------------
    def same(self, obj):
        return self.s.bcast(obj) if self.multi else obj

    def same_array(self, arr):
        return self.s.Bcast(arr) if self.multi else arr

    def any(self, flag):
        if not self.multi:
            return bool(flag)
        f = np.array([1.0 if flag else 0.0])
        return bool(self.s.Allreduce(f)[0] > 0)

    @contextlib.contextmanager
    def root_callbacks(self, model):
        """Process 0 runs the callbacks (the body); if they changed the weights (restored best
        ones, NaN guard), process 0's weights go to every process; so do stop_training and the
        optimiser's plain settings (numbers: a learning rate a scheduler changed)."""
        if not self.multi:
            yield
            return
        before = _checksum([model._params, model._stats]) if self.is_root else None
        yield
        changed = self.is_root and _checksum([model._params, model._stats]) != before
        changed, model.stop_training, opt = self.same(
            (changed, bool(model.stop_training), _plain_settings(model.optimizer)))
        for k, v in opt.items():     # e.g. a learning rate a scheduler set on process 0
            setattr(model.optimizer, k, v)
        if changed:
            self.s.Bcast(model._params)
            if model._stats.size:
                self.s.Bcast(model._stats)

    def check_weights(self, model):
        """The same weights on every process, or DistributedError on every process."""
        if not self.multi or not getattr(self.s, "check_weights", True):
            return
        sums = self.s.allgather(_checksum([model._params, model._stats]))
        if len(set(sums)) > 1:
            raise DistributedError("distributed fit: the weights differ between processes after epoch "
                               f"{model._epoch} (checksums {sums}); the processes did not compute "
                               "the same steps")

    # ---- training ------------------------------------------------------------------------------
    def train(self, engine, xs, ys, batch, order, key, cfg, opt_state, step, perm, first_batch=0,
              max_batches=None, sw=None, sw_norm=0):
        """engine.train_epoch's arguments and results, the batches split over the strategy: the
        stats of this process's pieces (total() sums them over processes). Sample weights are
        normalised over the whole global batch (every process holds all of them), so a weighted
        split step is the same step as one process's."""
        s = self.s
        # processes on one machine: the gradient goes to shared memory and is summed there
        shared = s.grad_buffer(engine.params.size, engine.dtype) \
            if self.multi and hasattr(s, "grad_buffer") else None
        pieces, step, stopped = _core.train_split(engine, xs, ys, batch, order, key, cfg, opt_state,
                                                  step, perm, s.parts, s.first, s.count,
                                                  s.reduce if self.multi else None, first_batch,
                                                  max_batches, sw, sw_norm, shared_grads=shared)
        if shared is not None:
            np.copyto(engine.grads[:shared.size], shared)   # the last step's gradient, as before
        return _sum_pieces(pieces), step, stopped

    def total(self, stats):
        """Epoch stats summed over the processes (steps counted once)."""
        if not self.multi:
            return stats
        n_out = len(stats["out_loss"])
        v = np.array([stats["loss_sum"], float(stats["n_seen"])] + list(stats["out_loss"])
                     + list(stats["correct"]) + list(stats["sse"]), dtype=np.float64)
        self.s.Allreduce(v)
        out = dict(stats)
        out["loss_sum"], out["n_seen"] = float(v[0]), int(round(v[1]))
        for i, k in enumerate(("out_loss", "correct", "sse")):
            out[k] = [float(x) for x in v[2 + i * n_out:2 + (i + 1) * n_out]]
        return out

    # ---- inference: rows split over processes --------------------------------------------------
    def _my_rows(self, n):
        return _rows(n, self.s.size, self.s.rank)

    def evaluate(self, engine, xs, ys, chunk, sw=None):
        """(mean loss + penalties, summed stats) of all rows, each process evaluating a slice
        (sample weights normalised by the row count, as Keras and Model.evaluate)."""
        n = xs[0].shape[0]
        if not self.multi or n < self.s.size:
            return engine.evaluate(xs, ys, chunk, sw=sw)
        lo, hi = self._my_rows(n)
        loss, sums = engine.evaluate([x[lo:hi] for x in xs], [y[lo:hi] for y in ys], chunk,
                                     sw=None if sw is None else sw[lo:hi])
        penalty = loss - sums["loss_sum"] / (hi - lo)
        sums["n_batches"] = 0
        sums = self.total(sums)
        return sums["loss_sum"] / n + penalty, sums

    def predict(self, engine, xs, chunk):
        """Outputs of all rows on every process, each process predicting a slice."""
        n = xs[0].shape[0]
        if not self.multi or n < self.s.size:
            return engine.predict(xs, chunk)
        lo, hi = self._my_rows(n)
        mine = engine.predict([x[lo:hi] for x in xs], chunk)
        outs = []
        for arr in mine:
            per = int(np.prod(arr.shape[1:]))
            full = np.empty((n,) + arr.shape[1:], dtype=arr.dtype)
            counts = [(b - a) * per for a, b in (_rows(n, self.s.size, q) for q in range(self.s.size))]
            self.s.Allgatherv(np.ascontiguousarray(arr).reshape(-1), full.reshape(-1), counts)
            outs.append(full)
        return outs


def _plain_settings(opt):
    """The optimiser's public attributes that are plain numbers (what callbacks change)."""
    if opt is None:
        return {}
    return {k: v for k, v in vars(opt).items()
            if not k.startswith("_") and isinstance(v, (bool, int, float, type(None)))}


def _add(a, b):
    out = dict(a)
    for k in ("loss_sum", "n_seen", "n_batches"):
        out[k] = a[k] + b[k]
    for k in ("out_loss", "correct", "sse"):
        out[k] = [x + y for x, y in zip(a[k], b[k])]
    return out
