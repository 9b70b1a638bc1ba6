/* Formatting a request for an I/O target (WdfIoTargetFormatRequestFor*,
 * and the checks WdfRequestChangeTarget shares), and the synchronous sends
 * that format and send in one call (WdfIoTargetSend*Synchronously). */
#include "runtime.h"
#include "iotarget.h"
#include "memory.h"
#include "object.h"
#include "request.h"

struct format_buffer {
    struct uwdf_memory *mem; /* referenced by the format, or NULL */
    void *buffer;            /* raw buffer (synchronous sends), or NULL */
    PMDL mdl;
    size_t offset, length;
};

/* The checks every format (and WdfRequestChangeTarget) makes: the request
 * is not sent, the target is open, and the IRP has a stack location for
 * every driver below (one, the kernel, for a file or block device). A
 * framework IRP grows; the driver's own cannot (STATUS_REQUEST_NOT_ACCEPTED).
 * A request without an IRP gets none for a file, block or remote target,
 * whose send reads the format from the request; a device target's driver
 * is handed the IRP. */
NTSTATUS uwdf_iotarget_prepare_request(struct uwdf_iotarget *t, struct uwdf_request *req,
                                       const char *ddi)
{
    if (!uwdf_request_not_in_flight(req, ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!uwdf_iotarget_is_open(t))
        return STATUS_INVALID_DEVICE_STATE;
    CCHAR need = uwdf_iotarget_stack_need(t);
    if (uwdf_request_irpless(req) && !t->lower) {
        if (req->irp_stack < need)
            req->irp_stack = need;
        return STATUS_SUCCESS;
    }
    NTSTATUS status = uwdf_request_ensure_irp(req, need);
    if (!NT_SUCCESS(status))
        return status;
    if (req->irp->CurrentLocation < 1 + need)
        return STATUS_REQUEST_NOT_ACCEPTED;
    return STATUS_SUCCESS;
}

/* Inlined: every format of a read or write goes through it. */
static inline __attribute__((always_inline)) NTSTATUS
format_memory(WDFMEMORY handle, PWDFMEMORY_OFFSET offsets, struct format_buffer *fb, const char *ddi)
{
    *fb = (struct format_buffer){ 0 };
    if (!handle)
        return STATUS_SUCCESS;
    fb->mem = uwdf_memory_lookup(handle, ddi);
    if (!fb->mem)
        return STATUS_INVALID_HANDLE;
    return uwdf_memory_resolve_offsets(fb->mem, offsets, &fb->offset, &fb->length);
}

/* One buffer slot of a format (0: input, 1: output); fb NULL leaves the
 * slot as the drop left it (clear). Inlined with a constant fb, so a read
 * or write format touches only its own slot. */
static inline __attribute__((always_inline)) void format_slot(struct uwdf_request *req, int i,
                                                              const struct format_buffer *fb)
{
    if (!fb)
        return;
    req->fmt_mem[i] = fb->mem;
    req->fmt_buffer[i] = fb->buffer;
    req->fmt_offset[i] = fb->offset;
    req->fmt_length[i] = fb->length;
    if (fb->mem && !uwdf_completion_unpark(req, fb->mem))
        uwdf_object_reference(&fb->mem->obj);
}

/* Install a validated format: release the old one, reference the memory,
 * fill the next stack location. Inlined, so that each format DDI gets a
 * copy folded for its own major function and buffers. */
static inline __attribute__((always_inline)) void
format_commit(struct uwdf_iotarget *t, struct uwdf_request *req, UCHAR major, struct format_buffer *in,
              struct format_buffer *out, LONGLONG *offset, ULONG ioctl)
{
    uwdf_request_drop_format(req, true);
    format_slot(req, 0, in);
    format_slot(req, 1, out);
    /* The next stack location: in the IRP, or in the request while it has
     * none (uwdf_request_irpless). */
    LONGLONG off = 0;
    UCHAR flags = 0;
    struct format_buffer *b = NULL;
    switch (major) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE:
        b = major == IRP_MJ_READ ? out : in;
        /* A NULL DeviceOffset: 0 for a driver below, as KMDF formats it;
         * for a file, the port's documented meaning, the file position. */
        if (offset) {
            off = *offset;
        } else if (!t->lower) {
            LARGE_INTEGER pos = { .HighPart = -1, .LowPart = FILE_USE_FILE_POINTER_POSITION };
            off = pos.QuadPart;
        }
        if (t->write_through && major == IRP_MJ_WRITE)
            flags = SL_WRITE_THROUGH;
        req->fmt_type = major == IRP_MJ_READ ? WdfRequestTypeRead : WdfRequestTypeWrite;
        break;
    default:
        req->fmt_type = major == IRP_MJ_DEVICE_CONTROL ? WdfRequestTypeDeviceControl
                                                       : WdfRequestTypeDeviceControlInternal;
        break;
    }
    if (!req->irp) {
        req->nx_major = major;
        req->nx_flags = flags;
        req->nx_offset = off;
        req->nx_ioctl = ioctl;
    } else {
        struct uwdf_next_loc n = {
            .major = major,
            .flags = flags,
            .ioctl = ioctl,
            .offset = off,
            .length = { in ? (ULONG)in->length : 0, out ? (ULONG)out->length : 0 },
            /* (a synchronous send's MDL: the request has its IRP) */
            .buffer = b && !b->mdl ? (b->mem ? (char *)b->mem->buffer + b->offset : b->buffer) : NULL,
            .mdl = b ? b->mdl : NULL,
            .fo = &t->file_object,
        };
        uwdf_irp_write_next(req->irp, &n);
    }
    req->fmt_target = (WDFIOTARGET)t->obj.handle;
    req->formatted = true;
}

