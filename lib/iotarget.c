/* WDFIOTARGET for files and block devices: open by name, the target state
 * machine (Started / Stopped / Purged / Closed / Deleted with the pended
 * list), formatting, and the send path.
 *
 * Completion ownership (the one place it is decided): a sent request holds
 * a completion reference count, under the target lock. The I/O holds one
 * reference until the engine reports it finished; an armed framework timer
 * holds one; a cancel in progress (from WdfRequestCancelSentRequest, the
 * timer, Stop, Purge or Close) holds one until the engine has tried it.
 * Whoever drops the count to zero completes the request to its owner. The
 * I/O reference only goes when the kernel has returned the buffer, so a
 * request never completes while the kernel may still touch its memory. */
#include "runtime.h"
#include "biased_lock.h"
#include "device.h"
#include "engine.h"
#include "iotarget.h"
#include "irp.h"
#include "lists.h"
#include "memory.h"
#include "object.h"
#include "queue.h"
#include "request.h"
#include "timer.h"
#include "worker.h"
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define TARGET_ENGINE_DEPTH 256
#define MISALIGN_LOG_LIMIT 8

#define REQ_INFLIGHT (UWDF_REQ_SENT | UWDF_REQ_PENDED)

static void target_timer_fired(struct uwdf_timer *timer);
static void target_cancel_io(struct uwdf_iotarget *t, struct uwdf_request *req);

static void target_close(struct uwdf_iotarget *t, WDF_IO_TARGET_STATE new_state);

static void target_dispose(struct uwdf_object *obj)
{
    struct uwdf_iotarget *t = (struct uwdf_iotarget *)obj;
    target_close(t, WdfIoTargetDeleted);
}

static void target_destroy(struct uwdf_object *obj)
{
    struct uwdf_iotarget *t = (struct uwdf_iotarget *)obj;
    pthread_cond_destroy(&t->idle_cond);
    uwdf_biased_lock_destroy(&t->lock);
    uwdf_free(t->path);
}

static const struct uwdf_object_ops target_ops = {
    .dispose = target_dispose,
    .destroy = target_destroy,
};

NTSTATUS WdfIoTargetCreate(WDFDEVICE Device, PWDF_OBJECT_ATTRIBUTES IoTargetAttributes,
                           WDFIOTARGET *IoTarget)
{
    struct uwdf_object *obj;
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
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_iotarget), UWDF_OBJ_IOTARGET, &target_ops,
                                         IoTargetAttributes, &dev->obj, 0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_iotarget *t = (struct uwdf_iotarget *)obj;
    t->device = dev;
    t->fd = -1;
    t->state = WdfIoTargetClosed;
    uwdf_biased_lock_init(&t->lock);
    pthread_cond_init(&t->idle_cond, NULL);
    uwdf_list_init(&t->sent);
    uwdf_list_init(&t->pended);
    *IoTarget = (WDFIOTARGET)obj->handle;
    return STATUS_SUCCESS;
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
    t->is_block = S_ISBLK(st.st_mode);
    t->is_stream = !S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode);
    t->direct = (flags & O_DIRECT) != 0;
    t->write_through = (flags & O_DSYNC) != 0;
    t->access = p->DesiredAccess;
    if (access_wants_read(p->DesiredAccess) || !access_wants_write(p->DesiredAccess))
        t->access |= FILE_READ_DATA;
    if (access_wants_write(p->DesiredAccess))
        t->access |= FILE_WRITE_DATA;
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
    int fd = open(path, flags | (fifo ? O_NONBLOCK : 0), 0666);
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
    if (t->device->wdm.StackSize < need)
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
    target_init_file_object(t);
    atomic_store(&t->file_pos, 0);
    t->opened = true;
    atomic_store_explicit(&t->formattable, true, memory_order_release);
    t->state = WdfIoTargetStarted;
}

/* A name in the NT namespace: an in-process device of this process. Its
 * requests go into the device's queues; the target's engine (the null
 * engine) only carries completions the framework decides itself. */
