/* An engine: one backend instance and its completion thread, serving the
 * files of the targets the pool (lib/engine_pool.c) attached to it. The
 * thread owns the kernel ring/context; other threads hand their submissions,
 * cancels and framework completions over through two short lists. Sends
 * issued by completion routines on the thread go straight into the backend
 * (whichever of the engine's files they are for) and are submitted
 * together at the end of the batch.
 *
 * A file is used through its descriptor until it has sent
 * ENGINE_SLOT_AFTER_OPS ops; then the engine thread gives it a
 * registered-file slot where the backend has them. Registering costs the
 * engine thread one system call, but dropping the slot when the target
 * closes costs the closing thread a round trip to the engine thread (16-24
 * us at a load of 8; 2.5 us is the whole close without it), which a file
 * that is opened, read a few times and closed should not pay. An op on
 * the descriptor costs about 0.5 us more than on a slot with a thousand
 * files on the ring (each file's lookup misses the cache), so a file that
 * keeps doing I/O should not wait long for its slot either: after 64 ops
 * a 3-second run over 1,000 files made a third of its I/Os through the
 * descriptors (docs/engines.md, "Registered files"). */
#include "internal.h"
#include "tsc_clock.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* Finished ops handed out per round. At 64, a deep queue's completions
 * waited for a second system call per round (the rest of a burst, behind
 * the resends of the first 64); as many as fio's best batching reaps at
 * QD128 (iodepth_batch_complete_max=QD) fit here. */
#define ENGINE_REAP_BATCH 256
#define ENGINE_SLOT_AFTER_OPS 8

enum engine_cmd {
    ENGINE_CMD_SUBMIT = 1,
    ENGINE_CMD_COMPLETE, /* res preset by the framework */
    ENGINE_CMD_CALL,     /* run a function on the engine thread (struct engine_call) */
};

/* A synchronous call into the engine thread (kernel registration must come
 * from the ring's single issuer); the io only carries it through the
 * incoming list. */
struct engine_call {
    struct uwdf_io io;
    int (*fn)(struct uwdf_engine *e, void *arg);
    void *arg;
    int result;
    struct uwdf_sync_wait done;
};

enum engine_where {
    IO_NOWHERE = 0,
    IO_INCOMING,
    IO_IN_BACKEND,
    IO_STALLED,
    IO_DONE,
    IO_HERE, /* run by its sender (run_here): a cancel finds nothing to stop */
    IO_DEFERRED, /* failed before the backend took it; completes next loop */
    IO_HELD,     /* finished, held for its file's completion batch */
};

struct uwdf_engine_core {
    struct uwdf_engine pub;
    pthread_t thread;
    pthread_mutex_t lock; /* guards the incoming lists and start-up */
    pthread_cond_t started_cond;
    bool started;
    int open_err;
    atomic_bool stopping;
    atomic_bool has_incoming;
    struct uwdf_io *in_head, *in_tail;
    struct uwdf_io *cancel_head, *cancel_tail;
    /* engine thread only */
    struct uwdf_io *stall_head, *stall_tail;
    struct uwdf_io *later_head, *later_tail; /* IO_DEFERRED */
    long inflight;
    /* Files with batching (engine thread): their finished ops held for a
     * completion batch (held over all of them), and a batch due that the
     * next loop must deliver without waiting. */
    struct uwdf_engine_batch *batched;
    long held;
    bool batch_due;
    /* engine_deliver runs a completion routine, and a batched file's
     * SubmitBatch was reached inside it: its ops go to the kernel when the
     * routine has returned. */
    bool delivering;
    bool batch_flush_due;
    bool releasing; /* engine_batch_release runs: a detach leaves the unlinking to it */
    /* Ops of files with hand-over times staged since the last hand-over
     * to the kernel (engine thread; linked through core_next, which an op
     * in the backend does not otherwise use). */
    struct uwdf_io *handover_head;
    struct uwdf_tsc_clock handover_clock; /* their times' clock */
    /* uwdf_engine_destroy ran on this engine's own thread: the thread is
     * detached and frees the engine when it ends. */
    bool self_reap;
    /* The submit policy (UwdfSetEngineSubmitBatch), read once per loop,
     * and the ops staged since the last hand-over while it is set
     * (engine thread). */
    unsigned submit_batch;
    unsigned staged;
};

/* A file's batching (struct uwdf_engine_batching), engine thread only. */
struct uwdf_engine_batch {
    struct uwdf_engine_batch *next;
    unsigned submit, complete_min, complete_max;
    unsigned staged;   /* queued since the last hand-over to the kernel */
    unsigned inflight; /* in the backend */
    unsigned held;     /* finished, waiting for the batch */
    struct uwdf_io *held_head, *held_tail;
    bool gone;         /* detached while engine_batch_release ran */
    uint64_t submits[UWDF_ENGINE_BATCH_BUCKETS];
    uint64_t completions[UWDF_ENGINE_BATCH_BUCKETS];
};

__thread struct uwdf_engine *uwdf_tls_engine;

/* ---- the submit policy (UwdfSetEngineSubmitBatch) ----
 * Ops per hand-over to the kernel for every engine, read by each engine
 * once per loop: 0 (the default) hands what a loop staged over at its end,
 * in one system call with the wait; N hands staged ops over whenever N are
 * staged. Some devices answer sooner when requests arrive one by one
 * (docs/performance.md, "Many files beside fio"), at a system call per
 * op. */
static atomic_uint engine_submit_batch;
static unsigned engine_submit_batch_env; /* UWDF_SUBMIT_BATCH, read once */
static pthread_once_t engine_submit_batch_once = PTHREAD_ONCE_INIT;

static void engine_submit_batch_init(void)
{
    const char *env = uwdf_env(UWDF_ENV_SUBMIT_BATCH);
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (*end == '\0' && v <= UWDF_MAX_ENGINE_SUBMIT_BATCH)
            engine_submit_batch_env = (unsigned)v;
        else
            uwdf_log("UWDF_SUBMIT_BATCH='%s' ignored: expected 0..%u operations", env,
                     UWDF_MAX_ENGINE_SUBMIT_BATCH);
    }
    atomic_store_explicit(&engine_submit_batch, engine_submit_batch_env, memory_order_relaxed);
}

NTSTATUS UwdfSetEngineSubmitBatch(ULONG Operations)
{
    if (Operations > UWDF_MAX_ENGINE_SUBMIT_BATCH)
        return STATUS_INVALID_PARAMETER;
    pthread_once(&engine_submit_batch_once, engine_submit_batch_init);
    atomic_store_explicit(&engine_submit_batch, Operations ? Operations : engine_submit_batch_env,
                          memory_order_relaxed);
    return STATUS_SUCCESS;
}

