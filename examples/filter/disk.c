/*++
    The function driver under the filter: a disk over the hardware the
    PnP manager gives it (the device below, which the host opens on a file
    or block device). It learns the size of the medium when its hardware
    is prepared, refuses transfers past the end, passes reads and writes
    to the hardware and answers IOCTL_DISK_GET_LENGTH_INFO itself.
--*/
#define INITGUID
#include <ntddk.h>
#include <wdf.h>
#include <ntdddisk.h>

#include "public.h"

typedef struct _DISK_CONTEXT {
    LONGLONG Length;            // bytes of the medium
} DISK_CONTEXT, *PDISK_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(DISK_CONTEXT, DiskGetContext)

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD DiskEvtDeviceAdd;
EVT_WDF_DEVICE_PREPARE_HARDWARE DiskEvtDevicePrepareHardware;
EVT_WDF_DEVICE_RELEASE_HARDWARE DiskEvtDeviceReleaseHardware;
EVT_WDF_IO_QUEUE_IO_READ DiskEvtIoRead;
EVT_WDF_IO_QUEUE_IO_WRITE DiskEvtIoWrite;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL DiskEvtIoDeviceControl;
EVT_WDF_REQUEST_COMPLETION_ROUTINE DiskEvtRequestCompletion;

#ifdef ALLOC_PRAGMA
#pragma alloc_text (INIT, DriverEntry)
#pragma alloc_text (PAGE, DiskEvtDeviceAdd)
#pragma alloc_text (PAGE, DiskEvtDevicePrepareHardware)
#pragma alloc_text (PAGE, DiskEvtDeviceReleaseHardware)
#endif

NTSTATUS
DriverEntry(
    _In_ PDRIVER_OBJECT  DriverObject,
    _In_ PUNICODE_STRING RegistryPath
    )
{
    WDF_DRIVER_CONFIG config;

    KdPrint(("disk: DriverEntry\n"));

    WDF_DRIVER_CONFIG_INIT(&config, DiskEvtDeviceAdd);
    return WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}

NTSTATUS
DiskEvtDeviceAdd(
    _In_    WDFDRIVER       Driver,
    _Inout_ PWDFDEVICE_INIT DeviceInit
    )
{
    NTSTATUS                     status;
    WDF_PNPPOWER_EVENT_CALLBACKS pnpPowerCallbacks;
    WDF_OBJECT_ATTRIBUTES        attributes;
    WDF_IO_QUEUE_CONFIG          queueConfig;
    WDFDEVICE                    device;

    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();

    KdPrint(("disk: DeviceAdd\n"));

    WdfDeviceInitSetIoType(DeviceInit, WdfDeviceIoDirect);

    WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&pnpPowerCallbacks);
    pnpPowerCallbacks.EvtDevicePrepareHardware = DiskEvtDevicePrepareHardware;
    pnpPowerCallbacks.EvtDeviceReleaseHardware = DiskEvtDeviceReleaseHardware;
    WdfDeviceInitSetPnpPowerEventCallbacks(DeviceInit, &pnpPowerCallbacks);

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, DISK_CONTEXT);
    status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchParallel);
    queueConfig.EvtIoRead = DiskEvtIoRead;
    queueConfig.EvtIoWrite = DiskEvtIoWrite;
    queueConfig.EvtIoDeviceControl = DiskEvtIoDeviceControl;
    status = WdfIoQueueCreate(device, &queueConfig, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    return WdfDeviceCreateDeviceInterface(device, &GUID_DEVINTERFACE_UWDF_SAMPLE_DISK, NULL);
}

NTSTATUS
DiskEvtDevicePrepareHardware(
    _In_ WDFDEVICE    Device,
    _In_ WDFCMRESLIST ResourcesRaw,
    _In_ WDFCMRESLIST ResourcesTranslated
    )
