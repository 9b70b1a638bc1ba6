/* IRQL changes, critical regions and the Ke/Ex spin locks. The IRQL is the
 * calling thread's emulated one (uwdf_tls_irql). A spin lock word holds its
 * owner's thread token, so recursion and foreign releases are caught; a
 * waiter spins briefly, then yields the CPU (a user-space thread holding
 * the lock can be preempted, which a kernel one at DISPATCH_LEVEL cannot). */
#include "ntrt.h"

#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPIN_BEFORE_YIELD 128
#define EX_SPIN_WRITER 0x80000000u

/* One per thread, for every file's uwdf_thread_token (a static in the
 * inline function would be one per file). */
__thread char uwdf_thread_token_byte;

static __thread int tls_critical_regions;
static __thread int tls_guarded_regions;

/* ---- IRQL ---- */

KIRQL KfRaiseIrql(KIRQL NewIrql)
{
    KIRQL old = uwdf_tls_irql;
    if (NewIrql < old) {
        char reason[96];
        snprintf(reason, sizeof(reason), "KeRaiseIrql to %u from the higher IRQL %u", NewIrql, old);
        uwdf_bugcheck_report(IRQL_NOT_GREATER_OR_EQUAL, old, NewIrql, 0, 0, reason);
        return old;
    }
    uwdf_tls_irql = NewIrql;
    return old;
}

KIRQL KeRaiseIrqlToDpcLevel(void)
{
    return KfRaiseIrql(DISPATCH_LEVEL);
}

KIRQL KeRaiseIrqlToSynchLevel(void)
{
    return KfRaiseIrql(SYNCH_LEVEL);
}

VOID KeLowerIrql(KIRQL NewIrql)
{
    KIRQL cur = uwdf_tls_irql;
    if (NewIrql > cur) {
        char reason[96];
        snprintf(reason, sizeof(reason), "KeLowerIrql to %u from the lower IRQL %u", NewIrql, cur);
        uwdf_bugcheck_report(IRQL_NOT_LESS_OR_EQUAL, cur, NewIrql, 0, 0, reason);
        return;
    }
    uwdf_tls_irql = NewIrql;
}

/* ---- critical and guarded regions ---- */

VOID KeEnterCriticalRegion(void)
{
    tls_critical_regions++;
}

VOID KeLeaveCriticalRegion(void)
{
    if (tls_critical_regions == 0) {
        uwdf_bugcheck_report(APC_INDEX_MISMATCH, 0, 0, 0, 0,
                             "KeLeaveCriticalRegion without KeEnterCriticalRegion");
        return;
    }
    tls_critical_regions--;
}

VOID KeEnterGuardedRegion(void)
{
    tls_guarded_regions++;
}

VOID KeLeaveGuardedRegion(void)
{
    if (tls_guarded_regions == 0) {
        uwdf_bugcheck_report(APC_INDEX_MISMATCH, 0, 0, 0, 0,
                             "KeLeaveGuardedRegion without KeEnterGuardedRegion");
        return;
    }
    tls_guarded_regions--;
}

BOOLEAN KeAreApcsDisabled(void)
{
    return tls_critical_regions > 0 || tls_guarded_regions > 0 || uwdf_tls_irql >= APC_LEVEL;
}

BOOLEAN KeAreAllApcsDisabled(void)
{
    return tls_guarded_regions > 0 || uwdf_tls_irql >= APC_LEVEL;
}

/* ---- KSPIN_LOCK ---- */

static void spin_pause(unsigned *spins)
{
    if (++*spins < SPIN_BEFORE_YIELD)
        YieldProcessor();
    else
        sched_yield();
}

static bool spin_try(PKSPIN_LOCK lock)
{
    ULONG_PTR expected = 0;
    return __atomic_compare_exchange_n(lock, &expected, uwdf_thread_token(), false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

/* false: the caller owns it already (reported). */
static bool spin_acquire(PKSPIN_LOCK lock, const char *ddi)
{
    if (__atomic_load_n(lock, __ATOMIC_RELAXED) == uwdf_thread_token()) {
        char reason[96];
        snprintf(reason, sizeof(reason), "%s: the thread already holds spin lock %p", ddi, (void *)lock);
        uwdf_bugcheck_report(SPIN_LOCK_ALREADY_OWNED, (ULONG_PTR)lock, 0, 0, 0, reason);
        return false;
    }
    unsigned spins = 0;
    while (!spin_try(lock))
        spin_pause(&spins);
    return true;
}

static bool spin_release(PKSPIN_LOCK lock, const char *ddi)
{
    ULONG_PTR expected = uwdf_thread_token();
    if (!__atomic_compare_exchange_n(lock, &expected, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
        char reason[96];
        snprintf(reason, sizeof(reason), "%s: spin lock %p is not held by this thread", ddi, (void *)lock);
        uwdf_bugcheck_report(SPIN_LOCK_NOT_OWNED, (ULONG_PTR)lock, 0, 0, 0, reason);
        return false;
    }
    return true;
}

VOID KeInitializeSpinLock(PKSPIN_LOCK SpinLock)
{
    __atomic_store_n(SpinLock, 0, __ATOMIC_RELAXED);
}

KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    if (!spin_acquire(SpinLock, "KeAcquireSpinLock"))
        uwdf_tls_irql = old;
    return old;
}

VOID KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    if (spin_release(SpinLock, "KeReleaseSpinLock"))
        KeLowerIrql(NewIrql);
}

VOID KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock)
{
    spin_acquire(SpinLock, "KeAcquireSpinLockAtDpcLevel");
}

