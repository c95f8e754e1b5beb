/* interrupt.c: per-call stop tokens that long C loops poll, and a temporary SIGINT handler.
 *
 * Each thread has its own current token (thread-local), so a stop requested for one thread's
 * call never stops another thread's. Python cannot run its own SIGINT handler while C holds the
 * main thread, so around such a call the boundary installs on_sigint: it only sets g_sigint
 * (async-signal-safe whichever thread the kernel delivers SIGINT to), and only the thread that
 * installed the handler reads it in af_stop_requested(). See annfast.h for the contract. */
#include "annfast.h"

#include <signal.h>
#include <stdatomic.h>

/* The kernel may run on_sigint on any thread: the flag it sets is read by another one, so it is
 * a lock-free atomic (which C11 allows in a signal handler), not just volatile sig_atomic_t. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "on_sigint needs a lock-free atomic int");

static _Thread_local af_stop_token *t_token;  /* the calling thread's current call */
static _Thread_local int t_owner;             /* this thread installed on_sigint */
static atomic_int g_sigint;                   /* SIGINT arrived while on_sigint was installed */
static void (*g_prev_handler)(int) = SIG_DFL;
static int g_installed;                        /* set and cleared by the installing thread */

af_stop_token *af_stop_bind(af_stop_token *tok)
{
    af_stop_token *prev = t_token;
    t_token = tok;
    return prev;
}

void af_request_stop(void)
{
    if (t_token) t_token->stop = 1;
}

int af_stop_requested(void)
{
    const af_stop_token *t = t_token;
    return (t && t->stop) || (t_owner && atomic_load_explicit(&g_sigint, memory_order_relaxed));
}

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store_explicit(&g_sigint, 1, memory_order_relaxed);
}

int af_sigint_install(void)
{
    if (g_installed) return 0;
    atomic_store(&g_sigint, 0);
    void (*prev)(int) = signal(SIGINT, on_sigint);
    if (prev == SIG_ERR) return -1;
    g_prev_handler = prev;
    g_installed = 1;
    t_owner = 1;
    return 1;
}

int af_sigint_restore(void)
{
    if (!t_owner) return 0;
    signal(SIGINT, g_prev_handler);
    t_owner = 0;
    g_installed = 0;
    /* taken after the handler is gone, so every SIGINT it handled counts (except one whose
     * handler is still running on another CPU at this very instant) */
    int seen = atomic_exchange(&g_sigint, 0) != 0;
    if (seen && t_token) t_token->stop = t_token->sigint = 1;
    return seen;
}
