/*++
    The control-device driver: a non-PnP driver whose one device exists
    from DriverEntry to unload. Each open of the device is a session with
    a log file of its own, written through ZwCreateFile/ZwWriteFile;
    the driver keeps a log of its own too. IOCTLs of all four transfer
    methods; METHOD_NEITHER buffers are probed and locked in the
    requestor's context. Reads return the session's log, writes append
    to it.
--*/
#ifndef UWDF_CTLDEV_H
#define UWDF_CTLDEV_H

#include <ntddk.h>
#include <wdf.h>
#include <wdmsec.h>
#include <ntstrsafe.h>

#include "public.h"

#define CTLDEV_POOL_TAG 'veDC'

typedef struct _DRIVER_CONTEXT {
    HANDLE Log;                 // driver.log
} DRIVER_CONTEXT, *PDRIVER_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(DRIVER_CONTEXT, CtlDevGetDriverContext)

typedef struct _DEVICE_CONTEXT {
    UCHAR Store[CTLDEV_STORE_SIZE];
} DEVICE_CONTEXT, *PDEVICE_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(DEVICE_CONTEXT, CtlDevGetDeviceContext)

typedef struct _FILE_CONTEXT {
    HANDLE Log;                 // the session's log
    ULONG  Sequence;            // requests logged so far
    WCHAR  Name[64];            // the session's name, NUL-terminated
} FILE_CONTEXT, *PFILE_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(FILE_CONTEXT, CtlDevGetFileContext)

//
// A METHOD_NEITHER request's buffers, locked in the requestor's context.
//
typedef struct _REQUEST_CONTEXT {
    WDFMEMORY InputMemory;
    WDFMEMORY OutputMemory;
} REQUEST_CONTEXT, *PREQUEST_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(REQUEST_CONTEXT, CtlDevGetRequestContext)

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_UNLOAD CtlDevEvtDriverUnload;
EVT_WDF_DEVICE_FILE_CREATE CtlDevEvtDeviceFileCreate;
EVT_WDF_FILE_CLEANUP CtlDevEvtFileCleanup;
EVT_WDF_FILE_CLOSE CtlDevEvtFileClose;
EVT_WDF_IO_IN_CALLER_CONTEXT CtlDevEvtIoInCallerContext;
EVT_WDF_IO_QUEUE_IO_READ CtlDevEvtIoRead;
EVT_WDF_IO_QUEUE_IO_WRITE CtlDevEvtIoWrite;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL CtlDevEvtIoDeviceControl;
EVT_WDF_DEVICE_SHUTDOWN_NOTIFICATION CtlDevEvtShutdown;

NTSTATUS
CtlDevCreateDevice(
    _In_ WDFDRIVER       Driver,
    _In_ PWDFDEVICE_INIT DeviceInit
    );

NTSTATUS
CtlDevOpenLog(
    _In_  PCUNICODE_STRING Name,
    _In_  BOOLEAN          Directory,
    _Out_ PHANDLE          Handle
    );

VOID
CtlDevLogPrint(
    _In_ HANDLE Log,
    _In_ _Printf_format_string_ PCSTR Format,
    ...
    );

#endif
