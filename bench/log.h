/* fio's windowed latency, bandwidth and IOPS logs (write_lat_log,
 * write_bw_log, write_iops_log with log_avg_msec): "time (ms), value,
 * direction, block size, [offset,] priority" lines, one per direction that
 * did I/O in each window, written by the monitor thread from the shards'
 * running totals; or, with log_avg_msec=0 (fio's default), one line per
 * I/O, written as it completes. write_hist_log: fio's clat histogram
 * log, "time, direction, block size, bucket counts..." per log_hist_msec
 * window. */
#ifndef UWDF_BENCH_LOG_H
#define UWDF_BENCH_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "options.h"

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
/* Whether the job logs every I/O (logs_io): latency, bandwidth or IOPS
 * logs without log_avg_msec (the histogram log is always windowed). */
static inline bool logs_per_io(const struct job_logs *L, const struct job_opts *o)
{
    return L && !o->log_avg_msec && (o->lat_log || o->bw_log || o->iops_log);
}
/* How often the monitor must look at the job's logs (0: no logs). */
uint64_t logs_tick_ns(const struct job *j);
/* Closes the files; false when writing one failed (message printed). */
bool logs_close(struct job *j);

#endif
