/* WDFDEVICE: control devices created from a WDFDEVICE_INIT, their NT names
 * and symbolic links (what WdfIoTargetOpen resolves \\Device\\ names to), and
 * each device's local I/O target. */
#include "runtime.h"
#include "device.h"
#include "iotarget.h"
#include "object.h"

#include <strings.h>

/* Device objects need one stack location for the framework's own use when
 * they forward to a file target. */
#define UWDF_DEVICE_STACK_SIZE 2

struct WDFDEVICE_INIT {
    struct uwdf_driver *driver;
    bool control;
    WDF_DEVICE_IO_TYPE io_type;
    char *name;
    bool has_request_attrs;
    WDF_OBJECT_ATTRIBUTES request_attrs;
    struct uwdf_device_files files;
    struct uwdf_pnp_init pnp; /* lib/pnp.c */
};

/* The NT namespace of this process: devices by name and symbolic link. */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uwdf_device *named_devices;

/* Object names compare case-insensitively, as the object manager does. */
static bool name_equal(const char *a, const char *b)
{
    return a && b && strcasecmp(a, b) == 0;
}

/* \DosDevices\X, \??\X and \GLOBAL??\X are one name. */
static const char *dos_name_tail(const char *name)
{
    static const char *const prefixes[] = { "\\DosDevices\\Global\\", "\\DosDevices\\", "\\??\\",
                                            "\\GLOBAL??\\" };
    for (size_t i = 0; i < RTL_NUMBER_OF(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncasecmp(name, prefixes[i], n) == 0)
            return name + n;
    }
    return NULL;
}

const char *uwdf_device_dos_name_tail(const char *name)
{
    return dos_name_tail(name);
}

struct uwdf_device *uwdf_device_lookup_name(const char *name)
{
    const char *tail = dos_name_tail(name);
    struct uwdf_device *found = NULL;
    pthread_mutex_lock(&names_lock);
    for (struct uwdf_device *d = named_devices; d && !found; d = d->name_next) {
        if (tail ? (d->symlink && name_equal(dos_name_tail(d->symlink), tail)) : name_equal(d->name, name))
            found = d;
    }
    if (found)
        uwdf_object_reference(&found->obj);
    pthread_mutex_unlock(&names_lock);
    /* A device in a PnP stack opens at the top of its stack; an interface's
     * link opens its device's stack. */
    return found ? uwdf_pnp_open_redirect(found) : uwdf_devinterface_lookup(name);
}

static bool name_taken_locked(const char *name)
{
    const char *tail = dos_name_tail(name);
    for (struct uwdf_device *d = named_devices; d; d = d->name_next) {
        if (tail ? (d->symlink && name_equal(dos_name_tail(d->symlink), tail)) : name_equal(d->name, name))
            return true;
    }
    return false;
}

static void names_unlink(struct uwdf_device *dev)
{
    pthread_mutex_lock(&names_lock);
    for (struct uwdf_device **p = &named_devices; *p; p = &(*p)->name_next) {
        if (*p == dev) {
            *p = dev->name_next;
            break;
        }
    }
    pthread_mutex_unlock(&names_lock);
}

PWDFDEVICE_INIT WdfControlDeviceInitAllocate(WDFDRIVER Driver, const UNICODE_STRING *SDDLString)
{
    struct uwdf_object *obj = uwdf_object_lookup(Driver, UWDF_OBJ_DRIVER, "WdfControlDeviceInitAllocate");
    UWDF_REQUIRE_PARAM(SDDLString, "WdfControlDeviceInitAllocate", NULL);
    if (!obj || !uwdf_irql_check_passive("WdfControlDeviceInitAllocate"))
        return NULL;
    struct WDFDEVICE_INIT *init = uwdf_zalloc(sizeof(*init));
    if (!init)
        return NULL;
    init->driver = (struct uwdf_driver *)obj;
    init->control = true;
    init->io_type = WdfDeviceIoBuffered;
    return init;
}

PWDFDEVICE_INIT uwdf_device_init_alloc_pnp(struct uwdf_driver *d, struct uwdf_devnode *devnode)
{
    struct WDFDEVICE_INIT *init = uwdf_zalloc(sizeof(*init));
    if (!init)
        return NULL;
    init->driver = d;
    init->io_type = WdfDeviceIoBuffered;
    init->pnp.devnode = devnode;
    return init;
}

struct uwdf_pnp_init *uwdf_device_init_pnp(PWDFDEVICE_INIT init)
{
    return &init->pnp;
}

VOID WdfDeviceInitFree(PWDFDEVICE_INIT DeviceInit)
{
    if (!DeviceInit)
        return;
    uwdf_free(DeviceInit->name);
    uwdf_free(DeviceInit);
}

