/* ntddk.h: what a function or filter driver includes first. On Windows it
 * is wdm.h plus legacy and system-level declarations; the port's wdm.h
 * already carries the run-time routines drivers use (pool, Ke, Rtl, Dbg),
 * so this is wdm.h. */
#ifndef UWDF_NTDDK_H
#define UWDF_NTDDK_H

#include "wdm.h"

#endif
