/* nbdkit-uwdf-plugin: serves a uwdf I/O target to NBD clients.
 *
 *   nbdkit ./nbdkit-uwdf-plugin.so [path=]PATH [backend=io_uring|libaio] [direct=BOOL] [readonly=BOOL]
 *   nbdkit ./nbdkit-uwdf-plugin.so driver=SO... [upper=..] [lower=..] [path=HW] stack=NAME|{GUID}
 *
 * PATH is the name WdfIoTargetOpen opens: a Linux file or block device.
 * With driver= (nbdkit/stack.c) the plugin loads KMDF drivers, makes a
 * device arrive over path= and opens the stack's top by stack= instead
 * (a \Device\ or interface name resolves to the in-process device).
 * Every NBD command becomes a WDF request sent to that one target,
 * synchronously, from the nbdkit thread serving the command: read and
 * write by WdfIoTargetSend{Read,Write}Synchronously (a FUA write formatted
 * write-through and sent by WdfRequestSend), flush as
 * IRP_MJ_FLUSH_BUFFERS, trim as IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES,
 * write-zeroes as FSCTL_SET_ZERO_DATA. The size, alignment and trim support
 * come from the target's IOCTLs. Each nbdkit worker thread keeps a request
 * of its own, reused for every command: no allocation and no lock per I/O.
 * Remote names (nbd://, rbd:) are refused for now (get_ready wants a file
 * or block device): serving them needs the size, alignment, trim and
 * write-protect IOCTLs checked on those engines first. */
#include "config.h"

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ntdddisk.h>
#include <ntifs.h>
#include <uwdf.h>
#include <wdf.h>

#include "stack.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define PAGE 4096u
#define NO_MAXIMUM 0xFFFFFFFFu /* NBD: no maximum request size */

/* The one target every connection shares, and what it answered at open. */
static struct {
    char *path;          /* as given, made absolute if it names a file */
    char *name;          /* what is opened: path, or the stack's name */
    const char *backend; /* NULL: uwdf's own choice (or UWDF_BACKEND) */
    bool direct;         /* FILE_NO_INTERMEDIATE_BUFFERING (O_DIRECT) */
    bool readonly;       /* open for reading only */
    WDFDRIVER driver;
    WDFDEVICE device;
    WDFIOTARGET target;
    bool writable;
    bool trim;
    uint32_t logical_sector;
    uint32_t physical_sector;
} srv;

static WDF_REQUEST_SEND_OPTIONS send_sync;

/* A request of a connection, with a preallocated memory object re-pointed
 * at a FUA write's buffer, and (O_DIRECT only) an aligned bounce buffer
 * for buffers that nbdkit did not align. */
struct slot {
    struct slot *next_free;
    struct slot *next_all;
    bool thread_owned; /* the nbdkit thread's own (tls_slot): never on the free list */
    WDFREQUEST request;
    WDFMEMORY memory;
    void *bounce;
    size_t bounce_len;
};

/* What a connection sent down, printed at close (nbdkit -v). */
struct conn_stats {
    uint64_t reads, writes, fua_writes, flushes, trims, zeroes, bounced;
};

struct conn {
    uint64_t id;          /* unique for the process's life: tls_slot's key */
    pthread_mutex_t lock; /* held only to add a slot, or pop or push a shared one */
    struct slot *free;
    struct slot *all;
    unsigned slots;
    struct conn_stats stats; /* updated with atomics */
};

