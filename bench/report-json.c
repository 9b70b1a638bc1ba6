/* fio's JSON and JSON+ reports (report.h). */
#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "job.h"
#include "report.h"
#include "stat.h"
#include "util.h"

struct jw {
    FILE *f;
    int depth;
    bool first[32];
};

static void jw_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void jw_member(struct jw *w, const char *key)
{
    fputs(w->first[w->depth] ? "\n" : ",\n", w->f);
    w->first[w->depth] = false;
    for (int i = 0; i < w->depth; i++)
        fputs("  ", w->f);
    if (key) {
        jw_string(w->f, key);
        fputs(" : ", w->f);
    }
}

static void jw_open(struct jw *w, const char *key, char c)
{
    if (w->depth > 0)
        jw_member(w, key);
    fputc(c, w->f);
    w->depth++;
    w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
    bool empty = w->first[w->depth];
    w->depth--;
    if (!empty) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    fputc(c, w->f);
}

static void jw_u64(struct jw *w, const char *key, uint64_t v)
{
    jw_member(w, key);
    fprintf(w->f, "%" PRIu64, v);
}

static void jw_dbl(struct jw *w, const char *key, double v)
{
    jw_member(w, key);
    fprintf(w->f, "%f", (v == v && v < 1e300 && v > -1e300) ? v : 0.0);
}

static void jw_str(struct jw *w, const char *key, const char *v)
{
    jw_member(w, key);
    jw_string(w->f, v ? v : "");
}

static void jw_bool(struct jw *w, const char *key, bool v)
{
    jw_member(w, key);
    fputs(v ? "true" : "false", w->f);
}

static void json_lat(struct jw *w, const char *key, const struct job_opts *o, const struct lat_acc *a,
                     const uint64_t *hist, bool pct, bool bins)
{
    jw_open(w, key, '{');
    jw_u64(w, "min", lat_min(a));
    jw_u64(w, "max", a->max);
    jw_dbl(w, "mean", lat_mean(a));
    jw_dbl(w, "stddev", lat_stddev(a));
    jw_u64(w, "N", a->n);
    if (pct && a->n) {
        jw_open(w, "percentile", '{');
        for (unsigned i = 0; i < o->npct; i++) {
            char k[32];
            snprintf(k, sizeof(k), "%f", o->pct[i]);
            jw_u64(w, k, hist_percentile(hist, a->n, o->pct[i]));
        }
        jw_close(w, '}');
    }
    if (bins && a->n) {
        jw_open(w, "bins", '{');
        for (unsigned i = 0; i < HIST_N; i++)
            if (hist[i]) {
                char k[32];
                snprintf(k, sizeof(k), "%" PRIu64, hist_value(i));
                jw_u64(w, k, hist[i]);
            }
        jw_close(w, '}');
    }
    jw_close(w, '}');
}

static void json_ddir(struct jw *w, const struct bench_run *run, const char *key, const struct report *r, int d,
                      bool plus)
{
    const struct ddir_acc *a = &r->d[d];
    uint64_t rt = a->ios ? r->runtime_ns : 0;
    uint64_t bwb = bw_bytes(a->bytes, rt);
    jw_open(w, key, '{');
    jw_u64(w, "io_bytes", a->bytes);
    jw_u64(w, "io_kbytes", a->bytes >> 10);
    jw_u64(w, "bw_bytes", bwb);
    jw_u64(w, "bw", bwb >> 10);
    jw_dbl(w, "iops", iops_of(a->ios, rt));
    jw_u64(w, "runtime", ns_to_ms(rt));
    jw_u64(w, "total_ios", a->ios);
    jw_u64(w, "short_ios", 0);
    jw_u64(w, "drop_ios", 0);
    const struct job_opts *o = &r->first->o;
    json_lat(w, "slat_ns", o, &a->slat, NULL, false, false);
    json_lat(w, "clat_ns", o, &a->clat, a->clat_hist, o->clat_percentiles, plus && o->clat_percentiles);
    json_lat(w, "lat_ns", o, &a->lat, a->lat_hist, o->lat_percentiles, plus && o->lat_percentiles);
    const struct sample_acc *bw = &r->bw[d], *io = &r->iops[d];
    double gb = group_bw_kib(run, r->groupid, d);
    jw_u64(w, "bw_min", (uint64_t)(bw->min + 0.5));
    jw_u64(w, "bw_max", (uint64_t)(bw->max + 0.5));
    jw_dbl(w, "bw_agg", gb > 0 ? 100.0 * (double)bwb / 1024.0 / gb : 0.0);
    jw_dbl(w, "bw_mean", sample_mean(bw));
    jw_dbl(w, "bw_dev", sample_stddev(bw));
    jw_u64(w, "bw_samples", bw->n);
    jw_u64(w, "iops_min", (uint64_t)(io->min + 0.5));
    jw_u64(w, "iops_max", (uint64_t)(io->max + 0.5));
    jw_dbl(w, "iops_mean", sample_mean(io));
    jw_dbl(w, "iops_stddev", sample_stddev(io));
    jw_u64(w, "iops_samples", io->n);
    jw_close(w, '}');
}

