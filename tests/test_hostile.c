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
#include <sys/stat.h>
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

/* Live objects the calls use in the positions that are not under test:
 * the environment's file target (FILE_SEED) and memory (e.mem, e.buf),
 * and these. */
struct live {
    struct tu_env e;
    WDFREQUEST request;
    WDFLOOKASIDE lookaside;
    WDFOBJECT object;
    WDFQUEUE queue; /* a manual queue on the control device */
};

static void live_init(struct live *l, int backend)
{
    tu_env_init_backend(&l->e, backend);
    tu_env_open_file(&l->e, FILE_SIZE, FILE_SEED, GENERIC_READ | GENERIC_WRITE, 0);
    l->request = tu_make_request(l->e.target);
    memset(tu_env_memory(&l->e, BLK), 0, BLK);
    ck_assert_status(WdfLookasideListCreate(WDF_NO_OBJECT_ATTRIBUTES, BLK, NonPagedPoolNx, WDF_NO_OBJECT_ATTRIBUTES,
                                            0, &l->lookaside),
                     STATUS_SUCCESS);
    WDF_OBJECT_ATTRIBUTES a;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, HOSTILE_CTX);
    ck_assert_status(WdfObjectCreate(&a, &l->object), STATUS_SUCCESS);
    hostile_ctx_get(l->object)->v = 0x5a5a;
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT(&qc, WdfIoQueueDispatchManual);
    ck_assert_status(WdfIoQueueCreate(l->e.device, &qc, WDF_NO_OBJECT_ATTRIBUTES, &l->queue), STATUS_SUCCESS);
}

/* The live objects still do their jobs: a read through the request and
 * memory gives the file's data, the object keeps its context. */
static void live_check(struct live *l)
{
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = BLK;
    ULONG_PTR bytes = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, l->e.mem, NULL);
    memset(l->e.buf, 0, BLK);
    ck_assert_status(WdfIoTargetSendReadSynchronously(l->e.target, l->request, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(l->e.buf, BLK, FILE_SEED, BLK));
    ck_assert_uint_eq(hostile_ctx_get(l->object)->v, 0x5a5a);
    WDFMEMORY m;
    ck_assert_status(WdfMemoryCreateFromLookaside(l->lookaside, &m), STATUS_SUCCESS);
    WdfObjectDelete(m);
    ck_assert_int_eq(WdfIoTargetGetState(l->e.target), WdfIoTargetStarted);
    ULONG queued = 9, owned = 9;
    ck_assert(WdfIoQueueGetState(l->queue, &queued, &owned) & WdfIoQueueAcceptRequests);
    ck_assert_uint_eq(queued + owned, 0);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
}

/* ---- handles ---- */

enum kind { K_REQUEST, K_TARGET, K_MEMORY, K_LOOKASIDE, K_DEVICE, K_DRIVER, K_QUEUE, K_ANY };

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
H(req_change_target, return WdfRequestChangeTarget((WDFREQUEST)h, l->e.target);)
H(req_format_current, WdfRequestFormatRequestUsingCurrentType((WDFREQUEST)h); return 0;)
H(req_format_stack, WdfRequestWdmFormatUsingStackLocation((WDFREQUEST)h, &g_stack); return 0;)
H(req_send, return WdfRequestSend((WDFREQUEST)h, l->e.target, NULL) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
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
H(req_fmt_read, return WdfIoTargetFormatRequestForRead(l->e.target, (WDFREQUEST)h, l->e.mem, NULL, NULL);)
H(req_fmt_write, return WdfIoTargetFormatRequestForWrite(l->e.target, (WDFREQUEST)h, l->e.mem, NULL, NULL);)
H(req_fmt_ioctl, return WdfIoTargetFormatRequestForIoctl(l->e.target, (WDFREQUEST)h, IOCTL_DISK_GET_LENGTH_INFO,
                                                         NULL, NULL, l->e.mem, NULL);)
H(req_fmt_iioctl, return WdfIoTargetFormatRequestForInternalIoctl(l->e.target, (WDFREQUEST)h, 1, NULL, NULL, NULL,
                                                                  NULL);)
H(req_sync_read, return sync_read_with(l->e.target, (WDFREQUEST)h, l->e.mem);)
H(req_sync_write, {
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, l->e.mem, NULL);
    return WdfIoTargetSendWriteSynchronously(l->e.target, (WDFREQUEST)h, &d, &off, NULL, NULL);
})
H(req_sync_ioctl, return WdfIoTargetSendIoctlSynchronously(l->e.target, (WDFREQUEST)h, IOCTL_DISK_GET_LENGTH_INFO,
                                                           NULL, NULL, NULL, NULL);)
H(req_sync_iioctl, return WdfIoTargetSendInternalIoctlSynchronously(l->e.target, (WDFREQUEST)h, 1, NULL, NULL, NULL,
                                                                    NULL);)
