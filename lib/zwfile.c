/* Zw file I/O (uwdf_zwfile.h): ZwCreateFile and the routines on its
 * handles, for files beneath the driver host's Windows-path root.
 *
 * A Windows name maps to a name relative to the root: \??\C:\dir\file (also
 * \DosDevices\, \GLOBAL??\) to C/dir/file, \SystemRoot\x to C/Windows/x;
 * it is then opened beneath the root's descriptor (lib/resolve.c), never by
 * a path string, so nothing inside the root (symlinks, renames racing the
 * open) leads out of it. The root is UwdfSetWindowsPathRoot's directory,
 * else UWDF_WINDOWS_ROOT's, else a private directory made on first use.
 *
 * A name that leads to an in-process device (\Device\X, or a symbolic link
 * such as \??\X, then perhaps a file name) opens that device instead: the
 * handle holds an I/O target no device owns, opened on the device as
 * WdfIoTargetOpen opens one (IRP_MJ_CREATE with a file object through the
 * stack; exclusivity), and its reads, writes and IOCTLs are the target's
 * synchronous sends; the last reference deletes the target, which sends
 * cleanup and close.
 *
 * A handle is a slot in this file's table holding a descriptor (or that
 * target) and, for a synchronous handle (FILE_SYNCHRONOUS_IO_*), its current byte offset. I/O
 * at the current offset on a synchronous handle holds the handle's own
 * lock across the transfer: Windows serialises I/O on a synchronous file
 * object the same way, and nothing else waits for that lock. */
#define _GNU_SOURCE
#include "runtime.h"
#include "iotarget.h"
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define ZW_HANDLE_BASE 0x40000000u /* handle values: base + 4 * slot, never NULL */
#define ZW_DEFAULT_ROOT_TEMPLATE "/tmp/uwdf-windows-XXXXXX"

/* ---- the root ---- */

struct zw_root {
    struct uwdf_root root;
    atomic_long refs;
};

static pthread_mutex_t zw_root_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zw_root *zw_root_current;

static void zw_root_put(struct zw_root *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        uwdf_root_close(&r->root);
        uwdf_free(r);
    }
}

static NTSTATUS zw_root_make(const char *dir, struct zw_root **out)
{
    struct zw_root *r = uwdf_zalloc(sizeof(*r));
    if (!r)
        return STATUS_INSUFFICIENT_RESOURCES;
    NTSTATUS st = uwdf_root_open(&r->root, dir);
    if (!NT_SUCCESS(st)) {
        uwdf_free(r);
        return st;
    }
    atomic_init(&r->refs, 1);
    *out = r;
    return STATUS_SUCCESS;
}

/* The default: UWDF_WINDOWS_ROOT, else a new private directory (mode 0700)
 * with the C drive and C/Windows (\SystemRoot) in it. */
static NTSTATUS zw_root_default(struct zw_root **out)
{
    const char *env = uwdf_env(UWDF_ENV_WINDOWS_ROOT);
    if (env && *env)
        return zw_root_make(env, out);
    char dir[] = ZW_DEFAULT_ROOT_TEMPLATE;
    if (!mkdtemp(dir))
        return uwdf_status_from_errno(errno);
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return uwdf_status_from_errno(errno);
    /* Made through the new directory's descriptor: its name is in /tmp,
     * where anyone could swap it. */
    if (mkdirat(fd, "C", 0777) != 0 || mkdirat(fd, "C/Windows", 0777) != 0) {
        NTSTATUS st = uwdf_status_from_errno(errno);
        close(fd);
        return st;
    }
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    NTSTATUS st = zw_root_make(self, out);
    close(fd);
    return st;
}

/* The current root, referenced. */
static NTSTATUS zw_root_get(struct zw_root **out)
{
    NTSTATUS st = STATUS_SUCCESS;
    pthread_mutex_lock(&zw_root_lock);
    if (!zw_root_current)
        st = zw_root_default(&zw_root_current);
    if (NT_SUCCESS(st)) {
        atomic_fetch_add(&zw_root_current->refs, 1);
        *out = zw_root_current;
    }
    pthread_mutex_unlock(&zw_root_lock);
    return st;
}

