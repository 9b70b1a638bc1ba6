/*++
    DriverEntry, the control device, its sessions (file objects) and the
    logs they write through the Zw file routines.
--*/
#include "ctldev.h"

#ifdef ALLOC_PRAGMA
#pragma alloc_text (INIT, DriverEntry)
#pragma alloc_text (PAGE, CtlDevCreateDevice)
#pragma alloc_text (PAGE, CtlDevEvtDriverUnload)
#pragma alloc_text (PAGE, CtlDevEvtDeviceFileCreate)
#pragma alloc_text (PAGE, CtlDevEvtFileCleanup)
#pragma alloc_text (PAGE, CtlDevEvtFileClose)
#pragma alloc_text (PAGE, CtlDevEvtShutdown)
#pragma alloc_text (PAGE, CtlDevOpenLog)
#pragma alloc_text (PAGE, CtlDevLogPrint)
#endif

NTSTATUS
DriverEntry(
    _In_ PDRIVER_OBJECT  DriverObject,
    _In_ PUNICODE_STRING RegistryPath
    )
/*++
    A non-PnP driver: no EvtDriverDeviceAdd. Its one device is made here,
    and the framework deletes it after EvtDriverUnload.
--*/
{
    NTSTATUS              status;
    WDF_DRIVER_CONFIG     config;
    WDF_OBJECT_ATTRIBUTES attributes;
    WDFDRIVER             driver;
    PWDFDEVICE_INIT       deviceInit;
    PDRIVER_CONTEXT       driverContext;
    DECLARE_CONST_UNICODE_STRING(directory, CTLDEV_LOG_DIRECTORY);
    DECLARE_CONST_UNICODE_STRING(driverLog, CTLDEV_DRIVER_LOG);
    HANDLE                directoryHandle;

    KdPrint(("ctldev: DriverEntry\n"));

    WDF_DRIVER_CONFIG_INIT(&config, WDF_NO_EVENT_CALLBACK);
    config.DriverInitFlags |= WdfDriverInitNonPnpDriver;
    config.EvtDriverUnload = CtlDevEvtDriverUnload;

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, DRIVER_CONTEXT);
    status = WdfDriverCreate(DriverObject, RegistryPath, &attributes, &config, &driver);
    if (!NT_SUCCESS(status)) {
        KdPrint(("ctldev: WdfDriverCreate failed 0x%08X\n", status));
        return status;
    }
    driverContext = CtlDevGetDriverContext(driver);

    //
    // The log directory, then the driver's own log in it (a new one each
    // time the driver loads).
    //
    status = CtlDevOpenLog(&directory, TRUE, &directoryHandle);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    ZwClose(directoryHandle);
    status = CtlDevOpenLog(&driverLog, FALSE, &driverContext->Log);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    CtlDevLogPrint(driverContext->Log, "load %wZ\n", RegistryPath);

    deviceInit = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_RW_RES_R);
    if (deviceInit == NULL) {
        status = STATUS_INSUFFICIENT_RESOURCES;
    } else {
        status = CtlDevCreateDevice(driver, deviceInit);
    }
    if (!NT_SUCCESS(status)) {
        //
        // A failing DriverEntry gets no EvtDriverUnload: close the log here.
        //
        ZwClose(driverContext->Log);
        driverContext->Log = NULL;
    }
    return status;
}

NTSTATUS
CtlDevCreateDevice(
    _In_ WDFDRIVER       Driver,
    _In_ PWDFDEVICE_INIT DeviceInit
    )
