/* Request timeouts, cancellation of sent requests and engine selection.
 *
 * A read that never finishes by itself is the raw material of most tests
 * here. There are two kinds: a FIFO read under io_uring (a writer exists,
 * nothing is written), where the kernel's linked timeout and
 * IORING_OP_ASYNC_CANCEL do the work, and an O_DIRECT read of a regular file
 * held back by the stall injector (UwdfFaultInjectStall), where the
 * framework timer does, on every engine. Tests that must hold on both paths
 * loop over stuck_sources[]. */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/internal.h"

#define FILE_SIZE (64 * 1024)
#define FILE_SEED 29u
#define READ_LEN 4096
#define CANARY 0xA5
/* A stall long enough that only a timeout or a cancel ends the read. */
#define STALL_FOREVER_MS 5000u
/* Upper bound for "promptly" (cancel, immediate timeouts). */
#define PROMPT_MS 500.0
/* How late a timeout may fire (timer thread and engine hand-offs), beyond
 * how late a control timer with the same deadline woke (tu_control_timer). */
#define LATE_MS 150.0
/* How long a test waits for a completion that must come. */
#define WAIT_LIMIT_MS 5000.0
/* A timer that fires in time is never early; this only absorbs the
 * rounding of two double-precision clock readings. */
#define EARLY_SLACK_MS 0.5

/* ---- fixture: tu_fixture_setup / tu_fixture_teardown, and tests start
 * without UWDF_BACKEND (env_init sets it for the test's own targets) ---- */

static void backend_unset(void)
{
    unsetenv("UWDF_BACKEND");
}

/* ---- per-test environment: driver, device, directory, one target ---- */

/* A test's environment (tu_env) on one engine (NULL: UWDF_BACKEND unset),
 * with e->buf: READ_LEN bytes of CANARY, page-aligned for O_DIRECT. */
static void env_init(struct tu_env *e, const char *backend)
{
    tu_env_init_engine(e, backend);
    memset(tu_env_memory(e, READ_LEN), CANARY, READ_LEN);
}

static void env_open_file(struct tu_env *e, bool direct)
{
    tu_env_open_file(e, FILE_SIZE, FILE_SEED, GENERIC_READ, direct ? FILE_NO_INTERMEDIATE_BUFFERING : 0);
}

static void env_done(struct tu_env *e)
{
    UwdfFaultInjectStall(0);
    tu_env_fini(e);
    unsetenv("UWDF_BACKEND");
}

/* Reads that only a timeout or a cancel can end. */
struct stuck_source {
    const char *backend;
    bool fifo; /* else a stalled O_DIRECT read of a regular file */
    const char *label;
};

static const struct stuck_source stuck_sources[] = {
    { "io_uring", true, "io_uring FIFO read (kernel linked timeout)" },
    { "libaio", false, "libaio read held by the stall injector (framework timer)" },
    { "io_uring", false, "io_uring read held by the stall injector (framework timer)" },
    { "null", false, "null-engine read held by the stall injector (framework timer)" },
};
#define N_STUCK ((int)(sizeof(stuck_sources) / sizeof(stuck_sources[0])))

static void env_open_stuck(struct tu_env *e, const struct stuck_source *src)
{
    if (src->fifo) {
        tu_env_open_fifo(e);
    } else {
        env_open_file(e, true);
        UwdfFaultInjectStall(STALL_FOREVER_MS);
    }
    ck_assert_str_eq(UwdfIoTargetGetBackendName(e->target), src->backend);
}

/* Engines that read regular files, for behaviour every engine must share. */
static const char *const all_backends[] = { "io_uring", "libaio", "null" };
#define N_BACKENDS ((int)(sizeof(all_backends) / sizeof(all_backends[0])))

/* The null engine reports every read as done without writing the buffer. */
static bool is_null_engine(const char *backend)
{
    return strcmp(backend, "null") == 0;
}

/* ---- buffers and requests ---- */

static WDFMEMORY make_memory(size_t len, unsigned char **buf)
{
    WDFMEMORY mem;
    void *p;
    ck_assert_status(WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, len, &mem, &p),
                     STATUS_SUCCESS);
    memset(p, CANARY, len);
    *buf = p;
    return mem;
}

static bool all_canary(const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != CANARY)
            return false;
    return true;
}

static bool matches_file(const unsigned char *buf, size_t len, uint64_t off)
{
    unsigned char *want = malloc(len);
    ck_assert_ptr_nonnull(want);
    tu_fill_pattern(want, len, FILE_SEED, off);
    bool same = memcmp(want, buf, len) == 0;
    free(want);
    return same;
}

static WDFREQUEST make_request(const struct tu_env *e)
{
    WDFREQUEST req;
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, e->target, &req), STATUS_SUCCESS);
    return req;
}

/* FIFOs are read at the current position; files at offset 0. */
static void format_read(const struct tu_env *e, WDFREQUEST req, WDFMEMORY mem, PWDFMEMORY_OFFSET off)
{
    LONGLONG zero = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(e->target, req, mem, off,
                                                     e->fifo_fd >= 0 ? NULL : &zero),
                     STATUS_SUCCESS);
}

static WDF_REQUEST_SEND_OPTIONS timeout_options(LONGLONG timeout)
{
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, timeout);
    return o;
}

/* Synchronous read of len bytes into buf; returns the status and the
 * elapsed milliseconds. */
static NTSTATUS sync_read(const struct tu_env *e, void *buf, size_t len, LONGLONG timeout, bool timed,
                          ULONG_PTR *bytes, double *elapsed_ms)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(timeout);
    LONGLONG zero = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, (ULONG)len);
    if (!timed)
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    double t0 = tu_now_ms();
    NTSTATUS s = WdfIoTargetSendReadSynchronously(e->target, NULL, &d, e->fifo_fd >= 0 ? NULL : &zero,
                                                  &o, bytes);
    if (elapsed_ms)
        *elapsed_ms = tu_now_ms() - t0;
    return s;
}

/* ---- completion records ---- */

struct done_rec {
    atomic_int calls;
    NTSTATUS status;
    ULONG_PTR information;
    double t_sent, t_done;
};

static VOID record_completion(WDFREQUEST Request, WDFIOTARGET Target,
                              PWDF_REQUEST_COMPLETION_PARAMS Params, WDFCONTEXT Context)
{
    struct done_rec *d = Context;
    (void)Request;
    (void)Target;
    d->t_done = tu_now_ms();
    d->status = Params->IoStatus.Status;
    d->information = Params->IoStatus.Information;
    atomic_fetch_add(&d->calls, 1); /* publishes the fields above */
}

