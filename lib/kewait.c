/* Dispatcher objects (events, semaphores, mutexes) and the waits on them.
 *
 * As in the NT kernel, one process-wide dispatcher lock guards every
 * object's state and wait list. A waiting thread links one wait block per
 * object into the objects' wait lists and sleeps on its own condition
 * variable; whoever signals an object satisfies the waits it can, in the
 * order they began (acquiring the objects for the waiter: resetting a
 * synchronization event, taking a semaphore count or the mutex), and wakes
 * those waiters. A WaitAll wait is satisfied only when all its objects can
 * be acquired at once, and then acquires them all together. Fast and
 * guarded mutexes are built on a synchronization event. */
#include "ntrt.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL

static pthread_mutex_t dispatcher_lock = PTHREAD_MUTEX_INITIALIZER;

struct waiter {
    pthread_cond_t cond;
    WAIT_TYPE type;
    ULONG count;
    PVOID *objects;
    PKWAIT_BLOCK blocks;
    ULONG_PTR thread;
    bool satisfied;
    ULONG index; /* WaitAny: the object that satisfied the wait */
};

/* ---- object state, under the dispatcher lock ---- */

static PDISPATCHER_HEADER header_of(PVOID object)
{
    return (PDISPATCHER_HEADER)object;
}

static bool object_signalled(PVOID object, ULONG_PTR thread)
{
    PDISPATCHER_HEADER h = header_of(object);
    if (h->Type == MutantObject)
        return h->SignalState > 0 || ((PKMUTANT)object)->OwnerThread == (PVOID)thread;
    return h->SignalState > 0;
}

static void object_acquire(PVOID object, ULONG_PTR thread)
{
    PDISPATCHER_HEADER h = header_of(object);
    switch (h->Type) {
    case EventSynchronizationObject:
        h->SignalState = 0;
        break;
    case SemaphoreObject:
        h->SignalState--;
        break;
    case MutantObject:
        h->SignalState--;
        ((PKMUTANT)object)->OwnerThread = (PVOID)thread;
        break;
    default: /* a notification event stays signalled */
        break;
    }
}

static bool waiter_can_take_all(struct waiter *w)
{
    for (ULONG i = 0; i < w->count; i++)
        if (!object_signalled(w->objects[i], w->thread))
            return false;
    return true;
}

static void waiter_take_all(struct waiter *w)
{
    for (ULONG i = 0; i < w->count; i++)
        object_acquire(w->objects[i], w->thread);
}

/* Satisfy, in arrival order, the waits the object's new state allows. */
static void object_wake_waiters(PVOID object)
{
    PDISPATCHER_HEADER h = header_of(object);
    for (PLIST_ENTRY e = h->WaitListHead.Flink; e != &h->WaitListHead; e = e->Flink) {
        PKWAIT_BLOCK b = CONTAINING_RECORD(e, KWAIT_BLOCK, WaitListEntry);
        struct waiter *w = b->Thread;
        if (w->satisfied)
            continue;
        if (w->type == WaitAny) {
            if (!object_signalled(object, w->thread))
                break; /* consumed by an earlier waiter */
            object_acquire(object, w->thread);
            w->index = b->WaitKey;
        } else {
            if (!waiter_can_take_all(w))
                continue;
            waiter_take_all(w);
        }
        w->satisfied = true;
        pthread_cond_signal(&w->cond);
    }
}

/* ---- initialization ---- */

static void header_init(PDISPATCHER_HEADER h, UCHAR type, LONG state, UCHAR size)
{
    h->Type = type;
    h->Signalling = 0;
    h->Size = size;
    h->Reserved1 = 0;
    h->SignalState = state;
    InitializeListHead(&h->WaitListHead);
}

VOID KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State)
{
    header_init(&Event->Header, Type == SynchronizationEvent ? EventSynchronizationObject : EventNotificationObject,
                State ? 1 : 0, sizeof(KEVENT));
}

VOID UwdfKeDestroyEvent(PRKEVENT Event)
{
    (void)Event;
}

VOID KeInitializeSemaphore(PRKSEMAPHORE Semaphore, LONG Count, LONG Limit)
{
    header_init(&Semaphore->Header, SemaphoreObject, Count, sizeof(KSEMAPHORE));
    Semaphore->Limit = Limit;
}

VOID KeInitializeMutex(PRKMUTEX Mutex, ULONG Level)
{
    (void)Level;
    header_init(&Mutex->Header, MutantObject, 1, sizeof(KMUTEX));
    InitializeListHead(&Mutex->MutantListEntry);
    Mutex->OwnerThread = NULL;
    Mutex->Abandoned = FALSE;
    Mutex->ApcDisable = 1;
}

