/* WDFREQUEST: creation, reuse, send validation, completion routines and
 * completion parameters, IRQL, and the reuse-in-the-completion-routine
 * pattern. Every test that moves data runs once per engine (io_uring,
 * libaio) and checks that the target really uses it. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096
#define FILE_BLOCKS 16
#define FILE_SIZE (FILE_BLOCKS * BLK)
#define FILE_SEED 11u
#define WAIT_MS 10000          /* an I/O that takes this long is lost */
#define QUIET_MS 100           /* "nothing else happens" observation window */
#define FIFO_BYTES 64
#define SEED_IOS 10000         /* the reuse loop: writes, then reads */
#define SEED_WRITES (SEED_IOS / 2)
#define TEST_TIMEOUT_SEC 60

/* ---- helpers ---- */

static void reuse(WDFREQUEST req, NTSTATUS status)
{
    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, status);
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_SUCCESS);
}

static void send_async(WDFREQUEST req, WDFIOTARGET target, struct tu_completion *c)
{
    WdfRequestSetCompletionRoutine(req, tu_on_complete, c);
    ck_assert_msg(WdfRequestSend(req, target, WDF_NO_SEND_OPTIONS), "send failed: " TU_STATUS_FMT,
                  TU_STATUS_ARG(WdfRequestGetStatus(req)));
    ck_assert_msg(tu_completion_wait(c, WAIT_MS), "no completion within %d ms", WAIT_MS);
}

/* WdfRequestSend(SYNCHRONOUS); the request's status. */
static NTSTATUS send_sync(WDFREQUEST req, WDFIOTARGET target)
{
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    ck_assert(WdfRequestSend(req, target, &o));
    return WdfRequestGetStatus(req);
}

/* ---- a request that stays in flight until it is cancelled ----
 * io_uring: a read of an empty FIFO (a writer is held open, so the read
 * parks in the kernel). libaio refuses FIFOs, so there the request is
 * pended on a stopped target, which WDF counts as sent just the same. */
struct inflight {
    WDFIOTARGET target;
    WDFREQUEST req;
    WDFMEMORY mem;
    struct tu_completion c;
};

static void inflight_start(struct tu_env *e, int backend, struct inflight *f)
{
    tu_completion_init(&f->c);
    if (backend == 0) {
        f->target = tu_env_open_fifo(e);
    } else {
        char *path = tu_env_file(e, "pended", FILE_SIZE, FILE_SEED);
        f->target = tu_env_target(e, path, GENERIC_READ, 0);
        WdfIoTargetStop(f->target, WdfIoTargetLeaveSentIoPending);
        ck_assert_int_eq(WdfIoTargetGetState(f->target), WdfIoTargetStopped);
        free(path);
    }
    f->req = tu_make_request(f->target);
    f->mem = tu_make_memory(FIFO_BYTES, NULL);
    /* NULL offset: a FIFO has no positions (and the file read starts at 0). */
    ck_assert_status(WdfIoTargetFormatRequestForRead(f->target, f->req, f->mem, NULL, NULL),
                     STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(f->req, tu_on_complete, &f->c);
    ck_assert(WdfRequestSend(f->req, f->target, WDF_NO_SEND_OPTIONS));
    tu_sleep_ms(20);
    ck_assert_int_eq(tu_ncalls(&f->c), 0);
}

static void inflight_cancel(struct inflight *f)
{
    ck_assert(WdfRequestCancelSentRequest(f->req));
    ck_assert(tu_completion_wait(&f->c, WAIT_MS));
    ck_assert_status(f->c.status, STATUS_CANCELLED);
    ck_assert_int_eq(f->c.information, 0);
    ck_assert_int_eq(tu_ncalls(&f->c), 1);
}

static void inflight_fini(struct inflight *f)
{
    tu_completion_fini(&f->c);
}

/* =================================================================== */
/* creation and handles                                                 */
/* =================================================================== */

START_TEST(create_without_target_has_irp)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    WDFREQUEST req;
    tu_driver_and_device(&driver, &device);
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE, &req), STATUS_SUCCESS);
    ck_assert_ptr_nonnull(req);
    PIRP irp = WdfRequestWdmGetIrp(req);
    ck_assert_ptr_nonnull(irp);
    ck_assert_int_ge(irp->StackCount, 1);
    ck_assert_ptr_null(WdfRequestGetIoTarget(req));
    WdfObjectDelete(req);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(create_with_target_formats_and_sends)
{
    struct tu_env e;
    struct tu_completion c;
    void *buf;
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req;
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &req), STATUS_SUCCESS);
    ck_assert_ptr_nonnull(WdfRequestWdmGetIrp(req));
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    LONGLONG off = 2 * BLK;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfRequestGetIoTarget(req), t);
    send_async(req, t, &c);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.information, BLK);
    ck_assert_ptr_eq(c.request, req);
    ck_assert_ptr_eq(c.target, t);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, (uint64_t)off));
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(wrong_handle_type_is_invalid_handle_bugcheck)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    tu_driver_and_device(&driver, &device);
    WDFMEMORY mem = tu_make_memory(64, NULL);
    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);

    ck_assert_status(WdfRequestGetStatus((WDFREQUEST)mem), STATUS_INVALID_HANDLE);
    tu_expect_bugcheck(WDF_INVALID_HANDLE, (ULONG_PTR)mem);
    ck_assert_status(WdfRequestReuse((WDFREQUEST)mem, &p), STATUS_INVALID_HANDLE);
    tu_expect_bugcheck(WDF_INVALID_HANDLE, (ULONG_PTR)mem);
    /* A target is no request either, and WdfRequestSend reports FALSE. */
    WDFIOTARGET target;
    ck_assert_status(WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, &target), STATUS_SUCCESS);
    ck_assert(!WdfRequestSend((WDFREQUEST)target, target, WDF_NO_SEND_OPTIONS));
    tu_expect_bugcheck(WDF_INVALID_HANDLE, (ULONG_PTR)target);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(deleted_request_handle_is_invalid_handle_bugcheck)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    WDFREQUEST req;
    tu_driver_and_device(&driver, &device);
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE, &req), STATUS_SUCCESS);
    WdfObjectDelete(req);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_INVALID_HANDLE);
    tu_expect_bugcheck(WDF_INVALID_HANDLE, (ULONG_PTR)req);
    WdfObjectDelete(driver);
}
END_TEST

/* =================================================================== */
/* WdfRequestReuse                                                      */
/* =================================================================== */