/* Inlined into the read and write DDIs, like format_commit. */
static inline __attribute__((always_inline)) NTSTATUS
format_rw(WDFIOTARGET IoTarget, WDFREQUEST Request, WDFMEMORY Memory, PWDFMEMORY_OFFSET Offsets,
          PLONGLONG DeviceOffset, UCHAR major, const char *ddi)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    struct uwdf_request *req = uwdf_request_lookup(Request, ddi);
    struct format_buffer fb;
    if (!t || !req)
        return STATUS_INVALID_HANDLE;
    NTSTATUS status = uwdf_iotarget_prepare_request(t, req, ddi);
    if (!NT_SUCCESS(status))
        return status;
    status = format_memory(Memory, Offsets, &fb, ddi);
    if (!NT_SUCCESS(status))
        return status;
    if (fb.length > UINT32_MAX)
        return STATUS_INVALID_PARAMETER; /* IO_STACK_LOCATION lengths are ULONG */
    /* A negative DeviceOffset is the target's to judge (target_build_io). */
    format_commit(t, req, major, major == IRP_MJ_WRITE ? &fb : NULL, major == IRP_MJ_READ ? &fb : NULL,
                  DeviceOffset, 0);
    return STATUS_SUCCESS;
}

NTSTATUS WdfIoTargetFormatRequestForRead(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                         WDFMEMORY OutputBuffer, PWDFMEMORY_OFFSET OutputBufferOffset,
                                         PLONGLONG DeviceOffset)
{
    return format_rw(IoTarget, Request, OutputBuffer, OutputBufferOffset, DeviceOffset, IRP_MJ_READ,
                     "WdfIoTargetFormatRequestForRead");
}

NTSTATUS WdfIoTargetFormatRequestForWrite(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                          WDFMEMORY InputBuffer, PWDFMEMORY_OFFSET InputBufferOffset,
                                          PLONGLONG DeviceOffset)
{
    return format_rw(IoTarget, Request, InputBuffer, InputBufferOffset, DeviceOffset, IRP_MJ_WRITE,
                     "WdfIoTargetFormatRequestForWrite");
}

static NTSTATUS format_ioctl(WDFIOTARGET IoTarget, WDFREQUEST Request, ULONG IoctlCode,
                             WDFMEMORY InputBuffer, PWDFMEMORY_OFFSET InputBufferOffset,
                             WDFMEMORY OutputBuffer, PWDFMEMORY_OFFSET OutputBufferOffset, UCHAR major,
                             const char *ddi)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    struct uwdf_request *req = uwdf_request_lookup(Request, ddi);
    struct format_buffer in, out;
    if (!t || !req)
        return STATUS_INVALID_HANDLE;
    NTSTATUS status = uwdf_iotarget_prepare_request(t, req, ddi);
    if (!NT_SUCCESS(status))
        return status;
    status = format_memory(InputBuffer, InputBufferOffset, &in, ddi);
    if (NT_SUCCESS(status))
        status = format_memory(OutputBuffer, OutputBufferOffset, &out, ddi);
    if (!NT_SUCCESS(status))
        return status;
    if (in.length > UINT32_MAX || out.length > UINT32_MAX)
        return STATUS_INVALID_PARAMETER;
    format_commit(t, req, major, &in, &out, NULL, IoctlCode);
    return STATUS_SUCCESS;
}

