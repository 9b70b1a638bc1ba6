/* Memory objects, lookaside lists, MDLs and IRPs. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/internal.h"

/* 'tseT' (multi-character constants trip -Wmultichar) */
#define TEST_POOL_TAG 0x74736554u

static struct uwdf_memory *memory_struct(WDFMEMORY mem)
{
    struct uwdf_memory *m = uwdf_memory_lookup(mem, "test");
    ck_assert_ptr_nonnull(m);
    return m;
}

static NTSTATUS resolve(WDFMEMORY mem, const WDFMEMORY_OFFSET *offsets, size_t *off, size_t *len)
{
    return uwdf_memory_resolve_offsets(memory_struct(mem), offsets, off, len);
}

/* ---- WdfMemoryCreate ---- */

START_TEST(memory_create_returns_buffer_of_requested_size)
{
    WDFDRIVER driver = tu_make_driver();
    void *buffer = NULL;
    size_t size = 0;
    WDFMEMORY mem = tu_make_memory(1000, &buffer);
    ck_assert_ptr_nonnull(mem);
    ck_assert_ptr_nonnull(buffer);
    ck_assert_ptr_eq(WdfMemoryGetBuffer(mem, &size), buffer);
    ck_assert_uint_eq(size, 1000);
    memset(buffer, 0xA5, size); /* the whole buffer is writable */
    WdfObjectDelete(mem);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_create_is_page_aligned)
{
    static const size_t sizes[] = { 1, 7, 512, 4095, 4096, 4097, 65536 + 3 };
    WDFDRIVER driver = tu_make_driver();
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *buffer;
        tu_make_memory(sizes[i], &buffer);
        ck_assert_msg(((uintptr_t)buffer & (PAGE_SIZE - 1)) == 0, "size %zu: %p not page-aligned",
                      sizes[i], buffer);
    }
    WdfObjectDelete(driver); /* the default parent takes the memory with it */
}
END_TEST

START_TEST(memory_create_buffer_pointer_is_optional)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem;
    ck_assert_status(WdfMemoryCreate(NULL, PagedPool, TEST_POOL_TAG, 64, &mem, NULL),
                     STATUS_SUCCESS);
    ck_assert_ptr_nonnull(WdfMemoryGetBuffer(mem, NULL));
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_create_zero_size_is_invalid_parameter)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = (WDFMEMORY)1;
    void *buffer = (void *)1;
    ck_assert_status(WdfMemoryCreate(NULL, NonPagedPoolNx, 0, 0, &mem, &buffer),
                     STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(mem);
    ck_assert_ptr_null(buffer);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_create_without_a_driver_is_allowed)
{
    ck_assert_ptr_null(WdfGetDriver());
    void *buffer;
    WDFMEMORY mem = tu_make_memory(32, &buffer);
    ck_assert_ptr_nonnull(buffer);
    WdfObjectDelete(mem); /* no default parent: the caller must delete it */
}
END_TEST

START_TEST(memory_create_null_handle_pointer_is_bugcheck)
{
    ck_assert_status(WdfMemoryCreate(NULL, NonPagedPoolNx, 0, 16, NULL, NULL),
                     STATUS_INVALID_PARAMETER);
    tu_expect_bugcheck_reason(WDF_REQUIRED_PARAMETER_IS_NULL, "WdfMemoryCreate");
}
END_TEST

START_TEST(memory_create_uninitialized_attributes_are_invalid)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFMEMORY mem;
    memset(&attrs, 0, sizeof(attrs));
    attrs.Size = sizeof(attrs);
    ck_assert_status(WdfMemoryCreate(&attrs, NonPagedPoolNx, 0, 16, &mem, NULL),
                     STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
    attrs.Size = sizeof(attrs) - 1;
    ck_assert_status(WdfMemoryCreate(&attrs, NonPagedPoolNx, 0, 16, &mem, NULL),
                     STATUS_INFO_LENGTH_MISMATCH);
}
END_TEST

START_TEST(memory_create_rejects_synchronization_scope_and_execution_level)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFMEMORY mem;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.SynchronizationScope = WdfSynchronizationScopeDevice;
    ck_assert_status(WdfMemoryCreate(&attrs, NonPagedPoolNx, 0, 16, &mem, NULL),
                     STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID);
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ExecutionLevel = WdfExecutionLevelPassive;
    ck_assert_status(WdfMemoryCreate(&attrs, NonPagedPoolNx, 0, 16, &mem, NULL),
                     STATUS_WDF_EXECUTION_LEVEL_INVALID);
}
END_TEST

START_TEST(memory_create_fails_under_injected_allocation_failure)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = (WDFMEMORY)1;
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(WdfMemoryCreate(NULL, NonPagedPoolNx, 0, 4096, &mem, NULL),
                     STATUS_INSUFFICIENT_RESOURCES);
    ck_assert_ptr_null(mem);
    ck_assert_uint_eq(UwdfFaultAllocationFailures(), 1);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    WdfObjectDelete(driver);
}
END_TEST

/* Whichever allocation fails, the create fails cleanly (no leak: ASan and
 * valgrind check) and nothing is left half-made. */
START_TEST(memory_create_survives_failure_of_each_allocation)
{
    WDFDRIVER driver = tu_make_driver();
    for (ULONG n = 1; n < 16; n++) {
        WDFMEMORY mem;
        UwdfFaultInjectAllocations(UwdfFaultAllocNth, n);
        NTSTATUS status = WdfMemoryCreate(NULL, NonPagedPoolNx, 0, 100, &mem, NULL);
        ULONGLONG failures = UwdfFaultAllocationFailures();
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        if (failures == 0) {
            ck_assert_status(status, STATUS_SUCCESS);
            ck_assert_uint_ge(n, 2); /* at least the buffer and the object */
            WdfObjectDelete(mem);
            break;
        }
        ck_assert_status(status, STATUS_INSUFFICIENT_RESOURCES);
        ck_assert_ptr_null(mem);
    }
    WdfObjectDelete(driver);
}
END_TEST

/* ---- WdfMemoryCreatePreallocated / WdfMemoryAssignBuffer ---- */