static void json_options(struct jw *w, const struct bench_config *cfg, const char *key, const struct section *s)
{
    jw_open(w, key, '{');
    for (unsigned si = 0; s && si < cfg->nsections; si++) {
        if (cfg->sections[si] != s)
            continue;
        for (unsigned i = 0; i < s->n; i++)
            if (!kv_overridden(cfg, si, i, false))
                jw_str(w, s->kv[i].key, s->kv[i].val ? s->kv[i].val : "");
    }
    jw_close(w, '}');
}

static void json_job(struct jw *w, const struct bench_run *run, const struct report *r, const struct cpu_use *cpu,
                     bool plus)
{
    const struct job *j = r->first;
    jw_open(w, NULL, '{');
    jw_str(w, "jobname", r->name);
    jw_u64(w, "groupid", r->groupid);
    jw_u64(w, "error", (uint64_t)r->error);
    jw_u64(w, "eta", 0);
    jw_u64(w, "elapsed", (j->finish_ns - j->start_ns + NS_PER_SEC / 2) / NS_PER_SEC);
    json_options(w, run->cfg, "job options", j->def->sec);
    json_ddir(w, run, "read", r, DDIR_READ, plus);
    json_ddir(w, run, "write", r, DDIR_WRITE, plus);
    json_ddir(w, run, "trim", r, DDIR_TRIM, plus);
    jw_open(w, "sync", '{'); /* fio 3.x: flush latency (issue to completion) and count */
    jw_u64(w, "total_ios", r->sync.ios);
    json_lat(w, "lat_ns", &j->o, &r->sync.lat, r->sync.lat_hist, true, plus);
    jw_close(w, '}');
    jw_u64(w, "job_runtime", ns_to_ms(r->runtime_ns));
    jw_dbl(w, "usr_cpu", r->cpu.usr_pct);
    jw_dbl(w, "sys_cpu", r->cpu.sys_pct);
    jw_u64(w, "ctx", r->cpu.ctx);
    jw_u64(w, "majf", r->cpu.majf);
    jw_u64(w, "minf", r->cpu.minf);
    static const char *const dl[N_DEPTH] = { "1", "2", "4", "8", "16", "32", ">=64" };
    double dp[N_DEPTH];
    depth_distribution(r, dp);
    jw_open(w, "iodepth_level", '{');
    for (unsigned i = 0; i < N_DEPTH; i++)
        jw_dbl(w, dl[i], dp[i]);
    jw_close(w, '}');
    /* iodepth_submit and iodepth_complete, as the engines counted them
     * with iodepth_batch_*; left out otherwise (nothing counts them then). */
    if (r->batch_counted) {
        static const char *const bl[N_DEPTH] = { "0", "4", "8", "16", "32", "64", ">=64" };
        const uint64_t *maps[2] = { r->submit_map, r->complete_map };
        static const char *const names[2] = { "iodepth_submit", "iodepth_complete" };
        for (unsigned m = 0; m < 2; m++) {
            map_distribution(maps[m], dp);
            jw_open(w, names[m], '{');
            for (unsigned i = 0; i < N_DEPTH; i++)
                jw_dbl(w, bl[i], dp[i]);
            jw_close(w, '}');
        }
    }
    struct lat_dist ld;
    lat_distribution(r, &ld);
    char k[32];
    jw_open(w, "latency_ns", '{');
    for (unsigned i = 0; i < N_LAT_B; i++) {
        snprintf(k, sizeof(k), "%" PRIu64, lat_bounds[i]);
        jw_dbl(w, k, ld.ns[i]);
    }
    jw_close(w, '}');
    jw_open(w, "latency_us", '{');
    for (unsigned i = 0; i < N_LAT_B; i++) {
        snprintf(k, sizeof(k), "%" PRIu64, lat_bounds[i]);
        jw_dbl(w, k, ld.us[i]);
    }
    jw_close(w, '}');
    jw_open(w, "latency_ms", '{');
    for (unsigned i = 0; i < N_LAT_MS; i++) {
        if (i == N_LAT_MS - 1)
            snprintf(k, sizeof(k), ">=%" PRIu64, lat_ms_bounds[N_LAT_MS - 2]);
        else
            snprintf(k, sizeof(k), "%" PRIu64, lat_ms_bounds[i]);
        jw_dbl(w, k, ld.ms[i]);
    }
    jw_close(w, '}');
    jw_u64(w, "latency_depth", report_depth(r));
    jw_u64(w, "latency_target", 0);
    jw_dbl(w, "latency_percentile", 100.0);
    jw_u64(w, "latency_window", 0);
    jw_open(w, "uwdf", '{');
    jw_str(w, "backend", j->backend);
    jw_str(w, "api", api_names[j->o.api]);
    jw_bool(w, "reuse", j->o.reuse);
    jw_u64(w, "requests", r->nslots);
    jw_u64(w, "files", r->nfiles);
    /* when the (first) job started, from the run's start: after a stonewall, later */
    jw_u64(w, "start_ms", j->start_ns > run->start_ns ? (j->start_ns - run->start_ns) / NS_PER_MS : 0);
    jw_u64(w, "request_timeout_us", (uint64_t)((j->o.request_timeout_ns + NS_PER_US - 1) / NS_PER_US));
    jw_str(w, "sync", sync_names[j->o.sync]);
    jw_bool(w, "write_through", j->o.sync != SYNC_NONE);
    jw_u64(w, "fsync", j->o.fsync_blocks);
    jw_u64(w, "fdatasync", j->o.fdatasync_blocks);
    jw_u64(w, "flushes", r->sync.ios);
    /* what the engines sent for the files up to the end of the run (ramp included) */
    jw_u64(w, "operations", r->target.ops);
    jw_u64(w, "fixed_buffer_operations", r->target.fixed_buffer_ops);
    jw_u64(w, "fixed_file_operations", r->target.fixed_file_ops);
    jw_u64(w, "registered_buffers", r->target.registered_buffers);
    jw_u64(w, "registered_files", r->target.registered_files);
    jw_str(w, "verify", j->o.verify ? "crc32c" : "none");
    jw_u64(w, "verified_blocks", r->verified);
    jw_u64(w, "verify_errors", r->verify_errors);
    const char *sn = r->err_status && !NT_SUCCESS(r->err_status) ? UwdfNtStatusName(r->err_status) : NULL;
    jw_str(w, "error_status", sn ? sn : "");
    /* the whole process, from the end of the longest ramp */
    jw_dbl(w, "cpu_usr_s", cpu->usr_s);
    jw_dbl(w, "cpu_sys_s", cpu->sys_s);
    jw_u64(w, "cpu_window_ms", cpu->window_ms);
    /* this entry's threads: what usr_cpu and sys_cpu are percentages of */
    jw_dbl(w, "job_cpu_usr_s", r->cpu.usr_s);
    jw_dbl(w, "job_cpu_sys_s", r->cpu.sys_s);
    jw_u64(w, "job_cpu_wall_ms", r->cpu.window_ms);
    jw_close(w, '}');
    jw_close(w, '}');
}

