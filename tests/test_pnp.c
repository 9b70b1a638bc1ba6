/* The driver host: loading and unloading drivers (by pointer and as a
 * shared object), simulated PnP and power sequences checked callback by
 * callback against WDF's documented order, failures unwinding, filter
 * stacks over real files and loop devices, device interfaces, and
 * arrive/remove cycles with flat object counts. */
#include "testutil.h"

#include <fcntl.h>
#include <initguid.h>
#include <pthread.h>
#include <ntstrsafe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <wdmguid.h>

#include "pnpdrv.h"

// {0C6F7D52-2B1E-4E0A-8E51-8E0F6B6B7A01}
DEFINE_GUID(GUID_TEST_FUNC, 0x0c6f7d52, 0x2b1e, 0x4e0a, 0x8e, 0x51, 0x8e, 0x0f, 0x6b, 0x6b, 0x7a, 0x01);

#define FAILURE ((NTSTATUS)0xC0000185L) /* STATUS_IO_DEVICE_ERROR: what a failing callback returns */
#define FILE_BYTES (256 * 1024)

/* ---- the trace every callback writes ---- */
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static char trace[512][64];
static int trace_len;
static const char *fail_at; /* "drv:Callback": that callback fails */

static void trace_reset(void)
{
    pthread_mutex_lock(&trace_lock);
    trace_len = 0;
    pthread_mutex_unlock(&trace_lock);
}

static NTSTATUS rec(const char *drv, const char *cb, int state)
{
    char base[48];
    snprintf(base, sizeof(base), "%s:%s", drv, cb);
    pthread_mutex_lock(&trace_lock);
    if (trace_len < (int)RTL_NUMBER_OF(trace)) {
        if (state >= 0)
            snprintf(trace[trace_len], sizeof(trace[0]), "%s(%d)", base, state);
        else
            snprintf(trace[trace_len], sizeof(trace[0]), "%s", base);
        trace_len++;
    }
    pthread_mutex_unlock(&trace_lock);
    return fail_at && strcmp(fail_at, base) == 0 ? FAILURE : STATUS_SUCCESS;
}

static void expect_trace(const char *const *want, int n)
{
    char got[8192] = "", exp[8192] = "";
    pthread_mutex_lock(&trace_lock);
    for (int i = 0; i < trace_len; i++) {
        strcat(got, trace[i]);
        strcat(got, " ");
    }
    pthread_mutex_unlock(&trace_lock);
    for (int i = 0; i < n; i++) {
        strcat(exp, want[i]);
        strcat(exp, " ");
    }
    ck_assert_msg(strcmp(got, exp) == 0, "trace\n  got:  %s\n  want: %s", got, exp);
    trace_reset();
}
#define EXPECT_TRACE(...)                                             \
    do {                                                              \
        static const char *const want_[] = { __VA_ARGS__ };           \
        expect_trace(want_, (int)RTL_NUMBER_OF(want_));               \
    } while (0)
#define EXPECT_NO_TRACE() expect_trace(NULL, 0)

/* ---- three drivers: lower filter, function driver, upper filter ---- */

#define PNP_CALLBACKS(tag)                                                                                          \
    static NTSTATUS tag##_prepare(WDFDEVICE d, WDFCMRESLIST r, WDFCMRESLIST t)                                     \
    {                                                                                                              \
        (void)d, (void)r, (void)t;                                                                                 \
        return rec(#tag, "PrepareHardware", -1);                                                                   \
    }                                                                                                              \
    static NTSTATUS tag##_release(WDFDEVICE d, WDFCMRESLIST t)                                                     \
    {                                                                                                              \
        (void)d, (void)t;                                                                                          \
        return rec(#tag, "ReleaseHardware", -1);                                                                   \
    }                                                                                                              \
    static NTSTATUS tag##_d0entry(WDFDEVICE d, WDF_POWER_DEVICE_STATE s)                                           \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "D0Entry", s);                                                                            \
    }                                                                                                              \
    static NTSTATUS tag##_d0post(WDFDEVICE d, WDF_POWER_DEVICE_STATE s)                                            \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "D0EntryPost", s);                                                                        \
    }                                                                                                              \
    static NTSTATUS tag##_d0exitpre(WDFDEVICE d, WDF_POWER_DEVICE_STATE s)                                         \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "D0ExitPre", s);                                                                          \
    }                                                                                                              \
    static NTSTATUS tag##_d0exit(WDFDEVICE d, WDF_POWER_DEVICE_STATE s)                                            \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "D0Exit", s);                                                                             \
    }                                                                                                              \
    static NTSTATUS tag##_smioinit(WDFDEVICE d)                                                                    \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "SmioInit", -1);                                                                          \
    }                                                                                                              \
    static NTSTATUS tag##_smiosuspend(WDFDEVICE d)                                                                 \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "SmioSuspend", -1);                                                                       \
    }                                                                                                              \
    static NTSTATUS tag##_smiorestart(WDFDEVICE d)                                                                 \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "SmioRestart", -1);                                                                       \
    }                                                                                                              \
    static VOID tag##_smioflush(WDFDEVICE d)                                                                       \
    {                                                                                                              \
        flush_probe(#tag, d);                                                                                      \
        rec(#tag, "SmioFlush", -1);                                                                                \
    }                                                                                                              \
    static VOID tag##_smiocleanup(WDFDEVICE d)                                                                     \
    {                                                                                                              \
        (void)d;                                                                                                   \
        rec(#tag, "SmioCleanup", -1);                                                                              \
    }                                                                                                              \
    static VOID tag##_surprise(WDFDEVICE d)                                                                        \
    {                                                                                                              \
        (void)d;                                                                                                   \
        rec(#tag, "SurpriseRemoval", -1);                                                                          \
    }                                                                                                              \
    static NTSTATUS tag##_queryremove(WDFDEVICE d)                                                                 \
    {                                                                                                              \
        (void)d;                                                                                                   \
        return rec(#tag, "QueryRemove", -1);                                                                       \
    }                                                                                                              \
    static VOID tag##_cleanup(WDFOBJECT o)                                                                         \
    {                                                                                                              \
        (void)o;                                                                                                   \
        rec(#tag, "DeviceCleanup", -1);                                                                            \
    }                                                                                                              \
    static void tag##_init(PWDFDEVICE_INIT init, PWDF_OBJECT_ATTRIBUTES attrs)                                     \
    {                                                                                                              \
        WDF_PNPPOWER_EVENT_CALLBACKS cb;                                                                           \
        WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&cb);                                                                    \
        cb.EvtDevicePrepareHardware = tag##_prepare;                                                               \
        cb.EvtDeviceReleaseHardware = tag##_release;                                                               \
        cb.EvtDeviceD0Entry = tag##_d0entry;                                                                       \
        cb.EvtDeviceD0EntryPostInterruptsEnabled = tag##_d0post;                                                   \
        cb.EvtDeviceD0ExitPreInterruptsDisabled = tag##_d0exitpre;                                                 \
        cb.EvtDeviceD0Exit = tag##_d0exit;                                                                         \
        cb.EvtDeviceSelfManagedIoInit = tag##_smioinit;                                                            \
        cb.EvtDeviceSelfManagedIoSuspend = tag##_smiosuspend;                                                      \
        cb.EvtDeviceSelfManagedIoRestart = tag##_smiorestart;                                                      \
        cb.EvtDeviceSelfManagedIoFlush = tag##_smioflush;                                                          \
        cb.EvtDeviceSelfManagedIoCleanup = tag##_smiocleanup;                                                      \
        cb.EvtDeviceSurpriseRemoval = tag##_surprise;                                                              \
        cb.EvtDeviceQueryRemove = tag##_queryremove;                                                               \
        WdfDeviceInitSetPnpPowerEventCallbacks(init, &cb);                                                         \
        WDF_OBJECT_ATTRIBUTES_INIT(attrs);                                                                         \
        attrs->EvtCleanupCallback = tag##_cleanup;                                                                 \
    }

typedef struct _FUNC_CTX {
    WDFQUEUE Other; /* a queue that is not power-managed */
} FUNC_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(FUNC_CTX, FuncCtx)

/* At the function driver's SelfManagedIoFlush, WDF has purged its
 * power-managed queues and not yet its other ones. */
static int flush_pm_accepts = -1, flush_other_accepts = -1;
static void flush_probe(const char *tag, WDFDEVICE d)
{
    if (strcmp(tag, "func") != 0)
        return;
    WDFQUEUE other = FuncCtx(d)->Other;
    flush_pm_accepts = (WdfIoQueueGetState(WdfDeviceGetDefaultQueue(d), NULL, NULL) & WdfIoQueueAcceptRequests) != 0;
    flush_other_accepts = (WdfIoQueueGetState(other, NULL, NULL) & WdfIoQueueAcceptRequests) != 0;
}

PNP_CALLBACKS(lower)
PNP_CALLBACKS(func)
PNP_CALLBACKS(upper)

static bool trace_device_add = true;
static volatile WDFDRIVER seen_in_entry, seen_in_add;
static char registry_seen[256];

/* func: forwards reads and writes to the device below (its default I/O
 * target, the hardware's file) with a completion routine, as most function
 * drivers over a lower device do. Its queue is power-managed (the
 * default). */
static VOID func_forward_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                              WDFCONTEXT Context)
{
    (void)Target, (void)Context;
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

static VOID func_io(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    (void)Length;
    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, func_forward_done, NULL);
    if (!WdfRequestSend(Request, WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue)), WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

static NTSTATUS func_add(WDFDRIVER Driver, PWDFDEVICE_INIT init)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFDEVICE dev;
    seen_in_add = WdfGetDriver();
    (void)Driver;
    if (trace_device_add && !NT_SUCCESS(rec("func", "DeviceAdd", -1)))
        return FAILURE;
    func_init(init, &attrs);
    WDF_OBJECT_ATTRIBUTES_SET_CONTEXT_TYPE(&attrs, FUNC_CTX);
    NTSTATUS st = WdfDeviceCreate(&init, &attrs, &dev);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT(&qc, WdfIoQueueDispatchManual);
    qc.PowerManaged = WdfFalse;
    st = WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, &FuncCtx(dev)->Other);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoRead = func_io;
    qc.EvtIoWrite = func_io;
    st = WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
    if (!NT_SUCCESS(st))
        return st;
    return WdfDeviceCreateDeviceInterface(dev, &GUID_TEST_FUNC, NULL);
}

/* upper: a filter with no queue at all: everything passes down. */
static NTSTATUS upper_add(WDFDRIVER Driver, PWDFDEVICE_INIT init)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFDEVICE dev;
    (void)Driver;
    if (trace_device_add && !NT_SUCCESS(rec("upper", "DeviceAdd", -1)))
        return FAILURE;
    WdfFdoInitSetFilter(init);
    upper_init(init, &attrs);
    return WdfDeviceCreate(&init, &attrs, &dev);
}

/* lower: a filter whose default queue handles IOCTLs only: reads and
 * writes pass down (WDF's rule for a filter's default queue). */
static atomic_int lower_ioctls;
static VOID lower_ioctl(WDFQUEUE Queue, WDFREQUEST Request, size_t Out, size_t In, ULONG Code)
{
    (void)Queue, (void)Out, (void)In, (void)Code;
    atomic_fetch_add(&lower_ioctls, 1);
    WdfRequestComplete(Request, STATUS_SUCCESS);
}

static NTSTATUS lower_add(WDFDRIVER Driver, PWDFDEVICE_INIT init)
{
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFDEVICE dev;
    (void)Driver;
    if (trace_device_add && !NT_SUCCESS(rec("lower", "DeviceAdd", -1)))
        return FAILURE;
    WdfFdoInitSetFilter(init);
    lower_init(init, &attrs);
    NTSTATUS st = WdfDeviceCreate(&init, &attrs, &dev);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoDeviceControl = lower_ioctl;
    return WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
}

static VOID driver_unload(WDFDRIVER Driver)
{
    char name[64];
    RtlStringCbPrintfA(name, sizeof(name), "%wZ", &WdfDriverWdmGetDriverObject(Driver)->DriverName);
    rec(name + 8, "DriverUnload", -1); /* after "\Driver\" */
}

/* WdfDriverGetRegistryPath in the driver's cleanup callback (UTF-8). */
static char registry_at_cleanup[256];

static VOID driver_cleanup(WDFOBJECT Driver)
{
    char name[64];
    PWSTR reg = WdfDriverGetRegistryPath((WDFDRIVER)Driver);
    RtlStringCbPrintfA(registry_at_cleanup, sizeof(registry_at_cleanup), "%ws", reg ? reg : L"(null)");
    RtlStringCbPrintfA(name, sizeof(name), "%wZ", &WdfDriverWdmGetDriverObject((WDFDRIVER)Driver)->DriverName);
    rec(name + 8, "DriverCleanup", -1);
}

static NTSTATUS entry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath, PFN_WDF_DRIVER_DEVICE_ADD add)
{
    WDF_DRIVER_CONFIG config;
    WDF_OBJECT_ATTRIBUTES attrs;
    WDFDRIVER driver;
    WDF_DRIVER_CONFIG_INIT(&config, add);
    config.EvtDriverUnload = driver_unload;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.EvtCleanupCallback = driver_cleanup;
    RtlStringCbPrintfA(registry_seen, sizeof(registry_seen), "%wZ", RegistryPath);
    NTSTATUS st = WdfDriverCreate(DriverObject, RegistryPath, &attrs, &config, &driver);
    seen_in_entry = WdfGetDriver();
    return st;
}

static NTSTATUS lower_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    return entry(d, r, lower_add);
}
static NTSTATUS func_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    return entry(d, r, func_add);
}
static NTSTATUS upper_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    return entry(d, r, upper_add);
}

