/* Forward progress: WdfIoQueueAssignForwardProgressPolicy, the reserved
 * request pool, the three policies, packets waiting for a reserved
 * request, and UWDF_FP_FAIL=all under load through a filter on a loop
 * device.
 *
 * UWDF_FP_FAIL is read once per process, so the fail-all suite runs in a
 * child process of its own (this binary again, with UWDF_FP_FAIL=all in its
 * environment); main() picks the suite by that variable. */
#include "testutil.h"

#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wdf.h>

#define BLOCK 4096

extern char **environ;

/* The driver's context on every request of the device, reserved ones
 * included. */
typedef struct {
    ULONG magic;
    ULONG uses;
} RQ_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(RQ_CTX, rq_get);

typedef struct {
    WDFIOTARGET lower;
} DEV_CTX;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(DEV_CTX, dev_get);

enum io_mode { MODE_COMPLETE, MODE_HOLD, MODE_FORWARD, MODE_FORGET };

#define MAXHELD 16
static struct fp_state {
    enum io_mode mode;
    pthread_mutex_t lock;
    WDFREQUEST held[MAXHELD];
    int nheld;
    atomic_int presented, reserved_seen, normal_seen;
    atomic_int alloc_reserved_calls, alloc_reserved_bad;
    int alloc_reserved_fail_at; /* fail the N-th call (1-based); 0 never */
    WDFREQUEST reserved_made[16];
    NTSTATUS alloc_request_status;
    atomic_int alloc_request_calls;
    atomic_int examine_calls;
    atomic_int cleanup_reserved, cleanup_normal;
    atomic_int n_stop, n_state_cb;
    /* distinct reserved requests seen, and the use count each showed */
    WDFREQUEST reserved_handles[8];
    ULONG reserved_uses[8];
    int nreserved_handles;
} G;

static void fp_reset(void)
{
    memset(&G, 0, sizeof(G));
    pthread_mutex_init(&G.lock, NULL);
}

static void note_reserved(WDFREQUEST r, ULONG uses)
{
    pthread_mutex_lock(&G.lock);
    int i;
    for (i = 0; i < G.nreserved_handles; i++)
        if (G.reserved_handles[i] == r)
            break;
    if (i == G.nreserved_handles && i < 8)
        G.reserved_handles[G.nreserved_handles++] = r;
    if (i < 8)
        G.reserved_uses[i] = uses;
    pthread_mutex_unlock(&G.lock);
}

static VOID fp_io(WDFQUEUE q, WDFREQUEST req)
{
    RQ_CTX *c = rq_get(req);
    atomic_fetch_add(&G.presented, 1);
    c->uses++;
    if (WdfRequestIsReserved(req)) {
        atomic_fetch_add(&G.reserved_seen, 1);
        note_reserved(req, c->uses);
    } else {
        atomic_fetch_add(&G.normal_seen, 1);
    }
    switch (G.mode) {
    case MODE_HOLD:
        pthread_mutex_lock(&G.lock);
        ck_assert_int_lt(G.nheld, MAXHELD);
        G.held[G.nheld++] = req;
        pthread_mutex_unlock(&G.lock);
        break;
    case MODE_FORWARD:
        tu_forward(req, dev_get(WdfIoQueueGetDevice(q))->lower, NULL);
        break;
    case MODE_FORGET: {
        WDFIOTARGET lower = dev_get(WdfIoQueueGetDevice(q))->lower;
        WDF_REQUEST_SEND_OPTIONS o;
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET);
        if (!WdfRequestSend(req, lower, &o))
            WdfRequestComplete(req, WdfRequestGetStatus(req));
        break;
    }
    default: {
        /* Serve it from the request's own memory (a reserved request's
         * retrieved memory and MDL must be fresh on every use): a read
         * gets bytes of value 'uses', a write must carry them. */
        WDF_REQUEST_PARAMETERS p;
        WDF_REQUEST_PARAMETERS_INIT(&p);
        WdfRequestGetParameters(req, &p);
        bool rd = p.Type == WdfRequestTypeRead;
        WDFMEMORY m;
        PMDL mdl;
        NTSTATUS st = rd ? WdfRequestRetrieveOutputMemory(req, &m) : WdfRequestRetrieveInputMemory(req, &m);
        if (NT_SUCCESS(st))
            st = rd ? WdfRequestRetrieveOutputWdmMdl(req, &mdl) : WdfRequestRetrieveInputWdmMdl(req, &mdl);
        size_t n = 0;
        unsigned char *b = NT_SUCCESS(st) ? WdfMemoryGetBuffer(m, &n) : NULL;
        if (NT_SUCCESS(st) && (n != p.Parameters.Read.Length || MmGetMdlVirtualAddress(mdl) != b))
            st = STATUS_INTERNAL_ERROR;
        if (NT_SUCCESS(st) && rd) {
            unsigned char fill[BLOCK];
            memset(fill, (int)(c->uses & 0xff), sizeof(fill));
            st = WdfMemoryCopyFromBuffer(m, 0, fill, n < BLOCK ? n : BLOCK);
        }
        WdfRequestCompleteWithInformation(req, st, NT_SUCCESS(st) ? p.Parameters.Read.Length : 0);
        break;
    }
    }
}

static WDFREQUEST fp_take(void)
{
    pthread_mutex_lock(&G.lock);
    ck_assert_int_gt(G.nheld, 0);
    WDFREQUEST r = G.held[0];
    memmove(&G.held[0], &G.held[1], sizeof(G.held[0]) * (size_t)(G.nheld - 1));
    G.nheld--;
    pthread_mutex_unlock(&G.lock);
    return r;
}

