/* Loading and unloading drivers: a DRIVER_OBJECT and RegistryPath made by
 * the framework, DriverEntry called as the I/O manager calls it (by
 * pointer, or from a shared object's DriverEntry symbol), and the unload
 * in WDF's order. */
#include "runtime.h"
#include "host.h"
#include "object.h"

#include <dlfcn.h>
#include <strings.h>

#define SERVICES_KEY "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\"

struct hosted_driver {
    struct hosted_driver *next;
    char *name;
    DRIVER_OBJECT wdm;
    UNICODE_STRING registry_path;
    void *dl; /* dlopen handle, or NULL for a driver linked in */
    struct uwdf_driver *driver;
};

/* Loads and unloads one at a time, as the I/O manager does; the list is
 * read under list_lock. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hosted_driver *hosted;

NTSTATUS uwdf_host_unicode(const char *utf8, PUNICODE_STRING out)
{
    size_t len = strlen(utf8);
    ULONG bytes = 0;
    if (len > 0x7FFF)
        return STATUS_NAME_TOO_LONG;
    NTSTATUS st = RtlUTF8ToUnicodeN(NULL, 0, &bytes, utf8, (ULONG)len);
    if (!NT_SUCCESS(st))
        return st;
    if (bytes + sizeof(WCHAR) > 0xFFFF)
        return STATUS_NAME_TOO_LONG;
    PWSTR buf = uwdf_alloc(bytes + sizeof(WCHAR));
    if (!buf)
        return STATUS_INSUFFICIENT_RESOURCES;
    st = RtlUTF8ToUnicodeN(buf, bytes, &bytes, utf8, (ULONG)len);
    if (!NT_SUCCESS(st)) {
        uwdf_free(buf);
        return st;
    }
    buf[bytes / sizeof(WCHAR)] = 0;
    out->Buffer = buf;
    out->Length = (USHORT)bytes;
    out->MaximumLength = (USHORT)(bytes + sizeof(WCHAR));
    return STATUS_SUCCESS;
}

struct uwdf_driver *uwdf_host_find_driver(const char *name)
{
    struct uwdf_driver *d = NULL;
    pthread_mutex_lock(&list_lock);
    for (struct hosted_driver *h = hosted; h && !d; h = h->next) {
        if (strcasecmp(h->name, name) == 0 && h->driver) {
            d = h->driver;
            uwdf_object_reference(&d->obj);
        }
    }
    pthread_mutex_unlock(&list_lock);
    return d;
}

static void hosted_free(struct hosted_driver *h)
{
    uwdf_free(h->wdm.DriverName.Buffer);
    uwdf_free(h->registry_path.Buffer);
    uwdf_free(h->name);
    uwdf_free(h);
}

static bool name_valid(const char *name)
{
    if (!name || !*name || strlen(name) > 200)
        return false;
    for (const char *p = name; *p; p++)
        if (*p == '\\' || *p == '/')
            return false;
    return true;
}

static NTSTATUS load(PDRIVER_INITIALIZE entry, void *dl, PCSTR Name, WDFDRIVER *Driver)
{
    if (Driver)
        *Driver = NULL;
    if (!uwdf_irql_check_passive("UwdfLoadDriver"))
        return STATUS_INVALID_DEVICE_REQUEST;
    struct hosted_driver *h = uwdf_zalloc(sizeof(*h));
    char *dname = uwdf_alloc(strlen(Name) + sizeof("\\Driver\\"));
    char *rpath = uwdf_alloc(strlen(Name) + sizeof(SERVICES_KEY));
    if (h)
        h->name = uwdf_alloc(strlen(Name) + 1);
    NTSTATUS st = STATUS_INSUFFICIENT_RESOURCES;
    if (!h || !h->name || !dname || !rpath)
        goto fail;
    strcpy(h->name, Name);
    strcpy(dname, "\\Driver\\");
    strcat(dname, Name);
    strcpy(rpath, SERVICES_KEY);
    strcat(rpath, Name);
    st = uwdf_host_unicode(dname, &h->wdm.DriverName);
    if (NT_SUCCESS(st))
        st = uwdf_host_unicode(rpath, &h->registry_path);
    if (!NT_SUCCESS(st))
        goto fail;
    h->wdm.Type = 4; /* IO_TYPE_DRIVER */
    h->wdm.Size = sizeof(DRIVER_OBJECT);
    h->dl = dl;

    pthread_mutex_lock(&load_lock);
    struct uwdf_driver *clash = uwdf_host_find_driver(Name);
    if (clash) {
        uwdf_object_release(&clash->obj);
        pthread_mutex_unlock(&load_lock);
        st = STATUS_OBJECT_NAME_COLLISION;
        goto fail;
    }
    /* The I/O manager frees RegistryPath after DriverEntry: the driver
     * gets a copy it must not keep. */
    UNICODE_STRING reg = h->registry_path;
    struct uwdf_driver *prev = uwdf_driver_enter(NULL);
    PDRIVER_OBJECT prev_loading = uwdf_driver_loading(&h->wdm);
    st = entry(&h->wdm, &reg);
    uwdf_driver_loading(prev_loading);
    uwdf_driver_enter(prev);
    struct uwdf_driver *d = uwdf_driver_from_wdm(&h->wdm);
    if (NT_SUCCESS(st) && !d) {
        uwdf_log("UwdfLoadDriver: %s: DriverEntry succeeded without WdfDriverCreate", Name);
        st = STATUS_DRIVER_INTERNAL_ERROR;
    }
    if (!NT_SUCCESS(st)) {
        /* KMDF deletes the WDFDRIVER of a failed DriverEntry without
         * EvtDriverUnload. */
        if (d) {
            d->unload_called = true;
            uwdf_object_delete(&d->obj);
            uwdf_object_release(&d->obj);
        }
        pthread_mutex_unlock(&load_lock);
        goto fail;
    }
    d->obj.no_delete = true; /* unloaded by UwdfUnloadDriver, not WdfObjectDelete */
    h->driver = d;           /* the list's reference */
    pthread_mutex_lock(&list_lock);
    h->next = hosted;
    hosted = h;
    pthread_mutex_unlock(&list_lock);
    pthread_mutex_unlock(&load_lock);
    uwdf_free(dname);
    uwdf_free(rpath);
    if (Driver)
        *Driver = (WDFDRIVER)d->obj.handle;
    return STATUS_SUCCESS;