static NTSTATUS target_open_device(struct uwdf_iotarget *t, PWDF_IO_TARGET_OPEN_PARAMS params, char *path)
{
    int err;
    struct uwdf_device *dev = uwdf_device_lookup_name(path);
    if (!dev) {
        uwdf_free(path);
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    if (dev == t->device) {
        uwdf_object_release(&dev->obj);
        uwdf_free(path);
        return STATUS_INVALID_DEVICE_REQUEST; /* a device cannot sit on itself */
    }
    struct uwdf_engine *engine = uwdf_engine_create(&uwdf_backend_null, TARGET_ENGINE_DEPTH, &err);
    if (!engine) {
        uwdf_object_release(&dev->obj);
        uwdf_free(path);
        return uwdf_status_from_errno(err);
    }
    uwdf_biased_lock_acquire(&t->lock);
    target_keep_open_params(t, params, path, false);
    t->lower = dev;
    __atomic_store_n(&t->engine, engine, __ATOMIC_RELAXED); /* target_lock_hot reads it */
    t->fd = -1;
    t->is_block = t->is_stream = t->direct = t->write_through = false;
    t->access = FILE_READ_DATA | FILE_WRITE_DATA;
    t->size = 0;
    t->logical_sector = t->physical_sector = 512;
    t->dio_mem_align = t->dio_offset_align = 1;
    target_mark_open_locked(t);
    uwdf_biased_lock_release(&t->lock);
    target_grow_owner_stack(t);
    params->FileInformation = FILE_OPENED;
    return STATUS_SUCCESS;
}

static bool target_busy(struct uwdf_iotarget *t)
{
    uwdf_biased_lock_acquire(&t->lock);
    bool busy = t->opened || t->closing || t->state == WdfIoTargetDeleted;
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
    struct uwdf_engine *engine = uwdf_engine_create(ops, TARGET_ENGINE_DEPTH, &err);
    if (!engine && !uwdf_env(UWDF_ENV_BACKEND) && ops == &uwdf_backend_io_uring) {
        uwdf_log("io_uring set-up failed (%s); using libaio", strerror(-err));
        ops = &uwdf_backend_libaio;
        engine = uwdf_engine_create(ops, TARGET_ENGINE_DEPTH, &err);
    }
    __atomic_store_n(&t->engine, engine, __ATOMIC_RELAXED); /* target_lock_hot reads it */
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

/* ---- the send path ---- */

static bool target_is_accepting(WDF_IO_TARGET_STATE s, bool ignore_state)
{
    if (ignore_state)
        return s != WdfIoTargetDeleted && s != WdfIoTargetClosed &&
               s != WdfIoTargetClosedForQueryRemove;
    return s == WdfIoTargetStarted || s == WdfIoTargetStopped;
}

/* Off the sent list once its completion is decided (caller holds the
 * target lock). It stays counted in sent_count until its owner has it back
 * (target_complete). */
static void target_unlink_locked(struct uwdf_request *req)
{
    uwdf_list_remove(&req->target_link);
    /* Marked under this target's lock: a cancel holding it then knows the
     * request may already be reused and sent elsewhere (under another
     * target's lock), so it must not read its send state. */
    atomic_store_explicit(&req->send_over, true, memory_order_release);
}

/* The target lock from a path its engine thread takes (per I/O when
 * completion routines resend: the completion, the send): the lock's biased
 * fast path there, the plain acquisition on any other thread. A waiter on
 * idle_cond holds a revocation while it waits, so the engine thread takes
 * the mutex whenever there is one to wake. */
enum target_lock_how { TARGET_LOCK_OTHER, TARGET_LOCK_OWNER_FAST, TARGET_LOCK_OWNER_SLOW };

static inline enum target_lock_how target_lock_hot(struct uwdf_iotarget *t)
{
    struct uwdf_engine *e = uwdf_tls_engine;
    if (e && e == __atomic_load_n(&t->engine, __ATOMIC_RELAXED))
        return uwdf_biased_lock_owner_acquire(&t->lock) ? TARGET_LOCK_OWNER_FAST
                                                        : TARGET_LOCK_OWNER_SLOW;
    uwdf_biased_lock_acquire(&t->lock);
    return TARGET_LOCK_OTHER;
}

static inline void target_unlock_hot(struct uwdf_iotarget *t, enum target_lock_how how)
{
    if (how == TARGET_LOCK_OTHER)
        uwdf_biased_lock_release(&t->lock);
    else
        uwdf_biased_lock_owner_release(&t->lock, how == TARGET_LOCK_OWNER_FAST);
}

/* Complete a request whose completion count reached zero, outside the lock.
 * Inlined into its two callers (the engine's completion path). */
static inline __attribute__((always_inline)) void target_complete(struct uwdf_request *req)
{
    NTSTATUS status;
    ULONG_PTR info = 0;
    unsigned flags = atomic_load(&req->flags);
    struct uwdf_iotarget *t = req->target;

    if (req->fw_done) {
        status = req->fw_status;
        info = req->fw_info;
    } else if (req->io.res >= 0) {
        status = STATUS_SUCCESS;
        info = (ULONG_PTR)req->io.res;
        /* The NT convention: a read that starts at or past the end of the
         * file fails with STATUS_END_OF_FILE; a short read succeeds. */
        if (req->io.op == UWDF_OP_READ && req->io.res == 0 && req->io_length > 0)
            status = STATUS_END_OF_FILE;
    } else {
        status = uwdf_status_from_errno((int)-req->io.res);
    }
    if (status == STATUS_CANCELLED && (flags & UWDF_REQ_TIMER_CANCELLED))
        status = STATUS_IO_TIMEOUT;
    if (req->received && !t->lower)
        uwdf_irp_clear_cancel(req->irp);

    if ((flags & UWDF_REQ_USE_FILE_POS) && !t->is_stream && req->io_length) {
        /* Give back the unused part of the reserved range if nobody moved
         * the position since. */
        unsigned long long end = req->pos_offset + req->io_length;
        unsigned long long real = req->pos_offset + (NT_SUCCESS(status) ? info : 0);
        if (real != end)
            atomic_compare_exchange_strong(&t->file_pos, &end, real);
    }
    if (uwdf_request_finish(req, status, info))
        return; /* a send to t from the routine counts in req's place */

    /* Only now is the request no longer sent I/O: a Stop, Purge or Close
     * waiting for sent I/O returns after the completion routines ran, as
     * WDF signals its sent-I/O event after CompleteRequest. req may be gone;
     * t is not, since deleting it waits for sent_count to reach zero.
     * A decrement that leaves others in flight changes no waiter's
     * condition and takes no lock; the last one does, so a waiter cannot
     * miss it (nor free t under it). */
    unsigned n = atomic_load_explicit(&t->sent_count, memory_order_relaxed);
    while (n > 1 && !atomic_compare_exchange_weak(&t->sent_count, &n, n - 1))
        ;
    if (n > 1)
        return;
    enum target_lock_how how = target_lock_hot(t);
    if (--t->sent_count == 0 && t->waiters)
        pthread_cond_broadcast(&t->idle_cond);
    target_unlock_hot(t, how);
}

static void target_drop_refs(struct uwdf_iotarget *t, struct uwdf_request *req, long n)
{
    bool final;
    enum target_lock_how how = target_lock_hot(t);
    req->comp_refs -= n;
    final = req->comp_refs == 0;
    if (final)
        target_unlink_locked(req);
    target_unlock_hot(t, how);
    if (final)
        target_complete(req);
}

void uwdf_request_io_done(struct uwdf_io *io)
{
    struct uwdf_request *req = uwdf_container_of(io, struct uwdf_request, io);
    struct uwdf_iotarget *t = req->target;
    long drop = 1;
    enum target_lock_how how = target_lock_hot(t);
    /* Bits change only when there is something to record: a cancel may
     * set CANCELED concurrently without the lock, so no plain store. */
    if (io->timed_out)
        atomic_fetch_or(&req->flags, UWDF_REQ_TIMER_CANCELLED);
    if ((atomic_load_explicit(&req->flags, memory_order_relaxed) & UWDF_REQ_TIMER_ARMED) &&
        uwdf_timer_cancel(&req->timer)) {
        atomic_fetch_and(&req->flags, ~UWDF_REQ_TIMER_ARMED);
        drop++;
    }
    req->comp_refs -= drop;
    bool final = req->comp_refs == 0;
    if (final)
        target_unlink_locked(req);
    target_unlock_hot(t, how);
    if (final)
        target_complete(req);
}

void uwdf_request_cancel_done(struct uwdf_io *io, int cancel_result)
{
    struct uwdf_request *req = uwdf_container_of(io, struct uwdf_request, io);
    (void)cancel_result;
    target_drop_refs(req->target, req, 1);
}

static void target_fail_pended(struct uwdf_iotarget *t, struct uwdf_request *req, NTSTATUS status)
{
    /* Caller holds the lock; the request is on the pended list. It
     * completes through the engine thread like any other. */
    uwdf_list_remove(&req->target_link);
    atomic_fetch_and(&req->flags, ~UWDF_REQ_PENDED);
    atomic_fetch_or(&req->flags, UWDF_REQ_SENT);
    uwdf_list_insert_tail(&t->sent, &req->target_link);
    t->sent_count++;
    req->fw_done = true;
    req->fw_status = status;
    req->fw_info = 0;
}

static void target_timer_fired(struct uwdf_timer *timer)
{
    struct uwdf_request *req = uwdf_container_of(timer, struct uwdf_request, timer);
    struct uwdf_iotarget *t = req->target;
    bool cancel_io = false, post = false;
    uwdf_biased_lock_acquire(&t->lock);
    unsigned flags = atomic_fetch_and(&req->flags, ~UWDF_REQ_TIMER_ARMED);
    atomic_fetch_or(&req->flags, UWDF_REQ_TIMER_CANCELLED);
    if (flags & UWDF_REQ_PENDED) {
        /* Timed out while the target was stopped: never reached the kernel. */
        target_fail_pended(t, req, STATUS_CANCELLED);
        req->comp_refs--; /* the timer's; the pended I/O's goes with the post */
        post = true;
    } else if (flags & UWDF_REQ_SENT) {
        cancel_io = true; /* the timer's reference passes to the cancel */
    }
    uwdf_biased_lock_release(&t->lock);
    if (post)
        uwdf_engine_post_completion(t->engine, &req->io);
    else if (cancel_io)
        target_cancel_io(t, req);
    else
        target_drop_refs(t, req, 1);
}

static int target_build_iov(struct uwdf_request *req, void *buf, size_t len)
{
    req->iov_inline[0].iov_base = buf;
    req->iov_inline[0].iov_len = len;
    req->io.iov = req->iov_inline;
    return 1;
}

/* Whether an O_DIRECT read or write breaks the target's alignment rules:
 * buffers on ma bytes, the offset (when it has one) and lengths on oa.
 * Linux reports powers of two, checked with masks instead of a division per
 * term; the remainder form stays for any other value. */
static bool target_dio_misaligned(const struct uwdf_io *io, size_t len, bool has_offset, uint32_t ma,
                                  uint32_t oa)
{
    if (UWDF_LIKELY((ma & (ma - 1)) == 0 && (oa & (oa - 1)) == 0)) {
        uint64_t sizes = len | (has_offset ? io->offset : 0);
        uintptr_t bases = 0;
        for (int i = 0; i < io->iovcnt; i++) {
            bases |= (uintptr_t)io->iov[i].iov_base;
            sizes |= io->iov[i].iov_len;
        }
        return (sizes & (oa - 1)) != 0 || (bases & (ma - 1)) != 0;
    }
    if ((has_offset && io->offset % oa) || len % oa)
        return true;
    for (int i = 0; i < io->iovcnt; i++)
        if ((uintptr_t)io->iov[i].iov_base % ma || io->iov[i].iov_len % oa)
            return true;
    return false;
}

/* Describe the next stack location as an engine op; a failure here is the
 * lower "driver" failing the request. */
static NTSTATUS target_build_io(struct uwdf_iotarget *t, struct uwdf_request *req)
{
    PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(req->irp);
    struct uwdf_io *io = &req->io;
    size_t len;
    unsigned flags = 0;

    io->fd = t->fd;
    io->rw_flags = 0;
    io->timed_out = false;
    io->res = 0;
    req->io_length = 0;
    switch (s->MajorFunction) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE: {
        bool write = s->MajorFunction == IRP_MJ_WRITE;
        io->op = write ? UWDF_OP_WRITE : UWDF_OP_READ;
        if (!(t->access & (write ? FILE_WRITE_DATA : FILE_READ_DATA)))
            return STATUS_ACCESS_DENIED;
        len = s->Parameters.Read.Length;
        int slot = write ? 0 : 1;
        if (req->fmt_mem[slot] || req->fmt_buffer[slot]) {
            char *base = req->fmt_mem[slot] ? (char *)req->fmt_mem[slot]->buffer + req->fmt_offset[slot]
                                            : req->fmt_buffer[slot];
            io->iovcnt = target_build_iov(req, base, len);
        } else if (req->irp->MdlAddress && len > 0) {
            size_t bytes;
            int n = uwdf_mdl_to_iovec(req->irp->MdlAddress, len, req->iov_inline, UWDF_INLINE_IOV, &bytes);
            if (n < 0) {
                /* A long chain: grow the request's own iovec array once;
                 * reuse keeps it. */
                int need = 0;
                for (PMDL m = req->irp->MdlAddress; m; m = m->Next)
                    need++;
                if (need > req->iov_heap_cap) {
                    struct iovec *grown = uwdf_alloc(sizeof(*grown) * (size_t)need);
                    if (!grown)
                        return STATUS_INSUFFICIENT_RESOURCES;
                    uwdf_free(req->iov_heap);
                    req->iov_heap = grown;
                    req->iov_heap_cap = need;
                }
                n = uwdf_mdl_to_iovec(req->irp->MdlAddress, len, req->iov_heap, need, &bytes);
                io->iov = req->iov_heap;
            } else {
                io->iov = req->iov_inline;
            }
            if (bytes < len)
                return STATUS_BUFFER_TOO_SMALL;
            io->iovcnt = n;
        } else if (len == 0 || req->irp->UserBuffer) {
            io->iovcnt = target_build_iov(req, req->irp->UserBuffer, len);
        } else {
            return STATUS_INVALID_USER_BUFFER;
        }
        req->io_length = len;
        LONGLONG off = s->Parameters.Read.ByteOffset.QuadPart;
        if (UWDF_UNLIKELY(off < 0)) {
            /* The file system's meanings of a negative offset (wdm.h). */
            LARGE_INTEGER bo = s->Parameters.Read.ByteOffset;
            if (bo.HighPart == -1 && bo.LowPart == FILE_USE_FILE_POINTER_POSITION)
                flags |= UWDF_REQ_USE_FILE_POS;
            else if (write && bo.HighPart == -1 && bo.LowPart == FILE_WRITE_TO_END_OF_FILE)
                flags |= UWDF_REQ_APPEND;
            else
                return STATUS_INVALID_PARAMETER;
        } else {
            io->offset = (uint64_t)off;
        }
        if (write && (s->Flags & SL_WRITE_THROUGH))
            io->rw_flags |= RWF_DSYNC;
        if (t->direct) {
            uint32_t ma = t->dio_mem_align, oa = t->dio_offset_align;
            if (target_dio_misaligned(io, len, !(flags & (UWDF_REQ_USE_FILE_POS | UWDF_REQ_APPEND)), ma, oa)) {
                static atomic_int logged;
                if (atomic_fetch_add(&logged, 1) < MISALIGN_LOG_LIMIT)
                    uwdf_log("%s: unbuffered (O_DIRECT) I/O needs buffers aligned to %u bytes and "
                             "offsets and lengths that are multiples of %u bytes (offset %llu, "
                             "length %zu)", t->path, ma, oa, (unsigned long long)io->offset, len);
                return STATUS_DATATYPE_MISALIGNMENT;
            }
        }
        break;
    }
    case IRP_MJ_FLUSH_BUFFERS:
        /* ntifs.h's data-only minors are fdatasync(2); anything else fsync. */
        io->op = s->MinorFunction == IRP_MN_FLUSH_DATA_ONLY || s->MinorFunction == IRP_MN_FLUSH_DATA_SYNC_ONLY
                     ? UWDF_OP_FDATASYNC
                     : UWDF_OP_FSYNC;
        io->iovcnt = 0;
        break;
    case IRP_MJ_DEVICE_CONTROL:
    case IRP_MJ_INTERNAL_DEVICE_CONTROL:
        io->op = 0; /* answered by the framework */
        break;
    default:
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if (flags)
        atomic_fetch_or(&req->flags, flags);
    return STATUS_SUCCESS;
}

static void *request_fmt_data(struct uwdf_request *req, int slot)
{
    return req->fmt_mem[slot] ? (char *)req->fmt_mem[slot]->buffer + req->fmt_offset[slot]
                              : req->fmt_buffer[slot];
}

/* Worker thread: a discard or zeroing that blocks, then its completion
 * goes to the engine thread like any other. */
static void target_blocking_ioctl(struct uwdf_work *w)
{
    struct uwdf_request *req = uwdf_container_of(w, struct uwdf_request, work);
    struct uwdf_iotarget *t = req->target;
    PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(req->irp);
    void *in = request_fmt_data(req, 0), *out;
    size_t in_len = req->fmt_length[0], out_len;
    if (req->fmt_type == WdfRequestTypeNoFormat)
        uwdf_request_irp_ioctl_buffers(req, &in, &in_len, &out, &out_len);
    req->fw_status = uwdf_blockops_ioctl(t, s->Parameters.DeviceIoControl.IoControlCode, in, in_len);
    req->fw_info = 0;
    __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE); /* a cancel reads it */
    uwdf_engine_post_completion(t->engine, &req->io);
}

/* Hand a request that is on the sent list to the engine (outside the lock). */
static void target_dispatch(struct uwdf_iotarget *t, struct uwdf_request *req)
{
    struct uwdf_io *io = &req->io;
    if (!req->fw_done && !t->lower) {
        NTSTATUS status = target_build_io(t, req);
        ULONG code = IoGetNextIrpStackLocation(req->irp)->Parameters.DeviceIoControl.IoControlCode;
        if (NT_SUCCESS(status) && io->op == 0 && uwdf_blockops_handles(code) &&
            (uwdf_engine_caps(t->engine) & UWDF_BE_CAP_NO_KERNEL)) {
            /* The null engine never touches the device: a discard or
             * zeroing there must not destroy data either. */
            req->fw_status = STATUS_SUCCESS;
            req->fw_info = 0;
            __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE);
        } else if (NT_SUCCESS(status) && io->op == 0 && uwdf_blockops_handles(code)) {
            req->work.fn = target_blocking_ioctl;
            if (uwdf_worker_queue(&req->work) == 0)
                return;
            status = STATUS_INSUFFICIENT_RESOURCES;
        } else if (NT_SUCCESS(status) && io->op == 0) {
            void *in = request_fmt_data(req, 0), *out = request_fmt_data(req, 1);
            size_t in_len = req->fmt_length[0], out_len = req->fmt_length[1];
            if (req->fmt_type == WdfRequestTypeNoFormat)
                uwdf_request_irp_ioctl_buffers(req, &in, &in_len, &out, &out_len);
            status = uwdf_iotarget_ioctl(t, code, in, in_len, out, out_len, &req->fw_info);
            req->fw_status = status;
            __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE);
        }
        if (!NT_SUCCESS(status) && !req->fw_done) {
            req->fw_status = status;
            req->fw_info = 0;
            __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE);
        }
    }
    if (req->fw_done) {
        uwdf_engine_post_completion(t->engine, io);
        return;
    }
    if (t->lower) {
        uwdf_queue_deliver(t->lower, req);
        return;
    }
    unsigned where = atomic_load(&req->flags) & (UWDF_REQ_USE_FILE_POS | UWDF_REQ_APPEND);
    if (UWDF_UNLIKELY(where)) {
        if (t->is_stream) {
            io->offset = UWDF_IO_OFFSET_CURRENT;
        } else if (where & UWDF_REQ_APPEND) {
            /* The kernel picks the end, one writer at a time, so no two
             * appends overlap; the offset is not used (and must not be -1,
             * io_uring's "the file position"). */
            io->offset = 0;
            io->rw_flags |= RWF_APPEND;
        } else {
            io->offset = req->pos_offset = atomic_fetch_add(&t->file_pos, req->io_length);
        }
    }
    uwdf_engine_submit(t->engine, io);
}

