/* Verifier rules (UwdfSetVerifier / UWDF_VERIFIER=1): each rule is broken
 * once, and the bug-check callback must fire with the WDF code and a reason
 * that names the rule and the DDI. Where the verifier only adds the bug
 * check, the same misuse with the verifier off is checked to give the
 * documented status and no bug check, so the rule is the verifier's doing.
 * The synchronous-send-without-timeout rule is a warning: its log line is
 * read back from stderr. I/O runs once per engine against a real file. */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLK 4096
#define FILE_BLOCKS 4
#define FILE_SIZE (FILE_BLOCKS * BLK)
#define FILE_SEED 41u
#define WAIT_MS 10000
#define STALL_MS 300 /* long enough to act on a request while it is in flight */
#define TEST_TIMEOUT_SEC 60

/* The environment on one engine: a file target (FILE_SEED) and a BLK
 * memory object (e->mem, e->buf). */
static void env_init(struct tu_env *e, int backend)
{
    tu_env_init_backend(e, backend);
    tu_env_open_file(e, FILE_SIZE, FILE_SEED, GENERIC_READ | GENERIC_WRITE, 0);
    tu_env_memory(e, BLK);
}

/* One bug check with code, and a reason naming rule and ddi. */
static void expect_rule(ULONG code, const char *rule, const char *ddi)
{
    ck_assert_msg(strstr(tu_last_bugcheck.reason, ddi) != NULL, "reason '%s' lacks the DDI '%s'",
                  tu_last_bugcheck.reason, ddi);
    tu_expect_bugcheck_reason(code, rule);
}

static void reuse(WDFREQUEST r)
{
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
}

static void format_read(struct tu_env *v, WDFREQUEST r)
{
    LONGLONG off = BLK;
    ck_assert_status(WdfIoTargetFormatRequestForRead(v->target, r, v->mem, NULL, &off), STATUS_SUCCESS);
}

/* Sends r asynchronously and waits for its completion; returns its status. */
static NTSTATUS send_wait(struct tu_env *v, WDFREQUEST r)
{
    struct tu_completion c;
    tu_completion_init(&c);
    WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
    ck_assert(WdfRequestSend(r, v->target, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&c, WAIT_MS));
    NTSTATUS s = c.status;
    tu_completion_fini(&c);
    return s;
}

/* ---- KmdfIrql: a PASSIVE-only DDI from a completion routine ---- */

struct irql_probe {
    struct tu_completion c;
    WDFIOTARGET target;
    NTSTATUS inner;
    int bugchecks;
    char reason[512];
};

static void irql_routine(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT ctx)
{
    struct irql_probe *pr = ctx;
    unsigned char buf[BLK];
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, sizeof(buf));
    pr->inner = WdfIoTargetSendReadSynchronously(pr->target, NULL, &d, &off, NULL, NULL);
    /* The record is read here, on the completion thread, before the test
     * thread is woken. */
    pr->bugchecks = tu_last_bugcheck.count;
    snprintf(pr->reason, sizeof(pr->reason), "%s", tu_last_bugcheck.reason);
    tu_on_complete(r, t, p, &pr->c);
}