NTSTATUS WdfDeviceInitAssignName(PWDFDEVICE_INIT DeviceInit, PCUNICODE_STRING DeviceName)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitAssignName", STATUS_INVALID_PARAMETER);
    if (!DeviceName) {
        /* NULL clears a name assigned before. */
        uwdf_free(DeviceInit->name);
        DeviceInit->name = NULL;
        return STATUS_SUCCESS;
    }
    if (!DeviceName->Buffer || DeviceName->Length == 0)
        return STATUS_INVALID_PARAMETER;
    char *name = uwdf_unicode_to_utf8(DeviceName);
    if (!name)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (strncasecmp(name, "\\Device\\", 8) != 0 || name[8] == '\0') {
        uwdf_free(name);
        return STATUS_OBJECT_NAME_INVALID; /* device names live under \Device */
    }
    uwdf_free(DeviceInit->name);
    DeviceInit->name = name;
    return STATUS_SUCCESS;
}

VOID WdfDeviceInitSetRequestAttributes(PWDFDEVICE_INIT DeviceInit, PWDF_OBJECT_ATTRIBUTES RequestAttributes)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitSetRequestAttributes", );
    UWDF_REQUIRE_PARAM(RequestAttributes, "WdfDeviceInitSetRequestAttributes", );
    if (RequestAttributes->ParentObject) {
        uwdf_bugcheck(WDF_OBJECT_ERROR, (ULONG_PTR)RequestAttributes, 0, 0,
                      "WdfDeviceInitSetRequestAttributes: request attributes cannot have a ParentObject");
        return;
    }
    DeviceInit->request_attrs = *RequestAttributes;
    DeviceInit->has_request_attrs = true;
}

VOID WdfDeviceInitSetIoType(PWDFDEVICE_INIT DeviceInit, WDF_DEVICE_IO_TYPE IoType)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitSetIoType", );
    if (IoType <= WdfDeviceIoUndefined || IoType >= WdfDeviceIoMaximum)
        return;
    DeviceInit->io_type = IoType;
}

struct uwdf_device_files *uwdf_device_init_files(PWDFDEVICE_INIT init)
{
    return &init->files;
}

static void device_dispose(struct uwdf_object *obj)
{
    struct uwdf_device *dev = (struct uwdf_device *)obj;
    /* The queues (children) are gone already; no new opens by name. */
    if (dev->name)
        names_unlink(dev);
    uwdf_pnp_device_disposed(dev);
}

static void device_destroy(struct uwdf_object *obj)
{
    struct uwdf_device *dev = (struct uwdf_device *)obj;
    uwdf_free(dev->name);
    uwdf_free(dev->symlink);
    pthread_mutex_destroy(&dev->queues_lock);
    pthread_mutex_destroy(&dev->quiesce_lock);
    uwdf_biased_lock_destroy(&dev->queue_lookup_bias);
    pthread_mutex_destroy(&dev->sync_lock);
}

static const struct uwdf_object_ops device_ops = {
    .dispose = device_dispose,
    .destroy = device_destroy,
};

