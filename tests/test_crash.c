/* Crash safety: a child process writes to a loop device through uwdf and is
 * killed with SIGKILL at a random moment; the parent then checks that every
 * write the child saw complete (mode write_through: a target opened
 * FILE_WRITE_THROUGH | FILE_NO_INTERMEDIATE_BUFFERING, i.e. O_DSYNC|O_DIRECT)
 * or saw complete and covered by a completed IRP_MJ_FLUSH_BUFFERS (mode
 * flush: plain buffered writes, a flush after every FLUSH_EVERY completions)
 * is on the device intact, read through a fresh O_DIRECT descriptor.
 *
 * Only the child initialises uwdf (fork without exec; the parent never
 * creates a framework object, so no framework thread is forked). Each block
 * carries the round id, a sequence number, its block number and a CRC32C of
 * the whole block. The child reports through a pipe: one 16-byte record per
 * write completion, flush sent and flush completion (a write of at most
 * PIPE_BUF bytes is atomic, so a kill never leaves half a record).
 *
 * Queue slot k of QD writes blocks k, k + QD, k + 2 QD, ... (wrapping over
 * the device) one at a time and sends its next write only after it reported
 * the previous one, so after the kill block b holds the reported write with
 * the highest sequence number or a later write of the same slot (in flight or
 * completed but unreported), never an older one.
 *
 * SIGKILL is not power loss: the page cache and the loop device outlive the
 * process. docs/testing.md "Crash safety" says what this does and does not prove.
 *
 * UWDF_CRASH_ROUNDS=N sets the rounds per mode and engine (default 10; `make
 * soak-crash` runs 50); UWDF_CRASH_SEED=S repeats a run's kill delays. Needs
 * root (losetup): otherwise the program exits 77. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096
#define DEV_BLOCKS 2048u /* an 8 MiB loop device */
#define DEV_SIZE ((size_t)DEV_BLOCKS * BLK)
#define QD 8u            /* divides DEV_BLOCKS: a block always belongs to one slot */
#define FLUSH_EVERY 16u  /* flush mode: one flush per this many write completions */
#define DEFAULT_ROUNDS 10
#define MAX_KILL_DELAY_MS 120
#define READY_TIMEOUT_MS 60000 /* the child's uwdf set-up (slow under valgrind) */
#define DRAIN_TIMEOUT_MS 20000
#define MAX_REPORTED_BAD 5
#define BLOCK_MAGIC 0x55574346u /* "UWCF" */
#define CHILD_FAILED 3

enum crash_mode { MODE_WRITE_THROUGH, MODE_FLUSH };
static const char *const mode_names[] = { "write-through", "write+flush" };

/* ---- child -> parent records ---- */

enum rec_kind { REC_READY = 1, REC_WRITE_DONE, REC_FLUSH_SENT, REC_FLUSH_DONE, REC_ERROR };

struct rec {
    uint32_t kind;
    int32_t status;
    uint64_t value; /* write: sequence number; flush: flush id */
};
_Static_assert(sizeof(struct rec) <= PIPE_BUF, "records must be atomic pipe writes");

/* ---- block layout ---- */

struct block_hdr {
    uint32_t magic;
    uint32_t round;
    uint64_t seq;
    uint64_t block;
    uint32_t crc; /* CRC32C of the whole block with this field zero */
    uint32_t pad;
};

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u))); /* Castagnoli, reflected */
        crc_table[i] = c;
    }
}