START_TEST(reuse_bad_size_is_invalid_parameter)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    tu_driver_and_device(&driver, &device);
    WDFREQUEST req = tu_make_request(WDF_NO_HANDLE);
    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    p.Size = sizeof(p) - 1;
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_INVALID_PARAMETER);
    p.Size = sizeof(p) + 8;
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_INVALID_PARAMETER);
    p.Size = 0;
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_INVALID_PARAMETER);
    p.Size = sizeof(p);
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_SUCCESS);
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(reuse_unknown_flags_is_invalid_parameter)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    tu_driver_and_device(&driver, &device);
    WDFREQUEST req = tu_make_request(WDF_NO_HANDLE);
    static const ULONG bad[] = { 0x2 /* WDF's private MUST_COMPLETE */, 0x4, 0x80000000u, 0x3 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        WDF_REQUEST_REUSE_PARAMS p;
        WDF_REQUEST_REUSE_PARAMS_INIT(&p, bad[i], STATUS_SUCCESS);
        ck_assert_status_msg(WdfRequestReuse(req, &p), STATUS_INVALID_PARAMETER, "flags 0x%x", bad[i]);
    }
    WdfObjectDelete(driver);
}
END_TEST

START_TEST(reuse_set_new_irp_on_created_request_is_invalid_state)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    tu_driver_and_device(&driver, &device);
    WDFREQUEST req = tu_make_request(WDF_NO_HANDLE);
    PIRP own = WdfRequestWdmGetIrp(req);
    PIRP fresh = IoAllocateIrp(2, FALSE);
    ck_assert_ptr_nonnull(fresh);
    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    WDF_REQUEST_REUSE_PARAMS_SET_NEW_IRP(&p, fresh);
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_WDF_REQUEST_INVALID_STATE);
    ck_assert_ptr_eq(WdfRequestWdmGetIrp(req), own); /* nothing changed */
    WdfObjectDelete(driver);
    IoFreeIrp(fresh);
}
END_TEST

START_TEST(reuse_set_new_irp_on_request_from_irp_installs_it)
{
    struct tu_env e;
    char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    PIRP first = IoAllocateIrp(2, FALSE);
    PIRP second = IoAllocateIrp(2, FALSE);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(second);
    WDFREQUEST req;
    ck_assert_status(WdfRequestCreateFromIrp(WDF_NO_OBJECT_ATTRIBUTES, first, FALSE, &req), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfRequestWdmGetIrp(req), first);

    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
    LONGLONG off = BLK;
    ULONG_PTR bytes = 0;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);

    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    WDF_REQUEST_REUSE_PARAMS_SET_NEW_IRP(&p, second);
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfRequestWdmGetIrp(req), second);

    /* The new IRP carries the next I/O. */
    memset(buf, 0, sizeof(buf));
    off = 3 * BLK;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, (uint64_t)off));
    ck_assert_status(second->IoStatus.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(second->IoStatus.Information, BLK);

    /* Both IRPs are the test's: the request frees neither. */
    WdfObjectDelete(req);
    IoFreeIrp(first);
    IoFreeIrp(second);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(reuse_sets_io_status_to_given_status)
{
    struct tu_env e;
    char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
    LONGLONG off = FILE_SIZE; /* at EOF: the request ends with a failure */
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &d, &off, NULL, NULL), STATUS_END_OF_FILE);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_END_OF_FILE);

    reuse(req, STATUS_PENDING);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_PENDING);
    ck_assert_status(WdfRequestWdmGetIrp(req)->IoStatus.Status, STATUS_PENDING);
    ck_assert_uint_eq(WdfRequestGetInformation(req), 0);

    off = 0;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &d, &off, NULL, NULL), STATUS_SUCCESS);
    ck_assert_uint_eq(WdfRequestGetInformation(req), BLK);
    reuse(req, STATUS_UNSUCCESSFUL);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_UNSUCCESSFUL);
    ck_assert_uint_eq(WdfRequestGetInformation(req), 0);

    /* A driver-owned IRP (CreateFromIrp, RequestFreesIrp FALSE) too. */
    PIRP irp = IoAllocateIrp(2, FALSE);
    WDFREQUEST from_irp;
    ck_assert_status(WdfRequestCreateFromIrp(WDF_NO_OBJECT_ATTRIBUTES, irp, FALSE, &from_irp),
                     STATUS_SUCCESS);
    reuse(from_irp, STATUS_DEVICE_BUSY);
    ck_assert_status(WdfRequestGetStatus(from_irp), STATUS_DEVICE_BUSY);
    ck_assert_status(irp->IoStatus.Status, STATUS_DEVICE_BUSY);
    WdfObjectDelete(from_irp);
    IoFreeIrp(irp);
    free(path);
    tu_env_fini(&e);
}
END_TEST

static atomic_int old_routine_calls;

static VOID old_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                        WDFCONTEXT Context)
{
    atomic_fetch_add(&old_routine_calls, 1);
}

START_TEST(reuse_clears_completion_routine)
{
    struct tu_env e;
    void *buf;
    atomic_store(&old_routine_calls, 0);
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);

    /* Set, then reuse before any send: the routine is gone. */
    WdfRequestSetCompletionRoutine(req, old_routine, NULL);
    reuse(req, STATUS_SUCCESS);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    ck_assert(WdfRequestSend(req, t, &o));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_SUCCESS);
    ck_assert_int_eq(tu_load(&old_routine_calls), 0);

    /* A routine that did run once is gone after reuse as well. */
    reuse(req, STATUS_SUCCESS);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(req, old_routine, NULL);
    ck_assert(WdfRequestSend(req, t, &o));
    ck_assert_int_eq(tu_load(&old_routine_calls), 1);
    reuse(req, STATUS_SUCCESS);
    off = BLK;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    ck_assert(WdfRequestSend(req, t, &o));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, BLK));
    ck_assert_int_eq(tu_load(&old_routine_calls), 1);
    free(path);
    tu_env_fini(&e);
}
END_TEST

static atomic_int memory_destroyed;

static VOID count_memory_destroy(WDFOBJECT Object)
{
    atomic_fetch_add(&memory_destroyed, 1);
}

static WDFMEMORY make_counted_memory(size_t size, void **buffer)
{
    WDF_OBJECT_ATTRIBUTES a;
    WDFMEMORY mem;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.EvtDestroyCallback = count_memory_destroy;
    ck_assert_status(WdfMemoryCreate(&a, NonPagedPoolNx, 0, size, &mem, buffer), STATUS_SUCCESS);
    return mem;
}

