/* WDFREQUEST (lib/request.c): the request object, its format, its send
 * state and its completion to the owner. Not installed. */
#ifndef UWDF_REQUEST_H
#define UWDF_REQUEST_H

#include <sys/uio.h>

#include "../backends/backend.h"
#include "memory.h"
#include "object.h"
#include "timer.h"
#include "worker.h"

struct uwdf_device;
struct uwdf_queue;

enum uwdf_irp_owner {
    UWDF_IRP_NONE = 0,
    UWDF_IRP_FRAMEWORK, /* WdfRequestCreate, or CreateFromIrp(RequestFreesIrp=TRUE) */
    UWDF_IRP_DRIVER,    /* CreateFromIrp(RequestFreesIrp=FALSE) or SET_NEW_IRP */
};

/* request->flags */
#define UWDF_REQ_CANCELED        0x0001u /* a cancel was requested (sticky until reuse) */
#define UWDF_REQ_TIMER_CANCELLED 0x0002u /* the timeout caused the cancel */
#define UWDF_REQ_PENDED          0x0004u /* on a stopped target's pended list */
#define UWDF_REQ_SENT            0x0008u /* handed to an engine */
#define UWDF_REQ_TIMER_ARMED     0x0010u
#define UWDF_REQ_IGNORE_STATE    0x0020u
#define UWDF_REQ_SYNC            0x0040u
#define UWDF_REQ_CALL_ROUTINE    0x0080u /* sync send that also runs the routine */
#define UWDF_REQ_USE_FILE_POS    0x0100u
#define UWDF_REQ_COMPLETED       0x0200u /* completed to its owner; not yet reused */
#define UWDF_REQ_FORGET          0x0400u /* queue request sent SEND_AND_FORGET */
#define UWDF_REQ_SEND_FAILED     0x0800u /* verifier: WdfRequestSend failed, not yet handled */
#define UWDF_REQ_APPEND          0x1000u /* a write to FILE_WRITE_TO_END_OF_FILE */
#define UWDF_REQ_IN_FLIGHT (UWDF_REQ_SENT | UWDF_REQ_PENDED)

struct uwdf_iotarget;
struct uwdf_sync_wait;
struct uwdf_request;

/* What a request needs while it is sent: its engine op with the segment
 * of a single buffer. Not the request's own: a request takes one from its
 * target's pool when it is sent (target_submit) and gives it back when its
 * send is over (target_settle_locked), so memory goes with the I/Os in
 * flight, not with the requests created or presented, and reuse
 * allocates nothing (the pool keeps its blocks until the target goes). A
 * request that must not fail for memory at its send
 * (uwdf_request_preallocate) has one of its own (snd_own). What only some
 * sends use is in struct uwdf_request_send_ext, the request's own. */
struct uwdf_request_send {
    struct uwdf_io io;
    union {
        struct uwdf_request *req;           /* the request it carries */
        struct uwdf_request_send *pool_next; /* in its target's pool */
    };
    struct iovec iov1; /* io's segment for one buffer (a WDFMEMORY, one MDL) */
    size_t io_length;    /* bytes the op asks for */
    uint64_t pos_offset; /* file position reserved for a NULL DeviceOffset */
    struct uwdf_request *resubmit_next; /* WdfIoTargetStart's list of pended sends */
};

/* What only some sends use: the segments of an MDL chain, a remote
 * target's discard or zeroing ranges, the framework timeout timer, the
 * blocking IOCTL's work item. Allocated by the first send that needs it
 * (uwdf_request_ensure_send_ext) and kept by the request, so a request
 * that uses it again allocates nothing; part of a presented request's own
 * allocation. */
struct uwdf_request_send_ext {
    struct uwdf_request *req;
    struct iovec *iov_heap;
    int iov_heap_cap;
    unsigned nranges, ranges_cap;
    struct uwdf_io_range *ranges;
    struct uwdf_timer timer;
    struct uwdf_work work; /* a blocking IOCTL on the worker thread */
};

/* What a request a queue presents uses only when its driver asks for it
 * (lib/request_received.c): the memory objects its retrievals hand out,
 * an MDL built for a retrieval on buffered I/O, a bounce buffer. Allocated
 * on first use and kept with the request's memory when that is recycled
 * for the next presented request (freed with it: request_free_kept), so
 * a driver that retrieves on every packet allocates nothing per I/O. */