static uint32_t crc32c(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = 0xFFFFFFFFu;
    while (len--)
        c = crc_table[(c ^ *p++) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint64_t block_of(uint64_t seq)
{
    return seq % DEV_BLOCKS;
}

/* The block written with sequence number seq in round: header + payload
 * derived from (round, seq), sealed by the CRC. */
static void block_fill(void *buf, uint32_t round, uint64_t seq)
{
    struct block_hdr *h = buf;
    uint64_t x = ((uint64_t)round << 40) ^ seq ^ 0x9E3779B97F4A7C15ull;
    uint64_t *w = buf;
    for (size_t i = sizeof(*h) / 8; i < BLK / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x;
    }
    h->magic = BLOCK_MAGIC;
    h->round = round;
    h->seq = seq;
    h->block = block_of(seq);
    h->crc = 0;
    h->pad = 0;
    h->crc = crc32c(buf, BLK);
}

/* Whether buf is an intact block of round written as block b; *seq gets its
 * sequence number. */
static bool block_intact(const unsigned char *buf, uint32_t round, uint64_t b, uint64_t *seq)
{
    struct block_hdr h;
    unsigned char copy[BLK];
    memcpy(&h, buf, sizeof(h));
    if (h.magic != BLOCK_MAGIC || h.round != round || h.block != b || block_of(h.seq) != b)
        return false;
    memcpy(copy, buf, BLK);
    ((struct block_hdr *)copy)->crc = 0;
    *seq = h.seq;
    return crc32c(copy, BLK) == h.crc;
}

/* ---- the child: uwdf, one target, QD write slots (and a flush request) ---- */

struct slot {
    struct writer *w;
    WDFREQUEST req;
    WDFMEMORY mem;
    void *buf;
    uint64_t seq;
};

struct writer {
    int pipe_fd;
    uint32_t round;
    enum crash_mode mode;
    WDFIOTARGET target;
    struct slot slots[QD];
    WDFREQUEST flush;
    bool flush_busy;        /* engine thread only */
    unsigned since_flush;   /* engine thread only */
    uint64_t flush_id;
};

/* A child that cannot report any more has nothing left to do. */
static void child_report(struct writer *w, uint32_t kind, NTSTATUS status, uint64_t value)
{
    struct rec r = { kind, status, value };
    if (write(w->pipe_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(CHILD_FAILED);
}

static EVT_WDF_REQUEST_COMPLETION_ROUTINE write_done;
static EVT_WDF_REQUEST_COMPLETION_ROUTINE flush_done;

static bool slot_send(struct slot *s)
{
    WDF_REQUEST_REUSE_PARAMS reuse;
    LONGLONG offset = (LONGLONG)(block_of(s->seq) * BLK);
    block_fill(s->buf, s->w->round, s->seq);
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    NTSTATUS st = WdfRequestReuse(s->req, &reuse);
    if (NT_SUCCESS(st))
        st = WdfIoTargetFormatRequestForWrite(s->w->target, s->req, s->mem, NULL, &offset);
    if (!NT_SUCCESS(st)) {
        child_report(s->w, REC_ERROR, st, s->seq);
        return false;
    }
    WdfRequestSetCompletionRoutine(s->req, write_done, s);
    if (!WdfRequestSend(s->req, s->w->target, WDF_NO_SEND_OPTIONS)) {
        child_report(s->w, REC_ERROR, WdfRequestGetStatus(s->req), s->seq);
        return false;
    }
    return true;
}

/* Flush mode: the flush covers every write reported before REC_FLUSH_SENT
 * (all reports come from this one engine thread, in order). */
static void flush_send(struct writer *w)
{
    WDF_REQUEST_REUSE_PARAMS reuse;
    IO_STACK_LOCATION stack;
    w->flush_busy = true;
    w->since_flush = 0;
    w->flush_id++;
    child_report(w, REC_FLUSH_SENT, STATUS_SUCCESS, w->flush_id);
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    NTSTATUS st = WdfRequestReuse(w->flush, &reuse);
    if (!NT_SUCCESS(st)) {
        child_report(w, REC_ERROR, st, w->flush_id);
        return;
    }
    memset(&stack, 0, sizeof(stack));
    stack.MajorFunction = IRP_MJ_FLUSH_BUFFERS; /* MinorFunction 0: fsync(2) */
    WdfRequestWdmFormatUsingStackLocation(w->flush, &stack);
    WdfRequestSetCompletionRoutine(w->flush, flush_done, w);
    if (!WdfRequestSend(w->flush, w->target, WDF_NO_SEND_OPTIONS))
        child_report(w, REC_ERROR, WdfRequestGetStatus(w->flush), w->flush_id);
}

static VOID write_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                       WDFCONTEXT Context)
{
    struct slot *s = Context;
    struct writer *w = s->w;
    NTSTATUS st = Params->IoStatus.Status;
    if (NT_SUCCESS(st) && Params->IoStatus.Information != BLK)
        st = STATUS_UNSUCCESSFUL; /* a short write is not the whole block */
    child_report(w, REC_WRITE_DONE, st, s->seq);
    if (!NT_SUCCESS(st))
        return;
    if (w->mode == MODE_FLUSH && ++w->since_flush >= FLUSH_EVERY && !w->flush_busy)
        flush_send(w);
    s->seq += QD;
    slot_send(s);
}

static VOID flush_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                       WDFCONTEXT Context)
{
    struct writer *w = Context;
    child_report(w, REC_FLUSH_DONE, Params->IoStatus.Status, w->flush_id);
    w->flush_busy = false;
}

static void child_fail(struct writer *w, NTSTATUS st)
{
    child_report(w, REC_ERROR, st, 0);
    _exit(CHILD_FAILED);
}

/* Runs in the forked child; never returns (it writes until killed). */
static void child_run(int pipe_fd, const char *dev, enum crash_mode mode, uint32_t round)
{
    static struct writer w; /* lives until the kill */
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver;
    WDFDEVICE device;
    NTSTATUS st;

    w.pipe_fd = pipe_fd;
    w.mode = mode;
    w.round = round;
    /* The parent's fixture captures bug checks; here one must end the
     * writer (print and abort), which the parent reports as a failure. */
    UwdfSetBugCheckCallback(NULL, NULL);
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    st = WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, &driver);
    if (!NT_SUCCESS(st))
        child_fail(&w, st);
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init)
        child_fail(&w, STATUS_INSUFFICIENT_RESOURCES);
    st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device);
    if (!NT_SUCCESS(st))
        child_fail(&w, st);
    WdfControlFinishInitializing(device);

    ULONG options = mode == MODE_WRITE_THROUGH ? FILE_WRITE_THROUGH | FILE_NO_INTERMEDIATE_BUFFERING : 0;
    st = tu_target_open(device, dev, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, options, &w.target);
    if (!NT_SUCCESS(st))
        child_fail(&w, st);
    for (unsigned k = 0; k < QD; k++) {
        struct slot *s = &w.slots[k];
        s->w = &w;
        s->seq = k;
        st = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, BLK, &s->mem, &s->buf);
        if (NT_SUCCESS(st))
            st = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, w.target, &s->req);
        if (!NT_SUCCESS(st))
            child_fail(&w, st);
    }
    st = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, w.target, &w.flush);
    if (!NT_SUCCESS(st))
        child_fail(&w, st);

    child_report(&w, REC_READY, STATUS_SUCCESS, 0);
    for (unsigned k = 0; k < QD; k++)
        if (!slot_send(&w.slots[k]))
            _exit(CHILD_FAILED);
    for (;;)
        pause();
}

