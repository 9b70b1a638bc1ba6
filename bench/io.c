/* One I/O of a slot (io.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <sys/mman.h>

#include "interrupt.h"
#include "io.h"
#include "log.h"
#include "util.h"
#include "verify.h"

const char *status_str(char *buf, size_t n, NTSTATUS st)
{
    const char *name = UwdfNtStatusName(st);
    if (name)
        snprintf(buf, n, "%s (0x%08" PRIX32 ")", name, (uint32_t)st);
    else
        snprintf(buf, n, "NTSTATUS 0x%08" PRIX32, (uint32_t)st);
    return buf;
}

/* fio reports errno values; the closest for a status. */
int status_errno(NTSTATUS st)
{
    switch (st) {
    case STATUS_IO_TIMEOUT: return ETIMEDOUT;
    case STATUS_CANCELLED: return ECANCELED;
    case STATUS_INVALID_PARAMETER: return EINVAL;
    case STATUS_DISK_FULL: return ENOSPC;
    case STATUS_INSUFFICIENT_RESOURCES: return ENOMEM;
    case STATUS_MEDIA_WRITE_PROTECTED: return EROFS;
    case STATUS_ACCESS_DENIED: return EACCES;
    case STATUS_NO_SUCH_DEVICE: return ENODEV;
    case STATUS_INVALID_HANDLE: return EBADF;
    default: return EIO;
    }
}

bool job_set_error(struct job *j, int err, NTSTATUS st)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&j->error_set, &expected, 1, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return false;
    /* read by --status-interval's snapshots meanwhile */
    __atomic_store_n(&j->error, err, __ATOMIC_RELAXED);
    __atomic_store_n(&j->err_status, st, __ATOMIC_RELAXED);
    return true;
}

void job_io_error(struct job *j, const struct slot *s, NTSTATUS st, const char *stage)
{
    __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
    if (!job_set_error(j, status_errno(st), st))
        return;
    char sb[96];
    if (s->ddir == DDIR_SYNC)
        errmsg("%s: %s%s%s error on '%s': %s", j->o.name, flush_names[s->flush], stage ? " " : "",
               stage ? stage : "", j->files[s->file].path, status_str(sb, sizeof(sb), st));
    else
        errmsg("%s: %s%s%s error at offset %" PRIu64 " of '%s': %s", j->o.name, ddir_name(s->ddir),
               stage ? " " : "", stage ? stage : "", s->offset, j->files[s->file].path,
               status_str(sb, sizeof(sb), st));
}

/* ---- offsets ---- */

__thread char tls_thread_id;

#define RANDOM_CHUNK 64 /* cursor indexes a slot reserves at once */

/* Random order without repeats within a pass over the region (fio's
 * random map), a new order each pass. */
static inline __attribute__((always_inline)) uint64_t next_random_block(struct slot *s, struct file_slot *f, bool chunked)
{
    for (;;) {
        uint64_t c;
        if (!chunked) {
            c = __atomic_fetch_add(&f->cursor, 1, __ATOMIC_RELAXED);
        } else {
            if (s->rnd_next == s->rnd_end) {
                s->rnd_next = __atomic_fetch_add(&f->cursor, RANDOM_CHUNK, __ATOMIC_RELAXED);
                s->rnd_end = s->rnd_next + RANDOM_CHUNK;
            }
            c = s->rnd_next++;
        }
        uint64_t pass = f->bits < 64 ? c >> f->bits : 0;
        uint64_t y = bits_permute(c & f->mask, f->bits, f->mask, f->key ^ (pass * 0xD1B54A32D192ED03ull));
        if (y < f->nblocks)
            return y;
    }
}

static uint64_t next_seq_block(struct file_slot *f)
{
    return __atomic_fetch_add(&f->cursor, 1, __ATOMIC_RELAXED) % f->nblocks;
}

static void slot_set_io(struct slot *s, unsigned fi, uint64_t blk, int dd, uint32_t len)
{
    struct job *j = s->job;
    s->file = fi;
    s->block = blk;
    s->offset = j->files[fi].start + blk * j->gran;
    s->ddir = dd;
    s->len = len;
    s->mo.BufferOffset = 0;
    s->mo.BufferLength = len;
}

