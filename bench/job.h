/* uwdf-bench's run: its jobs, their files and slots (a slot is one
 * request in flight and its buffer), the framework objects they share, and
 * the --api modes' operations. */
#ifndef UWDF_BENCH_JOB_H
#define UWDF_BENCH_JOB_H

#include <uwdf.h>
#include <fltkernel.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "filesetup.h"
#include "init.h"
#include "options.h"
#include "randdist.h"
#include "stat.h"

enum phase { PHASE_SETUP, PHASE_RUN, PHASE_VERIFY, PHASE_DONE };

/* One file of one job. */
struct file_slot {
    struct layout_file *lf;
    const char *path;
    WDFIOTARGET target;
    /* --api=flt: the file FltCreateFileEx opened and its volume's instance */
    HANDLE fh;
    bool fh_open;
    PFILE_OBJECT fo;
    PFLT_INSTANCE inst;
    uint64_t start;   /* byte offset of the region */
    uint64_t nblocks; /* whole blocks in the region */
    /* random order: a keyed bijection on [0, 2^bits), values >= nblocks skipped */
    unsigned bits;
    uint64_t mask, key;
    struct rdist *dist; /* random_distribution other than random, or NULL */
    uint64_t cursor;   /* next I/O index (atomic) */
    uint64_t taken;    /* I/Os given to this file (atomic; several files, not time_based) */
    uint64_t vcursor;  /* verify pass: next block to look at (atomic) */
    uint64_t *written; /* verify: bitmap of blocks written (atomic bit sets) */
    uint64_t *claimed; /* several block sizes, random map: the blocks a pass has covered */
};

/* One request of a job and the buffer it owns. */
struct slot {
    struct job *job;
    WDFREQUEST req;
    PFLT_CALLBACK_DATA cd; /* --api=flt: the slot's callback data instead of req */
    WDFMEMORY mem;
    void *buf;
    bool fresh; /* created (req or cd) and never sent */
    WDF_REQUEST_SEND_OPTIONS send_opts;
    bool has_opts;
    PFN_WDF_REQUEST_COMPLETION_ROUTINE routine; /* --api=async/stack */
    WDF_REQUEST_SEND_OPTIONS sync_opts; /* SYNCHRONOUS (and the timeout), for --api=sync */
    WDFMEMORY dsm_mem;                  /* trims: the IOCTL's input buffer */
    DEVICE_DATA_SET_RANGE *dsm_range;   /* its one range */
    uint64_t rng;
    /* random order, the job's one slot on one file: indexes of the file's
     * cursor taken ahead, so most I/Os take no atomic increment (the same
     * order; with several slots, chunks would mix passes) */
    uint64_t rnd_next, rnd_end;
    unsigned file_cur, file_left; /* --file_service_type=random: its file, I/Os left on it */
    int flush_due;  /* enum flush_kind: sent as the next request */
    bool tw_write;  /* trimwrite: the next I/O writes the block just trimmed */
    /* the current I/O */
    unsigned depth;      /* the job's I/Os in flight when it was sent, itself included */
    bool in_depth;       /* counted in io_inflight: from its first send to its
                          * retire or park, so a resend from the completion
                          * routine takes no read-modify-write (io.h) */
    uint64_t t0;         /* before reuse + format + send */
    uint64_t sync;       /* 0 while sending; then the send's return time, or the
                          * completion time if the routine ran first, nested in
                          * the send (only the sender's thread stores it) */
    const void *sender;  /* the thread that sent it */
    uint64_t offset, block;
    uint32_t len;          /* bytes */
    WDFMEMORY_OFFSET mo;   /* the first len bytes of the buffer */
    unsigned file;
    int ddir;       /* enum ddir, DDIR_SYNC for a flush */
    int flush;      /* enum flush_kind of a flush */
    bool verify_read;
    bool resume;  /* rate: the I/O chosen, parked until its turn; send it as it is */
    bool park;    /* rate: next_io chose an I/O whose turn has not come (off the job thread) */
    uint64_t due; /* rate: the turn of the chosen I/O */
    NTSTATUS status;
    ULONG_PTR info;
    char pad[64];
};

