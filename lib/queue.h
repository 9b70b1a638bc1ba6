/* WDFQUEUE (lib/queue.c): the receiving side of an in-process device
 * stack. Not installed. */
#ifndef UWDF_QUEUE_H
#define UWDF_QUEUE_H

#include "device.h"

struct uwdf_iotarget;
struct uwdf_queue;
struct uwdf_request;

/* Deliver a packet sent to a device target into the device's queues. The
 * request is on the target's sent list with its I/O reference. */
void uwdf_queue_deliver(struct uwdf_device *dev, struct uwdf_request *sender);
/* The lock a queue's callbacks run under (its own when its scope is None),
 * whether they run at PASSIVE_LEVEL, and whether its scope is Queue or
 * Device (lib/queue.c): for WdfObjectAcquireLock and for timers and work
 * items with AutomaticSerialization. */
pthread_mutex_t *uwdf_queue_callback_lock(struct uwdf_object *queue, bool *passive, bool *serialized);
/* WdfRequestSend(SEND_AND_FORGET) of a received request. */
NTSTATUS uwdf_queue_send_and_forget(struct uwdf_request *req, struct uwdf_iotarget *t);

/* The cancel routines an IRP's cancel runs (lib/irp.c), by its kind: a
 * request waiting on its queue, one the driver marked cancelable, a packet
 * waiting on q for a reserved request. */
void uwdf_queue_cancel_on_queue(struct uwdf_request *r);
void uwdf_request_cancel_driver(struct uwdf_request *r);
void uwdf_fp_cancel_waiting(struct uwdf_request *sender, struct uwdf_queue *q);

#endif
