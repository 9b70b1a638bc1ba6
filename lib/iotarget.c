/* WDFIOTARGET for files, block devices and in-process devices: the object,
 * open by name (or on a descriptor a resolver opened), and the target
 * state machine (Started / Stopped / Purged / Closed / Deleted with the
 * pended list) with its getters. Formatting: lib/iotarget_format.c; the
 * send path and completion ownership: lib/iotarget_send.c. */
#include "runtime.h"
#include "biased_lock.h"
#include "device.h"
#include "engine.h"
#include "iotarget.h"
#include "lists.h"
#include "object.h"
#include "request.h"
#include "resolve.h"
#include "worker.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const target_state_names[] = {
    [UWDF_TS_CLOSED] = "CLOSED",       [UWDF_TS_CLOSED_QR] = "CLOSED_QR",   [UWDF_TS_STARTED] = "STARTED",
    [UWDF_TS_STOPPED] = "STOPPED",     [UWDF_TS_PURGED] = "PURGED",         [UWDF_TS_CLOSING] = "CLOSING",
    [UWDF_TS_CLOSING_QR] = "CLOSING_QR", [UWDF_TS_DELETING] = "DELETING", [UWDF_TS_DELETED] = "DELETED",
};
const struct uwdf_state_machine uwdf_target_machine = { "WDFIOTARGET", target_state_names,
                                                        RTL_NUMBER_OF(target_state_names) };

static void target_close(struct uwdf_iotarget *t, WDF_IO_TARGET_STATE new_state);

static void target_dispose(struct uwdf_object *obj)
{
    struct uwdf_iotarget *t = (struct uwdf_iotarget *)obj;
    target_close(t, WdfIoTargetDeleted);
}

static void target_destroy(struct uwdf_object *obj)
{
    struct uwdf_iotarget *t = (struct uwdf_iotarget *)obj;
    /* Nothing is sent to it now: every send state is back. */
    for (struct uwdf_request_send *snd = t->snd_pool, *next; snd; snd = next) {
        next = snd->pool_next;
        uwdf_request_send_free(snd);
    }
    pthread_cond_destroy(&t->idle_cond);
    uwdf_biased_lock_destroy(&t->lock);
    uwdf_free(t->path);
}

static const struct uwdf_object_ops target_ops = {
    .dispose = target_dispose,
    .destroy = target_destroy,
};

/* The target object, closed, under parent (with the attributes' parent,
 * if any, instead); dev NULL: a target no device owns. */
static NTSTATUS target_create(struct uwdf_device *dev, PWDF_OBJECT_ATTRIBUTES attrs, struct uwdf_object *parent,
                              struct uwdf_iotarget **out)
{
    struct uwdf_object *obj;
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_iotarget), UWDF_OBJ_IOTARGET, &target_ops, attrs,
                                         parent, 0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_iotarget *t = (struct uwdf_iotarget *)obj;
    t->device = dev;
    t->fd = -1; /* and CLOSED, the zero state */
    uwdf_biased_lock_init(&t->lock);
    pthread_cond_init(&t->idle_cond, NULL);
    uwdf_list_init(&t->sent);
    uwdf_list_init(&t->pended);
    *out = t;
    return STATUS_SUCCESS;
}

NTSTATUS WdfIoTargetCreate(WDFDEVICE Device, PWDF_OBJECT_ATTRIBUTES IoTargetAttributes,
                           WDFIOTARGET *IoTarget)
{
    struct uwdf_device *dev = (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE,
                                                                       "WdfIoTargetCreate");
    UWDF_REQUIRE_PARAM(IoTarget, "WdfIoTargetCreate", STATUS_INVALID_PARAMETER);
    if (!dev)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive("WdfIoTargetCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (IoTargetAttributes && IoTargetAttributes->ParentObject) {
        /* The parent must be the device or one of its descendants. */
        struct uwdf_object *p = uwdf_object_lookup(IoTargetAttributes->ParentObject, 0, "WdfIoTargetCreate");
        while (p && p != &dev->obj)
            p = p->parent;
        if (!p)
            return STATUS_INVALID_DEVICE_REQUEST;
    }
    struct uwdf_iotarget *t;
    NTSTATUS status = target_create(dev, IoTargetAttributes, &dev->obj, &t);
    if (NT_SUCCESS(status))
        *IoTarget = (WDFIOTARGET)t->obj.handle;
    return status;
}

/* ---- open ---- */

static bool access_wants_read(ACCESS_MASK a)
{
    return (a & (GENERIC_READ | GENERIC_ALL | FILE_READ_DATA)) != 0;
}

static bool access_wants_write(ACCESS_MASK a)
{
    return (a & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA | FILE_APPEND_DATA)) != 0;
}

NTSTATUS uwdf_iotarget_open_flags(const WDF_IO_TARGET_OPEN_PARAMS *p, int *flags)
{
    bool r = access_wants_read(p->DesiredAccess), w = access_wants_write(p->DesiredAccess);
    if (p->CreateDisposition > FILE_MAXIMUM_DISPOSITION)
        return STATUS_INVALID_PARAMETER;
    if ((p->CreateOptions & FILE_DIRECTORY_FILE) && (p->CreateOptions & FILE_NON_DIRECTORY_FILE))
        return STATUS_INVALID_PARAMETER;
    *flags = O_CLOEXEC;
    *flags |= w ? (r ? O_RDWR : O_WRONLY) : O_RDONLY;
    if (p->CreateOptions & FILE_NO_INTERMEDIATE_BUFFERING)
        *flags |= O_DIRECT;
    if (p->CreateOptions & FILE_WRITE_THROUGH)
        *flags |= O_DSYNC;
    return STATUS_SUCCESS;
}

