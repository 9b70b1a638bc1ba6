/* uwdf-bench's statistics (stat.h): accumulators, samples, CPU use, and
 * the reports made of them. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "job.h"
#include "report.h"
#include "stat.h"
#include "util.h"


const char *ddir_name(int dd)
{
    static const char *const names[] = { "read", "write", "trim", "sync" };
    return names[dd];
}

void lat_init(struct lat_acc *a)
{
    memset(a, 0, sizeof(*a));
    a->min = UINT64_MAX;
}

void lat_merge(struct lat_acc *dst, const struct lat_acc *src)
{
    if (!src->n)
        return;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->n += src->n;
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
}

double lat_mean(const struct lat_acc *a)
{
    return a->n ? (double)a->sum / (double)a->n : 0.0;
}

double lat_stddev(const struct lat_acc *a)
{
    if (a->n < 2)
        return 0.0;
    long double n = (long double)a->n, s = (long double)a->sum;
    long double var = ((long double)a->sumsq - s * s / n) / (n - 1);
    return var > 0 ? bench_sqrt((double)var) : 0.0;
}

uint64_t lat_min(const struct lat_acc *a)
{
    return a->n ? a->min : 0;
}

void ddir_acc_init_in(struct ddir_acc *d, uint64_t *clat_hist, uint64_t *lat_hist)
{
    memset(d, 0, sizeof(*d));
    lat_init(&d->slat);
    lat_init(&d->clat);
    lat_init(&d->lat);
    d->clat_hist = clat_hist;
    d->lat_hist = lat_hist;
}

void ddir_acc_init(struct ddir_acc *d)
{
    ddir_acc_init_in(d, xcalloc(HIST_N, sizeof(uint64_t)), xcalloc(HIST_N, sizeof(uint64_t)));
}

void ddir_acc_free(struct ddir_acc *d)
{
    free(d->clat_hist);
    free(d->lat_hist);
    d->clat_hist = d->lat_hist = NULL;
}

void ddir_acc_merge(struct ddir_acc *dst, const struct ddir_acc *src)
{
    dst->ios += src->ios;
    dst->bytes += src->bytes;
    lat_merge(&dst->slat, &src->slat);
    lat_merge(&dst->clat, &src->clat);
    lat_merge(&dst->lat, &src->lat);
    if (src->clat.n || src->lat.n)
        for (unsigned i = 0; i < HIST_N; i++) {
            dst->clat_hist[i] += src->clat_hist[i];
            dst->lat_hist[i] += src->lat_hist[i];
        }
}

/* Periodic samples (bandwidth and IOPS every 500 ms, as fio's defaults). */
void sample_add(struct sample_acc *s, double v)
{
    if (!s->n || v < s->min)
        s->min = v;
    if (!s->n || v > s->max)
        s->max = v;
    s->n++;
    s->sum += v;
    s->sumsq += v * v;
}

void sample_merge(struct sample_acc *dst, const struct sample_acc *src)
{
    if (!src->n)
        return;
    if (!dst->n || src->min < dst->min)
        dst->min = src->min;
    if (!dst->n || src->max > dst->max)
        dst->max = src->max;
    dst->n += src->n;
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
}

double sample_mean(const struct sample_acc *s)
{
    return s->n ? s->sum / (double)s->n : 0.0;
}

double sample_stddev(const struct sample_acc *s)
{
    if (s->n < 2)
        return 0.0;
    double n = (double)s->n;
    double var = (s->sumsq - s->sum * s->sum / n) / (n - 1);
    return var > 0 ? bench_sqrt(var) : 0.0;
}

void cpu_snapshot(struct rusage *ru)
{
    getrusage(RUSAGE_SELF, ru);
}

static double tv_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

void cpu_add_thread(struct cpu_use *c, const struct thread_cpu *t)
{
    if (!t->on)
        return;
    const struct rusage *a = &t->begin, *b = &t->end;
    c->usr_s += tv_s(&b->ru_utime) - tv_s(&a->ru_utime);
    c->sys_s += tv_s(&b->ru_stime) - tv_s(&a->ru_stime);
    c->ctx += (uint64_t)((b->ru_nvcsw - a->ru_nvcsw) + (b->ru_nivcsw - a->ru_nivcsw));
    c->majf += (uint64_t)(b->ru_majflt - a->ru_majflt);
    c->minf += (uint64_t)(b->ru_minflt - a->ru_minflt);
}

void cpu_compute(const struct rusage *a, const struct rusage *b, uint64_t wall_ns,
                        struct cpu_use *c)
{
    memset(c, 0, sizeof(*c));
    double wall = (double)wall_ns / 1e9;
    c->usr_s = tv_s(&b->ru_utime) - tv_s(&a->ru_utime);
    c->sys_s = tv_s(&b->ru_stime) - tv_s(&a->ru_stime);
    c->usr_pct = wall > 0 ? 100.0 * c->usr_s / wall : 0;
    c->sys_pct = wall > 0 ? 100.0 * c->sys_s / wall : 0;
    c->ctx = (uint64_t)((b->ru_nvcsw - a->ru_nvcsw) + (b->ru_nivcsw - a->ru_nivcsw));
    c->majf = (uint64_t)(b->ru_majflt - a->ru_majflt);
    c->minf = (uint64_t)(b->ru_minflt - a->ru_minflt);
    c->window_ms = wall_ns / NS_PER_MS;
}