/* ---- several block sizes (bs=r,w, bsrange, bssplit) ---- */

/* The size of the slot's next I/O of direction dd: fio's choice (a
 * bsrange size is min + max * u, a bssplit size by the cumulative
 * weights; both multiples of the minimum, at most the maximum). */
static uint32_t next_len(struct slot *s, int dd)
{
    const struct job_opts *o = &s->job->o;
    uint32_t lo = o->min_bs[dd], hi = o->max_bs[dd];
    if (lo == hi)
        return lo;
    double u = (double)(xorshift64(&s->rng) >> 11) * 0x1p-53;
    uint64_t len = hi;
    if (o->nsplit[dd]) {
        double acc = 0;
        for (unsigned i = 0; i < o->nsplit[dd]; i++) {
            acc += o->split[dd][i].pct;
            if (u * 100.0 < acc) {
                len = o->split[dd][i].bs;
                break;
            }
        }
    } else {
        len = lo + (uint64_t)((double)hi * u);
    }
    len -= len % lo;
    return len > hi ? hi : (uint32_t)len;
}

static bool claim_bit(uint64_t *map, uint64_t b)
{
    uint64_t bit = 1ull << (b & 63);
    return !(__atomic_fetch_or(&map[b >> 6], bit, __ATOMIC_RELAXED) & bit);
}

/* A size for an I/O at block blk of f that ends inside the region: fio
 * draws again until one fits (so near the end smaller sizes are more
 * likely); after 64 draws the last is cut to fit. *len and the blocks it
 * covers (*k) are updated. */
static void fit_len(struct slot *s, int dd, const struct file_slot *f, uint64_t blk, uint32_t *len, uint64_t *k)
{
    struct job *j = s->job;
    for (int tries = 0; blk + *k > f->nblocks && tries < 64; tries++) {
        *len = next_len(s, dd);
        *k = (*len + j->gran - 1) / j->gran;
    }
}

/* fio's random map with several sizes: the next block of the file's
 * random order no I/O covered yet (down to a multiple of align), and up
 * to k - 1 uncovered blocks after it; the blocks taken (0: every block is
 * covered, the region is done). */
static uint64_t claim_random_run(struct slot *s, int dd, struct file_slot *f, uint64_t align, uint32_t *len,
                                 uint64_t *k, uint64_t *blk)
{
    for (;;) {
        uint64_t c = __atomic_fetch_add(&f->cursor, 1, __ATOMIC_RELAXED);
        if (f->bits < 64 && c >> f->bits)
            return 0;
        uint64_t y = bits_permute(c & f->mask, f->bits, f->mask, f->key);
        if (y >= f->nblocks)
            continue;
        y -= y % align;
        if (!claim_bit(f->claimed, y))
            continue;
        fit_len(s, dd, f, y, len, k);
        uint64_t run = 1;
        while (run < *k && y + run < f->nblocks && claim_bit(f->claimed, y + run))
            run++;
        *blk = y;
        return run;
    }
}

/* Sequential with several sizes: the next k blocks (a size that fits
 * before the end of the region, fit_len), or those left before the end
 * (the next pass starts at its beginning). */