static void rec_init(struct done_rec *d)
{
    memset(d, 0, sizeof(*d));
    atomic_init(&d->calls, 0);
}

static void sleep_ms(double ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
                           .tv_nsec = (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Polls: independent of the framework's own event implementation. */
static bool wait_done(struct done_rec *d, double limit_ms)
{
    double end = tu_now_ms() + limit_ms;
    while (atomic_load(&d->calls) == 0) {
        if (tu_now_ms() > end)
            return false;
        sleep_ms(1);
    }
    return true;
}

static void send_async(const struct tu_env *e, WDFREQUEST req, struct done_rec *d,
                       PWDF_REQUEST_SEND_OPTIONS options)
{
    WdfRequestSetCompletionRoutine(req, record_completion, d);
    d->t_sent = tu_now_ms();
    ck_assert_msg(WdfRequestSend(req, e->target, options), "WdfRequestSend failed: %s",
                  tu_status_name(WdfRequestGetStatus(req)));
}

/* The request completed exactly once with want, even some time later. */
static void expect_single_completion(struct done_rec *d, NTSTATUS want, const char *label)
{
    ck_assert_msg(wait_done(d, WAIT_LIMIT_MS), "%s: no completion within %.0f ms", label,
                  WAIT_LIMIT_MS);
    sleep_ms(50);
    ck_assert_msg(atomic_load(&d->calls) == 1, "%s: completion routine ran %d times", label,
                  atomic_load(&d->calls));
    ck_assert_status_msg(d->status, want, "%s", label);
}

/* The request on the FIFO completed: its read must be gone from the kernel,
 * so data written now stays in the FIFO and never reaches the buffer. */
static void expect_fifo_read_gone(const struct tu_env *e, const unsigned char *buf, size_t len)
{
    static const unsigned char msg[16] = "sixteen bytes!!";
    unsigned char probe[64];
    if (e->fifo_fd < 0)
        return;
    ck_assert_int_eq(write(e->fifo_fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
    sleep_ms(100);
    ck_assert_msg(all_canary(buf, len), "buffer written after the request completed");
    ck_assert_int_eq(read(e->fifo_fd, probe, sizeof(probe)), (ssize_t)sizeof(msg));
    ck_assert_mem_eq(probe, msg, sizeof(msg));
}

/* ==== 1-3: a read that never finishes times out ==== */

START_TEST(sync_read_from_fifo_times_out_under_io_uring)
{
    struct tu_env e;
    unsigned char buf[64];
    ULONG_PTR bytes = 123;
    double ms;

    env_init(&e, "io_uring");
    tu_env_open_fifo(&e);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(e.target), "io_uring");
    memset(buf, CANARY, sizeof(buf));

    NTSTATUS s = sync_read(&e, buf, sizeof(buf), WDF_REL_TIMEOUT_IN_MS(200), true, &bytes, &ms);
    ck_assert_status(s, STATUS_IO_TIMEOUT);
    ck_assert_msg(ms >= 190 && ms < 1000, "timed out after %.1f ms, want 200", ms);
    ck_assert_uint_eq(bytes, 0);

    expect_fifo_read_gone(&e, buf, sizeof(buf));
    env_done(&e);
}
END_TEST

START_TEST(async_read_from_fifo_times_out_under_io_uring)
{
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;

    env_init(&e, "io_uring");
    tu_env_open_fifo(&e);
    rec_init(&d);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(WDF_REL_TIMEOUT_IN_MS(200));
    send_async(&e, req, &d, &o);

    expect_single_completion(&d, STATUS_IO_TIMEOUT, "FIFO read");
    double ms = d.t_done - d.t_sent;
    ck_assert_msg(ms >= 190 && ms < 1000, "timed out after %.1f ms, want 200", ms);
    ck_assert_uint_eq(d.information, 0);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_IO_TIMEOUT);
    expect_fifo_read_gone(&e, buf, READ_LEN);
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

START_TEST(absolute_timeout_expires_at_that_system_time)
{
    const struct stuck_source *src = &stuck_sources[_i];
    struct tu_env e;
    LARGE_INTEGER now;
    ULONG_PTR bytes;

    env_init(&e, src->backend);
    unsigned char *buf = e.buf;
    env_open_stuck(&e, src);
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 300);
    double t0 = tu_now_ms();
    KeQuerySystemTime(&now);
    LONGLONG deadline = now.QuadPart + 300 * WDF_TIMEOUT_TO_MS;
    ck_assert_int_gt(deadline, 0); /* positive: absolute NT time */
    NTSTATUS s = sync_read(&e, buf, READ_LEN, deadline, true, &bytes, NULL);
    double ms = tu_now_ms() - t0;
    ck_assert_status_msg(s, STATUS_IO_TIMEOUT, "%s", src->label);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(ms >= 300 - EARLY_SLACK_MS && ms < 300 + LATE_MS + late,
                  "%s: timed out after %.1f ms, want 300 (control timer %.1f ms late)", src->label, ms, late);
    env_done(&e);
}
END_TEST

/* ==== 4: zero means no timeout ==== */

START_TEST(zero_timeout_with_timeout_flag_means_no_timeout)
{
    const struct stuck_source *src = &stuck_sources[_i];
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;

    env_init(&e, src->backend);
    env_open_stuck(&e, src);
    rec_init(&d);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(0);
    ck_assert(o.Flags & WDF_REQUEST_SEND_OPTION_TIMEOUT);
    send_async(&e, req, &d, &o);

    sleep_ms(300);
    ck_assert_msg(atomic_load(&d.calls) == 0, "%s: completed with %s although nothing timed it",
                  src->label, tu_status_name(d.status));
    double t0 = tu_now_ms();
    ck_assert(WdfRequestCancelSentRequest(req));
    expect_single_completion(&d, STATUS_CANCELLED, src->label);
    ck_assert_msg(d.t_done - t0 < PROMPT_MS, "%s: cancel took %.1f ms", src->label, d.t_done - t0);
    expect_fifo_read_gone(&e, buf, READ_LEN);
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

/* ==== 5-6: the stall injector ==== */

START_TEST(stalled_read_times_out_then_succeeds_without_the_stall)
{
    const char *backend = all_backends[_i];
    struct tu_env e;
    ULONG_PTR bytes = 0;
    double ms;

    env_init(&e, backend);
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(e.target), backend);
    UwdfFaultInjectStall(2000);
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 200);
    NTSTATUS s = sync_read(&e, buf, READ_LEN, WDF_REL_TIMEOUT_IN_MS(200), true, &bytes, &ms);
    ck_assert_status_msg(s, STATUS_IO_TIMEOUT, "%s", backend);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(ms >= 190 && ms < 200 + LATE_MS + late,
                  "%s: timed out after %.1f ms, want 200 (stall 2000; control timer %.1f ms late)", backend, ms,
                  late);

    UwdfFaultInjectStall(0);
    memset(buf, CANARY, READ_LEN);
    s = sync_read(&e, buf, READ_LEN, WDF_REL_TIMEOUT_IN_MS(200), true, &bytes, &ms);
    ck_assert_status_msg(s, STATUS_SUCCESS, "%s: second read", backend);
    ck_assert_uint_eq(bytes, READ_LEN);
    ck_assert_msg(ms < PROMPT_MS, "%s: unstalled read took %.1f ms", backend, ms);
    if (is_null_engine(backend))
        ck_assert_msg(all_canary(buf, READ_LEN), "the null engine wrote the buffer");
    else
        ck_assert_msg(matches_file(buf, READ_LEN, 0), "%s: wrong data", backend);
    env_done(&e);
}
END_TEST

START_TEST(stalled_read_without_timeout_succeeds_after_the_stall)
{
    const char *backend = all_backends[_i];
    struct tu_env e;
    ULONG_PTR bytes = 0;
    double ms;

    env_init(&e, backend);
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    UwdfFaultInjectStall(150);
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 150);
    NTSTATUS s = sync_read(&e, buf, READ_LEN, 0, false, &bytes, &ms);
    ck_assert_status_msg(s, STATUS_SUCCESS, "%s", backend);
    ck_assert_uint_eq(bytes, READ_LEN);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(ms >= 150 - EARLY_SLACK_MS && ms < 150 + LATE_MS + late,
                  "%s: completed after %.1f ms, stall 150 (control timer %.1f ms late)", backend, ms, late);
    if (!is_null_engine(backend))
        ck_assert_msg(matches_file(buf, READ_LEN, 0), "%s: wrong data", backend);
    env_done(&e);
}
END_TEST