static NTSTATUS send_options_validate(PWDF_REQUEST_SEND_OPTIONS o)
{
    const ULONG valid = WDF_REQUEST_SEND_OPTION_TIMEOUT | WDF_REQUEST_SEND_OPTION_SYNCHRONOUS |
                        WDF_REQUEST_SEND_OPTION_IGNORE_TARGET_STATE |
                        WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET;
    if (!o)
        return STATUS_SUCCESS;
    if (o->Size != sizeof(WDF_REQUEST_SEND_OPTIONS))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (o->Flags & ~valid)
        return STATUS_INVALID_PARAMETER;
    if ((o->Flags & WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET) &&
        (o->Flags & ~(ULONG)WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET))
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

static bool request_in_flight_check(struct uwdf_request *req, const char *ddi)
{
    if (!(atomic_load(&req->flags) & REQ_INFLIGHT))
        return true;
    if (uwdf_verifier)
        uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT,
                      (ULONG_PTR)req->obj.handle, 0,
                      "%s: request %p is already sent to an I/O target (REQUEST_ALREADY_SENT)", ddi, (void *)req->obj.handle);
    return false;
}

/* uwdf_iotarget_submit, inlined into WdfRequestSend (the resend path). */
static inline __attribute__((always_inline)) NTSTATUS
target_submit(struct uwdf_iotarget *t, struct uwdf_request *req, PWDF_REQUEST_SEND_OPTIONS options)
{
    ULONG oflags = options ? options->Flags : 0;
    bool ignore_state = (oflags & WDF_REQUEST_SEND_OPTION_IGNORE_TARGET_STATE) != 0;
    int64_t deadline = 0;
    bool timed = (oflags & WDF_REQUEST_SEND_OPTION_TIMEOUT) &&
                 uwdf_timeout_to_mono_deadline(options->Timeout, &deadline);

    if (!request_in_flight_check(req, "WdfRequestSend"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!req->formatted) {
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, 0, (ULONG_PTR)req->obj.handle, 0,
                          "WdfRequestSend: request %p was not formatted (rule RequestFormattedValid)",
                          (void *)req->obj.handle);
        return STATUS_REQUEST_NOT_ACCEPTED;
    }
    if (!req->irp || req->irp->CurrentLocation < 1 + uwdf_iotarget_stack_need(t))
        return STATUS_REQUEST_NOT_ACCEPTED;
    if (req->cancelable) {
        /* Rule ReqMarkCancelableSend: unmark before sending it on. */
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, 0, (ULONG_PTR)req->obj.handle, 0,
                          "WdfRequestSend: request %p is still marked cancelable (rule "
                          "ReqMarkCancelableSend)", (void *)req->obj.handle);
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if (atomic_load(&req->flags) & UWDF_REQ_CANCELED)
        return STATUS_CANCELLED; /* cancelled before it was sent; Reuse clears it */

    enum target_lock_how how = target_lock_hot(t);
    if (!t->opened || !target_is_accepting(t->state, ignore_state)) {
        target_unlock_hot(t, how);
        return STATUS_INVALID_DEVICE_STATE;
    }
    bool pend = t->state == WdfIoTargetStopped && !ignore_state;
    /* Atomic: WdfRequestCancelSentRequest reads it from any thread. */
    __atomic_store_n(&req->target, t, __ATOMIC_RELEASE);
    req->fw_done = false;
    req->io.core_where = 0;
    req->io.core_cancel_early = false;
    req->io.core_may_run_here = false;
    req->io.core_untimed = !timed;
    req->io.has_timeout = false;
    req->comp_refs = 1;
    unsigned f = (atomic_load(&req->flags) & (UWDF_REQ_SYNC | UWDF_REQ_CALL_ROUTINE)) |
                 (pend ? UWDF_REQ_PENDED : UWDF_REQ_SENT) | (ignore_state ? UWDF_REQ_IGNORE_STATE : 0);
    atomic_store_explicit(&req->send_over, false, memory_order_release);
    atomic_store_explicit(&req->flags, f, memory_order_release); /* under the lock: no full fence needed */
    if (timed) {
        /* The kernel enforces the timeout where it can (io_uring's linked
         * timeout); otherwise the framework timer does, and it holds a
         * completion reference while armed. */
        bool kernel_timeout = !pend && (uwdf_engine_caps(t->engine) & UWDF_BE_CAP_LINK_TIMEOUT) &&
                              atomic_load(&uwdf_fault_stall_ms) == 0;
        if (kernel_timeout) {
            int64_t rel = deadline - uwdf_mono_ns();
            if (rel < 0)
                rel = 0;
            req->io.has_timeout = true;
            req->io.timeout_abs = false;
            req->io.timeout_sec = rel / 1000000000;
            req->io.timeout_nsec = rel % 1000000000;
        } else {
            uwdf_timer_init(&req->timer, target_timer_fired);
            if (uwdf_timer_arm(&req->timer, deadline) != 0) {
                __atomic_store_n(&req->target, NULL, __ATOMIC_RELEASE);
                atomic_store(&req->flags, f & (UWDF_REQ_SYNC | UWDF_REQ_CALL_ROUTINE));
                req->comp_refs = 0;
                target_unlock_hot(t, how);
                return STATUS_INSUFFICIENT_RESOURCES;
            }
            atomic_fetch_or(&req->flags, UWDF_REQ_TIMER_ARMED);
            req->comp_refs++;
        }
    }
    /* The target's reference, until completion, and the place in
     * sent_count: taken over from the completion whose routine runs on
     * this thread (struct uwdf_completion_scope), when this is the
     * target's engine thread and the target a file or block device: the
     * send then completes here, after the routine has returned (engine.c
     * defers even an immediate failure), so the routine's completion still
     * counts while the routine runs. (A device target's driver may complete
     * on any thread, at once.) */
    struct uwdf_completion_scope *sc =
        how != TARGET_LOCK_OTHER && !t->lower ? uwdf_tls_completion : NULL;
    if (sc && sc->req == req && !sc->req_ref_lent)
        sc->req_ref_lent = true;
    else
        uwdf_object_reference(&req->obj);
    if (pend) {
        uwdf_list_insert_tail(&t->pended, &req->target_link);
    } else {
        uwdf_list_insert_tail(&t->sent, &req->target_link);
        if (sc && sc->target == t && !sc->count_lent)
            sc->count_lent = true;
        else
            t->sent_count++;
    }
    target_unlock_hot(t, how);
    /* A received request forwarded to a file target: a cancel of its IRP
     * from above cancels it here. (Below a device target, the lower
     * device's queue takes over the IRP's cancel routine.) */
    bool cancel_now = false;
    if (req->received && !t->lower && !uwdf_irp_set_cancel(req->irp, UWDF_CANCEL_SENT, req)) {
        cancel_now = true;
        uwdf_object_reference(&req->obj);
    }
    if (!pend) {
        /* A synchronous sender waits right here, so the engine may run the
         * op on this thread (engine.c); not a stream, whose read may wait
         * for ever and must stay cancellable. Pended ones go later, from
         * WdfIoTargetStart's caller: never there. */
        req->io.core_may_run_here = (f & UWDF_REQ_SYNC) && !t->is_stream;
        target_dispatch(t, req);
    }
    if (cancel_now) {
        uwdf_iotarget_cancel_request(req);
        uwdf_object_release(&req->obj);
    }
    return STATUS_SUCCESS;
}

