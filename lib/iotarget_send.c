/* The send path of an I/O target: WdfRequestSend and its synchronous
 * form, a request handed to the engine (or to an in-process device's
 * queues, or answered by the framework), its completion, cancellation and
 * timeout.
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

#include <errno.h>

#define MISALIGN_LOG_LIMIT 8

static void target_timer_fired(struct uwdf_timer *timer);

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
    if (e && e == __atomic_load_n(&t->lock_engine, __ATOMIC_RELAXED))
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

/* The target's pool of send states (struct uwdf_request_send), under its
 * lock: a request takes the top block when it is sent (NULL: empty). */
static inline struct uwdf_request_send *target_pool_take_locked(struct uwdf_iotarget *t)
{
    struct uwdf_request_send *snd = t->snd_pool;
    if (UWDF_LIKELY(snd != NULL))
        t->snd_pool = snd->pool_next;
    return snd;
}

/* A sender found the pool empty: one block more, allocated outside the
 * lock (false: no memory). Out of line: the pool grows only up to the
 * most sends the target ever had in flight at once. */
static __attribute__((noinline)) bool target_pool_grow(struct uwdf_iotarget *t)
{
    struct uwdf_request_send *snd = uwdf_request_send_new();
    if (!snd)
        return false;
    enum target_lock_how how = target_lock_hot(t);
    snd->pool_next = t->snd_pool;
    t->snd_pool = snd;
    target_unlock_hot(t, how);
    return true;
}

/* A send is over (or never started): its send state goes back to the pool
 * unless it is the request's own. */
static inline void target_pool_give_locked(struct uwdf_iotarget *t, struct uwdf_request *req)
{
    if (req->snd_own)
        return;
    struct uwdf_request_send *snd = req->snd;
    snd->pool_next = t->snd_pool;
    t->snd_pool = snd;
    req->snd = NULL;
}

/* The outcome of a send whose completion count reached zero, under the
 * lock that just unlinked it, and its send state back to the target's pool
 * unless it is the request's own: nothing reads it now (a cancel holds a
 * completion reference, the engine is done with the op). Inlined into the
 * engine's completion path. */
static inline __attribute__((always_inline)) NTSTATUS target_settle_locked(struct uwdf_iotarget *t,
                                                                           struct uwdf_request *req,
                                                                           ULONG_PTR *infop)
{
    NTSTATUS status;
    ULONG_PTR info = 0;
    struct uwdf_request_send *snd = req->snd;
    const struct uwdf_io *io = &snd->io;

    req->handover_ns = io->core_release_ns;
    if (req->fw_done) {
        status = req->fw_status;
        info = req->fw_info;
    } else if (io->res >= 0) {
        status = STATUS_SUCCESS;
        info = (ULONG_PTR)io->res;
        /* The NT convention: a read that starts at or past the end of the
         * file fails with STATUS_END_OF_FILE; a short read succeeds. */
        if (io->op == UWDF_OP_READ && io->res == 0 && snd->io_length > 0)
            status = STATUS_END_OF_FILE;
    } else {
        status = uwdf_status_from_errno((int)-io->res);
        /* What a request run as pieces moved before the one that failed
         * (lib/engine_pieces.c). */
        if (io->pieces)
            info = (ULONG_PTR)io->res_done;
    }
    if (UWDF_UNLIKELY(atomic_load_explicit(&req->flags, memory_order_relaxed) & UWDF_REQ_USE_FILE_POS) &&
        !t->is_stream && snd->io_length) {
        /* Give back the unused part of the reserved range if nobody moved
         * the position since. */
        unsigned long long end = snd->pos_offset + snd->io_length;
        unsigned long long real = snd->pos_offset + (NT_SUCCESS(status) ? info : 0);
        if (real != end)
            atomic_compare_exchange_strong(&t->file_pos, &end, real);
    }
    target_pool_give_locked(t, req);
    *infop = info;
    return status;
}

/* Complete a request whose send is settled, outside the lock. Inlined into
 * its two callers (the engine's completion path). */