/*++
    The medium's size, asked of the hardware below.
--*/
{
    NTSTATUS               status;
    GET_LENGTH_INFORMATION lengthInfo;
    WDF_MEMORY_DESCRIPTOR  output;

    UNREFERENCED_PARAMETER(ResourcesRaw);
    UNREFERENCED_PARAMETER(ResourcesTranslated);
    PAGED_CODE();

    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&output, &lengthInfo, sizeof(lengthInfo));
    status = WdfIoTargetSendIoctlSynchronously(WdfDeviceGetIoTarget(Device),
                                               NULL,
                                               IOCTL_DISK_GET_LENGTH_INFO,
                                               NULL,
                                               &output,
                                               NULL,
                                               NULL);
    if (!NT_SUCCESS(status)) {
        KdPrint(("disk: the hardware's length: 0x%08X\n", status));
        return status;
    }
    DiskGetContext(Device)->Length = lengthInfo.Length.QuadPart;
    KdPrint(("disk: PrepareHardware %I64d bytes\n", lengthInfo.Length.QuadPart));
    return STATUS_SUCCESS;
}

NTSTATUS
DiskEvtDeviceReleaseHardware(
    _In_ WDFDEVICE    Device,
    _In_ WDFCMRESLIST ResourcesTranslated
    )
{
    UNREFERENCED_PARAMETER(Device);
    UNREFERENCED_PARAMETER(ResourcesTranslated);
    PAGED_CODE();

    KdPrint(("disk: ReleaseHardware\n"));
    return STATUS_SUCCESS;
}

VOID
DiskEvtRequestCompletion(
    _In_ WDFREQUEST                     Request,
    _In_ WDFIOTARGET                    Target,
    _In_ PWDF_REQUEST_COMPLETION_PARAMS Params,
    _In_ WDFCONTEXT                     Context
    )
{
    UNREFERENCED_PARAMETER(Target);
    UNREFERENCED_PARAMETER(Context);

    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

static VOID
DiskTransfer(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ LONGLONG   Offset,
    _In_ size_t     Length
    )
/*++
    A read or write within the medium goes to the hardware as it is.
--*/
{
    WDFDEVICE device = WdfIoQueueGetDevice(Queue);
    LONGLONG  mediumLength = DiskGetContext(device)->Length;

    if (Offset < 0 || Offset > mediumLength || (LONGLONG)Length > mediumLength - Offset) {
        WdfRequestComplete(Request, STATUS_INVALID_PARAMETER);
        return;
    }

    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, DiskEvtRequestCompletion, WDF_NO_CONTEXT);
    if (!WdfRequestSend(Request, WdfDeviceGetIoTarget(device), WDF_NO_SEND_OPTIONS)) {
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
    }
}

VOID
DiskEvtIoRead(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
{
    WDF_REQUEST_PARAMETERS params;

    WDF_REQUEST_PARAMETERS_INIT(&params);
    WdfRequestGetParameters(Request, &params);
    DiskTransfer(Queue, Request, params.Parameters.Read.DeviceOffset, Length);
}

VOID
DiskEvtIoWrite(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
{
    WDF_REQUEST_PARAMETERS params;

    WDF_REQUEST_PARAMETERS_INIT(&params);
    WdfRequestGetParameters(Request, &params);
    DiskTransfer(Queue, Request, params.Parameters.Write.DeviceOffset, Length);
}

VOID
DiskEvtIoDeviceControl(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     OutputBufferLength,
    _In_ size_t     InputBufferLength,
    _In_ ULONG      IoControlCode
    )
{
    NTSTATUS                status;
    PGET_LENGTH_INFORMATION lengthInfo;

    UNREFERENCED_PARAMETER(OutputBufferLength);
    UNREFERENCED_PARAMETER(InputBufferLength);

    if (IoControlCode != IOCTL_DISK_GET_LENGTH_INFO) {
        WdfRequestComplete(Request, STATUS_INVALID_DEVICE_REQUEST);
        return;
    }
    status = WdfRequestRetrieveOutputBuffer(Request, sizeof(*lengthInfo), (PVOID *)&lengthInfo, NULL);
    if (NT_SUCCESS(status)) {
        lengthInfo->Length.QuadPart = DiskGetContext(WdfIoQueueGetDevice(Queue))->Length;
    }
    WdfRequestCompleteWithInformation(Request, status, NT_SUCCESS(status) ? sizeof(*lengthInfo) : 0);
}