NTSTATUS uwdf_iotarget_submit(struct uwdf_iotarget *t, struct uwdf_request *req,
                              PWDF_REQUEST_SEND_OPTIONS options)
{
    return target_submit(t, req, options);
}

bool uwdf_iotarget_cancel_request(struct uwdf_request *req)
{
    struct uwdf_iotarget *t = __atomic_load_n(&req->target, __ATOMIC_ACQUIRE);
    atomic_fetch_or(&req->flags, UWDF_REQ_CANCELED);
    if (!t)
        return false;
    uwdf_biased_lock_acquire(&t->lock);
    /* send_over and flags first: a resubmission stores target, then
     * comp_refs, then send_over, then flags, so a cleared send_over or new
     * flags mean a new target here (checked before comp_refs is read);
     * send_over set under this lock, or COMPLETED, means this send is over. */
    bool over = atomic_load_explicit(&req->send_over, memory_order_acquire);
    unsigned flags = atomic_load(&req->flags);
    if (over || !(flags & REQ_INFLIGHT) || (flags & UWDF_REQ_COMPLETED) ||
        __atomic_load_n(&req->target, __ATOMIC_ACQUIRE) != t || req->comp_refs == 0) {
        uwdf_biased_lock_release(&t->lock);
        return false;
    }
    if (flags & UWDF_REQ_PENDED) {
        target_fail_pended(t, req, STATUS_CANCELLED);
        uwdf_biased_lock_release(&t->lock);
        uwdf_engine_post_completion(t->engine, &req->io);
        return true;
    }
    if (__atomic_load_n(&req->fw_done, __ATOMIC_ACQUIRE)) {
        uwdf_biased_lock_release(&t->lock);
        return false;
    }
    req->comp_refs++; /* held until the engine has tried */
    uwdf_biased_lock_release(&t->lock);
    target_cancel_io(t, req);
    return true;
}