START_TEST(preallocated_memory_describes_the_callers_buffer)
{
    char storage[100];
    WDFMEMORY mem;
    size_t size;
    WDFDRIVER driver = tu_make_driver();
    ck_assert_status(WdfMemoryCreatePreallocated(NULL, storage, sizeof(storage), &mem),
                     STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfMemoryGetBuffer(mem, &size), storage);
    ck_assert_uint_eq(size, sizeof(storage));
    /* Deleting must not free a stack buffer (ASan/valgrind would object). */
    WdfObjectDelete(mem);
    storage[0] = 1;
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(preallocated_null_buffer_is_invalid_parameter)
{
    WDFMEMORY mem = (WDFMEMORY)1;
    ck_assert_status(WdfMemoryCreatePreallocated(NULL, NULL, 16, &mem), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(mem);
}
END_TEST

START_TEST(preallocated_zero_size_is_invalid_parameter)
{
    char storage[4];
    WDFMEMORY mem = (WDFMEMORY)1;
    ck_assert_status(WdfMemoryCreatePreallocated(NULL, storage, 0, &mem), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(mem);
}
END_TEST

START_TEST(assign_buffer_replaces_buffer_and_size)
{
    char first[16], second[40];
    WDFMEMORY mem;
    size_t size;
    WDFDRIVER driver = tu_make_driver();
    ck_assert_status(WdfMemoryCreatePreallocated(NULL, first, sizeof(first), &mem), STATUS_SUCCESS);
    ck_assert_status(WdfMemoryAssignBuffer(mem, second, sizeof(second)), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfMemoryGetBuffer(mem, &size), second);
    ck_assert_uint_eq(size, sizeof(second));
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(assign_buffer_zero_size_or_null_is_invalid_parameter)
{
    char first[16];
    WDFMEMORY mem;
    size_t size;
    WDFDRIVER driver = tu_make_driver();
    ck_assert_status(WdfMemoryCreatePreallocated(NULL, first, sizeof(first), &mem), STATUS_SUCCESS);
    ck_assert_status(WdfMemoryAssignBuffer(mem, first, 0), STATUS_INVALID_PARAMETER);
    ck_assert_status(WdfMemoryAssignBuffer(mem, NULL, 8), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_eq(WdfMemoryGetBuffer(mem, &size), first); /* unchanged */
    ck_assert_uint_eq(size, sizeof(first));
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(assign_buffer_on_framework_memory_is_bugcheck)
{
    char other[16];
    void *buffer;
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(64, &buffer);
    ck_assert_status(WdfMemoryAssignBuffer(mem, other, sizeof(other)), STATUS_INVALID_PARAMETER);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "WdfMemoryCreatePreallocated");
    ck_assert_ptr_eq(WdfMemoryGetBuffer(mem, NULL), buffer); /* untouched, still freed at delete */
    WdfObjectDelete(driver);
}
END_TEST

/* ---- WdfMemoryGetBuffer / copies ---- */

START_TEST(copy_to_buffer_copies_from_offset)
{
    unsigned char *buffer, out[10];
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(100, (void **)&buffer);
    for (int i = 0; i < 100; i++)
        buffer[i] = (unsigned char)i;
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 90, out, 10), STATUS_SUCCESS);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(out[i], 90 + i);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_to_buffer_zero_length_or_null_is_invalid_parameter)
{
    char out[4];
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, NULL);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 0, out, 0), STATUS_INVALID_PARAMETER);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 0, NULL, 4), STATUS_INVALID_PARAMETER);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_to_buffer_offset_past_end_is_buffer_too_small)
{
    char out[4];
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, NULL);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 16, out, 1), STATUS_BUFFER_TOO_SMALL);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, SIZE_MAX, out, 1), STATUS_BUFFER_TOO_SMALL);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_to_buffer_length_past_end_is_buffer_too_small)
{
    char out[32];
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, NULL);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 0, out, 17), STATUS_BUFFER_TOO_SMALL);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 8, out, 9), STATUS_BUFFER_TOO_SMALL);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 8, out, SIZE_MAX), STATUS_BUFFER_TOO_SMALL);
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 8, out, 8), STATUS_SUCCESS); /* exactly fits */
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_from_buffer_copies_to_offset)
{
    unsigned char *buffer;
    const unsigned char in[4] = { 1, 2, 3, 4 };
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(8, (void **)&buffer);
    memset(buffer, 0, 8);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 4, (PVOID)in, 4), STATUS_SUCCESS);
    ck_assert_mem_eq(buffer + 4, in, 4);
    ck_assert_uint_eq(buffer[3], 0);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_from_buffer_zero_length_or_null_is_invalid_parameter)
{
    char in[4] = { 0 };
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, NULL);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 0, in, 0), STATUS_INVALID_PARAMETER);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 0, NULL, 4), STATUS_INVALID_PARAMETER);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_from_buffer_offset_past_end_is_invalid_buffer_size)
{
    char in[4] = { 0 };
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, NULL);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 16, in, 1), STATUS_INVALID_BUFFER_SIZE);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, SIZE_MAX, in, 1), STATUS_INVALID_BUFFER_SIZE);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_from_buffer_length_past_end_is_invalid_buffer_size)
{
    char in[32] = { 0 };
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, NULL);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 0, in, 17), STATUS_INVALID_BUFFER_SIZE);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 15, in, 2), STATUS_INVALID_BUFFER_SIZE);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 15, in, SIZE_MAX), STATUS_INVALID_BUFFER_SIZE);
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 15, in, 1), STATUS_SUCCESS);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(copy_from_buffer_into_read_only_is_access_violation)
{
    unsigned char *buffer;
    char in[4] = { 9, 9, 9, 9 };
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, (void **)&buffer);
    memset(buffer, 0, 16);
    memory_struct(mem)->read_only = true; /* as the input memory of a write request */
    ck_assert_status(WdfMemoryCopyFromBuffer(mem, 0, in, 4), STATUS_ACCESS_VIOLATION);
    ck_assert_uint_eq(buffer[0], 0);
    /* Reading it is still fine. */
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 0, in, 4), STATUS_SUCCESS);
    WdfObjectDelete(driver);
}
END_TEST

/* ---- handle validation ---- */

