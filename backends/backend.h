/* One ops table per I/O engine.
 *
 * Threading contract: an engine is one backend instance (one io_uring ring,
 * one libaio context) and one framework thread, its completion thread. A
 * small pool of engines (lib/engine_pool.c) serves every open I/O target of
 * the process: each open target's file is attached to one engine for as
 * long as the target is open, so one engine carries the ops of many files.
 * open, close, queue, flush, cancel, reap and the registration ops are only
 * ever called on the engine's thread, so a backend needs no locks and may use
 * single-issuer kernel interfaces (IORING_SETUP_SINGLE_ISSUER,
 * DEFER_TASKRUN). Other threads hand their ops to that thread through
 * lib/engine.c and call wake() to interrupt a blocked reap(). probe(),
 * wake() and run_here() may run on any thread.
 *
 * Files: every op the core queues names its file (io->file, a struct
 * uwdf_engine_file of the engine) besides the descriptor (io->fd). A
 * backend may give a file a kernel registration (a registered-file slot,
 * registered buffers) through register_file / register_buffers, and must
 * drop it in unregister_file, which the core calls with nothing of that
 * file in flight before the file is closed. Nothing else about a file
 * needs the backend: attaching a file to an engine costs no call here.
 *
 * Every op a backend accepts comes back exactly once through reap(),
 * failures included. */
#ifndef UWDF_BACKEND_H
#define UWDF_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct uwdf_engine;

/* A warning to the framework's log (lib/log.c: UwdfSetLogCallback's
 * callback, or stderr), one line without prefix or newline. */
void uwdf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A documented environment switch by its name (lib/env.c): NULL when unset,
 * not one of the library's, or in a privileged process. */
const char *uwdf_env_named(const char *name);

/* A file an engine serves: one per open I/O target, embedded in it (the
 * core's struct uwdf_engine_attachment). fd is set by the core and fixed
 * while the file is attached. The rest is the backend's: written only on
 * the engine thread, read by the core on any thread (hence atomics). */
struct uwdf_engine_file {
    int fd;
    _Atomic int slot;            /* registered-file index in the engine, or -1 */
    _Atomic unsigned nbuffers;   /* buffers registered for this file */
    void *be;                    /* the backend's per-file state (its registered buffers) */
    _Atomic unsigned long long fixed_buffer_ios; /* reads/writes sent as READ_FIXED/WRITE_FIXED */
    _Atomic unsigned long long fixed_file_ios;   /* ops sent on the registered file */
    /* The most bytes one op of this file may carry, when it is less than
     * the engine's (max_bytes in the ops table): an NBD server's maximum
     * payload. 0: the engine's. Set by attach_file, before the file's first
     * op (the attach is a round trip to the engine thread, which orders
     * it); the core runs a larger read or write as pieces
     * (lib/engine_pieces.c). */
    uint64_t max_bytes;
};

enum uwdf_io_op {
    UWDF_OP_READ = 1,
    UWDF_OP_WRITE,
    UWDF_OP_FSYNC,
    UWDF_OP_FDATASYNC,
    UWDF_OP_TRIM, /* discard io->ranges (remote engines; local files use lib/blockops.c) */
    UWDF_OP_ZERO, /* write zeroes over io->ranges (likewise) */
};

/* A byte range of a TRIM or ZERO op. */
struct uwdf_io_range {
    uint64_t offset;
    uint64_t length;
};

/* Capabilities the core asks for instead of testing engine names. */
#define UWDF_BE_CAP_LINK_TIMEOUT 0x1u /* enforces io->has_timeout in the kernel */
#define UWDF_BE_CAP_CANCEL       0x2u /* cancel() can stop an in-flight op */
#define UWDF_BE_CAP_NO_KERNEL    0x4u /* completes without doing I/O (null) */
#define UWDF_BE_CAP_STREAM_FILES 0x8u /* FIFOs/pipes never block submission */
#define UWDF_BE_CAP_REAP_SUBMITS 0x10u /* reap() submits what is staged first, in the same call */
#define UWDF_BE_CAP_NO_FD        0x20u /* ops go to a remote export (io->file->be), never io->fd:
                                        * the sender cannot run them itself (psync) */

/* Per-request I/O descriptor, embedded in the request object so the hot path
 * never allocates. A backend may use be_area and be_flags for its per-op
 * state (a struct iocb for libaio); the fields marked core are not its. */
