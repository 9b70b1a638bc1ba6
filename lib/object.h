/* The object model (lib/object.c): typed objects with contexts, the
 * parent/child tree, references, deletion, and the handle table every DDI
 * looks its handles up in. Not installed. */
#ifndef UWDF_OBJECT_H
#define UWDF_OBJECT_H

#include "runtime.h"

enum uwdf_object_type {
    UWDF_OBJ_GENERIC = 1,
    UWDF_OBJ_DRIVER,
    UWDF_OBJ_DEVICE,
    UWDF_OBJ_QUEUE,
    UWDF_OBJ_REQUEST,
    UWDF_OBJ_IOTARGET,
    UWDF_OBJ_MEMORY,
    UWDF_OBJ_LOOKASIDE,
    UWDF_OBJ_SPINLOCK,
    UWDF_OBJ_WAITLOCK,
    UWDF_OBJ_COLLECTION,
    UWDF_OBJ_STRING,
    UWDF_OBJ_TIMER,
    UWDF_OBJ_WORKITEM,
    UWDF_OBJ_FILEOBJECT,
    UWDF_OBJ_TYPE_COUNT
};

enum uwdf_object_state {
    UWDF_OBJECT_ALIVE = 0,
    UWDF_OBJECT_DELETING,  /* WdfObjectDelete running: children, dispose, cleanup */
    UWDF_OBJECT_DELETED,   /* cleaned up; waiting for the last reference */
};

struct uwdf_object;

struct uwdf_object_ops {
    /* Object-specific teardown at delete, after the children are gone and
     * before EvtCleanupCallback (e.g. a target closes and waits for I/O). */
    void (*dispose)(struct uwdf_object *obj);
    /* Release what the object owns, after EvtDestroyCallback; the framework
     * frees the object's own allocation afterwards. */
    void (*destroy)(struct uwdf_object *obj);
    /* Optional: clear the size bytes of a recycled object's memory to what
     * a zeroed allocation would be for everything its type reads before it
     * writes (uwdf_object_reuse); without it, all of them are zeroed. */
    void (*recycle_clear)(struct uwdf_object *obj, size_t size);
    /* Optional, with recycle_clear: free what a recycled object's memory
     * keeps across reuses, when the memory itself is freed. */
    void (*free_kept)(struct uwdf_object *obj);
};

struct uwdf_context {
    struct uwdf_context *next;
    PCWDF_OBJECT_CONTEXT_TYPE_INFO type;
    struct uwdf_object *owner;
    PFN_WDF_OBJECT_CONTEXT_CLEANUP cleanup;
    PFN_WDF_OBJECT_CONTEXT_DESTROY destroy;
    bool inline_alloc; /* part of the object's own allocation */
    size_t size;       /* of data */
    _Alignas(16) unsigned char data[];
};

struct uwdf_object {
    uint32_t type;
    atomic_int state;
    atomic_long refs;
    WDFOBJECT handle;
    const struct uwdf_object_ops *ops;
    struct uwdf_object *parent;
    /* children, guarded by the global object tree lock */
    struct uwdf_object *first_child;
    struct uwdf_object *next_sibling;
    struct uwdf_object *prev_sibling;
    struct uwdf_context *contexts;
    /* Every object has this header, so the small fields share one word:
     * a WDF_EXECUTION_LEVEL and a WDF_SYNCHRONIZATION_SCOPE (validated,
     * small values) and the flags. */
    uint8_t exec_level;
    uint8_t sync_scope;
    bool no_delete;  /* the driver may not WdfObjectDelete it */
    bool in_parent_list;
    /* A child was ever linked (set before the create reads state). */
    atomic_bool has_children;
    /* An object that lives inside another one (a request's retrieved
     * buffers): references go to the owner, and its handle is registered
     * only while it is valid. */
    struct uwdf_object *embed_owner;
    /* The DDI that created it, for the verifier's report at driver unload
     * (NULL: the framework's own, never reported). */
    const char *created_by;
    /* Non-zero: the object's size; its memory is kept for the next one
     * (uwdf_object_reuse) on the thread that destroys it. */
    size_t recycle_size;
};

/* Attribute validation options for uwdf_object_create. */
#define UWDF_ATTR_PARENT_NOT_ALLOWED 0x1u
#define UWDF_ATTR_NO_SYNC_SCOPE      0x2u
#define UWDF_ATTR_NO_EXEC_LEVEL      0x4u

NTSTATUS uwdf_attributes_validate(PWDF_OBJECT_ATTRIBUTES attrs, unsigned flags);
/* Allocates obj_size bytes (the typed object, struct uwdf_object first) plus
 * the context from attrs in one allocation, registers a handle and links the
 * object under attrs->ParentObject or default_parent. */
NTSTATUS uwdf_object_create(size_t obj_size, enum uwdf_object_type type,
                            const struct uwdf_object_ops *ops, PWDF_OBJECT_ATTRIBUTES attrs,
                            struct uwdf_object *default_parent, unsigned attr_flags,
                            struct uwdf_object **out);