struct bench_api;

struct job {
    struct job_opts o;
    const struct bench_api *api; /* how its I/O is issued (--api) */
    const struct jobdef *def;
    unsigned index, clone;
    unsigned groupid; /* reporting group (stonewall, new_group) */
    uint64_t seed;    /* randseed, or one of this run's (randrepeat=0) */
    unsigned wave;    /* starts when every job of the waves before it has ended */
    unsigned nfiles;
    struct file_slot *files;
    unsigned nslots;
    struct slot *slots;
    /* Statistics, one shard per thread that accounts for the job's I/O
     * (job_shard): the job thread and the completion threads, which are
     * the engines' (a few, however many files; one per file made every
     * completion touch another file's histograms). */
    struct shard *shards;
    unsigned nshards;
    unsigned shards_taken; /* claimed so far (atomic); the last is shared */
    pthread_mutex_t spill_lock; /* serialises the writers of the last */
    uint64_t *shard_hist;       /* the shards' histograms, one mapping */
    size_t shard_hist_bytes;
    uint64_t shard_key;    /* tells this job's shards from another's (TLS) */
    const char *backend;
    bool handover_times; /* --clat_start=handover and a target notes them */
    /* every target notes them and every I/O goes to the engine (no trims,
     * which the framework answers): clat never starts at a send's return */
    bool clat_at_handover;
    bool verify_reads; /* every read of the run phase is checked */
    pthread_t thread;
    bool thread_started;
    KEVENT done;
    bool event_ready;
    /* run control: written by the job thread before its first send */
    uint64_t start_ns, ramp_end_ns, end_ns, finish_ns;
    uint64_t io_limit;     /* I/Os (number_ios; one size: also the region's blocks) */
    uint64_t total_blocks; /* of gran bytes */
    uint32_t gran;         /* offsets' unit: the smallest block size (fio's rw_min_bs) */
    bool vary;             /* several block sizes */
    bool sizes_pending;    /* a remote image's size comes from its open target */
    /* next_io's common job (job_setup): one direction (plain_dd), one block
     * size, one file, offsets from the random map or in sequence; no rate,
     * flushes, trims or verify. PLAIN_NONE: every I/O takes the general path. */
    enum { PLAIN_NONE, PLAIN_SEQ, PLAIN_RANDOM } plain;
    int plain_dd;
    uint64_t min_nblocks;  /* of its smallest file */
    uint64_t unit_limit;   /* several sizes, not time_based: blocks the job covers */
    uint64_t units;        /* atomic: blocks taken (several sizes) */
    uint64_t issued;   /* atomic */
    uint64_t writes;   /* atomic: writes issued (fsync / fdatasync) */
    uint64_t file_rr;  /* atomic: I/Os that picked a file (roundrobin, sequential) */
    uint64_t *file_end; /* sequential: blocks of files [0, k] (nfiles entries) */
    int inflight;      /* atomic: slots not retired */
    char pad_depth[64];   /* io_inflight is read with every I/O: a line of its own */
    unsigned io_inflight; /* atomic: slots sending or in flight (async modes; in_depth) */
    char pad_depth2[64];
    struct thread_cpu cpu; /* the job thread's */
    /* iodepth_batch_*: the engines' counts of the job's submissions and
     * completion rounds by size (UwdfIoTargetGetBatchStatistics over its
     * files, the ramp's taken out), when batch_counted */
    bool batch_counted;
    uint64_t batch_submits[UWDF_IO_BATCH_BUCKETS], batch_completes[UWDF_IO_BATCH_BUCKETS];
    struct target_counts target; /* summed after the run phase */
    /* rate, rate_iops: each direction's schedule (ns after the start,
     * atomic), and the slots waiting for their turn (the job thread sends
     * them) */
    bool rated;
    const void *self; /* the job thread */
    uint64_t rate_next[DDIR_N];
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond; /* a slot was parked */
    struct slot **parked; /* nslots entries, a FIFO */
    unsigned park_head, park_n;
    struct job_logs *logs; /* write_*_log, or NULL (the monitor writes them) */
    int stop;          /* atomic */
    int phase;         /* atomic */
    /* the first error */
    int error_set;     /* atomic flag */
    int error;         /* errno value, fio's "error" */
    NTSTATUS err_status;
    uint64_t verify_errors, verified; /* atomic */
    unsigned verify_msgs;             /* atomic */
    /* monitor: samples every 500 ms */
    bool sampling;
    uint64_t last_ns, last_bytes[DDIR_N], last_ios[DDIR_N];
    struct sample_acc bw[DDIR_N], iops[DDIR_N];
    uint64_t eta_last_bytes[DDIR_N], eta_last_ios[DDIR_N];
    struct bench_run *run;
};