/* ---- signalling ---- */

LONG KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait)
{
    (void)Increment;
    (void)Wait;
    pthread_mutex_lock(&dispatcher_lock);
    LONG old = Event->Header.SignalState;
    Event->Header.SignalState = 1;
    object_wake_waiters(Event);
    pthread_mutex_unlock(&dispatcher_lock);
    return old;
}

LONG KePulseEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait)
{
    (void)Increment;
    (void)Wait;
    pthread_mutex_lock(&dispatcher_lock);
    LONG old = Event->Header.SignalState;
    Event->Header.SignalState = 1;
    object_wake_waiters(Event);
    Event->Header.SignalState = 0;
    pthread_mutex_unlock(&dispatcher_lock);
    return old;
}

LONG KeResetEvent(PRKEVENT Event)
{
    pthread_mutex_lock(&dispatcher_lock);
    LONG old = Event->Header.SignalState;
    Event->Header.SignalState = 0;
    pthread_mutex_unlock(&dispatcher_lock);
    return old;
}

VOID KeClearEvent(PRKEVENT Event)
{
    KeResetEvent(Event);
}

/* The state of any dispatcher object, read under the lock its writers hold. */
static LONG object_read_state(PVOID object)
{
    pthread_mutex_lock(&dispatcher_lock);
    LONG state = header_of(object)->SignalState;
    pthread_mutex_unlock(&dispatcher_lock);
    return state;
}

LONG KeReadStateEvent(PRKEVENT Event)
{
    return object_read_state(Event);
}

LONG KeReleaseSemaphore(PRKSEMAPHORE Semaphore, KPRIORITY Increment, LONG Adjustment, BOOLEAN Wait)
{
    (void)Increment;
    (void)Wait;
    pthread_mutex_lock(&dispatcher_lock);
    LONG old = Semaphore->Header.SignalState;
    LONG now;
    if (Adjustment <= 0 || __builtin_add_overflow(old, Adjustment, &now) || now > Semaphore->Limit) {
        pthread_mutex_unlock(&dispatcher_lock);
        char reason[128];
        snprintf(reason, sizeof(reason), "KeReleaseSemaphore(%p, +%d): count %d, limit %d", (void *)Semaphore,
                 (int)Adjustment, (int)old, (int)Semaphore->Limit);
        uwdf_bugcheck_report(SEMAPHORE_LIMIT_EXCEEDED, (ULONG_PTR)Semaphore, (ULONG_PTR)(ULONG)old,
                             (ULONG_PTR)(ULONG)Adjustment, 0, reason);
        return old;
    }
    Semaphore->Header.SignalState = now;
    object_wake_waiters(Semaphore);
    pthread_mutex_unlock(&dispatcher_lock);
    return old;
}

LONG KeReadStateSemaphore(PRKSEMAPHORE Semaphore)
{
    return object_read_state(Semaphore);
}

LONG KeReleaseMutex(PRKMUTEX Mutex, BOOLEAN Wait)
{
    (void)Wait;
    pthread_mutex_lock(&dispatcher_lock);
    LONG old = Mutex->Header.SignalState;
    if (Mutex->OwnerThread != (PVOID)uwdf_thread_token() || old > 0) {
        pthread_mutex_unlock(&dispatcher_lock);
        uwdf_bugcheck_report(THREAD_NOT_MUTEX_OWNER, (ULONG_PTR)Mutex, 0, 0, 0,
                             "KeReleaseMutex: the mutex is not owned by this thread");
        return old;
    }
    Mutex->Header.SignalState = old + 1;
    if (Mutex->Header.SignalState == 1) {
        Mutex->OwnerThread = NULL;
        object_wake_waiters(Mutex);
    }
    pthread_mutex_unlock(&dispatcher_lock);
    return old;
}

LONG KeReadStateMutex(PRKMUTEX Mutex)
{
    return object_read_state(Mutex);
}

/* ---- waiting ---- */

static bool object_known(PVOID object)
{
    UCHAR t = header_of(object)->Type;
    return t == EventNotificationObject || t == EventSynchronizationObject || t == SemaphoreObject ||
           t == MutantObject;
}

/* Under the dispatcher lock: satisfy the wait at once if its objects allow. */
static bool wait_try_now(struct waiter *w)
{
    if (w->type == WaitAll) {
        if (!waiter_can_take_all(w))
            return false;
        waiter_take_all(w);
        return true;
    }
    for (ULONG i = 0; i < w->count; i++) {
        if (object_signalled(w->objects[i], w->thread)) {
            object_acquire(w->objects[i], w->thread);
            w->index = i;
            return true;
        }
    }
    return false;
}

