/* Drives the three backend ops tables directly, as lib/engine.c would: one
 * thread opens, queues, flushes, cancels, reaps and closes; only wake() is
 * called from other threads. Files live in a fresh temp dir on a file
 * system that takes O_DIRECT (chosen at run time). */
#include "backend.h"
#include "io_uring.h"
#include "tu_seccomp.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024
#define PATTERN_SIZE (64 * KIB)
#define BLOCK 4096             /* O_DIRECT alignment used for offsets, lengths, buffers */
#define TEST_IOV_MAX 16
#define REAP_BATCH 64
#define ENGINE_DEPTH 64
#define NS_PER_MS 1000000LL
#define NS_PER_SEC 1000000000LL
#define REAP_SLICE_NS (100 * NS_PER_MS)
#define REAP_BUDGET_NS (10 * NS_PER_SEC) /* generous: valgrind is slow */
#define WAKE_DELAY_NS (100 * NS_PER_MS)
#define WAKE_LIMIT_NS (1 * NS_PER_SEC)
#define IDLE_REAP_NS (200 * NS_PER_MS)
#define LINK_TIMEOUT_NS (200 * NS_PER_MS)
#define LINK_TIMEOUT_MIN_NS (150 * NS_PER_MS)
#define LINK_TIMEOUT_MAX_NS (1000 * NS_PER_MS)
#define LONG_TIMEOUT_SEC 5
#define MANY_OPS 1000
#define SMALL_IO 512
#define SMALL_FILE_SIZE (1024 * KIB)
#define LINKED_OPS 300
#define BACKLOG_EXTRA 8
#define REAP_MAX_SMALL 3
#define REAP_MAX_OPS 10
#define STORM_THREADS 4
#define STORM_WAKES 1000
#define FIFO_BUF 64
#define FIFO_FILL 0xA5
#define FIFO_SETTLE_NS (50 * NS_PER_MS)
#define TCASE_TIMEOUT_SEC 60
#define RING_ROUNDS 100 /* of RING_OPS: the ring's head wraps several times */
#define RING_OPS 8

enum { BE_IO_URING, BE_LIBAIO, BE_NULL, BE_COUNT, BE_KERNEL_COUNT = BE_NULL };

static const struct uwdf_backend_ops *const test_backends[BE_COUNT] = {
    [BE_IO_URING] = &uwdf_backend_io_uring,
    [BE_LIBAIO] = &uwdf_backend_libaio,
    [BE_NULL] = &uwdf_backend_null,
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct tio {
    struct uwdf_io io;
    struct iovec iov[TEST_IOV_MAX];
    int reaped;
};

static char test_dir[PATH_MAX];
static int test_odirect; /* O_DIRECT, or 0 if no candidate fs takes it */

/* ---- helpers ---------------------------------------------------------- */

/* The engines alone, without the framework: its log is stderr here. */
void uwdf_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("uwdf: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Without the core no engine notes hand-over times: nothing to do. */
void uwdf_engine_handover_now(struct uwdf_engine *e)
{
    (void)e;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = { ns / NS_PER_SEC, ns % NS_PER_SEC };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void test_path(char *out, size_t outsz, const char *name)
{
    int n = snprintf(out, outsz, "%s/%s", test_dir, name);
    ck_assert(n > 0 && (size_t)n < outsz);
}

static bool try_test_dir(const char *base)
{
    char probe[PATH_MAX];
    int n = snprintf(test_dir, sizeof(test_dir), "%s/uwdf-backends-XXXXXX", base);
    if (n <= 0 || (size_t)n >= sizeof(test_dir) || !mkdtemp(test_dir))
        return false;
    test_path(probe, sizeof(probe), "odirect-probe");
    int fd = open(probe, O_CREAT | O_RDWR | O_DIRECT, 0600);
    if (fd >= 0)
        close(fd);
    unlink(probe);
    if (fd >= 0)
        return true;
    rmdir(test_dir);
    return false;
}

/* tmpfs (often /tmp) may refuse O_DIRECT: take the first candidate that
 * accepts it, else fall back to buffered I/O in /tmp. */
static void setup_dir(void)
{
    const char *cands[] = { getenv("TMPDIR"), "/tmp", "/var/tmp", "." };
    test_odirect = O_DIRECT;
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
        if (cands[i] && *cands[i] && try_test_dir(cands[i]))
            return;
    test_odirect = 0;
    int n = snprintf(test_dir, sizeof(test_dir), "/tmp/uwdf-backends-XXXXXX");
    ck_assert(n > 0 && mkdtemp(test_dir));
}

static void teardown_dir(void)
{
    DIR *d = opendir(test_dir);
    if (d) {
        struct dirent *de;
        char p[PATH_MAX];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if ((size_t)snprintf(p, sizeof(p), "%s/%s", test_dir, de->d_name) < sizeof(p))
                unlink(p);
        }
        closedir(d);
    }
    rmdir(test_dir);
}

static int open_file(const char *name, int extra_flags)
{
    char p[PATH_MAX];
    test_path(p, sizeof(p), name);
    int fd = open(p, O_CREAT | O_RDWR | extra_flags, 0600);
    ck_assert_msg(fd >= 0, "open %s: %s", p, strerror(errno));
    return fd;
}

static void *aligned_buf(size_t len, int fill)
{
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, BLOCK, len), 0);
    memset(p, fill, len);
    return p;
}

static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 7 + seed * 13 + (i >> 8)) & 0xff);
}

static void eng_open(struct uwdf_engine *e, int be, unsigned depth)
{
    memset(e, 0, sizeof(*e));
    e->depth = depth;
    e->ops = test_backends[be];
    int r = e->ops->open(e);
    ck_assert_msg(r == 0, "%s open: %s", e->ops->name, strerror(-r));
    ck_assert_ptr_nonnull(e->be);
}

static void eng_close(struct uwdf_engine *e)
{
    e->ops->close(e);
    ck_assert_ptr_null(e->be);
}

static bool no_kernel(const struct uwdf_engine *e)
{
    return (e->ops->caps & UWDF_BE_CAP_NO_KERNEL) != 0;
}

static void tio_init(struct tio *t, enum uwdf_io_op op, int fd, uint64_t offset)
{
    memset(t, 0, sizeof(*t));
    t->io.op = (uint8_t)op;
    t->io.fd = fd;
    t->io.offset = offset;
    t->io.iov = t->iov;
}

static void tio_add(struct tio *t, void *base, size_t len)
{
    ck_assert_int_lt(t->io.iovcnt, TEST_IOV_MAX);
    t->iov[t->io.iovcnt].iov_base = base;
    t->iov[t->io.iovcnt].iov_len = len;
    t->io.iovcnt++;
}

