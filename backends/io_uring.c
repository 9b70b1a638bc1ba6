/* io_uring engine.
 *
 * Only the engine thread touches the ring (backend.h), so the ring is set
 * up single-issuer with deferred task work when the kernel allows it. Other
 * threads never submit: wake() writes an eventfd on which a read is kept
 * armed inside the ring, and that read's completion ends a blocked wait
 * (with DEFER_TASKRUN the completion is queued as local task work, and
 * queueing it wakes the waiter).
 *
 * Every SQE carries a tagged user_data (struct uwdf_io is 8-byte aligned,
 * so the low 3 bits of its address are free) that tells op, link-timeout,
 * cancel and wake completions apart. An op with a kernel timeout is an
 * IOSQE_IO_LINK pair (op + IORING_OP_LINK_TIMEOUT); it is finished only
 * when both CQEs are in, whichever comes first.
 *
 * Finished ops wait on a private FIFO (through io->next) until a reap()
 * has room for them, so a harvest never has to stop half way.
 *
 * One ring serves many files. Registered files live in a sparse table of
 * the ring, one slot per file that asked (register_file) while slots last.
 * Registered buffers live in a sparse buffer table shared by the ring's
 * files: each file has its own list of regions (a read or write uses a
 * region registered for its own file), and a buffer that several files
 * register (the same address and length) takes one entry, counted.
 *
 * Under valgrind (3.19 and older), a thread blocked in io_uring_enter keeps
 * valgrind's big lock, so the thread that would call wake() never runs
 * (liburing issue #657). There, and only there, reap() waits by polling
 * the ring and sleeping in nanosleep(), which valgrind knows blocks. */
#include "backend.h"
#include "backend_valgrind.h"
#include "io_uring.h"

#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum {
    URING_MIN_ENTRIES = 64,
    URING_MAX_ENTRIES = 4096,
    URING_CQ_PER_SQ = 2,        /* CQ ring entries per SQ ring entry */
    URING_PROBE_ENTRIES = 2,
    URING_LINKED_SQES = 2,      /* op + its IORING_OP_LINK_TIMEOUT */
    URING_SUBMIT_RETRIES = 64,  /* transient submit failures before giving up */
    URING_CACHELINE = 64,
    URING_FILE_SLOTS = 8192,       /* registered-file table (at most the NOFILE limit) */
    URING_BUFFER_SLOTS = 4096,     /* registered-buffer table (the kernel takes up to 16384) */
};

#define URING_NS_PER_SEC 1000000000LL
/* If the wake read cannot be armed, a wait is cut into slices this long so
 * wake() is still noticed through wake_pending. */
#define URING_WAKE_FALLBACK_NS (10LL * 1000 * 1000)
/* Poll period of the valgrind-only wait (see the top of the file). */
#define URING_POLL_WAIT_NS (1LL * 1000 * 1000)

/* user_data tags (low bits of an 8-byte aligned address). */
#define URING_TAG_MASK         UINT64_C(0x7)
#define URING_TAG_OP           UINT64_C(0x0)
#define URING_TAG_LINK_TIMEOUT UINT64_C(0x1)
#define URING_TAG_CANCEL       UINT64_C(0x2)
#define URING_TAG_WAKE         UINT64_C(0x3)

/* io->be_flags: which CQEs of an accepted op are still outstanding. */
#define URING_F_OP_PENDING 0x1u
#define URING_F_LT_PENDING 0x2u

static_assert(_Alignof(struct uwdf_io) > URING_TAG_MASK,
              "user_data tags need the low bits of struct uwdf_io addresses");

/* Per-op state kept in io->be_area. The timespec must stay valid until the
 * LINK_TIMEOUT SQE is submitted, which may be later than queue(). */
struct __attribute__((may_alias)) uring_io_priv {
    struct __kernel_timespec ts;
    int32_t lt_res; /* res of the link-timeout CQE */
};
static_assert(sizeof(struct uring_io_priv) <= sizeof(((struct uwdf_io *)0)->be_area),
              "uring_io_priv must fit in uwdf_io.be_area");

struct uring_setup_step {
    unsigned flags;
    const char *desc;
};

