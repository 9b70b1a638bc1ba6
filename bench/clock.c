/* The benchmark's clock (clock.h): the TSC calibration. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "util.h"

struct bench_clock g_clock;

uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

int cond_wait_ns(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ns)
{
    uint64_t at = mono_ns() + ns;
    struct timespec ts = { .tv_sec = (time_t)(at / NS_PER_SEC), .tv_nsec = (long)(at % NS_PER_SEC) };
    return pthread_cond_timedwait(c, m, &ts);
}

#if defined(__x86_64__)
#include <cpuid.h>

#define CLOCK_CALIBRATE_NS (20ull * 1000 * 1000)

void clock_init(void)
{
    unsigned a, b, c, d;
    const char *env = getenv("UWDF_BENCH_CLOCK");
    if (env && strcmp(env, "clock_gettime") == 0)
        return;
    /* CPUID 0x80000007 EDX bit 8: invariant TSC. */
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return;
    uint64_t n0 = mono_ns(), t0 = __rdtsc(), n1, t1;
    do {
        n1 = mono_ns();
        t1 = __rdtsc();
    } while (n1 - n0 < CLOCK_CALIBRATE_NS);
    if (t1 <= t0)
        return;
    g_clock.mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
    g_clock.tsc0 = t1;
    g_clock.ns0 = n1;
    g_clock.tsc = g_clock.mult != 0;
}
#else
void clock_init(void)
{
}
#endif
