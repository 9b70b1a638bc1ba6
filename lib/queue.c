/* WDFQUEUE and the receiving side of an in-process device stack: packets
 * sent to a device target become the device's own WDFREQUESTs (the IRP is
 * the sender's, one stack location down, as IoCallDriver passes it), wait
 * on a queue, are presented to the driver, and complete back up to the
 * sender. (Reserved requests: lib/forward_progress.c; the IRP cancel lock
 * and its dispatch to the cancel routines: lib/irp.c.)
 *
 * Locks: queue->lock guards the queue's lists, every received request's
 * qstate/queue link and its forward-progress pool; the cancel lock is taken
 * inside it, never around it. No lock is held across a driver callback. */
#include "runtime.h"
#include "device.h"
#include "iotarget.h"
#include "irp.h"
#include "lists.h"
#include "memory.h"
#include "object.h"
#include "queue.h"
#include "request.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void queue_dispatch(struct uwdf_queue *q);

/* ---- callbacks ---- */

/* Thread-local frames of the dispatch loops running on this thread: a
 * completion inside a callback that makes the same queue dispatch again
 * leaves it to the loop below it instead of recursing. */
struct dispatch_frame {
    struct uwdf_queue *q;
    struct dispatch_frame *prev;
};
static __thread struct dispatch_frame *tls_frames;

static void queue_invoke(struct uwdf_queue *q, struct uwdf_request *r)
{
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(r->irp);
    WDFQUEUE qh = (WDFQUEUE)q->obj.handle;
    WDFREQUEST rh = (WDFREQUEST)r->obj.handle;
    const WDF_IO_QUEUE_CONFIG *c = &q->config;
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
    uwdf_queue_complete(r, STATUS_INVALID_DEVICE_REQUEST, 0);
    return;
out:
    uwdf_queue_cb_leave(q);
}

/* ---- queue state ---- */

static void queue_own_locked(struct uwdf_queue *q, struct uwdf_request *r)
{
    r->qstate = UWDF_QS_OWNED;
    r->queue = q;
    r->stop_acked = r->suspended = false;
    uwdf_list_insert_tail(&q->owned, &r->queue_link);
    q->owned_count++;
}

