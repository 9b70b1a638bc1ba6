/* uwdf-bench's files: which each job uses (names, regions, sizes), and
 * their layout before the run (created, filled, extended). */
#ifndef UWDF_BENCH_FILESETUP_H
#define UWDF_BENCH_FILESETUP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define DEFAULT_FILE_SIZE GIB /* a generated file without --size */

/* One path, however many jobs use it. */
struct layout_file {
    const char *path;
    const char *first_job; /* for messages */
    bool exists, is_blk, auto_named, created;
    uint64_t real_size; /* before the layout */
    uint64_t need;      /* end of the furthest region a job uses (regular files) */
    bool fill;          /* some job reads it: the region must hold data */
    uint32_t verify_bs; /* nonzero: lay out verify blocks of this size */
    /* a remote image: its size is asked of its open target, which connects
     * once (a probe of its own would connect twice) */
    bool size_from_target, size_known;
};

/* The files of a run: each path once, however many jobs use it. */
struct layout {
    struct layout_file **files;
    unsigned n;
    struct strpool *strings; /* their paths */
};

struct job;

/* Files, region sizes and offset generators of one job (before the
 * layout); -1 with a message when the job cannot run. A remote image's
 * region waits for its size: job_target_sizes. */
int job_resolve_files(struct job *j);
/* Once the job's targets are open: the sizes of its remote images, asked
 * of their targets, then its regions as job_resolve_files makes them; -1
 * with a message. */
int job_target_sizes(struct job *j);
/* Writes what the jobs need of each regular file, then drops the files'
 * cached pages (fio's invalidate=1); -1 with a message. info: where the
 * "Laying out" lines go (NULL: nowhere). */
int layout_all(struct layout *lay, FILE *info);
void layout_free(struct layout *lay);

#endif
