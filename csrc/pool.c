/* pool.c: annfast's worker threads (see pool.h for why not OpenMP regions).
 *
 * One job at a time. The job is published in a 64-bit claim word, generation (high 32 bits) and
 * next unclaimed chunk (low 32 bits); threads claim chunk i by a compare-and-swap from (gen, i) to
 * (gen, i + 1), so a thread that read a stale job can never run one of its chunks after the job
 * has moved on. The submitter writes the job's fields, then publishes the generation (release);
 * a claim that succeeds proves the fields it read belong to that generation (the next job's
 * fields are written only once every chunk of this one is done, which includes the claimed one).
 * Chunk 0 is published as claimed: the submitter runs it itself (cache locality, af_pool_run).
 *
 * Waiting policy (docs/threads.md):
 *   - an idle worker spins for af_pool_spin_us() microseconds (default AF_POOL_SPIN_US), checking
 *     for a new generation with PAUSE in between, then sleeps on a futex (condition variable off
 *     Linux); the submitter wakes sleepers only when there are any;
 *   - the submitter runs chunks itself until none is left, then waits only for chunks other
 *     threads are running: spinning briefly, then yielding the core, so a worker the OS has
 *     preempted in the middle of a chunk gets it back.
 * A thread that never woke up for a job (lost its core) costs nothing: it claims no chunk. And
 * when the submitting thread itself keeps being preempted, the machine has no core to spare:
 * jobs then run on the submitter alone (machine_crowded below). */
#define _GNU_SOURCE
#include "pool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AF_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define AF_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define AF_CPU_RELAX() ((void)0)
#endif

#include "annfast.h"
#include "fpenv.h"

/* Idle spin of a worker between jobs. Long enough to catch the next kernel of a training step
 * (they come every few to a few hundred microseconds), short enough that an idle annfast gives
 * its cores back within a tenth of a millisecond. */
#ifndef AF_POOL_SPIN_US
#define AF_POOL_SPIN_US 100
#endif
/* Busy-machine detection: a submitting thread that the OS preempts more than AF_POOL_BUSY_RATE
 * times a second (measured over AF_POOL_BUSY_WINDOW_US windows) shares its cores with other
 * runnable threads; more threads of ours would only queue behind them (or behind each other),
 * so its jobs run on it alone until a window is quiet again. Idle, a compute-bound thread is
 * almost never preempted; with one competitor per core, 100-300 times a second. */
#define AF_POOL_BUSY_RATE 50.0
#define AF_POOL_BUSY_WINDOW_US 20000.0
/* A submitter that waits longer than this, and longer than a quarter of what it computed, for
 * the others' last chunks had a slow wait: with chunks of equal size, a helper that had its core
 * finishes about when the submitter does. When, within one window, at least AF_POOL_SLOW_MIN of
 * its jobs and at least half of them had slow waits, the helpers are not getting their cores (one
 * competitor on a 2-core machine: the submitter keeps its core, the helper shares the other) and
 * the machine is crowded for a window. Waits after waking a sleeping worker do not count (it
 * starts late by the OS's wake-up latency, not for want of a core), nor do a few scattered slow
 * waits (uneven chunks, a page fault, an interrupt): idle, two in a window happened often enough
 * to run a benchmark on one thread a third of the time, and with one chunk per thread four did
 * in the first jobs after each pause (the worker's caches cold): 34 windows alone in an idle
 * graph benchmark, 2 with eight. Under two competitors eight still came within a window. */
#define AF_POOL_SLOW_WAIT_US 10.0
#define AF_POOL_SLOW_MIN 8
/* The submitter spins this long for other threads' last chunks before yielding the core. */
#define AF_POOL_WAIT_SPIN_US 20
#define AF_POOL_MAX 255