struct uwdf_request_rx_more {
    bool rmem_live[2];
    PMDL rmdl_alloc;            /* an MDL built for a retrieval on buffered I/O */
    void *bounce;               /* buffered I/O over a scattered buffer */
    size_t bounce_len;
    struct uwdf_memory rmem[2]; /* retrieved input [0] / output [1] memory */
    MDL rmdl;                   /* the buffer as an MDL, for direct I/O */
};

/* What only a request a queue presents uses: the IRP fields it restores
 * and its buffers as presented. Part of that request's own allocation;
 * NULL on every other request. */
struct uwdf_request_rx {
    PMDL saved_mdl;
    PVOID saved_user, saved_system, saved_type3;
    /* The IRP's buffers as presented (receive_setup's layout): what
     * retrieval hands out, and what the IRP gets back when a format that
     * replaced them is dropped (request_restore_presented). */
    PMDL pres_mdl;
    PVOID pres_user, pres_system;
    /* Last: kept when a recycled request's memory is cleared (request.c) */
    struct uwdf_request_rx_more *more; /* NULL until first needed */
};

struct uwdf_request {
    struct uwdf_object obj;
    PIRP irp;
    uint8_t irp_owner;
    bool from_irp;
    bool internal; /* framework's own request for a synchronous send */
    /* Stack locations its framework IRP gets when one is first needed
     * (WdfRequestCreate allocates none: a caller that asks for it, a
     * device target or a stack-location format does; uwdf_request_irpless). */
    CCHAR irp_stack;
    bool snd_own;    /* snd is the request's (preallocated), not its target's */

    /* format */
    bool formatted;
    /* The next stack location of a request without an IRP, as its format
     * made it: the major function, its SL_ flags, the ByteOffset of a read
     * or write (nx_offset) or the IOCTL code (nx_ioctl); lengths and
     * buffers are the format's own (fmt_length, fmt_mem, fmt_buffer).
     * Written into the IRP when one is built (uwdf_request_grow_irp). */
    UCHAR nx_major;
    WDF_REQUEST_TYPE fmt_type;
    uint32_t fmt_seq;
    struct uwdf_memory *fmt_mem[2]; /* [0] input (write/ioctl in), [1] output */
    size_t fmt_offset[2];
    ULONG fmt_length[2];            /* a format's lengths are ULONGs (validated) */
    void *fmt_buffer[2];            /* raw buffers of a synchronous send */
    WDFIOTARGET fmt_target; /* a handle: the target may be deleted before the request */

    /* send state, guarded by the target's lock while sent */
    struct uwdf_request_send *snd; /* while sent, or its own (snd_own) */
    struct uwdf_request_send_ext *ext; /* NULL until a send needs it */
    struct uwdf_iotarget *target;
    int32_t comp_refs;
    atomic_uint flags;
    /* This send's completion is decided (set under its target's lock when
     * it leaves the sent list; cleared by the next send before its flags).
     * Its own word: a plain store, where a bit in flags would need a
     * locked read-modify-write against a concurrent cancel's CANCELED. */
    atomic_bool send_over;
    /* a completion decided by the framework, not the kernel (IOCTLs,
     * requests failed before they reached the engine); once the request
     * completed, fw_status and fw_info are its completion's IoStatus (the
     * completion parameters') until its next send is over */
    bool fw_done;
    UCHAR nx_flags;
    /* Completed since its format: while the format it completed lasts,
     * its completion parameters are there to give, made again from what
     * the request keeps (format, ioctl code, fw_status/fw_info). WDF
     * reinitialises them where a format ends (FxRequestContext::
     * ReleaseAndRestore: reuse, a new format, a synchronous DDI's end),
     * which clears it (request_format_dropped). */
    bool cp_valid;
    NTSTATUS fw_status;
    ULONG nx_ioctl;
    /* The IoStatus of a request without an IRP (WdfRequestGetStatus,
     * WdfRequestGetInformation); the IRP's once it has one. */
    NTSTATUS io_status;
    /* The last send's hand-over time (UwdfRequestGetHandOverTime), kept
     * when its send state goes back to the target's pool. */
    int64_t handover_ns;
    ULONG_PTR io_info;
    LONGLONG nx_offset;
    LIST_ENTRY target_link;
    PFN_WDF_REQUEST_COMPLETION_ROUTINE routine;
    WDFCONTEXT routine_ctx;
    struct uwdf_sync_wait *waiter;
    ULONG_PTR fw_info;

