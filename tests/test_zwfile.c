/* Zw file I/O (lib/zwfile.c): Windows names mapped beneath the
 * Windows-path root, every disposition on existing and missing files,
 * reads and writes at explicit, current and end-of-file offsets, file
 * information, directories, handle misuse, the root's configuration, and
 * escape attempts (names, symlinks, a swapper racing the opens) refused.
 * Zw I/O runs synchronously beside the engines, so the cases that resolve
 * names loop over the resolver's two ways (openat2, the component walk)
 * instead. */
#define _GNU_SOURCE
#include "testutil.h"

#include "../lib/resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_TIMEOUT_SEC 120
#define MODES 2 /* 0: openat2 where the kernel has it, 1: the walk */
#define RACE_MS_DEFAULT 1500
#define OUTSIDE_TEXT "outside: must stay as it is\n"
#define NAME_CHARS 512

/* A root made for one test: <dir>/root with drive C in it, and <dir>/outside. */
struct zenv {
    struct tu_env e;
    char *root, *c, *out;
};

static void zenv_init(struct zenv *z, int mode)
{
    atomic_store(&uwdf_resolve_walk_only, mode == 1);
    tu_env_init(&z->e);
    z->root = tu_join(z->e.dir, "root");
    z->c = tu_join(z->root, "C");
    z->out = tu_join(z->e.dir, "outside");
    ck_assert_int_eq(mkdir(z->root, 0755), 0);
    ck_assert_int_eq(mkdir(z->c, 0755), 0);
    ck_assert_int_eq(mkdir(z->out, 0755), 0);
    ck_assert_status(UwdfSetWindowsPathRoot(z->root), STATUS_SUCCESS);
}

static void zenv_fini(struct zenv *z)
{
    ck_assert_status(UwdfSetWindowsPathRoot(NULL), STATUS_SUCCESS);
    atomic_store(&uwdf_resolve_walk_only, false);
    free(z->root);
    free(z->c);
    free(z->out);
    tu_env_fini(&z->e);
}

/* "<C>/rel" */
static char *cpath(struct zenv *z, const char *rel)
{
    return tu_join(z->c, rel);
}

static NTSTATUS zopen(const char *name, ACCESS_MASK access, ULONG disposition, ULONG options, HANDLE *h,
                      IO_STATUS_BLOCK *iosb)
{
    WCHAR buf[NAME_CHARS];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    tu_unicode(&us, buf, NAME_CHARS, name);
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    *h = NULL;
    NTSTATUS s = ZwCreateFile(h, access, &oa, iosb, NULL, FILE_ATTRIBUTE_NORMAL, 0, disposition, options, NULL, 0);
    ck_assert_status(iosb->Status, s);
    if (!NT_SUCCESS(s))
        ck_assert_ptr_null(*h);
    return s;
}

#define RW (GENERIC_READ | GENERIC_WRITE)
#define SYNC_RW (SYNCHRONIZE | FILE_READ_DATA | FILE_WRITE_DATA)
#define SYNC_OPT (FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE)

static NTSTATUS zopen_simple(const char *name, ULONG disposition, HANDLE *h)
{
    IO_STATUS_BLOCK iosb;
    return zopen(name, SYNC_RW, disposition, SYNC_OPT, h, &iosb);
}

static NTSTATUS zwrite(HANDLE h, const char *text, PLARGE_INTEGER off, IO_STATUS_BLOCK *iosb)
{
    return ZwWriteFile(h, NULL, NULL, NULL, iosb, (PVOID)text, (ULONG)strlen(text), off, NULL);
}

static NTSTATUS zread(HANDLE h, char *buf, ULONG len, PLARGE_INTEGER off, IO_STATUS_BLOCK *iosb)
{
    memset(buf, 0, len);
    return ZwReadFile(h, NULL, NULL, NULL, iosb, buf, len - 1, off, NULL);
}

/* ---- dispositions ---- */

START_TEST(every_disposition_on_existing_and_missing_files)
{
    struct zenv z;
    zenv_init(&z, _i);
    static const struct {
        ULONG disposition;
        NTSTATUS existing, missing;
        ULONG_PTR existing_info;
        bool truncates;
    } cases[] = {
        { FILE_SUPERSEDE, STATUS_SUCCESS, STATUS_SUCCESS, FILE_SUPERSEDED, true },
        { FILE_OPEN, STATUS_SUCCESS, STATUS_OBJECT_NAME_NOT_FOUND, FILE_OPENED, false },
        { FILE_CREATE, STATUS_OBJECT_NAME_COLLISION, STATUS_SUCCESS, 0, false },
        { FILE_OPEN_IF, STATUS_SUCCESS, STATUS_SUCCESS, FILE_OPENED, false },
        { FILE_OVERWRITE, STATUS_SUCCESS, STATUS_OBJECT_NAME_NOT_FOUND, FILE_OVERWRITTEN, true },
        { FILE_OVERWRITE_IF, STATUS_SUCCESS, STATUS_SUCCESS, FILE_OVERWRITTEN, true },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[64], nt[128];
        IO_STATUS_BLOCK iosb;
        HANDLE h;
        /* existing */
        snprintf(name, sizeof(name), "exists-%zu", i);
        snprintf(nt, sizeof(nt), "\\??\\C:\\%s", name);
        char *p = cpath(&z, name);
        tu_write_text(p, "old contents\n");
        NTSTATUS s = zopen(nt, SYNC_RW, cases[i].disposition, SYNC_OPT, &h, &iosb);
        ck_assert_status_msg(s, cases[i].existing, "disposition %lu on an existing file",
                             (unsigned long)cases[i].disposition);
        if (NT_SUCCESS(s)) {
            ck_assert_uint_eq(iosb.Information, cases[i].existing_info);
            ck_assert_status(ZwClose(h), STATUS_SUCCESS);
        }
        ck_assert(tu_text_is(p, cases[i].truncates ? "" : "old contents\n"));
        free(p);
        /* missing */
        snprintf(name, sizeof(name), "missing-%zu", i);
        snprintf(nt, sizeof(nt), "\\??\\C:\\%s", name);
        p = cpath(&z, name);
        s = zopen(nt, SYNC_RW, cases[i].disposition, SYNC_OPT, &h, &iosb);
        ck_assert_status_msg(s, cases[i].missing, "disposition %lu on a missing file",
                             (unsigned long)cases[i].disposition);
        struct stat st;
        if (NT_SUCCESS(s)) {
            ck_assert_uint_eq(iosb.Information, FILE_CREATED);
            ck_assert_status(ZwClose(h), STATUS_SUCCESS);
            ck_assert_int_eq(stat(p, &st), 0);
        } else {
            ck_assert_int_ne(stat(p, &st), 0);
        }
        free(p);
    }
    zenv_fini(&z);
}
END_TEST

