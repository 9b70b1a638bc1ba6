/* The nbdkit plugin (nbdkit/uwdf-plugin.c) served to real NBD clients:
 * nbdinfo, nbdcopy, qemu-img, qemu-io and fio's nbd engine. Every server
 * runs in nbdkit's captive mode (nbdkit -U - ... --run CMD: a private Unix
 * socket, the server exits when CMD does) in a process group of its own,
 * killed by its id if it outlives its deadline; --exit-with-parent stops it
 * if this program dies. Tests loop over the two local engines (the
 * plugin's backend=) and check the target really used it. Loop-device
 * cases need root; without root, or without the plugin or a client, the
 * program reports SKIP (77) after the rest ran.
 *
 * nbdkit runs with -v, so the plugin's per-connection line ("uwdf:
 * connection: requests=N ... trims=N") tells what reached the target. */
#define _GNU_SOURCE
#include "config.h"
#include "testutil.h"

#include <initguid.h>

#include "stackdrv.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_SKIP 77
#define MIB (1024u * 1024u)
#define DEADLINE_S 120
#define NBDKIT_THREADS 16 /* nbdkit's default worker threads per connection */

static const char *const backends[TU_BACKENDS] = { "io_uring", "libaio" };

#ifdef UWDF_NBDKIT_PLUGIN
static const char *const plugin_path = UWDF_NBDKIT_PLUGIN;
static const char *const drivers_dir = UWDF_STACK_DRIVERS;
#else
static const char *const plugin_path = NULL;
static const char *const drivers_dir = NULL;
#endif

/* Whether prog is on PATH. */
static bool have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

/* The plugin and every client in the NULL-terminated list are there;
 * otherwise the test returns early and the program reports SKIP. */
static bool can_run(const char *const *clients)
{
    bool ok = plugin_path && have("nbdkit");
    for (size_t i = 0; ok && clients[i]; i++)
        ok = have(clients[i]);
    return ok;
}
#define CAN_RUN(...) can_run((const char *const[]){ __VA_ARGS__, NULL })

struct run {
    int status; /* the exit status of nbdkit: CMD's, or nbdkit's own failure */
    char *out;  /* stdout and stderr of nbdkit and CMD */
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* The number in a file CMD wrote. */
static int read_status(const char *path)
{
    FILE *f = fopen(path, "re");
    int v = -1;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%d", &v), 1);
    fclose(f);
    return v;
}

/* With the ThreadSanitizer runtime preloaded, nbdkit's server process (a
 * fork of a process that already had TSan's background thread) can block
 * for ever in exit() in libp11-kit's destructor, on glibc's setlocale lock
 * inherited locked across the fork. When that happens after CMD has
 * finished and the plugin has been unloaded (nothing of ours left to
 * run), give it 5 s, then take CMD's status instead of nbdkit's. Only in
 * TSan builds: anywhere else a hang at exit fails the test. */
static bool tsan_exit_hang(const char *log, const char *rc_file, double *unloaded_at)
{
    if (!strstr(UWDF_SANITIZER_RUNTIME, "tsan") || access(rc_file, F_OK) != 0)
        return false;
    if (*unloaded_at == 0) {
        char *out = slurp(log);
        if (strstr(out, "debug: uwdf: unload plugin"))
            *unloaded_at = tu_now_ms();
        free(out);
        return false;
    }
    return tu_now_ms() - *unloaded_at > 5000;
}

/* nbdkit [prefix...] -U - -v --exit-with-parent PLUGIN args... --run CMD,
 * run in dir (CMD sees $uri). valgrind, when given, runs nbdkit under it. */
static struct run run_captive(const char *dir, const char *const *prefix, const char *const *args, const char *cmd)
{
    const char *argv[64];
    int n = 0;
    for (size_t i = 0; prefix && prefix[i]; i++)
        argv[n++] = prefix[i];
    argv[n++] = "nbdkit";
    argv[n++] = "-U";
    argv[n++] = "-";
    argv[n++] = "-v";
    argv[n++] = "--exit-with-parent";
    argv[n++] = plugin_path;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n++] = "--run";
    /* A sanitizer runtime preloaded for nbdkit is not the clients' business. */
    char *log = tu_join(dir, "nbdkit.log");
    char *rc_file = tu_join(dir, "run.rc");
    unlink(rc_file);
    /* nbdkit exits when CMD does, maybe before a connection's close has
     * printed its line: CMD waits (10 s at most) for a line per connection.
     * It also leaves its status in run.rc (see tsan_exit_hang below). */
    char *run_cmd = NULL;
    ck_assert_int_ge(asprintf(&run_cmd,
                              "unset LD_PRELOAD; %s\nrc=$?; i=0; while [ $i -lt 400 ] && "
                              "[ \"$(grep -c 'accepted connection' '%s')\" -gt \"$(grep -c 'uwdf: connection:' '%s')\" ]; "
                              "do sleep 0.025; i=$((i + 1)); done; echo $rc > '%s'; exit $rc",
                              cmd, log, log, rc_file),
                     0);
    argv[n++] = run_cmd;
    argv[n] = NULL;
    ck_assert_int_lt(n, 64);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0 || chdir(dir) != 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        if (UWDF_SANITIZER_RUNTIME[0]) {
            /* nbdkit is not sanitized: the runtime must come first. The
             * plugin is preloaded too, so nbdkit's dlclose leaves it (and
             * libuwdf) mapped: what their globals hold for the process's
             * life (the handle table's chunks) stays reachable, and only
             * real leaks are reported. */
            char *preload = NULL;
            if (asprintf(&preload, "%s %s", UWDF_SANITIZER_RUNTIME, plugin_path) < 0)
                _exit(126);
            setenv("LD_PRELOAD", preload, 1);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with the child's own call */
    struct run r = { -1, NULL };
    double deadline = tu_now_ms() + DEADLINE_S * 1000.0;
    int ws = 0;
    double unloaded_at = 0;
    bool exit_hang = false;
    for (;;) {
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid)
            break;
        ck_assert_int_eq(w, 0);
        if (tsan_exit_hang(log, rc_file, &unloaded_at)) {
            exit_hang = true;
            break;
        }
        if (tu_now_ms() > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &ws, 0);
            ck_abort_msg("nbdkit ... --run '%s' still running after %d s: killed", cmd, DEADLINE_S);
        }
        tu_sleep_ms(10);
    }
    kill(-pid, SIGKILL); /* anything CMD left behind in the group */
    if (exit_hang) {
        waitpid(pid, &ws, 0);
        r.status = read_status(rc_file);
        fprintf(stderr, "test_nbdkit: nbdkit hung in its exit handlers after unloading the plugin "
                        "(ThreadSanitizer runtime preloaded): killed, CMD's status %d used\n", r.status);
    } else {
        r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    }
    r.out = slurp(log);
    unlink(log);
    unlink(rc_file);
    free(log);
    free(rc_file);
    free(run_cmd);
    return r;
}

