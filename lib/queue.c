/* WDFQUEUE and the receiving side of an in-process device stack: packets
 * sent to a device target become the device's own WDFREQUESTs (the IRP is
 * the sender's, one stack location down, as IoCallDriver passes it), wait
 * on a queue, are presented to the driver, and complete back up to the
 * sender. (The DDIs of a presented request and its buffers:
 * lib/request_received.c; reserved requests: lib/forward_progress.c; an
 * IRP's cancel routine and its dispatch to the cancel routines: lib/irp.c.)
 *
 * Locks: queue->lock (uwdf_queue_lock, biased to the queue's engine
 * thread) guards the queue's lists, every received request's qstate/queue
 * link and its forward-progress pool; an IRP's cancel routine
 * (no lock of its own) may be armed, cleared and claimed under it. No lock
 * is held across a driver callback. */
#include "runtime.h"
#include "device.h"
#include "iotarget.h"
#include "irp.h"
#include "lists.h"
#include "object.h"
#include "queue.h"
#include "request.h"
#include "worker.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *const qstate_names[] = {
    [UWDF_QS_NONE] = "NONE",           [UWDF_QS_QUEUED] = "QUEUED",       [UWDF_QS_CANCELING] = "CANCELING",
    [UWDF_QS_OWNED] = "OWNED",         [UWDF_QS_COMPLETING] = "COMPLETING", [UWDF_QS_COMPLETED] = "COMPLETED",
    [UWDF_QS_FORWARDED] = "FORWARDED",
};
const struct uwdf_state_machine uwdf_qstate_machine = { "request-in-queue", qstate_names,
                                                        RTL_NUMBER_OF(qstate_names) };

static const char *const queue_state_names[] = {
    [UWDF_QUEUE_HALTED] = "HALTED",   [UWDF_QUEUE_STOPPED] = "STOPPED",   [UWDF_QUEUE_DRAINED] = "DRAINED",
    [UWDF_QUEUE_STARTED] = "STARTED", [UWDF_QUEUE_DELETING] = "DELETING",
};
const struct uwdf_state_machine uwdf_queue_machine = { "WDFQUEUE", queue_state_names,
                                                       RTL_NUMBER_OF(queue_state_names) };

static bool queue_accepts(const struct uwdf_queue *q)
{
    return (q->state & UWDF_QUEUE_ACCEPTS) != 0;
}

static bool queue_dispatches(const struct uwdf_queue *q)
{
    return (q->state & UWDF_QUEUE_DISPATCHES) != 0;
}

static void queue_dispatch(struct uwdf_queue *q);

/* ---- callbacks ---- */

/* Thread-local frames of the dispatch loops running on this thread: a
 * completion inside a callback that makes the same queue dispatch again
 * leaves it to the loop below it instead of recursing. */
struct dispatch_frame {
    struct uwdf_queue *q;
    struct dispatch_frame *prev;
    bool pending; /* a dispatch of q on this thread was left to this frame */
};
static __thread struct dispatch_frame *tls_frames;

static void queue_invoke(struct uwdf_queue *q, struct uwdf_request *r)
{
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(r->irp);
    WDFQUEUE qh = (WDFQUEUE)q->obj.handle;
    WDFREQUEST rh = (WDFREQUEST)r->obj.handle;
    const WDF_IO_QUEUE_CONFIG *c = &q->config;
    struct uwdf_driver *prev = uwdf_driver_enter(q->device->driver); /* WdfGetDriver's answer */
    uwdf_queue_cb_enter(q);
    switch (s->MajorFunction) {
    case IRP_MJ_READ:
        if (c->EvtIoRead) {
            c->EvtIoRead(qh, rh, s->Parameters.Read.Length);
            goto out;
        }
        break;
    case IRP_MJ_WRITE:
        if (c->EvtIoWrite) {
            c->EvtIoWrite(qh, rh, s->Parameters.Write.Length);
            goto out;
        }
        break;
    case IRP_MJ_DEVICE_CONTROL:
        if (c->EvtIoDeviceControl) {
            c->EvtIoDeviceControl(qh, rh, s->Parameters.DeviceIoControl.OutputBufferLength,
                                  s->Parameters.DeviceIoControl.InputBufferLength,
                                  s->Parameters.DeviceIoControl.IoControlCode);
            goto out;
        }
        break;
    case IRP_MJ_INTERNAL_DEVICE_CONTROL:
        if (c->EvtIoInternalDeviceControl) {
            c->EvtIoInternalDeviceControl(qh, rh, s->Parameters.DeviceIoControl.OutputBufferLength,
                                          s->Parameters.DeviceIoControl.InputBufferLength,
                                          s->Parameters.DeviceIoControl.IoControlCode);
            goto out;
        }
        break;
    default:
        break;
    }
    if (c->EvtIoDefault) {
        c->EvtIoDefault(qh, rh);
        goto out;
    }
    /* No handler for this type: WDF fails the request. */
    uwdf_queue_cb_leave(q);
    uwdf_driver_enter(prev);
    uwdf_queue_complete(r, STATUS_INVALID_DEVICE_REQUEST, 0);
    return;
out:
    uwdf_queue_cb_leave(q);
    uwdf_driver_enter(prev);
}

/* ---- queue state ---- */

/* r joins q's owned list; the caller made it OWNED (present, give_back). */
static void queue_own_locked(struct uwdf_queue *q, struct uwdf_request *r)
{
    r->queue = q;
    r->stop_acked = r->suspended = false;
    uwdf_list_insert_tail(&q->owned, &r->queue_link);
    q->owned_count++;
}

/* A wait on q->cond (q locked; until: a CLOCK_REALTIME deadline, or
 * NULL). Waiters count themselves, so that the wake-up of every
 * completion (queue_disown_locked) costs nothing when nobody waits. */
static int queue_wait_locked(struct uwdf_queue *q, const struct timespec *until)
{
    q->cond_waiters++;
    int rc = until ? pthread_cond_timedwait(&q->cond, &q->lock.mutex, until)
                   : pthread_cond_wait(&q->cond, &q->lock.mutex);
    q->cond_waiters--;
    q->lock_mode = UWDF_QLOCK_MUTEX; /* others held it meanwhile */
    return rc;
}

static void queue_disown_locked(struct uwdf_queue *q, struct uwdf_request *r)
{
    uwdf_list_remove(&r->queue_link);
    q->owned_count--;
    r->stop_acked = r->suspended = false;
    if (q->cond_waiters)
        pthread_cond_broadcast(&q->cond);
}

static unsigned queue_owned_unacked_locked(struct uwdf_queue *q)
{
    unsigned n = 0;
    for (LIST_ENTRY *e = q->owned.Flink; e != &q->owned; e = e->Flink)
        if (!CONTAINING_RECORD(e, struct uwdf_request, queue_link)->stop_acked)
            n++;
    return n;
}

