/* I/O request packets, laid out as WDM lays them out: the IRP, then its
 * StackCount stack locations in the same allocation. CurrentLocation starts
 * at StackCount + 1 and CurrentStackLocation one past the last location, so
 * the first IoGetNextIrpStackLocation is the last array element and each
 * IoSetNextIrpStackLocation moves one element down. And their cancellation
 * (IoSetCancelRoutine, IoCancelIrp) for the framework's own cancel routines. */
#include "runtime.h"
#include "iotarget.h"
#include "irp.h"
#include "lists.h"
#include "object.h"
#include "queue.h"
#include "request.h"

#include <sched.h>

static PIO_STACK_LOCATION irp_stack_base(PIRP irp)
{
    return (PIO_STACK_LOCATION)(irp + 1);
}

/* ---- DDIs ---- */

/* A negative StackSize is invalid: 0 here, NULL from IoAllocateIrp. */
USHORT IoSizeOfIrp(CCHAR StackSize)
{
    if (StackSize < 0)
        return 0;
    return (USHORT)(sizeof(IRP) + (size_t)StackSize * sizeof(IO_STACK_LOCATION));
}

PIRP IoAllocateIrp(CCHAR StackSize, BOOLEAN ChargeQuota)
{
    (void)ChargeQuota;
    if (StackSize < 0)
        return NULL;
    USHORT size = IoSizeOfIrp(StackSize);
    PIRP irp = uwdf_alloc(size);
    if (!irp)
        return NULL;
    IoInitializeIrp(irp, size, StackSize);
    return irp;
}

VOID IoInitializeIrp(PIRP Irp, USHORT PacketSize, CCHAR StackSize)
{
    UWDF_REQUIRE_PARAM(Irp, "IoInitializeIrp", );
    if (StackSize < 0)
        StackSize = 0;
    memset(Irp, 0, PacketSize);
    Irp->Type = IO_TYPE_IRP;
    Irp->Size = PacketSize;
    Irp->StackCount = StackSize;
    Irp->CurrentLocation = (CHAR)(StackSize + 1);
    uwdf_list_init(&Irp->ThreadListEntry);
    Irp->Tail.Overlay.CurrentStackLocation = irp_stack_base(Irp) + StackSize;
}

VOID IoReuseIrp(PIRP Irp, NTSTATUS Iostatus)
{
    UWDF_REQUIRE_PARAM(Irp, "IoReuseIrp", );
    /* Everything goes back to the just-allocated state except the stack
     * count (and so the allocation); Cancel, MdlAddress and the stack are
     * cleared. MDLs still attached are the caller's to free first. */
    CCHAR stack = Irp->StackCount;
    IoInitializeIrp(Irp, IoSizeOfIrp(stack), stack);
    Irp->IoStatus.Status = Iostatus;
}

VOID IoFreeIrp(PIRP Irp)
{
    /* As on Windows, MDLs at Irp->MdlAddress are not freed here. */
    uwdf_free(Irp);
}

/* ---- cancellation ----
 * No lock: the IRP's CancelRoutine is the one word arming, clearing and
 * claiming agree on, as IoSetCancelRoutine's interlocked exchange is on
 * Windows. It is NULL (not armed), irp_cancel_marker (armed) or, for the
 * moment a cancel takes the owner's reference, irp_cancel_claiming. An armed
 * IRP keeps in its DriverContext what the framework dispatches on: [2] the
 * kind, [3] the owner, and [1] the queue a packet waits on for a reserved
 * request. Arming writes the routine, then reads Cancel; a cancel writes
 * Cancel, then reads the routine (both sequentially consistent), so one of
 * the two sees the other. A queue's lock may be held around any of these. */

/* Marks an armed IRP; the framework dispatches on the kind it stored. */
static VOID irp_cancel_marker(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    (void)DeviceObject;
    uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, 0, (ULONG_PTR)Irp, 0,
                  "the framework's IRP cancel routine was called directly");
}

/* Marks an IRP whose cancel is taking its owner's reference, or whose
 * arming is writing the dispatch fields. */
static VOID irp_cancel_claiming(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    irp_cancel_marker(DeviceObject, Irp);
}

static inline PDRIVER_CANCEL irp_routine(PIRP irp)
{
    return __atomic_load_n(&irp->CancelRoutine, __ATOMIC_SEQ_CST);
}

/* A cancel is between taking the routine and its owner's reference (a few
 * instructions, unless its thread was preempted there): wait for it. */