/* The end of a run's output, for failure messages (Check refuses long ones). */
static const char *tail(const char *out)
{
    size_t n = strlen(out);
    return n > 2500 ? out + n - 2500 : out;
}

/* Over the plugin's connection lines: the sum (or, max, the largest) of
 * field, e.g. "trims"; with field NULL, how many connections there were. */
static unsigned long long stat_fold(const struct run *r, const char *field, bool max)
{
    unsigned long long acc = 0;
    char key[64];
    snprintf(key, sizeof(key), " %s=", field ? field : "requests");
    for (const char *p = r->out; (p = strstr(p, "uwdf: connection:")) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        const char *k = strstr(p, key);
        ck_assert_msg(k && (!eol || k < eol), "no %s in the connection line", key);
        unsigned long long v = field ? strtoull(k + strlen(key), NULL, 10) : 1;
        acc = max ? (v > acc ? v : acc) : acc + v;
    }
    return acc;
}
#define stat_sum(r, field) stat_fold(r, field, false)
#define stat_max(r, field) stat_fold(r, field, true)

/* The run succeeded, on the engine asked for. */
static void assert_ran(const struct run *r, const char *backend)
{
    ck_assert_msg(r->status == 0, "exit %d:\n%s", r->status, tail(r->out));
    if (backend) {
        char want[64];
        snprintf(want, sizeof(want), " on %s:", backend);
        ck_assert_msg(strstr(r->out, want) != NULL, "not served on %s:\n%s", backend, tail(r->out));
    }
}

static uint32_t file_crc(const char *path, uint64_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    char *buf = malloc(MIB);
    ck_assert_ptr_nonnull(buf);
    uint32_t crc = 0;
    for (uint64_t done = 0; done < len;) {
        size_t want = len - done < MIB ? (size_t)(len - done) : MIB;
        ssize_t n = pread(fd, buf, want, (off_t)done);
        ck_assert_int_eq(n, (ssize_t)want);
        crc = tu_crc32c(crc, buf, want);
        done += want;
    }
    free(buf);
    close(fd);
    return crc;
}

static char *arg(const char *fmt, const char *value)
{
    char *s = NULL;
    ck_assert_int_ge(asprintf(&s, fmt, value), 0);
    return s;
}

/* A JSON boolean or number from nbdinfo --json: "key": value. */
static const char *json_value(const char *out, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\": ", key);
    const char *p = strstr(out, k);
    ck_assert_msg(p != NULL, "nbdinfo printed no %s:\n%s", key, tail(out));
    return p + strlen(k);
}
#define ck_assert_json(out, key, want) \
    ck_assert_msg(strncmp(json_value(out, key), want, strlen(want)) == 0, "%s is not %s", key, want)

/* A test's target: its environment, a file of size bytes (pattern seed;
 * 0: zeros) and the plugin's path= and backend= arguments for it. */
struct served {
    struct tu_env e;
    char *file;
    const char *target; /* what path= names: the file, or a device over it */
    char *path_arg, *backend_arg;
    const char *backend;
};

static void served_init(struct served *s, int backend, uint64_t size, unsigned seed)
{
    tu_env_init(&s->e);
    s->file = tu_env_file(&s->e, "disk", size, seed);
    s->target = s->file;
    s->backend = backends[backend];
    s->path_arg = arg("path=%s", s->file);
    s->backend_arg = arg("backend=%s", s->backend);
}