static void queue_disown_locked(struct uwdf_queue *q, struct uwdf_request *r)
{
    uwdf_list_remove(&r->queue_link);
    q->owned_count--;
    r->stop_acked = r->suspended = false;
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

PFN_WDF_IO_QUEUE_STATE uwdf_queue_state_check_locked(struct uwdf_queue *q, WDFCONTEXT *ctx)
{
    if (q->op == QOP_NONE || !queue_op_done_locked(q))
        return NULL;
    PFN_WDF_IO_QUEUE_STATE cb = q->op_cb;
    *ctx = q->op_ctx;
    q->op = QOP_NONE;
    q->op_cb = NULL;
    q->op_ctx = NULL;
    q->op_gen++;
    pthread_cond_broadcast(&q->cond);
    return cb;
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
    pthread_mutex_lock(&q->lock);
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    pthread_mutex_unlock(&q->lock);
    uwdf_queue_run_state_cb(q, cb, ctx);
}

static bool queue_can_present_locked(struct uwdf_queue *q)
{
    if (!q->dispatching || q->deleting || uwdf_list_empty(&q->waiting))
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

/* Take the head waiting request off the queue for the driver; NULL when
 * none is left. One whose cancel is already running is left to it. */
static struct uwdf_request *queue_take_head_locked(struct uwdf_queue *q)
{
    while (!uwdf_list_empty(&q->waiting)) {
        LIST_ENTRY *e = uwdf_list_pop_head(&q->waiting);
        struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
        q->waiting_count--;
        if (!uwdf_irp_clear_cancel(r->irp)) {
            r->qstate = UWDF_QS_CANCELING;
            continue;
        }
        return r;
    }
    return NULL;
}

static void queue_dispatch_work(struct uwdf_work *w)
{
    struct uwdf_queue *q = uwdf_container_of(w, struct uwdf_queue, dispatch_work);
    pthread_mutex_lock(&q->lock);
    q->dispatch_work_queued = false;
    pthread_mutex_unlock(&q->lock);
    queue_dispatch(q);
    uwdf_object_release(&q->obj);
}

static void queue_dispatch(struct uwdf_queue *q)
{
    for (struct dispatch_frame *f = tls_frames; f; f = f->prev)
        if (f->q == q)
            return; /* the loop below us picks it up */
    if (q->passive && uwdf_tls_irql > PASSIVE_LEVEL) {
        /* A passive-level queue called from a completion path: WDF defers
         * to a work item; the framework worker runs at PASSIVE_LEVEL. */
        pthread_mutex_lock(&q->lock);
        bool queue_it = !q->dispatch_work_queued && queue_can_present_locked(q);
        if (queue_it) {
            q->dispatch_work_queued = true;
            uwdf_object_reference(&q->obj);
        }
        pthread_mutex_unlock(&q->lock);
        if (queue_it) {
            q->dispatch_work.fn = queue_dispatch_work;
            if (uwdf_worker_queue(&q->dispatch_work) != 0) {
                pthread_mutex_lock(&q->lock);
                q->dispatch_work_queued = false;
                pthread_mutex_unlock(&q->lock);
                uwdf_object_release(&q->obj);
                uwdf_log("queue %p: could not defer dispatch to PASSIVE_LEVEL", (void *)q->obj.handle);
            }
        }
        return;
    }
    struct dispatch_frame frame = { q, tls_frames };
    tls_frames = &frame;
    pthread_mutex_lock(&q->lock);
    while (queue_can_present_locked(q)) {
        struct uwdf_request *r = queue_take_head_locked(q);
        if (!r)
            break;
        queue_own_locked(q, r);
        pthread_mutex_unlock(&q->lock);
        queue_invoke(q, r);
        pthread_mutex_lock(&q->lock);
    }
    WDFCONTEXT ctx = NULL;
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    pthread_mutex_unlock(&q->lock);
    tls_frames = frame.prev;
    uwdf_queue_run_state_cb(q, cb, ctx);
}

/* A request whose cancel routine took it off the queue (or that arrived
 * cancelled): EvtIoCanceledOnQueue gets it, or the framework completes it. */
static void queue_cancelled(struct uwdf_queue *q, struct uwdf_request *r)
{
    if (q->config.EvtIoCanceledOnQueue) {
        pthread_mutex_lock(&q->lock);
        queue_own_locked(q, r);
        pthread_mutex_unlock(&q->lock);
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
    pthread_mutex_lock(&q->lock);
    if (r->qstate == UWDF_QS_QUEUED) {
        uwdf_list_remove(&r->queue_link);
        q->waiting_count--;
    }
    r->qstate = UWDF_QS_CANCELING;
    pthread_mutex_unlock(&q->lock);
    queue_cancelled(q, r);
}

void uwdf_request_cancel_driver(struct uwdf_request *r)
{
    struct uwdf_queue *q = r->queue;
    PFN_WDF_REQUEST_CANCEL fn = r->cancel_routine;
    /* cancel_routine stays set: WdfRequestUnmarkCancelable then knows the
     * routine is being or has been called. */
    r->cancelable = false;
    if (r->qstate != UWDF_QS_OWNED || !fn)
        return;
    if (q)
        uwdf_queue_cb_enter(q);
    fn((WDFREQUEST)r->obj.handle);
    if (q)
        uwdf_queue_cb_leave(q);
}

bool uwdf_queue_insert(struct uwdf_queue *q, struct uwdf_request *r, bool head)
{
    pthread_mutex_lock(&q->lock);
    if (!q->accepting || q->deleting) {
        pthread_mutex_unlock(&q->lock);
        return false;
    }
    r->queue = q;
    r->qstate = UWDF_QS_QUEUED;
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
        r->qstate = UWDF_QS_CANCELING;
        pthread_mutex_unlock(&q->lock);
        queue_cancelled(q, r);
        return true;
    }
    PFN_WDF_IO_QUEUE_STATE ready = NULL;
    WDFCONTEXT ready_ctx = q->ready_ctx;
    if (q->config.DispatchType == WdfIoQueueDispatchManual && q->waiting_count == 1 && q->dispatching)
        ready = q->ready_cb;
    pthread_mutex_unlock(&q->lock);
    uwdf_queue_run_state_cb(q, ready, ready_ctx);
    queue_dispatch(q);
    return true;
}

/* ---- receiving a packet ---- */

static struct uwdf_queue *device_queue_for(struct uwdf_device *dev, UCHAR major)
{
    pthread_mutex_lock(&dev->queues_lock);
    struct uwdf_queue *q = major <= IRP_MJ_MAXIMUM_FUNCTION ? dev->dispatch_queue[major] : NULL;
    if (!q)
        q = dev->default_queue;
    if (q)
        uwdf_object_reference(&q->obj);
    pthread_mutex_unlock(&dev->queues_lock);
    return q;
}

void uwdf_queue_packet_complete(struct uwdf_request *sender, NTSTATUS status, ULONG_PTR information)
{
    PIRP irp = sender->irp;
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = information;
    IoSkipCurrentIrpStackLocation(irp);
    uwdf_iotarget_device_done(sender, status, information);
}

static void *mdl_buffer(PMDL mdl)
{
    return mdl ? MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority) : NULL;
}

static NTSTATUS request_bounce(struct uwdf_request *r, size_t len)
{
    if (r->bounce && r->bounce_len >= len)
        return STATUS_SUCCESS;
    void *b = uwdf_alloc(len ? len : 1);
    if (!b)
        return STATUS_INSUFFICIENT_RESOURCES;
    uwdf_free(r->bounce);
    r->bounce = b;
    r->bounce_len = len;
    return STATUS_SUCCESS;
}

/* Copy between a (possibly chained) MDL and a flat buffer. */
static void mdl_copy(PMDL mdl, void *flat, size_t len, bool to_flat)
{
    char *p = flat;
    for (; mdl && len; mdl = mdl->Next) {
        size_t n = mdl->ByteCount < len ? mdl->ByteCount : len;
        char *va = mdl_buffer(mdl);
        if (to_flat)
            memcpy(p, va, n);
        else
            memcpy(va, p, n);
        p += n;
        len -= n;
    }
}

/* Attach the packet's IRP to r and lay its buffers out the way this
 * device's I/O type says: a system buffer for buffered I/O, an MDL for
 * direct I/O. Contiguous buffers are used in place (the address space is
 * shared, so nothing is copied); a scattered buffer on a buffered device,
 * and a METHOD_BUFFERED IOCTL, get a bounce buffer. */
NTSTATUS uwdf_request_receive_setup(struct uwdf_device *dev, struct uwdf_request *r, struct uwdf_request *sender)
{
    PIRP irp = sender->irp;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    r->irp = irp;
    r->irp_owner = UWDF_IRP_DRIVER;
    r->sender = sender;
    r->saved_mdl = irp->MdlAddress;
    r->saved_user = irp->UserBuffer;
    r->saved_system = irp->AssociatedIrp.SystemBuffer;
    r->saved_type3 = s->Parameters.DeviceIoControl.Type3InputBuffer;
    r->rmem_live[0] = r->rmem_live[1] = false;
    s->DeviceObject = &dev->wdm;
    switch (s->MajorFunction) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE: {
        size_t len = s->Parameters.Read.Length;
        void *flat = irp->MdlAddress && !irp->MdlAddress->Next ? mdl_buffer(irp->MdlAddress) : irp->UserBuffer;
        if (dev->io_type == WdfDeviceIoDirect) {
            if (!irp->MdlAddress && flat && len) {
                MmInitializeMdl(&r->rmdl, flat, len);
                MmBuildMdlForNonPagedPool(&r->rmdl);
                irp->MdlAddress = &r->rmdl;
            }
        } else if (dev->io_type != WdfDeviceIoNeither) {
            if (irp->AssociatedIrp.SystemBuffer) {
                /* laid out by a device above */
            } else if (flat || !len) {
                irp->AssociatedIrp.SystemBuffer = flat;
            } else {
                NTSTATUS st = request_bounce(r, len);
                if (!NT_SUCCESS(st))
                    return st;
                if (s->MajorFunction == IRP_MJ_WRITE)
                    mdl_copy(irp->MdlAddress, r->bounce, len, true);
                irp->AssociatedIrp.SystemBuffer = irp->UserBuffer = r->bounce;
                irp->MdlAddress = NULL;
            }
        }
        break;
    }
    case IRP_MJ_DEVICE_CONTROL:
    case IRP_MJ_INTERNAL_DEVICE_CONTROL: {
        ULONG method = METHOD_FROM_CTL_CODE(s->Parameters.DeviceIoControl.IoControlCode);
        size_t in_len = s->Parameters.DeviceIoControl.InputBufferLength;
        size_t out_len = s->Parameters.DeviceIoControl.OutputBufferLength;
        if (irp->AssociatedIrp.SystemBuffer || method == METHOD_NEITHER)
            break; /* laid out above, or passed as is */
        if (method == METHOD_BUFFERED) {
            size_t len = in_len > out_len ? in_len : out_len;
            if (len) {
                NTSTATUS st = request_bounce(r, len);
                if (!NT_SUCCESS(st))
                    return st;
                if (in_len && s->Parameters.DeviceIoControl.Type3InputBuffer)
                    memcpy(r->bounce, s->Parameters.DeviceIoControl.Type3InputBuffer, in_len);
                irp->AssociatedIrp.SystemBuffer = r->bounce;
            }
        } else {
            irp->AssociatedIrp.SystemBuffer = s->Parameters.DeviceIoControl.Type3InputBuffer;
            if (!irp->MdlAddress && irp->UserBuffer && out_len) {
                MmInitializeMdl(&r->rmdl, irp->UserBuffer, out_len);
                MmBuildMdlForNonPagedPool(&r->rmdl);
                irp->MdlAddress = &r->rmdl;
            }
        }
        break;
    }
    default:
        break;
    }
    r->pres_mdl = irp->MdlAddress;
    r->pres_user = irp->UserBuffer;
    r->pres_system = irp->AssociatedIrp.SystemBuffer;
    return STATUS_SUCCESS;
}

