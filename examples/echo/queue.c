/*++
    The echo device's queue: sequential, so one read or write at a time is
    the driver's; its synchronization scope is the queue, so the I/O
    callbacks, the cancel routine, EvtIoStop and the timer (whose parent is
    the queue) never run at the same time and the queue context needs no
    lock of its own.

    A write stores its data, a read returns the stored data (0 bytes if
    there is none). Neither completes in its callback: the request is held
    and marked cancelable, and the timer completes it HoldTicks periods
    later. While a request is held the queue presents no other. A write's
    data replaces the stored data when the write completes successfully:
    a cancelled write leaves it as it was.
--*/
#include "driver.h"

#ifdef ALLOC_PRAGMA
#pragma alloc_text (PAGE, EchoQueueInitialize)
#endif

NTSTATUS
EchoQueueInitialize(
    _In_ WDFDEVICE Device
    )
{
    NTSTATUS              status;
    WDF_IO_QUEUE_CONFIG   queueConfig;
    WDF_OBJECT_ATTRIBUTES queueAttributes;
    WDF_TIMER_CONFIG      timerConfig;
    WDF_OBJECT_ATTRIBUTES timerAttributes;
    WDFQUEUE              queue;

    PAGED_CODE();

    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchSequential);
    queueConfig.EvtIoRead = EchoEvtIoRead;
    queueConfig.EvtIoWrite = EchoEvtIoWrite;
    queueConfig.EvtIoDeviceControl = EchoEvtIoDeviceControl;
    queueConfig.EvtIoStop = EchoEvtIoStop;
    queueConfig.EvtIoResume = EchoEvtIoResume;

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&queueAttributes, QUEUE_CONTEXT);
    queueAttributes.SynchronizationScope = WdfSynchronizationScopeQueue;
    queueAttributes.EvtDestroyCallback = EchoEvtQueueContextDestroy;

    status = WdfIoQueueCreate(Device, &queueConfig, &queueAttributes, &queue);
    if (!NT_SUCCESS(status)) {
        KdPrint(("echo: WdfIoQueueCreate failed 0x%08X\n", status));
        return status;
    }

    //
    // The timer's parent is the queue and it is automatically serialized
    // (the _INIT_PERIODIC default): its callback takes the queue's lock.
    // It runs at DISPATCH_LEVEL, as the queue's callbacks may.
    //
    WDF_TIMER_CONFIG_INIT_PERIODIC(&timerConfig, EchoEvtTimerFunc, ECHO_TIMER_PERIOD_MS);
    WDF_OBJECT_ATTRIBUTES_INIT(&timerAttributes);
    timerAttributes.ParentObject = queue;

    status = WdfTimerCreate(&timerConfig,
                            &timerAttributes,
                            &EchoGetDeviceContext(Device)->Timer);
    if (!NT_SUCCESS(status)) {
        KdPrint(("echo: WdfTimerCreate failed 0x%08X\n", status));
    }
    return status;
}

VOID
EchoEvtQueueContextDestroy(
    _In_ WDFOBJECT Queue
    )
{
    PQUEUE_CONTEXT context = EchoGetQueueContext(Queue);

    if (context->Data != NULL) {
        ExFreePoolWithTag(context->Data, ECHO_POOL_TAG);
        context->Data = NULL;
    }
    ASSERT(context->HeldData == NULL);
}

static VOID
EchoFinishRequest(
    _In_ PQUEUE_CONTEXT Context,
    _In_ WDFREQUEST     Request,
    _In_ NTSTATUS       Status
    )
/*++
    Completes a request that is no longer cancelable (or whose cancel
    routine runs). If it is the held one, a successful write's data
    becomes the stored data.
--*/
{
    ULONG_PTR information = 0;

    if (Context->HeldRequest == Request) {
        Context->HeldRequest = NULL;
        if (NT_SUCCESS(Status)) {
            information = Context->HeldInformation;
            if (Context->HeldData != NULL) {
                if (Context->Data != NULL) {
                    ExFreePoolWithTag(Context->Data, ECHO_POOL_TAG);
                }
                Context->Data = Context->HeldData;
                Context->DataLength = Context->HeldDataLength;
                Context->HeldData = NULL;
            }
        }
        if (Context->HeldData != NULL) {
            ExFreePoolWithTag(Context->HeldData, ECHO_POOL_TAG);
            Context->HeldData = NULL;
        }
    }
    WdfRequestCompleteWithInformation(Request, Status, information);
}

static VOID
EchoHoldRequest(
    _In_ PQUEUE_CONTEXT Context,
    _In_ WDFREQUEST     Request,
    _In_ ULONG_PTR      Information,
    _In_opt_ PUCHAR     WriteData
    )
/*++
    The request waits for the timer (with a write's data, WriteData, the
    held request's to free). If it was cancelled before it could be
    marked cancelable, it ends here.
--*/
{
    NTSTATUS status;

    ASSERT(Context->HeldRequest == NULL);

    Context->HeldRequest = Request;
    Context->HeldInformation = Information;
    Context->HeldData = WriteData;
    Context->HeldDataLength = (ULONG)Information;
    Context->TicksLeft = Context->HoldTicks;

    status = WdfRequestMarkCancelableEx(Request, EchoEvtRequestCancel);
    if (!NT_SUCCESS(status)) {
        KdPrint(("echo: RequestCancel\n"));
        EchoFinishRequest(Context, Request, status);
    }
}