void print_json(FILE *f, const struct bench_run *run, const struct report *reps, unsigned nrep,
                       const struct cpu_use *cpu, bool plus)
{
    const struct bench_config *cfg = run->cfg;
    struct jw w = { .f = f, .depth = 0 };
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t t = tv.tv_sec;
    char date[64];
    ctime_r(&t, date);
    date[strcspn(date, "\n")] = '\0';
    fputc('{', f);
    w.depth = 1;
    w.first[1] = true;
    jw_str(&w, "fio version", BENCH_VERSION);
    jw_u64(&w, "timestamp", (uint64_t)tv.tv_sec);
    jw_u64(&w, "timestamp_ms", (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    jw_str(&w, "time", date);
    bool any_global = false;
    for (unsigned i = 0; i < cfg->nsections; i++)
        any_global |= cfg->sections[i]->global && cfg->sections[i]->n > 0;
    if (any_global) {
        jw_open(&w, "global options", '{');
        for (unsigned i = 0; i < cfg->nsections; i++) {
            const struct section *s = cfg->sections[i];
            if (s->global)
                for (unsigned k = 0; k < s->n; k++)
                    if (!kv_overridden(cfg, i, k, true))
                        jw_str(&w, s->kv[k].key, s->kv[k].val ? s->kv[k].val : "");
        }
        jw_close(&w, '}');
    }
    jw_open(&w, "jobs", '[');
    for (unsigned i = 0; i < nrep; i++)
        json_job(&w, run, &reps[i], cpu, plus);
    jw_close(&w, ']');
    jw_open(&w, "uwdf", '{');
    jw_str(&w, "version", PACKAGE_VERSION);
    jw_str(&w, "backend", nrep ? reps[0].first->backend : "");
    jw_str(&w, "api", nrep ? api_names[reps[0].first->o.api] : "");
    jw_close(&w, '}');
    fputs("\n}\n", f);
}