static bool queue_op_done_locked(struct uwdf_queue *q)
{
    bool fp_idle = uwdf_fp_idle_locked(q->fp);
    switch (q->op) {
    case QOP_STOP:
        return queue_owned_unacked_locked(q) == 0;
    case QOP_DRAIN:
    case QOP_PURGE:
        return q->waiting_count == 0 && q->owned_count == 0 && fp_idle;
    case QOP_STOP_PURGE:
        return q->waiting_count == 0 && fp_idle && queue_owned_unacked_locked(q) == 0;
    default:
        return false;
    }
}

/* The pending state change ends (done, or replaced by a new one): its
 * callback and context, to run outside the lock, and its waiters woken. */
static PFN_WDF_IO_QUEUE_STATE queue_op_end_locked(struct uwdf_queue *q, WDFCONTEXT *ctx)
{
    PFN_WDF_IO_QUEUE_STATE cb = q->op_cb;
    *ctx = q->op_ctx;
    q->op = QOP_NONE;
    q->op_cb = NULL;
    q->op_ctx = NULL;
    q->op_gen++;
    pthread_cond_broadcast(&q->cond);
    return cb;
}

PFN_WDF_IO_QUEUE_STATE uwdf_queue_state_check_locked(struct uwdf_queue *q, WDFCONTEXT *ctx)
{
    if (q->op == QOP_NONE || !queue_op_done_locked(q))
        return NULL;
    return queue_op_end_locked(q, ctx);
}

void uwdf_queue_run_state_cb(struct uwdf_queue *q, PFN_WDF_IO_QUEUE_STATE cb, WDFCONTEXT ctx)
{
    if (!cb)
        return;
    uwdf_queue_cb_enter(q);
    cb((WDFQUEUE)q->obj.handle, ctx);
    uwdf_queue_cb_leave(q);
}

void uwdf_queue_check_state(struct uwdf_queue *q)
{
    WDFCONTEXT ctx = NULL;
    uwdf_queue_lock(q);
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    uwdf_queue_unlock(q);
    uwdf_queue_run_state_cb(q, cb, ctx);
}

static bool queue_has_room_locked(const struct uwdf_queue *q);

static bool queue_can_present_locked(struct uwdf_queue *q)
{
    return !uwdf_list_empty(&q->waiting) && queue_has_room_locked(q);
}

/* Take the head waiting request off the queue for the driver; NULL when
 * none is left. One whose cancel is already running is left to it. */
static struct uwdf_request *queue_take_head_locked(struct uwdf_queue *q)
{
    while (!uwdf_list_empty(&q->waiting)) {
        LIST_ENTRY *e = uwdf_list_pop_head(&q->waiting);
        struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
        q->waiting_count--;
        if (!uwdf_irp_clear_cancel(r->irp)) {
            uwdf_qs_cancel(r);
            continue;
        }
        return r;
    }
    return NULL;
}

/* The dispatch loop of q running on this thread, if any. */
static struct dispatch_frame *queue_frame_of(struct uwdf_queue *q)
{
    for (struct dispatch_frame *f = tls_frames; f; f = f->prev)
        if (f->q == q)
            return f;
    return NULL;
}

/* Whether the driver may be given one more request now (queue_can_present_locked
 * without the waiting list). */
static bool queue_has_room_locked(const struct uwdf_queue *q)
{
    if (!queue_dispatches(q))
        return false;
    switch (q->config.DispatchType) {
    case WdfIoQueueDispatchSequential:
        return q->owned_count == 0;
    case WdfIoQueueDispatchParallel:
        return q->owned_count < q->config.Settings.Parallel.NumberOfPresentedRequests;
    default:
        return false;
    }
}

/* Whether a request arriving at q (locked) goes to the driver at once,
 * without waiting on the queue: nothing waits before it, the driver may
 * take one more, the dispatch need not be deferred to PASSIVE_LEVEL, no
 * dispatch loop of q below on this thread (which presents in order), and
 * the IRP is not cancelled already (which the queue's cancel path
 * handles). What it skips, being queued and taken off again at once, has
 * no effect anyone can see: a cancel that comes after this finds the
 * request presented, as it would have a moment later. */
static bool queue_present_now_locked(struct uwdf_queue *q, struct uwdf_request *r)
{
    return uwdf_list_empty(&q->waiting) && queue_has_room_locked(q) &&
           !(q->passive && uwdf_tls_irql > PASSIVE_LEVEL) && !queue_frame_of(q) && !uwdf_irp_cancelled(r->irp);
}

/* r, owned by q already, to the driver (q unlocked), as one turn of the
 * dispatch loop; a dispatch of q that the callback left to this frame runs
 * after it. */
static void queue_present_direct(struct uwdf_queue *q, struct uwdf_request *r)
{
    struct dispatch_frame frame = { q, tls_frames, false };
    tls_frames = &frame;
    queue_invoke(q, r);
    tls_frames = frame.prev;
    if (frame.pending)
        queue_dispatch(q);
}

static void queue_dispatch_work(struct uwdf_work *w)
{
    struct uwdf_queue *q = uwdf_container_of(w, struct uwdf_queue, dispatch_work);
    uwdf_queue_lock(q);
    q->dispatch_work_queued = false;
    uwdf_queue_unlock(q);
    queue_dispatch(q);
    uwdf_object_release(&q->obj);
}

static void queue_dispatch(struct uwdf_queue *q)
{
    struct dispatch_frame *below = queue_frame_of(q);
    if (below) {
        below->pending = true; /* the loop below us picks it up */
        return;
    }
    if (q->passive && uwdf_tls_irql > PASSIVE_LEVEL) {
        /* A passive-level queue called from a completion path: WDF defers
         * to a work item; the framework worker runs at PASSIVE_LEVEL. */
        uwdf_queue_lock(q);
        bool queue_it = !q->dispatch_work_queued && queue_can_present_locked(q);
        if (queue_it) {
            q->dispatch_work_queued = true;
            uwdf_object_reference(&q->obj);
        }
        uwdf_queue_unlock(q);
        if (queue_it) {
            q->dispatch_work.fn = queue_dispatch_work;
            if (uwdf_worker_queue(&q->dispatch_work) != 0) {
                uwdf_queue_lock(q);
                q->dispatch_work_queued = false;
                uwdf_queue_unlock(q);
                uwdf_object_release(&q->obj);
                uwdf_log("queue %p: could not defer dispatch to PASSIVE_LEVEL", (void *)q->obj.handle);
            }
        }
        return;
    }
    struct dispatch_frame frame = { q, tls_frames, false };
    tls_frames = &frame;
    uwdf_queue_lock(q);
    while (queue_can_present_locked(q)) {
        struct uwdf_request *r = queue_take_head_locked(q);
        if (!r)
            break;
        uwdf_qs_present(r);
        queue_own_locked(q, r);
        uwdf_queue_unlock(q);
        queue_invoke(q, r);
        uwdf_queue_lock(q);
    }
    WDFCONTEXT ctx = NULL;
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    uwdf_queue_unlock(q);
    tls_frames = frame.prev;
    uwdf_queue_run_state_cb(q, cb, ctx);
}

/* A request whose cancel routine took it off the queue (or that arrived
 * cancelled): EvtIoCanceledOnQueue gets it, or the framework completes it. */
