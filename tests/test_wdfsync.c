/* The WDF utility objects: spin and wait locks, WdfObjectAcquireLock,
 * collections, strings and the version DDIs, timers and work items, and
 * the serialization of timer, work-item and queue callbacks that share a
 * queue's or device's synchronization lock. */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wdf.h>

#include "../lib/ntrt.h"

#define IOCTL_TEST CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* How long waits for a callback that must come may take before the test
 * fails (the machine may be busy). */
#define PATIENCE_MS 5000

static int ld(atomic_int *a)
{
    return atomic_load(a);
}

/* Waits up to PATIENCE_MS for *a to reach at least want. */
static bool wait_at_least(atomic_int *a, int want)
{
    double end = tu_now_ms() + PATIENCE_MS;
    while (atomic_load(a) < want) {
        if (tu_now_ms() > end)
            return false;
        tu_sleep_ms(1);
    }
    return true;
}

/* A verifier break: with the verifier on, an unhandled breakpoint. */
static void expect_verifier_break(void)
{
    ck_assert_int_eq(tu_last_bugcheck.count, 1);
    ck_assert_uint_eq(tu_last_bugcheck.bugcheck, KMODE_EXCEPTION_NOT_HANDLED);
    ck_assert_status((NTSTATUS)tu_last_bugcheck.p[0], STATUS_BREAKPOINT);
    tu_bugcheck_reset();
}

/* Objects of a type the framework holds now (UwdfQueryObjectCount). */
static ULONGLONG live_objects(const char *type)
{
    UWDF_OBJECT_COUNT c;
    ck_assert_status(UwdfQueryObjectCount(type, &c), STATUS_SUCCESS);
    return c.Live;
}

/* Waits up to PATIENCE_MS for the live objects of type to come down to
 * want (the last reference of a callback's object goes on the framework's
 * thread, just after the callback). */
static bool live_objects_fall_to(const char *type, ULONGLONG want)
{
    double end = tu_now_ms() + PATIENCE_MS;
    while (live_objects(type) > want) {
        if (tu_now_ms() > end)
            return false;
        tu_sleep_ms(1);
    }
    return live_objects(type) == want;
}

/* ---- objects that count their destruction ---- */

static atomic_int destroyed, cleaned;

static VOID count_destroy(WDFOBJECT Object)
{
    (void)Object;
    atomic_fetch_add(&destroyed, 1);
}

static VOID count_cleanup(WDFOBJECT Object)
{
    (void)Object;
    atomic_fetch_add(&cleaned, 1);
}

static void counted_attributes(PWDF_OBJECT_ATTRIBUTES a, WDFOBJECT parent)
{
    WDF_OBJECT_ATTRIBUTES_INIT(a);
    a->ParentObject = parent;
    a->EvtDestroyCallback = count_destroy;
    a->EvtCleanupCallback = count_cleanup;
}

static WDFSTRING make_string(const char *text, WDFOBJECT parent)
{
    WCHAR buf[64];
    UNICODE_STRING us;
    WDF_OBJECT_ATTRIBUTES a;
    WDFSTRING s;
    tu_unicode(&us, buf, 64, text);
    counted_attributes(&a, parent);
    ck_assert_status(WdfStringCreate(&us, &a, &s), STATUS_SUCCESS);
    return s;
}

/* A named control device (the driver's own default attributes: dispatch
 * level, no synchronization unless scope says otherwise). */
static WDFDEVICE make_device(WDFDRIVER driver, const char *name, WDF_SYNCHRONIZATION_SCOPE scope,
                             WDF_EXECUTION_LEVEL level)
{
    WDFDEVICE dev;
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.SynchronizationScope = scope;
    attrs.ExecutionLevel = level;
    ck_assert_status(tu_device_create(driver, name, WdfDeviceIoBuffered, &attrs, NULL, &dev), STATUS_SUCCESS);
    return dev;
}

static WDFQUEUE make_queue(WDFDEVICE dev, PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL ioctl, WDF_SYNCHRONIZATION_SCOPE scope,
                           WDF_EXECUTION_LEVEL level)
{
    WDF_IO_QUEUE_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    WDFQUEUE q;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDeviceControl = ioctl;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.SynchronizationScope = scope;
    a.ExecutionLevel = level;
    ck_assert_status(WdfIoQueueCreate(dev, &c, &a, &q), STATUS_SUCCESS);
    return q;
}

static VOID ioctl_complete(WDFQUEUE Queue, WDFREQUEST Request, size_t OutputBufferLength,
                           size_t InputBufferLength, ULONG IoControlCode)
{
    (void)Queue;
    (void)OutputBufferLength;
    (void)InputBufferLength;
    (void)IoControlCode;
    WdfRequestComplete(Request, STATUS_SUCCESS);
}

/* ---- spin locks ---- */

START_TEST(spin_lock_raises_to_dispatch_and_restores)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFSPINLOCK l;
    tu_driver_and_device(&drv, &dev);
    ck_assert_status(WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &l), STATUS_SUCCESS);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    WdfSpinLockAcquire(l);
    ck_assert_int_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    WdfSpinLockRelease(l);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* taken at DISPATCH_LEVEL it leaves the IRQL there */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    WdfSpinLockAcquire(l);
    WdfSpinLockRelease(l);
    ck_assert_int_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
    /* two locks released in the reverse order restore each IRQL */
    WDFSPINLOCK l2;
    ck_assert_status(WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &l2), STATUS_SUCCESS);
    WdfSpinLockAcquire(l);
    WdfSpinLockAcquire(l2);
    WdfSpinLockRelease(l2);
    ck_assert_int_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    WdfSpinLockRelease(l);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(spin_lock_misuse_bugchecks)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFSPINLOCK l;
    tu_driver_and_device(&drv, &dev);
    ck_assert_status(WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, NULL), STATUS_INVALID_PARAMETER);
    tu_bugcheck_reset(); /* a NULL out-parameter is a verifier report too */
    ck_assert_status(WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &l), STATUS_SUCCESS);
    WdfSpinLockRelease(l);
    tu_expect_bugcheck_reason(WDF_INVALID_LOCK_OPERATION, "not held");
    WdfSpinLockAcquire(l);
    WdfSpinLockAcquire(l);
    tu_expect_bugcheck_reason(WDF_RECURSIVE_LOCK, "already holds");
    ck_assert_int_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    WdfSpinLockRelease(l);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* execution level and synchronization scope are not a lock's to set */
    WDF_OBJECT_ATTRIBUTES a;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ExecutionLevel = WdfExecutionLevelPassive;
    ck_assert_status(WdfSpinLockCreate(&a, &l), STATUS_WDF_EXECUTION_LEVEL_INVALID);
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.SynchronizationScope = WdfSynchronizationScopeDevice;
    ck_assert_status(WdfSpinLockCreate(&a, &l), STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID);
    /* above DISPATCH_LEVEL creation fails */
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    ck_assert_status(WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &l), STATUS_INVALID_DEVICE_REQUEST);
    KeLowerIrql(old);
    WdfObjectDelete(drv);
}
END_TEST

/* ---- mutual exclusion under contention (both lock kinds) ---- */

#define CONTENDERS 4
#define CONTENDED_ROUNDS 20000

struct contention {
    WDFSPINLOCK spin;
    WDFWAITLOCK wait;
    long counter; /* deliberately not atomic */
    atomic_int wrong_irql;
};

static void *contend(void *p)
{
    struct contention *c = p;
    for (int i = 0; i < CONTENDED_ROUNDS; i++) {
        if (c->spin) {
            WdfSpinLockAcquire(c->spin);
            if (KeGetCurrentIrql() != DISPATCH_LEVEL)
                atomic_fetch_add(&c->wrong_irql, 1);
            long v = c->counter;
            if (i % 64 == 0)
                sched_yield();
            c->counter = v + 1;
            WdfSpinLockRelease(c->spin);
        } else {
            ck_assert_status(WdfWaitLockAcquire(c->wait, NULL), STATUS_SUCCESS);
            long v = c->counter;
            if (i % 64 == 0)
                sched_yield();
            c->counter = v + 1;
            WdfWaitLockRelease(c->wait);
        }
    }
    return NULL;
}