START_TEST(memory_deleted_handle_is_bugcheck)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(16, NULL);
    size_t size = 1;
    char out[4];
    WdfObjectDelete(mem);
    ck_assert_ptr_null(WdfMemoryGetBuffer(mem, &size));
    ck_assert_uint_eq(size, 0);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "WdfMemoryGetBuffer");
    ck_assert_status(WdfMemoryCopyToBuffer(mem, 0, out, 4), STATUS_INVALID_HANDLE);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "not a live WDFMEMORY");
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_wrong_type_handle_is_bugcheck)
{
    WDFDRIVER driver = tu_make_driver();
    WDFOBJECT generic;
    char in[4] = { 0 };
    ck_assert_status(WdfObjectCreate(NULL, &generic), STATUS_SUCCESS);
    ck_assert_status(WdfMemoryCopyFromBuffer((WDFMEMORY)generic, 0, in, 4), STATUS_INVALID_HANDLE);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "expected a WDFMEMORY");
    ck_assert_ptr_null(WdfMemoryGetBuffer((WDFMEMORY)driver, NULL));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "is a WDFDRIVER");
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_null_handle_is_required_parameter_bugcheck)
{
    ck_assert_ptr_null(WdfMemoryGetBuffer(NULL, NULL));
    tu_expect_bugcheck_reason(WDF_REQUIRED_PARAMETER_IS_NULL, "WdfMemoryGetBuffer");
}
END_TEST

/* ---- WDFMEMORY_OFFSET resolution ---- */

/* resolve() succeeds and gives exactly want_off / want_len (both are
 * preset to values it must overwrite). */
static void expect_resolved(WDFMEMORY mem, const WDFMEMORY_OFFSET *o, size_t want_off, size_t want_len)
{
    size_t off = SIZE_MAX, len = SIZE_MAX;
    ck_assert_status(resolve(mem, o, &off, &len), STATUS_SUCCESS);
    ck_assert_uint_eq(off, want_off);
    ck_assert_uint_eq(len, want_len);
}

static void expect_integer_overflow(WDFMEMORY mem, size_t offset, size_t length)
{
    WDFMEMORY_OFFSET o = { .BufferOffset = offset, .BufferLength = length };
    size_t off, len;
    ck_assert_status(resolve(mem, &o, &off, &len), STATUS_INTEGER_OVERFLOW);
}

START_TEST(offsets_null_is_whole_buffer)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(300, NULL);
    expect_resolved(mem, NULL, 0, 300);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(offsets_zero_length_is_rest_of_buffer)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(300, NULL);
    WDFMEMORY_OFFSET o = { .BufferOffset = 100, .BufferLength = 0 };
    expect_resolved(mem, &o, 100, 200);
    o.BufferOffset = 300; /* at the end: valid, nothing left */
    expect_resolved(mem, &o, 300, 0);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(offsets_explicit_range_inside_buffer)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(300, NULL);
    WDFMEMORY_OFFSET o = { .BufferOffset = 50, .BufferLength = 250 };
    expect_resolved(mem, &o, 50, 250);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(offsets_past_end_is_integer_overflow)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(300, NULL);
    expect_integer_overflow(mem, 50, 251);
    expect_integer_overflow(mem, 301, 0);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(offsets_sum_overflow_is_integer_overflow)
{
    WDFDRIVER driver = tu_make_driver();
    WDFMEMORY mem = tu_make_memory(300, NULL);
    /* Offset + length wraps to a small number: must not pass as in range. */
    expect_integer_overflow(mem, 10, SIZE_MAX - 5);
    expect_integer_overflow(mem, SIZE_MAX, 2);
    WdfObjectDelete(driver);
}
END_TEST

/* ---- object behaviour of memory ---- */

typedef struct {
    int tag;
} MEMORY_TEST_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(MEMORY_TEST_CONTEXT, memory_test_context)

static char order_log[16];
static int order_len;
static int destroy_seen_tag;

static void log_event(char c)
{
    if (order_len < (int)sizeof(order_log) - 1)
        order_log[order_len++] = c;
    order_log[order_len] = '\0';
}

static VOID memory_cleanup(WDFOBJECT object)
{
    /* At cleanup the object and its buffer are still usable. */
    ck_assert_ptr_nonnull(WdfMemoryGetBuffer((WDFMEMORY)object, NULL));
    ck_assert_int_eq(memory_test_context(object)->tag, 42);
    log_event('c');
}

static VOID memory_destroy_cb(WDFOBJECT object)
{
    destroy_seen_tag = memory_test_context(object)->tag; /* context still readable */
    log_event('d');
}

static void reset_log(void)
{
    order_len = 0;
    order_log[0] = '\0';
    destroy_seen_tag = 0;
}

START_TEST(memory_cleanup_runs_before_destroy_with_typed_context)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFMEMORY mem;
    WDFDRIVER driver = tu_make_driver();
    reset_log();
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, MEMORY_TEST_CONTEXT);
    attrs.EvtCleanupCallback = memory_cleanup;
    attrs.EvtDestroyCallback = memory_destroy_cb;
    ck_assert_status(WdfMemoryCreate(&attrs, NonPagedPoolNx, 0, 128, &mem, NULL), STATUS_SUCCESS);
    MEMORY_TEST_CONTEXT *ctx = memory_test_context(mem);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(ctx->tag, 0); /* contexts start zeroed */
    ck_assert_ptr_eq(WdfObjectContextGetObject(ctx), (WDFOBJECT)mem);
    ctx->tag = 42;
    WdfObjectDelete(mem);
    ck_assert_str_eq(order_log, "cd");
    ck_assert_int_eq(destroy_seen_tag, 42);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_reference_keeps_buffer_until_dereference)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFMEMORY mem;
    char *buffer;
    WDFDRIVER driver = tu_make_driver();
    reset_log();
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, MEMORY_TEST_CONTEXT);
    attrs.EvtDestroyCallback = memory_destroy_cb;
    ck_assert_status(WdfMemoryCreate(&attrs, NonPagedPoolNx, 0, 64, &mem, (PVOID *)&buffer),
                     STATUS_SUCCESS);
    WdfObjectReference(mem);
    WdfObjectDelete(mem);
    ck_assert_str_eq(order_log, "");
    memset(buffer, 1, 64); /* still owned by the live reference */
    WdfObjectDereference(mem);
    ck_assert_str_eq(order_log, "d");
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_parented_to_another_object_is_deleted_with_it)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT parent;
    WDFMEMORY mem;
    WDFDRIVER driver = tu_make_driver();
    reset_log();
    ck_assert_status(WdfObjectCreate(NULL, &parent), STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, MEMORY_TEST_CONTEXT);
    attrs.EvtDestroyCallback = memory_destroy_cb;
    attrs.ParentObject = parent;
    ck_assert_status(WdfMemoryCreate(&attrs, NonPagedPoolNx, 0, 64, &mem, NULL), STATUS_SUCCESS);
    WdfObjectDelete(parent);
    ck_assert_str_eq(order_log, "d");
    ck_assert_ptr_null(WdfMemoryGetBuffer(mem, NULL));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, NULL);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(memory_default_parent_is_the_driver)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFMEMORY mem;
    WDFDRIVER driver = tu_make_driver();
    reset_log();
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, MEMORY_TEST_CONTEXT);
    attrs.EvtDestroyCallback = memory_destroy_cb;
    static char storage[4];
    ck_assert_status(WdfMemoryCreatePreallocated(&attrs, storage, sizeof(storage), &mem),
                     STATUS_SUCCESS);
    WdfObjectDelete(driver);
    ck_assert_str_eq(order_log, "d");
}
END_TEST