static void eng_queue(struct uwdf_engine *e, struct tio *t, bool defer)
{
    int r = e->ops->queue(e, &t->io, defer);
    ck_assert_msg(r == 0, "%s queue: %s", e->ops->name, strerror(-r));
}

/* Reap until `want` ops came back; every op bumps its own counter, so a
 * duplicate shows up as reaped == 2. */
static void reap_n(struct uwdf_engine *e, int want)
{
    struct uwdf_io *done[REAP_BATCH];
    int64_t deadline = now_ns() + REAP_BUDGET_NS;
    int got = 0;

    while (got < want) {
        int r = e->ops->reap(e, done, REAP_BATCH, REAP_SLICE_NS);
        ck_assert_msg(r >= 0, "%s reap: %s", e->ops->name, strerror(-r));
        for (int i = 0; i < r; i++)
            container_of(done[i], struct tio, io)->reaped++;
        got += r;
        ck_assert_msg(got <= want, "%s: %d ops reaped, %d queued", e->ops->name, got, want);
        ck_assert_msg(now_ns() < deadline, "%s: only %d of %d ops came back",
                      e->ops->name, got, want);
    }
}

static void assert_idle(struct uwdf_engine *e)
{
    struct uwdf_io *done[REAP_BATCH];
    ck_assert_int_eq(e->ops->reap(e, done, REAP_BATCH, 0), 0);
}

static int64_t run_one(struct uwdf_engine *e, struct tio *t)
{
    eng_queue(e, t, false);
    reap_n(e, 1);
    ck_assert_int_eq(t->reaped, 1);
    return t->io.res;
}

/* n one-block ops (op on block i of fd, through block i of buf), each
 * sent at once and all reaped: every one comes back once, whole. */
static void run_blocks(struct uwdf_engine *e, struct tio *t, int n, enum uwdf_io_op op, int fd, uint8_t *buf)
{
    for (int i = 0; i < n; i++) {
        tio_init(&t[i], op, fd, (uint64_t)i * BLOCK);
        tio_add(&t[i], buf + (size_t)i * BLOCK, BLOCK);
        eng_queue(e, &t[i], false);
    }
    reap_n(e, n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(t[i].reaped, 1);
        ck_assert_int_eq(t[i].io.res, BLOCK);
    }
}

/* ---- all backends ----------------------------------------------------- */

START_TEST(test_probe_succeeds)
{
    const struct uwdf_backend_ops *ops = test_backends[_i];
    int r = ops->probe();
    ck_assert_msg(r == 0, "%s probe: %s", ops->name, strerror(-r));
}
END_TEST

START_TEST(test_open_close)
{
    struct uwdf_engine e;
    eng_open(&e, _i, ENGINE_DEPTH);
    if (_i == BE_IO_URING) {
        const char *desc = uwdf_io_uring_setup_flags_desc(&e);
        ck_assert_ptr_nonnull(desc);
        printf("io_uring setup flags accepted: %s\n", desc);
        fflush(stdout);
    }
    eng_close(&e);
}
END_TEST

/* Write a 64 KiB pattern, read it back; split decides the iovec layout. */
static void write_read_pattern(int be, const size_t *split, int nsplit, uint64_t off)
{
    struct uwdf_engine e;
    struct tio t;
    uint8_t *wbuf = aligned_buf(PATTERN_SIZE, 0);
    uint8_t *rbuf = aligned_buf(PATTERN_SIZE, 0);
    int fd = open_file("pattern", test_odirect);

    fill_pattern(wbuf, PATTERN_SIZE, (unsigned)off);
    eng_open(&e, be, ENGINE_DEPTH);

    tio_init(&t, UWDF_OP_WRITE, fd, off);
    for (size_t at = 0, i = 0; at < PATTERN_SIZE; at += split[i], i = (i + 1) % (size_t)nsplit)
        tio_add(&t, wbuf + at, split[i]);
    ck_assert_int_eq(run_one(&e, &t), PATTERN_SIZE);

    /* Read back with the iovec order reversed so boundaries differ. */
    tio_init(&t, UWDF_OP_READ, fd, off);
    for (size_t at = 0, i = (size_t)nsplit - 1; at < PATTERN_SIZE;
         at += split[i], i = (i + (size_t)nsplit - 1) % (size_t)nsplit)
        tio_add(&t, rbuf + at, split[i]);
    ck_assert_int_eq(run_one(&e, &t), PATTERN_SIZE);

    if (no_kernel(&e)) {
        for (size_t i = 0; i < PATTERN_SIZE; i++)
            ck_assert_int_eq(rbuf[i], 0); /* null never touches buffers */
    } else {
        ck_assert(memcmp(wbuf, rbuf, PATTERN_SIZE) == 0);
    }
    assert_idle(&e);
    eng_close(&e);
    close(fd);
    free(wbuf);
    free(rbuf);
}

START_TEST(test_write_read_single_iovec)
{
    const size_t split[] = { PATTERN_SIZE };
    write_read_pattern(_i, split, 1, 0);
}
END_TEST

START_TEST(test_write_read_multi_iovec)
{
    const size_t split[] = { BLOCK, 2 * BLOCK, BLOCK, 4 * BLOCK };
    write_read_pattern(_i, split, sizeof(split) / sizeof(split[0]), PATTERN_SIZE);
}
END_TEST

START_TEST(test_deferred_many_ops_reaped_once)
{
    struct uwdf_engine e;
    struct tio *t = calloc(MANY_OPS, sizeof(*t));
    uint8_t *file = malloc(SMALL_FILE_SIZE);
    uint8_t *bufs = calloc(MANY_OPS, SMALL_IO);
    int fd = open_file("many", 0);

    ck_assert(t && file && bufs);
    fill_pattern(file, SMALL_FILE_SIZE, 1);
    ck_assert_int_eq(pwrite(fd, file, SMALL_FILE_SIZE, 0), SMALL_FILE_SIZE);

    eng_open(&e, _i, ENGINE_DEPTH);
    for (int i = 0; i < MANY_OPS; i++) {
        uint64_t off = (uint64_t)i * SMALL_IO % SMALL_FILE_SIZE;
        tio_init(&t[i], UWDF_OP_READ, fd, off);
        tio_add(&t[i], bufs + (size_t)i * SMALL_IO, SMALL_IO);
        eng_queue(&e, &t[i], true);
    }
    e.ops->flush(&e);
    reap_n(&e, MANY_OPS);
    for (int i = 0; i < MANY_OPS; i++) {
        ck_assert_int_eq(t[i].reaped, 1);
        ck_assert_int_eq(t[i].io.res, SMALL_IO);
        if (!no_kernel(&e))
            ck_assert(memcmp(bufs + (size_t)i * SMALL_IO, file + t[i].io.offset, SMALL_IO) == 0);
    }
    assert_idle(&e);
    eng_close(&e);
    close(fd);
    free(t);
    free(file);
    free(bufs);
}
END_TEST