static NTSTATUS target_open_flags(const WDF_IO_TARGET_OPEN_PARAMS *p, int *flags)
{
    static const int disposition_flags[] = {
        [FILE_SUPERSEDE] = O_CREAT | O_TRUNC,
        [FILE_OPEN] = 0,
        [FILE_CREATE] = O_CREAT | O_EXCL,
        [FILE_OPEN_IF] = O_CREAT,
        [FILE_OVERWRITE] = O_TRUNC,
        [FILE_OVERWRITE_IF] = O_CREAT | O_TRUNC,
    };
    NTSTATUS status = uwdf_iotarget_open_flags(p, flags);
    if (NT_SUCCESS(status))
        *flags |= disposition_flags[p->CreateDisposition];
    return status;
}

/* open(2) ran out of descriptors (EMFILE): double this process's soft
 * RLIMIT_NOFILE, up to its hard limit, as liburing does when it registers
 * files. A Debian root shell starts at 1024 of 524288 or more, and one
 * open target holds one descriptor, so without this an application with a
 * few thousand targets would fail at about a thousand. Only a process that
 * really holds that many descriptors gets numbers above 1024 (which
 * select(2) cannot take); lowering the hard limit forbids it. False if
 * there is nothing left to raise. */
static bool target_raise_nofile(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct rlimit rl;
    bool raised = false;
    pthread_mutex_lock(&lock);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = old == 0 || old > rl.rlim_max / 2 ? rl.rlim_max : old * 2;
        raised = setrlimit(RLIMIT_NOFILE, &rl) == 0;
        if (raised)
            uwdf_log("out of file descriptors: soft RLIMIT_NOFILE raised from %llu to %llu (hard limit %llu)",
                     (unsigned long long)old, (unsigned long long)rl.rlim_cur,
                     (unsigned long long)rl.rlim_max);
    }
    pthread_mutex_unlock(&lock);
    return raised;
}

static int target_open_fd(const char *path, int flags)
{
    int fd;
    while ((fd = open(path, flags, 0666)) < 0 && errno == EMFILE && target_raise_nofile())
        ;
    return fd;
}

/* What the target may do, from the access asked for (none: read). */
static void target_set_access(struct uwdf_iotarget *t, ACCESS_MASK desired)
{
    t->access = desired;
    if (access_wants_read(desired) || !access_wants_write(desired))
        t->access |= FILE_READ_DATA;
    if (access_wants_write(desired))
        t->access |= FILE_WRITE_DATA;
}

/* t takes the open file fd (opened with flags): checked, described and
 * its geometry probed, or closed. */
static NTSTATUS target_adopt_fd(struct uwdf_iotarget *t, const WDF_IO_TARGET_OPEN_PARAMS *p, int fd, int flags)
{
    struct stat st;
    NTSTATUS status;
    if (fstat(fd, &st) != 0) {
        status = uwdf_status_from_errno(errno);
        close(fd);
        return status;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return STATUS_FILE_IS_A_DIRECTORY;
    }
    t->fd = fd;
    t->remote = false;
    t->is_block = S_ISBLK(st.st_mode);
    t->is_stream = !S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode);
    t->direct = (flags & O_DIRECT) != 0;
    t->write_through = (flags & O_DSYNC) != 0;
    target_set_access(t, p->DesiredAccess);
    int r = uwdf_geometry_probe(t);
    if (r < 0) {
        close(fd);
        t->fd = -1;
        return uwdf_status_from_errno(r);
    }
    return STATUS_SUCCESS;
}

static NTSTATUS target_open_path(struct uwdf_iotarget *t, const WDF_IO_TARGET_OPEN_PARAMS *p,
                                 const char *path)
{
    int flags;
    struct stat st;
    bool existed;
    NTSTATUS status = target_open_flags(p, &flags);
    if (!NT_SUCCESS(status))
        return status;
    existed = stat(path, &st) == 0;
    /* A FIFO's open blocks until the other side opens; the request, not the
     * open, is what may wait. */
    bool fifo = existed && S_ISFIFO(st.st_mode);
    /* A block device's access time says nothing, yet each read would test
     * and maybe update it (file_accessed: a clock read and an inode check
     * per I/O). fio opens devices O_NOATIME too; only the node's owner or
     * CAP_FOWNER may, so without that it is opened as asked. Regular files
     * keep their access times. */
    int noatime = existed && S_ISBLK(st.st_mode) ? O_NOATIME : 0;
    int fd = target_open_fd(path, flags | noatime | (fifo ? O_NONBLOCK : 0));
    if (fd < 0 && noatime && errno == EPERM)
        fd = target_open_fd(path, flags);
    if (fd < 0)
        return uwdf_status_from_errno(errno);
    if (fifo)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    status = target_adopt_fd(t, p, fd, flags);
    if (!NT_SUCCESS(status))
        return status;
    ((PWDF_IO_TARGET_OPEN_PARAMS)p)->FileInformation =
        existed ? uwdf_create_information(p->CreateDisposition) : FILE_CREATED;
    return STATUS_SUCCESS;
}

/* The device that owns t needs one stack location more than t's target. */
static void target_grow_owner_stack(struct uwdf_iotarget *t)
{
    CCHAR need = (CCHAR)(uwdf_iotarget_stack_need(t) + 1);
    if (t->device && t->device->wdm.StackSize < need)
        t->device->wdm.StackSize = need;
}

static void target_init_file_object(struct uwdf_iotarget *t)
{
    t->file_object.Type = 5; /* IO_TYPE_FILE */
    t->file_object.Size = sizeof(FILE_OBJECT);
    t->file_object.DeviceObject = t->lower ? &t->lower->wdm : &t->device->wdm;
    t->file_object.ReadAccess = (t->access & FILE_READ_DATA) != 0;
    t->file_object.WriteAccess = (t->access & FILE_WRITE_DATA) != 0;
    t->file_object.Flags = (t->direct ? FO_NO_INTERMEDIATE_BUFFERING : 0) |
                           (t->write_through ? FO_WRITE_THROUGH : 0);
    t->file_object.FsContext = (PVOID)(intptr_t)t->fd;
}