static _Atomic uint64_t g_claim;      /* generation << 32 | next chunk */
static _Atomic uint32_t g_wake;       /* futex word, bumped for every job */
static _Atomic int g_sleepers;        /* workers asleep or about to sleep */
static _Atomic size_t g_done;         /* chunks finished by workers in the current job */
static _Atomic int g_joined;          /* workers that took a slot in the current job */
static _Atomic(af_chunk_fn) g_fn;
static _Atomic(void *) g_ctx;
static _Atomic uint32_t g_n;
static _Atomic int g_limit;           /* threads allowed on the current job, submitter included */
static uint32_t g_gen;                /* last generation published (under g_submit) */
static int g_workers;                 /* workers started (under g_submit) */
static pthread_mutex_t g_submit = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Atomic int g_spin_us = -1;
static _Thread_local int t_busy;      /* this thread is inside a job (nested calls run serially) */
static _Thread_local double t_win_start = -1, t_win_preempt; /* busy detection window */
static _Thread_local int t_crowded;   /* last window found the machine busy */
static _Thread_local double t_slow_start = -1; /* start of the slow-wait window */
static _Thread_local int t_slow_jobs, t_slow_count; /* jobs, slow waits in that window */
static _Atomic int g_busy_check = -1; /* ANNFAST_BUSY_CHECK (default 1) */
static _Atomic int g_sub_cpu = -1;    /* the CPU the submitter ran on when it woke sleepers */
static _Atomic int g_stacked;         /* a woken worker found itself on the submitter's CPU */
/* Counters for af_pool_stats (relaxed: diagnostics only). */
static _Atomic unsigned long g_st_parallel, g_st_crowded, g_st_rate, g_st_slow, g_st_moved;
#ifndef __linux__
static pthread_mutex_t g_sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_sleep_cv = PTHREAD_COND_INITIALIZER;
#endif

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int env_spin_us(void)
{
    const char *s = getenv("ANNFAST_SPIN_US");
    if (s && *s) {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end && *end == '\0' && v >= 0 && v <= 1000000) return (int)v;
    }
    s = getenv("OMP_WAIT_POLICY");
    if (s && (strcmp(s, "passive") == 0 || strcmp(s, "PASSIVE") == 0)) return 0;
    return AF_POOL_SPIN_US;
}

int af_pool_spin_us(void)
{
    int v = atomic_load_explicit(&g_spin_us, memory_order_relaxed);
    if (v < 0) {
        v = env_spin_us();
        atomic_store_explicit(&g_spin_us, v, memory_order_relaxed);
    }
    return v;
}

/* Involuntary context switches of the calling thread so far (0 where unknown). */
static double involuntary_switches(void)
{
#if defined(__linux__) && defined(RUSAGE_THREAD)
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) return (double)ru.ru_nivcsw;
#endif
    return 0;
}

/* Switches the calling thread caused itself: yielding to its own workers (pool_run). */
static _Thread_local double t_own_switches;

/* Preemptions of the calling thread so far: its involuntary switches but its own yields. */
static double preemptions(void) { return involuntary_switches() - t_own_switches; }

int af_pool_set_busy_check(int on)
{
    if (on >= 0) atomic_store_explicit(&g_busy_check, on ? 1 : 0, memory_order_relaxed);
    int v = atomic_load_explicit(&g_busy_check, memory_order_relaxed);
    if (v < 0) {
        const char *s = getenv("ANNFAST_BUSY_CHECK");
        v = !(s && strcmp(s, "0") == 0);
        atomic_store_explicit(&g_busy_check, v, memory_order_relaxed);
    }
    return v;
}

/* True when the calling thread's last full window of AF_POOL_BUSY_WINDOW_US saw it preempted
 * more than AF_POOL_BUSY_RATE times a second (see the top of this file). */
