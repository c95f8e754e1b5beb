/* tune.c: the policy of tune.h. A job starts on all threads; after a few calls it tries one
 * thread for a few calls, then keeps whichever was faster, and tries the other again later, so
 * it follows the machine when a second thread starts or stops paying off:
 * - each mode's time is the least of its last calls: two in a trial, AF_TUNE_LAST for the mode
 *   in use (the first call after a change of mode is not counted: it fetches the data that sat
 *   in the other core's cache);
 * - the other mode must be at least 10% faster to take over, so noise does not make it flip;
 * - the next trial comes after AF_TUNE_PERIOD calls, twice as many after each trial that kept
 *   the mode (up to AF_TUNE_PERIOD_MAX: a mode 1.6x slower then costs 0.2% in trials), or at
 *   once when the mode in use has been 25% slower than it was for AF_TUNE_SLOW_RUN calls in a
 *   row (a second thread that stops paying off takes twice the time, every call).
 * Noise comes in short bursts: batch-1 steps (~90 us) often take 40% longer two calls in a row.
 * With the least of two calls and one slow pair enough to start a trial, such pairs started
 * trials of the slower mode every few dozen steps and, caught at a trial's end, handed the job
 * to it. 784-512-256-10 SGD at batch 1 ran 0.89-0.95x as fast on two threads as on one in runs
 * with 46-76 two-thread steps an epoch of 1024 (the periods alone make 16); simulated, 2 slow
 * calls in every 20 put 83% of the calls in the slower mode (now 0.5%). */
#include "tune.h"

#include "pool.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AF_TUNE_START 4     /* calls on all threads before the first trial of one */
#define AF_TUNE_TRIAL 3     /* calls a trial lasts (the first one not counted) */
#define AF_TUNE_PERIOD 64   /* calls between trials, at first */
#define AF_TUNE_PERIOD_MAX 1024
#define AF_TUNE_SLOWER 1.25 /* a trial at once when the mode in use is this much slower... */
#define AF_TUNE_SLOW_RUN 8  /* ...in this many calls in a row */
#define AF_TUNE_MARGIN 0.9  /* the other mode takes over below this fraction of the time */

static atomic_ulong g_ones;
static _Atomic int g_enabled = -1;

double af_tune_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int af_tune_enabled(void)
{
    int v = atomic_load_explicit(&g_enabled, memory_order_relaxed);
    if (v < 0) {
        const char *s = getenv("ANNFAST_THREAD_TUNING");
        v = !(s && s[0] == '0' && s[1] == '\0');
        atomic_store_explicit(&g_enabled, v, memory_order_relaxed);
    }
    return v;
}

unsigned long af_tune_ones(void) { return atomic_load_explicit(&g_ones, memory_order_relaxed); }

int af_tune_mode(af_tune *t, uintptr_t key, size_t size)
{
    if (t->key != key || (size != t->size && ++t->other_size > AF_TUNE_START)) {
        memset(t, 0, sizeof *t);
        t->key = key;
        t->size = size;
        t->mode = 1;
        t->period = AF_TUNE_PERIOD;
    }
    t->skip = size != t->size;
    if (!t->skip) t->other_size = 0;
    return t->skip ? t->mode : t->probing ? 1 - t->mode : t->mode;
}

/* The least of the mode in use's last AF_TUNE_LAST times (those it has). */
static double tune_least(const double v[AF_TUNE_LAST])
{
    double m = v[0];
    for (int i = 1; i < AF_TUNE_LAST; i++)
        if (v[i] > 0 && v[i] < m) m = v[i];
    return m;
}

/* The end of a trial: the other mode takes over when clearly faster. */
static void tune_decide(af_tune *t)
{
    t->probing = 0;
    t->slow_run = 0;
    t->other = t->trial;
    t->calls = 0;
    t->ref = 0;
    t->seen = 0;       /* the first call after the trial fetches the data again */
    double cur = tune_least(t->last);
    if (t->other > 0 && cur > 0 && t->other < AF_TUNE_MARGIN * cur) {
        t->mode = 1 - t->mode;
        t->other = cur;
        memset(t->last, 0, sizeof t->last);
        t->period = AF_TUNE_PERIOD;
    } else if (t->period < AF_TUNE_PERIOD_MAX) {
        t->period *= 2;
    }
}

void af_tune_note(af_tune *t, double time)
{
    if (t->skip) return;
    if (t->probing) {
        if (++t->seen > 1 && (t->trial == 0 || time < t->trial)) t->trial = time;
        if (--t->left == 0) tune_decide(t);
        return;
    }
    int slower = 0;
    if (++t->seen > 1) {
        memmove(t->last + 1, t->last, (AF_TUNE_LAST - 1) * sizeof t->last[0]);
        t->last[0] = time;
        double cur = tune_least(t->last);
        if (t->seen > 2) {
            t->slow_run = t->ref > 0 && time > AF_TUNE_SLOWER * t->ref ? t->slow_run + 1 : 0;
            slower = t->slow_run >= AF_TUNE_SLOW_RUN;
        }
        if (t->seen > 2 && (t->ref == 0 || cur < t->ref)) t->ref = cur;
    }
    if ((slower || ++t->calls >= (t->other > 0 ? t->period : AF_TUNE_START)) && t->last[0] > 0) {
        t->probing = 1;
        t->left = AF_TUNE_TRIAL;
        t->seen = 0;
        t->trial = 0;
    }
}

af_tune_call af_tune_begin(af_tune *t, int threads, uintptr_t key, size_t size)
{
    af_tune_call c = {threads > 1 && af_tune_enabled(), 0, 0, threads, 0};
    if (!c.tuned) return c;
    if (af_tune_mode(t, key, size) == 0) {
        c.solo = 1;
        c.threads = 1;
        c.prev = af_pool_solo(1);
        atomic_fetch_add_explicit(&g_ones, 1, memory_order_relaxed);
    }
    c.t0 = af_tune_now();
    return c;
}

void af_tune_end(af_tune *t, const af_tune_call *c)
{
    if (c->tuned) af_tune_note(t, af_tune_now() - c->t0);
    if (c->solo) af_pool_solo(c->prev);
}

void af_tune_simulate(const double *one, const double *all, size_t n, unsigned char *modes)
{
    af_tune t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < n; i++) {
        int m = af_tune_mode(&t, 1, 1);
        modes[i] = (unsigned char)m;
        af_tune_note(&t, m ? all[i] : one[i]);
    }
}
