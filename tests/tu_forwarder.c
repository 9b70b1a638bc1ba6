/* The pass-through forwarder and what it stands on (tu_forwarder.h).
 * No Check here: errors are returned. */
#include "tu_forwarder.h"

#include <stdlib.h>
#include <string.h>

/* A heap copy of a UTF-8 name as a UNICODE_STRING; free us->Buffer. */
static NTSTATUS name_to_unicode(UNICODE_STRING *us, const char *name)
{
    size_t chars = strlen(name) + 1;
    WCHAR *buf = malloc(chars * sizeof(WCHAR));
    if (!buf)
        return STATUS_INSUFFICIENT_RESOURCES;
    size_t n = mbstowcs(buf, name, chars);
    if (n == (size_t)-1) {
        free(buf);
        return STATUS_OBJECT_NAME_INVALID;
    }
    buf[n] = L'\0';
    RtlInitUnicodeString(us, buf);
    return STATUS_SUCCESS;
}

NTSTATUS tu_open_name(WDFIOTARGET target, const char *name, ACCESS_MASK access, ULONG disposition,
                      ULONG create_options)
{
    UNICODE_STRING us;
    WDF_IO_TARGET_OPEN_PARAMS params;
    NTSTATUS status = name_to_unicode(&us, name);
    if (!NT_SUCCESS(status))
        return status;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&params, &us, access);
    params.CreateDisposition = disposition;
    params.CreateOptions = create_options;
    status = WdfIoTargetOpen(target, &params);
    free(us.Buffer);
    return status;
}

NTSTATUS tu_device_create(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                          PWDF_OBJECT_ATTRIBUTES device_attrs, PWDF_OBJECT_ATTRIBUTES request_attrs,
                          WDFDEVICE *device)
{
    UNICODE_STRING us;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init)
        return STATUS_INSUFFICIENT_RESOURCES;
    NTSTATUS status = name_to_unicode(&us, name);
    if (NT_SUCCESS(status)) {
        status = WdfDeviceInitAssignName(init, &us);
        free(us.Buffer);
    }
    if (NT_SUCCESS(status)) {
        WdfDeviceInitSetIoType(init, io);
        if (request_attrs)
            WdfDeviceInitSetRequestAttributes(init, request_attrs);
        status = WdfDeviceCreate(&init, device_attrs, device);
    }
    if (!NT_SUCCESS(status)) {
        WdfDeviceInitFree(init); /* still ours when the create failed */
        return status;
    }
    WdfControlFinishInitializing(*device);
    return STATUS_SUCCESS;
}

static VOID forward_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                         WDFCONTEXT Context)
{
    TU_FORWARDER *counts = Context;
    (void)Target;
    if (counts)
        atomic_fetch_add(&counts->completed, 1);
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

BOOLEAN tu_forward(WDFREQUEST request, WDFIOTARGET lower, TU_FORWARDER *counts)
{
    WdfRequestFormatRequestUsingCurrentType(request);
    WdfRequestSetCompletionRoutine(request, forward_done, counts);
    if (WdfRequestSend(request, lower, WDF_NO_SEND_OPTIONS))
        return TRUE;
    if (counts)
        atomic_fetch_add(&counts->refused, 1);
    WdfRequestComplete(request, WdfRequestGetStatus(request));
    return FALSE;
}

VOID tu_forwarder_io_default(WDFQUEUE Queue, WDFREQUEST Request)
{
    TU_FORWARDER *f = tu_forwarder_of(WdfIoQueueGetDevice(Queue));
    atomic_fetch_add(&f->seen, 1);
    tu_forward(Request, f->lower, f);
}

NTSTATUS tu_forwarder_device_create(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                                    WDFDEVICE *device)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, TU_FORWARDER);
    NTSTATUS status = tu_device_create(driver, name, io, &attrs, NULL, device);
    if (NT_SUCCESS(status))
        tu_forwarder_of(*device)->lower = WdfDeviceGetIoTarget(*device);
    return status;
}

NTSTATUS tu_forwarder_queue_create(WDFDEVICE device, WDF_IO_QUEUE_DISPATCH_TYPE dispatch, WDFQUEUE *queue)
{
    WDF_IO_QUEUE_CONFIG cfg;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&cfg, dispatch);
    cfg.EvtIoDefault = tu_forwarder_io_default;
    NTSTATUS status = WdfIoQueueCreate(device, &cfg, WDF_NO_OBJECT_ATTRIBUTES, queue);
    if (NT_SUCCESS(status))
        tu_forwarder_of(device)->queue = *queue;
    return status;
}

NTSTATUS tu_forwarder_create(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                             WDF_IO_QUEUE_DISPATCH_TYPE dispatch, const char *lower, ACCESS_MASK access,
                             ULONG create_options, WDFDEVICE *device)
{
    WDFQUEUE queue;
    NTSTATUS status = tu_forwarder_device_create(driver, name, io, device);
    if (!NT_SUCCESS(status))
        return status;
    status = tu_forwarder_queue_create(*device, dispatch, &queue);
    if (NT_SUCCESS(status))
        status = tu_open_name(tu_forwarder_of(*device)->lower, lower, access, FILE_OPEN, create_options);
    if (!NT_SUCCESS(status)) {
        WdfObjectDelete(*device);
        *device = NULL;
    }
    return status;
}
