/* The receiving side of an in-process device stack: WDFQUEUE
 * (lib/queue.c), its reserved requests (lib/forward_progress.c) and the
 * requests it presents to the driver (lib/request_received.c). Not
 * installed. */
#ifndef UWDF_QUEUE_H
#define UWDF_QUEUE_H

#include "biased_lock.h"
#include "device.h"
#include "engine.h"
#include "request.h"
#include "worker.h"

struct uwdf_iotarget;
struct uwdf_queue;

/* Deliver a packet sent to a device target into the device's queues. The
 * request is on the target's sent list with its I/O reference. */
void uwdf_queue_deliver(struct uwdf_device *dev, struct uwdf_request *sender);
/* A packet for a device of a PnP stack that its queues do not take
 * (lib/pnp.c): completed (removed device) or passed to the device below
 * (a filter with no handler for it; q is the queue the packet would go
 * to, or NULL). true: the packet is dealt with. */
bool uwdf_pnp_deliver_elsewhere(struct uwdf_device *dev, struct uwdf_queue *q, struct uwdf_request *sender);
/* The lock a queue's callbacks run under (its own when its scope is None),
 * whether they run at PASSIVE_LEVEL, and whether its scope is Queue or
 * Device (lib/queue.c): for WdfObjectAcquireLock and for timers and work
 * items with AutomaticSerialization. */
pthread_mutex_t *uwdf_queue_callback_lock(struct uwdf_object *queue, bool *passive, bool *serialized);
/* WdfRequestSend(SEND_AND_FORGET) of a received request. */
NTSTATUS uwdf_queue_send_and_forget(struct uwdf_request *req, struct uwdf_iotarget *t);

/* The cancel routines an IRP's cancel runs (lib/irp.c), by its kind: a
 * request waiting on its queue, one the driver marked cancelable, a packet
 * waiting on q for a reserved request. */
void uwdf_queue_cancel_on_queue(struct uwdf_request *r);
void uwdf_request_cancel_driver(struct uwdf_request *r);
void uwdf_fp_cancel_waiting(struct uwdf_request *sender, struct uwdf_queue *q);

/* Where a request received from a queue is (request->qstate). It changes
 * only through the transitions below, under its queue's lock; it is read
 * without the lock too.
 *
 *          queue           present          begin_completion            complete
 *   NONE ---------> QUEUED ---------> OWNED ------------------> COMPLETING ---------> COMPLETED
 *                     |                ^ |                                              ^
 *                     | cancel present | | forward                   complete           |
 *                     +-> CANCELING ---+ +-------> FORWARDED ---------------------------+
 *                            |                     (give_back: OWNED)                   |
 *                            +------------------------ complete ------------------------+
 *
 *   NONE --take--> OWNED: presented by the framework without a queue
 *     (EvtDeviceFileCreate, EvtIoInCallerContext)
 *   OWNED --unqueue--> NONE: forwarded or requeued; then queue, or give_back if refused
 *   NONE --complete--> COMPLETED: a new request its queue would not take
 *   OWNED --complete--> COMPLETED: the framework completes it (no callback for its type,
 *     a stop acknowledgement whose requeue is refused)
 *   COMPLETED --recycle--> NONE: a reserved request back in its pool
 *
 *   transition        from                                         to
 *   queue             NONE                                         QUEUED
 *   cancel            QUEUED, CANCELING                            CANCELING
 *   present           QUEUED, CANCELING (EvtIoCanceledOnQueue)     OWNED
 *   give_back         NONE, FORWARDED (a move or send refused)     OWNED
 *   take              NONE (presented without a queue)             OWNED
 *   begin_completion  OWNED                                        COMPLETING
 *   forward           OWNED (sent and forgotten)                   FORWARDED
 *   unqueue           OWNED (forwarded or requeued to a queue)     NONE
 *   complete          NONE, CANCELING, OWNED, COMPLETING,          COMPLETED
 *                     FORWARDED
 *   recycle           NONE, COMPLETED                              NONE
 */
