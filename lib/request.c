/* WDFREQUEST: creation, reuse, completion routines and completion to the
 * owner. The send/complete/cancel/timeout state machine lives with the I/O
 * target (lib/iotarget_send.c), as in WDF's FxIoTarget; the DDIs of a
 * request a queue presented, with its buffers, in lib/request_received.c. */
#include "runtime.h"
#include "device.h"
#include "engine.h"
#include "iotarget.h"
#include "lists.h"
#include "memory.h"
#include "object.h"
#include "request.h"

#include <errno.h>
#include <unistd.h>

/* Stack locations of a request created without a target: enough for a file
 * target (one) and an in-process device in between. */
#define UWDF_DEFAULT_REQUEST_STACK 2

static inline __attribute__((always_inline)) void
request_fill_cparams(struct uwdf_request *req, PWDF_REQUEST_COMPLETION_PARAMS p, NTSTATUS status, ULONG_PTR info);

static void request_dispose(struct uwdf_object *obj)
{
    struct uwdf_request *req = (struct uwdf_request *)obj;
    unsigned flags = atomic_load(&req->flags);
    if ((flags & UWDF_REQ_IN_FLIGHT) && uwdf_verifier)
        uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT,
                      (ULONG_PTR)obj->handle, 0,
                      "WdfObjectDelete: request %p is still sent to a target; it is destroyed "
                      "when the I/O completes (rule ReqDelete)", (void *)obj->handle);
}

/* The largest bounce buffer a presented request's memory keeps for reuse. */
#define REQUEST_BOUNCE_KEPT_MAX (64u * 1024)

static void request_free_ext(struct uwdf_request_send_ext *ext)
{
    /* Tested before each free: most requests have none of these. */
    if (ext) {
        if (ext->iov_heap)
            uwdf_free(ext->iov_heap);
        if (ext->ranges)
            uwdf_free(ext->ranges);
        uwdf_free(ext);
    }
}

static void request_destroy(struct uwdf_object *obj)
{
    struct uwdf_request *req = (struct uwdf_request *)obj;
    uwdf_request_release_format(req);
    if (req->irp && req->irp_owner == UWDF_IRP_FRAMEWORK)
        IoFreeIrp(req->irp);
    /* (Not sent now: a send state that is not its own is back in its
     * target's pool.) */
    if (req->snd_own)
        uwdf_request_send_free(req->snd);
    /* A presented request's rarely used parts stay with its memory, which
     * is recycled (request_free_kept frees them with it). */
    if (req->rx) {
        uwdf_request_rx_release(req);
        /* A large bounce buffer is not kept: up to RECYCLE_MAX recycled
         * requests per thread would each hold one. */
        struct uwdf_request_rx_more *more = req->rx->more;
        if (more && more->bounce_len > REQUEST_BOUNCE_KEPT_MAX) {
            uwdf_free(more->bounce);
            more->bounce = NULL;
            more->bounce_len = 0;
        }
        return;
    }
    request_free_ext(req->ext);
}

/* A request a queue presents: the request and what only such a request
 * uses, in one allocation, recycled for the next presented request on the
 * thread that completes it (lib/object.c). What only some of them use (the
 * rarely used part of the send state, rx->more) is allocated on first use
 * and stays with the memory across recycling, so a filter forwarding with
 * a timeout or retrieving its buffers' memory objects allocates nothing
 * per I/O. Its send state comes from its target's pool when it is
 * forwarded, as any request's. */
struct request_received_alloc {
    struct uwdf_request req;
    struct uwdf_request_rx rx;
};

/* What request_recycle_clear leaves: rx->more. */
#define REQUEST_RECYCLE_KEPT offsetof(struct request_received_alloc, rx.more)
_Static_assert(REQUEST_RECYCLE_KEPT + sizeof(void *) == sizeof(struct request_received_alloc),
               "what recycling keeps ends the allocation");

/* The recycled memory of a presented request (the only requests that are
 * recycled), cleared as a new one's would be, except for what it keeps
 * (the parts allocated on first use). */
