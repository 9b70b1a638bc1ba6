/* A run's set-up and teardown (setup.h). */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "filesetup.h"
#include "interrupt.h"
#include "io.h"
#include "log.h"
#include "setup.h"
#include "util.h"

/* Threads besides the job thread and the engines that may complete a
 * job's I/O (a shard each; more share one, see job_shard). */
#define SHARD_SPARE_THREADS 4u

/* By enum api_mode. */
static const struct bench_api *const bench_apis[] = {
    [API_ASYNC] = &api_async,
    [API_SYNC] = &api_sync,
    [API_FLT] = &api_flt,
    [API_STACK] = &api_stack,
};
#define N_APIS (sizeof(bench_apis) / sizeof(bench_apis[0]))

void jobs_create(struct bench_run *run, const struct jobdef *defs, unsigned ndefs)
{
    run->njobs = 0;
    for (unsigned i = 0; i < ndefs; i++)
        run->njobs += defs[i].o.numjobs;
    run->jobs = xcalloc(run->njobs, sizeof(*run->jobs));
    /* fio's groups: stonewall or new_group starts one (when the current one
     * has jobs); stonewall also waits for every job before it. A job's
     * clones go with it. */
    unsigned groupid = 0, wave = 0, in_group = 0;
    for (unsigned i = 0, idx = 0; i < ndefs; i++)
        for (unsigned c = 0; c < defs[i].o.numjobs; c++, idx++) {
            struct job *j = &run->jobs[idx];
            const struct job_opts *o = &defs[i].o;
            if (c == 0 && (o->stonewall || o->new_group) && in_group) {
                groupid++;
                in_group = 0;
            }
            if (c == 0 && o->stonewall && idx > 0)
                wave++;
            in_group++;
            j->groupid = groupid;
            j->wave = wave;
            j->run = run;
            j->o = defs[i].o;
            j->api = bench_apis[j->o.api];
            j->def = &defs[i];
            j->index = idx;
            j->clone = c;
            j->seed = o->randseed;
            if (!o->randrepeat && !o->randseed_set && getrandom(&j->seed, sizeof(j->seed), 0) != sizeof(j->seed))
                j->seed = now_ns() ^ ((uint64_t)getpid() << 32);
        }
    run->ngroups = groupid + 1;
    run->nwaves = wave + 1;
    run->wave_left = xcalloc(run->nwaves, sizeof(*run->wave_left));
    for (unsigned i = 0; i < run->njobs; i++)
        run->wave_left[run->jobs[i].wave]++;
}

static int framework_init(struct bench_run *run)
{
    char sb[96];
    WDF_DRIVER_CONFIG cfg;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    NTSTATUS st = WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, &run->driver);
    if (!NT_SUCCESS(st)) {
        errmsg("WdfDriverCreate failed: %s", status_str(sb, sizeof(sb), st));
        run->driver = NULL;
        return -1;
    }
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(run->driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init) {
        errmsg("WdfControlDeviceInitAllocate failed");
        return -1;
    }
    st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &run->device);
    if (!NT_SUCCESS(st)) {
        errmsg("WdfDeviceCreate failed: %s", status_str(sb, sizeof(sb), st));
        if (init)
            WdfDeviceInitFree(init);
        return -1;
    }
    WdfControlFinishInitializing(run->device);
    return 0;
}

WCHAR *path_to_wide(const char *path)
{
    size_t n = strlen(path), o = 0;
    WCHAR *w = xcalloc(n + 1, sizeof(WCHAR));
    const unsigned char *p = (const unsigned char *)path;
    for (size_t i = 0; i < n;) {
        uint32_t c = p[i];
        unsigned extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (extra == 9 || (extra && i + extra >= n)) {
            free(w);
            return NULL;
        }
        if (extra)
            c &= 0x3Fu >> extra;
        for (unsigned k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                free(w);
                return NULL;
            }
            c = (c << 6) | (p[i + k] & 0x3F);
        }
        w[o++] = (WCHAR)c;
        i += 1 + extra;
    }
    w[o] = 0;
    return w;
}

