/* WDFMEMORY (lib/memory.c, lib/lookaside.c) and MDLs (lib/mdl.c). Not
 * installed. */
#ifndef UWDF_MEMORY_H
#define UWDF_MEMORY_H

#include <sys/uio.h>

#include "object.h"

enum uwdf_memory_kind {
    UWDF_MEM_FRAMEWORK = 1, /* WdfMemoryCreate: buffer freed with the object */
    UWDF_MEM_PREALLOCATED,  /* caller's buffer, never freed by us */
    UWDF_MEM_LOOKASIDE,     /* buffer returns to its lookaside list */
};

struct uwdf_lookaside;

struct uwdf_memory {
    struct uwdf_object obj;
    void *buffer;
    size_t size;
    uint8_t kind;
    bool read_only;
    struct uwdf_lookaside *lookaside;
};

_Static_assert(offsetof(struct uwdf_memory, obj) == 0, "lookup casts the object pointer");
static inline struct uwdf_memory *uwdf_memory_lookup(WDFMEMORY handle, const char *ddi)
{
    return (struct uwdf_memory *)uwdf_object_lookup((WDFOBJECT)handle, UWDF_OBJ_MEMORY, ddi); /* obj is first */
}
/* Validates WDFMEMORY_OFFSET against a buffer size: resolves (offset,
 * length) of the transfer. STATUS_INTEGER_OVERFLOW if out of range.
 * Inline: every format of a WDFMEMORY goes through it. */
static inline NTSTATUS uwdf_memory_resolve_offsets(const struct uwdf_memory *mem,
                                                   const WDFMEMORY_OFFSET *offsets, size_t *offset,
                                                   size_t *length)
{
    size_t off = 0, len = mem->size, end;
    if (offsets) {
        /* As IFxMemory::ValidateMemoryOffsets: the sum must not overflow and
         * must stay inside the buffer; both failures are INTEGER_OVERFLOW. */
        if (__builtin_add_overflow(offsets->BufferOffset, offsets->BufferLength, &end))
            return STATUS_INTEGER_OVERFLOW;
        if (end > mem->size)
            return STATUS_INTEGER_OVERFLOW;
        off = offsets->BufferOffset;
        /* BufferLength 0 means the rest of the buffer (possibly nothing). */
        len = offsets->BufferLength ? offsets->BufferLength : mem->size - off;
    }
    if (offset)
        *offset = off;
    if (length)
        *length = len;
    return STATUS_SUCCESS;
}

/* A chained MDL as iovecs, at most total bytes (0: the whole chain).
 * Returns the number of iovecs written, or -1 if more than max are needed. */
int uwdf_mdl_to_iovec(PMDL mdl, size_t total, struct iovec *iov, int max, size_t *bytes);

#endif
