/* The kernel run-time support drivers call besides WDF: pool, IRQL and
 * spin locks, dispatcher objects and waits, time, Rtl strings, ntstrsafe,
 * ntintsafe, the Windows printf conversions, DbgPrint and its filter,
 * asserts, breakpoints and bug checks. */
#define _GNU_SOURCE
#include "testutil.h"

#include <ntddk.h>
#include <ntintsafe.h>
#include <ntstrsafe.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wdf.h>

#include "../lib/ntrt.h"
#include "../lib/tsc_clock.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

extern char **environ;

#define TAG 'tseT'

/* The bug check recorded since the last reset, with its code. */
static void expect_bugcheck(ULONG code, ULONG_PTR p1)
{
    ck_assert_int_eq(tu_last_bugcheck.count, 1);
    ck_assert_uint_eq(tu_last_bugcheck.bugcheck, code);
    ck_assert_uint_eq(tu_last_bugcheck.p[0], p1);
    tu_bugcheck_reset();
}

/* ---- pool ---- */

START_TEST(pool2_zeroes_unless_uninitialized)
{
    unsigned char *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 1000, TAG);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(p[i], 0);
    memset(p, 0xAB, 1000);
    ExFreePoolWithTag(p, TAG);
    p = ExAllocatePool2(POOL_FLAG_PAGED | POOL_FLAG_UNINITIALIZED, 1000, TAG);
    ck_assert_ptr_nonnull(p);
    ExFreePool(p);
}
END_TEST

START_TEST(pool2_refuses_bad_tag_and_flags)
{
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, 0));
    ck_assert_ptr_null(ExAllocatePool2(0, 64, TAG));                                     /* no pool type */
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED, 64, TAG)); /* two */
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_RESERVED1, 64, TAG));
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_NON_PAGED | 0x80000000ULL, 64, TAG));
    /* An unknown optional flag is ignored. */
    void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_SPECIAL_POOL | (1ULL << 40), 64, TAG);
    ck_assert_ptr_nonnull(p);
    ExFreePool(p);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
}
END_TEST

START_TEST(pool2_raise_on_failure_is_an_unhandled_exception)
{
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_RAISE_ON_FAILURE, 64, 0));
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_INSUFFICIENT_RESOURCES);
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_RAISE_ON_FAILURE, 64, TAG));
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_INSUFFICIENT_RESOURCES);
}
END_TEST

START_TEST(pool_allocations_fail_under_fault_injection)
{
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG));
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_ptr_null(ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG));
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_ptr_null(ExAllocatePoolZero(PagedPool, 64, TAG));
    ck_assert_uint_eq(UwdfFaultAllocationFailures(), 1);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
}
END_TEST

START_TEST(pool_blocks_are_aligned)
{
    void *small = ExAllocatePool2(POOL_FLAG_NON_PAGED, 24, TAG);
    void *cache = ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_CACHE_ALIGNED, 100, TAG);
    void *page = ExAllocatePoolWithTag(NonPagedPoolNx, PAGE_SIZE, TAG);
    void *big = ExAllocatePoolZero(PagedPool, 3 * PAGE_SIZE + 5, TAG);
    ck_assert_uint_eq((uintptr_t)small % 16, 0);
    ck_assert_uint_eq((uintptr_t)cache % 64, 0);
    ck_assert_uint_eq((uintptr_t)page % PAGE_SIZE, 0);
    ck_assert_uint_eq((uintptr_t)big % PAGE_SIZE, 0);
    memset(big, 1, 3 * PAGE_SIZE + 5);
    ExFreePool(small);
    ExFreePool(cache);
    ExFreePoolWithTag(page, TAG);
    ExFreePoolWithTag(big, TAG);
}
END_TEST

START_TEST(pool_zero_size_is_a_verifier_violation)
{
    void *p = ExAllocatePoolWithTag(NonPagedPoolNx, 0, TAG);
    ck_assert_ptr_nonnull(p); /* as Windows without the verifier */
    ExFreePool(p);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    UwdfSetVerifier(TRUE);
    p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 0, TAG);
    expect_bugcheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0);
    ExFreePool(p);
}
END_TEST

START_TEST(pool_free_with_wrong_tag_is_bad_pool_caller)
{
    void *p = ExAllocatePoolWithTag(NonPagedPoolNx, 32, TAG);
    ExFreePoolWithTag(p, 'gaTx');
    ck_assert_uint_eq(tu_last_bugcheck.p[1], (ULONG_PTR)p);
    ck_assert_uint_eq(tu_last_bugcheck.p[2], TAG);
    ck_assert_uint_eq(tu_last_bugcheck.p[3], 'gaTx');
    expect_bugcheck(BAD_POOL_CALLER, 0x0A);
    ExFreePoolWithTag(p, TAG); /* still allocated: the bad free did nothing */
}
END_TEST

START_TEST(pool_free_of_foreign_pointer_is_bad_pool_caller)
{
    char local[64] __attribute__((aligned(16)));
    memset(local, 0, sizeof(local));
    ExFreePool(NULL);
    expect_bugcheck(BAD_POOL_CALLER, 0x46);
    ExFreePool(local + 32);
    expect_bugcheck(BAD_POOL_CALLER, 0x46);
}
END_TEST

START_TEST(pool_paged_above_apc_level_fails)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_PAGED, 64, TAG));
    ck_assert_ptr_null(ExAllocatePoolWithTag(PagedPool, 64, TAG));
    void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
    ck_assert_ptr_nonnull(p);
    ExFreePool(p);
    KeLowerIrql(old);
    UwdfSetVerifier(TRUE);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert_ptr_null(ExAllocatePool2(POOL_FLAG_PAGED, 64, TAG));
    KeLowerIrql(old);
    tu_expect_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, DISPATCH_LEVEL);
}
END_TEST

START_TEST(pool_outstanding_count_returns_to_where_it_was)
{
    unsigned long long before = uwdf_pool_outstanding();
    void *p[100];
    for (int i = 0; i < 100; i++)
        p[i] = ExAllocatePool2(POOL_FLAG_NON_PAGED, (SIZE_T)i * 97 + 1, TAG);
    ck_assert_uint_eq(uwdf_pool_outstanding(), before + 100);
    for (int i = 0; i < 100; i++)
        ExFreePoolWithTag(p[i], TAG);
    ck_assert_uint_eq(uwdf_pool_outstanding(), before);
}
END_TEST

/* ---- IRQL and spin locks ---- */

START_TEST(irql_raise_and_lower)
{
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ck_assert_uint_eq(old, PASSIVE_LEVEL);
    ck_assert_uint_eq(KeGetCurrentIrql(), APC_LEVEL);
    ck_assert_uint_eq(KeRaiseIrqlToDpcLevel(), APC_LEVEL);
    ck_assert_uint_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeRaiseIrql(APC_LEVEL, &old); /* lower than the current: a bug check */
    expect_bugcheck(IRQL_NOT_GREATER_OR_EQUAL, DISPATCH_LEVEL);
    ck_assert_uint_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(PASSIVE_LEVEL);
    KeLowerIrql(DISPATCH_LEVEL); /* higher than the current */
    expect_bugcheck(IRQL_NOT_LESS_OR_EQUAL, PASSIVE_LEVEL);
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
}
END_TEST

START_TEST(spin_lock_raises_to_dispatch_and_restores)
{
    KSPIN_LOCK l;
    KIRQL old;
    KeInitializeSpinLock(&l);
    KeAcquireSpinLock(&l, &old);
    ck_assert_uint_eq(old, PASSIVE_LEVEL);
    ck_assert_uint_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    ck_assert(!KeTryToAcquireSpinLockAtDpcLevel(&l));
    KeReleaseSpinLock(&l, old);
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KLOCK_QUEUE_HANDLE h;
    KeAcquireInStackQueuedSpinLock(&l, &h);
    ck_assert_uint_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeReleaseInStackQueuedSpinLock(&h);
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    ck_assert(KeTestSpinLock(&l));
}
END_TEST

START_TEST(spin_lock_recursion_and_foreign_release_bugcheck)
{
    KSPIN_LOCK l;
    KIRQL old;
    KeInitializeSpinLock(&l);
    KeAcquireSpinLock(&l, &old);
    KeAcquireSpinLockAtDpcLevel(&l);
    expect_bugcheck(SPIN_LOCK_ALREADY_OWNED, (ULONG_PTR)&l);
    KeReleaseSpinLock(&l, old);
    KeReleaseSpinLock(&l, old);
    expect_bugcheck(SPIN_LOCK_NOT_OWNED, (ULONG_PTR)&l);
}
END_TEST

#define CONTENDERS 4
#define ROUNDS 20000

struct contended {
    KSPIN_LOCK spin;
    EX_SPIN_LOCK rw;
    FAST_MUTEX fast;
    KMUTEX mutex;
    volatile long counter;
    atomic_int inside;
    atomic_int overlaps;
    atomic_int wrong_irql;
    int which;
    int rounds;
};

/* A plain read-modify-write with a window in it: increments are lost, and
 * overlaps counted, if two threads get in at once. */
static void critical_section(struct contended *c)
{
    if (atomic_fetch_add(&c->inside, 1) != 0)
        atomic_fetch_add(&c->overlaps, 1);
    long v = c->counter;
    if ((v & 63) == 0)
        sched_yield();
    c->counter = v + 1;
    atomic_fetch_sub(&c->inside, 1);
}

static void *contender(void *arg)
{
    struct contended *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        KIRQL old;
        KLOCK_QUEUE_HANDLE h;
        switch (c->which) {
        case 0:
            KeAcquireSpinLock(&c->spin, &old);
            critical_section(c);
            KeReleaseSpinLock(&c->spin, old);
            break;
        case 1:
            KeAcquireInStackQueuedSpinLock(&c->spin, &h);
            critical_section(c);
            KeReleaseInStackQueuedSpinLock(&h);
            break;
        case 2:
            old = ExAcquireSpinLockExclusive(&c->rw);
            critical_section(c);
            ExReleaseSpinLockExclusive(&c->rw, old);
            break;
        case 3:
            ExAcquireFastMutex(&c->fast);
            if (KeGetCurrentIrql() != APC_LEVEL)
                atomic_fetch_add(&c->wrong_irql, 1);
            critical_section(c);
            ExReleaseFastMutex(&c->fast);
            break;
        case 4:
            KeWaitForSingleObject(&c->mutex, Executive, KernelMode, FALSE, NULL);
            critical_section(c);
            KeReleaseMutex(&c->mutex, FALSE);
            break;
        }
    }
    return NULL;
}

