/* WDFIOTARGET on files and block devices: open by name, data paths (sync
 * with every descriptor kind, async), file position, end of file, O_DIRECT
 * alignment, access, the state machine (Start / Stop / Purge / Close) with
 * pended and sent requests, storage IOCTLs, flush, allocation failures,
 * synchronous-send validation and resends from a completion routine. Tests
 * that move data run once per engine (io_uring, libaio) and check the target
 * really uses it. Loop-device tests need root; without it the program
 * reports SKIP (77) after the rest ran. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ntdddisk.h>
#include <pthread.h>
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
#define FILE_SEED 21u
#define LOOP_FILE_SIZE (1u << 20)
#define WAIT_MS 10000        /* an I/O that takes this long is lost */
#define PEND_OBSERVE_MS 200  /* how long pended requests must stay put */
#define FIFO_BYTES 64
#define ASYNC_DEPTH 8
#define PENDED_COUNT 4
#define FAULT_POINTS_MAX 32
#define TEST_TIMEOUT_SEC 60

/* ---- helpers ---- */

/* A target on path through tu_env_target (the env's engine), started. */
static WDFIOTARGET open_target(struct tu_env *e, const char *path, ACCESS_MASK access, ULONG options)
{
    WDFIOTARGET target = tu_env_target(e, path, access, options);
    ck_assert_int_eq(WdfIoTargetGetState(target), WdfIoTargetStarted);
    return target;
}

/* Open with full control of the parameters; returns the status. */
static NTSTATUS open_with(WDFIOTARGET target, const char *path, ACCESS_MASK access, ULONG disposition,
                          ULONG options, ULONG *information)
{
    WDF_IO_TARGET_OPEN_PARAMS p;
    UNICODE_STRING name;
    WCHAR buf[4096];
    tu_unicode(&name, buf, sizeof(buf) / sizeof(buf[0]), path);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &name, access);
    p.CreateDisposition = disposition;
    p.CreateOptions |= options;
    p.FileInformation = 0xDEADu;
    NTSTATUS status = WdfIoTargetOpen(target, &p);
    if (information)
        *information = p.FileInformation;
    return status;
}

static WDFIOTARGET new_target(struct tu_env *e)
{
    WDFIOTARGET t;
    ck_assert_status(WdfIoTargetCreate(e->device, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_SUCCESS);
    return t;
}

static void reuse(WDFREQUEST req)
{
    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(req, &p), STATUS_SUCCESS);
}

/* The file's bytes, read behind the framework's back. */
static bool file_matches(const char *path, uint64_t offset, size_t len, unsigned seed)
{
    unsigned char *got = malloc(len);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = pread(fd, got, len, (off_t)offset);
    close(fd);
    bool same = n == (ssize_t)len && tu_pattern_matches(got, len, seed, offset);
    free(got);
    return same;
}

static NTSTATUS sync_read(WDFIOTARGET t, void *buf, ULONG len, LONGLONG *off, ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, len);
    return WdfIoTargetSendReadSynchronously(t, NULL, &d, off, NULL, bytes);
}

static NTSTATUS sync_write(WDFIOTARGET t, void *buf, ULONG len, LONGLONG *off, ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, len);
    return WdfIoTargetSendWriteSynchronously(t, NULL, &d, off, NULL, bytes);
}

static NTSTATUS sync_ioctl(WDFIOTARGET t, ULONG code, void *in, ULONG in_len, void *out, ULONG out_len,
                           ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR din, dout;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&din, in, in_len);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&dout, out, out_len);
    return WdfIoTargetSendIoctlSynchronously(t, NULL, code, in ? &din : NULL, out ? &dout : NULL, NULL,
                                             bytes);
}

static void send_and_wait(WDFREQUEST req, WDFIOTARGET t, struct tu_completion *c)
{
    WdfRequestSetCompletionRoutine(req, tu_on_complete, c);
    ck_assert_msg(WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS), "send failed: " TU_STATUS_FMT,
                  TU_STATUS_ARG(WdfRequestGetStatus(req)));
    ck_assert_msg(tu_completion_wait(c, WAIT_MS), "no completion within %d ms", WAIT_MS);
}

/* Requests pended on a stopped target: block i of the file is read into
 * memory i. */
struct pended {
    WDFREQUEST req[PENDED_COUNT];
    WDFMEMORY mem[PENDED_COUNT];
    void *buf[PENDED_COUNT];
    struct tu_completion c[PENDED_COUNT];
    int n;
};

static void pend_reads(WDFIOTARGET t, struct pended *p, int n)
{
    p->n = n;
    for (int i = 0; i < n; i++) {
        tu_completion_init(&p->c[i]);
        p->req[i] = tu_make_request(t);
        p->mem[i] = tu_make_memory(BLK, &p->buf[i]);
        memset(p->buf[i], 0xEE, BLK);
        LONGLONG off = (LONGLONG)i * BLK;
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, p->req[i], p->mem[i], NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(p->req[i], tu_on_complete, &p->c[i]);
        ck_assert(WdfRequestSend(p->req[i], t, WDF_NO_SEND_OPTIONS));
    }
}

static int pended_calls(struct pended *p)
{
    int n = 0;
    for (int i = 0; i < p->n; i++)
        n += tu_ncalls(&p->c[i]);
    return n;
}

static void pended_fini(struct pended *p)
{
    for (int i = 0; i < p->n; i++)
        tu_completion_fini(&p->c[i]);
}

/* =================================================================== */
/* open                                                                 */
/* =================================================================== */

START_TEST(open_missing_file_is_object_name_not_found)
{
    struct tu_env e;
    tu_env_init(&e);
    char *path = tu_env_path(&e, "missing");
    WDFIOTARGET t = new_target(&e);
    ck_assert_status(open_with(t, path, GENERIC_READ, FILE_OPEN, 0, NULL), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(open_with(t, path, GENERIC_READ | GENERIC_WRITE, FILE_OVERWRITE, 0, NULL),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing was created */
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(create_existing_file_is_object_name_collision)
{
    struct tu_env e;
    ULONG info;
    tu_env_init(&e);
    char *path = tu_env_file(&e, "exists", BLK, FILE_SEED);
    WDFIOTARGET t = new_target(&e);
    ck_assert_status(open_with(t, path, GENERIC_READ | GENERIC_WRITE, FILE_CREATE, 0, NULL),
                     STATUS_OBJECT_NAME_COLLISION);
    ck_assert(file_matches(path, 0, BLK, FILE_SEED)); /* untouched */
    /* A new name is created. */
    char *fresh = tu_env_path(&e, "fresh");
    ck_assert_status(open_with(t, fresh, GENERIC_READ | GENERIC_WRITE, FILE_CREATE, 0, &info), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_CREATED);
    ck_assert_int_eq(access(fresh, F_OK), 0);
    free(fresh);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(open_if_creates_then_opens)
{
    struct tu_env e;
    ULONG info;
    tu_env_init(&e);
    char *path = tu_env_path(&e, "openif");
    WDFIOTARGET t = new_target(&e);
    ck_assert_status(open_with(t, path, GENERIC_READ | GENERIC_WRITE, FILE_OPEN_IF, 0, &info), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_CREATED);
    WdfIoTargetClose(t);
    ck_assert_status(open_with(t, path, GENERIC_READ | GENERIC_WRITE, FILE_OPEN_IF, 0, &info), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OPENED);
    WdfIoTargetClose(t);
    char *other = tu_env_file(&e, "other", BLK, FILE_SEED);
    ck_assert_status(open_with(t, other, GENERIC_READ, FILE_OPEN, 0, &info), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OPENED);
    free(other);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(overwrite_if_truncates)
{
    struct tu_env e;
    ULONG info;
    struct stat st;
    tu_env_init(&e);
    char *path = tu_env_file(&e, "full", 2 * BLK, FILE_SEED);
    WDFIOTARGET t = new_target(&e);
    ck_assert_status(open_with(t, path, GENERIC_READ | GENERIC_WRITE, FILE_OVERWRITE_IF, 0, &info),
                     STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OVERWRITTEN);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    WdfIoTargetClose(t);
    /* A missing file is created. */
    char *fresh = tu_env_path(&e, "fresh");
    ck_assert_status(open_with(t, fresh, GENERIC_READ | GENERIC_WRITE, FILE_OVERWRITE_IF, 0, &info),
                     STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_CREATED);
    free(fresh);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(open_params_bad_size_is_info_length_mismatch)
{
    struct tu_env e;
    WDF_IO_TARGET_OPEN_PARAMS p;
    UNICODE_STRING name;
    WCHAR buf[4096];
    tu_env_init(&e);
    char *path = tu_env_file(&e, "f", BLK, FILE_SEED);
    WDFIOTARGET t = new_target(&e);
    tu_unicode(&name, buf, sizeof(buf) / sizeof(buf[0]), path);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &name, GENERIC_READ);
    p.Size = sizeof(p) - 4;
    ck_assert_status(WdfIoTargetOpen(t, &p), STATUS_INFO_LENGTH_MISMATCH);
    p.Size = sizeof(p) + 4;
    ck_assert_status(WdfIoTargetOpen(t, &p), STATUS_INFO_LENGTH_MISMATCH);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    p.Size = sizeof(p);
    ck_assert_status(WdfIoTargetOpen(t, &p), STATUS_SUCCESS);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(open_already_open_is_invalid_device_state)
{
    struct tu_env e;
    tu_env_init(&e);
    char *path = tu_env_file(&e, "f", BLK, FILE_SEED);
    char *other = tu_env_file(&e, "g", BLK, FILE_SEED);
    WDFIOTARGET t = new_target(&e);
    ck_assert_status(open_with(t, path, GENERIC_READ, FILE_OPEN, 0, NULL), STATUS_SUCCESS);
    HANDLE h = WdfIoTargetWdmGetTargetFileHandle(t);
    ck_assert_status(open_with(t, other, GENERIC_READ, FILE_OPEN, 0, NULL), STATUS_INVALID_DEVICE_STATE);
    ck_assert_status(open_with(t, path, GENERIC_READ, FILE_OPEN, 0, NULL), STATUS_INVALID_DEVICE_STATE);
    /* Still the first open. */
    ck_assert_ptr_eq(WdfIoTargetWdmGetTargetFileHandle(t), h);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    free(other);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(open_directory_is_file_is_a_directory)
{
    struct tu_env e;
    tu_env_init(&e);
    WDFIOTARGET t = new_target(&e);
    ck_assert_status(open_with(t, e.dir, GENERIC_READ, FILE_OPEN, 0, NULL), STATUS_FILE_IS_A_DIRECTORY);
    ck_assert_status(open_with(t, e.dir, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0, NULL),
                     STATUS_FILE_IS_A_DIRECTORY);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    tu_env_fini(&e);
}
END_TEST

START_TEST(open_unknown_nt_device_name_is_object_name_not_found)
{
    struct tu_env e;
    tu_env_init(&e);
    WDFIOTARGET t = new_target(&e);
    static const char *const names[] = { "\\Device\\UwdfNoSuchDevice", "\\DosDevices\\UwdfNoSuchLink",
                                         "\\??\\UwdfNoSuchLink" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_status_msg(open_with(t, names[i], GENERIC_READ, FILE_OPEN, 0, NULL), STATUS_OBJECT_NAME_NOT_FOUND,
                             "%s", names[i]);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    tu_env_fini(&e);
}
END_TEST

START_TEST(reopen_after_close_reopens)
{
    struct tu_env e;
    unsigned char buf[BLK];
    ULONG_PTR bytes;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET never = new_target(&e);
    WDF_IO_TARGET_OPEN_PARAMS p;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&p);
    /* Nothing to reopen. (The port says STATUS_INVALID_PARAMETER; WDF's
     * FxIoTargetRemote::Open says STATUS_INVALID_DEVICE_REQUEST: only the
     * failure is the contract here.) */
    ck_assert_nt_failure(WdfIoTargetOpen(never, &p));
    ck_assert_int_eq(WdfIoTargetGetState(never), WdfIoTargetClosed);

    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    WdfIoTargetClose(t);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    ck_assert_ptr_null(WdfIoTargetWdmGetTargetFileHandle(t));
    WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&p);
    ck_assert_status(WdfIoTargetOpen(t, &p), STATUS_SUCCESS);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), tu_backend_names[_i]);
    LONGLONG off = 5 * BLK;
    ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, (uint64_t)off));
    /* Same file, same access: a write is still refused. */
    ck_assert_status(sync_write(t, buf, BLK, &off, &bytes), STATUS_ACCESS_DENIED);
    /* And again. */
    WdfIoTargetClose(t);
    ck_assert_status(WdfIoTargetOpen(t, &p), STATUS_SUCCESS);
    ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_SUCCESS);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(fifo_needs_io_uring_libaio_refuses_it)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    const char *path = tu_env_fifo(&e);
    WDFIOTARGET t;
    NTSTATUS status = tu_target_open(e.device, path, GENERIC_READ, FILE_OPEN, 0, &t);
    if (_i == 0) {
        ck_assert_status(status, STATUS_SUCCESS);
        ck_assert_str_eq(UwdfIoTargetGetBackendName(t), "io_uring");
    } else {
        ck_assert_status(status, STATUS_NOT_SUPPORTED);
        ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    }
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* data paths                                                           */
/* =================================================================== */

/* Write then read back at base, with each descriptor kind: a buffer, a
 * WDFMEMORY with a WDFMEMORY_OFFSET, and a chain of three MDLs over
 * separate buffers. Everything is block-aligned, so it works unbuffered. */
static void sync_write_read_all_kinds(WDFIOTARGET t, uint64_t base, unsigned seed)
{
    ULONG_PTR bytes;
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off;

    /* buffer */
    unsigned char *wbuf = tu_aligned_alloc(2 * BLK), *rbuf = tu_aligned_alloc(2 * BLK);
    tu_fill_pattern(wbuf, 2 * BLK, seed, base);
    memset(rbuf, 0, 2 * BLK);
    off = (LONGLONG)base;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, wbuf, 2 * BLK);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, 2 * BLK);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, rbuf, 2 * BLK);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, 2 * BLK);
    ck_assert(memcmp(wbuf, rbuf, 2 * BLK) == 0);

    /* WDFMEMORY + WDFMEMORY_OFFSET: only the described window moves */
    unsigned char *wm, *rm;
    WDFMEMORY wmem = tu_make_memory(3 * BLK, (void **)&wm), rmem = tu_make_memory(3 * BLK, (void **)&rm);
    WDFMEMORY_OFFSET wo = { .BufferOffset = BLK, .BufferLength = BLK };
    WDFMEMORY_OFFSET ro = { .BufferOffset = 2 * BLK, .BufferLength = BLK };
    memset(wm, 0x11, 3 * BLK);
    off = (LONGLONG)(base + 2 * BLK);
    tu_fill_pattern(wm + BLK, BLK, seed + 1, (uint64_t)off);
    memset(rm, 0x22, 3 * BLK);
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, wmem, &wo);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, rmem, &ro);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(rm + 2 * BLK, BLK, seed + 1, (uint64_t)off));
    for (int i = 0; i < 2 * BLK; i++)
        ck_assert_int_eq(rm[i], 0x22);

    /* chained MDL, three pieces */
    unsigned char *wp[3], *rp[3];
    PMDL wmdl[3], rmdl[3];
    off = (LONGLONG)(base + 3 * BLK);
    for (int i = 0; i < 3; i++) {
        wp[i] = tu_aligned_alloc(BLK);
        rp[i] = tu_aligned_alloc(BLK);
        tu_fill_pattern(wp[i], BLK, seed + 2, (uint64_t)off + (uint64_t)i * BLK);
        memset(rp[i], 0, BLK);
        wmdl[i] = IoAllocateMdl(wp[i], BLK, FALSE, FALSE, NULL);
        rmdl[i] = IoAllocateMdl(rp[i], BLK, FALSE, FALSE, NULL);
        ck_assert_ptr_nonnull(wmdl[i]);
        ck_assert_ptr_nonnull(rmdl[i]);
        MmBuildMdlForNonPagedPool(wmdl[i]);
        MmBuildMdlForNonPagedPool(rmdl[i]);
        if (i > 0) {
            wmdl[i - 1]->Next = wmdl[i];
            rmdl[i - 1]->Next = rmdl[i];
        }
    }
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, wmdl[0], 3 * BLK);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, 3 * BLK);
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, rmdl[0], 3 * BLK);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, 3 * BLK);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(memcmp(wp[i], rp[i], BLK) == 0, "MDL piece %d", i);
    /* On the device the pieces are contiguous, in chain order. */
    unsigned char *all = tu_aligned_alloc(3 * BLK);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, all, 3 * BLK);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(all, 3 * BLK, seed + 2, (uint64_t)off));
    for (int i = 0; i < 3; i++) {
        IoFreeMdl(wmdl[i]);
        IoFreeMdl(rmdl[i]);
        free(wp[i]);
        free(rp[i]);
    }
    free(all);
    WdfObjectDelete(wmem);
    WdfObjectDelete(rmem);
    free(wbuf);
    free(rbuf);
}