NTSTATUS target_open_by_name(WDFIOTARGET t, const char *path, bool write, bool direct)
{
    WCHAR *w = path_to_wide(path);
    if (!w)
        return STATUS_OBJECT_NAME_INVALID;
    UNICODE_STRING name;
    RtlInitUnicodeString(&name, w);
    WDF_IO_TARGET_OPEN_PARAMS p;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &name, write ? (GENERIC_READ | GENERIC_WRITE) : GENERIC_READ);
    if (direct)
        p.CreateOptions |= FILE_NO_INTERMEDIATE_BUFFERING;
    NTSTATUS st = WdfIoTargetOpen(t, &p);
    free(w);
    return st;
}

NTSTATUS open_target(struct bench_run *run, const char *path, bool write, bool direct, WDFIOTARGET *out)
{
    WDFIOTARGET t;
    NTSTATUS st = WdfIoTargetCreate(run->device, WDF_NO_OBJECT_ATTRIBUTES, &t);
    if (!NT_SUCCESS(st))
        return st;
    st = target_open_by_name(t, path, write, direct);
    if (NT_SUCCESS(st))
        *out = t;
    else
        WdfObjectDelete(t);
    return st;
}

NTSTATUS target_length(WDFIOTARGET t, uint64_t *len)
{
    GET_LENGTH_INFORMATION li;
    WDF_MEMORY_DESCRIPTOR out;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out, &li, sizeof(li));
    NTSTATUS st = WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_DISK_GET_LENGTH_INFO, NULL, &out, NULL, NULL);
    if (NT_SUCCESS(st))
        *len = (uint64_t)li.Length.QuadPart;
    return st;
}

/* --engine_submit_batch: one policy for the run's engines, which all jobs
 * share; -1 when the jobs that give it disagree. */
static int set_engine_submit(const struct bench_run *run)
{
    const struct job_opts *first = NULL;
    for (unsigned i = 0; i < run->njobs; i++) {
        const struct job_opts *o = &run->jobs[i].o;
        if (!o->engine_submit_set)
            continue;
        if (first && o->engine_submit_batch != first->engine_submit_batch) {
            errmsg("%s: engine_submit_batch=%u differs from %s's %u: the engines serve every job, so "
                   "there is one policy per run", o->name, o->engine_submit_batch, first->name,
                   first->engine_submit_batch);
            return -1;
        }
        first = o;
    }
    if (first)
        (void)UwdfSetEngineSubmitBatch(first->engine_submit_batch); /* in range: the option's parse */
    return 0;
}

static void select_backend(const struct bench_run *run, enum engine_sel e)
{
    if (e != ENGINE_DEFAULT && e != ENGINE_NBD && e != ENGINE_RBD) /* a remote target's name picks its engine */
        setenv("UWDF_BACKEND", engine_names[e], 1);
    else if (run->env_backend)
        setenv("UWDF_BACKEND", run->env_backend, 1);
    else
        unsetenv("UWDF_BACKEND");
}

/* --fixedbufs / --registerfiles: every slot's data buffer, and the file,
 * registered with each target's engine (io_uring READ_FIXED/WRITE_FIXED and
 * IOSQE_FIXED_FILE; a documented no-op on libaio and null). */
