/* libFuzzer harness: uwdf-bench's command-line and job-file parser.
 *
 * It links the benchmark's front end (bench/init.h: the command line, job
 * files, option tables; the objects of bench/libbenchparse.la compiled
 * here with the fuzzer's instrumentation) and runs main()'s parsing stage,
 * which makes no file, target or thread: parse_cmdline, read_jobdefs (the
 * job files, build_jobdefs, validate_jobdef), split_filenames on each
 * job's filename, then the same clean-up main() does (leaks are
 * LeakSanitizer findings).
 *
 * Input: lines before a line "--" are command-line arguments, one per line
 * ("--bs=4k", "--name", "job1", ...); what follows "--" is a job file, given
 * to the parser as an argument naming a memfd. Arguments that are not
 * options are dropped, so the parser never opens a path the fuzzer made up.
 * Without a "--" line everything is arguments. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../bench/init.h"
#include "../../bench/options.h"
#include "../../bench/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include <sys/mman.h>

#define MAX_ARGS 256

/* The job file as a memfd path (/proc/self/fd/N), or NULL when it cannot
 * be made. */
static const char *job_file_path(const uint8_t *data, size_t size, int *fd, char *buf, size_t buflen)
{
    *fd = memfd_create("uwdf-fuzz-job", MFD_CLOEXEC);
    if (*fd < 0)
        return NULL;
    if (size && write(*fd, data, size) != (ssize_t)size) {
        close(*fd);
        *fd = -1;
        return NULL;
    }
    snprintf(buf, buflen, "/proc/self/fd/%d", *fd);
    return buf;
}

static void parse_like_main(int argc, char **argv, const char *job_path)
{
    struct bench_config cl;
    struct jobdef *defs = NULL;
    if (parse_cmdline(argc, argv, &cl))
        goto done;
    /* parse_cmdline keeps every non-option; only ours may reach fopen. */
    for (unsigned i = 0; i < cl.njobfiles; i++)
        if (!job_path || strcmp(cl.jobfiles[i], job_path) != 0)
            abort();
    unsigned ndefs = read_jobdefs(&cl, &defs);
    for (unsigned i = 0; i < ndefs; i++) {
        if (!defs[i].o.filename)
            continue;
        const char **names;
        unsigned n = split_filenames(&cl.strings, defs[i].o.filename, &names);
        for (unsigned k = 0; k < n; k++)
            if (!names[k] || !*names[k])
                abort(); /* split_filenames never yields an empty name */
        free(names);
    }
done:
    free(defs);
    config_free(&cl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)BENCH_NAME;
    char *job = NULL;
    size_t job_len = 0;
    char *line = text;
    while (line && line < text + size) {
        char *nl = memchr(line, '\n', (size_t)(text + size - line));
        if (nl)
            *nl = '\0';
        if (!strcmp(line, "--")) {
            job = nl ? nl + 1 : text + size;
            job_len = (size_t)(text + size - job);
            break;
        }
        /* Only options: a bare word would be taken for a job file path. */
        if (line[0] == '-' && line[1] && argc < MAX_ARGS)
            argv[argc++] = line;
        line = nl ? nl + 1 : NULL;
    }
    char pathbuf[64];
    int fd = -1;
    const char *job_path = NULL;
    if (job) {
        job_path = job_file_path((const uint8_t *)job, job_len, &fd, pathbuf, sizeof(pathbuf));
        if (job_path)
            argv[argc++] = (char *)job_path;
    }
    argv[argc] = NULL;
    /* "--opt value" takes the next argument as the value; a value that
     * does not start with '-' was dropped above, so such an option
     * consumes the job file path. That is the parser's own behaviour and
     * fine to fuzz: the path is then a value, never opened. */
    parse_like_main(argc, argv, job_path);
    if (fd >= 0)
        close(fd);
    free(text);
    return 0;
}
