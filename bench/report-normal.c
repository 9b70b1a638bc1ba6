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

/* fio's display of a latency: msec or usec only when min, max and the
 * deviation all pass that unit's thresholds (in ns), else nsec; min and
 * max as whole numbers of at most 6 digits (larger ones scaled: 12345k). */
static void print_lat_line(FILE *f, const char *label, const struct lat_acc *a)
{
    if (!a->n)
        return;
    uint64_t mn = lat_min(a), mx = a->max, div = 1;
    double mean = lat_mean(a), dev = lat_stddev(a);
    const char *u = "nsec";
    if (mn > 2000000 && mx > 99999999 && dev > 1e6) {
        div = 1000000;
        u = "msec";
    } else if (mn > 2000 && mx > 99999 && dev > 1e3) {
        div = 1000;
        u = "usec";
    }
    char smin[32], smax[32];
    fmt_num(smin, sizeof(smin), (double)(mn / div), 6, false, "");
    fmt_num(smax, sizeof(smax), (double)(mx / div), 6, false, "");
    fprintf(f, "    %s (%s): min=%s, max=%s, avg=%5.02f, stdev=%5.02f\n", label, u, smin, smax,
            mean / (double)div, dev / (double)div);
}

/* fio's percentile block: the unit from the smallest and largest value
 * shown, values rounded up into it, as many per line as fit in 80
 * columns. */
static void print_percentiles(FILE *f, const char *label, const struct job_opts *o, const uint64_t *hist,
                              uint64_t n)
{
    if (!n || !o->npct)
        return;
    const unsigned precision = o->pct_precision;
    const unsigned np = o->npct;
    uint64_t pv[PCT_MAX], minv = UINT64_MAX, maxv = 0;
    for (unsigned i = 0; i < np; i++) {
        pv[i] = hist_percentile(hist, n, o->pct[i]);
        if (pv[i] < minv)
            minv = pv[i];
        if (pv[i] > maxv)
            maxv = pv[i];
    }
    unsigned scale = 0;
    const char *u = "nsec";
    uint64_t div = 1;
    if (minv > 2000000 && maxv > 99999999) {
        scale = 2;
        div = 1000000;
        u = "msec";
    } else if (minv > 2000 && maxv > 99999) {
        scale = 1;
        div = 1000;
        u = "usec";
    }
    int width = 1;
    for (uint64_t v = maxv / div; v >= 10; v /= 10)
        width++;
    if (width < 5)
        width = 5;
    unsigned per_line = (80 - 7) / (precision + 10 + (unsigned)width);
    fprintf(f, "    %s percentiles (%s):\n     |", label, u);
    for (unsigned i = 0; i < np; i++) {
        if (i && i % per_line == 0)
            fprintf(f, "     |");
        uint64_t v = pv[i];
        for (unsigned k = 0; k < scale; k++)
            v = (v + 999) / 1000;
        bool last = i == np - 1;
        fprintf(f, " %*.*fth=[%*" PRIu64 "]%c", (int)precision + 3, (int)precision, o->pct[i], width, v,
                last ? '\n' : ',');
        if (!last && i % per_line == per_line - 1)
            fprintf(f, "\n");
    }
}

