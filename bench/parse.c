/* uwdf-bench's option parser (parse.h): value syntax and the one
 * function that reads every kind of row. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expr.h"
#include "parse.h"
#include "util.h"

/* fio's "(expression)" for a whole number that is not negative; a time's
 * numbers without a unit are in unit_ns (0: seconds). */
static bool parse_expr_u64(const char *s, enum expr_unit unit, uint64_t unit_ns, uint64_t *out)
{
    double v;
    if (unit == EXPR_TIME) {
        if (!expr_eval_time(s, unit_ns ? (double)unit_ns / 1e3 : 1e6, &v))
            return false;
        v *= 1e3;
    } else if (!expr_eval(s, unit, &v)) {
        return false;
    }
    if (v < 0 || v > 1.8e19)
        return false;
    *out = (uint64_t)v;
    return true;
}

bool parse_u64_plain(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    if (*s == '(')
        return parse_expr_u64(s, EXPR_PLAIN, 0, out);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || *s == '-')
        return false;
    *out = v;
    return true;
}

/* The number a size or a time starts with (not negative); *end: the rest. */
static bool parse_number_prefix(const char *s, double *v, char **end)
{
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    *v = strtod(s, end);
    return !errno && *end != s && *v >= 0;
}

bool parse_size_value(const char *s, uint64_t *out, unsigned *pct)
{
    char *end;
    double v;
    if (pct)
        *pct = 0;
    if (s && *s == '(')
        return parse_expr_u64(s, EXPR_SIZE, 0, out);
    if (!parse_number_prefix(s, &v, &end))
        return false;
    if (*end == '%') {
        if (!pct || end[1] || v < 1 || v > 100 || v != (double)(unsigned)v)
            return false;
        *pct = (unsigned)v;
        *out = 0;
        return true;
    }
    uint64_t mult = 1;
    char u = (char)(*end | 0x20);
    const char *rest = end;
    switch (u) {
    case 'k': mult = KIB; rest++; break;
    case 'm': mult = MIB; rest++; break;
    case 'g': mult = GIB; rest++; break;
    case 't': mult = 1024 * GIB; rest++; break;
    case 'p': mult = 1024 * 1024 * GIB; rest++; break;
    default: break;
    }
    if (mult > 1) {
        if ((*rest | 0x20) == 'i')
            rest++;
        if ((*rest | 0x20) == 'b')
            rest++;
    } else if ((*rest | 0x20) == 'b') {
        rest++;
    }
    if (*rest)
        return false;
    double bytes = v * (double)mult;
    if (bytes > 18.0e18)
        return false;
    *out = (uint64_t)bytes;
    if (mult == 1 && (double)*out != v)
        return false; /* fractional bytes */
    return true;
}

bool parse_time_value(const char *s, uint64_t unit_ns, uint64_t *out_ns)
{
    char *end;
    double v;
    if (s && *s == '(')
        return parse_expr_u64(s, EXPR_TIME, unit_ns, out_ns);
    if (!parse_number_prefix(s, &v, &end))
        return false;
    double mult;
    if (!*end)
        mult = unit_ns ? (double)unit_ns : 1e9;
    else if (!strcasecmp(end, "s") || !strcasecmp(end, "sec"))
        mult = 1e9;
    else if (!strcasecmp(end, "ms") || !strcasecmp(end, "msec"))
        mult = 1e6;
    else if (!strcasecmp(end, "us") || !strcasecmp(end, "usec"))
        mult = 1e3;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "min"))
        mult = 60e9;
    else if (!strcasecmp(end, "h") || !strcasecmp(end, "hr"))
        mult = 3600e9;
    else if (!strcasecmp(end, "d"))
        mult = 86400e9;
    else
        return false;
    double ns = v * mult;
    if (ns > 9.0e18)
        return false;
    *out_ns = (uint64_t)ns;
    return true;
}

bool parse_bool_value(const char *s, bool *out)
{
    if (!s) {
        *out = true; /* a bare flag */
        return true;
    }
    if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")) {
        *out = false;
        return true;
    }
    return false;
}

/* A flag may be given bare and never takes the next argument as its value. */
bool opt_is_flag(const struct opt_def *d)
{
    return d->kind == OPT_BOOL;
}

const struct opt_def *opt_find(const struct opt_def *table, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const struct opt_def *d = &table[i];
        if (!strcmp(d->name, key) || (d->alias && !strcmp(d->alias, key)))
            return d;
    }
    return NULL;
}

static void opt_store(void *base, size_t off, size_t width, uint64_t v)
{
    unsigned char *p = (unsigned char *)base + off;
    if (width == sizeof(uint8_t)) {
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, sizeof(x));
    } else if (width == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, sizeof(x));
    } else {
        memcpy(p, &v, sizeof(v));
    }
}

int opt_refuse(char *err, size_t n, const char *why)
{
    snprintf(err, n, "%s", why);
    return -1;
}

/* A name of vals, or NULL; *refused says why when that name is refused. */
static const struct opt_val *opt_val_find(const struct opt_val *vals, const char *val)
{
    for (const struct opt_val *v = vals; v && v->name; v++)
        if (!strcmp(v->name, val))
            return v;
    return NULL;
}

/* Reads val as row d says and stores it into base (a string: kept in
 * pool); -1 and why in err. */