/* The timer fires (or the cancel comes) while the kernel still has the read
 * and cannot stop it; when the read comes back, the injector must honour
 * that cancel rather than hold the request for the whole stall. */
START_TEST(stalled_read_with_timeout_shorter_than_the_io_times_out_at_once)
{
    const char *backend = all_backends[_i];
    struct tu_env e;
    ULONG_PTR bytes;
    double ms;

    env_init(&e, backend);
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    UwdfFaultInjectStall(2000);
    for (int k = 0; k < 5; k++) {
        NTSTATUS s = sync_read(&e, buf, READ_LEN, WDF_REL_TIMEOUT_IN_US(1 + 20 * k), true, &bytes, &ms);
        ck_assert_status_msg(s, STATUS_IO_TIMEOUT, "%s, %d us", backend, 1 + 20 * k);
        ck_assert_msg(ms < PROMPT_MS, "%s: a %d us timeout took %.1f ms (stall 2000)", backend,
                      1 + 20 * k, ms);
    }
    env_done(&e);
}
END_TEST

START_TEST(cancel_right_after_send_is_honoured_by_the_stall)
{
    const char *backend = all_backends[_i];
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;

    env_init(&e, backend);
    env_open_file(&e, true);
    UwdfFaultInjectStall(2000);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    WDF_REQUEST_REUSE_PARAMS rp;
    for (int k = 0; k < 5; k++) {
        rec_init(&d);
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_status(WdfRequestReuse(req, &rp), STATUS_SUCCESS);
        format_read(&e, req, mem, NULL);
        send_async(&e, req, &d, WDF_NO_SEND_OPTIONS);
        ck_assert_msg(WdfRequestCancelSentRequest(req), "%s: cancel returned FALSE", backend);
        expect_single_completion(&d, STATUS_CANCELLED, backend);
        ck_assert_msg(d.t_done - d.t_sent < PROMPT_MS, "%s: cancel took %.1f ms (stall 2000)", backend,
                      d.t_done - d.t_sent);
    }
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

/* ==== 7: WdfRequestCancelSentRequest ==== */

START_TEST(cancel_sent_request_completes_it_cancelled_not_timed_out)
{
    const struct stuck_source *src = &stuck_sources[_i];
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;

    env_init(&e, src->backend);
    env_open_stuck(&e, src);
    rec_init(&d);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    /* A timeout is armed but is not what ends the request. */
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(WDF_REL_TIMEOUT_IN_SEC(10));
    send_async(&e, req, &d, &o);
    /* Long enough for a stalled read to have left the kernel. */
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&d.calls), 0);

    double t0 = tu_now_ms();
    ck_assert_msg(WdfRequestCancelSentRequest(req), "%s: cancel returned FALSE", src->label);
    expect_single_completion(&d, STATUS_CANCELLED, src->label);
    ck_assert_msg(d.t_done - t0 < PROMPT_MS, "%s: cancel took %.1f ms", src->label, d.t_done - t0);
    ck_assert_uint_eq(d.information, 0);
    expect_fifo_read_gone(&e, buf, READ_LEN);
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

START_TEST(cancel_of_completed_request_returns_false)
{
    const char *backend = all_backends[_i];
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;

    env_init(&e, backend);
    env_open_file(&e, false);
    rec_init(&d);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    send_async(&e, req, &d, WDF_NO_SEND_OPTIONS);
    expect_single_completion(&d, STATUS_SUCCESS, backend);

    ck_assert(!WdfRequestCancelSentRequest(req));
    sleep_ms(50);
    ck_assert_int_eq(atomic_load(&d.calls), 1);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_SUCCESS);
    ck_assert(is_null_engine(backend) || matches_file(buf, READ_LEN, 0));
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

