/* WDF locks: WdfObjectAcquireLock on a device or queue (the lock its
 * callbacks run under), wait locks and spin locks; and the lookup of that
 * callback lock that timers and work items with AutomaticSerialization
 * share. */
#include "ntrt.h"

#include <errno.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL
/* Object locks one thread may hold at once with their IRQL remembered. */
#define OBJECT_LOCKS_HELD_MAX 16

/* ---- callback locks of devices and queues ---- */

static void device_constraints(struct uwdf_device *dev, bool *passive, bool *serialized)
{
    WDF_EXECUTION_LEVEL level = WdfExecutionLevelInheritFromParent;
    WDF_SYNCHRONIZATION_SCOPE scope = WdfSynchronizationScopeInheritFromParent;
    /* As KMDF resolves them: the device's own, else the driver's, else the
     * driver defaults (Dispatch, None). */
    for (struct uwdf_object *o = &dev->obj; o; o = o->parent) {
        if (level == WdfExecutionLevelInheritFromParent)
            level = o->exec_level;
        if (scope == WdfSynchronizationScopeInheritFromParent)
            scope = o->sync_scope;
    }
    *passive = level == WdfExecutionLevelPassive;
    *serialized = scope == WdfSynchronizationScopeDevice || scope == WdfSynchronizationScopeQueue;
}

bool uwdf_callback_owner_find(struct uwdf_object *obj, struct uwdf_callback_owner *out)
{
    for (struct uwdf_object *o = obj; o; o = o->parent) {
        if (o->type == UWDF_OBJ_QUEUE) {
            out->obj = o;
            out->lock = uwdf_queue_callback_lock(o, &out->passive, &out->serialized);
            return true;
        }
        if (o->type == UWDF_OBJ_DEVICE) {
            struct uwdf_device *dev = (struct uwdf_device *)o;
            out->obj = o;
            out->lock = &dev->sync_lock;
            device_constraints(dev, &out->passive, &out->serialized);
            return true;
        }
    }
    return false;
}

struct uwdf_device *uwdf_object_find_device(struct uwdf_object *obj)
{
    for (struct uwdf_object *o = obj; o; o = o->parent)
        if (o->type == UWDF_OBJ_DEVICE)
            return (struct uwdf_device *)o;
    return NULL;
}