static void queue_cancelled(struct uwdf_queue *q, struct uwdf_request *r)
{
    if (q->config.EvtIoCanceledOnQueue) {
        uwdf_queue_lock(q);
        uwdf_qs_present(r);
        queue_own_locked(q, r);
        uwdf_queue_unlock(q);
        uwdf_queue_cb_enter(q);
        q->config.EvtIoCanceledOnQueue((WDFQUEUE)q->obj.handle, (WDFREQUEST)r->obj.handle);
        uwdf_queue_cb_leave(q);
        return;
    }
    r->queue = q;
    uwdf_queue_complete(r, STATUS_CANCELLED, 0);
}

void uwdf_queue_cancel_on_queue(struct uwdf_request *r)
{
    struct uwdf_queue *q = r->queue;
    uwdf_queue_lock(q);
    if (r->qstate == UWDF_QS_QUEUED) {
        uwdf_list_remove(&r->queue_link);
        q->waiting_count--;
    }
    uwdf_qs_cancel(r);
    uwdf_queue_unlock(q);
    queue_cancelled(q, r);
}

bool uwdf_queue_insert(struct uwdf_queue *q, struct uwdf_request *r, bool head)
{
    uwdf_queue_lock(q);
    if (!queue_accepts(q)) {
        uwdf_queue_unlock(q);
        return false;
    }
    r->queue = q;
    uwdf_qs_queue(r);
    if (queue_present_now_locked(q, r)) {
        uwdf_qs_present(r);
        queue_own_locked(q, r);
        uwdf_queue_unlock(q);
        queue_present_direct(q, r);
        return true;
    }
    if (head) {
        r->queue_link.Flink = q->waiting.Flink;
        r->queue_link.Blink = &q->waiting;
        q->waiting.Flink->Blink = &r->queue_link;
        q->waiting.Flink = &r->queue_link;
    } else {
        uwdf_list_insert_tail(&q->waiting, &r->queue_link);
    }
    q->waiting_count++;
    if (!uwdf_irp_set_cancel(r->irp, UWDF_CANCEL_ON_QUEUE, r)) {
        /* Cancelled before it got here. */
        uwdf_list_remove(&r->queue_link);
        q->waiting_count--;
        uwdf_qs_cancel(r);
        uwdf_queue_unlock(q);
        queue_cancelled(q, r);
        return true;
    }
    PFN_WDF_IO_QUEUE_STATE ready = NULL;
    WDFCONTEXT ready_ctx = q->ready_ctx;
    if (q->config.DispatchType == WdfIoQueueDispatchManual && q->waiting_count == 1 && queue_dispatches(q))
        ready = q->ready_cb;
    uwdf_queue_unlock(q);
    uwdf_queue_run_state_cb(q, ready, ready_ctx);
    queue_dispatch(q);
    return true;
}

/* ---- receiving a packet ---- */

/* The queue for a packet of major, referenced; no lock: a queue's dispose
 * takes it out of the table and then waits for every lookup that may have
 * read it before to have taken its reference (queue_table_quiesce). Both
 * sides' order is sequentially consistent: a lookup that counts itself in
 * after the dispose read the count reads the table after the dispose
 * cleared it. With fp, the queue's forward-progress pool too, referenced
 * in the same window (the dispose detaches it only after the quiesce), or
 * NULL: the arrival uses it with no lock while the queue may be deleted. */
static inline __attribute__((always_inline)) struct uwdf_queue *device_queue_read(struct uwdf_device *dev, UCHAR major,
                                                                              struct uwdf_fp **fp)
{
    struct uwdf_queue *q =
        major <= IRP_MJ_MAXIMUM_FUNCTION ? __atomic_load_n(&dev->dispatch_queue[major], __ATOMIC_SEQ_CST) : NULL;
    if (!q)
        q = __atomic_load_n(&dev->default_queue, __ATOMIC_SEQ_CST);
    if (q) {
        uwdf_object_reference(&q->obj);
        if (fp) {
            *fp = __atomic_load_n(&q->fp, __ATOMIC_ACQUIRE);
            if (UWDF_UNLIKELY(*fp != NULL))
                uwdf_fp_reference(*fp);
        }
    }
    return q;
}

/* The device's delivering engine thread (the first one here) counts
 * itself in through the biased lock's owner path, plain stores; any other
 * thread, or that one while a quiesce has revoked the bias, as above. */