START_TEST(test_fsync_fdatasync_complete)
{
    struct uwdf_engine e;
    struct tio t[2];
    int fd = open_file("sync", 0);

    ck_assert_int_eq(pwrite(fd, "data", 4, 0), 4);
    eng_open(&e, _i, ENGINE_DEPTH);
    tio_init(&t[0], UWDF_OP_FSYNC, fd, 0);
    tio_init(&t[1], UWDF_OP_FDATASYNC, fd, 0);
    eng_queue(&e, &t[0], false);
    eng_queue(&e, &t[1], false);
    reap_n(&e, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(t[i].reaped, 1);
        ck_assert_int_eq(t[i].io.res, 0);
    }
    eng_close(&e);
    close(fd);
}
END_TEST

START_TEST(test_reap_returns_at_most_max)
{
    struct uwdf_engine e;
    struct tio t[REAP_MAX_OPS];
    struct uwdf_io *done[REAP_MAX_SMALL];
    char buf[REAP_MAX_OPS][SMALL_IO];
    int fd = open_file("max", 0);
    int got = 0;
    int64_t deadline = now_ns() + REAP_BUDGET_NS;

    ck_assert_int_eq(ftruncate(fd, SMALL_IO), 0);
    eng_open(&e, _i, ENGINE_DEPTH);
    for (int i = 0; i < REAP_MAX_OPS; i++) {
        tio_init(&t[i], UWDF_OP_READ, fd, 0);
        tio_add(&t[i], buf[i], SMALL_IO);
        eng_queue(&e, &t[i], false);
    }
    while (got < REAP_MAX_OPS) {
        int r = e.ops->reap(&e, done, REAP_MAX_SMALL, REAP_SLICE_NS);
        ck_assert_int_ge(r, 0);
        ck_assert_int_le(r, REAP_MAX_SMALL);
        for (int i = 0; i < r; i++)
            container_of(done[i], struct tio, io)->reaped++;
        got += r;
        ck_assert(now_ns() < deadline);
    }
    for (int i = 0; i < REAP_MAX_OPS; i++) {
        ck_assert_int_eq(t[i].reaped, 1);
        ck_assert_int_eq(t[i].io.res, SMALL_IO);
    }
    assert_idle(&e);
    eng_close(&e);
    close(fd);
}
END_TEST

START_TEST(test_idle_reap_times_out)
{
    struct uwdf_engine e;
    struct uwdf_io *done[REAP_BATCH];

    eng_open(&e, _i, ENGINE_DEPTH);
    int64_t t0 = now_ns();
    ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, 0), 0);
    ck_assert_int_lt(now_ns() - t0, LINK_TIMEOUT_MIN_NS);

    t0 = now_ns();
    ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, IDLE_REAP_NS), 0);
    int64_t el = now_ns() - t0;
    ck_assert_msg(el >= IDLE_REAP_NS - NS_PER_MS && el < LINK_TIMEOUT_MAX_NS,
                  "%s: idle reap took %lld ns", e.ops->name, (long long)el);
    eng_close(&e);
}
END_TEST

struct waker {
    struct uwdf_engine *e;
    int64_t delay_ns;
};

static void *waker_main(void *arg)
{
    struct waker *w = arg;
    sleep_ns(w->delay_ns);
    w->e->ops->wake(w->e);
    return NULL;
}

START_TEST(test_wake_interrupts_blocked_reap)
{
    struct uwdf_engine e;
    struct uwdf_io *done[REAP_BATCH];
    struct waker w;
    pthread_t th;

    eng_open(&e, _i, ENGINE_DEPTH);
    w.e = &e;
    w.delay_ns = WAKE_DELAY_NS;
    int64_t t0 = now_ns();
    ck_assert_int_eq(pthread_create(&th, NULL, waker_main, &w), 0);
    int r = e.ops->reap(&e, done, REAP_BATCH, -1);
    int64_t el = now_ns() - t0;
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_msg(el < WAKE_LIMIT_NS, "%s: woke after %lld ns", e.ops->name, (long long)el);
    /* It really blocked until the wake (not a spurious return). */
    ck_assert_msg(el >= WAKE_DELAY_NS / 2, "%s: returned after %lld ns", e.ops->name,
                  (long long)el);
    eng_close(&e);
}
END_TEST

START_TEST(test_wake_before_reap_returns_once)
{
    struct uwdf_engine e;
    struct uwdf_io *done[REAP_BATCH];

    eng_open(&e, _i, ENGINE_DEPTH);
    e.ops->wake(&e);
    e.ops->wake(&e); /* coalesces with the first */
    int64_t t0 = now_ns();
    ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, -1), 0);
    ck_assert_int_lt(now_ns() - t0, WAKE_LIMIT_NS);

    /* The wake was consumed: the next reap waits its full timeout. */
    t0 = now_ns();
    ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, IDLE_REAP_NS), 0);
    ck_assert_int_ge(now_ns() - t0, IDLE_REAP_NS - NS_PER_MS);

    /* And a fresh wake still works after that. */
    e.ops->wake(&e);
    t0 = now_ns();
    ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, -1), 0);
    ck_assert_int_lt(now_ns() - t0, WAKE_LIMIT_NS);
    eng_close(&e);
}
END_TEST

/* Many threads hammering wake() while the engine thread keeps reaping with
 * no timeout: no wake may be lost for good (the loop would hang). Each
 * storm thread wakes once more after it counts itself finished, so the
 * reap that follows the engine thread's last "not finished" check is
 * always woken. */
struct storm {
    struct uwdf_engine *e;
    atomic_int *finished;
};

static void *storm_main(void *arg)
{
    struct storm *s = arg;
    for (int i = 0; i < STORM_WAKES; i++)
        s->e->ops->wake(s->e);
    atomic_fetch_add(s->finished, 1);
    s->e->ops->wake(s->e);
    return NULL;
}

