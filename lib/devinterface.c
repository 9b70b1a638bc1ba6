/* Device interfaces of PnP stacks: WdfDeviceCreateDeviceInterface and its
 * state, IoGetDeviceInterfaces, EventCategoryDeviceInterfaceChange
 * notification, and symbolic link names that open the stack. */
#include "runtime.h"
#include "host.h"
#include "ntrt.h"
#include "object.h"

#include <stdio.h>
#include <strings.h>
#include <wdmguid.h>


struct devinterface {
    struct devinterface *next;
    GUID guid;
    struct uwdf_devnode *node;
    char *ref;         /* reference string (UTF-8), or NULL */
    char *link;        /* \??\<instance, '\' as '#'>#{guid}[\ref] */
    UNICODE_STRING link_us;
    bool enabled;
    bool driver_disabled; /* WdfDeviceSetDeviceInterfaceState(FALSE) before start */
};

struct notification {
    struct notification *next;
    GUID guid;
    PDRIVER_NOTIFICATION_CALLBACK_ROUTINE callback;
    PVOID context;
    bool active;
};

static pthread_mutex_t iface_lock = PTHREAD_MUTEX_INITIALIZER;
static struct devinterface *interfaces;
static struct notification *notifications;
/* Held while notifications are delivered (one at a time, as the PnP
 * manager does), so that an unregistration waits out a callback that is
 * running. Recursive: a callback may register or unregister. */
static pthread_mutex_t call_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static __thread unsigned tls_notify_depth;
static struct notification *zombies; /* unregistered inside a callback */

static void call_begin(void)
{
    pthread_mutex_lock(&call_lock);
    tls_notify_depth++;
}

static void call_end(void)
{
    struct notification *dead = NULL;
    if (--tls_notify_depth == 0) {
        pthread_mutex_lock(&iface_lock);
        dead = zombies;
        zombies = NULL;
        pthread_mutex_unlock(&iface_lock);
    }
    pthread_mutex_unlock(&call_lock);
    while (dead) {
        struct notification *next = dead->next;
        uwdf_free(dead);
        dead = next;
    }
}

/* Calls the active registrations for i's class (only `only`, if given). */
static void notify(const GUID *event, struct devinterface *i, struct notification *only)
{
    DEVICE_INTERFACE_CHANGE_NOTIFICATION n = {
        .Version = 1,
        .Size = sizeof(n),
        .Event = *event,
        .InterfaceClassGuid = i->guid,
        .SymbolicLinkName = &i->link_us,
    };
    call_begin();
    struct notification *batch[64];
    size_t count = 0;
    pthread_mutex_lock(&iface_lock);
    for (struct notification *e = notifications; e; e = e->next)
        if ((!only || e == only) && e->active && IsEqualGUID(&e->guid, &i->guid) && count < RTL_NUMBER_OF(batch))
            batch[count++] = e;
    pthread_mutex_unlock(&iface_lock);
    KIRQL old = uwdf_tls_irql;
    uwdf_tls_irql = PASSIVE_LEVEL;
    for (size_t k = 0; k < count; k++)
        if (__atomic_load_n(&batch[k]->active, __ATOMIC_ACQUIRE)) /* not unregistered by an earlier one */
            batch[k]->callback(&n, batch[k]->context);
    uwdf_tls_irql = old;
    call_end();
}

static void iface_free(struct devinterface *i)
{
    uwdf_free(i->ref);
    uwdf_free(i->link);
    uwdf_free(i->link_us.Buffer);
    uwdf_free(i);
}

/* ---- registration ---- */

static char *ref_utf8(PCUNICODE_STRING ref, NTSTATUS *st)
{
    *st = STATUS_SUCCESS;
    if (!ref || ref->Length == 0)
        return NULL;
    char *s = uwdf_unicode_to_utf8(ref);
    if (!s) {
        *st = STATUS_INSUFFICIENT_RESOURCES;
        return NULL;
    }
    if (strpbrk(s, "\\/")) {
        uwdf_free(s);
        *st = STATUS_INVALID_PARAMETER;
        return NULL;
    }
    return s;
}

static bool ref_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcasecmp(a, b) == 0);
}

static struct devinterface *find_locked(struct uwdf_devnode *node, const GUID *guid, const char *ref)
{
    for (struct devinterface *i = interfaces; i; i = i->next)
        if (i->node == node && IsEqualGUID(&i->guid, guid) && ref_equal(i->ref, ref))
            return i;
    return NULL;
}