/* ---- lookaside lists ---- */

static WDFLOOKASIDE make_lookaside(size_t size, PWDF_OBJECT_ATTRIBUTES mem_attrs)
{
    WDFLOOKASIDE la;
    NTSTATUS status =
        WdfLookasideListCreate(NULL, size, NonPagedPoolNx, mem_attrs, TEST_POOL_TAG, &la);
    ck_assert_status(status, STATUS_SUCCESS);
    return la;
}

START_TEST(lookaside_create_zero_size_is_invalid_parameter)
{
    WDFLOOKASIDE la = (WDFLOOKASIDE)1;
    ck_assert_status(WdfLookasideListCreate(NULL, 0, NonPagedPoolNx, NULL, 0, &la),
                     STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(la);
}
END_TEST

START_TEST(lookaside_memory_attributes_with_parent_are_rejected)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFLOOKASIDE la;
    WDFDRIVER driver = tu_make_driver();
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ParentObject = driver;
    ck_assert_status(WdfLookasideListCreate(NULL, 64, NonPagedPoolNx, &attrs, 0, &la),
                     STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(lookaside_memory_has_list_size_and_is_page_aligned)
{
    WDFDRIVER driver = tu_make_driver();
    WDFLOOKASIDE la = make_lookaside(777, NULL);
    WDFMEMORY mem;
    size_t size;
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &mem), STATUS_SUCCESS);
    void *buffer = WdfMemoryGetBuffer(mem, &size);
    ck_assert_uint_eq(size, 777);
    ck_assert_uint_eq((uintptr_t)buffer & (PAGE_SIZE - 1), 0);
    memset(buffer, 0x5A, size);
    WdfObjectDelete(mem);
    WdfObjectDelete(la);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(lookaside_buffers_are_recycled)
{
    WDFDRIVER driver = tu_make_driver();
    WDFLOOKASIDE la = make_lookaside(4096, NULL);
    WDFMEMORY a, b;
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &a), STATUS_SUCCESS);
    void *first = WdfMemoryGetBuffer(a, NULL);
    WdfObjectDelete(a);
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &b), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfMemoryGetBuffer(b, NULL), first);
    WdfObjectDelete(b);
    WdfObjectDelete(driver); /* takes the list and its cached buffer */
}
END_TEST

/* Returned buffers are reused without allocating, but the cache is bounded:
 * after many buffers come back, some are freed rather than kept. */
START_TEST(lookaside_cache_is_bounded)
{
    enum { MANY = 300 };
    WDFMEMORY *mems = calloc(MANY, sizeof(*mems));
    WDFDRIVER driver = tu_make_driver();
    WDFLOOKASIDE la = make_lookaside(64, NULL);
    ck_assert_ptr_nonnull(mems);

    ck_assert_status(WdfMemoryCreateFromLookaside(la, &mems[0]), STATUS_SUCCESS);
    WdfObjectDelete(mems[0]);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0); /* resets the counter */
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &mems[0]), STATUS_SUCCESS);
    ULONGLONG per_recycled = UwdfFaultAllocationCount(); /* the memory object only */
    WdfObjectDelete(mems[0]);

    for (int i = 0; i < MANY; i++)
        ck_assert_status(WdfMemoryCreateFromLookaside(la, &mems[i]), STATUS_SUCCESS);
    for (int i = 0; i < MANY; i++)
        WdfObjectDelete(mems[i]);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    for (int i = 0; i < MANY; i++)
        ck_assert_status(WdfMemoryCreateFromLookaside(la, &mems[i]), STATUS_SUCCESS);
    ck_assert_uint_gt(UwdfFaultAllocationCount(), per_recycled * MANY);
    WdfObjectDelete(driver);
    free(mems);
}
END_TEST

static void *lookaside_churn(void *arg)
{
    WDFLOOKASIDE la = arg;
    for (int i = 0; i < 2000; i++) {
        WDFMEMORY mem;
        size_t size;
        if (WdfMemoryCreateFromLookaside(la, &mem) != STATUS_SUCCESS)
            return (void *)1;
        unsigned char *buffer = WdfMemoryGetBuffer(mem, &size);
        memset(buffer, i & 0xFF, size); /* a buffer handed out twice would be caught by a reader */
        for (size_t j = 0; j < size; j++)
            if (buffer[j] != (i & 0xFF))
                return (void *)2;
        WdfObjectDelete(mem);
    }
    return NULL;
}

START_TEST(lookaside_is_safe_across_threads)
{
    enum { THREADS = 4 };
    pthread_t threads[THREADS];
    WDFDRIVER driver = tu_make_driver();
    WDFLOOKASIDE la = make_lookaside(256, NULL);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, lookaside_churn, la), 0);
    for (int i = 0; i < THREADS; i++) {
        void *result;
        pthread_join(threads[i], &result);
        ck_assert_ptr_null(result);
    }
    WdfObjectDelete(driver);
}
END_TEST

static int lookaside_cleanups;
static VOID lookaside_memory_cleanup(WDFOBJECT object)
{
    ck_assert_ptr_nonnull(memory_test_context(object));
    lookaside_cleanups++;
}