NTSTATUS UwdfSetWindowsPathRoot(PCSTR Directory)
{
    struct zw_root *r = NULL;
    if (!uwdf_irql_check_passive("UwdfSetWindowsPathRoot"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (Directory) {
        if (!*Directory)
            return STATUS_INVALID_PARAMETER;
        NTSTATUS st = zw_root_make(Directory, &r);
        if (!NT_SUCCESS(st))
            return st;
    }
    pthread_mutex_lock(&zw_root_lock);
    struct zw_root *old = zw_root_current;
    zw_root_current = r; /* NULL: the default again, chosen at the next use */
    pthread_mutex_unlock(&zw_root_lock);
    zw_root_put(old);
    return STATUS_SUCCESS;
}

NTSTATUS UwdfGetWindowsPathRoot(PCHAR Buffer, ULONG BufferLength, PULONG RequiredLength)
{
    struct zw_root *r;
    if (!uwdf_irql_check_passive("UwdfGetWindowsPathRoot"))
        return STATUS_INVALID_DEVICE_REQUEST;
    NTSTATUS st = zw_root_get(&r);
    if (!NT_SUCCESS(st))
        return st;
    size_t need = strlen(r->root.path) + 1;
    if (RequiredLength)
        *RequiredLength = (ULONG)need;
    if (!Buffer || BufferLength < need)
        st = STATUS_BUFFER_TOO_SMALL;
    else
        memcpy(Buffer, r->root.path, need);
    zw_root_put(r);
    return st;
}

/* ---- handles ---- */

struct zw_file {
    atomic_long refs;
    int fd;             /* -1 on a device */
    WDFIOTARGET target; /* on a device: the open target */
    bool sync;        /* FILE_SYNCHRONOUS_IO_*: has a current byte offset */
    bool is_dir;
    bool can_read;
    bool can_write;
    bool append_only; /* FILE_APPEND_DATA without FILE_WRITE_DATA */
    pthread_mutex_t pos_lock;
    uint64_t pos;
};

static pthread_mutex_t zw_handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zw_file **zw_handles;
static size_t zw_handles_cap;

static void zw_file_put(struct zw_file *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        if (f->target)
            WdfObjectDelete(f->target); /* cleanup and close reach the driver */
        else
            close(f->fd);
        pthread_mutex_destroy(&f->pos_lock);
        uwdf_free(f);
    }
}

static bool zw_handle_slot(HANDLE h, size_t *slot)
{
    uintptr_t v = (uintptr_t)h;
    if (v < ZW_HANDLE_BASE || (v - ZW_HANDLE_BASE) % 4 != 0)
        return false;
    *slot = (v - ZW_HANDLE_BASE) / 4;
    return true;
}

/* The file of handle h, referenced; NULL if h is no open Zw handle. With
 * remove, the handle is closed as well (the table's reference passes to
 * the caller). */
static struct zw_file *zw_file_get(HANDLE h, bool remove)
{
    size_t slot;
    struct zw_file *f = NULL;
    if (!zw_handle_slot(h, &slot))
        return NULL;
    pthread_mutex_lock(&zw_handles_lock);
    if (slot < zw_handles_cap && zw_handles[slot]) {
        f = zw_handles[slot];
        if (remove)
            zw_handles[slot] = NULL;
        else
            atomic_fetch_add(&f->refs, 1);
    }
    pthread_mutex_unlock(&zw_handles_lock);
    return f;
}

static NTSTATUS zw_handle_insert(struct zw_file *f, HANDLE *out)
{
    pthread_mutex_lock(&zw_handles_lock);
    size_t slot = 0;
    while (slot < zw_handles_cap && zw_handles[slot])
        slot++;
    if (slot == zw_handles_cap) {
        size_t cap = zw_handles_cap ? zw_handles_cap * 2 : 16;
        struct zw_file **grown = uwdf_alloc(cap * sizeof(*grown));
        if (!grown) {
            pthread_mutex_unlock(&zw_handles_lock);
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        if (zw_handles_cap)
            memcpy(grown, zw_handles, zw_handles_cap * sizeof(*grown));
        memset(grown + zw_handles_cap, 0, (cap - zw_handles_cap) * sizeof(*grown));
        uwdf_free(zw_handles);
        zw_handles = grown;
        zw_handles_cap = cap;
    }
    zw_handles[slot] = f;
    pthread_mutex_unlock(&zw_handles_lock);
    *out = (HANDLE)(uintptr_t)(ZW_HANDLE_BASE + 4 * slot);
    return STATUS_SUCCESS;
}

/* ---- names ---- */

/* A component NTFS would accept, and that names no other place: no ".",
 * "..", '/', ':' (a stream), wildcard or control character. */
static bool zw_component_valid(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || strchr("/:<>\"|?*", c))
            return false;
    }
    return true;
}

/* Appends the Windows components of tail ("a\b\c", possibly empty) to out
 * as "a/b/c". */
static NTSTATUS zw_append_components(char *out, size_t cap, size_t *len, const char *tail)
{
    while (*tail) {
        const char *e = strchrnul(tail, '\\');
        size_t n = (size_t)(e - tail);
        if (!zw_component_valid(tail, n))
            return STATUS_OBJECT_NAME_INVALID;
        if (*len + n + 2 > cap)
            return STATUS_OBJECT_NAME_INVALID;
        if (*len)
            out[(*len)++] = '/';
        memcpy(out + *len, tail, n);
        *len += n;
        out[*len] = '\0';
        tail = *e ? e + 1 : e;
        if (*e && !*tail)
            return STATUS_OBJECT_NAME_INVALID; /* a trailing '\' */
    }
    return STATUS_SUCCESS;
}

/* An absolute name that leads nowhere: \Dir\Name misses its last
 * component (STATUS_OBJECT_NAME_NOT_FOUND, as \Device\NoSuch or \??\NoSuch
 * on Windows); a longer one misses a directory on the way. */