ULONG UwdfGetEngineSubmitBatch(void)
{
    pthread_once(&engine_submit_batch_once, engine_submit_batch_init);
    return atomic_load_explicit(&engine_submit_batch, memory_order_relaxed);
}

static struct uwdf_engine_core *core_of(struct uwdf_engine *e)
{
    return (struct uwdf_engine_core *)e;
}

static struct uwdf_engine_attachment *attachment_of(struct uwdf_engine_file *f)
{
    return uwdf_container_of(f, struct uwdf_engine_attachment, file);
}

/* Single writer (the engine thread): a plain increment, readable from any
 * thread. */
static inline void engine_count(atomic_ullong *counter, uint64_t value)
{
    atomic_store_explicit(counter, value, memory_order_relaxed);
}

const char *uwdf_engine_name(const struct uwdf_engine *e)
{
    return e->ops->name;
}

unsigned uwdf_engine_caps(const struct uwdf_engine *e)
{
    return e->ops->caps;
}

/* Append io to a FIFO linked through core_next (incoming, stalled, deferred). */
static inline void engine_fifo_push(struct uwdf_io **head, struct uwdf_io **tail, struct uwdf_io *io)
{
    io->core_next = NULL;
    if (*tail)
        (*tail)->core_next = io;
    else
        *head = io;
    *tail = io;
}

static bool engine_next_piece(struct uwdf_engine_core *c, struct uwdf_io *io);
static void engine_flush_staged(struct uwdf_engine_core *c);

/* An op is over: its request completes, or the next piece of a pieces op
 * (lib/engine_pieces.c) goes to the backend in its place. */
static inline __attribute__((always_inline)) void engine_io_done(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    io->core_where = IO_DONE;
    if (UWDF_UNLIKELY(io->core_piecing) && engine_next_piece(c, io))
        return;
    uwdf_request_io_done(io);
}

static void engine_deliver(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    unsigned stall_ms = atomic_load_explicit(&uwdf_fault_stall_ms, memory_order_relaxed);
    if (stall_ms && io->core_where != IO_STALLED && io->core_cancel_early) {
        /* A cancel or timeout reached the op while the kernel still had it
         * (engine_do_cancel). The buffer is back now, so the injector
         * honours that cancel as if it had come a moment later; without
         * this the request sat out the whole stall and reported success
         * although its timeout had long expired. */
        io->res = -ECANCELED;
    } else if (stall_ms && io->core_where != IO_STALLED) {
        io->core_where = IO_STALLED;
        io->core_release_ns = uwdf_mono_ns() + (int64_t)stall_ms * 1000000; /* the hand-over time is lost */
        engine_fifo_push(&c->stall_head, &c->stall_tail, io);
        return;
    }
    bool nested = c->delivering;
    c->delivering = true;
    engine_io_done(c, io);
    c->delivering = nested;
    if (UWDF_UNLIKELY(c->batch_flush_due) && !nested)
        engine_flush_staged(c);
}

static void engine_stall_remove(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    struct uwdf_io *prev = NULL;
    for (struct uwdf_io *p = c->stall_head; p; prev = p, p = p->core_next) {
        if (p != io)
            continue;
        if (prev)
            prev->core_next = p->core_next;
        else
            c->stall_head = p->core_next;
        if (c->stall_tail == p)
            c->stall_tail = prev;
        return;
    }
}

static void engine_release_stalls(struct uwdf_engine_core *c)
{
    if (!c->stall_head)
        return; /* the usual case: no clock read per loop */
    int64_t now = uwdf_mono_ns();
    while (c->stall_head && c->stall_head->core_release_ns <= now) {
        struct uwdf_io *io = c->stall_head;
        c->stall_head = io->core_next;
        if (!c->stall_head)
            c->stall_tail = NULL;
        io->core_release_ns = 0;
        engine_deliver(c, io);
    }
}

/* An op that ends before the backend has it completes in the next loop,
 * never inside the send that queued it: a completion routine's resend must
 * not complete while that routine runs (it would recurse, and it holds what
 * the routine's completion lent it: struct uwdf_completion_scope). */
static void engine_defer(struct uwdf_engine_core *c, struct uwdf_io *io, int64_t res)
{
    io->res = res;
    io->timed_out = false;
    io->core_where = IO_DEFERRED;
    engine_fifo_push(&c->later_head, &c->later_tail, io);
}

static void engine_deliver_deferred(struct uwdf_engine_core *c)
{
    /* Only those deferred so far: their routines may defer more. */
    struct uwdf_io *io = c->later_head;
    c->later_head = c->later_tail = NULL;
    while (io) {
        struct uwdf_io *next = io->core_next;
        engine_deliver(c, io);
        io = next;
    }
}

/* ---- hand-over times (uwdf_engine_set_handover_times) ---- */

/* The staged ops of files with hand-over times went to the kernel in the
 * system call that just returned: one clock read for all of them, after
 * it, where fio's io_uring and libaio engines take their issue time (the
 * submission's own work, a few microseconds per op on a block device, is
 * then not part of the completion latency, for either tool). */
static __attribute__((noinline)) void engine_handover_stamp(struct uwdf_engine_core *c)
{
    int64_t now = uwdf_tsc_clock_ns(&c->handover_clock); /* per I/O at QD1: a rdtsc */
    struct uwdf_io *io = c->handover_head;
    c->handover_head = NULL;
    while (io) {
        struct uwdf_io *next = io->core_next;
        io->core_next = NULL;
        io->core_release_ns = now;
        io = next;
    }
}

/* Right after what was staged was handed to the kernel (a flush). */
static inline __attribute__((always_inline)) void engine_handover(struct uwdf_engine_core *c)
{
    if (UWDF_UNLIKELY(c->handover_head != NULL))
        engine_handover_stamp(c);
}

/* Hand what is staged to the kernel, then note the hand-over. */
static inline __attribute__((always_inline)) void engine_flush(struct uwdf_engine_core *c)
{
    c->pub.ops->flush(&c->pub);
    engine_handover(c);
}

void uwdf_engine_handover_now(struct uwdf_engine *e)
{
    if (e->core) /* NULL: a sender's own ring (run_here), not an engine */
        engine_handover(e->core);
}

/* A file whose queueing needs engine_queue_hooked. */
static void engine_hook_update(struct uwdf_engine_attachment *a)
{
    a->queue_hook = a->want_slot || a->batch != NULL || a->handover_times;
}

/* ---- batching (uwdf_engine_set_batching) ---- */

static unsigned engine_batch_bucket(unsigned n)
{
    unsigned b = n <= 1 ? 0 : 32 - (unsigned)__builtin_clz(n - 1);
    return b < UWDF_ENGINE_BATCH_BUCKETS ? b : UWDF_ENGINE_BATCH_BUCKETS - 1;
}

