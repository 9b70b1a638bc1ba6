/* CLOCK_MONOTONIC nanoseconds read from the TSC, for a clock read per I/O
 * (the engine's hand-over times): a rdtsc instead of a vDSO clock_gettime
 * (about 10 ns against 24 ns on the 2-vCPU VM of docs/performance.md).
 *
 * One per thread that reads it (not shared: no locking). The reading is
 * extrapolated from the last clock_gettime (the anchor) at the rate
 * measured between anchors, and the anchor is read again after 1 ms, so
 * the reading stays within a few ns of CLOCK_MONOTONIC (NTP's slewing
 * included) and a clock comparing against clock_gettime needs no
 * calibration of its own. Without an invariant TSC (or off x86-64), and
 * for the first 10 ms of a clock's life, every reading is a
 * clock_gettime. Implemented in time.c. */
#ifndef UWDF_TSC_CLOCK_H
#define UWDF_TSC_CLOCK_H

#include <stdint.h>

#include "runtime.h"

struct uwdf_tsc_clock {
    uint64_t tsc;        /* the anchor: TSC and CLOCK_MONOTONIC read together */
    int64_t ns;
    uint64_t window;     /* ticks the anchor extrapolates (0: none yet) */
    uint64_t mult;       /* ns per tick << 32 */
    uint64_t base_tsc;   /* where the rate is measured from */
    int64_t base_ns;
};

int64_t uwdf_tsc_clock_anchor(struct uwdf_tsc_clock *c);

#if defined(__x86_64__)
#include <x86intrin.h>

/* No window (no anchor: no TSC clock on this machine, as under a
 * kvm-clock, or none yet): no rdtsc either, which costs about as much as
 * the clock_gettime that answers then. */
static inline int64_t uwdf_tsc_clock_ns(struct uwdf_tsc_clock *c)
{
    if (UWDF_LIKELY(c->window != 0)) {
        uint64_t d = __rdtsc() - c->tsc; /* before the anchor (another CPU's TSC): huge */
        if (UWDF_LIKELY(d < c->window))
            return c->ns + (int64_t)(((unsigned __int128)d * c->mult) >> 32);
    }
    return uwdf_tsc_clock_anchor(c);
}
#else
static inline int64_t uwdf_tsc_clock_ns(struct uwdf_tsc_clock *c)
{
    return uwdf_tsc_clock_anchor(c);
}
#endif

#endif