static void uwdf_plugin_load(void)
{
    WDF_REQUEST_SEND_OPTIONS_INIT(&send_sync, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
}

static int uwdf_plugin_config(const char *key, const char *value)
{
    int taken = plugin_stack_config(key, value);
    if (taken)
        return taken < 0 ? -1 : 0;
    if (strcmp(key, "path") == 0) {
        free(srv.path);
        /* nbdkit changes directory when it forks into the background. */
        srv.path = value[0] == '/' ? strdup(value) : nbdkit_absolute_path(value);
        if (!srv.path) {
            nbdkit_error("path=%s: %m", value);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "backend") == 0) {
        if (strcmp(value, "io_uring") != 0 && strcmp(value, "libaio") != 0) {
            nbdkit_error("backend=%s: the engines that serve data are io_uring and libaio", value);
            return -1;
        }
        srv.backend = strcmp(value, "io_uring") == 0 ? "io_uring" : "libaio";
        return 0;
    }
    if (strcmp(key, "direct") == 0 || strcmp(key, "readonly") == 0) {
        int b = nbdkit_parse_bool(value);
        if (b < 0)
            return -1;
        *(strcmp(key, "direct") == 0 ? &srv.direct : &srv.readonly) = b;
        return 0;
    }
    nbdkit_error("unknown parameter '%s' (see nbdkit uwdf --help)", key);
    return -1;
}

static int uwdf_plugin_config_complete(void)
{
    if (plugin_stack_config_complete() < 0)
        return -1;
    if (plugin_stack_wanted()) {
        /* The host opens the hardware (read/write, buffered) for the
         * driver at the bottom; the stack's own open has no file. */
        if (srv.direct) {
            nbdkit_error("direct=1 opens path= itself: with driver=, the stack's drivers decide how the "
                         "hardware is opened");
            return -1;
        }
        return 0;
    }
    if (!srv.path) {
        nbdkit_error("path=PATH is required: the file or block device to serve");
        return -1;
    }
    return 0;
}

/* Errors here reach the user even when nbdkit forks later (after_fork's
 * do not): say now if the path cannot be served at all. */
static int uwdf_plugin_get_ready(void)
{
    struct stat st;
    if (!srv.path)
        return 0; /* a stack without hardware */
    if (stat(srv.path, &st) != 0) {
        nbdkit_error("%s: %m", srv.path);
        return -1;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        nbdkit_error("%s: not a regular file or block device", srv.path);
        return -1;
    }
    return 0;
}

static void set_error_status(NTSTATUS status, const char *what)
{
    const char *name = UwdfNtStatusName(status);
    int err = UwdfErrnoFromNtStatus(status);
    const char *served = srv.name ? srv.name : srv.path ? srv.path : "uwdf";
    nbdkit_error("%s: %s: %s (0x%08x)", served, what, name ? name : "NTSTATUS", (unsigned)status);
    nbdkit_set_error(err ? err : EIO);
}

static NTSTATUS target_open(ACCESS_MASK access)
{
    WCHAR name_buf[4096];
    ULONG bytes = 0;
    NTSTATUS status = RtlUTF8ToUnicodeN(name_buf, sizeof(name_buf) - sizeof(WCHAR), &bytes, srv.name,
                                        (ULONG)strlen(srv.name));
    if (!NT_SUCCESS(status))
        return status;
    name_buf[bytes / sizeof(WCHAR)] = L'\0';
    UNICODE_STRING name;
    RtlInitUnicodeString(&name, name_buf);
    WDF_IO_TARGET_OPEN_PARAMS params;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&params, &name, access);
    params.CreateDisposition = FILE_OPEN;
    if (srv.direct)
        params.CreateOptions |= FILE_NO_INTERMEDIATE_BUFFERING;
    return WdfIoTargetOpen(srv.target, &params);
}

static NTSTATUS query_property(STORAGE_PROPERTY_ID id, void *out, size_t out_len)
{
    STORAGE_PROPERTY_QUERY q;
    memset(&q, 0, sizeof(q));
    q.PropertyId = id;
    q.QueryType = PropertyStandardQuery;
    WDF_MEMORY_DESCRIPTOR in_d, out_d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&in_d, &q, sizeof(q));
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out_d, out, (ULONG)out_len);
    ULONG_PTR info = 0;
    NTSTATUS status = WdfIoTargetSendIoctlSynchronously(srv.target, NULL, IOCTL_STORAGE_QUERY_PROPERTY, &in_d,
                                                        &out_d, NULL, &info);
    return NT_SUCCESS(status) && info < out_len ? STATUS_INFO_LENGTH_MISMATCH : status;
}

