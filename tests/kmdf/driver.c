/*++
    DriverEntry and the driver object's callbacks. INITGUID comes first:
    this unit defines the GUIDs the header declares.
--*/
#define INITGUID
#include "sample.h"

#ifdef ALLOC_PRAGMA
#pragma alloc_text (INIT, DriverEntry)
#pragma alloc_text (PAGE, SampleEvtDeviceAdd)
#pragma alloc_text (PAGE, SampleEvtDriverContextCleanup)
#pragma alloc_text (PAGE, SampleEvtDriverUnload)
#endif

C_ASSERT(sizeof(GUID) == 16);
C_ASSERT(FIELD_OFFSET(QUEUE_CONTEXT, Timer) == 0);

SAMPLE_DRIVER_STATE SampleState;

_Use_decl_annotations_
NTSTATUS
DriverEntry(
    IN PDRIVER_OBJECT  DriverObject,
    IN PUNICODE_STRING RegistryPath
    )
{
    NTSTATUS              status;
    WDF_DRIVER_CONFIG     config;
    WDF_OBJECT_ATTRIBUTES attributes;
    WDFDRIVER             driver;

    KdPrint(("KmdfSample: DriverEntry, registry path %wZ\n", RegistryPath));

    WDF_DRIVER_CONFIG_INIT(&config, SampleEvtDeviceAdd);
    config.EvtDriverUnload = SampleEvtDriverUnload;

    WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
    attributes.EvtCleanupCallback = SampleEvtDriverContextCleanup;

    status = WdfDriverCreate(DriverObject, RegistryPath, &attributes, &config, &driver);
    if (!NT_SUCCESS(status)) {
        KdPrintEx((DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL,
                   "KmdfSample: WdfDriverCreate failed 0x%x\n", status));
        return status;
    }

    //
    // A non-PnP driver makes its control device here.
    //
    status = SampleControlDeviceCreate(driver);
    if (!NT_SUCCESS(status)) {
        WdfObjectDelete(driver);
    }
    return status;
}

_Use_decl_annotations_
NTSTATUS
SampleEvtDeviceAdd(
    WDFDRIVER       Driver,
    PWDFDEVICE_INIT DeviceInit
    )
{
    UNREFERENCED_PARAMETER(Driver);
    UNREFERENCED_PARAMETER(DeviceInit);
    PAGED_CODE();
    //
    // Not called: the sample has no PnP device.
    //
    return STATUS_NOT_SUPPORTED;
}

_Use_decl_annotations_
VOID
SampleEvtDriverContextCleanup(
    WDFOBJECT DriverObject
    )
{
    UNREFERENCED_PARAMETER(DriverObject);
    PAGED_CODE();
    SampleState.CleanedUp = TRUE;
}

_Use_decl_annotations_
VOID
SampleEvtDriverUnload(
    WDFDRIVER Driver
    )
{
    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();
}

const GUID *
SampleGuidSeenByDriverUnit(
    VOID
    )
{
    return &GUID_DEVINTERFACE_UWDF_SAMPLE;
}
