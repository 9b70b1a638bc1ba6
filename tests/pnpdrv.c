/*++
    A small PnP function driver built as a shared object and loaded by the
    host from its DriverEntry symbol (tests/test_pnp.c): a byte store of
    PNPDRV_SIZE bytes behind a device interface. Writes land at their
    offset, reads return what is there; the IOCTL answers the name of the
    driver WdfGetDriver returns inside the callback.
--*/
#include <ntddk.h>
#include <wdf.h>
#include <initguid.h>

#include "pnpdrv.h"

typedef struct _STORE {
    UCHAR Bytes[PNPDRV_SIZE];
} STORE, *PSTORE;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(STORE, StoreGet)

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD PnpDrvDeviceAdd;
EVT_WDF_IO_QUEUE_IO_READ PnpDrvRead;
EVT_WDF_IO_QUEUE_IO_WRITE PnpDrvWrite;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL PnpDrvIoctl;

static PSTORE QueueStore(WDFQUEUE Queue)
{
    return StoreGet(WdfIoQueueGetDevice(Queue));
}

VOID PnpDrvRead(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    WDF_REQUEST_PARAMETERS p;
    WDFMEMORY mem;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(Request, &p);
    LONGLONG off = p.Parameters.Read.DeviceOffset;
    if (off < 0 || off > PNPDRV_SIZE || Length > (size_t)(PNPDRV_SIZE - off)) {
        WdfRequestComplete(Request, STATUS_END_OF_FILE);
        return;
    }
    NTSTATUS st = WdfRequestRetrieveOutputMemory(Request, &mem);
    if (NT_SUCCESS(st))
        st = WdfMemoryCopyFromBuffer(mem, 0, QueueStore(Queue)->Bytes + off, Length);
    WdfRequestCompleteWithInformation(Request, st, NT_SUCCESS(st) ? Length : 0);
}

VOID PnpDrvWrite(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    WDF_REQUEST_PARAMETERS p;
    WDFMEMORY mem;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(Request, &p);
    LONGLONG off = p.Parameters.Write.DeviceOffset;
    if (off < 0 || off > PNPDRV_SIZE || Length > (size_t)(PNPDRV_SIZE - off)) {
        WdfRequestComplete(Request, STATUS_DISK_FULL);
        return;
    }
    NTSTATUS st = WdfRequestRetrieveInputMemory(Request, &mem);
    if (NT_SUCCESS(st))
        st = WdfMemoryCopyToBuffer(mem, 0, QueueStore(Queue)->Bytes + off, Length);
    WdfRequestCompleteWithInformation(Request, st, NT_SUCCESS(st) ? Length : 0);
}

VOID PnpDrvIoctl(WDFQUEUE Queue, WDFREQUEST Request, size_t OutputBufferLength, size_t InputBufferLength,
                 ULONG IoControlCode)
{
    PVOID out;
    size_t len;
    UNREFERENCED_PARAMETER(Queue);
    UNREFERENCED_PARAMETER(OutputBufferLength);
    UNREFERENCED_PARAMETER(InputBufferLength);
    if (IoControlCode != IOCTL_PNPDRV_DRIVER_NAME) {
        WdfRequestComplete(Request, STATUS_INVALID_DEVICE_REQUEST);
        return;
    }
    NTSTATUS st = WdfRequestRetrieveOutputBuffer(Request, sizeof(WCHAR), &out, &len);
    if (!NT_SUCCESS(st)) {
        WdfRequestComplete(Request, st);
        return;
    }
    PUNICODE_STRING name = &WdfDriverWdmGetDriverObject(WdfGetDriver())->DriverName;
    size_t n = name->Length < len ? name->Length : len;
    RtlCopyMemory(out, name->Buffer, n);
    WdfRequestCompleteWithInformation(Request, STATUS_SUCCESS, n);
}

NTSTATUS PnpDrvDeviceAdd(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_IO_QUEUE_CONFIG qc;
    WDFDEVICE device;
    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, STORE);
    NTSTATUS st = WdfDeviceCreate(&DeviceInit, &attrs, &device);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchSequential);
    qc.EvtIoRead = PnpDrvRead;
    qc.EvtIoWrite = PnpDrvWrite;
    qc.EvtIoDeviceControl = PnpDrvIoctl;
    st = WdfIoQueueCreate(device, &qc, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
    if (!NT_SUCCESS(st))
        return st;
    return WdfDeviceCreateDeviceInterface(device, &GUID_DEVINTERFACE_PNPDRV, NULL);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, PnpDrvDeviceAdd);
    return WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}
