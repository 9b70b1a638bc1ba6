/* WDFIOTARGET (lib/iotarget.c, lib/iotarget_send.c, lib/iotarget_format.c)
 * and what answers for a file or block-device target beside the kernel
 * (lib/geometry.c, lib/blockops.c). Not installed. */
#ifndef UWDF_IOTARGET_H
#define UWDF_IOTARGET_H

#include "biased_lock.h"
#include "device.h"
#include "engine.h"
#include "object.h"
#include "worker.h"

struct uwdf_request;

/* Stack locations a request needs for a file or block-device target: the
 * kernel is the only driver below. */
#define UWDF_FILE_TARGET_STACK 1

/* A target's state (t->state): WDF_IO_TARGET_STATE, with a close that is
 * under way told apart from one that is done. Written under the target's
 * lock; read without it where a recent answer is enough (a format checks
 * that the target is open: a close that starts right after fails the send
 * instead). It changes only through the transitions below (caller holds
 * the lock).
 *
 *               open                    start, stop, purge
 *   CLOSED ------------> STARTED  <------------------------>  STOPPED, PURGED
 *   CLOSED_QR ------^       |                                     |
 *      ^    ^               +-------------- close ----------------+
 *      |    |                                |
 *      |    |          CLOSING, CLOSING_QR or DELETING (as the close's kind)
 *      |    +-- closed -- CLOSING_QR         |
 *      +------- closed -- CLOSING            +-- closed (from DELETING) --> DELETED
 *
 *   transition  from                        to
 *   open        CLOSED, CLOSED_QR           STARTED
 *   start       STARTED, STOPPED, PURGED    STARTED
 *   stop        STARTED, STOPPED, PURGED    STOPPED
 *   purge       STARTED, STOPPED, PURGED    PURGED
 *   close       STARTED, STOPPED, PURGED    CLOSING, CLOSING_QR or DELETING
 *   closed      CLOSING, CLOSING_QR,        CLOSED, CLOSED_QR, DELETED
 *               DELETING                    (respectively)
 *   delete      CLOSED, CLOSED_QR           DELETED
 *               CLOSING, CLOSING_QR         DELETING (deleted while a close runs)
 */
enum uwdf_target_state {
    UWDF_TS_CLOSED = 0, /* Closed: not open (as created, or closed) */
    UWDF_TS_CLOSED_QR,  /* ClosedForQueryRemove */
    UWDF_TS_STARTED,    /* Started */
    UWDF_TS_STOPPED,    /* Stopped: sends pend */
    UWDF_TS_PURGED,     /* Purged: sends fail, but those that ignore the state */
    UWDF_TS_CLOSING,    /* Closed, while the close cancels and waits for sent I/O */
    UWDF_TS_CLOSING_QR, /* ClosedForQueryRemove, likewise */
    UWDF_TS_DELETING,   /* Deleted, likewise */
    UWDF_TS_DELETED,    /* Deleted: never opens again */
};
extern const struct uwdf_state_machine uwdf_target_machine;
#define UWDF_TS(s) UWDF_STATE_BIT(UWDF_TS_##s)
#define UWDF_TS_ANY_CLOSED  (UWDF_TS(CLOSED) | UWDF_TS(CLOSED_QR))
#define UWDF_TS_ANY_OPEN    (UWDF_TS(STARTED) | UWDF_TS(STOPPED) | UWDF_TS(PURGED))
#define UWDF_TS_ANY_CLOSING (UWDF_TS(CLOSING) | UWDF_TS(CLOSING_QR) | UWDF_TS(DELETING))

