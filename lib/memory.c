/* WDFMEMORY: framework-allocated, preallocated (caller's buffer) and
 * lookaside memory objects, their buffer accessors and copy helpers, and the
 * WDFMEMORY_OFFSET validation that the request formatting code shares. */
#include "runtime.h"
#include "device.h"
#include "memory.h"
#include "object.h"

/* Framework buffers are page-aligned so a WDFMEMORY can back an O_DIRECT
 * transfer without a bounce buffer (KMDF page-aligns buffers >= PAGE_SIZE;
 * the port does it for every size). */
#define MEMORY_BUFFER_ALIGNMENT PAGE_SIZE

/* WDF memory objects take neither an execution level nor a synchronization
 * scope (FxValidateObjectAttributes without the *_ALLOWED options). */
#define MEMORY_ATTR_FLAGS (UWDF_ATTR_NO_SYNC_SCOPE | UWDF_ATTR_NO_EXEC_LEVEL)

static NTSTATUS memory_create_object(PWDF_OBJECT_ATTRIBUTES attrs, void *buffer, size_t size,
                                     enum uwdf_memory_kind kind, struct uwdf_memory **out);

/* ---- DDIs ---- */

NTSTATUS WdfMemoryCreate(PWDF_OBJECT_ATTRIBUTES Attributes, POOL_TYPE PoolType, ULONG PoolTag,
                         size_t BufferSize, WDFMEMORY *Memory, PVOID *Buffer)
{
    struct uwdf_memory *mem;
    (void)PoolType; /* user space has one pool */
    (void)PoolTag;
    UWDF_REQUIRE_PARAM(Memory, "WdfMemoryCreate", STATUS_INVALID_PARAMETER);
    *Memory = NULL;
    if (Buffer)
        *Buffer = NULL;
    if (BufferSize == 0)
        return STATUS_INVALID_PARAMETER;
    /* Validate before allocating so an attribute error costs nothing and a
     * failed create never runs the caller's cleanup callbacks. */
    NTSTATUS status = uwdf_attributes_validate(Attributes, MEMORY_ATTR_FLAGS);
    if (!NT_SUCCESS(status))
        return status;

    void *buffer = uwdf_alloc_aligned(MEMORY_BUFFER_ALIGNMENT, BufferSize);
    if (!buffer)
        return STATUS_INSUFFICIENT_RESOURCES;
    status = memory_create_object(Attributes, buffer, BufferSize, UWDF_MEM_FRAMEWORK, &mem);
    if (!NT_SUCCESS(status)) {
        uwdf_free(buffer);
        return status;
    }
    *Memory = (WDFMEMORY)mem->obj.handle;
    if (Buffer)
        *Buffer = buffer;
    return STATUS_SUCCESS;
}

NTSTATUS WdfMemoryCreatePreallocated(PWDF_OBJECT_ATTRIBUTES Attributes, PVOID Buffer,
                                     size_t BufferSize, WDFMEMORY *Memory)
{
    struct uwdf_memory *mem;
    UWDF_REQUIRE_PARAM(Memory, "WdfMemoryCreatePreallocated", STATUS_INVALID_PARAMETER);
    *Memory = NULL;
    if (!Buffer || BufferSize == 0)
        return STATUS_INVALID_PARAMETER;
    NTSTATUS status = memory_create_object(Attributes, Buffer, BufferSize, UWDF_MEM_PREALLOCATED,
                                           &mem);
    if (NT_SUCCESS(status))
        *Memory = (WDFMEMORY)mem->obj.handle;
    return status;
}

NTSTATUS WdfMemoryAssignBuffer(WDFMEMORY Memory, PVOID Buffer, size_t BufferSize)
{
    struct uwdf_memory *mem = uwdf_memory_lookup(Memory, "WdfMemoryAssignBuffer");
    if (!mem)
        return STATUS_INVALID_HANDLE;
    /* WDF resolves the handle as a preallocated-memory type here, so any
     * other memory object is a handle-type bug check, not a status. */
    if (mem->kind != UWDF_MEM_PREALLOCATED) {
        uwdf_bugcheck(WDF_INVALID_HANDLE, (ULONG_PTR)Memory, UWDF_OBJ_MEMORY, mem->kind,
                      "WdfMemoryAssignBuffer: WDFMEMORY %p was not created by "
                      "WdfMemoryCreatePreallocated (its buffer belongs to the %s)",
                      (void *)Memory,
                      mem->kind == UWDF_MEM_LOOKASIDE ? "lookaside list" : "framework");
        return STATUS_INVALID_PARAMETER;
    }
    if (!Buffer || BufferSize == 0)
        return STATUS_INVALID_PARAMETER;
    /* The previous buffer is the caller's; it is not freed. */
    mem->buffer = Buffer;
    mem->size = BufferSize;
    return STATUS_SUCCESS;
}