/* target position */
H(tgt_open, {
    WDF_IO_TARGET_OPEN_PARAMS p;
    UNICODE_STRING us;
    WCHAR wbuf[4096];
    tu_unicode(&us, wbuf, 4096, l->e.path);
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
H(tgt_fmt_read, return WdfIoTargetFormatRequestForRead((WDFIOTARGET)h, l->request, l->e.mem, NULL, NULL);)
H(tgt_fmt_write, return WdfIoTargetFormatRequestForWrite((WDFIOTARGET)h, l->request, l->e.mem, NULL, NULL);)
H(tgt_fmt_ioctl, return WdfIoTargetFormatRequestForIoctl((WDFIOTARGET)h, l->request, 1, NULL, NULL, NULL, NULL);)
H(tgt_fmt_iioctl,
  return WdfIoTargetFormatRequestForInternalIoctl((WDFIOTARGET)h, l->request, 1, NULL, NULL, NULL, NULL);)
H(tgt_sync_read, return sync_read_with((WDFIOTARGET)h, NULL, l->e.mem);)
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
H(mem_fmt_read, return WdfIoTargetFormatRequestForRead(l->e.target, l->request, (WDFMEMORY)h, NULL, NULL);)
H(mem_fmt_write, return WdfIoTargetFormatRequestForWrite(l->e.target, l->request, (WDFMEMORY)h, NULL, NULL);)
H(mem_fmt_ioctl, return WdfIoTargetFormatRequestForIoctl(l->e.target, l->request, 1, (WDFMEMORY)h, NULL, NULL, NULL);)
H(mem_sync_read, return sync_read_with(l->e.target, NULL, (WDFMEMORY)h);)
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

/* queue position, and the DDIs of requests received from a queue */
static VOID q_state_cb(WDFQUEUE q, WDFCONTEXT c)
{
    (void)q;
    (void)c;
}
static VOID q_cancel_cb(WDFREQUEST r)
{
    (void)r;
}
H(q_state, {
    ULONG qa = 7;
    ULONG qb = 7;
    return WdfIoQueueGetState((WDFQUEUE)h, &qa, &qb) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;
})
H(q_start, WdfIoQueueStart((WDFQUEUE)h); return 0;)
H(q_stop, WdfIoQueueStop((WDFQUEUE)h, q_state_cb, NULL); return 0;)
H(q_stop_sync, WdfIoQueueStopSynchronously((WDFQUEUE)h); return 0;)
H(q_drain, WdfIoQueueDrain((WDFQUEUE)h, q_state_cb, NULL); return 0;)
H(q_drain_sync, WdfIoQueueDrainSynchronously((WDFQUEUE)h); return 0;)
H(q_purge, WdfIoQueuePurge((WDFQUEUE)h, q_state_cb, NULL); return 0;)
H(q_purge_sync, WdfIoQueuePurgeSynchronously((WDFQUEUE)h); return 0;)
H(q_stop_purge, WdfIoQueueStopAndPurge((WDFQUEUE)h, q_state_cb, NULL); return 0;)
H(q_stop_purge_sync, WdfIoQueueStopAndPurgeSynchronously((WDFQUEUE)h); return 0;)
H(q_retrieve, {
    WDFREQUEST r = (WDFREQUEST)1;
    NTSTATUS s = WdfIoQueueRetrieveNextRequest((WDFQUEUE)h, &r);
    ck_assert_ptr_null(r);
    return s;
})
H(q_ready_notify, return WdfIoQueueReadyNotify((WDFQUEUE)h, NULL, NULL);)
H(q_device, return WdfIoQueueGetDevice((WDFQUEUE)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(q_fp_policy, {
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY fp;
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_DEFAULT_INIT(&fp, 1);
    return WdfIoQueueAssignForwardProgressPolicy((WDFQUEUE)h, &fp);
})
H(dev_get_target, return WdfDeviceGetIoTarget((WDFDEVICE)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(dev_default_queue, return WdfDeviceGetDefaultQueue((WDFDEVICE)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(dev_symlink, {
    DECLARE_CONST_UNICODE_STRING(link, L"\\DosDevices\\uwdfHostile");
    return WdfDeviceCreateSymbolicLink((WDFDEVICE)h, &link);
})
H(dev_dispatching, return WdfDeviceConfigureRequestDispatching((WDFDEVICE)h, l->queue, WdfRequestTypeRead);)
H(dev_queue_create, {
    WDF_IO_QUEUE_CONFIG qc;
    WDFQUEUE q = NULL;
    WDF_IO_QUEUE_CONFIG_INIT(&qc, WdfIoQueueDispatchManual);
    NTSTATUS s = WdfIoQueueCreate((WDFDEVICE)h, &qc, WDF_NO_OBJECT_ATTRIBUTES, &q);
    ck_assert_ptr_null(q);
    return s;
})
H(req_complete, WdfRequestComplete((WDFREQUEST)h, STATUS_SUCCESS); return 0;)
H(req_complete_info, WdfRequestCompleteWithInformation((WDFREQUEST)h, STATUS_SUCCESS, 1); return 0;)
H(req_complete_boost, WdfRequestCompleteWithPriorityBoost((WDFREQUEST)h, STATUS_SUCCESS, 0); return 0;)
static WDFMEMORY g_out_mem;
static PVOID g_out_buf;
static PMDL g_out_mdl;
H(req_in_memory, return WdfRequestRetrieveInputMemory((WDFREQUEST)h, &g_out_mem);)
H(req_out_memory, return WdfRequestRetrieveOutputMemory((WDFREQUEST)h, &g_out_mem);)
H(req_in_buffer, return WdfRequestRetrieveInputBuffer((WDFREQUEST)h, 0, &g_out_buf, NULL);)
H(req_out_buffer, return WdfRequestRetrieveOutputBuffer((WDFREQUEST)h, 0, &g_out_buf, NULL);)
H(req_in_mdl, return WdfRequestRetrieveInputWdmMdl((WDFREQUEST)h, &g_out_mdl);)
H(req_out_mdl, return WdfRequestRetrieveOutputWdmMdl((WDFREQUEST)h, &g_out_mdl);)
H(req_mark_cancelable, WdfRequestMarkCancelable((WDFREQUEST)h, q_cancel_cb); return 0;)
H(req_mark_cancelable_ex, return WdfRequestMarkCancelableEx((WDFREQUEST)h, q_cancel_cb);)
H(req_unmark_cancelable, return WdfRequestUnmarkCancelable((WDFREQUEST)h);)
H(req_is_canceled, return WdfRequestIsCanceled((WDFREQUEST)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(req_get_queue, return WdfRequestGetIoQueue((WDFREQUEST)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(req_forward, return WdfRequestForwardToIoQueue((WDFREQUEST)h, l->queue);)
H(req_requeue, return WdfRequestRequeue((WDFREQUEST)h);)
H(req_stop_ack, WdfRequestStopAcknowledge((WDFREQUEST)h, FALSE); return 0;)
H(req_is_reserved, return WdfRequestIsReserved((WDFREQUEST)h) ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;)
H(req_requestor_mode, WdfRequestGetRequestorMode((WDFREQUEST)h); return 0;)

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
    C("WdfIoQueueGetState", K_QUEUE, false, true, q_state),
    C("WdfIoQueueStart", K_QUEUE, false, false, q_start),
    C("WdfIoQueueStop", K_QUEUE, false, false, q_stop),
    C("WdfIoQueueStopSynchronously", K_QUEUE, false, false, q_stop_sync),
    C("WdfIoQueueDrain", K_QUEUE, false, false, q_drain),
    C("WdfIoQueueDrainSynchronously", K_QUEUE, false, false, q_drain_sync),
    C("WdfIoQueuePurge", K_QUEUE, false, false, q_purge),
    C("WdfIoQueuePurgeSynchronously", K_QUEUE, false, false, q_purge_sync),
    C("WdfIoQueueStopAndPurge", K_QUEUE, false, false, q_stop_purge),
    C("WdfIoQueueStopAndPurgeSynchronously", K_QUEUE, false, false, q_stop_purge_sync),
    C("WdfIoQueueRetrieveNextRequest", K_QUEUE, false, true, q_retrieve),
    C("WdfIoQueueReadyNotify", K_QUEUE, false, true, q_ready_notify),
    C("WdfIoQueueGetDevice", K_QUEUE, false, true, q_device),
    C("WdfIoQueueAssignForwardProgressPolicy", K_QUEUE, false, true, q_fp_policy),
    C("WdfDeviceGetIoTarget", K_DEVICE, false, true, dev_get_target),
    C("WdfDeviceGetDefaultQueue", K_DEVICE, false, true, dev_default_queue),
    C("WdfDeviceCreateSymbolicLink", K_DEVICE, false, true, dev_symlink),
    C("WdfDeviceConfigureRequestDispatching", K_DEVICE, false, true, dev_dispatching),
    C("WdfIoQueueCreate", K_DEVICE, false, true, dev_queue_create),
    C("WdfRequestComplete", K_REQUEST, false, false, req_complete),
    C("WdfRequestCompleteWithInformation", K_REQUEST, false, false, req_complete_info),
    C("WdfRequestCompleteWithPriorityBoost", K_REQUEST, false, false, req_complete_boost),
    C("WdfRequestRetrieveInputMemory", K_REQUEST, false, true, req_in_memory),
    C("WdfRequestRetrieveOutputMemory", K_REQUEST, false, true, req_out_memory),
    C("WdfRequestRetrieveInputBuffer", K_REQUEST, false, true, req_in_buffer),
    C("WdfRequestRetrieveOutputBuffer", K_REQUEST, false, true, req_out_buffer),
    C("WdfRequestRetrieveInputWdmMdl", K_REQUEST, false, true, req_in_mdl),
    C("WdfRequestRetrieveOutputWdmMdl", K_REQUEST, false, true, req_out_mdl),
    C("WdfRequestMarkCancelable", K_REQUEST, false, false, req_mark_cancelable),
    C("WdfRequestMarkCancelableEx", K_REQUEST, false, true, req_mark_cancelable_ex),
    C("WdfRequestUnmarkCancelable", K_REQUEST, false, true, req_unmark_cancelable),
    C("WdfRequestIsCanceled", K_REQUEST, false, false, req_is_canceled),
    C("WdfRequestGetIoQueue", K_REQUEST, false, true, req_get_queue),
    C("WdfRequestForwardToIoQueue", K_REQUEST, false, true, req_forward),
    C("WdfRequestRequeue", K_REQUEST, false, true, req_requeue),
    C("WdfRequestStopAcknowledge", K_REQUEST, false, false, req_stop_ack),
    C("WdfRequestIsReserved", K_REQUEST, false, false, req_is_reserved),
    C("WdfRequestGetRequestorMode", K_REQUEST, false, false, req_requestor_mode),
};

enum badness { B_NULL, B_DELETED, B_STALE, B_GARBAGE, B_GARBAGE_HIGH, B_WRONG_TYPE, B_COUNT };
static const char *const badness_names[B_COUNT] = { "NULL", "deleted", "stale", "garbage", "garbage-high-bit",
                                                    "wrong-type" };

/* A live handle of the kind, for stale handles and as a wrong type. */
static WDFOBJECT live_of(struct live *l, enum kind k)
{
    switch (k) {
    case K_REQUEST: return l->request;
    case K_TARGET: return l->e.target;
    case K_MEMORY: return l->e.mem;
    case K_LOOKASIDE: return l->lookaside;
    case K_DEVICE: return l->e.device;
    case K_DRIVER: return l->e.driver;
    case K_QUEUE: return l->queue;
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
    case K_REQUEST: h = tu_make_request(l->e.target); break;
    case K_TARGET:
        ck_assert_status(WdfIoTargetCreate(l->e.device, WDF_NO_OBJECT_ATTRIBUTES, (WDFIOTARGET *)&h), STATUS_SUCCESS);
        break;
    case K_MEMORY: h = tu_make_memory(64, NULL); break;
    case K_LOOKASIDE:
        ck_assert_status(WdfLookasideListCreate(WDF_NO_OBJECT_ATTRIBUTES, 64, NonPagedPoolNx, WDF_NO_OBJECT_ATTRIBUTES, 0,
                                                (WDFLOOKASIDE *)&h),
                         STATUS_SUCCESS);
        break;
    case K_ANY: ck_assert_status(WdfObjectCreate(WDF_NO_OBJECT_ATTRIBUTES, &h), STATUS_SUCCESS); break;
    case K_QUEUE: {
        WDF_IO_QUEUE_CONFIG qc;
        WDF_IO_QUEUE_CONFIG_INIT(&qc, WdfIoQueueDispatchManual);
        ck_assert_status(WdfIoQueueCreate(l->e.device, &qc, WDF_NO_OBJECT_ATTRIBUTES, (WDFQUEUE *)&h), STATUS_SUCCESS);
        break;
    }
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
    live_init(&l, 0);
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
                ck_assert_msg(!NT_SUCCESS(s), "%s, %s handle: returned " TU_STATUS_FMT, c->ddi, badness_names[b],
                              TU_STATUS_ARG(s));
            tu_bugcheck_reset();
            cases++;
        }
        live_check(&l);
    }
    printf("hostile: handles cases=%u\n", cases);
    fflush(stdout);
    tu_env_fini(&l.e);
}
END_TEST

/* ---- NULL for required pointers ---- */

struct null_case {
    const char *what;
    ddi_call *call;
    NTSTATUS status; /* what the DDI returns (0: VOID, or checked in the call) */
};

#define N(name, body) H(null_##name, body)
N(req_create, return WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, l->e.target, NULL);)
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
N(tgt_open, return WdfIoTargetOpen(l->e.target, NULL);)
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
    live_init(&l, 0);
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
        ck_assert_status_msg(s, c->status, "%s", c->what);
        tu_bugcheck_reset();
        cases++;
    }
    live_check(&l);
    printf("hostile: null_pointers cases=%u\n", cases);
    fflush(stdout);
    tu_env_fini(&l.e);
}
END_TEST

/* ---- Filter Manager objects ---- */

/* Readable memory that is no Flt object (all zeros: also what a freed and
 * cleared object looks like). */
static _Alignas(64) unsigned char g_flt_garbage[4096];

struct flt_env {
    struct live l;
    struct tu_flt f;
};

typedef void flt_call(struct flt_env *fe, void *bad);

#define F(name, body)                                                                           \
    static void f_##name(struct flt_env *fe, void *bad)                                         \
    {                                                                                           \
        (void)fe;                                                                               \
        body                                                                                    \
    }

F(start, ck_assert_status(FltStartFiltering(bad), STATUS_INVALID_PARAMETER);)
F(unregister, FltUnregisterFilter(bad);)
F(volume_from_name, {
    WCHAR w[4096];
    UNICODE_STRING us;
    PFLT_VOLUME v = (PFLT_VOLUME)1;
    tu_unicode(&us, w, 4096, fe->l.e.dir);
    ck_assert_status(FltGetVolumeFromName(bad, &us, &v), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(v);
})
F(attach_filter, {
    PFLT_INSTANCE i = (PFLT_INSTANCE)1;
    ck_assert_status(FltAttachVolume(bad, fe->f.volume, NULL, &i), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(i);
})
F(attach_volume, {
    PFLT_INSTANCE i = (PFLT_INSTANCE)1;
    ck_assert_status(FltAttachVolume(fe->f.filter, bad, NULL, &i), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(i);
})
F(detach_filter, ck_assert_status(FltDetachVolume(bad, fe->f.volume, NULL), STATUS_INVALID_PARAMETER);)
F(detach_volume, ck_assert_status(FltDetachVolume(fe->f.filter, bad, NULL), STATUS_INVALID_PARAMETER);)
F(create_file, {
    WCHAR w[4096];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    HANDLE h = (HANDLE)1;
    tu_unicode(&us, w, 4096, fe->l.e.path);
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE, NULL, NULL);
    ck_assert_status(FltCreateFileEx(fe->f.filter, bad, &h, NULL, GENERIC_READ, &oa, &iosb, NULL, 0, 0, FILE_OPEN, 0,
                                     NULL, 0, 0),
                     STATUS_INVALID_PARAMETER);
})
F(allocate_data, {
    PFLT_CALLBACK_DATA d = (PFLT_CALLBACK_DATA)1;
    ck_assert_status(FltAllocateCallbackData(bad, fe->f.fo, &d), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(d);
})
F(object_dereference, FltObjectDereference(bad);)
F(perform_sync, FltPerformSynchronousIo(bad);)
F(perform_async, ck_assert_status(FltPerformAsynchronousIo(bad, (PFLT_COMPLETED_ASYNC_IO_CALLBACK)f_perform_sync, NULL),
                                  STATUS_INVALID_PARAMETER);)
F(reuse_data, FltReuseCallbackData(bad);)
F(free_data, FltFreeCallbackData(bad);)
F(ob_dereference, ObDereferenceObject(bad);)

enum flt_kind { FK_FILTER, FK_VOLUME, FK_INSTANCE, FK_DATA, FK_ANY, FK_FILE };
struct flt_case {
    const char *ddi;
    enum flt_kind kind;
    flt_call *call;
};
static const struct flt_case flt_cases[] = {
    { "FltStartFiltering", FK_FILTER, f_start },
    { "FltUnregisterFilter", FK_FILTER, f_unregister },
    { "FltGetVolumeFromName", FK_FILTER, f_volume_from_name },
    { "FltAttachVolume", FK_FILTER, f_attach_filter },
    { "FltAttachVolume", FK_VOLUME, f_attach_volume },
    { "FltDetachVolume", FK_FILTER, f_detach_filter },
    { "FltDetachVolume", FK_VOLUME, f_detach_volume },
    { "FltCreateFileEx", FK_INSTANCE, f_create_file },
    { "FltAllocateCallbackData", FK_INSTANCE, f_allocate_data },
    { "FltObjectDereference", FK_ANY, f_object_dereference },
    { "FltPerformSynchronousIo", FK_DATA, f_perform_sync },
    { "FltPerformAsynchronousIo", FK_DATA, f_perform_async },
    { "FltReuseCallbackData", FK_DATA, f_reuse_data },
    { "FltFreeCallbackData", FK_DATA, f_free_data },
    { "ObDereferenceObject", FK_FILE, f_ob_dereference },
};

START_TEST(flt_objects_of_the_wrong_kind_or_garbage_are_a_bug_check)
{
    struct flt_env fe;
    unsigned cases = 0;
    live_init(&fe.l, _i);
    tu_flt_open(&fe.l.e, fe.l.e.path, &fe.f);
    for (size_t i = 0; i < sizeof(flt_cases) / sizeof(flt_cases[0]); i++) {
        const struct flt_case *c = &flt_cases[i];
        /* Another kind of Flt object (or a WDF structure) and garbage. */
        /* The filter, the largest Flt object, stands in for the kinds whose
         * tag is not at the start (file objects, callback data), so the
         * check reads inside it. */
        void *wrong = c->kind == FK_FILTER ? (void *)fe.f.volume : (void *)fe.f.filter;
        if (c->kind == FK_ANY)
            wrong = fe.f.fo;
        void *bads[] = { wrong, g_flt_garbage };
        for (size_t b = 0; b < 2; b++) {
            tu_bugcheck_reset();
            c->call(&fe, bads[b]);
            ck_assert_msg(tu_last_bugcheck.count == 1, "%s (%zu): %d bug checks", c->ddi, b, tu_last_bugcheck.count);
            ck_assert_msg(tu_last_bugcheck.code == WDF_VERIFIER_FATAL_ERROR, "%s: code %lu", c->ddi,
                          (unsigned long)tu_last_bugcheck.code);
            ck_assert_msg(strstr(tu_last_bugcheck.reason, c->ddi), "%s: reason '%s'", c->ddi, tu_last_bugcheck.reason);
            tu_bugcheck_reset();
            cases++;
        }
    }
    for (size_t k = 0; k < sizeof(g_flt_garbage); k++)
        ck_assert_uint_eq(g_flt_garbage[k], 0); /* nothing was written through it */
    /* The real objects still work. */
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fe.f.fo, &d), STATUS_SUCCESS);
    d->Iopb->MajorFunction = IRP_MJ_READ;
    d->Iopb->Parameters.Read.Length = BLK;
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = 2 * BLK;
    d->Iopb->Parameters.Read.ReadBuffer = fe.l.e.buf;
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(fe.l.e.buf, BLK, FILE_SEED, 2 * BLK));
    FltFreeCallbackData(d);
    tu_flt_close(&fe.f);
    live_check(&fe.l);
    printf("hostile: flt_objects %s cases=%u\n", tu_backend_names[_i], cases);
    fflush(stdout);
    tu_env_fini(&fe.l.e);
}
END_TEST

/* ---- structure sizes ---- */

static const int size_deltas[] = { INT_MIN, -1, 1, 64 }; /* INT_MIN: Size 0 */

static USHORT bad_size(size_t right, int delta)
{
    return delta == INT_MIN ? 0 : (USHORT)((int)right + delta);
}

START_TEST(wrong_structure_sizes_give_the_documented_status)
{
    struct live l;
    unsigned cases = 0;
    live_init(&l, 0);
    for (size_t k = 0; k < sizeof(size_deltas) / sizeof(size_deltas[0]); k++) {
        int dlt = size_deltas[k];
        WDF_OBJECT_ATTRIBUTES a;
        WDF_OBJECT_ATTRIBUTES_INIT(&a);
        a.Size = bad_size(sizeof(a), dlt);
        WDFOBJECT o = NULL;
        char pre[16];
        PVOID ctx = NULL;
        PIRP irp = IoAllocateIrp(2, FALSE);
        ck_assert_ptr_nonnull(irp);
        /* WDF_OBJECT_ATTRIBUTES on every create DDI: nothing is created. */
        ck_assert_status(WdfRequestCreate(&a, l.e.target, (WDFREQUEST *)&o), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfRequestCreateFromIrp(&a, irp, TRUE, (WDFREQUEST *)&o), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfMemoryCreate(&a, NonPagedPoolNx, 0, 16, (WDFMEMORY *)&o, NULL), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfMemoryCreatePreallocated(&a, pre, sizeof(pre), (WDFMEMORY *)&o), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfLookasideListCreate(&a, 16, NonPagedPoolNx, NULL, 0, (WDFLOOKASIDE *)&o),
                         STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfLookasideListCreate(NULL, 16, NonPagedPoolNx, &a, 0, (WDFLOOKASIDE *)&o),
                         STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfIoTargetCreate(l.e.device, &a, (WDFIOTARGET *)&o), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfObjectCreate(&a, &o), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfObjectAllocateContext(l.object, &a, &ctx), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_ptr_null(o);
        IoFreeIrp(irp);
        cases += 9;

        /* WDF_REQUEST_SEND_OPTIONS on every synchronous DDI. */
        WDF_REQUEST_SEND_OPTIONS so;
        WDF_REQUEST_SEND_OPTIONS_INIT(&so, 0);
        so.Size = bad_size(sizeof(so), dlt);
        WDF_MEMORY_DESCRIPTOR d;
        LONGLONG off = 0;
        WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, l.e.mem, NULL);
        ck_assert_status(WdfIoTargetSendReadSynchronously(l.e.target, NULL, &d, &off, &so, NULL),
                         STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfIoTargetSendWriteSynchronously(l.e.target, l.request, &d, &off, &so, NULL),
                         STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfIoTargetSendIoctlSynchronously(l.e.target, NULL, IOCTL_DISK_GET_LENGTH_INFO, NULL, &d, &so,
                                                           NULL),
                         STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_status(WdfIoTargetSendInternalIoctlSynchronously(l.e.target, NULL, 1, NULL, NULL, &so, NULL),
                         STATUS_INFO_LENGTH_MISMATCH);
        /* WdfRequestSend says INVALID_PARAMETER for any bad options block,
         * the synchronous option included. */
        WDF_REQUEST_SEND_OPTIONS_INIT(&so, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
        so.Size = bad_size(sizeof(so), dlt);
        ck_assert_status(WdfIoTargetFormatRequestForRead(l.e.target, l.request, l.e.mem, NULL, &off), STATUS_SUCCESS);
        ck_assert(!WdfRequestSend(l.request, l.e.target, &so));
        ck_assert_status(WdfRequestGetStatus(l.request), STATUS_INVALID_PARAMETER);
        cases += 5;

        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        rp.Size = bad_size(sizeof(rp), dlt);
        ck_assert_status(WdfRequestReuse(l.request, &rp), STATUS_INVALID_PARAMETER);
        cases++;

        WDF_IO_TARGET_OPEN_PARAMS op;
        UNICODE_STRING us;
        WCHAR w[4096];
        tu_unicode(&us, w, 4096, l.e.path);
        WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&op, &us, GENERIC_READ);
        op.Size = bad_size(sizeof(op), dlt);
        WDFIOTARGET t2;
        ck_assert_status(WdfIoTargetCreate(l.e.device, WDF_NO_OBJECT_ATTRIBUTES, &t2), STATUS_SUCCESS);
        ck_assert_status(WdfIoTargetOpen(t2, &op), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_int_eq(WdfIoTargetGetState(t2), WdfIoTargetClosed);
        WdfObjectDelete(t2);
        cases++;

        /* Output structures: left untouched; with the verifier, a bug check. */
        WDF_REQUEST_PARAMETERS rq;
        memset(&rq, 0xA5, sizeof(rq));
        rq.Size = bad_size(sizeof(rq), dlt);
        WdfRequestGetParameters(l.request, &rq);
        ck_assert_uint_eq(((unsigned char *)&rq)[sizeof(rq) - 1], 0xA5);
        WDF_REQUEST_COMPLETION_PARAMS cp;
        memset(&cp, 0xA5, sizeof(cp));
        cp.Size = bad_size(sizeof(cp), dlt);
        UwdfSetVerifier(TRUE);
        WdfRequestGetCompletionParams(l.request, &cp);
        tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "WdfRequestGetCompletionParams");
        WdfRequestGetParameters(l.request, &rq);
        tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "WdfRequestGetParameters");
        UwdfSetVerifier(FALSE);
        ck_assert_uint_eq(((unsigned char *)&cp)[sizeof(cp) - 1], 0xA5);
        cases += 2;

        /* WDF_OBJECT_CONTEXT_TYPE_INFO inside good attributes. */
        static WDF_OBJECT_CONTEXT_TYPE_INFO info = { .ContextName = "bad", .ContextSize = 8 };
        info.Size = (ULONG)bad_size(sizeof(info), dlt);
        WDF_OBJECT_ATTRIBUTES_INIT(&a);
        a.ContextTypeInfo = &info;
        ck_assert_status(WdfMemoryCreate(&a, NonPagedPoolNx, 0, 16, (WDFMEMORY *)&o, NULL), STATUS_INFO_LENGTH_MISMATCH);
        ck_assert_ptr_null(o);
        cases++;

        /* FLT_REGISTRATION. */
        FLT_REGISTRATION reg = { .Size = bad_size(sizeof(FLT_REGISTRATION), dlt), .Version = FLT_REGISTRATION_VERSION };
        PFLT_FILTER f = NULL;
        ck_assert_status(FltRegisterFilter(WdfDriverWdmGetDriverObject(l.e.driver), &reg, &f), STATUS_INVALID_PARAMETER);
        ck_assert_ptr_null(f);
        cases++;
    }

    /* WDF_MEMORY_DESCRIPTOR: unknown types and inconsistent contents. */
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 0;
    ULONG_PTR bytes = 5;
    static const int types[] = { 0, 4, 0x7fffffff, -1 };
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, l.e.buf, BLK);
        d.Type = (WDF_MEMORY_DESCRIPTOR_TYPE)types[k];
        ck_assert_status(WdfIoTargetSendReadSynchronously(l.e.target, NULL, &d, &off, NULL, &bytes), STATUS_INVALID_PARAMETER);
        ck_assert_uint_eq(bytes, 0);
        cases++;
    }
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, NULL, BLK);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(l.e.target, NULL, &d, &off, NULL, NULL), STATUS_INVALID_PARAMETER);
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, NULL, BLK);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(l.e.target, NULL, &d, &off, NULL, NULL), STATUS_INVALID_PARAMETER);
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, NULL, NULL);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(l.e.target, NULL, &d, &off, NULL, NULL), STATUS_INVALID_PARAMETER);
    cases += 3;
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(l.request, &rp), STATUS_SUCCESS);
    live_check(&l);
    printf("hostile: structure_sizes cases=%u\n", cases);
    fflush(stdout);
    tu_env_fini(&l.e);
}
END_TEST