static uint64_t next_seq_run(struct slot *s, int dd, struct file_slot *f, uint32_t *len, uint64_t *k, uint64_t *blk)
{
    uint64_t c = __atomic_load_n(&f->cursor, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t pos = c % f->nblocks;
        fit_len(s, dd, f, pos, len, k);
        uint64_t take = pos + *k > f->nblocks ? f->nblocks - pos : *k;
        if (__atomic_compare_exchange_n(&f->cursor, &c, c + take, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *blk = pos;
            return take;
        }
    }
}

/* Verify pass: the next block some write of this job stored. */
static bool next_verify_io(struct slot *s)
{
    struct job *j = s->job;
    unsigned start = j->nfiles > 1 ? (unsigned)__atomic_fetch_add(&j->file_rr, 1, __ATOMIC_RELAXED) : 0;
    for (unsigned k = 0; k < j->nfiles; k++) {
        unsigned fi = (start + k) % j->nfiles;
        struct file_slot *f = &j->files[fi];
        for (;;) {
            uint64_t b = __atomic_fetch_add(&f->vcursor, 1, __ATOMIC_RELAXED);
            if (b >= f->nblocks)
                break;
            if (__atomic_load_n(&f->written[b >> 6], __ATOMIC_RELAXED) & (1ull << (b & 63))) {
                slot_set_io(s, fi, b, DDIR_READ, j->gran);
                s->verify_read = true;
                return true;
            }
        }
    }
    return false;
}

/* A write was just chosen: counts it, and owes a flush when it is the N-th. */
static void note_write(struct slot *s)
{
    struct job *j = s->job;
    unsigned fs = j->o.fsync_blocks, fds = j->o.fdatasync_blocks;
    if (!fs && !fds)
        return;
    uint64_t n = __atomic_add_fetch(&j->writes, 1, __ATOMIC_RELAXED);
    if (fs && n % fs == 0)
        s->flush_due = FLUSH_FSYNC;
    else if (fds && n % fds == 0)
        s->flush_due = FLUSH_FDATASYNC;
}

/* A run that is not time_based does each file's region once, as fio does:
 * the chosen file, or the next whose region is not done yet. */
static unsigned file_with_room(struct job *j, unsigned fi, uint64_t need)
{
    if (j->o.time_based)
        return fi;
    for (unsigned k = 0; k < j->nfiles; k++) {
        unsigned c = (fi + k) % j->nfiles;
        if (__atomic_fetch_add(&j->files[c].taken, need, __ATOMIC_RELAXED) < j->files[c].nblocks)
            return c;
    }
    return fi; /* all done: the job's I/O limit ends it */
}

/* The file of the slot's next I/O (fio's file_service_type). Round robin
 * and sequential count the job's I/Os (one atomic increment each, as a
 * single file costs none); random keeps each slot on the file it drew for
 * N I/Os. */
static unsigned next_file(struct slot *s, uint64_t k)
{
    struct job *j = s->job;
    unsigned per = j->o.fsvc_ios ? j->o.fsvc_ios : 1;
    if (j->nfiles == 1)
        return 0;
    if (j->o.fsvc == FSVC_RANDOM) {
        if (s->file_left == 0) {
            s->file_cur = (unsigned)(xorshift64(&s->rng) % j->nfiles);
            s->file_left = per;
        }
        s->file_left--;
        return file_with_room(j, s->file_cur, k);
    }
    uint64_t c = __atomic_fetch_add(&j->file_rr, 1, __ATOMIC_RELAXED);
    if (j->o.fsvc == FSVC_ROUNDROBIN || j->o.fsvc_ios)
        return file_with_room(j, (unsigned)(c / per % j->nfiles), k);
    /* sequential: each file's whole region in turn */
    c %= j->total_blocks;
    unsigned lo = 0, hi = j->nfiles - 1;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (j->file_end[mid] > c)
            hi = mid;
        else
            lo = mid + 1;
    }
    return file_with_room(j, lo, k);
}

/* rate, rate_iops: the turn of the I/O just chosen on the direction's
 * schedule (linear: evenly spaced; poisson: exponential gaps of the same
 * mean), counted from the job's start. */
static uint64_t rate_turn(struct slot *s, int dd, uint32_t len)
{
    struct job *j = s->job;
    double gap = 0;
    if (j->o.rate_iops[dd])
        gap = 1e9 / (double)j->o.rate_iops[dd];
    if (j->o.rate_bytes[dd]) {
        double g = (double)len * 1e9 / (double)j->o.rate_bytes[dd];
        if (g > gap)
            gap = g;
    }
    if (gap == 0)
        return 0;
    if (j->o.rate_poisson) {
        double u = (double)((xorshift64(&s->rng) >> 11) + 1) * 0x1p-53; /* (0, 1] */
        gap *= -log(u);
    }
    return j->start_ns + __atomic_fetch_add(&j->rate_next[dd], (uint64_t)gap, __ATOMIC_RELAXED);
}

/* The next turn of direction dd (0: not rated, any time). */
static uint64_t rate_peek(const struct job *j, int dd)
{
    if (!j->o.rate_iops[dd] && !j->o.rate_bytes[dd])
        return 0;
    return j->start_ns + __atomic_load_n(&j->rate_next[dd], __ATOMIC_RELAXED);
}