VOID
EchoEvtRequestCancel(
    _In_ WDFREQUEST Request
    )
{
    PQUEUE_CONTEXT context = EchoGetQueueContext(WdfRequestGetIoQueue(Request));

    KdPrint(("echo: RequestCancel\n"));
    EchoFinishRequest(context, Request, STATUS_CANCELLED);
}

VOID
EchoEvtTimerFunc(
    _In_ WDFTIMER Timer
    )
/*++
    Each period: count the held request down; at zero, take it back from
    the cancel path and complete it. If the cancel routine already owns
    it (WdfRequestUnmarkCancelable: STATUS_CANCELLED), that routine
    completes it instead.
--*/
{
    WDFQUEUE       queue = (WDFQUEUE)WdfTimerGetParentObject(Timer);
    PQUEUE_CONTEXT context = EchoGetQueueContext(queue);
    WDFREQUEST     request = context->HeldRequest;
    NTSTATUS       status;

    if (request == NULL) {
        return;
    }
    if (context->TicksLeft > 0) {
        context->TicksLeft--;
        return;
    }
    status = WdfRequestUnmarkCancelable(request);
    if (status != STATUS_CANCELLED) {
        EchoFinishRequest(context, request, STATUS_SUCCESS);
    }
}

VOID
EchoEvtIoWrite(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
/*++
    The request's data, to replace the stored data when it completes.
    (The queue completes zero-length writes itself: Length is never 0
    here.)
--*/
{
    NTSTATUS       status;
    WDFMEMORY      memory;
    PUCHAR         data;
    PQUEUE_CONTEXT context = EchoGetQueueContext(Queue);

    KdPrint(("echo: io Write %Iu bytes\n", Length));

    if (Length > ECHO_MAX_WRITE_LENGTH) {
        WdfRequestComplete(Request, STATUS_INVALID_BUFFER_SIZE);
        return;
    }

    status = WdfRequestRetrieveInputMemory(Request, &memory);
    if (!NT_SUCCESS(status)) {
        WdfVerifierDbgBreakPoint();
        WdfRequestComplete(Request, status);
        return;
    }

    data = (PUCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, Length, ECHO_POOL_TAG);
    if (data == NULL) {
        WdfRequestComplete(Request, STATUS_INSUFFICIENT_RESOURCES);
        return;
    }

    status = WdfMemoryCopyToBuffer(memory, 0, data, Length);
    if (!NT_SUCCESS(status)) {
        ExFreePoolWithTag(data, ECHO_POOL_TAG);
        WdfRequestComplete(Request, status);
        return;
    }

    EchoHoldRequest(context, Request, Length, data);
}

VOID
EchoEvtIoRead(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     Length
    )
/*++
    Return as much of the stored data as the request has room for.
--*/
{
    NTSTATUS       status;
    WDFMEMORY      memory;
    PQUEUE_CONTEXT context = EchoGetQueueContext(Queue);

    KdPrint(("echo: io Read %Iu bytes\n", Length));

    if (context->Data == NULL) {
        WdfRequestCompleteWithInformation(Request, STATUS_SUCCESS, 0);
        return;
    }
    if (Length > context->DataLength) {
        Length = context->DataLength;
    }

    status = WdfRequestRetrieveOutputMemory(Request, &memory);
    if (NT_SUCCESS(status)) {
        status = WdfMemoryCopyFromBuffer(memory, 0, context->Data, Length);
    }
    if (!NT_SUCCESS(status)) {
        WdfRequestComplete(Request, status);
        return;
    }

    EchoHoldRequest(context, Request, Length, NULL);
}

VOID
EchoEvtIoDeviceControl(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ size_t     OutputBufferLength,
    _In_ size_t     InputBufferLength,
    _In_ ULONG      IoControlCode
    )
{
    NTSTATUS status;
    PULONG   ticks;

    UNREFERENCED_PARAMETER(OutputBufferLength);
    UNREFERENCED_PARAMETER(InputBufferLength);

    if (IoControlCode != IOCTL_ECHO_SET_HOLD_TICKS) {
        WdfRequestComplete(Request, STATUS_INVALID_DEVICE_REQUEST);
        return;
    }
    status = WdfRequestRetrieveInputBuffer(Request, sizeof(ULONG), (PVOID *)&ticks, NULL);
    if (NT_SUCCESS(status)) {
        EchoGetQueueContext(Queue)->HoldTicks = *ticks;
        KdPrint(("echo: io HoldTicks %lu\n", *ticks));
    }
    WdfRequestComplete(Request, status);
}

VOID
EchoEvtIoStop(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request,
    _In_ ULONG      ActionFlags
    )
/*++
    The queue stops with the held request still the driver's. Leaving D0
    for a while (Suspend): keep it; the timer, stopped meanwhile, finishes
    it after the device is back. For good (Purge): cancel it now, unless
    the cancel routine already has it.
--*/
{
    PQUEUE_CONTEXT context = EchoGetQueueContext(Queue);

    if (ActionFlags & WdfRequestStopActionSuspend) {
        KdPrint(("echo: IoStop(Suspend)\n"));
        WdfRequestStopAcknowledge(Request, FALSE);
        return;
    }

    KdPrint(("echo: IoStop(Purge)\n"));
    if (WdfRequestUnmarkCancelable(Request) != STATUS_CANCELLED) {
        EchoFinishRequest(context, Request, STATUS_CANCELLED);
    }
}

VOID
EchoEvtIoResume(
    _In_ WDFQUEUE   Queue,
    _In_ WDFREQUEST Request
    )
{
    UNREFERENCED_PARAMETER(Queue);
    UNREFERENCED_PARAMETER(Request);

    KdPrint(("echo: IoResume\n"));
}
