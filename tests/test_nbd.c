/* NBD targets (backends/nbd.c) against real nbdkit servers that each test
 * starts on a private Unix socket (or 127.0.0.1) and stops by its pid; the
 * servers also run with --exit-with-parent, so a test that dies takes its
 * server with it. Data is checked through the backing file (file plugin),
 * error paths use nbdkit's error filter, timeouts and cancel its delay
 * filter (with the caller's buffer checked untouched after the server's
 * late answer), connection loss a SIGKILL of the server. Skips (77) when
 * uwdf was built without libnbd or nbdkit is missing. */
#include "testutil.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096u
#define EXPORT_SIZE (1u << 20)
#define SEED 1800u
#define TEST_TIMEOUT_SEC 60
#define DELAY_S 2              /* the delay filter's hold */
#define TIMEOUT_MS 200
#define LATE_MS 150.0          /* "within its timeout plus a few ms", beyond a control timer's lateness */
#define INFLIGHT 16
#define CONNECT_TIMEOUT_MS 300 /* uwdf-connect-timeout of the silent-server tests */
#define CONNECT_CASE_TIMEOUT_SEC 20

/* The blocksize-policy filter's arguments for a server whose maximum
 * payload is 64 KiB (preferred 4 KiB, minimum 512), refusing larger. */
#define MAX_64K                                                                                            \
    "blocksize-maximum=65536", "blocksize-preferred=4096", "blocksize-minimum=512",                        \
        "blocksize-error-policy=error"

/* ---- targets and I/O ---- */

static NTSTATUS open_uri(struct tu_env *e, const char *uri, ACCESS_MASK access, ULONG options, WDFIOTARGET *t)
{
    return tu_target_open(e->device, uri, access, FILE_OPEN, options, t);
}

static WDFIOTARGET open_rw(struct tu_env *e, const char *uri)
{
    WDFIOTARGET t;
    ck_assert_status(open_uri(e, uri, GENERIC_READ | GENERIC_WRITE, 0, &t), STATUS_SUCCESS);
    return t;
}

/* The start of most tests: the environment, a server with args, and a
 * read/write target on its export. */
static WDFIOTARGET begin(struct tu_env *e, struct tu_nbdkit *s, const char *const *args)
{
    tu_env_init(e);
    tu_nbdkit_start(e, s, "nbd.sock", args);
    return open_rw(e, s->uri);
}

/* The end of a test: its target, its server, its environment. */
static void finish(struct tu_env *e, struct tu_nbdkit *s, WDFIOTARGET t)
{
    if (t)
        WdfObjectDelete(t);
    tu_nbdkit_stop(s);
    tu_env_fini(e);
}

/* Backing file of EXPORT_SIZE bytes with pattern SEED, and a file-plugin
 * server over it. */
static char *file_server(struct tu_env *e, struct tu_nbdkit *s, const char *extra)
{
    char *path = tu_env_file(e, "backing", EXPORT_SIZE, SEED);
    char file_arg[600];
    snprintf(file_arg, sizeof(file_arg), "file=%s", path);
    const char *args[] = { "file", file_arg, extra, NULL };
    tu_nbdkit_start(e, s, "nbd.sock", args);
    return path;
}

/* ---- tests ---- */

START_TEST(read_write_through_the_file_plugin)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *backing = file_server(&e, &s, NULL);
    WDFIOTARGET t = open_rw(&e, s.uri);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), "nbd");

    unsigned char *buf = malloc(8 * BLK), *check = malloc(8 * BLK);
    ULONG_PTR got;
    ck_assert_status(tu_sync_rw(t, false, buf, 8 * BLK, 3 * BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 8 * BLK);
    ck_assert(tu_pattern_matches(buf, 8 * BLK, SEED, 3 * BLK));

    /* An unaligned write lands in the backing file. */
    tu_fill_pattern(buf, 3000, SEED + 1, 0);
    ck_assert_status(tu_sync_rw(t, true, buf, 3000, 12345, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 3000);
    ck_assert_status(tu_flush(t), STATUS_SUCCESS);
    int fd = open(backing, O_RDONLY);
    ck_assert_int_eq(pread(fd, check, 3000, 12345), 3000);
    close(fd);
    ck_assert_mem_eq(check, buf, 3000);

    /* Size and alignment from the export. */
    GET_LENGTH_INFORMATION li;
    ck_assert_status(tu_sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li)), STATUS_SUCCESS);
    ck_assert_uint_eq(li.Length.QuadPart, EXPORT_SIZE);
    free(buf);
    free(check);
    free(backing);
    finish(&e, &s, t);
}
END_TEST

START_TEST(scattered_mdl_chain_and_file_position)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *backing = file_server(&e, &s, NULL);
    WDFIOTARGET t = open_rw(&e, s.uri);

    /* A read into a chain of three MDLs of different lengths. */
    unsigned char *a = malloc(BLK), *b = malloc(100), *c = malloc(2 * BLK);
    PMDL m1 = IoAllocateMdl(a, BLK, FALSE, FALSE, NULL), m2 = IoAllocateMdl(b, 100, FALSE, FALSE, NULL),
         m3 = IoAllocateMdl(c, 2 * BLK, FALSE, FALSE, NULL);
    m1->Next = m2;
    m2->Next = m3;
    MmBuildMdlForNonPagedPool(m1);
    MmBuildMdlForNonPagedPool(m2);
    MmBuildMdlForNonPagedPool(m3);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, m1, 3 * BLK + 100);
    LONGLONG off = 5 * BLK;
    ULONG_PTR got = 0;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 3 * BLK + 100);
    ck_assert(tu_pattern_matches(a, BLK, SEED, 5 * BLK));
    ck_assert(tu_pattern_matches(b, 100, SEED, 6 * BLK));
    ck_assert(tu_pattern_matches(c, 2 * BLK, SEED, 6 * BLK + 100));

    /* Written back from the chain elsewhere: gathered in order. */
    off = 100 * BLK;
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &got), STATUS_SUCCESS);
    unsigned char *check = malloc(3 * BLK + 100);
    int fd = open(backing, O_RDONLY);
    ck_assert_int_eq(pread(fd, check, 3 * BLK + 100, 100 * BLK), 3 * BLK + 100);
    ck_assert(tu_pattern_matches(check, 3 * BLK + 100, SEED, 5 * BLK));

    /* A NULL DeviceOffset uses and advances the target's position. */
    unsigned char *p = malloc(BLK);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, p, BLK);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, NULL, NULL, &got), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(p, BLK, SEED, 0));
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, NULL, NULL, &got), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(p, BLK, SEED, BLK));
    close(fd);
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    IoFreeMdl(m3);
    free(a);
    free(b);
    free(c);
    free(p);
    free(check);
    free(backing);
    finish(&e, &s, t);
}
END_TEST

START_TEST(end_of_export_as_a_block_device)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "memory", "1M", NULL };
    WDFIOTARGET t = begin(&e, &s, args);
    unsigned char *buf = calloc(1, 2 * BLK);
    ULONG_PTR got = 1;
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, EXPORT_SIZE, &got), STATUS_END_OF_FILE);
    ck_assert_uint_eq(got, 0);
    ck_assert_status(tu_sync_rw(t, false, buf, 2 * BLK, EXPORT_SIZE - BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, EXPORT_SIZE, &got), STATUS_DISK_FULL);
    ck_assert_status(tu_sync_rw(t, true, buf, 2 * BLK, EXPORT_SIZE - BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, BLK);
    free(buf);
    finish(&e, &s, t);
}
END_TEST

START_TEST(requests_larger_than_the_server_maximum_are_split)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *backing = tu_env_file(&e, "backing", EXPORT_SIZE, SEED);
    char file_arg[600];
    snprintf(file_arg, sizeof(file_arg), "file=%s", backing);
    const char *args[] = { "--filter=blocksize-policy", "file", file_arg, MAX_64K, NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    WDFIOTARGET t = open_rw(&e, s.uri);
    size_t len = 512 * 1024;
    unsigned char *buf = malloc(len);
    ULONG_PTR got;
    ck_assert_status(tu_sync_rw(t, false, buf, (ULONG)len, 0, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, len);
    ck_assert(tu_pattern_matches(buf, len, SEED, 0));
    tu_fill_pattern(buf, len, SEED + 2, 0);
    ck_assert_status(tu_sync_rw(t, true, buf, (ULONG)len, 4096, &got), STATUS_SUCCESS);
    unsigned char *check = malloc(len);
    int fd = open(backing, O_RDONLY);
    ck_assert_int_eq(pread(fd, check, len, 4096), (ssize_t)len);
    close(fd);
    ck_assert_mem_eq(check, buf, len);
    /* The alignment the server states is what the target reports. */
    STORAGE_PROPERTY_QUERY q = { .PropertyId = StorageAccessAlignmentProperty, .QueryType = PropertyStandardQuery };
    STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR a;
    ck_assert_status(tu_sync_ioctl(t, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &a, sizeof(a)), STATUS_SUCCESS);
    ck_assert_uint_eq(a.BytesPerLogicalSector, 512);
    ck_assert_uint_eq(a.BytesPerPhysicalSector, 4096);
    free(buf);
    free(check);
    free(backing);
    finish(&e, &s, t);
}
END_TEST

/* Commands of one kind ("Read", "Write") in an nbdkit log filter's file:
 * how many, the largest count and the last offset. */
static unsigned log_commands(const char *path, const char *kind, uint64_t *biggest, uint64_t *last_offset)
{
    FILE *f = fopen(path, "r");
    char line[1024], what[64];
    unsigned n = 0;
    if (!f)
        return 0;
    snprintf(what, sizeof(what), " %s id=", kind);
    while (fgets(line, sizeof(line), f)) {
        const char *c = strstr(line, " count=0x"), *o = strstr(line, " offset=0x");
        if (!strstr(line, what) || !c || !o)
            continue; /* another kind, or a reply */
        n++;
        uint64_t count = strtoull(c + 9, NULL, 16);
        if (biggest && count > *biggest)
            *biggest = count;
        if (last_offset)
            *last_offset = strtoull(o + 10, NULL, 16);
    }
    fclose(f);
    return n;
}

/* The server's maximum payload is the target's piece size (64 KiB here):
 * a request of 1,100 scattered 512-byte MDLs (more segments than one
 * kernel op takes; the NBD engine gathers any number) runs as 9 pieces,
 * written and read back in order; the server's log shows that no command
 * was larger than its maximum. */
START_TEST(an_mdl_chain_over_the_server_maximum_runs_as_pieces)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *backing = tu_env_file(&e, "backing", EXPORT_SIZE, SEED);
    char *log = tu_env_path(&e, "nbdkit.log");
    char file_arg[600], log_arg[600];
    snprintf(file_arg, sizeof(file_arg), "file=%s", backing);
    snprintf(log_arg, sizeof(log_arg), "logfile=%s", log);
    const char *args[] = { "--filter=log", "--filter=blocksize-policy", "file", file_arg, log_arg, MAX_64K, NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    WDFIOTARGET t = open_rw(&e, s.uri);
    enum { N = 1100, SEG = 512 };
    unsigned char *seg[N];
    PMDL mdl[N];
    for (int i = 0; i < N; i++) {
        seg[i] = malloc(SEG);
        tu_fill_pattern(seg[i], SEG, SEED + 5, (uint64_t)i * SEG);
        mdl[i] = IoAllocateMdl(seg[i], SEG, FALSE, FALSE, NULL);
        MmBuildMdlForNonPagedPool(mdl[i]);
        if (i)
            mdl[i - 1]->Next = mdl[i];
    }
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, mdl[0], N * SEG);
    LONGLONG off = 3 * BLK;
    ULONG_PTR got = 0;
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, N * SEG);
    unsigned char *check = malloc(N * SEG);
    int fd = open(backing, O_RDONLY);
    ck_assert_int_eq(pread(fd, check, N * SEG, 3 * BLK), N * SEG);
    close(fd);
    ck_assert(tu_pattern_matches(check, N * SEG, SEED + 5, 0));
    for (int i = 0; i < N; i++)
        memset(seg[i], 0, SEG);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, N * SEG);
    for (int i = 0; i < N; i++)
        ck_assert(tu_pattern_matches(seg[i], SEG, SEED + 5, (uint64_t)i * SEG));
    WdfObjectDelete(t);
    tu_nbdkit_stop(&s); /* flushes the log */
    /* Every read and write the server saw was within its maximum, and the
     * request went out as ceil(550 KiB / 64 KiB) = 9 of each. */
    uint64_t biggest = 0;
    ck_assert_uint_eq(log_commands(log, "Write", &biggest, NULL), 9);
    ck_assert_uint_le(biggest, 65536);
    ck_assert_uint_eq(log_commands(log, "Read", &biggest, NULL), 9);
    ck_assert_uint_le(biggest, 65536);
    for (int i = 0; i < N; i++) {
        IoFreeMdl(mdl[i]);
        free(seg[i]);
    }
    free(check);
    free(log);
    free(backing);
    tu_env_fini(&e);
}
END_TEST