static int fp_nheld(void)
{
    pthread_mutex_lock(&G.lock);
    int n = G.nheld;
    pthread_mutex_unlock(&G.lock);
    return n;
}

static VOID fp_stop(WDFQUEUE q, WDFREQUEST req, ULONG flags)
{
    (void)q;
    atomic_fetch_add(&G.n_stop, 1);
    ck_assert_uint_eq(flags & WdfRequestStopActionPurge, WdfRequestStopActionPurge);
    pthread_mutex_lock(&G.lock);
    for (int i = 0; i < G.nheld; i++)
        if (G.held[i] == req) {
            memmove(&G.held[i], &G.held[i + 1], sizeof(G.held[0]) * (size_t)(G.nheld - i - 1));
            G.nheld--;
            break;
        }
    pthread_mutex_unlock(&G.lock);
    WdfRequestComplete(req, STATUS_CANCELLED);
}

static VOID fp_state_cb(WDFQUEUE q, WDFCONTEXT ctx)
{
    (void)q;
    (void)ctx;
    atomic_fetch_add(&G.n_state_cb, 1);
}

static VOID rq_cleanup(WDFOBJECT o)
{
    if (WdfRequestIsReserved((WDFREQUEST)o))
        atomic_fetch_add(&G.cleanup_reserved, 1);
    else
        atomic_fetch_add(&G.cleanup_normal, 1);
}

static NTSTATUS alloc_reserved(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    int n = atomic_fetch_add(&G.alloc_reserved_calls, 1) + 1;
    if (!WdfRequestIsReserved(req) || !rq_get(req) || rq_get(req)->uses != 0)
        atomic_fetch_add(&G.alloc_reserved_bad, 1);
    if (n <= 16)
        G.reserved_made[n - 1] = req;
    return n == G.alloc_reserved_fail_at ? STATUS_DEVICE_NOT_READY : STATUS_SUCCESS;
}

static NTSTATUS alloc_request(WDFQUEUE q, WDFREQUEST req)
{
    (void)q;
    ck_assert(!WdfRequestIsReserved(req));
    atomic_fetch_add(&G.alloc_request_calls, 1);
    return G.alloc_request_status;
}

static WDF_IO_FORWARD_PROGRESS_ACTION examine(WDFQUEUE q, PIRP irp)
{
    (void)q;
    atomic_fetch_add(&G.examine_calls, 1);
    return IoGetCurrentIrpStackLocation(irp)->MajorFunction == IRP_MJ_READ
               ? WdfIoForwardProgressActionUseReservedRequest
               : WdfIoForwardProgressActionFailRequest;
}

/* A named device with the request context and cleanup counter, and a
 * parallel default queue presenting to fp_io. */
static WDFDEVICE fp_device(WDFDRIVER driver, const char *name, WDFQUEUE *q)
{
    WDF_OBJECT_ATTRIBUTES ra, da;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&ra, RQ_CTX);
    ra.EvtCleanupCallback = rq_cleanup;
    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&da, DEV_CTX);
    WDFDEVICE dev;
    ck_assert_status(tu_device_create(driver, name, WdfDeviceIoDirect, &da, &ra, &dev), STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, WdfIoQueueDispatchParallel);
    c.EvtIoDefault = fp_io;
    c.EvtIoStop = fp_stop;
    ck_assert_status(WdfIoQueueCreate(dev, &c, WDF_NO_OBJECT_ATTRIBUTES, q), STATUS_SUCCESS);
    return dev;
}

static WDFIOTARGET open_name(WDFDEVICE owner, WDFIOTARGET t, const char *name, ULONG options)
{
    WCHAR wbuf[512];
    UNICODE_STRING us;
    WDF_IO_TARGET_OPEN_PARAMS op;
    if (!t)
        ck_assert_status(WdfIoTargetCreate(owner, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_SUCCESS);
    tu_unicode(&us, wbuf, 512, name);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&op, &us, GENERIC_READ | GENERIC_WRITE);
    op.CreateOptions = options;
    ck_assert_status(WdfIoTargetOpen(t, &op), STATUS_SUCCESS);
    return t;
}

struct io {
    WDFREQUEST req;
    WDFMEMORY mem;
    void *buf;
    struct tu_completion c;
};

