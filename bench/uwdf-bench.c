/* uwdf-bench: a fio-style benchmark for the uwdf request / I/O-target model.
 *
 * It drives files and block devices through the public WDF API only
 * (#include <uwdf.h>): asynchronous requests formatted with
 * WdfIoTargetFormatRequestForRead/Write and sent with WdfRequestSend, whose
 * completion routine reuses (WdfRequestReuse) and resends them, or
 * synchronous WdfIoTargetSendRead/WriteSynchronously calls, or (--api=flt,
 * #include <fltkernel.h>) Filter Manager callback data performed with
 * FltPerformAsynchronousIo and reused (FltReuseCallbackData) or freed and
 * allocated again from its completion callback. Options, job
 * files and the normal / terse / JSON / JSON+ reports follow fio, so fio
 * users can bring their command lines and job files. `uwdf-bench --help`
 * documents the options and where uwdf differs from fio.
 *
 * Sections of this file:
 *   1. basics: time, messages, allocation
 *   2. number formatting (fio's num2str style)
 *   3. options: table, value parsers
 *   4. command line and job files -> job definitions
 *   5. crc32c and verify blocks
 *   6. latency statistics and the log-linear histogram
 *   7. files: naming, sizes, layout, removal
 *   8. jobs: framework objects, offset generators, the I/O paths
 *   9. monitor: bandwidth samples and the ETA line
 *  10. reports: normal, terse, JSON, JSON+
 *  11. main
 */
#include "config.h"

#include <uwdf.h>
#include <fltkernel.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "clock.h"
#include "eta.h"
#include "filesetup.h"
#include "interrupt.h"
#include "job.h"
#include "stat.h"
#include "histogram.h"
#include "init.h"
#include "options.h"
#include "report.h"
#include "parse.h"
#include "util.h"
#include "verify.h"

/* ======================================================================
 * 1. basics
 * ====================================================================== */

/* ======================================================================
 * 2. number formatting
 * ====================================================================== */

/* ======================================================================
 * 3. options
 * ====================================================================== */

/* ======================================================================
 * 4. command line and job files -> job definitions
 * ====================================================================== */

/* ======================================================================
 * 6. latency statistics and the log-linear histogram
 * ====================================================================== */

/* ======================================================================
 * 7. files: naming, sizes, layout, removal
 * ====================================================================== */

/* ======================================================================
 * 8. jobs: framework objects, offset generators, the I/O paths
 * ====================================================================== */

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

/* Records the job's first error (later ones are counted by their kind only). */
static bool job_set_error(struct job *j, int err, NTSTATUS st)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&j->error_set, &expected, 1, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return false;
    j->error = err;
    j->err_status = st;
    return true;
}

static void job_io_error(struct job *j, const struct slot *s, NTSTATUS st, const char *stage)
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

/* A bijection on [0, 2^bits): xor with the key, multiplications by odd
 * constants and right xorshifts, each invertible modulo 2^bits. */
static uint64_t permute(uint64_t x, unsigned bits, uint64_t mask, uint64_t key)
{
    if (!bits)
        return 0;
    unsigned h = bits / 2 + 1;
    x = (x ^ key) & mask;
    x = (x * 0x9E3779B97F4A7C15ull) & mask;
    x ^= x >> h;
    x = (x + (key >> 17)) & mask;
    x = (x * 0xBF58476D1CE4E5B9ull) & mask;
    x ^= x >> h;
    x = (x * 0x94D049BB133111EBull) & mask;
    x ^= x >> h;
    return x;
}

__thread char tls_thread_id;

#define RANDOM_CHUNK 64 /* cursor indexes a slot reserves at once */

/* Random order without repeats within a pass over the region (fio's
 * random map), a new order each pass. */
static uint64_t next_random_block(struct slot *s, struct file_slot *f, bool chunked)
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
        uint64_t y = permute(c & f->mask, f->bits, f->mask, f->key ^ (pass * 0xD1B54A32D192ED03ull));
        if (y < f->nblocks)
            return y;
    }
}

static uint64_t next_seq_block(struct file_slot *f)
{
    return __atomic_fetch_add(&f->cursor, 1, __ATOMIC_RELAXED) % f->nblocks;
}

static void slot_set_io(struct slot *s, unsigned fi, uint64_t blk, int dd)
{
    struct job *j = s->job;
    s->file = fi;
    s->block = blk;
    s->offset = j->files[fi].start + blk * j->o.bs;
    s->ddir = dd;
}

/* Verify pass: the next block some write of this job stored. */
static bool next_verify_io(struct slot *s)
{
    struct job *j = s->job;
    unsigned start = j->nfiles > 1 ? __atomic_fetch_add(&j->file_rr, 1, __ATOMIC_RELAXED) : 0;
    for (unsigned k = 0; k < j->nfiles; k++) {
        unsigned fi = (start + k) % j->nfiles;
        struct file_slot *f = &j->files[fi];
        for (;;) {
            uint64_t b = __atomic_fetch_add(&f->vcursor, 1, __ATOMIC_RELAXED);
            if (b >= f->nblocks)
                break;
            if (__atomic_load_n(&f->written[b >> 6], __ATOMIC_RELAXED) & (1ull << (b & 63))) {
                slot_set_io(s, fi, b, DDIR_READ);
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

/* Picks the slot's next I/O, or returns false when the job is done. */
static bool next_io(struct slot *s, uint64_t now)
{
    struct job *j = s->job;
    if (stop_requested())
        return false;
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
                slot_set_io(s, s->file, s->block, DDIR_WRITE);
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
    unsigned fi = j->nfiles > 1 ? __atomic_fetch_add(&j->file_rr, 1, __ATOMIC_RELAXED) % j->nfiles : 0;
    struct file_slot *f = &j->files[fi];
    uint64_t blk = rw_random(j->o.rw) ? next_random_block(s, f, j->nfiles == 1 && j->nslots == 1)
                                      : next_seq_block(f);
    int dd;
    switch (j->o.rw) {
    case RW_READ:
    case RW_RANDREAD:
        dd = DDIR_READ;
        break;
    case RW_WRITE:
    case RW_RANDWRITE:
        dd = DDIR_WRITE;
        break;
    case RW_TRIM:
    case RW_RANDTRIM:
        dd = DDIR_TRIM;
        break;
    case RW_TRIMWRITE:
        dd = DDIR_TRIM;
        s->tw_write = true;
        break;
    default:
        dd = (xorshift64(&s->rng) % 100) < j->o.rwmixread ? DDIR_READ : DDIR_WRITE;
        break;
    }
    slot_set_io(s, fi, blk, dd);
    s->verify_read = dd == DDIR_READ && j->verify_reads;
    if (dd == DDIR_WRITE) {
        note_write(s);
        if (j->o.verify)
            verify_fill(s->buf, j->o.bs, s->offset, xorshift64(&s->rng));
    } else if (dd == DDIR_TRIM) {
        s->dsm_range->StartingOffset = (LONGLONG)s->offset;
        s->dsm_range->LengthInBytes = j->o.bs;
    }
    return true;
}

/* ---- completion bookkeeping (any thread; sh is that thread's shard) ---- */

static bool slot_verify(struct slot *s)
{
    struct job *j = s->job;
    char why[160];
    if (verify_check(s->buf, j->o.bs, s->offset, why, sizeof(why)) == 0) {
        __atomic_fetch_add(&j->verified, 1, __ATOMIC_RELAXED);
        return true;
    }
    __atomic_fetch_add(&j->verify_errors, 1, __ATOMIC_RELAXED);
    unsigned nmsg = __atomic_fetch_add(&j->verify_msgs, 1, __ATOMIC_RELAXED);
    if (nmsg < MAX_VERIFY_MSGS)
        errmsg("%s: verify failed at offset %" PRIu64 " of '%s': %s", j->o.name, s->offset,
               j->files[s->file].path, why);
    else if (nmsg == MAX_VERIFY_MSGS)
        errmsg("%s: more verify failures; counting them only", j->o.name);
    job_set_error(j, EILSEQ, STATUS_SUCCESS);
    if (j->o.verify_fatal) {
        __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
        return false;
    }
    return true;
}

/* Accounts a finished I/O; false when the slot must stop (error). */
static bool slot_finish(struct slot *s, struct shard *sh, bool has_slat, uint64_t slat, uint64_t clat,
                        uint64_t tc)
{
    struct job *j = s->job;
    if (!NT_SUCCESS(s->status)) {
        job_io_error(j, s, s->status, NULL);
        return false;
    }
    if (s->ddir == DDIR_SYNC) {
        if (tc >= j->ramp_end_ns)
            shard_account_sync(sh, has_slat ? slat + clat : clat);
        return true;
    }
    if (s->ddir != DDIR_TRIM && s->info != j->o.bs) { /* a trim returns no bytes */
        __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
        if (job_set_error(j, EIO, s->status))
            errmsg("%s: short %s at offset %" PRIu64 " of '%s': %lu of %" PRIu32 " bytes", j->o.name,
                   ddir_name(s->ddir), s->offset, j->files[s->file].path, (unsigned long)s->info,
                   j->o.bs);
        return false;
    }
    if (tc >= j->ramp_end_ns)
        shard_account(sh, s->ddir, j->o.bs, has_slat, slat, clat, has_slat ? slat + clat : clat);
    if (s->ddir == DDIR_WRITE && j->files[s->file].written)
        __atomic_fetch_or(&j->files[s->file].written[s->block >> 6], 1ull << (s->block & 63),
                          __ATOMIC_RELAXED);
    if (s->verify_read)
        return slot_verify(s);
    return true;
}

static void slot_retire(struct slot *s)
{
    struct job *j = s->job;
    if (__atomic_sub_fetch(&j->inflight, 1, __ATOMIC_ACQ_REL) == 0)
        KeSetEvent(&j->done, 0, FALSE); /* nothing of j or s is touched after this */
}

/* The sender's half of the hand-off of s->sync, once the send returned at
 * t1: the completion time if the completion ran nested in the send on this
 * thread (its time is in s->sync), else 0 after storing t1 for the
 * completion to come. A completion on another thread only waits for t1 and
 * one later on this thread finds it, so no read-modify-write is needed. */
static uint64_t slot_sent(struct slot *s, uint64_t t1)
{
    uint64_t tc = __atomic_load_n(&s->sync, __ATOMIC_RELAXED);
    if (tc == 0)
        __atomic_store_n(&s->sync, t1, __ATOMIC_RELEASE);
    return tc;
}

/* Right before the send of an I/O that started at t0. */
static inline void slot_sending(struct slot *s, uint64_t t0)
{
    s->t0 = t0;
    s->sender = THIS_THREAD;
    __atomic_store_n(&s->sync, 0, __ATOMIC_RELAXED);
}

static bool slot_complete_async(struct slot *s, struct shard *sh, uint64_t t1, uint64_t tc)
{
    uint64_t slat, clat;
    if (tc >= t1) {
        slat = t1 - s->t0;
        clat = tc - t1;
    } else { /* completed before the send returned */
        slat = tc - s->t0;
        clat = 0;
    }
    return slot_finish(s, sh, true, slat, clat, tc);
}

/* An asynchronous mode's issue: sends the slot's I/Os until one is left in
 * flight (the mode's completion routine continues from there) or the job
 * is done. send(s, t0) readies and sends the slot's current I/O, calling
 * slot_sending just before the send; false when it failed (reported).
 * Runs on the job thread (first sends, t0 = 0: the clock is read) or on a
 * completion thread (resends from the routine, batched into the ring by
 * the framework). A resend starts at t0 = the completion time of the
 * slot's previous I/O: the slot is free from that moment, so the routine's
 * accounting counts in the new I/O's slat and lat, and the clock is read
 * twice per I/O, not three times. Allocation-free when requests are
 * reused. Inlined into each mode's issue with its own send. */
static inline __attribute__((always_inline)) void slot_issue_loop(struct slot *s, struct shard *sh, uint64_t t0,
                                                                  bool (*send)(struct slot *s, uint64_t t0))
{
    for (;;) {
        if (t0 == 0)
            t0 = now_ns();
        if (!next_io(s, t0))
            break;
        if (!send(s, t0))
            break;
        uint64_t t1 = now_ns();
        uint64_t tc = slot_sent(s, t1);
        if (tc == 0)
            return; /* in flight: the completion routine takes over */
        /* The routine already ran, nested inside the send on this thread
         * (an immediate failure): finish here. */
        if (!slot_complete_async(s, sh, t1, tc))
            break;
        t0 = tc; /* see above: the next I/O starts where this one ended */
    }
    slot_retire(s);
}

/* The completion of the slot's I/O at tc (status and info are stored), from
 * the mode's completion routine: accounts it and issues the next. */
static void slot_completed(struct slot *s, uint64_t tc)
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
    /* This runs on the completion thread of the file the I/O went to. */
    struct shard *sh = &s->job->shards[s->file];
    if (!slot_complete_async(s, sh, t1, tc))
        slot_retire(s);
    else
        s->job->api->issue(s, sh, tc);
}

/* ---- --api=async (and stack, sync): WDF requests ---- */

static NTSTATUS slot_create_request(struct slot *s, WDFIOTARGET t)
{
    NTSTATUS st = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &s->req);
    if (!NT_SUCCESS(st)) {
        s->req = NULL;
        return st;
    }
    /* A timer allocated up front keeps the timed send from allocating. */
    if (s->has_opts)
        st = WdfRequestAllocateTimer(s->req);
    s->fresh = true;
    return st;
}

/* Makes the slot's request ready for a new I/O: WdfRequestReuse, or (with
 * --reuse=0) delete it and create another. */
static NTSTATUS slot_renew_request(struct slot *s, WDFIOTARGET t)
{
    if (s->fresh) {
        s->fresh = false;
        return STATUS_SUCCESS;
    }
    if (s->job->o.reuse) {
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        return WdfRequestReuse(s->req, &rp);
    }
    WdfObjectDelete(s->req);
    s->req = NULL;
    NTSTATUS st = slot_create_request(s, t);
    s->fresh = false;
    return st;
}

/* Formats the slot's request for its current I/O (after renewing it). */
static NTSTATUS slot_format(struct slot *s, WDFIOTARGET t)
{
    struct job *j = s->job;
    LONGLONG off = (LONGLONG)s->offset;
    NTSTATUS st;
    switch (s->ddir) {
    case DDIR_READ:
        return WdfIoTargetFormatRequestForRead(t, s->req, s->mem, NULL, &off);
    case DDIR_WRITE:
        st = WdfIoTargetFormatRequestForWrite(t, s->req, s->mem, NULL, &off);
        if (NT_SUCCESS(st) && j->o.sync != SYNC_NONE)
            UwdfRequestSetWriteThrough(s->req, TRUE); /* after the format, which clears it */
        return st;
    case DDIR_TRIM:
        return WdfIoTargetFormatRequestForIoctl(t, s->req, IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES,
                                                s->dsm_mem, NULL, NULL, NULL);
    default: {
        IO_STACK_LOCATION stack;
        memset(&stack, 0, sizeof(stack));
        stack.MajorFunction = IRP_MJ_FLUSH_BUFFERS;
        stack.MinorFunction = s->flush == FLUSH_FDATASYNC ? IRP_MN_FLUSH_DATA_ONLY : 0;
        WdfRequestWdmFormatUsingStackLocation(s->req, &stack);
        return STATUS_SUCCESS;
    }
    }
}

static EVT_WDF_REQUEST_COMPLETION_ROUTINE async_completion;

/* Reuses, formats and sends the slot's request with WdfRequestSend. */
static bool async_send(struct slot *s, uint64_t t0)
{
    struct job *j = s->job;
    WDFIOTARGET t = j->files[s->file].target;
    NTSTATUS st = slot_renew_request(s, t);
    if (NT_SUCCESS(st))
        st = slot_format(s, t);
    if (!NT_SUCCESS(st)) {
        job_io_error(j, s, st, "format");
        return false;
    }
    WdfRequestSetCompletionRoutine(s->req, async_completion, s);
    slot_sending(s, t0);
    if (!WdfRequestSend(s->req, t, s->has_opts ? &s->send_opts : WDF_NO_SEND_OPTIONS)) {
        job_io_error(j, s, WdfRequestGetStatus(s->req), "send");
        return false;
    }
    return true;
}

static void async_issue(struct slot *s, struct shard *sh, uint64_t t0)
{
    slot_issue_loop(s, sh, t0, async_send);
}

static VOID async_completion(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                             WDFCONTEXT Context)
{
    struct slot *s = Context;
    uint64_t tc = now_ns();
    (void)Request;
    (void)Target;
    s->status = Params->IoStatus.Status;
    s->info = Params->IoStatus.Information;
    slot_completed(s, tc);
}

/* Requests for a new phase: the old ones may still be in the framework's
 * hands for a moment after their completion routine returned. */
static int renew_slot_requests(struct job *j)
{
    for (unsigned i = 0; i < j->nslots; i++) {
        struct slot *s = &j->slots[i];
        if (s->req)
            WdfObjectDelete(s->req);
        s->req = NULL;
        char sb[96];
        NTSTATUS st = slot_create_request(s, j->files[0].target);
        if (!NT_SUCCESS(st)) {
            errmsg("%s: WdfRequestCreate failed: %s", j->o.name, status_str(sb, sizeof(sb), st));
            job_set_error(j, status_errno(st), st);
            return -1;
        }
    }
    return 0;
}

/* ---- --api=sync: synchronous sends ---- */

/* QD1 on the job thread: WdfIoTargetSend{Read,Write,Ioctl}Synchronously with
 * the slot's request (reused, or created and deleted per I/O); flushes and
 * write-through writes are formatted here and sent with
 * WDF_REQUEST_SEND_OPTION_SYNCHRONOUS. Returns when the job is done. */
static void sync_issue(struct slot *s, struct shard *sh, uint64_t t0)
{
    struct job *j = s->job;
    (void)t0; /* each call is timed from its own start */
    for (;;) {
        uint64_t ts = now_ns();
        if (!next_io(s, ts))
            break;
        WDFIOTARGET t = j->files[s->file].target;
        NTSTATUS st = slot_renew_request(s, t);
        if (!NT_SUCCESS(st)) {
            job_io_error(j, s, st, "request");
            break;
        }
        WDF_MEMORY_DESCRIPTOR d;
        LONGLONG off = (LONGLONG)s->offset;
        ULONG_PTR bytes = 0;
        PWDF_REQUEST_SEND_OPTIONS opts = s->has_opts ? &s->send_opts : WDF_NO_SEND_OPTIONS;
        if (s->ddir == DDIR_SYNC || (s->ddir == DDIR_WRITE && j->o.sync != SYNC_NONE)) {
            st = slot_format(s, t);
            if (NT_SUCCESS(st)) {
                (void)WdfRequestSend(s->req, t, &s->sync_opts); /* FALSE: the status says why */
                st = WdfRequestGetStatus(s->req);
                bytes = WdfRequestGetInformation(s->req);
            }
        } else if (s->ddir == DDIR_TRIM) {
            WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, s->dsm_mem, NULL);
            st = WdfIoTargetSendIoctlSynchronously(t, s->req, IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES, &d,
                                                   NULL, opts, &bytes);
        } else {
            WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, s->mem, NULL);
            st = s->ddir == DDIR_READ
                     ? WdfIoTargetSendReadSynchronously(t, s->req, &d, &off, opts, &bytes)
                     : WdfIoTargetSendWriteSynchronously(t, s->req, &d, &off, opts, &bytes);
        }
        uint64_t t1 = now_ns();
        s->status = st;
        s->info = bytes;
        if (!slot_finish(s, sh, false, 0, t1 - ts, t1))
            break;
    }
    slot_retire(s);
}

