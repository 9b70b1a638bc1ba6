/* Memory descriptor lists. In user space every buffer is already mapped and
 * "locked" as far as the port is concerned, so an MDL is a (StartVa,
 * ByteOffset, ByteCount) triple with WDM's field names; chains of MDLs are
 * scatter/gather lists and become iovecs when the I/O is issued. */
#include "runtime.h"
#include "memory.h"

/* Since Windows 7 IoAllocateMdl describes at most 4 GB - PAGE_SIZE. */
#define MDL_MAX_LENGTH ((ULONG)(0xFFFFFFFFu - PAGE_SIZE + 1))

static size_t mdl_span_pages(const void *va, size_t length)
{
    return (BYTE_OFFSET(va) + length + PAGE_SIZE - 1) >> PAGE_SHIFT;
}

/* ---- DDIs ---- */

PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                   BOOLEAN ChargeQuota, struct _IRP *Irp)
{
    (void)ChargeQuota; /* reserved; drivers pass FALSE */
    if (Length > MDL_MAX_LENGTH)
        return NULL;
    /* Allocated at the WDM size (header plus page-frame array) so code that
     * trusts Mdl->Size stays inside the allocation; the array is unused. */
    PMDL mdl = uwdf_alloc(MmSizeOfMdl(VirtualAddress, Length));
    if (!mdl)
        return NULL;
    MmInitializeMdl(mdl, VirtualAddress, Length);
    if (Irp) {
        if (!SecondaryBuffer || !Irp->MdlAddress) {
            /* A primary MDL replaces Irp->MdlAddress (the old one is the
             * caller's to free, as on Windows). */
            Irp->MdlAddress = mdl;
        } else {
            PMDL tail = Irp->MdlAddress;
            while (tail->Next)
                tail = tail->Next;
            tail->Next = mdl;
        }
    }
    return mdl;
}

VOID IoFreeMdl(PMDL Mdl)
{
    /* Frees this MDL only: neither its Next chain nor an IRP's pointer to it. */
    uwdf_free(Mdl);
}

VOID MmBuildMdlForNonPagedPool(PMDL MemoryDescriptorList)
{
    UWDF_REQUIRE_PARAM(MemoryDescriptorList, "MmBuildMdlForNonPagedPool", );
    PMDL mdl = MemoryDescriptorList;
    mdl->MappedSystemVa = (char *)mdl->StartVa + mdl->ByteOffset;
    mdl->MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
}

PVOID MmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority)
{
    (void)Priority;
    if (!Mdl)
        return NULL;
    if (!(Mdl->MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL))) {
        /* The "mapping" of a user-space buffer is the buffer itself. */
        Mdl->MappedSystemVa = (char *)Mdl->StartVa + Mdl->ByteOffset;
        Mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    }
    return Mdl->MappedSystemVa;
}

SIZE_T MmSizeOfMdl(PVOID Base, SIZE_T Length)
{
    return sizeof(MDL) + mdl_span_pages(Base, Length) * sizeof(ULONG_PTR);
}

PMDL MmInitializeMdl(PMDL MemoryDescriptorList, PVOID BaseVa, SIZE_T Length)
{
    UWDF_REQUIRE_PARAM(MemoryDescriptorList, "MmInitializeMdl", NULL);
    PMDL mdl = MemoryDescriptorList;
    mdl->Next = NULL;
    /* CSHORT, as in WDM: it wraps for MDLs over ~16 MB, which nothing in the
     * port reads back. */
    mdl->Size = (CSHORT)MmSizeOfMdl(BaseVa, Length);
    mdl->MdlFlags = 0;
    mdl->Process = NULL;
    mdl->MappedSystemVa = NULL;
    mdl->StartVa = PAGE_ALIGN(BaseVa);
    mdl->ByteOffset = BYTE_OFFSET(BaseVa);
    mdl->ByteCount = (ULONG)Length;
    return mdl;
}

/* ---- internal API ---- */

int uwdf_mdl_to_iovec(PMDL mdl, size_t total, struct iovec *iov, int max, size_t *bytes)
{
    size_t covered = 0;
    int n = 0;
    for (; mdl && (total == 0 || covered < total); mdl = mdl->Next) {
        size_t len = mdl->ByteCount;
        if (len == 0)
            continue; /* an empty MDL adds nothing to the transfer */
        if (total != 0 && len > total - covered)
            len = total - covered;
        if (n >= max) {
            if (bytes)
                *bytes = covered;
            return -1;
        }
        iov[n].iov_base = MmGetMdlVirtualAddress(mdl);
        iov[n].iov_len = len;
        n++;
        covered += len;
    }
    if (bytes)
        *bytes = covered;
    return n;
}