static void request_recycle_clear(struct uwdf_object *obj, size_t size)
{
    bool ours = UWDF_LIKELY(size == sizeof(struct request_received_alloc));
    struct uwdf_request_send_ext *ext = ((struct uwdf_request *)obj)->ext;
    /* A size the compiler does not see: one call to libc's vector memset
     * (about 25 instructions for these 448 bytes), not 64 inline stores. */
    size_t n = ours ? REQUEST_RECYCLE_KEPT : size;
    __asm__("" : "+r"(n));
    memset(obj, 0, n);
    if (ours)
        ((struct uwdf_request *)obj)->ext = ext;
}

/* The memory of a request goes (not recycled): what a presented one kept. */
static void request_free_kept(struct uwdf_object *obj)
{
    struct uwdf_request *req = (struct uwdf_request *)obj;
    if (!req->rx)
        return; /* request_destroy freed what it had */
    struct request_received_alloc *a = uwdf_container_of(req, struct request_received_alloc, req);
    request_free_ext(req->ext);
    struct uwdf_request_rx_more *more = a->rx.more;
    if (more) {
        uwdf_free(more->bounce);
        if (more->rmdl_alloc)
            IoFreeMdl(more->rmdl_alloc);
        uwdf_free(more);
    }
}

static const struct uwdf_object_ops request_ops = {
    .dispose = request_dispose,
    .destroy = request_destroy,
    .recycle_clear = request_recycle_clear,
    .free_kept = request_free_kept,
};

static void request_send_init(struct uwdf_request *req, struct uwdf_request_send *snd)
{
    snd->req = req;
    snd->io.fd = -1;
    req->snd = snd;
    req->snd_own = true;
}

static void request_send_ext_init(struct uwdf_request *req, struct uwdf_request_send_ext *ext)
{
    ext->req = req; /* (its timer is set up before each arming) */
    req->ext = ext;
}

struct uwdf_request_send *uwdf_request_send_new(void)
{
    struct uwdf_request_send *snd = uwdf_zalloc(sizeof(*snd));
    if (snd)
        snd->io.fd = -1;
    return snd;
}

void uwdf_request_send_free(struct uwdf_request_send *snd)
{
    if (snd->io.core_pieces)
        uwdf_pieces_fini(&snd->io);
    uwdf_free(snd);
}

static NTSTATUS request_alloc(PWDF_OBJECT_ATTRIBUTES attrs, struct uwdf_object *parent, bool received,
                              bool reuse, struct uwdf_request **out)
{
    struct uwdf_object *obj;
    size_t size = received ? sizeof(struct request_received_alloc) : sizeof(struct uwdf_request);
    /* A presented request: the memory of one completed on this thread
     * before, if there is one (lib/object.c, recycled objects). */
    obj = reuse ? uwdf_object_reuse(size, UWDF_OBJ_REQUEST, &request_ops, attrs) : NULL;
    if (!obj) {
        NTSTATUS status = uwdf_object_create(size, UWDF_OBJ_REQUEST, &request_ops, attrs, parent, 0, &obj);
        if (!NT_SUCCESS(status))
            return status;
    }
    struct uwdf_request *req = (struct uwdf_request *)obj;
    uwdf_list_init(&req->target_link);
    uwdf_list_init(&req->queue_link);
    uwdf_list_init(&req->packet_link);
    if (received) {
        obj->recycle_size = size; /* see uwdf_object_reuse */
        struct request_received_alloc *a = uwdf_container_of(req, struct request_received_alloc, req);
        req->rx = &a->rx;
    }
    *out = req;
    return STATUS_SUCCESS;
}

NTSTATUS uwdf_request_alloc_send(struct uwdf_request *req)
{
    struct uwdf_request_send *snd = uwdf_request_send_new();
    if (!snd)
        return STATUS_INSUFFICIENT_RESOURCES;
    request_send_init(req, snd);
    return STATUS_SUCCESS;
}

NTSTATUS uwdf_request_alloc_send_ext(struct uwdf_request *req)
{
    struct uwdf_request_send_ext *ext = uwdf_zalloc(sizeof(*ext));
    if (!ext)
        return STATUS_INSUFFICIENT_RESOURCES;
    request_send_ext_init(req, ext);
    return STATUS_SUCCESS;
}

