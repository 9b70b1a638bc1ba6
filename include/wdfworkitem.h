/* Work items (wdfworkitem.h). Callbacks run at PASSIVE_LEVEL on framework
 * worker threads: a pool that grows when every worker is busy (up to 64),
 * so a work item may wait for another. */
#ifndef UWDF_WDFWORKITEM_H
#define UWDF_WDFWORKITEM_H

#include "wdfobject.h"

UWDF_BEGIN_DECLS

typedef VOID EVT_WDF_WORKITEM(WDFWORKITEM WorkItem);
typedef EVT_WDF_WORKITEM *PFN_WDF_WORKITEM;

typedef struct _WDF_WORKITEM_CONFIG {
    ULONG Size;
    PFN_WDF_WORKITEM EvtWorkItemFunc;
    BOOLEAN AutomaticSerialization;
} WDF_WORKITEM_CONFIG, *PWDF_WORKITEM_CONFIG;

FORCEINLINE VOID WDF_WORKITEM_CONFIG_INIT(PWDF_WORKITEM_CONFIG Config, PFN_WDF_WORKITEM EvtWorkItemFunc)
{
    __builtin_memset(Config, 0, sizeof(WDF_WORKITEM_CONFIG));
    Config->Size = sizeof(WDF_WORKITEM_CONFIG);
    Config->EvtWorkItemFunc = EvtWorkItemFunc;
    Config->AutomaticSerialization = TRUE;
}

/* At DISPATCH_LEVEL or below. Attributes->ParentObject is required
 * (STATUS_WDF_PARENT_NOT_SPECIFIED) and must reach a device
 * (STATUS_INVALID_DEVICE_REQUEST); STATUS_INFO_LENGTH_MISMATCH,
 * STATUS_INVALID_PARAMETER (no EvtWorkItemFunc),
 * STATUS_WDF_INCOMPATIBLE_EXECUTION_LEVEL (AutomaticSerialization under a
 * queue or device whose Device/Queue-scope callbacks run at dispatch
 * level), STATUS_WDF_EXECUTION_LEVEL_INVALID /
 * STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID (attributes),
 * STATUS_INSUFFICIENT_RESOURCES (also: no worker thread could start). */
NTSTATUS WdfWorkItemCreate(PWDF_WORKITEM_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes, WDFWORKITEM *WorkItem);
/* At DISPATCH_LEVEL or below. Work items run in the order they were
 * enqueued. Enqueueing one that is queued and not started yet does
 * nothing; it is marked not queued just before its callback runs, so an
 * enqueue during the callback runs it again (possibly at once, on another
 * worker). */
VOID WdfWorkItemEnqueue(WDFWORKITEM WorkItem);
/* PASSIVE_LEVEL: returns once the work item is neither queued nor running.
 * From its own callback it would deadlock: a verifier break, and it
 * returns at once. */
VOID WdfWorkItemFlush(WDFWORKITEM WorkItem);
WDFOBJECT WdfWorkItemGetParentObject(WDFWORKITEM WorkItem);

UWDF_END_DECLS
#endif
