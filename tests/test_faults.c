/* Allocation-failure sweeps. Each workload below is first run clean to count
 * the framework allocations it makes (UwdfFaultAllocationCount), then rerun
 * with allocation 1, 2, ..., N failed in turn. Every run must end with a
 * documented status (STATUS_INSUFFICIENT_RESOURCES for an allocation that
 * failed), leak nothing (valgrind / LeakSanitizer check that) and leave the
 * objects usable: after each failed run the workload runs again without
 * injection and must succeed with the data intact. I/O workloads run once
 * per engine against a real file; the target life cycle also runs on a loop
 * device (root; without it that test is skipped and the program exits 77),
 * on an NBD export (nbdkit's file plugin over the same file) when this
 * build has NBD targets and nbdkit is installed, and on an RBD image
 * imported from the file inside the Ceph test cluster (tests/remote/test_rbd).
 *
 * Each sweep prints "faults: <workload> <engine> allocations=N failed=F"
 * (F = distinct allocation sites failed, N = allocations in a clean run), so
 * `grep '^faults:' tests/test_faults.log` gives the figures. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLK 4096
#define FILE_BLOCKS 16
#define FILE_SIZE (FILE_BLOCKS * BLK)
#define FILE_SEED 31u
#define LOOP_FILE_SIZE (1u << 20)
#define WAIT_MS 10000
#define MAX_ALLOCS 256 /* a clean run making more than this is itself a finding */
#define TEST_TIMEOUT_SEC 120
#define CYCLES 3       /* reuse cycles per async run */

/* A sweep's state: the environment (its file target, opened once outside
 * the sweep, must stay usable) and what the workloads add to it. */
struct fx {
    struct tu_env e;
    unsigned round;     /* varies the data from run to run */
    struct tu_flt flt;
    WDFIOTARGET qtarget; /* opened on the queue device (S_QUEUE) */
};

typedef NTSTATUS workload_fn(struct fx *fx);

struct workload {
    const char *name;
    workload_fn *run;
    /* What a run may end with when an allocation failed, besides
     * STATUS_INSUFFICIENT_RESOURCES (0-terminated). */
    NTSTATUS also[4];
    /* How many failed allocations a sweep may see absorbed, success then
     * being a correct outcome (counted): a queue's request served by a
     * reserved one (forward progress), or another engine that could not
     * start while one of the same kind runs (the target shares it). */
    unsigned may_absorb;
};

static bool documented(const struct workload *w, NTSTATUS s)
{
    if (s == STATUS_INSUFFICIENT_RESOURCES)
        return true;
    for (int i = 0; i < 4 && w->also[i]; i++)
        if (s == w->also[i])
            return true;
    return false;
}

/* Counts, then fails allocation 1..N in turn; returns the sites failed. */
static unsigned sweep(struct fx *fx, const struct workload *w)
{
    fx->round++;
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    NTSTATUS s = w->run(fx);
    ULONGLONG n = UwdfFaultAllocationCount();
    ck_assert_status_msg(s, STATUS_SUCCESS, "%s: clean run", w->name);
    ck_assert_msg(n > 0 && n <= MAX_ALLOCS, "%s: %llu allocations", w->name, (unsigned long long)n);
    unsigned failed = 0, absorbed = 0;
    for (ULONG i = 1; i <= n; i++) {
        fx->round++;
        UwdfFaultInjectAllocations(UwdfFaultAllocNth, i);
        s = w->run(fx);
        ULONGLONG failures = UwdfFaultAllocationFailures();
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        ck_assert_int_le(failures, 1);
        if (failures == 0) {
            /* Fewer allocations this time (a cache was warm): nothing failed. */
            ck_assert_status_msg(s, STATUS_SUCCESS, "%s: allocation %u not reached", w->name, i);
        } else if (s == STATUS_SUCCESS && w->may_absorb) {
            failed++;
            absorbed++;
        } else {
            failed++;
            ck_assert_msg(documented(w, s), "%s: allocation %u failed -> " TU_STATUS_FMT, w->name, i,
                          TU_STATUS_ARG(s));
        }
        ck_assert_msg(tu_last_bugcheck.count == 0, "%s: allocation %u: bug check %s", w->name, i,
                      tu_last_bugcheck.reason);
        /* Still usable: the same workload, clean, succeeds and checks data. */
        fx->round++;
        s = w->run(fx);
        ck_assert_status_msg(s, STATUS_SUCCESS, "%s: clean run after failing allocation %u", w->name, i);
    }
    /* Every allocation failing at once: failure paths that allocate again
     * while cleaning up must still end cleanly. */
    fx->round++;
    UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
    s = w->run(fx);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    ck_assert_msg(documented(w, s) || (w->may_absorb && s == STATUS_SUCCESS),
                  "%s: every allocation failing -> " TU_STATUS_FMT, w->name, TU_STATUS_ARG(s));
    fx->round++;
    ck_assert_status(w->run(fx), STATUS_SUCCESS);
    ck_assert_msg(absorbed <= w->may_absorb, "%s: %u failed allocations absorbed, at most %u expected", w->name,
                  absorbed, w->may_absorb);
    printf("faults: %s %s allocations=%llu failed=%u absorbed=%u\n", w->name,
           fx->e.engine ? fx->e.engine : "-", (unsigned long long)n, failed, absorbed);
    fflush(stdout);
    ck_assert_uint_gt(failed, 0);
    return failed;
}

