/* Devices (control devices in this port) (wdfdevice.h). */
#ifndef UWDF_WDFDEVICE_H
#define UWDF_WDFDEVICE_H

#include "wdfdriver.h"
#include "wdfrequest.h"
/* The SDDL_DEVOBJ_* strings WdfControlDeviceInitAllocate takes (accepted,
 * not enforced). */
#include "wdmsec.h"

UWDF_BEGIN_DECLS

typedef enum _WDF_DEVICE_IO_TYPE {
    WdfDeviceIoUndefined = 0,
    WdfDeviceIoNeither,
    WdfDeviceIoBuffered,
    WdfDeviceIoDirect,
    WdfDeviceIoBufferedOrDirect = 4,
    WdfDeviceIoMaximum,
} WDF_DEVICE_IO_TYPE;


PWDFDEVICE_INIT WdfControlDeviceInitAllocate(WDFDRIVER Driver, const UNICODE_STRING *SDDLString);
VOID WdfDeviceInitFree(PWDFDEVICE_INIT DeviceInit);
VOID WdfDeviceInitSetIoType(PWDFDEVICE_INIT DeviceInit, WDF_DEVICE_IO_TYPE IoType);
NTSTATUS WdfDeviceCreate(PWDFDEVICE_INIT *DeviceInit, PWDF_OBJECT_ATTRIBUTES DeviceAttributes,
                         WDFDEVICE *Device);
VOID WdfControlFinishInitializing(WDFDEVICE Device);
PDEVICE_OBJECT WdfDeviceWdmGetDeviceObject(WDFDEVICE Device);
WDFDRIVER WdfDeviceGetDriver(WDFDEVICE Device);

/* In-process device stacks: a name in the NT namespace that
 * WdfIoTargetOpen resolves to this device's queues. */
NTSTATUS WdfDeviceInitAssignName(PWDFDEVICE_INIT DeviceInit, PCUNICODE_STRING DeviceName);
NTSTATUS WdfDeviceCreateSymbolicLink(WDFDEVICE Device, PCUNICODE_STRING SymbolicLinkName);
VOID WdfDeviceInitSetRequestAttributes(PWDFDEVICE_INIT DeviceInit, PWDF_OBJECT_ATTRIBUTES RequestAttributes);
WDFIOTARGET WdfDeviceGetIoTarget(WDFDEVICE Device);
NTSTATUS WdfDeviceConfigureRequestDispatching(WDFDEVICE Device, WDFQUEUE Queue, WDF_REQUEST_TYPE RequestType);
WDFQUEUE WdfDeviceGetDefaultQueue(WDFDEVICE Device);

/* Requests in the caller's context (lib/caller_context.c). Every read,
 * write and device control sent to the device goes first to
 * EvtIoInCallerContext, in the sender's thread, before any queue; the
 * callback ends it with WdfDeviceEnqueueRequest or a completion. */
typedef VOID EVT_WDF_IO_IN_CALLER_CONTEXT(WDFDEVICE Device, WDFREQUEST Request);
typedef EVT_WDF_IO_IN_CALLER_CONTEXT *PFN_WDF_IO_IN_CALLER_CONTEXT;
VOID WdfDeviceInitSetIoInCallerContextCallback(PWDFDEVICE_INIT DeviceInit,
                                               PFN_WDF_IO_IN_CALLER_CONTEXT EvtIoInCallerContext);
/* Only from EvtIoInCallerContext, for the request it was given: into the
 * queue configured for the request's type, else the default queue.
 * STATUS_INVALID_DEVICE_REQUEST (no such queue, another request, outside
 * the callback), STATUS_WDF_BUSY (the queue accepts nothing); on failure
 * the driver still owns the request and completes it. */
NTSTATUS WdfDeviceEnqueueRequest(WDFDEVICE Device, WDFREQUEST Request);

UWDF_END_DECLS
#endif
