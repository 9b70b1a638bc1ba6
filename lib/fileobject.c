/* WDFFILEOBJECT: one per open of an in-process device. WdfIoTargetOpen by
 * name on a device sends it IRP_MJ_CREATE on the target's FILE_OBJECT (the
 * one every request sent through the target carries); the device makes the
 * WDFFILEOBJECT and presents the create to EvtDeviceFileCreate, to the
 * queue configured for WdfRequestTypeCreate, or completes it itself. A
 * failed create fails the open and deletes the WDFFILEOBJECT without
 * cleanup or close. WdfIoTargetClose, once the target's I/O is done, is the
 * last handle's close: EvtFileCleanup, EvtFileClose, then the WDFFILEOBJECT
 * is deleted (its context callbacks run).
 *
 * A device's WDFFILEOBJECTs are found by their FILE_OBJECT in the device's
 * list (whatever the class: FsContext and FsContext2 stay the driver's). */
#define _GNU_SOURCE
#include "runtime.h"
#include "device.h"
#include "fileobject.h"
#include "iotarget.h"
#include "ntrt.h"
#include "object.h"
#include "queue.h"
#include "request.h"

struct uwdf_fileobject {
    struct uwdf_object obj;
    struct uwdf_device *device;
    PFILE_OBJECT wdm;
    struct uwdf_fileobject *next; /* in device->files.open */
    bool linked;
};

/* Guards every device's list of WDFFILEOBJECTs (opens are not hot). */
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;

static struct uwdf_fileobject *fileobject_lookup(WDFFILEOBJECT handle, const char *ddi)
{
    return (struct uwdf_fileobject *)uwdf_object_lookup(handle, UWDF_OBJ_FILEOBJECT, ddi); /* obj is first */
}

static void files_unlink_locked(struct uwdf_fileobject *fo)
{
    if (!fo->linked)
        return;
    for (struct uwdf_fileobject **p = &fo->device->files.open; *p; p = &(*p)->next)
        if (*p == fo) {
            *p = fo->next;
            break;
        }
    fo->linked = false;
}

/* The device's WDFFILEOBJECT for wdm; with take, it leaves the list. */
static struct uwdf_fileobject *files_find(struct uwdf_device *dev, PFILE_OBJECT wdm, bool take)
{
    struct uwdf_fileobject *found = NULL;
    pthread_mutex_lock(&files_lock);
    for (struct uwdf_fileobject *fo = dev->files.open; fo && !found; fo = fo->next)
        if (fo->wdm == wdm)
            found = fo;
    if (found && take)
        files_unlink_locked(found);
    pthread_mutex_unlock(&files_lock);
    return found;
}

static void fileobject_dispose(struct uwdf_object *obj)
{
    /* Deleted with its device while open: the target's close finds nothing. */
    pthread_mutex_lock(&files_lock);
    files_unlink_locked((struct uwdf_fileobject *)obj);
    pthread_mutex_unlock(&files_lock);
}

static const struct uwdf_object_ops fileobject_ops = {
    .dispose = fileobject_dispose,
};

static bool files_wanted(const struct uwdf_device *dev)
{
    return dev->files.has_config &&
           (dev->files.config.FileObjectClass & ~(ULONG)WdfFileObjectCanBeOptional) != WdfFileObjectNotRequired;
}

/* WDF_FILEOBJECT_CONFIG's AutoForwardCleanupClose: WdfTrue, or by default
 * on a filter (WdfFdoInitSetFilter). Such a device also passes a create
 * down when it has neither EvtDeviceFileCreate nor a create queue. */
static bool files_auto_forward(const struct uwdf_device *dev)
{
    WDF_TRI_STATE f = dev->files.has_config ? dev->files.config.AutoForwardCleanupClose : WdfUseDefault;
    return f == WdfTrue || (f == WdfUseDefault && dev->pnp.filter);
}

/* ---- configuration ---- */

