/* Where a test runs: its directory, files and loop devices, the per-test
 * environment (tu_env), the checked fixture that cleans up after a failed
 * test, and main (tu_main: one directory per run). */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool dir_supports_odirect(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/.odirect-probe", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_DIRECT, 0600);
    if (fd < 0)
        return false;
    close(fd);
    unlink(path);
    return true;
}

char *tu_tmpdir(void)
{
    const char *env = getenv("UWDF_TEST_DIR");
    const char *bases[] = { env, "/var/tmp", ".", "/tmp" };
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        if (!bases[i] || !*bases[i] || !dir_supports_odirect(bases[i]))
            continue;
        char *templ = NULL;
        if (asprintf(&templ, "%s/uwdf-test-XXXXXX", bases[i]) < 0)
            continue;
        if (mkdtemp(templ)) {
            char *abs = realpath(templ, NULL);
            free(templ);
            return abs;
        }
        free(templ);
    }
    ck_abort_msg("no directory supporting O_DIRECT found (set UWDF_TEST_DIR)");
    return NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_make_file(const char *dir, const char *name, size_t size, unsigned seed)
{
    char *path = NULL;
    ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        tu_fill_pattern(buf, n, seed, off);
        ck_assert_int_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
    }
    free(buf);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    return path;
}

bool tu_root(void)
{
    return geteuid() == 0;
}

static char *loop_attach(const char *file, const char *options)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s '%s' 2>/dev/null", options, file);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    char line[256] = "";
    char *ok = fgets(line, sizeof(line), p);
    int rc = pclose(p);
    if (!ok || rc != 0)
        return NULL;
    line[strcspn(line, "\n")] = '\0';
    return strdup(line);
}

char *tu_loop_attach(const char *file, bool direct_io, unsigned sector_size)
{
    char options[80] = "";
    if (sector_size)
        snprintf(options, sizeof(options), "--sector-size %u", sector_size);
    if (direct_io)
        strcat(options, " --direct-io=on");
    return loop_attach(file, options);
}

char *tu_loop_attach_read_only(const char *file)
{
    return loop_attach(file, "--read-only");
}