/* ---- --api=flt: Filter Manager callback data ---- */

static FLT_COMPLETED_ASYNC_IO_CALLBACK flt_completion;

/* Makes the slot's callback data ready for its current I/O: reused
 * (FltReuseCallbackData), or freed and allocated again (--reuse=0), then
 * every Iopb field set (reuse clears them all but the targets). */
static NTSTATUS flt_prepare(struct slot *s)
{
    struct job *j = s->job;
    const struct file_slot *f = &j->files[s->file];
    if (s->fresh) {
        s->fresh = false;
    } else if (j->o.reuse) {
        FltReuseCallbackData(s->cd);
    } else {
        FltFreeCallbackData(s->cd);
        s->cd = NULL;
        NTSTATUS st = FltAllocateCallbackData(f->inst, f->fo, &s->cd);
        if (!NT_SUCCESS(st)) {
            s->cd = NULL;
            return st;
        }
    }
    PFLT_IO_PARAMETER_BLOCK p = s->cd->Iopb;
    bool w = s->ddir == DDIR_WRITE;
    p->TargetFileObject = f->fo; /* several files: the one of this I/O */
    p->TargetInstance = f->inst;
    p->MajorFunction = w ? IRP_MJ_WRITE : IRP_MJ_READ;
    p->MinorFunction = 0;
    p->IrpFlags = (w ? IRP_WRITE_OPERATION : IRP_READ_OPERATION) | (j->o.direct ? IRP_NOCACHE : 0);
    p->OperationFlags = 0;
    if (w) {
        p->Parameters.Write.Length = j->o.bs;
        p->Parameters.Write.Key = 0;
        p->Parameters.Write.ByteOffset.QuadPart = (LONGLONG)s->offset;
        p->Parameters.Write.WriteBuffer = s->buf;
        p->Parameters.Write.MdlAddress = NULL;
    } else {
        p->Parameters.Read.Length = j->o.bs;
        p->Parameters.Read.Key = 0;
        p->Parameters.Read.ByteOffset.QuadPart = (LONGLONG)s->offset;
        p->Parameters.Read.ReadBuffer = s->buf;
        p->Parameters.Read.MdlAddress = NULL;
    }
    return STATUS_SUCCESS;
}

