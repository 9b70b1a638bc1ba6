/* WDFDRIVER: the root object. Deleting it is the port's driver unload.
 * Several drivers live in one process: each DRIVER_OBJECT the host made
 * (lib/driver_load.c) or a caller passed has its own WDFDRIVER, and one
 * driver at a time may be made without a DRIVER_OBJECT (the bootstrap
 * form, WdfDriverCreate(NULL, NULL, ...)). */
#include "runtime.h"
#include "device.h"
#include "object.h"

static pthread_mutex_t driver_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uwdf_driver *drivers; /* live, oldest first */
static struct uwdf_driver *bootstrap_driver;
static __thread struct uwdf_driver *tls_driver;
static __thread PDRIVER_OBJECT tls_loading; /* the host's DriverEntry call on this thread */
static const WCHAR driver_default_name[] = L"\\Driver\\uwdf";

struct uwdf_driver *uwdf_driver_enter(struct uwdf_driver *d)
{
    struct uwdf_driver *old = tls_driver;
    tls_driver = d;
    return old;
}

/* Which driver a driver-wide call means when the call names none
 * (WdfGetDriver, objects whose default parent is the driver): the one
 * whose callback runs on this thread; else the bootstrap driver; else the
 * oldest live driver. Caller holds driver_lock. */
static struct uwdf_driver *driver_calling_locked(void)
{
    if (tls_driver && atomic_load(&tls_driver->obj.state) == UWDF_OBJECT_ALIVE)
        return tls_driver;
    return bootstrap_driver ? bootstrap_driver : drivers;
}

PDRIVER_OBJECT uwdf_driver_loading(PDRIVER_OBJECT wdm)
{
    PDRIVER_OBJECT old = tls_loading;
    tls_loading = wdm;
    return old;
}

struct uwdf_object *uwdf_driver_default_parent(void)
{
    pthread_mutex_lock(&driver_lock);
    struct uwdf_driver *d = driver_calling_locked();
    pthread_mutex_unlock(&driver_lock);
    return d ? &d->obj : NULL;
}

struct uwdf_driver *uwdf_driver_from_wdm(PDRIVER_OBJECT wdm)
{
    struct uwdf_driver *found = NULL;
    pthread_mutex_lock(&driver_lock);
    for (struct uwdf_driver *d = drivers; d && !found; d = d->next)
        if (d->wdm_ptr == wdm)
            found = d;
    if (found)
        uwdf_object_reference(&found->obj);
    pthread_mutex_unlock(&driver_lock);
    return found;
}

bool uwdf_driver_alive(const struct uwdf_driver *d)
{
    bool alive = false;
    pthread_mutex_lock(&driver_lock);
    for (struct uwdf_driver *x = drivers; x && !alive; x = x->next)
        alive = x == d;
    pthread_mutex_unlock(&driver_lock);
    return alive;
}

static void driver_dispose(struct uwdf_object *obj)
{
    struct uwdf_driver *d = (struct uwdf_driver *)obj;
    if (d->config.EvtDriverUnload && !d->unload_called)
        d->config.EvtDriverUnload((WDFDRIVER)obj->handle);
    pthread_mutex_lock(&driver_lock);
    for (struct uwdf_driver **p = &drivers; *p; p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            break;
        }
    }
    if (bootstrap_driver == d)
        bootstrap_driver = NULL;
    pthread_mutex_unlock(&driver_lock);
}

/* After EvtCleanupCallback and EvtDestroyCallback, which may still read it. */
static void driver_destroy(struct uwdf_object *obj)
{
    struct uwdf_driver *d = (struct uwdf_driver *)obj;
    uwdf_free(d->registry_path);
    if (d->destroyed)
        d->destroyed(d->destroyed_ctx);
}

static const struct uwdf_object_ops driver_ops = { .dispose = driver_dispose, .destroy = driver_destroy };