START_TEST(test_wake_storm_never_lost)
{
    struct uwdf_engine e;
    struct uwdf_io *done[REAP_BATCH];
    struct storm st[STORM_THREADS];
    pthread_t th[STORM_THREADS];
    atomic_int finished;

    atomic_init(&finished, 0);
    eng_open(&e, _i, ENGINE_DEPTH);
    for (int i = 0; i < STORM_THREADS; i++) {
        st[i].e = &e;
        st[i].finished = &finished;
        ck_assert_int_eq(pthread_create(&th[i], NULL, storm_main, &st[i]), 0);
    }
    while (atomic_load(&finished) < STORM_THREADS) {
        /* Bounded so a lost wake fails the test instead of hanging it. */
        int64_t t0 = now_ns();
        ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, REAP_BUDGET_NS), 0);
        ck_assert_msg(now_ns() - t0 < WAKE_LIMIT_NS, "%s: wake lost", e.ops->name);
    }
    for (int i = 0; i < STORM_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);

    /* Consume whatever the storm left, then one more wake must still work. */
    ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, 0), 0);
    e.ops->wake(&e);
    int64_t t0 = now_ns();
    ck_assert_int_eq(e.ops->reap(&e, done, REAP_BATCH, -1), 0);
    ck_assert_int_lt(now_ns() - t0, WAKE_LIMIT_NS);
    eng_close(&e);
}
END_TEST

START_TEST(test_null_cancel_not_found)
{
    struct uwdf_engine e;
    struct tio t;
    char buf[SMALL_IO];

    eng_open(&e, BE_NULL, ENGINE_DEPTH);
    tio_init(&t, UWDF_OP_READ, -1, 0);
    tio_add(&t, buf, sizeof(buf));
    eng_queue(&e, &t, false);
    ck_assert_int_eq(e.ops->cancel(&e, &t.io), -ENOENT);
    reap_n(&e, 1);
    ck_assert_int_eq(t.reaped, 1);
    ck_assert_int_eq(t.io.res, SMALL_IO);
    eng_close(&e);
}
END_TEST

/* ---- kernel backends (io_uring, libaio) -------------------------------- */

START_TEST(test_read_past_eof_returns_zero)
{
    struct uwdf_engine e;
    struct tio t;
    uint8_t *buf = aligned_buf(PATTERN_SIZE, 0);
    int fd = open_file("eof", test_odirect);

    ck_assert_int_eq(ftruncate(fd, 2 * BLOCK), 0);
    eng_open(&e, _i, ENGINE_DEPTH);
    tio_init(&t, UWDF_OP_READ, fd, PATTERN_SIZE);
    tio_add(&t, buf, PATTERN_SIZE);
    ck_assert_int_eq(run_one(&e, &t), 0);
    eng_close(&e);
    close(fd);
    free(buf);
}
END_TEST

/* An op the kernel rejects comes back once with the error, and does not
 * take the op staged behind it down with it. */
START_TEST(test_bad_fd_completes_with_ebadf)
{
    struct uwdf_engine e;
    struct tio t[2];
    char buf[2][SMALL_IO];
    int fd = open_file("badfd", 0);

    ck_assert_int_eq(ftruncate(fd, SMALL_IO), 0);
    eng_open(&e, _i, ENGINE_DEPTH);
    tio_init(&t[0], UWDF_OP_READ, -1, 0);
    tio_add(&t[0], buf[0], SMALL_IO);
    tio_init(&t[1], UWDF_OP_READ, fd, 0);
    tio_add(&t[1], buf[1], SMALL_IO);
    eng_queue(&e, &t[0], true);
    eng_queue(&e, &t[1], true);
    e.ops->flush(&e);
    reap_n(&e, 2);
    ck_assert_int_eq(t[0].reaped, 1);
    ck_assert_int_eq(t[1].reaped, 1);
    ck_assert_int_eq(t[0].io.res, -EBADF);
    ck_assert_int_eq(t[1].io.res, SMALL_IO);
    assert_idle(&e);
    eng_close(&e);
    close(fd);
}
END_TEST

/* ---- io_uring only ---------------------------------------------------- */