struct uwdf_io {
    uint8_t op;            /* enum uwdf_io_op */
    bool has_timeout;      /* kernel-enforced timeout wanted (LINK_TIMEOUT cap only) */
    bool timeout_abs;      /* timeout is CLOCK_REALTIME absolute, else relative */
    bool timed_out;        /* out: the kernel timeout fired for this op */
    int fd;
    struct uwdf_engine_file *file; /* the file fd belongs to (NULL outside the core) */
    int iovcnt; /* iovecs, or ranges of TRIM/ZERO */
    int rw_flags;          /* RWF_* (preadv2/pwritev2 semantics) */
    union {
        struct iovec *iov;
        const struct uwdf_io_range *ranges;
    };
    uint64_t offset;       /* UWDF_IO_OFFSET_CURRENT: the file position (streams) */
    int64_t timeout_sec, timeout_nsec;
    int64_t res;           /* out: bytes transferred or -errno */
    /* Set by the framework for the core (lib/engine_pieces.c); a backend
     * only ever sees pieces within its limits. pieces: more segments or
     * bytes than one kernel op takes, run as consecutive ops; bounce: an
     * O_DIRECT op whose segments the kernel would refuse (lengths or
     * addresses off the alignment), staged through an aligned buffer. */
    bool pieces;
    bool bounce;
    bool core_batched; /* core: queued for a file with batching (lib/engine.c); here, where it adds no padding */
    uint32_t be_flags;
    uint64_t res_done;     /* out, with res < 0: bytes earlier pieces moved */
    struct uwdf_io *next;  /* link for whoever holds the io now (backend while accepted) */
    /* Every request that is ever sent carries one io: the fields are
     * ordered to leave no padding, and be_area is as large as the largest
     * user needs (libaio's struct iocb, 64 bytes). */
    uint64_t be_area[8];
    /* core (lib/engine.c) only */
    uint8_t core_cmd;
    uint8_t core_where;
    bool core_cancel_early;
    bool core_may_run_here; /* set by the framework: the sender waits for it on its own thread */
    bool core_untimed;      /* set by the framework: no timeout of any kind on this send */
    bool core_piecing;      /* a piece of a pieces op is in flight */
    uint16_t core_cancels;  /* cancels pushed and not yet tried (engine lock) */
    struct uwdf_io *core_next;
    struct uwdf_io *core_cancel_next;
    struct uwdf_io_pieces *core_pieces; /* kept for the io's next pieces op */
    /* IO_STALLED: when the stall injector releases it. Otherwise the
     * hand-over time (UwdfIoTargetSetHandOverTimes; 0: none), which the
     * injector's stall loses. */
    int64_t core_release_ns;
};

#define UWDF_IO_OFFSET_CURRENT UINT64_MAX
/* max_segments of an engine that takes any number (fits an int). */
#define UWDF_BE_NO_SEGMENT_LIMIT 0x7fffffffu

/* A wait for a completion batch (reap_min > 1) is cut into slices this
 * long: the kernel counts the wake-up's own completion as one of the
 * batch, so a wake() during such a wait is seen at the end of a slice. */
#define UWDF_BE_BATCH_WAIT_SLICE_NS (200LL * 1000)