START_TEST(cancel_before_send_returns_false_and_sticks_until_reuse)
{
    const char *backend = all_backends[_i];
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_MEMORY_DESCRIPTOR desc;
    LONGLONG zero = 0;
    ULONG_PTR bytes = 99;

    env_init(&e, backend);
    env_open_file(&e, false);
    rec_init(&d);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    ck_assert(!WdfRequestCancelSentRequest(req));

    /* WDF's SubmitLocked sees the sticky cancel and fails the send itself:
     * FALSE, the status in the request, no completion routine. */
    WdfRequestSetCompletionRoutine(req, record_completion, &d);
    ck_assert(!WdfRequestSend(req, e.target, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_CANCELLED);
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&desc, mem, NULL);
    ck_assert_status(WdfIoTargetSendReadSynchronously(e.target, req, &desc, &zero, NULL, &bytes),
                     STATUS_CANCELLED);
    ck_assert_uint_eq(bytes, 0);
    sleep_ms(50);
    ck_assert_int_eq(atomic_load(&d.calls), 0);
    ck_assert(all_canary(buf, READ_LEN));

    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(req, &rp), STATUS_SUCCESS);
    format_read(&e, req, mem, NULL);
    send_async(&e, req, &d, WDF_NO_SEND_OPTIONS);
    expect_single_completion(&d, STATUS_SUCCESS, backend);
    ck_assert_uint_eq(d.information, READ_LEN);
    ck_assert(is_null_engine(backend) || matches_file(buf, READ_LEN, 0));
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

/* ==== 8: the I/O wins the race ==== */

START_TEST(fast_read_beats_its_timeout_and_completes_once)
{
    const char *backend = all_backends[_i];
    bool null_engine = is_null_engine(backend);
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;
    ULONG_PTR bytes = 0;
    double ms;

    env_init(&e, backend);
    env_open_file(&e, true);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);

    /* A generous timeout: the result is the read's, at once. */
    NTSTATUS s = sync_read(&e, buf, READ_LEN, WDF_REL_TIMEOUT_IN_SEC(5), true, &bytes, &ms);
    ck_assert_status_msg(s, STATUS_SUCCESS, "%s", backend);
    ck_assert_uint_eq(bytes, READ_LEN);
    ck_assert_msg(ms < PROMPT_MS, "%s: took %.1f ms", backend, ms);
    ck_assert(null_engine || matches_file(buf, READ_LEN, 0));

    /* A timeout that expires after the read: its timer must not complete
     * the request a second time. */
    rec_init(&d);
    memset(buf, CANARY, READ_LEN);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(WDF_REL_TIMEOUT_IN_MS(300));
    send_async(&e, req, &d, &o);
    ck_assert_msg(wait_done(&d, WAIT_LIMIT_MS), "%s: no completion", backend);
    sleep_ms(500);
    ck_assert_msg(atomic_load(&d.calls) == 1, "%s: completion routine ran %d times", backend,
                  atomic_load(&d.calls));
    ck_assert_status_msg(d.status, STATUS_SUCCESS, "%s", backend);
    ck_assert_uint_eq(d.information, READ_LEN);
    ck_assert_msg(d.t_done - d.t_sent < 300, "%s: read took %.1f ms", backend, d.t_done - d.t_sent);
    ck_assert_status(WdfRequestGetStatus(req), STATUS_SUCCESS);
    ck_assert(null_engine || matches_file(buf, READ_LEN, 0));
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

/* ==== 9: many timers at once ==== */

#define MANY 64

/* On the kernel's linked timeouts and on the framework timer's heap. */
START_TEST(many_timed_reads_each_time_out_once_in_deadline_order)
{
    const struct stuck_source *src = &stuck_sources[_i];
    struct tu_env e;
    struct done_rec d[MANY];
    WDFREQUEST req[MANY];
    double timeout_ms[MANY];
    unsigned char *buf;

    env_init(&e, src->backend);
    env_open_stuck(&e, src);
    WDFMEMORY mem = make_memory((size_t)MANY * READ_LEN, &buf);
    for (int i = 0; i < MANY; i++) {
        WDFMEMORY_OFFSET off = { .BufferOffset = (size_t)i * READ_LEN, .BufferLength = READ_LEN };
        rec_init(&d[i]);
        req[i] = make_request(&e);
        format_read(&e, req[i], mem, &off);
        timeout_ms[i] = 100 + (300.0 * i) / (MANY - 1);
    }
    /* Sent out of deadline order (37 is coprime to 64, and the first one
     * sent is not the first due). */
    for (int j = 0; j < MANY; j++) {
        int i = (j * 37 + 11) % MANY;
        WDF_REQUEST_SEND_OPTIONS o =
            timeout_options(WDF_REL_TIMEOUT_IN_US((ULONGLONG)(timeout_ms[i] * 1000)));
        send_async(&e, req[i], &d[i], &o);
    }
    for (int i = 0; i < MANY; i++)
        ck_assert_msg(wait_done(&d[i], WAIT_LIMIT_MS), "%s: request %d never completed", src->label, i);
    sleep_ms(50);

    double worst = 0;
    for (int i = 0; i < MANY; i++) {
        double took = d[i].t_done - d[i].t_sent;
        ck_assert_msg(atomic_load(&d[i].calls) == 1, "%s: request %d completed %d times", src->label,
                      i, atomic_load(&d[i].calls));
        ck_assert_status_msg(d[i].status, STATUS_IO_TIMEOUT, "%s: request %d", src->label, i);
        ck_assert_msg(took >= timeout_ms[i] - EARLY_SLACK_MS,
                      "%s: request %d timed out after %.2f ms, before its %.2f ms", src->label, i,
                      took, timeout_ms[i]);
        ck_assert_msg(took < timeout_ms[i] + PROMPT_MS,
                      "%s: request %d timed out after %.1f ms, want %.1f", src->label, i, took,
                      timeout_ms[i]);
        if (took - timeout_ms[i] > worst)
            worst = took - timeout_ms[i];
    }
    /* Deadline order: a request whose deadline is clearly earlier
     * completes no later than one whose deadline is clearly later. */
    for (int a = 0; a < MANY; a++)
        for (int b = 0; b < MANY; b++) {
            double da = d[a].t_sent + timeout_ms[a], db = d[b].t_sent + timeout_ms[b];
            if (da + 50 <= db)
                ck_assert_msg(d[a].t_done <= d[b].t_done,
                              "%s: request %d (deadline %.1f) completed after %d (deadline %.1f)",
                              src->label, a, da, b, db);
        }
    if (src->fifo)
        ck_assert(all_canary(buf, (size_t)MANY * READ_LEN));
    fprintf(stderr, "%s: worst lateness %.2f ms over %d timeouts\n", src->label, worst, MANY);
    env_done(&e);
}
END_TEST

/* ==== 10: time spent pended counts ==== */

static const char *const pend_backends[] = { "io_uring", "libaio" };