/* A piece the server fails: a read or write of 512 KiB as 8 pieces of its
 * 64 KiB maximum, where the server (nbdkit's eval plugin) fails the bytes
 * from 256 KiB to 320 KiB. One request, one completion: the failing
 * piece's status with the bytes of the 4 pieces before it, and no piece
 * after it sent (a request the server answered as a whole would report 0
 * bytes). */
START_TEST(a_failing_piece_reports_the_bytes_before_it)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *log = tu_env_path(&e, "nbdkit.log");
    char log_arg[600];
    snprintf(log_arg, sizeof(log_arg), "logfile=%s", log);
    const char *args[] = {
        "--filter=log", "--filter=blocksize-policy", "eval", log_arg, "get_size=echo 1048576",
        "can_write=exit 0",
        "pread=if [ $4 -ge 262144 ] && [ $4 -lt 327680 ]; then echo 'EIO injected' >&2; exit 1; fi; "
        "head -c $3 /dev/zero",
        "pwrite=cat >/dev/null; if [ $4 -ge 262144 ] && [ $4 -lt 327680 ]; then echo 'ENOSPC injected' >&2; "
        "exit 1; fi",
        MAX_64K, NULL
    };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    WDFIOTARGET t = open_rw(&e, s.uri);
    size_t len = 512 * 1024;
    unsigned char *buf = calloc(1, len);
    ULONG_PTR got = 0;
    ck_assert_status(tu_sync_rw(t, false, buf, (ULONG)len, 0, &got), STATUS_IO_DEVICE_ERROR);
    ck_assert_uint_eq(got, 256 * 1024);
    got = 0;
    ck_assert_status(tu_sync_rw(t, true, buf, (ULONG)len, 0, &got), STATUS_DISK_FULL);
    ck_assert_uint_eq(got, 256 * 1024);
    /* Before the failing range: whole. */
    ck_assert_status(tu_sync_rw(t, false, buf, (ULONG)len / 2, 0, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, len / 2);
    WdfObjectDelete(t);
    tu_nbdkit_stop(&s);
    /* Nothing past the failing piece reached the server: pieces 0-4 of
     * the read and of the write, then the 4 of the last read. */
    uint64_t last = 0;
    ck_assert_uint_eq(log_commands(log, "Read", NULL, &last), 5 + 4);
    ck_assert_uint_eq(log_commands(log, "Write", NULL, &last), 5);
    ck_assert_uint_eq(last, 0x40000);
    free(buf);
    free(log);
    tu_env_fini(&e);
}
END_TEST

START_TEST(server_errors_map_through_the_errno_table)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *flag = tu_env_path(&e, "error-now");
    char file_arg[600];
    snprintf(file_arg, sizeof(file_arg), "error-file=%s", flag);
    const char *args[] = { "--filter=error", "memory", "1M", "error-pread=EIO", "error-pwrite=ENOSPC",
                           "error-rate=100%", file_arg, NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    WDFIOTARGET t = open_rw(&e, s.uri);
    unsigned char *buf = calloc(1, BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    tu_write_text(flag, "");
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_IO_DEVICE_ERROR);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_DISK_FULL);
    unlink(flag);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    free(buf);
    free(flag);
    finish(&e, &s, t);
}
END_TEST

START_TEST(read_only_export_refuses_writes_as_write_protected)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "-r", "memory", "1M", NULL };
    WDFIOTARGET t = begin(&e, &s, args);
    unsigned char *buf = calloc(1, BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_MEDIA_WRITE_PROTECTED);
    ck_assert_status(tu_trim(t, 0, BLK), STATUS_MEDIA_WRITE_PROTECTED);
    ck_assert_status(tu_set_zero(t, 0, BLK), STATUS_MEDIA_WRITE_PROTECTED);
    ck_assert_status(tu_sync_ioctl(t, IOCTL_DISK_IS_WRITABLE, NULL, 0, NULL, 0), STATUS_MEDIA_WRITE_PROTECTED);
    free(buf);
    finish(&e, &s, t);
}
END_TEST

START_TEST(flush_trim_zero_when_offered)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "memory", "1M", NULL };
    WDFIOTARGET t = begin(&e, &s, args);
    unsigned char *buf = malloc(4 * BLK);
    memset(buf, 0x5c, 4 * BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, 4 * BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_status(tu_flush(t), STATUS_SUCCESS);
    ck_assert_status(tu_trim(t, 0, BLK), STATUS_SUCCESS);
    ck_assert_status(tu_set_zero(t, 2 * BLK, 3 * BLK), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, false, buf, 4 * BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_all_bytes(buf, BLK, 0));           /* the memory plugin trims to zeros */
    ck_assert(tu_all_bytes(buf + BLK, BLK, 0x5c));
    ck_assert(tu_all_bytes(buf + 2 * BLK, BLK, 0));
    ck_assert(tu_all_bytes(buf + 3 * BLK, BLK, 0x5c));
    /* Ranges are checked as for a block device before anything is sent. */
    ck_assert_status(tu_trim(t, 100, BLK), STATUS_INVALID_PARAMETER);
    ck_assert_status(tu_set_zero(t, 0, EXPORT_SIZE + BLK), STATUS_INVALID_PARAMETER);
    ck_assert(tu_trim_enabled(t));
    ck_assert_status(tu_sync_ioctl(t, IOCTL_DISK_IS_WRITABLE, NULL, 0, NULL, 0), STATUS_SUCCESS);
    free(buf);
    finish(&e, &s, t);
}
END_TEST

START_TEST(flush_trim_zero_not_offered_are_not_supported)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    /* eval: no flush, no trim; nozero: no zero. */
    const char *args[] = { "--filter=nozero", "eval", "get_size=echo 1048576",
                           "pread=dd if=/dev/zero count=$3 iflag=count_bytes 2>/dev/null",
                           "pwrite=cat >/dev/null", "can_write=exit 0", "can_trim=exit 3", "can_flush=exit 3",
                           "zeromode=none", NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    WDFIOTARGET t = open_rw(&e, s.uri);
    unsigned char *buf = calloc(1, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_status(tu_flush(t), STATUS_NOT_SUPPORTED);
    ck_assert_status(tu_trim(t, 0, BLK), STATUS_NOT_SUPPORTED);
    ck_assert_status(tu_set_zero(t, 0, BLK), STATUS_NOT_SUPPORTED);
    ck_assert(!tu_trim_enabled(t));
    free(buf);
    finish(&e, &s, t);
}
END_TEST

static size_t count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t n = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* Write-through per request and per target is NBD FUA; a server without
 * FUA gets a flush after the write (nbdkit's log filter shows both). */
START_TEST(write_through_is_fua_or_a_flush)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    bool fua = _i == 0;
    char *log = tu_env_path(&e, "nbd.log");
    char log_arg[600];
    snprintf(log_arg, sizeof(log_arg), "logfile=%s", log);
    const char *with_fua[] = { "--filter=log", "memory", "1M", log_arg, NULL };
    /* (nbdkit 1.32's fua filter refuses its documented fuamode=none.) */
    const char *without[] = { "--filter=log", "eval", "get_size=echo 1048576",
                              "pread=dd if=/dev/zero count=$3 iflag=count_bytes 2>/dev/null",
                              "pwrite=cat >/dev/null", "can_write=exit 0", "can_fua=echo none",
                              "can_flush=exit 0", "flush=exit 0", log_arg, NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", fua ? with_fua : without);
    WDFIOTARGET t;
    ck_assert_status(open_uri(&e, s.uri, GENERIC_READ | GENERIC_WRITE, FILE_WRITE_THROUGH, &t), STATUS_SUCCESS);
    unsigned char *buf = calloc(1, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    WdfObjectDelete(t);
    /* Per request: UwdfRequestSetWriteThrough on a plain target. */
    t = open_rw(&e, s.uri);
    ck_assert_status(tu_write_through_request(t, BLK, BLK, 1), STATUS_SUCCESS);
    /* A plain write: neither. */
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 2 * BLK, NULL), STATUS_SUCCESS);
    WdfObjectDelete(t);
    tu_nbdkit_stop(&s); /* flushes the log */
    /* Request lines (" Write id="); replies read "...Write id=". */
    ck_assert_uint_eq(count_in_file(log, " Write id="), 3);
    ck_assert_uint_eq(count_in_file(log, "fua=1 "), fua ? 2 : 0);
    ck_assert_uint_eq(count_in_file(log, " Flush id="), fua ? 0 : 2);
    free(buf);
    free(log);
    tu_env_fini(&e);
}
END_TEST

/* The server answers DELAY_S late: the request completes at its timeout
 * (or its cancel), and the buffer stays as it was after the answer came. */
START_TEST(timeout_and_cancel_complete_on_time_and_leave_the_buffer)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    bool cancel = _i == 1;
    const char *args[] = { "--filter=delay", "pattern", "1M", "rdelay=2", NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    WDFIOTARGET t = open_rw(&e, s.uri);
    struct tu_late l;
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, TIMEOUT_MS);
    double t0 = tu_now_ms();
    tu_late_send(t, &l, BLK, cancel ? 0 : WDF_REL_TIMEOUT_IN_MS(TIMEOUT_MS));
    if (cancel) {
        tu_sleep_ms(TIMEOUT_MS);
        ck_assert(WdfRequestCancelSentRequest(l.req));
    }
    ck_assert(tu_completion_wait(&l.c, DELAY_S * 1000));
    double took = tu_now_ms() - t0;
    ck_assert_status(l.c.status, cancel ? STATUS_CANCELLED : STATUS_IO_TIMEOUT);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(took < TIMEOUT_MS + LATE_MS + late, "completed after %.0f ms (control timer %.0f ms late)", took,
                  late);
    tu_sleep_ms(DELAY_S * 1000 + 300); /* the server's answer arrives meanwhile */
    ck_assert(tu_all_bytes(l.buf, BLK, TU_UNTOUCHED));
    ck_assert_int_eq(tu_ncalls(&l.c), 1);
    tu_late_fini(&l);
    /* The connection is still good. */
    unsigned char *buf = malloc(BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(!tu_all_bytes(buf, BLK, 0));
    free(buf);
    finish(&e, &s, t);
}
END_TEST

/* Stop with cancel, Purge and Close of a target whose server holds every
 * request: each completes at once, exactly once. */
START_TEST(stop_purge_close_with_requests_held_by_the_server)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "--filter=delay", "memory", "1M", "rdelay=2", NULL };
    WDFIOTARGET t = begin(&e, &s, args);
    struct tu_late l[3];
    for (int round = 0; round < 3; round++) {
        tu_late_send(t, &l[round], BLK, 0);
        double t0 = tu_now_ms();
        tu_stop_purge_or_close(t, round);
        ck_assert_msg(tu_now_ms() - t0 < 1000.0, "round %d waited for the server", round);
        ck_assert(tu_completion_wait(&l[round].c, 0));
        ck_assert_status(l[round].c.status, STATUS_CANCELLED);
        ck_assert_int_eq(tu_ncalls(&l[round].c), 1);
        if (round < 2)
            ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    }
    tu_sleep_ms(DELAY_S * 1000 + 300);
    for (int i = 0; i < 3; i++) {
        ck_assert(tu_all_bytes(l[i].buf, BLK, TU_UNTOUCHED));
        tu_late_fini(&l[i]);
    }
    finish(&e, &s, t);
}
END_TEST