/* The framework starts threads (engines, timers): after nbdkit has forked. */
static int uwdf_plugin_after_fork(void)
{
    /* The engine of every file target opened from here on: path='s, or
     * the hardware's under a stack. */
    NTSTATUS status = UwdfSetDefaultBackend(srv.backend);
    if (!NT_SUCCESS(status)) {
        set_error_status(status, srv.backend);
        return -1;
    }
    WDF_DRIVER_CONFIG cfg;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    status = WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, &srv.driver);
    if (!NT_SUCCESS(status)) {
        set_error_status(status, "WdfDriverCreate");
        return -1;
    }
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(srv.driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    status = init ? WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &srv.device) : STATUS_INSUFFICIENT_RESOURCES;
    if (NT_SUCCESS(status)) {
        WdfControlFinishInitializing(srv.device);
        status = WdfIoTargetCreate(srv.device, WDF_NO_OBJECT_ATTRIBUTES, &srv.target);
    }
    if (!NT_SUCCESS(status)) {
        set_error_status(status, "control device and target");
        return -1;
    }
    if (plugin_stack_wanted()) {
        if (!NT_SUCCESS(plugin_stack_arrive(srv.path, &srv.name)))
            return -1; /* said */
    } else {
        srv.name = strdup(srv.path);
        if (!srv.name) {
            nbdkit_error("out of memory");
            return -1;
        }
    }
    srv.writable = !srv.readonly;
    status = target_open(srv.writable ? GENERIC_READ | GENERIC_WRITE : GENERIC_READ);
    if (srv.writable && (status == STATUS_ACCESS_DENIED || status == STATUS_MEDIA_WRITE_PROTECTED)) {
        /* A read-only file or device is served read-only, as nbdkit's
         * file plugin does; clients see a read-only export. */
        nbdkit_debug("uwdf: %s cannot be written (%s): serving it read-only", srv.name,
                     UwdfNtStatusName(status));
        srv.writable = false;
        status = target_open(GENERIC_READ);
    }
    if (NT_SUCCESS(status) && srv.writable &&
        WdfIoTargetSendIoctlSynchronously(srv.target, NULL, IOCTL_DISK_IS_WRITABLE, NULL, NULL, NULL, NULL) ==
            STATUS_MEDIA_WRITE_PROTECTED) {
        /* A read-only block device opens for writing all the same. */
        nbdkit_debug("uwdf: %s is write-protected: serving it read-only", srv.name);
        WdfIoTargetClose(srv.target);
        srv.writable = false;
        status = target_open(GENERIC_READ);
    }
    if (!NT_SUCCESS(status)) {
        set_error_status(status, "WdfIoTargetOpen");
        return -1;
    }

    STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR align;
    status = query_property(StorageAccessAlignmentProperty, &align, sizeof(align));
    if (!NT_SUCCESS(status)) {
        set_error_status(status, "StorageAccessAlignmentProperty");
        return -1;
    }
    srv.logical_sector = align.BytesPerLogicalSector;
    srv.physical_sector = align.BytesPerPhysicalSector;
    DEVICE_TRIM_DESCRIPTOR trim;
    status = query_property(StorageDeviceTrimProperty, &trim, sizeof(trim));
    srv.trim = NT_SUCCESS(status) && trim.TrimEnabled;
    /* A stack's target is a device's: the engine is the hardware's. */
    const char *engine = plugin_stack_wanted() ? plugin_stack_engine() : UwdfIoTargetGetBackendName(srv.target);
    nbdkit_debug("uwdf: serving %s on %s: sectors %u/%u, %s%s%s", srv.name, engine ? engine : "no engine",
                 srv.logical_sector, srv.physical_sector,
                 srv.writable ? "read-write" : "read-only", srv.direct ? ", O_DIRECT" : "",
                 srv.trim ? ", trim" : "");
    return 0;
}

