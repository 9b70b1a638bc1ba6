/* Simulated PnP and power: a devnode is the stack of devices the loaded
 * drivers made for one arrived device; its start, power and removal
 * sequences run in WDF's documented order (see uwdf.h and
 * kmdf-hosting.md §2). Also the PnP parts of WDFDEVICE_INIT, a filter's
 * pass-through, and control devices' shutdown notification. */
#include "runtime.h"
#include "host.h"
#include "iotarget.h"
#include "object.h"
#include "queue.h"
#include "request.h"
#include "ntrt.h"

#include <stdio.h>
#include <strings.h>

#define MAX_QUEUES_PER_DEVICE 64

struct uwdf_devnode {
    struct uwdf_devnode *next;
    char instance[96]; /* UWDF\<hardware id>\<serial> */
    unsigned serial;
    char *path;
    /* the description's drivers, for a restart (WdfDeviceSetFailed) */
    char *function;
    char **lower, **upper;
    ULONG nlower, nupper;
    struct uwdf_device *bottom, *top; /* the stack, linked by pnp_below/above */
    bool started;
    WDF_POWER_DEVICE_STATE power;
    /* WdfDeviceSetFailed (under pnp_lock): a removal is queued, with this
     * action; failed: the stack is gone, the devnode stays until removed */
    bool fail_queued;
    WDF_DEVICE_FAILED_ACTION fail_action;
    bool failed;
};

/* PnP operations run one at a time, as the PnP manager's thread runs
 * them; recursive so that a callback may start another (its own
 * devnode's arrival or removal from inside would break its stack: not
 * allowed). pnp_lock guards the lists and stack links. */
static pthread_mutex_t pnp_op_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t pnp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uwdf_devnode *devnodes;
static struct uwdf_device *all_devices;
static unsigned devnode_serial;

static void pnp_op_begin(void)
{
    pthread_mutex_lock(&pnp_op_lock);
}

static void pnp_op_end(void)
{
    pthread_mutex_unlock(&pnp_op_lock);
}

/* The device's WDF_DEVICE_PNP_STATE moves (WdfDeviceGetDevicePnpState). */
static void pnp_state_set(struct uwdf_device *dev, WDF_DEVICE_PNP_STATE state)
{
    __atomic_store_n(&dev->pnp_state, (int)state, __ATOMIC_RELEASE);
}

const char *uwdf_devnode_instance(const struct uwdf_devnode *node)
{
    return node->instance;
}

bool uwdf_devnode_started(const struct uwdf_devnode *node)
{
    pthread_mutex_lock(&pnp_lock);
    bool started = node->started;
    pthread_mutex_unlock(&pnp_lock);
    return started;
}

struct uwdf_device *uwdf_devnode_top(struct uwdf_devnode *node)
{
    pthread_mutex_lock(&pnp_lock);
    struct uwdf_device *top = node->top;
    if (top && !__atomic_load_n(&top->pnp_removed, __ATOMIC_ACQUIRE))
        uwdf_object_reference(&top->obj);
    else
        top = NULL;
    pthread_mutex_unlock(&pnp_lock);
    return top;
}

/* ---- WDFDEVICE_INIT ---- */

/* A misused init DDI does nothing, as KMDF; the verifier bug-checks. */
static void init_misuse(const void *what, const char *msg)
{
    if (uwdf_verifier)
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)what, 0, 0, "%s", msg);
    else
        uwdf_log("%s; ignored", msg);
}

VOID WdfDeviceInitSetPnpPowerEventCallbacks(PWDFDEVICE_INIT DeviceInit,
                                            PWDF_PNPPOWER_EVENT_CALLBACKS PnpPowerEventCallbacks)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitSetPnpPowerEventCallbacks", );
    UWDF_REQUIRE_PARAM(PnpPowerEventCallbacks, "WdfDeviceInitSetPnpPowerEventCallbacks", );
    if (!uwdf_irql_check_passive("WdfDeviceInitSetPnpPowerEventCallbacks"))
        return;
    if (PnpPowerEventCallbacks->Size != sizeof(WDF_PNPPOWER_EVENT_CALLBACKS)) {
        init_misuse(PnpPowerEventCallbacks, "WdfDeviceInitSetPnpPowerEventCallbacks: wrong Size");
        return;
    }
    uwdf_device_init_pnp(DeviceInit)->callbacks = *PnpPowerEventCallbacks;
}

VOID WdfFdoInitSetFilter(PWDFDEVICE_INIT DeviceInit)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfFdoInitSetFilter", );
    struct uwdf_pnp_init *p = uwdf_device_init_pnp(DeviceInit);
    if (!p->devnode) {
        init_misuse(DeviceInit, "WdfFdoInitSetFilter: not a PnP device's WDFDEVICE_INIT");
        return;
    }
    p->filter = true;
}

VOID WdfDeviceInitSetExclusive(PWDFDEVICE_INIT DeviceInit, BOOLEAN IsExclusive)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitSetExclusive", );
    uwdf_device_init_pnp(DeviceInit)->exclusive = IsExclusive != FALSE;
}

