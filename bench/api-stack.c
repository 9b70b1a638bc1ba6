/* --api=stack: the async mode through the smallest layer a storage filter
 * is, an in-process filter device over each file. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "setup.h"
#include "util.h"

/* A pass-through filter device per file. Its default queue (parallel)
 * forwards every request unchanged to its local target, which is opened on
 * the file, and completes it with what the file returned. */
static VOID stack_forward_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                               WDFCONTEXT Context)
{
    (void)Target;
    (void)Context;
    WdfRequestCompleteWithInformation(Request, Params->IoStatus.Status, Params->IoStatus.Information);
}

static VOID stack_forward(WDFQUEUE Queue, WDFREQUEST Request)
{
    WDFIOTARGET lower = WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue));
    WdfRequestFormatRequestUsingCurrentType(Request);
    WdfRequestSetCompletionRoutine(Request, stack_forward_done, NULL);
    if (!WdfRequestSend(Request, lower, WDF_NO_SEND_OPTIONS))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

/* The filter device over path; its NT name in *name (the run's pool). */
static NTSTATUS stack_filter_create(struct bench_run *run, const char *path, bool write, bool direct,
                                    const char **name, WDFIOTARGET *lower)
{
    char buf[64];
    char sb[96];
    snprintf(buf, sizeof(buf), "\\Device\\uwdfBenchFilter%u", run->stack_devices++);
    WCHAR *w = path_to_wide(buf);
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, w);
    WDFDEVICE dev;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(run->driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    NTSTATUS st = init ? WdfDeviceInitAssignName(init, &us) : STATUS_INSUFFICIENT_RESOURCES;
    free(w);
    if (NT_SUCCESS(st)) {
        WdfDeviceInitSetIoType(init, WdfDeviceIoDirect);
        st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &dev);
    }
    if (init)
        WdfDeviceInitFree(init);
    if (!NT_SUCCESS(st)) {
        errmsg("--api=stack: cannot create the filter device: %s", status_str(sb, sizeof(sb), st));
        return st;
    }
    WdfControlFinishInitializing(dev);
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoDefault = stack_forward;
    st = WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, NULL);
    if (NT_SUCCESS(st))
        st = target_open_by_name(WdfDeviceGetIoTarget(dev), path, write, direct);
    if (!NT_SUCCESS(st)) {
        WdfObjectDelete(dev);
        return st;
    }
    *name = keep_str(run->strings, buf);
    *lower = WdfDeviceGetIoTarget(dev);
    return STATUS_SUCCESS;
}

static int stack_setup(struct job *j)
{
    return wdf_open_targets(j, stack_filter_create);
}

const struct bench_api api_stack = {
    .setup = stack_setup,
    .setup_slot = wdf_setup_slot,
    .issue = async_issue,
    .renew = renew_slot_requests,
};