/* Fastest first; each step drops what an older kernel may reject. */
static const struct uring_setup_step uring_setup_ladder[] = {
    { IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
          IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      "SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|SUBMIT_ALL" },
    { IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      "SINGLE_ISSUER|COOP_TASKRUN|SUBMIT_ALL" },
    { IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, "COOP_TASKRUN|SUBMIT_ALL" },
    { 0, "none" },
};

struct uring_region {
    uintptr_t base;
    size_t len;
    unsigned index;
};

/* A file's registered buffers (uwdf_engine_file.be), sorted by address. */
struct uring_file_buffers {
    unsigned n;
    struct uring_region r[];
};

/* An entry of the ring's registered-buffer table. */
struct uring_buffer {
    uintptr_t base;
    size_t len;
    unsigned refs; /* files that registered it; 0: free */
};

struct uring_state {
    struct io_uring ring;
    const char *flags_desc;
    unsigned setup_flags;
    bool ring_fd_registered;
    bool poll_waits;   /* never block in io_uring_enter (valgrind) */
    int wake_fd;
    bool wake_armed;   /* the eventfd read is staged or in the kernel */
    bool wake_broken;  /* the read failed outright: use sliced waits */
    bool woken;        /* a wake completion was seen; the next reap returns */
    uint64_t wake_buf; /* target of the eventfd read */
    struct uwdf_io *ready_head, *ready_tail;
    /* Registered files: the sparse table's size (0: not set up), which
     * file holds each slot, and the free slots as a stack. */
    unsigned nslots;
    struct uwdf_engine_file **slot_file;
    unsigned *free_slots;
    unsigned nfree;
    bool slots_broken; /* the kernel has no sparse tables: files use their fds */
    /* Registered buffers: the sparse table (NULL: not set up). */
    struct uring_buffer *buffers;
    bool buffers_broken;
    /* Set by wake() on any thread; on its own cache line so those stores do
     * not bounce the line the engine thread works on. */
    alignas(URING_CACHELINE) atomic_bool wake_pending;
};

static inline struct uring_io_priv *uring_priv(struct uwdf_io *io)
{
    return (struct uring_io_priv *)(void *)io->be_area;
}

static inline uint64_t uring_udata(const void *p, uint64_t tag)
{
    return (uint64_t)(uintptr_t)p | tag;
}

static int64_t uring_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * URING_NS_PER_SEC + ts.tv_nsec;
}

static bool uring_transient(int err)
{
    return err == -EINTR || err == -EAGAIN || err == -EBUSY || err == -ETIME;
}

static unsigned uring_ring_entries(unsigned depth)
{
    unsigned n = URING_MIN_ENTRIES;
    while (n < depth && n < URING_MAX_ENTRIES)
        n <<= 1;
    return n;
}

static void uring_ready_push(struct uring_state *st, struct uwdf_io *io)
{
    io->next = NULL;
    if (st->ready_tail)
        st->ready_tail->next = io;
    else
        st->ready_head = io;
    st->ready_tail = io;
}

static void uring_maybe_finish(struct uring_state *st, struct uwdf_io *io)
{
    if (io->be_flags & (URING_F_OP_PENDING | URING_F_LT_PENDING))
        return;
    /* memcheck cannot see the kernel fill a read buffer through the ring
     * (it can for readv(2)): tell it, or every byte read looks uninitialised. */
    uwdf_be_mark_read_defined(io);
    if (io->has_timeout) {
        int32_t lt = uring_priv(io)->lt_res;
        /* -ETIME: the timer fired and the op was cancelled. -EALREADY: the
         * timer fired but the op was already running (io-wq); it was sent
         * an interrupt, so a -EINTR/-ECANCELED result is still our doing. */
        io->timed_out = lt == -ETIME ||
                        (lt == -EALREADY && (io->res == -EINTR || io->res == -ECANCELED));
    }
    uring_ready_push(st, io);
}

