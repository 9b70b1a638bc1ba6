/* Forward progress (WdfIoQueueAssignForwardProgressPolicy): a queue's pool
 * of reserved requests, created with the policy, and what happens when a
 * packet arrives and no new request can be had (the allocation failed, or
 * the verifier's fault injection, UWDF_FP_FAIL, said so): the policy
 * decides whether it takes a reserved request; with none free, packets
 * wait for one in arrival order, cancellable. A reserved request goes back
 * to its pool when its packet completes. The pool is guarded by its
 * queue's lock; its memory lives while the queue or an arrival that found
 * the queue in its device's table holds a reference (the queue's deletion
 * detaches it, the last reference frees it). */
#include "runtime.h"
#include "device.h"
#include "irp.h"
#include "lists.h"
#include "object.h"
#include "queue.h"
#include "request.h"

struct uwdf_fp {
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY policy;
    struct uwdf_request **all;
    unsigned total;
    struct uwdf_request **free; /* a stack of the free reserved requests */
    unsigned free_count;
    LIST_ENTRY waiting; /* packets waiting for a reserved request, FIFO */
    atomic_uint refs;   /* the queue's, and each arrival's using it */
};

static void fp_free(struct uwdf_fp *fp)
{
    if (!fp)
        return;
    for (unsigned i = 0; i < fp->total && fp->all; i++)
        if (fp->all[i])
            uwdf_object_delete(&fp->all[i]->obj);
    uwdf_free(fp->all);
    uwdf_free(fp->free);
    uwdf_free(fp);
}

void uwdf_fp_reference(struct uwdf_fp *fp)
{
    atomic_fetch_add_explicit(&fp->refs, 1, memory_order_relaxed);
}

void uwdf_fp_release(struct uwdf_fp *fp)
{
    if (atomic_fetch_sub_explicit(&fp->refs, 1, memory_order_acq_rel) == 1)
        fp_free(fp);
}

