/* The host of Microsoft's KMDF samples (tests/samples/ms-samples builds
 * them from a Windows-driver-samples checkout and runs this program).
 *
 *   ms-host [-v] ECHO.so NONPNP.so FILTER.so HARDWARE WINROOT
 *
 * It loads each sample with UwdfLoadDriverFromFile, makes its device
 * arrive, and drives it as the sample's own test application does
 * (general/echo/kmdf/exe/echoapp.cpp, general/ioctl/kmdf/exe/testapp.c,
 * and for the toaster filter a client of the stack it sits in), once on
 * each local engine. HARDWARE is a file or block device for the filter's
 * stack; WINROOT the directory made the Windows path root (nonpnp's log
 * file goes to \SystemRoot\temp in it). One "ok"/"FAIL" line per check;
 * the exit status is 1 if any failed. -v shows the drivers' debug output.
 *
 * What is checked is what the samples' documentation promises; the values
 * they return are facts about the samples, written down here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <initguid.h>
#include <uwdf.h>
#include <wdf.h>
#include <ntstrsafe.h>
#include <wdmsec.h>

#include "tu_forwarder.h"

static int failures;
static int verbose;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (cond) {                                                                                          \
            printf("ok   ");                                                                                 \
        } else {                                                                                             \
            printf("FAIL ");                                                                                 \
            failures++;                                                                                      \
        }                                                                                                    \
        printf(__VA_ARGS__);                                                                                 \
        printf("\n");                                                                                        \
        fflush(stdout);                                                                                      \
    } while (0)
#define CHECK_STATUS(got, want, what)                                                                        \
    do {                                                                                                     \
        NTSTATUS got_ = (got);                                                                               \
        CHECK(got_ == (want), "%s: %s (0x%08X), expected %s", what, UwdfNtStatusName(got_) ?: "?",           \
              (unsigned)got_, #want);                                                                        \
    } while (0)

/* ---- the drivers' debug output, counted by what it says ---- */

/* The debug output since log_forget, as one text: drivers print a line in
 * pieces (nonpnp's PrintChars prints a character at a time). */
static char seen[1 << 16];
static size_t seen_len;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static VOID on_log(UWDF_LOG_LEVEL level, PCSTR message, PVOID context)
{
    (void)context;
    if (level == UwdfLogDebugPrint) {
        size_t n = strlen(message);
        pthread_mutex_lock(&seen_lock);
        if (seen_len + n >= sizeof(seen)) /* keep the newer half */
            seen_len = 0;
        memcpy(seen + seen_len, message, n < sizeof(seen) - 1 ? n : sizeof(seen) - 1);
        seen_len += n < sizeof(seen) - 1 ? n : sizeof(seen) - 1;
        seen[seen_len] = '\0';
        pthread_mutex_unlock(&seen_lock);
    }
    if (verbose || level < UwdfLogDebugPrint)
        fprintf(stderr, "uwdf: %s%s", message, level == UwdfLogDebugPrint ? "" : "\n");
}

/* Whether the debug output since log_forget contains text. */
static bool log_has(const char *text)
{
    pthread_mutex_lock(&seen_lock);
    bool found = strstr(seen, text) != NULL;
    pthread_mutex_unlock(&seen_lock);
    return found;
}

static void log_forget(void)
{
    pthread_mutex_lock(&seen_lock);
    seen_len = 0;
    seen[0] = '\0';
    pthread_mutex_unlock(&seen_lock);
}

/* ---- the client: a driver of our own that opens targets ---- */

static WDFDEVICE client;

static NTSTATUS open_target(const char *name, WDFIOTARGET *target)
{
    NTSTATUS status = WdfIoTargetCreate(client, WDF_NO_OBJECT_ATTRIBUTES, target);
    if (!NT_SUCCESS(status))
        return status;
    status = tu_open_name(*target, name, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0);
    if (!NT_SUCCESS(status)) {
        WdfObjectDelete(*target);
        *target = NULL;
    }
    return status;
}

