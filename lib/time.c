/* Time: WDF timeouts (100 ns units, negative relative / positive absolute NT
 * time) to Linux clocks, NT system time, and dispatcher events. All
 * conversions live here. */
#include "internal.h"

#include <errno.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL
#define NS_PER_100NS 100LL

int64_t uwdf_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t uwdf_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* Absolute NT times are converted to a monotonic deadline when the request
 * is sent, so a later wall-clock step does not move an armed timer; io_uring
 * link timeouts keep the absolute CLOCK_REALTIME form instead. */
bool uwdf_timeout_to_mono_deadline(LONGLONG timeout, int64_t *deadline_ns)
{
    int64_t now = uwdf_mono_ns();
    if (timeout == 0)
        return false;
    if (timeout < 0) {
        /* -(INT64_MIN) overflows: clamp to the farthest representable time. */
        int64_t rel = timeout == INT64_MIN ? INT64_MAX / NS_PER_100NS : -timeout;
        if (rel > (INT64_MAX - now) / NS_PER_100NS)
            *deadline_ns = INT64_MAX;
        else
            *deadline_ns = now + rel * NS_PER_100NS;
        return true;
    }
    int64_t unix_100ns = timeout - UWDF_NT_EPOCH_DELTA_100NS;
    int64_t real_now = uwdf_real_ns();
    if (unix_100ns < 0) {
        *deadline_ns = now; /* before 1970: long past */
        return true;
    }
    if (unix_100ns > INT64_MAX / NS_PER_100NS) {
        *deadline_ns = INT64_MAX;
        return true;
    }
    int64_t delta = unix_100ns * NS_PER_100NS - real_now;
    if (delta <= 0)
        *deadline_ns = now;
    else if (delta > INT64_MAX - now)
        *deadline_ns = INT64_MAX;
    else
        *deadline_ns = now + delta;
    return true;
}

VOID KeQuerySystemTime(PLARGE_INTEGER CurrentTime)
{
    CurrentTime->QuadPart = uwdf_real_ns() / NS_PER_100NS + UWDF_NT_EPOCH_DELTA_100NS;
}

VOID KeQuerySystemTimePrecise(PLARGE_INTEGER CurrentTime)
{
    KeQuerySystemTime(CurrentTime);
}

VOID KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&Event->Lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&Event->Cond, &attr);
    pthread_condattr_destroy(&attr);
    Event->State = State ? 1 : 0;
    Event->Type = Type;
}

VOID UwdfKeDestroyEvent(PRKEVENT Event)
{
    pthread_cond_destroy(&Event->Cond);
    pthread_mutex_destroy(&Event->Lock);
}

LONG KeSetEvent(PRKEVENT Event, LONG Increment, BOOLEAN Wait)
{
    (void)Increment;
    (void)Wait;
    pthread_mutex_lock(&Event->Lock);
    LONG old = Event->State;
    Event->State = 1;
    if (Event->Type == NotificationEvent)
        pthread_cond_broadcast(&Event->Cond);
    else
        pthread_cond_signal(&Event->Cond);
    pthread_mutex_unlock(&Event->Lock);
    return old;
}

VOID KeClearEvent(PRKEVENT Event)
{
    pthread_mutex_lock(&Event->Lock);
    Event->State = 0;
    pthread_mutex_unlock(&Event->Lock);
}

LONG KeResetEvent(PRKEVENT Event)
{
    pthread_mutex_lock(&Event->Lock);
    LONG old = Event->State;
    Event->State = 0;
    pthread_mutex_unlock(&Event->Lock);
    return old;
}

LONG KeReadStateEvent(PRKEVENT Event)
{
    pthread_mutex_lock(&Event->Lock);
    LONG s = Event->State;
    pthread_mutex_unlock(&Event->Lock);
    return s;
}

NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout)
{
    PRKEVENT ev = Object;
    int64_t deadline = 0;
    bool timed = Timeout && uwdf_timeout_to_mono_deadline(Timeout->QuadPart, &deadline);
    NTSTATUS status = STATUS_SUCCESS;
    (void)WaitReason;
    (void)WaitMode;
    (void)Alertable;

    /* A zero timeout is a poll, not "forever". */
    if (Timeout && Timeout->QuadPart == 0) {
        timed = true;
        deadline = uwdf_mono_ns();
    }
    pthread_mutex_lock(&ev->Lock);
    while (!ev->State) {
        if (!timed) {
            pthread_cond_wait(&ev->Cond, &ev->Lock);
            continue;
        }
        struct timespec ts = { .tv_sec = deadline / NS_PER_SEC, .tv_nsec = deadline % NS_PER_SEC };
        if (pthread_cond_timedwait(&ev->Cond, &ev->Lock, &ts) == ETIMEDOUT && !ev->State) {
            status = STATUS_TIMEOUT;
            break;
        }
    }
    if (status == STATUS_SUCCESS && ev->Type == SynchronizationEvent)
        ev->State = 0;
    pthread_mutex_unlock(&ev->Lock);
    return status;
}

VOID RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString)
{
    if (!SourceString) {
        DestinationString->Length = DestinationString->MaximumLength = 0;
        DestinationString->Buffer = NULL;
        return;
    }
    size_t bytes = wcslen(SourceString) * sizeof(WCHAR);
    /* UNICODE_STRING lengths are USHORT; clamp like the kernel does, to whole
     * characters that leave room for the terminator (wchar_t is 4 bytes). */
    const size_t max_bytes = (0xFFFF - sizeof(WCHAR)) & ~(sizeof(WCHAR) - 1);
    if (bytes > max_bytes)
        bytes = max_bytes;
    DestinationString->Length = (USHORT)bytes;
    DestinationString->MaximumLength = (USHORT)(bytes + sizeof(WCHAR));
    DestinationString->Buffer = (PWCH)SourceString;
}