static void engine_batch_count(uint64_t *hist, unsigned n)
{
    hist[engine_batch_bucket(n)]++;
}

/* What the core hands to the kernel now makes one submission of each
 * batched file's staged ops. */
static void engine_batch_count_submits(struct uwdf_engine_core *c)
{
    for (struct uwdf_engine_batch *b = c->batched; b; b = b->next) {
        if (b->staged) {
            engine_batch_count(b->submits, b->staged);
            b->staged = 0;
        }
    }
}

/* Hand everything staged to the kernel now, rather than at the loop's end. */
static void engine_flush_staged(struct uwdf_engine_core *c)
{
    c->batch_flush_due = false;
    if (UWDF_UNLIKELY(c->batched != NULL))
        engine_batch_count_submits(c);
    engine_flush(c);
    c->staged = 0;
}

static __attribute__((noinline)) void engine_batch_queued(struct uwdf_engine_core *c, struct uwdf_io *io,
                                                          struct uwdf_engine_batch *b)
{
    io->core_batched = true; /* until it is reaped (engine_batch_hold) */
    b->inflight++;
    if (++b->staged < b->submit || !b->submit)
        return;
    /* Inside a completion routine the submitting call waits until the
     * routine has returned (engine_deliver). A loop device's worker, woken
     * on this CPU by the submission, runs only once this thread sleeps, so
     * a submission from inside the routine made the routine's way back
     * part of the device's latency (docs/performance.md, "Tail latency:
     * where a QD1 read waits"). */
    if (c->delivering)
        c->batch_flush_due = true;
    else
        engine_flush_staged(c);
}

/* How many of a file's finished ops make its batch due: its minimum, or
 * all it has, whichever is fewer, so nothing waits for ops never sent. */
static unsigned engine_batch_need(const struct uwdf_engine_batch *b)
{
    if (b->complete_min <= 1)
        return 1;
    unsigned all = b->held + b->inflight;
    return b->complete_min < all ? b->complete_min : all;
}

/* The file's held completions make a batch its routines may run now. */
static bool engine_batch_due(const struct uwdf_engine_batch *b)
{
    return b->held && b->held >= engine_batch_need(b);
}

static __attribute__((noinline)) void engine_batch_hold(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    struct uwdf_engine_batch *b = attachment_of(io->file)->batch;
    b->inflight--;
    io->core_batched = false;
    io->core_where = IO_HELD;
    engine_fifo_push(&b->held_head, &b->held_tail, io);
    b->held++;
    c->held++;
}

static void engine_batch_unlink(struct uwdf_engine_core *c, struct uwdf_engine_batch *b)
{
    for (struct uwdf_engine_batch **p = &c->batched; *p; p = &(*p)->next) {
        if (*p == b) {
            *p = b->next;
            break;
        }
    }
    c->pub.reap_min = 1; /* recomputed by the next loop while other files batch */
    uwdf_free(b);
}

/* Run the completion routines of every batch that is due, at most
 * complete_max of a file per round; a batch still due after that makes
 * the next loop poll instead of wait. */
static __attribute__((noinline)) void engine_batch_release(struct uwdf_engine_core *c)
{
    c->batch_due = false;
    c->releasing = true;
    for (struct uwdf_engine_batch *b = c->batched, *next; b; b = next) {
        if (engine_batch_due(b)) {
            unsigned n = b->complete_max && b->complete_max < b->held ? b->complete_max : b->held;
            engine_batch_count(b->completions, n);
            b->held -= n;
            c->held -= n;
            /* Unhooked first: the routines may resend and hold more. */
            struct uwdf_io *io = b->held_head;
            struct uwdf_io *last = io;
            for (unsigned i = 1; i < n; i++)
                last = last->core_next;
            b->held_head = last->core_next;
            if (!b->held_head)
                b->held_tail = NULL;
            last->core_next = NULL;
            while (io) {
                struct uwdf_io *after = io->core_next;
                engine_deliver(c, io);
                io = after;
            }
        }
        next = b->next;
        if (b->gone)
            engine_batch_unlink(c, b);
        else if (engine_batch_due(b))
            c->batch_due = true;
    }
    c->releasing = false;
}

/* How many completions the engine waits for at once: 1 while any op in
 * flight has no completion batch, else the fewest any batched file still
 * needs for its batch. */
static unsigned engine_batch_wait_nr(const struct uwdf_engine_core *c)
{
    long loose = c->inflight;
    unsigned want = 0;
    for (const struct uwdf_engine_batch *b = c->batched; b; b = b->next) {
        if (b->complete_min <= 1 || !b->inflight)
            continue;
        loose -= b->inflight;
        unsigned need = engine_batch_need(b) - b->held;
        if (!want || need < want)
            want = need;
    }
    return loose > 0 || !want ? 1 : want;
}

/* The file has sent enough ops to be worth a registered-file slot. */
static __attribute__((noinline)) void engine_give_slot(struct uwdf_engine_core *c, struct uwdf_engine_attachment *a)
{
    a->want_slot = false;
    engine_hook_update(a);
    if (c->pub.ops->register_file(&c->pub, &a->file) == 0)
        atomic_store_explicit(&a->registered, true, memory_order_release);
}

/* Hand io to the backend and count it among the file's ops (the engine
 * thread is the counter's only writer); false: the backend refused it
 * (deferred with its error). */
static inline __attribute__((always_inline)) bool engine_queue_to_backend(struct uwdf_engine_core *c,
                                                                          struct uwdf_io *io,
                                                                          struct uwdf_engine_attachment *a)
{
    io->core_where = IO_IN_BACKEND;
    int r = c->pub.ops->queue(&c->pub, io, true);
    if (r < 0) {
        engine_defer(c, io, r);
        return false;
    }
    c->inflight++;
    engine_count(&a->ops, atomic_load_explicit(&a->ops, memory_order_relaxed) + 1);
    return true;
}

/* The submit policy: submit_batch ops per system call (batched files count
 * theirs in engine_batch_queued, which may flush too). After the op joined
 * the hand-over list, so that the flush it may cause stamps it too. */
static inline __attribute__((always_inline)) void engine_policy_staged(struct uwdf_engine_core *c)
{
    if (UWDF_UNLIKELY(c->submit_batch != 0) && ++c->staged >= c->submit_batch)
        engine_flush_staged(c);
}

/* engine_queue for a file that wants a registered-file slot (until its
 * ENGINE_SLOT_AFTER_OPS-th op) or has batching: kept off the common path. */