uint64_t job_runtime_ns(const struct job *j)
{
    uint64_t from = j->ramp_end_ns > j->start_ns ? j->ramp_end_ns : j->start_ns;
    if (!j->finish_ns || j->finish_ns <= from)
        return 0;
    return j->finish_ns - from;
}

uint64_t ns_to_ms(uint64_t ns)
{
    uint64_t ms = (ns + NS_PER_MS / 2) / NS_PER_MS;
    return ms ? ms : (ns ? 1 : 0);
}

static double ru_cpu_s(const struct rusage *ru)
{
    return tv_s(&ru->ru_utime) + tv_s(&ru->ru_stime);
}

/* The CPU of the job's completion threads, each thread once: files on one
 * engine share its thread, and their shards each saw part of its run
 * (from the earliest begin to the latest end of that thread). Before,
 * 50 files on one engine reported ~570% CPU on 2 CPUs. */
static void job_add_thread_cpu(struct report *r, const struct job *j)
{
    for (unsigned k = 0; k < j->nshards; k++) {
        const struct thread_cpu *t = &j->shards[k].cpu;
        /* the job thread's own CPU is counted whole (j->cpu) */
        bool seen = j->cpu.on && j->cpu.tid == t->tid;
        for (unsigned i = 0; i < k && !seen; i++)
            seen = j->shards[i].cpu.on && j->shards[i].cpu.tid == t->tid;
        if (!t->on || seen)
            continue;
        struct thread_cpu span = *t;
        for (unsigned i = k + 1; i < j->nshards; i++) {
            const struct thread_cpu *u = &j->shards[i].cpu;
            if (!u->on || u->tid != t->tid)
                continue;
            if (ru_cpu_s(&u->begin) < ru_cpu_s(&span.begin))
                span.begin = u->begin;
            if (ru_cpu_s(&u->end) > ru_cpu_s(&span.end))
                span.end = u->end;
        }
        cpu_add_thread(&r->cpu, &span);
    }
}

static void report_add_job(struct report *r, const struct job *j)
{
    if (!r->first) {
        r->first = j;
        r->name = j->o.name;
        for (int d = 0; d < DDIR_N; d++)
            ddir_acc_init(&r->d[d]);
        ddir_acc_init(&r->sync);
    }
    r->njobs++;
    r->groupid = j->groupid;
    r->nslots += j->nslots;
    r->nfiles += j->nfiles;
    if (j->error_set && !r->error) {
        r->error = j->error;
        r->err_status = j->err_status;
    }
    for (unsigned k = 0; k < j->nshards; k++) {
        for (int d = 0; d < DDIR_N; d++)
            ddir_acc_merge(&r->d[d], &j->shards[k].d[d]);
        ddir_acc_merge(&r->sync, &j->shards[k].sync);
        for (unsigned b = 0; b < N_DEPTH; b++)
            r->depth_map[b] += j->shards[k].depth_map[b];
    }
    if (j->batch_counted) {
        /* the engine's buckets (1, 2, 3-4, 5-8, ..., >256) into fio's */
        static const unsigned fio_bucket[UWDF_IO_BATCH_BUCKETS] = { 1, 1, 1, 2, 3, 4, 5, 6, 6, 6 };
        r->batch_counted = true;
        for (unsigned b = 0; b < UWDF_IO_BATCH_BUCKETS; b++) {
            r->submit_map[fio_bucket[b]] += j->batch_submits[b];
            r->complete_map[fio_bucket[b]] += j->batch_completes[b];
        }
    }
    r->target.ops += j->target.ops;
    r->target.fixed_buffer_ops += j->target.fixed_buffer_ops;
    r->target.fixed_file_ops += j->target.fixed_file_ops;
    r->target.registered_buffers += j->target.registered_buffers;
    r->target.registered_files += j->target.registered_files;
    job_add_thread_cpu(r, j);
    cpu_add_thread(&r->cpu, &j->cpu);
    if (j->finish_ns > j->start_ns)
        r->cpu_wall_ns += j->finish_ns - j->start_ns;
    double wall = (double)r->cpu_wall_ns / 1e9;
    r->cpu.usr_pct = wall > 0 ? 100.0 * r->cpu.usr_s / wall : 0;
    r->cpu.sys_pct = wall > 0 ? 100.0 * r->cpu.sys_s / wall : 0;
    r->cpu.window_ms = r->cpu_wall_ns / NS_PER_MS;
    uint64_t rt = job_runtime_ns(j);
    if (rt > r->runtime_ns)
        r->runtime_ns = rt;
    for (int d = 0; d < DDIR_N; d++) {
        sample_merge(&r->bw[d], &j->bw[d]);
        sample_merge(&r->iops[d], &j->iops[d]);
    }
    r->verified += j->verified;
    r->verify_errors += j->verify_errors;
}