/* Undo uwdf_request_receive_setup at completion: retrieved handles die, a bounce
 * buffer's data goes back to the sender's memory, the IRP fields the
 * sender set are restored. */
void uwdf_request_receive_teardown(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information)
{
    PIRP irp = r->irp;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    for (int i = 0; i < 2; i++) {
        if (r->rmem_live[i])
            uwdf_object_embed_unregister(&r->rmem[i].obj);
        r->rmem_live[i] = false;
    }
    if (r->rmdl_alloc) {
        IoFreeMdl(r->rmdl_alloc);
        r->rmdl_alloc = NULL;
    }
    if (r->bounce && irp->AssociatedIrp.SystemBuffer == r->bounce && NT_SUCCESS(status)) {
        if (s->MajorFunction == IRP_MJ_READ) {
            size_t n = information < s->Parameters.Read.Length ? information : s->Parameters.Read.Length;
            mdl_copy(r->saved_mdl, r->bounce, n, false);
        } else if (s->MajorFunction == IRP_MJ_DEVICE_CONTROL ||
                   s->MajorFunction == IRP_MJ_INTERNAL_DEVICE_CONTROL) {
            size_t out_len = s->Parameters.DeviceIoControl.OutputBufferLength;
            size_t n = information < out_len ? information : out_len;
            if (n && r->saved_user)
                memcpy(r->saved_user, r->bounce, n);
        }
    }
    irp->MdlAddress = r->saved_mdl;
    irp->UserBuffer = r->saved_user;
    irp->AssociatedIrp.SystemBuffer = r->saved_system;
    s->Parameters.DeviceIoControl.Type3InputBuffer = r->saved_type3;
}

/* Delete a request nobody saw: WDF frees it without its cleanup callbacks. */
static void request_discard(struct uwdf_request *r)
{
    for (struct uwdf_context *c = r->obj.contexts; c; c = c->next) {
        c->cleanup = NULL;
        c->destroy = NULL;
    }
    r->irp = NULL;
    uwdf_object_delete(&r->obj);
}

/* The request for an incoming packet on q: a new one, or under the
 * forward-progress policy a reserved one. STATUS_PENDING: the packet waits
 * for a reserved request. */
static NTSTATUS queue_get_request(struct uwdf_queue *q, struct uwdf_request *sender, struct uwdf_request **out)
{
    struct uwdf_device *dev = q->device;
    struct uwdf_request *r = NULL;
    NTSTATUS st = STATUS_INSUFFICIENT_RESOURCES;
    bool injected = q->fp && uwdf_fp_inject_failure();
    if (!injected) {
        st = uwdf_request_create_received(dev, &r);
        if (NT_SUCCESS(st)) {
            st = uwdf_request_receive_setup(dev, r, sender);
            if (NT_SUCCESS(st) && q->fp)
                st = uwdf_fp_allocate_request_resources(q, r);
            if (NT_SUCCESS(st)) {
                *out = r;
                return STATUS_SUCCESS;
            }
            uwdf_request_receive_teardown(r, st, 0);
            request_discard(r);
        }
        if (!q->fp)
            return st;
    }
    return uwdf_fp_take_reserved(q, sender, out);
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

    struct uwdf_queue *q = device_queue_for(dev, s->MajorFunction);
    if (!q) {
        uwdf_queue_packet_complete(sender, STATUS_INVALID_DEVICE_REQUEST, 0);
        return;
    }
    if ((s->MajorFunction == IRP_MJ_READ || s->MajorFunction == IRP_MJ_WRITE) &&
        s->Parameters.Read.Length == 0 && !q->config.AllowZeroLengthRequests) {
        uwdf_object_release(&q->obj);
        uwdf_queue_packet_complete(sender, STATUS_SUCCESS, 0);
        return;
    }
    struct uwdf_request *r;
    NTSTATUS st = queue_get_request(q, sender, &r);
    if (st == STATUS_PENDING) {
        uwdf_object_release(&q->obj);
        return;
    }
    if (!NT_SUCCESS(st)) {
        uwdf_object_release(&q->obj);
        uwdf_queue_packet_complete(sender, st, 0);
        return;
    }
    if (!uwdf_queue_insert(q, r, false)) {
        /* not accepting (drained, purged): KMDF fails it this way */
        r->queue = q;
        uwdf_queue_complete(r, STATUS_INVALID_DEVICE_STATE, 0);
    }
    uwdf_object_release(&q->obj);
}

