/*++
    The queue, its timer and the read path. initguid.h comes after ntddk.h
    and before the shared header and wdmguid.h: from there on DEFINE_GUID
    defines, so this unit defines GUID_DEVINTERFACE_UWDF_SAMPLE as driver.c
    does (one of the two definitions is kept), and the wdmguid.h GUIDs.
--*/
#include <ntddk.h>
#include <initguid.h>
#include "sample.h"
#include <wdmguid.h>

#ifdef ALLOC_PRAGMA
#pragma alloc_text (PAGE, SampleQueueInitialize)
#endif

_Use_decl_annotations_
NTSTATUS
SampleQueueInitialize(
    WDFDEVICE Device
    )
{
    WDFQUEUE              queue;
    NTSTATUS              status;
    PQUEUE_CONTEXT        queueContext;
    WDF_IO_QUEUE_CONFIG   queueConfig;
    WDF_OBJECT_ATTRIBUTES queueAttributes;
    WDF_TIMER_CONFIG      timerConfig;
    WDF_OBJECT_ATTRIBUTES timerAttributes;
    WDF_WORKITEM_CONFIG   workItemConfig;
    WDF_OBJECT_ATTRIBUTES workItemAttributes;
    size_t                bytes;

    PAGED_CODE();

    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchSequential);
    queueConfig.EvtIoRead = SampleEvtIoRead;
    queueConfig.EvtIoDeviceControl = SampleEvtIoDeviceControl;

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&queueAttributes, QUEUE_CONTEXT);
    queueAttributes.SynchronizationScope = WdfSynchronizationScopeQueue;
    queueAttributes.EvtDestroyCallback = SampleEvtQueueContextDestroy;

    status = WdfIoQueueCreate(Device, &queueConfig, &queueAttributes, &queue);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    queueContext = QueueGetContext(queue);

    status = RtlSizeTMult(SAMPLE_BUFFER_CHARS, sizeof(CHAR), &bytes);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    queueContext->Text = (PCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, SAMPLE_POOL_TAG);
    if (queueContext->Text == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }

    status = WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &queueContext->Lock);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    WDF_TIMER_CONFIG_INIT_PERIODIC(&timerConfig, SampleEvtTimerFunc, SAMPLE_TIMER_PERIOD_MS);
    WDF_OBJECT_ATTRIBUTES_INIT(&timerAttributes);
    timerAttributes.ParentObject = queue;
    status = WdfTimerCreate(&timerConfig, &timerAttributes, &queueContext->Timer);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    WDF_WORKITEM_CONFIG_INIT(&workItemConfig, SampleEvtWorkItem);
    workItemConfig.AutomaticSerialization = FALSE;
    WDF_OBJECT_ATTRIBUTES_INIT(&workItemAttributes);
    workItemAttributes.ParentObject = queue;
    status = WdfWorkItemCreate(&workItemConfig, &workItemAttributes, &queueContext->WorkItem);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    WdfTimerStart(queueContext->Timer, WDF_REL_TIMEOUT_IN_MS(SAMPLE_TIMER_PERIOD_MS));
    return STATUS_SUCCESS;
}

_Use_decl_annotations_
VOID
SampleEvtQueueContextDestroy(
    WDFOBJECT Object
    )
{
    PQUEUE_CONTEXT queueContext = QueueGetContext(Object);

    if (queueContext->Text != NULL) {
        ExFreePoolWithTag(queueContext->Text, SAMPLE_POOL_TAG);
        queueContext->Text = NULL;
    }
    InterlockedIncrement(&SampleState.QueueContextsDestroyed);
}

_Use_decl_annotations_
VOID
SampleEvtTimerFunc(
    WDFTIMER Timer
    )
{
    PQUEUE_CONTEXT queueContext = QueueGetContext(WdfTimerGetParentObject(Timer));

    NT_ASSERT(KeGetCurrentIrql() == DISPATCH_LEVEL);
    WdfSpinLockAcquire(queueContext->Lock);
    queueContext->Ticks++;
    WdfSpinLockRelease(queueContext->Lock);
    WdfWorkItemEnqueue(queueContext->WorkItem);
}

_Use_decl_annotations_
VOID
SampleEvtIoRead(
    WDFQUEUE   Queue,
    WDFREQUEST Request,
    size_t     Length
    )
{
    NTSTATUS       status;
    PQUEUE_CONTEXT queueContext = QueueGetContext(Queue);
    PCHAR          buffer;
    size_t         bufferLength;
    size_t         textLength = 0;
    UNICODE_STRING guidText;

    UNREFERENCED_PARAMETER(Length);

    status = WdfRequestRetrieveOutputBuffer(Request, 1, &buffer, &bufferLength);
    if (!NT_SUCCESS(status)) {
        WdfRequestComplete(Request, status);
        return;
    }

    status = RtlStringFromGUID(&GUID_DEVINTERFACE_UWDF_SAMPLE, &guidText);
    if (!NT_SUCCESS(status)) {
        WdfRequestComplete(Request, status);
        return;
    }

    //
    // "%wZ": a UNICODE_STRING; the text may be cut short by the buffer.
    //
    status = RtlStringCchPrintfA(queueContext->Text, SAMPLE_BUFFER_CHARS, "%wZ %ws", &guidText, L"sample");
    RtlFreeUnicodeString(&guidText);
    if (NT_SUCCESS(status)) {
        status = RtlStringCchLengthA(queueContext->Text, SAMPLE_BUFFER_CHARS, &textLength);
    }
    if (!NT_SUCCESS(status)) {
        WdfRequestComplete(Request, status);
        return;
    }

    textLength = min(textLength, bufferLength);
    RtlCopyMemory(buffer, queueContext->Text, textLength);
    WdfRequestCompleteWithInformation(Request, STATUS_SUCCESS, textLength);
}

_Use_decl_annotations_
VOID
SampleEvtIoDeviceControl(
    WDFQUEUE   Queue,
    WDFREQUEST Request,
    size_t     OutputBufferLength,
    size_t     InputBufferLength,
    ULONG      IoControlCode
    )
{
    NTSTATUS       status = STATUS_INVALID_DEVICE_REQUEST;
    ULONG_PTR      information = 0;
    PQUEUE_CONTEXT queueContext = QueueGetContext(Queue);
    PULONG         ticks;

    UNREFERENCED_PARAMETER(OutputBufferLength);
    UNREFERENCED_PARAMETER(InputBufferLength);

    switch (IoControlCode) {
    case IOCTL_SAMPLE_TICKS:
        status = WdfRequestRetrieveOutputBuffer(Request, sizeof(ULONG), &ticks, NULL);
        if (NT_SUCCESS(status)) {
            WdfSpinLockAcquire(queueContext->Lock);
            *ticks = queueContext->Ticks;
            WdfSpinLockRelease(queueContext->Lock);
            information = sizeof(ULONG);
        }
        break;
    default:
        break;
    }
    WdfRequestCompleteWithInformation(Request, status, information);
}

const GUID *
SampleGuidSeenByQueueUnit(
    VOID
    )
{
    return &GUID_DEVINTERFACE_UWDF_SAMPLE;
}

const GUID *
SampleArrivalGuidSeenByQueueUnit(
    VOID
    )
{
    return &GUID_DEVICE_INTERFACE_ARRIVAL;
}