PVOID WdfMemoryGetBuffer(WDFMEMORY Memory, size_t *BufferSize)
{
    struct uwdf_memory *mem = uwdf_memory_lookup(Memory, "WdfMemoryGetBuffer");
    if (!mem) {
        if (BufferSize)
            *BufferSize = 0;
        return NULL;
    }
    if (BufferSize)
        *BufferSize = mem->size;
    return mem->buffer;
}

NTSTATUS WdfMemoryCopyToBuffer(WDFMEMORY SourceMemory, size_t SourceOffset, PVOID Buffer,
                               size_t NumBytesToCopyTo)
{
    struct uwdf_memory *mem = uwdf_memory_lookup(SourceMemory, "WdfMemoryCopyToBuffer");
    if (!mem)
        return STATUS_INVALID_HANDLE;
    if (!Buffer || NumBytesToCopyTo == 0)
        return STATUS_INVALID_PARAMETER;
    if (SourceOffset >= mem->size || NumBytesToCopyTo > mem->size - SourceOffset)
        return STATUS_BUFFER_TOO_SMALL;
    memcpy(Buffer, (const char *)mem->buffer + SourceOffset, NumBytesToCopyTo);
    return STATUS_SUCCESS;
}

NTSTATUS WdfMemoryCopyFromBuffer(WDFMEMORY DestinationMemory, size_t DestinationOffset,
                                 PVOID Buffer, size_t NumBytesToCopyFrom)
{
    struct uwdf_memory *mem = uwdf_memory_lookup(DestinationMemory, "WdfMemoryCopyFromBuffer");
    if (!mem)
        return STATUS_INVALID_HANDLE;
    if (!Buffer || NumBytesToCopyFrom == 0)
        return STATUS_INVALID_PARAMETER;
    /* e.g. the input memory of a write request: the driver may read it only. */
    if (mem->read_only)
        return STATUS_ACCESS_VIOLATION;
    if (DestinationOffset >= mem->size || NumBytesToCopyFrom > mem->size - DestinationOffset)
        return STATUS_INVALID_BUFFER_SIZE;
    memcpy((char *)mem->buffer + DestinationOffset, Buffer, NumBytesToCopyFrom);
    return STATUS_SUCCESS;
}

/* ---- object ---- */

static void memory_destroy(struct uwdf_object *obj)
{
    struct uwdf_memory *mem = uwdf_container_of(obj, struct uwdf_memory, obj);
    if (mem->kind == UWDF_MEM_FRAMEWORK)
        uwdf_free(mem->buffer);
    mem->buffer = NULL;
}

static const struct uwdf_object_ops memory_ops = { .destroy = memory_destroy };

static NTSTATUS memory_create_object(PWDF_OBJECT_ATTRIBUTES attrs, void *buffer, size_t size,
                                     enum uwdf_memory_kind kind, struct uwdf_memory **out)
{
    struct uwdf_object *obj;
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_memory), UWDF_OBJ_MEMORY, &memory_ops,
                                         attrs, uwdf_driver_default_parent(), MEMORY_ATTR_FLAGS,
                                         &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_memory *mem = uwdf_container_of(obj, struct uwdf_memory, obj);
    mem->buffer = buffer;
    mem->size = size;
    mem->kind = (uint8_t)kind;
    mem->read_only = false;
    mem->lookaside = NULL;
    mem->obj.created_by = kind == UWDF_MEM_FRAMEWORK ? "WdfMemoryCreate" : "WdfMemoryCreatePreallocated";
    *out = mem;
    return STATUS_SUCCESS;
}