/* backend: an index in tu_backend_names, or -1 for UWDF_BACKEND as it is. */
static void fx_init(struct fx *fx, int backend)
{
    memset(fx, 0, sizeof(*fx));
    /* Two engines per kind whatever the CPUs: a workload's second target
     * then always starts an engine (target_create_open_close). */
    ck_assert_status(UwdfSetEnginePoolSize(2), STATUS_SUCCESS);
    if (backend >= 0)
        tu_env_init_backend(&fx->e, backend);
    else
        tu_env_init(&fx->e);
    tu_env_open_file(&fx->e, FILE_SIZE, FILE_SEED, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
}

static LONGLONG block_of(struct fx *fx)
{
    return (LONGLONG)(fx->round % FILE_BLOCKS) * BLK;
}

/* ---- async send with reuse ---- */

static NTSTATUS async_once(WDFIOTARGET t, WDFREQUEST r, WDFMEMORY m, bool write, LONGLONG off)
{
    struct tu_completion c;
    WDF_REQUEST_SEND_OPTIONS o;
    NTSTATUS s = write ? WdfIoTargetFormatRequestForWrite(t, r, m, NULL, &off)
                       : WdfIoTargetFormatRequestForRead(t, r, m, NULL, &off);
    if (!NT_SUCCESS(s))
        return s;
    tu_completion_init(&c);
    WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
    /* A timeout, so the timer path (framework timer on libaio, linked
     * timeout on io_uring) is in the sweep too. */
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_TIMEOUT);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(30));
    if (!WdfRequestSend(r, t, &o)) {
        s = WdfRequestGetStatus(r);
        ck_assert_int_eq(tu_ncalls(&c), 0);
    } else {
        ck_assert(tu_completion_wait(&c, WAIT_MS));
        ck_assert_int_eq(tu_ncalls(&c), 1);
        s = c.status;
        if (NT_SUCCESS(s))
            ck_assert_uint_eq(c.information, BLK);
    }
    tu_completion_fini(&c);
    return s;
}

static NTSTATUS wl_async_reuse(struct fx *fx)
{
    WDFMEMORY m = NULL;
    WDFREQUEST r = NULL;
    void *buf;
    WDF_REQUEST_REUSE_PARAMS rp;
    NTSTATUS s = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, BLK, &m, &buf);
    if (NT_SUCCESS(s))
        s = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, fx->e.target, &r);
    for (unsigned c = 0; c < CYCLES && NT_SUCCESS(s); c++) {
        LONGLONG off = block_of(fx);
        unsigned seed = fx->round * 16 + c + 1;
        tu_fill_pattern(buf, BLK, seed, (uint64_t)off);
        s = async_once(fx->e.target, r, m, true, off);
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
        if (!NT_SUCCESS(s))
            break;
        memset(buf, 0, BLK);
        s = async_once(fx->e.target, r, m, false, off);
        ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
        if (NT_SUCCESS(s))
            ck_assert(tu_pattern_matches(buf, BLK, seed, (uint64_t)off));
    }
    if (r)
        WdfObjectDelete(r);
    if (m)
        WdfObjectDelete(m);
    return s;
}

/* ---- synchronous sends ---- */

static NTSTATUS sync_write_read(struct fx *fx, WDFREQUEST r)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_REQUEST_SEND_OPTIONS o;
    ULONG_PTR bytes = 7;
    LONGLONG off = block_of(fx);
    unsigned char *buf = tu_aligned_alloc(BLK);
    unsigned seed = fx->round + 100;
    tu_fill_pattern(buf, BLK, seed, (uint64_t)off);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_TIMEOUT);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(30));
    NTSTATUS s = WdfIoTargetSendWriteSynchronously(fx->e.target, r, &d, &off, &o, &bytes);
    if (NT_SUCCESS(s)) {
        ck_assert_uint_eq(bytes, BLK);
        memset(buf, 0, BLK);
        s = WdfIoTargetSendReadSynchronously(fx->e.target, r, &d, &off, &o, &bytes);
    }
    if (NT_SUCCESS(s)) {
        ck_assert_uint_eq(bytes, BLK);
        ck_assert(tu_pattern_matches(buf, BLK, seed, (uint64_t)off));
    } else {
        ck_assert_uint_eq(bytes, 0);
    }
    free(buf);
    return s;
}

