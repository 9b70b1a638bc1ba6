/* Samples and the ETA line (eta.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "clock.h"
#include "eta.h"
#include "interrupt.h"
#include "job.h"
#include "log.h"
#include "run.h"
#include "status.h"
#include "util.h"

#define SAMPLE_NS (500 * NS_PER_MS)
#define ETA_NS (1000 * NS_PER_MS)
#define TICK_NS (25 * NS_PER_MS)

static void job_totals(const struct job *j, uint64_t bytes[DDIR_N], uint64_t ios[DDIR_N])
{
    for (int d = 0; d < DDIR_N; d++) {
        bytes[d] = ios[d] = 0;
        for (unsigned k = 0; k < j->nshards; k++) {
            bytes[d] += __atomic_load_n(&j->shards[k].d[d].bytes, __ATOMIC_RELAXED);
            ios[d] += __atomic_load_n(&j->shards[k].d[d].ios, __ATOMIC_RELAXED);
        }
    }
}

static bool job_does(const struct job *j, int dd, int phase)
{
    if (dd == DDIR_READ)
        return rw_reads(j->o.rw) || phase == PHASE_VERIFY;
    if (dd == DDIR_TRIM)
        return rw_trims(j->o.rw) && phase == PHASE_RUN;
    return rw_writes(j->o.rw) && phase == PHASE_RUN;
}

static void monitor_sample(struct job *j, uint64_t now)
{
    int ph = __atomic_load_n(&j->phase, __ATOMIC_ACQUIRE);
    if ((ph != PHASE_RUN && ph != PHASE_VERIFY) || now < j->ramp_end_ns)
        return;
    uint64_t b[DDIR_N], n[DDIR_N];
    job_totals(j, b, n);
    if (!j->sampling) {
        /* Nothing is counted before the ramp ends: the first window starts there. */
        j->sampling = true;
        j->last_ns = j->ramp_end_ns;
    }
    if (now > j->last_ns) {
        double dt = (double)(now - j->last_ns) / 1e9;
        for (int d = 0; d < DDIR_N; d++) {
            if (!job_does(j, d, ph))
                continue;
            sample_add(&j->bw[d], (double)(b[d] - j->last_bytes[d]) / 1024.0 / dt);
            sample_add(&j->iops[d], (double)(n[d] - j->last_ios[d]) / dt);
        }
    }
    j->last_ns = now;
    for (int d = 0; d < DDIR_N; d++) {
        j->last_bytes[d] = b[d];
        j->last_ios[d] = n[d];
    }
}

static char job_status_char(const struct job *j, int ph)
{
    if (ph == PHASE_DONE)
        return '_';
    if (ph == PHASE_VERIFY)
        return 'V';
    if (ph != PHASE_RUN)
        return 'P';
    static const char seq[] = { 'R', 'W', 'r', 'w', 'M', 'm', 'D', 'd', 'W' }; /* fio's letters */
    return seq[j->o.rw];
}

static void fmt_eta(char *out, size_t n, uint64_t secs)
{
    if (secs >= 3600)
        snprintf(out, n, "%" PRIu64 "h:%02" PRIu64 "m:%02" PRIu64 "s", secs / 3600, secs / 60 % 60, secs % 60);
    else
        snprintf(out, n, "%02" PRIu64 "m:%02" PRIu64 "s", secs / 60, secs % 60);
}

/* The status line on stderr: how long the last one printed was. */
struct eta_line {
    int len;
};