START_TEST(locks_exclude_under_contention)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct contention c = { 0 };
    if (_i == 0)
        ck_assert_status(WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &c.spin), STATUS_SUCCESS);
    else
        ck_assert_status(WdfWaitLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &c.wait), STATUS_SUCCESS);
    pthread_t th[CONTENDERS];
    for (int i = 0; i < CONTENDERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, contend, &c), 0);
    for (int i = 0; i < CONTENDERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(c.counter, (long)CONTENDERS * CONTENDED_ROUNDS);
    ck_assert_int_eq(ld(&c.wrong_irql), 0);
    WdfObjectDelete(drv);
}
END_TEST

/* ---- wait locks ---- */

struct try_lock {
    WDFWAITLOCK lock;
    LONGLONG timeout;
    bool use_timeout;
    NTSTATUS status;
    double elapsed_ms;
};

static void *try_lock_thread(void *p)
{
    struct try_lock *t = p;
    double t0 = tu_now_ms();
    t->status = WdfWaitLockAcquire(t->lock, t->use_timeout ? &t->timeout : NULL);
    t->elapsed_ms = tu_now_ms() - t0;
    if (t->status == STATUS_SUCCESS)
        WdfWaitLockRelease(t->lock);
    return NULL;
}

static struct try_lock try_from_thread(WDFWAITLOCK l, bool use_timeout, LONGLONG timeout)
{
    struct try_lock t = { .lock = l, .timeout = timeout, .use_timeout = use_timeout };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, try_lock_thread, &t), 0);
    pthread_join(th, NULL);
    return t;
}

START_TEST(wait_lock_timeouts)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFWAITLOCK l;
    tu_driver_and_device(&drv, &dev);
    ck_assert_status(WdfWaitLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &l), STATUS_SUCCESS);
    /* free: every form gets it at once */
    LONGLONG zero = 0;
    ck_assert_status(WdfWaitLockAcquire(l, &zero), STATUS_SUCCESS);
    WdfWaitLockRelease(l);
    ck_assert_status(try_from_thread(l, true, WDF_REL_TIMEOUT_IN_MS(10)).status, STATUS_SUCCESS);
    ck_assert_status(WdfWaitLockAcquire(l, NULL), STATUS_SUCCESS);
    /* held: a poll fails at once, a relative timeout after it, an absolute
     * time already past at once */
    struct try_lock t = try_from_thread(l, true, 0);
    ck_assert_status(t.status, STATUS_TIMEOUT);
    ck_assert_double_lt(t.elapsed_ms, PATIENCE_MS);
    t = try_from_thread(l, true, WDF_REL_TIMEOUT_IN_MS(30));
    ck_assert_status(t.status, STATUS_TIMEOUT);
    ck_assert_double_ge(t.elapsed_ms, 29.0);
    LARGE_INTEGER now;
    KeQuerySystemTime(&now);
    t = try_from_thread(l, true, now.QuadPart - WDF_TIMEOUT_TO_SEC);
    ck_assert_status(t.status, STATUS_TIMEOUT);
    ck_assert_double_lt(t.elapsed_ms, PATIENCE_MS);
    /* measured from the reading of the clock the deadline counts from */
    double t0 = tu_now_ms();
    KeQuerySystemTime(&now);
    t = try_from_thread(l, true, now.QuadPart + WDF_ABS_TIMEOUT_IN_MS(30));
    ck_assert_status(t.status, STATUS_TIMEOUT);
    ck_assert_double_ge(tu_now_ms() - t0, 29.0);
    WdfWaitLockRelease(l);
    /* at DISPATCH_LEVEL only a poll is allowed */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert_status(WdfWaitLockAcquire(l, &zero), STATUS_SUCCESS);
    WdfWaitLockRelease(l);
    ck_assert_status(WdfWaitLockAcquire(l, NULL), STATUS_INVALID_DEVICE_REQUEST);
    KeLowerIrql(old);
    WdfObjectDelete(drv);
}
END_TEST

struct waiter {
    WDFWAITLOCK lock;
    atomic_int got;
};

static void *wait_forever(void *p)
{
    struct waiter *w = p;
    ck_assert_status(WdfWaitLockAcquire(w->lock, NULL), STATUS_SUCCESS);
    atomic_store(&w->got, 1);
    WdfWaitLockRelease(w->lock);
    return NULL;
}

START_TEST(wait_lock_release_wakes_a_waiter)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct waiter w = { 0 };
    ck_assert_status(WdfWaitLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &w.lock), STATUS_SUCCESS);
    ck_assert_status(WdfWaitLockAcquire(w.lock, NULL), STATUS_SUCCESS);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, wait_forever, &w), 0);
    tu_sleep_ms(30);
    ck_assert_int_eq(ld(&w.got), 0);
    WdfWaitLockRelease(w.lock);
    pthread_join(th, NULL);
    ck_assert_int_eq(ld(&w.got), 1);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(wait_lock_misuse_and_parenting)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFWAITLOCK l;
    tu_driver_and_device(&drv, &dev);
    ck_assert_status(WdfWaitLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &l), STATUS_SUCCESS);
    WdfWaitLockRelease(l);
    tu_expect_bugcheck_reason(WDF_INVALID_LOCK_OPERATION, "not held");
    ck_assert_status(WdfWaitLockAcquire(l, NULL), STATUS_SUCCESS);
    /* a second acquire by the holder would wait for itself */
    ck_assert_status(WdfWaitLockAcquire(l, NULL), STATUS_TIMEOUT);
    tu_expect_bugcheck_reason(WDF_RECURSIVE_LOCK, "already holds");
    WdfWaitLockRelease(l);
    /* parented to the device: deleted with it */
    WDF_OBJECT_ATTRIBUTES a;
    atomic_store(&destroyed, 0);
    counted_attributes(&a, dev);
    ck_assert_status(WdfWaitLockCreate(&a, &l), STATUS_SUCCESS);
    a.ExecutionLevel = WdfExecutionLevelDispatch;
    ck_assert_status(WdfWaitLockCreate(&a, &l), STATUS_WDF_EXECUTION_LEVEL_INVALID);
    ck_assert_ptr_null(l);
    WdfObjectDelete(dev);
    ck_assert_int_eq(ld(&destroyed), 1);
    WdfObjectDelete(drv);
}
END_TEST

/* ---- WdfObjectAcquireLock ---- */

static atomic_int serialized_calls;

static VOID count_timer(WDFTIMER Timer)
{
    (void)Timer;
    atomic_fetch_add(&serialized_calls, 1);
}

