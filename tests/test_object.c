/* The object model (objects, contexts, parents, references, deletion order,
 * handle validation), drivers and control devices, and the runtime pieces
 * underneath: IRQL emulation, time units, statuses, events, strings, and
 * the framework's state machines (white-box, through lib/internal.h). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/internal.h"

/* ---- context types ---- */

typedef struct {
    int value;
    char bytes[60];
} PLAIN_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE(PLAIN_CONTEXT)

typedef struct {
    long long counter;
} NAMED_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(NAMED_CONTEXT, named_context)

/* ---- an ordered log of callbacks: "<event><tag>" pairs ---- */

typedef struct {
    char tag;
} LOG_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(LOG_CONTEXT, log_context)

static char event_log[64];
static int event_len;

static void log_reset(void)
{
    event_len = 0;
    event_log[0] = '\0';
}

static void log_push(char event, char tag)
{
    if (event_len + 2 < (int)sizeof(event_log)) {
        event_log[event_len++] = event;
        event_log[event_len++] = tag;
        event_log[event_len] = '\0';
    }
}

static VOID log_cleanup(WDFOBJECT object)
{
    log_push('c', log_context(object)->tag);
}

static VOID log_destroy(WDFOBJECT object)
{
    log_push('d', log_context(object)->tag);
}

static int log_index(char event, char tag)
{
    for (int i = 0; i + 1 < event_len; i += 2)
        if (event_log[i] == event && event_log[i + 1] == tag)
            return i / 2;
    ck_abort_msg("event %c%c missing from log '%s'", event, tag, event_log);
    return -1;
}

static WDFOBJECT make_logged(char tag, WDFOBJECT parent)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, LOG_CONTEXT);
    attrs.EvtCleanupCallback = log_cleanup;
    attrs.EvtDestroyCallback = log_destroy;
    attrs.ParentObject = parent;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    log_context(obj)->tag = tag;
    return obj;
}

/* ---- WdfObjectCreate and attributes ---- */

START_TEST(object_create_without_attributes)
{
    WDFOBJECT obj = NULL;
    ck_assert_status(WdfObjectCreate(WDF_NO_OBJECT_ATTRIBUTES, &obj), STATUS_SUCCESS);
    ck_assert_ptr_nonnull(obj);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(object_create_with_initialized_attributes)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(object_create_memset_zero_attributes_are_invalid)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj = (WDFOBJECT)1;
    memset(&attrs, 0, sizeof(attrs));
    attrs.Size = sizeof(attrs); /* sized but never WDF_OBJECT_ATTRIBUTES_INIT'ed */
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
    ck_assert_ptr_null(obj);
}
END_TEST

START_TEST(object_create_bad_attributes_size_is_info_length_mismatch)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.Size = sizeof(attrs) + 8;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_INFO_LENGTH_MISMATCH);
    attrs.Size = 0;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_INFO_LENGTH_MISMATCH);
}
END_TEST

START_TEST(object_create_bad_context_type_info_size_is_info_length_mismatch)
{
    static const WDF_OBJECT_CONTEXT_TYPE_INFO bad = { 4, (PCHAR) "BAD", 8, &bad, NULL };
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ContextTypeInfo = &bad;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_INFO_LENGTH_MISMATCH);
}
END_TEST

START_TEST(object_create_context_size_override_smaller_than_type_is_invalid)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    attrs.ContextSizeOverride = sizeof(PLAIN_CONTEXT) - 1;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
    /* An override without a context type is just as invalid. */
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ContextSizeOverride = 128;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
}
END_TEST

START_TEST(object_create_context_size_override_larger_gives_zeroed_room)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    const size_t big = sizeof(PLAIN_CONTEXT) + 1000;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    attrs.ContextSizeOverride = big;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    unsigned char *ctx = (unsigned char *)WdfObjectGet_PLAIN_CONTEXT(obj);
    for (size_t i = 0; i < big; i++)
        ck_assert_uint_eq(ctx[i], 0);
    memset(ctx, 0x77, big); /* all of it is ours (ASan checks) */
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(object_create_accepts_execution_level_but_not_synchronization_scope)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ExecutionLevel = WdfExecutionLevelPassive;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    WdfObjectDelete(obj);
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.SynchronizationScope = WdfSynchronizationScopeDevice;
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID);
}
END_TEST

START_TEST(object_create_null_handle_pointer_is_bugcheck)
{
    ck_assert_status(WdfObjectCreate(NULL, NULL), STATUS_INVALID_PARAMETER);
    tu_expect_bugcheck_reason(WDF_REQUIRED_PARAMETER_IS_NULL, "WdfObjectCreate");
}
END_TEST

START_TEST(object_create_allocation_failure_is_insufficient_resources)
{
    WDFOBJECT obj = (WDFOBJECT)1;
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_INSUFFICIENT_RESOURCES);
    ck_assert_ptr_null(obj);
}
END_TEST

/* ---- typed contexts ---- */

START_TEST(typed_context_is_zeroed)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    PLAIN_CONTEXT *ctx = WdfObjectGet_PLAIN_CONTEXT(obj);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(ctx->value, 0);
    for (size_t i = 0; i < sizeof(ctx->bytes); i++)
        ck_assert_int_eq(ctx->bytes[i], 0);
    ck_assert_ptr_eq(WdfObjectGetTypedContext(obj, PLAIN_CONTEXT), ctx);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(typed_context_with_name_uses_the_named_accessor)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, NAMED_CONTEXT);
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    named_context(obj)->counter = 7;
    ck_assert_int_eq(WdfObjectGetTypedContext(obj, NAMED_CONTEXT)->counter, 7);
    ck_assert_uint_eq((uintptr_t)named_context(obj) % 16, 0); /* suitably aligned */
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(context_get_object_round_trips)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfObjectContextGetObject(WdfObjectGet_PLAIN_CONTEXT(obj)), obj);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(typed_context_of_absent_type_is_null)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj, bare;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    ck_assert_ptr_null(named_context(obj));
    ck_assert_status(WdfObjectCreate(NULL, &bare), STATUS_SUCCESS);
    ck_assert_ptr_null(WdfObjectGet_PLAIN_CONTEXT(bare));
    WdfObjectDelete(obj);
    WdfObjectDelete(bare);
}
END_TEST

/* ---- WdfObjectAllocateContext ---- */

START_TEST(allocate_context_adds_a_second_type)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    PVOID extra = NULL;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, NAMED_CONTEXT);
    ck_assert_status(WdfObjectAllocateContext(obj, &attrs, &extra), STATUS_SUCCESS);
    ck_assert_ptr_nonnull(extra);
    ck_assert_ptr_eq(named_context(obj), extra);
    ck_assert_int_eq(((NAMED_CONTEXT *)extra)->counter, 0);
    ck_assert_ptr_eq(WdfObjectContextGetObject(extra), obj);
    ck_assert_ptr_nonnull(WdfObjectGet_PLAIN_CONTEXT(obj)); /* the first one is still there */
    ck_assert_ptr_ne(WdfObjectGet_PLAIN_CONTEXT(obj), extra);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(allocate_context_same_type_again_is_name_exists_and_returns_existing)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    PVOID again = NULL;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    ck_assert_status(WdfObjectCreate(&attrs, &obj), STATUS_SUCCESS);
    WdfObjectGet_PLAIN_CONTEXT(obj)->value = 99;
    NTSTATUS status = WdfObjectAllocateContext(obj, &attrs, &again);
    ck_assert_status(status, STATUS_OBJECT_NAME_EXISTS);
    ck_assert_nt_success(status); /* informational, not an error */
    ck_assert_ptr_eq(again, WdfObjectGet_PLAIN_CONTEXT(obj));
    ck_assert_int_eq(((PLAIN_CONTEXT *)again)->value, 99);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(allocate_context_with_parent_is_parent_assignment_not_allowed)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj, other;
    PVOID ctx = NULL;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    ck_assert_status(WdfObjectCreate(NULL, &other), STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, PLAIN_CONTEXT);
    attrs.ParentObject = other;
    ck_assert_status(WdfObjectAllocateContext(obj, &attrs, &ctx),
                     STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED);
    ck_assert_ptr_null(ctx);
    WdfObjectDelete(obj);
    WdfObjectDelete(other);
}
END_TEST