VOID WdfControlDeviceInitSetShutdownNotification(PWDFDEVICE_INIT DeviceInit,
                                                 PFN_WDF_DEVICE_SHUTDOWN_NOTIFICATION Notification, UCHAR Flags)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfControlDeviceInitSetShutdownNotification", );
    struct uwdf_pnp_init *p = uwdf_device_init_pnp(DeviceInit);
    if (p->devnode || (Flags & ~(WdfDeviceShutdown | WdfDeviceLastChanceShutdown)) != 0) {
        init_misuse(DeviceInit, p->devnode ? "WdfControlDeviceInitSetShutdownNotification: not a control device"
                                           : "WdfControlDeviceInitSetShutdownNotification: unknown flags");
        return;
    }
    p->shutdown = Notification;
    p->shutdown_flags = Flags;
}

/* ---- devices joining and leaving a stack ---- */

static NTSTATUS open_hardware_path(struct uwdf_device *dev, const char *path)
{
    UNICODE_STRING name;
    NTSTATUS st = uwdf_host_unicode(path, &name);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_TARGET_OPEN_PARAMS params;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&params, &name, GENERIC_READ | GENERIC_WRITE);
    st = WdfIoTargetOpen((WDFIOTARGET)dev->local_target->obj.handle, &params);
    uwdf_free(name.Buffer);
    return st;
}

NTSTATUS uwdf_pnp_device_created(struct uwdf_device *dev)
{
    struct uwdf_devnode *node = dev->pnp.devnode;
    pnp_state_set(dev, node ? WdfDevStatePnpInit : WdfDevStatePnpObjectCreated);
    if (node) {
        /* Attached on the current top (IoAttachDeviceToDeviceStack), or
         * the lowest one on the hardware's path. */
        struct uwdf_device *below = node->top;
        NTSTATUS st = STATUS_SUCCESS;
        if (below)
            st = uwdf_iotarget_attach(dev->local_target, below);
        else if (node->path)
            st = open_hardware_path(dev, node->path);
        if (!NT_SUCCESS(st)) {
            uwdf_log("%s: attaching device %p failed: 0x%08X", node->instance, (void *)dev->obj.handle,
                     (unsigned)st);
            return below ? STATUS_NO_SUCH_DEVICE : st;
        }
        if (dev->pnp.filter && below) {
            /* A filter reads and writes as the device below does. */
            dev->io_type = below->io_type;
            dev->wdm.Flags = (dev->wdm.Flags & ~(ULONG)(DO_BUFFERED_IO | DO_DIRECT_IO)) |
                             (below->wdm.Flags & (DO_BUFFERED_IO | DO_DIRECT_IO));
        }
        dev->obj.no_delete = true; /* a PnP device goes with its devnode */
        pthread_mutex_lock(&pnp_lock);
        dev->pnp_below = below;
        if (below)
            below->pnp_above = dev;
        else
            node->bottom = dev;
        node->top = dev;
        pthread_mutex_unlock(&pnp_lock);
    }
    pthread_mutex_lock(&pnp_lock);
    dev->all_next = all_devices;
    all_devices = dev;
    pthread_mutex_unlock(&pnp_lock);
    return STATUS_SUCCESS;
}

void uwdf_pnp_device_disposed(struct uwdf_device *dev)
{
    pthread_mutex_lock(&pnp_lock);
    for (struct uwdf_device **p = &all_devices; *p; p = &(*p)->all_next) {
        if (*p == dev) {
            *p = dev->all_next;
            break;
        }
    }
    struct uwdf_devnode *node = dev->pnp.devnode;
    if (node) {
        /* Devices leave from the top (removal), or a device made last
         * fails its WdfDeviceCreate after joining. */
        if (node->top == dev)
            node->top = dev->pnp_below;
        if (node->bottom == dev)
            node->bottom = NULL;
        if (dev->pnp_below)
            dev->pnp_below->pnp_above = dev->pnp_above;
        if (dev->pnp_above)
            dev->pnp_above->pnp_below = dev->pnp_below;
        dev->pnp_below = dev->pnp_above = NULL;
    }
    pthread_mutex_unlock(&pnp_lock);
}

struct uwdf_device *uwdf_pnp_below(struct uwdf_device *dev)
{
    /* Linked devices are alive: they unlink under the lock at disposal. */
    pthread_mutex_lock(&pnp_lock);
    struct uwdf_device *below = dev->pnp_below;
    if (below)
        uwdf_object_reference(&below->obj);
    pthread_mutex_unlock(&pnp_lock);
    return below;
}

struct uwdf_device *uwdf_pnp_open_redirect(struct uwdf_device *dev)
{
    struct uwdf_devnode *node = dev->pnp.devnode;
    if (!node)
        return dev;
    /* Under pnp_lock a device not yet marked removed has its devnode:
     * the devnode is freed only after each device's disposal, which takes
     * this lock after the mark. */
    struct uwdf_device *top = NULL;
    pthread_mutex_lock(&pnp_lock);
    if (!__atomic_load_n(&dev->pnp_removed, __ATOMIC_ACQUIRE) && node->started && node->top &&
        !__atomic_load_n(&node->top->pnp_removed, __ATOMIC_ACQUIRE)) {
        top = node->top;
        uwdf_object_reference(&top->obj);
    }
    pthread_mutex_unlock(&pnp_lock);
    uwdf_object_release(&dev->obj);
    return top;
}

/* ---- a filter's pass-through ---- */

static VOID pass_down_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                           WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    uwdf_queue_complete(Context, Params->IoStatus.Status, Params->IoStatus.Information);
}

/* The packet goes to the device below untouched: straight into its queues
 * when it is a device, else as a framework request on the file target. */