static NTSTATUS failing_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    NTSTATUS st = entry(d, r, func_add);
    ck_assert_status(st, STATUS_SUCCESS);
    return FAILURE;
}
static NTSTATUS wdm_only_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    (void)d, (void)r;
    return STATUS_SUCCESS;
}

/* ---- fixture helpers ---- */

struct host {
    struct tu_env env;
    WDFDRIVER lower, func, upper;
    char *file;
};

/* The host with the three drivers loaded, its targets on engine backend
 * (-1: the default engine). */
static void host_load_on(struct host *h, int backend)
{
    if (backend < 0)
        tu_env_init(&h->env);
    else
        tu_env_init_backend(&h->env, backend);
    fail_at = NULL;
    trace_device_add = true;
    ck_assert_status(UwdfLoadDriver(lower_entry, "lower", &h->lower), STATUS_SUCCESS);
    ck_assert_status(UwdfLoadDriver(func_entry, "func", &h->func), STATUS_SUCCESS);
    ck_assert_status(UwdfLoadDriver(upper_entry, "upper", &h->upper), STATUS_SUCCESS);
    h->file = tu_env_file(&h->env, "hw", FILE_BYTES, 7);
    trace_reset();
}

static void host_unload(struct host *h)
{
    ck_assert_status(UwdfUnloadDriver(h->upper), STATUS_SUCCESS);
    ck_assert_status(UwdfUnloadDriver(h->func), STATUS_SUCCESS);
    ck_assert_status(UwdfUnloadDriver(h->lower), STATUS_SUCCESS);
    free(h->file);
    tu_env_fini(&h->env);
}

static const char *const lower_list[] = { "lower" };
static const char *const upper_list[] = { "upper" };

static NTSTATUS arrive(const char *path, bool filters, UWDF_DEVNODE *node)
{
    UWDF_DEVICE_DESCRIPTION d;
    UWDF_DEVICE_DESCRIPTION_INIT(&d, "root\\uwdftest", "func");
    d.HardwarePath = path;
    if (filters) {
        d.LowerFilters = lower_list;
        d.LowerFilterCount = 1;
        d.UpperFilters = upper_list;
        d.UpperFilterCount = 1;
    }
    return UwdfDeviceArrive(&d, node);
}

/* The first interface of GUID_TEST_FUNC (UTF-8), or "" if none. */
static void first_link(char *out, size_t len)
{
    PZZWSTR list = NULL;
    ck_assert_status(IoGetDeviceInterfaces(&GUID_TEST_FUNC, NULL, 0, &list), STATUS_SUCCESS);
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, list);
    RtlStringCbPrintfA(out, len, "%wZ", &us);
    ExFreePool(list);
}

static WDFIOTARGET open_stack(struct host *h)
{
    char link[256];
    first_link(link, sizeof(link));
    ck_assert_msg(link[0], "no interface");
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(h->env.device, link, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0, &t),
                     STATUS_SUCCESS);
    return t;
}

#define START3                                                                                               \
    "lower:PrepareHardware", "lower:D0Entry(5)", "lower:D0EntryPost(5)", "lower:SmioInit",                   \
        "func:PrepareHardware", "func:D0Entry(5)", "func:D0EntryPost(5)", "func:SmioInit",                   \
        "upper:PrepareHardware", "upper:D0Entry(5)", "upper:D0EntryPost(5)", "upper:SmioInit"
#define REMOVE(tag)                                                                                          \
    #tag ":SmioSuspend", #tag ":D0ExitPre(5)", #tag ":D0Exit(5)", #tag ":ReleaseHardware", #tag ":SmioFlush", \
        #tag ":SmioCleanup", #tag ":DeviceCleanup"

/* ---- loading ---- */

START_TEST(drivers_load_by_pointer_and_from_a_shared_object)
{
    struct host h;
    host_load_on(&h, -1);
    /* the framework's DRIVER_OBJECT and RegistryPath */
    char name[128];
    RtlStringCbPrintfA(name, sizeof(name), "%wZ", &WdfDriverWdmGetDriverObject(h.func)->DriverName);
    ck_assert_str_eq(name, "\\Driver\\func");
    ck_assert_str_eq(registry_seen, "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\upper");
    ck_assert_ptr_eq(seen_in_entry, h.upper); /* WdfGetDriver inside DriverEntry: its own */
    ck_assert_ptr_ne(h.func, h.upper);
    /* a name loaded already */
    WDFDRIVER again = (WDFDRIVER)1;
    ck_assert_status(UwdfLoadDriver(func_entry, "FUNC", &again), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_ptr_null(again);

    /* the shared object: a store behind an interface */
    WDFDRIVER so;
    ck_assert_status(UwdfLoadDriverFromFile("/nonexistent/pnpdrv.so", "pnpdrv", &so), STATUS_DLL_NOT_FOUND);
    ck_assert_status(UwdfLoadDriverFromFile(PNPDRV_SO, "pnpdrv", &so), STATUS_SUCCESS);
    UWDF_DEVICE_DESCRIPTION d;
    UWDF_DEVICE_DESCRIPTION_INIT(&d, "root\\pnpdrv", "pnpdrv");
    UWDF_DEVNODE node;
    ck_assert_status(UwdfDeviceArrive(&d, &node), STATUS_SUCCESS);
    PZZWSTR list;
    ck_assert_status(IoGetDeviceInterfaces(&GUID_DEVINTERFACE_PNPDRV, NULL, 0, &list), STATUS_SUCCESS);
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, list);
    char link[256];
    RtlStringCbPrintfA(link, sizeof(link), "%wZ", &us);
    ExFreePool(list);
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(h.env.device, link, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0, &t),
                     STATUS_SUCCESS);
    char wbuf[100], rbuf[100] = { 0 };
    tu_fill_pattern(wbuf, sizeof(wbuf), 3, 0);
    WDF_MEMORY_DESCRIPTOR md;
    LONGLONG off = 1000;
    ULONG_PTR got = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, wbuf, sizeof(wbuf));
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &md, &off, NULL, &got), STATUS_SUCCESS);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, rbuf, sizeof(rbuf));
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &md, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, sizeof(rbuf));
    ck_assert(memcmp(wbuf, rbuf, sizeof(rbuf)) == 0);
    /* WdfGetDriver inside the .so's queue callback: its own driver, with
     * four drivers loaded */
    WCHAR wname[64] = { 0 };
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, wname, sizeof(wname) - sizeof(WCHAR));
    ck_assert_status(WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_PNPDRV_DRIVER_NAME, NULL, &md, NULL, &got),
                     STATUS_SUCCESS);
    ck_assert_uint_eq(got, wcslen(L"\\Driver\\pnpdrv") * sizeof(WCHAR));
    ck_assert(wcscmp(wname, L"\\Driver\\pnpdrv") == 0);
    WdfObjectDelete(t);
    ck_assert_status(UwdfUnloadDriver(so), STATUS_SUCCESS);
    host_unload(&h);
    EXPECT_TRACE("upper:DriverUnload", "upper:DriverCleanup", "func:DriverUnload", "func:DriverCleanup",
                 "lower:DriverUnload", "lower:DriverCleanup");
}
END_TEST

/* The framework keeps its own copy: the host frees RegistryPath after
 * DriverEntry (under ASan a kept pointer would be a use after free). */
START_TEST(the_registry_path_outlives_driver_entry)
{
    struct host h;
    host_load_on(&h, -1);
    PWSTR reg = WdfDriverGetRegistryPath(h.func);
    ck_assert_ptr_nonnull(reg);
    ck_assert(wcscmp(reg, L"\\Registry\\Machine\\System\\CurrentControlSet\\Services\\func") == 0);
    ck_assert_ptr_ne(WdfDriverGetRegistryPath(h.upper), reg);
    /* the bootstrap driver was made without one */
    ck_assert_ptr_null(WdfDriverGetRegistryPath(h.env.driver));
    registry_at_cleanup[0] = '\0';
    ck_assert_status(UwdfUnloadDriver(h.func), STATUS_SUCCESS);
    ck_assert_str_eq(registry_at_cleanup, "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\func");
    ck_assert_status(UwdfLoadDriver(func_entry, "func", &h.func), STATUS_SUCCESS);
    host_unload(&h);
}
END_TEST

START_TEST(a_failing_driver_entry_fails_the_load_without_unload)
{
    struct tu_env e;
    tu_env_init(&e);
    WDFDRIVER d = (WDFDRIVER)1;
    ck_assert_status(UwdfLoadDriver(NULL, "x", &d), STATUS_INVALID_PARAMETER);
    ck_assert_status(UwdfLoadDriver(func_entry, "a\\b", &d), STATUS_INVALID_PARAMETER);
    trace_reset();
    UWDF_OBJECT_COUNT before;
    ck_assert_status(UwdfQueryObjectCount("WDFDRIVER", &before), STATUS_SUCCESS);
    /* DriverEntry's failure: its WDFDRIVER goes without EvtDriverUnload */
    ck_assert_status(UwdfLoadDriver(failing_entry, "func", &d), FAILURE);
    ck_assert_ptr_null(d);
    EXPECT_TRACE("func:DriverCleanup");
    ck_assert_status(UwdfLoadDriver(wdm_only_entry, "func", &d), STATUS_DRIVER_INTERNAL_ERROR);
    ck_assert_status(UwdfLoadDriver(func_entry, "func", &d), STATUS_SUCCESS);
    /* a second WdfDriverCreate for the same DRIVER_OBJECT */
    WDF_DRIVER_CONFIG cfg;
    WDF_DRIVER_CONFIG_INIT(&cfg, NULL);
    ck_assert_status(WdfDriverCreate(WdfDriverWdmGetDriverObject(d), NULL, NULL, &cfg, NULL),
                     STATUS_DRIVER_INTERNAL_ERROR);
    ck_assert_status(UwdfUnloadDriver(d), STATUS_SUCCESS);
    ck_assert_status(UwdfUnloadDriver(e.driver), STATUS_INVALID_PARAMETER); /* not a hosted one */
    UWDF_OBJECT_COUNT after;
    ck_assert_status(UwdfQueryObjectCount("WDFDRIVER", &after), STATUS_SUCCESS);
    ck_assert_uint_eq(after.Live, before.Live);
    EXPECT_TRACE("func:DriverUnload", "func:DriverCleanup");
    tu_env_fini(&e);
}
END_TEST

/* ---- sequences ---- */

START_TEST(arrival_builds_bottom_up_and_orderly_removal_goes_top_down)
{
    struct host h;
    host_load_on(&h, -1);
    UWDF_DEVNODE node;
    ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
    EXPECT_TRACE("lower:DeviceAdd", "func:DeviceAdd", "upper:DeviceAdd", START3);
    ck_assert_ptr_nonnull(UwdfDevNodeGetDevice(node, "func"));
    ck_assert_ptr_eq(UwdfDevNodeGetDevice(node, NULL), UwdfDevNodeGetDevice(node, "upper"));
    ck_assert_ptr_eq(seen_in_add, h.func); /* WdfGetDriver in EvtDriverDeviceAdd */
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    EXPECT_TRACE("upper:QueryRemove", "func:QueryRemove", "lower:QueryRemove", REMOVE(upper), REMOVE(func),
                 REMOVE(lower));
    ck_assert_int_eq(flush_pm_accepts, 0);
    ck_assert_int_eq(flush_other_accepts, 1);
    host_unload(&h);
}
END_TEST

START_TEST(a_query_remove_veto_keeps_the_stack_started)
{
    struct host h;
    host_load_on(&h, -1);
    UWDF_DEVNODE node;
    ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
    trace_reset();
    fail_at = "func:QueryRemove";
    ck_assert_status(UwdfDeviceRemove(node), FAILURE);
    EXPECT_TRACE("upper:QueryRemove", "func:QueryRemove");
    fail_at = NULL;
    WDFIOTARGET t = open_stack(&h); /* still there */
    WdfObjectDelete(t);
    ck_assert_status(UwdfDeviceSurpriseRemove(node), STATUS_SUCCESS);
    EXPECT_TRACE("upper:SurpriseRemoval", REMOVE(upper), "func:SurpriseRemoval", REMOVE(func),
                 "lower:SurpriseRemoval", REMOVE(lower));
    ck_assert_status(UwdfDeviceRemove(node), STATUS_INVALID_HANDLE);
    host_unload(&h);
}
END_TEST

START_TEST(power_down_and_up_run_the_documented_order)
{
    struct host h;
    host_load_on(&h, -1);
    UWDF_DEVNODE node;
    ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
    trace_reset();
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_SUCCESS);
    EXPECT_TRACE("upper:SmioSuspend", "upper:D0ExitPre(4)", "upper:D0Exit(4)", "func:SmioSuspend",
                 "func:D0ExitPre(4)", "func:D0Exit(4)", "lower:SmioSuspend", "lower:D0ExitPre(4)",
                 "lower:D0Exit(4)");
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_SUCCESS);
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD2), STATUS_INVALID_DEVICE_STATE);
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3Final), STATUS_INVALID_PARAMETER);
    EXPECT_NO_TRACE();
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD0), STATUS_SUCCESS);
    EXPECT_TRACE("lower:D0Entry(4)", "lower:D0EntryPost(4)", "lower:SmioRestart", "func:D0Entry(4)",
                 "func:D0EntryPost(4)", "func:SmioRestart", "upper:D0Entry(4)", "upper:D0EntryPost(4)",
                 "upper:SmioRestart");
    /* removal from Dx: no second D0Exit */
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD1), STATUS_SUCCESS);
    trace_reset();
    ck_assert_status(UwdfDeviceSurpriseRemove(node), STATUS_SUCCESS);
    EXPECT_TRACE("upper:SurpriseRemoval", "upper:ReleaseHardware", "upper:SmioFlush", "upper:SmioCleanup",
                 "upper:DeviceCleanup", "func:SurpriseRemoval", "func:ReleaseHardware", "func:SmioFlush",
                 "func:SmioCleanup", "func:DeviceCleanup", "lower:SurpriseRemoval", "lower:ReleaseHardware",
                 "lower:SmioFlush", "lower:SmioCleanup", "lower:DeviceCleanup");
    host_unload(&h);
}
END_TEST

