/* WDFTIMER. A timer is a framework timer entry (lib/timer.c, the deadline
 * heap) plus a deferred callback (lib/deferred.c): expiry only queues the
 * deferred, on the DPC thread for a dispatch-level timer or the worker pool
 * for a passive one, so the driver's callback never runs on the framework
 * timer's thread. This is a KTIMER with a KDPC, as KMDF builds it.
 *
 * State (armed, a stale expiry, a stop in progress, rundown) is guarded by
 * one lock for all timers; the timer heap's and the executors' own locks
 * are taken inside it, never around it, and no lock is held while the
 * driver's callback runs except its AutomaticSerialization lock.
 *
 * References: each arming of the heap entry holds one on the timer (given
 * back by the expiry that consumes it, or by a cancel that removes it), and
 * so does each queueing of the deferred (given back by done(), after the
 * callback ran, or by a dequeue). So the timer's memory outlives whatever
 * may still touch it, and deleting it waits only for the callbacks.
 *
 * An expiry that the heap has already handed to its thread cannot be
 * cancelled; Start and Stop count it as stale, and the expiry, finding the
 * count, consumes itself without queueing the callback. */
#include "device.h"
#include "ntrt.h"

#include <errno.h>

#define NS_PER_MS 1000000LL

struct uwdf_wdftimer {
    struct uwdf_object obj;
    PFN_WDF_TIMER callback;
    ULONG period_ms;
    bool high_resolution;
    pthread_mutex_t *cb_lock; /* AutomaticSerialization, or NULL */
    struct uwdf_object *parent;
    struct uwdf_timer expiry;
    struct uwdf_deferred dpc;
    /* under timers_lock */
    bool armed;
    unsigned stale;
    int64_t due_ns;
    bool running_down;
    ULONG_PTR stop_thread;
    bool start_aborted;
};

static pthread_mutex_t timers_lock = PTHREAD_MUTEX_INITIALIZER;

static struct uwdf_wdftimer *timer_lookup(WDFTIMER handle, const char *ddi)
{
    return (struct uwdf_wdftimer *)uwdf_object_lookup(handle, UWDF_OBJ_TIMER, ddi);
}

static struct uwdf_wdftimer *timer_of_expiry(struct uwdf_timer *e)
{
    return uwdf_container_of(e, struct uwdf_wdftimer, expiry);
}

static struct uwdf_wdftimer *timer_of_dpc(struct uwdf_deferred *d)
{
    return uwdf_container_of(d, struct uwdf_wdftimer, dpc);
}

/* ---- expiry (the framework timer thread) and callback (DPC or worker) ---- */

static void timer_expired(struct uwdf_timer *e)
{
    struct uwdf_wdftimer *t = timer_of_expiry(e);
    bool keep_ref = false;
    pthread_mutex_lock(&timers_lock);
    if (t->stale) {
        t->stale--; /* Start or Stop gave up on this expiry */
    } else {
        if (uwdf_deferred_queue(&t->dpc))
            uwdf_object_reference(&t->obj);
        if (t->period_ms && t->armed) {
            /* The next period counts from this due time, not from now, so
             * a late expiry does not shift the rest; a callback far behind
             * skips the periods it missed. */
            int64_t now = uwdf_mono_ns();
            t->due_ns += (int64_t)t->period_ms * NS_PER_MS;
            if (t->due_ns <= now)
                t->due_ns = now + (int64_t)t->period_ms * NS_PER_MS;
            keep_ref = uwdf_timer_arm(&t->expiry, t->due_ns) == 0;
            if (!keep_ref) {
                t->armed = false;
                uwdf_log("WDFTIMER %p: could not re-arm the periodic timer (no memory)", (void *)t->obj.handle);
            }
        } else {
            t->armed = false;
        }
    }
    pthread_mutex_unlock(&timers_lock);
    if (!keep_ref) /* this arming's reference, unless it carried over */
        uwdf_object_release(&t->obj);
}

static void timer_dpc(struct uwdf_deferred *d)
{
    struct uwdf_wdftimer *t = timer_of_dpc(d);
    if (!t->callback)
        return;
    struct uwdf_device *dev = uwdf_object_find_device(&t->obj);
    struct uwdf_driver *prev = uwdf_driver_enter(dev ? dev->driver : NULL); /* WdfGetDriver's answer */
    if (t->cb_lock)
        pthread_mutex_lock(t->cb_lock);
    t->callback((WDFTIMER)t->obj.handle);
    if (t->cb_lock)
        pthread_mutex_unlock(t->cb_lock);
    uwdf_driver_enter(prev);
}

