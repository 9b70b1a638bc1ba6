/* Hostile input, table-driven. Every DDI that takes a framework handle is
 * called with a NULL, a deleted, a stale (right slot, old generation), two
 * garbage and a wrong-type handle in each handle position: each call must
 * be exactly one bug check (WDF_REQUIRED_PARAMETER_IS_NULL for NULL,
 * WDF_INVALID_HANDLE otherwise) naming the DDI, and the live objects must
 * still work afterwards (the sanitizers and valgrind watch for corruption).
 * Then: NULL for each required pointer, wrong structure sizes, timeouts of
 * every sign and extreme on a stalled asynchronous send, device offsets
 * past the end and overflowing, WDFMEMORY_OFFSET past the buffer on the
 * asynchronous format path, and sends to a deleted target. Bad Filter
 * Manager objects are bug checks too. Each table prints "hostile: <table>
 * cases=N"; `grep '^hostile:' tests/test_hostile.log` sums them. Existing
 * suites already cover: send options / reuse params / open params /
 * completion params / driver config / FLT_REGISTRATION sizes one DDI each,
 * sends to closed targets, and timeouts on synchronous reads; those are not
 * repeated here. */
#define _GNU_SOURCE
#include "testutil.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLK 4096
#define FILE_BLOCKS 4
#define FILE_SIZE (FILE_BLOCKS * BLK)
#define FILE_SEED 51u
#define WAIT_MS 10000
#define STALL_MS 100
#define TEST_TIMEOUT_SEC 60
#define INDEX_SHIFT 24 /* lib/object.c: handle = generation << 24 | slot */

typedef struct {
    unsigned v;
} HOSTILE_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(HOSTILE_CTX, hostile_ctx_get);

/* Live objects the calls use in the positions that are not under test. */
struct live {
    struct tu_env e;
    char *path;
    WDFIOTARGET target;
    WDFREQUEST request;
    WDFMEMORY memory;
    void *buf;
    WDFLOOKASIDE lookaside;
    WDFOBJECT object;
};

static void live_init(struct live *l)
{
    tu_env_init(&l->e);
    l->path = tu_env_file(&l->e, "data", FILE_SIZE, FILE_SEED);
    ck_assert_int_eq(tu_target_open(l->e.device, l->path, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0, &l->target),
                     STATUS_SUCCESS);
    l->request = tu_make_request(l->target);
    l->memory = tu_make_memory(BLK, &l->buf);
    ck_assert_int_eq(WdfLookasideListCreate(WDF_NO_OBJECT_ATTRIBUTES, BLK, NonPagedPoolNx, WDF_NO_OBJECT_ATTRIBUTES,
                                            0, &l->lookaside),
                     STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES a;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, HOSTILE_CTX);
    ck_assert_int_eq(WdfObjectCreate(&a, &l->object), STATUS_SUCCESS);
    hostile_ctx_get(l->object)->v = 0x5a5a;
}

/* The live objects still do their jobs: a read through the request and
 * memory gives the file's data, the object keeps its context. */
static void live_check(struct live *l)
{
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = BLK;
    ULONG_PTR bytes = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, l->memory, NULL);
    memset(l->buf, 0, BLK);
    ck_assert_int_eq(WdfIoTargetSendReadSynchronously(l->target, l->request, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(l->buf, BLK, FILE_SEED, BLK));
    ck_assert_uint_eq(hostile_ctx_get(l->object)->v, 0x5a5a);
    WDFMEMORY m;
    ck_assert_int_eq(WdfMemoryCreateFromLookaside(l->lookaside, &m), STATUS_SUCCESS);
    WdfObjectDelete(m);
    ck_assert_int_eq(WdfIoTargetGetState(l->target), WdfIoTargetStarted);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
}

static void live_fini(struct live *l)
{
    free(l->path);
    tu_env_fini(&l->e);
}

/* ---- handles ---- */

enum kind { K_REQUEST, K_TARGET, K_MEMORY, K_LOOKASIDE, K_DEVICE, K_DRIVER, K_ANY };

/* One DDI call with the handle under test in one position. Returns what
 * the DDI returned where that is a status (0 otherwise), so a non-VOID
 * DDI can be checked for failure. */
