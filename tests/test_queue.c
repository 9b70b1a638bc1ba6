/* Queues and in-process device stacks: a request sent to a \Device\ name
 * arrives on the device's queue, is handled or forwarded, and completes
 * back to the sender. */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wdf.h>

#include "../lib/internal.h" /* the queue lock's state (queue_lock_biased_to_its_engine_thread) */

#define BLOCK 4096

/* A named device of the stacks below, with the forwarder's context
 * (tu_forwarder.h), so a queue of its own can forward too. */
static WDFDEVICE make_named_device(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io)
{
    WDFDEVICE dev;
    ck_assert_status(tu_forwarder_device_create(driver, name, io, &dev), STATUS_SUCCESS);
    return dev;
}

static unsigned long fwd_seen(WDFDEVICE dev)
{
    return atomic_load(&tu_forwarder_of(dev)->seen);
}

/* app -> \Device\uwdfTop (filter) -> \Device\uwdfMid (filter) -> file. */
static void stack_roundtrip(struct tu_env *env, int backend, const char *lower_path, ULONG options)
{
    struct tu_env e = *env;
    WDFDEVICE mid = tu_make_forwarder(e.driver, "\\Device\\uwdfMid", WdfDeviceIoDirect, lower_path, options);
    WDFDEVICE top = tu_make_forwarder(e.driver, "\\Device\\uwdfTop", WdfDeviceIoBuffered, "\\Device\\uwdfMid", 0);

    WDFIOTARGET app;
    ck_assert_status(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &app), STATUS_SUCCESS);
    tu_open_by_name(app, "\\Device\\uwdfTop", 0);

    void *wbuf, *rbuf;
    WDFMEMORY wmem = tu_make_memory(BLOCK, &wbuf), rmem = tu_make_memory(BLOCK, &rbuf);
    for (int i = 0; i < 16; i++) {
        LONGLONG off = (LONGLONG)i * BLOCK;
        tu_fill_pattern(wbuf, BLOCK, 77 + (unsigned)backend, (uint64_t)off);
        WDF_MEMORY_DESCRIPTOR d;
        WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, wmem, NULL);
        ULONG_PTR n = 0;
        ck_assert_status(WdfIoTargetSendWriteSynchronously(app, NULL, &d, &off, NULL, &n), STATUS_SUCCESS);
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
        ck_assert_status(WdfRequestReuse(req, &rp), STATUS_SUCCESS);
        ck_assert_status(WdfIoTargetFormatRequestForRead(app, req, rmem, NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
        ck_assert(WdfRequestSend(req, app, WDF_NO_SEND_OPTIONS));
        ck_assert(tu_completion_wait(&c, 5000));
        ck_assert_status(c.status, STATUS_SUCCESS);
        ck_assert_uint_eq(c.information, BLOCK);
        ck_assert_int_eq(c.type, WdfRequestTypeRead);
        ck_assert(tu_pattern_matches(rbuf, BLOCK, 77 + (unsigned)backend, (uint64_t)off));
        tu_completion_fini(&c);
    }
    ck_assert_uint_eq(fwd_seen(top), 32);
    ck_assert_uint_eq(fwd_seen(mid), 32);
    ck_assert_uint_eq(atomic_load(&tu_forwarder_of(mid)->completed), 32);
}

START_TEST(stack_to_file)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *file = tu_env_file(&e, "lower.img", 1 << 20, 0);
    stack_roundtrip(&e, _i, file, 0);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* ---- a sender resending from its completion routine through a filter ---- */

static struct {
    WDFIOTARGET app;
    WDFMEMORY mem;
    atomic_int left;
    struct tu_completion *done;
} CH;

static VOID ch_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params, WDFCONTEXT Context)
{
    (void)Context;
    if (!NT_SUCCESS(Params->IoStatus.Status) || atomic_fetch_sub(&CH.left, 1) <= 1) {
        tu_on_complete(Request, Target, Params, CH.done);
        return;
    }
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    LONGLONG off = 0;
    if (!NT_SUCCESS(WdfRequestReuse(Request, &rp)) ||
        !NT_SUCCESS(WdfIoTargetFormatRequestForRead(CH.app, Request, CH.mem, NULL, &off))) {
        tu_on_complete(Request, Target, Params, CH.done);
        return;
    }
    WdfRequestSetCompletionRoutine(Request, ch_done, NULL);
    if (!WdfRequestSend(Request, CH.app, WDF_NO_SEND_OPTIONS))
        tu_on_complete(Request, Target, Params, CH.done);
}

struct ch_stop {
    WDFIOTARGET t;
    struct tu_completion c;
};

static void *ch_stop_thread(void *arg)
{
    struct ch_stop *st = arg;
    WdfIoTargetStop(st->t, WdfIoTargetWaitForSentIoToComplete);
    KeSetEvent(&st->c.done, IO_NO_INCREMENT, FALSE);
    return NULL;
}

/* Stop with WaitForSentIoToComplete returns in time (a count of sent
 * I/O that never comes back to zero would make it wait for ever). */
static void ch_stop_in_time(WDFIOTARGET t)
{
    struct ch_stop st = { .t = t };
    pthread_t th;
    tu_completion_init(&st.c);
    ck_assert_int_eq(pthread_create(&th, NULL, ch_stop_thread, &st), 0);
    ck_assert_msg(tu_completion_wait(&st.c, 5000), "WdfIoTargetStop waits for sent I/O that completed");
    pthread_join(th, NULL);
    tu_completion_fini(&st.c);
    WdfIoTargetStart(t);
}

/* An application request that resends itself from its completion routine
 * through two filters over a file, as uwdf-bench --api=stack
 * --stack_layers=2 does: the routine runs inside the filters' completions
 * (the lower one's from the file target, the upper one's from the lower
 * device), so the lower filter's next forward to the file takes the file
 * completion's place in the file target's count of sent I/O. Afterwards no
 * target has sent I/O left: a Stop that waits for it returns (a place
 * taken twice, or from a device target's completion, leaves a count that
 * never reaches zero). */
START_TEST(resends_through_a_filter_leave_no_sent_io)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *file = tu_env_file(&e, "lower.img", 1 << 20, 0);
    WDFDEVICE mid = tu_make_forwarder(e.driver, "\\Device\\uwdfChMid", WdfDeviceIoDirect, file, 0);
    WDFDEVICE top = tu_make_forwarder(e.driver, "\\Device\\uwdfChTop", WdfDeviceIoBuffered, "\\Device\\uwdfChMid", 0);
    ck_assert_status(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &CH.app), STATUS_SUCCESS);
    tu_open_by_name(CH.app, "\\Device\\uwdfChTop", 0);
    void *buf;
    CH.mem = tu_make_memory(BLOCK, &buf);
    struct tu_completion c;
    tu_completion_init(&c);
    CH.done = &c;
    atomic_store(&CH.left, 64);
    WDFREQUEST req = tu_make_request(CH.app);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(CH.app, req, CH.mem, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(req, ch_done, NULL);
    ck_assert(WdfRequestSend(req, CH.app, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&c, 10000));
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_int_eq(tu_load(&CH.left), 0);
    ck_assert_uint_eq(atomic_load(&tu_forwarder_of(mid)->completed), 64);
    ck_assert_uint_eq(atomic_load(&tu_forwarder_of(top)->completed), 64);
    ch_stop_in_time(tu_forwarder_of(mid)->lower);
    ch_stop_in_time(tu_forwarder_of(top)->lower);
    ch_stop_in_time(CH.app);
    tu_completion_fini(&c);
    free(file);
    tu_env_fini(&e);
}
END_TEST

START_TEST(stack_to_loop_device)
{
    if (!tu_root())
        return;
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *file = tu_env_file(&e, "loop.img", 4 << 20, 0);
    const char *dev = tu_env_loop(&e, file, 0);
    stack_roundtrip(&e, _i, dev, FILE_NO_INTERMEDIATE_BUFFERING);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* ---- a receiving device the test drives: its callbacks record what
 * they were given and, by default, hold the request for the test ---- */

#define MAXHELD 64
static struct rx {
    pthread_mutex_t lock;
    WDFREQUEST held[MAXHELD];
    int nheld;
    atomic_int presented, owned, max_owned;
    atomic_int n_read, n_write, n_ioctl, n_iioctl, n_default;
    atomic_int n_stop, n_resume, n_canceled_on_queue, n_cancel_routine, n_state_cb, n_ready;
    ULONG stop_flags;
    size_t last_len, last_out_len, last_in_len;
    ULONG last_code;
    WDFQUEUE last_queue;
    /* what EvtIoStop does: 0 nothing, 1 acknowledge (no requeue),
     * 2 acknowledge with requeue, 3 complete STATUS_CANCELLED */
    int stop_action;
    bool cancel_is_canceled; /* WdfRequestIsCanceled inside the cancel routine */
} R;

static void rx_reset(void)
{
    memset(&R, 0, sizeof(R));
    pthread_mutex_init(&R.lock, NULL);
}

static void rx_hold(WDFREQUEST req)
{
    int n = atomic_fetch_add(&R.owned, 1) + 1;
    int m = tu_load(&R.max_owned);
    while (n > m && !atomic_compare_exchange_weak(&R.max_owned, &m, n))
        ;
    atomic_fetch_add(&R.presented, 1);
    pthread_mutex_lock(&R.lock);
    ck_assert_int_lt(R.nheld, MAXHELD);
    R.held[R.nheld++] = req;
    pthread_mutex_unlock(&R.lock);
}

/* Take the held request i (in arrival order) out of the list. */
static WDFREQUEST rx_take(int i)
{
    pthread_mutex_lock(&R.lock);
    ck_assert_int_lt(i, R.nheld);
    WDFREQUEST r = R.held[i];
    memmove(&R.held[i], &R.held[i + 1], sizeof(R.held[0]) * (size_t)(R.nheld - i - 1));
    R.nheld--;
    pthread_mutex_unlock(&R.lock);
    return r;
}

static int rx_nheld(void)
{
    pthread_mutex_lock(&R.lock);
    int n = R.nheld;
    pthread_mutex_unlock(&R.lock);
    return n;
}

static void rx_complete(WDFREQUEST req, NTSTATUS st, ULONG_PTR info)
{
    atomic_fetch_sub(&R.owned, 1);
    WdfRequestCompleteWithInformation(req, st, info);
}

static VOID rx_default(WDFQUEUE q, WDFREQUEST req)
{
    atomic_fetch_add(&R.n_default, 1);
    R.last_queue = q;
    rx_hold(req);
}

static VOID rx_read(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    atomic_fetch_add(&R.n_read, 1);
    R.last_len = len;
    R.last_queue = q;
    rx_hold(req);
}

static VOID rx_write(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    atomic_fetch_add(&R.n_write, 1);
    R.last_len = len;
    R.last_queue = q;
    rx_hold(req);
}

static VOID rx_ioctl(WDFQUEUE q, WDFREQUEST req, size_t out_len, size_t in_len, ULONG code)
{
    atomic_fetch_add(&R.n_ioctl, 1);
    R.last_out_len = out_len;
    R.last_in_len = in_len;
    R.last_code = code;
    R.last_queue = q;
    rx_hold(req);
}

static VOID rx_iioctl(WDFQUEUE q, WDFREQUEST req, size_t out_len, size_t in_len, ULONG code)
{
    atomic_fetch_add(&R.n_iioctl, 1);
    R.last_out_len = out_len;
    R.last_in_len = in_len;
    R.last_code = code;
    R.last_queue = q;
    rx_hold(req);
}

/* Remove req from the held list if it is there (the stop and cancel
 * callbacks complete requests the test may not have taken). */
static bool rx_unhold(WDFREQUEST req)
{
    pthread_mutex_lock(&R.lock);
    for (int i = 0; i < R.nheld; i++) {
        if (R.held[i] == req) {
            memmove(&R.held[i], &R.held[i + 1], sizeof(R.held[0]) * (size_t)(R.nheld - i - 1));
            R.nheld--;
            pthread_mutex_unlock(&R.lock);
            return true;
        }
    }
    pthread_mutex_unlock(&R.lock);
    return false;
}

static VOID rx_stop(WDFQUEUE q, WDFREQUEST req, ULONG flags)
{
    (void)q;
    atomic_fetch_add(&R.n_stop, 1);
    R.stop_flags = flags;
    switch (R.stop_action) {
    case 1:
        WdfRequestStopAcknowledge(req, FALSE);
        break;
    case 2:
        ck_assert(rx_unhold(req));
        atomic_fetch_sub(&R.owned, 1);
        WdfRequestStopAcknowledge(req, TRUE);
        break;
    case 3:
        ck_assert(rx_unhold(req));
        rx_complete(req, STATUS_CANCELLED, 0);
        break;
    default:
        break;
    }
}

static VOID rx_resume(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    (void)req;
    atomic_fetch_add(&R.n_resume, 1);
}

static VOID rx_canceled_on_queue(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    atomic_fetch_add(&R.n_canceled_on_queue, 1);
    WdfRequestComplete(req, STATUS_CANCELLED);
}

static VOID rx_cancel_routine(WDFREQUEST req)
{
    atomic_fetch_add(&R.n_cancel_routine, 1);
    R.cancel_is_canceled = WdfRequestIsCanceled(req);
    rx_unhold(req);
    rx_complete(req, STATUS_CANCELLED, 0);
}

static VOID rx_state_cb(WDFQUEUE q, WDFCONTEXT ctx)
{
    (void)q;
    ck_assert_ptr_eq(ctx, &R);
    atomic_fetch_add(&R.n_state_cb, 1);
}

static VOID rx_ready(WDFQUEUE q, WDFCONTEXT ctx)
{
    (void)q;
    ck_assert_ptr_eq(ctx, &R);
    atomic_fetch_add(&R.n_ready, 1);
}

static WDFQUEUE rx_queue(WDFDEVICE dev, WDF_IO_QUEUE_DISPATCH_TYPE type, bool dflt, ULONG parallel_n)
{
    WDF_IO_QUEUE_CONFIG cfg;
    WDFQUEUE q;
    if (dflt)
        WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&cfg, type);
    else
        WDF_IO_QUEUE_CONFIG_INIT(&cfg, type);
    if (type != WdfIoQueueDispatchManual)
        cfg.EvtIoDefault = rx_default;
    if (parallel_n)
        cfg.Settings.Parallel.NumberOfPresentedRequests = parallel_n;
    cfg.EvtIoStop = rx_stop;
    cfg.EvtIoResume = rx_resume;
    ck_assert_status(WdfIoQueueCreate(dev, &cfg, WDF_NO_OBJECT_ATTRIBUTES, &q), STATUS_SUCCESS);
    return q;
}

/* An application target opened on name. */
static WDFIOTARGET app_target(struct tu_env *e, const char *name)
{
    WDFIOTARGET t;
    ck_assert_status(WdfIoTargetCreate(e->device, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_SUCCESS);
    tu_open_by_name(t, name, 0);
    return t;
}

/* One asynchronous request from the application. */
struct io {
    WDFREQUEST req;
    WDFMEMORY mem, mem2;
    void *buf, *buf2;
    size_t len;
    struct tu_completion c;
};

static void io_prepare(struct io *io, WDFIOTARGET t, WDF_REQUEST_TYPE type, size_t len, LONGLONG off)
{
    memset(io, 0, sizeof(*io));
    io->req = tu_make_request(t);
    io->len = len;
    if (len)
        io->mem = tu_make_memory(len, &io->buf);
    tu_completion_init(&io->c);
    NTSTATUS st = type == WdfRequestTypeRead ? WdfIoTargetFormatRequestForRead(t, io->req, io->mem, NULL, &off)
                                             : WdfIoTargetFormatRequestForWrite(t, io->req, io->mem, NULL, &off);
    ck_assert_status(st, STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(io->req, tu_on_complete, &io->c);
}

static void io_send_opts(struct io *io, WDFIOTARGET t, PWDF_REQUEST_SEND_OPTIONS o)
{
    ck_assert(WdfRequestSend(io->req, t, o));
}

static void io_start(struct io *io, WDFIOTARGET t, WDF_REQUEST_TYPE type, size_t len, LONGLONG off)
{
    io_prepare(io, t, type, len, off);
    io_send_opts(io, t, WDF_NO_SEND_OPTIONS);
}

/* Completed once with status (and information unless -1). */
static void io_expect(struct io *io, NTSTATUS st, long info)
{
    ck_assert(tu_completion_wait(&io->c, 5000));
    ck_assert_int_eq(tu_ncalls(&io->c), 1);
    ck_assert_status(io->c.status, st);
    if (info >= 0)
        ck_assert_uint_eq(io->c.information, (ULONG_PTR)info);
}

static bool io_done(struct io *io)
{
    return tu_ncalls(&io->c) != 0;
}

static void io_fini(struct io *io)
{
    tu_completion_fini(&io->c);
    WdfObjectDelete(io->req);
    if (io->mem)
        WdfObjectDelete(io->mem);
    if (io->mem2)
        WdfObjectDelete(io->mem2);
}

/* ---- queue creation and dispatching configuration ---- */

START_TEST(queue_create_validation)
{
    struct tu_env e;
    tu_env_init(&e);
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfQv", WdfDeviceIoBuffered);
    WDF_IO_QUEUE_CONFIG c;
    WDFQUEUE q = NULL;

    WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchSequential);
    c.EvtIoDefault = rx_default;
    c.Size--;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_INFO_LENGTH_MISMATCH);
    ck_assert_ptr_null(q);
    c.Size++;
    c.DispatchType = WdfIoQueueDispatchMax;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_INVALID_PARAMETER);
    c.DispatchType = WdfIoQueueDispatchInvalid;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_INVALID_PARAMETER);
    /* a manual queue with a handler */
    c.DispatchType = WdfIoQueueDispatchManual;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_INVALID_PARAMETER);
    /* NumberOfPresentedRequests on a sequential queue, 0 on a parallel one */
    c.DispatchType = WdfIoQueueDispatchSequential;
    c.Settings.Parallel.NumberOfPresentedRequests = 2;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_INVALID_PARAMETER);
    WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchParallel);
    c.EvtIoRead = rx_read;
    c.Settings.Parallel.NumberOfPresentedRequests = 0;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_INVALID_PARAMETER);
    c.Settings.Parallel.NumberOfPresentedRequests = 4;
    /* a non-default queue needs its handle out */
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_INVALID_PARAMETER_4);
    /* no request handler on a non-manual queue */
    c.EvtIoRead = NULL;
    c.EvtIoStop = rx_stop;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_WDF_NO_CALLBACK);
    c.EvtIoRead = rx_read;
    c.PowerManaged = WdfTrue;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_INVALID_PARAMETER);
    c.PowerManaged = WdfUseDefault;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_SUCCESS);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_eq(WdfIoQueueGetDevice(q), dev);
    ck_assert_ptr_null(WdfDeviceGetDefaultQueue(dev));

    /* default queues: one per device; the handle out is optional */
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchSequential);
    c.EvtIoDefault = rx_default;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
    WDFQUEUE dq = WdfDeviceGetDefaultQueue(dev);
    ck_assert_ptr_nonnull(dq);
    WDFQUEUE q2 = NULL;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q2), STATUS_UNSUCCESSFUL);
    ck_assert_ptr_null(q2);
    ck_assert_ptr_eq(WdfDeviceGetDefaultQueue(dev), dq);

    /* request dispatching (KMDF's statuses): known types only; a queue
     * with a handler for the type; not the default queue; one queue per
     * type; the same device */
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q, WdfRequestTypeCleanup), STATUS_INVALID_PARAMETER);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q, WdfRequestTypeCreate),
                     STATUS_INVALID_DEVICE_REQUEST); /* creates go to EvtIoDefault only */
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q, WdfRequestTypeWrite),
                     STATUS_INVALID_DEVICE_REQUEST); /* q has only EvtIoRead */
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, dq, WdfRequestTypeRead),
                     STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q, WdfRequestTypeRead), STATUS_SUCCESS);
    WDFQUEUE q3;
    WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchManual);
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q3), STATUS_SUCCESS);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q3, WdfRequestTypeRead), STATUS_WDF_BUSY);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q3, WdfRequestTypeWrite), STATUS_SUCCESS);
    WDFDEVICE other = make_named_device(e.driver, "\\Device\\uwdfQv2", WdfDeviceIoBuffered);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(other, q, WdfRequestTypeWrite),
                     STATUS_INVALID_DEVICE_REQUEST);
    tu_env_fini(&e);
}
END_TEST

