/* Null engine: every op succeeds at once without a system call and without
 * touching its buffers (READ/WRITE report the full iovec length, syncs 0).
 * For measuring framework overhead and for tests.
 *
 * queue() parks the op on a ready FIFO that only the engine thread uses,
 * so the hot path takes no lock and allocates nothing. The one thing other
 * threads touch is the wake word: wake() sets it and issues FUTEX_WAKE only
 * if the engine thread announced that it is about to sleep on it. */
#include "backend.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { NULL_CACHELINE = 64 };

#define NULL_NS_PER_SEC 1000000000LL

struct null_state {
    struct uwdf_io *head, *tail;
    /* Cross-thread words on their own line. wake_word: 1 = wake pending.
     * sleeping: the engine thread may be in FUTEX_WAIT on wake_word. */
    alignas(NULL_CACHELINE) atomic_uint wake_word;
    atomic_bool sleeping;
};

static int64_t null_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NULL_NS_PER_SEC + ts.tv_nsec;
}

static void null_futex_wait(atomic_uint *word, unsigned expected, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / NULL_NS_PER_SEC;
        ts.tv_nsec = timeout_ns % NULL_NS_PER_SEC;
        tsp = &ts;
    }
    /* Relative timeout on CLOCK_MONOTONIC; EAGAIN/EINTR/ETIMEDOUT all just
     * send the caller back to re-check. */
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
}

static void null_futex_wake(atomic_uint *word)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static int null_probe(void)
{
    return 0;
}

static int null_open(struct uwdf_engine *e)
{
    size_t size = (sizeof(struct null_state) + NULL_CACHELINE - 1) &
                  ~(size_t)(NULL_CACHELINE - 1);
    struct null_state *st = aligned_alloc(NULL_CACHELINE, size);
    if (!st)
        return -ENOMEM;
    memset(st, 0, size);
    atomic_init(&st->wake_word, 0);
    atomic_init(&st->sleeping, false);
    e->be = st;
    return 0;
}

static void null_close(struct uwdf_engine *e)
{
    free(e->be);
    e->be = NULL;
}

/* What the op returns (0), or -EINVAL if it is not one the engine takes. */
static int null_result(struct uwdf_io *io)
{
    int64_t res = 0;

    switch (io->op) {
    case UWDF_OP_READ:
    case UWDF_OP_WRITE:
        if (io->iovcnt < 0)
            return -EINVAL;
        for (int i = 0; i < io->iovcnt; i++)
            res += (int64_t)io->iov[i].iov_len;
        break;
    case UWDF_OP_FSYNC:
    case UWDF_OP_FDATASYNC:
        break;
    default:
        return -EINVAL;
    }
    io->res = res;
    io->timed_out = false;
    return 0;
}

static int null_queue(struct uwdf_engine *e, struct uwdf_io *io, bool defer_submit)
{
    struct null_state *st = e->be;
    int r = null_result(io);
    if (r < 0)
        return r;
    io->next = NULL;
    if (st->tail)
        st->tail->next = io;
    else
        st->head = io;
    st->tail = io;
    return 0;
}

static void null_flush(struct uwdf_engine *e)
{
}

static int null_cancel(struct uwdf_engine *e, struct uwdf_io *io)
{
    return -ENOENT; /* it is already finished */
}

/* Sleep until wake() or the timeout (-1: none). */
static void null_wait(struct null_state *st, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns > 0 ? null_now_ns() + timeout_ns : 0;

    for (;;) {
        if (atomic_exchange_explicit(&st->wake_word, 0, memory_order_seq_cst))
            return;
        int64_t left = -1;
        if (timeout_ns > 0) {
            left = deadline - null_now_ns();
            if (left <= 0)
                return;
        }
        /* Announce the sleep, then re-check: wake() sets the word before
         * it reads `sleeping`, so one side always sees the other. */
        atomic_store_explicit(&st->sleeping, true, memory_order_seq_cst);
        if (atomic_load_explicit(&st->wake_word, memory_order_seq_cst) == 0)
            null_futex_wait(&st->wake_word, 0, left);
        atomic_store_explicit(&st->sleeping, false, memory_order_relaxed);
    }
}

static int null_reap(struct uwdf_engine *e, struct uwdf_io **done, int max, int64_t timeout_ns)
{
    struct null_state *st = e->be;

    if (max <= 0)
        return -EINVAL;
    if (!st->head && timeout_ns != 0)
        null_wait(st, timeout_ns);
    else if (atomic_load_explicit(&st->wake_word, memory_order_relaxed))
        atomic_store_explicit(&st->wake_word, 0, memory_order_relaxed); /* this return serves it */

    int n = 0;
    while (n < max && st->head) {
        struct uwdf_io *io = st->head;
        st->head = io->next;
        io->next = NULL;
        done[n++] = io;
    }
    if (!st->head)
        st->tail = NULL;
    return n;
}

static void null_wake(struct uwdf_engine *e)
{
    struct null_state *st = e->be;
    if (atomic_exchange_explicit(&st->wake_word, 1, memory_order_seq_cst) == 0 &&
        atomic_load_explicit(&st->sleeping, memory_order_seq_cst))
        null_futex_wake(&st->wake_word);
}

/* A synchronous send completes on its sender's thread: nothing to wait for. */
static int null_run_here(struct uwdf_io *io)
{
    return null_result(io);
}

const struct uwdf_backend_ops uwdf_backend_null = {
    .name = "null",
    .caps = UWDF_BE_CAP_NO_KERNEL | UWDF_BE_CAP_STREAM_FILES,
    .probe = null_probe,
    .open = null_open,
    .close = null_close,
    .queue = null_queue,
    .flush = null_flush,
    .cancel = null_cancel,
    .reap = null_reap,
    .wake = null_wake,
    .run_here = null_run_here,
};
