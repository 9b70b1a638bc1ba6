/* Request lifetime and live-object accounting: every request a queue
 * presents is destroyed once its completion is over, whatever the driver
 * did with it, and its EvtCleanupCallback and EvtDestroyCallback run once
 * each. Each pattern runs LT_IOS I/Os (100,000 unless UWDF_LIFETIME_IOS
 * says otherwise; fewer under valgrind) through an application target, a
 * filter device and, below it, a real file or an in-process device that
 * holds requests until they are cancelled, on the io_uring, libaio and null
 * engines. The live counts of every object type (UwdfQueryObjectCounts)
 * are the same before and after, and RSS grows by at most a few pages.
 * Also: the counting API itself, a driver's own reference, and the
 * verifier's report of what a driver leaves behind at unload. */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLK 512
#define FILE_BLOCKS 64
#define APP_THREADS 2
#define WARMUP_IOS 5000
/* "A few pages": malloc's arenas settle slowly under two threads; a leak of
 * even one byte per I/O would be 24 pages over 100,000 I/Os. */
#define RSS_SLACK_PAGES 16
#define WAIT_MS 20000
#define ENGINES 3

static const char *const engine_names[ENGINES] = { "io_uring", "libaio", "null" };

/* What the filter's EvtIoRead / EvtIoWrite does with a presented request. */
enum pattern {
    P_COMPLETE,          /* completes it at once */
    P_OWN_OUT_ASYNC,     /* its own output memory, FormatRequestForRead + async send */
    P_OWN_IN_ASYNC,      /* a write: its own input memory, FormatRequestForWrite + async send */
    P_OWN_OUT_SYNC,      /* its own output memory, WdfRequestSend(SYNCHRONOUS) */
    P_DRV_MEM_ASYNC,     /* a WDFMEMORY it creates (parented to the request), async */
    P_DRV_MEM_SYNC,      /* the same, WdfRequestSend(SYNCHRONOUS) */
    P_BUFFER_SYNC,       /* WdfIoTargetSendReadSynchronously with a buffer descriptor */
    P_MDL_SYNC,          /* ... with an MDL descriptor (its retrieved MDL) */
    P_SEND_AND_FORGET,   /* WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET */
    P_FORWARD_REQUEUE,   /* forwarded to a manual queue, requeued there, completed */
    P_REUSE,             /* own memory, sent; reused in the routine, sent again, completed */
    P_REFERENCE,         /* WdfObjectReference, completed, destroyed only at the dereference */
    P_CANCEL_ON_QUEUE,   /* cancelled by the sender while it waits on a manual queue */
    P_CANCEL_IN_FLIGHT,  /* forwarded below, cancelled by the sender there */
    P_TIMEOUT,           /* forwarded below with a timeout that expires */
    P_COUNT
};

static const char *const pattern_names[P_COUNT] = {
    "complete", "own_output_async", "own_input_async", "own_output_sync", "driver_memory_async",
    "driver_memory_sync", "buffer_sync", "mdl_sync", "send_and_forget", "forward_requeue",
    "reuse", "reference", "cancel_on_queue", "cancel_in_flight", "timeout",
};

/* Each presented request's context: its callbacks must run once each. */
typedef struct {
    int cleaned;
    int destroyed;
} LT_REQ;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(LT_REQ, lt_req_get);

static struct {
    enum pattern pattern;
    WDFIOTARGET file;  /* the filter's target on the file */
    WDFIOTARGET hold;  /* the filter's target on the holding device */
    WDFQUEUE manual;   /* the filter's manual queue */
    atomic_long cleanups, destroys, errors;
    char first_error[256];
} L;

static void lt_error(const char *what, NTSTATUS st)
{
    if (atomic_fetch_add(&L.errors, 1) == 0)
        snprintf(L.first_error, sizeof(L.first_error), "%s: 0x%08x", what, (unsigned)st);
}

static VOID lt_cleanup(WDFOBJECT o)
{
    LT_REQ *c = lt_req_get(o);
    if (c->cleaned++)
        lt_error("EvtCleanupCallback ran twice", 0);
    atomic_fetch_add(&L.cleanups, 1);
}

static VOID lt_destroy(WDFOBJECT o)
{
    LT_REQ *c = lt_req_get(o);
    if (c->destroyed++ || !c->cleaned)
        lt_error("EvtDestroyCallback twice or before cleanup", 0);
    atomic_fetch_add(&L.destroys, 1);
}