/* ASYNC_DEPTH writes in flight at once on separate requests, then as many
 * reads, each block compared. */
/* ASYNC_DEPTH requests, each with a block-sized WDFMEMORY. */
struct async_set {
    WDFREQUEST req[ASYNC_DEPTH];
    WDFMEMORY mem[ASYNC_DEPTH];
    unsigned char *buf[ASYNC_DEPTH];
};

static void async_set_make(WDFIOTARGET t, struct async_set *a)
{
    for (int i = 0; i < ASYNC_DEPTH; i++) {
        a->req[i] = tu_make_request(t);
        a->mem[i] = tu_make_memory(BLK, (void **)&a->buf[i]);
    }
}

static void async_set_delete(struct async_set *a)
{
    for (int i = 0; i < ASYNC_DEPTH; i++) {
        WdfObjectDelete(a->req[i]);
        WdfObjectDelete(a->mem[i]);
    }
}

static void async_write_read_with(WDFIOTARGET t, uint64_t base, unsigned seed, struct async_set *a)
{
    WDFREQUEST *req = a->req;
    WDFMEMORY *mem = a->mem;
    unsigned char **buf = a->buf;
    struct tu_completion c[ASYNC_DEPTH];

    for (int pass = 0; pass < 2; pass++) {
        bool write = pass == 0;
        for (int i = 0; i < ASYNC_DEPTH; i++) {
            LONGLONG off = (LONGLONG)(base + (uint64_t)i * BLK);
            tu_completion_init(&c[i]);
            if (write) {
                tu_fill_pattern(buf[i], BLK, seed, (uint64_t)off);
                ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req[i], mem[i], NULL, &off), STATUS_SUCCESS);
            } else {
                reuse(req[i]);
                memset(buf[i], 0, BLK);
                ck_assert_status(WdfIoTargetFormatRequestForRead(t, req[i], mem[i], NULL, &off), STATUS_SUCCESS);
            }
            WdfRequestSetCompletionRoutine(req[i], tu_on_complete, &c[i]);
            ck_assert(WdfRequestSend(req[i], t, WDF_NO_SEND_OPTIONS));
        }
        for (int i = 0; i < ASYNC_DEPTH; i++) {
            ck_assert(tu_completion_wait(&c[i], WAIT_MS));
            ck_assert_int_eq(tu_ncalls(&c[i]), 1);
            ck_assert_status(c[i].status, STATUS_SUCCESS);
            ck_assert_uint_eq(c[i].information, BLK);
            ck_assert_int_eq(c[i].type, write ? WdfRequestTypeWrite : WdfRequestTypeRead);
            if (!write)
                ck_assert_msg(tu_pattern_matches(buf[i], BLK, seed, base + (uint64_t)i * BLK), "block %d", i);
            tu_completion_fini(&c[i]);
        }
    }
}

static void async_write_read(WDFIOTARGET t, uint64_t base, unsigned seed)
{
    struct async_set a;
    async_set_make(t, &a);
    async_write_read_with(t, base, seed, &a);
    async_set_delete(&a);
}

START_TEST(sync_write_read_all_descriptor_kinds_regular_file)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET buffered = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    sync_write_read_all_kinds(buffered, 0, 100);
    WDFIOTARGET direct = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
    sync_write_read_all_kinds(direct, 8 * BLK, 200);
    /* Both landed in the file. */
    ck_assert(file_matches(path, 0, 2 * BLK, 100));
    ck_assert(file_matches(path, 8 * BLK, 2 * BLK, 200));
    ck_assert(file_matches(path, 11 * BLK, 3 * BLK, 202));
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(async_write_read_regular_file)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET buffered = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    async_write_read(buffered, 0, 300);
    WDFIOTARGET direct = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
    async_write_read(direct, 8 * BLK, 400);
    ck_assert(file_matches(path, 0, ASYNC_DEPTH * BLK, 300));
    ck_assert(file_matches(path, 8 * BLK, ASYNC_DEPTH * BLK, 400));
    free(path);
    tu_env_fini(&e);
}
END_TEST

static UWDF_IO_TARGET_STATISTICS target_stats(WDFIOTARGET t)
{
    UWDF_IO_TARGET_STATISTICS st;
    memset(&st, 0xEE, sizeof(st));
    st.Size = sizeof(st);
    ck_assert_status(UwdfIoTargetGetStatistics(t, &st), STATUS_SUCCESS);
    return st;
}

/* UwdfIoTargetRegisterMemory / RegisterFile: bad input and state, then
 * ASYNC_DEPTH writes and reads through registered WDFMEMORY buffers and one
 * read through an unregistered one. On io_uring exactly the registered ones
 * go down as READ_FIXED / WRITE_FIXED and all on the fixed file (engine
 * statistics); libaio registers nothing and still moves the data. The
 * memory objects are deleted while registered: the target keeps them until
 * it closes. */
