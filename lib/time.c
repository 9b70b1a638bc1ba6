/* Time: WDF timeouts (100 ns units, negative relative / positive absolute NT
 * time) to Linux clocks, and the Ke time routines (system, interrupt and
 * tick time, the performance counter, calendar fields). All conversions
 * live here. */
#include "ntrt.h"
#include "tsc_clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

/* Windows' default clock tick: 15.625 ms (KeQueryTimeIncrement). */
#define TICK_100NS 156250
#define PERF_FREQUENCY 10000000LL /* 10 MHz, in 100 ns counts */
#define DAYS_1601_TO_1970 134774LL
#define SECS_PER_DAY 86400LL

#define NS_PER_SEC 1000000000LL
#define NS_PER_100NS 100LL

int64_t uwdf_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* ---- the TSC clock (tsc_clock.h) ---- */

#define TSC_CLOCK_WINDOW_NS 1000000LL        /* an anchor extrapolates 1 ms */
#define TSC_CLOCK_FIRST_RATE_NS 10000000LL   /* the first rate: over 10 ms */
#define TSC_CLOCK_RATE_NS 1000000000LL       /* then over 1 s, from a new base each time */
#define TSC_CLOCK_ANCHOR_MAX_NS 1000         /* an anchor read across a preemption is not one */
#define TSC_CLOCK_ANCHOR_TRIES 3

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>

/* The kernel keeps its own clock on the TSC only after checking that every
 * CPU's TSC is in step (a VM whose vCPUs' TSCs drift gets kvm-clock or hpet
 * instead); a thread that moves between CPUs then reads one clock. */
static bool tsc_kernel_clocksource(void)
{
    char name[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (f) {
        if (!fgets(name, sizeof(name), f))
            name[0] = '\0';
        fclose(f);
    }
    return strcmp(name, "tsc\n") == 0;
}

/* CPUID 0x80000007 EDX bit 8: the TSC runs at a constant rate in every
 * C-state (what makes it a clock at all), and the kernel clocks on it.
 * Read once. */
static bool tsc_invariant(void)
{
    static atomic_int known; /* 0: not read, 1: yes, 2: no */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        unsigned a, b, c, d;
        k = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8)) && tsc_kernel_clocksource() ? 1 : 2;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 1;
}

/* The slow path of uwdf_tsc_clock_ns: a new anchor, and the rate measured
 * again from the base (after 10 ms the first time, then every second, so
 * that a change in NTP's slewing is followed). */
int64_t uwdf_tsc_clock_anchor(struct uwdf_tsc_clock *c)
{
    int64_t before = uwdf_mono_ns();
    if (!tsc_invariant() || (c->mult == 0 && c->base_ns != 0 && before - c->base_ns < TSC_CLOCK_FIRST_RATE_NS))
        return before; /* no rate yet: no anchor either */
    /* A TSC read between two clock_gettime; the closest of three pairs,
     * and none closer than 1 us is an anchor (a preemption between the
     * reads would misplace it by its length). */
    int64_t best = INT64_MAX, ns = before;
    uint64_t t = 0;
    for (int i = 0; i < TSC_CLOCK_ANCHOR_TRIES; i++) {
        uint64_t tsc = __rdtsc();
        int64_t after = uwdf_mono_ns();
        if (after - before < best) {
            best = after - before;
            t = tsc;
            ns = before + (after - before) / 2;
        }
        before = after;
    }
    c->window = 0;
    if (best > TSC_CLOCK_ANCHOR_MAX_NS)
        return ns; /* no anchor: the next reading tries again */
    if (c->base_ns == 0 || t <= c->base_tsc) {
        /* The first anchor, or the thread moved to a CPU whose TSC is
         * behind: the rate is measured again from here. */
        *c = (struct uwdf_tsc_clock){ .base_tsc = t, .base_ns = ns };
        return ns;
    }
    int64_t span = ns - c->base_ns;
    if (span >= (c->mult ? TSC_CLOCK_RATE_NS : TSC_CLOCK_FIRST_RATE_NS)) {
        c->mult = (uint64_t)(((unsigned __int128)span << 32) / (t - c->base_tsc));
        c->base_tsc = t;
        c->base_ns = ns;
    }
    if (c->mult)
        c->window = (uint64_t)(((unsigned __int128)TSC_CLOCK_WINDOW_NS << 32) / c->mult);
    c->tsc = t;
    c->ns = ns;
    return ns;
}
#else
int64_t uwdf_tsc_clock_anchor(struct uwdf_tsc_clock *c)
{
    (void)c;
    return uwdf_mono_ns();
}
#endif

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

static int64_t clock_100ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ((int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec) / NS_PER_100NS;
}

ULONGLONG KeQueryInterruptTime(void)
{
    return (ULONGLONG)clock_100ns(CLOCK_BOOTTIME);
}

