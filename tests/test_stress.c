/* Exactly-once stress: 4 worker threads and one controller on a loop device
 * opened with FILE_NO_INTERMEDIATE_BUFFERING (O_DIRECT), on each engine.
 *
 * Workers mix asynchronous sends (format + WdfRequestSend with a completion
 * routine; a write whose routine reuses the request and sends a read of the
 * same block from the completion thread), synchronous sends, per-request
 * timeouts and cancels of their own requests. The controller stops, starts
 * and purges the shared target (WDF forbids concurrent Start/Stop, so only it
 * changes state), cancels requests of every worker and switches the stall
 * injector on and off so that timeouts and cancels really fire.
 *
 * What must hold at the end:
 *  - every send was completed exactly once: per request, completion routine
 *    calls + sends that returned FALSE == sends, and no routine ran for a
 *    request that was not in flight;
 *  - every write reported successful reads back intact: each block carries a
 *    header (sequence number, owner, block, CRC32C); a block holds its last
 *    successful write, or a later write that failed (a cancel or timeout the
 *    kernel could not honour), never an older one; checked by the workers'
 *    reads and by a final read of the whole device from outside the library;
 *  - no buffer was touched after its request completed: buffers sit between
 *    PROT_NONE guard pages, and each completion poisons its buffer and makes
 *    it read-only until the worker reissues it (checking the poison first).
 *    A late write from user space faults; a late DMA into pinned pages
 *    breaks the poison; an O_DIRECT read into a still-protected buffer would
 *    fail with EFAULT, which is counted as a failure like any unexpected
 *    status.
 *
 * The same runs on an NBD export (nbdkit's file plugin over the backing
 * file, the stack's lower target on it too), where one thing differs: NBD
 * cannot cancel a command, so a write that timed out or was cancelled may
 * still reach the server after a later write of its block; there a block
 * may also hold one of its recent failed writes (never a lost successful
 * one, never data from elsewhere).
 *
 * The engine pool is one engine, and two neighbour targets on it (files,
 * tu_reader) keep reads in flight throughout: none of the controller's
 * stops, purges and cancels may touch them, so every one of their reads
 * must succeed, exactly once, with its file's data.
 *
 * UWDF_STRESS_OPS=N sets the number of sends per engine (default
 * STRESS_SHORT_OPS, the `make check` form); `make soak` runs 200,000. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>


#define BLK 4096u
#define WORKERS 4
#define SLOTS 4                /* asynchronous requests per worker */
#define BLOCKS_PER_WORKER 64u
#define LATE_WRITES 8          /* failed writes per block remembered (NBD) */
#define DEVICE_BLOCKS (WORKERS * BLOCKS_PER_WORKER)
#define STRESS_SHORT_OPS 4000u
#define NEIGHBOURS 2
#define NEIGHBOUR_SEED 777u
#define BLK_MAGIC 0x55574446u  /* "UWDF" */
#define POISON 0xD7
/* A request still in flight this long after the last send is lost. */
#define DRAIN_LIMIT_MS 20000.0
/* Worker wait between checks of its slots when nothing completes. */
#define WAIT_SLICE_MS 50

struct blk_hdr {
    uint32_t magic;
    uint32_t worker;
    uint32_t block;
    uint32_t crc; /* CRC32C of the block with this field zero */
    uint64_t seq;
    uint64_t run;
};

enum op_kind {
    OP_WRITE = 1,
    OP_READ,
    OP_WRITE_THEN_READ, /* the routine reuses the request and sends the read */
};

struct worker;

struct slot {
    struct worker *w;
    int index;
    WDFREQUEST req;
    WDFMEMORY wmem, rmem;
    uint8_t *wbuf, *rbuf;
    uint8_t copy[BLK]; /* what the read returned, taken before the poison */
    enum op_kind kind;
    int phase; /* OP_WRITE_THEN_READ: 0 write sent, 1 read sent */
    uint32_t block;
    uint64_t seq;
    WDFIOTARGET target; /* the loop device, or the in-process device over it */
    bool busy;          /* owner thread only */
    atomic_int inflight; /* 1 from just before a send until its routine */
    atomic_int done;     /* set (release) by the final routine call */
    NTSTATUS wstatus, rstatus;
    ULONG_PTR winfo, rinfo;
    bool read_sent;
    /* exactly-once accounting */
    atomic_ulong sends, routines, send_false, double_completions, wrong_request, poison_broken;
};

struct stress;

struct worker {
    struct stress *s;
    int id;
    pthread_t thread;
    sem_t wake;
    unsigned rng;
    uint64_t next_seq;
    uint32_t first_block;
    uint64_t ok_seq[BLOCKS_PER_WORKER];   /* last write reported successful */
    uint64_t last_try[BLOCKS_PER_WORKER]; /* last write sent */
    /* NBD: the latest writes of each block that did not succeed (they may
     * land late); written by the worker only. */
    uint64_t late_seq[BLOCKS_PER_WORKER][LATE_WRITES];
    unsigned late_next[BLOCKS_PER_WORKER];
    bool block_busy[BLOCKS_PER_WORKER];
    struct slot slots[SLOTS];
    /* synchronous sends use their own request and buffer */
    WDFREQUEST sync_req;
    uint8_t *sync_buf;
    unsigned long ops_budget;
    /* figures */
    unsigned long sync_sends, reads_verified, writes_ok, writes_uncertain,
        own_cancels, own_cancels_true, timeouts, cancelled, not_sent, invalid_state;
    char failure[512];
    bool failed;
};

