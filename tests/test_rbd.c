/* RBD targets (backends/rbd.c) on the private single-node Ceph cluster of
 * tests/remote/ceph-cluster: tests/remote/test_rbd starts one cluster for
 * the whole suite and runs this program inside it (CEPH_CONF, the pool and
 * the OSD's pid come from its environment; without them this program
 * skips, 77). Each test makes its own image with the rbd tool. Data is
 * checked through `rbd export` and `rbd import`; a stopped OSD (SIGSTOP by
 * its pid, and SIGCONT before every test) holds requests for the timeout,
 * cancel and OSD-op-timeout cases; the killed-OSD case runs last, since
 * MemStore loses every object with its OSD. */
#include "config.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_SKIP 77
#define BLK 4096u
#define IMAGE_SIZE (16u << 20)
#define OBJECT_SIZE (4u << 20) /* rbd create's default (order 22) */
#define SEED 1900u
#define TEST_TIMEOUT_SEC 120
#define TIMEOUT_MS 300
#define LATE_MS 150.0 /* "within its timeout plus a few ms", beyond a control timer's lateness */
#define OP_TIMEOUT_S 2 /* rados_osd_op_timeout of the fault cases */
#define OP_TIMEOUT_SLACK_MS 3000.0 /* the objecter's timer on a loaded 2-CPU machine */
#define INFLIGHT 16

static const char *conf, *pool;
static pid_t osd_pid;

/* ---- the cluster ---- */

/* A new image of size bytes named after the test; its name (static). */
static const char *make_image(const char *name, unsigned size)
{
    static char image[128];
    snprintf(image, sizeof(image), "%s-%d", name, (int)getpid());
    ck_assert_int_eq(tu_rbd_tool("create '%s/%s' --size %uK --image-feature layering", pool, image, size >> 10), 0);
    return image;
}

/* "rbd:POOL/IMAGE[@SNAP]:conf=CONF" plus extra (":KEY=VALUE..." or ""). */
static char *rbd_name(const char *image, const char *extra)
{
    char *name;
    ck_assert_int_ge(asprintf(&name, "rbd:%s/%s:conf=%s%s", pool, image, conf, extra), 0);
    return name;
}

static WDFIOTARGET open_image(struct tu_env *e, const char *image, const char *extra, ACCESS_MASK access,
                              ULONG options)
{
    WDFIOTARGET t;
    char *name = rbd_name(image, extra);
    ck_assert_status(tu_target_open(e->device, name, access, FILE_OPEN, options, &t), STATUS_SUCCESS);
    free(name);
    return t;
}

static WDFIOTARGET open_rw(struct tu_env *e, const char *image, const char *extra)
{
    return open_image(e, image, extra, GENERIC_READ | GENERIC_WRITE, 0);
}

/* Whether every thread of the OSD is stopped (kill -STOP returns before
 * they are, and meanwhile they may still serve requests). */
