/* --api=stack: the async mode through the smallest layer a storage filter
 * is, an in-process filter device over each file. */
#include "config.h"

#include <stdio.h>

#include "api.h"
#include "setup.h"
#include "tu_forwarder.h"
#include "util.h"

/* A pass-through filter device per file: the forwarder of the tests
 * (tests/tu_forwarder.c), without its counts. Its default queue (parallel)
 * forwards every request unchanged to its local target, which is opened on
 * the file, and completes it with what the file returned. */
static VOID stack_forward(WDFQUEUE Queue, WDFREQUEST Request)
{
    tu_forward(Request, WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue)), NULL);
}

/* --stack_forget: the same forward sent and forgotten, as a filter that
 * needs nothing back does: no format, no completion routine; the framework
 * completes the request when the target does. */
static VOID stack_forward_forget(WDFQUEUE Queue, WDFREQUEST Request)
{
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET);
    if (!WdfRequestSend(Request, WdfDeviceGetIoTarget(WdfIoQueueGetDevice(Queue)), &o))
        WdfRequestComplete(Request, WdfRequestGetStatus(Request));
}

/* One filter device whose target is opened on below (the file, or the
 * device under it); its NT name in *name (the run's pool), its target in
 * *target. */
static NTSTATUS stack_filter_create(struct bench_run *run, const char *below, bool write, bool direct, bool forget,
                                    const char **name, WDFIOTARGET *target)
{
    char buf[64];
    char sb[96];
    snprintf(buf, sizeof(buf), "\\Device\\uwdfBenchFilter%u", run->stack_devices++);
    WDFDEVICE dev;
    NTSTATUS st = tu_device_create(run->driver, buf, WdfDeviceIoDirect, WDF_NO_OBJECT_ATTRIBUTES, NULL, &dev);
    if (!NT_SUCCESS(st)) {
        errmsg("--api=stack: cannot create the filter device: %s", status_str(sb, sizeof(sb), st));
        return st;
    }
    WDF_IO_QUEUE_CONFIG qc;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&qc, WdfIoQueueDispatchParallel);
    qc.EvtIoDefault = forget ? stack_forward_forget : stack_forward;
    st = WdfIoQueueCreate(dev, &qc, WDF_NO_OBJECT_ATTRIBUTES, NULL);
    if (NT_SUCCESS(st))
        st = target_open_by_name(WdfDeviceGetIoTarget(dev), below, write, direct);
    if (!NT_SUCCESS(st)) {
        WdfObjectDelete(dev);
        return st;
    }
    *name = keep_str(run->strings, buf);
    *target = WdfDeviceGetIoTarget(dev);
    return STATUS_SUCCESS;
}

/* --stack_layers filter devices over path, each forwarding to the one
 * below, the lowest to the file; *name is the top one's, *lower the lowest
 * one's target (the engine's). */
static NTSTATUS stack_filters_create(struct job *j, const char *path, bool write, bool direct, const char **name,
                                     WDFIOTARGET *lower)
{
    const char *below = path;
    for (unsigned i = 0; i < j->o.stack_layers; i++) {
        WDFIOTARGET t;
        NTSTATUS st = stack_filter_create(j->run, below, write, direct, j->o.stack_forget, &below, &t);
        if (!NT_SUCCESS(st))
            return st; /* the devices made so far go with the run's driver */
        if (i == 0)
            *lower = t;
    }
    *name = below;
    return STATUS_SUCCESS;
}

static int stack_setup(struct job *j)
{
    return wdf_open_targets(j, stack_filters_create);
}

const struct bench_api api_stack = {
    .setup = stack_setup,
    .setup_slot = wdf_setup_slot,
    .issue = async_issue,
    .renew = renew_slot_requests,
};