/* What a reopen needs (caller holds the target lock); path becomes the
 * target's. */
static void target_keep_open_params(struct uwdf_iotarget *t, const WDF_IO_TARGET_OPEN_PARAMS *params, char *path,
                                    bool by_descriptor)
{
    uwdf_free(t->path);
    t->path = path;
    t->by_descriptor = by_descriptor;
    t->open_params = *params;
    t->open_params.TargetDeviceName.Buffer = NULL; /* the caller's memory */
    t->open_params.TargetDeviceName.Length = 0;
}

/* Closed -> Started with its file object described (caller holds the
 * target lock). */
static void target_mark_open_locked(struct uwdf_iotarget *t)
{
    uwdf_biased_lock_set_bias(&t->lock, true); /* a close let it go */
    target_init_file_object(t);
    atomic_store(&t->file_pos, 0);
    uwdf_ts_open(t);
}

static NTSTATUS target_attach_device(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *path,
                                     struct uwdf_device *dev, const char *tail);
static bool target_busy(struct uwdf_iotarget *t);

/* A name in the NT namespace: an in-process device of this process. Its
 * requests go into the device's queues; the target's engine (the null
 * engine) only carries completions the framework decides itself. */
static NTSTATUS target_open_device(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *path)
{
    struct uwdf_device *dev;
    const char *tail;
    NTSTATUS status = uwdf_fileobject_lookup_device(path, &dev, &tail);
    if (!NT_SUCCESS(status)) {
        uwdf_free(path);
        return status;
    }
    return target_attach_device(t, params, path, dev, tail);
}

/* Open t on dev (referenced; the reference becomes the target's). tail:
 * the file name the open sends in IRP_MJ_CREATE (after the device's name);
 * NULL for the target on the device below, which sends no create (a
 * stack's default target, as KMDF's). */
static NTSTATUS target_attach_device(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *path,
                                     struct uwdf_device *dev, const char *tail)
{
    int err;
    NTSTATUS status;
    if (dev == t->device) {
        uwdf_object_release(&dev->obj);
        uwdf_free(path);
        return STATUS_INVALID_DEVICE_REQUEST; /* a device cannot sit on itself */
    }
    /* WdfDeviceInitSetExclusive: one open at a time (KMDF's create fails
     * a second one with STATUS_ACCESS_DENIED). */
    if (dev->pnp.exclusive && atomic_fetch_add(&dev->opens, 1) != 0) {
        atomic_fetch_sub(&dev->opens, 1);
        uwdf_object_release(&dev->obj);
        uwdf_free(path);
        return STATUS_ACCESS_DENIED;
    }
    struct uwdf_engine *engine = uwdf_engine_attach(&uwdf_backend_null, &t->attach, -1, &err);
    if (!engine) {
        if (dev->pnp.exclusive)
            atomic_fetch_sub(&dev->opens, 1);
        uwdf_object_release(&dev->obj);
        uwdf_free(path);
        return uwdf_status_from_errno(err);
    }
    uwdf_biased_lock_acquire(&t->lock);
    target_keep_open_params(t, params, path, false);
    t->lower = dev;
    __atomic_store_n(&t->engine, engine, __ATOMIC_RELAXED); /* target_lock_hot reads it */
    /* The thread that takes this lock most is the one that completes the
     * I/O below the device and sends again from there: the engine thread
     * of the device's own target, when that is open now (through a stack
     * of devices, the one at the bottom). Fixed while t is open. */
    struct uwdf_iotarget *below = dev->local_target;
    __atomic_store_n(&t->lock_engine, below ? __atomic_load_n(&below->lock_engine, __ATOMIC_RELAXED) : NULL,
                     __ATOMIC_RELAXED);
    t->fd = -1;
    t->is_block = t->is_stream = t->direct = t->write_through = false;
    t->access = FILE_READ_DATA | FILE_WRITE_DATA;
    t->size = 0;
    t->logical_sector = t->physical_sector = 512;
    t->dio_mem_align = t->dio_offset_align = 1;
    target_mark_open_locked(t);
    uwdf_biased_lock_release(&t->lock);
    target_grow_owner_stack(t);
    if (!tail) {
        params->FileInformation = FILE_OPENED;
        return STATUS_SUCCESS;
    }
    /* The device sees the open: IRP_MJ_CREATE (lib/fileobject.c). */
    status = uwdf_fileobject_open(t, dev, tail, params);
    if (!NT_SUCCESS(status)) {
        target_close(t, WdfIoTargetClosed);
        return status;
    }
    t->lower_file_open = true;
    params->FileInformation = FILE_OPENED;
    return STATUS_SUCCESS;
}

NTSTATUS uwdf_iotarget_open_device_name(const char *name, PWDF_IO_TARGET_OPEN_PARAMS params, WDFIOTARGET *out)
{
    struct uwdf_device *dev;
    const char *tail;
    struct uwdf_iotarget *t;
    NTSTATUS status = uwdf_fileobject_lookup_device(name, &dev, &tail);
    if (!NT_SUCCESS(status))
        return status;
    size_t len = strlen(name);
    char *path = uwdf_alloc(len + 1);
    status = path ? target_create(NULL, WDF_NO_OBJECT_ATTRIBUTES, NULL, &t) : STATUS_INSUFFICIENT_RESOURCES;
    if (!NT_SUCCESS(status)) {
        uwdf_free(path);
        uwdf_object_release(&dev->obj);
        return status;
    }
    memcpy(path, name, len + 1);
    status = target_attach_device(t, params, path, dev, path + (tail - name));
    if (!NT_SUCCESS(status)) {
        WdfObjectDelete((WDFOBJECT)t->obj.handle);
        return status;
    }
    *out = (WDFIOTARGET)t->obj.handle;
    return STATUS_SUCCESS;
}