/* fio's status line: Jobs: 1 (f=1): [r(1)][45.0%][r=1234MiB/s][r=316k IOPS][eta 00m:05s] */
static void eta_print(struct eta_line *el, struct bench_run *run, uint64_t now, uint64_t t_start, uint64_t dt_ns)
{
    char status[256] = "", line[512];
    size_t sl = 0;
    unsigned running = 0, files = 0;
    double rate_b[DDIR_N] = { 0 }, rate_n[DDIR_N] = { 0 };
    uint64_t eta_max = 0; /* ns */
    bool eta_known = true;
    char prev = 0;
    unsigned run_len = 0;
    for (unsigned i = 0; i <= run->njobs; i++) {
        char c = 0;
        if (i < run->njobs) {
            struct job *j = &run->jobs[i];
            int ph = __atomic_load_n(&j->phase, __ATOMIC_ACQUIRE);
            c = job_status_char(j, ph);
            uint64_t b[DDIR_N], n[DDIR_N];
            if (ph == PHASE_RUN || ph == PHASE_VERIFY) {
                running++;
                files += j->nfiles;
                job_totals(j, b, n);
                for (int d = 0; d < DDIR_N; d++) {
                    double dt = dt_ns ? (double)dt_ns / 1e9 : 1.0;
                    rate_b[d] += (double)(b[d] - j->eta_last_bytes[d]) / dt;
                    rate_n[d] += (double)(n[d] - j->eta_last_ios[d]) / dt;
                    j->eta_last_bytes[d] = b[d];
                    j->eta_last_ios[d] = n[d];
                }
                uint64_t left = UINT64_MAX; /* ns */
                if (ph == PHASE_RUN && j->end_ns)
                    left = j->end_ns > now ? j->end_ns - now : 0;
                if (ph == PHASE_RUN && j->io_limit != UINT64_MAX && now > j->ramp_end_ns) {
                    /* io_limit counts trim+write pairs in trimwrite */
                    uint64_t done = j->o.rw == RW_TRIMWRITE ? n[DDIR_TRIM] : n[0] + n[1] + n[2];
                    double per_s = (double)done / ((double)(now - j->ramp_end_ns) / 1e9);
                    if (per_s > 0 && j->io_limit > done) {
                        uint64_t est = (uint64_t)((double)(j->io_limit - done) / per_s * 1e9);
                        if (est < left)
                            left = est;
                    }
                }
                if (left == UINT64_MAX)
                    eta_known = false;
                else if (left > eta_max)
                    eta_max = left;
            }
        }
        if (c != prev && prev && sl < sizeof(status) - 16) {
            sl += (size_t)snprintf(status + sl, sizeof(status) - sl, "%c(%u)", prev, run_len);
            run_len = 0;
        }
        prev = c;
        run_len++;
    }
    char rb[DDIR_N][32], rn[DDIR_N][32], eta[32];
    for (int d = 0; d < DDIR_N; d++) {
        fmt_scaled(rb[d], sizeof(rb[d]), rate_b[d], true, "B/s");
        fmt_scaled(rn[d], sizeof(rn[d]), rate_n[d], false, "");
    }
    double elapsed = (double)(now - t_start) / 1e9;
    double left_s = (double)eta_max / 1e9;
    double pct = eta_known ? (elapsed + left_s > 0 ? 100.0 * elapsed / (elapsed + left_s) : 0) : 0;
    if (eta_known) /* a countdown: 0.4 s left shows as 1 s */
        fmt_eta(eta, sizeof(eta), (eta_max + NS_PER_SEC - 1) / NS_PER_SEC);
    else
        snprintf(eta, sizeof(eta), "--m:--s");
    /* [r=..,w=..,t=..][r=..,w=..,t=.. IOPS]: the directions that moved, else r */
    static const char letter[DDIR_N] = { 'r', 'w', 't' };
    char bpart[96] = "", npart[96] = "", rates[200];
    size_t bl = 0, nl = 0;
    bool any = rate_n[0] > 0 || rate_n[1] > 0 || rate_n[2] > 0;
    for (int d = 0; d < DDIR_N; d++) {
        if (any ? !(rate_n[d] > 0) : d != DDIR_READ)
            continue;
        bl += (size_t)snprintf(bpart + bl, sizeof(bpart) - bl, "%s%c=%s", bl ? "," : "", letter[d], rb[d]);
        nl += (size_t)snprintf(npart + nl, sizeof(npart) - nl, "%s%c=%s", nl ? "," : "", letter[d], rn[d]);
    }
    snprintf(rates, sizeof(rates), "[%s][%s IOPS]", bpart, npart);
    int len = snprintf(line, sizeof(line), "Jobs: %u (f=%u): [%s][%.1f%%]%s[eta %s]", running, files,
                       status, pct, rates, eta);
    fprintf(stderr, "\r%s%*s", line, el->len > len ? el->len - len : 0, "");
    fflush(stderr);
    el->len = len;
}

