/* Filter Manager callback-data I/O (fltkernel.h). Filters, volumes,
 * instances and files are plain refcounted structs, not WDF objects; a file
 * is a WDF I/O target of the filter's hidden control device, and a callback
 * data block drives one WDFREQUEST of its own through that target, so the
 * I/O goes down the same engines as any WdfRequestSend. */
#define _GNU_SOURCE
#include "runtime.h"
#include "device.h"
#include "engine.h"
#include "flt.h"
#include "iotarget.h"
#include "object.h"
#include "request.h"
#include "resolve.h"

#include <sched.h>

#include <errno.h>
#include <fcntl.h>
#include <fltkernel.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLT_MAGIC_FILTER   0x464c5446u /* "FLTF" */
#define FLT_MAGIC_VOLUME   0x464c5456u /* "FLTV" */
#define FLT_MAGIC_INSTANCE 0x464c5449u /* "FLTI" */
#define FLT_MAGIC_FILE     0x464c544fu /* "FLTO" */
#define FLT_MAGIC_DATA     0x464c5444u /* "FLTD" */

struct flt_hdr {
    uint32_t magic;
    atomic_long refs;
};

struct flt_file;

struct _FLT_FILTER {
    struct flt_hdr hdr;
    struct uwdf_driver *driver;
    WDFDEVICE device;
    FLT_REGISTRATION reg;
    bool started;
    bool unregistering;
    struct _FLT_INSTANCE *instances; /* attached, guarded by flt_lock */
    struct flt_file *files;         /* handle open, guarded by flt_lock */
    struct _FLT_FILTER *next;
};

/* A volume is a directory or a block device. A directory volume is a root
 * held open for the volume's life, so its files are the directory's, not
 * whatever its path names later; a block-device volume has one file, the
 * device itself, known by its device number. */
struct _FLT_VOLUME {
    struct flt_hdr hdr;
    struct _FLT_FILTER *filter;
    char *path; /* canonical, when it was got */
    char *name; /* as the filter gave it, if absolute: names under it are the volume's too */
    bool is_block;
    dev_t rdev;            /* a block-device volume's device */
    struct uwdf_root root; /* a directory volume's directory */
};

struct _FLT_INSTANCE {
    struct flt_hdr hdr;
    struct _FLT_FILTER *filter;
    struct _FLT_VOLUME *volume;
    bool attached;
    struct _FLT_INSTANCE *next;
};

struct flt_file {
    FILE_OBJECT fo; /* first: PFILE_OBJECT is the file */
    struct flt_hdr hdr;
    struct _FLT_FILTER *filter;
    struct _FLT_INSTANCE *instance;
    WDFIOTARGET target;
    int fd;
    bool closed;
    struct flt_file *next;
};

static const char *const flt_data_state_names[] = {
    [UWDF_FLT_DATA_IDLE] = "IDLE",
    [UWDF_FLT_DATA_IN_FLIGHT] = "IN_FLIGHT",
    [UWDF_FLT_DATA_CALLBACK_RUNNING] = "CALLBACK_RUNNING",
};
const struct uwdf_state_machine uwdf_flt_data_machine = { "FLT_CALLBACK_DATA", flt_data_state_names,
                                                          RTL_NUMBER_OF(flt_data_state_names) };

/* One per callback running on a block: a free from inside the callback
 * marks every frame, so nothing touches the block after it returns. */
struct flt_frame {
    bool freed;
    struct flt_frame *prev;
};

struct flt_data {
    FLT_CALLBACK_DATA data; /* first: PFLT_CALLBACK_DATA is the block */
    FLT_IO_PARAMETER_BLOCK iopb;
    uint32_t magic;
    atomic_int state; /* enum uwdf_flt_data_state (lib/flt.h) */
    struct _FLT_INSTANCE *instance;
    struct uwdf_driver *driver;
    WDFREQUEST req;
    WDFIOTARGET req_target;
    bool req_used;
    PFLT_COMPLETED_ASYNC_IO_CALLBACK cb;
    PVOID ctx;
    /* the operation in flight */
    struct flt_file *file;
    LONGLONG offset;
    bool rw;
    bool no_update_pos;
    struct flt_frame *frames;
    pthread_t cb_thread; /* where the asynchronous callback runs */
    /* FltReadFile / FltWriteFile with a callback */
    PFLT_COMPLETED_ASYNC_IO_CALLBACK user_cb;
    PVOID user_ctx;
};

static pthread_mutex_t flt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct _FLT_FILTER *flt_filters;

/* ---- reference counting ---- */

static void flt_release(struct flt_hdr *h);

static void flt_filter_destroy(struct _FLT_FILTER *f)
{
    pthread_mutex_lock(&flt_lock);
    for (struct _FLT_FILTER **pp = &flt_filters; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    pthread_mutex_unlock(&flt_lock);
    f->hdr.magic = 0;
    uwdf_free(f);
}

static void flt_release(struct flt_hdr *h)
{
    if (atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    switch (h->magic) {
    case FLT_MAGIC_FILTER:
        flt_filter_destroy((struct _FLT_FILTER *)h);
        break;
    case FLT_MAGIC_VOLUME: {
        struct _FLT_VOLUME *v = (struct _FLT_VOLUME *)h;
        struct _FLT_FILTER *f = v->filter;
        uwdf_root_close(&v->root);
        free(v->path);
        uwdf_free(v->name);
        v->hdr.magic = 0;
        uwdf_free(v);
        flt_release(&f->hdr);
        break;
    }
    case FLT_MAGIC_INSTANCE: {
        struct _FLT_INSTANCE *i = (struct _FLT_INSTANCE *)h;
        struct _FLT_VOLUME *v = i->volume;
        struct _FLT_FILTER *f = i->filter;
        i->hdr.magic = 0;
        uwdf_free(i);
        flt_release(&v->hdr);
        flt_release(&f->hdr);
        break;
    }
    case FLT_MAGIC_FILE: {
        struct flt_file *file = uwdf_container_of(h, struct flt_file, hdr);
        struct _FLT_INSTANCE *i = file->instance;
        file->hdr.magic = 0;
        uwdf_free(file);
        flt_release(&i->hdr);
        break;
    }
    default:
        break;
    }
}

static bool flt_driver_alive(const struct uwdf_driver *d)
{
    return d && uwdf_driver_alive(d);
}

static struct flt_file *flt_file_from_object(PFILE_OBJECT fo)
{
    if (!fo)
        return NULL;
    struct flt_file *file = (struct flt_file *)fo;
    return file->hdr.magic == FLT_MAGIC_FILE ? file : NULL;
}

/* A filter, volume or instance pointer that is not one (another kind,
 * freed and cleared, or readable garbage) is a bug check, as a bad WDF
 * handle is; the DDI then returns its documented failure. */
static bool flt_is(const void *obj, uint32_t magic, const char *ddi)
{
    if (((const struct flt_hdr *)obj)->magic == magic)
        return true;
    uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)obj, magic, 0, "%s: %p is not a %s", ddi, obj,
                  magic == FLT_MAGIC_FILTER ? "filter from FltRegisterFilter"
                  : magic == FLT_MAGIC_VOLUME ? "volume from FltGetVolumeFromName"
                                              : "instance from FltAttachVolume");
    return false;
}