/* ---- the parent ---- */

struct records {
    struct rec *v;
    size_t n, cap;
    unsigned char part[sizeof(struct rec)]; /* bytes of a record not yet complete */
    size_t npart;
};

static void records_add_bytes(struct records *r, const unsigned char *p, size_t len)
{
    while (len) {
        size_t take = sizeof(struct rec) - r->npart;
        if (take > len)
            take = len;
        memcpy(r->part + r->npart, p, take);
        r->npart += take;
        p += take;
        len -= take;
        if (r->npart < sizeof(struct rec))
            break;
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 4096;
            r->v = realloc(r->v, r->cap * sizeof(*r->v));
            ck_assert_ptr_nonnull(r->v);
        }
        memcpy(&r->v[r->n++], r->part, sizeof(struct rec));
        r->npart = 0;
    }
}

/* Reads what the pipe holds until ms have passed (ms < 0: until end of
 * file). Returns false at end of file. */
static bool records_read(struct records *r, int fd, int ms)
{
    double end = tu_now_ms() + ms;
    unsigned char buf[64 * 1024];
    for (;;) {
        int left = ms < 0 ? DRAIN_TIMEOUT_MS : (int)(end - tu_now_ms());
        if (ms >= 0 && left <= 0)
            return true;
        struct pollfd pfd = { fd, POLLIN, 0 };
        int n = poll(&pfd, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_int_ge(n, 0);
        if (n == 0) {
            ck_assert_msg(ms >= 0, "the pipe stayed open %d ms after the child was gone", DRAIN_TIMEOUT_MS);
            return true;
        }
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        ck_assert_int_ge(got, 0);
        if (got == 0)
            return false;
        records_add_bytes(r, buf, (size_t)got);
    }
}

static bool records_has_ready(const struct records *r)
{
    return r->n > 0 && r->v[0].kind == REC_READY;
}

/* The killed process's I/O can still be finishing in the kernel (io_uring
 * tears its ring down asynchronously); a read racing it could see a block
 * half written. Wait until the loop device has no request in flight. */
static void wait_device_idle(const char *dev)
{
    char path[256];
    snprintf(path, sizeof(path), "/sys/block/%s/inflight", strrchr(dev, '/') + 1);
    double end = tu_now_ms() + DRAIN_TIMEOUT_MS;
    int idle_samples = 0;
    while (idle_samples < 2) {
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        unsigned long rd = 1, wr = 1;
        ck_assert_int_eq(fscanf(f, "%lu %lu", &rd, &wr), 2);
        fclose(f);
        idle_samples = rd == 0 && wr == 0 ? idle_samples + 1 : 0;
        ck_assert_msg(tu_now_ms() < end, "%s still has I/O in flight after %d ms", dev, DRAIN_TIMEOUT_MS);
        tu_sleep_ms(1);
    }
}

/* What a round must find: for each block, the lowest sequence number it may
 * hold (-1: nothing required) and the highest one reported for it. */
struct expect {
    int64_t need[DEV_BLOCKS];
    int64_t seen[DEV_BLOCKS];
    unsigned long writes_reported, writes_required, flushes_done;
};

static void expect_from_records(struct expect *x, const struct records *r, enum crash_mode mode)
{
    size_t writes = 0, covered = 0, sent_prefix = 0;
    uint64_t sent_id = 0;
    for (size_t b = 0; b < DEV_BLOCKS; b++)
        x->need[b] = x->seen[b] = -1;
    x->writes_reported = x->writes_required = x->flushes_done = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct rec *c = &r->v[i];
        switch (c->kind) {
        case REC_READY:
            break;
        case REC_WRITE_DONE:
            ck_assert_status_msg(c->status, STATUS_SUCCESS, "write %" PRIu64, c->value);
            writes++;
            break;
        case REC_FLUSH_SENT:
            sent_id = c->value;
            sent_prefix = writes;
            break;
        case REC_FLUSH_DONE:
            ck_assert_status_msg(c->status, STATUS_SUCCESS, "flush %" PRIu64, c->value);
            ck_assert_uint_eq(c->value, sent_id);
            covered = sent_prefix;
            x->flushes_done++;
            break;
        case REC_ERROR:
            ck_abort_msg("child reported an error: " TU_STATUS_FMT " (value %" PRIu64 ")", TU_STATUS_ARG(c->status),
                         c->value);
            break;
        default:
            ck_abort_msg("unknown record kind %u", c->kind);
        }
    }
    size_t required = mode == MODE_WRITE_THROUGH ? writes : covered;
    size_t w = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct rec *c = &r->v[i];
        if (c->kind != REC_WRITE_DONE)
            continue;
        uint64_t b = block_of(c->value);
        if ((int64_t)c->value > x->seen[b])
            x->seen[b] = (int64_t)c->value;
        if (w < required && (int64_t)c->value > x->need[b])
            x->need[b] = (int64_t)c->value;
        w++;
    }
    x->writes_reported = writes;
    x->writes_required = required;
}