struct uwdf_backend_ops {
    const char *name;
    unsigned caps;
    /* The most segments and bytes one op may carry; 0: the kernel's
     * (IOV_MAX; MAX_RW_COUNT, 2 GiB - 4 KiB). The core runs a larger
     * request as consecutive ops within them (lib/engine_pieces.c).
     * UWDF_BE_NO_SEGMENT_LIMIT: any number of segments (an engine that
     * gathers them into a buffer of its own). A file may lower max_bytes
     * (struct uwdf_engine_file). */
    unsigned max_segments;
    uint64_t max_bytes;
    /* 0 if this engine can be set up in this process, else -errno. Any thread. */
    int (*probe)(void);
    /* Create the kernel context; store private state in e->be. e->depth is
     * the number of ops expected in flight (more may arrive: queue them). */
    int (*open)(struct uwdf_engine *e);
    /* Tear down. Nothing is in flight: the core waits before calling. */
    void (*close)(struct uwdf_engine *e);
    /* Accept one op. With defer_submit the op may be staged until flush();
     * otherwise it goes to the kernel before returning. Returns 0, or -errno
     * if the op cannot be accepted at all (it will then not be reaped).
     * Once accepted, errors come back as a completion with res < 0. */
    int (*queue)(struct uwdf_engine *e, struct uwdf_io *io, bool defer_submit);
    /* Hand every staged op to the kernel. */
    void (*flush)(struct uwdf_engine *e);
    /* Ask the kernel to stop an accepted op. 0: a cancel was delivered;
     * -EALREADY: running and may not stop; -ENOENT: not found (finishing);
     * -ENOTSUP: the engine cannot cancel. The op still comes back through
     * reap() exactly once either way. */
    int (*cancel)(struct uwdf_engine *e, struct uwdf_io *io);
    /* Flush staged ops, then wait up to timeout_ns (-1: no limit, 0: poll)
     * for completions; store up to max finished ops in done[] (res and
     * timed_out filled) and return how many; 0 on timeout or wake(); -errno
     * on a fatal error. e->reap_min (at least 1) is how many completions
     * the core would like to wait for at once (a completion batch): a
     * backend may wait in the kernel for that many, in slices of at most
     * UWDF_BE_BATCH_WAIT_SLICE_NS so a wake() is still seen, and may
     * return fewer. */
    int (*reap)(struct uwdf_engine *e, struct uwdf_io **done, int max, int64_t timeout_ns);
    /* Make a blocked or upcoming reap() return promptly. Any thread. */
    void (*wake)(struct uwdf_engine *e);
    /* Optional (NULL: the engine has no such thing). Engine thread only.
     * register_file: give f a registered-file slot in the engine, so its
     * ops skip the kernel's per-op file lookup. 0, -EBUSY (f has one), or
     * -errno (-ENOSPC: no slot free; f keeps working through its fd).
     * register_buffers: pin n user buffers of f with the kernel once, so
     * f's reads and writes that lie inside one skip the per-I/O page
     * mapping. 0, -EBUSY (f has buffers registered), or -errno with nothing
     * registered. unregister_file: drop whatever f holds (slot, buffers);
     * nothing of f is in flight, and once it returns the engine's kernel
     * context holds no reference on f's file or pages. */
    int (*register_file)(struct uwdf_engine *e, struct uwdf_engine_file *f);
    int (*register_buffers)(struct uwdf_engine *e, struct uwdf_engine_file *f, const struct iovec *iov,
                            unsigned n);
    void (*unregister_file)(struct uwdf_engine *e, struct uwdf_engine_file *f);
    /* Optional. Perform io on the calling thread (never the engine thread)
     * and wait for it there, on a context of that thread's own rather than
     * the engine's: a synchronous sender then pays no hand-off to the
     * engine thread and back. 0: done, res and timed_out filled. -errno:
     * not started (the caller queues it normally). The op cannot be
     * cancelled once started, so the core only offers ops that cannot
     * block indefinitely (not streams). */
    int (*run_here)(struct uwdf_io *io);
    /* Optional, for engines whose files are not descriptors (nbd: f->be is
     * the target's hold on its export's connections, set by the opener).
     * Engine thread only. attach_file: start serving f (its sockets join the engine's poll
     * set); 0 or -errno (f is then not attached). detach_file: nothing of
     * f's ops is in flight for the core; let go of f entirely (close its
     * connections, finishing what the backend still holds for them). */
    int (*attach_file)(struct uwdf_engine *e, struct uwdf_engine_file *f);
    void (*detach_file)(struct uwdf_engine *e, struct uwdf_engine_file *f);
};

/* lib/engine_pool.c, for a backend whose connections several files share
 * and which must therefore all run on one engine (nbd): a place on an
 * engine of ops's pool that no file holds (the engine runs while the place
 * is held), or NULL with *err; and its release (any thread; the engine may
 * stop with it, so never from that engine's thread unless a file still
 * holds a place on it). */
struct uwdf_engine *uwdf_engine_hold(const struct uwdf_backend_ops *ops, int *err);
void uwdf_engine_unhold(struct uwdf_engine *e);

/* lib/engine.c, for a backend that hands staged ops to the kernel inside
 * queue() or cancel() (its submission ring is full): call it right after
 * that submitting call, so the hand-over times (UwdfIoTargetSetHandOverTimes)
 * of what went are that call's. Engine thread. */
void uwdf_engine_handover_now(struct uwdf_engine *e);

/* backends/psync.c: io as one blocking system call on the calling thread;
 * 0 (res filled) or -errno if not started. Any thread. */
int uwdf_psync_run(struct uwdf_io *io);

extern const struct uwdf_backend_ops uwdf_backend_io_uring;
extern const struct uwdf_backend_ops uwdf_backend_libaio;
extern const struct uwdf_backend_ops uwdf_backend_null;