/* Serves path (which the caller keeps) instead of the file. */
static void served_use(struct served *s, const char *path)
{
    s->target = path;
    free(s->path_arg);
    s->path_arg = arg("path=%s", path);
}

/* Serves a loop device over the file (detached by served_fini). */
static void served_on_loop_device(struct served *s)
{
    served_use(s, tu_env_loop(&s->e, s->file, 0));
}

static void served_fini(struct served *s)
{
    free(s->path_arg);
    free(s->backend_arg);
    free(s->file);
    tu_env_fini(&s->e);
}

/* CMD against the plugin serving s's file (extra: one more argument, or NULL). */
static struct run serve(struct served *s, const char *extra, const char *cmd)
{
    return run_captive(s->e.dir, NULL, (const char *[]){ s->path_arg, s->backend_arg, extra, NULL }, cmd);
}

/* ---- what nbdinfo sees ---- */

START_TEST(nbdinfo_shows_size_block_size_and_capabilities)
{
    if (!CAN_RUN("nbdinfo"))
        return;
    const uint64_t size = 8 * MIB + 3 * 512; /* not a whole number of pages */
    struct served s;
    served_init(&s, _i, size, 0);
    struct run r = serve(&s, NULL, "nbdinfo --json \"$uri\"");
    assert_ran(&r, s.backend);
    ck_assert_json(r.out, "export-size", "8390144");
    ck_assert_json(r.out, "is_read_only", "false");
    ck_assert_json(r.out, "can_flush", "true");
    ck_assert_json(r.out, "can_fua", "true");
    ck_assert_json(r.out, "can_zero", "true");
    ck_assert_json(r.out, "can_trim", "true"); /* ext4, XFS, Btrfs or tmpfs punch holes */
    ck_assert_json(r.out, "can_multi_conn", "true");
    ck_assert_json(r.out, "block_size_minimum", "1"); /* buffered: any byte range */
    ck_assert_json(r.out, "block_size_preferred", "4096");
    free(r.out);

    /* O_DIRECT: whole logical sectors, as the alignment IOCTL says. */
    struct run d = serve(&s, "direct=1", "nbdinfo --json \"$uri\"");
    assert_ran(&d, backends[_i]);
    const char *min = json_value(d.out, "block_size_minimum");
    unsigned long m = strtoul(min, NULL, 10);
    ck_assert_msg(m >= 512 && (m & (m - 1)) == 0, "O_DIRECT minimum block size %lu", m);
    ck_assert_msg(strstr(d.out, "O_DIRECT") != NULL, "%s", d.out);
    free(d.out);
    served_fini(&s);
}
END_TEST

/* ---- data through real clients ---- */

/* qemu-img convert writes src through the plugin into the target; qemu-img
 * compare and nbdcopy read it back; checksums of the target itself and of
 * nbdcopy's copy must be src's. */
static void convert_and_copy_back(struct served *s, const char *extra, uint64_t size)
{
    char *src = tu_env_file(&s->e, "src", size, 7);
    char *back = tu_env_path(&s->e, "back");
    char *cmd = NULL;
    ck_assert_int_ge(asprintf(&cmd,
                              "qemu-img convert -n -f raw -O raw '%s' \"$uri\" && "
                              "qemu-img compare -q -f raw -F raw '%s' \"$uri\" && "
                              "nbdcopy \"$uri\" '%s'",
                              src, src, back),
                     0);
    struct run r = serve(s, extra, cmd);
    assert_ran(&r, s->backend);
    uint32_t want = file_crc(src, size);
    ck_assert_uint_eq(file_crc(s->target, size), want);
    ck_assert_uint_eq(file_crc(back, size), want);
    ck_assert_uint_gt(stat_sum(&r, "writes"), 0);
    /* No allocation per I/O: a connection's requests are at most one per
     * nbdkit thread, reused for thousands of commands. */
    ck_assert_uint_le(stat_max(&r, "requests"), NBDKIT_THREADS);
    ck_assert_uint_gt(stat_sum(&r, "reads") + stat_sum(&r, "writes"), 4 * NBDKIT_THREADS);
    free(r.out);
    free(cmd);
    unlink(src);
    unlink(back);
    free(src);
    free(back);
}

START_TEST(qemu_img_convert_and_nbdcopy_through_a_file)
{
    if (!CAN_RUN("qemu-img", "nbdcopy"))
        return;
    const uint64_t size = 16 * MIB;
    struct served s;
    served_init(&s, _i, size, 0);
    convert_and_copy_back(&s, NULL, size);
    served_fini(&s);
}
END_TEST

START_TEST(qemu_img_convert_and_nbdcopy_through_a_loop_device)
{
    if (!tu_root())
        return;
    if (!CAN_RUN("qemu-img", "nbdcopy"))
        return;
    const uint64_t size = 16 * MIB;
    struct served s;
    served_init(&s, _i, size, 0);
    served_on_loop_device(&s);
    /* Buffered, then O_DIRECT (nbdkit's buffers are bounced to alignment). */
    convert_and_copy_back(&s, NULL, size);
    convert_and_copy_back(&s, "direct=1", size);
    served_fini(&s);
}
END_TEST