static inline __attribute__((always_inline)) struct uwdf_queue *device_queue_for(struct uwdf_device *dev, UCHAR major,
                                                                             struct uwdf_fp **fp)
{
    struct uwdf_engine *e = uwdf_tls_engine;
    if (e) {
        struct uwdf_engine *owner = __atomic_load_n(&dev->queue_lookup_engine, __ATOMIC_RELAXED);
        if (UWDF_UNLIKELY(owner == NULL) &&
            __atomic_compare_exchange_n(&dev->queue_lookup_engine, &owner, e, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            owner = e;
        if (owner == e) {
            bool fast = uwdf_biased_lock_owner_acquire(&dev->queue_lookup_bias);
            struct uwdf_queue *q = device_queue_read(dev, major, fp);
            uwdf_biased_lock_owner_release(&dev->queue_lookup_bias, fast);
            return q;
        }
    }
    atomic_uint *readers = &dev->queue_readers[atomic_load(&dev->queue_epoch) & 1];
    atomic_fetch_add(readers, 1);
    struct uwdf_queue *q = device_queue_read(dev, major, fp);
    atomic_fetch_sub_explicit(readers, 1, memory_order_release);
    return q;
}

/* An arrival is done with q and fp (device_queue_for). */
static void queue_arrival_end(struct uwdf_queue *q, struct uwdf_fp *fp)
{
    if (UWDF_UNLIKELY(fp != NULL))
        uwdf_fp_release(fp);
    uwdf_object_release(&q->obj);
}

/* After q left dev's table: no lookup still holds it unreferenced. A
 * lookup that counted itself in before the table was cleared is in one of
 * the two counts; each is waited for to drain after the epoch moved past
 * its parity, so lookups that begin meanwhile count in the other one and
 * cannot keep the wait going while packets keep arriving (one count would:
 * readers overlapping without end). A lookup is a few loads long, so each
 * wait is short. */
static void queue_table_quiesce(struct uwdf_device *dev)
{
    pthread_mutex_lock(&dev->quiesce_lock); /* another's flips would refill ours */
    /* The owner's lookup: out of its fast path (or off the mutex) once
     * this has the lock; a later one reads the cleared table. */
    uwdf_biased_lock_acquire(&dev->queue_lookup_bias);
    uwdf_biased_lock_release(&dev->queue_lookup_bias);
    for (int flip = 0; flip < 2; flip++) {
        unsigned old = atomic_fetch_add(&dev->queue_epoch, 1) & 1;
        while (atomic_load(&dev->queue_readers[old]) != 0)
            sched_yield();
    }
    pthread_mutex_unlock(&dev->quiesce_lock);
}

void uwdf_queue_packet_complete(struct uwdf_request *sender, NTSTATUS status, ULONG_PTR information)
{
    PIRP irp = sender->irp;
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = information;
    IoSkipCurrentIrpStackLocation(irp);
    uwdf_iotarget_device_done(sender, status, information);
}

void uwdf_request_discard(struct uwdf_request *r)
{
    for (struct uwdf_context *c = r->obj.contexts; c; c = c->next) {
        c->cleanup = NULL;
        c->destroy = NULL;
    }
    r->irp = NULL;
    uwdf_object_delete(&r->obj);
}

/* The request for an incoming packet on q: a new one, or under the
 * forward-progress policy (fp, the arrival's reference) a reserved one.
 * STATUS_PENDING: the packet waits for a reserved request. */
static NTSTATUS queue_get_request(struct uwdf_queue *q, struct uwdf_fp *fp, struct uwdf_request *sender,
                                  struct uwdf_request **out)
{
    struct uwdf_device *dev = q->device;
    struct uwdf_request *r = NULL;
    NTSTATUS st = STATUS_INSUFFICIENT_RESOURCES;
    bool injected = fp && uwdf_fp_inject_failure();
    if (!injected) {
        st = uwdf_request_create_received(dev, fp != NULL, &r);
        if (NT_SUCCESS(st)) {
            st = uwdf_request_receive_setup(dev, r, sender);
            if (NT_SUCCESS(st) && fp)
                st = uwdf_fp_allocate_request_resources(q, fp, r);
            if (NT_SUCCESS(st)) {
                *out = r;
                return STATUS_SUCCESS;
            }
            uwdf_request_receive_teardown(r, st, 0);
            uwdf_request_discard(r);
        }
        if (!fp)
            return st;
    }
    return uwdf_fp_take_reserved(q, fp, sender, out);
}

void uwdf_queue_deliver(struct uwdf_device *dev, struct uwdf_request *sender)
{
    PIRP irp = sender->irp;
    PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(irp);
    /* The I/O manager's part: an IOCTL's buffers travel in the IRP. */
    if (sender->fmt_type == WdfRequestTypeDeviceControl || sender->fmt_type == WdfRequestTypeDeviceControlInternal) {
        next->Parameters.DeviceIoControl.Type3InputBuffer =
            sender->fmt_mem[0] ? (char *)sender->fmt_mem[0]->buffer + sender->fmt_offset[0] : sender->fmt_buffer[0];
        irp->UserBuffer =
            sender->fmt_mem[1] ? (char *)sender->fmt_mem[1]->buffer + sender->fmt_offset[1] : sender->fmt_buffer[1];
    }
    IoSetNextIrpStackLocation(irp);
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    /* Called only for what they may take (a create; any packet of a device
     * with EvtIoInCallerContext): every packet comes this way. */
    if ((s->MajorFunction == IRP_MJ_CREATE && uwdf_fileobject_deliver(dev, sender)) ||
        (dev->files.in_caller_context && uwdf_caller_context_deliver(dev, sender)))
        return;

    struct uwdf_fp *fp = NULL;
    struct uwdf_queue *q = device_queue_for(dev, s->MajorFunction, &fp);
    /* Simulated PnP (lib/pnp.c): a removed device takes nothing; a filter
     * passes on what it has no handler for. */
    if (UWDF_UNLIKELY(dev->pnp.devnode != NULL) && uwdf_pnp_deliver_elsewhere(dev, q, sender)) {
        if (q)
            queue_arrival_end(q, fp);
        return;
    }
    if (!q) {
        uwdf_queue_packet_complete(sender, STATUS_INVALID_DEVICE_REQUEST, 0);
        return;
    }
    if ((s->MajorFunction == IRP_MJ_READ || s->MajorFunction == IRP_MJ_WRITE) &&
        s->Parameters.Read.Length == 0 && !q->config.AllowZeroLengthRequests) {
        queue_arrival_end(q, fp);
        uwdf_queue_packet_complete(sender, STATUS_SUCCESS, 0);
        return;
    }
    struct uwdf_request *r;
    NTSTATUS st = queue_get_request(q, fp, sender, &r);
    if (st == STATUS_PENDING) {
        queue_arrival_end(q, fp);
        return;
    }
    if (!NT_SUCCESS(st)) {
        queue_arrival_end(q, fp);
        uwdf_queue_packet_complete(sender, st, 0);
        return;
    }
    if (!uwdf_queue_insert(q, r, false)) {
        /* not accepting (drained, purged): KMDF fails it this way */
        r->queue = q;
        uwdf_queue_complete(r, STATUS_INVALID_DEVICE_STATE, 0);
    }
    queue_arrival_end(q, fp);
}

NTSTATUS uwdf_queue_enqueue_presented(struct uwdf_device *dev, struct uwdf_request *r)
{
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(r->irp);
    struct uwdf_queue *q = device_queue_for(dev, s->MajorFunction, NULL);
    if (!q)
        return STATUS_INVALID_DEVICE_REQUEST;
    uwdf_qs_unqueue(r);
    if ((s->MajorFunction == IRP_MJ_READ || s->MajorFunction == IRP_MJ_WRITE) &&
        s->Parameters.Read.Length == 0 && !q->config.AllowZeroLengthRequests) {
        uwdf_object_release(&q->obj);
        uwdf_queue_complete(r, STATUS_SUCCESS, 0); /* as a queue takes one from a target */
        return STATUS_SUCCESS;
    }
    bool taken = uwdf_queue_insert(q, r, false);
    uwdf_object_release(&q->obj);
    if (!taken) {
        uwdf_qs_give_back(r);
        return STATUS_WDF_BUSY;
    }
    return STATUS_SUCCESS;
}

/* ---- completion ---- */

void uwdf_queue_complete_locked(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information)
{
    struct uwdf_queue *q = r->queue;
    struct uwdf_request *sender = r->sender;
    PIRP irp = r->irp;
    PFN_WDF_IO_QUEUE_STATE cb = NULL;
    WDFCONTEXT ctx = NULL;
    bool more = false;

    if (r->cancelable) {
        uwdf_irp_clear_cancel(irp);
        r->cancelable = false;
    }
    if (q) {
        if (r->qstate == UWDF_QS_OWNED || r->qstate == UWDF_QS_COMPLETING)
            queue_disown_locked(q, r);
        uwdf_qs_complete(r);
        cb = uwdf_queue_state_check_locked(q, &ctx);
        /* Something waits that the driver may now take: dispatch it after
         * the completion. (What arrives later dispatches itself.) */
        more = queue_can_present_locked(q);
        /* q is used after the lock only then; until the unlock, the
         * request it owned keeps it. */
        if (cb || more)
            uwdf_object_reference(&q->obj);
        uwdf_queue_unlock(q);
    } else {
        uwdf_qs_complete(r);
    }
    r->queue = NULL;
    /* As KMDF at completion: the format ends here, with the references it
     * holds. A format with the request's own retrieved memory references
     * the request itself, which would otherwise never be destroyed. */
    uwdf_request_release_format(r);
    uwdf_request_receive_teardown(r, status, information);
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = information;
    IoSkipCurrentIrpStackLocation(irp);
    r->irp = NULL;
    r->sender = NULL;
    uwdf_iotarget_device_done(sender, status, information);

    if (r->reserved)
        uwdf_fp_return(r->fp_home, r);
    else
        uwdf_object_delete(&r->obj);
    if (cb || more) {
        uwdf_queue_run_state_cb(q, cb, ctx);
        if (more)
            queue_dispatch(q);
        uwdf_object_release(&q->obj);
    }
}

void uwdf_queue_complete(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information)
{
    if (r->queue)
        uwdf_queue_lock(r->queue);
    uwdf_queue_complete_locked(r, status, information);
}

/* ---- send and forget ---- */

static VOID forget_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                        WDFCONTEXT Context)
{
    struct uwdf_request *r = Context;
    (void)Request;
    (void)Target;
    uwdf_queue_complete(r, Params->IoStatus.Status, Params->IoStatus.Information);
}

NTSTATUS uwdf_queue_send_and_forget(struct uwdf_request *r, struct uwdf_iotarget *t)
{
    struct uwdf_queue *q = r->queue;
    if (r->qstate != UWDF_QS_OWNED || !q)
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!r->irp || r->irp->CurrentLocation < 1 + uwdf_iotarget_stack_need(t))
        return STATUS_REQUEST_NOT_ACCEPTED;
    /* The driver no longer owns it: its queue stops counting it, and the
     * framework completes it when the target does. */
    IoCopyCurrentIrpStackLocationToNext(r->irp);
    r->formatted = true;
    r->routine = forget_done;
    r->routine_ctx = r;
    uwdf_queue_lock(q);
    queue_disown_locked(q, r);
    uwdf_qs_forward(r);
    uwdf_queue_unlock(q);
    NTSTATUS st = uwdf_iotarget_submit(t, r, NULL);
    if (!NT_SUCCESS(st)) {
        uwdf_queue_lock(q);
        uwdf_qs_give_back(r);
        queue_own_locked(q, r);
        uwdf_queue_unlock(q);
        r->routine = NULL;
        r->routine_ctx = NULL;
        uwdf_request_release_format(r);
        return st;
    }
    /* The stop or drain it may have ended, and the next request it made
     * room for: one hold of the lock for both. */
    WDFCONTEXT ctx = NULL;
    uwdf_queue_lock(q);
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    bool more = queue_can_present_locked(q);
    uwdf_queue_unlock(q);
    uwdf_queue_run_state_cb(q, cb, ctx);
    if (more)
        queue_dispatch(q);
    return STATUS_SUCCESS;
}

