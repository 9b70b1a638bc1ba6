/* Values computed from the text of an option: fio's arithmetic in
 * parentheses, "(4k * 2)", and the substitutions a value gets before it is
 * parsed: ${VAR} (job files) and fio's keywords $pagesize, $mb_memory and
 * $ncpus, with the "simple math" fio does on them ("size=8*$mb_memory"). */
#ifndef UWDF_BENCH_EXPR_H
#define UWDF_BENCH_EXPR_H

#include <stdbool.h>
#include <stddef.h>

struct strpool;

/* What the numbers of an expression may carry. */
enum expr_unit {
    EXPR_PLAIN, /* no suffix */
    EXPR_SIZE,  /* k, m, g, t, p (base 1024, as fio's sizes) */
    EXPR_TIME,  /* us, ms, s, m, h, d; the result is in microseconds (fio) */
};

/* Evaluates s, an expression that must start with '(' (fio: "an
 * arithmetic expression may be used, provided it is surrounded by
 * parentheses"): + - * / % ^, parentheses, unary minus; '/' and '%' of two
 * whole numbers are integer operations (as bc's default scale). false when
 * s is no such expression or divides by zero. */
bool expr_eval(const char *s, enum expr_unit unit, double *out); /* not EXPR_TIME */
/* The same for a time, in microseconds: numbers with a unit are in that
 * unit; an expression without any unit is in implied_us microseconds (the
 * option's own unit: runtime=(2*5) is 10 s). */
bool expr_eval_time(const char *s, double implied_us, double *out_us);

/* The value with ${VAR} replaced by the environment variable (only when
 * env: job files; unset or empty VAR gives ""), and $pagesize, $mb_memory,
 * $ncpus by this system's values; where a keyword was replaced and the
 * result holds + - * or /, it is computed, as fio has bc compute it. The
 * result is kept in pool; NULL and why in err for a '${' without its '}' or
 * math that does not compute. */
const char *expand_value(struct strpool *pool, const char *val, bool env, char *err, size_t n);

#endif
