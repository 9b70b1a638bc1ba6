/* The run (run.c): the job threads and their phases. */
#ifndef UWDF_BENCH_RUN_H
#define UWDF_BENCH_RUN_H

#include <stdbool.h>

#include "job.h"

/* Starts every job's thread, monitors them until they are done, and
 * measures the CPU the process used meanwhile (after the longest ramp). */
void run_jobs(struct bench_run *run, struct cpu_use *cpu);
/* Whether a job recorded an error (the exit status is then 1). */
bool run_failed(const struct bench_run *run);
/* After an interrupt: jobs waiting for a stonewall give up. */
void run_wake_waves(struct bench_run *run);
/* The monitor's pause: ns, or less when a job ends meanwhile (the final
 * report then follows the last job's end at once, not at the next tick). */
void run_pause(struct bench_run *run, uint64_t ns);

#endif