START_TEST(lookaside_memory_uses_the_lists_memory_attributes)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFMEMORY mem;
    WDFDRIVER driver = tu_make_driver();
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, MEMORY_TEST_CONTEXT);
    attrs.EvtCleanupCallback = lookaside_memory_cleanup;
    WDFLOOKASIDE la = make_lookaside(32, &attrs);
    memset(&attrs, 0xEE, sizeof(attrs)); /* the list keeps its own copy */
    lookaside_cleanups = 0;
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &mem), STATUS_SUCCESS);
    MEMORY_TEST_CONTEXT *ctx = memory_test_context(mem);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(ctx->tag, 0);
    WdfObjectDelete(mem);
    ck_assert_int_eq(lookaside_cleanups, 1);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(deleting_the_lookaside_deletes_its_outstanding_memory)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFMEMORY m1, m2;
    WDFDRIVER driver = tu_make_driver();
    reset_log();
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, MEMORY_TEST_CONTEXT);
    attrs.EvtDestroyCallback = memory_destroy_cb;
    WDFLOOKASIDE la = make_lookaside(128, &attrs);
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &m1), STATUS_SUCCESS);
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &m2), STATUS_SUCCESS);
    WdfObjectDelete(la);
    ck_assert_str_eq(order_log, "dd");
    ck_assert_ptr_null(WdfMemoryGetBuffer(m1, NULL));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, NULL);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(lookaside_wrong_handle_type_is_bugcheck)
{
    WDFMEMORY mem, out = (WDFMEMORY)1;
    WDFDRIVER driver = tu_make_driver();
    mem = tu_make_memory(16, NULL);
    ck_assert_status(WdfMemoryCreateFromLookaside((WDFLOOKASIDE)mem, &out), STATUS_INVALID_HANDLE);
    ck_assert_ptr_null(out);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "expected a WDFLOOKASIDE");
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(assign_buffer_on_lookaside_memory_is_bugcheck)
{
    char other[8];
    WDFMEMORY mem;
    WDFDRIVER driver = tu_make_driver();
    WDFLOOKASIDE la = make_lookaside(16, NULL);
    ck_assert_status(WdfMemoryCreateFromLookaside(la, &mem), STATUS_SUCCESS);
    ck_assert_status(WdfMemoryAssignBuffer(mem, other, sizeof(other)), STATUS_INVALID_PARAMETER);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "lookaside");
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(lookaside_allocation_failure_is_insufficient_resources)
{
    WDFDRIVER driver = tu_make_driver();
    WDFLOOKASIDE la = make_lookaside(100, NULL);
    for (ULONG n = 1; n < 8; n++) {
        WDFMEMORY mem = (WDFMEMORY)1;
        UwdfFaultInjectAllocations(UwdfFaultAllocNth, n);
        NTSTATUS status = WdfMemoryCreateFromLookaside(la, &mem);
        ULONGLONG failures = UwdfFaultAllocationFailures();
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        if (failures == 0) {
            ck_assert_status(status, STATUS_SUCCESS);
            WdfObjectDelete(mem);
            break;
        }
        ck_assert_status(status, STATUS_INSUFFICIENT_RESOURCES);
        ck_assert_ptr_null(mem);
    }
    WdfObjectDelete(driver);
}
END_TEST

/* ---- MDLs ---- */

START_TEST(mm_size_of_mdl_counts_spanned_pages)
{
    char *base = (char *)(uintptr_t)0x100000; /* page-aligned address, never touched */
    ck_assert_uint_eq(MmSizeOfMdl(base, 1), sizeof(MDL) + 1 * sizeof(ULONG_PTR));
    ck_assert_uint_eq(MmSizeOfMdl(base, PAGE_SIZE), sizeof(MDL) + 1 * sizeof(ULONG_PTR));
    ck_assert_uint_eq(MmSizeOfMdl(base, PAGE_SIZE + 1), sizeof(MDL) + 2 * sizeof(ULONG_PTR));
    ck_assert_uint_eq(MmSizeOfMdl(base + PAGE_SIZE - 1, 2), sizeof(MDL) + 2 * sizeof(ULONG_PTR));
    ck_assert_uint_eq(MmSizeOfMdl(base, 0), sizeof(MDL));
}
END_TEST

START_TEST(io_allocate_mdl_describes_the_buffer)
{
    char *buf = aligned_alloc(PAGE_SIZE, 3 * PAGE_SIZE);
    char *va = buf + 100;
    PMDL mdl = IoAllocateMdl(va, 5000, FALSE, FALSE, NULL);
    ck_assert_ptr_nonnull(mdl);
    ck_assert_ptr_null(mdl->Next);
    ck_assert_ptr_eq(mdl->StartVa, buf);
    ck_assert_uint_eq(mdl->ByteOffset, 100);
    ck_assert_uint_eq(mdl->ByteCount, 5000);
    ck_assert_int_eq(mdl->Size, (CSHORT)MmSizeOfMdl(va, 5000));
    ck_assert_ptr_eq(MmGetMdlVirtualAddress(mdl), va);
    ck_assert_uint_eq(MmGetMdlByteCount(mdl), 5000);
    ck_assert_uint_eq(MmGetMdlByteOffset(mdl), 100);
    IoFreeMdl(mdl);
    free(buf);
}
END_TEST

START_TEST(io_allocate_mdl_primary_becomes_irp_mdl_address)
{
    char buf[64];
    PIRP irp = IoAllocateIrp(1, FALSE);
    ck_assert_ptr_nonnull(irp);
    PMDL mdl = IoAllocateMdl(buf, sizeof(buf), FALSE, FALSE, irp);
    ck_assert_ptr_eq(irp->MdlAddress, mdl);
    IoFreeMdl(mdl);
    IoFreeIrp(irp);
}
END_TEST

START_TEST(io_allocate_mdl_secondary_chains_at_end_of_irp)
{
    char buf[300];
    PIRP irp = IoAllocateIrp(2, FALSE);
    PMDL m1 = IoAllocateMdl(buf, 100, FALSE, FALSE, irp);
    PMDL m2 = IoAllocateMdl(buf + 100, 100, TRUE, FALSE, irp);
    PMDL m3 = IoAllocateMdl(buf + 200, 100, TRUE, FALSE, irp);
    ck_assert_ptr_eq(irp->MdlAddress, m1);
    ck_assert_ptr_eq(m1->Next, m2);
    ck_assert_ptr_eq(m2->Next, m3);
    ck_assert_ptr_null(m3->Next);
    for (PMDL m = irp->MdlAddress, next; m; m = next) {
        next = m->Next;
        IoFreeMdl(m);
    }
    IoFreeIrp(irp);
}
END_TEST