enum uwdf_qstate {
    UWDF_QS_NONE = 0,   /* driver-created, a reserved request in its pool, or between queues */
    UWDF_QS_QUEUED,     /* waiting on a queue */
    UWDF_QS_CANCELING,  /* taken off the queue by its cancel routine */
    UWDF_QS_OWNED,      /* presented to (or retrieved by) the driver */
    UWDF_QS_COMPLETING, /* the driver is completing it; still on the owned list */
    UWDF_QS_COMPLETED,  /* completed; the handle lives while referenced */
    UWDF_QS_FORWARDED,  /* sent and forgotten: the framework completes it when the target does */
};
extern const struct uwdf_state_machine uwdf_qstate_machine;
#define UWDF_QS(s) UWDF_STATE_BIT(UWDF_QS_##s)

static inline void uwdf_qs_change(struct uwdf_request *r, uint32_t from, enum uwdf_qstate to, const char *transition)
{
    /* Transitions are serialized (the queue's lock, or the request's one
     * owner), so a load and a store do: no locked exchange per step. */
    unsigned old = atomic_load_explicit(&r->qstate, memory_order_relaxed);
    atomic_store_explicit(&r->qstate, (uint8_t)to, memory_order_release);
    if (UWDF_UNLIKELY(!uwdf_state_in(from, old)))
        uwdf_state_illegal(&uwdf_qstate_machine, transition, r->obj.handle, old, to);
}
static inline void uwdf_qs_queue(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(NONE), UWDF_QS_QUEUED, "queue");
}
static inline void uwdf_qs_cancel(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(QUEUED) | UWDF_QS(CANCELING), UWDF_QS_CANCELING, "cancel");
}
static inline void uwdf_qs_present(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(QUEUED) | UWDF_QS(CANCELING), UWDF_QS_OWNED, "present");
}
static inline void uwdf_qs_give_back(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(NONE) | UWDF_QS(FORWARDED), UWDF_QS_OWNED, "give_back");
}
static inline void uwdf_qs_take(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(NONE), UWDF_QS_OWNED, "take");
}
static inline void uwdf_qs_begin_completion(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(OWNED), UWDF_QS_COMPLETING, "begin_completion");
}
static inline void uwdf_qs_forward(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(OWNED), UWDF_QS_FORWARDED, "forward");
}
static inline void uwdf_qs_unqueue(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(OWNED), UWDF_QS_NONE, "unqueue");
}
static inline void uwdf_qs_complete(struct uwdf_request *r)
{
    uwdf_qs_change(r,
                   UWDF_QS(NONE) | UWDF_QS(CANCELING) | UWDF_QS(OWNED) | UWDF_QS(COMPLETING) | UWDF_QS(FORWARDED),
                   UWDF_QS_COMPLETED, "complete");
}
static inline void uwdf_qs_recycle(struct uwdf_request *r)
{
    uwdf_qs_change(r, UWDF_QS(NONE) | UWDF_QS(COMPLETED), UWDF_QS_NONE, "recycle");
}

/* A state change the driver asked for (Stop, Drain, Purge, StopAndPurge)
 * that has not finished yet. */
enum uwdf_queue_op {
    QOP_NONE = 0,
    QOP_STOP,
    QOP_DRAIN,
    QOP_PURGE,
    QOP_STOP_PURGE,
};

/* A queue's state (q->state, under q->lock): whether it accepts new
 * requests and whether it presents them (WDF_IO_QUEUE_STATE's two bits,
 * which the values carry), and its deletion. It changes only through the
 * transitions below. A live state is any but DELETING.
 *
 *                stop_and_purge
 *    STARTED ----------------------> STOPPED
 *      |  ^ <--------- start ---------  |      start: a live state -> STARTED
 *      |  +----------- start ------+    |      stop: a live state -> STOPPED
 *      | drain                     |    | drain
 *      v         stop_and_purge    |    v      delete: a live state -> DELETING,
 *    DRAINED ----------------------> HALTED            which it never leaves
 *
 *   transition      from           to
 *   start           a live state   STARTED    (WdfIoQueueStart, creation)
 *   stop            a live state   STOPPED    (WdfIoQueueStop: accepts again)
 *   drain           a live state   itself without ACCEPTS (Drain, Purge)
 *   stop_and_purge  a live state   itself without DISPATCHES
 *   delete          a live state   DELETING   (the queue's disposal begins)
 */
