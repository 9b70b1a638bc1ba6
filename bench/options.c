/* uwdf-bench's option tables (options.h). */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "util.h"

const char *const rw_names[] = { "read", "write", "randread", "randwrite", "rw", "randrw",
                                 "trim", "randtrim", "trimwrite" };
const char *const api_names[] = { "async", "sync", "flt", "stack" };
const char *const engine_names[] = { "default", "io_uring", "libaio", "null", "nbd", "rbd" };
const char *const sync_names[] = { "none", "sync", "dsync" };
const char *const flush_names[] = { "none", "fsync", "fdatasync" };

void opts_fio_defaults(struct job_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->rw = RW_READ;
    o->rwmixread = 50;
    for (int d = 0; d < 3; d++)
        o->min_bs[d] = o->max_bs[d] = 4096;
    o->iodepth = 1;
    o->iodepth_batch_submit = 1;
    o->iodepth_batch_complete_min = 1;
    o->iodepth_batch_complete_max = 1;
    o->numjobs = 1;
    o->randseed = 0x89; /* fio's default seed */
    o->api = API_ASYNC;
    o->reuse = true;
    o->stack_layers = 1;
    o->ioengine = ENGINE_DEFAULT;
    o->nrfiles = 1;
    o->engine_group = true;
    o->per_job_logs = true;
    static const double fio_pcts[] = { 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99 };
    o->npct = sizeof(fio_pcts) / sizeof(fio_pcts[0]);
    memcpy(o->pct, fio_pcts, sizeof(fio_pcts));
    o->pct_precision = 2;
    o->clat_percentiles = true;
    o->randrepeat = true;
}

/* ---- the job options ---- */

uint32_t opts_max_bs(const struct job_opts *o)
{
    uint32_t m = 0;
    for (int d = 0; d < 3; d++)
        if (rw_does(o->rw, d) && o->max_bs[d] > m)
            m = o->max_bs[d];
    return m ? m : o->max_bs[0];
}

uint32_t opts_min_bs(const struct job_opts *o)
{
    uint32_t m = UINT32_MAX;
    for (int d = 0; d < 3; d++)
        if (rw_does(o->rw, d) && o->min_bs[d] < m)
            m = o->min_bs[d];
    return m != UINT32_MAX ? m : o->min_bs[0];
}

bool opts_one_bs(const struct job_opts *o)
{
    return opts_min_bs(o) == opts_max_bs(o);
}

bool opts_ba_differs(const struct job_opts *o)
{
    for (int d = 0; d < 3; d++)
        if (rw_does(o->rw, d) && opts_ba(o, d) != o->min_bs[d])
            return true;
    return false;
}

/* fio's per-direction values: "r,w,t"; an empty field is the default, a
 * list not ended by a comma repeats its last field for the directions
 * after it. Calls one(field or NULL for the default, d) for each. */
static int per_direction(const struct opt_def *def, const char *val, void *base, char *err, size_t n,
                         int (*one)(const struct opt_def *def, const char *field, int d, void *base, char *err,
                                    size_t n))
{
    if (!val || !*val)
        return opt_refuse(err, n, "expected a value (reads[,writes][,trims])");
    char *copy = xstrdup(val);
    char *fields[3] = { NULL, NULL, NULL };
    unsigned nf = 0;
    char *p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (nf == 3) {
            free(copy);
            return opt_refuse(err, n, "at most three comma-separated values (reads, writes, trims)");
        }
        fields[nf++] = p;
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    int rc = 0;
    for (int d = 0; d < 3 && rc == 0; d++) {
        const char *f = (unsigned)d < nf ? fields[d] : fields[nf - 1];
        rc = one(def, *f ? f : NULL, d, base, err, n);
    }
    free(copy);
    return rc;
}

static int parse_one_size(const char *s, uint32_t *out, char *err, size_t n)
{
    uint64_t v;
    if (!parse_size_value(s, &v, NULL) || v == 0)
        return opt_refuse(err, n, "expected a block size such as 4k");
    if (v > 256 * MIB)
        return opt_refuse(err, n, "block size above 256m");
    *out = (uint32_t)v;
    return 0;
}

static int bs_one(const struct opt_def *def, const char *field, int d, void *base, char *err, size_t n)
{
    (void)def;
    struct job_opts *o = base;
    uint32_t v = 4096;
    if (field && parse_one_size(field, &v, err, n))
        return -1;
    o->min_bs[d] = o->max_bs[d] = v;
    o->nsplit[d] = 0;
    return 0;
}

static int bsrange_one(const struct opt_def *def, const char *field, int d, void *base, char *err, size_t n)
{
    (void)def;
    struct job_opts *o = base;
    uint32_t lo = 4096, hi = 4096;
    if (field) {
        const char *dash = strchr(field, '-');
        if (!dash)
            return opt_refuse(err, n, "expected a range such as 4k-64k");
        char low[64];
        size_t len = (size_t)(dash - field);
        if (len >= sizeof(low))
            return opt_refuse(err, n, "expected a range such as 4k-64k");
        memcpy(low, field, len);
        low[len] = '\0';
        if (parse_one_size(low, &lo, err, n) || parse_one_size(dash + 1, &hi, err, n))
            return -1;
        if (lo > hi) { /* fio swaps them */
            uint32_t t = lo;
            lo = hi;
            hi = t;
        }
    }
    o->min_bs[d] = lo;
    o->max_bs[d] = hi;
    o->nsplit[d] = 0;
    return 0;
}

static int cmp_split(const void *a, const void *b)
{
    const struct bs_split *x = a, *y = b;
    return x->bs < y->bs ? -1 : x->bs > y->bs;
}

/* "4k/10:64k/50:32k/": sizes with percentages, a blank one sharing what
 * the others leave; sorted by size (fio). */
