/*++
    The upper filter: DriverEntry, the filter device, and the forwarding.
--*/
#include "filter.h"

#ifdef ALLOC_PRAGMA
#pragma alloc_text (INIT, DriverEntry)
#pragma alloc_text (PAGE, FilterEvtDeviceAdd)
#endif

NTSTATUS
DriverEntry(
    _In_ PDRIVER_OBJECT  DriverObject,
    _In_ PUNICODE_STRING RegistryPath
    )
{
    WDF_DRIVER_CONFIG config;
    NTSTATUS          status;

    KdPrint(("filter: DriverEntry\n"));

    WDF_DRIVER_CONFIG_INIT(&config, FilterEvtDeviceAdd);
    status = WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
    if (!NT_SUCCESS(status)) {
        KdPrint(("filter: WdfDriverCreate failed 0x%08X\n", status));
    }
    return status;
}

NTSTATUS
FilterEvtDeviceAdd(
    _In_    WDFDRIVER       Driver,
    _Inout_ PWDFDEVICE_INIT DeviceInit
    )
/*++
    A filter device above the device the PnP manager found. Its default
    queue is parallel (a filter must not hold requests back from the
    device below) and, as a filter's queue, not power-managed. What the
    queue has no callback for (creates, cleanups, closes, internal IOCTLs)
    the framework passes down by itself.
--*/
{
    NTSTATUS              status;
    WDF_OBJECT_ATTRIBUTES attributes;
    WDF_IO_QUEUE_CONFIG   queueConfig;
    WDFDEVICE             device;

    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();

    KdPrint(("filter: DeviceAdd\n"));

    WdfFdoInitSetFilter(DeviceInit);

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, FILTER_CONTEXT);
    status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
    if (!NT_SUCCESS(status)) {
        KdPrint(("filter: WdfDeviceCreate failed 0x%08X\n", status));
        return status;
    }

    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchParallel);
    queueConfig.EvtIoRead = FilterEvtIoRead;
    queueConfig.EvtIoWrite = FilterEvtIoWrite;
    queueConfig.EvtIoDeviceControl = FilterEvtIoDeviceControl;

    status = WdfIoQueueCreate(device, &queueConfig, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
    if (!NT_SUCCESS(status)) {
        KdPrint(("filter: WdfIoQueueCreate failed 0x%08X\n", status));
    }
    return status;
}

VOID
FilterEvtRequestCompletion(
    _In_ WDFREQUEST                     Request,
    _In_ WDFIOTARGET                    Target,
    _In_ PWDF_REQUEST_COMPLETION_PARAMS Params,
    _In_ WDFCONTEXT                     Context
    )
/*++
    A read or write is back from the device below: count what it moved,
    then complete it as the device below did. Context is its type.
--*/
{
    PFILTER_CONTEXT  filter = FilterGetContext(WdfIoQueueGetDevice(WdfRequestGetIoQueue(Request)));
    WDF_REQUEST_TYPE type = (WDF_REQUEST_TYPE)(ULONG_PTR)Context;
    NTSTATUS         status = Params->IoStatus.Status;
    ULONG_PTR        information = Params->IoStatus.Information;

    UNREFERENCED_PARAMETER(Target);

    if (!NT_SUCCESS(status)) {
        InterlockedIncrement64(&filter->Statistics.Failed);
    } else if (type == WdfRequestTypeRead) {
        InterlockedAdd64(&filter->Statistics.BytesRead, (LONG64)information);
    } else {
        InterlockedAdd64(&filter->Statistics.BytesWritten, (LONG64)information);
    }
    WdfRequestCompleteWithInformation(Request, status, information);
}

static VOID
FilterForwardWithCompletion(
    _In_ WDFQUEUE         Queue,
    _In_ WDFREQUEST       Request,
    _In_ WDF_REQUEST_TYPE Type
    )
/*++
    Down unchanged (the next stack location a copy of this one), back
    through FilterEvtRequestCompletion.
--*/
{
    WDFIOTARGET target = WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue));

    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, FilterEvtRequestCompletion, (WDFCONTEXT)(ULONG_PTR)Type);
    if (!WdfRequestSend(Request, target, WDF_NO_SEND_OPTIONS)) {
        NTSTATUS status = WdfRequestGetStatus(Request);
        KdPrint(("filter: WdfRequestSend failed 0x%08X\n", status));
        WdfRequestComplete(Request, status);
    }
}

VOID
FilterEvtIoRead(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
{
    UNREFERENCED_PARAMETER(Length);

    InterlockedIncrement64(&FilterGetContext(WdfIoQueueGetDevice(Queue))->Statistics.Reads);
    FilterForwardWithCompletion(Queue, Request, WdfRequestTypeRead);
}

VOID
FilterEvtIoWrite(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
{
    UNREFERENCED_PARAMETER(Length);

    InterlockedIncrement64(&FilterGetContext(WdfIoQueueGetDevice(Queue))->Statistics.Writes);
    FilterForwardWithCompletion(Queue, Request, WdfRequestTypeWrite);
}

VOID
FilterEvtIoDeviceControl(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     OutputBufferLength,
    _In_ size_t     InputBufferLength,
    _In_ ULONG      IoControlCode
    )
/*++
    The filter's own IOCTL is answered here; every other one goes down
    send-and-forget: unformatted, no completion routine, the request no
    longer the filter's once it is sent.
--*/
{
    PFILTER_CONTEXT          filter = FilterGetContext(WdfIoQueueGetDevice(Queue));
    PFILTER_STATISTICS       statistics;
    NTSTATUS                 status;
    WDF_REQUEST_SEND_OPTIONS options;

    UNREFERENCED_PARAMETER(OutputBufferLength);
    UNREFERENCED_PARAMETER(InputBufferLength);

    if (IoControlCode == IOCTL_FILTER_GET_STATISTICS) {
        status = WdfRequestRetrieveOutputBuffer(Request, sizeof(*statistics), (PVOID *)&statistics, NULL);
        if (NT_SUCCESS(status)) {
            statistics->Reads = InterlockedAdd64(&filter->Statistics.Reads, 0);
            statistics->Writes = InterlockedAdd64(&filter->Statistics.Writes, 0);
            statistics->DeviceControls = InterlockedAdd64(&filter->Statistics.DeviceControls, 0);
            statistics->BytesRead = InterlockedAdd64(&filter->Statistics.BytesRead, 0);
            statistics->BytesWritten = InterlockedAdd64(&filter->Statistics.BytesWritten, 0);
            statistics->Failed = InterlockedAdd64(&filter->Statistics.Failed, 0);
        }
        WdfRequestCompleteWithInformation(Request, status, NT_SUCCESS(status) ? sizeof(*statistics) : 0);
        return;
    }

    InterlockedIncrement64(&filter->Statistics.DeviceControls);
    WDF_REQUEST_SEND_OPTIONS_INIT(&options, WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET);
    if (!WdfRequestSend(Request, WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue)), &options)) {
        status = WdfRequestGetStatus(Request);
        KdPrint(("filter: WdfRequestSend failed 0x%08X\n", status));
        WdfRequestComplete(Request, status);
    }
}