VOID WdfDeviceInitSetFileObjectConfig(PWDFDEVICE_INIT DeviceInit, PWDF_FILEOBJECT_CONFIG FileObjectConfig,
                                      PWDF_OBJECT_ATTRIBUTES FileObjectAttributes)
{
    UWDF_REQUIRE_PARAM(DeviceInit, "WdfDeviceInitSetFileObjectConfig", );
    UWDF_REQUIRE_PARAM(FileObjectConfig, "WdfDeviceInitSetFileObjectConfig", );
    ULONG cls = FileObjectConfig->FileObjectClass & ~(ULONG)WdfFileObjectCanBeOptional;
    if (FileObjectConfig->Size != sizeof(WDF_FILEOBJECT_CONFIG)) {
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)FileObjectConfig, FileObjectConfig->Size,
                      sizeof(WDF_FILEOBJECT_CONFIG), "WdfDeviceInitSetFileObjectConfig: Size is %lu, expected %zu",
                      (unsigned long)FileObjectConfig->Size, sizeof(WDF_FILEOBJECT_CONFIG));
        return;
    }
    if (cls < WdfFileObjectNotRequired || cls > WdfFileObjectWdfCannotUseFsContexts) {
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)FileObjectConfig, cls, 0,
                      "WdfDeviceInitSetFileObjectConfig: FileObjectClass %lu is none", (unsigned long)cls);
        return;
    }
    if (FileObjectAttributes && FileObjectAttributes->ParentObject) {
        uwdf_bugcheck(WDF_OBJECT_ERROR, (ULONG_PTR)FileObjectAttributes, 0, 0,
                      "WdfDeviceInitSetFileObjectConfig: file object attributes cannot have a ParentObject");
        return;
    }
    struct uwdf_device_files *f = uwdf_device_init_files(DeviceInit);
    f->has_config = true;
    f->config = *FileObjectConfig;
    f->has_attrs = FileObjectAttributes != NULL;
    if (FileObjectAttributes)
        f->attrs = *FileObjectAttributes;
}

/* ---- the opener's side ---- */

NTSTATUS uwdf_fileobject_lookup_device(const char *path, struct uwdf_device **dev, const char **tail)
{
    size_t len = strlen(path);
    char *name = uwdf_alloc(len + 1);
    *dev = NULL;
    if (!name)
        return STATUS_INSUFFICIENT_RESOURCES;
    memcpy(name, path, len + 1);
    /* The longest name that is a device's: \Device\X\a\b is X opened as \a\b. */
    for (;;) {
        name[len] = '\0';
        *dev = uwdf_device_lookup_name(name);
        if (*dev)
            break;
        char *bs = memrchr(name, '\\', len);
        if (!bs || bs == name)
            break;
        len = (size_t)(bs - name);
    }
    uwdf_free(name);
    *tail = path + len;
    return *dev ? STATUS_SUCCESS : STATUS_OBJECT_NAME_NOT_FOUND;
}

/* tail (UTF-8) into the FILE_OBJECT's FileName, allocated. */
static NTSTATUS file_name_set(PFILE_OBJECT wdm, const char *tail)
{
    size_t n = strlen(tail), chars = 0;
    WCHAR *buf = uwdf_alloc((n + 1) * sizeof(WCHAR));
    if (!buf)
        return STATUS_INSUFFICIENT_RESOURCES;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += uwdf_utf8_decode((const unsigned char *)tail + i, n - i, &cp);
        buf[chars++] = (WCHAR)cp;
    }
    buf[chars] = 0;
    if (chars * sizeof(WCHAR) > 0xFFFE) {
        uwdf_free(buf);
        return STATUS_OBJECT_NAME_INVALID;
    }
    wdm->FileName.Buffer = buf;
    wdm->FileName.Length = (USHORT)(chars * sizeof(WCHAR));
    wdm->FileName.MaximumLength = (USHORT)((chars + 1) * sizeof(WCHAR));
    return STATUS_SUCCESS;
}

static void file_name_free(PFILE_OBJECT wdm)
{
    uwdf_free(wdm->FileName.Buffer);
    memset(&wdm->FileName, 0, sizeof(wdm->FileName));
}