static NTSTATUS wl_sync_no_request(struct fx *fx)
{
    return sync_write_read(fx, WDF_NO_HANDLE);
}

static NTSTATUS wl_sync_caller_request(struct fx *fx)
{
    WDFREQUEST r;
    NTSTATUS s = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, fx->e.target, &r);
    if (!NT_SUCCESS(s))
        return s;
    s = sync_write_read(fx, r);
    WdfObjectDelete(r);
    return s;
}

/* ---- request create / delete ---- */

typedef struct {
    unsigned magic;
} FAULT_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(FAULT_CTX, req_ctx_get);

static atomic_int g_cleanups;
static void on_cleanup(WDFOBJECT o)
{
    (void)o;
    atomic_fetch_add(&g_cleanups, 1);
}

static NTSTATUS wl_request_create_delete(struct fx *fx)
{
    WDF_OBJECT_ATTRIBUTES a;
    WDFREQUEST r1 = NULL, r2 = NULL;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, FAULT_CTX);
    a.EvtCleanupCallback = on_cleanup;
    atomic_store(&g_cleanups, 0);
    NTSTATUS s = WdfRequestCreate(&a, fx->e.target, &r1);
    if (NT_SUCCESS(s)) {
        req_ctx_get(r1)->magic = fx->round;
        PIRP irp = IoAllocateIrp(2, FALSE);
        if (!irp) {
            s = STATUS_INSUFFICIENT_RESOURCES;
        } else {
            s = WdfRequestCreateFromIrp(&a, irp, TRUE, &r2);
            if (!NT_SUCCESS(s))
                IoFreeIrp(irp); /* not taken on failure */
        }
    }
    if (NT_SUCCESS(s)) {
        ck_assert_uint_eq(req_ctx_get(r1)->magic, fx->round);
        ck_assert_uint_eq(req_ctx_get(r2)->magic, 0);
        /* Its IRP comes with its first use: here, and it may fail. */
        if (!WdfRequestWdmGetIrp(r1))
            s = STATUS_INSUFFICIENT_RESOURCES;
    }
    int created = (r1 != NULL) + (r2 != NULL);
    if (r2)
        WdfObjectDelete(r2);
    if (r1)
        WdfObjectDelete(r1);
    ck_assert_int_eq(atomic_load(&g_cleanups), created);
    return s;
}

/* ---- target create / open / close ---- */

static NTSTATUS target_cycle(struct fx *fx, const char *path, bool block)
{
    WDFIOTARGET t = NULL;
    NTSTATUS s = tu_target_open(fx->e.device, path, GENERIC_READ, FILE_OPEN,
                                FILE_NO_INTERMEDIATE_BUFFERING, &t);
    if (NT_SUCCESS(s)) {
        ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
        unsigned char *buf = tu_aligned_alloc(BLK);
        WDF_MEMORY_DESCRIPTOR d;
        LONGLONG off = BLK;
        ULONG_PTR bytes = 0;
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
        s = WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes);
        if (NT_SUCCESS(s) && !block)
            ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, BLK));
        if (NT_SUCCESS(s) && block)
            ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED + 1, BLK));
        free(buf);
        WdfIoTargetClose(t);
        ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    } else if (t) {
        ck_assert_int_ne(WdfIoTargetGetState(t), WdfIoTargetStarted);
    }
    if (t)
        WdfObjectDelete(t);
    return s;
}

static NTSTATUS wl_target_file(struct fx *fx)
{
    return target_cycle(fx, fx->e.path, false);
}

static const char *g_remote_name; /* the NBD URI or rbd: name of S_NBD/S_RBD */
static NTSTATUS wl_target_remote(struct fx *fx)
{
    return target_cycle(fx, g_remote_name, false);
}

static const char *g_loop_dev;
static NTSTATUS wl_target_loop(struct fx *fx)
{
    return target_cycle(fx, g_loop_dev, true);
}

/* ---- memory create ---- */

