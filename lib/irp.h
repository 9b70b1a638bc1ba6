/* IRPs (lib/irp.c) and their cancellation. Not installed. */
#ifndef UWDF_IRP_H
#define UWDF_IRP_H

#include <stdbool.h>

#include <wdm.h>

struct uwdf_queue;
struct uwdf_request;

enum uwdf_cancel_kind {
    UWDF_CANCEL_ON_QUEUE = 1, /* waiting on a queue */
    UWDF_CANCEL_DRIVER,       /* marked cancelable by the driver */
    UWDF_CANCEL_SENT,         /* a received request forwarded to a target */
    UWDF_CANCEL_FP_WAIT,      /* a packet waiting for a reserved request */
};
/* IoSetCancelRoutine/IoCancelIrp, with atomics on the IRP (lib/irp.c).
 * set returns false if the IRP is already cancelled; clear returns false
 * if a cancel took the routine (the canceller now owns the outcome, and
 * holds its reference on the owner). */
bool uwdf_irp_set_cancel(PIRP irp, enum uwdf_cancel_kind kind, struct uwdf_request *owner);
bool uwdf_irp_clear_cancel(PIRP irp);
/* Whether a cancel of the IRP was requested (its writers store it
 * atomically). */
static inline bool uwdf_irp_cancelled(PIRP irp)
{
    return __atomic_load_n(&irp->Cancel, __ATOMIC_ACQUIRE) != 0;
}
void uwdf_irp_cancel(PIRP irp);
/* The two halves of cancelling an IRP: marking it and taking its cancel
 * routine (atomically), then running that routine. A purge
 * takes the first half under the queue's lock, while the request is still
 * the driver's and its IRP cannot have gone back to the sender. */
struct uwdf_irp_cancel_claim {
    enum uwdf_cancel_kind kind;
    struct uwdf_request *owner; /* NULL: no routine was armed */
    struct uwdf_queue *q;
};
struct uwdf_irp_cancel_claim uwdf_irp_cancel_take(PIRP irp);
void uwdf_irp_cancel_run(struct uwdf_irp_cancel_claim c);

#endif
