/* File objects (lib/fileobject.c), requests in the caller's context
 * (lib/caller_context.c) and the buffers a device's I/O type and an
 * IOCTL's transfer method present, driven as a client drives a driver:
 * WDF I/O targets opened by name on an in-process control device, and
 * Zw handles (ZwCreateFile on \Device\X or a symbolic link).
 * Device targets carry their I/O through the framework alone (the null
 * engine carries only completions), so these cases run once, not per
 * engine. */
#define _GNU_SOURCE
#include "testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_TIMEOUT_SEC 120
#define RAM_SIZE 4096
#define LOG_MAX 64

#define IOCTL_T_BUFFERED CTL_CODE(FILE_DEVICE_UNKNOWN, 0x900, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_T_IN_DIRECT CTL_CODE(FILE_DEVICE_UNKNOWN, 0x901, METHOD_IN_DIRECT, FILE_ANY_ACCESS)
#define IOCTL_T_OUT_DIRECT CTL_CODE(FILE_DEVICE_UNKNOWN, 0x902, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)
#define IOCTL_T_NEITHER CTL_CODE(FILE_DEVICE_UNKNOWN, 0x903, METHOD_NEITHER, FILE_ANY_ACCESS)
#define IOCTL_T_REJECT CTL_CODE(FILE_DEVICE_UNKNOWN, 0x904, METHOD_BUFFERED, FILE_ANY_ACCESS)

/* What the driver saw, checked by the test thread. */
static struct {
    char log[LOG_MAX][64];
    int n;
    char name[128];
    WDFFILEOBJECT created, cleaned, closed;
    WDFFILEOBJECT seen_on_io;
    bool device_matches, request_fo_matches, ctx_ok;
    WDF_REQUEST_PARAMETERS create_params;
    int destroys;
    /* buffers */
    int layout_bad;
    char layout_why[128];
    /* caller context */
    int icc_calls;
    NTSTATUS unsafe_in, unsafe_out, probe_zero, unsafe_outside, probe_outside, enqueue_outside, unsafe_wrong_type;
    KPROCESSOR_MODE mode;
} g;

static void g_reset(void)
{
    memset(&g, 0, sizeof(g));
}

static void logf_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_event(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (g.n < LOG_MAX)
        vsnprintf(g.log[g.n++], sizeof(g.log[0]), fmt, ap);
    va_end(ap);
}

static bool log_is(const char *const *want, int n)
{
    if (g.n != n)
        return false;
    for (int i = 0; i < n; i++)
        if (strcmp(g.log[i], want[i]) != 0)
            return false;
    return true;
}

static void layout_fail(const char *why)
{
    if (!g.layout_bad++)
        snprintf(g.layout_why, sizeof(g.layout_why), "%s", why);
}

typedef struct {
    ULONG magic;
} FO_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(FO_CTX, fo_ctx)

typedef struct {
    unsigned char ram[RAM_SIZE];
} DEV_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(DEV_CTX, dev_ctx)

typedef struct {
    WDFMEMORY in, out;
} REQ_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(REQ_CTX, req_ctx)

#define FO_MAGIC 0xF11Eu

/* ---- the driver ---- */

static VOID fo_create(WDFDEVICE Device, WDFREQUEST Request, WDFFILEOBJECT FileObject)
{
    PUNICODE_STRING name = FileObject ? WdfFileObjectGetFileName(FileObject) : NULL;
    size_t k = 0;
    for (size_t i = 0; name && i < name->Length / sizeof(WCHAR) && k + 1 < sizeof(g.name); i++)
        g.name[k++] = (char)name->Buffer[i];
    g.name[k] = '\0';
    logf_event("create %s", g.name);
    g.created = FileObject;
    g.device_matches = !FileObject || WdfFileObjectGetDevice(FileObject) == Device;
    g.request_fo_matches = WdfRequestGetFileObject(Request) == FileObject;
    WDF_REQUEST_PARAMETERS_INIT(&g.create_params);
    WdfRequestGetParameters(Request, &g.create_params);
    if (FileObject)
        fo_ctx(FileObject)->magic = FO_MAGIC;
    WdfRequestComplete(Request, strcmp(g.name, "\\deny") == 0 ? STATUS_ACCESS_DENIED : STATUS_SUCCESS);
}

static VOID fo_cleanup(WDFFILEOBJECT FileObject)
{
    logf_event("cleanup");
    g.cleaned = FileObject;
    g.ctx_ok = !FileObject || fo_ctx(FileObject)->magic == FO_MAGIC;
}

static VOID fo_close(WDFFILEOBJECT FileObject)
{
    logf_event("close");
    g.closed = FileObject;
}

static VOID fo_ctx_destroy(WDFOBJECT Object)
{
    (void)Object;
    logf_event("destroy");
    g.destroys++;
}

/* The I/O type's layout, as the IRP and the retrieval DDIs show it. */
static void check_rw_layout(WDFREQUEST Request, bool read, void *buf)
{
    PIRP irp = WdfRequestWdmGetIrp(Request);
    WDFDEVICE dev = WdfIoQueueGetDevice(WdfRequestGetIoQueue(Request));
    ULONG flags = WdfDeviceWdmGetDeviceObject(dev)->Flags;
    PMDL mdl = NULL;
    NTSTATUS mst = read ? WdfRequestRetrieveOutputWdmMdl(Request, &mdl) : WdfRequestRetrieveInputWdmMdl(Request, &mdl);
    if (flags & DO_DIRECT_IO) {
        if (!irp->MdlAddress || mst != STATUS_SUCCESS || mdl != irp->MdlAddress ||
            MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority) != buf)
            layout_fail("direct: the buffer is not the IRP's MDL");
    } else if (flags & DO_BUFFERED_IO) {
        if (irp->AssociatedIrp.SystemBuffer != buf || mst != STATUS_SUCCESS)
            layout_fail("buffered: the buffer is not the system buffer");
    } else {
        if (irp->UserBuffer != buf || mst != STATUS_INVALID_DEVICE_REQUEST)
            layout_fail("neither: the buffer is not the requestor's, or an MDL was given");
    }
}