START_TEST(allocate_context_without_type_is_object_name_invalid)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    PVOID ctx = NULL;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    ck_assert_status(WdfObjectAllocateContext(obj, &attrs, &ctx), STATUS_OBJECT_NAME_INVALID);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(allocate_context_allocation_failure_is_insufficient_resources)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    PVOID ctx = NULL;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, NAMED_CONTEXT);
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(WdfObjectAllocateContext(obj, &attrs, &ctx), STATUS_INSUFFICIENT_RESOURCES);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    ck_assert_ptr_null(named_context(obj));
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(allocate_context_callbacks_run_at_delete)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    PVOID ctx;
    log_reset();
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, LOG_CONTEXT);
    attrs.EvtCleanupCallback = log_cleanup;
    attrs.EvtDestroyCallback = log_destroy;
    ck_assert_status(WdfObjectAllocateContext(obj, &attrs, &ctx), STATUS_SUCCESS);
    ((LOG_CONTEXT *)ctx)->tag = 'x';
    WdfObjectDelete(obj);
    ck_assert_str_eq(event_log, "cxdx");
}
END_TEST

/* ---- parents, deletion order, references ---- */

START_TEST(deleting_a_parent_deletes_its_children)
{
    log_reset();
    WDFOBJECT parent = make_logged('P', NULL);
    WDFOBJECT child = make_logged('C', parent);
    make_logged('D', parent);
    make_logged('G', child);
    WdfObjectDelete(parent);
    ck_assert_int_eq(event_len, 8 * 2); /* cleanup and destroy for all four */
    ck_assert_ptr_null(log_context(child));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, NULL); /* the child's handle died with it */
}
END_TEST

START_TEST(cleanup_and_destroy_run_children_first_cleanup_before_destroy)
{
    log_reset();
    WDFOBJECT parent = make_logged('P', NULL);
    WDFOBJECT child = make_logged('C', parent);
    make_logged('G', child);
    WdfObjectDelete(parent);
    const char tags[] = "PCG";
    for (int i = 0; i < 3; i++)
        ck_assert_msg(log_index('c', tags[i]) < log_index('d', tags[i]),
                      "%c: destroy before cleanup in '%s'", tags[i], event_log);
    /* Children before parents, for both callbacks. */
    ck_assert_int_lt(log_index('c', 'G'), log_index('c', 'C'));
    ck_assert_int_lt(log_index('c', 'C'), log_index('c', 'P'));
    ck_assert_int_lt(log_index('d', 'G'), log_index('d', 'C'));
    ck_assert_int_lt(log_index('d', 'C'), log_index('d', 'P'));
}
END_TEST

/* Every child is deleted (cleaned up) before any is destroyed, as KMDF
 * disposes all children before it releases them: a child stays usable
 * while its siblings go. Newest first. */
START_TEST(siblings_are_all_deleted_before_any_is_destroyed)
{
    log_reset();
    WDFOBJECT parent = make_logged('P', NULL);
    WDFOBJECT a = make_logged('A', parent);
    make_logged('B', parent);
    make_logged('a', a);
    make_logged('C', parent);
    WdfObjectDelete(parent);
    ck_assert_str_eq(event_log, "cCcBcadacAdCdBdAcPdP");
}
END_TEST

START_TEST(deleting_a_child_leaves_the_parent)
{
    log_reset();
    WDFOBJECT parent = make_logged('P', NULL);
    WDFOBJECT child = make_logged('C', parent);
    WdfObjectDelete(child);
    ck_assert_str_eq(event_log, "cCdC");
    ck_assert_int_eq(log_context(parent)->tag, 'P');
    WdfObjectDelete(parent);
    ck_assert_str_eq(event_log, "cCdCcPdP");
}
END_TEST

START_TEST(extra_reference_delays_destroy_not_cleanup)
{
    log_reset();
    WDFOBJECT obj = make_logged('R', NULL);
    WdfObjectReference(obj);
    WdfObjectDelete(obj);
    ck_assert_str_eq(event_log, "cR");
    ck_assert_int_eq(log_context(obj)->tag, 'R'); /* handle still valid while referenced */
    WdfObjectDereference(obj);
    ck_assert_str_eq(event_log, "cRdR");
}
END_TEST

START_TEST(reference_with_tag_pairs_like_plain_reference)
{
    log_reset();
    WDFOBJECT obj = make_logged('T', NULL);
    WdfObjectReferenceWithTag(obj, (PVOID)0x1234);
    WdfObjectDelete(obj);
    ck_assert_str_eq(event_log, "cT");
    WdfObjectDereferenceWithTag(obj, (PVOID)0x1234);
    ck_assert_str_eq(event_log, "cTdT");
}
END_TEST

START_TEST(dereference_without_reference_is_bugcheck)
{
    WDFOBJECT obj;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    WdfObjectDereference(obj);
    tu_expect_bugcheck_reason(WDF_OBJECT_ERROR, "WdfObjectDereference");
    WdfObjectDelete(obj); /* still alive: the bad dereference was refused */
}
END_TEST

/* ---- handle validation ---- */

START_TEST(deleted_handle_is_bugcheck)
{
    WDFOBJECT obj;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    WdfObjectDelete(obj);
    WdfObjectDelete(obj);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "WdfObjectDelete");
    WdfObjectReference(obj);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "not a live");
}
END_TEST

START_TEST(stale_handle_stays_invalid_after_slot_reuse)
{
    WDFOBJECT old, fresh;
    ck_assert_status(WdfObjectCreate(NULL, &old), STATUS_SUCCESS);
    WdfObjectDelete(old);
    ck_assert_status(WdfObjectCreate(NULL, &fresh), STATUS_SUCCESS);
    ck_assert_ptr_ne(old, fresh);
    WdfObjectDelete(old);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, NULL);
    WdfObjectDelete(fresh);
}
END_TEST

/* UwdfReleaseObjectTable: what a host calls before it unloads libuwdf. */
START_TEST(object_table_release_is_refused_while_an_object_is_live_or_above_passive)
{
    WDFOBJECT obj;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    struct uwdf_handle_slot *chunk = atomic_load(&uwdf_handle_chunks[0]);
    ck_assert_status(UwdfReleaseObjectTable(), STATUS_DEVICE_BUSY);
    ck_assert_ptr_eq(atomic_load(&uwdf_handle_chunks[0]), chunk);
    WdfObjectDelete(obj);
    KIRQL old = uwdf_irql_raise_to_dispatch();
    NTSTATUS status = UwdfReleaseObjectTable();
    uwdf_irql_restore(old);
    ck_assert_status(status, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_ptr_eq(atomic_load(&uwdf_handle_chunks[0]), chunk);
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    WdfObjectReference(obj); /* still valid */
    WdfObjectDereference(obj);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(object_table_release_frees_it_and_old_handles_stay_invalid)
{
    WDFOBJECT old, fresh;
    ck_assert_status(WdfObjectCreate(NULL, &old), STATUS_SUCCESS);
    uint32_t index = (uint32_t)((uintptr_t)old & ((1u << UWDF_HANDLE_INDEX_BITS) - 1));
    struct uwdf_handle_slot *chunk = atomic_load(&uwdf_handle_chunks[index >> UWDF_HANDLE_CHUNK_BITS]);
    WdfObjectDelete(old);
    ck_assert_status(UwdfReleaseObjectTable(), STATUS_SUCCESS);
    /* Back on the shared empty chunk (the freed one is not read again). */
    ck_assert_ptr_ne(atomic_load(&uwdf_handle_chunks[index >> UWDF_HANDLE_CHUNK_BITS]), chunk);
    ck_assert_ptr_null(atomic_load(&uwdf_handle_slot(index)->obj));
    /* A new table: slots are handed out from the first again, with
     * generations above every one before the release. */
    ck_assert_status(WdfObjectCreate(NULL, &fresh), STATUS_SUCCESS);
    ck_assert_ptr_ne(old, fresh);
    WdfObjectDelete(old);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, NULL);
    WdfObjectReference(fresh);
    WdfObjectDereference(fresh);
    WdfObjectDelete(fresh);
}
END_TEST

START_TEST(garbage_handle_is_bugcheck)
{
    WdfObjectDelete((WDFOBJECT)0x12345);
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "WdfObjectDelete");
    ck_assert_ptr_null(WdfDriverWdmGetDriverObject((WDFDRIVER)(uintptr_t)0xdeadbeefcafe));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "WdfDriverWdmGetDriverObject");

    /* Near misses of a live handle (index in the low 24 bits, generation
     * above): the top bit set, index 0 with its generation, the next
     * generation, an index whose part of the table was never allocated. */
    WDFOBJECT obj;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    uintptr_t v = (uintptr_t)obj, index_mask = (1u << 24) - 1;
    const uintptr_t near[] = {
        v | ((uintptr_t)1 << 63),
        v & ~index_mask,
        v + (index_mask + 1),
        (v & ~index_mask) | index_mask,
    };
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        WdfObjectReference((WDFOBJECT)near[i]);
        tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "WdfObjectReference");
    }
    WdfObjectDelete(obj); /* still live: none of them touched it */
}
END_TEST