/* "scheme://" at the start of name: a URI, not a Linux path. */
static bool target_name_is_uri(const char *name, size_t *scheme_len)
{
    size_t n = 0;
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
        return false;
    while (name[n] && (isalnum((unsigned char)name[n]) || name[n] == '+' || name[n] == '-' || name[n] == '.'))
        n++;
    *scheme_len = n;
    return strncmp(name + n, "://", 3) == 0;
}

/* libnbd's schemes: nbd, nbds, and either with +unix or +vsock. */
static bool target_scheme_is_nbd(const char *name, size_t len)
{
    static const char *const schemes[] = { "nbd", "nbds", "nbd+unix", "nbds+unix", "nbd+vsock", "nbds+vsock" };
    for (size_t i = 0; i < RTL_NUMBER_OF(schemes); i++)
        if (strlen(schemes[i]) == len && strncasecmp(name, schemes[i], len) == 0)
            return true;
    return false;
}

#if defined(HAVE_LIBNBD) || defined(HAVE_LIBRBD)
/* The open flags of a remote target's params; FILE_CREATE collides (an
 * export or image always exists), the other dispositions open it (nothing
 * is truncated). On failure name is freed. */
static NTSTATUS target_remote_flags(const WDF_IO_TARGET_OPEN_PARAMS *params, char *name, const char *what, int *flags)
{
    NTSTATUS status = uwdf_iotarget_open_flags(params, flags);
    if (NT_SUCCESS(status) && params->CreateDisposition == FILE_CREATE) {
        uwdf_log("%s: FILE_CREATE: an %s always exists", name, what);
        status = STATUS_OBJECT_NAME_COLLISION;
    }
    if (!NT_SUCCESS(status))
        uwdf_free(name);
    return status;
}

/* t runs on engine, which serves its remote file (attached): a fixed size
 * and sector-sized ranges, like a block device. name becomes the target's. */
static void target_start_remote(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *name,
                                struct uwdf_engine *engine, int flags, uint64_t size, uint32_t logical_sector,
                                uint32_t physical_sector, bool read_only, bool trim)
{
    uwdf_biased_lock_acquire(&t->lock);
    target_keep_open_params(t, params, name, false);
    __atomic_store_n(&t->engine, engine, __ATOMIC_RELAXED); /* target_lock_hot reads it */
    __atomic_store_n(&t->lock_engine, engine, __ATOMIC_RELAXED);
    t->fd = -1;
    t->remote = true;
    t->remote_read_only = read_only;
    t->remote_trim = trim;
    t->is_block = true;
    t->is_stream = t->direct = false;
    t->write_through = (flags & O_DSYNC) != 0;
    target_set_access(t, params->DesiredAccess);
    t->size = size;
    t->logical_sector = logical_sector;
    t->physical_sector = physical_sector > logical_sector ? physical_sector : logical_sector;
    t->dio_mem_align = 1;
    t->dio_offset_align = logical_sector;
    target_mark_open_locked(t);
    uwdf_biased_lock_release(&t->lock);
    target_grow_owner_stack(t);
    params->FileInformation = uwdf_create_information(params->CreateDisposition);
}
#endif

#ifdef HAVE_LIBNBD
/* What a failed NBD connect reports, from libnbd's errno. */
static NTSTATUS target_nbd_connect_status(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return STATUS_CONNECTION_REFUSED;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EADDRNOTAVAIL:
        return STATUS_HOST_UNREACHABLE;
    case ENOENT:
        return STATUS_BAD_NETWORK_NAME; /* no such export (or socket) */
    case ECONNRESET:
    case ENOTCONN:
    case EPIPE:
        return STATUS_CONNECTION_DISCONNECTED;
    case EINVAL:
        return STATUS_OBJECT_NAME_INVALID; /* libnbd could not parse the URI */
    case ERANGE:
        return STATUS_INVALID_PARAMETER; /* a uwdf- parameter out of range */
    case ENOTSUP:
    case EPROTO:
        return STATUS_NOT_SUPPORTED; /* TLS or a protocol feature refused */
    default:
        return uwdf_status_from_errno(err);
    }
}

/* An NBD export: connected here (a bad name fails now, with the reason in
 * the log), then attached to an engine of the nbd pool, which owns its
 * connections from then on (backends/nbd.c). */
static NTSTATUS target_open_nbd(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *uri)
{
    int flags, err;
    char why[256];
    struct uwdf_nbd_export *x;
    struct uwdf_nbd_info info;
    NTSTATUS status = target_remote_flags(params, uri, "NBD export", &flags);
    if (!NT_SUCCESS(status))
        return status;
    err = uwdf_nbd_connect(uri, (flags & O_DSYNC) != 0, &x, &info, why, sizeof(why));
    if (err) {
        status = target_nbd_connect_status(-err);
        uwdf_log("%s: cannot open the NBD export: %s (%s)", uri, why[0] ? why : strerror(-err),
                 UwdfNtStatusName(status));
        uwdf_free(uri);
        return status;
    }
    if (why[0])
        uwdf_log("%s: %s", uri, why);
    struct uwdf_engine *engine = uwdf_engine_attach_remote(&uwdf_backend_nbd, &t->attach, x, uwdf_nbd_export_engine(x), &err);
    if (!engine) {
        uwdf_nbd_export_free(x);
        uwdf_free(uri);
        return uwdf_status_from_errno(err);
    }
    uint32_t logical = info.min_block > 512 ? info.min_block : 512;
    target_start_remote(t, params, uri, engine, flags, info.size, logical, info.preferred_block, info.read_only,
                        info.can_trim);
    return STATUS_SUCCESS;
}
#endif