NTSTATUS WdfIoTargetFormatRequestForIoctl(WDFIOTARGET IoTarget, WDFREQUEST Request, ULONG IoctlCode,
                                          WDFMEMORY InputBuffer, PWDFMEMORY_OFFSET InputBufferOffset,
                                          WDFMEMORY OutputBuffer, PWDFMEMORY_OFFSET OutputBufferOffset)
{
    return format_ioctl(IoTarget, Request, IoctlCode, InputBuffer, InputBufferOffset, OutputBuffer,
                        OutputBufferOffset, IRP_MJ_DEVICE_CONTROL, "WdfIoTargetFormatRequestForIoctl");
}

NTSTATUS WdfIoTargetFormatRequestForInternalIoctl(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                                  ULONG IoctlCode, WDFMEMORY InputBuffer,
                                                  PWDFMEMORY_OFFSET InputBufferOffset,
                                                  WDFMEMORY OutputBuffer,
                                                  PWDFMEMORY_OFFSET OutputBufferOffset)
{
    return format_ioctl(IoTarget, Request, IoctlCode, InputBuffer, InputBufferOffset, OutputBuffer,
                        OutputBufferOffset, IRP_MJ_INTERNAL_DEVICE_CONTROL,
                        "WdfIoTargetFormatRequestForInternalIoctl");
}

/* Validates a WDF_MEMORY_DESCRIPTOR of a synchronous send. */
/* Inlined with send_sync_common: a read's or write's absent descriptor
 * folds away. */
static inline __attribute__((always_inline)) NTSTATUS sync_descriptor(PWDF_MEMORY_DESCRIPTOR d,
                                                                      struct format_buffer *fb,
                                                                      const char *ddi)
{
    *fb = (struct format_buffer){ 0 };
    if (!d)
        return STATUS_SUCCESS;
    switch (d->Type) {
    case WdfMemoryDescriptorTypeBuffer:
        if (!d->u.BufferType.Buffer && d->u.BufferType.Length)
            return STATUS_INVALID_PARAMETER;
        fb->buffer = d->u.BufferType.Buffer;
        fb->length = d->u.BufferType.Length;
        return STATUS_SUCCESS;
    case WdfMemoryDescriptorTypeMdl:
        if (!d->u.MdlType.Mdl)
            return d->u.MdlType.BufferLength ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS;
        fb->mdl = d->u.MdlType.Mdl;
        fb->length = d->u.MdlType.BufferLength;
        return STATUS_SUCCESS;
    case WdfMemoryDescriptorTypeHandle:
        if (!d->u.HandleType.Memory)
            return STATUS_INVALID_PARAMETER;
        return format_memory(d->u.HandleType.Memory, d->u.HandleType.Offsets, fb, ddi);
    default:
        return STATUS_INVALID_PARAMETER;
    }
}