/* ---- names ---- */

static NTSTATUS try_named_device(WDFDRIVER driver, const char *name, WDFDEVICE *dev)
{
    WCHAR wbuf[128];
    UNICODE_STRING us;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    tu_unicode(&us, wbuf, 128, name);
    ck_assert_status(WdfDeviceInitAssignName(init, &us), STATUS_SUCCESS);
    NTSTATUS st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, dev);
    if (!NT_SUCCESS(st)) {
        ck_assert_ptr_nonnull(init); /* still the caller's */
        WdfDeviceInitFree(init);
    } else {
        ck_assert_ptr_null(init);
        WdfControlFinishInitializing(*dev);
    }
    return st;
}

static NTSTATUS open_name_status(struct tu_env *e, const char *name)
{
    WDFIOTARGET t;
    NTSTATUS st = tu_target_open(e->device, name, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0, &t);
    if (NT_SUCCESS(st) || t)
        WdfObjectDelete(t);
    return st;
}

static NTSTATUS symlink(WDFDEVICE dev, const char *link)
{
    WCHAR wbuf[128];
    UNICODE_STRING us;
    tu_unicode(&us, wbuf, 128, link);
    return WdfDeviceCreateSymbolicLink(dev, &us);
}

START_TEST(names_and_links)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE a, b;
    ck_assert_status(try_named_device(e.driver, "\\Device\\uwdfNameA", &a), STATUS_SUCCESS);
    ck_assert_status(try_named_device(e.driver, "\\Device\\uwdfNameA", &b), STATUS_OBJECT_NAME_COLLISION);
    /* the object manager compares names without case */
    ck_assert_status(try_named_device(e.driver, "\\DEVICE\\UWDFNAMEA", &b), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(open_name_status(&e, "\\Device\\uwdfNoSuch"), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(open_name_status(&e, "\\DosDevices\\uwdfNoSuch"), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(open_name_status(&e, "\\DosDevices\\uwdfLinkA"), STATUS_OBJECT_NAME_NOT_FOUND);

    /* links: \DosDevices\ only, one per device, unique, named devices only */
    ck_assert_status(symlink(a, "\\Device\\notalink"), STATUS_OBJECT_NAME_INVALID);
    ck_assert_status(symlink(a, "\\DosDevices\\uwdfLinkA"), STATUS_SUCCESS);
    ck_assert_status(symlink(a, "\\DosDevices\\uwdfLinkA2"), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(try_named_device(e.driver, "\\Device\\uwdfNameB", &b), STATUS_SUCCESS);
    ck_assert_status(symlink(b, "\\DosDevices\\uwdflinka"), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(symlink(e.device, "\\DosDevices\\uwdfUnnamed"), STATUS_INVALID_DEVICE_REQUEST);

    /* a request sent through each spelling of the link reaches device a */
    rx_queue(a, WdfIoQueueDispatchParallel, true, 0);
    const char *spellings[] = { "\\Device\\uwdfNameA", "\\DosDevices\\uwdfLinkA", "\\??\\UWDFLINKA",
                                "\\DosDevices\\Global\\uwdfLinkA" };
    for (int i = 0; i < 4; i++) {
        WDFIOTARGET t = app_target(&e, spellings[i]);
        struct io io;
        io_start(&io, t, WdfRequestTypeRead, 512, 0);
        ck_assert_int_eq(rx_nheld(), 1);
        ck_assert_ptr_eq(WdfIoQueueGetDevice(WdfRequestGetIoQueue(R.held[0])), a);
        rx_complete(rx_take(0), STATUS_SUCCESS, 100 + (ULONG_PTR)i);
        io_expect(&io, STATUS_SUCCESS, 100 + i);
        io_fini(&io);
        WdfObjectDelete(t);
    }
    /* a device cannot be its own lower device */
    WCHAR wbuf[64];
    UNICODE_STRING us;
    WDF_IO_TARGET_OPEN_PARAMS op;
    tu_unicode(&us, wbuf, 64, "\\Device\\uwdfNameA");
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&op, &us, GENERIC_READ);
    ck_assert_status(WdfIoTargetOpen(WdfDeviceGetIoTarget(a), &op), STATUS_INVALID_DEVICE_REQUEST);
    /* a device without a queue fails what it is sent */
    WDFIOTARGET tb = app_target(&e, "\\Device\\uwdfNameB");
    struct io io;
    io_start(&io, tb, WdfRequestTypeWrite, 512, 0);
    io_expect(&io, STATUS_INVALID_DEVICE_REQUEST, 0);
    io_fini(&io);
    WdfObjectDelete(tb);

    /* deleting the device frees its name and link */
    WdfObjectDelete(a);
    ck_assert_status(open_name_status(&e, "\\Device\\uwdfNameA"), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(open_name_status(&e, "\\DosDevices\\uwdfLinkA"), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(try_named_device(e.driver, "\\Device\\uwdfNameA", &a), STATUS_SUCCESS);
    ck_assert_status(symlink(a, "\\DosDevices\\uwdfLinkA"), STATUS_SUCCESS);
    tu_env_fini(&e);
}
END_TEST

/* ---- routing to callbacks and queues ---- */

#define IOCTL_TEST_BUFFERED CTL_CODE(FILE_DEVICE_UNKNOWN, 0x801, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_TEST_OUT_DIRECT CTL_CODE(FILE_DEVICE_UNKNOWN, 0x802, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)

static void ioctl_start(struct io *io, WDFIOTARGET t, bool internal, ULONG code, size_t in_len, size_t out_len)
{
    memset(io, 0, sizeof(*io));
    io->req = tu_make_request(t);
    if (in_len)
        io->mem = tu_make_memory(in_len, &io->buf);
    if (out_len)
        io->mem2 = tu_make_memory(out_len, &io->buf2);
    tu_completion_init(&io->c);
    NTSTATUS st = internal ? WdfIoTargetFormatRequestForInternalIoctl(t, io->req, code, io->mem, NULL, io->mem2, NULL)
                           : WdfIoTargetFormatRequestForIoctl(t, io->req, code, io->mem, NULL, io->mem2, NULL);
    ck_assert_status(st, STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(io->req, tu_on_complete, &io->c);
    ck_assert(WdfRequestSend(io->req, t, WDF_NO_SEND_OPTIONS));
}

START_TEST(routing)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfRoute", WdfDeviceIoBuffered);
    WDF_IO_QUEUE_CONFIG c;
    WDFQUEUE q0, q1, q2;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDeviceControl = rx_ioctl;
    c.EvtIoDefault = rx_default;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q0), STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchParallel);
    c.EvtIoRead = rx_read;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q1), STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchParallel);
    c.EvtIoWrite = rx_write;
    c.EvtIoInternalDeviceControl = rx_iioctl;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q2), STATUS_SUCCESS);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q1, WdfRequestTypeRead), STATUS_SUCCESS);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q2, WdfRequestTypeWrite), STATUS_SUCCESS);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q2, WdfRequestTypeDeviceControlInternal),
                     STATUS_SUCCESS);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfRoute");
    struct io io;
    WDF_REQUEST_PARAMETERS p;

    io_start(&io, t, WdfRequestTypeRead, 1024, 4096);
    ck_assert_int_eq(tu_load(&R.n_read), 1);
    ck_assert_uint_eq(R.last_len, 1024);
    ck_assert_ptr_eq(R.last_queue, q1);
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(R.held[0], &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeRead);
    ck_assert_uint_eq(p.Parameters.Read.Length, 1024);
    ck_assert_int_eq(p.Parameters.Read.DeviceOffset, 4096);
    ck_assert_ptr_eq(WdfRequestGetIoQueue(R.held[0]), q1);
    ck_assert(!WdfRequestIsReserved(R.held[0]));
    rx_complete(rx_take(0), STATUS_SUCCESS, 1024);
    io_expect(&io, STATUS_SUCCESS, 1024);
    io_fini(&io);

    io_start(&io, t, WdfRequestTypeWrite, 512, 0);
    ck_assert_int_eq(tu_load(&R.n_write), 1);
    ck_assert_uint_eq(R.last_len, 512);
    ck_assert_ptr_eq(R.last_queue, q2);
    /* WdfRequestSetInformation, then WdfRequestComplete keeps it */
    WDFREQUEST r = rx_take(0);
    WdfRequestSetInformation(r, 77);
    ck_assert_uint_eq(WdfRequestGetInformation(r), 77);
    atomic_fetch_sub(&R.owned, 1);
    WdfRequestComplete(r, STATUS_SUCCESS);
    io_expect(&io, STATUS_SUCCESS, 77);
    io_fini(&io);

    ioctl_start(&io, t, false, IOCTL_TEST_BUFFERED, 16, 32);
    ck_assert_int_eq(tu_load(&R.n_ioctl), 1);
    ck_assert_uint_eq(R.last_in_len, 16);
    ck_assert_uint_eq(R.last_out_len, 32);
    ck_assert_uint_eq(R.last_code, IOCTL_TEST_BUFFERED);
    ck_assert_ptr_eq(R.last_queue, q0);
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(R.held[0], &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeDeviceControl);
    ck_assert_uint_eq(p.Parameters.DeviceIoControl.IoControlCode, IOCTL_TEST_BUFFERED);
    r = rx_take(0);
    atomic_fetch_sub(&R.owned, 1);
    WdfRequestCompleteWithPriorityBoost(r, STATUS_DEVICE_BUSY, IO_NO_INCREMENT);
    io_expect(&io, STATUS_DEVICE_BUSY, 0);
    io_fini(&io);

    ioctl_start(&io, t, true, 0x1234, 8, 0);
    ck_assert_int_eq(tu_load(&R.n_iioctl), 1);
    ck_assert_uint_eq(R.last_code, 0x1234);
    ck_assert_uint_eq(R.last_in_len, 8);
    ck_assert_ptr_eq(R.last_queue, q2);
    rx_complete(rx_take(0), STATUS_SUCCESS, 0);
    io_expect(&io, STATUS_SUCCESS, 0);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&R.n_default), 0);

    /* A request type with no handler on its queue fails; on the default
     * queue, EvtIoDefault takes what has no specific handler. */
    WDFDEVICE dev2 = make_named_device(e.driver, "\\Device\\uwdfRoute2", WdfDeviceIoDirect);
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoRead = rx_read;
    ck_assert_status(WdfIoQueueCreate(dev2, &c, NULL, NULL), STATUS_SUCCESS);
    WDFIOTARGET t2 = app_target(&e, "\\Device\\uwdfRoute2");
    io_start(&io, t2, WdfRequestTypeWrite, 512, 0);
    io_expect(&io, STATUS_INVALID_DEVICE_REQUEST, 0);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&R.n_write), 1);

    /* a flush has no specific handler: EvtIoDefault of the default queue */
    memset(&io, 0, sizeof(io));
    io.req = tu_make_request(t);
    tu_completion_init(&io.c);
    IO_STACK_LOCATION sl;
    memset(&sl, 0, sizeof(sl));
    sl.MajorFunction = IRP_MJ_FLUSH_BUFFERS;
    WdfRequestWdmFormatUsingStackLocation(io.req, &sl);
    WdfRequestSetCompletionRoutine(io.req, tu_on_complete, &io.c);
    ck_assert(WdfRequestSend(io.req, t, WDF_NO_SEND_OPTIONS));
    ck_assert_int_eq(tu_load(&R.n_default), 1);
    ck_assert_ptr_eq(R.last_queue, q0);
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(R.held[0], &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeFlushBuffers);
    rx_complete(rx_take(0), STATUS_SUCCESS, 0);
    io_expect(&io, STATUS_SUCCESS, 0);
    io_fini(&io);
    tu_env_fini(&e);
}
END_TEST

/* ---- zero-length requests ---- */

START_TEST(zero_length)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE d1 = make_named_device(e.driver, "\\Device\\uwdfZ1", WdfDeviceIoBuffered);
    WDFDEVICE d2 = make_named_device(e.driver, "\\Device\\uwdfZ2", WdfDeviceIoDirect);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoRead = rx_read;
    c.EvtIoWrite = rx_write;
    ck_assert_status(WdfIoQueueCreate(d1, &c, NULL, NULL), STATUS_SUCCESS);
    c.AllowZeroLengthRequests = TRUE;
    ck_assert_status(WdfIoQueueCreate(d2, &c, NULL, NULL), STATUS_SUCCESS);
    WDFIOTARGET t1 = app_target(&e, "\\Device\\uwdfZ1"), t2 = app_target(&e, "\\Device\\uwdfZ2");
    struct io io;
    /* not allowed: the framework completes them, the driver never sees them */
    for (int w = 0; w < 2; w++) {
        io_start(&io, t1, w ? WdfRequestTypeWrite : WdfRequestTypeRead, 0, 0);
        io_expect(&io, STATUS_SUCCESS, 0);
        io_fini(&io);
    }
    ck_assert_int_eq(tu_load(&R.presented), 0);
    /* allowed: presented with Length 0; no buffer to retrieve */
    for (int w = 0; w < 2; w++) {
        io_start(&io, t2, w ? WdfRequestTypeWrite : WdfRequestTypeRead, 0, 0);
        ck_assert_int_eq(tu_load(&R.presented), w + 1);
        ck_assert_uint_eq(R.last_len, 0);
        WDFREQUEST r = rx_take(0);
        PVOID b = (PVOID)1;
        WDFMEMORY m = (WDFMEMORY)1;
        if (w) {
            ck_assert_status(WdfRequestRetrieveInputBuffer(r, 0, &b, NULL), STATUS_BUFFER_TOO_SMALL);
            ck_assert_status(WdfRequestRetrieveInputMemory(r, &m), STATUS_BUFFER_TOO_SMALL);
        } else {
            ck_assert_status(WdfRequestRetrieveOutputBuffer(r, 0, &b, NULL), STATUS_BUFFER_TOO_SMALL);
            ck_assert_status(WdfRequestRetrieveOutputMemory(r, &m), STATUS_BUFFER_TOO_SMALL);
        }
        ck_assert_ptr_null(b);
        ck_assert_ptr_null(m);
        rx_complete(r, STATUS_END_OF_FILE, 0);
        io_expect(&io, STATUS_END_OF_FILE, 0);
        io_fini(&io);
    }
    tu_env_fini(&e);
}
END_TEST

/* ---- the retrieval family ---- */

static void check_write_retrieval(WDFREQUEST r, const void *sent, size_t len)
{
    PVOID b;
    size_t n;
    WDFMEMORY m;
    PMDL mdl;
    /* the output side of a write does not exist */
    ck_assert_status(WdfRequestRetrieveOutputBuffer(r, 1, &b, &n), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestRetrieveOutputMemory(r, &m), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestRetrieveOutputWdmMdl(r, &mdl), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestRetrieveInputBuffer(r, len + 1, &b, &n), STATUS_BUFFER_TOO_SMALL);
    ck_assert_ptr_null(b);
    ck_assert_status(WdfRequestRetrieveInputBuffer(r, len, &b, &n), STATUS_SUCCESS);
    ck_assert_uint_eq(n, len);
    ck_assert_int_eq(memcmp(b, sent, len), 0);
    ck_assert_status(WdfRequestRetrieveInputMemory(r, &m), STATUS_SUCCESS);
    size_t msize = 0;
    ck_assert_ptr_eq(WdfMemoryGetBuffer(m, &msize), b);
    ck_assert_uint_eq(msize, len);
    /* a write's buffer is the sender's data: read-only */
    char tmp[16] = { 0 };
    ck_assert_status(WdfMemoryCopyFromBuffer(m, 0, tmp, sizeof(tmp)), STATUS_ACCESS_VIOLATION);
    ck_assert_int_eq(memcmp(b, sent, len), 0);
    ck_assert_status(WdfMemoryCopyToBuffer(m, 0, tmp, sizeof(tmp)), STATUS_SUCCESS);
    ck_assert_int_eq(memcmp(tmp, sent, sizeof(tmp)), 0);
    /* the same handle again: nothing new is made */
    WDFMEMORY m2;
    ck_assert_status(WdfRequestRetrieveInputMemory(r, &m2), STATUS_SUCCESS);
    ck_assert_ptr_eq(m2, m);
    ck_assert_status(WdfRequestRetrieveInputWdmMdl(r, &mdl), STATUS_SUCCESS);
    ck_assert_ptr_eq(MmGetMdlVirtualAddress(mdl), b);
    ck_assert_uint_eq(MmGetMdlByteCount(mdl), len);
}

static void check_read_retrieval(WDFREQUEST r, size_t len, unsigned seed)
{
    PVOID b;
    size_t n;
    WDFMEMORY m;
    PMDL mdl;
    ck_assert_status(WdfRequestRetrieveInputBuffer(r, 1, &b, &n), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestRetrieveInputMemory(r, &m), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestRetrieveInputWdmMdl(r, &mdl), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestRetrieveOutputBuffer(r, len * 2, &b, &n), STATUS_BUFFER_TOO_SMALL);
    ck_assert_status(WdfRequestRetrieveOutputBuffer(r, 0, &b, NULL), STATUS_SUCCESS);
    ck_assert_status(WdfRequestRetrieveOutputMemory(r, &m), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfMemoryGetBuffer(m, &n), b);
    ck_assert_uint_eq(n, len);
    /* a read's buffer is writable */
    char *pat = malloc(len);
    tu_fill_pattern(pat, len, seed, 0);
    ck_assert_status(WdfMemoryCopyFromBuffer(m, 0, pat, len), STATUS_SUCCESS);
    ck_assert_status(WdfMemoryCopyFromBuffer(m, 1, pat, len), STATUS_INVALID_BUFFER_SIZE);
    free(pat);
    ck_assert_status(WdfRequestRetrieveOutputWdmMdl(r, &mdl), STATUS_SUCCESS);
    ck_assert_ptr_eq(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority), b);
}

