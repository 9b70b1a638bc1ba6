/* Locks (wdfsync.h): an object's synchronization lock, wait locks and spin
 * locks. Wait and spin locks default to the driver as parent. */
#ifndef UWDF_WDFSYNC_H
#define UWDF_WDFSYNC_H

#include "wdfobject.h"

UWDF_BEGIN_DECLS

/* The lock of a device's or queue's synchronization scope (the one its
 * callbacks run under when the scope is Device or Queue; a queue with scope
 * None still has its own). At DISPATCH_LEVEL or below. For an object whose
 * execution level is Passive it is a mutex and the IRQL is unchanged; else
 * the IRQL is raised to DISPATCH_LEVEL until WdfObjectReleaseLock. The lock
 * may be taken again by the thread that holds it (queue callbacks already
 * run under it). Any other object type is bug check WDF_VIOLATION /
 * WDF_INVALID_LOCK_OPERATION. */
VOID WdfObjectAcquireLock(WDFOBJECT Object);
VOID WdfObjectReleaseLock(WDFOBJECT Object);

/* At DISPATCH_LEVEL or below. Attributes: a parent is optional (default
 * the driver); ExecutionLevel must be InheritFromParent
 * (STATUS_WDF_EXECUTION_LEVEL_INVALID), SynchronizationScope Inherit or
 * None (STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID). */
NTSTATUS WdfWaitLockCreate(PWDF_OBJECT_ATTRIBUTES LockAttributes, WDFWAITLOCK *Lock);
/* Timeout (100 ns): NULL waits forever, negative is relative, positive
 * absolute system time, 0 tries once. STATUS_SUCCESS, or STATUS_TIMEOUT (a
 * success code: test for STATUS_SUCCESS, not NT_SUCCESS). PASSIVE_LEVEL
 * unless Timeout is 0; above it, STATUS_INVALID_DEVICE_REQUEST. The IRQL
 * does not change. Acquiring a wait lock the thread already holds is bug
 * check WDF_VIOLATION / WDF_RECURSIVE_LOCK (Windows deadlocks). */
NTSTATUS WdfWaitLockAcquire(WDFWAITLOCK Lock, PLONGLONG Timeout);
/* At DISPATCH_LEVEL or below. Releasing a lock nobody holds is bug check
 * WDF_VIOLATION / WDF_INVALID_LOCK_OPERATION. */
VOID WdfWaitLockRelease(WDFWAITLOCK Lock);

NTSTATUS WdfSpinLockCreate(PWDF_OBJECT_ATTRIBUTES SpinLockAttributes, WDFSPINLOCK *SpinLock);
/* At DISPATCH_LEVEL or below; returns at DISPATCH_LEVEL. The thread that
 * holds it acquiring it again is bug check WDF_RECURSIVE_LOCK; releasing it
 * from another thread, or unheld, WDF_INVALID_LOCK_OPERATION. Release
 * restores the IRQL of the acquire. */
VOID WdfSpinLockAcquire(WDFSPINLOCK SpinLock);
VOID WdfSpinLockRelease(WDFSPINLOCK SpinLock);

UWDF_END_DECLS
#endif