static int bssplit_one(const struct opt_def *def, const char *field, int d, void *base, char *err, size_t n)
{
    (void)def;
    struct job_opts *o = base;
    struct bs_split *sp = o->split[d];
    if (!field) {
        o->min_bs[d] = o->max_bs[d] = 4096;
        o->nsplit[d] = 0;
        return 0;
    }
    char *copy = xstrdup(field), *save = NULL;
    unsigned k = 0, blank = 0;
    double sum = 0;
    int rc = 0;
    for (char *t = strtok_r(copy, ":", &save); t && rc == 0; t = strtok_r(NULL, ":", &save)) {
        if (k == BSSPLIT_MAX) {
            rc = opt_refuse(err, n, "at most 64 block sizes per direction");
            break;
        }
        char *slash = strchr(t, '/');
        if (slash)
            *slash = '\0';
        if (parse_one_size(t, &sp[k].bs, err, n)) {
            rc = -1;
            break;
        }
        sp[k].pct = -1;
        if (slash && slash[1]) {
            char *end;
            sp[k].pct = strtod(slash + 1, &end);
            if (end == slash + 1 || *end || !(sp[k].pct >= 0 && sp[k].pct <= 100)) {
                rc = opt_refuse(err, n, "expected size/percentage pairs such as 4k/10:64k/90");
                break;
            }
            sum += sp[k].pct;
        } else {
            blank++;
        }
        k++;
    }
    free(copy);
    if (rc)
        return rc;
    if (!k)
        return opt_refuse(err, n, "expected size/percentage pairs such as 4k/10:64k/90");
    if (sum > 100.0001)
        return opt_refuse(err, n, "the percentages add up to more than 100");
    if (!blank && sum < 99.9999)
        return opt_refuse(err, n, "the percentages must add up to 100");
    for (unsigned i = 0; i < k; i++)
        if (sp[i].pct < 0)
            sp[i].pct = (100.0 - sum) / blank;
    qsort(sp, k, sizeof(*sp), cmp_split);
    o->nsplit[d] = k;
    o->min_bs[d] = sp[0].bs;
    o->max_bs[d] = sp[k - 1].bs;
    return 0;
}

static int ba_one(const struct opt_def *def, const char *field, int d, void *base, char *err, size_t n)
{
    (void)def;
    struct job_opts *o = base;
    o->ba[d] = 0;
    return field ? parse_one_size(field, &o->ba[d], err, n) : 0;
}

static int parse_blockalign(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    return per_direction(d, val, base, err, n, ba_one);
}

static int parse_bs(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    return per_direction(d, val, base, err, n, bs_one);
}

static int parse_bsrange(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    return per_direction(d, val, base, err, n, bsrange_one);
}

static int parse_bssplit(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    return per_direction(d, val, base, err, n, bssplit_one);
}

/* fio's file_service_type: a kind, then optionally :N, the I/Os a file
 * gets before the next. fio's zipf, pareto and normal distributions over
 * the files are not here. */