static NTSTATUS zw_missing(const char *nt)
{
    const char *second = strchr(nt + 1, '\\');
    return second && !strchr(second + 1, '\\') ? STATUS_OBJECT_NAME_NOT_FOUND : STATUS_OBJECT_PATH_NOT_FOUND;
}

/* The name relative to the root (or to the RootDirectory, relative). */
static NTSTATUS zw_map_name(const char *nt, bool relative, char *out, size_t cap)
{
    static const char *const dos_prefixes[] = { "\\??\\", "\\DosDevices\\", "\\GLOBAL??\\" };
    static const char system_root[] = "\\SystemRoot";
    size_t len = 0;
    out[0] = '\0';
    if (relative) {
        if (nt[0] == '\\')
            return STATUS_OBJECT_NAME_INVALID;
        return zw_append_components(out, cap, &len, nt);
    }
    if (nt[0] != '\\')
        return STATUS_OBJECT_PATH_SYNTAX_BAD;
    for (size_t i = 0; i < RTL_NUMBER_OF(dos_prefixes); i++) {
        size_t n = strlen(dos_prefixes[i]);
        if (strncasecmp(nt, dos_prefixes[i], n) != 0)
            continue;
        const char *d = nt + n;
        if (!((d[0] >= 'A' && d[0] <= 'Z') || (d[0] >= 'a' && d[0] <= 'z')) || d[1] != ':')
            return zw_missing(nt); /* no such drive or link */
        if (d[2] != '\0' && d[2] != '\\')
            return STATUS_OBJECT_NAME_INVALID;
        out[len++] = (char)(d[0] & ~0x20); /* the drive's directory: its capital letter */
        out[len] = '\0';
        return d[2] ? zw_append_components(out, cap, &len, d + 3) : STATUS_SUCCESS;
    }
    size_t n = sizeof(system_root) - 1;
    if (strncasecmp(nt, system_root, n) == 0 && (nt[n] == '\0' || nt[n] == '\\')) {
        strcpy(out, "C/Windows");
        len = strlen(out);
        return nt[n] ? zw_append_components(out, cap, &len, nt + n + 1) : STATUS_SUCCESS;
    }
    return zw_missing(nt);
}

/* ---- opening ---- */

/* The open file fd is what the options asked for: a directory for
 * FILE_DIRECTORY_FILE, anything else for FILE_NON_DIRECTORY_FILE. */
static NTSTATUS zw_check_kind(int fd, ULONG options, bool *is_dir)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return uwdf_status_from_errno(errno);
    *is_dir = S_ISDIR(st.st_mode);
    if ((options & FILE_DIRECTORY_FILE) && !*is_dir)
        return STATUS_NOT_A_DIRECTORY;
    if ((options & FILE_NON_DIRECTORY_FILE) && *is_dir)
        return STATUS_FILE_IS_A_DIRECTORY;
    return STATUS_SUCCESS;
}

/* FILE_DIRECTORY_FILE with FILE_CREATE or FILE_OPEN_IF: mkdir in the
 * parent, itself opened beneath the root; the new directory is opened
 * through the parent's descriptor without following a symlink. */
static NTSTATUS zw_create_directory(const struct uwdf_root *root, const char *rel, ULONG disposition, int *fd,
                                    ULONG_PTR *information)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(rel, '/');
    const char *base = slash ? slash + 1 : rel;
    size_t plen = slash ? (size_t)(slash - rel) : 0;
    memcpy(parent, rel, plen);
    parent[plen] = '\0';
    int pfd;
    ULONG_PTR info;
    NTSTATUS st = uwdf_root_open_file(root, parent, FILE_OPEN, O_RDONLY | O_DIRECTORY, &pfd, &info);
    if (!NT_SUCCESS(st))
        return st == STATUS_OBJECT_NAME_NOT_FOUND ? STATUS_OBJECT_PATH_NOT_FOUND : st;
    if (mkdirat(pfd, base, 0777) == 0) {
        int r = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        st = r >= 0 ? STATUS_SUCCESS : uwdf_status_from_errno(errno);
        close(pfd);
        if (r >= 0) {
            *fd = r;
            *information = FILE_CREATED;
        }
        return st;
    }
    int err = errno;
    close(pfd);
    if (err != EEXIST)
        return uwdf_status_from_errno(err);
    if (disposition == FILE_CREATE)
        return STATUS_OBJECT_NAME_COLLISION;
    return uwdf_root_open_file(root, rel, FILE_OPEN, O_RDONLY | O_NONBLOCK, fd, information);
}

/* The open's parameters as a target's, and the open(2) flags they ask for. */
static NTSTATUS zw_open_params(ACCESS_MASK access, ULONG disposition, ULONG options, ULONG share,
                               PWDF_IO_TARGET_OPEN_PARAMS p, int *oflags)
{
    UNICODE_STRING by_string = { 0, 0, NULL }; /* the name goes as UTF-8 */
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(p, &by_string, access);
    p->CreateDisposition = disposition;
    p->CreateOptions = options;
    p->ShareAccess = share;
    return uwdf_iotarget_open_flags(p, oflags);
}

