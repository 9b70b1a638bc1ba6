/* --status-interval: fio's interim reports of the running jobs (status.c). */
#ifndef UWDF_BENCH_STATUS_H
#define UWDF_BENCH_STATUS_H

#include <stdint.h>
#include <sys/resource.h>

struct bench_run;
struct status_snap;

/* Prints every job's statistics so far to run->out in the run's formats,
 * as the final report would; *snap is made at the first call (the copy
 * of the jobs' statistics, reused), freed by status_free. The process
 * CPU is counted from ru_start at cpu_t0. */
void status_print(struct status_snap **snap, const struct bench_run *run, uint64_t now,
                  const struct rusage *ru_start, uint64_t cpu_t0);
void status_free(struct status_snap *snap, const struct bench_run *run);

#endif