START_TEST(wrong_type_handle_is_bugcheck)
{
    WDFOBJECT obj;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    ck_assert_ptr_null(WdfDriverWdmGetDriverObject((WDFDRIVER)obj));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "is a WDFOBJECT, expected a WDFDRIVER");
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(null_handle_is_required_parameter_bugcheck)
{
    WdfObjectDelete(NULL);
    tu_expect_bugcheck_reason(WDF_REQUIRED_PARAMETER_IS_NULL, "WdfObjectDelete");
    ck_assert_ptr_null(WdfObjectGetTypedContext(NULL, PLAIN_CONTEXT));
    tu_expect_bugcheck_reason(WDF_REQUIRED_PARAMETER_IS_NULL, NULL);
}
END_TEST

/* Without a callback a bug check prints and aborts, like the real one
 * stops the machine. */
static void trigger_default_bugcheck(int report_fd)
{
    UwdfSetBugCheckCallback(NULL, NULL);
    dup2(report_fd, STDERR_FILENO); /* keep the expected report out of the test log */
    WdfObjectDelete((WDFOBJECT)0x12345);
}

START_TEST(default_bugcheck_aborts)
{
    int devnull = open("/dev/null", O_WRONLY);
    trigger_default_bugcheck(devnull);
    ck_abort_msg("bug check returned");
}
END_TEST

/* Reads what the bug check printed (tu_child_must_abort forks, so this
 * also runs when Check does not fork, e.g. under valgrind). */
START_TEST(default_bugcheck_prints_code_and_reason_then_aborts)
{
    char report[2048];
    tu_child_must_abort(trigger_default_bugcheck, report, sizeof(report));
    ck_assert_msg(strstr(report, "0x10D") && strstr(report, "WDF_INVALID_HANDLE") &&
                      strstr(report, "WdfObjectDelete"),
                  "report: %s", report);
}
END_TEST

/* ---- driver and device ---- */

START_TEST(driver_create_twice_is_invalid_device_state)
{
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver = tu_make_driver(), second = NULL;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    ck_assert_status(WdfDriverCreate(NULL, NULL, NULL, &cfg, &second), STATUS_INVALID_DEVICE_STATE);
    ck_assert_ptr_null(second);
    WdfObjectDelete(driver);
    /* After unload a new driver may be created. */
    ck_assert_status(WdfDriverCreate(NULL, NULL, NULL, &cfg, &second), STATUS_SUCCESS);
    WdfObjectDelete(second);
}
END_TEST

START_TEST(driver_config_bad_size_is_info_length_mismatch)
{
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    cfg.Size = sizeof(cfg) - 4;
    ck_assert_status(WdfDriverCreate(NULL, NULL, NULL, &cfg, &driver), STATUS_INFO_LENGTH_MISMATCH);
    ck_assert_ptr_null(WdfGetDriver());
}
END_TEST

START_TEST(driver_with_parent_is_parent_assignment_not_allowed)
{
    WDF_DRIVER_CONFIG cfg;
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFOBJECT obj;
    WDFDRIVER driver;
    ck_assert_status(WdfObjectCreate(NULL, &obj), STATUS_SUCCESS);
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ParentObject = obj;
    ck_assert_status(WdfDriverCreate(NULL, NULL, &attrs, &cfg, &driver),
                     STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED);
    WdfObjectDelete(obj);
}
END_TEST

START_TEST(driver_wdm_get_driver_object_is_non_null)
{
    WDFDRIVER driver = tu_make_driver();
    PDRIVER_OBJECT wdm = WdfDriverWdmGetDriverObject(driver);
    ck_assert_ptr_nonnull(wdm);
    ck_assert_ptr_eq(WdfDriverWdmGetDriverObject(driver), wdm); /* stable */
    ck_assert_uint_gt(wdm->DriverName.Length, 0);
    ck_assert_ptr_eq(WdfGetDriver(), driver);
    WdfObjectDelete(driver);
    ck_assert_ptr_null(WdfGetDriver());
}
END_TEST

static int unload_calls;
static VOID count_unload(WDFDRIVER Driver)
{
    (void)Driver;
    unload_calls++;
}

START_TEST(driver_unload_callback_runs_when_the_driver_is_deleted)
{
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    cfg.EvtDriverUnload = count_unload;
    unload_calls = 0;
    ck_assert_status(WdfDriverCreate(NULL, NULL, NULL, &cfg, &driver), STATUS_SUCCESS);
    ck_assert_int_eq(unload_calls, 0);
    WdfObjectDelete(driver);
    ck_assert_int_eq(unload_calls, 1);
}
END_TEST

START_TEST(control_device_is_created_and_finishes_initializing)
{
    WDFDRIVER driver = tu_make_driver();
    WDFDEVICE device;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    ck_assert_status(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device), STATUS_SUCCESS);
    ck_assert_ptr_null(init); /* the framework took it */
    PDEVICE_OBJECT wdm = WdfDeviceWdmGetDeviceObject(device);
    ck_assert_ptr_nonnull(wdm);
    ck_assert(wdm->Flags & DO_DEVICE_INITIALIZING);
    WdfControlFinishInitializing(device);
    ck_assert(!(wdm->Flags & DO_DEVICE_INITIALIZING));
    ck_assert_ptr_eq(wdm->DriverObject, WdfDriverWdmGetDriverObject(driver));
    ck_assert_ptr_eq(WdfDeviceGetDriver(device), driver);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(device_create_with_parent_is_not_allowed_and_init_stays_with_caller)
{
    WDFDRIVER driver = tu_make_driver();
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFDEVICE device;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ParentObject = driver;
    ck_assert_status(WdfDeviceCreate(&init, &attrs, &device),
                     STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED);
    ck_assert_ptr_nonnull(init);
    WdfDeviceInitFree(init);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(deleting_the_driver_deletes_devices_and_objects_under_it)
{
    WDFDRIVER driver = tu_make_driver();
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFDEVICE device;
    log_reset();
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, LOG_CONTEXT);
    attrs.EvtDestroyCallback = log_destroy;
    ck_assert_status(WdfDeviceCreate(&init, &attrs, &device), STATUS_SUCCESS);
    log_context(device)->tag = 'V';
    WdfControlFinishInitializing(device);
    WDFOBJECT generic = make_logged('O', NULL);   /* default parent: the driver */
    WDFOBJECT under_device = make_logged('U', device);
    (void)generic;
    (void)under_device;
    WdfObjectDelete(driver);
    ck_assert_int_ge(log_index('d', 'V'), 0);
    ck_assert_int_ge(log_index('d', 'O'), 0);
    ck_assert_int_lt(log_index('d', 'U'), log_index('d', 'V'));
    ck_assert_ptr_null(WdfDeviceWdmGetDeviceObject(device));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, NULL);
}
END_TEST

/* ---- a device's queue table, read with no lock (lib/queue.c) ---- */

static VOID qt_default(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    WdfRequestComplete(req, STATUS_SUCCESS);
}

struct qt_delete {
    WDFDEVICE device;
    struct uwdf_device *dev;
    WDFQUEUE queue;
    atomic_bool done;
};

static void *qt_delete_queue(void *arg)
{
    struct qt_delete *d = arg;
    WdfObjectDelete(d->queue);
    atomic_store(&d->done, true);
    return NULL;
}

/* A control device whose default queue d->queue is to be deleted. */
static WDFDRIVER qt_device_with_default_queue(struct qt_delete *d)
{
    WDFDRIVER driver = tu_make_driver();
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_status(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &d->device), STATUS_SUCCESS);
    WdfControlFinishInitializing(d->device);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDefault = qt_default;
    ck_assert_status(WdfIoQueueCreate(d->device, &c, WDF_NO_OBJECT_ATTRIBUTES, &d->queue), STATUS_SUCCESS);
    d->dev = (struct uwdf_device *)uwdf_object_lookup(d->device, UWDF_OBJ_DEVICE, "test");
    return driver;
}

/* A packet's lookup counts itself in queue_readers (of its epoch's
 * parity) from before its read of the table until it holds its reference
 * on the queue. A queue's deletion takes it out of the table at once, and then waits for every lookup in
 * progress, which may have read it before, so that none references a freed
 * queue. One such lookup is held open here by hand. */
START_TEST(queue_deletion_waits_for_a_lookup_in_progress)
{
    struct qt_delete d = { 0 };
    WDFDRIVER driver = qt_device_with_default_queue(&d);
    struct uwdf_device *dev = d.dev;
    /* _i 1: a lookup that read the epoch before an earlier deletion moved
     * it, counted in the other parity. */
    atomic_uint *held = &dev->queue_readers[(atomic_load(&dev->queue_epoch) + (unsigned)_i) & 1];
    atomic_fetch_add(held, 1);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, qt_delete_queue, &d), 0);
    for (int i = 0; i < 2000 && WdfDeviceGetDefaultQueue(d.device) != NULL; i++)
        usleep(1000);
    ck_assert_ptr_null(WdfDeviceGetDefaultQueue(d.device)); /* out of the table */
    usleep(100 * 1000);
    ck_assert(!atomic_load(&d.done)); /* but not gone while the lookup may hold it */
    atomic_fetch_sub(held, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert(atomic_load(&d.done));
    WdfObjectDelete(driver);
}
END_TEST