static NTSTATUS wl_memory_create(struct fx *fx)
{
    WDF_OBJECT_ATTRIBUTES a;
    WDFMEMORY m1 = NULL, m2 = NULL, m3 = NULL;
    WDFLOOKASIDE la = NULL;
    void *buf = NULL;
    unsigned char pre[64];
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, FAULT_CTX);
    a.EvtCleanupCallback = on_cleanup;
    atomic_store(&g_cleanups, 0);
    NTSTATUS s = WdfMemoryCreate(&a, NonPagedPoolNx, 'tsfu', 3 * BLK, &m1, &buf);
    if (NT_SUCCESS(s))
        s = WdfMemoryCreatePreallocated(&a, pre, sizeof(pre), &m2);
    if (NT_SUCCESS(s))
        s = WdfLookasideListCreate(WDF_NO_OBJECT_ATTRIBUTES, BLK, NonPagedPoolNx, &a, 0, &la);
    if (NT_SUCCESS(s))
        s = WdfMemoryCreateFromLookaside(la, &m3);
    if (NT_SUCCESS(s)) {
        size_t n = 0;
        memset(buf, (int)(fx->round & 0xff), 3 * BLK);
        ck_assert_ptr_eq(WdfMemoryGetBuffer(m1, &n), buf);
        ck_assert_uint_eq(n, 3 * BLK);
        ck_assert_status(WdfMemoryCopyToBuffer(m1, BLK, pre, sizeof(pre)), STATUS_SUCCESS);
        ck_assert_uint_eq(pre[63], fx->round & 0xff);
        ck_assert_status(WdfMemoryCopyFromBuffer(m3, 0, pre, sizeof(pre)), STATUS_SUCCESS);
        ck_assert_ptr_nonnull(WdfMemoryGetBuffer(m3, &n));
        ck_assert_uint_eq(n, BLK);
    }
    int created = (m1 != NULL) + (m2 != NULL) + (m3 != NULL);
    if (m3)
        WdfObjectDelete(m3);
    if (la)
        WdfObjectDelete(la);
    if (m2)
        WdfObjectDelete(m2);
    if (m1)
        WdfObjectDelete(m1);
    /* A failed create runs no callback of the object it did not make. */
    ck_assert_int_eq(atomic_load(&g_cleanups), created);
    return s;
}

/* ---- Flt perform ---- */

static void flt_set_rw(PFLT_CALLBACK_DATA d, UCHAR major, void *buf, LONGLONG off)
{
    d->Iopb->MajorFunction = major;
    d->Iopb->IrpFlags = major == IRP_MJ_WRITE ? IRP_WRITE_OPERATION : IRP_READ_OPERATION;
    d->Iopb->Parameters.Read.Length = BLK;
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = off;
    d->Iopb->Parameters.Read.ReadBuffer = buf;
    d->Iopb->Parameters.Read.MdlAddress = NULL;
}

struct flt_wait {
    KEVENT done;
    atomic_int calls;
    NTSTATUS status;
};

static void flt_cb(PFLT_CALLBACK_DATA d, PFLT_CONTEXT ctx)
{
    struct flt_wait *w = ctx;
    w->status = d->IoStatus.Status;
    atomic_fetch_add(&w->calls, 1);
    KeSetEvent(&w->done, 0, FALSE);
}

