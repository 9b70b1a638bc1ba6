/* uwdf-scale: how uwdf behaves with many open I/O targets.
 *
 * Like a storage application that keeps one file per object, it creates N
 * small files, opens each as a WDF I/O target, reads 4 KiB from every one
 * (asynchronous requests that the completion routine resends to the next
 * target, so sends cross targets and engines), checks what it read, and
 * closes them all. With --uri=URI it opens N targets on one NBD export
 * instead (nbdkit's pattern plugin, whose every 8 bytes hold their own
 * offset: target i reads block i of it, wrapping at its end), to measure
 * what a target costs when targets share the export's connection (or,
 * with uwdf-share=0 in the URI, when each has its own). --uri also takes an
 * RBD name (rbd:pool/image holding the same pattern): N targets on one
 * image, or, with %u in the name, target i on image i (image i holding the
 * pattern at the block target i reads: i modulo image 0's size in blocks,
 * so block 0 for one-block images). It prints how many targets opened, the threads the
 * opens added, the memory (RSS) each open target costs, the descriptors
 * they hold, and the median (and 90th percentile) time of WdfIoTargetOpen
 * and WdfIoTargetClose, then the same as one row of a Markdown table. The
 * open-file limit is whatever the shell gives (`ulimit -Sn 1024` for a
 * Debian root shell's default).
 *
 *   uwdf-scale --targets=10000 --ioengine=io_uring --dir=/var/tmp
 *   nbdkit -U - pattern 1G --run 'uwdf-scale --targets=10000 --uri="$uri"'
 *
 * Public API only (wdf.h, uwdf.h), so the same program measures any build. */
#include "config.h"

#include <uwdf.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#define SCALE_BLOCK 4096u
#define SCALE_MAX_DEPTH 1024u

struct scale_opts {
    unsigned targets;
    unsigned depth;
    unsigned engines; /* 0: the library's default */
    bool direct;
    bool keep;
    const char *dir;
    const char *engine;
    const char *uri; /* N targets on this NBD export or RBD image (%u: the target's index), no files */
};

struct scale_slot {
    WDFREQUEST request;
    WDFMEMORY memory;
    void *buffer;
    unsigned index; /* target being read */
};

struct scale_run {
    WDFIOTARGET *targets;
    unsigned opened;
    struct scale_slot *slots;
    atomic_uint next;     /* next target to read */
    atomic_uint finished; /* reads completed */
    atomic_uint good;     /* reads that returned the file's own block */
    atomic_uint failed;   /* reads that failed */
    atomic_uint wrong;    /* reads that returned something else */
    bool remote;          /* targets on one NBD export (pattern plugin) */
    uint64_t blocks;      /* its size in blocks */
    _Atomic NTSTATUS first_error;
    KEVENT done;
};

static void scale_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("uwdf-scale: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double scale_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* What the process holds, read through descriptors opened up front: once
 * the targets have taken every descriptor there is, opening /proc to look
 * would fail. */
struct scale_probe {
    int status_fd, statm_fd, aio_fd;
    DIR *fd_dir;
};

struct scale_sample {
    long threads, fds, rss_kib, aio_nr;
};

static void scale_probe_open(struct scale_probe *p)
{
    p->status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    p->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    p->aio_fd = open("/proc/sys/fs/aio-nr", O_RDONLY | O_CLOEXEC);
    p->fd_dir = opendir("/proc/self/fd");
}

static void scale_probe_close(struct scale_probe *p)
{
    close(p->status_fd);
    close(p->statm_fd);
    if (p->aio_fd >= 0)
        close(p->aio_fd);
    if (p->fd_dir)
        closedir(p->fd_dir);
}

/* The text of a /proc file from its start, or "" if it cannot be read. */
static const char *scale_pread(int fd, char *buf, size_t len)
{
    ssize_t n = fd >= 0 ? pread(fd, buf, len - 1, 0) : -1;
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static struct scale_sample scale_sample(struct scale_probe *p)
{
    struct scale_sample s = { -1, -1, -1, -1 };
    char buf[4096];
    const char *th = strstr(scale_pread(p->status_fd, buf, sizeof(buf)), "\nThreads:");
    if (th)
        s.threads = strtol(th + 9, NULL, 10);
    long size, resident;
    if (sscanf(scale_pread(p->statm_fd, buf, sizeof(buf)), "%ld %ld", &size, &resident) == 2)
        s.rss_kib = resident * (sysconf(_SC_PAGESIZE) / 1024);
    if (sscanf(scale_pread(p->aio_fd, buf, sizeof(buf)), "%ld", &s.aio_nr) != 1)
        s.aio_nr = -1;
    if (p->fd_dir) {
        s.fds = 0;
        rewinddir(p->fd_dir);
        for (struct dirent *e; (e = readdir(p->fd_dir)) != NULL;)
            if (e->d_name[0] != '.')
                s.fds++;
    }
    return s;
}

static int scale_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n samples, sorted in place. */
static double scale_quantile(double *v, unsigned n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), scale_cmp_double);
    unsigned i = (unsigned)(q * (n - 1) + 0.5);
    return v[i];
}

