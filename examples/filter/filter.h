/*++
    An upper filter driver: it sits above a disk's function driver and
    passes every request down unchanged, counting what passes. Reads and
    writes go down with a completion routine (to count the bytes that
    moved); IOCTLs go down send-and-forget. Its own IOCTL reports the
    counts.
--*/
#ifndef UWDF_FILTER_H
#define UWDF_FILTER_H

#include <ntddk.h>
#include <wdf.h>

#include "public.h"

typedef struct _FILTER_CONTEXT {
    FILTER_STATISTICS Statistics;   // updated with Interlocked*: the queue is parallel
} FILTER_CONTEXT, *PFILTER_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(FILTER_CONTEXT, FilterGetContext)

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD FilterEvtDeviceAdd;
EVT_WDF_IO_QUEUE_IO_READ FilterEvtIoRead;
EVT_WDF_IO_QUEUE_IO_WRITE FilterEvtIoWrite;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL FilterEvtIoDeviceControl;
EVT_WDF_REQUEST_COMPLETION_ROUTINE FilterEvtRequestCompletion;

#endif