NTSTATUS uwdf_fileobject_open(struct uwdf_iotarget *t, struct uwdf_device *dev, const char *tail,
                              const WDF_IO_TARGET_OPEN_PARAMS *params)
{
    PFILE_OBJECT wdm = &t->file_object;
    NTSTATUS st = file_name_set(wdm, tail);
    if (!NT_SUCCESS(st))
        return st;
    struct uwdf_request *req;
    st = uwdf_request_create_internal(t, &req);
    if (!NT_SUCCESS(st)) {
        file_name_free(wdm);
        return st;
    }
    st = uwdf_iotarget_prepare_request(t, req, "WdfIoTargetOpen");
    if (NT_SUCCESS(st)) {
        IO_STACK_LOCATION s;
        memset(&s, 0, sizeof(s));
        s.MajorFunction = IRP_MJ_CREATE;
        s.Parameters.Create.Options = (params->CreateDisposition << 24) | (params->CreateOptions & 0x00FFFFFFu);
        s.Parameters.Create.FileAttributes = (USHORT)params->FileAttributes;
        s.Parameters.Create.ShareAccess = (USHORT)params->ShareAccess;
        s.Parameters.Create.EaLength = params->EaBufferLength;
        s.FileObject = wdm;
        s.DeviceObject = &dev->wdm;
        WdfRequestWdmFormatUsingStackLocation((WDFREQUEST)req->obj.handle, &s);
        req->fmt_type = WdfRequestTypeCreate;
        req->fmt_target = (WDFIOTARGET)t->obj.handle;
        uwdf_iotarget_send_sync(t, req, NULL, false, &st);
    }
    uwdf_object_delete(&req->obj);
    if (!NT_SUCCESS(st)) {
        /* Each device the create reached made its WDFFILEOBJECT: all go,
         * without cleanup or close. */
        uwdf_object_reference(&dev->obj);
        for (struct uwdf_device *d = dev, *below; d; d = below) {
            struct uwdf_fileobject *fo = files_find(d, wdm, true);
            if (fo)
                uwdf_object_delete(&fo->obj);
            below = uwdf_pnp_below(d);
            uwdf_object_release(&d->obj);
        }
        file_name_free(wdm);
    }
    return st;
}

/* One device's EvtFileCleanup (cleanup) or EvtFileClose; after the close
 * its WDFFILEOBJECT is deleted. */
static void file_callback(struct uwdf_device *dev, PFILE_OBJECT wdm, bool cleanup)
{
    struct uwdf_fileobject *fo = files_find(dev, wdm, !cleanup);
    const WDF_FILEOBJECT_CONFIG *c = &dev->files.config;
    if (fo || (dev->files.has_config && !files_wanted(dev))) {
        /* WdfFileObjectNotRequired: the callbacks get NULL. */
        WDFFILEOBJECT h = fo ? (WDFFILEOBJECT)fo->obj.handle : NULL;
        if (cleanup && c->EvtFileCleanup)
            c->EvtFileCleanup(h);
        else if (!cleanup && c->EvtFileClose)
            c->EvtFileClose(h);
    }
    if (fo && !cleanup)
        uwdf_object_delete(&fo->obj);
}

/* IRP_MJ_CLEANUP, then IRP_MJ_CLOSE, each from dev down as far as
 * AutoForwardCleanupClose passes them. A device below that saw the create
 * (its driver forwarded it) but gets no close keeps nothing either: its
 * WDFFILEOBJECT would name a FILE_OBJECT that the next open reuses. */
void uwdf_fileobject_close(struct uwdf_device *dev, PFILE_OBJECT wdm)
{
    for (int pass = 0; pass < 3; pass++) {
        bool forwarded = true;
        uwdf_object_reference(&dev->obj);
        for (struct uwdf_device *d = dev, *below; d; d = below) {
            if (pass < 2 && forwarded)
                file_callback(d, wdm, pass == 0);
            else if (pass == 2 && !forwarded) {
                struct uwdf_fileobject *fo = files_find(d, wdm, true);
                if (fo)
                    uwdf_object_delete(&fo->obj);
            }
            forwarded = forwarded && files_auto_forward(d);
            below = uwdf_pnp_below(d);
            uwdf_object_release(&d->obj);
        }
    }
    file_name_free(wdm);
}

/* ---- the device's side ---- */

static NTSTATUS fileobject_create(struct uwdf_device *dev, PFILE_OBJECT wdm, struct uwdf_fileobject **out)
{
    struct uwdf_object *obj;
    NTSTATUS st = uwdf_object_create(sizeof(struct uwdf_fileobject), UWDF_OBJ_FILEOBJECT, &fileobject_ops,
                                     dev->files.has_attrs ? &dev->files.attrs : NULL, &dev->obj,
                                     UWDF_ATTR_PARENT_NOT_ALLOWED, &obj);
    if (!NT_SUCCESS(st))
        return st;
    struct uwdf_fileobject *fo = (struct uwdf_fileobject *)obj;
    fo->device = dev;
    fo->wdm = wdm;
    obj->no_delete = true; /* the framework's to delete, at close */
    pthread_mutex_lock(&files_lock);
    fo->next = dev->files.open;
    dev->files.open = fo;
    fo->linked = true;
    pthread_mutex_unlock(&files_lock);
    *out = fo;
    return STATUS_SUCCESS;
}

