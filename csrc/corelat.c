/* corelat.c: how long a write on one core takes to be seen and answered by another (a diagnostic
 * the benchmarks print, af_core_round_trip_ns in annfast.h).
 *
 * A product split between threads hands data from core to core several times per training step
 * (a layer's output, read by every thread of the next layer's product; the end of each job). On
 * one machine that costs little; between the two vCPUs of a VM placed on different core
 * complexes it costs several times more: 2-thread results measured on such a placement are not
 * comparable with those of another. Two fresh threads, each pinned to one of the first two CPUs
 * the process may use, pass a counter back and forth; the caller's own affinity is untouched. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <time.h>

#include "annfast.h"

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>

typedef struct {
    _Alignas(64) atomic_long turn;    /* odd: the second thread's move; even: the first's */
    _Alignas(64) long rounds;
    int cpu[2];
    atomic_int pinned;                /* threads pinned to their CPU */
    atomic_int failed;                /* a thread could not pin itself, or ran out of time */
    double ns;                        /* mean round trip, set by the first thread */
} corelat;

static double corelat_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* Spin until turn == want; 0 when the other thread failed, or after 0.2 s without the answer
 * (the clock is read only every 65536 spins, when the other thread is slow anyway). */
static int corelat_wait(corelat *c, long want)
{
    double start = 0;
    for (unsigned long spins = 1;; spins++) {
        if (atomic_load_explicit(&c->turn, memory_order_acquire) == want) return 1;
        if ((spins & 65535) == 0) {
            double t = corelat_now();
            if (atomic_load_explicit(&c->failed, memory_order_relaxed)) return 0;
            if (start == 0) {
                start = t;
            } else if (t - start > 2e8) {
                atomic_store(&c->failed, 1);
                return 0;
            }
        }
    }
}

static void *corelat_run(void *arg, int who)
{
    corelat *c = (corelat *)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(c->cpu[who], &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) atomic_store(&c->failed, 1);
    atomic_fetch_add(&c->pinned, 1);
    while (atomic_load(&c->pinned) < 2 && !atomic_load(&c->failed)) sched_yield();
    if (atomic_load(&c->failed)) return NULL;
    double begin = corelat_now(), t0 = begin;
    for (long r = 0; r < c->rounds; r++) {
        if (who == 0 && r == c->rounds / 4) t0 = corelat_now(); /* the first quarter warms up */
        if (who == 0 && (r & 1023) == 1023 && corelat_now() - begin > 1e9) { /* a crowded machine */
            atomic_store(&c->failed, 1);
            return NULL;
        }
        if (!corelat_wait(c, 2 * r + who)) return NULL;
        atomic_store_explicit(&c->turn, 2 * r + who + 1, memory_order_release);
    }
    if (who == 0 && corelat_wait(c, 2 * c->rounds)) c->ns = (corelat_now() - t0) / (double)(c->rounds - c->rounds / 4);
    return NULL;
}

static void *corelat_first(void *arg) { return corelat_run(arg, 0); }
static void *corelat_second(void *arg) { return corelat_run(arg, 1); }

double af_core_round_trip_ns(long rounds)
{
    cpu_set_t allowed;
    corelat c;
    int n = 0;
    if (rounds < 4 || sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
    for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
        if (CPU_ISSET(i, &allowed)) c.cpu[n++] = i;
    if (n < 2) return -1;
    atomic_init(&c.turn, 0);
    atomic_init(&c.pinned, 0);
    atomic_init(&c.failed, 0);
    c.rounds = rounds;
    c.ns = -1;
    pthread_t t[2];
    if (pthread_create(&t[0], NULL, corelat_first, &c) != 0) return -1;
    if (pthread_create(&t[1], NULL, corelat_second, &c) != 0) {
        atomic_store(&c.failed, 1);
        pthread_join(t[0], NULL);
        return -1;
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    return atomic_load(&c.failed) ? -1 : c.ns;
}
#else
double af_core_round_trip_ns(long rounds)
{
    (void)rounds;
    return -1;
}
#endif