START_TEST(retrieval)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    const WDF_DEVICE_IO_TYPE types[] = { WdfDeviceIoBuffered, WdfDeviceIoDirect };
    for (int k = 0; k < 2; k++) {
        rx_reset();
        char name[64];
        snprintf(name, sizeof(name), "\\Device\\uwdfRetr%d", k);
        WDFDEVICE dev = make_named_device(e.driver, name, types[k]);
        rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
        WDFIOTARGET t = app_target(&e, name);
        struct io io;

        io_prepare(&io, t, WdfRequestTypeWrite, 2048, 0);
        tu_fill_pattern(io.buf, 2048, 5 + (unsigned)k, 0);
        io_send_opts(&io, t, WDF_NO_SEND_OPTIONS);
        WDFREQUEST r = rx_take(0);
        check_write_retrieval(r, io.buf, 2048);
        WDFMEMORY m;
        ck_assert_status(WdfRequestRetrieveInputMemory(r, &m), STATUS_SUCCESS);
        /* the caller keeps a reference across completion */
        WdfObjectReference(r);
        rx_complete(r, STATUS_SUCCESS, 2048);
        io_expect(&io, STATUS_SUCCESS, 2048);
        PVOID b;
        size_t n;
        ck_assert_status(WdfRequestRetrieveInputBuffer(r, 1, &b, &n), STATUS_INTERNAL_ERROR);
        ck_assert_status(WdfRequestRetrieveInputMemory(r, &m), STATUS_INTERNAL_ERROR);
        PMDL mdl;
        ck_assert_status(WdfRequestRetrieveInputWdmMdl(r, &mdl), STATUS_INTERNAL_ERROR);
        ck_assert_int_eq(tu_last_bugcheck.count, 0);
        /* the memory handle retrieved before completion is dead */
        ck_assert_status(WdfRequestRetrieveOutputBuffer(r, 1, &b, &n), STATUS_INTERNAL_ERROR);
        WdfObjectDereference(r);
        io_fini(&io);

        io_prepare(&io, t, WdfRequestTypeRead, 4096, 0);
        memset(io.buf, 0, 4096);
        io_send_opts(&io, t, WDF_NO_SEND_OPTIONS);
        r = rx_take(0);
        check_read_retrieval(r, 4096, 9 + (unsigned)k);
        ck_assert_status(WdfRequestRetrieveOutputMemory(r, &m), STATUS_SUCCESS);
        WdfObjectReference(r);
        rx_complete(r, STATUS_SUCCESS, 4096);
        io_expect(&io, STATUS_SUCCESS, 4096);
        ck_assert(tu_pattern_matches(io.buf, 4096, 9 + (unsigned)k, 0));
        /* verifier: using the completed request is a bug check */
        UwdfSetVerifier(TRUE);
        ck_assert_status(WdfRequestRetrieveOutputBuffer(r, 1, &b, &n), STATUS_INTERNAL_ERROR);
        tu_expect_bugcheck_reason(WDF_REQUEST_FATAL_ERROR, "already completed");
        UwdfSetVerifier(FALSE);
        ck_assert_ptr_null(WdfMemoryGetBuffer(m, &n));
        tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, NULL);
        WdfObjectDereference(r);
        io_fini(&io);
        WdfObjectDelete(t);
    }
    tu_env_fini(&e);
}
END_TEST

/* On a direct-I/O device the IRP a driver asks for describes the buffer
 * by an MDL before anything retrieved it (the port builds the MDL when it
 * can be looked at), and the MDL retrieval hands out that same MDL. */
START_TEST(direct_io_irp_has_the_buffer_mdl_before_any_retrieval)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfDirMdl", WdfDeviceIoDirect);
    rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfDirMdl");
    for (int w = 0; w < 2; w++) {
        struct io io;
        io_prepare(&io, t, w ? WdfRequestTypeWrite : WdfRequestTypeRead, 4096, 0);
        io_send_opts(&io, t, WDF_NO_SEND_OPTIONS);
        WDFREQUEST r = rx_take(0);
        PIRP irp = WdfRequestWdmGetIrp(r);
        ck_assert_ptr_nonnull(irp);
        PMDL at = irp->MdlAddress;
        ck_assert_ptr_nonnull(at);
        ck_assert_ptr_eq(MmGetSystemAddressForMdlSafe(at, NormalPagePriority), io.buf);
        ck_assert_uint_eq(MmGetMdlByteCount(at), 4096);
        PMDL mdl = NULL;
        ck_assert_status(w ? WdfRequestRetrieveInputWdmMdl(r, &mdl) : WdfRequestRetrieveOutputWdmMdl(r, &mdl),
                         STATUS_SUCCESS);
        ck_assert_ptr_eq(mdl, at);
        rx_complete(r, STATUS_SUCCESS, 4096);
        io_expect(&io, STATUS_SUCCESS, 4096);
        io_fini(&io);
    }
    tu_env_fini(&e);
}
END_TEST

/* A filter on a direct-I/O device that forwards with a completion routine
 * which looks at its IRP's MDL: mdl_seen counts completions that saw one
 * describing mdl_expect. */
static void *_Atomic mdl_expect;
static atomic_int mdl_seen;

static bool mdl_describes(PMDL m, void *buf, ULONG len)
{
    return m && MmGetSystemAddressForMdlSafe(m, NormalPagePriority) == buf && MmGetMdlByteCount(m) == len;
}

static VOID mdl_check_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                           WDFCONTEXT Context)
{
    (void)Target;
    (void)Context;
    PIRP irp = WdfRequestWdmGetIrp(Request);
    WDF_REQUEST_PARAMETERS p;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(Request, &p);
    PMDL m = NULL;
    NTSTATUS st = p.Type == WdfRequestTypeWrite ? WdfRequestRetrieveInputWdmMdl(Request, &m)
                                                : WdfRequestRetrieveOutputWdmMdl(Request, &m);
    bool ok = irp && mdl_describes(irp->MdlAddress, atomic_load(&mdl_expect), BLOCK) && NT_SUCCESS(st) &&
              m == irp->MdlAddress;
    if (ok)
        atomic_fetch_add(&mdl_seen, 1);
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

/* Send Request on as it came to the device below Queue's, done on return. */
static void send_on_as_it_came(WDFQUEUE Queue, WDFREQUEST Request, PFN_WDF_REQUEST_COMPLETION_ROUTINE done)
{
    TU_FORWARDER *f = tu_forwarder_of(WdfIoQueueGetDevice(Queue));
    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, done, NULL);
    if (!WdfRequestSend(Request, f->lower, WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

static VOID mdl_check_forward(WDFQUEUE Queue, WDFREQUEST Request)
{
    send_on_as_it_came(Queue, Request, mdl_check_done);
}

/* Down a stack of direct-I/O filters none of which looked at the buffer,
 * the driver at the bottom finds the buffer's MDL in the IRP and retrieves
 * that MDL, and a filter that looks at its IRP in its completion routine
 * finds it there too: every layer's MDL describes the sender's buffer. */
START_TEST(direct_io_chain_gives_every_layer_the_buffer_mdl)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    atomic_store(&mdl_seen, 0);
    WDFDEVICE bottom = make_named_device(e.driver, "\\Device\\uwdfChainB", WdfDeviceIoDirect);
    rx_queue(bottom, WdfIoQueueDispatchParallel, true, 0);
    WDFDEVICE mid;
    ck_assert_status(tu_forwarder_device_create(e.driver, "\\Device\\uwdfChainM", WdfDeviceIoDirect, &mid),
                     STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG cfg;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&cfg, WdfIoQueueDispatchParallel);
    cfg.EvtIoDefault = mdl_check_forward;
    ck_assert_status(WdfIoQueueCreate(mid, &cfg, WDF_NO_OBJECT_ATTRIBUTES, NULL), STATUS_SUCCESS);
    tu_open_by_name(tu_forwarder_of(mid)->lower, "\\Device\\uwdfChainB", 0);
    WDFDEVICE top = tu_make_forwarder(e.driver, "\\Device\\uwdfChainT", WdfDeviceIoDirect, "\\Device\\uwdfChainM", 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfChainT");
    for (int w = 0; w < 2; w++) {
        struct io io;
        io_prepare(&io, t, w ? WdfRequestTypeWrite : WdfRequestTypeRead, BLOCK, 0);
        atomic_store(&mdl_expect, io.buf);
        io_send_opts(&io, t, WDF_NO_SEND_OPTIONS);
        WDFREQUEST r = rx_take(0);
        PIRP irp = WdfRequestWdmGetIrp(r);
        ck_assert_ptr_nonnull(irp);
        ck_assert(mdl_describes(irp->MdlAddress, io.buf, BLOCK));
        PMDL mdl = NULL;
        ck_assert_status(w ? WdfRequestRetrieveInputWdmMdl(r, &mdl) : WdfRequestRetrieveOutputWdmMdl(r, &mdl),
                         STATUS_SUCCESS);
        ck_assert_ptr_eq(mdl, irp->MdlAddress);
        rx_complete(r, STATUS_SUCCESS, BLOCK);
        io_expect(&io, STATUS_SUCCESS, BLOCK);
        ck_assert_int_eq(tu_load(&mdl_seen), w + 1);
        io_fini(&io);
    }
    ck_assert_uint_eq(fwd_seen(top), 2);
    tu_env_fini(&e);
}
END_TEST

/* Retrieving an MDL on a buffered-I/O device builds one, which can fail
 * for memory; retrieving memory allocates only the first time a request's
 * memory is used for a retrieval (it is kept for the next request
 * presented in that memory), and fails cleanly when it cannot. */
START_TEST(retrieval_out_of_memory)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfOom", WdfDeviceIoBuffered);
    rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfOom");
    for (int w = 0; w < 2; w++) {
        struct io io;
        io_start(&io, t, w ? WdfRequestTypeWrite : WdfRequestTypeRead, 4096, 0);
        WDFREQUEST r = rx_take(0);
        PMDL mdl = (PMDL)1;
        WDFMEMORY m;
        UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
        NTSTATUS st = w ? WdfRequestRetrieveInputMemory(r, &m) : WdfRequestRetrieveOutputMemory(r, &m);
        if (st == STATUS_INSUFFICIENT_RESOURCES) {
            /* the request's first retrieval: nothing handed out */
            ck_assert_ptr_null(m);
            UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
            ck_assert_status(w ? WdfRequestRetrieveInputMemory(r, &m) : WdfRequestRetrieveOutputMemory(r, &m),
                             STATUS_SUCCESS);
            UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
        } else {
            ck_assert_status(st, STATUS_SUCCESS);
        }
        /* Now a retrieval allocates nothing. */
        ck_assert_status(w ? WdfRequestRetrieveInputMemory(r, &m) : WdfRequestRetrieveOutputMemory(r, &m),
                         STATUS_SUCCESS);
        ck_assert_status(w ? WdfRequestRetrieveInputWdmMdl(r, &mdl) : WdfRequestRetrieveOutputWdmMdl(r, &mdl),
                         STATUS_INSUFFICIENT_RESOURCES);
        ck_assert_ptr_null(mdl);
        ck_assert_uint_ge(UwdfFaultAllocationFailures(), 1);
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        ck_assert_status(w ? WdfRequestRetrieveInputWdmMdl(r, &mdl) : WdfRequestRetrieveOutputWdmMdl(r, &mdl),
                         STATUS_SUCCESS);
        ck_assert_ptr_eq(MmGetMdlVirtualAddress(mdl), WdfMemoryGetBuffer(m, NULL));
        ck_assert_uint_eq(MmGetMdlByteCount(mdl), 4096);
        rx_complete(r, STATUS_SUCCESS, 4096);
        io_expect(&io, STATUS_SUCCESS, 4096);
        io_fini(&io);
    }
    tu_env_fini(&e);
}
END_TEST

/* ---- IOCTLs through a stack: app -> forwarding filter -> device ---- */

static VOID ioctl_server(WDFQUEUE q, WDFREQUEST req, size_t out_len, size_t in_len, ULONG code)
{
    (void)q;
    PVOID in, out;
    size_t n;
    atomic_fetch_add(&R.n_ioctl, 1);
    ck_assert_status(WdfRequestRetrieveInputBuffer(req, in_len, &in, &n), STATUS_SUCCESS);
    ck_assert_uint_eq(n, in_len);
    if (code == IOCTL_TEST_OUT_DIRECT) {
        PMDL mdl;
        ck_assert_status(WdfRequestRetrieveOutputWdmMdl(req, &mdl), STATUS_SUCCESS);
        ck_assert_uint_eq(MmGetMdlByteCount(mdl), out_len);
        out = MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority);
    } else {
        ck_assert_status(WdfRequestRetrieveOutputBuffer(req, out_len, &out, &n), STATUS_SUCCESS);
    }
    /* reply: the input reversed, in the first in_len bytes */
    char tmp[256];
    ck_assert_uint_le(in_len, sizeof(tmp));
    memcpy(tmp, in, in_len);
    for (size_t i = 0; i < in_len; i++)
        ((char *)out)[i] = tmp[in_len - 1 - i];
    WdfRequestCompleteWithInformation(req, STATUS_SUCCESS, in_len);
}

/* A device whose default queue answers IOCTLs with ioctl_server. */
static void make_ioctl_server(WDFDRIVER driver, const char *name)
{
    WDFDEVICE dev = make_named_device(driver, name, WdfDeviceIoDirect);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDeviceControl = ioctl_server;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
}

static void *_Atomic ioctl_peek_expect; /* the sender's output buffer */

/* One IOCTL of in_len bytes ("abc...") with an out_len output buffer sent
 * to t: ioctl_server's reply (the input reversed) in the output's first
 * in_len bytes, the rest untouched, the input unchanged. */
static void ioctl_round_trip(WDFIOTARGET t, ULONG code, size_t in_len, size_t out_len)
{
    struct io io;
    memset(&io, 0, sizeof(io));
    io.req = tu_make_request(t);
    io.mem = tu_make_memory(in_len, &io.buf);
    io.mem2 = tu_make_memory(out_len, &io.buf2);
    for (size_t i = 0; i < in_len; i++)
        ((char *)io.buf)[i] = (char)('a' + i);
    memset(io.buf2, 0xEE, out_len);
    atomic_store(&ioctl_peek_expect, io.buf2);
    tu_completion_init(&io.c);
    ck_assert_status(WdfIoTargetFormatRequestForIoctl(t, io.req, code, io.mem, NULL, io.mem2, NULL), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(io.req, tu_on_complete, &io.c);
    ck_assert(WdfRequestSend(io.req, t, WDF_NO_SEND_OPTIONS));
    io_expect(&io, STATUS_SUCCESS, (long)in_len);
    ck_assert_int_eq(io.c.type, WdfRequestTypeDeviceControl);
    for (size_t i = 0; i < in_len; i++)
        ck_assert_int_eq(((char *)io.buf2)[i], (char)('a' + in_len - 1 - i));
    /* only Information bytes come back */
    for (size_t i = in_len; i < out_len; i++)
        ck_assert_int_eq(((unsigned char *)io.buf2)[i], 0xEE);
    /* the input is the sender's, unchanged */
    for (size_t i = 0; i < in_len; i++)
        ck_assert_int_eq(((char *)io.buf)[i], (char)('a' + i));
    io_fini(&io);
}

START_TEST(ioctl_through_stack)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    make_ioctl_server(e.driver, "\\Device\\uwdfIoctlB");
    WDFDEVICE top = tu_make_forwarder(e.driver, "\\Device\\uwdfIoctlT", WdfDeviceIoBuffered, "\\Device\\uwdfIoctlB", 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfIoctlT");
    const ULONG codes[] = { IOCTL_TEST_BUFFERED, IOCTL_TEST_OUT_DIRECT };
    for (int k = 0; k < 2; k++)
        ioctl_round_trip(t, codes[k], 24, 64);
    ck_assert_int_eq(tu_load(&R.n_ioctl), 2);
    ck_assert_uint_eq(fwd_seen(top), 2);
    tu_env_fini(&e);
}
END_TEST

/* A direct-method IOCTL sent on as it came down four devices, the filters
 * between looking at it as a driver may (its output buffer, or its MDL, or
 * not at all) before sending it on: the MDL below the first device is
 * deferred (lib/request_received.c), and every layer's view of the output
 * must still be the sender's buffer, and the reply must land in it. */
#define IOCTL_TEST_IN_DIRECT CTL_CODE(FILE_DEVICE_UNKNOWN, 0x803, METHOD_IN_DIRECT, FILE_ANY_ACCESS)
static atomic_int ioctl_peek_mode;      /* 0 none, 1 output buffer, 2 output MDL */
static atomic_int ioctl_peek_ok;

static VOID ioctl_peek_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                            WDFCONTEXT Context)
{
    (void)Target;
    (void)Context;
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

static VOID ioctl_peek_forward(WDFQUEUE Queue, WDFREQUEST Request, size_t out_len, size_t in_len, ULONG code)
{
    (void)in_len;
    (void)code;
    int mode = atomic_load(&ioctl_peek_mode);
    bool ok = true;
    if (mode == 1) {
        PVOID out = NULL;
        size_t n = 0;
        ok = NT_SUCCESS(WdfRequestRetrieveOutputBuffer(Request, out_len, &out, &n)) && n == out_len &&
             out == atomic_load(&ioctl_peek_expect);
    } else if (mode == 2) {
        PMDL m = NULL;
        ok = NT_SUCCESS(WdfRequestRetrieveOutputWdmMdl(Request, &m)) &&
             mdl_describes(m, atomic_load(&ioctl_peek_expect), (ULONG)out_len);
    }
    if (ok)
        atomic_fetch_add(&ioctl_peek_ok, 1);
    send_on_as_it_came(Queue, Request, ioctl_peek_done);
}

START_TEST(direct_ioctl_down_a_chain_of_four_devices)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    make_ioctl_server(e.driver, "\\Device\\uwdfDxB");
    WDF_IO_QUEUE_CONFIG c;
    const char *names[] = { "\\Device\\uwdfDxB", "\\Device\\uwdfDx1", "\\Device\\uwdfDx2" };
    for (int d = 1; d < 3; d++) {
        WDFDEVICE f;
        ck_assert_status(tu_forwarder_device_create(e.driver, names[d], WdfDeviceIoDirect, &f), STATUS_SUCCESS);
        WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
        c.EvtIoDeviceControl = ioctl_peek_forward;
        ck_assert_status(WdfIoQueueCreate(f, &c, NULL, NULL), STATUS_SUCCESS);
        tu_open_by_name(tu_forwarder_of(f)->lower, names[d - 1], 0);
    }
    WDFDEVICE top = tu_make_forwarder(e.driver, "\\Device\\uwdfDxT", WdfDeviceIoDirect, "\\Device\\uwdfDx2", 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfDxT");
    const ULONG codes[] = { IOCTL_TEST_OUT_DIRECT, IOCTL_TEST_IN_DIRECT };
    atomic_store(&ioctl_peek_ok, 0);
    int sent = 0;
    for (int round = 0; round < 300; round++) {
        ULONG code = codes[round & 1];
        atomic_store(&ioctl_peek_mode, (round >> 1) % 3);
        ioctl_round_trip(t, code, 1 + (size_t)round % 24, 64 + (size_t)round % 61);
        sent++;
        ck_assert_int_eq(tu_load(&ioctl_peek_ok), 2 * sent);
    }
    ck_assert_int_eq(tu_load(&R.n_ioctl), sent);
    ck_assert_uint_eq(fwd_seen(top), (unsigned long)sent);
    tu_env_fini(&e);
}
END_TEST

/* ---- dispatch types ---- */

START_TEST(dispatch_sequential)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfSeq", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchSequential, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfSeq");
    struct io io[5];
    for (int i = 0; i < 5; i++)
        io_start(&io[i], t, WdfRequestTypeRead, 512, (LONGLONG)i * 512);
    ULONG qn, dn;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(tu_load(&R.presented), i + 1);
        ck_assert_int_eq(rx_nheld(), 1);
        WDF_IO_QUEUE_STATE st = WdfIoQueueGetState(q, &qn, &dn);
        ck_assert_uint_eq(qn, (ULONG)(4 - i));
        ck_assert_uint_eq(dn, 1);
        ck_assert(!WDF_IO_QUEUE_IDLE(st));
        ck_assert(WDF_IO_QUEUE_READY(st));
        WDF_REQUEST_PARAMETERS p;
        WDF_REQUEST_PARAMETERS_INIT(&p);
        WdfRequestGetParameters(R.held[0], &p);
        ck_assert_int_eq(p.Parameters.Read.DeviceOffset, (LONGLONG)i * 512); /* FIFO */
        rx_complete(rx_take(0), STATUS_SUCCESS, (ULONG_PTR)i);
        io_expect(&io[i], STATUS_SUCCESS, i);
    }
    ck_assert_int_eq(tu_load(&R.max_owned), 1);
    ck_assert(WDF_IO_QUEUE_IDLE(WdfIoQueueGetState(q, &qn, &dn)));
    ck_assert_uint_eq(qn + dn, 0);
    for (int i = 0; i < 5; i++)
        io_fini(&io[i]);
    tu_env_fini(&e);
}
END_TEST