/* Each start callback of the function driver failing: the arrival fails
 * with its status; the failing device unwinds as WDF documents, the lower
 * filter (started) is removed in order, the upper filter never came. */
START_TEST(a_failing_start_callback_unwinds_and_fails_the_arrival)
{
    struct host h;
    host_load_on(&h, -1);
    UWDF_DEVNODE node = (UWDF_DEVNODE)1;
    static const char *const lower_start[] = { "lower:DeviceAdd", "func:DeviceAdd", "upper:DeviceAdd",
                                               "lower:PrepareHardware", "lower:D0Entry(5)", "lower:D0EntryPost(5)",
                                               "lower:SmioInit" };
    static const char *const lower_removed[] = { "lower:SmioSuspend", "lower:D0ExitPre(5)", "lower:D0Exit(5)",
                                                 "lower:ReleaseHardware", "lower:SmioFlush", "lower:SmioCleanup",
                                                 "lower:DeviceCleanup" };
    struct {
        const char *fail;
        const char *func_part[12];
    } cases[] = {
        { "func:PrepareHardware", { "func:PrepareHardware", "func:ReleaseHardware" } },
        { "func:D0Entry", { "func:PrepareHardware", "func:D0Entry(5)", "func:ReleaseHardware" } },
        { "func:D0EntryPost",
          { "func:PrepareHardware", "func:D0Entry(5)", "func:D0EntryPost(5)", "func:D0Exit(5)",
            "func:ReleaseHardware" } },
        { "func:SmioInit",
          { "func:PrepareHardware", "func:D0Entry(5)", "func:D0EntryPost(5)", "func:SmioInit", "func:D0ExitPre(5)",
            "func:D0Exit(5)", "func:ReleaseHardware", "func:SmioFlush", "func:SmioCleanup" } },
    };
    for (size_t c = 0; c < RTL_NUMBER_OF(cases); c++) {
        const char *want[64];
        int n = 0;
        for (size_t i = 0; i < RTL_NUMBER_OF(lower_start); i++)
            want[n++] = lower_start[i];
        for (int i = 0; cases[c].func_part[i]; i++)
            want[n++] = cases[c].func_part[i];
        /* deleted top-down: upper (never started), func, then lower removed */
        want[n++] = "upper:DeviceCleanup";
        want[n++] = "func:DeviceCleanup";
        for (size_t i = 0; i < RTL_NUMBER_OF(lower_removed); i++)
            want[n++] = lower_removed[i];
        fail_at = cases[c].fail;
        ck_assert_status(arrive(h.file, true, &node), FAILURE);
        ck_assert_ptr_null(node);
        expect_trace(want, n);
    }
    /* EvtDriverDeviceAdd: a function driver's failure fails the arrival;
     * a filter's without a device leaves it out of the stack */
    fail_at = "func:DeviceAdd";
    ck_assert_status(arrive(h.file, true, &node), FAILURE);
    EXPECT_TRACE("lower:DeviceAdd", "func:DeviceAdd", "lower:DeviceCleanup");
    /* hardware that is not there: the lowest device's WdfDeviceCreate
     * fails with the open's status, so does the arrival */
    fail_at = NULL;
    ck_assert_status(arrive("/nonexistent/uwdf-hw", true, &node), STATUS_OBJECT_NAME_NOT_FOUND);
    EXPECT_TRACE("lower:DeviceAdd", "func:DeviceAdd"); /* the filter is left out; no callbacks */
    ck_assert_ptr_null(node);
    fail_at = "upper:DeviceAdd";
    ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
    ck_assert_ptr_eq(UwdfDevNodeGetDevice(node, NULL), UwdfDevNodeGetDevice(node, "func"));
    fail_at = NULL;
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    host_unload(&h);
}
END_TEST

START_TEST(a_failing_power_up_surprise_removes_the_stack)
{
    struct host h;
    host_load_on(&h, -1);
    UWDF_DEVNODE node;
    ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_SUCCESS);
    trace_reset();
    fail_at = "func:D0Entry";
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD0), FAILURE);
    fail_at = NULL;
    EXPECT_TRACE("lower:D0Entry(4)", "lower:D0EntryPost(4)", "lower:SmioRestart", "func:D0Entry(4)",
                 "upper:SurpriseRemoval", "upper:ReleaseHardware", "upper:SmioFlush", "upper:SmioCleanup",
                 "upper:DeviceCleanup", "func:SurpriseRemoval", "func:ReleaseHardware", "func:SmioFlush",
                 "func:SmioCleanup", "func:DeviceCleanup", "lower:SurpriseRemoval", REMOVE(lower));
    ck_assert_status(UwdfDeviceRemove(node), STATUS_INVALID_HANDLE);
    host_unload(&h);
}
END_TEST

START_TEST(unload_removes_the_drivers_devices_first)
{
    struct host h;
    host_load_on(&h, -1);
    UWDF_DEVNODE node;
    ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
    trace_reset();
    ck_assert_status(UwdfUnloadDriver(h.func), STATUS_SUCCESS);
    EXPECT_TRACE(REMOVE(upper), REMOVE(func), REMOVE(lower), "func:DriverUnload", "func:DriverCleanup");
    ck_assert_status(UwdfDeviceRemove(node), STATUS_INVALID_HANDLE);
    ck_assert_status(UwdfUnloadDriver(h.upper), STATUS_SUCCESS);
    ck_assert_status(UwdfUnloadDriver(h.lower), STATUS_SUCCESS);
    free(h.file);
    tu_env_fini(&h.env);
}
END_TEST

/* ---- I/O through a stack ---- */

static void rw_roundtrip(WDFIOTARGET t, int fd, LONGLONG off, size_t len, unsigned seed)
{
    char *w = malloc(len), *r = calloc(1, len), *disk = malloc(len);
    tu_fill_pattern(w, len, seed, (uint64_t)off);
    WDF_MEMORY_DESCRIPTOR md;
    ULONG_PTR got = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, w, (ULONG)len);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &md, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, len);
    ck_assert_int_eq(pread(fd, disk, len, off), (ssize_t)len);
    ck_assert(memcmp(w, disk, len) == 0); /* it reached the hardware's file */
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, r, (ULONG)len);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &md, &off, NULL, &got), STATUS_SUCCESS);
    ck_assert_uint_eq(got, len);
    ck_assert(memcmp(w, r, len) == 0);
    free(w);
    free(r);
    free(disk);
}

START_TEST(a_filter_stack_reads_and_writes_the_hardware_file)
{
    for (int b = 0; b < TU_BACKENDS; b++) {
        struct host h;
        host_load_on(&h, b);
        UWDF_DEVNODE node;
        ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
        WDFIOTARGET lowest = WdfDeviceGetIoTarget(UwdfDevNodeGetDevice(node, "lower"));
        ck_assert_str_eq(UwdfIoTargetGetBackendName(lowest), tu_backend_names[b]);
        WDFIOTARGET t = open_stack(&h);
        int fd = open(h.file, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        rw_roundtrip(t, fd, 4096, 8192, 11 + b);
        rw_roundtrip(t, fd, 100, 333, 12 + b);
        /* an IOCTL passes the upper filter and stops at the function
         * driver, which has no handler for it (the lower filter's queue,
         * which has one, never sees it) */
        atomic_store(&lower_ioctls, 0);
        ck_assert_status(WdfIoTargetSendIoctlSynchronously(t, NULL, 0x222000, NULL, NULL, NULL, NULL),
                         STATUS_INVALID_DEVICE_REQUEST);
        ck_assert_int_eq(atomic_load(&lower_ioctls), 0);
        close(fd);
        WdfObjectDelete(t);
        ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
        host_unload(&h);
    }
}
END_TEST

START_TEST(a_power_managed_queue_holds_requests_in_dx_and_releases_them_in_d0)
{
    for (int b = 0; b < TU_BACKENDS; b++) {
        struct host h;
        host_load_on(&h, b);
        UWDF_DEVNODE node;
        ck_assert_status(arrive(h.file, false, &node), STATUS_SUCCESS);
        WDFIOTARGET t = open_stack(&h);
        ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_SUCCESS);
        void *buf;
        WDFMEMORY mem = tu_make_memory(4096, &buf);
        WDFREQUEST req = tu_make_request(t);
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, req, mem, NULL, NULL), STATUS_SUCCESS);
        struct tu_completion c;
        tu_completion_init(&c);
        WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
        ck_assert(WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
        ck_assert(!tu_completion_wait(&c, 100)); /* held while the device is in D3 */
        ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD0), STATUS_SUCCESS);
        ck_assert(tu_completion_wait(&c, 5000));
        ck_assert_status(c.status, STATUS_SUCCESS);
        ck_assert_uint_eq(c.information, 4096);
        ck_assert(tu_pattern_matches(buf, 4096, 7, 0));
        tu_completion_fini(&c);
        WdfObjectDelete(req);
        WdfObjectDelete(mem);
        WdfObjectDelete(t);
        ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
        host_unload(&h);
    }
}
END_TEST