static int job_register(struct job *j)
{
    const struct job_opts *o = &j->o;
    char sb[96];
    if (!o->fixedbufs && !o->registerfiles)
        return 0;
    WDFMEMORY *mems = calloc(j->nslots, sizeof(*mems));
    if (!mems) {
        errmsg("%s: out of memory", o->name);
        return -1;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < j->nslots; i++)
        if (j->slots[i].mem)
            mems[n++] = j->slots[i].mem;
    int rc = 0;
    for (unsigned k = 0; k < j->nfiles && rc == 0; k++) {
        WDFIOTARGET t = j->files[k].target;
        NTSTATUS st = STATUS_SUCCESS;
        const char *what = "";
        if (!t)
            continue;
        if (o->fixedbufs && n) {
            what = "fixedbufs: UwdfIoTargetRegisterMemory";
            st = UwdfIoTargetRegisterMemory(t, mems, n);
        }
        if (NT_SUCCESS(st) && o->registerfiles) {
            what = "registerfiles: UwdfIoTargetRegisterFile";
            st = UwdfIoTargetRegisterFile(t);
        }
        if (!NT_SUCCESS(st)) {
            errmsg("%s: %s on '%s' failed: %s", o->name, what, j->files[k].path,
                   status_str(sb, sizeof(sb), st));
            rc = -1;
        }
    }
    free(mems);
    return rc;
}

/* iodepth_batch_*: fio's values (its fix-ups: a submit batch of 0 or over
 * iodepth is iodepth, a complete_max below complete_min is complete_min)
 * set on each of the job's targets. */
static int job_set_batching(struct job *j)
{
    const struct job_opts *o = &j->o;
    char sb[96];
    if (!o->batch_set || o->api != API_ASYNC)
        return 0;
    unsigned submit = o->iodepth_batch_submit, cmin = o->iodepth_batch_complete_min;
    if (!submit || submit > o->iodepth)
        submit = o->iodepth;
    unsigned cmax = o->iodepth_batch_complete_max < cmin ? cmin : o->iodepth_batch_complete_max;
    UWDF_IO_TARGET_BATCHING b;
    UWDF_IO_TARGET_BATCHING_INIT(&b, submit, cmin, cmax);
    for (unsigned k = 0; k < j->nfiles; k++) {
        NTSTATUS st = UwdfIoTargetSetBatching(j->files[k].target, &b);
        if (!NT_SUCCESS(st)) {
            errmsg("%s: iodepth_batch: UwdfIoTargetSetBatching on '%s' failed: %s", o->name, j->files[k].path,
                   status_str(sb, sizeof(sb), st));
            return -1;
        }
    }
    return 0;
}

/* The engines' batch counts over the job's files so far, into sub and comp
 * (zeroed first); false when there are none. */
bool job_batch_counts(const struct job *j, uint64_t *sub, uint64_t *comp)
{
    memset(sub, 0, sizeof(j->batch_submits));
    memset(comp, 0, sizeof(j->batch_completes));
    if (!j->o.batch_set || j->o.api != API_ASYNC)
        return false;
    for (unsigned k = 0; k < j->nfiles; k++) {
        UWDF_IO_TARGET_BATCH_STATISTICS bs = { .Size = sizeof(bs) };
        if (!j->files[k].target || !NT_SUCCESS(UwdfIoTargetGetBatchStatistics(j->files[k].target, &bs)))
            return false;
        for (unsigned i = 0; i < UWDF_IO_BATCH_BUCKETS; i++) {
            sub[i] += bs.Submissions[i];
            comp[i] += bs.CompletionRounds[i];
        }
    }
    return true;
}

/* Whether next_io's general path comes, for every I/O of j, to a block of
 * its one file in one direction (struct job's plain): nothing that the
 * fast path leaves out (several sizes or files, blockalign, a distribution
 * or no random map, a rate, flushes, trims, verify) can apply. */
static void job_set_plain(struct job *j)
{
    const struct job_opts *o = &j->o;
    int dd = rw_one_dir(o->rw);
    j->plain = PLAIN_NONE;
    if (dd != DDIR_READ && dd != DDIR_WRITE)
        return;
    bool random = rw_random(o->rw);
    if (j->vary || j->nfiles != 1 || j->rated || o->fsync_blocks || o->fdatasync_blocks || o->verify ||
        j->files[0].dist || j->files[0].claimed || opts_ba(o, dd) != o->min_bs[dd] ||
        (random && o->norandommap) || j->unit_limit != UINT64_MAX)
        return;
    j->plain_dd = dd;
    j->plain = random ? PLAIN_RANDOM : PLAIN_SEQ;
}