/* nbdcopy opens several connections when the export allows multi-conn:
 * they share the plugin's one target. */
START_TEST(nbdcopy_over_several_connections)
{
    if (!CAN_RUN("nbdcopy"))
        return;
    const uint64_t size = 16 * MIB;
    struct served s;
    served_init(&s, _i, size, 0);
    char *src = tu_env_file(&s.e, "src", size, 11);
    char *cmd = arg("nbdcopy --connections=4 --threads=4 --requests=16 '%s' \"$uri\"", src);
    struct run r = serve(&s, NULL, cmd);
    assert_ran(&r, s.backend);
    ck_assert_uint_eq(file_crc(s.file, size), file_crc(src, size));
    ck_assert_uint_ge(stat_sum(&r, NULL), 2);
    free(r.out);
    free(cmd);
    free(src);
    served_fini(&s);
}
END_TEST

START_TEST(fio_nbd_randrw_verify)
{
    if (!CAN_RUN("fio"))
        return;
    struct served s;
    served_init(&s, _i, 16 * MIB, 0);
    struct run r = serve(&s, NULL, "fio --name=nbd --ioengine=nbd --uri=\"$uri\" --rw=randrw --bs=4k --size=16M "
                               "--iodepth=32 --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse");
    assert_ran(&r, s.backend);
    ck_assert_uint_gt(stat_sum(&r, "writes"), 1000);
    ck_assert_uint_gt(stat_sum(&r, "reads"), 1000);
    ck_assert_uint_le(stat_max(&r, "requests"), NBDKIT_THREADS);
    /* Several commands were in flight at once on one connection. */
    ck_assert_uint_gt(stat_max(&r, "requests"), 1);
    free(r.out);
    served_fini(&s);
}
END_TEST

/* ---- FUA, flush, trim and zero reach the target ---- */

START_TEST(trim_punches_a_hole_and_zero_writes_zeros)
{
    if (!CAN_RUN("qemu-io"))
        return;
    const uint64_t size = 4 * MIB;
    struct served s;
    served_init(&s, _i, size, 5); /* every block allocated */
    struct stat before, after;
    ck_assert_int_eq(stat(s.file, &before), 0);
    struct run r = serve(&s, NULL, "qemu-io -f raw -t writeback -c 'discard 1M 1M' -c 'write -z 2M 512k' \"$uri\"");
    assert_ran(&r, s.backend);
    ck_assert_uint_eq(stat_sum(&r, "trims"), 1);
    ck_assert_uint_eq(stat_sum(&r, "zeroes"), 1);
    ck_assert_int_eq(stat(s.file, &after), 0);
    /* The hole: 1 MiB fewer 512-byte blocks allocated. */
    ck_assert_msg(after.st_blocks <= before.st_blocks - (blkcnt_t)(MIB / 512), "st_blocks %lld -> %lld",
                  (long long)before.st_blocks, (long long)after.st_blocks);
    ck_assert_uint_eq((uint64_t)after.st_size, size);
    /* Both ranges read back as zeros; the rest kept its data. */
    int fd = open(s.file, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    char *buf = malloc(size);
    ck_assert_int_eq(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    for (uint64_t i = MIB; i < 2 * MIB; i++)
        ck_assert_msg(buf[i] == 0, "byte %llu of the trimmed range", (unsigned long long)i);
    for (uint64_t i = 2 * MIB; i < 2 * MIB + 512 * 1024; i++)
        ck_assert_msg(buf[i] == 0, "byte %llu of the zeroed range", (unsigned long long)i);
    ck_assert(tu_pattern_matches(buf, MIB, 5, 0));
    ck_assert(tu_pattern_matches(buf + 2 * MIB + 512 * 1024, MIB + 512 * 1024, 5, 2 * MIB + 512 * 1024));
    free(buf);
    free(r.out);
    served_fini(&s);
}
END_TEST

/* A FUA write goes down write-through (not as a write plus nbdkit's
 * emulated flush), a plain one does not, and a flush is a flush. */
START_TEST(fua_write_and_flush_are_sent_as_such)
{
    if (!CAN_RUN("qemu-io"))
        return;
    struct served s;
    served_init(&s, _i, 4 * MIB, 0);
    struct run r = serve(&s, NULL, "qemu-io -f raw -t writeback -c 'write -P 0x33 0 64k' -c 'write -f -P 0x44 64k 64k' "
                               "-c flush \"$uri\"");
    assert_ran(&r, s.backend);
    ck_assert_uint_eq(stat_sum(&r, "writes"), 1);
    ck_assert_uint_eq(stat_sum(&r, "fua-writes"), 1);
    ck_assert_uint_ge(stat_sum(&r, "flushes"), 1);
    int fd = open(s.file, O_RDONLY | O_CLOEXEC);
    unsigned char b[2];
    ck_assert_int_eq(pread(fd, &b[0], 1, 100), 1);
    ck_assert_int_eq(pread(fd, &b[1], 1, 65536 + 100), 1);
    close(fd);
    ck_assert_uint_eq(b[0], 0x33);
    ck_assert_uint_eq(b[1], 0x44);
    free(r.out);
    served_fini(&s);
}
END_TEST

/* ---- errors ---- */

/* A file that shrinks under the server: the export keeps its size, and a
 * read past the new end fails with EIO (the plugin's short-read rule). */
START_TEST(read_past_a_shrunk_file_fails_with_eio)
{
    if (!CAN_RUN("qemu-io"))
        return;
    struct served s;
    served_init(&s, _i, MIB, 3);
    /* qemu-io reads its commands from the pipe: the file shrinks after
     * the client connected and read once. */
    char *cmd = arg("{ echo 'read 0 4k'; sleep 1; truncate -s 0 '%s'; echo 'read 512k 4k'; } | qemu-io -f raw \"$uri\"",
                    s.file);
    struct run r = serve(&s, NULL, cmd);
    ck_assert_msg(strstr(r.out, "Input/output error") != NULL, "exit %d:\n%s", r.status, tail(r.out));
    ck_assert_msg(strstr(r.out, "only 0 done") != NULL, "%s", tail(r.out));
    free(r.out);
    free(cmd);
    served_fini(&s);
}
END_TEST

/* A write on a full file system: STATUS_DISK_FULL back as ENOSPC. Root
 * only (a tmpfs of 64 KiB, in a mount namespace of the test's own). */
START_TEST(write_on_a_full_file_system_fails_with_enospc)
{
    if (!tu_root())
        return;
    if (!CAN_RUN("qemu-io"))
        return;
    if (unshare(CLONE_NEWNS) == 0)
        ck_assert_int_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, ""), 0);
    struct served s;
    served_init(&s, _i, 4096, 0);
    char *mnt = tu_env_path(&s.e, "full");
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    ck_assert_msg(mount("uwdf-full", mnt, "tmpfs", 0, "size=64k") == 0, "mount tmpfs: %s", strerror(errno));
    char *file = tu_join(mnt, "disk");
    int fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 4 * MIB), 0); /* sparse: no room to fill it */
    close(fd);
    served_use(&s, file);
    struct run r = serve(&s, NULL, "qemu-io -f raw -t writeback -c 'write -P 0x11 0 1M' \"$uri\"");
    ck_assert_msg(strstr(r.out, "No space left on device") != NULL, "exit %d:\n%s", r.status, tail(r.out));
    ck_assert_msg(strstr(r.out, "STATUS_DISK_FULL") != NULL, "%s", tail(r.out));
    free(r.out);
    ck_assert_int_eq(umount(mnt), 0);
    free(file);
    free(mnt);
    served_fini(&s);
}
END_TEST

