/* SIGINT and SIGTERM (interrupt.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "interrupt.h"
#include "util.h"

/* The generated files, removed from the handler too (unlink is
 * async-signal-safe). */
#define MAX_REMOVE 65536 /* as many as one job's --nrfiles makes */
static const char *g_remove_paths[MAX_REMOVE];
static volatile sig_atomic_t g_nremove;

int g_stop;
static volatile sig_atomic_t g_signals;

static void on_signal(int sig)
{
    (void)sig;
    if (++g_signals == 1) {
        __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
        return;
    }
    for (sig_atomic_t i = 0; i < g_nremove; i++)
        unlink(g_remove_paths[i]);
    _exit(130);
}

void interrupt_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void remove_later(const char *path)
{
    if (g_nremove < MAX_REMOVE) {
        g_remove_paths[g_nremove] = path;
        g_nremove = g_nremove + 1;
    }
}

void remove_generated_files(void)
{
    for (sig_atomic_t i = 0; i < g_nremove; i++)
        if (unlink(g_remove_paths[i]) != 0 && errno != ENOENT)
            errmsg("cannot remove '%s': %s", g_remove_paths[i], strerror(errno));
    g_nremove = 0;
}
