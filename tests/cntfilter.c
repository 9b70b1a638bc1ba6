/*++
    A filter driver (upper or lower) that counts what goes through it: its
    default queue takes reads, writes and IOCTLs, forwards each to the
    device below with a completion routine that counts the bytes moved and
    the failures, and passes every other request type down untouched (WDF's
    rule for a filter's default queue). When its device is removed it
    prints its counts (CNTFILTER_LINE, tests/stackdrv.h), which tests read
    from the host's log as proof that the I/O went through the stack.
--*/
#include <ntddk.h>
#include <wdf.h>

#include "stackdrv.h"

typedef struct _COUNTS {
    volatile LONG64 Reads, ReadBytes, Writes, WriteBytes, Other, Failed;
} COUNTS, *PCOUNTS;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(COUNTS, CountsGet)

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD CntFilterDeviceAdd;
EVT_WDF_IO_QUEUE_IO_READ CntFilterRead;
EVT_WDF_IO_QUEUE_IO_WRITE CntFilterWrite;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL CntFilterIoctl;
EVT_WDF_REQUEST_COMPLETION_ROUTINE CntFilterDone;
EVT_WDF_OBJECT_CONTEXT_CLEANUP CntFilterCleanup;

VOID CntFilterDone(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                   WDFCONTEXT Context)
{
    PCOUNTS c = Context;
    NTSTATUS st = Params->IoStatus.Status;
    WDF_REQUEST_PARAMETERS p;
    UNREFERENCED_PARAMETER(Target);
    /* The type as this driver received it (sent on with its current type). */
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(Request, &p);
    if (!NT_SUCCESS(st))
        InterlockedIncrement64(&c->Failed);
    else if (p.Type == WdfRequestTypeRead)
        InterlockedAdd64(&c->ReadBytes, (LONG64)Params->IoStatus.Information);
    else if (p.Type == WdfRequestTypeWrite)
        InterlockedAdd64(&c->WriteBytes, (LONG64)Params->IoStatus.Information);
    WdfRequestCompleteWithInformation(Request, st, Params->IoStatus.Information);
}

static VOID Forward(WDFQUEUE Queue, WDFREQUEST Request, volatile LONG64 *Counter)
{
    WDFDEVICE device = WdfIoQueueGetDevice(Queue);
    PCOUNTS c = CountsGet(device);
    InterlockedIncrement64(Counter);
    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, CntFilterDone, c);
    if (!WdfRequestSend(Request, WdfDeviceGetIoTarget(device), WDF_NO_SEND_OPTIONS)) {
        InterlockedIncrement64(&c->Failed);
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
    }
}

VOID CntFilterRead(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    UNREFERENCED_PARAMETER(Length);
    Forward(Queue, Request, &CountsGet(WdfIoQueueGetDevice(Queue))->Reads);
}

VOID CntFilterWrite(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    UNREFERENCED_PARAMETER(Length);
    Forward(Queue, Request, &CountsGet(WdfIoQueueGetDevice(Queue))->Writes);
}

VOID CntFilterIoctl(WDFQUEUE Queue, WDFREQUEST Request, size_t OutputBufferLength, size_t InputBufferLength,
                    ULONG IoControlCode)
{
    UNREFERENCED_PARAMETER(OutputBufferLength);
    UNREFERENCED_PARAMETER(InputBufferLength);
    UNREFERENCED_PARAMETER(IoControlCode);
    Forward(Queue, Request, &CountsGet(WdfIoQueueGetDevice(Queue))->Other);
}

/* The device goes (removal): its counts, once. */
VOID CntFilterCleanup(WDFOBJECT Object)
{
    PCOUNTS c = CountsGet((WDFDEVICE)Object);
    DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL,
               CNTFILTER_LINE "%wZ: reads=%lld read-bytes=%lld writes=%lld write-bytes=%lld other=%lld failed=%lld\n",
               &WdfDriverWdmGetDriverObject(WdfDeviceGetDriver((WDFDEVICE)Object))->DriverName, (long long)c->Reads,
               (long long)c->ReadBytes, (long long)c->Writes, (long long)c->WriteBytes, (long long)c->Other,
               (long long)c->Failed);
}

NTSTATUS CntFilterDeviceAdd(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_IO_QUEUE_CONFIG qc;
    WDFDEVICE device;
    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();
    WdfFdoInitSetFilter(DeviceInit);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, COUNTS);
    attrs.EvtCleanupCallback = CntFilterCleanup;
    NTSTATUS st = WdfDeviceCreate(&DeviceInit, &attrs, &device);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoRead = CntFilterRead;
    qc.EvtIoWrite = CntFilterWrite;
    qc.EvtIoDeviceControl = CntFilterIoctl;
    return WdfIoQueueCreate(device, &qc, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, CntFilterDeviceAdd);
    return WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}