START_TEST(registered_memory_and_file_use_fixed_ops)
{
    struct tu_env e;
    bool uring = _i == 0;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET closed = new_target(&e);
    UWDF_IO_TARGET_STATISTICS st = { .Size = sizeof(st) };
    ck_assert_status(UwdfIoTargetGetStatistics(closed, &st), STATUS_INVALID_DEVICE_STATE);
    ck_assert_status(UwdfIoTargetRegisterFile(closed), STATUS_INVALID_DEVICE_STATE);

    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
    struct async_set a;
    async_set_make(t, &a);
    WDFMEMORY *mem = a.mem;
    st.Size = sizeof(st) - 1;
    ck_assert_status(UwdfIoTargetGetStatistics(t, &st), STATUS_INFO_LENGTH_MISMATCH);
    ck_assert_status(UwdfIoTargetRegisterMemory(t, NULL, 1), STATUS_INVALID_PARAMETER);
    ck_assert_status(UwdfIoTargetRegisterMemory(t, mem, 0), STATUS_INVALID_PARAMETER);
    st = target_stats(t);
    ck_assert_uint_eq(st.RegisteredBuffers, 0);
    ck_assert(!st.RegisteredFile);

    ck_assert_status(UwdfIoTargetRegisterMemory(t, mem, ASYNC_DEPTH), STATUS_SUCCESS);
    ck_assert_status(UwdfIoTargetRegisterFile(t), STATUS_SUCCESS);
    /* One registration of each kind per open target (a no-op on libaio). */
    ck_assert_status(UwdfIoTargetRegisterMemory(t, mem, 1), uring ? STATUS_INVALID_DEVICE_STATE : STATUS_SUCCESS);
    ck_assert_status(UwdfIoTargetRegisterFile(t), uring ? STATUS_INVALID_DEVICE_STATE : STATUS_SUCCESS);
    st = target_stats(t);
    ck_assert_uint_eq(st.RegisteredBuffers, uring ? ASYNC_DEPTH : 0);
    ck_assert_int_eq(st.RegisteredFile, uring);
    ULONGLONG ops0 = st.Operations;

    const uint64_t base = 16 * BLK;
    async_write_read_with(t, base, 500, &a);
    ck_assert(file_matches(path, base, ASYNC_DEPTH * BLK, 500));
    async_set_delete(&a); /* while registered: the buffers stay valid for the kernel */
    unsigned char *plain = tu_aligned_alloc(2 * BLK);
    LONGLONG off = (LONGLONG)base;
    ULONG_PTR bytes;
    ck_assert_status(sync_read(t, plain, 2 * BLK, &off, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, 2 * BLK);
    ck_assert(tu_pattern_matches(plain, 2 * BLK, 500, base));
    free(plain);

    st = target_stats(t);
    ck_assert_uint_eq(st.Operations - ops0, 2 * ASYNC_DEPTH + 1);
    ck_assert_uint_eq(st.FixedBufferOperations, uring ? 2 * ASYNC_DEPTH : 0);
    /* The synchronous read ran on this thread's own ring (no registrations). */
    ck_assert_uint_eq(st.FixedFileOperations, uring ? 2 * ASYNC_DEPTH : 0);
    WdfIoTargetClose(t);
    ck_assert_status(UwdfIoTargetGetStatistics(t, &st), STATUS_INVALID_DEVICE_STATE);
    free(path);
    tu_env_fini(&e);
}
END_TEST

struct where_completed {
    pthread_t thread;
    KIRQL irql;
    NTSTATUS status;
    int calls;
};

static VOID record_thread(WDFREQUEST r, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT ctx)
{
    struct where_completed *w = ctx;
    w->thread = pthread_self();
    w->irql = KeGetCurrentIrql();
    w->status = p->IoStatus.Status;
    w->calls++;
}

/* A synchronous send from an application thread runs on that thread: with
 * no timeout as a plain blocking system call on either backend, with a
 * timeout on io_uring on the sender's own ring (a linked timeout). So the
 * completion routine runs on the sending thread (at DISPATCH_LEVEL, as
 * always). A timed one on libaio, whose timeout is the framework's timer,
 * still goes through the engine thread. The data is right either way, and
 * the request can be reused and sent again. */
START_TEST(sync_send_completes_on_the_sending_thread)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    WDFREQUEST req = tu_make_request(t);
    unsigned char *buf;
    WDFMEMORY mem = tu_make_memory(BLK, (void **)&buf);
    WDF_REQUEST_SEND_OPTIONS o;
    for (int round = 0; round < 4; round++) {
        struct where_completed w = { .calls = 0 };
        LONGLONG off = (LONGLONG)(round + 3) * BLK;
        bool timed = round >= 2;
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
        if (timed)
            WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(10));
        if (round)
            reuse(req);
        memset(buf, 0, BLK);
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(req, record_thread, &w);
        ck_assert(WdfRequestSend(req, t, &o));
        ck_assert_status(WdfRequestGetStatus(req), STATUS_SUCCESS);
        ck_assert_int_eq(w.calls, 1);
        ck_assert_status(w.status, STATUS_SUCCESS);
        ck_assert_int_eq(w.irql, DISPATCH_LEVEL);
        ck_assert_int_eq(pthread_equal(w.thread, pthread_self()) != 0, !timed || _i == 0);
        ck_assert_int_eq(KeGetCurrentIrql(), PASSIVE_LEVEL);
        ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, (uint64_t)off));
    }
    WdfObjectDelete(req);
    WdfObjectDelete(mem);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(null_device_offset_uses_and_advances_file_position)
{
    struct tu_env e;
    ULONG_PTR bytes;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", 4 * BLK, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);

    tu_fill_pattern(buf, BLK, 51, 0);
    ck_assert_status(sync_write(t, buf, BLK, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    tu_fill_pattern(buf, BLK, 52, BLK);
    ck_assert_status(sync_write(t, buf, BLK, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);

    LONGLONG off = 0;
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, 51, 0));
    off = BLK;
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, 52, BLK));
    off = 2 * BLK;
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, 2 * BLK)); /* untouched */

    /* A new open starts at 0; reads advance the position too. */
    WdfIoTargetClose(t);
    WDF_IO_TARGET_OPEN_PARAMS p;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&p);
    ck_assert_status(WdfIoTargetOpen(t, &p), STATUS_SUCCESS);
    memset(buf, 0, BLK);
    ck_assert_status(sync_read(t, buf, BLK, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, 51, 0));
    ck_assert_status(sync_read(t, buf, BLK, NULL, &bytes), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, 52, BLK));

    /* The asynchronous path shares the position. */
    struct tu_completion c;
    tu_completion_init(&c);
    void *mbuf;
    WDFMEMORY mem = tu_make_memory(BLK, &mbuf);
    WDFREQUEST req = tu_make_request(t);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, NULL), STATUS_SUCCESS);
    send_and_wait(req, t, &c);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(mbuf, BLK, FILE_SEED, 2 * BLK));
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

#define EOF_FILE_SIZE 10000

START_TEST(read_at_or_past_eof_is_end_of_file)
{
    struct tu_env e;
    ULONG_PTR bytes;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", EOF_FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    static const LONGLONG offsets[] = { EOF_FILE_SIZE, EOF_FILE_SIZE + 1, 3 * BLK, 1 << 30 };
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        LONGLONG off = offsets[i];
        bytes = 777;
        ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_END_OF_FILE);
        ck_assert_uint_eq(bytes, 0);
    }
    /* Asynchronously the same. */
    struct tu_completion c;
    tu_completion_init(&c);
    WDFMEMORY mem = tu_make_memory(BLK, NULL);
    WDFREQUEST req = tu_make_request(t);
    LONGLONG off = EOF_FILE_SIZE;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    send_and_wait(req, t, &c);
    ck_assert_status(c.status, STATUS_END_OF_FILE);
    ck_assert_uint_eq(c.information, 0);
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(short_read_near_eof_succeeds_with_bytes_read)
{
    struct tu_env e;
    ULONG_PTR bytes;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", EOF_FILE_SIZE, FILE_SEED);
    unsigned char *buf = tu_aligned_alloc(BLK);
    const size_t tail = EOF_FILE_SIZE - 2 * BLK;
    static const ULONG options[] = { 0, FILE_NO_INTERMEDIATE_BUFFERING };
    for (size_t i = 0; i < 2; i++) {
        WDFIOTARGET t = open_target(&e, path, GENERIC_READ, options[i]);
        LONGLONG off = 2 * BLK;
        memset(buf, 0xEE, BLK);
        ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_SUCCESS);
        ck_assert_uint_eq(bytes, tail);
        ck_assert(tu_pattern_matches(buf, tail, FILE_SEED, (uint64_t)off));
    }
    free(buf);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(misaligned_direct_io_is_datatype_misalignment)
{
    struct tu_env e;
    ULONG_PTR bytes;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
    unsigned char *raw = tu_aligned_alloc(3 * BLK);
    memset(raw, 0x77, 3 * BLK);

    /* buffer + 1, offset 100, length 1000 */
    LONGLONG off = 100;
    bytes = 5;
    ck_assert_status(sync_write(t, raw + 1, 1000, &off, &bytes), STATUS_DATATYPE_MISALIGNMENT);
    ck_assert_uint_eq(bytes, 0);
    ck_assert_status(sync_read(t, raw + 1, 1000, &off, &bytes), STATUS_DATATYPE_MISALIGNMENT);
    /* each of the three alone */
    LONGLONG aligned = BLK;
    ck_assert_status(sync_write(t, raw + 1, BLK, &aligned, NULL), STATUS_DATATYPE_MISALIGNMENT);
    ck_assert_status(sync_write(t, raw, BLK, &off, NULL), STATUS_DATATYPE_MISALIGNMENT);
    ck_assert_status(sync_write(t, raw, 1000, &aligned, NULL), STATUS_DATATYPE_MISALIGNMENT);
    for (int i = 0; i < 3 * BLK; i++)
        ck_assert_int_eq(raw[i], 0x77); /* the read wrote nothing either */

    /* asynchronously: the send succeeds, the request fails */
    struct tu_completion c;
    tu_completion_init(&c);
    WDFMEMORY mem;
    ck_assert_status(WdfMemoryCreatePreallocated(WDF_NO_OBJECT_ATTRIBUTES, raw + 1, 1000, &mem), STATUS_SUCCESS);
    WDFREQUEST req = tu_make_request(t);
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_SUCCESS);
    send_and_wait(req, t, &c);
    ck_assert_status(c.status, STATUS_DATATYPE_MISALIGNMENT);
    ck_assert_uint_eq(c.information, 0);

    /* Nothing reached the file; aligned I/O still works. */
    ck_assert(file_matches(path, 0, FILE_SIZE, FILE_SEED));
    ck_assert_status(sync_read(t, raw, BLK, &aligned, &bytes), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(raw, BLK, FILE_SEED, BLK));
    tu_completion_fini(&c);
    WdfObjectDelete(req);
    WdfObjectDelete(mem);
    free(raw);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(write_on_read_only_target_is_access_denied)
{
    struct tu_env e;
    ULONG_PTR bytes;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    memset(buf, 0x33, BLK);
    LONGLONG off = 0;
    bytes = 9;
    ck_assert_status(sync_write(t, buf, BLK, &off, &bytes), STATUS_ACCESS_DENIED);
    ck_assert_uint_eq(bytes, 0);

    struct tu_completion c;
    tu_completion_init(&c);
    void *mbuf;
    WDFMEMORY mem = tu_make_memory(BLK, &mbuf);
    memset(mbuf, 0x44, BLK);
    WDFREQUEST req = tu_make_request(t);
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_SUCCESS);
    send_and_wait(req, t, &c);
    ck_assert_status(c.status, STATUS_ACCESS_DENIED);
    ck_assert(file_matches(path, 0, FILE_SIZE, FILE_SEED));

    /* And the other way round: a write-only target does not read. */
    WDFIOTARGET w = open_target(&e, path, GENERIC_WRITE, 0);
    ck_assert_status(sync_read(w, buf, BLK, &off, &bytes), STATUS_ACCESS_DENIED);
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(flush_completes_async_and_synchronous)
{
    struct tu_env e;
    ULONG_PTR bytes;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    unsigned char *buf = tu_aligned_alloc(BLK);
    LONGLONG off = 3 * BLK;
    tu_fill_pattern(buf, BLK, 61, (uint64_t)off);
    ck_assert_status(sync_write(t, buf, BLK, &off, &bytes), STATUS_SUCCESS);

    IO_STACK_LOCATION stack;
    memset(&stack, 0, sizeof(stack));
    stack.MajorFunction = IRP_MJ_FLUSH_BUFFERS;
    WDFREQUEST req = tu_make_request(t);
    struct tu_completion c;
    tu_completion_init(&c);
    WdfRequestWdmFormatUsingStackLocation(req, &stack);
    send_and_wait(req, t, &c);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_int_eq(c.type, WdfRequestTypeNoFormat); /* no framework format context */

    /* Synchronously, through WdfRequestSend. */
    tu_fill_pattern(buf, BLK, 62, (uint64_t)off);
    ck_assert_status(sync_write(t, buf, BLK, &off, &bytes), STATUS_SUCCESS);
    reuse(req);
    WdfRequestWdmFormatUsingStackLocation(req, &stack);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(10));
    ck_assert(WdfRequestSend(req, t, &o));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_SUCCESS);

    /* A fresh, unbuffered open reads what was flushed. */
    WDFIOTARGET again = open_target(&e, path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    memset(buf, 0, BLK);
    ck_assert_status(sync_read(again, buf, BLK, &off, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, 62, (uint64_t)off));
    tu_completion_fini(&c);
    free(buf);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* allocation failures                                                  */
/* =================================================================== */

START_TEST(sync_send_allocation_failure_is_insufficient_resources)
{
    struct tu_env e;
    ULONG_PTR bytes;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    LONGLONG off = BLK;

    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    bytes = 3;
    ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_INSUFFICIENT_RESOURCES);
    ck_assert_uint_eq(bytes, 0);
    ck_assert_uint_eq(UwdfFaultAllocationFailures(), 1);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, BLK));

    /* Every allocation of the call, failed in turn: each failure is
     * INSUFFICIENT_RESOURCES and leaves nothing behind (the sanitizers and
     * valgrind check the leaks); the next clean call works. */
    int n;
    for (n = 1; n < FAULT_POINTS_MAX; n++) {
        UwdfFaultInjectAllocations(UwdfFaultAllocNth, (ULONG)n);
        NTSTATUS status = sync_read(t, buf, BLK, &off, &bytes);
        ULONGLONG failures = UwdfFaultAllocationFailures();
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        if (failures == 0) {
            ck_assert_status(status, STATUS_SUCCESS);
            break;
        }
        ck_assert_status_msg(status, STATUS_INSUFFICIENT_RESOURCES, "allocation %d", n);
        memset(buf, 0, BLK);
        ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_SUCCESS);
        ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, BLK));
    }
    ck_assert_int_lt(n, FAULT_POINTS_MAX);
    ck_assert_int_gt(n, 1);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(request_create_allocation_failure_is_insufficient_resources)
{
    WDFDRIVER driver;
    WDFDEVICE device;
    tu_driver_and_device(&driver, &device);
    WDFREQUEST req = NULL;
    UwdfFaultInjectAllocations(UwdfFaultAllocNth, 1);
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE, &req),
                     STATUS_INSUFFICIENT_RESOURCES);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    int n;
    for (n = 2; n < FAULT_POINTS_MAX; n++) {
        UwdfFaultInjectAllocations(UwdfFaultAllocNth, (ULONG)n);
        NTSTATUS status = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE, &req);
        ULONGLONG failures = UwdfFaultAllocationFailures();
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        if (failures == 0) {
            ck_assert_status(status, STATUS_SUCCESS);
            break;
        }
        ck_assert_status(status, STATUS_INSUFFICIENT_RESOURCES);
    }
    ck_assert_int_lt(n, FAULT_POINTS_MAX);
    ck_assert_ptr_nonnull(WdfRequestWdmGetIrp(req));
    WdfObjectDelete(driver);
}
END_TEST

