/* Port extensions for a target's engine (include/uwdf.h): registered
 * buffers and files, statistics, batching, the send plug and hand-over
 * times. The DDIs check their arguments and the target's state, then hand
 * the registration of the target's file to its engine's thread (lib/engine.c),
 * the only thread allowed to touch a single-issuer ring. */
#include "runtime.h"
#include "biased_lock.h"
#include "engine.h"
#include "iotarget.h"
#include "memory.h"
#include "object.h"
#include "request.h"
#include "uwdf.h"

#include <errno.h>
#include <string.h>

/* Keeps the target open (and its engine alive) across a registration: a
 * Close waits for sent_count to drop to zero before it destroys the engine,
 * so the call counts as one sent operation while it runs. */
static struct uwdf_engine *fixedio_pin_target(struct uwdf_iotarget *t)
{
    struct uwdf_engine *e = NULL;
    uwdf_biased_lock_acquire(&t->lock);
    if (uwdf_iotarget_is_open(t) && t->engine) {
        e = t->engine;
        t->sent_count++;
    }
    uwdf_biased_lock_release(&t->lock);
    return e;
}

static void fixedio_unpin_target(struct uwdf_iotarget *t)
{
    uwdf_biased_lock_acquire(&t->lock);
    uwdf_iotarget_sent_put_locked(t);
    uwdf_biased_lock_release(&t->lock);
}

static NTSTATUS fixedio_status(int r)
{
    if (r == -EBUSY)
        return STATUS_INVALID_DEVICE_STATE; /* already registered */
    if (r == -EOPNOTSUPP)
        return STATUS_SUCCESS; /* the engine has no registration: a documented no-op */
    if (r == -ENOSPC)
        return STATUS_INSUFFICIENT_RESOURCES; /* the ring's table is full (not a disk) */
    return r < 0 ? uwdf_status_from_errno(-r) : STATUS_SUCCESS;
}

/* The registration DDIs' common checks: a live target, PASSIVE_LEVEL. */
static struct uwdf_iotarget *fixedio_target(WDFIOTARGET IoTarget, const char *ddi, NTSTATUS *status)
{
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    *status = STATUS_INVALID_HANDLE;
    if (!t)
        return NULL;
    *status = STATUS_INVALID_DEVICE_REQUEST;
    if (!uwdf_irql_check_passive(ddi))
        return NULL;
    *status = STATUS_SUCCESS;
    return t;
}

NTSTATUS UwdfIoTargetRegisterMemory(WDFIOTARGET IoTarget, WDFMEMORY *Memory, ULONG Count)
{
    static const char ddi[] = "UwdfIoTargetRegisterMemory";
    NTSTATUS status;
    struct uwdf_iotarget *t = fixedio_target(IoTarget, ddi, &status);
    if (!t)
        return status;
    if (!Memory || Count == 0)
        return STATUS_INVALID_PARAMETER;

    struct iovec *iov = uwdf_alloc(sizeof(*iov) * Count);
    struct uwdf_object **owners = uwdf_alloc(sizeof(*owners) * Count);
    if (!iov || !owners) {
        status = STATUS_INSUFFICIENT_RESOURCES;
        goto out;
    }
    for (ULONG i = 0; i < Count; i++) {
        struct uwdf_memory *m = uwdf_memory_lookup(Memory[i], ddi);
        if (!m) {
            status = STATUS_INVALID_HANDLE;
            goto out;
        }
        iov[i].iov_base = m->buffer;
        iov[i].iov_len = m->size;
        owners[i] = &m->obj;
    }
    struct uwdf_engine *e = fixedio_pin_target(t);
    if (!e) {
        status = STATUS_INVALID_DEVICE_STATE;
        goto out;
    }
    status = fixedio_status(uwdf_engine_register_buffers(e, &t->attach, iov, owners, Count));
    fixedio_unpin_target(t);
out:
    uwdf_free(owners);
    uwdf_free(iov);
    return status;
}