/* Waits on the job thread for the turn of the slot's I/O; false when the
 * job ends first (runtime, interrupt). */
static bool rate_wait(struct slot *s, uint64_t now)
{
    struct job *j = s->job;
    while (now < s->due) {
        if (stop_requested() || __atomic_load_n(&j->stop, __ATOMIC_RELAXED) || (j->end_ns && now >= j->end_ns))
            return false;
        uint64_t until = j->end_ns && j->end_ns < s->due ? j->end_ns : s->due;
        uint64_t nap = until - now;
        sleep_ns(nap > 10 * NS_PER_MS ? 10 * NS_PER_MS : nap);
        now = now_ns();
    }
    return !(j->end_ns && now >= j->end_ns);
}

/* next_io for a plain job (struct job): the general path below without
 * the tests that cannot apply to it; the same limits, the same blocks. */
static inline __attribute__((always_inline)) bool next_plain_io(struct slot *s, struct job *j, uint64_t now)
{
    if (__atomic_load_n(&j->stop, __ATOMIC_RELAXED))
        return false;
    if ((j->end_ns && now >= j->end_ns) ||
        (j->io_limit != UINT64_MAX && __atomic_fetch_add(&j->issued, 1, __ATOMIC_RELAXED) >= j->io_limit)) {
        __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
        return false;
    }
    struct file_slot *f = &j->files[0];
    uint64_t blk = j->plain == PLAIN_RANDOM ? next_random_block(s, f, j->nslots == 1) : next_seq_block(f);
    slot_set_io(s, 0, blk, j->plain_dd, j->gran);
    return true;
}

