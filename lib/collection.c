/* WDFCOLLECTION: an ordered list of object handles, each holding a
 * reference on its object until it is removed or the collection goes. */
#include "ntrt.h"

#define COLLECTION_INITIAL 8

struct uwdf_collection {
    struct uwdf_object obj;
    pthread_mutex_t lock;
    struct uwdf_object **items;
    ULONG count;
    ULONG cap;
};

static struct uwdf_collection *collection_lookup(WDFCOLLECTION handle, const char *ddi)
{
    return (struct uwdf_collection *)uwdf_object_lookup(handle, UWDF_OBJ_COLLECTION, ddi);
}

/* Deleting the collection lets go of its items (as KMDF's Dispose does),
 * outside the lock: a released item may be destroyed, with its callbacks. */
static void collection_dispose(struct uwdf_object *obj)
{
    struct uwdf_collection *c = (struct uwdf_collection *)obj;
    pthread_mutex_lock(&c->lock);
    struct uwdf_object **items = c->items;
    ULONG count = c->count;
    c->items = NULL;
    c->count = c->cap = 0;
    pthread_mutex_unlock(&c->lock);
    for (ULONG i = 0; i < count; i++)
        uwdf_object_release(items[i]);
    uwdf_free(items);
}

/* Items added after the deletion (a driver bug, but the handle lives on
 * while referenced) are let go at the last reference. */
static void collection_destroy(struct uwdf_object *obj)
{
    struct uwdf_collection *c = (struct uwdf_collection *)obj;
    for (ULONG i = 0; i < c->count; i++)
        uwdf_object_release(c->items[i]);
    uwdf_free(c->items);
    pthread_mutex_destroy(&c->lock);
}

static const struct uwdf_object_ops collection_ops = {
    .dispose = collection_dispose,
    .destroy = collection_destroy,
};

NTSTATUS WdfCollectionCreate(PWDF_OBJECT_ATTRIBUTES CollectionAttributes, WDFCOLLECTION *Collection)
{
    struct uwdf_object *obj;
    UWDF_REQUIRE_PARAM(Collection, "WdfCollectionCreate", STATUS_INVALID_PARAMETER);
    *Collection = NULL;
    if (!uwdf_irql_check_max(DISPATCH_LEVEL, "WdfCollectionCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    NTSTATUS status = uwdf_attributes_validate_plain(CollectionAttributes, false);
    if (!NT_SUCCESS(status))
        return status;
    status = uwdf_object_create(sizeof(struct uwdf_collection), UWDF_OBJ_COLLECTION, &collection_ops,
                                CollectionAttributes, uwdf_driver_default_parent(), 0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    pthread_mutex_init(&((struct uwdf_collection *)obj)->lock, NULL);
    *Collection = (WDFCOLLECTION)obj->handle;
    return STATUS_SUCCESS;
}

ULONG WdfCollectionGetCount(WDFCOLLECTION Collection)
{
    struct uwdf_collection *c = collection_lookup(Collection, "WdfCollectionGetCount");
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    ULONG n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

NTSTATUS WdfCollectionAdd(WDFCOLLECTION Collection, WDFOBJECT Object)
{
    struct uwdf_collection *c = collection_lookup(Collection, "WdfCollectionAdd");
    struct uwdf_object *item = uwdf_object_lookup(Object, 0, "WdfCollectionAdd");
    if (!c || !item)
        return STATUS_INVALID_HANDLE;
    NTSTATUS status = STATUS_SUCCESS;
    pthread_mutex_lock(&c->lock);
    if (c->count == c->cap) {
        ULONG cap = c->cap ? c->cap * 2 : COLLECTION_INITIAL;
        struct uwdf_object **grown = cap > c->cap ? uwdf_alloc(sizeof(*grown) * cap) : NULL;
        if (!grown) {
            status = STATUS_UNSUCCESSFUL; /* KMDF's status for a failed Add */
        } else {
            if (c->count)
                memcpy(grown, c->items, sizeof(*grown) * c->count);
            uwdf_free(c->items);
            c->items = grown;
            c->cap = cap;
        }
    }
    if (NT_SUCCESS(status)) {
        uwdf_object_reference(item);
        c->items[c->count++] = item;
    }
    pthread_mutex_unlock(&c->lock);
    return status;
}

/* Take out item i (under the lock); the caller releases it. */
static struct uwdf_object *collection_take(struct uwdf_collection *c, ULONG i)
{
    struct uwdf_object *item = c->items[i];
    memmove(&c->items[i], &c->items[i + 1], sizeof(*c->items) * (c->count - i - 1));
    c->count--;
    return item;
}

VOID WdfCollectionRemoveItem(WDFCOLLECTION Collection, ULONG Index)
{
    struct uwdf_collection *c = collection_lookup(Collection, "WdfCollectionRemoveItem");
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    ULONG count = c->count;
    struct uwdf_object *item = Index < count ? collection_take(c, Index) : NULL;
    pthread_mutex_unlock(&c->lock);
    if (item)
        uwdf_object_release(item);
    else
        uwdf_verifier_break("WdfCollectionRemoveItem: index %u is not valid in WDFCOLLECTION %p (count %u)",
                            (unsigned)Index, (void *)Collection, (unsigned)count);
}

VOID WdfCollectionRemove(WDFCOLLECTION Collection, WDFOBJECT Item)
{
    struct uwdf_collection *c = collection_lookup(Collection, "WdfCollectionRemove");
    struct uwdf_object *obj = uwdf_object_lookup(Item, 0, "WdfCollectionRemove");
    struct uwdf_object *item = NULL;
    if (!c || !obj)
        return;
    pthread_mutex_lock(&c->lock);
    for (ULONG i = 0; i < c->count && !item; i++)
        if (c->items[i] == obj)
            item = collection_take(c, i);
    pthread_mutex_unlock(&c->lock);
    if (item)
        uwdf_object_release(item);
    else
        uwdf_verifier_break("WdfCollectionRemove: WDFOBJECT %p is not in WDFCOLLECTION %p", (void *)Item,
                            (void *)Collection);
}

static WDFOBJECT collection_item(WDFCOLLECTION Collection, ULONG Index, bool last, const char *ddi)
{
    struct uwdf_collection *c = collection_lookup(Collection, ddi);
    WDFOBJECT h = NULL;
    if (!c)
        return NULL;
    pthread_mutex_lock(&c->lock);
    if (last && c->count)
        Index = c->count - 1;
    if (Index < c->count)
        h = c->items[Index]->handle;
    pthread_mutex_unlock(&c->lock);
    return h;
}

WDFOBJECT WdfCollectionGetItem(WDFCOLLECTION Collection, ULONG Index)
{
    return collection_item(Collection, Index, false, "WdfCollectionGetItem");
}

WDFOBJECT WdfCollectionGetFirstItem(WDFCOLLECTION Collection)
{
    return collection_item(Collection, 0, false, "WdfCollectionGetFirstItem");
}

WDFOBJECT WdfCollectionGetLastItem(WDFCOLLECTION Collection)
{
    return collection_item(Collection, MAXULONG, true, "WdfCollectionGetLastItem");
}