static struct flt_data *flt_data_from(PFLT_CALLBACK_DATA d, const char *ddi)
{
    if (!d) {
        uwdf_bugcheck(WDF_REQUIRED_PARAMETER_IS_NULL, 0, 0, 0, "%s: CallbackData is NULL", ddi);
        return NULL;
    }
    struct flt_data *fd = (struct flt_data *)d;
    if (fd->magic != FLT_MAGIC_DATA) {
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)d, 0, 0,
                      "%s: %p is not callback data from FltAllocateCallbackData", ddi, (void *)d);
        return NULL;
    }
    return fd;
}

/* A name with a NUL inside would be cut short as a C string. */
static bool flt_name_has_nul(PCUNICODE_STRING name)
{
    for (size_t i = 0; i < name->Length / sizeof(WCHAR); i++)
        if (name->Buffer[i] == 0)
            return true;
    return false;
}

/* ---- registration ---- */

NTSTATUS FltRegisterFilter(PDRIVER_OBJECT Driver, const FLT_REGISTRATION *Registration, PFLT_FILTER *RetFilter)
{
    UWDF_REQUIRE_PARAM(Driver, "FltRegisterFilter", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(Registration, "FltRegisterFilter", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(RetFilter, "FltRegisterFilter", STATUS_INVALID_PARAMETER);
    *RetFilter = NULL;
    if (!uwdf_irql_check_passive("FltRegisterFilter"))
        return STATUS_INVALID_DEVICE_REQUEST;
    struct uwdf_driver *drv = uwdf_driver_from_wdm(Driver);
    if (!drv)
        return STATUS_INVALID_PARAMETER;
    uwdf_object_release(&drv->obj); /* the filter's reference to its driver, if any, is its own */
    if (Registration->Size != sizeof(FLT_REGISTRATION) || (Registration->Version & 0xFF00) != 0x0200 ||
        Registration->Version > FLT_REGISTRATION_VERSION)
        return STATUS_INVALID_PARAMETER;

    struct _FLT_FILTER *f = uwdf_zalloc(sizeof(*f));
    if (!f)
        return STATUS_INSUFFICIENT_RESOURCES;
    f->hdr.magic = FLT_MAGIC_FILTER;
    atomic_init(&f->hdr.refs, 1);
    f->driver = drv;
    f->reg = *Registration;

    /* The hidden control device that owns the targets of the files the
     * filter opens. */
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate((WDFDRIVER)drv->obj.handle, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init) {
        uwdf_free(f);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    NTSTATUS status = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &f->device);
    if (!NT_SUCCESS(status)) {
        WdfDeviceInitFree(init);
        uwdf_free(f);
        return status;
    }
    WdfControlFinishInitializing(f->device);

    pthread_mutex_lock(&flt_lock);
    f->next = flt_filters;
    flt_filters = f;
    pthread_mutex_unlock(&flt_lock);
    *RetFilter = f;
    return STATUS_SUCCESS;
}

NTSTATUS FltStartFiltering(PFLT_FILTER Filter)
{
    UWDF_REQUIRE_PARAM(Filter, "FltStartFiltering", STATUS_INVALID_PARAMETER);
    if (!flt_is(Filter, FLT_MAGIC_FILTER, "FltStartFiltering") || Filter->unregistering)
        return STATUS_INVALID_PARAMETER;
    Filter->started = true;
    return STATUS_SUCCESS;
}

static void flt_instance_teardown(struct _FLT_INSTANCE *i, FLT_INSTANCE_TEARDOWN_FLAGS reason)
{
    struct _FLT_FILTER *f = i->filter;
    FLT_RELATED_OBJECTS ro = {
        .Size = sizeof(FLT_RELATED_OBJECTS), .Filter = f, .Volume = i->volume, .Instance = i,
    };
    if (f->reg.InstanceTeardownStartCallback)
        f->reg.InstanceTeardownStartCallback(&ro, reason);
    if (f->reg.InstanceTeardownCompleteCallback)
        f->reg.InstanceTeardownCompleteCallback(&ro, reason);
}

static void flt_file_close(struct flt_file *file)
{
    if (flt_driver_alive(file->filter->driver))
        WdfObjectDelete(file->target);
    file->target = NULL;
    file->closed = true;
}

VOID FltUnregisterFilter(PFLT_FILTER Filter)
{
    UWDF_REQUIRE_PARAM(Filter, "FltUnregisterFilter", );
    if (!flt_is(Filter, FLT_MAGIC_FILTER, "FltUnregisterFilter") || !uwdf_irql_check_passive("FltUnregisterFilter"))
        return;
    pthread_mutex_lock(&flt_lock);
    if (Filter->unregistering) {
        pthread_mutex_unlock(&flt_lock);
        return;
    }
    Filter->unregistering = true;
    struct _FLT_INSTANCE *insts = Filter->instances;
    struct flt_file *files = Filter->files;
    Filter->instances = NULL;
    Filter->files = NULL;
    pthread_mutex_unlock(&flt_lock);

    /* Close what the filter opened (waits for its I/O), then the instances. */
    while (files) {
        struct flt_file *next = files->next;
        flt_file_close(files);
        flt_release(&files->hdr);
        files = next;
    }
    while (insts) {
        struct _FLT_INSTANCE *next = insts->next;
        insts->attached = false;
        flt_instance_teardown(insts, FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD);
        flt_release(&insts->hdr);
        insts = next;
    }
    if (flt_driver_alive(Filter->driver))
        WdfObjectDelete(Filter->device);
    Filter->device = NULL;
    flt_release(&Filter->hdr);
}

/* ---- volumes and instances ---- */

NTSTATUS FltGetVolumeFromName(PFLT_FILTER Filter, PCUNICODE_STRING VolumeName, PFLT_VOLUME *RetVolume)
{
    UWDF_REQUIRE_PARAM(Filter, "FltGetVolumeFromName", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(VolumeName, "FltGetVolumeFromName", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(RetVolume, "FltGetVolumeFromName", STATUS_INVALID_PARAMETER);
    *RetVolume = NULL;
    if (!flt_is(Filter, FLT_MAGIC_FILTER, "FltGetVolumeFromName") || !VolumeName->Buffer || VolumeName->Length == 0 ||
        flt_name_has_nul(VolumeName))
        return STATUS_INVALID_PARAMETER;
    if (Filter->unregistering)
        return STATUS_FLT_DELETING_OBJECT;
    char *name = uwdf_unicode_to_utf8(VolumeName);
    if (!name)
        return STATUS_INSUFFICIENT_RESOURCES;
    NTSTATUS status;
    struct _FLT_VOLUME *v = NULL;
    struct stat st;
    if (stat(name, &st) != 0) {
        status = errno == ENOENT || errno == ENOTDIR ? STATUS_OBJECT_NAME_NOT_FOUND : uwdf_status_from_errno(errno);
        goto fail;
    }
    status = STATUS_INVALID_PARAMETER;
    if (!S_ISDIR(st.st_mode) && !S_ISBLK(st.st_mode))
        goto fail;
    status = STATUS_INSUFFICIENT_RESOURCES;
    v = uwdf_zalloc(sizeof(*v));
    if (!v)
        goto fail;
    v->root.fd = -1;
    v->is_block = S_ISBLK(st.st_mode);
    if (v->is_block) {
        v->rdev = st.st_rdev;
        v->path = realpath(name, NULL);
        if (!v->path) {
            status = uwdf_status_from_errno(errno);
            goto fail;
        }
    } else {
        status = uwdf_root_open(&v->root, name);
        if (!NT_SUCCESS(status))
            goto fail;
        v->path = strdup(v->root.path);
        if (!v->path) {
            status = STATUS_INSUFFICIENT_RESOURCES;
            goto fail;
        }
    }
    if (name[0] == '/')
        v->name = name;
    else
        uwdf_free(name);
    v->hdr.magic = FLT_MAGIC_VOLUME;
    atomic_init(&v->hdr.refs, 1);
    atomic_fetch_add(&Filter->hdr.refs, 1);
    v->filter = Filter;
    *RetVolume = v;
    return STATUS_SUCCESS;
fail:
    if (v) {
        uwdf_root_close(&v->root);
        free(v->path);
        uwdf_free(v);
    }
    uwdf_free(name);
    return status;
}

NTSTATUS FltAttachVolume(PFLT_FILTER Filter, PFLT_VOLUME Volume, PCUNICODE_STRING InstanceName,
                         PFLT_INSTANCE *RetInstance)
{
    (void)InstanceName;
    UWDF_REQUIRE_PARAM(Filter, "FltAttachVolume", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(Volume, "FltAttachVolume", STATUS_INVALID_PARAMETER);
    if (RetInstance)
        *RetInstance = NULL;
    if (!flt_is(Filter, FLT_MAGIC_FILTER, "FltAttachVolume") || !flt_is(Volume, FLT_MAGIC_VOLUME, "FltAttachVolume"))
        return STATUS_INVALID_PARAMETER;
    if (Filter->unregistering)
        return STATUS_FLT_DELETING_OBJECT;
    struct _FLT_INSTANCE *i = uwdf_zalloc(sizeof(*i));
    if (!i)
        return STATUS_INSUFFICIENT_RESOURCES;
    i->hdr.magic = FLT_MAGIC_INSTANCE;
    atomic_init(&i->hdr.refs, 1);
    i->filter = Filter;
    i->volume = Volume;
    atomic_fetch_add(&Filter->hdr.refs, 1);
    atomic_fetch_add(&Volume->hdr.refs, 1);
    if (Filter->reg.InstanceSetupCallback) {
        FLT_RELATED_OBJECTS ro = {
            .Size = sizeof(FLT_RELATED_OBJECTS), .Filter = Filter, .Volume = Volume, .Instance = i,
        };
        NTSTATUS status = Filter->reg.InstanceSetupCallback(
            &ro, FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT,
            Volume->is_block ? FILE_DEVICE_DISK : FILE_DEVICE_FILE_SYSTEM, FLT_FSTYPE_UNKNOWN);
        if (!NT_SUCCESS(status)) {
            flt_release(&i->hdr);
            return status;
        }
    }
    pthread_mutex_lock(&flt_lock);
    if (Filter->unregistering) {
        pthread_mutex_unlock(&flt_lock);
        flt_release(&i->hdr);
        return STATUS_FLT_DELETING_OBJECT;
    }
    i->attached = true;
    i->next = Filter->instances;
    Filter->instances = i; /* the list's reference */
    if (RetInstance) {
        atomic_fetch_add(&i->hdr.refs, 1);
        *RetInstance = i;
    }
    pthread_mutex_unlock(&flt_lock);
    return STATUS_SUCCESS;
}

NTSTATUS FltDetachVolume(PFLT_FILTER Filter, PFLT_VOLUME Volume, PCUNICODE_STRING InstanceName)
{
    (void)InstanceName;
    UWDF_REQUIRE_PARAM(Filter, "FltDetachVolume", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(Volume, "FltDetachVolume", STATUS_INVALID_PARAMETER);
    if (!flt_is(Filter, FLT_MAGIC_FILTER, "FltDetachVolume") || !flt_is(Volume, FLT_MAGIC_VOLUME, "FltDetachVolume"))
        return STATUS_INVALID_PARAMETER;
    struct _FLT_INSTANCE *found = NULL;
    pthread_mutex_lock(&flt_lock);
    for (struct _FLT_INSTANCE **pp = &Filter->instances; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->volume->path, Volume->path) == 0) {
            found = *pp;
            *pp = found->next;
            found->attached = false;
            break;
        }
    pthread_mutex_unlock(&flt_lock);
    if (!found)
        return STATUS_FLT_INSTANCE_NOT_FOUND;
    flt_instance_teardown(found, FLTFL_INSTANCE_TEARDOWN_MANUAL);
    flt_release(&found->hdr);
    return STATUS_SUCCESS;
}

VOID FltObjectDereference(PVOID FltObject)
{
    UWDF_REQUIRE_PARAM(FltObject, "FltObjectDereference", );
    struct flt_hdr *h = FltObject;
    if (h->magic != FLT_MAGIC_FILTER && h->magic != FLT_MAGIC_VOLUME && h->magic != FLT_MAGIC_INSTANCE) {
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)FltObject, 0, 0,
                      "FltObjectDereference: %p is not a filter, volume or instance", FltObject);
        return;
    }
    flt_release(h);
}

/* ---- files ---- */

static bool flt_is_volume_device(const struct _FLT_VOLUME *v, const struct stat *st)
{
    return S_ISBLK(st->st_mode) && st->st_rdev == v->rdev;
}

/* A block-device volume's one file, by any name of the device (the
 * filter's own name, opened by name). What the open returns is checked to
 * be the device, so a name swapped meanwhile is refused, never followed
 * elsewhere; a device is neither created nor truncated. */
static NTSTATUS flt_open_device(const struct _FLT_VOLUME *v, const char *path, ULONG disposition, int oflags, int *fd,
                                ULONG_PTR *information)
{
    struct stat st;
    int probe = open(path, O_PATH | O_CLOEXEC);
    if (probe < 0)
        return errno == ENOENT || errno == ENOTDIR ? STATUS_OBJECT_NAME_NOT_FOUND : STATUS_ACCESS_DENIED;
    bool same = fstat(probe, &st) == 0 && flt_is_volume_device(v, &st);
    close(probe);
    if (!same)
        return STATUS_ACCESS_DENIED;
    if (disposition == FILE_CREATE)
        return STATUS_OBJECT_NAME_COLLISION;
    int r = open(path, oflags | O_NONBLOCK | O_NOCTTY);
    if (r < 0)
        return uwdf_status_from_errno(errno);
    if (fstat(r, &st) != 0 || !flt_is_volume_device(v, &st)) {
        close(r);
        return STATUS_ACCESS_DENIED;
    }
    *fd = r;
    *information = uwdf_create_information(disposition);
    return STATUS_SUCCESS;
}

/* The volume's file the absolute name path names, opened. A directory
 * volume's names are its path (as got, or canonical) followed by a name
 * beneath it, resolved beneath the directory held (lib/resolve.c). */
static NTSTATUS flt_open_name(const struct _FLT_VOLUME *v, const char *path, ULONG disposition, int oflags, int *fd,
                              ULONG_PTR *information)
{
    if (path[0] != '/')
        return STATUS_OBJECT_NAME_INVALID;
    /* Windows refuses a file name that ends in a separator; "." and ".."
     * name no file. */
    const char *base = strrchr(path, '/') + 1;
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return STATUS_OBJECT_NAME_INVALID;
    if (v->is_block)
        return flt_open_device(v, path, disposition, oflags, fd, information);
    const char *rel = uwdf_path_after_prefix(v->path, path);
    if (!rel && v->name)
        rel = uwdf_path_after_prefix(v->name, path);
    if (!rel)
        return STATUS_ACCESS_DENIED;
    return uwdf_root_open_file(&v->root, rel, disposition, oflags | O_NONBLOCK, fd, information);
}

NTSTATUS FltCreateFileEx(PFLT_FILTER Filter, PFLT_INSTANCE Instance, PHANDLE FileHandle,
                         PFILE_OBJECT *FileObject, ACCESS_MASK DesiredAccess,
                         POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
                         PLARGE_INTEGER AllocationSize, ULONG FileAttributes, ULONG ShareAccess,
                         ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer, ULONG EaLength,
                         ULONG Flags)
{
    (void)Flags;
    UWDF_REQUIRE_PARAM(Filter, "FltCreateFileEx", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(FileHandle, "FltCreateFileEx", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(ObjectAttributes, "FltCreateFileEx", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(IoStatusBlock, "FltCreateFileEx", STATUS_INVALID_PARAMETER);
    *FileHandle = NULL;
    if (FileObject)
        *FileObject = NULL;
    IoStatusBlock->Information = 0;
    NTSTATUS status = STATUS_SUCCESS;
    char *path = NULL;
    WDFIOTARGET target = NULL;

    if (!uwdf_irql_check_passive("FltCreateFileEx")) {
        status = STATUS_INVALID_DEVICE_REQUEST;
        goto out;
    }
    if (!flt_is(Filter, FLT_MAGIC_FILTER, "FltCreateFileEx") || !Instance ||
        !flt_is(Instance, FLT_MAGIC_INSTANCE, "FltCreateFileEx") ||
        Instance->filter != Filter || !ObjectAttributes->ObjectName || !ObjectAttributes->ObjectName->Buffer ||
        ObjectAttributes->ObjectName->Length == 0) {
        status = STATUS_INVALID_PARAMETER;
        goto out;
    }
    if (Filter->unregistering || !Instance->attached) {
        status = STATUS_FLT_DELETING_OBJECT;
        goto out;
    }
    if (flt_name_has_nul(ObjectAttributes->ObjectName)) {
        status = STATUS_OBJECT_NAME_INVALID;
        goto out;
    }
    WDF_IO_TARGET_OPEN_PARAMS op;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_CREATE_BY_NAME(&op, ObjectAttributes->ObjectName, DesiredAccess);
    op.ShareAccess = ShareAccess;
    op.FileAttributes = FileAttributes;
    op.CreateDisposition = CreateDisposition;
    op.CreateOptions = CreateOptions;
    op.EaBuffer = EaBuffer;
    op.EaBufferLength = EaLength;
    op.AllocationSize = AllocationSize ? &AllocationSize->QuadPart : NULL;
    int oflags;
    status = uwdf_iotarget_open_flags(&op, &oflags);
    if (!NT_SUCCESS(status))
        goto out;
    path = uwdf_unicode_to_utf8(ObjectAttributes->ObjectName);
    if (!path) {
        status = STATUS_INSUFFICIENT_RESOURCES;
        goto out;
    }
    status = WdfIoTargetCreate(Filter->device, WDF_NO_OBJECT_ATTRIBUTES, &target);
    if (!NT_SUCCESS(status))
        goto out;
    int fd;
    ULONG_PTR information;
    status = flt_open_name(Instance->volume, path, CreateDisposition, oflags, &fd, &information);
    if (!NT_SUCCESS(status))
        goto out;
    status = uwdf_iotarget_open_fd(target, &op, fd, oflags, path);
    if (!NT_SUCCESS(status))
        goto out;
    struct flt_file *file = uwdf_zalloc(sizeof(*file));
    if (!file) {
        status = STATUS_INSUFFICIENT_RESOURCES;
        goto out;
    }
    file->fo = *WdfIoTargetWdmGetTargetFileObject(target);
    file->fo.FsContext2 = file;
    file->fo.CurrentByteOffset.QuadPart = 0;
    if (CreateOptions & (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT))
        file->fo.Flags |= FO_SYNCHRONOUS_IO;
    file->hdr.magic = FLT_MAGIC_FILE;
    atomic_init(&file->hdr.refs, FileObject ? 2 : 1); /* the handle, the object pointer */
    file->filter = Filter;
    file->instance = Instance;
    atomic_fetch_add(&Instance->hdr.refs, 1);
    file->target = target;
    file->fd = (int)(intptr_t)WdfIoTargetWdmGetTargetFileHandle(target);
    target = NULL;
    pthread_mutex_lock(&flt_lock);
    file->next = Filter->files;
    Filter->files = file;
    pthread_mutex_unlock(&flt_lock);
    *FileHandle = (HANDLE)(intptr_t)file->fd;
    if (FileObject)
        *FileObject = &file->fo;
    IoStatusBlock->Information = information;
out:
    if (target)
        WdfObjectDelete(target);
    uwdf_free(path);
    IoStatusBlock->Status = status;
    return status;
}

NTSTATUS FltClose(HANDLE FileHandle)
{
    struct flt_file *found = NULL;
    if (!uwdf_irql_check_passive("FltClose"))
        return STATUS_INVALID_DEVICE_REQUEST;
    pthread_mutex_lock(&flt_lock);
    for (struct _FLT_FILTER *f = flt_filters; f && !found; f = f->next)
        for (struct flt_file **pp = &f->files; *pp; pp = &(*pp)->next)
            if ((HANDLE)(intptr_t)(*pp)->fd == FileHandle) {
                found = *pp;
                *pp = found->next;
                break;
            }
    pthread_mutex_unlock(&flt_lock);
    if (!found)
        return STATUS_INVALID_HANDLE;
    flt_file_close(found);
    flt_release(&found->hdr);
    return STATUS_SUCCESS;
}

VOID ObReferenceObject(PVOID Object)
{
    struct flt_file *file = flt_file_from_object(Object);
    if (file)
        atomic_fetch_add(&file->hdr.refs, 1);
}

VOID ObDereferenceObject(PVOID Object)
{
    UWDF_REQUIRE_PARAM(Object, "ObDereferenceObject", );
    struct flt_file *file = flt_file_from_object(Object);
    if (!file) {
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)Object, 0, 0,
                      "ObDereferenceObject: %p is not a file object from FltCreateFileEx", Object);
        return;
    }
    flt_release(&file->hdr);
}

/* ---- callback data ---- */

static void flt_data_reset(struct flt_data *d)
{
    PFILE_OBJECT fo = d->iopb.TargetFileObject;
    PFLT_INSTANCE inst = d->iopb.TargetInstance;
    memset(&d->iopb, 0, sizeof(d->iopb));
    d->iopb.TargetFileObject = fo;
    d->iopb.TargetInstance = inst;
    d->data.Flags = FLTFL_CALLBACK_DATA_IRP_OPERATION | FLTFL_CALLBACK_DATA_GENERATED_IO;
    d->data.IoStatus.Status = STATUS_SUCCESS;
    d->data.IoStatus.Information = 0;
    d->data.TagData = NULL;
    d->data.RequestorMode = KernelMode;
    d->no_update_pos = false;
}

/* The MDL chain attached to a read or write, whoever allocated it. */
static void flt_data_free_mdls(struct flt_data *d)
{
    if (d->iopb.MajorFunction != IRP_MJ_READ && d->iopb.MajorFunction != IRP_MJ_WRITE)
        return;
    PMDL m = d->iopb.Parameters.Read.MdlAddress;
    d->iopb.Parameters.Read.MdlAddress = NULL;
    while (m) {
        PMDL next = m->Next;
        IoFreeMdl(m);
        m = next;
    }
}

NTSTATUS FltAllocateCallbackDataEx(PFLT_INSTANCE Instance, PFILE_OBJECT FileObject,
                                   FLT_ALLOCATE_CALLBACK_DATA_FLAGS Flags, PFLT_CALLBACK_DATA *RetNewCallbackData)
{
    UWDF_REQUIRE_PARAM(Instance, "FltAllocateCallbackDataEx", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(RetNewCallbackData, "FltAllocateCallbackDataEx", STATUS_INVALID_PARAMETER);
    *RetNewCallbackData = NULL;
    if (!flt_is(Instance, FLT_MAGIC_INSTANCE, "FltAllocateCallbackDataEx") ||
        (Flags & ~(ULONG)FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY))
        return STATUS_INVALID_PARAMETER;
    if (Instance->filter->unregistering || !Instance->attached)
        return STATUS_FLT_DELETING_OBJECT;
    struct flt_file *file = NULL;
    if (FileObject) {
        file = flt_file_from_object(FileObject);
        if (!file)
            return STATUS_INVALID_PARAMETER;
    }
    struct flt_data *d = uwdf_zalloc(sizeof(*d));
    if (!d)
        return STATUS_INSUFFICIENT_RESOURCES;
    d->magic = FLT_MAGIC_DATA;
    *(PFLT_IO_PARAMETER_BLOCK *)&d->data.Iopb = &d->iopb;
    d->driver = Instance->filter->driver;
    if (Flags & FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY) {
        /* The request and its IRP are everything a perform needs. */
        WDFIOTARGET t = file && !file->closed ? file->target : NULL;
        if (!NT_SUCCESS(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &d->req)) ||
            !NT_SUCCESS(uwdf_request_preallocate(uwdf_request_lookup(d->req, "FltAllocateCallbackDataEx")))) {
            if (d->req)
                WdfObjectDelete(d->req);
            uwdf_free(d);
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        d->req_target = t;
    }
    atomic_fetch_add(&Instance->hdr.refs, 1);
    uwdf_count_add(UWDF_COUNTED_FLT_CALLBACK_DATA, 1);
    d->instance = Instance;
    d->iopb.TargetInstance = Instance;
    d->iopb.TargetFileObject = FileObject;
    flt_data_reset(d);
    *RetNewCallbackData = &d->data;
    return STATUS_SUCCESS;
}

NTSTATUS FltAllocateCallbackData(PFLT_INSTANCE Instance, PFILE_OBJECT FileObject, PFLT_CALLBACK_DATA *RetNewCallbackData)
{
    return FltAllocateCallbackDataEx(Instance, FileObject, 0, RetNewCallbackData);
}

static bool flt_data_check_idle(struct flt_data *d, const char *ddi)
{
    /* Another thread that the callback woke may reuse or free the block
     * while the callback is still returning; wait for it to be out, as the
     * framework still touches the block on the way. */
    while (atomic_load(&d->state) == UWDF_FLT_DATA_CALLBACK_RUNNING && !pthread_equal(d->cb_thread, pthread_self()))
        sched_yield();
    if (atomic_load(&d->state) != UWDF_FLT_DATA_IN_FLIGHT)
        return true;
    uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)&d->data, 0, 0,
                  "%s: callback data %p has asynchronous I/O that has not called back yet "
                  "(rule FltCallbackDataReuse)", ddi,
                  (void *)&d->data);
    return false;
}

/* Iopb -> the request's next stack location, ready to send. */
static NTSTATUS flt_data_prepare(struct flt_data *d, struct flt_file *file)
{
    PFLT_IO_PARAMETER_BLOCK p = &d->iopb;
    IO_STACK_LOCATION s;
    PVOID buffer = NULL;
    PMDL mdl = NULL;
    NTSTATUS status;

    memset(&s, 0, sizeof(s));
    d->rw = false;
    d->file = file;
    s.MajorFunction = p->MajorFunction;
    s.MinorFunction = p->MinorFunction;
    s.FileObject = &file->fo;
    switch (p->MajorFunction) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE: {
        LARGE_INTEGER bo = p->Parameters.Read.ByteOffset;
        LONGLONG off = bo.QuadPart;
        if (bo.HighPart == -1 && bo.LowPart == FILE_USE_FILE_POINTER_POSITION) {
            off = file->fo.CurrentByteOffset.QuadPart;
        } else if (bo.HighPart == -1 && bo.LowPart == FILE_WRITE_TO_END_OF_FILE &&
                   p->MajorFunction == IRP_MJ_WRITE) {
            off = lseek(file->fd, 0, SEEK_END);
            if (off < 0)
                return uwdf_status_from_errno(errno);
        }
        s.Parameters.Read.Length = p->Parameters.Read.Length;
        s.Parameters.Read.Key = p->Parameters.Read.Key;
        s.Parameters.Read.ByteOffset.QuadPart = off;
        mdl = p->Parameters.Read.MdlAddress;
        buffer = mdl ? NULL : p->Parameters.Read.ReadBuffer;
        d->rw = true;
        d->offset = off;
        break;
    }
    case IRP_MJ_FLUSH_BUFFERS:
        break;
    case IRP_MJ_CREATE:
        return STATUS_NOT_SUPPORTED; /* FltCreateFileEx opens files */
    default:
        return STATUS_INVALID_DEVICE_REQUEST;
    }

    if (!d->req) {
        /* With its IRP at once: the VOID format below cannot report a failure. */
        if (!NT_SUCCESS(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, file->target, &d->req)))
            return STATUS_INSUFFICIENT_RESOURCES;
        if (!NT_SUCCESS(uwdf_request_preallocate(uwdf_request_lookup(d->req, "FltPerformIo")))) {
            WdfObjectDelete(d->req);
            d->req = NULL;
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        d->req_target = file->target;
    } else if (d->req_used) {
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        status = WdfRequestReuse(d->req, &rp);
        if (!NT_SUCCESS(status))
            return status;
    }
    d->req_used = false;
    if (d->req_target != file->target) {
        status = WdfRequestChangeTarget(d->req, file->target);
        if (!NT_SUCCESS(status))
            return status;
        d->req_target = file->target;
    }
    WdfRequestWdmFormatUsingStackLocation(d->req, &s);
    PIRP irp = WdfRequestWdmGetIrp(d->req);
    irp->MdlAddress = mdl;
    irp->UserBuffer = buffer;
    irp->Flags = p->IrpFlags;
    d->req_used = true;
    return STATUS_SUCCESS;
}

static void flt_data_result(struct flt_data *d, NTSTATUS status, ULONG_PTR info)
{
    d->data.IoStatus.Status = status;
    d->data.IoStatus.Information = info;
    if (d->rw && NT_SUCCESS(status) && !d->no_update_pos && d->file)
        d->file->fo.CurrentByteOffset.QuadPart = d->offset + (LONGLONG)info;
}

/* Runs the asynchronous callback at PASSIVE_LEVEL; the block may be
 * reused, performed again or freed inside it. */
static void flt_data_deliver(struct flt_data *d, NTSTATUS status, ULONG_PTR info)
{
    struct flt_frame frame = { .freed = false, .prev = d->frames };
    PFLT_COMPLETED_ASYNC_IO_CALLBACK cb = d->cb;
    PVOID ctx = d->ctx;
    flt_data_result(d, status, info);
    d->frames = &frame;
    d->cb_thread = pthread_self();
    uwdf_flt_data_call_back(&d->state, &d->data);
    KIRQL old = uwdf_tls_irql;
    uwdf_tls_irql = PASSIVE_LEVEL;
    cb(&d->data, ctx);
    uwdf_tls_irql = old;
    if (frame.freed)
        return;
    d->frames = frame.prev;
    if (!frame.prev)
        uwdf_flt_data_callback_returned(&d->state, &d->data);
}

static void flt_request_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                             WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    flt_data_deliver((struct flt_data *)Context, Params->IoStatus.Status, Params->IoStatus.Information);
}

static struct flt_file *flt_data_file(struct flt_data *d, NTSTATUS *status)
{
    struct flt_file *file = flt_file_from_object(d->iopb.TargetFileObject);
    if (!file)
        *status = STATUS_INVALID_PARAMETER;
    else if (file->closed || !file->target)
        *status = STATUS_FILE_CLOSED;
    else
        *status = STATUS_SUCCESS;
    return NT_SUCCESS(*status) ? file : NULL;
}

VOID FltPerformSynchronousIo(PFLT_CALLBACK_DATA CallbackData)
{
    struct flt_data *d = flt_data_from(CallbackData, "FltPerformSynchronousIo");
    NTSTATUS status;
    if (!d || !flt_data_check_idle(d, "FltPerformSynchronousIo"))
        return;
    d->file = NULL;
    d->rw = false;
    struct flt_file *file = flt_data_file(d, &status);
    if (!file)
        goto fail;
    if (d->iopb.MajorFunction == IRP_MJ_CREATE) {
        status = STATUS_NOT_SUPPORTED;
        goto fail;
    }
    struct uwdf_iotarget *t = uwdf_iotarget_lookup(file->target, "FltPerformSynchronousIo");
    if (!t) {
        status = STATUS_INVALID_HANDLE;
        goto fail;
    }
    /* On an engine thread (an asynchronous callback) a synchronous I/O
     * would wait for that thread itself, or stall every target the engine
     * serves; which files share an engine is the pool's choice, so it is
     * refused for all of them. */
    if (KeGetCurrentIrql() > PASSIVE_LEVEL || uwdf_engine_thread()) {
        if (uwdf_verifier)
            uwdf_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, KeGetCurrentIrql(), PASSIVE_LEVEL, 0,
                          "FltPerformSynchronousIo on an engine (completion) thread would deadlock or stall "
                          "its targets (rule KmdfIrql)");
        status = STATUS_INVALID_DEVICE_REQUEST;
        goto fail;
    }
    status = flt_data_prepare(d, file);
    if (!NT_SUCCESS(status))
        goto fail;
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    WdfRequestSend(d->req, file->target, &o);
    flt_data_result(d, WdfRequestGetStatus(d->req), WdfRequestGetInformation(d->req));
    return;
fail:
    flt_data_result(d, status, 0);
}