/* ---- names ---- */

START_TEST(windows_names_map_beneath_the_root)
{
    struct zenv z;
    zenv_init(&z, _i);
    char *win = cpath(&z, "Windows");
    ck_assert_int_eq(mkdir(win, 0755), 0);
    char *sys = tu_join(win, "sys.txt");
    tu_write_text(sys, "system root\n");
    char *f = cpath(&z, "file.txt");
    tu_write_text(f, "drive c\n");
    char *sub = cpath(&z, "dir");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    char *inner = cpath(&z, "dir/inner.txt");
    tu_write_text(inner, "inner\n");
    static const struct {
        const char *name;
        const char *text;
    } ok[] = {
        { "\\??\\C:\\file.txt", "drive c\n" },
        { "\\??\\c:\\file.txt", "drive c\n" },
        { "\\DosDevices\\C:\\file.txt", "drive c\n" },
        { "\\dosdevices\\C:\\dir\\inner.txt", "inner\n" },
        { "\\GLOBAL??\\C:\\dir\\inner.txt", "inner\n" },
        { "\\SystemRoot\\sys.txt", "system root\n" },
        { "\\systemroot\\sys.txt", "system root\n" },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        HANDLE h;
        IO_STATUS_BLOCK iosb;
        char buf[64];
        ck_assert_msg(zopen_simple(ok[i].name, FILE_OPEN, &h) == STATUS_SUCCESS, "%s", ok[i].name);
        ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_SUCCESS);
        ck_assert_str_eq(buf, ok[i].text);
        ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    }
    static const struct {
        const char *name;
        NTSTATUS status;
    } bad[] = {
        { "\\??\\C:\\nodir\\file.txt", STATUS_OBJECT_PATH_NOT_FOUND },
        { "\\??\\C:\\file.txt\\x", STATUS_OBJECT_PATH_NOT_FOUND },
        { "\\??\\D:\\file.txt", STATUS_OBJECT_PATH_NOT_FOUND }, /* no D drive in this root */
        { "\\??\\CD:\\file.txt", STATUS_OBJECT_PATH_NOT_FOUND },
        { "\\Device\\NoSuchThing\\file.txt", STATUS_OBJECT_PATH_NOT_FOUND },
        { "file.txt", STATUS_OBJECT_PATH_SYNTAX_BAD },
        { "\\??\\C:\\..\\outside", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:\\dir\\..\\..\\..\\outside", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:\\.\\file.txt", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:\\dir\\\\inner.txt", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:\\dir\\", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:\\file.txt:stream", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:\\dir/inner.txt", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:\\wild*", STATUS_OBJECT_NAME_INVALID },
        { "\\??\\C:x", STATUS_OBJECT_NAME_INVALID },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        HANDLE h;
        NTSTATUS s = zopen_simple(bad[i].name, FILE_OPEN_IF, &h);
        ck_assert_status_msg(s, bad[i].status, "%s", bad[i].name);
    }
    /* Names match case-sensitively. */
    HANDLE h;
    ck_assert_status(zopen_simple("\\??\\C:\\File.txt", FILE_OPEN, &h), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(zopen_simple("\\??\\C:\\DIR\\inner.txt", FILE_OPEN, &h), STATUS_OBJECT_PATH_NOT_FOUND);
    /* Nothing was created by the refused FILE_OPEN_IFs, in or out. */
    ck_assert_int_eq(tu_count_entries(z.c), 3);
    ck_assert_int_eq(tu_count_entries(z.out), 0);
    free(win);
    free(sys);
    free(f);
    free(sub);
    free(inner);
    zenv_fini(&z);
}
END_TEST

START_TEST(symlinks_inside_work_and_symlinks_out_are_access_denied)
{
    struct zenv z;
    zenv_init(&z, _i);
    char *secret = tu_join(z.out, "secret");
    tu_write_text(secret, OUTSIDE_TEXT);
    char *target = cpath(&z, "real.txt");
    tu_write_text(target, "inside\n");
    char *l_in = cpath(&z, "in.lnk"), *l_rel = cpath(&z, "rel.lnk"), *l_abs = cpath(&z, "abs.lnk");
    char *l_dir = cpath(&z, "outdir"), *l_root_abs = cpath(&z, "rootabs.lnk");
    ck_assert_int_eq(symlink("real.txt", l_in), 0);
    ck_assert_int_eq(symlink("../../outside/secret", l_rel), 0);
    ck_assert_int_eq(symlink(secret, l_abs), 0);
    ck_assert_int_eq(symlink(z.out, l_dir), 0);
    ck_assert_int_eq(symlink(target, l_root_abs), 0); /* absolute, but inside the root */
    HANDLE h;
    char buf[64];
    IO_STATUS_BLOCK iosb;
    ck_assert_status(zopen_simple("\\??\\C:\\in.lnk", FILE_OPEN, &h), STATUS_SUCCESS);
    ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_SUCCESS);
    ck_assert_str_eq(buf, "inside\n");
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    ck_assert_status(zopen_simple("\\??\\C:\\rootabs.lnk", FILE_OPEN, &h), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    static const char *const out_names[] = { "\\??\\C:\\rel.lnk", "\\??\\C:\\abs.lnk", "\\??\\C:\\outdir\\secret",
                                             "\\??\\C:\\outdir\\new" };
    static const ULONG dispositions[] = { FILE_SUPERSEDE, FILE_OPEN,      FILE_CREATE,
                                          FILE_OPEN_IF,   FILE_OVERWRITE, FILE_OVERWRITE_IF };
    for (size_t i = 0; i < 4; i++)
        for (size_t d = 0; d < 6; d++) {
            NTSTATUS s = zopen_simple(out_names[i], dispositions[d], &h);
            /* FILE_CREATE on an existing symlink collides before anything is followed. */
            bool collides = dispositions[d] == FILE_CREATE && i < 2;
            ck_assert_status_msg(s, collides ? STATUS_OBJECT_NAME_COLLISION : STATUS_ACCESS_DENIED,
                                 "%s disposition %zu", out_names[i], d);
        }
    ck_assert(tu_text_is(secret, OUTSIDE_TEXT));
    ck_assert_int_eq(tu_count_entries(z.out), 1);
    free(secret);
    free(target);
    free(l_in);
    free(l_rel);
    free(l_abs);
    free(l_dir);
    free(l_root_abs);
    zenv_fini(&z);
}
END_TEST

/* ---- reading and writing ---- */

START_TEST(read_write_at_explicit_current_and_end_of_file_offsets)
{
    struct zenv z;
    zenv_init(&z, 0);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    char buf[64];
    ck_assert_status(zopen_simple("\\??\\C:\\rw.txt", FILE_CREATE, &h), STATUS_SUCCESS);
    /* NULL: the current offset, which moves */
    ck_assert_status(zwrite(h, "hello ", NULL, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, 6);
    ck_assert_status(zwrite(h, "world", NULL, &iosb), STATUS_SUCCESS);
    FILE_POSITION_INFORMATION pos;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &pos, sizeof(pos), FilePositionInformation), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, sizeof(pos));
    ck_assert_int_eq(pos.CurrentByteOffset.QuadPart, 11);
    /* explicit offset: there, and the current offset follows it */
    LARGE_INTEGER off;
    off.QuadPart = 0;
    ck_assert_status(zwrite(h, "J", &off, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &pos, sizeof(pos), FilePositionInformation), STATUS_SUCCESS);
    ck_assert_int_eq(pos.CurrentByteOffset.QuadPart, 1);
    /* FILE_USE_FILE_POINTER_POSITION */
    off.HighPart = -1;
    off.LowPart = FILE_USE_FILE_POINTER_POSITION;
    ck_assert_status(zwrite(h, "E", &off, &iosb), STATUS_SUCCESS);
    /* FILE_WRITE_TO_END_OF_FILE */
    off.HighPart = -1;
    off.LowPart = FILE_WRITE_TO_END_OF_FILE;
    ck_assert_status(zwrite(h, "!", &off, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &pos, sizeof(pos), FilePositionInformation), STATUS_SUCCESS);
    ck_assert_int_eq(pos.CurrentByteOffset.QuadPart, 12);
    char *p = cpath(&z, "rw.txt");
    ck_assert(tu_text_is(p, "JEllo world!"));
    /* reads: position set, partial read, end of file */
    pos.CurrentByteOffset.QuadPart = 6;
    ck_assert_status(ZwSetInformationFile(h, &iosb, &pos, sizeof(pos), FilePositionInformation), STATUS_SUCCESS);
    ck_assert_status(zread(h, buf, 4, NULL, &iosb), STATUS_SUCCESS);
    ck_assert_str_eq(buf, "wor");
    ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_SUCCESS);
    ck_assert_str_eq(buf, "ld!");
    ck_assert_uint_eq(iosb.Information, 3);
    ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_END_OF_FILE);
    ck_assert_uint_eq(iosb.Information, 0);
    off.QuadPart = 100;
    ck_assert_status(zread(h, buf, sizeof(buf), &off, &iosb), STATUS_END_OF_FILE);
    off.QuadPart = 1;
    ck_assert_status(zread(h, buf, 3, &off, &iosb), STATUS_SUCCESS);
    ck_assert_str_eq(buf, "El");
    off.QuadPart = -5;
    ck_assert_status(zread(h, buf, 3, &off, &iosb), STATUS_INVALID_PARAMETER);
    /* an event handle or APC: the port has none */
    ck_assert_status(ZwReadFile(h, (HANDLE)1, NULL, NULL, &iosb, buf, 1, NULL, NULL), STATUS_INVALID_PARAMETER);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);

    /* A handle without FILE_SYNCHRONOUS_IO_* has no current offset. */
    ck_assert_status(zopen("\\??\\C:\\rw.txt", RW, FILE_OPEN, 0, &h, &iosb), STATUS_SUCCESS);
    ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_INVALID_PARAMETER);
    off.QuadPart = 0;
    ck_assert_status(zread(h, buf, sizeof(buf), &off, &iosb), STATUS_SUCCESS);
    ck_assert_str_eq(buf, "JEllo world!");
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);

    /* Access: read-only and write-only handles, append-only */
    ck_assert_status(zopen("\\??\\C:\\rw.txt", GENERIC_READ, FILE_OPEN, FILE_SYNCHRONOUS_IO_NONALERT, &h, &iosb),
                     STATUS_SUCCESS);
    ck_assert_status(zwrite(h, "x", NULL, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(ZwFlushBuffersFile(h, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    ck_assert_status(zopen("\\??\\C:\\rw.txt", SYNCHRONIZE | FILE_WRITE_DATA, FILE_OPEN, FILE_SYNCHRONOUS_IO_NONALERT,
                           &h, &iosb),
                     STATUS_SUCCESS);
    ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_ACCESS_DENIED);
    ck_assert_status(ZwFlushBuffersFile(h, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    ck_assert_status(zopen("\\??\\C:\\rw.txt", SYNCHRONIZE | FILE_APPEND_DATA, FILE_OPEN, FILE_SYNCHRONOUS_IO_NONALERT,
                           &h, &iosb),
                     STATUS_SUCCESS);
    off.QuadPart = 0;
    ck_assert_status(zwrite(h, "?", &off, &iosb), STATUS_SUCCESS); /* appended all the same */
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    ck_assert(tu_text_is(p, "JEllo world!?"));
    free(p);
    zenv_fini(&z);
}
END_TEST

START_TEST(write_through_and_unbuffered_handles_write_aligned_blocks)
{
    struct zenv z;
    zenv_init(&z, 0);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    ck_assert_status(zopen("\\??\\C:\\direct.bin", SYNC_RW, FILE_CREATE,
                           FILE_SYNCHRONOUS_IO_NONALERT | FILE_WRITE_THROUGH | FILE_NO_INTERMEDIATE_BUFFERING, &h, &iosb),
                     STATUS_SUCCESS);
    void *block = NULL;
    ck_assert_int_eq(posix_memalign(&block, 4096, 8192), 0);
    tu_fill_pattern(block, 8192, 7, 0);
    LARGE_INTEGER off;
    off.QuadPart = 4096;
    ck_assert_status(ZwWriteFile(h, NULL, NULL, NULL, &iosb, block, 4096, &off, NULL), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, 4096);
    /* Unbuffered I/O needs aligned offsets, as on Windows. */
    off.QuadPart = 100;
    ck_assert_status(ZwWriteFile(h, NULL, NULL, NULL, &iosb, block, 4096, &off, NULL), STATUS_INVALID_PARAMETER);
    off.QuadPart = 4096;
    memset(block, 0, 8192);
    ck_assert_status(ZwReadFile(h, NULL, NULL, NULL, &iosb, block, 4096, &off, NULL), STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(block, 4096, 7, 0));
    FILE_STANDARD_INFORMATION si;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &si, sizeof(si), FileStandardInformation), STATUS_SUCCESS);
    ck_assert_int_eq(si.EndOfFile.QuadPart, 8192);
    ck_assert_status(ZwFlushBuffersFile(h, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    free(block);
    zenv_fini(&z);
}
END_TEST

/* ---- information ---- */

START_TEST(query_and_set_information_classes)
{
    struct zenv z;
    zenv_init(&z, 0);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    ck_assert_status(zopen_simple("\\??\\C:\\info.txt", FILE_CREATE, &h), STATUS_SUCCESS);
    ck_assert_status(zwrite(h, "0123456789", NULL, &iosb), STATUS_SUCCESS);
    FILE_STANDARD_INFORMATION si;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &si, sizeof(si), FileStandardInformation), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, sizeof(si));
    ck_assert_int_eq(si.EndOfFile.QuadPart, 10);
    ck_assert_uint_eq(si.NumberOfLinks, 1);
    ck_assert(!si.Directory);
    ck_assert(!si.DeletePending);
    /* end of file: shrink and grow */
    FILE_END_OF_FILE_INFORMATION eof;
    eof.EndOfFile.QuadPart = 4;
    ck_assert_status(ZwSetInformationFile(h, &iosb, &eof, sizeof(eof), FileEndOfFileInformation), STATUS_SUCCESS);
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &si, sizeof(si), FileStandardInformation), STATUS_SUCCESS);
    ck_assert_int_eq(si.EndOfFile.QuadPart, 4);
    eof.EndOfFile.QuadPart = 1 << 20;
    ck_assert_status(ZwSetInformationFile(h, &iosb, &eof, sizeof(eof), FileEndOfFileInformation), STATUS_SUCCESS);
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &si, sizeof(si), FileStandardInformation), STATUS_SUCCESS);
    ck_assert_int_eq(si.EndOfFile.QuadPart, 1 << 20);
    eof.EndOfFile.QuadPart = -1;
    ck_assert_status(ZwSetInformationFile(h, &iosb, &eof, sizeof(eof), FileEndOfFileInformation),
                     STATUS_INVALID_PARAMETER);
    /* FileEndOfFileInformation is set-only; FileStandardInformation query-only */
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &eof, sizeof(eof), FileEndOfFileInformation),
                     STATUS_INVALID_INFO_CLASS);
    ck_assert_status(ZwSetInformationFile(h, &iosb, &si, sizeof(si), FileStandardInformation),
                     STATUS_INVALID_INFO_CLASS);
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &si, sizeof(si), (FILE_INFORMATION_CLASS)77),
                     STATUS_INVALID_INFO_CLASS);
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &si, sizeof(si) - 1, FileStandardInformation),
                     STATUS_INFO_LENGTH_MISMATCH);
    ck_assert_status(iosb.Status, STATUS_INFO_LENGTH_MISMATCH);
    /* position */
    FILE_POSITION_INFORMATION pos = { .CurrentByteOffset.QuadPart = -1 };
    ck_assert_status(ZwSetInformationFile(h, &iosb, &pos, sizeof(pos), FilePositionInformation),
                     STATUS_INVALID_PARAMETER);
    /* basic: times set and read back; attributes */
    FILE_BASIC_INFORMATION bi;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &bi, sizeof(bi), FileBasicInformation), STATUS_SUCCESS);
    ck_assert_uint_eq(bi.FileAttributes, FILE_ATTRIBUTE_NORMAL);
    LARGE_INTEGER now;
    KeQuerySystemTime(&now);
    ck_assert_int_le(bi.LastWriteTime.QuadPart, now.QuadPart);
    ck_assert_int_gt(bi.LastWriteTime.QuadPart, now.QuadPart - 600LL * 10000000LL);
    FILE_BASIC_INFORMATION set = { 0 };
    set.LastWriteTime.QuadPart = UWDF_NT_EPOCH_DELTA_100NS + 1000000000LL * 10000000LL + 5000; /* 2001, +500 us */
    set.LastAccessTime.QuadPart = -1; /* unchanged */
    ck_assert_status(ZwSetInformationFile(h, &iosb, &set, sizeof(set), FileBasicInformation), STATUS_SUCCESS);
    FILE_BASIC_INFORMATION after;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &after, sizeof(after), FileBasicInformation), STATUS_SUCCESS);
    ck_assert_int_eq(after.LastWriteTime.QuadPart, set.LastWriteTime.QuadPart);
    ck_assert_int_eq(after.LastAccessTime.QuadPart, bi.LastAccessTime.QuadPart);
    char *p = cpath(&z, "info.txt");
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mtim.tv_sec, 1000000000);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    /* read-only file: FILE_ATTRIBUTE_READONLY */
    ck_assert_int_eq(chmod(p, 0444), 0);
    ck_assert_status(zopen("\\??\\C:\\info.txt", GENERIC_READ, FILE_OPEN, 0, &h, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &bi, sizeof(bi), FileBasicInformation), STATUS_SUCCESS);
    ck_assert_uint_eq(bi.FileAttributes, FILE_ATTRIBUTE_READONLY);
    eof.EndOfFile.QuadPart = 0;
    ck_assert_status(ZwSetInformationFile(h, &iosb, &eof, sizeof(eof), FileEndOfFileInformation),
                     STATUS_ACCESS_DENIED);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    free(p);
    zenv_fini(&z);
}
END_TEST