VOID KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock)
{
    spin_release(SpinLock, "KeReleaseSpinLockFromDpcLevel");
}

BOOLEAN KeTryToAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock)
{
    return spin_try(SpinLock);
}

BOOLEAN KeTestSpinLock(PKSPIN_LOCK SpinLock)
{
    /* TRUE: it looks free (worth trying to acquire). */
    return __atomic_load_n(SpinLock, __ATOMIC_RELAXED) == 0;
}

VOID KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle)
{
    LockHandle->OldIrql = KfRaiseIrql(DISPATCH_LEVEL);
    LockHandle->LockQueue.Next = NULL;
    LockHandle->LockQueue.Lock = SpinLock;
    if (!spin_acquire(SpinLock, "KeAcquireInStackQueuedSpinLock"))
        uwdf_tls_irql = LockHandle->OldIrql;
}

VOID KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle)
{
    if (spin_release(LockHandle->LockQueue.Lock, "KeReleaseInStackQueuedSpinLock"))
        KeLowerIrql(LockHandle->OldIrql);
}

VOID KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle)
{
    LockHandle->LockQueue.Next = NULL;
    LockHandle->LockQueue.Lock = SpinLock;
    spin_acquire(SpinLock, "KeAcquireInStackQueuedSpinLockAtDpcLevel");
}

VOID KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle)
{
    spin_release(LockHandle->LockQueue.Lock, "KeReleaseInStackQueuedSpinLockFromDpcLevel");
}

/* ---- EX_SPIN_LOCK: the writer bit, or the number of readers ---- */

static void ex_acquire_exclusive(PEX_SPIN_LOCK lock)
{
    unsigned spins = 0;
    for (;;) {
        LONG expected = 0;
        if (__atomic_compare_exchange_n(lock, &expected, (LONG)EX_SPIN_WRITER, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        spin_pause(&spins);
    }
}

static void ex_acquire_shared(PEX_SPIN_LOCK lock)
{
    unsigned spins = 0;
    for (;;) {
        LONG v = __atomic_load_n(lock, __ATOMIC_RELAXED);
        if (!((ULONG)v & EX_SPIN_WRITER) &&
            __atomic_compare_exchange_n(lock, &v, v + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
        spin_pause(&spins);
    }
}

static void ex_release_exclusive(PEX_SPIN_LOCK lock, const char *ddi)
{
    LONG expected = (LONG)EX_SPIN_WRITER;
    if (!__atomic_compare_exchange_n(lock, &expected, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
        char reason[96];
        snprintf(reason, sizeof(reason), "%s: spin lock %p is not held exclusively", ddi, (void *)lock);
        uwdf_bugcheck_report(SPIN_LOCK_NOT_OWNED, (ULONG_PTR)lock, 0, 0, 0, reason);
    }
}

static void ex_release_shared(PEX_SPIN_LOCK lock, const char *ddi)
{
    LONG v = __atomic_load_n(lock, __ATOMIC_RELAXED);
    do {
        if (v <= 0) { /* no reader (or a writer): not held shared */
            char reason[96];
            snprintf(reason, sizeof(reason), "%s: spin lock %p is not held shared", ddi, (void *)lock);
            uwdf_bugcheck_report(SPIN_LOCK_NOT_OWNED, (ULONG_PTR)lock, 0, 0, 0, reason);
            return;
        }
    } while (!__atomic_compare_exchange_n(lock, &v, v - 1, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

KIRQL ExAcquireSpinLockExclusive(PEX_SPIN_LOCK SpinLock)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    ex_acquire_exclusive(SpinLock);
    return old;
}

VOID ExReleaseSpinLockExclusive(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql)
{
    ex_release_exclusive(SpinLock, "ExReleaseSpinLockExclusive");
    KeLowerIrql(OldIrql);
}

KIRQL ExAcquireSpinLockShared(PEX_SPIN_LOCK SpinLock)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    ex_acquire_shared(SpinLock);
    return old;
}

VOID ExReleaseSpinLockShared(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql)
{
    ex_release_shared(SpinLock, "ExReleaseSpinLockShared");
    KeLowerIrql(OldIrql);
}

VOID ExAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock)
{
    ex_acquire_exclusive(SpinLock);
}

VOID ExReleaseSpinLockExclusiveFromDpcLevel(PEX_SPIN_LOCK SpinLock)
{
    ex_release_exclusive(SpinLock, "ExReleaseSpinLockExclusiveFromDpcLevel");
}

VOID ExAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock)
{
    ex_acquire_shared(SpinLock);
}

VOID ExReleaseSpinLockSharedFromDpcLevel(PEX_SPIN_LOCK SpinLock)
{
    ex_release_shared(SpinLock, "ExReleaseSpinLockSharedFromDpcLevel");
}

LOGICAL ExTryConvertSharedSpinLockExclusive(PEX_SPIN_LOCK SpinLock)
{
    LONG expected = 1;
    return __atomic_compare_exchange_n(SpinLock, &expected, (LONG)EX_SPIN_WRITER, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

/* ---- threads ---- */

HANDLE PsGetCurrentThreadId(void)
{
    return (HANDLE)(uintptr_t)syscall(SYS_gettid);
}

HANDLE PsGetCurrentProcessId(void)
{
    return (HANDLE)(uintptr_t)getpid();
}

KPROCESSOR_MODE ExGetPreviousMode(void)
{
    return KernelMode;
}