NTSTATUS FltPerformAsynchronousIo(PFLT_CALLBACK_DATA CallbackData, PFLT_COMPLETED_ASYNC_IO_CALLBACK CallbackRoutine,
                                  PVOID CallbackContext)
{
    struct flt_data *d = flt_data_from(CallbackData, "FltPerformAsynchronousIo");
    UWDF_REQUIRE_PARAM(CallbackRoutine, "FltPerformAsynchronousIo", STATUS_INVALID_PARAMETER);
    NTSTATUS status;
    if (!d)
        return STATUS_INVALID_PARAMETER;
    if (!flt_data_check_idle(d, "FltPerformAsynchronousIo"))
        return STATUS_INVALID_DEVICE_REQUEST;
    d->cb = CallbackRoutine;
    d->ctx = CallbackContext;
    d->file = NULL;
    d->rw = false;
    if (d->iopb.MajorFunction == IRP_MJ_CREATE) {
        /* Not allowed asynchronously; the callback still runs, once. */
        uwdf_flt_data_start_io(&d->state, &d->data);
        flt_data_deliver(d, STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST, 0);
        return STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST;
    }
    uwdf_flt_data_start_io(&d->state, &d->data);
    struct flt_file *file = flt_data_file(d, &status);
    if (file)
        status = flt_data_prepare(d, file);
    if (NT_SUCCESS(status)) {
        WdfRequestSetCompletionRoutine(d->req, flt_request_done, d);
        if (WdfRequestSend(d->req, file->target, WDF_NO_SEND_OPTIONS))
            return STATUS_PENDING; /* d may be gone already */
        status = WdfRequestGetStatus(d->req);
        if (NT_SUCCESS(status))
            status = STATUS_UNSUCCESSFUL;
    }
    /* Failed before it reached the engine: the callback runs now, and
     * STATUS_SUCCESS says it has run. */
    flt_data_deliver(d, status, 0);
    return STATUS_SUCCESS;
}