/* The server dies with requests in flight: every one completes exactly
 * once with STATUS_CONNECTION_DISCONNECTED, later sends fail the same way,
 * and closing and reopening the target reconnects to a new server. */
START_TEST(server_killed_mid_run_completes_everything_once)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "--filter=delay", "memory", "1M", "rdelay=5", NULL };
    WDFIOTARGET t = begin(&e, &s, args);
    struct tu_late l[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++)
        tu_late_send(t, &l[i], BLK, 0);
    tu_sleep_ms(100);
    tu_nbdkit_kill(&s);
    for (int i = 0; i < INFLIGHT; i++) {
        ck_assert_msg(tu_completion_wait(&l[i].c, 3000), "request %d never completed", i);
        ck_assert_status(l[i].c.status, STATUS_CONNECTION_DISCONNECTED);
    }
    tu_sleep_ms(50);
    for (int i = 0; i < INFLIGHT; i++) {
        ck_assert_int_eq(tu_ncalls(&l[i].c), 1);
        tu_late_fini(&l[i]);
    }
    unsigned char *buf = malloc(BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_CONNECTION_DISCONNECTED);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_CONNECTION_DISCONNECTED);
    WdfIoTargetStop(t, WdfIoTargetCancelSentIo);
    WdfIoTargetPurge(t, WdfIoTargetPurgeIoAndWait);
    WdfIoTargetClose(t);

    const char *again[] = { "memory", "1M", NULL };
    char *uri = strdup(s.uri);
    tu_nbdkit_stop(&s); /* (already dead: frees its names) */
    tu_nbdkit_start(&e, &s, "nbd.sock", again);
    ck_assert_str_eq(uri, s.uri);
    WDF_IO_TARGET_OPEN_PARAMS op;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&op);
    ck_assert_status(WdfIoTargetOpen(t, &op), STATUS_SUCCESS);
    memset(buf, 7, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_all_bytes(buf, BLK, 7));
    free(uri);
    free(buf);
    finish(&e, &s, t);
}
END_TEST

START_TEST(bad_names_fail_the_open_with_a_reason)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    WDFIOTARGET t;
    ck_assert_status(open_uri(&e, "gopher://127.0.0.1/x", GENERIC_READ, 0, &t), STATUS_OBJECT_NAME_INVALID);
    WdfObjectDelete(t);
    char *missing = tu_env_path(&e, "no.sock");
    char uri[700];
    snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", missing);
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_BAD_NETWORK_NAME);
    WdfObjectDelete(t);
    /* Nothing listens on port 1 of the loopback address. */
    ck_assert_status(open_uri(&e, "nbd://127.0.0.1:1/", GENERIC_READ, 0, &t), STATUS_CONNECTION_REFUSED);
    WdfObjectDelete(t);
    const char *args[] = { "--filter=exportname", "memory", "1M", "exportname=disk", "exportname-strict=true", NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    snprintf(uri, sizeof(uri), "nbd+unix:///other?socket=%s", s.sock);
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_BAD_NETWORK_NAME);
    WdfObjectDelete(t);
    snprintf(uri, sizeof(uri), "nbd+unix:///disk?socket=%s", s.sock);
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_SUCCESS);
    WdfObjectDelete(t);
    /* nbds: TLS required, and this server has none. */
    snprintf(uri, sizeof(uri), "nbds+unix:///disk?socket=%s", s.sock);
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_NOT_SUPPORTED);
    WdfObjectDelete(t);
    snprintf(uri, sizeof(uri), "nbd+unix:///disk?socket=%s&uwdf-connections=0", s.sock);
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_INVALID_PARAMETER);
    WdfObjectDelete(t);
    snprintf(uri, sizeof(uri), "nbd+unix:///disk?socket=%s&uwdf-share=2", s.sock);
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_INVALID_PARAMETER);
    WdfObjectDelete(t);
    /* WDF_IO_TARGET_OPEN_PARAMS_INIT_CREATE_BY_NAME (FILE_SUPERSEDE) opens
     * it as a block device's would be; FILE_CREATE collides. */
    snprintf(uri, sizeof(uri), "nbd+unix:///disk?socket=%s", s.sock);
    WCHAR wbuf[800];
    UNICODE_STRING us;
    WDF_IO_TARGET_OPEN_PARAMS op;
    tu_unicode(&us, wbuf, 800, uri);
    ck_assert_status(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_SUCCESS);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_CREATE_BY_NAME(&op, &us, GENERIC_READ | GENERIC_WRITE);
    ck_assert_status(WdfIoTargetOpen(t, &op), STATUS_SUCCESS);
    ck_assert_uint_eq(op.FileInformation, FILE_SUPERSEDED);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), "nbd");
    WdfIoTargetClose(t);
    op.CreateDisposition = FILE_CREATE;
    ck_assert_status(WdfIoTargetOpen(t, &op), STATUS_OBJECT_NAME_COLLISION);
    WdfObjectDelete(t);
    free(missing);
    tu_nbdkit_stop(&s);
    tu_env_fini(&e);
}
END_TEST

/* uwdf-connections=N opens N connections when the server allows
 * multi-conn, and requests spread over them. */
START_TEST(multi_conn_spreads_requests_over_connections)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *log = tu_env_path(&e, "nbd.log");
    char log_arg[600];
    snprintf(log_arg, sizeof(log_arg), "logfile=%s", log);
    const char *args[] = { "--filter=log", "memory", "1M", log_arg, NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    char uri[700];
    snprintf(uri, sizeof(uri), "%s&uwdf-connections=4", s.uri);
    WDFIOTARGET t = open_rw(&e, uri);
    unsigned char *buf = malloc(BLK);
    for (int i = 0; i < 8; i++) {
        memset(buf, i, BLK);
        ck_assert_status(tu_sync_rw(t, true, buf, BLK, (LONGLONG)i * BLK, NULL), STATUS_SUCCESS);
    }
    for (int i = 0; i < 8; i++) {
        ck_assert_status(tu_sync_rw(t, false, buf, BLK, (LONGLONG)i * BLK, NULL), STATUS_SUCCESS);
        ck_assert(tu_all_bytes(buf, BLK, (unsigned char)i));
    }
    WdfObjectDelete(t);
    tu_nbdkit_stop(&s);
    ck_assert_uint_eq(count_in_file(log, "Connect "), 4);
    for (int c = 1; c <= 4; c++) {
        char needle[32];
        snprintf(needle, sizeof(needle), "connection=%d Write", c);
        ck_assert_msg(count_in_file(log, needle) >= 2, "connection %d carried %zu writes", c,
                      count_in_file(log, needle));
    }
    free(buf);
    free(log);
    tu_env_fini(&e);
}
END_TEST


/* ---- replies waiting on the socket ---- */

/* ppoll calls of the engine threads, counted around libc's: the NBD engine
 * polls its sockets and wake-up eventfd with ppoll. */
static atomic_uint engine_ppolls;

/* <poll.h> declares it for _GNU_SOURCE only. */
int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *mask);
int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *mask)
{
    static int (*real)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "ppoll");
    char name[16] = "";
    (void)prctl(PR_GET_NAME, name);
    if (strcmp(name, "uwdf-engine") == 0)
        atomic_fetch_add(&engine_ppolls, 1);
    return real(fds, nfds, tmo, mask);
}

/* INFLIGHT requests sent at once; the first completion routine holds the
 * engine thread while the server answers the others. */
struct burst {
    atomic_int started, done, bad;
    unsigned ppolls; /* the engine's ppoll calls between the first routine's end and the last */
    KEVENT all;
};

static VOID burst_complete(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                           WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    struct burst *b = Context;
    if (Params->IoStatus.Status != STATUS_SUCCESS || Params->IoStatus.Information != BLK)
        atomic_fetch_add(&b->bad, 1);
    if (atomic_fetch_add(&b->started, 1) == 0) {
        tu_sleep_ms(300); /* the other replies reach the socket meanwhile */
        atomic_store(&engine_ppolls, 0);
    }
    if (atomic_fetch_add(&b->done, 1) + 1 == INFLIGHT) {
        b->ppolls = atomic_load(&engine_ppolls);
        KeSetEvent(&b->all, IO_NO_INCREMENT, FALSE);
    }
}

/* INFLIGHT writes (block i filled with i + 1) or reads of blocks 0.. sent
 * at once; returns the engine's ppoll calls for all but the first reply. */
static unsigned burst_rw(WDFIOTARGET t, bool write, unsigned char *bufs)
{
    struct burst b = { 0 };
    KeInitializeEvent(&b.all, NotificationEvent, FALSE);
    WDFREQUEST req[INFLIGHT];
    WDFMEMORY mem[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++) {
        unsigned char *buf = bufs + (size_t)i * BLK;
        memset(buf, write ? i + 1 : TU_UNTOUCHED, BLK);
        req[i] = tu_make_request(t);
        WDF_OBJECT_ATTRIBUTES attrs;
        WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
        ck_assert_status(WdfMemoryCreatePreallocated(&attrs, buf, BLK, &mem[i]), STATUS_SUCCESS);
        LONGLONG off = (LONGLONG)i * BLK;
        if (write)
            ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req[i], mem[i], NULL, &off), STATUS_SUCCESS);
        else
            ck_assert_status(WdfIoTargetFormatRequestForRead(t, req[i], mem[i], NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(req[i], burst_complete, &b);
    }
    for (int i = 0; i < INFLIGHT; i++)
        ck_assert(WdfRequestSend(req[i], t, WDF_NO_SEND_OPTIONS));
    LARGE_INTEGER wait;
    wait.QuadPart = WDF_REL_TIMEOUT_IN_MS(20000ULL);
    ck_assert_status(KeWaitForSingleObject(&b.all, Executive, KernelMode, FALSE, &wait), STATUS_SUCCESS);
    ck_assert_int_eq(atomic_load(&b.bad), 0);
    for (int i = 0; i < INFLIGHT; i++) {
        WdfObjectDelete(req[i]);
        WdfObjectDelete(mem[i]);
    }
    return b.ppolls;
}