static int parse_file_service_type(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    static const struct opt_val kinds[] = {
        { "roundrobin", FSVC_ROUNDROBIN, NULL },
        { "random", FSVC_RANDOM, NULL },
        { "sequential", FSVC_SEQUENTIAL, NULL },
        { "zipf", 0, "zipf, pareto and normal file distributions are not supported yet" },
        { "pareto", 0, "zipf, pareto and normal file distributions are not supported yet" },
        { "normal", 0, "zipf, pareto and normal file distributions are not supported yet" },
        { "gauss", 0, "zipf, pareto and normal file distributions are not supported yet" },
        { NULL, 0, NULL },
    };
    struct job_opts *o = base;
    if (!val)
        return opt_refuse(err, n, d->err);
    const char *colon = strchr(val, ':');
    size_t len = colon ? (size_t)(colon - val) : strlen(val);
    const struct opt_val *k = kinds;
    while (k->name && (strlen(k->name) != len || strncmp(k->name, val, len)))
        k++;
    if (!k->name)
        return opt_refuse(err, n, d->err);
    if (k->refused)
        return opt_refuse(err, n, k->refused);
    uint64_t ios = 0;
    if (colon && (!parse_u64_plain(colon + 1, &ios) || ios < 1 || ios > UINT32_MAX))
        return opt_refuse(err, n, "expected a whole number of I/Os from 1 after the ':'");
    o->fsvc = (enum fsvc_mode)k->value;
    o->fsvc_ios = (unsigned)ios;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* fio's FIO_OPT_FLOAT_LIST: "99:99.9:99.99", each 0..100. */
static int parse_percentile_list(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    struct job_opts *o = base;
    double v[PCT_MAX];
    unsigned k = 0, precision = 0;
    const char *p = val ? val : "";
    for (;;) {
        char *end;
        if (k == PCT_MAX)
            return opt_refuse(err, n, "at most 20 percentiles");
        v[k] = strtod(p, &end);
        if (end == p || !(v[k] >= 0.0 && v[k] <= 100.0) || (*end && *end != ':'))
            return opt_refuse(err, n, d->err);
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (dot) {
            unsigned digits = 0;
            while (dot + 1 + digits < end && dot[1 + digits] >= '0' && dot[1 + digits] <= '9')
                digits++;
            if (digits > precision)
                precision = digits;
        }
        k++;
        if (!*end)
            break;
        p = end + 1;
    }
    qsort(v, k, sizeof(v[0]), cmp_double);
    memcpy(o->pct, v, k * sizeof(v[0]));
    o->npct = k;
    o->pct_precision = precision;
    return 0;
}

/* fio's random_distribution: random, zipf[:theta[:center]],
 * pareto[:h[:center]], normal[:dev[:center]], zoned:access/range:...,
 * zoned_abs:access/size:... */
static int parse_random_distribution(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    static const struct opt_val kinds[] = {
        { "random", RDIST_RANDOM, NULL },
        { "zipf", RDIST_ZIPF, NULL },
        { "pareto", RDIST_PARETO, NULL },
        { "normal", RDIST_NORMAL, NULL },
        { "zoned", RDIST_ZONED, NULL },
        { "zoned_abs", RDIST_ZONED_ABS, NULL },
        { NULL, 0, NULL },
    };
    struct job_opts *o = base;
    struct rdist_spec *sp = &o->rdist;
    if (!val)
        return opt_refuse(err, n, d->err);
    /* fio 3.33 documents zones per direction (zoned:r,w,t) but its parser
     * refuses the comma ("failed parsing"): so does this one */
    if (strchr(val, ','))
        return opt_refuse(err, n, "separate read,write distributions are not supported (nor by fio 3.33); "
                                  "give one for all");
    size_t len = strcspn(val, ":");
    const struct opt_val *k = kinds;
    while (k->name && (strlen(k->name) != len || strncmp(k->name, val, len)))
        k++;
    if (!k->name)
        return opt_refuse(err, n, d->err);
    if (k->refused)
        return opt_refuse(err, n, k->refused);
    memset(sp, 0, sizeof(*sp));
    sp->kind = (enum rdist_kind)k->value;
    sp->center = -1;
    const char *p = val[len] ? val + len + 1 : NULL;
    if (sp->kind == RDIST_ZONED || sp->kind == RDIST_ZONED_ABS) {
        bool abs = sp->kind == RDIST_ZONED_ABS;
        const char *form = abs ? "expected zones as access%/size pairs: zoned_abs:60/1g:40/4g"
                               : "expected zones as access%/range% pairs: zoned:60/10:40/90";
        double acc = 0, range = 0;
        while (p && *p) {
            char *end;
            if (sp->nzones == RDIST_MAX_ZONES)
                return opt_refuse(err, n, "at most 256 zones");
            double a = strtod(p, &end);
            if (end == p || *end != '/')
                return opt_refuse(err, n, form);
            const char *q = end + 1;
            double r;
            if (abs) {
                /* a size with fio's units, up to the next zone */
                size_t zl = strcspn(q, ":");
                char buf[64];
                uint64_t bytes;
                if (!zl || zl >= sizeof(buf))
                    return opt_refuse(err, n, form);
                memcpy(buf, q, zl);
                buf[zl] = '\0';
                if (!parse_size_value(buf, &bytes, NULL))
                    return opt_refuse(err, n, form);
                r = (double)bytes;
                end = (char *)q + zl;
            } else
                r = strtod(q, &end);
            if (end == q || (*end && *end != ':') || !(a >= 0 && a <= 100) || !(r >= 0 && (abs || r <= 100)))
                return opt_refuse(err, n, form);
            sp->zones[sp->nzones].access = a;
            sp->zones[sp->nzones].range = r;
            sp->nzones++;
            acc += a;
            range += r;
            p = *end ? end + 1 : NULL;
        }
        if (!sp->nzones)
            return opt_refuse(err, n, abs ? "zoned_abs needs zones: zoned_abs:60/1g:40/4g (access%/size)"
                                          : "zoned needs zones: zoned:60/10:40/90 (access%/range%)");
        if (acc < 99.9999 || acc > 100.0001)
            return opt_refuse(err, n, "the zones' access percentages must add up to 100");
        if (!abs && range > 100.0001)
            return opt_refuse(err, n, "the zones' ranges add up to more than 100%");
        return 0;
    }
    /* fio's defaults without a value: zipf 1.1, pareto 0.2, normal 0 */
    sp->param = sp->kind == RDIST_ZIPF ? 1.1 : sp->kind == RDIST_PARETO ? 0.2 : 0;
    if (p && sp->kind != RDIST_RANDOM) {
        char *end;
        sp->param = strtod(p, &end);
        if (end == p || (*end && *end != ':'))
            return opt_refuse(err, n, d->err);
        if (*end) {
            const char *q = end + 1;
            sp->center = strtod(q, &end);
            if (end == q || *end)
                return opt_refuse(err, n, d->err);
            if (!(sp->center >= 0 && sp->center <= 1))
                return opt_refuse(err, n, "the distribution's center must be from 0 to 1");
        }
    }
    if (sp->kind == RDIST_ZIPF && (sp->param == 1.0 || !isfinite(sp->param)))
        return opt_refuse(err, n, "zipf theta must be different from 1.0");
    if (sp->kind == RDIST_PARETO && !(sp->param > 0 && sp->param < 1))
        return opt_refuse(err, n, "pareto input out of range (0 < h < 1)");
    if (sp->kind == RDIST_NORMAL && !(sp->param >= 0 && sp->param < 100))
        return opt_refuse(err, n, "normal deviation out of range (0 <= dev < 100)");
    return 0;
}

/* fio's cpus_allowed: "0-3,6", CPUs below the number configured. */
static int parse_cpus_allowed(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    struct job_opts *o = base;
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    if (!val || !*val)
        return opt_refuse(err, n, d->err);
    CPU_ZERO(&o->cpus);
    const char *p = val;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9')
            return opt_refuse(err, n, d->err);
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        if (*end == '-') {
            p = end + 1;
            if (*p < '0' || *p > '9')
                return opt_refuse(err, n, d->err);
            hi = strtoul(p, &end, 10);
        }
        if (lo > hi) { /* fio takes a reversed range */
            unsigned long t = lo;
            lo = hi;
            hi = t;
        }
        if (hi >= (unsigned long)ncpu || hi >= CPU_SETSIZE) {
            snprintf(err, n, "CPU %lu too large (max=%ld)", hi, ncpu - 1);
            return -1;
        }
        for (unsigned long c = lo; c <= hi; c++)
            CPU_SET(c, &o->cpus);
        if (!*end)
            break;
        if (*end != ',')
            return opt_refuse(err, n, d->err);
        p = end + 1;
    }
    o->cpus_set = true;
    return 0;
}

