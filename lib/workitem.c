/* WDFWORKITEM: a deferred callback on the framework's worker pool at
 * PASSIVE_LEVEL (lib/deferred.c), optionally under its parent queue's or
 * device's synchronization lock. Each queueing holds a reference on the
 * work item, given back after its callback ran (or when a deletion takes
 * it off the queue). */
#include "device.h"
#include "ntrt.h"

struct uwdf_workitem {
    struct uwdf_object obj;
    PFN_WDF_WORKITEM callback;
    pthread_mutex_t *cb_lock; /* AutomaticSerialization, or NULL */
    struct uwdf_object *parent;
    struct uwdf_deferred work;
    atomic_bool running_down;
};

static struct uwdf_workitem *workitem_lookup(WDFWORKITEM handle, const char *ddi)
{
    return (struct uwdf_workitem *)uwdf_object_lookup(handle, UWDF_OBJ_WORKITEM, ddi);
}

static struct uwdf_workitem *workitem_of(struct uwdf_deferred *d)
{
    return uwdf_container_of(d, struct uwdf_workitem, work);
}

static void workitem_run(struct uwdf_deferred *d)
{
    struct uwdf_workitem *w = workitem_of(d);
    struct uwdf_device *dev = uwdf_object_find_device(&w->obj);
    struct uwdf_driver *prev = uwdf_driver_enter(dev ? dev->driver : NULL); /* WdfGetDriver's answer */
    if (w->cb_lock)
        pthread_mutex_lock(w->cb_lock);
    w->callback((WDFWORKITEM)w->obj.handle);
    if (w->cb_lock)
        pthread_mutex_unlock(w->cb_lock);
    uwdf_driver_enter(prev);
}

static void workitem_done(struct uwdf_deferred *d)
{
    uwdf_object_release(&workitem_of(d)->obj);
}

/* Deletion waits for a queued or running callback, except from the
 * callback itself (WDF allows WdfObjectDelete there) or above
 * PASSIVE_LEVEL, where a queued callback is dropped instead. */
static void workitem_dispose(struct uwdf_object *obj)
{
    struct uwdf_workitem *w = (struct uwdf_workitem *)obj;
    atomic_store(&w->running_down, true);
    uwdf_deferred_close(&w->work);
    if (!uwdf_deferred_running_here(&w->work) && uwdf_irql_check_passive("WdfObjectDelete(WDFWORKITEM)")) {
        uwdf_deferred_flush(&w->work);
        return;
    }
    if (uwdf_deferred_dequeue(&w->work))
        uwdf_object_release(&w->obj);
}

static const struct uwdf_object_ops workitem_ops = { .dispose = workitem_dispose };

NTSTATUS WdfWorkItemCreate(PWDF_WORKITEM_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes, WDFWORKITEM *WorkItem)
{
    if (!Attributes || !Attributes->ParentObject)
        return STATUS_WDF_PARENT_NOT_SPECIFIED;
    struct uwdf_object *parent = uwdf_object_lookup(Attributes->ParentObject, 0, "WdfWorkItemCreate");
    UWDF_REQUIRE_PARAM(Config, "WdfWorkItemCreate", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(WorkItem, "WdfWorkItemCreate", STATUS_INVALID_PARAMETER);
    *WorkItem = NULL;
    if (!parent)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_max(DISPATCH_LEVEL, "WdfWorkItemCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (Config->Size != sizeof(WDF_WORKITEM_CONFIG))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (!Config->EvtWorkItemFunc)
        return STATUS_INVALID_PARAMETER;
    NTSTATUS status = uwdf_attributes_validate_plain(Attributes, false);
    if (!NT_SUCCESS(status))
        return status;
    pthread_mutex_t *cb_lock;
    status = uwdf_deferred_callback_lock(parent, Config->AutomaticSerialization, UWDF_DEFER_PASSIVE, &cb_lock);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_object *obj;
    status = uwdf_object_create(sizeof(struct uwdf_workitem), UWDF_OBJ_WORKITEM, &workitem_ops, Attributes, NULL,
                                0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_workitem *w = (struct uwdf_workitem *)obj;
    w->callback = Config->EvtWorkItemFunc;
    w->cb_lock = cb_lock;
    w->parent = parent;
    uwdf_deferred_init(&w->work, UWDF_DEFER_PASSIVE, workitem_run, workitem_done);
    *WorkItem = (WDFWORKITEM)obj->handle;
    return STATUS_SUCCESS;
}

VOID WdfWorkItemEnqueue(WDFWORKITEM WorkItem)
{
    struct uwdf_workitem *w = workitem_lookup(WorkItem, "WdfWorkItemEnqueue");
    if (!w)
        return;
    uwdf_irql_check_max(DISPATCH_LEVEL, "WdfWorkItemEnqueue");
    if (atomic_load(&w->running_down)) {
        uwdf_verifier_break("WdfWorkItemEnqueue: WDFWORKITEM %p is being deleted", (void *)WorkItem);
        return;
    }
    /* The reference goes with the queueing; a work item already queued
     * (and not started) is left as it is. */
    uwdf_object_reference(&w->obj);
    if (!uwdf_deferred_queue(&w->work))
        uwdf_object_release(&w->obj);
}

VOID WdfWorkItemFlush(WDFWORKITEM WorkItem)
{
    struct uwdf_workitem *w = workitem_lookup(WorkItem, "WdfWorkItemFlush");
    if (!w)
        return;
    if (!uwdf_irql_check_passive("WdfWorkItemFlush"))
        return;
    if (uwdf_deferred_running_here(&w->work)) {
        uwdf_verifier_break("WdfWorkItemFlush from the callback of WDFWORKITEM %p would deadlock", (void *)WorkItem);
        return;
    }
    uwdf_deferred_flush(&w->work);
}

WDFOBJECT WdfWorkItemGetParentObject(WDFWORKITEM WorkItem)
{
    struct uwdf_workitem *w = workitem_lookup(WorkItem, "WdfWorkItemGetParentObject");
    return w ? w->parent->handle : NULL;
}