static void uring_handle_cqe(struct uring_state *st, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    struct uwdf_io *io = (struct uwdf_io *)(uintptr_t)(ud & ~URING_TAG_MASK);

    if (ud == LIBURING_UDATA_TIMEOUT) /* liburing's own, pre-EXT_ARG kernels */
        return;
    switch (ud & URING_TAG_MASK) {
    case URING_TAG_OP:
        if (!io || !(io->be_flags & URING_F_OP_PENDING))
            return;
        io->res = cqe->res;
        io->be_flags &= ~URING_F_OP_PENDING;
        uring_maybe_finish(st, io);
        return;
    case URING_TAG_LINK_TIMEOUT:
        if (!io || !(io->be_flags & URING_F_LT_PENDING))
            return;
        uring_priv(io)->lt_res = cqe->res;
        io->be_flags &= ~URING_F_LT_PENDING;
        uring_maybe_finish(st, io);
        return;
    case URING_TAG_WAKE:
        /* The read drained the eventfd. Clearing wake_pending only now
         * means any wake() since that read either wrote again (and the
         * re-armed read will see it) or was folded into this one. */
        st->wake_armed = false;
        /* Re-arming a read that fails at once would spin reap(). */
        if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -ECANCELED)
            st->wake_broken = true;
        st->woken = true;
        atomic_store_explicit(&st->wake_pending, false, memory_order_seq_cst);
        return;
    default: /* URING_TAG_CANCEL: the op's own CQE reports the outcome */
        return;
    }
}

/* Consume every CQE currently in the CQ ring in one pass. */
static unsigned uring_harvest(struct uring_state *st)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;

    io_uring_for_each_cqe(&st->ring, head, cqe) {
        uring_handle_cqe(st, cqe);
        seen++;
    }
    if (seen)
        io_uring_cq_advance(&st->ring, seen);
    return seen;
}

/* Submit staged SQEs. On CQ pressure (-EBUSY) or a transient kernel
 * shortage, pull completions into the ready list so the next try can
 * progress; nothing is dropped (unsubmitted SQEs stay in the SQ ring). */
static int uring_submit_how(struct uring_state *st, bool get_events)
{
    int r = get_events ? io_uring_submit_and_get_events(&st->ring) : io_uring_submit(&st->ring);
    if (r == -EBUSY || r == -EAGAIN) {
        (void)io_uring_get_events(&st->ring);
        uring_harvest(st);
    }
    return r;
}

static int uring_submit(struct uring_state *st)
{
    return uring_submit_how(st, false);
}

/* Make room for n consecutive SQEs (a linked pair must go to the kernel in
 * the same submission, so both slots are reserved up front). e: the engine
 * whose staged ops this hands over (its hand-over times), NULL when the
 * core has handed them over already. */
static int uring_reserve(struct uring_state *st, unsigned n, struct uwdf_engine *e)
{
    for (int tries = 0; io_uring_sq_space_left(&st->ring) < n; tries++) {
        if (tries >= URING_SUBMIT_RETRIES)
            return -EAGAIN;
        int r = uring_submit(st);
        if (e)
            uwdf_engine_handover_now(e);
        if (r < 0 && !uring_transient(r))
            return r;
    }
    return 0;
}

static void uring_arm_wake(struct uring_state *st)
{
    if (st->wake_armed || st->wake_broken || uring_reserve(st, 1, NULL) < 0)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    io_uring_prep_read(sqe, st->wake_fd, &st->wake_buf, sizeof(st->wake_buf), 0);
    io_uring_sqe_set_data64(sqe, uring_udata(st, URING_TAG_WAKE));
    st->wake_armed = true;
}

static int uring_probe(void)
{
    struct io_uring ring;
    int r = io_uring_queue_init(URING_PROBE_ENTRIES, &ring, 0);
    if (r < 0)
        return r;
    io_uring_queue_exit(&ring);
    return 0;
}

static int uring_open(struct uwdf_engine *e)
{
    unsigned entries = uring_ring_entries(e->depth);
    size_t size = (sizeof(struct uring_state) + URING_CACHELINE - 1) &
                  ~(size_t)(URING_CACHELINE - 1);
    struct uring_state *st = aligned_alloc(URING_CACHELINE, size);
    int r = -EINVAL;

    if (!st)
        return -ENOMEM;
    memset(st, 0, size);
    atomic_init(&st->wake_pending, false);
    /* Blocking eventfd: the ring waits for it to become readable (poll
     * driven), whereas on an O_NONBLOCK file some kernels complete the read
     * with -EAGAIN instead of waiting. */
    st->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (st->wake_fd < 0) {
        r = -errno;
        free(st);
        return r;
    }

    for (size_t i = 0; i < sizeof(uring_setup_ladder) / sizeof(uring_setup_ladder[0]); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = uring_setup_ladder[i].flags | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * URING_CQ_PER_SQ;
        r = io_uring_queue_init_params(entries, &st->ring, &p);
        if (r == 0) {
            st->setup_flags = uring_setup_ladder[i].flags;
            st->flags_desc = uring_setup_ladder[i].desc;
            break;
        }
        if (r != -EINVAL)
            break;
    }
    if (r < 0) {
        close(st->wake_fd);
        free(st);
        return r;
    }

    st->poll_waits = UWDF_BE_UNDER_VALGRIND();
    /* Saves an fget/fput per io_uring_enter; optional. */
    st->ring_fd_registered = io_uring_register_ring_fd(&st->ring) == 1;

    uring_arm_wake(st);
    (void)uring_submit(st);
    e->be = st;
    return 0;
}