static void io_prepare(struct io *io, WDFIOTARGET t, WDF_REQUEST_TYPE type, LONGLONG off)
{
    memset(io, 0, sizeof(*io));
    io->req = tu_make_request(t);
    io->mem = tu_make_memory(BLOCK, &io->buf);
    tu_completion_init(&io->c);
    NTSTATUS st = type == WdfRequestTypeRead ? WdfIoTargetFormatRequestForRead(t, io->req, io->mem, NULL, &off)
                                             : WdfIoTargetFormatRequestForWrite(t, io->req, io->mem, NULL, &off);
    ck_assert_status(st, STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(io->req, tu_on_complete, &io->c);
}

static void io_start(struct io *io, WDFIOTARGET t, WDF_REQUEST_TYPE type, LONGLONG off, bool paging)
{
    io_prepare(io, t, type, off);
    if (paging)
        WdfRequestWdmGetIrp(io->req)->Flags |= IRP_PAGING_IO;
    ck_assert(WdfRequestSend(io->req, t, WDF_NO_SEND_OPTIONS));
}

static void io_expect(struct io *io, NTSTATUS st, long info)
{
    ck_assert(tu_completion_wait(&io->c, 10000));
    ck_assert_int_eq(tu_ncalls(&io->c), 1);
    ck_assert_status(io->c.status, st);
    if (info >= 0)
        ck_assert_uint_eq(io->c.information, (ULONG_PTR)info);
}

static void io_fini(struct io *io)
{
    tu_completion_fini(&io->c);
    WdfObjectDelete(io->req);
    WdfObjectDelete(io->mem);
}

static NTSTATUS assign_default(WDFQUEUE q, ULONG n)
{
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY p;
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_DEFAULT_INIT(&p, n);
    p.EvtIoAllocateResourcesForReservedRequest = alloc_reserved;
    p.EvtIoAllocateRequestResources = alloc_request;
    return WdfIoQueueAssignForwardProgressPolicy(q, &p);
}

/* ---- validation ---- */

struct dispatch_assign {
    WDFQUEUE q;
    NTSTATUS st;
    KIRQL irql;
    struct tu_completion c;
};

static VOID assign_from_completion(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                                   WDFCONTEXT Context)
{
    struct dispatch_assign *d = Context;
    d->irql = KeGetCurrentIrql();
    d->st = assign_default(d->q, 2);
    tu_on_complete(Request, Target, Params, &d->c);
}

START_TEST(assign_validation)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    fp_reset();
    WDFQUEUE q;
    fp_device(e.driver, "\\Device\\fpValid", &q);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY p;

    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_DEFAULT_INIT(&p, 2);
    p.Size = sizeof(p) - 1;
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q, &p), STATUS_INFO_LENGTH_MISMATCH);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_DEFAULT_INIT(&p, 0);
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q, &p), STATUS_INVALID_PARAMETER);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_EXAMINE_INIT(&p, 2, NULL);
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q, &p), STATUS_INVALID_PARAMETER);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_DEFAULT_INIT(&p, 2);
    p.ForwardProgressReservedPolicy = (WDF_IO_FORWARD_PROGRESS_RESERVED_POLICY)7;
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q, &p), STATUS_INVALID_PARAMETER);
    p.ForwardProgressReservedPolicy = WdfIoForwardProgressInvalidPolicy;
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q, &p), STATUS_INVALID_PARAMETER);
    ck_assert_int_eq(tu_load(&G.alloc_reserved_calls), 0);

    /* at DISPATCH_LEVEL (a completion routine): refused, nothing made */
    WDFQUEUE q2;
    fp_device(e.driver, "\\Device\\fpValid2", &q2);
    char *file = tu_env_file(&e, "dispatch.img", 1 << 16, 3);
    WDFIOTARGET ft;
    ck_assert_status(tu_target_open(e.device, file, GENERIC_READ, FILE_OPEN, 0, &ft), STATUS_SUCCESS);
    static struct dispatch_assign d;
    memset(&d, 0, sizeof(d));
    d.q = q2;
    tu_completion_init(&d.c);
    struct io io;
    io_prepare(&io, ft, WdfRequestTypeRead, 0);
    WdfRequestSetCompletionRoutine(io.req, assign_from_completion, &d);
    ck_assert(WdfRequestSend(io.req, ft, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&d.c, 5000));
    ck_assert_status(d.c.status, STATUS_SUCCESS);
    ck_assert_int_eq(d.irql, DISPATCH_LEVEL);
    ck_assert_status(d.st, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_int_eq(tu_load(&G.alloc_reserved_calls), 0);
    tu_completion_fini(&d.c);
    tu_completion_fini(&io.c);
    WdfObjectDelete(io.req);
    WdfObjectDelete(io.mem);
    free(file);

    /* valid once; a second policy is refused */
    ck_assert_status(assign_default(q2, 2), STATUS_SUCCESS);
    ck_assert_status(assign_default(q2, 2), STATUS_INVALID_PARAMETER);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_PAGINGIO_INIT(&p, 1);
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q2, &p), STATUS_INVALID_PARAMETER);
    ck_assert_int_eq(tu_load(&G.alloc_reserved_calls), 2);
    tu_env_fini(&e);
}
END_TEST

/* EvtIoAllocateResourcesForReservedRequest: once per reserved request,
 * inside the assign call; a failure undoes everything and is returned. */
START_TEST(reserved_allocation)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    fp_reset();
    WDFQUEUE q;
    fp_device(e.driver, "\\Device\\fpAlloc", &q);
    G.alloc_reserved_fail_at = 3;
    ck_assert_status(assign_default(q, 5), STATUS_DEVICE_NOT_READY);
    ck_assert_int_eq(tu_load(&G.alloc_reserved_calls), 3);
    ck_assert_int_eq(tu_load(&G.alloc_reserved_bad), 0);
    /* the ones made before the failure are gone */
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), 3);
    /* nothing stayed assigned: the queue takes a policy again */
    atomic_store(&G.alloc_reserved_calls, 0);
    G.alloc_reserved_fail_at = 0;
    ck_assert_status(assign_default(q, 4), STATUS_SUCCESS);
    ck_assert_int_eq(tu_load(&G.alloc_reserved_calls), 4);
    ck_assert_int_eq(tu_load(&G.alloc_reserved_bad), 0);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++)
            ck_assert_ptr_ne(G.reserved_made[i], G.reserved_made[j]);
    /* a normal request when EvtIoAllocateRequestResources succeeds, a
     * reserved one when it fails */
    WDFIOTARGET t = open_name(e.device, NULL, "\\Device\\fpAlloc", 0);
    struct io io;
    G.alloc_request_status = STATUS_SUCCESS;
    io_start(&io, t, WdfRequestTypeWrite, 0, false);
    io_expect(&io, STATUS_SUCCESS, BLOCK);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&G.normal_seen), 1);
    ck_assert_int_eq(tu_load(&G.cleanup_normal), 1);
    G.alloc_request_status = STATUS_INSUFFICIENT_RESOURCES;
    for (int i = 0; i < 3; i++) {
        io_start(&io, t, i % 2 ? WdfRequestTypeRead : WdfRequestTypeWrite, 0, false);
        io_expect(&io, STATUS_SUCCESS, BLOCK);
        io_fini(&io);
    }
    ck_assert_int_eq(tu_load(&G.reserved_seen), 3);
    ck_assert_int_eq(tu_load(&G.normal_seen), 1);
    ck_assert_int_eq(tu_load(&G.alloc_request_calls), 4);
    /* the failed normal requests were discarded unseen: no cleanup */
    ck_assert_int_eq(tu_load(&G.cleanup_normal), 1);
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), 3);
    tu_env_fini(&e);
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), 3 + 4);
}
END_TEST

/* EXAMINE and PAGINGIO, each choosing both ways when no normal request can
 * be had. */
START_TEST(examine_and_paging_policies)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    fp_reset();
    WDFQUEUE qe, qp;
    fp_device(e.driver, "\\Device\\fpExamine", &qe);
    fp_device(e.driver, "\\Device\\fpPaging", &qp);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY p;
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_EXAMINE_INIT(&p, 2, examine);
    p.EvtIoAllocateRequestResources = alloc_request;
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(qe, &p), STATUS_SUCCESS);
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_PAGINGIO_INIT(&p, 2);
    p.EvtIoAllocateRequestResources = alloc_request;
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(qp, &p), STATUS_SUCCESS);
    WDFIOTARGET te = open_name(e.device, NULL, "\\Device\\fpExamine", 0);
    WDFIOTARGET tp = open_name(e.device, NULL, "\\Device\\fpPaging", 0);
    struct io io;

    /* normal requests available: no policy consulted */
    G.alloc_request_status = STATUS_SUCCESS;
    io_start(&io, te, WdfRequestTypeWrite, 0, false);
    io_expect(&io, STATUS_SUCCESS, BLOCK);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&G.examine_calls), 0);

    G.alloc_request_status = STATUS_INSUFFICIENT_RESOURCES;
    io_start(&io, te, WdfRequestTypeRead, 0, false);
    io_expect(&io, STATUS_SUCCESS, BLOCK);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&G.examine_calls), 1);
    ck_assert_int_eq(tu_load(&G.reserved_seen), 1);
    io_start(&io, te, WdfRequestTypeWrite, 0, false);
    io_expect(&io, STATUS_UNSUCCESSFUL, 0);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&G.examine_calls), 2);
    ck_assert_int_eq(tu_load(&G.presented), 2);

    io_start(&io, tp, WdfRequestTypeWrite, 0, true);
    io_expect(&io, STATUS_SUCCESS, BLOCK);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&G.reserved_seen), 2);
    io_start(&io, tp, WdfRequestTypeWrite, 0, false);
    io_expect(&io, STATUS_UNSUCCESSFUL, 0);
    io_fini(&io);
    io_start(&io, tp, WdfRequestTypeRead, 0, true);
    io_expect(&io, STATUS_SUCCESS, BLOCK);
    io_fini(&io);
    ck_assert_int_eq(tu_load(&G.reserved_seen), 3);
    ck_assert_int_eq(tu_load(&G.presented), 4);
    ck_assert_int_eq(tu_load(&G.normal_seen), 1);
    ck_assert_int_eq(tu_load(&G.examine_calls), 2);
    tu_env_fini(&e);
}
END_TEST

/* Reserved requests return to the pool with their context as the driver
 * left it; their cleanup runs only when the queue (or the device) goes. */
START_TEST(reserved_cleanup_timing)
{
    for (int variant = 0; variant < 2; variant++) {
        struct tu_env e;
        tu_env_init_backend(&e, _i);
        fp_reset();
        WDFQUEUE q;
        WDFDEVICE dev = fp_device(e.driver, "\\Device\\fpCleanup", &q);
        G.alloc_request_status = STATUS_INSUFFICIENT_RESOURCES;
        ck_assert_status(assign_default(q, 2), STATUS_SUCCESS);
        WDFIOTARGET t = open_name(e.device, NULL, "\\Device\\fpCleanup", 0);
        struct io io;
        for (int i = 0; i < 6; i++) {
            io_start(&io, t, WdfRequestTypeRead, 0, false);
            io_expect(&io, STATUS_SUCCESS, BLOCK);
            /* served by the one reserved request the pool hands out first,
             * its context counting on: 1, 2, ... */
            ck_assert_int_eq(((unsigned char *)io.buf)[0], i + 1);
            ck_assert_int_eq(((unsigned char *)io.buf)[BLOCK - 1], i + 1);
            io_fini(&io);
        }
        ck_assert_int_eq(tu_load(&G.reserved_seen), 6);
        ck_assert_int_eq(tu_load(&G.cleanup_reserved), 0);
        ck_assert_int_eq(tu_load(&G.cleanup_normal), 0);
        /* the uses the contexts counted add up: never reset */
        ULONG sum = 0;
        for (int i = 0; i < G.nreserved_handles; i++) {
            sum += rq_get(G.reserved_handles[i])->uses;
            ck_assert(WdfRequestIsReserved(G.reserved_handles[i]));
        }
        ck_assert_int_le(G.nreserved_handles, 2);
        ck_assert_uint_eq(sum, 6);
        WdfObjectDelete(variant ? (WDFOBJECT)dev : (WDFOBJECT)q);
        ck_assert_int_eq(tu_load(&G.cleanup_reserved), 2);
        ck_assert_int_eq(tu_load(&G.cleanup_normal), 0);
        tu_env_fini(&e);
    }
}
END_TEST

