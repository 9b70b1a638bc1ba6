/* Definitions of the wdmguid.h GUIDs, so a driver that only declares them
 * (no INITGUID) links. Weak, like any DEFINE_GUID definition: a driver unit
 * that defines them too does not collide. */
#include "ntrt.h"

#include <initguid.h>
#include <wdmguid.h>
