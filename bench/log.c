/* fio's windowed logs (log.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "job.h"
#include "log.h"
#include "util.h"

enum log_kind { LOG_SLAT, LOG_CLAT, LOG_LAT, LOG_BW, LOG_IOPS, LOG_HIST, LOG_N };
static const char *const log_names[LOG_N] = { "slat", "clat", "lat", "bw", "iops", "clat_hist" };

/* fio's clat histogram (FIO_IO_U_PLAT_BITS 6, FIO_IO_U_PLAT_NR 1856 in
 * fio 3.x): values below 128 ns a bucket each, then 64 buckets per power
 * of two, the last bucket holding everything from 127 * 2^27 ns (17 s) up. */
#define FIO_PLAT_BITS 6u
#define FIO_PLAT_NR (29u << FIO_PLAT_BITS)

/* Our buckets (histogram.h) split each power of two in 128, aligned with
 * fio's 64: each fio bucket is the union of two of ours. */
_Static_assert(HIST_SUB_BITS == FIO_PLAT_BITS + 1, "histogram.h buckets must halve fio's");
static unsigned fio_plat_index(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned i = (idx / HIST_SUB + 1u) * (HIST_SUB / 2u) + idx % HIST_SUB / 2u;
    return i < FIO_PLAT_NR ? i : FIO_PLAT_NR - 1;
}

/* The running totals a window is the difference of. */
struct log_totals {
    uint64_t ios[DDIR_N], bytes[DDIR_N];
    uint64_t n[3][DDIR_N], sum[3][DDIR_N]; /* slat, clat, lat */
};

struct job_logs {
    FILE *f[LOG_N];
    char *path[LOG_N];
    bool owner[LOG_N]; /* another job with the same name (per_job_logs=0) shares it */
    uint64_t period_ns, window_start;
    bool started, finished;
    struct log_totals last;
    /* write_hist_log: its own window, and the cumulative fio histogram of
     * each direction at the last one */
    uint64_t hist_period_ns, hist_start;
    bool hist_started;
    uint64_t *hist_last[DDIR_N];
};

static const char *log_prefix(const struct job_opts *o, enum log_kind k)
{
    const char *p = k <= LOG_LAT ? o->lat_log : k == LOG_BW ? o->bw_log : k == LOG_IOPS ? o->iops_log : o->hist_log;
    return !p ? NULL : *p ? p : o->name;
}

int logs_open(struct job *j, unsigned number)
{
    const struct job_opts *o = &j->o;
    if (!o->lat_log && !o->bw_log && !o->iops_log && !o->hist_log)
        return 0;
    if (o->hist_log && !o->log_hist_msec) {
        /* fio would write an empty file */
        errmsg("%s: write_hist_log needs log_hist_msec (the histogram's window)", o->name);
        return -1;
    }
    struct job_logs *L = xcalloc(1, sizeof(*L));
    j->logs = L;
    L->period_ns = (uint64_t)o->log_avg_msec * NS_PER_MS;
    if (o->hist_log) {
        L->hist_period_ns = (uint64_t)o->log_hist_msec * NS_PER_MS;
        for (int d = 0; d < DDIR_N; d++)
            L->hist_last[d] = xcalloc(FIO_PLAT_NR, sizeof(uint64_t));
    }
    for (int k = 0; k < LOG_N; k++) {
        const char *prefix = log_prefix(o, (enum log_kind)k);
        if (!prefix)
            continue;
        char *path = o->per_job_logs ? xasprintf("%s_%s.%u.log", prefix, log_names[k], number)
                                     : xasprintf("%s_%s.log", prefix, log_names[k]);
        L->path[k] = path;
        /* per_job_logs=0: the jobs of one prefix write one file */
        for (struct job *e = j->run->jobs; e < j && !L->f[k]; e++)
            if (e->logs && e->logs->path[k] && !strcmp(e->logs->path[k], path))
                L->f[k] = e->logs->f[k];
        if (L->f[k])
            continue;
        L->f[k] = fopen(path, "w");
        if (!L->f[k]) {
            errmsg("%s: cannot create log '%s': %s", o->name, path, strerror(errno));
            return -1;
        }
        L->owner[k] = true;
    }
    return 0;
}