/* Try to cancel a sent request; the caller holds a completion reference
 * for the attempt, dropped when it has been made. A device target's packet
 * is cancelled the WDM way: through the IRP's current cancel routine. */
static void target_cancel_io(struct uwdf_iotarget *t, struct uwdf_request *req)
{
    if (t->lower) {
        uwdf_irp_cancel(req->irp);
        target_drop_refs(t, req, 1);
    } else {
        uwdf_engine_cancel(t->engine, &req->io);
    }
}

void uwdf_iotarget_device_done(struct uwdf_request *req, NTSTATUS status, ULONG_PTR information)
{
    static __thread int depth;
    req->fw_status = status;
    req->fw_info = information;
    __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE); /* a cancel reads it */
    /* Completion runs in the completer's thread, as IoCompleteRequest
     * does; a chain of completions that resend inline is cut by handing
     * the deeper ones to the target's engine thread. */
    if (depth >= 8) {
        uwdf_engine_post_completion(req->target->engine, &req->io);
        return;
    }
    depth++;
    uwdf_request_io_done(&req->io);
    depth--;
}

/* ---- state machine ---- */

static void target_wait_idle_locked(struct uwdf_iotarget *t)
{
    t->waiters++;
    while (t->sent_count > 0)
        pthread_cond_wait(&t->idle_cond, &t->lock.mutex);
    t->waiters--;
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
            target_cancel_io(t, batch[i]);
        uwdf_biased_lock_acquire(&t->lock);
    } while (n == (int)RTL_NUMBER_OF(batch));
}

/* Caller holds the lock: fail every pended request (never sent). */
static void target_fail_all_pended_locked(struct uwdf_iotarget *t, NTSTATUS status)
{
    while (!uwdf_list_empty(&t->pended)) {
        struct uwdf_request *req = CONTAINING_RECORD(t->pended.Flink, struct uwdf_request, target_link);
        target_fail_pended(t, req, status);
        uwdf_engine_post_completion(t->engine, &req->io);
    }
}

