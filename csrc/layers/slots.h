/* slots.h: per-thread scratch for kinds whose parallel loops need a private buffer per thread
 * (an im2col block, a padded gradient image).
 *
 * A node's scratch is sized once, when the plan is made (ops->sizes), while the thread count may
 * change later (annfast.set_num_threads). So such kinds size their scratch for af_slots()
 * buffers, a constant of the machine, and run min(threads, af_slots()) threads; thread t uses
 * buffer t. The results never depend on how many threads ran (the kinds split work into fixed
 * blocks), only the speed does.
 *
 * Their loops hand out tasks dynamically (schedule(dynamic, chunk)): which thread runs a task
 * changes nothing but the scratch buffer it uses, and on a machine shared with other jobs a
 * thread that the OS pauses then holds up at most its current task, not half the pass. */
#ifndef AF_LAYER_SLOTS_H
#define AF_LAYER_SLOTS_H
#ifdef _OPENMP
#include <omp.h>
#endif
#include "annfast.h"

#define AF_MAX_SLOTS 64

/* Passes that only move, compare or add values (padding, pooling, summing partial gradients) use
 * threads from this many values (about 1 MB of float32, ~100 us of work): a parallel region costs
 * a few microseconds on a quiet machine and much more when another job holds a core. */
#define AF_PAR_MIN_MOVE (8 * AF_PAR_MIN)

/* Scratch buffers a kind plans for: one per processor, at most AF_MAX_SLOTS. */
static inline size_t af_slots(void)
{
    int n = af_num_procs();
    return n < 1 ? 1 : n > AF_MAX_SLOTS ? AF_MAX_SLOTS : (size_t)n;
}

/* Threads for a loop of `tasks` independent tasks worth `work` multiply-adds: one below
 * `min_work`, else min(threads, slots, tasks). */
static inline int af_slot_threads(size_t tasks, double work, double min_work)
{
    size_t nt = (size_t)af_get_num_threads(), s = af_slots();
    if (work < min_work) return 1;
    if (nt > s) nt = s;
    if (nt > tasks) nt = tasks;
    return nt < 1 ? 1 : (int)nt;
}

/* This thread's index inside the current parallel loop (0 outside one). */
static inline size_t af_tid(void)
{
#ifdef _OPENMP
    return (size_t)omp_get_thread_num();
#else
    return 0;
#endif
}

/* Elements of type T (of size tsize) that hold n size_t values. */
static inline size_t af_idx_elems(size_t n, size_t tsize) { return (n * sizeof(size_t) + tsize - 1) / tsize; }

/* n rounded up to a multiple of m. */
static inline size_t af_round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

#endif