/* The device's RAM at the request's offset. */
static void q_rw(WDFQUEUE Queue, WDFREQUEST Request, size_t Length, bool read)
{
    DEV_CTX *d = dev_ctx(WdfIoQueueGetDevice(Queue));
    WDF_REQUEST_PARAMETERS p;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(Request, &p);
    g.seen_on_io = WdfRequestGetFileObject(Request);
    void *buf;
    size_t len;
    LONGLONG off = read ? p.Parameters.Read.DeviceOffset : p.Parameters.Write.DeviceOffset;
    NTSTATUS st = read ? WdfRequestRetrieveOutputBuffer(Request, Length, &buf, &len)
                       : WdfRequestRetrieveInputBuffer(Request, Length, &buf, &len);
    if (!NT_SUCCESS(st) || off < 0 || (size_t)off + len > RAM_SIZE) {
        WdfRequestComplete(Request, NT_SUCCESS(st) ? STATUS_INVALID_PARAMETER : st);
        return;
    }
    check_rw_layout(Request, read, buf);
    if (read)
        memcpy(buf, d->ram + off, len);
    else
        memcpy(d->ram + off, buf, len);
    WdfRequestCompleteWithInformation(Request, STATUS_SUCCESS, len);
}

static VOID q_read(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    q_rw(Queue, Request, Length, true);
}

static VOID q_write(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    q_rw(Queue, Request, Length, false);
}

/* Every method: the output is the input in capitals. */
static VOID q_ioctl(WDFQUEUE Queue, WDFREQUEST Request, size_t OutputBufferLength, size_t InputBufferLength,
                    ULONG IoControlCode)
{
    (void)Queue;
    g.seen_on_io = WdfRequestGetFileObject(Request);
    PIRP irp = WdfRequestWdmGetIrp(Request);
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    REQ_CTX *rc = NULL;
    if (IoControlCode == IOCTL_T_NEITHER && (rc = WdfObjectGetTypedContext(Request, REQ_CTX)) && rc->in) {
        /* made in the caller's context: the probed memory */
        in = WdfMemoryGetBuffer(rc->in, &in_len);
        out = WdfMemoryGetBuffer(rc->out, &out_len);
        void *b;
        WDFMEMORY m;
        g.unsafe_outside = WdfRequestRetrieveUnsafeUserInputBuffer(Request, 0, &b, NULL);
        g.probe_outside = WdfRequestProbeAndLockUserBufferForRead(Request, in, in_len, &m);
        g.enqueue_outside = WdfDeviceEnqueueRequest(WdfIoQueueGetDevice(Queue), Request);
        g.mode = WdfRequestGetRequestorMode(Request);
        if (WdfMemoryCopyFromBuffer(rc->in, 0, "x", 1) != STATUS_ACCESS_VIOLATION)
            layout_fail("ProbeAndLockUserBufferForRead memory is writable");
    } else {
        if (!NT_SUCCESS(WdfRequestRetrieveInputBuffer(Request, InputBufferLength, (PVOID *)&in, &in_len)) ||
            !NT_SUCCESS(WdfRequestRetrieveOutputBuffer(Request, OutputBufferLength, (PVOID *)&out, &out_len))) {
            WdfRequestComplete(Request, STATUS_INVALID_PARAMETER);
            return;
        }
        PMDL mdl = NULL;
        NTSTATUS mst = WdfRequestRetrieveOutputWdmMdl(Request, &mdl);
        switch (METHOD_FROM_CTL_CODE(IoControlCode)) {
        case METHOD_BUFFERED:
            if (in != irp->AssociatedIrp.SystemBuffer || out != irp->AssociatedIrp.SystemBuffer)
                layout_fail("METHOD_BUFFERED: input and output are not the one system buffer");
            break;
        case METHOD_IN_DIRECT:
        case METHOD_OUT_DIRECT:
            if (in != irp->AssociatedIrp.SystemBuffer || mst != STATUS_SUCCESS || mdl != irp->MdlAddress ||
                MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority) != out)
                layout_fail("METHOD_*_DIRECT: input not the system buffer, or output not the MDL");
            break;
        default:
            if (in != s->Parameters.DeviceIoControl.Type3InputBuffer || out != irp->UserBuffer ||
                mst != STATUS_INVALID_DEVICE_REQUEST)
                layout_fail("METHOD_NEITHER: not Type3InputBuffer and UserBuffer, or an MDL was given");
            break;
        }
    }
    if (out_len < in_len) {
        WdfRequestComplete(Request, STATUS_BUFFER_TOO_SMALL);
        return;
    }
    char tmp[256];
    size_t n = in_len < sizeof(tmp) ? in_len : sizeof(tmp);
    memcpy(tmp, in, n); /* in and out may be one buffer */
    for (size_t i = 0; i < n; i++)
        out[i] = (char)toupper((unsigned char)tmp[i]);
    WdfRequestCompleteWithInformation(Request, STATUS_SUCCESS, n);
}

/* The caller-context callback, as nonpnp uses it: a METHOD_NEITHER IOCTL's
 * buffers are probed and locked here, everything goes on to the queue. */
static VOID icc(WDFDEVICE Device, WDFREQUEST Request)
{
    g.icc_calls++;
    WDF_REQUEST_PARAMETERS p;
    WDF_REQUEST_PARAMETERS_INIT(&p);
    WdfRequestGetParameters(Request, &p);
    if (p.Type == WdfRequestTypeDeviceControl && p.Parameters.DeviceIoControl.IoControlCode == IOCTL_T_REJECT) {
        WdfRequestComplete(Request, STATUS_NOT_SUPPORTED);
        return;
    }
    NTSTATUS st;
    if (p.Type == WdfRequestTypeDeviceControl && p.Parameters.DeviceIoControl.IoControlCode == IOCTL_T_NEITHER) {
        void *in, *out;
        size_t in_len, out_len;
        g.unsafe_in = WdfRequestRetrieveUnsafeUserInputBuffer(Request, 1, &in, &in_len);
        g.unsafe_out = WdfRequestRetrieveUnsafeUserOutputBuffer(Request, 1, &out, &out_len);
        if (!NT_SUCCESS(g.unsafe_in) || !NT_SUCCESS(g.unsafe_out)) {
            WdfRequestComplete(Request, STATUS_INVALID_PARAMETER);
            return;
        }
        WDF_OBJECT_ATTRIBUTES a;
        WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&a, REQ_CTX);
        REQ_CTX *rc;
        st = WdfObjectAllocateContext(Request, &a, (PVOID *)&rc);
        WDFMEMORY m;
        g.probe_zero = WdfRequestProbeAndLockUserBufferForRead(Request, in, 0, &m);
        if (NT_SUCCESS(st))
            st = WdfRequestProbeAndLockUserBufferForRead(Request, in, in_len, &rc->in);
        if (NT_SUCCESS(st))
            st = WdfRequestProbeAndLockUserBufferForWrite(Request, out, out_len, &rc->out);
        if (!NT_SUCCESS(st)) {
            WdfRequestComplete(Request, st);
            return;
        }
    } else if (p.Type == WdfRequestTypeDeviceControl) {
        void *b;
        g.unsafe_wrong_type = WdfRequestRetrieveUnsafeUserInputBuffer(Request, 0, &b, NULL);
    }
    st = WdfDeviceEnqueueRequest(Device, Request);
    if (!NT_SUCCESS(st))
        WdfRequestComplete(Request, st); /* still ours on failure */
}