static int open_fifo(const char *name)
{
    char p[PATH_MAX];
    test_path(p, sizeof(p), name);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    /* O_RDWR: open does not wait for a peer, and nothing is written. */
    int fd = open(p, O_RDWR);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* After the read is gone, data written to the FIFO must stay in the FIFO:
 * the buffer is untouched and read(2) gets the bytes. */
static void assert_fifo_read_dead(struct uwdf_engine *e, int fd, const uint8_t *buf)
{
    static const char msg[] = "late";
    char back[sizeof(msg)];

    ck_assert_int_eq(write(fd, msg, sizeof(msg)), sizeof(msg));
    sleep_ns(FIFO_SETTLE_NS);
    assert_idle(e);
    for (int i = 0; i < FIFO_BUF; i++)
        ck_assert_int_eq(buf[i], FIFO_FILL);
    ck_assert_int_eq(read(fd, back, sizeof(back)), sizeof(msg));
    ck_assert(memcmp(back, msg, sizeof(msg)) == 0);
}

static void fifo_link_timeout(bool absolute)
{
    struct uwdf_engine e;
    struct tio t;
    uint8_t buf[FIFO_BUF];
    int fd = open_fifo("fifo");

    memset(buf, FIFO_FILL, sizeof(buf));
    eng_open(&e, BE_IO_URING, ENGINE_DEPTH);
    tio_init(&t, UWDF_OP_READ, fd, UWDF_IO_OFFSET_CURRENT);
    tio_add(&t, buf, sizeof(buf));
    t.io.has_timeout = true;
    t.io.timeout_abs = absolute;
    if (absolute) {
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        int64_t at = (int64_t)rt.tv_sec * NS_PER_SEC + rt.tv_nsec + LINK_TIMEOUT_NS;
        t.io.timeout_sec = at / NS_PER_SEC;
        t.io.timeout_nsec = at % NS_PER_SEC;
    } else {
        t.io.timeout_sec = LINK_TIMEOUT_NS / NS_PER_SEC;
        t.io.timeout_nsec = LINK_TIMEOUT_NS % NS_PER_SEC;
    }

    int64_t t0 = now_ns();
    eng_queue(&e, &t, false);
    reap_n(&e, 1);
    int64_t el = now_ns() - t0;

    ck_assert_int_eq(t.reaped, 1);
    ck_assert_int_eq(t.io.res, -ECANCELED);
    ck_assert(t.io.timed_out);
    ck_assert_msg(el >= LINK_TIMEOUT_MIN_NS && el <= LINK_TIMEOUT_MAX_NS,
                  "timed out after %lld ns", (long long)el);
    assert_fifo_read_dead(&e, fd, buf);
    eng_close(&e);
    close(fd);
}

START_TEST(test_uring_fifo_read_relative_timeout)
{
    fifo_link_timeout(false);
}
END_TEST

START_TEST(test_uring_fifo_read_absolute_timeout)
{
    fifo_link_timeout(true);
}
END_TEST

static void fifo_cancel(bool with_timeout)
{
    struct uwdf_engine e;
    struct tio t;
    uint8_t buf[FIFO_BUF];
    int fd = open_fifo("fifo");

    memset(buf, FIFO_FILL, sizeof(buf));
    eng_open(&e, BE_IO_URING, ENGINE_DEPTH);
    tio_init(&t, UWDF_OP_READ, fd, UWDF_IO_OFFSET_CURRENT);
    tio_add(&t, buf, sizeof(buf));
    if (with_timeout) {
        t.io.has_timeout = true;
        t.io.timeout_sec = LONG_TIMEOUT_SEC;
    }
    eng_queue(&e, &t, false);
    assert_idle(&e); /* parked on the empty FIFO */
    ck_assert_int_eq(e.ops->cancel(&e, &t.io), 0);
    int64_t t0 = now_ns();
    reap_n(&e, 1);
    ck_assert_int_lt(now_ns() - t0, WAKE_LIMIT_NS);
    ck_assert_int_eq(t.reaped, 1);
    ck_assert_int_eq(t.io.res, -ECANCELED);
    ck_assert(!t.io.timed_out);
    ck_assert_int_eq(e.ops->cancel(&e, &t.io), -ENOENT); /* it is back: not found */
    assert_fifo_read_dead(&e, fd, buf);
    eng_close(&e);
    close(fd);
}

START_TEST(test_uring_cancel_fifo_read)
{
    fifo_cancel(false);
}
END_TEST

START_TEST(test_uring_cancel_fifo_read_with_timeout)
{
    fifo_cancel(true);
}
END_TEST

/* A link timeout that never fires: the op's result stands, timed_out stays
 * false, and the op does not wait for the timer. */
START_TEST(test_uring_link_timeout_not_fired)
{
    struct uwdf_engine e;
    struct tio t;
    char buf[SMALL_IO];
    int fd = open_file("lt", 0);

    ck_assert_int_eq(ftruncate(fd, SMALL_IO), 0);
    eng_open(&e, BE_IO_URING, ENGINE_DEPTH);
    tio_init(&t, UWDF_OP_READ, fd, 0);
    tio_add(&t, buf, SMALL_IO);
    t.io.has_timeout = true;
    t.io.timeout_sec = LONG_TIMEOUT_SEC;
    int64_t t0 = now_ns();
    ck_assert_int_eq(run_one(&e, &t), SMALL_IO);
    ck_assert_int_lt(now_ns() - t0, WAKE_LIMIT_NS);
    ck_assert(!t.io.timed_out);
    assert_idle(&e);
    eng_close(&e);
    close(fd);
}
END_TEST

/* Linked pairs need two SQEs in one submission; far more of them than the
 * ring holds, all deferred, must all come back once. */
START_TEST(test_uring_many_linked_ops)
{
    struct uwdf_engine e;
    struct tio *t = calloc(LINKED_OPS, sizeof(*t));
    char *bufs = calloc(LINKED_OPS, SMALL_IO);
    int fd = open_file("linked", 0);

    ck_assert(t && bufs);
    ck_assert_int_eq(ftruncate(fd, SMALL_IO), 0);
    eng_open(&e, BE_IO_URING, ENGINE_DEPTH);
    for (int i = 0; i < LINKED_OPS; i++) {
        tio_init(&t[i], UWDF_OP_READ, fd, 0);
        tio_add(&t[i], bufs + (size_t)i * SMALL_IO, SMALL_IO);
        t[i].io.has_timeout = true;
        t[i].io.timeout_sec = LONG_TIMEOUT_SEC;
        eng_queue(&e, &t[i], true);
    }
    e.ops->flush(&e);
    reap_n(&e, LINKED_OPS);
    for (int i = 0; i < LINKED_OPS; i++) {
        ck_assert_int_eq(t[i].reaped, 1);
        ck_assert_int_eq(t[i].io.res, SMALL_IO);
        ck_assert(!t[i].io.timed_out);
    }
    assert_idle(&e);
    eng_close(&e);
    close(fd);
    free(t);
    free(bufs);
}
END_TEST

/* ---- libaio only ------------------------------------------------------ */

START_TEST(test_libaio_backlog_beyond_depth)
{
    enum { NOPS = ENGINE_DEPTH + BACKLOG_EXTRA };
    struct uwdf_engine e;
    struct tio *t = calloc(NOPS, sizeof(*t));
    uint8_t *wbuf = aligned_buf((size_t)NOPS * BLOCK, 0);
    uint8_t *rbuf = aligned_buf((size_t)NOPS * BLOCK, 0);
    int fd = open_file("backlog", test_odirect);

    ck_assert_ptr_nonnull(t);
    fill_pattern(wbuf, (size_t)NOPS * BLOCK, 3);
    eng_open(&e, BE_LIBAIO, ENGINE_DEPTH);

    run_blocks(&e, t, NOPS, UWDF_OP_WRITE, fd, wbuf);
    run_blocks(&e, t, NOPS, UWDF_OP_READ, fd, rbuf);
    ck_assert(memcmp(wbuf, rbuf, (size_t)NOPS * BLOCK) == 0);
    assert_idle(&e);
    eng_close(&e);
    close(fd);
    free(t);
    free(wbuf);
    free(rbuf);
}
END_TEST

START_TEST(test_libaio_offset_current_rejected)
{
    struct uwdf_engine e;
    struct tio t;
    char buf[SMALL_IO];
    int fd = open_file("cur", 0);

    eng_open(&e, BE_LIBAIO, ENGINE_DEPTH);
    tio_init(&t, UWDF_OP_READ, fd, UWDF_IO_OFFSET_CURRENT);
    tio_add(&t, buf, SMALL_IO);
    ck_assert_int_eq(e.ops->queue(&e, &t.io, false), -EINVAL);
    assert_idle(&e);
    eng_close(&e);
    close(fd);
}
END_TEST

/* With the context full, an op waits in the backlog; cancelling it there
 * finishes it with -ECANCELED. Plain file I/O in the kernel cannot be
 * cancelled: -EALREADY, and it still completes normally, once. */
START_TEST(test_libaio_cancel_backlogged_and_running)
{
    enum { NOPS = ENGINE_DEPTH + 1 };
    struct uwdf_engine e;
    struct tio *t = calloc(NOPS, sizeof(*t));
    char *bufs = calloc(NOPS, SMALL_IO);
    int fd = open_file("cancel", 0);

    ck_assert(t && bufs);
    ck_assert_int_eq(ftruncate(fd, SMALL_IO), 0);
    eng_open(&e, BE_LIBAIO, ENGINE_DEPTH);
    for (int i = 0; i < NOPS; i++) {
        tio_init(&t[i], UWDF_OP_READ, fd, 0);
        tio_add(&t[i], bufs + (size_t)i * SMALL_IO, SMALL_IO);
        eng_queue(&e, &t[i], false);
    }
    ck_assert_int_eq(e.ops->cancel(&e, &t[NOPS - 1].io), 0);
    ck_assert_int_eq(e.ops->cancel(&e, &t[0].io), -EALREADY);
    reap_n(&e, NOPS);
    for (int i = 0; i < NOPS; i++) {
        ck_assert_int_eq(t[i].reaped, 1);
        ck_assert_int_eq(t[i].io.res, i == NOPS - 1 ? -ECANCELED : SMALL_IO);
    }
    ck_assert_int_eq(e.ops->cancel(&e, &t[0].io), -ENOENT);
    assert_idle(&e);
    eng_close(&e);
    close(fd);
    free(t);
    free(bufs);
}
END_TEST

/* Completions already in the context's ring are reaped without
 * io_getevents(): on a thread where a seccomp filter refuses it (and
 * io_pgetevents), rounds of buffered reads (the kernel completes them
 * inside io_submit()) all come back, once each, with their data, while
 * the ring's head wraps. Afterwards io_getevents() on another thread
 * agrees with where user space left head: nothing stale, nothing twice. */
struct ring_reap_run {
    struct uwdf_engine *e;
    struct tio *t;
    int fd;
    uint8_t *bufs;
    int filtered;  /* 1: the filter refused io_getevents; 0: no filter here */
    int failed_at; /* round that went wrong, or -1 */
    int reap_err;
};

/* On this thread only; it ends with the thread. */
static bool ring_deny_getevents(void)
{
    static const long nrs[] = { __NR_io_getevents, __NR_io_pgetevents };
    return tu_deny_syscalls(nrs, 2, EPERM);
}

static void *ring_reap_thread(void *arg)
{
    struct ring_reap_run *x = arg;
    struct uwdf_io *done[REAP_BATCH];

    x->failed_at = -1;
    if (!ring_deny_getevents()) {
        x->filtered = 0;
        return NULL;
    }
    errno = 0;
    x->filtered = syscall(__NR_io_getevents, 0, 0, 0, NULL, NULL) < 0 && errno == EPERM;
    if (!x->filtered)
        return NULL;
    for (int r = 0; r < RING_ROUNDS && x->failed_at < 0; r++) {
        for (int i = 0; i < RING_OPS; i++) {
            struct tio *t = &x->t[i];
            tio_init(t, UWDF_OP_READ, x->fd, (uint64_t)((r + i) % RING_OPS) * SMALL_IO);
            tio_add(t, x->bufs + (size_t)i * SMALL_IO, SMALL_IO);
            if (x->e->ops->queue(x->e, &t->io, false) != 0)
                x->failed_at = r;
        }
        int got = x->e->ops->reap(x->e, done, REAP_BATCH, REAP_SLICE_NS);
        if (got != RING_OPS) {
            x->reap_err = got;
            x->failed_at = r;
            break;
        }
        for (int i = 0; i < got; i++)
            container_of(done[i], struct tio, io)->reaped++;
        for (int i = 0; i < RING_OPS; i++) {
            uint8_t want = (uint8_t)((r + i) % RING_OPS + 1);
            if (x->t[i].reaped != 1 || x->t[i].io.res != SMALL_IO || x->bufs[(size_t)i * SMALL_IO] != want ||
                x->bufs[(size_t)(i + 1) * SMALL_IO - 1] != want)
                x->failed_at = r;
        }
    }
    return NULL;
}

START_TEST(test_libaio_reaps_posted_completions_without_io_getevents)
{
    struct uwdf_engine e;
    struct tio t[RING_OPS];
    char fill[SMALL_IO];
    uint8_t *bufs = aligned_buf((size_t)RING_OPS * SMALL_IO, 0);
    int fd = open_file("ring", 0); /* buffered: done inside io_submit() */
    struct ring_reap_run x = { .e = &e, .t = t, .fd = fd, .bufs = bufs };
    pthread_t th;

    for (int i = 0; i < RING_OPS; i++) {
        memset(fill, i + 1, sizeof(fill));
        ck_assert_int_eq(pwrite(fd, fill, sizeof(fill), (off_t)i * SMALL_IO), SMALL_IO);
    }
    eng_open(&e, BE_LIBAIO, ENGINE_DEPTH);
    ck_assert_int_eq(pthread_create(&th, NULL, ring_reap_thread, &x), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    if (!x.filtered) {
        fprintf(stderr, "test_backends: no seccomp filter here: the ring reap not isolated\n");
    } else {
        ck_assert_msg(x.failed_at < 0, "round %d of %d: reap gave %d (%s)", x.failed_at, RING_ROUNDS, x.reap_err,
                      x.reap_err < 0 ? strerror(-x.reap_err) : "ops wrong");
    }

    /* The kernel's reader after user space's: O_DIRECT ops that finish
     * later, reaped through io_getevents() on this thread. */
    int dfd = open_file("ring-direct", test_odirect);
    uint8_t *dbuf = aligned_buf((size_t)RING_OPS * BLOCK, 0);
    ck_assert_int_eq(ftruncate(dfd, (off_t)RING_OPS * BLOCK), 0);
    run_blocks(&e, t, RING_OPS, UWDF_OP_READ, dfd, dbuf);
    assert_idle(&e);
    eng_close(&e);
    close(dfd);
    close(fd);
    free(dbuf);
    free(bufs);
}
END_TEST

/* ---- registered buffers and files ------------------------------------- */

#define FIXED_BUFS 3
#define FIXED_REGION (4 * BLOCK)

static void file_init(struct uwdf_engine_file *f, int fd)
{
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    atomic_store(&f->slot, -1);
}

/* One op of 2 blocks on file f at off through buf; res checked. */
static void file_rw(struct uwdf_engine *e, struct uwdf_engine_file *f, enum uwdf_io_op op, uint8_t *buf,
                    uint64_t off)
{
    struct tio t;
    tio_init(&t, op, f->fd, off);
    t.io.file = f;
    tio_add(&t, buf, 2 * BLOCK);
    ck_assert_int_eq(run_one(e, &t), 2 * BLOCK);
}

/* Two files share one ring. File A registers three buffers (in reverse
 * address order: the lookup must not rely on it), B the first two of the
 * same: A writes a pattern through them (one op at the start of a region,
 * one ending exactly at its end, one straddling two regions, one outside
 * every region) and reads it back; exactly the ops inside one of the
 * file's own regions go down as READ_FIXED / WRITE_FIXED, and every op of a
 * file with a slot on that slot. B reads its own file's data through its
 * own slot (a slot mix-up would read A's), and an op of B in the region
 * only A registered is not fixed. Dropping A's registrations leaves B's
 * shared buffers working; each kind registers once per file (-EBUSY). */
START_TEST(test_uring_registered_buffers_and_files_per_file)
{
    struct uwdf_engine e;
    struct uwdf_engine_file fa, fb;
    /* One allocation holding the regions back to back, so that a buffer
     * straddling two of them is contiguous memory but in no single one. */
    uint8_t *arena = aligned_buf(FIXED_BUFS * FIXED_REGION, 0);
    uint8_t *outside = aligned_buf(FIXED_REGION, 0);
    uint8_t *expect = aligned_buf(FIXED_REGION, 0);
    struct iovec regs[FIXED_BUFS];
    file_init(&fa, open_file("fixed-a", test_odirect));
    file_init(&fb, open_file("fixed-b", test_odirect));

    eng_open(&e, BE_IO_URING, ENGINE_DEPTH);
    for (int i = 0; i < FIXED_BUFS; i++) {
        regs[i].iov_base = arena + (size_t)(FIXED_BUFS - 1 - i) * FIXED_REGION;
        regs[i].iov_len = FIXED_REGION;
    }
    ck_assert_int_eq(e.ops->register_buffers(&e, &fa, regs, FIXED_BUFS), 0);
    ck_assert_int_eq(e.ops->register_buffers(&e, &fa, regs, FIXED_BUFS), -EBUSY);
    ck_assert_int_eq(e.ops->register_file(&e, &fa), 0);
    ck_assert_int_eq(e.ops->register_file(&e, &fa), -EBUSY);
    /* B: the two regions at the arena's end (regs[0], regs[1]). */
    ck_assert_int_eq(e.ops->register_buffers(&e, &fb, regs, 2), 0);
    ck_assert_int_eq(e.ops->register_file(&e, &fb), 0);
    ck_assert_int_ne(atomic_load(&fa.slot), atomic_load(&fb.slot));
    ck_assert_uint_eq(atomic_load(&fa.nbuffers), FIXED_BUFS);
    ck_assert_uint_eq(atomic_load(&fb.nbuffers), 2);

    struct {
        uint8_t *buf;
        bool fixed;
    } cases[] = {
        { arena, true },                                       /* start of a region */
        { arena + 2 * FIXED_REGION - 2 * BLOCK, true },        /* ends at a region's end */
        { arena + FIXED_REGION - BLOCK, false },               /* straddles two regions */
        { outside, false },                                    /* in none */
    };
    enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
    uint64_t want_fixed = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < NCASES; i++) {
            uint64_t off = (uint64_t)i * 2 * BLOCK;
            if (pass == 0)
                fill_pattern(cases[i].buf, 2 * BLOCK, (unsigned)i + 1);
            else
                memset(cases[i].buf, 0, 2 * BLOCK);
            file_rw(&e, &fa, pass == 0 ? UWDF_OP_WRITE : UWDF_OP_READ, cases[i].buf, off);
            if (pass == 1) {
                fill_pattern(expect, 2 * BLOCK, (unsigned)i + 1);
                ck_assert_msg(memcmp(cases[i].buf, expect, 2 * BLOCK) == 0, "case %d: data differs", i);
            }
            want_fixed += cases[i].fixed;
            ck_assert_uint_eq(atomic_load(&fa.fixed_buffer_ios), want_fixed);
            ck_assert_uint_eq(atomic_load(&fa.fixed_file_ios), (uint64_t)(pass * NCASES + i + 1));
        }
    }
    /* A flush goes down on the fixed file too. */
    struct tio t;
    tio_init(&t, UWDF_OP_FSYNC, fa.fd, 0);
    t.io.file = &fa;
    ck_assert_int_eq(run_one(&e, &t), 0);
    ck_assert_uint_eq(atomic_load(&fa.fixed_file_ios), 2 * NCASES + 1);
    ck_assert_uint_eq(atomic_load(&fb.fixed_file_ios), 0);

    /* B: its own data through its own slot, in a shared region. */
    uint8_t *b_in_shared = arena + 2 * FIXED_REGION; /* regs[0]: A's and B's */
    uint8_t *a_only = arena;                         /* regs[2]: A's only */
    fill_pattern(b_in_shared, 2 * BLOCK, 99);
    file_rw(&e, &fb, UWDF_OP_WRITE, b_in_shared, 0);
    ck_assert_uint_eq(atomic_load(&fb.fixed_buffer_ios), 1);
    memset(a_only, 0, 2 * BLOCK);
    file_rw(&e, &fb, UWDF_OP_READ, a_only, 0);
    fill_pattern(expect, 2 * BLOCK, 99);
    ck_assert_msg(memcmp(a_only, expect, 2 * BLOCK) == 0, "B read another file's data");
    ck_assert_uint_eq(atomic_load(&fb.fixed_buffer_ios), 1); /* not B's region */
    ck_assert_uint_eq(atomic_load(&fb.fixed_file_ios), 2);

    /* A lets go; B's registrations, one of them shared, still work. */
    e.ops->unregister_file(&e, &fa);
    ck_assert_int_eq(atomic_load(&fa.slot), -1);
    ck_assert_uint_eq(atomic_load(&fa.nbuffers), 0);
    ck_assert_ptr_null(fa.be);
    memset(b_in_shared, 0, 2 * BLOCK);
    file_rw(&e, &fb, UWDF_OP_READ, b_in_shared, 0);
    ck_assert_msg(memcmp(b_in_shared, expect, 2 * BLOCK) == 0, "B's data differs after A unregistered");
    ck_assert_uint_eq(atomic_load(&fb.fixed_buffer_ios), 2);
    ck_assert_uint_eq(atomic_load(&fb.fixed_file_ios), 3);
    /* A's slot is free again: A can have one again. */
    ck_assert_int_eq(e.ops->register_file(&e, &fa), 0);
    e.ops->unregister_file(&e, &fa);
    e.ops->unregister_file(&e, &fb);
    ck_assert_int_eq(atomic_load(&fb.slot), -1);
    assert_idle(&e);
    eng_close(&e);
    close(fa.fd);
    close(fb.fd);
    free(arena);
    free(outside);
    free(expect);
}
END_TEST