static __attribute__((noinline)) void engine_queue_hooked(struct uwdf_engine_core *c, struct uwdf_io *io,
                                                          struct uwdf_engine_attachment *a)
{
    uint64_t ops = atomic_load_explicit(&a->ops, memory_order_relaxed) + 1;
    if (ops == ENGINE_SLOT_AFTER_OPS && a->want_slot)
        engine_give_slot(c, a);
    if (!engine_queue_to_backend(c, io, a))
        return;
    /* A later piece keeps the first piece's hand-over time. */
    if (a->handover_times && io->core_release_ns == 0) {
        io->core_next = c->handover_head;
        c->handover_head = io;
    }
    if (a->batch)
        engine_batch_queued(c, io, a->batch);
    engine_policy_staged(c);
}

/* Inlined: a completion routine's resend comes here straight from
 * uwdf_engine_submit, once per I/O. */
static inline __attribute__((always_inline)) void engine_queue(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    if (io->core_cancel_early) {
        /* Cancelled before it reached the backend: it never will. */
        engine_defer(c, io, -ECANCELED);
        return;
    }
    if (UWDF_UNLIKELY(io->pieces) && !io->core_piecing) {
        int r = uwdf_pieces_start(io, uwdf_engine_max_segments(&c->pub), uwdf_engine_max_bytes(&c->pub, io->file));
        if (r < 0) {
            engine_defer(c, io, r);
            return;
        }
    }
    struct uwdf_engine_attachment *a = attachment_of(io->file);
    if (UWDF_UNLIKELY(a->queue_hook)) {
        engine_queue_hooked(c, io, a);
        return;
    }
    if (engine_queue_to_backend(c, io, a))
        engine_policy_staged(c);
}

static __attribute__((noinline)) bool engine_next_piece(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    if (!uwdf_pieces_next(io, uwdf_engine_max_segments(&c->pub), uwdf_engine_max_bytes(&c->pub, io->file)))
        return false;
    engine_queue(c, io);
    return true;
}

static void engine_do_cancel(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    int r;
    pthread_mutex_lock(&c->lock);
    /* Every cancel pushed for this io since it was linked is answered by
     * this one attempt (engine_push links an io once). */
    unsigned cancels = io->core_cancels;
    io->core_cancels = 0;
    /* Atomic: a synchronous sender stores IO_HERE without the lock. */
    uint8_t where = __atomic_load_n(&io->core_where, __ATOMIC_RELAXED);
    /* engine_queue fails an op that has not reached the backend yet, and
     * engine_deliver lets the stall injector honour a cancel the backend
     * could not (an op in the backend) or that came while the op waited
     * to be delivered (deferred). */
    if (where == IO_NOWHERE || where == IO_INCOMING || where == IO_IN_BACKEND ||
        where == IO_DEFERRED)
        io->core_cancel_early = true;
    pthread_mutex_unlock(&c->lock);
    switch (where) {
    case IO_STALLED:
        /* The kernel finished with the buffer already; a stalled op is the
         * injector's, and it honours the cancel. */
        engine_stall_remove(c, io);
        io->core_release_ns = 0;
        io->res = -ECANCELED;
        io->timed_out = false;
        engine_io_done(c, io);
        r = 0;
        break;
    case IO_IN_BACKEND:
        r = c->pub.ops->cancel(&c->pub, io);
        break;
    case IO_NOWHERE:
    case IO_INCOMING:
    case IO_DEFERRED:
        r = 0;
        break;
    default:
        r = -ENOENT;
        break;
    }
    /* Each cancel holds a completion reference; only the last drop can
     * complete the request, so io is not touched after it. */
    while (cancels-- > 0)
        uwdf_request_cancel_done(io, r);
}

static void engine_push(struct uwdf_engine_core *c, struct uwdf_io *io, bool cancel)
{
    bool wake;
    pthread_mutex_lock(&c->lock);
    wake = !c->in_head && !c->cancel_head;
    if (!cancel)
        io->core_where = IO_INCOMING;
    if (cancel) {
        /* Two cancels of one io (the timer and WdfRequestCancelSentRequest,
         * or two threads) must not link it twice: that made a cycle, or cut
         * the list the engine thread was walking and lost the cancels after
         * it, whose references then held their requests forever. */
        if (io->core_cancels++ == 0) {
            io->core_cancel_next = NULL;
            if (c->cancel_tail)
                c->cancel_tail->core_cancel_next = io;
            else
                c->cancel_head = io;
            c->cancel_tail = io;
        }
    } else {
        engine_fifo_push(&c->in_head, &c->in_tail, io);
    }
    atomic_store_explicit(&c->has_incoming, true, memory_order_release);
    /* Only the push onto empty lists wakes: the thread drains both lists
     * whole, so later pushes before it runs ride on the same wake. The wake
     * happens under the lock, which the thread takes before it closes the
     * backend, so a wake never touches a closed backend. */
    if (wake && uwdf_tls_engine != &c->pub)
        c->pub.ops->wake(&c->pub);
    pthread_mutex_unlock(&c->lock);
}

/* A synchronous sender runs its op itself on its own thread (DESIGN: no
 * two hand-offs per synchronous I/O). The engine thread never sees the op,
 * so the stall injector, which lives there, keeps the normal path. A cancel
 * or timeout meanwhile finds it IO_HERE and cannot stop it, which is what
 * the kernel would say for a running file or block-device I/O; streams,
 * which may block for ever, are never offered. With no timeout the op is a
 * plain blocking system call (psync.c), what fio's psync does: an io_uring
 * submit-and-wait on the sender's ring was the slower of the two on a loop
 * device at QD1. A kernel-enforced timeout needs the backend's own context
 * (io_uring: the sender's small ring with a linked timeout). */
typedef int (*engine_here_fn)(struct uwdf_io *io);

/* How the sender runs io itself, or NULL if it cannot. */
static engine_here_fn engine_run_here_how(const struct uwdf_engine *e, const struct uwdf_io *io)
{
    if (e->ops->caps & UWDF_BE_CAP_NO_FD)
        return e->ops->run_here;
    if (io->core_untimed && !(e->ops->caps & UWDF_BE_CAP_NO_KERNEL))
        return uwdf_psync_run;
    return e->ops->run_here;
}

static bool engine_run_here(struct uwdf_io *io, engine_here_fn run)
{
    if (atomic_load_explicit(&uwdf_fault_stall_ms, memory_order_relaxed))
        return false;
    /* No lock: a cancel reads it atomically (engine_do_cancel), and the op
     * runs whatever the cancel saw, as a running kernel I/O would. */
    __atomic_store_n(&io->core_where, IO_HERE, __ATOMIC_RELAXED);
    if (run(io) < 0)
        return false; /* not started: engine_push moves it on under the lock */
    atomic_fetch_add_explicit(&attachment_of(io->file)->ops_here, 1, memory_order_relaxed);
    uwdf_request_io_done(io);
    return true;
}