struct devopts {
    const char *name, *link;
    WDF_DEVICE_IO_TYPE io;
    bool file_config;
    WDF_FILEOBJECT_CLASS cls;
    bool callbacks;
    bool caller_context;
    bool queue; /* a default queue with read, write and IOCTL handlers */
    bool exclusive;
};

static WDFDEVICE make_device(WDFDRIVER driver, const struct devopts *o)
{
    WDFDEVICE dev;
    WCHAR wbuf[128];
    UNICODE_STRING us;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    tu_unicode(&us, wbuf, 128, o->name);
    ck_assert_status(WdfDeviceInitAssignName(init, &us), STATUS_SUCCESS);
    WdfDeviceInitSetIoType(init, o->io);
    if (o->exclusive)
        WdfDeviceInitSetExclusive(init, TRUE);
    if (o->file_config) {
        WDF_FILEOBJECT_CONFIG fc;
        WDF_FILEOBJECT_CONFIG_INIT(&fc, o->callbacks ? fo_create : NULL, o->callbacks ? fo_close : NULL,
                                   o->callbacks ? fo_cleanup : NULL);
        if (o->cls)
            fc.FileObjectClass = o->cls;
        WDF_OBJECT_ATTRIBUTES fa;
        WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&fa, FO_CTX);
        fa.EvtDestroyCallback = fo_ctx_destroy;
        WdfDeviceInitSetFileObjectConfig(init, &fc, &fa);
    }
    if (o->caller_context)
        WdfDeviceInitSetIoInCallerContextCallback(init, icc);
    WDF_OBJECT_ATTRIBUTES da;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&da, DEV_CTX);
    ck_assert_status(WdfDeviceCreate(&init, &da, &dev), STATUS_SUCCESS);
    if (o->link) {
        tu_unicode(&us, wbuf, 128, o->link);
        ck_assert_status(WdfDeviceCreateSymbolicLink(dev, &us), STATUS_SUCCESS);
    }
    if (o->queue) {
        WDF_IO_QUEUE_CONFIG qc;
        WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchSequential);
        qc.EvtIoRead = q_read;
        qc.EvtIoWrite = q_write;
        qc.EvtIoDeviceControl = q_ioctl;
        ck_assert_status(WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, NULL), STATUS_SUCCESS);
    }
    WdfControlFinishInitializing(dev);
    return dev;
}

/* ---- the client ---- */

static NTSTATUS open_target(struct tu_env *e, const char *name, ULONG disposition, ULONG options, WDFIOTARGET *t)
{
    WCHAR wbuf[256];
    UNICODE_STRING us;
    WDF_IO_TARGET_OPEN_PARAMS op;
    if (!*t)
        ck_assert_status(WdfIoTargetCreate(e->device, WDF_NO_OBJECT_ATTRIBUTES, t), STATUS_SUCCESS);
    tu_unicode(&us, wbuf, 256, name);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&op, &us, GENERIC_READ | GENERIC_WRITE);
    op.CreateDisposition = disposition;
    op.CreateOptions = options;
    op.ShareAccess = FILE_SHARE_READ;
    return WdfIoTargetOpen(*t, &op);
}

static NTSTATUS rw(WDFIOTARGET t, bool write, void *buf, size_t len, LONGLONG off, ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, (ULONG)len);
    return write ? WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, bytes)
                 : WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, bytes);
}

static NTSTATUS send_ioctl(WDFIOTARGET t, ULONG code, const char *in, char *out, size_t out_len, ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR di, dout;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&di, (PVOID)in, (ULONG)strlen(in));
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&dout, out, (ULONG)out_len);
    memset(out, 0, out_len);
    return WdfIoTargetSendIoctlSynchronously(t, NULL, code, &di, &dout, NULL, bytes);
}

/* ---- file objects ---- */