enum uwdf_queue_state {
    UWDF_QUEUE_HALTED = 0,   /* accepts nothing, presents nothing */
    UWDF_QUEUE_STOPPED = 1,  /* accepts, presents nothing */
    UWDF_QUEUE_DRAINED = 2,  /* presents what it holds, accepts nothing */
    UWDF_QUEUE_STARTED = 3,  /* accepts and presents */
    UWDF_QUEUE_DELETING = 4, /* being deleted: neither, for good */
};
#define UWDF_QUEUE_ACCEPTS    1u
#define UWDF_QUEUE_DISPATCHES 2u
_Static_assert(UWDF_QUEUE_ACCEPTS == WdfIoQueueAcceptRequests && UWDF_QUEUE_DISPATCHES == WdfIoQueueDispatchRequests,
               "the state carries WDF_IO_QUEUE_STATE's bits");
extern const struct uwdf_state_machine uwdf_queue_machine;
#define UWDF_QUEUE_LIVE                                                                                    \
    (UWDF_STATE_BIT(UWDF_QUEUE_HALTED) | UWDF_STATE_BIT(UWDF_QUEUE_STOPPED) | UWDF_STATE_BIT(UWDF_QUEUE_DRAINED) | \
     UWDF_STATE_BIT(UWDF_QUEUE_STARTED))

struct uwdf_fp;

struct uwdf_queue {
    struct uwdf_object obj;
    struct uwdf_device *device;
    WDF_IO_QUEUE_CONFIG config;
    bool passive;          /* callbacks at PASSIVE_LEVEL (ExecutionLevel) */
    pthread_mutex_t *sync; /* SynchronizationScope lock, or NULL */
    pthread_mutex_t own_sync;
    /* Biased to the engine thread that presents and completes the queue's
     * requests (lock_engine: the first engine thread that took it), which
     * then enters with plain stores; every other thread takes the mutex
     * (uwdf_queue_lock). lock_mode: how the holder entered (written by the
     * holder, read by its unlock). */
    struct uwdf_biased_lock lock;
    struct uwdf_engine *lock_engine;
    uint8_t lock_mode; /* enum uwdf_queue_lock_mode */
    pthread_cond_t cond;
    unsigned cond_waiters; /* threads waiting on cond (lock held to change) */
    uint8_t state; /* enum uwdf_queue_state */
    LIST_ENTRY waiting;
    unsigned waiting_count;
    LIST_ENTRY owned; /* presented to the driver, not completed or handed on */
    unsigned owned_count;
    enum uwdf_queue_op op;
    PFN_WDF_IO_QUEUE_STATE op_cb;
    WDFCONTEXT op_ctx;
    uint64_t op_gen;
    PFN_WDF_IO_QUEUE_STATE ready_cb;
    WDFCONTEXT ready_ctx;
    struct uwdf_fp *fp;
    struct uwdf_work dispatch_work;
    bool dispatch_work_queued;
};

_Static_assert(offsetof(struct uwdf_queue, obj) == 0, "lookup casts the object pointer");
static inline struct uwdf_queue *uwdf_queue_lookup(WDFQUEUE handle, const char *ddi)
{
    return (struct uwdf_queue *)uwdf_object_lookup(handle, UWDF_OBJ_QUEUE, ddi); /* obj is first */
}

/* How a queue's lock was entered (struct uwdf_queue.lock_mode). */
enum uwdf_queue_lock_mode { UWDF_QLOCK_MUTEX, UWDF_QLOCK_OWNER_FAST, UWDF_QLOCK_OWNER_SLOW };

/* q's lock. Its engine thread (the first to take it: per I/O a filter's
 * queue is entered there twice, presenting a packet a completion routine
 * resent and completing it) enters biased; any other thread revokes the
 * bias (lib/biased_lock.h). Not for a wait on q->cond: uwdf_queue_lock_mutex. */