/* ---- directories ---- */

START_TEST(directories_create_open_and_relative_opens)
{
    struct zenv z;
    zenv_init(&z, _i);
    HANDLE d, h;
    IO_STATUS_BLOCK iosb;
    ULONG dopt = FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT;
    ck_assert_status(zopen("\\??\\C:\\logs", SYNCHRONIZE | GENERIC_READ, FILE_OPEN, dopt, &d, &iosb),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(zopen("\\??\\C:\\logs", SYNCHRONIZE | GENERIC_READ, FILE_CREATE, dopt, &d, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_CREATED);
    ck_assert_status(ZwClose(d), STATUS_SUCCESS);
    ck_assert_status(zopen("\\??\\C:\\logs", SYNCHRONIZE | GENERIC_READ, FILE_CREATE, dopt, &d, &iosb),
                     STATUS_OBJECT_NAME_COLLISION);
    ck_assert_status(zopen("\\??\\C:\\nodir\\logs", SYNCHRONIZE | GENERIC_READ, FILE_CREATE, dopt, &d, &iosb),
                     STATUS_OBJECT_PATH_NOT_FOUND);
    ck_assert_status(zopen("\\??\\C:\\logs", SYNCHRONIZE | GENERIC_READ, FILE_OVERWRITE_IF, dopt, &d, &iosb),
                     STATUS_INVALID_PARAMETER);
    ck_assert_status(zopen("\\??\\C:\\logs", SYNCHRONIZE | GENERIC_READ, FILE_OPEN_IF, dopt, &d, &iosb), STATUS_SUCCESS);
    ck_assert_uint_eq(iosb.Information, FILE_OPENED);
    char buf[8];
    ck_assert_status(zread(d, buf, sizeof(buf), NULL, &iosb), STATUS_INVALID_DEVICE_REQUEST);
    FILE_STANDARD_INFORMATION si;
    ck_assert_status(ZwQueryInformationFile(d, &iosb, &si, sizeof(si), FileStandardInformation), STATUS_SUCCESS);
    ck_assert(si.Directory);

    /* relative to the directory handle */
    WCHAR wbuf[64];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    tu_unicode(&us, wbuf, 64, "day1.log");
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, d, NULL);
    ck_assert_status(ZwCreateFile(&h, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_CREATE, SYNC_OPT, NULL, 0), STATUS_SUCCESS);
    ck_assert_status(zwrite(h, "entry\n", NULL, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    char *day = cpath(&z, "logs/day1.log");
    ck_assert(tu_text_is(day, "entry\n"));
    /* a relative name that climbs, or a file handle as the root */
    tu_unicode(&us, wbuf, 64, "..\\x");
    ck_assert_status(ZwCreateFile(&h, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_OPEN_IF, SYNC_OPT, NULL, 0),
                     STATUS_OBJECT_NAME_INVALID);
    tu_unicode(&us, wbuf, 64, "\\??\\C:\\x");
    ck_assert_status(ZwCreateFile(&h, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_OPEN_IF, SYNC_OPT, NULL, 0),
                     STATUS_OBJECT_NAME_INVALID);
    /* a symlink in the directory leading to its parent stays refused */
    char *up = cpath(&z, "logs/up");
    ck_assert_int_eq(symlink("..", up), 0);
    tu_unicode(&us, wbuf, 64, "up\\info");
    ck_assert_status(ZwCreateFile(&h, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_OPEN_IF, SYNC_OPT, NULL, 0),
                     STATUS_ACCESS_DENIED);
    ck_assert_status(zopen_simple("\\??\\C:\\logs\\day1.log", FILE_OPEN, &h), STATUS_SUCCESS);
    oa.RootDirectory = h;
    tu_unicode(&us, wbuf, 64, "x");
    HANDLE x;
    ck_assert_status(ZwCreateFile(&x, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_OPEN_IF, SYNC_OPT, NULL, 0),
                     STATUS_OBJECT_TYPE_MISMATCH);
    ck_assert_ptr_null(x);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    ck_assert_status(ZwClose(d), STATUS_SUCCESS);

    /* kinds: a directory where a file is asked for, and the other way */
    ck_assert_status(zopen_simple("\\??\\C:\\logs", FILE_OPEN, &h), STATUS_FILE_IS_A_DIRECTORY);
    ck_assert_status(zopen("\\??\\C:\\logs", GENERIC_READ, FILE_OPEN, FILE_NON_DIRECTORY_FILE, &h, &iosb),
                     STATUS_FILE_IS_A_DIRECTORY);
    ck_assert_status(zopen("\\??\\C:\\logs", GENERIC_READ, FILE_OPEN, 0, &h, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS); /* a directory, when no kind is asked for */
    ck_assert_status(zopen("\\??\\C:\\logs\\day1.log", GENERIC_READ, FILE_OPEN, FILE_DIRECTORY_FILE, &h, &iosb),
                     STATUS_NOT_A_DIRECTORY);
    ck_assert_status(zopen("\\??\\C:\\logs\\day1.log", GENERIC_READ, FILE_OPEN,
                           FILE_DIRECTORY_FILE | FILE_NON_DIRECTORY_FILE, &h, &iosb),
                     STATUS_INVALID_PARAMETER);
    free(up);
    free(day);
    zenv_fini(&z);
}
END_TEST

/* ---- parameters and handles ---- */

START_TEST(bad_parameters_and_handles_get_their_statuses)
{
    struct zenv z;
    zenv_init(&z, 0);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    /* synchronous I/O needs SYNCHRONIZE; one kind of it; a disposition that exists */
    ck_assert_status(zopen("\\??\\C:\\p", FILE_READ_DATA, FILE_OPEN_IF, FILE_SYNCHRONOUS_IO_NONALERT, &h, &iosb),
                     STATUS_INVALID_PARAMETER);
    ck_assert_status(zopen("\\??\\C:\\p", SYNC_RW, FILE_OPEN_IF,
                           FILE_SYNCHRONOUS_IO_NONALERT | FILE_SYNCHRONOUS_IO_ALERT, &h, &iosb),
                     STATUS_INVALID_PARAMETER);
    ck_assert_status(zopen("\\??\\C:\\p", SYNC_RW, FILE_MAXIMUM_DISPOSITION + 1, 0, &h, &iosb),
                     STATUS_INVALID_PARAMETER);
    ck_assert_int_eq(tu_count_entries(z.c), 0);
    /* object attributes */
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, NULL, 0, NULL, NULL);
    ck_assert_status(ZwCreateFile(&h, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_OPEN_IF, 0, NULL, 0),
                     STATUS_OBJECT_NAME_INVALID);
    WCHAR nul_name[] = { '\\', '?', '?', '\\', 'C', ':', '\\', 'a', 0, 'b' };
    UNICODE_STRING us = { sizeof(nul_name), sizeof(nul_name), nul_name };
    InitializeObjectAttributes(&oa, &us, 0, NULL, NULL);
    ck_assert_status(ZwCreateFile(&h, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_OPEN_IF, 0, NULL, 0),
                     STATUS_OBJECT_NAME_INVALID);
    oa.Length = 3;
    ck_assert_status(ZwCreateFile(&h, SYNC_RW, &oa, &iosb, NULL, 0, 0, FILE_OPEN_IF, 0, NULL, 0),
                     STATUS_INVALID_PARAMETER);
    /* handles */
    char buf[4];
    ck_assert_status(ZwClose(NULL), STATUS_INVALID_HANDLE);
    ck_assert_status(ZwClose((HANDLE)(uintptr_t)3), STATUS_INVALID_HANDLE);
    ck_assert_status(zread((HANDLE)(uintptr_t)0x40000001u, buf, sizeof(buf), NULL, &iosb), STATUS_INVALID_HANDLE);
    ck_assert_status(zopen_simple("\\??\\C:\\p", FILE_CREATE, &h), STATUS_SUCCESS);
    /* a file has no device control; no Event or APC routine in this port */
    char out[4];
    ck_assert_status(ZwDeviceIoControlFile(h, NULL, NULL, NULL, &iosb, 0x222000, NULL, 0, out, sizeof(out)),
                     STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(iosb.Status, STATUS_INVALID_DEVICE_REQUEST);
    ck_assert_status(ZwDeviceIoControlFile(h, (HANDLE)1, NULL, NULL, &iosb, 0x222000, NULL, 0, out, sizeof(out)),
                     STATUS_INVALID_PARAMETER);
    ck_assert_status(ZwDeviceIoControlFile(h, NULL, NULL, NULL, &iosb, 0x222000, NULL, 4, out, sizeof(out)),
                     STATUS_INVALID_PARAMETER);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_INVALID_HANDLE);
    ck_assert_status(ZwDeviceIoControlFile(h, NULL, NULL, NULL, &iosb, 0x222000, NULL, 0, out, sizeof(out)),
                     STATUS_INVALID_HANDLE);
    ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_INVALID_HANDLE);
    ck_assert_status(ZwFlushBuffersFile(h, &iosb), STATUS_INVALID_HANDLE);
    FILE_POSITION_INFORMATION pos;
    ck_assert_status(ZwQueryInformationFile(h, &iosb, &pos, sizeof(pos), FilePositionInformation),
                     STATUS_INVALID_HANDLE);
    /* above PASSIVE_LEVEL */
    tu_bugcheck_capture();
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    NTSTATUS s = zopen_simple("\\??\\C:\\p", FILE_OPEN, &h);
    KeLowerIrql(old);
    ck_assert_status(s, STATUS_INVALID_DEVICE_REQUEST);
    zenv_fini(&z);
}
END_TEST

START_TEST(open_close_cycles_leave_no_descriptor_or_memory_behind)
{
    struct zenv z;
    zenv_init(&z, _i);
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    char buf[16];
    ck_assert_status(zopen_simple("\\??\\C:\\cycle", FILE_CREATE, &h), STATUS_SUCCESS);
    ck_assert_status(zwrite(h, "cycle", NULL, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    int fds_before = tu_count_entries("/proc/self/fd");
    int n = tu_running_on_valgrind() ? 1000 : 10000;
    HANDLE first = NULL;
    for (int i = 0; i < n; i++) {
        ck_assert_status(zopen_simple("\\??\\C:\\cycle", FILE_OPEN, &h), STATUS_SUCCESS);
        if (!first)
            first = h;
        ck_assert_ptr_eq(h, first); /* the slot is reused: the table does not grow */
        ck_assert_status(zread(h, buf, sizeof(buf), NULL, &iosb), STATUS_SUCCESS);
        ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    }
    ck_assert_int_eq(tu_count_entries("/proc/self/fd"), fds_before);
    zenv_fini(&z);
}
END_TEST

/* ---- the root ---- */

START_TEST(root_configuration_default_and_renames)
{
    struct zenv z;
    zenv_init(&z, 0);
    char got[PATH_MAX];
    ULONG need = 0;
    ck_assert_status(UwdfGetWindowsPathRoot(got, sizeof(got), &need), STATUS_SUCCESS);
    ck_assert_str_eq(got, z.root);
    ck_assert_uint_eq(need, strlen(z.root) + 1);
    ck_assert_status(UwdfGetWindowsPathRoot(got, 3, &need), STATUS_BUFFER_TOO_SMALL);
    char *missing = tu_join(z.e.dir, "missing");
    char *file = tu_join(z.e.dir, "afile");
    tu_write_text(file, "x");
    ck_assert_status(UwdfSetWindowsPathRoot(missing), STATUS_OBJECT_NAME_NOT_FOUND);
    ck_assert_status(UwdfSetWindowsPathRoot(file), STATUS_NOT_A_DIRECTORY);
    ck_assert_status(UwdfSetWindowsPathRoot(""), STATUS_INVALID_PARAMETER);
    /* a failed set keeps the root */
    ck_assert_status(UwdfGetWindowsPathRoot(got, sizeof(got), NULL), STATUS_SUCCESS);
    ck_assert_str_eq(got, z.root);
    /* the root is held: renamed away, its files still open, a handle open
     * before keeps its file */
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    ck_assert_status(zopen_simple("\\??\\C:\\kept", FILE_CREATE, &h), STATUS_SUCCESS);
    char *moved = tu_join(z.e.dir, "moved");
    ck_assert_int_eq(rename(z.root, moved), 0);
    ck_assert_int_eq(mkdir(z.root, 0755), 0);
    HANDLE h2;
    ck_assert_status(zopen_simple("\\??\\C:\\kept", FILE_OPEN, &h2), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h2), STATUS_SUCCESS);
    /* a new root: names now resolve there; the old handle still works */
    ck_assert_status(UwdfSetWindowsPathRoot(z.root), STATUS_SUCCESS);
    ck_assert_status(zopen_simple("\\??\\C:\\kept", FILE_OPEN, &h2), STATUS_OBJECT_PATH_NOT_FOUND);
    ck_assert_status(zwrite(h, "still", NULL, &iosb), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    char *kept = tu_join(moved, "C/kept");
    ck_assert(tu_text_is(kept, "still"));
    ck_assert_int_eq(rmdir(z.root), 0);
    ck_assert_int_eq(rename(moved, z.root), 0);
    /* the default: a private directory with C and C\Windows */
    ck_assert_status(UwdfSetWindowsPathRoot(NULL), STATUS_SUCCESS);
    ck_assert_status(UwdfGetWindowsPathRoot(got, sizeof(got), NULL), STATUS_SUCCESS);
    ck_assert_msg(strncmp(got, "/tmp/uwdf-windows-", 18) == 0, "default root %s", got);
    struct stat st;
    ck_assert_int_eq(stat(got, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    ck_assert_status(zopen_simple("\\SystemRoot\\default.txt", FILE_CREATE, &h), STATUS_SUCCESS);
    ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    char *made = tu_join(got, "C/Windows/default.txt");
    ck_assert_int_eq(stat(made, &st), 0);
    char *dflt = strdup(got);
    ck_assert_status(UwdfSetWindowsPathRoot(NULL), STATUS_SUCCESS);
    tu_rmtree(dflt);
    /* UWDF_WINDOWS_ROOT names the default */
    setenv("UWDF_WINDOWS_ROOT", z.root, 1);
    ck_assert_status(UwdfGetWindowsPathRoot(got, sizeof(got), NULL), STATUS_SUCCESS);
    unsetenv("UWDF_WINDOWS_ROOT");
    ck_assert_str_eq(got, z.root);
    free(dflt);
    free(made);
    free(kept);
    free(moved);
    free(missing);
    free(file);
    zenv_fini(&z);
}
END_TEST

/* ---- the race ----
 * <root>/C/a (holding secret) is swapped with a symlink to outside/ (which
 * holds a secret too), and C/f with a symlink to outside/f, while
 * ZwCreateFile opens C\a\secret, C\f and new names in C\a with every
 * disposition. No handle may read outside's text; nothing may be created,
 * truncated or written outside. */
START_TEST(create_racing_directory_and_symlink_swaps_never_escapes)
{
    struct zenv z;
    zenv_init(&z, _i);
    char *a = cpath(&z, "a"), *secret = cpath(&z, "a/secret"), *f = cpath(&z, "f");
    char *out_secret = tu_join(z.out, "secret"), *out_f = tu_join(z.out, "f");
    char *la = cpath(&z, "a.lnk"), *lf = cpath(&z, "f.lnk");
    ck_assert_int_eq(mkdir(a, 0755), 0);
    tu_write_text(secret, "inside\n");
    tu_write_text(f, "inside\n");
    tu_write_text(out_secret, OUTSIDE_TEXT);
    tu_write_text(out_f, OUTSIDE_TEXT);
    ck_assert_int_eq(symlink(z.out, la), 0);
    ck_assert_int_eq(symlink(out_f, lf), 0);
    const char *env = getenv("UWDF_TEST_RACE_MS");
    double ms = env && atoi(env) > 0 ? atoi(env) : RACE_MS_DEFAULT;
    static const ULONG dispositions[] = { FILE_SUPERSEDE, FILE_OPEN,      FILE_CREATE,
                                          FILE_OPEN_IF,   FILE_OVERWRITE, FILE_OVERWRITE_IF };
    unsigned long opens = 0, ok = 0, denied = 0, escapes = 0;
    struct tu_swapper sw = { .steps = 4, .from = { a, f, a, f }, .to = { la, lf, la, lf } };
    tu_swapper_start(&sw);
    double end = tu_now_ms() + ms;
    for (unsigned long k = 0; tu_now_ms() < end; k++) {
        char name[96];
        unsigned which = (unsigned)(k / 6) % 3;
        if (which == 0)
            snprintf(name, sizeof(name), "\\??\\C:\\a\\secret");
        else if (which == 1)
            snprintf(name, sizeof(name), "\\??\\C:\\f");
        else
            snprintf(name, sizeof(name), "\\??\\C:\\a\\new-%lu", k);
        HANDLE h;
        IO_STATUS_BLOCK iosb;
        NTSTATUS s = zopen(name, SYNC_RW, dispositions[k % 6], SYNC_OPT, &h, &iosb);
        opens++;
        if (s == STATUS_ACCESS_DENIED) {
            denied++;
            continue;
        }
        if (s == STATUS_OBJECT_NAME_COLLISION || s == STATUS_OBJECT_NAME_NOT_FOUND ||
            s == STATUS_OBJECT_PATH_NOT_FOUND)
            continue;
        ck_assert_status_msg(s, STATUS_SUCCESS, "%s", name);
        ok++;
        char buf[64];
        NTSTATUS rs = zread(h, buf, sizeof(buf), NULL, &iosb);
        escapes += rs == STATUS_SUCCESS && strcmp(buf, OUTSIDE_TEXT) == 0;
        ck_assert_status(ZwClose(h), STATUS_SUCCESS);
    }
    tu_swapper_stop(&sw);
    fprintf(stderr, "zw race %s: %lu opens in %.0f ms, %lu succeeded, %lu denied, %lu swaps, %lu escapes\n",
            _i ? "walk" : "openat2", opens, ms, ok, denied, atomic_load(&sw.swaps), escapes);
    ck_assert_int_eq(sw.err, 0);
    ck_assert_uint_eq(escapes, 0);
    ck_assert_int_eq(tu_count_entries(z.out), 2);
    ck_assert(tu_text_is(out_secret, OUTSIDE_TEXT));
    ck_assert(tu_text_is(out_f, OUTSIDE_TEXT));
    ck_assert_uint_gt(atomic_load(&sw.swaps), 0);
    ck_assert_uint_gt(ok, 0);
    ck_assert_uint_gt(denied, 0);
    free(a);
    free(secret);
    free(f);
    free(out_secret);
    free(out_f);
    free(la);
    free(lf);
    zenv_fini(&z);
}
END_TEST

static Suite *zwfile_suite(void)
{
    Suite *s = suite_create("zwfile");
    TCase *tc = tu_tcase(s, "zwfile", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, every_disposition_on_existing_and_missing_files, 0, MODES);
    tcase_add_loop_test(tc, windows_names_map_beneath_the_root, 0, MODES);
    tcase_add_loop_test(tc, symlinks_inside_work_and_symlinks_out_are_access_denied, 0, MODES);
    tcase_add_test(tc, read_write_at_explicit_current_and_end_of_file_offsets);
    tcase_add_test(tc, write_through_and_unbuffered_handles_write_aligned_blocks);
    tcase_add_test(tc, query_and_set_information_classes);
    tcase_add_loop_test(tc, directories_create_open_and_relative_opens, 0, MODES);
    tcase_add_test(tc, bad_parameters_and_handles_get_their_statuses);
    tcase_add_loop_test(tc, open_close_cycles_leave_no_descriptor_or_memory_behind, 0, MODES);
    tcase_add_test(tc, root_configuration_default_and_renames);
    tcase_add_loop_test(tc, create_racing_directory_and_symlink_swaps_never_escapes, 0, MODES);
    return s;
}

int main(void)
{
    return tu_main(zwfile_suite(), "test_zwfile");
}