NTSTATUS WdfIoTargetStart(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetStart");
    struct uwdf_request *resubmit = NULL, **tail = &resubmit;
    if (!t)
        return STATUS_INVALID_HANDLE;
    uwdf_biased_lock_acquire(&t->lock);
    if (!t->opened || t->closing || t->state == WdfIoTargetDeleted) {
        uwdf_biased_lock_release(&t->lock);
        return STATUS_INVALID_DEVICE_STATE;
    }
    t->state = WdfIoTargetStarted;
    /* Resubmit what was pended while stopped, in arrival order. */
    while (!uwdf_list_empty(&t->pended)) {
        LIST_ENTRY *e = uwdf_list_pop_head(&t->pended);
        struct uwdf_request *req = CONTAINING_RECORD(e, struct uwdf_request, target_link);
        atomic_fetch_and(&req->flags, ~UWDF_REQ_PENDED);
        atomic_fetch_or(&req->flags, UWDF_REQ_SENT);
        uwdf_list_insert_tail(&t->sent, e);
        t->sent_count++;
        req->resubmit_next = NULL;
        *tail = req;
        tail = &req->resubmit_next;
    }
    uwdf_biased_lock_release(&t->lock);
    while (resubmit) {
        struct uwdf_request *next = resubmit->resubmit_next;
        target_dispatch(t, resubmit);
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
    if (t->opened && !t->closing &&
        (t->state == WdfIoTargetStarted || t->state == WdfIoTargetPurged ||
         t->state == WdfIoTargetStopped)) {
        t->state = WdfIoTargetStopped;
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
    if (t->opened && !t->closing &&
        (t->state == WdfIoTargetStarted || t->state == WdfIoTargetStopped ||
         t->state == WdfIoTargetPurged)) {
        t->state = WdfIoTargetPurged;
        target_fail_all_pended_locked(t, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
        target_cancel_sent_locked(t, false);
        if (Action == WdfIoTargetPurgeIoAndWait)
            target_wait_idle_locked(t);
    }
    uwdf_biased_lock_release(&t->lock);
}

/* Close, CloseForQueryRemove and delete: fail the pended, cancel and wait
 * for everything sent (IGNORE_TARGET_STATE included), then release the
 * engine and the file. */
static void target_close(struct uwdf_iotarget *t, WDF_IO_TARGET_STATE new_state)
{
    uwdf_biased_lock_acquire(&t->lock);
    if (!t->opened || t->closing) {
        if (new_state == WdfIoTargetDeleted)
            t->state = WdfIoTargetDeleted;
        uwdf_biased_lock_release(&t->lock);
        return;
    }
    t->closing = true;
    atomic_store_explicit(&t->formattable, false, memory_order_release);
    t->state = new_state;
    target_fail_all_pended_locked(t, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
    target_cancel_sent_locked(t, true);
    target_wait_idle_locked(t);
    uwdf_biased_lock_release(&t->lock);

    /* Completion routines may still be running on the engine thread; the
     * engine drains before it goes. */
    uwdf_engine_destroy(t->engine);
    if (t->fd >= 0)
        close(t->fd);
    if (t->lower)
        uwdf_object_release(&t->lower->obj);

    uwdf_biased_lock_acquire(&t->lock);
    __atomic_store_n(&t->engine, NULL, __ATOMIC_RELAXED);
    t->lower = NULL;
    t->fd = -1;
    t->opened = false;
    t->closing = false;
    uwdf_biased_lock_release(&t->lock);
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
    uwdf_biased_lock_acquire(&t->lock);
    WDF_IO_TARGET_STATE s = t->state;
    uwdf_biased_lock_release(&t->lock);
    return s;
}

WDFDEVICE WdfIoTargetGetDevice(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetGetDevice");
    return t ? (WDFDEVICE)t->device->obj.handle : NULL;
}

HANDLE WdfIoTargetWdmGetTargetFileHandle(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetWdmGetTargetFileHandle");
    return t && t->opened && t->fd >= 0 ? (HANDLE)(intptr_t)t->fd : NULL; /* none for a device */
}

PDEVICE_OBJECT WdfIoTargetWdmGetTargetDeviceObject(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetWdmGetTargetDeviceObject");
    return t ? &t->device->wdm : NULL;
}

PFILE_OBJECT WdfIoTargetWdmGetTargetFileObject(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfIoTargetWdmGetTargetFileObject");
    return t && t->opened ? &t->file_object : NULL;
}

PCSTR UwdfIoTargetGetBackendName(WDFIOTARGET IoTarget)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "UwdfIoTargetGetBackendName");
    return t && t->engine ? uwdf_engine_name(t->engine) : NULL;
}

/* ---- formatting ---- */

struct format_buffer {
    struct uwdf_memory *mem; /* referenced by the format, or NULL */
    void *buffer;            /* raw buffer (synchronous sends), or NULL */
    PMDL mdl;
    size_t offset, length;
};

/* The checks every format (and WdfRequestChangeTarget) makes: the request
 * is not sent, the target is open, and the IRP has a stack location for
 * every driver below (one, the kernel, for a file or block device). A
 * framework IRP grows; the driver's own cannot (STATUS_REQUEST_NOT_ACCEPTED). */
NTSTATUS uwdf_iotarget_prepare_request(struct uwdf_iotarget *t, struct uwdf_request *req,
                                       const char *ddi)
{
    if (!request_in_flight_check(req, ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!atomic_load_explicit(&t->formattable, memory_order_acquire))
        return STATUS_INVALID_DEVICE_STATE;
    CCHAR need = uwdf_iotarget_stack_need(t);
    NTSTATUS status = uwdf_request_ensure_irp(req, need);
    if (!NT_SUCCESS(status))
        return status;
    if (req->irp->CurrentLocation < 1 + need)
        return STATUS_REQUEST_NOT_ACCEPTED;
    return STATUS_SUCCESS;
}

static NTSTATUS format_memory(WDFMEMORY handle, PWDFMEMORY_OFFSET offsets, struct format_buffer *fb,
                              const char *ddi)
{
    memset(fb, 0, sizeof(*fb));
    if (!handle)
        return STATUS_SUCCESS;
    fb->mem = uwdf_memory_lookup(handle, ddi);
    if (!fb->mem)
        return STATUS_INVALID_HANDLE;
    return uwdf_memory_resolve_offsets(fb->mem, offsets, &fb->offset, &fb->length);
}

/* Install a validated format: release the old one, reference the memory,
 * fill the next stack location. Inlined, so that each format DDI gets a
 * copy folded for its own major function and buffers. */
static inline __attribute__((always_inline)) void
format_commit(struct uwdf_iotarget *t, struct uwdf_request *req, UCHAR major, struct format_buffer *in,
              struct format_buffer *out, LONGLONG *offset, ULONG ioctl)
{
    uwdf_request_drop_format(req, true);
    struct format_buffer *fb[2] = { in, out };
    for (int i = 0; i < 2; i++) {
        if (!fb[i])
            continue;
        req->fmt_mem[i] = fb[i]->mem;
        req->fmt_buffer[i] = fb[i]->buffer;
        req->fmt_offset[i] = fb[i]->offset;
        req->fmt_length[i] = fb[i]->length;
        if (fb[i]->mem && !uwdf_completion_unpark(req, fb[i]->mem))
            uwdf_object_reference(&fb[i]->mem->obj);
    }
    PIRP irp = req->irp;
    PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(irp);
    memset(s, 0, sizeof(*s));
    s->MajorFunction = major;
    s->FileObject = &t->file_object;
    s->DeviceObject = t->file_object.DeviceObject;
    irp->MdlAddress = NULL;
    irp->UserBuffer = NULL;
    irp->AssociatedIrp.SystemBuffer = NULL;
    switch (major) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE: {
        struct format_buffer *b = major == IRP_MJ_READ ? out : in;
        s->Parameters.Read.Length = (ULONG)b->length;
        /* A NULL DeviceOffset: 0 for a driver below, as KMDF formats it;
         * for a file, the port's documented meaning, the file position. */
        if (offset) {
            s->Parameters.Read.ByteOffset.QuadPart = *offset;
        } else if (t->lower) {
            s->Parameters.Read.ByteOffset.QuadPart = 0;
        } else {
            s->Parameters.Read.ByteOffset.HighPart = -1;
            s->Parameters.Read.ByteOffset.LowPart = FILE_USE_FILE_POINTER_POSITION;
        }
        if (b->mdl)
            irp->MdlAddress = b->mdl;
        else
            irp->UserBuffer = b->mem ? (char *)b->mem->buffer + b->offset : b->buffer;
        if (t->write_through && major == IRP_MJ_WRITE)
            s->Flags |= SL_WRITE_THROUGH;
        req->fmt_type = major == IRP_MJ_READ ? WdfRequestTypeRead : WdfRequestTypeWrite;
        break;
    }
    default:
        s->Parameters.DeviceIoControl.IoControlCode = ioctl;
        s->Parameters.DeviceIoControl.InputBufferLength = in ? (ULONG)in->length : 0;
        s->Parameters.DeviceIoControl.OutputBufferLength = out ? (ULONG)out->length : 0;
        req->fmt_type = major == IRP_MJ_DEVICE_CONTROL ? WdfRequestTypeDeviceControl
                                                       : WdfRequestTypeDeviceControlInternal;
        break;
    }
    req->fmt_target = (WDFIOTARGET)t->obj.handle;
    req->formatted = true;
}

/* Inlined into the read and write DDIs, like format_commit. */
static inline __attribute__((always_inline)) NTSTATUS
format_rw(WDFIOTARGET IoTarget, WDFREQUEST Request, WDFMEMORY Memory, PWDFMEMORY_OFFSET Offsets,
          PLONGLONG DeviceOffset, UCHAR major, const char *ddi)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    struct uwdf_request *req = uwdf_request_lookup(Request, ddi);
    struct format_buffer fb;
    if (!t || !req)
        return STATUS_INVALID_HANDLE;
    NTSTATUS status = uwdf_iotarget_prepare_request(t, req, ddi);
    if (!NT_SUCCESS(status))
        return status;
    status = format_memory(Memory, Offsets, &fb, ddi);
    if (!NT_SUCCESS(status))
        return status;
    if (fb.length > UINT32_MAX)
        return STATUS_INVALID_PARAMETER; /* IO_STACK_LOCATION lengths are ULONG */
    /* A negative DeviceOffset is the target's to judge (target_build_io). */
    format_commit(t, req, major, major == IRP_MJ_WRITE ? &fb : NULL, major == IRP_MJ_READ ? &fb : NULL,
                  DeviceOffset, 0);
    return STATUS_SUCCESS;
}

NTSTATUS WdfIoTargetFormatRequestForRead(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                         WDFMEMORY OutputBuffer, PWDFMEMORY_OFFSET OutputBufferOffset,
                                         PLONGLONG DeviceOffset)
{
    return format_rw(IoTarget, Request, OutputBuffer, OutputBufferOffset, DeviceOffset, IRP_MJ_READ,
                     "WdfIoTargetFormatRequestForRead");
}

NTSTATUS WdfIoTargetFormatRequestForWrite(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                          WDFMEMORY InputBuffer, PWDFMEMORY_OFFSET InputBufferOffset,
                                          PLONGLONG DeviceOffset)
{
    return format_rw(IoTarget, Request, InputBuffer, InputBufferOffset, DeviceOffset, IRP_MJ_WRITE,
                     "WdfIoTargetFormatRequestForWrite");
}

static NTSTATUS format_ioctl(WDFIOTARGET IoTarget, WDFREQUEST Request, ULONG IoctlCode,
                             WDFMEMORY InputBuffer, PWDFMEMORY_OFFSET InputBufferOffset,
                             WDFMEMORY OutputBuffer, PWDFMEMORY_OFFSET OutputBufferOffset, UCHAR major,
                             const char *ddi)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    struct uwdf_request *req = uwdf_request_lookup(Request, ddi);
    struct format_buffer in, out;
    if (!t || !req)
        return STATUS_INVALID_HANDLE;
    NTSTATUS status = uwdf_iotarget_prepare_request(t, req, ddi);
    if (!NT_SUCCESS(status))
        return status;
    status = format_memory(InputBuffer, InputBufferOffset, &in, ddi);
    if (NT_SUCCESS(status))
        status = format_memory(OutputBuffer, OutputBufferOffset, &out, ddi);
    if (!NT_SUCCESS(status))
        return status;
    if (in.length > UINT32_MAX || out.length > UINT32_MAX)
        return STATUS_INVALID_PARAMETER;
    format_commit(t, req, major, &in, &out, NULL, IoctlCode);
    return STATUS_SUCCESS;
}

