/* --api=async: WDF requests formatted with WdfIoTargetFormatRequestFor*,
 * sent with WdfRequestSend, and reused (WdfRequestReuse) and sent again
 * from their completion routine. */
#include "config.h"

#include <string.h>

#include "api.h"
#include "io.h"
#include "setup.h"
#include "util.h"

NTSTATUS slot_create_request(struct slot *s, WDFIOTARGET t)
{
    NTSTATUS st = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &s->req);
    if (!NT_SUCCESS(st)) {
        s->req = NULL;
        return st;
    }
    /* A timer allocated up front keeps the timed send from allocating. */
    if (s->has_opts)
        st = WdfRequestAllocateTimer(s->req);
    s->fresh = true;
    return st;
}

/* Makes the slot's request ready for a new I/O: WdfRequestReuse, or (with
 * --reuse=0) delete it and create another. Inlined into async_send, the
 * resend of every I/O; slot_renew_request for the other modes. */
static inline __attribute__((always_inline)) NTSTATUS renew_request(struct slot *s, WDFIOTARGET t)
{
    if (s->fresh) {
        s->fresh = false;
        return STATUS_SUCCESS;
    }
    if (s->job->o.reuse) {
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        return WdfRequestReuse(s->req, &rp);
    }
    WdfObjectDelete(s->req);
    s->req = NULL;
    NTSTATUS st = slot_create_request(s, t);
    s->fresh = false;
    return st;
}

NTSTATUS slot_renew_request(struct slot *s, WDFIOTARGET t)
{
    return renew_request(s, t);
}

/* Formats the slot's request for its current I/O (after renewing it).
 * Inlined into async_send, as renew_request. */
static inline __attribute__((always_inline)) NTSTATUS format_request(struct slot *s, WDFIOTARGET t)
{
    struct job *j = s->job;
    LONGLONG off = (LONGLONG)s->offset;
    NTSTATUS st;
    switch (s->ddir) {
    case DDIR_READ:
        return WdfIoTargetFormatRequestForRead(t, s->req, s->mem, &s->mo, &off);
    case DDIR_WRITE:
        st = WdfIoTargetFormatRequestForWrite(t, s->req, s->mem, &s->mo, &off);
        if (NT_SUCCESS(st) && j->o.sync != SYNC_NONE)
            UwdfRequestSetWriteThrough(s->req, TRUE); /* after the format, which clears it */
        return st;
    case DDIR_TRIM:
        return WdfIoTargetFormatRequestForIoctl(t, s->req, IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES,
                                                s->dsm_mem, NULL, NULL, NULL);
    default: {
        IO_STACK_LOCATION stack;
        memset(&stack, 0, sizeof(stack));
        stack.MajorFunction = IRP_MJ_FLUSH_BUFFERS;
        stack.MinorFunction = s->flush == FLUSH_FDATASYNC ? IRP_MN_FLUSH_DATA_ONLY : 0;
        WdfRequestWdmFormatUsingStackLocation(s->req, &stack);
        return STATUS_SUCCESS;
    }
    }
}

NTSTATUS slot_format(struct slot *s, WDFIOTARGET t)
{
    return format_request(s, t);
}

static EVT_WDF_REQUEST_COMPLETION_ROUTINE async_completion, async_completion_handover;

/* Reuses, formats and sends the slot's request with WdfRequestSend. */
static bool async_send(struct slot *s, uint64_t t0)
{
    struct job *j = s->job;
    WDFIOTARGET t = j->files[s->file].target;
    NTSTATUS st = renew_request(s, t);
    if (NT_SUCCESS(st))
        st = format_request(s, t);
    if (!NT_SUCCESS(st)) {
        job_io_error(j, s, st, "format");
        return false;
    }
    WdfRequestSetCompletionRoutine(s->req, s->routine, s);
    slot_sending(s, t0);
    if (!WdfRequestSend(s->req, t, s->has_opts ? &s->send_opts : WDF_NO_SEND_OPTIONS)) {
        job_io_error(j, s, WdfRequestGetStatus(s->req), "send");
        return false;
    }
    return true;
}

void async_issue(struct slot *s, struct shard *sh, uint64_t t0)
{
    slot_issue_loop(s, sh, t0, async_send);
}

/* The engine's hand-over time of Request (CLOCK_MONOTONIC) on the
 * benchmark's clock, which reads the TSC scaled from a calibration: the
 * two drift apart by microseconds over a run, so the offset between them
 * is read again on each completion thread every millisecond (one
 * clock_gettime per millisecond, not per I/O). 0: not known. */
#define HANDOVER_RESYNC_NS 1000000u
static __thread int64_t handover_offset;
static __thread uint64_t handover_synced;

