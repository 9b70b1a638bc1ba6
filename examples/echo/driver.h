/*++
    The echo driver: a PnP function driver whose device keeps the data of
    the last write and returns it to reads. The device has one sequential
    queue; a read or write is not completed in its I/O callback but held,
    cancelable, until a periodic timer completes it. The timer runs while
    the device does self-managed I/O: it starts in
    EvtDeviceSelfManagedIoInit, stops in ...Suspend, starts again in
    ...Restart.
--*/
#ifndef UWDF_ECHO_DRIVER_H
#define UWDF_ECHO_DRIVER_H

#include <ntddk.h>
#include <wdf.h>

#include "public.h"

#define ECHO_POOL_TAG 'ohcE'

//
// The device's context: the timer, whose parent is the queue, so that its
// callback is serialized with the queue's callbacks.
//
typedef struct _DEVICE_CONTEXT {
    WDFTIMER Timer;
} DEVICE_CONTEXT, *PDEVICE_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(DEVICE_CONTEXT, EchoGetDeviceContext)

//
// The queue's context. Everything in it is touched only from the queue's
// callbacks, the cancel routine and the timer, which the queue's
// synchronization scope runs one at a time.
//
typedef struct _QUEUE_CONTEXT {
    PUCHAR     Data;           // the last completed write's bytes, or NULL
    ULONG      DataLength;
    WDFREQUEST HeldRequest;    // the request the timer completes, or NULL
    PUCHAR     HeldData;       // a held write's bytes: Data once it completes
    ULONG      HeldDataLength;
    ULONG_PTR  HeldInformation;
    ULONG      TicksLeft;      // periods before the held request completes
    ULONG      HoldTicks;      // IOCTL_ECHO_SET_HOLD_TICKS
} QUEUE_CONTEXT, *PQUEUE_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(QUEUE_CONTEXT, EchoGetQueueContext)

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD EchoEvtDeviceAdd;
EVT_WDF_DRIVER_UNLOAD EchoEvtDriverUnload;
EVT_WDF_OBJECT_CONTEXT_CLEANUP EchoEvtDriverContextCleanup;

EVT_WDF_DEVICE_D0_ENTRY EchoEvtDeviceD0Entry;
EVT_WDF_DEVICE_D0_EXIT EchoEvtDeviceD0Exit;
EVT_WDF_DEVICE_SELF_MANAGED_IO_INIT EchoEvtDeviceSelfManagedIoInit;
EVT_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND EchoEvtDeviceSelfManagedIoSuspend;
EVT_WDF_DEVICE_SELF_MANAGED_IO_RESTART EchoEvtDeviceSelfManagedIoRestart;
EVT_WDF_DEVICE_SELF_MANAGED_IO_FLUSH EchoEvtDeviceSelfManagedIoFlush;
EVT_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP EchoEvtDeviceSelfManagedIoCleanup;

EVT_WDF_IO_QUEUE_IO_READ EchoEvtIoRead;
EVT_WDF_IO_QUEUE_IO_WRITE EchoEvtIoWrite;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL EchoEvtIoDeviceControl;
EVT_WDF_IO_QUEUE_IO_STOP EchoEvtIoStop;
EVT_WDF_IO_QUEUE_IO_RESUME EchoEvtIoResume;
EVT_WDF_OBJECT_CONTEXT_DESTROY EchoEvtQueueContextDestroy;
EVT_WDF_REQUEST_CANCEL EchoEvtRequestCancel;
EVT_WDF_TIMER EchoEvtTimerFunc;

NTSTATUS
EchoQueueInitialize(
    _In_ WDFDEVICE Device
    );

#endif
