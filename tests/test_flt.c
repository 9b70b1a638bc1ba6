/* Filter Manager callback-data I/O (fltkernel.h): registration, volumes,
 * FltCreateFileEx confinement, allocate / perform / reuse / free, the
 * asynchronous reissue-from-callback pattern, the bug check on reuse of
 * in-flight data, allocation failures, FltReadFile / FltWriteFile and the
 * file object's current byte offset, and a block-device (loop) volume. Every
 * I/O test runs once per engine. Loop-device tests need root; without it the
 * program reports SKIP (77) after the rest ran. */
#define _GNU_SOURCE
#include "testutil.h"

#include "../lib/internal.h" /* uwdf_tls_irql: no DDI raises above DISPATCH_LEVEL */
#include "../lib/resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <fltkernel.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK 4096
#define FILE_BLOCKS 16
#define FILE_SIZE (FILE_BLOCKS * BLK)
#define FILE_SEED 7u
#define LOOPS 10000
#define WAIT_MS 60000
#define TEST_TIMEOUT_SEC 240
#define DEV_SIZE (16u << 20) /* the loop device's backing file */
#define DEV_BLOCKS (DEV_SIZE / BLK)
#define DEV_LOOPS 1000
/* The reissue pass uses blocks [0, FILE_BLOCKS); the synchronous pass the
 * rest, at a stride coprime with their count so no block is written twice. */
#define DEV_SYNC_FIRST FILE_BLOCKS
#define DEV_SYNC_BLOCKS (DEV_BLOCKS - DEV_SYNC_FIRST)
#define DEV_STRIDE 37

static const FLT_REGISTRATION g_reg = {
    .Size = sizeof(FLT_REGISTRATION),
    .Version = FLT_REGISTRATION_VERSION,
};

/* The environment on one engine with a filter attached to a volume. */
struct fenv {
    struct tu_env e;
    struct tu_flt f; /* the filter alone: no file of its own */
};

static void volume_of(PFLT_FILTER f, const char *path, NTSTATUS expect, PFLT_VOLUME *v)
{
    WCHAR buf[4096];
    UNICODE_STRING us;
    tu_unicode(&us, buf, 4096, path);
    ck_assert_status(FltGetVolumeFromName(f, &us, v), expect);
}

static void fenv_init(struct fenv *fe, int backend)
{
    tu_env_init_backend(&fe->e, backend);
    tu_flt_attach(&fe->e, fe->e.dir, &fe->f);
}

static void fenv_fini(struct fenv *fe)
{
    tu_flt_detach(&fe->f);
    tu_env_fini(&fe->e);
}

static NTSTATUS open_path(struct fenv *fe, const char *path, ULONG disposition, ULONG options, HANDLE *h,
                          PFILE_OBJECT *fo, IO_STATUS_BLOCK *iosb)
{
    size_t chars = strlen(path) + 1;
    WCHAR *buf = malloc(chars * sizeof(WCHAR));
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    ck_assert_ptr_nonnull(buf);
    tu_unicode(&us, buf, chars, path);
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, NULL);
    NTSTATUS s = FltCreateFileEx(fe->f.filter, fe->f.instance, h, fo, GENERIC_READ | GENERIC_WRITE, &oa, iosb, NULL,
                                 FILE_ATTRIBUTE_NORMAL, 0, disposition, options, NULL, 0, 0);
    free(buf);
    return s;
}

/* A FILE_SIZE pattern file opened unbuffered (O_DIRECT). */
static PFILE_OBJECT open_direct(struct fenv *fe, const char *name, HANDLE *h)
{
    PFILE_OBJECT fo = NULL;
    IO_STATUS_BLOCK iosb;
    free(tu_env_file(&fe->e, name, FILE_SIZE, FILE_SEED));
    char *path = tu_env_path(&fe->e, name);
    ck_assert_status(open_path(fe, path, FILE_OPEN, FILE_NON_DIRECTORY_FILE | FILE_NO_INTERMEDIATE_BUFFERING, h,
                               &fo, &iosb),
                     STATUS_SUCCESS);
    ck_assert_status(iosb.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_OPENED);
    ck_assert(fo->Flags & FO_NO_INTERMEDIATE_BUFFERING);
    free(path);
    return fo;
}

static void close_file(HANDLE h, PFILE_OBJECT fo)
{
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    ObDereferenceObject(fo);
}

static void set_rw(PFLT_CALLBACK_DATA d, UCHAR major, void *buf, ULONG len, LONGLONG off)
{
    d->Iopb->MajorFunction = major;
    d->Iopb->MinorFunction = 0;
    d->Iopb->IrpFlags = major == IRP_MJ_WRITE ? IRP_WRITE_OPERATION : IRP_READ_OPERATION;
    d->Iopb->OperationFlags = 0;
    d->Iopb->Parameters.Read.Length = len;
    d->Iopb->Parameters.Read.Key = 0;
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = off;
    d->Iopb->Parameters.Read.ReadBuffer = buf;
    d->Iopb->Parameters.Read.MdlAddress = NULL;
}

static bool params_zero(PFLT_CALLBACK_DATA d)
{
    static const FLT_PARAMETERS zero;
    return memcmp(&d->Iopb->Parameters, &zero, sizeof(zero)) == 0 && d->Iopb->MajorFunction == 0 &&
           d->Iopb->IrpFlags == 0 && d->IoStatus.Status == STATUS_SUCCESS && d->IoStatus.Information == 0 &&
           d->Flags == (FLTFL_CALLBACK_DATA_IRP_OPERATION | FLTFL_CALLBACK_DATA_GENERATED_IO);
}

/* ---- registration and volumes ---- */

