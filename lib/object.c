/* The object model: handles with type tags and generations, attribute
 * validation, typed contexts, parent/child trees, references and deletion in
 * WDF order (children before parents; cleanup at delete, destroy at the last
 * reference). */
#include "runtime.h"
#include "device.h"
#include "object.h"

#include <stdio.h>

/* ---- handle table ----
 * A handle is (generation << INDEX_BITS | index). Slots are never freed, so
 * a stale or garbage handle is detected by reading the table, not by
 * touching freed memory. */
#define INDEX_BITS UWDF_HANDLE_INDEX_BITS
#define CHUNK_BITS UWDF_HANDLE_CHUNK_BITS
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define MAX_CHUNKS (1u << (INDEX_BITS - CHUNK_BITS))
#define GEN_MASK ((UINT64_C(1) << (64 - INDEX_BITS - 1)) - 1)

/* Chunks not allocated yet point at one empty chunk (zero pages of .bss),
 * so the inline lookup needs no NULL test: an empty slot's obj is NULL. Set
 * at load time rather than by an initializer, which would put the table in
 * .data with a relocation per entry. */
static struct uwdf_handle_slot handle_empty_chunk[CHUNK_SLOTS];
struct uwdf_handle_slot *_Atomic uwdf_handle_chunks[MAX_CHUNKS];

__attribute__((constructor)) static void handle_table_init(void)
{
    for (uint32_t i = 0; i < MAX_CHUNKS; i++)
        atomic_init(&uwdf_handle_chunks[i], handle_empty_chunk);
}

static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t handle_free_head; /* 0 = empty; index 0 is never used */
static uint32_t handle_next_index = 1;
/* Slots holding an object, parked ones included (handle_lock). */
static unsigned long long handle_in_use;
/* Above every generation a handle had before UwdfReleaseObjectTable freed
 * the table: a chunk allocated later starts its slots here, so a handle
 * from before the release still matches nothing (handle_lock). */
static unsigned long long handle_gen_floor;
/* Per type: handles registered now, and ever (under handle_lock, which
 * every create and destroy takes anyway). */
static unsigned long long type_live[UWDF_OBJ_TYPE_COUNT];
static unsigned long long type_created[UWDF_OBJ_TYPE_COUNT];
/* The same for what is not a WDF object. */
static atomic_ullong counted_live[UWDF_COUNTED_MAX];
static atomic_ullong counted_created[UWDF_COUNTED_MAX];

static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;

/* The slot index of obj's handle. */
static uint32_t handle_index(const struct uwdf_object *obj)
{
    return (uint32_t)((uintptr_t)obj->handle & ((1u << INDEX_BITS) - 1));
}

/* obj takes slot index with the slot's next generation: the generation
 * first, then the object, so a lookup by an older handle never matches.
 * The object's release store orders the generation before it (a lookup
 * that acquires the new object reads the new generation): no fence. Only
 * the slot's owner writes its generation (under handle_lock, or the
 * recycling thread that parked it). */
static void handle_slot_take(struct uwdf_object *obj, uint32_t index)
{
    struct uwdf_handle_slot *slot = uwdf_handle_slot(index);
    unsigned long long gen = (atomic_load_explicit(&slot->gen, memory_order_relaxed) + 1) & GEN_MASK;
    if (gen == 0)
        gen = 1;
    atomic_store_explicit(&slot->gen, gen, memory_order_relaxed);
    atomic_store_explicit(&slot->obj, obj, memory_order_release);
    obj->handle = (WDFOBJECT)(uintptr_t)((gen << INDEX_BITS) | index);
}

static bool handle_register(struct uwdf_object *obj)
{
    uint32_t index;
    pthread_mutex_lock(&handle_lock);
    if (handle_free_head) {
        index = handle_free_head;
        handle_free_head = uwdf_handle_slot(index)->next_free;
    } else {
        index = handle_next_index;
        uint32_t chunk = index >> CHUNK_BITS;
        if (chunk >= MAX_CHUNKS) {
            pthread_mutex_unlock(&handle_lock);
            return false;
        }
        if (atomic_load(&uwdf_handle_chunks[chunk]) == handle_empty_chunk) {
            struct uwdf_handle_slot *slots = uwdf_zalloc(sizeof(*slots) * CHUNK_SLOTS);
            if (!slots) {
                pthread_mutex_unlock(&handle_lock);
                return false;
            }
            for (uint32_t i = 0; handle_gen_floor && i < CHUNK_SLOTS; i++)
                atomic_init(&slots[i].gen, handle_gen_floor);
            atomic_store_explicit(&uwdf_handle_chunks[chunk], slots, memory_order_release);
        }
        handle_next_index++;
    }
    handle_slot_take(obj, index);
    handle_in_use++;
    if (obj->type < UWDF_OBJ_TYPE_COUNT) {
        type_live[obj->type]++;
        type_created[obj->type]++;
    }
    pthread_mutex_unlock(&handle_lock);
    return true;
}

static void handle_unregister(struct uwdf_object *obj)
{
    uint32_t index = handle_index(obj);
    pthread_mutex_lock(&handle_lock);
    struct uwdf_handle_slot *slot = uwdf_handle_slot(index);
    atomic_store(&slot->obj, NULL);
    atomic_fetch_add(&slot->gen, 1);
    slot->next_free = handle_free_head;
    handle_free_head = index;
    handle_in_use--;
    if (obj->type < UWDF_OBJ_TYPE_COUNT)
        type_live[obj->type]--;
    pthread_mutex_unlock(&handle_lock);
}