/* Reads in flight through the stack when it is surprise-removed: each
 * completes once (done or cancelled), then new I/O fails. */
static void surprise_with_io(struct host *h, const char *hw)
{
    enum { N = 32 };
    UWDF_DEVNODE node;
    ck_assert_status(arrive(hw, true, &node), STATUS_SUCCESS);
    WDFIOTARGET t = open_stack(h);
    WDFREQUEST reqs[N];
    WDFMEMORY mems[N];
    struct tu_completion cs[N];
    for (int i = 0; i < N; i++) {
        void *buf;
        mems[i] = tu_make_memory(65536, &buf);
        reqs[i] = tu_make_request(t);
        LONGLONG off = (LONGLONG)(i % 4) * 65536;
        ck_assert_status(WdfIoTargetFormatRequestForRead(t, reqs[i], mems[i], NULL, &off), STATUS_SUCCESS);
        tu_completion_init(&cs[i]);
        WdfRequestSetCompletionRoutine(reqs[i], tu_on_complete, &cs[i]);
        ck_assert(WdfRequestSend(reqs[i], t, WDF_NO_SEND_OPTIONS));
    }
    ck_assert_status(UwdfDeviceSurpriseRemove(node), STATUS_SUCCESS);
    for (int i = 0; i < N; i++) {
        ck_assert(tu_completion_wait(&cs[i], 5000));
        ck_assert_int_eq(tu_ncalls(&cs[i]), 1);
        NTSTATUS s = cs[i].status;
        ck_assert_msg(s == STATUS_SUCCESS || s == STATUS_CANCELLED || s == STATUS_DELETE_PENDING,
                      "status " TU_STATUS_FMT, TU_STATUS_ARG(s));
        tu_completion_fini(&cs[i]);
        WdfObjectDelete(reqs[i]);
        WdfObjectDelete(mems[i]);
    }
    char b[512];
    WDF_MEMORY_DESCRIPTOR md;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, b, sizeof(b));
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &md, NULL, NULL, NULL), STATUS_DELETE_PENDING);
    WdfObjectDelete(t);
}

START_TEST(surprise_removal_with_io_in_flight_on_a_file_and_a_loop_device)
{
    for (int b = 0; b < TU_BACKENDS; b++) {
        struct host h;
        host_load_on(&h, b);
        surprise_with_io(&h, h.file);
        if (tu_root()) {
            const char *loop = tu_env_loop(&h.env, h.file, 0);
            surprise_with_io(&h, loop);
        }
        host_unload(&h);
    }
}
END_TEST

/* ---- interfaces ---- */

struct seen {
    int arrivals, removals;
    char last[256];
};

static NTSTATUS on_interface(PVOID Notification, PVOID Context)
{
    PDEVICE_INTERFACE_CHANGE_NOTIFICATION n = Notification;
    struct seen *s = Context;
    ck_assert(IsEqualGUID(&n->InterfaceClassGuid, &GUID_TEST_FUNC));
    if (IsEqualGUID(&n->Event, &GUID_DEVICE_INTERFACE_ARRIVAL))
        s->arrivals++;
    else if (IsEqualGUID(&n->Event, &GUID_DEVICE_INTERFACE_REMOVAL))
        s->removals++;
    RtlStringCbPrintfA(s->last, sizeof(s->last), "%wZ", n->SymbolicLinkName);
    return STATUS_SUCCESS;
}

