/* Timers (wdftimer.h).
 *
 * A timer's callback runs at DISPATCH_LEVEL on the framework's DPC thread
 * (one thread for every dispatch-level timer of the process, as one CPU's
 * DPC queue: a callback must not block), or, when the timer's attributes
 * say WdfExecutionLevelPassive, at PASSIVE_LEVEL on a framework worker
 * thread. Expiry is measured on the monotonic clock; an absolute due time
 * is converted when the timer is started. */
#ifndef UWDF_WDFTIMER_H
#define UWDF_WDFTIMER_H

#include "wdfobject.h"

UWDF_BEGIN_DECLS

#define TolerableDelayUnlimited ((ULONG)-1)

typedef VOID EVT_WDF_TIMER(WDFTIMER Timer);
typedef EVT_WDF_TIMER *PFN_WDF_TIMER;

typedef struct _WDF_TIMER_CONFIG {
    ULONG Size;
    PFN_WDF_TIMER EvtTimerFunc;
    ULONG Period; /* ms; 0: one-shot */
    BOOLEAN AutomaticSerialization;
    ULONG TolerableDelay; /* ms the expiry may be late (the port fires on time) */
    DECLSPEC_ALIGN(8) BOOLEAN UseHighResolutionTimer;
} WDF_TIMER_CONFIG, *PWDF_TIMER_CONFIG;

FORCEINLINE VOID WDF_TIMER_CONFIG_INIT(PWDF_TIMER_CONFIG Config, PFN_WDF_TIMER EvtTimerFunc)
{
    __builtin_memset(Config, 0, sizeof(WDF_TIMER_CONFIG));
    Config->Size = sizeof(WDF_TIMER_CONFIG);
    Config->EvtTimerFunc = EvtTimerFunc;
    Config->Period = 0;
    Config->AutomaticSerialization = TRUE;
    Config->TolerableDelay = 0;
}

FORCEINLINE VOID WDF_TIMER_CONFIG_INIT_PERIODIC(PWDF_TIMER_CONFIG Config, PFN_WDF_TIMER EvtTimerFunc, LONG Period)
{
    __builtin_memset(Config, 0, sizeof(WDF_TIMER_CONFIG));
    Config->Size = sizeof(WDF_TIMER_CONFIG);
    Config->EvtTimerFunc = EvtTimerFunc;
    Config->Period = (ULONG)Period;
    Config->AutomaticSerialization = TRUE;
    Config->TolerableDelay = 0;
}

/* At DISPATCH_LEVEL or below. Attributes->ParentObject is required
 * (STATUS_WDF_PARENT_NOT_SPECIFIED) and must be a device or have one among
 * its ancestors (STATUS_INVALID_DEVICE_REQUEST); the timer is deleted with
 * it. STATUS_INFO_LENGTH_MISMATCH (Config->Size), STATUS_INVALID_PARAMETER
 * (Period above MAXLONG; a high-resolution timer with a TolerableDelay),
 * STATUS_NOT_SUPPORTED (a periodic passive-level timer),
 * STATUS_WDF_INCOMPATIBLE_EXECUTION_LEVEL (AutomaticSerialization with a
 * parent whose callbacks run at the other level: a dispatch-level timer
 * under a passive queue or device, or a passive timer under a dispatch-level
 * one), STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID (a scope other than
 * Inherit or None), STATUS_INSUFFICIENT_RESOURCES. With
 * AutomaticSerialization the callback runs under the synchronization lock
 * of the nearest queue or device above the timer when that object's scope
 * is Queue or Device, serialized with its queue callbacks; with scope None
 * there is nothing to serialize with. */
NTSTATUS WdfTimerCreate(PWDF_TIMER_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes, WDFTIMER *Timer);
/* DueTime in 100 ns units: negative relative, positive absolute system
 * time, 0 at once. TRUE if the timer was still waiting to expire (it is
 * re-armed), else FALSE. Ignored (FALSE) while WdfTimerStop(Wait = TRUE)
 * runs; on a timer being deleted it is a verifier break. A periodic timer
 * first expires at DueTime, then every Period ms. At DISPATCH_LEVEL or
 * below. */
BOOLEAN WdfTimerStart(WDFTIMER Timer, LONGLONG DueTime);
/* TRUE if the timer was waiting to expire. Wait = FALSE: at DISPATCH_LEVEL
 * or below; a callback already due may still run. Wait = TRUE: at
 * PASSIVE_LEVEL (else FALSE, STATUS_INVALID_DEVICE_REQUEST's rule), returns
 * once every callback already due has run; called from the timer's own
 * callback it would deadlock, so it does nothing and returns FALSE (a
 * verifier break). */
BOOLEAN WdfTimerStop(WDFTIMER Timer, BOOLEAN Wait);
WDFOBJECT WdfTimerGetParentObject(WDFTIMER Timer);

UWDF_END_DECLS
#endif
