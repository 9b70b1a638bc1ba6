/* Linux native AIO engine (libaio), the fallback when io_uring is not
 * available.
 *
 * Kernel AIO is only asynchronous for O_DIRECT files: on buffered
 * (non-O_DIRECT) files the read/write/fsync runs synchronously inside
 * io_submit(), and the completion is merely posted for io_getevents().
 * It has no offset "current position", no kernel timeouts, and FIFOs are
 * refused by the core for this engine.
 *
 * Each op's struct iocb lives in io->be_area, so nothing is allocated per
 * I/O. Ops move through three states (io->be_flags): staged in a FIFO
 * waiting for io_submit() (deferred, or over the context depth: the
 * backlog), owned by the kernel, and finished in a ready FIFO until reap()
 * hands them out. An op io_submit() rejects (e.g. -EINVAL for a file with
 * no fsync) finishes with that error through the ready FIFO.
 *
 * wake(): an IOCB_CMD_POLL on an eventfd is kept armed in the context; its
 * completion ends a blocked io_getevents(), reap() drains the eventfd and
 * re-arms the poll.
 *
 * reap() takes the completions the kernel has already posted from the
 * context's ring in user space, and calls io_getevents() only to sleep
 * when the ring is empty: at a deep queue most rounds find completions
 * waiting, and each of those calls was a system call for nothing. */
#include "backend.h"
#include "backend_valgrind.h"

#include <assert.h>
#include <errno.h>
#include <libaio.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum {
    AIO_MIN_DEPTH = 64,
    AIO_MAX_DEPTH = 4096,
    AIO_FLOOR_DEPTH = 16,  /* smallest context tried when fs.aio-max-nr is tight */
    AIO_WAKE_SLOTS = 1,    /* the eventfd poll iocb */
    AIO_CACHELINE = 64,
};

#define AIO_NS_PER_SEC 1000000000LL
/* If the wake poll cannot be armed (kernel without aio poll), waits are
 * cut into slices this long so wake() is still noticed via wake_pending. */
#define AIO_WAKE_FALLBACK_NS (10LL * 1000 * 1000)

/* io->be_flags */
enum aio_io_state {
    AIO_ST_NONE = 0,
    AIO_ST_STAGED,  /* on the staged FIFO, not yet given to io_submit() */
    AIO_ST_KERNEL,  /* accepted by io_submit(), completion pending */
    AIO_ST_READY,   /* finished, on the ready FIFO */
};

static_assert(sizeof(struct iocb) <= sizeof(((struct uwdf_io *)0)->be_area),
              "struct iocb must fit in uwdf_io.be_area");

/* The completion ring the kernel maps at the address io_setup() returns
 * as the context (the kernel's ABI: userland may read the events between
 * head and tail and advance head itself; io_getevents() does the same
 * under the kernel's lock). Usable when magic and header_length match and
 * incompat_features is 0. */
struct aio_ring_hdr {
    unsigned id;
    unsigned nr; /* events in the ring */
    unsigned head;
    unsigned tail;
    unsigned magic;
    unsigned compat_features;
    unsigned incompat_features;
    unsigned header_length;
    struct io_event events[];
};
#define AIO_RING_MAGIC 0xa10a10a1u

struct aio_fifo {
    struct uwdf_io *head, *tail;
};

struct aio_state {
    io_context_t ctx;
    struct aio_ring_hdr *ring; /* ctx's ring, or NULL: every reap is io_getevents() */
    unsigned depth;      /* op iocbs the context holds besides the wake poll */
    unsigned inflight;   /* op iocbs in AIO_ST_KERNEL */
    struct iocb **batch; /* depth entries, for io_submit() */
    struct io_event *events;
    unsigned nevents;
    struct aio_fifo staged, ready;
    struct iocb wake_iocb;
    int wake_fd;
    bool wake_armed;
    bool wake_unsupported; /* aio poll rejected: use sliced waits */
    bool woken;            /* wake seen; the current or next reap returns */
    /* Set by wake() on any thread; own cache line (see io_uring.c). */
    alignas(AIO_CACHELINE) atomic_bool wake_pending;
};