/* ---- timeouts of every sign and extreme, asynchronous, stalled ---- */

struct timeout_case {
    LONGLONG timeout;
    NTSTATUS status;
};
static const struct timeout_case timeout_cases[] = {
    { 0, STATUS_SUCCESS },                         /* TIMEOUT flag with 0: no timeout */
    { -1, STATUS_IO_TIMEOUT },                     /* 100 ns from now */
    { -10 * 10000LL, STATUS_IO_TIMEOUT },           /* WDF_REL_TIMEOUT_IN_MS(10) */
    { LLONG_MIN, STATUS_SUCCESS },                 /* farthest relative: never */
    { LLONG_MIN + 1, STATUS_SUCCESS },
    { LLONG_MAX, STATUS_SUCCESS },                 /* farthest absolute: never */
    { 1, STATUS_IO_TIMEOUT },                      /* 1601: the past */
    { 10000000LL, STATUS_IO_TIMEOUT },              /* WDF_ABS_TIMEOUT_IN_SEC(1): 1601 */
    { UWDF_NT_EPOCH_DELTA_100NS, STATUS_IO_TIMEOUT }, /* 1970 */
};

START_TEST(async_send_timeouts_of_every_sign_and_extreme)
{
    struct live l;
    unsigned cases = 0;
    live_init(&l, _i);
    for (size_t k = 0; k < sizeof(timeout_cases) / sizeof(timeout_cases[0]); k++) {
        const struct timeout_case *tc = &timeout_cases[k];
        struct tu_completion c;
        WDF_REQUEST_SEND_OPTIONS o;
        LONGLONG off = 3 * BLK;
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_status(WdfRequestReuse(l.request, &rp), STATUS_SUCCESS);
        ck_assert_status(WdfIoTargetFormatRequestForRead(l.e.target, l.request, l.e.mem, NULL, &off), STATUS_SUCCESS);
        tu_completion_init(&c);
        WdfRequestSetCompletionRoutine(l.request, tu_on_complete, &c);
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_TIMEOUT);
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, tc->timeout);
        memset(l.e.buf, 0, BLK);
        /* A request that must time out is held far longer than a loaded machine can delay
         * the timer thread: only a timeout (not the stall's end) completes it in time. */
        UwdfFaultInjectStall(NT_SUCCESS(tc->status) ? STALL_MS : 30 * STALL_MS);
        ck_assert(WdfRequestSend(l.request, l.e.target, &o));
        ck_assert(tu_completion_wait(&c, WAIT_MS));
        UwdfFaultInjectStall(0);
        tu_sleep_ms(STALL_MS / 10); /* a second completion would show up here */
        ck_assert_status_msg(c.status, tc->status, "%s, timeout %lld", tu_backend_names[_i], (long long)tc->timeout);
        ck_assert_int_eq(tu_ncalls(&c), 1);
        if (NT_SUCCESS(tc->status))
            ck_assert(tu_pattern_matches(l.e.buf, BLK, FILE_SEED, 3 * BLK));
        tu_completion_fini(&c);
        cases++;
    }
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(l.request, &rp), STATUS_SUCCESS);
    live_check(&l);
    printf("hostile: timeouts %s cases=%u\n", tu_backend_names[_i], cases);
    fflush(stdout);
    tu_env_fini(&l.e);
}
END_TEST