/* rate_iops and rate: a uint64_t per direction at def->off. */
static int rate_one(const struct opt_def *def, const char *field, int dir, void *base, char *err, size_t n)
{
    uint64_t v = 0;
    if (field && !parse_size_value(field, &v, NULL))
        return opt_refuse(err, n, def->err);
    ((uint64_t *)((char *)base + def->off))[dir] = v;
    return 0;
}

static int parse_rate(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    return per_direction(d, val, base, err, n, rate_one);
}

/* The iodepth_batch_* options: a count, and the note that batching was asked for. */
static int parse_batch(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    uint64_t v;
    if (!parse_u64_plain(val, &v) || v > 65536)
        return opt_refuse(err, n, d->err);
    *(unsigned *)((char *)base + d->off) = (unsigned)v;
    ((struct job_opts *)base)->batch_set = true;
    return 0;
}

/* engine_submit_batch: a count, and that it was given (the library's own
 * default, UWDF_SUBMIT_BATCH included, applies otherwise). */
static int parse_engine_submit(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    uint64_t v;
    if (!parse_u64_plain(val, &v) || v > 65536) /* UWDF_MAX_ENGINE_SUBMIT_BATCH */
        return opt_refuse(err, n, d->err);
    ((struct job_opts *)base)->engine_submit_batch = (unsigned)v;
    ((struct job_opts *)base)->engine_submit_set = true;
    return 0;
}

static int parse_randseed(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    struct job_opts *o = base;
    if (!parse_u64_plain(val, &o->randseed))
        return opt_refuse(err, n, d->err);
    o->randseed_set = true;
    return 0;
}

/* fio allows a ":<nr>" sequential-skip suffix to rw; uwdf does not. */
static const struct opt_val rw_vals[] = {
    { "read", RW_READ, NULL },
    { "write", RW_WRITE, NULL },
    { "randread", RW_RANDREAD, NULL },
    { "randwrite", RW_RANDWRITE, NULL },
    { "rw", RW_RW, NULL },
    { "readwrite", RW_RW, NULL },
    { "randrw", RW_RANDRW, NULL },
    { "trim", RW_TRIM, NULL },
    { "randtrim", RW_RANDTRIM, NULL },
    { "trimwrite", RW_TRIMWRITE, NULL },
    { "randtrimwrite", 0, "randtrimwrite is not supported yet (trimwrite is)" },
    { NULL, 0, NULL },
};

#define SYNC_ENGINE_REFUSED \
    "synchronous engines are spelled --api=sync here (with --ioengine=io_uring, libaio or null)"
static const struct opt_val ioengine_vals[] = {
    { "io_uring", ENGINE_IO_URING, NULL },
    { "libaio", ENGINE_LIBAIO, NULL },
    { "null", ENGINE_NULL, NULL },
    { "nbd", ENGINE_NBD, NULL },
    { "rbd", ENGINE_RBD, NULL },
    { "psync", 0, SYNC_ENGINE_REFUSED },
    { "sync", 0, SYNC_ENGINE_REFUSED },
    { "pvsync", 0, SYNC_ENGINE_REFUSED },
    { "pvsync2", 0, SYNC_ENGINE_REFUSED },
    { "vsync", 0, SYNC_ENGINE_REFUSED },
    { NULL, 0, NULL },
};

static const struct opt_val verify_vals[] = {
    { "crc32c", VERIFY_CRC32C, NULL },
    { "crc32c-intel", VERIFY_CRC32C, NULL },
    { "0", VERIFY_NONE, NULL },
    { "none", VERIFY_NONE, NULL },
    { NULL, 0, NULL },
};

static const struct opt_val clat_start_vals[] = {
    { "handover", CLAT_START_HANDOVER, NULL },
    { "send", CLAT_START_SEND, NULL },
    { NULL, 0, NULL },
};

static const struct opt_val api_vals[] = {
    { "async", API_ASYNC, NULL },
    { "sync", API_SYNC, NULL },
    { "flt", API_FLT, NULL },
    { "stack", API_STACK, NULL },
    { NULL, 0, NULL },
};

static const struct opt_val sync_vals[] = {
    { "1", SYNC_SYNC, NULL },
    { "sync", SYNC_SYNC, NULL },
    { "dsync", SYNC_DSYNC, NULL },
    { "0", SYNC_NONE, NULL },
    { "none", SYNC_NONE, NULL },
    { NULL, 0, NULL },
};

static const struct opt_val rate_process_vals[] = {
    { "linear", 0, NULL },
    { "poisson", 1, NULL },
    { NULL, 0, NULL },
};

static const struct opt_val cpus_policy_vals[] = {
    { "shared", 0, NULL },
    { "split", 1, NULL },
    { NULL, 0, NULL },
};

static const struct opt_val filename_refused[] = {
    { "-", 0, "'-' (stdin/stdout) is not supported" },
    { NULL, 0, NULL },
};

#define JOB_FIELD(f) OPT_FIELD(struct job_opts, f)
#define JOB_BOOL(f) .kind = OPT_BOOL, JOB_FIELD(f), .err = "expected 0 or 1"
#define JOB_UINT(f, lo, hi) .kind = OPT_UINT, JOB_FIELD(f), .min = (lo), .max = (hi)

