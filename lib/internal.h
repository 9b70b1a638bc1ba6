/* Every private header of the framework, for a file that wants them all
 * (the white-box tests). A file of the library includes the part headers
 * it uses instead. Not installed. */
#ifndef UWDF_INTERNAL_H
#define UWDF_INTERNAL_H

#include "runtime.h"
#include "lists.h"
#include "biased_lock.h"
#include "object.h"
#include "device.h"
#include "memory.h"
#include "timer.h"
#include "worker.h"
#include "engine.h"
#include "irp.h"
#include "request.h"
#include "iotarget.h"
#include "queue.h"
#include "flt.h"

#endif