/* ---- the send plug (UwdfStartSendPlug) ----
 * A thread's plugged sends wait in a list per engine (a few engines; one
 * more hands over the oldest list) and reach the engine together: one lock,
 * one wake, and the engine thread stages them in one go, so they go to the
 * kernel in one submission. Until then they are IO_NOWHERE: a cancel marks
 * them and the engine fails them with STATUS_CANCELLED when they arrive. */
#define ENGINE_PLUG_ENGINES 4

struct engine_plug_list {
    struct uwdf_engine_core *c;
    struct uwdf_io *head, *tail;
    unsigned n;
};

__thread unsigned uwdf_tls_plug_depth;
static __thread struct engine_plug_list engine_plug[ENGINE_PLUG_ENGINES];
/* Something was plugged since the last flush: the engine loop's own plug
 * (engine_thread) skips the flush otherwise. */
static __thread bool engine_plug_held;

static void engine_plug_hand(struct engine_plug_list *p)
{
    struct uwdf_engine_core *c = p->c;
    if (!p->head)
        return;
    pthread_mutex_lock(&c->lock);
    bool wake = !c->in_head && !c->cancel_head;
    for (struct uwdf_io *io = p->head; io; io = io->core_next)
        io->core_where = IO_INCOMING;
    if (c->in_tail)
        c->in_tail->core_next = p->head;
    else
        c->in_head = p->head;
    c->in_tail = p->tail;
    atomic_store_explicit(&c->has_incoming, true, memory_order_release);
    if (wake)
        c->pub.ops->wake(&c->pub);
    pthread_mutex_unlock(&c->lock);
    p->c = NULL;
    p->head = p->tail = NULL;
    p->n = 0;
}

static __attribute__((noinline)) void engine_plug_add(struct uwdf_engine_core *c, struct uwdf_io *io)
{
    struct engine_plug_list *p = NULL, *unused = NULL;
    for (unsigned i = 0; i < ENGINE_PLUG_ENGINES && !p; i++) {
        if (engine_plug[i].c == c)
            p = &engine_plug[i];
        else if (!engine_plug[i].c && !unused)
            unused = &engine_plug[i];
    }
    if (!p) {
        if (!unused) {
            unused = &engine_plug[0];
            engine_plug_hand(unused);
        }
        p = unused;
        p->c = c;
    }
    engine_fifo_push(&p->head, &p->tail, io);
    engine_plug_held = true;
    unsigned batch = atomic_load_explicit(&attachment_of(io->file)->plug_batch, memory_order_relaxed);
    if (++p->n >= batch && batch)
        engine_plug_hand(p);
}

void uwdf_engine_plug_flush_slow(void)
{
    engine_plug_held = false;
    for (unsigned i = 0; i < ENGINE_PLUG_ENGINES; i++)
        engine_plug_hand(&engine_plug[i]);
}

/* A thread that ends with its plug unfinished must not strand what it
 * holds (those requests' completions, and a Stop or Close waiting for
 * them): a thread-specific value, set at its first plug, hands it over as
 * the thread exits. */
static pthread_key_t engine_plug_key;
static pthread_once_t engine_plug_key_once = PTHREAD_ONCE_INIT;
static bool engine_plug_key_ok;
static __thread bool engine_plug_key_set;

static void engine_plug_thread_exit(void *unused)
{
    (void)unused;
    uwdf_tls_plug_depth = 0;
    uwdf_engine_plug_flush_slow();
}

static void engine_plug_key_create(void)
{
    engine_plug_key_ok = pthread_key_create(&engine_plug_key, engine_plug_thread_exit) == 0;
    if (!engine_plug_key_ok)
        uwdf_log("send plug: no thread-specific key left; a thread must finish its plugs before it ends");
}

void uwdf_engine_plug_start(void)
{
    if (UWDF_UNLIKELY(!engine_plug_key_set)) {
        pthread_once(&engine_plug_key_once, engine_plug_key_create);
        if (engine_plug_key_ok)
            pthread_setspecific(engine_plug_key, &engine_plug_key_set);
        engine_plug_key_set = true;
    }
    uwdf_tls_plug_depth++;
}

void uwdf_engine_plug_finish(void)
{
    if (uwdf_tls_plug_depth == 0)
        return;
    if (--uwdf_tls_plug_depth == 0)
        uwdf_engine_plug_flush_slow();
}

void uwdf_engine_submit(struct uwdf_engine *e, struct uwdf_io *io)
{
    struct uwdf_engine_core *c = core_of(e);
    io->core_cmd = ENGINE_CMD_SUBMIT;
    if (uwdf_tls_engine == e) {
        engine_queue(c, io);
        return;
    }
    engine_here_fn run = io->core_may_run_here ? engine_run_here_how(e, io) : NULL;
    if (run && engine_run_here(io, run))
        return;
    /* A synchronous sender waits for its op: never held. */
    if (UWDF_UNLIKELY(uwdf_tls_plug_depth != 0) && !io->core_may_run_here) {
        engine_plug_add(c, io);
        return;
    }
    engine_push(c, io, false);
}

void uwdf_engine_post_completion(struct uwdf_engine *e, struct uwdf_io *io)
{
    io->core_cmd = ENGINE_CMD_COMPLETE;
    engine_push(core_of(e), io, false);
}

void uwdf_engine_cancel(struct uwdf_engine *e, struct uwdf_io *io)
{
    engine_push(core_of(e), io, true);
}

static void engine_take_incoming(struct uwdf_engine_core *c, struct uwdf_io **in, struct uwdf_io **cancels)
{
    /* Pushers set has_incoming under the lock after linking; seeing it
     * clear means both lists were empty when the flag was last cleared, so
     * an idle loop (the resend-from-the-routine case) takes no lock. */
    if (!atomic_load_explicit(&c->has_incoming, memory_order_acquire)) {
        *in = *cancels = NULL;
        return;
    }
    pthread_mutex_lock(&c->lock);
    /* An op cancelled before it got here (a send plug held it, or it is
     * in this very batch) must never reach the kernel: marked now, as
     * engine_do_cancel would, since the submissions taken here are queued
     * before the cancels are tried. */
    for (struct uwdf_io *io = c->cancel_head; io; io = io->core_cancel_next) {
        /* Atomic: a synchronous sender stores IO_HERE without the lock. */
        uint8_t where = __atomic_load_n(&io->core_where, __ATOMIC_RELAXED);
        if (where == IO_NOWHERE || where == IO_INCOMING)
            io->core_cancel_early = true;
    }
    *in = c->in_head;
    *cancels = c->cancel_head;
    c->in_head = c->in_tail = NULL;
    c->cancel_head = c->cancel_tail = NULL;
    atomic_store_explicit(&c->has_incoming, false, memory_order_relaxed);
    pthread_mutex_unlock(&c->lock);
}