static NTSTATUS wl_flt_perform(struct fx *fx)
{
    PFLT_CALLBACK_DATA d = NULL;
    struct flt_wait w;
    LONGLONG off = block_of(fx);
    unsigned seed = fx->round + 200;
    unsigned char *buf = tu_aligned_alloc(BLK);
    NTSTATUS s = FltAllocateCallbackData(fx->flt.instance, fx->flt.fo, &d);
    if (!NT_SUCCESS(s)) {
        ck_assert_ptr_null(d);
        free(buf);
        return s;
    }
    tu_fill_pattern(buf, BLK, seed, (uint64_t)off);
    flt_set_rw(d, IRP_MJ_WRITE, buf, off);
    FltPerformSynchronousIo(d);
    s = d->IoStatus.Status;
    if (NT_SUCCESS(s)) {
        ck_assert_uint_eq(d->IoStatus.Information, BLK);
        FltReuseCallbackData(d);
        memset(buf, 0, BLK);
        flt_set_rw(d, IRP_MJ_READ, buf, off);
        KeInitializeEvent(&w.done, NotificationEvent, FALSE);
        atomic_init(&w.calls, 0);
        NTSTATUS r = FltPerformAsynchronousIo(d, flt_cb, &w);
        ck_assert_msg(r == STATUS_PENDING || r == STATUS_SUCCESS, "r == " TU_STATUS_FMT, TU_STATUS_ARG(r));
        LARGE_INTEGER to = { .QuadPart = -(LONGLONG)WAIT_MS * 10000 };
        ck_assert_status(KeWaitForSingleObject(&w.done, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
        /* The callback has signalled; let it return before the data is freed. */
        tu_sleep_ms(1);
        ck_assert_int_eq(atomic_load(&w.calls), 1);
        s = w.status;
        if (NT_SUCCESS(s))
            ck_assert(tu_pattern_matches(buf, BLK, seed, (uint64_t)off));
        UwdfKeDestroyEvent(&w.done);
    }
    FltFreeCallbackData(d);
    free(buf);
    return s;
}

/* FltCreateFileEx, FltWriteFile / FltReadFile (each allocates its own
 * callback data), FltClose. */
static NTSTATUS wl_flt_file(struct fx *fx)
{
    WCHAR wbuf[4096];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    HANDLE h = NULL;
    PFILE_OBJECT fo = NULL;
    tu_unicode(&us, wbuf, 4096, fx->e.path);
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE, NULL, NULL);
    NTSTATUS s = FltCreateFileEx(fx->flt.filter, fx->flt.instance, &h, &fo, GENERIC_READ | GENERIC_WRITE, &oa, &iosb,
                                 NULL, FILE_ATTRIBUTE_NORMAL, 0, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL, 0, 0);
    if (!NT_SUCCESS(s))
        return s;
    unsigned char *buf = tu_aligned_alloc(BLK);
    LARGE_INTEGER off = { .QuadPart = block_of(fx) };
    unsigned seed = fx->round + 300;
    ULONG bytes = 0;
    tu_fill_pattern(buf, BLK, seed, (uint64_t)off.QuadPart);
    s = FltWriteFile(fx->flt.instance, fo, &off, BLK, buf, 0, &bytes, NULL, NULL);
    if (NT_SUCCESS(s)) {
        ck_assert_uint_eq(bytes, BLK);
        memset(buf, 0, BLK);
        s = FltReadFile(fx->flt.instance, fo, &off, BLK, buf, 0, &bytes, NULL, NULL);
    }
    if (NT_SUCCESS(s))
        ck_assert(tu_pattern_matches(buf, BLK, seed, (uint64_t)off.QuadPart));
    free(buf);
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    ObDereferenceObject(fo);
    return s;
}

/* A second filter: register, start, volume, attach, detach, unregister. */
static NTSTATUS wl_flt_register_attach(struct fx *fx)
{
    static const FLT_REGISTRATION reg = { .Size = sizeof(FLT_REGISTRATION), .Version = FLT_REGISTRATION_VERSION };
    PFLT_FILTER f = NULL;
    PFLT_VOLUME v = NULL;
    PFLT_INSTANCE i = NULL;
    WCHAR wbuf[4096];
    UNICODE_STRING us;
    NTSTATUS s = FltRegisterFilter(WdfDriverWdmGetDriverObject(fx->e.driver), &reg, &f);
    if (!NT_SUCCESS(s)) {
        ck_assert_ptr_null(f);
        return s;
    }
    s = FltStartFiltering(f);
    if (NT_SUCCESS(s)) {
        tu_unicode(&us, wbuf, 4096, fx->e.dir);
        s = FltGetVolumeFromName(f, &us, &v);
    }
    if (NT_SUCCESS(s))
        s = FltAttachVolume(f, v, NULL, &i);
    if (NT_SUCCESS(s)) {
        PFLT_CALLBACK_DATA d = NULL;
        ck_assert_ptr_nonnull(i);
        s = FltAllocateCallbackData(i, NULL, &d);
        if (d)
            FltFreeCallbackData(d);
    }
    if (i) {
        ck_assert_status(FltDetachVolume(f, v, NULL), STATUS_SUCCESS);
        FltObjectDereference(i);
    }
    if (v)
        FltObjectDereference(v);
    FltUnregisterFilter(f);
    return s;
}

/* Objects with contexts and a parent: WdfObjectCreate, a second context
 * type, a child, deletion of the parent. */
typedef struct {
    unsigned long long v[4];
} FAULT_CTX2;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(FAULT_CTX2, ctx2_get);

static NTSTATUS wl_object_contexts(struct fx *fx)
{
    WDF_OBJECT_ATTRIBUTES a;
    WDFOBJECT parent = NULL, child = NULL;
    PVOID ctx = NULL;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, FAULT_CTX);
    a.EvtCleanupCallback = on_cleanup;
    atomic_store(&g_cleanups, 0);
    NTSTATUS s = WdfObjectCreate(&a, &parent);
    if (NT_SUCCESS(s)) {
        WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, FAULT_CTX2);
        s = WdfObjectAllocateContext(parent, &a, &ctx);
        ck_assert_msg(NT_SUCCESS(s) || ctx == NULL, "s == " TU_STATUS_FMT ", yet ctx %p", TU_STATUS_ARG(s), ctx);
    }
    if (NT_SUCCESS(s)) {
        ctx2_get(parent)->v[3] = fx->round;
        WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, FAULT_CTX);
        a.ParentObject = parent;
        a.EvtCleanupCallback = on_cleanup;
        s = WdfObjectCreate(&a, &child);
    }
    if (NT_SUCCESS(s)) {
        ck_assert_uint_eq(ctx2_get(parent)->v[3], fx->round);
        ck_assert_ptr_eq(WdfObjectContextGetObject(req_ctx_get(child)), child);
    }
    int created = (parent != NULL) + (child != NULL);
    if (parent)
        WdfObjectDelete(parent); /* the child goes with it */
    ck_assert_int_eq(atomic_load(&g_cleanups), created);
    return s;
}