/* =================================================================== */
/* synchronous-send validation                                          */
/* =================================================================== */

START_TEST(sync_send_options_bad_size_is_info_length_mismatch)
{
    struct tu_env e;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    LONGLONG off = 0;
    o.Size = sizeof(o) - 1;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, &o, NULL), STATUS_INFO_LENGTH_MISMATCH);
    o.Size = 0;
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, &o, NULL), STATUS_INFO_LENGTH_MISMATCH);
    ck_assert_status(WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_DISK_GET_LENGTH_INFO, NULL, &d, &o, NULL),
                     STATUS_INFO_LENGTH_MISMATCH);
    o.Size = sizeof(o);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, &o, NULL), STATUS_SUCCESS);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(sync_send_options_unknown_flags_is_invalid_parameter)
{
    struct tu_env e;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
    static const ULONG bad[] = { 0x10, 0x400, 0x80000000u, WDF_REQUEST_SEND_OPTION_TIMEOUT | 0x40 };
    LONGLONG off = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        WDF_REQUEST_SEND_OPTIONS o;
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, bad[i]);
        ck_assert_status_msg(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, &o, NULL), STATUS_INVALID_PARAMETER,
                             "flags 0x%x", bad[i]);
    }
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(sync_send_with_request_in_flight_is_invalid_device_request)
{
    struct tu_env e;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    /* Pended on a stopped target, the request counts as sent. */
    WdfIoTargetStop(t, WdfIoTargetLeaveSentIoPending);
    struct pended p;
    pend_reads(t, &p, 1);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, BLK);
    LONGLONG off = 0;
    ULONG_PTR bytes = 1;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, p.req[0], &d, &off, NULL, &bytes),
                     STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_uint_eq(bytes, 0);
    /* The pended request was not disturbed. */
    ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    ck_assert(tu_completion_wait(&p.c[0], WAIT_MS));
    ck_assert_status(p.c[0].status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(p.buf[0], BLK, FILE_SEED, 0));
    /* Completed, it is a fine caller request. */
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, p.req[0], &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    pended_fini(&p);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(sync_send_descriptor_type_zero_is_invalid_parameter)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    WDF_MEMORY_DESCRIPTOR d;
    memset(&d, 0, sizeof(d));
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, NULL), STATUS_INVALID_PARAMETER);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, NULL), STATUS_INVALID_PARAMETER);
    d.Type = (WDF_MEMORY_DESCRIPTOR_TYPE)7;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, NULL), STATUS_INVALID_PARAMETER);
    /* A buffer descriptor with a length and no buffer. */
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, NULL, BLK);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, NULL), STATUS_INVALID_PARAMETER);
    ck_assert(file_matches(path, 0, FILE_SIZE, FILE_SEED));
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(sync_send_memory_offset_past_end_is_integer_overflow)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    WDFMEMORY mem = tu_make_memory(BLK, NULL);
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG off = 0;
    static const WDFMEMORY_OFFSET bad[] = {
        { .BufferOffset = BLK, .BufferLength = 1 },
        { .BufferOffset = 1, .BufferLength = BLK },
        { .BufferOffset = BLK + 1, .BufferLength = 0 },
        { .BufferOffset = (size_t)-1, .BufferLength = 2 }, /* wraps */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        WDFMEMORY_OFFSET mo = bad[i];
        WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, mem, &mo);
        ck_assert_status_msg(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, NULL), STATUS_INTEGER_OVERFLOW,
                             "offsets %zu+%zu", mo.BufferOffset, mo.BufferLength);
        ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, NULL), STATUS_INTEGER_OVERFLOW);
    }
    ck_assert(file_matches(path, 0, FILE_SIZE, FILE_SEED));
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(sync_send_bytes_out_param_is_optional)
{
    struct tu_env e;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    LONGLONG off = 6 * BLK;
    tu_fill_pattern(buf, BLK, 71, (uint64_t)off);
    ck_assert_status(sync_write(t, buf, BLK, &off, NULL), STATUS_SUCCESS);
    memset(buf, 0, BLK);
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, 71, (uint64_t)off));
    GET_LENGTH_INFORMATION li;
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), NULL), STATUS_SUCCESS);
    ck_assert_int_eq(li.Length.QuadPart, FILE_SIZE);
    /* A failure with no out parameter is just the status. */
    off = FILE_SIZE;
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_END_OF_FILE);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* the state machine                                                    */
/* =================================================================== */

START_TEST(stop_leave_sent_io_pending_pends_then_start_resubmits)
{
    struct tu_env e;
    struct pended p;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    WdfIoTargetStop(t, WdfIoTargetLeaveSentIoPending);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStopped);
    pend_reads(t, &p, PENDED_COUNT);
    tu_sleep_ms(PEND_OBSERVE_MS);
    ck_assert_int_eq(pended_calls(&p), 0);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStopped);
    /* A second stop, even one that cancels sent I/O, leaves pended I/O be. */
    WdfIoTargetStop(t, WdfIoTargetCancelSentIo);
    ck_assert_int_eq(pended_calls(&p), 0);

    ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    for (int i = 0; i < PENDED_COUNT; i++) {
        ck_assert(tu_completion_wait(&p.c[i], WAIT_MS));
        ck_assert_status(p.c[i].status, STATUS_SUCCESS);
        ck_assert_uint_eq(p.c[i].information, BLK);
        ck_assert_msg(tu_pattern_matches(p.buf[i], BLK, FILE_SEED, (uint64_t)i * BLK), "request %d", i);
    }
    tu_sleep_ms(20);
    ck_assert_int_eq(pended_calls(&p), PENDED_COUNT);
    pended_fini(&p);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(stop_cancel_sent_io_cancels_fifo_read_before_returning)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    const char *path = tu_env_fifo(&e); /* the read parks: no EOF */
    if (_i != 0) {
        /* libaio cannot keep a FIFO read off its completion thread. */
        WDFIOTARGET t;
        ck_assert_status(tu_target_open(e.device, path, GENERIC_READ, FILE_OPEN, 0, &t), STATUS_NOT_SUPPORTED);
        tu_env_fini(&e);
        return;
    }
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    struct tu_completion c;
    tu_completion_init(&c);
    void *buf;
    WDFMEMORY mem = tu_make_memory(FIFO_BYTES, &buf);
    WDFREQUEST req = tu_make_request(t);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, NULL), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
    ck_assert(WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
    tu_sleep_ms(50);
    ck_assert_int_eq(tu_ncalls(&c), 0);

    WdfIoTargetStop(t, WdfIoTargetCancelSentIo);
    ck_assert_int_eq(tu_ncalls(&c), 1); /* completed before Stop returned */
    ck_assert_status(c.status, STATUS_CANCELLED);
    ck_assert_uint_eq(c.information, 0);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStopped);

    /* Started again, the target reads what the FIFO gets. */
    ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    static const char msg[] = "after stop";
    ck_assert_int_eq(write(e.fifo_fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
    reuse(req);
    tu_completion_fini(&c);
    tu_completion_init(&c);
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, NULL), STATUS_SUCCESS);
    send_and_wait(req, t, &c);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.information, sizeof(msg));
    ck_assert(memcmp(buf, msg, sizeof(msg)) == 0);
    tu_completion_fini(&c);
    tu_env_fini(&e);
}
END_TEST