static void engine_run_call(struct uwdf_engine *e, struct uwdf_io *io)
{
    struct engine_call *call = uwdf_container_of(io, struct engine_call, io);
    call->result = call->fn(e, call->arg);
    uwdf_sync_wait_signal(&call->done);
}

/* Run fn on the engine thread and wait for it (inline when already there). */
static int engine_call(struct uwdf_engine *e, int (*fn)(struct uwdf_engine *, void *), void *arg)
{
    if (uwdf_tls_engine == e)
        return fn(e, arg);
    struct engine_call call = { .fn = fn, .arg = arg };
    uwdf_sync_wait_init(&call.done);
    call.io.core_cmd = ENGINE_CMD_CALL;
    engine_push(core_of(e), &call.io, false);
    uwdf_sync_wait_block(&call.done);
    return call.result;
}

struct engine_reg_args {
    struct uwdf_engine_attachment *a;
    const struct iovec *iov;
    unsigned n;
};

static int engine_do_register_buffers(struct uwdf_engine *e, void *arg)
{
    const struct engine_reg_args *r = arg;
    int res = e->ops->register_buffers(e, &r->a->file, r->iov, r->n);
    if (res == 0)
        atomic_store_explicit(&r->a->registered, true, memory_order_release);
    return res;
}

static int engine_do_register_file(struct uwdf_engine *e, void *arg)
{
    const struct engine_reg_args *r = arg;
    r->a->want_slot = false;
    engine_hook_update(r->a);
    int res = e->ops->register_file(e, &r->a->file);
    if (res == -EBUSY)
        res = 0; /* it had a slot already (ENGINE_SLOT_AFTER_OPS) */
    if (res == 0)
        atomic_store_explicit(&r->a->registered, true, memory_order_release);
    return res;
}

static int engine_do_attach(struct uwdf_engine *e, void *arg)
{
    const struct engine_reg_args *r = arg;
    return e->ops->attach_file(e, &r->a->file);
}

static int engine_do_detach(struct uwdf_engine *e, void *arg)
{
    const struct engine_reg_args *r = arg;
    e->ops->detach_file(e, &r->a->file);
    return 0;
}

static int engine_do_unregister(struct uwdf_engine *e, void *arg)
{
    const struct engine_reg_args *r = arg;
    e->ops->unregister_file(e, &r->a->file);
    atomic_store_explicit(&r->a->registered, false, memory_order_relaxed);
    return 0;
}

int uwdf_engine_register_buffers(struct uwdf_engine *e, struct uwdf_engine_attachment *a,
                                 const struct iovec *iov, struct uwdf_object *const *owners, unsigned n)
{
    if (!e->ops->register_buffers)
        return -EOPNOTSUPP;
    struct uwdf_object **pinned = uwdf_alloc(sizeof(*pinned) * n);
    if (!pinned)
        return -ENOMEM;
    struct engine_reg_args r = { .a = a, .iov = iov, .n = n };
    int res = engine_call(e, engine_do_register_buffers, &r);
    if (res < 0) {
        uwdf_free(pinned);
        return res;
    }
    /* The backend takes one set of buffers per file (-EBUSY after), so this
     * runs once per attachment. */
    for (unsigned i = 0; i < n; i++) {
        uwdf_object_reference(owners[i]);
        pinned[i] = owners[i];
    }
    a->pinned = pinned;
    a->npinned = n;
    return 0;
}

int uwdf_engine_register_file(struct uwdf_engine *e, struct uwdf_engine_attachment *a)
{
    if (!e->ops->register_file)
        return -EOPNOTSUPP;
    if (a->file_requested)
        return -EBUSY;
    struct engine_reg_args r = { .a = a };
    int res = engine_call(e, engine_do_register_file, &r);
    if (res == 0)
        a->file_requested = true;
    return res;
}

struct engine_batch_args {
    struct uwdf_engine_attachment *a;
    const struct uwdf_engine_batching *cfg;
    struct uwdf_engine_batch *fresh;
    struct uwdf_engine_batch_stats *out;
};

static int engine_do_set_batching(struct uwdf_engine *e, void *arg)
{
    struct engine_batch_args *r = arg;
    struct uwdf_engine_core *c = core_of(e);
    struct uwdf_engine_batch *b = r->a->batch;
    if (!b) {
        b = r->fresh;
        r->fresh = NULL;
        b->next = c->batched;
        c->batched = b;
        r->a->batch = b;
        engine_hook_update(r->a);
    }
    b->submit = r->cfg->submit;
    b->complete_min = r->cfg->complete_min;
    b->complete_max = r->cfg->complete_max;
    /* A smaller batch may be due already. */
    if (engine_batch_due(b))
        c->batch_due = true;
    atomic_store_explicit(&r->a->plug_batch, b->submit, memory_order_relaxed);
    return 0;
}

int uwdf_engine_set_batching(struct uwdf_engine *e, struct uwdf_engine_attachment *a,
                             const struct uwdf_engine_batching *b)
{
    struct engine_batch_args r = { .a = a, .cfg = b, .fresh = uwdf_zalloc(sizeof(struct uwdf_engine_batch)) };
    if (!r.fresh)
        return -ENOMEM;
    int res = engine_call(e, engine_do_set_batching, &r);
    uwdf_free(r.fresh); /* NULL when it was taken */
    return res;
}

static int engine_do_batch_stats(struct uwdf_engine *e, void *arg)
{
    struct engine_batch_args *r = arg;
    const struct uwdf_engine_batch *b = r->a->batch;
    (void)e;
    if (!b)
        return -ENOENT;
    memcpy(r->out->submits, b->submits, sizeof(b->submits));
    memcpy(r->out->completions, b->completions, sizeof(b->completions));
    return 0;
}

bool uwdf_engine_batch_stats(struct uwdf_engine *e, const struct uwdf_engine_attachment *a,
                             struct uwdf_engine_batch_stats *out)
{
    struct engine_batch_args r = { .a = (struct uwdf_engine_attachment *)a, .out = out };
    return engine_call(e, engine_do_batch_stats, &r) == 0;
}

struct engine_handover_args {
    struct uwdf_engine_attachment *a;
    bool on;
};

static int engine_do_set_handover_times(struct uwdf_engine *e, void *arg)
{
    struct engine_handover_args *r = arg;
    (void)e;
    r->a->handover_times = r->on;
    engine_hook_update(r->a);
    return 0;
}

void uwdf_engine_set_handover_times(struct uwdf_engine *e, struct uwdf_engine_attachment *a, bool on)
{
    struct engine_handover_args r = { .a = a, .on = on };
    (void)engine_call(e, engine_do_set_handover_times, &r);
}

