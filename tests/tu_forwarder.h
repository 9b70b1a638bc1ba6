/* The pass-through forwarder: a named control device whose default queue
 * hands every request, unchanged, to a lower I/O target and completes it
 * with what the lower target returned -- the smallest layer a storage
 * filter is. With it, the two helpers it stands on: a named control device,
 * and opening a target by a UTF-8 name.
 *
 * Nothing here uses Check: a failure is a returned NTSTATUS and leaves
 * nothing behind, so uwdf-bench (--api=stack) can use this file as it is.
 * tests/testutil.h includes it and adds asserting wrappers. */
#ifndef UWDF_TU_FORWARDER_H
#define UWDF_TU_FORWARDER_H

#include <stdatomic.h>
#include <wdf.h>

/* WdfIoTargetOpen(target) by name (a path or a \Device\ name, UTF-8) with
 * this access, CreateDisposition and CreateOptions, taken as given (the
 * FILE_NON_DIRECTORY_FILE that WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME
 * puts in is not added). STATUS_OBJECT_NAME_INVALID for a name that is not
 * valid UTF-8. */
NTSTATUS tu_open_name(WDFIOTARGET target, const char *name, ACCESS_MASK access, ULONG disposition,
                      ULONG create_options);

/* A control device named name (\Device\...), of I/O type io, with
 * device_attrs and request_attrs (either may be NULL), finished
 * initializing. */
NTSTATUS tu_device_create(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                          PWDF_OBJECT_ATTRIBUTES device_attrs, PWDF_OBJECT_ATTRIBUTES request_attrs,
                          WDFDEVICE *device);

/* The context of a forwarder device, and the counts a test reads. */
typedef struct TU_FORWARDER {
    WDFIOTARGET lower;      /* where requests go: the device's local target */
    WDFQUEUE queue;         /* the forwarding default queue, once made */
    atomic_ulong seen;      /* requests the queue presented */
    atomic_ulong completed; /* completed back from the lower target */
    atomic_ulong refused;   /* WdfRequestSend refused: completed with its status */
} TU_FORWARDER;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(TU_FORWARDER, tu_forwarder_of);

/* One forwarding step, for a queue callback of one's own: formats request
 * for lower with its current parameters, sends it with a completion routine
 * that completes it with the lower target's status and information, and
 * completes it at once with the send's status if the send fails. Counts in
 * counts unless NULL. Returns whether the request went down. */
BOOLEAN tu_forward(WDFREQUEST request, WDFIOTARGET lower, TU_FORWARDER *counts);

/* EvtIoDefault of the forwarding queue: counts the request as seen and
 * forwards it to tu_forwarder_of(its device)->lower. */
EVT_WDF_IO_QUEUE_IO_DEFAULT tu_forwarder_io_default;

/* tu_device_create with a TU_FORWARDER context whose lower is the device's
 * local I/O target (not opened yet), and no queue. */
NTSTATUS tu_forwarder_device_create(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                                    WDFDEVICE *device);
/* The forwarding default queue of a forwarder device, of this dispatch type. */
NTSTATUS tu_forwarder_queue_create(WDFDEVICE device, WDF_IO_QUEUE_DISPATCH_TYPE dispatch, WDFQUEUE *queue);

/* The whole filter: a forwarder device named name with its forwarding
 * queue, and its lower target opened on lower (tu_open_name with FILE_OPEN,
 * access and create_options). On failure the device is deleted again. */
NTSTATUS tu_forwarder_create(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                             WDF_IO_QUEUE_DISPATCH_TYPE dispatch, const char *lower, ACCESS_MASK access,
                             ULONG create_options, WDFDEVICE *device);

#endif