START_TEST(purge_fails_pended_and_refuses_sends_until_start)
{
    struct tu_env e;
    struct pended p;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    WdfIoTargetStop(t, WdfIoTargetLeaveSentIoPending);
    pend_reads(t, &p, 2);
    WdfIoTargetPurge(t, WdfIoTargetPurgeIoAndWait);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetPurged);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(tu_ncalls(&p.c[i]), 1); /* before Purge returned */
        ck_assert_status(p.c[i].status, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
        ck_assert_uint_eq(p.c[i].information, 0);
        for (int b = 0; b < BLK; b++)
            ck_assert_int_eq(((unsigned char *)p.buf[i])[b], 0xEE); /* never read */
    }

    /* Purged: new sends fail, async and sync. */
    struct tu_completion c;
    tu_completion_init(&c);
    reuse(p.req[0]);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, p.req[0], p.mem[0], NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(p.req[0], tu_on_complete, &c);
    ck_assert(!WdfRequestSend(p.req[0], t, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(p.req[0]), STATUS_INVALID_DEVICE_STATE);
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_INVALID_DEVICE_STATE);
    tu_sleep_ms(20);
    ck_assert_int_eq(tu_ncalls(&c), 0);

    ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    send_and_wait(p.req[0], t, &c);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(p.buf[0], BLK, FILE_SEED, 0));
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_SUCCESS);
    tu_completion_fini(&c);
    pended_fini(&p);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(close_fails_pended_with_device_removed_not_sent)
{
    struct tu_env e;
    struct pended p;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    WdfIoTargetStop(t, WdfIoTargetLeaveSentIoPending);
    pend_reads(t, &p, 3);
    WdfIoTargetClose(t);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tu_ncalls(&p.c[i]), 1); /* before Close returned */
        ck_assert_status(p.c[i].status, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
        ck_assert_uint_eq(p.c[i].information, 0);
    }
    pended_fini(&p);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(send_to_closed_target_is_invalid_device_state)
{
    struct tu_env e;
    struct tu_completion c;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    tu_completion_init(&c);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(BLK, NULL);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    WdfIoTargetClose(t);

    WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
    ck_assert(!WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
    ck_assert_status(WdfRequestGetStatus(req), STATUS_INVALID_DEVICE_STATE);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_IGNORE_TARGET_STATE);
    ck_assert(!WdfRequestSend(req, t, &o)); /* closed is closed, state ignored or not */
    ck_assert_status(WdfRequestGetStatus(req), STATUS_INVALID_DEVICE_STATE);
    ULONG_PTR bytes = 8;
    ck_assert_status(sync_read(t, buf, BLK, &off, &bytes), STATUS_INVALID_DEVICE_STATE);
    ck_assert_uint_eq(bytes, 0);
    GET_LENGTH_INFORMATION li;
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), NULL),
                     STATUS_INVALID_DEVICE_STATE);
    tu_sleep_ms(20);
    ck_assert_int_eq(tu_ncalls(&c), 0);
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(format_on_closed_target_is_invalid_device_state)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem = tu_make_memory(BLK, NULL);
    WdfIoTargetClose(t);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_INVALID_DEVICE_STATE);
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_INVALID_DEVICE_STATE);
    ck_assert_status(WdfIoTargetFormatRequestForIoctl(t, req, IOCTL_DISK_GET_LENGTH_INFO, NULL, NULL, mem, NULL),
                     STATUS_INVALID_DEVICE_STATE);
    /* A never-opened target the same. */
    WDFIOTARGET never = new_target(&e);
    ck_assert_status(WdfIoTargetFormatRequestForRead(never, req, mem, NULL, &off), STATUS_INVALID_DEVICE_STATE);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(target_state_through_lifecycle)
{
    struct tu_env e;
    unsigned char buf[BLK];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = new_target(&e);
    /* Never opened: the port reports Closed (WDF's own remote targets say
     * Started here, a leftover of FxIoTarget::Construct, though nothing can
     * be sent to them). */
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    ck_assert_status(WdfIoTargetStart(t), STATUS_INVALID_DEVICE_STATE); /* nothing to start */
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    ck_assert_status(open_with(t, path, GENERIC_READ, FILE_OPEN, 0, NULL), STATUS_SUCCESS);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), tu_backend_names[_i]);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    WdfIoTargetStop(t, WdfIoTargetWaitForSentIoToComplete);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStopped);
    WdfIoTargetStop(t, WdfIoTargetLeaveSentIoPending);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStopped);
    WdfIoTargetStop(t, (WDF_IO_TARGET_SENT_IO_ACTION)0); /* undefined action: ignored */
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStopped);
    ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    WdfIoTargetPurge(t, WdfIoTargetPurgeIo);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetPurged);
    WdfIoTargetStop(t, WdfIoTargetCancelSentIo);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStopped);
    WdfIoTargetPurge(t, WdfIoTargetPurgeIoAndWait);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetPurged);
    ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    LONGLONG off = 0;
    ck_assert_status(sync_read(t, buf, BLK, &off, NULL), STATUS_SUCCESS);

    WdfIoTargetCloseForQueryRemove(t);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosedForQueryRemove);
    ck_assert_ptr_null(UwdfIoTargetGetBackendName(t));
    WDF_IO_TARGET_OPEN_PARAMS p;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&p);
    ck_assert_status(WdfIoTargetOpen(t, &p), STATUS_SUCCESS);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetStarted);
    WdfIoTargetClose(t);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    /* Stop, Purge and Start do not revive a closed target. */
    WdfIoTargetStop(t, WdfIoTargetCancelSentIo);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    WdfIoTargetPurge(t, WdfIoTargetPurgeIoAndWait);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    ck_assert_status(WdfIoTargetStart(t), STATUS_INVALID_DEVICE_STATE);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(get_device_and_file_handle)
{
    struct tu_env e;
    struct stat want, got;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = new_target(&e);
    ck_assert_ptr_eq(WdfIoTargetGetDevice(t), e.device);
    ck_assert_ptr_null(WdfIoTargetWdmGetTargetFileHandle(t)); /* not open */
    ck_assert_status(open_with(t, path, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, FILE_NO_INTERMEDIATE_BUFFERING,
                               NULL),
                     STATUS_SUCCESS);
    ck_assert_ptr_eq(WdfIoTargetGetDevice(t), e.device);
    HANDLE h = WdfIoTargetWdmGetTargetFileHandle(t);
    ck_assert_ptr_nonnull(h);
    int fd = (int)(intptr_t)h;
    ck_assert_int_eq(stat(path, &want), 0);
    ck_assert_int_eq(fstat(fd, &got), 0);
    ck_assert_uint_eq(got.st_dev, want.st_dev);
    ck_assert_uint_eq(got.st_ino, want.st_ino);
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_eq(fl & O_ACCMODE, O_RDWR);
    ck_assert(fl & O_DIRECT);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    WdfIoTargetClose(t);
    ck_assert_ptr_null(WdfIoTargetWdmGetTargetFileHandle(t));
    ck_assert_ptr_eq(WdfIoTargetGetDevice(t), e.device);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* storage IOCTLs                                                       */
/* =================================================================== */

#define ODD_FILE_SIZE (3 * BLK + 123)

START_TEST(ioctl_length_info_regular_file_is_file_size)
{
    struct tu_env e;
    ULONG_PTR bytes;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", ODD_FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    GET_LENGTH_INFORMATION li;
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, sizeof(li));
    ck_assert_int_eq(li.Length.QuadPart, ODD_FILE_SIZE);
    /* A file grows, and the length follows. */
    unsigned char buf[BLK];
    memset(buf, 1, BLK);
    LONGLONG off = 8 * BLK;
    ck_assert_status(sync_write(t, buf, BLK, &off, NULL), STATUS_SUCCESS);
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), &bytes), STATUS_SUCCESS);
    ck_assert_int_eq(li.Length.QuadPart, 9 * BLK);
    /* Geometry of a file: its size, and 512-byte sectors for buffered I/O. */
    DISK_GEOMETRY_EX g;
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, NULL, 0, &g, sizeof(g), &bytes), STATUS_SUCCESS);
    ck_assert_int_eq(g.DiskSize.QuadPart, 9 * BLK);
    ck_assert_uint_eq(g.Geometry.BytesPerSector, 512);
    /* Asynchronously, through a format, the same answer. */
    struct tu_completion c;
    tu_completion_init(&c);
    void *out;
    WDFMEMORY mem = tu_make_memory(sizeof(GET_LENGTH_INFORMATION), &out);
    WDFREQUEST req = tu_make_request(t);
    ck_assert_status(WdfIoTargetFormatRequestForIoctl(t, req, IOCTL_DISK_GET_LENGTH_INFO, NULL, NULL, mem, NULL),
                     STATUS_SUCCESS);
    send_and_wait(req, t, &c);
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_int_eq(c.type, WdfRequestTypeDeviceControl);
    ck_assert_uint_eq(c.information, sizeof(GET_LENGTH_INFORMATION));
    ck_assert_int_eq(((GET_LENGTH_INFORMATION *)out)->Length.QuadPart, 9 * BLK);
    tu_completion_fini(&c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(ioctl_output_buffer_too_small_is_buffer_too_small)
{
    struct tu_env e;
    ULONG_PTR bytes;
    unsigned char small[4];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    bytes = 99;
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, small, sizeof(small), &bytes),
                     STATUS_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(bytes, 0);
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, NULL, 0, &bytes), STATUS_BUFFER_TOO_SMALL);
    unsigned char geo[sizeof(DISK_GEOMETRY)];
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, NULL, 0, geo, sizeof(geo), &bytes),
                     STATUS_BUFFER_TOO_SMALL);
    STORAGE_PROPERTY_QUERY q;
    memset(&q, 0, sizeof(q));
    q.PropertyId = StorageAccessAlignmentProperty;
    q.QueryType = PropertyStandardQuery;
    ck_assert_status(sync_ioctl(t, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), small, sizeof(small), &bytes),
                     STATUS_BUFFER_TOO_SMALL);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(ioctl_unknown_code_is_invalid_device_request)
{
    struct tu_env e;
    ULONG_PTR bytes;
    unsigned char out[64];
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ, 0);
    bytes = 5;
    ck_assert_status(sync_ioctl(t, CTL_CODE(FILE_DEVICE_UNKNOWN, 0x999, METHOD_BUFFERED, FILE_ANY_ACCESS), NULL, 0,
                                out, sizeof(out), &bytes),
                     STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_uint_eq(bytes, 0);
    ck_assert_status(sync_ioctl(t, 0, NULL, 0, NULL, 0, NULL), STATUS_INVALID_DEVICE_REQUEST);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* resends from the completion routine                                  */
/* =================================================================== */

/* A routine that reuses its request, formats it again and sends it again
 * hands the new send what the completed one holds (the target's reference
 * on the request, its place in the sent-I/O count, the format's WDFMEMORY
 * reference): these tests check that nothing is leaked or released twice,
 * through what a driver can see: when objects are destroyed and when
 * Stop and Close return. */

#define CHAIN_READS 200
#define CHAIN_SHORT 8            /* resends before the routine that deletes */
#define CHAIN_RUNNING 32         /* routines run before the target is stopped */
#define CHAIN_UNBOUNDED 1000000  /* only Stop ends such a chain, but it ends */
#define CHAIN_WAIT_MS 30000

/* When an object was destroyed, and on which thread. */
struct life {
    atomic_int destroyed;
    pthread_t thread;
};

typedef struct {
    struct life *life;
} LIFE_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(LIFE_CTX, life_ctx_get);

static VOID life_destroy(WDFOBJECT Object)
{
    struct life *l = life_ctx_get(Object)->life;
    l->thread = pthread_self(); /* published by the increment below */
    atomic_fetch_add(&l->destroyed, 1);
}

static int destroyed(struct life *l)
{
    return atomic_load(&l->destroyed);
}

static void life_attributes(WDF_OBJECT_ATTRIBUTES *a)
{
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(a, LIFE_CTX);
    a->EvtDestroyCallback = life_destroy;
}

static WDFMEMORY counted_memory(struct life *l, unsigned char **buffer)
{
    WDF_OBJECT_ATTRIBUTES a;
    WDFMEMORY mem;
    life_attributes(&a);
    ck_assert_status(WdfMemoryCreate(&a, NonPagedPoolNx, 0, BLK, &mem, (PVOID *)buffer), STATUS_SUCCESS);
    life_ctx_get(mem)->life = l;
    return mem;
}

static WDFREQUEST counted_request(WDFIOTARGET t, struct life *l)
{
    WDF_OBJECT_ATTRIBUTES a;
    WDFREQUEST req;
    life_attributes(&a);
    ck_assert_status(WdfRequestCreate(&a, t, &req), STATUS_SUCCESS);
    life_ctx_get(req)->life = l;
    return req;
}

/* The object's last reference goes with its delete, on this thread: a
 * reference leaked by the hand-over would keep it alive, one released
 * twice would have destroyed it earlier. */
static void delete_destroys_now(WDFOBJECT obj, struct life *l, const char *what)
{
    ck_assert_msg(destroyed(l) == 0, "%s destroyed before it was deleted (a reference released twice)",
                  what);
    WdfObjectDelete(obj);
    ck_assert_msg(destroyed(l) == 1, "%s outlived its WdfObjectDelete (a reference leaked)", what);
    ck_assert_msg(pthread_equal(l->thread, pthread_self()), "%s destroyed on another thread", what);
}

/* WdfIoTargetStop (waiting for sent I/O) or WdfIoTargetClose on a thread
 * of its own, so that an unbalanced sent-I/O count, which makes them wait
 * for ever, fails the test instead of hanging it. */
struct quiesce {
    WDFIOTARGET target;
    bool close;
};

static void *quiesce_thread(void *arg)
{
    struct quiesce *q = arg;
    if (q->close)
        WdfIoTargetClose(q->target);
    else
        WdfIoTargetStop(q->target, WdfIoTargetWaitForSentIoToComplete);
    free(q);
    return NULL;
}

static bool quiesce_within(WDFIOTARGET t, bool close, int ms)
{
    /* On the heap: a thread that never returns still owns it. */
    struct quiesce *q = malloc(sizeof(*q));
    ck_assert_ptr_nonnull(q);
    q->target = t;
    q->close = close;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, quiesce_thread, q), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

/* One request reading block after block, each read sent by the routine of
 * the one before: read k goes to target k % ntargets into memory
 * k % nmem, at block k % FILE_BLOCKS. */
struct chain {
    WDFIOTARGET target[2];
    unsigned seed[2]; /* the pattern of target i's file */
    int ntargets;
    WDFMEMORY mem[2];
    unsigned char *buf[2];
    struct life *mem_life[2];
    int nmem;
    int limit;                 /* reads in all, unless stopped earlier */
    bool end_with_delete;      /* the last routine reuses, then deletes mem[0] */
    atomic_bool stop;          /* the next routine sends nothing */
    atomic_int sent, routines, in_routine, mismatches, failures;
    int first_failure_at;
    NTSTATUS first_failure;
    pthread_t end_thread;      /* the thread of the routine that ended the chain */
    KEVENT running;            /* CHAIN_RUNNING routines ran */
    KEVENT done;               /* the chain ended or failed */
};

static struct chain *chain_new(void)
{
    struct chain *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    KeInitializeEvent(&c->running, NotificationEvent, FALSE);
    KeInitializeEvent(&c->done, NotificationEvent, FALSE);
    return c;
}

static void chain_free(struct chain *c)
{
    UwdfKeDestroyEvent(&c->running);
    UwdfKeDestroyEvent(&c->done);
    free(c);
}

/* No ck_* in the routine (another thread): failures are recorded. */
static void chain_fail(struct chain *c, int k, NTSTATUS status)
{
    if (atomic_fetch_add(&c->failures, 1) == 0) {
        c->first_failure_at = k;
        c->first_failure = status;
    }
    KeSetEvent(&c->running, IO_NO_INCREMENT, FALSE); /* nobody waits in vain */
    KeSetEvent(&c->done, IO_NO_INCREMENT, FALSE);
}

static EVT_WDF_REQUEST_COMPLETION_ROUTINE chain_routine;

static NTSTATUS chain_send(struct chain *c, WDFREQUEST req, int k)
{
    int ti = k % c->ntargets, mi = k % c->nmem;
    LONGLONG off = (LONGLONG)(k % FILE_BLOCKS) * BLK;
    memset(c->buf[mi], 0xA5, BLK); /* stale data must not pass for the read's */
    NTSTATUS status = WdfIoTargetFormatRequestForRead(c->target[ti], req, c->mem[mi], NULL, &off);
    if (!NT_SUCCESS(status))
        return status;
    WdfRequestSetCompletionRoutine(req, chain_routine, c);
    atomic_fetch_add(&c->sent, 1); /* before: the routine may run first */
    if (!WdfRequestSend(req, c->target[ti], WDF_NO_SEND_OPTIONS))
        return WdfRequestGetStatus(req);
    return STATUS_SUCCESS;
}

static VOID chain_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                          WDFCONTEXT Context)
{
    struct chain *c = Context;
    atomic_fetch_add(&c->in_routine, 1);
    int k = atomic_fetch_add(&c->routines, 1);
    int ti = k % c->ntargets, mi = k % c->nmem;
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);

    if (k + 1 != atomic_load(&c->sent)) {
        chain_fail(c, k, STATUS_UNSUCCESSFUL); /* a double or a lost completion */
        goto out;
    }
    if (Params->IoStatus.Status != STATUS_SUCCESS) {
        chain_fail(c, k, Params->IoStatus.Status);
        goto out;
    }
    if (Params->IoStatus.Information != BLK || Params->Type != WdfRequestTypeRead ||
        Params->Parameters.Read.Buffer != c->mem[mi] || Target != c->target[ti]) {
        chain_fail(c, k, STATUS_INVALID_PARAMETER);
        goto out;
    }
    if (!tu_pattern_matches(c->buf[mi], BLK, c->seed[ti], (uint64_t)(k % FILE_BLOCKS) * BLK))
        atomic_fetch_add(&c->mismatches, 1);
    /* A memory object released once too often is gone while still used. */
    for (int i = 0; i < c->nmem; i++)
        if (destroyed(c->mem_life[i]) != 0) {
            chain_fail(c, k, STATUS_OBJECT_NAME_INVALID);
            goto out;
        }

    if (k + 1 == c->limit || atomic_load(&c->stop)) {
        if (c->end_with_delete) {
            /* Reuse sets the format's reference aside; the delete then
             * leaves it the last one, to be dropped when this returns. */
            NTSTATUS status = WdfRequestReuse(Request, &rp);
            if (!NT_SUCCESS(status)) {
                chain_fail(c, k, status);
                goto out;
            }
            WdfObjectDelete(c->mem[0]);
        }
        c->end_thread = pthread_self();
        KeSetEvent(&c->done, IO_NO_INCREMENT, FALSE);
        goto out;
    }
    if (k + 1 == CHAIN_RUNNING)
        KeSetEvent(&c->running, IO_NO_INCREMENT, FALSE);
    NTSTATUS status = WdfRequestReuse(Request, &rp);
    if (NT_SUCCESS(status))
        status = chain_send(c, Request, k + 1);
    if (!NT_SUCCESS(status))
        chain_fail(c, k + 1, status);