NTSTATUS UwdfIoTargetRegisterFile(WDFIOTARGET IoTarget)
{
    NTSTATUS status;
    struct uwdf_iotarget *t = fixedio_target(IoTarget, "UwdfIoTargetRegisterFile", &status);
    if (!t)
        return status;
    struct uwdf_engine *e = fixedio_pin_target(t);
    if (!e)
        return STATUS_INVALID_DEVICE_STATE;
    status = fixedio_status(uwdf_engine_register_file(e, &t->attach));
    fixedio_unpin_target(t);
    return status;
}

NTSTATUS UwdfIoTargetGetStatistics(WDFIOTARGET IoTarget, PUWDF_IO_TARGET_STATISTICS Statistics)
{
    static const char ddi[] = "UwdfIoTargetGetStatistics";
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    if (!t)
        return STATUS_INVALID_HANDLE;
    UWDF_REQUIRE_PARAM(Statistics, ddi, STATUS_INVALID_PARAMETER);
    if (Statistics->Size != sizeof(*Statistics))
        return STATUS_INFO_LENGTH_MISMATCH;
    struct uwdf_engine *e = fixedio_pin_target(t);
    if (!e)
        return STATUS_INVALID_DEVICE_STATE;
    struct uwdf_engine_file_stats fs;
    uwdf_engine_file_stats(&t->attach, &fs);
    fixedio_unpin_target(t);
    Statistics->RegisteredBuffers = fs.registered_buffers;
    Statistics->RegisteredFile = fs.registered_file;
    Statistics->Operations = fs.ops;
    Statistics->FixedBufferOperations = fs.fixed_buffer_ios;
    Statistics->FixedFileOperations = fs.fixed_file_ios;
    return STATUS_SUCCESS;
}

NTSTATUS UwdfIoTargetGetConnectionState(WDFIOTARGET IoTarget, PUWDF_IO_TARGET_CONNECTION_STATE State)
{
    static const char ddi[] = "UwdfIoTargetGetConnectionState";
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(IoTarget, ddi);
    if (!t)
        return STATUS_INVALID_HANDLE;
    UWDF_REQUIRE_PARAM(State, ddi, STATUS_INVALID_PARAMETER);
    if (State->Size != sizeof(*State))
        return STATUS_INFO_LENGTH_MISMATCH;
    struct uwdf_engine *e = fixedio_pin_target(t);
    if (!e)
        return t->lower ? STATUS_NOT_SUPPORTED : STATUS_INVALID_DEVICE_STATE;
#ifdef HAVE_LIBNBD
    if (e->ops == &uwdf_backend_nbd) {
        /* Pinned, the target keeps its export attached. */
        struct uwdf_nbd_state st;
        uwdf_nbd_export_state(t->attach.file.be, &st);
        fixedio_unpin_target(t);
        State->State = st.retrying ? UwdfConnectionReconnecting
                       : st.live   ? UwdfConnectionConnected
                                   : UwdfConnectionLost;
        State->Connections = st.connections;
        State->LiveConnections = st.live;
        State->ReconnectingConnections = st.retrying;
        State->ReconnectAttempts = st.attempts;
        State->MaxReconnectAttempts = st.max_attempts;
        State->Losses = st.losses;
        State->Reconnects = st.reconnects;
        State->LastStatus = st.last_err ? uwdf_status_from_errno(st.last_err) : STATUS_SUCCESS;
        _Static_assert(sizeof(State->LastError) == sizeof(st.last_why), "LastError copies last_why whole");
        memcpy(State->LastError, st.last_why, sizeof(State->LastError));
        State->LastError[sizeof(State->LastError) - 1] = '\0';
        return STATUS_SUCCESS;
    }
#endif
    fixedio_unpin_target(t);
    return STATUS_NOT_SUPPORTED;
}

/* ---- batching (fio's iodepth_batch_*) ---- */

/* The batching DDIs' target: open, with an engine of its own for its file
 * (not a device's queue, not a stream). */
static struct uwdf_engine *batch_pin_target(struct uwdf_iotarget *t, NTSTATUS *status)
{
    struct uwdf_engine *e = fixedio_pin_target(t);
    *status = e ? STATUS_SUCCESS : STATUS_INVALID_DEVICE_STATE;
    if (e && (t->lower || t->is_stream)) {
        fixedio_unpin_target(t);
        *status = STATUS_NOT_SUPPORTED;
        e = NULL;
    } else if (!e && t->lower) {
        *status = STATUS_NOT_SUPPORTED;
    }
    return e;
}