static int machine_crowded(void)
{
    if (!af_pool_set_busy_check(-1)) return 0;
    double t = now_us();
    if (t_win_start < 0 || t - t_win_start > 10 * AF_POOL_BUSY_WINDOW_US) {
        t_win_start = t; /* first call, or after a long pause: start afresh */
        t_win_preempt = preemptions();
        t_crowded = 0;
    } else if (t - t_win_start >= AF_POOL_BUSY_WINDOW_US) {
        double p = preemptions();
        t_crowded = (p - t_win_preempt) * 1e6 / (t - t_win_start) > AF_POOL_BUSY_RATE;
        if (t_crowded) atomic_fetch_add_explicit(&g_st_rate, 1, memory_order_relaxed);
        t_win_start = t;
        t_win_preempt = p;
    }
    return t_crowded;
}

static void sleep_until_changed(uint32_t seen)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)&g_wake, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#else
    pthread_mutex_lock(&g_sleep_mu);
    while (atomic_load(&g_wake) == seen) pthread_cond_wait(&g_sleep_cv, &g_sleep_mu);
    pthread_mutex_unlock(&g_sleep_mu);
#endif
}

static void wake_all(void)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)&g_wake, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    pthread_mutex_lock(&g_sleep_mu);
    pthread_cond_broadcast(&g_sleep_cv);
    pthread_mutex_unlock(&g_sleep_mu);
#endif
}

#define AF_POOL_BACKOFF_SPINS 4000

void af_pool_backoff(unsigned *spins)
{
    if (++*spins < AF_POOL_BACKOFF_SPINS) {
        AF_CPU_RELAX();
    } else {
        sched_yield();
        *spins = 0;
    }
}

/* Claim and run chunks of generation gen until none is left; returns how many ran. */
static size_t run_chunks(uint32_t gen, af_chunk_fn fn, void *ctx, uint32_t n, size_t slot)
{
    size_t ran = 0;
    uint64_t w = atomic_load_explicit(&g_claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(w >> 32) != gen || (uint32_t)w >= n) return ran;
        if (!atomic_compare_exchange_weak_explicit(&g_claim, &w, w + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* w now holds the current word */
        fn(ctx, (uint32_t)w, slot);
        ran++;
        w = atomic_load_explicit(&g_claim, memory_order_acquire);
    }
}

/* A worker woken onto the CPU its submitter runs on leaves it. Some kernels (seen on a 2-vCPU
 * virtual machine) place a woken thread on the waker's CPU although another CPU is idle; the two
 * then share one core, for milliseconds, until the load balancer moves one (a 2-thread job ran at
 * 1-thread speed about half the time, the worker either preempting the submitter or queued behind
 * it). Narrowing the worker's affinity to the other CPUs moves it at once, and its own mask is put
 * back right away (it stays where it went). Once this has happened, submitters yield their core
 * once after waking workers, so one queued behind them gets to run and leave (pool_run). Never
 * reached where wake-ups go to idle CPUs: one sched_getcpu() per wake-up (pool.h). */
int af_leave_cpu(int cpu)
{
#if defined(__linux__) && defined(CPU_ISSET)
    cpu_set_t mask, away;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getcpu() != cpu) return 1;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0 || !CPU_ISSET(cpu, &mask) || CPU_COUNT(&mask) < 2)
        return 0;
    away = mask;
    CPU_CLR(cpu, &away);
    if (sched_setaffinity(0, sizeof away, &away) != 0) return 0;
    sched_setaffinity(0, sizeof mask, &mask);
    atomic_store_explicit(&g_stacked, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_st_moved, 1, memory_order_relaxed);
    return sched_getcpu() != cpu;
#else
    (void)cpu;
    return 1;
#endif
}

/* Wait for a generation other than seen: spin, then sleep. Returns the claim word seen. */
static uint64_t wait_for_job(uint32_t seen)
{
    double spin = af_pool_spin_us(), t0 = 0;
    for (unsigned it = 0;; it++) {
        uint64_t w = atomic_load_explicit(&g_claim, memory_order_acquire);
        if ((uint32_t)(w >> 32) != seen) return w;
        if ((it & 63) == 0) {
            double t = now_us();
            if (it == 0) t0 = t;
            else if (t - t0 >= spin) break;
        }
        AF_CPU_RELAX();
    }
    for (;;) {
        uint32_t wk = atomic_load(&g_wake);
        atomic_fetch_add(&g_sleepers, 1);
        uint64_t w = atomic_load(&g_claim);
        if ((uint32_t)(w >> 32) == seen) sleep_until_changed(wk);
        atomic_fetch_sub(&g_sleepers, 1);
        w = atomic_load_explicit(&g_claim, memory_order_acquire);
        if ((uint32_t)(w >> 32) != seen) {
            af_leave_cpu(atomic_load_explicit(&g_sub_cpu, memory_order_relaxed));
            return atomic_load_explicit(&g_claim, memory_order_acquire);
        }
    }
}