START_TEST(open_creates_and_close_cleans_up_then_closes_in_order)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfFo", .link = "\\DosDevices\\uwdfFoLink", .io = WdfDeviceIoBuffered,
                         .file_config = true, .callbacks = true, .queue = true };
    WDFDEVICE dev = make_device(e.driver, &o);
    WDFIOTARGET t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfFo\\log.txt", FILE_OPEN_IF,
                                 FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, &t),
                     STATUS_SUCCESS);
    static const char *const after_open[] = { "create \\log.txt" };
    ck_assert(log_is(after_open, 1));
    ck_assert_ptr_nonnull(g.created);
    ck_assert(g.device_matches);
    ck_assert(g.request_fo_matches);
    ck_assert_int_eq(g.create_params.Type, WdfRequestTypeCreate);
    ck_assert_uint_eq(g.create_params.Parameters.Create.Options >> 24, FILE_OPEN_IF);
    ck_assert_uint_eq(g.create_params.Parameters.Create.Options & 0xFFFFFF,
                      FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    ck_assert_uint_eq(g.create_params.Parameters.Create.ShareAccess, FILE_SHARE_READ);
    ck_assert_ptr_eq(WdfFileObjectWdmGetFileObject(g.created), WdfIoTargetWdmGetTargetFileObject(t));
    ck_assert_ptr_eq(WdfFileObjectGetDevice(g.created), dev);
    ck_assert_uint_eq(WdfFileObjectGetFlags(g.created), WdfIoTargetWdmGetTargetFileObject(t)->Flags);
    /* requests sent through the target carry the file object */
    char buf[16] = "hello";
    ULONG_PTR n;
    ck_assert_status(rw(t, true, buf, 5, 0, &n), STATUS_SUCCESS);
    ck_assert_ptr_eq(g.seen_on_io, g.created);
    WDFFILEOBJECT opened = g.created;
    /* close: cleanup, close, then the file object's context goes */
    WdfIoTargetClose(t);
    static const char *const after_close[] = { "create \\log.txt", "cleanup", "close", "destroy" };
    ck_assert_msg(log_is(after_close, 4), "log: %d events, last %s", g.n, g.n ? g.log[g.n - 1] : "");
    ck_assert_ptr_eq(g.cleaned, opened);
    ck_assert_ptr_eq(g.closed, opened);
    ck_assert(g.ctx_ok);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);

    /* by the symbolic link, the device itself: an empty file name */
    g_reset();
    ck_assert_status(open_target(&e, "\\??\\uwdfFoLink", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    ck_assert_str_eq(g.name, "");
    ck_assert_status(rw(t, false, buf, 5, 0, &n), STATUS_SUCCESS);
    ck_assert_uint_eq(n, 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    ck_assert_ptr_eq(g.seen_on_io, g.created);
    /* a reopen is a close and a new create */
    WDF_IO_TARGET_OPEN_PARAMS op;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&op);
    ck_assert_status(WdfIoTargetOpen(t, &op), STATUS_INVALID_DEVICE_STATE); /* open already */
    WdfObjectDelete(t); /* deleting an open target closes it */
    static const char *const after_delete[] = { "create ", "cleanup", "close", "destroy" };
    ck_assert(log_is(after_delete, 4));
    /* no such device, or a name that is not one */
    t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfNoSuch\\x", FILE_OPEN, 0, &t), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(open_target(&e, "\\Device\\uwdfF", FILE_OPEN, 0, &t), STATUS_OBJECT_NAME_NOT_FOUND);
    tu_env_fini(&e);
}
END_TEST

START_TEST(failed_create_fails_the_open_without_cleanup_or_close)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfFoDeny", .io = WdfDeviceIoBuffered, .file_config = true,
                         .callbacks = true, .queue = true };
    make_device(e.driver, &o);
    WDFIOTARGET t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfFoDeny\\deny", FILE_OPEN, 0, &t), STATUS_ACCESS_DENIED);
    static const char *const want[] = { "create \\deny", "destroy" };
    ck_assert_msg(log_is(want, 2), "log: %d events", g.n);
    ck_assert_int_eq(WdfIoTargetGetState(t), WdfIoTargetClosed);
    char buf[4];
    ULONG_PTR n;
    ck_assert_status(rw(t, false, buf, 4, 0, &n), STATUS_INVALID_DEVICE_STATE);
    /* the target opens again, on an allowed name */
    g_reset();
    ck_assert_status(open_target(&e, "\\Device\\uwdfFoDeny\\ok", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    WdfIoTargetClose(t);
    static const char *const ok[] = { "create \\ok", "cleanup", "close", "destroy" };
    ck_assert(log_is(ok, 4));
    tu_env_fini(&e);
}
END_TEST

START_TEST(devices_without_file_objects_and_create_queues)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    /* no configuration: creates succeed, no WDFFILEOBJECT */
    struct devopts o = { .name = "\\Device\\uwdfFoNone", .io = WdfDeviceIoBuffered, .queue = true };
    make_device(e.driver, &o);
    WDFIOTARGET t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfFoNone", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    char buf[8] = "abc";
    ULONG_PTR n;
    g.seen_on_io = (WDFFILEOBJECT)1;
    ck_assert_status(rw(t, true, buf, 3, 0, &n), STATUS_SUCCESS);
    ck_assert_ptr_null(g.seen_on_io);
    WdfIoTargetClose(t);
    ck_assert_int_eq(g.n, 0);

    /* WdfFileObjectNotRequired: the callbacks run, with NULL */
    struct devopts nr = { .name = "\\Device\\uwdfFoNotReq", .io = WdfDeviceIoBuffered, .file_config = true,
                          .cls = WdfFileObjectNotRequired, .callbacks = true, .queue = true };
    make_device(e.driver, &nr);
    g_reset();
    g.created = (WDFFILEOBJECT)1;
    ck_assert_status(open_target(&e, "\\Device\\uwdfFoNotReq", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    ck_assert_ptr_null(g.created);
    WdfIoTargetClose(t);
    static const char *const want[] = { "create ", "cleanup", "close" };
    ck_assert(log_is(want, 3));

    /* a queue configured for creates gets them in EvtIoDefault */
    struct devopts cq = { .name = "\\Device\\uwdfFoCq", .io = WdfDeviceIoBuffered, .file_config = true,
                          .cls = WdfFileObjectWdfCanUseFsContext2, .queue = true };
    WDFDEVICE dev = make_device(e.driver, &cq);
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT(&qc, WdfIoQueueDispatchManual);
    WDFQUEUE createq;
    ck_assert_status(WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, &createq), STATUS_SUCCESS);
    ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, createq, WdfRequestTypeCreate), STATUS_SUCCESS);
    WdfIoQueuePurgeSynchronously(createq); /* accepts nothing: the create fails */
    g_reset();
    ck_assert_status(open_target(&e, "\\Device\\uwdfFoCq\\q", FILE_OPEN, 0, &t), STATUS_INVALID_DEVICE_STATE);
    ck_assert_int_eq(g.destroys, 1); /* its file object went, without callbacks */
    tu_env_fini(&e);
}
END_TEST

START_TEST(bad_file_object_configurations_are_bug_checks)
{
    struct tu_env e;
    tu_env_init(&e);
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(e.driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    WDF_FILEOBJECT_CONFIG fc;
    WDF_FILEOBJECT_CONFIG_INIT(&fc, fo_create, NULL, NULL);
    ck_assert_uint_eq(fc.FileObjectClass, WdfFileObjectWdfCannotUseFsContexts);
    ck_assert_int_eq(fc.AutoForwardCleanupClose, WdfUseDefault);
    fc.Size = 3;
    WdfDeviceInitSetFileObjectConfig(init, &fc, WDF_NO_OBJECT_ATTRIBUTES);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "Size");
    WDF_FILEOBJECT_CONFIG_INIT(&fc, fo_create, NULL, NULL);
    fc.FileObjectClass = (WDF_FILEOBJECT_CLASS)9;
    WdfDeviceInitSetFileObjectConfig(init, &fc, WDF_NO_OBJECT_ATTRIBUTES);
    tu_expect_bugcheck_reason(WDF_VERIFIER_FATAL_ERROR, "FileObjectClass");
    WDF_FILEOBJECT_CONFIG_INIT(&fc, fo_create, NULL, NULL);
    WDF_OBJECT_ATTRIBUTES fa;
    WDF_OBJECT_ATTRIBUTES_INIT(&fa);
    fa.ParentObject = e.device;
    WdfDeviceInitSetFileObjectConfig(init, &fc, &fa);
    tu_expect_bugcheck_reason(WDF_OBJECT_ERROR, "ParentObject");
    WdfDeviceInitFree(init);
    tu_env_fini(&e);
}
END_TEST

