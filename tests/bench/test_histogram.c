/* uwdf-bench's latency histogram (bench/histogram.h): bucket layout, and
 * every reported percentile against the exact one from a sorted copy of the
 * same samples (relative error at most 1/128, as the report promises). */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "testutil.h"

/* The percentiles uwdf-bench prints (fio's list) and a few more. */
static const double pcts[] = { 0.5, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95,
                               99, 99.5, 99.9, 99.95, 99.99, 100 };
#define N_PCTS (sizeof(pcts) / sizeof(pcts[0]))

/* Values whose top bit is at most 2^47 have their own buckets; larger ones
 * share the last of those (and lose the error bound). */
#define HIST_LIMIT (1ull << (HIST_MAX_MSB + 1))

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact percentile: the sample of rank ceil(pct% of n) (at least the
 * first), the one whose bucket the histogram's cumulative walk stops at. */
static uint64_t exact_percentile(const uint64_t *sorted, uint64_t n, double pct)
{
    double target = pct / 100.0 * (double)n; /* the histogram's own expression */
    uint64_t rank = (uint64_t)ceil(target);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* Fills a histogram from v[0..n), checks every percentile of pcts[], and
 * returns the largest relative error seen. */
static double check_percentiles(uint64_t *v, uint64_t n, const char *what)
{
    uint64_t *hist = calloc(HIST_N, sizeof(*hist));
    ck_assert_ptr_nonnull(hist);
    for (uint64_t i = 0; i < n; i++)
        hist[hist_index(v[i])]++;
    qsort(v, n, sizeof(*v), cmp_u64);
    double worst = 0;
    for (size_t i = 0; i < N_PCTS; i++) {
        uint64_t exact = exact_percentile(v, n, pcts[i]);
        uint64_t got = hist_percentile(hist, n, pcts[i]);
        double err = exact ? fabs((double)got - (double)exact) / (double)exact : (double)got;
        ck_assert_msg(err <= 1.0 / 128,
                      "%s: p%.2f of %llu samples: histogram %llu, exact %llu (relative error %.5f > 1/128)",
                      what, pcts[i], (unsigned long long)n, (unsigned long long)got,
                      (unsigned long long)exact, err);
        if (err > worst)
            worst = err;
    }
    free(hist);
    return worst;
}

START_TEST(small_values_have_a_bucket_each)
{
    for (uint64_t v = 0; v < HIST_SUB; v++) {
        ck_assert_uint_eq(hist_index(v), v);
        ck_assert_uint_eq(hist_value((unsigned)v), v);
    }
}
END_TEST

/* Every bucket's representative value falls back into that bucket, indexes
 * grow with the value, and a bucket is at most 1/128 of its lower bound wide. */
START_TEST(buckets_are_ordered_and_narrow)
{
    for (unsigned i = 0; i + 1 < HIST_N; i++) {
        uint64_t v = hist_value(i);
        ck_assert_msg(hist_index(v) == i, "bucket %u: value %llu maps to %u", i,
                      (unsigned long long)v, hist_index(v));
        ck_assert_uint_lt(v, hist_value(i + 1));
    }
    /* Walk the bucket edges: at each power of two and each 1/128 step. */
    for (unsigned msb = HIST_SUB_BITS; msb <= HIST_MAX_MSB; msb++) {
        uint64_t step = 1ull << (msb - HIST_SUB_BITS);
        for (uint64_t k = 0; k < HIST_SUB; k++) {
            uint64_t lo = (1ull << msb) + k * step, hi = lo + step - 1;
            unsigned idx = hist_index(lo);
            ck_assert_uint_eq(hist_index(hi), idx);
            if (hi + 1 < HIST_LIMIT)
                ck_assert_uint_eq(hist_index(hi + 1), idx + 1);
            ck_assert_uint_le(step * HIST_SUB, lo); /* width <= lower / 128 */
            ck_assert_uint_ge(hist_value(idx), lo);
            ck_assert_uint_le(hist_value(idx), hi);
        }
    }
}
END_TEST

START_TEST(values_beyond_the_range_share_the_last_bucket)
{
    ck_assert_uint_eq(hist_index(HIST_LIMIT - 1), HIST_N - 1);
    ck_assert_uint_eq(hist_index(HIST_LIMIT - (1ull << (HIST_MAX_MSB - HIST_SUB_BITS))), HIST_N - 1);
    ck_assert_uint_eq(hist_index(HIST_LIMIT - (1ull << (HIST_MAX_MSB - HIST_SUB_BITS)) - 1), HIST_N - 2);
    ck_assert_uint_eq(hist_index(HIST_LIMIT), HIST_N - 1);
    ck_assert_uint_eq(hist_index(UINT64_MAX), HIST_N - 1);
}
END_TEST

START_TEST(empty_histogram_reports_zero)
{
    uint64_t *hist = calloc(HIST_N, sizeof(*hist));
    ck_assert_ptr_nonnull(hist);
    for (size_t i = 0; i < N_PCTS; i++)
        ck_assert_uint_eq(hist_percentile(hist, 0, pcts[i]), 0);
    free(hist);
}
END_TEST

START_TEST(one_sample_is_every_percentile)
{
    uint64_t v[] = { 123456789 };
    ck_assert(check_percentiles(v, 1, "one sample") <= 1.0 / 128);
}
END_TEST

/* Latency-like shapes, each checked against a brute-force sort. erand48 /
 * nrand48 with a fixed seed: the same samples every run. */
static uint64_t gen_uniform(unsigned short *xs)
{
    return 10000 + (uint64_t)nrand48(xs) % 90000; /* 10..100 us */
}

/* Spread over every power of two the histogram resolves, so every group of
 * buckets is used. */
static uint64_t gen_log_uniform(unsigned short *xs)
{
    return (uint64_t)exp2(erand48(xs) * (double)(HIST_MAX_MSB + 1));
}

/* A fast mode and a slow tail of 1 in 1000, as a device with hiccups. */
static uint64_t gen_long_tail(unsigned short *xs)
{
    double e = -log(1.0 - erand48(xs)); /* exponential, mean 1 */
    return nrand48(xs) % 1000 == 0 ? (uint64_t)(5e6 + 20e6 * e) : (uint64_t)(8000 + 2000 * e);
}

/* Ties and bucket edges: powers of two, their neighbours, and values below
 * 128 ns. */
static uint64_t gen_few_distinct(unsigned short *xs)
{
    uint64_t base = 1ull << ((uint64_t)nrand48(xs) % (HIST_MAX_MSB + 1));
    switch (nrand48(xs) % 4) {
    case 0: return base;
    case 1: return base - 1;
    case 2: return base + 1;
    default: return (uint64_t)nrand48(xs) % HIST_SUB;
    }
}

static const struct {
    const char *name;
    uint64_t (*gen)(unsigned short *xs);
    uint64_t n;
} shapes[] = {
    { "uniform", gen_uniform, 100000 },
    { "log-uniform", gen_log_uniform, 200000 },
    { "long tail", gen_long_tail, 100000 },
    { "few distinct", gen_few_distinct, 5000 },
};
#define N_SHAPES (sizeof(shapes) / sizeof(shapes[0]))

START_TEST(percentiles_match_sorted_samples)
{
    unsigned short xs[3] = { 0x1234, 0x5678, (unsigned short)_i };
    uint64_t n = shapes[_i].n;
    uint64_t *v = malloc(n * sizeof(*v));
    ck_assert_ptr_nonnull(v);
    for (uint64_t i = 0; i < n; i++)
        v[i] = shapes[_i].gen(xs);
    check_percentiles(v, n, shapes[_i].name);
    free(v);
}
END_TEST

/* The error bound is tight in the sense that matters: the report's value is
 * a bucket's middle, not its lower edge (which would err by up to 1/128 on
 * one side only). A sample at a bucket's lower edge reads back within 1/256. */
START_TEST(reported_value_is_the_bucket_middle)
{
    uint64_t v[] = { (1ull << 40) + (5ull << 33) };
    uint64_t *hist = calloc(HIST_N, sizeof(*hist));
    ck_assert_ptr_nonnull(hist);
    hist[hist_index(v[0])]++;
    uint64_t got = hist_percentile(hist, 1, 50);
    uint64_t width = 1ull << (40 - HIST_SUB_BITS);
    ck_assert_uint_eq(got, v[0] + (width - 1) / 2);
    ck_assert(fabs((double)got - (double)v[0]) / (double)v[0] <= 1.0 / 256);
    free(hist);
}
END_TEST

static Suite *histogram_suite(void)
{
    Suite *s = suite_create("bench_histogram");
    TCase *tc = tu_tcase(s, "layout", 0);
    tcase_add_test(tc, small_values_have_a_bucket_each);
    tcase_add_test(tc, buckets_are_ordered_and_narrow);
    tcase_add_test(tc, values_beyond_the_range_share_the_last_bucket);
    tcase_add_test(tc, reported_value_is_the_bucket_middle);
    tc = tu_tcase(s, "percentiles", 0);
    tcase_add_test(tc, empty_histogram_reports_zero);
    tcase_add_test(tc, one_sample_is_every_percentile);
    tcase_add_loop_test(tc, percentiles_match_sorted_samples, 0, (int)N_SHAPES);
    return s;
}

int main(void)
{
    return tu_main(histogram_suite(), "test_histogram");
}