static bool osd_all_stopped(void)
{
    char dirpath[64];
    snprintf(dirpath, sizeof(dirpath), "/proc/%d/task", (int)osd_pid);
    DIR *d = opendir(dirpath);
    if (!d)
        return false;
    bool all = true;
    struct dirent *de;
    while (all && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[384], buf[512];
        snprintf(path, sizeof(path), "%s/%s/stat", dirpath, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        char *paren = strrchr(buf, ')');
        all = paren && paren[1] == ' ' && paren[2] == 'T';
    }
    closedir(d);
    return all;
}

static void osd_stop(void)
{
    ck_assert_int_eq(kill(osd_pid, SIGSTOP), 0);
    for (int i = 0; i < 1000 && !osd_all_stopped(); i++)
        tu_sleep_ms(10);
    ck_assert_msg(osd_all_stopped(), "the OSD (pid %d) did not stop", (int)osd_pid);
}

static void osd_resume(void)
{
    (void)kill(osd_pid, SIGCONT);
}

/* Before every test: a test that failed with the OSD stopped does not hold
 * up the next one. */
static void osd_resume_setup(void)
{
    osd_resume();
}

/* The admin sockets of this process's cluster connections (one per
 * rados_t: the test conf names them run/client.ID.PID.CCTID.asok). */
static size_t connections_of_this_process(void)
{
    char pattern[600];
    glob_t g;
    snprintf(pattern, sizeof(pattern), "%s/run/client.*.%d.*.asok", getenv("UWDF_CEPH_DIR"), (int)getpid());
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    size_t n = g.gl_pathc;
    globfree(&g);
    return n;
}

/* What the admin socket of this process's one cluster connection answers
 * to CMD, through a python3 expression EXPR over its JSON (d). */
static char *asok_query(const char *cmd, const char *expr)
{
    char pattern[600], line[4096];
    glob_t g;
    snprintf(pattern, sizeof(pattern), "%s/run/client.*.%d.*.asok", getenv("UWDF_CEPH_DIR"), (int)getpid());
    ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
    ck_assert_uint_eq(g.gl_pathc, 1);
    snprintf(line, sizeof(line),
             "timeout 30 ceph --admin-daemon '%s' %s 2>/dev/null | "
             "python3 -c 'import json,sys; d=json.load(sys.stdin); print(%s)'",
             g.gl_pathv[0], cmd, expr);
    globfree(&g);
    FILE *p = popen(line, "r");
    ck_assert_ptr_nonnull(p);
    char *got = fgets(line, sizeof(line), p);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_ptr_nonnull(got);
    line[strcspn(line, "\n")] = '\0';
    return strdup(line);
}

/* A counter of librbd's on that connection (its perf counters, summed
 * over images): "flush", "wr" (write ops). */
static long librbd_counter(const char *name)
{
    char expr[256];
    snprintf(expr, sizeof(expr), "sum(v.get(\"%s\", 0) for k, v in d.items() if k.startswith(\"librbd\"))", name);
    char *v = asok_query("perf dump", expr);
    long n = atol(v);
    free(v);
    return n;
}

static long librbd_flushes(void)
{
    return librbd_counter("flush");
}

/* rados_osd_op_timeout in force on that connection, in whole seconds. */
static long osd_op_timeout(void)
{
    char *v = asok_query("config get rados_osd_op_timeout", "int(float(d[\"rados_osd_op_timeout\"]))");
    long n = atol(v);
    free(v);
    return n;
}

/* ---- tests ---- */

/* Written through uwdf (unaligned, scattered, sync and async), read back by
 * `rbd export`; size and alignment from the image. */
START_TEST(writes_read_back_with_rbd_export)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("export", IMAGE_SIZE);
    WDFIOTARGET t = open_rw(&e, image, ":id=admin");
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), "rbd");

    unsigned char *buf = malloc(64 * 1024);
    tu_fill_pattern(buf, 64 * 1024, SEED, 0);
    ULONG_PTR got;
    ck_assert_status(tu_sync_rw(t, true, buf, 64 * 1024, 1 << 20, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 64 * 1024);
    tu_fill_pattern(buf, 3000, SEED + 1, 0);
    ck_assert_status(tu_sync_rw(t, true, buf, 3000, 12345, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 3000);

    /* A write from a chain of two MDLs across an object boundary, and an
     * asynchronous one. */
    unsigned char *a = malloc(BLK), *b = malloc(2 * BLK);
    tu_fill_pattern(a, BLK, SEED + 2, 0);
    tu_fill_pattern(b, 2 * BLK, SEED + 2, BLK);
    PMDL m1 = IoAllocateMdl(a, BLK, FALSE, FALSE, NULL), m2 = IoAllocateMdl(b, 2 * BLK, FALSE, FALSE, NULL);
    m1->Next = m2;
    MmBuildMdlForNonPagedPool(m1);
    MmBuildMdlForNonPagedPool(m2);
    WDFREQUEST req = tu_make_request(t);
    WDFMEMORY mem;
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    ck_assert_status(WdfMemoryCreatePreallocated(&attrs, a, BLK, &mem), STATUS_SUCCESS);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, m1, 3 * BLK);
    LONGLONG off = OBJECT_SIZE - BLK;
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 3 * BLK);
    struct tu_completion c;
    tu_completion_init(&c);
    off = 2 * OBJECT_SIZE;
    ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
    ck_assert(WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&c, 20000));
    ck_assert_status(c.status, STATUS_SUCCESS);
    ck_assert_uint_eq(c.information, BLK);
    ck_assert_status(tu_flush(t), STATUS_SUCCESS);

    GET_LENGTH_INFORMATION li;
    ck_assert_status(tu_sync_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li)), STATUS_SUCCESS);
    ck_assert_uint_eq(li.Length.QuadPart, IMAGE_SIZE);
    STORAGE_PROPERTY_QUERY q = { .PropertyId = StorageAccessAlignmentProperty, .QueryType = PropertyStandardQuery };
    STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR al;
    ck_assert_status(tu_sync_ioctl(t, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &al, sizeof(al)), STATUS_SUCCESS);
    ck_assert_uint_eq(al.BytesPerLogicalSector, 512);
    ck_assert_uint_eq(al.BytesPerPhysicalSector, OBJECT_SIZE);

    char *file = tu_env_path(&e, "export");
    ck_assert_int_eq(tu_rbd_tool("export '%s/%s' '%s'", pool, image, file), 0);
    int fd = open(file, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    unsigned char *check = malloc(64 * 1024);
    ck_assert_int_eq(pread(fd, check, 64 * 1024, 1 << 20), 64 * 1024);
    ck_assert(tu_pattern_matches(check, 64 * 1024, SEED, 0));
    ck_assert_int_eq(pread(fd, check, 3000, 12345), 3000);
    ck_assert(tu_pattern_matches(check, 3000, SEED + 1, 0));
    ck_assert_int_eq(pread(fd, check, 3 * BLK, OBJECT_SIZE - BLK), 3 * BLK);
    ck_assert(tu_pattern_matches(check, 3 * BLK, SEED + 2, 0));
    ck_assert_int_eq(pread(fd, check, BLK, 2 * OBJECT_SIZE), BLK);
    ck_assert(tu_pattern_matches(check, BLK, SEED + 2, 0));
    ck_assert_int_eq(pread(fd, check, BLK, 0), BLK);
    ck_assert(tu_all_bytes(check, BLK, 0));
    close(fd);
    WdfObjectDelete(req);
    WdfObjectDelete(mem);
    tu_completion_fini(&c);
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    free(a);
    free(b);
    free(check);
    free(file);
    free(buf);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* An image made by `rbd import` reads back through uwdf, into scattered
 * buffers; its end behaves as a block device's. */
START_TEST(rbd_import_reads_back_and_the_end_is_a_block_device)
{
    struct tu_env e;
    tu_env_init(&e);
    enum { SIZE = 1 << 20 };
    char *file = tu_env_file(&e, "import", SIZE, SEED + 3);
    char image[128];
    snprintf(image, sizeof(image), "import-%d", (int)getpid());
    ck_assert_int_eq(tu_rbd_tool("import '%s' '%s/%s'", file, pool, image), 0);
    WDFIOTARGET t = open_rw(&e, image, "");
    unsigned char *a = malloc(BLK), *b = malloc(100), *c = malloc(SIZE);
    PMDL m1 = IoAllocateMdl(a, BLK, FALSE, FALSE, NULL), m2 = IoAllocateMdl(b, 100, FALSE, FALSE, NULL);
    m1->Next = m2;
    MmBuildMdlForNonPagedPool(m1);
    MmBuildMdlForNonPagedPool(m2);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, m1, BLK + 100);
    LONGLONG off = 5 * BLK;
    ULONG_PTR got = 0;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, BLK + 100);
    ck_assert(tu_pattern_matches(a, BLK, SEED + 3, 5 * BLK));
    ck_assert(tu_pattern_matches(b, 100, SEED + 3, 6 * BLK));
    ck_assert_status(tu_sync_rw(t, false, c, SIZE, 0, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, SIZE);
    ck_assert(tu_pattern_matches(c, SIZE, SEED + 3, 0));

    ck_assert_status(tu_sync_rw(t, false, c, BLK, SIZE, &got), STATUS_END_OF_FILE);
    ck_assert_uint_eq(got, 0);
    ck_assert_status(tu_sync_rw(t, false, c, 2 * BLK, SIZE - BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, BLK);
    ck_assert_status(tu_sync_rw(t, true, c, BLK, SIZE, &got), STATUS_DISK_FULL);
    ck_assert_status(tu_sync_rw(t, true, c, 2 * BLK, SIZE - BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, BLK);
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    free(a);
    free(b);
    free(c);
    free(file);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* Discard of whole objects and zeroing of any range read back as zeros;
 * flush succeeds; a read-only opening refuses them. */
/* A read or write over the engine's chunk (32 MiB: one librbd request, one
 * bounce buffer at most) runs as pieces: a 40 MiB write is 2 librbd
 * writes and reads back whole; one that runs into the end of a 48 MiB
 * image writes its first piece short (to the end) and its next piece
 * fails there: STATUS_DISK_FULL with the bytes before it, one completion
 * (as one librbd request clipped at the end, it would have succeeded
 * short). A read the same way is short. */
START_TEST(requests_over_the_chunk_run_as_pieces)
{
    struct tu_env e;
    tu_env_init(&e);
    const unsigned size = 48u << 20, len = 40u << 20;
    const char *image = make_image("chunk", size);
    WDFIOTARGET t = open_rw(&e, image, "");
    unsigned char *w = malloc(len), *r = malloc(len);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(r);
    tu_fill_pattern(w, len, SEED + 7, BLK);
    long before = librbd_counter("wr");
    ULONG_PTR got = 0;
    ck_assert_status(tu_sync_rw(t, true, w, len, BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, len);
    ck_assert_int_eq(librbd_counter("wr") - before, 2);
    memset(r, 0, len);
    ck_assert_status(tu_sync_rw(t, false, r, len, BLK, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, len);
    ck_assert(tu_pattern_matches(r, len, SEED + 7, BLK));
    /* Into the end: 24 MiB written, then the next piece fails. */
    ck_assert_status(tu_sync_rw(t, true, w, len, 24u << 20, &got), STATUS_DISK_FULL);
    ck_assert_uint_eq(got, 24u << 20);
    memset(r, 0, len);
    ck_assert_status(tu_sync_rw(t, false, r, len, 24u << 20, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, 24u << 20);
    ck_assert(tu_pattern_matches(r, 24u << 20, SEED + 7, BLK));
    WdfObjectDelete(t);
    free(w);
    free(r);
    tu_env_fini(&e);
}
END_TEST

START_TEST(flush_discard_and_zero)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("discard", IMAGE_SIZE);
    WDFIOTARGET t = open_rw(&e, image, "");
    unsigned char *buf = malloc(OBJECT_SIZE);
    for (unsigned o = 0; o < 3; o++) {
        tu_fill_pattern(buf, OBJECT_SIZE, SEED + 4, (uint64_t)o * OBJECT_SIZE);
        ck_assert_status(tu_sync_rw(t, true, buf, OBJECT_SIZE, (LONGLONG)o * OBJECT_SIZE, NULL), STATUS_SUCCESS);
    }
    ck_assert_status(tu_flush(t), STATUS_SUCCESS);
    ck_assert(tu_trim_enabled(t));
    ck_assert_status(tu_trim(t, OBJECT_SIZE, OBJECT_SIZE), STATUS_SUCCESS);
    ck_assert_status(tu_set_zero(t, 2 * OBJECT_SIZE + 1024, 2 * OBJECT_SIZE + 9216), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, false, buf, OBJECT_SIZE, OBJECT_SIZE, NULL), STATUS_SUCCESS);
    ck_assert(tu_all_bytes(buf, OBJECT_SIZE, 0));
    ck_assert_status(tu_sync_rw(t, false, buf, 10000, 2 * OBJECT_SIZE, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, 1024, SEED + 4, 2 * OBJECT_SIZE));
    ck_assert(tu_all_bytes(buf + 1024, 8192, 0));
    ck_assert(tu_pattern_matches(buf + 9216, 10000 - 9216, SEED + 4, 2 * OBJECT_SIZE + 9216));
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED + 4, 0));
    WdfObjectDelete(t);

    t = open_image(&e, image, "", GENERIC_READ, 0);
    ck_assert_status(tu_trim(t, 0, OBJECT_SIZE), STATUS_ACCESS_DENIED);
    ck_assert_status(tu_set_zero(t, 0, BLK), STATUS_ACCESS_DENIED);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_ACCESS_DENIED);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED + 4, 0));
    WdfObjectDelete(t);
    free(buf);
    tu_env_fini(&e);
}
END_TEST

