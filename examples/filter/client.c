/* The filter's client: a disk stack over a real file or block device,
 * built as an INF would describe it (the disk function driver, the
 * filter above it, the Linux path as the hardware), used through a
 * WDFIOTARGET opened by the disk's interface, which opens the top of the
 * stack: the filter. Synchronous and asynchronous writes and reads are
 * checked byte for byte, also against the device itself read directly
 * from Linux; the filter's counters against what was sent; then removal,
 * unload, object counts flat. Exit status 0 when everything matched.
 *
 * Usage: client [--engine=io_uring|libaio] [--path=FILE-OR-BLOCK-DEVICE]
 *               [--disk=PATH/disk.so] [--filter=PATH/filter.so]
 * Without --path the client makes (and removes) an 8 MiB file. The medium
 * is overwritten. */
#define _GNU_SOURCE /* O_DIRECT */
#include <initguid.h>

#include "../common/host.h"
#include "public.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DISK_DRIVER_SO
#define DISK_DRIVER_SO "disk.so"
#endif
#ifndef FILTER_DRIVER_SO
#define FILTER_DRIVER_SO "filter.so"
#endif

#define BLOCK 4096
#define WAIT_MS 10000
#define ASYNC 32

static const char *arg(int argc, char **argv, const char *name, const char *dflt)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
            return argv[i] + n + 1;
    return dflt;
}

static void fill(unsigned char *buf, size_t len, unsigned seed, LONGLONG offset)
{
    for (size_t i = 0; i < len; i++) {
        unsigned long long at = (unsigned long long)offset + i;
        buf[i] = (unsigned char)(seed * 151u + at * 31u + (at >> 9));
    }
}

static void *aligned(size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, BLOCK, len) != 0) {
        perror("posix_memalign");
        exit(2);
    }
    return p;
}

/* The medium's size, as Linux sees it. */
static LONGLONG medium_length(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    unsigned long long bytes = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        exit(2);
    }
    if (S_ISBLK(st.st_mode))
        ioctl(fd, BLKGETSIZE64, &bytes);
    else
        bytes = (unsigned long long)st.st_size;
    close(fd);
    return (LONGLONG)bytes;
}

/* What the medium holds at offset, read by Linux past any cache. */
static void expect_on_medium(const char *path, LONGLONG offset, const unsigned char *want, size_t len)
{
    unsigned char *got = aligned(len);
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0)
        fd = open(path, O_RDONLY); /* (a file system without O_DIRECT) */
    ssize_t n = fd >= 0 ? pread(fd, got, len, offset) : -1;
    if (!CHECK(n == (ssize_t)len && memcmp(got, want, len) == 0))
        fprintf(stderr, "%s at %lld: not what was written through the stack\n", path, (long long)offset);
    if (fd >= 0)
        close(fd);
    free(got);
}

static NTSTATUS rw(WDFIOTARGET t, bool write, void *buf, size_t len, LONGLONG offset, ULONG_PTR *done)
{
    WDF_MEMORY_DESCRIPTOR md;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, buf, (ULONG)len);
    return write ? WdfIoTargetSendWriteSynchronously(t, NULL, &md, &offset, NULL, done)
                 : WdfIoTargetSendReadSynchronously(t, NULL, &md, &offset, NULL, done);
}

static NTSTATUS statistics(WDFIOTARGET t, FILTER_STATISTICS *s)
{
    WDF_MEMORY_DESCRIPTOR md;
    ULONG_PTR n = 0;
    memset(s, 0, sizeof(*s));
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, s, sizeof(*s));
    NTSTATUS st = WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_FILTER_GET_STATISTICS, NULL, &md, NULL, &n);
    CHECK(!NT_SUCCESS(st) || n == sizeof(*s));
    return st;
}

