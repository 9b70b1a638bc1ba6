/* While the jobs run, the main thread samples their bandwidth and IOPS
 * every 500 ms (fio's defaults), prints fio's status line to stderr (the
 * ETA line) and opens the CPU window once the ramp ends. */
#ifndef UWDF_BENCH_ETA_H
#define UWDF_BENCH_ETA_H

#include <stdint.h>
#include <sys/resource.h>

struct bench_run;

/* Returns when every job is done. ru_start and cpu_t0: the CPU window's
 * start, moved to the end of the longest ramp. */
void monitor(struct bench_run *run, uint64_t t_start, struct rusage *ru_start, uint64_t *cpu_t0);

#endif