START_TEST(timeout_covers_time_pended_on_a_stopped_target)
{
    const char *backend = pend_backends[_i];
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;

    env_init(&e, backend);
    env_open_file(&e, true);
    rec_init(&d);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    WdfIoTargetStop(e.target, WdfIoTargetLeaveSentIoPending);
    ck_assert_int_eq(WdfIoTargetGetState(e.target), WdfIoTargetStopped);
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(WDF_REL_TIMEOUT_IN_MS(200));
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 200);
    send_async(&e, req, &d, &o);

    expect_single_completion(&d, STATUS_IO_TIMEOUT, backend);
    double ms = d.t_done - d.t_sent;
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(ms >= 200 - EARLY_SLACK_MS && ms < 200 + LATE_MS + late,
                  "%s: timed out after %.1f ms, want 200 (control timer %.1f ms late)", backend, ms, late);
    /* Never started: the file's bytes never reached the buffer. */
    ck_assert_msg(all_canary(buf, READ_LEN), "%s: the pended read was started", backend);
    ck_assert_int_eq(WdfIoTargetGetState(e.target), WdfIoTargetStopped);

    /* Starting the target afterwards does not resubmit it. */
    ck_assert_status(WdfIoTargetStart(e.target), STATUS_SUCCESS);
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&d.calls), 1);
    ck_assert(all_canary(buf, READ_LEN));
    WdfObjectDelete(req);
    env_done(&e);
}
END_TEST

START_TEST(sync_read_on_stopped_target_times_out_while_pended)
{
    struct tu_env e;
    ULONG_PTR bytes = 7;
    double ms;

    env_init(&e, "io_uring");
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    WdfIoTargetStop(e.target, WdfIoTargetLeaveSentIoPending);
    memset(buf, CANARY, READ_LEN);
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 200);
    NTSTATUS s = sync_read(&e, buf, READ_LEN, WDF_REL_TIMEOUT_IN_MS(200), true, &bytes, &ms);
    ck_assert_status(s, STATUS_IO_TIMEOUT);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(ms >= 200 - EARLY_SLACK_MS && ms < 200 + LATE_MS + late,
                  "timed out after %.1f ms (control timer %.1f ms late)", ms, late);
    ck_assert_uint_eq(bytes, 0);
    ck_assert(all_canary(buf, READ_LEN));
    env_done(&e);
}
END_TEST

/* ==== 11: engine selection ==== */

/* Open io_uring instances of this process, and whether /proc/self/fdinfo
 * describes each as a ring. */
static int count_io_uring_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;
    ck_assert_ptr_nonnull(dir);
    while ((de = readdir(dir)) != NULL) {
        char link[256], info[300], line[256];
        ssize_t len = readlinkat(dirfd(dir), de->d_name, link, sizeof(link) - 1);
        if (len < 0)
            continue;
        link[len] = '\0';
        if (strcmp(link, "anon_inode:[io_uring]") != 0)
            continue;
        snprintf(info, sizeof(info), "/proc/self/fdinfo/%s", de->d_name);
        FILE *f = fopen(info, "r");
        bool ring = false;
        while (f && fgets(line, sizeof(line), f))
            ring |= strncmp(line, "SqMask:", 7) == 0;
        if (f)
            fclose(f);
        ck_assert_msg(ring, "%s does not describe an io_uring", info);
        n++;
    }
    closedir(dir);
    return n;
}

/* Kernel AIO rings mapped into this process ("/[aio] (deleted)"). */
static int count_aio_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        n += strstr(line, "[aio]") != NULL;
    fclose(f);
    return n;
}

struct ring_reader {
    struct tu_env *e;
    NTSTATUS status;
};

static void *ring_reader_thread(void *arg)
{
    struct ring_reader *r = arg;
    ULONG_PTR bytes;
    r->status = sync_read(r->e, r->e->buf, READ_LEN, 0, false, &bytes, NULL);
    return NULL;
}

/* The target's ring goes with the target; the small ring a thread's
 * synchronous sends run on goes with the thread (so the read is done by a
 * thread that exits before the count). */
START_TEST(uwdf_backend_io_uring_opens_a_ring)
{
    struct tu_env e;
    pthread_t th;
    struct ring_reader r = { .e = &e };

    int before = count_io_uring_fds();
    env_init(&e, "io_uring");
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(e.target), "io_uring");
    ck_assert_int_gt(count_io_uring_fds(), before);
    ck_assert_int_eq(pthread_create(&th, NULL, ring_reader_thread, &r), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_status(r.status, STATUS_SUCCESS);
    ck_assert(matches_file(buf, READ_LEN, 0));
    WdfIoTargetClose(e.target);
    ck_assert_ptr_null(UwdfIoTargetGetBackendName(e.target));
    ck_assert_int_eq(count_io_uring_fds(), before);
    env_done(&e);
}
END_TEST

START_TEST(uwdf_backend_libaio_maps_an_aio_ring)
{
    struct tu_env e;
    ULONG_PTR bytes;

    int before = count_aio_mappings();
    int rings_before = count_io_uring_fds();
    env_init(&e, "libaio");
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(e.target), "libaio");
    ck_assert_int_gt(count_aio_mappings(), before);
    ck_assert_int_eq(count_io_uring_fds(), rings_before);
    ck_assert_status(sync_read(&e, buf, READ_LEN, 0, false, &bytes, NULL), STATUS_SUCCESS);
    ck_assert(matches_file(buf, READ_LEN, 0));
    WdfIoTargetClose(e.target);
    ck_assert_int_eq(count_aio_mappings(), before);
    env_done(&e);
}
END_TEST

START_TEST(uwdf_backend_null_completes_without_the_kernel)
{
    struct tu_env e;
    ULONG_PTR bytes = 0;

    int rings = count_io_uring_fds(), aio = count_aio_mappings();
    env_init(&e, "null");
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(e.target), "null");
    ck_assert_int_eq(count_io_uring_fds(), rings);
    ck_assert_int_eq(count_aio_mappings(), aio);
    memset(buf, CANARY, READ_LEN);
    ck_assert_status(sync_read(&e, buf, READ_LEN, 0, false, &bytes, NULL), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, READ_LEN);
    ck_assert(all_canary(buf, READ_LEN));
    env_done(&e);
}
END_TEST

START_TEST(uwdf_backend_unknown_name_fails_the_open)
{
    struct tu_env e;
    WDFIOTARGET target;

    env_init(&e, "bogus");
    e.path = tu_env_file(&e, "data", FILE_SIZE, FILE_SEED);
    ck_assert_status(tu_target_open(e.device, e.path, GENERIC_READ, FILE_OPEN, 0, &target),
                     STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(UwdfIoTargetGetBackendName(target));
    ck_assert_int_eq(WdfIoTargetGetState(target), WdfIoTargetClosed);
    env_done(&e);
}
END_TEST

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TEST_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__riscv) && __riscv_xlen == 64
#define TEST_AUDIT_ARCH AUDIT_ARCH_RISCV64
#endif