struct uwdf_iotarget {
    struct uwdf_object obj;
    struct uwdf_device *device;
    struct uwdf_biased_lock lock; /* biased to the engine thread */
    pthread_cond_t idle_cond;
    _Atomic uint8_t state; /* enum uwdf_target_state */
    int fd;
    bool is_block;
    bool is_stream; /* FIFO, pipe, socket, character device */
    bool direct;
    bool write_through;
    bool remote; /* an NBD export or RBD image: no descriptor; its engine does everything */
    bool remote_read_only; /* remote: the export or image refuses writes (IOCTL_DISK_IS_WRITABLE) */
    bool remote_trim;      /* remote: discards reach the server (StorageDeviceTrimProperty) */
    ACCESS_MASK access;
    uint64_t size;
    uint32_t logical_sector;
    uint32_t physical_sector;
    uint32_t dio_mem_align;
    uint32_t dio_offset_align;
    /* The engine serving the target while it is open (target_lock_hot
     * reads it without the lock), and the target's file on it. */
    struct uwdf_engine *engine;
    /* The engine whose thread takes the lock by its biased fast path
     * (target_lock_hot): the target's own, or for a device target the
     * engine below it (NULL: none). Read without the lock. */
    struct uwdf_engine *lock_engine;
    struct uwdf_engine_attachment attach;
    struct uwdf_work close_work; /* a close finished on the worker (target_close) */
    LIST_ENTRY sent;
    LIST_ENTRY pended;
    /* Sent requests in flight. Under the lock only, both ways: on the
     * engine thread that is its biased fast path, so a send and its
     * completion count with plain stores, no locked instruction. */
    unsigned sent_count;
    unsigned waiters;
    /* Send states of its requests while they are sent, kept for the next
     * sends (lib/iotarget_send.c, target_pool_take_locked): as many as
     * were ever in flight at once. */
    struct uwdf_request_send *snd_pool;
    atomic_ullong file_pos;
    char *path;
    bool by_descriptor; /* opened beneath a root: never re-opened by name */
    WDF_IO_TARGET_OPEN_PARAMS open_params;
    FILE_OBJECT file_object;
    struct uwdf_device *lower; /* an in-process device target, referenced */
    bool lower_file_open;      /* its create succeeded: the close sends cleanup and close */
};

/* Caller holds the target lock. */
static inline unsigned uwdf_iotarget_sent(struct uwdf_iotarget *t)
{
    return t->sent_count;
}

/* One sent request fewer, under the target lock: the last one wakes the
 * threads waiting for the target to go idle (Stop, Purge, Close). */
static inline void uwdf_iotarget_sent_put_locked(struct uwdf_iotarget *t)
{
    if (--t->sent_count == 0 && t->waiters)
        pthread_cond_broadcast(&t->idle_cond);
}

/* The target's state, with the lock or (for a recent answer) without. */
static inline unsigned uwdf_ts_get(const struct uwdf_iotarget *t)
{
    return atomic_load_explicit(&t->state, memory_order_acquire);
}
/* Open: started, stopped or purged, and not closing. */
static inline bool uwdf_iotarget_is_open(const struct uwdf_iotarget *t)
{
    return uwdf_state_in(UWDF_TS_ANY_OPEN, uwdf_ts_get(t));
}
/* Opened, and not closed yet (a close may be under way): it has its file. */
static inline bool uwdf_iotarget_is_opened(const struct uwdf_iotarget *t)
{
    return uwdf_state_in(UWDF_TS_ANY_OPEN | UWDF_TS_ANY_CLOSING, uwdf_ts_get(t));
}

