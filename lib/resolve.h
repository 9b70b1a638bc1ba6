/* Names opened beneath a confined root (lib/resolve.c): the directory of a
 * Filter Manager volume today, the driver host's Windows-path root next.
 * Nothing inside the root (symlinks, "..", renames racing the open) can make
 * an open land outside it. */
#ifndef UWDF_RESOLVE_H
#define UWDF_RESOLVE_H

#include "runtime.h"

/* The root is held open for its whole life: renaming or replacing its path
 * afterwards does not move what the root's names resolve to. */
struct uwdf_root {
    int fd;     /* O_PATH | O_DIRECTORY */
    char *path; /* canonical path when opened: absolute symlinks under it are followed beneath the root */
};

/* Opens the directory dir (the caller's own name, symlinks followed) as a
 * root. STATUS_OBJECT_NAME_NOT_FOUND, STATUS_NOT_A_DIRECTORY, ... */
NTSTATUS uwdf_root_open(struct uwdf_root *root, const char *dir);
void uwdf_root_close(struct uwdf_root *root);

/* The rest of the absolute path abs after prefix, compared component by
 * component (repeated '/' and "." components are skipped on both sides);
 * NULL when abs does not begin with prefix. Purely textual. */
const char *uwdf_path_after_prefix(const char *prefix, const char *abs);

/* Opens rel (relative to the root; "" or "." is the root itself) with the
 * access and option flags oflags (O_RDONLY / O_RDWR, O_DIRECT, ...) and a
 * CreateDisposition (FILE_SUPERSEDE ... FILE_OVERWRITE_IF), creating only
 * inside the root. *fd and *information (FILE_CREATED, FILE_OPENED, ...) are
 * set on success. A name that leads out of the root, by "..", by a symlink
 * or by a magic link, is STATUS_ACCESS_DENIED; more than 40 symlinks (a
 * loop) STATUS_REPARSE_POINT_NOT_RESOLVED; a missing directory on the way
 * STATUS_OBJECT_PATH_NOT_FOUND; a missing last name
 * STATUS_OBJECT_NAME_NOT_FOUND; FILE_CREATE on an existing name (a symlink
 * too) STATUS_OBJECT_NAME_COLLISION; a name longer than PATH_MAX or a
 * component longer than NAME_MAX STATUS_OBJECT_NAME_INVALID. */
NTSTATUS uwdf_root_open_file(const struct uwdf_root *root, const char *rel, ULONG disposition, int oflags, int *fd,
                             ULONG_PTR *information);

/* IoStatus.Information of a create whose name existed: FILE_SUPERSEDED,
 * FILE_OPENED or FILE_OVERWRITTEN by the disposition. */
ULONG_PTR uwdf_create_information(ULONG disposition);

/* Tests only: resolve with the component walk even where openat2 exists,
 * as on a kernel without it. */
extern atomic_bool uwdf_resolve_walk_only;

#endif
