/* uwdf-bench basics: messages, allocation, the string pool, random
 * numbers, number formatting. Every bench source includes "config.h"
 * first (BENCH_VERSION needs PACKAGE_VERSION). */
#ifndef UWDF_BENCH_UTIL_H
#define UWDF_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_NAME "uwdf-bench"
#define BENCH_VERSION BENCH_NAME "-" PACKAGE_VERSION

#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull
#define NS_PER_SEC 1000000000ull

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

#define CACHE_LINE 64

__attribute__((format(printf, 1, 2))) void errmsg(const char *fmt, ...);
__attribute__((noreturn)) void out_of_memory(void);
void *xcalloc(size_t n, size_t size);
void *xcalloc_lines(size_t n, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Strings of options, job files and names made from them live as long as
 * the run; a pool keeps them on one list so that they are freed at the end
 * (clean valgrind runs). */
struct str_node;
struct strpool {
    struct str_node *head;
};
const char *keep_str(struct strpool *pool, const char *s);
const char *keep_strn(struct strpool *pool, const char *s, size_t n);
void strpool_free(struct strpool *pool);

double bench_sqrt(double x);
uint64_t splitmix64(uint64_t *state);
void fill_random(void *buf, size_t len, uint64_t seed);

static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static inline uint32_t gcd_u32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The bits that count to n (at most 63). */
static inline unsigned bits_for(uint64_t n)
{
    unsigned b = 0;
    while (b < 63 && (1ull << b) < n)
        b++;
    return b;
}

/* A bijection on [0, 2^bits) keyed by key (mask: 2^bits - 1): xor with
 * the key, multiplications by odd constants and right xorshifts, each
 * invertible modulo 2^bits. */
static inline uint64_t bits_permute(uint64_t x, unsigned bits, uint64_t mask, uint64_t key)
{
    if (!bits)
        return 0;
    unsigned h = bits / 2 + 1;
    x = (x ^ key) & mask;
    x = (x * 0x9E3779B97F4A7C15ull) & mask;
    x ^= x >> h;
    x = (x + (key >> 17)) & mask;
    x = (x * 0xBF58476D1CE4E5B9ull) & mask;
    x ^= x >> h;
    x = (x * 0x94D049BB133111EBull) & mask;
    x ^= x >> h;
    return x;
}

void fmt_num(char *out, size_t n, double v, unsigned maxlen, bool base1024, const char *unit);
/* fmt_num with fio's 4 significant figures. */
void fmt_scaled(char *out, size_t n, double v, bool base1024, const char *unit);
const char *fmt_bytes(char *buf, size_t n, uint64_t v);
void sleep_ns(uint64_t ns);

#endif
