/* --status-interval: fio's interim reports. Every interval the monitor
 * copies every job's statistics so far (each shard through its seqlock,
 * stat.h) into a snapshot of the run, and prints that snapshot with the
 * final report's own code, in the chosen formats. The I/O threads are
 * never stopped or waited for. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "job.h"
#include "status.h"
#include "util.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)

struct status_snap {
    struct bench_run run;
    struct job *jobs;
};

static void lat_read(struct lat_acc *dst, const struct lat_acc *src)
{
    dst->n = LOAD(&src->n);
    dst->min = LOAD(&src->min);
    dst->max = LOAD(&src->max);
    dst->sum = LOAD(&src->sum);
    dst->sumsq_w[0] = LOAD(&src->sumsq_w[0]);
    dst->sumsq_w[1] = LOAD(&src->sumsq_w[1]);
}

static void ddir_counters_read(struct ddir_acc *dst, const struct ddir_acc *src)
{
    dst->ios = LOAD(&src->ios);
    dst->bytes = LOAD(&src->bytes);
    lat_read(&dst->slat, &src->slat);
    lat_read(&dst->clat, &src->clat);
    lat_read(&dst->lat, &src->lat);
}

static void hist_read(uint64_t *dst, const uint64_t *src)
{
    for (unsigned i = 0; i < HIST_N; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void shard_read(struct shard *dst, const struct shard *src)
{
    /* The loads are acquires: one that sees a store of an update also
     * sees that update's odd sequence, so the second read of the
     * sequence differs and the copy is made again. */
    for (unsigned spins = 0;; spins++) {
        unsigned s1 = LOAD(&src->seq);
        if (!(s1 & 1)) {
            for (int d = 0; d < DDIR_N; d++)
                ddir_counters_read(&dst->d[d], &src->d[d]);
            ddir_counters_read(&dst->sync, &src->sync);
            for (unsigned b = 0; b < N_DEPTH; b++)
                dst->depth_map[b] = LOAD(&src->depth_map[b]);
            if (__atomic_load_n(&src->seq, __ATOMIC_RELAXED) == s1)
                break;
        }
        if (spins > 64)
            sched_yield(); /* the writer was preempted inside an update */
        else
            cpu_relax();
    }
    /* A direction nothing was counted in yet has zero histograms here
     * still (counts only grow): most of a job's shards are unclaimed. */
    for (int d = 0; d < DDIR_N; d++) {
        if (dst->d[d].clat.n || dst->d[d].lat.n) {
            hist_read(dst->d[d].clat_hist, src->d[d].clat_hist);
            hist_read(dst->d[d].lat_hist, src->d[d].lat_hist);
        }
    }
    if (dst->sync.lat.n)
        hist_read(dst->sync.lat_hist, src->sync.lat_hist);
}

/* A running thread's CPU use so far (/proc/self/task/TID: clock ticks, so
 * to 1/CLK_TCK s), as a struct rusage; false when it cannot be read. */
static bool task_rusage(pid_t tid, struct rusage *ru)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the name, which may hold anything */
    unsigned long minflt, majflt, utime, stime;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %lu %*u %lu %*u %lu %lu", &minflt, &majflt,
                     &utime, &stime) != 4)
        return false;
    long tck = sysconf(_SC_CLK_TCK);
    if (tck <= 0)
        tck = 100;
    memset(ru, 0, sizeof(*ru));
    ru->ru_utime.tv_sec = (time_t)(utime / (unsigned long)tck);
    ru->ru_utime.tv_usec = (suseconds_t)(utime % (unsigned long)tck * 1000000 / (unsigned long)tck);
    ru->ru_stime.tv_sec = (time_t)(stime / (unsigned long)tck);
    ru->ru_stime.tv_usec = (suseconds_t)(stime % (unsigned long)tck * 1000000 / (unsigned long)tck);
    ru->ru_minflt = (long)minflt;
    ru->ru_majflt = (long)majflt;
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
    if ((f = fopen(path, "r"))) {
        while (fgets(buf, sizeof(buf), f)) {
            long v;
            if (sscanf(buf, "voluntary_ctxt_switches: %ld", &v) == 1)
                ru->ru_nvcsw = v;
            else if (sscanf(buf, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
                ru->ru_nivcsw = v;
        }
        fclose(f);
    }
    return true;
}

static double tv_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* A running thread's use: from its begin to now. Its begin came from
 * getrusage, now from /proc in whole ticks: never below the begin. */
static void thread_cpu_read(struct thread_cpu *dst, const struct thread_cpu *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!LOAD(&src->on))
        return;
    dst->tid = src->tid;
    dst->begin = src->begin;
    dst->on = true;
    struct rusage now;
    if (!task_rusage(dst->tid, &now)) { /* the thread has exited: nothing since */
        dst->end = dst->begin;
        return;
    }
    struct rusage *e = &dst->end;
    *e = dst->begin;
    if (tv_s(&now.ru_utime) > tv_s(&e->ru_utime))
        e->ru_utime = now.ru_utime;
    if (tv_s(&now.ru_stime) > tv_s(&e->ru_stime))
        e->ru_stime = now.ru_stime;
    if (now.ru_minflt > e->ru_minflt)
        e->ru_minflt = now.ru_minflt;
    if (now.ru_majflt > e->ru_majflt)
        e->ru_majflt = now.ru_majflt;
    if (now.ru_nvcsw > e->ru_nvcsw)
        e->ru_nvcsw = now.ru_nvcsw;
    if (now.ru_nivcsw > e->ru_nivcsw)
        e->ru_nivcsw = now.ru_nivcsw;
}