START_TEST(locks_exclude_under_contention)
{
    struct contended c;
    memset(&c, 0, sizeof(c));
    c.which = _i;
    c.rounds = tu_running_on_valgrind() ? ROUNDS / 10 : ROUNDS;
    KeInitializeSpinLock(&c.spin);
    ExInitializeFastMutex(&c.fast);
    KeInitializeMutex(&c.mutex, 0);
    pthread_t t[CONTENDERS];
    for (int i = 0; i < CONTENDERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, contender, &c), 0);
    for (int i = 0; i < CONTENDERS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&c.overlaps), 0);
    ck_assert_int_eq(atomic_load(&c.wrong_irql), 0);
    ck_assert_int_eq(c.counter, CONTENDERS * c.rounds);
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
}
END_TEST

START_TEST(ex_spin_lock_shares_between_readers)
{
    EX_SPIN_LOCK l = 0;
    KIRQL a = ExAcquireSpinLockShared(&l);
    ExAcquireSpinLockSharedAtDpcLevel(&l);
    ck_assert_int_eq(l, 2);
    ck_assert(!ExTryConvertSharedSpinLockExclusive(&l)); /* another reader */
    ExReleaseSpinLockSharedFromDpcLevel(&l);
    ck_assert(ExTryConvertSharedSpinLockExclusive(&l));
    ExReleaseSpinLockExclusive(&l, a);
    ck_assert_int_eq(l, 0);
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    ExReleaseSpinLockShared(&l, PASSIVE_LEVEL); /* not held */
    expect_bugcheck(SPIN_LOCK_NOT_OWNED, (ULONG_PTR)&l);
}
END_TEST

START_TEST(critical_regions_nest)
{
    ck_assert(!KeAreApcsDisabled());
    KeEnterCriticalRegion();
    KeEnterCriticalRegion();
    ck_assert(KeAreApcsDisabled());
    KeLeaveCriticalRegion();
    KeLeaveCriticalRegion();
    ck_assert(!KeAreApcsDisabled());
    KeLeaveCriticalRegion();
    expect_bugcheck(APC_INDEX_MISMATCH, 0);
}
END_TEST

/* ---- dispatcher objects ---- */

static NTSTATUS wait1(PVOID o, LONGLONG timeout_100ns)
{
    LARGE_INTEGER t = { .QuadPart = timeout_100ns };
    return KeWaitForSingleObject(o, Executive, KernelMode, FALSE, &t);
}

START_TEST(event_set_and_reset_return_the_previous_state)
{
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, TRUE);
    ck_assert_int_eq(KeReadStateEvent(&e), 1);
    ck_assert_int_eq(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 1);
    ck_assert_int_eq(KeResetEvent(&e), 1);
    ck_assert_int_eq(KeResetEvent(&e), 0);
    ck_assert_int_eq(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 0);
    KeClearEvent(&e);
    ck_assert_int_eq(KeReadStateEvent(&e), 0);
    ck_assert_status(wait1(&e, 0), STATUS_TIMEOUT);
}
END_TEST

struct waiter_arg {
    PVOID object;
    atomic_int woke;
    NTSTATUS status;
};

static void *wait_forever(void *arg)
{
    struct waiter_arg *w = arg;
    w->status = KeWaitForSingleObject(w->object, Executive, KernelMode, FALSE, NULL);
    atomic_store(&w->woke, 1);
    return NULL;
}

static int woken(struct waiter_arg *w, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += atomic_load(&w[i].woke);
    return k;
}

static int wait_for_woken(struct waiter_arg *w, int n, int want)
{
    for (int i = 0; i < 2000 && woken(w, n) < want; i++)
        tu_sleep_ms(1);
    tu_sleep_ms(20); /* and no more than that */
    return woken(w, n);
}

START_TEST(synchronization_event_releases_one_waiter_per_set)
{
    KEVENT e;
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);
    struct waiter_arg w[2] = { { .object = &e }, { .object = &e } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, wait_forever, &w[i]);
    tu_sleep_ms(30);
    ck_assert_int_eq(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 0);
    ck_assert_int_eq(wait_for_woken(w, 2, 1), 1);
    ck_assert_int_eq(KeReadStateEvent(&e), 0); /* the waiter consumed it */
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    ck_assert_int_eq(wait_for_woken(w, 2, 2), 2);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_status(w[i].status, STATUS_SUCCESS);
    }
}
END_TEST

START_TEST(notification_event_releases_every_waiter)
{
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    struct waiter_arg w[3] = { { .object = &e }, { .object = &e }, { .object = &e } };
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, wait_forever, &w[i]);
    tu_sleep_ms(30);
    ck_assert_int_eq(woken(w, 3), 0);
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(woken(w, 3), 3);
    ck_assert_int_eq(KeReadStateEvent(&e), 1);
}
END_TEST

START_TEST(pulse_releases_waiters_and_leaves_the_event_reset)
{
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    struct waiter_arg w[2] = { { .object = &e }, { .object = &e } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, wait_forever, &w[i]);
    tu_sleep_ms(30);
    /* A pulse releases only the threads waiting at that moment: a waiter
     * the scheduler (a loaded machine, ASan) has not brought to its wait
     * yet is released by a later pulse; each leaves the event reset. */
    ck_assert_int_eq(KePulseEvent(&e, IO_NO_INCREMENT, FALSE), 0);
    ck_assert_int_eq(KeReadStateEvent(&e), 0);
    for (int tries = 0; woken(w, 2) < 2 && tries < 500; tries++) {
        tu_sleep_ms(10);
        if (woken(w, 2) < 2) {
            ck_assert_int_eq(KePulseEvent(&e, IO_NO_INCREMENT, FALSE), 0);
            ck_assert_int_eq(KeReadStateEvent(&e), 0);
        }
    }
    ck_assert_int_eq(woken(w, 2), 2);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(KeReadStateEvent(&e), 0);
}
END_TEST

START_TEST(wait_timeouts_relative_absolute_and_poll)
{
    KEVENT e;
    LARGE_INTEGER now;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    double t0 = tu_now_ms();
    ck_assert_status(wait1(&e, 0), STATUS_TIMEOUT);
    ck_assert_msg(tu_now_ms() - t0 < 50, "a poll waited");
    t0 = tu_now_ms();
    ck_assert_status(wait1(&e, WDF_REL_TIMEOUT_IN_MS(40)), STATUS_TIMEOUT);
    ck_assert_msg(tu_now_ms() - t0 >= 39, "a 40 ms wait took %.1f ms", tu_now_ms() - t0);
    KeQuerySystemTime(&now);
    t0 = tu_now_ms();
    ck_assert_status(wait1(&e, now.QuadPart - 10000000), STATUS_TIMEOUT); /* a second ago */
    ck_assert_msg(tu_now_ms() - t0 < 50, "a past deadline waited");
    KeQuerySystemTime(&now);
    t0 = tu_now_ms();
    ck_assert_status(wait1(&e, now.QuadPart + WDF_ABS_TIMEOUT_IN_MS(40)), STATUS_TIMEOUT);
    ck_assert_msg(tu_now_ms() - t0 >= 30, "an absolute deadline 40 ms away came after %.1f ms", tu_now_ms() - t0);
}
END_TEST

START_TEST(wait_above_apc_level_only_polls)
{
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, TRUE);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert_status(wait1(&e, 0), STATUS_SUCCESS);
    ck_assert_status(wait1(&e, WDF_REL_TIMEOUT_IN_MS(10)), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, NULL), STATUS_INVALID_DEVICE_REQUEST);
    LARGE_INTEGER d = { .QuadPart = -1 };
    ck_assert_status(KeDelayExecutionThread(KernelMode, FALSE, &d), STATUS_INVALID_DEVICE_REQUEST);
    KeLowerIrql(old);
    UwdfSetVerifier(TRUE);
    KeRaiseIrql(APC_LEVEL, &old);
    ck_assert_status(wait1(&e, WDF_REL_TIMEOUT_IN_MS(10)), STATUS_SUCCESS); /* APC_LEVEL may wait */
    KeLowerIrql(old);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ck_assert_status(wait1(&e, WDF_REL_TIMEOUT_IN_MS(10)), STATUS_INVALID_DEVICE_REQUEST);
    KeLowerIrql(old);
    tu_expect_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, DISPATCH_LEVEL);
}
END_TEST

START_TEST(wait_any_returns_the_index_of_the_signalled_object)
{
    KEVENT a, b;
    KSEMAPHORE s;
    KeInitializeEvent(&a, SynchronizationEvent, FALSE);
    KeInitializeEvent(&b, SynchronizationEvent, FALSE);
    KeInitializeSemaphore(&s, 0, 5);
    PVOID objs[3] = { &a, &b, &s };
    LARGE_INTEGER poll = { .QuadPart = 0 };
    ck_assert_status(KeWaitForMultipleObjects(3, objs, WaitAny, Executive, KernelMode, FALSE, &poll, NULL),
                     STATUS_TIMEOUT);
    KeSetEvent(&b, 0, FALSE);
    ck_assert_status(KeWaitForMultipleObjects(3, objs, WaitAny, Executive, KernelMode, FALSE, &poll, NULL),
                     STATUS_WAIT_0 + 1);
    ck_assert_int_eq(KeReadStateEvent(&b), 0);
    KeReleaseSemaphore(&s, 0, 2, FALSE);
    ck_assert_status(KeWaitForMultipleObjects(3, objs, WaitAny, Executive, KernelMode, FALSE, &poll, NULL),
                     STATUS_WAIT_0 + 2);
    ck_assert_int_eq(KeReadStateSemaphore(&s), 1);
}
END_TEST

static void *wait_all_two(void *arg)
{
    struct waiter_arg *w = arg;
    PVOID *objs = w->object;
    w->status = KeWaitForMultipleObjects(2, objs, WaitAll, Executive, KernelMode, FALSE, NULL, NULL);
    atomic_store(&w->woke, 1);
    return NULL;
}