/* Out of line: a plain job's I/O does not pay for its registers. */
static __attribute__((noinline)) bool next_general_io(struct slot *s, struct job *j, uint64_t now)
{
    if (s->resume) { /* parked until its turn: the job thread sends it then */
        s->resume = false;
        if (__atomic_load_n(&j->stop, __ATOMIC_RELAXED) || !rate_wait(s, now)) {
            __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
            return false;
        }
        return true;
    }
    /* What this slot owes for its last I/O (which completed) is sent even
     * when the runtime or size limit has just ended the job, not after an
     * error: the flush its last write made due, the write of the block its
     * trimwrite trim just trimmed. */
    if (s->flush_due || s->tw_write) {
        bool failed = __atomic_load_n(&j->error_set, __ATOMIC_ACQUIRE);
        if (s->flush_due) {
            s->flush = s->flush_due;
            s->flush_due = FLUSH_NONE;
            if (!failed) {
                s->ddir = DDIR_SYNC;
                s->verify_read = false;
                return true;
            }
        }
        if (s->tw_write) {
            s->tw_write = false;
            if (!failed) {
                slot_set_io(s, s->file, s->block, DDIR_WRITE, s->len);
                s->verify_read = false;
                note_write(s);
                return true;
            }
        }
    }
    if (__atomic_load_n(&j->stop, __ATOMIC_RELAXED))
        return false;
    if (__atomic_load_n(&j->phase, __ATOMIC_RELAXED) == PHASE_VERIFY)
        return next_verify_io(s);
    if (j->end_ns && now >= j->end_ns) {
        __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
        return false;
    }
    if (j->io_limit != UINT64_MAX &&
        __atomic_fetch_add(&j->issued, 1, __ATOMIC_RELAXED) >= j->io_limit) {
        __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
        return false;
    }
    int dd = rw_one_dir(j->o.rw);
    if (dd < 0) {
        dd = (xorshift64(&s->rng) % 100) < j->o.rwmixread ? DDIR_READ : DDIR_WRITE;
        if (j->rated) { /* fio: the other direction when this one is ahead of its rate and that one is not */
            uint64_t mine = rate_peek(j, dd), other = rate_peek(j, DDIR_WRITE - dd);
            if (mine > now && other < mine)
                dd = DDIR_WRITE - dd;
        }
    }
    uint32_t len = j->gran;
    uint64_t k = 1; /* blocks of gran bytes the I/O covers */
    if (j->vary) {
        len = next_len(s, dd);
        k = (len + j->gran - 1) / j->gran;
    }
    /* random offsets are multiples of the direction's blockalign (by
     * default its smallest size) */
    uint64_t align = 1, ba = opts_ba(&j->o, dd);
    if (j->vary && ba % j->gran == 0 && j->min_nblocks >= ba / j->gran)
        align = ba / j->gran;
    unsigned fi = next_file(s, k);
    struct file_slot *f = &j->files[fi];
    uint64_t blk, take = k;
    if (!rw_random(j->o.rw)) {
        if (j->vary)
            take = next_seq_run(s, dd, f, &len, &k, &blk);
        else
            blk = next_seq_block(f);
    } else if (f->claimed) {
        /* several sizes and the random map: another file when this one is covered */
        take = 0;
        for (unsigned i = 0; i < j->nfiles && !take; i++) {
            f = &j->files[fi];
            take = claim_random_run(s, dd, f, align, &len, &k, &blk);
            if (!take)
                fi = (fi + 1) % j->nfiles;
        }
        if (!take) {
            __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
            return false;
        }
    } else {
        if (f->dist) /* skewed: no random map (fio) */
            blk = rdist_next(f->dist, &s->rng);
        else if (ba != j->o.min_bs[dd]) {
            /* fio's blockalign: the I/O fits whole, b * ba + smallest size
             * inside the region */
            uint64_t kmin = j->o.min_bs[dd] / j->gran;
            uint64_t room = f->nblocks - (kmin > align && f->nblocks > kmin - align ? kmin - align : 0);
            uint64_t last = room / align ? room / align : 1;
            blk = xorshift64(&s->rng) % last * align;
        } else if (j->o.norandommap)
            blk = align > 1 ? xorshift64(&s->rng) % (f->nblocks / align) * align : xorshift64(&s->rng) % f->nblocks;
        else
            blk = next_random_block(s, f, j->nfiles == 1 && j->nslots == 1);
        if (j->vary) {
            blk -= blk % align;
            fit_len(s, dd, f, blk, &len, &k);
        }
        take = blk + k > f->nblocks ? f->nblocks - blk : k;
    }
    if (j->unit_limit != UINT64_MAX) {
        /* the job does its region's size, the last I/O cut to fit (fio) */
        uint64_t before = __atomic_fetch_add(&j->units, take, __ATOMIC_RELAXED);
        if (before >= j->unit_limit) {
            __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
            return false;
        }
        if (before + take > j->unit_limit)
            take = j->unit_limit - before;
    }
    if (take < k) /* cut at the end of the region or of the uncovered run (fio) */
        len = (uint32_t)(take * j->gran);
    s->tw_write = j->o.rw == RW_TRIMWRITE;
    slot_set_io(s, fi, blk, dd, len);
    s->verify_read = dd == DDIR_READ && j->verify_reads;
    if (dd == DDIR_WRITE) {
        note_write(s);
        if (j->o.verify)
            verify_fill(s->buf, len, s->offset, xorshift64(&s->rng));
    } else if (dd == DDIR_TRIM) {
        s->dsm_range->StartingOffset = (LONGLONG)s->offset;
        s->dsm_range->LengthInBytes = len;
    }
    if (j->rated && (s->due = rate_turn(s, dd, len)) > now) {
        /* The job thread sends it at its turn, in turn order with the
         * others (even an I/O chosen on the job thread: waiting here would
         * hold back the parked ones due earlier); the synchronous mode's one
         * slot waits here. */
        if (THIS_THREAD != j->self || !j->api->one_slot) {
            s->park = true;
            return false;
        }
        if (!rate_wait(s, now)) {
            __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
            return false;
        }
    }
    return true;
}

bool next_io(struct slot *s, uint64_t now)
{
    struct job *j = s->job;
    if (stop_requested())
        return false;
    if (j->plain != PLAIN_NONE)
        return next_plain_io(s, j, now);
    return next_general_io(s, j, now);
}

/* ---- completion bookkeeping (any thread; sh is that thread's shard) ---- */

/* Inlined into slot_finish and slot_completed_at (an asynchronous
 * completion), which is most of the I/O: no call, no spill test. */