/* Exit codes of the fallback child, one per step. */
enum fallback_step {
    FB_OK = 0,
    FB_NO_NEW_PRIVS = 10,
    FB_SECCOMP,
    FB_FILTER_INEFFECTIVE,
    FB_DRIVER,
    FB_DEVICE,
    FB_OPEN,
    FB_NOT_LIBAIO,
    FB_READ,
    FB_SHORT_READ,
    FB_WRONG_DATA,
};

static const char *fallback_step_name(int code)
{
    switch (code) {
    case FB_NO_NEW_PRIVS: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case FB_SECCOMP: return "seccomp(SECCOMP_SET_MODE_FILTER)";
    case FB_FILTER_INEFFECTIVE: return "io_uring_setup still works under the filter";
    case FB_DRIVER: return "WdfDriverCreate";
    case FB_DEVICE: return "WdfDeviceCreate";
    case FB_OPEN: return "WdfIoTargetOpen";
    case FB_NOT_LIBAIO: return "the engine is not libaio";
    case FB_READ: return "the read failed";
    case FB_SHORT_READ: return "the read was short";
    case FB_WRONG_DATA: return "the read returned wrong data";
    default: return "unknown";
    }
}

#ifdef TEST_AUDIT_ARCH
/* Runs in a forked child: no Check assertions here, only exit codes. */
static int fallback_child(const char *path)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
                               .filter = filter };
    unsigned char params[120]; /* struct io_uring_params */
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver;
    WDFDEVICE device;
    WDFIOTARGET target;
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 8192;
    ULONG_PTR bytes = 0;
    int rc = FB_OK;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return FB_NO_NEW_PRIVS;
    /* prctl(PR_SET_SECCOMP) is the older door to the same filter, for
     * where seccomp(2) is missing (valgrind 3.19 does not emulate it). */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0 &&
        (errno != ENOSYS || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0))
        return FB_SECCOMP;
    memset(params, 0, sizeof(params));
    errno = 0;
    if (syscall(__NR_io_uring_setup, 2, params) >= 0 || errno != ENOSYS)
        return FB_FILTER_INEFFECTIVE;
    unsetenv("UWDF_BACKEND");

    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    if (!NT_SUCCESS(WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, &driver)))
        return FB_DRIVER;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init || !NT_SUCCESS(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device))) {
        rc = FB_DEVICE;
        goto out;
    }
    WdfControlFinishInitializing(device);
    if (!NT_SUCCESS(tu_target_open(device, path, GENERIC_READ, FILE_OPEN,
                                   FILE_NO_INTERMEDIATE_BUFFERING, &target))) {
        rc = FB_OPEN;
        goto out;
    }
    const char *name = UwdfIoTargetGetBackendName(target);
    if (!name || strcmp(name, "libaio") != 0) {
        rc = FB_NOT_LIBAIO;
        goto out;
    }
    unsigned char *buf = aligned_alloc(4096, READ_LEN);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, READ_LEN);
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(WDF_REL_TIMEOUT_IN_SEC(5));
    if (!NT_SUCCESS(WdfIoTargetSendReadSynchronously(target, NULL, &d, &off, &o, &bytes)))
        rc = FB_READ;
    else if (bytes != READ_LEN)
        rc = FB_SHORT_READ;
    else {
        unsigned char want[READ_LEN];
        tu_fill_pattern(want, READ_LEN, FILE_SEED, (uint64_t)off);
        if (memcmp(want, buf, READ_LEN) != 0)
            rc = FB_WRONG_DATA;
    }
    free(buf);
out:
    WdfObjectDelete(driver);
    return rc;
}
#endif

START_TEST(io_uring_refused_by_seccomp_falls_back_to_libaio)
{
#ifndef TEST_AUDIT_ARCH
    fprintf(stderr, "seccomp fallback test: no AUDIT_ARCH for this architecture; not run\n");
    return;
#else
    char *dir = tu_tmpdir();
    char *path = tu_make_file(dir, "data", FILE_SIZE, FILE_SEED);
    int result_pipe[2];
    ck_assert_int_eq(pipe2(result_pipe, O_CLOEXEC), 0);
    fflush(NULL);
    /* Its own child even when Check does not fork (CK_FORK=no): the filter
     * cannot be removed once installed. The outcome travels through a pipe,
     * not the exit status, which valgrind overrides with its leak report of
     * the forked copy. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int rc = fallback_child(path);
        free(path); /* the forked copies; valgrind checks the child too */
        free(dir);
        ssize_t w = write(result_pipe[1], &rc, sizeof(rc));
        _exit(w == (ssize_t)sizeof(rc) ? 0 : 2);
    }
    close(result_pipe[1]);
    int rc = -1, status;
    ssize_t got = read(result_pipe[0], &rc, sizeof(rc));
    close(result_pipe[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    tu_rmtree(dir);
    free(dir);
    free(path);
    ck_assert_msg(!WIFSIGNALED(status), "child killed by signal %d", WTERMSIG(status));
    ck_assert_msg(got == (ssize_t)sizeof(rc), "child reported nothing (exit status %d)",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ck_assert_msg(rc == FB_OK, "child failed (%d): %s", rc, fallback_step_name(rc));
#endif
}
END_TEST

/* ==== 12: conversions ==== */

START_TEST(wdf_timeout_macros_have_the_windows_values)
{
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_MS(250), -2500000LL);
    ck_assert_int_eq(WDF_ABS_TIMEOUT_IN_SEC(1), 10000000LL);
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_SEC(3), -30000000LL);
    ck_assert_int_eq(WDF_ABS_TIMEOUT_IN_MS(7), 70000LL);
    ck_assert_int_eq(WDF_REL_TIMEOUT_IN_US(9), -90LL);
    ck_assert_int_eq(WDF_ABS_TIMEOUT_IN_US(9), 90LL);
    ck_assert_int_eq(WDF_TIMEOUT_TO_SEC, 10000000LL);
    ck_assert_int_eq(WDF_TIMEOUT_TO_MS, 10000LL);
    ck_assert_int_eq(WDF_TIMEOUT_TO_US, 10LL);
    ck_assert_int_eq(UWDF_NT_EPOCH_DELTA_100NS, 116444736000000000LL);
}
END_TEST