static bool counts_equal(const UWDF_OBJECT_COUNT *a, const UWDF_OBJECT_COUNT *b, ULONG n, char *why, size_t cap)
{
    for (ULONG i = 0; i < n; i++)
        if (a[i].Live != b[i].Live) {
            snprintf(why, cap, "%s: %llu live before, %llu after", a[i].TypeName, (unsigned long long)a[i].Live,
                     (unsigned long long)b[i].Live);
            return false;
        }
    return true;
}

START_TEST(open_close_cycles_leave_object_counts_flat)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfFoCycle", .io = WdfDeviceIoDirect, .file_config = true,
                         .callbacks = true, .queue = true };
    make_device(e.driver, &o);
    WDFIOTARGET t = NULL;
    /* the first cycle makes what stays (the target) */
    ck_assert_status(open_target(&e, "\\Device\\uwdfFoCycle\\c", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    WdfIoTargetClose(t);
    UWDF_OBJECT_COUNT before[32], after[32];
    ULONG nb = 32, na = 32;
    ck_assert_status(UwdfQueryObjectCounts(before, &nb), STATUS_SUCCESS);
    int cycles = tu_running_on_valgrind() ? 1000 : 10000;
    char buf[8] = "cycle";
    for (int i = 0; i < cycles; i++) {
        g.n = 0;
        NTSTATUS st = open_target(&e, i % 7 == 3 ? "\\Device\\uwdfFoCycle\\deny" : "\\Device\\uwdfFoCycle\\c",
                                  FILE_OPEN, 0, &t);
        ck_assert_status(st, i % 7 == 3 ? STATUS_ACCESS_DENIED : STATUS_SUCCESS);
        if (NT_SUCCESS(st)) {
            ULONG_PTR n;
            ck_assert_status(rw(t, true, buf, 5, 8, &n), STATUS_SUCCESS);
            WdfIoTargetClose(t);
        }
    }
    ck_assert_status(UwdfQueryObjectCounts(after, &na), STATUS_SUCCESS);
    ck_assert_uint_eq(na, nb);
    char why[128] = "";
    ck_assert_msg(counts_equal(before, after, na, why, sizeof(why)), "%s", why);
    ck_assert_status(UwdfQueryObjectCount("WDFFILEOBJECT", &after[0]), STATUS_SUCCESS);
    ck_assert_uint_eq(after[0].Live, 0);
    ck_assert_uint_ge(after[0].Created, (ULONGLONG)cycles);
    tu_env_fini(&e);
}
END_TEST

/* ---- Zw handles on devices ---- */

#define IOCTL_T_WRITE_ACCESS CTL_CODE(FILE_DEVICE_UNKNOWN, 0x905, METHOD_BUFFERED, FILE_WRITE_ACCESS)
#define ZW_SYNC_RW (SYNCHRONIZE | GENERIC_READ | GENERIC_WRITE)

static NTSTATUS zw_open(const char *name, ACCESS_MASK access, ULONG options, HANDLE *h, IO_STATUS_BLOCK *iosb)
{
    WCHAR wbuf[256];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    tu_unicode(&us, wbuf, 256, name);
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    *h = (HANDLE)1; /* must be cleared on failure */
    NTSTATUS st = ZwCreateFile(h, access, &oa, iosb, NULL, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_OPEN, options,
                               NULL, 0);
    ck_assert_status(iosb->Status, st);
    if (!NT_SUCCESS(st))
        ck_assert_ptr_null(*h);
    return st;
}

static NTSTATUS zw_rw(HANDLE h, bool write, void *buf, ULONG len, LONGLONG off, IO_STATUS_BLOCK *iosb)
{
    LARGE_INTEGER o = { .QuadPart = off };
    PLARGE_INTEGER po = off < 0 ? NULL : &o;
    return write ? ZwWriteFile(h, NULL, NULL, NULL, iosb, buf, len, po, NULL)
                 : ZwReadFile(h, NULL, NULL, NULL, iosb, buf, len, po, NULL);
}

static NTSTATUS zw_ioctl(HANDLE h, ULONG code, const char *in, char *out, ULONG out_len, IO_STATUS_BLOCK *iosb)
{
    memset(out, 0, out_len);
    return ZwDeviceIoControlFile(h, NULL, NULL, NULL, iosb, code, (PVOID)in, (ULONG)strlen(in), out, out_len);
}

START_TEST(zw_handles_on_devices_read_write_ioctl_and_close_the_file_object)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfZw", .link = "\\DosDevices\\uwdfZwLink", .io = WdfDeviceIoBuffered,
                         .file_config = true, .callbacks = true, .queue = true };
    WDFDEVICE dev = make_device(e.driver, &o);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    ck_assert_status(zw_open("\\Device\\uwdfZw\\f", ZW_SYNC_RW, FILE_SYNCHRONOUS_IO_NONALERT, &h, &iosb),
                     STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_OPENED);
    static const char *const after_open[] = { "create \\f" };
    ck_assert(log_is(after_open, 1));
    ck_assert_ptr_eq(WdfFileObjectGetDevice(g.created), dev);
    ck_assert_uint_eq(g.create_params.Parameters.Create.Options & 0xFFFFFF, FILE_SYNCHRONOUS_IO_NONALERT);
    WDFFILEOBJECT opened = g.created;
    /* a synchronous handle: NULL offsets follow the current position */
    char buf[32];
    ck_assert_status(zw_rw(h, true, "hello", 5, -1, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, 5);
    ck_assert_ptr_eq(g.seen_on_io, opened);
    ck_assert_status(zw_rw(h, true, "world", 5, -1, &iosb), STATUS_SUCCESS);
    FILE_POSITION_INFORMATION pos;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &pos, sizeof(pos), FilePositionInformation), STATUS_SUCCESS);
    ck_assert_int_eq(pos.CurrentByteOffset.QuadPart, 10);
    memset(buf, 0, sizeof(buf));
    ck_assert_status(zw_rw(h, false, buf, 10, 0, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, 10);
    ck_assert_str_eq(buf, "helloworld");
    ck_assert(memcmp(dev_ctx(dev)->ram, "helloworld", 10) == 0);
    /* an explicit offset is the request's */
    ck_assert_status(zw_rw(h, true, "xyz", 3, 200, &iosb), STATUS_SUCCESS);
    ck_assert(memcmp(dev_ctx(dev)->ram + 200, "xyz", 3) == 0);
    /* the driver's failure and count come back */
    ck_assert_status(zw_rw(h, false, buf, 16, RAM_SIZE - 8, &iosb), STATUS_INVALID_PARAMETER);
    ck_assert_status(iosb.Status, STATUS_INVALID_PARAMETER);
    LARGE_INTEGER eof = { .u = { FILE_WRITE_TO_END_OF_FILE, -1 } };
    ck_assert_status(ZwWriteFile(h, NULL, NULL, NULL, &iosb, "x", 1, &eof, NULL), STATUS_INVALID_PARAMETER);
    /* IOCTLs */
    char out[16];
    ck_assert_status(zw_ioctl(h, IOCTL_T_BUFFERED, "abc", out, sizeof(out), &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, 3);
    ck_assert_str_eq(out, "ABC");
    ck_assert_ptr_eq(g.seen_on_io, opened);
    ck_assert_status(zw_ioctl(h, IOCTL_T_BUFFERED, "abcdef", out, 2, &iosb), STATUS_BUFFER_TOO_SMALL);
    ck_assert_status(iosb.Status, STATUS_BUFFER_TOO_SMALL);
    FILE_STANDARD_INFORMATION si;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &si, sizeof(si), FileStandardInformation),
                     STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(ZwFlushBuffersFile(h, &iosb), STATUS_INVALID_DEVICE_REQUEST);
    /* close: cleanup, then close */
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    static const char *const after_close[] = { "create \\f", "cleanup", "close", "destroy" };
    ck_assert_msg(log_is(after_close, 4), "log: %d events, last %s", g.n, g.n ? g.log[g.n - 1] : "");
    ck_assert_ptr_eq(g.cleaned, opened);
    ck_assert_ptr_eq(g.closed, opened);
    ck_assert_status(ZwClose(h), STATUS_INVALID_HANDLE);

    /* by the symbolic link, read-only and asynchronous */
    static const char *const links[] = { "\\??\\uwdfZwLink", "\\DosDevices\\uwdfZwLink", "\\GLOBAL??\\uwdfZwLink" };
    for (size_t i = 0; i < 3; i++) {
        g_reset();
        ck_assert_status(zw_open(links[i], GENERIC_READ, 0, &h, &iosb), STATUS_SUCCESS);
        ck_assert_str_eq(g.name, "");
        memset(buf, 0, sizeof(buf));
        ck_assert_status(zw_rw(h, false, buf, 10, 0, &iosb), STATUS_SUCCESS);
        ck_assert_str_eq(buf, "helloworld");
        ck_assert_status(zw_rw(h, false, buf, 10, -1, &iosb), STATUS_INVALID_PARAMETER); /* no position */
        ck_assert_status(zw_rw(h, true, "no", 2, 0, &iosb), STATUS_ACCESS_DENIED);
        ck_assert_status(zw_ioctl(h, IOCTL_T_WRITE_ACCESS, "a", out, sizeof(out), &iosb), STATUS_ACCESS_DENIED);
        ck_assert_status(zw_ioctl(h, IOCTL_T_BUFFERED, "q", out, sizeof(out), &iosb), STATUS_SUCCESS);
        ck_assert_str_eq(out, "Q");
        ck_assert_status(ZwClose(h), STATUS_SUCCESS);
        static const char *const cycle[] = { "create ", "cleanup", "close", "destroy" };
        ck_assert_msg(log_is(cycle, 4), "%s: %d events", links[i], g.n);
    }
    /* names that lead to no device */
    ck_assert_status(zw_open("\\Device\\uwdfZwNoSuch", GENERIC_READ, 0, &h, &iosb), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(zw_open("\\??\\uwdfZwNoSuch", GENERIC_READ, 0, &h, &iosb), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(zw_open("\\Device\\uwdfZ", GENERIC_READ, 0, &h, &iosb), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(zw_open("\\Device\\uwdfZwNoSuch\\x", GENERIC_READ, 0, &h, &iosb), STATUS_OBJECT_PATH_NOT_FOUND);
    tu_env_fini(&e);
}
END_TEST

START_TEST(zw_device_create_failure_and_exclusive_opens_leave_no_handle)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfZwDeny", .io = WdfDeviceIoBuffered, .file_config = true,
                         .callbacks = true, .queue = true };
    make_device(e.driver, &o);
    HANDLE h, h2;
    IO_STATUS_BLOCK iosb;
    ck_assert_status(zw_open("\\Device\\uwdfZwDeny\\deny", GENERIC_READ, 0, &h, &iosb), STATUS_ACCESS_DENIED);
    static const char *const denied[] = { "create \\deny", "destroy" };
    ck_assert_msg(log_is(denied, 2), "log: %d events", g.n);
    UWDF_OBJECT_COUNT c;
    ck_assert_status(UwdfQueryObjectCount("WDFIOTARGET", &c), STATUS_SUCCESS);
    ULONGLONG targets = c.Live;
    ck_assert_status(zw_open("\\Device\\uwdfZwDeny\\deny", GENERIC_READ, 0, &h, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(UwdfQueryObjectCount("WDFIOTARGET", &c), STATUS_SUCCESS);
    ck_assert_uint_eq(c.Live, targets);

    struct devopts x = { .name = "\\Device\\uwdfZwExcl", .link = "\\DosDevices\\uwdfZwExclLink",
                         .io = WdfDeviceIoBuffered, .queue = true, .exclusive = true };
    make_device(e.driver, &x);
    ck_assert_status(UwdfQueryObjectCount("WDFIOTARGET", &c), STATUS_SUCCESS);
    targets = c.Live; /* the new device's own target is one more */
    ck_assert_status(zw_open("\\Device\\uwdfZwExcl", GENERIC_READ, 0, &h, &iosb), STATUS_SUCCESS);
    ck_assert_status(UwdfQueryObjectCount("WDFIOTARGET", &c), STATUS_SUCCESS);
    ck_assert_uint_eq(c.Live, targets + 1);
    ck_assert_status(zw_open("\\??\\uwdfZwExclLink", GENERIC_READ, 0, &h2, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    ck_assert_status(zw_open("\\??\\uwdfZwExclLink", GENERIC_READ, 0, &h2, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h2), STATUS_SUCCESS);
    ck_assert_status(UwdfQueryObjectCount("WDFIOTARGET", &c), STATUS_SUCCESS);
    ck_assert_uint_eq(c.Live, targets);
    tu_env_fini(&e);
}
END_TEST

START_TEST(zw_device_open_close_cycles_leave_object_counts_flat)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfZwCycle", .io = WdfDeviceIoDirect, .file_config = true,
                         .callbacks = true, .queue = true };
    make_device(e.driver, &o);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    /* the first cycle makes what stays */
    ck_assert_status(zw_open("\\Device\\uwdfZwCycle\\c", ZW_SYNC_RW, FILE_SYNCHRONOUS_IO_NONALERT, &h, &iosb),
                     STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    UWDF_OBJECT_COUNT before[32], after[32];
    ULONG nb = 32, na = 32;
    ck_assert_status(UwdfQueryObjectCounts(before, &nb), STATUS_SUCCESS);
    char buf[8] = "cycle";
    for (int i = 0; i < 1000; i++) {
        g.n = 0;
        NTSTATUS st = zw_open(i % 7 == 3 ? "\\Device\\uwdfZwCycle\\deny" : "\\Device\\uwdfZwCycle\\c", ZW_SYNC_RW,
                              FILE_SYNCHRONOUS_IO_NONALERT, &h, &iosb);
        ck_assert_status(st, i % 7 == 3 ? STATUS_ACCESS_DENIED : STATUS_SUCCESS);
        if (NT_SUCCESS(st)) {
            ck_assert_status(zw_rw(h, true, buf, 5, 8, &iosb), STATUS_SUCCESS);
            ck_assert_status(ZwClose(h), STATUS_SUCCESS);
            ck_assert_int_eq(g.n, 4); /* create, cleanup, close, destroy */
        }
    }
    ck_assert_status(UwdfQueryObjectCounts(after, &na), STATUS_SUCCESS);
    ck_assert_uint_eq(na, nb);
    char why[128] = "";
    ck_assert_msg(counts_equal(before, after, na, why, sizeof(why)), "%s", why);
    tu_env_fini(&e);
}
END_TEST

/* ---- I/O types and transfer methods ---- */

START_TEST(reads_and_writes_present_buffers_by_io_type)
{
    struct tu_env e;
    tu_env_init(&e);
    static const struct {
        const char *name;
        WDF_DEVICE_IO_TYPE io;
    } types[] = {
        { "\\Device\\uwdfIoBuf", WdfDeviceIoBuffered },
        { "\\Device\\uwdfIoDir", WdfDeviceIoDirect },
        { "\\Device\\uwdfIoNei", WdfDeviceIoNeither },
    };
    for (size_t k = 0; k < 3; k++) {
        g_reset();
        struct devopts o = { .name = types[k].name, .io = types[k].io, .queue = true };
        make_device(e.driver, &o);
        WDFIOTARGET t = NULL;
        ck_assert_status(open_target(&e, types[k].name, FILE_OPEN, 0, &t), STATUS_SUCCESS);
        unsigned char w[512], r[512];
        tu_fill_pattern(w, sizeof(w), (unsigned)k + 1, 0);
        ULONG_PTR n;
        ck_assert_status(rw(t, true, w, sizeof(w), 1024, &n), STATUS_SUCCESS);
        ck_assert_uint_eq(n, sizeof(w));
        memset(r, 0, sizeof(r));
        ck_assert_status(rw(t, false, r, sizeof(r), 1024, &n), STATUS_SUCCESS);
        ck_assert_uint_eq(n, sizeof(r));
        ck_assert(memcmp(w, r, sizeof(w)) == 0);
        ck_assert_status(rw(t, false, r, sizeof(r), RAM_SIZE - 100, &n), STATUS_INVALID_PARAMETER);
        ck_assert_msg(g.layout_bad == 0, "%s: %s", types[k].name, g.layout_why);
        WdfObjectDelete(t);
    }
    tu_env_fini(&e);
}
END_TEST

START_TEST(ioctl_transfer_methods_present_their_buffers)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfIoctl4", .io = WdfDeviceIoBuffered, .queue = true };
    make_device(e.driver, &o);
    WDFIOTARGET t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfIoctl4", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    static const ULONG codes[] = { IOCTL_T_BUFFERED, IOCTL_T_IN_DIRECT, IOCTL_T_OUT_DIRECT, IOCTL_T_NEITHER };
    for (size_t i = 0; i < 4; i++) {
        char out[64];
        ULONG_PTR n = 0;
        ck_assert_status(send_ioctl(t, codes[i], "method test", out, sizeof(out), &n), STATUS_SUCCESS);
        ck_assert_uint_eq(n, 11);
        ck_assert_str_eq(out, "METHOD TEST");
        ck_assert_msg(g.layout_bad == 0, "method %lu: %s", (unsigned long)METHOD_FROM_CTL_CODE(codes[i]),
                      g.layout_why);
        /* an output too small for the answer */
        ck_assert_status(send_ioctl(t, codes[i], "method test", out, 4, &n), STATUS_BUFFER_TOO_SMALL);
    }
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

/* ---- caller context ---- */

START_TEST(caller_context_sees_requests_first_and_enqueues_them)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    struct devopts o = { .name = "\\Device\\uwdfIcc", .io = WdfDeviceIoBuffered, .caller_context = true,
                         .queue = true };
    make_device(e.driver, &o);
    WDFIOTARGET t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfIcc", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    ck_assert_int_eq(g.icc_calls, 0); /* creates are not I/O */
    /* METHOD_NEITHER: probed and locked in the caller's context */
    char out[64];
    ULONG_PTR n = 0;
    ck_assert_status(send_ioctl(t, IOCTL_T_NEITHER, "caller context", out, sizeof(out), &n), STATUS_SUCCESS);
    ck_assert_str_eq(out, "CALLER CONTEXT");
    ck_assert_int_eq(g.icc_calls, 1);
    ck_assert_status(g.unsafe_in, STATUS_SUCCESS);
    ck_assert_status(g.unsafe_out, STATUS_SUCCESS);
    ck_assert_status(g.probe_zero, STATUS_INVALID_USER_BUFFER);
    /* outside the callback (in the queue's): refused with their statuses */
    ck_assert_status(g.unsafe_outside, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(g.probe_outside, STATUS_ACCESS_VIOLATION);
    ck_assert_status(g.enqueue_outside, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_int_eq(g.mode, KernelMode);
    ck_assert_msg(g.layout_bad == 0, "%s", g.layout_why);
    /* other requests pass through to the queue */
    ck_assert_status(send_ioctl(t, IOCTL_T_BUFFERED, "buffered", out, sizeof(out), &n), STATUS_SUCCESS);
    ck_assert_str_eq(out, "BUFFERED");
    ck_assert_status(g.unsafe_wrong_type, STATUS_INVALID_DEVICE_REQUEST); /* not METHOD_NEITHER */
    char buf[16] = "0123456789";
    ck_assert_status(rw(t, true, buf, 10, 0, &n), STATUS_SUCCESS);
    memset(buf, 0, sizeof(buf));
    ck_assert_status(rw(t, false, buf, 10, 0, &n), STATUS_SUCCESS);
    ck_assert_str_eq(buf, "0123456789");
    ck_assert_int_eq(g.icc_calls, 4);
    /* the callback completes one itself */
    ck_assert_status(send_ioctl(t, IOCTL_T_REJECT, "x", out, sizeof(out), &n), STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(g.icc_calls, 5);
    WdfObjectDelete(t);

    /* no queue for the type: the enqueue fails and the driver completes */
    struct devopts nq = { .name = "\\Device\\uwdfIccNoQ", .io = WdfDeviceIoBuffered, .caller_context = true };
    make_device(e.driver, &nq);
    t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfIccNoQ", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    ck_assert_status(send_ioctl(t, IOCTL_T_BUFFERED, "x", out, sizeof(out), &n), STATUS_INVALID_DEVICE_REQUEST);
    WdfObjectDelete(t);
    tu_env_fini(&e);
}
END_TEST

static VOID outside_read(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    (void)Queue;
    (void)Length;
    void *b;
    WDFMEMORY m;
    char x;
    g.unsafe_outside = WdfRequestRetrieveUnsafeUserOutputBuffer(Request, 0, &b, NULL);
    g.probe_outside = WdfRequestProbeAndLockUserBufferForWrite(Request, &x, 1, &m);
    g.enqueue_outside = WdfDeviceEnqueueRequest(WdfIoQueueGetDevice(Queue), Request);
    WdfRequestComplete(Request, STATUS_SUCCESS);
}

START_TEST(unsafe_buffer_ddis_outside_the_callback_get_their_statuses)
{
    struct tu_env e;
    tu_env_init(&e);
    g_reset();
    /* a Neither device without the callback: a read's buffer is the
     * requestor's, but only the callback may take it unsafely */
    struct devopts o = { .name = "\\Device\\uwdfNoIcc", .io = WdfDeviceIoNeither };
    WDFDEVICE dev = make_device(e.driver, &o);
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchSequential);
    qc.EvtIoRead = outside_read;
    ck_assert_status(WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, NULL), STATUS_SUCCESS);
    WDFIOTARGET t = NULL;
    ck_assert_status(open_target(&e, "\\Device\\uwdfNoIcc", FILE_OPEN, 0, &t), STATUS_SUCCESS);
    char buf[8];
    ULONG_PTR n;
    ck_assert_status(rw(t, false, buf, sizeof(buf), 0, &n), STATUS_SUCCESS);
    ck_assert_status(g.unsafe_outside, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(g.probe_outside, STATUS_ACCESS_VIOLATION);
    ck_assert_status(g.enqueue_outside, STATUS_INVALID_DEVICE_REQUEST);
    WdfObjectDelete(t);
    /* a request the driver created is no requestor's */
    WDFREQUEST r;
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, NULL, &r), STATUS_SUCCESS);
    void *b;
    WDFMEMORY m;
    ck_assert_status(WdfRequestRetrieveUnsafeUserInputBuffer(r, 0, &b, NULL), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestProbeAndLockUserBufferForRead(r, buf, 1, &m), STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(WdfRequestProbeAndLockUserBufferForRead(r, buf, 0, &m), STATUS_INVALID_USER_BUFFER);
    ck_assert_status(WdfRequestProbeAndLockUserBufferForRead(r, NULL, 1, &m), STATUS_INVALID_PARAMETER);
    ck_assert_ptr_null(WdfRequestGetFileObject(r));
    ck_assert_status(WdfDeviceEnqueueRequest(dev, r), STATUS_INVALID_DEVICE_REQUEST);
    WdfObjectDelete(r);
    tu_env_fini(&e);
}
END_TEST

static Suite *fileobject_suite(void)
{
    Suite *s = suite_create("fileobject");
    TCase *tc = tu_tcase(s, "fileobject", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, open_creates_and_close_cleans_up_then_closes_in_order);
    tcase_add_test(tc, failed_create_fails_the_open_without_cleanup_or_close);
    tcase_add_test(tc, devices_without_file_objects_and_create_queues);
    tcase_add_test(tc, bad_file_object_configurations_are_bug_checks);
    tcase_add_test(tc, open_close_cycles_leave_object_counts_flat);
    tcase_add_test(tc, zw_handles_on_devices_read_write_ioctl_and_close_the_file_object);
    tcase_add_test(tc, zw_device_create_failure_and_exclusive_opens_leave_no_handle);
    tcase_add_test(tc, zw_device_open_close_cycles_leave_object_counts_flat);
    tcase_add_test(tc, reads_and_writes_present_buffers_by_io_type);
    tcase_add_test(tc, ioctl_transfer_methods_present_their_buffers);
    tcase_add_test(tc, caller_context_sees_requests_first_and_enqueues_them);
    tcase_add_test(tc, unsafe_buffer_ddis_outside_the_callback_get_their_statuses);
    return s;
}

int main(void)
{
    return tu_main(fileobject_suite(), "test_fileobject");
}