/* "rbd:" at the start of name: a Ceph RBD image (qemu's syntax). */
static bool target_name_is_rbd(const char *name)
{
    return strncmp(name, "rbd:", 4) == 0;
}

#ifdef HAVE_LIBRBD
/* What a failed RBD open reports: where it failed, then librados' errno. */
static NTSTATUS target_rbd_open_status(enum uwdf_rbd_stage stage, int err)
{
    if (err == ENOMEM)
        return STATUS_INSUFFICIENT_RESOURCES;
    switch (stage) {
    case UWDF_RBD_STAGE_NAME:
        return STATUS_OBJECT_NAME_INVALID;
    case UWDF_RBD_STAGE_CONF:
        return err == ENOENT ? STATUS_OBJECT_PATH_NOT_FOUND : uwdf_status_from_errno(err);
    case UWDF_RBD_STAGE_CONNECT:
        /* No monitor answered within client_mount_timeout, or none is
         * configured. */
        return err == EACCES || err == EPERM ? STATUS_ACCESS_DENIED : STATUS_HOST_UNREACHABLE;
    case UWDF_RBD_STAGE_POOL:
        return err == ENOENT ? STATUS_BAD_NETWORK_NAME : uwdf_status_from_errno(err);
    default:
        return uwdf_status_from_errno(err); /* ENOENT: STATUS_OBJECT_NAME_NOT_FOUND */
    }
}

/* An RBD image: opened here (a bad name fails now, with the reason in the
 * log), then attached to an engine of the rbd pool (backends/rbd.c). */
static NTSTATUS target_open_rbd(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *name)
{
    int flags, err;
    char why[256];
    struct uwdf_rbd_image *x;
    struct uwdf_rbd_info info;
    enum uwdf_rbd_stage stage;
    NTSTATUS status = target_remote_flags(params, name, "RBD image", &flags);
    if (!NT_SUCCESS(status))
        return status;
    err = uwdf_rbd_open(name + 4, access_wants_write(params->DesiredAccess), (flags & O_DSYNC) != 0, &x, &info,
                        &stage, why, sizeof(why));
    if (err) {
        status = target_rbd_open_status(stage, -err);
        uwdf_log("%s: cannot open the RBD image: %s (%s)", name, why[0] ? why : strerror(-err),
                 UwdfNtStatusName(status));
        uwdf_free(name);
        return status;
    }
    struct uwdf_engine *engine = uwdf_engine_attach_remote(&uwdf_backend_rbd, &t->attach, x, NULL, &err);
    if (!engine) {
        uwdf_rbd_image_free(x);
        uwdf_free(name);
        return uwdf_status_from_errno(err);
    }
    /* 512-byte sectors (librbd takes any offset); the stripe unit (the
     * object size unless the image is striped) is the optimal alignment,
     * reported as the physical sector. */
    uint64_t optimal = info.stripe_unit ? info.stripe_unit : info.object_size;
    target_start_remote(t, params, name, engine, flags, info.size, 512,
                        optimal && optimal <= UINT32_MAX ? (uint32_t)optimal : 512, info.snapshot, true);
    return STATUS_SUCCESS;
}
#endif

/* A Ceph RBD image, or refused with the reason. */
static NTSTATUS target_open_rbd_name(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *name)
{
#ifdef HAVE_LIBRBD
    return target_open_rbd(t, params, name);
#else
    uwdf_log("%s: this uwdf was built without librbd (configure found no librbd-dev/librados-dev), so it cannot "
             "open RBD images", name);
    uwdf_free(name);
    return STATUS_NOT_SUPPORTED;
#endif
}

/* A name that is a URI: an NBD export, or refused with the reason. */
static NTSTATUS target_open_uri(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *uri,
                                size_t scheme_len)
{
    if (!target_scheme_is_nbd(uri, scheme_len)) {
        uwdf_log("%s: unknown URI scheme '%.*s' (I/O targets open Linux paths, \\Device\\ names and "
                 "nbd://, nbds://, nbd+unix:// URIs and rbd: names)", uri, (int)scheme_len, uri);
        uwdf_free(uri);
        return STATUS_OBJECT_NAME_INVALID;
    }
#ifdef HAVE_LIBNBD
    return target_open_nbd(t, params, uri);
#else
    uwdf_log("%s: this uwdf was built without libnbd (configure found no libnbd-dev), so it cannot open NBD "
             "exports", uri);
    uwdf_free(uri);
    return STATUS_NOT_SUPPORTED;
#endif
}

NTSTATUS uwdf_iotarget_attach(struct uwdf_iotarget *t, struct uwdf_device *dev)
{
    WDF_IO_TARGET_OPEN_PARAMS params;
    memset(&params, 0, sizeof(params));
    params.Size = sizeof(params);
    params.Type = WdfIoTargetOpenUseExistingDevice;
    params.TargetDeviceObject = &dev->wdm;
    params.DesiredAccess = GENERIC_READ | GENERIC_WRITE;
    if (target_busy(t))
        return STATUS_INVALID_DEVICE_STATE;
    char *path = uwdf_alloc(sizeof("(device below)"));
    if (!path)
        return STATUS_INSUFFICIENT_RESOURCES;
    strcpy(path, "(device below)");
    uwdf_object_reference(&dev->obj);
    return target_attach_device(t, &params, path, dev, NULL);
}

static bool target_busy(struct uwdf_iotarget *t)
{
    uwdf_biased_lock_acquire(&t->lock);
    bool busy = !uwdf_state_in(UWDF_TS_ANY_CLOSED, uwdf_ts_get(t));
    uwdf_biased_lock_release(&t->lock);
    return busy;
}

