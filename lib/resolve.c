/* Opening names beneath a root (resolve.h).
 *
 * Two ways to one result, and neither ever opens again by name a path it
 * checked before. Where the kernel has openat2 (Linux 5.6; glibc 2.36 has no
 * wrapper, hence the raw syscall), the kernel resolves the whole name from
 * the root's descriptor with RESOLVE_BENEATH ("..", an absolute name or a
 * symlink that would leave the root fails) and RESOLVE_NO_MAGICLINKS (no
 * /proc/<pid>/fd-style jump). When it refuses (EXDEV: the name met an
 * absolute symlink or tried to leave; ELOOP: a loop or a magic link), when a
 * name is missing (ENOENT, ENOTDIR: the walk tells a missing directory from
 * a missing last name), and where openat2 does not exist (ENOSYS; EPERM
 * from a seccomp filter), the component walk decides: each component is
 * opened with O_NOFOLLOW from the descriptor of the directory before it; a
 * symlink is read through its own descriptor and its text spliced in front
 * of the rest of the name; ".." goes back along the directories walked and
 * never above the root.
 *
 * Absolute symlinks: the walk follows one whose text starts with the root's
 * canonical path (as it was when the root was opened), beneath the root's
 * descriptor, and refuses any other with STATUS_ACCESS_DENIED; a magic link
 * read as text is no more than a symlink, so it gets the same treatment. */
#define _GNU_SOURCE
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#else
struct open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_BENEATH 0x08
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define RESOLVE_MAX_LINKS 40      /* the kernel's MAXSYMLINKS */
#define RESOLVE_RETRIES 64        /* a name removed between two opens; openat2's EAGAIN */
#define RESOLVE_CREATE_MODE 0666  /* less the umask, as open(2) by name */
#define RESOLVE_BUF (4 * PATH_MAX) /* a name with symlinks spliced in */

atomic_bool uwdf_resolve_walk_only;
static atomic_bool resolve_no_openat2; /* the kernel said ENOSYS once */

/* ---- the root ---- */

