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

/* The filter device over path; its NT name in *name (the run's pool). */
static NTSTATUS stack_filter_create(struct bench_run *run, const char *path, bool write, bool direct,
                                    const char **name, WDFIOTARGET *lower)
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