    /* received from a queue (lib/queue.c); guarded by the queue lock */
    bool received;
    bool reserved;
    bool stop_acked;
    bool suspended;
    _Atomic uint8_t qstate;     /* enum uwdf_qstate (lib/queue.h) */
    atomic_bool cancelable;
    /* The direct-I/O MDL of its flat buffer is not built yet: built (in
     * rx->more) when something could look at the IRP's MdlAddress
     * (uwdf_request_presented_mdl); until then the buffer is pres_user. */
    bool mdl_deferred;
    struct uwdf_request_rx *rx; /* NULL unless received */
    struct uwdf_queue *queue;   /* the queue it is on or was presented by */
    struct uwdf_queue *fp_home; /* a reserved request's pool */
    struct uwdf_request *sender; /* the request whose IRP this is */
    LIST_ENTRY queue_link;
    LIST_ENTRY packet_link;     /* a packet waiting for a reserved request */
    PFN_WDF_REQUEST_CANCEL cancel_routine;
};

_Static_assert(offsetof(struct uwdf_request, obj) == 0, "lookup casts the object pointer");
static inline struct uwdf_request *uwdf_request_lookup(WDFREQUEST handle, const char *ddi)
{
    return (struct uwdf_request *)uwdf_object_lookup(handle, UWDF_OBJ_REQUEST, ddi); /* obj is first */
}
/* A presented request whose direct-I/O MDL is deferred gets it now, in
 * its IRP too if that shows the presented buffers (WdfRequestWdmGetIrp, an
 * MDL retrieval; a send on leaves it to the device below); false only
 * when it cannot be allocated. */
bool uwdf_request_build_presented_mdl(struct uwdf_request *req);
static inline bool uwdf_request_presented_mdl(struct uwdf_request *req)
{
    return UWDF_LIKELY(!req->mdl_deferred) || uwdf_request_build_presented_mdl(req);
}
/* Everything a presented request allocates on first use, now: a reserved
 * request, which must work when memory has run out. */
NTSTATUS uwdf_request_reserve_parts(struct uwdf_request *req);
/* A presented request's retrieved memory handles die and an MDL built for
 * a retrieval goes (its completion, or its end); what rx->more holds for
 * reuse stays. */
void uwdf_request_rx_release_parts(struct uwdf_request *req);
static inline void uwdf_request_rx_release(struct uwdf_request *req)
{
    const struct uwdf_request_rx_more *more = req->rx->more;
    req->mdl_deferred = false;
    if (more && (more->rmem_live[0] || more->rmem_live[1] || more->rmdl_alloc))
        uwdf_request_rx_release_parts(req);
}
/* A request for an incoming packet, with the device's request attributes;
 * in the memory of one recycled on this thread unless fresh (a queue under
 * a forward-progress policy, whose reserve answers a failed allocation, and
 * its reserved requests, which live long). */
NTSTATUS uwdf_request_create_received(struct uwdf_device *dev, bool fresh, struct uwdf_request **out);

/* Back to the just-created state (a reserved request between packets);
 * contexts are kept, as WDF keeps them. */
void uwdf_request_reset(struct uwdf_request *req);
void uwdf_request_drop_format_full(struct uwdf_request *req, bool may_park);
/* The end of every drop of a format: unformatted, and the sequence moves. */
static inline void uwdf_request_format_moved(struct uwdf_request *req)
{
    req->fmt_type = WdfRequestTypeNoFormat;
    req->fmt_seq++;
    req->cp_valid = false;
}
/* Drop the format; may_park: a new format of the same request may follow
 * at once (WdfRequestReuse, a reformat), so the memory references can wait
 * in the completion scope. Inline: a format right after WdfRequestReuse
 * finds nothing formatted (the buffer fields are clear already; a new
 * request's type is not: zero) and only moves the format sequence on. */
