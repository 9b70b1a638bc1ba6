/* The library's log: every line it prints, and the driver's DbgPrint text,
 * goes to one callback (UwdfSetLogCallback, uwdf.h); the default writes to
 * stderr. */
#include "ntrt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Lines are formatted here first: one write per line, so lines logged by
 * several threads do not interleave. Longer ones are allocated. */
#define LOG_LINE_MAX 1024

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static PUWDF_LOG_CALLBACK log_cb;
static PVOID log_ctx;

static void log_default(UWDF_LOG_LEVEL level, PCSTR message)
{
    if (level == UwdfLogDebugPrint)
        fputs(message, stderr);
    else
        fprintf(stderr, "uwdf: %s\n", message);
}

void uwdf_log_text(UWDF_LOG_LEVEL level, const char *message)
{
    /* A snapshot of the pair: the callback runs outside the lock, so it may
     * log (or be replaced) without deadlocking. */
    pthread_mutex_lock(&log_lock);
    PUWDF_LOG_CALLBACK cb = log_cb;
    PVOID ctx = log_ctx;
    pthread_mutex_unlock(&log_lock);
    if (cb)
        cb(level, message, ctx);
    else
        log_default(level, message);
}

void uwdf_log_at_v(UWDF_LOG_LEVEL level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    char *long_line = NULL;
    if (n >= (int)sizeof(line)) {
        /* Plain malloc: a log line is not a framework allocation, and the
         * fault injector must not swallow the report of its own failure. */
        long_line = malloc((size_t)n + 1);
        if (long_line)
            vsnprintf(long_line, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    uwdf_log_text(level, long_line ? long_line : line);
    free(long_line);
}

void uwdf_log_at(UWDF_LOG_LEVEL level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    uwdf_log_at_v(level, fmt, ap);
    va_end(ap);
}

void uwdf_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    uwdf_log_at_v(UwdfLogWarning, fmt, ap);
    va_end(ap);
}

VOID UwdfSetLogCallback(PUWDF_LOG_CALLBACK Callback, PVOID Context)
{
    pthread_mutex_lock(&log_lock);
    log_cb = Callback;
    log_ctx = Context;
    pthread_mutex_unlock(&log_lock);
}
