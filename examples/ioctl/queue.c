/*++
    The control device's I/O: caller-context processing of METHOD_NEITHER
    IOCTLs, then one sequential queue at PASSIVE_LEVEL for everything.
    Every IOCTL is logged to its session's log with its result.
--*/
#include "ctldev.h"

#ifdef ALLOC_PRAGMA
#pragma alloc_text (PAGE, CtlDevEvtIoInCallerContext)
#pragma alloc_text (PAGE, CtlDevEvtIoRead)
#pragma alloc_text (PAGE, CtlDevEvtIoWrite)
#pragma alloc_text (PAGE, CtlDevEvtIoDeviceControl)
#endif

static PCSTR
CtlDevIoctlName(
    _In_ ULONG IoControlCode
    )
{
    switch (IoControlCode) {
    case IOCTL_CTLDEV_REVERSE_BUFFERED: return "REVERSE_BUFFERED";
    case IOCTL_CTLDEV_STORE_IN_DIRECT:  return "STORE_IN_DIRECT";
    case IOCTL_CTLDEV_FETCH_OUT_DIRECT: return "FETCH_OUT_DIRECT";
    case IOCTL_CTLDEV_REVERSE_NEITHER:  return "REVERSE_NEITHER";
    default:                            return "UNKNOWN";
    }
}

static VOID
CtlDevReverse(
    _Out_writes_bytes_(Length) PUCHAR      Destination,
    _In_reads_bytes_(Length)   const UCHAR *Source,
    _In_                       size_t      Length
    )
/*++
    Destination = Source, last byte first. They may be one buffer (a
    METHOD_BUFFERED request's input and output are).
--*/
{
    size_t i;
    UCHAR  byte;

    if (Destination == Source) {
        for (i = 0; i < Length / 2; i++) {
            byte = Destination[i];
            Destination[i] = Destination[Length - 1 - i];
            Destination[Length - 1 - i] = byte;
        }
        return;
    }
    for (i = 0; i < Length; i++) {
        Destination[i] = Source[Length - 1 - i];
    }
}

VOID
CtlDevEvtIoInCallerContext(
    _In_ WDFDEVICE  Device,
    _In_ WDFREQUEST Request
    )
/*++
    Every request comes here first, in the requestor's thread. A
    METHOD_NEITHER IOCTL's buffers are the requestor's own: they can be
    reached only here, so they are probed and locked into memory objects
    (the request's context keeps them) before the request is queued.
--*/
{
    NTSTATUS               status;
    WDF_REQUEST_PARAMETERS params;
    WDF_OBJECT_ATTRIBUTES  attributes;
    PREQUEST_CONTEXT       requestContext;
    PVOID                  inBuffer;
    PVOID                  outBuffer;
    size_t                 inLength;
    size_t                 outLength;

    PAGED_CODE();

    WDF_REQUEST_PARAMETERS_INIT(&params);
    WdfRequestGetParameters(Request, &params);

    if (params.Type != WdfRequestTypeDeviceControl ||
        params.Parameters.DeviceIoControl.IoControlCode != IOCTL_CTLDEV_REVERSE_NEITHER) {
        status = WdfDeviceEnqueueRequest(Device, Request);
        if (!NT_SUCCESS(status)) {
            WdfRequestComplete(Request, status);
        }
        return;
    }

    status = WdfRequestRetrieveUnsafeUserInputBuffer(Request, 1, &inBuffer, &inLength);
    if (!NT_SUCCESS(status)) {
        goto End;
    }
    status = WdfRequestRetrieveUnsafeUserOutputBuffer(Request, 1, &outBuffer, &outLength);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, REQUEST_CONTEXT);
    status = WdfObjectAllocateContext(Request, &attributes, &requestContext);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    status = WdfRequestProbeAndLockUserBufferForRead(Request, inBuffer, inLength,
                                                     &requestContext->InputMemory);
    if (!NT_SUCCESS(status)) {
        goto End;
    }
    status = WdfRequestProbeAndLockUserBufferForWrite(Request, outBuffer, outLength,
                                                      &requestContext->OutputMemory);
    if (!NT_SUCCESS(status)) {
        goto End;
    }

    status = WdfDeviceEnqueueRequest(Device, Request);

End:
    if (!NT_SUCCESS(status)) {
        KdPrint(("ctldev: METHOD_NEITHER request refused 0x%08X\n", status));
        WdfRequestComplete(Request, status);
    }
}