/* The first symbolic link of an interface class (UTF-8), or "". */
static void interface_link(const GUID *guid, char *out, size_t len)
{
    PZZWSTR list = NULL;
    out[0] = '\0';
    if (!NT_SUCCESS(IoGetDeviceInterfaces(guid, NULL, 0, &list)))
        return;
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, list);
    RtlStringCbPrintfA(out, len, "%wZ", &us);
    ExFreePool(list);
}

static NTSTATUS rw(WDFIOTARGET t, bool write, void *buf, size_t len, LONGLONG off, ULONG_PTR *got)
{
    WDF_MEMORY_DESCRIPTOR md;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, buf, (ULONG)len);
    *got = 0;
    return write ? WdfIoTargetSendWriteSynchronously(t, NULL, &md, &off, NULL, got)
                 : WdfIoTargetSendReadSynchronously(t, NULL, &md, &off, NULL, got);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)((i * 131u + seed * 7u) % 251u);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An asynchronous read on t, its completion signalled on an event. */
struct async_read {
    WDFREQUEST request;
    WDFMEMORY memory;
    KEVENT done;
    NTSTATUS status;
    ULONG_PTR information;
};

static VOID async_read_done(WDFREQUEST request, WDFIOTARGET target, PWDF_REQUEST_COMPLETION_PARAMS params,
                            WDFCONTEXT context)
{
    (void)request;
    (void)target;
    struct async_read *a = context;
    a->status = params->IoStatus.Status;
    a->information = params->IoStatus.Information;
    KeSetEvent(&a->done, IO_NO_INCREMENT, FALSE);
}

static NTSTATUS async_read_send(WDFIOTARGET t, struct async_read *a, size_t len)
{
    memset(a, 0, sizeof(*a));
    KeInitializeEvent(&a->done, NotificationEvent, FALSE);
    NTSTATUS status = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &a->request);
    if (!NT_SUCCESS(status))
        return status;
    status = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, len, &a->memory, NULL);
    if (NT_SUCCESS(status))
        status = WdfIoTargetFormatRequestForRead(t, a->request, a->memory, NULL, NULL);
    if (NT_SUCCESS(status)) {
        WdfRequestSetCompletionRoutine(a->request, async_read_done, a);
        if (!WdfRequestSend(a->request, t, WDF_NO_SEND_OPTIONS))
            status = WdfRequestGetStatus(a->request);
    }
    if (!NT_SUCCESS(status)) {
        if (a->memory)
            WdfObjectDelete(a->memory);
        WdfObjectDelete(a->request);
    }
    return status;
}

/* Waits up to ms for the read; TRUE if it completed. */
static bool async_read_wait(struct async_read *a, LONGLONG ms)
{
    LARGE_INTEGER timeout;
    timeout.QuadPart = -ms * 10000;
    return KeWaitForSingleObject(&a->done, Executive, KernelMode, FALSE, &timeout) == STATUS_SUCCESS;
}

static void async_read_free(struct async_read *a)
{
    WdfObjectDelete(a->request);
    WdfObjectDelete(a->memory);
}

/* ---- general/echo/kmdf/driver/AutoSync ---- */

/* GUID_DEVINTERFACE_ECHO, from the sample's public.h. */
DEFINE_GUID(MS_GUID_DEVINTERFACE_ECHO, 0xcdc35b6e, 0xbe4, 0x4936, 0xbf, 0x5f, 0x55, 0x37, 0x38, 0xa, 0x7c, 0x1a);
#define ECHO_MAX_WRITE_LENGTH (1024 * 40) /* queue.h */
#define ECHO_TIMER_PERIOD_S 2             /* queue.h: TIMER_PERIOD, 2000 ms */