NTSTATUS uwdf_request_grow_irp(struct uwdf_request *req, CCHAR stack_size)
{
    if (req->irp && req->irp_owner != UWDF_IRP_FRAMEWORK)
        return STATUS_REQUEST_NOT_ACCEPTED; /* the driver's IRP is too small */
    if (stack_size < req->irp_stack)
        stack_size = req->irp_stack;
    PIRP irp = IoAllocateIrp(stack_size, FALSE);
    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    bool first = uwdf_request_irpless(req);
    if (req->irp)
        IoFreeIrp(req->irp);
    req->irp = irp;
    req->irp_owner = UWDF_IRP_FRAMEWORK;
    if (first) {
        /* What the request kept without it goes in: its IoStatus and its
         * format (for its target, unless that is gone). */
        irp->IoStatus.Status = req->io_status;
        irp->IoStatus.Information = req->io_info;
        if (req->formatted) {
            struct uwdf_iotarget *t = req->fmt_target ? (struct uwdf_iotarget *)uwdf_object_peek(
                                                            req->fmt_target, UWDF_OBJ_IOTARGET) /* obj is first */
                                                      : NULL;
            bool rw = req->nx_major == IRP_MJ_READ || req->nx_major == IRP_MJ_WRITE;
            struct uwdf_next_loc n = {
                .major = req->nx_major,
                .flags = req->nx_flags,
                .ioctl = req->nx_ioctl,
                .offset = req->nx_offset,
                .length = { req->fmt_length[0], req->fmt_length[1] },
                .buffer = rw ? uwdf_request_fmt_data(req, req->nx_major == IRP_MJ_READ) : NULL,
                .fo = t ? &t->file_object : NULL,
            };
            uwdf_irp_write_next(irp, &n);
        }
    }
    return STATUS_SUCCESS;
}

bool uwdf_request_lazy_irp(struct uwdf_request *req)
{
    return req->irp || !req->irp_stack || NT_SUCCESS(uwdf_request_grow_irp(req, req->irp_stack));
}

NTSTATUS uwdf_request_preallocate(struct uwdf_request *req)
{
    if (!uwdf_request_lazy_irp(req))
        return STATUS_INSUFFICIENT_RESOURCES;
    /* (Not in flight: a send state it has is its own.) */
    return req->snd ? STATUS_SUCCESS : uwdf_request_alloc_send(req);
}

NTSTATUS uwdf_request_create_received(struct uwdf_device *dev, bool fresh, struct uwdf_request **out)
{
    /* Received requests have no parent (WDF's are the framework's own);
     * the device's request attributes give them their context. */
    WDF_OBJECT_ATTRIBUTES attrs;
    if (dev->has_request_attrs)
        attrs = dev->request_attrs;
    NTSTATUS status = request_alloc(dev->has_request_attrs ? &attrs : NULL, NULL, true, !fresh, out);
    if (!NT_SUCCESS(status))
        return status;
    (*out)->received = true;
    (*out)->obj.no_delete = true; /* completed, never deleted, by the driver */
    /* Unformatted until its driver formats it: sent on as it came
     * (send-and-forget), its IOCTL buffers are the IRP's. */
    (*out)->fmt_type = WdfRequestTypeNoFormat;
    return STATUS_SUCCESS;
}

void uwdf_request_reset(struct uwdf_request *req)
{
    uwdf_request_release_format(req);
    req->routine = NULL;
    req->routine_ctx = NULL;
    atomic_store(&req->flags, 0);
    req->target = NULL;
    req->irp = NULL;
    req->sender = NULL;
    req->stop_acked = req->suspended = false;
    req->cancelable = false;
    req->cancel_routine = NULL;
}

NTSTATUS uwdf_request_create_internal(struct uwdf_iotarget *target, struct uwdf_request **out)
{
    struct uwdf_request *req;
    (void)target;
    NTSTATUS status = request_alloc(NULL, NULL, false, false, &req);
    if (!NT_SUCCESS(status))
        return status;
    req->internal = true;
    req->irp_stack = UWDF_DEFAULT_REQUEST_STACK; /* its IRP if it needs one */
    *out = req;
    return STATUS_SUCCESS;
}