static void uwdf_plugin_cleanup(void)
{
    if (srv.target)
        WdfIoTargetClose(srv.target);
    plugin_stack_remove();
    /* Deleting the driver deletes its device and the device's target. */
    if (srv.driver)
        WdfObjectDelete(srv.driver);
    srv.driver = NULL;
    srv.device = NULL;
    srv.target = NULL;
}

static void uwdf_plugin_unload(void)
{
    free(srv.path);
    free(srv.name);
    srv.path = srv.name = NULL;
    plugin_stack_free();
    /* nbdkit unloads the plugin, and libuwdf with it, after this: the
     * handle table goes now (it refuses, and says so, if an object is
     * still live), or valgrind finds it lost. */
    (void)UwdfReleaseObjectTable();
}

static void *uwdf_plugin_open(int readonly)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        nbdkit_error("calloc: %m");
        return NULL;
    }
    static uint64_t next_id;
    c->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void uwdf_plugin_close(void *handle)
{
    struct conn *c = handle;
    struct conn_stats *s = &c->stats;
    UWDF_OBJECT_COUNT requests;
    if (!NT_SUCCESS(UwdfQueryObjectCount("WDFREQUEST", &requests)))
        requests.Live = 0;
    /* The numbers tests and users check reuse and the commands' mapping by. */
    nbdkit_debug("uwdf: connection: requests=%u live-WDFREQUEST=%llu reads=%llu writes=%llu fua-writes=%llu "
                 "flushes=%llu trims=%llu zeroes=%llu bounced=%llu",
                 c->slots, (unsigned long long)requests.Live, (unsigned long long)s->reads,
                 (unsigned long long)s->writes, (unsigned long long)s->fua_writes,
                 (unsigned long long)s->flushes, (unsigned long long)s->trims, (unsigned long long)s->zeroes,
                 (unsigned long long)s->bounced);
    struct slot *next;
    for (struct slot *sl = c->all; sl; sl = next) {
        next = sl->next_all;
        WdfObjectDelete(sl->request);
        WdfObjectDelete(sl->memory);
        free(sl->bounce);
        free(sl);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct slot *slot_create(struct conn *c)
{
    static char placeholder; /* a preallocated memory object needs a buffer until it gets one */
    struct slot *sl = calloc(1, sizeof(*sl));
    if (!sl) {
        nbdkit_set_error(ENOMEM);
        return NULL;
    }
    NTSTATUS status = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, srv.target, &sl->request);
    if (NT_SUCCESS(status)) {
        status = WdfMemoryCreatePreallocated(WDF_NO_OBJECT_ATTRIBUTES, &placeholder, 1, &sl->memory);
        if (!NT_SUCCESS(status))
            WdfObjectDelete(sl->request);
    }
    if (!NT_SUCCESS(status)) {
        free(sl);
        set_error_status(status, "a request for the connection");
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    sl->next_all = c->all;
    c->all = sl;
    c->slots++;
    pthread_mutex_unlock(&c->lock);
    return sl;
}

static NTSTATUS slot_reuse(struct slot *sl)
{
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    return WdfRequestReuse(sl->request, &rp);
}

static void slot_put(struct conn *c, struct slot *sl)
{
    if (sl->thread_owned)
        return;
    pthread_mutex_lock(&c->lock);
    sl->next_free = c->free;
    c->free = sl;
    pthread_mutex_unlock(&c->lock);
}

/* The request of the nbdkit thread running this code, for the connection
 * it was made for. nbdkit's parallel model gives each connection worker
 * threads of its own, which end with it, so a thread's command finds its
 * request here without taking a lock (a pool under the connection's lock
 * cost every command two lock round trips on a lock all of the
 * connection's threads met on). The id, never reused, keeps a thread from
 * touching the request of a connection that has gone. */
static __thread struct {
    uint64_t conn_id;
    struct slot *slot;
} tls_slot;

/* A request of the connection, made ready for a new command: the
 * thread's own, created at its first command and reused for every later
 * one (at most one per nbdkit thread of the connection). A thread that
 * already has one of another connection (not how nbdkit runs threads)
 * shares a pool under the connection's lock instead. */
static struct slot *slot_get(struct conn *c)
{
    struct slot *sl = NULL;
    if (tls_slot.slot && tls_slot.conn_id == c->id) {
        sl = tls_slot.slot;
    } else if (!tls_slot.slot) {
        sl = slot_create(c);
        if (sl) {
            sl->thread_owned = true;
            tls_slot.conn_id = c->id;
            tls_slot.slot = sl;
        }
        return sl; /* new: nothing to reuse */
    } else {
        pthread_mutex_lock(&c->lock);
        sl = c->free;
        if (sl)
            c->free = sl->next_free;
        pthread_mutex_unlock(&c->lock);
        if (!sl)
            return slot_create(c);
    }
    NTSTATUS status = slot_reuse(sl);
    if (!NT_SUCCESS(status)) {
        set_error_status(status, "WdfRequestReuse");
        slot_put(c, sl);
        return NULL;
    }
    return sl;
}

/* The buffer the I/O goes through: nbdkit's own, or with O_DIRECT, when it
 * is not sector-aligned, the slot's bounce buffer (grown to the largest
 * such command seen, then reused). NULL with the error set. */
static void *slot_io_buffer(struct conn *c, struct slot *sl, void *buf, uint32_t count)
{
    uint32_t align = srv.logical_sector > PAGE ? srv.logical_sector : PAGE;
    if (!srv.direct || (uintptr_t)buf % srv.logical_sector == 0)
        return buf;
    if (sl->bounce_len < count) {
        void *p = NULL;
        size_t len = (count + (size_t)align - 1) / align * align;
        if (posix_memalign(&p, align, len) != 0) {
            nbdkit_error("bounce buffer of %zu bytes: out of memory", len);
            nbdkit_set_error(ENOMEM);
            return NULL;
        }
        free(sl->bounce);
        sl->bounce = p;
        sl->bounce_len = len;
    }
    __atomic_fetch_add(&c->stats.bounced, 1, __ATOMIC_RELAXED);
    return sl->bounce;
}

/* Sends the formatted request and waits for it: its status. */
static NTSTATUS slot_send(struct slot *sl, ULONG_PTR *information)
{
    (void)WdfRequestSend(sl->request, srv.target, &send_sync); /* FALSE: the status says why */
    if (information)
        *information = WdfRequestGetInformation(sl->request);
    return WdfRequestGetStatus(sl->request);
}

static NTSTATUS slot_flush(struct slot *sl)
{
    IO_STACK_LOCATION stack;
    memset(&stack, 0, sizeof(stack));
    stack.MajorFunction = IRP_MJ_FLUSH_BUFFERS;
    stack.MinorFunction = IRP_MN_FLUSH_DATA_ONLY; /* fdatasync(2), what NBD_CMD_FLUSH asks for */
    WdfRequestWdmFormatUsingStackLocation(sl->request, &stack);
    return slot_send(sl, NULL);
}

/* One read or write of count bytes at offset; *done: the bytes moved.
 * Without FUA, the synchronous DDI formats and sends the request in one
 * call, on the buffer itself (no memory object to re-point, no handle
 * look-ups for the format, the send and the outcome). FUA is set on the
 * formatted request, so that write is formatted and sent in two steps. */
static NTSTATUS slot_rw_once(struct slot *sl, bool write, void *io, uint32_t count, uint64_t offset, bool fua,
                             ULONG_PTR *done)
{
    LONGLONG off = (LONGLONG)offset;
    if (!fua) {
        WDF_MEMORY_DESCRIPTOR d;
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, io, count);
        return write ? WdfIoTargetSendWriteSynchronously(srv.target, sl->request, &d, &off, NULL, done)
                     : WdfIoTargetSendReadSynchronously(srv.target, sl->request, &d, &off, NULL, done);
    }
    NTSTATUS status = WdfMemoryAssignBuffer(sl->memory, io, count);
    if (NT_SUCCESS(status))
        status = write ? WdfIoTargetFormatRequestForWrite(srv.target, sl->request, sl->memory, NULL, &off)
                       : WdfIoTargetFormatRequestForRead(srv.target, sl->request, sl->memory, NULL, &off);
    if (!NT_SUCCESS(status))
        return status;
    if (fua)
        UwdfRequestSetWriteThrough(sl->request, TRUE); /* after the format, which clears it */
    return slot_send(sl, done);
}

/* Read or write count bytes at offset through the slot. A short transfer
 * (a file system running full, a file that shrank) goes on from where it
 * stopped, as write(2) callers do, so the error that stopped it is the
 * one the client sees; a read that gets nothing more is EIO, since the
 * export's size was fixed at connect. */
static int slot_rw(struct conn *c, struct slot *sl, bool write, void *buf, uint32_t count, uint64_t offset,
                   bool fua)
{
    char *io = slot_io_buffer(c, sl, buf, count);
    if (!io)
        return -1;
    if (write && io != (char *)buf)
        memcpy(io, buf, count);
    uint32_t total = 0;
    NTSTATUS status = STATUS_SUCCESS;
    while (total < count) {
        ULONG_PTR done = 0;
        if (total)
            status = slot_reuse(sl);
        if (NT_SUCCESS(status))
            status = slot_rw_once(sl, write, io + total, count - total, offset + total, fua, &done);
        if (!NT_SUCCESS(status) && !(status == STATUS_END_OF_FILE && !write))
            break;
        if (done == 0) {
            nbdkit_error("%s: %s of %u bytes at %llu: only %u done", srv.name, write ? "write" : "read", count,
                         (unsigned long long)offset, total);
            nbdkit_set_error(EIO);
            return -1;
        }
        total += (uint32_t)done;
    }
    if (!NT_SUCCESS(status)) {
        set_error_status(status, write ? "write" : "read");
        return -1;
    }
    if (!write && io != (char *)buf)
        memcpy(buf, io, count);
    return 0;
}

static int uwdf_plugin_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    struct conn *c = handle;
    struct slot *sl = slot_get(c);
    if (!sl)
        return -1;
    int r = slot_rw(c, sl, false, buf, count, offset, false);
    slot_put(c, sl);
    if (r == 0)
        __atomic_fetch_add(&c->stats.reads, 1, __ATOMIC_RELAXED);
    return r;
}

