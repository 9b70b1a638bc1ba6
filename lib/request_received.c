/* The DDIs of a request a queue presented to the driver: complete it,
 * read its parameters, retrieve its buffers, mark it cancelable, forward
 * or requeue it, acknowledge a stop; and the layout of its buffers from
 * the packet's IRP at receipt until its completion. (The request object:
 * lib/request.c; its queue: lib/queue.c. KMDF keeps the DDIs of a request
 * in fxrequestapi.cpp, apart from the object, the same way.)
 *
 * Locks: the queue's lock guards qstate and the queue's lists; the cancel
 * lock (lib/irp.c) is taken inside it. No lock is held across a driver
 * callback. */
#include "runtime.h"
#include "device.h"
#include "irp.h"
#include "memory.h"
#include "object.h"
#include "queue.h"
#include "request.h"

static void *mdl_buffer(PMDL mdl)
{
    return mdl ? MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority) : NULL;
}

/* The part of r only retrievals and bounce buffers use, allocated the
 * first time (it stays with r's memory: lib/request.c); NULL if it cannot
 * be. */
static struct uwdf_request_rx_more *rx_more(struct uwdf_request *r)
{
    if (UWDF_LIKELY(r->rx->more != NULL))
        return r->rx->more;
    return r->rx->more = uwdf_zalloc(sizeof(*r->rx->more));
}

NTSTATUS uwdf_request_reserve_parts(struct uwdf_request *r)
{
    if (!rx_more(r))
        return STATUS_INSUFFICIENT_RESOURCES;
    return uwdf_request_ensure_send_ext(r);
}

/* The buffer of r's direct-I/O MDL, built or not. */
static void *presented_mdl_buffer(struct uwdf_request *r)
{
    return r->mdl_deferred ? r->rx->pres_user : mdl_buffer(r->rx->pres_mdl);
}

/* Unlocked, as the other retrievals: the driver that owns the request
 * makes one such call on it at a time. */
bool uwdf_request_build_presented_mdl(struct uwdf_request *r)
{
    if (!r->mdl_deferred || !r->irp)
        return true;
    struct uwdf_request_rx_more *more = rx_more(r);
    if (!more)
        return false;
    PIRP irp = r->irp;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    bool rw = s->MajorFunction == IRP_MJ_READ || s->MajorFunction == IRP_MJ_WRITE;
    MmInitializeMdl(&more->rmdl, r->rx->pres_user,
                    rw ? s->Parameters.Read.Length : s->Parameters.DeviceIoControl.OutputBufferLength);
    MmBuildMdlForNonPagedPool(&more->rmdl);
    r->rx->pres_mdl = &more->rmdl;
    /* Not where a format put its own buffers (restored at its end), nor
     * while the IRP is on below. */
    if (!irp->MdlAddress && irp->UserBuffer == r->rx->pres_user && !(atomic_load(&r->flags) & UWDF_REQ_IN_FLIGHT))
        irp->MdlAddress = &more->rmdl;
    r->mdl_deferred = false;
    return true;
}

/* ---- completion ---- */

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
            uwdf_log_at(UwdfLogVerifier,
                        "%s: request %p was created by the driver, not received from a queue (rule ReqDelete)", ddi,
                        (void *)handle);
        return NULL;
    }
    return r;
}

/* The verifier's check of a successful completion's Information against
 * the request's buffer. */