__thread struct uwdf_completion_scope *uwdf_tls_completion;

/* Hold a format's WDFMEMORY reference in the open completion scope of req
 * instead of releasing it, for a format that takes the same one again. */
static bool request_park_memory(struct uwdf_request *req, struct uwdf_memory *mem)
{
    struct uwdf_completion_scope *sc = uwdf_tls_completion;
    if (!sc || sc->req != req)
        return false;
    for (int i = 0; i < 2; i++)
        if (!sc->parked[i]) {
            sc->parked[i] = mem;
            return true;
        }
    return false;
}

/* The end of every drop: the send-failed mark goes (tested first: a locked
 * RMW on every reuse and format otherwise) and the format sequence moves. */
static inline void request_format_dropped(struct uwdf_request *req)
{
    if (atomic_load_explicit(&req->flags, memory_order_relaxed) & UWDF_REQ_SEND_FAILED)
        atomic_fetch_and(&req->flags, ~UWDF_REQ_SEND_FAILED);
    uwdf_request_format_moved(req);
}

/* Out of line: the common case is inline (request.h). */
__attribute__((noinline)) void uwdf_request_drop_format_full(struct uwdf_request *req, bool may_park)
{
    for (int i = 0; i < 2; i++) {
        struct uwdf_memory *mem = req->fmt_mem[i];
        if (mem && !(may_park && request_park_memory(req, mem)))
            uwdf_object_release(&mem->obj);
        req->fmt_mem[i] = NULL;
        req->fmt_buffer[i] = NULL;
        req->fmt_offset[i] = req->fmt_length[i] = 0;
    }
    req->formatted = false;
    req->fmt_target = NULL;
    request_format_dropped(req);
}

/* A format of a presented request replaced its IRP's buffers
 * (format_commit): they go back to how the request was presented, where a
 * format is dropped and the IRP does not go on to a new format_commit
 * (which sets them anyway) or to its completion (receive_teardown gives the
 * sender's back): reuse and the formats that keep the IRP's buffers. */
static void request_restore_presented(struct uwdf_request *req)
{
    if (req->received && req->irp) {
        req->irp->MdlAddress = req->rx->pres_mdl;
        req->irp->UserBuffer = req->rx->pres_user;
        req->irp->AssociatedIrp.SystemBuffer = req->rx->pres_system;
    }
}

/* ---- DDIs ---- */