static inline void uwdf_request_drop_format(struct uwdf_request *req, bool may_park)
{
    if (UWDF_LIKELY(!req->formatted && !req->fmt_mem[0] && !req->fmt_mem[1] && !req->fmt_target &&
                    !(atomic_load_explicit(&req->flags, memory_order_relaxed) & UWDF_REQ_SEND_FAILED))) {
        uwdf_request_format_moved(req);
        return;
    }
    uwdf_request_drop_format_full(req, may_park);
}
/* Release everything a format holds (memory references) and mark unformatted. */
static inline void uwdf_request_release_format(struct uwdf_request *req)
{
    uwdf_request_drop_format(req, false);
}
NTSTATUS uwdf_request_create_internal(struct uwdf_iotarget *target, struct uwdf_request **out);
NTSTATUS uwdf_request_grow_irp(struct uwdf_request *req, CCHAR stack_size);
/* A send state block for a target's pool, and its end. */
struct uwdf_request_send *uwdf_request_send_new(void);
void uwdf_request_send_free(struct uwdf_request_send *snd);
/* Give the request a send state of its own (snd_own), now. */
NTSTATUS uwdf_request_alloc_send(struct uwdf_request *req);
/* Everything a first send needs (IRP, send state), now: a caller that
 * must not fail for memory later (FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY). */
NTSTATUS uwdf_request_preallocate(struct uwdf_request *req);
/* The IRP of a request from WdfRequestCreate, which gets it when it is
 * first needed (with the format and IoStatus the request kept until then);
 * false only when it cannot be allocated. A request that has one, or is not
 * the framework's to give one, is left as it is. */
bool uwdf_request_lazy_irp(struct uwdf_request *req);
/* A request from WdfRequestCreate (or the framework's own) that has not
 * needed its IRP: a send to a file, block or remote target reads its
 * format from the request, which keeps its IoStatus too. It gets the IRP
 * for good when a caller asks for it (WdfRequestWdmGetIrp,
 * WdfRequestGetParameters), a format needs stack locations
 * (WdfRequestWdmFormatUsingStackLocation) or it goes to a device target. */
static inline bool uwdf_request_irpless(const struct uwdf_request *req)
{
    return !req->irp && req->irp_stack > 0;
}
/* The buffer of format slot 0 (input) or 1 (output). */
static inline void *uwdf_request_fmt_data(const struct uwdf_request *req, int slot)
{
    return req->fmt_mem[slot] ? (char *)req->fmt_mem[slot]->buffer + req->fmt_offset[slot]
                              : req->fmt_buffer[slot];
}
/* A next stack location as a format describes it. */
struct uwdf_next_loc {
    UCHAR major, flags; /* flags: SL_* */
    ULONG ioctl;
    LONGLONG offset;    /* a read's or write's ByteOffset */
    ULONG length[2];    /* [0] write or IOCTL input, [1] read or IOCTL output */
    void *buffer;       /* a read's or write's buffer, or */
    PMDL mdl;           /* its MDL */
    PFILE_OBJECT fo;    /* of the target it is formatted for, or NULL */
};
/* Write n into irp's next stack location and buffers. Inlined, so that
 * each format DDI's copy folds for its own major function. */
static inline __attribute__((always_inline)) void uwdf_irp_write_next(PIRP irp, const struct uwdf_next_loc *n)
{
    PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(irp);
    memset(s, 0, sizeof(*s));
    s->MajorFunction = n->major;
    s->Flags = n->flags;
    s->FileObject = n->fo;
    s->DeviceObject = n->fo ? n->fo->DeviceObject : NULL;
    irp->MdlAddress = n->mdl;
    irp->UserBuffer = n->buffer;
    irp->AssociatedIrp.SystemBuffer = NULL;
    switch (n->major) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE:
        s->Parameters.Read.Length = n->length[n->major == IRP_MJ_READ];
        s->Parameters.Read.ByteOffset.QuadPart = n->offset;
        break;
    default:
        s->Parameters.DeviceIoControl.IoControlCode = n->ioctl;
        s->Parameters.DeviceIoControl.InputBufferLength = n->length[0];
        s->Parameters.DeviceIoControl.OutputBufferLength = n->length[1];
        break;
    }
}
/* The IoStatus WDF reports for the request: its IRP's, or its own while it
 * has none. A request that has neither (a presented one after its
 * completion) reads STATUS_SUCCESS and 0 and keeps no other. */
