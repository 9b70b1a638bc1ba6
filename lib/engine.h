/* The engines (lib/engine.c, lib/engine_pool.c): a small pool of backend
 * instances, each with its own completion thread, serving every open I/O
 * target. Private to the framework; backends see only backends/backend.h.
 * Not installed. */
#ifndef UWDF_ENGINE_H
#define UWDF_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../backends/backend.h"

struct uwdf_object;

/* Engines per backend when neither UwdfSetEnginePoolSize nor UWDF_ENGINES
 * says otherwise: one per CPU the process may run on, at most this many
 * (a thread and a ring each; one engine already keeps a CPU busy with
 * hundreds of thousands of I/Os a second). */
#define UWDF_ENGINE_POOL_DEFAULT_MAX 8u
/* What an engine's thread is called (/proc/PID/task/TID/comm). */
#define UWDF_ENGINE_THREAD_NAME "uwdf-engine"

/* A target's place on an engine, embedded in the target: the file the
 * backend sees and what the core keeps for it. Attached while the target
 * is open. */
struct uwdf_engine_attachment {
    struct uwdf_engine_file file;
    /* Ops queued to the backend: written by the engine thread only. */
    atomic_ullong ops;
    /* Ops their senders ran on their own threads (any thread). */
    atomic_ullong ops_here;
    /* Engine thread: the backend offers registered files and this file has
     * not tried for a slot yet. */
    bool want_slot;
    /* Engine thread: want_slot, batching or hand-over times
     * (engine_queue's slow path). */
    bool queue_hook;
    /* Engine thread: note when the file's ops reach the kernel
     * (UwdfIoTargetSetHandOverTimes). */
    bool handover_times;
    /* The backend holds a registration of this file (slot or buffers), so
     * detaching must reach the engine thread. */
    atomic_bool registered;
    /* UwdfIoTargetRegisterFile already succeeded for this opening. */
    bool file_requested;
    /* WDFMEMORY objects whose buffers are registered for this file: kept
     * referenced until the registration is dropped. */
    struct uwdf_object **pinned;
    unsigned npinned;
    /* Batching (uwdf_engine_set_batching): the engine thread's state for
     * it, NULL until it is set; and the submit batch, read by senders'
     * plugs on any thread. */
    struct uwdf_engine_batch *batch;
    atomic_uint plug_batch;
};

/* Batch sizes of one file, by fio's meaning (UwdfIoTargetSetBatching):
 * submit: hand the file's staged ops to the kernel whenever this many are
 * staged (0: with whatever else the engine's loop staged); complete_min:
 * run its completion routines only once this many of its ops have
 * finished, or all it has in flight (0 or 1: as each finishes);
 * complete_max: at most this many of them per round (0: no limit). */
struct uwdf_engine_batching {
    unsigned submit, complete_min, complete_max;
};
/* How a file's batches came out (any thread): hand-overs to the kernel and
 * rounds of completion routines, by size (bucket i: more than 2^(i-1),
 * at most 2^i ops; the last: more than 2^(n-2)). */
#define UWDF_ENGINE_BATCH_BUCKETS 10u
struct uwdf_engine_batch_stats {
    uint64_t submits[UWDF_ENGINE_BATCH_BUCKETS];
    uint64_t completions[UWDF_ENGINE_BATCH_BUCKETS];
};
/* Set a's batching on its engine's thread (from then on). 0 or -ENOMEM. */
int uwdf_engine_set_batching(struct uwdf_engine *e, struct uwdf_engine_attachment *a,
                             const struct uwdf_engine_batching *b);
/* a's counts, read on e's thread; false when a has no batching set
 * (nothing counted). */
bool uwdf_engine_batch_stats(struct uwdf_engine *e, const struct uwdf_engine_attachment *a,
                             struct uwdf_engine_batch_stats *out);

/* Turn a's hand-over times on or off on e's thread (from then on). */
void uwdf_engine_set_handover_times(struct uwdf_engine *e, struct uwdf_engine_attachment *a, bool on);

