/* Definitions shared by the framework's object files. Not installed. */
#ifndef UWDF_INTERNAL_H
#define UWDF_INTERNAL_H

#include "config.h"
/* The library defines the DDIs the headers also wrap in macros (wdftypes.h). */
#define UWDF_NO_PVOID_OUT_MACROS 1

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <ntdddisk.h>
#include <uwdf.h>
#include <wdf.h>

#include "../backends/backend.h"

#define UWDF_UNUSED __attribute__((unused))
#define UWDF_LIKELY(x) __builtin_expect(!!(x), 1)
#define UWDF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define uwdf_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- allocation (every framework allocation goes through here, so the
 * fault injector can fail any of them) ---- */
void *uwdf_alloc(size_t size);
void *uwdf_zalloc(size_t size);
void *uwdf_alloc_aligned(size_t alignment, size_t size);
void uwdf_free(void *ptr);
void uwdf_fault_init_from_env(void);
/* Milliseconds completions are held back (0: off). */
extern atomic_uint uwdf_fault_stall_ms;

/* ---- the environment switches (lib/env.c): read only through uwdf_env,
 * which ignores them all in a privileged (AT_SECURE) process ---- */
enum uwdf_env_switch {
    UWDF_ENV_BACKEND,
    UWDF_ENV_VERIFIER,
    UWDF_ENV_FAULT_ALLOC,
    UWDF_ENV_FAULT_STALL,
    UWDF_ENV_FP_FAIL,
    UWDF_ENV_BIASED_LOCKS,
    UWDF_ENV_DEBUG_PRINT,
    UWDF_ENV_COUNT
};
/* The switch's value, or NULL when unset or the process is privileged. */
const char *uwdf_env(enum uwdf_env_switch which);
const char *uwdf_env_name(enum uwdf_env_switch which);

/* ---- bug checks, verifier, IRQL ---- */
/* Reports WDF_VIOLATION with the given parameters and a reason; returns only
 * if the installed callback returns. */