/* libaio and null have nothing to register: the core reads the missing ops
 * as "not supported" and the DDIs turn that into a documented no-op. */
START_TEST(test_registration_only_on_io_uring)
{
    ck_assert_ptr_nonnull(uwdf_backend_io_uring.register_buffers);
    ck_assert_ptr_nonnull(uwdf_backend_io_uring.register_file);
    ck_assert_ptr_nonnull(uwdf_backend_io_uring.unregister_file);
    ck_assert_ptr_null(uwdf_backend_libaio.register_buffers);
    ck_assert_ptr_null(uwdf_backend_libaio.register_file);
    ck_assert_ptr_null(uwdf_backend_libaio.unregister_file);
    ck_assert_ptr_null(uwdf_backend_null.register_buffers);
    ck_assert_ptr_null(uwdf_backend_null.register_file);
    ck_assert_ptr_null(uwdf_backend_null.unregister_file);
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

/* The plain blocking path a synchronous sender takes without a timeout:
 * each op moves real bytes (O_DIRECT where the file system takes it),
 * write-through is RWF_DSYNC, a short read at the end of the file and an
 * error come back in res as the engines report them, and an op it does not
 * know is refused before anything starts. */
START_TEST(test_psync_ops_on_the_calling_thread)
{
    struct tio t;
    uint8_t *out = aligned_buf(2 * BLOCK, 0), *in = aligned_buf(2 * BLOCK, 0);
    int fd = open_file("psync", test_odirect);

    fill_pattern(out, 2 * BLOCK, 7);
    tio_init(&t, UWDF_OP_WRITE, fd, BLOCK);
    tio_add(&t, out, BLOCK);
    tio_add(&t, out + BLOCK, BLOCK);
    t.io.rw_flags = RWF_DSYNC;
    ck_assert_int_eq(uwdf_psync_run(&t.io), 0);
    ck_assert_int_eq(t.io.res, 2 * BLOCK);
    ck_assert(!t.io.timed_out);

    tio_init(&t, UWDF_OP_FDATASYNC, fd, 0);
    ck_assert_int_eq(uwdf_psync_run(&t.io), 0);
    ck_assert_int_eq(t.io.res, 0);
    tio_init(&t, UWDF_OP_FSYNC, fd, 0);
    ck_assert_int_eq(uwdf_psync_run(&t.io), 0);
    ck_assert_int_eq(t.io.res, 0);

    /* From block 1 to the end of the file: both blocks back, in order. */
    tio_init(&t, UWDF_OP_READ, fd, BLOCK);
    tio_add(&t, in + BLOCK, BLOCK);
    tio_add(&t, in, BLOCK);
    ck_assert_int_eq(uwdf_psync_run(&t.io), 0);
    ck_assert_int_eq(t.io.res, 2 * BLOCK);
    ck_assert_int_eq(memcmp(in + BLOCK, out, BLOCK), 0);
    ck_assert_int_eq(memcmp(in, out + BLOCK, BLOCK), 0);

    /* Past the end: 0 bytes, not an error (the framework maps it). */
    tio_init(&t, UWDF_OP_READ, fd, 4 * BLOCK);
    tio_add(&t, in, BLOCK);
    ck_assert_int_eq(uwdf_psync_run(&t.io), 0);
    ck_assert_int_eq(t.io.res, 0);

    tio_init(&t, UWDF_OP_READ, -1, 0);
    tio_add(&t, in, BLOCK);
    ck_assert_int_eq(uwdf_psync_run(&t.io), 0);
    ck_assert_int_eq(t.io.res, -EBADF);

    tio_init(&t, UWDF_OP_READ, fd, 0);
    t.io.op = 0;
    t.io.res = 12345;
    ck_assert_int_eq(uwdf_psync_run(&t.io), -EOPNOTSUPP);
    ck_assert_int_eq(t.io.res, 12345); /* untouched: not started */

    close(fd);
    free(out);
    free(in);
}
END_TEST

static TCase *new_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_set_timeout(tc, TCASE_TIMEOUT_SEC);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *backends_suite(void)
{
    Suite *s = suite_create("backends");

    TCase *all = new_tcase(s, "all_backends");
    tcase_add_loop_test(all, test_probe_succeeds, 0, BE_COUNT);
    tcase_add_loop_test(all, test_open_close, 0, BE_COUNT);
    tcase_add_loop_test(all, test_write_read_single_iovec, 0, BE_COUNT);
    tcase_add_loop_test(all, test_write_read_multi_iovec, 0, BE_COUNT);
    tcase_add_loop_test(all, test_deferred_many_ops_reaped_once, 0, BE_COUNT);
    tcase_add_loop_test(all, test_fsync_fdatasync_complete, 0, BE_COUNT);
    tcase_add_loop_test(all, test_reap_returns_at_most_max, 0, BE_COUNT);
    tcase_add_loop_test(all, test_idle_reap_times_out, 0, BE_COUNT);
    tcase_add_loop_test(all, test_wake_interrupts_blocked_reap, 0, BE_COUNT);
    tcase_add_loop_test(all, test_wake_before_reap_returns_once, 0, BE_COUNT);
    tcase_add_loop_test(all, test_wake_storm_never_lost, 0, BE_COUNT);
    tcase_add_test(all, test_null_cancel_not_found);

    TCase *kern = new_tcase(s, "kernel_backends");
    tcase_add_loop_test(kern, test_read_past_eof_returns_zero, 0, BE_KERNEL_COUNT);
    tcase_add_loop_test(kern, test_bad_fd_completes_with_ebadf, 0, BE_KERNEL_COUNT);

    TCase *uring = new_tcase(s, "io_uring");
    tcase_add_test(uring, test_uring_fifo_read_relative_timeout);
    tcase_add_test(uring, test_uring_fifo_read_absolute_timeout);
    tcase_add_test(uring, test_uring_cancel_fifo_read);
    tcase_add_test(uring, test_uring_cancel_fifo_read_with_timeout);
    tcase_add_test(uring, test_uring_link_timeout_not_fired);
    tcase_add_test(uring, test_uring_many_linked_ops);
    tcase_add_test(uring, test_uring_registered_buffers_and_files_per_file);
    tcase_add_test(uring, test_registration_only_on_io_uring);

    TCase *psync = new_tcase(s, "psync");
    tcase_add_test(psync, test_psync_ops_on_the_calling_thread);

    TCase *aio = new_tcase(s, "libaio");
    tcase_add_test(aio, test_libaio_backlog_beyond_depth);
    tcase_add_test(aio, test_libaio_offset_current_rejected);
    tcase_add_test(aio, test_libaio_cancel_backlogged_and_running);
    tcase_add_test(aio, test_libaio_reaps_posted_completions_without_io_getevents);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backends_suite());
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY picks the output level */
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