/* Packets that keep arriving keep lookups in progress without a gap: each
 * new one counts itself in before the one before it is done, as busy
 * senders on several CPUs do. The deletion must still end: it waits only
 * for lookups that began before it took the queue out of the table. */
START_TEST(queue_deletion_ends_while_lookups_overlap_without_a_gap)
{
    struct qt_delete d = { 0 };
    WDFDRIVER driver = qt_device_with_default_queue(&d);
    struct uwdf_device *dev = d.dev;
    atomic_uint *held = &dev->queue_readers[atomic_load(&dev->queue_epoch) & 1];
    atomic_fetch_add(held, 1);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, qt_delete_queue, &d), 0);
    /* Hand over hand for up to 2 s: the next lookup in, then the last out. */
    for (int i = 0; i < 20000 && !atomic_load(&d.done); i++) {
        atomic_uint *next = &dev->queue_readers[atomic_load(&dev->queue_epoch) & 1];
        atomic_fetch_add(next, 1);
        atomic_fetch_sub(held, 1);
        held = next;
        usleep(100);
    }
    bool ended = atomic_load(&d.done);
    atomic_fetch_sub(held, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(ended, "the deletion waited as long as lookups kept overlapping");
    WdfObjectDelete(driver);
}
END_TEST

/* ---- state machines ----
 * Every named transition of the four state machines is tried from every
 * state: the ones the documented tables (lib/queue.h, lib/iotarget.h,
 * lib/flt.h) list are silent, every other one is a verifier bug check
 * that names the transition and the state it left. The tables are written
 * out here again, so a change to a transition's bitmask fails the test. */

#define BIT(s) (1u << (s))

/* After a transition from state `from`: silent when legal, otherwise one
 * bug check naming it. */
static void expect_transition_check(bool legal, const char *name, const char *from_name, unsigned from,
                                    unsigned to)
{
    if (legal) {
        ck_assert_msg(tu_last_bugcheck.count == 0, "'%s' from %s bug-checked: %s", name, from_name,
                      tu_last_bugcheck.reason);
        return;
    }
    char want[96];
    snprintf(want, sizeof(want), "illegal state transition '%s' from %s", name, from_name);
    ck_assert_msg(tu_last_bugcheck.count == 1, "'%s' from %s: no bug check", name, from_name);
    ck_assert_uint_eq(tu_last_bugcheck.p[2], from);
    ck_assert_uint_eq(tu_last_bugcheck.p[3], to);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, want);
}

static const char *const qs_names[] = { "NONE", "QUEUED", "CANCELING", "OWNED", "COMPLETING", "COMPLETED",
                                        "FORWARDED" };

START_TEST(request_in_queue_transitions_follow_their_table)
{
    enum { N = UWDF_QS_NONE, Q = UWDF_QS_QUEUED, X = UWDF_QS_CANCELING, O = UWDF_QS_OWNED,
           C = UWDF_QS_COMPLETING, D = UWDF_QS_COMPLETED, F = UWDF_QS_FORWARDED };
    static const struct {
        void (*fn)(struct uwdf_request *r);
        const char *name;
        unsigned from;
        unsigned to;
    } table[] = {
        { uwdf_qs_queue, "queue", BIT(N), Q },
        { uwdf_qs_cancel, "cancel", BIT(Q) | BIT(X), X },
        { uwdf_qs_present, "present", BIT(Q) | BIT(X), O },
        { uwdf_qs_give_back, "give_back", BIT(N) | BIT(F), O },
        { uwdf_qs_take, "take", BIT(N), O },
        { uwdf_qs_begin_completion, "begin_completion", BIT(O), C },
        { uwdf_qs_forward, "forward", BIT(O), F },
        { uwdf_qs_unqueue, "unqueue", BIT(O), N },
        { uwdf_qs_complete, "complete", BIT(N) | BIT(X) | BIT(O) | BIT(C) | BIT(F), D },
        { uwdf_qs_recycle, "recycle", BIT(N) | BIT(D), N },
    };
    static struct uwdf_request r; /* large; only its state word and handle are read */
    ck_assert_uint_eq(uwdf_qstate_machine.count, RTL_NUMBER_OF(qs_names));
    UwdfSetVerifier(TRUE);
    for (size_t i = 0; i < RTL_NUMBER_OF(table); i++)
        for (unsigned s = 0; s < RTL_NUMBER_OF(qs_names); s++) {
            atomic_store(&r.qstate, (uint8_t)s);
            table[i].fn(&r);
            expect_transition_check(table[i].from & BIT(s), table[i].name, qs_names[s], s, table[i].to);
            ck_assert_uint_eq(atomic_load(&r.qstate), table[i].to); /* it happens all the same */
        }
}
END_TEST

static const char *const queue_names[] = { "HALTED", "STOPPED", "DRAINED", "STARTED", "DELETING" };

START_TEST(queue_transitions_follow_their_table)
{
    enum { H = UWDF_QUEUE_HALTED, S = UWDF_QUEUE_STOPPED, D = UWDF_QUEUE_DRAINED, A = UWDF_QUEUE_STARTED,
           X = UWDF_QUEUE_DELETING };
    static const struct {
        void (*fn)(struct uwdf_queue *q);
        const char *name;
        unsigned to[5]; /* by the state left; X: illegal */
    } table[] = {
        { uwdf_queue_start_locked, "start", { [H] = A, [S] = A, [D] = A, [A] = A, [X] = X } },
        { uwdf_queue_stop_locked, "stop", { [H] = S, [S] = S, [D] = S, [A] = S, [X] = X } },
        { uwdf_queue_drain_locked, "drain", { [H] = H, [S] = H, [D] = D, [A] = D, [X] = X } },
        { uwdf_queue_stop_and_purge_locked, "stop_and_purge", { [H] = H, [S] = S, [D] = H, [A] = S, [X] = X } },
        { uwdf_queue_delete_locked, "delete", { [H] = X, [S] = X, [D] = X, [A] = X, [X] = X } },
    };
    static const unsigned legal = BIT(H) | BIT(S) | BIT(D) | BIT(A);
    static struct uwdf_queue q;
    ck_assert_uint_eq(uwdf_queue_machine.count, RTL_NUMBER_OF(queue_names));
    UwdfSetVerifier(TRUE);
    for (size_t i = 0; i < RTL_NUMBER_OF(table); i++)
        for (unsigned s = 0; s < RTL_NUMBER_OF(queue_names); s++) {
            q.state = (uint8_t)s;
            table[i].fn(&q);
            unsigned to = q.state;
            expect_transition_check(legal & BIT(s), table[i].name, queue_names[s], s, to);
            if (legal & BIT(s))
                ck_assert_uint_eq(to, table[i].to[s]);
        }
}
END_TEST

static const char *const target_names[] = { "CLOSED", "CLOSED_QR", "STARTED", "STOPPED", "PURGED",
                                            "CLOSING", "CLOSING_QR", "DELETING", "DELETED" };

static void ts_close_plain(struct uwdf_iotarget *t)
{
    uwdf_ts_close(t, WdfIoTargetClosed);
}

static void ts_close_query_remove(struct uwdf_iotarget *t)
{
    uwdf_ts_close(t, WdfIoTargetClosedForQueryRemove);
}

static void ts_close_delete(struct uwdf_iotarget *t)
{
    uwdf_ts_close(t, WdfIoTargetDeleted);
}