START_TEST(object_lock_holds_off_serialized_callbacks)
{
    WDFDRIVER drv;
    WDFDEVICE ctl;
    tu_driver_and_device(&drv, &ctl);
    bool passive = _i == 1;
    WDF_EXECUTION_LEVEL level = passive ? WdfExecutionLevelPassive : WdfExecutionLevelInheritFromParent;
    WDFDEVICE dev = make_device(drv, "\\Device\\uwdfObjLock", WdfSynchronizationScopeInheritFromParent,
                                WdfExecutionLevelInheritFromParent);
    WDFQUEUE q = make_queue(dev, ioctl_complete, WdfSynchronizationScopeQueue, level);
    WDF_TIMER_CONFIG tc;
    WDF_OBJECT_ATTRIBUTES a;
    WDFTIMER t;
    WDF_TIMER_CONFIG_INIT(&tc, count_timer);
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = q;
    a.ExecutionLevel = level;
    ck_assert_status(WdfTimerCreate(&tc, &a, &t), STATUS_SUCCESS);
    atomic_store(&serialized_calls, 0);

    WdfObjectAcquireLock(q);
    /* a dispatch-level queue's lock is a spin lock */
    ck_assert_int_eq(KeGetCurrentIrql(), passive ? PASSIVE_LEVEL : DISPATCH_LEVEL);
    WdfTimerStart(t, 0);
    tu_sleep_ms(50);
    ck_assert_int_eq(ld(&serialized_calls), 0);
    WdfObjectReleaseLock(q);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    ck_assert(wait_at_least(&serialized_calls, 1));

    /* the device's lock is another lock: it does not hold the queue's */
    WdfObjectAcquireLock(dev);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&serialized_calls, 2));
    WdfObjectReleaseLock(dev);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(object_lock_misuse_bugchecks)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    WDFSTRING s = make_string("x", dev);
    WdfObjectAcquireLock(s);
    tu_expect_bugcheck_reason(WDF_INVALID_LOCK_OPERATION, "WDFDEVICE or WDFQUEUE");
    WdfObjectReleaseLock(dev);
    tu_expect_bugcheck_reason(WDF_INVALID_LOCK_OPERATION, "not held");
    /* nested object locks: each release restores the IRQL of its acquire */
    WDFDEVICE d2 = make_device(drv, "\\Device\\uwdfObjLock2", WdfSynchronizationScopeInheritFromParent,
                               WdfExecutionLevelInheritFromParent);
    WdfObjectAcquireLock(dev);
    ck_assert_int_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    WdfObjectAcquireLock(d2);
    WdfObjectReleaseLock(d2);
    ck_assert_int_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    WdfObjectReleaseLock(dev);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* a passive device's lock leaves the IRQL alone */
    WDFDEVICE d3 = make_device(drv, "\\Device\\uwdfObjLock3", WdfSynchronizationScopeInheritFromParent,
                               WdfExecutionLevelPassive);
    WdfObjectAcquireLock(d3);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    WdfObjectReleaseLock(d3);
    WdfObjectDelete(drv);
}
END_TEST

/* ---- collections ---- */

START_TEST(collection_keeps_order_and_references)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFCOLLECTION c;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    atomic_store(&cleaned, 0);
    ck_assert_status(WdfCollectionCreate(WDF_NO_OBJECT_ATTRIBUTES, &c), STATUS_SUCCESS);
    ck_assert_int_eq(WdfCollectionGetCount(c), 0);
    ck_assert_ptr_null(WdfCollectionGetFirstItem(c));
    ck_assert_ptr_null(WdfCollectionGetLastItem(c));
    enum { N = 20 }; /* past the first growth */
    WDFSTRING s[N];
    for (int i = 0; i < N; i++) {
        s[i] = make_string("item", dev);
        ck_assert_status(WdfCollectionAdd(c, s[i]), STATUS_SUCCESS);
    }
    ck_assert_int_eq(WdfCollectionGetCount(c), N);
    ck_assert_ptr_eq(WdfCollectionGetFirstItem(c), s[0]);
    ck_assert_ptr_eq(WdfCollectionGetLastItem(c), s[N - 1]);
    ck_assert_ptr_eq(WdfCollectionGetItem(c, 7), s[7]);
    ck_assert_ptr_null(WdfCollectionGetItem(c, N));
    /* removing shifts the rest down */
    WdfCollectionRemoveItem(c, 0);
    ck_assert_ptr_eq(WdfCollectionGetFirstItem(c), s[1]);
    ck_assert_ptr_eq(WdfCollectionGetItem(c, 6), s[7]);
    WdfCollectionRemove(c, s[7]);
    ck_assert_ptr_eq(WdfCollectionGetItem(c, 6), s[8]);
    ck_assert_int_eq(WdfCollectionGetCount(c), N - 2);
    /* an item's reference outlives its deletion: cleaned up, not destroyed,
     * until it leaves the collection */
    WdfObjectDelete(s[3]); /* at index 2 */
    ck_assert_int_eq(ld(&cleaned), 1);
    ck_assert_int_eq(ld(&destroyed), 0);
    ck_assert_ptr_eq(WdfCollectionGetItem(c, 2), s[3]);
    WdfCollectionRemoveItem(c, 2);
    ck_assert_int_eq(ld(&destroyed), 1);
    /* an object may be in a collection twice */
    ck_assert_status(WdfCollectionAdd(c, s[1]), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfCollectionGetLastItem(c), s[1]);
    /* deleting the collection lets go of the items, which live on with
     * their parent */
    WdfObjectDelete(c);
    ck_assert_int_eq(ld(&destroyed), 1);
    WdfObjectDelete(dev);
    ck_assert_int_eq(ld(&destroyed), N);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(collection_misuse_and_failures)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFCOLLECTION c;
    tu_driver_and_device(&drv, &dev);
    ck_assert_status(WdfCollectionCreate(WDF_NO_OBJECT_ATTRIBUTES, &c), STATUS_SUCCESS);
    WDFSTRING s = make_string("x", dev);
    /* a failed allocation leaves the collection as it was */
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(WdfCollectionAdd(c, s), STATUS_UNSUCCESSFUL);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    ck_assert_int_eq(WdfCollectionGetCount(c), 0);
    ck_assert_status(WdfCollectionAdd(c, s), STATUS_SUCCESS);
    /* removing what is not there: reported, not a crash */
    WdfCollectionRemoveItem(c, 5);
    WdfCollectionRemove(c, dev);
    ck_assert_int_eq(WdfCollectionGetCount(c), 1);
    UwdfSetVerifier(TRUE);
    WdfCollectionRemoveItem(c, 5);
    expect_verifier_break();
    WdfCollectionRemove(c, dev);
    expect_verifier_break();
    UwdfSetVerifier(FALSE);
    WDF_OBJECT_ATTRIBUTES a;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ExecutionLevel = WdfExecutionLevelPassive;
    ck_assert_status(WdfCollectionCreate(&a, &c), STATUS_WDF_EXECUTION_LEVEL_INVALID);
    WdfObjectDelete(drv);
}
END_TEST

/* ---- strings and the version DDIs ---- */

START_TEST(string_copies_its_text)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFSTRING s;
    UNICODE_STRING in, out;
    WCHAR buf[16];
    tu_driver_and_device(&drv, &dev);
    tu_unicode(&in, buf, 16, "hello");
    ck_assert_status(WdfStringCreate(&in, WDF_NO_OBJECT_ATTRIBUTES, &s), STATUS_SUCCESS);
    buf[0] = L'J';
    WdfStringGetUnicodeString(s, &out);
    ck_assert_int_eq(out.Length, 5 * sizeof(WCHAR));
    ck_assert_ptr_ne(out.Buffer, buf);
    ck_assert(out.Buffer[0] == L'h' && out.Buffer[4] == L'o' && out.Buffer[5] == UNICODE_NULL);
    /* no text: an empty string */
    WDFSTRING e;
    ck_assert_status(WdfStringCreate(NULL, WDF_NO_OBJECT_ATTRIBUTES, &e), STATUS_SUCCESS);
    WdfStringGetUnicodeString(e, &out);
    ck_assert_int_eq(out.Length, 0);
    /* a malformed UNICODE_STRING is refused */
    in.Length = 3;
    ck_assert_status(WdfStringCreate(&in, WDF_NO_OBJECT_ATTRIBUTES, &e), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(e);
    in.Length = 5 * sizeof(WCHAR);
    /* PASSIVE_LEVEL only */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert_status(WdfStringCreate(&in, WDF_NO_OBJECT_ATTRIBUTES, &e), STATUS_INVALID_DEVICE_REQUEST);
    KeLowerIrql(old);
    UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
    ck_assert_status(WdfStringCreate(&in, WDF_NO_OBJECT_ATTRIBUTES, &e), STATUS_INSUFFICIENT_RESOURCES);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(version_string_and_availability)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFSTRING s;
    UNICODE_STRING us;
    tu_driver_and_device(&drv, &dev);
    ck_assert_status(WdfStringCreate(NULL, WDF_NO_OBJECT_ATTRIBUTES, &s), STATUS_SUCCESS);
    ck_assert_status(WdfDriverRetrieveVersionString(drv, s), STATUS_SUCCESS);
    WdfStringGetUnicodeString(s, &us);
    char text[128];
    ck_assert_status(RtlStringCbPrintfA(text, sizeof(text), "%wZ", &us), STATUS_SUCCESS);
    char want[64];
    snprintf(want, sizeof(want), "Kernel Mode Driver Framework version %d.%d.", UWDF_KMDF_MAJOR_VERSION,
             UWDF_KMDF_MINOR_VERSION);
    ck_assert_msg(strncmp(text, want, strlen(want)) == 0, "version string '%s'", text);

    WDF_DRIVER_VERSION_AVAILABLE_PARAMS p;
    WDF_DRIVER_VERSION_AVAILABLE_PARAMS_INIT(&p, 1, 0);
    ck_assert(WdfDriverIsVersionAvailable(drv, &p));
    WDF_DRIVER_VERSION_AVAILABLE_PARAMS_INIT(&p, UWDF_KMDF_MAJOR_VERSION, UWDF_KMDF_MINOR_VERSION);
    ck_assert(WdfDriverIsVersionAvailable(drv, &p));
    WDF_DRIVER_VERSION_AVAILABLE_PARAMS_INIT(&p, UWDF_KMDF_MAJOR_VERSION, UWDF_KMDF_MINOR_VERSION + 1);
    ck_assert(!WdfDriverIsVersionAvailable(drv, &p));
    WDF_DRIVER_VERSION_AVAILABLE_PARAMS_INIT(&p, UWDF_KMDF_MAJOR_VERSION + 1, 0);
    ck_assert(!WdfDriverIsVersionAvailable(drv, &p));
    WDF_DRIVER_VERSION_AVAILABLE_PARAMS_INIT(&p, 1, 0);
    p.Size--;
    ck_assert(!WdfDriverIsVersionAvailable(drv, &p));
    /* the wrong kind of handle */
    ck_assert_status(WdfDriverRetrieveVersionString(drv, (WDFSTRING)dev), STATUS_INVALID_HANDLE);
    tu_bugcheck_reset();
    WdfObjectDelete(drv);
}
END_TEST