/* A device whose driver holds what it is given, with a pool of one
 * reserved request that serves every packet (normal requests fail). */
static WDFIOTARGET one_held_reserved(struct tu_env *e, int backend, const char *name, WDFQUEUE *q)
{
    tu_env_init_backend(e, backend);
    fp_reset();
    G.mode = MODE_HOLD;
    G.alloc_request_status = STATUS_INSUFFICIENT_RESOURCES;
    fp_device(e->driver, name, q);
    ck_assert_status(assign_default(*q, 1), STATUS_SUCCESS);
    return open_name(e->device, NULL, name, 0);
}

/* A packet waiting for a reserved request: cancel (and a sender timeout)
 * completes it; the queue never sees it. */
START_TEST(cancel_waiting_packet)
{
    struct tu_env e;
    WDFQUEUE q;
    WDFIOTARGET t = one_held_reserved(&e, _i, "\\Device\\fpCancel", &q);
    struct io a, b, c, d;
    io_start(&a, t, WdfRequestTypeRead, 0, false);
    ck_assert_int_eq(fp_nheld(), 1);
    WDFREQUEST reserved = G.held[0];
    ck_assert(WdfRequestIsReserved(reserved));
    io_start(&b, t, WdfRequestTypeRead, BLOCK, false);
    ck_assert_int_eq(tu_load(&G.presented), 1);
    ULONG qn, dn;
    WdfIoQueueGetState(q, &qn, &dn);
    ck_assert_uint_eq(qn, 0); /* waiting for a request, not on the queue */
    ck_assert_uint_eq(dn, 1);
    ck_assert(!tu_completion_wait(&b.c, 20));
    ck_assert(WdfRequestCancelSentRequest(b.req));
    io_expect(&b, STATUS_CANCELLED, 0);

    /* a sender's timeout on a waiting packet */
    io_prepare(&d, t, WdfRequestTypeRead, 0);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(30));
    ck_assert(WdfRequestSend(d.req, t, &o));
    io_expect(&d, STATUS_IO_TIMEOUT, 0);
    ck_assert_int_eq(tu_load(&G.presented), 1);

    /* the reserved request comes back and serves the next packet */
    WdfRequestCompleteWithInformation(fp_take(), STATUS_SUCCESS, 11);
    io_expect(&a, STATUS_SUCCESS, 11);
    io_start(&c, t, WdfRequestTypeRead, 0, false);
    ck_assert_int_eq(fp_nheld(), 1);
    ck_assert_ptr_eq(G.held[0], reserved);
    ck_assert_uint_eq(rq_get(reserved)->uses, 2);
    WdfRequestCompleteWithInformation(fp_take(), STATUS_SUCCESS, 12);
    io_expect(&c, STATUS_SUCCESS, 12);
    io_fini(&a);
    io_fini(&b);
    io_fini(&c);
    io_fini(&d);
    tu_env_fini(&e);
}
END_TEST

/* Purging the queue cancels the packets waiting for a reserved request. */
START_TEST(purge_waiting_packets)
{
    struct tu_env e;
    WDFQUEUE q;
    WDFIOTARGET t = one_held_reserved(&e, _i, "\\Device\\fpPurge", &q);
    struct io io[4];
    for (int i = 0; i < 4; i++)
        io_start(&io[i], t, WdfRequestTypeWrite, (LONGLONG)i * BLOCK, false);
    ck_assert_int_eq(tu_load(&G.presented), 1);
    WdfIoQueuePurge(q, fp_state_cb, NULL);
    for (int i = 0; i < 4; i++)
        io_expect(&io[i], STATUS_CANCELLED, 0);
    ck_assert_int_eq(tu_load(&G.n_stop), 1); /* the held one, via EvtIoStop */
    ck_assert_int_eq(tu_load(&G.n_state_cb), 1);
    ck_assert_int_eq(tu_load(&G.presented), 1);
    ck_assert(WDF_IO_QUEUE_PURGED(WdfIoQueueGetState(q, NULL, NULL)));
    WdfIoQueueStart(q);
    G.mode = MODE_COMPLETE;
    for (int i = 0; i < 4; i++) {
        io_fini(&io[i]);
        io_start(&io[i], t, WdfRequestTypeWrite, 0, false);
        io_expect(&io[i], STATUS_SUCCESS, BLOCK);
    }
    for (int i = 0; i < 4; i++)
        io_fini(&io[i]);
    tu_env_fini(&e);
}
END_TEST

/* Draining: a packet still waiting for a reserved request when one comes
 * back finds the queue closed (as KMDF fails a request for a queue that
 * does not accept requests); the drain then completes. */
START_TEST(drain_with_waiting_packets)
{
    struct tu_env e;
    WDFQUEUE q;
    WDFIOTARGET t = one_held_reserved(&e, _i, "\\Device\\fpDrain", &q);
    struct io a, b;
    io_start(&a, t, WdfRequestTypeRead, 0, false);
    io_start(&b, t, WdfRequestTypeRead, 0, false);
    ck_assert_int_eq(fp_nheld(), 1);
    WdfIoQueueDrain(q, fp_state_cb, NULL);
    ck_assert_int_eq(tu_load(&G.n_state_cb), 0);
    ck_assert(!tu_completion_wait(&b.c, 10));
    WdfRequestCompleteWithInformation(fp_take(), STATUS_SUCCESS, 5);
    io_expect(&a, STATUS_SUCCESS, 5);
    io_expect(&b, STATUS_INVALID_DEVICE_STATE, 0);
    ck_assert_int_eq(tu_load(&G.presented), 1);
    ck_assert_int_eq(tu_load(&G.n_state_cb), 1);
    ck_assert(WDF_IO_QUEUE_DRAINED(WdfIoQueueGetState(q, NULL, NULL)));
    io_fini(&a);
    io_fini(&b);
    tu_env_fini(&e);
}
END_TEST