static LONGLONG lt_offset(WDFREQUEST r)
{
    WDF_REQUEST_PARAMETERS p;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(r, &p);
    return p.Parameters.Read.DeviceOffset;
}

/* ---- the filter ---- */

static VOID lt_done(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT ctx);

/* Format r with its own retrieved memory for t and send it; lt_done (with
 * leg as its context) or the synchronous send's caller completes it. */
static void lt_send_own(WDFREQUEST r, bool write, PWDF_REQUEST_SEND_OPTIONS opts, WDFIOTARGET t, WDFCONTEXT leg)
{
    WDFMEMORY m;
    LONGLONG off = lt_offset(r);
    NTSTATUS st = write ? WdfRequestRetrieveInputMemory(r, &m) : WdfRequestRetrieveOutputMemory(r, &m);
    if (NT_SUCCESS(st))
        st = write ? WdfIoTargetFormatRequestForWrite(t, r, m, NULL, &off)
                   : WdfIoTargetFormatRequestForRead(t, r, m, NULL, &off);
    if (!NT_SUCCESS(st)) {
        lt_error("retrieve/format", st);
        WdfRequestComplete(r, st);
        return;
    }
    bool sync = opts && (opts->Flags & WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    if (!sync)
        WdfRequestSetCompletionRoutine(r, lt_done, leg);
    if (!WdfRequestSend(r, t, opts)) {
        WdfRequestComplete(r, WdfRequestGetStatus(r));
        return;
    }
    if (sync)
        WdfRequestCompleteWithInformation(r, WdfRequestGetStatus(r), WdfRequestGetInformation(r));
}

static VOID lt_done(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT ctx)
{
    (void)t;
    if (L.pattern == P_REUSE && ctx == NULL && NT_SUCCESS(p->IoStatus.Status)) {
        /* The first leg: reuse the presented request and send it again. */
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        NTSTATUS st = WdfRequestReuse(r, &rp);
        if (!NT_SUCCESS(st)) {
            lt_error("WdfRequestReuse", st);
            WdfRequestComplete(r, st);
            return;
        }
        lt_send_own(r, false, WDF_NO_SEND_OPTIONS, L.file, (WDFCONTEXT)1); /* the second leg */
        return;
    }
    WdfRequestCompleteWithInformation(r, p->IoStatus.Status, p->IoStatus.Information);
}

static VOID lt_mem_done(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT ctx)
{
    (void)t;
    (void)ctx;
    void *out;
    NTSTATUS st = p->IoStatus.Status;
    if (NT_SUCCESS(st))
        st = WdfRequestRetrieveOutputBuffer(r, BLK, &out, NULL);
    if (NT_SUCCESS(st))
        st = WdfMemoryCopyToBuffer(p->Parameters.Read.Buffer, 0, out, BLK);
    WdfRequestCompleteWithInformation(r, st, NT_SUCCESS(st) ? p->IoStatus.Information : 0);
}

static void lt_driver_memory(WDFREQUEST r, bool sync)
{
    WDF_OBJECT_ATTRIBUTES a;
    WDFMEMORY m;
    LONGLONG off = lt_offset(r);
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = r; /* goes with the request */
    NTSTATUS st = WdfMemoryCreate(&a, NonPagedPoolNx, 0, BLK, &m, NULL);
    if (NT_SUCCESS(st))
        st = WdfIoTargetFormatRequestForRead(L.file, r, m, NULL, &off);
    if (!NT_SUCCESS(st)) {
        lt_error("driver memory", st);
        WdfRequestComplete(r, st);
        return;
    }
    if (!sync) {
        WdfRequestSetCompletionRoutine(r, lt_mem_done, NULL);
        if (!WdfRequestSend(r, L.file, WDF_NO_SEND_OPTIONS))
            WdfRequestComplete(r, WdfRequestGetStatus(r));
        return;
    }
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    if (!WdfRequestSend(r, L.file, &o)) {
        WdfRequestComplete(r, WdfRequestGetStatus(r));
        return;
    }
    WDF_REQUEST_COMPLETION_PARAMS p;
    WDF_REQUEST_COMPLETION_PARAMS_INIT(&p);
    WdfRequestGetCompletionParams(r, &p);
    lt_mem_done(r, L.file, &p, NULL);
}

static void lt_descriptor(WDFREQUEST r, bool mdl)
{
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = lt_offset(r);
    ULONG_PTR n = 0;
    NTSTATUS st;
    if (mdl) {
        PMDL m;
        st = WdfRequestRetrieveOutputWdmMdl(r, &m);
        WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, m, BLK);
    } else {
        void *b;
        st = WdfRequestRetrieveOutputBuffer(r, BLK, &b, NULL);
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, b, BLK);
    }
    if (NT_SUCCESS(st))
        st = WdfIoTargetSendReadSynchronously(L.file, r, &d, &off, NULL, &n);
    WdfRequestCompleteWithInformation(r, st, n);
}

static void lt_forward_requeue(WDFREQUEST r)
{
    NTSTATUS st = WdfRequestForwardToIoQueue(r, L.manual);
    if (!NT_SUCCESS(st)) {
        lt_error("WdfRequestForwardToIoQueue", st);
        WdfRequestComplete(r, st);
        return;
    }
    WDFREQUEST got;
    if (!NT_SUCCESS(WdfIoQueueRetrieveNextRequest(L.manual, &got)))
        return; /* another thread took it */
    st = WdfRequestRequeue(got);
    if (!NT_SUCCESS(st)) {
        lt_error("WdfRequestRequeue", st);
        WdfRequestComplete(got, st);
        return;
    }
    if (NT_SUCCESS(WdfIoQueueRetrieveNextRequest(L.manual, &got)))
        WdfRequestCompleteWithInformation(got, STATUS_SUCCESS, BLK);
}

static VOID lt_io(WDFQUEUE q, WDFREQUEST r, size_t len, bool write)
{
    (void)q;
    (void)len;
    WDF_REQUEST_SEND_OPTIONS o;
    switch (L.pattern) {
    case P_COMPLETE:
        WdfRequestCompleteWithInformation(r, STATUS_SUCCESS, BLK);
        break;
    case P_OWN_OUT_ASYNC:
    case P_OWN_IN_ASYNC:
    case P_REUSE:
        lt_send_own(r, write, WDF_NO_SEND_OPTIONS, L.file, NULL);
        break;
    case P_OWN_OUT_SYNC:
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(30));
        lt_send_own(r, write, &o, L.file, NULL);
        break;
    case P_DRV_MEM_ASYNC:
    case P_DRV_MEM_SYNC:
        lt_driver_memory(r, L.pattern == P_DRV_MEM_SYNC);
        break;
    case P_BUFFER_SYNC:
    case P_MDL_SYNC:
        lt_descriptor(r, L.pattern == P_MDL_SYNC);
        break;
    case P_SEND_AND_FORGET:
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET);
        if (!WdfRequestSend(r, L.file, &o))
            WdfRequestComplete(r, WdfRequestGetStatus(r));
        break;
    case P_FORWARD_REQUEUE:
        lt_forward_requeue(r);
        break;
    case P_REFERENCE: {
        WdfObjectReference(r);
        WdfRequestCompleteWithInformation(r, STATUS_SUCCESS, BLK);
        LT_REQ *c = lt_req_get(r); /* valid: the driver's reference holds it */
        if (c->cleaned != 1 || c->destroyed)
            lt_error("a referenced request after completion", 0);
        WdfObjectDereference(r);
        break;
    }
    case P_CANCEL_IN_FLIGHT:
        lt_send_own(r, write, WDF_NO_SEND_OPTIONS, L.hold, NULL);
        break;
    case P_TIMEOUT:
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, -1); /* 100 ns from now */
        lt_send_own(r, write, &o, L.hold, NULL);
        break;
    default:
        lt_error("pattern reached the filter", 0);
        WdfRequestComplete(r, STATUS_INTERNAL_ERROR);
        break;
    }
}

static VOID lt_read(WDFQUEUE q, WDFREQUEST r, size_t len)
{
    lt_io(q, r, len, false);
}

static VOID lt_write(WDFQUEUE q, WDFREQUEST r, size_t len)
{
    lt_io(q, r, len, true);
}

static WDFDEVICE lt_device(WDFDRIVER driver, const char *name, PFN_WDF_IO_QUEUE_IO_READ rd,
                           PFN_WDF_IO_QUEUE_IO_WRITE wr, WDF_IO_QUEUE_DISPATCH_TYPE type,
                           WDF_DEVICE_IO_TYPE io)
{
    WDF_OBJECT_ATTRIBUTES ra;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&ra, LT_REQ);
    ra.EvtCleanupCallback = lt_cleanup;
    ra.EvtDestroyCallback = lt_destroy;
    return tu_named_device(driver, name, io, &ra, type, rd, wr);
}

static void lt_open(WDFIOTARGET t, const char *name)
{
    tu_open_by_name(t, name, 0);
}

/* ---- the application: threads sending to the filter ---- */

struct app {
    WDFIOTARGET t;
    atomic_long next; /* I/Os handed out */
    long total;
    atomic_long bad;
    NTSTATUS first_bad;
};

static NTSTATUS app_expected(void)
{
    switch (L.pattern) {
    case P_CANCEL_ON_QUEUE:
    case P_CANCEL_IN_FLIGHT:
        return STATUS_CANCELLED;
    case P_TIMEOUT:
        return STATUS_IO_TIMEOUT;
    default:
        return STATUS_SUCCESS;
    }
}

static void *app_thread(void *p)
{
    struct app *a = p;
    WDFREQUEST r = tu_make_request(a->t);
    void *buf;
    WDFMEMORY m = tu_make_memory(BLK, &buf);
    memset(buf, 0x5a, BLK); /* what the writes write */
    bool cancels = L.pattern == P_CANCEL_ON_QUEUE || L.pattern == P_CANCEL_IN_FLIGHT;
    NTSTATUS want = app_expected();
    for (long n; (n = atomic_fetch_add(&a->next, 1)) < a->total;) {
        LONGLONG off = (n % FILE_BLOCKS) * BLK;
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        WdfRequestReuse(r, &rp);
        NTSTATUS st = L.pattern == P_OWN_IN_ASYNC ? WdfIoTargetFormatRequestForWrite(a->t, r, m, NULL, &off)
                                                   : WdfIoTargetFormatRequestForRead(a->t, r, m, NULL, &off);
        ULONG_PTR info = 0;
        if (NT_SUCCESS(st) && cancels) {
            struct tu_completion c;
            tu_completion_init(&c);
            WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
            if (!WdfRequestSend(r, a->t, WDF_NO_SEND_OPTIONS)) {
                st = WdfRequestGetStatus(r);
            } else {
                WdfRequestCancelSentRequest(r);
                st = tu_completion_wait(&c, WAIT_MS) ? c.status : STATUS_TIMEOUT;
                info = c.information;
            }
            tu_completion_fini(&c);
        } else if (NT_SUCCESS(st)) {
            WDF_REQUEST_SEND_OPTIONS o;
            WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
            WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(60));
            WdfRequestSend(r, a->t, &o);
            st = WdfRequestGetStatus(r);
            info = WdfRequestGetInformation(r);
        }
        if (st != want || (NT_SUCCESS(want) && info != BLK)) {
            if (atomic_fetch_add(&a->bad, 1) == 0)
                a->first_bad = st;
        }
    }
    WdfObjectDelete(r);
    WdfObjectDelete(m);
    return NULL;
}

static void app_run(WDFIOTARGET t, long total)
{
    struct app a = { .t = t, .total = total };
    pthread_t th[APP_THREADS];
    for (int i = 0; i < APP_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, app_thread, &a), 0);
    for (int i = 0; i < APP_THREADS; i++)
        pthread_join(th[i], NULL);
    ck_assert_msg(atomic_load(&a.bad) == 0, "%s: %ld I/Os ended wrong, the first with 0x%08x",
                  pattern_names[L.pattern], atomic_load(&a.bad), (unsigned)a.first_bad);
}

/* ---- counts ---- */

#define MAX_TYPES 64
struct counts {
    ULONG n;
    UWDF_OBJECT_COUNT c[MAX_TYPES];
    long rss_pages;
};

static void counts_take(struct counts *s)
{
    s->n = MAX_TYPES;
    ck_assert_int_eq(UwdfQueryObjectCounts(s->c, &s->n), STATUS_SUCCESS);
    s->rss_pages = tu_rss_pages();
}

static bool counts_same_live(const struct counts *a, const struct counts *b)
{
    if (a->n != b->n)
        return false;
    for (ULONG i = 0; i < a->n; i++)
        if (a->c[i].Live != b->c[i].Live)
            return false;
    return true;
}

static ULONGLONG created_delta(const struct counts *a, const struct counts *b, const char *type)
{
    for (ULONG i = 0; i < a->n; i++)
        if (!strcmp(a->c[i].TypeName, type))
            return b->c[i].Created - a->c[i].Created;
    ck_abort_msg("no type %s", type);
    return 0;
}

static void counts_print(const char *what, const struct counts *a, const struct counts *b)
{
    char line[1024];
    int len = snprintf(line, sizeof(line), "%s:", what);
    for (ULONG i = 0; i < a->n && len < (int)sizeof(line) - 64; i++)
        if (a->c[i].Live || b->c[i].Live || a->c[i].Created != b->c[i].Created)
            len += snprintf(line + len, sizeof(line) - (size_t)len, " %s %llu->%llu (+%llu made)",
                            a->c[i].TypeName, (unsigned long long)a->c[i].Live,
                            (unsigned long long)b->c[i].Live,
                            (unsigned long long)(b->c[i].Created - a->c[i].Created));
    printf("%s; RSS %+ld pages\n", line, b->rss_pages - a->rss_pages);
    fflush(stdout);
}

static bool under_sanitizer(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    return tu_running_on_valgrind();
}

static long lt_ios(void)
{
    const char *v = getenv("UWDF_LIFETIME_IOS");
    if (v && *v)
        return atol(v);
    return tu_running_on_valgrind() ? 2000 : 100000;
}

/* ---- the steady-state test ---- */

/* The driver, the engine and the filter device for pattern, its target
 * on a new file opened; returns the filter. */
static WDFDEVICE lt_setup(struct tu_env *e, enum pattern pattern, int engine, WDF_DEVICE_IO_TYPE io)
{
    setenv("UWDF_BACKEND", engine_names[engine], 1);
    tu_env_init(e);
    memset(&L, 0, sizeof(L));
    L.pattern = pattern;
    WDFDEVICE filter = lt_device(e->driver, "\\Device\\uwdfLtFilter", lt_read, lt_write,
                                 pattern == P_CANCEL_ON_QUEUE ? WdfIoQueueDispatchManual
                                                              : WdfIoQueueDispatchParallel,
                                 io);
    char *file = tu_env_file(e, "lower.img", FILE_BLOCKS * BLK, 5);
    L.file = WdfDeviceGetIoTarget(filter);
    lt_open(L.file, file);
    free(file);
    return filter;
}

static void steady_state(enum pattern pattern, int engine)
{
    struct tu_env e;
    WDFDEVICE filter = lt_setup(&e, pattern, engine, WdfDeviceIoDirect);
    lt_device(e.driver, "\\Device\\uwdfLtHold", tu_hold_until_cancelled, NULL, WdfIoQueueDispatchParallel,
              WdfDeviceIoBuffered);
    ck_assert_int_eq(WdfIoTargetCreate(filter, WDF_NO_OBJECT_ATTRIBUTES, &L.hold), STATUS_SUCCESS);
    lt_open(L.hold, "\\Device\\uwdfLtHold");
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT(&qc, WdfIoQueueDispatchManual);
    ck_assert_int_eq(WdfIoQueueCreate(filter, &qc, WDF_NO_OBJECT_ATTRIBUTES, &L.manual), STATUS_SUCCESS);
    WDFIOTARGET app;
    ck_assert_int_eq(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &app), STATUS_SUCCESS);
    lt_open(app, "\\Device\\uwdfLtFilter");
    ck_assert_str_eq(UwdfIoTargetGetBackendName(L.file), engine_names[engine]);

    /* Warm-up: caches, the handle table and malloc's arenas reach their
     * size. Destruction may trail the sender's wake-up by a moment (the
     * sender is told before the request it went through is deleted), so
     * counts are compared once they have settled. */
    struct counts start, before, after;
    long ios = lt_ios();
    counts_take(&start);
    app_run(app, WARMUP_IOS);
    for (int i = 0; i < 2000; i++) {
        counts_take(&before);
        if (counts_same_live(&start, &before))
            break;
        tu_sleep_ms(1);
    }
    long cleanups0 = atomic_load(&L.cleanups), destroys0 = atomic_load(&L.destroys);
    app_run(app, ios);
    for (int i = 0; i < 5000; i++) {
        counts_take(&after);
        if (counts_same_live(&before, &after))
            break;
        tu_sleep_ms(1);
    }
    char what[128];
    snprintf(what, sizeof(what), "%s %s %ld I/Os", pattern_names[pattern], engine_names[engine], ios);
    counts_print(what, &before, &after);
    ck_assert_msg(atomic_load(&L.errors) == 0, "%s: %ld driver errors, the first: %s", what,
                  atomic_load(&L.errors), L.first_error);
    ck_assert_msg(counts_same_live(&before, &after), "%s: live objects changed", what);
    /* Every request made for these I/Os (filter and holding device) was
     * destroyed, its two callbacks run once each. */
    long made = (long)created_delta(&before, &after, "WDFREQUEST") - APP_THREADS; /* less the app's */
    long cleanups = atomic_load(&L.cleanups) - cleanups0, destroys = atomic_load(&L.destroys) - destroys0;
    ck_assert_msg(made >= ios && cleanups == made && destroys == made,
                  "%s: %ld requests made, %ld cleanup and %ld destroy callbacks", what, made, cleanups, destroys);
    if (!under_sanitizer())
        ck_assert_msg(after.rss_pages - before.rss_pages <= RSS_SLACK_PAGES, "%s: RSS grew by %ld pages", what,
                      after.rss_pages - before.rss_pages);
    tu_env_fini(&e);
}

#define STEADY(p)                                                                                          \
    START_TEST(steady_##p)                                                                                 \
    {                                                                                                      \
        steady_state(p, _i);                                                                               \
    }                                                                                                      \
    END_TEST

STEADY(P_COMPLETE)
STEADY(P_OWN_OUT_ASYNC)
STEADY(P_OWN_IN_ASYNC)
STEADY(P_OWN_OUT_SYNC)
STEADY(P_DRV_MEM_ASYNC)
STEADY(P_DRV_MEM_SYNC)
STEADY(P_BUFFER_SYNC)
STEADY(P_MDL_SYNC)
STEADY(P_SEND_AND_FORGET)
STEADY(P_FORWARD_REQUEUE)
STEADY(P_REUSE)
STEADY(P_REFERENCE)
STEADY(P_CANCEL_ON_QUEUE)
STEADY(P_CANCEL_IN_FLIGHT)
STEADY(P_TIMEOUT)

/* ---- the issue's own scenario, small: the destroy callback ran 0 times ---- */

START_TEST(forwarded_with_own_memory_is_destroyed)
{
    struct tu_env e;
    lt_setup(&e, P_OWN_OUT_ASYNC, _i, WdfDeviceIoBuffered);
    WDFIOTARGET app;
    ck_assert_int_eq(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &app), STATUS_SUCCESS);
    lt_open(app, "\\Device\\uwdfLtFilter");
    app_run(app, 2000);
    for (int i = 0; i < 2000 && atomic_load(&L.destroys) < 2000; i++)
        tu_sleep_ms(1);
    long errors = atomic_load(&L.errors), cleanups = atomic_load(&L.cleanups), destroys = atomic_load(&L.destroys);
    ck_assert_msg(errors == 0 && cleanups == 2000 && destroys == 2000,
                  "2000 reads: %ld errors, %ld cleanup and %ld destroy callbacks", errors, cleanups, destroys);
    tu_env_fini(&e);
}
END_TEST

/* ---- the counting API ---- */

START_TEST(object_counts_api)
{
    UWDF_OBJECT_COUNT c[MAX_TYPES];
    ULONG n = 0;
    ck_assert_int_eq(UwdfQueryObjectCounts(NULL, &n), STATUS_BUFFER_TOO_SMALL);
    ck_assert_uint_ge(n, 8);
    ck_assert_uint_le(n, MAX_TYPES);
    ULONG room = n - 1;
    ck_assert_int_eq(UwdfQueryObjectCounts(c, &room), STATUS_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(room, n);
    ck_assert_int_eq(UwdfQueryObjectCounts(c, &n), STATUS_SUCCESS);
    /* Every type has a name of its own (a type added to the framework
     * without one would show as "unknown"). */
    for (ULONG i = 0; i < n; i++) {
        ck_assert_str_ne(c[i].TypeName, "unknown");
        for (ULONG j = 0; j < i; j++)
            ck_assert_str_ne(c[i].TypeName, c[j].TypeName);
    }
    UWDF_OBJECT_COUNT one, two;
    ck_assert_int_eq(UwdfQueryObjectCount("WDFNOSUCHTHING", &one), STATUS_OBJECT_NAME_NOT_FOUND);
    const char *const names[] = { "WDFDRIVER", "WDFDEVICE", "WDFQUEUE", "WDFREQUEST", "WDFIOTARGET",
                                  "WDFMEMORY", "WDFLOOKASIDE", "WDFOBJECT", "FLT_CALLBACK_DATA" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_int_eq(UwdfQueryObjectCount(names[i], &one), STATUS_SUCCESS);

    /* Counted from creation to destruction (not to WdfObjectDelete). */
    struct tu_env e;
    tu_env_init(&e);
    ck_assert_int_eq(UwdfQueryObjectCount("WDFMEMORY", &one), STATUS_SUCCESS);
    void *b;
    WDFMEMORY m = tu_make_memory(64, &b);
    ck_assert_int_eq(UwdfQueryObjectCount("WDFMEMORY", &two), STATUS_SUCCESS);
    ck_assert_uint_eq(two.Live, one.Live + 1);
    ck_assert_uint_eq(two.Created, one.Created + 1);
    WdfObjectReference(m);
    WdfObjectDelete(m);
    ck_assert_int_eq(UwdfQueryObjectCount("WDFMEMORY", &two), STATUS_SUCCESS);
    ck_assert_uint_eq(two.Live, one.Live + 1);
    WdfObjectDereference(m);
    ck_assert_int_eq(UwdfQueryObjectCount("WDFMEMORY", &two), STATUS_SUCCESS);
    ck_assert_uint_eq(two.Live, one.Live);

    /* Filter Manager callback data. */
    char *path = tu_env_file(&e, "f", 4096, 0);
    struct tu_flt f;
    tu_flt_open(&e, path, &f);
    PFLT_CALLBACK_DATA d;
    ck_assert_int_eq(UwdfQueryObjectCount("FLT_CALLBACK_DATA", &one), STATUS_SUCCESS);
    ck_assert_int_eq(FltAllocateCallbackData(f.instance, f.fo, &d), STATUS_SUCCESS);
    ck_assert_int_eq(UwdfQueryObjectCount("FLT_CALLBACK_DATA", &two), STATUS_SUCCESS);
    ck_assert_uint_eq(two.Live, one.Live + 1);
    FltFreeCallbackData(d);
    ck_assert_int_eq(UwdfQueryObjectCount("FLT_CALLBACK_DATA", &two), STATUS_SUCCESS);
    ck_assert_uint_eq(two.Live, one.Live);
    tu_flt_close(&f);
    free(path);
    tu_env_fini(&e);
    /* With the driver gone, nothing of it is left. */
    ck_assert_int_eq(UwdfQueryObjectCounts(c, &n), STATUS_SUCCESS);
    for (ULONG i = 0; i < n; i++)
        ck_assert_msg(c[i].Live == 0, "%llu %s alive after the driver was deleted",
                      (unsigned long long)c[i].Live, c[i].TypeName);
}
END_TEST

/* ---- the verifier's report at driver unload ---- */

static WDFREQUEST held_request;
static atomic_int held;

static VOID hold_forever(WDFQUEUE q, WDFREQUEST r, size_t len)
{
    (void)q;
    (void)len;
    held_request = r;
    atomic_store(&held, 1);
}

struct sender {
    WDFIOTARGET t;
    NTSTATUS status;
};

static void *sender_thread(void *p)
{
    struct sender *s = p;
    char buf[BLK];
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(60));
    LONGLONG off = 0;
    s->status = WdfIoTargetSendReadSynchronously(s->t, NULL, &d, &off, &o, NULL);
    return NULL;
}

struct unload {
    struct tu_env *e;
    atomic_int done;
};

static void *unload_thread(void *p)
{
    struct unload *u = p;
    tu_env_fini(u->e); /* deletes the driver */
    atomic_store(&u->done, 1);
    return NULL;
}

START_TEST(verifier_reports_leaks_at_unload)
{
    struct tu_env e;
    tu_use_backend(_i);
    tu_env_init(&e);
    UwdfSetVerifier(TRUE);
    WDFDEVICE dev = lt_device(e.driver, "\\Device\\uwdfLtLeak", hold_forever, NULL, WdfIoQueueDispatchParallel,
                              WdfDeviceIoBuffered);
    (void)dev;
    WDFIOTARGET app;
    ck_assert_int_eq(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &app), STATUS_SUCCESS);
    lt_open(app, "\\Device\\uwdfLtLeak");
    /* Leaked: a request and a memory object parented to the driver. Not
     * leaked: a request deleted, memory parented to a device. */
    WDFREQUEST leaked_req = tu_make_request(app), deleted_req = tu_make_request(app);
    void *b;
    WDFMEMORY leaked_mem = tu_make_memory(64, &b), dev_mem;
    WDF_OBJECT_ATTRIBUTES a;
    WDF_OBJECT_ATTRIBUTES_INIT(&a);
    a.ParentObject = e.device;
    ck_assert_int_eq(WdfMemoryCreate(&a, NonPagedPoolNx, 0, 64, &dev_mem, NULL), STATUS_SUCCESS);
    WdfObjectDelete(deleted_req);
    /* Presented and never completed: a synchronous read with the
     * framework's own request (no parent, so the unload has nothing of the
     * sender's to delete; the target's close waits for the read). */
    struct sender snd = { .t = app };
    pthread_t sth;
    ck_assert_int_eq(pthread_create(&sth, NULL, sender_thread, &snd), 0);
    for (int i = 0; i < 5000 && !atomic_load(&held); i++)
        tu_sleep_ms(1);
    ck_assert(atomic_load(&held));

    struct tu_stderr c;
    tu_stderr_begin(&c);
    struct unload u = { .e = &e };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, unload_thread, &u), 0);
    /* The unload waits for the presented request after reporting it. */
    char *log = NULL;
    char want[64];
    snprintf(want, sizeof(want), "WDFREQUEST %p, created by WDFQUEUE", (void *)held_request);
    for (int i = 0; i < 10000; i++) {
        free(log);
        log = tu_stderr_text(&c);
        if (strstr(log, want))
            break;
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(atomic_load(&u.done), 0);
    WdfRequestCompleteWithInformation(held_request, STATUS_SUCCESS, BLK);
    pthread_join(sth, NULL);
    pthread_join(th, NULL);
    free(log);
    log = tu_stderr_end(&c);
    char line[160];
    ck_assert_msg(strstr(log, want), "no report of the presented request in:\n%s", log);
    snprintf(line, sizeof(line), "WDFREQUEST %p, created by WdfRequestCreate", (void *)leaked_req);
    ck_assert_msg(strstr(log, line), "no '%s' in:\n%s", line, log);
    snprintf(line, sizeof(line), "WDFMEMORY %p, created by WdfMemoryCreate", (void *)leaked_mem);
    ck_assert_msg(strstr(log, line), "no '%s' in:\n%s", line, log);
    snprintf(line, sizeof(line), "%p", (void *)deleted_req);
    ck_assert_msg(!strstr(log, line), "a deleted request reported:\n%s", log);
    snprintf(line, sizeof(line), "%p", (void *)dev_mem);
    ck_assert_msg(!strstr(log, line), "memory parented to a device reported:\n%s", log);
    /* Each once. */
    snprintf(line, sizeof(line), "WDFREQUEST %p, created by WdfRequestCreate", (void *)leaked_req);
    ck_assert_ptr_null(strstr(strstr(log, line) + 1, line));
    ck_assert_int_eq(snd.status, STATUS_SUCCESS);
    free(log);
}
END_TEST