static inline NTSTATUS uwdf_request_status(const struct uwdf_request *req)
{
    return req->irp ? req->irp->IoStatus.Status : req->io_status;
}
static inline ULONG_PTR uwdf_request_information(const struct uwdf_request *req)
{
    return req->irp ? req->irp->IoStatus.Information : req->io_info;
}
static inline void uwdf_request_set_information(struct uwdf_request *req, ULONG_PTR info)
{
    if (req->irp)
        req->irp->IoStatus.Information = info;
    else if (req->irp_stack)
        req->io_info = info;
}
static inline void uwdf_request_set_iostatus(struct uwdf_request *req, NTSTATUS status, ULONG_PTR info)
{
    if (req->irp) {
        req->irp->IoStatus.Status = status;
        req->irp->IoStatus.Information = info;
    } else if (req->irp_stack) {
        req->io_status = status;
        req->io_info = info;
    }
}
/* The IOCTL code the request is formatted with. */
static inline ULONG uwdf_request_next_ioctl(struct uwdf_request *req)
{
    return req->irp ? IoGetNextIrpStackLocation(req->irp)->Parameters.DeviceIoControl.IoControlCode
                    : req->nx_ioctl;
}
NTSTATUS uwdf_request_alloc_send_ext(struct uwdf_request *req);
/* The request's rarely used send part, allocated on first use. */
static inline NTSTATUS uwdf_request_ensure_send_ext(struct uwdf_request *req)
{
    if (UWDF_LIKELY(req->ext != NULL))
        return STATUS_SUCCESS;
    return uwdf_request_alloc_send_ext(req);
}
static inline struct uwdf_request *uwdf_request_of_io(struct uwdf_io *io)
{
    return uwdf_container_of(io, struct uwdf_request_send, io)->req;
}
/* The request has an IRP with at least stack_size locations: allocated or
 * grown (framework IRPs only) when it has not. */
static inline NTSTATUS uwdf_request_ensure_irp(struct uwdf_request *req, CCHAR stack_size)
{
    if (UWDF_LIKELY(req->irp && req->irp->StackCount >= stack_size))
        return STATUS_SUCCESS;
    return uwdf_request_grow_irp(req, stack_size);
}
/* Complete a request to its owner (lib/request.c), outside any lock; true
 * if a send from its completion routine took over its place in its target's
 * sent-I/O count (struct uwdf_completion_scope). */
bool uwdf_request_finish(struct uwdf_request *req, NTSTATUS status, ULONG_PTR information);

/* The completion of one sent request, open on its thread while the
 * driver's completion routine runs. The common routine reuses the request,
 * formats it with the same WDFMEMORY and sends it to the same target again;
 * what the old send holds and the new one would take at once passes over
 * instead of being released and taken again (an atomic read-modify-write
 * each): the target's reference on the request, the request's place in the
 * target's sent-I/O count, and the format's WDFMEMORY references, which
 * WdfRequestReuse sets aside here until the routine returns. Counts and
 * lifetimes are what they would have been; only a WDFMEMORY whose last
 * other reference the routine drops after the reuse is destroyed when the
 * routine returns rather than at once. */
struct uwdf_completion_scope {
    struct uwdf_request *req;     /* whose routine runs */
    struct uwdf_iotarget *target; /* still counts req in sent_count */
    bool req_ref_lent;            /* a resend of req took the target's reference */
    bool count_lent;              /* a send to target took req's count */
    struct uwdf_memory *parked[2]; /* format references set aside (held) */
    /* The completion whose routine this one runs inside (a stack: a
     * filter's routine completes its request, whose sender's routine
     * sends again), or NULL. */
    struct uwdf_completion_scope *outer;
};
extern __thread struct uwdf_completion_scope *uwdf_tls_completion;
/* Take the format reference on mem from a parked one, true if there was one. */
static inline bool uwdf_completion_unpark(const struct uwdf_request *req, struct uwdf_memory *mem)
{
    struct uwdf_completion_scope *sc = uwdf_tls_completion;
    if (!sc || sc->req != req)
        return false;
    for (int i = 0; i < 2; i++)
        if (sc->parked[i] == mem) {
            sc->parked[i] = NULL;
            return true;
        }
    return false;
}

/* true if req is neither sent nor pended; otherwise false, and a verifier
 * bug check (REQUEST_ALREADY_SENT) naming ddi. */
static inline bool uwdf_request_not_in_flight(struct uwdf_request *req, const char *ddi)
{
    if (!(atomic_load(&req->flags) & UWDF_REQ_IN_FLIGHT))
        return true;
    if (uwdf_verifier)
        uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT,
                      (ULONG_PTR)req->obj.handle, 0,
                      "%s: request %p is already sent to an I/O target (REQUEST_ALREADY_SENT)", ddi, (void *)req->obj.handle);
    return false;
}

/* Buffers of an IOCTL as the IRP describes them (a forwarded request). */
void uwdf_request_irp_ioctl_buffers(struct uwdf_request *req, void **in, size_t *in_len, void **out,
                                    size_t *out_len);

#endif