/* A device whose queue has one reserved request and forwards (send and
 * forget) every request to its lower target, and no normal request can be
 * had: each one it sees is the reserved one. */
static WDFDEVICE forget_device(struct tu_env *e, const char *name, WDFQUEUE *q)
{
    fp_reset();
    G.mode = MODE_FORGET;
    G.alloc_request_status = STATUS_INSUFFICIENT_RESOURCES;
    WDFDEVICE dev = fp_device(e->driver, name, q);
    ck_assert_status(assign_default(*q, 1), STATUS_SUCCESS);
    return dev;
}

/* Reserved requests sent and forgotten to a file come back to the pool. */
START_TEST(reserved_send_and_forget)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    WDFQUEUE q;
    WDFDEVICE dev = forget_device(&e, "\\Device\\fpForget", &q);
    char *file = tu_env_file(&e, "forget.img", 16 * BLOCK, 0);
    dev_get(dev)->lower = open_name(dev, WdfDeviceGetIoTarget(dev), file, 0);
    WDFIOTARGET t = open_name(e.device, NULL, "\\Device\\fpForget", 0);
    static struct io io[16];
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < 16; i++) {
            io_prepare(&io[i], t, phase ? WdfRequestTypeRead : WdfRequestTypeWrite, (LONGLONG)i * BLOCK);
            if (phase)
                memset(io[i].buf, 0, BLOCK);
            else
                tu_fill_pattern(io[i].buf, BLOCK, 83, (uint64_t)i * BLOCK);
            ck_assert(WdfRequestSend(io[i].req, t, WDF_NO_SEND_OPTIONS));
        }
        for (int i = 0; i < 16; i++) {
            io_expect(&io[i], STATUS_SUCCESS, BLOCK);
            if (phase)
                ck_assert(tu_pattern_matches(io[i].buf, BLOCK, 83, (uint64_t)i * BLOCK));
            io_fini(&io[i]);
        }
    }
    ck_assert_int_eq(tu_load(&G.reserved_seen), 32);
    ck_assert_int_eq(G.nreserved_handles, 1);
    ck_assert_uint_eq(rq_get(G.reserved_handles[0])->uses, 32);
    ck_assert(WDF_IO_QUEUE_IDLE(WdfIoQueueGetState(q, NULL, NULL)));
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* A reserved request forwarded while every framework allocation fails: what
 * it needs to go on to the lower target came with it (on Windows the IRP's
 * stack locations; here also the send state a target otherwise lends from
 * its pool, empty on a target that never had a send in flight). */
START_TEST(reserved_forwarded_while_every_allocation_fails)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    WDFQUEUE q;
    WDFDEVICE dev = forget_device(&e, "\\Device\\fpNoMem", &q);
    char *file = tu_env_file(&e, "nomem.img", 4 * BLOCK, 0);
    WDFIOTARGET lower = WdfDeviceGetIoTarget(dev);
    dev_get(dev)->lower = lower;
    WDFIOTARGET t = open_name(e.device, NULL, "\\Device\\fpNoMem", 0);
    struct io io;
    /* One send through the stack while the lower target is not open yet: the
     * upper target has had a send (its own pool is not what is tested), the
     * lower target none. */
    io_start(&io, t, WdfRequestTypeRead, 0, false);
    ck_assert(tu_completion_wait(&io.c, 10000));
    ck_assert(!NT_SUCCESS(io.c.status));
    io_fini(&io);
    open_name(dev, lower, file, 0);
    for (int k = 0; k < 3; k++) {
        io_prepare(&io, t, k == 1 ? WdfRequestTypeWrite : WdfRequestTypeRead, BLOCK);
        if (k == 1)
            tu_fill_pattern(io.buf, BLOCK, 91, BLOCK);
        else
            memset(io.buf, 0, BLOCK);
        UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
        ck_assert(WdfRequestSend(io.req, t, WDF_NO_SEND_OPTIONS));
        ck_assert(tu_completion_wait(&io.c, 10000));
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        ck_assert_int_eq(tu_ncalls(&io.c), 1);
        ck_assert_status_msg(io.c.status, STATUS_SUCCESS, "%s, round %d", tu_backend_names[_i], k);
        ck_assert_uint_eq(io.c.information, BLOCK);
        if (k == 2)
            ck_assert(tu_pattern_matches(io.buf, BLOCK, 91, BLOCK));
        io_fini(&io);
    }
    ck_assert_int_eq(tu_load(&G.reserved_seen), 4);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* ---- a queue with a pool deleted while packets arrive ---- */

static atomic_bool held_examine_in, held_examine_go;

/* Holds the arrival that consults it open until the test lets it go. */
static WDF_IO_FORWARD_PROGRESS_ACTION examine_held(WDFQUEUE q, PIRP irp)
{
    (void)q;
    (void)irp;
    atomic_store(&held_examine_in, true);
    while (!atomic_load(&held_examine_go))
        usleep(1000);
    return WdfIoForwardProgressActionUseReservedRequest;
}

struct held_send {
    WDFIOTARGET t;
    struct io io;
};