const struct opt_def job_options[] = {
    { .name = "name", .kind = OPT_STR, JOB_FIELD(name), .err = "a job name must not be empty",
      .arg = "str", .help = "job name (on the command line: starts a new job; 'global' starts global options)" },
    { .name = "filename", .kind = OPT_STR, JOB_FIELD(filename), .vals = filename_refused,
      .err = "expected a file or block device path", .arg = "path[:path...]",
      .help = "file(s) or block device(s), each an I/O target; --file_service_type picks the next (\\: escapes a colon); --nrfiles is then ignored" },
    { .name = "nrfiles", .alias = "nr_files", JOB_UINT(nrfiles, 1, MAX_NRFILES), .arg = "n",
      .help = "files of a job without --filename, named by --filename_format, --size divided among them (default 1)" },
    { .name = "filename_format", .kind = OPT_STR, JOB_FIELD(filename_format),
      .err = "expected a name such as $jobname.$jobnum.$filenum", .arg = "str",
      .help = "name of generated files: $jobname, $jobnum (clone), $filenum replaced (default $jobname.$jobnum.$filenum); missing directories are created" },
    { .name = "file_service_type", .kind = OPT_FUNC, .parse = parse_file_service_type,
      .err = "expected roundrobin, random or sequential, with an optional :N (I/Os before switching files)",
      .arg = "type[:N]",
      .help = "which file next: roundrobin (default), random or sequential (a file's whole region, then the next); :N issues N I/Os to a file before switching" },
    { .name = "size", .kind = OPT_SIZE_PCT, JOB_FIELD(size), .off_pct = offsetof(struct job_opts, size_pct),
      .min = 1, .max = UINT64_MAX, .err = "expected a size such as 512m, 4g or 20%", .arg = "size|N%",
      .help = "I/O region per job, divided among its files (default: whole file/device; 1g for generated files, divided among --nrfiles)" },
    { .name = "offset", .kind = OPT_SIZE_PCT, JOB_FIELD(offset), .off_pct = offsetof(struct job_opts, offset_pct),
      .max = UINT64_MAX, .err = "expected a byte offset such as 0, 1g or 10%", .arg = "size|N%",
      .help = "start of the I/O region in each file" },
    { .name = "rw", .alias = "readwrite", .kind = OPT_ENUM, JOB_FIELD(rw), .vals = rw_vals,
      .err = "expected read, write, randread, randwrite, rw (readwrite), randrw, trim, randtrim or trimwrite",
      .arg = "mode",
      .help = "read, write, randread, randwrite, rw (readwrite), randrw, trim, randtrim, trimwrite (see STORAGE OPERATIONS)" },
    { .name = "rwmixread", JOB_UINT(rwmixread, 0, 100), .arg = "pct",
      .help = "percentage of reads in rw/randrw (default 50)" },
    { .name = "rwmixwrite", JOB_UINT(rwmixread, 0, 100), .inverse = true, .arg = "pct",
      .help = "percentage of writes in rw/randrw" },
    { .name = "bs", .alias = "blocksize", .kind = OPT_FUNC, .parse = parse_bs, .arg = "size[,size][,size]",
      .help = "block size (default 4k); comma-separated: reads, writes, trims (bs=4k,64k: 64k writes and trims)" },
    { .name = "bsrange", .alias = "blocksize_range", .kind = OPT_FUNC, .parse = parse_bsrange,
      .arg = "min-max[,min-max][,min-max]",
      .help = "random block sizes from min to max, multiples of min; comma-separated as bs" },
    { .name = "bssplit", .kind = OPT_FUNC, .parse = parse_bssplit, .arg = "bs/pct[:bs/pct...][,...]",
      .help = "block sizes by weight (4k/10:64k/90; a blank percentage shares the rest); comma-separated as bs" },
    { .name = "blockalign", .alias = "ba", .kind = OPT_FUNC, .parse = parse_blockalign, .arg = "size[,size][,size]",
      .help = "random offsets are multiples of this (default: the smallest block size); comma-separated as bs; "
              "turns the random map off" },
    { .name = "iodepth", JOB_UINT(iodepth, 1, 65536), .arg = "n", .help = "requests in flight per job (async API)" },
    { .name = "iodepth_batch_submit", .alias = "iodepth_batch", .kind = OPT_FUNC, .parse = parse_batch,
      JOB_FIELD(iodepth_batch_submit), .err = "expected a whole number from 0 to 65536", .arg = "n",
      .help = "submit I/Os to the kernel N at a time (0: iodepth; default 1); see BATCHING" },
    { .name = "iodepth_batch_complete_min", .alias = "iodepth_batch_complete", .kind = OPT_FUNC,
      .parse = parse_batch, JOB_FIELD(iodepth_batch_complete_min), .err = "expected a whole number from 0 to 65536",
      .arg = "n", .help = "complete at least N I/Os at once, or all in flight (default 1); see BATCHING" },
    { .name = "iodepth_batch_complete_max", .kind = OPT_FUNC, .parse = parse_batch,
      JOB_FIELD(iodepth_batch_complete_max), .err = "expected a whole number from 0 to 65536", .arg = "n",
      .help = "complete at most N I/Os at once (default: iodepth_batch_complete_min); see BATCHING" },
    { .name = "numjobs", JOB_UINT(numjobs, 1, 4096), .arg = "n",
      .help = "clones of this job, each a thread with its own requests" },
    { .name = "thread", JOB_BOOL(thread), .help = "accepted; jobs are always threads" },
    { .name = "runtime", .alias = "timeout", .kind = OPT_TIME, JOB_FIELD(runtime_ns), .def = "0",
      .err = "expected a time such as 10, 30s, 500ms, 2m or 1h", .arg = "time",
      .help = "stop after this time (seconds unless a unit: ms, s, m, h); 'timeout' is fio's alias" },
    { .name = "time_based", JOB_BOOL(time_based), .help = "run for the whole runtime, looping over the region" },
    { .name = "ramp_time", .kind = OPT_TIME, JOB_FIELD(ramp_ns), .err = "expected a time such as 2, 2s or 500ms",
      .arg = "time", .help = "run this long before counting statistics (adds to runtime)" },
    { .name = "number_ios", .kind = OPT_SIZE, JOB_FIELD(number_ios), .max = UINT64_MAX,
      .err = "expected a count of I/Os (k/m suffixes allowed)", .arg = "n",
      .help = "stop a job after this many I/Os" },
    { .name = "direct", JOB_BOOL(direct), .help = "O_DIRECT (FILE_NO_INTERMEDIATE_BUFFERING)" },
    { .name = "buffered", JOB_BOOL(direct), .inverse = true, .help = "the opposite of direct" },
    { .name = "ioengine", .kind = OPT_ENUM, JOB_FIELD(ioengine), .vals = ioengine_vals,
      .err = "expected io_uring, libaio, null, nbd or rbd", .arg = "engine",
      .help = "io_uring, libaio or null (sets UWDF_BACKEND for the job's targets); nbd: the export of --uri; "
              "rbd: the image of --pool and --rbdname" },
    { .name = "uri", .kind = OPT_STR, JOB_FIELD(uri), .err = "expected an NBD URI", .arg = "uri",
      .help = "NBD export (nbd://host[:port]/export, nbd+unix:///export?socket=PATH) for --ioengine=nbd, as fio's nbd engine takes it" },
    { .name = "pool", .kind = OPT_STR, JOB_FIELD(pool), .err = "expected a pool name", .arg = "pool",
      .help = "Ceph pool of the RBD image for --ioengine=rbd (as fio's rbd engine)" },
    { .name = "rbdname", .kind = OPT_STR, JOB_FIELD(rbdname), .err = "expected an image name", .arg = "image",
      .help = "RBD image for --ioengine=rbd (the cluster from $CEPH_CONF or /etc/ceph/ceph.conf)" },
    { .name = "clientname", .kind = OPT_STR, JOB_FIELD(clientname), .err = "expected a client name", .arg = "name",
      .help = "Ceph client (user) for --ioengine=rbd: admin (default) or client.admin" },
    { .name = "randseed", .kind = OPT_FUNC, .parse = parse_randseed, .err = "expected a number", .arg = "n",
      .help = "seed of the offset and read/write-mix generators (then randrepeat does not matter)" },
    { .name = "randrepeat", JOB_BOOL(randrepeat), .def = "1",
      .help = "the same random offsets and read/write mix every run (1, fio's default: seeded by randseed); "
              "0: a new seed each run" },
    { .name = "norandommap", JOB_BOOL(norandommap),
      .help = "random offsets without the random map: blocks may repeat or be skipped within a pass "
              "(default: each block once per pass over the region)" },
    { .name = "random_distribution", .kind = OPT_FUNC, .parse = parse_random_distribution,
      .err = "expected random, zipf[:theta[:center]], pareto[:h[:center]], normal[:dev[:center]], "
             "zoned:access/range:... or zoned_abs:access/size:...",
      .arg = "dist[:v[:c]]",
      .help = "random offsets: random (uniform, default), zipf:theta, pareto:h, normal:dev (% of the region), "
              "zoned:60/10:30/20:10/70 (access%/range%), zoned_abs:60/1g:40/4g (access%/size from the start); "
              "the optional :center (0..1) places the hottest "
              "block; any but random has no random map" },
    { .name = "rate_iops", .kind = OPT_FUNC, .parse = parse_rate, JOB_FIELD(rate_iops), .arg = "n[,n][,n]",
      .err = "expected I/Os per second such as 500 or 10k",
      .help = "at most this many I/Os per second, by direction as bs (rate_iops=500: reads and writes 500 each); "
              "I/Os wait for their turn (rate_process)" },
    { .name = "rate", .kind = OPT_FUNC, .parse = parse_rate, JOB_FIELD(rate_bytes), .arg = "bytes[,bytes][,bytes]",
      .err = "expected bytes per second such as 100m",
      .help = "at most this many bytes per second (100m), by direction as bs" },
    { .name = "rate_process", .kind = OPT_ENUM, JOB_FIELD(rate_poisson), .vals = rate_process_vals,
      .err = "expected linear or poisson", .arg = "linear|poisson",
      .help = "the turns of rate and rate_iops: evenly spaced (linear, default) or Poisson arrivals of that mean" },
    { .name = "cpus_allowed", .kind = OPT_FUNC, .parse = parse_cpus_allowed, .arg = "cpu[-cpu][,...]",
      .err = "expected CPU numbers and ranges such as 0-3,6",
      .help = "CPUs the job's thread runs on (it sends the I/O; with --api=sync it also completes it; "
              "the library's completion threads are not pinned)" },
    { .name = "cpus_allowed_policy", .kind = OPT_ENUM, JOB_FIELD(cpus_split), .vals = cpus_policy_vals,
      .err = "expected shared or split", .arg = "shared|split",
      .help = "shared (default): every job on the whole set; split: each job on one CPU of the set, "
              "in job order (wrapping)" },
    { .name = "group_reporting", JOB_BOOL(group_reporting), .help = "report all jobs of a group as one" },
    { .name = "stonewall", .alias = "wait_for_previous", JOB_BOOL(stonewall),
      .help = "start when every job before this one has ended; starts a new reporting group" },
    { .name = "new_group", JOB_BOOL(new_group), .help = "start a new reporting group (the jobs still start together)" },
    { .name = "percentile_list", .kind = OPT_FUNC, .parse = parse_percentile_list, .arg = "p[:p...]",
      .err = "expected percentiles from 0 to 100 separated by ':' (99:99.9)",
      .help = "the percentiles reported (default 1:5:10:20:30:40:50:60:70:80:90:95:99:99.5:99.9:99.95:99.99)" },
    { .name = "clat_percentiles", JOB_BOOL(clat_percentiles), .def = "1",
      .help = "report completion latency percentiles" },
    { .name = "lat_percentiles", JOB_BOOL(lat_percentiles), .def = "0",
      .help = "report total latency (slat + clat) percentiles too" },
    { .name = "verify", .kind = OPT_ENUM, JOB_FIELD(verify), .vals = verify_vals,
      .err = "only crc32c (or crc32c-intel, none) is supported", .arg = "crc32c",
      .help = "writes store a crc32c + offset header per block; reads check it" },
    { .name = "verify_fatal", JOB_BOOL(verify_fatal), .help = "stop the job at the first verify failure" },
    { .name = "fsync", JOB_UINT(fsync_blocks, 0, INT_MAX), .arg = "n",
      .help = "after every n writes a job issues, flush the file: IRP_MJ_FLUSH_BUFFERS = fsync(2) (0: never)" },
    { .name = "fdatasync", JOB_UINT(fdatasync_blocks, 0, INT_MAX), .arg = "n",
      .help = "the same with IRP_MN_FLUSH_DATA_ONLY = fdatasync(2)" },
    { .name = "sync", .kind = OPT_ENUM, JOB_FIELD(sync), .vals = sync_vals,
      .err = "expected none (0), sync (1) or dsync", .arg = "none|sync|dsync",
      .help = "write-through (FUA) writes: 1/sync and dsync both send every write with UwdfRequestSetWriteThrough (RWF_DSYNC); 0/none: off" },
    { .name = "api", .kind = OPT_ENUM, JOB_FIELD(api), .vals = api_vals, .err = "expected async, sync, flt or stack",
      .arg = "async|sync|flt|stack",
      .help = "uwdf: WdfRequestSend with a completion routine (async, default), WdfIoTargetSend*Synchronously (sync, QD1 per thread), Filter Manager callback data with FltPerformAsynchronousIo (flt, see FILTER MANAGER), or async through an in-process filter device's queue (stack, see DEVICE STACK)" },
    { .name = "stack_layers", JOB_UINT(stack_layers, 1, 64), .arg = "n", .def = "1",
      .help = "uwdf: with --api=stack, this many pass-through filter devices stacked over each file (default 1)" },
    { .name = "stack_forget", JOB_BOOL(stack_forget), .arg = "0|1", .def = "0",
      .help = "uwdf: with --api=stack, the filters forward with WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET (1) instead of "
              "a format and a completion routine (0, default)" },
    { .name = "clat_start", .kind = OPT_ENUM, JOB_FIELD(clat_start), .vals = clat_start_vals,
      .err = "expected handover or send", .arg = "handover|send", .def = "handover",
      .help = "uwdf: with --api=async, clat starts when the engine hands the I/O to the kernel (handover, default: "
              "where fio's io_uring and libaio engines start it; slat is the time up to then) or when "
              "WdfRequestSend returns (send)" },
    { .name = "reuse", JOB_BOOL(reuse), .arg = "0|1",
      .help = "uwdf: WdfRequestReuse each request (1, default) or create and delete one per I/O (0); with --api=flt: FltReuseCallbackData (1) or FltFreeCallbackData + FltAllocateCallbackData per I/O (0)" },
    { .name = "request_timeout", .kind = OPT_TIME, JOB_FIELD(request_timeout_ns), .unit_ns = NS_PER_MS,
      .max = 86400 * NS_PER_SEC, .def = "0", .err = "expected a time up to a day such as 500 (ms), 500ms or 2s",
      .arg = "time",
      .help = "uwdf: per-request timeout in the send options, milliseconds unless a unit (0: none); "
              "fio has no such option ('timeout' is fio's alias of runtime)" },
    { .name = "fixedbufs", JOB_BOOL(fixedbufs),
      .help = "io_uring registered buffers (READ_FIXED/WRITE_FIXED); no-op on libaio/null" },
    { .name = "registerfiles", JOB_BOOL(registerfiles),
      .help = "io_uring registered file (IOSQE_FIXED_FILE); no-op on libaio/null" },
    { .name = "engine_submit_batch", .kind = OPT_FUNC, .parse = parse_engine_submit,
      JOB_FIELD(engine_submit_batch), .err = "expected a whole number from 0 to 65536", .arg = "n",
      .help = "uwdf: the engines' submit policy for every target of the run (UwdfSetEngineSubmitBatch): "
              "hand I/Os to the kernel N at a time; 1 is one io_uring_enter / io_submit per I/O, what "
              "fio's default iodepth_batch_submit=1 does; 0 (default): what an engine's pass staged, at once; "
              "jobs that give it must agree" },
    { .name = "engine_group", JOB_BOOL(engine_group),
      .help = "uwdf: the job's files share one engine (UwdfStartEngineGroup), as a fio job's files share "
              "its one ring (default 1); 0: the engine pool spreads them over its engines" },
    { .name = "write_lat_log", .kind = OPT_STR, JOB_FIELD(lat_log), .bare_ok = true, .arg = "prefix",
      .err = "expected a file name prefix",
      .help = "fio's slat, clat and lat logs, <prefix>_slat.N.log ... (bare in a job file: the job's name); "
              "needs log_avg_msec" },
    { .name = "write_bw_log", .kind = OPT_STR, JOB_FIELD(bw_log), .bare_ok = true, .arg = "prefix",
      .err = "expected a file name prefix", .help = "fio's bandwidth log (KiB/s), <prefix>_bw.N.log; needs log_avg_msec" },
    { .name = "write_iops_log", .kind = OPT_STR, JOB_FIELD(iops_log), .bare_ok = true, .arg = "prefix",
      .err = "expected a file name prefix", .help = "fio's IOPS log, <prefix>_iops.N.log; needs log_avg_msec" },
    { .name = "write_hist_log", .kind = OPT_STR, JOB_FIELD(hist_log), .bare_ok = true, .arg = "prefix",
      .err = "expected a file name prefix",
      .help = "fio's clat histogram log (fio's 1856 buckets), <prefix>_clat_hist.N.log; needs log_hist_msec" },
    { .name = "log_hist_msec", JOB_UINT(log_hist_msec, 0, 86400000), .arg = "msec", .def = "0",
      .help = "write_hist_log's window: one histogram per direction every this many ms" },
    { .name = "log_hist_coarseness", JOB_UINT(log_hist_coarseness, 0, 6), .arg = "n", .def = "0",
      .help = "write_hist_log: 2^n of fio's buckets summed per column (0..6)" },
    { .name = "log_avg_msec", JOB_UINT(log_avg_msec, 0, 86400000), .arg = "msec", .def = "0",
      .help = "one log entry per direction for each window of this many ms (its average; bs and offset 0)" },
    { .name = "per_job_logs", JOB_BOOL(per_job_logs), .def = "1",
      .help = "the job's number in the log names (<prefix>_bw.N.log); 0: <prefix>_bw.log" },
    { .name = "log_offset", JOB_BOOL(log_offset), .def = "0",
      .help = "an offset column in the logs (0 in windowed entries, as fio)" },
};
const size_t n_job_options = sizeof(job_options) / sizeof(job_options[0]);

