/* Requests in the caller's context: EvtIoInCallerContext sees every read,
 * write and device control sent to its device before any queue, in the
 * sender's thread; inside it (and only there, for that request) the
 * requestor's own buffers can be retrieved and wrapped in memory objects,
 * and WdfDeviceEnqueueRequest hands the request on to the queue for its
 * type. The thread's current such request is what "inside it" means. */
#include "runtime.h"
#include "device.h"
#include "fileobject.h"
#include "memory.h"
#include "ntrt.h"
#include "object.h"
#include "queue.h"
#include "request.h"

/* The request EvtIoInCallerContext runs for on this thread, until it is
 * enqueued or the callback returns. */
static __thread struct uwdf_request *tls_caller_request;

VOID WdfDeviceInitSetIoInCallerContextCallback(PWDFDEVICE_INIT DeviceInit,
                                               PFN_WDF_IO_IN_CALLER_CONTEXT EvtIoInCallerContext)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitSetIoInCallerContextCallback", );
    UWDF_REQUIRE_PARAM(EvtIoInCallerContext, "WdfDeviceInitSetIoInCallerContextCallback", );
    uwdf_device_init_files(DeviceInit)->in_caller_context = EvtIoInCallerContext;
}

NTSTATUS uwdf_request_present_direct(struct uwdf_device *dev, struct uwdf_request *sender, struct uwdf_request **out)
{
    struct uwdf_request *r;
    NTSTATUS st = uwdf_request_create_received(dev, false, &r);
    if (!NT_SUCCESS(st))
        return st;
    st = uwdf_request_receive_setup(dev, r, sender);
    if (!NT_SUCCESS(st)) {
        uwdf_request_receive_teardown(r, st, 0);
        uwdf_request_discard(r);
        return st;
    }
    r->queue = NULL;
    uwdf_qs_take(r);
    *out = r;
    return STATUS_SUCCESS;
}

bool uwdf_caller_context_deliver(struct uwdf_device *dev, struct uwdf_request *sender)
{
    PFN_WDF_IO_IN_CALLER_CONTEXT cb = dev->files.in_caller_context;
    if (!cb)
        return false;
    UCHAR major = IoGetCurrentIrpStackLocation(sender->irp)->MajorFunction;
    if (major != IRP_MJ_READ && major != IRP_MJ_WRITE && major != IRP_MJ_DEVICE_CONTROL &&
        major != IRP_MJ_INTERNAL_DEVICE_CONTROL)
        return false;
    struct uwdf_request *r;
    NTSTATUS st = uwdf_request_present_direct(dev, sender, &r);
    if (!NT_SUCCESS(st)) {
        uwdf_queue_packet_complete(sender, st, 0);
        return true;
    }
    struct uwdf_request *outer = tls_caller_request;
    tls_caller_request = r;
    cb((WDFDEVICE)dev->obj.handle, (WDFREQUEST)r->obj.handle);
    tls_caller_request = outer;
    return true;
}

/* r is the request EvtIoInCallerContext runs for on this thread. */
static bool in_caller_context(const struct uwdf_request *r)
{
    return r && r == tls_caller_request && r->qstate == UWDF_QS_OWNED && r->irp;
}

NTSTATUS WdfDeviceEnqueueRequest(WDFDEVICE Device, WDFREQUEST Request)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceEnqueueRequest");
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfDeviceEnqueueRequest");
    if (!dev || !r)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_max(DISPATCH_LEVEL, "WdfDeviceEnqueueRequest"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!in_caller_context(r) ||
        uwdf_container_of(IoGetCurrentIrpStackLocation(r->irp)->DeviceObject, struct uwdf_device, wdm) != dev)
        return STATUS_INVALID_DEVICE_REQUEST;
    /* From here the queue may present and complete it: no more caller's
     * context for it. */
    tls_caller_request = NULL;
    NTSTATUS st = uwdf_queue_enqueue_presented(dev, r);
    if (!NT_SUCCESS(st))
        tls_caller_request = r; /* still the driver's, in the callback */
    return st;
}

/* The requestor's own buffer: slot 0 input (write, IOCTL), 1 output (read,
 * IOCTL); only a METHOD_NEITHER IOCTL's or a Neither device's read or write. */