static int engine_do_batch_drop(struct uwdf_engine *e, void *arg)
{
    struct engine_batch_args *r = arg;
    struct uwdf_engine_core *c = core_of(e);
    struct uwdf_engine_batch *b = r->a->batch;
    r->a->batch = NULL;
    engine_hook_update(r->a);
    if (c->releasing)
        b->gone = true; /* engine_batch_release is walking the list */
    else
        engine_batch_unlink(c, b);
    return 0;
}

void uwdf_engine_file_init(struct uwdf_engine *e, struct uwdf_engine_attachment *a, int fd)
{
    a->file.fd = fd;
    atomic_store_explicit(&a->file.slot, -1, memory_order_relaxed);
    atomic_store_explicit(&a->file.nbuffers, 0, memory_order_relaxed);
    a->file.be = NULL;
    atomic_store_explicit(&a->file.fixed_buffer_ios, 0, memory_order_relaxed);
    atomic_store_explicit(&a->file.fixed_file_ios, 0, memory_order_relaxed);
    atomic_store_explicit(&a->ops, 0, memory_order_relaxed);
    atomic_store_explicit(&a->ops_here, 0, memory_order_relaxed);
    a->want_slot = e->ops->register_file != NULL;
    a->handover_times = false;
    a->batch = NULL;
    engine_hook_update(a);
    atomic_store_explicit(&a->registered, false, memory_order_relaxed);
    a->file_requested = false;
    a->pinned = NULL;
    a->npinned = 0;
    atomic_store_explicit(&a->plug_batch, 0, memory_order_relaxed);
}

int uwdf_engine_file_attach(struct uwdf_engine *e, struct uwdf_engine_attachment *a)
{
    if (!e->ops->attach_file)
        return 0;
    struct engine_reg_args r = { .a = a };
    return engine_call(e, engine_do_attach, &r);
}

void uwdf_engine_file_fini(struct uwdf_engine *e, struct uwdf_engine_attachment *a)
{
    if (e->ops->detach_file) {
        struct engine_reg_args r = { .a = a };
        (void)engine_call(e, engine_do_detach, &r);
    }
    /* Only a file with a registration costs a call into the engine thread. */
    if (atomic_load_explicit(&a->registered, memory_order_acquire)) {
        struct engine_reg_args r = { .a = a };
        (void)engine_call(e, engine_do_unregister, &r);
    }
    if (a->batch) { /* set on the engine thread, which a's opener waited for */
        struct engine_batch_args r = { .a = a };
        (void)engine_call(e, engine_do_batch_drop, &r);
    }
    /* The kernel let go of the pages with the registration. */
    for (unsigned i = 0; i < a->npinned; i++)
        uwdf_object_release(a->pinned[i]);
    uwdf_free(a->pinned);
    a->pinned = NULL;
    a->npinned = 0;
}

void uwdf_engine_file_stats(const struct uwdf_engine_attachment *a, struct uwdf_engine_file_stats *out)
{
    out->ops = atomic_load_explicit(&a->ops, memory_order_relaxed) +
               atomic_load_explicit(&a->ops_here, memory_order_relaxed);
    out->registered_buffers = atomic_load_explicit(&a->file.nbuffers, memory_order_relaxed);
    out->registered_file = atomic_load_explicit(&a->file.slot, memory_order_relaxed) >= 0;
    out->fixed_buffer_ios = atomic_load_explicit(&a->file.fixed_buffer_ios, memory_order_relaxed);
    out->fixed_file_ios = atomic_load_explicit(&a->file.fixed_file_ios, memory_order_relaxed);
}

static void engine_free(struct uwdf_engine_core *c)
{
    pthread_cond_destroy(&c->started_cond);
    pthread_mutex_destroy(&c->lock);
    uwdf_free(c);
}

static void *engine_thread(void *arg)
{
    struct uwdf_engine_core *c = arg;
    struct uwdf_engine *e = &c->pub;
    struct uwdf_io *done[ENGINE_REAP_BATCH];

    uwdf_tls_engine = e;
    uwdf_tls_irql = DISPATCH_LEVEL; /* completion routines run at DISPATCH */
    (void)pthread_setname_np(pthread_self(), UWDF_ENGINE_THREAD_NAME); /* top, ps -L, gdb */
    int err = e->ops->open(e);
    pthread_mutex_lock(&c->lock);
    c->open_err = err;
    c->started = true;
    pthread_cond_signal(&c->started_cond);
    pthread_mutex_unlock(&c->lock);
    if (err)
        return NULL;

    for (;;) {
        int64_t timeout = -1;
        if (c->later_head || c->batch_due || atomic_load_explicit(&c->has_incoming, memory_order_acquire))
            timeout = 0;
        else if (c->stall_head) {
            timeout = c->stall_head->core_release_ns - uwdf_mono_ns();
            if (timeout < 0)
                timeout = 0;
        }
        if (UWDF_UNLIKELY(c->batched != NULL)) {
            /* What the last loop staged went to the kernel at its end, or
             * goes in this reap: one submission. */
            engine_batch_count_submits(c);
            e->reap_min = timeout != 0 ? engine_batch_wait_nr(c) : 1;
        }
        int n = e->ops->reap(e, done, ENGINE_REAP_BATCH, timeout);
        if (n < 0) {
            uwdf_log("%s engine: reap failed (%d); retrying", e->ops->name, n);
            n = 0;
        }

        /* Sends the round's routines make to another engine's targets wait
         * in this thread's send plug and reach each such engine together
         * at the round's end: one lock and one wake per engine and round,
         * not per I/O (many files spread over the pool). */
        uwdf_tls_plug_depth++; /* no thread-exit key: finished below, always */
        struct uwdf_io *in, *cancels;
        engine_take_incoming(c, &in, &cancels);
        /* Read after taking the sends (under the lock their senders
         * released): a send follows the policy set before it was made. */
        c->submit_batch = atomic_load_explicit(&engine_submit_batch, memory_order_relaxed);
        while (in) {
            struct uwdf_io *next = in->core_next;
            if (in->core_cmd == ENGINE_CMD_SUBMIT)
                engine_queue(c, in);
            else if (in->core_cmd == ENGINE_CMD_CALL)
                engine_run_call(e, in);
            else
                engine_deliver(c, in);
            in = next;
        }
        if (cancels) {
            /* Staged submissions must reach the kernel before a cancel
             * can find them. */
            engine_flush_staged(c);
            while (cancels) {
                struct uwdf_io *next = cancels->core_cancel_next;
                engine_do_cancel(c, cancels);
                cancels = next;
            }
        }
        c->inflight -= n;
        if (UWDF_LIKELY(c->batched == NULL)) {
            for (int i = 0; i < n; i++)
                engine_deliver(c, done[i]);
        } else {
            for (int i = 0; i < n; i++) {
                if (done[i]->core_batched)
                    engine_batch_hold(c, done[i]);
                else
                    engine_deliver(c, done[i]);
            }
            if (c->held)
                engine_batch_release(c);
        }
        if (c->later_head)
            engine_deliver_deferred(c);
        engine_release_stalls(c);
        if (--uwdf_tls_plug_depth == 0 && engine_plug_held)
            uwdf_engine_plug_flush_slow();
        /* What is staged now goes to the kernel at once: here, or in the
         * next reap (io_uring's submits and waits in one io_uring_enter:
         * flushing here too would cost a second system call per loop, per
         * I/O at QD1). Nothing is staged between here and that reap. Ops
         * with hand-over times go here, whatever the backend, so that
         * their time is read when the submitting call has returned. */
        if (UWDF_UNLIKELY(c->handover_head != NULL) || !(e->ops->caps & UWDF_BE_CAP_REAP_SUBMITS))
            engine_flush(c);
        c->staged = 0;

        if (atomic_load(&c->stopping) && c->inflight == 0 && !c->stall_head && !c->later_head &&
            !c->held && !atomic_load(&c->has_incoming))
            break;
    }
    /* Wait out any wake() still running on another thread. */
    pthread_mutex_lock(&c->lock);
    bool self_reap = c->self_reap;
    pthread_mutex_unlock(&c->lock);
    e->ops->close(e);
    if (self_reap)
        engine_free(c);
    return NULL;
}