/* An IOCTL the framework answers for a file target, sent asynchronously. */
static NTSTATUS wl_ioctl_async(struct fx *fx)
{
    WDFREQUEST r = NULL;
    WDFMEMORY m = NULL;
    GET_LENGTH_INFORMATION *li;
    struct tu_completion c;
    NTSTATUS s = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, sizeof(*li), &m, (PVOID *)&li);
    if (NT_SUCCESS(s))
        s = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, fx->e.target, &r);
    if (NT_SUCCESS(s))
        s = WdfIoTargetFormatRequestForIoctl(fx->e.target, r, IOCTL_DISK_GET_LENGTH_INFO, NULL, NULL, m, NULL);
    if (NT_SUCCESS(s)) {
        tu_completion_init(&c);
        WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
        if (WdfRequestSend(r, fx->e.target, WDF_NO_SEND_OPTIONS)) {
            ck_assert(tu_completion_wait(&c, WAIT_MS));
            s = c.status;
        } else {
            s = WdfRequestGetStatus(r);
        }
        if (NT_SUCCESS(s)) {
            ck_assert_uint_eq(c.information, sizeof(*li));
            ck_assert_int_eq(li->Length.QuadPart, FILE_SIZE);
        }
        tu_completion_fini(&c);
    }
    if (r)
        WdfObjectDelete(r);
    if (m)
        WdfObjectDelete(m);
    return s;
}

/* ---- queue dispatch with forward progress ---- */

#define Q_SEED 77u
#define Q_RESERVED 2
static atomic_int g_q_reserved_used;

/* The device answers reads with the pattern for the offset asked. */
static VOID q_read(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    WDF_REQUEST_PARAMETERS p;
    PVOID buf = NULL;
    size_t len = 0;
    (void)Queue;
    if (WdfRequestIsReserved(Request))
        atomic_fetch_add(&g_q_reserved_used, 1);
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(Request, &p);
    NTSTATUS s = WdfRequestRetrieveOutputBuffer(Request, Length, &buf, &len);
    if (NT_SUCCESS(s))
        tu_fill_pattern(buf, len, Q_SEED, (uint64_t)p.Parameters.Read.DeviceOffset);
    WdfRequestCompleteWithInformation(Request, s, NT_SUCCESS(s) ? len : 0);
}

static void fx_queue_init(struct fx *fx)
{
    WDFDEVICE dev;
    WDFQUEUE q;
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY fp;
    ck_assert_status(tu_device_create(fx->e.driver, "\\Device\\uwdfFaults", WdfDeviceIoBuffered,
                                      WDF_NO_OBJECT_ATTRIBUTES, NULL, &dev),
                     STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoRead = q_read;
    ck_assert_status(WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, &q), STATUS_SUCCESS);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_DEFAULT_INIT(&fp, Q_RESERVED);
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q, &fp), STATUS_SUCCESS);
    ck_assert_status(WdfIoTargetCreate(fx->e.device, WDF_NO_OBJECT_ATTRIBUTES, &fx->qtarget), STATUS_SUCCESS);
    ck_assert_status(
        tu_open_name(fx->qtarget, "\\Device\\uwdfFaults", GENERIC_READ, FILE_OPEN, FILE_NON_DIRECTORY_FILE),
        STATUS_SUCCESS);
}

/* Reads through the device's queue: two synchronous, one asynchronous with
 * the application's own request. When the queue cannot allocate a request
 * for a packet, a reserved one serves it and the read still succeeds. */
