/* Pool: ExAllocatePool2 and the older Ex pool routines, over the framework
 * allocator (so the fault injector fails them like any framework
 * allocation). Each block carries a small header in front of it (tag, size,
 * a check word) so that ExFreePoolWithTag can check the tag and a foreign
 * or twice-freed pointer is caught, as Windows' BAD_POOL_CALLER does. */
#include "ntrt.h"

#include <stdio.h>

#define POOL_MAGIC 0x506f6f6c55776466ULL /* "PoolUwdf" */
#define POOL_SMALL_ALIGN 16
#define POOL_CACHE_ALIGN 64

/* BAD_POOL_CALLER (0xC2) first parameters */
#define BAD_POOL_FREE_WRONG_TAG 0x0A
#define BAD_POOL_FREE_INVALID_ADDRESS 0x46
/* DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4) first parameter */
#define VERIFIER_ZERO_BYTE_ALLOCATION 0x00

#define POOL_FLAGS_REQUIRED_KNOWN                                                                \
    (POOL_FLAG_USE_QUOTA | POOL_FLAG_UNINITIALIZED | POOL_FLAG_SESSION | POOL_FLAG_CACHE_ALIGNED | \
     POOL_FLAG_RAISE_ON_FAILURE | POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED)
#define POOL_FLAGS_TYPE (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED)

struct pool_header {
    uint64_t check; /* POOL_MAGIC ^ the block's address: stale or foreign pointers fail */
    size_t size;
    uint32_t offset; /* from the allocation to the block */
    ULONG tag;
};

static atomic_ullong pool_outstanding_blocks;

unsigned long long uwdf_pool_outstanding(void)
{
    return atomic_load(&pool_outstanding_blocks);
}

static struct pool_header *pool_header_of(void *p)
{
    return (struct pool_header *)((char *)p - sizeof(struct pool_header));
}

/* The allocation itself, once the caller's rules are checked. */
static void *pool_alloc(size_t size, ULONG tag, bool zero, bool cache_aligned)
{
    size_t align = size >= PAGE_SIZE ? PAGE_SIZE : cache_aligned ? POOL_CACHE_ALIGN : POOL_SMALL_ALIGN;
    /* The header sits just below the block, so the block starts one
     * alignment unit (enough for the header) into the allocation. */
    size_t offset = align >= sizeof(struct pool_header) ? align : 2 * align;
    size_t total;
    if (__builtin_add_overflow(offset, size ? size : 1, &total))
        return NULL;
    char *base = uwdf_alloc_aligned(align, total);
    if (!base)
        return NULL;
    char *block = base + offset;
    struct pool_header *h = pool_header_of(block);
    h->check = POOL_MAGIC ^ (uint64_t)(uintptr_t)block;
    h->size = size;
    h->offset = (uint32_t)offset;
    h->tag = tag;
    if (zero)
        memset(block, 0, size);
    atomic_fetch_add(&pool_outstanding_blocks, 1);
    return block;
}

static bool pool_irql_ok(bool paged, const char *ddi)
{
    return uwdf_irql_check_max(paged ? APC_LEVEL : DISPATCH_LEVEL, ddi);
}

static void pool_zero_size(const char *ddi)
{
    if (uwdf_verifier) {
        char reason[128];
        snprintf(reason, sizeof(reason), "%s: allocation of zero bytes", ddi);
        uwdf_bugcheck_report(DRIVER_VERIFIER_DETECTED_VIOLATION, VERIFIER_ZERO_BYTE_ALLOCATION, 0, 0, 0,
                             reason);
    }
}

PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag)
{
    ULONG64 required = Flags & 0xFFFFFFFFULL;
    ULONG64 type = Flags & POOL_FLAGS_TYPE;
    PVOID p = NULL;
    /* Exactly one pool type; unknown required flags fail; optional ones
     * (the high half) are ignored, as documented. */
    if (Tag == 0 || (required & ~POOL_FLAGS_REQUIRED_KNOWN) || !type || (type & (type - 1)))
        goto failed;
    if (!pool_irql_ok(type == POOL_FLAG_PAGED, "ExAllocatePool2"))
        goto failed;
    if (NumberOfBytes == 0)
        pool_zero_size("ExAllocatePool2");
    p = pool_alloc(NumberOfBytes, Tag, !(Flags & POOL_FLAG_UNINITIALIZED), Flags & POOL_FLAG_CACHE_ALIGNED);
failed:
    if (!p && (Flags & POOL_FLAG_RAISE_ON_FAILURE))
        uwdf_bugcheck_report(KMODE_EXCEPTION_NOT_HANDLED, (ULONG_PTR)(ULONG)STATUS_INSUFFICIENT_RESOURCES, 0, 0, 0,
                             "ExAllocatePool2(POOL_FLAG_RAISE_ON_FAILURE) failed: an exception nothing handles");
    return p;
}

/* The POOL_TYPE forms: odd types are paged, bit 2 asks for cache alignment. */
static PVOID pool_alloc_typed(POOL_TYPE type, SIZE_T size, ULONG tag, bool zero, const char *ddi)
{
    if (!pool_irql_ok(type & 1, ddi))
        return NULL;
    if (size == 0)
        pool_zero_size(ddi);
    return pool_alloc(size, tag, zero, type & 4);
}

PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return pool_alloc_typed(PoolType, NumberOfBytes, Tag, false, "ExAllocatePoolWithTag");
}

PVOID ExAllocatePoolUninitialized(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return pool_alloc_typed(PoolType, NumberOfBytes, Tag, false, "ExAllocatePoolUninitialized");
}

PVOID ExAllocatePoolZero(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return pool_alloc_typed(PoolType, NumberOfBytes, Tag, true, "ExAllocatePoolZero");
}

static void pool_free(PVOID P, bool check_tag, ULONG Tag, const char *ddi)
{
    char reason[160];
    if (!P || ((uintptr_t)P & (POOL_SMALL_ALIGN - 1)) ||
        pool_header_of(P)->check != (POOL_MAGIC ^ (uint64_t)(uintptr_t)P)) {
        snprintf(reason, sizeof(reason), "%s(%p): not a pool block (NULL, foreign or already freed)", ddi, P);
        uwdf_bugcheck_report(BAD_POOL_CALLER, BAD_POOL_FREE_INVALID_ADDRESS, (ULONG_PTR)P, 0, 0, reason);
        return;
    }
    struct pool_header *h = pool_header_of(P);
    if (check_tag && h->tag != Tag) {
        snprintf(reason, sizeof(reason), "%s(%p, tag 0x%08X): the block was allocated with tag 0x%08X", ddi, P,
                 (unsigned)Tag, (unsigned)h->tag);
        uwdf_bugcheck_report(BAD_POOL_CALLER, BAD_POOL_FREE_WRONG_TAG, (ULONG_PTR)P, h->tag, Tag, reason);
        return;
    }
    h->check = 0;
    atomic_fetch_sub(&pool_outstanding_blocks, 1);
    uwdf_free((char *)P - h->offset);
}

VOID ExFreePool(PVOID P)
{
    pool_free(P, false, 0, "ExFreePool");
}

VOID ExFreePoolWithTag(PVOID P, ULONG Tag)
{
    pool_free(P, true, Tag, "ExFreePoolWithTag");
}

VOID ExInitializeDriverRuntime(ULONG RuntimeFlags)
{
    (void)RuntimeFlags;
}
