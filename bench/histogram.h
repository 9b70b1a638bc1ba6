/* The latency histogram of uwdf-bench: log-linear, shared by the benchmark
 * and its tests (tests/bench/test_histogram.c). */
#ifndef UWDF_BENCH_HISTOGRAM_H
#define UWDF_BENCH_HISTOGRAM_H

#include <stdint.h>

/* Values below 128 ns have a bucket each; above, every power of two is cut
 * into 128 buckets, so a bucket's width is at most 1/128 of its lower
 * bound: the relative error of a percentile is <= 1/128. Values with the
 * top bit above 2^47 ns (39 hours) share the last bucket. */
#define HIST_SUB_BITS 7u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_MSB 47u
#define HIST_N ((HIST_MAX_MSB - HIST_SUB_BITS + 2u) * HIST_SUB)

static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb > HIST_MAX_MSB)
        return HIST_N - 1;
    unsigned shift = msb - HIST_SUB_BITS;
    return (msb - HIST_SUB_BITS + 1u) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

uint64_t hist_value(unsigned idx);
uint64_t hist_percentile(const uint64_t *hist, uint64_t n, double pct);

#endif
