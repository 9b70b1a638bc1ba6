/* The control-device driver's client, as the IOCTL sample's test
 * application uses its device, from Linux: load ctldev.so (its device
 * exists from DriverEntry on: no arrival), open two sessions through the
 * symbolic link, send IOCTLs of all four transfer methods and check their
 * results byte for byte, append to and read back a session's log through
 * the device and check it against the Linux file the driver wrote with
 * ZwWriteFile beneath the Windows-path root, close the sessions
 * (cleanup, close), shut the system down, unload; the driver's log and
 * its callbacks checked in order, object counts flat at the end. Exit
 * status 0 when everything matched.
 *
 * Usage: client [PATH/ctldev.so]   (default: this build's) */
#include "../common/host.h"
#include "public.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CTLDEV_DRIVER_SO
#define CTLDEV_DRIVER_SO "ctldev.so"
#endif

#define LINK "\\DosDevices\\UwdfCtlDev"

static char root[256];

/* ---- what a session's log should hold ---- */

struct expected_log {
    char text[8192];
    size_t len;
    unsigned sequence;
};

static void log_add(struct expected_log *l, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(l->text + l->len, sizeof(l->text) - l->len, format, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n;
}

static void log_ioctl(struct expected_log *l, const char *name, size_t in, size_t out, NTSTATUS st, size_t info)
{
    log_add(l, "%03u %s in=%zu out=%zu status=0x%08X info=%zu\n", ++l->sequence, name, in, out, (unsigned)st,
            info);
}

/* The Linux file the driver wrote, whole, against what it should hold. */
static void expect_file(const char *name, const char *want, size_t len)
{
    char path[512], got[8192];
    snprintf(path, sizeof(path), "%s/C/UwdfCtlDev/%s", root, name);
    FILE *f = fopen(path, "rb");
    if (!CHECK(f != NULL)) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return;
    }
    size_t n = fread(got, 1, sizeof(got), f);
    fclose(f);
    if (!CHECK(n == len && memcmp(got, want, len) == 0))
        fprintf(stderr, "%s holds:\n%.*s\nexpected:\n%.*s\n", path, (int)n, got, (int)len, want);
}

/* ---- requests ---- */

static NTSTATUS ioctl(WDFIOTARGET t, ULONG code, void *in, size_t in_len, void *out, size_t out_len,
                      ULONG_PTR *info)
{
    WDF_MEMORY_DESCRIPTOR i, o;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&i, in, (ULONG)in_len);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&o, out, (ULONG)out_len);
    *info = 0;
    return WdfIoTargetSendIoctlSynchronously(t, NULL, code, in ? &i : NULL, out ? &o : NULL, NULL, info);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seed * 37u + i * 13u + (i >> 7));
}

static bool reversed(const unsigned char *a, const unsigned char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (a[i] != b[len - 1 - i])
            return false;
    return true;
}

/* METHOD_BUFFERED and METHOD_NEITHER reverse; METHOD_IN_DIRECT stores,
 * METHOD_OUT_DIRECT fetches back; bad lengths and offsets refused. Each
 * is logged to the session's log. */