START_TEST(kmdf_irql_sync_send_from_completion_routine)
{
    struct tu_env v;
    struct irql_probe pr = { 0 };
    env_init(&v, _i);
    UwdfSetVerifier(TRUE);
    pr.target = v.target;
    tu_completion_init(&pr.c);
    WDFREQUEST r = tu_make_request(v.target);
    format_read(&v, r);
    WdfRequestSetCompletionRoutine(r, irql_routine, &pr);
    ck_assert(WdfRequestSend(r, v.target, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&pr.c, WAIT_MS));
    ck_assert_status(pr.c.status, STATUS_SUCCESS);
    ck_assert_status(pr.inner, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_int_eq(pr.bugchecks, 1);
    ck_assert_msg(strstr(pr.reason, "WdfIoTargetSendReadSynchronously"), "%s", pr.reason);
    expect_rule(WDF_VERIFIER_IRQL_MISMATCH, "rule KmdfIrql", "WdfIoTargetSendReadSynchronously");
    ck_assert_uint_eq(tu_last_bugcheck.count, 0);
    tu_completion_fini(&pr.c);
    tu_env_fini(&v);
}
END_TEST

/* ---- InvalidReqAccess: a request used after deletion ---- */

START_TEST(invalid_req_access_after_delete)
{
    struct tu_env v;
    env_init(&v, _i);
    UwdfSetVerifier(TRUE);
    WDFREQUEST r = tu_make_request(v.target);
    WdfObjectDelete(r);
    ck_assert_status(WdfRequestGetStatus(r), STATUS_INVALID_HANDLE);
    ck_assert_uint_eq(tu_last_bugcheck.p[1], (ULONG_PTR)r);
    expect_rule(WDF_INVALID_HANDLE, "rule InvalidReqAccess", "WdfRequestGetStatus");
    /* A send of the deleted request reports the rule at WdfRequestSend. */
    ck_assert(!WdfRequestSend(r, v.target, WDF_NO_SEND_OPTIONS));
    expect_rule(WDF_INVALID_HANDLE, "rule InvalidReqAccess", "WdfRequestSend");
    tu_env_fini(&v);
}
END_TEST

/* ---- RequestFormattedValid: send of an unformatted request ---- */

START_TEST(request_formatted_valid_unformatted_send)
{
    struct tu_env v;
    env_init(&v, _i);
    WDFREQUEST r = tu_make_request(v.target);
    /* Verifier off: the documented status only. */
    ck_assert(!WdfRequestSend(r, v.target, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(r), STATUS_REQUEST_NOT_ACCEPTED);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    reuse(r);
    UwdfSetVerifier(TRUE);
    ck_assert(!WdfRequestSend(r, v.target, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(r), STATUS_REQUEST_NOT_ACCEPTED);
    expect_rule(WDF_REQUEST_FATAL_ERROR, "rule RequestFormattedValid", "WdfRequestSend");
    WdfObjectDelete(r);
    tu_env_fini(&v);
}
END_TEST

/* ---- ReqSendFail: a failed send must be handled before the next send ----
 * The port's reading of the rule for driver-created requests: after
 * WdfRequestSend returned FALSE, WdfRequestReuse, a new format or
 * WdfObjectDelete handles the request; sending it again as it is breaks the
 * rule, reported at that send (which then proceeds). */

static void fail_send(struct tu_env *v, WDFREQUEST r)
{
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    o.Size = sizeof(o) + 1;
    ck_assert(!WdfRequestSend(r, v->target, &o));
    ck_assert_status(WdfRequestGetStatus(r), STATUS_INVALID_PARAMETER);
}

START_TEST(req_send_fail_resent_without_handling)
{
    struct tu_env v;
    env_init(&v, _i);
    WDFREQUEST r = tu_make_request(v.target);
    UwdfSetVerifier(TRUE);
    format_read(&v, r);
    fail_send(&v, r);
    ck_assert_int_eq(tu_last_bugcheck.count, 0); /* the failure itself is no violation */
    memset(v.buf, 0, BLK);
    ck_assert_status(send_wait(&v, r), STATUS_SUCCESS);
    expect_rule(WDF_REQUEST_FATAL_ERROR, "rule ReqSendFail", "WdfRequestSend");
    ck_assert(tu_pattern_matches(v.buf, BLK, FILE_SEED, BLK));

    /* Handled by a new format, or by reuse + format: no report. */
    format_read(&v, r);
    fail_send(&v, r);
    reuse(r);
    format_read(&v, r);
    ck_assert_status(send_wait(&v, r), STATUS_SUCCESS);
    fail_send(&v, r);
    format_read(&v, r);
    ck_assert_status(send_wait(&v, r), STATUS_SUCCESS);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);

    /* Verifier off: no report. */
    UwdfSetVerifier(FALSE);
    fail_send(&v, r);
    ck_assert_status(send_wait(&v, r), STATUS_SUCCESS);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    /* Deleting a request whose send failed handles it. */
    UwdfSetVerifier(TRUE);
    fail_send(&v, r);
    WdfObjectDelete(r);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    tu_env_fini(&v);
}
END_TEST

/* A send that failed while nothing was formatted (never formatted, or
 * reused since) is handled the same way: reuse or a format clears the mark
 * though they find no format to drop. */
START_TEST(req_send_fail_of_an_unformatted_request_is_handled_by_reuse_or_format)
{
    struct tu_env v;
    env_init(&v, _i);
    WDFREQUEST r = tu_make_request(v.target);
    UwdfSetVerifier(TRUE);
    fail_send(&v, r); /* never formatted */
    reuse(r);
    format_read(&v, r);
    ck_assert_status(send_wait(&v, r), STATUS_SUCCESS);
    reuse(r);
    fail_send(&v, r); /* reused, not formatted again */
    format_read(&v, r);
    ck_assert_status(send_wait(&v, r), STATUS_SUCCESS);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    UwdfSetVerifier(FALSE);
    WdfObjectDelete(r);
    tu_env_fini(&v);
}
END_TEST

/* ---- REQUEST_ALREADY_SENT: reuse while the request is sent ---- */

START_TEST(reuse_while_sent_is_request_already_sent)
{
    struct tu_env v;
    struct tu_completion c;
    env_init(&v, _i);
    UwdfSetVerifier(TRUE);
    WDFREQUEST r = tu_make_request(v.target);
    format_read(&v, r);
    tu_completion_init(&c);
    WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
    UwdfFaultInjectStall(STALL_MS);
    ck_assert(WdfRequestSend(r, v.target, WDF_NO_SEND_OPTIONS));
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(r, &rp), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_uint_eq(tu_last_bugcheck.p[1], WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT);
    expect_rule(WDF_REQUEST_FATAL_ERROR, "REQUEST_ALREADY_SENT", "WdfRequestReuse");
    /* The refused reuse left the request alone: it completes once, intact. */
    ck_assert(tu_completion_wait(&c, WAIT_MS));
    UwdfFaultInjectStall(0);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_int_eq(tu_ncalls(&c), 1);
    ck_assert(tu_pattern_matches(v.buf, BLK, FILE_SEED, BLK));
    tu_completion_fini(&c);
    reuse(r);
    WdfObjectDelete(r);
    tu_env_fini(&v);
}
END_TEST

/* ---- FltCallbackDataReuse: reuse / free before the callback ran ---- */

struct flt_once {
    KEVENT done;
    atomic_int calls;
};

static void flt_once_cb(PFLT_CALLBACK_DATA d, PFLT_CONTEXT ctx)
{
    struct flt_once *o = ctx;
    (void)d;
    atomic_fetch_add(&o->calls, 1);
    KeSetEvent(&o->done, 0, FALSE);
}

START_TEST(flt_reuse_and_free_before_callback)
{
    struct tu_env v;
    struct tu_flt f;
    struct flt_once o;
    env_init(&v, _i);
    UwdfSetVerifier(TRUE);
    tu_flt_open(&v, v.path, &f);
    KeInitializeEvent(&o.done, NotificationEvent, FALSE);
    atomic_init(&o.calls, 0);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(f.instance, f.fo, &d), STATUS_SUCCESS);
    d->Iopb->MajorFunction = IRP_MJ_READ;
    d->Iopb->Parameters.Read.Length = BLK;
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = 0;
    d->Iopb->Parameters.Read.ReadBuffer = v.buf;
    UwdfFaultInjectStall(STALL_MS);
    ck_assert_status(FltPerformAsynchronousIo(d, flt_once_cb, &o), STATUS_PENDING);
    FltReuseCallbackData(d);
    expect_rule(WDF_VERIFIER_FATAL_ERROR, "rule FltCallbackDataReuse", "FltReuseCallbackData");
    FltFreeCallbackData(d);
    expect_rule(WDF_VERIFIER_FATAL_ERROR, "rule FltCallbackDataReuse", "FltFreeCallbackData");
    LARGE_INTEGER to = { .QuadPart = -(LONGLONG)WAIT_MS * 10000 };
    ck_assert_status(KeWaitForSingleObject(&o.done, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    UwdfFaultInjectStall(0);
    tu_sleep_ms(5); /* let the callback return */
    ck_assert_int_eq(atomic_load(&o.calls), 1);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(v.buf, BLK, FILE_SEED, 0));
    FltFreeCallbackData(d);
    UwdfKeDestroyEvent(&o.done);
    tu_flt_close(&f);
    tu_env_fini(&v);
}
END_TEST

/* ---- SyncReqSend, SyncReqSend2: a warning in the log, no bug check ---- */

/* Runs a synchronous read with opts while stderr goes to a file; returns
 * what was written there (malloc'd). */
static char *stderr_of_sync_read(struct tu_env *v, PWDF_REQUEST_SEND_OPTIONS opts, NTSTATUS *status)
{
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 2 * BLK;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, v->mem, NULL);
    tu_stderr_begin();
    *status = WdfIoTargetSendReadSynchronously(v->target, NULL, &d, &off, opts, NULL);
    return tu_stderr_end();
}

START_TEST(sync_req_send_without_timeout_is_a_warning)
{
    struct tu_env v;
    NTSTATUS s;
    env_init(&v, _i);
    UwdfSetVerifier(TRUE);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_TIMEOUT);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(10));
    char *log = stderr_of_sync_read(&v, &o, &s);
    ck_assert_status(s, STATUS_SUCCESS);
    ck_assert_msg(strstr(log, "SyncReqSend") == NULL, "warned with a timeout: %s", log);
    free(log);
    log = stderr_of_sync_read(&v, NULL, &s);
    ck_assert_status(s, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(v.buf, BLK, FILE_SEED, 2 * BLK));
    ck_assert_msg(strstr(log, "SyncReqSend") && strstr(log, "WdfIoTargetSendReadSynchronously"), "log: '%s'", log);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    free(log);
    tu_env_fini(&v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verifier");
    TCase *tc = tu_tcase(s, "rules", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, kmdf_irql_sync_send_from_completion_routine, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, invalid_req_access_after_delete, 0, 1);
    tcase_add_loop_test(tc, request_formatted_valid_unformatted_send, 0, 1);
    tcase_add_loop_test(tc, req_send_fail_resent_without_handling, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, req_send_fail_of_an_unformatted_request_is_handled_by_reuse_or_format, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_while_sent_is_request_already_sent, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, flt_reuse_and_free_before_callback, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_req_send_without_timeout_is_a_warning, 0, 1);
    return tu_main(s, "test_verifier");
}