/* ---- forward and requeue ---- */

NTSTATUS uwdf_queue_move(struct uwdf_request *r, struct uwdf_queue *src, struct uwdf_queue *dest, bool head,
                         NTSTATUS refused)
{
    uwdf_queue_lock(src);
    queue_disown_locked(src, r);
    uwdf_qs_unqueue(r);
    uwdf_queue_unlock(src);
    if (!uwdf_queue_insert(dest, r, head)) {
        uwdf_queue_lock(src);
        uwdf_qs_give_back(r);
        queue_own_locked(src, r);
        uwdf_queue_unlock(src);
        return refused;
    }
    if (src != dest) {
        uwdf_queue_check_state(src);
        queue_dispatch(src);
    }
    return STATUS_SUCCESS;
}

/* ---- queue objects ---- */

static void queue_collect_waiting_locked(struct uwdf_queue *q, LIST_ENTRY *out, LIST_ENTRY *packets)
{
    struct uwdf_request *r;
    while ((r = queue_take_head_locked(q)) != NULL) {
        uwdf_qs_cancel(r);
        uwdf_list_insert_tail(out, &r->queue_link);
    }
    if (q->fp)
        uwdf_fp_collect_waiting_locked(q->fp, packets);
}

static void queue_cancel_collected(struct uwdf_queue *q, LIST_ENTRY *reqs, LIST_ENTRY *packets, bool callbacks)
{
    LIST_ENTRY *e;
    while ((e = uwdf_list_pop_head(reqs)) != NULL) {
        struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
        if (callbacks) {
            queue_cancelled(q, r);
        } else {
            r->queue = q;
            uwdf_queue_complete(r, STATUS_CANCELLED, 0);
        }
    }
    while ((e = uwdf_list_pop_head(packets)) != NULL)
        uwdf_queue_packet_complete(CONTAINING_RECORD(e, struct uwdf_request, packet_link), STATUS_CANCELLED, 0);
}

/* Each request the driver owns once: a purge cancels the cancelable ones;
 * the rest go to EvtIoStop. A control device has no power states, so the
 * port treats the driver's own WdfIoQueueStop as WDF treats leaving D0. */
static void queue_stop_owned(struct uwdf_queue *q, ULONG action, bool cancel_cancelable)
{
    for (;;) {
        struct uwdf_request *pick = NULL;
        bool cancelable = false;
        struct uwdf_irp_cancel_claim claim = { 0, NULL, NULL };
        uwdf_queue_lock(q);
        for (LIST_ENTRY *e = q->owned.Flink; e != &q->owned; e = e->Flink) {
            struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
            /* (one being completed, COMPLETING, is on its way out) */
            if (r->qstate != UWDF_QS_OWNED)
                continue;
            /* A purge cancels every cancelable request the driver owns,
             * one it acknowledged at an earlier stop too (WdfIoQueuePurge:
             * "driver-owned cancellable requests"); the rest not yet told
             * of this stop go to EvtIoStop. */
            bool cancel_it = cancel_cancelable && r->cancelable;
            if (!cancel_it && (r->stop_acked || r->suspended))
                continue;
            pick = r;
            cancelable = r->cancelable;
            r->suspended = true; /* notified for this stop */
            uwdf_object_reference(&r->obj);
            /* Claimed here, under the lock: once it is unlocked the driver
             * may complete the request and its IRP return to the sender.
             * Not cancelable from here on (its routine is claimed, or
             * being unmarked), so it is picked once. */
            if (cancel_it) {
                claim = uwdf_irp_cancel_take(r->irp);
                r->cancelable = false;
            }
            break;
        }
        uwdf_queue_unlock(q);
        if (!pick)
            break;
        if (cancel_cancelable && cancelable) {
            uwdf_irp_cancel_run(claim); /* nothing when someone else claimed it */
        } else if (q->config.EvtIoStop) {
            uwdf_queue_cb_enter(q);
            q->config.EvtIoStop((WDFQUEUE)q->obj.handle, (WDFREQUEST)pick->obj.handle,
                                action | (cancelable ? WdfRequestStopRequestCancelable : 0));
            uwdf_queue_cb_leave(q);
        }
        uwdf_object_release(&pick->obj);
    }
    /* "suspended" only marked who was told; acknowledgements count. */
    uwdf_queue_lock(q);
    for (LIST_ENTRY *e = q->owned.Flink; e != &q->owned; e = e->Flink) {
        struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
        r->suspended = r->stop_acked;
    }
    uwdf_queue_unlock(q);
}