struct uwdf_engine *uwdf_engine_create(const struct uwdf_backend_ops *ops, unsigned depth, int *err)
{
    pthread_once(&engine_submit_batch_once, engine_submit_batch_init);
    struct uwdf_engine_core *c = uwdf_zalloc(sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    c->pub.ops = ops;
    c->pub.depth = depth;
    c->pub.core = c;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->started_cond, NULL);
    int r = pthread_create(&c->thread, NULL, engine_thread, c);
    if (r != 0) {
        *err = -r;
        goto fail;
    }
    pthread_mutex_lock(&c->lock);
    while (!c->started)
        pthread_cond_wait(&c->started_cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    if (c->open_err) {
        *err = c->open_err;
        pthread_join(c->thread, NULL);
        goto fail;
    }
    *err = 0;
    return &c->pub;
fail:
    pthread_cond_destroy(&c->started_cond);
    pthread_mutex_destroy(&c->lock);
    uwdf_free(c);
    return NULL;
}

/* The caller guarantees nothing will be submitted any more; in-flight ops
 * are drained before the backend closes. On the engine's own thread (its
 * last file detached from a callback it runs) nobody can wait for the
 * thread: it is detached and frees the engine when it ends. */
void uwdf_engine_destroy(struct uwdf_engine *e)
{
    struct uwdf_engine_core *c = core_of(e);
    bool own = uwdf_engine_on_own_thread(e);
    pthread_mutex_lock(&c->lock);
    atomic_store(&c->stopping, true);
    c->self_reap = own;
    e->ops->wake(e);
    pthread_mutex_unlock(&c->lock);
    if (own) {
        pthread_detach(c->thread);
        return;
    }
    pthread_join(c->thread, NULL);
    engine_free(c);
}

/* The engines UWDF_BACKEND may name for local files (remote engines are
 * chosen by the target's name). */
static const struct uwdf_backend_ops *const backends_all[] = {
    &uwdf_backend_io_uring,
    &uwdf_backend_libaio,
    &uwdf_backend_null,
};
/* Backends whose probe succeeded once in this process. Probing sets up and
 * tears down a kernel context (a ring: tens of microseconds and a
 * descriptor; an AIO context: an RCU grace period, tens of milliseconds),
 * too much to pay at every open, and it would fail for want of a
 * descriptor just when a process has many targets open. A failure is not
 * remembered: it may have been such a shortage. */
static atomic_bool backends_usable[RTL_NUMBER_OF(backends_all)];

static const struct uwdf_backend_ops *backend_by_name(const char *name)
{
    for (size_t i = 0; i < RTL_NUMBER_OF(backends_all); i++)
        if (strcmp(backends_all[i]->name, name) == 0)
            return backends_all[i];
    return NULL;
}

static int backend_probe(const struct uwdf_backend_ops *ops)
{
    size_t i = 0;
    while (backends_all[i] != ops)
        i++;
    if (atomic_load_explicit(&backends_usable[i], memory_order_relaxed))
        return 0;
    int r = ops->probe();
    if (r == 0)
        atomic_store_explicit(&backends_usable[i], true, memory_order_relaxed);
    return r;
}

/* The engine UwdfSetDefaultBackend chose (NULL: none). */
static _Atomic(const struct uwdf_backend_ops *) backend_chosen;

NTSTATUS UwdfSetDefaultBackend(PCSTR Name)
{
    const struct uwdf_backend_ops *ops = NULL;
    if (Name) {
        ops = backend_by_name(Name);
        if (!ops)
            return STATUS_INVALID_PARAMETER;
        int r = backend_probe(ops);
        if (r)
            return uwdf_status_from_errno(-r);
    }
    atomic_store(&backend_chosen, ops);
    return STATUS_SUCCESS;
}

bool uwdf_backend_forced(void)
{
    const char *forced = uwdf_env(UWDF_ENV_BACKEND);
    return atomic_load(&backend_chosen) || (forced && *forced);
}

const struct uwdf_backend_ops *uwdf_backend_select(int *err)
{
    const struct uwdf_backend_ops *chosen = atomic_load(&backend_chosen);
    if (chosen) {
        *err = backend_probe(chosen);
        return *err ? NULL : chosen;
    }
    const char *forced = uwdf_env(UWDF_ENV_BACKEND);
    if (forced && *forced) {
        const struct uwdf_backend_ops *ops = backend_by_name(forced);
        if (!ops) {
            uwdf_log("UWDF_BACKEND='%s' is not an engine (io_uring, libaio, null)", forced);
            *err = -EINVAL;
            return NULL;
        }
        *err = backend_probe(ops);
        if (*err)
            uwdf_log("UWDF_BACKEND=%s cannot be set up here (%s)", forced, strerror(-*err));
        return *err ? NULL : ops;
    }
    int r = backend_probe(&uwdf_backend_io_uring);
    if (r == 0) {
        *err = 0;
        return &uwdf_backend_io_uring;
    }
    static atomic_bool told;
    if (!atomic_exchange(&told, true))
        uwdf_log("io_uring unavailable (%s); using libaio", strerror(-r));
    *err = backend_probe(&uwdf_backend_libaio);
    return *err ? NULL : &uwdf_backend_libaio;
}