START_TEST(target_transitions_follow_their_table)
{
    enum { CL = UWDF_TS_CLOSED, CQ = UWDF_TS_CLOSED_QR, ST = UWDF_TS_STARTED, SP = UWDF_TS_STOPPED,
           PU = UWDF_TS_PURGED, GC = UWDF_TS_CLOSING, GQ = UWDF_TS_CLOSING_QR, GD = UWDF_TS_DELETING,
           DE = UWDF_TS_DELETED, ILLEGAL = 99 };
    static const struct {
        void (*fn)(struct uwdf_iotarget *t);
        const char *name;
        unsigned to[9]; /* by the state left; 0 where illegal is marked ILLEGAL below */
    } table[] = {
        { uwdf_ts_open, "open", { ST, ST, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL } },
        { uwdf_ts_start, "start", { ILLEGAL, ILLEGAL, ST, ST, ST, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL } },
        { uwdf_ts_stop, "stop", { ILLEGAL, ILLEGAL, SP, SP, SP, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL } },
        { uwdf_ts_purge, "purge", { ILLEGAL, ILLEGAL, PU, PU, PU, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL } },
        { ts_close_plain, "close", { ILLEGAL, ILLEGAL, GC, GC, GC, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL } },
        { ts_close_query_remove, "close", { ILLEGAL, ILLEGAL, GQ, GQ, GQ, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL } },
        { ts_close_delete, "close", { ILLEGAL, ILLEGAL, GD, GD, GD, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL } },
        { uwdf_ts_closed, "closed", { ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, CL, CQ, DE, ILLEGAL } },
        { uwdf_ts_delete, "delete", { DE, DE, ILLEGAL, ILLEGAL, ILLEGAL, GD, GD, ILLEGAL, ILLEGAL } },
    };
    static struct uwdf_iotarget t;
    ck_assert_uint_eq(uwdf_target_machine.count, RTL_NUMBER_OF(target_names));
    UwdfSetVerifier(TRUE);
    for (size_t i = 0; i < RTL_NUMBER_OF(table); i++)
        for (unsigned s = 0; s < RTL_NUMBER_OF(target_names); s++) {
            atomic_store(&t.state, (uint8_t)s);
            table[i].fn(&t);
            bool legal = table[i].to[s] != ILLEGAL;
            expect_transition_check(legal, table[i].name, target_names[s], s, atomic_load(&t.state));
            if (legal)
                ck_assert_uint_eq(atomic_load(&t.state), table[i].to[s]);
        }
    /* What the WDF state queries see. */
    atomic_store(&t.state, UWDF_TS_CLOSING);
    ck_assert(!uwdf_iotarget_is_open(&t));
    ck_assert(uwdf_iotarget_is_opened(&t));
    atomic_store(&t.state, UWDF_TS_PURGED);
    ck_assert(uwdf_iotarget_is_open(&t));
    atomic_store(&t.state, UWDF_TS_DELETED);
    ck_assert(!uwdf_iotarget_is_opened(&t));
}
END_TEST

static const char *const flt_names[] = { "IDLE", "IN_FLIGHT", "CALLBACK_RUNNING" };

START_TEST(flt_callback_data_transitions_follow_their_table)
{
    enum { I = UWDF_FLT_DATA_IDLE, F = UWDF_FLT_DATA_IN_FLIGHT, R = UWDF_FLT_DATA_CALLBACK_RUNNING, ILLEGAL = 99 };
    static const struct {
        void (*fn)(atomic_int *state, const void *data);
        const char *name;
        unsigned to[3];
    } table[] = {
        { uwdf_flt_data_start_io, "start_io", { F, ILLEGAL, F } },
        { uwdf_flt_data_call_back, "call_back", { ILLEGAL, R, ILLEGAL } },
        { uwdf_flt_data_callback_returned, "callback_returned", { ILLEGAL, F, I } },
    };
    atomic_int state;
    ck_assert_uint_eq(uwdf_flt_data_machine.count, RTL_NUMBER_OF(flt_names));
    UwdfSetVerifier(TRUE);
    for (size_t i = 0; i < RTL_NUMBER_OF(table); i++)
        for (unsigned s = 0; s < RTL_NUMBER_OF(flt_names); s++) {
            atomic_store(&state, (int)s);
            table[i].fn(&state, &state);
            bool legal = table[i].to[s] != ILLEGAL;
            unsigned to = (unsigned)atomic_load(&state);
            /* callback_returned reports the idle state it wanted */
            expect_transition_check(legal, table[i].name, flt_names[s], s,
                                    table[i].fn == uwdf_flt_data_callback_returned ? (unsigned)I : to);
            if (legal)
                ck_assert_uint_eq(to, table[i].to[s]);
        }
}
END_TEST

START_TEST(illegal_transition_without_verifier_is_logged_not_bugchecked)
{
    static struct uwdf_request r;
    atomic_store(&r.qstate, UWDF_QS_COMPLETED);
    uwdf_qs_complete(&r); /* a second completion */
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    ck_assert_uint_eq(atomic_load(&r.qstate), UWDF_QS_COMPLETED);
    UwdfSetVerifier(TRUE);
    uwdf_qs_complete(&r);
    UwdfSetVerifier(FALSE);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "request-in-queue");
}
END_TEST

/* ---- IRQL emulation ---- */

static void *irql_thread(void *arg)
{
    *(KIRQL *)arg = KeGetCurrentIrql();
    return NULL;
}

START_TEST(irql_is_passive_on_application_threads)
{
    KIRQL other = 0xFF;
    pthread_t t;
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    ck_assert_int_eq(pthread_create(&t, NULL, irql_thread, &other), 0);
    pthread_join(t, NULL);
    ck_assert_uint_eq(other, PASSIVE_LEVEL);
}
END_TEST

START_TEST(passive_only_ddi_at_dispatch_is_invalid_device_request)
{
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver = NULL;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    KIRQL old = uwdf_irql_raise_to_dispatch();
    ck_assert_uint_eq(KeGetCurrentIrql(), DISPATCH_LEVEL);
    NTSTATUS status = WdfDriverCreate(NULL, NULL, NULL, &cfg, &driver);
    uwdf_irql_restore(old);
    ck_assert_status(status, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_ptr_null(driver);
    ck_assert_uint_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
}
END_TEST

START_TEST(passive_only_ddi_at_dispatch_is_bugcheck_under_verifier)
{
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    UwdfSetVerifier(TRUE);
    ck_assert(UwdfIsVerifierEnabled());
    KIRQL old = uwdf_irql_raise_to_dispatch();
    NTSTATUS status = WdfDriverCreate(NULL, NULL, NULL, &cfg, &driver);
    uwdf_irql_restore(old);
    UwdfSetVerifier(FALSE);
    ck_assert_status(status, STATUS_INVALID_DEVICE_REQUEST);
    tu_expect_bugcheck_reason(WDF_VERIFIER_IRQL_MISMATCH, "PASSIVE_LEVEL");
}
END_TEST

/* ---- time units ---- */

START_TEST(timeout_unit_constants_are_100ns_based)
{
    ck_assert_int_eq(WDF_TIMEOUT_TO_SEC, 10000000LL);
    ck_assert_int_eq(WDF_TIMEOUT_TO_MS, 10000LL);
    ck_assert_int_eq(WDF_TIMEOUT_TO_US, 10LL);
}
END_TEST

/* UMDF 2.0 once shipped these 10x off (KB 4512989): pin the exact values. */
START_TEST(relative_timeouts_are_negative_100ns_counts)
{
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_MS(5), -50000LL);
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_SEC(1), -10000000LL);
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_SEC(30), -300000000LL);
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_US(7), -70LL);
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_MS(0), 0);
}
END_TEST

START_TEST(absolute_timeouts_are_positive_100ns_counts)
{
    ck_assert_int_eq(WDF_ABS_TIMEOUT_IN_SEC(1), 10000000LL);
    ck_assert_int_eq(WDF_ABS_TIMEOUT_IN_MS(3), 30000LL);
    ck_assert_int_eq(WDF_ABS_TIMEOUT_IN_US(2), 20LL);
    /* A real deadline is system time plus a span. */
    LARGE_INTEGER now;
    KeQuerySystemTime(&now);
    ck_assert_int_gt(now.QuadPart + WDF_ABS_TIMEOUT_IN_MS(100), now.QuadPart);
}
END_TEST

START_TEST(ke_query_system_time_is_nt_time_of_now)
{
    LARGE_INTEGER nt, precise;
    KeQuerySystemTime(&nt);
    long long expected = (long long)time(NULL) * 10000000LL + UWDF_NT_EPOCH_DELTA_100NS;
    ck_assert_int_eq(UWDF_NT_EPOCH_DELTA_100NS, 116444736000000000LL);
    ck_assert_msg(llabs(nt.QuadPart - expected) < 2 * 10000000LL,
                  "KeQuerySystemTime %lld vs %lld", (long long)nt.QuadPart, expected);
    KeQuerySystemTimePrecise(&precise);
    ck_assert_int_ge(precise.QuadPart, nt.QuadPart);
}
END_TEST

/* ---- strings ---- */

START_TEST(rtl_init_unicode_string_counts_bytes_of_wchar)
{
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, L"abc");
    ck_assert_uint_eq(us.Length, 3 * sizeof(WCHAR));
    ck_assert_uint_eq(us.MaximumLength, 4 * sizeof(WCHAR));
    ck_assert(wcscmp(us.Buffer, L"abc") == 0);
    RtlInitUnicodeString(&us, L"");
    ck_assert_uint_eq(us.Length, 0);
    ck_assert_uint_eq(us.MaximumLength, sizeof(WCHAR));
    RtlInitUnicodeString(&us, NULL);
    ck_assert_uint_eq(us.Length, 0);
    ck_assert_uint_eq(us.MaximumLength, 0);
    ck_assert_ptr_null(us.Buffer);
}
END_TEST