/*++
    The control device: named, with a symbolic link, a file object per
    open, caller-context processing for METHOD_NEITHER and a sequential
    queue whose callbacks run at PASSIVE_LEVEL (the Zw routines need it).
    DeviceInit is freed here if the device is not made.
--*/
{
    NTSTATUS              status;
    WDF_FILEOBJECT_CONFIG fileConfig;
    WDF_OBJECT_ATTRIBUTES attributes;
    WDF_IO_QUEUE_CONFIG   queueConfig;
    WDFDEVICE             device;
    DECLARE_CONST_UNICODE_STRING(deviceName, CTLDEV_DEVICE_NAME);
    DECLARE_CONST_UNICODE_STRING(linkName, CTLDEV_LINK_NAME);

    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();

    WdfDeviceInitSetIoType(DeviceInit, WdfDeviceIoBuffered);

    status = WdfDeviceInitAssignName(DeviceInit, &deviceName);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    WdfControlDeviceInitSetShutdownNotification(DeviceInit, CtlDevEvtShutdown, WdfDeviceShutdown);

    WDF_FILEOBJECT_CONFIG_INIT(&fileConfig,
                               CtlDevEvtDeviceFileCreate,
                               CtlDevEvtFileClose,
                               CtlDevEvtFileCleanup);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, FILE_CONTEXT);
    WdfDeviceInitSetFileObjectConfig(DeviceInit, &fileConfig, &attributes);

    WdfDeviceInitSetIoInCallerContextCallback(DeviceInit, CtlDevEvtIoInCallerContext);

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, DEVICE_CONTEXT);
    status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    status = WdfDeviceCreateSymbolicLink(device, &linkName);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchSequential);
    queueConfig.EvtIoRead = CtlDevEvtIoRead;
    queueConfig.EvtIoWrite = CtlDevEvtIoWrite;
    queueConfig.EvtIoDeviceControl = CtlDevEvtIoDeviceControl;

    WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
    attributes.ExecutionLevel = WdfExecutionLevelPassive;

    status = WdfIoQueueCreate(device, &queueConfig, &attributes, WDF_NO_HANDLE);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    WdfControlFinishInitializing(device);

End:
    if (DeviceInit != NULL) {
        WdfDeviceInitFree(DeviceInit);
    }
    if (!NT_SUCCESS(status)) {
        KdPrint(("ctldev: the control device was not made: 0x%08X\n", status));
    }
    return status;
}

VOID
CtlDevEvtDriverUnload(
    _In_ WDFDRIVER Driver
    )
{
    PDRIVER_CONTEXT driverContext = CtlDevGetDriverContext(Driver);

    PAGED_CODE();

    KdPrint(("ctldev: DriverUnload\n"));
    if (driverContext->Log != NULL) {
        CtlDevLogPrint(driverContext->Log, "unload\n");
        ZwClose(driverContext->Log);
        driverContext->Log = NULL;
    }
}

VOID
CtlDevEvtShutdown(
    _In_ WDFDEVICE Device
    )
/*++
    The system is going down (WdfDeviceShutdown: before the file systems
    flush, so file I/O is still fine here).
--*/
{
    PDRIVER_CONTEXT driverContext = CtlDevGetDriverContext(WdfDeviceGetDriver(Device));

    PAGED_CODE();

    KdPrint(("ctldev: Shutdown\n"));
    CtlDevLogPrint(driverContext->Log, "shutdown\n");
}

VOID
CtlDevEvtDeviceFileCreate(
    _In_ WDFDEVICE     Device,
    _In_ WDFREQUEST    Request,
    _In_ WDFFILEOBJECT FileObject
    )
/*++
    An open of \DosDevices\UwdfCtlDev\<name>: the session's log is
    <name> in the log directory (made, or truncated if it exists). The
    name is one plain file name: no further '\'.
--*/
{
    NTSTATUS         status;
    PUNICODE_STRING  fileName = WdfFileObjectGetFileName(FileObject);
    PFILE_CONTEXT    fileContext = CtlDevGetFileContext(FileObject);
    PDRIVER_CONTEXT  driverContext = CtlDevGetDriverContext(WdfDeviceGetDriver(Device));
    UNICODE_STRING   name;
    UNICODE_STRING   path;
    WCHAR            pathBuffer[128];
    USHORT           i;

    PAGED_CODE();

    if (fileName == NULL || fileName->Length < 2 * sizeof(WCHAR) || fileName->Buffer[0] != L'\\') {
        status = STATUS_OBJECT_NAME_INVALID;
        goto End;
    }
    name.Buffer = fileName->Buffer + 1;
    name.Length = fileName->Length - sizeof(WCHAR);
    name.MaximumLength = name.Length;
    for (i = 0; i < name.Length / sizeof(WCHAR); i++) {
        if (name.Buffer[i] == L'\\') {
            status = STATUS_OBJECT_NAME_INVALID;
            goto End;
        }
    }

    status = RtlStringCbPrintfW(fileContext->Name, sizeof(fileContext->Name), L"%wZ", &name);
    if (!NT_SUCCESS(status)) {
        goto End;
    }
    path.Buffer = pathBuffer;
    path.Length = 0;
    path.MaximumLength = sizeof(pathBuffer);
    status = RtlUnicodeStringPrintf(&path, L"%ws\\%wZ", CTLDEV_LOG_DIRECTORY, &name);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    status = CtlDevOpenLog(&path, FALSE, &fileContext->Log);
    if (!NT_SUCCESS(status)) {
        goto End;
    }
    fileContext->Sequence = 0;
    CtlDevLogPrint(driverContext->Log, "create %ws\n", fileContext->Name);

End:
    KdPrint(("ctldev: FileCreate 0x%08X\n", status));
    WdfRequestComplete(Request, status);
}