/* Recycled objects: an object whose type sets recycle_size (its obj_size)
 * leaves its memory, when it is destroyed on a thread, to the next one
 * uwdf_object_reuse makes there (if it has no parent and no context but
 * one inside its allocation). uwdf_object_reuse: an object as
 * uwdf_object_create makes one with no parent, in such memory with the
 * same size and context layout, with a new handle; NULL if there is none
 * (create one). */
struct uwdf_object *uwdf_object_reuse(size_t obj_size, enum uwdf_object_type type,
                                      const struct uwdf_object_ops *ops, PWDF_OBJECT_ATTRIBUTES attrs);
void uwdf_object_reference(struct uwdf_object *obj);
void uwdf_object_release(struct uwdf_object *obj);
void uwdf_object_delete(struct uwdf_object *obj);
/* Undo a create that failed after uwdf_object_create: no driver callbacks. */
void uwdf_object_delete_failed_create(struct uwdf_object *obj);
/* obj's live descendants of a type, referenced, into out (at most max);
 * returns how many there are (more than max: the rest not referenced). */
size_t uwdf_object_collect(struct uwdf_object *obj, uint32_t type, struct uwdf_object **out, size_t max);
/* Handle -> object with type and liveness check; bug-checks and returns
 * NULL on a NULL, stale, garbage or wrong-type handle. type 0 = any. */
struct uwdf_object *uwdf_object_lookup_slow(WDFOBJECT handle, uint32_t type, const char *ddi);

/* The handle table (object.c), read inline: every DDI looks up one to three
 * handles, so the common case is a few loads with no call. A handle is
 * (generation << UWDF_HANDLE_INDEX_BITS | index); slots are never freed. */
#define UWDF_HANDLE_INDEX_BITS 24
#define UWDF_HANDLE_CHUNK_BITS 12
struct uwdf_handle_slot {
    _Atomic(struct uwdf_object *) obj;
    atomic_ullong gen;
    uint32_t next_free;
};
/* Not hidden: the white-box tests include this header too. */
extern struct uwdf_handle_slot *_Atomic uwdf_handle_chunks[1u << (UWDF_HANDLE_INDEX_BITS - UWDF_HANDLE_CHUNK_BITS)];

/* The slot of a handle index (index 0 and chunks not allocated yet: an
 * empty slot, obj NULL). */
static inline struct uwdf_handle_slot *uwdf_handle_slot(uint32_t index)
{
    struct uwdf_handle_slot *chunk =
        atomic_load_explicit(&uwdf_handle_chunks[index >> UWDF_HANDLE_CHUNK_BITS], memory_order_acquire);
    return &chunk[index & ((1u << UWDF_HANDLE_CHUNK_BITS) - 1)];
}

/* Index 0 (the NULL handle) and unallocated chunks find obj NULL; a handle
 * with the top bit set (generations have 39 bits) cannot match the slot's
 * generation while its obj is set. So a live object with the right
 * generation and type is the whole test. uwdf_object_peek: the live object,
 * or NULL without a bug check (a handle kept that may be stale). */
static inline struct uwdf_object *uwdf_object_peek(WDFOBJECT handle, uint32_t type)
{
    uintptr_t v = (uintptr_t)handle;
    struct uwdf_handle_slot *slot = uwdf_handle_slot((uint32_t)(v & ((1u << UWDF_HANDLE_INDEX_BITS) - 1)));
    struct uwdf_object *obj = atomic_load_explicit(&slot->obj, memory_order_acquire);
    if (UWDF_LIKELY(obj != NULL &&
                    atomic_load_explicit(&slot->gen, memory_order_acquire) == (v >> UWDF_HANDLE_INDEX_BITS) &&
                    (type == 0 || obj->type == type)))
        return obj;
    return NULL;
}
static inline struct uwdf_object *uwdf_object_lookup(WDFOBJECT handle, uint32_t type, const char *ddi)
{
    struct uwdf_object *obj = uwdf_object_peek(handle, type);
    if (UWDF_LIKELY(obj != NULL))
        return obj;
    return uwdf_object_lookup_slow(handle, type, ddi);
}
const char *uwdf_object_type_name(uint32_t type);
/* Live-object accounting (lib/object.c): every registered handle counts
 * for its type, so a type added to enum uwdf_object_type is counted with no
 * further code. Things that are not WDF objects count here too. */
enum uwdf_counted {
    UWDF_COUNTED_FLT_CALLBACK_DATA, /* FltAllocateCallbackData ... FltFreeCallbackData */
    UWDF_COUNTED_MAX
};
void uwdf_count_add(enum uwdf_counted what, int delta);
/* Verifier (handle tracking): one line for an object the driver should
 * have deleted or completed, found when event ("driver unload") happened. */
void uwdf_verifier_report_leak(const char *event, const struct uwdf_object *obj, const char *creator,
                               const char *why);
/* Embedded objects: give obj (zeroed by the caller, type set) a handle for
 * as long as it is valid; no allocation except a rare handle-table chunk. */
bool uwdf_object_embed_register(struct uwdf_object *obj, uint32_t type, struct uwdf_object *owner);
void uwdf_object_embed_unregister(struct uwdf_object *obj);

#endif