START_TEST(rtl_constant_string_matches_rtl_init)
{
    static const UNICODE_STRING c = RTL_CONSTANT_STRING(L"\\Device\\Foo");
    UNICODE_STRING r;
    RtlInitUnicodeString(&r, L"\\Device\\Foo");
    ck_assert_uint_eq(c.Length, r.Length);
    ck_assert_uint_eq(c.MaximumLength, r.MaximumLength);
    ck_assert_uint_eq(c.Length, 11 * sizeof(WCHAR));
}
END_TEST

START_TEST(rtl_init_unicode_string_clamps_long_strings)
{
    enum { CHARS = 40000 };
    WCHAR *s = malloc((CHARS + 1) * sizeof(WCHAR));
    UNICODE_STRING us;
    for (int i = 0; i < CHARS; i++)
        s[i] = L'x';
    s[CHARS] = L'\0';
    RtlInitUnicodeString(&us, s);
    /* Both lengths stay whole characters and the terminator still fits. */
    ck_assert_uint_eq(us.Length % sizeof(WCHAR), 0);
    ck_assert_uint_eq(us.MaximumLength, us.Length + sizeof(WCHAR));
    ck_assert_uint_gt(us.Length, 0xFFFF - 2 * sizeof(WCHAR));
    free(s);
}
END_TEST

/* ---- statuses ---- */

START_TEST(status_names_are_readable)
{
    ck_assert_str_eq(UwdfNtStatusName(STATUS_IO_TIMEOUT), "STATUS_IO_TIMEOUT");
    ck_assert_str_eq(UwdfNtStatusName(STATUS_SUCCESS), "STATUS_SUCCESS");
    ck_assert_str_eq(UwdfNtStatusName(STATUS_WDF_DEVICE_REMOVED_NOT_SENT),
                     "STATUS_WDF_DEVICE_REMOVED_NOT_SENT");
    ck_assert_ptr_null(UwdfNtStatusName((NTSTATUS)0xC0DEC0DE));
}
END_TEST

START_TEST(errno_maps_to_the_designed_statuses)
{
    static const struct {
        int err;
        NTSTATUS status;
    } table[] = {
        { EINVAL, STATUS_INVALID_PARAMETER },
        { EIO, STATUS_IO_DEVICE_ERROR },
        { ENOSPC, STATUS_DISK_FULL },
        { ENOMEM, STATUS_INSUFFICIENT_RESOURCES },
        { ECANCELED, STATUS_CANCELLED },
        { EBADF, STATUS_INVALID_HANDLE },
        { EROFS, STATUS_MEDIA_WRITE_PROTECTED },
        { ENXIO, STATUS_NO_SUCH_DEVICE },
        { ENODEV, STATUS_NO_SUCH_DEVICE },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        NTSTATUS got = UwdfNtStatusFromErrno(table[i].err);
        ck_assert_status_msg(got, table[i].status, "errno %d", table[i].err);
        /* Kernel completions carry -errno. */
        ck_assert_status(UwdfNtStatusFromErrno(-table[i].err), table[i].status);
    }
}
END_TEST

START_TEST(unknown_errno_is_unsuccessful)
{
    ck_assert_status(UwdfNtStatusFromErrno(99999), STATUS_UNSUCCESSFUL);
}
END_TEST

START_TEST(status_maps_back_to_its_first_errno)
{
    static const struct {
        NTSTATUS status;
        int err;
    } table[] = {
        { STATUS_SUCCESS, 0 },
        { STATUS_PENDING, 0 },
        { STATUS_INVALID_PARAMETER, EINVAL },
        { STATUS_IO_DEVICE_ERROR, EIO },
        { STATUS_DISK_FULL, ENOSPC },
        { STATUS_INSUFFICIENT_RESOURCES, ENOMEM },
        { STATUS_ACCESS_DENIED, EPERM },
        { STATUS_MEDIA_WRITE_PROTECTED, EROFS },
        { STATUS_NOT_SUPPORTED, EOPNOTSUPP },
        { STATUS_IO_TIMEOUT, ETIMEDOUT },
        { STATUS_NO_SUCH_DEVICE, ENXIO },
        { STATUS_END_OF_FILE, EIO },
        { STATUS_UNSUCCESSFUL, EIO },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int got = UwdfErrnoFromNtStatus(table[i].status);
        ck_assert_msg(got == table[i].err, "0x%08x -> errno %d, want %d", (unsigned)table[i].status, got,
                      table[i].err);
        /* Every errno it gives maps forward to the same status. */
        if (got && got != EIO)
            ck_assert_status(UwdfNtStatusFromErrno(got), table[i].status);
    }
}
END_TEST