typedef NTSTATUS ddi_call(struct live *l, WDFOBJECT h);

struct handle_case {
    const char *ddi; /* must appear in the bug check's reason */
    enum kind kind;
    bool optional;   /* NULL is a valid value here */
    bool returns_status;
    ddi_call *call;
};

#define H(name, body)                                                                          \
    static NTSTATUS h_##name(struct live *l, WDFOBJECT h)                                      \
    {                                                                                          \
        (void)l;                                                                               \
        body                                                                                   \
    }

static WDF_REQUEST_REUSE_PARAMS g_rp;
static WDF_REQUEST_COMPLETION_PARAMS g_cp;
static WDF_REQUEST_PARAMETERS g_params;
static IO_STACK_LOCATION g_stack;

static NTSTATUS sync_read_with(WDFIOTARGET t, WDFREQUEST r, WDFMEMORY m)
{
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, m, NULL);
    return WdfIoTargetSendReadSynchronously(t, r, &d, &off, NULL, NULL);
}

/* request position */
H(req_reuse, return WdfRequestReuse((WDFREQUEST)h, &g_rp);)
H(req_change_target, return WdfRequestChangeTarget((WDFREQUEST)h, l->target);)
H(req_format_current, WdfRequestFormatRequestUsingCurrentType((WDFREQUEST)h); return 0;)
H(req_format_stack, WdfRequestWdmFormatUsingStackLocation((WDFREQUEST)h, &g_stack); return 0;)
H(req_send, return WdfRequestSend((WDFREQUEST)h, l->target, NULL) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(req_get_status, return WdfRequestGetStatus((WDFREQUEST)h);)
H(req_cancel, return WdfRequestCancelSentRequest((WDFREQUEST)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(req_alloc_timer, return WdfRequestAllocateTimer((WDFREQUEST)h);)
H(req_set_routine, WdfRequestSetCompletionRoutine((WDFREQUEST)h, NULL, NULL); return 0;)
H(req_get_cparams, WdfRequestGetCompletionParams((WDFREQUEST)h, &g_cp); return 0;)
H(req_set_info, WdfRequestSetInformation((WDFREQUEST)h, 1); return 0;)
H(req_get_info, return WdfRequestGetInformation((WDFREQUEST)h) == 0 ? STATUS_UNSUCCESSFUL : STATUS_SUCCESS;)
H(req_get_params, WdfRequestGetParameters((WDFREQUEST)h, &g_params); return 0;)
H(req_get_irp, return WdfRequestWdmGetIrp((WDFREQUEST)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(req_get_target, return WdfRequestGetIoTarget((WDFREQUEST)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(req_write_through, UwdfRequestSetWriteThrough((WDFREQUEST)h, TRUE); return 0;)
H(req_fmt_read, return WdfIoTargetFormatRequestForRead(l->target, (WDFREQUEST)h, l->memory, NULL, NULL);)
H(req_fmt_write, return WdfIoTargetFormatRequestForWrite(l->target, (WDFREQUEST)h, l->memory, NULL, NULL);)
H(req_fmt_ioctl, return WdfIoTargetFormatRequestForIoctl(l->target, (WDFREQUEST)h, IOCTL_DISK_GET_LENGTH_INFO,
                                                         NULL, NULL, l->memory, NULL);)
H(req_fmt_iioctl, return WdfIoTargetFormatRequestForInternalIoctl(l->target, (WDFREQUEST)h, 1, NULL, NULL, NULL,
                                                                  NULL);)
H(req_sync_read, return sync_read_with(l->target, (WDFREQUEST)h, l->memory);)
H(req_sync_write, {
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, l->memory, NULL);
    return WdfIoTargetSendWriteSynchronously(l->target, (WDFREQUEST)h, &d, &off, NULL, NULL);
})
H(req_sync_ioctl, return WdfIoTargetSendIoctlSynchronously(l->target, (WDFREQUEST)h, IOCTL_DISK_GET_LENGTH_INFO,
                                                           NULL, NULL, NULL, NULL);)
H(req_sync_iioctl, return WdfIoTargetSendInternalIoctlSynchronously(l->target, (WDFREQUEST)h, 1, NULL, NULL, NULL,
                                                                    NULL);)
/* target position */
H(tgt_open, {
    WDF_IO_TARGET_OPEN_PARAMS p;
    UNICODE_STRING us;
    WCHAR wbuf[4096];
    tu_unicode(&us, wbuf, 4096, l->path);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &us, GENERIC_READ);
    return WdfIoTargetOpen((WDFIOTARGET)h, &p);
})
H(tgt_close, WdfIoTargetClose((WDFIOTARGET)h); return 0;)
H(tgt_close_qr, WdfIoTargetCloseForQueryRemove((WDFIOTARGET)h); return 0;)
H(tgt_start, return WdfIoTargetStart((WDFIOTARGET)h);)
H(tgt_stop, WdfIoTargetStop((WDFIOTARGET)h, WdfIoTargetLeaveSentIoPending); return 0;)
H(tgt_purge, WdfIoTargetPurge((WDFIOTARGET)h, WdfIoTargetPurgeIo); return 0;)
H(tgt_state, return WdfIoTargetGetState((WDFIOTARGET)h) == WdfIoTargetStarted ? STATUS_SUCCESS
                                                                                : STATUS_UNSUCCESSFUL;)
H(tgt_device, return WdfIoTargetGetDevice((WDFIOTARGET)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(tgt_file_handle, return WdfIoTargetWdmGetTargetFileHandle((WDFIOTARGET)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(tgt_devobj, return WdfIoTargetWdmGetTargetDeviceObject((WDFIOTARGET)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(tgt_fileobj, return WdfIoTargetWdmGetTargetFileObject((WDFIOTARGET)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(tgt_fmt_read, return WdfIoTargetFormatRequestForRead((WDFIOTARGET)h, l->request, l->memory, NULL, NULL);)
H(tgt_fmt_write, return WdfIoTargetFormatRequestForWrite((WDFIOTARGET)h, l->request, l->memory, NULL, NULL);)
H(tgt_fmt_ioctl, return WdfIoTargetFormatRequestForIoctl((WDFIOTARGET)h, l->request, 1, NULL, NULL, NULL, NULL);)
H(tgt_fmt_iioctl,
  return WdfIoTargetFormatRequestForInternalIoctl((WDFIOTARGET)h, l->request, 1, NULL, NULL, NULL, NULL);)
H(tgt_sync_read, return sync_read_with((WDFIOTARGET)h, NULL, l->memory);)
H(tgt_sync_ioctl, return WdfIoTargetSendIoctlSynchronously((WDFIOTARGET)h, NULL, 1, NULL, NULL, NULL, NULL);)
H(tgt_send, return WdfRequestSend(l->request, (WDFIOTARGET)h, NULL) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(tgt_change_target, return WdfRequestChangeTarget(l->request, (WDFIOTARGET)h);)
H(tgt_request_create, {
    WDFREQUEST r = NULL;
    NTSTATUS s = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, (WDFIOTARGET)h, &r);
    ck_assert_ptr_null(r);
    return s;
})
H(tgt_backend, return UwdfIoTargetGetBackendName((WDFIOTARGET)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
/* memory position */
H(mem_assign, {
    static char b[16];
    return WdfMemoryAssignBuffer((WDFMEMORY)h, b, sizeof(b));
})
H(mem_get_buffer, {
    size_t n = 7;
    return WdfMemoryGetBuffer((WDFMEMORY)h, &n) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;
})
H(mem_copy_to, {
    char b[16];
    return WdfMemoryCopyToBuffer((WDFMEMORY)h, 0, b, sizeof(b));
})
H(mem_copy_from, {
    char b[16] = { 0 };
    return WdfMemoryCopyFromBuffer((WDFMEMORY)h, 0, b, sizeof(b));
})
H(mem_fmt_read, return WdfIoTargetFormatRequestForRead(l->target, l->request, (WDFMEMORY)h, NULL, NULL);)
H(mem_fmt_write, return WdfIoTargetFormatRequestForWrite(l->target, l->request, (WDFMEMORY)h, NULL, NULL);)
H(mem_fmt_ioctl, return WdfIoTargetFormatRequestForIoctl(l->target, l->request, 1, (WDFMEMORY)h, NULL, NULL, NULL);)
H(mem_sync_read, return sync_read_with(l->target, NULL, (WDFMEMORY)h);)
/* lookaside, device, driver positions */
H(la_create_memory, {
    WDFMEMORY m = (WDFMEMORY)1;
    NTSTATUS s = WdfMemoryCreateFromLookaside((WDFLOOKASIDE)h, &m);
    ck_assert_ptr_null(m);
    return s;
})
H(dev_target_create, {
    WDFIOTARGET t = NULL;
    return WdfIoTargetCreate((WDFDEVICE)h, WDF_NO_OBJECT_ATTRIBUTES, &t);
})
H(dev_finish, WdfControlFinishInitializing((WDFDEVICE)h); return 0;)
H(dev_wdm, return WdfDeviceWdmGetDeviceObject((WDFDEVICE)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(dev_driver, return WdfDeviceGetDriver((WDFDEVICE)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(drv_init_alloc, {
    DECLARE_CONST_UNICODE_STRING(sddl, L"D:P(A;;GA;;;SY)");
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate((WDFDRIVER)h, &sddl);
    if (init)
        WdfDeviceInitFree(init);
    return init ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;
})
H(drv_wdm, return WdfDriverWdmGetDriverObject((WDFDRIVER)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
/* any object */
H(obj_delete, WdfObjectDelete(h); return 0;)
H(obj_reference, WdfObjectReference(h); return 0;)
H(obj_dereference, WdfObjectDereference(h); return 0;)
H(obj_context, return hostile_ctx_get(h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(obj_allocate_context, {
    WDF_OBJECT_ATTRIBUTES a;
    PVOID ctx = NULL;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, HOSTILE_CTX);
    return WdfObjectAllocateContext(h, &a, &ctx);
})
H(obj_parent, {
    WDF_OBJECT_ATTRIBUTES a;
    WDFOBJECT o = NULL;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = h;
    NTSTATUS s = WdfObjectCreate(&a, &o);
    ck_assert_ptr_null(o);
    return s;
})

#define C(ddi, kind, opt, st, fn) { ddi, kind, opt, st, h_##fn }
static const struct handle_case handle_cases[] = {
    C("WdfRequestReuse", K_REQUEST, false, true, req_reuse),
    C("WdfRequestChangeTarget", K_REQUEST, false, true, req_change_target),
    C("WdfRequestFormatRequestUsingCurrentType", K_REQUEST, false, false, req_format_current),
    C("WdfRequestWdmFormatUsingStackLocation", K_REQUEST, false, false, req_format_stack),
    C("WdfRequestSend", K_REQUEST, false, true, req_send),
    C("WdfRequestGetStatus", K_REQUEST, false, true, req_get_status),
    C("WdfRequestCancelSentRequest", K_REQUEST, false, true, req_cancel),
    C("WdfRequestAllocateTimer", K_REQUEST, false, true, req_alloc_timer),
    C("WdfRequestSetCompletionRoutine", K_REQUEST, false, false, req_set_routine),
    C("WdfRequestGetCompletionParams", K_REQUEST, false, false, req_get_cparams),
    C("WdfRequestSetInformation", K_REQUEST, false, false, req_set_info),
    C("WdfRequestGetInformation", K_REQUEST, false, true, req_get_info),
    C("WdfRequestGetParameters", K_REQUEST, false, false, req_get_params),
    C("WdfRequestWdmGetIrp", K_REQUEST, false, true, req_get_irp),
    C("WdfRequestGetIoTarget", K_REQUEST, false, true, req_get_target),
    C("UwdfRequestSetWriteThrough", K_REQUEST, false, false, req_write_through),
    C("WdfIoTargetFormatRequestForRead", K_REQUEST, false, true, req_fmt_read),
    C("WdfIoTargetFormatRequestForWrite", K_REQUEST, false, true, req_fmt_write),
    C("WdfIoTargetFormatRequestForIoctl", K_REQUEST, false, true, req_fmt_ioctl),
    C("WdfIoTargetFormatRequestForInternalIoctl", K_REQUEST, false, true, req_fmt_iioctl),
    C("WdfIoTargetSendReadSynchronously", K_REQUEST, true, true, req_sync_read),
    C("WdfIoTargetSendWriteSynchronously", K_REQUEST, true, true, req_sync_write),
    C("WdfIoTargetSendIoctlSynchronously", K_REQUEST, true, true, req_sync_ioctl),
    C("WdfIoTargetSendInternalIoctlSynchronously", K_REQUEST, true, true, req_sync_iioctl),
    C("WdfIoTargetOpen", K_TARGET, false, true, tgt_open),
    C("WdfIoTargetClose", K_TARGET, false, false, tgt_close),
    C("WdfIoTargetCloseForQueryRemove", K_TARGET, false, false, tgt_close_qr),
    C("WdfIoTargetStart", K_TARGET, false, true, tgt_start),
    C("WdfIoTargetStop", K_TARGET, false, false, tgt_stop),
    C("WdfIoTargetPurge", K_TARGET, false, false, tgt_purge),
    C("WdfIoTargetGetState", K_TARGET, false, true, tgt_state),
    C("WdfIoTargetGetDevice", K_TARGET, false, true, tgt_device),
    C("WdfIoTargetWdmGetTargetFileHandle", K_TARGET, false, true, tgt_file_handle),
    C("WdfIoTargetWdmGetTargetDeviceObject", K_TARGET, false, true, tgt_devobj),
    C("WdfIoTargetWdmGetTargetFileObject", K_TARGET, false, true, tgt_fileobj),
    C("WdfIoTargetFormatRequestForRead", K_TARGET, false, true, tgt_fmt_read),
    C("WdfIoTargetFormatRequestForWrite", K_TARGET, false, true, tgt_fmt_write),
    C("WdfIoTargetFormatRequestForIoctl", K_TARGET, false, true, tgt_fmt_ioctl),
    C("WdfIoTargetFormatRequestForInternalIoctl", K_TARGET, false, true, tgt_fmt_iioctl),
    C("WdfIoTargetSendReadSynchronously", K_TARGET, false, true, tgt_sync_read),
    C("WdfIoTargetSendIoctlSynchronously", K_TARGET, false, true, tgt_sync_ioctl),
    C("WdfRequestSend", K_TARGET, false, true, tgt_send),
    C("WdfRequestChangeTarget", K_TARGET, false, true, tgt_change_target),
    C("WdfRequestCreate", K_TARGET, true, true, tgt_request_create),
    C("UwdfIoTargetGetBackendName", K_TARGET, false, true, tgt_backend),
    C("WdfMemoryAssignBuffer", K_MEMORY, false, true, mem_assign),
    C("WdfMemoryGetBuffer", K_MEMORY, false, true, mem_get_buffer),
    C("WdfMemoryCopyToBuffer", K_MEMORY, false, true, mem_copy_to),
    C("WdfMemoryCopyFromBuffer", K_MEMORY, false, true, mem_copy_from),
    C("WdfIoTargetFormatRequestForRead", K_MEMORY, true, true, mem_fmt_read),
    C("WdfIoTargetFormatRequestForWrite", K_MEMORY, true, true, mem_fmt_write),
    C("WdfIoTargetFormatRequestForIoctl", K_MEMORY, true, true, mem_fmt_ioctl),
    C("WdfIoTargetSendReadSynchronously", K_MEMORY, true, true, mem_sync_read),
    C("WdfMemoryCreateFromLookaside", K_LOOKASIDE, false, true, la_create_memory),
    C("WdfIoTargetCreate", K_DEVICE, false, true, dev_target_create),
    C("WdfControlFinishInitializing", K_DEVICE, false, false, dev_finish),
    C("WdfDeviceWdmGetDeviceObject", K_DEVICE, false, true, dev_wdm),
    C("WdfDeviceGetDriver", K_DEVICE, false, true, dev_driver),
    C("WdfControlDeviceInitAllocate", K_DRIVER, false, true, drv_init_alloc),
    C("WdfDriverWdmGetDriverObject", K_DRIVER, false, true, drv_wdm),
    C("WdfObjectDelete", K_ANY, false, false, obj_delete),
    C("WdfObjectReference", K_ANY, false, false, obj_reference),
    C("WdfObjectDereference", K_ANY, false, false, obj_dereference),
    C("WdfObjectGetTypedContext", K_ANY, false, true, obj_context),
    C("WdfObjectAllocateContext", K_ANY, false, true, obj_allocate_context),
    C("ParentObject", K_ANY, true, true, obj_parent),
};

enum badness { B_NULL, B_DELETED, B_STALE, B_GARBAGE, B_GARBAGE_HIGH, B_WRONG_TYPE, B_COUNT };
static const char *const badness_names[B_COUNT] = { "NULL", "deleted", "stale", "garbage", "garbage-high-bit",
                                                    "wrong-type" };

/* A live handle of the kind, for stale handles and as a wrong type. */
static WDFOBJECT live_of(struct live *l, enum kind k)
{
    switch (k) {
    case K_REQUEST: return l->request;
    case K_TARGET: return l->target;
    case K_MEMORY: return l->memory;
    case K_LOOKASIDE: return l->lookaside;
    case K_DEVICE: return l->e.device;
    case K_DRIVER: return l->e.driver;
    default: return l->object;
    }
}

/* A handle of kind k whose object was created and deleted. The driver and
 * the device cannot be deleted without ending the test's environment, so
 * theirs is the live handle with the generation moved on, which is what
 * deletion leaves behind (see B_STALE). */
static WDFOBJECT deleted_of(struct live *l, enum kind k)
{
    WDFOBJECT h = NULL;
    switch (k) {
    case K_REQUEST: h = tu_make_request(l->target); break;
    case K_TARGET: ck_assert_int_eq(WdfIoTargetCreate(l->e.device, WDF_NO_OBJECT_ATTRIBUTES, (WDFIOTARGET *)&h), 0); break;
    case K_MEMORY: h = tu_make_memory(64, NULL); break;
    case K_LOOKASIDE:
        ck_assert_int_eq(WdfLookasideListCreate(WDF_NO_OBJECT_ATTRIBUTES, 64, NonPagedPoolNx, WDF_NO_OBJECT_ATTRIBUTES, 0,
                                                (WDFLOOKASIDE *)&h),
                         0);
        break;
    case K_ANY: ck_assert_int_eq(WdfObjectCreate(WDF_NO_OBJECT_ATTRIBUTES, &h), 0); break;
    default: return (WDFOBJECT)((uintptr_t)live_of(l, k) + ((uintptr_t)1 << INDEX_SHIFT));
    }
    WdfObjectDelete(h);
    return h;
}

static WDFOBJECT bad_handle(struct live *l, enum kind k, enum badness b)
{
    static char on_stack_like[64];
    switch (b) {
    case B_NULL: return NULL;
    case B_DELETED: return deleted_of(l, k);
    case B_STALE: return (WDFOBJECT)((uintptr_t)live_of(l, k) + ((uintptr_t)3 << INDEX_SHIFT));
    case B_GARBAGE: return (WDFOBJECT)on_stack_like; /* a real address, not a handle */
    case B_GARBAGE_HIGH: return (WDFOBJECT)(uintptr_t)UINT64_MAX;
    default: return live_of(l, k == K_REQUEST ? K_MEMORY : K_REQUEST);
    }
}

START_TEST(every_handle_ddi_rejects_bad_handles_with_a_bug_check)
{
    struct live l;
    unsigned cases = 0;
    ck_assert(tu_use_backend(0));
    live_init(&l);
    g_rp.Size = sizeof(g_rp);
    g_cp.Size = sizeof(g_cp);
    g_params.Size = sizeof(g_params);
    for (size_t i = 0; i < sizeof(handle_cases) / sizeof(handle_cases[0]); i++) {
        const struct handle_case *c = &handle_cases[i];
        for (int b = 0; b < B_COUNT; b++) {
            if ((b == B_NULL && c->optional) || (b == B_WRONG_TYPE && c->kind == K_ANY))
                continue;
            WDFOBJECT h = bad_handle(&l, c->kind, (enum badness)b);
            tu_bugcheck_reset();
            NTSTATUS s = c->call(&l, h);
            ck_assert_msg(tu_last_bugcheck.count == 1, "%s, %s handle: %d bug checks", c->ddi, badness_names[b],
                          tu_last_bugcheck.count);
            ULONG want = b == B_NULL ? WDF_REQUIRED_PARAMETER_IS_NULL : WDF_INVALID_HANDLE;
            ck_assert_msg(tu_last_bugcheck.code == want, "%s, %s handle: code %lu", c->ddi, badness_names[b],
                          (unsigned long)tu_last_bugcheck.code);
            ck_assert_msg(strstr(tu_last_bugcheck.reason, c->ddi), "%s, %s handle: reason '%s'", c->ddi,
                          badness_names[b], tu_last_bugcheck.reason);
            if (c->returns_status)
                ck_assert_msg(!NT_SUCCESS(s), "%s, %s handle: returned success", c->ddi, badness_names[b]);
            tu_bugcheck_reset();
            cases++;
        }
        live_check(&l);
    }
    printf("hostile: handles cases=%u\n", cases);
    fflush(stdout);
    live_fini(&l);
}
END_TEST

/* ---- NULL for required pointers ---- */

struct null_case {
    const char *what;
    ddi_call *call;
    NTSTATUS status; /* what the DDI returns (0: VOID, or checked in the call) */
};

#define N(name, body) H(null_##name, body)
N(req_create, return WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, l->target, NULL);)
N(req_from_irp_irp, {
    WDFREQUEST r = NULL;
    return WdfRequestCreateFromIrp(WDF_NO_OBJECT_ATTRIBUTES, NULL, FALSE, &r);
})
N(req_reuse, return WdfRequestReuse(l->request, NULL);)
N(req_cparams, WdfRequestGetCompletionParams(l->request, NULL); return 0;)
N(req_params, WdfRequestGetParameters(l->request, NULL); return 0;)
N(req_stack, WdfRequestWdmFormatUsingStackLocation(l->request, NULL); return 0;)
N(mem_create, return WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, 16, NULL, NULL);)
N(mem_prealloc, {
    char b[8];
    return WdfMemoryCreatePreallocated(WDF_NO_OBJECT_ATTRIBUTES, b, sizeof(b), NULL);
})
N(la_create, return WdfLookasideListCreate(WDF_NO_OBJECT_ATTRIBUTES, 16, NonPagedPoolNx, NULL, 0, NULL);)
N(la_memory, return WdfMemoryCreateFromLookaside(l->lookaside, NULL);)
N(tgt_create, return WdfIoTargetCreate(l->e.device, WDF_NO_OBJECT_ATTRIBUTES, NULL);)
N(tgt_open, return WdfIoTargetOpen(l->target, NULL);)
N(obj_create, return WdfObjectCreate(WDF_NO_OBJECT_ATTRIBUTES, NULL);)
N(obj_context_type, return WdfObjectGetTypedContextWorker(l->object, NULL) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
N(obj_context_get_object, return WdfObjectContextGetObject(NULL) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
N(obj_allocate_context, return WdfObjectAllocateContext(l->object, NULL, NULL);)
N(dev_init_sddl, return WdfControlDeviceInitAllocate(l->e.driver, NULL) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
N(dev_create, return WdfDeviceCreate(NULL, WDF_NO_OBJECT_ATTRIBUTES, NULL);)
N(dev_set_io_type, WdfDeviceInitSetIoType(NULL, WdfDeviceIoDirect); return 0;)
N(flt_register, return FltRegisterFilter(WdfDriverWdmGetDriverObject(l->e.driver), NULL, NULL);)
N(flt_volume, return FltGetVolumeFromName(NULL, NULL, NULL);)
N(flt_alloc_data, return FltAllocateCallbackData(NULL, NULL, NULL);)
N(flt_perform_sync, FltPerformSynchronousIo(NULL); return 0;)
N(flt_free_data, FltFreeCallbackData(NULL); return 0;)
N(flt_reuse_data, FltReuseCallbackData(NULL); return 0;)
N(flt_dereference, FltObjectDereference(NULL); return 0;)
N(ob_dereference, ObDereferenceObject(NULL); return 0;)

static const struct null_case null_cases[] = {
    { "WdfRequestCreate(Request)", h_null_req_create, STATUS_INVALID_PARAMETER },
    { "WdfRequestCreateFromIrp(Irp)", h_null_req_from_irp_irp, STATUS_INVALID_PARAMETER },
    { "WdfRequestReuse(ReuseParams)", h_null_req_reuse, STATUS_INVALID_PARAMETER },
    { "WdfRequestGetCompletionParams(Params)", h_null_req_cparams, 0 },
    { "WdfRequestGetParameters(Parameters)", h_null_req_params, 0 },
    { "WdfRequestWdmFormatUsingStackLocation(Stack)", h_null_req_stack, 0 },
    { "WdfMemoryCreate(Memory)", h_null_mem_create, STATUS_INVALID_PARAMETER },
    { "WdfMemoryCreatePreallocated(Memory)", h_null_mem_prealloc, STATUS_INVALID_PARAMETER },
    { "WdfLookasideListCreate(Lookaside)", h_null_la_create, STATUS_INVALID_PARAMETER },
    { "WdfMemoryCreateFromLookaside(Memory)", h_null_la_memory, STATUS_INVALID_PARAMETER },
    { "WdfIoTargetCreate(IoTarget)", h_null_tgt_create, STATUS_INVALID_PARAMETER },
    { "WdfIoTargetOpen(OpenParams)", h_null_tgt_open, STATUS_INVALID_PARAMETER },
    { "WdfObjectCreate(Object)", h_null_obj_create, STATUS_INVALID_PARAMETER },
    { "WdfObjectGetTypedContext(TypeInfo)", h_null_obj_context_type, STATUS_UNSUCCESSFUL },
    { "WdfObjectContextGetObject(ContextPointer)", h_null_obj_context_get_object, STATUS_UNSUCCESSFUL },
    { "WdfObjectAllocateContext(ContextAttributes)", h_null_obj_allocate_context, STATUS_INVALID_PARAMETER },
    { "WdfControlDeviceInitAllocate(SDDLString)", h_null_dev_init_sddl, STATUS_UNSUCCESSFUL },
    { "WdfDeviceCreate(DeviceInit)", h_null_dev_create, STATUS_INVALID_PARAMETER },
    { "WdfDeviceInitSetIoType(DeviceInit)", h_null_dev_set_io_type, 0 },
    { "FltRegisterFilter(Registration)", h_null_flt_register, STATUS_INVALID_PARAMETER },
    { "FltGetVolumeFromName(Filter)", h_null_flt_volume, STATUS_INVALID_PARAMETER },
    { "FltAllocateCallbackData(Instance)", h_null_flt_alloc_data, STATUS_INVALID_PARAMETER },
    { "FltPerformSynchronousIo(CallbackData)", h_null_flt_perform_sync, 0 },
    { "FltFreeCallbackData(CallbackData)", h_null_flt_free_data, 0 },
    { "FltReuseCallbackData(CallbackData)", h_null_flt_reuse_data, 0 },
    { "FltObjectDereference(FltObject)", h_null_flt_dereference, 0 },
    { "ObDereferenceObject(Object)", h_null_ob_dereference, 0 },
};

START_TEST(null_required_pointers_are_a_bug_check_and_the_documented_status)
{
    struct live l;
    ck_assert(tu_use_backend(0));
    live_init(&l);
    unsigned cases = 0;
    for (size_t i = 0; i < sizeof(null_cases) / sizeof(null_cases[0]); i++) {
        const struct null_case *c = &null_cases[i];
        char ddi[64];
        snprintf(ddi, sizeof(ddi), "%.*s", (int)strcspn(c->what, "("), c->what);
        tu_bugcheck_reset();
        NTSTATUS s = c->call(&l, NULL);
        ck_assert_msg(tu_last_bugcheck.count == 1 && tu_last_bugcheck.code == WDF_REQUIRED_PARAMETER_IS_NULL,
                      "%s: %d bug checks, code %lu", c->what, tu_last_bugcheck.count,
                      (unsigned long)tu_last_bugcheck.code);
        ck_assert_msg(strstr(tu_last_bugcheck.reason, ddi), "%s: reason '%s'", c->what, tu_last_bugcheck.reason);
        ck_assert_msg(s == c->status, "%s: 0x%08x, expected 0x%08x", c->what, (unsigned)s, (unsigned)c->status);
        tu_bugcheck_reset();
        cases++;
    }
    live_check(&l);
    printf("hostile: null_pointers cases=%u\n", cases);
    fflush(stdout);
    live_fini(&l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tu_tcase(s, "handles", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, every_handle_ddi_rejects_bad_handles_with_a_bug_check);
    tcase_add_test(tc, null_required_pointers_are_a_bug_check_and_the_documented_status);
    return tu_main(s, "test_hostile");
}
