/* uwdf-bench's log-linear latency histogram (see histogram.h). */
#include "histogram.h"

/* The value a bucket stands for: the middle of its range. */
uint64_t hist_value(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned group = idx / HIST_SUB, k = idx % HIST_SUB, shift = group - 1u;
    uint64_t lower = (uint64_t)(HIST_SUB + k) << shift;
    uint64_t width = 1ull << shift;
    return lower + (width - 1) / 2;
}

uint64_t hist_percentile(const uint64_t *hist, uint64_t n, double pct)
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