int main(int argc, char **argv)
{
    const char *engine = host_engine_arg(argc, argv);
    const char *path = arg(argc, argv, "--path", NULL);
    const char *disk_so = arg(argc, argv, "--disk", DISK_DRIVER_SO);
    const char *filter_so = arg(argc, argv, "--filter", FILTER_DRIVER_SO);
    char made[256] = "";
    if (!path) {
        snprintf(made, sizeof(made), "%s/uwdf-filter-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        int fd = mkstemp(made);
        if (fd < 0 || ftruncate(fd, 8 << 20) != 0) {
            perror(made);
            return 2;
        }
        close(fd);
        path = made;
    }
    LONGLONG length = medium_length(path);
    if (length < 64 * BLOCK) {
        fprintf(stderr, "%s: too small (%lld bytes)\n", path, (long long)length);
        return 2;
    }
    host_init(engine, "");

    struct host_counts before;
    host_counts_take(&before);
    WDFDRIVER disk = NULL, filter = NULL;
    if (!CHECK_STATUS(UwdfLoadDriverFromFile(disk_so, "uwdfdisk", &disk), STATUS_SUCCESS) ||
        !CHECK_STATUS(UwdfLoadDriverFromFile(filter_so, "uwdffilter", &filter), STATUS_SUCCESS))
        return 1;
    TRACE_EXPECT("disk: DriverEntry", "filter: DriverEntry");

    /* as an INF puts it: the disk driver, an upper filter, the hardware */
    static const char *const upper[] = { "uwdffilter" };
    UWDF_DEVICE_DESCRIPTION desc;
    UWDF_DEVICE_DESCRIPTION_INIT(&desc, "root\\uwdfdisk", "uwdfdisk");
    desc.HardwarePath = path;
    desc.UpperFilters = upper;
    desc.UpperFilterCount = 1;
    UWDF_DEVNODE node = NULL;
    if (!CHECK_STATUS(UwdfDeviceArrive(&desc, &node), STATUS_SUCCESS))
        return 1;
    /* the stack is built bottom-up, then started bottom-up */
    char prepared[64];
    snprintf(prepared, sizeof(prepared), "disk: PrepareHardware %lld bytes", (long long)length);
    const char *const started[] = { "disk: DeviceAdd", "filter: DeviceAdd", prepared };
    host_trace_expect(started, 3, __FILE__, __LINE__);
    WDFIOTARGET hardware = WdfDeviceGetIoTarget(UwdfDevNodeGetDevice(node, "uwdfdisk"));
    if (engine)
        CHECK(strcmp(UwdfIoTargetGetBackendName(hardware), engine) == 0);
    CHECK(UwdfDevNodeGetDevice(node, NULL) == UwdfDevNodeGetDevice(node, "uwdffilter"));

    char link[256];
    host_first_interface(&GUID_DEVINTERFACE_UWDF_SAMPLE_DISK, link, sizeof(link));
    WDFIOTARGET t = NULL;
    if (!CHECK_STATUS(host_open(link, &t), STATUS_SUCCESS))
        return 1;

    FILTER_STATISTICS want;
    memset(&want, 0, sizeof(want));

    /* an IOCTL the filter passes down send-and-forget, the disk answers */
    GET_LENGTH_INFORMATION li;
    WDF_MEMORY_DESCRIPTOR md;
    ULONG_PTR n = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, &li, sizeof(li));
    CHECK_STATUS(WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_DISK_GET_LENGTH_INFO, NULL, &md, NULL, &n),
                 STATUS_SUCCESS);
    CHECK(n == sizeof(li) && li.Length.QuadPart == length);
    want.DeviceControls++;

    /* synchronous: the first blocks, the middle, the last */
    const LONGLONG offsets[] = { 0, 5 * BLOCK, length / 2, length - 2 * BLOCK };
    unsigned char *w = aligned(2 * BLOCK), *r = aligned(2 * BLOCK);
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        fill(w, 2 * BLOCK, 1, offsets[i]);
        CHECK_STATUS(rw(t, true, w, 2 * BLOCK, offsets[i], &n), STATUS_SUCCESS);
        CHECK(n == 2 * BLOCK);
        memset(r, 0, 2 * BLOCK);
        CHECK_STATUS(rw(t, false, r, 2 * BLOCK, offsets[i], &n), STATUS_SUCCESS);
        CHECK(n == 2 * BLOCK && memcmp(r, w, 2 * BLOCK) == 0);
        expect_on_medium(path, offsets[i], w, 2 * BLOCK);
        want.Writes++, want.Reads++;
        want.BytesWritten += 2 * BLOCK, want.BytesRead += 2 * BLOCK;
    }
    /* past the end: the disk refuses, the filter counts a failure */
    CHECK_STATUS(rw(t, false, r, 2 * BLOCK, length - BLOCK, &n), STATUS_INVALID_PARAMETER);
    want.Reads++, want.Failed++;

    /* asynchronous: ASYNC writes in flight at once, then ASYNC reads */
    static struct host_io io[ASYNC];
    unsigned char *bufs = aligned((size_t)ASYNC * BLOCK), *back = aligned((size_t)ASYNC * BLOCK);
    const LONGLONG base = 16 * BLOCK;
    for (int i = 0; i < ASYNC; i++) {
        LONGLONG off = base + (LONGLONG)i * BLOCK;
        fill(bufs + (size_t)i * BLOCK, BLOCK, 2, off);
        host_io_start(&io[i], t, HOST_IO_WRITE, bufs + (size_t)i * BLOCK, BLOCK, off);
    }
    for (int i = 0; i < ASYNC; i++) {
        host_io_wait(&io[i], WAIT_MS);
        CHECK_STATUS(io[i].status, STATUS_SUCCESS);
        CHECK(io[i].information == BLOCK);
        host_io_fini(&io[i]);
    }
    memset(back, 0, (size_t)ASYNC * BLOCK);
    for (int i = 0; i < ASYNC; i++)
        host_io_start(&io[i], t, HOST_IO_READ, back + (size_t)i * BLOCK, BLOCK, base + (LONGLONG)i * BLOCK);
    for (int i = 0; i < ASYNC; i++) {
        host_io_wait(&io[i], WAIT_MS);
        CHECK_STATUS(io[i].status, STATUS_SUCCESS);
        CHECK(io[i].information == BLOCK);
        host_io_fini(&io[i]);
    }
    CHECK(memcmp(back, bufs, (size_t)ASYNC * BLOCK) == 0);
    expect_on_medium(path, base, bufs, (size_t)ASYNC * BLOCK);
    want.Writes += ASYNC, want.Reads += ASYNC;
    want.BytesWritten += (LONGLONG)ASYNC * BLOCK, want.BytesRead += (LONGLONG)ASYNC * BLOCK;

    /* what passed through the filter, exactly */
    FILTER_STATISTICS got;
    if (CHECK_STATUS(statistics(t, &got), STATUS_SUCCESS) && !CHECK(memcmp(&got, &want, sizeof(got)) == 0))
        fprintf(stderr,
                "filter counted reads %lld writes %lld ioctls %lld read %lld written %lld failed %lld;\n"
                "expected       reads %lld writes %lld ioctls %lld read %lld written %lld failed %lld\n",
                (long long)got.Reads, (long long)got.Writes, (long long)got.DeviceControls,
                (long long)got.BytesRead, (long long)got.BytesWritten, (long long)got.Failed,
                (long long)want.Reads, (long long)want.Writes, (long long)want.DeviceControls,
                (long long)want.BytesRead, (long long)want.BytesWritten, (long long)want.Failed);
    WdfObjectDelete(t);

    /* removal goes top-down: only the disk has a callback for it */
    CHECK_STATUS(UwdfDeviceRemove(node), STATUS_SUCCESS);
    TRACE_EXPECT("disk: ReleaseHardware");
    CHECK_STATUS(UwdfUnloadDriver(filter), STATUS_SUCCESS);
    CHECK_STATUS(UwdfUnloadDriver(disk), STATUS_SUCCESS);
    host_trace_reset();
    COUNTS_FLAT(&before);
    host_fini();
    free(w);
    free(r);
    free(bufs);
    free(back);
    if (made[0])
        unlink(made);
    if (host_failures()) {
        fprintf(stderr, "filter client (%s, %s): %d check(s) failed\n", path, engine ? engine : "default engine",
                host_failures());
        return 1;
    }
    printf("filter client (%s, %s): all checks passed\n", path, engine ? engine : "default engine");
    return 0;
}