/* Replies that wait on the socket while the engine runs completion
 * routines are read without a ppoll each (one FIONREAD counts them), and
 * the reads' data is right. The old loop made one ppoll per reply. */
START_TEST(replies_waiting_on_the_socket_are_read_without_a_poll_each)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "memory", "1M", NULL };
    WDFIOTARGET t = begin(&e, &s, args);
    unsigned char *bufs = malloc((size_t)INFLIGHT * BLK);
    ck_assert_ptr_nonnull(bufs);
    unsigned wpolls = burst_rw(t, true, bufs);
    unsigned rpolls = burst_rw(t, false, bufs);
    for (int i = 0; i < INFLIGHT; i++)
        ck_assert_msg(tu_all_bytes(bufs + (size_t)i * BLK, BLK, (unsigned char)(i + 1)), "block %d", i);
    /* One per reply would be INFLIGHT - 1; a reply that came late after
     * all may cost one. */
    ck_assert_msg(wpolls <= INFLIGHT / 4, "%u ppoll calls for %d waiting write replies", wpolls, INFLIGHT - 1);
    ck_assert_msg(rpolls <= INFLIGHT / 4, "%u ppoll calls for %d waiting read replies", rpolls, INFLIGHT - 1);
    free(bufs);
    finish(&e, &s, t);
}
END_TEST


/* ---- connections shared between targets ---- */

/* Sockets this process holds. */
static unsigned count_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    char path[300], link[64];
    unsigned n = 0;
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len > 0) {
            link[len] = '\0';
            n += strncmp(link, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

/* Threads of this process whose name starts with prefix (the library's
 * are uwdf-...; sanitizers add threads of their own), and their names. */
static long count_threads(const char *prefix, char *names, size_t len)
{
    DIR *d = opendir("/proc/self/task");
    long count = 0;
    size_t n = 0;
    names[0] = '\0';
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        if (f)
            fclose(f);
        if (n + sizeof(comm) + 2 < len)
            n += (size_t)snprintf(names + n, len - n, "%s%s", n ? ", " : "", comm);
        count += strncmp(comm, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return count;
}

/* What nbdkit's pattern plugin serves: each 8 bytes hold their offset,
 * big-endian. */
static bool pattern_at(const unsigned char *buf, size_t len, uint64_t off)
{
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++)
            v = v << 8 | buf[i + b];
        if (v != off + i)
            return false;
    }
    return true;
}

/* The start of a test of two targets sharing a connection: the
 * environment, a server with args, and t[0], t[1] on its export, checked to
 * hold one socket between them. The sockets held before. */
static unsigned begin_pair(struct tu_env *e, struct tu_nbdkit *s, const char *const *args, WDFIOTARGET t[2])
{
    tu_env_init(e);
    tu_nbdkit_start(e, s, "nbd.sock", args);
    unsigned base = count_sockets();
    t[0] = open_rw(e, s->uri);
    t[1] = open_rw(e, s->uri);
    ck_assert_uint_eq(count_sockets(), base + 1);
    return base;
}

/* Targets of one URI share its connection (one socket); uwdf-share=0 and
 * another connection count get their own; the socket goes with the last
 * target. */
START_TEST(targets_of_one_export_share_its_connection)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    const char *args[] = { "memory", "1M", NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    unsigned base = count_sockets();
    WDFIOTARGET t[5];
    t[0] = open_rw(&e, s.uri);
    t[1] = open_rw(&e, s.uri);
    t[2] = open_rw(&e, s.uri);
    ck_assert_uint_eq(count_sockets(), base + 1);
    char uri[700];
    snprintf(uri, sizeof(uri), "%s&uwdf-share=0", s.uri);
    t[3] = open_rw(&e, uri);
    ck_assert_uint_eq(count_sockets(), base + 2);
    snprintf(uri, sizeof(uri), "%s&uwdf-connections=2", s.uri);
    t[4] = open_rw(&e, uri);
    ck_assert_uint_eq(count_sockets(), base + 4);
    /* Each target's data is the export's, whichever wrote it. */
    unsigned char *buf = malloc(BLK);
    for (int i = 0; i < 5; i++) {
        memset(buf, 'a' + i, BLK);
        ck_assert_status(tu_sync_rw(t[i], true, buf, BLK, (LONGLONG)i * BLK, NULL), STATUS_SUCCESS);
    }
    for (int i = 0; i < 5; i++) {
        ck_assert_status(tu_sync_rw(t[(i + 1) % 5], false, buf, BLK, (LONGLONG)i * BLK, NULL), STATUS_SUCCESS);
        ck_assert(tu_all_bytes(buf, BLK, (unsigned char)('a' + i)));
    }
    ck_assert_status(tu_sync_ioctl(t[1], IOCTL_DISK_IS_WRITABLE, NULL, 0, NULL, 0), STATUS_SUCCESS);
    WdfObjectDelete(t[0]);
    WdfObjectDelete(t[1]);
    ck_assert_uint_eq(count_sockets(), base + 4);
    ck_assert_status(tu_sync_rw(t[2], false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_all_bytes(buf, BLK, 'a'));
    WdfObjectDelete(t[2]);
    ck_assert_uint_eq(count_sockets(), base + 3);
    WdfObjectDelete(t[3]);
    WdfObjectDelete(t[4]);
    ck_assert_uint_eq(count_sockets(), base);
    free(buf);
    finish(&e, &s, NULL);
}
END_TEST

/* Two targets on one connection whose server holds every read DELAY_S:
 * one target's Stop waits for its own reads only, cancels its own only,
 * and its close leaves the other's read to finish with its data. */
START_TEST(stop_of_one_sharing_target_leaves_the_others_io)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "--filter=delay", "pattern", "1M", "rdelay=2", NULL };
    WDFIOTARGET t[2];
    begin_pair(&e, &s, args, t);
    WDFIOTARGET a = t[0], b = t[1];
    struct tu_late lb, la1, la2;
    double t0 = tu_now_ms();
    tu_late_send(b, &lb, BLK, 0);
    WdfIoTargetStop(a, WdfIoTargetWaitForSentIoToComplete);
    ck_assert_msg(tu_now_ms() - t0 < 1000.0, "Stop of an idle target waited for its neighbour's read");
    ck_assert_status(WdfIoTargetStart(a), STATUS_SUCCESS);
    tu_late_send(a, &la1, BLK, 0);
    WdfIoTargetStop(a, WdfIoTargetCancelSentIo);
    ck_assert(tu_completion_wait(&la1.c, 0));
    ck_assert_status(la1.c.status, STATUS_CANCELLED);
    ck_assert(!tu_completion_wait(&lb.c, 0));
    ck_assert_status(WdfIoTargetStart(a), STATUS_SUCCESS);
    tu_late_send(a, &la2, BLK, 0);
    WdfIoTargetStop(a, WdfIoTargetWaitForSentIoToComplete);
    ck_assert(tu_completion_wait(&la2.c, 0));
    ck_assert_status(la2.c.status, STATUS_SUCCESS);
    ck_assert(pattern_at(la2.buf, BLK, 0));
    ck_assert(tu_completion_wait(&lb.c, DELAY_S * 1000));
    ck_assert_status(lb.c.status, STATUS_SUCCESS);
    ck_assert(pattern_at(lb.buf, BLK, 0));
    /* The other target's read in flight across this one's close. */
    struct tu_late lb2;
    tu_late_send(b, &lb2, BLK, 0);
    tu_sleep_ms(50);
    WdfObjectDelete(a);
    ck_assert(tu_completion_wait(&lb2.c, DELAY_S * 1000 + 1000));
    ck_assert_status(lb2.c.status, STATUS_SUCCESS);
    ck_assert(pattern_at(lb2.buf, BLK, 0));
    tu_sleep_ms(300); /* la1's late answer landed meanwhile, in its bounce */
    ck_assert(tu_all_bytes(la1.buf, BLK, TU_UNTOUCHED));
    ck_assert_int_eq(tu_ncalls(&la1.c), 1);
    ck_assert_int_eq(tu_ncalls(&la2.c), 1);
    ck_assert_int_eq(tu_ncalls(&lb.c), 1);
    ck_assert_int_eq(tu_ncalls(&lb2.c), 1);
    tu_late_fini(&lb2);
    tu_late_fini(&la1);
    tu_late_fini(&la2);
    tu_late_fini(&lb);
    finish(&e, &s, b);
}
END_TEST

/* A killed server: both sharing targets' reads complete once,
 * disconnected; after a restart on the same socket each target works again
 * once it is reopened, and the reopened ones share the new connection. */
START_TEST(a_restarted_server_serves_the_reopened_targets)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "--filter=delay", "memory", "1M", "rdelay=5", NULL };
    WDFIOTARGET t[2];
    unsigned base = begin_pair(&e, &s, args, t);
    struct tu_late l[2][INFLIGHT / 2];
    for (int i = 0; i < INFLIGHT / 2; i++)
        for (int k = 0; k < 2; k++)
            tu_late_send(t[k], &l[k][i], BLK, 0);
    tu_sleep_ms(100);
    tu_nbdkit_kill(&s);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < INFLIGHT / 2; i++) {
            ck_assert_msg(tu_completion_wait(&l[k][i].c, 3000), "request %d of %d never completed", i, k);
            ck_assert_status(l[k][i].c.status, STATUS_CONNECTION_DISCONNECTED);
        }
    const char *again[] = { "memory", "1M", NULL };
    tu_nbdkit_stop(&s);
    tu_nbdkit_start(&e, &s, "nbd.sock", again);
    unsigned char *buf = malloc(BLK);
    WDF_IO_TARGET_OPEN_PARAMS op;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&op);
    WdfIoTargetClose(t[0]);
    ck_assert_status(WdfIoTargetOpen(t[0], &op), STATUS_SUCCESS);
    memset(buf, 9, BLK);
    ck_assert_status(tu_sync_rw(t[0], true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    /* Not reopened yet: still on the lost connection. */
    ck_assert_status(tu_sync_rw(t[1], false, buf, BLK, 0, NULL), STATUS_CONNECTION_DISCONNECTED);
    WdfIoTargetClose(t[1]);
    ck_assert_uint_eq(count_sockets(), base + 1);
    ck_assert_status(WdfIoTargetOpen(t[1], &op), STATUS_SUCCESS);
    ck_assert_uint_eq(count_sockets(), base + 1);
    memset(buf, 0, BLK);
    ck_assert_status(tu_sync_rw(t[1], false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_all_bytes(buf, BLK, 9));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < INFLIGHT / 2; i++) {
            ck_assert_int_eq(tu_ncalls(&l[k][i].c), 1);
            tu_late_fini(&l[k][i]);
        }
    free(buf);
    WdfObjectDelete(t[0]);
    finish(&e, &s, t[1]);
}
END_TEST

#define SCALE_TARGETS 1000

/* SCALE_TARGETS targets on one export: one socket and at most one engine
 * thread (the library's threads are named uwdf-...) between them, each reading its own block right, and nothing left
 * once they are closed. */
START_TEST(a_thousand_targets_on_one_connection)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *args[] = { "pattern", "1M", NULL };
    tu_env_init(&e);
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    unsigned socks = count_sockets();
    char names[512];
    long threads = count_threads("uwdf", names, sizeof(names));
    WDFIOTARGET *t = calloc(SCALE_TARGETS, sizeof(*t));
    unsigned char *buf = malloc(BLK);
    for (unsigned i = 0; i < SCALE_TARGETS; i++)
        ck_assert_status(open_uri(&e, s.uri, GENERIC_READ, 0, &t[i]), STATUS_SUCCESS);
    ck_assert_uint_eq(count_sockets(), socks + 1);
    ck_assert_msg(count_threads("uwdf", names, sizeof(names)) <= threads + 1, "uwdf threads before: %ld, now: %s",
                  threads, names);
    for (unsigned i = 0; i < SCALE_TARGETS; i++) {
        uint64_t off = (uint64_t)(i % (EXPORT_SIZE / BLK)) * BLK;
        ck_assert_status(tu_sync_rw(t[i], false, buf, BLK, (LONGLONG)off, NULL), STATUS_SUCCESS);
        ck_assert_msg(pattern_at(buf, BLK, off), "target %u read another block", i);
    }
    for (unsigned i = 0; i < SCALE_TARGETS; i++)
        WdfObjectDelete(t[i]);
    ck_assert_uint_eq(count_sockets(), socks);
    free(t);
    free(buf);
    finish(&e, &s, NULL);
}
END_TEST