/* ---- device offsets past the end and overflowing ---- */

struct offset_case {
    LONGLONG offset;
    NTSTATUS read, write, format, async; /* write 0: not tried (it would be legal) */
};
static const struct offset_case offset_cases[] = {
    /* Negative offsets are the target's to judge, as in KMDF: a file
     * fails them when they are sent (-1 is FILE_WRITE_TO_END_OF_FILE, a
     * legal append for a write). */
    { -1, STATUS_INVALID_PARAMETER, 0, STATUS_SUCCESS, STATUS_INVALID_PARAMETER },
    { LLONG_MIN, STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, STATUS_INVALID_PARAMETER },
    { -3, STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, STATUS_INVALID_PARAMETER },
    /* offset + length wraps past LLONG_MAX */
    { LLONG_MAX, STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, STATUS_INVALID_PARAMETER },
    { LLONG_MAX - BLK + 1, STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, STATUS_INVALID_PARAMETER },
    /* ends exactly at LLONG_MAX: past the end of any file */
    { LLONG_MAX - BLK, STATUS_END_OF_FILE, STATUS_DISK_FULL, STATUS_SUCCESS, STATUS_END_OF_FILE },
    { 1LL << 62, STATUS_END_OF_FILE, STATUS_DISK_FULL, STATUS_SUCCESS, STATUS_END_OF_FILE },
    { FILE_SIZE, STATUS_END_OF_FILE, 0, STATUS_SUCCESS, STATUS_END_OF_FILE },
    { FILE_SIZE + 1, STATUS_END_OF_FILE, 0, STATUS_SUCCESS, STATUS_END_OF_FILE },
};