START_TEST(status_values_are_bit_exact)
{
    static const struct {
        NTSTATUS status;
        uint32_t value;
    } table[] = {
        { STATUS_SUCCESS, 0x00000000u },
        { STATUS_TIMEOUT, 0x00000102u },
        { STATUS_PENDING, 0x00000103u },
        { STATUS_OBJECT_NAME_EXISTS, 0x40000000u },
        { STATUS_BUFFER_OVERFLOW, 0x80000005u },
        { STATUS_INVALID_PARAMETER, 0xC000000Du },
        { STATUS_END_OF_FILE, 0xC0000011u },
        { STATUS_BUFFER_TOO_SMALL, 0xC0000023u },
        { STATUS_INTEGER_OVERFLOW, 0xC0000095u },
        { STATUS_INSUFFICIENT_RESOURCES, 0xC000009Au },
        { STATUS_IO_TIMEOUT, 0xC00000B5u },
        { STATUS_CANCELLED, 0xC0000120u },
        { STATUS_INVALID_DEVICE_STATE, 0xC0000184u },
        { STATUS_IO_DEVICE_ERROR, 0xC0000185u },
        { STATUS_INVALID_BUFFER_SIZE, 0xC0000206u },
        { STATUS_WDF_DEVICE_REMOVED_NOT_SENT, 0xC0200206u },
        { STATUS_WDF_OBJECT_ATTRIBUTES_INVALID, 0xC0200209u },
        { STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED, 0xC020020Fu },
        { STATUS_FLT_IO_COMPLETE, 0x001C0001u },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        ck_assert_msg((uint32_t)table[i].status == table[i].value, "%s is 0x%08x, expected 0x%08x",
                      UwdfNtStatusName(table[i].status), (unsigned)table[i].status,
                      (unsigned)table[i].value);
}
END_TEST

START_TEST(nt_success_is_true_for_informational_false_for_warnings)
{
    ck_assert(NT_SUCCESS(STATUS_SUCCESS));
    ck_assert(NT_SUCCESS(STATUS_PENDING));
    ck_assert(NT_SUCCESS(STATUS_OBJECT_NAME_EXISTS));
    ck_assert(NT_INFORMATION(STATUS_OBJECT_NAME_EXISTS));
    ck_assert(!NT_SUCCESS(STATUS_BUFFER_OVERFLOW));
    ck_assert(NT_WARNING(STATUS_BUFFER_OVERFLOW));
    ck_assert(!NT_SUCCESS(STATUS_IO_TIMEOUT));
    ck_assert(NT_ERROR(STATUS_IO_TIMEOUT));
}
END_TEST

START_TEST(bugcheck_code_is_wdf_violation)
{
    ck_assert_int_eq(WDF_VIOLATION, 0x10D);
    ck_assert_int_eq(WDF_REQUIRED_PARAMETER_IS_NULL, 0x4);
    ck_assert_int_eq(WDF_INVALID_HANDLE, 0x5);
    ck_assert_int_eq(WDF_REQUEST_FATAL_ERROR, 0x6);
}
END_TEST

/* ---- KEVENT ---- */

static NTSTATUS wait_event(PKEVENT ev, PLARGE_INTEGER timeout)
{
    return KeWaitForSingleObject(ev, Executive, KernelMode, FALSE, timeout);
}

START_TEST(notification_event_stays_signalled)
{
    KEVENT ev;
    KeInitializeEvent(&ev, NotificationEvent, FALSE);
    ck_assert_int_eq(KeReadStateEvent(&ev), 0);
    ck_assert_int_eq(KeSetEvent(&ev, IO_NO_INCREMENT, FALSE), 0);
    ck_assert_status(wait_event(&ev, NULL), STATUS_SUCCESS);
    ck_assert_status(wait_event(&ev, NULL), STATUS_SUCCESS);
    ck_assert_int_eq(KeReadStateEvent(&ev), 1);
    ck_assert_int_eq(KeResetEvent(&ev), 1);
    ck_assert_int_eq(KeReadStateEvent(&ev), 0);
    UwdfKeDestroyEvent(&ev);
}
END_TEST

START_TEST(synchronization_event_resets_after_one_wait)
{
    KEVENT ev;
    LARGE_INTEGER poll = { .QuadPart = 0 };
    KeInitializeEvent(&ev, SynchronizationEvent, TRUE);
    ck_assert_status(wait_event(&ev, &poll), STATUS_SUCCESS);
    ck_assert_status(wait_event(&ev, &poll), STATUS_TIMEOUT);
    UwdfKeDestroyEvent(&ev);
}
END_TEST

START_TEST(event_wait_times_out_after_relative_timeout)
{
    KEVENT ev;
    LARGE_INTEGER timeout = { .QuadPart = WDF_REL_TIMEOUT_IN_MS(30) };
    KeInitializeEvent(&ev, NotificationEvent, FALSE);
    double t0 = tu_now_ms();
    ck_assert_status(wait_event(&ev, &timeout), STATUS_TIMEOUT);
    double waited = tu_now_ms() - t0;
    ck_assert_msg(waited >= 29.0, "returned after %.1f ms", waited);
    UwdfKeDestroyEvent(&ev);
}
END_TEST

START_TEST(event_wait_honours_absolute_timeout)
{
    KEVENT ev;
    LARGE_INTEGER deadline;
    KeInitializeEvent(&ev, NotificationEvent, FALSE);
    KeQuerySystemTime(&deadline);
    deadline.QuadPart += WDF_ABS_TIMEOUT_IN_MS(30);
    double t0 = tu_now_ms();
    ck_assert_status(wait_event(&ev, &deadline),
                     STATUS_TIMEOUT);
    ck_assert_msg(tu_now_ms() - t0 >= 20.0, "absolute deadline ignored");
    UwdfKeDestroyEvent(&ev);
}
END_TEST

static void *set_after_delay(void *arg)
{
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    KeSetEvent(arg, IO_NO_INCREMENT, FALSE);
    return NULL;
}

START_TEST(event_set_from_another_thread_wakes_the_waiter)
{
    KEVENT ev;
    pthread_t t;
    LARGE_INTEGER timeout = { .QuadPart = WDF_REL_TIMEOUT_IN_SEC(10) };
    KeInitializeEvent(&ev, SynchronizationEvent, FALSE);
    ck_assert_int_eq(pthread_create(&t, NULL, set_after_delay, &ev), 0);
    ck_assert_status(wait_event(&ev, &timeout), STATUS_SUCCESS);
    pthread_join(t, NULL);
    ck_assert_int_eq(KeReadStateEvent(&ev), 0); /* consumed by the wait */
    UwdfKeDestroyEvent(&ev);
}
END_TEST

/* ---- the biased lock (lib/runtime.c) ---- */

#define BIASED_BURSTS 12

/* A plain counter bumped with a gap between its read and its write: two
 * threads inside at once lose increments. */
struct biased_fixture {
    struct uwdf_biased_lock lock;
    long counter;
    atomic_long owner_fast, owner_slow;
    atomic_bool foreign_done;
    bool usable;
};

static void biased_bump(long *counter, int gap)
{
    long v = *(volatile long *)counter;
    for (volatile int i = 0; i < gap; i++)
        ;
    *(volatile long *)counter = v + 1;
}

static void *biased_owner(void *arg)
{
    struct biased_fixture *f = arg;
    while (!atomic_load(&f->foreign_done)) {
        bool fast = uwdf_biased_lock_owner_acquire(&f->lock);
        /* Long inside: a revoker that did not wait for it would overlap. */
        biased_bump(&f->counter, 1000);
        uwdf_biased_lock_owner_release(&f->lock, fast);
        atomic_fetch_add(fast ? &f->owner_fast : &f->owner_slow, 1);
    }
    return NULL;
}

START_TEST(biased_lock_excludes_the_owner_across_bias_changes)
{
    struct biased_fixture f = { .counter = 0 };
    uwdf_biased_lock_init(&f.lock);
    f.usable = !f.lock.unbiased;
    pthread_t owner;
    ck_assert_int_eq(pthread_create(&owner, NULL, biased_owner, &f), 0);
    long foreign = 0;
    int rebiased = 0;
    /* Bursts long enough to unbias the lock, then quiet until the owner's
     * long run has biased it again. */
    for (int burst = 0; burst < BIASED_BURSTS; burst++) {
        for (int i = 0; i < 40; i++) {
            uwdf_biased_lock_acquire(&f.lock);
            biased_bump(&f.counter, 100);
            uwdf_biased_lock_release(&f.lock);
            foreign++;
        }
        if (!f.usable)
            continue;
        long fast0 = atomic_load(&f.owner_fast);
        for (int waited = 0; waited < 5000 && atomic_load(&f.owner_fast) < fast0 + 1000; waited++)
            usleep(1000);
        if (atomic_load(&f.owner_fast) >= fast0 + 1000)
            rebiased++;
    }
    atomic_store(&f.foreign_done, true);
    pthread_join(owner, NULL);
    long owner_total = atomic_load(&f.owner_fast) + atomic_load(&f.owner_slow);
    ck_assert_int_eq(f.counter, owner_total + foreign);
    if (f.usable) {
        ck_assert_int_eq(rebiased, BIASED_BURSTS); /* every quiet spell went back to the fast path */
        ck_assert_int_gt(atomic_load(&f.owner_slow), 0); /* and every burst off it */
    } else {
        ck_assert_int_eq(atomic_load(&f.owner_fast), 0);
    }
    uwdf_biased_lock_destroy(&f.lock);
}
END_TEST

struct biased_waiter {
    struct biased_fixture *f;
    pthread_cond_t cond;
    bool go;
    long seen_before, seen_after;
    atomic_bool waiting;
};

static void *biased_cond_waiter(void *arg)
{
    struct biased_waiter *w = arg;
    uwdf_biased_lock_acquire(&w->f->lock);
    atomic_store(&w->waiting, true);
    while (!w->go)
        pthread_cond_wait(&w->cond, &w->f->lock.mutex);
    /* Back inside: the owner must stay out until the release below. */
    w->seen_before = w->f->counter;
    usleep(20000);
    w->seen_after = w->f->counter;
    uwdf_biased_lock_release(&w->f->lock);
    return NULL;
}

START_TEST(biased_lock_condition_waiter_keeps_the_owner_out_when_it_wakes)
{
    struct biased_fixture f = { .counter = 0 };
    struct biased_waiter w = { .f = &f };
    uwdf_biased_lock_init(&f.lock);
    pthread_cond_init(&w.cond, NULL);
    pthread_t waiter;
    ck_assert_int_eq(pthread_create(&waiter, NULL, biased_cond_waiter, &w), 0);
    while (!atomic_load(&w.waiting))
        usleep(1000);
    /* The owner runs while the waiter sleeps with the mutex let go, then
     * wakes it from inside and keeps bumping. */
    for (int i = 0; i < 100000; i++) {
        bool fast = uwdf_biased_lock_owner_acquire(&f.lock);
        biased_bump(&f.counter, 100);
        if (i == 1000) {
            ck_assert(!fast); /* a waiter's count keeps the owner on the mutex */
            w.go = true;
            pthread_cond_signal(&w.cond);
        }
        uwdf_biased_lock_owner_release(&f.lock, fast);
    }
    pthread_join(waiter, NULL);
    ck_assert_int_eq(w.seen_before, w.seen_after);
    ck_assert_int_eq(f.counter, 100000);
    pthread_cond_destroy(&w.cond);
    uwdf_biased_lock_destroy(&f.lock);
}
END_TEST

/* A lock let go of its bias (uwdf_biased_lock_set_bias false) pays one
 * revocation, whatever number of takings follow; biased again, its owner
 * is back on the fast path. */
START_TEST(biased_lock_let_go_revokes_once_for_every_later_taking)
{
    struct uwdf_biased_lock l;
    uwdf_biased_lock_init(&l);
    bool usable = !l.unbiased;
    uwdf_biased_lock_acquire(&l);
    uwdf_biased_lock_set_bias(&l, false);
    uwdf_biased_lock_release(&l);
    for (int i = 0; i < 8; i++) {
        uwdf_biased_lock_acquire(&l);
        uwdf_biased_lock_release(&l);
    }
    ck_assert_uint_eq(l.revocations, usable ? 1 : 0);
    bool fast = uwdf_biased_lock_owner_acquire(&l);
    ck_assert(!fast); /* the owner stays on the mutex */
    uwdf_biased_lock_owner_release(&l, fast);
    uwdf_biased_lock_acquire(&l);
    uwdf_biased_lock_set_bias(&l, true);
    uwdf_biased_lock_release(&l);
    fast = uwdf_biased_lock_owner_acquire(&l);
    ck_assert_int_eq(fast, usable);
    uwdf_biased_lock_owner_release(&l, fast);
    uwdf_biased_lock_destroy(&l);
}
END_TEST

static bool target_lock_biased(WDFIOTARGET target)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(target, "test");
    return !t->lock.unbiased && atomic_load_explicit(&t->lock.revoked, memory_order_relaxed) == 0;
}