static NTSTATUS zw_open(const struct uwdf_root *root, const char *rel, ACCESS_MASK access, ULONG disposition,
                        ULONG options, struct zw_file *f, ULONG_PTR *information)
{
    WDF_IO_TARGET_OPEN_PARAMS p;
    int oflags;
    NTSTATUS st = zw_open_params(access, disposition, options, 0, &p, &oflags);
    if (!NT_SUCCESS(st))
        return st;
    int fd = -1;
    if (options & FILE_DIRECTORY_FILE) {
        if (disposition != FILE_OPEN && disposition != FILE_CREATE && disposition != FILE_OPEN_IF)
            return STATUS_INVALID_PARAMETER;
        if (disposition == FILE_OPEN)
            st = uwdf_root_open_file(root, rel, FILE_OPEN, O_RDONLY | O_NONBLOCK, &fd, information);
        else
            st = zw_create_directory(root, rel, disposition, &fd, information);
        oflags = O_RDONLY;
    } else {
        /* Without blocking: a FIFO's open would wait for its other side. */
        st = uwdf_root_open_file(root, rel, disposition, oflags | O_NONBLOCK, &fd, information);
    }
    if (!NT_SUCCESS(st))
        return st;
    st = zw_check_kind(fd, options, &f->is_dir);
    if (!NT_SUCCESS(st)) {
        close(fd);
        return st;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    f->fd = fd;
    f->can_read = (oflags & O_ACCMODE) != O_WRONLY;
    f->can_write = (oflags & O_ACCMODE) != O_RDONLY;
    f->append_only = (access & FILE_APPEND_DATA) && !(access & (FILE_WRITE_DATA | GENERIC_WRITE | GENERIC_ALL));
    return STATUS_SUCCESS;
}

/* name leads to a device: its target, opened, into f;
 * STATUS_OBJECT_NAME_NOT_FOUND if it leads to none. */
static NTSTATUS zw_open_device(const char *name, ACCESS_MASK access, ULONG disposition, ULONG options,
                               ULONG share, struct zw_file *f, ULONG_PTR *information)
{
    WDF_IO_TARGET_OPEN_PARAMS p;
    int oflags;
    NTSTATUS st = zw_open_params(access, disposition, options, share, &p, &oflags);
    if (!NT_SUCCESS(st))
        return st;
    st = uwdf_iotarget_open_device_name(name, &p, &f->target);
    if (!NT_SUCCESS(st))
        return st;
    f->fd = -1;
    f->can_read = (oflags & O_ACCMODE) != O_WRONLY;
    f->can_write = (oflags & O_ACCMODE) != O_RDONLY;
    *information = p.FileInformation;
    return STATUS_SUCCESS;
}

NTSTATUS ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
                      PIO_STATUS_BLOCK IoStatusBlock, PLARGE_INTEGER AllocationSize, ULONG FileAttributes,
                      ULONG ShareAccess, ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer,
                      ULONG EaLength)
{
    (void)AllocationSize, (void)FileAttributes, (void)EaBuffer, (void)EaLength;
    UWDF_REQUIRE_PARAM(FileHandle, "ZwCreateFile", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(ObjectAttributes, "ZwCreateFile", STATUS_INVALID_PARAMETER);
    UWDF_REQUIRE_PARAM(IoStatusBlock, "ZwCreateFile", STATUS_INVALID_PARAMETER);
    *FileHandle = NULL;
    IoStatusBlock->Information = 0;
    NTSTATUS st;
    char *name = NULL, *rel = NULL;
    struct zw_root *root = NULL;
    struct zw_file *dir = NULL, *f = NULL;
    ULONG sync = CreateOptions & (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT);

    if (!uwdf_irql_check_passive("ZwCreateFile")) {
        st = STATUS_INVALID_DEVICE_REQUEST;
        goto out;
    }
    st = STATUS_INVALID_PARAMETER;
    if (ObjectAttributes->Length != sizeof(OBJECT_ATTRIBUTES) || (ObjectAttributes->Attributes & ~OBJ_VALID_ATTRIBUTES) ||
        CreateDisposition > FILE_MAXIMUM_DISPOSITION || sync == (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT) ||
        (sync && !(DesiredAccess & (SYNCHRONIZE | GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL))))
        goto out;
    PUNICODE_STRING on = ObjectAttributes->ObjectName;
    st = STATUS_OBJECT_NAME_INVALID;
    if (!on || !on->Buffer || on->Length == 0 || (on->Length & 1))
        goto out;
    for (USHORT i = 0; i < on->Length / sizeof(WCHAR); i++)
        if (on->Buffer[i] == 0)
            goto out;
    st = STATUS_INSUFFICIENT_RESOURCES;
    name = uwdf_unicode_to_utf8(on);
    rel = uwdf_alloc(PATH_MAX);
    f = uwdf_zalloc(sizeof(*f));
    if (!name || !rel || !f)
        goto out;
    if (ObjectAttributes->RootDirectory) {
        st = STATUS_INVALID_HANDLE;
        dir = zw_file_get(ObjectAttributes->RootDirectory, false);
        if (!dir)
            goto out;
        st = STATUS_OBJECT_TYPE_MISMATCH;
        if (!dir->is_dir)
            goto out;
    }
    ULONG_PTR information;
    if (!dir) {
        st = zw_open_device(name, DesiredAccess, CreateDisposition, CreateOptions, ShareAccess, f, &information);
        if (st != STATUS_OBJECT_NAME_NOT_FOUND)
            goto opened;
    }
    st = zw_map_name(name, dir != NULL, rel, PATH_MAX);
    if (!NT_SUCCESS(st))
        goto out;
    if (dir) {
        /* Beneath the directory itself; an absolute symlink leads out. */
        struct uwdf_root beneath = { dir->fd, NULL };
        st = zw_open(&beneath, rel, DesiredAccess, CreateDisposition, CreateOptions, f, &information);
    } else {
        st = zw_root_get(&root);
        if (!NT_SUCCESS(st))
            goto out;
        st = zw_open(&root->root, rel, DesiredAccess, CreateDisposition, CreateOptions, f, &information);
    }
opened:
    if (!NT_SUCCESS(st))
        goto out;
    atomic_init(&f->refs, 1);
    f->sync = sync != 0;
    pthread_mutex_init(&f->pos_lock, NULL);
    st = zw_handle_insert(f, FileHandle);
    if (!NT_SUCCESS(st)) {
        zw_file_put(f);
        f = NULL;
        goto out;
    }
    f = NULL;
    IoStatusBlock->Information = information;
out:
    uwdf_free(f);
    if (dir)
        zw_file_put(dir);
    zw_root_put(root);
    uwdf_free(rel);
    uwdf_free(name);
    IoStatusBlock->Status = st;
    return st;
}

NTSTATUS ZwOpenFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
                    PIO_STATUS_BLOCK IoStatusBlock, ULONG ShareAccess, ULONG OpenOptions)
{
    return ZwCreateFile(FileHandle, DesiredAccess, ObjectAttributes, IoStatusBlock, NULL, 0, ShareAccess, FILE_OPEN,
                        OpenOptions, NULL, 0);
}