out:
    atomic_fetch_sub(&c->in_routine, 1);
}

static void chain_wait(struct chain *c)
{
    LARGE_INTEGER timeout;
    timeout.QuadPart = WDF_REL_TIMEOUT_IN_MS((ULONGLONG)CHAIN_WAIT_MS);
    ck_assert_status_msg(KeWaitForSingleObject(&c->done, Executive, KernelMode, FALSE, &timeout), STATUS_SUCCESS,
                         "chain stuck after %d routines", atomic_load(&c->routines));
}

/* All n reads ran once each, read the right data, and none failed. */
static void chain_check(struct chain *c, int n)
{
    ck_assert_msg(atomic_load(&c->failures) == 0, "read %d failed: " TU_STATUS_FMT, c->first_failure_at,
                  TU_STATUS_ARG(c->first_failure));
    ck_assert_int_eq(atomic_load(&c->routines), n);
    ck_assert_int_eq(atomic_load(&c->sent), n);
    ck_assert_int_eq(atomic_load(&c->mismatches), 0);
}

/* One target, one memory object: the common resend. */
static struct chain *chain_one_target(struct tu_env *e, const char *path, struct life *mem_life, int limit)
{
    struct chain *c = chain_new();
    c->target[0] = open_target(e, path, GENERIC_READ, 0);
    c->seed[0] = FILE_SEED;
    c->ntargets = 1;
    c->mem[0] = counted_memory(mem_life, &c->buf[0]);
    c->mem_life[0] = mem_life;
    c->nmem = 1;
    c->limit = limit;
    return c;
}