NTSTATUS WdfRequestCreate(PWDF_OBJECT_ATTRIBUTES RequestAttributes, WDFIOTARGET IoTarget,
                          WDFREQUEST *Request)
{
    struct uwdf_request *req;
    CCHAR stack = UWDF_DEFAULT_REQUEST_STACK;
    UWDF_REQUIRE_PARAM(Request, "WdfRequestCreate", STATUS_INVALID_PARAMETER);
    if (IoTarget) {
        struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfRequestCreate");
        if (!t)
            return STATUS_INVALID_HANDLE;
        /* What a format for this target needs (WDF: the target's stack
         * size): one for a file, whose IRP is then 72 bytes smaller; a
         * framework IRP grows if the request goes elsewhere later. */
        stack = uwdf_iotarget_stack_need(t);
    }
    NTSTATUS status = request_alloc(RequestAttributes, uwdf_driver_default_parent(), false, false, &req);
    if (!NT_SUCCESS(status))
        return status;
    /* Its IRP comes with its first use (uwdf_request_lazy_irp), its send
     * state from its target's pool while it is sent (struct
     * uwdf_request_send): a request made ahead for a deep queue costs what
     * it holds. */
    req->irp_stack = stack;
    req->obj.created_by = "WdfRequestCreate";
    *Request = (WDFREQUEST)req->obj.handle;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestCreateFromIrp(PWDF_OBJECT_ATTRIBUTES RequestAttributes, PIRP Irp,
                                 BOOLEAN RequestFreesIrp, WDFREQUEST *Request)
{
    struct uwdf_request *req;
    UWDF_REQUIRE_PARAM(Irp, "WdfRequestCreateFromIrp", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(Request, "WdfRequestCreateFromIrp", STATUS_INVALID_PARAMETER);
    NTSTATUS status = request_alloc(RequestAttributes, uwdf_driver_default_parent(), false, false, &req);
    if (!NT_SUCCESS(status))
        return status;
    req->irp = Irp;
    req->irp_owner = RequestFreesIrp ? UWDF_IRP_FRAMEWORK : UWDF_IRP_DRIVER;
    req->from_irp = true;
    req->obj.created_by = "WdfRequestCreateFromIrp";
    *Request = (WDFREQUEST)req->obj.handle;
    return STATUS_SUCCESS;
}

/* The rest of WdfRequestReuse for a presented request (FxRequest::Reuse),
 * whose format is gone and its IRP's buffers back as presented: the IRP is
 * the requestor's, so it only takes the new status and loses its cancel
 * flag, and the request is no longer completed or cancelled. Nothing else:
 * it still belongs to the driver, which must complete it. */
static __attribute__((noinline)) NTSTATUS request_reuse_presented(struct uwdf_request *req, bool new_irp,
                                                                 NTSTATUS status)
{
    if (new_irp)
        return STATUS_WDF_REQUEST_INVALID_STATE;
    request_restore_presented(req);
    if (req->irp) {
        req->irp->IoStatus.Status = status;
        __atomic_store_n(&req->irp->Cancel, FALSE, __ATOMIC_RELAXED);
    }
    atomic_store_explicit(&req->flags, 0, memory_order_release);
    return STATUS_SUCCESS;
}

NTSTATUS WdfRequestReuse(WDFREQUEST Request, PWDF_REQUEST_REUSE_PARAMS ReuseParams)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestReuse");
    if (!req)
        return STATUS_INVALID_HANDLE;
    UWDF_REQUIRE_PARAM(ReuseParams, "WdfRequestReuse", STATUS_INVALID_PARAMETER);
    if (ReuseParams->Size != sizeof(WDF_REQUEST_REUSE_PARAMS))
        return STATUS_INVALID_PARAMETER;
    if (ReuseParams->Flags & ~(ULONG)WDF_REQUEST_REUSE_SET_NEW_IRP)
        return STATUS_INVALID_PARAMETER;
    bool new_irp = (ReuseParams->Flags & WDF_REQUEST_REUSE_SET_NEW_IRP) != 0;
    if (UWDF_UNLIKELY(new_irp) && !req->received) {
        if (!req->from_irp)
            return STATUS_WDF_REQUEST_INVALID_STATE;
        if (!ReuseParams->NewIrp)
            return STATUS_INVALID_PARAMETER;
    }
    if (atomic_load(&req->flags) & UWDF_REQ_IN_FLIGHT) {
        /* WDF only breaks into the debugger here; reinitialising an
         * in-flight request would corrupt it, so the port refuses. */
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT,
                          (ULONG_PTR)Request, 0,
                          "WdfRequestReuse: request %p is still sent to a target (REQUEST_ALREADY_SENT)",
                          (void *)Request);
        return STATUS_INVALID_DEVICE_REQUEST;
    }

    req->routine = NULL;
    req->routine_ctx = NULL;
    uwdf_request_drop_format(req, true);
    /* (A presented request's IRP is never the framework's.) */
    if (UWDF_UNLIKELY(new_irp)) {
        if (req->received)
            return request_reuse_presented(req, new_irp, ReuseParams->Status);
        if (req->irp && req->irp_owner == UWDF_IRP_FRAMEWORK)
            IoFreeIrp(req->irp);
        req->irp = ReuseParams->NewIrp;
        req->irp_owner = UWDF_IRP_DRIVER;
    } else if (req->irp && req->irp_owner == UWDF_IRP_FRAMEWORK) {
        IoReuseIrp(req->irp, ReuseParams->Status);
    } else if (req->received) {
        return request_reuse_presented(req, new_irp, ReuseParams->Status);
    }
    uwdf_request_set_iostatus(req, ReuseParams->Status, 0); /* in the request while it has no IRP */
    if (req->irp)
        __atomic_store_n(&req->irp->Cancel, FALSE, __ATOMIC_RELAXED);
    atomic_store_explicit(&req->flags, 0, memory_order_release);
    __atomic_store_n(&req->target, NULL, __ATOMIC_RELEASE); /* read by a concurrent cancel */
    return STATUS_SUCCESS;
}

