/* Queues and in-process device stacks: a request sent to a \Device\ name
 * arrives on the device's queue, is handled or forwarded, and completes
 * back to the sender. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <wdf.h>

#define BLOCK 4096

/* A filter device whose default queue forwards reads and writes, unchanged,
 * to its local I/O target. */
typedef struct {
    WDFIOTARGET lower;
    atomic_int seen;
    atomic_int forwarded_done;
} FILTER_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(FILTER_CTX, filter_get);

static FILTER_CTX *filter_of_queue(WDFQUEUE q)
{
    return filter_get(WdfIoQueueGetDevice(q));
}

static VOID fwd_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                     WDFCONTEXT Context)
{
    FILTER_CTX *f = Context;
    (void)Target;
    atomic_fetch_add(&f->forwarded_done, 1);
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

static VOID fwd_default(WDFQUEUE Queue, WDFREQUEST Request)
{
    FILTER_CTX *f = filter_of_queue(Queue);
    atomic_fetch_add(&f->seen, 1);
    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, fwd_done, f);
    if (!WdfRequestSend(Request, f->lower, WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

static WDFDEVICE make_named_device(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io)
{
    WDFDEVICE dev;
    WCHAR wbuf[128];
    UNICODE_STRING us;
    WDF_OBJECT_ATTRIBUTES attrs;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    tu_unicode(&us, wbuf, 128, name);
    ck_assert_int_eq(WdfDeviceInitAssignName(init, &us), STATUS_SUCCESS);
    WdfDeviceInitSetIoType(init, io);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attrs, FILTER_CTX);
    ck_assert_int_eq(WdfDeviceCreate(&init, &attrs, &dev), STATUS_SUCCESS);
    WdfControlFinishInitializing(dev);
    return dev;
}

static WDFQUEUE make_forwarding_queue(WDFDEVICE dev)
{
    WDF_IO_QUEUE_CONFIG cfg;
    WDFQUEUE q;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&cfg, WdfIoQueueDispatchParallel);
    cfg.EvtIoDefault = fwd_default;
    ck_assert_int_eq(WdfIoQueueCreate(dev, &cfg, WDF_NO_OBJECT_ATTRIBUTES, &q), STATUS_SUCCESS);
    return q;
}

static void open_by_name(WDFIOTARGET t, const char *name, ULONG options)
{
    WCHAR wbuf[512];
    UNICODE_STRING us;
    WDF_IO_TARGET_OPEN_PARAMS op;
    tu_unicode(&us, wbuf, 512, name);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&op, &us, GENERIC_READ | GENERIC_WRITE);
    op.CreateOptions = options;
    ck_assert_int_eq(WdfIoTargetOpen(t, &op), STATUS_SUCCESS);
}

/* app -> \Device\uwdfTop (filter) -> \Device\uwdfMid (filter) -> file. */
static void stack_roundtrip(struct tu_env *env, int backend, const char *lower_path, ULONG options)
{
    struct tu_env e = *env;
    ck_assert(tu_use_backend(backend));
    WDFDEVICE mid = make_named_device(e.driver, "\\Device\\uwdfMid", WdfDeviceIoDirect);
    WDFDEVICE top = make_named_device(e.driver, "\\Device\\uwdfTop", WdfDeviceIoBuffered);
    make_forwarding_queue(mid);
    make_forwarding_queue(top);
    filter_get(mid)->lower = WdfDeviceGetIoTarget(mid);
    filter_get(top)->lower = WdfDeviceGetIoTarget(top);
    open_by_name(filter_get(mid)->lower, lower_path, options);
    open_by_name(filter_get(top)->lower, "\\Device\\uwdfMid", 0);

    WDFIOTARGET app;
    ck_assert_int_eq(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &app), STATUS_SUCCESS);
    open_by_name(app, "\\Device\\uwdfTop", 0);

    void *wbuf, *rbuf;
    WDFMEMORY wmem = tu_make_memory(BLOCK, &wbuf), rmem = tu_make_memory(BLOCK, &rbuf);
    for (int i = 0; i < 16; i++) {
        LONGLONG off = (LONGLONG)i * BLOCK;
        tu_fill_pattern(wbuf, BLOCK, 77 + (unsigned)backend, (uint64_t)off);
        WDF_MEMORY_DESCRIPTOR d;
        WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, wmem, NULL);
        ULONG_PTR n = 0;
        ck_assert_int_eq(WdfIoTargetSendWriteSynchronously(app, NULL, &d, &off, NULL, &n), STATUS_SUCCESS);
        ck_assert_uint_eq(n, BLOCK);
    }
    /* Asynchronous reads through the stack, checked against the file. */
    WDFREQUEST req = tu_make_request(app);
    for (int i = 0; i < 16; i++) {
        struct tu_completion c;
        LONGLONG off = (LONGLONG)i * BLOCK;
        memset(rbuf, 0, BLOCK);
        tu_completion_init(&c);
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_int_eq(WdfRequestReuse(req, &rp), STATUS_SUCCESS);
        ck_assert_int_eq(WdfIoTargetFormatRequestForRead(app, req, rmem, NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
        ck_assert(WdfRequestSend(req, app, WDF_NO_SEND_OPTIONS));
        ck_assert(tu_completion_wait(&c, 5000));
        ck_assert_int_eq(c.status, STATUS_SUCCESS);
        ck_assert_uint_eq(c.information, BLOCK);
        ck_assert_int_eq(c.type, WdfRequestTypeRead);
        ck_assert(tu_pattern_matches(rbuf, BLOCK, 77 + (unsigned)backend, (uint64_t)off));
        tu_completion_fini(&c);
    }
    ck_assert_int_eq(atomic_load(&filter_get(top)->seen), 32);
    ck_assert_int_eq(atomic_load(&filter_get(mid)->seen), 32);
    ck_assert_int_eq(atomic_load(&filter_get(mid)->forwarded_done), 32);
}

START_TEST(stack_to_file)
{
    struct tu_env e;
    tu_env_init(&e);
    char *file = tu_env_file(&e, "lower.img", 1 << 20, 0);
    stack_roundtrip(&e, _i, file, 0);
    free(file);
    tu_env_fini(&e);
}
END_TEST

START_TEST(stack_to_loop_device)
{
    if (!tu_root())
        return;
    struct tu_env e;
    tu_env_init(&e);
    char *file = tu_env_file(&e, "loop.img", 4 << 20, 0);
    const char *dev = tu_env_loop(&e, file);
    stack_roundtrip(&e, _i, dev, FILE_NO_INTERMEDIATE_BUFFERING);
    free(file);
    tu_env_fini(&e);
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tu_tcase(s, "stack", 60);
    tcase_add_loop_test(tc, stack_to_file, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, stack_to_loop_device, 0, TU_BACKENDS);
    return s;
}

int main(void)
{
    return tu_main(queue_suite(), "queue");
}
