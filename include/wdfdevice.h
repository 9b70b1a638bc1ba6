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

UWDF_END_DECLS
#endif
