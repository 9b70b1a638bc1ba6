/* The benchmark's clock: CLOCK_MONOTONIC nanoseconds.
 *
 * The hot path reads the clock twice per I/O. Like fio's default
 * clocksource=cpu, it reads the TSC when it is invariant (constant rate,
 * runs in every C-state): a few ns instead of a vDSO clock_gettime (about
 * 40 ns on a VM), scaled to CLOCK_MONOTONIC nanoseconds from a calibration
 * at start-up (clock_init). UWDF_BENCH_CLOCK=clock_gettime turns it off. */
#ifndef UWDF_BENCH_CLOCK_H
#define UWDF_BENCH_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

uint64_t mono_ns(void);

/* A condition variable timed on CLOCK_MONOTONIC, and a wait on it of at
 * most ns from now (a setting of the wall clock does not stretch it). */
void cond_init_monotonic(pthread_cond_t *c);
int cond_wait_ns(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ns);

/* Before any job reads the clock. */
void clock_init(void);

/* The calibration: process-wide, written once by clock_init. */
struct bench_clock {
    bool tsc;
    uint64_t tsc0, ns0;
    uint64_t mult; /* ns per tick << 32 */
};
extern struct bench_clock g_clock;

#if defined(__x86_64__)
#include <x86intrin.h>

static inline __attribute__((always_inline)) uint64_t now_ns(void)
{
    if (!g_clock.tsc)
        return mono_ns();
    uint64_t d = __rdtsc() - g_clock.tsc0;
    return g_clock.ns0 + (uint64_t)(((unsigned __int128)d * g_clock.mult) >> 32);
}
#else
static inline uint64_t now_ns(void)
{
    return mono_ns();
}
#endif

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif
