/* What objects cost in memory, measured the way an application sees it:
 * the process's resident set grows by so much per object over 100,000 of
 * them (handle-table slots, allocator headers and all). Not meaningful
 * under valgrind or a sanitizer (their allocators pad every block): there
 * the test only prints. And what keeps it small costs no allocation per
 * I/O: the parts of the send state only some sends use are allocated once
 * (framework allocations counted by UwdfFaultAllocationCount). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define N 100000
#define BLK 512

/* Bounds, a few per cent over what the layout costs now (glibc, x86-64;
 * measured: 439, 439, 503, 256 and 288 bytes), so that a field made large
 * again fails here: a request from WdfRequestCreate (no IRP, no send state
 * yet); the same after a send to a file target (still no IRP: the send
 * reads the format from the request; its send state went back to its
 * target's pool); a request
 * a queue presented (request and its received part in one allocation;
 * what only retrievals, bounce buffers and some sends use comes on first
 * use and stays with the recycled memory); the send state a sent request
 * holds while in flight; a Flt callback data block. */
#define MAX_CREATED 440
#define MAX_USED 456
#define MAX_PRESENTED 512 /* issue 24's bound */
#define MAX_SEND_STATE 272
#define MAX_FLT_CALLBACK_DATA 320

static long rss_bytes(void)
{
    return tu_rss_kib() * 1024;
}

static bool meaningful(void)
{
    return !tu_instrumented();
}

/* Bytes per object between two RSS readings, printed for the record. */
static long per_object(const char *what, long before, long after)
{
    long per = (after - before) / N;
    printf("footprint: %s: %ld bytes each (RSS +%ld KiB over %d)\n", what, per, (after - before) / 1024, N);
    return per;
}

/* The environment on the null engine (no I/O: what is measured is the
 * framework's), with a file target on a 1 MiB file. */
static WDFIOTARGET null_file_target(struct tu_env *e, char **path)
{
    WDFIOTARGET t;
    setenv("UWDF_BACKEND", "null", 1);
    tu_env_init(e);
    *path = tu_env_file(e, "f", 1 << 20, 0);
    ck_assert_status(tu_target_open(e->device, *path, GENERIC_READ, FILE_OPEN, 0, &t), STATUS_SUCCESS);
    return t;
}

static WDFREQUEST *g_reqs;

START_TEST(request_costs_stay_within_their_bounds_before_and_after_a_send)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = null_file_target(&e, &path);
    g_reqs = calloc(N, sizeof(*g_reqs));
    ck_assert_ptr_nonnull(g_reqs);
    /* The array's own pages count before the first reading. */
    for (int i = 0; i < N; i++)
        g_reqs[i] = NULL;
    long before = rss_bytes();
    for (int i = 0; i < N; i++)
        ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &g_reqs[i]), STATUS_SUCCESS);
    long created = rss_bytes();
    long per_created = per_object("request from WdfRequestCreate", before, created);

    /* Each sent once: no IRP (nobody asked for one); the send state each
     * took from the target's pool went back at its completion. */
    WDFMEMORY mem;
    void *buf;
    ck_assert_status(WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, BLK, &mem, &buf),
                     STATUS_SUCCESS);
    long used_before = rss_bytes();
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    for (int i = 0; i < N; i++) {
        LONGLONG off = 0;
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, g_reqs[i], mem, NULL, &off), STATUS_SUCCESS);
        ck_assert(WdfRequestSend(g_reqs[i], t, &o));
        ck_assert_status(WdfRequestGetStatus(g_reqs[i]), STATUS_SUCCESS);
    }
    long used = rss_bytes();
    long per_used = per_object("the same after one send (no IRP; send state back in the pool)", before, used);
    (void)used_before;
    if (meaningful()) {
        ck_assert_int_le(per_created, MAX_CREATED);
        ck_assert_int_le(per_used, MAX_USED);
    }
    for (int i = 0; i < N; i++)
        WdfObjectDelete(g_reqs[i]);
    free(g_reqs);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(flt_callback_data_cost_stays_within_its_bound)
{
    struct tu_env e;
    struct tu_flt f;
    setenv("UWDF_BACKEND", "null", 1);
    tu_env_init(&e);
    char *path = tu_env_file(&e, "f", 1 << 20, 0);
    tu_flt_open(&e, path, &f);
    PFLT_CALLBACK_DATA *d = calloc(N, sizeof(*d));
    ck_assert_ptr_nonnull(d);
    for (int i = 0; i < N; i++)
        d[i] = NULL;
    long before = rss_bytes();
    for (int i = 0; i < N; i++)
        ck_assert_status(FltAllocateCallbackData(f.instance, f.fo, &d[i]), STATUS_SUCCESS);
    long after = rss_bytes();
    long per = per_object("Flt callback data (FltAllocateCallbackData)", before, after);
    if (meaningful())
        ck_assert_int_le(per, MAX_FLT_CALLBACK_DATA);
    for (int i = 0; i < N; i++)
        FltFreeCallbackData(d[i]);
    free(d);
    tu_flt_close(&f);
    free(path);
    tu_env_fini(&e);
}
END_TEST

static atomic_int g_done;

static VOID count_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                       WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    (void)Params;
    (void)Context;
    atomic_fetch_add(&g_done, 1);
}

/* 100,000 reads sent to an in-process device whose manual queue keeps
 * them: the growth is what the presented requests cost. The senders were
 * created and formatted before the first reading, and sent while their
 * target was stopped: what they take when sent (a send state each from
 * the target's pool) is measured on its own, before the target starts and
 * the device's queue gets them. */
START_TEST(request_presented_by_a_queue_cost_stays_within_its_bound)
{
    struct tu_env e;
    tu_env_init(&e);
    WDFDEVICE dev;
    WCHAR wbuf[64];
    UNICODE_STRING us;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(e.driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    tu_unicode(&us, wbuf, 64, "\\Device\\uwdfFootprint");
    ck_assert_status(WdfDeviceInitAssignName(init, &us), STATUS_SUCCESS);
    WdfDeviceInitSetIoType(init, WdfDeviceIoDirect);
    ck_assert_status(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &dev), STATUS_SUCCESS);
    WdfControlFinishInitializing(dev);
    WDF_IO_QUEUE_CONFIG cfg;
    WDFQUEUE q;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&cfg, WdfIoQueueDispatchManual);
    ck_assert_status(WdfIoQueueCreate(dev, &cfg, WDF_NO_OBJECT_ATTRIBUTES, &q), STATUS_SUCCESS);
    WDFIOTARGET t;
    ck_assert_status(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_SUCCESS);
    tu_open_by_name(t, "\\Device\\uwdfFootprint", 0);
    WDFMEMORY mem;
    void *buf;
    ck_assert_status(WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, BLK, &mem, &buf),
                     STATUS_SUCCESS);
    g_reqs = calloc(N, sizeof(*g_reqs));
    ck_assert_ptr_nonnull(g_reqs);
    for (int i = 0; i < N; i++) {
        LONGLONG off = 0;
        ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &g_reqs[i]), STATUS_SUCCESS);
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, g_reqs[i], mem, NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(g_reqs[i], count_done, NULL);
    }
    atomic_store(&g_done, 0);
    WdfIoTargetStop(t, WdfIoTargetLeaveSentIoPending);
    long before = rss_bytes();
    for (int i = 0; i < N; i++)
        ck_assert(WdfRequestSend(g_reqs[i], t, WDF_NO_SEND_OPTIONS));
    long pended = rss_bytes();
    long per_sent = per_object("a sent request's send state (pended on a stopped target)", before, pended);
    ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    long after = rss_bytes();
    long per = per_object("request presented by a queue (waiting on a manual queue)", pended, after);
    ck_assert_int_eq(atomic_load(&g_done), 0);
    if (meaningful()) {
        ck_assert_int_le(per_sent, MAX_SEND_STATE);
        ck_assert_int_le(per, MAX_PRESENTED);
    }
    WdfIoQueuePurgeSynchronously(q);
    double end = tu_now_ms() + 30000;
    while (atomic_load(&g_done) < N && tu_now_ms() < end)
        tu_sleep_ms(1);
    ck_assert_int_eq(atomic_load(&g_done), N);
    for (int i = 0; i < N; i++)
        WdfObjectDelete(g_reqs[i]);
    free(g_reqs);
    tu_env_fini(&e);
}
END_TEST

/* The rarely used part of the send state is allocated once: a request
 * from WdfRequestCreate sent again and again with a timeout (the null
 * engine has no kernel timeout: the framework timer, in that part) and
 * from an MDL chain (its segment array, there too) allocates nothing
 * after its first send. */
START_TEST(resends_with_a_timeout_and_an_mdl_chain_allocate_nothing)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = null_file_target(&e, &path);
    WDFREQUEST r;
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &r), STATUS_SUCCESS);
    WDFMEMORY mem;
    void *buf;
    ck_assert_status(WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, 3 * BLK, &mem, &buf),
                     STATUS_SUCCESS);
    PMDL m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = IoAllocateMdl((char *)buf + i * BLK, BLK, FALSE, FALSE, NULL);
        MmBuildMdlForNonPagedPool(m[i]);
        if (i)
            m[i - 1]->Next = m[i];
    }
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS | WDF_REQUEST_SEND_OPTION_TIMEOUT);
    o.Timeout = WDF_REL_TIMEOUT_IN_SEC(10);
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    for (int i = 0; i < 100; i++) {
        if (i == 1)
            UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0); /* resets the count */
        LONGLONG off = 0;
        ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, r, mem, NULL, &off), STATUS_SUCCESS);
        ck_assert(WdfRequestSend(r, t, &o));
        ck_assert_status(WdfRequestGetStatus(r), STATUS_SUCCESS);
        /* The same request over the MDL chain, as a presented direct-I/O
         * read would be forwarded. */
        ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, r, mem, NULL, &off), STATUS_SUCCESS);
        PIRP irp = WdfRequestWdmGetIrp(r);
        irp->MdlAddress = m[0];
        IoGetNextIrpStackLocation(irp)->Parameters.Read.Length = 3 * BLK;
        ck_assert(WdfRequestSend(r, t, &o));
        ck_assert_status(WdfRequestGetStatus(r), STATUS_SUCCESS);
        ck_assert_uint_eq(WdfRequestGetInformation(r), 3 * BLK);
        irp->MdlAddress = NULL;
    }
    ck_assert_uint_eq(UwdfFaultAllocationCount(), 0);
    WdfObjectDelete(r);
    for (int i = 0; i < 3; i++)
        IoFreeMdl(m[i]);
    WdfObjectDelete(mem);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* A filter that forwards every request it is presented with a timeout, and
 * a sender that sends the next request from its completion routine (on
 * the engine thread, where the presented requests' memory is recycled): in
 * steady state no I/O allocates: the part with a presented request's
 * timer, allocated on its first timed send, stays with its memory when
 * that is recycled, not allocated per presentation. */
static WDFIOTARGET g_lower, g_upper;
static WDFREQUEST g_sender;
static WDFMEMORY g_mem;
static atomic_int g_left;
static bool g_retrieve; /* the filter also retrieves the output memory */
/* The chain sends METHOD_BUFFERED IOCTLs (of g_mem's size) instead of
 * reads, to a buffered-I/O device: each presented one gets a bounce
 * buffer as its system buffer, read into from the file. */
static bool g_ioctl;
#define IOCTL_FOOTPRINT_BUFFERED CTL_CODE(FILE_DEVICE_UNKNOWN, 0x8f0, METHOD_BUFFERED, FILE_ANY_ACCESS)

static VOID fwd_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                     WDFCONTEXT Context)
{
    (void)Target;
    (void)Context;
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

static VOID fwd_with_timeout(WDFQUEUE Queue, WDFREQUEST Request)
{
    (void)Queue;
    if (g_retrieve) {
        WDFMEMORY m;
        size_t len = 0;
        if (!NT_SUCCESS(WdfRequestRetrieveOutputMemory(Request, &m)) || !WdfMemoryGetBuffer(m, &len) ||
            len != BLK)
            atomic_store(&g_left, -1000000);
    }
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_TIMEOUT);
    o.Timeout = WDF_REL_TIMEOUT_IN_SEC(10);
    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, fwd_done, NULL);
    if (!WdfRequestSend(Request, g_lower, &o))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

static VOID fwd_ioctl_as_read(WDFQUEUE Queue, WDFREQUEST Request, size_t OutputBufferLength, size_t InputBufferLength,
                              ULONG IoControlCode)
{
    (void)Queue;
    (void)InputBufferLength;
    (void)IoControlCode;
    WDFMEMORY m;
    LONGLONG off = 0;
    NTSTATUS st = WdfRequestRetrieveOutputMemory(Request, &m);
    if (NT_SUCCESS(st))
        st = WdfIoTargetFormatRequestForRead(g_lower, Request, m, NULL, &off);
    if (!NT_SUCCESS(st) || OutputBufferLength == 0) {
        WdfRequestComplete(Request, NT_SUCCESS(st) ? STATUS_INVALID_PARAMETER : st);
        return;
    }
    WdfRequestSetCompletionRoutine(Request, fwd_done, NULL);
    if (!WdfRequestSend(Request, g_lower, WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

static void send_next(void);

static VOID sender_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                        WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    (void)Context;
    if (!NT_SUCCESS(Params->IoStatus.Status))
        atomic_store(&g_left, -1000000);
    if (atomic_fetch_sub(&g_left, 1) > 1)
        send_next();
}

static void send_next(void)
{
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    LONGLONG off = 0;
    if (!NT_SUCCESS(WdfRequestReuse(g_sender, &rp)) ||
        !NT_SUCCESS(g_ioctl ? WdfIoTargetFormatRequestForIoctl(g_upper, g_sender, IOCTL_FOOTPRINT_BUFFERED, NULL, NULL,
                                                               g_mem, NULL)
                            : WdfIoTargetFormatRequestForRead(g_upper, g_sender, g_mem, NULL, &off))) {
        atomic_store(&g_left, -1000000);
        return;
    }
    WdfRequestSetCompletionRoutine(g_sender, sender_done, NULL);
    if (!WdfRequestSend(g_sender, g_upper, WDF_NO_SEND_OPTIONS))
        atomic_store(&g_left, -1000000);
}

static void run_chain(int n)
{
    atomic_store(&g_left, n);
    send_next();
    double end = tu_now_ms() + 30000;
    while (atomic_load(&g_left) > 0 && tu_now_ms() < end)
        tu_sleep_ms(1);
    ck_assert_int_eq(atomic_load(&g_left), 0);
}

/* The chain of presented requests, n at a time; what the second run
 * allocated. */
static ULONGLONG chain_allocations(bool retrieve, bool ioctl, size_t len)
{
    struct tu_env e;
    g_retrieve = retrieve;
    g_ioctl = ioctl;
    setenv("UWDF_BACKEND", "null", 1);
    tu_env_init(&e);
    char *path = tu_env_file(&e, "f", 1 << 20, 0);
    WDFDEVICE dev;
    ck_assert_status(tu_device_create(e.driver, "\\Device\\uwdfFootprintFwd",
                                      ioctl ? WdfDeviceIoBuffered : WdfDeviceIoDirect, NULL, NULL, &dev),
                     STATUS_SUCCESS);
    g_lower = WdfDeviceGetIoTarget(dev);
    ck_assert_status(tu_open_name(g_lower, path, GENERIC_READ, FILE_OPEN, 0), STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG cfg;
    WDFQUEUE q;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&cfg, WdfIoQueueDispatchParallel);
    cfg.EvtIoDefault = fwd_with_timeout;
    cfg.EvtIoDeviceControl = fwd_ioctl_as_read;
    ck_assert_status(WdfIoQueueCreate(dev, &cfg, WDF_NO_OBJECT_ATTRIBUTES, &q), STATUS_SUCCESS);
    ck_assert_status(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &g_upper), STATUS_SUCCESS);
    tu_open_by_name(g_upper, "\\Device\\uwdfFootprintFwd", 0);
    void *buf;
    ck_assert_status(WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, len, &g_mem, &buf),
                     STATUS_SUCCESS);
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, g_upper, &g_sender), STATUS_SUCCESS);
    run_chain(50); /* warm-up: first sends, recycled memory in place */
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    run_chain(500);
    ULONGLONG allocs = UwdfFaultAllocationCount();
    WdfObjectDelete(g_sender);
    WdfObjectDelete(g_upper);
    WdfObjectDelete(g_mem);
    free(path);
    tu_env_fini(&e);
    return allocs;
}

START_TEST(presented_requests_forwarded_with_a_timeout_allocate_nothing)
{
    /* Two: the chain's first request is presented on this thread, which
     * has no recycled memory (the request, and its timer's part at its
     * send); the other 499 reuse the engine thread's, with their parts. */
    ck_assert_uint_le(chain_allocations(false, false, BLK), 2);
}
END_TEST

/* The retrieved memory objects come with the part allocated on first
 * retrieval, which stays with a recycled request's memory too. */
START_TEST(presented_requests_retrieving_their_memory_allocate_nothing)
{
    /* Three: the first request, its timer's part and its retrieval part
     * (which has its MDL too). */
    ck_assert_uint_le(chain_allocations(true, false, BLK), 3);
}
END_TEST

/* A buffered IOCTL's bounce buffer stays with a recycled request's memory
 * too, up to 64 KiB; a larger one is not kept (each of the recycled
 * memories a thread keeps would hold one), so it is allocated per I/O. */
START_TEST(presented_requests_keep_a_small_bounce_buffer_not_a_large_one)
{
    ULONGLONG small = chain_allocations(false, true, 4096);
    ULONGLONG large = chain_allocations(false, true, 1 << 20);
    ck_assert_uint_le(small, 3);     /* the first request, its retrieval part, its bounce */
    ck_assert_uint_ge(large, 500);   /* the bounce of each */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("footprint");
    TCase *tc = tu_tcase(s, "requests", 120);
    tcase_add_test(tc, request_costs_stay_within_their_bounds_before_and_after_a_send);
    tcase_add_test(tc, flt_callback_data_cost_stays_within_its_bound);
    tcase_add_test(tc, request_presented_by_a_queue_cost_stays_within_its_bound);
    tcase_add_test(tc, resends_with_a_timeout_and_an_mdl_chain_allocate_nothing);
    tcase_add_test(tc, presented_requests_forwarded_with_a_timeout_allocate_nothing);
    tcase_add_test(tc, presented_requests_retrieving_their_memory_allocate_nothing);
    tcase_add_test(tc, presented_requests_keep_a_small_bounce_buffer_not_a_large_one);
    return tu_run_suite(s);
}