/* ---- timers: creation ---- */

static VOID nop_timer(WDFTIMER Timer)
{
    (void)Timer;
}

START_TEST(timer_create_statuses)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFTIMER t;
    WDF_TIMER_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    tu_driver_and_device(&drv, &dev);
    WDF_TIMER_CONFIG_INIT(&c, nop_timer);
    ck_assert_status(WdfTimerCreate(&c, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_WDF_PARENT_NOT_SPECIFIED);
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_WDF_PARENT_NOT_SPECIFIED);
    /* the parent must lead to a device */
    a.ParentObject = drv;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_ptr_null(t);
    a.ParentObject = dev;
    c.Size--;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_INFO_LENGTH_MISMATCH);
    c.Size++;
    c.Period = (ULONG)MAXLONG + 1;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_INVALID_PARAMETER);
    c.Period = MAXLONG;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfTimerGetParentObject(t), dev);
    c.Period = 0;
    c.UseHighResolutionTimer = TRUE;
    c.TolerableDelay = 1;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_INVALID_PARAMETER);
    c.TolerableDelay = 0;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    c.UseHighResolutionTimer = FALSE;
    c.TolerableDelay = TolerableDelayUnlimited;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    c.TolerableDelay = 0;
    /* a passive timer cannot be periodic */
    a.ExecutionLevel = WdfExecutionLevelPassive;
    c.Period = 10;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_NOT_SUPPORTED);
    c.Period = 0;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    a.ExecutionLevel = WdfExecutionLevelInheritFromParent;
    a.SynchronizationScope = WdfSynchronizationScopeQueue;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID);
    a.SynchronizationScope = WdfSynchronizationScopeInheritFromParent;
    /* a passive timer serialized with a dispatch-level queue (or the other
     * way round) cannot share its lock */
    WDFDEVICE d2 = make_device(drv, "\\Device\\uwdfTimerCreate", WdfSynchronizationScopeInheritFromParent,
                               WdfExecutionLevelInheritFromParent);
    WDFQUEUE q = make_queue(d2, ioctl_complete, WdfSynchronizationScopeQueue, WdfExecutionLevelInheritFromParent);
    a.ParentObject = q;
    a.ExecutionLevel = WdfExecutionLevelPassive;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_WDF_INCOMPATIBLE_EXECUTION_LEVEL);
    c.AutomaticSerialization = FALSE;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfTimerGetParentObject(t), q);
    /* at DISPATCH_LEVEL a timer can be made, above it not */
    KIRQL old;
    a.ExecutionLevel = WdfExecutionLevelInheritFromParent;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    KeRaiseIrql(HIGH_LEVEL, &old);
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_INVALID_DEVICE_REQUEST);
    KeLowerIrql(PASSIVE_LEVEL);
    WdfObjectDelete(drv);
}
END_TEST

/* ---- timers: firing ---- */

struct timer_log {
    atomic_int calls;
    atomic_int wrong_irql;
    atomic_int on_caller;
    KIRQL want_irql;
    pthread_t caller;
    double first_ms;
    int sleep_ms;       /* in each call */
    atomic_int entered; /* set on entry */
    atomic_int finished;
    int restart_ms;     /* >0: restart itself with this due time */
    bool stop_wait;     /* call WdfTimerStop(Wait) from the callback */
    bool delete_self;
    BOOLEAN stop_result;
};
typedef struct timer_log *TIMER_LOG_PTR;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(TIMER_LOG_PTR, log_of);

static VOID logging_timer(WDFTIMER Timer)
{
    struct timer_log *l = *log_of(Timer);
    atomic_fetch_add(&l->entered, 1);
    /* first_ms is written before calls counts the call, so a reader that
     * saw the count sees it (one timer's callbacks never overlap here) */
    if (atomic_load(&l->calls) == 0)
        l->first_ms = tu_now_ms();
    atomic_fetch_add(&l->calls, 1);
    if (KeGetCurrentIrql() != l->want_irql)
        atomic_fetch_add(&l->wrong_irql, 1);
    if (pthread_equal(pthread_self(), l->caller))
        atomic_fetch_add(&l->on_caller, 1);
    if (l->sleep_ms)
        tu_sleep_ms(l->sleep_ms);
    if (l->restart_ms)
        WdfTimerStart(Timer, WDF_REL_TIMEOUT_IN_MS(l->restart_ms));
    if (l->stop_wait)
        l->stop_result = WdfTimerStop(Timer, TRUE);
    if (l->delete_self)
        WdfObjectDelete(Timer);
    atomic_fetch_add(&l->finished, 1);
}

static WDFTIMER make_timer(struct timer_log *l, WDFOBJECT parent, ULONG period_ms, bool passive)
{
    WDF_TIMER_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    WDFTIMER t;
    WDF_TIMER_CONFIG_INIT(&c, logging_timer);
    c.Period = period_ms;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, TIMER_LOG_PTR);
    a.ParentObject = parent;
    a.EvtDestroyCallback = count_destroy;
    if (passive)
        a.ExecutionLevel = WdfExecutionLevelPassive;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    *log_of(t) = l;
    l->want_irql = passive ? PASSIVE_LEVEL : DISPATCH_LEVEL;
    l->caller = pthread_self();
    return t;
}