static NTSTATUS wl_queue_forward_progress(struct fx *fx)
{
    unsigned char buf[BLK];
    WDF_MEMORY_DESCRIPTOR d;
    ULONG_PTR bytes = 0;
    NTSTATUS s = STATUS_SUCCESS;
    for (int k = 0; k < 2 && NT_SUCCESS(s); k++) {
        LONGLONG off = block_of(fx) + k * BLK;
        memset(buf, 0, sizeof(buf));
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
        s = WdfIoTargetSendReadSynchronously(fx->qtarget, NULL, &d, &off, NULL, &bytes);
        if (NT_SUCCESS(s)) {
            ck_assert_uint_eq(bytes, BLK);
            ck_assert(tu_pattern_matches(buf, BLK, Q_SEED, (uint64_t)off));
        }
    }
    if (!NT_SUCCESS(s))
        return s;
    WDFMEMORY m = NULL;
    WDFREQUEST r = NULL;
    void *mb;
    s = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, BLK, &m, &mb);
    if (NT_SUCCESS(s))
        s = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, fx->qtarget, &r);
    if (NT_SUCCESS(s)) {
        LONGLONG off = block_of(fx) + 2 * BLK;
        s = async_once(fx->qtarget, r, m, false, off);
        if (NT_SUCCESS(s))
            ck_assert(tu_pattern_matches(mb, BLK, Q_SEED, (uint64_t)off));
    }
    if (r)
        WdfObjectDelete(r);
    if (m)
        WdfObjectDelete(m);
    return s;
}

/* ---- the table ---- */

/* S_SHARED: S_FILE on a pool of one engine, with a neighbour target on it
 * kept busy with reads (tu_reader) throughout the sweep; every one of its
 * reads must succeed, exactly once. S_NBD: fx->e.target is an NBD export of
 * the file (nbdkit file plugin). S_RBD: an RBD image imported from the
 * file, on the Ceph test cluster: only inside it (tests/remote/test_rbd
 * runs this program there with UWDF_FAULTS_RBD_ONLY=1, which leaves out
 * every other sweep). */
enum setup { S_FILE, S_SHARED, S_FLT, S_QUEUE, S_NBD, S_RBD, S_LOOP };
struct sweep_case {
    struct workload w;
    bool per_engine; /* run once per engine, else once on the default one */
    enum setup setup;
};

static const struct sweep_case sweeps[] = {
    { { "async_send_reuse", wl_async_reuse, { 0 }, 0 }, true, S_FILE },
    { { "sync_send_no_request", wl_sync_no_request, { 0 }, 0 }, true, S_FILE },
    { { "sync_send_caller_request", wl_sync_caller_request, { 0 }, 0 }, true, S_FILE },
    { { "request_create_delete", wl_request_create_delete, { 0 }, 0 }, false, S_FILE },
    /* The second target starts the second engine of the pool; when that
     * fails, it shares the engine of the first (fx->e.target). */
    { { "target_create_open_close", wl_target_file, { 0 }, 1 }, true, S_FILE },
    { { "memory_create", wl_memory_create, { 0 }, 0 }, false, S_FILE },
    { { "flt_perform", wl_flt_perform, { 0 }, 0 }, true, S_FLT },
    { { "flt_create_read_write_close", wl_flt_file, { 0 }, 0 }, true, S_FLT },
    { { "flt_register_attach", wl_flt_register_attach, { 0 }, 0 }, false, S_FILE },
    { { "object_contexts", wl_object_contexts, { 0 }, 0 }, false, S_FILE },
    { { "ioctl_async", wl_ioctl_async, { 0 }, 0 }, true, S_FILE },
    /* On an engine the workload's targets share with a busy neighbour (the
     * second target joins the one engine: no engine to start, none absorbed). */
    { { "async_send_reuse_shared", wl_async_reuse, { 0 }, 0 }, true, S_SHARED },
    { { "sync_send_no_request_shared", wl_sync_no_request, { 0 }, 0 }, true, S_SHARED },
    { { "target_create_open_close_shared", wl_target_file, { 0 }, 0 }, true, S_SHARED },
    { { "queue_dispatch_forward_progress", wl_queue_forward_progress, { 0 }, 16 }, true, S_QUEUE },
    { { "async_send_reuse_nbd", wl_async_reuse, { 0 }, 0 }, false, S_NBD },
    { { "sync_send_no_request_nbd", wl_sync_no_request, { 0 }, 0 }, false, S_NBD },
    { { "ioctl_async_nbd", wl_ioctl_async, { 0 }, 0 }, false, S_NBD },
    { { "target_create_open_close_nbd", wl_target_remote, { 0 }, 1 }, false, S_NBD }, /* as for files */
    { { "async_send_reuse_rbd", wl_async_reuse, { 0 }, 0 }, false, S_RBD },
    { { "sync_send_no_request_rbd", wl_sync_no_request, { 0 }, 0 }, false, S_RBD },
    { { "ioctl_async_rbd", wl_ioctl_async, { 0 }, 0 }, false, S_RBD },
    { { "target_create_open_close_rbd", wl_target_remote, { 0 }, 1 }, false, S_RBD },
    { { "target_create_open_close_loop", wl_target_loop, { 0 }, 1 }, true, S_LOOP }, /* last: needs root */
};
#define N_SWEEPS (sizeof(sweeps) / sizeof(sweeps[0]))