/* Format a read with a counted memory object, complete it, and delete the
 * memory object: the request's format still holds it. */
static WDFREQUEST read_then_delete_memory(struct tu_env *e, WDFIOTARGET *target, struct tu_completion *c)
{
    void *buf;
    char *path = tu_env_file(e, "f", FILE_SIZE, FILE_SEED);
    *target = tu_env_target(e, path, GENERIC_READ, 0);
    free(path);
    WDFREQUEST req = tu_make_request(*target);
    WDFMEMORY mem = make_counted_memory(BLK, &buf);
    LONGLONG off = BLK;
    ck_assert_status(WdfIoTargetFormatRequestForRead(*target, req, mem, NULL, &off), STATUS_SUCCESS);
    send_async(req, *target, c);
    ck_assert_status(c->status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, BLK));
    tu_sleep_ms(20); /* let the engine thread finish the completion */
    WdfObjectDelete(mem);
    tu_sleep_ms(20);
    ck_assert_msg(tu_load(&memory_destroyed) == 0,
                  "the memory was destroyed while a completed, not reused request still "
                  "referenced it");
    /* The completion parameters still name it. */
    WDF_REQUEST_COMPLETION_PARAMS p;
    WDF_REQUEST_COMPLETION_PARAMS_INIT(&p);
    WdfRequestGetCompletionParams(req, &p);
    ck_assert_ptr_eq(p.Parameters.Read.Buffer, mem);
    return req;
}

START_TEST(reuse_releases_memory_reference)
{
    struct tu_env e;
    struct tu_completion c;
    WDFIOTARGET t;
    atomic_store(&memory_destroyed, 0);
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    WDFREQUEST req = read_then_delete_memory(&e, &t, &c);
    reuse(req, STATUS_SUCCESS);
    ck_assert_int_eq(tu_load(&memory_destroyed), 1);
    tu_completion_fini(&c);
    tu_env_fini(&e);
}
END_TEST

START_TEST(delete_request_releases_memory_reference)
{
    struct tu_env e;
    struct tu_completion c;
    WDFIOTARGET t;
    atomic_store(&memory_destroyed, 0);
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    WDFREQUEST req = read_then_delete_memory(&e, &t, &c);
    WdfObjectDelete(req);
    ck_assert_int_eq(tu_load(&memory_destroyed), 1);
    tu_completion_fini(&c);
    tu_env_fini(&e);
}
END_TEST

START_TEST(reformat_releases_memory_reference)
{
    struct tu_env e;
    struct tu_completion c;
    WDFIOTARGET t;
    void *buf;
    atomic_store(&memory_destroyed, 0);
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    WDFREQUEST req = read_then_delete_memory(&e, &t, &c);
    WDFMEMORY other = tu_make_memory(BLK, &buf);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, other, NULL, &off), STATUS_SUCCESS);
    ck_assert_int_eq(tu_load(&memory_destroyed), 1);
    tu_completion_fini(&c);
    tu_env_fini(&e);
}
END_TEST

START_TEST(reuse_resets_cancel_flag)
{
    struct tu_env e;
    struct tu_completion c;
    void *buf;
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);

    /* Nothing to cancel: FALSE, but the request remembers the cancel. */
    ck_assert(!WdfRequestCancelSentRequest(req));
    WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
    ck_assert(!WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_CANCELLED);
    tu_sleep_ms(QUIET_MS);
    ck_assert_int_eq(tu_ncalls(&c), 0); /* a failed send completes nothing */

    reuse(req, STATUS_SUCCESS);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    send_async(req, t, &c);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.information, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, 0));
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(reuse_in_flight_is_invalid_device_request)
{
    struct tu_env e;
    struct inflight f;
    tu_env_init_backend(&e, _i);
    inflight_start(&e, _i, &f);
    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(f.req, &p), STATUS_INVALID_DEVICE_REQUEST);
    /* The refused reuse left the request alone: it still completes, once,
     * through the routine it was sent with. */
    inflight_cancel(&f);
    ck_assert_status(WdfRequestReuse(f.req, &p), STATUS_SUCCESS);
    inflight_fini(&f);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* the seed pattern: reuse and resend from the completion routine       */
/* =================================================================== */

struct seed {
    WDFIOTARGET target;
    WDFMEMORY mem;
    unsigned char *buf;
    atomic_int sent;
    atomic_int completed;
    atomic_int out_of_order;
    atomic_int failures;
    atomic_int mismatches;
    NTSTATUS first_failure;
    unsigned expect[FILE_BLOCKS]; /* pattern seed now on each block */
    KEVENT done;
};

static unsigned seed_of(int k)
{
    return 1000u + (unsigned)k;
}

static bool seed_send(struct seed *s, WDFREQUEST req, int k);

static VOID seed_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                         WDFCONTEXT Context)
{
    struct seed *s = Context;
    int k = atomic_fetch_add(&s->completed, 1);
    int block = k % FILE_BLOCKS;
    bool write = k < SEED_WRITES;

    if (k != atomic_load(&s->sent) - 1)
        atomic_fetch_add(&s->out_of_order, 1); /* a double or a lost completion */
    if (!NT_SUCCESS(Params->IoStatus.Status) || Params->IoStatus.Information != BLK ||
        Params->Type != (write ? WdfRequestTypeWrite : WdfRequestTypeRead) || Target != s->target) {
        if (atomic_fetch_add(&s->failures, 1) == 0)
            s->first_failure = Params->IoStatus.Status;
        KeSetEvent(&s->done, IO_NO_INCREMENT, FALSE);
        return;
    }
    if (write)
        s->expect[block] = seed_of(k);
    else if (!tu_pattern_matches(s->buf, BLK, s->expect[block], (uint64_t)block * BLK))
        atomic_fetch_add(&s->mismatches, 1);
    if (k + 1 == SEED_IOS) {
        KeSetEvent(&s->done, IO_NO_INCREMENT, FALSE);
        return;
    }

    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    NTSTATUS status = WdfRequestReuse(Request, &rp);
    if (!NT_SUCCESS(status) || !seed_send(s, Request, k + 1)) {
        if (atomic_fetch_add(&s->failures, 1) == 0)
            s->first_failure = NT_SUCCESS(status) ? WdfRequestGetStatus(Request) : status;
        KeSetEvent(&s->done, IO_NO_INCREMENT, FALSE);
    }
}