static inline void uwdf_queue_lock(struct uwdf_queue *q)
{
    struct uwdf_engine *e = uwdf_tls_engine;
    if (e) {
        struct uwdf_engine *owner = __atomic_load_n(&q->lock_engine, __ATOMIC_RELAXED);
        if (UWDF_UNLIKELY(owner == NULL) &&
            __atomic_compare_exchange_n(&q->lock_engine, &owner, e, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            owner = e;
        if (owner == e) {
            q->lock_mode = uwdf_biased_lock_owner_acquire(&q->lock) ? UWDF_QLOCK_OWNER_FAST : UWDF_QLOCK_OWNER_SLOW;
            return;
        }
    }
    uwdf_biased_lock_acquire(&q->lock);
    q->lock_mode = UWDF_QLOCK_MUTEX;
}

/* q's lock through its mutex on any thread, the engine's too: a holder
 * that may wait on q->cond (which lets the mutex go and takes it back). */
static inline void uwdf_queue_lock_mutex(struct uwdf_queue *q)
{
    uwdf_biased_lock_acquire(&q->lock);
    q->lock_mode = UWDF_QLOCK_MUTEX;
}

static inline void uwdf_queue_unlock(struct uwdf_queue *q)
{
    uint8_t mode = q->lock_mode;
    if (mode == UWDF_QLOCK_MUTEX)
        uwdf_biased_lock_release(&q->lock);
    else
        uwdf_biased_lock_owner_release(&q->lock, mode == UWDF_QLOCK_OWNER_FAST);
}

/* The queue state's transitions (caller holds q->lock). */
static inline void uwdf_queue_change_locked(struct uwdf_queue *q, uint32_t from, unsigned to, const char *transition)
{
    unsigned old = q->state;
    if (UWDF_UNLIKELY(!uwdf_state_in(from, old)))
        uwdf_state_illegal(&uwdf_queue_machine, transition, q->obj.handle, old, to);
    q->state = (uint8_t)to;
}
static inline void uwdf_queue_start_locked(struct uwdf_queue *q)
{
    uwdf_queue_change_locked(q, UWDF_QUEUE_LIVE, UWDF_QUEUE_STARTED, "start");
}
static inline void uwdf_queue_stop_locked(struct uwdf_queue *q)
{
    uwdf_queue_change_locked(q, UWDF_QUEUE_LIVE, UWDF_QUEUE_STOPPED, "stop");
}
static inline void uwdf_queue_drain_locked(struct uwdf_queue *q)
{
    uwdf_queue_change_locked(q, UWDF_QUEUE_LIVE, q->state & ~UWDF_QUEUE_ACCEPTS, "drain");
}
static inline void uwdf_queue_stop_and_purge_locked(struct uwdf_queue *q)
{
    uwdf_queue_change_locked(q, UWDF_QUEUE_LIVE, q->state & ~UWDF_QUEUE_DISPATCHES, "stop_and_purge");
}
static inline void uwdf_queue_delete_locked(struct uwdf_queue *q)
{
    uwdf_queue_change_locked(q, UWDF_QUEUE_LIVE, UWDF_QUEUE_DELETING, "delete");
}

/* A driver callback of q runs inside these: its SynchronizationScope lock. */
static inline void uwdf_queue_cb_enter(struct uwdf_queue *q)
{
    if (q->sync)
        pthread_mutex_lock(q->sync);
}

static inline void uwdf_queue_cb_leave(struct uwdf_queue *q)
{
    if (q->sync)
        pthread_mutex_unlock(q->sync);
}

/* Put a received request on q (at the head for a requeue). false: q does
 * not accept requests; the caller decides what that means. */
bool uwdf_queue_insert(struct uwdf_queue *q, struct uwdf_request *r, bool head);
/* Take an owned request back from the driver onto dest (at the head for a
 * requeue); if dest will not take it, the driver keeps it and the result
 * is refused. */
NTSTATUS uwdf_queue_move(struct uwdf_request *r, struct uwdf_queue *src, struct uwdf_queue *dest, bool head,
                         NTSTATUS refused);
/* Complete a received request: off its queue, buffers back, the IRP up
 * to the sender; then the request goes (or returns to its pool). _locked:
 * the caller holds r->queue's lock (if it has a queue); this releases it. */
void uwdf_queue_complete(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information);
void uwdf_queue_complete_locked(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information);
/* Complete a packet no request of this device took (the IRP goes back to
 * the sender's stack location). */
void uwdf_queue_packet_complete(struct uwdf_request *sender, NTSTATUS status, ULONG_PTR information);
/* If the pending Stop/Drain/Purge is now complete: its callback (to run
 * outside the lock with uwdf_queue_run_state_cb), and waiters woken. */
PFN_WDF_IO_QUEUE_STATE uwdf_queue_state_check_locked(struct uwdf_queue *q, WDFCONTEXT *ctx);
void uwdf_queue_run_state_cb(struct uwdf_queue *q, PFN_WDF_IO_QUEUE_STATE cb, WDFCONTEXT ctx);
/* uwdf_queue_state_check_locked and the callback, taking the lock. */
void uwdf_queue_check_state(struct uwdf_queue *q);

/* A received request's buffers (lib/request_received.c): receive_setup
 * attaches the packet's IRP to r and lays its buffers out the way the
 * device's I/O type says; receive_teardown undoes that at completion. */
NTSTATUS uwdf_request_receive_setup(struct uwdf_device *dev, struct uwdf_request *r, struct uwdf_request *sender);
void uwdf_request_receive_teardown(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information);
/* Delete a request nobody saw: WDF frees it without its cleanup callbacks. */
void uwdf_request_discard(struct uwdf_request *r);
/* A request the framework presented without a queue (EvtIoInCallerContext)
 * into the queue for its type (lib/queue.c): WdfDeviceEnqueueRequest's core. */
NTSTATUS uwdf_queue_enqueue_presented(struct uwdf_device *dev, struct uwdf_request *r);

/* ---- forward progress (lib/forward_progress.c) ---- */
/* The verifier's ForwardProgressFailAll / FailRandom (UWDF_FP_FAIL): true
 * when this new request is to fail as if out of memory. */
bool uwdf_fp_inject_failure(void);
/* The policy's EvtIoAllocateRequestResources for a new request, if any. */
NTSTATUS uwdf_fp_allocate_request_resources(struct uwdf_queue *q, struct uwdf_fp *fp, struct uwdf_request *r);
/* No new request for sender's packet: a reserved one from fp (the
 * arrival's reference), if the policy says so (STATUS_UNSUCCESSFUL
 * otherwise); STATUS_PENDING when the packet waits for one;
 * STATUS_INVALID_DEVICE_STATE when q is being deleted. */
NTSTATUS uwdf_fp_take_reserved(struct uwdf_queue *q, struct uwdf_fp *fp, struct uwdf_request *sender,
                               struct uwdf_request **out);
/* A reserved request is back (its packet completed): the oldest waiting
 * packet takes it, or it returns to the pool. */
void uwdf_fp_return(struct uwdf_queue *q, struct uwdf_request *r);
/* Under the queue's lock: move the waiting packets whose cancel has not
 * taken them onto packets; whether none waits; whether every reserved
 * request is in the pool (both true of a queue without a policy, fp NULL). */
void uwdf_fp_collect_waiting_locked(struct uwdf_fp *fp, LIST_ENTRY *packets);
bool uwdf_fp_idle_locked(const struct uwdf_fp *fp);
bool uwdf_fp_all_home_locked(const struct uwdf_fp *fp);
/* References on a pool: the queue holds one until its deletion detaches
 * the pool, an arriving packet one while it uses the pool with no lock
 * (lib/queue.c); the last release frees the pool and deletes its reserved
 * requests (their cleanup callbacks run then). */
void uwdf_fp_reference(struct uwdf_fp *fp);
void uwdf_fp_release(struct uwdf_fp *fp);

#endif