static NTSTATUS fp_policy_validate(struct uwdf_queue *q, PWDF_IO_QUEUE_FORWARD_PROGRESS_POLICY p)
{
    if (p->Size != sizeof(WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (p->TotalForwardProgressRequests == 0)
        return STATUS_INVALID_PARAMETER;
    switch (p->ForwardProgressReservedPolicy) {
    case WdfIoForwardProgressReservedPolicyAlwaysUseReservedRequest:
    case WdfIoForwardProgressReservedPolicyPagingIO:
        break;
    case WdfIoForwardProgressReservedPolicyUseExamine:
        if (!p->ForwardProgressReservePolicySettings.Policy.ExaminePolicy.EvtIoWdmIrpForForwardProgress)
            return STATUS_INVALID_PARAMETER;
        break;
    default:
        return STATUS_INVALID_PARAMETER; /* WDF does not check; a port should */
    }
    uwdf_queue_lock(q);
    bool assigned = q->fp != NULL;
    uwdf_queue_unlock(q);
    return assigned ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS;
}

NTSTATUS WdfIoQueueAssignForwardProgressPolicy(WDFQUEUE Queue, PWDF_IO_QUEUE_FORWARD_PROGRESS_POLICY Policy)
{
    struct uwdf_queue *q = uwdf_queue_lookup(Queue, "WdfIoQueueAssignForwardProgressPolicy");
    UWDF_REQUIRE_PARAM(Policy, "WdfIoQueueAssignForwardProgressPolicy", STATUS_INVALID_PARAMETER);
    if (!q)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive("WdfIoQueueAssignForwardProgressPolicy"))
        return STATUS_INVALID_DEVICE_REQUEST;
    NTSTATUS st = fp_policy_validate(q, Policy);
    if (!NT_SUCCESS(st))
        return st;

    unsigned n = Policy->TotalForwardProgressRequests;
    struct uwdf_fp *fp = uwdf_zalloc(sizeof(*fp));
    if (!fp)
        return STATUS_INSUFFICIENT_RESOURCES;
    fp->policy = *Policy;
    uwdf_list_init(&fp->waiting);
    atomic_init(&fp->refs, 1);
    fp->total = n;
    fp->all = uwdf_zalloc(sizeof(*fp->all) * n);
    fp->free = uwdf_zalloc(sizeof(*fp->free) * n);
    st = fp->all && fp->free ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
    for (unsigned i = 0; i < n && NT_SUCCESS(st); i++) {
        struct uwdf_request *r;
        st = uwdf_request_create_received(q->device, true, &r);
        if (!NT_SUCCESS(st))
            break;
        r->reserved = true;
        r->fp_home = q;
        fp->all[i] = r;
        fp->free[fp->free_count++] = r;
        /* Its own send state: forwarding it when memory has run out must
         * not need a block from the lower target's pool. */
        st = uwdf_request_alloc_send(r);
        /* And what the others get on first use (retrieved memory, the
         * direct-I/O MDL, a timeout's timer), now. */
        if (NT_SUCCESS(st))
            st = uwdf_request_reserve_parts(r);
        /* Called right after each reserved request is created; the first
         * failure undoes everything and is the call's result. */
        if (NT_SUCCESS(st) && Policy->EvtIoAllocateResourcesForReservedRequest)
            st = Policy->EvtIoAllocateResourcesForReservedRequest(Queue, (WDFREQUEST)r->obj.handle);
    }
    if (!NT_SUCCESS(st)) {
        fp_free(fp);
        return st;
    }
    uwdf_queue_lock(q);
    bool raced = q->fp != NULL;
    if (!raced)
        __atomic_store_n(&q->fp, fp, __ATOMIC_RELEASE); /* arrivals read it with no lock */
    uwdf_queue_unlock(q);
    if (raced) {
        fp_free(fp);
        return STATUS_INVALID_PARAMETER;
    }
    return STATUS_SUCCESS;
}

static int fp_fail_mode; /* 0 off, 1 all, 2 random (UWDF_FP_FAIL) */
static pthread_once_t fp_env_once = PTHREAD_ONCE_INIT;

static void fp_read_env(void)
{
    const char *v = uwdf_env(UWDF_ENV_FP_FAIL);
    fp_fail_mode = 0;
    if (v && !strcmp(v, "all"))
        fp_fail_mode = 1;
    else if (v && !strcmp(v, "random"))
        fp_fail_mode = 2;
    else if (v && *v && strcmp(v, "0") && strcmp(v, "off"))
        uwdf_log("UWDF_FP_FAIL='%s' is not all, random or off; ignored", v);
}

/* The enhanced verifier's ForwardProgressFailAll / FailRandom (about one
 * allocation in 17). */
bool uwdf_fp_inject_failure(void)
{
    static __thread uint64_t seed;
    pthread_once(&fp_env_once, fp_read_env);
    if (fp_fail_mode == 1)
        return true;
    if (fp_fail_mode != 2)
        return false;
    if (!seed)
        seed = (uint64_t)(uintptr_t)&seed ^ (uint64_t)uwdf_mono_ns();
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed % 17 == 0;
}

static WDF_IO_FORWARD_PROGRESS_ACTION fp_decide(struct uwdf_queue *q, const struct uwdf_fp *fp, PIRP irp)
{
    const WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY *p = &fp->policy;
    switch (p->ForwardProgressReservedPolicy) {
    case WdfIoForwardProgressReservedPolicyAlwaysUseReservedRequest:
        return WdfIoForwardProgressActionUseReservedRequest;
    case WdfIoForwardProgressReservedPolicyPagingIO:
        /* IRP_PAGING_IO shares its bit with IRP_MOUNT_COMPLETION, which
         * is what it means on a file-system control request. */
        return (irp->Flags & IRP_PAGING_IO) &&
                       IoGetCurrentIrpStackLocation(irp)->MajorFunction != IRP_MJ_FILE_SYSTEM_CONTROL
                   ? WdfIoForwardProgressActionUseReservedRequest
                   : WdfIoForwardProgressActionFailRequest;
    case WdfIoForwardProgressReservedPolicyUseExamine: {
        WDF_IO_FORWARD_PROGRESS_ACTION a =
            p->ForwardProgressReservePolicySettings.Policy.ExaminePolicy.EvtIoWdmIrpForForwardProgress(
                (WDFQUEUE)q->obj.handle, irp);
        if (a != WdfIoForwardProgressActionFailRequest && a != WdfIoForwardProgressActionUseReservedRequest) {
            if (uwdf_verifier)
                uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)q->obj.handle, (ULONG_PTR)a, 0,
                              "EvtIoWdmIrpForForwardProgress returned %d, not an action", (int)a);
            return WdfIoForwardProgressActionFailRequest;
        }
        return a;
    }
    default:
        return WdfIoForwardProgressActionFailRequest;
    }
}

NTSTATUS uwdf_fp_allocate_request_resources(struct uwdf_queue *q, struct uwdf_fp *fp, struct uwdf_request *r)
{
    PFN_WDF_IO_ALLOCATE_REQUEST_RESOURCES fn = fp->policy.EvtIoAllocateRequestResources;
    return fn ? fn((WDFQUEUE)q->obj.handle, (WDFREQUEST)r->obj.handle) : STATUS_SUCCESS;
}