START_TEST(register_start_unregister_and_bad_registration)
{
    WDFDRIVER drv = tu_make_driver();
    PFLT_FILTER f = NULL;
    DRIVER_OBJECT other;
    FLT_REGISTRATION bad = g_reg;
    memset(&other, 0, sizeof(other));
    ck_assert_status(FltRegisterFilter(&other, &g_reg, &f), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(f);
    bad.Version = 0x0100;
    ck_assert_status(FltRegisterFilter(WdfDriverWdmGetDriverObject(drv), &bad, &f), STATUS_INVALID_PARAMETER);
    bad = g_reg;
    bad.Size = 8;
    ck_assert_status(FltRegisterFilter(WdfDriverWdmGetDriverObject(drv), &bad, &f), STATUS_INVALID_PARAMETER);
    ck_assert_status(FltRegisterFilter(WdfDriverWdmGetDriverObject(drv), &g_reg, &f), STATUS_SUCCESS);
    ck_assert_ptr_nonnull(f);
    ck_assert_status(FltStartFiltering(f), STATUS_SUCCESS);
    FltUnregisterFilter(f);
    WdfObjectDelete(drv);
}
END_TEST

START_TEST(volume_names_and_create_outside_volume_refused)
{
    struct fenv fe;
    fenv_init(&fe, _i);
    PFLT_VOLUME v = NULL;
    char *missing = tu_env_path(&fe.e, "no-such-dir");
    char *plain = tu_env_file(&fe.e, "plain", BLK, 1);
    volume_of(fe.f.filter, missing, STATUS_OBJECT_NAME_NOT_FOUND, &v);
    volume_of(fe.f.filter, plain, STATUS_INVALID_PARAMETER, &v);
    ck_assert_ptr_null(v);

    HANDLE h = NULL;
    PFILE_OBJECT fo = NULL;
    IO_STATUS_BLOCK iosb;
    char *dotdot = NULL, *nodir = NULL;
    ck_assert_int_ge(asprintf(&dotdot, "%s/../escaped-%d", fe.e.dir, _i), 0);
    ck_assert_int_ge(asprintf(&nodir, "%s/no-such-dir/x", fe.e.dir), 0);
    ck_assert_status(open_path(&fe, "/etc/passwd", FILE_OPEN, 0, &h, &fo, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(iosb.Status, STATUS_ACCESS_DENIED);
    ck_assert_status(open_path(&fe, dotdot, FILE_OPEN_IF, 0, &h, &fo, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(open_path(&fe, nodir, FILE_OPEN_IF, 0, &h, &fo, &iosb), STATUS_OBJECT_PATH_NOT_FOUND);
    ck_assert_status(open_path(&fe, "relative", FILE_OPEN_IF, 0, &h, &fo, &iosb), STATUS_OBJECT_NAME_INVALID);
    ck_assert_ptr_null(fo);
    ck_assert_ptr_null(h);

    /* Inside: created, then FILE_OPENED; FILE_CREATE on an existing one collides. */
    char *inside = tu_env_path(&fe.e, "new");
    ck_assert_status(open_path(&fe, inside, FILE_OPEN_IF, 0, &h, &fo, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_CREATED);
    close_file(h, fo);
    ck_assert_status(open_path(&fe, inside, FILE_CREATE, 0, &h, &fo, &iosb), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(open_path(&fe, inside, FILE_OPEN, 0, &h, &fo, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_OPENED);
    close_file(h, fo);
    ck_assert_status(FltClose(h), STATUS_INVALID_HANDLE);
    free(inside);
    free(dotdot);
    free(nodir);
    free(missing);
    free(plain);
    fenv_fini(&fe);
}
END_TEST

/* ---- synchronous allocate / write / reuse / read ---- */

START_TEST(write_reuse_read_back_10000_times_on_one_block)
{
    struct fenv fe;
    HANDLE h;
    fenv_init(&fe, _i);
    PFILE_OBJECT fo = open_direct(&fe, "direct", &h);
    unsigned char *w = tu_aligned_alloc(BLK), *r = tu_aligned_alloc(BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    ck_assert_ptr_eq(d->Iopb->TargetInstance, fe.f.instance);
    ck_assert_ptr_eq(d->Iopb->TargetFileObject, fo);
    ck_assert_uint_eq(d->Flags, FLTFL_CALLBACK_DATA_IRP_OPERATION | FLTFL_CALLBACK_DATA_GENERATED_IO);
    ck_assert(FLT_IS_IRP_OPERATION(d));
    for (int i = 0; i < LOOPS; i++) {
        LONGLONG off = (LONGLONG)(i % FILE_BLOCKS) * BLK;
        tu_fill_pattern(w, BLK, (unsigned)i + 1, (uint64_t)off);
        set_rw(d, IRP_MJ_WRITE, w, BLK, off);
        FltPerformSynchronousIo(d);
        ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
        ck_assert_uint_eq(d->IoStatus.Information, BLK);
        FltReuseCallbackData(d);
        memset(r, 0, BLK);
        set_rw(d, IRP_MJ_READ, r, BLK, off);
        FltPerformSynchronousIo(d);
        ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
        ck_assert_uint_eq(d->IoStatus.Information, BLK);
        ck_assert(memcmp(w, r, BLK) == 0);
        FltReuseCallbackData(d);
    }
    /* A misaligned buffer on an O_DIRECT file fails in IoStatus. */
    set_rw(d, IRP_MJ_READ, r + 1, BLK, 0);
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_DATATYPE_MISALIGNMENT);
    FltReuseCallbackData(d);
    d->Iopb->MajorFunction = IRP_MJ_FLUSH_BUFFERS;
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    FltFreeCallbackData(d);
    free(w);
    free(r);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

/* ---- asynchronous reissue from the callback ---- */

struct reissue {
    KEVENT done;
    atomic_int calls;
    int failures;
    int not_passive;
    int bad_pending;
    unsigned char *buf;
    PFILE_OBJECT fo;
    PFLT_INSTANCE inst;
    int limit;  /* operations in all */
    int blocks; /* at offsets (n % blocks) * BLK */
};

static void reissue_cb(PFLT_CALLBACK_DATA d, PFLT_CONTEXT ctx)
{
    struct reissue *rs = ctx;
    int n = atomic_fetch_add(&rs->calls, 1) + 1;
    if (d->IoStatus.Status != STATUS_SUCCESS || d->IoStatus.Information != BLK)
        rs->failures++;
    if (KeGetCurrentIrql() != PASSIVE_LEVEL)
        rs->not_passive++;
    if (d->Iopb->TargetFileObject != rs->fo || d->Iopb->TargetInstance != rs->inst)
        rs->failures++;
    if (n >= rs->limit) {
        KeSetEvent(&rs->done, IO_NO_INCREMENT, FALSE);
        return;
    }
    FltReuseCallbackData(d);
    set_rw(d, (n & 1) ? IRP_MJ_READ : IRP_MJ_WRITE, rs->buf, BLK, (LONGLONG)(n % rs->blocks) * BLK);
    if (FltPerformAsynchronousIo(d, reissue_cb, rs) != STATUS_PENDING)
        rs->bad_pending++;
}

START_TEST(async_reissue_from_callback_10000_operations)
{
    struct fenv fe;
    HANDLE h;
    struct reissue rs;
    fenv_init(&fe, _i);
    memset(&rs, 0, sizeof(rs));
    KeInitializeEvent(&rs.done, NotificationEvent, FALSE);
    rs.fo = open_direct(&fe, "reissue", &h);
    rs.inst = fe.f.instance;
    rs.limit = LOOPS;
    rs.blocks = FILE_BLOCKS;
    rs.buf = tu_aligned_alloc(BLK);
    tu_fill_pattern(rs.buf, BLK, 3, 0);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, rs.fo, &d), STATUS_SUCCESS);
    set_rw(d, IRP_MJ_WRITE, rs.buf, BLK, 0);
    ck_assert_status(FltPerformAsynchronousIo(d, reissue_cb, &rs), STATUS_PENDING);
    LARGE_INTEGER to = { .QuadPart = -(LONGLONG)WAIT_MS * 10000 };
    ck_assert_status(KeWaitForSingleObject(&rs.done, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    tu_sleep_ms(20);
    ck_assert_int_eq(atomic_load(&rs.calls), LOOPS);
    ck_assert_int_eq(rs.failures, 0);
    ck_assert_int_eq(rs.not_passive, 0);
    ck_assert_int_eq(rs.bad_pending, 0);
    FltFreeCallbackData(d);
    UwdfKeDestroyEvent(&rs.done);
    free(rs.buf);
    close_file(h, rs.fo);
    fenv_fini(&fe);
}
END_TEST

/* ---- reuse keeps the targets, clears the rest, frees the MDL chain ---- */

START_TEST(reuse_keeps_targets_clears_parameters_and_frees_mdl_chain)
{
    struct fenv fe;
    HANDLE h;
    fenv_init(&fe, _i);
    PFILE_OBJECT fo = open_direct(&fe, "mdl", &h);
    unsigned char *a = tu_aligned_alloc(2 * BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    PMDL m1 = IoAllocateMdl(a, BLK, FALSE, FALSE, NULL);
    PMDL m2 = IoAllocateMdl(a + BLK, BLK, TRUE, FALSE, NULL);
    ck_assert_ptr_nonnull(m1);
    ck_assert_ptr_nonnull(m2);
    m1->Next = m2;
    MmBuildMdlForNonPagedPool(m1);
    MmBuildMdlForNonPagedPool(m2);
    set_rw(d, IRP_MJ_READ, NULL, 2 * BLK, BLK);
    d->Iopb->Parameters.Read.MdlAddress = m1;
    FltSetCallbackDataDirty(d);
    ck_assert(FltIsCallbackDataDirty(d));
    FltClearCallbackDataDirty(d);
    ck_assert(!FltIsCallbackDataDirty(d));
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(d->IoStatus.Information, 2 * BLK);
    ck_assert(tu_pattern_matches(a, 2 * BLK, FILE_SEED, BLK));
    FltSetCallbackDataDirty(d);
    FltReuseCallbackData(d); /* frees m1 and m2 (valgrind: no leak) */
    ck_assert_ptr_eq(d->Iopb->TargetInstance, fe.f.instance);
    ck_assert_ptr_eq(d->Iopb->TargetFileObject, fo);
    ck_assert_ptr_null(d->Iopb->Parameters.Read.MdlAddress);
    ck_assert(params_zero(d));
    ck_assert(!FltIsCallbackDataDirty(d));
    /* Free frees an attached chain too. */
    PMDL m3 = IoAllocateMdl(a, BLK, FALSE, FALSE, NULL);
    set_rw(d, IRP_MJ_WRITE, NULL, BLK, 0);
    d->Iopb->Parameters.Write.MdlAddress = m3;
    FltFreeCallbackData(d);
    free(a);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

/* ---- misuse and failures ---- */

struct once {
    KEVENT done;
    atomic_int calls;
    NTSTATUS status;
    ULONG_PTR info;
    KIRQL irql;
    NTSTATUS inner; /* a synchronous perform from inside the callback */
    bool do_sync_inside;
    void *buf;
};

static void once_cb(PFLT_CALLBACK_DATA d, PFLT_CONTEXT ctx)
{
    struct once *o = ctx;
    o->status = d->IoStatus.Status;
    o->info = d->IoStatus.Information;
    o->irql = KeGetCurrentIrql();
    if (o->do_sync_inside) {
        FltReuseCallbackData(d);
        set_rw(d, IRP_MJ_READ, o->buf, BLK, 0);
        FltPerformSynchronousIo(d);
        o->inner = d->IoStatus.Status;
    }
    atomic_fetch_add(&o->calls, 1);
    KeSetEvent(&o->done, IO_NO_INCREMENT, FALSE);
}

static void once_init(struct once *o)
{
    memset(o, 0, sizeof(*o));
    KeInitializeEvent(&o->done, NotificationEvent, FALSE);
}

static void once_wait(struct once *o)
{
    LARGE_INTEGER to = { .QuadPart = -(LONGLONG)WAIT_MS * 10000 };
    ck_assert_status(KeWaitForSingleObject(&o->done, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    tu_sleep_ms(10);
}

START_TEST(reuse_of_in_flight_data_is_a_bug_check)
{
    struct fenv fe;
    HANDLE h;
    struct once o;
    fenv_init(&fe, _i);
    once_init(&o);
    PFILE_OBJECT fo = open_direct(&fe, "inflight", &h);
    void *buf = tu_aligned_alloc(BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    set_rw(d, IRP_MJ_READ, buf, BLK, 0);
    UwdfFaultInjectStall(500);
    ck_assert_status(FltPerformAsynchronousIo(d, once_cb, &o), STATUS_PENDING);
    FltReuseCallbackData(d);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "FltReuseCallbackData");
    ck_assert_uint_eq(d->Iopb->Parameters.Read.Length, BLK); /* untouched */
    FltFreeCallbackData(d);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "FltFreeCallbackData");
    once_wait(&o);
    UwdfFaultInjectStall(0);
    ck_assert_int_eq(atomic_load(&o.calls), 1);
    ck_assert_status(o.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, 0));
    FltFreeCallbackData(d);
    UwdfKeDestroyEvent(&o.done);
    free(buf);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

START_TEST(create_async_is_invalid_and_callback_runs_once)
{
    struct fenv fe;
    HANDLE h;
    struct once o;
    fenv_init(&fe, _i);
    once_init(&o);
    PFILE_OBJECT fo = open_direct(&fe, "create", &h);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, NULL, &d), STATUS_SUCCESS);
    ck_assert_ptr_null(d->Iopb->TargetFileObject);
    d->Iopb->MajorFunction = IRP_MJ_CREATE;
    ck_assert_status(FltPerformAsynchronousIo(d, once_cb, &o), STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST);
    ck_assert_int_eq(atomic_load(&o.calls), 1);
    ck_assert_status(o.status, STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST);
    ck_assert_status(d->IoStatus.Status, STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST);
    ck_assert_uint_eq(o.irql, PASSIVE_LEVEL);
    /* A read without a file object fails, through the callback too. */
    FltReuseCallbackData(d);
    set_rw(d, IRP_MJ_READ, NULL, BLK, 0);
    ck_assert_status(FltPerformAsynchronousIo(d, once_cb, &o), STATUS_SUCCESS);
    ck_assert_int_eq(atomic_load(&o.calls), 2);
    ck_assert_status(o.status, STATUS_INVALID_PARAMETER);
    FltFreeCallbackData(d);
    UwdfKeDestroyEvent(&o.done);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

START_TEST(allocation_failure_is_insufficient_resources)
{
    struct fenv fe;
    HANDLE h;
    fenv_init(&fe, _i);
    PFILE_OBJECT fo = open_direct(&fe, "alloc", &h);
    void *buf = tu_aligned_alloc(BLK);
    PFLT_CALLBACK_DATA d = (PFLT_CALLBACK_DATA)1;
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_INSUFFICIENT_RESOURCES);
    ck_assert_ptr_null(d);
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 2); /* the preallocated request */
    ck_assert_status(FltAllocateCallbackDataEx(fe.f.instance, fo, FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY, &d),
                     STATUS_INSUFFICIENT_RESOURCES);
    ck_assert_ptr_null(d);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    /* Without preallocation the first perform allocates, and may fail. */
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    set_rw(d, IRP_MJ_READ, buf, BLK, 0);
    UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
    FltPerformSynchronousIo(d);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    ck_assert_status(d->IoStatus.Status, STATUS_INSUFFICIENT_RESOURCES);
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    FltFreeCallbackData(d);
    free(buf);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

START_TEST(preallocated_data_performs_under_every_allocation_failing)
{
    struct fenv fe;
    HANDLE h;
    struct once o;
    fenv_init(&fe, _i);
    once_init(&o);
    PFILE_OBJECT fo = open_direct(&fe, "prealloc", &h);
    unsigned char *w = tu_aligned_alloc(BLK), *r = tu_aligned_alloc(BLK);
    tu_fill_pattern(w, BLK, 99, BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackDataEx(fe.f.instance, fo, FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY, &d),
                     STATUS_SUCCESS);
    UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
    set_rw(d, IRP_MJ_WRITE, w, BLK, BLK);
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    FltReuseCallbackData(d);
    set_rw(d, IRP_MJ_READ, r, BLK, BLK);
    ck_assert_status(FltPerformAsynchronousIo(d, once_cb, &o), STATUS_PENDING);
    once_wait(&o);
    ck_assert_status(o.status, STATUS_SUCCESS);
    ck_assert(memcmp(w, r, BLK) == 0);
    FltReuseCallbackData(d);
    ck_assert_uint_eq(UwdfFaultAllocationFailures(), 0);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    FltFreeCallbackData(d);
    UwdfKeDestroyEvent(&o.done);
    free(w);
    free(r);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

static void rw_cb(PFLT_CALLBACK_DATA d, PFLT_CONTEXT ctx)
{
    once_cb(d, ctx);
}

START_TEST(read_write_file_sync_async_and_current_byte_offset)
{
    struct fenv fe;
    HANDLE h;
    struct once o;
    ULONG n = 0;
    fenv_init(&fe, _i);
    once_init(&o);
    PFILE_OBJECT fo = open_direct(&fe, "rw", &h);
    unsigned char *w = tu_aligned_alloc(2 * BLK), *r = tu_aligned_alloc(2 * BLK);
    ck_assert_int_eq(fo->CurrentByteOffset.QuadPart, 0);
    /* NULL offset: at the current offset, which advances. */
    tu_fill_pattern(w, 2 * BLK, 5, 0);
    ck_assert_status(FltWriteFile(fe.f.instance, fo, NULL, 2 * BLK, w, 0, &n, NULL, NULL), STATUS_SUCCESS);
    ck_assert_uint_eq(n, 2 * BLK);
    ck_assert_int_eq(fo->CurrentByteOffset.QuadPart, 2 * BLK);
    ck_assert_status(FltReadFile(fe.f.instance, fo, NULL, BLK, r, 0, &n, NULL, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(r, BLK, FILE_SEED, 2 * BLK));
    ck_assert_int_eq(fo->CurrentByteOffset.QuadPart, 3 * BLK);
    /* An explicit offset moves it to offset + bytes; DO_NOT_UPDATE leaves it. */
    LARGE_INTEGER off = { .QuadPart = 0 };
    ck_assert_status(FltReadFile(fe.f.instance, fo, &off, 2 * BLK, r, FLTFL_IO_OPERATION_NON_CACHED, &n, NULL, NULL),
                     STATUS_SUCCESS);
    ck_assert(memcmp(w, r, 2 * BLK) == 0);
    ck_assert_int_eq(fo->CurrentByteOffset.QuadPart, 2 * BLK);
    off.QuadPart = 8 * BLK;
    ck_assert_status(FltReadFile(fe.f.instance, fo, &off, BLK, r, FLTFL_IO_OPERATION_DO_NOT_UPDATE_BYTE_OFFSET, &n,
                                 NULL, NULL),
                     STATUS_SUCCESS);
    ck_assert_int_eq(fo->CurrentByteOffset.QuadPart, 2 * BLK);
    /* Past the end of the file. */
    off.QuadPart = FILE_SIZE;
    ck_assert_status(FltReadFile(fe.f.instance, fo, &off, BLK, r, 0, &n, NULL, NULL), STATUS_END_OF_FILE);
    ck_assert_uint_eq(n, 0);
    /* With a callback. */
    off.QuadPart = 4 * BLK;
    tu_fill_pattern(w, BLK, 11, 4 * BLK);
    ck_assert_status(FltWriteFile(fe.f.instance, fo, &off, BLK, w, 0, NULL, rw_cb, &o), STATUS_PENDING);
    once_wait(&o);
    ck_assert_status(o.status, STATUS_SUCCESS);
    ck_assert_uint_eq(o.info, BLK);
    ck_assert_uint_eq(o.irql, PASSIVE_LEVEL);
    KeClearEvent(&o.done);
    memset(r, 0, BLK);
    ck_assert_status(FltReadFile(fe.f.instance, fo, &off, BLK, r, 0, NULL, rw_cb, &o), STATUS_PENDING);
    once_wait(&o);
    ck_assert_int_eq(atomic_load(&o.calls), 2);
    ck_assert(memcmp(w, r, BLK) == 0);
    ck_assert_int_eq(fo->CurrentByteOffset.QuadPart, 5 * BLK);
    UwdfKeDestroyEvent(&o.done);
    free(w);
    free(r);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

START_TEST(sync_perform_inside_async_callback_is_invalid_device_request)
{
    struct fenv fe;
    HANDLE h;
    struct once o;
    fenv_init(&fe, _i);
    once_init(&o);
    PFILE_OBJECT fo = open_direct(&fe, "syncin", &h);
    void *buf = tu_aligned_alloc(BLK);
    o.do_sync_inside = true;
    o.buf = buf;
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    set_rw(d, IRP_MJ_READ, buf, BLK, 0);
    ck_assert_status(FltPerformAsynchronousIo(d, once_cb, &o), STATUS_PENDING);
    once_wait(&o);
    ck_assert_status(o.status, STATUS_SUCCESS);
    ck_assert_status(o.inner, STATUS_INVALID_DEVICE_REQUEST);
    /* Back on the test thread it works. */
    FltReuseCallbackData(d);
    set_rw(d, IRP_MJ_READ, buf, BLK, 0);
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    FltFreeCallbackData(d);
    UwdfKeDestroyEvent(&o.done);
    free(buf);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

START_TEST(file_object_outlives_close_until_dereferenced)
{
    struct fenv fe;
    HANDLE h;
    fenv_init(&fe, _i);
    PFILE_OBJECT fo = open_direct(&fe, "lifetime", &h);
    void *buf = tu_aligned_alloc(BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    set_rw(d, IRP_MJ_READ, buf, BLK, 0);
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_FILE_CLOSED);
    FltFreeCallbackData(d);
    ObDereferenceObject(fo);
    free(buf);
    fenv_fini(&fe);
}
END_TEST

/* ---- a block-device volume (loop device, root) ---- */

static LONGLONG dev_sync_offset(int i)
{
    return (LONGLONG)(DEV_SYNC_FIRST + (LONGLONG)i * DEV_STRIDE % DEV_SYNC_BLOCKS) * BLK;
}

/* Whether len bytes at offset of path, read with flags (O_DIRECT: a
 * page-aligned buffer), hold tu_fill_pattern(seed, offset). */
static bool outside_matches(const char *path, int flags, LONGLONG offset, size_t len, unsigned seed)
{
    unsigned char *got = tu_aligned_alloc(len);
    int fd = open(path, O_RDONLY | flags);
    ck_assert_msg(fd >= 0, "open %s", path);
    ssize_t n = pread(fd, got, len, (off_t)offset);
    close(fd);
    bool same = n == (ssize_t)len && tu_pattern_matches(got, len, seed, (uint64_t)offset);
    free(got);
    return same;
}

/* Whether the file behind handle h is the one at path. */
static bool handle_is(HANDLE h, const char *path)
{
    struct stat a, b;
    return fstat((int)(intptr_t)h, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

START_TEST(block_device_volume_write_reuse_read)
{
    struct fenv fe;
    HANDLE h = NULL;
    PFILE_OBJECT fo = NULL;
    IO_STATUS_BLOCK iosb;
    tu_env_init_backend(&fe.e, _i);
    char *backing = tu_env_file(&fe.e, "disk", DEV_SIZE, FILE_SEED);
    const char *dev = tu_env_loop(&fe.e, backing, 0);
    tu_flt_attach(&fe.e, dev, &fe.f);

    /* On a block-device volume only the device itself opens: any other
     * absolute path, even its own backing file, is outside the volume. */
    ck_assert_status(open_path(&fe, backing, FILE_OPEN, 0, &h, &fo, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(iosb.Status, STATUS_ACCESS_DENIED);
    ck_assert_status(open_path(&fe, fe.e.dir, FILE_OPEN, 0, &h, &fo, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(open_path(&fe, "/dev/null", FILE_OPEN, 0, &h, &fo, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_ptr_null(fo);
    ck_assert_ptr_null(h);
    /* Any name of the device is the device; a device is never created. */
    char *alias = tu_env_path(&fe.e, "alias"), *missing = tu_env_path(&fe.e, "missing");
    ck_assert_int_eq(symlink(dev, alias), 0);
    ck_assert_status(open_path(&fe, alias, FILE_OPEN_IF, 0, &h, NULL, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_OPENED);
    ck_assert(handle_is(h, dev));
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    ck_assert_status(open_path(&fe, dev, FILE_CREATE, 0, &h, NULL, &iosb), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(open_path(&fe, missing, FILE_OPEN_IF, 0, &h, NULL, &iosb), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_int_eq(access(missing, F_OK), -1);
    ck_assert_int_eq(unlink(alias), 0);
    ck_assert_int_eq(symlink(backing, alias), 0);
    ck_assert_status(open_path(&fe, alias, FILE_OVERWRITE_IF, 0, &h, NULL, &iosb), STATUS_ACCESS_DENIED);
    free(alias);
    free(missing);

    ck_assert_status(open_path(&fe, dev, FILE_OPEN, FILE_NO_INTERMEDIATE_BUFFERING, &h, &fo, &iosb),
                     STATUS_SUCCESS);
    ck_assert_status(iosb.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_OPENED);
    ck_assert_ptr_nonnull(fo);
    ck_assert(fo->Flags & FO_NO_INTERMEDIATE_BUFFERING);
    ck_assert(fcntl((int)(intptr_t)h, F_GETFL) & O_DIRECT);

    /* allocate -> write -> reuse -> read -> compare, on one callback data. */
    unsigned char *w = tu_aligned_alloc(BLK), *r = tu_aligned_alloc(BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    ck_assert_ptr_eq(d->Iopb->TargetInstance, fe.f.instance);
    ck_assert_ptr_eq(d->Iopb->TargetFileObject, fo);
    for (int i = 0; i < DEV_LOOPS; i++) {
        LONGLONG off = dev_sync_offset(i);
        tu_fill_pattern(w, BLK, (unsigned)i + 1, (uint64_t)off);
        set_rw(d, IRP_MJ_WRITE, w, BLK, off);
        FltPerformSynchronousIo(d);
        ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
        ck_assert_uint_eq(d->IoStatus.Information, BLK);
        ck_assert_int_eq(fo->CurrentByteOffset.QuadPart, off + BLK);
        FltReuseCallbackData(d);
        ck_assert(params_zero(d));
        memset(r, 0, BLK);
        set_rw(d, IRP_MJ_READ, r, BLK, off);
        FltPerformSynchronousIo(d);
        ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
        ck_assert_uint_eq(d->IoStatus.Information, BLK);
        ck_assert_msg(memcmp(w, r, BLK) == 0, "iteration %d at offset %lld", i, (long long)off);
        FltReuseCallbackData(d);
    }

    /* The same data from outside, with the device still open: the last
     * pattern through the device with O_DIRECT, and every one in the
     * backing file (each block was written once, so each is the last). */
    LONGLONG last = dev_sync_offset(DEV_LOOPS - 1);
    ck_assert(outside_matches(dev, O_DIRECT, last, BLK, DEV_LOOPS));
    for (int i = 0; i < DEV_LOOPS; i++)
        ck_assert_msg(outside_matches(backing, 0, dev_sync_offset(i), BLK, (unsigned)i + 1), "block of iteration %d",
                      i);
    /* A block the passes never touch keeps the backing file's pattern. */
    ck_assert(outside_matches(backing, 0, dev_sync_offset(DEV_LOOPS), BLK, FILE_SEED));
    ck_assert(outside_matches(dev, O_DIRECT, dev_sync_offset(DEV_LOOPS), BLK, FILE_SEED));

    /* The reissue pattern on the device, from the callback, on the same
     * callback data. */
    struct reissue rs;
    memset(&rs, 0, sizeof(rs));
    KeInitializeEvent(&rs.done, NotificationEvent, FALSE);
    rs.fo = fo;
    rs.inst = fe.f.instance;
    rs.limit = DEV_LOOPS;
    rs.blocks = FILE_BLOCKS;
    rs.buf = w;
    tu_fill_pattern(rs.buf, BLK, 3, 0);
    set_rw(d, IRP_MJ_WRITE, rs.buf, BLK, 0);
    ck_assert_status(FltPerformAsynchronousIo(d, reissue_cb, &rs), STATUS_PENDING);
    LARGE_INTEGER to = { .QuadPart = -(LONGLONG)WAIT_MS * 10000 };
    ck_assert_status(KeWaitForSingleObject(&rs.done, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    tu_sleep_ms(20);
    ck_assert_int_eq(atomic_load(&rs.calls), DEV_LOOPS);
    ck_assert_int_eq(rs.failures, 0);
    ck_assert_int_eq(rs.not_passive, 0);
    ck_assert_int_eq(rs.bad_pending, 0);
    FltFreeCallbackData(d);
    UwdfKeDestroyEvent(&rs.done);

    /* The reissue pass stayed in its blocks: the synchronous pass's last
     * pattern is still there, through the device and in the file. */
    close_file(h, fo);
    ck_assert(outside_matches(dev, O_DIRECT, last, BLK, DEV_LOOPS));
    ck_assert(outside_matches(backing, 0, last, BLK, DEV_LOOPS));

    ck_assert_status(FltDetachVolume(fe.f.filter, fe.f.volume, NULL), STATUS_SUCCESS);
    ck_assert_status(FltDetachVolume(fe.f.filter, fe.f.volume, NULL), STATUS_FLT_INSTANCE_NOT_FOUND);
    free(w);
    free(r);
    free(backing);
    fenv_fini(&fe);
}
END_TEST

/* ---- IRQL of reuse and free; FltReissueSynchronousIo ---- */

/* Runs what=1 (reuse) or 2 (free) on d from a WDF completion routine, at
 * DISPATCH_LEVEL. */
struct at_dispatch {
    struct tu_completion c;
    PFLT_CALLBACK_DATA d;
    int what;
    KIRQL irql;
    UCHAR major_after;
    NTSTATUS reissue_status;
    PFLT_INSTANCE inst;
};

static VOID at_dispatch_done(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT ctx)
{
    struct at_dispatch *a = ctx;
    a->irql = KeGetCurrentIrql();
    if (a->what == 1) {
        FltReuseCallbackData(a->d);
        a->major_after = a->d->Iopb->MajorFunction;
    } else if (a->what == 2) {
        FltFreeCallbackData(a->d);
    } else {
        FltReissueSynchronousIo(a->inst, a->d);
        a->reissue_status = a->d->IoStatus.Status;
    }
    tu_on_complete(r, t, p, &a->c);
}

static void run_at_dispatch(WDFIOTARGET t, WDFMEMORY m, struct at_dispatch *a)
{
    WDFREQUEST r = tu_make_request(t);
    LONGLONG off = 0;
    tu_completion_init(&a->c);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, r, m, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(r, at_dispatch_done, a);
    ck_assert(WdfRequestSend(r, t, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&a->c, WAIT_MS));
    ck_assert_uint_eq(a->irql, DISPATCH_LEVEL);
    tu_completion_fini(&a->c);
    WdfObjectDelete(r);
}

START_TEST(reuse_and_free_check_irql)
{
    struct fenv fe;
    HANDLE h;
    fenv_init(&fe, _i);
    PFILE_OBJECT fo = open_direct(&fe, "irql", &h);
    char *path = tu_env_path(&fe.e, "irql");
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(fe.e.device, path, GENERIC_READ, FILE_OPEN, 0, &t), STATUS_SUCCESS);
    void *b;
    WDFMEMORY m = tu_make_memory(BLK, &b);
    void *buf = tu_aligned_alloc(BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    set_rw(d, IRP_MJ_READ, buf, BLK, 0);
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    struct at_dispatch a = { .d = d, .what = 1 };
    /* Reuse above APC_LEVEL: without the verifier it does nothing ... */
    run_at_dispatch(t, m, &a);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    ck_assert_uint_eq(a.major_after, IRP_MJ_READ);
    /* ... with it, a bug check that names the DDI (and still nothing). */
    UwdfSetVerifier(TRUE);
    run_at_dispatch(t, m, &a);
    tu_expect_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, DISPATCH_LEVEL);
    ck_assert_uint_eq(a.major_after, IRP_MJ_READ);
    UwdfSetVerifier(FALSE);
    /* Free at DISPATCH_LEVEL is allowed. */
    UWDF_OBJECT_COUNT before, after;
    ck_assert_status(UwdfQueryObjectCount("FLT_CALLBACK_DATA", &before), STATUS_SUCCESS);
    a.what = 2;
    run_at_dispatch(t, m, &a);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    ck_assert_status(UwdfQueryObjectCount("FLT_CALLBACK_DATA", &after), STATUS_SUCCESS);
    ck_assert_uint_eq(after.Live, before.Live - 1);
    /* Free above DISPATCH_LEVEL: nothing freed; a bug check with the verifier. */
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    for (int verifier = 0; verifier < 2; verifier++) {
        UwdfSetVerifier(verifier ? TRUE : FALSE);
        uwdf_tls_irql = HIGH_LEVEL;
        FltFreeCallbackData(d);
        uwdf_tls_irql = PASSIVE_LEVEL;
        if (verifier)
            tu_expect_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, HIGH_LEVEL);
        ck_assert_int_eq(tu_last_bugcheck.count, 0);
        ck_assert_status(UwdfQueryObjectCount("FLT_CALLBACK_DATA", &after), STATUS_SUCCESS);
        ck_assert_uint_eq(after.Live, before.Live);
    }
    UwdfSetVerifier(FALSE);
    FltFreeCallbackData(d);
    WdfObjectDelete(m);
    free(buf);
    free(path);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

START_TEST(reissue_synchronous_io_repeats_the_operation_as_it_now_is)
{
    struct fenv fe;
    HANDLE h;
    fenv_init(&fe, _i);
    PFILE_OBJECT fo = open_direct(&fe, "reissue-sync", &h);
    unsigned char *w = tu_aligned_alloc(BLK), *r = tu_aligned_alloc(BLK);
    PFLT_CALLBACK_DATA d = NULL;
    ck_assert_status(FltAllocateCallbackData(fe.f.instance, fo, &d), STATUS_SUCCESS);
    tu_fill_pattern(w, BLK, 501, 0);
    set_rw(d, IRP_MJ_WRITE, w, BLK, 0);
    FltPerformSynchronousIo(d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    /* The same parameters, new data in the buffer, another offset: the
     * reissue writes what the block describes now. */
    tu_fill_pattern(w, BLK, 502, 0);
    d->Iopb->Parameters.Write.ByteOffset.QuadPart = 2 * BLK;
    FltSetCallbackDataDirty(d);
    d->IoStatus.Status = STATUS_UNSUCCESSFUL;
    d->IoStatus.Information = 0;
    FltReissueSynchronousIo(fe.f.instance, d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    ck_assert_uint_eq(d->IoStatus.Information, BLK);
    ck_assert_uint_eq(d->Iopb->MajorFunction, IRP_MJ_WRITE); /* not reset */
    FltReuseCallbackData(d);
    set_rw(d, IRP_MJ_READ, r, BLK, 0);
    FltPerformSynchronousIo(d);
    ck_assert(tu_pattern_matches(r, BLK, 501, 0));
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = 2 * BLK;
    FltReissueSynchronousIo(fe.f.instance, d);
    ck_assert_status(d->IoStatus.Status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(r, BLK, 502, 0));
    /* Errors come back in IoStatus, as from a perform. */
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = FILE_SIZE;
    FltReissueSynchronousIo(fe.f.instance, d);
    ck_assert_status(d->IoStatus.Status, STATUS_END_OF_FILE);
    /* A NULL instance is a bug check; nothing is done. */
    d->IoStatus.Status = STATUS_PENDING;
    FltReissueSynchronousIo(NULL, d);
    tu_expect_bugcheck(WDF_REQUIRED_PARAMETER_IS_NULL, 0);
    ck_assert_status(d->IoStatus.Status, STATUS_PENDING);
    /* Not above PASSIVE_LEVEL (non-paging I/O): IoStatus says so. */
    char *path = tu_env_path(&fe.e, "reissue-sync");
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(fe.e.device, path, GENERIC_READ, FILE_OPEN, 0, &t), STATUS_SUCCESS);
    void *b;
    WDFMEMORY m = tu_make_memory(BLK, &b);
    struct at_dispatch a = { .d = d, .what = 3, .inst = fe.f.instance };
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = 0;
    run_at_dispatch(t, m, &a);
    ck_assert_status(a.reissue_status, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    UwdfSetVerifier(TRUE);
    run_at_dispatch(t, m, &a);
    tu_expect_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, DISPATCH_LEVEL);
    UwdfSetVerifier(FALSE);
    FltFreeCallbackData(d);
    WdfObjectDelete(m);
    free(path);
    free(w);
    free(r);
    close_file(h, fo);
    fenv_fini(&fe);
}
END_TEST

/* ---- names beneath a directory volume, tried like a hostile user ---- */

/* The volume at e.dir/vol (with f, a/f, links in and out) and, beside it,
 * e.dir/outside/f that no name on the volume may reach. */
struct hostile {
    struct fenv fe;
    char *vol, *out;
};

static void hostile_init(struct hostile *x, int backend)
{
    tu_env_init_backend(&x->fe.e, backend);
    x->vol = tu_join(x->fe.e.dir, "vol");
    x->out = tu_join(x->fe.e.dir, "outside");
    ck_assert_int_eq(mkdir(x->vol, 0755), 0);
    ck_assert_int_eq(mkdir(x->out, 0755), 0);
    char *p = tu_join(x->vol, "a");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    free(p);
    const char *files[][2] = { { "f", "volume\n" }, { "a/f", "volume a\n" } };
    for (int i = 0; i < 2; i++) {
        p = tu_join(x->vol, files[i][0]);
        tu_write_text(p, files[i][1]);
        free(p);
    }
    p = tu_join(x->out, "f");
    tu_write_text(p, "outside\n");
    free(p);
    tu_flt_attach(&x->fe.e, x->vol, &x->fe.f);
}

static void hostile_fini(struct hostile *x)
{
    fenv_fini(&x->fe);
    free(x->vol);
    free(x->out);
}

/* FltCreateFileEx of vol/name (name may be "" for the volume itself). */
static NTSTATUS hopen(struct hostile *x, const char *name, ULONG disposition, HANDLE *h)
{
    IO_STATUS_BLOCK iosb;
    char *p = *name ? tu_join(x->vol, name) : strdup(x->vol);
    *h = NULL;
    NTSTATUS s = open_path(&x->fe, p, disposition, 0, h, NULL, &iosb);
    ck_assert_status(iosb.Status, s);
    ck_assert_msg(NT_SUCCESS(s) == (*h != NULL), "s == " TU_STATUS_FMT ", handle %p", TU_STATUS_ARG(s), *h);
    free(p);
    return s;
}

static void hlink(struct hostile *x, const char *name, const char *target)
{
    char *p = tu_join(x->vol, name);
    ck_assert_int_eq(symlink(target, p), 0);
    free(p);
}

START_TEST(create_file_hostile_names_get_their_documented_status)
{
    struct hostile x;
    hostile_init(&x, _i);
    HANDLE h;
    char *out_f = tu_join(x.out, "f"), *in_f = tu_join(x.vol, "a/f");
    hlink(&x, "in", "a/f");
    hlink(&x, "abs_in", in_f);
    hlink(&x, "out", "../outside/f");
    hlink(&x, "abs_out", out_f);
    hlink(&x, "outdir", "../outside");
    hlink(&x, "loop", "loop");
    /* Symlinks that stay on the volume work, relative or absolute. */
    ck_assert_status(hopen(&x, "in", FILE_OPEN, &h), STATUS_SUCCESS);
    ck_assert(handle_is(h, in_f));
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    ck_assert_status(hopen(&x, "abs_in", FILE_OPEN, &h), STATUS_SUCCESS);
    ck_assert(handle_is(h, in_f));
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    /* Ones that lead out, "..", loops. */
    ck_assert_status(hopen(&x, "out", FILE_OPEN, &h), STATUS_ACCESS_DENIED);
    ck_assert_status(hopen(&x, "abs_out", FILE_OVERWRITE_IF, &h), STATUS_ACCESS_DENIED);
    ck_assert_status(hopen(&x, "out", FILE_CREATE, &h), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(hopen(&x, "outdir/new", FILE_OPEN_IF, &h), STATUS_ACCESS_DENIED);
    ck_assert_status(hopen(&x, "a/../../outside/f", FILE_OPEN, &h), STATUS_ACCESS_DENIED);
    ck_assert_status(hopen(&x, "loop", FILE_OPEN, &h), STATUS_REPARSE_POINT_NOT_RESOLVED);
    ck_assert_status(hopen(&x, "loop/x", FILE_OPEN_IF, &h), STATUS_REPARSE_POINT_NOT_RESOLVED);
    /* The volume itself is a directory; a name ending in a separator, "."
     * or ".." names no file. */
    ck_assert_status(hopen(&x, "", FILE_OPEN, &h), STATUS_FILE_IS_A_DIRECTORY);
    ck_assert_status(hopen(&x, "", FILE_CREATE, &h), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(hopen(&x, "a", FILE_OPEN_IF, &h), STATUS_FILE_IS_A_DIRECTORY);
    ck_assert_status(hopen(&x, "a/", FILE_OPEN, &h), STATUS_OBJECT_NAME_INVALID);
    ck_assert_status(hopen(&x, "a/.", FILE_OPEN, &h), STATUS_OBJECT_NAME_INVALID);
    ck_assert_status(hopen(&x, "a/..", FILE_OPEN, &h), STATUS_OBJECT_NAME_INVALID);
    ck_assert_status(hopen(&x, "f/x", FILE_OPEN_IF, &h), STATUS_OBJECT_PATH_NOT_FOUND);
    /* Long names. */
    char comp[NAME_MAX + 2];
    memset(comp, 'n', NAME_MAX + 1);
    comp[NAME_MAX + 1] = '\0';
    ck_assert_status(hopen(&x, comp, FILE_OPEN_IF, &h), STATUS_OBJECT_NAME_INVALID);
    size_t n = PATH_MAX + 16;
    char *deep = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2)
        memcpy(deep + i, "./", 2);
    deep[n] = '\0';
    deep[n - 1] = 'f';
    ck_assert_status(hopen(&x, deep, FILE_OPEN, &h), STATUS_OBJECT_NAME_INVALID);
    free(deep);
    ck_assert_int_eq(tu_count_entries(x.out), 1);
    free(out_f);
    free(in_f);
    hostile_fini(&x);
}
END_TEST

START_TEST(create_file_name_with_a_nul_inside_is_object_name_invalid)
{
    struct hostile x;
    hostile_init(&x, _i);
    /* "vol/f\0/../../outside/f": cut at the NUL it would be vol/f. */
    char *p = NULL;
    ck_assert_int_ge(asprintf(&p, "%s/f#/../../outside/f", x.vol), 0);
    size_t n = strlen(p);
    WCHAR *w = malloc((n + 1) * sizeof(WCHAR));
    for (size_t i = 0; i <= n; i++)
        w[i] = p[i] == '#' ? 0 : (WCHAR)p[i];
    UNICODE_STRING us = { .Length = (USHORT)(n * sizeof(WCHAR)), .MaximumLength = (USHORT)((n + 1) * sizeof(WCHAR)),
                          .Buffer = w };
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    HANDLE h = NULL;
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE, NULL, NULL);
    ck_assert_status(FltCreateFileEx(x.fe.f.filter, x.fe.f.instance, &h, NULL, GENERIC_READ, &oa, &iosb, NULL, 0, 0,
                                     FILE_OPEN, 0, NULL, 0, 0),
                     STATUS_OBJECT_NAME_INVALID);
    ck_assert_ptr_null(h);
    PFLT_VOLUME v = NULL;
    ck_assert_status(FltGetVolumeFromName(x.fe.f.filter, &us, &v), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(v);
    free(w);
    free(p);
    hostile_fini(&x);
}
END_TEST

START_TEST(volume_renamed_away_still_opens_its_own_files)
{
    struct hostile x;
    hostile_init(&x, _i);
    HANDLE h;
    char *moved = tu_join(x.fe.e.dir, "moved"), *decoy = tu_join(x.vol, "f");
    ck_assert_int_eq(rename(x.vol, moved), 0);
    /* Another directory at the volume's old name, its f a link outside. */
    ck_assert_int_eq(mkdir(x.vol, 0755), 0);
    char *out_f = tu_join(x.out, "f");
    ck_assert_int_eq(symlink(out_f, decoy), 0);
    char *moved_f = tu_join(moved, "f");
    ck_assert_status(hopen(&x, "f", FILE_OPEN, &h), STATUS_SUCCESS);
    ck_assert(handle_is(h, moved_f));
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    ck_assert_status(hopen(&x, "new", FILE_CREATE, &h), STATUS_SUCCESS);
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    char *moved_new = tu_join(moved, "new");
    ck_assert_int_eq(access(moved_new, F_OK), 0);
    ck_assert_int_eq(tu_count_entries(x.vol), 1);
    ck_assert_int_eq(unlink(decoy), 0);
    ck_assert_int_eq(rmdir(x.vol), 0);
    ck_assert_int_eq(rename(moved, x.vol), 0);
    free(moved);
    free(moved_f);
    free(moved_new);
    free(decoy);
    free(out_f);
    hostile_fini(&x);
}
END_TEST

START_TEST(volume_got_by_a_symlinked_name_takes_both_names)
{
    struct fenv fe;
    tu_env_init_backend(&fe.e, _i);
    char *vol = tu_join(fe.e.dir, "vol"), *alias = tu_join(fe.e.dir, "alias");
    ck_assert_int_eq(mkdir(vol, 0755), 0);
    ck_assert_int_eq(symlink("vol", alias), 0);
    tu_flt_attach(&fe.e, alias, &fe.f);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    char *by_alias = tu_join(alias, "x"), *by_real = tu_join(vol, "x");
    ck_assert_status(open_path(&fe, by_alias, FILE_CREATE, 0, &h, NULL, &iosb), STATUS_SUCCESS);
    ck_assert(handle_is(h, by_real));
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    ck_assert_status(open_path(&fe, by_real, FILE_OPEN, 0, &h, NULL, &iosb), STATUS_SUCCESS);
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    /* The alias is the name it had when the volume was got: retargeted
     * later, its names still resolve beneath the volume. */
    char *other = tu_join(fe.e.dir, "other");
    ck_assert_int_eq(mkdir(other, 0755), 0);
    ck_assert_int_eq(unlink(alias), 0);
    ck_assert_int_eq(symlink("other", alias), 0);
    ck_assert_status(open_path(&fe, by_alias, FILE_OPEN, 0, &h, NULL, &iosb), STATUS_SUCCESS);
    ck_assert(handle_is(h, by_real));
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
    free(vol);
    free(alias);
    free(other);
    free(by_alias);
    free(by_real);
    fenv_fini(&fe);
}
END_TEST

/* ---- the race: a swapper against opens of every disposition ----
 * The reporter's attack: vol/a (holding secret) is swapped with a symlink
 * to outside/ (which holds a secret too), and vol/f with a symlink to
 * outside/f, as fast as renameat2(RENAME_EXCHANGE) goes, while the filter
 * opens vol/a/secret, vol/a/../a/secret, vol/f and new names in vol/a with
 * every disposition. No handle may be a file outside, nothing may be
 * created, truncated or written outside. */
#define RACE_MS_DEFAULT 1500 /* per engine and resolver; UWDF_TEST_RACE_MS for longer */
#define RACE_OUTSIDE_TEXT "outside: must stay as it is\n"

struct race {
    char *vol, *out;
};

struct race_count {
    unsigned long opens, ok, denied, collided, missing, escapes;
};

/* One open; a success is checked against the outside inodes and, through
 * /proc, by where the kernel says the file is. */
static void race_open_one(struct fenv *fe, struct race *r, const char *path, ULONG disposition,
                          const struct stat *outside, int n_outside, struct race_count *c)
{
    HANDLE h = NULL;
    IO_STATUS_BLOCK iosb;
    NTSTATUS s = open_path(fe, path, disposition, 0, &h, NULL, &iosb);
    c->opens++;
    if (s == STATUS_ACCESS_DENIED) {
        c->denied++;
        return;
    }
    if (s == STATUS_OBJECT_NAME_COLLISION) {
        c->collided++;
        return;
    }
    if (s == STATUS_OBJECT_NAME_NOT_FOUND) {
        c->missing++;
        return;
    }
    ck_assert_status_msg(s, STATUS_SUCCESS, "%s, disposition %lu", path, (unsigned long)disposition);
    c->ok++;
    struct stat st;
    bool escaped = false;
    ck_assert_int_eq(fstat((int)(intptr_t)h, &st), 0);
    for (int i = 0; i < n_outside; i++)
        escaped |= st.st_dev == outside[i].st_dev && st.st_ino == outside[i].st_ino;
    char link[64], where[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", (int)(intptr_t)h);
    ssize_t n = readlink(link, where, sizeof(where) - 1);
    if (n > 0) {
        where[n] = '\0';
        escaped |= strncmp(where, r->out, strlen(r->out)) == 0 && where[strlen(r->out)] == '/';
    }
    c->escapes += escaped;
    ck_assert_status(FltClose(h), STATUS_SUCCESS);
}

START_TEST(create_file_racing_directory_and_symlink_swaps_never_escapes)
{
    int backend = _i / 2, walk = _i % 2;
    atomic_store(&uwdf_resolve_walk_only, walk);
    struct fenv fe;
    struct race r = { 0 };
    struct tu_swapper sw = { .steps = 8 };
    tu_env_init_backend(&fe.e, backend);
    r.vol = tu_join(fe.e.dir, "vol");
    r.out = tu_join(fe.e.dir, "outside");
    ck_assert_int_eq(mkdir(r.vol, 0755), 0);
    ck_assert_int_eq(mkdir(r.out, 0755), 0);
    char *a = tu_join(r.vol, "a"), *secret = tu_join(r.vol, "a/secret"), *f = tu_join(r.vol, "f");
    char *out_secret = tu_join(r.out, "secret"), *out_f = tu_join(r.out, "f");
    char *a_rel = tu_join(r.vol, "a.rel"), *a_abs = tu_join(r.vol, "a.abs"), *f_lnk = tu_join(r.vol, "f.lnk");
    ck_assert_int_eq(mkdir(a, 0755), 0);
    tu_write_text(secret, "volume\n");
    tu_write_text(f, "volume\n");
    tu_write_text(out_secret, RACE_OUTSIDE_TEXT);
    tu_write_text(out_f, RACE_OUTSIDE_TEXT);
    ck_assert_int_eq(symlink("../outside", a_rel), 0);
    ck_assert_int_eq(symlink(r.out, a_abs), 0);
    ck_assert_int_eq(symlink(out_f, f_lnk), 0);
    struct stat outside[3];
    ck_assert_int_eq(stat(r.out, &outside[0]), 0);
    ck_assert_int_eq(stat(out_secret, &outside[1]), 0);
    ck_assert_int_eq(stat(out_f, &outside[2]), 0);
    tu_flt_attach(&fe.e, r.vol, &fe.f);

    const char *env = getenv("UWDF_TEST_RACE_MS");
    double ms = env && atoi(env) > 0 ? atoi(env) : RACE_MS_DEFAULT;
    static const ULONG dispositions[] = {
        FILE_SUPERSEDE, FILE_OPEN, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE, FILE_OVERWRITE_IF,
    };
    char *names[4] = { secret, f, NULL, NULL };
    ck_assert_int_ge(asprintf(&names[2], "%s/a/../a/secret", r.vol), 0);
    struct race_count c = { 0 };
    /* Each cycle meets each mix of the two swaps, with a relative and an
     * absolute symlink out, and ends where it started. */
    const char *from[8] = { a, f, a, f, a, f, a, f }, *to[8] = { a_rel, f_lnk, a_rel, f_lnk, a_abs, f_lnk, a_abs, f_lnk };
    memcpy(sw.from, from, sizeof(from));
    memcpy(sw.to, to, sizeof(to));
    tu_swapper_start(&sw);
    double end = tu_now_ms() + ms;
    for (unsigned long k = 0; tu_now_ms() < end && c.escapes == 0; k++) {
        ULONG d = dispositions[k % 6];
        unsigned which = (unsigned)(k / 6) % 4;
        if (which == 3) {
            free(names[3]);
            ck_assert_int_ge(asprintf(&names[3], "%s/a/new-%lu", r.vol, k), 0);
        }
        race_open_one(&fe, &r, names[which], d, outside, 3, &c);
    }
    tu_swapper_stop(&sw);
    fprintf(stderr, "flt race %s %s: %lu opens in %.0f ms, %lu succeeded, %lu denied, %lu collided, %lu missing, "
                    "%lu swaps, %lu escapes\n",
            tu_backend_names[backend], walk ? "walk" : "openat2", c.opens, ms, c.ok, c.denied, c.collided, c.missing,
            atomic_load(&sw.swaps), c.escapes);
    ck_assert_int_eq(sw.err, 0);
    ck_assert_msg(c.escapes == 0, "%lu of %lu successful opens escaped the volume", c.escapes, c.ok);
    /* Nothing created, truncated or written outside. */
    ck_assert_int_eq(tu_count_entries(r.out), 2);
    ck_assert(tu_text_is(out_secret, RACE_OUTSIDE_TEXT));
    ck_assert(tu_text_is(out_f, RACE_OUTSIDE_TEXT));
    /* The race was run: the swapper swapped, opens got through and were refused. */
    ck_assert_uint_gt(atomic_load(&sw.swaps), 0);
    ck_assert_uint_gt(c.ok, 0);
    ck_assert_uint_gt(c.denied, 0);
    atomic_store(&uwdf_resolve_walk_only, false);
    for (int i = 0; i < 4; i++)
        free(names[i] == secret || names[i] == f ? NULL : names[i]);
    free(a);
    free(secret);
    free(f);
    free(out_secret);
    free(out_f);
    free(a_rel);
    free(a_abs);
    free(f_lnk);
    free(r.vol);
    free(r.out);
    fenv_fini(&fe);
}
END_TEST

static Suite *flt_suite(bool with_loop_devices)
{
    Suite *s = suite_create("flt");
    TCase *tc = tu_tcase(s, "flt", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, register_start_unregister_and_bad_registration);
    tcase_add_loop_test(tc, volume_names_and_create_outside_volume_refused, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, write_reuse_read_back_10000_times_on_one_block, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, async_reissue_from_callback_10000_operations, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_keeps_targets_clears_parameters_and_frees_mdl_chain, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_of_in_flight_data_is_a_bug_check, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, create_async_is_invalid_and_callback_runs_once, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, allocation_failure_is_insufficient_resources, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, preallocated_data_performs_under_every_allocation_failing, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, read_write_file_sync_async_and_current_byte_offset, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_perform_inside_async_callback_is_invalid_device_request, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, file_object_outlives_close_until_dereferenced, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_and_free_check_irql, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reissue_synchronous_io_repeats_the_operation_as_it_now_is, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, create_file_hostile_names_get_their_documented_status, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, create_file_name_with_a_nul_inside_is_object_name_invalid, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, volume_renamed_away_still_opens_its_own_files, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, volume_got_by_a_symlinked_name_takes_both_names, 0, TU_BACKENDS);
    /* engine x resolver: io_uring openat2, io_uring walk, libaio openat2, libaio walk */
    tcase_add_loop_test(tc, create_file_racing_directory_and_symlink_swaps_never_escapes, 0, TU_BACKENDS * 2);
    if (with_loop_devices) {
        tc = tu_tcase(s, "flt_loop_device", TEST_TIMEOUT_SEC);
        tcase_add_loop_test(tc, block_device_volume_write_reuse_read, 0, TU_BACKENDS);
    }
    return s;
}

int main(void)
{
    return tu_main_root(flt_suite(tu_root()), "test_flt", "loop-device tests skipped");
}