static void pass_down(struct uwdf_device *dev, struct uwdf_request *sender)
{
    struct uwdf_iotarget *t = dev->local_target;
    if (t->lower) {
        IoSkipCurrentIrpStackLocation(sender->irp);
        uwdf_queue_deliver(t->lower, sender);
        return;
    }
    struct uwdf_request *r;
    NTSTATUS st = uwdf_request_create_received(dev, false, &r);
    if (NT_SUCCESS(st)) {
        st = uwdf_request_receive_setup(dev, r, sender);
        if (!NT_SUCCESS(st)) {
            uwdf_request_receive_teardown(r, st, 0);
            r->irp = NULL;
            uwdf_object_delete_failed_create(&r->obj);
        }
    }
    if (!NT_SUCCESS(st)) {
        uwdf_queue_packet_complete(sender, st, 0);
        return;
    }
    IoCopyCurrentIrpStackLocationToNext(r->irp);
    r->formatted = true;
    r->routine = pass_down_done;
    r->routine_ctx = r;
    st = uwdf_iotarget_submit(t, r, NULL);
    if (!NT_SUCCESS(st)) {
        r->routine = NULL;
        r->routine_ctx = NULL;
        uwdf_queue_complete(r, st, 0);
    }
}

static bool queue_handles(const struct uwdf_queue *q, UCHAR major)
{
    const WDF_IO_QUEUE_CONFIG *c = &q->config;
    if (c->DispatchType == WdfIoQueueDispatchManual || c->EvtIoDefault)
        return true;
    switch (major) {
    case IRP_MJ_READ:
        return c->EvtIoRead != NULL;
    case IRP_MJ_WRITE:
        return c->EvtIoWrite != NULL;
    case IRP_MJ_DEVICE_CONTROL:
        return c->EvtIoDeviceControl != NULL;
    case IRP_MJ_INTERNAL_DEVICE_CONTROL:
        return c->EvtIoInternalDeviceControl != NULL;
    default:
        return false;
    }
}

bool uwdf_pnp_deliver_elsewhere(struct uwdf_device *dev, struct uwdf_queue *q, struct uwdf_request *sender)
{
    if (__atomic_load_n(&dev->pnp_removed, __ATOMIC_ACQUIRE)) {
        uwdf_queue_packet_complete(sender, STATUS_DELETE_PENDING, 0);
        return true;
    }
    if (!dev->pnp.filter || (q && queue_handles(q, IoGetCurrentIrpStackLocation(sender->irp)->MajorFunction)))
        return false;
    pass_down(dev, sender);
    return true;
}

/* ---- callbacks and queues ---- */

#define DEV_HANDLE(dev) ((WDFDEVICE)(dev)->obj.handle)
#define CALL_STATUS(dev, cb, ...) ((dev)->pnp.callbacks.cb ? (dev)->pnp.callbacks.cb(DEV_HANDLE(dev), ##__VA_ARGS__) \
                                                             : STATUS_SUCCESS)
#define CALL_VOID(dev, cb)                             \
    do {                                               \
        if ((dev)->pnp.callbacks.cb)                   \
            (dev)->pnp.callbacks.cb(DEV_HANDLE(dev));  \
    } while (0)

static void log_failure(struct uwdf_device *dev, const char *what, NTSTATUS st)
{
    uwdf_log("%s: %s of device %p failed: %s (0x%08X)", dev->pnp.devnode->instance, what,
             (void *)dev->obj.handle, UwdfNtStatusName(st) ? UwdfNtStatusName(st) : "?", (unsigned)st);
}

/* Power-managed: PowerManaged TRUE, or the default (UseDefault) on a
 * device that is not a filter. */
static bool queue_power_managed(const struct uwdf_queue *q)
{
    WDF_TRI_STATE pm = q->config.PowerManaged;
    return pm == WdfTrue || (pm == WdfUseDefault && !q->device->pnp.filter);
}

enum queue_action { QA_START, QA_STOP, QA_PURGE };

static void queues_apply(struct uwdf_device *dev, bool power_managed, enum queue_action action)
{
    struct uwdf_object *qs[MAX_QUEUES_PER_DEVICE];
    size_t n = uwdf_object_collect(&dev->obj, UWDF_OBJ_QUEUE, qs, RTL_NUMBER_OF(qs));
    if (n > RTL_NUMBER_OF(qs)) {
        uwdf_log("%s: more than %d queues on a device: the rest keep their state", dev->pnp.devnode->instance,
                 MAX_QUEUES_PER_DEVICE);
        n = RTL_NUMBER_OF(qs);
    }
    for (size_t i = 0; i < n; i++) {
        struct uwdf_queue *q = (struct uwdf_queue *)qs[i];
        WDFQUEUE h = (WDFQUEUE)q->obj.handle;
        if (queue_power_managed(q) == power_managed) {
            if (action == QA_START)
                WdfIoQueueStart(h);
            else if (action == QA_STOP)
                WdfIoQueueStopSynchronously(h);
            else
                WdfIoQueuePurgeSynchronously(h);
        }
        uwdf_object_release(qs[i]);
    }
}

/* D0 to Dx (target): suspend, hold the power-managed queues, D0 exit. A
 * failing exit callback is logged and the sequence goes on, as KMDF goes
 * on with a failed final power-down. */