int opt_set(const struct opt_def *d, void *base, const char *val, struct strpool *pool, char *err,
                   size_t n)
{
    uint64_t v = 0;
    unsigned pct = 0;
    bool b;
    const struct opt_val *ov;
    switch (d->kind) {
    case OPT_BOOL:
        if (!parse_bool_value(val, &b))
            return opt_refuse(err, n, d->err);
        opt_store(base, d->off, d->width, d->inverse ? !b : b);
        return 0;
    case OPT_UINT:
        if (!parse_u64_plain(val, &v) || v < d->min || v > d->max) {
            snprintf(err, n, "expected a whole number from %u to %u", (unsigned)d->min, (unsigned)d->max);
            return -1;
        }
        opt_store(base, d->off, d->width, d->inverse ? d->max - v : v);
        return 0;
    case OPT_U64:
        if (!parse_u64_plain(val, &v))
            return opt_refuse(err, n, d->err);
        opt_store(base, d->off, d->width, v);
        return 0;
    case OPT_SIZE:
    case OPT_SIZE_PCT:
        if (!parse_size_value(val, &v, d->kind == OPT_SIZE_PCT ? &pct : NULL) || (!pct && v < d->min) ||
            v > d->max)
            return opt_refuse(err, n, d->err);
        opt_store(base, d->off, d->width, v);
        if (d->kind == OPT_SIZE_PCT)
            opt_store(base, d->off_pct, sizeof(unsigned), pct);
        return 0;
    case OPT_TIME:
        if (!parse_time_value(val, d->unit_ns, &v) || (d->max && v > d->max))
            return opt_refuse(err, n, d->err);
        opt_store(base, d->off, d->width, v);
        return 0;
    case OPT_STR:
        if (!val && d->bare_ok)
            val = "";
        else if (!val || !*val)
            return opt_refuse(err, n, d->err);
        if ((ov = opt_val_find(d->vals, val)))
            return opt_refuse(err, n, ov->refused);
        {
            const char *kept = keep_str(pool, val);
            memcpy((unsigned char *)base + d->off, &kept, sizeof(kept));
        }
        return 0;
    case OPT_ENUM:
        if (!val || !(ov = opt_val_find(d->vals, val)))
            return opt_refuse(err, n, d->err);
        if (ov->refused)
            return opt_refuse(err, n, ov->refused);
        opt_store(base, d->off, d->width, (uint64_t)ov->value);
        return 0;
    case OPT_PRESET:
        opt_store(base, d->off, d->width, d->min);
        return 0;
    case OPT_FUNC:
        return d->parse(d, base, val, err, n);
    }
    return opt_refuse(err, n, "unknown option kind");
}

/* Levenshtein distance, for suggestions (keys longer than this get none). */
#define SUGGEST_MAX_LEN 64
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[SUGGEST_MAX_LEN + 1], prev[SUGGEST_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            unsigned del = prev[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, row, (lb + 1) * sizeof(row[0]));
    }
    return prev[lb];
}

const char *opt_suggest(const struct opt_def *const *tables, const size_t *sizes, const char *key)
{
    const char *best = NULL;
    unsigned best_d = ~0u;
    if (strlen(key) > SUGGEST_MAX_LEN)
        return NULL;
    for (size_t t = 0; tables[t]; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            const char *names[2] = { tables[t][i].name, tables[t][i].alias };
            for (int k = 0; k < 2; k++) {
                if (!names[k] || strlen(names[k]) > SUGGEST_MAX_LEN)
                    continue;
                unsigned dist = edit_distance(key, names[k]);
                if (dist < best_d) {
                    best_d = dist;
                    best = names[k];
                }
            }
        }
    /* fio's string_distance_ok: at most half the key's length */
    return best && best_d <= (strlen(key) + 1) / 2 ? best : NULL;
}

static const char *kind_help(const struct opt_def *d)
{
    switch (d->kind) {
    case OPT_BOOL: return "boolean value (opt=1)";
    case OPT_UINT:
    case OPT_U64: return "integer value (opt=100)";
    case OPT_SIZE: return "integer value with possible k/m/g postfix (opt=4k)";
    case OPT_SIZE_PCT: return "integer value with possible k/m/g postfix, or a percentage (opt=4k, opt=50%)";
    case OPT_TIME: return d->unit_ns == NS_PER_MS ? "string with time postfix, msec without one (opt=500ms)"
                                                  : "string with time postfix (opt=10s)";
    case OPT_STR: return d->bare_ok ? "string, or empty (opt=bla)" : "string (opt=bla)";
    case OPT_ENUM: return "string (opt=bla)";
    case OPT_PRESET: return "no value";
    case OPT_FUNC: break;
    }
    return d->arg ? d->arg : "string (opt=bla)";
}

void opt_print_cmdhelp(FILE *f, const struct opt_def *d)
{
    fprintf(f, "%20s: %s\n", d->name, d->help);
    if (d->alias)
        fprintf(f, "%20s: %s\n", "alias", d->alias);
    fprintf(f, "%20s: %s\n", "type", kind_help(d));
    fprintf(f, "%20s: %s\n", "default", d->def ? d->def : "no default");
    if (d->kind == OPT_UINT)
        fprintf(f, "%20s: min=%llu, max=%llu\n", "range", (unsigned long long)d->min,
                (unsigned long long)d->max);
    bool first = true;
    for (const struct opt_val *v = d->vals; d->kind == OPT_ENUM && v && v->name; v++)
        if (!v->refused) {
            fprintf(f, "%20s: %s\n", first ? "valid values" : "", v->name);
            first = false;
        }
    fprintf(f, "\n");
}

/* One line per row: --name=arg, then its help. */
void opt_print_help(FILE *f, const struct opt_def *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct opt_def *d = &table[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", d->name, d->arg ? "=" : "", d->arg ? d->arg : "");
        fprintf(f, "  %-28s %s%s%s\n", left, d->help, d->alias ? "; alias " : "",
                d->alias ? d->alias : "");
    }
}