/* The documented IRQL ceiling of a callback-data DDI: above it, a bug
 * check with the verifier; otherwise the DDI does nothing (they return no
 * status), which the log says. */
static bool flt_irql_at_most(KIRQL max, const char *ddi)
{
    KIRQL irql = KeGetCurrentIrql();
    if (UWDF_LIKELY(irql <= max))
        return true;
    if (uwdf_verifier)
        uwdf_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, irql, max, 0,
                      "%s must be called at IRQL <= %u, called at IRQL %u (rule KmdfIrql)", ddi, max, irql);
    else
        uwdf_log_at(UwdfLogVerifier, "%s called at IRQL %u (at most %u allowed): refused", ddi, irql, max);
    return false;
}

VOID FltReuseCallbackData(PFLT_CALLBACK_DATA CallbackData)
{
    struct flt_data *d = flt_data_from(CallbackData, "FltReuseCallbackData");
    if (!d || !flt_irql_at_most(APC_LEVEL, "FltReuseCallbackData") ||
        !flt_data_check_idle(d, "FltReuseCallbackData"))
        return;
    flt_data_free_mdls(d);
    if (d->req && d->req_used) {
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        if (NT_SUCCESS(WdfRequestReuse(d->req, &rp)))
            d->req_used = false;
    }
    flt_data_reset(d);
}