/* Starts t on its open local file (t->fd) with an engine of ops; path (the
 * name, for reopening and messages) becomes the target's. On failure the
 * file is closed and path freed. */
static NTSTATUS target_start_local(struct uwdf_iotarget *t, const struct uwdf_backend_ops *ops,
                                   const WDF_IO_TARGET_OPEN_PARAMS *params, char *path, bool by_descriptor)
{
    int err;
    if (t->is_stream && !(ops->caps & UWDF_BE_CAP_STREAM_FILES)) {
        /* libaio runs non-regular files synchronously inside io_submit: a
         * FIFO read would hang the completion thread. */
        uwdf_log("%s: the %s engine cannot do FIFOs, pipes or character devices", path, ops->name);
        close(t->fd);
        t->fd = -1;
        uwdf_free(path);
        return STATUS_NOT_SUPPORTED;
    }
    struct uwdf_engine *engine = uwdf_engine_attach(ops, &t->attach, t->fd, &err);
    if (!engine && !uwdf_backend_forced() && ops == &uwdf_backend_io_uring) {
        uwdf_log("io_uring set-up failed (%s); using libaio", strerror(-err));
        ops = &uwdf_backend_libaio;
        engine = uwdf_engine_attach(ops, &t->attach, t->fd, &err);
    }
    __atomic_store_n(&t->engine, engine, __ATOMIC_RELAXED); /* target_lock_hot reads it */
    __atomic_store_n(&t->lock_engine, engine, __ATOMIC_RELAXED);
    if (!t->engine) {
        close(t->fd);
        t->fd = -1;
        uwdf_free(path);
        return uwdf_status_from_errno(err);
    }
    uwdf_biased_lock_acquire(&t->lock);
    target_keep_open_params(t, params, path, by_descriptor);
    target_mark_open_locked(t);
    uwdf_biased_lock_release(&t->lock);
    target_grow_owner_stack(t);
    return STATUS_SUCCESS;
}

NTSTATUS WdfIoTargetOpen(WDFIOTARGET IoTarget, PWDF_IO_TARGET_OPEN_PARAMS OpenParams)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetOpen");
    UWDF_REQUIRE_PARAM(OpenParams, "WdfIoTargetOpen", STATUS_INVALID_PARAMETER);
    if (!t)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive("WdfIoTargetOpen"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (OpenParams->Size != sizeof(WDF_IO_TARGET_OPEN_PARAMS))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (target_busy(t))
        return STATUS_INVALID_DEVICE_STATE;

    WDF_IO_TARGET_OPEN_PARAMS params = *OpenParams;
    char *path;
    switch (OpenParams->Type) {
    case WdfIoTargetOpenByName:
        if (!params.TargetDeviceName.Buffer || params.TargetDeviceName.Length == 0)
            return STATUS_INVALID_PARAMETER;
        path = uwdf_unicode_to_utf8(&params.TargetDeviceName);
        if (!path)
            return STATUS_INSUFFICIENT_RESOURCES;
        break;
    case WdfIoTargetOpenReopen:
        /* A target opened from a descriptor was opened beneath a root: its
         * name, opened again, could lead anywhere. */
        if (!t->path || t->by_descriptor)
            return STATUS_INVALID_PARAMETER;
        params = t->open_params;
        path = t->path;
        t->path = NULL;
        break;
    default:
        return STATUS_INVALID_PARAMETER;
    }
    if (path[0] == '\\')
        return target_open_device(t, &params, path);
    if (target_name_is_rbd(path)) {
        NTSTATUS status = target_open_rbd_name(t, &params, path);
        OpenParams->FileInformation = params.FileInformation;
        return status;
    }
    size_t scheme_len;
    if (target_name_is_uri(path, &scheme_len)) {
        NTSTATUS status = target_open_uri(t, &params, path, scheme_len);
        OpenParams->FileInformation = params.FileInformation;
        return status;
    }

    int err;
    const struct uwdf_backend_ops *ops = uwdf_backend_select(&err);
    if (!ops) {
        uwdf_free(path);
        return uwdf_status_from_errno(err);
    }
    NTSTATUS status = target_open_path(t, &params, path);
    if (!NT_SUCCESS(status)) {
        uwdf_free(path);
        return status;
    }
    OpenParams->FileInformation = params.FileInformation;
    return target_start_local(t, ops, &params, path, false);
}

NTSTATUS uwdf_iotarget_open_fd(WDFIOTARGET IoTarget, PWDF_IO_TARGET_OPEN_PARAMS OpenParams, int fd, int flags,
                               const char *name)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "uwdf_iotarget_open_fd");
    NTSTATUS status = STATUS_INVALID_HANDLE;
    char *path = NULL;
    int err;
    if (!t)
        goto fail;
    status = STATUS_INVALID_DEVICE_STATE;
    if (target_busy(t))
        goto fail;
    status = STATUS_INSUFFICIENT_RESOURCES;
    path = uwdf_alloc(strlen(name) + 1);
    if (!path)
        goto fail;
    strcpy(path, name);
    const struct uwdf_backend_ops *ops = uwdf_backend_select(&err);
    if (!ops) {
        status = uwdf_status_from_errno(err);
        goto fail;
    }
    /* Opened without blocking (a FIFO waits for its other side); the
     * request, not the open, is what may wait. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    status = target_adopt_fd(t, OpenParams, fd, flags);
    if (!NT_SUCCESS(status)) {
        uwdf_free(path);
        return status;
    }
    return target_start_local(t, ops, OpenParams, path, true);
fail:
    uwdf_free(path);
    close(fd);
    return status;
}

/* ---- state machine ---- */