/* Inlined into each synchronous DDI, folded for its major function. */
static inline __attribute__((always_inline)) NTSTATUS
send_sync_common(WDFIOTARGET IoTarget, WDFREQUEST Request, UCHAR major, ULONG ioctl, PWDF_MEMORY_DESCRIPTOR in_desc,
                 PWDF_MEMORY_DESCRIPTOR out_desc, PLONGLONG DeviceOffset, PWDF_REQUEST_SEND_OPTIONS options,
                 PULONG_PTR bytes, const char *ddi)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    struct uwdf_request *req = NULL;
    struct format_buffer in, out;
    NTSTATUS status;
    if (bytes)
        *bytes = 0;
    if (!t)
        return STATUS_INVALID_HANDLE;
    if (Request && !(req = uwdf_request_lookup(Request, ddi)))
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive(ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    status = uwdf_iotarget_send_options_validate(options);
    if (!NT_SUCCESS(status))
        return status;
    if (options && (options->Flags & (WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET)))
        return STATUS_INVALID_PARAMETER;
    if (req && !uwdf_request_not_in_flight(req, ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    status = sync_descriptor(in_desc, &in, ddi);
    if (NT_SUCCESS(status))
        status = sync_descriptor(out_desc, &out, ddi);
    if (!NT_SUCCESS(status))
        return status;
    if (in.length > UINT32_MAX || out.length > UINT32_MAX)
        return STATUS_INVALID_PARAMETER;
    if (!req) {
        status = uwdf_request_create_internal(t, &req);
        if (!NT_SUCCESS(status))
            return status;
    } else {
        uwdf_request_release_format(req);
    }
    /* An MDL is described in the IRP, which the request then needs. */
    status = (in.mdl || out.mdl) && !uwdf_request_lazy_irp(req) ? STATUS_INSUFFICIENT_RESOURCES : STATUS_SUCCESS;
    if (NT_SUCCESS(status))
        status = uwdf_iotarget_prepare_request(t, req, ddi);
    if (NT_SUCCESS(status)) {
        format_commit(t, req, major, major == IRP_MJ_READ ? NULL : &in,
                      major == IRP_MJ_WRITE ? NULL : &out, DeviceOffset, ioctl);
        uwdf_verifier_sync_timeout(options, ddi);
        uwdf_iotarget_send_sync(t, req, options, false, &status);
        if (bytes)
            *bytes = uwdf_request_information(req);
    }
    if (req->internal)
        uwdf_object_delete(&req->obj);
    return status;
}

NTSTATUS WdfIoTargetSendReadSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                          PWDF_MEMORY_DESCRIPTOR OutputBuffer, PLONGLONG DeviceOffset,
                                          PWDF_REQUEST_SEND_OPTIONS RequestOptions, PULONG_PTR BytesRead)
{
    return send_sync_common(IoTarget, Request, IRP_MJ_READ, 0, NULL, OutputBuffer, DeviceOffset,
                            RequestOptions, BytesRead, "WdfIoTargetSendReadSynchronously");
}

NTSTATUS WdfIoTargetSendWriteSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                           PWDF_MEMORY_DESCRIPTOR InputBuffer, PLONGLONG DeviceOffset,
                                           PWDF_REQUEST_SEND_OPTIONS RequestOptions,
                                           PULONG_PTR BytesWritten)
{
    return send_sync_common(IoTarget, Request, IRP_MJ_WRITE, 0, InputBuffer, NULL, DeviceOffset,
                            RequestOptions, BytesWritten, "WdfIoTargetSendWriteSynchronously");
}

/* The two IOCTL DDIs share one copy (not per I/O paths). */
static __attribute__((noinline)) NTSTATUS send_sync_ioctl(WDFIOTARGET IoTarget, WDFREQUEST Request, UCHAR major,
                                                          ULONG IoctlCode, PWDF_MEMORY_DESCRIPTOR InputBuffer,
                                                          PWDF_MEMORY_DESCRIPTOR OutputBuffer,
                                                          PWDF_REQUEST_SEND_OPTIONS RequestOptions,
                                                          PULONG_PTR BytesReturned, const char *ddi)
{
    return send_sync_common(IoTarget, Request, major, IoctlCode, InputBuffer, OutputBuffer, NULL, RequestOptions,
                            BytesReturned, ddi);
}

NTSTATUS WdfIoTargetSendIoctlSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request, ULONG IoctlCode,
                                           PWDF_MEMORY_DESCRIPTOR InputBuffer,
                                           PWDF_MEMORY_DESCRIPTOR OutputBuffer,
                                           PWDF_REQUEST_SEND_OPTIONS RequestOptions,
                                           PULONG_PTR BytesReturned)
{
    return send_sync_ioctl(IoTarget, Request, IRP_MJ_DEVICE_CONTROL, IoctlCode, InputBuffer, OutputBuffer,
                           RequestOptions, BytesReturned, "WdfIoTargetSendIoctlSynchronously");
}

NTSTATUS WdfIoTargetSendInternalIoctlSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                                   ULONG IoctlCode, PWDF_MEMORY_DESCRIPTOR InputBuffer,
                                                   PWDF_MEMORY_DESCRIPTOR OutputBuffer,
                                                   PWDF_REQUEST_SEND_OPTIONS RequestOptions,
                                                   PULONG_PTR BytesReturned)
{
    return send_sync_ioctl(IoTarget, Request, IRP_MJ_INTERNAL_DEVICE_CONTROL, IoctlCode, InputBuffer, OutputBuffer,
                           RequestOptions, BytesReturned, "WdfIoTargetSendInternalIoctlSynchronously");
}