static void test_echo(const char *so)
{
    WDFDRIVER drv;
    NTSTATUS status = UwdfLoadDriverFromFile(so, "echo", &drv);
    CHECK_STATUS(status, STATUS_SUCCESS, "echo: UwdfLoadDriverFromFile");
    if (!NT_SUCCESS(status))
        return;
    UWDF_DEVICE_DESCRIPTION d;
    UWDF_DEVICE_DESCRIPTION_INIT(&d, "root\\ECHO", "echo");
    UWDF_DEVNODE node;
    status = UwdfDeviceArrive(&d, &node);
    CHECK_STATUS(status, STATUS_SUCCESS, "echo: the device arrives");
    if (!NT_SUCCESS(status)) {
        UwdfUnloadDriver(drv);
        return;
    }
    char link[256];
    interface_link(&MS_GUID_DEVINTERFACE_ECHO, link, sizeof(link));
    CHECK(link[0] != '\0', "echo: GUID_DEVINTERFACE_ECHO is registered (%s)", link);
    WDFIOTARGET t = NULL;
    if (link[0]) {
        status = open_target(link, &t);
        CHECK_STATUS(status, STATUS_SUCCESS, "echo: open by the interface's link");
    }
    if (t) {
        unsigned char w[4096], r[4096];
        ULONG_PTR got;
        /* "If the driver hasn't received any write request earlier, the
         * read returns zero." */
        CHECK_STATUS(rw(t, false, r, 512, 0, &got), STATUS_SUCCESS, "echo: a read before any write");
        CHECK(got == 0, "echo: ... returns 0 bytes (got %lu)", (unsigned long)got);

        /* echoapp: a write, then a read of the same length, compared;
         * the periodic timer completes each (within its period). */
        fill(w, sizeof(w), 1);
        double t0 = now_s();
        CHECK_STATUS(rw(t, true, w, sizeof(w), 0, &got), STATUS_SUCCESS, "echo: write 4096 bytes");
        CHECK(got == sizeof(w), "echo: ... writes 4096 (got %lu)", (unsigned long)got);
        memset(r, 0, sizeof(r));
        CHECK_STATUS(rw(t, false, r, sizeof(r), 0, &got), STATUS_SUCCESS, "echo: read it back");
        double took = now_s() - t0;
        CHECK(got == sizeof(r) && memcmp(w, r, sizeof(r)) == 0, "echo: ... the same 4096 bytes (got %lu)",
              (unsigned long)got);
        CHECK(took < 2 * ECHO_TIMER_PERIOD_S + 1.5, "echo: the timer completed both in %.1f s (period %d s)",
              took, ECHO_TIMER_PERIOD_S);
        /* a shorter read gets what fits; a longer one what was written */
        CHECK_STATUS(rw(t, false, r, 100, 0, &got), STATUS_SUCCESS, "echo: a shorter read");
        CHECK(got == 100 && memcmp(w, r, 100) == 0, "echo: ... its first 100 bytes");

        /* a write above MAX_WRITE_LENGTH: STATUS_BUFFER_OVERFLOW */
        unsigned char *big = calloc(1, ECHO_MAX_WRITE_LENGTH + 1);
        CHECK_STATUS(rw(t, true, big, ECHO_MAX_WRITE_LENGTH + 1, 0, &got), STATUS_BUFFER_OVERFLOW,
                     "echo: a write above MAX_WRITE_LENGTH");
        free(big);

        /* Cancellation: the read the driver holds (marked cancelable)
         * completes with STATUS_CANCELLED through EchoEvtRequestCancel when
         * the client cancels it, before the timer. The timer may complete
         * it first if it fires between send and cancel: try again then. */
        NTSTATUS cancelled = STATUS_PENDING;
        for (int attempt = 0; attempt < 4 && cancelled != STATUS_CANCELLED; attempt++) {
            struct async_read a;
            status = async_read_send(t, &a, 64);
            if (!NT_SUCCESS(status)) {
                cancelled = status;
                break;
            }
            usleep(50 * 1000);
            log_forget();
            WdfRequestCancelSentRequest(a.request);
            bool done = async_read_wait(&a, 1000);
            cancelled = done ? a.status : STATUS_TIMEOUT;
            if (!done)
                async_read_wait(&a, 10000);
            async_read_free(&a);
        }
        CHECK_STATUS(cancelled, STATUS_CANCELLED, "echo: a cancelled read completes at once");
        CHECK(log_has("EchoEvtRequestCancel called"), "echo: ... through EchoEvtRequestCancel");

        /* Power: EvtDeviceSelfManagedIoSuspend stops the queue and the
         * timer; a read sent in D3 waits, and completes after D0. */
        status = UwdfDeviceSetPowerState(node, WdfPowerDeviceD3);
        CHECK_STATUS(status, STATUS_SUCCESS, "echo: to D3");
        struct async_read a;
        status = async_read_send(t, &a, 64);
        CHECK_STATUS(status, STATUS_SUCCESS, "echo: a read sent in D3");
        if (NT_SUCCESS(status)) {
            CHECK(!async_read_wait(&a, 2 * ECHO_TIMER_PERIOD_S * 1000 + 500),
                  "echo: ... waits while the queue and timer are stopped");
            CHECK_STATUS(UwdfDeviceSetPowerState(node, WdfPowerDeviceD0), STATUS_SUCCESS, "echo: back to D0");
            bool done = async_read_wait(&a, 3 * ECHO_TIMER_PERIOD_S * 1000);
            CHECK(done && a.status == STATUS_SUCCESS && a.information == 64,
                  "echo: ... then completes (0x%08X, %lu bytes)", (unsigned)a.status, (unsigned long)a.information);
            if (!done)
                async_read_wait(&a, 10000);
            async_read_free(&a);
        } else {
            UwdfDeviceSetPowerState(node, WdfPowerDeviceD0);
        }
        WdfObjectDelete(t);
    }
    CHECK_STATUS(UwdfDeviceRemove(node), STATUS_SUCCESS, "echo: orderly removal");
    CHECK_STATUS(UwdfUnloadDriver(drv), STATUS_SUCCESS, "echo: unload");
}