static int job_setup(struct job *j)
{
    const struct job_opts *o = &j->o;
    char sb[96];
    select_backend(j->run, o->ioengine);
    if (j->api->setup(j) || job_target_sizes(j))
        return -1;
    for (unsigned k = 0; o->verify && rw_writes(o->rw) && k < j->nfiles; k++)
        j->files[k].written = xcalloc((size_t)((j->files[k].nblocks + 63) / 64), sizeof(uint64_t));
    if (o->verify && !strcmp(j->backend, "null")) {
        errmsg("%s: --verify needs an engine that moves data (the null engine does not)", o->name);
        return -1;
    }
    j->verify_reads = o->verify && !rw_writes(o->rw);
    /* Completions run on the engines' threads (a pool's worth, however
     * many files; uwdf.h), nested ones on the job thread. The spare
     * covers threads a filter stack or the framework may add. */
    job_shards_init(j, 1 + UwdfGetEnginePoolSize() + SHARD_SPARE_THREADS);
    j->nslots = j->api->one_slot ? 1 : o->iodepth;
    j->slots = xcalloc_lines(j->nslots, sizeof(*j->slots));
    uint64_t seed = j->seed * 0x2545F4914F6CDD1Dull + j->index;
    for (unsigned i = 0; i < j->nslots; i++) {
        struct slot *s = &j->slots[i];
        s->job = j;
        s->rng = splitmix64(&seed) | 1;
        WDF_REQUEST_SEND_OPTIONS_INIT(&s->sync_opts, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
        if (o->request_timeout_ns) {
            WDF_REQUEST_SEND_OPTIONS_INIT(&s->send_opts, 0);
            WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&s->send_opts, WDF_REL_TIMEOUT_IN_US((o->request_timeout_ns + NS_PER_US - 1) / NS_PER_US));
            WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&s->sync_opts, WDF_REL_TIMEOUT_IN_US((o->request_timeout_ns + NS_PER_US - 1) / NS_PER_US));
            s->has_opts = true;
        }
        NTSTATUS st = STATUS_SUCCESS;
        if (rw_reads(o->rw) || rw_writes(o->rw)) {
            st = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPool, 0x68636e42 /* 'Bnch' */, opts_max_bs(o),
                                 &s->mem, &s->buf);
            if (!NT_SUCCESS(st)) {
                s->mem = NULL;
                errmsg("%s: WdfMemoryCreate(%" PRIu32 ") failed: %s", o->name, opts_max_bs(o),
                       status_str(sb, sizeof(sb), st));
                return -1;
            }
            fill_random(s->buf, opts_max_bs(o), splitmix64(&seed));
        }
        if (rw_trims(o->rw)) {
            /* DEVICE_MANAGE_DATA_SET_ATTRIBUTES, then at the next 8-byte
             * boundary the one DEVICE_DATA_SET_RANGE (filled per trim). */
            size_t ranges_at = (sizeof(DEVICE_MANAGE_DATA_SET_ATTRIBUTES) + 7) & ~(size_t)7;
            size_t len = ranges_at + sizeof(DEVICE_DATA_SET_RANGE);
            void *buf;
            st = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPool, 0x68636e42, len, &s->dsm_mem, &buf);
            if (!NT_SUCCESS(st)) {
                s->dsm_mem = NULL;
                errmsg("%s: WdfMemoryCreate(%zu) failed: %s", o->name, len, status_str(sb, sizeof(sb), st));
                return -1;
            }
            memset(buf, 0, len);
            DEVICE_MANAGE_DATA_SET_ATTRIBUTES *dsm = buf;
            dsm->Size = sizeof(*dsm);
            dsm->Action = DeviceDsmAction_Trim;
            dsm->DataSetRangesOffset = (ULONG)ranges_at;
            dsm->DataSetRangesLength = sizeof(DEVICE_DATA_SET_RANGE);
            s->dsm_range = (DEVICE_DATA_SET_RANGE *)((char *)buf + ranges_at);
        }
        if (j->api->setup_slot(s))
            return -1;
    }
    if (job_register(j) != 0 || job_set_batching(j) != 0)
        return -1;
    KeInitializeEvent(&j->done, NotificationEvent, FALSE);
    j->event_ready = true;
    for (int d = 0; d < DDIR_N; d++)
        if (j->o.rate_iops[d] || j->o.rate_bytes[d])
            j->rated = true;
    if (j->rated) {
        j->parked = xcalloc(j->nslots, sizeof(*j->parked));
        pthread_mutex_init(&j->park_lock, NULL);
        cond_init_monotonic(&j->park_cond);
    }
    job_set_plain(j);
    return 0;
}