/* Wait until the target's sent I/O has completed; false, without waiting,
 * when this is the thread of the engine that completes it: the wait would
 * never end. (Stop, Purge and Close are PASSIVE-only, so that thread can
 * only be here from a Filter Manager callback it runs at PASSIVE_LEVEL, or
 * from a WdfObjectDelete in a completion routine; the engine is shared, so
 * the target may be a neighbour of the one whose callback runs.) */
static bool target_wait_idle_locked(struct uwdf_iotarget *t)
{
    if (uwdf_iotarget_sent(t) > 0 && t->engine && uwdf_engine_on_own_thread(t->engine))
        return false;
    uwdf_engine_plug_flush(); /* takes engine locks only: after the target's is fine */
    t->waiters++;
    while (uwdf_iotarget_sent(t) > 0)
        pthread_cond_wait(&t->idle_cond, &t->lock.mutex);
    t->waiters--;
    return true;
}

/* Caller holds the lock. Cancels every sent request; the engine drops the
 * cancel references. ignored_too includes IGNORE_TARGET_STATE sends. */
static void target_cancel_sent_locked(struct uwdf_iotarget *t, bool ignored_too)
{
    struct uwdf_request *batch[64];
    int n;
    do {
        n = 0;
        for (LIST_ENTRY *e = t->sent.Flink; e != &t->sent && n < (int)RTL_NUMBER_OF(batch); e = e->Flink) {
            struct uwdf_request *req = CONTAINING_RECORD(e, struct uwdf_request, target_link);
            unsigned flags = atomic_load(&req->flags);
            if (__atomic_load_n(&req->fw_done, __ATOMIC_ACQUIRE) || (flags & UWDF_REQ_CANCELED) ||
                (!ignored_too && (flags & UWDF_REQ_IGNORE_STATE)))
                continue;
            atomic_fetch_or(&req->flags, UWDF_REQ_CANCELED);
            req->comp_refs++;
            batch[n++] = req;
        }
        uwdf_biased_lock_release(&t->lock);
        for (int i = 0; i < n; i++)
            uwdf_iotarget_cancel_io(t, batch[i]);
        uwdf_biased_lock_acquire(&t->lock);
    } while (n == (int)RTL_NUMBER_OF(batch));
}

/* Caller holds the lock: fail every pended request (never sent). */
static void target_fail_all_pended_locked(struct uwdf_iotarget *t, NTSTATUS status)
{
    while (!uwdf_list_empty(&t->pended)) {
        struct uwdf_request *req = CONTAINING_RECORD(t->pended.Flink, struct uwdf_request, target_link);
        uwdf_iotarget_fail_pended_locked(t, req, status);
        uwdf_engine_post_completion(t->engine, &req->snd->io);
    }
}

NTSTATUS WdfIoTargetStart(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetStart");
    struct uwdf_request *resubmit = NULL, **tail = &resubmit;
    if (!t)
        return STATUS_INVALID_HANDLE;
    uwdf_biased_lock_acquire(&t->lock);
    if (!uwdf_iotarget_is_open(t)) {
        uwdf_biased_lock_release(&t->lock);
        return STATUS_INVALID_DEVICE_STATE;
    }
    uwdf_ts_start(t);
    /* Resubmit what was pended while stopped, in arrival order. */
    while (!uwdf_list_empty(&t->pended)) {
        LIST_ENTRY *e = uwdf_list_pop_head(&t->pended);
        struct uwdf_request *req = CONTAINING_RECORD(e, struct uwdf_request, target_link);
        atomic_fetch_and(&req->flags, ~UWDF_REQ_PENDED);
        atomic_fetch_or(&req->flags, UWDF_REQ_SENT);
        uwdf_list_insert_tail(&t->sent, e);
        t->sent_count++;
        req->snd->resubmit_next = NULL;
        *tail = req;
        tail = &req->snd->resubmit_next;
    }
    uwdf_biased_lock_release(&t->lock);
    while (resubmit) {
        struct uwdf_request *next = resubmit->snd->resubmit_next;
        uwdf_iotarget_dispatch(t, resubmit);
        resubmit = next;
    }
    return STATUS_SUCCESS;
}

VOID WdfIoTargetStop(WDFIOTARGET IoTarget, WDF_IO_TARGET_SENT_IO_ACTION Action)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetStop");
    if (!t || Action <= WdfIoTargetSentIoUndefined || Action > WdfIoTargetLeaveSentIoPending)
        return; /* WDF ignores an undefined action */
    if (Action != WdfIoTargetLeaveSentIoPending && !uwdf_irql_check_passive("WdfIoTargetStop"))
        return;
    uwdf_biased_lock_acquire(&t->lock);
    if (uwdf_iotarget_is_open(t)) {
        uwdf_ts_stop(t);
        if (Action == WdfIoTargetCancelSentIo)
            target_cancel_sent_locked(t, false);
        if (Action != WdfIoTargetLeaveSentIoPending)
            target_wait_idle_locked(t);
    }
    uwdf_biased_lock_release(&t->lock);
}

VOID WdfIoTargetPurge(WDFIOTARGET IoTarget, WDF_IO_TARGET_PURGE_IO_ACTION Action)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetPurge");
    if (!t || Action <= WdfIoTargetPurgeIoUndefined || Action > WdfIoTargetPurgeIo)
        return;
    if (Action == WdfIoTargetPurgeIoAndWait && !uwdf_irql_check_passive("WdfIoTargetPurge"))
        return;
    uwdf_biased_lock_acquire(&t->lock);
    if (uwdf_iotarget_is_open(t)) {
        uwdf_ts_purge(t);
        target_fail_all_pended_locked(t, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
        target_cancel_sent_locked(t, false);
        if (Action == WdfIoTargetPurgeIoAndWait)
            target_wait_idle_locked(t);
    }
    uwdf_biased_lock_release(&t->lock);
}

/* The second half of a close, with nothing of the target in flight: the
 * engine lets go of the file, then the file itself. */
