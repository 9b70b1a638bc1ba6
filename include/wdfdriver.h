/* The driver object: the root of every object tree (wdfdriver.h). */
#ifndef UWDF_WDFDRIVER_H
#define UWDF_WDFDRIVER_H

#include "wdfobject.h"

UWDF_BEGIN_DECLS

typedef enum _WDF_DRIVER_INIT_FLAGS {
    WdfDriverInitNonPnpDriver = 0x00000001,
    WdfDriverInitNoDispatchOverride = 0x00000002,
    WdfVerifyOn = 0x00000004,
    WdfVerifierOn = 0x00000008,
    WdfDriverInitCompanion = 0x00000010,
} WDF_DRIVER_INIT_FLAGS;

typedef NTSTATUS EVT_WDF_DRIVER_DEVICE_ADD(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit);
typedef EVT_WDF_DRIVER_DEVICE_ADD *PFN_WDF_DRIVER_DEVICE_ADD;
typedef VOID EVT_WDF_DRIVER_UNLOAD(WDFDRIVER Driver);
typedef EVT_WDF_DRIVER_UNLOAD *PFN_WDF_DRIVER_UNLOAD;

typedef struct _WDF_DRIVER_CONFIG {
    ULONG Size;
    PFN_WDF_DRIVER_DEVICE_ADD EvtDriverDeviceAdd;
    PFN_WDF_DRIVER_UNLOAD EvtDriverUnload;
    ULONG DriverInitFlags;
    ULONG DriverPoolTag;
} WDF_DRIVER_CONFIG, *PWDF_DRIVER_CONFIG;

FORCEINLINE VOID WDF_DRIVER_CONFIG_INIT(PWDF_DRIVER_CONFIG Config,
                                        PFN_WDF_DRIVER_DEVICE_ADD EvtDriverDeviceAdd)
{
    __builtin_memset(Config, 0, sizeof(WDF_DRIVER_CONFIG));
    Config->Size = sizeof(WDF_DRIVER_CONFIG);
    Config->EvtDriverDeviceAdd = EvtDriverDeviceAdd;
}

/* DriverObject and RegistryPath may be NULL in the port: the framework then
 * makes its own DRIVER_OBJECT. One driver exists at a time; deleting it
 * (WdfObjectDelete) stands in for driver unload. */
NTSTATUS WdfDriverCreate(PDRIVER_OBJECT DriverObject, PCUNICODE_STRING RegistryPath,
                         PWDF_OBJECT_ATTRIBUTES DriverAttributes, PWDF_DRIVER_CONFIG DriverConfig,
                         WDFDRIVER *Driver);
PDRIVER_OBJECT WdfDriverWdmGetDriverObject(WDFDRIVER Driver);
WDFDRIVER WdfGetDriver(void);
/* The RegistryPath given to WdfDriverCreate, as the framework's
 * NUL-terminated copy, valid while the driver lives (the caller's string
 * need not outlive DriverEntry); NULL for a driver made without one
 * (WdfDriverCreate(NULL, NULL, ...)). Any IRQL. */
PWSTR WdfDriverGetRegistryPath(WDFDRIVER Driver);

/* The framework version the port implements: KMDF 1.33. */
#define UWDF_KMDF_MAJOR_VERSION 1
#define UWDF_KMDF_MINOR_VERSION 33

typedef struct _WDF_DRIVER_VERSION_AVAILABLE_PARAMS {
    ULONG Size;
    ULONG MajorVersion;
    ULONG MinorVersion;
} WDF_DRIVER_VERSION_AVAILABLE_PARAMS, *PWDF_DRIVER_VERSION_AVAILABLE_PARAMS;

FORCEINLINE VOID WDF_DRIVER_VERSION_AVAILABLE_PARAMS_INIT(PWDF_DRIVER_VERSION_AVAILABLE_PARAMS Params,
                                                          ULONG MajorVersion, ULONG MinorVersion)
{
    __builtin_memset(Params, 0, sizeof(WDF_DRIVER_VERSION_AVAILABLE_PARAMS));
    Params->Size = sizeof(WDF_DRIVER_VERSION_AVAILABLE_PARAMS);
    Params->MajorVersion = MajorVersion;
    Params->MinorVersion = MinorVersion;
}

/* PASSIVE_LEVEL (else STATUS_INVALID_DEVICE_REQUEST). Sets String to
 * "Kernel Mode Driver Framework version 1.33.0 (uwdf <version>)", or
 * "... (verifier on)" with the verifier: for people, not to be parsed.
 * STATUS_INSUFFICIENT_RESOURCES. */
NTSTATUS WdfDriverRetrieveVersionString(WDFDRIVER Driver, WDFSTRING String);
/* PASSIVE_LEVEL (else FALSE). TRUE if MajorVersion is the framework's and
 * MinorVersion at most its minor version; FALSE for a wrong Size. */
BOOLEAN WdfDriverIsVersionAvailable(WDFDRIVER Driver, PWDF_DRIVER_VERSION_AVAILABLE_PARAMS VersionAvailableParams);

UWDF_END_DECLS
#endif
