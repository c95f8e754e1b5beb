/* profile.c: per-kind time of the forward and backward calls (profile.h). A mutex guards the
 * table: two models may train on two threads at once. */
#include "profile.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "annfast.h"

#define AF_PROFILE_KINDS 64

typedef struct {
    const af_layer_ops *ops;
    double seconds[2]; /* forward, backward */
    unsigned long calls[2];
} prof_row;

_Atomic int af_profile_on;
static int g_cpu; /* time the calling thread's CPU use instead of the wall clock */
static prof_row g_rows[AF_PROFILE_KINDS];
static size_t g_n;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

double af_profile_now(void)
{
    struct timespec t;
    clock_gettime(g_cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void af_profile_add(const af_layer_ops *ops, int backward, double t0)
{
    double dt = af_profile_now() - t0;
    pthread_mutex_lock(&g_mu);
    size_t k = 0;
    while (k < g_n && g_rows[k].ops != ops) k++;
    if (k == g_n && g_n < AF_PROFILE_KINDS) g_rows[g_n++].ops = ops;
    if (k < g_n) {
        g_rows[k].seconds[backward != 0] += dt;
        g_rows[k].calls[backward != 0]++;
    }
    pthread_mutex_unlock(&g_mu);
}

void af_profile_enable(int on)
{
    pthread_mutex_lock(&g_mu);
    if (on) memset(g_rows, 0, sizeof g_rows), g_n = 0, g_cpu = on == 2;
    atomic_store_explicit(&af_profile_on, on != 0, memory_order_relaxed);
    pthread_mutex_unlock(&g_mu);
}

int af_profile_row(size_t k, const char **name, double seconds[2], unsigned long calls[2])
{
    pthread_mutex_lock(&g_mu);
    int ok = k < g_n;
    if (ok) {
        *name = g_rows[k].ops->name;
        memcpy(seconds, g_rows[k].seconds, sizeof g_rows[k].seconds);
        memcpy(calls, g_rows[k].calls, sizeof g_rows[k].calls);
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}