static bool device_has_create_queue(struct uwdf_device *dev)
{
    pthread_mutex_lock(&dev->queues_lock);
    bool has = dev->dispatch_queue[IRP_MJ_CREATE] != NULL;
    pthread_mutex_unlock(&dev->queues_lock);
    return has;
}

bool uwdf_fileobject_deliver(struct uwdf_device *dev, struct uwdf_request *sender)
{
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(sender->irp);
    if (s->MajorFunction != IRP_MJ_CREATE)
        return false;
    struct uwdf_fileobject *fo = NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (files_wanted(dev))
        st = fileobject_create(dev, s->FileObject, &fo);
    PFN_WDF_DEVICE_FILE_CREATE create = dev->files.has_config ? dev->files.config.EvtDeviceFileCreate : NULL;
    if (NT_SUCCESS(st) && !create) {
        if (device_has_create_queue(dev))
            return false; /* its queue presents it */
        struct uwdf_device *below = files_auto_forward(dev) ? uwdf_pnp_below(dev) : NULL;
        if (below) {
            /* KMDF passes it on; the open completes when the device
             * below completes it. */
            IoSkipCurrentIrpStackLocation(sender->irp);
            uwdf_queue_deliver(below, sender);
            uwdf_object_release(&below->obj);
            return true;
        }
        uwdf_queue_packet_complete(sender, STATUS_SUCCESS, 0);
        return true;
    }
    struct uwdf_request *r = NULL;
    if (NT_SUCCESS(st))
        st = uwdf_request_present_direct(dev, sender, &r);
    if (!NT_SUCCESS(st)) {
        uwdf_queue_packet_complete(sender, st, 0); /* the opener deletes the file object */
        return true;
    }
    create((WDFDEVICE)dev->obj.handle, (WDFREQUEST)r->obj.handle, fo ? (WDFFILEOBJECT)fo->obj.handle : NULL);
    return true;
}

/* ---- DDIs ---- */

WDFDEVICE WdfFileObjectGetDevice(WDFFILEOBJECT FileObject)
{
    struct uwdf_fileobject *fo = fileobject_lookup(FileObject, "WdfFileObjectGetDevice");
    return fo ? (WDFDEVICE)fo->device->obj.handle : NULL;
}

PUNICODE_STRING WdfFileObjectGetFileName(WDFFILEOBJECT FileObject)
{
    struct uwdf_fileobject *fo = fileobject_lookup(FileObject, "WdfFileObjectGetFileName");
    if (!fo || !uwdf_irql_check_passive("WdfFileObjectGetFileName"))
        return NULL;
    return &fo->wdm->FileName;
}

ULONG WdfFileObjectGetFlags(WDFFILEOBJECT FileObject)
{
    struct uwdf_fileobject *fo = fileobject_lookup(FileObject, "WdfFileObjectGetFlags");
    return fo ? fo->wdm->Flags : 0;
}

PFILE_OBJECT WdfFileObjectWdmGetFileObject(WDFFILEOBJECT FileObject)
{
    struct uwdf_fileobject *fo = fileobject_lookup(FileObject, "WdfFileObjectWdmGetFileObject");
    return fo ? fo->wdm : NULL;
}

WDFFILEOBJECT WdfRequestGetFileObject(WDFREQUEST Request)
{
    struct uwdf_request *r = uwdf_request_lookup(Request, "WdfRequestGetFileObject");
    if (!r || !r->received || !r->irp)
        return NULL;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(r->irp);
    if (!s->FileObject || !s->DeviceObject)
        return NULL;
    struct uwdf_device *dev = uwdf_container_of(s->DeviceObject, struct uwdf_device, wdm);
    struct uwdf_fileobject *fo = files_find(dev, s->FileObject, false);
    return fo ? (WDFFILEOBJECT)fo->obj.handle : NULL;
}