static void irp_wait_claim(PIRP irp)
{
    for (unsigned spins = 0; irp_routine(irp) == irp_cancel_claiming; spins++) {
        if (spins >= 64)
            sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        else
            __builtin_ia32_pause();
#endif
    }
}

bool uwdf_irp_set_cancel(PIRP irp, enum uwdf_cancel_kind kind, struct uwdf_request *owner)
{
    if (uwdf_irp_cancelled(irp))
        return false;
    /* The routine word as a writer's lock while the dispatch fields change
     * (a cancel of an earlier arming may still be reading them). Not armed
     * (NULL, the common case): no cancel can claim it and the last one
     * finished reading before it stored NULL, and only the IRP's owner
     * arms it, so the fields are ours without the exchange. */
    for (;;) {
        PDRIVER_CANCEL cur = irp_routine(irp);
        if (cur == NULL)
            break;
        if (cur == irp_cancel_claiming)
            irp_wait_claim(irp);
        else if (__atomic_compare_exchange_n(&irp->CancelRoutine, &cur, irp_cancel_claiming, false,
                                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            break;
    }
    irp->Tail.Overlay.DriverContext[2] = (PVOID)(uintptr_t)kind;
    irp->Tail.Overlay.DriverContext[3] = owner;
    __atomic_store_n(&irp->CancelRoutine, irp_cancel_marker, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&irp->Cancel, __ATOMIC_SEQ_CST))
        return true;
    /* Cancelled meanwhile: take the routine back, unless the cancel took
     * it (then it runs the routine, as if it came just after). */
    PDRIVER_CANCEL armed = irp_cancel_marker;
    return !__atomic_compare_exchange_n(&irp->CancelRoutine, &armed, NULL, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
}

bool uwdf_irp_clear_cancel(PIRP irp)
{
    PDRIVER_CANCEL armed = irp_cancel_marker;
    if (__atomic_compare_exchange_n(&irp->CancelRoutine, &armed, NULL, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return true;
    /* Not armed, or a cancel took it: once that cancel holds its reference
     * on the owner, the owner may go on (and be completed). */
    irp_wait_claim(irp);
    return false;
}

struct uwdf_irp_cancel_claim uwdf_irp_cancel_take(PIRP irp)
{
    struct uwdf_irp_cancel_claim c = { 0, NULL, NULL };
    __atomic_store_n(&irp->Cancel, TRUE, __ATOMIC_SEQ_CST); /* read without a lock */
    for (;;) {
        PDRIVER_CANCEL armed = irp_cancel_marker;
        if (__atomic_compare_exchange_n(&irp->CancelRoutine, &armed, irp_cancel_claiming, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            break;
        if (armed != irp_cancel_claiming)
            return c; /* not armed: nothing to run */
        irp_wait_claim(irp); /* another cancel of it: it gets the routine */
    }
    c.kind = (enum uwdf_cancel_kind)(uintptr_t)irp->Tail.Overlay.DriverContext[2];
    c.owner = irp->Tail.Overlay.DriverContext[3];
    c.q = irp->Tail.Overlay.DriverContext[1];
    /* The owner stays allocated while its cancel runs, whatever else
     * completes it meanwhile (a clear waits for this reference). */
    uwdf_object_reference(&c.owner->obj);
    __atomic_store_n(&irp->CancelRoutine, NULL, __ATOMIC_SEQ_CST);
    return c;
}

void uwdf_irp_cancel_run(struct uwdf_irp_cancel_claim c)
{
    struct uwdf_request *owner = c.owner;
    struct uwdf_queue *q = c.q;
    enum uwdf_cancel_kind kind = c.kind;
    if (!owner)
        return;
    switch (kind) {
    case UWDF_CANCEL_ON_QUEUE:
        uwdf_queue_cancel_on_queue(owner);
        break;
    case UWDF_CANCEL_DRIVER:
        uwdf_request_cancel_driver(owner);
        break;
    case UWDF_CANCEL_SENT:
        uwdf_iotarget_cancel_request(owner);
        break;
    case UWDF_CANCEL_FP_WAIT:
        uwdf_fp_cancel_waiting(owner, q);
        break;
    }
    uwdf_object_release(&owner->obj);
}

void uwdf_irp_cancel(PIRP irp)
{
    uwdf_irp_cancel_run(uwdf_irp_cancel_take(irp));
}