NTSTATUS WdfIoTargetFormatRequestForIoctl(WDFIOTARGET IoTarget, WDFREQUEST Request, ULONG IoctlCode,
                                          WDFMEMORY InputBuffer, PWDFMEMORY_OFFSET InputBufferOffset,
                                          WDFMEMORY OutputBuffer, PWDFMEMORY_OFFSET OutputBufferOffset)
{
    return format_ioctl(IoTarget, Request, IoctlCode, InputBuffer, InputBufferOffset, OutputBuffer,
                        OutputBufferOffset, IRP_MJ_DEVICE_CONTROL, "WdfIoTargetFormatRequestForIoctl");
}

NTSTATUS WdfIoTargetFormatRequestForInternalIoctl(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                                  ULONG IoctlCode, WDFMEMORY InputBuffer,
                                                  PWDFMEMORY_OFFSET InputBufferOffset,
                                                  WDFMEMORY OutputBuffer,
                                                  PWDFMEMORY_OFFSET OutputBufferOffset)
{
    return format_ioctl(IoTarget, Request, IoctlCode, InputBuffer, InputBufferOffset, OutputBuffer,
                        OutputBufferOffset, IRP_MJ_INTERNAL_DEVICE_CONTROL,
                        "WdfIoTargetFormatRequestForInternalIoctl");
}

/* ---- sending ---- */

/* Send and wait (PASSIVE). The timeout is enforced like an asynchronous
 * one (linked timeout or framework timer) and the wait itself is unbounded,
 * which is what WDF's SubmitSync amounts to: the result is STATUS_IO_TIMEOUT
 * if the timeout cancelled the request, the real status otherwise. */
static bool target_send_sync(struct uwdf_iotarget *t, struct uwdf_request *req,
                             PWDF_REQUEST_SEND_OPTIONS options, bool call_routine, NTSTATUS *status)
{
    struct uwdf_sync_wait wait;
    uwdf_sync_wait_init(&wait);
    req->waiter = &wait;
    atomic_fetch_or(&req->flags, UWDF_REQ_SYNC | (call_routine ? UWDF_REQ_CALL_ROUTINE : 0));
    *status = uwdf_iotarget_submit(t, req, options);
    if (!NT_SUCCESS(*status)) {
        req->waiter = NULL;
        atomic_fetch_and(&req->flags, ~(UWDF_REQ_SYNC | UWDF_REQ_CALL_ROUTINE));
        return false;
    }
    uwdf_sync_wait_block(&wait);
    *status = req->irp->IoStatus.Status;
    return true;
}

