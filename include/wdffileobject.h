/* File objects (wdffileobject.h): one WDFFILEOBJECT per open of a device.
 * In this port an open is WdfIoTargetOpen by name on an in-process device
 * (\Device\Name, its symbolic link, either followed by \more, which becomes
 * the file name); WdfIoTargetClose is the last handle's close. */
#ifndef UWDF_WDFFILEOBJECT_H
#define UWDF_WDFFILEOBJECT_H

#include "wdfrequest.h"

UWDF_BEGIN_DECLS

typedef enum _WDF_FILEOBJECT_CLASS {
    WdfFileObjectInvalid = 0,
    WdfFileObjectNotRequired = 1,
    WdfFileObjectWdfCanUseFsContext = 2,
    WdfFileObjectWdfCanUseFsContext2 = 3,
    WdfFileObjectWdfCannotUseFsContexts = 4,
    WdfFileObjectCanBeOptional = 0x80000000,
} WDF_FILEOBJECT_CLASS, *PWDF_FILEOBJECT_CLASS;

/* The framework completes the create request itself (STATUS_SUCCESS) when
 * there is no EvtDeviceFileCreate and no queue configured for
 * WdfRequestTypeCreate; otherwise the driver completes it, and a failure
 * fails the open with that status. */
typedef VOID EVT_WDF_DEVICE_FILE_CREATE(WDFDEVICE Device, WDFREQUEST Request, WDFFILEOBJECT FileObject);
typedef EVT_WDF_DEVICE_FILE_CREATE *PFN_WDF_DEVICE_FILE_CREATE;
typedef VOID EVT_WDF_FILE_CLOSE(WDFFILEOBJECT FileObject);
typedef EVT_WDF_FILE_CLOSE *PFN_WDF_FILE_CLOSE;
typedef VOID EVT_WDF_FILE_CLEANUP(WDFFILEOBJECT FileObject);
typedef EVT_WDF_FILE_CLEANUP *PFN_WDF_FILE_CLEANUP;

typedef struct _WDF_FILEOBJECT_CONFIG {
    ULONG Size;
    PFN_WDF_DEVICE_FILE_CREATE EvtDeviceFileCreate;
    PFN_WDF_FILE_CLOSE EvtFileClose;
    PFN_WDF_FILE_CLEANUP EvtFileCleanup;
    WDF_TRI_STATE AutoForwardCleanupClose;
    WDF_FILEOBJECT_CLASS FileObjectClass;
} WDF_FILEOBJECT_CONFIG, *PWDF_FILEOBJECT_CONFIG;

FORCEINLINE VOID WDF_FILEOBJECT_CONFIG_INIT(PWDF_FILEOBJECT_CONFIG FileEventCallbacks,
                                            PFN_WDF_DEVICE_FILE_CREATE EvtDeviceFileCreate,
                                            PFN_WDF_FILE_CLOSE EvtFileClose, PFN_WDF_FILE_CLEANUP EvtFileCleanup)
{
    __builtin_memset(FileEventCallbacks, 0, sizeof(WDF_FILEOBJECT_CONFIG));
    FileEventCallbacks->Size = sizeof(WDF_FILEOBJECT_CONFIG);
    FileEventCallbacks->EvtDeviceFileCreate = EvtDeviceFileCreate;
    FileEventCallbacks->EvtFileClose = EvtFileClose;
    FileEventCallbacks->EvtFileCleanup = EvtFileCleanup;
    FileEventCallbacks->FileObjectClass = WdfFileObjectWdfCannotUseFsContexts;
    FileEventCallbacks->AutoForwardCleanupClose = WdfUseDefault;
}

/* Before WdfDeviceCreate. FileObjectAttributes (optional) give each
 * WDFFILEOBJECT its context and callbacks; its ParentObject must be NULL
 * (the device is the parent). A wrong Size or class, or a ParentObject,
 * is a bug check (WDF_VIOLATION) and leaves the init as it was. Without a
 * call, or with WdfFileObjectNotRequired, opens make no WDFFILEOBJECT. The
 * framework finds a WDFFILEOBJECT by its FILE_OBJECT, so FsContext and
 * FsContext2 stay the driver's whatever the class. */
VOID WdfDeviceInitSetFileObjectConfig(PWDFDEVICE_INIT DeviceInit, PWDF_FILEOBJECT_CONFIG FileObjectConfig,
                                      PWDF_OBJECT_ATTRIBUTES FileObjectAttributes);
WDFDEVICE WdfFileObjectGetDevice(WDFFILEOBJECT FileObject);
/* The name after the device's: "\\log.txt" for an open of
 * \Device\Name\log.txt; an empty string for the device itself. */
PUNICODE_STRING WdfFileObjectGetFileName(WDFFILEOBJECT FileObject);
ULONG WdfFileObjectGetFlags(WDFFILEOBJECT FileObject);
PFILE_OBJECT WdfFileObjectWdmGetFileObject(WDFFILEOBJECT FileObject);
/* The file object a request received from a device was sent on; NULL for
 * a request the driver created, or a device without file objects. */
WDFFILEOBJECT WdfRequestGetFileObject(WDFREQUEST Request);

UWDF_END_DECLS
#endif