static NTSTATUS device_power_down(struct uwdf_device *dev, WDF_POWER_DEVICE_STATE target)
{
    NTSTATUS result = CALL_STATUS(dev, EvtDeviceSelfManagedIoSuspend);
    if (!NT_SUCCESS(result))
        log_failure(dev, "EvtDeviceSelfManagedIoSuspend", result);
    queues_apply(dev, true, QA_STOP);
    NTSTATUS st = CALL_STATUS(dev, EvtDeviceD0ExitPreInterruptsDisabled, target);
    if (!NT_SUCCESS(st))
        log_failure(dev, "EvtDeviceD0ExitPreInterruptsDisabled", st);
    st = CALL_STATUS(dev, EvtDeviceD0Exit, target);
    if (!NT_SUCCESS(st))
        log_failure(dev, "EvtDeviceD0Exit", st);
    dev->pnp_in_d0 = false;
    return result;
}

/* After the device left D0 (or never reached it): release, purge, flush,
 * purge, cleanup (WDF's removal tail). smio: SelfManagedIoInit ran. */
static void device_release(struct uwdf_device *dev, bool smio)
{
    NTSTATUS st = CALL_STATUS(dev, EvtDeviceReleaseHardware, NULL);
    if (!NT_SUCCESS(st))
        log_failure(dev, "EvtDeviceReleaseHardware", st); /* ignored on removal, as KMDF */
    queues_apply(dev, true, QA_PURGE);
    if (smio)
        CALL_VOID(dev, EvtDeviceSelfManagedIoFlush);
    queues_apply(dev, false, QA_PURGE);
    if (smio)
        CALL_VOID(dev, EvtDeviceSelfManagedIoCleanup);
}

/* One device's start. On failure the device is unwound as WDF does and
 * marked removed; the caller removes the rest of the stack. */
static NTSTATUS device_start(struct uwdf_device *dev)
{
    struct uwdf_driver *prev = uwdf_driver_enter(dev->driver);
    pnp_state_set(dev, WdfDevStatePnpHardwareAvailable);
    NTSTATUS st = CALL_STATUS(dev, EvtDevicePrepareHardware, NULL, NULL);
    if (!NT_SUCCESS(st)) {
        log_failure(dev, "EvtDevicePrepareHardware", st);
        goto failed_off;
    }
    st = CALL_STATUS(dev, EvtDeviceD0Entry, WdfPowerDeviceD3Final);
    if (!NT_SUCCESS(st)) {
        log_failure(dev, "EvtDeviceD0Entry", st); /* no D0Exit for it */
        goto failed_off;
    }
    dev->pnp_in_d0 = true;
    st = CALL_STATUS(dev, EvtDeviceD0EntryPostInterruptsEnabled, WdfPowerDeviceD3Final);
    if (!NT_SUCCESS(st)) {
        log_failure(dev, "EvtDeviceD0EntryPostInterruptsEnabled", st);
        NTSTATUS x = CALL_STATUS(dev, EvtDeviceD0Exit, WdfPowerDeviceD3Final);
        if (!NT_SUCCESS(x))
            log_failure(dev, "EvtDeviceD0Exit", x);
        dev->pnp_in_d0 = false;
        goto failed_off;
    }
    queues_apply(dev, true, QA_START);
    st = CALL_STATUS(dev, EvtDeviceSelfManagedIoInit);
    if (!NT_SUCCESS(st)) {
        /* Not started: powered down without a suspend (nothing was
         * started to suspend), then WDF's removal tail with Flush and
         * Cleanup. */
        log_failure(dev, "EvtDeviceSelfManagedIoInit", st);
        pnp_state_set(dev, WdfDevStatePnpFailedOwnHardware);
        __atomic_store_n(&dev->pnp_removed, true, __ATOMIC_RELEASE);
        queues_apply(dev, true, QA_STOP);
        NTSTATUS x = CALL_STATUS(dev, EvtDeviceD0ExitPreInterruptsDisabled, WdfPowerDeviceD3Final);
        if (!NT_SUCCESS(x))
            log_failure(dev, "EvtDeviceD0ExitPreInterruptsDisabled", x);
        x = CALL_STATUS(dev, EvtDeviceD0Exit, WdfPowerDeviceD3Final);
        if (!NT_SUCCESS(x))
            log_failure(dev, "EvtDeviceD0Exit", x);
        dev->pnp_in_d0 = false;
        device_release(dev, true);
        uwdf_driver_enter(prev);
        return st;
    }
    dev->pnp_started = true;
    pnp_state_set(dev, WdfDevStatePnpStarted);
    uwdf_driver_enter(prev);
    return STATUS_SUCCESS;
failed_off:
    pnp_state_set(dev, WdfDevStatePnpFailedOwnHardware);
    __atomic_store_n(&dev->pnp_removed, true, __ATOMIC_RELEASE);
    device_release(dev, false);
    uwdf_driver_enter(prev);
    return st;
}

/* One started device's removal (orderly or surprise). */
static void device_remove(struct uwdf_device *dev, bool surprise)
{
    struct uwdf_driver *prev = uwdf_driver_enter(dev->driver);
    pnp_state_set(dev, surprise ? WdfDevStatePnpSurpriseRemoveIoStarted : WdfDevStatePnpQueriedRemoving);
    __atomic_store_n(&dev->pnp_removed, true, __ATOMIC_RELEASE);
    if (surprise)
        CALL_VOID(dev, EvtDeviceSurpriseRemoval);
    if (dev->pnp_in_d0)
        device_power_down(dev, WdfPowerDeviceD3Final);
    device_release(dev, true);
    dev->pnp_started = false;
    uwdf_driver_enter(prev);
}