/* ---- general/ioctl/kmdf/sys (nonpnp) ---- */

/* public.h: FILEIO_TYPE 40001, functions 0x900..0x903. */
#define NONPNP_IOCTL(fn, method) CTL_CODE(40001, fn, method, FILE_ANY_ACCESS)
#define IOCTL_NONPNP_METHOD_IN_DIRECT NONPNP_IOCTL(0x900, METHOD_IN_DIRECT)
#define IOCTL_NONPNP_METHOD_OUT_DIRECT NONPNP_IOCTL(0x901, METHOD_OUT_DIRECT)
#define IOCTL_NONPNP_METHOD_BUFFERED NONPNP_IOCTL(0x902, METHOD_BUFFERED)
#define IOCTL_NONPNP_METHOD_NEITHER NONPNP_IOCTL(0x903, METHOD_NEITHER)
/* The driver's answer (nonpnp.c), with its NUL. */
static const char nonpnp_data[] = "this String is from Device Driver !!!";

static NTSTATUS send_ioctl(WDFIOTARGET t, ULONG code, void *in, size_t in_len, void *out, size_t out_len,
                      ULONG_PTR *got)
{
    WDF_MEMORY_DESCRIPTOR min, mout;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&min, in, (ULONG)in_len);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&mout, out, (ULONG)out_len);
    *got = 0;
    return WdfIoTargetSendIoctlSynchronously(t, NULL, code, &min, &mout, NULL, got);
}

