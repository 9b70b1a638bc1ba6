/* fio's arithmetic and substitutions in option values (expr.h). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "expr.h"
#include "util.h"

/* A value of an expression: whole numbers divide as integers. */
struct num {
    double v;
    bool whole;
};

#define WHOLE_LIMIT 9.0e18 /* beyond this a double is not taken for a whole number */

/* Without libm (the benchmark links none). */
static bool is_whole(double v)
{
    return v > -WHOLE_LIMIT && v < WHOLE_LIMIT && v == (double)(long long)v;
}

struct lexer {
    const char *p;
    enum expr_unit unit;
    bool saw_unit;  /* EXPR_TIME: a number carried a unit */
    bool bad;
    unsigned depth;
};

#define EXPR_MAX_DEPTH 64 /* nested parentheses and operators: a bound for the fuzzer */

static void skip_space(struct lexer *lx)
{
    while (*lx->p == ' ' || *lx->p == '\t')
        lx->p++;
}

/* A suffix after a number: its multiplier, or 0 when the context allows
 * none there. */
static double number_suffix(struct lexer *lx)
{
    const char *p = lx->p;
    if (lx->unit == EXPR_SIZE) {
        static const char units[] = "kmgtp";
        const char *u = *p ? strchr(units, tolower((unsigned char)*p)) : NULL;
        if (!u)
            return 1;
        double m = 1;
        for (const char *k = units; k <= u; k++)
            m *= 1024;
        p++;
        if (tolower((unsigned char)*p) == 'i')
            p++;
        if (tolower((unsigned char)*p) == 'b')
            p++;
        lx->p = p;
        return m;
    }
    if (lx->unit == EXPR_TIME) {
        static const struct {
            const char *name;
            double us;
        } units[] = { { "usec", 1 }, { "us", 1 }, { "msec", 1e3 }, { "ms", 1e3 }, { "sec", 1e6 },
                      { "s", 1e6 }, { "min", 60e6 }, { "m", 60e6 }, { "h", 3600e6 }, { "d", 86400e6 } };
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].name);
            if (!strncasecmp(p, units[i].name, n) && !isalpha((unsigned char)p[n])) {
                lx->p = p + n;
                lx->saw_unit = true;
                return units[i].us;
            }
        }
        return 1;
    }
    return 1;
}

static struct num parse_sum(struct lexer *lx);

static struct num parse_primary(struct lexer *lx)
{
    struct num r = { 0, true };
    skip_space(lx);
    if (++lx->depth > EXPR_MAX_DEPTH) {
        lx->bad = true;
        return r;
    }
    if (*lx->p == '(') {
        lx->p++;
        r = parse_sum(lx);
        skip_space(lx);
        if (*lx->p != ')')
            lx->bad = true;
        else
            lx->p++;
    } else if (*lx->p == '-') {
        lx->p++;
        r = parse_primary(lx);
        r.v = -r.v;
    } else if (isdigit((unsigned char)*lx->p) || *lx->p == '.') {
        char *end;
        r.v = strtod(lx->p, &end);
        if (end == lx->p) {
            lx->bad = true;
        } else {
            r.whole = is_whole(r.v) && !memchr(lx->p, '.', (size_t)(end - lx->p));
            lx->p = end;
            double m = number_suffix(lx);
            if (m != 1) {
                r.v *= m;
                r.whole = is_whole(r.v);
            }
        }
    } else {
        lx->bad = true;
    }
    lx->depth--;
    return r;
}

/* '^' binds tighter than * and /, and to the right. */
static struct num parse_power(struct lexer *lx)
{
    struct num base = parse_primary(lx);
    skip_space(lx);
    if (lx->bad || *lx->p != '^')
        return base;
    lx->p++;
    if (++lx->depth > EXPR_MAX_DEPTH) {
        lx->bad = true;
        return base;
    }
    struct num e = parse_power(lx);
    lx->depth--;
    if (!e.whole || e.v < 0 || e.v > 4096) {
        lx->bad = true; /* fio's exponents: whole and small */
        return base;
    }
    struct num r = { 1, base.whole };
    for (long i = 0; i < (long)e.v && __builtin_isfinite(r.v); i++)
        r.v *= base.v;
    r.whole = r.whole && is_whole(r.v);
    return r;
}