VOID WdfRequestSetCompletionRoutine(WDFREQUEST Request,
                                    PFN_WDF_REQUEST_COMPLETION_ROUTINE CompletionRoutine,
                                    WDFCONTEXT CompletionContext)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestSetCompletionRoutine");
    if (!req)
        return;
    req->routine = CompletionRoutine;
    req->routine_ctx = CompletionRoutine ? CompletionContext : NULL;
}

NTSTATUS WdfRequestGetStatus(WDFREQUEST Request)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestGetStatus");
    if (!req)
        return STATUS_INVALID_HANDLE;
    return uwdf_request_status(req);
}

VOID WdfRequestSetInformation(WDFREQUEST Request, ULONG_PTR Information)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestSetInformation");
    if (req)
        uwdf_request_set_information(req, Information);
}

ULONG_PTR WdfRequestGetInformation(WDFREQUEST Request)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestGetInformation");
    return req ? uwdf_request_information(req) : 0;
}

VOID WdfRequestGetCompletionParams(WDFREQUEST Request, PWDF_REQUEST_COMPLETION_PARAMS Params)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestGetCompletionParams");
    UWDF_REQUIRE_PARAM(Params, "WdfRequestGetCompletionParams", );
    if (!req)
        return;
    if (Params->Size != sizeof(WDF_REQUEST_COMPLETION_PARAMS)) {
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)Params, Params->Size,
                          sizeof(WDF_REQUEST_COMPLETION_PARAMS),
                          "WdfRequestGetCompletionParams: Params->Size is %u, expected %zu",
                          (unsigned)Params->Size, sizeof(WDF_REQUEST_COMPLETION_PARAMS));
        return;
    }
    if (req->cp_valid)
        request_fill_cparams(req, Params, req->fw_status, req->fw_info);
    else
        WDF_REQUEST_COMPLETION_PARAMS_INIT(Params); /* not completed since its format */
}

PIRP WdfRequestWdmGetIrp(WDFREQUEST Request)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestWdmGetIrp");
    return req && uwdf_request_lazy_irp(req) && uwdf_request_presented_mdl(req) ? req->irp : NULL;
}

WDFIOTARGET WdfRequestGetIoTarget(WDFREQUEST Request)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestGetIoTarget");
    if (!req)
        return NULL;
    /* req->target is only valid while the request is sent (the target
     * waits for it before it can go away); after that, the handle of the
     * target it was formatted for. */
    if (atomic_load(&req->flags) & UWDF_REQ_IN_FLIGHT)
        return (WDFIOTARGET)req->target->obj.handle;
    return req->fmt_target;
}

NTSTATUS WdfRequestAllocateTimer(WDFREQUEST Request)
{
    /* The timer is part of the request object, so there is nothing to
     * allocate and the send path never fails for want of one. */
    return uwdf_request_lookup(Request, "WdfRequestAllocateTimer") ? STATUS_SUCCESS
                                                                   : STATUS_INVALID_PARAMETER;
}

BOOLEAN WdfRequestCancelSentRequest(WDFREQUEST Request)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestCancelSentRequest");
    if (!req)
        return FALSE;
    return uwdf_iotarget_cancel_request(req) ? TRUE : FALSE;
}

VOID WdfRequestFormatRequestUsingCurrentType(WDFREQUEST Request)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestFormatRequestUsingCurrentType");
    if (!req)
        return;
    PIRP irp = req->irp;
    if (!irp || irp->CurrentLocation < 2 || irp->CurrentLocation > irp->StackCount) {
        uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_NO_MORE_STACK_LOCATIONS,
                      (ULONG_PTR)Request, 0,
                      "WdfRequestFormatRequestUsingCurrentType: request %p has no current stack "
                      "location to copy (it was not received from a queue)", (void *)Request);
        return;
    }
    uwdf_request_release_format(req);
    request_restore_presented(req);
    IoCopyCurrentIrpStackLocationToNext(irp);
    req->formatted = true;
}