START_TEST(one_shot_fires_once_on_a_framework_thread)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    bool passive = _i == 1;
    struct timer_log l = { 0 };
    WDFTIMER t = make_timer(&l, dev, 0, passive);
    double t0 = tu_now_ms();
    ck_assert(!WdfTimerStart(t, WDF_REL_TIMEOUT_IN_MS(50)));
    ck_assert(wait_at_least(&l.calls, 1));
    /* never early; late by what the machine's load makes it */
    ck_assert_double_ge(l.first_ms - t0, 49.0);
    tu_sleep_ms(60);
    ck_assert_int_eq(ld(&l.calls), 1);
    ck_assert_int_eq(ld(&l.wrong_irql), 0);
    ck_assert_int_eq(ld(&l.on_caller), 0);
    /* it can be started again, with an absolute time */
    LARGE_INTEGER now;
    t0 = tu_now_ms();
    KeQuerySystemTime(&now);
    ck_assert(!WdfTimerStart(t, now.QuadPart + WDF_ABS_TIMEOUT_IN_MS(30)));
    ck_assert(wait_at_least(&l.calls, 2));
    ck_assert_double_ge(tu_now_ms() - t0, 29.0);
    /* an absolute time in the past or a zero due time: at once */
    ck_assert(!WdfTimerStart(t, now.QuadPart - WDF_TIMEOUT_TO_SEC));
    ck_assert(wait_at_least(&l.calls, 3));
    ck_assert(!WdfTimerStart(t, 0));
    ck_assert(wait_at_least(&l.calls, 4));
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(start_of_a_queued_timer_returns_true_and_restarts)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct timer_log l = { 0 };
    WDFTIMER t = make_timer(&l, dev, 0, false);
    ck_assert(!WdfTimerStart(t, WDF_REL_TIMEOUT_IN_MS(1000)));
    ck_assert(WdfTimerStart(t, WDF_REL_TIMEOUT_IN_MS(1000)));
    ck_assert(WdfTimerStop(t, FALSE));
    ck_assert(!WdfTimerStop(t, FALSE));
    ck_assert(!WdfTimerStop(t, TRUE));
    /* a restart moves the due time: the first (short) one never fires */
    ck_assert(!WdfTimerStart(t, WDF_REL_TIMEOUT_IN_MS(20)));
    double t0 = tu_now_ms();
    ck_assert(WdfTimerStart(t, WDF_REL_TIMEOUT_IN_MS(100)));
    ck_assert(wait_at_least(&l.calls, 1));
    ck_assert_double_ge(l.first_ms - t0, 99.0);
    tu_sleep_ms(30);
    ck_assert_int_eq(ld(&l.calls), 1);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(periodic_timer_keeps_its_period)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    enum { PERIOD_MS = 20, RUN_MS = 400 };
    struct timer_log l = { 0 };
    WDFTIMER t = make_timer(&l, dev, PERIOD_MS, false);
    double t0 = tu_now_ms();
    WdfTimerStart(t, WDF_REL_TIMEOUT_IN_MS(PERIOD_MS));
    tu_sleep_ms(RUN_MS);
    WdfTimerStop(t, TRUE);
    double ran = tu_now_ms() - t0;
    int n = ld(&l.calls);
    /* never more often than the period allows; loosely, not too rarely */
    ck_assert_int_le(n, (int)(ran / PERIOD_MS) + 1);
    ck_assert_int_ge(n, RUN_MS / PERIOD_MS / 4);
    ck_assert_int_eq(ld(&l.wrong_irql), 0);
    /* stopped with Wait: nothing more comes */
    tu_sleep_ms(3 * PERIOD_MS);
    ck_assert_int_eq(ld(&l.calls), n);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(maxlong_period_fires_once_in_a_test)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct timer_log l = { 0 };
    WDFTIMER t = make_timer(&l, dev, MAXLONG, false);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.calls, 1));
    tu_sleep_ms(50);
    ck_assert_int_eq(ld(&l.calls), 1);
    /* re-armed for ~24.8 days: a stop finds it queued */
    ck_assert(WdfTimerStop(t, TRUE));
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(high_resolution_timer_needs_a_relative_due_time)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDF_TIMER_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    WDFTIMER t;
    tu_driver_and_device(&drv, &dev);
    WDF_TIMER_CONFIG_INIT(&c, count_timer);
    c.UseHighResolutionTimer = TRUE;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = dev;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    atomic_store(&serialized_calls, 0);
    ck_assert(!WdfTimerStart(t, 0));
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "relative");
    ck_assert(!WdfTimerStart(t, WDF_REL_TIMEOUT_IN_US(100)));
    ck_assert(wait_at_least(&serialized_calls, 1));
    WdfObjectDelete(drv);
}
END_TEST

/* ---- timers: stopping and deleting ---- */

START_TEST(stop_with_wait_waits_for_the_running_callback)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct timer_log l = { .sleep_ms = 100 };
    WDFTIMER t = make_timer(&l, dev, 0, _i == 1);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.entered, 1));
    /* running, not queued: Stop reports FALSE, after the callback ended */
    ck_assert(!WdfTimerStop(t, TRUE));
    ck_assert_int_eq(ld(&l.finished), 1);
    /* without Wait it does not wait */
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.entered, 2));
    double t0 = tu_now_ms();
    ck_assert(!WdfTimerStop(t, FALSE));
    ck_assert_double_lt(tu_now_ms() - t0, l.sleep_ms / 2);
    ck_assert_int_eq(ld(&l.finished), 1);
    /* Wait is PASSIVE_LEVEL only */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert(!WdfTimerStop(t, TRUE));
    KeLowerIrql(old);
    ck_assert(wait_at_least(&l.finished, 2));
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(stop_with_wait_from_the_callback_is_refused)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct timer_log l = { .stop_wait = true, .stop_result = TRUE };
    WDFTIMER t = make_timer(&l, dev, 0, true);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.finished, 1));
    ck_assert(!l.stop_result);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    /* with the verifier, the breakpoint KMDF takes there */
    UwdfSetVerifier(TRUE);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.finished, 2));
    UwdfSetVerifier(FALSE);
    expect_verifier_break();
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(start_from_the_callback_during_a_stop_is_dropped)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct timer_log l = { .sleep_ms = 50, .restart_ms = 1 };
    WDFTIMER t = make_timer(&l, dev, 0, false);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.entered, 1));
    /* the callback restarts the timer while Stop waits for it: the restart
     * is dropped and Stop reports the timer stopped while queued */
    ck_assert(WdfTimerStop(t, TRUE));
    int n = ld(&l.calls);
    tu_sleep_ms(30);
    ck_assert_int_eq(ld(&l.calls), n);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(delete_waits_for_a_running_periodic_callback)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    struct timer_log l = { .sleep_ms = 30 };
    WDFTIMER t = make_timer(&l, dev, 1, false);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.entered, 2));
    WdfObjectDelete(t);
    ck_assert_int_eq(ld(&l.finished), ld(&l.entered));
    int n = ld(&l.calls);
    ck_assert(wait_at_least(&destroyed, 1));
    tu_sleep_ms(10);
    ck_assert_int_eq(ld(&l.calls), n);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(delete_from_the_callback_does_not_wait_for_itself)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    struct timer_log l = { .delete_self = true };
    WDFTIMER t = make_timer(&l, dev, 0, _i == 1);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&l.finished, 1));
    ck_assert(wait_at_least(&destroyed, 1));
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(delete_at_dispatch_drops_a_queued_callback)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    /* a slow callback holds the DPC thread; the second timer queues
     * behind it and is deleted from DISPATCH_LEVEL, which cannot wait */
    struct timer_log slow = { .sleep_ms = 100 }, behind = { 0 };
    WDFTIMER ts = make_timer(&slow, dev, 0, false);
    WDFTIMER tb = make_timer(&behind, dev, 0, false);
    WdfTimerStart(ts, 0);
    ck_assert(wait_at_least(&slow.entered, 1));
    WdfTimerStart(tb, 0);
    tu_sleep_ms(10); /* expired: on the DPC queue */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    WdfObjectDelete(tb);
    KeLowerIrql(old);
    ck_assert(wait_at_least(&slow.finished, 1));
    ck_assert(wait_at_least(&destroyed, 1));
    tu_sleep_ms(20);
    ck_assert_int_eq(ld(&behind.calls), 0);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(deleting_the_parent_stops_the_timer)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFMEMORY mem;
    WDF_OBJECT_ATTRIBUTES a;
    void *buf;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = dev;
    ck_assert_status(WdfMemoryCreate(&a, NonPagedPoolNx, 0, 64, &mem, &buf), STATUS_SUCCESS);
    struct timer_log l = { 0 };
    WDFTIMER t = make_timer(&l, mem, 0, false);
    ck_assert_ptr_eq(WdfTimerGetParentObject(t), mem);
    WdfTimerStart(t, WDF_REL_TIMEOUT_IN_MS(30));
    WdfObjectDelete(mem);
    ck_assert_int_eq(ld(&destroyed), 1);
    tu_sleep_ms(60);
    ck_assert_int_eq(ld(&l.calls), 0);
    WdfObjectDelete(drv);
}
END_TEST