static void every_transfer_method(WDFIOTARGET t, struct expected_log *log)
{
    unsigned char in[1000], out[1000];
    ULONG_PTR info;

    static const char text[] = "uwdf control device";
    memset(out, 0, sizeof(out));
    CHECK_STATUS(ioctl(t, IOCTL_CTLDEV_REVERSE_BUFFERED, (void *)text, sizeof(text) - 1, out, 64, &info),
                 STATUS_SUCCESS);
    CHECK(info == sizeof(text) - 1 && memcmp(out, "ecived lortnoc fdwu", info) == 0);
    log_ioctl(log, "REVERSE_BUFFERED", sizeof(text) - 1, 64, STATUS_SUCCESS, sizeof(text) - 1);
    CHECK_STATUS(ioctl(t, IOCTL_CTLDEV_REVERSE_BUFFERED, (void *)text, sizeof(text) - 1, out, 4, &info),
                 STATUS_BUFFER_TOO_SMALL);
    log_ioctl(log, "REVERSE_BUFFERED", sizeof(text) - 1, 4, STATUS_BUFFER_TOO_SMALL, 0);

    ULONG offset = 100;
    fill(in, 300, 1);
    CHECK_STATUS(ioctl(t, IOCTL_CTLDEV_STORE_IN_DIRECT, &offset, sizeof(offset), in, 300, &info), STATUS_SUCCESS);
    CHECK(info == 300);
    log_ioctl(log, "STORE_IN_DIRECT", sizeof(offset), 300, STATUS_SUCCESS, 300);
    memset(out, 0, sizeof(out));
    offset = 150;
    CHECK_STATUS(ioctl(t, IOCTL_CTLDEV_FETCH_OUT_DIRECT, &offset, sizeof(offset), out, 250, &info),
                 STATUS_SUCCESS);
    CHECK(info == 250 && memcmp(out, in + 50, 250) == 0);
    log_ioctl(log, "FETCH_OUT_DIRECT", sizeof(offset), 250, STATUS_SUCCESS, 250);
    offset = CTLDEV_STORE_SIZE - 100;
    CHECK_STATUS(ioctl(t, IOCTL_CTLDEV_FETCH_OUT_DIRECT, &offset, sizeof(offset), out, 101, &info),
                 STATUS_INVALID_PARAMETER);
    log_ioctl(log, "FETCH_OUT_DIRECT", sizeof(offset), 101, STATUS_INVALID_PARAMETER, 0);

    fill(in, sizeof(in), 2);
    memset(out, 0, sizeof(out));
    CHECK_STATUS(ioctl(t, IOCTL_CTLDEV_REVERSE_NEITHER, in, sizeof(in), out, sizeof(out), &info), STATUS_SUCCESS);
    CHECK(info == sizeof(in) && reversed(out, in, sizeof(in)));
    log_ioctl(log, "REVERSE_NEITHER", sizeof(in), sizeof(out), STATUS_SUCCESS, sizeof(in));
    /* refused in the caller's context (no output buffer): never queued,
     * never logged */
    CHECK_STATUS(ioctl(t, IOCTL_CTLDEV_REVERSE_NEITHER, in, sizeof(in), NULL, 0, &info), STATUS_BUFFER_TOO_SMALL);

    CHECK_STATUS(ioctl(t, CTL_CODE(FILE_DEVICE_UNKNOWN, 0x9FF, METHOD_BUFFERED, FILE_ANY_ACCESS), in, 8, out, 8,
                       &info),
                 STATUS_INVALID_DEVICE_REQUEST);
    log_ioctl(log, "UNKNOWN", 8, 8, STATUS_INVALID_DEVICE_REQUEST, 0);
}

/* Writes append to the session's log; reads return it from their offset,
 * the same bytes the Linux file holds. */
static void the_log_reads_back(WDFIOTARGET t, struct expected_log *log, const char *name)
{
    static const char note[] = "a note from the client\n";
    WDF_MEMORY_DESCRIPTOR md;
    ULONG_PTR n = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, (PVOID)note, sizeof(note) - 1);
    CHECK_STATUS(WdfIoTargetSendWriteSynchronously(t, NULL, &md, NULL, NULL, &n), STATUS_SUCCESS);
    CHECK(n == sizeof(note) - 1);
    log_add(log, "%s", note);

    static char got[8192];
    LONGLONG offset = 0;
    memset(got, 0, sizeof(got));
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, got, sizeof(got));
    CHECK_STATUS(WdfIoTargetSendReadSynchronously(t, NULL, &md, &offset, NULL, &n), STATUS_SUCCESS);
    if (!CHECK(n == log->len && memcmp(got, log->text, log->len) == 0))
        fprintf(stderr, "read back:\n%.*s\nexpected:\n%.*s\n", (int)n, got, (int)log->len, log->text);
    offset = 10;
    CHECK_STATUS(WdfIoTargetSendReadSynchronously(t, NULL, &md, &offset, NULL, &n), STATUS_SUCCESS);
    CHECK(n == log->len - 10 && memcmp(got, log->text + 10, n) == 0);
    offset = (LONGLONG)log->len;
    CHECK_STATUS(WdfIoTargetSendReadSynchronously(t, NULL, &md, &offset, NULL, &n), STATUS_END_OF_FILE);
    expect_file(name, log->text, log->len);
}