void tu_loop_detach(const char *dev)
{
    char cmd[300];
    if (!dev)
        return;
    snprintf(cmd, sizeof(cmd), "losetup -d '%s'", dev);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: %s failed\n", cmd);
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/* ---- per-test environment ----
 * A test removes what it made when it ends (tu_env_fini, or the teardown in
 * CK_FORK=no runs, where a failed assertion still reaches it). A forked
 * test that fails is _exit'ed by Check without either, so every test works
 * inside one directory per run, made and removed by the parent process
 * (tu_main), which also detaches any loop device left over inside it. */
#define MAX_REGISTERED 4
static char *g_dirs[MAX_REGISTERED];
static int g_ndirs;
static char *g_loops[MAX_REGISTERED];
static int g_nloops;
static int g_fds[MAX_REGISTERED];
static int g_nfds;

/* Closes the registered descriptors, detaches the registered loop devices,
 * then removes the registered directories. No ck_* here: teardown calls it. */
static void cleanup_registered(void)
{
    for (int i = 0; i < g_nfds; i++)
        close(g_fds[i]);
    g_nfds = 0;
    for (int i = 0; i < g_nloops; i++) {
        tu_loop_detach(g_loops[i]);
        free(g_loops[i]);
        g_loops[i] = NULL;
    }
    g_nloops = 0;
    for (int i = 0; i < g_ndirs; i++) {
        tu_rmtree(g_dirs[i]);
        free(g_dirs[i]);
        g_dirs[i] = NULL;
    }
    g_ndirs = 0;
}

void tu_env_init(struct tu_env *e)
{
    memset(e, 0, sizeof(*e));
    e->fifo_fd = -1;
    tu_driver_and_device(&e->driver, &e->device);
    e->dir = tu_tmpdir();
    ck_assert_int_lt(g_ndirs, MAX_REGISTERED);
    g_dirs[g_ndirs++] = e->dir;
}

void tu_env_init_engine(struct tu_env *e, const char *engine)
{
    if (engine)
        setenv("UWDF_BACKEND", engine, 1);
    else
        unsetenv("UWDF_BACKEND");
    tu_env_init(e);
    e->engine = engine;
}

void tu_env_init_backend(struct tu_env *e, int backend)
{
    ck_assert(backend >= 0 && backend < TU_BACKENDS);
    tu_env_init_engine(e, tu_backend_names[backend]);
}

void tu_env_fini(struct tu_env *e)
{
    WdfObjectDelete(e->driver);
    e->driver = NULL;
    cleanup_registered();
    e->dir = NULL;
    e->fifo_fd = -1;
    free(e->path);
    e->path = NULL;
}

char *tu_env_file(struct tu_env *e, const char *name, size_t size, unsigned seed)
{
    return tu_make_file(e->dir, name, size, seed);
}

char *tu_env_path(struct tu_env *e, const char *name)
{
    return tu_join(e->dir, name);
}

const char *tu_env_loop(struct tu_env *e, const char *backing, unsigned sector_size)
{
    (void)e;
    ck_assert_int_lt(g_nloops, MAX_REGISTERED);
    char *dev = tu_loop_attach(backing, false, sector_size);
    ck_assert_msg(dev != NULL, "losetup failed for %s", backing);
    g_loops[g_nloops++] = dev;
    return dev;
}

WDFIOTARGET tu_env_target(struct tu_env *e, const char *path, ACCESS_MASK access, ULONG options)
{
    WDFIOTARGET target;
    ck_assert_status_msg(tu_target_open(e->device, path, access, FILE_OPEN, options, &target), STATUS_SUCCESS,
                         "open %s", path);
    if (e->engine)
        ck_assert_str_eq(UwdfIoTargetGetBackendName(target), e->engine);
    return target;
}

WDFIOTARGET tu_env_open_file(struct tu_env *e, size_t size, unsigned seed, ACCESS_MASK access, ULONG options)
{
    ck_assert_ptr_null(e->path);
    e->path = tu_env_file(e, "data", size, seed);
    e->target = tu_env_target(e, e->path, access, options);
    return e->target;
}

const char *tu_env_fifo(struct tu_env *e)
{
    ck_assert_ptr_null(e->path);
    ck_assert_int_lt(g_nfds, MAX_REGISTERED);
    e->path = tu_env_path(e, "fifo");
    ck_assert_int_eq(mkfifo(e->path, 0600), 0);
    /* O_RDWR: the FIFO has a writer for as long as the test runs, so a
     * read waits for data instead of seeing end of file. */
    e->fifo_fd = open(e->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    ck_assert_int_ge(e->fifo_fd, 0);
    g_fds[g_nfds++] = e->fifo_fd;
    return e->path;
}

WDFIOTARGET tu_env_open_fifo(struct tu_env *e)
{
    e->target = tu_env_target(e, tu_env_fifo(e), GENERIC_READ, 0);
    return e->target;
}

void *tu_env_memory(struct tu_env *e, size_t size)
{
    e->mem = tu_make_memory(size, &e->buf);
    return e->buf;
}

/* ---- fixture ---- */

void tu_fixture_setup(void)
{
    tu_bugcheck_capture();
    UwdfSetVerifier(FALSE);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    UwdfFaultInjectStall(0);
}

void tu_fixture_teardown(void)
{
    free(tu_stderr_end()); /* a failed test's capture: what follows is seen */
    UwdfSetVerifier(FALSE);
    UwdfFaultInjectAllocations(UwdfFaultAllocOff, 0);
    UwdfFaultInjectStall(0);
    UwdfSetEnginePoolSize(0);
    UwdfSetEngineSubmitBatch(0);
    /* A failed test may leave its driver behind (CK_FORK=no); deleting it
     * closes its targets before their files go. */
    WDFDRIVER stale = WdfGetDriver();
    if (stale)
        WdfObjectDelete(stale);
    cleanup_registered();
    ck_assert_msg(tu_last_bugcheck.count == 0, "unexpected bug check 0x%lx: %s",
                  (unsigned long)tu_last_bugcheck.code, tu_last_bugcheck.reason);
}

TCase *tu_tcase(Suite *s, const char *name, int timeout_sec)
{
    TCase *tc = tcase_create(name);
    if (timeout_sec > 0)
        tcase_set_timeout(tc, timeout_sec);
    tcase_add_checked_fixture(tc, tu_fixture_setup, tu_fixture_teardown);
    suite_add_tcase(s, tc);
    return tc;
}

/* ---- main: one directory per run (no ck_* below: not inside a test) ---- */

/* The parent's safety net: loop devices whose backing file is inside dir. */
static void detach_loops_under(const char *dir)
{
    FILE *p = popen("losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null", "r");
    char line[4600], name[256], back[4300];
    if (!p)
        return;
    size_t n = strlen(dir);
    while (fgets(line, sizeof(line), p))
        if (sscanf(line, "%255s %4299s", name, back) == 2 && strncmp(back, dir, n) == 0 && back[n] == '/')
            tu_loop_detach(name);
    pclose(p);
}

static char *run_dir_create(const char *name)
{
    const char *base = getenv("UWDF_TEST_DIR");
    char *dir = NULL;
    if (asprintf(&dir, "%s/uwdf-%s-XXXXXX", base && *base ? base : "/var/tmp", name) < 0)
        return NULL;
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    setenv("UWDF_TEST_DIR", dir, 1); /* tu_tmpdir makes each test's directory in it */
    return dir;
}

int tu_main(Suite *s, const char *name)
{
    char *run_dir = run_dir_create(name);
    int rc = tu_run_suite(s);
    if (run_dir) {
        if (tu_root())
            detach_loops_under(run_dir);
        tu_rmtree(run_dir);
        free(run_dir);
    }
    return rc;
}

int tu_main_root(Suite *s, const char *name, const char *skipped)
{
    int rc = tu_main(s, name);
    if (rc == 0 && !tu_root()) {
        fprintf(stderr, "%s: not root, %s\n", name, skipped);
        return TU_EXIT_SKIP;
    }
    return rc;
}

struct tu_blockdev_info tu_blockdev_query(const char *dev)
{
    struct tu_blockdev_info b = { 0, 0, 0 };
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "blockdev --getsize64 --getss --getpbsz '%s'", dev);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = fscanf(p, "%llu %u %u", &b.size, &b.logical, &b.physical);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_eq(n, 3);
    return b;
}
