/* Names opened beneath a confined root (lib/resolve.c), tried like a
 * hostile user would: every disposition inside, "..", relative and absolute
 * symlinks in and out, dangling symlinks, loops, long names, the root
 * itself, trailing slashes, a root renamed away, magic links. Each case runs
 * twice: with openat2 where the kernel has it (index 0) and with the
 * component walk that replaces it where it does not (index 1); both must
 * give the same answers. Two cases take openat2 away or the walk's openat
 * with a seccomp filter in a child, to show which way did the work. */
#define _GNU_SOURCE
#include "testutil.h"
#include "tu_seccomp.h"

#include "../lib/resolve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODES 2 /* 0: openat2 where the kernel has it, 1: the walk */
#define TEST_TIMEOUT_SEC 120
#define INSIDE "inside\n"
#define OUTSIDE "outside, keep out\n"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* dir/root is the root: f, a/f, a/b/; dir/outside holds f, which no name
 * beneath the root may reach. */
struct rfx {
    char *dir;
    char *root;
    char *out;
    struct uwdf_root r;
};

static void put(const char *dir, const char *name, const char *text)
{
    char *p = tu_join(dir, name);
    tu_write_text(p, text);
    free(p);
}

static void mkdir_in(const char *dir, const char *name)
{
    char *p = tu_join(dir, name);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    free(p);
}

static void link_in(const char *dir, const char *name, const char *target)
{
    char *p = tu_join(dir, name);
    ck_assert_msg(symlink(target, p) == 0, "symlink %s -> %s: %s", p, target, strerror(errno));
    free(p);
}

static void rfx_init(struct rfx *x, int mode)
{
    atomic_store(&uwdf_resolve_walk_only, mode == 1);
    x->dir = tu_tmpdir();
    x->root = tu_join(x->dir, "root");
    x->out = tu_join(x->dir, "outside");
    ck_assert_int_eq(mkdir(x->root, 0755), 0);
    ck_assert_int_eq(mkdir(x->out, 0755), 0);
    put(x->root, "f", INSIDE);
    mkdir_in(x->root, "a");
    mkdir_in(x->root, "a/b");
    put(x->root, "a/f", INSIDE);
    put(x->out, "f", OUTSIDE);
    ck_assert_status(uwdf_root_open(&x->r, x->root), STATUS_SUCCESS);
    ck_assert_str_eq(x->r.path, x->root);
}

/* Nothing was created, truncated or written outside. */
static void assert_outside_untouched(struct rfx *x)
{
    ck_assert_int_eq(tu_count_entries(x->out), 1);
    char *p = tu_join(x->out, "f"), buf[64] = "";
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(OUTSIDE));
    ck_assert_str_eq(buf, OUTSIDE);
    close(fd);
    free(p);
}

static void rfx_free(struct rfx *x)
{
    uwdf_root_close(&x->r);
    free(x->dir);
    free(x->root);
    free(x->out);
}

static void rfx_fini(struct rfx *x)
{
    assert_outside_untouched(x);
    tu_rmtree(x->dir);
    rfx_free(x);
    atomic_store(&uwdf_resolve_walk_only, false);
}

/* Opens rel beneath the root; on success *st describes what was opened
 * and the descriptor is closed. */
static NTSTATUS ropen(struct rfx *x, const char *rel, ULONG disposition, int oflags, ULONG_PTR *info,
                      struct stat *st)
{
    int fd = -2;
    ULONG_PTR information = 99;
    NTSTATUS s = uwdf_root_open_file(&x->r, rel, disposition, oflags, &fd, &information);
    if (NT_SUCCESS(s)) {
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
        if (st)
            ck_assert_int_eq(fstat(fd, st), 0);
        close(fd);
    } else {
        ck_assert_int_eq(fd, -1);
        ck_assert_uint_eq(information, 0);
    }
    if (info)
        *info = information;
    return s;
}

/* Whether st is the file at dir/name. */
static bool is_file(const struct stat *st, const char *dir, const char *name)
{
    struct stat o;
    char *p = tu_join(dir, name);
    bool same = lstat(p, &o) == 0 && o.st_dev == st->st_dev && o.st_ino == st->st_ino;
    free(p);
    return same;
}

static off_t size_of(const char *dir, const char *name)
{
    struct stat st;
    char *p = tu_join(dir, name);
    ck_assert_int_eq(stat(p, &st), 0);
    free(p);
    return st.st_size;
}

static const ULONG every_disposition[] = {
    FILE_SUPERSEDE, FILE_OPEN, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE, FILE_OVERWRITE_IF,
};
#define N_DISPOSITIONS (sizeof(every_disposition) / sizeof(every_disposition[0]))