int main(int argc, char **argv)
{
    const char *so = argc > 1 ? argv[1] : CTLDEV_DRIVER_SO;
    /* The driver's files go beneath a Windows-path root of the client's
     * own, removed at the end. */
    snprintf(root, sizeof(root), "%s/uwdf-ctldev-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/C", root);
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        return 2;
    }
    host_init(NULL, "ctldev: ");
    CHECK_STATUS(UwdfSetWindowsPathRoot(root), STATUS_SUCCESS);

    struct host_counts before;
    host_counts_take(&before);
    WDFDRIVER driver = NULL;
    if (!CHECK_STATUS(UwdfLoadDriverFromFile(so, "uwdfctldev", &driver), STATUS_SUCCESS))
        return 1;
    TRACE_EXPECT("DriverEntry");

    /* a session needs one plain name */
    WDFIOTARGET alpha = NULL, beta = NULL, bad = NULL;
    CHECK_STATUS(host_open(LINK, &bad), STATUS_OBJECT_NAME_INVALID);
    CHECK_STATUS(host_open(LINK "\\dir\\x.log", &bad), STATUS_OBJECT_NAME_INVALID);
    TRACE_EXPECT("FileCreate 0xC0000033", "FileCreate 0xC0000033");

    /* two sessions, by the link and by the link's other spelling */
    if (!CHECK_STATUS(host_open(LINK "\\alpha.log", &alpha), STATUS_SUCCESS) ||
        !CHECK_STATUS(host_open("\\??\\UwdfCtlDev\\beta.log", &beta), STATUS_SUCCESS))
        return 1;
    TRACE_EXPECT("FileCreate 0x00000000", "FileCreate 0x00000000");

    static struct expected_log alpha_log, beta_log;
    every_transfer_method(alpha, &alpha_log);
    {
        unsigned char in[16], out[16];
        ULONG_PTR info;
        fill(in, sizeof(in), 3);
        CHECK_STATUS(ioctl(beta, IOCTL_CTLDEV_REVERSE_NEITHER, in, sizeof(in), out, sizeof(out), &info),
                     STATUS_SUCCESS);
        CHECK(info == sizeof(in) && reversed(out, in, sizeof(in)));
        log_ioctl(&beta_log, "REVERSE_NEITHER", sizeof(in), sizeof(out), STATUS_SUCCESS, sizeof(in));
    }
    the_log_reads_back(alpha, &alpha_log, "alpha.log");
    the_log_reads_back(beta, &beta_log, "beta.log");
    host_trace_reset(); /* (refusals printed on the way) */

    /* closing a session: cleanup, then close (its log is closed) */
    WdfObjectDelete(beta);
    TRACE_EXPECT("FileCleanup", "FileClose");
    WdfObjectDelete(alpha);
    TRACE_EXPECT("FileCleanup", "FileClose");
    expect_file("alpha.log", alpha_log.text, alpha_log.len);

    UwdfSystemShutdown();
    TRACE_EXPECT("Shutdown");

    CHECK_STATUS(UwdfUnloadDriver(driver), STATUS_SUCCESS);
    TRACE_EXPECT("DriverUnload");
    static const char driver_log[] = "load \\Registry\\Machine\\System\\CurrentControlSet\\Services\\uwdfctldev\n"
                                     "create alpha.log\n"
                                     "create beta.log\n"
                                     "cleanup beta.log\n"
                                     "close beta.log\n"
                                     "cleanup alpha.log\n"
                                     "close alpha.log\n"
                                     "shutdown\n"
                                     "unload\n";
    expect_file("driver.log", driver_log, sizeof(driver_log) - 1);
    /* the device and its link went with the driver */
    CHECK_STATUS(host_open(LINK "\\alpha.log", &bad), STATUS_OBJECT_NAME_NOT_FOUND);
    COUNTS_FLAT(&before);
    host_fini();

    static const char *const files[] = { "alpha.log", "beta.log", "driver.log" };
    char path[400];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/C/UwdfCtlDev/%s", root, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/C/UwdfCtlDev", root);
    rmdir(path);
    rmdir(dir);
    rmdir(root);
    if (host_failures()) {
        fprintf(stderr, "ioctl client: %d check(s) failed\n", host_failures());
        return 1;
    }
    printf("ioctl client: all checks passed\n");
    return 0;
}
