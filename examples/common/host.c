/* The example clients' shared pieces (host.h). */
#include "host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ntstrsafe.h>
#include <unistd.h>
#include <wdmsec.h>

static int failures;
static WDFDEVICE device;

bool host_check(bool ok, const char *what, const char *file, int line)
{
    if (!ok) {
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
        failures++;
    }
    return ok;
}

bool host_check_status(NTSTATUS got, NTSTATUS want, const char *what, const char *file, int line)
{
    if (got == want)
        return true;
    const char *g = UwdfNtStatusName(got), *w = UwdfNtStatusName(want);
    fprintf(stderr, "%s:%d: %s: %s (0x%08X), expected %s (0x%08X)\n", file, line, what, g ? g : "?",
            (unsigned)got, w ? w : "?", (unsigned)want);
    failures++;
    return false;
}

int host_failures(void)
{
    return failures;
}

/* ---- the driver's trace ---- */

#define TRACE_LINES 256
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static char trace[TRACE_LINES][96];
static int trace_len;
static bool trace_overflow;
static const char *trace_prefix;
static const char *const *trace_skip;

static VOID on_log(UWDF_LOG_LEVEL level, PCSTR message, PVOID context)
{
    (void)context;
    size_t plen = trace_prefix ? strlen(trace_prefix) : 0;
    if (level != UwdfLogDebugPrint || !trace_prefix || strncmp(message, trace_prefix, plen) != 0) {
        if (level != UwdfLogDebugPrint || getenv("UWDF_EXAMPLE_VERBOSE"))
            fprintf(stderr, "uwdf: %s%s", message, message[0] && message[strlen(message) - 1] == '\n' ? "" : "\n");
        return;
    }
    const char *text = message + plen;
    pthread_mutex_lock(&trace_lock);
    bool skip = false;
    for (const char *const *s = trace_skip; s && *s && !skip; s++)
        skip = strncmp(text, *s, strlen(*s)) == 0;
    if (!skip) {
        if (trace_len < TRACE_LINES) {
            snprintf(trace[trace_len], sizeof(trace[0]), "%.*s", (int)strcspn(text, "\n"), text);
            trace_len++;
        } else {
            trace_overflow = true;
        }
    }
    pthread_mutex_unlock(&trace_lock);
}

void host_trace_skip(const char *const *skip)
{
    pthread_mutex_lock(&trace_lock);
    trace_skip = skip;
    pthread_mutex_unlock(&trace_lock);
}

bool host_trace_wait(const char *line, int timeout_ms)
{
    for (int waited = 0;; waited++) {
        pthread_mutex_lock(&trace_lock);
        bool seen = false;
        for (int i = 0; i < trace_len && !seen; i++)
            seen = strcmp(trace[i], line) == 0;
        pthread_mutex_unlock(&trace_lock);
        if (seen)
            return true;
        if (waited >= timeout_ms) {
            fprintf(stderr, "the driver did not print \"%s\" within %d ms\n", line, timeout_ms);
            failures++;
            return false;
        }
        usleep(1000);
    }
}

void host_trace_reset(void)
{
    pthread_mutex_lock(&trace_lock);
    trace_len = 0;
    trace_overflow = false;
    pthread_mutex_unlock(&trace_lock);
}

bool host_trace_expect(const char *const *want, int n, const char *file, int line)
{
    pthread_mutex_lock(&trace_lock);
    bool ok = !trace_overflow && trace_len == n;
    for (int i = 0; ok && i < n; i++)
        ok = strcmp(trace[i], want[i]) == 0;
    if (!ok) {
        fprintf(stderr, "%s:%d: the driver's callbacks ran out of order\n  got: ", file, line);
        for (int i = 0; i < trace_len; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", trace[i]);
        fprintf(stderr, "%s\n  want:", trace_overflow ? " ..." : "");
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%s%s", i ? ", " : " ", want[i]);
        fprintf(stderr, "\n");
        failures++;
    }
    trace_len = 0;
    trace_overflow = false;
    pthread_mutex_unlock(&trace_lock);
    return ok;
}

/* ---- the client's own driver and device ---- */

void host_init(const char *engine, const char *prefix)
{
    trace_prefix = prefix;
    UwdfSetLogCallback(on_log, NULL);
    /* KdPrint is DbgPrint: DPFLTR_DEFAULT_ID at the info level. */
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 1u << DPFLTR_INFO_LEVEL);
    if (engine && !CHECK_STATUS(UwdfSetDefaultBackend(engine), STATUS_SUCCESS))
        exit(2);

    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, WDF_NO_EVENT_CALLBACK);
    if (!CHECK_STATUS(WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE),
                      STATUS_SUCCESS))
        exit(2);
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(WdfGetDriver(), &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!CHECK(init != NULL) ||
        !CHECK_STATUS(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device), STATUS_SUCCESS))
        exit(2);
    WdfControlFinishInitializing(device);
}

void host_fini(void)
{
    WdfObjectDelete(device);
    device = NULL;
}