/* A PSK file as nbdkit and libnbd read it: username:hex key. */
static char *psk_file(struct tu_env *e, const char *name, unsigned seed)
{
    char *path = tu_env_path(e, name);
    char text[100];
    int n = snprintf(text, sizeof(text), "uwdf:");
    for (int i = 0; i < 32; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "%02x", (unsigned)(seed * 31 + (unsigned)i * 7) & 0xff);
    snprintf(text + n, sizeof(text) - (size_t)n, "\n");
    tu_write_text(path, text);
    return path;
}

/* nbds:// with TLS-PSK: the right key connects and moves data, the wrong
 * one fails the open with STATUS_ACCESS_DENIED and a log line, and plain
 * nbd:// to the TLS-only server is refused. */
START_TEST(nbds_with_a_psk_round_trip_and_a_wrong_key)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *key = psk_file(&e, "good.psk", 1), *bad = psk_file(&e, "bad.psk", 2);
    char psk_arg[600];
    snprintf(psk_arg, sizeof(psk_arg), "--tls-psk=%s", key);
    const char *args[] = { "--tls=require", psk_arg, "memory", "1M", NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    char uri[1400];
    WDFIOTARGET t;
    snprintf(uri, sizeof(uri), "nbds+unix://uwdf@/?socket=%s&tls-psk-file=%s", s.sock, key);
    t = open_rw(&e, uri);
    unsigned char *buf = malloc(4 * BLK);
    tu_fill_pattern(buf, 4 * BLK, SEED, 0);
    ck_assert_status(tu_sync_rw(t, true, buf, 4 * BLK, BLK, NULL), STATUS_SUCCESS);
    memset(buf, 0, 4 * BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, 4 * BLK, BLK, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, 4 * BLK, SEED, 0));
    WdfObjectDelete(t);
    snprintf(uri, sizeof(uri), "nbds+unix://uwdf@/?socket=%s&tls-psk-file=%s", s.sock, bad);
    tu_stderr_begin();
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_ACCESS_DENIED);
    char *log = tu_stderr_end();
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "cannot open the NBD export") && strstr(log, "handshake") &&
                  strstr(log, "STATUS_ACCESS_DENIED"), "log: %s", log);
    free(log);
    WdfObjectDelete(t);
    /* Without TLS, as nbds:// to a server without it. */
    ck_assert_status(open_uri(&e, s.uri, GENERIC_READ, 0, &t), STATUS_NOT_SUPPORTED);
    WdfObjectDelete(t);
    free(buf);
    free(key);
    free(bad);
    finish(&e, &s, NULL);
}
END_TEST

/* ---- connect timeout ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A Unix-socket server that accepts every connection and never says a
 * word: a child process (dies with its parent) holding the connections.
 * uri: its export with uwdf-connect-timeout=CONNECT_TIMEOUT_MS. */
static pid_t silent_server(struct tu_env *e, char *uri, size_t len)
{
    char *path = tu_env_path(e, "silent.sock");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            if (accept(fd, NULL, NULL) < 0 && errno != EINTR)
                _exit(1);
    }
    close(fd);
    snprintf(uri, len, "nbd+unix:///?socket=%s&uwdf-connect-timeout=%u", path, CONNECT_TIMEOUT_MS);
    free(path);
    return pid;
}

static void stop_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* An open of uri fails with STATUS_IO_TIMEOUT after about ms: not at
 * once, and not later than 5 times it (a loaded machine). */
static void open_times_out(struct tu_env *e, const char *uri, unsigned ms)
{
    WDFIOTARGET t;
    double t0 = now_ms();
    ck_assert_status(open_uri(e, uri, GENERIC_READ, 0, &t), STATUS_IO_TIMEOUT);
    double took = now_ms() - t0;
    WdfObjectDelete(t);
    ck_assert_msg(took >= ms * 0.9 && took <= ms * 5.0, "open took %.0f ms, timeout %u ms", took, ms);
}

START_TEST(a_server_that_never_answers_times_out_the_open)
{
    struct tu_env e;
    char uri[800];
    tu_env_init(&e);
    pid_t pid = silent_server(&e, uri, sizeof(uri));
    unsigned sockets = count_sockets();
    open_times_out(&e, uri, CONNECT_TIMEOUT_MS);
    /* Again, so a share left behind by the first would be joined. */
    open_times_out(&e, uri, CONNECT_TIMEOUT_MS);
    ck_assert_uint_eq(count_sockets(), sockets);
    stop_child(pid);
    tu_env_fini(&e);
}
END_TEST

/* A TCP listener whose accept queue is full (backlog 0 and a connection
 * already queued): the kernel drops the SYN, the connect never ends. */
START_TEST(a_listener_that_never_accepts_times_out_the_open)
{
    struct tu_env e;
    tu_env_init(&e);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    int fill[2];
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_int_ge(fill[i], 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(50000); /* the first filler's handshake completes into the queue */
    char uri[200];
    snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%u/?uwdf-connect-timeout=%u", ntohs(sa.sin_port), CONNECT_TIMEOUT_MS);
    unsigned sockets = count_sockets();
    open_times_out(&e, uri, CONNECT_TIMEOUT_MS);
    ck_assert_uint_eq(count_sockets(), sockets);
    close(fill[0]);
    close(fill[1]);
    close(lfd);
    tu_env_fini(&e);
}
END_TEST

struct racer {
    struct tu_env *e;
    const char *uri;
    NTSTATUS status;
};

static void *race_open(void *arg)
{
    struct racer *r = arg;
    WDFIOTARGET t;
    r->status = open_uri(r->e, r->uri, GENERIC_READ, 0, &t);
    WdfObjectDelete(t);
    return NULL;
}

/* Targets opening one silent URI at once each connect and each time out:
 * none waits on another's connect, none joins a share that never came. */
START_TEST(targets_connecting_to_one_silent_uri_at_once_all_time_out)
{
    enum { N = 4 };
    struct tu_env e;
    char uri[800];
    tu_env_init(&e);
    pid_t pid = silent_server(&e, uri, sizeof(uri));
    unsigned sockets = count_sockets();
    pthread_t th[N];
    struct racer r[N];
    double t0 = now_ms();
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){ .e = &e, .uri = uri };
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_open, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_status(r[i].status, STATUS_IO_TIMEOUT);
    }
    double took = now_ms() - t0;
    ck_assert_msg(took <= CONNECT_TIMEOUT_MS * 5.0, "opens took %.0f ms", took);
    ck_assert_uint_eq(count_sockets(), sockets);
    stop_child(pid);
    tu_env_fini(&e);
}
END_TEST

/* A server that answers opens within the timeout, and the parameter does
 * not reach libnbd; a bad value is an invalid parameter. */
START_TEST(connect_timeout_parameter_opens_a_live_export_and_bad_values_fail)
{
    struct tu_env e;
    struct tu_nbdkit s;
    WDFIOTARGET t, t2;
    char uri[800];
    tu_env_init(&e);
    free(file_server(&e, &s, NULL));
    snprintf(uri, sizeof(uri), "%s&uwdf-connect-timeout=5000", s.uri);
    t = open_rw(&e, uri);
    unsigned char buf[BLK];
    ULONG_PTR got;
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, &got), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED, 0));
    /* Another timeout joins the same connection: only connecting differs. */
    snprintf(uri, sizeof(uri), "%s&uwdf-connect-timeout=1", s.uri);
    unsigned sockets = count_sockets();
    t2 = open_rw(&e, uri);
    ck_assert_uint_eq(count_sockets(), sockets);
    WdfObjectDelete(t2);
    const char *bad[] = { "0", "", "abc", "10ms", "-5", "3600001", "99999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(uri, sizeof(uri), "%s&uwdf-connect-timeout=%s", s.uri, bad[i]);
        ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t2), STATUS_INVALID_PARAMETER);
        WdfObjectDelete(t2);
    }
    finish(&e, &s, t);
}
END_TEST

/* The silent server's URI without the parameter: the timeout is the
 * environment's or the built-in one. */
static void drop_timeout_parameter(char *uri)
{
    char *p = strstr(uri, "&uwdf-connect-timeout=");
    ck_assert_ptr_nonnull(p);
    *p = '\0';
}

/* UWDF_NBD_CONNECT_TIMEOUT bounds the connect of a URI that does not say
 * (else the case timeout, far below the built-in 30 s, fails the test), and
 * the URI's parameter wins over it. */
START_TEST(connect_timeout_environment_default_and_the_uri_parameter_wins)
{
    struct tu_env e;
    char uri[800], bare[800];
    tu_env_init(&e);
    pid_t pid = silent_server(&e, uri, sizeof(uri));
    snprintf(bare, sizeof(bare), "%s", uri);
    drop_timeout_parameter(bare);
    unsigned sockets = count_sockets();
    char ms[16];
    snprintf(ms, sizeof(ms), "%u", CONNECT_TIMEOUT_MS);
    ck_assert_int_eq(setenv("UWDF_NBD_CONNECT_TIMEOUT", ms, 1), 0);
    open_times_out(&e, bare, CONNECT_TIMEOUT_MS);
    /* An hour from the environment; the URI's CONNECT_TIMEOUT_MS wins. */
    ck_assert_int_eq(setenv("UWDF_NBD_CONNECT_TIMEOUT", "3600000", 1), 0);
    open_times_out(&e, uri, CONNECT_TIMEOUT_MS);
    ck_assert_int_eq(unsetenv("UWDF_NBD_CONNECT_TIMEOUT"), 0);
    ck_assert_uint_eq(count_sockets(), sockets);
    stop_child(pid);
    tu_env_fini(&e);
}
END_TEST

/* A bad UWDF_NBD_CONNECT_TIMEOUT is not an error: the open connects with
 * the default and a log line names the variable and the value. */