/* Performs the slot's I/O with FltPerformAsynchronousIo; the callback runs
 * on the file's engine thread. */
static bool flt_send(struct slot *s, uint64_t t0)
{
    struct job *j = s->job;
    NTSTATUS st = flt_prepare(s);
    if (!NT_SUCCESS(st)) {
        job_io_error(j, s, st, "FltAllocateCallbackData");
        return false;
    }
    slot_sending(s, t0);
    st = FltPerformAsynchronousIo(s->cd, flt_completion, s);
    /* STATUS_PENDING: in flight (s->cd may already be reused by the
     * callback); STATUS_SUCCESS: failed before the engine, the callback
     * has run inline. Anything else: refused, no callback. */
    if (st != STATUS_PENDING && st != STATUS_SUCCESS) {
        job_io_error(j, s, st, "FltPerformAsynchronousIo");
        return false;
    }
    return true;
}

static void flt_issue(struct slot *s, struct shard *sh, uint64_t t0)
{
    slot_issue_loop(s, sh, t0, flt_send);
}

/* PASSIVE_LEVEL, on the engine thread of the file the I/O went to (or
 * inline in FltPerformAsynchronousIo when it failed before the engine). */
static VOID flt_completion(PFLT_CALLBACK_DATA Data, PFLT_CONTEXT Context)
{
    struct slot *s = Context;
    uint64_t tc = now_ns();
    s->status = Data->IoStatus.Status;
    s->info = Data->IoStatus.Information;
    slot_completed(s, tc);
}

/* ---- the job thread ---- */

/* One phase (the run, then the verify pass): every slot issues, the last
 * one to retire wakes the job thread. */
static void run_phase(struct job *j)
{
    KeClearEvent(&j->done);
    __atomic_store_n(&j->inflight, (int)j->nslots, __ATOMIC_RELEASE);
    struct shard *own = &j->shards[j->nfiles];
    for (unsigned i = 0; i < j->nslots; i++)
        j->api->issue(&j->slots[i], own, 0);
    KeWaitForSingleObject(&j->done, Executive, KernelMode, FALSE, NULL);
}

static void *job_thread(void *arg)
{
    struct job *j = arg;
    pthread_barrier_wait(&j->run->barrier);
    uint64_t t = now_ns();
    j->start_ns = t;
    j->ramp_end_ns = t + j->o.ramp_ns;
    j->end_ns = j->o.runtime_ns ? j->ramp_end_ns + j->o.runtime_ns : 0;
    __atomic_store_n(&j->phase, PHASE_RUN, __ATOMIC_RELEASE);
    run_phase(j);
    bool failed = __atomic_load_n(&j->error_set, __ATOMIC_ACQUIRE) &&
                  (j->error != EILSEQ || j->o.verify_fatal);
    if (j->o.verify && rw_writes(j->o.rw) && !failed && !stop_requested()) {
        __atomic_store_n(&j->stop, 0, __ATOMIC_RELAXED);
        if (!j->api->renew || j->api->renew(j) == 0) {
            __atomic_store_n(&j->phase, PHASE_VERIFY, __ATOMIC_RELEASE);
            run_phase(j);
        }
    }
    j->finish_ns = now_ns();
    __atomic_store_n(&j->phase, PHASE_DONE, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- set-up and teardown (main thread) ---- */

static int framework_init(struct bench_run *run)
{
    char sb[96];
    WDF_DRIVER_CONFIG cfg;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    NTSTATUS st = WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, &run->driver);
    if (!NT_SUCCESS(st)) {
        errmsg("WdfDriverCreate failed: %s", status_str(sb, sizeof(sb), st));
        run->driver = NULL;
        return -1;
    }
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(run->driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init) {
        errmsg("WdfControlDeviceInitAllocate failed");
        return -1;
    }
    st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &run->device);
    if (!NT_SUCCESS(st)) {
        errmsg("WdfDeviceCreate failed: %s", status_str(sb, sizeof(sb), st));
        if (init)
            WdfDeviceInitFree(init);
        return -1;
    }
    WdfControlFinishInitializing(run->device);
    return 0;
}

/* UTF-8 path -> WCHAR (UTF-32) string; NULL if the bytes are not UTF-8. */
static WCHAR *path_to_wide(const char *path)
{
    size_t n = strlen(path), o = 0;
    WCHAR *w = xcalloc(n + 1, sizeof(WCHAR));
    const unsigned char *p = (const unsigned char *)path;
    for (size_t i = 0; i < n;) {
        uint32_t c = p[i];
        unsigned extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (extra == 9 || (extra && i + extra >= n)) {
            free(w);
            return NULL;
        }
        if (extra)
            c &= 0x3Fu >> extra;
        for (unsigned k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                free(w);
                return NULL;
            }
            c = (c << 6) | (p[i + k] & 0x3F);
        }
        w[o++] = (WCHAR)c;
        i += 1 + extra;
    }
    w[o] = 0;
    return w;
}

/* --api=stack: a pass-through filter device per file. Its default queue
 * (parallel) forwards every request unchanged to its local target, which is
 * opened on the file, and completes it with what the file returned: the
 * smallest layer a storage filter is. */