START_TEST(relative_and_absolute_timeouts_become_monotonic_deadlines)
{
    int64_t dl, before, after;
    LARGE_INTEGER now;

    ck_assert(!uwdf_timeout_to_mono_deadline(0, &dl));

    before = uwdf_mono_ns();
    ck_assert(uwdf_timeout_to_mono_deadline(WDF_REL_TIMEOUT_IN_MS(100), &dl));
    after = uwdf_mono_ns();
    ck_assert_int_ge(dl, before + 100000000LL);
    ck_assert_int_le(dl, after + 100000000LL);

    before = uwdf_mono_ns();
    ck_assert(uwdf_timeout_to_mono_deadline(WDF_REL_TIMEOUT_IN_US(1), &dl));
    after = uwdf_mono_ns();
    ck_assert_int_ge(dl, before + 1000);
    ck_assert_int_le(dl, after + 1000);

    /* Absolute: NT time of "now + 1 s" is 1 s away on the monotonic clock
     * (1 ms of slack for the 100 ns truncation and the two clocks). */
    before = uwdf_mono_ns();
    KeQuerySystemTime(&now);
    ck_assert(uwdf_timeout_to_mono_deadline(now.QuadPart + WDF_ABS_TIMEOUT_IN_SEC(1), &dl));
    after = uwdf_mono_ns();
    ck_assert_int_ge(dl, before + 1000000000LL - 1000000LL);
    ck_assert_int_le(dl, after + 1000000000LL + 1000000LL);

    /* KeQuerySystemTime is NT time: 1601 epoch, 100 ns units. */
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    LONGLONG expect = (LONGLONG)rt.tv_sec * 10000000LL + rt.tv_nsec / 100 + UWDF_NT_EPOCH_DELTA_100NS;
    KeQuerySystemTime(&now);
    ck_assert_int_ge(now.QuadPart, expect);
    ck_assert_int_lt(now.QuadPart, expect + 10000000LL);
}
END_TEST

START_TEST(extreme_timeouts_clamp_instead_of_overflowing)
{
    const int64_t century_ns = 100LL * 365 * 86400 * 1000000000LL;
    int64_t dl, before, after;

    before = uwdf_mono_ns();
    ck_assert(uwdf_timeout_to_mono_deadline(LLONG_MIN, &dl));
    ck_assert_int_gt(dl, before + century_ns);
    ck_assert(uwdf_timeout_to_mono_deadline(LLONG_MIN + 1, &dl));
    ck_assert_int_gt(dl, before + century_ns);
    ck_assert(uwdf_timeout_to_mono_deadline(LLONG_MAX, &dl));
    ck_assert_int_gt(dl, before + century_ns);

    /* Absolute times in the past (1601, the Unix epoch) are due now. */
    ck_assert(uwdf_timeout_to_mono_deadline(1, &dl));
    after = uwdf_mono_ns();
    ck_assert_int_le(dl, after);
    ck_assert(uwdf_timeout_to_mono_deadline(UWDF_NT_EPOCH_DELTA_100NS, &dl));
    ck_assert_int_le(dl, uwdf_mono_ns());
}
END_TEST

/* Index 0: io_uring FIFO read (the kernel's linked timeout); 1: libaio
 * stalled read (the framework timer). UMDF once shipped timeouts 10x too
 * short; 50, 100 and 300 ms must each last that long, not 5, 10, 30. */
START_TEST(relative_timeout_in_ms_lasts_that_many_ms)
{
    const struct stuck_source *src = &stuck_sources[_i];
    static const unsigned timeouts_ms[] = { 50, 100, 300 };
    struct tu_env e;
    ULONG_PTR bytes;
    double ms;

    env_init(&e, src->backend);
    unsigned char *buf = e.buf;
    env_open_stuck(&e, src);
    for (size_t k = 0; k < sizeof(timeouts_ms) / sizeof(timeouts_ms[0]); k++) {
        unsigned t = timeouts_ms[k];
        struct tu_control_timer ctl;
        tu_control_timer_start(&ctl, t);
        NTSTATUS s = sync_read(&e, buf, READ_LEN, WDF_REL_TIMEOUT_IN_MS(t), true, &bytes, &ms);
        ck_assert_status_msg(s, STATUS_IO_TIMEOUT, "%s, %u ms", src->label, t);
        double late = tu_control_timer_late_ms(&ctl);
        ck_assert_msg(ms >= t - EARLY_SLACK_MS && ms <= t + LATE_MS + late,
                      "%s: a %u ms timeout lasted %.1f ms (control timer %.1f ms late)", src->label, t, ms, late);
        fprintf(stderr, "%s: %u ms timeout -> %.2f ms\n", src->label, t, ms);
    }
    env_done(&e);
}
END_TEST

/* ==== 13: extreme timeouts on real sends ==== */

/* The farthest relative timeout and the largest absolute one never fire:
 * the stuck read is still pending 300 ms later and only a cancel ends it. */
static void expect_timeout_never_fires(LONGLONG timeout, const struct stuck_source *src)
{
    struct tu_env e;
    struct done_rec d;
    unsigned char *buf;

    env_init(&e, src->backend);
    env_open_stuck(&e, src);
    rec_init(&d);
    WDFMEMORY mem = make_memory(READ_LEN, &buf);
    WDFREQUEST req = make_request(&e);
    format_read(&e, req, mem, NULL);
    WDF_REQUEST_SEND_OPTIONS o = timeout_options(timeout);
    send_async(&e, req, &d, &o);
    sleep_ms(300);
    ck_assert_msg(atomic_load(&d.calls) == 0, "%s: timeout %lld fired (%s)", src->label,
                  (long long)timeout, tu_status_name(d.status));
    ck_assert(WdfRequestCancelSentRequest(req));
    expect_single_completion(&d, STATUS_CANCELLED, src->label);
    expect_fifo_read_gone(&e, buf, READ_LEN);
    WdfObjectDelete(req);
    env_done(&e);
}

START_TEST(farthest_relative_timeout_never_fires)
{
    expect_timeout_never_fires(LLONG_MIN, &stuck_sources[_i]);
}
END_TEST

START_TEST(largest_absolute_timeout_never_fires)
{
    expect_timeout_never_fires(LLONG_MAX, &stuck_sources[_i]);
}
END_TEST