NTSTATUS ZwClose(HANDLE Handle)
{
    if (!uwdf_irql_check_passive("ZwClose"))
        return STATUS_INVALID_DEVICE_REQUEST;
    struct zw_file *f = zw_file_get(Handle, true);
    if (!f)
        return STATUS_INVALID_HANDLE;
    zw_file_put(f);
    return STATUS_SUCCESS;
}

/* ---- reading and writing ---- */

/* Transfers up to len bytes at off (or appends, with off < 0); the count,
 * or -errno. */
static ssize_t zw_transfer(int fd, void *buf, size_t len, int64_t off, bool write)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n;
        if (write && off < 0) {
            struct iovec iov = { (char *)buf + done, len - done };
            n = pwritev2(fd, &iov, 1, 0, RWF_APPEND);
        } else if (write) {
            n = pwrite(fd, (const char *)buf + done, len - done, off + (int64_t)done);
        } else {
            n = pread(fd, (char *)buf + done, len - done, off + (int64_t)done);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return done ? (ssize_t)done : -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* The byte offset ZwReadFile/ZwWriteFile name on handle f: ByteOffset, or
 * the current one of a synchronous handle (f->pos_lock held then, *locked
 * set); false if there is none. */
static bool zw_offset(struct zw_file *f, PLARGE_INTEGER ByteOffset, LONGLONG *off, bool *locked)
{
    bool at_pos = !ByteOffset || (ByteOffset->HighPart == -1 && ByteOffset->LowPart == FILE_USE_FILE_POINTER_POSITION);
    *locked = false;
    if (!at_pos) {
        *off = ByteOffset->QuadPart;
        return *off >= 0;
    }
    if (!f->sync)
        return false;
    pthread_mutex_lock(&f->pos_lock);
    *locked = true;
    *off = (LONGLONG)f->pos;
    return true;
}

/* A read or write on a device handle: IRP_MJ_READ/WRITE down the device's
 * stack, waited for. The driver's status and count are the caller's. */
static NTSTATUS zw_device_rw(struct zw_file *f, PVOID buf, ULONG len, PLARGE_INTEGER ByteOffset, bool write,
                             PIO_STATUS_BLOCK iosb)
{
    LONGLONG off;
    bool locked;
    if (!zw_offset(f, ByteOffset, &off, &locked))
        return STATUS_INVALID_PARAMETER; /* also FILE_WRITE_TO_END_OF_FILE: a device has no end */
    WDF_MEMORY_DESCRIPTOR md;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, buf, len);
    ULONG_PTR n = 0;
    NTSTATUS st = write ? WdfIoTargetSendWriteSynchronously(f->target, NULL, len ? &md : NULL, &off, NULL, &n)
                        : WdfIoTargetSendReadSynchronously(f->target, NULL, len ? &md : NULL, &off, NULL, &n);
    if (locked) {
        if (!NT_ERROR(st))
            f->pos = (uint64_t)off + n;
        pthread_mutex_unlock(&f->pos_lock);
    }
    iosb->Information = n;
    return st;
}

