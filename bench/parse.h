/* uwdf-bench's option parser: options are rows of a table (struct
 * opt_def: the field, its kind, bounds, accepted and refused names, help),
 * and one function reads a value into a structure as its row says, the
 * way fio's parse.c reads the rows of options.c. */
#ifndef UWDF_BENCH_PARSE_H
#define UWDF_BENCH_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct strpool;

/* How a row's value is read and where it goes. The field is at off in the
 * structure the table describes (struct job_opts or struct global_opts). */
enum opt_kind {
    OPT_BOOL,     /* 1/true/yes/on or 0/false/no/off; given bare: 1 */
    OPT_UINT,     /* a whole number in [min, max] */
    OPT_U64,      /* any whole number */
    OPT_SIZE,     /* bytes: a number with an optional k/m/g/t/p (base 1024) */
    OPT_SIZE_PCT, /* the same, or N% (1..100) stored at off_pct (bytes then 0) */
    OPT_TIME,     /* nanoseconds: a number with a unit; without one, unit_ns (0: seconds) */
    OPT_STR,      /* a non-empty string, kept in the string pool */
    OPT_ENUM,     /* one of the names in vals */
    OPT_PRESET,   /* takes no value: stores min */
    OPT_FUNC,     /* irregular syntax: the row's own parser */
};

/* A name an OPT_ENUM row accepts (several may give one value), or a value
 * an OPT_ENUM or OPT_STR row refuses with its own reason. */
struct opt_val {
    const char *name;
    int value;
    const char *refused;
};

struct opt_def;
typedef int opt_parse_fn(const struct opt_def *d, void *base, const char *val, char *err, size_t n);

struct opt_def {
    const char *name;
    const char *alias;
    enum opt_kind kind;
    size_t off, width; /* the field */
    size_t off_pct;    /* OPT_SIZE_PCT: where the percentage goes */
    uint64_t min, max; /* OPT_UINT, OPT_SIZE, OPT_SIZE_PCT (bytes), OPT_TIME (ns, max only,
                        * 0: none); OPT_PRESET: the value */
    uint64_t unit_ns;  /* OPT_TIME: a value without a unit is in these (0: seconds) */
    bool inverse;      /* OPT_BOOL: stored negated; OPT_UINT: stored as max - value */
    const struct opt_val *vals;
    opt_parse_fn *parse; /* OPT_FUNC; val outlives the structure it fills (the
                          * config's string pool) */
    const char *err;     /* why a value is refused (OPT_UINT: says the range) */
    const char *arg;     /* the value in --help (NULL: a bare flag) */
    const char *help;
    const char *def;     /* the default, as --cmdhelp shows it (NULL: none) */
    bool bare_ok;        /* may be given without a value (OPT_STR: stores "") in a
                          * job file; on the command line only a global row's,
                          * whose value then needs '=' */
};

#define OPT_FIELD(type, f) .off = offsetof(type, f), .width = sizeof(((type *)0)->f)

/* Value syntax (also for rows' own parsers). Sizes: a number with an
 * optional k/m/g/t/p suffix (also kb, kib, ...), base 1024 as in fio; "N%"
 * too when pct is not NULL. Times: a number with an optional unit, unit_ns
 * (seconds when 0) when there is none. A whole number, size or time may be
 * fio's arithmetic in parentheses, "(4k * 2)" (expr.h). */
bool parse_u64_plain(const char *s, uint64_t *out);
bool parse_size_value(const char *s, uint64_t *out, unsigned *pct);
bool parse_time_value(const char *s, uint64_t unit_ns, uint64_t *out_ns);
bool parse_bool_value(const char *s, bool *out);

bool opt_is_flag(const struct opt_def *d);
const struct opt_def *opt_find(const struct opt_def *table, size_t n, const char *key);
/* The option name (or alias) of the tables closest to key, if close enough
 * to be what was meant (fio's rule: an edit distance of at most half the
 * length); NULL otherwise. tables is NULL-terminated, each with its size
 * in sizes. */
const char *opt_suggest(const struct opt_def *const *tables, const size_t *sizes, const char *key);
int opt_set(const struct opt_def *d, void *base, const char *val, struct strpool *pool, char *err, size_t n);
/* For a row's own parser: err = why, returns -1. */
int opt_refuse(char *err, size_t n, const char *why);
void opt_print_help(FILE *f, const struct opt_def *table, size_t n);
/* fio's --cmdhelp=NAME: the row's help, alias, type, default, range and
 * values. */
void opt_print_cmdhelp(FILE *f, const struct opt_def *d);

#endif