/* The calling thread's send plug (UwdfStartSendPlug): sends to engines
 * from this thread wait on it until their target's submit batch is
 * reached or the outermost plug finishes (uwdf_engine_plug_flush in
 * runtime.h hands over what it holds). */
void uwdf_engine_plug_start(void);
void uwdf_engine_plug_finish(void);

/* The pool (lib/engine_pool.c). Attach a target's file (fd; -1 for a device
 * target, which has none) to an engine of ops's pool: the one serving the
 * fewest files, or a new engine while the pool has fewer than its size and
 * each engine serves a file already. The engine, or NULL with *err set when
 * no engine of that kind runs and none could be set up. */
struct uwdf_engine *uwdf_engine_attach(const struct uwdf_backend_ops *ops, struct uwdf_engine_attachment *a,
                                       int fd, int *err);
/* Undo uwdf_engine_attach. Nothing of a's is in flight or will be queued
 * again. Drops the file's kernel registrations (a round trip to the engine
 * thread when there are any, so the engine holds no reference on the file
 * afterwards) and the memory they pinned; an engine that serves no file
 * any more stops. */
void uwdf_engine_detach(struct uwdf_engine *e, struct uwdf_engine_attachment *a);
/* Attach a file that is not a descriptor (a remote export: be is the
 * backend's state for it, see attach_file in backends/backend.h) to on
 * (an engine of ops's pool that the backend holds, uwdf_engine_hold in
 * backends/backend.h), or to the pool's choice when on is NULL. On
 * failure nothing is attached and be still belongs to the caller. */
struct uwdf_engine *uwdf_engine_attach_remote(const struct uwdf_backend_ops *ops, struct uwdf_engine_attachment *a,
                                              void *be, struct uwdf_engine *on, int *err);

/* Engines per backend kind: what UwdfSetEnginePoolSize set, else
 * UWDF_ENGINES, else the default above. */
unsigned uwdf_engine_pool_size(void);

/* One engine (lib/engine.c), for the pool. create starts the thread and
 * sets up the backend there (depth: ops expected in flight at once); NULL
 * with *err on failure. destroy drains and stops it: nothing may be queued
 * to it any more and no file is attached. file_init readies a for e (its
 * counters, no registration yet); file_fini drops what the backend and the
 * core registered for it. */
struct uwdf_engine *uwdf_engine_create(const struct uwdf_backend_ops *ops, unsigned depth, int *err);
void uwdf_engine_destroy(struct uwdf_engine *e);
void uwdf_engine_file_init(struct uwdf_engine *e, struct uwdf_engine_attachment *a, int fd);
/* Hand a file whose backend state (a->file.be) is set to the backend's
 * attach_file on the engine thread, if it has one. 0 or -errno. */
int uwdf_engine_file_attach(struct uwdf_engine *e, struct uwdf_engine_attachment *a);
void uwdf_engine_file_fini(struct uwdf_engine *e, struct uwdf_engine_attachment *a);

/* Hand an io to the engine. On the engine's own thread it goes straight
 * into the backend (staged, submitted with the rest of the batch). */
void uwdf_engine_submit(struct uwdf_engine *e, struct uwdf_io *io);
/* Deliver a completion that did not come from the kernel (res preset). */
void uwdf_engine_post_completion(struct uwdf_engine *e, struct uwdf_io *io);
/* Ask the engine to cancel an in-flight io. The caller holds a completion
 * reference; the engine calls uwdf_request_cancel_done(io) after the attempt. */
void uwdf_engine_cancel(struct uwdf_engine *e, struct uwdf_io *io);

extern __thread struct uwdf_engine *uwdf_tls_engine; /* the engine whose thread this is */
static inline bool uwdf_engine_on_own_thread(const struct uwdf_engine *e)
{
    return uwdf_tls_engine == e;
}
/* Whether this is an engine's thread (completion routines and callbacks). */
static inline bool uwdf_engine_thread(void)
{
    return uwdf_tls_engine != NULL;
}
const char *uwdf_engine_name(const struct uwdf_engine *e);
unsigned uwdf_engine_caps(const struct uwdf_engine *e);
/* The engine for a target being opened: UwdfSetDefaultBackend's choice,
 * else UWDF_BACKEND's, else io_uring (libaio if io_uring cannot be set up);
 * NULL with *err a negative errno when none can be. */