/* A lock the driver made after its device, used by the device's timer:
 * the driver's deletion deletes the lock first (newest first), then the
 * device, whose timer's running callback still takes the lock. The lock
 * must stay usable until every sibling is gone. */
static struct {
    WDFSPINLOCK lock;
    atomic_int entered, finished;
} late_lock;

static VOID timer_using_a_late_lock(WDFTIMER Timer)
{
    (void)Timer;
    atomic_fetch_add(&late_lock.entered, 1);
    tu_sleep_ms(30);
    WdfSpinLockAcquire(late_lock.lock);
    WdfSpinLockRelease(late_lock.lock);
    atomic_fetch_add(&late_lock.finished, 1);
}

START_TEST(a_sibling_deleted_first_stays_usable_until_the_parent_is_done)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDF_TIMER_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    WDFTIMER t;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&late_lock.entered, 0);
    atomic_store(&late_lock.finished, 0);
    WDF_TIMER_CONFIG_INIT_PERIODIC(&c, timer_using_a_late_lock, 1);
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = dev;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    ck_assert_status(WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &late_lock.lock), STATUS_SUCCESS);
    WdfTimerStart(t, 0);
    ck_assert(wait_at_least(&late_lock.entered, 1));
    WdfObjectDelete(drv);
    ck_assert_int_eq(ld(&late_lock.finished), ld(&late_lock.entered));
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
}
END_TEST

/* Create, start and delete many timers, some about to fire, some firing,
 * some periodic: every one is destroyed, none leaks (the sanitizer and
 * valgrind runs check the memory). */
START_TEST(create_start_delete_cycles)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    int cycles = tu_running_on_valgrind() ? 1000 : 10000;
    ULONGLONG timers_before = live_objects("WDFTIMER");
    atomic_store(&destroyed, 0);
    struct timer_log l = { 0 };
    for (int i = 0; i < cycles; i++) {
        WDFTIMER t = make_timer(&l, dev, i % 4 == 3 ? 1 : 0, false);
        WdfTimerStart(t, i % 2 ? 0 : WDF_REL_TIMEOUT_IN_US((ULONGLONG)(i % 7) * 20));
        if (i % 5 == 0)
            sched_yield();
        WdfObjectDelete(t);
        ck_assert_int_eq(ld(&l.entered), ld(&l.finished));
    }
    ck_assert(wait_at_least(&destroyed, cycles));
    tu_sleep_ms(10);
    ck_assert_int_eq(ld(&destroyed), cycles);
    ck_assert(live_objects_fall_to("WDFTIMER", timers_before));
    WdfObjectDelete(drv);
}
END_TEST

/* ---- work items ---- */

struct work_log {
    atomic_int calls;
    atomic_int entered;
    atomic_int finished;
    atomic_int wrong_irql;
    int sleep_ms;
    int requeue;     /* times to enqueue itself again */
    bool flush_self;
    bool delete_self;
    KSEMAPHORE *gate; /* waited for on entry, if set */
    int id;
};
typedef struct work_log *WORK_LOG_PTR;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(WORK_LOG_PTR, work_log_of);

static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static int order[16], norder;

static VOID logging_work(WDFWORKITEM WorkItem)
{
    struct work_log *l = *work_log_of(WorkItem);
    atomic_fetch_add(&l->entered, 1);
    if (l->gate)
        KeWaitForSingleObject(l->gate, Executive, KernelMode, FALSE, NULL);
    atomic_fetch_add(&l->calls, 1);
    if (KeGetCurrentIrql() != PASSIVE_LEVEL)
        atomic_fetch_add(&l->wrong_irql, 1);
    if (l->id) {
        pthread_mutex_lock(&order_lock);
        if (norder < (int)RTL_NUMBER_OF(order))
            order[norder++] = l->id;
        pthread_mutex_unlock(&order_lock);
    }
    if (l->sleep_ms)
        tu_sleep_ms(l->sleep_ms);
    if (l->requeue > 0) {
        l->requeue--;
        WdfWorkItemEnqueue(WorkItem);
    }
    if (l->flush_self)
        WdfWorkItemFlush(WorkItem);
    if (l->delete_self)
        WdfObjectDelete(WorkItem);
    atomic_fetch_add(&l->finished, 1);
}

static WDFWORKITEM make_work(struct work_log *l, WDFOBJECT parent)
{
    WDF_WORKITEM_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    WDFWORKITEM w;
    WDF_WORKITEM_CONFIG_INIT(&c, logging_work);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, WORK_LOG_PTR);
    a.ParentObject = parent;
    a.EvtDestroyCallback = count_destroy;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_SUCCESS);
    *work_log_of(w) = l;
    return w;
}

START_TEST(work_item_create_statuses)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    WDFWORKITEM w;
    WDF_WORKITEM_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    tu_driver_and_device(&drv, &dev);
    WDF_WORKITEM_CONFIG_INIT(&c, logging_work);
    ck_assert_status(WdfWorkItemCreate(&c, WDF_NO_OBJECT_ATTRIBUTES, &w), STATUS_WDF_PARENT_NOT_SPECIFIED);
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = drv;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_ptr_null(w);
    a.ParentObject = dev;
    c.Size++;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_INFO_LENGTH_MISMATCH);
    c.Size--;
    c.EvtWorkItemFunc = NULL;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_INVALID_PARAMETER);
    c.EvtWorkItemFunc = logging_work;
    a.ExecutionLevel = WdfExecutionLevelPassive;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_WDF_EXECUTION_LEVEL_INVALID);
    a.ExecutionLevel = WdfExecutionLevelInheritFromParent;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfWorkItemGetParentObject(w), dev);
    /* serialized with a dispatch-level queue: no (a work item is passive) */
    WDFDEVICE d2 = make_device(drv, "\\Device\\uwdfWorkCreate", WdfSynchronizationScopeInheritFromParent,
                               WdfExecutionLevelInheritFromParent);
    WDFQUEUE q = make_queue(d2, ioctl_complete, WdfSynchronizationScopeQueue, WdfExecutionLevelInheritFromParent);
    a.ParentObject = q;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_WDF_INCOMPATIBLE_EXECUTION_LEVEL);
    c.AutomaticSerialization = FALSE;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_SUCCESS);
    /* a queue without synchronization has no lock to take: fine */
    WDFQUEUE q2;
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT(&qc, WdfIoQueueDispatchManual);
    ck_assert_status(WdfIoQueueCreate(d2, &qc, WDF_NO_OBJECT_ATTRIBUTES, &q2), STATUS_SUCCESS);
    a.ParentObject = q2;
    c.AutomaticSerialization = TRUE;
    ck_assert_status(WdfWorkItemCreate(&c, &a, &w), STATUS_SUCCESS);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(work_item_runs_at_passive_on_a_worker)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    struct work_log l = { .requeue = 1 };
    WDFWORKITEM w = make_work(&l, dev);
    /* it may be queued from DISPATCH_LEVEL */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    WdfWorkItemEnqueue(w);
    KeLowerIrql(old);
    /* 'queued' is cleared before the callback runs: requeued from it, it
     * runs again */
    ck_assert(wait_at_least(&l.finished, 2));
    WdfWorkItemFlush(w);
    ck_assert_int_eq(ld(&l.calls), 2);
    ck_assert_int_eq(ld(&l.wrong_irql), 0);
    WdfObjectDelete(drv);
}
END_TEST

/* Every worker busy (the pool at its maximum): what is queued waits, in
 * order, and queueing it again changes nothing. */