static void *worker_main(void *arg)
{
    (void)arg;
    af_fp_enter(); /* an annfast-only thread: flush subnormals for its whole life */
    t_busy = 1;    /* a kernel called from a chunk runs serially */
    uint32_t seen = (uint32_t)(atomic_load(&g_claim) >> 32);
    for (;;) {
        uint64_t w = wait_for_job(seen);
        uint32_t gen = (uint32_t)(w >> 32);
        seen = gen;
        int slot = atomic_fetch_add(&g_joined, 1) + 1;
        af_chunk_fn fn = atomic_load_explicit(&g_fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&g_ctx, memory_order_relaxed);
        uint32_t n = atomic_load_explicit(&g_n, memory_order_relaxed);
        if (slot >= atomic_load_explicit(&g_limit, memory_order_relaxed)) continue;
        size_t ran = run_chunks(gen, fn, ctx, n, (size_t)slot);
        if (ran) atomic_fetch_add_explicit(&g_done, ran, memory_order_release);
    }
    return NULL;
}

/* In a child process after fork() the workers are gone: start afresh when next needed. */
static void after_fork_child(void)
{
    pthread_mutex_init(&g_submit, NULL);
    g_workers = 0;
    atomic_store(&g_sleepers, 0);
    t_busy = 0;
}

static void pool_once(void) { pthread_atfork(NULL, NULL, after_fork_child); }

/* Start workers until there are want of them (under g_submit); returns how many exist. Workers
 * start with every signal blocked (they handle none): a Ctrl-C sent to the process then goes to a
 * thread that can act on it, never to a worker, where it would not interrupt the main thread's
 * sleep or wait (Python raises KeyboardInterrupt in the main thread only). */
static int ensure_workers(int want)
{
    if (want > AF_POOL_MAX) want = AF_POOL_MAX;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (g_workers < want) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, worker_main, NULL);
        pthread_attr_destroy(&at);
        if (rc != 0) break; /* run with the workers we have */
        g_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return g_workers;
}

/* The wait at time t after a parallel job, slow or not (see AF_POOL_SLOW_MIN): mostly slow within
 * a window, run alone for the rest of this window (machine_crowded). */
static void note_wait(double t, int slow)
{
    if (t_slow_start < 0 || t - t_slow_start > AF_POOL_BUSY_WINDOW_US) {
        t_slow_start = t;
        t_slow_jobs = t_slow_count = 0;
    }
    t_slow_jobs++;
    t_slow_count += slow;
    if (t_slow_count < AF_POOL_SLOW_MIN || 2 * t_slow_count < t_slow_jobs) return;
    atomic_fetch_add_explicit(&g_st_slow, 1, memory_order_relaxed);
    t_slow_start = -1;
    t_crowded = 1;
    t_win_start = t;
    t_win_preempt = preemptions();
}

void af_pool_stats(unsigned long out[5])
{
    out[0] = atomic_load_explicit(&g_st_parallel, memory_order_relaxed);
    out[1] = atomic_load_explicit(&g_st_crowded, memory_order_relaxed);
    out[2] = atomic_load_explicit(&g_st_rate, memory_order_relaxed);
    out[3] = atomic_load_explicit(&g_st_slow, memory_order_relaxed);
    out[4] = atomic_load_explicit(&g_st_moved, memory_order_relaxed);
}