static void *held_sender(void *p)
{
    struct held_send *h = p;
    io_start(&h->io, h->t, WdfRequestTypeRead, 0, false);
    return NULL;
}

/* A packet found the queue in its device's table and uses the queue's pool
 * with no lock (here inside EvtIoWdmIrpForForwardProgress, held open) while
 * the queue is deleted: the deletion does not wait for it (the callback
 * could be the one deleting), the pool outlives the queue until the
 * arrival is done with it, the packet is refused as a deleted queue
 * refuses one, and the reserved requests' cleanup runs then. */
START_TEST(queue_deleted_while_an_arrival_uses_its_pool)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    fp_reset();
    atomic_store(&held_examine_in, false);
    atomic_store(&held_examine_go, false);
    WDFQUEUE q;
    fp_device(e.driver, "\\Device\\fpArrival", &q);
    G.alloc_request_status = STATUS_INSUFFICIENT_RESOURCES;
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY p;
    WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY_EXAMINE_INIT(&p, 2, examine_held);
    p.EvtIoAllocateRequestResources = alloc_request;
    ck_assert_status(WdfIoQueueAssignForwardProgressPolicy(q, &p), STATUS_SUCCESS);
    struct held_send h = { .t = open_name(e.device, NULL, "\\Device\\fpArrival", 0) };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, held_sender, &h), 0);
    for (int i = 0; i < 10000 && !atomic_load(&held_examine_in); i++)
        usleep(1000);
    ck_assert(atomic_load(&held_examine_in));
    WdfObjectDelete(q);
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), 0); /* the arrival still holds the pool */
    atomic_store(&held_examine_go, true);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    io_expect(&h.io, STATUS_INVALID_DEVICE_STATE, 0);
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), 2);
    ck_assert_int_eq(tu_load(&G.presented), 0);
    io_fini(&h.io);
    tu_env_fini(&e);
}
END_TEST

static atomic_bool pd_stop;

/* Read queues with a pool of one reserved request (normal requests fail,
 * so every read takes the reserved one or waits for it) are created, made
 * the reads' queue and deleted, over and over, while three threads send
 * reads: every read completes, served or refused, none is lost or
 * completed twice, nothing touches a freed pool (ASan, TSan and valgrind
 * run this too), and every pool's reserved request is cleaned up. */
START_TEST(queue_with_pool_deleted_while_packets_arrive)
{
    enum { SENDERS = 3, ROUNDS = 150 };
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    fp_reset();
    atomic_store(&pd_stop, false);
    G.alloc_request_status = STATUS_INSUFFICIENT_RESOURCES;
    WDFQUEUE dq;
    WDFDEVICE dev = fp_device(e.driver, "\\Device\\fpRace", &dq);
    struct tu_read_loop snd[SENDERS];
    pthread_t th[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        snd[i] = (struct tu_read_loop){ .t = open_name(e.device, NULL, "\\Device\\fpRace", 0),
                                        .len = BLOCK,
                                        .stop = &pd_stop };
        ck_assert_int_eq(pthread_create(&th[i], NULL, tu_read_loop, &snd[i]), 0);
    }
    int rounds_reserved = 0;
    for (int round = 0; round < ROUNDS; round++) {
        WDF_IO_QUEUE_CONFIG c;
        WDF_IO_QUEUE_CONFIG_INIT(&c, WdfIoQueueDispatchParallel);
        c.EvtIoDefault = fp_io; /* completes at once: no EvtIoStop, the deletion waits */
        WDFQUEUE q;
        ck_assert_status(WdfIoQueueCreate(dev, &c, WDF_NO_OBJECT_ATTRIBUTES, &q), STATUS_SUCCESS);
        ck_assert_status(assign_default(q, 1), STATUS_SUCCESS);
        ck_assert_status(WdfDeviceConfigureRequestDispatching(dev, q, WdfRequestTypeRead), STATUS_SUCCESS);
        /* Until a read has taken its reserved request (bounded: a loaded
         * machine may not run the senders meanwhile). */
        int before = tu_load(&G.reserved_seen);
        for (int spin = 0; spin < 2000 && tu_load(&G.reserved_seen) == before; spin++)
            sched_yield();
        rounds_reserved += tu_load(&G.reserved_seen) != before;
        WdfObjectDelete(q);
    }
    atomic_store(&pd_stop, true);
    int ok = 0, other = 0;
    for (int i = 0; i < SENDERS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ok += snd[i].ok;
        other += snd[i].other;
    }
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(ok, tu_load(&G.presented));
    ck_assert_int_gt(rounds_reserved, 0);
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), ROUNDS);
    tu_env_fini(&e);
}
END_TEST

/* ---- UWDF_FP_FAIL=all (run in a process of its own) ---- */

enum { FA_THREADS = 4, FA_PER_THREAD = 16, FA_N = FA_THREADS * FA_PER_THREAD };

struct fa_thread {
    WDFIOTARGET t;
    struct io *io;
    atomic_int *send_failures;
};

static void *fa_sender(void *p)
{
    struct fa_thread *a = p;
    for (int i = 0; i < FA_PER_THREAD; i++)
        if (!WdfRequestSend(a->io[i].req, a->t, WDF_NO_SEND_OPTIONS))
            atomic_fetch_add(a->send_failures, 1);
    return NULL;
}