struct sender_arg {
    WDFIOTARGET t;
    struct io *io;
    int n;
};

static void *sender_thread(void *p)
{
    struct sender_arg *a = p;
    for (int i = 0; i < a->n; i++)
        if (!WdfRequestSend(a->io[i].req, a->t, WDF_NO_SEND_OPTIONS))
            atomic_fetch_add(&R.n_state_cb, 1000); /* counted as a failure below */
    return NULL;
}

START_TEST(dispatch_parallel_limit)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfPar", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchParallel, true, 3);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfPar");
    enum { N = 24 };
    struct io io[N];
    for (int i = 0; i < N; i++)
        io_prepare(&io[i], t, WdfRequestTypeWrite, 512, (LONGLONG)i * 512);
    /* four senders at once */
    pthread_t th[4];
    struct sender_arg a[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (struct sender_arg){ t, &io[k * 6], 6 };
        ck_assert_int_eq(pthread_create(&th[k], NULL, sender_thread, &a[k]), 0);
    }
    for (int k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    ck_assert_int_eq(tu_load(&R.n_state_cb), 0);
    ck_assert_int_eq(rx_nheld(), 3);
    ULONG qn, dn;
    WdfIoQueueGetState(q, &qn, &dn);
    ck_assert_uint_eq(qn, N - 3);
    ck_assert_uint_eq(dn, 3);
    /* complete in turn; the queue presents one more each time */
    int completed = 0;
    while (completed < N) {
        ck_assert_int_le(rx_nheld(), 3);
        ck_assert_int_eq(rx_nheld(), N - completed < 3 ? N - completed : 3);
        rx_complete(rx_take(completed % 2 ? rx_nheld() - 1 : 0), STATUS_SUCCESS, 512);
        completed++;
    }
    ck_assert_int_eq(tu_load(&R.max_owned), 3);
    for (int i = 0; i < N; i++) {
        io_expect(&io[i], STATUS_SUCCESS, 512);
        io_fini(&io[i]);
    }
    tu_env_fini(&e);
}
END_TEST

START_TEST(dispatch_manual)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfMan", WdfDeviceIoBuffered);
    WDFQUEUE par = rx_queue(dev, WdfIoQueueDispatchParallel, false, 0);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchManual, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfMan");
    WDFREQUEST r = (WDFREQUEST)1;
    ck_assert_status(WdfIoQueueRetrieveNextRequest(par, &r), STATUS_INVALID_DEVICE_STATE);
    ck_assert_ptr_null(r);
    ck_assert_status(WdfIoQueueReadyNotify(par, rx_ready, &R), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfIoQueueRetrieveNextRequest(q, &r), STATUS_NO_MORE_ENTRIES);
    ck_assert_status(WdfIoQueueReadyNotify(q, rx_ready, &R), STATUS_SUCCESS);
    ck_assert_status(WdfIoQueueReadyNotify(q, rx_ready, &R), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_int_eq(tu_load(&R.n_ready), 0);

    struct io io[4];
    for (int i = 0; i < 3; i++)
        io_start(&io[i], t, WdfRequestTypeWrite, 512, (LONGLONG)i * 512);
    /* empty -> not empty once */
    ck_assert_int_eq(tu_load(&R.n_ready), 1);
    ck_assert_int_eq(tu_load(&R.presented), 0);
    WDFREQUEST got[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_status(WdfIoQueueRetrieveNextRequest(q, &got[i]), STATUS_SUCCESS);
        ck_assert_ptr_eq(WdfRequestGetIoQueue(got[i]), q);
        WDF_REQUEST_PARAMETERS p;
        WDF_REQUEST_PARAMETERS_INIT(&p);
        WdfRequestGetParameters(got[i], &p);
        ck_assert_int_eq(p.Parameters.Write.DeviceOffset, (LONGLONG)i * 512);
    }
    ck_assert_status(WdfIoQueueRetrieveNextRequest(q, &r), STATUS_NO_MORE_ENTRIES);
    /* requeue puts it back at the head; only on a manual queue */
    ck_assert_status(WdfRequestRequeue(got[2]), STATUS_SUCCESS);
    ck_assert_int_eq(tu_load(&R.n_ready), 2);
    ck_assert_status(WdfRequestRequeue(got[1]), STATUS_SUCCESS);
    ck_assert_status(WdfIoQueueRetrieveNextRequest(q, &r), STATUS_SUCCESS);
    ck_assert_ptr_eq(r, got[1]);
    ck_assert_status(WdfRequestForwardToIoQueue(got[0], par), STATUS_SUCCESS);
    ck_assert_int_eq(rx_nheld(), 1);
    ck_assert_status(WdfRequestRequeue(R.held[0]), STATUS_INVALID_DEVICE_REQUEST);
    rx_complete(rx_take(0), STATUS_SUCCESS, 1);
    io_expect(&io[0], STATUS_SUCCESS, 1);
    WdfRequestCompleteWithInformation(got[1], STATUS_SUCCESS, 2);
    io_expect(&io[1], STATUS_SUCCESS, 2);

    /* stopped: STATUS_WDF_PAUSED, no ready callback; Start reports ready */
    WdfIoQueueStop(q, NULL, NULL);
    ck_assert_status(WdfIoQueueRetrieveNextRequest(q, &r), STATUS_WDF_PAUSED);
    io_start(&io[3], t, WdfRequestTypeWrite, 512, 0);
    int ready = tu_load(&R.n_ready);
    WdfIoQueueStart(q);
    ck_assert_int_eq(tu_load(&R.n_ready), ready + 1);
    ck_assert_status(WdfIoQueueRetrieveNextRequest(q, &r), STATUS_SUCCESS);
    ck_assert_ptr_eq(r, got[2]);
    WdfRequestCompleteWithInformation(r, STATUS_SUCCESS, 3);
    io_expect(&io[2], STATUS_SUCCESS, 3);
    ck_assert_status(WdfIoQueueRetrieveNextRequest(q, &r), STATUS_SUCCESS);
    WdfRequestCompleteWithInformation(r, STATUS_SUCCESS, 4);
    io_expect(&io[3], STATUS_SUCCESS, 4);
    /* unregistering, then registering again */
    ck_assert_status(WdfIoQueueReadyNotify(q, NULL, NULL), STATUS_SUCCESS);
    ck_assert_status(WdfIoQueueReadyNotify(q, rx_ready, &R), STATUS_SUCCESS);
    for (int i = 0; i < 4; i++)
        io_fini(&io[i]);
    tu_env_fini(&e);
}
END_TEST

/* ---- queue state changes ---- */

/* Stop: EvtIoStop(Suspend) for each request the driver owns; the
 * callback once every one is acknowledged; requests keep arriving but wait;
 * Start resumes the acknowledged ones (EvtIoResume) and dispatches. */
START_TEST(stop_and_start)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfStop", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfStop");
    struct io io[4];
    for (int i = 0; i < 2; i++)
        io_start(&io[i], t, WdfRequestTypeRead, 512, (LONGLONG)i * 512);
    ck_assert_int_eq(rx_nheld(), 2);
    WDFREQUEST a = R.held[0], b = R.held[1];
    R.stop_action = 0;
    WdfIoQueueStop(q, rx_state_cb, &R);
    ck_assert_int_eq(tu_load(&R.n_stop), 2);
    ck_assert_uint_eq(R.stop_flags & WdfRequestStopActionSuspend, WdfRequestStopActionSuspend);
    ck_assert_uint_eq(R.stop_flags & WdfRequestStopActionPurge, 0);
    ck_assert_int_eq(tu_load(&R.n_state_cb), 0);
    ULONG qn, dn;
    WDF_IO_QUEUE_STATE st = WdfIoQueueGetState(q, &qn, &dn);
    ck_assert(st & WdfIoQueueAcceptRequests);
    ck_assert(!(st & WdfIoQueueDispatchRequests));
    ck_assert(!WDF_IO_QUEUE_STOPPED(st)); /* the driver still owns two */
    /* arriving while stopped: accepted, not presented */
    io_start(&io[2], t, WdfRequestTypeRead, 512, 1024);
    ck_assert_int_eq(tu_load(&R.presented), 2);
    WdfRequestStopAcknowledge(a, FALSE);
    ck_assert_int_eq(tu_load(&R.n_state_cb), 0);
    /* requeued: back on the queue (at the head), no longer the driver's */
    ck_assert(rx_unhold(b));
    atomic_fetch_sub(&R.owned, 1);
    WdfRequestStopAcknowledge(b, TRUE);
    ck_assert_int_eq(tu_load(&R.n_state_cb), 1);
    st = WdfIoQueueGetState(q, &qn, &dn);
    ck_assert_uint_eq(qn, 2);
    ck_assert_uint_eq(dn, 1);
    ck_assert(!io_done(&io[0]) && !io_done(&io[1]) && !io_done(&io[2]));
    /* synchronous stop of a stopped queue whose requests are acknowledged */
    WdfIoQueueStopSynchronously(q);
    ck_assert_int_eq(tu_load(&R.n_stop), 2);

    WdfIoQueueStart(q);
    ck_assert_int_eq(tu_load(&R.n_resume), 1);
    ck_assert(WDF_IO_QUEUE_READY(WdfIoQueueGetState(q, &qn, &dn)));
    ck_assert_uint_eq(qn, 0);
    ck_assert_uint_eq(dn, 3);
    ck_assert_int_eq(rx_nheld(), 3);
    ck_assert_ptr_eq(R.held[0], a);
    ck_assert_ptr_eq(R.held[1], b); /* the requeued one first */
    while (rx_nheld())
        rx_complete(rx_take(0), STATUS_SUCCESS, 512);
    for (int i = 0; i < 3; i++) {
        io_expect(&io[i], STATUS_SUCCESS, 512);
        io_fini(&io[i]);
    }

    /* StopSynchronously returns when EvtIoStop has completed the request */
    io_start(&io[3], t, WdfRequestTypeRead, 512, 0);
    R.stop_action = 3;
    WdfIoQueueStopSynchronously(q);
    io_expect(&io[3], STATUS_CANCELLED, 0);
    ck_assert(WDF_IO_QUEUE_STOPPED(WdfIoQueueGetState(q, NULL, NULL)));
    WdfIoQueueStart(q);
    io_fini(&io[3]);
    tu_env_fini(&e);
}
END_TEST

START_TEST(drain)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfDrain", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchSequential, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfDrain");
    struct io io[4];
    for (int i = 0; i < 2; i++)
        io_start(&io[i], t, WdfRequestTypeWrite, 512, 0);
    WdfIoQueueDrain(q, rx_state_cb, &R);
    ck_assert_int_eq(tu_load(&R.n_stop), 0); /* a drain lets requests finish */
    WDF_IO_QUEUE_STATE st = WdfIoQueueGetState(q, NULL, NULL);
    ck_assert(!(st & WdfIoQueueAcceptRequests));
    ck_assert(st & WdfIoQueueDispatchRequests);
    /* refused while draining, as KMDF refuses it */
    io_start(&io[2], t, WdfRequestTypeWrite, 512, 0);
    io_expect(&io[2], STATUS_INVALID_DEVICE_STATE, 0);
    ck_assert_int_eq(tu_load(&R.presented), 1);
    rx_complete(rx_take(0), STATUS_SUCCESS, 1);
    ck_assert_int_eq(tu_load(&R.n_state_cb), 0);
    ck_assert_int_eq(rx_nheld(), 1); /* the waiting one is still dispatched */
    rx_complete(rx_take(0), STATUS_SUCCESS, 2);
    ck_assert_int_eq(tu_load(&R.n_state_cb), 1);
    ck_assert(WDF_IO_QUEUE_DRAINED(WdfIoQueueGetState(q, NULL, NULL)));
    io_expect(&io[0], STATUS_SUCCESS, 1);
    io_expect(&io[1], STATUS_SUCCESS, 2);
    /* a drained queue drains at once; Start accepts again */
    WdfIoQueueDrainSynchronously(q);
    WdfIoQueueStart(q);
    io_start(&io[3], t, WdfRequestTypeWrite, 512, 0);
    rx_complete(rx_take(0), STATUS_SUCCESS, 3);
    io_expect(&io[3], STATUS_SUCCESS, 3);
    for (int i = 0; i < 4; i++)
        io_fini(&io[i]);
    tu_env_fini(&e);
}
END_TEST

/* A request the driver acknowledged at a stop (EvtIoStop: keep it) is
 * still the driver's and still cancelable: a purge afterwards cancels it
 * (its cancel routine), with no second EvtIoStop, and the purge ends. */
START_TEST(purge_cancels_a_cancelable_request_acknowledged_at_a_stop)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfAckPurge", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchSequential, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfAckPurge");
    struct io io;
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    ck_assert_int_eq(rx_nheld(), 1);
    ck_assert_status(WdfRequestMarkCancelableEx(R.held[0], rx_cancel_routine), STATUS_SUCCESS);
    R.stop_action = 1; /* acknowledge, keep it */
    WdfIoQueueStopSynchronously(q);
    ck_assert_int_eq(tu_load(&R.n_stop), 1);
    ck_assert_uint_eq(R.stop_flags, WdfRequestStopActionSuspend | WdfRequestStopRequestCancelable);
    ck_assert(!io_done(&io));
    WdfIoQueuePurgeSynchronously(q);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
    ck_assert_int_eq(tu_load(&R.n_stop), 1);
    io_expect(&io, STATUS_CANCELLED, 0);
    ck_assert_int_eq(rx_nheld(), 0);
    io_fini(&io);
    tu_env_fini(&e);
}
END_TEST

/* Purge: waiting requests are cancelled (EvtIoCanceledOnQueue when the
 * queue has one), owned cancelable ones cancelled, the rest get
 * EvtIoStop(Purge); the callback runs when all are gone. */
START_TEST(purge)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    for (int variant = 0; variant < 2; variant++) {
        rx_reset();
        char name[64];
        snprintf(name, sizeof(name), "\\Device\\uwdfPurge%d", variant);
        WDFDEVICE dev = make_named_device(e.driver, name, WdfDeviceIoBuffered);
        WDF_IO_QUEUE_CONFIG c;
        WDFQUEUE q;
        WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
        c.Settings.Parallel.NumberOfPresentedRequests = 2;
        c.EvtIoDefault = rx_default;
        c.EvtIoStop = rx_stop;
        if (variant)
            c.EvtIoCanceledOnQueue = rx_canceled_on_queue;
        ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_SUCCESS);
        WDFIOTARGET t = app_target(&e, name);
        struct io io[5];
        for (int i = 0; i < 4; i++)
            io_start(&io[i], t, WdfRequestTypeRead, 512, 0);
        ck_assert_int_eq(rx_nheld(), 2);
        ck_assert_status(WdfRequestMarkCancelableEx(R.held[1], rx_cancel_routine), STATUS_SUCCESS);
        R.stop_action = 0;
        if (variant == 0) {
            WdfIoQueuePurge(q, rx_state_cb, &R);
        } else {
            R.stop_action = 3; /* EvtIoStop completes it: the synchronous form returns */
            WdfIoQueuePurgeSynchronously(q);
        }
        /* the two waiting ones */
        io_expect(&io[2], STATUS_CANCELLED, 0);
        io_expect(&io[3], STATUS_CANCELLED, 0);
        ck_assert_int_eq(tu_load(&R.n_canceled_on_queue), variant ? 2 : 0);
        /* the cancelable owned one */
        ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
        ck_assert(R.cancel_is_canceled);
        io_expect(&io[1], STATUS_CANCELLED, 0);
        /* the other one got EvtIoStop(Purge) */
        ck_assert_int_eq(tu_load(&R.n_stop), 1);
        ck_assert_uint_eq(R.stop_flags & WdfRequestStopActionPurge, WdfRequestStopActionPurge);
        ck_assert_uint_eq(R.stop_flags & WdfRequestStopRequestCancelable, 0);
        if (variant == 0) {
            ck_assert_int_eq(tu_load(&R.n_state_cb), 0);
            ck_assert_int_eq(rx_nheld(), 1);
            rx_complete(rx_take(0), STATUS_SUCCESS, 9);
            io_expect(&io[0], STATUS_SUCCESS, 9);
            ck_assert_int_eq(tu_load(&R.n_state_cb), 1);
        } else {
            io_expect(&io[0], STATUS_CANCELLED, 0);
        }
        ck_assert(WDF_IO_QUEUE_PURGED(WdfIoQueueGetState(q, NULL, NULL)));
        /* a purged queue refuses new requests until started */
        io_start(&io[4], t, WdfRequestTypeRead, 512, 0);
        io_expect(&io[4], STATUS_INVALID_DEVICE_STATE, 0);
        ck_assert_int_eq(tu_load(&R.presented), 2);
        io_fini(&io[4]);
        WdfIoQueueStart(q);
        io_start(&io[4], t, WdfRequestTypeRead, 512, 0);
        rx_complete(rx_take(0), STATUS_SUCCESS, 1);
        io_expect(&io[4], STATUS_SUCCESS, 1);
        for (int i = 0; i < 5; i++)
            io_fini(&io[i]);
    }
    tu_env_fini(&e);
}
END_TEST

START_TEST(stop_and_purge)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfStopPurge", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchSequential, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfStopPurge");
    struct io io[4];
    for (int i = 0; i < 3; i++)
        io_start(&io[i], t, WdfRequestTypeRead, 512, 0);
    R.stop_action = 1; /* acknowledge, keep it */
    WdfIoQueueStopAndPurge(q, rx_state_cb, &R);
    io_expect(&io[1], STATUS_CANCELLED, 0);
    io_expect(&io[2], STATUS_CANCELLED, 0);
    ck_assert_int_eq(tu_load(&R.n_stop), 1);
    ck_assert_uint_eq(R.stop_flags & WdfRequestStopActionPurge, WdfRequestStopActionPurge);
    ck_assert_int_eq(tu_load(&R.n_state_cb), 1);
    WDF_IO_QUEUE_STATE st = WdfIoQueueGetState(q, NULL, NULL);
    ck_assert(st & WdfIoQueueAcceptRequests); /* still accepting */
    ck_assert(!(st & WdfIoQueueDispatchRequests));
    io_start(&io[3], t, WdfRequestTypeRead, 512, 0);
    ck_assert_int_eq(tu_load(&R.presented), 1);
    /* the acknowledged request finishes; Start presents the new one */
    rx_complete(rx_take(0), STATUS_SUCCESS, 5);
    io_expect(&io[0], STATUS_SUCCESS, 5);
    WdfIoQueueStart(q);
    ck_assert_int_eq(tu_load(&R.presented), 2);
    R.stop_action = 3;
    WdfIoQueueStopAndPurgeSynchronously(q);
    io_expect(&io[3], STATUS_CANCELLED, 0);
    for (int i = 0; i < 4; i++)
        io_fini(&io[i]);
    tu_env_fini(&e);
}
END_TEST