static void job_teardown(struct job *j)
{
    if (j->api->teardown)
        j->api->teardown(j);
    for (unsigned i = 0; i < j->nslots; i++) {
        struct slot *s = &j->slots[i];
        if (s->req)
            WdfObjectDelete(s->req);
        if (s->mem)
            WdfObjectDelete(s->mem);
        if (s->dsm_mem)
            WdfObjectDelete(s->dsm_mem);
        s->req = NULL;
        s->mem = NULL;
        s->dsm_mem = NULL;
        s->dsm_range = NULL;
    }
    for (unsigned k = 0; k < j->nfiles; k++)
        if (j->files[k].target) {
            WdfObjectDelete(j->files[k].target); /* closes it; its completion thread ends */
            j->files[k].target = NULL;
        }
}

static void job_free(struct job *j)
{
    logs_close(j);
    if (j->event_ready)
        UwdfKeDestroyEvent(&j->done);
    if (j->parked) {
        pthread_mutex_destroy(&j->park_lock);
        pthread_cond_destroy(&j->park_cond);
        free(j->parked);
        j->parked = NULL;
    }
    if (j->shards) {
        munmap(j->shard_hist, j->shard_hist_bytes);
        pthread_mutex_destroy(&j->spill_lock);
    }
    if (j->files)
        for (unsigned k = 0; k < j->nfiles; k++) {
            free(j->files[k].written);
            free(j->files[k].dist);
            free(j->files[k].claimed);
        }
    free(j->shards);
    free(j->slots);
    free(j->files);
    free(j->file_end);
}

int run_setup(struct bench_run *run)
{
    const char *env = getenv("UWDF_BACKEND");
    run->env_backend = env ? keep_str(run->strings, env) : NULL;
    if (framework_init(run))
        return -1;
    if (set_engine_submit(run))
        return -1;
    for (unsigned i = 0; i < run->njobs; i++)
        if (job_setup(&run->jobs[i]))
            return -1;
    for (unsigned i = 0; i < run->njobs; i++)
        if (logs_open(&run->jobs[i], i + 1))
            return -1;
    select_backend(run, ENGINE_DEFAULT);
    if (stop_requested()) {
        errmsg("interrupted before the jobs started");
        return -1;
    }
    return 0;
}

void run_teardown(struct bench_run *run)
{
    for (unsigned i = 0; i < run->njobs; i++)
        job_teardown(&run->jobs[i]);
    for (unsigned i = 0; i < N_APIS; i++)
        if (bench_apis[i]->cleanup)
            bench_apis[i]->cleanup(run); /* FltUnregisterFilter before the driver is deleted */
    if (run->driver)
        WdfObjectDelete(run->driver);
    select_backend(run, ENGINE_DEFAULT);
}

void jobs_free(struct bench_run *run)
{
    for (unsigned i = 0; i < run->njobs; i++)
        job_free(&run->jobs[i]);
    free(run->jobs);
    free(run->wave_left);
    layout_free(&run->layout);
}
