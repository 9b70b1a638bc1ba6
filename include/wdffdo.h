/* Function and filter device objects (wdffdo.h). */
#ifndef UWDF_WDFFDO_H
#define UWDF_WDFFDO_H

#include "wdfdevice.h"

UWDF_BEGIN_DECLS

/* PASSIVE_LEVEL, before WdfDeviceCreate, on the WDFDEVICE_INIT
 * EvtDriverDeviceAdd received: the device is a filter. A read, write or
 * IOCTL it has no queue for (or whose default queue has neither the type's
 * handler nor EvtIoDefault) goes on to the device below untouched; its
 * queues are not power-managed unless created with PowerManaged WdfTrue;
 * its I/O type is the device below's. On a control device's init it does
 * nothing (logged). */
VOID WdfFdoInitSetFilter(PWDFDEVICE_INIT DeviceInit);

UWDF_END_DECLS
#endif
