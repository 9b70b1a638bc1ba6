/*++
    The control device and its work item. No INITGUID: the GUIDs here are
    declarations, bound to a unit that defines them.
--*/
#include "sample.h"
#include <wdmguid.h>

//
// Every callback role the headers declare, usable as a declaration.
//
EVT_WDF_DRIVER_DEVICE_ADD                          RoleDriverDeviceAdd;
EVT_WDF_DRIVER_UNLOAD                              RoleDriverUnload;
EVT_WDF_IO_ALLOCATE_REQUEST_RESOURCES              RoleAllocateRequestResources;
EVT_WDF_IO_ALLOCATE_RESOURCES_FOR_RESERVED_REQUEST RoleAllocateResourcesForReservedRequest;
EVT_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE              RoleIoCanceledOnQueue;
EVT_WDF_IO_QUEUE_IO_DEFAULT                        RoleIoDefault;
EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL                 RoleIoDeviceControl;
EVT_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL        RoleIoInternalDeviceControl;
EVT_WDF_IO_QUEUE_IO_READ                           RoleIoRead;
EVT_WDF_IO_QUEUE_IO_RESUME                         RoleIoResume;
EVT_WDF_IO_QUEUE_IO_STOP                           RoleIoStop;
EVT_WDF_IO_QUEUE_IO_WRITE                          RoleIoWrite;
EVT_WDF_IO_QUEUE_STATE                             RoleIoQueueState;
EVT_WDF_IO_TARGET_QUERY_REMOVE                     RoleTargetQueryRemove;
EVT_WDF_IO_TARGET_REMOVE_CANCELED                  RoleTargetRemoveCanceled;
EVT_WDF_IO_TARGET_REMOVE_COMPLETE                  RoleTargetRemoveComplete;
EVT_WDF_IO_WDM_IRP_FOR_FORWARD_PROGRESS            RoleIrpForForwardProgress;
EVT_WDF_OBJECT_CONTEXT_CLEANUP                     RoleObjectContextCleanup;
EVT_WDF_OBJECT_CONTEXT_DESTROY                     RoleObjectContextDestroy;
EVT_WDF_REQUEST_CANCEL                             RoleRequestCancel;
EVT_WDF_REQUEST_COMPLETION_ROUTINE                 RoleRequestCompletionRoutine;
EVT_WDF_TIMER                                      RoleTimer;
EVT_WDF_WORKITEM                                   RoleWorkItem;
EVT_WDF_DEVICE_CONTEXT_CLEANUP                     RoleDeviceContextCleanup;
EVT_WDF_DEVICE_CONTEXT_DESTROY                     RoleDeviceContextDestroy;
EVT_WDF_IO_QUEUE_CONTEXT_CLEANUP_CALLBACK          RoleQueueContextCleanup;
EVT_WDF_IO_QUEUE_CONTEXT_DESTROY_CALLBACK          RoleQueueContextDestroy;
EVT_WDF_FILE_CONTEXT_CLEANUP_CALLBACK              RoleFileContextCleanup;
EVT_WDF_FILE_CONTEXT_DESTROY_CALLBACK              RoleFileContextDestroy;
DRIVER_INITIALIZE                                  RoleDriverInitialize;
DRIVER_UNLOAD                                      RoleWdmDriverUnload;
__drv_dispatchType(IRP_MJ_CREATE)
__drv_dispatchType(IRP_MJ_CLOSE)
DRIVER_DISPATCH                                    RoleDispatchCreateClose;
IO_COMPLETION_ROUTINE                              RoleIoCompletion;
KDEFERRED_ROUTINE                                  RoleDeferredRoutine;

#pragma warning(push)
#pragma warning(disable:4201)   // nameless struct/union
typedef struct _SAMPLE_PAIR {
    union {
        ULONG  Both;
        struct {
            USHORT Low;
            USHORT High;
        };
    };
} SAMPLE_PAIR;
#pragma warning(pop)

#pragma code_seg("PAGE")

_Use_decl_annotations_
NTSTATUS
SampleControlDeviceCreate(
    WDFDRIVER Driver
    )
{
    NTSTATUS              status;
    PWDFDEVICE_INIT       deviceInit;
    WDFDEVICE             device;
    WDF_OBJECT_ATTRIBUTES attributes;
    PCONTROL_CONTEXT      controlContext;
    WDFMEMORY             unmapped;
    DECLARE_CONST_UNICODE_STRING(deviceName, SAMPLE_DEVICE_NAME);

    PAGED_CODE();

    deviceInit = WdfControlDeviceInitAllocate(Driver, &SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_RW_RES_R);
    if (deviceInit == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }

    status = WdfDeviceInitAssignName(deviceInit, &deviceName);
    if (!NT_SUCCESS(status)) {
        WdfDeviceInitFree(deviceInit);
        return status;
    }
    WdfDeviceInitSetIoType(deviceInit, WdfDeviceIoBuffered);

    status = WdfDeviceCreate(&deviceInit, WDF_NO_OBJECT_ATTRIBUTES, &device);
    if (!NT_SUCCESS(status)) {
        WdfDeviceInitFree(deviceInit);
        return status;
    }

    //
    // Typed out-pointers where the DDIs take a PVOID *, as Windows code
    // passes them.
    //
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, CONTROL_CONTEXT);
    status = WdfObjectAllocateContext(device, &attributes, &controlContext);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
    attributes.ParentObject = device;
    status = WdfMemoryCreate(&attributes, NonPagedPoolNx, SAMPLE_POOL_TAG, PAGE_SIZE,
                             &controlContext->Scratch, &controlContext->ScratchBuffer);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    RtlZeroMemory(controlContext->ScratchBuffer, PAGE_SIZE);
    status = WdfMemoryCreate(&attributes, NonPagedPoolNx, SAMPLE_POOL_TAG, PAGE_SIZE, &unmapped, NULL);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    status = SampleQueueInitialize(device);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    WdfControlFinishInitializing(device);
    return STATUS_SUCCESS;
}

_Use_decl_annotations_
VOID
SampleEvtWorkItem(
    WDFWORKITEM WorkItem
    )
{
    PQUEUE_CONTEXT queueContext;
    SAMPLE_PAIR    pair;

    PAGED_CODE();
    InterlockedExchange(&SampleState.PagedCodeRanAtPassive, KeGetCurrentIrql() == PASSIVE_LEVEL);

    pair.Both = 0;
    pair.High = 1;
    ASSERT(pair.Both != 0);

    KdPrint(("KmdfSample: work item %p, %I64d %Iu %hs %ls\n", WorkItem, (LONGLONG)-1, (SIZE_T)2, "narrow", L"wide"));
    #pragma warning(suppress: 28118)
    __pragma(warning(suppress: 6001))
    queueContext = QueueGetContext(WdfWorkItemGetParentObject(WorkItem));
    InterlockedIncrement(&queueContext->WorkItemRuns);
}

#pragma code_seg()

const GUID *
SampleGuidSeenByDeviceUnit(
    VOID
    )
{
    return &GUID_DEVINTERFACE_UWDF_SAMPLE;
}

const GUID *
SampleArrivalGuidSeenByDeviceUnit(
    VOID
    )
{
    return &GUID_DEVICE_INTERFACE_ARRIVAL;
}