/* A snapshot reads what the image held when it was taken and refuses
 * writes, discards and zeroing as write protected. */
START_TEST(snapshot_is_read_only)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("snap", IMAGE_SIZE);
    WDFIOTARGET t = open_rw(&e, image, "");
    unsigned char *buf = malloc(BLK);
    tu_fill_pattern(buf, BLK, SEED + 5, 0);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_int_eq(tu_rbd_tool("snap create '%s/%s@s1'", pool, image), 0);
    tu_fill_pattern(buf, BLK, SEED + 6, 0);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);

    char snap[200];
    snprintf(snap, sizeof(snap), "%s@s1", image);
    WDFIOTARGET s = open_rw(&e, snap, "");
    ck_assert_status(tu_sync_rw(s, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED + 5, 0));
    ck_assert_status(tu_sync_rw(s, true, buf, BLK, 0, NULL), STATUS_MEDIA_WRITE_PROTECTED);
    ck_assert_status(tu_trim(s, 0, OBJECT_SIZE), STATUS_MEDIA_WRITE_PROTECTED);
    ck_assert_status(tu_set_zero(s, 0, BLK), STATUS_MEDIA_WRITE_PROTECTED);
    ck_assert_status(tu_flush(s), STATUS_SUCCESS);
    ck_assert_status(tu_sync_ioctl(s, IOCTL_DISK_IS_WRITABLE, NULL, 0, NULL, 0), STATUS_MEDIA_WRITE_PROTECTED);
    ck_assert_status(tu_sync_ioctl(t, IOCTL_DISK_IS_WRITABLE, NULL, 0, NULL, 0), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED + 6, 0));
    WdfObjectDelete(s);
    WdfObjectDelete(t);
    free(buf);
    tu_env_fini(&e);
}
END_TEST