/* One run of the program: its jobs, their files and the framework objects
 * they share. */
struct bench_run {
    struct bench_config *cfg;
    FILE *out; /* the reports (--output or stdout) */
    struct strpool *strings; /* names made while setting up: cfg's pool */
    struct job *jobs;
    unsigned njobs;
    struct layout layout;
    WDFDRIVER driver;
    WDFDEVICE device;
    const char *env_backend; /* UWDF_BACKEND as the user set it */
    pthread_barrier_t barrier;
    uint64_t start_ns; /* the jobs were released (jobs start then or after a stonewall) */
    /* stonewall: the jobs of wave w start when wave_left[w - 1] is 0 */
    unsigned nwaves, ngroups;
    unsigned *wave_left;
    pthread_mutex_t wave_lock;
    pthread_cond_t wave_cond; /* CLOCK_MONOTONIC: the monitor waits on it too */
    unsigned jobs_left;       /* under wave_lock: jobs not done */
    unsigned stack_devices; /* --api=stack filter devices made (for their names) */
    struct flt_state *flt;  /* --api=flt: its filter and volumes (api-flt.c) */
};

/* An --api mode: how a job's files are opened, its slots' I/O objects
 * made, its I/O issued and its objects released. The run loop calls these
 * and knows no mode (fio's ioengine_ops). Completions arrive as the
 * framework's callbacks, which each mode registers in its issue; they hand
 * the finished I/O to slot_completed, which calls issue for the next. */
struct bench_api {
    bool one_slot; /* one synchronous request per job thread, whatever iodepth says */
    /* Opens the job's files, sets j->backend (the engine below). */
    int (*setup)(struct job *j);
    /* The slot's request or callback data (its buffers are made). */
    int (*setup_slot)(struct slot *s);
    /* Sends the slot's I/Os from t0 (0: now) until one is in flight (its
     * completion continues) or the job is done, when the slot retires
     * (slot_retire); sh: the shard of the calling thread. */
    void (*issue)(struct slot *s, struct shard *sh, uint64_t t0);
    /* Before the verify pass (NULL: nothing to do). */
    int (*renew)(struct job *j);
    /* Before the generic teardown of the job's requests, buffers, targets. */
    void (*teardown)(struct job *j);
    /* After every job's teardown, before the driver is deleted. */
    void (*cleanup)(struct bench_run *run);
};

/* A status as its name and value, for messages; and as fio's errno. */
const char *status_str(char *buf, size_t n, NTSTATUS st);
int status_errno(NTSTATUS st);

/* The thread that sent a slot's I/O: the address of a thread-local. One
 * definition (io.c); local-exec, as the program is not a library. */
extern __thread char tls_thread_id __attribute__((tls_model("local-exec")));
#define THIS_THREAD ((const void *)&tls_thread_id)

#endif