static inline __attribute__((always_inline)) bool slot_account(struct slot *s, struct shard *sh, bool has_slat,
                                                               uint64_t slat, uint64_t clat, uint64_t tc)
{
    struct job *j = s->job;
    bool counted = tc >= j->ramp_end_ns;
    bool moved = s->ddir == DDIR_SYNC || s->ddir == DDIR_TRIM || s->info == s->len; /* a trim returns no bytes */
    bool ok = NT_SUCCESS(s->status) && moved;
    if (counted) {
        /* Its depth, failed or not, and its times in one update of the shard. */
        shard_write_begin(sh);
        shard_put_depth(sh, depth_bucket(s->depth));
        if (ok && s->ddir == DDIR_SYNC)
            shard_put_sync(sh, has_slat ? slat + clat : clat);
        else if (ok)
            shard_put_io(sh, s->ddir, s->len, has_slat, slat, clat, has_slat ? slat + clat : clat);
        shard_write_end(sh);
    }
    if (!NT_SUCCESS(s->status)) {
        job_io_error(j, s, s->status, NULL);
        return false;
    }
    if (s->ddir == DDIR_SYNC)
        return true;
    if (!moved) {
        __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
        if (job_set_error(j, EIO, s->status))
            errmsg("%s: short %s at offset %" PRIu64 " of '%s': %lu of %" PRIu32 " bytes", j->o.name,
                   ddir_name(s->ddir), s->offset, j->files[s->file].path, (unsigned long)s->info,
                   s->len);
        return false;
    }
    if (counted && logs_per_io(j->logs, &j->o))
        logs_io(j, s->ddir, s->len, s->offset, has_slat, slat, clat, tc);
    if (s->ddir == DDIR_WRITE && j->files[s->file].written)
        __atomic_fetch_or(&j->files[s->file].written[s->block >> 6], 1ull << (s->block & 63),
                          __ATOMIC_RELAXED);
    if (s->verify_read)
        return slot_verify(s);
    return true;
}

/* slot_finish, inlined into the asynchronous completion (slot_completed_at). */
static inline __attribute__((always_inline)) bool slot_finish_here(struct slot *s, struct shard *sh, bool has_slat,
                                                                   uint64_t slat, uint64_t clat, uint64_t tc)
{
    /* threads beyond those expected (job_shard) write the shared shard
     * one at a time: its seqlock has one writer at a time */
    bool spill = __builtin_expect(sh->spill, 0);
    if (spill)
        pthread_mutex_lock(&s->job->spill_lock);
    bool ok = slot_account(s, sh, has_slat, slat, clat, tc);
    if (spill)
        pthread_mutex_unlock(&s->job->spill_lock);
    return ok;
}

bool slot_finish(struct slot *s, struct shard *sh, bool has_slat, uint64_t slat, uint64_t clat, uint64_t tc)
{
    return slot_finish_here(s, sh, has_slat, slat, clat, tc);
}

void slot_park(struct slot *s, struct shard *sh)
{
    struct job *j = s->job;
    slot_leave_depth(s);
    s->park = false;
    s->resume = true;
    thread_cpu_end(&sh->cpu);
    pthread_mutex_lock(&j->park_lock);
    j->parked[(j->park_head + j->park_n++) % j->nslots] = s;
    pthread_cond_signal(&j->park_cond);
    pthread_mutex_unlock(&j->park_lock);
}

struct slot *job_unpark(struct job *j, uint64_t wait_ns)
{
    struct slot *s = NULL;
    pthread_mutex_lock(&j->park_lock);
    if (!j->park_n && wait_ns)
        (void)cond_wait_ns(&j->park_cond, &j->park_lock, wait_ns);
    if (j->park_n) {
        s = j->parked[j->park_head];
        j->park_head = (j->park_head + 1) % j->nslots;
        j->park_n--;
    }
    pthread_mutex_unlock(&j->park_lock);
    return s;
}

/* ---- statistics shards: one per accounting thread ---- */

static uint64_t shard_keys; /* the last job_shards_init handed out */
static __thread uint64_t tls_shard_key;
static __thread struct shard *tls_shard;