/* testapp.c's DoIoctls, each answer checked. */
static void nonpnp_ioctls(WDFIOTARGET t)
{
    static const struct {
        const char *name;
        ULONG code;
        bool answers; /* the driver writes nonpnp_data to the output */
    } methods[] = {
        { "METHOD_BUFFERED", IOCTL_NONPNP_METHOD_BUFFERED, true },
        { "METHOD_NEITHER", IOCTL_NONPNP_METHOD_NEITHER, true },
        { "METHOD_IN_DIRECT", IOCTL_NONPNP_METHOD_IN_DIRECT, false },
        { "METHOD_OUT_DIRECT", IOCTL_NONPNP_METHOD_OUT_DIRECT, true },
    };
    for (size_t i = 0; i < RTL_NUMBER_OF(methods); i++) {
        char in[200], out[100];
        ULONG_PTR got;
        snprintf(in, sizeof(in), "this String is from User Application; using %s", methods[i].name);
        if (methods[i].answers)
            memset(out, 0, sizeof(out));
        else
            snprintf(out, sizeof(out), "This String is from User Application in OutBuffer; using %s",
                     methods[i].name);
        char before[100];
        memcpy(before, out, sizeof(out));
        log_forget();
        NTSTATUS status = send_ioctl(t, methods[i].code, in, strlen(in) + 1, out, sizeof(out), &got);
        CHECK(status == STATUS_SUCCESS, "nonpnp: %s: %s", methods[i].name, UwdfNtStatusName(status) ?: "?");
        if (methods[i].answers) {
            CHECK(got == sizeof(nonpnp_data) && strcmp(out, nonpnp_data) == 0,
                  "nonpnp: ... OutBuffer (%lu): %.60s", (unsigned long)got, out);
        } else {
            /* IN_DIRECT: the output buffer carries data to the driver,
             * which reports its length and leaves it as it was */
            CHECK(got == sizeof(out) && memcmp(out, before, sizeof(out)) == 0,
                  "nonpnp: ... %lu bytes transferred from OutBuffer", (unsigned long)got);
        }
        /* the driver's PrintChars saw the application's string */
        CHECK(log_has("this String is from User Application"), "nonpnp: ... the driver read the input");
    }
    /* the driver refuses a zero-length buffer, and an IOCTL it does not know */
    char buf[16] = "x";
    ULONG_PTR got;
    CHECK_STATUS(send_ioctl(t, IOCTL_NONPNP_METHOD_BUFFERED, buf, sizeof(buf), NULL, 0, &got),
                 STATUS_INVALID_PARAMETER, "nonpnp: no output buffer");
    CHECK_STATUS(send_ioctl(t, NONPNP_IOCTL(0x904, METHOD_BUFFERED), buf, sizeof(buf), buf, sizeof(buf), &got),
                 STATUS_INVALID_DEVICE_REQUEST, "nonpnp: an unknown IOCTL");
}