START_TEST(device_offsets_past_the_end_and_overflowing)
{
    struct live l;
    unsigned cases = 0;
    live_init(&l, _i);
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    for (size_t k = 0; k < sizeof(offset_cases) / sizeof(offset_cases[0]); k++) {
        const struct offset_case *oc = &offset_cases[k];
        WDF_MEMORY_DESCRIPTOR d;
        LONGLONG off = oc->offset;
        ULONG_PTR bytes = 9;
        WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, l.e.mem, NULL);
        NTSTATUS s = WdfIoTargetSendReadSynchronously(l.e.target, NULL, &d, &off, NULL, &bytes);
        ck_assert_status_msg(s, oc->read, "read at %lld", (long long)oc->offset);
        ck_assert_uint_eq(bytes, 0);
        cases++;
        if (oc->write) {
            s = WdfIoTargetSendWriteSynchronously(l.e.target, l.request, &d, &off, NULL, &bytes);
            ck_assert_status_msg(s, oc->write, "write at %lld", (long long)oc->offset);
            ck_assert_uint_eq(bytes, 0);
            cases++;
        }
        ck_assert_status(WdfRequestReuse(l.request, &rp), STATUS_SUCCESS);
        s = WdfIoTargetFormatRequestForRead(l.e.target, l.request, l.e.mem, NULL, &off);
        ck_assert_status_msg(s, oc->format, "format at %lld", (long long)oc->offset);
        cases++;
        if (NT_SUCCESS(s)) {
            ck_assert_status(WdfRequestGetStatus(l.request), STATUS_SUCCESS);
            struct tu_completion c;
            tu_completion_init(&c);
            WdfRequestSetCompletionRoutine(l.request, tu_on_complete, &c);
            ck_assert(WdfRequestSend(l.request, l.e.target, NULL));
            ck_assert(tu_completion_wait(&c, WAIT_MS));
            ck_assert_status_msg(c.status, oc->async, "async read at %lld", (long long)oc->offset);
            ck_assert_uint_eq(c.information, 0);
            tu_completion_fini(&c);
            cases++;
        }
        ck_assert_status(WdfRequestReuse(l.request, &rp), STATUS_SUCCESS);
    }
    /* Nothing was written or extended. */
    struct stat st;
    ck_assert_int_eq(stat(l.e.path, &st), 0);
    ck_assert_int_eq(st.st_size, FILE_SIZE);
    live_check(&l);
    printf("hostile: device_offsets %s cases=%u\n", tu_backend_names[_i], cases);
    fflush(stdout);
    tu_env_fini(&l.e);
}
END_TEST