static NTSTATUS zw_rw(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PIO_STATUS_BLOCK IoStatusBlock,
                      PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset, bool write, const char *ddi)
{
    UWDF_REQUIRE_PARAM(IoStatusBlock, ddi, STATUS_INVALID_PARAMETER);
    IoStatusBlock->Information = 0;
    NTSTATUS st = STATUS_INVALID_DEVICE_REQUEST;
    struct zw_file *f = NULL;
    if (!uwdf_irql_check_passive(ddi))
        goto out;
    st = STATUS_INVALID_PARAMETER;
    if (Event || ApcRoutine || (!Buffer && Length))
        goto out;
    st = STATUS_INVALID_HANDLE;
    f = zw_file_get(FileHandle, false);
    if (!f)
        goto out;
    st = STATUS_INVALID_DEVICE_REQUEST;
    if (f->is_dir)
        goto out;
    st = STATUS_ACCESS_DENIED;
    if (write ? !f->can_write : !f->can_read)
        goto out;
    if (f->target) {
        st = zw_device_rw(f, Buffer, Length, ByteOffset, write, IoStatusBlock);
        goto out;
    }
    bool at_pos = !ByteOffset || (ByteOffset->HighPart == -1 && ByteOffset->LowPart == FILE_USE_FILE_POINTER_POSITION);
    bool at_end = write && (f->append_only ||
                            (ByteOffset && ByteOffset->HighPart == -1 && ByteOffset->LowPart == FILE_WRITE_TO_END_OF_FILE));
    st = STATUS_INVALID_PARAMETER;
    if (!at_end && ((at_pos && !f->sync) || (!at_pos && ByteOffset->QuadPart < 0)))
        goto out;
    if (f->sync)
        pthread_mutex_lock(&f->pos_lock);
    int64_t off = at_end ? -1 : at_pos ? (int64_t)f->pos : ByteOffset->QuadPart;
    ssize_t n = zw_transfer(f->fd, Buffer, Length, off, write);
    if (n >= 0 && f->sync) {
        struct stat sb;
        if (off >= 0)
            f->pos = (uint64_t)off + (uint64_t)n;
        else if (fstat(f->fd, &sb) == 0)
            f->pos = (uint64_t)sb.st_size;
    }
    if (f->sync)
        pthread_mutex_unlock(&f->pos_lock);
    if (n < 0) {
        st = uwdf_status_from_errno((int)-n);
    } else if (!write && n == 0 && Length) {
        st = STATUS_END_OF_FILE;
    } else {
        st = STATUS_SUCCESS;
        IoStatusBlock->Information = (ULONG_PTR)n;
    }
out:
    if (f)
        zw_file_put(f);
    IoStatusBlock->Status = st;
    return st;
}

NTSTATUS ZwReadFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                    PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset,
                    PULONG Key)
{
    (void)ApcContext, (void)Key;
    return zw_rw(FileHandle, Event, ApcRoutine, IoStatusBlock, Buffer, Length, ByteOffset, false, "ZwReadFile");
}

NTSTATUS ZwWriteFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                     PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset,
                     PULONG Key)
{
    (void)ApcContext, (void)Key;
    return zw_rw(FileHandle, Event, ApcRoutine, IoStatusBlock, Buffer, Length, ByteOffset, true, "ZwWriteFile");
}

NTSTATUS ZwDeviceIoControlFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                               PIO_STATUS_BLOCK IoStatusBlock, ULONG IoControlCode, PVOID InputBuffer,
                               ULONG InputBufferLength, PVOID OutputBuffer, ULONG OutputBufferLength)
{
    (void)ApcContext;
    UWDF_REQUIRE_PARAM(IoStatusBlock, "ZwDeviceIoControlFile", STATUS_INVALID_PARAMETER);
    IoStatusBlock->Information = 0;
    NTSTATUS st = STATUS_INVALID_DEVICE_REQUEST;
    struct zw_file *f = NULL;
    if (!uwdf_irql_check_passive("ZwDeviceIoControlFile"))
        goto out;
    st = STATUS_INVALID_PARAMETER;
    if (Event || ApcRoutine || (!InputBuffer && InputBufferLength) || (!OutputBuffer && OutputBufferLength))
        goto out;
    st = STATUS_INVALID_HANDLE;
    f = zw_file_get(FileHandle, false);
    if (!f)
        goto out;
    st = STATUS_INVALID_DEVICE_REQUEST; /* a file: no device control */
    if (!f->target)
        goto out;
    /* The I/O manager's check: the access the code's RequiredAccess bits
     * name must have been granted to the handle. */
    ULONG need = (IoControlCode >> 14) & 3;
    st = STATUS_ACCESS_DENIED;
    if (((need & FILE_READ_ACCESS) && !f->can_read) || ((need & FILE_WRITE_ACCESS) && !f->can_write))
        goto out;
    WDF_MEMORY_DESCRIPTOR in, outd;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&in, InputBuffer, InputBufferLength);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&outd, OutputBuffer, OutputBufferLength);
    ULONG_PTR n = 0;
    st = WdfIoTargetSendIoctlSynchronously(f->target, NULL, IoControlCode, InputBufferLength ? &in : NULL,
                                           OutputBufferLength ? &outd : NULL, NULL, &n);
    IoStatusBlock->Information = n;
