/* SIGINT and SIGTERM: the first asks the jobs to stop, a second removes
 * the files this run generated and exits at once. This state is
 * process-wide: only the handler's globals can reach it. */
#ifndef UWDF_BENCH_INTERRUPT_H
#define UWDF_BENCH_INTERRUPT_H

#include <stdbool.h>

/* 0 run; 1 stop requested. */
extern int g_stop;

static inline bool stop_requested(void)
{
    return __atomic_load_n(&g_stop, __ATOMIC_RELAXED);
}

/* Installs the handler (on the main thread, before any job thread). */
void interrupt_catch(void);
/* A file this run generated: removed by remove_generated_files, or by the
 * handler on a second signal. */
void remove_later(const char *path);
void remove_generated_files(void);

#endif