static void print_ddir_normal(FILE *f, const struct bench_run *run, const struct report *r, int d)
{
    const struct ddir_acc *a = &r->d[d];
    if (!a->ios)
        return;
    char iops[32], bw[32], bwalt[32], io[32];
    uint64_t bwb = bw_bytes(a->bytes, r->runtime_ns);
    fmt_scaled(iops, sizeof(iops), iops_of(a->ios, r->runtime_ns), false, "");
    fmt_scaled(bw, sizeof(bw), (double)bwb, true, "B/s");
    fmt_scaled(bwalt, sizeof(bwalt), (double)bwb, false, "B/s");
    fmt_scaled(io, sizeof(io), (double)a->bytes, true, "B");
    fprintf(f, "  %s: IOPS=%s, BW=%s (%s)(%s/%" PRIu64 "msec)\n", ddir_name(d), iops, bw, bwalt, io,
            ns_to_ms(r->runtime_ns));
    print_lat_line(f, "slat", &a->slat);
    print_lat_line(f, "clat", &a->clat);
    print_lat_line(f, " lat", &a->lat);
    const struct job_opts *o = &r->first->o;
    if (o->clat_percentiles)
        print_percentiles(f, "clat", o, a->clat_hist, a->clat.n);
    if (o->lat_percentiles)
        print_percentiles(f, "lat", o, a->lat_hist, a->lat.n);
    /* fio 3.x: KiB/s samples (MiB/s once the mean passes 1 GiB/s), whole
     * min and max; per= is the mean's share of the group's bandwidth. */
    const struct sample_acc *s = &r->bw[d];
    if (s->n) {
        double mean = sample_mean(s), dev = sample_stddev(s);
        double agg_kib = group_bw_kib(run, r->groupid, d);
        double per = agg_kib > 1.0 ? (double)(int64_t)mean * 100.0 / agg_kib : 100.0;
        uint64_t mn = (uint64_t)s->min, mx = (uint64_t)s->max;
        const char *u = "KiB";
        if (mean > 1024.0 * 1024.0) {
            mn /= 1024;
            mx /= 1024;
            mean /= 1024.0;
            dev /= 1024.0;
            u = "MiB";
        }
        fprintf(f, "   bw (%5s/s): min=%5" PRIu64 ", max=%5" PRIu64 ", per=%3.2f%%, avg=%5.02f, stdev=%5.02f, "
                   "samples=%" PRIu64 "\n", u, mn, mx, per > 100.0 ? 100.0 : per, mean, dev, s->n);
    }
    s = &r->iops[d];
    if (s->n)
        fprintf(f, "   iops        : min=%5" PRIu64 ", max=%5" PRIu64 ", avg=%5.02f, stdev=%5.02f, samples=%" PRIu64
                   "\n", (uint64_t)s->min, (uint64_t)s->max, sample_mean(s), sample_stddev(s), s->n);
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

void print_report_normal(FILE *f, const struct bench_run *run, const struct report *r)
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
        print_percentiles(f, "sync", &j->o, r->sync.lat_hist, r->sync.lat.n);
    }
    fprintf(f, "  cpu          : usr=%3.2f%%, sys=%3.2f%%, ctx=%" PRIu64 ", majf=%" PRIu64 ", minf=%" PRIu64 "\n",
            r->cpu.usr_pct, r->cpu.sys_pct, r->cpu.ctx, r->cpu.majf, r->cpu.minf);
    static const char *const dl[N_DEPTH] = { "1", "2", "4", "8", "16", "32", ">=64" };
    double dp[N_DEPTH];
    depth_distribution(r, dp);
    fprintf(f, "  IO depths    :");
    for (unsigned i = 0; i < N_DEPTH; i++)
        fprintf(f, " %s=%3.1f%%%s", dl[i], dp[i], i < N_DEPTH - 1 ? "," : "\n");
    if (r->batch_counted) {
        /* fio's submit and complete lines: measured by the engines */
        static const char *const bl[N_DEPTH] = { "0", "4", "8", "16", "32", "64", ">=64" };
        const uint64_t *maps[2] = { r->submit_map, r->complete_map };
        static const char *const names[2] = { "     submit    :", "     complete  :" };
        for (unsigned m = 0; m < 2; m++) {
            map_distribution(maps[m], dp);
            fprintf(f, "%s", names[m]);
            for (unsigned i = 0; i < N_DEPTH; i++)
                fprintf(f, " %s=%3.1f%%%s", bl[i], dp[i], i < N_DEPTH - 1 ? "," : "\n");
        }
    }
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
    if (j->o.fixedbufs || j->o.registerfiles)
        fprintf(f, "  uwdf fixed   : operations=%" PRIu64 ", fixed buffer=%" PRIu64 ", fixed file=%" PRIu64
                   ", registered buffers=%" PRIu64 ", registered files=%" PRIu64 "\n",
                r->target.ops, r->target.fixed_buffer_ops, r->target.fixed_file_ops, r->target.registered_buffers,
                r->target.registered_files);
    if (j->o.verify)
        fprintf(f, "  verify       : crc32c, blocks verified=%" PRIu64 ", failures=%" PRIu64 "\n",
                r->verified, r->verify_errors);
}