/* ---- completion ---- */

void uwdf_queue_complete(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information)
{
    struct uwdf_queue *q = r->queue;
    struct uwdf_request *sender = r->sender;
    PIRP irp = r->irp;
    PFN_WDF_IO_QUEUE_STATE cb = NULL;
    WDFCONTEXT ctx = NULL;

    if (r->cancelable) {
        uwdf_irp_clear_cancel(irp);
        r->cancelable = false;
    }
    if (q) {
        uwdf_object_reference(&q->obj);
        pthread_mutex_lock(&q->lock);
        if (r->qstate == UWDF_QS_OWNED || r->qstate == UWDF_QS_COMPLETING)
            queue_disown_locked(q, r);
        r->qstate = UWDF_QS_COMPLETED;
        cb = uwdf_queue_state_check_locked(q, &ctx);
        pthread_mutex_unlock(&q->lock);
    }
    r->qstate = UWDF_QS_COMPLETED;
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
    if (q) {
        uwdf_queue_run_state_cb(q, cb, ctx);
        queue_dispatch(q);
        uwdf_object_release(&q->obj);
    }
}

static struct uwdf_request *received_lookup(WDFREQUEST handle, const char *ddi)
{
    struct uwdf_request *r = uwdf_request_lookup(handle, ddi);
    if (r && !r->received) {
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_NOT_IN_QUEUE,
                          (ULONG_PTR)handle, 0,
                          "%s: request %p was created by the driver, not received from a queue; "
                          "delete it with WdfObjectDelete (rule ReqDelete)", ddi, (void *)handle);
        else
            uwdf_log("%s: request %p was created by the driver, not received from a queue "
                     "(rule ReqDelete)", ddi, (void *)handle);
        return NULL;
    }
    return r;
}

static void request_complete_ddi(WDFREQUEST Request, NTSTATUS Status, bool set_info, ULONG_PTR info,
                                 const char *ddi)
{
    struct uwdf_request *r = received_lookup(Request, ddi);
    if (!r)
        return;
    struct uwdf_queue *q = r->queue;
    if (q)
        pthread_mutex_lock(&q->lock);
    uint8_t qs = r->qstate;
    bool ok = qs == UWDF_QS_OWNED && !(atomic_load(&r->flags) & (UWDF_REQ_SENT | UWDF_REQ_PENDED));
    if (ok)
        r->qstate = UWDF_QS_COMPLETING; /* a second completion is caught */
    if (q)
        pthread_mutex_unlock(&q->lock);
    if (!ok) {
        if (qs == UWDF_QS_COMPLETED || qs == UWDF_QS_CANCELING || qs == UWDF_QS_COMPLETING)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT,
                          (ULONG_PTR)Request, 0,
                          "%s: request %p is already completed (rule DoubleCompletion)", ddi, (void *)Request);
        else if (qs == UWDF_QS_QUEUED)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_NOT_IN_QUEUE,
                          (ULONG_PTR)Request, 0, "%s: request %p is on a queue; the driver does not own it",
                          ddi, (void *)Request);
        else
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT,
                          (ULONG_PTR)Request, 0, "%s: request %p is still sent to an I/O target", ddi,
                          (void *)Request);
        return;
    }
    if (!set_info)
        info = r->irp->IoStatus.Information;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(r->irp);
    if (uwdf_verifier && NT_SUCCESS(Status)) {
        size_t limit = SIZE_MAX;
        if (s->MajorFunction == IRP_MJ_READ || s->MajorFunction == IRP_MJ_WRITE)
            limit = s->Parameters.Read.Length;
        else if (s->MajorFunction == IRP_MJ_DEVICE_CONTROL)
            limit = s->Parameters.DeviceIoControl.OutputBufferLength;
        if (info > limit)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_INFORMATION_LENGTH_MISMATCH,
                          (ULONG_PTR)Request, info,
                          "%s: Information %lu is larger than the request's buffer (%zu bytes)", ddi,
                          (unsigned long)info, limit);
    }
    uwdf_queue_complete(r, Status, info);
}

VOID WdfRequestComplete(WDFREQUEST Request, NTSTATUS Status)
{
    request_complete_ddi(Request, Status, false, 0, "WdfRequestComplete");
}

VOID WdfRequestCompleteWithInformation(WDFREQUEST Request, NTSTATUS Status, ULONG_PTR Information)
{
    request_complete_ddi(Request, Status, true, Information, "WdfRequestCompleteWithInformation");
}

VOID WdfRequestCompleteWithPriorityBoost(WDFREQUEST Request, NTSTATUS Status, CCHAR PriorityBoost)
{
    (void)PriorityBoost; /* a scheduling hint with no meaning here */
    request_complete_ddi(Request, Status, false, 0, "WdfRequestCompleteWithPriorityBoost");
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
    pthread_mutex_lock(&q->lock);
    queue_disown_locked(q, r);
    r->qstate = UWDF_QS_CANCELING;
    pthread_mutex_unlock(&q->lock);
    NTSTATUS st = uwdf_iotarget_submit(t, r, NULL);
    if (!NT_SUCCESS(st)) {
        pthread_mutex_lock(&q->lock);
        queue_own_locked(q, r);
        pthread_mutex_unlock(&q->lock);
        r->routine = NULL;
        r->routine_ctx = NULL;
        uwdf_request_release_format(r);
        return st;
    }
    uwdf_queue_check_state(q);
    queue_dispatch(q);
    return STATUS_SUCCESS;
}

/* ---- retrieving buffers ---- */

static bool received_usable(struct uwdf_request *r, const char *ddi, NTSTATUS *status)
{
    if (r->qstate == UWDF_QS_COMPLETED || !r->irp) {
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, 0, (ULONG_PTR)r->obj.handle, 0,
                          "%s: request %p is already completed (rule InvalidReqAccess)", ddi,
                          (void *)r->obj.handle);
        *status = STATUS_INTERNAL_ERROR;
        return false;
    }
    return true;
}

/* The buffer a retrieval means: slot 0 input, 1 output. The IRP's buffers
 * as presented: a format of the request for a target replaces them in the
 * IRP until it is dropped, but not what the request itself carries. */