/* The device leaves for good: its object tree is deleted (cleanup, then
 * destroy callbacks), which closes its local target. */
static void device_delete(struct uwdf_device *dev)
{
    struct uwdf_driver *prev = uwdf_driver_enter(dev->driver);
    pnp_state_set(dev, WdfDevStatePnpRemoved);
    dev->obj.no_delete = false;
    uwdf_object_delete(&dev->obj);
    uwdf_driver_enter(prev);
}

/* ---- devnodes ---- */

static bool devnode_valid_locked(struct uwdf_devnode *node)
{
    for (struct uwdf_devnode *n = devnodes; n; n = n->next)
        if (n == node)
            return true;
    return false;
}

static void devnode_unlist(struct uwdf_devnode *node)
{
    pthread_mutex_lock(&pnp_lock);
    for (struct uwdf_devnode **p = &devnodes; *p; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            break;
        }
    }
    pthread_mutex_unlock(&pnp_lock);
}

/* Remove every device top-down (each started one through its removal
 * sequence) and delete them; the devnode stays. */
static void devnode_remove_stack(struct uwdf_devnode *node, bool surprise)
{
    pthread_mutex_lock(&pnp_lock);
    node->started = false;
    pthread_mutex_unlock(&pnp_lock);
    uwdf_devinterface_remove(node);
    for (;;) {
        pthread_mutex_lock(&pnp_lock);
        struct uwdf_device *dev = node->top;
        pthread_mutex_unlock(&pnp_lock);
        if (!dev)
            break;
        if (dev->pnp_started)
            device_remove(dev, surprise);
        __atomic_store_n(&dev->pnp_removed, true, __ATOMIC_RELEASE);
        device_delete(dev); /* its dispose unlinks it: node->top moves down */
    }
}

static void devnode_free(struct uwdf_devnode *node)
{
    for (ULONG i = 0; i < node->nlower; i++)
        uwdf_free(node->lower[i]);
    for (ULONG i = 0; i < node->nupper; i++)
        uwdf_free(node->upper[i]);
    uwdf_free(node->lower);
    uwdf_free(node->upper);
    uwdf_free(node->function);
    uwdf_free(node->path);
    uwdf_free(node);
}

/* The stack removed, and the devnode unlisted and freed. */
static void devnode_teardown(struct uwdf_devnode *node, bool surprise)
{
    devnode_unlist(node);
    devnode_remove_stack(node, surprise);
    devnode_free(node);
}