NTSTATUS uwdf_root_open(struct uwdf_root *root, const char *dir)
{
    root->fd = -1;
    root->path = NULL;
    /* The canonical path must name the directory held: a caller renaming
     * its own directories meanwhile gets another try. */
    for (int tries = 0; tries < 3; tries++) {
        int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return errno == ENOENT ? STATUS_OBJECT_NAME_NOT_FOUND
                   : errno == ENOTDIR ? STATUS_NOT_A_DIRECTORY
                                      : uwdf_status_from_errno(errno);
        char *real = realpath(dir, NULL);
        int err = errno;
        struct stat held, named;
        if (real && fstat(fd, &held) == 0 && stat(real, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino) {
            root->fd = fd;
            root->path = real;
            return STATUS_SUCCESS;
        }
        free(real);
        close(fd);
        if (!real && err == ENOMEM)
            return STATUS_INSUFFICIENT_RESOURCES;
    }
    return STATUS_OBJECT_NAME_NOT_FOUND;
}

void uwdf_root_close(struct uwdf_root *root)
{
    if (root->fd >= 0)
        close(root->fd);
    free(root->path);
    root->fd = -1;
    root->path = NULL;
}

/* The next component at *p (skipping '/' and "."), moving *p past it; its
 * length, 0 at the end. */
static size_t path_next(const char **p, const char **comp)
{
    for (;;) {
        while (**p == '/')
            (*p)++;
        const char *s = *p;
        while (**p && **p != '/')
            (*p)++;
        size_t n = (size_t)(*p - s);
        if (n == 1 && s[0] == '.')
            continue;
        *comp = s;
        return n;
    }
}

const char *uwdf_path_after_prefix(const char *prefix, const char *abs)
{
    if (prefix[0] != '/' || abs[0] != '/')
        return NULL;
    const char *p = prefix, *a = abs, *pc, *ac;
    for (size_t pn; (pn = path_next(&p, &pc)) != 0;) {
        size_t an = path_next(&a, &ac);
        if (an != pn || memcmp(pc, ac, pn) != 0)
            return NULL;
    }
    return a;
}

/* ---- dispositions ---- */

static bool disposition_creates(ULONG d)
{
    return d == FILE_SUPERSEDE || d == FILE_CREATE || d == FILE_OPEN_IF || d == FILE_OVERWRITE_IF;
}

static int disposition_trunc(ULONG d)
{
    return d == FILE_SUPERSEDE || d == FILE_OVERWRITE || d == FILE_OVERWRITE_IF ? O_TRUNC : 0;
}

ULONG_PTR uwdf_create_information(ULONG d)
{
    return d == FILE_SUPERSEDE ? FILE_SUPERSEDED : disposition_trunc(d) ? FILE_OVERWRITTEN : FILE_OPENED;
}

/* ---- openat2: the whole name in one call ---- */

static int resolve_openat2(int dir, const char *name, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(unsigned)flags,
        .mode = (flags & O_CREAT) ? RESOLVE_CREATE_MODE : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
}

/* Whether openat2 gave the answer (*status); false leaves the name to the
 * walk. */
static bool fast_open(const struct uwdf_root *root, const char *rel, ULONG disposition, int oflags, int *fd,
                      ULONG_PTR *information, NTSTATUS *status)
{
    const char *name = *rel ? rel : ".";
    bool creates = disposition_creates(disposition);
    int err = 0;
    for (int tries = 0; tries < RESOLVE_RETRIES; tries++) {
        int r;
        if (creates) {
            r = resolve_openat2(root->fd, name, oflags | O_CREAT | O_EXCL);
            if (r >= 0) {
                *fd = r;
                *information = FILE_CREATED;
                *status = STATUS_SUCCESS;
                return true;
            }
            err = errno;
            if (err == EEXIST && disposition == FILE_CREATE) {
                *status = STATUS_OBJECT_NAME_COLLISION;
                return true;
            }
            if (err != EEXIST)
                break;
        }
        r = resolve_openat2(root->fd, name, oflags | disposition_trunc(disposition));
        if (r >= 0) {
            *fd = r;
            *information = uwdf_create_information(disposition);
            *status = STATUS_SUCCESS;
            return true;
        }
        err = errno;
        if (err != EAGAIN) /* a rename raced a ".."; the kernel asks for a retry */
            break;
    }
    switch (err) {
    case ENOSYS:
        atomic_store(&resolve_no_openat2, true);
        return false;
    case EPERM: /* a seccomp filter's answer to an unknown system call */
    case EXDEV:
    case ELOOP:
    case ENOENT:
    case ENOTDIR:
    case EAGAIN:
        return false;
    case EISDIR: /* creating "." or "name/": the walk knows the directory is there */
        if (creates)
            return false;
        break;
    default:
        break;
    }
    *status = uwdf_status_from_errno(err);
    return true;
}

/* ---- the component walk ---- */

struct walk {
    const struct uwdf_root *root;
    int dir;         /* where the walk stands: root->fd, or its own */
    int links;       /* symlinks followed */
    size_t done_len; /* of done */
    char done[RESOLVE_BUF]; /* the directories walked from the root: "a/b/c" */
    char rest[RESOLVE_BUF]; /* what is left of the name */
    char link[PATH_MAX];    /* a symlink's text */
};

static void walk_set_dir(struct walk *w, int fd)
{
    if (w->dir != w->root->fd)
        close(w->dir);
    w->dir = fd;
}

static NTSTATUS walk_enter(struct walk *w, int fd, const char *name, size_t n)
{
    if (w->done_len + n + 2 > sizeof(w->done)) {
        close(fd);
        return STATUS_OBJECT_NAME_INVALID;
    }
    if (w->done_len)
        w->done[w->done_len++] = '/';
    memcpy(w->done + w->done_len, name, n);
    w->done_len += n;
    w->done[w->done_len] = '\0';
    walk_set_dir(w, fd);
    return STATUS_SUCCESS;
}

/* "..": back to the directory walked before this one, found again from the
 * root by the real names that led here. Not the kernel's "..": a directory
 * moved out of the root meanwhile has its parent outside. */
static NTSTATUS walk_up(struct walk *w)
{
    if (w->done_len == 0)
        return STATUS_ACCESS_DENIED; /* above the root */
    char *slash = memrchr(w->done, '/', w->done_len);
    w->done_len = slash ? (size_t)(slash - w->done) : 0;
    w->done[w->done_len] = '\0';
    walk_set_dir(w, w->root->fd);
    const char *p = w->done, *comp;
    for (size_t n; (n = path_next(&p, &comp)) != 0;) {
        char name[NAME_MAX + 1];
        memcpy(name, comp, n);
        name[n] = '\0';
        int fd = openat(w->dir, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) /* the tree changed under the walk */
            return errno == ENOENT || errno == ENOTDIR ? STATUS_OBJECT_PATH_NOT_FOUND : uwdf_status_from_errno(errno);
        walk_set_dir(w, fd);
    }
    return STATUS_SUCCESS;
}

/* The symlink open at link_fd, met just before rest[pos]: its text takes its
 * place in the name. */
static NTSTATUS walk_follow(struct walk *w, int link_fd, size_t pos)
{
    if (++w->links > RESOLVE_MAX_LINKS)
        return STATUS_REPARSE_POINT_NOT_RESOLVED;
    ssize_t n = readlinkat(link_fd, "", w->link, sizeof(w->link));
    if (n < 0)
        return uwdf_status_from_errno(errno);
    if ((size_t)n >= sizeof(w->link))
        return STATUS_OBJECT_NAME_INVALID;
    w->link[n] = '\0';
    const char *text = w->link;
    if (text[0] == '/') {
        text = w->root->path ? uwdf_path_after_prefix(w->root->path, w->link) : NULL;
        if (!text)
            return STATUS_ACCESS_DENIED;
        walk_set_dir(w, w->root->fd);
        w->done_len = 0;
        w->done[0] = '\0';
    }
    size_t tl = strlen(text), rl = strlen(w->rest + pos);
    if (tl + rl + 1 > sizeof(w->rest))
        return STATUS_OBJECT_NAME_INVALID;
    memmove(w->rest + tl, w->rest + pos, rl + 1);
    memmove(w->rest, text, tl);
    return STATUS_SUCCESS;
}

/* The name ends at a directory (the root, "..", a trailing '/'): it exists,
 * so nothing is created. */
static NTSTATUS walk_open_dir_itself(struct walk *w, ULONG disposition, int oflags, int *fd, ULONG_PTR *information)
{
    if (disposition == FILE_CREATE)
        return STATUS_OBJECT_NAME_COLLISION;
    int r = openat(w->dir, ".", oflags | disposition_trunc(disposition) | O_CLOEXEC | O_NOCTTY);
    if (r < 0)
        return uwdf_status_from_errno(errno);
    *fd = r;
    *information = uwdf_create_information(disposition);
    return STATUS_SUCCESS;
}

/* The last name, in the directory the walk stands in, never followed:
 * *is_link says it is a symlink the walk must read. */
static NTSTATUS walk_open_last(struct walk *w, const char *name, ULONG disposition, int oflags, int *fd,
                               ULONG_PTR *information, bool *is_link)
{
    int base = oflags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
    bool creates = disposition_creates(disposition);
    *is_link = false;
    for (int tries = 0; tries < RESOLVE_RETRIES; tries++) {
        int r;
        if (creates) {
            /* O_EXCL never follows a symlink: a dangling one is EEXIST here,
             * then ELOOP below, and its text is created beneath the root. */
            r = openat(w->dir, name, base | O_CREAT | O_EXCL, RESOLVE_CREATE_MODE);
            if (r >= 0) {
                *fd = r;
                *information = FILE_CREATED;
                return STATUS_SUCCESS;
            }
            if (errno != EEXIST)
                return uwdf_status_from_errno(errno);
            if (disposition == FILE_CREATE)
                return STATUS_OBJECT_NAME_COLLISION;
        }
        r = openat(w->dir, name, base | disposition_trunc(disposition));
        if (r >= 0) {
            *fd = r;
            *information = uwdf_create_information(disposition);
            return STATUS_SUCCESS;
        }
        if (errno == ELOOP) { /* O_NOFOLLOW met a symlink */
            *is_link = true;
            return STATUS_SUCCESS;
        }
        if (errno != ENOENT || !creates) /* ENOENT after EEXIST: removed meanwhile, create again */
            return uwdf_status_from_errno(errno);
    }
    return STATUS_OBJECT_NAME_NOT_FOUND;
}

/* A component on the way: enter it (a directory) or splice it (a symlink). */
static NTSTATUS walk_step(struct walk *w, const char *name, size_t n, size_t *pos)
{
    int fd = openat(w->dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? STATUS_OBJECT_PATH_NOT_FOUND : uwdf_status_from_errno(errno);
    struct stat st;
    NTSTATUS status;
    if (fstat(fd, &st) != 0) {
        status = uwdf_status_from_errno(errno);
    } else if (S_ISLNK(st.st_mode)) {
        status = walk_follow(w, fd, *pos);
        *pos = 0;
    } else if (S_ISDIR(st.st_mode)) {
        return walk_enter(w, fd, name, n);
    } else {
        status = STATUS_OBJECT_PATH_NOT_FOUND; /* a file used as a directory */
    }
    close(fd);
    return status;
}

/* The last component turned out to be a symlink: read it through its own
 * descriptor. *replaced says it is no symlink any more (changed between the
 * two opens): the component is tried again. */
static NTSTATUS walk_last_link(struct walk *w, const char *name, size_t pos, bool *replaced)
{
    *replaced = false;
    int fd = openat(w->dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *replaced = errno == ENOENT;
        return *replaced ? STATUS_SUCCESS : uwdf_status_from_errno(errno);
    }
    struct stat st;
    NTSTATUS status = STATUS_SUCCESS;
    if (fstat(fd, &st) != 0)
        status = uwdf_status_from_errno(errno);
    else if (S_ISLNK(st.st_mode))
        status = walk_follow(w, fd, pos);
    else
        *replaced = true;
    close(fd);
    return status;
}

static NTSTATUS walk_resolve(struct walk *w, ULONG disposition, int oflags, int *fd, ULONG_PTR *information)
{
    size_t pos = 0;
    for (int replaced_count = 0; replaced_count < RESOLVE_RETRIES;) {
        const char *s = w->rest + pos;
        while (*s == '/')
            s++;
        if (!*s)
            return walk_open_dir_itself(w, disposition, oflags, fd, information);
        const char *e = strchrnul(s, '/');
        size_t n = (size_t)(e - s), start = (size_t)(s - w->rest);
        pos = (size_t)(e - w->rest);
        if (n > NAME_MAX)
            return STATUS_OBJECT_NAME_INVALID;
        char name[NAME_MAX + 1];
        memcpy(name, s, n);
        name[n] = '\0';
        NTSTATUS status = STATUS_SUCCESS;
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            status = walk_up(w);
        } else if (*e) {
            status = walk_step(w, name, n, &pos);
        } else {
            bool is_link, replaced;
            status = walk_open_last(w, name, disposition, oflags, fd, information, &is_link);
            if (!NT_SUCCESS(status) || !is_link)
                return status;
            status = walk_last_link(w, name, pos, &replaced);
            if (replaced) {
                pos = start;
                replaced_count++;
            } else {
                pos = 0;
            }
        }
        if (!NT_SUCCESS(status))
            return status;
    }
    return STATUS_OBJECT_NAME_NOT_FOUND;
}

static NTSTATUS walk_open(const struct uwdf_root *root, const char *rel, ULONG disposition, int oflags, int *fd,
                          ULONG_PTR *information)
{
    struct walk *w = uwdf_alloc(sizeof(*w));
    if (!w)
        return STATUS_INSUFFICIENT_RESOURCES;
    w->root = root;
    w->dir = root->fd;
    w->links = 0;
    w->done_len = 0;
    w->done[0] = '\0';
    strcpy(w->rest, rel); /* shorter than PATH_MAX */
    NTSTATUS status = walk_resolve(w, disposition, oflags, fd, information);
    walk_set_dir(w, root->fd);
    uwdf_free(w);
    return status;
}

NTSTATUS uwdf_root_open_file(const struct uwdf_root *root, const char *rel, ULONG disposition, int oflags, int *fd,
                             ULONG_PTR *information)
{
    *fd = -1;
    *information = 0;
    if (disposition > FILE_MAXIMUM_DISPOSITION)
        return STATUS_INVALID_PARAMETER;
    while (*rel == '/')
        rel++;
    if (strlen(rel) >= PATH_MAX)
        return STATUS_OBJECT_NAME_INVALID;
    oflags &= ~(O_CREAT | O_EXCL | O_TRUNC); /* the disposition's to decide */
    NTSTATUS status;
    if (!atomic_load(&uwdf_resolve_walk_only) && !atomic_load(&resolve_no_openat2) &&
        fast_open(root, rel, disposition, oflags | O_CLOEXEC | O_NOCTTY, fd, information, &status))
        return status;
    return walk_open(root, rel, disposition, oflags, fd, information);
}
