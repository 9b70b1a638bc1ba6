/* The nbdkit plugin's in-process device stack: KMDF drivers loaded from
 * shared objects, a device made to arrive with its function driver and
 * ordered filters over a Linux path standing for the hardware (driver
 * hosting, include/uwdf.h), and the name of the stack the plugin opens:
 *
 *   driver=[NAME=]SO   a driver to load (repeat the key); NAME defaults to
 *                      the file's name up to its first '.'
 *   function=NAME      the function driver (default: the one loaded driver
 *                      that upper= and lower= do not name)
 *   upper=NAME[,NAME]  upper filters, lower=NAME[,NAME] lower filters, in
 *                      an INF's order (the first sits nearest the function
 *                      driver / the hardware)
 *   hwid=ID            the hardware ID (default root\uwdf-nbdkit)
 *   stack=NAME|{GUID}  what to open: a \Device\ or symbolic-link name, or
 *                      the arrived device's interface of that class
 *
 * The stack arrives after nbdkit forks (the framework starts threads) and
 * is removed, then the drivers unloaded, at nbdkit's cleanup. */
#include "config.h"

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wdm.h>

#include "stack.h"

#define MAX_DRIVERS 16
#define MAX_FILTERS 8
#define DEFAULT_HWID "root\\uwdf-nbdkit"

struct loaded {
    char *name;
    char *path;
    WDFDRIVER driver; /* loaded, NULL until then */
};

static struct {
    struct loaded drivers[MAX_DRIVERS];
    unsigned ndrivers;
    char *function;
    char *upper[MAX_FILTERS], *lower[MAX_FILTERS];
    unsigned nupper, nlower;
    char *hwid;
    char *stack;
    UWDF_DEVNODE node;
} stk;

static char *dup_or_say(const char *s)
{
    char *d = strdup(s);
    if (!d)
        nbdkit_error("out of memory");
    return d;
}

static struct loaded *driver_named(const char *name)
{
    for (unsigned i = 0; i < stk.ndrivers; i++)
        if (strcasecmp(stk.drivers[i].name, name) == 0)
            return &stk.drivers[i];
    return NULL;
}

/* driver=[NAME=]SO: a '=' before any '/' ends the name. */
static int config_driver(const char *value)
{
    if (stk.ndrivers == MAX_DRIVERS) {
        nbdkit_error("driver=%s: at most %d drivers", value, MAX_DRIVERS);
        return -1;
    }
    const char *eq = strchr(value, '=');
    const char *slash = strchr(value, '/');
    const char *so = eq && (!slash || eq < slash) ? eq + 1 : value;
    const char *base = strrchr(so, '/') ? strrchr(so, '/') + 1 : so;
    size_t name_len = so != value ? (size_t)(eq - value) : strcspn(base, ".");
    const char *name_start = so != value ? value : base;
    if (name_len == 0 || memchr(name_start, '\\', name_len) || !*so) {
        nbdkit_error("driver=%s: want driver=[NAME=]FILE.so", value);
        return -1;
    }
    struct loaded *d = &stk.drivers[stk.ndrivers];
    d->name = strndup(name_start, name_len);
    /* nbdkit changes directory when it forks into the background. */
    d->path = so[0] == '/' ? strdup(so) : nbdkit_absolute_path(so);
    if (!d->name || !d->path) {
        nbdkit_error("driver=%s: out of memory", value);
        free(d->name);
        free(d->path);
        d->name = d->path = NULL;
        return -1;
    }
    if (stk.ndrivers && driver_named(d->name)) {
        nbdkit_error("driver=%s: a driver named '%s' is loaded already (name it: driver=NAME=FILE.so)", value,
                     d->name);
        free(d->name);
        free(d->path);
        d->name = d->path = NULL;
        return -1;
    }
    stk.ndrivers++;
    return 0;
}

/* NAME[,NAME...] into list (replacing what a previous key gave). */
static int config_list(const char *key, const char *value, char **list, unsigned *n)
{
    for (unsigned i = 0; i < *n; i++)
        free(list[i]);
    *n = 0;
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || *n == MAX_FILTERS) {
            nbdkit_error("%s=%s: want up to %d names separated by commas", key, value, MAX_FILTERS);
            return -1;
        }
        list[*n] = strndup(p, len);
        if (!list[*n]) {
            nbdkit_error("out of memory");
            return -1;
        }
        (*n)++;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int config_string(char **slot, const char *value)
{
    free(*slot);
    *slot = dup_or_say(value);
    return *slot ? 0 : -1;
}