WDFDEVICE host_device(void)
{
    return device;
}

NTSTATUS host_open(const char *name, WDFIOTARGET *target)
{
    WCHAR wide[512];
    size_t len = strlen(name);
    *target = NULL;
    if (len >= sizeof(wide) / sizeof(wide[0]))
        return STATUS_NAME_TOO_LONG;
    for (size_t i = 0; i <= len; i++)
        wide[i] = (WCHAR)(unsigned char)name[i];
    UNICODE_STRING us = { (USHORT)(len * sizeof(WCHAR)), (USHORT)((len + 1) * sizeof(WCHAR)), wide };
    WDFIOTARGET t;
    NTSTATUS st = WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, &t);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_TARGET_OPEN_PARAMS params;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&params, &us, GENERIC_READ | GENERIC_WRITE);
    st = WdfIoTargetOpen(t, &params);
    if (!NT_SUCCESS(st)) {
        WdfObjectDelete(t);
        return st;
    }
    *target = t;
    return STATUS_SUCCESS;
}

void host_first_interface(const GUID *klass, char *link, size_t size)
{
    PZZWSTR list = NULL;
    link[0] = '\0';
    if (!CHECK_STATUS(IoGetDeviceInterfaces(klass, NULL, 0, &list), STATUS_SUCCESS))
        return;
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, list);
    RtlStringCbPrintfA(link, size, "%wZ", &us);
    ExFreePool(list);
}

/* ---- object counts ---- */

void host_counts_take(struct host_counts *counts)
{
    counts->n = sizeof(counts->c) / sizeof(counts->c[0]);
    if (!CHECK_STATUS(UwdfQueryObjectCounts(counts->c, &counts->n), STATUS_SUCCESS))
        counts->n = 0;
}

bool host_counts_flat(const struct host_counts *before, const char *file, int line)
{
    struct host_counts now;
    host_counts_take(&now);
    bool ok = now.n == before->n;
    for (ULONG i = 0; i < now.n && i < before->n; i++) {
        if (strcmp(now.c[i].TypeName, before->c[i].TypeName) != 0 || now.c[i].Live != before->c[i].Live) {
            fprintf(stderr, "%s:%d: %s: %llu live, %llu before\n", file, line, now.c[i].TypeName,
                    (unsigned long long)now.c[i].Live, (unsigned long long)before->c[i].Live);
            ok = false;
        }
    }
    if (!ok)
        failures++;
    return ok;
}

const char *host_engine_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--engine=", 9) == 0)
            return argv[i] + 9;
    return NULL;
}

/* ---- asynchronous requests ---- */

static volatile int completions;

static VOID host_io_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                         WDFCONTEXT Context)
{
    struct host_io *io = Context;
    (void)Request, (void)Target;
    io->status = Params->IoStatus.Status;
    io->information = Params->IoStatus.Information;
    io->order = __atomic_add_fetch(&completions, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&io->done, 1, __ATOMIC_RELEASE);
}

void host_io_start(struct host_io *io, WDFIOTARGET target, enum host_io_kind kind, void *buf, size_t len,
                   LONGLONG offset)
{
    memset(io, 0, sizeof(*io));
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.ParentObject = target;
    io->status = STATUS_PENDING;
    if (!CHECK_STATUS(WdfRequestCreate(&attrs, target, &io->request), STATUS_SUCCESS) ||
        !CHECK_STATUS(WdfMemoryCreatePreallocated(&attrs, buf, len, &io->memory), STATUS_SUCCESS)) {
        io->done = 1;
        return;
    }
    NTSTATUS st = kind == HOST_IO_READ
                      ? WdfIoTargetFormatRequestForRead(target, io->request, io->memory, NULL, &offset)
                      : WdfIoTargetFormatRequestForWrite(target, io->request, io->memory, NULL, &offset);
    if (!CHECK_STATUS(st, STATUS_SUCCESS)) {
        io->done = 1;
        return;
    }
    WdfRequestSetCompletionRoutine(io->request, host_io_done, io);
    if (!WdfRequestSend(io->request, target, WDF_NO_SEND_OPTIONS)) {
        io->status = WdfRequestGetStatus(io->request);
        io->done = 1;
    }
}

bool host_io_wait(struct host_io *io, int timeout_ms)
{
    for (int waited = 0; !__atomic_load_n(&io->done, __ATOMIC_ACQUIRE); waited++) {
        if (waited == timeout_ms) {
            fprintf(stderr, "a request did not complete within %d ms: cancelling it\n", timeout_ms);
            failures++;
            WdfRequestCancelSentRequest(io->request);
        }
        usleep(1000);
    }
    return io->order != 0 || io->status != STATUS_PENDING;
}

void host_io_fini(struct host_io *io)
{
    if (io->request)
        WdfObjectDelete(io->request);
    if (io->memory)
        WdfObjectDelete(io->memory);
    io->request = NULL;
    io->memory = NULL;
}
