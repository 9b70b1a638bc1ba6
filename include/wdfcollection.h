/* Collections of object handles (wdfcollection.h). At DISPATCH_LEVEL or
 * below; thread-safe. Default parent: the driver. */
#ifndef UWDF_WDFCOLLECTION_H
#define UWDF_WDFCOLLECTION_H

#include "wdfobject.h"

UWDF_BEGIN_DECLS

NTSTATUS WdfCollectionCreate(PWDF_OBJECT_ATTRIBUTES CollectionAttributes, WDFCOLLECTION *Collection);
ULONG WdfCollectionGetCount(WDFCOLLECTION Collection);
/* Appends Object and takes a reference on it, held until it is removed or
 * the collection deleted. STATUS_UNSUCCESSFUL if no memory. */
NTSTATUS WdfCollectionAdd(WDFCOLLECTION Collection, WDFOBJECT Object);
/* Remove the first occurrence / the item at Index (0-based; later items
 * move down) and drop its reference. An object not in the collection, or an
 * index past the end, changes nothing (a verifier break). */
VOID WdfCollectionRemove(WDFCOLLECTION Collection, WDFOBJECT Item);
VOID WdfCollectionRemoveItem(WDFCOLLECTION Collection, ULONG Index);
/* NULL when the index is past the end or the collection is empty. */
WDFOBJECT WdfCollectionGetItem(WDFCOLLECTION Collection, ULONG Index);
WDFOBJECT WdfCollectionGetFirstItem(WDFCOLLECTION Collection);
WDFOBJECT WdfCollectionGetLastItem(WDFCOLLECTION Collection);

UWDF_END_DECLS
#endif