void uwdf_count_add(enum uwdf_counted what, int delta)
{
    atomic_fetch_add(&counted_live[what], (unsigned long long)(long long)delta);
    if (delta > 0)
        atomic_fetch_add(&counted_created[what], (unsigned long long)delta);
}

static const char *const type_names[UWDF_OBJ_TYPE_COUNT] = {
    [0] = "any",
    [UWDF_OBJ_GENERIC] = "WDFOBJECT",
    [UWDF_OBJ_DRIVER] = "WDFDRIVER",
    [UWDF_OBJ_DEVICE] = "WDFDEVICE",
    [UWDF_OBJ_QUEUE] = "WDFQUEUE",
    [UWDF_OBJ_REQUEST] = "WDFREQUEST",
    [UWDF_OBJ_IOTARGET] = "WDFIOTARGET",
    [UWDF_OBJ_MEMORY] = "WDFMEMORY",
    [UWDF_OBJ_LOOKASIDE] = "WDFLOOKASIDE",
    [UWDF_OBJ_SPINLOCK] = "WDFSPINLOCK",
    [UWDF_OBJ_WAITLOCK] = "WDFWAITLOCK",
    [UWDF_OBJ_COLLECTION] = "WDFCOLLECTION",
    [UWDF_OBJ_STRING] = "WDFSTRING",
    [UWDF_OBJ_TIMER] = "WDFTIMER",
    [UWDF_OBJ_WORKITEM] = "WDFWORKITEM",
    [UWDF_OBJ_FILEOBJECT] = "WDFFILEOBJECT",
};

static const char *const counted_names[UWDF_COUNTED_MAX] = {
    [UWDF_COUNTED_FLT_CALLBACK_DATA] = "FLT_CALLBACK_DATA",
};

const char *uwdf_object_type_name(uint32_t type)
{
    return type < UWDF_OBJ_TYPE_COUNT && type_names[type] ? type_names[type] : "unknown";
}

/* ---- live-object accounting ---- */

static void recycle_counts_locked(uint32_t type, unsigned long long *parked, unsigned long long *reused);

/* Object types 1.. first, then the counted non-objects. */
#define COUNT_ENTRIES ((UWDF_OBJ_TYPE_COUNT - 1) + UWDF_COUNTED_MAX)

static void count_entry(unsigned i, PUWDF_OBJECT_COUNT out)
{
    if (i < UWDF_OBJ_TYPE_COUNT - 1) {
        uint32_t type = i + 1;
        unsigned long long parked, reused;
        recycle_counts_locked(type, &parked, &reused);
        out->TypeName = uwdf_object_type_name(type);
        out->Live = type_live[type] - parked;
        out->Created = type_created[type] + reused;
    } else {
        unsigned c = i - (UWDF_OBJ_TYPE_COUNT - 1);
        out->TypeName = counted_names[c];
        out->Live = atomic_load(&counted_live[c]);
        out->Created = atomic_load(&counted_created[c]);
    }
}

NTSTATUS UwdfQueryObjectCounts(PUWDF_OBJECT_COUNT Counts, PULONG Count)
{
    UWDF_REQUIRE_PARAM(Count, "UwdfQueryObjectCounts", STATUS_INVALID_PARAMETER);
    ULONG room = *Count;
    *Count = COUNT_ENTRIES;
    if (room < COUNT_ENTRIES)
        return STATUS_BUFFER_TOO_SMALL;
    UWDF_REQUIRE_PARAM(Counts, "UwdfQueryObjectCounts", STATUS_INVALID_PARAMETER);
    pthread_mutex_lock(&handle_lock); /* one consistent snapshot of the types */
    for (unsigned i = 0; i < COUNT_ENTRIES; i++)
        count_entry(i, &Counts[i]);
    pthread_mutex_unlock(&handle_lock);
    return STATUS_SUCCESS;
}