static void target_close_finish(struct uwdf_iotarget *t)
{
    if (t->engine)
        uwdf_engine_detach(t->engine, &t->attach);
    if (t->fd >= 0)
        close(t->fd);
    if (t->lower && t->lower_file_open)
        uwdf_fileobject_close(t->lower, &t->file_object);
    t->lower_file_open = false;
    if (t->lower && t->lower->pnp.exclusive)
        atomic_fetch_sub(&t->lower->opens, 1);
    if (t->lower)
        uwdf_object_release(&t->lower->obj);

    uwdf_biased_lock_acquire(&t->lock);
    __atomic_store_n(&t->engine, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&t->lock_engine, NULL, __ATOMIC_RELAXED);
    t->lower = NULL;
    t->fd = -1;
    t->remote = false;
    uwdf_ts_closed(t);
    uwdf_biased_lock_release(&t->lock);
}

/* Worker thread: a close begun on the engine thread that completes the
 * target's I/O waits here instead, holding a reference on the target. */
static void target_close_later(struct uwdf_work *w)
{
    struct uwdf_iotarget *t = uwdf_container_of(w, struct uwdf_iotarget, close_work);
    uwdf_biased_lock_acquire(&t->lock);
    target_wait_idle_locked(t);
    uwdf_biased_lock_release(&t->lock);
    target_close_finish(t);
    uwdf_object_release(&t->obj);
}

/* Close, CloseForQueryRemove and delete: fail the pended, cancel and wait
 * for everything sent (IGNORE_TARGET_STATE included), then release the
 * engine and the file. On the engine thread that completes the target's
 * I/O (a neighbour's completion routine deleting it, on a shared engine)
 * the wait and the rest move to the worker thread; the target stays
 * closing, refusing everything, until then. */
static void target_close(struct uwdf_iotarget *t, WDF_IO_TARGET_STATE new_state)
{
    uwdf_biased_lock_acquire(&t->lock);
    /* The close and a delete after it take the lock again: revoke the
     * engine thread's bias once, not at each taking (a membarrier each). */
    uwdf_biased_lock_set_bias(&t->lock, false);
    if (!uwdf_iotarget_is_open(t)) {
        /* (A target deleted while another thread closes it ends Deleted.) */
        if (new_state == WdfIoTargetDeleted &&
            uwdf_state_in(UWDF_TS_ANY_CLOSED | UWDF_TS(CLOSING) | UWDF_TS(CLOSING_QR), uwdf_ts_get(t)))
            uwdf_ts_delete(t);
        uwdf_biased_lock_release(&t->lock);
        return;
    }
    uwdf_ts_close(t, new_state);
    target_fail_all_pended_locked(t, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
    target_cancel_sent_locked(t, true);
    if (!target_wait_idle_locked(t)) {
        uwdf_object_reference(&t->obj);
        t->close_work.fn = target_close_later;
        uwdf_biased_lock_release(&t->lock);
        if (uwdf_worker_queue(&t->close_work) != 0)
            uwdf_log("%s: no worker thread to finish closing the target; it stays closing", t->path);
        return;
    }
    uwdf_biased_lock_release(&t->lock);
    target_close_finish(t);
}

VOID WdfIoTargetClose(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetClose");
    if (t && uwdf_irql_check_passive("WdfIoTargetClose"))
        target_close(t, WdfIoTargetClosed);
}

VOID WdfIoTargetCloseForQueryRemove(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetCloseForQueryRemove");
    if (t && uwdf_irql_check_passive("WdfIoTargetCloseForQueryRemove"))
        target_close(t, WdfIoTargetClosedForQueryRemove);
}

WDF_IO_TARGET_STATE WdfIoTargetGetState(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetGetState");
    if (!t)
        return WdfIoTargetStateUndefined;
    static const WDF_IO_TARGET_STATE reported[] = {
        [UWDF_TS_CLOSED] = WdfIoTargetClosed,    [UWDF_TS_CLOSED_QR] = WdfIoTargetClosedForQueryRemove,
        [UWDF_TS_STARTED] = WdfIoTargetStarted,  [UWDF_TS_STOPPED] = WdfIoTargetStopped,
        [UWDF_TS_PURGED] = WdfIoTargetPurged,    [UWDF_TS_CLOSING] = WdfIoTargetClosed,
        [UWDF_TS_CLOSING_QR] = WdfIoTargetClosedForQueryRemove,
        [UWDF_TS_DELETING] = WdfIoTargetDeleted, [UWDF_TS_DELETED] = WdfIoTargetDeleted,
    };
    uwdf_biased_lock_acquire(&t->lock);
    unsigned s = uwdf_ts_get(t);
    uwdf_biased_lock_release(&t->lock);
    return reported[s];
}

WDFDEVICE WdfIoTargetGetDevice(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetGetDevice");
    return t && t->device ? (WDFDEVICE)t->device->obj.handle : NULL;
}

HANDLE WdfIoTargetWdmGetTargetFileHandle(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetWdmGetTargetFileHandle");
    return t && uwdf_iotarget_is_opened(t) && t->fd >= 0 ? (HANDLE)(intptr_t)t->fd : NULL; /* none for a device */
}

PDEVICE_OBJECT WdfIoTargetWdmGetTargetDeviceObject(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetWdmGetTargetDeviceObject");
    return t && t->device ? &t->device->wdm : NULL;
}

PFILE_OBJECT WdfIoTargetWdmGetTargetFileObject(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetWdmGetTargetFileObject");
    return t && uwdf_iotarget_is_opened(t) ? &t->file_object : NULL;
}

PCSTR UwdfIoTargetGetBackendName(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "UwdfIoTargetGetBackendName");
    return t && t->engine ? uwdf_engine_name(t->engine) : NULL;
}