START_TEST(resend_chain_same_memory_reads_right_data_and_leaks_nothing)
{
    struct tu_env e;
    struct life req_life = { 0 }, mem_life = { 0 };
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    struct chain *c = chain_one_target(&e, path, &mem_life, CHAIN_READS);
    WDFREQUEST req = counted_request(c->target[0], &req_life);
    ck_assert_status(chain_send(c, req, 0), STATUS_SUCCESS);
    chain_wait(c);
    /* Returns after the last routine has returned and the framework let
     * go of the request, so what follows races with nothing. */
    ck_assert_msg(quiesce_within(c->target[0], false, WAIT_MS),
                  "Stop(WaitForSentIoToComplete) did not return: sent-I/O count unbalanced");
    chain_check(c, CHAIN_READS);
    /* The request's format holds the memory until the request goes. */
    delete_destroys_now(req, &req_life, "request");
    delete_destroys_now(c->mem[0], &mem_life, "memory");
    chain_free(c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(resend_chain_alternating_memories_releases_each_once)
{
    struct tu_env e;
    struct life req_life = { 0 }, mem_life[2] = { { 0 }, { 0 } };
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    struct chain *c = chain_one_target(&e, path, &mem_life[0], CHAIN_READS);
    c->mem[1] = counted_memory(&mem_life[1], &c->buf[1]);
    c->mem_life[1] = &mem_life[1];
    c->nmem = 2;
    WDFREQUEST req = counted_request(c->target[0], &req_life);
    ck_assert_status(chain_send(c, req, 0), STATUS_SUCCESS);
    chain_wait(c);
    ck_assert_msg(quiesce_within(c->target[0], false, WAIT_MS),
                  "Stop(WaitForSentIoToComplete) did not return: sent-I/O count unbalanced");
    chain_check(c, CHAIN_READS);
    /* The last read's memory is still the format's; the other one's
     * reference, set aside by the last resend's reuse, was dropped when
     * that routine returned. */
    int held = (CHAIN_READS - 1) % 2, other = 1 - held;
    delete_destroys_now(c->mem[other], &mem_life[other], "memory the last format did not use");
    WdfObjectDelete(c->mem[held]);
    ck_assert_msg(destroyed(&mem_life[held]) == 0, "memory destroyed while the request's format held it");
    delete_destroys_now(req, &req_life, "request");
    ck_assert_msg(destroyed(&mem_life[held]) == 1, "memory outlived the request that held it (a reference leaked)");
    ck_assert(pthread_equal(mem_life[held].thread, pthread_self()));
    chain_free(c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(reuse_then_delete_memory_in_routine_destroys_it_after_routine)
{
    struct tu_env e;
    struct life req_life = { 0 }, mem_life = { 0 };
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    struct chain *c = chain_one_target(&e, path, &mem_life, CHAIN_SHORT);
    c->end_with_delete = true;
    WDFREQUEST req = counted_request(c->target[0], &req_life);
    ck_assert_status(chain_send(c, req, 0), STATUS_SUCCESS);
    chain_wait(c);
    ck_assert_msg(quiesce_within(c->target[0], false, WAIT_MS),
                  "Stop(WaitForSentIoToComplete) did not return: sent-I/O count unbalanced");
    chain_check(c, CHAIN_SHORT);
    /* Gone by the time the routine is over, by the routine's thread: at
     * the delete or when the routine returned, not kept until later. */
    ck_assert_msg(destroyed(&mem_life) == 1, "memory deleted in the routine after reuse was %s",
                  destroyed(&mem_life) ? "destroyed twice" : "not destroyed (its reference leaked)");
    ck_assert(pthread_equal(mem_life.thread, c->end_thread));
    delete_destroys_now(req, &req_life, "request");
    ck_assert_int_eq(destroyed(&mem_life), 1);
    chain_free(c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

START_TEST(resend_chain_across_two_targets_balances_both_sent_counts)
{
    struct tu_env e;
    struct life req_life = { 0 }, mem_life = { 0 };
    tu_env_init_backend(&e, _i);
    char *path_a = tu_env_file(&e, "a", FILE_SIZE, FILE_SEED);
    char *path_b = tu_env_file(&e, "b", FILE_SIZE, FILE_SEED + 1);
    struct chain *c = chain_one_target(&e, path_a, &mem_life, CHAIN_READS);
    /* Different data in each file: a read from the wrong one is caught. */
    c->target[1] = open_target(&e, path_b, GENERIC_READ, 0);
    c->seed[1] = FILE_SEED + 1;
    c->ntargets = 2;
    WDFREQUEST req = counted_request(c->target[0], &req_life);
    ck_assert_status(chain_send(c, req, 0), STATUS_SUCCESS);
    chain_wait(c);
    /* Each completion on one target sent to the other, so neither may
     * lend its count: both must come back to zero. */
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(quiesce_within(c->target[i], true, WAIT_MS),
                      "Close of target %d did not return: sent-I/O count unbalanced", i);
        ck_assert_int_eq(WdfIoTargetGetState(c->target[i]), WdfIoTargetClosed);
    }
    chain_check(c, CHAIN_READS);
    delete_destroys_now(req, &req_life, "request");
    delete_destroys_now(c->mem[0], &mem_life, "memory");
    chain_free(c);
    free(path_a);
    free(path_b);
    tu_env_fini(&e);
}
END_TEST

START_TEST(stop_waits_for_resend_chain_and_pends_its_resend)
{
    struct tu_env e;
    struct life req_life = { 0 }, mem_life = { 0 };
    LARGE_INTEGER timeout;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "f", FILE_SIZE, FILE_SEED);
    struct chain *c = chain_one_target(&e, path, &mem_life, CHAIN_UNBOUNDED);
    WDFREQUEST req = counted_request(c->target[0], &req_life);
    ck_assert_status(chain_send(c, req, 0), STATUS_SUCCESS);
    timeout.QuadPart = WDF_REL_TIMEOUT_IN_MS((ULONGLONG)CHAIN_WAIT_MS);
    ck_assert_status_msg(KeWaitForSingleObject(&c->running, Executive, KernelMode, FALSE, &timeout), STATUS_SUCCESS,
                         "chain stuck after %d routines", atomic_load(&c->routines));
    ck_assert_msg(atomic_load(&c->failures) == 0, "read %d failed: " TU_STATUS_FMT, c->first_failure_at,
                  TU_STATUS_ARG(c->first_failure));

    /* Stopped mid-chain: the read in flight completes, its routine's
     * resend pends, and only then may Stop return. A resend that took the
     * completed read's place without counting would let it return early. */
    ck_assert_msg(quiesce_within(c->target[0], false, WAIT_MS),
                  "Stop(WaitForSentIoToComplete) did not return: sent-I/O count unbalanced");
    int n = atomic_load(&c->routines);
    ck_assert_int_eq(atomic_load(&c->in_routine), 0);
    ck_assert_int_eq(WdfIoTargetGetState(c->target[0]), WdfIoTargetStopped);
    ck_assert_msg(n < CHAIN_UNBOUNDED, "the chain ended before the target was stopped");
    tu_sleep_ms(PEND_OBSERVE_MS);
    ck_assert_msg(atomic_load(&c->routines) == n, "%d routines ran after Stop returned",
                  atomic_load(&c->routines) - n);
    ck_assert_msg(atomic_load(&c->failures) == 0, "read %d failed: " TU_STATUS_FMT, c->first_failure_at,
                  TU_STATUS_ARG(c->first_failure));
    ck_assert_int_eq(atomic_load(&c->sent), n + 1); /* the pended resend */

    /* Started again, the pended read completes and its routine ends the
     * chain. */
    atomic_store(&c->stop, true);
    ck_assert_status(WdfIoTargetStart(c->target[0]), STATUS_SUCCESS);
    chain_wait(c);
    ck_assert_msg(quiesce_within(c->target[0], true, WAIT_MS),
                  "Close did not return: sent-I/O count unbalanced");
    chain_check(c, n + 1);
    delete_destroys_now(req, &req_life, "request");
    delete_destroys_now(c->mem[0], &mem_life, "memory");
    chain_free(c);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* =================================================================== */
/* loop devices (root)                                                  */
/* =================================================================== */

START_TEST(loop_device_sync_write_read_all_descriptor_kinds)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *backing = tu_env_file(&e, "disk", LOOP_FILE_SIZE, FILE_SEED);
    const char *dev = tu_env_loop(&e, backing, 0);
    WDFIOTARGET t = open_target(&e, dev, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
    ck_assert(fcntl((int)(intptr_t)WdfIoTargetWdmGetTargetFileHandle(t), F_GETFL) & O_DIRECT);
    sync_write_read_all_kinds(t, 64 * BLK, 500);
    /* The data went through the device into its backing file. */
    WdfIoTargetClose(t);
    ck_assert(file_matches(backing, 64 * BLK, 2 * BLK, 500));
    ck_assert(file_matches(backing, 67 * BLK, 3 * BLK, 502));
    ck_assert(file_matches(backing, 0, 64 * BLK, FILE_SEED));
    free(backing);
    tu_env_fini(&e);
}
END_TEST

START_TEST(loop_device_is_opened_without_access_times)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *backing = tu_env_file(&e, "disk", LOOP_FILE_SIZE, FILE_SEED);
    const char *dev = tu_env_loop(&e, backing, 0);
    WDFIOTARGET t = open_target(&e, dev, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    ck_assert(fcntl((int)(intptr_t)WdfIoTargetWdmGetTargetFileHandle(t), F_GETFL) & O_NOATIME);
    WdfIoTargetClose(t);
    /* A regular file keeps its access times. */
    WDFIOTARGET f = open_target(&e, backing, GENERIC_READ, 0);
    ck_assert(!(fcntl((int)(intptr_t)WdfIoTargetWdmGetTargetFileHandle(f), F_GETFL) & O_NOATIME));
    WdfIoTargetClose(f);
    free(backing);
    tu_env_fini(&e);
}
END_TEST

START_TEST(loop_device_async_write_read)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *backing = tu_env_file(&e, "disk", LOOP_FILE_SIZE, FILE_SEED);
    const char *dev = tu_env_loop(&e, backing, 0);
    WDFIOTARGET t = open_target(&e, dev, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);
    async_write_read(t, 32 * BLK, 600);
    WdfIoTargetClose(t);
    ck_assert(file_matches(backing, 32 * BLK, ASYNC_DEPTH * BLK, 600));
    free(backing);
    tu_env_fini(&e);
}
END_TEST

START_TEST(loop_device_ioctls_match_blockdev)
{
    struct tu_env e;
    ULONG_PTR bytes;
    tu_env_init_backend(&e, _i);
    char *backing = tu_env_file(&e, "disk", LOOP_FILE_SIZE, FILE_SEED);
    const char *dev = tu_env_loop(&e, backing, 0);
    struct tu_blockdev_info want = tu_blockdev_query(dev);
    ck_assert_uint_eq(want.size, LOOP_FILE_SIZE);
    WDFIOTARGET t = open_target(&e, dev, GENERIC_READ | GENERIC_WRITE, FILE_NO_INTERMEDIATE_BUFFERING);

    GET_LENGTH_INFORMATION li;
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, sizeof(li));
    ck_assert_uint_eq((unsigned long long)li.Length.QuadPart, want.size);

    STORAGE_PROPERTY_QUERY q;
    STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR a;
    memset(&q, 0, sizeof(q));
    q.PropertyId = StorageAccessAlignmentProperty;
    q.QueryType = PropertyStandardQuery;
    memset(&a, 0xCC, sizeof(a));
    ck_assert_status(sync_ioctl(t, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &a, sizeof(a), &bytes),
                     STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, sizeof(a));
    ck_assert_uint_eq(a.Version, sizeof(a));
    ck_assert_uint_eq(a.Size, sizeof(a));
    ck_assert_uint_eq(a.BytesPerLogicalSector, want.logical);
    ck_assert_uint_eq(a.BytesPerPhysicalSector, want.physical);
    /* A header-sized buffer gets the header, telling the size to use. */
    STORAGE_DESCRIPTOR_HEADER h;
    ck_assert_status(sync_ioctl(t, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &h, sizeof(h), &bytes),
                     STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, sizeof(h));
    ck_assert_uint_eq(h.Size, sizeof(a));

    DISK_GEOMETRY_EX g;
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, NULL, 0, &g, sizeof(g), &bytes),
                     STATUS_SUCCESS);
    ck_assert_uint_eq((unsigned long long)g.DiskSize.QuadPart, want.size);
    ck_assert_uint_eq(g.Geometry.BytesPerSector, want.logical);
    ck_assert_int_eq(g.Geometry.MediaType, FixedMedia);

    unsigned char small[4];
    ck_assert_status(sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, small, sizeof(small), &bytes),
                     STATUS_BUFFER_TOO_SMALL);
    ck_assert_status(sync_ioctl(t, CTL_CODE(FILE_DEVICE_DISK, 0x7FF, METHOD_BUFFERED, FILE_ANY_ACCESS), NULL, 0,
                                &g, sizeof(g), &bytes),
                     STATUS_INVALID_DEVICE_REQUEST);
    free(backing);
    tu_env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------- */

/* ---- negative DeviceOffsets (wdm.h's file-system meanings) ---- */

/* Formats are not refused; the file decides when the request is sent. */
static NTSTATUS async_rw_at(WDFIOTARGET t, WDFREQUEST r, WDFMEMORY m, bool write, LARGE_INTEGER off,
                            ULONG_PTR *info)
{
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
    NTSTATUS st = write ? WdfIoTargetFormatRequestForWrite(t, r, m, NULL, &off.QuadPart)
                        : WdfIoTargetFormatRequestForRead(t, r, m, NULL, &off.QuadPart);
    ck_assert_status(st, STATUS_SUCCESS);
    struct tu_completion c;
    tu_completion_init(&c);
    WdfRequestSetCompletionRoutine(r, tu_on_complete, &c);
    ck_assert(WdfRequestSend(r, t, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&c, WAIT_MS));
    ck_assert_int_eq(tu_ncalls(&c), 1);
    st = c.status;
    if (info)
        *info = c.information;
    tu_completion_fini(&c);
    return st;
}

START_TEST(negative_offsets_append_use_position_or_fail)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "neg", FILE_SIZE, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    void *buf;
    WDFMEMORY m = tu_make_memory(BLK, &buf);
    WDFREQUEST r = tu_make_request(t);
    ULONG_PTR info = 0;
    LARGE_INTEGER eof = { .QuadPart = 0 }, pos = { .QuadPart = 0 }, bad;
    eof.HighPart = -1;
    eof.LowPart = FILE_WRITE_TO_END_OF_FILE;
    pos.HighPart = -1;
    pos.LowPart = FILE_USE_FILE_POINTER_POSITION;
    ck_assert_int_eq(eof.QuadPart, -1);
    ck_assert_int_eq(pos.QuadPart, -2);

    /* FILE_WRITE_TO_END_OF_FILE appends. */
    tu_fill_pattern(buf, BLK, 99, 0);
    ck_assert_status(async_rw_at(t, r, m, true, eof, &info), STATUS_SUCCESS);
    ck_assert_uint_eq(info, BLK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, FILE_SIZE + BLK);
    memset(buf, 0, BLK);
    LARGE_INTEGER at = { .QuadPart = FILE_SIZE };
    ck_assert_status(async_rw_at(t, r, m, false, at, &info), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, 99, 0));
    /* Synchronously too. */
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, m, NULL);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &eof.QuadPart, NULL, &info), STATUS_SUCCESS);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, FILE_SIZE + 2 * BLK);

    /* FILE_USE_FILE_POINTER_POSITION: the file position (0 after the open;
     * the appends did not move it), which the read advances. */
    ck_assert_status(async_rw_at(t, r, m, false, pos, &info), STATUS_SUCCESS);
    ck_assert_uint_eq(info, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, 0));
    ck_assert_status(async_rw_at(t, r, m, false, pos, &info), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, FILE_SEED, BLK));

    /* A read at FILE_WRITE_TO_END_OF_FILE, and any other negative offset,
     * completes with STATUS_INVALID_PARAMETER through the routine. */
    ck_assert_status(async_rw_at(t, r, m, false, eof, &info), STATUS_INVALID_PARAMETER);
    ck_assert_uint_eq(info, 0);
    /* (-4294967298: the sentinels' LowPart under HighPart -2) */
    const LONGLONG others[] = { -3, -4096, LLONG_MIN, -4294967298LL };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        bad.QuadPart = others[i];
        ck_assert_status(async_rw_at(t, r, m, false, bad, NULL), STATUS_INVALID_PARAMETER);
        ck_assert_status(async_rw_at(t, r, m, true, bad, NULL), STATUS_INVALID_PARAMETER);
    }
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, FILE_SIZE + 2 * BLK);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* Four threads append to one file at once: each append gets a range of
 * its own (no block is torn, lost or written twice). */