VOID FltFreeCallbackData(PFLT_CALLBACK_DATA CallbackData)
{
    struct flt_data *d = flt_data_from(CallbackData, "FltFreeCallbackData");
    if (!d || !flt_irql_at_most(DISPATCH_LEVEL, "FltFreeCallbackData") ||
        !flt_data_check_idle(d, "FltFreeCallbackData"))
        return;
    flt_data_free_mdls(d);
    if (d->req) {
        if (flt_driver_alive(d->driver))
            WdfObjectDelete(d->req);
    }
    for (struct flt_frame *f = d->frames; f; f = f->prev)
        f->freed = true;
    struct _FLT_INSTANCE *inst = d->instance;
    d->magic = 0;
    uwdf_free(d);
    uwdf_count_add(UWDF_COUNTED_FLT_CALLBACK_DATA, -1);
    flt_release(&inst->hdr);
}

/* The operation the callback data describes, once more and synchronously,
 * with its parameters as they are now (a post-operation routine may have
 * changed them); the result replaces IoStatus. The port has one filter
 * layer, so the I/O goes from InitiatingInstance straight to the file. */
VOID FltReissueSynchronousIo(PFLT_INSTANCE InitiatingInstance, PFLT_CALLBACK_DATA CallbackData)
{
    static const char ddi[] = "FltReissueSynchronousIo";
    UWDF_REQUIRE_PARAM(InitiatingInstance, ddi, );
    struct flt_data *d = flt_data_from(CallbackData, ddi);
    if (!d || !flt_data_check_idle(d, ddi))
        return;
    /* <= APC_LEVEL, and PASSIVE_LEVEL for all but paging I/O: the port
     * has no APC_LEVEL, so PASSIVE_LEVEL. */
    if (!flt_irql_at_most(d->iopb.IrpFlags & IRP_PAGING_IO ? APC_LEVEL : PASSIVE_LEVEL, ddi)) {
        flt_data_result(d, STATUS_INVALID_DEVICE_REQUEST, 0);
        return;
    }
    if (!flt_is(InitiatingInstance, FLT_MAGIC_INSTANCE, ddi) ||
        InitiatingInstance->filter != d->instance->filter) {
        flt_data_result(d, STATUS_INVALID_PARAMETER, 0);
        return;
    }
    FltPerformSynchronousIo(CallbackData);
}