static NTSTATUS request_buffer(struct uwdf_request *r, int slot, void **buf, size_t *len, bool *read_only)
{
    PIRP irp = r->irp;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    struct uwdf_device *dev = uwdf_container_of(s->DeviceObject, struct uwdf_device, wdm);
    *read_only = false;
    *buf = NULL;
    switch (s->MajorFunction) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE:
        if ((s->MajorFunction == IRP_MJ_READ) != (slot == 1))
            return STATUS_INVALID_DEVICE_REQUEST;
        *len = s->Parameters.Read.Length;
        if (dev->io_type == WdfDeviceIoNeither) {
            /* The requestor's own buffer, which KMDF hands out only to a
             * kernel-mode requestor (every request the port builds is one;
             * the port's address space is the requestor's). */
            if (irp->RequestorMode != KernelMode)
                return STATUS_INVALID_DEVICE_REQUEST;
            *buf = r->pres_user;
            if (!*buf && r->pres_mdl && !r->pres_mdl->Next)
                *buf = mdl_buffer(r->pres_mdl);
        } else {
            *buf = dev->io_type == WdfDeviceIoDirect ? mdl_buffer(r->pres_mdl)
                                                     : r->pres_system;
        }
        *read_only = s->MajorFunction == IRP_MJ_WRITE;
        break;
    case IRP_MJ_DEVICE_CONTROL:
    case IRP_MJ_INTERNAL_DEVICE_CONTROL: {
        ULONG method = METHOD_FROM_CTL_CODE(s->Parameters.DeviceIoControl.IoControlCode);
        if (slot == 0) {
            *len = s->Parameters.DeviceIoControl.InputBufferLength;
            *buf = method == METHOD_NEITHER ? s->Parameters.DeviceIoControl.Type3InputBuffer
                                            : r->pres_system;
        } else {
            *len = s->Parameters.DeviceIoControl.OutputBufferLength;
            *buf = method == METHOD_BUFFERED  ? r->pres_system
                   : method == METHOD_NEITHER ? r->pres_user
                                              : mdl_buffer(r->pres_mdl);
        }
        break;
    }
    default:
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if (*len == 0)
        return STATUS_BUFFER_TOO_SMALL;
    if (!*buf)
        return STATUS_INVALID_DEVICE_REQUEST;
    return STATUS_SUCCESS;
}

void uwdf_request_irp_ioctl_buffers(struct uwdf_request *req, void **in, size_t *in_len, void **out,
                                    size_t *out_len)
{
    PIRP irp = req->irp;
    PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(irp);
    ULONG method = METHOD_FROM_CTL_CODE(s->Parameters.DeviceIoControl.IoControlCode);
    *in_len = s->Parameters.DeviceIoControl.InputBufferLength;
    *out_len = s->Parameters.DeviceIoControl.OutputBufferLength;
    *in = method == METHOD_NEITHER ? s->Parameters.DeviceIoControl.Type3InputBuffer
                                   : irp->AssociatedIrp.SystemBuffer;
    *out = method == METHOD_BUFFERED  ? irp->AssociatedIrp.SystemBuffer
           : method == METHOD_NEITHER ? irp->UserBuffer
                                      : mdl_buffer(irp->MdlAddress);
}

/* Common checks of the retrieval family; the buffer it means. */
static NTSTATUS retrieve_common(WDFREQUEST Request, int slot, const char *ddi, struct uwdf_request **req,
                                void **buf, size_t *len, bool *read_only)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, ddi);
    if (!r)
        return STATUS_INVALID_HANDLE;
    if (!r->received)
        return STATUS_INVALID_DEVICE_REQUEST;
    NTSTATUS st;
    if (!received_usable(r, ddi, &st))
        return st;
    *req = r;
    return request_buffer(r, slot, buf, len, read_only);
}