static void eta_clear(struct eta_line *el)
{
    if (el->len) {
        fprintf(stderr, "\r%*s\r", el->len, "");
        fflush(stderr);
        el->len = 0;
    }
}

static unsigned jobs_running(const struct bench_run *run)
{
    unsigned n = 0;
    for (unsigned i = 0; i < run->njobs; i++)
        if (__atomic_load_n(&run->jobs[i].phase, __ATOMIC_ACQUIRE) != PHASE_DONE)
            n++;
    return n;
}

void monitor(struct bench_run *run, uint64_t t_start, struct rusage *ru_start, uint64_t *cpu_t0)
{
    enum eta_mode em = run->cfg->g.eta;
    bool eta = em == ETA_ALWAYS || (em == ETA_AUTO && isatty(STDERR_FILENO));
    struct eta_line el = { 0 };
    uint64_t max_ramp = 0;
    for (unsigned i = 0; i < run->njobs; i++)
        if (run->jobs[i].o.ramp_ns > max_ramp)
            max_ramp = run->jobs[i].o.ramp_ns;
    bool cpu_window_open = max_ramp == 0;
    uint64_t next_sample = t_start + SAMPLE_NS, next_eta = t_start + ETA_NS, last_eta = t_start;
    /* windowed logs: as often as they need (1 ms at most) */
    uint64_t tick = TICK_NS;
    for (unsigned i = 0; i < run->njobs; i++) {
        uint64_t p = logs_tick_ns(&run->jobs[i]);
        if (p && p < tick)
            tick = p < NS_PER_MS ? NS_PER_MS : p;
    }
    /* --status-interval: from the release of the jobs */
    uint64_t si = run->cfg->g.status_interval_ns, next_status = si ? t_start + si : UINT64_MAX;
    if (si && si < tick)
        tick = si < NS_PER_MS ? NS_PER_MS : si;
    struct status_snap *snap = NULL;
    bool announced = false;
    while (jobs_running(run) > 0) {
        run_pause(run, tick);
        uint64_t now = now_ns();
        for (unsigned i = 0; i < run->njobs; i++) {
            struct job *j = &run->jobs[i];
            bool done = __atomic_load_n(&j->phase, __ATOMIC_ACQUIRE) == PHASE_DONE;
            logs_sample(j, now, done);
        }
        if (stop_requested())
            run_wake_waves(run);
        if (stop_requested() && !announced) {
            announced = true;
            eta_clear(&el);
            errmsg("interrupted: stopping the jobs (again to abort at once)");
        }
        if (!cpu_window_open && now >= t_start + max_ramp) {
            cpu_window_open = true;
            cpu_snapshot(ru_start);
            *cpu_t0 = now;
        }
        if (now >= next_sample) {
            for (unsigned i = 0; i < run->njobs; i++)
                monitor_sample(&run->jobs[i], now);
            next_sample += SAMPLE_NS;
            if (next_sample < now)
                next_sample = now + SAMPLE_NS;
        }
        if (now >= next_status) {
            if (jobs_running(run) > 0) { /* the last one is the final report */
                eta_clear(&el);
                status_print(&snap, run, now, ru_start, *cpu_t0);
            }
            next_status += si;
            if (next_status <= now)
                next_status = now + si;
        }
        if (eta && now >= next_eta) {
            eta_print(&el, run, now, t_start, now - last_eta);
            last_eta = now;
            next_eta += ETA_NS;
            if (next_eta < now)
                next_eta = now + ETA_NS;
        }
    }
    status_free(snap, run);
    for (unsigned i = 0; i < run->njobs; i++)
        logs_sample(&run->jobs[i], 0, true); /* the last windows */
    if (eta)
        eta_clear(&el);
}