START_TEST(a_bad_connect_timeout_in_the_environment_is_logged_and_ignored)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    free(file_server(&e, &s, NULL));
    const char *bad[] = { "0", "abc", "10ms", "-5", "3600001", "99999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(setenv("UWDF_NBD_CONNECT_TIMEOUT", bad[i], 1), 0);
        tu_stderr_begin();
        WDFIOTARGET t = open_rw(&e, s.uri);
        char *log = tu_stderr_end();
        ck_assert_ptr_nonnull(log);
        char want[80];
        snprintf(want, sizeof(want), "UWDF_NBD_CONNECT_TIMEOUT='%s' ignored", bad[i]);
        ck_assert_msg(strstr(log, want) && strstr(log, "30000 ms"), "log: %s", log);
        free(log);
        unsigned char buf[BLK];
        ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
        ck_assert(tu_pattern_matches(buf, BLK, SEED, 0));
        WdfObjectDelete(t);
    }
    ck_assert_int_eq(unsetenv("UWDF_NBD_CONNECT_TIMEOUT"), 0);
    finish(&e, &s, NULL);
}
END_TEST

/* ---- structured replies (uwdf-structured-replies=) ---- */

/* The debug log of a file-plugin server over path (nbdkit -v, its stderr
 * captured until it exits) that served one read of three blocks, checked,
 * through a target on its URI with param appended. */
static char *negotiation_log(struct tu_env *e, const char *path, const char *param)
{
    struct tu_nbdkit s;
    char file_arg[600], uri[800];
    snprintf(file_arg, sizeof(file_arg), "file=%s", path);
    const char *args[] = { "-v", "file", file_arg, NULL };
    tu_stderr_begin();
    tu_nbdkit_start(e, &s, "nbd.sock", args);
    snprintf(uri, sizeof(uri), "%s%s", s.uri, param);
    WDFIOTARGET t = open_rw(e, uri);
    unsigned char buf[3 * BLK];
    ULONG_PTR got;
    ck_assert_status(tu_sync_rw(t, false, buf, sizeof(buf), BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, sizeof(buf));
    ck_assert(tu_pattern_matches(buf, sizeof(buf), SEED, BLK));
    WdfObjectDelete(t);
    tu_nbdkit_stop(&s);
    return tu_stderr_end();
}

/* A target asks for simple replies unless its URI says
 * uwdf-structured-replies=1; reads are right either way; targets that
 * differ in it do not share a connection; other values fail the open. */
START_TEST(structured_replies_only_when_the_uri_asks)
{
    struct tu_env e;
    struct tu_nbdkit s;
    const char *asked = "client requested structured replies";
    tu_env_init(&e);
    char *path = tu_env_file(&e, "backing", EXPORT_SIZE, SEED);
    char *log = negotiation_log(&e, path, "");
    /* The log is there (the export was asked for), without the request. */
    ck_assert_msg(log && strstr(log, "NBD_OPT_GO"), "no negotiation in the log: %.300s", log);
    ck_assert_msg(!strstr(log, asked), "structured replies asked for by default");
    free(log);
    log = negotiation_log(&e, path, "&uwdf-structured-replies=1");
    ck_assert_msg(log && strstr(log, asked), "structured replies not asked for: %.300s", log);
    free(log);
    free(path);
    free(file_server(&e, &s, NULL));
    /* Saying 0 shares the default's connection; 1 gets one of its own. */
    char uri[800];
    WDFIOTARGET t1 = open_rw(&e, s.uri);
    unsigned sockets = count_sockets();
    snprintf(uri, sizeof(uri), "%s&uwdf-structured-replies=0", s.uri);
    WDFIOTARGET t2 = open_rw(&e, uri);
    ck_assert_uint_eq(count_sockets(), sockets);
    snprintf(uri, sizeof(uri), "%s&uwdf-structured-replies=1", s.uri);
    WDFIOTARGET t3 = open_rw(&e, uri);
    ck_assert_uint_eq(count_sockets(), sockets + 1);
    WdfObjectDelete(t3);
    WdfObjectDelete(t2);
    WdfObjectDelete(t1);
    const char *bad[] = { "2", "", "yes", "-1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        WDFIOTARGET t;
        snprintf(uri, sizeof(uri), "%s&uwdf-structured-replies=%s", s.uri, bad[i]);
        ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_INVALID_PARAMETER);
    }
    finish(&e, &s, NULL);
}
END_TEST

/* ---- automatic reconnect (uwdf-reconnect=, UWDF_NBD_RECONNECT) ---- */

#define RECONNECT_CASE_TIMEOUT_SEC 30

/* s's URI with the reconnect parameters appended (its URI has a query). */
static void reconnect_uri(const struct tu_nbdkit *s, const char *params, char *uri, size_t len)
{
    int n = snprintf(uri, len, "%s&%s", s->uri, params);
    ck_assert(n > 0 && (size_t)n < len);
}

/* A file-plugin server over path (args before the plugin, then after). */
static void file_server_on(struct tu_env *e, struct tu_nbdkit *s, const char *path, const char *before,
                           const char *after)
{
    char file_arg[600];
    snprintf(file_arg, sizeof(file_arg), "file=%s", path);
    const char *args[6];
    int n = 0;
    if (before)
        args[n++] = before;
    args[n++] = "file";
    args[n++] = file_arg;
    if (after)
        args[n++] = after;
    args[n] = NULL;
    tu_nbdkit_start(e, s, "nbd.sock", args);
}

/* Waits (stderr being captured) until the library has logged needle:
 * after a kill, the engine has seen the connection go, so a request sent
 * now is sent after the loss, not in flight at it. */
static void wait_for_log(const char *needle, int ms)
{
    for (int waited = 0;; waited += 10) {
        char *log = tu_stderr_read();
        bool seen = log && strstr(log, needle);
        free(log);
        if (seen)
            return;
        ck_assert_msg(waited < ms, "no '%s' logged within %d ms", needle, ms);
        tu_sleep_ms(10);
    }
}

/* A synchronous read of one block at 2 * BLK on a thread of its own, so
 * the test's thread can restart the server while it waits (a server
 * started from a short-lived thread would die with it: nbdkit's
 * --exit-with-parent follows the thread that forked it). */
struct sync_read {
    WDFIOTARGET t;
    unsigned char buf[BLK];
    NTSTATUS status;
    atomic_bool done;
};

static void *sync_read_thread(void *arg)
{
    struct sync_read *r = arg;
    r->status = tu_sync_rw(r->t, false, r->buf, BLK, 2 * BLK, NULL);
    atomic_store(&r->done, true);
    return NULL;
}

/* The server dies with reads in flight and comes back on its socket: the
 * reads in flight complete once with STATUS_CONNECTION_DISCONNECTED (not
 * replayed), a read sent while it is down (asynchronous, and synchronous)
 * waits and then reads the data, and the target goes on working,
 * synchronously and asynchronously, without being reopened. The loss and
 * the return are logged. */
START_TEST(a_server_restarted_on_its_socket_is_reconnected)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *path = tu_env_file(&e, "backing", EXPORT_SIZE, SEED);
    file_server_on(&e, &s, path, "--filter=delay", "rdelay=5");
    char uri[700];
    reconnect_uri(&s, "uwdf-reconnect=100&uwdf-reconnect-delay=50", uri, sizeof(uri));
    WDFIOTARGET t = open_rw(&e, uri);
    tu_stderr_begin();
    struct tu_late l[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++)
        tu_late_send(t, &l[i], BLK, 0);
    tu_sleep_ms(100);
    tu_nbdkit_kill(&s);
    for (int i = 0; i < INFLIGHT; i++) {
        ck_assert_msg(tu_completion_wait(&l[i].c, 3000), "request %d never completed", i);
        ck_assert_status(l[i].c.status, STATUS_CONNECTION_DISCONNECTED);
    }
    /* Sent while nothing listens, asynchronously and synchronously (from a
     * thread of its own, while this one restarts the server): both wait
     * for the reconnect and then read the data. */
    struct tu_late w;
    tu_late_send(t, &w, BLK, 0);
    tu_sleep_ms(100);
    ck_assert_int_eq(tu_ncalls(&w.c), 0);
    struct sync_read *r = calloc(1, sizeof(*r));
    r->t = t;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, sync_read_thread, r), 0);
    tu_sleep_ms(200);
    ck_assert_msg(!atomic_load(&r->done), "the synchronous read did not wait for the server");
    tu_nbdkit_stop(&s); /* (already dead: frees its names) */
    file_server_on(&e, &s, path, NULL, NULL);
    pthread_join(th, NULL);
    ck_assert_status(r->status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(r->buf, BLK, SEED, 2 * BLK));
    free(r);
    ck_assert_msg(tu_completion_wait(&w.c, 15000), "the waiting read never completed");
    ck_assert_status(w.c.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(w.buf, BLK, SEED, 0));
    /* Synchronous and asynchronous sends on the same target, not reopened. */
    unsigned char *buf = malloc(BLK);
    memset(buf, 0x3c, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, BLK, NULL), STATUS_SUCCESS);
    memset(buf, 0, BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, BLK, NULL), STATUS_SUCCESS);
    ck_assert(tu_all_bytes(buf, BLK, 0x3c));
    struct tu_late a;
    tu_late_send(t, &a, BLK, 0);
    ck_assert(tu_completion_wait(&a.c, 5000));
    ck_assert_status(a.c.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(a.buf, BLK, SEED, 0));
    /* Through the backing file: the write landed on the new server. */
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, BLK, BLK), BLK);
    close(fd);
    ck_assert(tu_all_bytes(buf, BLK, 0x3c));
    char *log = tu_stderr_end();
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "NBD connection lost") && strstr(log, "reconnecting (up to 100 attempts") &&
                      strstr(log, "NBD connection back after"),
                  "log: %s", log);
    free(log);
    tu_sleep_ms(50);
    for (int i = 0; i < INFLIGHT; i++) {
        ck_assert_int_eq(tu_ncalls(&l[i].c), 1);
        tu_late_fini(&l[i]);
    }
    ck_assert_int_eq(tu_ncalls(&w.c), 1);
    ck_assert_int_eq(tu_ncalls(&a.c), 1);
    tu_late_fini(&w);
    tu_late_fini(&a);
    free(buf);
    free(path);
    finish(&e, &s, t);
}
END_TEST

/* A server that never comes back: a request waiting for it completes
 * once with STATUS_CONNECTION_DISCONNECTED after the last attempt (not
 * before the attempts' waits, 50 + 100 + 200 ms), later ones at once, and
 * giving up is logged. The count comes from UWDF_NBD_RECONNECT. */