static void print_one_group(FILE *f, const struct bench_run *run, unsigned groupid)
{
    fprintf(f, "\nRun status group %u (all jobs):\n", groupid);
    for (int d = 0; d < DDIR_N; d++) {
        uint64_t bytes = 0, rt_min = UINT64_MAX, rt_max = 0;
        double bw_min = -1, bw_max = 0;
        bool any = false;
        for (unsigned i = 0; i < run->njobs; i++) {
            const struct job *j = &run->jobs[i];
            if (j->groupid != groupid)
                continue;
            uint64_t b = 0;
            for (unsigned k = 0; k < j->nshards; k++)
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
        /* fio 3.x: each figure base 1024, then base 1000 in parentheses */
        char agg[2][32], mn[2][32], mx[2][32], io[2][32];
        double aggb = (double)bw_bytes(bytes, rt_max);
        for (int k = 0; k < 2; k++) {
            fmt_scaled(agg[k], sizeof(agg[k]), aggb, k == 0, "B/s");
            fmt_scaled(mn[k], sizeof(mn[k]), bw_min, k == 0, "B/s");
            fmt_scaled(mx[k], sizeof(mx[k]), bw_max, k == 0, "B/s");
            fmt_scaled(io[k], sizeof(io[k]), (double)bytes, k == 0, "B");
        }
        fprintf(f, "%s: bw=%s (%s), %s-%s (%s-%s), io=%s (%s), run=%" PRIu64 "-%" PRIu64 "msec\n",
                d == DDIR_READ ? "   READ" : d == DDIR_WRITE ? "  WRITE" : "   TRIM", agg[0], agg[1], mn[0], mx[0],
                mn[1], mx[1], io[0], io[1], ns_to_ms(rt_min), ns_to_ms(rt_max));
    }
}

void print_group_normal(FILE *f, const struct bench_run *run)
{
    for (unsigned g = 0; g < run->ngroups; g++)
        print_one_group(f, run, g);
}

void print_header(FILE *f, const struct bench_run *run, const struct jobdef *defs, unsigned ndefs)
{
    unsigned idx = 0;
    for (unsigned i = 0; i < ndefs; i++) {
        const struct job_opts *o = &defs[i].o;
        const struct job *j = &run->jobs[idx];
        char bsz[6][32];
        for (int d = 0; d < 3; d++) {
            fmt_bytes(bsz[2 * d], sizeof(bsz[0]), o->min_bs[d]);
            fmt_bytes(bsz[2 * d + 1], sizeof(bsz[0]), o->max_bs[d]);
        }
        fprintf(f, "%s: (g=%u): rw=%s, bs=(R) %s-%s, (W) %s-%s, (T) %s-%s, ioengine=%s, iodepth=%u, api=%s%s\n",
                o->name, j->groupid, rw_names[o->rw], bsz[0], bsz[1], bsz[2], bsz[3], bsz[4], bsz[5], j->backend,
                o->iodepth, api_names[o->api], o->reuse ? "" : ", reuse=0");
        if (o->numjobs > 1)
            fprintf(f, "...\n");
        idx += o->numjobs;
    }
    fprintf(f, "%s\nStarting %u thread%s\n", BENCH_VERSION, run->njobs, run->njobs == 1 ? "" : "s");
    fflush(f);
}
