/* fio job files and the sections of options they (and the command line)
 * hold (init.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "init.h"

struct section *section_new(struct bench_config *cfg, const char *name, bool global)
{
    struct section *s = xcalloc(1, sizeof(*s));
    s->name = name ? keep_str(&cfg->strings, name) : NULL;
    s->global = global;
    struct section **grown = realloc(cfg->sections, (cfg->nsections + 1) * sizeof(*grown));
    if (!grown)
        out_of_memory();
    cfg->sections = grown;
    cfg->sections[cfg->nsections++] = s;
    return s;
}

void section_add(struct bench_config *cfg, struct section *s, const char *key, const char *val)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        struct kv *grown = realloc(s->kv, s->cap * sizeof(*grown));
        if (!grown)
            out_of_memory();
        s->kv = grown;
    }
    s->kv[s->n].key = keep_str(&cfg->strings, key);
    s->kv[s->n].val = val ? keep_str(&cfg->strings, val) : NULL;
    s->n++;
}

const char *suggest_option(const char *key, bool with_global)
{
    const struct opt_def *tables[] = { job_options, with_global ? global_options : NULL, NULL };
    const size_t sizes[] = { n_job_options, n_global_options, 0 };
    return opt_suggest(tables, sizes, key);
}

/* Checks one option (name and value) now, so that a mistake is reported
 * with its place before anything runs. Returns the definition or NULL. */
const struct opt_def *check_option(struct bench_config *cfg, const char *where, const char *key,
                                          const char *val)
{
    const struct opt_def *d = find_job_option(key);
    char err[256] = "";
    if (!d) {
        const char *near = suggest_option(key, false);
        if (near)
            errmsg("%sunknown option '%s'; did you mean '%s'? (see --help)", where, key, near);
        else
            errmsg("%sunknown option '%s' (see --help)", where, key);
        return NULL;
    }
    if (!val && !opt_is_flag(d) && !d->bare_ok) {
        errmsg("%soption '%s' needs a value (%s=%s)", where, key, key, d->arg ? d->arg : "value");
        return NULL;
    }
    struct job_opts scratch;
    opts_fio_defaults(&scratch);
    if (opt_set(d, &scratch, val, &cfg->strings, err, sizeof(err))) {
        errmsg("%sinvalid value '%s' for option '%s': %s", where, val ? val : "", key, err);
        return NULL;
    }
    return d;
}

void apply_section(struct bench_config *cfg, struct job_opts *o, const struct section *s)
{
    char err[256];
    for (unsigned i = 0; i < s->n; i++) {
        const struct opt_def *d = find_job_option(s->kv[i].key);
        if (d)
            (void)opt_set(d, o, s->kv[i].val, &cfg->strings, err, sizeof(err)); /* checked when read */
    }
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

int parse_job_file(struct bench_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errmsg("cannot open job file '%s': %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    struct section *cur = NULL;
    bool first_job = true;
    int rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        char where[512];
        lineno++;
        snprintf(where, sizeof(where), "%s:%u: ", path, lineno);
        char *s = trim(line);
        if (!*s || *s == ';' || *s == '#')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || trim(end + 1)[0]) {
                errmsg("%sbad section header '%s'", where, s);
                rc = -1;
                break;
            }
            *end = '\0';
            char *name = trim(s + 1);
            if (!*name) {
                errmsg("%sempty section name", where);
                rc = -1;
                break;
            }
            cur = section_new(cfg, name, !strcmp(name, "global"));
            /* fio separates job files by a stonewall */
            if (!cur->global && first_job) {
                cur->file_stonewall = cfg->files_read > 0;
                first_job = false;
            }
            continue;
        }
        if (!cur) {
            errmsg("%soption outside of a section: '%s'", where, s);
            rc = -1;
            break;
        }
        char *eq = strchr(s, '=');
        const char *key = s, *val = NULL;
        if (eq) {
            *eq = '\0';
            key = trim(s);
            val = trim(eq + 1);
        }
        if (!strcmp(key, "include") || !strncmp(key, "include ", 8)) {
            errmsg("%s'include' is not supported yet", where);
            rc = -1;
            break;
        }
        if (val) {
            char err[256];
            val = expand_value(&cfg->strings, val, true, err, sizeof(err));
            if (!val) {
                errmsg("%sinvalid value for option '%s': %s", where, key, err);
                rc = -1;
                break;
            }
        }
        if (!check_option(cfg, where, key, val)) {
            rc = -1;
            break;
        }
        section_add(cfg, cur, key, val);
    }
    free(line);
    fclose(f);
    cfg->files_read++;
    return rc;
}

bool kv_overridden(const struct bench_config *cfg, unsigned si, unsigned i, bool global_only)
{
    const struct section *s = cfg->sections[si];
    for (unsigned k = i + 1; k < s->n; k++)
        if (!strcmp(s->kv[k].key, s->kv[i].key))
            return true;
    if (!global_only)
        return false;
    for (unsigned t = si + 1; t < cfg->nsections; t++)
        if (cfg->sections[t]->global)
            for (unsigned k = 0; k < cfg->sections[t]->n; k++)
                if (!strcmp(cfg->sections[t]->kv[k].key, s->kv[i].key))
                    return true;
    return false;
}