const struct uwdf_backend_ops *uwdf_backend_select(int *err);
/* Whether an engine was chosen (by either means): no fallback then. */
bool uwdf_backend_forced(void);

/* Registration with the kernel (lib/fixedio.c's DDIs), run on the engine
 * thread. Buffers: the n objects stay referenced until the file is
 * detached (the kernel holds their pages as long). File: a slot now, if the
 * file has none. -EOPNOTSUPP: the engine has no registration; -EBUSY: this
 * kind is registered for the file already. */
int uwdf_engine_register_buffers(struct uwdf_engine *e, struct uwdf_engine_attachment *a,
                                 const struct iovec *iov, struct uwdf_object *const *owners, unsigned n);
int uwdf_engine_register_file(struct uwdf_engine *e, struct uwdf_engine_attachment *a);

struct uwdf_engine_file_stats {
    uint64_t ops;              /* ops of the file handed to the engine or run by their senders */
    unsigned registered_buffers;
    bool registered_file;
    uint64_t fixed_buffer_ios;
    uint64_t fixed_file_ios;
};
void uwdf_engine_file_stats(const struct uwdf_engine_attachment *a, struct uwdf_engine_file_stats *out);

/* Limits of one kernel op where the backend sets none: IOV_MAX segments,
 * and MAX_RW_COUNT bytes (INT_MAX rounded down to a page), past which the
 * kernel returns a short count. */
#define UWDF_ENGINE_MAX_SEGMENTS 1024u
#define UWDF_ENGINE_MAX_BYTES 0x7ffff000ull
/* Largest piece staged through a bounce buffer (the buffer a request keeps). */
#define UWDF_ENGINE_BOUNCE_MAX (1u << 20)
/* White-box tests only: a smaller byte limit (a multiple of the page
 * size, more than one page), to split without gigabytes (0: none). A
 * backend's own limits are at least a page and a segment too; a remote
 * file's may be less than a page (its sends always look it up). */
extern _Atomic uint64_t uwdf_engine_test_max_bytes;

static inline unsigned uwdf_engine_max_segments(const struct uwdf_engine *e)
{
    return e->ops->max_segments ? e->ops->max_segments : UWDF_ENGINE_MAX_SEGMENTS;
}
/* The most bytes one op of file f (NULL: none in particular) may carry on
 * engine e: the engine's limit, or the file's where it is lower. */
static inline uint64_t uwdf_engine_max_bytes(const struct uwdf_engine *e, const struct uwdf_engine_file *f)
{
    uint64_t t = atomic_load_explicit(&uwdf_engine_test_max_bytes, memory_order_relaxed);
    uint64_t m = e->ops->max_bytes ? e->ops->max_bytes : UWDF_ENGINE_MAX_BYTES;
    if (f && f->max_bytes && f->max_bytes < m)
        m = f->max_bytes;
    return t && t < m ? t : m;
}

/* An op run as pieces (lib/engine_pieces.c), on the engine thread. start
 * sets up the first piece in io (0, or -ENOMEM with io untouched); next
 * takes the finished piece's result and either sets up the next piece
 * (true: queue io again) or puts the op's own result and buffers back
 * (false: io is done). fini frees what an io kept for its pieces. */
int uwdf_pieces_start(struct uwdf_io *io, unsigned max_segments, uint64_t max_bytes);
bool uwdf_pieces_next(struct uwdf_io *io, unsigned max_segments, uint64_t max_bytes);
void uwdf_pieces_fini(struct uwdf_io *io);

/* Called by the engine on its thread (lib/iotarget.c). */
void uwdf_request_io_done(struct uwdf_io *io);
void uwdf_request_cancel_done(struct uwdf_io *io, int cancel_result);

#endif
