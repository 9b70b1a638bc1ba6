/* uwdf-bench basics: messages, allocation, the string pool, random
 * numbers, number formatting. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

void sleep_ns(uint64_t ns)
{
    struct timespec ts = { .tv_sec = (time_t)(ns / NS_PER_SEC), .tv_nsec = (long)(ns % NS_PER_SEC) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

__attribute__((format(printf, 1, 2))) void errmsg(const char *fmt, ...)
{
    va_list ap;
    char line[1024];
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, BENCH_NAME ": %s\n", line);
}

__attribute__((noreturn)) void out_of_memory(void)
{
    errmsg("out of memory");
    exit(1);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

/* Zeroed, on cache lines of its own: per-job arrays that a job's thread
 * writes on every I/O (slots, file cursors, statistics shards) must not
 * share a line with another job's, or --numjobs measures false sharing. */
void *xcalloc_lines(size_t n, size_t size)
{
    size_t bytes = (n ? n : 1) * (size ? size : 1);
    if (size && bytes / size != (n ? n : 1))
        out_of_memory();
    bytes = (bytes + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
    void *p = aligned_alloc(CACHE_LINE, bytes);
    if (!p)
        out_of_memory();
    return memset(p, 0, bytes);
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        out_of_memory();
    return s;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        out_of_memory();
    return p;
}

struct str_node {
    struct str_node *next;
    char s[];
};

const char *keep_str(struct strpool *pool, const char *s)
{
    size_t n = strlen(s) + 1;
    struct str_node *node = malloc(sizeof(*node) + n);
    if (!node)
        out_of_memory();
    memcpy(node->s, s, n);
    node->next = pool->head;
    pool->head = node;
    return node->s;
}

const char *keep_strn(struct strpool *pool, const char *s, size_t n)
{
    char *tmp = xcalloc(1, n + 1);
    memcpy(tmp, s, n);
    const char *kept = keep_str(pool, tmp);
    free(tmp);
    return kept;
}

void strpool_free(struct strpool *pool)
{
    while (pool->head) {
        struct str_node *next = pool->head->next;
        free(pool->head);
        pool->head = next;
    }
}

/* Square root without libm (Newton's method from above; it only decreases). */
double bench_sqrt(double x)
{
    if (!(x > 0))
        return 0;
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 200; i++) {
        double n = 0.5 * (r + x / r);
        if (n >= r)
            break;
        r = n;
    }
    return r;
}

uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void fill_random(void *buf, size_t len, uint64_t seed)
{
    uint64_t st = seed | 1;
    unsigned char *p = buf;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = xorshift64(&st);
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++)
        p[i] = (unsigned char)xorshift64(&st);
}

/* fio's num2str: at most maxlen digits (a decimal point counts) and a
 * unit prefix, e.g. IOPS with 4 (316k, 12.3k) and sizes base 1024
 * (4526MiB, 9.77KiB). */
void fmt_num(char *out, size_t n, double v, unsigned maxlen, bool base1024, const char *unit)
{
    static const char *const pfx1000[] = { "", "k", "M", "G", "T", "P" };
    static const char *const pfx1024[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi" };
    const char *const *pfx = base1024 ? pfx1024 : pfx1000;
    double base = base1024 ? 1024.0 : 1000.0, limit = 0.5;
    for (unsigned i = 0; i < maxlen; i++)
        limit = limit * 10 + 4.5; /* 9.5, 99.5, ...: what rounds to maxlen + 1 digits */
    int i = 0;
    while (v >= limit && i < 5) {
        v /= base;
        i++;
    }
    /* Byte units always carry a prefix-less "B"; plain numbers nothing. */
    const char *p = (i == 0 && base1024) ? "" : pfx[i];
    int digits = 1;
    for (uint64_t w = (uint64_t)v; w >= 10; w /= 10)
        digits++;
    int decimals = i > 0 ? (int)maxlen - digits - 1 : 0;
    snprintf(out, n, "%.*f%s%s", decimals > 0 ? decimals : 0, v, p, unit);
}

void fmt_scaled(char *out, size_t n, double v, bool base1024, const char *unit)
{
    fmt_num(out, n, v, 4, base1024, unit);
}

const char *fmt_bytes(char *buf, size_t n, uint64_t v)
{
    fmt_scaled(buf, n, (double)v, true, "B");
    return buf;
}
