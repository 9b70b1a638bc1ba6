/* Drivers and devices (lib/driver.c, lib/device.c). Not installed. */
#ifndef UWDF_DEVICE_H
#define UWDF_DEVICE_H

#include "biased_lock.h"
#include "fileobject.h"
#include "object.h"

struct uwdf_driver {
    struct uwdf_object obj;
    DRIVER_OBJECT wdm;      /* ours, when the caller passed no DriverObject */
    PDRIVER_OBJECT wdm_ptr; /* what WdfDriverWdmGetDriverObject returns */
    WDF_DRIVER_CONFIG config;
    /* several drivers per process (lib/driver.c, lib/driver_load.c) */
    struct uwdf_driver *next; /* the live drivers, oldest first */
    bool unload_called;       /* EvtDriverUnload ran (the host's unload) */
    PWSTR registry_path;      /* WdfDriverCreate's RegistryPath, copied */
    /* Called as the WDFDRIVER is destroyed: after every object of its
     * tree (children hold their parent), so none of its callbacks is left
     * to run (the host unmaps a driver's code only then). */
    void (*destroyed)(void *ctx);
    void *destroyed_ctx;
};

/* What a WDFDEVICE_INIT carries for simulated PnP and the init DDIs of
 * lib/pnp.c; WdfDeviceCreate copies it into the device. */
struct uwdf_devnode;
struct uwdf_pnp_init {
    struct uwdf_devnode *devnode; /* NULL: a control device */
    bool filter;                  /* WdfFdoInitSetFilter */
    bool exclusive;               /* WdfDeviceInitSetExclusive */
    WDF_PNPPOWER_EVENT_CALLBACKS callbacks;
    PFN_WDF_DEVICE_SHUTDOWN_NOTIFICATION shutdown;
    UCHAR shutdown_flags;
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
    /* Written under queues_lock with atomic stores; a packet's lookup
     * reads them with no lock, inside queue_readers (lib/queue.c). */
    struct uwdf_queue *default_queue;
    struct uwdf_queue *dispatch_queue[IRP_MJ_MAXIMUM_FUNCTION + 1];
    /* Lookups between their read and their reference, counted by the
     * parity of queue_epoch they read (lib/queue.c queue_table_quiesce). */
    atomic_uint queue_epoch;
    atomic_uint queue_readers[2];
    /* The engine thread that delivers packets here (the first to look one
     * up; read without a lock) looks up inside this lock's biased fast
     * path instead of the counts; the quiesce revokes it (lib/queue.c). */
    struct uwdf_biased_lock queue_lookup_bias;
    struct uwdf_engine *queue_lookup_engine;
    struct uwdf_iotarget *local_target; /* WdfDeviceGetIoTarget */
    pthread_mutex_t queues_lock;
    pthread_mutex_t quiesce_lock; /* one queue_table_quiesce at a time */
    pthread_mutex_t sync_lock; /* SynchronizationScopeDevice, recursive */
    struct uwdf_device_files files; /* file objects, EvtIoInCallerContext */
    /* simulated PnP and power (lib/pnp.c) */
    struct uwdf_pnp_init pnp;
    struct uwdf_device *pnp_below; /* next lower device of its stack */
    struct uwdf_device *pnp_above;
    struct uwdf_device *all_next;  /* every device (shutdown notification) */
    atomic_uint opens;             /* targets open on it (exclusive devices) */
    bool pnp_started;              /* its start sequence finished */
    bool pnp_in_d0;
    bool pnp_removed;              /* removal began: no new I/O, no opens */
    int pnp_state;                 /* WDF_DEVICE_PNP_STATE (atomic; lib/pnp.c) */
};

/* The parent of objects that default to the driver: the calling driver's
 * (lib/driver.c: the driver whose callback the framework is running on
 * this thread, else the bootstrap driver, else the oldest live one). */
struct uwdf_object *uwdf_driver_default_parent(void);
/* The driver the framework runs a callback of on this thread; set and
 * restored around the calls (returns the previous one). */
struct uwdf_driver *uwdf_driver_enter(struct uwdf_driver *d);
/* The host calls DriverEntry with wdm on this thread (NULL: done); the
 * WDFDRIVER made for it becomes the thread's driver. Returns the old one. */
PDRIVER_OBJECT uwdf_driver_loading(PDRIVER_OBJECT wdm);
/* The live driver made with this DRIVER_OBJECT, referenced; or NULL. */
struct uwdf_driver *uwdf_driver_from_wdm(PDRIVER_OBJECT wdm);
bool uwdf_driver_alive(const struct uwdf_driver *d);

/* ---- simulated PnP (lib/pnp.c, lib/device.c) ---- */
/* A WDFDEVICE_INIT for EvtDriverDeviceAdd of d in devnode's stack. */
PWDFDEVICE_INIT uwdf_device_init_alloc_pnp(struct uwdf_driver *d, struct uwdf_devnode *devnode);
struct uwdf_pnp_init *uwdf_device_init_pnp(PWDFDEVICE_INIT init);
/* WdfDeviceCreate made dev (its init copied): attach it on its stack and
 * list it. On failure the caller deletes dev. */
NTSTATUS uwdf_pnp_device_created(struct uwdf_device *dev);
void uwdf_pnp_device_disposed(struct uwdf_device *dev);
/* The next lower device of dev's stack, referenced; NULL if none (a
 * control device, the bottom, or a device already leaving). */
struct uwdf_device *uwdf_pnp_below(struct uwdf_device *dev);
/* The device an open of dev's name reaches (the top of its stack),
 * referenced, with dev's reference dropped; NULL if it cannot be opened. */
struct uwdf_device *uwdf_pnp_open_redirect(struct uwdf_device *dev);
/* The part of a \DosDevices\, \??\ or \GLOBAL??\ name after the prefix;
 * NULL for other names (lib/device.c). */
const char *uwdf_device_dos_name_tail(const char *name);
/* A symbolic link of an enabled device interface (lib/devinterface.c):
 * the device it opens, referenced; NULL if none. */
struct uwdf_device *uwdf_devinterface_lookup(const char *name);
/* The devnode's interfaces enabled (start) or disabled and dropped
 * (removal); notifications sent. */
void uwdf_devinterface_start(struct uwdf_devnode *node);
void uwdf_devinterface_remove(struct uwdf_devnode *node);
/* A devnode's identity for link names and lookups (lib/pnp.c). */
const char *uwdf_devnode_instance(const struct uwdf_devnode *node);
struct uwdf_device *uwdf_devnode_top(struct uwdf_devnode *node); /* referenced, or NULL */
bool uwdf_devnode_started(const struct uwdf_devnode *node);

/* The device registered under an NT name (\Device\..., \DosDevices\...,
 * \??\...), referenced; NULL if none. */
struct uwdf_device *uwdf_device_lookup_name(const char *name);
/* The file-object and caller-context settings of a device init. */
struct uwdf_device_files *uwdf_device_init_files(PWDFDEVICE_INIT init);

#endif