static struct uwdf_device *pnp_device(WDFDEVICE Device, const char *ddi, NTSTATUS *st)
{
    struct uwdf_device *dev = (struct uwdf_device *)uwdf_object_lookup(Device, UWDF_OBJ_DEVICE, ddi);
    *st = STATUS_SUCCESS;
    if (!dev)
        *st = STATUS_INVALID_HANDLE;
    else if (!uwdf_irql_check_passive(ddi) || !dev->pnp.devnode)
        *st = STATUS_INVALID_DEVICE_REQUEST; /* control devices have no interfaces */
    return NT_SUCCESS(*st) ? dev : NULL;
}

static NTSTATUS make_link(struct devinterface *i)
{
    UNICODE_STRING g;
    NTSTATUS st = RtlStringFromGUID(&i->guid, &g);
    if (!NT_SUCCESS(st))
        return st;
    char *gs = uwdf_unicode_to_utf8(&g);
    RtlFreeUnicodeString(&g);
    if (!gs)
        return STATUS_INSUFFICIENT_RESOURCES;
    const char *inst = uwdf_devnode_instance(i->node);
    size_t len = 4 + strlen(inst) + 1 + strlen(gs) + (i->ref ? 1 + strlen(i->ref) : 0) + 1;
    i->link = uwdf_alloc(len);
    if (!i->link) {
        uwdf_free(gs);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    snprintf(i->link, len, "\\??\\%s#%s%s%s", inst, gs, i->ref ? "\\" : "", i->ref ? i->ref : "");
    uwdf_free(gs);
    for (char *p = i->link + 4; *p && *p != '{'; p++)
        if (*p == '\\')
            *p = '#';
    return uwdf_host_unicode(i->link, &i->link_us);
}

NTSTATUS WdfDeviceCreateDeviceInterface(WDFDEVICE Device, CONST GUID *InterfaceClassGUID,
                                        PCUNICODE_STRING ReferenceString)
{
    NTSTATUS st;
    struct uwdf_device *dev = pnp_device(Device, "WdfDeviceCreateDeviceInterface", &st);
    UWDF_REQUIRE_PARAM(InterfaceClassGUID, "WdfDeviceCreateDeviceInterface", STATUS_INVALID_PARAMETER);
    if (!dev)
        return st;
    char *ref = ref_utf8(ReferenceString, &st);
    if (!NT_SUCCESS(st))
        return st;
    struct devinterface *i = uwdf_zalloc(sizeof(*i));
    if (!i) {
        uwdf_free(ref);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    i->guid = *InterfaceClassGUID;
    i->node = dev->pnp.devnode;
    i->ref = ref;
    st = make_link(i);
    if (!NT_SUCCESS(st)) {
        iface_free(i);
        return st;
    }
    pthread_mutex_lock(&iface_lock);
    bool exists = find_locked(i->node, &i->guid, ref) != NULL;
    if (!exists) {
        i->next = interfaces;
        interfaces = i;
    }
    pthread_mutex_unlock(&iface_lock);
    if (exists) {
        iface_free(i);
        return STATUS_OBJECT_NAME_EXISTS; /* IoRegisterDeviceInterface's answer: success */
    }
    return STATUS_SUCCESS;
}

static struct devinterface *find_for(WDFDEVICE Device, CONST GUID *guid, PCUNICODE_STRING ref, const char *ddi,
                                     NTSTATUS *st)
{
    struct uwdf_device *dev = pnp_device(Device, ddi, st);
    if (!dev)
        return NULL;
    if (!guid) {
        *st = STATUS_INVALID_PARAMETER;
        return NULL;
    }
    char *r = ref_utf8(ref, st);
    if (!NT_SUCCESS(*st))
        return NULL;
    pthread_mutex_lock(&iface_lock);
    struct devinterface *i = find_locked(dev->pnp.devnode, guid, r);
    pthread_mutex_unlock(&iface_lock);
    uwdf_free(r);
    if (!i)
        *st = STATUS_OBJECT_NAME_NOT_FOUND;
    return i;
}

NTSTATUS WdfDeviceRetrieveDeviceInterfaceString(WDFDEVICE Device, CONST GUID *InterfaceClassGUID,
                                                PCUNICODE_STRING ReferenceString, WDFSTRING String)
{
    NTSTATUS st;
    struct devinterface *i =
        find_for(Device, InterfaceClassGUID, ReferenceString, "WdfDeviceRetrieveDeviceInterfaceString", &st);
    if (!i)
        return st;
    /* (An interface lives as long as its devnode, which outlives every
     * call its devices' drivers make.) */
    return uwdf_string_assign(String, i->link_us.Buffer, i->link_us.Length / sizeof(WCHAR),
                              "WdfDeviceRetrieveDeviceInterfaceString");
}

static void set_state(struct devinterface *i, bool enable)
{
    pthread_mutex_lock(&iface_lock);
    bool change = i->enabled != enable;
    i->enabled = enable;
    i->driver_disabled = !enable;
    pthread_mutex_unlock(&iface_lock);
    if (change)
        notify(enable ? &GUID_DEVICE_INTERFACE_ARRIVAL : &GUID_DEVICE_INTERFACE_REMOVAL, i, NULL);
}

VOID WdfDeviceSetDeviceInterfaceState(WDFDEVICE Device, CONST GUID *InterfaceClassGUID,
                                      PCUNICODE_STRING ReferenceString, BOOLEAN IsInterfaceEnabled)
{
    NTSTATUS st;
    struct devinterface *i =
        find_for(Device, InterfaceClassGUID, ReferenceString, "WdfDeviceSetDeviceInterfaceState", &st);
    if (!i) {
        uwdf_log("WdfDeviceSetDeviceInterfaceState: 0x%08X", (unsigned)st);
        return;
    }
    /* Before the start it only decides whether the start enables it. */
    if (uwdf_devnode_started(i->node)) {
        set_state(i, IsInterfaceEnabled != FALSE);
    } else {
        pthread_mutex_lock(&iface_lock);
        i->driver_disabled = !IsInterfaceEnabled;
        pthread_mutex_unlock(&iface_lock);
    }
}

void uwdf_devinterface_start(struct uwdf_devnode *node)
{
    struct devinterface *batch[64];
    size_t count;
    do {
        count = 0;
        pthread_mutex_lock(&iface_lock);
        for (struct devinterface *i = interfaces; i && count < RTL_NUMBER_OF(batch); i = i->next) {
            if (i->node == node && !i->enabled && !i->driver_disabled) {
                i->enabled = true;
                batch[count++] = i;
            }
        }
        pthread_mutex_unlock(&iface_lock);
        for (size_t k = 0; k < count; k++)
            notify(&GUID_DEVICE_INTERFACE_ARRIVAL, batch[k], NULL);
    } while (count == RTL_NUMBER_OF(batch));
}

void uwdf_devinterface_remove(struct uwdf_devnode *node)
{
    for (;;) {
        struct devinterface *pick = NULL;
        bool was_enabled = false;
        pthread_mutex_lock(&iface_lock);
        for (struct devinterface **p = &interfaces; *p; p = &(*p)->next) {
            if ((*p)->node == node) {
                pick = *p;
                *p = pick->next;
                was_enabled = pick->enabled;
                pick->enabled = false;
                break;
            }
        }
        pthread_mutex_unlock(&iface_lock);
        if (!pick)
            break;
        if (was_enabled)
            notify(&GUID_DEVICE_INTERFACE_REMOVAL, pick, NULL);
        iface_free(pick);
    }
}

struct uwdf_device *uwdf_devinterface_lookup(const char *name)
{
    const char *tail = uwdf_device_dos_name_tail(name);
    if (!tail)
        return NULL;
    struct uwdf_devnode *node = NULL;
    pthread_mutex_lock(&iface_lock);
    for (struct devinterface *i = interfaces; i && !node; i = i->next)
        if (i->enabled && strcasecmp(i->link + 4, tail) == 0)
            node = i->node;
    /* (The devnode cannot go meanwhile: its removal takes the interface
     * out under this lock before it tears the stack down.) */
    struct uwdf_device *top = node ? uwdf_devnode_top(node) : NULL;
    pthread_mutex_unlock(&iface_lock);
    return top;
}

/* ---- WDM ---- */

NTSTATUS IoGetDeviceInterfaces(CONST GUID *InterfaceClassGuid, PDEVICE_OBJECT PhysicalDeviceObject, ULONG Flags,
                               PZZWSTR *SymbolicLinkList)
{
    UWDF_REQUIRE_PARAM(InterfaceClassGuid, "IoGetDeviceInterfaces", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(SymbolicLinkList, "IoGetDeviceInterfaces", STATUS_INVALID_PARAMETER);
    *SymbolicLinkList = NULL;
    if (!uwdf_irql_check_passive("IoGetDeviceInterfaces"))
        return STATUS_INVALID_DEVICE_REQUEST;
    struct uwdf_devnode *only = NULL;
    if (PhysicalDeviceObject) {
        only = uwdf_container_of(PhysicalDeviceObject, struct uwdf_device, wdm)->pnp.devnode;
        if (!only)
            return STATUS_INVALID_DEVICE_REQUEST;
    }
    bool all = (Flags & DEVICE_INTERFACE_INCLUDE_NONACTIVE) != 0;
    pthread_mutex_lock(&iface_lock);
    size_t chars = 1;
    for (struct devinterface *i = interfaces; i; i = i->next)
        if (IsEqualGUID(&i->guid, InterfaceClassGuid) && (all || i->enabled) && (!only || i->node == only))
            chars += i->link_us.Length / sizeof(WCHAR) + 1;
    PWSTR list = ExAllocatePool2(POOL_FLAG_PAGED, chars * sizeof(WCHAR), 'fIvD');
    if (!list) {
        pthread_mutex_unlock(&iface_lock);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    PWSTR p = list;
    for (struct devinterface *i = interfaces; i; i = i->next) {
        if (IsEqualGUID(&i->guid, InterfaceClassGuid) && (all || i->enabled) && (!only || i->node == only)) {
            memcpy(p, i->link_us.Buffer, i->link_us.Length);
            p += i->link_us.Length / sizeof(WCHAR);
            *p++ = 0;
        }
    }
    *p = 0;
    pthread_mutex_unlock(&iface_lock);
    *SymbolicLinkList = list;
    return STATUS_SUCCESS;
}

NTSTATUS IoRegisterPlugPlayNotification(IO_NOTIFICATION_EVENT_CATEGORY EventCategory, ULONG EventCategoryFlags,
                                        PVOID EventCategoryData, PDRIVER_OBJECT DriverObject,
                                        PDRIVER_NOTIFICATION_CALLBACK_ROUTINE CallbackRoutine, PVOID Context,
                                        PVOID *NotificationEntry)
{
    (void)DriverObject;
    UWDF_REQUIRE_PARAM(NotificationEntry, "IoRegisterPlugPlayNotification", STATUS_INVALID_PARAMETER);
    *NotificationEntry = NULL;
    if (EventCategory != EventCategoryDeviceInterfaceChange)
        return STATUS_NOT_SUPPORTED;
    if (!EventCategoryData || !CallbackRoutine ||
        (EventCategoryFlags & ~(ULONG)PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES))
        return STATUS_INVALID_PARAMETER;
    if (!uwdf_irql_check_passive("IoRegisterPlugPlayNotification"))
        return STATUS_INVALID_DEVICE_REQUEST;
    struct notification *e = uwdf_zalloc(sizeof(*e));
    if (!e)
        return STATUS_INSUFFICIENT_RESOURCES;
    e->guid = *(const GUID *)EventCategoryData;
    e->callback = CallbackRoutine;
    e->context = Context;
    e->active = true;
    call_begin(); /* no arrival slips between the list and the replay */
    pthread_mutex_lock(&iface_lock);
    e->next = notifications;
    notifications = e;
    pthread_mutex_unlock(&iface_lock);
    *NotificationEntry = e;
    if (EventCategoryFlags & PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES) {
        /* The enabled ones now. None is freed while call_lock is held: a
         * removal takes an enabled interface off the list, then notifies
         * (which waits for call_lock), then frees it. */
        struct devinterface *existing[256];
        size_t count = 0;
        pthread_mutex_lock(&iface_lock);
        for (struct devinterface *i = interfaces; i; i = i->next)
            if (i->enabled && IsEqualGUID(&i->guid, &e->guid) && count < RTL_NUMBER_OF(existing))
                existing[count++] = i;
        pthread_mutex_unlock(&iface_lock);
        for (size_t k = 0; k < count; k++)
            notify(&GUID_DEVICE_INTERFACE_ARRIVAL, existing[k], e);
    }
    call_end();
    return STATUS_SUCCESS;
}

NTSTATUS IoUnregisterPlugPlayNotificationEx(PVOID NotificationEntry)
{
    struct notification *e = NotificationEntry;
    UWDF_REQUIRE_PARAM(e, "IoUnregisterPlugPlayNotificationEx", STATUS_INVALID_PARAMETER);
    bool found = false;
    pthread_mutex_lock(&iface_lock);
    for (struct notification **p = &notifications; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&iface_lock);
    if (!found)
        return STATUS_INVALID_PARAMETER;
    __atomic_store_n(&e->active, false, __ATOMIC_RELEASE);
    /* Wait out a callback running on another thread. Inside a callback on
     * this one, the entry may still be in the running batch: freed when
     * the outermost notification ends. */
    call_begin();
    bool nested = tls_notify_depth > 1;
    if (nested) {
        pthread_mutex_lock(&iface_lock);
        e->next = zombies;
        zombies = e;
        pthread_mutex_unlock(&iface_lock);
    }
    call_end();
    if (!nested)
        uwdf_free(e);
    return STATUS_SUCCESS;
}

NTSTATUS IoUnregisterPlugPlayNotification(PVOID NotificationEntry)
{
    return IoUnregisterPlugPlayNotificationEx(NotificationEntry);
}
