/* uwdf-bench's reports, in fio's formats: normal (report-normal.c), terse
 * version 3 (report-terse.c), JSON and JSON+ (report-json.c). */
#ifndef UWDF_BENCH_REPORT_H
#define UWDF_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

struct bench_run;
struct cpu_use;
struct jobdef;
struct report;

/* Before the run: one line per job definition, then the thread count. */
void print_header(FILE *f, const struct bench_run *run, const struct jobdef *defs, unsigned ndefs);
void print_report_normal(FILE *f, const struct bench_run *run, const struct report *r);
/* fio's "Run status group 0" lines. */
void print_group_normal(FILE *f, const struct bench_run *run);
void print_report_terse(FILE *f, const struct bench_run *run, const struct report *r);
void print_json(FILE *f, const struct bench_run *run, const struct report *reps, unsigned nrep,
                const struct cpu_use *cpu, bool plus);

#endif