NTSTATUS UwdfQueryObjectCount(PCSTR TypeName, PUWDF_OBJECT_COUNT Count)
{
    UWDF_REQUIRE_PARAM(TypeName, "UwdfQueryObjectCount", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(Count, "UwdfQueryObjectCount", STATUS_INVALID_PARAMETER);
    NTSTATUS status = STATUS_OBJECT_NAME_NOT_FOUND;
    pthread_mutex_lock(&handle_lock);
    for (unsigned i = 0; i < COUNT_ENTRIES; i++) {
        UWDF_OBJECT_COUNT c;
        count_entry(i, &c);
        if (strcmp(c.TypeName, TypeName) == 0) {
            *Count = c;
            status = STATUS_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&handle_lock);
    return status;
}

/* The inline fast path in internal.h failed: say why, or (a race with the
 * table it lost) find the object after all. */
struct uwdf_object *uwdf_object_lookup_slow(WDFOBJECT handle, uint32_t type, const char *ddi)
{
    uintptr_t v = (uintptr_t)handle;
    if (UWDF_UNLIKELY(v == 0)) {
        uwdf_bugcheck(WDF_REQUIRED_PARAMETER_IS_NULL, 0, 0, 0, "%s: NULL %s handle", ddi,
                      uwdf_object_type_name(type));
        return NULL;
    }
    uint32_t index = (uint32_t)(v & ((1u << INDEX_BITS) - 1));
    unsigned long long gen = (unsigned long long)(v >> INDEX_BITS);
    struct uwdf_handle_slot *slot = uwdf_handle_slot(index);
    struct uwdf_object *obj = atomic_load_explicit(&slot->obj, memory_order_acquire);
    if (UWDF_UNLIKELY(!obj || atomic_load(&slot->gen) != gen || (v >> 63) != 0)) {
        uwdf_bugcheck(WDF_INVALID_HANDLE, (ULONG_PTR)handle, type, 0,
                      "%s: %p is not a live %s handle (deleted, stale or garbage)%s", ddi,
                      (void *)handle, uwdf_object_type_name(type),
                      type == UWDF_OBJ_REQUEST ? " (rule InvalidReqAccess)" : "");
        return NULL;
    }
    if (UWDF_UNLIKELY(type != 0 && obj->type != type)) {
        uwdf_bugcheck(WDF_INVALID_HANDLE, (ULONG_PTR)handle, type, obj->type,
                      "%s: handle %p is a %s, expected a %s", ddi, (void *)handle,
                      uwdf_object_type_name(obj->type), uwdf_object_type_name(type));
        return NULL;
    }
    return obj;
}

/* ---- attributes ---- */
static PCWDF_OBJECT_CONTEXT_TYPE_INFO context_unique_type(PCWDF_OBJECT_CONTEXT_TYPE_INFO info)
{
    if (info->EvtDriverGetUniqueContextType)
        return info->EvtDriverGetUniqueContextType();
    return info->UniqueType ? info->UniqueType : info;
}

NTSTATUS uwdf_attributes_validate(PWDF_OBJECT_ATTRIBUTES attrs, unsigned flags)
{
    if (!attrs)
        return STATUS_SUCCESS;
    if (attrs->Size != sizeof(WDF_OBJECT_ATTRIBUTES))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (attrs->ContextTypeInfo) {
        if (attrs->ContextTypeInfo->Size != sizeof(WDF_OBJECT_CONTEXT_TYPE_INFO))
            return STATUS_INFO_LENGTH_MISMATCH;
        if (attrs->ContextTypeInfo->ContextSize > 0 && !attrs->ContextTypeInfo->ContextName)
            return STATUS_WDF_OBJECT_ATTRIBUTES_INVALID;
    }
    if (attrs->ContextSizeOverride) {
        if (!attrs->ContextTypeInfo ||
            attrs->ContextSizeOverride < attrs->ContextTypeInfo->ContextSize)
            return STATUS_WDF_OBJECT_ATTRIBUTES_INVALID;
    }
    if (attrs->ExecutionLevel <= WdfExecutionLevelInvalid ||
        attrs->ExecutionLevel > WdfExecutionLevelDispatch ||
        attrs->SynchronizationScope <= WdfSynchronizationScopeInvalid ||
        attrs->SynchronizationScope > WdfSynchronizationScopeNone)
        return STATUS_WDF_OBJECT_ATTRIBUTES_INVALID;
    if ((flags & UWDF_ATTR_NO_EXEC_LEVEL) &&
        attrs->ExecutionLevel != WdfExecutionLevelInheritFromParent)
        return STATUS_WDF_EXECUTION_LEVEL_INVALID;
    if ((flags & UWDF_ATTR_NO_SYNC_SCOPE) &&
        attrs->SynchronizationScope != WdfSynchronizationScopeInheritFromParent)
        return STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID;
    if ((flags & UWDF_ATTR_PARENT_NOT_ALLOWED) && attrs->ParentObject)
        return STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED;
    return STATUS_SUCCESS;
}

static size_t context_size(PWDF_OBJECT_ATTRIBUTES attrs)
{
    if (!attrs || !attrs->ContextTypeInfo)
        return 0;
    return attrs->ContextSizeOverride ? attrs->ContextSizeOverride
                                      : attrs->ContextTypeInfo->ContextSize;
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void context_init(struct uwdf_context *ctx, struct uwdf_object *owner,
                         PWDF_OBJECT_ATTRIBUTES attrs, size_t size, bool inline_alloc)
{
    memset(ctx, 0, sizeof(*ctx) + size);
    ctx->size = size;
    ctx->owner = owner;
    ctx->type = attrs->ContextTypeInfo ? context_unique_type(attrs->ContextTypeInfo) : NULL;
    ctx->cleanup = attrs->EvtCleanupCallback;
    ctx->destroy = attrs->EvtDestroyCallback;
    ctx->inline_alloc = inline_alloc;
}

/* ---- tree ---- */
static void tree_link(struct uwdf_object *parent, struct uwdf_object *child)
{
    child->parent = parent;
    child->prev_sibling = NULL;
    child->next_sibling = parent->first_child;
    if (parent->first_child)
        parent->first_child->prev_sibling = child;
    parent->first_child = child;
    child->in_parent_list = true;
}

static void tree_unlink(struct uwdf_object *child)
{
    struct uwdf_object *parent = child->parent;
    if (!parent)
        return;
    if (child->prev_sibling)
        child->prev_sibling->next_sibling = child->next_sibling;
    else if (parent->first_child == child)
        parent->first_child = child->next_sibling;
    if (child->next_sibling)
        child->next_sibling->prev_sibling = child->prev_sibling;
    child->prev_sibling = child->next_sibling = NULL;
    child->in_parent_list = false;
}

/* Where an object of obj_size with attrs keeps its context: *ctx_off into
 * the allocation, *ctx_bytes of data (want_ctx: a context record at all);
 * returns the allocation's size. */
static size_t object_layout(size_t obj_size, PWDF_OBJECT_ATTRIBUTES attrs, bool *want_ctx, size_t *ctx_off,
                            size_t *ctx_bytes)
{
    /* A context record always exists when attrs carry callbacks, so cleanup
     * and destroy hang off the same list as typed contexts. */
    *want_ctx = attrs && (attrs->ContextTypeInfo || attrs->EvtCleanupCallback || attrs->EvtDestroyCallback);
    *ctx_bytes = context_size(attrs);
    *ctx_off = align16(obj_size);
    return *ctx_off + (*want_ctx ? sizeof(struct uwdf_context) + *ctx_bytes : 0);
}

/* A new object in obj's memory (obj_size bytes zeroed, or in recycled
 * memory cleared as its type says), before its handle. */
static inline __attribute__((always_inline)) void object_init(struct uwdf_object *obj, size_t obj_size, enum uwdf_object_type type,
                        const struct uwdf_object_ops *ops, PWDF_OBJECT_ATTRIBUTES attrs, bool want_ctx,
                        size_t ctx_off, size_t ctx_bytes, bool recycled)
{
    if (recycled && ops && ops->recycle_clear)
        ops->recycle_clear(obj, obj_size);
    else
        memset(obj, 0, obj_size);
    obj->type = type;
    obj->ops = ops;
    atomic_init(&obj->refs, 1);
    atomic_init(&obj->state, UWDF_OBJECT_ALIVE);
    obj->exec_level = attrs ? attrs->ExecutionLevel : WdfExecutionLevelInheritFromParent;
    obj->sync_scope = attrs ? attrs->SynchronizationScope : WdfSynchronizationScopeInheritFromParent;
    if (want_ctx) {
        struct uwdf_context *ctx = (struct uwdf_context *)((char *)obj + ctx_off);
        context_init(ctx, obj, attrs, ctx_bytes, true);
        obj->contexts = ctx;
    }
}

NTSTATUS uwdf_object_create(size_t obj_size, enum uwdf_object_type type,
                            const struct uwdf_object_ops *ops, PWDF_OBJECT_ATTRIBUTES attrs,
                            struct uwdf_object *default_parent, unsigned attr_flags,
                            struct uwdf_object **out)
{
    NTSTATUS status = uwdf_attributes_validate(attrs, attr_flags);
    struct uwdf_object *parent = default_parent;
    if (!NT_SUCCESS(status))
        return status;
    if (attrs && attrs->ParentObject) {
        parent = uwdf_object_lookup(attrs->ParentObject, 0, "WDF_OBJECT_ATTRIBUTES.ParentObject");
        if (!parent)
            return STATUS_INVALID_HANDLE;
    }

    bool want_ctx;
    size_t ctx_off, ctx_bytes;
    size_t total = object_layout(obj_size, attrs, &want_ctx, &ctx_off, &ctx_bytes);
    struct uwdf_object *obj = uwdf_alloc_aligned(16, total);
    if (!obj)
        return STATUS_INSUFFICIENT_RESOURCES;
    object_init(obj, obj_size, type, ops, attrs, want_ctx, ctx_off, ctx_bytes, false);
    if (!handle_register(obj)) {
        uwdf_free(obj);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (parent) {
        pthread_mutex_lock(&tree_lock);
        /* Before the state is read: a delete that then finds no children
         * marked has made this read see it deleting (uwdf_object_delete). */
        atomic_store(&parent->has_children, true);
        if (atomic_load(&parent->state) != UWDF_OBJECT_ALIVE) {
            pthread_mutex_unlock(&tree_lock);
            handle_unregister(obj);
            uwdf_free(obj);
            return STATUS_DELETE_PENDING;
        }
        atomic_fetch_add(&parent->refs, 1);
        tree_link(parent, obj);
        pthread_mutex_unlock(&tree_lock);
    }
    *out = obj;
    return STATUS_SUCCESS;
}

/* ---- recycled objects ----
 * A kind of object made and deleted once per I/O (a request a queue
 * presents) leaves its memory to the next one of its kind made on the same
 * thread: a small cache per thread, type and size, taken and filled with
 * no lock and no allocation. A parked object's handle is dead (its slot
 * stays with the memory and holds no object; the next reuse moves its
 * generation on, so a stale handle is caught as after a free); parked
 * objects do not count as live, and
 * each reuse counts as a new object made. A thread's cache goes when the
 * thread ends. */
#define RECYCLE_MAX 16   /* objects of one size class on one thread */
#define RECYCLE_CLASSES 4 /* sizes (request context layouts) per type */

struct recycle_class {
    struct uwdf_object *head; /* linked through next_sibling */
    size_t size;              /* the allocation size parked here (0: unused) */
    unsigned n;
};

struct recycle_cache {
    struct recycle_class cls[UWDF_OBJ_TYPE_COUNT][RECYCLE_CLASSES];
    /* The class of each type last parked to or taken from: one test
     * instead of the search, as a thread recycles one size over and over. */
    struct recycle_class *hot[UWDF_OBJ_TYPE_COUNT];
    /* written by the cache's thread only, read by the counts (handle_lock) */
    atomic_uint parked[UWDF_OBJ_TYPE_COUNT];
    atomic_ullong reused[UWDF_OBJ_TYPE_COUNT];
    struct recycle_cache *next, *prev; /* every thread's, under handle_lock */
};

/* The class of type t for objects of size bytes; with make, an unused one
 * if there is none yet. NULL: none. */
static struct recycle_class *recycle_class_of(struct recycle_cache *c, uint32_t t, size_t size, bool make)
{
    struct recycle_class *unused = NULL;
    for (int i = 0; i < RECYCLE_CLASSES; i++) {
        struct recycle_class *k = &c->cls[t][i];
        if (k->size == size)
            return k;
        if (!unused && k->n == 0)
            unused = k;
    }
    return make ? unused : NULL;
}

/* recycle_class_of, trying the type's hot class first. */
static inline struct recycle_class *recycle_class_hot(struct recycle_cache *c, uint32_t t, size_t size, bool make)
{
    struct recycle_class *k = c->hot[t];
    if (UWDF_LIKELY(k != NULL && k->size == size))
        return k;
    k = recycle_class_of(c, t, size, make);
    if (k)
        c->hot[t] = k;
    return k;
}

static __thread struct recycle_cache *tls_recycle;
static struct recycle_cache recycle_all = { .next = &recycle_all, .prev = &recycle_all };
static pthread_key_t recycle_key;
static pthread_once_t recycle_once = PTHREAD_ONCE_INIT;
static bool recycle_usable;

/* The slot of a parked object goes back to the free list (handle_lock held). */
static void handle_release_parked_locked(struct uwdf_object *obj)
{
    uint32_t index = handle_index(obj);
    struct uwdf_handle_slot *slot = uwdf_handle_slot(index);
    slot->next_free = handle_free_head;
    handle_free_head = index;
    handle_in_use--;
    if (obj->type < UWDF_OBJ_TYPE_COUNT)
        type_live[obj->type]--;
}

/* The memory of a recycled kind of object is freed: what it kept. */
static void object_free_kept(struct uwdf_object *obj)
{
    if (obj->ops && obj->ops->free_kept)
        obj->ops->free_kept(obj);
}

static void recycle_thread_end(void *arg)
{
    struct recycle_cache *c = arg;
    pthread_mutex_lock(&handle_lock);
    for (uint32_t t = 0; t < UWDF_OBJ_TYPE_COUNT; t++) {
        for (int i = 0; i < RECYCLE_CLASSES; i++)
            for (struct uwdf_object *o = c->cls[t][i].head, *next; o; o = next) {
                next = o->next_sibling;
                handle_release_parked_locked(o);
                object_free_kept(o);
                uwdf_free(o);
            }
        type_created[t] += atomic_load(&c->reused[t]);
    }
    c->prev->next = c->next;
    c->next->prev = c->prev;
    pthread_mutex_unlock(&handle_lock);
    tls_recycle = NULL;
    uwdf_free(c);
}

NTSTATUS UwdfReleaseObjectTable(void)
{
    if (!uwdf_irql_check_passive("UwdfReleaseObjectTable"))
        return STATUS_INVALID_DEVICE_REQUEST;
    /* The caller's own cache is let go of here (as at its thread's end);
     * another live thread's is its business, and counts as in use. */
    if (tls_recycle) {
        recycle_thread_end(tls_recycle);
        (void)pthread_setspecific(recycle_key, NULL);
    }
    pthread_mutex_lock(&handle_lock);
    if (handle_in_use) {
        unsigned long long live = handle_in_use;
        pthread_mutex_unlock(&handle_lock);
        uwdf_log("UwdfReleaseObjectTable: %llu objects are still live: the table is kept", live);
        return STATUS_DEVICE_BUSY;
    }
    for (uint32_t c = 0; c < MAX_CHUNKS; c++) {
        struct uwdf_handle_slot *slots = atomic_load_explicit(&uwdf_handle_chunks[c], memory_order_relaxed);
        if (slots == handle_empty_chunk)
            continue;
        for (uint32_t i = 0; i < CHUNK_SLOTS; i++) {
            unsigned long long gen = atomic_load_explicit(&slots[i].gen, memory_order_relaxed);
            if (gen > handle_gen_floor)
                handle_gen_floor = gen;
        }
        atomic_store_explicit(&uwdf_handle_chunks[c], handle_empty_chunk, memory_order_release);
        uwdf_free(slots);
    }
    handle_free_head = 0;
    handle_next_index = 1;
    pthread_mutex_unlock(&handle_lock);
    return STATUS_SUCCESS;
}

static void recycle_init(void)
{
    recycle_usable = pthread_key_create(&recycle_key, recycle_thread_end) == 0;
}

/* This thread's cache, made on first use; NULL if it cannot be. */
static struct recycle_cache *recycle_cache(void)
{
    struct recycle_cache *c = tls_recycle;
    if (UWDF_LIKELY(c != NULL))
        return c;
    pthread_once(&recycle_once, recycle_init);
    if (!recycle_usable || !(c = uwdf_zalloc(sizeof(*c))))
        return NULL;
    if (pthread_setspecific(recycle_key, c) != 0) {
        uwdf_free(c);
        return NULL;
    }
    pthread_mutex_lock(&handle_lock);
    c->next = recycle_all.next;
    c->prev = &recycle_all;
    recycle_all.next->prev = c;
    recycle_all.next = c;
    pthread_mutex_unlock(&handle_lock);
    tls_recycle = c;
    return c;
}

/* Single-writer counters: a plain load and store, no locked instruction. */
static inline void recycle_count_parked(struct recycle_cache *c, uint32_t type, int delta)
{
    atomic_store_explicit(&c->parked[type],
                          atomic_load_explicit(&c->parked[type], memory_order_relaxed) + (unsigned)delta,
                          memory_order_relaxed);
}

/* Parked objects and reuses of a type, over every thread (handle_lock held). */
static void recycle_counts_locked(uint32_t type, unsigned long long *parked, unsigned long long *reused)
{
    *parked = *reused = 0;
    for (struct recycle_cache *c = recycle_all.next; c != &recycle_all; c = c->next) {
        *parked += atomic_load_explicit(&c->parked[type], memory_order_relaxed);
        *reused += atomic_load_explicit(&c->reused[type], memory_order_relaxed);
    }
}

/* The allocation size of an object its type recycles, when freeing it
 * would free that one allocation and nothing else (no parent; its one
 * context, if any, inside the allocation); else 0. Read before its
 * contexts go. */
static size_t recycle_size_of(const struct uwdf_object *obj)
{
    const struct uwdf_context *ctx = obj->contexts;
    if (!obj->recycle_size || obj->parent || obj->embed_owner || obj->type >= UWDF_OBJ_TYPE_COUNT ||
        (ctx && (ctx->next || !ctx->inline_alloc)))
        return 0;
    return ctx ? (size_t)((const char *)ctx - (const char *)obj) + sizeof(*ctx) + ctx->size
               : align16(obj->recycle_size);
}

/* obj (total bytes) parked in class k of this thread's cache c, which has
 * room. The handle dies as handle_unregister's does: no object in the slot
 * (which stays this memory's while it is parked); the reuse moves the
 * generation on (handle_slot_take). */
static inline void recycle_park_in(struct recycle_cache *c, struct recycle_class *k, struct uwdf_object *obj,
                                   size_t total)
{
    struct uwdf_handle_slot *slot = uwdf_handle_slot(handle_index(obj));
    atomic_store_explicit(&slot->obj, NULL, memory_order_release);
    obj->next_sibling = k->head;
    k->head = obj;
    k->size = total;
    k->n++;
    recycle_count_parked(c, obj->type, 1);
}

/* object_destroy's end for an object of recycle_size_of total: parked in
 * this thread's cache if there is room; else false. */
static bool recycle_park(struct uwdf_object *obj, size_t total)
{
    uint32_t t = obj->type;
    struct recycle_cache *c = recycle_cache();
    struct recycle_class *k = c ? recycle_class_hot(c, t, total, true) : NULL;
    if (!k || k->n >= RECYCLE_MAX)
        return false;
    recycle_park_in(c, k, obj, total);
    return true;
}

/* uwdf_object_reuse from class k (layout known), inline: the common call,
 * without attributes, gets its own copy with them folded away. */
static inline __attribute__((always_inline)) struct uwdf_object *
object_reuse_from(struct recycle_cache *c, struct recycle_class *k, size_t obj_size, enum uwdf_object_type type,
                  const struct uwdf_object_ops *ops, PWDF_OBJECT_ATTRIBUTES attrs, bool want_ctx, size_t ctx_off,
                  size_t ctx_bytes)
{
    if (!k || !k->head)
        return NULL;
    struct uwdf_object *obj = k->head;
    k->head = obj->next_sibling;
    k->n--;
    recycle_count_parked(c, type, -1);
    atomic_store_explicit(&c->reused[type], atomic_load_explicit(&c->reused[type], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    uint32_t index = handle_index(obj);
    object_init(obj, obj_size, type, ops, attrs, want_ctx, ctx_off, ctx_bytes, true);
    obj->recycle_size = obj_size;
    handle_slot_take(obj, index); /* a new handle on the same slot */
    return obj;
}

struct uwdf_object *uwdf_object_reuse(size_t obj_size, enum uwdf_object_type type,
                                      const struct uwdf_object_ops *ops, PWDF_OBJECT_ATTRIBUTES attrs)
{
    struct recycle_cache *c = tls_recycle;
    if (!c)
        return NULL;
    if (!attrs) /* object_layout's answer without attributes: align16(obj_size), no context */
        return object_reuse_from(c, recycle_class_hot(c, type, align16(obj_size), false), obj_size, type, ops,
                                 NULL, false, 0, 0);
    if (attrs->ParentObject || !NT_SUCCESS(uwdf_attributes_validate(attrs, 0)))
        return NULL;
    bool want_ctx;
    size_t ctx_off, ctx_bytes;
    size_t total = object_layout(obj_size, attrs, &want_ctx, &ctx_off, &ctx_bytes);
    return object_reuse_from(c, recycle_class_hot(c, type, total, false), obj_size, type, ops, attrs, want_ctx,
                             ctx_off, ctx_bytes);
}

void uwdf_object_reference(struct uwdf_object *obj)
{
    if (obj->embed_owner)
        obj = obj->embed_owner;
    atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
}

bool uwdf_object_embed_register(struct uwdf_object *obj, uint32_t type, struct uwdf_object *owner)
{
    obj->type = type;
    obj->embed_owner = owner;
    obj->no_delete = true;
    atomic_store(&obj->refs, 1);
    atomic_store(&obj->state, UWDF_OBJECT_ALIVE);
    return handle_register(obj);
}

void uwdf_object_embed_unregister(struct uwdf_object *obj)
{
    handle_unregister(obj);
}

/* object_destroy of everything but a lone recycled object. */
static __attribute__((noinline)) void object_destroy_slow(struct uwdf_object *obj, size_t recycle)
{
    struct uwdf_context *ctx;
    for (ctx = obj->contexts; ctx; ctx = ctx->next)
        if (ctx->destroy)
            ctx->destroy(obj->handle);
    if (obj->ops && obj->ops->destroy)
        obj->ops->destroy(obj);
    for (ctx = obj->contexts; ctx;) {
        struct uwdf_context *next = ctx->next;
        if (!ctx->inline_alloc)
            uwdf_free(ctx);
        ctx = next;
    }
    if (recycle && recycle_park(obj, recycle))
        return;
    handle_unregister(obj);
    struct uwdf_object *parent = obj->parent;
    object_free_kept(obj);
    uwdf_free(obj);
    if (parent)
        uwdf_object_release(parent);
}

/* Out of line: every release pays for its stack frame otherwise. A
 * recycled object with no context and no parent (a presented request of a
 * device without request attributes, the one made and destroyed per I/O)
 * has no callbacks to run and nothing to free: its type's destroy, then
 * parked; everything else, or a full cache, takes the general way. */
static __attribute__((noinline)) void object_destroy(struct uwdf_object *obj)
{
    size_t total = recycle_size_of(obj);
    if (UWDF_LIKELY(total && !obj->contexts)) {
        struct recycle_cache *c = tls_recycle;
        struct recycle_class *k = c ? c->hot[obj->type] : NULL;
        if (k && k->size == total && k->n < RECYCLE_MAX) {
            if (obj->ops && obj->ops->destroy)
                obj->ops->destroy(obj);
            recycle_park_in(c, k, obj, total);
            return;
        }
    }
    object_destroy_slow(obj, total);
}

void uwdf_object_release(struct uwdf_object *obj)
{
    if (obj->embed_owner)
        obj = obj->embed_owner;
    long old = atomic_fetch_sub_explicit(&obj->refs, 1, memory_order_acq_rel);
    if (old == 1) {
        /* The last reference of an object nobody deleted explicitly (a
         * child whose parent went away holds none): run its cleanup too. */
        if (atomic_load(&obj->state) == UWDF_OBJECT_ALIVE) {
            atomic_store(&obj->refs, 1);
            uwdf_object_delete(obj);
            return;
        }
        object_destroy(obj);
    }
}

void uwdf_verifier_report_leak(const char *event, const struct uwdf_object *obj, const char *creator,
                               const char *why)
{
    uwdf_log_at(UwdfLogVerifier, "verifier: %s: %s %p, created by %s, %s (handle tracking)", event,
                uwdf_object_type_name(obj->type), (void *)obj->handle, creator, why);
}

/* Driver unload with the verifier on: what the driver created and should
 * have deleted, and that goes now only because the driver does (KMDF's
 * handle tracking reports the same at unload). A presented request never
 * completed is reported by its queue, which waits for it (queue.c). */
static void object_verify_unload(struct uwdf_object *driver)
{
    pthread_mutex_lock(&tree_lock);
    for (struct uwdf_object *c = driver->first_child; c; c = c->next_sibling)
        if (c->created_by && (c->type == UWDF_OBJ_REQUEST || c->type == UWDF_OBJ_MEMORY))
            uwdf_verifier_report_leak("driver unload", c, c->created_by,
                                      "was never deleted: its parent, the driver, deletes it now");
    pthread_mutex_unlock(&tree_lock);
}

void uwdf_object_delete(struct uwdf_object *obj)
{
    int expected = UWDF_OBJECT_ALIVE;
    if (!atomic_compare_exchange_strong(&obj->state, &expected, UWDF_OBJECT_DELETING))
        return;
    if (UWDF_UNLIKELY(uwdf_verifier) && obj->type == UWDF_OBJ_DRIVER)
        object_verify_unload(obj);

    /* Children first: take the whole list so a child that is being deleted
     * concurrently cannot make us loop. Every child is deleted before any
     * is let go, as KMDF disposes them all before it releases them: a
     * child's handle and memory stay while its siblings go, so a timer's
     * callback that runs until its device is deleted can still use a lock
     * deleted before it. */
    /* No child was ever linked, and none can be now: a create marks
     * has_children before it reads the state this CAS changed. */
    struct uwdf_object *child = NULL;
    if (atomic_load(&obj->has_children)) {
        pthread_mutex_lock(&tree_lock);
        child = obj->first_child;
        obj->first_child = NULL;
        for (struct uwdf_object *c = child; c; c = c->next_sibling) {
            uwdf_object_reference(c);
            c->in_parent_list = false;
        }
        pthread_mutex_unlock(&tree_lock);
    }
    /* Out of the parent's list, the siblings' links no longer change. */
    for (struct uwdf_object *c = child; c; c = c->next_sibling)
        uwdf_object_delete(c);
    while (child) {
        struct uwdf_object *next = child->next_sibling;
        child->prev_sibling = child->next_sibling = NULL;
        uwdf_object_release(child);
        child = next;
    }

    if (obj->ops && obj->ops->dispose)
        obj->ops->dispose(obj);
    for (struct uwdf_context *ctx = obj->contexts; ctx; ctx = ctx->next)
        if (ctx->cleanup)
            ctx->cleanup(obj->handle);

    if (obj->parent) {
        pthread_mutex_lock(&tree_lock);
        if (obj->in_parent_list)
            tree_unlink(obj);
        atomic_store_explicit(&obj->state, UWDF_OBJECT_DELETED, memory_order_release);
        pthread_mutex_unlock(&tree_lock);
    } else {
        /* In no parent's list. Readers only compare the state with ALIVE,
         * which the compare-exchange above already left: a plain store. */
        atomic_store_explicit(&obj->state, UWDF_OBJECT_DELETED, memory_order_release);
    }
    uwdf_object_release(obj);
}

static size_t collect_locked(struct uwdf_object *obj, uint32_t type, struct uwdf_object **out, size_t max, size_t n)
{
    for (struct uwdf_object *c = obj->first_child; c; c = c->next_sibling) {
        if (c->type == type && atomic_load(&c->state) == UWDF_OBJECT_ALIVE) {
            if (n < max) {
                uwdf_object_reference(c);
                out[n] = c;
            }
            n++;
        }
        n = collect_locked(c, type, out, max, n);
    }
    return n;
}

size_t uwdf_object_collect(struct uwdf_object *obj, uint32_t type, struct uwdf_object **out, size_t max)
{
    pthread_mutex_lock(&tree_lock);
    size_t n = collect_locked(obj, type, out, max, 0);
    pthread_mutex_unlock(&tree_lock);
    return n;
}

void uwdf_object_delete_failed_create(struct uwdf_object *obj)
{
    /* The driver never saw the handle, so its callbacks must not run for
     * it (WDF's DeleteFromFailedCreate clears them the same way). */
    for (struct uwdf_context *ctx = obj->contexts; ctx; ctx = ctx->next)
        ctx->cleanup = ctx->destroy = NULL;
    uwdf_object_delete(obj);
}

/* ---- DDIs ---- */
static const struct uwdf_object_ops generic_ops = { 0 };

NTSTATUS WdfObjectCreate(PWDF_OBJECT_ATTRIBUTES Attributes, WDFOBJECT *Object)
{
    struct uwdf_object *obj;
    UWDF_REQUIRE_PARAM(Object, "WdfObjectCreate", STATUS_INVALID_PARAMETER);
    /* WDF lets a generic object take an execution level, not a sync scope. */
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_object), UWDF_OBJ_GENERIC,
                                         &generic_ops, Attributes, uwdf_driver_default_parent(),
                                         UWDF_ATTR_NO_SYNC_SCOPE, &obj);
    if (NT_SUCCESS(status))
        obj->created_by = "WdfObjectCreate";
    *Object = NT_SUCCESS(status) ? obj->handle : NULL;
    return status;
}

VOID WdfObjectDelete(WDFOBJECT Object)
{
    struct uwdf_object *obj = uwdf_object_lookup(Object, 0, "WdfObjectDelete");
    if (!obj)
        return;
    if (obj->no_delete) {
        uwdf_bugcheck(WDF_OBJECT_ERROR, (ULONG_PTR)Object, obj->type, 0,
                      "WdfObjectDelete: a %s of this kind is deleted by the framework, not the driver",
                      uwdf_object_type_name(obj->type));
        return;
    }
    uwdf_object_delete(obj);
}

VOID WdfObjectReferenceActual(WDFOBJECT Handle, PVOID Tag, LONG Line, PCHAR File)
{
    struct uwdf_object *obj = uwdf_object_lookup(Handle, 0, "WdfObjectReference");
    (void)Tag;
    (void)Line;
    (void)File;
    if (obj)
        uwdf_object_reference(obj);
}

VOID WdfObjectDereferenceActual(WDFOBJECT Handle, PVOID Tag, LONG Line, PCHAR File)
{
    struct uwdf_object *obj = uwdf_object_lookup(Handle, 0, "WdfObjectDereference");
    (void)Tag;
    if (!obj)
        return;
    if (atomic_load(&obj->refs) <= 1 && atomic_load(&obj->state) == UWDF_OBJECT_ALIVE) {
        uwdf_bugcheck(WDF_OBJECT_ERROR, (ULONG_PTR)Handle, 0, 0,
                      "WdfObjectDereference (%s:%d): more dereferences than references on a live %s",
                      File ? File : "?", (int)Line, uwdf_object_type_name(obj->type));
        return;
    }
    uwdf_object_release(obj);
}

PVOID WdfObjectGetTypedContextWorker(WDFOBJECT Handle, PCWDF_OBJECT_CONTEXT_TYPE_INFO TypeInfo)
{
    struct uwdf_object *obj = uwdf_object_lookup(Handle, 0, "WdfObjectGetTypedContext");
    UWDF_REQUIRE_PARAM(TypeInfo, "WdfObjectGetTypedContext", NULL);
    if (!obj)
        return NULL;
    PCWDF_OBJECT_CONTEXT_TYPE_INFO want = context_unique_type(TypeInfo);
    for (struct uwdf_context *ctx = obj->contexts; ctx; ctx = ctx->next)
        if (ctx->type == want)
            return ctx->data;
    return NULL;
}

WDFOBJECT WdfObjectContextGetObject(PVOID ContextPointer)
{
    UWDF_REQUIRE_PARAM(ContextPointer, "WdfObjectContextGetObject", NULL);
    struct uwdf_context *ctx = uwdf_container_of(ContextPointer, struct uwdf_context, data);
    return ctx->owner->handle;
}

NTSTATUS WdfObjectAllocateContext(WDFOBJECT Handle, PWDF_OBJECT_ATTRIBUTES ContextAttributes,
                                  PVOID *Context)
{
    struct uwdf_object *obj = uwdf_object_lookup(Handle, 0, "WdfObjectAllocateContext");
    if (!obj)
        return STATUS_INVALID_HANDLE;
    UWDF_REQUIRE_PARAM(ContextAttributes, "WdfObjectAllocateContext", STATUS_INVALID_PARAMETER);
    NTSTATUS status = uwdf_attributes_validate(ContextAttributes, UWDF_ATTR_PARENT_NOT_ALLOWED);
    if (!NT_SUCCESS(status))
        return status;
    if (!ContextAttributes->ContextTypeInfo)
        return STATUS_OBJECT_NAME_INVALID;
    PCWDF_OBJECT_CONTEXT_TYPE_INFO want = context_unique_type(ContextAttributes->ContextTypeInfo);
    size_t bytes = context_size(ContextAttributes);
    struct uwdf_context *fresh = uwdf_alloc_aligned(16, sizeof(*fresh) + bytes);
    if (!fresh)
        return STATUS_INSUFFICIENT_RESOURCES;
    context_init(fresh, obj, ContextAttributes, bytes, false);

    pthread_mutex_lock(&tree_lock);
    if (atomic_load(&obj->state) != UWDF_OBJECT_ALIVE) {
        pthread_mutex_unlock(&tree_lock);
        uwdf_free(fresh);
        return STATUS_DELETE_PENDING;
    }
    struct uwdf_context **tail = &obj->contexts;
    for (; *tail; tail = &(*tail)->next) {
        if ((*tail)->type == want) {
            if (Context)
                *Context = (*tail)->data;
            pthread_mutex_unlock(&tree_lock);
            uwdf_free(fresh);
            return STATUS_OBJECT_NAME_EXISTS;
        }
    }
    *tail = fresh;
    pthread_mutex_unlock(&tree_lock);
    if (Context)
        *Context = fresh->data;
    return STATUS_SUCCESS;
}