START_TEST(work_items_are_fifo_and_not_queued_twice)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    KSEMAPHORE gate;
    KeInitializeSemaphore(&gate, 0, MAXLONG);
    static struct work_log blockers[UWDF_WORKER_THREADS_MAX];
    atomic_int entered = 0;
    for (int i = 0; i < UWDF_WORKER_THREADS_MAX; i++) {
        blockers[i] = (struct work_log){ .gate = &gate };
        WdfWorkItemEnqueue(make_work(&blockers[i], dev));
    }
    double end = tu_now_ms() + PATIENCE_MS;
    for (;;) {
        int n = 0;
        for (int i = 0; i < UWDF_WORKER_THREADS_MAX; i++)
            n += ld(&blockers[i].entered);
        atomic_store(&entered, n);
        if (n == UWDF_WORKER_THREADS_MAX || tu_now_ms() > end)
            break;
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(ld(&entered), UWDF_WORKER_THREADS_MAX);

    enum { N = 5 };
    struct work_log logs[N];
    WDFWORKITEM w[N];
    norder = 0;
    for (int i = 0; i < N; i++) {
        logs[i] = (struct work_log){ .id = i + 1 };
        w[i] = make_work(&logs[i], dev);
        WdfWorkItemEnqueue(w[i]);
    }
    WdfWorkItemEnqueue(w[0]); /* still queued: ignored */
    /* deleting a queued one from DISPATCH_LEVEL takes it off the queue */
    struct work_log dropped = { 0 };
    WDFWORKITEM wd = make_work(&dropped, dev);
    WdfWorkItemEnqueue(wd);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    WdfObjectDelete(wd);
    KeLowerIrql(old);
    ck_assert_int_eq(ld(&destroyed), 1);
    tu_sleep_ms(20);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(ld(&logs[i].calls), 0);

    /* one worker freed: it runs them one after the other, in order */
    KeReleaseSemaphore(&gate, IO_NO_INCREMENT, 1, FALSE);
    ck_assert(wait_at_least(&logs[N - 1].finished, 1));
    ck_assert_int_eq(norder, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(order[i], i + 1);
        ck_assert_int_eq(ld(&logs[i].calls), 1);
    }
    KeReleaseSemaphore(&gate, IO_NO_INCREMENT, UWDF_WORKER_THREADS_MAX - 1, FALSE);
    for (int i = 0; i < UWDF_WORKER_THREADS_MAX; i++)
        ck_assert(wait_at_least(&blockers[i].finished, 1));
    ck_assert_int_eq(ld(&dropped.calls), 0);
    WdfObjectDelete(drv);
    ck_assert(live_objects_fall_to("WDFWORKITEM", 0));
}
END_TEST

START_TEST(flush_and_delete_wait_for_the_callback)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    struct work_log l = { .sleep_ms = 50 };
    WDFWORKITEM w = make_work(&l, dev);
    WdfWorkItemEnqueue(w);
    WdfWorkItemFlush(w);
    ck_assert_int_eq(ld(&l.finished), 1);
    WdfWorkItemEnqueue(w);
    ck_assert(wait_at_least(&l.entered, 2));
    WdfObjectDelete(w);
    ck_assert_int_eq(ld(&l.finished), 2);
    ck_assert(wait_at_least(&destroyed, 1));
    /* a flush of an idle work item returns at once; one above PASSIVE_LEVEL
     * is refused */
    struct work_log idle = { 0 };
    WDFWORKITEM wi = make_work(&idle, dev);
    WdfWorkItemFlush(wi);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    WdfWorkItemFlush(wi);
    KeLowerIrql(old);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    UwdfSetVerifier(TRUE);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    WdfWorkItemFlush(wi);
    KeLowerIrql(old);
    UwdfSetVerifier(FALSE);
    tu_expect_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, DISPATCH_LEVEL);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(flush_or_delete_from_the_callback)
{
    WDFDRIVER drv;
    WDFDEVICE dev;
    tu_driver_and_device(&drv, &dev);
    atomic_store(&destroyed, 0);
    struct work_log fl = { .flush_self = true };
    WDFWORKITEM w = make_work(&fl, dev);
    UwdfSetVerifier(TRUE);
    WdfWorkItemEnqueue(w);
    ck_assert(wait_at_least(&fl.finished, 1));
    UwdfSetVerifier(FALSE);
    expect_verifier_break();
    struct work_log del = { .delete_self = true };
    WdfWorkItemEnqueue(make_work(&del, dev));
    ck_assert(wait_at_least(&del.finished, 1));
    ck_assert(wait_at_least(&destroyed, 1));
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    WdfObjectDelete(drv);
}
END_TEST

/* ---- serialization of callbacks sharing a lock ---- */

/* Callbacks that must never overlap record how many are inside at once. */
static struct {
    atomic_int inside, max_inside;
    atomic_int timer_calls, work_calls, queue_calls;
    atomic_int wrong_irql;
    atomic_bool stop;
    KIRQL timer_irql;
    int work_runs_max;
} S;

static void serialized_section(void)
{
    int n = atomic_fetch_add(&S.inside, 1) + 1;
    int m = atomic_load(&S.max_inside);
    while (n > m && !atomic_compare_exchange_weak(&S.max_inside, &m, n))
        ;
    /* stay a while, and let another thread in if nothing keeps it out */
    double until = tu_now_ms() + 0.02;
    sched_yield();
    while (tu_now_ms() < until)
        ;
    atomic_fetch_sub(&S.inside, 1);
}

static VOID serial_ioctl(WDFQUEUE Queue, WDFREQUEST Request, size_t OutputBufferLength, size_t InputBufferLength,
                         ULONG IoControlCode)
{
    (void)Queue;
    (void)OutputBufferLength;
    (void)InputBufferLength;
    (void)IoControlCode;
    serialized_section();
    atomic_fetch_add(&S.queue_calls, 1);
    WdfRequestComplete(Request, STATUS_SUCCESS);
}

static VOID serial_timer(WDFTIMER Timer)
{
    if (KeGetCurrentIrql() != S.timer_irql)
        atomic_fetch_add(&S.wrong_irql, 1);
    serialized_section();
    atomic_fetch_add(&S.timer_calls, 1);
    /* a passive timer cannot be periodic: it restarts itself */
    if (S.timer_irql == PASSIVE_LEVEL && !atomic_load(&S.stop))
        WdfTimerStart(Timer, WDF_REL_TIMEOUT_IN_US(500));
}

static VOID serial_work(WDFWORKITEM WorkItem)
{
    if (KeGetCurrentIrql() != PASSIVE_LEVEL)
        atomic_fetch_add(&S.wrong_irql, 1);
    serialized_section();
    if (atomic_fetch_add(&S.work_calls, 1) < S.work_runs_max && !atomic_load(&S.stop))
        WdfWorkItemEnqueue(WorkItem);
}

#define SENDERS 2
#define SENDS_PER_THREAD 2000
#define SERIAL_TIMERS 2

static void *send_ioctls(void *p)
{
    WDFIOTARGET t = p;
    for (int i = 0; i < SENDS_PER_THREAD; i++) {
        NTSTATUS st = WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_TEST, NULL, NULL, NULL, NULL);
        ck_assert_status(st, STATUS_SUCCESS);
    }
    return NULL;
}

enum serial_mode {
    SERIAL_QUEUE_DISPATCH,   /* queue scope, dispatch timers */
    SERIAL_DEVICE_DISPATCH,  /* device scope, dispatch timers on the device */
    SERIAL_QUEUE_PASSIVE,    /* passive queue: passive timers and work items */
    SERIAL_MODES,
};

/* Timers (and for passive, work items) parented to the queue (or device)
 * with AutomaticSerialization, while application threads send it I/O:
 * never two callbacks at once. */
