/* Umbrella header: what a KMDF driver gets from #include <wdf.h>. */
#ifndef UWDF_WDF_H
#define UWDF_WDF_H

#include "ntdef.h"
#include "ntstatus.h"
#include "wdm.h"
#include "ntifs.h"
#include "ntdddisk.h"
#include "wdftypes.h"
#include "wdfcore.h"
#include "wdfobject.h"
#include "wdfmemory.h"
#include "wdfrequest.h"
#include "wdfiotarget.h"
#include "wdfdriver.h"
#include "wdfdevice.h"
#include "wdffileobject.h"
#include "wdffdo.h"
#include "wdfio.h"
#include "wdfsync.h"
#include "wdfcollection.h"
#include "wdftimer.h"
#include "wdfworkitem.h"
#include "wdfstring.h"
#include "wdfassert.h"
#include "wdfverifier.h"
#include "wdfroletypes.h"

#endif