static int uwdf_plugin_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    struct conn *c = handle;
    bool fua = flags & NBDKIT_FLAG_FUA;
    struct slot *sl = slot_get(c);
    if (!sl)
        return -1;
    /* The write only reads the buffer. */
    int r = slot_rw(c, sl, true, (void *)buf, count, offset, fua);
    slot_put(c, sl);
    if (r == 0)
        __atomic_fetch_add(fua ? &c->stats.fua_writes : &c->stats.writes, 1, __ATOMIC_RELAXED);
    return r;
}

static int uwdf_plugin_flush(void *handle, uint32_t flags)
{
    struct conn *c = handle;
    struct slot *sl = slot_get(c);
    if (!sl)
        return -1;
    NTSTATUS status = slot_flush(sl);
    slot_put(c, sl);
    if (!NT_SUCCESS(status)) {
        set_error_status(status, "flush");
        return -1;
    }
    __atomic_fetch_add(&c->stats.flushes, 1, __ATOMIC_RELAXED);
    return 0;
}

/* An IOCTL with a small input structure, then (FUA) a flush. */
static int slot_ioctl(struct slot *sl, ULONG code, void *in, size_t in_len, bool fua, const char *what)
{
    NTSTATUS status = WdfMemoryAssignBuffer(sl->memory, in, in_len);
    if (NT_SUCCESS(status))
        status = WdfIoTargetFormatRequestForIoctl(srv.target, sl->request, code, sl->memory, NULL, NULL, NULL);
    if (NT_SUCCESS(status))
        status = slot_send(sl, NULL);
    if (NT_SUCCESS(status) && fua) {
        status = slot_reuse(sl);
        if (NT_SUCCESS(status))
            status = slot_flush(sl);
    }
    if (status == STATUS_NOT_SUPPORTED) {
        /* nbdkit writes zeroes itself on EOPNOTSUPP; no error message. */
        nbdkit_set_error(EOPNOTSUPP);
        return -1;
    }
    if (!NT_SUCCESS(status)) {
        set_error_status(status, what);
        return -1;
    }
    return 0;
}