/* Format I/O number k (writes first, then reads), set the routine again
 * (reuse cleared it) and send. */
static bool seed_send(struct seed *s, WDFREQUEST req, int k)
{
    int block = k % FILE_BLOCKS;
    LONGLONG off = (LONGLONG)block * BLK;
    NTSTATUS status;
    if (k < SEED_WRITES) {
        tu_fill_pattern(s->buf, BLK, seed_of(k), (uint64_t)off);
        status = WdfIoTargetFormatRequestForWrite(s->target, req, s->mem, NULL, &off);
    } else {
        memset(s->buf, 0, BLK);
        status = WdfIoTargetFormatRequestForRead(s->target, req, s->mem, NULL, &off);
    }
    if (!NT_SUCCESS(status))
        return false;
    WdfRequestSetCompletionRoutine(req, seed_routine, s);
    atomic_fetch_add(&s->sent, 1);
    return WdfRequestSend(req, s->target, WDF_NO_SEND_OPTIONS);
}

START_TEST(reuse_in_completion_routine_10000_ios_one_request)
{
    struct tu_env e;
    struct seed *s = calloc(1, sizeof(*s));
    tu_env_init_backend(&e, _i);
    KeInitializeEvent(&s->done, NotificationEvent, FALSE);
    char *path = tu_env_file(&e, "seed", FILE_SIZE, FILE_SEED);
    for (int b = 0; b < FILE_BLOCKS; b++)
        s->expect[b] = FILE_SEED;
    s->target = tu_env_target(&e, path, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
    s->mem = tu_make_memory(BLK, (void **)&s->buf);
    WDFREQUEST req = tu_make_request(s->target);

    double t0 = tu_now_ms();
    ck_assert(seed_send(s, req, 0));
    LARGE_INTEGER timeout;
    timeout.QuadPart = WDF_REL_TIMEOUT_IN_SEC(50);
    ck_assert_status_msg(KeWaitForSingleObject(&s->done, Executive, KernelMode, FALSE, &timeout), STATUS_SUCCESS,
                         "stuck after %d completions", atomic_load(&s->completed));
    double elapsed = tu_now_ms() - t0;
    tu_sleep_ms(QUIET_MS); /* a late extra completion would show up here */

    ck_assert_msg(tu_load(&s->failures) == 0, "I/O failed at completion %d: " TU_STATUS_FMT,
                  atomic_load(&s->completed), TU_STATUS_ARG(s->first_failure));
    ck_assert_int_eq(tu_load(&s->completed), SEED_IOS);
    ck_assert_int_eq(tu_load(&s->sent), SEED_IOS);
    ck_assert_int_eq(tu_load(&s->out_of_order), 0);
    ck_assert_int_eq(tu_load(&s->mismatches), 0);

    /* The writes are on disk, independently of the framework's reads. */
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    for (int b = 0; b < FILE_BLOCKS; b++) {
        unsigned char blk[BLK];
        ck_assert_int_eq(pread(fd, blk, BLK, (off_t)b * BLK), BLK);
        ck_assert_msg(tu_pattern_matches(blk, BLK, s->expect[b], (uint64_t)b * BLK), "block %d", b);
    }
    close(fd);
    fprintf(stderr, "%s: %d I/Os on one request in %.0f ms\n", tu_backend_names[_i], SEED_IOS, elapsed);
    UwdfKeDestroyEvent(&s->done);
    free(s);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* completion parameters                                                */
/* =================================================================== */

START_TEST(completion_params_filled_for_read_and_write)
{
    struct tu_env e;
    struct tu_completion c;
    void *buf;
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(3 * BLK, &buf);
    WDFMEMORY_OFFSET mo = { .BufferOffset = BLK, .BufferLength = BLK };
    LONGLONG off = 2 * BLK;

    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, &mo, &off), STATUS_SUCCESS);
    send_async(req, t, &c);
    ck_assert_int_eq(c.params.Size, sizeof(WDF_REQUEST_COMPLETION_PARAMS));
    ck_assert_int_eq(c.params.Type, WdfRequestTypeRead);
    ck_assert_status(c.params.IoStatus.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.params.IoStatus.Information, BLK);
    ck_assert_ptr_eq(c.params.Parameters.Read.Buffer, mem);
    ck_assert_uint_eq(c.params.Parameters.Read.Offset, BLK);
    ck_assert_uint_eq(c.params.Parameters.Read.Length, BLK);
    ck_assert(tu_pattern_matches((char *)buf + BLK, BLK, FILE_SEED, (uint64_t)off));

    /* WdfRequestGetCompletionParams gives the same afterwards. */
    WDF_REQUEST_COMPLETION_PARAMS p;
    WDF_REQUEST_COMPLETION_PARAMS_INIT(&p);
    WdfRequestGetCompletionParams(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeRead);
    ck_assert_status(p.IoStatus.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(p.IoStatus.Information, BLK);
    ck_assert_ptr_eq(p.Parameters.Read.Buffer, mem);
    ck_assert_uint_eq(p.Parameters.Read.Offset, BLK);
    ck_assert_uint_eq(p.Parameters.Read.Length, BLK);

    /* A short read: Length is the bytes transferred, not the buffer. */
    reuse(req, STATUS_SUCCESS);
    tu_completion_fini(&c);
    tu_completion_init(&c);
    WDFMEMORY_OFFSET whole = { .BufferOffset = 0, .BufferLength = 0 };
    off = FILE_SIZE - 100;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, &whole, &off), STATUS_SUCCESS);
    send_async(req, t, &c);
    ck_assert_status(c.params.IoStatus.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.params.Parameters.Read.Length, 100);
    ck_assert_uint_eq(c.params.Parameters.Read.Offset, 0);

    /* A write with a raw offset pair. */
    reuse(req, STATUS_SUCCESS);
    tu_completion_fini(&c);
    tu_completion_init(&c);
    WDFMEMORY_OFFSET wo = { .BufferOffset = 2 * BLK, .BufferLength = 512 };
    off = 0;
    tu_fill_pattern((char *)buf + 2 * BLK, 512, 31, 0);
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, &wo, &off), STATUS_SUCCESS);
    send_async(req, t, &c);
    ck_assert_int_eq(c.params.Type, WdfRequestTypeWrite);
    ck_assert_status(c.params.IoStatus.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.params.IoStatus.Information, 512);
    ck_assert_ptr_eq(c.params.Parameters.Write.Buffer, mem);
    ck_assert_uint_eq(c.params.Parameters.Write.Offset, 2 * BLK);
    ck_assert_uint_eq(c.params.Parameters.Write.Length, 512);
    ck_assert(tu_pattern_matches((char *)buf + 2 * BLK, 512, 31, 0)); /* the source is left alone */
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* The completion parameters last as long as the format they completed,
 * as in WDF (FxRequestContext::ReleaseAndRestore reinitialises them): a
 * change of the request's IoStatus after the completion does not show in
 * them; a new format or WdfRequestReuse ends them. (The framework keeps
 * what they are made of, not a copy: its send state is not the request's.) */
START_TEST(completion_params_last_until_the_format_ends)
{
    struct tu_env e;
    struct tu_completion c;
    void *buf;
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    WDF_REQUEST_COMPLETION_PARAMS p;
    tu_fill_pattern(buf, BLK, 21, BLK);

    /* Never sent: initialised. */
    WDF_REQUEST_COMPLETION_PARAMS_INIT(&p);
    p.Type = WdfRequestTypeWrite;
    WdfRequestGetCompletionParams(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeNoFormat);

    LONGLONG off = BLK;
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_SUCCESS);
    send_async(req, t, &c);
    ck_assert_status(c.params.IoStatus.Status, STATUS_SUCCESS);
    WdfRequestSetInformation(req, 7);
    ck_assert_uint_eq(WdfRequestGetInformation(req), 7);
    WDF_REQUEST_COMPLETION_PARAMS_INIT(&p);
    WdfRequestGetCompletionParams(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeWrite);
    ck_assert_uint_eq(p.IoStatus.Information, BLK);
    ck_assert_ptr_eq(p.Parameters.Write.Buffer, mem);
    ck_assert_uint_eq(p.Parameters.Write.Length, BLK);

    /* A new format ends them, before any send. */
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    p.Type = WdfRequestTypeWrite;
    WdfRequestGetCompletionParams(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeNoFormat);
    ck_assert_ptr_null(p.Parameters.Read.Buffer);

    /* Completed again, then reused: gone too. */
    tu_completion_fini(&c);
    tu_completion_init(&c);
    send_async(req, t, &c);
    WdfRequestGetCompletionParams(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeRead);
    ck_assert_uint_eq(p.Parameters.Read.Length, BLK);
    reuse(req, STATUS_SUCCESS);
    p.Type = WdfRequestTypeWrite;
    WdfRequestGetCompletionParams(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeNoFormat);
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(get_completion_params_wrong_size_leaves_struct_untouched)
{
    struct tu_env e;
    struct tu_completion c;
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(BLK, NULL);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    send_async(req, t, &c);

    static const ULONG sizes[] = { 0, sizeof(WDF_REQUEST_COMPLETION_PARAMS) - 1,
                                   sizeof(WDF_REQUEST_COMPLETION_PARAMS) + 8 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        WDF_REQUEST_COMPLETION_PARAMS p, before;
        memset(&p, 0xA5, sizeof(p));
        p.Size = sizes[i];
        before = p;
        WdfRequestGetCompletionParams(req, &p);
        ck_assert_msg(memcmp(&p, &before, sizeof(p)) == 0, "Size %u: struct was written", sizes[i]);
    }
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* WdfRequestSend                                                       */
/* =================================================================== */

/* An opened target, and a request formatted to read block 0. */
struct sendable {
    WDFIOTARGET target;
    WDFREQUEST req;
    WDFMEMORY mem;
    void *buf;
    char *path;
};

static void sendable_init(struct tu_env *e, struct sendable *s)
{
    s->path = tu_env_file(e, "f", FILE_SIZE, FILE_SEED);
    s->target = tu_env_target(e, s->path, GENERIC_READ, 0);
    s->req = tu_make_request(s->target);
    s->mem = tu_make_memory(BLK, &s->buf);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(s->target, s->req, s->mem, NULL, &off),
                     STATUS_SUCCESS);
}

START_TEST(send_options_bad_size_is_invalid_parameter)
{
    struct tu_env e;
    struct sendable s;
    tu_env_init_backend(&e, _i);
    sendable_init(&e, &s);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    o.Size = sizeof(o) - 1;
    ck_assert(!WdfRequestSend(s.req, s.target, &o));
    ck_assert_status(WdfRequestGetStatus(s.req), STATUS_INVALID_PARAMETER);
    o.Size = sizeof(o) + 4;
    ck_assert(!WdfRequestSend(s.req, s.target, &o));
    ck_assert_status(WdfRequestGetStatus(s.req), STATUS_INVALID_PARAMETER);
    /* Nothing was sent: a correct send now works. */
    o.Size = sizeof(o);
    o.Flags = WDF_REQUEST_SEND_OPTION_SYNCHRONOUS;
    ck_assert(WdfRequestSend(s.req, s.target, &o));
    ck_assert_status(WdfRequestGetStatus(s.req), STATUS_SUCCESS);
    free(s.path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_options_unknown_flags_is_invalid_parameter)
{
    struct tu_env e;
    struct sendable s;
    tu_env_init_backend(&e, _i);
    sendable_init(&e, &s);
    static const ULONG bad[] = { 0x10, 0x100, 0x80000000u,
                                 WDF_REQUEST_SEND_OPTION_SYNCHRONOUS | 0x20,
                                 /* SEND_AND_FORGET combined with anything */
                                 WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET | WDF_REQUEST_SEND_OPTION_TIMEOUT };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        WDF_REQUEST_SEND_OPTIONS o;
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, bad[i]);
        ck_assert_msg(!WdfRequestSend(s.req, s.target, &o), "flags 0x%x sent", bad[i]);
        ck_assert_status(WdfRequestGetStatus(s.req), STATUS_INVALID_PARAMETER);
    }
    free(s.path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_and_forget_on_created_request_is_invalid_device_state)
{
    struct tu_env e;
    struct sendable s;
    tu_env_init_backend(&e, _i);
    sendable_init(&e, &s);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET);
    ck_assert(!WdfRequestSend(s.req, s.target, &o));
    ck_assert_status(WdfRequestGetStatus(s.req), STATUS_INVALID_DEVICE_STATE);
    free(s.path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_unformatted_is_request_not_accepted)
{
    struct tu_env e;
    struct tu_completion c;
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
    ck_assert(!WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_REQUEST_NOT_ACCEPTED);
    /* Reuse drops a format: the request is unformatted again. */
    WDFMEMORY mem = tu_make_memory(BLK, NULL);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    reuse(req, STATUS_SUCCESS);
    ck_assert(!WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_REQUEST_NOT_ACCEPTED);
    tu_sleep_ms(QUIET_MS);
    ck_assert_int_eq(tu_ncalls(&c), 0);
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_in_flight_is_invalid_device_request)
{
    struct tu_env e;
    struct inflight f;
    tu_env_init_backend(&e, _i);
    inflight_start(&e, _i, &f);
    ck_assert(!WdfRequestSend(f.req, f.target, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(f.req), STATUS_INVALID_DEVICE_REQUEST);
    inflight_cancel(&f);
    inflight_fini(&f);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_in_flight_with_verifier_is_request_already_sent_bugcheck)
{
    struct tu_env e;
    struct inflight f;
    tu_env_init_backend(&e, _i);
    inflight_start(&e, _i, &f);
    UwdfSetVerifier(TRUE);
    ck_assert(!WdfRequestSend(f.req, f.target, WDF_NO_SEND_OPTIONS));
    UwdfSetVerifier(FALSE);
    ck_assert_int_eq(tu_last_bugcheck.count, 1);
    ck_assert_uint_eq(tu_last_bugcheck.p[0], WDF_REQUEST_FATAL_ERROR);
    ck_assert_uint_eq(tu_last_bugcheck.p[1], WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT);
    ck_assert_uint_eq(tu_last_bugcheck.p[2], (ULONG_PTR)f.req);
    tu_bugcheck_reset();
    inflight_cancel(&f);
    inflight_fini(&f);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_synchronous_runs_routine_and_sets_status)
{
    struct tu_env e;
    struct tu_completion c;
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    struct sendable s;
    sendable_init(&e, &s);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(10));

    WdfRequestSetCompletionRoutine(s.req, tu_on_complete, &c);
    ck_assert(WdfRequestSend(s.req, s.target, &o));
    /* Returned after the routine ran, without waiting for anything. */
    ck_assert_int_eq(tu_ncalls(&c), 1);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.information, BLK);
    ck_assert_int_eq(c.irql, DISPATCH_LEVEL);
    ck_assert_status(WdfRequestGetStatus(s.req), STATUS_SUCCESS);
    ck_assert_uint_eq(WdfRequestGetInformation(s.req), BLK);
    ck_assert(tu_pattern_matches(s.buf, BLK, FILE_SEED, 0));

    /* A failing I/O: still TRUE (it was sent), the status tells. */
    reuse(s.req, STATUS_SUCCESS);
    LONGLONG off = FILE_SIZE;
    ck_assert_status(WdfIoTargetFormatRequestForRead(s.target, s.req, s.mem, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(s.req, tu_on_complete, &c);
    ck_assert(WdfRequestSend(s.req, s.target, &o));
    ck_assert_int_eq(tu_ncalls(&c), 2);
    ck_assert_status(c.status, STATUS_END_OF_FILE);
    ck_assert_status(WdfRequestGetStatus(s.req), STATUS_END_OF_FILE);
    ck_assert_uint_eq(WdfRequestGetInformation(s.req), 0);
    tu_completion_fini(&c);
    free(s.path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* IRQL                                                                 */
/* =================================================================== */

struct irql_probe {
    struct tu_completion c;
    KIRQL irql;
    NTSTATUS sync_status;
    ULONG_PTR sync_bytes;
    char buf[BLK];
};

static VOID irql_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                         WDFCONTEXT Context)
{
    struct irql_probe *p = Context;
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 0;
    p->irql = KeGetCurrentIrql();
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, p->buf, BLK);
    p->sync_bytes = 12345;
    p->sync_status = WdfIoTargetSendReadSynchronously(Target, NULL, &d, &off, NULL, &p->sync_bytes);
    tu_on_complete(Request, Target, Params, &p->c);
}

START_TEST(completion_routine_runs_at_dispatch_and_sync_send_there_fails)
{
    struct tu_env e;
    struct irql_probe *p = calloc(1, sizeof(*p));
    tu_env_init_backend(&e, _i);
    tu_completion_init(&p->c);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    struct sendable s;
    sendable_init(&e, &s);
    WdfRequestSetCompletionRoutine(s.req, irql_routine, p);
    ck_assert(WdfRequestSend(s.req, s.target, WDF_NO_SEND_OPTIONS));
    ck_assert_msg(tu_completion_wait(&p->c, WAIT_MS), "the routine did not finish (deadlock?)");
    ck_assert_int_eq(p->irql, DISPATCH_LEVEL);
    ck_assert_status(p->c.status, STATUS_SUCCESS);
    ck_assert_status(p->sync_status, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_uint_eq(p->sync_bytes, 0);
    ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* The same call at PASSIVE works. */
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = BLK;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, p->buf, BLK);
    ck_assert_status(WdfIoTargetSendReadSynchronously(s.target, NULL, &d, &off, NULL, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(p->buf, BLK, FILE_SEED, BLK));
    tu_completion_fini(&p->c);
    free(p);
    free(s.path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* parameters, information, delete in the routine                       */
/* =================================================================== */

START_TEST(get_parameters_describes_format)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(2 * BLK, NULL);
    WDF_REQUEST_PARAMETERS p;

    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeNoFormat);

    WDFMEMORY_OFFSET mo = { .BufferOffset = 512, .BufferLength = 1024 };
    LONGLONG off = 3 * BLK;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, &mo, &off), STATUS_SUCCESS);
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(req, &p);
    ck_assert_int_eq(p.Size, sizeof(p));
    ck_assert_int_eq(p.Type, WdfRequestTypeRead);
    ck_assert_uint_eq(p.Parameters.Read.Length, 1024);
    ck_assert_int_eq(p.Parameters.Read.DeviceOffset, 3 * BLK);

    off = 5 * BLK;
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_SUCCESS);
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeWrite);
    ck_assert_uint_eq(p.Parameters.Write.Length, 2 * BLK);
    ck_assert_int_eq(p.Parameters.Write.DeviceOffset, 5 * BLK);

    WDFMEMORY in = tu_make_memory(24, NULL);
    ck_assert_status(WdfIoTargetFormatRequestForIoctl(t, req, 0x2D1400, in, NULL, mem, NULL), STATUS_SUCCESS);
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(req, &p);
    ck_assert_int_eq(p.Type, WdfRequestTypeDeviceControl);
    ck_assert_uint_eq(p.Parameters.DeviceIoControl.IoControlCode, 0x2D1400);
    ck_assert_uint_eq(p.Parameters.DeviceIoControl.InputBufferLength, 24);
    ck_assert_uint_eq(p.Parameters.DeviceIoControl.OutputBufferLength, 2 * BLK);

    /* Wrong Size: untouched. */
    memset(&p, 0x5A, sizeof(p));
    p.Size = sizeof(p) - 2;
    WDF_REQUEST_PARAMETERS before = p;
    WdfRequestGetParameters(req, &p);
    ck_assert(memcmp(&p, &before, sizeof(p)) == 0);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(set_information_then_get_information)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    tu_driver_and_device(&driver, &device);
    WDFREQUEST req = tu_make_request(WDF_NO_HANDLE);
    ck_assert_uint_eq(WdfRequestGetInformation(req), 0);
    WdfRequestSetInformation(req, 4242);
    ck_assert_uint_eq(WdfRequestGetInformation(req), 4242);
    ck_assert_uint_eq(WdfRequestWdmGetIrp(req)->IoStatus.Information, 4242);
    WdfRequestSetInformation(req, (ULONG_PTR)-1);
    ck_assert_uint_eq(WdfRequestGetInformation(req), (ULONG_PTR)-1);
    reuse(req, STATUS_SUCCESS);
    ck_assert_uint_eq(WdfRequestGetInformation(req), 0);
    WdfObjectDelete(driver);
}
END_TEST