/* Reads the whole of path through a new O_DIRECT descriptor and checks every
 * block x requires. Returns the number of bad blocks (the first few are
 * printed). */
static unsigned verify_path(const char *path, const struct expect *x, uint32_t round, const char *what)
{
    unsigned char *buf;
    unsigned bad = 0;
    ck_assert_int_eq(posix_memalign((void **)&buf, BLK, DEV_SIZE), 0);
    int fd = open(path, O_RDONLY | O_DIRECT);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    for (size_t done = 0; done < DEV_SIZE;) {
        ssize_t n = pread(fd, buf + done, DEV_SIZE - done, (off_t)done);
        ck_assert_msg(n > 0, "read %s: %s", path, n < 0 ? strerror(errno) : "end of file");
        done += (size_t)n;
    }
    close(fd);
    for (uint64_t b = 0; b < DEV_BLOCKS; b++) {
        if (x->need[b] < 0)
            continue;
        uint64_t seq = 0;
        bool ok = block_intact(buf + b * BLK, round, b, &seq);
        /* At most one write past the highest reported one can have reached
         * the block (the slot's next, sent after that report). */
        ok = ok && (int64_t)seq >= x->need[b] && (int64_t)seq <= x->seen[b] + (int64_t)DEV_BLOCKS;
        if (!ok && ++bad <= MAX_REPORTED_BAD) {
            const struct block_hdr *h = (const void *)(buf + b * BLK);
            fprintf(stderr,
                    "test_crash: %s round %u block %" PRIu64 ": need seq >= %" PRId64 " (highest reported %" PRId64
                    "), found magic %08x round %u seq %" PRIu64 " block %" PRIu64 "%s\n",
                    what, round, b, x->need[b], x->seen[b], h->magic, h->round, h->seq, h->block,
                    h->magic == BLOCK_MAGIC && h->round == round ? " (CRC or range wrong)" : "");
        }
    }
    free(buf);
    return bad;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

static unsigned crash_seed;

/* One round: fork the writer, kill it after a random delay once it is
 * ready, wait for it and the device, then check the device. */
static void crash_round(const char *dev, enum crash_mode mode, uint32_t round, unsigned *rng, struct expect *x,
                        struct records *r)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        child_run(p[1], dev, mode, round);
        _exit(CHILD_FAILED);
    }
    close(p[1]);
    r->n = r->npart = 0;
    double ready_by = tu_now_ms() + READY_TIMEOUT_MS;
    bool alive = true;
    while (alive && !records_has_ready(r) && tu_now_ms() < ready_by)
        alive = records_read(r, p[0], 10);
    int delay = (int)(rand_r(rng) % (MAX_KILL_DELAY_MS + 1));
    if (alive && records_has_ready(r))
        records_read(r, p[0], delay);
    kill(pid, SIGKILL);
    int wst = 0;
    ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
    records_read(r, p[0], -1);
    close(p[0]);
    ck_assert_msg(records_has_ready(r), "round %u: the child never got ready", round);
    ck_assert_msg(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL,
                  "round %u: the child ended on its own (status 0x%x) before the kill", round, wst);
    ck_assert_uint_eq(r->npart, 0);
    wait_device_idle(dev);
    expect_from_records(x, r, mode);
}