uint64_t logs_tick_ns(const struct job *j)
{
    const struct job_logs *L = j->logs;
    if (!L)
        return 0;
    /* averages: 4 looks per window; histograms: a window's time is when the
     * monitor closes it, so 16 keep it within ~6% of fio's (closed by the
     * first I/O past the window) */
    uint64_t a = j->o.lat_log || j->o.bw_log || j->o.iops_log ? L->period_ns / 4 : 0, h = L->hist_period_ns / 16;
    return !a ? h : !h ? a : a < h ? a : h;
}

static void log_totals(const struct job *j, struct log_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned k = 0; k < j->nshards; k++)
        for (int d = 0; d < DDIR_N; d++) {
            const struct ddir_acc *a = &j->shards[k].d[d];
            const struct lat_acc *l[3] = { &a->slat, &a->clat, &a->lat };
            t->ios[d] += __atomic_load_n(&a->ios, __ATOMIC_RELAXED);
            t->bytes[d] += __atomic_load_n(&a->bytes, __ATOMIC_RELAXED);
            for (int m = 0; m < 3; m++) {
                t->n[m][d] += __atomic_load_n(&l[m]->n, __ATOMIC_RELAXED);
                t->sum[m][d] += __atomic_load_n(&l[m]->sum, __ATOMIC_RELAXED);
            }
        }
}

/* fio's line: windowed entries have block size and offset 0; priority 0. */
static void log_line(struct job_logs *L, enum log_kind k, uint64_t ms, uint64_t value, int d, bool offset)
{
    if (L->f[k])
        fprintf(L->f[k], offset ? "%" PRIu64 ", %" PRIu64 ", %d, 0, 0, 0\n" : "%" PRIu64 ", %" PRIu64 ", %d, 0, 0\n",
                ms, value, d);
}

static void avg_sample(struct job *j, uint64_t now, bool final)
{
    struct job_logs *L = j->logs;
    if (L->finished || !L->period_ns)
        return;
    int ph = __atomic_load_n(&j->phase, __ATOMIC_ACQUIRE);
    if (final)
        now = j->finish_ns;
    else if ((ph != PHASE_RUN && ph != PHASE_VERIFY) || now < j->ramp_end_ns)
        return;
    if (!L->started) {
        /* Nothing is counted before the ramp ends: the first window starts there. */
        L->started = true;
        L->window_start = j->ramp_end_ns;
    }
    if (final)
        L->finished = true;
    else if (now < L->window_start + L->period_ns)
        return;
    if (now <= L->window_start)
        return;
    struct log_totals t;
    log_totals(j, &t);
    double dt = (double)(now - L->window_start) / 1e9;
    uint64_t ms = (now - j->ramp_end_ns) / NS_PER_MS;
    bool off = j->o.log_offset;
    for (int d = 0; d < DDIR_N; d++) {
        uint64_t dios = t.ios[d] - L->last.ios[d];
        if (!dios)
            continue;
        log_line(L, LOG_BW, ms, (uint64_t)((double)(t.bytes[d] - L->last.bytes[d]) / 1024.0 / dt), d, off);
        log_line(L, LOG_IOPS, ms, (uint64_t)((double)dios / dt + 0.5), d, off);
        for (int m = 0; m < 3; m++) {
            uint64_t dn = t.n[m][d] - L->last.n[m][d];
            if (dn) /* --api=sync has no slat */
                log_line(L, (enum log_kind)(LOG_SLAT + m), ms, (t.sum[m][d] - L->last.sum[m][d]) / dn, d, off);
        }
    }
    L->last = t;
    L->window_start = now;
}

/* One direction's histogram line: the window's counts (the cumulative
 * histogram less the last window's) in fio's buckets, summed by 2^coarseness,
 * after the time, the direction and the block size (fio's: of the I/O that
 * closed the window; ours: the direction's one size, 0 with several). */