#define APPEND_THREADS 4
#define APPENDS_PER_THREAD 200
#define APPEND_BLK 512

struct appender {
    WDFIOTARGET t;
    int id;
    int failures;
};

static void *append_thread(void *p)
{
    struct appender *a = p;
    unsigned char *b;
    WDFMEMORY m = tu_make_memory(APPEND_BLK, (void **)&b);
    WDFREQUEST r = tu_make_request(a->t);
    LARGE_INTEGER eof;
    eof.HighPart = -1;
    eof.LowPart = FILE_WRITE_TO_END_OF_FILE;
    for (int i = 0; i < APPENDS_PER_THREAD; i++) {
        memset(b, 0, APPEND_BLK);
        snprintf((char *)b, APPEND_BLK, "append t=%d i=%d", a->id, i);
        memset(b + 64, 'A' + a->id, APPEND_BLK - 64);
        ULONG_PTR info = 0;
        if (async_rw_at(a->t, r, m, true, eof, &info) != STATUS_SUCCESS || info != APPEND_BLK)
            a->failures++;
    }
    WdfObjectDelete(r);
    WdfObjectDelete(m);
    return NULL;
}

START_TEST(concurrent_appends_do_not_overlap)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *path = tu_env_file(&e, "appends", APPEND_BLK, FILE_SEED);
    WDFIOTARGET t = open_target(&e, path, GENERIC_READ | GENERIC_WRITE, 0);
    struct appender a[APPEND_THREADS];
    pthread_t th[APPEND_THREADS];
    for (int i = 0; i < APPEND_THREADS; i++) {
        a[i] = (struct appender){ .t = t, .id = i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, append_thread, &a[i]), 0);
    }
    for (int i = 0; i < APPEND_THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(a[i].failures, 0);
    }
    const size_t n = (size_t)APPEND_THREADS * APPENDS_PER_THREAD;
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *all = malloc((n + 2) * APPEND_BLK);
    size_t got = fread(all, 1, (n + 2) * APPEND_BLK, f);
    fclose(f);
    ck_assert_uint_eq(got, (n + 1) * APPEND_BLK);
    ck_assert(tu_pattern_matches(all, APPEND_BLK, FILE_SEED, 0)); /* the original block is intact */
    static unsigned char seen[APPEND_THREADS][APPENDS_PER_THREAD];
    memset(seen, 0, sizeof(seen));
    for (size_t k = 1; k <= n; k++) {
        unsigned char *b = all + k * APPEND_BLK;
        int id = -1, i = -1;
        ck_assert_int_eq(sscanf((char *)b, "append t=%d i=%d", &id, &i), 2);
        ck_assert(id >= 0 && id < APPEND_THREADS && i >= 0 && i < APPENDS_PER_THREAD);
        for (int j = 64; j < APPEND_BLK; j++)
            ck_assert_int_eq(b[j], 'A' + id);
        ck_assert_int_eq(seen[id][i]++, 0);
    }
    free(all);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* One request taken through what a careless driver does with it: formatted
 * for an asynchronous read on its memory, reused twice (the second drop
 * finds nothing), then sent synchronously with each kind of bad or odd
 * descriptor, and a good one between them. The folded synchronous send
 * must read into the buffer it was given now, not the memory of the old
 * format; an MDL shorter than the length claimed fails before any byte
 * moves; a failed send leaves the request good for the next one. */
START_TEST(sync_send_on_a_reused_request_with_odd_descriptors)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    WDFIOTARGET t = tu_env_open_file(&e, 64 * 1024, 7, GENERIC_READ, 0);
    WDFREQUEST req = tu_make_request(t);
    void *old;
    WDFMEMORY mem = tu_make_memory(4096, &old);
    memset(old, 0xAB, 4096);
    LONGLONG off = 8192;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, &off), STATUS_SUCCESS);
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(req, &rp), STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(req, &rp), STATUS_SUCCESS);
    WdfObjectDelete(mem); /* the format's reference is gone with it */

    static char buf[3 * 4096];
    WDF_MEMORY_DESCRIPTOR md;
    ULONG_PTR got = 99;
    /* A buffer with no address but a length. */
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, NULL, 4096);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &md, &off, NULL, &got), STATUS_INVALID_PARAMETER);
    ck_assert_uint_eq(got, 0);
    /* An MDL of one page claimed as two: refused, the page beyond untouched. */
    memset(buf, 0x5A, sizeof(buf));
    PMDL mdl = IoAllocateMdl(buf, 4096, FALSE, FALSE, NULL);
    ck_assert_ptr_nonnull(mdl);
    MmBuildMdlForNonPagedPool(mdl);
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&md, mdl, 2 * 4096);
    NTSTATUS st = WdfIoTargetSendReadSynchronously(t, req, &md, &off, NULL, &got);
    ck_assert(!NT_SUCCESS(st));
    for (size_t i = 4096; i < sizeof(buf); i++)
        ck_assert_int_eq((unsigned char)buf[i], 0x5A);
    /* The same MDL claimed right reads into it. */
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&md, mdl, 4096);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &md, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 4096);
    ck_assert(tu_pattern_matches(buf, 4096, 7, 8192));
    IoFreeMdl(mdl);
    /* A bad offset, then a zero-length read, then a plain buffer. */
    LONGLONG bad = -5;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, buf + 4096, 4096);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &md, &bad, NULL, &got), STATUS_INVALID_PARAMETER);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, buf + 4096, 0);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &md, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 0);
    ck_assert_int_eq((unsigned char)buf[4096], 0x5A);
    LONGLONG off2 = 4096;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, buf + 4096, 4096);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, req, &md, &off2, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 4096);
    ck_assert(tu_pattern_matches(buf + 4096, 4096, 7, 4096));
    ck_assert_int_eq((unsigned char)buf[2 * 4096], 0x5A);
    WdfObjectDelete(req);
    tu_env_fini(&e);
}
END_TEST

static Suite *iotarget_suite(bool with_loop_devices)
{
    Suite *s = suite_create("iotarget");
    TCase *tc;

    tc = tu_tcase(s, "open", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, open_missing_file_is_object_name_not_found);
    tcase_add_test(tc, create_existing_file_is_object_name_collision);
    tcase_add_test(tc, open_if_creates_then_opens);
    tcase_add_test(tc, overwrite_if_truncates);
    tcase_add_test(tc, open_params_bad_size_is_info_length_mismatch);
    tcase_add_test(tc, open_already_open_is_invalid_device_state);
    tcase_add_test(tc, open_directory_is_file_is_a_directory);
    tcase_add_test(tc, open_unknown_nt_device_name_is_object_name_not_found);
    tcase_add_loop_test(tc, reopen_after_close_reopens, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, fifo_needs_io_uring_libaio_refuses_it, 0, TU_BACKENDS);

    tc = tu_tcase(s, "io", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, sync_write_read_all_descriptor_kinds_regular_file, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_on_a_reused_request_with_odd_descriptors, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, async_write_read_regular_file, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, registered_memory_and_file_use_fixed_ops, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_completes_on_the_sending_thread, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, null_device_offset_uses_and_advances_file_position, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, read_at_or_past_eof_is_end_of_file, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, short_read_near_eof_succeeds_with_bytes_read, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, misaligned_direct_io_is_datatype_misalignment, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, write_on_read_only_target_is_access_denied, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, flush_completes_async_and_synchronous, 0, TU_BACKENDS);

    tc = tu_tcase(s, "faults", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, sync_send_allocation_failure_is_insufficient_resources, 0, TU_BACKENDS);
    tcase_add_test(tc, request_create_allocation_failure_is_insufficient_resources);

    tc = tu_tcase(s, "sync_send", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, sync_send_options_bad_size_is_info_length_mismatch, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_options_unknown_flags_is_invalid_parameter, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_with_request_in_flight_is_invalid_device_request, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_descriptor_type_zero_is_invalid_parameter, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_memory_offset_past_end_is_integer_overflow, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, sync_send_bytes_out_param_is_optional, 0, TU_BACKENDS);

    tc = tu_tcase(s, "state", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, stop_leave_sent_io_pending_pends_then_start_resubmits, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, stop_cancel_sent_io_cancels_fifo_read_before_returning, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, purge_fails_pended_and_refuses_sends_until_start, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, close_fails_pended_with_device_removed_not_sent, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, send_to_closed_target_is_invalid_device_state, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, format_on_closed_target_is_invalid_device_state, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, target_state_through_lifecycle, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, get_device_and_file_handle, 0, TU_BACKENDS);

    tc = tu_tcase(s, "device_offset", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, negative_offsets_append_use_position_or_fail, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, concurrent_appends_do_not_overlap, 0, TU_BACKENDS);

    tc = tu_tcase(s, "ioctl", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, ioctl_length_info_regular_file_is_file_size, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, ioctl_output_buffer_too_small_is_buffer_too_small, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, ioctl_unknown_code_is_invalid_device_request, 0, TU_BACKENDS);

    tc = tu_tcase(s, "resend", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, resend_chain_same_memory_reads_right_data_and_leaks_nothing, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, resend_chain_alternating_memories_releases_each_once, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reuse_then_delete_memory_in_routine_destroys_it_after_routine, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, resend_chain_across_two_targets_balances_both_sent_counts, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, stop_waits_for_resend_chain_and_pends_its_resend, 0, TU_BACKENDS);

    if (with_loop_devices) {
        tc = tu_tcase(s, "loop_device", TEST_TIMEOUT_SEC);
        tcase_add_loop_test(tc, loop_device_sync_write_read_all_descriptor_kinds, 0, TU_BACKENDS);
        tcase_add_loop_test(tc, loop_device_async_write_read, 0, TU_BACKENDS);
        tcase_add_loop_test(tc, loop_device_is_opened_without_access_times, 0, TU_BACKENDS);
        tcase_add_loop_test(tc, loop_device_ioctls_match_blockdev, 0, TU_BACKENDS);
    }
    return s;
}

int main(void)
{
    return tu_main_root(iotarget_suite(tu_root()), "test_iotarget", "loop-device tests skipped");
}
