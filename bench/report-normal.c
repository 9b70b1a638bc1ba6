/* fio's normal report (report.h). */
#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "report.h"
#include "stat.h"
#include "util.h"

static const char *lat_unit(uint64_t max_ns, double *div)
{
    if (max_ns < 10000) {
        *div = 1;
        return "nsec";
    }
    if (max_ns < 10000 * NS_PER_US) {
        *div = 1e3;
        return "usec";
    }
    *div = 1e6;
    return "msec";
}

static void print_lat_line(FILE *f, const char *label, const struct lat_acc *a)
{
    if (!a->n)
        return;
    double div;
    const char *u = lat_unit(a->max, &div);
    fprintf(f, "    %s (%s): min=%" PRIu64 ", max=%" PRIu64 ", avg=%.2f, stdev=%.2f\n", label, u,
            (uint64_t)((double)lat_min(a) / div), (uint64_t)((double)a->max / div), lat_mean(a) / div,
            lat_stddev(a) / div);
}

static void print_percentiles(FILE *f, const char *label, const uint64_t *hist, uint64_t n)
{
    if (!n)
        return;
    uint64_t pv[N_PCT];
    for (unsigned i = 0; i < N_PCT; i++)
        pv[i] = hist_percentile(hist, n, pct_list[i]);
    double div;
    const char *u = lat_unit(pv[N_PCT - 1], &div);
    fprintf(f, "    %s percentiles (%s):\n", label, u);
    for (unsigned i = 0; i < N_PCT; i++) {
        if (i % 4 == 0)
            fprintf(f, "     |");
        fprintf(f, " %5.2fth=[%5" PRIu64 "]%s", pct_list[i], (uint64_t)((double)pv[i] / div + 0.5),
                i + 1 == N_PCT ? "\n" : (i % 4 == 3 ? ",\n" : ","));
    }
}

static void print_ddir_normal(FILE *f, const struct bench_run *run, const struct report *r, int d)
{
    const struct ddir_acc *a = &r->d[d];
    if (!a->ios)
        return;
    char iops[32], bw[32], io[32];
    uint64_t bwb = bw_bytes(a->bytes, r->runtime_ns);
    fmt_scaled(iops, sizeof(iops), iops_of(a->ios, r->runtime_ns), false, "");
    fmt_scaled(bw, sizeof(bw), (double)bwb, true, "B/s");
    fmt_scaled(io, sizeof(io), (double)a->bytes, true, "B");
    fprintf(f, "  %s: IOPS=%s, BW=%s (%" PRIu64 "KiB/s)(%s/%" PRIu64 "msec)\n", ddir_name(d), iops, bw,
            bwb / 1024, io, ns_to_ms(r->runtime_ns));
    print_lat_line(f, "slat", &a->slat);
    print_lat_line(f, "clat", &a->clat);
    print_lat_line(f, " lat", &a->lat);
    print_percentiles(f, "clat", a->clat_hist, a->clat.n);
    const struct sample_acc *s = &r->bw[d];
    if (s->n) {
        double gb = group_bw_kib(run, d);
        bool mib = s->max >= 100000;
        double k = mib ? 1024.0 : 1.0;
        fprintf(f, "   bw (  %s/s): min=%5.0f, max=%5.0f, per=%3.2f%%, avg=%5.2f, stdev=%.2f, samples=%" PRIu64 "\n",
                mib ? "MiB" : "KiB", s->min / k, s->max / k,
                gb > 0 ? 100.0 * (double)bwb / 1024.0 / gb : 0.0, sample_mean(s) / k, sample_stddev(s) / k, s->n);
        s = &r->iops[d];
        fprintf(f, "   iops        : min=%5.0f, max=%5.0f, avg=%.2f, stdev=%.2f, samples=%" PRIu64 "\n",
                s->min, s->max, sample_mean(s), sample_stddev(s), s->n);
    }
}

static void print_lat_dist_line(FILE *f, const char *unit, const double *v, const uint64_t *bounds,
                                unsigned n, bool last_ge)
{
    unsigned shown = 0;
    for (unsigned i = 0; i < n; i++) {
        if (v[i] <= 0)
            continue;
        if (shown % 5 == 0)
            fprintf(f, "%s  lat (%s)   : ", shown ? "\n" : "", unit);
        else
            fprintf(f, ", ");
        double p = v[i] < 0.01 ? 0.01 : v[i];
        if (last_ge && i == n - 1)
            fprintf(f, ">=%" PRIu64 "=%.2f%%", bounds[n - 2], p);
        else
            fprintf(f, "%" PRIu64 "=%.2f%%", bounds[i], p);
        shown++;
    }
    if (shown)
        fprintf(f, "\n");
}