static inline __attribute__((always_inline)) void target_complete(struct uwdf_iotarget *t, struct uwdf_request *req,
                                                                  NTSTATUS status, ULONG_PTR info)
{
    unsigned flags = atomic_load(&req->flags);

    if (status == STATUS_CANCELLED && (flags & UWDF_REQ_TIMER_CANCELLED))
        status = STATUS_IO_TIMEOUT;
    if (req->received && !t->lower)
        uwdf_irp_clear_cancel(req->irp);
    if (uwdf_request_finish(req, status, info))
        return; /* a send to t from the routine counts in req's place */

    /* Only now is the request no longer sent I/O: a Stop, Purge or Close
     * waiting for sent I/O returns after the completion routines ran, as
     * WDF signals its sent-I/O event after CompleteRequest. req may be gone;
     * t is not, since deleting it waits for sent_count to reach zero
     * under the lock, which this holds until it is done with t. On the
     * target's engine thread the lock's fast path makes the decrement a
     * plain one; a waiter (which revokes the bias) makes it the mutex. */
    enum target_lock_how how = target_lock_hot(t);
    uwdf_iotarget_sent_put_locked(t);
    target_unlock_hot(t, how);
}

static void target_drop_refs(struct uwdf_iotarget *t, struct uwdf_request *req, long n)
{
    bool final;
    NTSTATUS status = STATUS_SUCCESS;
    ULONG_PTR info = 0;
    enum target_lock_how how = target_lock_hot(t);
    req->comp_refs -= n;
    final = req->comp_refs == 0;
    if (final) {
        target_unlink_locked(req);
        status = target_settle_locked(t, req, &info);
    }
    target_unlock_hot(t, how);
    if (final)
        target_complete(t, req, status, info);
}

void uwdf_request_io_done(struct uwdf_io *io)
{
    struct uwdf_request *req = uwdf_request_of_io(io);
    struct uwdf_iotarget *t = req->target;
    long drop = 1;
    enum target_lock_how how = target_lock_hot(t);
    /* Bits change only when there is something to record: a cancel may
     * set CANCELED concurrently without the lock, so no plain store. */
    if (io->timed_out)
        atomic_fetch_or(&req->flags, UWDF_REQ_TIMER_CANCELLED);
    if ((atomic_load_explicit(&req->flags, memory_order_relaxed) & UWDF_REQ_TIMER_ARMED) &&
        uwdf_timer_cancel(&req->ext->timer)) {
        atomic_fetch_and(&req->flags, ~UWDF_REQ_TIMER_ARMED);
        drop++;
    }
    req->comp_refs -= drop;
    bool final = req->comp_refs == 0;
    NTSTATUS status = STATUS_SUCCESS;
    ULONG_PTR info = 0;
    if (final) {
        target_unlink_locked(req);
        status = target_settle_locked(t, req, &info);
    }
    target_unlock_hot(t, how);
    if (final)
        target_complete(t, req, status, info);
}

void uwdf_request_cancel_done(struct uwdf_io *io, int cancel_result)
{
    struct uwdf_request *req = uwdf_request_of_io(io);
    (void)cancel_result;
    target_drop_refs(req->target, req, 1);
}

void uwdf_iotarget_fail_pended_locked(struct uwdf_iotarget *t, struct uwdf_request *req, NTSTATUS status)
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
    struct uwdf_request *req = uwdf_container_of(timer, struct uwdf_request_send_ext, timer)->req;
    struct uwdf_iotarget *t = req->target;
    bool cancel_io = false, post = false;
    uwdf_biased_lock_acquire(&t->lock);
    unsigned flags = atomic_fetch_and(&req->flags, ~UWDF_REQ_TIMER_ARMED);
    atomic_fetch_or(&req->flags, UWDF_REQ_TIMER_CANCELLED);
    if (flags & UWDF_REQ_PENDED) {
        /* Timed out while the target was stopped: never reached the kernel. */
        uwdf_iotarget_fail_pended_locked(t, req, STATUS_CANCELLED);
        req->comp_refs--; /* the timer's; the pended I/O's goes with the post */
        post = true;
    } else if (flags & UWDF_REQ_SENT) {
        cancel_io = true; /* the timer's reference passes to the cancel */
    }
    uwdf_biased_lock_release(&t->lock);
    if (post)
        uwdf_engine_post_completion(t->engine, &req->snd->io);
    else if (cancel_io)
        uwdf_iotarget_cancel_io(t, req);
    else
        target_drop_refs(t, req, 1);
}