/* A request formatted for a file target has no IRP until one is asked
 * for (its send reads the format from the request); the IRP it gets then
 * holds that format, as if the format had written it. */
START_TEST(irp_asked_for_after_a_format_holds_that_format)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    WDFREQUEST req = tu_make_request(t);
    void *buf;
    WDFMEMORY mem = tu_make_memory(2 * BLK, &buf);

    WDFMEMORY_OFFSET mo = { .BufferOffset = BLK, .BufferLength = BLK };
    LONGLONG off = 3 * BLK;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, &mo, &off), STATUS_SUCCESS);
    PIRP irp = WdfRequestWdmGetIrp(req);
    ck_assert_ptr_nonnull(irp);
    PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(irp);
    ck_assert_uint_eq(s->MajorFunction, IRP_MJ_READ);
    ck_assert_uint_eq(s->Parameters.Read.Length, BLK);
    ck_assert_int_eq(s->Parameters.Read.ByteOffset.QuadPart, 3 * BLK);
    ck_assert_ptr_eq(irp->UserBuffer, (char *)buf + BLK);
    ck_assert_ptr_null(irp->MdlAddress);
    ck_assert_ptr_eq(s->FileObject, WdfIoTargetWdmGetTargetFileObject(t));
    ck_assert_ptr_eq(WdfRequestWdmGetIrp(req), irp); /* kept */
    /* Sent from its IRP now: the same read. */
    ck_assert_int_eq(send_sync(req, t), STATUS_SUCCESS);
    ck_assert_uint_eq(WdfRequestGetInformation(req), BLK);
    ck_assert(tu_pattern_matches((char *)buf + BLK, BLK, FILE_SEED, 3 * BLK));
    WdfObjectDelete(req);

    /* A write through, and an IOCTL's code and lengths. */
    req = tu_make_request(t);
    off = BLK;
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_SUCCESS);
    UwdfRequestSetWriteThrough(req, TRUE);
    s = IoGetNextIrpStackLocation(WdfRequestWdmGetIrp(req));
    ck_assert_uint_eq(s->MajorFunction, IRP_MJ_WRITE);
    ck_assert_uint_eq(s->Parameters.Write.Length, 2 * BLK);
    ck_assert_int_eq(s->Parameters.Write.ByteOffset.QuadPart, BLK);
    ck_assert_uint_eq(s->Flags & SL_WRITE_THROUGH, SL_WRITE_THROUGH);
    WdfObjectDelete(req);
    req = tu_make_request(t);
    WDFMEMORY in = tu_make_memory(24, NULL);
    ck_assert_status(WdfIoTargetFormatRequestForIoctl(t, req, 0x2D1400, in, NULL, mem, NULL), STATUS_SUCCESS);
    s = IoGetNextIrpStackLocation(WdfRequestWdmGetIrp(req));
    ck_assert_uint_eq(s->MajorFunction, IRP_MJ_DEVICE_CONTROL);
    ck_assert_uint_eq(s->Parameters.DeviceIoControl.IoControlCode, 0x2D1400);
    ck_assert_uint_eq(s->Parameters.DeviceIoControl.InputBufferLength, 24);
    ck_assert_uint_eq(s->Parameters.DeviceIoControl.OutputBufferLength, 2 * BLK);
    WdfObjectDelete(req);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* What a request without an IRP reports (status, information, completion
 * parameters) is what its IRP holds when one is asked for afterwards. */