static void timer_dpc_done(struct uwdf_deferred *d)
{
    uwdf_object_release(&timer_of_dpc(d)->obj);
}

/* ---- arming (under timers_lock) ---- */

/* Take the timer off the heap. Returns how many references the caller
 * gives back (1: it was removed before it expired). */
static int timer_disarm_locked(struct uwdf_wdftimer *t, bool *was_queued)
{
    *was_queued = false;
    if (!t->armed)
        return 0;
    t->armed = false;
    if (uwdf_timer_cancel(&t->expiry)) {
        *was_queued = true;
        return 1;
    }
    t->stale++; /* expired, on its way to timer_expired */
    return 0;
}

/* ---- DDIs ---- */

static NTSTATUS timer_config_validate(PWDF_TIMER_CONFIG Config)
{
    if (Config->Size != sizeof(WDF_TIMER_CONFIG))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (Config->Period > MAXLONG)
        return STATUS_INVALID_PARAMETER;
    if (Config->UseHighResolutionTimer && Config->TolerableDelay > 0)
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

static void timer_dispose(struct uwdf_object *obj);
static const struct uwdf_object_ops timer_ops = { .dispose = timer_dispose };

NTSTATUS WdfTimerCreate(PWDF_TIMER_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes, WDFTIMER *Timer)
{
    if (!Attributes || !Attributes->ParentObject)
        return STATUS_WDF_PARENT_NOT_SPECIFIED;
    struct uwdf_object *parent = uwdf_object_lookup(Attributes->ParentObject, 0, "WdfTimerCreate");
    UWDF_REQUIRE_PARAM(Config, "WdfTimerCreate", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(Timer, "WdfTimerCreate", STATUS_INVALID_PARAMETER);
    *Timer = NULL;
    if (!parent)
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_max(DISPATCH_LEVEL, "WdfTimerCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    NTSTATUS status = timer_config_validate(Config);
    if (!NT_SUCCESS(status))
        return status;
    status = uwdf_attributes_validate_plain(Attributes, true);
    if (!NT_SUCCESS(status))
        return status;
    /* Only an explicit Passive makes a passive timer; a passive parent is
     * not inherited (KMDF looks at the timer's own attributes). */
    bool passive = Attributes->ExecutionLevel == WdfExecutionLevelPassive;
    if (Config->Period > 0 && passive)
        return STATUS_NOT_SUPPORTED;
    enum uwdf_defer_level level = passive ? UWDF_DEFER_PASSIVE : UWDF_DEFER_DISPATCH;
    pthread_mutex_t *cb_lock;
    status = uwdf_deferred_callback_lock(parent, Config->AutomaticSerialization, level, &cb_lock);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_object *obj;
    status = uwdf_object_create(sizeof(struct uwdf_wdftimer), UWDF_OBJ_TIMER, &timer_ops, Attributes, NULL, 0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    struct uwdf_wdftimer *t = (struct uwdf_wdftimer *)obj;
    t->callback = Config->EvtTimerFunc;
    t->period_ms = Config->Period;
    t->high_resolution = Config->UseHighResolutionTimer;
    t->cb_lock = cb_lock;
    t->parent = parent;
    uwdf_timer_init(&t->expiry, timer_expired);
    uwdf_deferred_init(&t->dpc, level, timer_dpc, timer_dpc_done);
    *Timer = (WDFTIMER)obj->handle;
    return STATUS_SUCCESS;
}

BOOLEAN WdfTimerStart(WDFTIMER Timer, LONGLONG DueTime)
{
    struct uwdf_wdftimer *t = timer_lookup(Timer, "WdfTimerStart");
    if (!t)
        return FALSE;
    uwdf_irql_check_max(DISPATCH_LEVEL, "WdfTimerStart");
    if (t->high_resolution && DueTime >= 0) {
        /* Windows crashes; the port reports it and does not start. */
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)Timer, 0, 0,
                      "WdfTimerStart: a high-resolution timer needs a relative (negative) DueTime, got %lld",
                      (long long)DueTime);
        return FALSE;
    }
    int64_t deadline;
    if (!uwdf_timeout_to_mono_deadline(DueTime, &deadline))
        deadline = uwdf_mono_ns(); /* 0: expires at once */
    int give_back = 0;
    bool was_queued = false, arm_failed = false;
    pthread_mutex_lock(&timers_lock);
    if (t->running_down) {
        pthread_mutex_unlock(&timers_lock);
        uwdf_verifier_break("WdfTimerStart: WDFTIMER %p is being deleted", (void *)Timer);
        return FALSE;
    }
    if (t->stop_thread) {
        t->start_aborted = true; /* WdfTimerStop(Wait) is running: ignored */
    } else {
        give_back = timer_disarm_locked(t, &was_queued);
        t->due_ns = deadline;
        t->armed = true;
        if (give_back) {
            give_back = 0; /* the old arming's reference carries over */
        } else {
            uwdf_object_reference(&t->obj);
        }
        if (uwdf_timer_arm(&t->expiry, deadline) != 0) {
            t->armed = false;
            give_back = 1;
            arm_failed = true;
        }
    }
    pthread_mutex_unlock(&timers_lock);
    if (give_back)
        uwdf_object_release(&t->obj);
    if (arm_failed)
        uwdf_log("WdfTimerStart: WDFTIMER %p could not be armed (no memory)", (void *)Timer);
    return was_queued;
}

/* Cancel, and with wait, let the callbacks already due run to the end.
 * The caller has checked the IRQL and that it is not the callback. */
static BOOLEAN timer_stop(struct uwdf_wdftimer *t, bool wait)
{
    bool was_queued;
    pthread_mutex_lock(&timers_lock);
    int give_back = timer_disarm_locked(t, &was_queued);
    if (wait) {
        t->start_aborted = false;
        t->stop_thread = uwdf_thread_token();
    }
    pthread_mutex_unlock(&timers_lock);
    if (give_back)
        uwdf_object_release(&t->obj);
    if (!wait)
        return was_queued;
    uwdf_deferred_flush(&t->dpc);
    pthread_mutex_lock(&timers_lock);
    t->stop_thread = 0;
    if (t->start_aborted) {
        /* A start during the stop (from the callback) was dropped: report
         * the timer as stopped while queued, as KMDF does. */
        was_queued = true;
        t->start_aborted = false;
    }
    pthread_mutex_unlock(&timers_lock);
    return was_queued;
}

BOOLEAN WdfTimerStop(WDFTIMER Timer, BOOLEAN Wait)
{
    struct uwdf_wdftimer *t = timer_lookup(Timer, "WdfTimerStop");
    if (!t)
        return FALSE;
    if (Wait) {
        if (uwdf_deferred_running_here(&t->dpc)) {
            uwdf_verifier_break("WdfTimerStop(Wait) from the callback of WDFTIMER %p would deadlock",
                                (void *)Timer);
            return FALSE;
        }
        if (!uwdf_irql_check_passive("WdfTimerStop(Wait)"))
            return FALSE;
    } else {
        uwdf_irql_check_max(DISPATCH_LEVEL, "WdfTimerStop");
    }
    return timer_stop(t, Wait);
}

WDFOBJECT WdfTimerGetParentObject(WDFTIMER Timer)
{
    struct uwdf_wdftimer *t = timer_lookup(Timer, "WdfTimerGetParentObject");
    return t ? t->parent->handle : NULL;
}

/* Deletion: no new starts, the pending expiry cancelled, and the callback
 * awaited, unless the deletion comes from the callback itself (it would
 * wait for itself) or from above PASSIVE_LEVEL (it may not wait): then a
 * callback already queued is taken off the queue and one running finishes
 * on its own, its reference keeping the memory alive. */
static void timer_dispose(struct uwdf_object *obj)
{
    struct uwdf_wdftimer *t = (struct uwdf_wdftimer *)obj;
    pthread_mutex_lock(&timers_lock);
    t->running_down = true;
    pthread_mutex_unlock(&timers_lock);
    uwdf_deferred_close(&t->dpc);
    if (uwdf_deferred_running_here(&t->dpc)) {
        uwdf_verifier_break("WDFTIMER %p deleted from its own callback: not waiting for it",
                            (void *)t->obj.handle);
    } else if (uwdf_irql_check_passive("WdfObjectDelete(WDFTIMER)")) {
        timer_stop(t, true);
        return;
    }
    timer_stop(t, false);
    if (uwdf_deferred_dequeue(&t->dpc))
        uwdf_object_release(&t->obj);
}