static NTSTATUS open_name(struct tu_env *e, const char *name, ULONG disposition)
{
    WDFIOTARGET t = NULL;
    NTSTATUS s = tu_target_open(e->device, name, GENERIC_READ | GENERIC_WRITE, disposition, 0, &t);
    if (t)
        WdfObjectDelete(t);
    return s;
}

START_TEST(bad_names_fail_the_open_with_a_reason)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("names", 1 << 20);
    char name[1024];
    ck_assert_status(open_name(&e, "rbd:", FILE_OPEN), STATUS_OBJECT_NAME_INVALID);
    ck_assert_status(open_name(&e, "rbd:just-a-pool", FILE_OPEN), STATUS_OBJECT_NAME_INVALID);
    ck_assert_status(open_name(&e, "rbd:a/b/c/d", FILE_OPEN), STATUS_OBJECT_NAME_INVALID);
    snprintf(name, sizeof(name), "rbd:%s/%s:conf=%s:novalue", pool, image, conf);
    ck_assert_status(open_name(&e, name, FILE_OPEN), STATUS_OBJECT_NAME_INVALID);
    snprintf(name, sizeof(name), "rbd:%s/%s:conf=%s:no_such_ceph_option=1", pool, image, conf);
    ck_assert_status(open_name(&e, name, FILE_OPEN), STATUS_OBJECT_NAME_INVALID);
    snprintf(name, sizeof(name), "rbd:%s/%s:conf=%s.missing", pool, image, conf);
    ck_assert_status(open_name(&e, name, FILE_OPEN), STATUS_OBJECT_PATH_NOT_FOUND);
    snprintf(name, sizeof(name), "rbd:no-such-pool/%s:conf=%s", image, conf);
    ck_assert_status(open_name(&e, name, FILE_OPEN), STATUS_BAD_NETWORK_NAME);
    snprintf(name, sizeof(name), "rbd:%s/no-such-image:conf=%s", pool, conf);
    ck_assert_status(open_name(&e, name, FILE_OPEN), STATUS_OBJECT_NAME_NOT_FOUND);
    snprintf(name, sizeof(name), "rbd:%s/%s@no-such-snap:conf=%s", pool, image, conf);
    ck_assert_status(open_name(&e, name, FILE_OPEN), STATUS_OBJECT_NAME_NOT_FOUND);
    snprintf(name, sizeof(name), "rbd:%s/%s:conf=%s", pool, image, conf);
    ck_assert_status(open_name(&e, name, FILE_CREATE), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(open_name(&e, name, FILE_OPEN_IF), STATUS_SUCCESS);
    /* No monitor answers: the open gives up after client_mount_timeout. */
    snprintf(name, sizeof(name), "rbd:%s/%s:conf=%s:mon_host=127.0.0.1\\:9:client_mount_timeout=1", pool, image,
             conf);
    double t0 = tu_now_ms();
    ck_assert_status(open_name(&e, name, FILE_OPEN), STATUS_HOST_UNREACHABLE);
    ck_assert_msg(tu_now_ms() - t0 < 15000.0, "the open took %.0f ms", tu_now_ms() - t0);
    tu_env_fini(&e);
}
END_TEST

