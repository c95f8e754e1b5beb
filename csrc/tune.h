/* tune.h: one thread or all of them for a job repeated many times with the same shapes (a
 * training step: engine_impl.h, engine_split_impl.h), chosen by timing both (tune.c).
 *
 * Which threads run a job never changes its results (every job cuts its work the same way
 * whatever the thread count), so the choice is free: it only has to be the faster one. A second
 * thread pays off or not depending on where the machine puts it: two vCPUs of one VM measured a
 * 50 ns core-to-core round trip one minute and 330 ns the next (the hypervisor moves them), and
 * the same training step then ran 0.6x or 1.16x the one-thread time on two threads. */
#ifndef AF_TUNE_H
#define AF_TUNE_H

#include <stddef.h>
#include <stdint.h>

/* Calls of the mode in use whose least time is its time. */
#define AF_TUNE_LAST 4

typedef struct {
    uintptr_t key;       /* the job being timed; another key starts over */
    size_t size;         /* its usual size (the batch); calls of another size are not timed */
    unsigned other_size; /* calls of another size in a row (many: that size becomes the usual) */
    int skip;            /* this call is of another size */
    int mode;            /* the mode in use: 0 one thread, 1 all */
    int probing;         /* calls are trying the other mode */
    unsigned left;       /* calls left to try it */
    unsigned seen;       /* calls made in the current mode since it changed */
    unsigned calls;      /* calls made in the mode in use since the last trial */
    unsigned slow_run;   /* calls in a row of the mode in use AF_TUNE_SLOWER slower than ref */
    double last[AF_TUNE_LAST]; /* the mode in use: its last times, newest first (0: none yet) */
    double trial;        /* the other mode: the least time of its trial so far */
    double other;        /* the other mode: its time at its last trial (0: never tried) */
    double ref;          /* the mode in use: its least time since the last trial */
    unsigned period;     /* calls between trials */
} af_tune;

/* The mode of this call of job `key` on `size` items (0 one thread, 1 all); follow it with
 * af_tune_note. A call of another size than the job's usual one (an epoch's last, smaller
 * batch) takes the mode in use and is not timed. */
int af_tune_mode(af_tune *t, uintptr_t key, size_t size);
/* The call's time (af_tune_now() after it minus before it). */
void af_tune_note(af_tune *t, double time);
/* Seconds on a monotonic clock, for timing the calls. */
double af_tune_now(void);

/* One timed call of job `key` on `size` items, as the training steps use it:
 *     af_tune_call c = af_tune_begin(&tune, threads, key, size);
 *     ... the job, on c.threads threads ...
 *     af_tune_end(&tune, &c);
 * threads: what the job would run on (af_get_num_threads()). It is timed only when that is more
 * than one and tuning is on (af_tune_enabled); then a call in mode 0 runs on this thread alone,
 * its kernels included (af_pool_solo, restored by af_tune_end), and counts in af_tune_ones. */
typedef struct {
    int tuned, solo, prev, threads;
    double t0;
} af_tune_call;
af_tune_call af_tune_begin(af_tune *t, int threads, uintptr_t key, size_t size);
void af_tune_end(af_tune *t, const af_tune_call *c);

#endif