fail:
    if (h)
        hosted_free(h);
    uwdf_free(dname);
    uwdf_free(rpath);
    return st;
}

NTSTATUS UwdfLoadDriver(PDRIVER_INITIALIZE DriverEntry, PCSTR Name, WDFDRIVER *Driver)
{
    if (!DriverEntry || !name_valid(Name))
        return STATUS_INVALID_PARAMETER;
    return load(DriverEntry, NULL, Name, Driver);
}

NTSTATUS UwdfLoadDriverFromFile(PCSTR Path, PCSTR Name, WDFDRIVER *Driver)
{
    if (!Path || !name_valid(Name))
        return STATUS_INVALID_PARAMETER;
    if (Driver)
        *Driver = NULL;
    /* RTLD_LOCAL: two drivers may both define DriverEntry and their own
     * globals; RTLD_NOW: a missing DDI fails the load, not a later call. */
    void *dl = dlopen(Path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        uwdf_log("UwdfLoadDriverFromFile: %s", dlerror());
        return STATUS_DLL_NOT_FOUND;
    }
    PDRIVER_INITIALIZE entry;
    *(void **)&entry = dlsym(dl, "DriverEntry");
    if (!entry) {
        uwdf_log("UwdfLoadDriverFromFile: %s has no DriverEntry", Path);
        dlclose(dl);
        return STATUS_ENTRYPOINT_NOT_FOUND;
    }
    NTSTATUS st = load(entry, dl, Name, Driver);
    if (!NT_SUCCESS(st))
        dlclose(dl);
    return st;
}

/* The WDFDRIVER's destruction, waited for by UwdfUnloadDriver. */
#define UNLOAD_WAIT_SECONDS 30
struct unload_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool destroyed;
};

static void unload_destroyed(void *ctx)
{
    struct unload_wait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->destroyed = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static bool unload_wait_destroyed(struct unload_wait *w, int seconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&w->lock);
    while (!w->destroyed && pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == 0)
        ;
    bool destroyed = w->destroyed;
    pthread_mutex_unlock(&w->lock);
    return destroyed;
}

NTSTATUS UwdfUnloadDriver(WDFDRIVER Driver)
{
    struct uwdf_driver *d = (struct uwdf_driver *)uwdf_object_lookup(Driver, UWDF_OBJ_DRIVER, "UwdfUnloadDriver");
    if (!d)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive("UwdfUnloadDriver"))
        return STATUS_INVALID_DEVICE_REQUEST;
    pthread_mutex_lock(&load_lock);
    pthread_mutex_lock(&list_lock);
    struct hosted_driver **p = &hosted;
    while (*p && (*p)->driver != d)
        p = &(*p)->next;
    struct hosted_driver *h = *p;
    if (h)
        *p = h->next;
    pthread_mutex_unlock(&list_lock);
    if (!h) {
        pthread_mutex_unlock(&load_lock);
        return STATUS_INVALID_PARAMETER; /* not loaded by the host */
    }
    /* WDF's order: the PnP devices go first (here: their stacks are
     * removed), then EvtDriverUnload, then the WDFDRIVER's children, its
     * EvtCleanupCallback and EvtDestroyCallback. */
    uwdf_pnp_remove_driver_devnodes(d);
    /* Not on the stack: after a timeout the destruction may still come. */
    struct unload_wait *w = uwdf_zalloc(sizeof(*w));
    if (w) {
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        d->destroyed = unload_destroyed;
        d->destroyed_ctx = w;
    }
    struct uwdf_driver *prev = uwdf_driver_enter(d);
    if (d->config.EvtDriverUnload)
        d->config.EvtDriverUnload(Driver);
    d->unload_called = true;
    uwdf_object_delete(&d->obj);
    uwdf_driver_enter(prev);
    uwdf_object_release(&d->obj);
    /* The code stays mapped until the last object of the driver's tree is
     * destroyed: a framework thread may still hold one (a request its
     * queue completed), whose EvtDestroyCallback is the driver's. */
    bool gone = w && unload_wait_destroyed(w, UNLOAD_WAIT_SECONDS);
    if (gone) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        uwdf_free(w); /* else left for the destruction still to come */
    }
    pthread_mutex_unlock(&load_lock);
    if (h->dl && gone)
        dlclose(h->dl);
    else if (h->dl)
        uwdf_log("UwdfUnloadDriver: %s: objects of the driver still live after %d s; its code stays mapped",
                 h->name, UNLOAD_WAIT_SECONDS);
    hosted_free(h);
    return STATUS_SUCCESS;
}