static void crash_run(enum crash_mode mode, int engine)
{
    int rounds = env_int("UWDF_CRASH_ROUNDS", DEFAULT_ROUNDS);
    unsigned rng = crash_seed ^ (unsigned)(mode * 2 + engine) * 0x9E3779B9u;
    uint32_t round_base = (uint32_t)rand_r(&rng) << 8; /* round ids differ between runs */
    struct expect *x = malloc(sizeof(*x));
    struct records r = { 0 };
    unsigned long reported = 0, required = 0, flushes = 0, checked_blocks = 0;
    ck_assert_ptr_nonnull(x);

    tu_use_backend(engine);
    char *dir = tu_tmpdir();
    char *file = tu_make_file(dir, "crash.img", DEV_SIZE, 0);
    char *dev = tu_loop_attach(file, true, 0);
    ck_assert_msg(dev != NULL, "losetup failed for %s", file);

    uint32_t round = 0;
    unsigned bad = 0;
    for (int i = 0; i < rounds; i++) {
        round = round_base + (uint32_t)i + 1;
        crash_round(dev, mode, round, &rng, x, &r);
        bad += verify_path(dev, x, round, "loop device");
        reported += x->writes_reported;
        required += x->writes_required;
        flushes += x->flushes_done;
        for (size_t b = 0; b < DEV_BLOCKS; b++)
            checked_blocks += x->need[b] >= 0;
    }
    /* The last round once more, in the backing file after the loop device is
     * gone (losetup -d writes back whatever the device still cached). */
    tu_loop_detach(dev);
    if (rounds > 0)
        bad += verify_path(file, x, round, "backing file");

    fprintf(stderr,
            "test_crash: %s %s seed %u: %d rounds, %lu write completions reported, %lu required "
            "on the device, %lu flushes completed, %lu block checks, %u bad\n",
            tu_backend_names[engine], mode_names[mode], crash_seed, rounds, reported, required, flushes,
            checked_blocks, bad);
    ck_assert_msg(bad == 0, "%u reported writes were not on the device intact (seed %u)", bad, crash_seed);
    free(r.v);
    free(x);
    free(dev);
    free(file);
    tu_rmtree(dir);
    free(dir);
}