START_TEST(wait_all_takes_every_object_at_once)
{
    KEVENT a, b;
    KeInitializeEvent(&a, SynchronizationEvent, FALSE);
    KeInitializeEvent(&b, SynchronizationEvent, FALSE);
    PVOID objs[2] = { &a, &b };
    struct waiter_arg w = { .object = objs };
    pthread_t t;
    pthread_create(&t, NULL, wait_all_two, &w);
    tu_sleep_ms(30);
    KeSetEvent(&a, 0, FALSE);
    tu_sleep_ms(30);
    ck_assert_int_eq(atomic_load(&w.woke), 0);
    ck_assert_int_eq(KeReadStateEvent(&a), 1); /* not consumed on its own */
    KeSetEvent(&b, 0, FALSE);
    pthread_join(t, NULL);
    ck_assert_status(w.status, STATUS_SUCCESS);
    ck_assert_int_eq(KeReadStateEvent(&a), 0);
    ck_assert_int_eq(KeReadStateEvent(&b), 0);
    /* An object twice in a WaitAll is refused. */
    PVOID twice[2] = { &a, &a };
    LARGE_INTEGER poll = { .QuadPart = 0 };
    ck_assert_status(KeWaitForMultipleObjects(2, twice, WaitAll, Executive, KernelMode, FALSE, &poll, NULL),
                     STATUS_INVALID_PARAMETER_MIX);
}
END_TEST

START_TEST(wait_for_many_objects_needs_wait_blocks)
{
    KEVENT ev[5];
    PVOID objs[5];
    KWAIT_BLOCK blocks[5];
    LARGE_INTEGER poll = { .QuadPart = 0 };
    for (int i = 0; i < 5; i++) {
        KeInitializeEvent(&ev[i], NotificationEvent, i == 4);
        objs[i] = &ev[i];
    }
    ck_assert_status(KeWaitForMultipleObjects(5, objs, WaitAny, Executive, KernelMode, FALSE, &poll, blocks),
                     STATUS_WAIT_0 + 4);
    KeWaitForMultipleObjects(5, objs, WaitAny, Executive, KernelMode, FALSE, &poll, NULL);
    expect_bugcheck(MAXIMUM_WAIT_OBJECTS_EXCEEDED, 5);
    KeWaitForMultipleObjects(MAXIMUM_WAIT_OBJECTS + 1, objs, WaitAny, Executive, KernelMode, FALSE, &poll, blocks);
    expect_bugcheck(MAXIMUM_WAIT_OBJECTS_EXCEEDED, MAXIMUM_WAIT_OBJECTS + 1);
}
END_TEST

START_TEST(semaphore_counts_up_to_its_limit)
{
    KSEMAPHORE s;
    KeInitializeSemaphore(&s, 1, 2);
    ck_assert_status(wait1(&s, 0), STATUS_SUCCESS);
    ck_assert_status(wait1(&s, 0), STATUS_TIMEOUT);
    ck_assert_int_eq(KeReleaseSemaphore(&s, 0, 2, FALSE), 0);
    ck_assert_int_eq(KeReadStateSemaphore(&s), 2);
    ck_assert_int_eq(KeReleaseSemaphore(&s, 0, 1, FALSE), 2);
    expect_bugcheck(SEMAPHORE_LIMIT_EXCEEDED, (ULONG_PTR)&s);
    ck_assert_int_eq(KeReadStateSemaphore(&s), 2); /* unchanged */
}
END_TEST

static void *take_mutex_poll(void *arg)
{
    struct waiter_arg *w = arg;
    w->status = wait1(w->object, 0);
    return NULL;
}

START_TEST(mutex_is_recursive_for_its_owner)
{
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    ck_assert_int_eq(KeReadStateMutex(&m), 1);
    ck_assert_status(wait1(&m, 0), STATUS_SUCCESS);
    ck_assert_status(wait1(&m, 0), STATUS_SUCCESS);
    ck_assert_int_eq(KeReadStateMutex(&m), -1);
    struct waiter_arg other = { .object = &m };
    pthread_t t;
    pthread_create(&t, NULL, take_mutex_poll, &other);
    pthread_join(t, NULL);
    ck_assert_status(other.status, STATUS_TIMEOUT);
    ck_assert_int_eq(KeReleaseMutex(&m, FALSE), -1);
    ck_assert_int_eq(KeReleaseMutex(&m, FALSE), 0);
    ck_assert_int_eq(KeReadStateMutex(&m), 1);
    KeReleaseMutex(&m, FALSE);
    expect_bugcheck(THREAD_NOT_MUTEX_OWNER, (ULONG_PTR)&m);
}
END_TEST

START_TEST(guarded_and_fast_mutex_try_acquire)
{
    KGUARDED_MUTEX g;
    FAST_MUTEX f;
    KeInitializeGuardedMutex(&g);
    ExInitializeFastMutex(&f);
    ck_assert(KeTryToAcquireGuardedMutex(&g));
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    ck_assert(KeAreAllApcsDisabled());
    ck_assert(!KeTryToAcquireGuardedMutex(&g));
    KeReleaseGuardedMutex(&g);
    ck_assert(!KeAreAllApcsDisabled());
    ck_assert(ExTryToAcquireFastMutex(&f));
    ck_assert_uint_eq(KeGetCurrentIrql(), APC_LEVEL);
    ck_assert(!ExTryToAcquireFastMutex(&f));
    ck_assert_uint_eq(KeGetCurrentIrql(), APC_LEVEL);
    ExReleaseFastMutex(&f);
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
}
END_TEST

START_TEST(delay_execution_sleeps_the_interval)
{
    LARGE_INTEGER d = { .QuadPart = WDF_REL_TIMEOUT_IN_MS(30) };
    double t0 = tu_now_ms();
    ck_assert_status(KeDelayExecutionThread(KernelMode, FALSE, &d), STATUS_SUCCESS);
    ck_assert_msg(tu_now_ms() - t0 >= 29, "slept %.1f ms", tu_now_ms() - t0);
    d.QuadPart = 0;
    ck_assert_status(KeDelayExecutionThread(KernelMode, FALSE, &d), STATUS_SUCCESS);
    t0 = tu_now_ms();
    KeStallExecutionProcessor(2000);
    ck_assert_msg(tu_now_ms() - t0 >= 1.9, "stalled %.3f ms", tu_now_ms() - t0);
}
END_TEST

/* ---- time ---- */

START_TEST(interrupt_tick_and_performance_time_agree)
{
    ULONGLONG it0 = KeQueryInterruptTime(), u0 = KeQueryUnbiasedInterruptTime();
    LARGE_INTEGER freq, ticks;
    LARGE_INTEGER pc0 = KeQueryPerformanceCounter(&freq);
    tu_sleep_ms(20);
    ULONGLONG it1 = KeQueryInterruptTime(), u1 = KeQueryUnbiasedInterruptTime();
    LARGE_INTEGER pc1 = KeQueryPerformanceCounter(NULL);
    ck_assert_int_eq(freq.QuadPart, 10000000);
    ck_assert_msg(it1 - it0 >= 190000 && u1 - u0 >= 190000, "20 ms is %llu / %llu", (unsigned long long)(it1 - it0), (unsigned long long)(u1 - u0));
    ck_assert_msg(pc1.QuadPart - pc0.QuadPart >= 190000, "20 ms of counter is %lld",
                  (long long)(pc1.QuadPart - pc0.QuadPart));
    KeQueryTickCount(&ticks);
    ck_assert_uint_eq(KeQueryTimeIncrement(), 156250);
    ULONGLONG from_ticks = (ULONGLONG)ticks.QuadPart * KeQueryTimeIncrement();
    ck_assert_msg(from_ticks <= KeQueryInterruptTime() && KeQueryInterruptTime() - from_ticks < 2 * 156250,
                  "ticks do not follow interrupt time");
}
END_TEST

/* The engine's hand-over clock (lib/tsc_clock.h): extrapolated from the
 * TSC, it stays with CLOCK_MONOTONIC across its first rate (10 ms) and
 * many re-anchorings (1 ms each). Compared only where the two clock_gettime
 * reads around it are close (a preemption between them says nothing). */