/* Without the verifier, nothing is reported. */
START_TEST(no_report_without_verifier)
{
    struct tu_env e;
    tu_use_backend(_i);
    tu_env_init(&e);
    WDFREQUEST r = tu_make_request(NULL);
    (void)r;
    struct tu_stderr c;
    tu_stderr_begin(&c);
    tu_env_fini(&e);
    char *log = tu_stderr_end(&c);
    ck_assert_msg(!strstr(log, "verifier"), "unexpected report:\n%s", log);
    free(log);
}
END_TEST

static Suite *lifetime_suite(void)
{
    Suite *s = suite_create("lifetime");
    TCase *tc = tu_tcase(s, "scenario", 60);
    tcase_add_loop_test(tc, forwarded_with_own_memory_is_destroyed, 0, ENGINES);
    tc = tu_tcase(s, "accounting", 60);
    tcase_add_test(tc, object_counts_api);
    tcase_add_loop_test(tc, verifier_reports_leaks_at_unload, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, no_report_without_verifier, 0, TU_BACKENDS);
    /* Long: 100,000 I/Os per pattern and engine (UWDF_LIFETIME_IOS). */
    tc = tu_tcase(s, "steady_state", 600);
    tcase_add_loop_test(tc, steady_P_COMPLETE, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_OWN_OUT_ASYNC, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_OWN_IN_ASYNC, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_OWN_OUT_SYNC, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_DRV_MEM_ASYNC, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_DRV_MEM_SYNC, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_BUFFER_SYNC, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_MDL_SYNC, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_SEND_AND_FORGET, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_FORWARD_REQUEUE, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_REUSE, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_REFERENCE, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_CANCEL_ON_QUEUE, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_CANCEL_IN_FLIGHT, 0, ENGINES);
    tcase_add_loop_test(tc, steady_P_TIMEOUT, 0, ENGINES);
    return s;
}

int main(void)
{
    return tu_main(lifetime_suite(), "lifetime");
}
