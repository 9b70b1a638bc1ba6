/* fio's windowed latency, bandwidth and IOPS logs (write_lat_log,
 * write_bw_log, write_iops_log with log_avg_msec): "time (ms), value,
 * direction, block size, [offset,] priority" lines, one per direction that
 * did I/O in each window, written by the monitor thread from the shards'
 * running totals; or, with log_avg_msec=0 (fio's default), one line per
 * I/O, written as it completes. */
#ifndef UWDF_BENCH_LOG_H
#define UWDF_BENCH_LOG_H

#include <stdbool.h>
#include <stdint.h>

struct job;
struct job_logs;

/* Creates the job's log files (none: nothing to do); number is fio's
 * thread number (1-based over the run). -1 when one cannot be created
 * (message printed). */
int logs_open(struct job *j, unsigned number);
/* The window's entries when it is due at now (final: the job ended, the
 * partial last window too, at its finish time). */
void logs_sample(struct job *j, uint64_t now, bool final);
/* log_avg_msec=0: the entries of one I/O that completed at tc (after the
 * ramp); d its direction. */
void logs_io(struct job *j, int d, uint32_t bytes, uint64_t offset, bool has_slat, uint64_t slat,
             uint64_t clat, uint64_t tc);
/* Whether the job logs every I/O (logs_io). */
static inline bool logs_per_io(const struct job_logs *L, unsigned log_avg_msec)
{
    return L && !log_avg_msec;
}
/* The period the monitor must look at least this often (0: no logs). */
uint64_t logs_tick_ns(const struct job *j);
/* Closes the files; false when writing one failed (message printed). */
bool logs_close(struct job *j);

#endif
