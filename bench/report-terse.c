/* fio's terse report, version 3 (report.h). */
#include "config.h"

#include <inttypes.h>

#include "job.h"
#include "report.h"
#include "stat.h"
#include "util.h"

static void terse_lat(FILE *f, const struct lat_acc *a)
{
    fprintf(f, ";%" PRIu64 ";%" PRIu64 ";%f;%f", lat_min(a) / 1000, a->max / 1000, lat_mean(a) / 1000.0,
            lat_stddev(a) / 1000.0);
}

void print_report_terse(FILE *f, const struct bench_run *run, const struct report *r)
{
    fprintf(f, "3;%s;%s;%u;%d", BENCH_VERSION, r->name, r->groupid, r->error);
    for (int d = DDIR_READ; d <= DDIR_WRITE; d++) { /* version 3 has no trim fields (as fio) */
        const struct ddir_acc *a = &r->d[d];
        uint64_t bwb = bw_bytes(a->bytes, r->runtime_ns);
        fprintf(f, ";%" PRIu64 ";%" PRIu64 ";%" PRIu64 ";%" PRIu64, a->bytes >> 10, bwb >> 10,
                (uint64_t)(iops_of(a->ios, r->runtime_ns) + 0.5), a->ios ? ns_to_ms(r->runtime_ns) : 0);
        terse_lat(f, &a->slat);
        terse_lat(f, &a->clat);
        /* fio's 20 percentile fields: the clat ones (lat with only
         * lat_percentiles), then "0%=0" */
        const struct job_opts *o = &r->first->o;
        const uint64_t *hist = o->clat_percentiles ? a->clat_hist : o->lat_percentiles ? a->lat_hist : NULL;
        uint64_t n = o->clat_percentiles ? a->clat.n : a->lat.n;
        for (unsigned i = 0; i < PCT_MAX; i++) {
            if (hist && i < o->npct)
                fprintf(f, ";%f%%=%" PRIu64, o->pct[i], hist_percentile(hist, n, o->pct[i]) / 1000);
            else
                fprintf(f, ";0%%=0");
        }
        terse_lat(f, &a->lat);
        const struct sample_acc *s = &r->bw[d];
        double gb = group_bw_kib(run, r->groupid, d);
        fprintf(f, ";%.0f;%.0f;%f%%;%f;%f", s->min, s->max, gb > 0 ? 100.0 * (double)bwb / 1024.0 / gb : 0.0,
                sample_mean(s), sample_stddev(s));
    }
    fprintf(f, ";%f%%;%f%%;%" PRIu64 ";%" PRIu64 ";%" PRIu64, r->cpu.usr_pct, r->cpu.sys_pct, r->cpu.ctx,
            r->cpu.majf, r->cpu.minf);
    double dp[N_DEPTH];
    depth_distribution(r, dp);
    for (unsigned i = 0; i < N_DEPTH; i++)
        fprintf(f, ";%.1f%%", dp[i]);
    struct lat_dist ld;
    lat_distribution(r, &ld);
    double ns_total = 0;
    for (unsigned i = 0; i < N_LAT_B; i++)
        ns_total += ld.ns[i];
    for (unsigned i = 0; i < N_LAT_B; i++)
        fprintf(f, ";%.2f%%", ld.us[i] + (i == 0 ? ns_total : 0));
    for (unsigned i = 0; i < N_LAT_MS; i++)
        fprintf(f, ";%.2f%%", ld.ms[i]);
    fprintf(f, "\n");
}