static int uwdf_plugin_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    struct conn *c = handle;
    /* Trim is advisory (NBD: the server may ignore it): only whole
     * logical sectors inside the range are discarded. */
    uint64_t sector = srv.logical_sector;
    uint64_t start = (offset + sector - 1) / sector * sector;
    uint64_t end = (offset + count) / sector * sector;
    if (end <= start)
        return 0;
    struct {
        DEVICE_MANAGE_DATA_SET_ATTRIBUTES hdr;
        DEVICE_DATA_SET_RANGE range;
    } dsm;
    memset(&dsm, 0, sizeof(dsm));
    dsm.hdr.Size = sizeof(dsm.hdr);
    dsm.hdr.Action = DeviceDsmAction_Trim;
    dsm.hdr.DataSetRangesOffset = offsetof(__typeof__(dsm), range);
    dsm.hdr.DataSetRangesLength = sizeof(dsm.range);
    dsm.range.StartingOffset = (LONGLONG)start;
    dsm.range.LengthInBytes = end - start;
    struct slot *sl = slot_get(c);
    if (!sl)
        return -1;
    int r = slot_ioctl(sl, IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES, &dsm, sizeof(dsm), flags & NBDKIT_FLAG_FUA,
                       "trim");
    slot_put(c, sl);
    if (r == 0)
        __atomic_fetch_add(&c->stats.trims, 1, __ATOMIC_RELAXED);
    return r;
}