static void queue_state_change(struct uwdf_queue *q, enum uwdf_queue_op op, PFN_WDF_IO_QUEUE_STATE cb, WDFCONTEXT ctx,
                               bool wait, const char *ddi)
{
    if (wait && !uwdf_irql_check_passive(ddi))
        return;
    LIST_ENTRY reqs, packets;
    uwdf_list_init(&reqs);
    uwdf_list_init(&packets);
    uwdf_queue_lock(q);
    if (q->op != QOP_NONE) {
        /* One state change at a time (WDF asserts): the earlier one's
         * callback runs now, so nobody waits for it forever. */
        uwdf_log("%s: an earlier queue state change was still pending; it ends now", ddi);
        WDFCONTEXT old_ctx;
        PFN_WDF_IO_QUEUE_STATE old = queue_op_end_locked(q, &old_ctx);
        uwdf_queue_unlock(q);
        uwdf_queue_run_state_cb(q, old, old_ctx);
        uwdf_queue_lock(q);
    }
    /* (A queue being deleted stays so; the change still runs its course.) */
    bool live = q->state != UWDF_QUEUE_DELETING;
    switch (op) {
    case QOP_STOP:
        if (live)
            uwdf_queue_stop_locked(q);
        break;
    case QOP_DRAIN:
        if (live)
            uwdf_queue_drain_locked(q);
        break;
    case QOP_PURGE:
        if (live)
            uwdf_queue_drain_locked(q);
        queue_collect_waiting_locked(q, &reqs, &packets);
        break;
    case QOP_STOP_PURGE:
        if (live)
            uwdf_queue_stop_and_purge_locked(q);
        queue_collect_waiting_locked(q, &reqs, &packets);
        break;
    default:
        break;
    }
    q->op = op;
    q->op_cb = cb;
    q->op_ctx = ctx;
    uint64_t gen = q->op_gen;
    uwdf_queue_unlock(q);

    queue_cancel_collected(q, &reqs, &packets, true);
    if (op == QOP_STOP)
        queue_stop_owned(q, WdfRequestStopActionSuspend, false);
    else if (op == QOP_PURGE || op == QOP_STOP_PURGE)
        queue_stop_owned(q, WdfRequestStopActionPurge, true);
    uwdf_queue_check_state(q);
    queue_dispatch(q);
    if (!wait)
        return;
    uwdf_queue_lock_mutex(q); /* waits on q->cond */
    while (q->op_gen == gen)
        queue_wait_locked(q, NULL);
    uwdf_queue_unlock(q);
}

