/* threads.c: the thread count a parallel region can really use (see threads.h).
 *
 * fork: pthread_atfork marks the child of a process whose code may have started libgomp's pool
 * (a region of more than one thread was requested); such a child computes on one thread, which
 * libgomp runs without touching the pool. A child forked before any parallel work keeps its count.
 *
 * thread creation: libgomp creates a thread's workers at its first region of that size and keeps
 * them. Just before, the same number of threads is created here, with the stack size libgomp
 * will use, all alive at once; if that fails the region runs on one thread (libgomp would have
 * exited). Each OS thread that starts regions owns its own pool, so the check is per thread. */
#define _GNU_SOURCE
#include "threads.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static atomic_int g_pool_maybe;   /* a region of > 1 thread was requested in this process */
static atomic_int g_forked;       /* fork() child of such a process */
static atomic_uint g_generation;  /* bumped by af_threads_reset */

static _Thread_local int t_started = 1;   /* largest team this thread has started */
static _Thread_local int t_failed;        /* smallest team that could not start (0: none) */
static _Thread_local unsigned t_generation;

static void on_fork_child(void)
{
    if (atomic_load(&g_pool_maybe)) atomic_store(&g_forked, 1);
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void register_handler(void) { pthread_atfork(NULL, NULL, on_fork_child); }

void af_threads_setup(void) { pthread_once(&g_once, register_handler); }

int af_threads_forked(void) { return atomic_load(&g_forked); }

void af_threads_reset(void) { atomic_fetch_add(&g_generation, 1u); }

/* Stack size libgomp gives its workers: OMP_STACKSIZE / GOMP_STACKSIZE as "<n>[B|K|M|G]"
 * (kilobytes without a suffix); 0 when unset or unreadable (the pthread default, as libgomp). */
static size_t omp_stack_size(void)
{
    const char *names[] = {"OMP_STACKSIZE", "GOMP_STACKSIZE"};
    for (int i = 0; i < 2; i++) {
        const char *s = getenv(names[i]);
        if (!s || !*s) continue;
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        while (end && (*end == ' ' || *end == '\t')) end++;
        unsigned long long unit = 1024;
        if (end && *end) {
            switch (*end | 0x20) {
            case 'b': unit = 1; break;
            case 'k': unit = 1024; break;
            case 'm': unit = 1024ull * 1024; break;
            case 'g': unit = 1024ull * 1024 * 1024; break;
            default: return 0;
            }
        }
        return (size_t)(v * unit);
    }
    return 0;
}

/* The probe threads wait on a gate the creator holds until every thread exists. */
static void *wait_at_gate(void *gate)
{
    pthread_mutex_lock((pthread_mutex_t *)gate);
    pthread_mutex_unlock((pthread_mutex_t *)gate);
    return NULL;
}

static void sync_generation(void)
{
    unsigned g = atomic_load(&g_generation);
    if (t_generation != g) {
        t_generation = g;
        t_failed = 0;
    }
}

int af_threads_probe(int want)
{
    if (want <= t_started) return want;  /* this thread already started a team that large */
    sync_generation();
    pthread_t *tid = (pthread_t *)malloc((size_t)(want - 1) * sizeof *tid);
    int started = 0;
    if (tid) {
        pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
        pthread_attr_t attr;
        int attr_ok = pthread_attr_init(&attr) == 0;
        size_t stack = omp_stack_size();
        if (attr_ok && stack) pthread_attr_setstacksize(&attr, stack);
        /* the probe threads start with every signal blocked (none is handled there) */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_mutex_lock(&gate);
        while (started < want - 1
               && pthread_create(&tid[started], attr_ok ? &attr : NULL, wait_at_gate, &gate) == 0)
            started++;
        pthread_mutex_unlock(&gate);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
        if (attr_ok) pthread_attr_destroy(&attr);
        pthread_mutex_destroy(&gate);
        free(tid);
    }
    if (started < want - 1 && (!t_failed || want < t_failed)) t_failed = want;
    return started + 1;
}

int af_threads_expected(int want)
{
    if (want <= 1 || atomic_load(&g_forked)) return 1;
    sync_generation();
    return (t_failed && want >= t_failed && want > t_started) ? 1 : want;
}

int af_threads_for(int want)
{
    if (want <= 1) return 1;
    if (atomic_load_explicit(&g_forked, memory_order_relaxed)) return 1;
#ifdef _OPENMP
    /* nested: the enclosing team's threads run it (no new threads at the default nesting) */
    if (omp_in_parallel()) return want;
#endif
    if (want <= t_started) return want;  /* this thread's workers already exist */
    if (af_threads_expected(want) == 1) return 1;
    if (af_threads_probe(want) < want) return 1;
    t_started = want;
    atomic_store(&g_pool_maybe, 1);
    return want;
}