/* A request cancelled while it waits on the queue: EvtIoCanceledOnQueue
 * gets it, or without one the framework completes it. */
START_TEST(cancel_on_queue)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    for (int variant = 0; variant < 2; variant++) {
        rx_reset();
        char name[64];
        snprintf(name, sizeof(name), "\\Device\\uwdfCoq%d", variant);
        WDFDEVICE dev = make_named_device(e.driver, name, WdfDeviceIoBuffered);
        WDF_IO_QUEUE_CONFIG c;
        WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchSequential);
        c.EvtIoDefault = rx_default;
        if (variant)
            c.EvtIoCanceledOnQueue = rx_canceled_on_queue;
        ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
        WDFIOTARGET t = app_target(&e, name);
        struct io io[3];
        for (int i = 0; i < 3; i++)
            io_start(&io[i], t, WdfRequestTypeRead, 512, 0);
        ck_assert(WdfRequestCancelSentRequest(io[1].req));
        io_expect(&io[1], STATUS_CANCELLED, 0);
        ck_assert_int_eq(tu_load(&R.n_canceled_on_queue), variant);
        ck_assert(!io_done(&io[2]));
        rx_complete(rx_take(0), STATUS_SUCCESS, 1);
        rx_complete(rx_take(0), STATUS_SUCCESS, 3);
        io_expect(&io[0], STATUS_SUCCESS, 1);
        io_expect(&io[2], STATUS_SUCCESS, 3);
        ck_assert_int_eq(tu_load(&R.presented), 2);
        for (int i = 0; i < 3; i++)
            io_fini(&io[i]);
    }
    tu_env_fini(&e);
}
END_TEST

/* ---- ownership: forward, requeue, stop acknowledge ---- */

START_TEST(forward_to_queue)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfFwdQ", WdfDeviceIoBuffered);
    WDFDEVICE other = make_named_device(e.driver, "\\Device\\uwdfFwdQo", WdfDeviceIoBuffered);
    WDFQUEUE q0 = rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFQUEUE man = rx_queue(dev, WdfIoQueueDispatchManual, false, 0);
    WDFQUEUE oq = rx_queue(other, WdfIoQueueDispatchManual, false, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfFwdQ");
    struct io io;
    io_start(&io, t, WdfRequestTypeWrite, 512, 0);
    WDFREQUEST r = R.held[0];
    ck_assert_status(WdfRequestForwardToIoQueue(r, q0), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestForwardToIoQueue(r, oq), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestMarkCancelableEx(r, rx_cancel_routine), STATUS_SUCCESS);
    ck_assert_status(WdfRequestMarkCancelableEx(r, rx_cancel_routine), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestForwardToIoQueue(r, man), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestUnmarkCancelable(r), STATUS_SUCCESS);
    ck_assert_status(WdfRequestUnmarkCancelable(r), STATUS_INVALID_PARAMETER);
    /* a queue that accepts nothing: busy, and the driver keeps it */
    WdfIoQueuePurgeSynchronously(man);
    ck_assert_status(WdfRequestForwardToIoQueue(r, man), STATUS_WDF_BUSY);
    ck_assert_ptr_eq(WdfRequestGetIoQueue(r), q0);
    WdfIoQueueStart(man);
    ck_assert_status(WdfRequestForwardToIoQueue(r, man), STATUS_SUCCESS);
    ck_assert_status(WdfRequestForwardToIoQueue(r, q0), STATUS_INVALID_DEVICE_REQUEST); /* not owned */
    ck_assert_status(WdfRequestRequeue(r), STATUS_INVALID_DEVICE_REQUEST);
    ULONG qn, dn;
    WdfIoQueueGetState(q0, &qn, &dn);
    ck_assert_uint_eq(dn, 0);
    WdfIoQueueGetState(man, &qn, &dn);
    ck_assert_uint_eq(qn, 1);
    WDFREQUEST r2;
    ck_assert_status(WdfIoQueueRetrieveNextRequest(man, &r2), STATUS_SUCCESS);
    ck_assert_ptr_eq(r2, r);
    ck_assert_ptr_eq(WdfRequestGetIoQueue(r), man);
    rx_complete(rx_take(0), STATUS_SUCCESS, 7);
    io_expect(&io, STATUS_SUCCESS, 7);
    io_fini(&io);

    /* driver-created requests belong to no queue */
    WDFREQUEST mine = tu_make_request(t);
    ck_assert_status(WdfRequestForwardToIoQueue(mine, man), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestRequeue(mine), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_ptr_null(WdfRequestGetIoQueue(mine));
    ck_assert(!WdfRequestIsReserved(mine));
    WdfObjectDelete(mine);
    tu_env_fini(&e);
}
END_TEST

/* ---- cancelable requests held by the driver ---- */

START_TEST(cancelable)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfCanc", WdfDeviceIoBuffered);
    rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfCanc");
    struct io io;

    /* marked: the sender's cancel calls the routine, which completes */
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    WDFREQUEST r = R.held[0];
    ck_assert(!WdfRequestIsCanceled(r));
    ck_assert_status(WdfRequestMarkCancelableEx(r, rx_cancel_routine), STATUS_SUCCESS);
    ck_assert(WdfRequestCancelSentRequest(io.req));
    io_expect(&io, STATUS_CANCELLED, 0);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
    ck_assert(R.cancel_is_canceled);
    ck_assert_int_eq(rx_nheld(), 0);
    io_fini(&io);

    /* unmarked: the cancel only sets the flag; the driver decides */
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    r = R.held[0];
    ck_assert_status(WdfRequestMarkCancelableEx(r, rx_cancel_routine), STATUS_SUCCESS);
    ck_assert_status(WdfRequestUnmarkCancelable(r), STATUS_SUCCESS);
    ck_assert(WdfRequestCancelSentRequest(io.req));
    ck_assert(WdfRequestIsCanceled(r));
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
    ck_assert(!io_done(&io));
    /* already cancelled: Ex refuses, the plain form calls the routine now */
    ck_assert_status(WdfRequestMarkCancelableEx(r, rx_cancel_routine), STATUS_CANCELLED);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
    ck_assert(!io_done(&io));
    WdfRequestMarkCancelable(r, rx_cancel_routine);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 2);
    io_expect(&io, STATUS_CANCELLED, 0);
    io_fini(&io);

    /* cancelled, not marked: the driver completes it as it likes */
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    ck_assert(WdfRequestCancelSentRequest(io.req));
    rx_complete(rx_take(0), STATUS_SUCCESS, 512);
    io_expect(&io, STATUS_SUCCESS, 512);
    io_fini(&io);

    /* Unmark on a request never marked */
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    r = R.held[0];
    ck_assert_status(WdfRequestUnmarkCancelable(r), STATUS_INVALID_PARAMETER);
    rx_complete(rx_take(0), STATUS_SUCCESS, 1);
    io_expect(&io, STATUS_SUCCESS, 1);
    io_fini(&io);
    tu_env_fini(&e);
}
END_TEST

/* A sender's timeout cancels the request the receiver holds cancelable;
 * the cancel routine completes it STATUS_CANCELLED and the sender sees
 * STATUS_IO_TIMEOUT. */
START_TEST(cancelable_timeout)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfTmo", WdfDeviceIoBuffered);
    rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfTmo");
    struct io io;
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(50));
    io_prepare(&io, t, WdfRequestTypeRead, 512, 0);
    double t0 = tu_now_ms();
    io_send_opts(&io, t, &o);
    ck_assert_status(WdfRequestMarkCancelableEx(R.held[0], rx_cancel_routine), STATUS_SUCCESS);
    io_expect(&io, STATUS_IO_TIMEOUT, 0);
    ck_assert_double_ge(tu_now_ms() - t0, 40);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
    ck_assert(R.cancel_is_canceled);
    io_fini(&io);
    tu_env_fini(&e);
}
END_TEST

/* ---- a RAM disk: a device that serves reads and writes itself ---- */

#define RAM_SIZE (256 * 1024)
static unsigned char ram_disk[RAM_SIZE];

static bool ram_range(WDFREQUEST req, LONGLONG *off, size_t *len)
{
    WDF_REQUEST_PARAMETERS p;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(req, &p);
    *off = p.Parameters.Read.DeviceOffset;
    *len = p.Parameters.Read.Length;
    return *off >= 0 && (unsigned long long)*off + *len <= RAM_SIZE;
}

static VOID ram_read(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    (void)q;
    LONGLONG off;
    WDFMEMORY m;
    if (!ram_range(req, &off, &len)) {
        WdfRequestComplete(req, STATUS_INVALID_PARAMETER);
        return;
    }
    NTSTATUS st = WdfRequestRetrieveOutputMemory(req, &m);
    if (NT_SUCCESS(st))
        st = WdfMemoryCopyFromBuffer(m, 0, ram_disk + off, len);
    WdfRequestCompleteWithInformation(req, st, NT_SUCCESS(st) ? len : 0);
}

static VOID ram_write(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    (void)q;
    LONGLONG off;
    WDFMEMORY m;
    if (!ram_range(req, &off, &len)) {
        WdfRequestComplete(req, STATUS_INVALID_PARAMETER);
        return;
    }
    NTSTATUS st = WdfRequestRetrieveInputMemory(req, &m);
    if (NT_SUCCESS(st))
        st = WdfMemoryCopyToBuffer(m, 0, ram_disk + off, len);
    WdfRequestCompleteWithInformation(req, st, NT_SUCCESS(st) ? len : 0);
}

static WDFDEVICE make_ram_disk(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io)
{
    WDFDEVICE dev = make_named_device(driver, name, io);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoRead = ram_read;
    c.EvtIoWrite = ram_write;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
    return dev;
}

/* app -> filter -> filter -> RAM disk (completes everything itself). */
START_TEST(stack_to_ram_disk)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    memset(ram_disk, 0, sizeof(ram_disk));
    make_ram_disk(e.driver, "\\Device\\uwdfRam", WdfDeviceIoDirect);
    stack_roundtrip(&e, _i, "\\Device\\uwdfRam", 0);
    /* what went down landed in the RAM disk */
    for (int i = 0; i < 16; i++)
        ck_assert(tu_pattern_matches(ram_disk + i * BLOCK, BLOCK, 77 + (unsigned)_i, (uint64_t)i * BLOCK));
    /* beyond its end: the RAM disk's own status comes back up */
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfTop");
    struct io io;
    io_start(&io, t, WdfRequestTypeRead, BLOCK, RAM_SIZE);
    io_expect(&io, STATUS_INVALID_PARAMETER, 0);
    io_fini(&io);
    tu_env_fini(&e);
}
END_TEST

/* Many requests at once from several threads, through a buffered filter
 * to a buffered RAM disk. */
START_TEST(ram_disk_concurrent)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    memset(ram_disk, 0, sizeof(ram_disk));
    make_ram_disk(e.driver, "\\Device\\uwdfRam2", WdfDeviceIoBuffered);
    WDFDEVICE f = tu_make_forwarder(e.driver, "\\Device\\uwdfRamF", WdfDeviceIoBuffered, "\\Device\\uwdfRam2", 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfRamF");
    enum { N = 32 };
    static struct io io[N];
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < N; i++) {
            io_prepare(&io[i], t, phase ? WdfRequestTypeRead : WdfRequestTypeWrite, BLOCK, (LONGLONG)i * BLOCK);
            if (phase == 0)
                tu_fill_pattern(io[i].buf, BLOCK, 31, (uint64_t)i * BLOCK);
            else
                memset(io[i].buf, 0, BLOCK);
        }
        pthread_t th[4];
        struct sender_arg a[4];
        for (int k = 0; k < 4; k++) {
            a[k] = (struct sender_arg){ t, &io[k * (N / 4)], N / 4 };
            ck_assert_int_eq(pthread_create(&th[k], NULL, sender_thread, &a[k]), 0);
        }
        for (int k = 0; k < 4; k++)
            pthread_join(th[k], NULL);
        ck_assert_int_eq(tu_load(&R.n_state_cb), 0);
        for (int i = 0; i < N; i++) {
            io_expect(&io[i], STATUS_SUCCESS, BLOCK);
            ck_assert(tu_pattern_matches(phase ? io[i].buf : ram_disk + i * BLOCK, BLOCK, 31, (uint64_t)i * BLOCK));
            io_fini(&io[i]);
        }
    }
    ck_assert_uint_eq(fwd_seen(f), 2 * N);
    tu_env_fini(&e);
}
END_TEST

/* ---- send and forget ---- */

static atomic_int saf_errors_checked;

static VOID saf_default(WDFQUEUE Queue, WDFREQUEST Request)
{
    TU_FORWARDER *f = tu_forwarder_of(WdfIoQueueGetDevice(Queue));
    atomic_fetch_add(&f->seen, 1);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET);
    if (atomic_fetch_add(&saf_errors_checked, 1) == 0) {
        /* a request the driver created cannot be sent and forgotten */
        WDFREQUEST mine;
        ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, f->lower, &mine), STATUS_SUCCESS);
        ck_assert(!WdfRequestSend(mine, f->lower, &o));
        ck_assert_status(WdfRequestGetStatus(mine), STATUS_INVALID_DEVICE_STATE);
        WdfObjectDelete(mine);
        /* nor a formatted one; the driver still owns it and completes it */
        WdfRequestFormatRequestUsingCurrentType(Request);
        ck_assert(!WdfRequestSend(Request, f->lower, &o));
        WdfRequestComplete(Request, STATUS_INVALID_DEVICE_REQUEST);
        return;
    }
    ck_assert(WdfRequestSend(Request, f->lower, &o));
}

static void send_and_forget_to(struct tu_env *e, const char *lower, const char *file)
{
    atomic_store(&saf_errors_checked, 0);
    WDFDEVICE f = make_named_device(e->driver, "\\Device\\uwdfSaf", WdfDeviceIoDirect);
    WDF_IO_QUEUE_CONFIG c;
    WDFQUEUE q;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchSequential);
    c.EvtIoDefault = saf_default;
    ck_assert_status(WdfIoQueueCreate(f, &c, NULL, &q), STATUS_SUCCESS);
    tu_open_by_name(tu_forwarder_of(f)->lower, lower, 0);
    WDFIOTARGET t = app_target(e, "\\Device\\uwdfSaf");
    struct io io;
    io_start(&io, t, WdfRequestTypeWrite, BLOCK, 0);
    io_expect(&io, STATUS_INVALID_DEVICE_REQUEST, 0);
    io_fini(&io);
    /* forgotten: the sequential queue presents the next at once */
    struct io w[4];
    for (int i = 0; i < 4; i++) {
        io_prepare(&w[i], t, WdfRequestTypeWrite, BLOCK, (LONGLONG)i * BLOCK);
        tu_fill_pattern(w[i].buf, BLOCK, 50, (uint64_t)i * BLOCK);
        io_send_opts(&w[i], t, WDF_NO_SEND_OPTIONS);
    }
    for (int i = 0; i < 4; i++) {
        io_expect(&w[i], STATUS_SUCCESS, BLOCK);
        io_fini(&w[i]);
    }
    for (int i = 0; i < 4; i++) {
        io_prepare(&w[i], t, WdfRequestTypeRead, BLOCK, (LONGLONG)i * BLOCK);
        io_send_opts(&w[i], t, WDF_NO_SEND_OPTIONS);
    }
    for (int i = 0; i < 4; i++) {
        io_expect(&w[i], STATUS_SUCCESS, BLOCK);
        ck_assert(tu_pattern_matches(w[i].buf, BLOCK, 50, (uint64_t)i * BLOCK));
        io_fini(&w[i]);
    }
    if (file) {
        /* an IOCTL sent on as it came: the file answers from the IRP's buffers */
        GET_LENGTH_INFORMATION li = { 0 };
        WDF_MEMORY_DESCRIPTOR out;
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out, &li, sizeof(li));
        ULONG_PTR got = 0;
        ck_assert_status(WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_DISK_GET_LENGTH_INFO, NULL, &out, NULL, &got),
                         STATUS_SUCCESS);
        ck_assert_uint_eq(got, sizeof(li));
        ck_assert_int_eq(li.Length.QuadPart, 1 << 20);
    }
    ck_assert_uint_eq(fwd_seen(f), file ? 10 : 9);
    ck_assert(WDF_IO_QUEUE_IDLE(WdfIoQueueGetState(q, NULL, NULL)));
    if (file) {
        /* checked from outside the framework */
        FILE *fp = fopen(file, "rb");
        ck_assert_ptr_nonnull(fp);
        static char b[BLOCK];
        for (int i = 0; i < 4; i++) {
            ck_assert_uint_eq(fread(b, 1, BLOCK, fp), BLOCK);
            ck_assert(tu_pattern_matches(b, BLOCK, 50, (uint64_t)i * BLOCK));
        }
        fclose(fp);
    }
}

START_TEST(send_and_forget_to_file)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *file = tu_env_file(&e, "saf.img", 1 << 20, 0);
    send_and_forget_to(&e, file, file);
    free(file);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_and_forget_to_device)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    memset(ram_disk, 0, sizeof(ram_disk));
    make_ram_disk(e.driver, "\\Device\\uwdfSafRam", WdfDeviceIoBuffered);
    send_and_forget_to(&e, "\\Device\\uwdfSafRam", NULL);
    for (int i = 0; i < 4; i++)
        ck_assert(tu_pattern_matches(ram_disk + i * BLOCK, BLOCK, 50, (uint64_t)i * BLOCK));
    tu_env_fini(&e);
}
END_TEST

/* ---- WdfDeviceInitSetRequestAttributes ---- */

typedef struct {
    ULONG magic;
    ULONG uses;
} RQ_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(RQ_CTX, rq_get);

static atomic_int rq_cleanups, rq_fresh;

static VOID rq_cleanup(WDFOBJECT o)
{
    RQ_CTX *c = rq_get(o);
    if (c && c->magic == 0xC0FFEE)
        atomic_fetch_add(&rq_cleanups, 1);
}

static VOID rq_default(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    RQ_CTX *c = rq_get(req);
    if (c && c->magic == 0 && c->uses == 0)
        atomic_fetch_add(&rq_fresh, 1);
    if (c) {
        c->magic = 0xC0FFEE;
        c->uses++;
    }
    WdfRequestCompleteWithInformation(req, STATUS_SUCCESS, 1);
}

/* A device named name with request_attrs (or none) whose parallel default
 * queue hands every request to fn; the application's target on it. */