static inline struct iocb *aio_iocb(struct uwdf_io *io)
{
    /* Nothing reads be_area as uint64_t, so only this type ever touches it. */
    return (struct iocb *)(void *)io->be_area;
}

static int64_t aio_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * AIO_NS_PER_SEC + ts.tv_nsec;
}

static void aio_fifo_push(struct aio_fifo *f, struct uwdf_io *io)
{
    io->next = NULL;
    if (f->tail)
        f->tail->next = io;
    else
        f->head = io;
    f->tail = io;
}

static struct uwdf_io *aio_fifo_pop(struct aio_fifo *f)
{
    struct uwdf_io *io = f->head;
    if (io) {
        f->head = io->next;
        if (!f->head)
            f->tail = NULL;
        io->next = NULL;
    }
    return io;
}

static bool aio_fifo_remove(struct aio_fifo *f, struct uwdf_io *io)
{
    struct uwdf_io *prev = NULL;
    for (struct uwdf_io *cur = f->head; cur; prev = cur, cur = cur->next) {
        if (cur != io)
            continue;
        if (prev)
            prev->next = cur->next;
        else
            f->head = cur->next;
        if (f->tail == cur)
            f->tail = prev;
        cur->next = NULL;
        return true;
    }
    return false;
}

static void aio_finish(struct aio_state *st, struct uwdf_io *io, int64_t res)
{
    io->res = res;
    io->be_flags = AIO_ST_READY;
    aio_fifo_push(&st->ready, io);
}

/* Hand staged ops to the kernel, as many as the context has room for. */
static void aio_submit_staged(struct aio_state *st)
{
    while (st->staged.head && st->inflight < st->depth) {
        unsigned room = st->depth - st->inflight, n = 0;
        for (struct uwdf_io *io = st->staged.head; io && n < room; io = io->next)
            st->batch[n++] = aio_iocb(io);

        int r = io_submit(st->ctx, (long)n, st->batch);
        if (r > 0) {
            for (int i = 0; i < r; i++) {
                struct uwdf_io *io = aio_fifo_pop(&st->staged);
                io->be_flags = AIO_ST_KERNEL;
                st->inflight++;
            }
            continue; /* a short count means batch[r] failed: retrying shows why */
        }
        if (r == -EAGAIN && st->inflight > 0)
            break; /* context full: retried as completions free slots */
        if (r == 0)
            break;
        /* io_submit() rejected the first iocb itself (or, with nothing in
         * flight, cannot make room ever): it finishes with that error. */
        aio_finish(st, aio_fifo_pop(&st->staged), r);
    }
}

