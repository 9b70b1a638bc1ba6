/* The driver host: loaded drivers by name (lib/driver_load.c) and the
 * simulated PnP that builds their stacks (lib/pnp.c, lib/devinterface.c).
 * Not installed. */
#ifndef UWDF_HOST_H
#define UWDF_HOST_H

#include "device.h"

/* The loaded driver called name (case-insensitive), referenced; NULL if
 * none is loaded or its DriverEntry made no WDFDRIVER. */
struct uwdf_driver *uwdf_host_find_driver(const char *name);
/* Remove every devnode whose stack holds a device of d (driver unload). */
void uwdf_pnp_remove_driver_devnodes(struct uwdf_driver *d);
/* utf8 as a counted UNICODE_STRING with a NUL after it, in memory from
 * uwdf_alloc (free Buffer with uwdf_free). */
NTSTATUS uwdf_host_unicode(const char *utf8, PUNICODE_STRING out);

#endif
