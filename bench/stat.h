/* uwdf-bench's statistics: latency accumulators and histograms per
 * direction, each written by one thread only (a shard), merged into the
 * reports; the periodic bandwidth and IOPS samples; CPU use.
 *
 * --status-interval reads the shards while their threads write them: each
 * shard is a seqlock with one writer. The writer makes its sequence odd,
 * stores every field with a release store (a plain store on x86: no lock,
 * no fence on the I/O path), then makes it even; the reader copies the
 * counters until the sequence is the same even value before and after
 * (shard_read). The histograms are too big to copy under the sequence
 * (each ~43 KiB): they are copied bucket by bucket after the counters, so
 * they hold at least the counted I/Os (the percentiles' ranks fall inside
 * them) plus those completed during the copy. */
#ifndef UWDF_BENCH_STAT_H
#define UWDF_BENCH_STAT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "histogram.h"

/* Directions with their own statistics (fio's read/write/trim). A flush is
 * DDIR_SYNC: a slot's operation too, with its own latency record. */
enum ddir { DDIR_READ = 0, DDIR_WRITE = 1, DDIR_TRIM = 2, DDIR_N = 3, DDIR_SYNC = 3 };
const char *ddir_name(int dd);


struct lat_acc {
    uint64_t n, min, max, sum;
    union {
        unsigned __int128 sumsq;
        uint64_t sumsq_w[2]; /* its words, each stored atomically (little-endian: low first) */
    };
};

/* fio's IO depth buckets: 0:1 1:2 2:4 3:8 4:16 5:32 6:>=64 */
#define N_DEPTH 7
static inline unsigned depth_bucket(unsigned depth)
{
    return depth >= 64 ? 6 : 31 - (unsigned)__builtin_clz(depth | 1);
}

/* CPU use of one thread (getrusage RUSAGE_THREAD, taken on that thread):
 * from begin to its latest end. */
struct thread_cpu {
    struct rusage begin, end;
    pid_t tid; /* the thread: one completion thread may serve many files */
    bool on;
};

static inline void thread_cpu_begin(struct thread_cpu *c)
{
    c->tid = gettid();
    getrusage(RUSAGE_THREAD, &c->begin);
    c->end = c->begin;
    __atomic_store_n(&c->on, true, __ATOMIC_RELEASE); /* --status-interval reads tid and begin */
}

static inline void thread_cpu_end(struct thread_cpu *c)
{
    if (c->on)
        getrusage(RUSAGE_THREAD, &c->end);
}

struct ddir_acc {
    uint64_t ios, bytes; /* read by the monitor while the job runs */
    struct lat_acc slat, clat, lat;
    uint64_t *clat_hist, *lat_hist;
};

/* Statistics written by one thread only: a job has one shard per thread
 * that accounts for its I/O (the job thread and the completion threads,
 * job_shard in io.h). */
struct shard {
    unsigned seq; /* odd while its thread updates the counters (the seqlock) */
    struct ddir_acc d[DDIR_N];
    struct ddir_acc sync; /* flushes: ios, lat and lat_hist only */
    uint64_t depth_map[N_DEPTH]; /* I/Os by the job's depth when each was sent */
    /* a completion thread's CPU: from the first completion it ran for the
     * job to the job's last slot it retired */
    struct thread_cpu cpu;
    pid_t owner; /* the thread that claimed it (job_shard) */
    bool spill;  /* the last, shared by threads beyond the expected */
    char pad[64]; /* keep neighbours' hot counters off this line */
};

void lat_init(struct lat_acc *a);
void lat_merge(struct lat_acc *dst, const struct lat_acc *src);
double lat_mean(const struct lat_acc *a);
double lat_stddev(const struct lat_acc *a);
uint64_t lat_min(const struct lat_acc *a);
void ddir_acc_init(struct ddir_acc *d);
void ddir_acc_free(struct ddir_acc *d);
/* With histograms the caller owns (HIST_N zeroed buckets each). */
void ddir_acc_init_in(struct ddir_acc *d, uint64_t *clat_hist, uint64_t *lat_hist);
void ddir_acc_merge(struct ddir_acc *dst, const struct ddir_acc *src);

/* A counter of a shard, stored by its one writer: release, so a reader
 * that sees it also sees the odd sequence stored before it. */
static inline void stat_put(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, v, __ATOMIC_RELEASE);
}

static inline __attribute__((always_inline)) void lat_add(struct lat_acc *a, uint64_t v)
{
    if (v < a->min)
        stat_put(&a->min, v);
    if (v > a->max)
        stat_put(&a->max, v);
    stat_put(&a->n, a->n + 1);
    stat_put(&a->sum, a->sum + v);
    unsigned __int128 q = a->sumsq + (unsigned __int128)v * v;
    stat_put(&a->sumsq_w[0], (uint64_t)q);
    stat_put(&a->sumsq_w[1], (uint64_t)(q >> 64));
}

/* The writer's side of the shard's seqlock (its one thread). */
static inline void shard_write_begin(struct shard *sh)
{
    __atomic_store_n(&sh->seq, sh->seq + 1, __ATOMIC_RELAXED);
}

static inline void shard_write_end(struct shard *sh)
{
    __atomic_store_n(&sh->seq, sh->seq + 1, __ATOMIC_RELEASE);
}

/* The hot path: one completed I/O, inside the caller's shard_write_begin
 * and shard_write_end (with its depth, shard_put_depth: one update of the
 * shard per I/O). slat is skipped when has_slat is false (synchronous
 * sends). */