START_TEST(irp_asked_for_after_a_completion_holds_its_io_status)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFMEMORY mem = tu_make_memory(BLK, NULL);

    /* A read at the end of the file: STATUS_END_OF_FILE, not zeros. */
    WDFREQUEST req = tu_make_request(t);
    LONGLONG off = FILE_SIZE;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    ck_assert_int_eq(send_sync(req, t), STATUS_END_OF_FILE);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_END_OF_FILE);
    PIRP irp = WdfRequestWdmGetIrp(req);
    ck_assert_status(irp->IoStatus.Status, STATUS_END_OF_FILE);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_END_OF_FILE);
    WdfObjectDelete(req);

    /* A read that moved half a block: its Information, then the status and
     * information the driver set on the reused request. */
    req = tu_make_request(t);
    off = FILE_SIZE - BLK / 2;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    ck_assert_int_eq(send_sync(req, t), STATUS_SUCCESS);
    WDF_REQUEST_COMPLETION_PARAMS cp;
    WDF_REQUEST_COMPLETION_PARAMS_INIT(&cp);
    WdfRequestGetCompletionParams(req, &cp);
    ck_assert_uint_eq(cp.IoStatus.Information, BLK / 2);
    ck_assert_uint_eq(WdfRequestGetInformation(req), BLK / 2);
    reuse(req, STATUS_DEVICE_BUSY);
    WdfRequestSetInformation(req, 77);
    irp = WdfRequestWdmGetIrp(req);
    ck_assert_status(irp->IoStatus.Status, STATUS_DEVICE_BUSY);
    ck_assert_uint_eq(irp->IoStatus.Information, 77);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_DEVICE_BUSY);
    ck_assert_uint_eq(WdfRequestGetInformation(req), 77);
    WdfObjectDelete(req);
    free(path);
    tu_env_fini(&e);
}
END_TEST