static WDFIOTARGET rq_device(struct tu_env *e, const char *name, PWDF_OBJECT_ATTRIBUTES request_attrs,
                             PFN_WDF_IO_QUEUE_IO_DEFAULT fn)
{
    WDFDEVICE dev;
    ck_assert_status(tu_device_create(e->driver, name, WdfDeviceIoBuffered, WDF_NO_OBJECT_ATTRIBUTES, request_attrs,
                                      &dev),
                     STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDefault = fn;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
    return app_target(e, name);
}

/* Request attributes with an RQ_CTX context and rq_cleanup, the counts
 * the tests read cleared. */
static void rq_attributes_init(PWDF_OBJECT_ATTRIBUTES ra)
{
    atomic_store(&rq_cleanups, 0);
    atomic_store(&rq_fresh, 0);
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(ra, RQ_CTX);
    ra->EvtCleanupCallback = rq_cleanup;
}

START_TEST(request_attributes)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    WDF_OBJECT_ATTRIBUTES ra;
    rq_attributes_init(&ra);
    WDFIOTARGET t = rq_device(&e, "\\Device\\uwdfRqAttr", &ra, rq_default);
    for (int i = 0; i < 10; i++) {
        struct io io;
        io_start(&io, t, i % 2 ? WdfRequestTypeRead : WdfRequestTypeWrite, 512, 0);
        io_expect(&io, STATUS_SUCCESS, 1);
        io_fini(&io);
    }
    /* a fresh context on every request, its cleanup at completion */
    ck_assert_int_eq(tu_load(&rq_fresh), 10);
    ck_assert_int_eq(tu_load(&rq_cleanups), 10);
    tu_env_fini(&e);
}
END_TEST

/* ---- a presented request's memory, reused ---- */

static WDFREQUEST rc_seen[2];
static atomic_int rc_n, rc_destroys;

static VOID rc_destroy(WDFOBJECT o)
{
    (void)o;
    atomic_fetch_add(&rc_destroys, 1);
}

static VOID rc_default(WDFQUEUE q, WDFREQUEST req)
{
    int n = atomic_fetch_add(&rc_n, 1);
    if (n < 2)
        rc_seen[n] = req;
    rq_default(q, req);
}

static ULONGLONG rc_count(bool live)
{
    UWDF_OBJECT_COUNT c;
    ck_assert_status(UwdfQueryObjectCount("WDFREQUEST", &c), STATUS_SUCCESS);
    return live ? c.Live : c.Created;
}

/* Two requests, one after the other from this thread, to a device that
 * completes each at once: the second one the queue presents lives in the
 * memory of the first (the same handle slot, a new generation), with a
 * fresh context; the first one's handle stays dead; the first one is
 * counted as gone and the second as made; the callbacks ran once each.
 * With and without request attributes (a context, or none). */
START_TEST(presented_request_memory_comes_back_with_a_new_handle)
{
    for (int attrs = 0; attrs < 2; attrs++) {
        struct tu_env e;
        tu_env_init_backend(&e, _i);
        atomic_store(&rc_n, 0);
        atomic_store(&rc_destroys, 0);
        WDF_OBJECT_ATTRIBUTES ra;
        rq_attributes_init(&ra);
        ra.EvtDestroyCallback = rc_destroy;
        WDFIOTARGET t = rq_device(&e, "\\Device\\uwdfRecycle", attrs ? &ra : NULL, rc_default);
        struct io io[2];
        ULONGLONG live0 = rc_count(true), made0 = rc_count(false);
        for (int i = 0; i < 2; i++) {
            io_start(&io[i], t, WdfRequestTypeRead, 512, 0);
            io_expect(&io[i], STATUS_SUCCESS, 1);
        }
        ck_assert_int_eq(tu_load(&rc_n), 2);
        uintptr_t mask = ((uintptr_t)1 << 24) - 1; /* a handle's slot index (lib/object.h) */
        ck_assert_ptr_ne(rc_seen[0], rc_seen[1]);
        ck_assert_uint_eq((uintptr_t)rc_seen[0] & mask, (uintptr_t)rc_seen[1] & mask);
        ck_assert_uint_ne(WdfRequestGetStatus(rc_seen[0]), STATUS_SUCCESS);
        tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "InvalidReqAccess");
        WdfObjectReference(rc_seen[1]);
        tu_expect_bugcheck_reason(WDF_INVALID_HANDLE, "not a live");
        /* Both gone (the memory parked is not a live object), both made,
         * beside the application's own two. */
        ck_assert_uint_eq(rc_count(true), live0 + 2);
        ck_assert_uint_eq(rc_count(false), made0 + 4);
        if (attrs) {
            ck_assert_int_eq(tu_load(&rq_fresh), 2);
            ck_assert_int_eq(tu_load(&rq_cleanups), 2);
            ck_assert_int_eq(tu_load(&rc_destroys), 2);
        }
        for (int i = 0; i < 2; i++)
            io_fini(&io[i]);
        ck_assert_uint_eq(rc_count(true), live0);
        tu_env_fini(&e);
    }
}
END_TEST

static WDFREQUEST rk_last;
static bool rk_hold;

static VOID rk_default(WDFQUEUE q, WDFREQUEST req)
{
    rk_last = req;
    if (!rk_hold)
        rq_default(q, req);
}

/* One thread alternating between a device without request attributes and
 * one with a context: each kind of presented request comes back in the
 * memory of the last one of its own kind (its handle slot), never in the
 * other kind's, whose size differs, and the context is fresh each time.
 * (The recycling cache keeps the class it used last per type: a lookup
 * that did not compare the size, or a park into the wrong class, fails
 * here.) */
START_TEST(presented_requests_of_two_sizes_each_come_back_in_their_own_memory)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    WDF_OBJECT_ATTRIBUTES ra;
    rq_attributes_init(&ra);
    WDFIOTARGET t[2] = { rq_device(&e, "\\Device\\uwdfRkPlain", NULL, rk_default),
                         rq_device(&e, "\\Device\\uwdfRkCtx", &ra, rk_default) };
    uintptr_t mask = ((uintptr_t)1 << 24) - 1; /* a handle's slot index (lib/object.h) */
    uintptr_t slot[2] = { 0, 0 };
    for (int i = 0; i < 8; i++) {
        int k = i & 1;
        struct io io;
        rk_last = NULL;
        io_start(&io, t[k], WdfRequestTypeRead, 512, 0);
        io_expect(&io, STATUS_SUCCESS, 1);
        io_fini(&io);
        ck_assert_ptr_nonnull(rk_last);
        uintptr_t s = (uintptr_t)rk_last & mask;
        if (i >= 2)
            ck_assert_uint_eq(s, slot[k]);
        slot[k] = s;
    }
    ck_assert_uint_ne(slot[0], slot[1]);
    ck_assert_int_eq(tu_load(&rq_fresh), 4);
    ck_assert_int_eq(tu_load(&rq_cleanups), 4);
    /* A plain one completed after a request with a context came and went:
     * its memory goes back with the plain ones, not to the class used
     * last, so the next request with a context is in its own memory. */
    struct io held, io;
    rk_hold = true;
    io_start(&held, t[0], WdfRequestTypeRead, 512, 0);
    rk_hold = false;
    WDFREQUEST plain = rk_last;
    ck_assert_uint_eq((uintptr_t)plain & mask, slot[0]);
    io_start(&io, t[1], WdfRequestTypeRead, 512, 0);
    io_expect(&io, STATUS_SUCCESS, 1);
    io_fini(&io);
    ck_assert_uint_eq((uintptr_t)rk_last & mask, slot[1]);
    WdfRequestCompleteWithInformation(plain, STATUS_SUCCESS, 1);
    io_expect(&held, STATUS_SUCCESS, 1);
    io_fini(&held);
    for (int k = 1; k >= 0; k--) {
        io_start(&io, t[k], WdfRequestTypeRead, 512, 0);
        io_expect(&io, STATUS_SUCCESS, 1);
        io_fini(&io);
        ck_assert_uint_eq((uintptr_t)rk_last & mask, slot[k]);
    }
    ck_assert_int_eq(tu_load(&rq_fresh), 6);
    tu_env_fini(&e);
}
END_TEST

/* ---- a request whose IRP was cancelled on its way ---- */

static atomic_int cx_presented;

static VOID cx_read(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    (void)q;
    (void)len;
    atomic_fetch_add(&cx_presented, 1);
    WdfRequestComplete(req, STATUS_SUCCESS);
}

/* The sender cancels while the filter above holds the request; the filter
 * then forwards it to a device whose queue is empty and would take it at
 * once: the queue does not present it, it completes it cancelled (WDF's
 * cancel of a request that arrives cancelled), and the sender sees that. */
START_TEST(a_request_cancelled_on_its_way_is_not_presented_below)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    atomic_store(&cx_presented, 0);
    tu_named_device(e.driver, "\\Device\\uwdfCxBelow", WdfDeviceIoBuffered, NULL, WdfIoQueueDispatchParallel,
                    cx_read, NULL);
    WDFDEVICE above = make_named_device(e.driver, "\\Device\\uwdfCxAbove", WdfDeviceIoBuffered);
    rx_queue(above, WdfIoQueueDispatchParallel, true, 0);
    tu_open_by_name(tu_forwarder_of(above)->lower, "\\Device\\uwdfCxBelow", 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfCxAbove");
    struct io io;
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    WDFREQUEST r = rx_take(0);
    WdfRequestCancelSentRequest(io.req);
    ck_assert(WdfRequestIsCanceled(r));
    atomic_fetch_sub(&R.owned, 1);
    tu_forward(r, tu_forwarder_of(above)->lower, NULL);
    io_expect(&io, STATUS_CANCELLED, 0);
    ck_assert_int_eq(tu_load(&cx_presented), 0);
    /* A request that is not cancelled goes through the same way. */
    struct io io2;
    io_start(&io2, t, WdfRequestTypeRead, 512, 0);
    r = rx_take(0);
    atomic_fetch_sub(&R.owned, 1);
    tu_forward(r, tu_forwarder_of(above)->lower, NULL);
    io_expect(&io2, STATUS_SUCCESS, 0);
    ck_assert_int_eq(tu_load(&cx_presented), 1);
    io_fini(&io);
    io_fini(&io2);
    tu_env_fini(&e);
}
END_TEST

/* ---- misuse, deletion and closing with requests in the driver ---- */

START_TEST(completion_misuse)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfMisuse", WdfDeviceIoBuffered);
    rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfMisuse");
    struct io io;
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    WDFREQUEST r = rx_take(0);
    WdfObjectReference(r);
    rx_complete(r, STATUS_SUCCESS, 3);
    io_expect(&io, STATUS_SUCCESS, 3);
    /* a second completion is a bug check and changes nothing */
    WdfRequestComplete(r, STATUS_UNSUCCESSFUL);
    tu_expect_bugcheck_reason(WDF_REQUEST_FATAL_ERROR, "already completed");
    ck_assert_int_eq(tu_ncalls(&io.c), 1);
    ck_assert_status(io.c.status, STATUS_SUCCESS);
    ck_assert_ptr_null(WdfRequestGetIoQueue(r));
    WdfObjectDereference(r);
    io_fini(&io);
    /* a request the driver created is deleted, not completed */
    WDFREQUEST mine = tu_make_request(t);
    UwdfSetVerifier(TRUE);
    WdfRequestComplete(mine, STATUS_SUCCESS);
    tu_expect_bugcheck_reason(WDF_REQUEST_FATAL_ERROR, "ReqDelete");
    UwdfSetVerifier(FALSE);
    WdfObjectDelete(mine);
    tu_env_fini(&e);
}
END_TEST

/* Deleting a queue: waiting requests are cancelled, owned cancelable ones
 * cancelled, the rest get EvtIoStop(Purge); the delete returns when all
 * are back. Later packets find no queue. */
START_TEST(queue_delete_with_requests)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfQdel", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchParallel, true, 2);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfQdel");
    struct io io[4];
    for (int i = 0; i < 4; i++)
        io_start(&io[i], t, WdfRequestTypeRead, 512, 0);
    ck_assert_status(WdfRequestMarkCancelableEx(R.held[0], rx_cancel_routine), STATUS_SUCCESS);
    R.stop_action = 3;
    WdfObjectDelete(q);
    for (int i = 0; i < 4; i++)
        io_expect(&io[i], STATUS_CANCELLED, 0);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
    ck_assert_int_eq(tu_load(&R.n_stop), 1);
    ck_assert_int_eq(rx_nheld(), 0);
    ck_assert_ptr_null(WdfDeviceGetDefaultQueue(dev));
    io_fini(&io[0]);
    io_start(&io[0], t, WdfRequestTypeRead, 512, 0);
    io_expect(&io[0], STATUS_INVALID_DEVICE_REQUEST, 0);
    for (int i = 0; i < 4; i++)
        io_fini(&io[i]);
    tu_env_fini(&e);
}
END_TEST

/* ---- a queue deleted while packets arrive ---- */

static atomic_int qd_by_read, qd_by_default;
static atomic_bool qd_stop;

static VOID qd_read(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    (void)q;
    (void)len;
    atomic_fetch_add(&qd_by_read, 1);
    WdfRequestCompleteWithInformation(req, STATUS_SUCCESS, 0);
}

static VOID qd_default(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    atomic_fetch_add(&qd_by_default, 1);
    WdfRequestCompleteWithInformation(req, STATUS_SUCCESS, 0);
}

/* Packets look up their device's queue table with no lock while a read
 * queue is created, made the reads' queue and deleted, over and over:
 * every read completes, by the read queue, by the default queue once the
 * read queue is gone, or refused by a read queue being deleted; none is
 * lost or completed twice, and nothing touches a deleted queue (ASan and
 * valgrind run this too). */
START_TEST(queue_deleted_while_packets_arrive)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    atomic_store(&qd_by_read, 0);
    atomic_store(&qd_by_default, 0);
    atomic_store(&qd_stop, false);
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfQrace", WdfDeviceIoBuffered);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDefault = qd_default;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
    struct tu_read_loop snd[2] = { { .t = app_target(&e, "\\Device\\uwdfQrace"), .len = 512, .stop = &qd_stop },
                                   { .t = app_target(&e, "\\Device\\uwdfQrace"), .len = 512, .stop = &qd_stop } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, tu_read_loop, &snd[i]), 0);
    int rounds_read = 0;
    for (int round = 0; round < 200; round++) {
        WDFQUEUE q;
        WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchParallel);
        c.EvtIoRead = qd_read;
        ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_SUCCESS);
        ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q, WdfRequestTypeRead), STATUS_SUCCESS);
        /* Until a read has gone through it (bounded: a loaded machine may
         * not run the senders meanwhile). */
        int before = tu_load(&qd_by_read);
        for (int spin = 0; spin < 2000 && tu_load(&qd_by_read) == before; spin++)
            sched_yield();
        rounds_read += tu_load(&qd_by_read) != before;
        WdfObjectDelete(q);
    }
    atomic_store(&qd_stop, true);
    int ok = 0, refused = 0, other = 0;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ok += snd[i].ok;
        refused += snd[i].refused;
        other += snd[i].other;
    }
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(ok, tu_load(&qd_by_read) + tu_load(&qd_by_default));
    ck_assert_int_gt(rounds_read, 0);
    tu_env_fini(&e);
}
END_TEST

static VOID cancelable_default(WDFQUEUE q, WDFREQUEST req)
{
    rx_default(q, req);
    if (WdfRequestMarkCancelableEx(req, rx_cancel_routine) == STATUS_CANCELLED) {
        rx_unhold(req);
        rx_complete(req, STATUS_CANCELLED, 0);
    }
}

/* Closing the sender's target cancels what it sent (the close waits for
 * it): the receiving driver's cancel routine completes what it holds; what
 * still waits on the queue is cancelled there, or, presented meanwhile
 * (the first one's completion lets the sequential queue present the next),
 * is cancelled in the driver. */
START_TEST(sender_close_cancels)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfClose", WdfDeviceIoBuffered);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchSequential);
    c.EvtIoDefault = cancelable_default;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfClose");
    struct io io[2];
    io_start(&io[0], t, WdfRequestTypeRead, 512, 0);
    io_start(&io[1], t, WdfRequestTypeRead, 512, 0); /* waits on the queue */
    ck_assert_int_eq(tu_load(&R.presented), 1);
    WdfIoTargetClose(t);
    ck_assert(io_done(&io[0]) && io_done(&io[1])); /* the close waited */
    io_expect(&io[0], STATUS_CANCELLED, 0);
    io_expect(&io[1], STATUS_CANCELLED, 0);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), tu_load(&R.presented));
    ck_assert_int_eq(rx_nheld(), 0);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    for (int i = 0; i < 2; i++)
        io_fini(&io[i]);
    tu_env_fini(&e);
}
END_TEST

static VOID cancelable_read(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    rx_read(q, req, len);
    ck_assert_status(WdfRequestMarkCancelableEx(req, rx_cancel_routine), STATUS_SUCCESS);
}

/* A synchronous send with a timeout to a driver that holds the request
 * cancelable. */
START_TEST(sync_send_timeout)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfSyncTmo", WdfDeviceIoDirect);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoRead = cancelable_read;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfSyncTmo");
    WDF_MEMORY_DESCRIPTOR d;
    static char buf[512];
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, sizeof(buf));
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(30));
    ULONG_PTR n = 99;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, NULL, &o, &n), STATUS_IO_TIMEOUT);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), 1);
    ck_assert_int_eq(rx_nheld(), 0);
    tu_env_fini(&e);
}
END_TEST

/* A passive-level queue: a sender at DISPATCH_LEVEL (a completion routine)
 * gets its request presented at PASSIVE_LEVEL on another thread. */
static atomic_int passive_irql_ok, passive_calls;

static VOID passive_default(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    atomic_fetch_add(&passive_calls, 1);
    if (KeGetCurrentIrql() == PASSIVE_LEVEL)
        atomic_fetch_add(&passive_irql_ok, 1);
    WdfRequestCompleteWithInformation(req, STATUS_SUCCESS, 42);
}

struct chain {
    WDFIOTARGET dev_target;
    struct io *next;
    KIRQL irql;
};

static VOID send_from_completion(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                                 WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    (void)Params;
    struct chain *ch = Context;
    ch->irql = KeGetCurrentIrql();
    if (!WdfRequestSend(ch->next->req, ch->dev_target, WDF_NO_SEND_OPTIONS))
        atomic_fetch_add(&passive_calls, 1000);
}

START_TEST(passive_queue_from_dispatch)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    atomic_store(&passive_irql_ok, 0);
    atomic_store(&passive_calls, 0);
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfPassive", WdfDeviceIoBuffered);
    WDF_IO_QUEUE_CONFIG c;
    WDF_OBJECT_ATTRIBUTES qa;
    WDF_OBJECT_ATTRIBUTES_INIT(&qa);
    qa.ExecutionLevel = WdfExecutionLevelPassive;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchSequential);
    c.EvtIoDefault = passive_default;
    ck_assert_status(WdfIoQueueCreate(dev, &c, &qa, NULL), STATUS_SUCCESS);
    WDFIOTARGET dt = app_target(&e, "\\Device\\uwdfPassive");
    char *file = tu_env_file(&e, "passive.img", 1 << 16, 4);
    WDFIOTARGET ft;
    ck_assert_status(tu_target_open(e.device, file, GENERIC_READ, FILE_OPEN, 0, &ft), STATUS_SUCCESS);
    struct io first, second;
    io_prepare(&first, ft, WdfRequestTypeRead, 512, 0);
    io_prepare(&second, dt, WdfRequestTypeRead, 512, 0);
    static struct chain ch;
    ch = (struct chain){ dt, &second, 0 };
    WdfRequestSetCompletionRoutine(first.req, send_from_completion, &ch);
    ck_assert(WdfRequestSend(first.req, ft, WDF_NO_SEND_OPTIONS));
    io_expect(&second, STATUS_SUCCESS, 42);
    ck_assert_int_eq(ch.irql, DISPATCH_LEVEL);
    ck_assert_int_eq(tu_load(&passive_calls), 1);
    ck_assert_int_eq(tu_load(&passive_irql_ok), 1);
    /* from a PASSIVE sender it runs in the sender's thread */
    struct io third;
    io_start(&third, dt, WdfRequestTypeRead, 512, 0);
    io_expect(&third, STATUS_SUCCESS, 42);
    ck_assert_int_eq(tu_load(&passive_irql_ok), 2);
    io_fini(&first);
    io_fini(&second);
    io_fini(&third);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* ---- races and depth ---- */

