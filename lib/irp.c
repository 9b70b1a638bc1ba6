/* I/O request packets, laid out as WDM lays them out: the IRP, then its
 * StackCount stack locations in the same allocation. CurrentLocation starts
 * at StackCount + 1 and CurrentStackLocation one past the last location, so
 * the first IoGetNextIrpStackLocation is the last array element and each
 * IoSetNextIrpStackLocation moves one element down. */
#include "runtime.h"
#include "lists.h"

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