static VOID stack_forward_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                               WDFCONTEXT Context)
{
    (void)Target;
    (void)Context;
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

static VOID stack_forward(WDFQUEUE Queue, WDFREQUEST Request)
{
    WDFIOTARGET lower = WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue));
    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, stack_forward_done, NULL);
    if (!WdfRequestSend(Request, lower, WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

static NTSTATUS open_target_by_name(const char *path, bool write, bool direct, WDFIOTARGET t)
{
    WCHAR *w = path_to_wide(path);
    if (!w)
        return STATUS_OBJECT_NAME_INVALID;
    UNICODE_STRING name;
    RtlInitUnicodeString(&name, w);
    WDF_IO_TARGET_OPEN_PARAMS p;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &name, write ? (GENERIC_READ | GENERIC_WRITE) : GENERIC_READ);
    if (direct)
        p.CreateOptions |= FILE_NO_INTERMEDIATE_BUFFERING;
    NTSTATUS st = WdfIoTargetOpen(t, &p);
    free(w);
    return st;
}

/* The filter device over path; its NT name in *name (static storage). */
static NTSTATUS stack_filter_create(struct bench_run *run, const char *path, bool write, bool direct,
                                    const char **name, WDFIOTARGET *lower)
{
    char buf[64];
    char sb[96];
    snprintf(buf, sizeof(buf), "\\Device\\uwdfBenchFilter%u", run->stack_devices++);
    WCHAR *w = path_to_wide(buf);
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, w);
    WDFDEVICE dev;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(run->driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    NTSTATUS st = init ? WdfDeviceInitAssignName(init, &us) : STATUS_INSUFFICIENT_RESOURCES;
    free(w);
    if (NT_SUCCESS(st)) {
        WdfDeviceInitSetIoType(init, WdfDeviceIoDirect);
        st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &dev);
    }
    if (init)
        WdfDeviceInitFree(init);
    if (!NT_SUCCESS(st)) {
        errmsg("--api=stack: cannot create the filter device: %s", status_str(sb, sizeof(sb), st));
        return st;
    }
    WdfControlFinishInitializing(dev);
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoDefault = stack_forward;
    st = WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, NULL);
    if (NT_SUCCESS(st))
        st = open_target_by_name(path, write, direct, WdfDeviceGetIoTarget(dev));
    if (!NT_SUCCESS(st)) {
        WdfObjectDelete(dev);
        return st;
    }
    *name = keep_str(run->strings, buf);
    *lower = WdfDeviceGetIoTarget(dev);
    return STATUS_SUCCESS;
}

static NTSTATUS open_target(struct bench_run *run, const char *path, bool write, bool direct, WDFIOTARGET *out)
{
    WCHAR *w = path_to_wide(path);
    if (!w)
        return STATUS_OBJECT_NAME_INVALID;
    UNICODE_STRING name;
    RtlInitUnicodeString(&name, w);
    WDFIOTARGET t;
    NTSTATUS st = WdfIoTargetCreate(run->device, WDF_NO_OBJECT_ATTRIBUTES, &t);
    if (NT_SUCCESS(st)) {
        WDF_IO_TARGET_OPEN_PARAMS p;
        WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &name,
                                                    write ? (GENERIC_READ | GENERIC_WRITE) : GENERIC_READ);
        if (direct)
            p.CreateOptions |= FILE_NO_INTERMEDIATE_BUFFERING;
        st = WdfIoTargetOpen(t, &p);
        if (!NT_SUCCESS(st))
            WdfObjectDelete(t);
        else
            *out = t;
    }
    free(w);
    return st;
}

/* --api=flt: the filter (registered and started once). */
static int flt_filter_init(struct bench_run *run)
{
    static const FLT_REGISTRATION reg = {
        .Size = sizeof(FLT_REGISTRATION),
        .Version = FLT_REGISTRATION_VERSION,
    };
    char sb[96];
    if (run->filter)
        return 0;
    NTSTATUS st = FltRegisterFilter(WdfDriverWdmGetDriverObject(run->driver), &reg, &run->filter);
    if (!NT_SUCCESS(st)) {
        run->filter = NULL;
        errmsg("FltRegisterFilter failed: %s", status_str(sb, sizeof(sb), st));
        return -1;
    }
    st = FltStartFiltering(run->filter);
    if (!NT_SUCCESS(st)) {
        errmsg("FltStartFiltering failed: %s", status_str(sb, sizeof(sb), st));
        return -1;
    }
    return 0;
}

/* The instance on the volume named (a directory or a block device),
 * attached the first time a file of it is opened. */
static NTSTATUS flt_volume_instance(struct bench_run *run, const char *name, PFLT_INSTANCE *out)
{
    for (unsigned i = 0; i < run->nfvols; i++)
        if (!strcmp(run->fvols[i].name, name)) {
            *out = run->fvols[i].instance;
            return STATUS_SUCCESS;
        }
    WCHAR *w = path_to_wide(name);
    if (!w)
        return STATUS_OBJECT_NAME_INVALID;
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, w);
    PFLT_VOLUME v = NULL;
    PFLT_INSTANCE inst = NULL;
    NTSTATUS st = FltGetVolumeFromName(run->filter, &us, &v);
    free(w);
    if (!NT_SUCCESS(st))
        return st;
    st = FltAttachVolume(run->filter, v, NULL, &inst);
    if (!NT_SUCCESS(st)) {
        FltObjectDereference(v);
        return st;
    }
    struct flt_vol *nv = realloc(run->fvols, (run->nfvols + 1) * sizeof(*run->fvols));
    if (!nv) {
        errmsg("out of memory");
        exit(1);
    }
    run->fvols = nv;
    run->fvols[run->nfvols].name = keep_str(run->strings, name);
    run->fvols[run->nfvols].volume = v;
    run->fvols[run->nfvols].instance = inst;
    run->nfvols++;
    *out = inst;
    return STATUS_SUCCESS;
}

/* FltCreateFileEx of one file of a job: the absolute path, access and
 * options as open_target gives a WDF target. */
static NTSTATUS flt_open_file(struct bench_run *run, struct file_slot *f, bool write, bool direct,
                              const char **stage)
{
    char *real = realpath(f->path, NULL);
    *stage = "realpath";
    if (!real)
        return errno == ENOENT || errno == ENOTDIR ? STATUS_OBJECT_NAME_NOT_FOUND : STATUS_ACCESS_DENIED;
    /* The volume: the file's directory, or a block device itself. */
    char *vol = xstrdup(real);
    if (!f->lf->is_blk) {
        char *slash = strrchr(vol, '/');
        if (slash == vol)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
    }
    *stage = "FltGetVolumeFromName/FltAttachVolume";
    NTSTATUS st = flt_volume_instance(run, vol, &f->inst);
    free(vol);
    if (!NT_SUCCESS(st)) {
        free(real);
        return st;
    }
    WCHAR *w = path_to_wide(real);
    free(real);
    *stage = "FltCreateFileEx";
    if (!w)
        return STATUS_OBJECT_NAME_INVALID;
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    RtlInitUnicodeString(&us, w);
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, NULL);
    ULONG options = FILE_NON_DIRECTORY_FILE | (direct ? FILE_NO_INTERMEDIATE_BUFFERING : 0);
    st = FltCreateFileEx(run->filter, f->inst, &f->fh, &f->fo, write ? (GENERIC_READ | GENERIC_WRITE) : GENERIC_READ,
                         &oa, &iosb, NULL, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN,
                         options, NULL, 0, 0);
    free(w);
    if (!NT_SUCCESS(st)) {
        f->fo = NULL;
        return st;
    }
    f->fh_open = true;
    return STATUS_SUCCESS;
}