/* One cluster connection per configuration, user and options, however
 * many images use it; gone with its last image. Its OSD op timeout is the
 * name's, or uwdf's 30 s when nothing sets one. */
START_TEST(one_connection_per_configuration)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("conn", 1 << 20);
    char snap[200];
    ck_assert_int_eq(tu_rbd_tool("snap create '%s/%s@s'", pool, image), 0);
    snprintf(snap, sizeof(snap), "%s@s", image);
    ck_assert_uint_eq(connections_of_this_process(), 0);
    WDFIOTARGET a = open_rw(&e, image, "");
    WDFIOTARGET b = open_rw(&e, snap, "");
    ck_assert_uint_eq(connections_of_this_process(), 1);
    ck_assert_int_eq(osd_op_timeout(), 30);
    WDFIOTARGET c = open_rw(&e, image, ":rados_osd_op_timeout=7");
    ck_assert_uint_eq(connections_of_this_process(), 2);
    unsigned char buf[BLK];
    memset(buf, 1, sizeof(buf));
    ck_assert_status(tu_sync_rw(a, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_status(tu_sync_rw(c, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    WdfObjectDelete(b);
    ck_assert_uint_eq(connections_of_this_process(), 2);
    WdfObjectDelete(a);
    ck_assert_uint_eq(connections_of_this_process(), 1);
    ck_assert_int_eq(osd_op_timeout(), 7);
    WdfObjectDelete(c);
    ck_assert_uint_eq(connections_of_this_process(), 0);
    tu_env_fini(&e);
}
END_TEST

/* With the OSD stopped, a request completes at its timeout (or cancel),
 * and its buffer stays as it was after the OSD answers; the target works
 * on. */
START_TEST(timeout_and_cancel_with_the_osd_stopped_leave_the_buffer)
{
    struct tu_env e;
    tu_env_init(&e);
    bool cancel = _i == 1;
    const char *image = make_image(cancel ? "cancel" : "timeout", 1 << 20);
    WDFIOTARGET t = open_rw(&e, image, "");
    unsigned char *buf = malloc(BLK);
    tu_fill_pattern(buf, BLK, SEED + 7, 0);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    osd_stop();
    struct tu_late l;
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, TIMEOUT_MS);
    double t0 = tu_now_ms();
    tu_late_send(t, &l, BLK, cancel ? 0 : WDF_REL_TIMEOUT_IN_MS(TIMEOUT_MS));
    if (cancel) {
        tu_sleep_ms(TIMEOUT_MS);
        ck_assert(WdfRequestCancelSentRequest(l.req));
    }
    ck_assert(tu_completion_wait(&l.c, 5000));
    double took = tu_now_ms() - t0;
    ck_assert_status(l.c.status, cancel ? STATUS_CANCELLED : STATUS_IO_TIMEOUT);
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(took < TIMEOUT_MS + LATE_MS + late, "completed after %.0f ms (control timer %.0f ms late)", took,
                  late);
    osd_resume();
    /* librbd's late answer lands meanwhile, in the bounce buffer. */
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(buf, BLK, SEED + 7, 0));
    tu_sleep_ms(200);
    ck_assert(tu_all_bytes(l.buf, BLK, TU_UNTOUCHED));
    ck_assert_int_eq(tu_ncalls(&l.c), 1);
    tu_late_fini(&l);
    free(buf);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* Requests the stopped OSD never answers fail with STATUS_IO_TIMEOUT after
 * rados_osd_op_timeout (given in the name), and Stop/Purge/Close with
 * such requests in flight never hang: they complete at once, and the close
 * waits for librbd at most that long. */
START_TEST(osd_op_timeout_bounds_requests_and_close)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("optimeout", 1 << 20);
    char extra[64];
    snprintf(extra, sizeof(extra), ":rados_osd_op_timeout=%d", OP_TIMEOUT_S);
    WDFIOTARGET t = open_rw(&e, image, extra);
    unsigned char *buf = calloc(1, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    osd_stop();
    struct tu_late l[3];
    double t0 = tu_now_ms();
    for (int i = 0; i < 3; i++)
        tu_late_send(t, &l[i], BLK, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert(tu_completion_wait(&l[i].c, OP_TIMEOUT_S * 1000 + (int)OP_TIMEOUT_SLACK_MS));
        ck_assert_status(l[i].c.status, STATUS_IO_TIMEOUT);
    }
    double took = tu_now_ms() - t0;
    ck_assert_msg(took >= OP_TIMEOUT_S * 1000.0 - 100.0, "timed out after %.0f ms", took);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tu_ncalls(&l[i].c), 1);
        tu_late_fini(&l[i]);
    }

    for (int round = 0; round < 3; round++) {
        tu_late_send(t, &l[round], BLK, 0);
        t0 = tu_now_ms();
        tu_stop_purge_or_close(t, round);
        double waited = tu_now_ms() - t0;
        ck_assert(tu_completion_wait(&l[round].c, 0));
        ck_assert_status(l[round].c.status, STATUS_CANCELLED);
        ck_assert_int_eq(tu_ncalls(&l[round].c), 1);
        if (round < 2) {
            ck_assert_msg(waited < 1000.0, "round %d waited %.0f ms", round, waited);
            ck_assert_status(WdfIoTargetStart(t), STATUS_SUCCESS);
        } else {
            ck_assert_msg(waited < OP_TIMEOUT_S * 1000.0 + OP_TIMEOUT_SLACK_MS, "the close waited %.0f ms",
                          waited);
        }
    }
    osd_resume();
    tu_sleep_ms(200);
    for (int i = 0; i < 3; i++) {
        ck_assert(tu_all_bytes(l[i].buf, BLK, TU_UNTOUCHED));
        tu_late_fini(&l[i]);
    }
    free(buf);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* A write through the target (per target or per request) is followed by
 * one flush; a plain write is not. */
START_TEST(write_through_is_a_write_and_a_flush)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("wt", 1 << 20);
    WDFIOTARGET t = open_image(&e, image, "", GENERIC_READ | GENERIC_WRITE, FILE_WRITE_THROUGH);
    unsigned char buf[BLK];
    memset(buf, 3, sizeof(buf));
    long before = librbd_flushes();
    for (int i = 0; i < 4; i++)
        ck_assert_status(tu_sync_rw(t, true, buf, BLK, i * BLK, NULL), STATUS_SUCCESS);
    ck_assert_int_eq(librbd_flushes() - before, 4);
    WdfObjectDelete(t);

    t = open_rw(&e, image, "");
    before = librbd_flushes();
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    ck_assert_int_eq(librbd_flushes() - before, 0);
    ck_assert_status(tu_write_through_request(t, BLK, BLK, 1), STATUS_SUCCESS);
    ck_assert_int_eq(librbd_flushes() - before, 1);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* Many requests in flight, some with timeouts that fire, some cancelled:
 * every one completes exactly once, and what was written reads back. */
START_TEST(exactly_once_under_load)
{
    enum { QD = 32, ROUNDS = 8 };
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("load", IMAGE_SIZE);
    WDFIOTARGET t = open_rw(&e, image, "");
    struct tu_late l[QD];
    for (int round = 0; round < ROUNDS; round++) {
        bool stopped = round % 2 == 1;
        if (stopped)
            osd_stop();
        for (int i = 0; i < QD; i++)
            tu_late_send(t, &l[i], BLK, stopped && i % 2 ? WDF_REL_TIMEOUT_IN_MS(50) : 0);
        if (stopped) {
            for (int i = 0; i < QD; i += 4)
                (void)WdfRequestCancelSentRequest(l[i].req);
            tu_sleep_ms(100);
            osd_resume();
        }
        for (int i = 0; i < QD; i++) {
            ck_assert_msg(tu_completion_wait(&l[i].c, 20000), "round %d request %d never completed", round, i);
            NTSTATUS s = l[i].c.status;
            ck_assert_msg(s == STATUS_SUCCESS || (stopped && (s == STATUS_CANCELLED || s == STATUS_IO_TIMEOUT)),
                          "round %d request %d: %s", round, i, tu_status_name(s));
            if (s == STATUS_SUCCESS)
                ck_assert(tu_all_bytes(l[i].buf, BLK, 0));
        }
        tu_sleep_ms(20);
        for (int i = 0; i < QD; i++) {
            ck_assert_int_eq(tu_ncalls(&l[i].c), 1);
            tu_late_fini(&l[i]);
        }
    }
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* The engine thread sleeps once nothing is in flight: the eventfd that
 * woke it (librbd's completions, a send from another thread) wakes one
 * wait per write, and a count it never reads does not make every wait
 * return at once. Its runnable time over an idle second says (a spinning
 * thread is runnable all along, however busy the host). */
START_TEST(engine_sleeps_after_completions)
{
    enum { QD = 8, ROUNDS = 4, IDLE_MS = 1000 };
    const uint64_t idle_runnable_max_ns = 300u * 1000 * 1000;
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("idle", 1 << 20);
    WDFIOTARGET t = open_rw(&e, image, "");
    unsigned char *buf = calloc(1, BLK);
    for (int i = 0; i < 64; i++)
        ck_assert_status(tu_sync_rw(t, i % 2 == 0, buf, BLK, (LONGLONG)(i % 16) * BLK, NULL), STATUS_SUCCESS);
    struct tu_late l[QD];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < QD; i++)
            tu_late_send(t, &l[i], BLK, 0);
        for (int i = 0; i < QD; i++) {
            ck_assert_msg(tu_completion_wait(&l[i].c, 20000), "request %d never completed", i);
            ck_assert_status(l[i].c.status, STATUS_SUCCESS);
            tu_late_fini(&l[i]);
        }
    }
    uint64_t before = tu_engine_threads_runnable_ns();
    tu_sleep_ms(IDLE_MS);
    uint64_t busy = tu_engine_threads_runnable_ns() - before;
    ck_assert_msg(busy < idle_runnable_max_ns, "the engine threads were runnable %.1f ms of %d ms with nothing in flight",
                  busy / 1e6, IDLE_MS);
    /* and still answer */
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_SUCCESS);
    free(buf);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* A round trip costs the engine thread no read of its eventfd: it waits
 * on it edge-triggered, so each completion and each wake-up is one wait's
 * return and nothing else (a read per round trip was one system call in
 * three of the engine's at QD1). Synchronous reads and writes, each a
 * wake-up from this thread and a completion from librbd; the engine
 * threads' read-type system calls (syscr) counted around them. */
START_TEST(round_trips_cost_the_engine_no_eventfd_read)
{
    enum { ROUNDS = 300 };
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("noread", 1 << 20);
    WDFIOTARGET t = open_rw(&e, image, "");
    unsigned char *buf = calloc(1, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    uint64_t before = tu_engine_threads_read_calls();
    for (int i = 0; i < ROUNDS; i++)
        ck_assert_status(tu_sync_rw(t, i % 2 == 0, buf, BLK, (LONGLONG)(i % 16) * BLK, NULL), STATUS_SUCCESS);
    uint64_t reads = tu_engine_threads_read_calls() - before;
    if (!tu_read_calls_counted())
        fprintf(stderr, "test_rbd: no task I/O accounting in /proc: the engine's reads not counted\n");
    /* valgrind's thread lock is a pipe each thread reads to run: its
     * reads, not the engine's, would be counted. */
    if (tu_running_on_valgrind())
        fprintf(stderr, "test_rbd: under valgrind the engine's reads are not counted (%llu with valgrind's)\n",
                (unsigned long long)reads);
    else
        ck_assert_msg(reads < ROUNDS / 10, "the engine threads made %llu read calls in %d round trips",
                      (unsigned long long)reads, ROUNDS);
    free(buf);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* The completion routine of sends_from_another_thread_wake_the_engine, on
 * the engine thread: counts the completion, then keeps the thread hold_ns
 * longer, so that the next send (the test thread spins on the count)
 * reaches the engine at another point of its loop each round. */
struct handoff {
    atomic_int done, left;
    atomic_long hold_ns;
    NTSTATUS status;
};

static VOID handoff_complete(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                             WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    struct handoff *h = Context;
    h->status = Params->IoStatus.Status;
    double until = tu_now_ms() + (double)atomic_load(&h->hold_ns) / 1e6;
    atomic_fetch_add(&h->done, 1);
    while (tu_now_ms() < until)
        ;
    atomic_fetch_add(&h->left, 1);
}

/* A send from another thread wakes the engine through its eventfd, which
 * also carries librbd's completions: a wake-up that comes while the engine
 * handles a completion (between its look for sends and its next wait) must
 * not be taken for that completion's, or the engine sleeps with the send
 * queued and nothing else in flight to wake it. One read at a time, each
 * sent the moment the last one's routine ran, the routine holding the
 * engine thread a little longer each round. */
START_TEST(sends_from_another_thread_wake_the_engine)
{
    enum { WAIT_MS = 20000, HOLD_STEP_NS = 37, HOLD_MAX_NS = 6000 };
    /* valgrind runs one thread at a time: fewer rounds, and the spinning
     * test thread yields to the engine's. */
    bool vg = tu_running_on_valgrind();
    const int rounds = vg ? 100 : 3000;
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("handoff", 1 << 20);
    WDFIOTARGET t = open_rw(&e, image, "");
    WDFREQUEST req[2];
    WDFMEMORY mem[2];
    void *buf;
    for (int i = 0; i < 2; i++) {
        req[i] = tu_make_request(t);
        mem[i] = tu_make_memory(BLK, &buf);
    }
    struct handoff h = { 0 };
    for (int i = 0; i < rounds; i++) {
        /* Two requests in turn: the one sent two rounds ago has left its
         * routine, since the engine ran the last round's after it. */
        WDFREQUEST r = req[i % 2];
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_status(WdfRequestReuse(r, &rp), STATUS_SUCCESS);
        LONGLONG off = (LONGLONG)(i % 64) * BLK;
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, r, mem[i % 2], NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(r, handoff_complete, &h);
        atomic_store(&h.hold_ns, (long)i * HOLD_STEP_NS % HOLD_MAX_NS);
        WDF_REQUEST_SEND_OPTIONS o;
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
        ck_assert(WdfRequestSend(r, t, &o));
        double t0 = tu_now_ms();
        while (atomic_load(&h.done) <= i && tu_now_ms() - t0 < WAIT_MS)
            if (vg)
                sched_yield();
        ck_assert_msg(atomic_load(&h.done) > i, "round %d: the read never completed", i);
        ck_assert_status(h.status, STATUS_SUCCESS);
    }
    double t0 = tu_now_ms();
    while (atomic_load(&h.left) < rounds && tu_now_ms() - t0 < WAIT_MS)
        tu_sleep_ms(1); /* the last routine's hold */
    ck_assert_int_eq(atomic_load(&h.left), rounds);
    for (int i = 0; i < 2; i++) {
        WdfObjectDelete(req[i]);
        WdfObjectDelete(mem[i]);
    }
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* Last: the OSD killed under held requests (MemStore loses its objects
 * with it). Each fails once with STATUS_IO_TIMEOUT after the OSD op
 * timeout, so do later ones, and the target closes without hanging (librbd
 * drops its watch on the image header, an OSD op, bounded by the same
 * timeout). */
START_TEST(killed_osd_fails_requests_after_the_op_timeout)
{
    struct tu_env e;
    tu_env_init(&e);
    const char *image = make_image("kill", 1 << 20);
    char extra[64];
    snprintf(extra, sizeof(extra), ":rados_osd_op_timeout=%d", OP_TIMEOUT_S);
    WDFIOTARGET t = open_rw(&e, image, extra);
    unsigned char *buf = calloc(1, BLK);
    ck_assert_status(tu_sync_rw(t, true, buf, BLK, 0, NULL), STATUS_SUCCESS);
    osd_stop();
    struct tu_late l[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++)
        tu_late_send(t, &l[i], BLK, 0);
    double t0 = tu_now_ms();
    ck_assert_int_eq(kill(osd_pid, SIGKILL), 0);
    for (int i = 0; i < INFLIGHT; i++) {
        ck_assert_msg(tu_completion_wait(&l[i].c, OP_TIMEOUT_S * 1000 + (int)OP_TIMEOUT_SLACK_MS),
                      "request %d never completed", i);
        ck_assert_status(l[i].c.status, STATUS_IO_TIMEOUT);
    }
    ck_assert_msg(tu_now_ms() - t0 < OP_TIMEOUT_S * 1000.0 + OP_TIMEOUT_SLACK_MS, "took %.0f ms",
                  tu_now_ms() - t0);
    tu_sleep_ms(50);
    for (int i = 0; i < INFLIGHT; i++) {
        ck_assert_int_eq(tu_ncalls(&l[i].c), 1);
        ck_assert(tu_all_bytes(l[i].buf, BLK, TU_UNTOUCHED));
        tu_late_fini(&l[i]);
    }
    ck_assert_status(tu_sync_rw(t, false, buf, BLK, 0, NULL), STATUS_IO_TIMEOUT);
    t0 = tu_now_ms();
    WdfIoTargetClose(t);
    ck_assert_msg(tu_now_ms() - t0 < OP_TIMEOUT_S * 1000.0 + OP_TIMEOUT_SLACK_MS, "the close took %.0f ms",
                  tu_now_ms() - t0);
    free(buf);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

int main(void)
{
    conf = getenv("CEPH_CONF");
    pool = getenv("UWDF_CEPH_POOL");
    const char *pid = getenv("UWDF_CEPH_OSD_PID");
    if (!tu_rbd_available() || !pid) {
        fprintf(stderr, "SKIP: needs a uwdf with librbd, run under tests/remote/ceph-cluster "
                        "(tests/remote/test_rbd does)\n");
        return EXIT_SKIP;
    }
    osd_pid = (pid_t)atoi(pid);
    Suite *s = suite_create("rbd");
    TCase *tc = tu_tcase(s, "rbd", TEST_TIMEOUT_SEC);
    tcase_add_checked_fixture(tc, osd_resume_setup, NULL);
    tcase_add_test(tc, writes_read_back_with_rbd_export);
    tcase_add_test(tc, rbd_import_reads_back_and_the_end_is_a_block_device);
    tcase_add_test(tc, requests_over_the_chunk_run_as_pieces);
    tcase_add_test(tc, flush_discard_and_zero);
    tcase_add_test(tc, snapshot_is_read_only);
    tcase_add_test(tc, bad_names_fail_the_open_with_a_reason);
    tcase_add_test(tc, one_connection_per_configuration);
    tcase_add_test(tc, write_through_is_a_write_and_a_flush);
    tcase_add_loop_test(tc, timeout_and_cancel_with_the_osd_stopped_leave_the_buffer, 0, 2);
    tcase_add_test(tc, osd_op_timeout_bounds_requests_and_close);
    tcase_add_test(tc, exactly_once_under_load);
    tcase_add_test(tc, engine_sleeps_after_completions);
    tcase_add_test(tc, round_trips_cost_the_engine_no_eventfd_read);
    tcase_add_test(tc, sends_from_another_thread_wake_the_engine);
    /* UWDF_RBD_KEEP_OSD=1 leaves the OSD alive, for another run on the
     * same cluster (ceph-cluster start DIR; . DIR/env; tests/test_rbd). */
    if (!getenv("UWDF_RBD_KEEP_OSD"))
        tcase_add_test(tc, killed_osd_fails_requests_after_the_op_timeout);
    return tu_main(s, "test_rbd");
}