static NTSTATUS unsafe_buffer(WDFREQUEST Request, int slot, size_t min_len, PVOID *Buffer, size_t *Length,
                              const char *ddi)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, ddi);
    UWDF_REQUIRE_PARAM(Buffer, ddi, STATUS_INVALID_PARAMETER);
    *Buffer = NULL;
    if (Length)
        *Length = 0;
    if (!r)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive(ddi) || !in_caller_context(r))
        return STATUS_INVALID_DEVICE_REQUEST;
    PIRP irp = r->irp;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    struct uwdf_device *dev = uwdf_container_of(s->DeviceObject, struct uwdf_device, wdm);
    void *buf;
    size_t len;
    switch (s->MajorFunction) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE:
        if ((s->MajorFunction == IRP_MJ_READ) != (slot == 1) || dev->io_type != WdfDeviceIoNeither)
            return STATUS_INVALID_DEVICE_REQUEST;
        buf = irp->UserBuffer;
        len = s->Parameters.Read.Length;
        break;
    case IRP_MJ_DEVICE_CONTROL:
        if (METHOD_FROM_CTL_CODE(s->Parameters.DeviceIoControl.IoControlCode) != METHOD_NEITHER)
            return STATUS_INVALID_DEVICE_REQUEST;
        buf = slot == 0 ? s->Parameters.DeviceIoControl.Type3InputBuffer : irp->UserBuffer;
        len = slot == 0 ? s->Parameters.DeviceIoControl.InputBufferLength
                        : s->Parameters.DeviceIoControl.OutputBufferLength;
        break;
    default:
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if (len == 0 || len < min_len)
        return STATUS_BUFFER_TOO_SMALL;
    if (!buf)
        return STATUS_INVALID_DEVICE_REQUEST;
    *Buffer = buf;
    if (Length)
        *Length = len;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestRetrieveUnsafeUserInputBuffer(WDFREQUEST Request, size_t MinimumRequiredLength,
                                                 PVOID *InputBuffer, size_t *Length)
{
    return unsafe_buffer(Request, 0, MinimumRequiredLength, InputBuffer, Length,
                         "WdfRequestRetrieveUnsafeUserInputBuffer");
}

NTSTATUS WdfRequestRetrieveUnsafeUserOutputBuffer(WDFREQUEST Request, size_t MinimumRequiredLength,
                                                  PVOID *OutputBuffer, size_t *Length)
{
    return unsafe_buffer(Request, 1, MinimumRequiredLength, OutputBuffer, Length,
                         "WdfRequestRetrieveUnsafeUserOutputBuffer");
}

/* The address space is the requestor's and every page is resident, so
 * "probe and lock" is a memory object over the buffer, the request's
 * child: it goes when the request completes. */
static NTSTATUS probe_and_lock(WDFREQUEST Request, PVOID Buffer, size_t Length, WDFMEMORY *MemoryObject,
                               bool read_only, const char *ddi)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, ddi);
    UWDF_REQUIRE_PARAM(MemoryObject, ddi, STATUS_INVALID_PARAMETER);
    *MemoryObject = NULL;
    if (!r)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive(ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (Length == 0)
        return STATUS_INVALID_USER_BUFFER;
    if (!Buffer)
        return STATUS_INVALID_PARAMETER;
    if (!r->received || !r->irp || r->qstate == UWDF_QS_COMPLETED || r->qstate == UWDF_QS_COMPLETING)
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!in_caller_context(r))
        return STATUS_ACCESS_VIOLATION;
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ParentObject = Request;
    WDFMEMORY mem;
    NTSTATUS st = WdfMemoryCreatePreallocated(&attrs, Buffer, Length, &mem);
    if (!NT_SUCCESS(st))
        return st;
    uwdf_memory_lookup(mem, ddi)->read_only = read_only;
    *MemoryObject = mem;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestProbeAndLockUserBufferForRead(WDFREQUEST Request, PVOID Buffer, size_t Length,
                                                 WDFMEMORY *MemoryObject)
{
    return probe_and_lock(Request, Buffer, Length, MemoryObject, true, "WdfRequestProbeAndLockUserBufferForRead");
}

NTSTATUS WdfRequestProbeAndLockUserBufferForWrite(WDFREQUEST Request, PVOID Buffer, size_t Length,
                                                  WDFMEMORY *MemoryObject)
{
    return probe_and_lock(Request, Buffer, Length, MemoryObject, false,
                          "WdfRequestProbeAndLockUserBufferForWrite");
}