struct stress {
    struct tu_env env;
    WDFIOTARGET target;  /* the loop device, O_DIRECT: stopped, started, purged */
    WDFIOTARGET stack;   /* \Device\uwdfStress, whose queue forwards to the loop device */
    WDFDEVICE stack_dev;
    WDFQUEUE queue;      /* purged and restarted by the controller */
    const char *engine;
    bool late_writes;    /* NBD: a failed write may land after later ones */
    struct tu_nbdkit nbd;
    uint64_t run;
    struct worker workers[WORKERS];
    atomic_bool workers_done;
    pthread_t controller;
    unsigned ctl_rng;
    /* controller figures */
    unsigned long ctl_cancels, ctl_cancels_true, stops, starts, purges, stalls, queue_purges;
    char ctl_failure[256];
};

/* ---- helpers ---- */

static unsigned rnd(unsigned *state)
{
    /* xorshift32: cheap and per thread */
    unsigned x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static void worker_fail(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void worker_fail(struct worker *w, const char *fmt, ...)
{
    if (w->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->failure, sizeof(w->failure), fmt, ap);
    va_end(ap);
    w->failed = true;
}

static void buf_protect(uint8_t *buf, bool writable)
{
    if (mprotect(buf, BLK, writable ? PROT_READ | PROT_WRITE : PROT_READ) != 0)
        abort(); /* the guard scheme is the point of the test */
}

static bool buf_poisoned(const uint8_t *buf)
{
    static const uint8_t poison[BLK] = { [0 ... BLK - 1] = POISON };
    return memcmp(buf, poison, BLK) == 0;
}

/* After a completion: nobody may touch the buffer until it is reissued. */
static void buf_retire(uint8_t *buf)
{
    memset(buf, POISON, BLK);
    buf_protect(buf, false);
}

/* Before a reissue: the poison must have survived since the completion. */
static bool buf_reclaim(uint8_t *buf)
{
    bool intact = buf_poisoned(buf);
    buf_protect(buf, true);
    return intact;
}

static void block_fill(struct worker *w, uint8_t *buf, uint32_t block, uint64_t seq)
{
    struct blk_hdr h = { BLK_MAGIC, (uint32_t)w->id, block, 0, seq, w->s->run };
    uint64_t x = seq * 0x9E3779B97F4A7C15ull ^ ((uint64_t)block << 32) ^ w->s->run;
    for (size_t i = sizeof(h); i < BLK; i += 8) {
        x ^= x << 7;
        x ^= x >> 9;
        memcpy(buf + i, &x, 8);
    }
    memcpy(buf, &h, sizeof(h));
    h.crc = tu_crc32c(0, buf, BLK);
    memcpy(buf, &h, sizeof(h));
}

/* Whether data is an acceptable content of the worker's block: the last
 * successful write, or a later one that failed; zeros only if no write
 * ever succeeded. */
static bool block_acceptable(struct worker *w, uint32_t block, const uint8_t *data, char *why, size_t n)
{
    uint32_t i = block - w->first_block;
    struct blk_hdr h;
    memcpy(&h, data, sizeof(h));
    if (h.magic == 0) {
        bool zero = true;
        for (size_t k = 0; k < BLK && zero; k++)
            zero = data[k] == 0;
        if (zero && w->ok_seq[i] == 0)
            return true;
        snprintf(why, n, "block %u: %s, last good write seq %" PRIu64, block,
                 zero ? "zeros" : "unrecognised data", w->ok_seq[i]);
        return false;
    }
    uint32_t crc = h.crc;
    uint8_t tmp[sizeof(h)];
    memcpy(tmp, data, sizeof(h));
    ((struct blk_hdr *)tmp)->crc = 0;
    uint32_t c = tu_crc32c(tu_crc32c(0, tmp, sizeof(h)), data + sizeof(h), BLK - sizeof(h));
    if (h.magic != BLK_MAGIC || h.run != w->s->run || h.worker != (uint32_t)w->id || h.block != block ||
        c != crc) {
        snprintf(why, n, "block %u: bad header or CRC (magic %x worker %u block %u seq %" PRIu64
                         " crc %08x want %08x)", block, h.magic, h.worker, h.block, h.seq, crc, c);
        return false;
    }
    if (h.seq == w->ok_seq[i] || (h.seq > w->ok_seq[i] && h.seq <= w->last_try[i]))
        return true;
    for (unsigned k = 0; w->s->late_writes && k < LATE_WRITES; k++)
        if (h.seq == w->late_seq[i][k])
            return true;
    snprintf(why, n, "block %u: holds seq %" PRIu64 ", last good write %" PRIu64 ", last sent %" PRIu64
                     " (a lost or stale write)", block, h.seq, w->ok_seq[i], w->last_try[i]);
    return false;
}

/* A completion status a read or write may end with here; anything else
 * (EFAULT from a protected buffer, an I/O error, ...) fails the test. */
static bool status_expected(struct worker *w, NTSTATUS st)
{
    switch (st) {
    case STATUS_SUCCESS:
        return true;
    case STATUS_IO_TIMEOUT:
        w->timeouts++;
        return true;
    case STATUS_CANCELLED:
        w->cancelled++;
        return true;
    case STATUS_WDF_DEVICE_REMOVED_NOT_SENT: /* pended, then purged */
        w->not_sent++;
        return true;
    case STATUS_INVALID_DEVICE_STATE: /* sent while purged */
        w->invalid_state++;
        return true;
    default:
        return false;
    }
}

static void send_options(unsigned *rng, WDF_REQUEST_SEND_OPTIONS *o)
{
    WDF_REQUEST_SEND_OPTIONS_INIT(o, 0);
    if (rnd(rng) % 3 == 0)
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(o, WDF_REL_TIMEOUT_IN_MS(1 + rnd(rng) % 25));
}

/* ---- asynchronous path ---- */

static EVT_WDF_REQUEST_COMPLETION_ROUTINE slot_done;

static void slot_finish(struct slot *sl)
{
    atomic_store_explicit(&sl->done, 1, memory_order_release);
    sem_post(&sl->w->wake);
}

/* Send the slot's request (formatted); false when WdfRequestSend refused. */
static bool slot_send(struct slot *sl, unsigned *rng)
{
    WDF_REQUEST_SEND_OPTIONS o;
    send_options(rng, &o);
    WdfRequestSetCompletionRoutine(sl->req, slot_done, sl);
    atomic_fetch_add(&sl->sends, 1);
    if (atomic_exchange(&sl->inflight, 1) != 0)
        atomic_fetch_add(&sl->double_completions, 1); /* previous send never completed */
    if (WdfRequestSend(sl->req, sl->target, &o))
        return true;
    atomic_store(&sl->inflight, 0);
    atomic_fetch_add(&sl->send_false, 1);
    return false;
}

static VOID slot_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                      WDFCONTEXT Context)
{
    struct slot *sl = Context;
    (void)Target;
    atomic_fetch_add(&sl->routines, 1);
    if (Request != sl->req)
        atomic_fetch_add(&sl->wrong_request, 1);
    if (atomic_exchange(&sl->inflight, 0) != 1)
        atomic_fetch_add(&sl->double_completions, 1);
    NTSTATUS st = Params->IoStatus.Status;
    if (st != WdfRequestGetStatus(Request))
        atomic_fetch_add(&sl->wrong_request, 1);

    bool is_write = sl->kind == OP_WRITE || (sl->kind == OP_WRITE_THEN_READ && sl->phase == 0);
    if (is_write) {
        sl->wstatus = st;
        sl->winfo = Params->IoStatus.Information;
        buf_retire(sl->wbuf);
    } else {
        sl->rstatus = st;
        sl->rinfo = Params->IoStatus.Information;
        memcpy(sl->copy, sl->rbuf, BLK);
        buf_retire(sl->rbuf);
    }
    if (sl->kind != OP_WRITE_THEN_READ || sl->phase == 1 || !NT_SUCCESS(st)) {
        slot_finish(sl);
        return;
    }

    /* Reissue from the completion thread: the engine takes the send
     * straight into its ring. */
    WDF_REQUEST_REUSE_PARAMS reuse;
    LONGLONG off = (LONGLONG)sl->block * BLK;
    unsigned rng = (unsigned)(sl->seq * 2654435761u) | 1u;
    sl->phase = 1;
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    NTSTATUS rs = WdfRequestReuse(Request, &reuse);
    if (!buf_reclaim(sl->rbuf))
        atomic_fetch_add(&sl->poison_broken, 1);
    if (NT_SUCCESS(rs))
        rs = WdfIoTargetFormatRequestForRead(sl->target, Request, sl->rmem, NULL, &off);
    if (!NT_SUCCESS(rs)) {
        /* The read was never sent; account it as a refused send. */
        sl->rstatus = rs;
        atomic_fetch_add(&sl->sends, 1);
        atomic_fetch_add(&sl->send_false, 1);
        buf_retire(sl->rbuf);
        slot_finish(sl);
        return;
    }
    sl->read_sent = true;
    if (!slot_send(sl, &rng)) {
        sl->rstatus = WdfRequestGetStatus(Request);
        buf_retire(sl->rbuf);
        slot_finish(sl);
    }
}

static uint32_t worker_pick_block(struct worker *w)
{
    uint32_t i = rnd(&w->rng) % BLOCKS_PER_WORKER;
    while (w->block_busy[i])
        i = (i + 1) % BLOCKS_PER_WORKER;
    w->block_busy[i] = true;
    return i;
}

static void worker_start_slot(struct worker *w, struct slot *sl)
{
    WDF_REQUEST_REUSE_PARAMS reuse;
    uint32_t i = worker_pick_block(w);
    unsigned r = rnd(&w->rng) % 8;
    sl->kind = r < 3 ? OP_WRITE : r < 6 ? OP_READ : OP_WRITE_THEN_READ;
    /* One in four through the in-process device and its queue. */
    sl->target = rnd(&w->rng) % 4 == 0 ? w->s->stack : w->s->target;
    sl->phase = 0;
    sl->block = w->first_block + i;
    sl->read_sent = false;
    sl->wstatus = sl->rstatus = STATUS_PENDING;
    sl->winfo = sl->rinfo = 0;
    sl->busy = true;
    atomic_store(&sl->done, 0);

    if (!buf_reclaim(sl->wbuf) || !buf_reclaim(sl->rbuf))
        atomic_fetch_add(&sl->poison_broken, 1);
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    NTSTATUS st = WdfRequestReuse(sl->req, &reuse);
    if (!NT_SUCCESS(st))
        worker_fail(w, "WdfRequestReuse: %s", tu_status_name(st));
    LONGLONG off = (LONGLONG)sl->block * BLK;
    if (sl->kind == OP_READ) {
        buf_retire(sl->wbuf);
        sl->read_sent = true;
        st = WdfIoTargetFormatRequestForRead(sl->target, sl->req, sl->rmem, NULL, &off);
    } else {
        buf_retire(sl->rbuf);
        sl->seq = ++w->next_seq;
        w->last_try[i] = sl->seq;
        block_fill(w, sl->wbuf, sl->block, sl->seq);
        st = WdfIoTargetFormatRequestForWrite(sl->target, sl->req, sl->wmem, NULL, &off);
    }
    if (!NT_SUCCESS(st)) {
        worker_fail(w, "format: %s", tu_status_name(st));
        return;
    }
    if (!slot_send(sl, &w->rng)) {
        NTSTATUS why = WdfRequestGetStatus(sl->req);
        if (sl->kind == OP_READ)
            sl->rstatus = why;
        else
            sl->wstatus = why;
        buf_retire(sl->kind == OP_READ ? sl->rbuf : sl->wbuf);
        slot_finish(sl);
    }
}

/* A refused send (WdfRequestSend FALSE) ends with the same statuses: the
 * target's state, or a cancel that came first (sticky until reuse). */
static void worker_read_result(struct worker *w, uint32_t block, NTSTATUS st, ULONG_PTR info, const uint8_t *data)
{
    char why[300];
    if (!status_expected(w, st)) {
        worker_fail(w, "read of block %u completed with " TU_STATUS_FMT, block, TU_STATUS_ARG(st));
        return;
    }
    if (st != STATUS_SUCCESS)
        return;
    if (info != BLK) {
        worker_fail(w, "read returned %lu bytes, want %u", (unsigned long)info, BLK);
        return;
    }
    if (!block_acceptable(w, block, data, why, sizeof(why)))
        worker_fail(w, "%s read: %s", w->s->engine, why);
    else
        w->reads_verified++;
}

static void worker_write_result(struct worker *w, uint32_t block, uint64_t seq, NTSTATUS st, ULONG_PTR info)
{
    uint32_t i = block - w->first_block;
    if (!status_expected(w, st)) {
        worker_fail(w, "write of block %u completed with " TU_STATUS_FMT, block, TU_STATUS_ARG(st));
        return;
    }
    if (st == STATUS_SUCCESS && info != BLK) {
        worker_fail(w, "write returned %lu bytes, want %u", (unsigned long)info, BLK);
        return;
    }
    if (st == STATUS_SUCCESS) {
        w->ok_seq[i] = seq;
        w->writes_ok++;
    } else {
        w->writes_uncertain++;
        w->late_seq[i][w->late_next[i]++ % LATE_WRITES] = seq;
    }
}

/* Returns whether a send was refused for the target's state (purged). */
static bool worker_reap_slot(struct worker *w, struct slot *sl)
{
    bool purged = sl->wstatus == STATUS_INVALID_DEVICE_STATE || sl->rstatus == STATUS_INVALID_DEVICE_STATE;
    if (sl->kind != OP_READ)
        worker_write_result(w, sl->block, sl->seq, sl->wstatus, sl->winfo);
    if (sl->read_sent)
        worker_read_result(w, sl->block, sl->rstatus, sl->rinfo, sl->copy);
    w->block_busy[sl->block - w->first_block] = false;
    sl->busy = false;
    return purged;
}

/* ---- synchronous path ---- */

static void worker_sync_op(struct worker *w)
{
    WDF_REQUEST_REUSE_PARAMS reuse;
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_MEMORY_DESCRIPTOR d;
    ULONG_PTR bytes = 0;
    uint32_t i = worker_pick_block(w);
    uint32_t block = w->first_block + i;
    LONGLONG off = (LONGLONG)block * BLK;
    bool write = rnd(&w->rng) % 2;
    NTSTATUS st;

    if (!buf_reclaim(w->sync_buf))
        worker_fail(w, "synchronous buffer written after its send returned");
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    st = WdfRequestReuse(w->sync_req, &reuse);
    if (!NT_SUCCESS(st))
        worker_fail(w, "WdfRequestReuse (sync): %s", tu_status_name(st));
    /* Synchronous sends always carry a timeout (rule SyncReqSend). */
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(2 + rnd(&w->rng) % 40));
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, w->sync_buf, BLK);
    w->sync_sends++;
    if (write) {
        uint64_t seq = ++w->next_seq;
        w->last_try[i] = seq;
        block_fill(w, w->sync_buf, block, seq);
        st = WdfIoTargetSendWriteSynchronously(w->s->target, w->sync_req, &d, &off, &o, &bytes);
        buf_retire(w->sync_buf);
        worker_write_result(w, block, seq, st, bytes);
    } else {
        st = WdfIoTargetSendReadSynchronously(w->s->target, w->sync_req, &d, &off, &o, &bytes);
        /* The framework wrote the buffer only if the read succeeded; check
         * it before the poison goes back. */
        worker_read_result(w, block, st, bytes, w->sync_buf);
        buf_retire(w->sync_buf);
    }
    w->block_busy[i] = false;
}