START_TEST(io_allocate_mdl_beyond_4gb_minus_a_page_is_null)
{
    char buf[8];
    ck_assert_ptr_null(IoAllocateMdl(buf, 0xFFFFFFFFu, FALSE, FALSE, NULL));
}
END_TEST

START_TEST(io_allocate_mdl_allocation_failure_is_null)
{
    char buf[8];
    PIRP irp = IoAllocateIrp(1, FALSE);
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_ptr_null(IoAllocateMdl(buf, sizeof(buf), FALSE, FALSE, irp));
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    ck_assert_ptr_null(irp->MdlAddress); /* the IRP is untouched */
    IoFreeIrp(irp);
}
END_TEST

START_TEST(mm_build_mdl_for_non_paged_pool_maps_the_buffer)
{
    char buf[200];
    PMDL mdl = IoAllocateMdl(buf + 3, 150, FALSE, FALSE, NULL);
    MmBuildMdlForNonPagedPool(mdl);
    ck_assert(mdl->MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL);
    ck_assert_ptr_eq(mdl->MappedSystemVa, buf + 3);
    ck_assert_ptr_eq(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority), buf + 3);
    IoFreeMdl(mdl);
}
END_TEST

START_TEST(mm_get_system_address_for_mdl_safe_maps_once)
{
    char buf[200];
    PMDL mdl = IoAllocateMdl(buf + 7, 50, FALSE, FALSE, NULL);
    ck_assert(!(mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA));
    ck_assert_ptr_eq(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute),
                     buf + 7);
    ck_assert(mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA);
    ck_assert_ptr_eq(mdl->MappedSystemVa, buf + 7);
    ck_assert_ptr_eq(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority), buf + 7);
    IoFreeMdl(mdl);
}
END_TEST

START_TEST(mm_initialize_mdl_on_caller_storage)
{
    char buf[100];
    union {
        MDL mdl;
        unsigned char raw[sizeof(MDL) + 2 * sizeof(ULONG_PTR)];
    } storage;
    memset(&storage, 0xCC, sizeof(storage));
    PMDL mdl = MmInitializeMdl(&storage.mdl, buf + 1, 10);
    ck_assert_ptr_eq(mdl, &storage.mdl);
    ck_assert_ptr_null(mdl->Next);
    ck_assert_int_eq(mdl->MdlFlags, 0);
    ck_assert_ptr_eq(MmGetMdlVirtualAddress(mdl), buf + 1);
    ck_assert_uint_eq(mdl->ByteCount, 10);
    ck_assert_int_eq(mdl->Size, (CSHORT)MmSizeOfMdl(buf + 1, 10));
}
END_TEST

static PMDL three_mdl_chain(char *buf)
{
    PMDL a = IoAllocateMdl(buf, 100, FALSE, FALSE, NULL);
    PMDL b = IoAllocateMdl(buf + 1000, 200, FALSE, FALSE, NULL);
    PMDL c = IoAllocateMdl(buf + 3000, 300, FALSE, FALSE, NULL);
    a->Next = b;
    b->Next = c;
    return a;
}

static void free_chain(PMDL m)
{
    while (m) {
        PMDL next = m->Next;
        IoFreeMdl(m);
        m = next;
    }
}

START_TEST(mdl_chain_to_iovec_covers_whole_chain)
{
    char *buf = malloc(4000);
    PMDL chain = three_mdl_chain(buf);
    struct iovec iov[4];
    size_t bytes = 0;
    ck_assert_int_eq(uwdf_mdl_to_iovec(chain, 0, iov, 4, &bytes), 3);
    ck_assert_uint_eq(bytes, 600);
    ck_assert_ptr_eq(iov[0].iov_base, buf);
    ck_assert_uint_eq(iov[0].iov_len, 100);
    ck_assert_ptr_eq(iov[1].iov_base, buf + 1000);
    ck_assert_uint_eq(iov[1].iov_len, 200);
    ck_assert_ptr_eq(iov[2].iov_base, buf + 3000);
    ck_assert_uint_eq(iov[2].iov_len, 300);
    free_chain(chain);
    free(buf);
}
END_TEST

START_TEST(mdl_chain_to_iovec_total_shorter_than_chain)
{
    char *buf = malloc(4000);
    PMDL chain = three_mdl_chain(buf);
    struct iovec iov[4];
    size_t bytes = 0;
    ck_assert_int_eq(uwdf_mdl_to_iovec(chain, 250, iov, 4, &bytes), 2);
    ck_assert_uint_eq(bytes, 250);
    ck_assert_uint_eq(iov[0].iov_len, 100);
    ck_assert_ptr_eq(iov[1].iov_base, buf + 1000);
    ck_assert_uint_eq(iov[1].iov_len, 150); /* last one truncated to fit */
    /* Exactly the first MDL. */
    ck_assert_int_eq(uwdf_mdl_to_iovec(chain, 100, iov, 4, &bytes), 1);
    ck_assert_uint_eq(bytes, 100);
    free_chain(chain);
    free(buf);
}
END_TEST

START_TEST(mdl_chain_to_iovec_chain_shorter_than_total)
{
    char *buf = malloc(4000);
    PMDL chain = three_mdl_chain(buf);
    struct iovec iov[4];
    size_t bytes = 0;
    ck_assert_int_eq(uwdf_mdl_to_iovec(chain, 1000, iov, 4, &bytes), 3);
    ck_assert_uint_eq(bytes, 600); /* the caller decides what a short chain means */
    free_chain(chain);
    free(buf);
}
END_TEST

START_TEST(mdl_chain_to_iovec_too_many_segments_is_minus_one)
{
    char *buf = malloc(4000);
    PMDL chain = three_mdl_chain(buf);
    struct iovec iov[2];
    size_t bytes;
    ck_assert_int_eq(uwdf_mdl_to_iovec(chain, 0, iov, 2, &bytes), -1);
    ck_assert_int_eq(uwdf_mdl_to_iovec(chain, 300, iov, 2, &bytes), 2); /* fits in two */
    ck_assert_uint_eq(bytes, 300);
    ck_assert_int_eq(uwdf_mdl_to_iovec(NULL, 0, iov, 2, &bytes), 0);
    ck_assert_uint_eq(bytes, 0);
    free_chain(chain);
    free(buf);
}
END_TEST