out:
    if (f)
        zw_file_put(f);
    IoStatusBlock->Status = st;
    return st;
}

/* ---- information ---- */

static LONGLONG zw_nt_time(struct statx_timestamp t)
{
    return (LONGLONG)t.tv_sec * 10000000LL + t.tv_nsec / 100 + UWDF_NT_EPOCH_DELTA_100NS;
}

static NTSTATUS zw_query_basic(struct zw_file *f, PFILE_BASIC_INFORMATION b)
{
    struct statx sx;
    if (statx(f->fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0)
        return uwdf_status_from_errno(errno);
    /* No birth time on some file systems: the last write stands for it. */
    b->CreationTime.QuadPart = zw_nt_time((sx.stx_mask & STATX_BTIME) ? sx.stx_btime : sx.stx_mtime);
    b->LastAccessTime.QuadPart = zw_nt_time(sx.stx_atime);
    b->LastWriteTime.QuadPart = zw_nt_time(sx.stx_mtime);
    b->ChangeTime.QuadPart = zw_nt_time(sx.stx_ctime);
    b->FileAttributes = (S_ISDIR(sx.stx_mode) ? FILE_ATTRIBUTE_DIRECTORY : 0) |
                        ((sx.stx_mode & 0222) ? 0 : FILE_ATTRIBUTE_READONLY);
    if (!b->FileAttributes)
        b->FileAttributes = FILE_ATTRIBUTE_NORMAL;
    return STATUS_SUCCESS;
}

static NTSTATUS zw_query_standard(struct zw_file *f, PFILE_STANDARD_INFORMATION s)
{
    struct stat sb;
    if (fstat(f->fd, &sb) != 0)
        return uwdf_status_from_errno(errno);
    s->AllocationSize.QuadPart = (LONGLONG)sb.st_blocks * 512;
    s->EndOfFile.QuadPart = S_ISDIR(sb.st_mode) ? 0 : (LONGLONG)sb.st_size;
    s->NumberOfLinks = (ULONG)sb.st_nlink;
    s->DeletePending = sb.st_nlink == 0; /* unlinked while open */
    s->Directory = S_ISDIR(sb.st_mode);
    return STATUS_SUCCESS;
}

static size_t zw_info_size(FILE_INFORMATION_CLASS c, bool set)
{
    switch (c) {
    case FileBasicInformation:
        return sizeof(FILE_BASIC_INFORMATION);
    case FileStandardInformation:
        return set ? 0 : sizeof(FILE_STANDARD_INFORMATION);
    case FilePositionInformation:
        return sizeof(FILE_POSITION_INFORMATION);
    case FileEndOfFileInformation:
        return set ? sizeof(FILE_END_OF_FILE_INFORMATION) : 0;
    default:
        return 0;
    }
}

/* The common checks of Zw(Query|Set)InformationFile; the file, referenced. */
static NTSTATUS zw_info_begin(HANDLE h, PIO_STATUS_BLOCK iosb, PVOID info, ULONG len, FILE_INFORMATION_CLASS c,
                              bool set, const char *ddi, struct zw_file **out)
{
    *out = NULL;
    iosb->Information = 0;
    if (!uwdf_irql_check_passive(ddi))
        return STATUS_INVALID_DEVICE_REQUEST;
    size_t need = zw_info_size(c, set);
    if (!need)
        return STATUS_INVALID_INFO_CLASS;
    if (len < need)
        return STATUS_INFO_LENGTH_MISMATCH;
    if (!info)
        return STATUS_INVALID_PARAMETER;
    *out = zw_file_get(h, false);
    if (!*out)
        return STATUS_INVALID_HANDLE;
    if ((*out)->target && c != FilePositionInformation) {
        zw_file_put(*out); /* a device handle has a position and no file */
        *out = NULL;
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    return STATUS_SUCCESS;
}

NTSTATUS ZwQueryInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock, PVOID FileInformation,
                                ULONG Length, FILE_INFORMATION_CLASS FileInformationClass)
{
    UWDF_REQUIRE_PARAM(IoStatusBlock, "ZwQueryInformationFile", STATUS_INVALID_PARAMETER);
    struct zw_file *f;
    NTSTATUS st = zw_info_begin(FileHandle, IoStatusBlock, FileInformation, Length, FileInformationClass, false,
                                "ZwQueryInformationFile", &f);
    if (NT_SUCCESS(st)) {
        switch (FileInformationClass) {
        case FileBasicInformation:
            st = zw_query_basic(f, FileInformation);
            break;
        case FileStandardInformation:
            st = zw_query_standard(f, FileInformation);
            break;
        default: /* FilePositionInformation */
            pthread_mutex_lock(&f->pos_lock);
            ((PFILE_POSITION_INFORMATION)FileInformation)->CurrentByteOffset.QuadPart = (LONGLONG)f->pos;
            pthread_mutex_unlock(&f->pos_lock);
            break;
        }
        if (NT_SUCCESS(st))
            IoStatusBlock->Information = zw_info_size(FileInformationClass, false);
        zw_file_put(f);
    }
    IoStatusBlock->Status = st;
    return st;
}

/* A FILE_BASIC_INFORMATION time as a timespec for futimens: 0 and -1 leave
 * the time as it is. */
static bool zw_set_time(LONGLONG t, struct timespec *ts)
{
    if (t == 0 || t == -1) {
        ts->tv_sec = 0;
        ts->tv_nsec = UTIME_OMIT;
        return true;
    }
    if (t < 0)
        return false;
    LONGLONG u = t - UWDF_NT_EPOCH_DELTA_100NS;
    ts->tv_sec = (time_t)(u / 10000000LL);
    ts->tv_nsec = (long)(u % 10000000LL) * 100;
    if (ts->tv_nsec < 0) {
        ts->tv_sec--;
        ts->tv_nsec += 1000000000L;
    }
    return true;
}

NTSTATUS ZwSetInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock, PVOID FileInformation,
                              ULONG Length, FILE_INFORMATION_CLASS FileInformationClass)
{
    UWDF_REQUIRE_PARAM(IoStatusBlock, "ZwSetInformationFile", STATUS_INVALID_PARAMETER);
    struct zw_file *f;
    NTSTATUS st = zw_info_begin(FileHandle, IoStatusBlock, FileInformation, Length, FileInformationClass, true,
                                "ZwSetInformationFile", &f);
    if (!NT_SUCCESS(st))
        goto out;
    switch (FileInformationClass) {
    case FileBasicInformation: {
        PFILE_BASIC_INFORMATION b = FileInformation;
        struct timespec ts[2];
        if (!zw_set_time(b->LastAccessTime.QuadPart, &ts[0]) || !zw_set_time(b->LastWriteTime.QuadPart, &ts[1]))
            st = STATUS_INVALID_PARAMETER;
        else if (futimens(f->fd, ts) != 0)
            st = uwdf_status_from_errno(errno);
        break;
    }
    case FilePositionInformation: {
        LONGLONG pos = ((PFILE_POSITION_INFORMATION)FileInformation)->CurrentByteOffset.QuadPart;
        if (pos < 0) {
            st = STATUS_INVALID_PARAMETER;
            break;
        }
        pthread_mutex_lock(&f->pos_lock);
        f->pos = (uint64_t)pos;
        pthread_mutex_unlock(&f->pos_lock);
        break;
    }
    default: { /* FileEndOfFileInformation */
        LONGLONG eof = ((PFILE_END_OF_FILE_INFORMATION)FileInformation)->EndOfFile.QuadPart;
        if (!f->can_write || f->is_dir)
            st = f->is_dir ? STATUS_INVALID_PARAMETER : STATUS_ACCESS_DENIED;
        else if (eof < 0)
            st = STATUS_INVALID_PARAMETER;
        else if (ftruncate(f->fd, eof) != 0)
            st = uwdf_status_from_errno(errno);
        break;
    }
    }
    zw_file_put(f);
out:
    IoStatusBlock->Status = st;
    return st;
}

NTSTATUS ZwFlushBuffersFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock)
{
    UWDF_REQUIRE_PARAM(IoStatusBlock, "ZwFlushBuffersFile", STATUS_INVALID_PARAMETER);
    IoStatusBlock->Information = 0;
    NTSTATUS st = STATUS_INVALID_DEVICE_REQUEST;
    struct zw_file *f = NULL;
    if (!uwdf_irql_check_passive("ZwFlushBuffersFile"))
        goto out;
    st = STATUS_INVALID_HANDLE;
    f = zw_file_get(FileHandle, false);
    if (!f)
        goto out;
    st = STATUS_INVALID_DEVICE_REQUEST; /* IRP_MJ_FLUSH_BUFFERS to a device: not sent */
    if (f->target)
        goto out;
    st = STATUS_ACCESS_DENIED;
    if (!f->can_write)
        goto out;
    st = fsync(f->fd) == 0 ? STATUS_SUCCESS : uwdf_status_from_errno(errno);
out:
    if (f)
        zw_file_put(f);
    IoStatusBlock->Status = st;
    return st;
}