BOOLEAN WdfRequestSend(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_SEND_OPTIONS Options)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestSend");
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(Target, "WdfRequestSend");
    NTSTATUS status;
    if (!req)
        return FALSE;
    uwdf_verifier_check_send_failed(req, "WdfRequestSend");
    if (!t) {
        status = STATUS_INVALID_HANDLE;
        goto fail;
    }
    /* WdfRequestSend reports a bad options block as STATUS_INVALID_PARAMETER,
     * whatever is wrong with it (unlike the synchronous DDIs). */
    if (!NT_SUCCESS(send_options_validate(Options))) {
        status = STATUS_INVALID_PARAMETER;
        goto fail;
    }
    if (Options && (Options->Flags & WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET)) {
        /* Only for requests received from a queue, sent on unformatted
         * (rules RequestSendAndForgetNoFormatting and ...2). */
        if (!req->received)
            status = STATUS_INVALID_DEVICE_STATE;
        else if (req->formatted)
            status = STATUS_INVALID_DEVICE_REQUEST;
        else
            status = uwdf_queue_send_and_forget(req, t);
        if (NT_SUCCESS(status))
            return TRUE;
        goto fail;
    }
    if (Options && (Options->Flags & WDF_REQUEST_SEND_OPTION_SYNCHRONOUS)) {
        if (!uwdf_irql_check_passive("WdfRequestSend(SYNCHRONOUS)")) {
            status = STATUS_INVALID_DEVICE_REQUEST;
            goto fail;
        }
        uwdf_verifier_sync_timeout(Options, "WdfRequestSend(SYNCHRONOUS)");
        /* TRUE when it was sent; the outcome is WdfRequestGetStatus's. */
        if (target_send_sync(t, req, Options, true, &status))
            return TRUE;
        goto fail;
    }
    status = target_submit(t, req, Options);
    if (NT_SUCCESS(status))
        return TRUE;
fail:
    if (req->irp) {
        req->irp->IoStatus.Status = status;
        req->irp->IoStatus.Information = 0;
    }
    uwdf_verifier_send_failed(req);
    return FALSE;
}

/* Validates a WDF_MEMORY_DESCRIPTOR of a synchronous send. */
static NTSTATUS sync_descriptor(PWDF_MEMORY_DESCRIPTOR d, struct format_buffer *fb, const char *ddi)
{
    memset(fb, 0, sizeof(*fb));
    if (!d)
        return STATUS_SUCCESS;
    switch (d->Type) {
    case WdfMemoryDescriptorTypeBuffer:
        if (!d->u.BufferType.Buffer && d->u.BufferType.Length)
            return STATUS_INVALID_PARAMETER;
        fb->buffer = d->u.BufferType.Buffer;
        fb->length = d->u.BufferType.Length;
        return STATUS_SUCCESS;
    case WdfMemoryDescriptorTypeMdl:
        if (!d->u.MdlType.Mdl)
            return d->u.MdlType.BufferLength ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS;
        fb->mdl = d->u.MdlType.Mdl;
        fb->length = d->u.MdlType.BufferLength;
        return STATUS_SUCCESS;
    case WdfMemoryDescriptorTypeHandle:
        if (!d->u.HandleType.Memory)
            return STATUS_INVALID_PARAMETER;
        return format_memory(d->u.HandleType.Memory, d->u.HandleType.Offsets, fb, ddi);
    default:
        return STATUS_INVALID_PARAMETER;
    }
}

static NTSTATUS send_sync_common(WDFIOTARGET IoTarget, WDFREQUEST Request, UCHAR major, ULONG ioctl,
                                 PWDF_MEMORY_DESCRIPTOR in_desc, PWDF_MEMORY_DESCRIPTOR out_desc,
                                 PLONGLONG DeviceOffset, PWDF_REQUEST_SEND_OPTIONS options,
                                 PULONG_PTR bytes, const char *ddi)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    struct uwdf_request *req = NULL;
    struct format_buffer in, out;
    NTSTATUS status;
    if (bytes)
        *bytes = 0;
    if (!t)
        return STATUS_INVALID_HANDLE;
    if (Request && !(req = uwdf_request_lookup(Request, ddi)))
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive(ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    status = send_options_validate(options);
    if (!NT_SUCCESS(status))
        return status;
    if (options && (options->Flags & (WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET)))
        return STATUS_INVALID_PARAMETER;
    if (req && !request_in_flight_check(req, ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    status = sync_descriptor(in_desc, &in, ddi);
    if (NT_SUCCESS(status))
        status = sync_descriptor(out_desc, &out, ddi);
    if (!NT_SUCCESS(status))
        return status;
    if (in.length > UINT32_MAX || out.length > UINT32_MAX)
        return STATUS_INVALID_PARAMETER;
    if (!req) {
        status = uwdf_request_create_internal(t, &req);
        if (!NT_SUCCESS(status))
            return status;
    } else {
        uwdf_request_release_format(req);
    }
    status = uwdf_iotarget_prepare_request(t, req, ddi);
    if (NT_SUCCESS(status)) {
        format_commit(t, req, major, major == IRP_MJ_READ ? NULL : &in,
                      major == IRP_MJ_WRITE ? NULL : &out, DeviceOffset, ioctl);
        uwdf_verifier_sync_timeout(options, ddi);
        target_send_sync(t, req, options, false, &status);
        if (bytes)
            *bytes = req->irp->IoStatus.Information;
    }
    if (req->internal)
        uwdf_object_delete(&req->obj);
    return status;
}

NTSTATUS WdfIoTargetSendReadSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                          PWDF_MEMORY_DESCRIPTOR OutputBuffer, PLONGLONG DeviceOffset,
                                          PWDF_REQUEST_SEND_OPTIONS RequestOptions, PULONG_PTR BytesRead)
{
    return send_sync_common(IoTarget, Request, IRP_MJ_READ, 0, NULL, OutputBuffer, DeviceOffset,
                            RequestOptions, BytesRead, "WdfIoTargetSendReadSynchronously");
}

NTSTATUS WdfIoTargetSendWriteSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                           PWDF_MEMORY_DESCRIPTOR InputBuffer, PLONGLONG DeviceOffset,
                                           PWDF_REQUEST_SEND_OPTIONS RequestOptions,
                                           PULONG_PTR BytesWritten)
{
    return send_sync_common(IoTarget, Request, IRP_MJ_WRITE, 0, InputBuffer, NULL, DeviceOffset,
                            RequestOptions, BytesWritten, "WdfIoTargetSendWriteSynchronously");
}

NTSTATUS WdfIoTargetSendIoctlSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request, ULONG IoctlCode,
                                           PWDF_MEMORY_DESCRIPTOR InputBuffer,
                                           PWDF_MEMORY_DESCRIPTOR OutputBuffer,
                                           PWDF_REQUEST_SEND_OPTIONS RequestOptions,
                                           PULONG_PTR BytesReturned)
{
    return send_sync_common(IoTarget, Request, IRP_MJ_DEVICE_CONTROL, IoctlCode, InputBuffer,
                            OutputBuffer, NULL, RequestOptions, BytesReturned,
                            "WdfIoTargetSendIoctlSynchronously");
}

NTSTATUS WdfIoTargetSendInternalIoctlSynchronously(WDFIOTARGET IoTarget, WDFREQUEST Request,
                                                   ULONG IoctlCode, PWDF_MEMORY_DESCRIPTOR InputBuffer,
                                                   PWDF_MEMORY_DESCRIPTOR OutputBuffer,
                                                   PWDF_REQUEST_SEND_OPTIONS RequestOptions,
                                                   PULONG_PTR BytesReturned)
{
    return send_sync_common(IoTarget, Request, IRP_MJ_INTERNAL_DEVICE_CONTROL, IoctlCode, InputBuffer,
                            OutputBuffer, NULL, RequestOptions, BytesReturned,
                            "WdfIoTargetSendInternalIoctlSynchronously");
}