/* ---- WDFMEMORY_OFFSET past the buffer, asynchronous format ---- */

START_TEST(memory_offsets_past_the_buffer_on_format)
{
    struct live l;
    unsigned cases = 0;
    live_init(&l, 0);
    static const WDFMEMORY_OFFSET bad[] = {
        { BLK + 1, 0 },          /* starts past the end */
        { BLK, 1 },              /* one byte past */
        { 0, BLK + 1 },          /* longer than the buffer */
        { 1, SIZE_MAX },         /* offset + length wraps */
        { SIZE_MAX, 2 },
        { SIZE_MAX, SIZE_MAX },
    };
    LONGLONG off = 0;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        WDFMEMORY_OFFSET mo = bad[k];
        ck_assert_status(WdfIoTargetFormatRequestForRead(l.e.target, l.request, l.e.mem, &mo, &off),
                         STATUS_INTEGER_OVERFLOW);
        ck_assert_status(WdfIoTargetFormatRequestForWrite(l.e.target, l.request, l.e.mem, &mo, &off),
                         STATUS_INTEGER_OVERFLOW);
        ck_assert_status(WdfIoTargetFormatRequestForIoctl(l.e.target, l.request, IOCTL_DISK_GET_LENGTH_INFO, NULL, NULL,
                                                          l.e.mem, &mo),
                         STATUS_INTEGER_OVERFLOW);
        /* Nothing was formatted: the request is not sendable. */
        ck_assert(!WdfRequestSend(l.request, l.e.target, NULL));
        ck_assert_status(WdfRequestGetStatus(l.request), STATUS_REQUEST_NOT_ACCEPTED);
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_status(WdfRequestReuse(l.request, &rp), STATUS_SUCCESS);
        cases += 3;
    }
    live_check(&l);
    printf("hostile: memory_offsets cases=%u\n", cases);
    fflush(stdout);
    tu_env_fini(&l.e);
}
END_TEST

