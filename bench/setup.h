/* A run's set-up and teardown on the main thread: the jobs, the driver and
 * device, each job's files opened the --api mode's way, its slots with
 * their requests and buffers. */
#ifndef UWDF_BENCH_SETUP_H
#define UWDF_BENCH_SETUP_H

#include "job.h"

/* numjobs jobs per definition. */
void jobs_create(struct bench_run *run, const struct jobdef *defs, unsigned ndefs);
/* The framework and every job's objects; -1 with a message (then
 * run_teardown). */
int run_setup(struct bench_run *run);
/* Releases what run_setup made, also after it failed. */
void run_teardown(struct bench_run *run);
/* After run_teardown, or when the run never started. */
void jobs_free(struct bench_run *run);

/* iodepth_batch_*: the engines' counts of the job's submissions and
 * completion rounds by size (UWDF_IO_BATCH_BUCKETS each) over its files
 * until now; false (zeroes) when the job sets no batching. */
bool job_batch_counts(const struct job *j, uint64_t *sub, uint64_t *comp);

/* UTF-8 path -> WCHAR (UTF-32) string (the caller frees it); NULL if the
 * bytes are not UTF-8. */
WCHAR *path_to_wide(const char *path);
/* Opens target t on path (read, or read and write; O_DIRECT with direct). */
NTSTATUS target_open_by_name(WDFIOTARGET t, const char *path, bool write, bool direct);
/* A WDF target of the run's device opened on path. */
NTSTATUS open_target(struct bench_run *run, const char *path, bool write, bool direct, WDFIOTARGET *out);
/* The size in bytes of what open target t reads and writes
 * (IOCTL_DISK_GET_LENGTH_INFO). */
NTSTATUS target_length(WDFIOTARGET t, uint64_t *len);

#endif
