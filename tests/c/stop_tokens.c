/* stop_tokens.c: the stop-token contract of csrc/interrupt.c, from C with two threads.
 * A token is per thread and per call; af_request_stop() sets only the calling thread's token;
 * SIGINT, whichever thread the kernel runs the handler on, stops only the calls of the thread
 * that installed it. Prints "ok" on success. */
#include "annfast.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#define CHECK(c) do { if (!(c)) { printf("FAIL line %d: %s\n", __LINE__, #c); return 1; } } while (0)

static pthread_barrier_t step;
static int worker_before, worker_after_own_stop, worker_token_stop;

/* A worker thread with its own call: raises SIGINT itself while main has the handler installed. */
static void *worker(void *arg)
{
    (void)arg;
    af_stop_token tok = {0, 0};
    af_stop_token *prev = af_stop_bind(&tok);
    pthread_barrier_wait(&step);            /* 1: main has installed the handler */
    raise(SIGINT);                          /* the handler runs on this thread */
    worker_before = af_stop_requested();    /* not this thread's Ctrl-C */
    pthread_barrier_wait(&step);            /* 2: main looks at its own call */
    af_request_stop();
    worker_after_own_stop = af_stop_requested();
    worker_token_stop = tok.stop;
    af_stop_bind(prev);
    pthread_barrier_wait(&step);            /* 3 */
    return NULL;
}

int main(void)
{
    /* binding, nesting, request_stop without a token */
    CHECK(!af_stop_requested());
    af_request_stop();
    CHECK(!af_stop_requested());
    af_stop_token a = {0, 0}, b = {0, 0};
    CHECK(af_stop_bind(&a) == NULL);
    af_request_stop();
    CHECK(a.stop == 1 && af_stop_requested());
    CHECK(af_stop_bind(&b) == &a);          /* an inner call has its own token */
    CHECK(!af_stop_requested());
    CHECK(af_stop_bind(&a) == &b && af_stop_requested());
    CHECK(af_stop_bind(NULL) == &a && !af_stop_requested());

    /* SIGINT goes to the installing thread's call; the worker's request stays its own */
    af_stop_token m = {0, 0};
    pthread_t th;
    CHECK(pthread_barrier_init(&step, NULL, 2) == 0);
    CHECK(pthread_create(&th, NULL, worker, NULL) == 0);
    af_stop_bind(&m);
    CHECK(af_sigint_install() == 1);
    CHECK(af_sigint_install() == 0);        /* one installation at a time */
    CHECK(!af_stop_requested());
    pthread_barrier_wait(&step);            /* 1 */
    pthread_barrier_wait(&step);            /* 2 */
    CHECK(af_stop_requested());             /* the worker's raise(SIGINT) reached this call */
    pthread_barrier_wait(&step);            /* 3 */
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(worker_before == 0 && worker_after_own_stop == 1 && worker_token_stop == 1);
    CHECK(m.stop == 0 && m.sigint == 0);    /* the worker's af_request_stop() left it alone */
    CHECK(af_sigint_restore() == 1 && m.stop == 1 && m.sigint == 1);
    CHECK(af_sigint_restore() == 0);        /* nothing installed any more */

    /* a fresh installation starts clean; a SIGINT ignored by the previous disposition too */
    af_stop_token n = {0, 0};
    af_stop_bind(&n);
    signal(SIGINT, SIG_IGN);
    CHECK(af_sigint_install() == 1 && !af_stop_requested());
    CHECK(af_sigint_restore() == 0 && n.stop == 0);
    raise(SIGINT);                          /* back to SIG_IGN: nothing happens */
    CHECK(!af_stop_requested());
    af_stop_bind(NULL);
    pthread_barrier_destroy(&step);
    printf("ok\n");
    return 0;
}