NTSTATUS WdfDriverCreate(PDRIVER_OBJECT DriverObject, PCUNICODE_STRING RegistryPath,
                         PWDF_OBJECT_ATTRIBUTES DriverAttributes, PWDF_DRIVER_CONFIG DriverConfig,
                         WDFDRIVER *Driver)
{
    struct uwdf_object *obj;
    UWDF_REQUIRE_PARAM(DriverConfig, "WdfDriverCreate", STATUS_INVALID_PARAMETER);
    if (!uwdf_irql_check_passive("WdfDriverCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (DriverConfig->Size != sizeof(WDF_DRIVER_CONFIG))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (DriverAttributes && DriverAttributes->ParentObject)
        return STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED;

    /* WdfDriverGetRegistryPath's copy: the caller's lasts only as long as
     * DriverEntry. */
    PWSTR registry_path = NULL;
    if (RegistryPath && RegistryPath->Buffer) {
        size_t chars = RegistryPath->Length / sizeof(WCHAR);
        registry_path = uwdf_alloc((chars + 1) * sizeof(WCHAR));
        if (!registry_path)
            return STATUS_INSUFFICIENT_RESOURCES;
        memcpy(registry_path, RegistryPath->Buffer, chars * sizeof(WCHAR));
        registry_path[chars] = 0;
    }
    pthread_mutex_lock(&driver_lock);
    if (!DriverObject && bootstrap_driver) {
        pthread_mutex_unlock(&driver_lock);
        uwdf_free(registry_path);
        return STATUS_INVALID_DEVICE_STATE; /* one bootstrap driver at a time */
    }
    for (struct uwdf_driver *x = drivers; DriverObject && x; x = x->next) {
        if (x->wdm_ptr == DriverObject) {
            pthread_mutex_unlock(&driver_lock);
            uwdf_free(registry_path);
            return STATUS_DRIVER_INTERNAL_ERROR; /* KMDF: a second call for one driver */
        }
    }
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_driver), UWDF_OBJ_DRIVER, &driver_ops,
                                         DriverAttributes, NULL, 0, &obj);
    if (!NT_SUCCESS(status)) {
        pthread_mutex_unlock(&driver_lock);
        uwdf_free(registry_path);
        return status;
    }
    struct uwdf_driver *d = (struct uwdf_driver *)obj;
    d->config = *DriverConfig;
    d->registry_path = registry_path;
    d->wdm.Type = 4; /* IO_TYPE_DRIVER */
    d->wdm.Size = sizeof(DRIVER_OBJECT);
    RtlInitUnicodeString(&d->wdm.DriverName, driver_default_name);
    /* A caller's DRIVER_OBJECT stays the one the framework hands out, as
     * FltRegisterFilter and WDM code compare it by address. */
    d->wdm_ptr = DriverObject ? DriverObject : &d->wdm;
    d->wdm_ptr->DriverExtension = obj->handle;
    struct uwdf_driver **tail = &drivers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = d;
    if (!DriverObject)
        bootstrap_driver = d;
    if (DriverObject && DriverObject == tls_loading)
        tls_driver = d; /* the rest of its DriverEntry is its callback */
    pthread_mutex_unlock(&driver_lock);
    if (Driver)
        *Driver = (WDFDRIVER)obj->handle;
    return STATUS_SUCCESS;
}

PDRIVER_OBJECT WdfDriverWdmGetDriverObject(WDFDRIVER Driver)
{
    struct uwdf_object *obj = uwdf_object_lookup(Driver, UWDF_OBJ_DRIVER, "WdfDriverWdmGetDriverObject");
    return obj ? ((struct uwdf_driver *)obj)->wdm_ptr : NULL;
}

PWSTR WdfDriverGetRegistryPath(WDFDRIVER Driver)
{
    struct uwdf_object *obj = uwdf_object_lookup(Driver, UWDF_OBJ_DRIVER, "WdfDriverGetRegistryPath");
    return obj ? ((struct uwdf_driver *)obj)->registry_path : NULL;
}

WDFDRIVER WdfGetDriver(void)
{
    struct uwdf_object *obj = uwdf_driver_default_parent();
    return obj ? (WDFDRIVER)obj->handle : NULL;
}