static uint64_t async_handover(WDFREQUEST Request, uint64_t tc)
{
    LONGLONG h = UwdfRequestGetHandOverTime(Request);
    if (h <= 0)
        return 0;
    if (g_clock.tsc && (handover_synced == 0 || tc - handover_synced > HANDOVER_RESYNC_NS)) {
        handover_offset = (int64_t)(tc - mono_ns());
        handover_synced = tc;
    }
    return (uint64_t)(h + (g_clock.tsc ? handover_offset : 0));
}

static VOID async_completion(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                             WDFCONTEXT Context)
{
    struct slot *s = Context;
    uint64_t tc = now_ns();
    (void)Request;
    (void)Target;
    s->status = Params->IoStatus.Status;
    s->info = Params->IoStatus.Information;
    slot_completed(s, tc);
}

static VOID async_completion_handover(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                                      WDFCONTEXT Context)
{
    struct slot *s = Context;
    uint64_t tc = now_ns();
    (void)Target;
    uint64_t handover = async_handover(Request, tc);
    s->status = Params->IoStatus.Status;
    s->info = Params->IoStatus.Information;
    slot_completed_handover(s, tc, handover);
}

/* Requests for a new phase: the old ones may still be in the framework's
 * hands for a moment after their completion routine returned. */
int renew_slot_requests(struct job *j)
{
    for (unsigned i = 0; i < j->nslots; i++) {
        struct slot *s = &j->slots[i];
        if (s->req)
            WdfObjectDelete(s->req);
        s->req = NULL;
        char sb[96];
        NTSTATUS st = slot_create_request(s, j->files[0].target);
        if (!NT_SUCCESS(st)) {
            errmsg("%s: WdfRequestCreate failed: %s", j->o.name, status_str(sb, sizeof(sb), st));
            job_set_error(j, status_errno(st), st);
            return -1;
        }
    }
    return 0;
}

int wdf_open_targets(struct job *j, device_over_fn *over)
{
    const struct job_opts *o = &j->o;
    struct bench_run *run = j->run;
    char sb[96];
    /* A job's completion routines resend to any of its files: on one
     * engine, every resend goes straight into that engine's ring. */
    if (o->engine_group)
        UwdfStartEngineGroup();
    int rc = 0;
    for (unsigned k = 0; k < j->nfiles && rc == 0; k++) {
        struct file_slot *f = &j->files[k];
        bool wr = rw_writes(o->rw) || rw_trims(o->rw);
        const char *name = f->path;
        WDFIOTARGET engine_target = NULL;
        NTSTATUS st = over ? over(j, f->path, wr, o->direct, &name, &engine_target) : STATUS_SUCCESS;
        if (NT_SUCCESS(st))
            st = open_target(run, name, wr, o->direct, &f->target);
        if (!NT_SUCCESS(st)) {
            f->target = NULL;
            errmsg("%s: cannot open '%s'%s: %s", o->name, f->path,
                   o->ioengine != ENGINE_DEFAULT ? " with the requested engine" : "",
                   status_str(sb, sizeof(sb), st));
            rc = -1;
            break;
        }
        PCSTR be = UwdfIoTargetGetBackendName(engine_target ? engine_target : f->target);
        if (!j->backend)
            j->backend = keep_str(run->strings, be ? be : "unknown");
    }
    if (o->engine_group)
        UwdfFinishEngineGroup();
    return rc;
}

int async_setup(struct job *j)
{
    if (wdf_open_targets(j, NULL) < 0)
        return -1;
    /* A target that cannot (a stream) keeps clat from the send's return. */
    bool want = j->o.api == API_ASYNC && j->o.clat_start == CLAT_START_HANDOVER;
    unsigned noted = 0;
    for (unsigned k = 0; k < j->nfiles && want; k++)
        if (NT_SUCCESS(UwdfIoTargetSetHandOverTimes(j->files[k].target, TRUE)))
            noted++;
    j->handover_times = noted > 0;
    j->clat_at_handover = noted == j->nfiles && !rw_trims(j->o.rw);
    return 0;
}

int wdf_setup_slot(struct slot *s)
{
    char sb[96];
    /* Chosen once: the common routine does not even test for hand-over times. */
    s->routine = s->job->handover_times ? async_completion_handover : async_completion;
    NTSTATUS st = slot_create_request(s, s->job->files[0].target);
    if (!NT_SUCCESS(st)) {
        errmsg("%s: WdfRequestCreate failed: %s", s->job->o.name, status_str(sb, sizeof(sb), st));
        return -1;
    }
    return 0;
}

const struct bench_api api_async = {
    .setup = async_setup,
    .setup_slot = wdf_setup_slot,
    .issue = async_issue,
    .renew = renew_slot_requests,
};