/* readonly=1, or a target that cannot be opened for writing (a read-only
 * loop device, as root; a mode 0444 file otherwise): a read-only export
 * that still serves reads. */
START_TEST(read_only_target_is_a_read_only_export)
{
    if (!CAN_RUN("nbdinfo", "nbdcopy"))
        return;
    const uint64_t size = 2 * MIB;
    struct served s;
    served_init(&s, _i, size, 9);
    char *file = strdup(s.file);
    char *ro_dev = NULL;
    if (tu_root())
        ro_dev = tu_loop_attach_read_only(file);
    else
        ck_assert_int_eq(chmod(file, 0444), 0);
    char *back = tu_env_path(&s.e, "back");
    char *cmd = arg("nbdinfo --json \"$uri\" && nbdcopy \"$uri\" '%s'", back);
    for (int forced = 0; forced < 2; forced++) {
        served_use(&s, forced || !ro_dev ? file : ro_dev);
        struct run r = serve(&s, forced ? "readonly=1" : NULL, cmd);
        assert_ran(&r, s.backend);
        ck_assert_json(r.out, "is_read_only", "true");
        ck_assert_json(r.out, "can_trim", "false");
        ck_assert_json(r.out, "can_zero", "false");
        ck_assert_uint_eq(file_crc(back, size), file_crc(file, size));
        unlink(back);
        free(r.out);
    }
    if (ro_dev)
        tu_loop_detach(ro_dev);
    free(ro_dev);
    free(cmd);
    free(back);
    free(file);
    served_fini(&s);
}
END_TEST