START_TEST(a_server_that_never_comes_back_fails_after_the_last_attempt)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    free(file_server(&e, &s, NULL));
    ck_assert_int_eq(setenv("UWDF_NBD_RECONNECT", "3", 1), 0);
    char uri[700];
    reconnect_uri(&s, "uwdf-reconnect-delay=50", uri, sizeof(uri));
    WDFIOTARGET t = open_rw(&e, uri);
    ck_assert_int_eq(unsetenv("UWDF_NBD_RECONNECT"), 0);
    unsigned char *buf = malloc(BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    tu_stderr_begin();
    tu_nbdkit_kill(&s);
    wait_for_log("NBD connection lost", 3000);
    double t0 = tu_now_ms();
    struct tu_late w;
    tu_late_send(t, &w, BLK, 0);
    ck_assert_msg(tu_completion_wait(&w.c, 10000), "the waiting read never completed");
    double took = tu_now_ms() - t0;
    ck_assert_status(w.c.status, STATUS_CONNECTION_DISCONNECTED);
    ck_assert_msg(took >= 250.0, "failed after %.0f ms, before the attempts were made", took);
    ck_assert(tu_all_bytes(w.buf, BLK, TU_UNTOUCHED));
    t0 = tu_now_ms();
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_CONNECTION_DISCONNECTED);
    ck_assert_msg(tu_now_ms() - t0 < 1000.0, "a send after giving up waited");
    char *log = tu_stderr_end();
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "reconnecting (up to 3 attempts") && strstr(log, "given up after 3 attempts"),
                  "log: %s", log);
    free(log);
    tu_sleep_ms(50);
    ck_assert_int_eq(tu_ncalls(&w.c), 1);
    tu_late_fini(&w);
    free(buf);
    double c0 = tu_now_ms();
    WdfIoTargetClose(t);
    ck_assert(tu_now_ms() - c0 < 1000.0);
    finish(&e, &s, t);
}
END_TEST

/* The server comes back as another disk (_i 0: twice the size; 1:
 * read-only): the targets were opened on the old size and access, so the
 * new connection is not used: a waiting read fails with
 * STATUS_CONNECTION_DISCONNECTED, the reason is logged, and a reopen
 * connects to what is there now. */
START_TEST(a_server_back_as_another_disk_is_not_used)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *path = tu_env_file(&e, "backing", EXPORT_SIZE, SEED);
    file_server_on(&e, &s, path, NULL, NULL);
    char uri[700];
    reconnect_uri(&s, "uwdf-reconnect=100&uwdf-reconnect-delay=50", uri, sizeof(uri));
    WDFIOTARGET t = open_rw(&e, uri);
    tu_stderr_begin();
    tu_nbdkit_kill(&s);
    wait_for_log("NBD connection lost", 3000);
    struct tu_late w;
    tu_late_send(t, &w, BLK, 0);
    tu_sleep_ms(100);
    ck_assert_int_eq(tu_ncalls(&w.c), 0);
    tu_nbdkit_stop(&s);
    if (_i == 0) {
        ck_assert_int_eq(truncate(path, 2 * EXPORT_SIZE), 0);
        file_server_on(&e, &s, path, NULL, NULL);
    } else {
        file_server_on(&e, &s, path, "-r", NULL);
    }
    ck_assert_msg(tu_completion_wait(&w.c, 15000), "the waiting read never completed");
    ck_assert_status(w.c.status, STATUS_CONNECTION_DISCONNECTED);
    ck_assert(tu_all_bytes(w.buf, BLK, TU_UNTOUCHED));
    char *log = tu_stderr_end();
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "back with another export") &&
                      strstr(log, _i == 0 ? "size is now 2097152 bytes, was 1048576" : "now read-only"),
                  "log: %s", log);
    free(log);
    unsigned char *buf = malloc(BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_CONNECTION_DISCONNECTED);
    WdfObjectDelete(t);
    ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED, 0));
    ck_assert_int_eq(tu_ncalls(&w.c), 1);
    tu_late_fini(&w);
    free(buf);
    free(path);
    finish(&e, &s, t);
}
END_TEST

/* While the server stays away (retries without end): a waiting request
 * with a timeout completes with STATUS_IO_TIMEOUT on time, and Stop with
 * cancel, Purge and Close each complete a waiting request at once with
 * STATUS_CANCELLED, exactly once; nothing waits for the retry loop. */
START_TEST(timeout_stop_purge_close_during_the_retry_loop)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    free(file_server(&e, &s, NULL));
    char uri[700];
    reconnect_uri(&s, "uwdf-reconnect=1000000&uwdf-reconnect-delay=20", uri, sizeof(uri));
    WDFIOTARGET t = open_rw(&e, uri);
    tu_stderr_begin();
    tu_nbdkit_kill(&s);
    wait_for_log("NBD connection lost", 3000);
    struct tu_late l;
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, TIMEOUT_MS);
    double t0 = tu_now_ms();
    tu_late_send(t, &l, BLK, WDF_REL_TIMEOUT_IN_MS(TIMEOUT_MS));
    ck_assert(tu_completion_wait(&l.c, 5000));
    double took = tu_now_ms() - t0, late = tu_control_timer_late_ms(&ctl);
    ck_assert_status(l.c.status, STATUS_IO_TIMEOUT);
    ck_assert_msg(took < TIMEOUT_MS + LATE_MS + late, "completed after %.0f ms (control timer %.0f ms late)", took,
                  late);
    struct tu_late r[3];
    for (int round = 0; round < 3; round++) {
        tu_late_send(t, &r[round], BLK, 0);
        tu_sleep_ms(50);
        ck_assert_int_eq(tu_ncalls(&r[round].c), 0);
        t0 = tu_now_ms();
        tu_stop_purge_or_close(t, round);
        ck_assert_msg(tu_now_ms() - t0 < 1000.0, "round %d waited for the retry loop", round);
        ck_assert(tu_completion_wait(&r[round].c, 0));
        ck_assert_status(r[round].c.status, STATUS_CANCELLED);
        if (round < 2)
            ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
    }
    free(tu_stderr_end());
    tu_sleep_ms(100);
    ck_assert_int_eq(tu_ncalls(&l.c), 1);
    tu_late_fini(&l);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tu_ncalls(&r[i].c), 1);
        tu_late_fini(&r[i]);
    }
    finish(&e, &s, t);
}
END_TEST

static unsigned count_substr(const char *text, const char *needle)
{
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Two targets sharing two connections (multi-conn): after a restart each
 * connection comes back by itself (logged once each) and both targets
 * read again without a reopen. */
START_TEST(every_connection_of_a_shared_multi_conn_export_reconnects)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    const char *args[] = { "memory", "1M", NULL };
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    char uri[700];
    reconnect_uri(&s, "uwdf-connections=2&uwdf-reconnect=100&uwdf-reconnect-delay=50", uri, sizeof(uri));
    WDFIOTARGET t[2] = { open_rw(&e, uri), open_rw(&e, uri) };
    unsigned char *buf = malloc(BLK);
    tu_stderr_begin();
    tu_nbdkit_kill(&s);
    wait_for_log("NBD connection lost", 3000);
    tu_nbdkit_stop(&s);
    tu_nbdkit_start(&e, &s, "nbd.sock", args);
    for (int i = 0; i < 8; i++)
        ck_assert_status(tu_sync_rw(t[i % 2], false, buf, BLK, (LONGLONG)i * BLK, NULL), STATUS_SUCCESS);
    /* The second connection may come back after the first served these. */
    for (int waited = 0;; waited += 10) {
        char *log = tu_stderr_read();
        unsigned back = count_substr(log, "NBD connection back after");
        free(log);
        if (back == 2)
            break;
        ck_assert_msg(back < 2 && waited < 15000, "%u connections back", back);
        tu_sleep_ms(10);
    }
    char *log = tu_stderr_end();
    ck_assert_uint_eq(count_substr(log, "NBD connection lost"), 2);
    free(log);
    for (int i = 0; i < 8; i++)
        ck_assert_status(tu_sync_rw(t[i % 2], false, buf, BLK, (LONGLONG)i * BLK, NULL), STATUS_SUCCESS);
    free(buf);
    WdfObjectDelete(t[0]);
    finish(&e, &s, t[1]);
}
END_TEST

/* Bad reconnect parameters fail the open; a bad UWDF_NBD_RECONNECT is
 * logged and ignored. */
START_TEST(bad_reconnect_parameters_fail_the_open)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    free(file_server(&e, &s, NULL));
    const char *bad[] = { "uwdf-reconnect=-1", "uwdf-reconnect=1000001", "uwdf-reconnect=x",
                          "uwdf-reconnect-delay=0", "uwdf-reconnect-delay=60001", "uwdf-reconnect-delay=" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char uri[700];
        reconnect_uri(&s, bad[i], uri, sizeof(uri));
        WDFIOTARGET t;
        ck_assert_status(open_uri(&e, uri, GENERIC_READ, 0, &t), STATUS_INVALID_PARAMETER);
    }
    /* In the environment, a bad count is logged and the default (none) used. */
    ck_assert_int_eq(setenv("UWDF_NBD_RECONNECT", "1000001", 1), 0);
    tu_stderr_begin();
    WDFIOTARGET t = open_rw(&e, s.uri);
    char *log = tu_stderr_end();
    ck_assert_int_eq(unsetenv("UWDF_NBD_RECONNECT"), 0);
    ck_assert_msg(log && strstr(log, "UWDF_NBD_RECONNECT='1000001' ignored") && strstr(log, "the default, 0 attempts"),
                  "log: %s", log);
    free(log);
    finish(&e, &s, t);
}
END_TEST

/* ---- connection state (UwdfIoTargetGetConnectionState) ---- */

static UWDF_IO_TARGET_CONNECTION_STATE conn_state(WDFIOTARGET t)
{
    UWDF_IO_TARGET_CONNECTION_STATE st;
    memset(&st, 0xa5, sizeof(st));
    st.Size = sizeof(st);
    ck_assert_status(UwdfIoTargetGetConnectionState(t, &st), STATUS_SUCCESS);
    return st;
}

/* Polls t's connection state until it is state with at least attempts
 * reconnect attempts made (and, unless STATUS_SUCCESS, last as its last
 * status), failing after ms; the state it found. */
static UWDF_IO_TARGET_CONNECTION_STATE wait_for_state(WDFIOTARGET t, UWDF_CONNECTION_STATE state,
                                                      ULONG attempts, NTSTATUS last, int ms)
{
    for (int waited = 0;; waited += 5) {
        UWDF_IO_TARGET_CONNECTION_STATE st = conn_state(t);
        if (st.State == state && st.ReconnectAttempts >= attempts && (last == STATUS_SUCCESS || st.LastStatus == last))
            return st;
        ck_assert_msg(waited < ms, "state %d, %lu attempts, last 0x%08x (%s); wanted %d, %lu, 0x%08x", st.State,
                      (unsigned long)st.ReconnectAttempts, (unsigned)st.LastStatus, st.LastError, state,
                      (unsigned long)attempts, (unsigned)last);
        tu_sleep_ms(5);
    }
}

/* The state of a reconnecting target through a kill and a restart of its
 * server: connected; reconnecting with its attempts counting up and the
 * last attempt's failure; connected again with one loss and one reconnect
 * counted. A target on the same server without reconnect is lost. Bad
 * sizes, a file target and a closed target get their statuses. */
