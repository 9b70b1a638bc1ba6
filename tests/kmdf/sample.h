/*++
    A small control-device driver written the way KMDF drivers are written
    (SAL annotations, role typedefs, alloc_text pragmas, PAGED_CODE, KdPrint,
    DEFINE_GUID in a shared header), built with only -Wall -Wextra -Werror:
    the compile test of the port's headers. tests/test_kmdf_style.c loads
    and drives it.

    driver.c defines INITGUID before its includes, device.c includes the
    header plainly (the GUIDs are declared), queue.c includes initguid.h
    after ntddk.h: the GUID below is defined in two units and declared in
    one, and the program sees one GUID at one address.
--*/
#pragma once
#ifndef UWDF_KMDF_SAMPLE_H
#define UWDF_KMDF_SAMPLE_H

#include <ntddk.h>
#include <wdf.h>
#include <wdmsec.h>
#define NTSTRSAFE_LIB
#include <ntstrsafe.h>
#include <ntintsafe.h>

// {6E3C5D5A-9A44-4C43-A0B5-2B7E4F0C1D11}
DEFINE_GUID(GUID_DEVINTERFACE_UWDF_SAMPLE,
    0x6e3c5d5a, 0x9a44, 0x4c43, 0xa0, 0xb5, 0x2b, 0x7e, 0x4f, 0x0c, 0x1d, 0x11);

#define SAMPLE_DEVICE_NAME      L"\\Device\\UwdfKmdfSample"
#define SAMPLE_POOL_TAG         'pmaS'
#define SAMPLE_TIMER_PERIOD_MS  5
#define SAMPLE_BUFFER_CHARS     128
#define IOCTL_SAMPLE_TICKS \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0x900, METHOD_BUFFERED, FILE_READ_ACCESS)

typedef struct _QUEUE_CONTEXT {
    WDFTIMER     Timer;
    WDFSPINLOCK  Lock;
    ULONG        Ticks;
    PCHAR        Text;
    WDFWORKITEM  WorkItem;
    volatile LONG WorkItemRuns;
} QUEUE_CONTEXT, *PQUEUE_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(QUEUE_CONTEXT, QueueGetContext)

typedef struct _CONTROL_CONTEXT {
    WDFMEMORY Scratch;
    PUCHAR    ScratchBuffer;
} CONTROL_CONTEXT, *PCONTROL_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(CONTROL_CONTEXT, ControlGetContext)

typedef struct _SAMPLE_DRIVER_STATE {
    BOOLEAN CleanedUp;
    volatile LONG PagedCodeRanAtPassive;
    LONG    QueueContextsDestroyed;
} SAMPLE_DRIVER_STATE, *PSAMPLE_DRIVER_STATE;

extern SAMPLE_DRIVER_STATE SampleState;

//
// Role declarations, as Code Analysis wants them.
//
DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD SampleEvtDeviceAdd;
EVT_WDF_OBJECT_CONTEXT_CLEANUP SampleEvtDriverContextCleanup;
EVT_WDF_DRIVER_UNLOAD SampleEvtDriverUnload;
EVT_WDF_IO_QUEUE_IO_READ SampleEvtIoRead;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL SampleEvtIoDeviceControl;
EVT_WDF_IO_QUEUE_CONTEXT_DESTROY_CALLBACK SampleEvtQueueContextDestroy;
EVT_WDF_TIMER SampleEvtTimerFunc;
EVT_WDF_WORKITEM SampleEvtWorkItem;

_IRQL_requires_max_(PASSIVE_LEVEL)
_Must_inspect_result_
NTSTATUS
SampleControlDeviceCreate(
    _In_ WDFDRIVER Driver
    );

_IRQL_requires_max_(PASSIVE_LEVEL)
NTSTATUS
SampleQueueInitialize(
    _In_ WDFDEVICE Device
    );

//
// For the test program: the GUID as each unit sees it.
//
const GUID *SampleGuidSeenByDriverUnit(VOID);
const GUID *SampleGuidSeenByDeviceUnit(VOID);
const GUID *SampleGuidSeenByQueueUnit(VOID);
const GUID *SampleArrivalGuidSeenByDeviceUnit(VOID);
const GUID *SampleArrivalGuidSeenByQueueUnit(VOID);

#endif // UWDF_KMDF_SAMPLE_H
