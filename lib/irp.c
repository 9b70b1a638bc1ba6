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
 * One framework cancel lock, as the I/O manager's; a queue's lock may be
 * held around it, never the other way. An armed IRP keeps in its
 * DriverContext what the framework dispatches on: [2] the kind, [3] the
 * owner, and [1] the queue a packet waits on for a reserved request. */

static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;

/* Marks an armed IRP; the framework dispatches on the kind it stored. */
static VOID irp_cancel_marker(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    (void)DeviceObject;
    uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, 0, (ULONG_PTR)Irp, 0,
                  "the framework's IRP cancel routine was called directly");
}

bool uwdf_irp_set_cancel(PIRP irp, enum uwdf_cancel_kind kind, struct uwdf_request *owner)
{
    pthread_mutex_lock(&cancel_lock);
    if (irp->Cancel) {
        pthread_mutex_unlock(&cancel_lock);
        return false;
    }
    irp->Tail.Overlay.DriverContext[2] = (PVOID)(uintptr_t)kind;
    irp->Tail.Overlay.DriverContext[3] = owner;
    irp->CancelRoutine = irp_cancel_marker;
    pthread_mutex_unlock(&cancel_lock);
    return true;
}

bool uwdf_irp_clear_cancel(PIRP irp)
{
    pthread_mutex_lock(&cancel_lock);
    bool had = irp->CancelRoutine != NULL;
    irp->CancelRoutine = NULL;
    pthread_mutex_unlock(&cancel_lock);
    return had;
}

struct uwdf_irp_cancel_claim uwdf_irp_cancel_take(PIRP irp)
{
    struct uwdf_irp_cancel_claim c = { 0, NULL, NULL };
    pthread_mutex_lock(&cancel_lock);
    __atomic_store_n(&irp->Cancel, TRUE, __ATOMIC_RELEASE); /* read without the lock too */
    if (irp->CancelRoutine) {
        c.kind = (enum uwdf_cancel_kind)(uintptr_t)irp->Tail.Overlay.DriverContext[2];
        c.owner = irp->Tail.Overlay.DriverContext[3];
        c.q = irp->Tail.Overlay.DriverContext[1];
        /* The owner stays allocated while its cancel runs, whatever else
         * completes it meanwhile. */
        uwdf_object_reference(&c.owner->obj);
    }
    irp->CancelRoutine = NULL;
    pthread_mutex_unlock(&cancel_lock);
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