static struct scale_run g_run;

/* Each file's block carries its own index, so a read from the wrong target
 * (a file registered in the wrong slot) is caught. */
static void scale_fill(void *buf, unsigned index)
{
    uint32_t *w = buf;
    for (unsigned i = 0; i < SCALE_BLOCK / sizeof(*w); i++)
        w[i] = index * 2654435761u ^ i;
}

/* Target index's offset: the start of its file, or its block of the
 * export. */
static uint64_t scale_offset(unsigned index)
{
    return g_run.remote ? (uint64_t)(index % g_run.blocks) * SCALE_BLOCK : 0;
}

static bool scale_check(const void *buf, unsigned index)
{
    if (g_run.remote) {
        const unsigned char *b = buf;
        uint64_t off = scale_offset(index);
        for (unsigned i = 0; i < SCALE_BLOCK; i += 8) {
            uint64_t v = 0;
            for (unsigned k = 0; k < 8; k++)
                v = v << 8 | b[i + k];
            if (v != off + i)
                return false;
        }
        return true;
    }
    const uint32_t *w = buf;
    for (unsigned i = 0; i < SCALE_BLOCK / sizeof(*w); i++)
        if (w[i] != (index * 2654435761u ^ i))
            return false;
    return true;
}

static char *scale_file_name(const struct scale_opts *o, unsigned i)
{
    char *p;
    if (asprintf(&p, "%s/uwdf-scale.%u", o->dir, i) < 0)
        scale_die("out of memory");
    return p;
}

static void scale_make_files(const struct scale_opts *o)
{
    void *buf;
    if (posix_memalign(&buf, SCALE_BLOCK, SCALE_BLOCK) != 0)
        scale_die("out of memory");
    for (unsigned i = 0; i < o->targets; i++) {
        char *p = scale_file_name(o, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            scale_die("%s: %s", p, strerror(errno));
        scale_fill(buf, i);
        if (write(fd, buf, SCALE_BLOCK) != (ssize_t)SCALE_BLOCK)
            scale_die("%s: short write", p);
        close(fd);
        free(p);
    }
    free(buf);
}

static void scale_remove_files(const struct scale_opts *o)
{
    for (unsigned i = 0; i < o->targets; i++) {
        char *p = scale_file_name(o, i);
        unlink(p);
        free(p);
    }
}

static EVT_WDF_REQUEST_COMPLETION_ROUTINE scale_read_done;

/* The first failure is the one reported. */
static void scale_note_error(NTSTATUS st)
{
    NTSTATUS none = STATUS_SUCCESS;
    atomic_compare_exchange_strong(&g_run.first_error, &none, st);
}

/* Format the slot's request for the next target not read yet and send it;
 * false when every target has been taken. */
static bool scale_send_next(struct scale_slot *s)
{
    struct scale_run *r = &g_run;
    for (;;) {
        unsigned i = atomic_fetch_add(&r->next, 1);
        if (i >= r->opened)
            return false;
        s->index = i;
        LONGLONG offset = (LONGLONG)scale_offset(i);
        WDF_REQUEST_REUSE_PARAMS reuse;
        WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        NTSTATUS st = WdfRequestReuse(s->request, &reuse);
        if (NT_SUCCESS(st))
            st = WdfIoTargetFormatRequestForRead(r->targets[i], s->request, s->memory, NULL, &offset);
        if (NT_SUCCESS(st)) {
            WdfRequestSetCompletionRoutine(s->request, scale_read_done, s);
            if (WdfRequestSend(s->request, r->targets[i], WDF_NO_SEND_OPTIONS))
                return true;
            st = WdfRequestGetStatus(s->request);
        }
        /* Counted as a failed read; go on with the next target. */
        scale_note_error(st);
        atomic_fetch_add(&r->failed, 1);
        if (atomic_fetch_add(&r->finished, 1) + 1 == r->opened)
            KeSetEvent(&r->done, IO_NO_INCREMENT, FALSE);
    }
}

static VOID scale_read_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                            WDFCONTEXT Context)
{
    struct scale_run *r = &g_run;
    struct scale_slot *s = Context;
    (void)Request;
    (void)Target;
    if (!NT_SUCCESS(Params->IoStatus.Status)) {
        scale_note_error(Params->IoStatus.Status);
        atomic_fetch_add(&r->failed, 1);
    } else if (Params->IoStatus.Information == SCALE_BLOCK && scale_check(s->buffer, s->index)) {
        atomic_fetch_add(&r->good, 1);
    } else {
        atomic_fetch_add(&r->wrong, 1);
    }
    if (atomic_fetch_add(&r->finished, 1) + 1 == r->opened)
        KeSetEvent(&r->done, IO_NO_INCREMENT, FALSE);
    scale_send_next(s);
}