static void test_nonpnp(const char *so, const char *winroot)
{
    WDFDRIVER drv;
    NTSTATUS status = UwdfLoadDriverFromFile(so, "NONPNP", &drv);
    CHECK_STATUS(status, STATUS_SUCCESS, "nonpnp: UwdfLoadDriverFromFile");
    if (!NT_SUCCESS(status))
        return;
    /* testapp opens "\\.\NONPNP\nonpnpsamp.log": the driver's symbolic
     * link, with a file name it opens under \SystemRoot\temp */
    WDFIOTARGET t = NULL;
    status = open_target("\\??\\NONPNP\\nonpnpsamp.log", &t);
    CHECK_STATUS(status, STATUS_SUCCESS, "nonpnp: open \\??\\NONPNP\\nonpnpsamp.log");
    if (t) {
        nonpnp_ioctls(t);
        /* testapp's DoFileReadWrite: a write of a random length, a read
         * of it, compared; the driver keeps it in its log file */
        srand((unsigned)time(NULL));
        size_t len = 0;
        while (len == 0)
            len = (size_t)(rand() % 32768);
        unsigned char *w = malloc(len), *r = calloc(1, len);
        for (size_t i = 0; i < len; i++)
            w[i] = (unsigned char)(rand() % 255);
        ULONG_PTR wrote = 0, got = 0;
        CHECK_STATUS(rw(t, true, w, len, 0, &wrote), STATUS_SUCCESS, "nonpnp: write to the file");
        CHECK_STATUS(rw(t, false, r, len, 0, &got), STATUS_SUCCESS, "nonpnp: read the same file");
        CHECK(wrote == len && got == wrote && memcmp(w, r, len) == 0,
              "nonpnp: ... %zu bytes written and read back the same (%lu, %lu)", len, (unsigned long)wrote,
              (unsigned long)got);
        char path[4096];
        snprintf(path, sizeof(path), "%s/C/Windows/temp/nonpnpsamp.log", winroot);
        int fd = open(path, O_RDONLY);
        CHECK(fd >= 0, "nonpnp: the driver's ZwCreateFile made %s", path);
        if (fd >= 0) {
            memset(r, 0, len);
            ssize_t n = pread(fd, r, len, 0);
            CHECK(n == (ssize_t)len && memcmp(w, r, len) == 0, "nonpnp: ... and ZwWriteFile put the data there");
            close(fd);
        }
        free(w);
        free(r);
        /* the device is exclusive (WdfDeviceInitSetExclusive): a second
         * open while the first is held is refused */
        WDFIOTARGET t2 = NULL;
        CHECK_STATUS(open_target("\\DosDevices\\NONPNP\\second.log", &t2), STATUS_ACCESS_DENIED,
                     "nonpnp: a second open of the exclusive device");
        log_forget();
        WdfObjectDelete(t);
        CHECK(log_has("NonPnpEvtFileClose"), "nonpnp: closing the target runs EvtFileClose");
        /* closed: it opens again, by the \\DosDevices\\ form of the link,
         * with another file name */
        status = open_target("\\DosDevices\\NONPNP\\second.log", &t2);
        CHECK_STATUS(status, STATUS_SUCCESS, "nonpnp: open again by \\DosDevices\\NONPNP after the close");
        snprintf(path, sizeof(path), "%s/C/Windows/temp/second.log", winroot);
        CHECK(access(path, F_OK) == 0, "nonpnp: ... which made its own file");
        if (t2)
            WdfObjectDelete(t2);
    }
    log_forget();
    UwdfSystemShutdown();
    CHECK_STATUS(UwdfUnloadDriver(drv), STATUS_SUCCESS, "nonpnp: unload");
    CHECK(log_has("NonPnpDriverUnload"), "nonpnp: ... runs its EvtDriverUnload");
}

/* ---- general/toaster/toastDrv/kmdf/filter/generic ---- */

/* The function driver under the filter (ours): a device on the hardware
 * whose queue forwards every request to its I/O target, which is the
 * hardware path, and answers one IOCTL itself. */
DEFINE_GUID(HOST_GUID_BELOW, 0x5f4d3c2b, 0x1a09, 0x4e8f, 0x9d, 0x7c, 0x6b, 0x5a, 0x49, 0x38, 0x27, 0x16);
#define IOCTL_BELOW_HELLO CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS)
static atomic_ulong below_requests;
static const char below_answer[] = "from the function driver";

static VOID below_io_default(WDFQUEUE queue, WDFREQUEST request)
{
    atomic_fetch_add(&below_requests, 1);
    tu_forward(request, WdfDeviceGetIoTarget(WdfIoQueueGetDevice(queue)), NULL);
}

static VOID below_ioctl(WDFQUEUE queue, WDFREQUEST request, size_t out_len, size_t in_len, ULONG code)
{
    (void)queue;
    (void)in_len;
    (void)out_len;
    PVOID out;
    NTSTATUS status = STATUS_INVALID_DEVICE_REQUEST;
    ULONG_PTR info = 0;
    atomic_fetch_add(&below_requests, 1);
    if (code == IOCTL_BELOW_HELLO) {
        status = WdfRequestRetrieveOutputBuffer(request, sizeof(below_answer), &out, NULL);
        if (NT_SUCCESS(status)) {
            memcpy(out, below_answer, sizeof(below_answer));
            info = sizeof(below_answer);
        }
    }
    WdfRequestCompleteWithInformation(request, status, info);
}