VOID
CtlDevEvtIoDeviceControl(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     OutputBufferLength,
    _In_ size_t     InputBufferLength,
    _In_ ULONG      IoControlCode
    )
{
    NTSTATUS         status;
    PDEVICE_CONTEXT  deviceContext = CtlDevGetDeviceContext(WdfIoQueueGetDevice(Queue));
    PFILE_CONTEXT    fileContext = CtlDevGetFileContext(WdfRequestGetFileObject(Request));
    PREQUEST_CONTEXT requestContext;
    PUCHAR           inBuffer;
    PUCHAR           outBuffer;
    size_t           inLength = 0;
    size_t           outLength = 0;
    PULONG           offset;
    ULONG_PTR        information = 0;

    PAGED_CODE();

    switch (IoControlCode) {
    case IOCTL_CTLDEV_REVERSE_BUFFERED:
        //
        // Input and output are one system buffer: reversed in place.
        //
        status = WdfRequestRetrieveInputBuffer(Request, 1, (PVOID *)&inBuffer, &inLength);
        if (!NT_SUCCESS(status)) {
            break;
        }
        status = WdfRequestRetrieveOutputBuffer(Request, inLength, (PVOID *)&outBuffer, &outLength);
        if (!NT_SUCCESS(status)) {
            break;
        }
        CtlDevReverse(outBuffer, inBuffer, inLength);
        information = inLength;
        break;

    case IOCTL_CTLDEV_STORE_IN_DIRECT:
        //
        // The input buffer holds the offset; the "output" buffer is the
        // requestor's data, mapped for the driver to read.
        //
        status = WdfRequestRetrieveInputBuffer(Request, sizeof(ULONG), (PVOID *)&offset, &inLength);
        if (!NT_SUCCESS(status)) {
            break;
        }
        status = WdfRequestRetrieveOutputBuffer(Request, 1, (PVOID *)&inBuffer, &outLength);
        if (!NT_SUCCESS(status)) {
            break;
        }
        if (*offset > CTLDEV_STORE_SIZE || outLength > CTLDEV_STORE_SIZE - *offset) {
            status = STATUS_INVALID_PARAMETER;
            break;
        }
        RtlCopyMemory(deviceContext->Store + *offset, inBuffer, outLength);
        information = outLength;
        break;

    case IOCTL_CTLDEV_FETCH_OUT_DIRECT:
        status = WdfRequestRetrieveInputBuffer(Request, sizeof(ULONG), (PVOID *)&offset, &inLength);
        if (!NT_SUCCESS(status)) {
            break;
        }
        status = WdfRequestRetrieveOutputBuffer(Request, 1, (PVOID *)&outBuffer, &outLength);
        if (!NT_SUCCESS(status)) {
            break;
        }
        if (*offset > CTLDEV_STORE_SIZE || outLength > CTLDEV_STORE_SIZE - *offset) {
            status = STATUS_INVALID_PARAMETER;
            break;
        }
        RtlCopyMemory(outBuffer, deviceContext->Store + *offset, outLength);
        information = outLength;
        break;

    case IOCTL_CTLDEV_REVERSE_NEITHER:
        //
        // The buffers were locked in the caller's context.
        //
        requestContext = CtlDevGetRequestContext(Request);
        if (requestContext == NULL) {
            status = STATUS_INVALID_DEVICE_REQUEST;
            break;
        }
        inBuffer = (PUCHAR)WdfMemoryGetBuffer(requestContext->InputMemory, &inLength);
        outBuffer = (PUCHAR)WdfMemoryGetBuffer(requestContext->OutputMemory, &outLength);
        if (outLength < inLength) {
            status = STATUS_BUFFER_TOO_SMALL;
            break;
        }
        CtlDevReverse(outBuffer, inBuffer, inLength);
        information = inLength;
        status = STATUS_SUCCESS;
        break;

    default:
        status = STATUS_INVALID_DEVICE_REQUEST;
        break;
    }

    CtlDevLogPrint(fileContext->Log, "%03lu %s in=%Iu out=%Iu status=0x%08X info=%Iu\n",
                   ++fileContext->Sequence, CtlDevIoctlName(IoControlCode),
                   InputBufferLength, OutputBufferLength, status, information);
    WdfRequestCompleteWithInformation(Request, status, information);
}

VOID
CtlDevEvtIoRead(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
/*++
    A read returns the session's log from the request's offset.
--*/
{
    NTSTATUS               status;
    PFILE_CONTEXT          fileContext = CtlDevGetFileContext(WdfRequestGetFileObject(Request));
    WDF_REQUEST_PARAMETERS params;
    PVOID                  buffer;
    IO_STATUS_BLOCK        ioStatus;
    LARGE_INTEGER          offset;

    UNREFERENCED_PARAMETER(Queue);
    PAGED_CODE();

    WDF_REQUEST_PARAMETERS_INIT(&params);
    WdfRequestGetParameters(Request, &params);

    status = WdfRequestRetrieveOutputBuffer(Request, Length, &buffer, NULL);
    if (!NT_SUCCESS(status)) {
        WdfRequestComplete(Request, status);
        return;
    }
    offset.QuadPart = params.Parameters.Read.DeviceOffset;
    ioStatus.Information = 0;
    status = ZwReadFile(fileContext->Log, NULL, NULL, NULL, &ioStatus, buffer, (ULONG)Length, &offset, NULL);
    WdfRequestCompleteWithInformation(Request, status, NT_SUCCESS(status) ? ioStatus.Information : 0);
}

VOID
CtlDevEvtIoWrite(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
/*++
    A write appends its bytes to the session's log as they are.
--*/
{
    NTSTATUS        status;
    PFILE_CONTEXT   fileContext = CtlDevGetFileContext(WdfRequestGetFileObject(Request));
    PVOID           buffer;
    IO_STATUS_BLOCK ioStatus;
    LARGE_INTEGER   offset;

    UNREFERENCED_PARAMETER(Queue);
    PAGED_CODE();

    status = WdfRequestRetrieveInputBuffer(Request, Length, &buffer, NULL);
    if (!NT_SUCCESS(status)) {
        WdfRequestComplete(Request, status);
        return;
    }
    offset.HighPart = -1;
    offset.LowPart = FILE_WRITE_TO_END_OF_FILE;
    ioStatus.Information = 0;
    status = ZwWriteFile(fileContext->Log, NULL, NULL, NULL, &ioStatus, buffer, (ULONG)Length, &offset, NULL);
    WdfRequestCompleteWithInformation(Request, status, NT_SUCCESS(status) ? ioStatus.Information : 0);
}