NTSTATUS uwdf_deferred_callback_lock(struct uwdf_object *parent, bool serialize, enum uwdf_defer_level level,
                                     pthread_mutex_t **lock)
{
    struct uwdf_callback_owner owner;
    *lock = NULL;
    if (!uwdf_object_find_device(parent) || !uwdf_callback_owner_find(parent, &owner))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (serialize && owner.serialized) {
        if (owner.passive != (level == UWDF_DEFER_PASSIVE))
            return STATUS_WDF_INCOMPATIBLE_EXECUTION_LEVEL;
        *lock = owner.lock;
    }
    return uwdf_deferred_prepare(level) == 0 ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

NTSTATUS uwdf_attributes_validate_plain(PWDF_OBJECT_ATTRIBUTES attrs, bool level_allowed)
{
    NTSTATUS status = uwdf_attributes_validate(attrs, 0);
    if (!NT_SUCCESS(status) || !attrs)
        return status;
    if (attrs->SynchronizationScope != WdfSynchronizationScopeInheritFromParent &&
        attrs->SynchronizationScope != WdfSynchronizationScopeNone)
        return STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID;
    if (!level_allowed && attrs->ExecutionLevel != WdfExecutionLevelInheritFromParent)
        return STATUS_WDF_EXECUTION_LEVEL_INVALID;
    return STATUS_SUCCESS;
}

/* ---- WdfObjectAcquireLock: the IRQL before each hold, per thread ---- */

static __thread struct {
    pthread_mutex_t *lock;
    KIRQL irql;
} tls_object_locks[OBJECT_LOCKS_HELD_MAX];
static __thread int tls_object_locks_held;

static bool object_lock_owner(WDFOBJECT Object, const char *ddi, struct uwdf_callback_owner *owner)
{
    struct uwdf_object *obj = uwdf_object_lookup(Object, 0, ddi);
    if (!obj)
        return false;
    if ((obj->type != UWDF_OBJ_DEVICE && obj->type != UWDF_OBJ_QUEUE) || !uwdf_callback_owner_find(obj, owner)) {
        uwdf_bugcheck(WDF_INVALID_LOCK_OPERATION, (ULONG_PTR)Object, 0, 0,
                      "%s: a %s has no synchronization lock (only a WDFDEVICE or WDFQUEUE does)", ddi,
                      uwdf_object_type_name(obj->type));
        return false;
    }
    return true;
}

VOID WdfObjectAcquireLock(WDFOBJECT Object)
{
    struct uwdf_callback_owner owner;
    if (!object_lock_owner(Object, "WdfObjectAcquireLock", &owner))
        return;
    uwdf_irql_check_max(DISPATCH_LEVEL, "WdfObjectAcquireLock");
    if (tls_object_locks_held == OBJECT_LOCKS_HELD_MAX) {
        uwdf_bugcheck(WDF_INVALID_LOCK_OPERATION, (ULONG_PTR)Object, 1, 0,
                      "WdfObjectAcquireLock: more than %d object locks held by one thread", OBJECT_LOCKS_HELD_MAX);
        return;
    }
    pthread_mutex_lock(owner.lock);
    tls_object_locks[tls_object_locks_held].lock = owner.lock;
    tls_object_locks[tls_object_locks_held].irql = uwdf_tls_irql;
    tls_object_locks_held++;
    /* A dispatch-level object's lock is a spin lock on Windows. */
    if (!owner.passive && uwdf_tls_irql < DISPATCH_LEVEL)
        uwdf_tls_irql = DISPATCH_LEVEL;
}

VOID WdfObjectReleaseLock(WDFOBJECT Object)
{
    struct uwdf_callback_owner owner;
    if (!object_lock_owner(Object, "WdfObjectReleaseLock", &owner))
        return;
    int i = tls_object_locks_held - 1;
    while (i >= 0 && tls_object_locks[i].lock != owner.lock)
        i--;
    if (i < 0) {
        uwdf_bugcheck(WDF_INVALID_LOCK_OPERATION, (ULONG_PTR)Object, 0, 0,
                      "WdfObjectReleaseLock: the lock of %p is not held by this thread (WdfObjectAcquireLock)",
                      (void *)Object);
        return;
    }
    KIRQL irql = tls_object_locks[i].irql;
    for (; i + 1 < tls_object_locks_held; i++)
        tls_object_locks[i] = tls_object_locks[i + 1];
    tls_object_locks_held--;
    pthread_mutex_unlock(owner.lock);
    uwdf_tls_irql = irql;
}

/* ---- WDFWAITLOCK ---- */

struct uwdf_waitlock {
    struct uwdf_object obj;
    pthread_mutex_t mutex;
    pthread_cond_t released;
    bool held;
    ULONG_PTR owner;
};

static void waitlock_destroy(struct uwdf_object *obj)
{
    struct uwdf_waitlock *l = (struct uwdf_waitlock *)obj;
    pthread_cond_destroy(&l->released);
    pthread_mutex_destroy(&l->mutex);
}

static const struct uwdf_object_ops waitlock_ops = { .destroy = waitlock_destroy };

static struct uwdf_waitlock *waitlock_lookup(WDFWAITLOCK handle, const char *ddi)
{
    return (struct uwdf_waitlock *)uwdf_object_lookup(handle, UWDF_OBJ_WAITLOCK, ddi);
}

NTSTATUS WdfWaitLockCreate(PWDF_OBJECT_ATTRIBUTES LockAttributes, WDFWAITLOCK *Lock)
{
    struct uwdf_object *obj;
    UWDF_REQUIRE_PARAM(Lock, "WdfWaitLockCreate", STATUS_INVALID_PARAMETER);
    *Lock = NULL;
    if (!uwdf_irql_check_max(DISPATCH_LEVEL, "WdfWaitLockCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    NTSTATUS status = uwdf_attributes_validate_plain(LockAttributes, false);
    if (!NT_SUCCESS(status))
        return status;
    status = uwdf_object_create(sizeof(struct uwdf_waitlock), UWDF_OBJ_WAITLOCK, &waitlock_ops, LockAttributes,
                                uwdf_driver_default_parent(), 0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_waitlock *l = (struct uwdf_waitlock *)obj;
    pthread_condattr_t attr;
    pthread_mutex_init(&l->mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->released, &attr);
    pthread_condattr_destroy(&attr);
    *Lock = (WDFWAITLOCK)obj->handle;
    return STATUS_SUCCESS;
}

NTSTATUS WdfWaitLockAcquire(WDFWAITLOCK Lock, PLONGLONG Timeout)
{
    struct uwdf_waitlock *l = waitlock_lookup(Lock, "WdfWaitLockAcquire");
    if (!l)
        return STATUS_INVALID_HANDLE;
    bool try_once = Timeout && *Timeout == 0;
    if (!uwdf_irql_check_max(try_once ? DISPATCH_LEVEL : PASSIVE_LEVEL, "WdfWaitLockAcquire"))
        return STATUS_INVALID_DEVICE_REQUEST;
    int64_t deadline = 0;
    bool timed = Timeout && !try_once && uwdf_timeout_to_mono_deadline(*Timeout, &deadline);
    ULONG_PTR self = uwdf_thread_token();
    pthread_mutex_lock(&l->mutex);
    if (l->held && l->owner == self) {
        pthread_mutex_unlock(&l->mutex);
        uwdf_bugcheck(WDF_RECURSIVE_LOCK, (ULONG_PTR)Lock, 0, 0,
                      "WdfWaitLockAcquire: the thread already holds wait lock %p (it would wait for itself)",
                      (void *)Lock);
        return STATUS_TIMEOUT;
    }
    NTSTATUS status = STATUS_SUCCESS;
    while (l->held) {
        if (try_once) {
            status = STATUS_TIMEOUT;
            break;
        }
        if (!timed) {
            pthread_cond_wait(&l->released, &l->mutex);
            continue;
        }
        struct timespec ts = { .tv_sec = deadline / NS_PER_SEC, .tv_nsec = deadline % NS_PER_SEC };
        if (pthread_cond_timedwait(&l->released, &l->mutex, &ts) == ETIMEDOUT && l->held) {
            status = STATUS_TIMEOUT;
            break;
        }
    }
    if (status == STATUS_SUCCESS) {
        l->held = true;
        l->owner = self;
    }
    pthread_mutex_unlock(&l->mutex);
    return status;
}

VOID WdfWaitLockRelease(WDFWAITLOCK Lock)
{
    struct uwdf_waitlock *l = waitlock_lookup(Lock, "WdfWaitLockRelease");
    if (!l)
        return;
    uwdf_irql_check_max(DISPATCH_LEVEL, "WdfWaitLockRelease");
    pthread_mutex_lock(&l->mutex);
    if (!l->held) {
        pthread_mutex_unlock(&l->mutex);
        uwdf_bugcheck(WDF_INVALID_LOCK_OPERATION, (ULONG_PTR)Lock, 0, 0,
                      "WdfWaitLockRelease: wait lock %p is not held", (void *)Lock);
        return;
    }
    l->held = false;
    l->owner = 0;
    pthread_cond_signal(&l->released);
    pthread_mutex_unlock(&l->mutex);
}

/* ---- WDFSPINLOCK ---- */

struct uwdf_spinlock {
    struct uwdf_object obj;
    KSPIN_LOCK lock;
    KIRQL old_irql; /* of the holder's acquire */
};

static const struct uwdf_object_ops spinlock_ops = { 0 };

static struct uwdf_spinlock *spinlock_lookup(WDFSPINLOCK handle, const char *ddi)
{
    return (struct uwdf_spinlock *)uwdf_object_lookup(handle, UWDF_OBJ_SPINLOCK, ddi);
}

NTSTATUS WdfSpinLockCreate(PWDF_OBJECT_ATTRIBUTES SpinLockAttributes, WDFSPINLOCK *SpinLock)
{
    struct uwdf_object *obj;
    UWDF_REQUIRE_PARAM(SpinLock, "WdfSpinLockCreate", STATUS_INVALID_PARAMETER);
    *SpinLock = NULL;
    if (!uwdf_irql_check_max(DISPATCH_LEVEL, "WdfSpinLockCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    NTSTATUS status = uwdf_attributes_validate_plain(SpinLockAttributes, false);
    if (!NT_SUCCESS(status))
        return status;
    status = uwdf_object_create(sizeof(struct uwdf_spinlock), UWDF_OBJ_SPINLOCK, &spinlock_ops, SpinLockAttributes,
                                uwdf_driver_default_parent(), 0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    KeInitializeSpinLock(&((struct uwdf_spinlock *)obj)->lock);
    *SpinLock = (WDFSPINLOCK)obj->handle;
    return STATUS_SUCCESS;
}

VOID WdfSpinLockAcquire(WDFSPINLOCK SpinLock)
{
    struct uwdf_spinlock *l = spinlock_lookup(SpinLock, "WdfSpinLockAcquire");
    if (!l)
        return;
    uwdf_irql_check_max(DISPATCH_LEVEL, "WdfSpinLockAcquire");
    if (__atomic_load_n(&l->lock, __ATOMIC_RELAXED) == uwdf_thread_token()) {
        uwdf_bugcheck(WDF_RECURSIVE_LOCK, (ULONG_PTR)SpinLock, 0, 0,
                      "WdfSpinLockAcquire: the thread already holds spin lock %p (it would spin forever)",
                      (void *)SpinLock);
        return;
    }
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL > uwdf_tls_irql ? DISPATCH_LEVEL : uwdf_tls_irql);
    KeAcquireSpinLockAtDpcLevel(&l->lock);
    l->old_irql = old;
}

VOID WdfSpinLockRelease(WDFSPINLOCK SpinLock)
{
    struct uwdf_spinlock *l = spinlock_lookup(SpinLock, "WdfSpinLockRelease");
    if (!l)
        return;
    if (__atomic_load_n(&l->lock, __ATOMIC_RELAXED) != uwdf_thread_token()) {
        uwdf_bugcheck(WDF_INVALID_LOCK_OPERATION, (ULONG_PTR)SpinLock, 0, 0,
                      "WdfSpinLockRelease: spin lock %p is not held by this thread", (void *)SpinLock);
        return;
    }
    KIRQL old = l->old_irql;
    KeReleaseSpinLockFromDpcLevel(&l->lock);
    uwdf_tls_irql = old;
}