/* Detaches and releases what flt_filter_init / flt_volume_instance made
 * (the jobs' files and callback data are gone), before the driver goes. */
static void flt_global_teardown(struct bench_run *run)
{
    for (unsigned i = run->nfvols; i-- > 0;) {
        if (run->filter)
            (void)FltDetachVolume(run->filter, run->fvols[i].volume, NULL);
        FltObjectDereference(run->fvols[i].instance);
        FltObjectDereference(run->fvols[i].volume);
    }
    free(run->fvols);
    run->fvols = NULL;
    run->nfvols = 0;
    if (run->filter)
        FltUnregisterFilter(run->filter);
    run->filter = NULL;
}

static void select_backend(const struct bench_run *run, enum engine_sel e)
{
    if (e != ENGINE_DEFAULT)
        setenv("UWDF_BACKEND", engine_names[e], 1);
    else if (run->env_backend)
        setenv("UWDF_BACKEND", run->env_backend, 1);
    else
        unsetenv("UWDF_BACKEND");
}

/* Targets, shards and requests of one job (after the layout). */

/* --fixedbufs / --registerfiles: every slot's data buffer, and the file,
 * registered with each target's engine (io_uring READ_FIXED/WRITE_FIXED and
 * IOSQE_FIXED_FILE; a documented no-op on libaio and null). */
static int job_register(struct job *j)
{
    const struct job_opts *o = &j->o;
    char sb[96];
    if (!o->fixedbufs && !o->registerfiles)
        return 0;
    WDFMEMORY *mems = calloc(j->nslots, sizeof(*mems));
    if (!mems) {
        errmsg("%s: out of memory", o->name);
        return -1;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < j->nslots; i++)
        if (j->slots[i].mem)
            mems[n++] = j->slots[i].mem;
    int rc = 0;
    for (unsigned k = 0; k < j->nfiles && rc == 0; k++) {
        WDFIOTARGET t = j->files[k].target;
        NTSTATUS st = STATUS_SUCCESS;
        const char *what = "";
        if (!t)
            continue;
        if (o->fixedbufs && n) {
            what = "fixedbufs: UwdfIoTargetRegisterMemory";
            st = UwdfIoTargetRegisterMemory(t, mems, n);
        }
        if (NT_SUCCESS(st) && o->registerfiles) {
            what = "registerfiles: UwdfIoTargetRegisterFile";
            st = UwdfIoTargetRegisterFile(t);
        }
        if (!NT_SUCCESS(st)) {
            errmsg("%s: %s on '%s' failed: %s", o->name, what, j->files[k].path,
                   status_str(sb, sizeof(sb), st));
            rc = -1;
        }
    }
    free(mems);
    return rc;
}

/* ---- each --api mode's set-up and teardown ---- */

/* Makes a device over the file at path (--api=stack); the target to open
 * is then the device's name, and *lower the device's own target. */
typedef NTSTATUS device_over_fn(struct bench_run *run, const char *path, bool write, bool direct,
                                const char **name, WDFIOTARGET *lower);

/* A WDF target on each file of the job, or with over, on a device made over
 * each file; the job's engine is the one below. */
static int wdf_open_targets(struct job *j, device_over_fn *over)
{
    const struct job_opts *o = &j->o;
    struct bench_run *run = j->run;
    char sb[96];
    for (unsigned k = 0; k < j->nfiles; k++) {
        struct file_slot *f = &j->files[k];
        bool wr = rw_writes(o->rw) || rw_trims(o->rw);
        const char *name = f->path;
        WDFIOTARGET engine_target = NULL;
        NTSTATUS st = over ? over(run, f->path, wr, o->direct, &name, &engine_target) : STATUS_SUCCESS;
        if (NT_SUCCESS(st))
            st = open_target(run, name, wr, o->direct, &f->target);
        if (!NT_SUCCESS(st)) {
            f->target = NULL;
            errmsg("%s: cannot open '%s'%s: %s", o->name, f->path,
                   o->ioengine != ENGINE_DEFAULT ? " with the requested engine" : "",
                   status_str(sb, sizeof(sb), st));
            return -1;
        }
        PCSTR be = UwdfIoTargetGetBackendName(engine_target ? engine_target : f->target);
        if (!j->backend)
            j->backend = keep_str(run->strings, be ? be : "unknown");
    }
    return 0;
}

static int async_setup(struct job *j)
{
    return wdf_open_targets(j, NULL);
}

static int stack_setup(struct job *j)
{
    return wdf_open_targets(j, stack_filter_create);
}

static int wdf_setup_slot(struct slot *s)
{
    char sb[96];
    NTSTATUS st = slot_create_request(s, s->job->files[0].target);
    if (!NT_SUCCESS(st)) {
        errmsg("%s: WdfRequestCreate failed: %s", s->job->o.name, status_str(sb, sizeof(sb), st));
        return -1;
    }
    return 0;
}

/* --api=flt: the filter, the volumes and the files opened through them. */
static int flt_setup(struct job *j)
{
    const struct job_opts *o = &j->o;
    struct bench_run *run = j->run;
    char sb[96];
    if (flt_filter_init(run))
        return -1;
    for (unsigned k = 0; k < j->nfiles; k++) {
        struct file_slot *f = &j->files[k];
        const char *stage;
        NTSTATUS st = flt_open_file(run, f, rw_writes(o->rw), o->direct, &stage);
        if (!NT_SUCCESS(st)) {
            errmsg("%s: cannot open '%s' through the filter (%s)%s: %s", o->name, f->path, stage,
                   o->ioengine != ENGINE_DEFAULT ? " with the requested engine" : "",
                   status_str(sb, sizeof(sb), st));
            return -1;
        }
        if (!j->backend) {
            /* The filter's files are WDF targets on the same engines: a
             * target opened the same way tells which one this job gets. */
            WDFIOTARGET probe;
            st = open_target(run, f->path, rw_writes(o->rw), o->direct, &probe);
            if (NT_SUCCESS(st)) {
                PCSTR be = UwdfIoTargetGetBackendName(probe);
                j->backend = keep_str(run->strings, be ? be : "unknown");
                WdfObjectDelete(probe);
            } else {
                j->backend = keep_str(run->strings, "unknown");
            }
        }
    }
    return 0;
}