static struct num parse_product(struct lexer *lx)
{
    struct num a = parse_power(lx);
    for (;;) {
        skip_space(lx);
        char op = *lx->p;
        if (lx->bad || (op != '*' && op != '/' && op != '%'))
            return a;
        lx->p++;
        struct num b = parse_power(lx);
        if (op == '*') {
            a.v *= b.v;
            a.whole = a.whole && b.whole && is_whole(a.v);
        } else if (b.v == 0) {
            lx->bad = true;
        } else if (op == '/') {
            a.whole = a.whole && b.whole;
            a.v = a.whole ? (double)((long long)a.v / (long long)b.v) : a.v / b.v;
        } else if (a.whole && b.whole) {
            a.v = (double)((long long)a.v % (long long)b.v);
        } else {
            lx->bad = true; /* fio's % is of whole numbers */
        }
    }
}

static struct num parse_sum(struct lexer *lx)
{
    struct num a = parse_product(lx);
    for (;;) {
        skip_space(lx);
        char op = *lx->p;
        if (lx->bad || (op != '+' && op != '-'))
            return a;
        lx->p++;
        struct num b = parse_product(lx);
        a.v = op == '+' ? a.v + b.v : a.v - b.v;
        a.whole = a.whole && b.whole && is_whole(a.v);
    }
}

/* implied: EXPR_TIME, the unit (microseconds) of an expression none of
 * whose numbers carries one. */
static bool eval_text(const char *s, enum expr_unit unit, double implied, double *out)
{
    struct lexer lx = { .p = s, .unit = unit };
    struct num r = parse_sum(&lx);
    skip_space(&lx);
    if (lx.bad || *lx.p || !__builtin_isfinite(r.v))
        return false;
    *out = unit == EXPR_TIME && !lx.saw_unit ? r.v * implied : r.v;
    return true;
}

bool expr_eval(const char *s, enum expr_unit unit, double *out)
{
    if (!s || *s != '(' || unit == EXPR_TIME)
        return false;
    return eval_text(s, unit, 1, out);
}

bool expr_eval_time(const char *s, double implied_us, double *out_us)
{
    if (!s || *s != '(')
        return false;
    return eval_text(s, EXPR_TIME, implied_us, out_us);
}

/* ---- substitutions ---- */

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown)
            out_of_memory();
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static unsigned long keyword_value(const char *word)
{
    long page = sysconf(_SC_PAGESIZE);
    if (!strcmp(word, "$pagesize"))
        return page > 0 ? (unsigned long)page : 4096;
    if (!strcmp(word, "$mb_memory")) {
        long pages = sysconf(_SC_PHYS_PAGES);
        return pages > 0 && page > 0 ? (unsigned long)((unsigned long long)pages * (unsigned long)page >> 20) : 0;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned long)n : 1;
}

const char *expand_value(struct strpool *pool, const char *val, bool env, char *err, size_t n)
{
    static const char *const keywords[] = { "$pagesize", "$mb_memory", "$ncpus" };
    struct sbuf b = { 0 };
    bool keyword = false;
    sbuf_add(&b, "", 0);
    for (const char *p = val; *p;) {
        if (env && p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end) {
                snprintf(err, n, "'${' without its '}'");
                free(b.s);
                return NULL;
            }
            char name[256];
            size_t len = (size_t)(end - p - 2);
            if (len < sizeof(name)) {
                memcpy(name, p + 2, len);
                name[len] = '\0';
                const char *v = len ? getenv(name) : NULL;
                if (v)
                    sbuf_add(&b, v, strlen(v));
            }
            p = end + 1;
            continue;
        }
        bool matched = false;
        for (size_t k = 0; p[0] == '$' && k < sizeof(keywords) / sizeof(keywords[0]); k++) {
            size_t len = strlen(keywords[k]);
            if (!strncmp(p, keywords[k], len)) {
                char num[32];
                int w = snprintf(num, sizeof(num), "%lu", keyword_value(keywords[k]));
                sbuf_add(&b, num, (size_t)w);
                p += len;
                keyword = matched = true;
                break;
            }
        }
        if (!matched)
            sbuf_add(&b, p++, 1);
    }
    if (keyword && strpbrk(b.s, "+-*/")) {
        double v;
        if (!eval_text(b.s, EXPR_PLAIN, 1, &v) || v < 0 || v > 1.8e19) {
            snprintf(err, n, "'%s' does not compute", b.s);
            free(b.s);
            return NULL;
        }
        char num[32];
        snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
        free(b.s);
        return keep_str(pool, num);
    }
    const char *kept = keep_str(pool, b.s);
    free(b.s);
    return kept;
}