ULONGLONG KeQueryInterruptTimePrecise(PULONG64 QpcTimeStamp)
{
    ULONGLONG t = KeQueryInterruptTime();
    if (QpcTimeStamp)
        *QpcTimeStamp = (ULONG64)clock_100ns(CLOCK_MONOTONIC);
    return t;
}

ULONGLONG KeQueryUnbiasedInterruptTime(void)
{
    return (ULONGLONG)clock_100ns(CLOCK_MONOTONIC);
}

VOID KeQueryTickCount(PLARGE_INTEGER CurrentCount)
{
    CurrentCount->QuadPart = (LONGLONG)(KeQueryInterruptTime() / TICK_100NS);
}

ULONG KeQueryTimeIncrement(void)
{
    return TICK_100NS;
}

LARGE_INTEGER KeQueryPerformanceCounter(PLARGE_INTEGER PerformanceFrequency)
{
    LARGE_INTEGER now = { .QuadPart = clock_100ns(CLOCK_MONOTONIC) };
    if (PerformanceFrequency)
        PerformanceFrequency->QuadPart = PERF_FREQUENCY;
    return now;
}

VOID KeStallExecutionProcessor(ULONG MicroSeconds)
{
    int64_t until = uwdf_mono_ns() + (int64_t)MicroSeconds * 1000;
    while (uwdf_mono_ns() < until)
        YieldProcessor();
}

/* ---- calendar fields (proleptic Gregorian, UTC) ---- */

/* Days since 1970-01-01 of a civil date, and back (Howard Hinnant's
 * well-known algorithms, written out here). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

VOID RtlTimeToTimeFields(PLARGE_INTEGER Time, PTIME_FIELDS TimeFields)
{
    int64_t t = Time->QuadPart < 0 ? 0 : Time->QuadPart;
    int64_t days = t / (SECS_PER_DAY * 10000000LL);
    int64_t rest = t % (SECS_PER_DAY * 10000000LL);
    int64_t y;
    unsigned m, d;
    civil_from_days(days - DAYS_1601_TO_1970, &y, &m, &d);
    TimeFields->Year = (SHORT)y;
    TimeFields->Month = (SHORT)m;
    TimeFields->Day = (SHORT)d;
    TimeFields->Hour = (SHORT)(rest / 36000000000LL);
    TimeFields->Minute = (SHORT)(rest / 600000000LL % 60);
    TimeFields->Second = (SHORT)(rest / 10000000LL % 60);
    TimeFields->Milliseconds = (SHORT)(rest / 10000LL % 1000);
    TimeFields->Weekday = (SHORT)((days + 1) % 7); /* 1601-01-01 was a Monday */
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

BOOLEAN RtlTimeFieldsToTime(PTIME_FIELDS TimeFields, PLARGE_INTEGER Time)
{
    static const unsigned char month_days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const TIME_FIELDS *f = TimeFields;
    if (f->Year < 1601 || f->Month < 1 || f->Month > 12 || f->Day < 1 || f->Hour < 0 || f->Hour > 23 ||
        f->Minute < 0 || f->Minute > 59 || f->Second < 0 || f->Second > 59 || f->Milliseconds < 0 ||
        f->Milliseconds > 999)
        return FALSE;
    unsigned dim = month_days[f->Month - 1] + (f->Month == 2 && leap_year(f->Year));
    if ((unsigned)f->Day > dim)
        return FALSE;
    int64_t days = days_from_civil(f->Year, (unsigned)f->Month, (unsigned)f->Day) + DAYS_1601_TO_1970;
    Time->QuadPart = ((days * SECS_PER_DAY + f->Hour * 3600LL + f->Minute * 60LL + f->Second) * 1000LL +
                      f->Milliseconds) * 10000LL;
    return TRUE;
}

/* The offset from UTC in force at a system time, from the C library's
 * time zone (TZ). */
static int64_t local_offset_100ns(LONGLONG system_time)
{
    time_t t = (time_t)((system_time - UWDF_NT_EPOCH_DELTA_100NS) / 10000000LL);
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    return (int64_t)tm.tm_gmtoff * 10000000LL;
}

VOID ExSystemTimeToLocalTime(PLARGE_INTEGER SystemTime, PLARGE_INTEGER LocalTime)
{
    LocalTime->QuadPart = SystemTime->QuadPart + local_offset_100ns(SystemTime->QuadPart);
}

VOID ExLocalTimeToSystemTime(PLARGE_INTEGER LocalTime, PLARGE_INTEGER SystemTime)
{
    /* The offset at the local time read as UTC: right except in the hour a
     * daylight-saving change repeats or skips. */
    SystemTime->QuadPart = LocalTime->QuadPart - local_offset_100ns(LocalTime->QuadPart);
}