static inline void uwdf_ts_change(struct uwdf_iotarget *t, uint32_t from, unsigned to, const char *transition)
{
    unsigned old = atomic_load_explicit(&t->state, memory_order_relaxed);
    if (UWDF_UNLIKELY(!uwdf_state_in(from, old)))
        uwdf_state_illegal(&uwdf_target_machine, transition, t->obj.handle, old, to);
    atomic_store_explicit(&t->state, (uint8_t)to, memory_order_release);
}
static inline void uwdf_ts_open(struct uwdf_iotarget *t)
{
    uwdf_ts_change(t, UWDF_TS_ANY_CLOSED, UWDF_TS_STARTED, "open");
}
static inline void uwdf_ts_start(struct uwdf_iotarget *t)
{
    uwdf_ts_change(t, UWDF_TS_ANY_OPEN, UWDF_TS_STARTED, "start");
}
static inline void uwdf_ts_stop(struct uwdf_iotarget *t)
{
    uwdf_ts_change(t, UWDF_TS_ANY_OPEN, UWDF_TS_STOPPED, "stop");
}
static inline void uwdf_ts_purge(struct uwdf_iotarget *t)
{
    uwdf_ts_change(t, UWDF_TS_ANY_OPEN, UWDF_TS_PURGED, "purge");
}
/* kind: WdfIoTargetClosed, WdfIoTargetClosedForQueryRemove or
 * WdfIoTargetDeleted, what WdfIoTargetGetState reports from now on. */
static inline void uwdf_ts_close(struct uwdf_iotarget *t, WDF_IO_TARGET_STATE kind)
{
    uwdf_ts_change(t, UWDF_TS_ANY_OPEN,
                   kind == WdfIoTargetDeleted             ? UWDF_TS_DELETING
                   : kind == WdfIoTargetClosedForQueryRemove ? UWDF_TS_CLOSING_QR
                                                          : UWDF_TS_CLOSING,
                   "close");
}
static inline void uwdf_ts_closed(struct uwdf_iotarget *t)
{
    unsigned s = atomic_load_explicit(&t->state, memory_order_relaxed);
    uwdf_ts_change(t, UWDF_TS_ANY_CLOSING,
                   s == UWDF_TS_DELETING ? UWDF_TS_DELETED : s == UWDF_TS_CLOSING_QR ? UWDF_TS_CLOSED_QR : UWDF_TS_CLOSED,
                   "closed");
}
static inline void uwdf_ts_delete(struct uwdf_iotarget *t)
{
    unsigned s = atomic_load_explicit(&t->state, memory_order_relaxed);
    uwdf_ts_change(t, UWDF_TS_ANY_CLOSED | UWDF_TS(CLOSING) | UWDF_TS(CLOSING_QR),
                   uwdf_state_in(UWDF_TS_ANY_CLOSED, s) ? UWDF_TS_DELETED : UWDF_TS_DELETING, "delete");
}

/* Stack locations a request needs below its sender for target t. */
static inline CCHAR uwdf_iotarget_stack_need(const struct uwdf_iotarget *t)
{
    return t->lower ? t->lower->wdm.StackSize : UWDF_FILE_TARGET_STACK;
}
/* Open t (a device's local target) on dev, the device below it in a PnP
 * stack (lib/pnp.c). */
NTSTATUS uwdf_iotarget_attach(struct uwdf_iotarget *t, struct uwdf_device *dev);
/* A target no device owns (no parent: the caller deletes it), opened on
 * the device name (\Device\X or a symbolic link, then the file name) leads
 * to, IRP_MJ_CREATE sent: a Zw handle on a device (lib/zwfile.c).
 * STATUS_OBJECT_NAME_NOT_FOUND if name leads to no device; the create's
 * status if it fails (nothing is left then). */
NTSTATUS uwdf_iotarget_open_device_name(const char *name, PWDF_IO_TARGET_OPEN_PARAMS params, WDFIOTARGET *out);
/* An in-process device completed a packet sent to it (lib/queue.c). */
void uwdf_iotarget_device_done(struct uwdf_request *req, NTSTATUS status, ULONG_PTR information);

_Static_assert(offsetof(struct uwdf_iotarget, obj) == 0, "lookup casts the object pointer");
static inline struct uwdf_iotarget *uwdf_iotarget_lookup(WDFIOTARGET handle, const char *ddi)
{
    return (struct uwdf_iotarget *)uwdf_object_lookup(handle, UWDF_OBJ_IOTARGET, ddi); /* obj is first */
}
/* Queue a formatted request to the target (WdfRequestSend's core). Returns
 * STATUS_SUCCESS if sent or pended; otherwise the failure, with nothing
 * left half done. */