START_TEST(extreme_timeouts_let_a_file_read_succeed)
{
    static const LONGLONG extremes[] = { LLONG_MIN, LLONG_MIN + 1, LLONG_MAX };
    const char *backend = all_backends[_i];
    struct tu_env e;
    ULONG_PTR bytes;
    double ms;

    env_init(&e, backend);
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    for (size_t k = 0; k < sizeof(extremes) / sizeof(extremes[0]); k++) {
        memset(buf, CANARY, READ_LEN);
        NTSTATUS s = sync_read(&e, buf, READ_LEN, extremes[k], true, &bytes, &ms);
        ck_assert_status_msg(s, STATUS_SUCCESS, "%s, timeout %lld", backend, (long long)extremes[k]);
        ck_assert_uint_eq(bytes, READ_LEN);
        ck_assert_msg(ms < PROMPT_MS, "%s: took %.1f ms", backend, ms);
        ck_assert(is_null_engine(backend) || matches_file(buf, READ_LEN, 0));
    }
    env_done(&e);
}
END_TEST

START_TEST(absolute_timeout_in_1601_times_out_at_once_on_fifo_read)
{
    struct tu_env e;
    unsigned char buf[64];
    ULONG_PTR bytes = 5;
    double ms;

    env_init(&e, "io_uring");
    tu_env_open_fifo(&e);
    memset(buf, CANARY, sizeof(buf));
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 0);
    NTSTATUS s = sync_read(&e, buf, sizeof(buf), 1, true, &bytes, &ms);
    ck_assert_status(s, STATUS_IO_TIMEOUT);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(ms < 100 + late, "an already expired timeout took %.1f ms (control timer %.1f ms late)", ms, late);
    ck_assert_uint_eq(bytes, 0);
    expect_fifo_read_gone(&e, buf, sizeof(buf));
    env_done(&e);
}
END_TEST

START_TEST(absolute_timeout_in_1601_times_out_at_once_while_pended)
{
    struct tu_env e;
    ULONG_PTR bytes = 5;
    double ms;

    env_init(&e, "libaio");
    unsigned char *buf = e.buf;
    env_open_file(&e, true);
    WdfIoTargetStop(e.target, WdfIoTargetLeaveSentIoPending);
    memset(buf, CANARY, READ_LEN);
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 0);
    NTSTATUS s = sync_read(&e, buf, READ_LEN, 1, true, &bytes, &ms);
    ck_assert_status(s, STATUS_IO_TIMEOUT);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(ms < 100 + late, "an already expired timeout took %.1f ms (control timer %.1f ms late)", ms, late);
    ck_assert(all_canary(buf, READ_LEN));
    env_done(&e);
}
END_TEST

/* ---- suite ---- */

static TCase *timed_case(Suite *s, const char *name)
{
    TCase *tc = tu_tcase(s, name, 60);
    tcase_add_checked_fixture(tc, backend_unset, backend_unset);
    return tc;
}

static Suite *timeout_suite(void)
{
    Suite *s = suite_create("timeout");
    TCase *tc;

    tc = timed_case(s, "timeouts");
    tcase_add_test(tc, sync_read_from_fifo_times_out_under_io_uring);
    tcase_add_test(tc, async_read_from_fifo_times_out_under_io_uring);
    tcase_add_loop_test(tc, absolute_timeout_expires_at_that_system_time, 0, N_STUCK);
    tcase_add_loop_test(tc, zero_timeout_with_timeout_flag_means_no_timeout, 0, N_STUCK);
    tcase_add_loop_test(tc, fast_read_beats_its_timeout_and_completes_once, 0, N_BACKENDS);
    tcase_add_loop_test(tc, many_timed_reads_each_time_out_once_in_deadline_order, 0, N_STUCK);
    tcase_add_loop_test(tc, timeout_covers_time_pended_on_a_stopped_target, 0,
                        (int)(sizeof(pend_backends) / sizeof(pend_backends[0])));
    tcase_add_test(tc, sync_read_on_stopped_target_times_out_while_pended);

    tc = timed_case(s, "stall");
    tcase_add_loop_test(tc, stalled_read_times_out_then_succeeds_without_the_stall, 0, N_BACKENDS);
    tcase_add_loop_test(tc, stalled_read_without_timeout_succeeds_after_the_stall, 0, N_BACKENDS);
    tcase_add_loop_test(tc, stalled_read_with_timeout_shorter_than_the_io_times_out_at_once, 0,
                        N_BACKENDS);
    tcase_add_loop_test(tc, cancel_right_after_send_is_honoured_by_the_stall, 0, N_BACKENDS);

    tc = timed_case(s, "cancel");
    tcase_add_loop_test(tc, cancel_sent_request_completes_it_cancelled_not_timed_out, 0, N_STUCK);
    tcase_add_loop_test(tc, cancel_of_completed_request_returns_false, 0, N_BACKENDS);
    tcase_add_loop_test(tc, cancel_before_send_returns_false_and_sticks_until_reuse, 0, N_BACKENDS);

    tc = timed_case(s, "backend");
    tcase_add_test(tc, uwdf_backend_io_uring_opens_a_ring);
    tcase_add_test(tc, uwdf_backend_libaio_maps_an_aio_ring);
    tcase_add_test(tc, uwdf_backend_null_completes_without_the_kernel);
    tcase_add_test(tc, uwdf_backend_unknown_name_fails_the_open);
    tcase_add_test(tc, io_uring_refused_by_seccomp_falls_back_to_libaio);

    tc = timed_case(s, "conversion");
    tcase_add_test(tc, wdf_timeout_macros_have_the_windows_values);
    tcase_add_test(tc, relative_and_absolute_timeouts_become_monotonic_deadlines);
    tcase_add_test(tc, extreme_timeouts_clamp_instead_of_overflowing);
    tcase_add_loop_test(tc, relative_timeout_in_ms_lasts_that_many_ms, 0, 2);

    tc = timed_case(s, "extremes");
    tcase_add_loop_test(tc, farthest_relative_timeout_never_fires, 0, N_STUCK);
    tcase_add_loop_test(tc, largest_absolute_timeout_never_fires, 0, N_STUCK);
    tcase_add_loop_test(tc, extreme_timeouts_let_a_file_read_succeed, 0, N_BACKENDS);
    tcase_add_test(tc, absolute_timeout_in_1601_times_out_at_once_on_fifo_read);
    tcase_add_test(tc, absolute_timeout_in_1601_times_out_at_once_while_pended);
    return s;
}

int main(void)
{
    return tu_main(timeout_suite(), "test_timeout");
}