struct canceller {
    WDFREQUEST req;
    KEVENT go;
};

static void *cancel_thread(void *p)
{
    struct canceller *c = p;
    KeWaitForSingleObject(&c->go, Executive, KernelMode, FALSE, NULL);
    WdfRequestCancelSentRequest(c->req);
    return NULL;
}

/* A cancel routine that takes its time before it looks at the driver's
 * list: the driver's Unmark meanwhile must say STATUS_CANCELLED. */
static VOID slow_cancel_routine(WDFREQUEST req)
{
    tu_sleep_ms(3);
    rx_cancel_routine(req);
}

/* The sender cancels while the driver unmarks and completes: each request
 * completes exactly once, by one side or the other. */
START_TEST(unmark_cancel_race)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfRace", WdfDeviceIoBuffered);
    rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfRace");
    int by_driver = 0, by_cancel = 0;
    for (int i = 0; i < 300; i++) {
        struct io io;
        io_start(&io, t, WdfRequestTypeRead, 512, 0);
        WDFREQUEST r = R.held[0];
        ck_assert_status(WdfRequestMarkCancelableEx(r, i % 2 ? slow_cancel_routine : rx_cancel_routine),
                         STATUS_SUCCESS);
        struct canceller c;
        c.req = io.req;
        KeInitializeEvent(&c.go, NotificationEvent, FALSE);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, cancel_thread, &c), 0);
        KeSetEvent(&c.go, IO_NO_INCREMENT, FALSE);
        if (i % 4 == 1)
            tu_sleep_ms(1); /* let the cancel win, its routine still asleep */
        /* As a driver must: its lock, shared with the cancel routine, says
         * whether the request is still its own to unmark. */
        NTSTATUS st = STATUS_CANCELLED;
        pthread_mutex_lock(&R.lock);
        if (R.nheld == 1 && R.held[0] == r) {
            R.nheld = 0;
            st = WdfRequestUnmarkCancelable(r);
        }
        pthread_mutex_unlock(&R.lock);
        if (st == STATUS_SUCCESS)
            rx_complete(r, STATUS_SUCCESS, 1);
        else
            ck_assert_status(st, STATUS_CANCELLED); /* the cancel routine completes it */
        pthread_join(th, NULL);
        ck_assert(tu_completion_wait(&io.c, 5000));
        ck_assert_int_eq(tu_ncalls(&io.c), 1);
        if (io.c.status == STATUS_SUCCESS)
            by_driver++;
        else if (io.c.status == STATUS_CANCELLED)
            by_cancel++;
        else
            ck_abort_msg("io.c.status == " TU_STATUS_FMT, TU_STATUS_ARG(io.c.status));
        ck_assert_int_eq(rx_nheld(), 0);
        io_fini(&io);
    }
    ck_assert_int_eq(by_driver + by_cancel, 300);
    ck_assert_int_eq(tu_load(&R.n_cancel_routine), by_cancel);
    tu_env_fini(&e);
}
END_TEST

/* A sender's timeout on a request still waiting on the queue. */
START_TEST(timeout_on_queue)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfTmoQ", WdfDeviceIoBuffered);
    WDFQUEUE q = rx_queue(dev, WdfIoQueueDispatchSequential, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfTmoQ");
    struct io a, b;
    io_start(&a, t, WdfRequestTypeRead, 512, 0);
    io_prepare(&b, t, WdfRequestTypeRead, 512, 0);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(30));
    io_send_opts(&b, t, &o);
    io_expect(&b, STATUS_IO_TIMEOUT, 0);
    ULONG qn, dn;
    WdfIoQueueGetState(q, &qn, &dn);
    ck_assert_uint_eq(qn, 0);
    ck_assert_uint_eq(dn, 1);
    rx_complete(rx_take(0), STATUS_SUCCESS, 1);
    io_expect(&a, STATUS_SUCCESS, 1);
    ck_assert_int_eq(tu_load(&R.presented), 1);
    io_fini(&a);
    io_fini(&b);
    tu_env_fini(&e);
}
END_TEST

/* A sender that resends from its completion routine to a driver that
 * completes inline: thousands of round trips without growing the stack. */
static VOID complete_inline(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    WdfRequestCompleteWithInformation(req, STATUS_SUCCESS, 1);
}

struct chain_state {
    WDFIOTARGET t;
    WDFMEMORY mem;
    int left;
    atomic_int done;
    KEVENT finished;
};

static VOID chain_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                       WDFCONTEXT Context)
{
    struct chain_state *cs = Context;
    (void)Target;
    if (Params->IoStatus.Status == STATUS_SUCCESS)
        atomic_fetch_add(&cs->done, 1);
    if (--cs->left == 0 || Params->IoStatus.Status != STATUS_SUCCESS) {
        KeSetEvent(&cs->finished, IO_NO_INCREMENT, FALSE);
        return;
    }
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    WdfRequestReuse(Request, &rp);
    LONGLONG off = 0;
    WdfIoTargetFormatRequestForRead(cs->t, Request, cs->mem, NULL, &off);
    WdfRequestSetCompletionRoutine(Request, chain_done, cs);
    if (!WdfRequestSend(Request, cs->t, WDF_NO_SEND_OPTIONS))
        KeSetEvent(&cs->finished, IO_NO_INCREMENT, FALSE);
}

START_TEST(resend_chain)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfChain", WdfDeviceIoBuffered);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchSequential);
    c.EvtIoDefault = complete_inline;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, NULL), STATUS_SUCCESS);
    static struct chain_state cs;
    memset(&cs, 0, sizeof(cs));
    cs.t = app_target(&e, "\\Device\\uwdfChain");
    void *buf;
    cs.mem = tu_make_memory(512, &buf);
    cs.left = 20000;
    KeInitializeEvent(&cs.finished, NotificationEvent, FALSE);
    WDFREQUEST r = tu_make_request(cs.t);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(cs.t, r, cs.mem, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(r, chain_done, &cs);
    ck_assert(WdfRequestSend(r, cs.t, WDF_NO_SEND_OPTIONS));
    LARGE_INTEGER to;
    to.QuadPart = WDF_REL_TIMEOUT_IN_SEC(60);
    ck_assert_status(KeWaitForSingleObject(&cs.finished, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    ck_assert_int_eq(tu_load(&cs.done), 20000);
    tu_env_fini(&e);
}
END_TEST

/* A purge while the driver completes its cancelable requests on another
 * thread (each side keeping to the cancel protocol): every request
 * completes exactly once. */
static atomic_int purge_race_stop;

static void *completer_thread(void *p)
{
    (void)p;
    while (!atomic_load(&purge_race_stop)) {
        WDFREQUEST r = NULL;
        NTSTATUS st = STATUS_CANCELLED;
        pthread_mutex_lock(&R.lock);
        if (R.nheld) {
            r = R.held[0];
            memmove(&R.held[0], &R.held[1], sizeof(R.held[0]) * (size_t)(R.nheld - 1));
            R.nheld--;
            st = WdfRequestUnmarkCancelable(r);
        }
        pthread_mutex_unlock(&R.lock);
        if (r && st == STATUS_SUCCESS)
            rx_complete(r, STATUS_SUCCESS, 1);
        else if (!r)
            sched_yield();
    }
    return NULL;
}

static VOID hold_cancelable(WDFQUEUE q, WDFREQUEST req)
{
    /* marked before the completer can see it */
    ck_assert_status(WdfRequestMarkCancelableEx(req, rx_cancel_routine), STATUS_SUCCESS);
    rx_default(q, req);
}

START_TEST(purge_while_completing)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfPurgeRace", WdfDeviceIoBuffered);
    WDF_IO_QUEUE_CONFIG c;
    WDFQUEUE q;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDefault = hold_cancelable;
    ck_assert_status(WdfIoQueueCreate(dev, &c, NULL, &q), STATUS_SUCCESS);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfPurgeRace");
    enum { N = 32 };
    static struct io io[N];
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < N; i++)
            io_start(&io[i], t, WdfRequestTypeRead, 512, 0);
        atomic_store(&purge_race_stop, 0);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, completer_thread, NULL), 0);
        WdfIoQueuePurgeSynchronously(q);
        atomic_store(&purge_race_stop, 1);
        pthread_join(th, NULL);
        for (int i = 0; i < N; i++) {
            ck_assert(tu_completion_wait(&io[i].c, 5000));
            ck_assert_int_eq(tu_ncalls(&io[i].c), 1);
            ck_assert_msg(io[i].c.status == STATUS_SUCCESS || io[i].c.status == STATUS_CANCELLED,
                          "io[%d].c.status == " TU_STATUS_FMT, i, TU_STATUS_ARG(io[i].c.status));
            io_fini(&io[i]);
        }
        ck_assert_int_eq(rx_nheld(), 0);
        WdfIoQueueStart(q);
    }
    tu_env_fini(&e);
}
END_TEST

/* ---- the queue lock, biased to its engine thread ---- */

/* Requests that resend themselves from their completion routines through
 * a forwarder until stop: the forwarder's queue is then entered on the
 * lower target's engine thread alone (presenting, completing). */
struct bias_chain {
    WDFIOTARGET t;
    WDFMEMORY mem;
    atomic_bool stop;
    atomic_long sent, completed, failed;
    atomic_long refused; /* STATUS_INVALID_DEVICE_STATE: a queue being deleted took it */
    atomic_int running;
    KEVENT idle;
};

static VOID bias_chain_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                            WDFCONTEXT Context);

static bool bias_chain_send(struct bias_chain *bc, WDFREQUEST r)
{
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    LONGLONG off = 0;
    if (!NT_SUCCESS(WdfRequestReuse(r, &rp)) ||
        !NT_SUCCESS(WdfIoTargetFormatRequestForRead(bc->t, r, bc->mem, NULL, &off)))
        return false;
    WdfRequestSetCompletionRoutine(r, bias_chain_done, bc);
    atomic_fetch_add(&bc->sent, 1);
    if (WdfRequestSend(r, bc->t, WDF_NO_SEND_OPTIONS))
        return true;
    atomic_fetch_sub(&bc->sent, 1);
    return false;
}

static VOID bias_chain_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                            WDFCONTEXT Context)
{
    struct bias_chain *bc = Context;
    (void)Target;
    atomic_fetch_add(&bc->completed, 1);
    if (Params->IoStatus.Status == STATUS_INVALID_DEVICE_STATE)
        atomic_fetch_add(&bc->refused, 1);
    else if (Params->IoStatus.Status != STATUS_SUCCESS || Params->IoStatus.Information != 512)
        atomic_fetch_add(&bc->failed, 1);
    if ((atomic_load(&bc->stop) || !bias_chain_send(bc, Request)) && atomic_fetch_sub(&bc->running, 1) == 1)
        KeSetEvent(&bc->idle, IO_NO_INCREMENT, FALSE);
}

/* Whether the queue's lock is on its biased fast path (read racily: the
 * test only waits for it). */
static bool queue_lock_biased(struct uwdf_queue *iq)
{
    return !__atomic_load_n(&iq->lock.unbiased, __ATOMIC_RELAXED) &&
           atomic_load_explicit(&iq->lock.revoked, memory_order_relaxed) == 0;
}

/* A forwarder's queue lock goes to the engine thread that presents and
 * completes its requests; state queries and Stop/Start from another
 * thread take it back (and a stop waits on the queue's condition) while
 * the engine thread is inside, round after round: every request completes
 * once, the engine thread stays out while another thread holds the lock,
 * and after each round the lock settles on the engine thread again. */
START_TEST(queue_lock_biased_to_its_engine_thread)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    struct uwdf_biased_lock probe;
    uwdf_biased_lock_init(&probe);
    bool usable = !probe.unbiased; /* membarrier, not under TSan */
    uwdf_biased_lock_destroy(&probe);
    char *file = tu_env_file(&e, "bias.img", 1 << 20, 0);
    WDFDEVICE fwd = tu_make_forwarder(e.driver, "\\Device\\uwdfBias", WdfDeviceIoDirect, file, 0);
    WDFQUEUE q = tu_forwarder_of(fwd)->queue;
    struct uwdf_queue *iq = uwdf_queue_lookup(q, "queue_lock_biased_to_its_engine_thread");
    ck_assert_ptr_nonnull(iq);
    ck_assert(!queue_lock_biased(iq)); /* a mutex until an owner had it alone */
    static struct bias_chain bc;
    memset(&bc, 0, sizeof(bc));
    bc.t = app_target(&e, "\\Device\\uwdfBias");
    void *buf;
    bc.mem = tu_make_memory(512, &buf);
    KeInitializeEvent(&bc.idle, NotificationEvent, FALSE);
    enum { CHAINS = 4, ROUNDS = 2 };
    atomic_store(&bc.running, CHAINS);
    for (int i = 0; i < CHAINS; i++)
        ck_assert(bias_chain_send(&bc, tu_make_request(bc.t)));
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < 100; i++)
            WdfIoQueueGetState(q, NULL, NULL);
        WdfIoQueueStopSynchronously(q);
        ck_assert_int_eq(WdfIoQueueGetState(q, NULL, NULL) & WdfIoQueueDispatchRequests, 0);
        WdfIoQueueStart(q);
        if (!usable)
            continue;
        /* 65536 entries of the engine thread alone bias it again. */
        const struct timespec ms = { 0, 1000000 };
        for (int waited = 0; waited < 60000 && !queue_lock_biased(iq); waited++)
            nanosleep(&ms, NULL);
        ck_assert_msg(queue_lock_biased(iq), "round %d: the queue lock never settled on the engine thread",
                      round);
        /* Taken from here while the engine thread has it biased: the
         * engine thread is kept out for as long as it is held. */
        uwdf_queue_lock(iq);
        unsigned owned = iq->owned_count, waiting = iq->waiting_count;
        LIST_ENTRY *first = iq->owned.Flink;
        const struct timespec tick = { 0, 100000 };
        for (int i = 0; i < 50; i++) {
            nanosleep(&tick, NULL);
            ck_assert_uint_eq(*(volatile unsigned *)&iq->owned_count, owned);
            ck_assert_uint_eq(*(volatile unsigned *)&iq->waiting_count, waiting);
            ck_assert_ptr_eq(*(LIST_ENTRY *volatile *)&iq->owned.Flink, first);
        }
        uwdf_queue_unlock(iq);
    }
    ck_assert_ptr_nonnull(__atomic_load_n(&iq->lock_engine, __ATOMIC_RELAXED));
    atomic_store(&bc.stop, true);
    LARGE_INTEGER to;
    to.QuadPart = WDF_REL_TIMEOUT_IN_SEC(60);
    ck_assert_status(KeWaitForSingleObject(&bc.idle, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    ck_assert_int_eq(atomic_load(&bc.failed) + atomic_load(&bc.refused), 0);
    ck_assert_int_eq(atomic_load(&bc.completed), atomic_load(&bc.sent));
    TU_FORWARDER *fc = tu_forwarder_of(fwd);
    ck_assert_uint_eq(atomic_load(&fc->seen), (unsigned long)atomic_load(&bc.sent));
    ck_assert_uint_eq(atomic_load(&fc->completed), (unsigned long)atomic_load(&bc.sent));
    ck_assert_uint_eq(WdfIoQueueGetState(q, NULL, NULL) & (WdfIoQueueNoRequests | WdfIoQueueDriverNoRequests),
                      WdfIoQueueNoRequests | WdfIoQueueDriverNoRequests);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* Chains of reads that resend themselves from their routines through a
 * forwarder over a file (bias_chain): every packet reaches the forwarder
 * on the file target's engine thread. Started, and stopped by
 * bias_chains_stop, which checks that each send completed once and none
 * failed other than refused. */
static WDFDEVICE bias_chains_start(struct tu_env *e, struct bias_chain *bc, const char *name, char **file)
{
    *file = tu_env_file(e, "lookup.img", 1 << 20, 0);
    WDFDEVICE fwd = tu_make_forwarder(e->driver, name, WdfDeviceIoDirect, *file, 0);
    memset(bc, 0, sizeof(*bc));
    bc->t = app_target(e, name);
    void *buf;
    bc->mem = tu_make_memory(512, &buf);
    KeInitializeEvent(&bc->idle, NotificationEvent, FALSE);
    enum { CHAINS = 4 };
    atomic_store(&bc->running, CHAINS);
    for (int i = 0; i < CHAINS; i++)
        ck_assert(bias_chain_send(bc, tu_make_request(bc->t)));
    return fwd;
}

static void bias_chains_stop(struct bias_chain *bc)
{
    atomic_store(&bc->stop, true);
    LARGE_INTEGER to;
    to.QuadPart = WDF_REL_TIMEOUT_IN_SEC(60);
    ck_assert_status(KeWaitForSingleObject(&bc->idle, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    ck_assert_int_eq(atomic_load(&bc->failed), 0);
    ck_assert_int_eq(atomic_load(&bc->completed), atomic_load(&bc->sent));
}

/* Waits (bounded) until the forwarder has seen n more packets; false if not. */
static bool forwarder_progresses(WDFDEVICE fwd, unsigned long n, int ms)
{
    TU_FORWARDER *fc = tu_forwarder_of(fwd);
    unsigned long before = atomic_load(&fc->seen);
    for (int waited = 0; waited < ms; waited++) {
        if (atomic_load(&fc->seen) - before >= n)
            return true;
        tu_sleep_ms(1);
    }
    return false;
}

static atomic_int lb_by_read;

static VOID lb_read(WDFQUEUE q, WDFREQUEST req, size_t len)
{
    (void)len;
    atomic_fetch_add(&lb_by_read, 1);
    tu_forward(req, tu_forwarder_of(WdfIoQueueGetDevice(q))->lower, NULL);
}

/* The engine thread that delivers to a device looks its queues up inside
 * a biased lock's fast path (no reader count): a read queue created, made
 * the reads' queue and deleted from this thread, round after round, while
 * that thread delivers; every read completes once, served or refused by
 * the queue being deleted, and nothing touches a deleted queue (ASan,
 * TSan). While this thread holds the lookup's lock the engine thread
 * delivers nothing: its lookups do go through the lock. */
START_TEST(queue_deleted_while_its_engine_thread_delivers)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    static struct bias_chain bc;
    char *file;
    WDFDEVICE fwd = bias_chains_start(&e, &bc, "\\Device\\uwdfLookup", &file);
    struct uwdf_device *idev = uwdf_device_lookup_name("\\Device\\uwdfLookup");
    ck_assert_ptr_nonnull(idev);
    ck_assert(forwarder_progresses(fwd, 100, 20000));
    struct uwdf_engine *owner = __atomic_load_n(&idev->queue_lookup_engine, __ATOMIC_RELAXED);
    ck_assert_ptr_nonnull(owner);
    uwdf_biased_lock_acquire(&idev->queue_lookup_bias);
    TU_FORWARDER *fc = tu_forwarder_of(fwd);
    unsigned long held = atomic_load(&fc->seen);
    tu_sleep_ms(50);
    unsigned long seen = atomic_load(&fc->seen);
    ck_assert_uint_eq(seen, held);
    uwdf_biased_lock_release(&idev->queue_lookup_bias);
    ck_assert(forwarder_progresses(fwd, 100, 20000));
    atomic_store(&lb_by_read, 0);
    int rounds_read = 0;
    for (int round = 0; round < 100; round++) {
        WDFQUEUE q;
        WDF_IO_QUEUE_CONFIG c;
        WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchParallel);
        c.EvtIoRead = lb_read;
        ck_assert_status(WdfIoQueueCreate(fwd, &c, NULL, &q), STATUS_SUCCESS);
        ck_assert_status(WdfDeviceConfigureRequestDispatching(fwd, q, WdfRequestTypeRead), STATUS_SUCCESS);
        int before = tu_load(&lb_by_read);
        for (int spin = 0; spin < 2000 && tu_load(&lb_by_read) == before; spin++)
            sched_yield();
        rounds_read += tu_load(&lb_by_read) != before;
        WdfObjectDelete(q);
    }
    ck_assert_int_gt(rounds_read, 0);
    ck_assert(forwarder_progresses(fwd, 100, 20000)); /* the default queue serves them again */
    bias_chains_stop(&bc);
    uwdf_object_release(&idev->obj);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* A device target's sent-I/O count changes with plain stores on the
 * engine thread that sends and completes (under its lock's fast path):
 * Stop (waiting for sent I/O) and Start from this thread, round after
 * round, while that thread resends: each Stop returns with no sent I/O
 * left, and every read completes once. */
START_TEST(device_target_stopped_while_its_engine_thread_resends)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    static struct bias_chain bc;
    char *file;
    WDFDEVICE fwd = bias_chains_start(&e, &bc, "\\Device\\uwdfSentCount", &file);
    struct uwdf_iotarget *it = uwdf_iotarget_lookup(bc.t, "device_target_stopped_while_its_engine_thread_resends");
    ck_assert_ptr_nonnull(it);
    for (int round = 0; round < 50; round++) {
        ck_assert(forwarder_progresses(fwd, 20, 20000));
        WdfIoTargetStop(bc.t, WdfIoTargetWaitForSentIoToComplete);
        uwdf_biased_lock_acquire(&it->lock);
        unsigned sent = uwdf_iotarget_sent(it);
        uwdf_biased_lock_release(&it->lock);
        ck_assert_uint_eq(sent, 0);
        ck_assert_status(WdfIoTargetStart(bc.t), STATUS_SUCCESS);
    }
    bias_chains_stop(&bc);
    ck_assert_int_eq(atomic_load(&bc.refused), 0);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* The receiving device deleted while a sender's target is still open on
 * it: later packets fail, nothing is delivered to the deleted queue. */
START_TEST(device_deleted_under_target)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    rx_reset();
    WDFDEVICE dev = make_named_device(e.driver, "\\Device\\uwdfGone", WdfDeviceIoBuffered);
    rx_queue(dev, WdfIoQueueDispatchParallel, true, 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfGone");
    struct io io;
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    rx_complete(rx_take(0), STATUS_SUCCESS, 1);
    io_expect(&io, STATUS_SUCCESS, 1);
    io_fini(&io);
    WdfObjectDelete(dev);
    ck_assert_status(open_name_status(&e, "\\Device\\uwdfGone"), STATUS_OBJECT_NAME_NOT_FOUND);
    io_start(&io, t, WdfRequestTypeRead, 512, 0);
    io_expect(&io, STATUS_INVALID_DEVICE_REQUEST, 0);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&R.presented), 1);
    WdfIoTargetClose(t);
    tu_env_fini(&e);
}
END_TEST

/* ---- issue 15: DeviceOffset, neither I/O, reuse of a presented request ---- */

static LONGLONG offs_seen;
static atomic_int offs_calls;

static VOID offs_io(WDFQUEUE q, WDFREQUEST r, size_t len)
{
    (void)q;
    WDF_REQUEST_PARAMETERS p;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(r, &p);
    offs_seen = p.Parameters.Read.DeviceOffset;
    atomic_fetch_add(&offs_calls, 1);
    WdfRequestCompleteWithInformation(r, STATUS_SUCCESS, len);
}

/* What the lower driver sees as DeviceOffset for what the sender passed. */
static LONGLONG offset_below(WDFIOTARGET t, bool write, bool sync, PLONGLONG off)
{
    void *b;
    WDFMEMORY m = tu_make_memory(512, &b);
    int calls = tu_load(&offs_calls);
    offs_seen = 12345;
    if (sync) {
        WDF_MEMORY_DESCRIPTOR d;
        WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, m, NULL);
        ULONG_PTR n = 0;
        NTSTATUS st = write ? WdfIoTargetSendWriteSynchronously(t, NULL, &d, off, NULL, &n)
                            : WdfIoTargetSendReadSynchronously(t, NULL, &d, off, NULL, &n);
        ck_assert_status(st, STATUS_SUCCESS);
        ck_assert_uint_eq(n, 512);
    } else {
        struct io io;
        memset(&io, 0, sizeof(io));
        io.req = tu_make_request(t);
        tu_completion_init(&io.c);
        NTSTATUS st = write ? WdfIoTargetFormatRequestForWrite(t, io.req, m, NULL, off)
                            : WdfIoTargetFormatRequestForRead(t, io.req, m, NULL, off);
        ck_assert_status(st, STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(io.req, tu_on_complete, &io.c);
        io_send_opts(&io, t, WDF_NO_SEND_OPTIONS);
        io_expect(&io, STATUS_SUCCESS, 512);
        io_fini(&io);
    }
    WdfObjectDelete(m);
    ck_assert_int_eq(tu_load(&offs_calls), calls + 1);
    return offs_seen;
}

START_TEST(device_offset_reaches_lower_driver_as_kmdf_passes_it)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    tu_named_device(e.driver, "\\Device\\uwdfOffs", WdfDeviceIoBuffered, NULL, WdfIoQueueDispatchParallel, offs_io,
                    offs_io);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfOffs");
    const LONGLONG passed[] = { 0, 4096, -1, -2, -3, LLONG_MIN };
    for (int sync = 0; sync < 2; sync++)
        for (int write = 0; write < 2; write++) {
            /* NULL: 0, not the file-pointer sentinel */
            ck_assert_int_eq(offset_below(t, write, sync, NULL), 0);
            for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++) {
                LONGLONG off = passed[i];
                ck_assert_int_eq(offset_below(t, write, sync, &off), passed[i]);
            }
        }
    tu_env_fini(&e);
}
END_TEST