START_TEST(fail_all_under_load)
{
    if (!tu_root())
        return;
    const char *v = getenv("UWDF_FP_FAIL");
    ck_assert(v && !strcmp(v, "all"));
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    fp_reset();
    G.mode = MODE_FORWARD;
    char *file = tu_env_file(&e, "fp-loop.img", FA_N * BLOCK, 0);
    const char *loop = tu_env_loop(&e, file, 0);
    WDFQUEUE q;
    WDFDEVICE dev = fp_device(e.driver, "\\Device\\fpFailAll", &q);
    ck_assert_status(assign_default(q, 2), STATUS_SUCCESS);
    dev_get(dev)->lower = open_name(dev, WdfDeviceGetIoTarget(dev), loop, FILE_NO_INTERMEDIATE_BUFFERING);
    WDFIOTARGET t = open_name(e.device, NULL, "\\Device\\fpFailAll", 0);
    static struct io io[FA_N];
    atomic_int send_failures = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < FA_N; i++) {
            io_prepare(&io[i], t, phase ? WdfRequestTypeRead : WdfRequestTypeWrite, (LONGLONG)i * BLOCK);
            if (phase)
                memset(io[i].buf, 0, BLOCK);
            else
                tu_fill_pattern(io[i].buf, BLOCK, 61 + (unsigned)_i, (uint64_t)i * BLOCK);
        }
        pthread_t th[FA_THREADS];
        struct fa_thread a[FA_THREADS];
        for (int k = 0; k < FA_THREADS; k++) {
            a[k] = (struct fa_thread){ t, &io[k * FA_PER_THREAD], &send_failures };
            ck_assert_int_eq(pthread_create(&th[k], NULL, fa_sender, &a[k]), 0);
        }
        for (int k = 0; k < FA_THREADS; k++)
            pthread_join(th[k], NULL);
        ck_assert_int_eq(tu_load(&send_failures), 0);
        for (int i = 0; i < FA_N; i++)
            io_expect(&io[i], STATUS_SUCCESS, BLOCK);
        /* exactly once: nothing more arrives later */
        tu_sleep_ms(20);
        for (int i = 0; i < FA_N; i++) {
            ck_assert_int_eq(tu_ncalls(&io[i].c), 1);
            if (phase)
                ck_assert(tu_pattern_matches(io[i].buf, BLOCK, 61 + (unsigned)_i, (uint64_t)i * BLOCK));
            io_fini(&io[i]);
        }
    }
    /* every request was a reserved one, and only two ever existed; their
     * contexts kept counting across uses */
    ck_assert_int_eq(tu_load(&G.reserved_seen), 2 * FA_N);
    ck_assert_int_eq(tu_load(&G.normal_seen), 0);
    ck_assert_int_ge(G.nreserved_handles, 1);
    ck_assert_int_le(G.nreserved_handles, 2);
    ULONG sum = 0, max = 0;
    for (int i = 0; i < G.nreserved_handles; i++) {
        ULONG u = rq_get(G.reserved_handles[i])->uses;
        sum += u;
        max = u > max ? u : max;
    }
    ck_assert_uint_eq(sum, 2 * FA_N);
    ck_assert_uint_ge(max, FA_N);
    ck_assert(WDF_IO_QUEUE_IDLE(WdfIoQueueGetState(q, NULL, NULL)));
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), 0);
    free(file);
    tu_env_fini(&e);
    ck_assert_int_eq(tu_load(&G.cleanup_reserved), 2);
}
END_TEST

/* Runs this binary again with UWDF_FP_FAIL=all; it runs the suite above. */
START_TEST(fail_all_in_own_process)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof(*envp));
    ck_assert_ptr_nonnull(envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "UWDF_FP_FAIL=", 13) && strncmp(environ[i], "CK_RUN_", 7))
            envp[k++] = environ[i];
    envp[k++] = "UWDF_FP_FAIL=all";
    envp[k] = NULL;
    /* The real path: under valgrind /proc/self/exe is valgrind's launcher,
     * while readlink reports the program it runs (the child then runs
     * natively; UWDF_FP_FAIL=all on the command line runs it under
     * valgrind). */
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ck_assert_int_gt(len, 0);
    exe[len] = '\0';
    char *argv[] = { exe, NULL };
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, exe, NULL, NULL, argv, envp), 0);
    free(envp);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the UWDF_FP_FAIL=all run failed (status %d)",
                  status);
}
END_TEST

static Suite *fp_suite(void)
{
    Suite *s = suite_create("fp");
    TCase *tc = tu_tcase(s, "policy", 30);
    tcase_add_loop_test(tc, assign_validation, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reserved_allocation, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, examine_and_paging_policies, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reserved_cleanup_timing, 0, TU_BACKENDS);
    tc = tu_tcase(s, "waiting", 30);
    tcase_add_loop_test(tc, cancel_waiting_packet, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, purge_waiting_packets, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reserved_send_and_forget, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, reserved_forwarded_while_every_allocation_fails, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, drain_with_waiting_packets, 0, TU_BACKENDS);
    tc = tu_tcase(s, "deletion", 60);
    tcase_add_loop_test(tc, queue_deleted_while_an_arrival_uses_its_pool, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, queue_with_pool_deleted_while_packets_arrive, 0, TU_BACKENDS);
    tc = tu_tcase(s, "fail-all", 120);
    tcase_add_test(tc, fail_all_in_own_process);
    return s;
}

static Suite *fp_fail_all_suite(void)
{
    Suite *s = suite_create("fp-fail-all");
    TCase *tc = tu_tcase(s, "fail-all", 60);
    tcase_add_loop_test(tc, fail_all_under_load, 0, TU_BACKENDS);
    return s;
}

int main(void)
{
    const char *v = getenv("UWDF_FP_FAIL");
    if (v && !strcmp(v, "all"))
        return tu_main(fp_fail_all_suite(), "fp-fail-all");
    return tu_main(fp_suite(), "fp");
}