static unsigned scale_parse_uint(const char *arg, const char *value)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (errno || end == value || *end || v > UINT32_MAX)
        scale_die("%s: not a number: '%s'", arg, value);
    return (unsigned)v;
}

static void scale_usage(void)
{
    puts("usage: uwdf-scale [--targets=N] [--dir=DIR] [--ioengine=io_uring|libaio|null]\n"
         "                  [--direct=0|1] [--iodepth=Q] [--engines=E] [--keep] [--uri=URI]\n"
         "Creates N files of 4 KiB in DIR (default /var/tmp), opens each as an I/O\n"
         "target, reads 4 KiB from each with Q requests in flight (default 32),\n"
         "closes them, and prints targets opened, threads added, RSS per target\n"
         "and the median / 90th percentile of WdfIoTargetOpen and WdfIoTargetClose.\n"
         "--engines=E sets the engine pool (UwdfSetEnginePoolSize); --keep keeps\n"
         "the files. --uri=URI opens the N targets on that NBD export instead of\n"
         "files: nbdkit's pattern plugin (nbdkit -U - pattern 1G --run\n"
         "'uwdf-scale --uri=\"$uri\"'); add &uwdf-share=0 (or ?uwdf-share=0) to the\n"
         "URI for a connection per target. An RBD name (rbd:pool/image) holding that\n"
         "pattern works too; a %u in the name is replaced by the target's index (one\n"
         "image per target). Set the open-file limit with ulimit first.");
}

static void scale_parse(int argc, char **argv, struct scale_opts *o)
{
    *o = (struct scale_opts){ .targets = 1000, .depth = 32, .direct = true, .dir = "/var/tmp" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        const char *v = eq ? eq + 1 : "";
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            scale_usage();
            exit(0);
        } else if (n == 9 && strncmp(a, "--targets", n) == 0) {
            o->targets = scale_parse_uint(a, v);
        } else if (n == 9 && strncmp(a, "--iodepth", n) == 0) {
            o->depth = scale_parse_uint(a, v);
        } else if (n == 9 && strncmp(a, "--engines", n) == 0) {
            o->engines = scale_parse_uint(a, v);
        } else if (n == 8 && strncmp(a, "--direct", n) == 0) {
            o->direct = scale_parse_uint(a, v) != 0;
        } else if (n == 5 && strncmp(a, "--dir", n) == 0 && *v) {
            o->dir = v;
        } else if (n == 10 && strncmp(a, "--ioengine", n) == 0 && *v) {
            o->engine = v;
        } else if (n == 5 && strncmp(a, "--uri", n) == 0 && *v) {
            o->uri = v;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true;
        } else {
            scale_die("unknown option '%s' (--help lists them)", a);
        }
    }
    if (o->targets == 0)
        scale_die("--targets must be at least 1");
    if (o->depth == 0 || o->depth > SCALE_MAX_DEPTH)
        scale_die("--iodepth must be 1..%u", SCALE_MAX_DEPTH);
}

/* Target i's name under --uri: the URI, its first %u replaced by i. */
static char *scale_uri_name(const char *uri, unsigned i)
{
    const char *at = strstr(uri, "%u");
    char *p;
    if (!at)
        return strdup(uri);
    if (asprintf(&p, "%.*s%u%s", (int)(at - uri), uri, i, at + 2) < 0)
        return NULL;
    return p;
}