static NTSTATUS wait_status(const struct waiter *w)
{
    return w->type == WaitAny ? (NTSTATUS)(STATUS_WAIT_0 + w->index) : STATUS_SUCCESS;
}

static NTSTATUS wait_objects(struct waiter *w, PLARGE_INTEGER Timeout, const char *ddi)
{
    bool poll = Timeout && Timeout->QuadPart == 0;
    if (!poll && !uwdf_irql_check_max(APC_LEVEL, ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    int64_t deadline = 0;
    bool timed = Timeout && !poll && uwdf_timeout_to_mono_deadline(Timeout->QuadPart, &deadline);
    if (!poll)
        uwdf_engine_plug_flush();

    pthread_mutex_lock(&dispatcher_lock);
    if (wait_try_now(w)) {
        pthread_mutex_unlock(&dispatcher_lock);
        return wait_status(w);
    }
    if (poll) {
        pthread_mutex_unlock(&dispatcher_lock);
        return STATUS_TIMEOUT;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    for (ULONG i = 0; i < w->count; i++) {
        PKWAIT_BLOCK b = &w->blocks[i];
        b->Object = w->objects[i];
        b->Thread = w;
        b->WaitKey = (USHORT)i;
        b->WaitType = (UCHAR)w->type;
        InsertTailList(&header_of(w->objects[i])->WaitListHead, &b->WaitListEntry);
    }
    NTSTATUS status = STATUS_SUCCESS;
    while (!w->satisfied) {
        if (!timed) {
            pthread_cond_wait(&w->cond, &dispatcher_lock);
            continue;
        }
        struct timespec ts = { .tv_sec = deadline / NS_PER_SEC, .tv_nsec = deadline % NS_PER_SEC };
        if (pthread_cond_timedwait(&w->cond, &dispatcher_lock, &ts) == ETIMEDOUT && !w->satisfied) {
            status = STATUS_TIMEOUT;
            break;
        }
    }
    for (ULONG i = 0; i < w->count; i++)
        RemoveEntryList(&w->blocks[i].WaitListEntry);
    pthread_mutex_unlock(&dispatcher_lock);
    pthread_cond_destroy(&w->cond);
    return status == STATUS_TIMEOUT ? status : wait_status(w);
}

static bool wait_objects_valid(ULONG count, PVOID *objects, const char *ddi)
{
    for (ULONG i = 0; i < count; i++) {
        if (!objects[i] || !object_known(objects[i])) {
            char reason[128];
            snprintf(reason, sizeof(reason), "%s: object %u (%p) is not an initialized event, semaphore or mutex",
                     ddi, (unsigned)i, objects[i]);
            uwdf_bugcheck_report(KMODE_EXCEPTION_NOT_HANDLED, (ULONG_PTR)(ULONG)STATUS_ACCESS_VIOLATION,
                                 (ULONG_PTR)objects[i], 0, 0, reason);
            return false;
        }
    }
    return true;
}

NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout)
{
    KWAIT_BLOCK block;
    struct waiter w = { .type = WaitAny, .count = 1, .objects = &Object, .blocks = &block,
                        .thread = uwdf_thread_token() };
    (void)WaitReason;
    (void)WaitMode;
    (void)Alertable;
    if (!wait_objects_valid(1, &Object, "KeWaitForSingleObject"))
        return STATUS_INVALID_PARAMETER;
    return wait_objects(&w, Timeout, "KeWaitForSingleObject");
}

NTSTATUS KeWaitForMultipleObjects(ULONG Count, PVOID Object[], WAIT_TYPE WaitType, KWAIT_REASON WaitReason,
                                  KPROCESSOR_MODE WaitMode, BOOLEAN Alertable, PLARGE_INTEGER Timeout,
                                  PKWAIT_BLOCK WaitBlockArray)
{
    KWAIT_BLOCK own[THREAD_WAIT_OBJECTS];
    (void)WaitReason;
    (void)WaitMode;
    (void)Alertable;
    if (Count == 0 || Count > MAXIMUM_WAIT_OBJECTS || (Count > THREAD_WAIT_OBJECTS && !WaitBlockArray)) {
        char reason[128];
        snprintf(reason, sizeof(reason),
                 "KeWaitForMultipleObjects: %u objects%s (1 to %d; more than %d need a WaitBlockArray)",
                 (unsigned)Count, WaitBlockArray ? "" : " without a WaitBlockArray", MAXIMUM_WAIT_OBJECTS,
                 THREAD_WAIT_OBJECTS);
        uwdf_bugcheck_report(MAXIMUM_WAIT_OBJECTS_EXCEEDED, Count, 0, 0, 0, reason);
        return STATUS_INVALID_PARAMETER;
    }
    if (WaitType != WaitAll && WaitType != WaitAny)
        return STATUS_INVALID_PARAMETER;
    if (!wait_objects_valid(Count, Object, "KeWaitForMultipleObjects"))
        return STATUS_INVALID_PARAMETER;
    /* WaitAll on one mutex twice would need the owner to take it twice at
     * once: Windows refuses duplicates in a WaitAll. */
    if (WaitType == WaitAll)
        for (ULONG i = 0; i < Count; i++)
            for (ULONG j = i + 1; j < Count; j++)
                if (Object[i] == Object[j])
                    return STATUS_INVALID_PARAMETER_MIX;
    struct waiter w = { .type = WaitType, .count = Count, .objects = Object,
                        .blocks = WaitBlockArray ? WaitBlockArray : own, .thread = uwdf_thread_token() };
    return wait_objects(&w, Timeout, "KeWaitForMultipleObjects");
}

NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable, PLARGE_INTEGER Interval)
{
    (void)WaitMode;
    (void)Alertable;
    UWDF_REQUIRE_PARAM(Interval, "KeDelayExecutionThread", STATUS_INVALID_PARAMETER);
    if (!uwdf_irql_check_max(APC_LEVEL, "KeDelayExecutionThread"))
        return STATUS_INVALID_DEVICE_REQUEST;
    int64_t deadline;
    if (!uwdf_timeout_to_mono_deadline(Interval->QuadPart, &deadline)) {
        sched_yield(); /* 0: give up the rest of the quantum */
        return STATUS_SUCCESS;
    }
    struct timespec ts = { .tv_sec = deadline / NS_PER_SEC, .tv_nsec = deadline % NS_PER_SEC };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return STATUS_SUCCESS;
}

/* ---- fast and guarded mutexes: Count 1 is free ---- */

static void fast_mutex_take(PFAST_MUTEX m)
{
    m->Owner = (PVOID)uwdf_thread_token();
    m->Count = 0;
}

VOID ExInitializeFastMutex(PFAST_MUTEX FastMutex)
{
    FastMutex->Count = 1;
    FastMutex->Owner = NULL;
    FastMutex->Contention = 0;
    FastMutex->OldIrql = 0;
    KeInitializeEvent(&FastMutex->Event, SynchronizationEvent, TRUE);
}

VOID ExAcquireFastMutex(PFAST_MUTEX FastMutex)
{
    KIRQL old = KfRaiseIrql(APC_LEVEL);
    KeWaitForSingleObject(&FastMutex->Event, Executive, KernelMode, FALSE, NULL);
    fast_mutex_take(FastMutex);
    FastMutex->OldIrql = old;
}

BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex)
{
    LARGE_INTEGER poll = { .QuadPart = 0 };
    KIRQL old = KfRaiseIrql(APC_LEVEL);
    if (KeWaitForSingleObject(&FastMutex->Event, Executive, KernelMode, FALSE, &poll) != STATUS_SUCCESS) {
        KeLowerIrql(old);
        return FALSE;
    }
    fast_mutex_take(FastMutex);
    FastMutex->OldIrql = old;
    return TRUE;
}