int af_pool_solo(int on)
{
    int prev = t_busy;
    t_busy = on;
    return prev;
}

int af_pool_threads(int want)
{
    if (want <= 1 || t_busy) return 1;
    if (machine_crowded()) {
        atomic_fetch_add_explicit(&g_st_crowded, 1, memory_order_relaxed);
        return 1;
    }
    return want;
}

void af_pool_run(af_chunk_fn fn, void *ctx, size_t nchunks, int threads)
{
    if (nchunks == 0) return;
    int crowded = 0;
    if (threads <= 1 || nchunks == 1 || nchunks > UINT32_MAX || t_busy ||
        (crowded = machine_crowded()) || pthread_mutex_trylock(&g_submit) != 0) {
        if (crowded) atomic_fetch_add_explicit(&g_st_crowded, 1, memory_order_relaxed);
        for (size_t i = 0; i < nchunks; i++) fn(ctx, i, 0);
        return;
    }
    pthread_once(&g_once, pool_once);
    int workers = ensure_workers(threads - 1);
    if (workers == 0) {
        pthread_mutex_unlock(&g_submit);
        for (size_t i = 0; i < nchunks; i++) fn(ctx, i, 0);
        return;
    }
    const uint32_t n = (uint32_t)nchunks;
    atomic_store_explicit(&g_fn, fn, memory_order_relaxed);
    atomic_store_explicit(&g_ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&g_n, n, memory_order_relaxed);
    atomic_store_explicit(&g_limit, threads, memory_order_relaxed);
    atomic_store_explicit(&g_done, 0, memory_order_relaxed);
    atomic_store_explicit(&g_joined, 0, memory_order_relaxed);
    uint32_t gen = ++g_gen;
    /* chunk 0 is the submitter's (published as already claimed), never a spinning worker's that
     * saw the job first: with a chunk per thread, the same thread runs the same part of every
     * call, so what a chunk reads and writes stays in its core's caches from one call to the
     * next (512x16x256 at 2 threads: 40 -> 38 us; 512x16x512: 65 -> 60 us) */
    atomic_store_explicit(&g_claim, (uint64_t)gen << 32 | 1u, memory_order_release);
    atomic_fetch_add(&g_wake, 1);
    int woke = atomic_load(&g_sleepers) > 0;
    if (woke) {
#ifdef __linux__
        atomic_store_explicit(&g_sub_cpu, sched_getcpu(), memory_order_relaxed);
#endif
        /* where woken workers have landed on their submitter's CPU (af_leave_cpu): let one queued
         * behind this thread run now and move, not when this thread's time slice ends (the
         * switches this costs are not preemptions: machine_crowded leaves them out) */
        int yield = atomic_load_explicit(&g_stacked, memory_order_relaxed);
        double sw = yield ? involuntary_switches() : 0;
        wake_all();
        if (yield) {
            sched_yield();
            t_own_switches += involuntary_switches() - sw;
        }
    }
    atomic_fetch_add_explicit(&g_st_parallel, 1, memory_order_relaxed);

    double t_start = now_us();
    t_busy = 1;
    fn(ctx, 0, 0);
    size_t mine = 1 + run_chunks(gen, fn, ctx, n, 0);
    t_busy = 0;
    /* only chunks that other threads have claimed and are running are left */
    double t0 = 0, t = 0;
    for (unsigned it = 0; atomic_load_explicit(&g_done, memory_order_acquire) + mine < n; it++) {
        if ((it & 63) == 0) {
            t = now_us();
            if (it == 0) t0 = t;
            else if (t - t0 >= AF_POOL_WAIT_SPIN_US) sched_yield();
        }
        AF_CPU_RELAX();
    }
    pthread_mutex_unlock(&g_submit);
    if (!woke) {
        if (t0 <= 0) t = now_us(); /* no wait at all */
        note_wait(t, t0 > 0 && t - t0 > AF_POOL_SLOW_WAIT_US && t - t0 > 0.25 * (t0 - t_start));
    }
}