static NTSTATUS below_device_add(WDFDRIVER driver, PWDFDEVICE_INIT init)
{
    (void)driver;
    WDFDEVICE device;
    WdfDeviceInitSetIoType(init, WdfDeviceIoDirect);
    NTSTATUS status = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device);
    if (!NT_SUCCESS(status))
        return status;
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoDefault = below_io_default;
    qc.EvtIoDeviceControl = below_ioctl;
    status = WdfIoQueueCreate(device, &qc, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
    if (NT_SUCCESS(status))
        status = WdfDeviceCreateDeviceInterface(device, &HOST_GUID_BELOW, NULL);
    return status;
}

static NTSTATUS below_entry(PDRIVER_OBJECT driver_object, PUNICODE_STRING registry_path)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, below_device_add);
    return WdfDriverCreate(driver_object, registry_path, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}

static void filter_roundtrip(WDFIOTARGET t, int fd, size_t len, LONGLONG off, unsigned seed)
{
    unsigned char *w = malloc(len), *r = calloc(1, len), *disk = calloc(1, len);
    ULONG_PTR got;
    fill(w, len, seed);
    unsigned long before = atomic_load(&below_requests);
    CHECK_STATUS(rw(t, true, w, len, off, &got), STATUS_SUCCESS, "filter: write through the filter");
    CHECK(got == len, "filter: ... %zu bytes at %lld (got %lu)", len, (long long)off, (unsigned long)got);
    CHECK(pread(fd, disk, len, off) == (ssize_t)len && memcmp(w, disk, len) == 0,
          "filter: ... they reached the hardware");
    CHECK_STATUS(rw(t, false, r, len, off, &got), STATUS_SUCCESS, "filter: read through the filter");
    CHECK(got == len && memcmp(w, r, len) == 0, "filter: ... the same %zu bytes", len);
    CHECK(atomic_load(&below_requests) == before + 2, "filter: ... both passed the function driver below");
    free(w);
    free(r);
    free(disk);
}

static void test_filter(const char *so, const char *hardware, const char *engine)
{
    WDFDRIVER below, filter;
    NTSTATUS status = UwdfLoadDriver(below_entry, "uwdfbelow", &below);
    CHECK_STATUS(status, STATUS_SUCCESS, "filter: load the function driver");
    if (!NT_SUCCESS(status))
        return;
    status = UwdfLoadDriverFromFile(so, "filter", &filter);
    CHECK_STATUS(status, STATUS_SUCCESS, "filter: UwdfLoadDriverFromFile");
    if (!NT_SUCCESS(status)) {
        UwdfUnloadDriver(below);
        return;
    }
    /* the INF's UpperFilters */
    static PCSTR const upper[] = { "filter" };
    UWDF_DEVICE_DESCRIPTION d;
    UWDF_DEVICE_DESCRIPTION_INIT(&d, "root\\uwdfbelow", "uwdfbelow");
    d.HardwarePath = hardware;
    d.UpperFilters = upper;
    d.UpperFilterCount = 1;
    UWDF_DEVNODE node;
    status = UwdfDeviceArrive(&d, &node);
    CHECK_STATUS(status, STATUS_SUCCESS, "filter: the stack arrives");
    if (NT_SUCCESS(status)) {
        WDFDEVICE top = UwdfDevNodeGetDevice(node, NULL);
        CHECK(top != NULL && top == UwdfDevNodeGetDevice(node, "filter"), "filter: the filter is the top device");
        PCSTR backend = UwdfIoTargetGetBackendName(WdfDeviceGetIoTarget(UwdfDevNodeGetDevice(node, "uwdfbelow")));
        CHECK(backend && strcmp(backend, engine) == 0, "filter: the hardware's target runs on %s (%s)", engine,
              backend ?: "none");
        char link[256];
        interface_link(&HOST_GUID_BELOW, link, sizeof(link));
        WDFIOTARGET t = NULL;
        status = open_target(link, &t);
        CHECK_STATUS(status, STATUS_SUCCESS, "filter: open the stack by its interface");
        int fd = open(hardware, O_RDONLY);
        if (t && fd >= 0) {
            filter_roundtrip(t, fd, 4096, 0, 3);
            filter_roundtrip(t, fd, 65536, 1 << 20, 4);
            filter_roundtrip(t, fd, 512, 4096 * 3 + 512, 5);
            /* an IOCTL goes through FilterEvtIoDeviceControl, which sends
             * it on with WdfRequestFormatRequestUsingCurrentType */
            char out[64] = { 0 };
            ULONG_PTR got;
            log_forget();
            CHECK_STATUS(send_ioctl(t, IOCTL_BELOW_HELLO, NULL, 0, out, sizeof(out), &got), STATUS_SUCCESS,
                         "filter: an IOCTL through the filter");
            CHECK(got == sizeof(below_answer) && strcmp(out, below_answer) == 0,
                  "filter: ... answered by the function driver (%lu bytes)", (unsigned long)got);
            CHECK(log_has("Entered FilterEvtIoDeviceControl"), "filter: ... after FilterEvtIoDeviceControl");
        }
        if (fd >= 0)
            close(fd);
        if (t)
            WdfObjectDelete(t);
        CHECK_STATUS(UwdfDeviceRemove(node), STATUS_SUCCESS, "filter: orderly removal");
    }
    CHECK_STATUS(UwdfUnloadDriver(filter), STATUS_SUCCESS, "filter: unload the filter");
    CHECK_STATUS(UwdfUnloadDriver(below), STATUS_SUCCESS, "filter: unload the function driver");
}

