/* uwdf-bench's front end: the command line and the job files, read into
 * a struct bench_config (sections of options, in the order given), then
 * into checked job definitions. Nothing here touches a file, a target or a
 * thread, so it can be fuzzed on its own (tests/fuzz/fuzz_bench_options.c). */
#ifndef UWDF_BENCH_INIT_H
#define UWDF_BENCH_INIT_H

#include <stdbool.h>
#include <stdio.h>

#include "options.h"
#include "util.h"

struct kv {
    const char *key, *val; /* val NULL: a bare flag */
};

/* A section is a [global] or job section of a job file, or the command-line
 * options before the first --name (global) or after a --name (a job). */
struct section {
    const char *name;
    bool global;
    bool file_stonewall; /* the first job of a job file after the first (fio) */
    struct kv *kv;
    unsigned n, cap;
};

/* What the command line and the job files say: the process-wide options
 * and the sections in the order they were read. */
struct bench_config {
    struct global_opts g;
    unsigned files_read; /* job files parsed so far */
    bool saw_name;
    const char **jobfiles;
    unsigned njobfiles;
    struct section **sections;
    unsigned nsections;
    struct strpool strings;
};

struct jobdef {
    struct job_opts o;
    const struct section *sec; /* NULL for the implicit job */
};

/* init.c */

/* Returns 0 to run, 1 on error (message printed), 2 when done (help,
 * version or --cmdhelp printed). cfg is then set up, whatever the result. */
int parse_cmdline(int argc, char **argv, struct bench_config *cfg);
/* The job files named on the command line, then the job definitions, each
 * checked: their count (*defs is the caller's to free, also when the
 * count is 0), or 0 after a message. */
unsigned read_jobdefs(struct bench_config *cfg, struct jobdef **defs);
/* Builds the job definitions from the sections (see usage() for the rules).
 * Returns the count; 0 with a message when there is none. */
unsigned build_jobdefs(struct bench_config *cfg, struct jobdef **out);
/* Checks across options; warnings for what is accepted but not done. */
int validate_jobdef(const struct jobdef *def, bool quiet);
/* Frees what parse_cmdline, parse_job_file and the parser kept. */
void config_free(struct bench_config *cfg);

/* jobfile.c */

/* fio job file: INI sections; [global] sets defaults for the sections after
 * it; key=value or a bare flag per line; lines starting with ; or # are
 * comments; values get ${VAR} and fio's $keywords (expr.h). Returns 0 or
 * -1 (message printed). */
int parse_job_file(struct bench_config *cfg, const char *path);
struct section *section_new(struct bench_config *cfg, const char *name, bool global);
void section_add(struct bench_config *cfg, struct section *s, const char *key, const char *val);
const struct opt_def *check_option(struct bench_config *cfg, const char *where, const char *key, const char *val);
/* The option key was probably meant to be (fio's "did you mean"), or NULL;
 * with_global: the command line's own options too. */
const char *suggest_option(const char *key, bool with_global);
void apply_section(struct bench_config *cfg, struct job_opts *o, const struct section *s);
/* Is kv[i] of section si overridden by a later setting of the same key (in
 * that section, or with global_only in a later [global] section)? */
bool kv_overridden(const struct bench_config *cfg, unsigned si, unsigned i, bool global_only);

#endif