/* _i = workload * TU_BACKENDS + engine */
START_TEST(sweep_workload)
{
    const struct sweep_case *c = &sweeps[_i / TU_BACKENDS];
    int engine = _i % TU_BACKENDS;
    struct fx fx;
    char *backing = NULL;
    if (!c->per_engine && engine != 0)
        return;
    if (c->setup == S_NBD && !tu_nbd_available())
        return;
    if ((c->setup == S_RBD) != (getenv("UWDF_FAULTS_RBD_ONLY") != NULL) || (c->setup == S_RBD && !tu_rbd_available()))
        return;
    fx_init(&fx, c->per_engine ? engine : -1);
    struct tu_reader neighbour;
    char *npath = NULL;
    if (c->setup == S_SHARED) {
        ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
        npath = tu_env_file(&fx.e, "neighbour", TU_READER_BLOCKS * BLK, FILE_SEED + 2);
        tu_reader_start(&neighbour, fx.e.device, npath, FILE_SEED + 2, 2);
    }
    if (c->setup == S_FLT)
        tu_flt_open(&fx.e, fx.e.path, &fx.flt);
    if (c->setup == S_QUEUE) {
        fx_queue_init(&fx);
        atomic_store(&g_q_reserved_used, 0);
    }
    struct tu_nbdkit nbd;
    char file_arg[600];
    if (c->setup == S_NBD) {
        snprintf(file_arg, sizeof(file_arg), "file=%s", fx.e.path);
        const char *args[] = { "file", file_arg, NULL };
        tu_nbdkit_start(&fx.e, &nbd, "nbd.sock", args);
        g_remote_name = nbd.uri;
    }
    char rbd_name[700];
    if (c->setup == S_RBD) {
        char image[64];
        snprintf(image, sizeof(image), "faults-%d-%d", (int)getpid(), _i); /* CK_FORK=no: one process */
        ck_assert_int_eq(tu_rbd_tool("import '%s' '%s/%s'", fx.e.path, getenv("UWDF_CEPH_POOL"), image), 0);
        snprintf(rbd_name, sizeof(rbd_name), "rbd:%s/%s", getenv("UWDF_CEPH_POOL"), image);
        g_remote_name = rbd_name;
    }
    if (c->setup == S_NBD || c->setup == S_RBD) {
        WdfObjectDelete(fx.e.target);
        ck_assert_status(tu_target_open(fx.e.device, g_remote_name, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0,
                                        &fx.e.target),
                         STATUS_SUCCESS);
        ck_assert_str_eq(UwdfIoTargetGetBackendName(fx.e.target), c->setup == S_NBD ? "nbd" : "rbd");
    }
    if (c->setup == S_LOOP) {
        backing = tu_env_file(&fx.e, "loop.img", LOOP_FILE_SIZE, FILE_SEED + 1);
        g_loop_dev = tu_env_loop(&fx.e, backing, 0);
        ck_assert_ptr_nonnull(g_loop_dev);
    }
    sweep(&fx, &c->w);
    if (c->setup == S_QUEUE) /* the reserve did serve packets whose allocation failed */
        ck_assert_int_gt(atomic_load(&g_q_reserved_used), 0);
    if (c->setup == S_FLT)
        tu_flt_close(&fx.flt);
    if (c->setup == S_SHARED) {
        /* Still served (a fast sweep may end before its first read). */
        ck_assert(tu_reader_progresses(&neighbour, 1, 10000));
        tu_reader_stop(&neighbour);
        free(npath);
    }
    free(backing);
    if (c->setup == S_NBD || c->setup == S_RBD)
        WdfObjectDelete(fx.e.target);
    if (c->setup == S_NBD)
        tu_nbdkit_stop(&nbd);
    tu_env_fini(&fx.e);
    UwdfSetEnginePoolSize(0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tu_tcase(s, "allocation_failure_sweep", TEST_TIMEOUT_SEC);
    bool root = tu_root();
    /* The loop-device sweep is last in the table and needs root. */
    tcase_add_loop_test(tc, sweep_workload, 0, (int)(N_SWEEPS - (root ? 0 : 1)) * TU_BACKENDS);
    return tu_main_root(s, "test_faults", "the loop-device sweep was skipped");
}