static int uwdf_plugin_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    struct conn *c = handle;
    /* A block device zeroes whole sectors only; nbdkit writes a buffer of
     * zeroes for anything else when told EOPNOTSUPP. */
    if (offset % srv.logical_sector || count % srv.logical_sector) {
        nbdkit_set_error(EOPNOTSUPP);
        return -1;
    }
    FILE_ZERO_DATA_INFORMATION z;
    z.FileOffset.QuadPart = (LONGLONG)offset;
    z.BeyondFinalZero.QuadPart = (LONGLONG)(offset + count);
    struct slot *sl = slot_get(c);
    if (!sl)
        return -1;
    int r = slot_ioctl(sl, FSCTL_SET_ZERO_DATA, &z, sizeof(z), flags & NBDKIT_FLAG_FUA, "zero");
    slot_put(c, sl);
    if (r == 0)
        __atomic_fetch_add(&c->stats.zeroes, 1, __ATOMIC_RELAXED);
    return r;
}

static int64_t uwdf_plugin_get_size(void *handle)
{
    (void)handle;
    GET_LENGTH_INFORMATION li;
    WDF_MEMORY_DESCRIPTOR out;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out, &li, sizeof(li));
    /* Once per connection, on the thread that runs its handshake (not one
     * of its workers): a request of the framework's own, not a slot. */
    ULONG_PTR info = 0;
    NTSTATUS status =
        WdfIoTargetSendIoctlSynchronously(srv.target, NULL, IOCTL_DISK_GET_LENGTH_INFO, NULL, &out, NULL, &info);
    if (!NT_SUCCESS(status)) {
        set_error_status(status, "IOCTL_DISK_GET_LENGTH_INFO");
        return -1;
    }
    return li.Length.QuadPart;
}