NTSTATUS uwdf_iotarget_submit(struct uwdf_iotarget *target, struct uwdf_request *req,
                              PWDF_REQUEST_SEND_OPTIONS options);
/* Validate a request for formatting to t: STATUS_INVALID_DEVICE_REQUEST
 * (sent), STATUS_INVALID_DEVICE_STATE (target not open),
 * STATUS_REQUEST_NOT_ACCEPTED / STATUS_INSUFFICIENT_RESOURCES (IRP). */
NTSTATUS uwdf_iotarget_prepare_request(struct uwdf_iotarget *t, struct uwdf_request *req,
                                       const char *ddi);
/* Cancel a sent request (WdfRequestCancelSentRequest's core). */
bool uwdf_iotarget_cancel_request(struct uwdf_request *req);
/* The access and option flags WdfIoTargetOpen opens a file with
 * (O_RDWR, O_DIRECT, ...), without the disposition's. */
NTSTATUS uwdf_iotarget_open_flags(const WDF_IO_TARGET_OPEN_PARAMS *p, int *flags);
/* Opens the target on fd, a file opened with flags (and O_NONBLOCK) by
 * whoever resolved name, which is kept only for messages: such a target is
 * never re-opened by name. The target owns fd, whatever the outcome. */
NTSTATUS uwdf_iotarget_open_fd(WDFIOTARGET IoTarget, PWDF_IO_TARGET_OPEN_PARAMS OpenParams, int fd, int flags,
                               const char *name);
/* Geometry (lib/geometry.c) */
int uwdf_geometry_probe(struct uwdf_iotarget *target);
/* Discard and zeroing (lib/blockops.c): blocking, so run on the worker. */
bool uwdf_blockops_handles(ULONG code);
NTSTATUS uwdf_blockops_ioctl(struct uwdf_iotarget *target, ULONG code, const void *in, size_t in_len);
/* Validate a discard or zeroing IOCTL's input for target (all ranges before
 * any is used), then call fn for each range; fn's -errno ends the walk. */
typedef int (*uwdf_blockops_range_fn)(void *ctx, uint64_t offset, uint64_t length);
NTSTATUS uwdf_blockops_for_each_range(struct uwdf_iotarget *target, ULONG code, const void *in, size_t in_len,
                                      uwdf_blockops_range_fn fn, void *ctx);
/* Between the target's own files (lib/iotarget.c, lib/iotarget_send.c,
 * lib/iotarget_format.c). Hand a request that is on the sent list to the
 * engine, outside the lock; fail a pended request (caller holds the lock:
 * it moves to the sent list, to complete through the engine thread like
 * any other); try to cancel a sent request, for which the caller holds a
 * completion reference until the attempt is made. */
void uwdf_iotarget_dispatch(struct uwdf_iotarget *t, struct uwdf_request *req);
void uwdf_iotarget_fail_pended_locked(struct uwdf_iotarget *t, struct uwdf_request *req, NTSTATUS status);
void uwdf_iotarget_cancel_io(struct uwdf_iotarget *t, struct uwdf_request *req);
/* WDF_REQUEST_SEND_OPTIONS as every send checks it. */
NTSTATUS uwdf_iotarget_send_options_validate(PWDF_REQUEST_SEND_OPTIONS o);
/* Send and wait (PASSIVE_LEVEL); false if it was not sent. *status: the
 * send's failure, or the request's outcome. */
bool uwdf_iotarget_send_sync(struct uwdf_iotarget *t, struct uwdf_request *req, PWDF_REQUEST_SEND_OPTIONS options,
                             bool call_routine, NTSTATUS *status);
/* IOCTLs answered by the framework for file and block-device targets. */
NTSTATUS uwdf_iotarget_ioctl(struct uwdf_iotarget *target, ULONG code, const void *in, size_t in_len,
                             void *out, size_t out_len, ULONG_PTR *information);

#endif