static void uring_close(struct uwdf_engine *e)
{
    struct uring_state *st = e->be;
    if (!st)
        return;
    /* A registered ring fd pins the ring to this thread's io_uring context
     * until the thread exits; drop it so queue_exit really frees the ring. */
    if (st->ring_fd_registered)
        (void)io_uring_unregister_ring_fd(&st->ring);
    io_uring_queue_exit(&st->ring); /* also cancels the wake read; drops the registrations */
    close(st->wake_fd);
    free(st->slot_file);
    free(st->free_slots);
    free(st->buffers);
    free(st);
    e->be = NULL;
}

static void uring_count(atomic_ullong *counter)
{
    /* Single writer (the engine thread): no locked instruction needed. */
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* The buffer registered for the file that holds [p, p + len) whole, or -1. */
static int uring_find_region(const struct uring_file_buffers *fb, const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    unsigned lo = 0, hi = fb->n;
    while (lo < hi) { /* first region with base > a */
        unsigned mid = (lo + hi) / 2;
        if (fb->r[mid].base <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const struct uring_region *r = &fb->r[lo - 1];
    if (a - r->base > r->len || len > r->len - (a - r->base))
        return -1;
    return (int)r->index;
}

static void uring_prep_op(struct uring_state *st, struct io_uring_sqe *sqe, struct uwdf_io *io)
{
    /* UWDF_IO_OFFSET_CURRENT is spelled out although it equals (u64)-1,
     * the kernel's "use the file position" offset (IORING_FEAT_RW_CUR_POS). */
    uint64_t off = io->offset == UWDF_IO_OFFSET_CURRENT ? (uint64_t)-1 : io->offset;
    bool single = io->iovcnt == 1 && io->iov[0].iov_len <= UINT32_MAX;
    struct uwdf_engine_file *f = io->file;
    /* A file's registrations are its engine ring's: a sender's own ring
     * (run_here) has no tables, and so never uses them. */
    const struct uring_file_buffers *fb = f && st->buffers ? f->be : NULL;
    int fixed = single && fb && (io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE)
                    ? uring_find_region(fb, io->iov[0].iov_base, io->iov[0].iov_len)
                    : -1;
    int slot = f && st->nslots ? atomic_load_explicit(&f->slot, memory_order_relaxed) : -1;

    switch (io->op) {
    case UWDF_OP_READ:
        if (fixed >= 0)
            io_uring_prep_read_fixed(sqe, io->fd, io->iov[0].iov_base,
                                     (unsigned)io->iov[0].iov_len, off, fixed);
        else if (single)
            io_uring_prep_read(sqe, io->fd, io->iov[0].iov_base,
                               (unsigned)io->iov[0].iov_len, off);
        else
            io_uring_prep_readv(sqe, io->fd, io->iov, (unsigned)io->iovcnt, off);
        /* Same as prep_readv2: every rw opcode takes sqe->rw_flags. */
        sqe->rw_flags = io->rw_flags;
        break;
    case UWDF_OP_WRITE:
        if (fixed >= 0)
            io_uring_prep_write_fixed(sqe, io->fd, io->iov[0].iov_base,
                                      (unsigned)io->iov[0].iov_len, off, fixed);
        else if (single)
            io_uring_prep_write(sqe, io->fd, io->iov[0].iov_base,
                                (unsigned)io->iov[0].iov_len, off);
        else
            io_uring_prep_writev(sqe, io->fd, io->iov, (unsigned)io->iovcnt, off);
        sqe->rw_flags = io->rw_flags;
        break;
    case UWDF_OP_FSYNC:
        io_uring_prep_fsync(sqe, io->fd, 0);
        break;
    case UWDF_OP_FDATASYNC:
        io_uring_prep_fsync(sqe, io->fd, IORING_FSYNC_DATASYNC);
        break;
    default:
        break;
    }
    if (fixed >= 0)
        uring_count(&f->fixed_buffer_ios);
    if (slot >= 0) {
        sqe->fd = slot; /* index in the registered file table; after prep, which sets fd */
        sqe->flags |= IOSQE_FIXED_FILE;
        uring_count(&f->fixed_file_ios);
    }
    io_uring_sqe_set_data64(sqe, uring_udata(io, URING_TAG_OP));
}

static int uring_region_cmp(const void *a, const void *b)
{
    const struct uring_region *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

/* Set up the registered-file table at the first file that wants a slot:
 * as large as the kernel allows now (it refuses a table larger than the
 * soft NOFILE limit, and liburing would raise the limit itself to make
 * room), at most URING_FILE_SLOTS. It never grows: replacing a table means
 * unregistering the old one, which older kernels do only once every
 * request is out of the ring, and the wake read never is. */
static int uring_setup_slots(struct uring_state *st)
{
    struct rlimit rl;
    unsigned n = URING_FILE_SLOTS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
        n = (unsigned)rl.rlim_cur;
    if (st->slots_broken)
        return -EOPNOTSUPP;
    if (n == 0)
        return -ENOSPC;
    st->slot_file = calloc(n, sizeof(*st->slot_file));
    st->free_slots = malloc(sizeof(*st->free_slots) * n);
    int r = -ENOMEM;
    if (st->slot_file && st->free_slots)
        r = io_uring_register_files_sparse(&st->ring, n);
    if (r < 0) {
        free(st->slot_file);
        free(st->free_slots);
        st->slot_file = NULL;
        st->free_slots = NULL;
        if (r == -EINVAL) {
            st->slots_broken = true; /* before 5.19: no sparse tables, files use their fds */
            return -EOPNOTSUPP;
        }
        return r;
    }
    for (unsigned i = 0; i < n; i++)
        st->free_slots[i] = n - 1 - i; /* slot 0 on top */
    st->nfree = n;
    st->nslots = n;
    return 0;
}

static int uring_register_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct uring_state *st = e->be;
    if (atomic_load_explicit(&f->slot, memory_order_relaxed) >= 0)
        return -EBUSY;
    if (!st->nslots) {
        int r = uring_setup_slots(st);
        if (r < 0)
            return r;
    }
    if (st->nfree == 0)
        return -ENOSPC;
    unsigned slot = st->free_slots[--st->nfree];
    int r = io_uring_register_files_update(&st->ring, slot, &f->fd, 1);
    if (r < 0) {
        st->free_slots[st->nfree++] = slot;
        return r;
    }
    st->slot_file[slot] = f;
    atomic_store_explicit(&f->slot, (int)slot, memory_order_relaxed);
    return 0;
}

/* Put one buffer in the table entry idx (a NULL base empties it). */
static int uring_set_buffer(struct uring_state *st, unsigned idx, const struct iovec *iov)
{
    int r = io_uring_register_buffers_update_tag(&st->ring, idx, iov, NULL, 1);
    return r < 0 ? r : 0;
}

static void uring_unref_buffer(struct uring_state *st, unsigned idx)
{
    struct uring_buffer *b = &st->buffers[idx];
    if (--b->refs > 0)
        return;
    const struct iovec none = { NULL, 0 };
    /* Emptying an entry of a sparse table does not fail once it was set. */
    (void)uring_set_buffer(st, idx, &none);
    b->base = 0;
    b->len = 0;
}

/* The table entry holding iov for this ring: the one already registered
 * with the same address and length, or a free one registered now. */
static int uring_ref_buffer(struct uring_state *st, const struct iovec *iov)
{
    int free_idx = -1;
    for (unsigned i = 0; i < URING_BUFFER_SLOTS; i++) {
        struct uring_buffer *b = &st->buffers[i];
        if (b->refs && b->base == (uintptr_t)iov->iov_base && b->len == iov->iov_len) {
            b->refs++;
            return (int)i;
        }
        if (!b->refs && free_idx < 0)
            free_idx = (int)i;
    }
    if (free_idx < 0)
        return -ENOSPC;
    int r = uring_set_buffer(st, (unsigned)free_idx, iov);
    if (r < 0)
        return r;
    st->buffers[free_idx] = (struct uring_buffer){ (uintptr_t)iov->iov_base, iov->iov_len, 1 };
    return free_idx;
}

static int uring_register_buffers(struct uwdf_engine *e, struct uwdf_engine_file *f, const struct iovec *iov,
                                  unsigned n)
{
    struct uring_state *st = e->be;
    if (f->be)
        return -EBUSY;
    if (n == 0 || n > URING_BUFFER_SLOTS)
        return -EINVAL;
    if (!st->buffers) {
        if (st->buffers_broken)
            return -EOPNOTSUPP;
        int r = io_uring_register_buffers_sparse(&st->ring, URING_BUFFER_SLOTS);
        if (r < 0) {
            /* Before 5.19 there are no sparse tables: nothing to register. */
            st->buffers_broken = r == -EINVAL;
            return st->buffers_broken ? -EOPNOTSUPP : r;
        }
        st->buffers = calloc(URING_BUFFER_SLOTS, sizeof(*st->buffers));
        if (!st->buffers) {
            (void)io_uring_unregister_buffers(&st->ring);
            return -ENOMEM;
        }
    }
    struct uring_file_buffers *fb = malloc(sizeof(*fb) + sizeof(fb->r[0]) * n);
    if (!fb)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        int idx = uring_ref_buffer(st, &iov[i]);
        if (idx < 0) {
            while (i-- > 0)
                uring_unref_buffer(st, fb->r[i].index);
            free(fb);
            return idx;
        }
        fb->r[i] = (struct uring_region){ (uintptr_t)iov[i].iov_base, iov[i].iov_len, (unsigned)idx };
    }
    fb->n = n;
    qsort(fb->r, n, sizeof(fb->r[0]), uring_region_cmp);
    f->be = fb;
    atomic_store_explicit(&f->nbuffers, n, memory_order_relaxed);
    return 0;
}

static void uring_unregister_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct uring_state *st = e->be;
    int slot = atomic_load_explicit(&f->slot, memory_order_relaxed);
    if (slot >= 0) {
        int none = -1;
        (void)io_uring_register_files_update(&st->ring, (unsigned)slot, &none, 1);
        st->slot_file[slot] = NULL;
        st->free_slots[st->nfree++] = (unsigned)slot;
        atomic_store_explicit(&f->slot, -1, memory_order_relaxed);
    }
    struct uring_file_buffers *fb = f->be;
    if (fb) {
        for (unsigned i = 0; i < fb->n; i++)
            uring_unref_buffer(st, fb->r[i].index);
        free(fb);
        f->be = NULL;
        atomic_store_explicit(&f->nbuffers, 0, memory_order_relaxed);
    }
}

static int uring_queue(struct uwdf_engine *e, struct uwdf_io *io, bool defer_submit)
{
    struct uring_state *st = e->be;
    bool rw = io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE;

    if (!rw && io->op != UWDF_OP_FSYNC && io->op != UWDF_OP_FDATASYNC)
        return -EINVAL;
    if (rw && io->iovcnt < 0)
        return -EINVAL;

    int r = uring_reserve(st, io->has_timeout ? URING_LINKED_SQES : 1, e);
    if (r < 0)
        return r;

    io->res = 0;
    io->timed_out = false;
    io->next = NULL;
    io->be_flags = URING_F_OP_PENDING;

    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    uring_prep_op(st, sqe, io);
    if (io->has_timeout) {
        struct uring_io_priv *priv = uring_priv(io);
        unsigned tflags = io->timeout_abs ? IORING_TIMEOUT_ABS | IORING_TIMEOUT_REALTIME : 0;

        priv->ts.tv_sec = io->timeout_sec;
        priv->ts.tv_nsec = io->timeout_nsec;
        priv->lt_res = 0;
        sqe->flags |= IOSQE_IO_LINK; /* after prep: prep clears sqe->flags */

        struct io_uring_sqe *lt = io_uring_get_sqe(&st->ring);
        io_uring_prep_link_timeout(lt, &priv->ts, tflags);
        io_uring_sqe_set_data64(lt, uring_udata(io, URING_TAG_LINK_TIMEOUT));
        io->be_flags |= URING_F_LT_PENDING;
    }
    /* A failed submit leaves the SQEs staged; reap() retries them. */
    if (!defer_submit)
        (void)uring_submit(st);
    return 0;
}

static void uring_flush(struct uwdf_engine *e)
{
    struct uring_state *st = e->be;
    for (int tries = 0; tries < URING_SUBMIT_RETRIES && io_uring_sq_ready(&st->ring); tries++) {
        /* Also posts what has finished meanwhile (DEFER_TASKRUN's task
         * work): the reap that follows a flush (the core's, for ops with
         * hand-over times) then finds it in the ring without entering the
         * kernel a second time. */
        int r = uring_submit_how(st, true);
        if (r < 0 && !uring_transient(r))
            return; /* still staged; reap() will report the error */
    }
}

static int uring_cancel(struct uwdf_engine *e, struct uwdf_io *io)
{
    struct uring_state *st = e->be;

    if (!(io->be_flags & URING_F_OP_PENDING))
        return -ENOENT; /* finished, or waiting only for its timeout CQE */
    int r = uring_reserve(st, 1, e);
    if (r < 0)
        return r;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    io_uring_prep_cancel64(sqe, uring_udata(io, URING_TAG_OP), 0);
    io_uring_sqe_set_data64(sqe, uring_udata(io, URING_TAG_CANCEL));
    (void)uring_submit(st);
    return 0;
}

static int uring_reap(struct uwdf_engine *e, struct uwdf_io **done, int max, int64_t timeout_ns)
{
    struct uring_state *st = e->be;
    int64_t deadline = timeout_ns > 0 ? uring_now_ns() + timeout_ns : 0;
    int fatal = 0;
    /* A completion batch: the kernel wakes the thread once for all of it. */
    unsigned wait_nr = e->reap_min > 1 ? e->reap_min : 1;

    if (max <= 0)
        return -EINVAL;

    for (;;) {
        uring_arm_wake(st);
        if (!st->wake_armed &&
            atomic_exchange_explicit(&st->wake_pending, false, memory_order_seq_cst))
            st->woken = true;

        bool wait = !st->ready_head && !st->woken && timeout_ns != 0;
        int64_t slice = -1;
        int r;

        if (wait && timeout_ns > 0) {
            slice = deadline - uring_now_ns();
            if (slice <= 0)
                wait = false;
        }
        if (wait && !st->wake_armed && (slice < 0 || slice > URING_WAKE_FALLBACK_NS))
            slice = URING_WAKE_FALLBACK_NS;
        if (wait && wait_nr > 1 && (slice < 0 || slice > UWDF_BE_BATCH_WAIT_SLICE_NS))
            slice = UWDF_BE_BATCH_WAIT_SLICE_NS;
        if (wait && st->poll_waits && (slice < 0 || slice > URING_POLL_WAIT_NS))
            slice = URING_POLL_WAIT_NS;

        if (!wait || st->poll_waits) {
            /* Submits and, with DEFER_TASKRUN/COOP_TASKRUN, runs the task
             * work that posts finished CQEs; never blocks. */
            r = io_uring_submit_and_get_events(&st->ring);
            if (wait && uring_harvest(st) == 0) {
                struct timespec ts = { 0, (long)slice };
                nanosleep(&ts, NULL);
            }
        } else {
            struct __kernel_timespec ts, *tsp = NULL;
            struct io_uring_cqe *cqe;
            if (slice >= 0) {
                ts.tv_sec = slice / URING_NS_PER_SEC;
                ts.tv_nsec = slice % URING_NS_PER_SEC;
                tsp = &ts;
            }
            /* May return a positive count in liburing 2.3; only < 0 matters. */
            r = io_uring_submit_and_wait_timeout(&st->ring, &cqe, wait_nr, tsp, NULL);
        }
        uring_harvest(st);

        if (r < 0 && !uring_transient(r)) {
            fatal = r;
            break;
        }
        if (!wait || st->ready_head || st->woken)
            break;
        /* Only internal CQEs (cancel, half of a linked pair), a slice
         * ended, or a signal (-EINTR is not a wake): keep waiting until
         * the caller's deadline. */
        if (timeout_ns > 0 && uring_now_ns() >= deadline)
            break;
    }

    int n = 0;
    while (n < max && st->ready_head) {
        struct uwdf_io *io = st->ready_head;
        st->ready_head = io->next;
        io->next = NULL;
        done[n++] = io;
    }
    if (!st->ready_head)
        st->ready_tail = NULL;
    st->woken = false;
    if (n == 0 && fatal)
        return fatal;
    return n;
}

static void uring_wake(struct uwdf_engine *e)
{
    struct uring_state *st = e->be;
    /* One eventfd write per batch of wakes: later callers see the flag set
     * until the engine thread has consumed the read completion. */
    if (atomic_exchange_explicit(&st->wake_pending, true, memory_order_seq_cst))
        return;
    uint64_t one = 1;
    while (write(st->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* run_here: a small ring per sending thread, created at its first
 * synchronous send and closed when the thread exits. Only that thread
 * submits to it and waits on it, so it takes the same single-issuer flags
 * as an engine's ring. */
enum { URING_HERE_DEPTH = 4 };

struct uring_here {
    struct uwdf_engine eng; /* be: the ring's uring_state; no engine thread */
    pid_t pid;              /* process that made the ring (fork: a child makes its own) */
    pid_t failed_pid;       /* set-up failed in this process: do not retry per I/O */
};

static __thread struct uring_here uring_here_tls;
static pthread_key_t uring_here_key;
static pthread_once_t uring_here_once = PTHREAD_ONCE_INIT;

static void uring_here_exit(void *p)
{
    struct uring_here *h = p;
    if (h->eng.be)
        uring_close(&h->eng);
}

static void uring_here_key_init(void)
{
    (void)pthread_key_create(&uring_here_key, uring_here_exit);
}

static int uring_run_here(struct uwdf_io *io)
{
    struct uring_here *h = &uring_here_tls;
    pid_t pid = getpid();

    if (h->eng.be && h->pid != pid)
        uring_close(&h->eng); /* inherited across fork(): the parent's task owns it */
    if (!h->eng.be) {
        if (h->failed_pid == pid)
            return -ENOTSUP;
        (void)pthread_once(&uring_here_once, uring_here_key_init);
        h->eng.depth = URING_HERE_DEPTH;
        h->eng.ops = &uwdf_backend_io_uring;
        int r = uring_open(&h->eng);
        if (r < 0) {
            h->failed_pid = pid;
            return r;
        }
        h->pid = pid;
        (void)pthread_setspecific(uring_here_key, h);
    }
    /* queue() fails only before staging anything. */
    int r = uring_queue(&h->eng, io, false);
    if (r < 0)
        return r;
    for (;;) {
        struct uwdf_io *done;
        r = uring_reap(&h->eng, &done, 1, -1);
        if (r == 1)
            return 0; /* the only op this ring ever holds */
        if (r < 0) {
            /* Staged or in flight: it cannot be abandoned; as the engine
             * thread does, keep trying. */
            struct timespec ts = { 0, URING_POLL_WAIT_NS };
            nanosleep(&ts, NULL);
        }
    }
}

const char *uwdf_io_uring_setup_flags_desc(const struct uwdf_engine *e)
{
    if (!e || e->ops != &uwdf_backend_io_uring || !e->be)
        return NULL;
    return ((const struct uring_state *)e->be)->flags_desc;
}

unsigned uwdf_io_uring_setup_flags(const struct uwdf_engine *e)
{
    if (!e || e->ops != &uwdf_backend_io_uring || !e->be)
        return 0;
    return ((const struct uring_state *)e->be)->setup_flags;
}

const struct uwdf_backend_ops uwdf_backend_io_uring = {
    .name = "io_uring",
    .caps = UWDF_BE_CAP_LINK_TIMEOUT | UWDF_BE_CAP_CANCEL | UWDF_BE_CAP_STREAM_FILES | UWDF_BE_CAP_REAP_SUBMITS,
    .probe = uring_probe,
    .open = uring_open,
    .close = uring_close,
    .queue = uring_queue,
    .flush = uring_flush,
    .cancel = uring_cancel,
    .reap = uring_reap,
    .wake = uring_wake,
    .register_file = uring_register_file,
    .register_buffers = uring_register_buffers,
    .unregister_file = uring_unregister_file,
    .run_here = uring_run_here,
};