/* ---- FltReadFile / FltWriteFile ---- */

static void flt_rw_done(PFLT_CALLBACK_DATA Data, PFLT_CONTEXT Context)
{
    struct flt_data *d = Context;
    d->user_cb(Data, d->user_ctx);
    FltFreeCallbackData(Data);
}

static NTSTATUS flt_rw(PFLT_INSTANCE Instance, PFILE_OBJECT FileObject, PLARGE_INTEGER ByteOffset, ULONG Length,
                       PVOID Buffer, FLT_IO_OPERATION_FLAGS Flags, PULONG Bytes,
                       PFLT_COMPLETED_ASYNC_IO_CALLBACK CallbackRoutine, PVOID CallbackContext, bool write)
{
    PFLT_CALLBACK_DATA data;
    if (Bytes && !CallbackRoutine)
        *Bytes = 0;
    UWDF_REQUIRE_PARAM(FileObject, write ? "FltWriteFile" : "FltReadFile", STATUS_INVALID_PARAMETER);
    NTSTATUS status = FltAllocateCallbackData(Instance, FileObject, &data);
    if (!NT_SUCCESS(status))
        return status;
    struct flt_data *d = (struct flt_data *)data;
    PFLT_IO_PARAMETER_BLOCK p = data->Iopb;
    p->MajorFunction = write ? IRP_MJ_WRITE : IRP_MJ_READ;
    p->IrpFlags = (write ? IRP_WRITE_OPERATION : IRP_READ_OPERATION) |
                  ((Flags & FLTFL_IO_OPERATION_NON_CACHED) ? IRP_NOCACHE : 0) |
                  ((Flags & FLTFL_IO_OPERATION_PAGING) ? IRP_PAGING_IO : 0) |
                  ((Flags & FLTFL_IO_OPERATION_SYNCHRONOUS_PAGING) ? IRP_SYNCHRONOUS_PAGING_IO : 0) |
                  (CallbackRoutine ? 0 : IRP_SYNCHRONOUS_API);
    p->Parameters.Read.Length = Length;
    if (ByteOffset) {
        p->Parameters.Read.ByteOffset = *ByteOffset;
    } else {
        p->Parameters.Read.ByteOffset.HighPart = -1;
        p->Parameters.Read.ByteOffset.LowPart = FILE_USE_FILE_POINTER_POSITION;
    }
    p->Parameters.Read.ReadBuffer = Buffer;
    d->no_update_pos = (Flags & FLTFL_IO_OPERATION_DO_NOT_UPDATE_BYTE_OFFSET) != 0;
    if (!CallbackRoutine) {
        FltPerformSynchronousIo(data);
        status = data->IoStatus.Status;
        if (Bytes)
            *Bytes = (ULONG)data->IoStatus.Information;
        FltFreeCallbackData(data);
        return status;
    }
    d->user_cb = CallbackRoutine;
    d->user_ctx = CallbackContext;
    return FltPerformAsynchronousIo(data, flt_rw_done, d);
}