START_TEST(tsc_clock_follows_the_monotonic_clock)
{
    struct uwdf_tsc_clock c = { 0 };
    int64_t start = uwdf_mono_ns(), worst = 0;
    long compared = 0, extrapolating = 0;
    while (uwdf_mono_ns() - start < 60000000) {
        int64_t a = uwdf_mono_ns();
        int64_t t = uwdf_tsc_clock_ns(&c);
        int64_t b = uwdf_mono_ns();
        extrapolating += c.window > 0;
        if (b - a > 20000)
            continue;
        int64_t off = t < a ? a - t : t > b ? t - b : 0;
        if (off > worst)
            worst = off;
        compared++;
    }
    ck_assert_msg(compared > 100, "only %ld readings between close clock_gettime pairs", compared);
    ck_assert_msg(worst <= 1000, "the TSC clock was %lld ns outside CLOCK_MONOTONIC", (long long)worst);
#if defined(__x86_64__)
    unsigned ea, eb, ec, ed;
    char cs[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (f) {
        if (!fgets(cs, sizeof(cs), f))
            cs[0] = '\0';
        fclose(f);
    }
    if (__get_cpuid(0x80000007, &ea, &eb, &ec, &ed) && (ed & (1u << 8)) && strcmp(cs, "tsc\n") == 0)
        ck_assert_msg(extrapolating > 0, "an invariant TSC, but the clock never extrapolates");
#endif
}
END_TEST

START_TEST(time_fields_round_trip)
{
    TIME_FIELDS f = { .Year = 2024, .Month = 2, .Day = 29, .Hour = 12, .Minute = 34, .Second = 56,
                      .Milliseconds = 789 };
    LARGE_INTEGER t;
    ck_assert(RtlTimeFieldsToTime(&f, &t));
    /* 2024-02-29 12:34:56.789 UTC is Unix 1709210096.789 */
    ck_assert_int_eq(t.QuadPart, 1709210096789LL * 10000 + UWDF_NT_EPOCH_DELTA_100NS);
    TIME_FIELDS g;
    RtlTimeToTimeFields(&t, &g);
    ck_assert(memcmp(&f, &g, offsetof(TIME_FIELDS, Weekday)) == 0);
    ck_assert_int_eq(g.Weekday, 4); /* a Thursday */
    LARGE_INTEGER zero = { .QuadPart = 0 };
    RtlTimeToTimeFields(&zero, &g);
    ck_assert(g.Year == 1601 && g.Month == 1 && g.Day == 1 && g.Weekday == 1);
    f.Month = 2, f.Day = 30;
    ck_assert(!RtlTimeFieldsToTime(&f, &t));
    f.Year = 2023, f.Day = 29;
    ck_assert(!RtlTimeFieldsToTime(&f, &t)); /* not a leap year */
    f.Year = 1600, f.Day = 1;
    ck_assert(!RtlTimeFieldsToTime(&f, &t));
}
END_TEST

START_TEST(local_time_round_trips)
{
    setenv("TZ", "UTC+3", 1);
    tzset();
    LARGE_INTEGER sys, local, back;
    KeQuerySystemTime(&sys);
    ExSystemTimeToLocalTime(&sys, &local);
    ck_assert_int_eq(sys.QuadPart - local.QuadPart, 3LL * 3600 * 10000000);
    ExLocalTimeToSystemTime(&local, &back);
    ck_assert_int_eq(back.QuadPart, sys.QuadPart);
    unsetenv("TZ");
    tzset();
}
END_TEST

/* ---- Rtl strings ---- */

START_TEST(init_strings_count_bytes)
{
    UNICODE_STRING u;
    ANSI_STRING a;
    RtlInitUnicodeString(&u, L"abc");
    ck_assert_uint_eq(u.Length, 3 * sizeof(WCHAR));
    ck_assert_uint_eq(u.MaximumLength, 4 * sizeof(WCHAR));
    RtlInitUnicodeString(&u, NULL);
    ck_assert(u.Length == 0 && u.MaximumLength == 0 && u.Buffer == NULL);
    RtlInitAnsiString(&a, "hello");
    ck_assert(a.Length == 5 && a.MaximumLength == 6);
    WCHAR *longs = calloc(20000, sizeof(WCHAR));
    wmemset(longs, L'x', 19999);
    ck_assert_status(RtlInitUnicodeStringEx(&u, longs), STATUS_NAME_TOO_LONG);
    RtlInitUnicodeString(&u, longs); /* clamped to whole characters */
    ck_assert_uint_eq(u.Length % sizeof(WCHAR), 0);
    ck_assert_uint_le(u.Length + sizeof(WCHAR), 0xFFFF);
    ck_assert_status(WdmlibRtlInitUnicodeStringEx(&u, L"ok"), STATUS_SUCCESS);
    free(longs);
}
END_TEST

START_TEST(copy_unicode_string_truncates_and_terminates)
{
    WCHAR buf[8];
    UNICODE_STRING dst = { 0, sizeof(buf), buf }, src;
    RtlInitUnicodeString(&src, L"abc");
    wmemset(buf, L'#', 8);
    RtlCopyUnicodeString(&dst, &src);
    ck_assert_uint_eq(dst.Length, 3 * sizeof(WCHAR));
    ck_assert(wcscmp(buf, L"abc") == 0);
    RtlInitUnicodeString(&src, L"0123456789");
    RtlCopyUnicodeString(&dst, &src);
    ck_assert_uint_eq(dst.Length, 8 * sizeof(WCHAR)); /* no room for a NUL */
    ck_assert(wmemcmp(buf, L"01234567", 8) == 0);
    RtlCopyUnicodeString(&dst, NULL);
    ck_assert_uint_eq(dst.Length, 0);
}
END_TEST

START_TEST(append_fails_whole_when_it_does_not_fit)
{
    WCHAR buf[6];
    UNICODE_STRING dst = { 0, sizeof(buf), buf }, src;
    ck_assert_status(RtlAppendUnicodeToString(&dst, L"abc"), STATUS_SUCCESS);
    RtlInitUnicodeString(&src, L"def");
    ck_assert_status(RtlAppendUnicodeStringToString(&dst, &src), STATUS_SUCCESS);
    ck_assert_uint_eq(dst.Length, 6 * sizeof(WCHAR));
    ck_assert_status(RtlAppendUnicodeToString(&dst, L"g"), STATUS_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(dst.Length, 6 * sizeof(WCHAR));
    ck_assert(wmemcmp(buf, L"abcdef", 6) == 0);
    ck_assert_status(RtlAppendUnicodeToString(&dst, NULL), STATUS_SUCCESS);
}
END_TEST

START_TEST(compare_and_equal_fold_case)
{
    UNICODE_STRING a, b, c;
    RtlInitUnicodeString(&a, L"\\Device\\Caf\x00e9");
    RtlInitUnicodeString(&b, L"\\DEVICE\\CAF\x00c9");
    RtlInitUnicodeString(&c, L"\\Device");
    ck_assert(RtlEqualUnicodeString(&a, &b, TRUE));
    ck_assert(!RtlEqualUnicodeString(&a, &b, FALSE));
    ck_assert_int_gt(RtlCompareUnicodeString(&a, &b, FALSE), 0);
    ck_assert_int_eq(RtlCompareUnicodeString(&a, &b, TRUE), 0);
    ck_assert_int_lt(RtlCompareUnicodeString(&c, &a, FALSE), 0);
    ck_assert(RtlPrefixUnicodeString(&c, &a, FALSE));
    ck_assert(!RtlPrefixUnicodeString(&a, &c, FALSE));
    ck_assert_int_eq(RtlUpcaseUnicodeChar(L'\x0436'), L'\x0416');  /* Cyrillic zhe */
    ck_assert_int_eq(RtlUpcaseUnicodeChar(L'\x03c2'), L'\x03a3');  /* final sigma */
    ck_assert_int_eq(RtlUpcaseUnicodeChar(L'\x0101'), L'\x0100');  /* a with macron */
    ck_assert_int_eq(RtlUpcaseUnicodeChar(L'\x017e'), L'\x017d');  /* z with caron */
    ck_assert_int_eq(RtlDowncaseUnicodeChar(L'\x0178'), L'\x00ff');
    ck_assert_int_eq(RtlUpcaseUnicodeChar(L'\x4e2d'), L'\x4e2d');  /* no case */
    STRING s1, s2;
    RtlInitString(&s1, "Hello");
    RtlInitString(&s2, "hELLO");
    ck_assert(RtlEqualString(&s1, &s2, TRUE));
    ck_assert(!RtlEqualString(&s1, &s2, FALSE));
}
END_TEST

START_TEST(upcase_string_allocates_and_frees)
{
    UNICODE_STRING src, dst;
    RtlInitUnicodeString(&src, L"mixed Case");
    ck_assert_status(RtlUpcaseUnicodeString(&dst, &src, TRUE), STATUS_SUCCESS);
    ck_assert(wcscmp(dst.Buffer, L"MIXED CASE") == 0);
    RtlFreeUnicodeString(&dst);
    ck_assert_ptr_null(dst.Buffer);
    WCHAR small[3];
    UNICODE_STRING tiny = { 0, sizeof(small), small };
    ck_assert_status(RtlDowncaseUnicodeString(&tiny, &src, FALSE), STATUS_BUFFER_OVERFLOW);
}
END_TEST

START_TEST(unicode_and_ansi_convert_as_utf8)
{
    UNICODE_STRING u;
    ANSI_STRING a;
    RtlInitUnicodeString(&u, L"na\x00efve \x20ac");
    ck_assert_uint_eq(RtlUnicodeStringToAnsiSize(&u), 11); /* 7 characters in 10 bytes, and the NUL */
    ck_assert_status(RtlUnicodeStringToAnsiString(&a, &u, TRUE), STATUS_SUCCESS);
    ck_assert_str_eq(a.Buffer, "na\xc3\xafve \xe2\x82\xac");
    ck_assert_uint_eq(a.Length, 10);
    UNICODE_STRING back;
    ck_assert_status(RtlAnsiStringToUnicodeString(&back, &a, TRUE), STATUS_SUCCESS);
    ck_assert(RtlEqualUnicodeString(&back, &u, FALSE));
    RtlFreeUnicodeString(&back);
    RtlFreeAnsiString(&a);
    /* A destination too small: truncated at a character, terminated. */
    char small[5];
    ANSI_STRING s = { 0, sizeof(small), small };
    ck_assert_status(RtlUnicodeStringToAnsiString(&s, &u, FALSE), STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(small, "na\xc3\xaf"); /* 4 bytes: 'v' does not fit */
    char five[6];
    ANSI_STRING s5 = { 0, sizeof(five), five };
    UNICODE_STRING euro;
    RtlInitUnicodeString(&euro, L"ab\x20ac");
    ck_assert_status(RtlUnicodeStringToAnsiString(&s5, &euro, FALSE), STATUS_SUCCESS);
    five[0] = 0;
    ANSI_STRING s4 = { 0, 5, five };
    RtlInitUnicodeString(&euro, L"abc\x20ac");
    ck_assert_status(RtlUnicodeStringToAnsiString(&s4, &euro, FALSE), STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(five, "abc"); /* never half of the euro sign */
    /* Narrow to wide needs room for a NUL, else nothing happens. */
    WCHAR w[3];
    UNICODE_STRING wu = { 7, sizeof(w), w };
    ANSI_STRING three;
    RtlInitAnsiString(&three, "abc");
    ck_assert_status(RtlAnsiStringToUnicodeString(&wu, &three, FALSE), STATUS_BUFFER_OVERFLOW);
    ck_assert_uint_eq(wu.Length, 7);
    /* Invalid UTF-8 becomes U+FFFD. */
    ANSI_STRING bad = { 2, 3, "\xff\x41" };
    ck_assert_status(RtlAnsiStringToUnicodeString(&back, &bad, TRUE), STATUS_SUCCESS);
    ck_assert(back.Length == 2 * sizeof(WCHAR) && back.Buffer[0] == 0xFFFD && back.Buffer[1] == L'A');
    RtlFreeUnicodeString(&back);
}
END_TEST

START_TEST(conversions_fail_cleanly_without_memory)
{
    UNICODE_STRING u, out;
    ANSI_STRING a;
    RtlInitUnicodeString(&u, L"text");
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(RtlUnicodeStringToAnsiString(&a, &u, TRUE), STATUS_NO_MEMORY);
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(RtlUpcaseUnicodeString(&out, &u, TRUE), STATUS_NO_MEMORY);
    GUID g = { 0 };
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(RtlStringFromGUID(&g, &out), STATUS_NO_MEMORY);
}
END_TEST

START_TEST(utf8_n_conversions_count_and_report)
{
    ULONG n = 0;
    ck_assert_status(RtlUnicodeToUTF8N(NULL, 0, &n, L"\x00e9x", 2 * sizeof(WCHAR)), STATUS_SUCCESS);
    ck_assert_uint_eq(n, 3);
    char out[2];
    ck_assert_status(RtlUnicodeToUTF8N(out, sizeof(out), &n, L"\x00e9x", 2 * sizeof(WCHAR)), STATUS_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 2);
    WCHAR surrogate = 0xD800;
    ck_assert_status(RtlUnicodeToUTF8N(NULL, 0, &n, &surrogate, sizeof(WCHAR)), STATUS_SOME_NOT_MAPPED);
    WCHAR w[4];
    ck_assert_status(RtlUTF8ToUnicodeN(w, sizeof(w), &n, "a\xc3\xa9", 3), STATUS_SUCCESS);
    ck_assert(n == 2 * sizeof(WCHAR) && w[0] == L'a' && w[1] == 0xe9);
    ck_assert_status(RtlUTF8ToUnicodeN(w, sizeof(w), &n, "\xc3", 1), STATUS_SOME_NOT_MAPPED);
    ck_assert_status(RtlUTF8ToUnicodeN(w, sizeof(w), &n, "\xef\xbf\xbd", 3), STATUS_SUCCESS);
    ck_assert_status(RtlUTF8ToUnicodeN(NULL, 0, NULL, "a", 1), STATUS_INVALID_PARAMETER);
}
END_TEST

START_TEST(integers_to_and_from_text)
{
    WCHAR buf[12];
    UNICODE_STRING s = { 0, sizeof(buf), buf };
    ck_assert_status(RtlIntegerToUnicodeString(255, 16, &s), STATUS_SUCCESS);
    ck_assert(wcscmp(buf, L"FF") == 0 && s.Length == 2 * sizeof(WCHAR));
    ck_assert_status(RtlIntegerToUnicodeString(5, 2, &s), STATUS_SUCCESS);
    ck_assert(wcscmp(buf, L"101") == 0);
    ck_assert_status(RtlIntegerToUnicodeString(4294967295u, 0, &s), STATUS_SUCCESS);
    ck_assert(wcscmp(buf, L"4294967295") == 0);
    ck_assert_status(RtlIntegerToUnicodeString(1, 7, &s), STATUS_INVALID_PARAMETER);
    WCHAR four[4];
    UNICODE_STRING small = { 0, sizeof(four), four };
    ck_assert_status(RtlIntegerToUnicodeString(1234, 10, &small), STATUS_BUFFER_OVERFLOW); /* no room for NUL */
    ck_assert_status(RtlIntegerToUnicodeString(123, 10, &small), STATUS_SUCCESS);
    WCHAR big[24];
    UNICODE_STRING b = { 0, sizeof(big), big };
    ck_assert_status(RtlInt64ToUnicodeString(0xFFFFFFFFFFFFFFFFULL, 16, &b), STATUS_SUCCESS);
    ck_assert(wcscmp(big, L"FFFFFFFFFFFFFFFF") == 0);

    ULONG v = 0;
    UNICODE_STRING t;
    RtlInitUnicodeString(&t, L"  -42xyz");
    ck_assert_status(RtlUnicodeStringToInteger(&t, 10, &v), STATUS_SUCCESS);
    ck_assert_uint_eq(v, (ULONG)-42);
    RtlInitUnicodeString(&t, L"0x1F");
    ck_assert_status(RtlUnicodeStringToInteger(&t, 0, &v), STATUS_SUCCESS);
    ck_assert_uint_eq(v, 31);
    RtlInitUnicodeString(&t, L"0b101");
    ck_assert_status(RtlUnicodeStringToInteger(&t, 0, &v), STATUS_SUCCESS);
    ck_assert_uint_eq(v, 5);
    RtlInitUnicodeString(&t, L"0o17");
    ck_assert_status(RtlUnicodeStringToInteger(&t, 0, &v), STATUS_SUCCESS);
    ck_assert_uint_eq(v, 15);
    RtlInitUnicodeString(&t, L"777");
    ck_assert_status(RtlUnicodeStringToInteger(&t, 8, &v), STATUS_SUCCESS);
    ck_assert_uint_eq(v, 511);
    RtlInitUnicodeString(&t, L"");
    ck_assert_status(RtlUnicodeStringToInteger(&t, 10, &v), STATUS_SUCCESS);
    ck_assert_uint_eq(v, 0);
    ck_assert_status(RtlUnicodeStringToInteger(&t, 3, &v), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlCharToInteger("+12", 10, &v), STATUS_SUCCESS);
    ck_assert_uint_eq(v, 12);
}
END_TEST

START_TEST(guids_to_and_from_text)
{
    static const GUID g = { 0xcdc35b6e, 0x0be4, 0x4936, { 0xbf, 0x5f, 0x55, 0x37, 0x38, 0x0a, 0x7c, 0x1a } };
    UNICODE_STRING s;
    ck_assert_status(RtlStringFromGUID(&g, &s), STATUS_SUCCESS);
    ck_assert(wcscmp(s.Buffer, L"{CDC35B6E-0BE4-4936-BF5F-5537380A7C1A}") == 0);
    ck_assert_uint_eq(s.Length, 38 * sizeof(WCHAR));
    GUID back;
    ck_assert_status(RtlGUIDFromString(&s, &back), STATUS_SUCCESS);
    ck_assert(IsEqualGUID(&back, &g));
    RtlFreeUnicodeString(&s);
    UNICODE_STRING lower;
    RtlInitUnicodeString(&lower, L"{cdc35b6e-0be4-4936-bf5f-5537380a7c1a}");
    ck_assert_status(RtlGUIDFromString(&lower, &back), STATUS_SUCCESS);
    ck_assert(IsEqualGUID(&back, &g));
    static const WCHAR *const bad[] = { L"cdc35b6e-0be4-4936-bf5f-5537380a7c1a",
                                        L"{cdc35b6e-0be4-4936-bf5f-5537380a7c1g}",
                                        L"{cdc35b6e+0be4-4936-bf5f-5537380a7c1a}", L"{}" };
    for (size_t i = 0; i < RTL_NUMBER_OF(bad); i++) {
        RtlInitUnicodeString(&lower, bad[i]);
        ck_assert_status(RtlGUIDFromString(&lower, &back), STATUS_INVALID_PARAMETER);
    }
}
END_TEST

START_TEST(compare_memory_counts_matching_bytes)
{
    ck_assert_uint_eq(RtlCompareMemory("abcdef", "abcxef", 6), 3);
    ck_assert_uint_eq(RtlCompareMemory("abc", "abc", 3), 3);
    ck_assert_uint_eq(RtlCompareMemory("abc", "xbc", 0), 0);
    char z[8] = "zzzzzzz";
    RtlZeroMemory(z, 3);
    RtlFillMemory(z + 3, 2, 'q');
    ck_assert(RtlEqualMemory(z, "\0\0\0qqzz", 8));
    ck_assert_uint_eq(RtlUlongByteSwap(0x11223344), 0x44332211);
}
END_TEST

/* ---- ntstrsafe ---- */

START_TEST(strsafe_copy_truncates_with_buffer_overflow)
{
    WCHAR w[6];
    char a[6];
    ck_assert_status(RtlStringCchCopyW(w, 6, L"hello"), STATUS_SUCCESS);
    ck_assert(wcscmp(w, L"hello") == 0);
    ck_assert_status(RtlStringCchCopyW(w, 6, L"hello!"), STATUS_BUFFER_OVERFLOW);
    ck_assert(wcscmp(w, L"hello") == 0); /* truncated, terminated */
    ck_assert_status(RtlStringCbCopyW(w, sizeof(w), L"0123456789"), STATUS_BUFFER_OVERFLOW);
    ck_assert(wcscmp(w, L"01234") == 0);
    ck_assert_status(RtlStringCbCopyA(a, sizeof(a), "abcdefgh"), STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(a, "abcde");
    /* A Cb size is whole WCHARs (4 bytes each here). */
    ck_assert_status(RtlStringCbCopyW(w, 2 * sizeof(WCHAR) + 3, L"xyz"), STATUS_BUFFER_OVERFLOW);
    ck_assert(wcscmp(w, L"x") == 0);
}
END_TEST

START_TEST(strsafe_rejects_bad_sizes_and_nulls)
{
    WCHAR w[4] = L"ab";
    ck_assert_status(RtlStringCchCopyW(w, 0, L"x"), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlStringCchCopyW(w, (size_t)NTSTRSAFE_MAX_CCH + 1, L"x"), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlStringCchCopyW(NULL, 4, L"x"), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlStringCchCopyW(w, 4, NULL), STATUS_INVALID_PARAMETER);
    ck_assert(wcscmp(w, L"ab") == 0); /* an invalid parameter changes nothing */
    ck_assert_status(RtlStringCbCopyW(w, ((size_t)NTSTRSAFE_MAX_CCH + 1) * sizeof(WCHAR), L"x"),
                     STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlStringCchPrintfW(w, 0, L"x"), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlStringCchCopyExW(w, 4, L"x", NULL, NULL, 0x10000), STATUS_INVALID_PARAMETER);
}
END_TEST

START_TEST(strsafe_copy_n_stops_at_n)
{
    char a[8];
    ck_assert_status(RtlStringCchCopyNA(a, 8, "abcdef", 3), STATUS_SUCCESS);
    ck_assert_str_eq(a, "abc");
    ck_assert_status(RtlStringCchCopyNA(a, 8, "ab", 5), STATUS_SUCCESS);
    ck_assert_str_eq(a, "ab");
    ck_assert_status(RtlStringCchCopyNA(a, 3, "abcdef", 5), STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(a, "ab");
    WCHAR w[8];
    ck_assert_status(RtlStringCbCopyNW(w, sizeof(w), L"abcdef", 2 * sizeof(WCHAR)), STATUS_SUCCESS);
    ck_assert(wcscmp(w, L"ab") == 0);
    ck_assert_status(RtlStringCchCopyNA(a, 8, "x", (size_t)NTSTRSAFE_MAX_CCH + 1), STATUS_INVALID_PARAMETER);
}
END_TEST

START_TEST(strsafe_cat_appends_and_needs_a_terminated_destination)
{
    WCHAR w[8] = L"ab";
    ck_assert_status(RtlStringCchCatW(w, 8, L"cd"), STATUS_SUCCESS);
    ck_assert(wcscmp(w, L"abcd") == 0);
    ck_assert_status(RtlStringCchCatW(w, 8, L"efghij"), STATUS_BUFFER_OVERFLOW);
    ck_assert(wcscmp(w, L"abcdefg") == 0);
    ck_assert_status(RtlStringCchCatW(w, 8, L"x"), STATUS_BUFFER_OVERFLOW);
    char full[4] = { 'a', 'b', 'c', 'd' };
    ck_assert_status(RtlStringCchCatA(full, 4, "x"), STATUS_INVALID_PARAMETER);
    char a[6] = "ab";
    ck_assert_status(RtlStringCchCatNA(a, 6, "cdef", 2), STATUS_SUCCESS);
    ck_assert_str_eq(a, "abcd");
    ck_assert_status(RtlStringCbCatA(a, sizeof(a), "ef"), STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(a, "abcde");
}
END_TEST

START_TEST(strsafe_ex_reports_end_and_remaining)
{
    WCHAR w[8];
    PWSTR end = NULL;
    size_t rem = 0;
    ck_assert_status(RtlStringCchCopyExW(w, 8, L"abc", &end, &rem, 0), STATUS_SUCCESS);
    ck_assert_ptr_eq(end, w + 3);
    ck_assert_uint_eq(rem, 5);
    ck_assert_status(RtlStringCchCatExW(w, 8, L"de", &end, &rem, 0), STATUS_SUCCESS);
    ck_assert_ptr_eq(end, w + 5);
    ck_assert_uint_eq(rem, 3);
    ck_assert_status(RtlStringCbCopyExW(w, sizeof(w) + 1, L"xy", &end, &rem, 0), STATUS_SUCCESS);
    ck_assert_uint_eq(rem, 6 * sizeof(WCHAR) + 1); /* bytes, the odd one too */
    ck_assert_status(RtlStringCchCopyExW(w, 4, L"toolong", &end, &rem, 0), STATUS_BUFFER_OVERFLOW);
    ck_assert_ptr_eq(end, w + 3);
    ck_assert_uint_eq(rem, 1);
}
END_TEST

START_TEST(strsafe_ex_flags_fill_and_null_on_failure)
{
    char a[8];
    ck_assert_status(RtlStringCchCopyExA(a, 8, "ab", NULL, NULL, STRSAFE_FILL_BYTE('*')), STATUS_SUCCESS);
    ck_assert(memcmp(a, "ab\0*****", 8) == 0);
    ck_assert_status(RtlStringCchCopyExA(a, 8, "0123456789", NULL, NULL, STRSAFE_FAILURE_BYTE('!')),
                     STATUS_BUFFER_OVERFLOW);
    ck_assert(memcmp(a, "!!!!!!!\0", 8) == 0);
    ck_assert_status(RtlStringCchCopyExA(a, 8, "0123456789", NULL, NULL, STRSAFE_NULL_ON_FAILURE),
                     STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(a, "");
    strcpy(a, "keep");
    ck_assert_status(RtlStringCchCopyExA(a, 8, "0123456789", NULL, NULL, STRSAFE_NO_TRUNCATION),
                     STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(a, ""); /* a copy with no truncation copies nothing */
    strcpy(a, "keep");
    ck_assert_status(RtlStringCchCatExA(a, 8, "0123", NULL, NULL, STRSAFE_NO_TRUNCATION), STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(a, "keep"); /* ... and a cat appends nothing */
    PSTR end;
    size_t rem;
    ck_assert_status(RtlStringCchCopyExA(NULL, 0, NULL, &end, &rem, STRSAFE_IGNORE_NULLS), STATUS_SUCCESS);
    ck_assert_status(RtlStringCchCopyExA(NULL, 0, "x", &end, &rem, STRSAFE_IGNORE_NULLS), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlStringCchCopyExA(a, 8, NULL, &end, &rem, STRSAFE_IGNORE_NULLS), STATUS_SUCCESS);
    ck_assert_str_eq(a, "");
}
END_TEST

START_TEST(strsafe_printf_formats_and_truncates)
{
    WCHAR w[32];
    char a[8];
    ck_assert_status(RtlStringCchPrintfW(w, 10, L"%s %d + %d = %d.", L"The answer is", 1, 2, 3),
                     STATUS_BUFFER_OVERFLOW);
    ck_assert(wcscmp(w, L"The answe") == 0);
    WCHAR big[40];
    ck_assert_status(RtlStringCchPrintfW(big, 40, L"%s %d + %d = %d.", L"The answer is", 1, 2, 3), STATUS_SUCCESS);
    ck_assert(wcscmp(big, L"The answer is 1 + 2 = 3.") == 0);
    ck_assert_status(RtlStringCbPrintfA(a, sizeof(a), "%06X", 0xBEEFu), STATUS_SUCCESS);
    ck_assert_str_eq(a, "00BEEF");
    ck_assert_status(RtlStringCbPrintfA(a, sizeof(a), "%s", "1234567890"), STATUS_BUFFER_OVERFLOW);
    ck_assert_str_eq(a, "1234567");
    PWSTR end;
    size_t rem;
    ck_assert_status(RtlStringCchPrintfExW(w, 32, &end, &rem, 0, L"%u", 42u), STATUS_SUCCESS);
    ck_assert(end == w + 2 && rem == 30);
    int n;
    ck_assert_status(RtlStringCchPrintfA(a, sizeof(a), "x%n", &n), STATUS_INVALID_PARAMETER);
}
END_TEST

START_TEST(strsafe_length_needs_a_terminator_within_max)
{
    size_t n = 99;
    ck_assert_status(RtlStringCchLengthW(L"abc", 4, &n), STATUS_SUCCESS);
    ck_assert_uint_eq(n, 3);
    ck_assert_status(RtlStringCchLengthW(L"abc", 3, &n), STATUS_INVALID_PARAMETER);
    ck_assert_uint_eq(n, 0);
    ck_assert_status(RtlStringCbLengthW(L"abc", 16, &n), STATUS_SUCCESS);
    ck_assert_uint_eq(n, 3 * sizeof(WCHAR));
    ck_assert_status(RtlStringCbLengthA("abc", 4, &n), STATUS_SUCCESS);
    ck_assert_uint_eq(n, 3);
    ck_assert_status(RtlStringCchLengthA(NULL, 4, &n), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlStringCchLengthA("a", (size_t)NTSTRSAFE_MAX_CCH + 1, &n), STATUS_INVALID_PARAMETER);
}
END_TEST

START_TEST(unicode_string_printf_writes_no_terminator)
{
    WCHAR buf[8];
    wmemset(buf, L'#', 8);
    UNICODE_STRING us = { 0, 6 * sizeof(WCHAR), buf };
    ck_assert_status(RtlUnicodeStringPrintf(&us, L"%ws%d", L"\\Device\\X", 7), STATUS_BUFFER_OVERFLOW);
    ck_assert_uint_eq(us.Length, 6 * sizeof(WCHAR));
    ck_assert(wmemcmp(buf, L"\\Devic", 6) == 0 && buf[6] == L'#');
    ck_assert_status(RtlUnicodeStringPrintf(&us, L"n=%u", 5u), STATUS_SUCCESS);
    ck_assert_uint_eq(us.Length, 3 * sizeof(WCHAR));
    ck_assert(buf[3] == L'v'); /* what was there stays: no NUL */
    UNICODE_STRING bad = { 3, 8, buf };
    ck_assert_status(RtlUnicodeStringPrintf(&bad, L"x"), STATUS_INVALID_PARAMETER);
    UNICODE_STRING none = { 0, 0, NULL };
    ck_assert_status(RtlUnicodeStringPrintf(&none, L"x"), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlUnicodeStringPrintf(&none, L""), STATUS_SUCCESS);
}
END_TEST

START_TEST(unicode_string_copy_and_cat)
{
    WCHAR buf[6];
    UNICODE_STRING d = { 0, sizeof(buf), buf }, s, rem;
    RtlInitUnicodeString(&s, L"abc");
    ck_assert_status(RtlUnicodeStringCopy(&d, &s), STATUS_SUCCESS);
    ck_assert_status(RtlUnicodeStringCatString(&d, L"de"), STATUS_SUCCESS);
    ck_assert_uint_eq(d.Length, 5 * sizeof(WCHAR));
    ck_assert_status(RtlUnicodeStringCatEx(&d, &s, &rem, 0), STATUS_BUFFER_OVERFLOW);
    ck_assert_uint_eq(d.Length, 6 * sizeof(WCHAR));
    ck_assert(wmemcmp(buf, L"abcdea", 6) == 0);
    ck_assert_uint_eq(rem.MaximumLength, 0);
    ck_assert_status(RtlUnicodeStringCopyString(&d, L"xy"), STATUS_SUCCESS);
    ck_assert_status(RtlUnicodeStringCatStringEx(&d, L"1234567", &rem, STRSAFE_NO_TRUNCATION), STATUS_BUFFER_OVERFLOW);
    ck_assert_uint_eq(d.Length, 2 * sizeof(WCHAR));
    ck_assert_status(RtlUnicodeStringCopyStringEx(&d, L"1234567", NULL, STRSAFE_ZERO_LENGTH_ON_FAILURE),
                     STATUS_BUFFER_OVERFLOW);
    ck_assert_uint_eq(d.Length, 0);
    ck_assert_status(RtlUnicodeStringCopyEx(&d, &s, &rem, STRSAFE_FILL_BEHIND | 0x41), STATUS_SUCCESS);
    ck_assert_uint_eq(rem.MaximumLength, 3 * sizeof(WCHAR));
    ck_assert_ptr_eq(rem.Buffer, buf + 3);
    ck_assert_uint_eq(((unsigned char *)buf)[3 * sizeof(WCHAR)], 0x41);
    ck_assert_status(RtlUnicodeStringCchCopyStringN(&d, L"abcdef", 2), STATUS_SUCCESS);
    ck_assert_uint_eq(d.Length, 2 * sizeof(WCHAR));
    ck_assert_status(RtlUnicodeStringValidate(&d), STATUS_SUCCESS);
    UNICODE_STRING odd = { 1, sizeof(buf), buf };
    ck_assert_status(RtlUnicodeStringValidate(&odd), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlUnicodeStringCopy(&odd, &s), STATUS_INVALID_PARAMETER);
    ck_assert_status(RtlUnicodeStringInit(&d, L"init"), STATUS_SUCCESS);
    ck_assert(d.Length == 4 * sizeof(WCHAR) && d.MaximumLength == 5 * sizeof(WCHAR));
    WCHAR copy[4];
    ck_assert_status(RtlStringCchCopyUnicodeString(copy, 4, &d), STATUS_BUFFER_OVERFLOW);
    ck_assert(wcscmp(copy, L"ini") == 0);
}
END_TEST

/* ---- the Windows printf conversions ---- */

static const char *fmt_a(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    NTSTATUS st = RtlStringCchVPrintfA(buf, n, fmt, ap);
    va_end(ap);
    ck_assert_status(st, STATUS_SUCCESS);
    return buf;
}

START_TEST(printf_knows_windows_conversions)
{
    char b[128];
    UNICODE_STRING us;
    ANSI_STRING as;
    RtlInitUnicodeString(&us, L"\\Device\\caf\x00e9");
    RtlInitAnsiString(&as, "ansi");
    ck_assert_str_eq(fmt_a(b, 128, "[%wZ] [%Z]", &us, &as), "[\\Device\\caf\xc3\xa9] [ansi]");
    ck_assert_str_eq(fmt_a(b, 128, "%ws|%S|%ls|%hs|%s", L"w1", L"w2", L"w3", "n1", "n2"), "w1|w2|w3|n1|n2");
    ck_assert_str_eq(fmt_a(b, 128, "%C%c%wc", (int)L'\x00e9', 'x', (int)L'y'), "\xc3\xa9xy");
    ck_assert_str_eq(fmt_a(b, 128, "%I64d %I64u %I64X", (LONGLONG)-5000000000LL, (ULONGLONG)5000000000ULL,
                            (ULONGLONG)0xABCDEF0123ULL),
                     "-5000000000 5000000000 ABCDEF0123");
    ck_assert_str_eq(fmt_a(b, 128, "%Iu %Id %zu", (SIZE_T)123, (SSIZE_T)-4, (size_t)9), "123 -4 9");
    /* %ld and %lx are 32 bits, as a Windows LONG. */
    ck_assert_str_eq(fmt_a(b, 128, "%ld %lx %lu", (LONG)-7, (ULONG)0xFFFFFFFFu, (ULONG)4000000000u),
                     "-7 ffffffff 4000000000");
    ck_assert_str_eq(fmt_a(b, 128, "%p", (void *)0x1234), "0000000000001234");
    ck_assert_str_eq(fmt_a(b, 128, "%#x %#o %x %X", 255u, 8u, 0u, 0xabu), "0xff 010 0 AB");
    ck_assert_str_eq(fmt_a(b, 128, "[%5d|%-5d|%05d|%+d|% d]", 42, 42, -42, 7, 7), "[   42|42   |-0042|+7| 7]");
    ck_assert_str_eq(fmt_a(b, 128, "[%.3s|%6.2s|%-4s]", "abcdef", "xyz", "a"), "[abc|    xy|a   ]");
    ck_assert_str_eq(fmt_a(b, 128, "[%*d|%-*d|%.*d]", 4, 1, 3, 2, 3, 5), "[   1|2  |005]");
    ck_assert_str_eq(fmt_a(b, 128, "%hd %hhu %hx", (int)70000, 300, 0x12345), "4464 44 2345");
    ck_assert_str_eq(fmt_a(b, 128, "%s %ws %wZ %Z", (char *)NULL, (WCHAR *)NULL, (PUNICODE_STRING)NULL,
                            (PANSI_STRING)NULL),
                     "(null) (null) (null) (null)");
    ck_assert_str_eq(fmt_a(b, 128, "%.2f %e %%", 3.14159, 1000.0), "3.14 1.000000e+03 %");
    ck_assert_str_eq(fmt_a(b, 128, "%.0d|%5.3x|%q", 0, 0xa), "|  00a|%q");
    ck_assert_str_eq(fmt_a(b, 128, "%d", INT32_MIN), "-2147483648");
}
END_TEST

START_TEST(wide_printf_swaps_s_and_S)
{
    WCHAR w[64];
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, L"dev");
    ck_assert_status(RtlStringCchPrintfW(w, 64, L"%s|%S|%hs|%ws|%wZ|%c|%C", L"wide", "narrow \xc3\xa9", "h", L"w",
                                         &us, (int)L'\x4e2d', 'n'),
                     STATUS_SUCCESS);
    ck_assert(wcscmp(w, L"wide|narrow \x00e9|h|w|dev|\x4e2d|n") == 0);
}
END_TEST

/* ---- ntintsafe ---- */

START_TEST(intsafe_detects_overflow_and_sets_the_error_value)
{
    ULONG ul;
    SIZE_T sz;
    LONG l;
    USHORT us;
    ck_assert_status(RtlULongAdd(0xFFFFFFF0u, 0xF, &ul), STATUS_SUCCESS);
    ck_assert_uint_eq(ul, 0xFFFFFFFFu);
    ck_assert_status(RtlULongAdd(0xFFFFFFF0u, 0x10, &ul), STATUS_INTEGER_OVERFLOW);
    ck_assert_uint_eq(ul, ULONG_ERROR);
    ck_assert_status(RtlULongSub(1, 2, &ul), STATUS_INTEGER_OVERFLOW);
    ck_assert_status(RtlSizeTMult((SIZE_T)1 << 40, (SIZE_T)1 << 30, &sz), STATUS_INTEGER_OVERFLOW);
    ck_assert_uint_eq(sz, SIZET_ERROR);
    ck_assert_status(RtlSizeTMult(1000, 1000, &sz), STATUS_SUCCESS);
    ck_assert_uint_eq(sz, 1000000);
    ck_assert_status(RtlLongMult(-65536, 32768, &l), STATUS_SUCCESS);
    ck_assert_status(RtlLongMult(65536, 32768, &l), STATUS_INTEGER_OVERFLOW);
    ck_assert_status(RtlULongLongToULong(0x100000000ULL, &ul), STATUS_INTEGER_OVERFLOW);
    ck_assert_status(RtlLongToULong(-1, &ul), STATUS_INTEGER_OVERFLOW);
    ck_assert_uint_eq(ul, ULONG_ERROR);
    ck_assert_status(RtlULongToUShort(65535, &us), STATUS_SUCCESS);
    ck_assert_status(RtlULongToUShort(65536, &us), STATUS_INTEGER_OVERFLOW);
    ck_assert_status(RtlSizeTToULong(5, &ul), STATUS_SUCCESS);
    ck_assert_uint_eq(ul, 5);
}
END_TEST

/* ---- interlocked operations and lists ---- */

START_TEST(interlocked_operations_return_what_windows_returns)
{
    LONG v = 5;
    ck_assert_int_eq(InterlockedIncrement(&v), 6);
    ck_assert_int_eq(InterlockedDecrement(&v), 5);
    ck_assert_int_eq(InterlockedExchange(&v, 9), 5);
    ck_assert_int_eq(InterlockedExchangeAdd(&v, 1), 9);
    ck_assert_int_eq(InterlockedCompareExchange(&v, 0, 99), 10);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(InterlockedCompareExchange(&v, 0, 10), 10);
    ck_assert_int_eq(v, 0);
    ck_assert(!InterlockedBitTestAndSet(&v, 3));
    ck_assert(InterlockedBitTestAndSet(&v, 3));
    ck_assert(InterlockedBitTestAndReset(&v, 3));
    ck_assert_int_eq(v, 0);
    LONG64 q = 1;
    ck_assert_int_eq(InterlockedAdd64(&q, 1LL << 40), (1LL << 40) + 1);
    PVOID p = NULL;
    ck_assert_ptr_null(InterlockedCompareExchangePointer(&p, &v, NULL));
    ck_assert_ptr_eq(p, &v);
}
END_TEST

START_TEST(list_operations_and_corruption)
{
    LIST_ENTRY head, a, b, c;
    InitializeListHead(&head);
    ck_assert(IsListEmpty(&head));
    InsertTailList(&head, &a);
    InsertTailList(&head, &b);
    InsertHeadList(&head, &c);
    ck_assert_ptr_eq(head.Flink, &c);
    ck_assert_ptr_eq(RemoveTailList(&head), &b);
    ck_assert(!RemoveEntryList(&c));
    ck_assert_ptr_eq(RemoveHeadList(&head), &a);
    ck_assert(IsListEmpty(&head));
    InsertTailList(&head, &a);
    a.Blink = &b; /* corrupt */
    RemoveEntryList(&a);
    expect_bugcheck(KERNEL_SECURITY_CHECK_FAILURE, FAST_FAIL_CORRUPT_LIST_ENTRY);
    SINGLE_LIST_ENTRY sh = { NULL }, s1, s2;
    PushEntryList(&sh, &s1);
    PushEntryList(&sh, &s2);
    ck_assert_ptr_eq(PopEntryList(&sh), &s2);
    ck_assert_ptr_eq(PopEntryList(&sh), &s1);
    ck_assert_ptr_null(PopEntryList(&sh));
}
END_TEST

/* ---- debug output ---- */

START_TEST(dbgprint_is_hidden_until_its_level_is_enabled)
{
    ULONG saved = UwdfGetDebugPrintFilter(DPFLTR_DEFAULT_ID);
    tu_stderr_begin();
    DbgPrint("hidden %d\n", 1);
    KdPrint(("hidden too %s\n", "x"));
    DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL, "error shows %ws\n", L"wide");
    DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_INFO_LEVEL, "info does not\n");
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 1u << DPFLTR_INFO_LEVEL);
    DbgPrint("now %wZ shows\n", &(UNICODE_STRING)RTL_CONSTANT_STRING(L"it"));
    KdPrint(("and kd %d\n", 2));
    DbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_MASK | 0x8, "a mask level\n");
    DbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_MASK | 0x4, "a mask level off\n");
    char *out = tu_stderr_end();
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, saved);
    ck_assert_str_eq(out, "error shows wide\nnow it shows\nand kd 2\na mask level\n");
    free(out);
}
END_TEST

START_TEST(dbgprint_filter_state_is_queryable_and_settable)
{
    ck_assert_int_eq(DbgQueryDebugFilterState(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL), TRUE);
    ck_assert_int_eq(DbgQueryDebugFilterState(DPFLTR_IHVDRIVER_ID, DPFLTR_TRACE_LEVEL), FALSE);
    ck_assert_status(DbgSetDebugFilterState(DPFLTR_IHVDRIVER_ID, DPFLTR_TRACE_LEVEL, TRUE), STATUS_SUCCESS);
    ck_assert_int_eq(DbgQueryDebugFilterState(DPFLTR_IHVDRIVER_ID, DPFLTR_TRACE_LEVEL), TRUE);
    ck_assert_uint_eq(UwdfGetDebugPrintFilter(DPFLTR_IHVDRIVER_ID), 1u << DPFLTR_TRACE_LEVEL);
    ck_assert_status(DbgSetDebugFilterState(DPFLTR_IHVDRIVER_ID, DPFLTR_TRACE_LEVEL, FALSE), STATUS_SUCCESS);
    ck_assert_int_eq(DbgQueryDebugFilterState(DPFLTR_IHVDRIVER_ID, DPFLTR_TRACE_LEVEL), FALSE);
    ck_assert_status(DbgSetDebugFilterState(5000, 0, TRUE), STATUS_INVALID_PARAMETER_1);
    ck_assert_uint_eq(UwdfGetDebugPrintFilter(UWDF_DPFLTR_ALL_COMPONENTS), 1u << DPFLTR_ERROR_LEVEL);
}
END_TEST

START_TEST(dbgprint_stops_at_512_bytes)
{
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tu_stderr_begin();
    DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL, "%s", big);
    char *out = tu_stderr_end();
    ck_assert_uint_eq(strlen(out), 512);
    free(out);
}
END_TEST

/* UWDF_DEBUG_PRINT is read once per process: a process of its own. */
START_TEST(debug_print_environment_variable_sets_the_mask)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ck_assert_int_gt(len, 0);
    exe[len] = '\0';
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 3, sizeof(*envp));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CK_RUN_", 7) && strncmp(environ[i], "UWDF_DEBUG_PRINT=", 17))
            envp[k++] = environ[i];
    envp[k++] = "UWDF_DEBUG_PRINT=0xF";
    envp[k++] = "UWDF_TEST_CHILD=debug-print";
    envp[k] = NULL;
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    char *argv[] = { exe, NULL };
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, exe, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(pipefd[1]);
    char out[256] = { 0 };
    size_t got = 0;
    ssize_t r;
    while ((r = read(pipefd[0], out + got, sizeof(out) - 1 - got)) > 0)
        got += (size_t)r;
    close(pipefd[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_eq(out, "info from the child\n");
}
END_TEST

static int child_debug_print(void)
{
    DbgPrint("info from the child\n");
    DbgPrintEx(DPFLTR_DEFAULT_ID, 4, "level 4 is above the mask\n");
    return 0;
}

/* ---- asserts, breakpoints, bug checks ---- */

START_TEST(assert_failure_is_a_breakpoint_nobody_handles)
{
    int x = 1;
    tu_stderr_begin();
    ck_assert(ASSERT(x == 1));
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    ck_assert(!ASSERT(x == 2));
    char *out = tu_stderr_end();
    ck_assert_msg(strstr(out, "Assertion failed: x == 2") != NULL, "log: %s", out);
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_BREAKPOINT);
    tu_stderr_begin();
    ck_assert(!ASSERTMSG("with a message", x == 3));
    free(tu_stderr_end());
    ck_assert_msg(strstr(tu_last_bugcheck.reason, "with a message") != NULL, "%s", tu_last_bugcheck.reason);
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_BREAKPOINT);
    free(out);
}
END_TEST