const struct opt_def *find_job_option(const char *key)
{
    return opt_find(job_options, n_job_options, key);
}

/* ---- process-wide options (command line only) ---- */

static int parse_output_format(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    struct global_opts *g = base;
    unsigned f = 0;
    char *copy = xstrdup(val ? val : "");
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "normal"))
            f |= OUT_NORMAL;
        else if (!strcmp(t, "terse") || !strcmp(t, "minimal"))
            f |= OUT_TERSE;
        else if (!strcmp(t, "json"))
            f |= OUT_JSON;
        else if (!strcmp(t, "json+"))
            f |= OUT_JSONPLUS;
        else
            rc = -1;
    }
    free(copy);
    if (rc || !f)
        return opt_refuse(err, n, d->err);
    if (f & OUT_JSONPLUS)
        f &= ~(unsigned)OUT_JSON;
    g->formats = f;
    return 0;
}

static const struct opt_val eta_vals[] = {
    { "auto", ETA_AUTO, NULL },
    { "always", ETA_ALWAYS, NULL },
    { "never", ETA_NEVER, NULL },
    { NULL, 0, NULL },
};

/* fio's --status-interval: a time, seconds without a unit, at least 1 ms. */
static int parse_status_interval(const struct opt_def *d, void *base, const char *val, char *err, size_t n)
{
    struct global_opts *g = base;
    uint64_t v;
    if (!val || !parse_time_value(val, 0, &v))
        return opt_refuse(err, n, d->err);
    if (v < NS_PER_MS)
        return opt_refuse(err, n, "status interval too small (at least 1ms)");
    g->status_interval_ns = v;
    return 0;
}

