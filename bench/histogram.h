/* The latency histogram of uwdf-bench: log-linear, shared by the benchmark
 * and its tests (tests/bench/test_histogram.c). Header-only, so whatever
 * compiles bench/uwdf-bench.c (the fuzzing harness includes it) needs no
 * other source. */
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

/* The value a bucket stands for: the middle of its range. */
static inline uint64_t hist_value(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned group = idx / HIST_SUB, k = idx % HIST_SUB, shift = group - 1u;
    uint64_t lower = (uint64_t)(HIST_SUB + k) << shift;
    uint64_t width = 1ull << shift;
    return lower + (width - 1) / 2;
}

/* The pct-th percentile of the n samples in hist: the middle of the bucket
 * holding the sample of rank ceil(pct% of n); 0 for an empty histogram. */
static inline uint64_t hist_percentile(const uint64_t *hist, uint64_t n, double pct)
{
    if (!n)
        return 0;
    double target = pct / 100.0 * (double)n;
    uint64_t cum = 0;
    for (unsigned i = 0; i < HIST_N; i++) {
        cum += hist[i];
        if (hist[i] && (double)cum >= target)
            return hist_value(i);
    }
    return hist_value(HIST_N - 1);
}

#endif