static void hist_line(struct job *j, uint64_t ms, int d, const uint64_t *cum)
{
    struct job_logs *L = j->logs;
    FILE *f = L->f[LOG_HIST];
    unsigned stride = 1u << j->o.log_hist_coarseness;
    uint32_t bs = j->o.min_bs[d] == j->o.max_bs[d] ? j->o.min_bs[d] : 0;
    fprintf(f, "%" PRIu64 ", %d, %" PRIu32, ms, d, bs);
    for (unsigned i = 0; i < FIO_PLAT_NR; i += stride) {
        uint64_t n = 0;
        for (unsigned k = i; k < i + stride; k++)
            n += cum[k] - L->hist_last[d][k];
        fprintf(f, ", %" PRIu64, n);
    }
    fputc('\n', f);
}

/* fio's histogram windows: one line per direction that completed I/O in
 * the window; like fio, no line for the partial last window. */
static void hist_sample(struct job *j, uint64_t now, bool final)
{
    struct job_logs *L = j->logs;
    if (!L->hist_period_ns || final)
        return;
    int ph = __atomic_load_n(&j->phase, __ATOMIC_ACQUIRE);
    if ((ph != PHASE_RUN && ph != PHASE_VERIFY) || now < j->ramp_end_ns)
        return;
    if (!L->hist_started) {
        L->hist_started = true;
        L->hist_start = j->ramp_end_ns;
    }
    if (now < L->hist_start + L->hist_period_ns)
        return;
    uint64_t cum[FIO_PLAT_NR];
    uint64_t ms = (now - j->ramp_end_ns) / NS_PER_MS;
    for (int d = 0; d < DDIR_N; d++) {
        memset(cum, 0, sizeof(cum));
        uint64_t n = 0;
        for (unsigned k = 0; k < j->nshards; k++) {
            const uint64_t *h = j->shards[k].d[d].clat_hist;
            for (unsigned i = 0; i < HIST_N; i++) {
                uint64_t c = __atomic_load_n(&h[i], __ATOMIC_RELAXED);
                cum[fio_plat_index(i)] += c;
            }
        }
        for (unsigned i = 0; i < FIO_PLAT_NR; i++)
            n += cum[i] - L->hist_last[d][i];
        if (!n)
            continue;
        hist_line(j, ms, d, cum);
        memcpy(L->hist_last[d], cum, sizeof(cum));
    }
    /* the next window starts where this one was due, as fio's */
    L->hist_start += L->hist_period_ns;
    if (L->hist_start + L->hist_period_ns <= now)
        L->hist_start = now;
}

void logs_sample(struct job *j, uint64_t now, bool final)
{
    if (!j->logs)
        return;
    avg_sample(j, now, final);
    hist_sample(j, now, final);
}

/* fio's per-I/O entries (log_avg_msec=0): the I/O's latencies in ns,
 * its bandwidth (bytes per ms of clat, fio's KiB/s-like figure), an IOPS
 * of 1, each with the I/O's size and (log_offset) offset. Written as the
 * I/Os complete, by whichever thread completes them (stdio locks each
 * line). */
void logs_io(struct job *j, int d, uint32_t bytes, uint64_t offset, bool has_slat, uint64_t slat,
             uint64_t clat, uint64_t tc)
{
    struct job_logs *L = j->logs;
    uint64_t ms = (tc - j->ramp_end_ns) / NS_PER_MS;
    uint64_t v[LOG_N] = { slat, clat, slat + clat, (uint64_t)bytes * 1000000 / (clat ? clat : 1), 1 };
    for (int k = 0; k < LOG_HIST; k++) {
        if (!L->f[k] || (k == LOG_SLAT && !has_slat))
            continue;
        if (j->o.log_offset)
            fprintf(L->f[k], "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu32 ", %" PRIu64 ", 0\n", ms, v[k], d, bytes,
                    offset);
        else
            fprintf(L->f[k], "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu32 ", 0\n", ms, v[k], d, bytes);
    }
}

bool logs_close(struct job *j)
{
    struct job_logs *L = j->logs;
    bool ok = true;
    if (!L)
        return true;
    for (int k = 0; k < LOG_N; k++) {
        if (L->owner[k] && L->f[k] && fclose(L->f[k]) != 0) {
            errmsg("%s: writing log '%s' failed: %s", j->o.name, L->path[k], strerror(errno));
            ok = false;
        }
        free(L->path[k]);
    }
    for (int d = 0; d < DDIR_N; d++)
        free(L->hist_last[d]);
    free(L);
    j->logs = NULL;
    return ok;
}