static NTSTATUS scale_open(WDFDEVICE device, const struct scale_opts *o, unsigned i, WDFIOTARGET *t,
                           double *open_us)
{
    char *path = o->uri ? scale_uri_name(o->uri, i) : scale_file_name(o, i);
    if (!path)
        scale_die("out of memory");
    WCHAR wbuf[PATH_MAX];
    UNICODE_STRING us;
    size_t len = mbstowcs(wbuf, path, PATH_MAX - 1);
    if (len == (size_t)-1)
        scale_die("%s: not a valid path in this locale", path);
    wbuf[len] = L'\0';
    RtlInitUnicodeString(&us, wbuf);
    free(path);

    NTSTATUS st = WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, t);
    if (!NT_SUCCESS(st))
        return st;
    WDF_IO_TARGET_OPEN_PARAMS op;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&op, &us, GENERIC_READ);
    if (o->direct && !o->uri)
        op.CreateOptions |= FILE_NO_INTERMEDIATE_BUFFERING;
    double t0 = scale_now_us();
    st = WdfIoTargetOpen(*t, &op);
    *open_us = scale_now_us() - t0;
    if (!NT_SUCCESS(st)) {
        WdfObjectDelete(*t);
        *t = NULL;
    }
    return st;
}

static void scale_bootstrap(WDFDRIVER *driver, WDFDEVICE *device)
{
    WDF_DRIVER_CONFIG cfg;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    if (!NT_SUCCESS(WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, driver)))
        scale_die("WdfDriverCreate failed");
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(*driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init || !NT_SUCCESS(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, device)))
        scale_die("WdfDeviceCreate failed");
    WdfControlFinishInitializing(*device);
}

static void scale_make_slots(struct scale_run *r, unsigned depth)
{
    r->slots = calloc(depth, sizeof(*r->slots));
    if (!r->slots)
        scale_die("out of memory");
    for (unsigned i = 0; i < depth; i++) {
        struct scale_slot *s = &r->slots[i];
        if (!NT_SUCCESS(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, NULL, &s->request)) ||
            !NT_SUCCESS(WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, SCALE_BLOCK,
                                        &s->memory, &s->buffer)))
            scale_die("cannot create request %u", i);
    }
}