VOID WdfRequestWdmFormatUsingStackLocation(WDFREQUEST Request, PIO_STACK_LOCATION Stack)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestWdmFormatUsingStackLocation");
    UWDF_REQUIRE_PARAM(Stack, "WdfRequestWdmFormatUsingStackLocation", );
    if (!req)
        return;
    if (!uwdf_request_lazy_irp(req)) {
        /* VOID: a format that could not get its IRP leaves the request
         * unformatted, and WdfRequestSend says so. */
        uwdf_request_release_format(req);
        return;
    }
    if (!req->irp || req->irp->CurrentLocation < 2) {
        uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, WDF_REQUEST_FATAL_ERROR_NO_MORE_STACK_LOCATIONS,
                      (ULONG_PTR)Request, 0,
                      "WdfRequestWdmFormatUsingStackLocation: request %p has no next stack location",
                      (void *)Request);
        return;
    }
    uwdf_request_release_format(req);
    request_restore_presented(req);
    PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(req->irp);
    *next = *Stack;
    next->CompletionRoutine = NULL;
    next->Context = NULL;
    next->Control = 0;
    req->formatted = true;
}

/* ---- completion to the owner ---- */

/* Inlined: the completion path fills them for every routine. */
static inline __attribute__((always_inline)) void
request_fill_cparams(struct uwdf_request *req, PWDF_REQUEST_COMPLETION_PARAMS p, NTSTATUS status, ULONG_PTR info)
{
    WDF_REQUEST_COMPLETION_PARAMS_INIT(p);
    p->Type = req->fmt_type;
    p->IoStatus.Status = status;
    p->IoStatus.Information = info;
    switch (req->fmt_type) {
    case WdfRequestTypeRead:
        p->Parameters.Read.Buffer = req->fmt_mem[1] ? (WDFMEMORY)req->fmt_mem[1]->obj.handle : NULL;
        p->Parameters.Read.Offset = req->fmt_mem[1] ? req->fmt_offset[1] : 0;
        p->Parameters.Read.Length = info;
        break;
    case WdfRequestTypeWrite:
        p->Parameters.Write.Buffer = req->fmt_mem[0] ? (WDFMEMORY)req->fmt_mem[0]->obj.handle : NULL;
        p->Parameters.Write.Offset = req->fmt_mem[0] ? req->fmt_offset[0] : 0;
        p->Parameters.Write.Length = info;
        break;
    case WdfRequestTypeDeviceControl:
    case WdfRequestTypeDeviceControlInternal:
        p->Parameters.Ioctl.IoControlCode = uwdf_request_next_ioctl(req);
        p->Parameters.Ioctl.Input.Buffer = req->fmt_mem[0] ? (WDFMEMORY)req->fmt_mem[0]->obj.handle : NULL;
        p->Parameters.Ioctl.Input.Offset = req->fmt_mem[0] ? req->fmt_offset[0] : 0;
        p->Parameters.Ioctl.Output.Buffer = req->fmt_mem[1] ? (WDFMEMORY)req->fmt_mem[1]->obj.handle : NULL;
        p->Parameters.Ioctl.Output.Offset = req->fmt_mem[1] ? req->fmt_offset[1] : 0;
        p->Parameters.Ioctl.Output.Length = info;
        break;
    default:
        break;
    }
}