START_TEST(interfaces_notify_arrival_and_removal_and_open_by_link)
{
    struct host h;
    host_load_on(&h, -1);
    struct seen s = { 0 }, existing = { 0 };
    PVOID entry, entry2;
    ck_assert_status(IoRegisterPlugPlayNotification(EventCategoryTargetDeviceChange, 0, (PVOID)&GUID_TEST_FUNC,
                                                    NULL, on_interface, &s, &entry),
                     STATUS_NOT_SUPPORTED);
    ck_assert_status(IoRegisterPlugPlayNotification(EventCategoryDeviceInterfaceChange, 0, (PVOID)&GUID_TEST_FUNC,
                                                    NULL, on_interface, &s, &entry),
                     STATUS_SUCCESS);
    char link[256];
    first_link(link, sizeof(link));
    ck_assert_str_eq(link, "");
    UWDF_DEVNODE node;
    ck_assert_status(arrive(h.file, false, &node), STATUS_SUCCESS);
    ck_assert_int_eq(s.arrivals, 1);
    first_link(link, sizeof(link));
    ck_assert_str_eq(s.last, link);
    ck_assert_msg(strncmp(link, "\\??\\UWDF#root#uwdftest#", 23) == 0 && strstr(link, "#{0C6F7D52-"), "%s", link);
    /* replay of the existing ones */
    ck_assert_status(IoRegisterPlugPlayNotification(EventCategoryDeviceInterfaceChange,
                                                    PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES,
                                                    (PVOID)&GUID_TEST_FUNC, NULL, on_interface, &existing, &entry2),
                     STATUS_SUCCESS);
    ck_assert_int_eq(existing.arrivals, 1);
    ck_assert_status(IoUnregisterPlugPlayNotificationEx(entry2), STATUS_SUCCESS);
    /* the interface's DDIs from the device */
    WDFDEVICE fd = UwdfDevNodeGetDevice(node, "func");
    WDFSTRING str;
    ck_assert_status(WdfStringCreate(NULL, WDF_NO_OBJECT_ATTRIBUTES, &str), STATUS_SUCCESS);
    ck_assert_status(WdfDeviceRetrieveDeviceInterfaceString(fd, &GUID_TEST_FUNC, NULL, str), STATUS_SUCCESS);
    UNICODE_STRING us;
    WdfStringGetUnicodeString(str, &us);
    char text[256];
    ck_assert_status(RtlStringCbPrintfA(text, sizeof(text), "%wZ", &us), STATUS_SUCCESS);
    ck_assert_str_eq(text, link);
    ck_assert_status(WdfDeviceRetrieveDeviceInterfaceString(fd, &GUID_DEVINTERFACE_PNPDRV, NULL, str),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    WdfObjectDelete(str);
    ck_assert_status(WdfDeviceCreateDeviceInterface(fd, &GUID_TEST_FUNC, NULL), STATUS_OBJECT_NAME_EXISTS);
    UNICODE_STRING bad;
    RtlInitUnicodeString(&bad, L"a\\b");
    ck_assert_status(WdfDeviceCreateDeviceInterface(fd, &GUID_TEST_FUNC, &bad), STATUS_INVALID_PARAMETER);
    ck_assert_status(WdfDeviceCreateDeviceInterface(h.env.device, &GUID_TEST_FUNC, NULL),
                     STATUS_INVALID_DEVICE_REQUEST); /* a control device */
    WdfDeviceSetDeviceInterfaceState(fd, &GUID_TEST_FUNC, NULL, FALSE);
    ck_assert_int_eq(s.removals, 1);
    first_link(text, sizeof(text));
    ck_assert_str_eq(text, "");
    WdfDeviceSetDeviceInterfaceState(fd, &GUID_TEST_FUNC, NULL, TRUE);
    ck_assert_int_eq(s.arrivals, 2);
    s.arrivals = 1, s.removals = 0;
    /* the link opens the stack, under any DOS prefix */
    char other[300];
    snprintf(other, sizeof(other), "\\DosDevices\\%s", link + 4);
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(h.env.device, other, GENERIC_READ, FILE_OPEN, 0, &t), STATUS_SUCCESS);
    WdfObjectDelete(t);
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    ck_assert_int_eq(s.removals, 1);
    ck_assert_str_eq(s.last, link);
    first_link(link, sizeof(link));
    ck_assert_str_eq(link, "");
    ck_assert_status(tu_target_open(h.env.device, other, GENERIC_READ, FILE_OPEN, 0, &t),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(IoUnregisterPlugPlayNotificationEx(entry), STATUS_SUCCESS);
    ck_assert_status(arrive(h.file, false, &node), STATUS_SUCCESS);
    ck_assert_int_eq(s.arrivals, 1); /* unregistered: no more */
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    host_unload(&h);
}
END_TEST

/* ---- control devices: exclusive, shutdown ---- */

static atomic_int shutdowns[2];
static VOID on_shutdown(WDFDEVICE d)
{
    (void)d;
    atomic_fetch_add(&shutdowns[0], 1);
}
static VOID on_last_chance(WDFDEVICE d)
{
    (void)d;
    /* after every WdfDeviceShutdown one */
    atomic_fetch_add(&shutdowns[1], atomic_load(&shutdowns[0]) == 1 ? 1 : 100);
}

static WDFDEVICE control(WDFDRIVER drv, const wchar_t *name, bool exclusive, PFN_WDF_DEVICE_SHUTDOWN_NOTIFICATION n,
                         UCHAR flags)
{
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(drv, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, name);
    ck_assert_status(WdfDeviceInitAssignName(init, &us), STATUS_SUCCESS);
    WdfDeviceInitSetExclusive(init, exclusive);
    if (n)
        WdfControlDeviceInitSetShutdownNotification(init, n, flags);
    WDFDEVICE d;
    ck_assert_status(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &d), STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoDeviceControl = lower_ioctl;
    ck_assert_status(WdfIoQueueCreate(d, &qc, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE), STATUS_SUCCESS);
    WdfControlFinishInitializing(d);
    return d;
}

START_TEST(an_exclusive_device_opens_once_at_a_time)
{
    struct tu_env e;
    tu_env_init(&e);
    control(e.driver, L"\\Device\\UwdfExcl", true, NULL, 0);
    control(e.driver, L"\\Device\\UwdfShared", false, NULL, 0);
    WDFIOTARGET a, b;
    ck_assert_status(tu_target_open(e.device, "\\Device\\UwdfExcl", GENERIC_READ, FILE_OPEN, 0, &a), STATUS_SUCCESS);
    ck_assert_status(tu_target_open(e.device, "\\Device\\UwdfExcl", GENERIC_READ, FILE_OPEN, 0, &b),
                     STATUS_ACCESS_DENIED);
    WdfObjectDelete(b);
    WdfIoTargetClose(a);
    ck_assert_status(tu_target_open(e.device, "\\Device\\UwdfExcl", GENERIC_READ, FILE_OPEN, 0, &b), STATUS_SUCCESS);
    WdfObjectDelete(b);
    WdfObjectDelete(a);
    ck_assert_status(tu_target_open(e.device, "\\Device\\UwdfShared", GENERIC_READ, FILE_OPEN, 0, &a),
                     STATUS_SUCCESS);
    ck_assert_status(tu_target_open(e.device, "\\Device\\UwdfShared", GENERIC_READ, FILE_OPEN, 0, &b),
                     STATUS_SUCCESS);
    WdfObjectDelete(a);
    WdfObjectDelete(b);
    tu_env_fini(&e);
}
END_TEST

/* ---- file objects down a stack (AutoForwardCleanupClose) ---- */

// {3B8F1C2D-5E4A-4F6B-9C7D-1E2F3A4B5C6D}
DEFINE_GUID(GUID_TEST_FILES, 0x3b8f1c2d, 0x5e4a, 0x4f6b, 0x9c, 0x7d, 0x1e, 0x2f, 0x3a, 0x4b, 0x5c, 0x6d);
static WDF_TRI_STATE ffilt_forward; /* the filter's AutoForwardCleanupClose */
static bool ffilt_create_callback;  /* the filter has an EvtDeviceFileCreate that forwards */
static NTSTATUS ffunc_create_status;

static void file_rec(const char *drv, const char *what, WDFFILEOBJECT fo)
{
    char name[64] = "-";
    if (fo && WdfFileObjectGetFileName(fo)->Length)
        RtlStringCbPrintfA(name, sizeof(name), "%wZ", WdfFileObjectGetFileName(fo));
    char cb[80];
    snprintf(cb, sizeof(cb), "%s[%s]", what, name);
    rec(drv, cb, -1);
}

static VOID ffilt_cleanup(WDFFILEOBJECT fo)
{
    file_rec("ffilt", "Cleanup", fo);
}
static VOID ffilt_close(WDFFILEOBJECT fo)
{
    file_rec("ffilt", "Close", fo);
}
static VOID ffilt_create_done(WDFREQUEST req, WDFIOTARGET t, PWDF_REQUEST_COMPLETION_PARAMS p, WDFCONTEXT c)
{
    (void)t, (void)c;
    WdfRequestComplete(req, p->IoStatus.Status);
}
/* The create goes down as KMDF's filter samples send it: the current
 * parameters, a completion routine that completes it. */
static VOID ffilt_create(WDFDEVICE dev, WDFREQUEST req, WDFFILEOBJECT fo)
{
    file_rec("ffilt", "Create", fo);
    WdfRequestFormatRequestUsingCurrentType(req);
    WdfRequestSetCompletionRoutine(req, ffilt_create_done, NULL);
    if (!WdfRequestSend(req, WdfDeviceGetIoTarget(dev), WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(req, WdfRequestGetStatus(req));
}
static VOID ffunc_create(WDFDEVICE dev, WDFREQUEST req, WDFFILEOBJECT fo)
{
    (void)dev;
    file_rec("ffunc", "Create", fo);
    /* the request's file object is the device's own WDFFILEOBJECT */
    ck_assert_ptr_eq(WdfRequestGetFileObject(req), fo);
    WdfRequestComplete(req, ffunc_create_status);
}
static VOID ffunc_cleanup(WDFFILEOBJECT fo)
{
    file_rec("ffunc", "Cleanup", fo);
}
static VOID ffunc_close(WDFFILEOBJECT fo)
{
    file_rec("ffunc", "Close", fo);
}

static NTSTATUS ffilt_add(WDFDRIVER Driver, PWDFDEVICE_INIT init)
{
    (void)Driver;
    WdfFdoInitSetFilter(init);
    WDF_FILEOBJECT_CONFIG fc;
    WDF_FILEOBJECT_CONFIG_INIT(&fc, ffilt_create_callback ? ffilt_create : NULL, ffilt_close, ffilt_cleanup);
    fc.AutoForwardCleanupClose = ffilt_forward;
    WdfDeviceInitSetFileObjectConfig(init, &fc, WDF_NO_OBJECT_ATTRIBUTES);
    WDFDEVICE dev;
    return WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &dev);
}

static NTSTATUS ffunc_add(WDFDRIVER Driver, PWDFDEVICE_INIT init)
{
    (void)Driver;
    WDF_FILEOBJECT_CONFIG fc;
    WDF_FILEOBJECT_CONFIG_INIT(&fc, ffunc_create, ffunc_close, ffunc_cleanup);
    WdfDeviceInitSetFileObjectConfig(init, &fc, WDF_NO_OBJECT_ATTRIBUTES);
    WDFDEVICE dev;
    NTSTATUS st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &dev);
    if (NT_SUCCESS(st))
        st = WdfDeviceCreateDeviceInterface(dev, &GUID_TEST_FILES, NULL);
    return st;
}

static NTSTATUS ffilt_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, ffilt_add);
    return WdfDriverCreate(d, r, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}
static NTSTATUS ffunc_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, ffunc_add);
    return WdfDriverCreate(d, r, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}

/* The filter stack ffilt over ffunc arrives; opens "<interface>\\name"
 * (the open's status), closes it if it opened. */
static NTSTATUS files_open_close(struct tu_env *e, WDF_TRI_STATE forward, bool filter_create, NTSTATUS func_status)
{
    WDFDRIVER filt, func;
    ffilt_forward = forward;
    ffilt_create_callback = filter_create;
    ffunc_create_status = func_status;
    ck_assert_status(UwdfLoadDriver(ffilt_entry, "ffilt", &filt), STATUS_SUCCESS);
    ck_assert_status(UwdfLoadDriver(ffunc_entry, "ffunc", &func), STATUS_SUCCESS);
    static const char *const filters[] = { "ffilt" };
    UWDF_DEVICE_DESCRIPTION d;
    UWDF_DEVICE_DESCRIPTION_INIT(&d, "root\\files", "ffunc");
    d.UpperFilters = filters;
    d.UpperFilterCount = 1;
    UWDF_DEVNODE node;
    ck_assert_status(UwdfDeviceArrive(&d, &node), STATUS_SUCCESS);
    PZZWSTR list;
    ck_assert_status(IoGetDeviceInterfaces(&GUID_TEST_FILES, NULL, 0, &list), STATUS_SUCCESS);
    char link[256];
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, list);
    RtlStringCbPrintfA(link, sizeof(link), "%wZ\\name", &us);
    ExFreePool(list);
    trace_reset();
    WDFIOTARGET t;
    NTSTATUS st = tu_target_open(e->device, link, GENERIC_READ, FILE_OPEN, 0, &t);
    WdfObjectDelete(t);
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    ck_assert_status(UwdfUnloadDriver(filt), STATUS_SUCCESS);
    ck_assert_status(UwdfUnloadDriver(func), STATUS_SUCCESS);
    return st;
}

