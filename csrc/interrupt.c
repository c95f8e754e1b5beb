/* interrupt.c: a stop flag that long C loops poll, and a temporary SIGINT handler that sets it.
 * Python cannot run its own signal handler while C holds the thread, so during a training call
 * Ctrl-C is routed here; the loop stops at the next epoch boundary and reports AF_EINTR. */
#include "annfast.h"

#include <signal.h>

static volatile sig_atomic_t g_stop = 0;
static volatile sig_atomic_t g_sigint_seen = 0;
static void (*g_prev_handler)(int) = SIG_DFL;
static int g_installed = 0;

void af_request_stop(void) { g_stop = 1; }
void af_clear_stop(void) { g_stop = 0; }
int af_stop_requested(void) { return g_stop != 0; }

static void on_sigint(int sig)
{
    (void)sig;
    g_sigint_seen = 1;
    g_stop = 1;
}

int af_sigint_install(void)
{
    if (g_installed) return 0; /* nested or concurrent call: the outer one owns the handler */
    g_sigint_seen = 0;
    void (*prev)(int) = signal(SIGINT, on_sigint);
    if (prev == SIG_ERR) return -1;
    g_prev_handler = prev;
    g_installed = 1;
    return 1;
}

int af_sigint_restore(void)
{
    if (!g_installed) return 0;
    signal(SIGINT, g_prev_handler);
    g_installed = 0;
    int seen = g_sigint_seen != 0;
    g_sigint_seen = 0;
    return seen;
}