/* The fields of a job the reports read, as they are now. A finished job's
 * are final (its thread stored them before its phase); a job that has not
 * started (a stonewall's later wave) reports nothing yet. */
static void job_snapshot(struct job *dst, const struct job *src, uint64_t now)
{
    struct shard *shards = dst->shards;
    memset(dst, 0, sizeof(*dst));
    dst->o = src->o;
    dst->api = src->api;
    dst->def = src->def;
    dst->index = src->index;
    dst->clone = src->clone;
    dst->groupid = src->groupid;
    dst->nfiles = src->nfiles;
    dst->nshards = src->nshards;
    dst->nslots = src->nslots;
    dst->backend = src->backend;
    dst->shards = shards;
    int ph = LOAD(&src->phase);
    if (LOAD(&src->error_set)) {
        dst->error_set = 1;
        dst->error = LOAD(&src->error);
        dst->err_status = LOAD(&src->err_status);
    }
    dst->verified = LOAD(&src->verified);
    dst->verify_errors = LOAD(&src->verify_errors);
    /* the monitor's own samples (this thread takes them) */
    memcpy(dst->bw, src->bw, sizeof(dst->bw));
    memcpy(dst->iops, src->iops, sizeof(dst->iops));
    for (unsigned k = 0; k < src->nshards; k++)
        shard_read(&shards[k], &src->shards[k]);
    if (ph == PHASE_SETUP)
        return;
    dst->start_ns = src->start_ns;
    dst->ramp_end_ns = src->ramp_end_ns;
    if (ph == PHASE_DONE) {
        dst->finish_ns = src->finish_ns;
        dst->cpu = src->cpu;
        for (unsigned k = 0; k < src->nshards; k++)
            shards[k].cpu = src->shards[k].cpu;
        return;
    }
    dst->finish_ns = now;
    thread_cpu_read(&dst->cpu, &src->cpu);
    for (unsigned k = 0; k < src->nshards; k++)
        thread_cpu_read(&shards[k].cpu, &src->shards[k].cpu);
}

static struct status_snap *snap_new(const struct bench_run *run)
{
    struct status_snap *s = xcalloc(1, sizeof(*s));
    s->run = *run;
    s->jobs = xcalloc(run->njobs, sizeof(*s->jobs));
    s->run.jobs = s->jobs;
    for (unsigned i = 0; i < run->njobs; i++) {
        unsigned n = run->jobs[i].nshards;
        struct shard *sh = xcalloc(n, sizeof(*sh));
        for (unsigned k = 0; k < n; k++) {
            for (int d = 0; d < DDIR_N; d++)
                ddir_acc_init(&sh[k].d[d]);
            ddir_acc_init(&sh[k].sync);
        }
        s->jobs[i].shards = sh;
    }
    return s;
}

void status_free(struct status_snap *s, const struct bench_run *run)
{
    if (!s)
        return;
    for (unsigned i = 0; i < run->njobs; i++) {
        for (unsigned k = 0; k < run->jobs[i].nshards; k++) {
            for (int d = 0; d < DDIR_N; d++)
                ddir_acc_free(&s->jobs[i].shards[k].d[d]);
            ddir_acc_free(&s->jobs[i].shards[k].sync);
        }
        free(s->jobs[i].shards);
    }
    free(s->jobs);
    free(s);
}

void status_print(struct status_snap **sp, const struct bench_run *run, uint64_t now,
                  const struct rusage *ru_start, uint64_t cpu_t0)
{
    if (!*sp)
        *sp = snap_new(run);
    struct status_snap *s = *sp;
    for (unsigned i = 0; i < run->njobs; i++)
        job_snapshot(&s->jobs[i], &run->jobs[i], now);
    struct rusage ru_now;
    struct cpu_use cpu;
    cpu_snapshot(&ru_now);
    cpu_compute(ru_start, &ru_now, now > cpu_t0 ? now - cpu_t0 : 0, &cpu);
    print_reports(run->out, &s->run, &cpu);
    fflush(run->out);
}