bool uwdf_request_finish(struct uwdf_request *req, NTSTATUS status, ULONG_PTR information)
{
    struct uwdf_iotarget *target = req->target;
    struct uwdf_sync_wait *waiter = req->waiter;
    unsigned flags = atomic_load(&req->flags);
    WDFIOTARGET target_handle = target ? (WDFIOTARGET)target->obj.handle : NULL;

    uwdf_request_set_iostatus(req, status, information);
    /* The completion parameters: the routine's on the stack; the request
     * keeps what makes them again for WdfRequestGetCompletionParams. */
    WDF_REQUEST_COMPLETION_PARAMS cparams;
    req->fw_status = status;
    req->fw_info = information;
    req->cp_valid = true;

    /* The routine is one-shot: taken out before it runs, so a resend must
     * set it again (as WDF's CompleteSubmitted does). */
    PFN_WDF_REQUEST_COMPLETION_ROUTINE routine = req->routine;
    WDFCONTEXT ctx = req->routine_ctx;
    req->routine = NULL;
    req->routine_ctx = NULL;
    req->waiter = NULL;
    uint32_t seq = req->fmt_seq;
    atomic_store_explicit(&req->flags, (flags & UWDF_REQ_CANCELED) | UWDF_REQ_COMPLETED, memory_order_release);

    if (waiter) {
        /* WdfIoTargetSendXxxSynchronously: the caller's buffers were lent
         * for the call only, so that format ends here. A WdfRequestSend
         * (SYNCHRONOUS) sent the driver's own format (UWDF_REQ_CALL_ROUTINE),
         * which lasts until reuse, reformat or delete, as below. */
        if (routine && (flags & UWDF_REQ_CALL_ROUTINE)) {
            request_fill_cparams(req, &cparams, status, information);
            KIRQL old = uwdf_irql_raise_to_dispatch();
            routine((WDFREQUEST)req->obj.handle, target_handle, &cparams, ctx);
            uwdf_irql_restore(old);
        }
        if (req->fmt_seq == seq && !(flags & UWDF_REQ_CALL_ROUTINE))
            uwdf_request_release_format(req);
        uwdf_sync_wait_signal(waiter);
        uwdf_object_release(&req->obj);
        return false;
    }
    struct uwdf_completion_scope scope = { .req = req, .target = target, .outer = uwdf_tls_completion };
    if (routine) {
        request_fill_cparams(req, &cparams, status, information);
        struct uwdf_completion_scope *outer = scope.outer;
        uwdf_tls_completion = &scope;
        KIRQL old = uwdf_irql_raise_to_dispatch();
        routine((WDFREQUEST)req->obj.handle, target_handle, &cparams, ctx);
        uwdf_irql_restore(old);
        /* Closed before anything is released: a release that destroys the
         * request must not park into it. */
        uwdf_tls_completion = outer;
        for (int i = 0; i < 2; i++)
            if (scope.parked[i])
                uwdf_object_release(&scope.parked[i]->obj);
    }
    /* The format (and its WDFMEMORY references) outlives the completion:
     * as in WDF (FxRequestBase::CompleteSubmitted releases nothing), it
     * ends at WdfRequestReuse, a new format or the request's deletion, so
     * the Buffer handles in the completion parameters stay valid. The
     * target's reference ends here unless a resend took it over; then req
     * may already be gone. */
    if (!scope.req_ref_lent)
        uwdf_object_release(&req->obj);
    return scope.count_lent;
}

NTSTATUS WdfRequestChangeTarget(WDFREQUEST Request, WDFIOTARGET IoTarget)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "WdfRequestChangeTarget");
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, "WdfRequestChangeTarget");
    if (!req || !t)
        return STATUS_INVALID_PARAMETER;
    return uwdf_iotarget_prepare_request(t, req, "WdfRequestChangeTarget");
}

VOID UwdfRequestSetWriteThrough(WDFREQUEST Request, BOOLEAN WriteThrough)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "UwdfRequestSetWriteThrough");
    if (req && uwdf_request_irpless(req)) {
        req->nx_flags = WriteThrough ? req->nx_flags | SL_WRITE_THROUGH : req->nx_flags & (UCHAR)~SL_WRITE_THROUGH;
        return;
    }
    if (!req || !req->irp || req->irp->CurrentLocation < 2)
        return;
    PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(req->irp);
    if (WriteThrough)
        next->Flags |= SL_WRITE_THROUGH;
    else
        next->Flags &= (UCHAR)~SL_WRITE_THROUGH;
}