/* Neither I/O: a kernel-mode requestor's buffer, as KMDF hands it out. */
static void *neither_app_buf;
static atomic_int neither_ok, neither_calls;

static VOID neither_read(WDFQUEUE q, WDFREQUEST r, size_t len)
{
    (void)q;
    void *b = NULL, *ib = NULL;
    size_t n = 0;
    WDFMEMORY m;
    PMDL mdl;
    bool ok = WdfRequestGetRequestorMode(r) == KernelMode &&
              WdfRequestRetrieveOutputBuffer(r, len, &b, &n) == STATUS_SUCCESS && n == len &&
              WdfRequestRetrieveOutputMemory(r, &m) == STATUS_SUCCESS && WdfMemoryGetBuffer(m, NULL) == b &&
              WdfRequestRetrieveInputBuffer(r, 1, &ib, NULL) == STATUS_INVALID_DEVICE_REQUEST &&
              WdfRequestRetrieveOutputWdmMdl(r, &mdl) == STATUS_INVALID_DEVICE_REQUEST &&
              (!neither_app_buf || b == neither_app_buf);
    if (ok)
        ok = WdfMemoryCopyFromBuffer(m, 0, "neither-read", 13) == STATUS_SUCCESS;
    atomic_fetch_add(&neither_ok, ok);
    atomic_fetch_add(&neither_calls, 1);
    WdfRequestCompleteWithInformation(r, ok ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL, ok ? len : 0);
}

static VOID neither_write(WDFQUEUE q, WDFREQUEST r, size_t len)
{
    (void)q;
    void *b = NULL;
    size_t n = 0;
    WDFMEMORY m;
    bool ok = WdfRequestRetrieveInputBuffer(r, len, &b, &n) == STATUS_SUCCESS && n == len &&
              (!neither_app_buf || b == neither_app_buf) && memcmp(b, "neither-write", 14) == 0 &&
              WdfRequestRetrieveInputMemory(r, &m) == STATUS_SUCCESS && WdfMemoryGetBuffer(m, NULL) == b &&
              WdfMemoryCopyFromBuffer(m, 0, "x", 1) == STATUS_ACCESS_VIOLATION &&
              WdfRequestRetrieveOutputBuffer(r, 1, &b, NULL) == STATUS_INVALID_DEVICE_REQUEST;
    atomic_fetch_add(&neither_ok, ok);
    atomic_fetch_add(&neither_calls, 1);
    WdfRequestCompleteWithInformation(r, ok ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL, ok ? len : 0);
}

START_TEST(neither_io_retrieval_for_kernel_mode_requestors)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    atomic_store(&neither_ok, 0);
    atomic_store(&neither_calls, 0);
    tu_named_device(e.driver, "\\Device\\uwdfNeither", WdfDeviceIoNeither, NULL, WdfIoQueueDispatchParallel,
                    neither_read, neither_write);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfNeither");
    void *b;
    WDFMEMORY m = tu_make_memory(512, &b);
    neither_app_buf = b;
    LONGLONG off = 0;
    /* asynchronous read and write with a WDFMEMORY */
    struct io io;
    memset(&io, 0, sizeof(io));
    io.req = tu_make_request(t);
    tu_completion_init(&io.c);
    memset(b, 0, 512);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, io.req, m, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(io.req, tu_on_complete, &io.c);
    io_send_opts(&io, t, WDF_NO_SEND_OPTIONS);
    io_expect(&io, STATUS_SUCCESS, 512);
    ck_assert_str_eq(b, "neither-read");
    io_fini(&io);
    memcpy(b, "neither-write", 14);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, m, NULL);
    ULONG_PTR n = 0;
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &n), STATUS_SUCCESS);
    ck_assert_uint_eq(n, 512);
    /* a buffer and an MDL descriptor */
    memset(b, 0, 512);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, b, 512);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &n), STATUS_SUCCESS);
    ck_assert_str_eq(b, "neither-read");
    PMDL mdl = IoAllocateMdl(b, 512, FALSE, FALSE, NULL);
    MmBuildMdlForNonPagedPool(mdl);
    memset(b, 0, 512);
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, mdl, 512);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &n), STATUS_SUCCESS);
    ck_assert_str_eq(b, "neither-read");
    memcpy(b, "neither-write", 14);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &n), STATUS_SUCCESS);
    IoFreeMdl(mdl);
    ck_assert_int_eq(tu_load(&neither_calls), 5);
    ck_assert_int_eq(tu_load(&neither_ok), 5);
    neither_app_buf = NULL;
    WdfObjectDelete(m);
    tu_env_fini(&e);
}
END_TEST

/* WdfRequestReuse of a presented request (FxRequest::Reuse): the format
 * and its references go, the IRP's buffers are back as presented, the IRP
 * takes the new status and loses its cancel flag; SET_NEW_IRP is refused;
 * a sent request is refused; the driver still completes it, once. */
static atomic_int reuse_destroyed, reuse_steps_ok;
static WDFIOTARGET reuse_lower, reuse_hold;
static void *reuse_presented_buf;

static VOID reuse_destroy(WDFOBJECT o)
{
    (void)o;
    atomic_fetch_add(&reuse_destroyed, 1);
}

static VOID reuse_second_done(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT c)
{
    (void)t;
    (void)c;
    /* the held leg was cancelled; then the request is completed once */
    if (p->IoStatus.Status == STATUS_CANCELLED)
        atomic_fetch_add(&reuse_steps_ok, 1);
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    if (WdfRequestReuse(r, &rp) == STATUS_SUCCESS)
        atomic_fetch_add(&reuse_steps_ok, 1);
    WdfRequestCompleteWithInformation(r, STATUS_SUCCESS, 7);
}

static VOID reuse_first_done(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT c)
{
    (void)t;
    (void)c;
    int ok = 0;
    PIRP irp = WdfRequestWdmGetIrp(r);
    ok += p->IoStatus.Status == STATUS_SUCCESS;
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_SET_NEW_IRP, STATUS_SUCCESS);
    rp.NewIrp = irp;
    ok += WdfRequestReuse(r, &rp) == STATUS_WDF_REQUEST_INVALID_STATE;
    irp->Cancel = TRUE;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_DEVICE_BUSY);
    ok += WdfRequestReuse(r, &rp) == STATUS_SUCCESS;
    ok += WdfRequestGetStatus(r) == STATUS_DEVICE_BUSY;
    ok += irp->Cancel == FALSE;
    ok += WdfRequestIsCanceled(r) == FALSE;
    /* buffers as presented, though the format had replaced the IRP's */
    void *b = NULL;
    ok += WdfRequestRetrieveOutputBuffer(r, 1, &b, NULL) == STATUS_SUCCESS && b == reuse_presented_buf;
    ok += irp->AssociatedIrp.SystemBuffer == reuse_presented_buf;
    /* sent again, below a device that holds it: a reuse now is refused */
    WDFMEMORY m;
    LONGLONG off = 0;
    ok += WdfRequestRetrieveOutputMemory(r, &m) == STATUS_SUCCESS;
    ok += WdfIoTargetFormatRequestForRead(reuse_hold, r, m, NULL, &off) == STATUS_SUCCESS;
    WdfRequestSetCompletionRoutine(r, reuse_second_done, NULL);
    ok += WdfRequestSend(r, reuse_hold, WDF_NO_SEND_OPTIONS) == TRUE;
    ok += WdfRequestReuse(r, &rp) == STATUS_INVALID_DEVICE_REQUEST;
    atomic_fetch_add(&reuse_steps_ok, ok == 12 ? 1 : -100);
    WdfRequestCancelSentRequest(r);
}

static VOID reuse_read(WDFQUEUE q, WDFREQUEST r, size_t len)
{
    (void)q;
    (void)len;
    WDFMEMORY m;
    LONGLONG off = 0;
    WdfRequestRetrieveOutputBuffer(r, 1, &reuse_presented_buf, NULL);
    if (!NT_SUCCESS(WdfRequestRetrieveOutputMemory(r, &m)) ||
        !NT_SUCCESS(WdfIoTargetFormatRequestForRead(reuse_lower, r, m, NULL, &off))) {
        WdfRequestComplete(r, STATUS_UNSUCCESSFUL);
        return;
    }
    WdfRequestSetCompletionRoutine(r, reuse_first_done, NULL);
    if (!WdfRequestSend(r, reuse_lower, WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(r, WdfRequestGetStatus(r));
}

START_TEST(reuse_of_a_presented_request)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    atomic_store(&reuse_destroyed, 0);
    atomic_store(&reuse_steps_ok, 0);
    char *file = tu_env_file(&e, "lower.img", 1 << 16, 3);
    WDF_OBJECT_ATTRIBUTES ra;
    WDF_OBJECT_ATTRIBUTES_INIT(&ra);
    ra.EvtDestroyCallback = reuse_destroy;
    WDFDEVICE dev = tu_named_device(e.driver, "\\Device\\uwdfReuse", WdfDeviceIoBuffered, &ra,
                                    WdfIoQueueDispatchParallel, reuse_read, NULL);
    tu_named_device(e.driver, "\\Device\\uwdfReuseHold", WdfDeviceIoBuffered, NULL, WdfIoQueueDispatchParallel,
                    tu_hold_until_cancelled, NULL);
    reuse_lower = WdfDeviceGetIoTarget(dev);
    tu_open_by_name(reuse_lower, file, 0);
    ck_assert_status(WdfIoTargetCreate(dev, WDF_NO_OBJECT_ATTRIBUTES, &reuse_hold), STATUS_SUCCESS);
    tu_open_by_name(reuse_hold, "\\Device\\uwdfReuseHold", 0);
    WDFIOTARGET t = app_target(&e, "\\Device\\uwdfReuse");
    for (int i = 0; i < 3; i++) {
        struct io io;
        io_start(&io, t, WdfRequestTypeRead, 512, 0);
        io_expect(&io, STATUS_SUCCESS, 7);
        io_fini(&io);
    }
    for (int i = 0; i < 1000 && tu_load(&reuse_destroyed) < 3; i++)
        tu_sleep_ms(1);
    ck_assert_int_eq(tu_load(&reuse_steps_ok), 9);
    ck_assert_int_eq(tu_load(&reuse_destroyed), 3);
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
    tcase_add_loop_test(tc, resends_through_a_filter_leave_no_sent_io, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, stack_to_ram_disk, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, ram_disk_concurrent, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_and_forget_to_file, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_and_forget_to_device, 0, TU_BACKENDS);
    tc = tu_tcase(s, "devices", 30);
    tcase_add_test(tc, queue_create_validation);
    tcase_add_loop_test(tc, names_and_links, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, routing, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, zero_length, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, request_attributes, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, presented_request_memory_comes_back_with_a_new_handle, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, presented_requests_of_two_sizes_each_come_back_in_their_own_memory, 0, TU_BACKENDS);
    tc = tu_tcase(s, "retrieval", 30);
    tcase_add_loop_test(tc, retrieval, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, retrieval_out_of_memory, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, direct_io_irp_has_the_buffer_mdl_before_any_retrieval, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, direct_io_chain_gives_every_layer_the_buffer_mdl, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, ioctl_through_stack, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, direct_ioctl_down_a_chain_of_four_devices, 0, TU_BACKENDS);
    tc = tu_tcase(s, "dispatch", 30);
    tcase_add_loop_test(tc, dispatch_sequential, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, dispatch_parallel_limit, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, dispatch_manual, 0, TU_BACKENDS);
    tc = tu_tcase(s, "state", 30);
    tcase_add_loop_test(tc, stop_and_start, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, drain, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, purge, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, purge_cancels_a_cancelable_request_acknowledged_at_a_stop, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, stop_and_purge, 0, TU_BACKENDS);
    tc = tu_tcase(s, "cancel", 30);
    tcase_add_loop_test(tc, cancel_on_queue, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, a_request_cancelled_on_its_way_is_not_presented_below, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, forward_to_queue, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, cancelable, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, cancelable_timeout, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_timeout, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sender_close_cancels, 0, TU_BACKENDS);
    tc = tu_tcase(s, "lifetime", 30);
    tcase_add_loop_test(tc, completion_misuse, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, queue_delete_with_requests, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, queue_deleted_while_packets_arrive, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, passive_queue_from_dispatch, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, unmark_cancel_race, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, timeout_on_queue, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, resend_chain, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, purge_while_completing, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, device_deleted_under_target, 0, TU_BACKENDS);
    tc = tu_tcase(s, "bias", 150);
    tcase_add_loop_test(tc, queue_lock_biased_to_its_engine_thread, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, queue_deleted_while_its_engine_thread_delivers, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, device_target_stopped_while_its_engine_thread_resends, 0, TU_BACKENDS);
    tc = tu_tcase(s, "fidelity", 30);
    tcase_add_loop_test(tc, device_offset_reaches_lower_driver_as_kmdf_passes_it, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, neither_io_retrieval_for_kernel_mode_requestors, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_of_a_presented_request, 0, TU_BACKENDS);
    return s;
}

int main(void)
{
    return tu_main(queue_suite(), "queue");
}