static atomic_int request_destroyed;

static VOID count_request_destroy(WDFOBJECT Object)
{
    atomic_fetch_add(&request_destroyed, 1);
}

static VOID delete_self_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                                WDFCONTEXT Context)
{
    struct tu_completion *c = Context;
    NTSTATUS status = Params->IoStatus.Status;
    ULONG_PTR info = Params->IoStatus.Information;
    WdfObjectDelete(Request);
    c->status = status;
    c->information = info;
    atomic_fetch_add(&c->calls, 1);
    KeSetEvent(&c->done, IO_NO_INCREMENT, FALSE);
}

START_TEST(delete_request_in_its_completion_routine_is_safe)
{
    struct tu_env e;
    struct tu_completion c;
    void *buf;
    atomic_store(&request_destroyed, 0);
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    for (int round = 0; round < 8; round++) {
        WDF_OBJECT_ATTRIBUTES a;
        WDF_OBJECT_ATTRIBUTES_INIT(&a);
        a.EvtDestroyCallback = count_request_destroy;
        WDFREQUEST req;
        ck_assert_status(WdfRequestCreate(&a, t, &req), STATUS_SUCCESS);
        LONGLONG off = (LONGLONG)(round % FILE_BLOCKS) * BLK;
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
        KeClearEvent(&c.done);
        WdfRequestSetCompletionRoutine(req, delete_self_routine, &c);
        ck_assert(WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
        ck_assert(tu_completion_wait(&c, WAIT_MS));
        ck_assert_status(c.status, STATUS_SUCCESS);
        ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, (uint64_t)off));
        /* Destroyed once the framework lets go of it, shortly after. */
        double t0 = tu_now_ms();
        while (atomic_load(&request_destroyed) < round + 1 && tu_now_ms() - t0 < WAIT_MS)
            tu_sleep_ms(1);
        ck_assert_int_eq(tu_load(&request_destroyed), round + 1);
    }
    ck_assert_int_eq(tu_ncalls(&c), 8);
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------- */

