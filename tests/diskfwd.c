/*++
    A function driver for a disk whose hardware is the Linux file or block
    device of its arrival (UWDF_DEVICE_DESCRIPTION.HardwarePath): every
    request it receives goes to its device's default I/O target unchanged,
    send-and-forget, as a pass-through disk driver does. Built as a shared
    object for the nbdkit plugin's served-stack tests (tests/test_nbdkit.c).
    Its device is named \Device\UwdfDiskFwd<n> and has an interface of
    GUID_DEVINTERFACE_DISKFWD.
--*/
#include <ntddk.h>
#include <ntstrsafe.h>
#include <wdf.h>
#include <initguid.h>

#include "stackdrv.h"

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD DiskFwdDeviceAdd;
EVT_WDF_IO_QUEUE_IO_DEFAULT DiskFwdIo;

static LONG DeviceNumber = -1;

VOID DiskFwdIo(WDFQUEUE Queue, WDFREQUEST Request)
{
    WDF_REQUEST_SEND_OPTIONS options;
    WDFIOTARGET hw = WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue));
    WDF_REQUEST_SEND_OPTIONS_INIT(&options, WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET);
    if (!WdfRequestSend(Request, hw, &options))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

NTSTATUS DiskFwdDeviceAdd(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit)
{
    WCHAR name_buf[64];
    UNICODE_STRING name;
    WDF_IO_QUEUE_CONFIG qc;
    WDFDEVICE device;
    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();
    NTSTATUS st = RtlStringCbPrintfW(name_buf, sizeof(name_buf), L"%ls%ld", DISKFWD_DEVICE_PREFIX,
                                     InterlockedIncrement(&DeviceNumber));
    if (!NT_SUCCESS(st))
        return st;
    RtlInitUnicodeString(&name, name_buf);
    st = WdfDeviceInitAssignName(DeviceInit, &name);
    if (!NT_SUCCESS(st))
        return st;
    st = WdfDeviceCreate(&DeviceInit, WDF_NO_OBJECT_ATTRIBUTES, &device);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoDefault = DiskFwdIo;
    st = WdfIoQueueCreate(device, &qc, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
    if (!NT_SUCCESS(st))
        return st;
    return WdfDeviceCreateDeviceInterface(device, &GUID_DEVINTERFACE_DISKFWD, NULL);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, DiskFwdDeviceAdd);
    return WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}
