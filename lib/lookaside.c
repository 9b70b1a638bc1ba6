/* WDFLOOKASIDE: fixed-size, page-aligned buffers handed out as WDFMEMORY
 * objects and recycled when those objects are deleted. The memory objects
 * are children of the list, so the list outlives every buffer it lent. */
#include "runtime.h"
#include "device.h"
#include "memory.h"
#include "object.h"

/* Freed buffers kept for reuse; beyond this they go back to the allocator,
 * like an NT lookaside list's depth limit. */
#define LOOKASIDE_MAX_CACHED 64
#define LOOKASIDE_BUFFER_ALIGNMENT PAGE_SIZE
#define LOOKASIDE_ATTR_FLAGS (UWDF_ATTR_NO_SYNC_SCOPE | UWDF_ATTR_NO_EXEC_LEVEL)

struct uwdf_lookaside {
    struct uwdf_object obj;
    size_t buffer_size;
    bool has_mem_attrs;
    WDF_OBJECT_ATTRIBUTES mem_attrs; /* copied: the caller's may be on its stack */
    pthread_mutex_t lock;
    unsigned cached;
    void *cache[LOOKASIDE_MAX_CACHED];
};

static const struct uwdf_object_ops lookaside_ops;
static const struct uwdf_object_ops lookaside_memory_ops;
static void *lookaside_buffer_get(struct uwdf_lookaside *la);
static void lookaside_buffer_put(struct uwdf_lookaside *la, void *buffer);

/* ---- DDIs ---- */

NTSTATUS WdfLookasideListCreate(PWDF_OBJECT_ATTRIBUTES LookasideAttributes, size_t BufferSize,
                                POOL_TYPE PoolType, PWDF_OBJECT_ATTRIBUTES MemoryAttributes,
                                ULONG PoolTag, WDFLOOKASIDE *Lookaside)
{
    struct uwdf_object *obj;
    (void)PoolType; /* user space has one pool */
    (void)PoolTag;
    UWDF_REQUIRE_PARAM(Lookaside, "WdfLookasideListCreate", STATUS_INVALID_PARAMETER);
    *Lookaside = NULL;
    if (BufferSize == 0)
        return STATUS_INVALID_PARAMETER;
    /* Every memory object from the list is the list's child, so its
     * attributes may not name another parent. Checked now, not at each
     * WdfMemoryCreateFromLookaside. */
    NTSTATUS status = uwdf_attributes_validate(MemoryAttributes,
                                               LOOKASIDE_ATTR_FLAGS | UWDF_ATTR_PARENT_NOT_ALLOWED);
    if (!NT_SUCCESS(status))
        return status;
    status = uwdf_object_create(sizeof(struct uwdf_lookaside), UWDF_OBJ_LOOKASIDE, &lookaside_ops,
                                LookasideAttributes, uwdf_driver_default_parent(),
                                LOOKASIDE_ATTR_FLAGS, &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_lookaside *la = uwdf_container_of(obj, struct uwdf_lookaside, obj);
    la->buffer_size = BufferSize;
    if (MemoryAttributes) {
        la->has_mem_attrs = true;
        la->mem_attrs = *MemoryAttributes;
    }
    pthread_mutex_init(&la->lock, NULL);
    *Lookaside = (WDFLOOKASIDE)obj->handle;
    return STATUS_SUCCESS;
}

NTSTATUS WdfMemoryCreateFromLookaside(WDFLOOKASIDE Lookaside, WDFMEMORY *Memory)
{
    static const char ddi[] = "WdfMemoryCreateFromLookaside";
    struct uwdf_object *obj = uwdf_object_lookup((WDFOBJECT)Lookaside, UWDF_OBJ_LOOKASIDE, ddi);
    UWDF_REQUIRE_PARAM(Memory, ddi, STATUS_INVALID_PARAMETER);
    *Memory = NULL;
    if (!obj)
        return STATUS_INVALID_HANDLE;
    struct uwdf_lookaside *la = uwdf_container_of(obj, struct uwdf_lookaside, obj);

    void *buffer = lookaside_buffer_get(la);
    if (!buffer)
        return STATUS_INSUFFICIENT_RESOURCES;
    struct uwdf_object *mobj;
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_memory), UWDF_OBJ_MEMORY,
                                         &lookaside_memory_ops,
                                         la->has_mem_attrs ? &la->mem_attrs : NULL, &la->obj,
                                         LOOKASIDE_ATTR_FLAGS, &mobj);
    if (!NT_SUCCESS(status)) {
        lookaside_buffer_put(la, buffer);
        return status;
    }
    struct uwdf_memory *mem = uwdf_container_of(mobj, struct uwdf_memory, obj);
    mem->buffer = buffer;
    mem->size = la->buffer_size;
    mem->kind = UWDF_MEM_LOOKASIDE;
    mem->read_only = false;
    mem->lookaside = la;
    mobj->created_by = ddi;
    *Memory = (WDFMEMORY)mobj->handle;
    return STATUS_SUCCESS;
}

/* ---- buffers ---- */

static void *lookaside_buffer_get(struct uwdf_lookaside *la)
{
    void *buffer = NULL;
    pthread_mutex_lock(&la->lock);
    if (la->cached > 0)
        buffer = la->cache[--la->cached];
    pthread_mutex_unlock(&la->lock);
    if (!buffer)
        buffer = uwdf_alloc_aligned(LOOKASIDE_BUFFER_ALIGNMENT, la->buffer_size);
    return buffer;
}

static void lookaside_buffer_put(struct uwdf_lookaside *la, void *buffer)
{
    pthread_mutex_lock(&la->lock);
    if (la->cached < LOOKASIDE_MAX_CACHED) {
        la->cache[la->cached++] = buffer;
        buffer = NULL;
    }
    pthread_mutex_unlock(&la->lock);
    uwdf_free(buffer);
}

/* ---- objects ---- */

/* Runs before the memory object's parent reference on the list is dropped,
 * so the list is still there to take the buffer back. */
static void lookaside_memory_destroy(struct uwdf_object *obj)
{
    struct uwdf_memory *mem = uwdf_container_of(obj, struct uwdf_memory, obj);
    if (mem->buffer && mem->lookaside)
        lookaside_buffer_put(mem->lookaside, mem->buffer);
    mem->buffer = NULL;
}

/* Every memory object is gone by now (each held a reference on the list). */
static void lookaside_destroy(struct uwdf_object *obj)
{
    struct uwdf_lookaside *la = uwdf_container_of(obj, struct uwdf_lookaside, obj);
    while (la->cached > 0)
        uwdf_free(la->cache[--la->cached]);
    pthread_mutex_destroy(&la->lock);
}

static const struct uwdf_object_ops lookaside_ops = { .destroy = lookaside_destroy };
static const struct uwdf_object_ops lookaside_memory_ops = { .destroy = lookaside_memory_destroy };