static NTSTATUS add_device(struct uwdf_devnode *node, const char *driver_name, bool filter)
{
    struct uwdf_driver *d = uwdf_host_find_driver(driver_name);
    if (!d) {
        uwdf_log("%s: driver %s is not loaded", node->instance, driver_name);
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    NTSTATUS st = STATUS_SUCCESS;
    if (!d->config.EvtDriverDeviceAdd)
        goto out; /* a non-PnP driver adds nothing */
    PWDFDEVICE_INIT init = uwdf_device_init_alloc_pnp(d, node);
    if (!init) {
        st = STATUS_INSUFFICIENT_RESOURCES;
        goto out;
    }
    struct uwdf_device *top_before = node->top;
    struct uwdf_driver *prev = uwdf_driver_enter(d);
    st = d->config.EvtDriverDeviceAdd((WDFDRIVER)d->obj.handle, init);
    uwdf_driver_enter(prev);
    bool made = node->top != top_before; /* WdfDeviceCreate consumed init */
    bool set_filter = !made && uwdf_device_init_pnp(init)->filter;
    if (!made)
        WdfDeviceInitFree(init);
    if (made)
        node->top->wdm.Flags &= ~(ULONG)DO_DEVICE_INITIALIZING;
    if (!NT_SUCCESS(st) && (filter || set_filter) && !made) {
        /* A filter that fails without a device is left out (KMDF). */
        uwdf_log("%s: filter %s did not add a device (%s); the stack is built without it", node->instance,
                 driver_name, UwdfNtStatusName(st) ? UwdfNtStatusName(st) : "failure");
        st = STATUS_SUCCESS;
    }
out:
    uwdf_object_release(&d->obj);
    return st;
}

/* The stack from the devnode's copy of its description. */
static NTSTATUS devnode_build(struct uwdf_devnode *node)
{
    NTSTATUS st = STATUS_SUCCESS;
    for (ULONG i = 0; i < node->nlower && NT_SUCCESS(st); i++)
        st = add_device(node, node->lower[i], true);
    if (NT_SUCCESS(st))
        st = add_device(node, node->function, false);
    for (ULONG i = 0; i < node->nupper && NT_SUCCESS(st); i++)
        st = add_device(node, node->upper[i], true);
    if (NT_SUCCESS(st) && !node->top) {
        uwdf_log("%s: no driver added a device", node->instance);
        st = STATUS_NO_SUCH_DEVICE;
    }
    return st;
}

static char *str_copy(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = uwdf_alloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

static bool names_copy(PCSTR const *names, ULONG n, char ***out)
{
    *out = NULL;
    if (!n)
        return true;
    *out = uwdf_zalloc(n * sizeof(char *));
    if (!*out)
        return false;
    for (ULONG i = 0; i < n; i++)
        if (!((*out)[i] = str_copy(names[i])))
            return false;
    return true;
}

/* The description's strings into node (devnode_free frees what was copied). */
static NTSTATUS devnode_keep_description(struct uwdf_devnode *node, const UWDF_DEVICE_DESCRIPTION *d)
{
    bool ok = (!d->HardwarePath || (node->path = str_copy(d->HardwarePath))) &&
              (node->function = str_copy(d->FunctionDriver)) != NULL;
    ok = ok && names_copy(d->LowerFilters, d->LowerFilterCount, &node->lower);
    node->nlower = node->lower ? d->LowerFilterCount : 0;
    ok = ok && names_copy(d->UpperFilters, d->UpperFilterCount, &node->upper);
    node->nupper = node->upper ? d->UpperFilterCount : 0;
    return ok ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

/* Start bottom-up. A device that fails unwinds itself; the devices below
 * it are removed in order; all are deleted. */
static NTSTATUS devnode_start(struct uwdf_devnode *node)
{
    for (struct uwdf_device *dev = node->bottom; dev; dev = dev->pnp_above) {
        NTSTATUS st = device_start(dev);
        if (!NT_SUCCESS(st))
            return st;
    }
    pthread_mutex_lock(&pnp_lock);
    node->started = true;
    pthread_mutex_unlock(&pnp_lock);
    node->power = WdfPowerDeviceD0;
    uwdf_devinterface_start(node);
    return STATUS_SUCCESS;
}

static bool description_valid(const UWDF_DEVICE_DESCRIPTION *d)
{
    if (!d->HardwareId || !*d->HardwareId || !d->FunctionDriver || strlen(d->HardwareId) > 64)
        return false;
    if ((d->LowerFilterCount && !d->LowerFilters) || (d->UpperFilterCount && !d->UpperFilters))
        return false;
    for (ULONG i = 0; i < d->LowerFilterCount; i++)
        if (!d->LowerFilters[i])
            return false;
    for (ULONG i = 0; i < d->UpperFilterCount; i++)
        if (!d->UpperFilters[i])
            return false;
    return true;
}

NTSTATUS UwdfDeviceArrive(const UWDF_DEVICE_DESCRIPTION *Description, UWDF_DEVNODE *DevNode)
{
    if (DevNode)
        *DevNode = NULL;
    if (!Description || !DevNode)
        return STATUS_INVALID_PARAMETER;
    if (Description->Size != sizeof(UWDF_DEVICE_DESCRIPTION))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (!description_valid(Description))
        return STATUS_INVALID_PARAMETER;
    if (!uwdf_irql_check_passive("UwdfDeviceArrive"))
        return STATUS_INVALID_DEVICE_REQUEST;
    struct uwdf_devnode *node = uwdf_zalloc(sizeof(*node));
    if (!node)
        return STATUS_INSUFFICIENT_RESOURCES;
    NTSTATUS st = devnode_keep_description(node, Description);
    if (!NT_SUCCESS(st)) {
        devnode_free(node);
        return st;
    }
    pnp_op_begin();
    pthread_mutex_lock(&pnp_lock);
    unsigned serial = devnode_serial++;
    node->serial = serial;
    node->next = devnodes;
    devnodes = node;
    pthread_mutex_unlock(&pnp_lock);
    /* The instance path names the devnode in interface links: the
     * hardware ID with '\' as '#', as Windows builds them. */
    snprintf(node->instance, sizeof(node->instance), "UWDF\\%s\\%04u", Description->HardwareId, serial);
    for (char *p = node->instance + 5; *p; p++)
        if (*p == '/')
            *p = '#';
    st = devnode_build(node);
    if (NT_SUCCESS(st))
        st = devnode_start(node);
    if (!NT_SUCCESS(st)) {
        devnode_teardown(node, false);
        pnp_op_end();
        return st;
    }
    pnp_op_end();
    *DevNode = (UWDF_DEVNODE)node;
    return STATUS_SUCCESS;
}

/* Begins a PnP operation on a valid devnode; NULL (nothing begun) if it
 * is not one. */
static struct uwdf_devnode *devnode_begin(UWDF_DEVNODE DevNode, const char *api)
{
    if (!uwdf_irql_check_passive(api))
        return NULL;
    pnp_op_begin();
    pthread_mutex_lock(&pnp_lock);
    bool valid = DevNode && devnode_valid_locked((struct uwdf_devnode *)DevNode);
    pthread_mutex_unlock(&pnp_lock);
    if (!valid) {
        pnp_op_end();
        uwdf_log("%s: %p is not a devnode", api, (void *)DevNode);
        return NULL;
    }
    return (struct uwdf_devnode *)DevNode;
}

NTSTATUS UwdfDeviceRemove(UWDF_DEVNODE DevNode)
{
    struct uwdf_devnode *node = devnode_begin(DevNode, "UwdfDeviceRemove");
    if (!node)
        return STATUS_INVALID_HANDLE;
    for (struct uwdf_device *dev = node->top; dev; dev = dev->pnp_below) {
        struct uwdf_driver *prev = uwdf_driver_enter(dev->driver);
        pnp_state_set(dev, WdfDevStatePnpQueryRemoveAskDriver);
        NTSTATUS st = CALL_STATUS(dev, EvtDeviceQueryRemove);
        pnp_state_set(dev, WdfDevStatePnpQueryRemovePending);
        uwdf_driver_enter(prev);
        if (!NT_SUCCESS(st)) {
            log_failure(dev, "EvtDeviceQueryRemove (a veto)", st);
            /* the removal is cancelled: every device asked is started again */
            for (struct uwdf_device *d = node->top; d; d = d == dev ? NULL : d->pnp_below)
                pnp_state_set(d, WdfDevStatePnpStarted);
            pnp_op_end();
            return st;
        }
    }
    devnode_teardown(node, false);
    pnp_op_end();
    return STATUS_SUCCESS;
}

NTSTATUS UwdfDeviceSurpriseRemove(UWDF_DEVNODE DevNode)
{
    struct uwdf_devnode *node = devnode_begin(DevNode, "UwdfDeviceSurpriseRemove");
    if (!node)
        return STATUS_INVALID_HANDLE;
    devnode_teardown(node, true);
    pnp_op_end();
    return STATUS_SUCCESS;
}

static NTSTATUS devnode_power_down(struct uwdf_devnode *node, WDF_POWER_DEVICE_STATE target)
{
    NTSTATUS result = STATUS_SUCCESS;
    for (struct uwdf_device *dev = node->top; dev; dev = dev->pnp_below) {
        struct uwdf_driver *prev = uwdf_driver_enter(dev->driver);
        NTSTATUS st = device_power_down(dev, target);
        uwdf_driver_enter(prev);
        if (!NT_SUCCESS(st) && NT_SUCCESS(result))
            result = st;
    }
    node->power = target;
    return result;
}

static NTSTATUS devnode_power_up(struct uwdf_devnode *node)
{
    WDF_POWER_DEVICE_STATE from = node->power;
    for (struct uwdf_device *dev = node->bottom; dev; dev = dev->pnp_above) {
        struct uwdf_driver *prev = uwdf_driver_enter(dev->driver);
        NTSTATUS st = CALL_STATUS(dev, EvtDeviceD0Entry, from);
        if (NT_SUCCESS(st)) {
            dev->pnp_in_d0 = true;
            st = CALL_STATUS(dev, EvtDeviceD0EntryPostInterruptsEnabled, from);
            if (!NT_SUCCESS(st))
                log_failure(dev, "EvtDeviceD0EntryPostInterruptsEnabled", st);
        } else {
            log_failure(dev, "EvtDeviceD0Entry", st);
        }
        if (NT_SUCCESS(st)) {
            queues_apply(dev, true, QA_START);
            st = CALL_STATUS(dev, EvtDeviceSelfManagedIoRestart);
            if (!NT_SUCCESS(st))
                log_failure(dev, "EvtDeviceSelfManagedIoRestart", st);
        }
        uwdf_driver_enter(prev);
        if (!NT_SUCCESS(st))
            return st;
    }
    node->power = WdfPowerDeviceD0;
    return STATUS_SUCCESS;
}

NTSTATUS UwdfDeviceSetPowerState(UWDF_DEVNODE DevNode, WDF_POWER_DEVICE_STATE State)
{
    if (State != WdfPowerDeviceD0 && State != WdfPowerDeviceD1 && State != WdfPowerDeviceD2 &&
        State != WdfPowerDeviceD3)
        return STATUS_INVALID_PARAMETER;
    struct uwdf_devnode *node = devnode_begin(DevNode, "UwdfDeviceSetPowerState");
    if (!node)
        return STATUS_INVALID_HANDLE;
    NTSTATUS st = STATUS_SUCCESS;
    if (node->failed)
        st = STATUS_INVALID_DEVICE_STATE; /* no stack to power */
    else if (State == node->power)
        ; /* there already */
    else if (State == WdfPowerDeviceD0)
        st = devnode_power_up(node);
    else if (node->power != WdfPowerDeviceD0)
        st = STATUS_INVALID_DEVICE_STATE;
    else
        st = devnode_power_down(node, State);
    if (!NT_SUCCESS(st) && st != STATUS_INVALID_DEVICE_STATE) {
        /* WDF surprise-removes a device whose power transition failed. */
        devnode_teardown(node, true);
    }
    pnp_op_end();
    return st;
}

WDFDEVICE UwdfDevNodeGetDevice(UWDF_DEVNODE DevNode, PCSTR DriverName)
{
    WDFDEVICE found = NULL;
    struct uwdf_driver *named = DriverName ? uwdf_host_find_driver(DriverName) : NULL;
    if (DriverName && !named)
        return NULL;
    pthread_mutex_lock(&pnp_lock);
    struct uwdf_devnode *node = (struct uwdf_devnode *)DevNode;
    if (node && devnode_valid_locked(node))
        for (struct uwdf_device *dev = node->top; dev && !found; dev = dev->pnp_below)
            if (!named || dev->driver == named)
                found = DEV_HANDLE(dev);
    pthread_mutex_unlock(&pnp_lock);
    if (named)
        uwdf_object_release(&named->obj);
    return found;
}

void uwdf_pnp_remove_driver_devnodes(struct uwdf_driver *d)
{
    pnp_op_begin();
    for (;;) {
        struct uwdf_devnode *victim = NULL;
        pthread_mutex_lock(&pnp_lock);
        for (struct uwdf_devnode *n = devnodes; n && !victim; n = n->next)
            for (struct uwdf_device *dev = n->top; dev && !victim; dev = dev->pnp_below)
                if (dev->driver == d)
                    victim = n;
        pthread_mutex_unlock(&pnp_lock);
        if (!victim)
            break;
        devnode_teardown(victim, false);
    }
    pnp_op_end();
}

/* ---- device state and failure ---- */

WDF_DEVICE_PNP_STATE WdfDeviceGetDevicePnpState(WDFDEVICE Device)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceGetDevicePnpState");
    return dev ? (WDF_DEVICE_PNP_STATE)__atomic_load_n(&dev->pnp_state, __ATOMIC_ACQUIRE) : WdfDevStatePnpInvalid;
}

/* The removal WdfDeviceSetFailed queues: it names its devnode by address
 * and serial, and runs only if that devnode is still listed. */
struct fail_work {
    struct uwdf_deferred d;
    struct uwdf_devnode *node;
    unsigned serial;
};

static void fail_work_done(struct uwdf_deferred *d)
{
    uwdf_free(uwdf_container_of(d, struct fail_work, d));
}

static void fail_work_run(struct uwdf_deferred *d)
{
    struct fail_work *w = uwdf_container_of(d, struct fail_work, d);
    pnp_op_begin();
    pthread_mutex_lock(&pnp_lock);
    struct uwdf_devnode *node = w->node;
    bool valid = devnode_valid_locked(node) && node->serial == w->serial && !node->failed;
    WDF_DEVICE_FAILED_ACTION action = valid ? node->fail_action : WdfDeviceFailedUndefined;
    if (valid)
        node->fail_queued = false;
    pthread_mutex_unlock(&pnp_lock);
    if (valid) {
        uwdf_log("%s: a driver reported the device failed: surprise removal%s", node->instance,
                 action == WdfDeviceFailedAttemptRestart ? ", then a restart" : "");
        devnode_remove_stack(node, true);
        NTSTATUS st = STATUS_UNSUCCESSFUL;
        if (action == WdfDeviceFailedAttemptRestart) {
            st = devnode_build(node);
            if (NT_SUCCESS(st))
                st = devnode_start(node);
            if (!NT_SUCCESS(st)) {
                uwdf_log("%s: the restart failed (0x%08X): the devnode stays failed", node->instance,
                         (unsigned)st);
                devnode_remove_stack(node, false);
            }
        }
        pthread_mutex_lock(&pnp_lock); /* WdfDeviceSetFailed reads it under the lock */
        node->failed = !NT_SUCCESS(st);
        pthread_mutex_unlock(&pnp_lock);
    }
    pnp_op_end();
}

VOID WdfDeviceSetFailed(WDFDEVICE Device, WDF_DEVICE_FAILED_ACTION FailedAction)
{
    struct uwdf_device *dev = (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceSetFailed");
    if (!dev)
        return;
    if (FailedAction != WdfDeviceFailedAttemptRestart && FailedAction != WdfDeviceFailedNoRestart) {
        init_misuse(Device, "WdfDeviceSetFailed: FailedAction is neither AttemptRestart nor NoRestart");
        return;
    }
    struct uwdf_devnode *node = dev->pnp.devnode;
    if (!node) {
        init_misuse(Device, "WdfDeviceSetFailed: a control device has no PnP state to fail");
        return;
    }
    struct fail_work *w = uwdf_zalloc(sizeof(*w));
    if (!w || uwdf_deferred_prepare(UWDF_DEFER_PASSIVE) != 0) {
        uwdf_free(w);
        uwdf_log("%s: WdfDeviceSetFailed: no memory or worker thread for the removal", node->instance);
        return;
    }
    pthread_mutex_lock(&pnp_lock);
    /* The devnode outlives its devices (devnode_teardown frees it after
     * deleting them), so it is still there while the caller's device is. */
    bool queue = !node->fail_queued && !node->failed;
    if (!node->fail_queued || FailedAction == WdfDeviceFailedNoRestart)
        node->fail_action = FailedAction;
    node->fail_queued = true;
    w->node = node;
    w->serial = node->serial;
    pthread_mutex_unlock(&pnp_lock);
    if (!queue) {
        uwdf_free(w);
        return;
    }
    uwdf_deferred_init(&w->d, UWDF_DEFER_PASSIVE, fail_work_run, fail_work_done);
    uwdf_deferred_queue(&w->d);
}

/* ---- shutdown ---- */

static void shutdown_pass(UCHAR flag)
{
    struct uwdf_object *devs[256];
    size_t n = 0;
    pthread_mutex_lock(&pnp_lock);
    for (struct uwdf_device *dev = all_devices; dev && n < RTL_NUMBER_OF(devs); dev = dev->all_next) {
        if (dev->pnp.shutdown && (dev->pnp.shutdown_flags & flag) &&
            atomic_load(&dev->obj.state) == UWDF_OBJECT_ALIVE) {
            uwdf_object_reference(&dev->obj);
            devs[n++] = &dev->obj;
        }
    }
    pthread_mutex_unlock(&pnp_lock);
    for (size_t i = 0; i < n; i++) {
        struct uwdf_device *dev = (struct uwdf_device *)devs[i];
        struct uwdf_driver *prev = uwdf_driver_enter(dev->driver);
        dev->pnp.shutdown(DEV_HANDLE(dev));
        uwdf_driver_enter(prev);
        uwdf_object_release(devs[i]);
    }
}

VOID UwdfSystemShutdown(void)
{
    if (!uwdf_irql_check_passive("UwdfSystemShutdown"))
        return;
    shutdown_pass(WdfDeviceShutdown);
    shutdown_pass(WdfDeviceLastChanceShutdown);
}