/* ---- deleted targets ---- */

START_TEST(target_deleted_with_io_in_flight_and_after_format)
{
    struct live l;
    struct tu_completion c;
    live_init(&l, _i);
    WDFIOTARGET t2;
    ck_assert_status(tu_target_open(l.e.device, l.e.path, GENERIC_READ, FILE_OPEN, 0, &t2), STATUS_SUCCESS);
    WDFREQUEST r = tu_make_request(t2);
    LONGLONG off = 0;
    /* Deleted while a read is in flight: the delete waits for it, and the
     * read completes once (cancelled by the close, or done). */
    ck_assert_status(WdfIoTargetFormatRequestForRead(t2, r, l.e.mem, NULL, &off), STATUS_SUCCESS);
    tu_completion_init(&c);
    WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
    UwdfFaultInjectStall(STALL_MS);
    ck_assert(WdfRequestSend(r, t2, NULL));
    WdfObjectDelete(t2);
    ck_assert_int_eq(tu_ncalls(&c), 1);
    UwdfFaultInjectStall(0);
    ck_assert_msg(c.status == STATUS_SUCCESS || c.status == STATUS_CANCELLED, "c.status == " TU_STATUS_FMT,
                  TU_STATUS_ARG(c.status));
    tu_completion_fini(&c);
    /* A send to the deleted target is a bug check and leaves r alone. */
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
    ck_assert(!WdfRequestSend(r, t2, NULL));
    tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "WdfRequestSend");
    ck_assert_status(WdfRequestGetStatus(r), STATUS_INVALID_HANDLE);
    /* Formatted for a target that is then deleted: a new format for a live
     * target works. */
    ck_assert_status(tu_target_open(l.e.device, l.e.path, GENERIC_READ, FILE_OPEN, 0, &t2), STATUS_SUCCESS);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t2, r, l.e.mem, NULL, &off), STATUS_SUCCESS);
    WdfObjectDelete(t2);
    off = BLK;
    ck_assert_status(WdfIoTargetFormatRequestForRead(l.e.target, r, l.e.mem, NULL, &off), STATUS_SUCCESS);
    tu_completion_init(&c);
    WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
    memset(l.e.buf, 0, BLK);
    ck_assert(WdfRequestSend(r, l.e.target, NULL));
    ck_assert(tu_completion_wait(&c, WAIT_MS));
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(l.e.buf, BLK, FILE_SEED, BLK));
    tu_completion_fini(&c);
    WdfObjectDelete(r);
    live_check(&l);
    printf("hostile: deleted_targets %s cases=3\n", tu_backend_names[_i]);
    fflush(stdout);
    tu_env_fini(&l.e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tu_tcase(s, "handles", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, every_handle_ddi_rejects_bad_handles_with_a_bug_check);
    tcase_add_test(tc, null_required_pointers_are_a_bug_check_and_the_documented_status);
    tcase_add_loop_test(tc, flt_objects_of_the_wrong_kind_or_garbage_are_a_bug_check, 0, TU_BACKENDS);
    tc = tu_tcase(s, "values", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, wrong_structure_sizes_give_the_documented_status);
    tcase_add_loop_test(tc, async_send_timeouts_of_every_sign_and_extreme, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, device_offsets_past_the_end_and_overflowing, 0, TU_BACKENDS);
    tcase_add_test(tc, memory_offsets_past_the_buffer_on_format);
    tcase_add_loop_test(tc, target_deleted_with_io_in_flight_and_after_format, 0, TU_BACKENDS);
    return tu_main(s, "test_hostile");
}