NTSTATUS UwdfIoTargetSetBatching(WDFIOTARGET IoTarget, const UWDF_IO_TARGET_BATCHING *Batching)
{
    static const char ddi[] = "UwdfIoTargetSetBatching";
    NTSTATUS status;
    struct uwdf_iotarget *t = fixedio_target(IoTarget, ddi, &status);
    if (!t)
        return status;
    UWDF_REQUIRE_PARAM(Batching, ddi, STATUS_INVALID_PARAMETER);
    if (Batching->Size != sizeof(*Batching))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (Batching->SubmitBatch > UWDF_IO_BATCH_MAX || Batching->CompleteMin > UWDF_IO_BATCH_MAX ||
        Batching->CompleteMax > UWDF_IO_BATCH_MAX ||
        (Batching->CompleteMin > 1 && Batching->CompleteMax && Batching->CompleteMax < Batching->CompleteMin))
        return STATUS_INVALID_PARAMETER;
    struct uwdf_engine *e = batch_pin_target(t, &status);
    if (!e)
        return status;
    struct uwdf_engine_batching b = { .submit = Batching->SubmitBatch,
                                      .complete_min = Batching->CompleteMin,
                                      .complete_max = Batching->CompleteMax };
    status = fixedio_status(uwdf_engine_set_batching(e, &t->attach, &b));
    fixedio_unpin_target(t);
    return status;
}

NTSTATUS UwdfIoTargetGetBatchStatistics(WDFIOTARGET IoTarget, PUWDF_IO_TARGET_BATCH_STATISTICS Statistics)
{
    static const char ddi[] = "UwdfIoTargetGetBatchStatistics";
    NTSTATUS status;
    struct uwdf_iotarget *t = fixedio_target(IoTarget, ddi, &status);
    if (!t)
        return status;
    UWDF_REQUIRE_PARAM(Statistics, ddi, STATUS_INVALID_PARAMETER);
    if (Statistics->Size != sizeof(*Statistics))
        return STATUS_INFO_LENGTH_MISMATCH;
    struct uwdf_engine *e = batch_pin_target(t, &status);
    if (!e)
        return status;
    struct uwdf_engine_batch_stats bs;
    bool have = uwdf_engine_batch_stats(e, &t->attach, &bs);
    fixedio_unpin_target(t);
    if (!have)
        return STATUS_NOT_FOUND;
    _Static_assert(UWDF_IO_BATCH_BUCKETS == UWDF_ENGINE_BATCH_BUCKETS, "one bucket layout");
    for (unsigned i = 0; i < UWDF_IO_BATCH_BUCKETS; i++) {
        Statistics->Submissions[i] = bs.submits[i];
        Statistics->CompletionRounds[i] = bs.completions[i];
    }
    return STATUS_SUCCESS;
}

VOID UwdfStartSendPlug(VOID)
{
    uwdf_engine_plug_start();
}

VOID UwdfFinishSendPlug(VOID)
{
    uwdf_engine_plug_finish();
}

/* ---- hand-over times (where fio's clat starts) ---- */

NTSTATUS UwdfIoTargetSetHandOverTimes(WDFIOTARGET IoTarget, BOOLEAN Enable)
{
    NTSTATUS status;
    struct uwdf_iotarget *t = fixedio_target(IoTarget, "UwdfIoTargetSetHandOverTimes", &status);
    if (!t)
        return status;
    struct uwdf_engine *e = batch_pin_target(t, &status);
    if (!e)
        return status;
    uwdf_engine_set_handover_times(e, &t->attach, Enable != FALSE);
    fixedio_unpin_target(t);
    return STATUS_SUCCESS;
}

LONGLONG UwdfRequestGetHandOverTime(WDFREQUEST Request)
{
    struct uwdf_request *req = uwdf_request_lookup(Request, "UwdfRequestGetHandOverTime");
    /* Kept at the completion that the caller waited for or runs in (the
     * send state itself may be back in the target's pool). */
    return req ? req->handover_ns : 0;
}
