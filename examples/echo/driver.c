/*++
    DriverEntry and the driver object's callbacks. This unit defines the
    GUIDs public.h declares (INITGUID before the headers).
--*/
#define INITGUID
#include "driver.h"

#ifdef ALLOC_PRAGMA
#pragma alloc_text (INIT, DriverEntry)
#pragma alloc_text (PAGE, EchoEvtDriverUnload)
#pragma alloc_text (PAGE, EchoEvtDriverContextCleanup)
#endif

NTSTATUS
DriverEntry(
    _In_ PDRIVER_OBJECT  DriverObject,
    _In_ PUNICODE_STRING RegistryPath
    )
/*++
    The framework driver object for this driver: devices come later, one
    per EvtDriverDeviceAdd, as the PnP manager finds them.
--*/
{
    NTSTATUS              status;
    WDF_DRIVER_CONFIG     config;
    WDF_OBJECT_ATTRIBUTES attributes;

    KdPrint(("echo: DriverEntry(%wZ)\n", RegistryPath));

    WDF_DRIVER_CONFIG_INIT(&config, EchoEvtDeviceAdd);
    config.EvtDriverUnload = EchoEvtDriverUnload;

    WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
    attributes.EvtCleanupCallback = EchoEvtDriverContextCleanup;

    status = WdfDriverCreate(DriverObject,
                             RegistryPath,
                             &attributes,
                             &config,
                             WDF_NO_HANDLE);
    if (!NT_SUCCESS(status)) {
        KdPrint(("echo: WdfDriverCreate failed 0x%08X\n", status));
    }
    return status;
}

VOID
EchoEvtDriverUnload(
    _In_ WDFDRIVER Driver
    )
{
    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();

    KdPrint(("echo: DriverUnload\n"));
}

VOID
EchoEvtDriverContextCleanup(
    _In_ WDFOBJECT Driver
    )
/*++
    The WDFDRIVER goes: after EvtDriverUnload, after every device.
--*/
{
    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();

    KdPrint(("echo: DriverCleanup\n"));
}