VOID ExReleaseFastMutex(PFAST_MUTEX FastMutex)
{
    KIRQL old = (KIRQL)FastMutex->OldIrql;
    FastMutex->Owner = NULL;
    FastMutex->Count = 1;
    KeSetEvent(&FastMutex->Event, 0, FALSE);
    KeLowerIrql(old);
}

VOID ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex)
{
    KeWaitForSingleObject(&FastMutex->Event, Executive, KernelMode, FALSE, NULL);
    fast_mutex_take(FastMutex);
}

VOID ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex)
{
    FastMutex->Owner = NULL;
    FastMutex->Count = 1;
    KeSetEvent(&FastMutex->Event, 0, FALSE);
}

VOID KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    ExInitializeFastMutex(Mutex);
}

VOID KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    KeEnterGuardedRegion();
    ExAcquireFastMutexUnsafe(Mutex);
}

BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    LARGE_INTEGER poll = { .QuadPart = 0 };
    KeEnterGuardedRegion();
    if (KeWaitForSingleObject(&Mutex->Event, Executive, KernelMode, FALSE, &poll) != STATUS_SUCCESS) {
        KeLeaveGuardedRegion();
        return FALSE;
    }
    fast_mutex_take(Mutex);
    return TRUE;
}

VOID KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    ExReleaseFastMutexUnsafe(Mutex);
    KeLeaveGuardedRegion();
}