/* ---- worker thread ---- */

static void worker_cancel_own(struct worker *w)
{
    struct slot *sl = &w->slots[rnd(&w->rng) % SLOTS];
    if (!sl->busy)
        return;
    w->own_cancels++;
    if (WdfRequestCancelSentRequest(sl->req))
        w->own_cancels_true++;
}

/* Sends made so far, the chained reads sent by completion routines included. */
static unsigned long worker_sent(struct worker *w)
{
    unsigned long n = w->sync_sends;
    for (int k = 0; k < SLOTS; k++)
        n += atomic_load(&w->slots[k].sends);
    return n;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    double drain_start = 0;
    while (!w->failed) {
        bool more = worker_sent(w) < w->ops_budget;
        int busy = 0;
        bool purged = false;
        for (int k = 0; k < SLOTS; k++) {
            struct slot *sl = &w->slots[k];
            if (sl->busy && atomic_load_explicit(&sl->done, memory_order_acquire))
                purged |= worker_reap_slot(w, sl);
            if (purged)
                tu_sleep_ms(1); /* the controller restarts it; don't spend the budget on refusals */
            if (!sl->busy && more && !w->failed)
                worker_start_slot(w, sl);
            busy += sl->busy;
        }
        if (!more && busy == 0)
            break;
        unsigned r = rnd(&w->rng) % 16;
        if (more && r < 2) {
            worker_sync_op(w);
            continue;
        }
        if (r == 2)
            worker_cancel_own(w);
        if (!more) {
            if (drain_start == 0)
                drain_start = tu_now_ms();
            else if (tu_now_ms() - drain_start > DRAIN_LIMIT_MS) {
                worker_fail(w, "%d requests never completed within %.0f ms", busy, DRAIN_LIMIT_MS);
                break;
            }
        }
        /* Wait for a completion; the slice only bounds a missed wake-up. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (sem_timedwait(&w->wake, &ts) != 0 && errno == EINTR)
            ;
    }
    return NULL;
}

/* ---- controller thread ---- */

/* Purge the in-process device's queue: requests not yet presented to the
 * forwarding callback complete with STATUS_CANCELLED, new ones are
 * refused (STATUS_CANCELLED) until the queue starts again; forwarded ones
 * finish at the loop device. */
static bool controller_queue_purge(struct stress *s)
{
    WdfIoQueuePurgeSynchronously(s->queue);
    tu_sleep_ms((int)(rnd(&s->ctl_rng) % 2));
    WdfIoQueueStart(s->queue);
    return true;
}

static void controller_cancel_any(struct stress *s)
{
    struct worker *w = &s->workers[rnd(&s->ctl_rng) % WORKERS];
    unsigned k = rnd(&s->ctl_rng) % (SLOTS + 1);
    WDFREQUEST req = k == SLOTS ? w->sync_req : w->slots[k].req;
    s->ctl_cancels++;
    if (WdfRequestCancelSentRequest(req))
        s->ctl_cancels_true++;
}

static void controller_start(struct stress *s)
{
    /* No ck_assert off the test's thread: record it for the end. */
    NTSTATUS st = WdfIoTargetStart(s->target);
    if (st != STATUS_SUCCESS && !s->ctl_failure[0])
        snprintf(s->ctl_failure, sizeof(s->ctl_failure), "WdfIoTargetStart: %s", tu_status_name(st));
    s->starts++;
}

static void *controller_main(void *arg)
{
    struct stress *s = arg;
    bool stalled = false;
    /* The rare events come once early whatever the dice say, so a short run (or a loaded
     * machine that gives this thread few turns) still has each of them while workers run. */
    static const unsigned forced[] = { 51, 61, 45, 55 }; /* purge, queue purge, stop, stall */
    unsigned turn = 0;
    while (!atomic_load(&s->workers_done)) {
        tu_sleep_ms(1);
        unsigned r = rnd(&s->ctl_rng) % 100;
        if (turn < 4 * (sizeof(forced) / sizeof(forced[0])) && turn++ % 4 == 3)
            r = forced[turn / 4 - 1];
        if (r < 40) {
            controller_cancel_any(s);
        } else if (r < 50) {
            static const WDF_IO_TARGET_SENT_IO_ACTION actions[] = {
                WdfIoTargetCancelSentIo, WdfIoTargetWaitForSentIoToComplete, WdfIoTargetLeaveSentIoPending
            };
            WdfIoTargetStop(s->target, actions[rnd(&s->ctl_rng) % 3]);
            s->stops++;
            tu_sleep_ms((int)(rnd(&s->ctl_rng) % 3));
            controller_start(s);
        } else if (r < 52) {
            WdfIoTargetPurge(s->target, rnd(&s->ctl_rng) % 2 ? WdfIoTargetPurgeIoAndWait : WdfIoTargetPurgeIo);
            s->purges++;
            controller_start(s);
        } else if (r < 60) {
            /* Completions held back a few ms: short timeouts now fire and
             * cancels find stalled requests. */
            stalled = !stalled;
            UwdfFaultInjectStall(stalled ? 2 + rnd(&s->ctl_rng) % 15 : 0);
            s->stalls += stalled;
        } else if (r < 63) {
            s->queue_purges += controller_queue_purge(s);
        }
    }
    UwdfFaultInjectStall(0);
    return NULL;
}

/* ---- set-up and the final check ---- */

static unsigned long stress_ops(void)
{
    const char *e = getenv("UWDF_STRESS_OPS");
    unsigned long n = e && *e ? strtoul(e, NULL, 10) : 0;
    return n ? n : STRESS_SHORT_OPS;
}

static void slot_init(struct worker *w, struct slot *sl, int k)
{
    sl->w = w;
    sl->index = k;
    sl->req = tu_make_request(w->s->target);
    sl->wbuf = tu_guarded_alloc(BLK);
    sl->rbuf = tu_guarded_alloc(BLK);
    ck_assert_status(WdfMemoryCreatePreallocated(WDF_NO_OBJECT_ATTRIBUTES, sl->wbuf, BLK, &sl->wmem),
                     STATUS_SUCCESS);
    ck_assert_status(WdfMemoryCreatePreallocated(WDF_NO_OBJECT_ATTRIBUTES, sl->rbuf, BLK, &sl->rmem),
                     STATUS_SUCCESS);
    buf_retire(sl->wbuf);
    buf_retire(sl->rbuf);
}

/* \Device\uwdfStress: a pass-through forwarder (tu_forwarder.h), direct
 * I/O (the caller's buffer goes down, so the guard and poison checks cover
 * this path too), forwarding from a parallel queue to the loop device. */
static void stack_create(struct stress *s, const char *loop_dev)
{
    ck_assert_status(tu_forwarder_create(s->env.driver, "\\Device\\uwdfStress", WdfDeviceIoDirect,
                                         WdfIoQueueDispatchParallel, loop_dev, GENERIC_READ | GENERIC_WRITE,
                                         FILE_NON_DIRECTORY_FILE | FILE_NO_INTERMEDIATE_BUFFERING, &s->stack_dev),
                     STATUS_SUCCESS);
    s->queue = tu_forwarder_of(s->stack_dev)->queue;
    ck_assert_str_eq(UwdfIoTargetGetBackendName(tu_forwarder_of(s->stack_dev)->lower), s->engine);
    ck_assert_status(tu_target_open(s->env.device, "\\Device\\uwdfStress", GENERIC_READ | GENERIC_WRITE,
                                    FILE_OPEN, 0, &s->stack),
                     STATUS_SUCCESS);
}

/* Reads the whole device from outside the library and checks every block
 * against its owner's record. */
static void final_check(struct stress *s, const char *dev)
{
    char why[300];
    int fd = open(dev, O_RDONLY | O_DIRECT);
    ck_assert_msg(fd >= 0, "open %s: %s", dev, strerror(errno));
    uint8_t *buf = tu_guarded_alloc(DEVICE_BLOCKS * BLK);
    ck_assert_int_eq(pread(fd, buf, DEVICE_BLOCKS * BLK, 0), (ssize_t)(DEVICE_BLOCKS * BLK));
    close(fd);
    for (uint32_t b = 0; b < DEVICE_BLOCKS; b++) {
        struct worker *w = &s->workers[b / BLOCKS_PER_WORKER];
        ck_assert_msg(block_acceptable(w, b, buf + (size_t)b * BLK, why, sizeof(why)),
                      "%s, final check: %s", s->engine, why);
    }
    tu_guarded_free(buf, DEVICE_BLOCKS * BLK);
}

START_TEST(stress_exactly_once)
{
    bool nbd = _i == TU_BACKENDS;
    if (nbd && !tu_nbd_available())
        return;
    struct stress *s = calloc(1, sizeof(*s));
    ck_assert_ptr_nonnull(s);
    tu_env_init_backend(&s->env, nbd ? 0 : _i); /* (the neighbours' engine, with NBD) */
    s->engine = nbd ? "nbd" : s->env.engine;
    s->late_writes = nbd;
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS); /* the neighbours share the target's engine */
    char *backing = tu_env_file(&s->env, "disk", DEVICE_BLOCKS * BLK, 0);
    const char *dev;
    char file_arg[600];
    if (nbd) {
        snprintf(file_arg, sizeof(file_arg), "file=%s", backing);
        const char *args[] = { "file", file_arg, NULL };
        tu_nbdkit_start(&s->env, &s->nbd, "nbd.sock", args);
        dev = s->nbd.uri;
    } else {
        dev = tu_env_loop(&s->env, backing, 0);
    }
    ck_assert_status(tu_target_open(s->env.device, dev, GENERIC_READ | GENERIC_WRITE, FILE_OPEN,
                                    FILE_NO_INTERMEDIATE_BUFFERING, &s->target),
                     STATUS_SUCCESS);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(s->target), s->engine);
    stack_create(s, dev);
    struct tu_reader neighbour[NEIGHBOURS];
    char *npath[NEIGHBOURS];
    for (int i = 0; i < NEIGHBOURS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "neighbour%d", i);
        npath[i] = tu_env_file(&s->env, name, TU_READER_BLOCKS * BLK, NEIGHBOUR_SEED + (unsigned)i);
        tu_reader_start(&neighbour[i], s->env.device, npath[i], NEIGHBOUR_SEED + (unsigned)i, 2);
    }

    unsigned long ops = stress_ops();
    s->run = ((uint64_t)getpid() << 32) ^ (uint64_t)(tu_now_ms() * 1000.0);
    s->ctl_rng = (unsigned)s->run | 1u;
    for (int i = 0; i < WORKERS; i++) {
        struct worker *w = &s->workers[i];
        w->s = s;
        w->id = i;
        w->rng = (unsigned)(s->run >> 7) * 2654435761u + (unsigned)i * 40503u + 1u;
        w->first_block = (uint32_t)i * BLOCKS_PER_WORKER;
        w->ops_budget = ops / WORKERS;
        ck_assert_int_eq(sem_init(&w->wake, 0, 0), 0);
        for (int k = 0; k < SLOTS; k++)
            slot_init(w, &w->slots[k], k);
        w->sync_req = tu_make_request(s->target);
        w->sync_buf = tu_guarded_alloc(BLK);
        buf_retire(w->sync_buf);
    }

    double t0 = tu_now_ms();
    for (int i = 0; i < WORKERS; i++)
        ck_assert_int_eq(pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]), 0);
    ck_assert_int_eq(pthread_create(&s->controller, NULL, controller_main, s), 0);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(s->workers[i].thread, NULL);
    atomic_store(&s->workers_done, true);
    pthread_join(s->controller, NULL);
    double elapsed = tu_now_ms() - t0;
    unsigned long neighbour_reads = 0;
    for (int i = 0; i < NEIGHBOURS; i++) {
        ck_assert_msg(!atomic_load(&neighbour[i].threads_differ), "%s: neighbour %d completed on two threads",
                      s->engine, i);
        tu_reader_stop(&neighbour[i]); /* every read succeeded, exactly once */
        neighbour_reads += tu_reader_completed(&neighbour[i]);
        free(npath[i]);
    }
    ck_assert_msg(!s->ctl_failure[0], "%s controller: %s", s->engine, s->ctl_failure);
    ck_assert_status(WdfIoTargetStart(s->target), STATUS_SUCCESS);

    /* Late writes: give anything the framework or kernel still held a
     * moment, then every retired buffer must still hold its poison. */
    tu_sleep_ms(50);
    unsigned long sends = 0, routines = 0, refused = 0, sync = 0, reads = 0, wok = 0, wunc = 0,
                  timeouts = 0, cancelled = 0, not_sent = 0, own = 0, own_true = 0;
    for (int i = 0; i < WORKERS; i++) {
        struct worker *w = &s->workers[i];
        ck_assert_msg(!w->failed, "%s worker %d: %s", s->engine, i, w->failure);
        for (int k = 0; k < SLOTS; k++) {
            struct slot *sl = &w->slots[k];
            unsigned long n = atomic_load(&sl->sends), c = atomic_load(&sl->routines),
                          f = atomic_load(&sl->send_false);
            ck_assert_msg(!sl->busy && atomic_load(&sl->inflight) == 0,
                          "%s worker %d slot %d still in flight", s->engine, i, k);
            ck_assert_msg(c + f == n, "%s worker %d slot %d: %lu sends, %lu completions + %lu refused",
                          s->engine, i, k, n, c, f);
            ck_assert_uint_eq(atomic_load(&sl->double_completions), 0);
            ck_assert_uint_eq(atomic_load(&sl->wrong_request), 0);
            ck_assert_msg(atomic_load(&sl->poison_broken) == 0 && buf_poisoned(sl->wbuf) &&
                              buf_poisoned(sl->rbuf),
                          "%s worker %d slot %d: a buffer was written after its request completed",
                          s->engine, i, k);
            sends += n;
            routines += c;
            refused += f;
        }
        ck_assert_msg(buf_poisoned(w->sync_buf), "%s worker %d: synchronous buffer written late", s->engine, i);
        sync += w->sync_sends;
        reads += w->reads_verified;
        wok += w->writes_ok;
        wunc += w->writes_uncertain;
        timeouts += w->timeouts;
        cancelled += w->cancelled;
        not_sent += w->not_sent + w->invalid_state;
        own += w->own_cancels;
        own_true += w->own_cancels_true;
    }
    TU_FORWARDER *sd = tu_forwarder_of(s->stack_dev);
    unsigned long forwarded = atomic_load(&sd->seen), fwd_refused = atomic_load(&sd->refused);
    WdfIoTargetClose(s->stack);
    WdfIoTargetClose(sd->lower);
    WdfIoTargetClose(s->target);
    if (nbd)
        tu_nbdkit_stop(&s->nbd);
    final_check(s, nbd ? backing : dev);

    printf("stress %s: %lu operations in %.1f s (%lu async sends: %lu completions + %lu refused; "
           "%lu synchronous), %lu writes ok, %lu writes failed (cancelled/timed out), %lu reads "
           "verified, %lu timeouts, %lu cancelled, %lu purged/not sent, cancels %lu (%lu TRUE) by "
           "owners and %lu (%lu TRUE) by the controller, %lu stops, %lu purges, %lu stall periods "
           "injected, %lu queue purges, %lu requests forwarded by the queue (%lu refused below), "
           "%lu reads by %d neighbours on the same engine; every send completed exactly once, every "
           "block verified\n",
           s->engine, sends + sync, elapsed / 1000.0, sends, routines, refused, sync, wok, wunc, reads,
           timeouts, cancelled, not_sent, own, own_true, s->ctl_cancels, s->ctl_cancels_true, s->stops,
           s->purges, s->stalls, s->queue_purges, forwarded, fwd_refused, neighbour_reads, NEIGHBOURS);
    fflush(stdout);
    /* The work really happened: each kind of event is frequent enough that
     * a run without it means the test lost its teeth. */
    ck_assert_uint_ge(sends + sync, ops / WORKERS * WORKERS);
    ck_assert_uint_gt(wok, 0);
    ck_assert_uint_gt(reads, 0);
    ck_assert_uint_gt(s->stops, 0);
    ck_assert_uint_gt(s->purges, 0);
    ck_assert_uint_gt(s->queue_purges, 0);
    ck_assert_uint_gt(forwarded, 0);
    ck_assert_uint_gt(timeouts, 0);
    ck_assert_uint_gt(own_true + s->ctl_cancels_true, 0);
    ck_assert_uint_gt(neighbour_reads, 0);

    tu_env_fini(&s->env);
    for (int i = 0; i < WORKERS; i++) {
        struct worker *w = &s->workers[i];
        for (int k = 0; k < SLOTS; k++) {
            tu_guarded_free(w->slots[k].wbuf, BLK);
            tu_guarded_free(w->slots[k].rbuf, BLK);
        }
        tu_guarded_free(w->sync_buf, BLK);
        sem_destroy(&w->wake);
    }
    free(backing);
    free(s);
}
END_TEST