NTSTATUS FltReadFile(PFLT_INSTANCE InitiatingInstance, PFILE_OBJECT FileObject, PLARGE_INTEGER ByteOffset,
                     ULONG Length, PVOID Buffer, FLT_IO_OPERATION_FLAGS Flags, PULONG BytesRead,
                     PFLT_COMPLETED_ASYNC_IO_CALLBACK CallbackRoutine, PVOID CallbackContext)
{
    return flt_rw(InitiatingInstance, FileObject, ByteOffset, Length, Buffer, Flags, BytesRead, CallbackRoutine,
                  CallbackContext, false);
}

NTSTATUS FltWriteFile(PFLT_INSTANCE InitiatingInstance, PFILE_OBJECT FileObject, PLARGE_INTEGER ByteOffset,
                      ULONG Length, PVOID Buffer, FLT_IO_OPERATION_FLAGS Flags, PULONG BytesWritten,
                      PFLT_COMPLETED_ASYNC_IO_CALLBACK CallbackRoutine, PVOID CallbackContext)
{
    return flt_rw(InitiatingInstance, FileObject, ByteOffset, Length, Buffer, Flags, BytesWritten, CallbackRoutine,
                  CallbackContext, true);
}

/* ---- dirty flag ---- */

VOID FltSetCallbackDataDirty(PFLT_CALLBACK_DATA Data)
{
    UWDF_REQUIRE_PARAM(Data, "FltSetCallbackDataDirty", );
    Data->Flags |= FLTFL_CALLBACK_DATA_DIRTY;
}

VOID FltClearCallbackDataDirty(PFLT_CALLBACK_DATA Data)
{
    UWDF_REQUIRE_PARAM(Data, "FltClearCallbackDataDirty", );
    Data->Flags &= ~(FLT_CALLBACK_DATA_FLAGS)FLTFL_CALLBACK_DATA_DIRTY;
}

BOOLEAN FltIsCallbackDataDirty(PFLT_CALLBACK_DATA Data)
{
    UWDF_REQUIRE_PARAM(Data, "FltIsCallbackDataDirty", FALSE);
    return (Data->Flags & FLTFL_CALLBACK_DATA_DIRTY) != 0;
}