START_TEST(connection_state_follows_a_kill_and_a_restart)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *path = tu_env_file(&e, "backing", EXPORT_SIZE, SEED);
    file_server_on(&e, &s, path, NULL, NULL);
    char uri[700], plain[700];
    reconnect_uri(&s, "uwdf-reconnect=1000&uwdf-reconnect-delay=20", uri, sizeof(uri));
    reconnect_uri(&s, "uwdf-share=0", plain, sizeof(plain));
    WDFIOTARGET t = open_rw(&e, uri), p = open_rw(&e, plain);
    UWDF_IO_TARGET_CONNECTION_STATE st = conn_state(t);
    ck_assert_int_eq(st.State, UwdfConnectionConnected);
    ck_assert_uint_eq(st.Connections, 1);
    ck_assert_uint_eq(st.LiveConnections, 1);
    ck_assert_uint_eq(st.ReconnectingConnections, 0);
    ck_assert_uint_eq(st.ReconnectAttempts, 0);
    ck_assert_uint_eq(st.MaxReconnectAttempts, 1000);
    ck_assert_uint_eq(st.Losses, 0);
    ck_assert_uint_eq(st.Reconnects, 0);
    ck_assert_status(st.LastStatus, STATUS_SUCCESS);
    ck_assert_str_eq(st.LastError, "");
    ck_assert_uint_eq(conn_state(p).MaxReconnectAttempts, 0);
    st.Size = sizeof(st) - 1;
    ck_assert_status(UwdfIoTargetGetConnectionState(t, &st), STATUS_INFO_LENGTH_MISMATCH);
    WDFIOTARGET f;
    ck_assert_status(open_uri(&e, path, GENERIC_READ, 0, &f), STATUS_SUCCESS);
    st.Size = sizeof(st);
    ck_assert_status(UwdfIoTargetGetConnectionState(f, &st), STATUS_NOT_SUPPORTED);
    WdfIoTargetClose(f);
    ck_assert_status(UwdfIoTargetGetConnectionState(f, &st), STATUS_INVALID_DEVICE_STATE);
    WdfObjectDelete(f);

    tu_stderr_begin();
    tu_nbdkit_kill(&s);
    /* Nothing listens on the socket: attempt after attempt fails. */
    st = wait_for_state(t, UwdfConnectionReconnecting, 3, STATUS_SUCCESS, 10000);
    ck_assert_uint_eq(st.LiveConnections, 0);
    ck_assert_uint_eq(st.ReconnectingConnections, 1);
    ck_assert_uint_eq(st.Losses, 1);
    ck_assert_uint_eq(st.Reconnects, 0);
    ck_assert_msg(st.LastStatus != STATUS_SUCCESS && st.LastStatus != STATUS_CONNECTION_DISCONNECTED &&
                      st.LastError[0],
                  "an attempt's failure, not the loss: 0x%08x (%s)", (unsigned)st.LastStatus, st.LastError);
    ULONG before = st.ReconnectAttempts;
    st = wait_for_state(t, UwdfConnectionReconnecting, before + 1, STATUS_SUCCESS, 10000);
    /* Without reconnect: lost at once, the loss its last status. */
    st = wait_for_state(p, UwdfConnectionLost, 0, STATUS_CONNECTION_DISCONNECTED, 5000);
    ck_assert_uint_eq(st.LiveConnections, 0);
    ck_assert_uint_eq(st.ReconnectingConnections, 0);
    ck_assert_uint_eq(st.Losses, 1);
    ck_assert_msg(st.LastError[0], "no text for the loss");

    tu_nbdkit_stop(&s);
    file_server_on(&e, &s, path, NULL, NULL);
    st = wait_for_state(t, UwdfConnectionConnected, 0, STATUS_SUCCESS, 15000);
    ck_assert_uint_eq(st.LiveConnections, 1);
    ck_assert_uint_eq(st.ReconnectingConnections, 0);
    ck_assert_uint_eq(st.ReconnectAttempts, 0);
    ck_assert_uint_eq(st.Losses, 1);
    ck_assert_uint_eq(st.Reconnects, 1);
    unsigned char *buf = malloc(BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, BLK, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED, BLK));
    ck_assert_int_eq(conn_state(p).State, UwdfConnectionLost);
    free(tu_stderr_end());
    free(buf);
    free(path);
    WdfObjectDelete(p);
    finish(&e, &s, t);
}
END_TEST

/* Reconnect over TLS (nbds+unix:// with a PSK file): the server is killed
 * and comes back first with another key, whose handshakes the target's
 * attempts fail (STATUS_ACCESS_DENIED, the handshake's reason), then with
 * the right one: the read sent meanwhile waits with its buffer untouched
 * and then reads the data, and the target reads and writes again over TLS
 * without being reopened. */
START_TEST(a_tls_server_restarted_is_reconnected_with_its_key)
{
    struct tu_env e;
    struct tu_nbdkit s;
    tu_env_init(&e);
    char *path = tu_env_file(&e, "backing", EXPORT_SIZE, SEED);
    char *key = psk_file(&e, "good.psk", 1), *bad = psk_file(&e, "bad.psk", 2);
    char good_arg[600], bad_arg[600];
    snprintf(good_arg, sizeof(good_arg), "--tls-psk=%s", key);
    snprintf(bad_arg, sizeof(bad_arg), "--tls-psk=%s", bad);
    const char *tls_args[] = { "--tls=require", good_arg, NULL };
    const char *bad_args[] = { "--tls=require", bad_arg, NULL };
    file_server_on(&e, &s, path, tls_args[0], tls_args[1]);
    char uri[1600];
    snprintf(uri, sizeof(uri), "nbds+unix://uwdf@/?socket=%s&tls-psk-file=%s&uwdf-reconnect=1000&uwdf-reconnect-delay=20",
             s.sock, key);
    WDFIOTARGET t = open_rw(&e, uri);
    unsigned char *buf = malloc(BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED, 0));
    tu_stderr_begin();
    tu_nbdkit_kill(&s);
    wait_for_state(t, UwdfConnectionReconnecting, 1, STATUS_SUCCESS, 5000);
    struct tu_late w;
    tu_late_send(t, &w, BLK, 0);
    tu_nbdkit_stop(&s);
    file_server_on(&e, &s, path, bad_args[0], bad_args[1]);
    UWDF_IO_TARGET_CONNECTION_STATE st =
        wait_for_state(t, UwdfConnectionReconnecting, 1, STATUS_ACCESS_DENIED, 10000);
    ck_assert_msg(strstr(st.LastError, "handshake") || strstr(st.LastError, "TLS") || strstr(st.LastError, "tls"),
                  "last error: %s", st.LastError);
    /* Another failed handshake or two: the wrong key keeps failing. */
    wait_for_state(t, UwdfConnectionReconnecting, st.ReconnectAttempts + 2, STATUS_ACCESS_DENIED, 10000);
    ck_assert_int_eq(tu_ncalls(&w.c), 0);
    ck_assert(tu_all_bytes(w.buf, BLK, TU_UNTOUCHED));
    tu_nbdkit_stop(&s);
    file_server_on(&e, &s, path, tls_args[0], tls_args[1]);
    ck_assert_msg(tu_completion_wait(&w.c, 15000), "the waiting read never completed");
    ck_assert_status(w.c.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(w.buf, BLK, SEED, 0));
    st = conn_state(t);
    ck_assert_int_eq(st.State, UwdfConnectionConnected);
    ck_assert_uint_eq(st.Reconnects, 1);
    memset(buf, 0x5a, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, BLK, NULL), STATUS_SUCCESS);
    memset(buf, 0, BLK);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, BLK, NULL), STATUS_SUCCESS);
    ck_assert(tu_all_bytes(buf, BLK, 0x5a));
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, BLK, BLK), BLK);
    close(fd);
    ck_assert(tu_all_bytes(buf, BLK, 0x5a));
    char *log = tu_stderr_end();
    ck_assert_msg(log && strstr(log, "NBD connection lost") && strstr(log, "NBD connection back after"), "log: %s",
                  log);
    free(log);
    tu_sleep_ms(50);
    ck_assert_int_eq(tu_ncalls(&w.c), 1);
    tu_late_fini(&w);
    free(buf);
    free(key);
    free(bad);
    free(path);
    finish(&e, &s, t);
}
END_TEST

int main(void)
{
    if (!tu_nbd_available())
        return TU_EXIT_SKIP;
    {
    Suite *s = suite_create("nbd");
    TCase *tc = tu_tcase(s, "nbd", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, read_write_through_the_file_plugin);
    tcase_add_test(tc, scattered_mdl_chain_and_file_position);
    tcase_add_test(tc, end_of_export_as_a_block_device);
    tcase_add_test(tc, requests_larger_than_the_server_maximum_are_split);
    tcase_add_test(tc, an_mdl_chain_over_the_server_maximum_runs_as_pieces);
    tcase_add_test(tc, a_failing_piece_reports_the_bytes_before_it);
    tcase_add_test(tc, server_errors_map_through_the_errno_table);
    tcase_add_test(tc, read_only_export_refuses_writes_as_write_protected);
    tcase_add_test(tc, flush_trim_zero_when_offered);
    tcase_add_test(tc, flush_trim_zero_not_offered_are_not_supported);
    tcase_add_loop_test(tc, write_through_is_fua_or_a_flush, 0, 2);
    tcase_add_loop_test(tc, timeout_and_cancel_complete_on_time_and_leave_the_buffer, 0, 2);
    tcase_add_test(tc, stop_purge_close_with_requests_held_by_the_server);
    tcase_add_test(tc, server_killed_mid_run_completes_everything_once);
    tcase_add_test(tc, bad_names_fail_the_open_with_a_reason);
    tcase_add_test(tc, multi_conn_spreads_requests_over_connections);
    tcase_add_test(tc, replies_waiting_on_the_socket_are_read_without_a_poll_each);
    tcase_add_test(tc, targets_of_one_export_share_its_connection);
    tcase_add_test(tc, stop_of_one_sharing_target_leaves_the_others_io);
    tcase_add_test(tc, a_restarted_server_serves_the_reopened_targets);
    tcase_add_test(tc, a_thousand_targets_on_one_connection);
    tcase_add_test(tc, nbds_with_a_psk_round_trip_and_a_wrong_key);
    /* A short case timeout: an open that hangs fails here, not at 60 s. */
    TCase *tcc = tu_tcase(s, "connect", CONNECT_CASE_TIMEOUT_SEC);
    tcase_add_test(tcc, a_server_that_never_answers_times_out_the_open);
    tcase_add_test(tcc, a_listener_that_never_accepts_times_out_the_open);
    tcase_add_test(tcc, targets_connecting_to_one_silent_uri_at_once_all_time_out);
    tcase_add_test(tcc, connect_timeout_parameter_opens_a_live_export_and_bad_values_fail);
    tcase_add_test(tcc, connect_timeout_environment_default_and_the_uri_parameter_wins);
    tcase_add_test(tcc, a_bad_connect_timeout_in_the_environment_is_logged_and_ignored);
    tcase_add_test(tcc, structured_replies_only_when_the_uri_asks);
    TCase *tcr = tu_tcase(s, "reconnect", RECONNECT_CASE_TIMEOUT_SEC);
    tcase_add_test(tcr, a_server_restarted_on_its_socket_is_reconnected);
    tcase_add_test(tcr, a_server_that_never_comes_back_fails_after_the_last_attempt);
    tcase_add_loop_test(tcr, a_server_back_as_another_disk_is_not_used, 0, 2);
    tcase_add_test(tcr, timeout_stop_purge_close_during_the_retry_loop);
    tcase_add_test(tcr, every_connection_of_a_shared_multi_conn_export_reconnects);
    tcase_add_test(tcr, bad_reconnect_parameters_fail_the_open);
    tcase_add_test(tcr, connection_state_follows_a_kill_and_a_restart);
    tcase_add_test(tcr, a_tls_server_restarted_is_reconnected_with_its_key);
    return tu_main(s, "test_nbd");
    }
}
