/* uwdf-bench's options: what a job can be told (struct job_opts), the
 * process-wide options of the command line (struct global_opts), and their
 * tables, read by the generic parser (parse.h). */
#ifndef UWDF_BENCH_OPTIONS_H
#define UWDF_BENCH_OPTIONS_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse.h"
#include "randdist.h"

struct strpool;

enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RW, RW_RANDRW, RW_TRIM, RW_RANDTRIM,
               RW_TRIMWRITE };
enum api_mode { API_ASYNC, API_SYNC, API_FLT, API_STACK };
/* Where --api=async's clat starts (docs/bench.md). */
enum clat_start { CLAT_START_HANDOVER, CLAT_START_SEND };
enum engine_sel { ENGINE_DEFAULT, ENGINE_IO_URING, ENGINE_LIBAIO, ENGINE_NULL, ENGINE_NBD, ENGINE_RBD };
enum verify_mode { VERIFY_NONE, VERIFY_CRC32C };
/* fio's sync=: O_SYNC / O_DSYNC writes. uwdf has one kind: write-through. */
enum sync_mode { SYNC_NONE, SYNC_SYNC, SYNC_DSYNC };
/* The flush a slot owes (fsync=N / fdatasync=N). */
enum flush_kind { FLUSH_NONE, FLUSH_FSYNC, FLUSH_FDATASYNC };
/* Which file a job's next I/O goes to (fio's file_service_type). */
enum fsvc_mode { FSVC_ROUNDROBIN, FSVC_RANDOM, FSVC_SEQUENTIAL };

#define MAX_NRFILES 65536 /* generated files per job (--nrfiles) */

extern const char *const rw_names[];
extern const char *const api_names[];
extern const char *const engine_names[];
extern const char *const sync_names[];
extern const char *const flush_names[];

/* percentile_list: at most fio's FIO_IO_U_LIST_MAX_LEN entries */
#define PCT_MAX 20

#define BSSPLIT_MAX 64 /* fio's limit of bssplit entries per direction */

/* Everything a job can be told. Plain data: copied from the running
 * defaults when a job section starts. */
struct job_opts {
    const char *name;
    const char *filename; /* NULL: generated name */
    const char *uri;      /* --uri (fio's nbd engine): the NBD export, as a filename */
    const char *pool;     /* --pool, --rbdname, --clientname (fio's rbd engine): the RBD image */
    const char *rbdname;
    const char *clientname;
    uint64_t size;
    unsigned size_pct; /* 1..100 when size was given as a percentage */
    uint64_t offset;
    unsigned offset_pct;
    enum rw_mode rw;
    unsigned rwmixread;
    /* block sizes by direction (read, write, trim): fio's bs, bsrange,
     * bssplit; min == max for one size */
    uint32_t min_bs[3], max_bs[3];
    unsigned nsplit[3]; /* bssplit entries, by size (0: none) */
    uint32_t ba[3];     /* blockalign by direction (0: the direction's smallest size) */
    struct bs_split {
        uint32_t bs;
        double pct;
    } split[3][BSSPLIT_MAX];
    unsigned iodepth;
    /* fio's iodepth_batch_submit, iodepth_batch_complete_min/_max; with
     * batch_set (any of them given) the job's targets get them as
     * UwdfIoTargetSetBatching, else the engine's own batching applies. */
    unsigned iodepth_batch_submit;
    unsigned iodepth_batch_complete_min, iodepth_batch_complete_max;
    bool batch_set;
    unsigned numjobs;
    bool thread;
    uint64_t runtime_ns; /* 0: no limit; fio's alias: timeout */
    bool time_based;
    uint64_t ramp_ns;
    uint64_t number_ios; /* 0: no limit */
    bool direct;
    enum engine_sel ioengine;
    uint64_t randseed;
    bool randseed_set; /* randseed= given: randrepeat does not matter (fio) */
    bool randrepeat;   /* the same offsets and mix every run (fio's default) */
    bool norandommap; /* uniform offsets with repeats (no random map) */
    struct rdist_spec rdist; /* random_distribution */
    uint64_t rate_iops[3];   /* I/Os per second by direction (0: no limit) */
    uint64_t rate_bytes[3];  /* rate=: bytes per second by direction */
    bool rate_poisson;       /* rate_process=poisson: random gaps of the same mean */
    bool cpus_set;            /* cpus_allowed given */
    cpu_set_t cpus;           /* cpus_allowed: the CPUs the job thread may run on */
    bool cpus_split;          /* cpus_allowed_policy=split: one CPU of the set per job */
    bool group_reporting;
    double pct[PCT_MAX]; /* percentile_list, in increasing order (fio sorts it) */
    unsigned npct;
    unsigned pct_precision; /* decimals shown: the most any entry of the list has (fio) */
    bool clat_percentiles, lat_percentiles;
    bool stonewall; /* wait for the jobs before it; a new reporting group */
    bool new_group; /* a new reporting group, started with the others */
    enum verify_mode verify;
    bool verify_fatal;
    enum api_mode api;
    unsigned stack_layers; /* --api=stack: filter devices stacked over each file */
    bool stack_forget;     /* --api=stack: the filters send and forget */
    bool reuse;
    enum clat_start clat_start;
    uint64_t request_timeout_ns; /* 0: none */
    bool fixedbufs, registerfiles;
    /* engine_submit_batch: UwdfSetEngineSubmitBatch for the whole run
     * (the engines serve every job); unset: the library's default. */
    unsigned engine_submit_batch;
    bool engine_submit_set;
    bool engine_group; /* the job's targets on one engine (UwdfStartEngineGroup) */
    /* logs: NULL off, "" the job's name, else the file name prefix */
    const char *lat_log, *bw_log, *iops_log, *hist_log;
    unsigned log_avg_msec;        /* the window of each entry (0: one per I/O) */
    unsigned log_hist_msec;       /* write_hist_log's window (needed with it) */
    unsigned log_hist_coarseness; /* 2^this of fio's buckets per column */
    bool per_job_logs;     /* ".N" (the job's number) in the log names */
    bool log_offset;       /* an offset column (0 in windowed entries) */
    unsigned fsync_blocks, fdatasync_blocks; /* 0: none */
    enum sync_mode sync;
    /* several files (fio's nrfiles, filename_format, file_service_type) */
    unsigned nrfiles;            /* generated files (ignored with filename) */
    const char *filename_format; /* NULL: $jobname.$jobnum.$filenum */
    enum fsvc_mode fsvc;
    unsigned fsvc_ios; /* I/Os to a file before the next; 0: 1 (sequential: the file's region) */
};