static inline __attribute__((always_inline)) void shard_put_io(struct shard *sh, int dd, uint64_t bytes, bool has_slat, uint64_t slat,
                                uint64_t clat, uint64_t lat)
{
    struct ddir_acc *d = &sh->d[dd];
    stat_put(&d->ios, d->ios + 1);
    stat_put(&d->bytes, d->bytes + bytes);
    if (has_slat)
        lat_add(&d->slat, slat);
    lat_add(&d->clat, clat);
    lat_add(&d->lat, lat);
    uint64_t *c = &d->clat_hist[hist_index(clat)];
    stat_put(c, *c + 1);
    c = &d->lat_hist[hist_index(lat)];
    stat_put(c, *c + 1);
}

/* One completed flush: its whole latency (fio's sync_stat); as shard_put_io. */
static inline void shard_put_sync(struct shard *sh, uint64_t lat)
{
    struct ddir_acc *d = &sh->sync;
    stat_put(&d->ios, d->ios + 1);
    lat_add(&d->lat, lat);
    uint64_t *c = &d->lat_hist[hist_index(lat)];
    stat_put(c, *c + 1);
}

/* An I/O in the depth bucket b (fio's IO depths); as shard_put_io. */
static inline void shard_put_depth(struct shard *sh, unsigned b)
{
    stat_put(&sh->depth_map[b], sh->depth_map[b] + 1);
}

/* A consistent copy of a running shard's counters into dst, whose
 * histograms (made by ddir_acc_init) get the buckets after them. */
void shard_read(struct shard *dst, const struct shard *src);

/* Periodic samples (bandwidth and IOPS every 500 ms, as fio's defaults). */
struct sample_acc {
    uint64_t n;
    double min, max, sum, sumsq;
};

void sample_add(struct sample_acc *s, double v);
void sample_merge(struct sample_acc *dst, const struct sample_acc *src);
double sample_mean(const struct sample_acc *s);
double sample_stddev(const struct sample_acc *s);

struct cpu_use {
    double usr_pct, sys_pct, usr_s, sys_s;
    uint64_t ctx, majf, minf, window_ms;
};

void cpu_snapshot(struct rusage *ru);
void cpu_compute(const struct rusage *a, const struct rusage *b, uint64_t wall_ns, struct cpu_use *c);
/* Adds a thread's use (usr_s, sys_s and the counts; not the percentages). */
void cpu_add_thread(struct cpu_use *c, const struct thread_cpu *t);

/* What the engines sent for a job's files since they opened
 * (UwdfIoTargetGetStatistics): whether --fixedbufs / --registerfiles went
 * down as fixed operations. */
struct target_counts {
    uint64_t ops, fixed_buffer_ops, fixed_file_ops, registered_buffers, registered_files;
};

struct job;
struct bench_run;

/* One reported entry: a job, or a group with group_reporting. */
struct report {
    const struct job *first;
    const char *name;
    unsigned groupid, njobs, nslots, nfiles;
    int error;
    NTSTATUS err_status;
    struct ddir_acc d[DDIR_N];
    struct ddir_acc sync; /* flushes */
    uint64_t runtime_ns;
    struct sample_acc bw[DDIR_N], iops[DDIR_N];
    uint64_t verified, verify_errors;
    uint64_t depth_map[N_DEPTH];
    /* iodepth_batch_*: submissions and completion rounds in fio's buckets
     * (0, 1-4, 5-8, 9-16, 17-32, 33-64, more), when batch_counted */
    bool batch_counted;
    uint64_t submit_map[N_DEPTH], complete_map[N_DEPTH];
    struct target_counts target; /* the jobs' (struct job) */
    struct cpu_use cpu; /* the jobs' threads (struct job's and the shards') */
    uint64_t cpu_wall_ns; /* the jobs' lifetimes, summed: the percentages' base */
};

/* One report per job, or one for all with group_reporting. */
unsigned build_reports(const struct bench_run *run, struct report **out);
void free_reports(struct report *r, unsigned n);
/* The reports in each format the command line asked for. */
void print_reports(FILE *out, const struct bench_run *run, const struct cpu_use *cpu);
/* The measured window: from the end of the ramp to the last completion. */
uint64_t job_runtime_ns(const struct job *j);
/* Milliseconds for display: at least 1 once anything ran (as fio). */
uint64_t ns_to_ms(uint64_t ns);
uint64_t bw_bytes(uint64_t bytes, uint64_t ns);
double iops_of(uint64_t ios, uint64_t ns);
/* Sum of a group's jobs' bandwidth in a direction (fio's per= / bw_agg). */
double group_bw_kib(const struct bench_run *run, unsigned groupid, int d);

/* The latency distribution in fio's buckets (of total latency). */
#define N_LAT_B 10
#define N_LAT_MS 12 /* the last is >= 2000 */
extern const uint64_t lat_bounds[N_LAT_B];
extern const uint64_t lat_ms_bounds[N_LAT_MS - 1];

struct lat_dist {
    double ns[N_LAT_B], us[N_LAT_B], ms[N_LAT_MS];
};
void lat_distribution(const struct report *r, struct lat_dist *ld);
/* The configured depth (fio's latency_depth). */
unsigned report_depth(const struct report *r);
/* fio's IO depths: the percentage of the report's I/Os in each bucket. */
void depth_distribution(const struct report *r, double pct[N_DEPTH]);
/* fio's submit / complete lines: the percentage of the report's
 * submissions or completion rounds in each bucket. */
void map_distribution(const uint64_t map[N_DEPTH], double pct[N_DEPTH]);

#endif