START_TEST(nt_assert_raises_assertion_failure)
{
    int y = 0;
    tu_stderr_begin();
    NT_ASSERT(y == 0);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    NT_ASSERT(y == 1);
    free(tu_stderr_end());
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_ASSERTION_FAILURE);
    ck_assert(NT_VERIFY(y == 0));
}
END_TEST

START_TEST(breakpoints_without_a_debugger_bugcheck)
{
    DbgBreakPoint();
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_BREAKPOINT);
    ck_assert(KD_DEBUGGER_NOT_PRESENT);
    tu_stderr_begin();
    WdfVerifierDbgBreakPoint(); /* verifier off: a log line only */
    free(tu_stderr_end());
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    UwdfSetVerifier(TRUE);
    WdfVerifierDbgBreakPoint();
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_BREAKPOINT);
}
END_TEST

START_TEST(kebugcheckex_reaches_the_handler)
{
    KeBugCheckEx(MANUALLY_INITIATED_CRASH, 1, 2, 3, 4);
    ck_assert_uint_eq(tu_last_bugcheck.p[1], 2);
    ck_assert_uint_eq(tu_last_bugcheck.p[3], 4);
    expect_bugcheck(MANUALLY_INITIATED_CRASH, 1);
    WdfVerifierKeBugCheck(0x1234, 5, 0, 0, 0);
    expect_bugcheck(0x1234, 5);
}
END_TEST