int main(int argc, char **argv)
{
    struct scale_opts o;
    struct scale_run *r = &g_run;
    scale_parse(argc, argv, &o);
    if (o.engine && setenv("UWDF_BACKEND", o.engine, 1) != 0)
        scale_die("setenv: %s", strerror(errno));
    r->remote = o.uri != NULL;
    if (!r->remote)
        scale_make_files(&o);

    WDFDRIVER driver;
    WDFDEVICE device;
    scale_bootstrap(&driver, &device);
    if (o.engines && !NT_SUCCESS(UwdfSetEnginePoolSize(o.engines)))
        scale_die("UwdfSetEnginePoolSize(%u) refused", o.engines);
    KeInitializeEvent(&r->done, NotificationEvent, FALSE);
    r->targets = calloc(o.targets, sizeof(*r->targets));
    double *open_us = calloc(o.targets, sizeof(double)), *close_us = calloc(o.targets, sizeof(double));
    if (!r->targets || !open_us || !close_us)
        scale_die("out of memory");
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);

    struct scale_probe probe;
    scale_probe_open(&probe);
    struct scale_sample before = scale_sample(&probe);
    NTSTATUS open_error = STATUS_SUCCESS;
    double t0 = scale_now_us();
    for (unsigned i = 0; i < o.targets; i++) {
        NTSTATUS st = scale_open(device, &o, i, &r->targets[r->opened], &open_us[r->opened]);
        if (!NT_SUCCESS(st)) {
            open_error = st;
            break;
        }
        r->opened++;
    }
    double open_wall = scale_now_us() - t0;
    struct scale_sample open = scale_sample(&probe);
    const char *engine = r->opened ? UwdfIoTargetGetBackendName(r->targets[0]) : "-";

    if (r->remote && r->opened) {
        GET_LENGTH_INFORMATION li;
        WDF_MEMORY_DESCRIPTOR out;
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out, &li, sizeof(li));
        if (!NT_SUCCESS(WdfIoTargetSendIoctlSynchronously(r->targets[0], NULL, IOCTL_DISK_GET_LENGTH_INFO, NULL,
                                                          &out, NULL, NULL)) ||
            li.Length.QuadPart < (LONGLONG)SCALE_BLOCK)
            scale_die("%s: no size of at least one block", o.uri);
        r->blocks = (uint64_t)li.Length.QuadPart / SCALE_BLOCK;
    }
    unsigned depth = o.depth < r->opened ? o.depth : r->opened;
    double read_wall = 0;
    if (r->opened) {
        scale_make_slots(r, depth);
        t0 = scale_now_us();
        for (unsigned i = 0; i < depth; i++)
            if (!scale_send_next(&r->slots[i]))
                break;
        KeWaitForSingleObject(&r->done, Executive, KernelMode, FALSE, NULL);
        read_wall = scale_now_us() - t0;
    }

    t0 = scale_now_us();
    for (unsigned i = 0; i < r->opened; i++) {
        double c0 = scale_now_us();
        WdfIoTargetClose(r->targets[i]);
        close_us[i] = scale_now_us() - c0;
    }
    double close_wall = scale_now_us() - t0;
    struct scale_sample closed = scale_sample(&probe);
    for (unsigned i = 0; i < r->opened; i++)
        WdfObjectDelete(r->targets[i]);
    WdfObjectDelete(driver);
    struct scale_sample unloaded = scale_sample(&probe);
    scale_probe_close(&probe);

    char err[96] = "";
    if (!NT_SUCCESS(open_error)) {
        const char *name = UwdfNtStatusName(open_error);
        snprintf(err, sizeof(err), " (open %u failed: %s)", r->opened + 1, name ? name : "?");
    }
    double rss_per = r->opened ? (double)(open.rss_kib - before.rss_kib) / r->opened : 0;
    long threads_added = open.threads - before.threads;
    printf("engine %s, open-file limit %llu (hard %llu), %u targets asked, %u opened%s\n", engine,
           (unsigned long long)nofile.rlim_cur, (unsigned long long)nofile.rlim_max, o.targets, r->opened, err);
    printf("threads: %ld before, %ld with the targets open (+%ld), %ld after closing them, %ld after "
           "deleting the driver\n", before.threads, open.threads, threads_added, closed.threads,
           unloaded.threads);
    printf("file descriptors: +%ld with the targets open, +%ld after closing; fs.aio-nr +%ld\n",
           open.fds - before.fds, closed.fds - before.fds, open.aio_nr - before.aio_nr);
    printf("RSS: +%ld KiB with the targets open, %.2f KiB per target\n", open.rss_kib - before.rss_kib,
           rss_per);
    NTSTATUS read_error = atomic_load(&r->first_error);
    const char *read_error_name = read_error ? UwdfNtStatusName(read_error) : "";
    printf("reads: %u of %u returned the file's own block, %u other data, %u failed%s%s (%.1f ms, QD%u)\n",
           atomic_load(&r->good), r->opened, atomic_load(&r->wrong), atomic_load(&r->failed),
           read_error ? ", first: " : "",
           read_error_name ? read_error_name : "?", read_wall / 1e3, depth);
    unsigned n = r->opened;
    double om = scale_quantile(open_us, n, 0.5), o90 = scale_quantile(open_us, n, 0.9);
    double cm = scale_quantile(close_us, n, 0.5), c90 = scale_quantile(close_us, n, 0.9);
    printf("WdfIoTargetOpen: median %.1f us, p90 %.1f us (%.1f ms for all)\n", om, o90, open_wall / 1e3);
    printf("WdfIoTargetClose: median %.1f us, p90 %.1f us (%.1f ms for all)\n", cm, c90, close_wall / 1e3);
    printf("| engine | N | targets opened | threads added | RSS per target | open | close |\n");
    printf("|---|---|---|---|---|---|---|\n");
    printf("| %s | %u | %u%s | %ld | %.1f KiB | %.1f us | %.1f us |\n", engine, o.targets, r->opened, err,
           threads_added, rss_per, om, cm);

    free(r->slots);
    free(r->targets);
    free(open_us);
    free(close_us);
    if (!o.keep && !r->remote)
        scale_remove_files(&o);
    return r->opened == o.targets && atomic_load(&r->good) == r->opened ? 0 : 1;
}