static int uwdf_plugin_block_size(void *handle, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
    /* O_DIRECT moves whole logical sectors only; buffered I/O any byte
     * range. Below a physical sector (or a page) a write costs a
     * read-modify-write. */
    *minimum = srv.direct ? srv.logical_sector : 1;
    *preferred = srv.physical_sector > PAGE ? srv.physical_sector : PAGE;
    if (*preferred < *minimum)
        *preferred = *minimum;
    *maximum = NO_MAXIMUM;
    return 0;
}

static int uwdf_plugin_can_write(void *handle)
{
    return srv.writable;
}

static int uwdf_plugin_can_flush(void *handle)
{
    return 1;
}

static int uwdf_plugin_can_trim(void *handle)
{
    return srv.writable && srv.trim;
}

static int uwdf_plugin_can_zero(void *handle)
{
    return srv.writable;
}

static int uwdf_plugin_can_fua(void *handle)
{
    return NBDKIT_FUA_NATIVE;
}

/* All connections share one target: a flush or a write-through write on
 * one is durable for all. */
static int uwdf_plugin_can_multi_conn(void *handle)
{
    return 1;
}

static struct nbdkit_plugin plugin = {
    .name = "uwdf",
    .longname = "uwdf: WDF I/O targets served over NBD",
    .version = PACKAGE_VERSION,
    .description = "Serves a uwdf I/O target (a file, a block device or a stack of loaded drivers) "
                   "through WDF requests.",
    .load = uwdf_plugin_load,
    .unload = uwdf_plugin_unload,
    .config = uwdf_plugin_config,
    .config_complete = uwdf_plugin_config_complete,
    .config_help = "[path=]PATH          the file or block device to serve (with driver=: the hardware)\n"
                   "backend=io_uring|libaio  the uwdf engine (default: io_uring, else libaio)\n"
                   "direct=BOOL          open with FILE_NO_INTERMEDIATE_BUFFERING (O_DIRECT)\n"
                   "readonly=BOOL        open for reading only\n"
                   "driver=[NAME=]SO     load a KMDF driver (repeatable); serve a device stack\n"
                   "function=NAME        the stack's function driver (default: the driver no filter key names)\n"
                   "upper=NAME[,NAME]    upper filters, nearest the function driver first\n"
                   "lower=NAME[,NAME]    lower filters, nearest the hardware first\n"
                   "hwid=ID              the device's hardware ID (default root\\uwdf-nbdkit)\n"
                   "stack=NAME|{GUID}    what to serve: a \\Device\\ or link name, or the device's interface\n"
                   "                     (path= is then the hardware under the stack)",
    .magic_config_key = "path",
    .get_ready = uwdf_plugin_get_ready,
    .after_fork = uwdf_plugin_after_fork,
    .cleanup = uwdf_plugin_cleanup,
    .open = uwdf_plugin_open,
    .close = uwdf_plugin_close,
    .get_size = uwdf_plugin_get_size,
    .block_size = uwdf_plugin_block_size,
    .can_write = uwdf_plugin_can_write,
    .can_flush = uwdf_plugin_can_flush,
    .can_trim = uwdf_plugin_can_trim,
    .can_zero = uwdf_plugin_can_zero,
    .can_fua = uwdf_plugin_can_fua,
    .can_multi_conn = uwdf_plugin_can_multi_conn,
    .pread = uwdf_plugin_pread,
    .pwrite = uwdf_plugin_pwrite,
    .flush = uwdf_plugin_flush,
    .trim = uwdf_plugin_trim,
    .zero = uwdf_plugin_zero,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