START_TEST(mdl_chain_to_iovec_skips_empty_mdls)
{
    char buf[64];
    PMDL a = IoAllocateMdl(buf, 0, FALSE, FALSE, NULL);
    PMDL b = IoAllocateMdl(buf + 8, 16, FALSE, FALSE, NULL);
    struct iovec iov[1];
    size_t bytes;
    a->Next = b;
    ck_assert_int_eq(uwdf_mdl_to_iovec(a, 0, iov, 1, &bytes), 1);
    ck_assert_ptr_eq(iov[0].iov_base, buf + 8);
    ck_assert_uint_eq(bytes, 16);
    free_chain(a);
}
END_TEST

/* ---- IRPs ---- */

START_TEST(io_size_of_irp_adds_stack_locations)
{
    ck_assert_uint_eq(IoSizeOfIrp(0), sizeof(IRP));
    ck_assert_uint_eq(IoSizeOfIrp(3), sizeof(IRP) + 3 * sizeof(IO_STACK_LOCATION));
}
END_TEST

START_TEST(io_allocate_irp_lays_out_the_stack_as_wdm)
{
    PIRP irp = IoAllocateIrp(3, FALSE);
    ck_assert_ptr_nonnull(irp);
    PIO_STACK_LOCATION stack = (PIO_STACK_LOCATION)(irp + 1);
    ck_assert_int_eq(irp->Type, IO_TYPE_IRP);
    ck_assert_uint_eq(irp->Size, IoSizeOfIrp(3));
    ck_assert_int_eq(irp->StackCount, 3);
    ck_assert_int_eq(irp->CurrentLocation, 4);
    ck_assert_ptr_eq(IoGetNextIrpStackLocation(irp), &stack[2]);
    ck_assert_ptr_null(irp->MdlAddress);
    ck_assert_int_eq(irp->Cancel, FALSE);
    ck_assert_status(irp->IoStatus.Status, STATUS_SUCCESS);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(stack[i].MajorFunction, 0); /* zeroed */

    IoSetNextIrpStackLocation(irp); /* what IoCallDriver does */
    ck_assert_int_eq(irp->CurrentLocation, 3);
    ck_assert_ptr_eq(IoGetCurrentIrpStackLocation(irp), &stack[2]);
    ck_assert_ptr_eq(IoGetNextIrpStackLocation(irp), &stack[1]);
    IoFreeIrp(irp);
}
END_TEST

START_TEST(io_allocate_irp_with_no_stack_locations)
{
    PIRP irp = IoAllocateIrp(0, FALSE);
    ck_assert_ptr_nonnull(irp);
    ck_assert_int_eq(irp->StackCount, 0);
    ck_assert_int_eq(irp->CurrentLocation, 1);
    ck_assert_ptr_eq(IoGetCurrentIrpStackLocation(irp), (PIO_STACK_LOCATION)(irp + 1));
    IoFreeIrp(irp);
}
END_TEST

START_TEST(io_allocate_irp_negative_stack_size_is_null)
{
    ck_assert_ptr_null(IoAllocateIrp(-1, FALSE));
    ck_assert_uint_eq(IoSizeOfIrp(-1), 0);
}
END_TEST

START_TEST(io_allocate_irp_allocation_failure_is_null)
{
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_ptr_null(IoAllocateIrp(2, FALSE));
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
}
END_TEST

START_TEST(io_initialize_irp_on_caller_storage)
{
    USHORT size = IoSizeOfIrp(2);
    PIRP irp = malloc(size);
    memset(irp, 0xAB, size);
    IoInitializeIrp(irp, size, 2);
    ck_assert_int_eq(irp->Type, IO_TYPE_IRP);
    ck_assert_uint_eq(irp->Size, size);
    ck_assert_int_eq(irp->StackCount, 2);
    ck_assert_int_eq(irp->CurrentLocation, 3);
    ck_assert_ptr_eq(IoGetNextIrpStackLocation(irp), (PIO_STACK_LOCATION)(irp + 1) + 1);
    ck_assert_ptr_null(irp->MdlAddress);
    ck_assert_int_eq(irp->Cancel, FALSE);
    free(irp);
}
END_TEST

START_TEST(io_reuse_irp_resets_status_and_cancel)
{
    PIRP irp = IoAllocateIrp(3, FALSE);
    PIO_STACK_LOCATION stack = (PIO_STACK_LOCATION)(irp + 1);
    IoGetNextIrpStackLocation(irp)->MajorFunction = IRP_MJ_READ;
    IoSetNextIrpStackLocation(irp);
    irp->IoStatus.Status = STATUS_CANCELLED;
    irp->IoStatus.Information = 512;
    irp->Cancel = TRUE;
    irp->PendingReturned = TRUE;
    irp->Flags = IRP_NOCACHE;

    IoReuseIrp(irp, STATUS_NOT_SUPPORTED);
    ck_assert_status(irp->IoStatus.Status, STATUS_NOT_SUPPORTED);
    ck_assert_uint_eq(irp->IoStatus.Information, 0);
    ck_assert_int_eq(irp->Cancel, FALSE);
    ck_assert_int_eq(irp->PendingReturned, FALSE);
    ck_assert_uint_eq(irp->Flags, 0);
    ck_assert_int_eq(irp->StackCount, 3);
    ck_assert_uint_eq(irp->Size, IoSizeOfIrp(3));
    ck_assert_int_eq(irp->CurrentLocation, 4);
    ck_assert_ptr_eq(IoGetNextIrpStackLocation(irp), &stack[2]);
    ck_assert_int_eq(stack[2].MajorFunction, 0);
    IoFreeIrp(irp);
}
END_TEST

START_TEST(io_free_irp_leaves_attached_mdls)
{
    char buf[32];
    PIRP irp = IoAllocateIrp(1, FALSE);
    PMDL mdl = IoAllocateMdl(buf, sizeof(buf), FALSE, FALSE, irp);
    IoFreeIrp(irp);
    /* The MDL is still ours (a double free would show under ASan/valgrind). */
    ck_assert_uint_eq(mdl->ByteCount, sizeof(buf));
    IoFreeMdl(mdl);
}
END_TEST

