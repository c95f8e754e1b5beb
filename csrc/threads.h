/* threads.h: keeping OpenMP usable after fork() and when worker threads cannot be created
 * (threads.c). Plain C11 + POSIX threads.
 *
 * libgomp has two ways to lose a process, both outside the caller's control:
 *  - fork(): the child inherits the parent's thread-pool bookkeeping but not its threads, so the
 *    first parallel region waits forever for workers that do not exist;
 *  - pthread_create failing (RLIMIT_NPROC, address-space limits) makes libgomp print "Thread
 *    creation failed" and call exit(1).
 * af_threads_for() is asked before every parallel region (through af_get_num_threads) and returns
 * 1 where a team could not start: in a fork() child of a process that ran parallel code, and in a
 * thread that could not start the workers itself just before libgomp would have tried.
 *
 * Not covered: libgomp ends the workers a smaller team does not need and creates them again for
 * a larger one. The check runs once per thread and team size, so limits tightened after a team
 * of that size first started (another process taking the last slots of RLIMIT_NPROC) can still
 * make libgomp exit when it regrows its pool. Checking before every region would cost a thread
 * creation per parallel call. */
#ifndef AF_THREADS_H
#define AF_THREADS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Registers the at-fork handler (once; called by af_init). */
void af_threads_setup(void);

/* Team size for a parallel region of `want` threads started by the calling thread: want, or 1
 * (see the top of this file). The first time a thread asks for a team larger than any it has
 * started, the workers are created (and ended) here first; a failure is remembered until the
 * thread count is set again, so it is not retried on every call. */
int af_threads_for(int want);

/* The count af_threads_for(want) would return now, without creating any thread. */
int af_threads_expected(int want);

/* Create want - 1 threads that live at the same time (as a team's workers), then end them;
 * returns how many of the want threads (the caller counted) could run, so want on success.
 * Nothing is created if the calling thread already started a team of want threads. A failure
 * is remembered for the calling thread as in af_threads_for. */
int af_threads_probe(int want);

/* Forget remembered failures (called when the thread count is set). */
void af_threads_reset(void);

/* 1 in a process created by fork() from one that had run a parallel region: annfast computes
 * single-threaded there. */
int af_threads_forked(void);

#ifdef __cplusplus
}
#endif
#endif