static NTSTATUS retrieve_buffer(WDFREQUEST Request, int slot, size_t min_len, PVOID *Buffer, size_t *Length,
                                const char *ddi)
{
    struct uwdf_request *r;
    void *buf;
    size_t len;
    bool ro;
    UWDF_REQUIRE_PARAM(Buffer, ddi, STATUS_INVALID_PARAMETER);
    *Buffer = NULL;
    if (Length)
        *Length = 0;
    NTSTATUS st = retrieve_common(Request, slot, ddi, &r, &buf, &len, &ro);
    if (!NT_SUCCESS(st))
        return st;
    if (len < min_len)
        return STATUS_BUFFER_TOO_SMALL;
    *Buffer = buf;
    if (Length)
        *Length = len;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestRetrieveInputBuffer(WDFREQUEST Request, size_t MinimumRequiredLength, PVOID *Buffer,
                                       size_t *Length)
{
    return retrieve_buffer(Request, 0, MinimumRequiredLength, Buffer, Length, "WdfRequestRetrieveInputBuffer");
}

NTSTATUS WdfRequestRetrieveOutputBuffer(WDFREQUEST Request, size_t MinimumRequiredSize, PVOID *Buffer,
                                        size_t *Length)
{
    return retrieve_buffer(Request, 1, MinimumRequiredSize, Buffer, Length, "WdfRequestRetrieveOutputBuffer");
}

static NTSTATUS retrieve_memory(WDFREQUEST Request, int slot, WDFMEMORY *Memory, const char *ddi)
{
    struct uwdf_request *r;
    void *buf;
    size_t len;
    bool ro;
    UWDF_REQUIRE_PARAM(Memory, ddi, STATUS_INVALID_PARAMETER);
    *Memory = NULL;
    NTSTATUS st = retrieve_common(Request, slot, ddi, &r, &buf, &len, &ro);
    if (!NT_SUCCESS(st))
        return st;
    struct uwdf_memory *m = &r->rmem[slot];
    if (!r->rmem_live[slot]) {
        /* The memory object is part of the request (as in WDF), so this
         * allocates nothing; its handle dies when the request completes. */
        memset(m, 0, sizeof(*m));
        m->buffer = buf;
        m->size = len;
        m->kind = UWDF_MEM_PREALLOCATED;
        m->read_only = ro;
        if (!uwdf_object_embed_register(&m->obj, UWDF_OBJ_MEMORY, &r->obj))
            return STATUS_INSUFFICIENT_RESOURCES;
        r->rmem_live[slot] = true;
    }
    *Memory = (WDFMEMORY)m->obj.handle;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestRetrieveInputMemory(WDFREQUEST Request, WDFMEMORY *Memory)
{
    return retrieve_memory(Request, 0, Memory, "WdfRequestRetrieveInputMemory");
}

NTSTATUS WdfRequestRetrieveOutputMemory(WDFREQUEST Request, WDFMEMORY *Memory)
{
    return retrieve_memory(Request, 1, Memory, "WdfRequestRetrieveOutputMemory");
}

static NTSTATUS retrieve_mdl(WDFREQUEST Request, int slot, PMDL *Mdl, const char *ddi)
{
    struct uwdf_request *r;
    void *buf;
    size_t len;
    bool ro;
    UWDF_REQUIRE_PARAM(Mdl, ddi, STATUS_INVALID_PARAMETER);
    *Mdl = NULL;
    NTSTATUS st = retrieve_common(Request, slot, ddi, &r, &buf, &len, &ro);
    if (!NT_SUCCESS(st))
        return st;
    PIRP irp = r->irp;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    bool ioctl = s->MajorFunction == IRP_MJ_DEVICE_CONTROL || s->MajorFunction == IRP_MJ_INTERNAL_DEVICE_CONTROL;
    if (ioctl && METHOD_FROM_CTL_CODE(s->Parameters.DeviceIoControl.IoControlCode) == METHOD_NEITHER)
        return STATUS_INVALID_DEVICE_REQUEST;
    /* Neither I/O has no MDL to give (KMDF: buffered builds one, direct
     * has one), only the requestor's buffer. */
    if (!ioctl && uwdf_container_of(s->DeviceObject, struct uwdf_device, wdm)->io_type == WdfDeviceIoNeither)
        return STATUS_INVALID_DEVICE_REQUEST;
    /* The IRP's MDL where the buffer is one (direct I/O); otherwise an
     * MDL built for the system buffer, which can fail for memory. */
    if (r->pres_mdl && buf == mdl_buffer(r->pres_mdl) && (!ioctl || slot == 1)) {
        *Mdl = r->pres_mdl;
        return STATUS_SUCCESS;
    }
    if (r->rmdl_alloc && MmGetMdlVirtualAddress(r->rmdl_alloc) == buf && r->rmdl_alloc->ByteCount == len) {
        *Mdl = r->rmdl_alloc;
        return STATUS_SUCCESS;
    }
    if (len > UINT32_MAX)
        return STATUS_INVALID_PARAMETER;
    PMDL m = IoAllocateMdl(buf, (ULONG)len, FALSE, FALSE, NULL);
    if (!m)
        return STATUS_INSUFFICIENT_RESOURCES;
    MmBuildMdlForNonPagedPool(m);
    if (r->rmdl_alloc)
        IoFreeMdl(r->rmdl_alloc);
    r->rmdl_alloc = m;
    *Mdl = m;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestRetrieveInputWdmMdl(WDFREQUEST Request, PMDL *Mdl)
{
    return retrieve_mdl(Request, 0, Mdl, "WdfRequestRetrieveInputWdmMdl");
}

NTSTATUS WdfRequestRetrieveOutputWdmMdl(WDFREQUEST Request, PMDL *Mdl)
{
    return retrieve_mdl(Request, 1, Mdl, "WdfRequestRetrieveOutputWdmMdl");
}

/* ---- cancelable requests ---- */

static NTSTATUS mark_cancelable(WDFREQUEST Request, PFN_WDF_REQUEST_CANCEL EvtRequestCancel, const char *ddi,
                                bool call_if_cancelled)
{
    struct uwdf_request *r = received_lookup(Request, ddi);
    UWDF_REQUIRE_PARAM(EvtRequestCancel, ddi, STATUS_INVALID_PARAMETER);
    if (!r)
        return STATUS_INVALID_DEVICE_REQUEST;
    if (r->qstate != UWDF_QS_OWNED || r->cancelable)
        return STATUS_INVALID_DEVICE_REQUEST;
    r->cancel_routine = EvtRequestCancel;
    r->cancelable = true;
    if (!uwdf_irp_set_cancel(r->irp, UWDF_CANCEL_DRIVER, r)) {
        r->cancelable = false;
        r->cancel_routine = NULL;
        if (call_if_cancelled) {
            /* WdfRequestMarkCancelable: an already cancelled request goes
             * to the cancel routine at once. */
            struct uwdf_queue *q = r->queue;
            if (q)
                uwdf_queue_cb_enter(q);
            EvtRequestCancel(Request);
            if (q)
                uwdf_queue_cb_leave(q);
        }
        return STATUS_CANCELLED;
    }
    return STATUS_SUCCESS;
}

VOID WdfRequestMarkCancelable(WDFREQUEST Request, PFN_WDF_REQUEST_CANCEL EvtRequestCancel)
{
    mark_cancelable(Request, EvtRequestCancel, "WdfRequestMarkCancelable", true);
}

NTSTATUS WdfRequestMarkCancelableEx(WDFREQUEST Request, PFN_WDF_REQUEST_CANCEL EvtRequestCancel)
{
    return mark_cancelable(Request, EvtRequestCancel, "WdfRequestMarkCancelableEx", false);
}

NTSTATUS WdfRequestUnmarkCancelable(WDFREQUEST Request)
{
    struct uwdf_request *r = received_lookup(Request, "WdfRequestUnmarkCancelable");
    if (!r)
        return STATUS_INVALID_DEVICE_REQUEST;
    if (r->qstate != UWDF_QS_OWNED)
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!r->cancelable) /* never marked, or its cancel routine was taken */
        return r->cancel_routine ? STATUS_CANCELLED : STATUS_INVALID_PARAMETER;
    r->cancelable = false;
    if (!uwdf_irp_clear_cancel(r->irp))
        return STATUS_CANCELLED; /* the cancel routine runs; it completes the request */
    r->cancel_routine = NULL;
    return STATUS_SUCCESS;
}

BOOLEAN WdfRequestIsCanceled(WDFREQUEST Request)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfRequestIsCanceled");
    if (!r)
        return FALSE;
    if (r->received)
        return r->irp && r->irp->Cancel;
    return (atomic_load(&r->flags) & UWDF_REQ_CANCELED) != 0;
}

/* ---- ownership between queues ---- */

WDFQUEUE WdfRequestGetIoQueue(WDFREQUEST Request)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfRequestGetIoQueue");
    if (!r || !r->received || !r->queue || r->qstate == UWDF_QS_COMPLETED)
        return NULL;
    return (WDFQUEUE)r->queue->obj.handle;
}