START_TEST(a_filter_forwards_create_cleanup_and_close_by_default)
{
    struct tu_env e;
    tu_env_init(&e);
    /* WdfUseDefault on a filter: the create goes down (no create callback
     * or queue of its own), cleanup and close go down after its own, each
     * stage through the stack before the next (IRP_MJ_CLEANUP, then
     * IRP_MJ_CLOSE) */
    ck_assert_status(files_open_close(&e, WdfUseDefault, false, STATUS_SUCCESS), STATUS_SUCCESS);
    EXPECT_TRACE("ffunc:Create[\\name]", "ffilt:Cleanup[\\name]", "ffunc:Cleanup[\\name]", "ffilt:Close[\\name]",
                 "ffunc:Close[\\name]");
    /* the device below fails the create: the open fails, and nobody gets
     * a cleanup or close */
    ck_assert_status(files_open_close(&e, WdfTrue, false, STATUS_ACCESS_DENIED), STATUS_ACCESS_DENIED);
    EXPECT_TRACE("ffunc:Create[\\name]");
    /* WdfFalse: the filter completes the create and keeps cleanup and close */
    ck_assert_status(files_open_close(&e, WdfFalse, false, STATUS_SUCCESS), STATUS_SUCCESS);
    EXPECT_TRACE("ffilt:Cleanup[\\name]", "ffilt:Close[\\name]");
    /* WdfFalse with an EvtDeviceFileCreate that forwards the create
     * itself: the device below saw the create but, as on Windows, never
     * the cleanup or close */
    ck_assert_status(files_open_close(&e, WdfFalse, true, STATUS_SUCCESS), STATUS_SUCCESS);
    EXPECT_TRACE("ffilt:Create[\\name]", "ffunc:Create[\\name]", "ffilt:Cleanup[\\name]", "ffilt:Close[\\name]");
    /* WdfTrue with a forwarding EvtDeviceFileCreate: all of it */
    ck_assert_status(files_open_close(&e, WdfTrue, true, STATUS_SUCCESS), STATUS_SUCCESS);
    EXPECT_TRACE("ffilt:Create[\\name]", "ffunc:Create[\\name]", "ffilt:Cleanup[\\name]", "ffunc:Cleanup[\\name]",
                 "ffilt:Close[\\name]", "ffunc:Close[\\name]");
    tu_env_fini(&e);
}
END_TEST

/* ---- WdfDeviceGetDevicePnpState and WdfDeviceSetFailed ---- */

// {7A1B2C3D-4E5F-4061-8273-9485A6B7C8D9}
DEFINE_GUID(GUID_TEST_STATE, 0x7a1b2c3d, 0x4e5f, 0x4061, 0x82, 0x73, 0x94, 0x85, 0xa6, 0xb7, 0xc8, 0xd9);
static bool sdrv_fail_in_smio;    /* SmioInit calls WdfDeviceSetFailed(NoRestart) */
static bool sdrv_fail_in_suspend; /* SmioSuspend calls it twice: NoRestart, AttemptRestart */

static NTSTATUS state_rec(WDFDEVICE d, const char *cb)
{
    char what[48];
    snprintf(what, sizeof(what), "%s=%X", cb, (unsigned)WdfDeviceGetDevicePnpState(d));
    return rec("sdrv", what, -1);
}
static NTSTATUS sdrv_prepare(WDFDEVICE d, WDFCMRESLIST r, WDFCMRESLIST t)
{
    (void)r, (void)t;
    return state_rec(d, "Prepare");
}
static NTSTATUS sdrv_smioinit(WDFDEVICE d)
{
    if (sdrv_fail_in_smio)
        WdfDeviceSetFailed(d, WdfDeviceFailedNoRestart); /* later: the arrival finishes first */
    return state_rec(d, "SmioInit");
}
static NTSTATUS sdrv_smiosuspend(WDFDEVICE d)
{
    /* inside a PnP operation: the removal waits for it, so the device is
     * still there for the second call */
    if (sdrv_fail_in_suspend) {
        WdfDeviceSetFailed(d, WdfDeviceFailedNoRestart);
        WdfDeviceSetFailed(d, WdfDeviceFailedAttemptRestart);
    }
    return STATUS_SUCCESS;
}
static NTSTATUS sdrv_query_remove(WDFDEVICE d)
{
    return state_rec(d, "QueryRemove");
}
static VOID sdrv_surprise(WDFDEVICE d)
{
    state_rec(d, "Surprise");
}
static NTSTATUS sdrv_release(WDFDEVICE d, WDFCMRESLIST t)
{
    (void)t;
    return state_rec(d, "Release");
}
static VOID sdrv_cleanup(WDFOBJECT d)
{
    state_rec((WDFDEVICE)d, "Cleanup");
}

static NTSTATUS sdrv_add(WDFDRIVER Driver, PWDFDEVICE_INIT init)
{
    (void)Driver;
    WDF_PNPPOWER_EVENT_CALLBACKS pnp;
    WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&pnp);
    pnp.EvtDevicePrepareHardware = sdrv_prepare;
    pnp.EvtDeviceReleaseHardware = sdrv_release;
    pnp.EvtDeviceSelfManagedIoInit = sdrv_smioinit;
    pnp.EvtDeviceSelfManagedIoSuspend = sdrv_smiosuspend;
    pnp.EvtDeviceQueryRemove = sdrv_query_remove;
    pnp.EvtDeviceSurpriseRemoval = sdrv_surprise;
    WdfDeviceInitSetPnpPowerEventCallbacks(init, &pnp);
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    attrs.EvtCleanupCallback = sdrv_cleanup;
    WDFDEVICE dev;
    NTSTATUS st = WdfDeviceCreate(&init, &attrs, &dev);
    if (NT_SUCCESS(st)) {
        state_rec(dev, "Add");
        st = WdfDeviceCreateDeviceInterface(dev, &GUID_TEST_STATE, NULL);
    }
    return st;
}

static NTSTATUS sdrv_entry(PDRIVER_OBJECT d, PUNICODE_STRING r)
{
    WDF_DRIVER_CONFIG config;
    WDF_DRIVER_CONFIG_INIT(&config, sdrv_add);
    return WdfDriverCreate(d, r, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}

static UWDF_DEVNODE sdrv_arrive(WDFDRIVER *drv)
{
    ck_assert_status(UwdfLoadDriver(sdrv_entry, "sdrv", drv), STATUS_SUCCESS);
    UWDF_DEVICE_DESCRIPTION d;
    UWDF_DEVICE_DESCRIPTION_INIT(&d, "root\\state", "sdrv");
    UWDF_DEVNODE node;
    trace_reset();
    ck_assert_status(UwdfDeviceArrive(&d, &node), STATUS_SUCCESS);
    return node;
}

/* Waits up to 10 s for the trace to hold n entries (the removal
 * WdfDeviceSetFailed queues runs on a framework thread), then 100 ms more
 * for anything that should not come. */
static void wait_trace(int n)
{
    int len = 0;
    for (int i = 0; i < 1000 && len < n; i++) {
        usleep(10 * 1000);
        pthread_mutex_lock(&trace_lock);
        len = trace_len;
        pthread_mutex_unlock(&trace_lock);
    }
    usleep(100 * 1000);
}

START_TEST(the_pnp_state_follows_start_query_and_removal)
{
    struct tu_env e;
    tu_env_init(&e);
    /* a control device has no PnP: ObjectCreated throughout */
    WDFDEVICE ctl = tu_named_device(e.driver, "\\Device\\UwdfStateCtl", WdfDeviceIoBuffered, NULL, WdfIoQueueDispatchManual, NULL, NULL);
    ck_assert_uint_eq(WdfDeviceGetDevicePnpState(ctl), WdfDevStatePnpObjectCreated);
    WDFDRIVER drv;
    UWDF_DEVNODE node = sdrv_arrive(&drv);
    /* 105 Init, 108 HardwareAvailable, 119 Started */
    EXPECT_TRACE("sdrv:Add=105", "sdrv:Prepare=108", "sdrv:SmioInit=108");
    WDFDEVICE dev = UwdfDevNodeGetDevice(node, NULL);
    ck_assert_uint_eq(WdfDeviceGetDevicePnpState(dev), WdfDevStatePnpStarted);
    /* power changes leave the PnP state */
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_SUCCESS);
    ck_assert_uint_eq(WdfDeviceGetDevicePnpState(dev), WdfDevStatePnpStarted);
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD0), STATUS_SUCCESS);
    trace_reset();
    /* 10B QueryRemoveAskDriver, 10E QueriedRemoving, 113 Removed */
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    EXPECT_TRACE("sdrv:QueryRemove=10B", "sdrv:Release=10E", "sdrv:Cleanup=113");
    ck_assert_status(UwdfUnloadDriver(drv), STATUS_SUCCESS);
    /* surprise: 127 SurpriseRemoveIoStarted */
    node = sdrv_arrive(&drv);
    trace_reset();
    ck_assert_status(UwdfDeviceSurpriseRemove(node), STATUS_SUCCESS);
    EXPECT_TRACE("sdrv:Surprise=127", "sdrv:Release=127", "sdrv:Cleanup=113");
    ck_assert_status(UwdfUnloadDriver(drv), STATUS_SUCCESS);
    tu_env_fini(&e);
}
END_TEST