START_TEST(callbacks_sharing_a_lock_never_overlap)
{
    WDFDRIVER drv;
    WDFDEVICE ctl;
    tu_driver_and_device(&drv, &ctl);
    enum serial_mode mode = (enum serial_mode)_i;
    bool passive = mode == SERIAL_QUEUE_PASSIVE;
    memset(&S, 0, sizeof(S));
    S.timer_irql = passive ? PASSIVE_LEVEL : DISPATCH_LEVEL;
    S.work_runs_max = 500;
    WDF_EXECUTION_LEVEL level = passive ? WdfExecutionLevelPassive : WdfExecutionLevelInheritFromParent;
    WDFDEVICE dev = make_device(drv, "\\Device\\uwdfSerial",
                                mode == SERIAL_DEVICE_DISPATCH ? WdfSynchronizationScopeDevice
                                                               : WdfSynchronizationScopeInheritFromParent,
                                WdfExecutionLevelInheritFromParent);
    WDFQUEUE q = make_queue(dev, serial_ioctl,
                            mode == SERIAL_DEVICE_DISPATCH ? WdfSynchronizationScopeInheritFromParent
                                                           : WdfSynchronizationScopeQueue,
                            level);
    WDFOBJECT owner = mode == SERIAL_DEVICE_DISPATCH ? (WDFOBJECT)dev : (WDFOBJECT)q;

    WDFTIMER timers[SERIAL_TIMERS];
    for (int i = 0; i < SERIAL_TIMERS; i++) {
        WDF_TIMER_CONFIG c;
        WDF_OBJECT_ATTRIBUTES a;
        if (passive)
            WDF_TIMER_CONFIG_INIT(&c, serial_timer);
        else
            WDF_TIMER_CONFIG_INIT_PERIODIC(&c, serial_timer, 1);
        WDF_OBJECT_ATTRIBUTES_INIT(&a);
        a.ParentObject = owner;
        a.ExecutionLevel = level;
        ck_assert_status(WdfTimerCreate(&c, &a, &timers[i]), STATUS_SUCCESS);
    }
    WDFWORKITEM works[2] = { 0 };
    if (passive) {
        for (int i = 0; i < 2; i++) {
            WDF_WORKITEM_CONFIG c;
            WDF_OBJECT_ATTRIBUTES a;
            WDF_WORKITEM_CONFIG_INIT(&c, serial_work);
            WDF_OBJECT_ATTRIBUTES_INIT(&a);
            a.ParentObject = owner;
            ck_assert_status(WdfWorkItemCreate(&c, &a, &works[i]), STATUS_SUCCESS);
        }
    }
    WDFIOTARGET targets[SENDERS];
    pthread_t th[SENDERS];
    char name[] = "\\Device\\uwdfSerial";
    for (int i = 0; i < SENDERS; i++)
        ck_assert_status(tu_target_open(ctl, name, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0, &targets[i]),
                         STATUS_SUCCESS);
    for (int i = 0; i < SERIAL_TIMERS; i++)
        WdfTimerStart(timers[i], 0);
    for (int i = 0; i < 2 && passive; i++)
        WdfWorkItemEnqueue(works[i]);
    for (int i = 0; i < SENDERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, send_ioctls, targets[i]), 0);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&S.stop, true);
    for (int i = 0; i < SERIAL_TIMERS; i++)
        WdfTimerStop(timers[i], TRUE);
    for (int i = 0; i < 2 && passive; i++)
        WdfWorkItemFlush(works[i]);

    ck_assert_int_eq(ld(&S.max_inside), 1);
    ck_assert_int_eq(ld(&S.queue_calls), SENDERS * SENDS_PER_THREAD);
    ck_assert_int_gt(ld(&S.timer_calls), 0);
    if (passive)
        ck_assert_int_gt(ld(&S.work_calls), 0);
    ck_assert_int_eq(ld(&S.wrong_irql), 0);
    WdfObjectDelete(drv);
}
END_TEST

/* The same without AutomaticSerialization: the timer callbacks do run
 * beside the queue's (so the test above can see an overlap). */
START_TEST(unserialized_callbacks_do_overlap)
{
    WDFDRIVER drv;
    WDFDEVICE ctl;
    tu_driver_and_device(&drv, &ctl);
    memset(&S, 0, sizeof(S));
    S.timer_irql = DISPATCH_LEVEL;
    WDFDEVICE dev = make_device(drv, "\\Device\\uwdfUnserial", WdfSynchronizationScopeInheritFromParent,
                                WdfExecutionLevelInheritFromParent);
    WDFQUEUE q = make_queue(dev, serial_ioctl, WdfSynchronizationScopeQueue, WdfExecutionLevelInheritFromParent);
    WDF_TIMER_CONFIG c;
    WDF_OBJECT_ATTRIBUTES a;
    WDFTIMER t;
    WDF_TIMER_CONFIG_INIT_PERIODIC(&c, serial_timer, 1);
    c.AutomaticSerialization = FALSE;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = q;
    ck_assert_status(WdfTimerCreate(&c, &a, &t), STATUS_SUCCESS);
    WDFIOTARGET target;
    ck_assert_status(tu_target_open(ctl, "\\Device\\uwdfUnserial", GENERIC_READ, FILE_OPEN, 0, &target),
                     STATUS_SUCCESS);
    WdfTimerStart(t, 0);
    double end = tu_now_ms() + PATIENCE_MS;
    while (ld(&S.max_inside) < 2 && tu_now_ms() < end)
        ck_assert_status(WdfIoTargetSendIoctlSynchronously(target, NULL, IOCTL_TEST, NULL, NULL, NULL, NULL),
                         STATUS_SUCCESS);
    WdfTimerStop(t, TRUE);
    ck_assert_int_eq(ld(&S.max_inside), 2);
    WdfObjectDelete(drv);
}
END_TEST

static Suite *wdfsync_suite(void)
{
    Suite *s = suite_create("wdfsync");
    TCase *tc = tu_tcase(s, "locks", 60);
    tcase_add_test(tc, spin_lock_raises_to_dispatch_and_restores);
    tcase_add_test(tc, spin_lock_misuse_bugchecks);
    tcase_add_loop_test(tc, locks_exclude_under_contention, 0, 2);
    tcase_add_test(tc, wait_lock_timeouts);
    tcase_add_test(tc, wait_lock_release_wakes_a_waiter);
    tcase_add_test(tc, wait_lock_misuse_and_parenting);
    tcase_add_loop_test(tc, object_lock_holds_off_serialized_callbacks, 0, 2);
    tcase_add_test(tc, object_lock_misuse_bugchecks);

    tc = tu_tcase(s, "collections and strings", 30);
    tcase_add_test(tc, collection_keeps_order_and_references);
    tcase_add_test(tc, collection_misuse_and_failures);
    tcase_add_test(tc, string_copies_its_text);
    tcase_add_test(tc, version_string_and_availability);

    tc = tu_tcase(s, "timers", 120);
    tcase_add_test(tc, timer_create_statuses);
    tcase_add_loop_test(tc, one_shot_fires_once_on_a_framework_thread, 0, 2);
    tcase_add_test(tc, start_of_a_queued_timer_returns_true_and_restarts);
    tcase_add_test(tc, periodic_timer_keeps_its_period);
    tcase_add_test(tc, maxlong_period_fires_once_in_a_test);
    tcase_add_test(tc, high_resolution_timer_needs_a_relative_due_time);
    tcase_add_loop_test(tc, stop_with_wait_waits_for_the_running_callback, 0, 2);
    tcase_add_test(tc, stop_with_wait_from_the_callback_is_refused);
    tcase_add_test(tc, start_from_the_callback_during_a_stop_is_dropped);
    tcase_add_test(tc, delete_waits_for_a_running_periodic_callback);
    tcase_add_loop_test(tc, delete_from_the_callback_does_not_wait_for_itself, 0, 2);
    tcase_add_test(tc, delete_at_dispatch_drops_a_queued_callback);
    tcase_add_test(tc, deleting_the_parent_stops_the_timer);
    tcase_add_test(tc, a_sibling_deleted_first_stays_usable_until_the_parent_is_done);
    tcase_add_test(tc, create_start_delete_cycles);

    tc = tu_tcase(s, "work items", 60);
    tcase_add_test(tc, work_item_create_statuses);
    tcase_add_test(tc, work_item_runs_at_passive_on_a_worker);
    tcase_add_test(tc, work_items_are_fifo_and_not_queued_twice);
    tcase_add_test(tc, flush_and_delete_wait_for_the_callback);
    tcase_add_test(tc, flush_or_delete_from_the_callback);

    tc = tu_tcase(s, "serialization", 120);
    tcase_add_loop_test(tc, callbacks_sharing_a_lock_never_overlap, 0, SERIAL_MODES);
    tcase_add_test(tc, unserialized_callbacks_do_overlap);
    return s;
}

int main(void)
{
    return tu_run_suite(wdfsync_suite());
}