static unsigned target_lock_revocations(WDFIOTARGET target)
{
    return uwdf_iotarget_lookup(target, "test")->lock.revocations;
}

/* Closing a target that did I/O takes its lock several times from the
 * closing thread, each a revocation of the engine thread's bias (a
 * membarrier) while the target is biased: the close revokes it once and
 * a reopen biases the target again. Both engines. */
START_TEST(target_close_revokes_the_bias_once_and_a_reopen_restores_it)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    WDFIOTARGET t = tu_env_open_file(&e, 64 * 1024, 7, GENERIC_READ, 0);
    bool usable = target_lock_biased(t);
    char buf[4096];
    ULONG_PTR got = 0;
    ck_assert_status(tu_sync_rw(t, false, buf, sizeof(buf), 0, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, sizeof(buf));
    unsigned before = target_lock_revocations(t);
    WdfIoTargetClose(t);
    ck_assert_uint_eq(target_lock_revocations(t) - before, usable ? 1 : 0);
    ck_assert(!target_lock_biased(t));
    ck_assert_status(tu_open_name(t, e.path, GENERIC_READ, FILE_OPEN, 0), STATUS_SUCCESS);
    ck_assert_int_eq(target_lock_biased(t), usable);
    ck_assert_status(tu_sync_rw(t, false, buf, sizeof(buf), 0, &got), STATUS_SUCCESS);
    tu_env_fini(&e);
}
END_TEST

static Suite *object_suite(void)
{
    Suite *s = suite_create("object");
    TCase *tc = tu_tcase(s, "create", 0);
    tcase_add_test(tc, object_create_without_attributes);
    tcase_add_test(tc, object_create_with_initialized_attributes);
    tcase_add_test(tc, object_create_memset_zero_attributes_are_invalid);
    tcase_add_test(tc, object_create_bad_attributes_size_is_info_length_mismatch);
    tcase_add_test(tc, object_create_bad_context_type_info_size_is_info_length_mismatch);
    tcase_add_test(tc, object_create_context_size_override_smaller_than_type_is_invalid);
    tcase_add_test(tc, object_create_context_size_override_larger_gives_zeroed_room);
    tcase_add_test(tc, object_create_accepts_execution_level_but_not_synchronization_scope);
    tcase_add_test(tc, object_create_null_handle_pointer_is_bugcheck);
    tcase_add_test(tc, object_create_allocation_failure_is_insufficient_resources);

    tc = tu_tcase(s, "context", 0);
    tcase_add_test(tc, typed_context_is_zeroed);
    tcase_add_test(tc, typed_context_with_name_uses_the_named_accessor);
    tcase_add_test(tc, context_get_object_round_trips);
    tcase_add_test(tc, typed_context_of_absent_type_is_null);
    tcase_add_test(tc, allocate_context_adds_a_second_type);
    tcase_add_test(tc, allocate_context_same_type_again_is_name_exists_and_returns_existing);
    tcase_add_test(tc, allocate_context_with_parent_is_parent_assignment_not_allowed);
    tcase_add_test(tc, allocate_context_without_type_is_object_name_invalid);
    tcase_add_test(tc, allocate_context_allocation_failure_is_insufficient_resources);
    tcase_add_test(tc, allocate_context_callbacks_run_at_delete);

    tc = tu_tcase(s, "lifetime", 0);
    tcase_add_test(tc, deleting_a_parent_deletes_its_children);
    tcase_add_test(tc, cleanup_and_destroy_run_children_first_cleanup_before_destroy);
    tcase_add_test(tc, siblings_are_all_deleted_before_any_is_destroyed);
    tcase_add_test(tc, deleting_a_child_leaves_the_parent);
    tcase_add_test(tc, extra_reference_delays_destroy_not_cleanup);
    tcase_add_test(tc, reference_with_tag_pairs_like_plain_reference);
    tcase_add_test(tc, dereference_without_reference_is_bugcheck);

    tc = tu_tcase(s, "handles", 0);
    tcase_add_test(tc, deleted_handle_is_bugcheck);
    tcase_add_test(tc, stale_handle_stays_invalid_after_slot_reuse);
    tcase_add_test(tc, object_table_release_is_refused_while_an_object_is_live_or_above_passive);
    tcase_add_test(tc, object_table_release_frees_it_and_old_handles_stay_invalid);
    tcase_add_test(tc, garbage_handle_is_bugcheck);
    tcase_add_test(tc, wrong_type_handle_is_bugcheck);
    tcase_add_test(tc, null_handle_is_required_parameter_bugcheck);
    tcase_add_test(tc, default_bugcheck_prints_code_and_reason_then_aborts);
    /* Check can only catch the abort itself when it forks the test. */
    const char *fork_mode = getenv("CK_FORK");
    if (!fork_mode || strcmp(fork_mode, "no") != 0)
        tcase_add_test_raise_signal(tc, default_bugcheck_aborts, SIGABRT);

    tc = tu_tcase(s, "driver", 0);
    tcase_add_test(tc, driver_create_twice_is_invalid_device_state);
    tcase_add_test(tc, driver_config_bad_size_is_info_length_mismatch);
    tcase_add_test(tc, driver_with_parent_is_parent_assignment_not_allowed);
    tcase_add_test(tc, driver_wdm_get_driver_object_is_non_null);
    tcase_add_test(tc, driver_unload_callback_runs_when_the_driver_is_deleted);
    tcase_add_test(tc, control_device_is_created_and_finishes_initializing);
    tcase_add_loop_test(tc, queue_deletion_waits_for_a_lookup_in_progress, 0, 2);
    tcase_add_test(tc, queue_deletion_ends_while_lookups_overlap_without_a_gap);
    tcase_add_test(tc, device_create_with_parent_is_not_allowed_and_init_stays_with_caller);
    tcase_add_test(tc, deleting_the_driver_deletes_devices_and_objects_under_it);

    tc = tu_tcase(s, "runtime", 0);
    tcase_add_test(tc, irql_is_passive_on_application_threads);
    tcase_add_test(tc, passive_only_ddi_at_dispatch_is_invalid_device_request);
    tcase_add_test(tc, passive_only_ddi_at_dispatch_is_bugcheck_under_verifier);
    tcase_add_test(tc, timeout_unit_constants_are_100ns_based);
    tcase_add_test(tc, relative_timeouts_are_negative_100ns_counts);
    tcase_add_test(tc, absolute_timeouts_are_positive_100ns_counts);
    tcase_add_test(tc, ke_query_system_time_is_nt_time_of_now);
    tcase_add_test(tc, rtl_init_unicode_string_counts_bytes_of_wchar);
    tcase_add_test(tc, rtl_constant_string_matches_rtl_init);
    tcase_add_test(tc, rtl_init_unicode_string_clamps_long_strings);
    tcase_add_test(tc, status_names_are_readable);
    tcase_add_test(tc, errno_maps_to_the_designed_statuses);
    tcase_add_test(tc, unknown_errno_is_unsuccessful);
    tcase_add_test(tc, status_maps_back_to_its_first_errno);
    tcase_add_test(tc, status_values_are_bit_exact);
    tcase_add_test(tc, nt_success_is_true_for_informational_false_for_warnings);
    tcase_add_test(tc, bugcheck_code_is_wdf_violation);

    tc = tu_tcase(s, "event", 0);
    tcase_add_test(tc, notification_event_stays_signalled);
    tcase_add_test(tc, synchronization_event_resets_after_one_wait);
    tcase_add_test(tc, event_wait_times_out_after_relative_timeout);
    tcase_add_test(tc, event_wait_honours_absolute_timeout);
    tcase_add_test(tc, event_set_from_another_thread_wakes_the_waiter);

    tc = tu_tcase(s, "state_machines", 0);
    tcase_add_test(tc, request_in_queue_transitions_follow_their_table);
    tcase_add_test(tc, queue_transitions_follow_their_table);
    tcase_add_test(tc, target_transitions_follow_their_table);
    tcase_add_test(tc, flt_callback_data_transitions_follow_their_table);
    tcase_add_test(tc, illegal_transition_without_verifier_is_logged_not_bugchecked);

    tc = tu_tcase(s, "biased_lock", 60);
    tcase_add_test(tc, biased_lock_excludes_the_owner_across_bias_changes);
    tcase_add_test(tc, biased_lock_condition_waiter_keeps_the_owner_out_when_it_wakes);
    tcase_add_test(tc, biased_lock_let_go_revokes_once_for_every_later_taking);
    tcase_add_loop_test(tc, target_close_revokes_the_bias_once_and_a_reopen_restores_it, 0, TU_BACKENDS);
    return s;
}

int main(void)
{
    return tu_main(object_suite(), "test_object");
}