BOOLEAN WdfRequestIsReserved(WDFREQUEST Request)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfRequestIsReserved");
    return r && r->reserved;
}

KPROCESSOR_MODE WdfRequestGetRequestorMode(WDFREQUEST Request)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfRequestGetRequestorMode");
    return r && r->irp ? r->irp->RequestorMode : KernelMode;
}

NTSTATUS uwdf_queue_move(struct uwdf_request *r, struct uwdf_queue *src, struct uwdf_queue *dest, bool head,
                             NTSTATUS refused)
{
    pthread_mutex_lock(&src->lock);
    queue_disown_locked(src, r);
    r->qstate = UWDF_QS_NONE;
    pthread_mutex_unlock(&src->lock);
    if (!uwdf_queue_insert(dest, r, head)) {
        pthread_mutex_lock(&src->lock);
        queue_own_locked(src, r);
        pthread_mutex_unlock(&src->lock);
        return refused;
    }
    if (src != dest) {
        uwdf_queue_check_state(src);
        queue_dispatch(src);
    }
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestForwardToIoQueue(WDFREQUEST Request, WDFQUEUE DestinationQueue)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfRequestForwardToIoQueue");
    struct uwdf_queue *dest = uwdf_queue_lookup(DestinationQueue, "WdfRequestForwardToIoQueue");
    if (!r || !dest)
        return STATUS_INVALID_HANDLE;
    struct uwdf_queue *src = r->queue;
    if (!r->received || r->qstate != UWDF_QS_OWNED || !src || src == dest || src->device != dest->device ||
        r->cancelable)
        return STATUS_INVALID_DEVICE_REQUEST;
    return uwdf_queue_move(r, src, dest, false, STATUS_WDF_BUSY);
}

NTSTATUS WdfRequestRequeue(WDFREQUEST Request)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfRequestRequeue");
    if (!r)
        return STATUS_INVALID_HANDLE;
    struct uwdf_queue *q = r->queue;
    if (!r->received || r->qstate != UWDF_QS_OWNED || !q || r->cancelable ||
        q->config.DispatchType != WdfIoQueueDispatchManual)
        return STATUS_INVALID_DEVICE_REQUEST;
    return uwdf_queue_move(r, q, q, true, STATUS_INVALID_DEVICE_REQUEST);
}

VOID WdfRequestStopAcknowledge(WDFREQUEST Request, BOOLEAN Requeue)
{
    struct uwdf_request *r = received_lookup(Request, "WdfRequestStopAcknowledge");
    if (!r)
        return;
    struct uwdf_queue *q = r->queue;
    if (!q || r->qstate != UWDF_QS_OWNED)
        return;
    if (Requeue) {
        if (!NT_SUCCESS(uwdf_queue_move(r, q, q, true, STATUS_CANCELLED)))
            uwdf_queue_complete(r, STATUS_CANCELLED, 0);
    } else {
        pthread_mutex_lock(&q->lock);
        r->stop_acked = true;
        pthread_mutex_unlock(&q->lock);
    }
    uwdf_queue_check_state(q);
}

/* ---- queue objects ---- */

static void queue_collect_waiting_locked(struct uwdf_queue *q, LIST_ENTRY *out, LIST_ENTRY *packets)
{
    struct uwdf_request *r;
    while ((r = queue_take_head_locked(q)) != NULL) {
        r->qstate = UWDF_QS_CANCELING;
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
        pthread_mutex_lock(&q->lock);
        for (LIST_ENTRY *e = q->owned.Flink; e != &q->owned; e = e->Flink) {
            struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
            /* (one being completed, CANCELING, is on its way out) */
            if (r->stop_acked || r->suspended || r->qstate != UWDF_QS_OWNED)
                continue;
            pick = r;
            cancelable = r->cancelable;
            r->suspended = true; /* notified for this stop */
            uwdf_object_reference(&r->obj);
            /* Claimed here, under the lock: once it is unlocked the driver
             * may complete the request and its IRP return to the sender. */
            if (cancel_cancelable && cancelable)
                claim = uwdf_irp_cancel_take(r->irp);
            break;
        }
        pthread_mutex_unlock(&q->lock);
        if (!pick)
            break;
        if (cancel_cancelable && cancelable) {
            uwdf_irp_cancel_run(claim);
        } else if (q->config.EvtIoStop) {
            uwdf_queue_cb_enter(q);
            q->config.EvtIoStop((WDFQUEUE)q->obj.handle, (WDFREQUEST)pick->obj.handle,
                                action | (cancelable ? WdfRequestStopRequestCancelable : 0));
            uwdf_queue_cb_leave(q);
        }
        uwdf_object_release(&pick->obj);
    }
    /* "suspended" only marked who was told; acknowledgements count. */
    pthread_mutex_lock(&q->lock);
    for (LIST_ENTRY *e = q->owned.Flink; e != &q->owned; e = e->Flink) {
        struct uwdf_request *r = CONTAINING_RECORD(e, struct uwdf_request, queue_link);
        r->suspended = r->stop_acked;
    }
    pthread_mutex_unlock(&q->lock);
}