#define GLOBAL_FIELD(f) OPT_FIELD(struct global_opts, f)

const struct opt_def global_options[] = {
    { .name = "output", .kind = OPT_STR, GLOBAL_FIELD(output), .err = "expected a file name", .arg = "file",
      .help = "write the report there instead of stdout" },
    { .name = "output-format", .kind = OPT_FUNC, .parse = parse_output_format,
      .err = "expected normal, terse, json or json+ (comma-separated)", .arg = "fmt[,fmt]",
      .help = "normal (default), terse, json, json+" },
    { .name = "minimal", .kind = OPT_PRESET, GLOBAL_FIELD(formats), .min = OUT_TERSE,
      .help = "same as --output-format=terse" },
    { .name = "eta", .kind = OPT_ENUM, GLOBAL_FIELD(eta), .vals = eta_vals, .err = "expected always, never or auto",
      .arg = "when", .def = "auto", .help = "auto (default: when stderr is a tty), always, never" },
    { .name = "status-interval", .kind = OPT_FUNC, .parse = parse_status_interval,
      .err = "expected a time such as 1, 1s or 500ms", .arg = "time",
      .help = "print the full report of every job's statistics so far this often, in each output format "
              "(seconds without a unit)" },
    { .name = "parse-only", .kind = OPT_PRESET, GLOBAL_FIELD(parse_only), .min = 1,
      .help = "read and check the options and job files, then exit without running anything" },
    { .name = "cmdhelp", .kind = OPT_STR, GLOBAL_FIELD(cmdhelp), .bare_ok = true, .arg = "[option]",
      .err = "expected an option name or all",
      .help = "print an option's help, type and default (every option: bare or =all)" },
};
const size_t n_global_options = sizeof(global_options) / sizeof(global_options[0]);

/* An NBD URI ("nbd://", "nbds+unix://", ...): one name, colons and all. */
bool filename_is_nbd_uri(const char *spec)
{
    size_t n = strspn(spec, "abcdefghijklmnopqrstuvwxyz+");
    return n >= 3 && strncmp(spec, "nbd", 3) == 0 && strncmp(spec + n, "://", 3) == 0;
}

unsigned split_filenames(struct strpool *pool, const char *spec, const char ***out)
{
    size_t len = strlen(spec);
    if (filename_is_nbd_uri(spec)) {
        const char **one = xcalloc(1, sizeof(*one));
        one[0] = keep_str(pool, spec);
        *out = one;
        return 1;
    }
    const char **list = xcalloc(len + 1, sizeof(*list));
    char *buf = xcalloc(1, len + 1);
    unsigned n = 0;
    size_t b = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = spec[i];
        if (c == '\\' && spec[i + 1] == ':') {
            buf[b++] = ':';
            i++;
            continue;
        }
        if (c == ':' || c == '\0') {
            if (b)
                list[n++] = keep_strn(pool, buf, b);
            b = 0;
            continue;
        }
        buf[b++] = c;
    }
    free(buf);
    *out = list;
    return n;
}
