/* pool.h: annfast's own worker threads for the kernels (pool.c). Internal; not public C API.
 *
 * Why not an OpenMP parallel region: a region ends at a barrier where the caller waits for every
 * team member, including one the OS has descheduled because another program wants the core; on a
 * busy machine every small region then costs a scheduler time slice. Here the work is cut into
 * chunks that threads claim one at a time from a shared counter, so the caller simply does the
 * chunks nobody else has claimed: it only ever waits for chunks already running elsewhere (at most
 * one per worker), never for a worker that has not started.
 *
 * Results never depend on which thread runs a chunk: callers give each chunk a fixed piece of the
 * output (and fixed-order partial sums), so any number of threads gives identical bits. */
#ifndef AF_POOL_H
#define AF_POOL_H
#include <stddef.h>

/* One chunk of a job: fn(ctx, chunk, slot). slot (0 <= slot < threads, 0 for the calling thread)
 * is unique among the threads working on the job, for per-thread scratch space. */
typedef void (*af_chunk_fn)(void *ctx, size_t chunk, size_t slot);

/* Run fn(ctx, i, slot) for every i in [0, nchunks), on the calling thread and up to threads - 1
 * workers; returns when all are done. threads <= 1, nchunks <= 1, a call from inside a job, or
 * another thread's job in progress: everything runs on the calling thread, in chunk order. */
void af_pool_run(af_chunk_fn fn, void *ctx, size_t nchunks, int threads);

/* The threads a job should be planned for now: want, or 1 when it would run on the calling
 * thread alone anyway (want <= 1, inside a job, machine crowded). af_get_num_threads() asks it, so
 * callers that plan their chunks with that count never cut a serial run into chunks made for
 * several threads (each chunk of a GEMM packs its own operand blocks). */
int af_pool_threads(int want);

/* on = 1: the calling thread's jobs, and the kernels they call, run on it alone (as inside a
 * job) until af_pool_solo(previous) puts back the setting it returned. */
int af_pool_solo(int on);

/* How long idle workers spin before sleeping, in microseconds (see pool.c and docs/threads.md);
 * ANNFAST_SPIN_US overrides the default; OMP_WAIT_POLICY=passive means 0. */
int af_pool_spin_us(void);

/* One round of a wait inside a job for work that other running threads do: PAUSE, and after
 * AF_POOL_BACKOFF_SPINS of them a yield of the core (a thread the OS has preempted then gets it
 * back sooner on a busy machine). Start with *spins = 0. Used by the recurrent layers' per-step
 * waits and the split step's wait for the pieces. */
void af_pool_backoff(unsigned *spins);

/* Move the calling thread off CPU `cpu` if it runs there (a thread woken from sleep that the OS
 * placed on its waker's CPU although another is idle; see pool.c): its affinity is narrowed to
 * the other CPUs, then put back. Returns 0 when it still runs on `cpu` (it could not move). Also
 * used by the recurrent layers' batch-1 threads. */
int af_leave_cpu(int cpu);

#endif