static NTSTATUS client_create(WDFDRIVER *driver)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, NULL);
    config.DriverInitFlags = WdfDriverInitNonPnpDriver;
    NTSTATUS status = WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &config, driver);
    if (NT_SUCCESS(status))
        status = tu_device_create(*driver, "\\Device\\UwdfMsHost", WdfDeviceIoBuffered, NULL, NULL, &client);
    return status;
}

int main(int argc, char **argv)
{
    int a = 1;
    if (a < argc && strcmp(argv[a], "-v") == 0) {
        verbose = 1;
        a++;
    }
    if (argc - a != 5) {
        fprintf(stderr, "usage: %s [-v] ECHO.so NONPNP.so FILTER.so HARDWARE WINROOT\n", argv[0]);
        return 2;
    }
    const char *echo = argv[a], *nonpnp = argv[a + 1], *filter = argv[a + 2];
    const char *hardware = argv[a + 3], *winroot = argv[a + 4];

    UwdfSetLogCallback(on_log, NULL);
    /* KdPrint (DPFLTR_DEFAULT_ID) and the WPP shim (DPFLTR_IHVDRIVER_ID)
     * at every level: the checks read what the drivers print */
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 0xF);
    UwdfSetDebugPrintFilter(DPFLTR_IHVDRIVER_ID, 0xF);
    CHECK_STATUS(UwdfSetWindowsPathRoot(winroot), STATUS_SUCCESS, "host: the Windows path root");
    /* testapp: "Make sure you have the \SystemRoot\Temp directory" */
    static const char *const dirs[] = { "C", "C/Windows", "C/Windows/temp" };
    for (size_t i = 0; i < RTL_NUMBER_OF(dirs); i++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", winroot, dirs[i]);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            CHECK(0, "host: mkdir %s: %s", dir, strerror(errno));
    }

    WDFDRIVER driver;
    NTSTATUS status = client_create(&driver);
    CHECK_STATUS(status, STATUS_SUCCESS, "host: the client device");
    if (!NT_SUCCESS(status))
        return 1;
    static const char *const engines[] = { "io_uring", "libaio" };
    for (size_t e = 0; e < RTL_NUMBER_OF(engines); e++) {
        printf("# engine %s\n", engines[e]);
        CHECK_STATUS(UwdfSetDefaultBackend(engines[e]), STATUS_SUCCESS, "host: the default engine");
        test_echo(echo);
        test_nonpnp(nonpnp, winroot);
        test_filter(filter, hardware, engines[e]);
    }
    WdfObjectDelete(client);
    printf("%s: %d failed\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