static Suite *memory_suite(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tu_tcase(s, "memory", 0);
    tcase_add_test(tc, memory_create_returns_buffer_of_requested_size);
    tcase_add_test(tc, memory_create_is_page_aligned);
    tcase_add_test(tc, memory_create_buffer_pointer_is_optional);
    tcase_add_test(tc, memory_create_zero_size_is_invalid_parameter);
    tcase_add_test(tc, memory_create_without_a_driver_is_allowed);
    tcase_add_test(tc, memory_create_null_handle_pointer_is_bugcheck);
    tcase_add_test(tc, memory_create_uninitialized_attributes_are_invalid);
    tcase_add_test(tc, memory_create_rejects_synchronization_scope_and_execution_level);
    tcase_add_test(tc, memory_create_fails_under_injected_allocation_failure);
    tcase_add_test(tc, memory_create_survives_failure_of_each_allocation);
    tcase_add_test(tc, preallocated_memory_describes_the_callers_buffer);
    tcase_add_test(tc, preallocated_null_buffer_is_invalid_parameter);
    tcase_add_test(tc, preallocated_zero_size_is_invalid_parameter);
    tcase_add_test(tc, assign_buffer_replaces_buffer_and_size);
    tcase_add_test(tc, assign_buffer_zero_size_or_null_is_invalid_parameter);
    tcase_add_test(tc, assign_buffer_on_framework_memory_is_bugcheck);
    tcase_add_test(tc, copy_to_buffer_copies_from_offset);
    tcase_add_test(tc, copy_to_buffer_zero_length_or_null_is_invalid_parameter);
    tcase_add_test(tc, copy_to_buffer_offset_past_end_is_buffer_too_small);
    tcase_add_test(tc, copy_to_buffer_length_past_end_is_buffer_too_small);
    tcase_add_test(tc, copy_from_buffer_copies_to_offset);
    tcase_add_test(tc, copy_from_buffer_zero_length_or_null_is_invalid_parameter);
    tcase_add_test(tc, copy_from_buffer_offset_past_end_is_invalid_buffer_size);
    tcase_add_test(tc, copy_from_buffer_length_past_end_is_invalid_buffer_size);
    tcase_add_test(tc, copy_from_buffer_into_read_only_is_access_violation);
    tcase_add_test(tc, memory_deleted_handle_is_bugcheck);
    tcase_add_test(tc, memory_wrong_type_handle_is_bugcheck);
    tcase_add_test(tc, memory_null_handle_is_required_parameter_bugcheck);
    tcase_add_test(tc, memory_cleanup_runs_before_destroy_with_typed_context);
    tcase_add_test(tc, memory_reference_keeps_buffer_until_dereference);
    tcase_add_test(tc, memory_parented_to_another_object_is_deleted_with_it);
    tcase_add_test(tc, memory_default_parent_is_the_driver);

    tc = tu_tcase(s, "offsets", 0);
    tcase_add_test(tc, offsets_null_is_whole_buffer);
    tcase_add_test(tc, offsets_zero_length_is_rest_of_buffer);
    tcase_add_test(tc, offsets_explicit_range_inside_buffer);
    tcase_add_test(tc, offsets_past_end_is_integer_overflow);
    tcase_add_test(tc, offsets_sum_overflow_is_integer_overflow);

    tc = tu_tcase(s, "lookaside", 0);
    tcase_add_test(tc, lookaside_create_zero_size_is_invalid_parameter);
    tcase_add_test(tc, lookaside_memory_attributes_with_parent_are_rejected);
    tcase_add_test(tc, lookaside_memory_has_list_size_and_is_page_aligned);
    tcase_add_test(tc, lookaside_buffers_are_recycled);
    tcase_add_test(tc, lookaside_cache_is_bounded);
    tcase_add_test(tc, lookaside_is_safe_across_threads);
    tcase_add_test(tc, lookaside_memory_uses_the_lists_memory_attributes);
    tcase_add_test(tc, deleting_the_lookaside_deletes_its_outstanding_memory);
    tcase_add_test(tc, lookaside_wrong_handle_type_is_bugcheck);
    tcase_add_test(tc, assign_buffer_on_lookaside_memory_is_bugcheck);
    tcase_add_test(tc, lookaside_allocation_failure_is_insufficient_resources);

    tc = tu_tcase(s, "mdl", 0);
    tcase_add_test(tc, mm_size_of_mdl_counts_spanned_pages);
    tcase_add_test(tc, io_allocate_mdl_describes_the_buffer);
    tcase_add_test(tc, io_allocate_mdl_primary_becomes_irp_mdl_address);
    tcase_add_test(tc, io_allocate_mdl_secondary_chains_at_end_of_irp);
    tcase_add_test(tc, io_allocate_mdl_beyond_4gb_minus_a_page_is_null);
    tcase_add_test(tc, io_allocate_mdl_allocation_failure_is_null);
    tcase_add_test(tc, mm_build_mdl_for_non_paged_pool_maps_the_buffer);
    tcase_add_test(tc, mm_get_system_address_for_mdl_safe_maps_once);
    tcase_add_test(tc, mm_initialize_mdl_on_caller_storage);
    tcase_add_test(tc, mdl_chain_to_iovec_covers_whole_chain);
    tcase_add_test(tc, mdl_chain_to_iovec_total_shorter_than_chain);
    tcase_add_test(tc, mdl_chain_to_iovec_chain_shorter_than_total);
    tcase_add_test(tc, mdl_chain_to_iovec_too_many_segments_is_minus_one);
    tcase_add_test(tc, mdl_chain_to_iovec_skips_empty_mdls);

    tc = tu_tcase(s, "irp", 0);
    tcase_add_test(tc, io_size_of_irp_adds_stack_locations);
    tcase_add_test(tc, io_allocate_irp_lays_out_the_stack_as_wdm);
    tcase_add_test(tc, io_allocate_irp_with_no_stack_locations);
    tcase_add_test(tc, io_allocate_irp_negative_stack_size_is_null);
    tcase_add_test(tc, io_allocate_irp_allocation_failure_is_null);
    tcase_add_test(tc, io_initialize_irp_on_caller_storage);
    tcase_add_test(tc, io_reuse_irp_resets_status_and_cancel);
    tcase_add_test(tc, io_free_irp_leaves_attached_mdls);
    return s;
}

int main(void)
{
    return tu_main(memory_suite(), "test_memory");
}