static int flt_setup_slot(struct slot *s)
{
    struct job *j = s->job;
    char sb[96];
    NTSTATUS st = FltAllocateCallbackDataEx(j->files[0].inst, j->files[0].fo,
                                            FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY, &s->cd);
    if (!NT_SUCCESS(st)) {
        s->cd = NULL;
        errmsg("%s: FltAllocateCallbackDataEx failed: %s", j->o.name, status_str(sb, sizeof(sb), st));
        return -1;
    }
    s->fresh = true;
    return 0;
}

/* FltClose first: it closes the file's WDF target, which waits for its
 * engine thread, so every callback has returned (the last one signals the
 * job before it returns) before its data is freed. */
static void flt_teardown(struct job *j)
{
    for (unsigned k = 0; k < j->nfiles; k++)
        if (j->files[k].fh_open) {
            (void)FltClose(j->files[k].fh);
            j->files[k].fh_open = false;
        }
    for (unsigned i = 0; i < j->nslots; i++)
        if (j->slots[i].cd) {
            FltFreeCallbackData(j->slots[i].cd);
            j->slots[i].cd = NULL;
        }
    for (unsigned k = 0; k < j->nfiles; k++)
        if (j->files[k].fo) {
            ObDereferenceObject(j->files[k].fo);
            j->files[k].fo = NULL;
        }
}

static const struct bench_api api_async = {
    .setup = async_setup,
    .setup_slot = wdf_setup_slot,
    .issue = async_issue,
    .renew = renew_slot_requests,
};

static const struct bench_api api_sync = {
    .one_slot = true,
    .setup = async_setup,
    .setup_slot = wdf_setup_slot,
    .issue = sync_issue,
};

static const struct bench_api api_flt = {
    .setup = flt_setup,
    .setup_slot = flt_setup_slot,
    .issue = flt_issue,
    .teardown = flt_teardown,
    .cleanup = flt_global_teardown,
};

static const struct bench_api api_stack = {
    .setup = stack_setup,
    .setup_slot = wdf_setup_slot,
    .issue = async_issue,
    .renew = renew_slot_requests,
};

/* By enum api_mode. */
static const struct bench_api *const bench_apis[] = {
    [API_ASYNC] = &api_async,
    [API_SYNC] = &api_sync,
    [API_FLT] = &api_flt,
    [API_STACK] = &api_stack,
};
#define N_APIS (sizeof(bench_apis) / sizeof(bench_apis[0]))

static int job_setup(struct job *j)
{
    const struct job_opts *o = &j->o;
    char sb[96];
    select_backend(j->run, o->ioengine);
    if (j->api->setup(j))
        return -1;
    for (unsigned k = 0; o->verify && rw_writes(o->rw) && k < j->nfiles; k++)
        j->files[k].written = xcalloc((size_t)((j->files[k].nblocks + 63) / 64), sizeof(uint64_t));
    if (o->verify && !strcmp(j->backend, "null")) {
        errmsg("%s: --verify needs an engine that moves data (the null engine does not)", o->name);
        return -1;
    }
    j->verify_reads = o->verify && !rw_writes(o->rw);
    j->shards = xcalloc_lines(j->nfiles + 1, sizeof(*j->shards));
    for (unsigned k = 0; k <= j->nfiles; k++) {
        for (int d = 0; d < DDIR_N; d++)
            ddir_acc_init(&j->shards[k].d[d]);
        ddir_acc_init(&j->shards[k].sync);
    }
    j->nslots = j->api->one_slot ? 1 : o->iodepth;
    j->slots = xcalloc_lines(j->nslots, sizeof(*j->slots));
    uint64_t seed = o->randseed * 0x2545F4914F6CDD1Dull + j->index;
    for (unsigned i = 0; i < j->nslots; i++) {
        struct slot *s = &j->slots[i];
        s->job = j;
        s->rng = splitmix64(&seed) | 1;
        WDF_REQUEST_SEND_OPTIONS_INIT(&s->sync_opts, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
        if (o->timeout_ms) {
            WDF_REQUEST_SEND_OPTIONS_INIT(&s->send_opts, 0);
            WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&s->send_opts, WDF_REL_TIMEOUT_IN_MS(o->timeout_ms));
            WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&s->sync_opts, WDF_REL_TIMEOUT_IN_MS(o->timeout_ms));
            s->has_opts = true;
        }
        NTSTATUS st = STATUS_SUCCESS;
        if (rw_reads(o->rw) || rw_writes(o->rw)) {
            st = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPool, 0x68636e42 /* 'Bnch' */, o->bs,
                                 &s->mem, &s->buf);
            if (!NT_SUCCESS(st)) {
                s->mem = NULL;
                errmsg("%s: WdfMemoryCreate(%" PRIu32 ") failed: %s", o->name, o->bs,
                       status_str(sb, sizeof(sb), st));
                return -1;
            }
            fill_random(s->buf, o->bs, splitmix64(&seed));
        }
        if (rw_trims(o->rw)) {
            /* DEVICE_MANAGE_DATA_SET_ATTRIBUTES, then at the next 8-byte
             * boundary the one DEVICE_DATA_SET_RANGE (filled per trim). */
            size_t ranges_at = (sizeof(DEVICE_MANAGE_DATA_SET_ATTRIBUTES) + 7) & ~(size_t)7;
            size_t len = ranges_at + sizeof(DEVICE_DATA_SET_RANGE);
            void *buf;
            st = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPool, 0x68636e42, len, &s->dsm_mem, &buf);
            if (!NT_SUCCESS(st)) {
                s->dsm_mem = NULL;
                errmsg("%s: WdfMemoryCreate(%zu) failed: %s", o->name, len, status_str(sb, sizeof(sb), st));
                return -1;
            }
            memset(buf, 0, len);
            DEVICE_MANAGE_DATA_SET_ATTRIBUTES *dsm = buf;
            dsm->Size = sizeof(*dsm);
            dsm->Action = DeviceDsmAction_Trim;
            dsm->DataSetRangesOffset = (ULONG)ranges_at;
            dsm->DataSetRangesLength = sizeof(DEVICE_DATA_SET_RANGE);
            s->dsm_range = (DEVICE_DATA_SET_RANGE *)((char *)buf + ranges_at);
        }
        if (j->api->setup_slot(s))
            return -1;
    }
    if (job_register(j) != 0)
        return -1;
    KeInitializeEvent(&j->done, NotificationEvent, FALSE);
    j->event_ready = true;
    return 0;
}

static void job_teardown(struct job *j)
{
    if (j->api->teardown)
        j->api->teardown(j);
    for (unsigned i = 0; i < j->nslots; i++) {
        struct slot *s = &j->slots[i];
        if (s->req)
            WdfObjectDelete(s->req);
        if (s->mem)
            WdfObjectDelete(s->mem);
        if (s->dsm_mem)
            WdfObjectDelete(s->dsm_mem);
        s->req = NULL;
        s->mem = NULL;
        s->dsm_mem = NULL;
        s->dsm_range = NULL;
    }
    for (unsigned k = 0; k < j->nfiles; k++)
        if (j->files[k].target) {
            WdfObjectDelete(j->files[k].target); /* closes it; its completion thread ends */
            j->files[k].target = NULL;
        }
}