#ifdef HAVE_LIBNBD
/* backends/nbd.c: NBD exports through libnbd. */
extern const struct uwdf_backend_ops uwdf_backend_nbd;
struct uwdf_nbd_export;
/* What the server said about an export (after connecting). */
struct uwdf_nbd_info {
    uint64_t size;
    uint32_t min_block, preferred_block, max_block; /* nbd_get_block_size, 0 if not sent */
    bool read_only, can_flush, can_fua, can_trim, can_zero, multi_conn;
    unsigned connections; /* open to the export (maybe by an earlier target sharing them) */
};
/* A target's hold on an export (libnbd's URI syntax, plus
 * uwdf-connections=N and uwdf-share=0|1 in the query), on the calling
 * thread: the connections already open to the same URI (server, export,
 * TLS settings, connection count) when some target shares them, else new
 * ones. write_through: every write of this target is FUA. 0 and *out, or
 * -errno with a reason in why (-ERANGE: a bad uwdf- parameter; otherwise
 * libnbd's errno). The export belongs to the caller until an engine
 * attaches it (attach_file), which must be uwdf_nbd_export_engine's (the
 * engine that runs its connections); uwdf_nbd_export_free drops one that
 * was never attached. */
int uwdf_nbd_connect(const char *uri, bool write_through, struct uwdf_nbd_export **out, struct uwdf_nbd_info *info,
                     char *why, size_t why_len);
struct uwdf_engine *uwdf_nbd_export_engine(const struct uwdf_nbd_export *x);
void uwdf_nbd_export_free(struct uwdf_nbd_export *x);
/* The connections of an export, as the engine thread last left them
 * (UwdfIoTargetGetConnectionState). Any thread, while x is attached. */
struct uwdf_nbd_state {
    unsigned connections, live; /* connections, and of them up now */
    unsigned retrying;          /* of them being reconnected */
    unsigned attempts;          /* the most attempts of a reconnect under way */
    unsigned max_attempts;      /* uwdf-reconnect=N */
    uint64_t losses, reconnects; /* connections lost, and brought back */
    int last_err;               /* errno of the last loss or failed attempt; 0: none */
    char last_why[128];         /* what it was, as logged */
};
void uwdf_nbd_export_state(const struct uwdf_nbd_export *x, struct uwdf_nbd_state *out);
#endif

#ifdef HAVE_LIBRBD
/* backends/rbd.c: Ceph RBD images through librbd. */
extern const struct uwdf_backend_ops uwdf_backend_rbd;
struct uwdf_rbd_image;
/* Where opening an image failed, for the status the open reports. */
enum uwdf_rbd_stage {
    UWDF_RBD_STAGE_NAME,    /* the name does not parse, or an option is unknown or refused */
    UWDF_RBD_STAGE_CONF,    /* the configuration file */
    UWDF_RBD_STAGE_CONNECT, /* reaching the cluster's monitors */
    UWDF_RBD_STAGE_POOL,    /* the pool (or namespace) */
    UWDF_RBD_STAGE_IMAGE,   /* the image or its snapshot */
};
/* What the image said about itself (after opening). */
struct uwdf_rbd_info {
    uint64_t size;
    uint64_t object_size;
    uint64_t stripe_unit;
    bool snapshot; /* opened at a snapshot: read-only */
};
/* Open the image named by spec (the text after "rbd:":
 * pool[/namespace]/image[@snapshot][:id=USER][:conf=PATH][:KEY=VALUE]...,
 * qemu's syntax; '\' escapes the next character) on the calling thread,
 * connecting to its cluster or sharing the connection already open for
 * the same configuration, user and options. writable: open for writing
 * (a snapshot never is). write_through: every write is followed by a
 * flush. 0 and *out, or -errno with *stage and a reason in why. The image
 * belongs to the caller until an engine attaches it (attach_file);
 * uwdf_rbd_image_free drops one that was never attached. */
int uwdf_rbd_open(const char *spec, bool writable, bool write_through, struct uwdf_rbd_image **out,
                  struct uwdf_rbd_info *info, enum uwdf_rbd_stage *stage, char *why, size_t why_len);
void uwdf_rbd_image_free(struct uwdf_rbd_image *img);
#endif

/* An engine: a backend instance plus its completion thread, shared by the
 * files attached to it. Backends use `be` (their private state) and
 * `depth` (ops the engine expects in flight at once, over all its files);
 * the rest belongs to lib/engine.c. */
struct uwdf_engine {
    void *be;
    unsigned depth;
    unsigned reap_min; /* set by the core before each reap() */
    const struct uwdf_backend_ops *ops;
    struct uwdf_engine_core *core;
};

#endif