START_TEST(bad_configuration_stops_nbdkit_with_a_reason)
{
    /* Under a preloaded TSan runtime nbdkit can hang in exit() (see
     * tsan_exit_hang), and these runs exercise no thread of the plugin. */
    if (!CAN_RUN("true") || strstr(UWDF_SANITIZER_RUNTIME, "tsan"))
        return;
    struct tu_env e;
    tu_env_init(&e);
    static const struct {
        const char *args[3];
        const char *says;
    } cases[] = {
        { { "backend=io_uring", NULL, NULL }, "path=PATH is required" },
        { { "path=/nonexistent/uwdf", NULL, NULL }, "No such file or directory" },
        { { "path=/dev/null", NULL, NULL }, "not a regular file or block device" },
        { { "path=/dev/null", "backend=null", NULL }, "backend=null" },
        { { "path=/dev/null", "colour=blue", NULL }, "unknown parameter 'colour'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = run_captive(e.dir, NULL, cases[i].args, "true");
        ck_assert_msg(r.status != 0, "case %zu started:\n%s", i, tail(r.out));
        ck_assert_msg(strstr(r.out, cases[i].says) != NULL, "case %zu does not say '%s':\n%s", i, cases[i].says,
                      tail(r.out));
        free(r.out);
    }
    tu_env_fini(&e);
}
END_TEST

/* ---- a stack of loaded drivers over a loop device ---- */

/* The counts a cntfilter instance printed when its device was removed
 * (tests/cntfilter.c); fails if it printed none or more than one. */
struct counts {
    unsigned long long reads, read_bytes, writes, write_bytes, other, failed;
};

static struct counts filter_counts(const struct run *r, const char *driver)
{
    char key[64];
    snprintf(key, sizeof(key), CNTFILTER_LINE "\\Driver\\%s: ", driver);
    const char *p = strstr(r->out, key);
    ck_assert_msg(p != NULL, "no counts from the %s filter (not removed?):\n%s", driver, tail(r->out));
    ck_assert_msg(strstr(p + 1, key) == NULL, "the %s filter's device was removed twice", driver);
    struct counts c;
    ck_assert_int_eq(sscanf(p + strlen(key), "reads=%llu read-bytes=%llu writes=%llu write-bytes=%llu other=%llu "
                                             "failed=%llu",
                            &c.reads, &c.read_bytes, &c.writes, &c.write_bytes, &c.other, &c.failed),
                     6);
    return c;
}

/* The plugin's stack arguments: the pass-through disk driver over hw,
 * the counting filter loaded twice, as an upper and (with_lower) a lower
 * filter; the stack opened by its interface (or by open, a name). */
static const char **stack_args(struct served *s, const char *hw, const char *open, bool with_lower, char **owned)
{
    static const char *argv[12];
    owned[0] = arg("driver=%s/diskfwd.so", drivers_dir);
    owned[1] = arg("driver=upper=%s/cntfilter.so", drivers_dir);
    owned[2] = arg("driver=lower=%s/cntfilter.so", drivers_dir);
    owned[3] = arg("path=%s", hw);
    owned[4] = arg("stack=%s", open ? open : DISKFWD_GUID_STRING);
    int n = 0;
    argv[n++] = owned[0];
    argv[n++] = owned[1];
    argv[n++] = owned[3];
    argv[n++] = owned[4];
    argv[n++] = "upper=upper";
    if (with_lower) {
        argv[n++] = owned[2];
        argv[n++] = "lower=lower";
    }
    argv[n++] = s->backend_arg;
    argv[n] = NULL;
    return argv;
}

static void stack_args_free(char **owned)
{
    for (int i = 0; i < 5; i++)
        free(owned[i]);
}

/* Every request went through the filters and none failed; the stack was
 * removed (the filters print at removal) and the drivers unloaded. */
static void assert_through_the_stack(const struct run *r, unsigned long long min_read, unsigned long long min_written,
                                     bool with_lower)
{
    struct counts up = filter_counts(r, "upper");
    ck_assert_uint_ge(up.read_bytes, min_read);
    ck_assert_uint_ge(up.write_bytes, min_written);
    ck_assert_uint_eq(up.failed, 0);
    /* The size and alignment IOCTLs at connect went through them too. */
    ck_assert_uint_gt(up.other, 0);
    ck_assert_msg(strstr(r->out, "uwdf: stack removed") != NULL, "%s", tail(r->out));
    if (!with_lower) {
        ck_assert_msg(strstr(r->out, CNTFILTER_LINE "\\Driver\\lower") == NULL, "a lower filter:\n%s", tail(r->out));
        return;
    }
    struct counts low = filter_counts(r, "lower");
    ck_assert_uint_eq(low.failed, 0);
    /* The function driver adds nothing and drops nothing. */
    ck_assert_uint_eq(low.reads, up.reads);
    ck_assert_uint_eq(low.read_bytes, up.read_bytes);
    ck_assert_uint_eq(low.writes, up.writes);
    ck_assert_uint_eq(low.write_bytes, up.write_bytes);
    ck_assert_uint_eq(low.other, up.other);
}

/* qemu-img convert writes through the stack onto the hardware; qemu-img
 * compare and nbdcopy read it back, fio verifies its own random writes;
 * the hardware's checksum is the source's, and the filters saw it all. */
START_TEST(a_filter_stack_over_a_loop_device_serves_real_clients)
{
    if (!CAN_RUN("nbdinfo", "qemu-img", "nbdcopy", "fio"))
        return;
    const uint64_t size = 16 * MIB;
    struct served s;
    served_init(&s, _i, size, 0);
    const char *hw = tu_root() ? tu_env_loop(&s.e, s.file, 0) : s.file;
    char *src = tu_env_file(&s.e, "src", size, 13);
    char *back = tu_env_path(&s.e, "back");
    char *owned[5];
    const char **args = stack_args(&s, hw, NULL, true, owned);
    char *cmd = NULL;
    ck_assert_int_ge(asprintf(&cmd,
                              "nbdinfo --json \"$uri\" && "
                              "qemu-img convert -n -f raw -O raw '%s' \"$uri\" && "
                              "qemu-img compare -q -f raw -F raw '%s' \"$uri\" && "
                              "nbdcopy --connections=2 \"$uri\" '%s'",
                              src, src, back),
                     0);
    struct run r = run_captive(s.e.dir, NULL, args, cmd);
    assert_ran(&r, s.backend);
    ck_assert_json(r.out, "export-size", "16777216");
    ck_assert_json(r.out, "is_read_only", "false");
    ck_assert_json(r.out, "can_trim", "true");
    uint32_t want = file_crc(src, size);
    ck_assert_uint_eq(file_crc(hw, size), want);
    ck_assert_uint_eq(file_crc(back, size), want);
    /* Read twice (compare, nbdcopy), written once. */
    assert_through_the_stack(&r, 2 * size, size, true);
    ck_assert_uint_le(stat_max(&r, "requests"), NBDKIT_THREADS);
    free(r.out);

    /* fio's random writes, verified by reading them back. */
    struct run f = run_captive(s.e.dir, NULL, args,
                               "fio --name=nbd --ioengine=nbd --uri=\"$uri\" --rw=randrw --bs=4k --size=16M "
                               "--iodepth=32 --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse");
    assert_ran(&f, s.backend);
    assert_through_the_stack(&f, 4 * MIB, 4 * MIB, true);
    free(f.out);
    free(cmd);
    stack_args_free(owned);
    unlink(src);
    unlink(back);
    free(src);
    free(back);
    served_fini(&s);
}
END_TEST

/* Opened by its function device's name rather than its interface, the
 * stack is still entered at the top (as the I/O manager attaches an open
 * to the top of the stack): the upper filter sees the I/O. With no lower
 * filter, the disk driver sends every request on to the hardware as it
 * came (send-and-forget): the IOCTLs, trim and zero included. */
START_TEST(a_stack_opened_by_device_name_is_entered_at_the_top)
{
    if (!CAN_RUN("qemu-io"))
        return;
    const uint64_t size = 4 * MIB;
    struct served s;
    served_init(&s, _i, size, 5);
    char *owned[5];
    const char **args = stack_args(&s, s.file, "\\Device\\UwdfDiskFwd0", false, owned);
    struct run r = run_captive(s.e.dir, NULL, args,
                               "qemu-io -f raw -t writeback -c 'write -P 0x5a 0 64k' -c 'write -f -P 0x5b 64k 64k' "
                               "-c 'read -P 0x5a 0 64k' -c flush -c 'discard 1M 1M' -c 'write -z 2M 512k' \"$uri\"");
    assert_ran(&r, s.backend);
    assert_through_the_stack(&r, 64 * 1024, 128 * 1024, false);
    ck_assert_uint_eq(stat_sum(&r, "trims"), 1);
    ck_assert_uint_eq(stat_sum(&r, "zeroes"), 1);
    ck_assert_uint_eq(stat_sum(&r, "fua-writes"), 1);
    int fd = open(s.file, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    char *buf = malloc(size);
    ck_assert_int_eq(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    ck_assert_uint_eq((unsigned char)buf[100], 0x5a);
    ck_assert_uint_eq((unsigned char)buf[65536 + 100], 0x5b);
    for (uint64_t i = MIB; i < 2 * MIB + 512 * 1024; i++)
        ck_assert_msg(buf[i] == 0, "byte %llu of the trimmed or zeroed ranges", (unsigned long long)i);
    ck_assert(tu_pattern_matches(buf + 3 * MIB, MIB, 5, 3 * MIB));
    free(buf);
    free(r.out);
    stack_args_free(owned);
    served_fini(&s);
}
END_TEST

/* A stack that cannot be built stops nbdkit with the reason: at
 * configuration, or (what needs the framework's threads) after nbdkit has
 * forked, where the client that came to connect fails. */
START_TEST(a_bad_stack_stops_nbdkit_with_a_reason)
{
    if (!CAN_RUN("nbdinfo") || strstr(UWDF_SANITIZER_RUNTIME, "tsan"))
        return;
    struct tu_env e;
    tu_env_init(&e);
    char *file = tu_env_file(&e, "hw", MIB, 0);
    char *disk = arg("driver=%s/diskfwd.so", drivers_dir);
    char *filt = arg("driver=%s/cntfilter.so", drivers_dir);
    char *hw = arg("path=%s", file);
    /* With the listening socket still open in nbdkit's parent, a client
     * would wait for ever on a server that failed after forking: wait for
     * the plugin to say it serves, or fail. */
    char *log = tu_join(e.dir, "nbdkit.log");
    char *cmd = NULL;
    ck_assert_int_ge(asprintf(&cmd,
                              "i=0; while [ $i -lt 400 ] && ! grep -q 'uwdf: serving\\|error:' '%s'; do "
                              "sleep 0.025; i=$((i + 1)); done; "
                              "grep -q 'uwdf: serving' '%s' && nbdinfo --size \"$uri\"",
                              log, log),
                     0);
    const struct {
        const char *args[6];
        const char *says;
    } cases[] = {
        { { disk, hw, NULL }, "stack=NAME or stack={GUID} is required" },
        { { hw, "stack=\\Device\\X", NULL }, "they need driver=" },
        { { "driver=/nonexistent/drv.so", hw, "stack=\\Device\\X", NULL }, "STATUS_DLL_NOT_FOUND" },
        { { disk, hw, "upper=nosuch", "stack=\\Device\\X", NULL }, "upper=nosuch: no driver= of that name" },
        { { disk, filt, hw, "stack=\\Device\\X", NULL }, "say which with function=NAME" },
        { { disk, disk, hw, "stack=\\Device\\X", NULL }, "is loaded already" },
        { { disk, hw, "direct=1", "stack=\\Device\\X", NULL }, "direct=1 opens path= itself" },
        { { disk, hw, "stack={00000000-0000-0000-0000-000000000001}", NULL }, "no enabled interface of that class" },
        { { disk, hw, "stack=\\Device\\NoSuchDevice", NULL }, "STATUS_OBJECT_NAME_NOT_FOUND" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = run_captive(e.dir, NULL, cases[i].args, cmd);
        ck_assert_msg(r.status != 0, "case %zu served:\n%s", i, tail(r.out));
        ck_assert_msg(strstr(r.out, cases[i].says) != NULL, "case %zu does not say '%s':\n%s", i, cases[i].says,
                      tail(r.out));
        free(r.out);
    }
    free(log);
    free(cmd);
    free(disk);
    free(filt);
    free(hw);
    free(file);
    tu_env_fini(&e);
}
END_TEST

/* ---- nbdkit with the plugin under valgrind ---- */

/* The first line valgrind wrote into out ("==PID== ..."), or NULL. */
static const char *valgrind_report(const char *out)
{
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *p = line;
        if (p[0] != '=' || p[1] != '=')
            continue;
        p += 2;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p > line + 2 && p[0] == '=' && p[1] == '=')
            return line;
    }
    return NULL;
}

START_TEST(plugin_under_valgrind_is_clean)
{
    /* A sanitized plugin cannot run under valgrind. */
    if (!CAN_RUN("valgrind", "qemu-io") || UWDF_SANITIZER_RUNTIME[0])
        return;
    struct served s;
    served_init(&s, _i, 4 * MIB, 1);
    struct run r = run_captive(s.e.dir,
                               (const char *[]){ "valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                                                 "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                                                 "--trace-children=no", NULL },
                               (const char *[]){ s.path_arg, s.backend_arg, NULL },
                               "qemu-io -f raw -t writeback -c 'write -P 0x21 0 256k' -c 'write -f 256k 64k' "
                               "-c 'read -P 0x21 0 256k' -c flush -c 'discard 1M 64k' -c 'write -z 2M 64k' \"$uri\"");
    /* valgrind's errors during the run make nbdkit exit 99 whatever the
     * client did; */
    assert_ran(&r, s.backend);
    /* a leak found at nbdkit's exit, after the plugin's unload (libuwdf
     * unmapped with it: the handle table's first chunk, 98,304 B, before
     * UwdfReleaseObjectTable), leaves the status --run's command gave.
     * With -q valgrind prints only errors and definite leaks. */
    const char *report = valgrind_report(r.out);
    ck_assert_msg(report == NULL, "valgrind reported on nbdkit with the plugin:\n%.2000s", report ? report : "");
    free(r.out);
    served_fini(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nbdkit");
    TCase *tc = tu_tcase(s, "plugin", 4 * DEADLINE_S);
    tcase_add_loop_test(tc, nbdinfo_shows_size_block_size_and_capabilities, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, qemu_img_convert_and_nbdcopy_through_a_file, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, qemu_img_convert_and_nbdcopy_through_a_loop_device, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, nbdcopy_over_several_connections, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, fio_nbd_randrw_verify, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, trim_punches_a_hole_and_zero_writes_zeros, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, fua_write_and_flush_are_sent_as_such, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, read_past_a_shrunk_file_fails_with_eio, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, write_on_a_full_file_system_fails_with_enospc, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, read_only_target_is_a_read_only_export, 0, TU_BACKENDS);
    tcase_add_test(tc, bad_configuration_stops_nbdkit_with_a_reason);
    tcase_add_loop_test(tc, a_filter_stack_over_a_loop_device_serves_real_clients, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, a_stack_opened_by_device_name_is_entered_at_the_top, 0, TU_BACKENDS);
    tcase_add_test(tc, a_bad_stack_stops_nbdkit_with_a_reason);
    tcase_add_loop_test(tc, plugin_under_valgrind_is_clean, 0, TU_BACKENDS);
    int rc = tu_main(s, "test_nbdkit");
    /* Cases return early (they run in forked children) without the
     * plugin, a client or root: then the whole program says SKIP. */
    bool complete = CAN_RUN("nbdinfo", "nbdcopy", "qemu-img", "qemu-io", "fio", "true") && tu_root() &&
                    (UWDF_SANITIZER_RUNTIME[0] || have("valgrind"));
    if (rc == 0 && !complete) {
        fprintf(stderr, "test_nbdkit: the plugin (nbdkit-plugin-dev), a client or root was missing: cases skipped\n");
        return EXIT_SKIP;
    }
    return rc;
}