NTSTATUS WdfDeviceCreate(PWDFDEVICE_INIT *DeviceInit, PWDF_OBJECT_ATTRIBUTES DeviceAttributes,
                         WDFDEVICE *Device)
{
    struct uwdf_object *obj;
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceCreate", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(*DeviceInit, "WdfDeviceCreate", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(Device, "WdfDeviceCreate", STATUS_INVALID_PARAMETER);
    if (!uwdf_irql_check_passive("WdfDeviceCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    struct WDFDEVICE_INIT *init = *DeviceInit;
    if (init->has_request_attrs) {
        NTSTATUS st = uwdf_attributes_validate(&init->request_attrs, UWDF_ATTR_PARENT_NOT_ALLOWED);
        if (!NT_SUCCESS(st))
            return st;
    }
    if (init->name) {
        pthread_mutex_lock(&names_lock);
        bool taken = name_taken_locked(init->name);
        pthread_mutex_unlock(&names_lock);
        if (taken)
            return STATUS_OBJECT_NAME_COLLISION;
    }
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_device), UWDF_OBJ_DEVICE, &device_ops,
                                         DeviceAttributes, &init->driver->obj,
                                         UWDF_ATTR_PARENT_NOT_ALLOWED, &obj);
    if (!NT_SUCCESS(status))
        return status; /* on failure the caller still owns DeviceInit */
    struct uwdf_device *dev = (struct uwdf_device *)obj;
    dev->driver = init->driver;
    dev->control = init->control;
    dev->io_type = init->io_type;
    dev->wdm.Type = 3; /* IO_TYPE_DEVICE */
    dev->wdm.Size = sizeof(DEVICE_OBJECT);
    dev->wdm.DriverObject = init->driver->wdm_ptr;
    dev->wdm.StackSize = UWDF_DEVICE_STACK_SIZE;
    dev->wdm.Flags = DO_DEVICE_INITIALIZING | (init->io_type == WdfDeviceIoDirect    ? DO_DIRECT_IO
                                               : init->io_type == WdfDeviceIoNeither ? 0
                                                                                     : DO_BUFFERED_IO);
    dev->wdm.DeviceExtension = obj->handle;
    pthread_mutex_init(&dev->queues_lock, NULL);
    pthread_mutex_init(&dev->quiesce_lock, NULL);
    uwdf_biased_lock_init_unbiased(&dev->queue_lookup_bias);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&dev->sync_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    dev->has_request_attrs = init->has_request_attrs;
    dev->request_attrs = init->request_attrs;
    dev->files = init->files;
    /* The local I/O target: WdfIoTargetOpen on it attaches the device on
     * top of a file, a block device or another in-process device. */
    WDFIOTARGET local;
    status = WdfIoTargetCreate((WDFDEVICE)obj->handle, WDF_NO_OBJECT_ATTRIBUTES, &local);
    if (!NT_SUCCESS(status)) {
        uwdf_object_delete(obj);
        return status;
    }
    dev->local_target = uwdf_iotarget_lookup(local, "WdfDeviceCreate");
    dev->local_target->obj.no_delete = true;
    dev->pnp = init->pnp;
    status = uwdf_pnp_device_created(dev);
    if (!NT_SUCCESS(status)) {
        uwdf_object_delete_failed_create(obj); /* no driver callbacks, as KMDF */
        return status;
    }
    if (init->name) {
        pthread_mutex_lock(&names_lock);
        if (name_taken_locked(init->name)) {
            pthread_mutex_unlock(&names_lock);
            uwdf_object_delete(obj);
            return STATUS_OBJECT_NAME_COLLISION;
        }
        dev->name = init->name;
        init->name = NULL;
        dev->name_next = named_devices;
        named_devices = dev;
        pthread_mutex_unlock(&names_lock);
    }
    uwdf_free(init);
    *DeviceInit = NULL;
    *Device = (WDFDEVICE)obj->handle;
    return STATUS_SUCCESS;
}

VOID WdfControlFinishInitializing(WDFDEVICE Device)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfControlFinishInitializing");
    if (!dev)
        return;
    dev->finished_initializing = true;
    dev->wdm.Flags &= ~(ULONG)DO_DEVICE_INITIALIZING;
}

PDEVICE_OBJECT WdfDeviceWdmGetDeviceObject(WDFDEVICE Device)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceWdmGetDeviceObject");
    return dev ? &dev->wdm : NULL;
}

WDFDRIVER WdfDeviceGetDriver(WDFDEVICE Device)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceGetDriver");
    return dev ? (WDFDRIVER)dev->driver->obj.handle : NULL;
}

NTSTATUS WdfDeviceCreateSymbolicLink(WDFDEVICE Device, PCUNICODE_STRING SymbolicLinkName)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceCreateSymbolicLink");
    UWDF_REQUIRE_PARAM(SymbolicLinkName, "WdfDeviceCreateSymbolicLink", STATUS_INVALID_PARAMETER);
    if (!dev)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive("WdfDeviceCreateSymbolicLink"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!SymbolicLinkName->Buffer || SymbolicLinkName->Length == 0)
        return STATUS_INVALID_PARAMETER;
    if (!dev->name)
        return STATUS_INVALID_DEVICE_REQUEST; /* a link needs a named device */
    char *link = uwdf_unicode_to_utf8(SymbolicLinkName);
    if (!link)
        return STATUS_INSUFFICIENT_RESOURCES;
    const char *tail = dos_name_tail(link);
    if (!tail || !*tail) {
        uwdf_free(link);
        return STATUS_OBJECT_NAME_INVALID;
    }
    pthread_mutex_lock(&names_lock);
    NTSTATUS status = STATUS_SUCCESS;
    if (dev->symlink)
        status = STATUS_INVALID_DEVICE_REQUEST; /* one link per device */
    else if (name_taken_locked(link))
        status = STATUS_OBJECT_NAME_COLLISION;
    else {
        dev->symlink = link;
        link = NULL;
    }
    pthread_mutex_unlock(&names_lock);
    uwdf_free(link);
    return status;
}

WDFIOTARGET WdfDeviceGetIoTarget(WDFDEVICE Device)
{
    struct uwdf_device *dev =
        (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, "WdfDeviceGetIoTarget");
    return dev ? (WDFIOTARGET)dev->local_target->obj.handle : NULL;
}