NTSTATUS uwdf_fp_take_reserved(struct uwdf_queue *q, struct uwdf_fp *fp, struct uwdf_request *sender,
                               struct uwdf_request **out)
{
    struct uwdf_device *dev = q->device;
    struct uwdf_request *r;
    NTSTATUS st;
    if (fp_decide(q, fp, sender->irp) != WdfIoForwardProgressActionUseReservedRequest)
        return STATUS_UNSUCCESSFUL;
    uwdf_queue_lock(q);
    if (UWDF_UNLIKELY(q->state == UWDF_QUEUE_DELETING)) {
        /* The deletion has taken the waiting packets and waits for the
         * reserved requests to come home, or has detached the pool: the
         * packet is refused as a deleted queue refuses it. */
        uwdf_queue_unlock(q);
        return STATUS_INVALID_DEVICE_STATE;
    }
    if (fp->free_count == 0) {
        sender->irp->Tail.Overlay.DriverContext[1] = q;
        if (!uwdf_irp_set_cancel(sender->irp, UWDF_CANCEL_FP_WAIT, sender)) {
            uwdf_queue_unlock(q);
            return STATUS_CANCELLED;
        }
        uwdf_list_insert_tail(&fp->waiting, &sender->packet_link);
        uwdf_queue_unlock(q);
        return STATUS_PENDING;
    }
    r = fp->free[--fp->free_count];
    uwdf_queue_unlock(q);
    st = uwdf_request_receive_setup(dev, r, sender);
    if (!NT_SUCCESS(st)) {
        uwdf_request_receive_teardown(r, st, 0);
        r->irp = NULL;
        uwdf_fp_return(q, r);
        return st;
    }
    *out = r;
    return STATUS_SUCCESS;
}

void uwdf_fp_cancel_waiting(struct uwdf_request *sender, struct uwdf_queue *q)
{
    uwdf_queue_lock(q);
    if (sender->packet_link.Flink != &sender->packet_link)
        uwdf_list_remove(&sender->packet_link);
    WDFCONTEXT ctx = NULL;
    PFN_WDF_IO_QUEUE_STATE cb = uwdf_queue_state_check_locked(q, &ctx);
    uwdf_queue_unlock(q);
    uwdf_queue_packet_complete(sender, STATUS_CANCELLED, 0);
    uwdf_queue_run_state_cb(q, cb, ctx);
}

void uwdf_fp_return(struct uwdf_queue *q, struct uwdf_request *r)
{
    struct uwdf_fp *fp = q->fp;
    struct uwdf_request *next = NULL;
    uwdf_request_reset(r);
    uwdf_qs_recycle(r);
    uwdf_queue_lock(q);
    while (!uwdf_list_empty(&fp->waiting)) {
        LIST_ENTRY *e = uwdf_list_pop_head(&fp->waiting);
        struct uwdf_request *s = CONTAINING_RECORD(e, struct uwdf_request, packet_link);
        if (uwdf_irp_clear_cancel(s->irp)) {
            next = s;
            break;
        }
        /* its cancel routine is completing it */
    }
    if (!next) {
        fp->free[fp->free_count++] = r;
        pthread_cond_broadcast(&q->cond);
    }
    uwdf_queue_unlock(q);
    if (!next)
        return;
    NTSTATUS st = uwdf_request_receive_setup(q->device, r, next);
    if (!NT_SUCCESS(st)) {
        uwdf_request_receive_teardown(r, st, 0);
        r->irp = NULL;
        uwdf_queue_packet_complete(next, st, 0);
        uwdf_fp_return(q, r);
        return;
    }
    if (!uwdf_queue_insert(q, r, false)) {
        /* not accepting (drained, purged): KMDF fails it this way */
        r->queue = q;
        uwdf_queue_complete(r, STATUS_INVALID_DEVICE_STATE, 0);
    }
}

void uwdf_fp_collect_waiting_locked(struct uwdf_fp *fp, LIST_ENTRY *packets)
{
    LIST_ENTRY *e = fp->waiting.Flink;
    while (e != &fp->waiting) {
        LIST_ENTRY *next = e->Flink;
        struct uwdf_request *s = CONTAINING_RECORD(e, struct uwdf_request, packet_link);
        if (uwdf_irp_clear_cancel(s->irp)) {
            uwdf_list_remove(e);
            uwdf_list_insert_tail(packets, e);
        }
        e = next;
    }
}

bool uwdf_fp_idle_locked(const struct uwdf_fp *fp)
{
    return !fp || uwdf_list_empty(&fp->waiting);
}

bool uwdf_fp_all_home_locked(const struct uwdf_fp *fp)
{
    return !fp || fp->free_count == fp->total;
}