void job_shards_init(struct job *j, unsigned threads)
{
    /* the threads, and the last: shared by any beyond them (job_shard) */
    j->nshards = threads + 1;
    j->shards = xcalloc_lines(j->nshards, sizeof(*j->shards));
    /* Their histograms in one mapping: a shard no thread claims costs no
     * memory (a page is only backed once a bucket on it is counted). */
    size_t per = (DDIR_N + 1) * 2 * HIST_N;
    j->shard_hist_bytes = j->nshards * per * sizeof(uint64_t);
    uint64_t *h = mmap(NULL, j->shard_hist_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h == MAP_FAILED)
        out_of_memory();
    j->shard_hist = h;
    for (unsigned k = 0; k < j->nshards; k++) {
        for (int d = 0; d <= DDIR_N; d++) {
            struct ddir_acc *a = d < DDIR_N ? &j->shards[k].d[d] : &j->shards[k].sync;
            ddir_acc_init_in(a, h, h + HIST_N);
            h += 2 * HIST_N;
        }
    }
    j->shards[j->nshards - 1].spill = true;
    pthread_mutex_init(&j->spill_lock, NULL);
    j->shard_key = __atomic_add_fetch(&shard_keys, 1, __ATOMIC_RELAXED);
}

struct shard *job_shard(struct job *j)
{
    if (tls_shard_key == j->shard_key)
        return tls_shard;
    /* Not the job this thread accounted for last: its shard of j, or a
     * new one. A thread only ever looks for its own tid, which only it
     * stores, so a claim racing with the scan cannot make a false match. */
    pid_t me = gettid();
    unsigned taken = __atomic_load_n(&j->shards_taken, __ATOMIC_ACQUIRE);
    struct shard *sh = NULL;
    for (unsigned k = 0; k < taken && k + 1 < j->nshards && !sh; k++)
        if (__atomic_load_n(&j->shards[k].owner, __ATOMIC_RELAXED) == me)
            sh = &j->shards[k];
    if (!sh) {
        unsigned k = j->nshards - 1; /* the shared one, once all are taken */
        if (taken < k)
            k = __atomic_fetch_add(&j->shards_taken, 1, __ATOMIC_ACQ_REL);
        if (k + 1 < j->nshards)
            __atomic_store_n(&j->shards[k].owner, me, __ATOMIC_RELAXED);
        else
            k = j->nshards - 1;
        sh = &j->shards[k];
    }
    tls_shard_key = j->shard_key;
    tls_shard = sh;
    return sh;
}

/* slot_completed and slot_completed_handover: one body, the former without
 * the hand-over test. */
static inline __attribute__((always_inline)) void slot_completed_at(struct slot *s, uint64_t tc, uint64_t handover)
{
    uint64_t t1;
    if (s->sender == THIS_THREAD) {
        /* Only this thread stores s->sync now (slot_sent). */
        t1 = __atomic_load_n(&s->sync, __ATOMIC_RELAXED);
        if (t1 == 0) {
            /* nested in the send further up this stack: the sender finishes */
            __atomic_store_n(&s->sync, tc, __ATOMIC_RELAXED);
            return;
        }
    } else {
        /* Sent from another thread, which may not have stored the send's
         * return time yet: it is about to. */
        unsigned spins = 0;
        while ((t1 = __atomic_load_n(&s->sync, __ATOMIC_ACQUIRE)) == 0) {
            if (++spins > 64)
                sched_yield();
            else
                cpu_relax();
        }
    }
    struct shard *sh = job_shard(s->job);
    if (!sh->cpu.on && !sh->spill)
        thread_cpu_begin(&sh->cpu);
    uint64_t slat, clat;
    slot_async_times(s, t1, tc, handover, &slat, &clat);
    if (!slot_finish_here(s, sh, true, slat, clat, tc))
        slot_retire(s, sh);
    else
        s->job->api->issue(s, sh, tc);
}

void slot_completed(struct slot *s, uint64_t tc)
{
    slot_completed_at(s, tc, 0);
}

void slot_completed_handover(struct slot *s, uint64_t tc, uint64_t handover)
{
    slot_completed_at(s, tc, handover);
}