static inline bool rw_reads(enum rw_mode m)
{
    return m == RW_READ || m == RW_RANDREAD || m == RW_RW || m == RW_RANDRW;
}

static inline bool rw_writes(enum rw_mode m)
{
    return m == RW_WRITE || m == RW_RANDWRITE || m == RW_RW || m == RW_RANDRW || m == RW_TRIMWRITE;
}

static inline bool rw_trims(enum rw_mode m)
{
    return m == RW_TRIM || m == RW_RANDTRIM || m == RW_TRIMWRITE;
}

static inline bool rw_random(enum rw_mode m)
{
    return m == RW_RANDREAD || m == RW_RANDWRITE || m == RW_RANDRW || m == RW_RANDTRIM;
}

/* The one direction of the job's I/O (0 read, 1 write, 2 trim: trimwrite's
 * choice, its writes follow its trims), or -1 for a mix of reads and writes. */
static inline int rw_one_dir(enum rw_mode m)
{
    switch (m) {
    case RW_READ:
    case RW_RANDREAD:
        return 0;
    case RW_WRITE:
    case RW_RANDWRITE:
        return 1;
    case RW_TRIM:
    case RW_RANDTRIM:
    case RW_TRIMWRITE:
        return 2;
    default:
        return -1;
    }
}

/* Whether the job does I/O of direction d (0 read, 1 write, 2 trim). */
static inline bool rw_does(enum rw_mode m, int d)
{
    return d == 0 ? rw_reads(m) : d == 1 ? rw_writes(m) : rw_trims(m);
}

/* The largest and smallest block size of the directions the job does
 * (buffers are the largest; offsets are multiples of the smallest, fio's
 * rw_min_bs); whether every I/O has the one size. */
uint32_t opts_max_bs(const struct job_opts *o);
uint32_t opts_min_bs(const struct job_opts *o);
bool opts_one_bs(const struct job_opts *o);
/* fio's blockalign of a direction: random offsets are multiples of it
 * (its smallest block size unless given; sequential I/O ignores it).
 * Inline: next_io asks for every I/O. */
static inline uint32_t opts_ba(const struct job_opts *o, int d)
{
    return o->ba[d] && rw_random(o->rw) ? o->ba[d] : o->min_bs[d];
}
/* Whether a direction the job does aligns otherwise than its smallest
 * size (fio then turns the random map off). */
bool opts_ba_differs(const struct job_opts *o);

/* fio's defaults (job files and --name command lines mean what they mean
 * to fio), except the I/O engine: the library's default. */
void opts_fio_defaults(struct job_opts *o);

extern const struct opt_def job_options[];
extern const size_t n_job_options;
const struct opt_def *find_job_option(const char *key);

/* Process-wide options (command line only). */
enum out_fmt { OUT_NORMAL = 1, OUT_TERSE = 2, OUT_JSON = 4, OUT_JSONPLUS = 8 };
enum eta_mode { ETA_AUTO, ETA_ALWAYS, ETA_NEVER };

struct global_opts {
    const char *output; /* NULL: stdout */
    unsigned formats;
    enum eta_mode eta;
    unsigned parse_only; /* read and check everything, run nothing */
    const char *cmdhelp; /* --cmdhelp: "" or "all" for every option */
    uint64_t status_interval_ns; /* --status-interval: interim reports this often (0: none) */
};

extern const struct opt_def global_options[];
extern const size_t n_global_options;

/* A filename option's list: "a:b\:c" -> "a", "b:c" (fio's escaping of ':'
 * in names); the names are kept in pool, the array is the caller's. */
unsigned split_filenames(struct strpool *pool, const char *spec, const char ***out);
/* Whether a filename is an NBD URI (nbd://, nbds://, nbd+unix://, ...):
 * never split, never created, sized by the server. */
bool filename_is_nbd_uri(const char *spec);

#endif
