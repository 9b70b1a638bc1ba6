/* File objects (lib/fileobject.c) and requests presented in the caller's
 * context (lib/caller_context.c): what a device keeps for them, and the
 * hooks the device-target open and close and the packet delivery call.
 * Not installed. */
#ifndef UWDF_FILEOBJECT_H
#define UWDF_FILEOBJECT_H

#include <stdbool.h>

#include <wdf.h>

struct uwdf_device;
struct uwdf_fileobject;
struct uwdf_iotarget;
struct uwdf_request;

/* In WDFDEVICE_INIT, then copied into the device by WdfDeviceCreate. */
struct uwdf_device_files {
    bool has_config;
    WDF_FILEOBJECT_CONFIG config;
    bool has_attrs;
    WDF_OBJECT_ATTRIBUTES attrs;
    PFN_WDF_IO_IN_CALLER_CONTEXT in_caller_context;
    struct uwdf_fileobject *open; /* the device's WDFFILEOBJECTs (lib/fileobject.c's lock) */
};

/* The device named by path (\Device\X, a symbolic link, or either followed
 * by \more), referenced, with *tail at the "\more" (or the empty end);
 * STATUS_OBJECT_NAME_NOT_FOUND if none. */
NTSTATUS uwdf_fileobject_lookup_device(const char *path, struct uwdf_device **dev, const char **tail);
/* A target just opened on dev: IRP_MJ_CREATE on its file object with the
 * open's parameters and file name tail; the create's status. */
NTSTATUS uwdf_fileobject_open(struct uwdf_iotarget *t, struct uwdf_device *dev, const char *tail,
                              const WDF_IO_TARGET_OPEN_PARAMS *params);
/* The target's last handle closes, its I/O done: cleanup, then close. */
void uwdf_fileobject_close(struct uwdf_device *dev, PFILE_OBJECT fo);
/* A packet arrives at dev (its current stack location set up): true if
 * the file-object or caller-context path took it. */
bool uwdf_fileobject_deliver(struct uwdf_device *dev, struct uwdf_request *sender);
bool uwdf_caller_context_deliver(struct uwdf_device *dev, struct uwdf_request *sender);
/* A request for sender's packet that the framework presents itself,
 * without a queue (EvtDeviceFileCreate, EvtIoInCallerContext): the
 * driver's from here (lib/caller_context.c). */
NTSTATUS uwdf_request_present_direct(struct uwdf_device *dev, struct uwdf_request *sender, struct uwdf_request **out);

#endif