START_TEST(change_target_to_open_target_succeeds_and_closed_is_invalid_state)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET a = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFIOTARGET b = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(a);
    ck_assert_status(WdfRequestChangeTarget(req, b), STATUS_SUCCESS);
    WdfIoTargetClose(b);
    ck_assert_status(WdfRequestChangeTarget(req, b), STATUS_INVALID_DEVICE_STATE);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(change_target_with_driver_irp_too_small_is_request_not_accepted)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    PIRP irp = IoAllocateIrp(0, FALSE);
    ck_assert_ptr_nonnull(irp);
    WDFREQUEST req;
    ck_assert_status(WdfRequestCreateFromIrp(WDF_NO_OBJECT_ATTRIBUTES, irp, FALSE, &req), STATUS_SUCCESS);
    ck_assert_status(WdfRequestChangeTarget(req, t), STATUS_REQUEST_NOT_ACCEPTED);
    void *buf;
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, NULL), STATUS_REQUEST_NOT_ACCEPTED);
    WdfObjectDelete(req);
    IoFreeIrp(irp);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(get_io_target_after_target_deleted_does_not_touch_it)
{
    struct tu_env e;
    void *buf;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, NULL), STATUS_SUCCESS);
    WdfObjectDelete(t);
    /* The stale handle comes back; ASan would catch a read of the target. */
    ck_assert_ptr_eq(WdfRequestGetIoTarget(req), t);
    free(path);
    tu_env_fini(&e);
}
END_TEST

static Suite *request_suite(void)
{
    Suite *s = suite_create("request");
    TCase *tc;

    tc = tu_tcase(s, "create", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, create_without_target_has_irp);
    tcase_add_loop_test(tc, create_with_target_formats_and_sends, 0, TU_BACKENDS);
    tcase_add_test(tc, wrong_handle_type_is_invalid_handle_bugcheck);
    tcase_add_test(tc, deleted_request_handle_is_invalid_handle_bugcheck);
    tcase_add_loop_test(tc, change_target_to_open_target_succeeds_and_closed_is_invalid_state, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, change_target_with_driver_irp_too_small_is_request_not_accepted, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, get_io_target_after_target_deleted_does_not_touch_it, 0, TU_BACKENDS);

    tc = tu_tcase(s, "reuse", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, reuse_bad_size_is_invalid_parameter);
    tcase_add_test(tc, reuse_unknown_flags_is_invalid_parameter);
    tcase_add_test(tc, reuse_set_new_irp_on_created_request_is_invalid_state);
    tcase_add_loop_test(tc, reuse_set_new_irp_on_request_from_irp_installs_it, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_sets_io_status_to_given_status, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_clears_completion_routine, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_releases_memory_reference, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, delete_request_releases_memory_reference, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reformat_releases_memory_reference, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_resets_cancel_flag, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_in_flight_is_invalid_device_request, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_in_completion_routine_10000_ios_one_request, 0, TU_BACKENDS);

    tc = tu_tcase(s, "completion", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, completion_params_filled_for_read_and_write, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, completion_params_last_until_the_format_ends, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, get_completion_params_wrong_size_leaves_struct_untouched, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, completion_routine_runs_at_dispatch_and_sync_send_there_fails, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, delete_request_in_its_completion_routine_is_safe, 0, TU_BACKENDS);

    tc = tu_tcase(s, "send", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, send_options_bad_size_is_invalid_parameter, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_options_unknown_flags_is_invalid_parameter, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_and_forget_on_created_request_is_invalid_device_state, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_unformatted_is_request_not_accepted, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_in_flight_is_invalid_device_request, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_in_flight_with_verifier_is_request_already_sent_bugcheck, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_synchronous_runs_routine_and_sets_status, 0, TU_BACKENDS);

    tc = tu_tcase(s, "parameters", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, get_parameters_describes_format, 0, TU_BACKENDS);
    tcase_add_test(tc, set_information_then_get_information);
    tcase_add_loop_test(tc, irp_asked_for_after_a_format_holds_that_format, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, irp_asked_for_after_a_completion_holds_its_io_status, 0, TU_BACKENDS);
    return s;
}

int main(void)
{
    return tu_main(request_suite(), "test_request");
}