static void queue_state_change(struct uwdf_queue *q, enum uwdf_queue_op op, PFN_WDF_IO_QUEUE_STATE cb, WDFCONTEXT ctx,
                               bool wait, const char *ddi)
{
    if (wait && !uwdf_irql_check_passive(ddi))
        return;
    LIST_ENTRY reqs, packets;
    uwdf_list_init(&reqs);
    uwdf_list_init(&packets);
    pthread_mutex_lock(&q->lock);
    if (q->op != QOP_NONE) {
        /* One state change at a time (WDF asserts): the earlier one's
         * callback runs now, so nobody waits for it forever. */
        uwdf_log("%s: an earlier queue state change was still pending; it ends now", ddi);
        PFN_WDF_IO_QUEUE_STATE old = q->op_cb;
        WDFCONTEXT old_ctx = q->op_ctx;
        q->op = QOP_NONE;
        q->op_cb = NULL;
        q->op_gen++;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
        uwdf_queue_run_state_cb(q, old, old_ctx);
        pthread_mutex_lock(&q->lock);
    }
    switch (op) {
    case QOP_STOP:
        q->dispatching = false;
        q->accepting = true;
        break;
    case QOP_DRAIN:
        q->accepting = false;
        break;
    case QOP_PURGE:
        q->accepting = false;
        queue_collect_waiting_locked(q, &reqs, &packets);
        break;
    case QOP_STOP_PURGE:
        q->dispatching = false;
        queue_collect_waiting_locked(q, &reqs, &packets);
        break;
    default:
        break;
    }
    q->op = op;
    q->op_cb = cb;
    q->op_ctx = ctx;
    uint64_t gen = q->op_gen;
    pthread_mutex_unlock(&q->lock);

    queue_cancel_collected(q, &reqs, &packets, true);
    if (op == QOP_STOP)
        queue_stop_owned(q, WdfRequestStopActionSuspend, false);
    else if (op == QOP_PURGE || op == QOP_STOP_PURGE)
        queue_stop_owned(q, WdfRequestStopActionPurge, true);
    uwdf_queue_check_state(q);
    queue_dispatch(q);
    if (!wait)
        return;
    pthread_mutex_lock(&q->lock);
    while (q->op_gen == gen)
        pthread_cond_wait(&q->cond, &q->lock);
    pthread_mutex_unlock(&q->lock);
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
    pthread_mutex_lock(&q->lock);
    if (q->deleting) {
        pthread_mutex_unlock(&q->lock);
        return;
    }
    q->accepting = q->dispatching = true;
    pthread_mutex_unlock(&q->lock);
    /* Requests the driver acknowledged without requeueing resume. */
    for (;;) {
        struct uwdf_request *pick = NULL;
        pthread_mutex_lock(&q->lock);
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
        pthread_mutex_unlock(&q->lock);
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
    pthread_mutex_lock(&q->lock);
    unsigned state = (q->accepting ? WdfIoQueueAcceptRequests : 0) |
                     (q->dispatching ? WdfIoQueueDispatchRequests : 0) |
                     (q->waiting_count == 0 ? WdfIoQueueNoRequests : 0) |
                     (q->owned_count == 0 ? WdfIoQueueDriverNoRequests : 0);
    if (QueueRequests)
        *QueueRequests = q->waiting_count;
    if (DriverRequests)
        *DriverRequests = q->owned_count;
    pthread_mutex_unlock(&q->lock);
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
    pthread_mutex_lock(&q->lock);
    if (!q->dispatching || q->deleting) {
        pthread_mutex_unlock(&q->lock);
        return STATUS_WDF_PAUSED;
    }
    struct uwdf_request *r = queue_take_head_locked(q);
    if (r)
        queue_own_locked(q, r);
    WDFCONTEXT ctx = NULL;
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    pthread_mutex_unlock(&q->lock);
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
    pthread_mutex_lock(&q->lock);
    if (QueueReady && q->ready_cb) {
        pthread_mutex_unlock(&q->lock);
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    q->ready_cb = QueueReady;
    q->ready_ctx = QueueReady ? Context : NULL;
    bool now = QueueReady && q->waiting_count && q->dispatching;
    pthread_mutex_unlock(&q->lock);
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
    while (q->owned_count && pthread_cond_timedwait(&q->cond, &q->lock, &until) == 0)
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
        dev->default_queue = NULL;
    for (int i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        if (dev->dispatch_queue[i] == q)
            dev->dispatch_queue[i] = NULL;
    pthread_mutex_unlock(&dev->queues_lock);

    LIST_ENTRY reqs, packets;
    uwdf_list_init(&reqs);
    uwdf_list_init(&packets);
    pthread_mutex_lock(&q->lock);
    q->accepting = q->dispatching = false;
    queue_collect_waiting_locked(q, &reqs, &packets);
    pthread_mutex_unlock(&q->lock);
    queue_cancel_collected(q, &reqs, &packets, false);
    queue_stop_owned(q, WdfRequestStopActionPurge, true);
    /* What the driver still owns must come back before the queue goes
     * (WDF waits the same way on removal); then the reserved requests,
     * whose cleanup callbacks run only now. */
    pthread_mutex_lock(&q->lock);
    q->deleting = true;
    if (UWDF_UNLIKELY(uwdf_verifier) && q->owned_count)
        queue_verify_owned_locked(q);
    while (q->owned_count || !uwdf_fp_all_home_locked(q->fp))
        pthread_cond_wait(&q->cond, &q->lock);
    struct uwdf_fp *fp = q->fp;
    q->fp = NULL;
    pthread_mutex_unlock(&q->lock);
    uwdf_fp_free(fp);
}

static void queue_destroy(struct uwdf_object *obj)
{
    struct uwdf_queue *q = (struct uwdf_queue *)obj;
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
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
    if (c->PowerManaged == WdfTrue) {
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
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&q->own_sync, &ma);
    pthread_mutexattr_destroy(&ma);
    uwdf_list_init(&q->waiting);
    uwdf_list_init(&q->owned);
    q->accepting = q->dispatching = true;
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
            dev->default_queue = q;
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
    if (RequestType != WdfRequestTypeRead && RequestType != WdfRequestTypeWrite &&
        RequestType != WdfRequestTypeDeviceControl && RequestType != WdfRequestTypeDeviceControlInternal &&
        RequestType != WdfRequestTypeFlushBuffers)
        return STATUS_INVALID_PARAMETER;
    /* KMDF's statuses (FxPkgIo::ConfigureForwarding): another device's
     * queue, a queue with no handler for the type, or the default queue is
     * STATUS_INVALID_DEVICE_REQUEST; a type already configured is
     * STATUS_WDF_BUSY. (FlushBuffers is this port's addition.) */
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
        dev->dispatch_queue[RequestType] = q;
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
