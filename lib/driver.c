/* WDFDRIVER: the root object. Deleting it is the port's driver unload. */
#include "runtime.h"
#include "device.h"
#include "object.h"

struct uwdf_driver *uwdf_current_driver;
static pthread_mutex_t driver_lock = PTHREAD_MUTEX_INITIALIZER;
static const WCHAR driver_default_name[] = L"\\Driver\\uwdf";

struct uwdf_object *uwdf_driver_default_parent(void)
{
    struct uwdf_driver *d = __atomic_load_n(&uwdf_current_driver, __ATOMIC_ACQUIRE);
    return d ? &d->obj : NULL;
}

static void driver_dispose(struct uwdf_object *obj)
{
    struct uwdf_driver *d = (struct uwdf_driver *)obj;
    if (d->config.EvtDriverUnload)
        d->config.EvtDriverUnload((WDFDRIVER)obj->handle);
    pthread_mutex_lock(&driver_lock);
    if (uwdf_current_driver == d)
        __atomic_store_n(&uwdf_current_driver, NULL, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&driver_lock);
}

static const struct uwdf_object_ops driver_ops = { .dispose = driver_dispose };

NTSTATUS WdfDriverCreate(PDRIVER_OBJECT DriverObject, PCUNICODE_STRING RegistryPath,
                         PWDF_OBJECT_ATTRIBUTES DriverAttributes, PWDF_DRIVER_CONFIG DriverConfig,
                         WDFDRIVER *Driver)
{
    struct uwdf_object *obj;
    (void)RegistryPath;
    UWDF_REQUIRE_PARAM(DriverConfig, "WdfDriverCreate", STATUS_INVALID_PARAMETER);
    if (!uwdf_irql_check_passive("WdfDriverCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (DriverConfig->Size != sizeof(WDF_DRIVER_CONFIG))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (DriverAttributes && DriverAttributes->ParentObject)
        return STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED;

    pthread_mutex_lock(&driver_lock);
    if (uwdf_current_driver) {
        pthread_mutex_unlock(&driver_lock);
        return STATUS_INVALID_DEVICE_STATE; /* one driver per process at a time */
    }
    NTSTATUS status = uwdf_object_create(sizeof(struct uwdf_driver), UWDF_OBJ_DRIVER, &driver_ops,
                                         DriverAttributes, NULL, 0, &obj);
    if (!NT_SUCCESS(status)) {
        pthread_mutex_unlock(&driver_lock);
        return status;
    }
    struct uwdf_driver *d = (struct uwdf_driver *)obj;
    d->config = *DriverConfig;
    d->wdm.Type = 4; /* IO_TYPE_DRIVER */
    d->wdm.Size = sizeof(DRIVER_OBJECT);
    RtlInitUnicodeString(&d->wdm.DriverName, driver_default_name);
    /* A caller's DRIVER_OBJECT stays the one the framework hands out, as
     * FltRegisterFilter and WDM code compare it by address. */
    d->wdm_ptr = DriverObject ? DriverObject : &d->wdm;
    d->wdm_ptr->DriverExtension = obj->handle;
    __atomic_store_n(&uwdf_current_driver, d, __ATOMIC_RELEASE);
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

WDFDRIVER WdfGetDriver(void)
{
    struct uwdf_object *obj = uwdf_driver_default_parent();
    return obj ? (WDFDRIVER)obj->handle : NULL;
}