int plugin_stack_config(const char *key, const char *value)
{
    int r;
    if (strcmp(key, "driver") == 0)
        r = config_driver(value);
    else if (strcmp(key, "function") == 0)
        r = config_string(&stk.function, value);
    else if (strcmp(key, "upper") == 0)
        r = config_list(key, value, stk.upper, &stk.nupper);
    else if (strcmp(key, "lower") == 0)
        r = config_list(key, value, stk.lower, &stk.nlower);
    else if (strcmp(key, "hwid") == 0)
        r = config_string(&stk.hwid, value);
    else if (strcmp(key, "stack") == 0)
        r = config_string(&stk.stack, value);
    else
        return 0;
    return r < 0 ? -1 : 1;
}

bool plugin_stack_wanted(void)
{
    return stk.ndrivers > 0;
}

static bool named_in(char *const *list, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

static int check_names(const char *key, char *const *list, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!driver_named(list[i])) {
            nbdkit_error("%s=%s: no driver= of that name", key, list[i]);
            return -1;
        }
    return 0;
}

int plugin_stack_config_complete(void)
{
    if (!stk.ndrivers) {
        if (stk.function || stk.nupper || stk.nlower || stk.hwid || stk.stack) {
            nbdkit_error("function=, upper=, lower=, hwid= and stack= describe a device stack: they need driver=");
            return -1;
        }
        return 0;
    }
    if (!stk.stack) {
        nbdkit_error("stack=NAME or stack={GUID} is required with driver=: the device or interface to serve");
        return -1;
    }
    if (check_names("upper", stk.upper, stk.nupper) < 0 || check_names("lower", stk.lower, stk.nlower) < 0)
        return -1;
    if (stk.function) {
        if (!driver_named(stk.function)) {
            nbdkit_error("function=%s: no driver= of that name", stk.function);
            return -1;
        }
        return 0;
    }
    const char *only = NULL;
    for (unsigned i = 0; i < stk.ndrivers; i++) {
        const char *name = stk.drivers[i].name;
        if (named_in(stk.upper, stk.nupper, name) || named_in(stk.lower, stk.nlower, name))
            continue;
        if (only) {
            nbdkit_error("both %s and %s could be the function driver: say which with function=NAME", only, name);
            return -1;
        }
        only = name;
    }
    if (!only) {
        nbdkit_error("every driver= is a filter: load a function driver too, or name it with function=NAME");
        return -1;
    }
    stk.function = dup_or_say(only);
    return stk.function ? 0 : -1;
}

static void say_status(const char *what, const char *about, NTSTATUS status)
{
    const char *name = UwdfNtStatusName(status);
    nbdkit_error("%s %s: %s (0x%08x)", what, about, name ? name : "NTSTATUS", (unsigned)status);
}

/* The arrived device's first interface of class guid_text, as UTF-8. */
static NTSTATUS interface_name(const char *guid_text, char **name)
{
    WCHAR wide[64];
    size_t n = strlen(guid_text);
    if (n >= RTL_NUMBER_OF(wide))
        return STATUS_INVALID_PARAMETER;
    for (size_t i = 0; i <= n; i++)
        wide[i] = (WCHAR)(unsigned char)guid_text[i];
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, wide);
    GUID guid;
    NTSTATUS status = RtlGUIDFromString(&us, &guid);
    if (!NT_SUCCESS(status)) {
        nbdkit_error("stack=%s: not a GUID in braces", guid_text);
        return status;
    }
    PDEVICE_OBJECT pdo = WdfDeviceWdmGetDeviceObject(UwdfDevNodeGetDevice(stk.node, NULL));
    PZZWSTR list = NULL;
    status = IoGetDeviceInterfaces(&guid, pdo, 0, &list);
    if (!NT_SUCCESS(status)) {
        say_status("interfaces of", guid_text, status);
        return status;
    }
    RtlInitUnicodeString(&us, list);
    if (us.Length == 0) {
        ExFreePool(list);
        nbdkit_error("stack=%s: the arrived device has no enabled interface of that class", guid_text);
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    ULONG need = 0;
    status = RtlUnicodeToUTF8N(NULL, 0, &need, us.Buffer, us.Length);
    if (NT_SUCCESS(status)) {
        *name = malloc(need + 1);
        status = *name ? RtlUnicodeToUTF8N(*name, need, &need, us.Buffer, us.Length)
                       : STATUS_INSUFFICIENT_RESOURCES;
        if (NT_SUCCESS(status))
            (*name)[need] = '\0';
        else {
            free(*name);
            *name = NULL;
        }
    }
    ExFreePool(list);
    return status;
}