static int target_build_iov(struct uwdf_request *req, void *buf, size_t len)
{
    req->snd->iov1.iov_base = buf;
    req->snd->iov1.iov_len = len;
    req->snd->io.iov = &req->snd->iov1;
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

/* More than one kernel op takes (lib/engine_pieces.c): the pieces run one
 * after another on the engine thread, never on the sender's. */
static void target_run_as_pieces(struct uwdf_io *io)
{
    io->pieces = true;
    io->core_may_run_here = false;
}

/* A request described by MDLs (a driver's scatter list) whose offset and
 * length are on the sector size but whose segments the kernel would refuse
 * (a length or an address off the alignment): Windows takes it (segments
 * are the DMA's business), so it goes through an aligned bounce buffer
 * (true). A buffer or WDFMEMORY keeps the unbuffered rules. */
static bool target_dio_stage(struct uwdf_io *io, size_t len, bool has_offset, uint32_t oa, bool mdl)
{
    if (!mdl || len % oa || (has_offset && io->offset % oa))
        return false;
    io->bounce = true;
    target_run_as_pieces(io);
    return true;
}

/* Describe the next stack location as an engine op; a failure here is the
 * lower "driver" failing the request. The location is the IRP's, or what
 * the format kept in a request without one (uwdf_request_irpless), whose
 * buffer is the format's. */
static NTSTATUS target_build_io(struct uwdf_iotarget *t, struct uwdf_request *req)
{
    PIRP irp = req->irp;
    UCHAR major, minor = 0, sl_flags;
    ULONG rw_length;
    LONGLONG rw_offset;
    PMDL mdl = NULL;
    void *user_buffer = NULL;
    if (irp) {
        PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(irp);
        major = s->MajorFunction;
        minor = s->MinorFunction;
        sl_flags = s->Flags;
        rw_length = s->Parameters.Read.Length;
        rw_offset = s->Parameters.Read.ByteOffset.QuadPart;
        mdl = irp->MdlAddress;
        user_buffer = irp->UserBuffer;
    } else {
        major = req->nx_major;
        sl_flags = req->nx_flags;
        rw_length = req->fmt_length[major == IRP_MJ_READ];
        rw_offset = req->nx_offset;
    }
    struct uwdf_io *io = &req->snd->io;
    size_t len;
    unsigned flags = 0;

    io->fd = t->fd;
    io->file = &t->attach.file;
    io->rw_flags = 0;
    io->timed_out = false;
    io->res = 0;
    io->pieces = io->bounce = false;
    req->snd->io_length = 0;
    switch (major) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE: {
        bool write = major == IRP_MJ_WRITE;
        io->op = write ? UWDF_OP_WRITE : UWDF_OP_READ;
        if (!(t->access & (write ? FILE_WRITE_DATA : FILE_READ_DATA)))
            return STATUS_ACCESS_DENIED;
        len = rw_length;
        int slot = write ? 0 : 1;
        bool from_mdl = false;
        if (req->fmt_mem[slot] || req->fmt_buffer[slot]) {
            char *base = req->fmt_mem[slot] ? (char *)req->fmt_mem[slot]->buffer + req->fmt_offset[slot]
                                            : req->fmt_buffer[slot];
            io->iovcnt = target_build_iov(req, base, len);
        } else if (mdl && len > 0) {
            size_t bytes;
            int n = uwdf_mdl_to_iovec(mdl, len, &req->snd->iov1, 1, &bytes);
            if (n < 0) {
                /* A chain: grow the request's own iovec array once; reuse
                 * keeps it. */
                int need = 0;
                for (PMDL m = mdl; m; m = m->Next)
                    need++;
                if (!NT_SUCCESS(uwdf_request_ensure_send_ext(req)))
                    return STATUS_INSUFFICIENT_RESOURCES;
                struct uwdf_request_send_ext *ext = req->ext;
                if (need > ext->iov_heap_cap) {
                    struct iovec *grown = uwdf_alloc(sizeof(*grown) * (size_t)need);
                    if (!grown)
                        return STATUS_INSUFFICIENT_RESOURCES;
                    uwdf_free(ext->iov_heap);
                    ext->iov_heap = grown;
                    ext->iov_heap_cap = need;
                }
                n = uwdf_mdl_to_iovec(mdl, len, ext->iov_heap, need, &bytes);
                io->iov = ext->iov_heap;
            } else {
                io->iov = &req->snd->iov1;
            }
            if (bytes < len)
                return STATUS_BUFFER_TOO_SMALL;
            io->iovcnt = n;
            from_mdl = true;
            if ((unsigned)n > uwdf_engine_max_segments(t->engine))
                target_run_as_pieces(io);
        } else if (len == 0 || user_buffer) {
            io->iovcnt = target_build_iov(req, user_buffer, len);
            /* the buffer of a presented request's MDL not built yet */
            from_mdl = req->mdl_deferred && user_buffer == req->rx->pres_user;
        } else {
            return STATUS_INVALID_USER_BUFFER;
        }
        req->snd->io_length = len;
        LONGLONG off = rw_offset;
        if (UWDF_UNLIKELY(off < 0)) {
            /* The file system's meanings of a negative offset (wdm.h). */
            LARGE_INTEGER bo = { .QuadPart = off };
            if (bo.HighPart == -1 && bo.LowPart == FILE_USE_FILE_POINTER_POSITION)
                flags |= UWDF_REQ_USE_FILE_POS;
            else if (write && bo.HighPart == -1 && bo.LowPart == FILE_WRITE_TO_END_OF_FILE)
                flags |= UWDF_REQ_APPEND;
            else
                return STATUS_INVALID_PARAMETER;
        } else {
            io->offset = (uint64_t)off;
        }
        if (write && (sl_flags & SL_WRITE_THROUGH))
            io->rw_flags |= RWF_DSYNC;
        /* No local engine takes less than a page in one op: its limit is
         * looked up only past that, or for a remote export, whose server
         * may state less. */
        if (UWDF_UNLIKELY(len > PAGE_SIZE || t->remote) && len > uwdf_engine_max_bytes(t->engine, &t->attach.file))
            target_run_as_pieces(io);
        if (t->direct) {
            uint32_t ma = t->dio_mem_align, oa = t->dio_offset_align;
            bool has_offset = !(flags & (UWDF_REQ_USE_FILE_POS | UWDF_REQ_APPEND));
            if (target_dio_misaligned(io, len, has_offset, ma, oa) &&
                !target_dio_stage(io, len, has_offset, oa, from_mdl)) {
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
        io->op = minor == IRP_MN_FLUSH_DATA_ONLY || minor == IRP_MN_FLUSH_DATA_SYNC_ONLY
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

/* Worker thread: a discard or zeroing that blocks, then its completion
 * goes to the engine thread like any other. */
static void target_blocking_ioctl(struct uwdf_work *w)
{
    struct uwdf_request *req = uwdf_container_of(w, struct uwdf_request_send_ext, work)->req;
    struct uwdf_iotarget *t = req->target;
    void *in = uwdf_request_fmt_data(req, 0), *out;
    size_t in_len = req->fmt_length[0], out_len;
    if (req->fmt_type == WdfRequestTypeNoFormat)
        uwdf_request_irp_ioctl_buffers(req, &in, &in_len, &out, &out_len);
    req->fw_status = uwdf_blockops_ioctl(t, uwdf_request_next_ioctl(req), in, in_len);
    req->fw_info = 0;
    __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE); /* a cancel reads it */
    uwdf_engine_post_completion(t->engine, &req->snd->io);
}

static int target_add_range(void *ctx, uint64_t offset, uint64_t length)
{
    struct uwdf_request_send_ext *ext = ((struct uwdf_request *)ctx)->ext;
    if (ext->nranges == ext->ranges_cap) {
        unsigned cap = ext->ranges_cap ? ext->ranges_cap * 2 : 4;
        struct uwdf_io_range *grown = uwdf_alloc(sizeof(*grown) * cap);
        if (!grown)
            return -ENOMEM;
        if (ext->nranges)
            memcpy(grown, ext->ranges, sizeof(*grown) * ext->nranges);
        uwdf_free(ext->ranges);
        ext->ranges = grown;
        ext->ranges_cap = cap;
    }
    ext->ranges[ext->nranges++] = (struct uwdf_io_range){ .offset = offset, .length = length };
    return 0;
}

/* A remote target's discard or zeroing becomes one engine op over the
 * validated ranges (the request keeps the array for reuse); nothing to do
 * succeeds at once. */
static NTSTATUS target_build_ranges(struct uwdf_iotarget *t, struct uwdf_request *req, ULONG code)
{
    void *in = uwdf_request_fmt_data(req, 0), *out;
    size_t in_len = req->fmt_length[0], out_len;
    if (req->fmt_type == WdfRequestTypeNoFormat)
        uwdf_request_irp_ioctl_buffers(req, &in, &in_len, &out, &out_len);
    NTSTATUS status = uwdf_request_ensure_send_ext(req);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_request_send_ext *ext = req->ext;
    ext->nranges = 0;
    status = uwdf_blockops_for_each_range(t, code, in, in_len, target_add_range, req);
    if (!NT_SUCCESS(status))
        return status;
    if (ext->nranges == 0) {
        req->fw_status = STATUS_SUCCESS;
        req->fw_info = 0;
        __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE);
        return STATUS_SUCCESS;
    }
    req->snd->io.op = code == FSCTL_SET_ZERO_DATA ? UWDF_OP_ZERO : UWDF_OP_TRIM;
    req->snd->io.ranges = ext->ranges;
    req->snd->io.iovcnt = (int)ext->nranges;
    return STATUS_SUCCESS;
}

/* Hand a request that is on the sent list to the engine (outside the lock). */
void uwdf_iotarget_dispatch(struct uwdf_iotarget *t, struct uwdf_request *req)
{
    struct uwdf_io *io = &req->snd->io;
    if (!req->fw_done && !t->lower) {
        NTSTATUS status = target_build_io(t, req);
        ULONG code = NT_SUCCESS(status) && io->op == 0 ? uwdf_request_next_ioctl(req) : 0;
        if (NT_SUCCESS(status) && io->op == 0 && uwdf_blockops_handles(code) &&
            (uwdf_engine_caps(t->engine) & UWDF_BE_CAP_NO_KERNEL)) {
            /* The null engine never touches the device: a discard or
             * zeroing there must not destroy data either. */
            req->fw_status = STATUS_SUCCESS;
            req->fw_info = 0;
            __atomic_store_n(&req->fw_done, true, __ATOMIC_RELEASE);
        } else if (NT_SUCCESS(status) && io->op == 0 && uwdf_blockops_handles(code) && t->remote) {
            status = target_build_ranges(t, req, code);
        } else if (NT_SUCCESS(status) && io->op == 0 && uwdf_blockops_handles(code)) {
            if (NT_SUCCESS(uwdf_request_ensure_send_ext(req))) {
                req->ext->work.fn = target_blocking_ioctl;
                if (uwdf_worker_queue(&req->ext->work) == 0)
                    return;
            }
            status = STATUS_INSUFFICIENT_RESOURCES;
        } else if (NT_SUCCESS(status) && io->op == 0) {
            void *in = uwdf_request_fmt_data(req, 0), *out = uwdf_request_fmt_data(req, 1);
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
            io->offset = req->snd->pos_offset = atomic_fetch_add(&t->file_pos, req->snd->io_length);
        }
    }
    uwdf_engine_submit(t->engine, io);
}

NTSTATUS uwdf_iotarget_send_options_validate(PWDF_REQUEST_SEND_OPTIONS o)
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

/* uwdf_iotarget_submit, inlined into WdfRequestSend (the resend path). */
static inline __attribute__((always_inline)) NTSTATUS
target_submit(struct uwdf_iotarget *t, struct uwdf_request *req, PWDF_REQUEST_SEND_OPTIONS options)
{
    ULONG oflags = options ? options->Flags : 0;
    bool ignore_state = (oflags & WDF_REQUEST_SEND_OPTION_IGNORE_TARGET_STATE) != 0;
    int64_t deadline = 0;
    bool timed = (oflags & WDF_REQUEST_SEND_OPTION_TIMEOUT) &&
                 uwdf_timeout_to_mono_deadline(options->Timeout, &deadline);

    if (!uwdf_request_not_in_flight(req, "WdfRequestSend"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!req->formatted) {
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, 0, (ULONG_PTR)req->obj.handle, 0,
                          "WdfRequestSend: request %p was not formatted (rule RequestFormattedValid)",
                          (void *)req->obj.handle);
        return STATUS_REQUEST_NOT_ACCEPTED;
    }
    if (!req->irp) {
        /* No IRP (uwdf_request_irpless): as many stack locations as its
         * would have; a device target's driver is handed one. */
        if (req->irp_stack < uwdf_iotarget_stack_need(t))
            return STATUS_REQUEST_NOT_ACCEPTED;
        if (t->lower && !uwdf_request_lazy_irp(req))
            return STATUS_INSUFFICIENT_RESOURCES;
    } else if (req->irp->CurrentLocation < 1 + uwdf_iotarget_stack_need(t)) {
        return STATUS_REQUEST_NOT_ACCEPTED;
    }
    /* A timeout may need the framework timer, which is in the rarely used
     * part: allocated here, before the target's lock, on first need. */
    if (timed && !NT_SUCCESS(uwdf_request_ensure_send_ext(req)))
        return STATUS_INSUFFICIENT_RESOURCES;
    /* A presented request's direct-I/O MDL not built yet stays so on a send:
     * the device below lays the IRP's buffer out again and builds its own
     * when its driver can look (lib/request_received.c); a file target
     * takes the buffer as that MDL (target_build_io). */
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

    enum target_lock_how how;
again:
    how = target_lock_hot(t);
    /* Open, and started or stopped unless the send ignores the state. */
    unsigned state = atomic_load_explicit(&t->state, memory_order_relaxed);
    if (!uwdf_state_in(ignore_state ? UWDF_TS_ANY_OPEN : UWDF_TS(STARTED) | UWDF_TS(STOPPED), state)) {
        target_unlock_hot(t, how);
        return STATUS_INVALID_DEVICE_STATE;
    }
    /* Its send state: its own, or one from the target's pool. */
    struct uwdf_request_send *snd = req->snd;
    if (!snd) {
        snd = target_pool_take_locked(t);
        if (UWDF_UNLIKELY(!snd)) {
            target_unlock_hot(t, how);
            if (!target_pool_grow(t))
                return STATUS_INSUFFICIENT_RESOURCES;
            goto again;
        }
        snd->req = req;
        req->snd = snd;
    }
    bool pend = state == UWDF_TS_STOPPED && !ignore_state;
    /* Atomic: WdfRequestCancelSentRequest reads it from any thread. */
    __atomic_store_n(&req->target, t, __ATOMIC_RELEASE);
    req->fw_done = false;
    snd->io.core_where = 0;
    snd->io.core_cancel_early = false;
    snd->io.core_may_run_here = false;
    snd->io.core_untimed = !timed;
    snd->io.has_timeout = false;
    snd->io.core_release_ns = 0; /* no hand-over time yet */
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
            snd->io.has_timeout = true;
            snd->io.timeout_abs = false;
            snd->io.timeout_sec = rel / 1000000000;
            snd->io.timeout_nsec = rel % 1000000000;
        } else {
            uwdf_timer_init(&req->ext->timer, target_timer_fired);
            if (uwdf_timer_arm(&req->ext->timer, deadline) != 0) {
                __atomic_store_n(&req->target, NULL, __ATOMIC_RELEASE);
                atomic_store(&req->flags, f & (UWDF_REQ_SYNC | UWDF_REQ_CALL_ROUTINE));
                req->comp_refs = 0;
                target_pool_give_locked(t, req);
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
     * on any thread, at once.) The place may come from an outer completion
     * too: below a filter, the sender's completion runs inside the
     * filter's completion from this target, whose routine is still
     * running, and a forward sent from there takes that one's place. */
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
        if (sc && sc->target == t && !sc->count_lent) {
            sc->count_lent = true;
        } else {
            struct uwdf_completion_scope *c = sc ? sc->outer : NULL;
            while (c && (c->target != t || c->count_lent))
                c = c->outer;
            if (c)
                c->count_lent = true;
            else
                t->sent_count++;
        }
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
        snd->io.core_may_run_here = (f & UWDF_REQ_SYNC) && !t->is_stream;
        uwdf_iotarget_dispatch(t, req);
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
    if (over || !(flags & UWDF_REQ_IN_FLIGHT) || (flags & UWDF_REQ_COMPLETED) ||
        __atomic_load_n(&req->target, __ATOMIC_ACQUIRE) != t || req->comp_refs == 0) {
        uwdf_biased_lock_release(&t->lock);
        return false;
    }
    if (flags & UWDF_REQ_PENDED) {
        uwdf_iotarget_fail_pended_locked(t, req, STATUS_CANCELLED);
        uwdf_biased_lock_release(&t->lock);
        uwdf_engine_post_completion(t->engine, &req->snd->io);
        return true;
    }
    if (__atomic_load_n(&req->fw_done, __ATOMIC_ACQUIRE)) {
        uwdf_biased_lock_release(&t->lock);
        return false;
    }
    req->comp_refs++; /* held until the engine has tried */
    uwdf_biased_lock_release(&t->lock);
    uwdf_iotarget_cancel_io(t, req);
    return true;
}

/* Try to cancel a sent request; the caller holds a completion reference
 * for the attempt, dropped when it has been made. A device target's packet
 * is cancelled the WDM way: through the IRP's current cancel routine. */
void uwdf_iotarget_cancel_io(struct uwdf_iotarget *t, struct uwdf_request *req)
{
    if (t->lower) {
        uwdf_irp_cancel(req->irp);
        target_drop_refs(t, req, 1);
    } else {
        uwdf_engine_cancel(t->engine, &req->snd->io);
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
        uwdf_engine_post_completion(req->target->engine, &req->snd->io);
        return;
    }
    depth++;
    uwdf_request_io_done(&req->snd->io);
    depth--;
}

/* Send and wait (PASSIVE). The timeout is enforced like an asynchronous
 * one (linked timeout or framework timer) and the wait itself is unbounded,
 * which is what WDF's SubmitSync amounts to: the result is STATUS_IO_TIMEOUT
 * if the timeout cancelled the request, the real status otherwise. */
bool uwdf_iotarget_send_sync(struct uwdf_iotarget *t, struct uwdf_request *req,
                             PWDF_REQUEST_SEND_OPTIONS options, bool call_routine, NTSTATUS *status)
{
    if (uwdf_engine_thread()) {
        /* PASSIVE_LEVEL on an engine thread: a Filter Manager callback.
         * Waiting there would wait for the engine itself (the target may
         * share it) or stall every target it serves. */
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, KeGetCurrentIrql(), PASSIVE_LEVEL, 0,
                          "a synchronous send on an engine (completion) thread would deadlock or stall "
                          "its targets (rule KmdfIrql)");
        *status = STATUS_INVALID_DEVICE_REQUEST;
        return false;
    }
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
    *status = uwdf_request_status(req);
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
    if (!NT_SUCCESS(uwdf_iotarget_send_options_validate(Options))) {
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
        if (uwdf_iotarget_send_sync(t, req, Options, true, &status))
            return TRUE;
        goto fail;
    }
    status = target_submit(t, req, Options);
    if (NT_SUCCESS(status))
        return TRUE;
fail:
    uwdf_request_set_iostatus(req, status, 0);
    uwdf_verifier_send_failed(req);
    return FALSE;
}