START_TEST(write_through_completions_survive_sigkill)
{
    crash_run(MODE_WRITE_THROUGH, _i);
}
END_TEST

START_TEST(flushed_writes_survive_sigkill)
{
    crash_run(MODE_FLUSH, _i);
}
END_TEST

/* The checker itself: a block from another round, another block, with a
 * flipped byte, or older than required is refused. */
START_TEST(checker_refuses_stale_torn_and_misplaced_blocks)
{
    unsigned char buf[BLK];
    uint64_t seq = 0;
    block_fill(buf, 7, 5 + DEV_BLOCKS);
    ck_assert(block_intact(buf, 7, 5, &seq));
    ck_assert_uint_eq(seq, 5 + DEV_BLOCKS);
    ck_assert(!block_intact(buf, 8, 5, &seq));
    ck_assert(!block_intact(buf, 7, 6, &seq));
    buf[BLK - 1] ^= 1;
    ck_assert(!block_intact(buf, 7, 5, &seq));

    struct records r = { 0 };
    struct rec recs[] = { { REC_READY, 0, 0 },         { REC_WRITE_DONE, 0, 3 }, { REC_FLUSH_SENT, 0, 1 },
                          { REC_WRITE_DONE, 0, 11 },   { REC_FLUSH_DONE, 0, 1 }, { REC_WRITE_DONE, 0, 19 } };
    records_add_bytes(&r, (const unsigned char *)recs, sizeof(recs));
    ck_assert_uint_eq(r.n, 6);
    struct expect *x = malloc(sizeof(*x));
    ck_assert_ptr_nonnull(x);
    expect_from_records(x, &r, MODE_FLUSH);
    ck_assert_int_eq(x->need[3], 3); /* before the flush was sent: covered */
    ck_assert_int_eq(x->need[11], -1); /* completed after it: not covered */
    ck_assert_int_eq(x->seen[19], 19);
    expect_from_records(x, &r, MODE_WRITE_THROUGH);
    ck_assert_int_eq(x->need[11], 11);
    ck_assert_uint_eq(x->writes_required, 3);
    free(x);
    free(r.v);
}
END_TEST

static Suite *crash_suite(void)
{
    Suite *s = suite_create("crash");
    int rounds = env_int("UWDF_CRASH_ROUNDS", DEFAULT_ROUNDS);
    /* About 0.2 s per round; generous for valgrind and a busy machine. */
    int timeout = 60 + rounds * 6;
    TCase *tc = tu_tcase(s, "checker", 10);
    tcase_add_test(tc, checker_refuses_stale_torn_and_misplaced_blocks);
    tc = tu_tcase(s, "sigkill", timeout);
    tcase_add_loop_test(tc, write_through_completions_survive_sigkill, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, flushed_writes_survive_sigkill, 0, TU_BACKENDS);
    return s;
}

int main(void)
{
    if (!tu_root()) {
        fprintf(stderr, "test_crash: not root (losetup needed), skipped\n");
        return TU_EXIT_SKIP;
    }
    crc_init();
    crash_seed = (unsigned)env_int("UWDF_CRASH_SEED", (int)(time(NULL) & 0x7fffffff));
    fprintf(stderr, "test_crash: seed %u (UWDF_CRASH_SEED to repeat), %d rounds per mode and engine\n", crash_seed,
            env_int("UWDF_CRASH_ROUNDS", DEFAULT_ROUNDS));
    return tu_main(crash_suite(), "test_crash");
}