START_TEST(set_failed_surprise_removes_and_restarts_when_asked)
{
    struct tu_env e;
    tu_env_init(&e);
    WDFDRIVER drv;
    UWDF_DEVNODE node = sdrv_arrive(&drv);
    WDFDEVICE dev = UwdfDevNodeGetDevice(node, NULL);
    char link[256];
    PZZWSTR list;
    ck_assert_status(IoGetDeviceInterfaces(&GUID_TEST_STATE, NULL, 0, &list), STATUS_SUCCESS);
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, list);
    RtlStringCbPrintfA(link, sizeof(link), "%wZ", &us);
    ExFreePool(list);
    trace_reset();
    /* AttemptRestart: the surprise removal, then the stack again, on the
     * same devnode and interface link */
    WdfDeviceSetFailed(dev, WdfDeviceFailedAttemptRestart);
    wait_trace(6);
    EXPECT_TRACE("sdrv:Surprise=127", "sdrv:Release=127", "sdrv:Cleanup=113", "sdrv:Add=105", "sdrv:Prepare=108",
                 "sdrv:SmioInit=108");
    WDFDEVICE again = UwdfDevNodeGetDevice(node, NULL);
    ck_assert_ptr_nonnull(again);
    ck_assert_uint_eq(WdfDeviceGetDevicePnpState(again), WdfDevStatePnpStarted);
    ck_assert_status(IoGetDeviceInterfaces(&GUID_TEST_STATE, NULL, 0, &list), STATUS_SUCCESS);
    char link2[256];
    RtlInitUnicodeString(&us, list);
    RtlStringCbPrintfA(link2, sizeof(link2), "%wZ", &us);
    ExFreePool(list);
    ck_assert_str_eq(link, link2);
    /* NoRestart: removed, the devnode stays failed until removed; two
     * calls make one removal, NoRestart winning (made in a power-down, so
     * that the device is alive for both) */
    sdrv_fail_in_suspend = true;
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_SUCCESS);
    sdrv_fail_in_suspend = false;
    wait_trace(3);
    ck_assert_ptr_null(UwdfDevNodeGetDevice(node, NULL));
    EXPECT_TRACE("sdrv:Surprise=127", "sdrv:Release=127", "sdrv:Cleanup=113");
    ck_assert_status(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_INVALID_DEVICE_STATE);
    ck_assert_status(IoGetDeviceInterfaces(&GUID_TEST_STATE, NULL, 0, &list), STATUS_SUCCESS);
    ck_assert_uint_eq(list[0], 0); /* no interface */
    ExFreePool(list);
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    /* from a PnP callback: the arrival finishes, then the removal runs */
    sdrv_fail_in_smio = true;
    UWDF_DEVICE_DESCRIPTION d;
    UWDF_DEVICE_DESCRIPTION_INIT(&d, "root\\state", "sdrv");
    trace_reset();
    ck_assert_status(UwdfDeviceArrive(&d, &node), STATUS_SUCCESS);
    sdrv_fail_in_smio = false;
    wait_trace(6);
    EXPECT_TRACE("sdrv:Add=105", "sdrv:Prepare=108", "sdrv:SmioInit=108", "sdrv:Surprise=127", "sdrv:Release=127",
                 "sdrv:Cleanup=113");
    ck_assert_ptr_null(UwdfDevNodeGetDevice(node, NULL));
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    /* the wrong action, and a control device: nothing happens */
    node = NULL;
    ck_assert_status(UwdfDeviceArrive(&d, &node), STATUS_SUCCESS);
    dev = UwdfDevNodeGetDevice(node, NULL);
    WdfDeviceSetFailed(dev, WdfDeviceFailedUndefined);
    WdfDeviceSetFailed(tu_named_device(e.driver, "\\Device\\UwdfFailCtl", WdfDeviceIoBuffered, NULL, WdfIoQueueDispatchManual, NULL, NULL), WdfDeviceFailedNoRestart);
    usleep(100 * 1000);
    ck_assert_ptr_eq(UwdfDevNodeGetDevice(node, NULL), dev);
    ck_assert_status(UwdfUnloadDriver(drv), STATUS_SUCCESS);
    tu_env_fini(&e);
}
END_TEST

START_TEST(system_shutdown_notifies_control_devices_last_chance_last)
{
    struct tu_env e;
    tu_env_init(&e);
    atomic_store(&shutdowns[0], 0);
    atomic_store(&shutdowns[1], 0);
    control(e.driver, L"\\Device\\UwdfLast", false, on_last_chance, WdfDeviceLastChanceShutdown);
    control(e.driver, L"\\Device\\UwdfFirst", false, on_shutdown, WdfDeviceShutdown);
    UwdfSystemShutdown();
    ck_assert_int_eq(atomic_load(&shutdowns[0]), 1);
    ck_assert_int_eq(atomic_load(&shutdowns[1]), 1);
    tu_env_fini(&e);
}
END_TEST

START_TEST(init_ddis_on_the_wrong_init_do_nothing_and_bug_check_under_the_verifier)
{
    struct tu_env e;
    tu_env_init(&e);
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(e.driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    WdfFdoInitSetFilter(init); /* not a PnP init: nothing */
    WDF_PNPPOWER_EVENT_CALLBACKS cb;
    WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&cb);
    cb.Size--;
    WdfDeviceInitSetPnpPowerEventCallbacks(init, &cb);
    WdfControlDeviceInitSetShutdownNotification(init, on_shutdown, 0x4);
    ck_assert_int_eq(tu_last_bugcheck.count, 0);
    UwdfSetVerifier(TRUE);
    WdfFdoInitSetFilter(init);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "WdfFdoInitSetFilter");
    WdfDeviceInitSetPnpPowerEventCallbacks(init, &cb);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "wrong Size");
    WdfControlDeviceInitSetShutdownNotification(init, on_shutdown, 0x4);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "unknown flags");
    UwdfSetVerifier(FALSE);
    WdfDeviceInitFree(init);
    tu_env_fini(&e);
}
END_TEST

/* ---- scale ---- */

START_TEST(a_thousand_arrive_remove_cycles_keep_object_counts_flat)
{
    struct host h;
    host_load_on(&h, -1);
    trace_device_add = false;
    UWDF_DEVNODE node;
    /* one cycle first: lazily made things (handle chunks, engines) exist */
    ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
    ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
    UWDF_OBJECT_COUNT before[32], after[32];
    ULONG nb = 32, na = 32;
    ck_assert_status(UwdfQueryObjectCounts(before, &nb), STATUS_SUCCESS);
    int cycles = tu_running_on_valgrind() ? 100 : 1000;
    for (int i = 0; i < cycles; i++) {
        ck_assert_status(arrive(h.file, true, &node), STATUS_SUCCESS);
        if (i % 2)
            ck_assert_status(UwdfDeviceRemove(node), STATUS_SUCCESS);
        else
            ck_assert_status(UwdfDeviceSurpriseRemove(node), STATUS_SUCCESS);
        trace_reset();
    }
    ck_assert_status(UwdfQueryObjectCounts(after, &na), STATUS_SUCCESS);
    ck_assert_uint_eq(na, nb);
    for (ULONG i = 0; i < na; i++)
        ck_assert_msg(after[i].Live == before[i].Live, "%s: %llu live, was %llu", after[i].TypeName,
                      (unsigned long long)after[i].Live, (unsigned long long)before[i].Live);
    host_unload(&h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pnp");
    TCase *tc = tu_tcase(s, "host", 120);
    tcase_add_test(tc, drivers_load_by_pointer_and_from_a_shared_object);
    tcase_add_test(tc, the_registry_path_outlives_driver_entry);
    tcase_add_test(tc, a_failing_driver_entry_fails_the_load_without_unload);
    tcase_add_test(tc, arrival_builds_bottom_up_and_orderly_removal_goes_top_down);
    tcase_add_test(tc, a_query_remove_veto_keeps_the_stack_started);
    tcase_add_test(tc, power_down_and_up_run_the_documented_order);
    tcase_add_test(tc, a_failing_start_callback_unwinds_and_fails_the_arrival);
    tcase_add_test(tc, a_failing_power_up_surprise_removes_the_stack);
    tcase_add_test(tc, unload_removes_the_drivers_devices_first);
    tcase_add_test(tc, a_filter_stack_reads_and_writes_the_hardware_file);
    tcase_add_test(tc, a_power_managed_queue_holds_requests_in_dx_and_releases_them_in_d0);
    tcase_add_test(tc, surprise_removal_with_io_in_flight_on_a_file_and_a_loop_device);
    tcase_add_test(tc, interfaces_notify_arrival_and_removal_and_open_by_link);
    tcase_add_test(tc, an_exclusive_device_opens_once_at_a_time);
    tcase_add_test(tc, a_filter_forwards_create_cleanup_and_close_by_default);
    tcase_add_test(tc, the_pnp_state_follows_start_query_and_removal);
    tcase_add_test(tc, set_failed_surprise_removes_and_restarts_when_asked);
    tcase_add_test(tc, system_shutdown_notifies_control_devices_last_chance_last);
    tcase_add_test(tc, init_ddis_on_the_wrong_init_do_nothing_and_bug_check_under_the_verifier);
    tcase_add_test(tc, a_thousand_arrive_remove_cycles_keep_object_counts_flat);
    return tu_run_suite(s);
}
