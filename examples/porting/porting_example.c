#include <wdf.h>
#include <uwdf.h>
#include <stdio.h>

#define READS 8

static EVT_WDF_REQUEST_COMPLETION_ROUTINE ReadDone;
static WDFIOTARGET Target;
static WDFMEMORY Buffer;
static KEVENT Done;
static LONG Reads;                  /* completed successfully */
static NTSTATUS LastStatus = STATUS_SUCCESS;

static VOID ReadDone(WDFREQUEST Request, WDFIOTARGET IoTarget,
                     PWDF_REQUEST_COMPLETION_PARAMS Params, WDFCONTEXT Context)
{
    WDF_REQUEST_REUSE_PARAMS reuse;
    LONGLONG offset = 0;

    LastStatus = Params->IoStatus.Status;           /* e.g. STATUS_IO_TIMEOUT */
    if (!NT_SUCCESS(LastStatus) || ++Reads == READS) {
        KeSetEvent(&Done, IO_NO_INCREMENT, FALSE);
        return;
    }
    /* Params->Parameters.Read.Length bytes are in Buffer. Read again: */
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    WdfRequestReuse(Request, &reuse);               /* clears the completion routine */
    WdfIoTargetFormatRequestForRead(IoTarget, Request, Buffer, NULL, &offset);
    WdfRequestSetCompletionRoutine(Request, ReadDone, Context);
    if (!WdfRequestSend(Request, IoTarget, WDF_NO_SEND_OPTIONS)) {
        LastStatus = WdfRequestGetStatus(Request);  /* says why */
        KeSetEvent(&Done, IO_NO_INCREMENT, FALSE);
    }
}

int main(int argc, char **argv)
{
    WDF_DRIVER_CONFIG config;
    WDFDRIVER driver;
    WDFDEVICE device;
    WDF_IO_TARGET_OPEN_PARAMS open;
    ANSI_STRING name;
    UNICODE_STRING path;
    WDFREQUEST request;
    WDF_REQUEST_SEND_OPTIONS options;
    LONGLONG offset = 0;
    NTSTATUS status;

    RtlInitAnsiString(&name, argc > 1 ? argv[1] : "/dev/nvme0n1");
    status = RtlAnsiStringToUnicodeString(&path, &name, TRUE);
    if (!NT_SUCCESS(status))
        return 1;
    KeInitializeEvent(&Done, NotificationEvent, FALSE);
    WDF_DRIVER_CONFIG_INIT(&config, WDF_NO_EVENT_CALLBACK);
    WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &config, &driver);
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device);
    WdfControlFinishInitializing(device);

    WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, &Target);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&open, &path, GENERIC_READ);
    open.CreateOptions |= FILE_NO_INTERMEDIATE_BUFFERING;       /* O_DIRECT */
    status = WdfIoTargetOpen(Target, &open);
    RtlFreeUnicodeString(&path);
    if (NT_SUCCESS(status)) {
        WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPool, 0, 4096, &Buffer, NULL);
        WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, Target, &request);
        WdfIoTargetFormatRequestForRead(Target, request, Buffer, NULL, &offset);
        WdfRequestSetCompletionRoutine(request, ReadDone, NULL);
        WDF_REQUEST_SEND_OPTIONS_INIT(&options, 0);
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&options, WDF_REL_TIMEOUT_IN_MS(500));
        if (WdfRequestSend(request, Target, &options))
            KeWaitForSingleObject(&Done, Executive, KernelMode, FALSE, NULL);
        else
            LastStatus = WdfRequestGetStatus(request);
        status = LastStatus;
    }
    printf("%d reads, last status 0x%08x\n", (int)Reads, (unsigned)status);
    WdfObjectDelete(driver);    /* "driver unload": closes targets, waits for I/O, frees all */
    return NT_SUCCESS(status) ? 0 : 1;
}