void print_report_normal(FILE *f, const struct bench_run *run, const struct report *r,
                                const struct cpu_use *cpu)
{
    const struct job *j = r->first;
    time_t now = time(NULL);
    char date[64];
    ctime_r(&now, date);
    date[strcspn(date, "\n")] = '\0';
    fprintf(f, "%s: (groupid=%u, jobs=%u): err=%2d: pid=%d: %s\n", r->name, r->groupid, r->njobs,
            r->error, (int)getpid(), date);
    if (r->error && r->err_status && !NT_SUCCESS(r->err_status)) {
        char sb[96];
        fprintf(f, "  error: %s\n", status_str(sb, sizeof(sb), r->err_status));
    }
    for (int d = 0; d < DDIR_N; d++)
        print_ddir_normal(f, run, r, d);
    struct lat_dist ld;
    lat_distribution(r, &ld);
    print_lat_dist_line(f, "nsec", ld.ns, lat_bounds, N_LAT_B, false);
    print_lat_dist_line(f, "usec", ld.us, lat_bounds, N_LAT_B, false);
    print_lat_dist_line(f, "msec", ld.ms, lat_ms_bounds, N_LAT_MS, true);
    if (r->sync.lat.n) {
        fprintf(f, "  fsync/fdatasync/sync_file_range:\n");
        print_lat_line(f, "sync", &r->sync.lat);
        print_percentiles(f, "sync", r->sync.lat_hist, r->sync.lat.n);
    }
    fprintf(f, "  cpu          : usr=%.2f%%, sys=%.2f%%, ctx=%" PRIu64 ", majf=%" PRIu64 ", minf=%" PRIu64
               " (whole process)\n", cpu->usr_pct, cpu->sys_pct, cpu->ctx, cpu->majf, cpu->minf);
    static const char *const dl[] = { "1", "2", "4", "8", "16", "32", ">=64" };
    unsigned db = depth_bucket(report_depth(r));
    fprintf(f, "  IO depths    :");
    for (unsigned i = 0; i < 7; i++)
        fprintf(f, " %s=%.1f%%%s", dl[i], i == db ? 100.0 : 0.0, i < 6 ? "," : "\n");
    fprintf(f, "     issued rwts: total=%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
               " short=0,0,0,0 dropped=0,0,0,0\n",
            r->d[DDIR_READ].ios, r->d[DDIR_WRITE].ios, r->d[DDIR_TRIM].ios, r->sync.ios);
    char tmo[32];
    if (j->o.request_timeout_ns)
        snprintf(tmo, sizeof(tmo), "%" PRIu64 "us", (uint64_t)((j->o.request_timeout_ns + NS_PER_US - 1) / NS_PER_US));
    else
        snprintf(tmo, sizeof(tmo), "none");
    fprintf(f, "  uwdf         : backend=%s, api=%s, reuse=%s, requests=%u, files=%u, request_timeout=%s, "
               "write_through=%s\n",
            j->backend, api_names[j->o.api], j->o.reuse ? "yes" : "no", r->nslots, r->nfiles, tmo,
            j->o.sync != SYNC_NONE ? "yes" : "no");
    if (j->o.fsync_blocks || j->o.fdatasync_blocks)
        fprintf(f, "  uwdf flush   : fsync=%u, fdatasync=%u (every N writes; 0: never), flushes=%" PRIu64 "\n",
                j->o.fsync_blocks, j->o.fdatasync_blocks, r->sync.ios);
    if (j->o.verify)
        fprintf(f, "  verify       : crc32c, blocks verified=%" PRIu64 ", failures=%" PRIu64 "\n",
                r->verified, r->verify_errors);
}

void print_group_normal(FILE *f, const struct bench_run *run)
{
    fprintf(f, "\nRun status group 0 (all jobs):\n");
    for (int d = 0; d < DDIR_N; d++) {
        uint64_t bytes = 0, rt_min = UINT64_MAX, rt_max = 0;
        double bw_min = -1, bw_max = 0;
        bool any = false;
        for (unsigned i = 0; i < run->njobs; i++) {
            const struct job *j = &run->jobs[i];
            uint64_t b = 0;
            for (unsigned k = 0; k <= j->nfiles; k++)
                b += j->shards[k].d[d].bytes;
            if (!b)
                continue;
            any = true;
            uint64_t rt = job_runtime_ns(j);
            double bw = (double)bw_bytes(b, rt);
            bytes += b;
            if (rt < rt_min)
                rt_min = rt;
            if (rt > rt_max)
                rt_max = rt;
            if (bw_min < 0 || bw < bw_min)
                bw_min = bw;
            if (bw > bw_max)
                bw_max = bw;
        }
        if (!any)
            continue;
        char agg[32], mn[32], mx[32], io[32];
        double aggb = (double)bw_bytes(bytes, rt_max);
        fmt_scaled(agg, sizeof(agg), aggb, true, "B/s");
        fmt_scaled(mn, sizeof(mn), bw_min, true, "B/s");
        fmt_scaled(mx, sizeof(mx), bw_max, true, "B/s");
        fmt_scaled(io, sizeof(io), (double)bytes, true, "B");
        fprintf(f, "  %s: bw=%s (%.0fKiB/s), %s-%s (%.0fKiB/s-%.0fKiB/s), io=%s, run=%" PRIu64 "-%" PRIu64 "msec\n",
                d == DDIR_READ ? " READ" : d == DDIR_WRITE ? "WRITE" : " TRIM", agg, aggb / 1024, mn, mx, bw_min / 1024, bw_max / 1024, io,
                ns_to_ms(rt_min), ns_to_ms(rt_max));
    }
}

void print_header(FILE *f, const struct bench_run *run, const struct jobdef *defs, unsigned ndefs)
{
    unsigned idx = 0;
    for (unsigned i = 0; i < ndefs; i++) {
        const struct job_opts *o = &defs[i].o;
        const struct job *j = &run->jobs[idx];
        fprintf(f, "%s: (g=0): rw=%s, bs=(R) %" PRIu32 "B-%" PRIu32 "B, (W) %" PRIu32 "B-%" PRIu32
                   "B, (T) %" PRIu32 "B-%" PRIu32 "B, ioengine=%s, iodepth=%u, api=%s%s\n",
                o->name, rw_names[o->rw], o->bs, o->bs, o->bs, o->bs, o->bs, o->bs, j->backend,
                o->iodepth, api_names[o->api], o->reuse ? "" : ", reuse=0");
        if (o->numjobs > 1)
            fprintf(f, "...\n");
        idx += o->numjobs;
    }
    fprintf(f, "%s\nStarting %u thread%s\n", BENCH_VERSION, run->njobs, run->njobs == 1 ? "" : "s");
    fflush(f);
}