static void aio_drain_wake(struct aio_state *st)
{
    uint64_t v;
    while (read(st->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
}

static void aio_arm_wake(struct aio_state *st)
{
    if (st->wake_armed || st->wake_unsupported)
        return;
    struct iocb *p = &st->wake_iocb;
    io_prep_poll(p, st->wake_fd, POLLIN);
    p->data = NULL;
    int r = io_submit(st->ctx, 1, &p);
    if (r == 1)
        st->wake_armed = true;
    else if (r == -EINVAL || r == -EOPNOTSUPP)
        st->wake_unsupported = true;
    /* else (-EAGAIN): retried before the next wait */
}

static int aio_probe(void)
{
    io_context_t ctx = 0;
    int r = io_setup(1, &ctx);
    if (r < 0)
        return r;
    io_destroy(ctx);
    return 0;
}

static long aio_read_sysctl(const char *path)
{
    long v = -1;
    FILE *f = fopen(path, "re");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* io_setup() found no room even for a small context: say which limit, as
 * the errno (EAGAIN) alone does not. */
static void aio_log_exhausted(unsigned events)
{
    uwdf_log("libaio: no room for an AIO context of %u events: fs.aio-nr is %ld of fs.aio-max-nr %ld, "
             "shared by every process (raise it with sysctl, or close other AIO users)",
             events, aio_read_sysctl("/proc/sys/fs/aio-nr"), aio_read_sysctl("/proc/sys/fs/aio-max-nr"));
}

static void aio_free_state(struct aio_state *st)
{
    if (st->wake_fd >= 0)
        close(st->wake_fd);
    free(st->batch);
    free(st->events);
    free(st);
}

static int aio_open(struct uwdf_engine *e)
{
    size_t size = (sizeof(struct aio_state) + AIO_CACHELINE - 1) & ~(size_t)(AIO_CACHELINE - 1);
    struct aio_state *st = aligned_alloc(AIO_CACHELINE, size);
    unsigned depth = e->depth < AIO_MIN_DEPTH ? AIO_MIN_DEPTH : e->depth;
    int r;

    if (!st)
        return -ENOMEM;
    memset(st, 0, size);
    atomic_init(&st->wake_pending, false);
    if (depth > AIO_MAX_DEPTH)
        depth = AIO_MAX_DEPTH;

    /* Non-blocking so reap() can drain it without ever sleeping. */
    st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (st->wake_fd < 0) {
        r = -errno;
        st->wake_fd = -1;
        aio_free_state(st);
        return r;
    }

    /* fs.aio-max-nr is system wide: settle for a smaller context. */
    for (;;) {
        st->ctx = 0; /* io_setup() insists on a zeroed context */
        r = io_setup((int)(depth + AIO_WAKE_SLOTS), &st->ctx);
        if (r != -EAGAIN || depth / 2 < AIO_FLOOR_DEPTH)
            break;
        depth /= 2;
    }
    if (r == -EAGAIN)
        aio_log_exhausted(depth + AIO_WAKE_SLOTS);
    if (r < 0) {
        aio_free_state(st);
        return r;
    }
    st->depth = depth;
    st->nevents = depth + AIO_WAKE_SLOTS;
    st->batch = calloc(depth, sizeof(*st->batch));
    st->events = calloc(st->nevents, sizeof(*st->events));
    if (!st->batch || !st->events) {
        io_destroy(st->ctx);
        aio_free_state(st);
        return -ENOMEM;
    }
    struct aio_ring_hdr *ring = (struct aio_ring_hdr *)(void *)st->ctx;
    if (ring->magic == AIO_RING_MAGIC && ring->incompat_features == 0 &&
        ring->header_length == sizeof(*ring) && ring->nr > 0) {
        st->ring = ring;
        /* valgrind maps the ring as the events asked for; the kernel's is
         * larger (it doubles them and rounds up to pages). */
        UWDF_BE_MARK_DEFINED(ring, sizeof(*ring) + (size_t)ring->nr * sizeof(ring->events[0]));
    }
    aio_arm_wake(st);
    e->be = st;
    return 0;
}

static void aio_close(struct uwdf_engine *e)
{
    struct aio_state *st = e->be;
    if (!st)
        return;
    io_destroy(st->ctx); /* cancels the wake poll */
    aio_free_state(st);
    e->be = NULL;
}

static int aio_queue(struct uwdf_engine *e, struct uwdf_io *io, bool defer_submit)
{
    struct aio_state *st = e->be;
    struct iocb *cb = aio_iocb(io);
    bool rw = io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE;

    if (io->has_timeout)
        return -EOPNOTSUPP; /* no UWDF_BE_CAP_LINK_TIMEOUT */
    if (rw) {
        if (io->offset == UWDF_IO_OFFSET_CURRENT || io->offset > (uint64_t)LLONG_MAX ||
            io->iovcnt < 0)
            return -EINVAL;
        long long off = (long long)io->offset;
        if (io->iovcnt == 1) {
            if (io->op == UWDF_OP_READ)
                io_prep_pread(cb, io->fd, io->iov[0].iov_base, io->iov[0].iov_len, off);
            else
                io_prep_pwrite(cb, io->fd, io->iov[0].iov_base, io->iov[0].iov_len, off);
        } else if (io->op == UWDF_OP_READ) {
            io_prep_preadv(cb, io->fd, io->iov, io->iovcnt, off);
        } else {
            io_prep_pwritev(cb, io->fd, io->iov, io->iovcnt, off);
        }
        cb->aio_rw_flags = (unsigned)io->rw_flags; /* the kernel honours it for every rw cmd */
    } else if (io->op == UWDF_OP_FSYNC) {
        io_prep_fsync(cb, io->fd);
    } else if (io->op == UWDF_OP_FDATASYNC) {
        io_prep_fdsync(cb, io->fd);
    } else {
        return -EINVAL;
    }
    cb->data = io;

    io->res = 0;
    io->timed_out = false;
    io->be_flags = AIO_ST_STAGED;
    aio_fifo_push(&st->staged, io);
    if (!defer_submit)
        aio_submit_staged(st);
    return 0;
}

static void aio_flush(struct uwdf_engine *e)
{
    aio_submit_staged(e->be);
}

static int aio_cancel(struct uwdf_engine *e, struct uwdf_io *io)
{
    struct aio_state *st = e->be;
    struct io_event ev;
    int r;

    switch (io->be_flags) {
    case AIO_ST_STAGED:
        /* Never reached the kernel: finish it here. */
        if (!aio_fifo_remove(&st->staged, io))
            return -ENOENT;
        aio_finish(st, io, -ECANCELED);
        return 0;
    case AIO_ST_KERNEL:
        memset(&ev, 0, sizeof(ev));
        r = io_cancel(st->ctx, aio_iocb(io), &ev);
        if (r == -EINPROGRESS)
            return 0; /* the completion comes through io_getevents() */
        if (r == 0) {
            /* Older kernels hand the completion back here instead. */
            st->inflight--;
            aio_finish(st, io, (long)ev.res);
            return 0;
        }
        if (r == -EINVAL || r == -EAGAIN)
            return -EALREADY; /* not cancellable (plain file I/O) */
        return r;
    default:
        return -ENOENT;
    }
}

static void aio_handle_event(struct aio_state *st, const struct io_event *ev)
{
    if (ev->obj == &st->wake_iocb) {
        /* Drain, then clear the flag, then re-arm: a wake() that raced
         * with the drain saw the flag still set and was folded into this
         * one; any later wake() writes again and fires the new poll. */
        aio_drain_wake(st);
        atomic_store_explicit(&st->wake_pending, false, memory_order_seq_cst);
        st->wake_armed = false;
        st->woken = true;
        aio_arm_wake(st);
        return;
    }
    struct uwdf_io *io = ev->data;
    if (!io || io->be_flags != AIO_ST_KERNEL)
        return; /* already finished through io_cancel() */
    st->inflight--;
    /* res is unsigned long carrying a negative errno on failure. */
    aio_finish(st, io, (long)ev->res);
    /* memcheck sees a read's data arrive in io_getevents(), not through
     * the ring: tell it (harmless for io_getevents' events). */
    uwdf_be_mark_read_defined(io);
}

/* Take what the kernel has posted to the ring, up to max events, without a
 * system call. The engine thread is the ring's only reader: io_getevents()
 * (which moves head too) is only ever called from it. */
static int aio_ring_take(struct aio_state *st, struct io_event *ev, unsigned max)
{
    struct aio_ring_hdr *ring = st->ring;
    unsigned nr = ring->nr;
    unsigned head = __atomic_load_n(&ring->head, __ATOMIC_RELAXED);
    /* The kernel writes an event, then tail. */
    unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    unsigned n = 0;

    if (head >= nr || tail >= nr) {
        st->ring = NULL; /* not the layout this reads: the system call from now on */
        return 0;
    }
    while (head != tail && n < max) {
        ev[n++] = ring->events[head];
        head = head + 1 == nr ? 0 : head + 1;
    }
    /* The slots are the kernel's again once head passes them. */
    if (n)
        __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
    return (int)n;
}

static int aio_reap(struct uwdf_engine *e, struct uwdf_io **done, int max, int64_t timeout_ns)
{
    struct aio_state *st = e->be;
    int64_t deadline = timeout_ns > 0 ? aio_now_ns() + timeout_ns : 0;
    int fatal = 0;
    /* A completion batch: the kernel wakes the thread once for all of it. */
    unsigned wait_nr = e->reap_min > 1 ? e->reap_min : 1;

    if (max <= 0)
        return -EINVAL;
    aio_submit_staged(st);

    for (;;) {
        aio_arm_wake(st);
        if (!st->wake_armed &&
            atomic_exchange_explicit(&st->wake_pending, false, memory_order_seq_cst)) {
            aio_drain_wake(st);
            st->woken = true;
        }
        if (st->ring) {
            int got = aio_ring_take(st, st->events, st->nevents);
            for (int i = 0; i < got; i++)
                aio_handle_event(st, &st->events[i]);
            if (got)
                aio_submit_staged(st); /* completions freed slots for the backlog */
        }

        bool wait = !st->ready.head && !st->woken && timeout_ns != 0;
        int64_t slice = -1;
        if (wait && timeout_ns > 0) {
            slice = deadline - aio_now_ns();
            if (slice <= 0)
                wait = false;
        }
        if (wait && !st->wake_armed && (slice < 0 || slice > AIO_WAKE_FALLBACK_NS))
            slice = AIO_WAKE_FALLBACK_NS;
        if (wait && wait_nr > 1 && (slice < 0 || slice > UWDF_BE_BATCH_WAIT_SLICE_NS))
            slice = UWDF_BE_BATCH_WAIT_SLICE_NS;

        if (!wait && st->ring)
            break; /* the ring was just read: nothing to poll for */
        struct timespec ts = { 0, 0 }, *tsp = &ts;
        if (wait) {
            if (slice >= 0) {
                ts.tv_sec = slice / AIO_NS_PER_SEC;
                ts.tv_nsec = slice % AIO_NS_PER_SEC;
            } else {
                tsp = NULL;
            }
        }
        /* Take every event there is, not just `max`: the surplus waits on
         * the ready FIFO, and the context's slots free up sooner. */
        /* More than the context holds would only wait out the slice. */
        long min_nr = !wait ? 0 : wait_nr < st->inflight ? (long)wait_nr : st->inflight ? (long)st->inflight : 1;
        int r = io_getevents(st->ctx, min_nr, (long)st->nevents, st->events, tsp);
        if (r == -EINTR) /* a signal is not a wake: wait out the rest */
            r = 0;
        if (r < 0) {
            fatal = r;
            break;
        }
        for (int i = 0; i < r; i++)
            aio_handle_event(st, &st->events[i]);
        aio_submit_staged(st); /* completions freed slots for the backlog */

        if (!wait || st->ready.head || st->woken)
            break;
        if (timeout_ns > 0 && aio_now_ns() >= deadline)
            break;
    }

    int n = 0;
    struct uwdf_io *io;
    while (n < max && (io = aio_fifo_pop(&st->ready)) != NULL) {
        io->be_flags = AIO_ST_NONE;
        done[n++] = io;
    }
    st->woken = false;
    if (n == 0 && fatal)
        return fatal;
    return n;
}

static void aio_wake(struct uwdf_engine *e)
{
    struct aio_state *st = e->be;
    if (atomic_exchange_explicit(&st->wake_pending, true, memory_order_seq_cst))
        return;
    uint64_t one = 1;
    while (write(st->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

const struct uwdf_backend_ops uwdf_backend_libaio = {
    .name = "libaio",
    .caps = UWDF_BE_CAP_CANCEL,
    .probe = aio_probe,
    .open = aio_open,
    .close = aio_close,
    .queue = aio_queue,
    .flush = aio_flush,
    .cancel = aio_cancel,
    .reap = aio_reap,
    .wake = aio_wake,
};