/* Every disposition on rel is refused with expect (nothing is created
 * or truncated anywhere: rfx_fini checks outside). */
static void assert_refused_every_way(struct rfx *x, const char *rel, NTSTATUS expect)
{
    for (size_t i = 0; i < N_DISPOSITIONS; i++) {
        NTSTATUS got = ropen(x, rel, every_disposition[i], O_RDWR, NULL, NULL);
        ck_assert_status_msg(got, expect, "%s, disposition %lu", rel, (unsigned long)every_disposition[i]);
    }
}

/* A last name that is a symlink leading out: refused every way but
 * FILE_CREATE, which never follows it and finds the name taken. */
static void assert_link_out_refused(struct rfx *x, const char *rel)
{
    for (size_t i = 0; i < N_DISPOSITIONS; i++) {
        ULONG d = every_disposition[i];
        NTSTATUS expect = d == FILE_CREATE ? STATUS_OBJECT_NAME_COLLISION : STATUS_ACCESS_DENIED;
        NTSTATUS got = ropen(x, rel, d, O_RDWR, NULL, NULL);
        ck_assert_status_msg(got, expect, "%s, disposition %lu", rel, (unsigned long)d);
    }
}

START_TEST(every_disposition_inside_creates_opens_and_truncates_as_documented)
{
    struct rfx x;
    rfx_init(&x, _i);
    ULONG_PTR info;
    struct stat st;
    /* Missing names. */
    ck_assert_status(ropen(&x, "n", FILE_OPEN, O_RDWR, &info, NULL), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(ropen(&x, "n", FILE_OVERWRITE, O_RDWR, &info, NULL), STATUS_OBJECT_NAME_NOT_FOUND);
    mode_t mask = umask(022);
    umask(mask);
    const char *fresh[] = { "n0", "n1", "n2", "n3" };
    const ULONG creating[] = { FILE_SUPERSEDE, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE_IF };
    for (int i = 0; i < 4; i++) {
        ck_assert_status(ropen(&x, fresh[i], creating[i], O_RDWR, &info, &st), STATUS_SUCCESS);
        ck_assert_uint_eq(info, FILE_CREATED);
        ck_assert(is_file(&st, x.root, fresh[i]));
        ck_assert_uint_eq(st.st_mode & 0777, 0666 & ~mask);
    }
    /* Existing names. */
    ck_assert_status(ropen(&x, "f", FILE_CREATE, O_RDWR, &info, NULL), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(ropen(&x, "f", FILE_OPEN, O_RDWR, &info, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OPENED);
    ck_assert(is_file(&st, x.root, "f"));
    ck_assert_status(ropen(&x, "f", FILE_OPEN_IF, O_RDONLY, &info, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OPENED);
    ck_assert_int_eq(size_of(x.root, "f"), (off_t)strlen(INSIDE));
    ck_assert_status(ropen(&x, "f", FILE_OVERWRITE, O_RDWR, &info, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OVERWRITTEN);
    ck_assert_int_eq(size_of(x.root, "f"), 0);
    put(x.root, "f", INSIDE);
    ck_assert_status(ropen(&x, "f", FILE_OVERWRITE_IF, O_RDWR, &info, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OVERWRITTEN);
    ck_assert_int_eq(size_of(x.root, "f"), 0);
    put(x.root, "f", INSIDE);
    ck_assert_status(ropen(&x, "f", FILE_SUPERSEDE, O_RDWR, &info, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_SUPERSEDED);
    ck_assert_int_eq(size_of(x.root, "f"), 0);
    /* Deeper, with "." and repeated '/', and a leading '/' meaning the root. */
    ck_assert_status(ropen(&x, "a//./b/../f", FILE_OPEN, O_RDONLY, &info, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/f"));
    ck_assert_status(ropen(&x, "/a/b/new", FILE_CREATE, O_WRONLY, &info, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/b/new"));
    /* The access flags are the caller's; the disposition's are ignored. */
    int fd;
    ck_assert_status(uwdf_root_open_file(&x.r, "a/f", FILE_OPEN, O_RDONLY | O_TRUNC, &fd, &info), STATUS_SUCCESS);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    close(fd);
    ck_assert_int_eq(size_of(x.root, "a/f"), (off_t)strlen(INSIDE));
    ck_assert_status(uwdf_root_open_file(&x.r, "f", FILE_MAXIMUM_DISPOSITION + 1, O_RDONLY, &fd, &info),
                     STATUS_INVALID_PARAMETER);
    rfx_fini(&x);
}
END_TEST

START_TEST(dotdot_inside_stays_and_above_the_root_is_access_denied)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st;
    ck_assert_status(ropen(&x, "a/b/../../f", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "f"));
    assert_refused_every_way(&x, "../outside/f", STATUS_ACCESS_DENIED);
    assert_refused_every_way(&x, "a/../../outside/f", STATUS_ACCESS_DENIED);
    assert_refused_every_way(&x, "a/b/../../../outside/new", STATUS_ACCESS_DENIED);
    /* Out and back in is still out. */
    assert_refused_every_way(&x, "../root/f", STATUS_ACCESS_DENIED);
    ck_assert_status(ropen(&x, "..", FILE_OPEN, O_RDONLY, NULL, NULL), STATUS_ACCESS_DENIED);
    rfx_fini(&x);
}
END_TEST

START_TEST(relative_symlinks_inside_work_and_ones_leading_out_are_access_denied)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st;
    link_in(x.root, "lf", "a/f");
    link_in(x.root, "la", "a");
    link_in(x.root, "a/b/up", "../../f");
    link_in(x.root, "lb", "a/b");
    link_in(x.root, "out", "../outside/f");
    link_in(x.root, "outdir", "../outside");
    link_in(x.root, "a/sneak", "../../outside");
    ck_assert_status(ropen(&x, "lf", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/f"));
    ck_assert_status(ropen(&x, "la/f", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/f"));
    ck_assert_status(ropen(&x, "la/b/up", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "f"));
    /* ".." after a symlink to a directory: the parent of where it led. */
    ck_assert_status(ropen(&x, "lb/../f", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/f"));
    ck_assert_status(ropen(&x, "la/new", FILE_CREATE, O_RDWR, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/new"));
    assert_link_out_refused(&x, "out");
    assert_refused_every_way(&x, "outdir/f", STATUS_ACCESS_DENIED);
    assert_refused_every_way(&x, "outdir/new", STATUS_ACCESS_DENIED);
    assert_refused_every_way(&x, "a/sneak/f", STATUS_ACCESS_DENIED);
    assert_refused_every_way(&x, "la/sneak/new", STATUS_ACCESS_DENIED);
    rfx_fini(&x);
}
END_TEST

START_TEST(absolute_symlinks_under_the_root_path_work_and_others_are_access_denied)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st;
    char *abs_in = tu_join(x.root, "a/f"), *abs_dir = tu_join(x.root, "a"), *abs_out = tu_join(x.out, "f");
    char *abs_back = tu_join(x.root, "../outside/f"), *abs_twisted = NULL;
    ck_assert_int_ge(asprintf(&abs_twisted, "%s//./a/../a/f", x.root), 0);
    link_in(x.root, "abs_in", abs_in);
    link_in(x.root, "a/b/abs_dir", abs_dir);
    link_in(x.root, "abs_twisted", abs_twisted);
    link_in(x.root, "abs_out", abs_out);
    link_in(x.root, "abs_back", abs_back);
    link_in(x.root, "etc", "/etc/passwd");
    link_in(x.root, "slash", "/");
    ck_assert_status(ropen(&x, "abs_in", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/f"));
    ck_assert_status(ropen(&x, "a/b/abs_dir/b/../f", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/f"));
    ck_assert_status(ropen(&x, "abs_twisted", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a/f"));
    assert_link_out_refused(&x, "abs_out");
    assert_link_out_refused(&x, "abs_back");
    assert_link_out_refused(&x, "etc");
    assert_refused_every_way(&x, "slash/etc/passwd", STATUS_ACCESS_DENIED);
    free(abs_in);
    free(abs_dir);
    free(abs_out);
    free(abs_back);
    free(abs_twisted);
    rfx_fini(&x);
}
END_TEST

START_TEST(dangling_symlink_is_created_inside_or_refused)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st;
    ULONG_PTR info;
    link_in(x.root, "d_in", "a/made");
    link_in(x.root, "d_out", "../outside/made");
    char *abs = tu_join(x.out, "made");
    link_in(x.root, "d_abs_out", abs);
    free(abs);
    ck_assert_status(ropen(&x, "d_in", FILE_OPEN, O_RDWR, NULL, NULL), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(ropen(&x, "d_in", FILE_OVERWRITE, O_RDWR, NULL, NULL), STATUS_OBJECT_NAME_NOT_FOUND);
    /* FILE_CREATE never follows: the link itself is the name that exists. */
    ck_assert_status(ropen(&x, "d_in", FILE_CREATE, O_RDWR, NULL, NULL), STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(ropen(&x, "d_in", FILE_OPEN_IF, O_RDWR, &info, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_CREATED);
    ck_assert(is_file(&st, x.root, "a/made"));
    ck_assert_status(ropen(&x, "d_in", FILE_OPEN_IF, O_RDWR, &info, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(info, FILE_OPENED);
    assert_link_out_refused(&x, "d_out");
    assert_link_out_refused(&x, "d_abs_out");
    rfx_fini(&x);
}
END_TEST

START_TEST(symlink_loops_are_reparse_point_not_resolved)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st;
    link_in(x.root, "self", "self");
    link_in(x.root, "ping", "pong");
    link_in(x.root, "pong", "ping");
    link_in(x.root, "a/up", "..");
    /* A chain of 40 symlinks resolves (the kernel's limit); 41 do not. */
    char prev[16] = "f", name[16];
    for (int i = 1; i <= 41; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        link_in(x.root, name, prev);
        memcpy(prev, name, sizeof(prev));
    }
    ck_assert_status(ropen(&x, "c40", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "f"));
    ck_assert_status(ropen(&x, "c41", FILE_OPEN, O_RDONLY, NULL, NULL), STATUS_REPARSE_POINT_NOT_RESOLVED);
    for (size_t i = 0; i < N_DISPOSITIONS; i++) {
        ULONG d = every_disposition[i];
        NTSTATUS expect = d == FILE_CREATE ? STATUS_OBJECT_NAME_COLLISION : STATUS_REPARSE_POINT_NOT_RESOLVED;
        ck_assert_status(ropen(&x, "self", d, O_RDWR, NULL, NULL), expect);
        ck_assert_status(ropen(&x, "ping", d, O_RDWR, NULL, NULL), expect);
        ck_assert_status(ropen(&x, "self/x", d, O_RDWR, NULL, NULL), STATUS_REPARSE_POINT_NOT_RESOLVED);
    }
    /* A symlink to ".." used again and again is no loop: it climbs, and out. */
    ck_assert_status(ropen(&x, "a/up/a/up/f", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "f"));
    ck_assert_status(ropen(&x, "a/up/up/f", FILE_OPEN, O_RDONLY, NULL, NULL), STATUS_OBJECT_PATH_NOT_FOUND);
    link_in(x.root, "up2", "a/up/..");
    ck_assert_status(ropen(&x, "up2/outside/f", FILE_OPEN, O_RDONLY, NULL, NULL), STATUS_ACCESS_DENIED);
    rfx_fini(&x);
}
END_TEST

START_TEST(long_names_are_object_name_invalid)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st;
    char longest[NAME_MAX + 1], too_long[NAME_MAX + 2];
    memset(longest, 'n', NAME_MAX);
    longest[NAME_MAX] = '\0';
    memset(too_long, 'n', NAME_MAX + 1);
    too_long[NAME_MAX + 1] = '\0';
    ck_assert_status(ropen(&x, longest, FILE_CREATE, O_RDWR, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, longest));
    assert_refused_every_way(&x, too_long, STATUS_OBJECT_NAME_INVALID);
    char *deep = NULL;
    ck_assert_int_ge(asprintf(&deep, "%s/x", too_long), 0);
    assert_refused_every_way(&x, deep, STATUS_OBJECT_NAME_INVALID);
    free(deep);
    /* PATH_MAX bytes or more in all: "./" repeated, which would resolve to f. */
    size_t n = PATH_MAX + 2;
    char *name = malloc(n + 2);
    for (size_t i = 0; i < n; i += 2)
        memcpy(name + i, "./", 2);
    memcpy(name + n, "f", 2);
    assert_refused_every_way(&x, name, STATUS_OBJECT_NAME_INVALID);
    memcpy(name + PATH_MAX - 4, "f", 2); /* PATH_MAX - 3 bytes: fine */
    ck_assert_status(ropen(&x, name, FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "f"));
    free(name);
    /* A symlink whose text is nearly PATH_MAX long, spliced in whole. */
    char *text = malloc(PATH_MAX);
    for (size_t i = 0; i + 2 < PATH_MAX - 2; i += 2)
        memcpy(text + i, "./", 2);
    memcpy(text + PATH_MAX - 4, "f", 2);
    link_in(x.root, "longlink", text);
    ck_assert_status(ropen(&x, "longlink", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "f"));
    free(text);
    rfx_fini(&x);
}
END_TEST

START_TEST(the_root_itself_and_trailing_slashes_name_directories)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st, root_st;
    ck_assert_int_eq(stat(x.root, &root_st), 0);
    const char *root_names[] = { "", ".", "/", "a/..", "a/b/../../", "./." };
    for (size_t i = 0; i < sizeof(root_names) / sizeof(root_names[0]); i++) {
        ULONG_PTR info;
        ck_assert_status(ropen(&x, root_names[i], FILE_OPEN, O_RDONLY, &info, &st), STATUS_SUCCESS);
        ck_assert(S_ISDIR(st.st_mode) && st.st_ino == root_st.st_ino && st.st_dev == root_st.st_dev);
        ck_assert_uint_eq(info, FILE_OPENED);
        ck_assert_status(ropen(&x, root_names[i], FILE_OPEN_IF, O_RDONLY, &info, &st), STATUS_SUCCESS);
        ck_assert(S_ISDIR(st.st_mode) && st.st_ino == root_st.st_ino);
        ck_assert_status(ropen(&x, root_names[i], FILE_CREATE, O_RDONLY, NULL, NULL), STATUS_OBJECT_NAME_COLLISION);
        ck_assert_status(ropen(&x, root_names[i], FILE_OPEN, O_RDWR, NULL, NULL), STATUS_FILE_IS_A_DIRECTORY);
        ck_assert_status(ropen(&x, root_names[i], FILE_OVERWRITE_IF, O_RDWR, NULL, NULL),
                         STATUS_FILE_IS_A_DIRECTORY);
    }
    ck_assert_status(ropen(&x, "a/", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, x.root, "a"));
    ck_assert_status(ropen(&x, "a/b/", FILE_CREATE, O_RDONLY, NULL, NULL), STATUS_OBJECT_NAME_COLLISION);
    /* A file named as a directory. */
    ck_assert_status(ropen(&x, "f/", FILE_OPEN, O_RDONLY, NULL, NULL), STATUS_OBJECT_PATH_NOT_FOUND);
    ck_assert_status(ropen(&x, "f/", FILE_OPEN_IF, O_RDWR, NULL, NULL), STATUS_OBJECT_PATH_NOT_FOUND);
    ck_assert_status(ropen(&x, "new/", FILE_OPEN_IF, O_RDWR, NULL, NULL), STATUS_OBJECT_PATH_NOT_FOUND);
    ck_assert_int_eq(tu_count_entries(x.root), 2);
    rfx_fini(&x);
}
END_TEST

START_TEST(missing_directory_is_path_not_found_and_missing_name_is_name_not_found)
{
    struct rfx x;
    rfx_init(&x, _i);
    for (size_t i = 0; i < N_DISPOSITIONS; i++) {
        ULONG d = every_disposition[i];
        ck_assert_status(ropen(&x, "nodir/x", d, O_RDWR, NULL, NULL), STATUS_OBJECT_PATH_NOT_FOUND);
        ck_assert_status(ropen(&x, "f/x", d, O_RDWR, NULL, NULL), STATUS_OBJECT_PATH_NOT_FOUND);
        ck_assert_status(ropen(&x, "a/nodir/b/x", d, O_RDWR, NULL, NULL), STATUS_OBJECT_PATH_NOT_FOUND);
    }
    ck_assert_status(ropen(&x, "a/x", FILE_OPEN, O_RDWR, NULL, NULL), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(ropen(&x, "a/b/x", FILE_OVERWRITE, O_RDWR, NULL, NULL), STATUS_OBJECT_NAME_NOT_FOUND);
    rfx_fini(&x);
}
END_TEST

START_TEST(a_root_renamed_away_keeps_resolving_beneath_the_directory_held)
{
    struct rfx x;
    rfx_init(&x, _i);
    struct stat st;
    char *moved = tu_join(x.dir, "moved"), *abs = tu_join(x.root, "a/f");
    link_in(x.root, "abs", abs);
    ck_assert_int_eq(rename(x.root, moved), 0);
    /* Someone puts another directory, with a file outside's, at the old name. */
    ck_assert_int_eq(mkdir(x.root, 0755), 0);
    char *decoy = tu_join(x.out, "f");
    link_in(x.root, "f", decoy);
    mkdir_in(x.root, "a");
    put(x.root, "a/f", "decoy\n");
    ck_assert_status(ropen(&x, "f", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, moved, "f"));
    ck_assert_status(ropen(&x, "a/f", FILE_OVERWRITE, O_RDWR, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, moved, "a/f"));
    /* The absolute symlink's text names the old path: still the root held. */
    ck_assert_status(ropen(&x, "abs", FILE_OPEN, O_RDONLY, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, moved, "a/f"));
    ck_assert_int_eq(size_of(x.root, "a/f"), 6);
    ck_assert_status(ropen(&x, "new", FILE_CREATE, O_RDWR, NULL, &st), STATUS_SUCCESS);
    ck_assert(is_file(&st, moved, "new"));
    tu_rmtree(x.root);
    ck_assert_int_eq(rename(moved, x.root), 0);
    free(moved);
    free(abs);
    free(decoy);
    rfx_fini(&x);
}
END_TEST

/* /proc/self/fd/N as a plain symlink's text: absolute and outside. */
START_TEST(symlink_to_a_proc_fd_link_is_access_denied)
{
    struct rfx x;
    rfx_init(&x, _i);
    char *p = tu_join(x.out, "f"), *text = NULL;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(asprintf(&text, "/proc/self/fd/%d", fd), 0);
    link_in(x.root, "m", text);
    assert_link_out_refused(&x, "m");
    link_in(x.root, "selfroot", "/proc/self/root");
    assert_refused_every_way(&x, "selfroot/etc/passwd", STATUS_ACCESS_DENIED);
    close(fd);
    free(text);
    free(p);
    rfx_fini(&x);
}
END_TEST

/* Runs fn in a child process and returns its exit status (the child's
 * failed assertions are reported on stderr). */
static int in_child(int (*fn)(struct rfx *), struct rfx *x)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int rc = fn(x);
        rfx_free(x); /* this process's copy */
        _exit(rc);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert(WIFEXITED(ws));
    return WEXITSTATUS(ws);
}

#define CHILD_CHECK(cond)                                                                                   \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "%s:%d: child check failed: %s\n", __FILE__, __LINE__, #cond);                  \
            return 1;                                                                                       \
        }                                                                                                   \
    } while (0)

static NTSTATUS child_open(struct rfx *x, const char *rel, ULONG disposition, struct stat *st)
{
    int fd;
    ULONG_PTR info;
    NTSTATUS s = uwdf_root_open_file(&x->r, rel, disposition, O_RDONLY, &fd, &info);
    if (NT_SUCCESS(s)) {
        if (st)
            fstat(fd, st);
        close(fd);
    }
    return s;
}

/* A magic link inside the root: proc mounted in it, in a private mount
 * namespace of a child (so nothing is left mounted whatever happens). */
static int magic_link_child(struct rfx *x)
{
    char *proc = tu_join(x->root, "proc");
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        return TU_EXIT_SKIP;
    /* The root held was opened in the parent's mount namespace, where
     * nothing is mounted on proc: hold it again from this one. */
    uwdf_root_close(&x->r);
    CHILD_CHECK(uwdf_root_open(&x->r, x->root) == STATUS_SUCCESS);
    char *p = tu_join(x->out, "f"), *in = tu_join(x->root, "a/f"), rel[64];
    int out_fd = open(p, O_RDONLY | O_CLOEXEC), in_fd = open(in, O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(out_fd >= 0 && in_fd >= 0);
    struct stat st, in_st;
    CHILD_CHECK(fstat(in_fd, &in_st) == 0);
    snprintf(rel, sizeof(rel), "proc/self/fd/%d", out_fd);
    for (size_t i = 0; i < N_DISPOSITIONS; i++)
        CHILD_CHECK(child_open(x, rel, every_disposition[i], NULL) ==
                    (every_disposition[i] == FILE_CREATE ? STATUS_OBJECT_NAME_COLLISION : STATUS_ACCESS_DENIED));
    CHILD_CHECK(child_open(x, "proc/self/root/etc/passwd", FILE_OPEN, NULL) == STATUS_ACCESS_DENIED);
    CHILD_CHECK(child_open(x, "proc/self/cwd", FILE_OPEN, NULL) == STATUS_ACCESS_DENIED);
    CHILD_CHECK(child_open(x, "proc/thread-self/exe", FILE_OPEN, NULL) == STATUS_ACCESS_DENIED);
    /* One whose text names a file beneath the root is that file, reached
     * beneath the root and not by the kernel's jump. */
    snprintf(rel, sizeof(rel), "proc/self/fd/%d", in_fd);
    CHILD_CHECK(child_open(x, rel, FILE_OPEN, &st) == STATUS_SUCCESS);
    CHILD_CHECK(st.st_ino == in_st.st_ino && st.st_dev == in_st.st_dev);
    /* Plain proc files stay reachable: no magic link on the way. */
    CHILD_CHECK(child_open(x, "proc/self/status", FILE_OPEN, NULL) == STATUS_SUCCESS);
    close(out_fd);
    close(in_fd);
    free(proc);
    free(p);
    free(in);
    return 0;
}

START_TEST(magic_link_inside_the_root_is_access_denied)
{
    struct rfx x;
    rfx_init(&x, _i);
    mkdir_in(x.root, "proc");
    int rc = in_child(magic_link_child, &x);
    if (rc == TU_EXIT_SKIP)
        fprintf(stderr, "test_resolve: cannot mount proc in a mount namespace here (needs root): magic link "
                        "inside the root not tried\n");
    else
        ck_assert_int_eq(rc, 0);
    rfx_fini(&x);
}
END_TEST

/* What a kernel without openat2 (ENOSYS) or a container that filters it
 * (EPERM) sees: the same answers, from the walk. */
static int without_openat2_child(struct rfx *x, int err)
{
    if (!tu_deny_syscalls(&(const long){ SYS_openat2 }, 1, err))
        return TU_EXIT_SKIP;
    struct stat st;
    CHILD_CHECK(child_open(x, "a/b/../f", FILE_OPEN, &st) == STATUS_SUCCESS);
    CHILD_CHECK(is_file(&st, x->root, "a/f"));
    CHILD_CHECK(child_open(x, "a/new", FILE_CREATE, &st) == STATUS_SUCCESS);
    CHILD_CHECK(is_file(&st, x->root, "a/new"));
    CHILD_CHECK(child_open(x, "../outside/f", FILE_OPEN, NULL) == STATUS_ACCESS_DENIED);
    CHILD_CHECK(child_open(x, "out", FILE_OPEN_IF, NULL) == STATUS_ACCESS_DENIED);
    CHILD_CHECK(child_open(x, "loop", FILE_OPEN, NULL) == STATUS_REPARSE_POINT_NOT_RESOLVED);
    CHILD_CHECK(child_open(x, "nodir/x", FILE_OPEN, NULL) == STATUS_OBJECT_PATH_NOT_FOUND);
    return 0;
}

static int enosys_child(struct rfx *x)
{
    return without_openat2_child(x, ENOSYS);
}

static int eperm_child(struct rfx *x)
{
    return without_openat2_child(x, EPERM);
}

START_TEST(without_openat2_the_walk_gives_the_same_answers)
{
    struct rfx x;
    rfx_init(&x, 0);
    link_in(x.root, "out", "../outside/f");
    link_in(x.root, "loop", "loop");
    int rc = in_child(_i == 0 ? enosys_child : eperm_child, &x);
    if (rc == TU_EXIT_SKIP)
        fprintf(stderr, "test_resolve: no seccomp filter on this architecture: openat2 not taken away\n");
    else
        ck_assert_int_eq(rc, 0);
    rfx_fini(&x);
}
END_TEST

/* With the walk's openat refused, only openat2 can still open beneath the
 * root: it does, so mode 0 really uses it where the kernel has it. */
static int openat2_child(struct rfx *x)
{
    if (!tu_deny_syscalls(&(const long){ SYS_openat }, 1, EACCES))
        return TU_EXIT_SKIP;
    struct stat st;
    CHILD_CHECK(child_open(x, "a/b/../f", FILE_OPEN, &st) == STATUS_SUCCESS);
    CHILD_CHECK(is_file(&st, x->root, "a/f"));
    CHILD_CHECK(child_open(x, "a/new", FILE_OPEN_IF, &st) == STATUS_SUCCESS);
    CHILD_CHECK(is_file(&st, x->root, "a/new"));
    /* A refusal goes to the walk, whose openat is refused now. */
    CHILD_CHECK(child_open(x, "../outside/f", FILE_OPEN, NULL) == STATUS_ACCESS_DENIED);
    return 0;
}

START_TEST(openat2_resolves_where_the_kernel_has_it)
{
    if (tu_running_on_valgrind()) {
        fprintf(stderr, "test_resolve: valgrind has no openat2: not tried\n");
        return;
    }
    struct rfx x;
    rfx_init(&x, 0);
    int rc = in_child(openat2_child, &x);
    if (rc == TU_EXIT_SKIP)
        fprintf(stderr, "test_resolve: no seccomp filter on this architecture: openat not taken away\n");
    else
        ck_assert_int_eq(rc, 0);
    rfx_fini(&x);
}
END_TEST

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n++;
    closedir(d);
    return n;
}

START_TEST(no_descriptor_or_allocation_is_left_behind_on_any_outcome)
{
    struct rfx x;
    rfx_init(&x, _i);
    link_in(x.root, "out", "../outside/f");
    link_in(x.root, "loop", "loop");
    link_in(x.root, "lb", "a/b");
    const char *names[] = { "f", "a/b/../f", "lb/../f", "out", "loop", "nodir/x", "a/x", "..", "a/b/../../../x", "" };
    int before = count_fds();
    for (int round = 0; round < 50; round++)
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            for (size_t d = 0; d < N_DISPOSITIONS; d++)
                ropen(&x, names[i], every_disposition[d], O_RDONLY, NULL, NULL);
    ck_assert_int_eq(count_fds(), before);
    /* Allocation failure in the walk: STATUS_INSUFFICIENT_RESOURCES, nothing opened. */
    if (_i == 1) {
        UwdfFaultInjectAllocations(UwdfFaultAllocEvery, 1);
        ck_assert_status(ropen(&x, "a/f", FILE_OPEN, O_RDONLY, NULL, NULL), STATUS_INSUFFICIENT_RESOURCES);
        UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
        ck_assert_int_eq(count_fds(), before);
    }
    rfx_fini(&x);
}
END_TEST

START_TEST(path_prefix_is_compared_component_by_component)
{
    ck_assert_str_eq(uwdf_path_after_prefix("/v", "/v/a"), "/a");
    ck_assert_str_eq(uwdf_path_after_prefix("/v/", "/v"), "");
    ck_assert_str_eq(uwdf_path_after_prefix("/v//./w", "//v/w/./x"), "/./x");
    ck_assert_str_eq(uwdf_path_after_prefix("/", "/etc"), "/etc");
    ck_assert_ptr_null(uwdf_path_after_prefix("/v", "/vx/a"));
    ck_assert_ptr_null(uwdf_path_after_prefix("/v/w", "/v"));
    ck_assert_ptr_null(uwdf_path_after_prefix("/v", "v/a"));
    ck_assert_ptr_null(uwdf_path_after_prefix("/v/w", "/v/x/../w/a"));
}
END_TEST

START_TEST(root_open_refuses_missing_names_and_files)
{
    struct uwdf_root r;
    char *dir = tu_tmpdir();
    char *missing = tu_join(dir, "missing"), *file = tu_join(dir, "file");
    put(dir, "file", "x");
    ck_assert_status(uwdf_root_open(&r, missing), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_int_eq(r.fd, -1);
    ck_assert_status(uwdf_root_open(&r, file), STATUS_NOT_A_DIRECTORY);
    ck_assert_ptr_null(r.path);
    /* A symlink to a directory is the caller's own name: followed. */
    char *ln = tu_join(dir, "ln");
    ck_assert_int_eq(symlink(dir, ln), 0);
    ck_assert_status(uwdf_root_open(&r, ln), STATUS_SUCCESS);
    ck_assert_str_eq(r.path, dir);
    uwdf_root_close(&r);
    uwdf_root_close(&r); /* twice is harmless */
    tu_rmtree(dir);
    free(dir);
    free(missing);
    free(file);
    free(ln);
}
END_TEST

static Suite *resolve_suite(void)
{
    Suite *s = suite_create("resolve");
    TCase *tc = tu_tcase(s, "resolve", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, every_disposition_inside_creates_opens_and_truncates_as_documented, 0, MODES);
    tcase_add_loop_test(tc, dotdot_inside_stays_and_above_the_root_is_access_denied, 0, MODES);
    tcase_add_loop_test(tc, relative_symlinks_inside_work_and_ones_leading_out_are_access_denied, 0, MODES);
    tcase_add_loop_test(tc, absolute_symlinks_under_the_root_path_work_and_others_are_access_denied, 0, MODES);
    tcase_add_loop_test(tc, dangling_symlink_is_created_inside_or_refused, 0, MODES);
    tcase_add_loop_test(tc, symlink_loops_are_reparse_point_not_resolved, 0, MODES);
    tcase_add_loop_test(tc, long_names_are_object_name_invalid, 0, MODES);
    tcase_add_loop_test(tc, the_root_itself_and_trailing_slashes_name_directories, 0, MODES);
    tcase_add_loop_test(tc, missing_directory_is_path_not_found_and_missing_name_is_name_not_found, 0, MODES);
    tcase_add_loop_test(tc, a_root_renamed_away_keeps_resolving_beneath_the_directory_held, 0, MODES);
    tcase_add_loop_test(tc, symlink_to_a_proc_fd_link_is_access_denied, 0, MODES);
    tcase_add_loop_test(tc, magic_link_inside_the_root_is_access_denied, 0, MODES);
    tcase_add_loop_test(tc, no_descriptor_or_allocation_is_left_behind_on_any_outcome, 0, MODES);
    tcase_add_loop_test(tc, without_openat2_the_walk_gives_the_same_answers, 0, 2); /* ENOSYS, EPERM */
    tcase_add_test(tc, openat2_resolves_where_the_kernel_has_it);
    tcase_add_test(tc, path_prefix_is_compared_component_by_component);
    tcase_add_test(tc, root_open_refuses_missing_names_and_files);
    return s;
}

int main(void)
{
    return tu_main(resolve_suite(), "test_resolve");
}