static void job_free(struct job *j)
{
    if (j->event_ready)
        UwdfKeDestroyEvent(&j->done);
    if (j->shards)
        for (unsigned k = 0; k <= j->nfiles; k++) {
            for (int d = 0; d < DDIR_N; d++)
                ddir_acc_free(&j->shards[k].d[d]);
            ddir_acc_free(&j->shards[k].sync);
        }
    if (j->files)
        for (unsigned k = 0; k < j->nfiles; k++)
            free(j->files[k].written);
    free(j->shards);
    free(j->slots);
    free(j->files);
}

/* ======================================================================
 * 9. monitor: bandwidth samples and the ETA line
 * ====================================================================== */

/* ======================================================================
 * 10. reports: normal, terse, JSON, JSON+
 * ====================================================================== */

/* ---- normal ---- */

/* ---- terse (fio's version 3 layout) ---- */

/* ---- JSON ---- */

/* ======================================================================
 * 11. main
 * ====================================================================== */

int main(int argc, char **argv)
{
    int rc = 1;
    struct bench_config cl;
    struct bench_run run = { .cfg = &cl, .strings = &cl.strings, .layout.strings = &cl.strings };
    struct jobdef *defs = NULL;
    unsigned ndefs = 0;
    FILE *out = stdout;
    bool framework_up = false;

    crc32c_init();
    int pr = parse_cmdline(argc, argv, &cl);
    if (pr == 2)
        rc = 0;
    if (pr)
        goto done_args;
    for (unsigned i = 0; i < cl.njobfiles; i++)
        if (parse_job_file(&cl, cl.jobfiles[i]))
            goto done_args;
    ndefs = build_jobdefs(&cl, &defs);
    if (!ndefs)
        goto done_args;
    bool quiet = !(cl.g.formats & OUT_NORMAL);
    run.njobs = 0;
    for (unsigned i = 0; i < ndefs; i++) {
        if (validate_jobdef(&defs[i], quiet))
            goto done_args;
        run.njobs += defs[i].o.numjobs;
    }

    run.jobs = xcalloc(run.njobs, sizeof(*run.jobs));
    for (unsigned i = 0, idx = 0; i < ndefs; i++)
        for (unsigned c = 0; c < defs[i].o.numjobs; c++, idx++) {
            struct job *j = &run.jobs[idx];
            j->run = &run;
            j->o = defs[i].o;
            j->api = bench_apis[j->o.api];
            j->def = &defs[i];
            j->index = idx;
            j->clone = c;
        }

    /* Every file is checked before the report file is created: a job that
     * cannot run leaves nothing behind. */
    for (unsigned i = 0; i < run.njobs; i++)
        if (job_resolve_files(&run.jobs[i]))
            goto done_files;

    if (cl.g.output) {
        out = fopen(cl.g.output, "w");
        if (!out) {
            errmsg("cannot open output file '%s': %s", cl.g.output, strerror(errno));
            out = stdout;
            goto done_jobs;
        }
    }
    FILE *info = (cl.g.formats & OUT_NORMAL) ? out : NULL;

    interrupt_catch();

    if (layout_all(&run.layout, info))
        goto done_files;

    const char *env = getenv("UWDF_BACKEND");
    run.env_backend = env ? keep_str(run.strings, env) : NULL;
    if (framework_init(&run))
        goto done_framework;
    framework_up = true;
    for (unsigned i = 0; i < run.njobs; i++)
        if (job_setup(&run.jobs[i]))
            goto done_framework;
    select_backend(&run, ENGINE_DEFAULT);
    if (stop_requested()) {
        errmsg("interrupted before the jobs started");
        goto done_framework;
    }
    if (cl.g.formats & OUT_NORMAL)
        print_header(out, &run, defs, ndefs);

    /* Job threads do not take the signals: the handler runs on the main
     * thread (or a framework thread), never inside a job's send. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    clock_init(); /* before any job reads the clock */
    pthread_barrier_init(&run.barrier, NULL, run.njobs + 1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned i = 0; i < run.njobs; i++) {
        int r = pthread_create(&run.jobs[i].thread, NULL, job_thread, &run.jobs[i]);
        if (r) {
            errmsg("cannot start job thread: %s", strerror(r));
            remove_generated_files();
            _exit(1); /* the started threads wait on the barrier */
        }
        run.jobs[i].thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    struct rusage ru_start, ru_end;
    pthread_barrier_wait(&run.barrier);
    uint64_t t_start = now_ns(), cpu_t0 = t_start;
    cpu_snapshot(&ru_start);
    monitor(&run, t_start, &ru_start, &cpu_t0);
    for (unsigned i = 0; i < run.njobs; i++)
        pthread_join(run.jobs[i].thread, NULL);
    cpu_snapshot(&ru_end);
    uint64_t t_end = now_ns();
    pthread_barrier_destroy(&run.barrier);

    struct cpu_use cpu;
    cpu_compute(&ru_start, &ru_end, t_end > cpu_t0 ? t_end - cpu_t0 : 0, &cpu);
    struct report *reps;
    unsigned nrep = build_reports(&run, &reps);
    if (cl.g.formats & OUT_NORMAL) {
        fprintf(out, "\n");
        for (unsigned i = 0; i < nrep; i++)
            print_report_normal(out, &run, &reps[i], &cpu);
        print_group_normal(out, &run);
    }
    if (cl.g.formats & OUT_TERSE)
        for (unsigned i = 0; i < nrep; i++)
            print_report_terse(out, &run, &reps[i], &cpu);
    if (cl.g.formats & (OUT_JSON | OUT_JSONPLUS))
        print_json(out, &run, reps, nrep, &cpu, (cl.g.formats & OUT_JSONPLUS) != 0);
    free_reports(reps, nrep);
    fflush(out);

    rc = 0;
    for (unsigned i = 0; i < run.njobs; i++)
        if (run.jobs[i].error_set)
            rc = 1;

done_framework:
    for (unsigned i = 0; i < run.njobs; i++)
        job_teardown(&run.jobs[i]);
    for (unsigned i = 0; i < N_APIS; i++)
        if (bench_apis[i]->cleanup)
            bench_apis[i]->cleanup(&run); /* FltUnregisterFilter before the driver is deleted */
    if (framework_up || run.driver)
        WdfObjectDelete(run.driver);
    select_backend(&run, ENGINE_DEFAULT);
done_files:
    remove_generated_files();
done_jobs:
    if (out != stdout && fclose(out) != 0) {
        errmsg("writing '%s' failed: %s", cl.g.output, strerror(errno));
        rc = 1;
    }
    for (unsigned i = 0; i < run.njobs; i++)
        job_free(&run.jobs[i]);
    free(run.jobs);
    layout_free(&run.layout);
done_args:
    free(defs);
    config_free(&cl);
    return rc;
}