void uwdf_bugcheck(ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
extern bool uwdf_verifier;
void uwdf_verifier_init_from_env(void);
void uwdf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern __thread KIRQL uwdf_tls_irql;
static inline KIRQL uwdf_irql_raise_to_dispatch(void)
{
    KIRQL old = uwdf_tls_irql;
    uwdf_tls_irql = DISPATCH_LEVEL;
    return old;
}
static inline void uwdf_irql_restore(KIRQL old)
{
    uwdf_tls_irql = old;
}
/* PASSIVE-only DDIs: above PASSIVE a synchronous wait would deadlock the
 * completion thread, so the DDI fails instead (and the verifier bug-checks). */
bool uwdf_irql_check_passive(const char *ddi);
/* Verifier rules checked at the DDI sites (lib/runtime.c); each names the
 * rule and the DDI in its report. */
struct uwdf_request;
void uwdf_verifier_send_failed(struct uwdf_request *req);
void uwdf_verifier_check_send_failed(struct uwdf_request *req, const char *ddi);
void uwdf_verifier_sync_timeout(const WDF_REQUEST_SEND_OPTIONS *options, const char *ddi);

/* ---- status and time ---- */
NTSTATUS uwdf_status_from_errno(int err);
int64_t uwdf_mono_ns(void);
int64_t uwdf_real_ns(void);
/* A WDF timeout (100 ns units, sign = relative/absolute) as a monotonic
 * deadline in ns. Returns false for 0 (no timeout). */
bool uwdf_timeout_to_mono_deadline(LONGLONG timeout, int64_t *deadline_ns);

/* ---- library start-up ---- */
void uwdf_runtime_init(void);

/* ---- a lock biased to one owner thread (lib/runtime.c) ----
 * An I/O target's lock is taken twice per I/O by its engine thread when
 * completion routines resend (the completion, the send), and rarely by
 * anyone else (Stop, Purge, Close, cancels, timers, sends from other
 * threads). While that holds, the owner enters with a plain store and a
 * load instead of two locked instructions; another thread first revokes
 * the bias with membarrier(2) (which makes the owner's store visible or
 * lets it see the revocation) and waits for the owner to leave. When
 * other threads come often, the lock stays a plain mutex for everyone
 * until the owner has had it alone for a long run again. Without
 * membarrier, or under ThreadSanitizer (which cannot see that ordering),
 * it is always the plain mutex. */
struct uwdf_biased_lock {
    pthread_mutex_t mutex;
    atomic_int owner_in; /* the owner is inside without the mutex */
    atomic_int revoked;  /* > 0: the owner must take the mutex */
    /* under the mutex */
    bool unbiased;       /* revoked holds one count of its own */
    unsigned revocations;      /* paid by other threads since the bias was set */
    unsigned long owner_run;   /* owner entries since another thread's */
};
void uwdf_biased_lock_init(struct uwdf_biased_lock *l);
void uwdf_biased_lock_destroy(struct uwdf_biased_lock *l);
/* Any thread; pthread_cond_wait may use &l->mutex while held this way. */
void uwdf_biased_lock_acquire(struct uwdf_biased_lock *l);
void uwdf_biased_lock_release(struct uwdf_biased_lock *l);
void uwdf_biased_lock_owner_slow(struct uwdf_biased_lock *l);
/* The owner thread only (one thread per lock at any time); returns what
 * uwdf_biased_lock_owner_release needs. */
static inline bool uwdf_biased_lock_owner_acquire(struct uwdf_biased_lock *l)
{
    atomic_store_explicit(&l->owner_in, 1, memory_order_relaxed);
    /* The compiler keeps the store before the load; the CPU is made to by
     * the revoker's membarrier. */
    atomic_signal_fence(memory_order_seq_cst);
    if (UWDF_LIKELY(atomic_load_explicit(&l->revoked, memory_order_acquire) == 0))
        return true;
    atomic_store_explicit(&l->owner_in, 0, memory_order_release);
    uwdf_biased_lock_owner_slow(l);
    return false;
}
static inline void uwdf_biased_lock_owner_release(struct uwdf_biased_lock *l, bool fast)
{
    if (fast)
        atomic_store_explicit(&l->owner_in, 0, memory_order_release);
    else
        pthread_mutex_unlock(&l->mutex);
}

/* ---- object model ---- */
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
};

