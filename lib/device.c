/* WDFDEVICE: control devices, created from a WDFDEVICE_INIT. */
#include "internal.h"

const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_ALL = RTL_CONSTANT_STRING(L"D:P(A;;GA;;;SY)(A;;GA;;;BA)");
const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_RW_RES_R =
    RTL_CONSTANT_STRING(L"D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGW;;;WD)(A;;GR;;;RC)");

/* Device objects need one stack location for the framework's own use when
 * they forward to a file target. */
#define UWDF_DEVICE_STACK_SIZE 2

struct WDFDEVICE_INIT {
    struct uwdf_driver *driver;
    bool control;
    WDF_DEVICE_IO_TYPE io_type;
};

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

VOID WdfDeviceInitFree(PWDFDEVICE_INIT DeviceInit)
{
    uwdf_free(DeviceInit);
}

VOID WdfDeviceInitSetIoType(PWDFDEVICE_INIT DeviceInit, WDF_DEVICE_IO_TYPE IoType)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitSetIoType", );
    if (IoType <= WdfDeviceIoUndefined || IoType >= WdfDeviceIoMaximum)
        return;
    DeviceInit->io_type = IoType;
}

static const struct uwdf_object_ops device_ops = { 0 };

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
    dev->wdm.Flags = DO_DEVICE_INITIALIZING |
                     (init->io_type == WdfDeviceIoDirect ? DO_DIRECT_IO : DO_BUFFERED_IO);
    dev->wdm.DeviceExtension = obj->handle;
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