VOID
CtlDevEvtFileCleanup(
    _In_ WDFFILEOBJECT FileObject
    )
/*++
    The session's last handle is closed.
--*/
{
    PFILE_CONTEXT   fileContext = CtlDevGetFileContext(FileObject);
    PDRIVER_CONTEXT driverContext =
        CtlDevGetDriverContext(WdfDeviceGetDriver(WdfFileObjectGetDevice(FileObject)));

    PAGED_CODE();

    KdPrint(("ctldev: FileCleanup\n"));
    CtlDevLogPrint(driverContext->Log, "cleanup %ws\n", fileContext->Name);
}

VOID
CtlDevEvtFileClose(
    _In_ WDFFILEOBJECT FileObject
    )
/*++
    The session is over, all its I/O done: close its log.
--*/
{
    PFILE_CONTEXT   fileContext = CtlDevGetFileContext(FileObject);
    PDRIVER_CONTEXT driverContext =
        CtlDevGetDriverContext(WdfDeviceGetDriver(WdfFileObjectGetDevice(FileObject)));

    PAGED_CODE();

    KdPrint(("ctldev: FileClose\n"));
    if (fileContext->Log != NULL) {
        ZwClose(fileContext->Log);
        fileContext->Log = NULL;
    }
    CtlDevLogPrint(driverContext->Log, "close %ws\n", fileContext->Name);
}

NTSTATUS
CtlDevOpenLog(
    _In_  PCUNICODE_STRING Name,
    _In_  BOOLEAN          Directory,
    _Out_ PHANDLE          Handle
    )
/*++
    A log file, made empty (FILE_OVERWRITE_IF), opened for reading and
    appending at its end; or the directory, made if it is not there.
--*/
{
    NTSTATUS          status;
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK   ioStatus;

    PAGED_CODE();

    InitializeObjectAttributes(&attributes,
                               (PUNICODE_STRING)Name,
                               OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
                               NULL,
                               NULL);

    status = ZwCreateFile(Handle,
                          Directory ? GENERIC_READ | SYNCHRONIZE
                                    : FILE_READ_DATA | FILE_APPEND_DATA | SYNCHRONIZE,
                          &attributes,
                          &ioStatus,
                          NULL,
                          FILE_ATTRIBUTE_NORMAL,
                          FILE_SHARE_READ,
                          Directory ? FILE_OPEN_IF : FILE_OVERWRITE_IF,
                          FILE_SYNCHRONOUS_IO_NONALERT |
                              (Directory ? FILE_DIRECTORY_FILE : FILE_NON_DIRECTORY_FILE),
                          NULL,
                          0);
    if (!NT_SUCCESS(status)) {
        KdPrint(("ctldev: ZwCreateFile(%wZ) failed 0x%08X\n", Name, status));
        *Handle = NULL;
    }
    return status;
}

VOID
CtlDevLogPrint(
    _In_ HANDLE Log,
    _In_ _Printf_format_string_ PCSTR Format,
    ...
    )
/*++
    One formatted line at the end of a log.
--*/
{
    NTSTATUS        status;
    CHAR            line[256];
    size_t          length;
    va_list         args;
    IO_STATUS_BLOCK ioStatus;
    LARGE_INTEGER   offset;

    PAGED_CODE();

    va_start(args, Format);
    status = RtlStringCbVPrintfA(line, sizeof(line), Format, args);
    va_end(args);
    if (NT_SUCCESS(status)) {
        status = RtlStringCbLengthA(line, sizeof(line), &length);
    }
    if (!NT_SUCCESS(status)) {
        return;
    }

    offset.HighPart = -1;
    offset.LowPart = FILE_WRITE_TO_END_OF_FILE;
    status = ZwWriteFile(Log, NULL, NULL, NULL, &ioStatus, line, (ULONG)length, &offset, NULL);
    if (!NT_SUCCESS(status)) {
        KdPrint(("ctldev: ZwWriteFile failed 0x%08X\n", status));
    }
}