START_TEST(crc32c_known_answers)
{
    /* RFC 3720 B.4 and the usual check value. */
    uint8_t zeros[32] = { 0 }, ones[32];
    memset(ones, 0xFF, sizeof(ones));
    ck_assert_uint_eq(tu_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(tu_crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
    ck_assert_uint_eq(tu_crc32c(0, ones, sizeof(ones)), 0x62A8AB43u);
    ck_assert_uint_eq(tu_crc32c(tu_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}
END_TEST

static sigjmp_buf guard_jmp;

static void guard_segv(int sig)
{
    (void)sig;
    siglongjmp(guard_jmp, 1);
}

/* Touches p; whether it faulted. Our own handler rather than a fatal
 * signal, because the sanitizers turn a SIGSEGV into their own exit. */
static bool faults(volatile uint8_t *p, bool write)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = guard_segv;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old);
    bool faulted = true;
    if (sigsetjmp(guard_jmp, 1) == 0) {
        if (write)
            *p = 1;
        else
            (void)*p;
        faulted = false;
    }
    sigaction(SIGSEGV, &old, NULL);
    return faulted;
}

START_TEST(guarded_buffer_faults_outside)
{
    /* The guard pages and the read-only retirement are what make a stray
     * or late access visible. */
    uint8_t *b = tu_guarded_alloc(BLK);
    ck_assert(!faults(b, true));
    ck_assert(!faults(b + BLK - 1, true));
    if (!tu_running_on_valgrind()) { /* valgrind reports the deliberate fault as an error */
        ck_assert(faults(b + BLK, false));
        ck_assert(faults(b - 1, false));
    }
    buf_retire(b);
    ck_assert(faults(b, true));
    ck_assert(!faults(b, false));
    ck_assert(buf_poisoned(b));
    ck_assert(buf_reclaim(b));
    ck_assert(!faults(b + 17, true));
    ck_assert(!buf_poisoned(b));
    tu_guarded_free(b, BLK);
}
END_TEST

static Suite *stress_suite(bool root)
{
    Suite *s = suite_create("stress");
    TCase *tc = tu_tcase(s, "helpers", 10);
    tcase_add_test(tc, crc32c_known_answers);
    tcase_add_test(tc, guarded_buffer_faults_outside);
    if (root) {
        unsigned long ops = stress_ops();
        tc = tu_tcase(s, "exactly_once", 120 + (int)(ops / 500));
        tcase_add_loop_test(tc, stress_exactly_once, 0, TU_BACKENDS + 1); /* and NBD */
    }
    return s;
}

int main(void)
{
    return tu_main_root(stress_suite(tu_root()), "test_stress", "the stress test on a loop device was skipped");
}
