/* Drivers and devices (lib/driver.c, lib/device.c). Not installed. */
#ifndef UWDF_DEVICE_H
#define UWDF_DEVICE_H

#include "fileobject.h"
#include "object.h"

struct uwdf_driver {
    struct uwdf_object obj;
    DRIVER_OBJECT wdm;      /* ours, when the caller passed no DriverObject */
    PDRIVER_OBJECT wdm_ptr; /* what WdfDriverWdmGetDriverObject returns */
    WDF_DRIVER_CONFIG config;
};

struct uwdf_queue;
struct uwdf_iotarget;

struct uwdf_device {
    struct uwdf_object obj;
    struct uwdf_driver *driver;
    DEVICE_OBJECT wdm;
    bool control;
    bool finished_initializing;
    WDF_DEVICE_IO_TYPE io_type;
    /* in-process stacks (lib/device.c, lib/queue.c) */
    char *name;    /* \Device\..., UTF-8, or NULL */
    char *symlink; /* \DosDevices\... */
    struct uwdf_device *name_next;
    bool has_request_attrs;
    WDF_OBJECT_ATTRIBUTES request_attrs;
    struct uwdf_queue *default_queue;
    struct uwdf_queue *dispatch_queue[IRP_MJ_MAXIMUM_FUNCTION + 1];
    struct uwdf_iotarget *local_target; /* WdfDeviceGetIoTarget */
    pthread_mutex_t queues_lock;
    pthread_mutex_t sync_lock; /* SynchronizationScopeDevice, recursive */
    struct uwdf_device_files files; /* file objects, EvtIoInCallerContext */
};

extern struct uwdf_driver *uwdf_current_driver;
struct uwdf_object *uwdf_driver_default_parent(void);

/* The device registered under an NT name (\Device\..., \DosDevices\...,
 * \??\...), referenced; NULL if none. */
struct uwdf_device *uwdf_device_lookup_name(const char *name);
/* The file-object and caller-context settings of a device init. */
struct uwdf_device_files *uwdf_device_init_files(PWDFDEVICE_INIT init);

#endif