static void request_verify_information(WDFREQUEST Request, struct uwdf_request *r, ULONG_PTR info,
                                       const char *ddi)
{
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(r->irp);
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

static void request_complete_ddi(WDFREQUEST Request, NTSTATUS Status, bool set_info, ULONG_PTR info,
                                 const char *ddi)
{
    struct uwdf_request *r = received_lookup(Request, ddi);
    if (!r)
        return;
    struct uwdf_queue *q = r->queue;
    if (q)
        uwdf_queue_lock(q);
    uint8_t qs = r->qstate;
    bool ok = qs == UWDF_QS_OWNED && !(atomic_load(&r->flags) & UWDF_REQ_IN_FLIGHT);
    if (ok)
        uwdf_qs_begin_completion(r); /* a second completion is caught */
    if (!ok) {
        if (q)
            uwdf_queue_unlock(q);
        if (qs == UWDF_QS_COMPLETED || qs == UWDF_QS_CANCELING || qs == UWDF_QS_COMPLETING ||
            qs == UWDF_QS_FORWARDED)
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
    if (UWDF_UNLIKELY(uwdf_verifier) && NT_SUCCESS(Status)) {
        /* Its report runs no lock held; COMPLETING keeps the request ours. */
        if (q)
            uwdf_queue_unlock(q);
        request_verify_information(Request, r, info, ddi);
        uwdf_queue_complete(r, Status, info);
        return;
    }
    /* One hold of the queue's lock from the check to the completion. */
    uwdf_queue_complete_locked(r, Status, info);
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

/* ---- parameters ---- */

static void request_params_from_stack(PWDF_REQUEST_PARAMETERS p, const IO_STACK_LOCATION *s)
{
    p->MinorFunction = s->MinorFunction;
    p->Type = (WDF_REQUEST_TYPE)s->MajorFunction;
    switch (s->MajorFunction) {
    case IRP_MJ_CREATE:
        p->Parameters.Create.SecurityContext = s->Parameters.Create.SecurityContext;
        p->Parameters.Create.Options = s->Parameters.Create.Options;
        p->Parameters.Create.FileAttributes = s->Parameters.Create.FileAttributes;
        p->Parameters.Create.ShareAccess = s->Parameters.Create.ShareAccess;
        p->Parameters.Create.EaLength = s->Parameters.Create.EaLength;
        break;
    case IRP_MJ_READ:
    case IRP_MJ_WRITE:
        p->Parameters.Read.Length = s->Parameters.Read.Length;
        p->Parameters.Read.Key = s->Parameters.Read.Key;
        p->Parameters.Read.DeviceOffset = s->Parameters.Read.ByteOffset.QuadPart;
        break;
    case IRP_MJ_DEVICE_CONTROL:
    case IRP_MJ_INTERNAL_DEVICE_CONTROL:
        p->Parameters.DeviceIoControl.OutputBufferLength = s->Parameters.DeviceIoControl.OutputBufferLength;
        p->Parameters.DeviceIoControl.InputBufferLength = s->Parameters.DeviceIoControl.InputBufferLength;
        p->Parameters.DeviceIoControl.IoControlCode = s->Parameters.DeviceIoControl.IoControlCode;
        p->Parameters.DeviceIoControl.Type3InputBuffer = s->Parameters.DeviceIoControl.Type3InputBuffer;
        break;
    default:
        p->Parameters.Others.Arg1 = s->Parameters.Others.Argument1;
        p->Parameters.Others.Arg2 = s->Parameters.Others.Argument2;
        p->Parameters.Others.Arg4 = s->Parameters.Others.Argument4;
        break;
    }
}

VOID WdfRequestGetParameters(WDFREQUEST Request, PWDF_REQUEST_PARAMETERS Parameters)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestGetParameters");
    UWDF_REQUIRE_PARAM(Parameters, "WdfRequestGetParameters", );
    if (!req)
        return;
    if (Parameters->Size != sizeof(WDF_REQUEST_PARAMETERS)) {
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)Parameters, Parameters->Size,
                          sizeof(WDF_REQUEST_PARAMETERS),
                          "WdfRequestGetParameters: Parameters->Size is %u, expected %zu",
                          (unsigned)Parameters->Size, sizeof(WDF_REQUEST_PARAMETERS));
        return;
    }
    USHORT size = Parameters->Size;
    memset(Parameters, 0, sizeof(*Parameters));
    Parameters->Size = size;
    Parameters->Type = WdfRequestTypeNoFormat;
    /* A formatted request without an IRP (uwdf_request_irpless) gets it:
     * its stack location is what it describes. */
    if (req->formatted && !uwdf_request_lazy_irp(req))
        return;
    PIRP irp = req->irp;
    if (!irp)
        return;
    /* A received request describes its current stack location; one the
     * driver created describes what it was formatted for. */
    if (irp->CurrentLocation >= 1 && irp->CurrentLocation <= irp->StackCount)
        request_params_from_stack(Parameters, IoGetCurrentIrpStackLocation(irp));
    else if (req->formatted && irp->CurrentLocation >= 2)
        request_params_from_stack(Parameters, IoGetNextIrpStackLocation(irp));
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
            *buf = r->rx->pres_user;
            if (!*buf && r->rx->pres_mdl && !r->rx->pres_mdl->Next)
                *buf = mdl_buffer(r->rx->pres_mdl);
        } else {
            *buf = dev->io_type == WdfDeviceIoDirect ? presented_mdl_buffer(r) : r->rx->pres_system;
        }
        *read_only = s->MajorFunction == IRP_MJ_WRITE;
        break;
    case IRP_MJ_DEVICE_CONTROL:
    case IRP_MJ_INTERNAL_DEVICE_CONTROL: {
        ULONG method = METHOD_FROM_CTL_CODE(s->Parameters.DeviceIoControl.IoControlCode);
        if (slot == 0) {
            *len = s->Parameters.DeviceIoControl.InputBufferLength;
            *buf = method == METHOD_NEITHER ? s->Parameters.DeviceIoControl.Type3InputBuffer
                                            : r->rx->pres_system;
        } else {
            *len = s->Parameters.DeviceIoControl.OutputBufferLength;
            *buf = method == METHOD_BUFFERED  ? r->rx->pres_system
                   : method == METHOD_NEITHER ? r->rx->pres_user
                                              : presented_mdl_buffer(r);
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
    /* A direct method's MDL may still be deferred (r->mdl_deferred): its
     * buffer is then the IRP's UserBuffer. */
    *out = method == METHOD_BUFFERED                       ? irp->AssociatedIrp.SystemBuffer
           : method == METHOD_NEITHER || !irp->MdlAddress ? irp->UserBuffer
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
    struct uwdf_request_rx_more *more = rx_more(r);
    if (!more)
        return STATUS_INSUFFICIENT_RESOURCES;
    struct uwdf_memory *m = &more->rmem[slot];
    if (!more->rmem_live[slot]) {
        /* The memory object is part of the request (as in WDF; in its
         * retrieval part, kept with its memory), so this allocates
         * nothing more; its handle dies when the request completes. */
        memset(m, 0, sizeof(*m));
        m->buffer = buf;
        m->size = len;
        m->kind = UWDF_MEM_PREALLOCATED;
        m->read_only = ro;
        if (!uwdf_object_embed_register(&m->obj, UWDF_OBJ_MEMORY, &r->obj))
            return STATUS_INSUFFICIENT_RESOURCES;
        more->rmem_live[slot] = true;
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
    if (!uwdf_request_presented_mdl(r))
        return STATUS_INSUFFICIENT_RESOURCES;
    if (r->rx->pres_mdl && buf == mdl_buffer(r->rx->pres_mdl) && (!ioctl || slot == 1)) {
        *Mdl = r->rx->pres_mdl;
        return STATUS_SUCCESS;
    }
    struct uwdf_request_rx_more *more = rx_more(r);
    if (!more)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (more->rmdl_alloc && MmGetMdlVirtualAddress(more->rmdl_alloc) == buf && more->rmdl_alloc->ByteCount == len) {
        *Mdl = more->rmdl_alloc;
        return STATUS_SUCCESS;
    }
    if (len > UINT32_MAX)
        return STATUS_INVALID_PARAMETER;
    PMDL m = IoAllocateMdl(buf, (ULONG)len, FALSE, FALSE, NULL);
    if (!m)
        return STATUS_INSUFFICIENT_RESOURCES;
    MmBuildMdlForNonPagedPool(m);
    if (more->rmdl_alloc)
        IoFreeMdl(more->rmdl_alloc);
    more->rmdl_alloc = m;
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
        return r->irp && uwdf_irp_cancelled(r->irp);
    return (atomic_load(&r->flags) & UWDF_REQ_CANCELED) != 0;
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
        uwdf_queue_lock(q);
        r->stop_acked = true;
        uwdf_queue_unlock(q);
    }
    uwdf_queue_check_state(q);
}

/* ---- the buffers, from receipt to completion ---- */

/* r's bounce buffer of at least len bytes (kept for its memory's reuse). */
static void *request_bounce(struct uwdf_request *r, size_t len)
{
    struct uwdf_request_rx_more *more = rx_more(r);
    if (!more)
        return NULL;
    if (more->bounce && more->bounce_len >= len)
        return more->bounce;
    void *b = uwdf_alloc(len ? len : 1);
    if (!b)
        return NULL;
    uwdf_free(more->bounce);
    more->bounce = b;
    more->bounce_len = len;
    return b;
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
    r->rx->saved_mdl = irp->MdlAddress;
    r->rx->saved_user = irp->UserBuffer;
    r->rx->saved_system = irp->AssociatedIrp.SystemBuffer;
    r->rx->saved_type3 = s->Parameters.DeviceIoControl.Type3InputBuffer;
    s->DeviceObject = &dev->wdm;
    switch (s->MajorFunction) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE: {
        size_t len = s->Parameters.Read.Length;
        void *flat = irp->MdlAddress && !irp->MdlAddress->Next ? mdl_buffer(irp->MdlAddress) : irp->UserBuffer;
        if (dev->io_type == WdfDeviceIoDirect) {
            /* Its MDL is built when something could look at it. */
            r->mdl_deferred = !irp->MdlAddress && flat && len;
        } else if (dev->io_type != WdfDeviceIoNeither) {
            if (irp->AssociatedIrp.SystemBuffer) {
                /* laid out by a device above */
            } else if (flat || !len) {
                irp->AssociatedIrp.SystemBuffer = flat;
            } else {
                void *bounce = request_bounce(r, len);
                if (!bounce)
                    return STATUS_INSUFFICIENT_RESOURCES;
                if (s->MajorFunction == IRP_MJ_WRITE)
                    mdl_copy(irp->MdlAddress, bounce, len, true);
                irp->AssociatedIrp.SystemBuffer = irp->UserBuffer = bounce;
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
        if (method == METHOD_NEITHER)
            break; /* passed as is */
        if (method != METHOD_BUFFERED) {
            if (!irp->AssociatedIrp.SystemBuffer)
                irp->AssociatedIrp.SystemBuffer = s->Parameters.DeviceIoControl.Type3InputBuffer;
            /* Also where a device above laid the IRP out: its MDL may not
             * be built either (uwdf_request_presented_mdl). */
            r->mdl_deferred = !irp->MdlAddress && irp->UserBuffer && out_len;
        } else if (!irp->AssociatedIrp.SystemBuffer && (in_len || out_len)) {
            size_t len = in_len > out_len ? in_len : out_len;
            void *bounce = request_bounce(r, len);
            if (!bounce)
                return STATUS_INSUFFICIENT_RESOURCES;
            if (in_len && s->Parameters.DeviceIoControl.Type3InputBuffer)
                memcpy(bounce, s->Parameters.DeviceIoControl.Type3InputBuffer, in_len);
            irp->AssociatedIrp.SystemBuffer = bounce;
        }
        break;
    }
    default:
        break;
    }
    r->rx->pres_mdl = irp->MdlAddress;
    r->rx->pres_user = irp->UserBuffer;
    r->rx->pres_system = irp->AssociatedIrp.SystemBuffer;
    return STATUS_SUCCESS;
}

void uwdf_request_rx_release_parts(struct uwdf_request *r)
{
    struct uwdf_request_rx_more *more = r->rx->more;
    for (int i = 0; i < 2; i++) {
        if (more->rmem_live[i])
            uwdf_object_embed_unregister(&more->rmem[i].obj);
        more->rmem_live[i] = false;
    }
    if (more->rmdl_alloc) {
        IoFreeMdl(more->rmdl_alloc);
        more->rmdl_alloc = NULL;
    }
}

/* Undo uwdf_request_receive_setup at completion: retrieved handles die, a bounce
 * buffer's data goes back to the sender's memory, the IRP fields the
 * sender set are restored. */
void uwdf_request_receive_teardown(struct uwdf_request *r, NTSTATUS status, ULONG_PTR information)
{
    PIRP irp = r->irp;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    uwdf_request_rx_release(r);
    void *bounce = r->rx->more ? r->rx->more->bounce : NULL;
    if (bounce && irp->AssociatedIrp.SystemBuffer == bounce && NT_SUCCESS(status)) {
        if (s->MajorFunction == IRP_MJ_READ) {
            size_t n = information < s->Parameters.Read.Length ? information : s->Parameters.Read.Length;
            mdl_copy(r->rx->saved_mdl, bounce, n, false);
        } else if (s->MajorFunction == IRP_MJ_DEVICE_CONTROL ||
                   s->MajorFunction == IRP_MJ_INTERNAL_DEVICE_CONTROL) {
            size_t out_len = s->Parameters.DeviceIoControl.OutputBufferLength;
            size_t n = information < out_len ? information : out_len;
            if (n && r->rx->saved_user)
                memcpy(r->rx->saved_user, bounce, n);
        }
    }
    irp->MdlAddress = r->rx->saved_mdl;
    irp->UserBuffer = r->rx->saved_user;
    irp->AssociatedIrp.SystemBuffer = r->rx->saved_system;
    s->Parameters.DeviceIoControl.Type3InputBuffer = r->rx->saved_type3;
}