struct uwdf_context {
    struct uwdf_context *next;
    PCWDF_OBJECT_CONTEXT_TYPE_INFO type;
    struct uwdf_object *owner;
    PFN_WDF_OBJECT_CONTEXT_CLEANUP cleanup;
    PFN_WDF_OBJECT_CONTEXT_DESTROY destroy;
    bool inline_alloc; /* part of the object's own allocation */
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
    WDF_EXECUTION_LEVEL exec_level;
    WDF_SYNCHRONIZATION_SCOPE sync_scope;
    bool no_delete;  /* the driver may not WdfObjectDelete it */
    bool in_parent_list;
    /* An object that lives inside another one (a request's retrieved
     * buffers): references go to the owner, and its handle is registered
     * only while it is valid. */
    struct uwdf_object *embed_owner;
    /* The DDI that created it, for the verifier's report at driver unload
     * (NULL: the framework's own, never reported). */
    const char *created_by;
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
void uwdf_object_reference(struct uwdf_object *obj);
void uwdf_object_release(struct uwdf_object *obj);
void uwdf_object_delete(struct uwdf_object *obj);
/* Undo a create that failed after uwdf_object_create: no driver callbacks. */
void uwdf_object_delete_failed_create(struct uwdf_object *obj);
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
 * generation and type is the whole test. */
static inline struct uwdf_object *uwdf_object_lookup(WDFOBJECT handle, uint32_t type, const char *ddi)
{
    uintptr_t v = (uintptr_t)handle;
    struct uwdf_handle_slot *slot = uwdf_handle_slot((uint32_t)(v & ((1u << UWDF_HANDLE_INDEX_BITS) - 1)));
    struct uwdf_object *obj = atomic_load_explicit(&slot->obj, memory_order_acquire);
    if (UWDF_LIKELY(obj != NULL &&
                    atomic_load_explicit(&slot->gen, memory_order_acquire) == (v >> UWDF_HANDLE_INDEX_BITS) &&
                    (type == 0 || obj->type == type)))
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

#define UWDF_REQUIRE_PARAM(p, ddi, ret)                                                        \
    do {                                                                                       \
        if (UWDF_UNLIKELY((p) == NULL)) {                                                      \
            uwdf_bugcheck(WDF_REQUIRED_PARAMETER_IS_NULL, 0, 0, 0,                             \
                          "%s: required parameter '%s' is NULL", (ddi), #p);                   \
            return ret;                                                                        \
        }                                                                                      \
    } while (0)

/* ---- driver and device ---- */
struct uwdf_driver {
    struct uwdf_object obj;
    DRIVER_OBJECT wdm;      /* ours, when the caller passed no DriverObject */
    PDRIVER_OBJECT wdm_ptr; /* what WdfDriverWdmGetDriverObject returns */
    WDF_DRIVER_CONFIG config;
};

struct uwdf_queue;
struct uwdf_iotarget;

struct uwdf_device {
    struct uwdf_object obj;
    struct uwdf_driver *driver;
    DEVICE_OBJECT wdm;
    bool control;
    bool finished_initializing;
    WDF_DEVICE_IO_TYPE io_type;
    /* in-process stacks (lib/device.c, lib/queue.c) */
    char *name;    /* \Device\..., UTF-8, or NULL */
    char *symlink; /* \DosDevices\... */
    struct uwdf_device *name_next;
    bool has_request_attrs;
    WDF_OBJECT_ATTRIBUTES request_attrs;
    struct uwdf_queue *default_queue;
    struct uwdf_queue *dispatch_queue[IRP_MJ_MAXIMUM_FUNCTION + 1];
    struct uwdf_iotarget *local_target; /* WdfDeviceGetIoTarget */
    pthread_mutex_t queues_lock;
    pthread_mutex_t sync_lock; /* SynchronizationScopeDevice, recursive */
};

extern struct uwdf_driver *uwdf_current_driver;
struct uwdf_object *uwdf_driver_default_parent(void);

/* ---- memory ---- */
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

/* ---- engine (one per open target; lib/engine.c) ---- */
struct uwdf_engine *uwdf_engine_create(const struct uwdf_backend_ops *ops, unsigned depth,
                                       int *err);
void uwdf_engine_destroy(struct uwdf_engine *e);
/* Hand an io to the engine. On the engine's own thread it goes straight
 * into the backend (staged, submitted with the rest of the batch). */
void uwdf_engine_submit(struct uwdf_engine *e, struct uwdf_io *io);
/* Deliver a completion that did not come from the kernel (res preset). */
void uwdf_engine_post_completion(struct uwdf_engine *e, struct uwdf_io *io);
/* Ask the engine to cancel an in-flight io. The caller holds a completion
 * reference; the engine calls uwdf_request_cancel_done(io) after the attempt. */
void uwdf_engine_cancel(struct uwdf_engine *e, struct uwdf_io *io);
extern __thread struct uwdf_engine *uwdf_tls_engine; /* the engine whose thread this is */
static inline bool uwdf_engine_on_own_thread(const struct uwdf_engine *e)
{
    return uwdf_tls_engine == e;
}
const char *uwdf_engine_name(const struct uwdf_engine *e);
unsigned uwdf_engine_caps(const struct uwdf_engine *e);
const struct uwdf_backend_ops *uwdf_backend_select(int *err);
/* Registration with the kernel (lib/fixedio.c's DDIs), run on the engine
 * thread. Buffers: the engine keeps the n objects referenced until it is
 * destroyed (the kernel holds their pages as long). -EOPNOTSUPP: the engine
 * has no registration. */
int uwdf_engine_register_buffers(struct uwdf_engine *e, const struct iovec *iov,
                                 struct uwdf_object *const *owners, unsigned n);
int uwdf_engine_register_file(struct uwdf_engine *e, int fd);
/* Ops handed to the backend so far, and the backend's registration stats. */
void uwdf_engine_stats(struct uwdf_engine *e, uint64_t *ios, struct uwdf_backend_stats *be);

/* Called by the engine on its thread. */
void uwdf_request_io_done(struct uwdf_io *io);
void uwdf_request_cancel_done(struct uwdf_io *io, int cancel_result);

/* ---- framework timer (lib/timer.c): one thread, a deadline heap ---- */
struct uwdf_timer {
    int64_t deadline_ns;
    int heap_index; /* -1 when not armed */
    void (*fn)(struct uwdf_timer *t);
};
void uwdf_timer_init(struct uwdf_timer *t, void (*fn)(struct uwdf_timer *t));
/* 0, or -ENOMEM (the heap could not grow). */
int uwdf_timer_arm(struct uwdf_timer *t, int64_t deadline_ns);
/* true: removed before it fired, fn will not run. false: not armed, or
 * fired already (fn has run or is running). */
bool uwdf_timer_cancel(struct uwdf_timer *t);

/* ---- the blocking-operation worker (lib/worker.c) ---- */
struct uwdf_work {
    void (*fn)(struct uwdf_work *w);
    struct uwdf_work *next;
};
/* Run w->fn on the worker thread; 0, or -EAGAIN if it could not start. */
int uwdf_worker_queue(struct uwdf_work *w);

/* ---- requests ---- */
#define UWDF_INLINE_IOV 4

enum uwdf_irp_owner {
    UWDF_IRP_NONE = 0,
    UWDF_IRP_FRAMEWORK, /* WdfRequestCreate, or CreateFromIrp(RequestFreesIrp=TRUE) */
    UWDF_IRP_DRIVER,    /* CreateFromIrp(RequestFreesIrp=FALSE) or SET_NEW_IRP */
};

/* request->flags */
#define UWDF_REQ_CANCELED        0x0001u /* a cancel was requested (sticky until reuse) */
#define UWDF_REQ_TIMER_CANCELLED 0x0002u /* the timeout caused the cancel */
#define UWDF_REQ_PENDED          0x0004u /* on a stopped target's pended list */
#define UWDF_REQ_SENT            0x0008u /* handed to an engine */
#define UWDF_REQ_TIMER_ARMED     0x0010u
#define UWDF_REQ_IGNORE_STATE    0x0020u
#define UWDF_REQ_SYNC            0x0040u
#define UWDF_REQ_CALL_ROUTINE    0x0080u /* sync send that also runs the routine */
#define UWDF_REQ_USE_FILE_POS    0x0100u
#define UWDF_REQ_COMPLETED       0x0200u /* completed to its owner; not yet reused */
#define UWDF_REQ_FORGET          0x0400u /* queue request sent SEND_AND_FORGET */
#define UWDF_REQ_SEND_FAILED     0x0800u /* verifier: WdfRequestSend failed, not yet handled */
#define UWDF_REQ_APPEND          0x1000u /* a write to FILE_WRITE_TO_END_OF_FILE */

/* Where a request received from a queue is (request->qstate). */
enum uwdf_queue_state {
    UWDF_QS_NONE = 0,   /* driver-created, or a reserved request in its pool */
    UWDF_QS_QUEUED,     /* waiting on a queue */
    UWDF_QS_CANCELING,  /* taken off the queue by its cancel routine */
    UWDF_QS_OWNED,      /* presented to (or retrieved by) the driver */
    UWDF_QS_COMPLETING, /* the driver is completing it; still on the owned list */
    UWDF_QS_COMPLETED,  /* completed; the handle lives while referenced */
};

struct uwdf_iotarget;
struct uwdf_sync_wait;

struct uwdf_request {
    struct uwdf_object obj;
    PIRP irp;
    uint8_t irp_owner;
    bool from_irp;
    bool internal; /* framework's own request for a synchronous send */

    /* format */
    bool formatted;
    WDF_REQUEST_TYPE fmt_type;
    uint32_t fmt_seq;
    struct uwdf_memory *fmt_mem[2]; /* [0] input (write/ioctl in), [1] output */
    size_t fmt_offset[2];
    size_t fmt_length[2];
    void *fmt_buffer[2];            /* raw buffers of a synchronous send */
    WDFIOTARGET fmt_target; /* a handle: the target may be deleted before the request */

    /* send state, guarded by the target's lock while sent */
    struct uwdf_iotarget *target;
    long comp_refs;
    atomic_uint flags;
    /* This send's completion is decided (set under its target's lock when
     * it leaves the sent list; cleared by the next send before its flags).
     * Its own word: a plain store, where a bit in flags would need a
     * locked read-modify-write against a concurrent cancel's CANCELED. */
    atomic_bool send_over;
    LIST_ENTRY target_link;
    struct uwdf_request *resubmit_next;
    PFN_WDF_REQUEST_COMPLETION_ROUTINE routine;
    WDFCONTEXT routine_ctx;
    WDF_REQUEST_COMPLETION_PARAMS cparams;
    LONGLONG timeout;
    int64_t deadline_ns;
    struct uwdf_timer timer;
    struct uwdf_sync_wait *waiter;
    uint64_t pos_offset; /* file position reserved for a NULL DeviceOffset */
    size_t io_length;
    /* a completion decided by the framework, not the kernel (IOCTLs,
     * requests failed before they reached the engine) */
    bool fw_done;
    NTSTATUS fw_status;
    ULONG_PTR fw_info;
    struct uwdf_work work; /* a blocking IOCTL on the worker thread */

    struct uwdf_io io;
    struct iovec iov_inline[UWDF_INLINE_IOV];
    struct iovec *iov_heap;
    int iov_heap_cap;

    /* received from a queue (lib/queue.c); guarded by the queue lock */
    bool received;
    bool reserved;
    bool stop_acked;
    bool suspended;
    _Atomic uint8_t qstate; /* written under the queue lock, read without it too */
    struct uwdf_queue *queue;   /* the queue it is on or was presented by */
    struct uwdf_queue *fp_home; /* a reserved request's pool */
    struct uwdf_request *sender; /* the request whose IRP this is */
    LIST_ENTRY queue_link;
    LIST_ENTRY packet_link;     /* a packet waiting for a reserved request */
    PFN_WDF_REQUEST_CANCEL cancel_routine;
    atomic_bool cancelable;
    struct uwdf_memory rmem[2]; /* retrieved input [0] / output [1] memory */
    bool rmem_live[2];
    MDL rmdl;                   /* the buffer as an MDL, for direct I/O */
    PMDL rmdl_alloc;            /* an MDL built for a retrieval on buffered I/O */
    void *bounce;               /* buffered I/O over a scattered buffer */
    size_t bounce_len;
    PMDL saved_mdl;
    PVOID saved_user, saved_system, saved_type3;
    /* The IRP's buffers as presented (receive_setup's layout): what
     * retrieval hands out, and what the IRP gets back when a format that
     * replaced them is dropped (request_restore_presented). */
    PMDL pres_mdl;
    PVOID pres_user, pres_system;
};

_Static_assert(offsetof(struct uwdf_request, obj) == 0, "lookup casts the object pointer");
static inline struct uwdf_request *uwdf_request_lookup(WDFREQUEST handle, const char *ddi)
{
    return (struct uwdf_request *)uwdf_object_lookup(handle, UWDF_OBJ_REQUEST, ddi); /* obj is first */
}
/* A request for an incoming packet, with the device's request attributes. */
NTSTATUS uwdf_request_create_received(struct uwdf_device *dev, struct uwdf_request **out);
/* Back to the just-created state (a reserved request between packets);
 * contexts are kept, as WDF keeps them. */
void uwdf_request_reset(struct uwdf_request *req);
/* Release everything a format holds (memory references) and mark unformatted. */
void uwdf_request_release_format(struct uwdf_request *req);
void uwdf_request_drop_format(struct uwdf_request *req, bool may_park);
NTSTATUS uwdf_request_create_internal(struct uwdf_iotarget *target, struct uwdf_request **out);
NTSTATUS uwdf_request_grow_irp(struct uwdf_request *req, CCHAR stack_size);
/* The request has an IRP with at least stack_size locations: allocated or
 * grown (framework IRPs only) when it has not. */
static inline NTSTATUS uwdf_request_ensure_irp(struct uwdf_request *req, CCHAR stack_size)
{
    if (UWDF_LIKELY(req->irp && req->irp->StackCount >= stack_size))
        return STATUS_SUCCESS;
    return uwdf_request_grow_irp(req, stack_size);
}
/* A one-shot wake-up for one waiting thread (lib/runtime.c): a synchronous
 * send, a call into the engine thread. Signal once; the waiter may free it
 * as soon as its wait returns. */
struct uwdf_sync_wait {
    atomic_int done;
};
void uwdf_sync_wait_init(struct uwdf_sync_wait *w);
void uwdf_sync_wait_block(struct uwdf_sync_wait *w);
void uwdf_sync_wait_signal(struct uwdf_sync_wait *w);
/* Complete a request to its owner (lib/request.c), outside any lock; true
 * if a send from its completion routine took over its place in its target's
 * sent-I/O count (struct uwdf_completion_scope). */
bool uwdf_request_finish(struct uwdf_request *req, NTSTATUS status, ULONG_PTR information);

/* The completion of one sent request, open on its thread while the
 * driver's completion routine runs. The common routine reuses the request,
 * formats it with the same WDFMEMORY and sends it to the same target again;
 * what the old send holds and the new one would take at once passes over
 * instead of being released and taken again (an atomic read-modify-write
 * each): the target's reference on the request, the request's place in the
 * target's sent-I/O count, and the format's WDFMEMORY references, which
 * WdfRequestReuse sets aside here until the routine returns. Counts and
 * lifetimes are what they would have been; only a WDFMEMORY whose last
 * other reference the routine drops after the reuse is destroyed when the
 * routine returns rather than at once. */
struct uwdf_completion_scope {
    struct uwdf_request *req;     /* whose routine runs */
    struct uwdf_iotarget *target; /* still counts req in sent_count */
    bool req_ref_lent;            /* a resend of req took the target's reference */
    bool count_lent;              /* a send to target took req's count */
    struct uwdf_memory *parked[2]; /* format references set aside (held) */
};
extern __thread struct uwdf_completion_scope *uwdf_tls_completion;
/* Take the format reference on mem from a parked one, true if there was one. */
static inline bool uwdf_completion_unpark(const struct uwdf_request *req, struct uwdf_memory *mem)
{
    struct uwdf_completion_scope *sc = uwdf_tls_completion;
    if (!sc || sc->req != req)
        return false;
    for (int i = 0; i < 2; i++)
        if (sc->parked[i] == mem) {
            sc->parked[i] = NULL;
            return true;
        }
    return false;
}

/* ---- I/O targets ---- */
/* Stack locations a request needs for a file or block-device target: the
 * kernel is the only driver below. */
#define UWDF_FILE_TARGET_STACK 1

struct uwdf_iotarget {
    struct uwdf_object obj;
    struct uwdf_device *device;
    struct uwdf_biased_lock lock; /* biased to the engine thread */
    pthread_cond_t idle_cond;
    WDF_IO_TARGET_STATE state;
    bool opened;
    bool closing;
    /* opened && !closing, kept under the lock, read without it by the
     * format path (which only needs a recent answer: a close that starts
     * right after the check fails the send instead). */
    atomic_bool formattable;
    int fd;
    bool is_block;
    bool is_stream; /* FIFO, pipe, socket, character device */
    bool direct;
    bool write_through;
    ACCESS_MASK access;
    uint64_t size;
    uint32_t logical_sector;
    uint32_t physical_sector;
    uint32_t dio_mem_align;
    uint32_t dio_offset_align;
    struct uwdf_engine *engine;
    LIST_ENTRY sent;
    LIST_ENTRY pended;
    atomic_uint sent_count; /* changes under lock, except a decrement that stays > 0 */
    unsigned waiters;
    atomic_ullong file_pos;
    char *path;
    bool by_descriptor; /* opened beneath a root: never re-opened by name */
    WDF_IO_TARGET_OPEN_PARAMS open_params;
    FILE_OBJECT file_object;
    struct uwdf_device *lower; /* an in-process device target, referenced */
};

/* Stack locations a request needs below its sender for target t. */
static inline CCHAR uwdf_iotarget_stack_need(const struct uwdf_iotarget *t)
{
    return t->lower ? t->lower->wdm.StackSize : UWDF_FILE_TARGET_STACK;
}
/* An in-process device completed a packet sent to it (lib/queue.c). */
void uwdf_iotarget_device_done(struct uwdf_request *req, NTSTATUS status, ULONG_PTR information);

_Static_assert(offsetof(struct uwdf_iotarget, obj) == 0, "lookup casts the object pointer");
static inline struct uwdf_iotarget *uwdf_iotarget_lookup(WDFIOTARGET handle, const char *ddi)
{
    return (struct uwdf_iotarget *)uwdf_object_lookup(handle, UWDF_OBJ_IOTARGET, ddi); /* obj is first */
}
/* Queue a formatted request to the target (WdfRequestSend's core). Returns
 * STATUS_SUCCESS if sent or pended; otherwise the failure, with nothing
 * left half done. */
NTSTATUS uwdf_iotarget_submit(struct uwdf_iotarget *target, struct uwdf_request *req,
                              PWDF_REQUEST_SEND_OPTIONS options);
/* Validate a request for formatting to t: STATUS_INVALID_DEVICE_REQUEST
 * (sent), STATUS_INVALID_DEVICE_STATE (target not open),
 * STATUS_REQUEST_NOT_ACCEPTED / STATUS_INSUFFICIENT_RESOURCES (IRP). */
NTSTATUS uwdf_iotarget_prepare_request(struct uwdf_iotarget *t, struct uwdf_request *req,
                                       const char *ddi);
/* Cancel a sent request (WdfRequestCancelSentRequest's core). */
bool uwdf_iotarget_cancel_request(struct uwdf_request *req);
/* The access and option flags WdfIoTargetOpen opens a file with
 * (O_RDWR, O_DIRECT, ...), without the disposition's. */
NTSTATUS uwdf_iotarget_open_flags(const WDF_IO_TARGET_OPEN_PARAMS *p, int *flags);
/* Opens the target on fd, a file opened with flags (and O_NONBLOCK) by
 * whoever resolved name, which is kept only for messages: such a target is
 * never re-opened by name. The target owns fd, whatever the outcome. */
NTSTATUS uwdf_iotarget_open_fd(WDFIOTARGET IoTarget, PWDF_IO_TARGET_OPEN_PARAMS OpenParams, int fd, int flags,
                               const char *name);
/* A UNICODE_STRING (wchar_t) as a NUL-terminated UTF-8 path, allocated
 * with uwdf_alloc; NULL when out of memory. */
char *uwdf_unicode_to_utf8(PCUNICODE_STRING name);
/* Geometry (lib/geometry.c) */
int uwdf_geometry_probe(struct uwdf_iotarget *target);
/* Discard and zeroing (lib/blockops.c): blocking, so run on the worker. */
bool uwdf_blockops_handles(ULONG code);
NTSTATUS uwdf_blockops_ioctl(struct uwdf_iotarget *target, ULONG code, const void *in, size_t in_len);
/* IOCTLs answered by the framework for file and block-device targets. */
NTSTATUS uwdf_iotarget_ioctl(struct uwdf_iotarget *target, ULONG code, const void *in, size_t in_len,
                             void *out, size_t out_len, ULONG_PTR *information);

/* ---- devices, queues and IRP cancellation ---- */
/* The device registered under an NT name (\Device\..., \DosDevices\...,
 * \??\...), referenced; NULL if none. */
struct uwdf_device *uwdf_device_lookup_name(const char *name);
/* Deliver a packet sent to a device target into the device's queues. The
 * request is on the target's sent list with its I/O reference. */
void uwdf_queue_deliver(struct uwdf_device *dev, struct uwdf_request *sender);
/* The lock a queue's callbacks run under (its own when its scope is None),
 * whether they run at PASSIVE_LEVEL, and whether its scope is Queue or
 * Device (lib/queue.c): for WdfObjectAcquireLock and for timers and work
 * items with AutomaticSerialization. */
pthread_mutex_t *uwdf_queue_callback_lock(struct uwdf_object *queue, bool *passive, bool *serialized);
/* WdfRequestSend(SEND_AND_FORGET) of a received request. */
NTSTATUS uwdf_queue_send_and_forget(struct uwdf_request *req, struct uwdf_iotarget *t);
/* Buffers of an IOCTL as the IRP describes them (a forwarded request). */
void uwdf_request_irp_ioctl_buffers(struct uwdf_request *req, void **in, size_t *in_len, void **out,
                                    size_t *out_len);

enum uwdf_cancel_kind {
    UWDF_CANCEL_ON_QUEUE = 1, /* waiting on a queue */
    UWDF_CANCEL_DRIVER,       /* marked cancelable by the driver */
    UWDF_CANCEL_SENT,         /* a received request forwarded to a target */
    UWDF_CANCEL_FP_WAIT,      /* a packet waiting for a reserved request */
};
/* IoSetCancelRoutine/IoCancelIrp with one framework cancel lock. set
 * returns false if the IRP is already cancelled; clear returns false if a
 * cancel took the routine (the canceller now owns the outcome). */
bool uwdf_irp_set_cancel(PIRP irp, enum uwdf_cancel_kind kind, struct uwdf_request *owner);
bool uwdf_irp_clear_cancel(PIRP irp);
void uwdf_irp_cancel(PIRP irp);

/* ---- lists ---- */
static inline void uwdf_list_init(LIST_ENTRY *head)
{
    head->Flink = head->Blink = head;
}
static inline bool uwdf_list_empty(const LIST_ENTRY *head)
{
    return head->Flink == head;
}
static inline void uwdf_list_insert_tail(LIST_ENTRY *head, LIST_ENTRY *e)
{
    e->Blink = head->Blink;
    e->Flink = head;
    head->Blink->Flink = e;
    head->Blink = e;
}
static inline void uwdf_list_remove(LIST_ENTRY *e)
{
    e->Blink->Flink = e->Flink;
    e->Flink->Blink = e->Blink;
    e->Flink = e->Blink = e;
}
static inline LIST_ENTRY *uwdf_list_pop_head(LIST_ENTRY *head)
{
    LIST_ENTRY *e = head->Flink;
    if (e == head)
        return NULL;
    uwdf_list_remove(e);
    return e;
}

#endif