START_TEST(paged_code_is_checked_above_apc_level)
{
    PAGED_CODE();
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    PAGED_CODE();
    KeLowerIrql(old);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    tu_stderr_begin();
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    PAGED_CODE();
    KeLowerIrql(old);
    char *out = tu_stderr_end();
    ck_assert_msg(strstr(out, "PAGED_CODE") != NULL, "log: %s", out);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    UwdfSetVerifier(TRUE);
    tu_stderr_begin();
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    PAGED_CODE();
    KeLowerIrql(old);
    free(tu_stderr_end());
    tu_expect_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, DISPATCH_LEVEL);
    free(out);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tu_tcase(s, "pool", 30);
    tcase_add_test(tc, pool2_zeroes_unless_uninitialized);
    tcase_add_test(tc, pool2_refuses_bad_tag_and_flags);
    tcase_add_test(tc, pool2_raise_on_failure_is_an_unhandled_exception);
    tcase_add_test(tc, pool_allocations_fail_under_fault_injection);
    tcase_add_test(tc, pool_blocks_are_aligned);
    tcase_add_test(tc, pool_zero_size_is_a_verifier_violation);
    tcase_add_test(tc, pool_free_with_wrong_tag_is_bad_pool_caller);
    tcase_add_test(tc, pool_free_of_foreign_pointer_is_bad_pool_caller);
    tcase_add_test(tc, pool_paged_above_apc_level_fails);
    tcase_add_test(tc, pool_outstanding_count_returns_to_where_it_was);
    tc = tu_tcase(s, "irql-and-locks", 120);
    tcase_add_test(tc, irql_raise_and_lower);
    tcase_add_test(tc, spin_lock_raises_to_dispatch_and_restores);
    tcase_add_test(tc, spin_lock_recursion_and_foreign_release_bugcheck);
    tcase_add_loop_test(tc, locks_exclude_under_contention, 0, 5);
    tcase_add_test(tc, ex_spin_lock_shares_between_readers);
    tcase_add_test(tc, critical_regions_nest);
    tc = tu_tcase(s, "dispatcher", 60);
    tcase_add_test(tc, event_set_and_reset_return_the_previous_state);
    tcase_add_test(tc, synchronization_event_releases_one_waiter_per_set);
    tcase_add_test(tc, notification_event_releases_every_waiter);
    tcase_add_test(tc, pulse_releases_waiters_and_leaves_the_event_reset);
    tcase_add_test(tc, wait_timeouts_relative_absolute_and_poll);
    tcase_add_test(tc, wait_above_apc_level_only_polls);
    tcase_add_test(tc, wait_any_returns_the_index_of_the_signalled_object);
    tcase_add_test(tc, wait_all_takes_every_object_at_once);
    tcase_add_test(tc, wait_for_many_objects_needs_wait_blocks);
    tcase_add_test(tc, semaphore_counts_up_to_its_limit);
    tcase_add_test(tc, mutex_is_recursive_for_its_owner);
    tcase_add_test(tc, guarded_and_fast_mutex_try_acquire);
    tcase_add_test(tc, delay_execution_sleeps_the_interval);
    tc = tu_tcase(s, "time", 30);
    tcase_add_test(tc, interrupt_tick_and_performance_time_agree);
    tcase_add_test(tc, tsc_clock_follows_the_monotonic_clock);
    tcase_add_test(tc, time_fields_round_trip);
    tcase_add_test(tc, local_time_round_trips);
    tc = tu_tcase(s, "rtl", 30);
    tcase_add_test(tc, init_strings_count_bytes);
    tcase_add_test(tc, copy_unicode_string_truncates_and_terminates);
    tcase_add_test(tc, append_fails_whole_when_it_does_not_fit);
    tcase_add_test(tc, compare_and_equal_fold_case);
    tcase_add_test(tc, upcase_string_allocates_and_frees);
    tcase_add_test(tc, unicode_and_ansi_convert_as_utf8);
    tcase_add_test(tc, conversions_fail_cleanly_without_memory);
    tcase_add_test(tc, utf8_n_conversions_count_and_report);
    tcase_add_test(tc, integers_to_and_from_text);
    tcase_add_test(tc, guids_to_and_from_text);
    tcase_add_test(tc, compare_memory_counts_matching_bytes);
    tc = tu_tcase(s, "strsafe", 30);
    tcase_add_test(tc, strsafe_copy_truncates_with_buffer_overflow);
    tcase_add_test(tc, strsafe_rejects_bad_sizes_and_nulls);
    tcase_add_test(tc, strsafe_copy_n_stops_at_n);
    tcase_add_test(tc, strsafe_cat_appends_and_needs_a_terminated_destination);
    tcase_add_test(tc, strsafe_ex_reports_end_and_remaining);
    tcase_add_test(tc, strsafe_ex_flags_fill_and_null_on_failure);
    tcase_add_test(tc, strsafe_printf_formats_and_truncates);
    tcase_add_test(tc, strsafe_length_needs_a_terminator_within_max);
    tcase_add_test(tc, unicode_string_printf_writes_no_terminator);
    tcase_add_test(tc, unicode_string_copy_and_cat);
    tcase_add_test(tc, printf_knows_windows_conversions);
    tcase_add_test(tc, wide_printf_swaps_s_and_S);
    tcase_add_test(tc, intsafe_detects_overflow_and_sets_the_error_value);
    tcase_add_test(tc, interlocked_operations_return_what_windows_returns);
    tcase_add_test(tc, list_operations_and_corruption);
    tc = tu_tcase(s, "debug", 30);
    tcase_add_test(tc, dbgprint_is_hidden_until_its_level_is_enabled);
    tcase_add_test(tc, dbgprint_filter_state_is_queryable_and_settable);
    tcase_add_test(tc, dbgprint_stops_at_512_bytes);
    tcase_add_test(tc, debug_print_environment_variable_sets_the_mask);
    tcase_add_test(tc, assert_failure_is_a_breakpoint_nobody_handles);
    tcase_add_test(tc, nt_assert_raises_assertion_failure);
    tcase_add_test(tc, breakpoints_without_a_debugger_bugcheck);
    tcase_add_test(tc, kebugcheckex_reaches_the_handler);
    tcase_add_test(tc, paged_code_is_checked_above_apc_level);
    return s;
}

int main(void)
{
    const char *child = getenv("UWDF_TEST_CHILD");
    if (child && strcmp(child, "debug-print") == 0)
        return child_debug_print();
    return tu_main(runtime_suite(), "runtime");
}