#define QUEUE_STATE_DDI(name, op, wait)                                                                   \
    VOID name(WDFQUEUE Queue, PFN_WDF_IO_QUEUE_STATE Callback, WDFCONTEXT Context)                        \
    {                                                                                                     \
        struct uwdf_queue *q = uwdf_queue_lookup(Queue, #name);                                                \
        if (q)                                                                                            \
            queue_state_change(q, op, Callback, Context, wait, #name);                                    \
    }
#define QUEUE_STATE_SYNC_DDI(name, op)                                                                    \
    VOID name(WDFQUEUE Queue)                                                                             \
    {                                                                                                     \
        struct uwdf_queue *q = uwdf_queue_lookup(Queue, #name);                                                \
        if (q)                                                                                            \
            queue_state_change(q, op, NULL, NULL, true, #name);                                           \
    }

QUEUE_STATE_DDI(WdfIoQueueStop, QOP_STOP, false)
QUEUE_STATE_DDI(WdfIoQueueDrain, QOP_DRAIN, false)
QUEUE_STATE_DDI(WdfIoQueuePurge, QOP_PURGE, false)
QUEUE_STATE_DDI(WdfIoQueueStopAndPurge, QOP_STOP_PURGE, false)
QUEUE_STATE_SYNC_DDI(WdfIoQueueStopSynchronously, QOP_STOP)
QUEUE_STATE_SYNC_DDI(WdfIoQueueDrainSynchronously, QOP_DRAIN)
QUEUE_STATE_SYNC_DDI(WdfIoQueuePurgeSynchronously, QOP_PURGE)
QUEUE_STATE_SYNC_DDI(WdfIoQueueStopAndPurgeSynchronously, QOP_STOP_PURGE)

VOID WdfIoQueueStart(WDFQUEUE Queue)
{
    struct uwdf_queue *q = uwdf_queue_lookup(Queue, "WdfIoQueueStart");
    if (!q)
        return;
    uwdf_queue_lock(q);
    if (q->state == UWDF_QUEUE_DELETING) {
        uwdf_queue_unlock(q);
        return;
    }
    uwdf_queue_start_locked(q);
    uwdf_queue_unlock(q);
    /* Requests the driver acknowledged without requeueing resume. */
    for (;;) {
        struct uwdf_request *pick = NULL;
        uwdf_queue_lock(q);
        for (LIST_ENTRY *e = q->owned.Flink; e != &q->owned; e = e->Flink) {
            struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
            if (r->stop_acked) {
                r->stop_acked = r->suspended = false;
                pick = r;
                uwdf_object_reference(&r->obj);
                break;
            }
        }
        PFN_WDF_IO_QUEUE_STATE ready = NULL;
        WDFCONTEXT ready_ctx = q->ready_ctx;
        if (!pick && q->config.DispatchType == WdfIoQueueDispatchManual && q->waiting_count)
            ready = q->ready_cb;
        uwdf_queue_unlock(q);
        if (!pick) {
            uwdf_queue_run_state_cb(q, ready, ready_ctx);
            break;
        }
        if (q->config.EvtIoResume) {
            uwdf_queue_cb_enter(q);
            q->config.EvtIoResume((WDFQUEUE)q->obj.handle, (WDFREQUEST)pick->obj.handle);
            uwdf_queue_cb_leave(q);
        }
        uwdf_object_release(&pick->obj);
    }
    queue_dispatch(q);
}

WDF_IO_QUEUE_STATE WdfIoQueueGetState(WDFQUEUE Queue, PULONG QueueRequests, PULONG DriverRequests)
{
    struct uwdf_queue *q = uwdf_queue_lookup(Queue, "WdfIoQueueGetState");
    if (!q)
        return (WDF_IO_QUEUE_STATE)0;
    uwdf_queue_lock(q);
    unsigned state = (queue_accepts(q) ? WdfIoQueueAcceptRequests : 0) |
                     (queue_dispatches(q) ? WdfIoQueueDispatchRequests : 0) |
                     (q->waiting_count == 0 ? WdfIoQueueNoRequests : 0) |
                     (q->owned_count == 0 ? WdfIoQueueDriverNoRequests : 0);
    if (QueueRequests)
        *QueueRequests = q->waiting_count;
    if (DriverRequests)
        *DriverRequests = q->owned_count;
    uwdf_queue_unlock(q);
    return (WDF_IO_QUEUE_STATE)state;
}

NTSTATUS WdfIoQueueRetrieveNextRequest(WDFQUEUE Queue, WDFREQUEST *OutRequest)
{
    struct uwdf_queue *q = uwdf_queue_lookup(Queue, "WdfIoQueueRetrieveNextRequest");
    UWDF_REQUIRE_PARAM(OutRequest, "WdfIoQueueRetrieveNextRequest", STATUS_INVALID_PARAMETER);
    *OutRequest = NULL;
    if (!q)
        return STATUS_INVALID_HANDLE;
    if (q->config.DispatchType == WdfIoQueueDispatchParallel)
        return STATUS_INVALID_DEVICE_STATE;
    uwdf_queue_lock(q);
    if (!queue_dispatches(q)) {
        uwdf_queue_unlock(q);
        return STATUS_WDF_PAUSED;
    }
    struct uwdf_request *r = queue_take_head_locked(q);
    if (r) {
        uwdf_qs_present(r);
        queue_own_locked(q, r);
    }
    WDFCONTEXT ctx = NULL;
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    uwdf_queue_unlock(q);
    uwdf_queue_run_state_cb(q, cb, ctx);
    if (!r)
        return STATUS_NO_MORE_ENTRIES;
    *OutRequest = (WDFREQUEST)r->obj.handle;
    return STATUS_SUCCESS;
}

NTSTATUS WdfIoQueueReadyNotify(WDFQUEUE Queue, PFN_WDF_IO_QUEUE_STATE QueueReady, WDFCONTEXT Context)
{
    struct uwdf_queue *q = uwdf_queue_lookup(Queue, "WdfIoQueueReadyNotify");
    if (!q)
        return STATUS_INVALID_HANDLE;
    if (q->config.DispatchType != WdfIoQueueDispatchManual)
        return STATUS_INVALID_DEVICE_REQUEST;
    uwdf_queue_lock(q);
    if (QueueReady && q->ready_cb) {
        uwdf_queue_unlock(q);
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    q->ready_cb = QueueReady;
    q->ready_ctx = QueueReady ? Context : NULL;
    bool now = QueueReady && q->waiting_count && queue_dispatches(q);
    uwdf_queue_unlock(q);
    if (now)
        uwdf_queue_run_state_cb(q, QueueReady, Context);
    return STATUS_SUCCESS;
}

WDFDEVICE WdfIoQueueGetDevice(WDFQUEUE Queue)
{
    struct uwdf_queue *q = uwdf_queue_lookup(Queue, "WdfIoQueueGetDevice");
    return q ? (WDFDEVICE)q->device->obj.handle : NULL;
}

/* Verifier, at queue deletion (driver unload deletes them all): after a
 * grace period for what completes on its own (a forwarded request, a
 * completion on another thread), each request the driver still owns is one
 * it never completed; the queue goes on waiting for it. Caller holds the
 * queue lock. */
#define QUEUE_VERIFY_GRACE_SEC 1
static void queue_verify_owned_locked(struct uwdf_queue *q)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* q->cond's clock */
    until.tv_sec += QUEUE_VERIFY_GRACE_SEC;
    while (q->owned_count && queue_wait_locked(q, &until) == 0)
        ;
    struct uwdf_driver *d = q->device->driver;
    const char *event = d && atomic_load(&d->obj.state) != UWDF_OBJECT_ALIVE ? "driver unload" : "queue deletion";
    for (LIST_ENTRY *e = q->owned.Flink; e != &q->owned; e = e->Flink) {
        struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
        char creator[96];
        snprintf(creator, sizeof(creator), "WDFQUEUE %p presenting IRP_MJ 0x%02x", (void *)q->obj.handle,
                 r->irp ? IoGetCurrentIrpStackLocation(r->irp)->MajorFunction : 0);
        uwdf_verifier_report_leak(event, &r->obj, creator,
                                  "was presented and never completed: the queue waits for it");
    }
}

static void queue_dispose(struct uwdf_object *obj)
{
    struct uwdf_queue *q = (struct uwdf_queue *)obj;
    struct uwdf_device *dev = q->device;
    pthread_mutex_lock(&dev->queues_lock);
    if (dev->default_queue == q)
        __atomic_store_n(&dev->default_queue, NULL, __ATOMIC_SEQ_CST);
    for (int i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        if (dev->dispatch_queue[i] == q)
            __atomic_store_n(&dev->dispatch_queue[i], NULL, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&dev->queues_lock);
    queue_table_quiesce(dev);

    LIST_ENTRY reqs, packets;
    uwdf_list_init(&reqs);
    uwdf_list_init(&packets);
    uwdf_queue_lock(q);
    uwdf_queue_delete_locked(q);
    queue_collect_waiting_locked(q, &reqs, &packets);
    uwdf_queue_unlock(q);
    queue_cancel_collected(q, &reqs, &packets, false);
    queue_stop_owned(q, WdfRequestStopActionPurge, true);
    /* What the driver still owns must come back before the queue goes
     * (WDF waits the same way on removal); then the reserved requests,
     * whose cleanup callbacks run only now. */
    uwdf_queue_lock_mutex(q); /* waits on q->cond */
    if (UWDF_UNLIKELY(uwdf_verifier) && q->owned_count)
        queue_verify_owned_locked(q);
    while (q->owned_count || !uwdf_fp_all_home_locked(q->fp))
        queue_wait_locked(q, NULL);
    struct uwdf_fp *fp = q->fp;
    /* Stored only when there is one (queues without a pool never write
     * it). A packet that found the queue before it left the table may
     * still use the pool (device_queue_for took its reference); the last
     * reference frees it. */
    if (fp)
        __atomic_store_n(&q->fp, NULL, __ATOMIC_RELAXED);
    uwdf_queue_unlock(q);
    if (fp)
        uwdf_fp_release(fp);
}

static void queue_destroy(struct uwdf_object *obj)
{
    struct uwdf_queue *q = (struct uwdf_queue *)obj;
    pthread_cond_destroy(&q->cond);
    uwdf_biased_lock_destroy(&q->lock);
    pthread_mutex_destroy(&q->own_sync);
}

static const struct uwdf_object_ops queue_ops = {
    .dispose = queue_dispose,
    .destroy = queue_destroy,
};

/* ExecutionLevel and SynchronizationScope as inherited down the tree. */
static void queue_effective_attrs(struct uwdf_queue *q, WDF_EXECUTION_LEVEL *level, WDF_SYNCHRONIZATION_SCOPE *scope)
{
    *level = WdfExecutionLevelInheritFromParent;
    *scope = WdfSynchronizationScopeInheritFromParent;
    for (struct uwdf_object *o = &q->obj; o; o = o->parent) {
        if (*level == WdfExecutionLevelInheritFromParent)
            *level = o->exec_level;
        if (*scope == WdfSynchronizationScopeInheritFromParent)
            *scope = o->sync_scope;
    }
}

static NTSTATUS queue_config_validate(struct uwdf_device *dev, PWDF_IO_QUEUE_CONFIG c, WDFQUEUE *Queue)
{
    if (c->Size != sizeof(WDF_IO_QUEUE_CONFIG))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (c->DispatchType <= WdfIoQueueDispatchInvalid || c->DispatchType >= WdfIoQueueDispatchMax)
        return STATUS_INVALID_PARAMETER;
    bool has_io = c->EvtIoDefault || c->EvtIoRead || c->EvtIoWrite || c->EvtIoDeviceControl ||
                  c->EvtIoInternalDeviceControl;
    if (c->DispatchType == WdfIoQueueDispatchManual && has_io)
        return STATUS_INVALID_PARAMETER;
    bool parallel = c->DispatchType == WdfIoQueueDispatchParallel;
    if (parallel != (c->Settings.Parallel.NumberOfPresentedRequests != 0))
        return STATUS_INVALID_PARAMETER;
    if (!Queue && !c->DefaultQueue)
        return STATUS_INVALID_PARAMETER_4;
    if (c->DispatchType != WdfIoQueueDispatchManual && !has_io)
        return STATUS_WDF_NO_CALLBACK;
    if (c->PowerManaged == WdfTrue && !dev->pnp.devnode) {
        uwdf_log("WdfIoQueueCreate: a control device's queue cannot be power-managed");
        return STATUS_INVALID_PARAMETER;
    }
    pthread_mutex_lock(&dev->queues_lock);
    bool second_default = c->DefaultQueue && dev->default_queue;
    pthread_mutex_unlock(&dev->queues_lock);
    return second_default ? STATUS_UNSUCCESSFUL : STATUS_SUCCESS;
}

NTSTATUS WdfIoQueueCreate(WDFDEVICE Device, PWDF_IO_QUEUE_CONFIG Config, PWDF_OBJECT_ATTRIBUTES QueueAttributes,
                          WDFQUEUE *Queue)
{
    struct uwdf_device *dev = (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfIoQueueCreate");
    UWDF_REQUIRE_PARAM(Config, "WdfIoQueueCreate", STATUS_INVALID_PARAMETER);
    if (Queue)
        *Queue = NULL;
    if (!dev)
        return STATUS_INVALID_HANDLE;
    NTSTATUS status = queue_config_validate(dev, Config, Queue);
    if (!NT_SUCCESS(status))
        return status;
    if (QueueAttributes && QueueAttributes->ParentObject) {
        struct uwdf_object *p = uwdf_object_lookup(QueueAttributes->ParentObject, 0, "WdfIoQueueCreate");
        while (p && p != &dev->obj)
            p = p->parent;
        if (!p)
            return STATUS_INVALID_PARAMETER;
    }
    struct uwdf_object *obj;
    status = uwdf_object_create(sizeof(struct uwdf_queue), UWDF_OBJ_QUEUE, &queue_ops, QueueAttributes, &dev->obj,
                                0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_queue *q = (struct uwdf_queue *)obj;
    q->device = dev;
    q->config = *Config;
    uwdf_biased_lock_init_unbiased(&q->lock);
    pthread_cond_init(&q->cond, NULL);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&q->own_sync, &ma);
    pthread_mutexattr_destroy(&ma);
    uwdf_list_init(&q->waiting);
    uwdf_list_init(&q->owned);
    uwdf_queue_start_locked(q); /* from HALTED, as created */
    WDF_EXECUTION_LEVEL level;
    WDF_SYNCHRONIZATION_SCOPE scope;
    queue_effective_attrs(q, &level, &scope);
    q->passive = level == WdfExecutionLevelPassive;
    if (scope == WdfSynchronizationScopeQueue)
        q->sync = &q->own_sync;
    else if (scope == WdfSynchronizationScopeDevice)
        q->sync = &dev->sync_lock;
    if (Config->DefaultQueue) {
        pthread_mutex_lock(&dev->queues_lock);
        bool taken = dev->default_queue != NULL;
        if (!taken)
            __atomic_store_n(&dev->default_queue, q, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&dev->queues_lock);
        if (taken) {
            uwdf_object_delete(obj);
            return STATUS_UNSUCCESSFUL;
        }
    }
    if (Queue)
        *Queue = (WDFQUEUE)obj->handle;
    return STATUS_SUCCESS;
}

NTSTATUS WdfDeviceConfigureRequestDispatching(WDFDEVICE Device, WDFQUEUE Queue, WDF_REQUEST_TYPE RequestType)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceConfigureRequestDispatching");
    struct uwdf_queue *q = uwdf_queue_lookup(Queue, "WdfDeviceConfigureRequestDispatching");
    if (!dev || !q)
        return STATUS_INVALID_HANDLE;
    if (RequestType != WdfRequestTypeCreate && RequestType != WdfRequestTypeRead && RequestType != WdfRequestTypeWrite &&
        RequestType != WdfRequestTypeDeviceControl && RequestType != WdfRequestTypeDeviceControlInternal &&
        RequestType != WdfRequestTypeFlushBuffers)
        return STATUS_INVALID_PARAMETER;
    /* KMDF's statuses (FxPkgIo::ConfigureForwarding): another device's
     * queue, a queue with no handler for the type, or the default queue is
     * STATUS_INVALID_DEVICE_REQUEST; a type already configured is
     * STATUS_WDF_BUSY. (FlushBuffers is this port's addition; a create
     * queue presents creates to EvtIoDefault, lib/fileobject.c.) */
    if (q->device != dev)
        return STATUS_INVALID_DEVICE_REQUEST;
    const WDF_IO_QUEUE_CONFIG *c = &q->config;
    bool handled = c->DispatchType == WdfIoQueueDispatchManual || c->EvtIoDefault ||
                   (RequestType == WdfRequestTypeRead && c->EvtIoRead) ||
                   (RequestType == WdfRequestTypeWrite && c->EvtIoWrite) ||
                   (RequestType == WdfRequestTypeDeviceControl && c->EvtIoDeviceControl) ||
                   (RequestType == WdfRequestTypeDeviceControlInternal && c->EvtIoInternalDeviceControl);
    if (!handled)
        return STATUS_INVALID_DEVICE_REQUEST;
    pthread_mutex_lock(&dev->queues_lock);
    NTSTATUS st = STATUS_SUCCESS;
    if (dev->default_queue == q)
        st = STATUS_INVALID_DEVICE_REQUEST;
    else if (dev->dispatch_queue[RequestType])
        st = STATUS_WDF_BUSY; /* one queue per request type */
    else
        __atomic_store_n(&dev->dispatch_queue[RequestType], q, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&dev->queues_lock);
    return st;
}

WDFQUEUE WdfDeviceGetDefaultQueue(WDFDEVICE Device)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceGetDefaultQueue");
    if (!dev)
        return NULL;
    pthread_mutex_lock(&dev->queues_lock);
    WDFQUEUE h = dev->default_queue ? (WDFQUEUE)dev->default_queue->obj.handle : NULL;
    pthread_mutex_unlock(&dev->queues_lock);
    return h;
}

pthread_mutex_t *uwdf_queue_callback_lock(struct uwdf_object *queue, bool *passive, bool *serialized)
{
    struct uwdf_queue *q = (struct uwdf_queue *)queue;
    *passive = q->passive;
    *serialized = q->sync != NULL;
    return q->sync ? q->sync : &q->own_sync;
}