/* fio's entries: a job with group_reporting joins the entry before it when
 * that one is of the same group; any other job starts an entry. */
unsigned build_reports(const struct bench_run *run, struct report **out)
{
    struct report *r = xcalloc(run->njobs, sizeof(*r));
    unsigned n = 0;
    for (unsigned i = 0; i < run->njobs; i++) {
        const struct job *j = &run->jobs[i];
        if (i && (!j->o.group_reporting || run->jobs[i - 1].groupid != j->groupid))
            n++;
        report_add_job(&r[n], j);
    }
    *out = r;
    return run->njobs ? n + 1 : 0;
}

void free_reports(struct report *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        for (int d = 0; d < DDIR_N; d++)
            ddir_acc_free(&r[i].d[d]);
        ddir_acc_free(&r[i].sync);
    }
    free(r);
}

uint64_t bw_bytes(uint64_t bytes, uint64_t ns)
{
    return ns ? (uint64_t)((double)bytes * 1e9 / (double)ns) : 0;
}

double iops_of(uint64_t ios, uint64_t ns)
{
    return ns ? (double)ios * 1e9 / (double)ns : 0.0;
}

double group_bw_kib(const struct bench_run *run, unsigned groupid, int d)
{
    double sum = 0;
    for (unsigned i = 0; i < run->njobs; i++) {
        const struct job *j = &run->jobs[i];
        if (j->groupid != groupid)
            continue;
        uint64_t b = 0;
        for (unsigned k = 0; k < j->nshards; k++)
            b += j->shards[k].d[d].bytes;
        sum += (double)bw_bytes(b, job_runtime_ns(j)) / 1024.0;
    }
    return sum;
}

/* Latency distribution in fio's buckets (of total latency). */
const uint64_t lat_bounds[N_LAT_B] = { 2, 4, 10, 20, 50, 100, 250, 500, 750, 1000 };
const uint64_t lat_ms_bounds[N_LAT_MS - 1] = { 2, 4, 10, 20, 50, 100, 250, 500, 750, 1000, 2000 };

void lat_distribution(const struct report *r, struct lat_dist *ld)
{
    memset(ld, 0, sizeof(*ld));
    uint64_t total = r->d[DDIR_READ].lat.n + r->d[DDIR_WRITE].lat.n + r->d[DDIR_TRIM].lat.n;
    if (!total)
        return;
    for (int d = 0; d < DDIR_N; d++) {
        if (!r->d[d].lat.n)
            continue;
        for (unsigned i = 0; i < HIST_N; i++) {
            uint64_t c = r->d[d].lat_hist[i];
            if (!c)
                continue;
            uint64_t v = hist_value(i);
            double p = 100.0 * (double)c / (double)total;
            unsigned b;
            if (v <= 1000) {
                for (b = 0; b < N_LAT_B - 1 && v > lat_bounds[b]; b++)
                    ;
                ld->ns[b] += p;
            } else if (v <= 1000 * NS_PER_US) {
                for (b = 0; b < N_LAT_B - 1 && v > lat_bounds[b] * NS_PER_US; b++)
                    ;
                ld->us[b] += p;
            } else {
                for (b = 0; b < N_LAT_MS - 1 && v > lat_ms_bounds[b] * NS_PER_MS; b++)
                    ;
                ld->ms[b] += p;
            }
        }
    }
}

void map_distribution(const uint64_t map[N_DEPTH], double pct[N_DEPTH])
{
    uint64_t total = 0;
    for (unsigned b = 0; b < N_DEPTH; b++)
        total += map[b];
    for (unsigned b = 0; b < N_DEPTH; b++) {
        pct[b] = total ? 100.0 * (double)map[b] / (double)total : 0.0;
        if (map[b] && pct[b] < 0.1)
            pct[b] = 0.1; /* as fio: a bucket that has any shows */
    }
}

void depth_distribution(const struct report *r, double pct[N_DEPTH])
{
    map_distribution(r->depth_map, pct);
}

unsigned report_depth(const struct report *r)
{
    return r->first->nslots;
}

void print_reports(FILE *out, const struct bench_run *run, const struct cpu_use *cpu)
{
    unsigned formats = run->cfg->g.formats;
    struct report *reps;
    unsigned nrep = build_reports(run, &reps);
    if (formats & OUT_NORMAL) {
        fprintf(out, "\n");
        for (unsigned i = 0; i < nrep; i++)
            print_report_normal(out, run, &reps[i]);
        print_group_normal(out, run);
    }
    if (formats & OUT_TERSE)
        for (unsigned i = 0; i < nrep; i++)
            print_report_terse(out, run, &reps[i]);
    if (formats & (OUT_JSON | OUT_JSONPLUS))
        print_json(out, run, reps, nrep, cpu, (formats & OUT_JSONPLUS) != 0);
    free_reports(reps, nrep);
}