NTSTATUS plugin_stack_arrive(const char *hardware, char **name)
{
    NTSTATUS status = STATUS_SUCCESS;
    for (unsigned i = 0; i < stk.ndrivers && NT_SUCCESS(status); i++) {
        struct loaded *d = &stk.drivers[i];
        status = UwdfLoadDriverFromFile(d->path, d->name, &d->driver);
        if (!NT_SUCCESS(status)) {
            d->driver = NULL;
            say_status("loading driver", d->path, status);
        }
    }
    if (NT_SUCCESS(status)) {
        UWDF_DEVICE_DESCRIPTION desc;
        UWDF_DEVICE_DESCRIPTION_INIT(&desc, stk.hwid ? stk.hwid : DEFAULT_HWID, stk.function);
        desc.HardwarePath = hardware;
        desc.UpperFilters = (PCSTR const *)stk.upper;
        desc.UpperFilterCount = stk.nupper;
        desc.LowerFilters = (PCSTR const *)stk.lower;
        desc.LowerFilterCount = stk.nlower;
        status = UwdfDeviceArrive(&desc, &stk.node);
        if (!NT_SUCCESS(status)) {
            stk.node = NULL;
            say_status("the arrival of", desc.HardwareId, status);
        }
    }
    if (NT_SUCCESS(status)) {
        if (stk.stack[0] == '{') {
            status = interface_name(stk.stack, name);
        } else {
            *name = strdup(stk.stack);
            status = *name ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
        }
    }
    if (!NT_SUCCESS(status)) {
        plugin_stack_remove();
        return status;
    }
    nbdkit_debug("uwdf: stack %s arrived: %u upper, function %s, %u lower, over %s", stk.hwid ? stk.hwid : DEFAULT_HWID,
                 stk.nupper, stk.function, stk.nlower, hardware ? hardware : "no hardware");
    return STATUS_SUCCESS;
}

const char *plugin_stack_engine(void)
{
    if (!stk.node)
        return NULL;
    WDFDEVICE bottom = UwdfDevNodeGetDevice(stk.node, stk.nlower ? stk.lower[0] : stk.function);
    return bottom ? UwdfIoTargetGetBackendName(WdfDeviceGetIoTarget(bottom)) : NULL;
}

void plugin_stack_remove(void)
{
    if (stk.node) {
        NTSTATUS status = UwdfDeviceRemove(stk.node);
        if (!NT_SUCCESS(status)) {
            /* A driver vetoed the query: the stack goes all the same,
             * as when the hardware disappears. */
            say_status("orderly removal vetoed:", "surprise-removing the stack", status);
            status = UwdfDeviceSurpriseRemove(stk.node);
            if (!NT_SUCCESS(status))
                say_status("surprise removal of", stk.hwid ? stk.hwid : DEFAULT_HWID, status);
        }
        stk.node = NULL;
        nbdkit_debug("uwdf: stack removed");
    }
    for (unsigned i = stk.ndrivers; i-- > 0;) {
        struct loaded *d = &stk.drivers[i];
        if (!d->driver)
            continue;
        NTSTATUS status = UwdfUnloadDriver(d->driver);
        if (!NT_SUCCESS(status))
            say_status("unloading driver", d->name, status);
        d->driver = NULL;
    }
}

void plugin_stack_free(void)
{
    for (unsigned i = 0; i < stk.ndrivers; i++) {
        free(stk.drivers[i].name);
        free(stk.drivers[i].path);
    }
    for (unsigned i = 0; i < stk.nupper; i++)
        free(stk.upper[i]);
    for (unsigned i = 0; i < stk.nlower; i++)
        free(stk.lower[i]);
    free(stk.function);
    free(stk.hwid);
    free(stk.stack);
    memset(&stk, 0, sizeof(stk));
}
