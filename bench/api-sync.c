/* --api=sync: one synchronous request per job thread. */
#include "config.h"

#include "api.h"
#include "io.h"

/* QD1 on the job thread: WdfIoTargetSend{Read,Write,Ioctl}Synchronously with
 * the slot's request (reused, or created and deleted per I/O); flushes and
 * write-through writes are formatted here and sent with
 * WDF_REQUEST_SEND_OPTION_SYNCHRONOUS. Returns when the job is done. */
static void sync_issue(struct slot *s, struct shard *sh, uint64_t t0)
{
    struct job *j = s->job;
    (void)t0; /* each call is timed from its own start */
    s->depth = 1;
    for (;;) {
        uint64_t ts = now_ns();
        if (!next_io(s, ts))
            break;
        if (j->rated)
            ts = now_ns(); /* it may have waited for its turn */
        WDFIOTARGET t = j->files[s->file].target;
        NTSTATUS st = slot_renew_request(s, t);
        if (!NT_SUCCESS(st)) {
            job_io_error(j, s, st, "request");
            break;
        }
        WDF_MEMORY_DESCRIPTOR d;
        LONGLONG off = (LONGLONG)s->offset;
        ULONG_PTR bytes = 0;
        PWDF_REQUEST_SEND_OPTIONS opts = s->has_opts ? &s->send_opts : WDF_NO_SEND_OPTIONS;
        if (s->ddir == DDIR_SYNC || (s->ddir == DDIR_WRITE && j->o.sync != SYNC_NONE)) {
            st = slot_format(s, t);
            if (NT_SUCCESS(st)) {
                (void)WdfRequestSend(s->req, t, &s->sync_opts); /* FALSE: the status says why */
                st = WdfRequestGetStatus(s->req);
                bytes = WdfRequestGetInformation(s->req);
            }
        } else if (s->ddir == DDIR_TRIM) {
            WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, s->dsm_mem, NULL);
            st = WdfIoTargetSendIoctlSynchronously(t, s->req, IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES, &d,
                                                   NULL, opts, &bytes);
        } else {
            WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, s->mem, &s->mo);
            st = s->ddir == DDIR_READ
                     ? WdfIoTargetSendReadSynchronously(t, s->req, &d, &off, opts, &bytes)
                     : WdfIoTargetSendWriteSynchronously(t, s->req, &d, &off, opts, &bytes);
        }
        uint64_t t1 = now_ns();
        s->status = st;
        s->info = bytes;
        if (!slot_finish(s, sh, false, 0, t1 - ts, t1))
            break;
    }
    slot_retire(s, sh);
}

const struct bench_api api_sync = {
    .one_slot = true,
    .setup = async_setup,
    .setup_slot = wdf_setup_slot,
    .issue = sync_issue,
};
