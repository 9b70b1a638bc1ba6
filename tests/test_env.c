/* The environment switches (lib/env.c): honoured in an ordinary process,
 * ignored in a privileged one, and read nowhere else in the library.
 *
 * The privileged case is real: as root, the test copies this very program
 * (linked statically with libuwdf, so the loader needs no library path,
 * which it would ignore in a set-group-ID program anyway) into a directory
 * of its own, makes the copy set-group-ID root, and runs it as user 65534
 * with every switch set. The kernel marks that process AT_SECURE; the copy
 * (in --probe mode) prints what the library read and which engine a target
 * got. The same copy without the set-group-ID bit is the control: there
 * every switch must take effect. */
#define _GNU_SOURCE
#include "testutil.h"

#include "../lib/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_TIMEOUT_SEC 60
#define PROBE_ARG "--probe"
#define PROBE_UID 65534
#define PROBE_GID 65534
#define PROBE_OUT_MAX 4096

/* A value for each switch that changes something visible and harms
 * nothing the probe does. */
static const char *const sample[UWDF_ENV_COUNT] = {
    [UWDF_ENV_BACKEND] = "null",
    [UWDF_ENV_VERIFIER] = "1",
    [UWDF_ENV_FAULT_ALLOC] = "nth:1000000000",
    [UWDF_ENV_FAULT_STALL] = "1",
    [UWDF_ENV_FP_FAIL] = "random",
    [UWDF_ENV_BIASED_LOCKS] = "0",
    [UWDF_ENV_DEBUG_PRINT] = "0xF",
    [UWDF_ENV_ENGINES] = "1",
    [UWDF_ENV_WINDOWS_ROOT] = "/nonexistent/uwdf-windows-root",
    [UWDF_ENV_NBD_CONNECT_TIMEOUT] = "5000",
    [UWDF_ENV_NBD_RECONNECT] = "3",
    [UWDF_ENV_SUBMIT_BATCH] = "1",
};

static void set_all_switches(void)
{
    for (int i = 0; i < UWDF_ENV_COUNT; i++)
        setenv(uwdf_env_name(i), sample[i], 1);
}

static void unset_all_switches(void)
{
    for (int i = 0; i < UWDF_ENV_COUNT; i++)
        unsetenv(uwdf_env_name(i));
}

/* --probe: what the library reads, and the engine a target gets (the one
 * switch whose effect is easy to see from outside). No Check here. */
static int probe(const char *self)
{
    printf("secure=%lu\n", getauxval(AT_SECURE));
    for (int i = 0; i < UWDF_ENV_COUNT; i++) {
        const char *v = uwdf_env(i);
        printf("%s=%s\n", uwdf_env_name(i), v ? v : "(no value)");
    }
    WDF_DRIVER_CONFIG cfg;
    WDFDRIVER driver;
    WDFDEVICE device;
    WDFIOTARGET target;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    if (!NT_SUCCESS(WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, &driver)))
        return 2;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    if (!init || !NT_SUCCESS(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device)))
        return 3;
    WdfControlFinishInitializing(device);
    WCHAR buf[PATH_MAX];
    UNICODE_STRING name;
    size_t n = mbstowcs(buf, self, PATH_MAX - 1);
    if (n == (size_t)-1)
        return 4;
    buf[n] = L'\0';
    RtlInitUnicodeString(&name, buf);
    WDF_IO_TARGET_OPEN_PARAMS params;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&params, &name, GENERIC_READ);
    if (!NT_SUCCESS(WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, &target)) ||
        !NT_SUCCESS(WdfIoTargetOpen(target, &params)))
        return 5;
    printf("backend=%s\n", UwdfIoTargetGetBackendName(target));
    WdfObjectDelete(driver);
    return 0;
}

START_TEST(switches_are_read_in_an_ordinary_process)
{
    ck_assert_uint_eq(getauxval(AT_SECURE), 0);
    unset_all_switches();
    for (int i = 0; i < UWDF_ENV_COUNT; i++)
        ck_assert_ptr_null(uwdf_env(i));
    set_all_switches();
    for (int i = 0; i < UWDF_ENV_COUNT; i++) {
        ck_assert_ptr_nonnull(uwdf_env_name(i));
        ck_assert_str_eq(uwdf_env(i), sample[i]);
    }
    unset_all_switches();
}
END_TEST

/* Copies /proc/self/exe to path, owned by root:root with mode. */
static void copy_self(const char *path, mode_t mode)
{
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(out, 0);
    char buf[65536];
    for (ssize_t n; (n = read(in, buf, sizeof(buf))) != 0;) {
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    }
    close(in);
    ck_assert_int_eq(fchown(out, 0, 0), 0);
    ck_assert_int_eq(fchmod(out, mode), 0); /* after chown, which clears set-group-ID */
    close(out);
}

/* Runs the copy at path as user PROBE_UID with every switch set; its
 * output in out. Returns its exit status. */
static int run_probe(const char *path, char *out, size_t out_len)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        set_all_switches();
        if (setgroups(0, NULL) != 0 || setgid(PROBE_GID) != 0 || setuid(PROBE_UID) != 0)
            _exit(126);
        execl(path, path, PROBE_ARG, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    for (ssize_t n; got + 1 < out_len && (n = read(p[0], out + got, out_len - 1 - got)) > 0;)
        got += (size_t)n;
    out[got] = '\0';
    close(p[0]);
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_msg(WIFEXITED(ws), "probe killed by signal %d", WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    return WEXITSTATUS(ws);
}

static bool has_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = out; (p = strstr(p, line)); p += n)
        if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

START_TEST(switches_are_ignored_in_a_set_group_id_process)
{
    if (!tu_root()) {
        fprintf(stderr, "test_env: not root, the set-group-ID probe was not run\n");
        return;
    }
    /* User 65534 must reach the copy: the run directory and this test's
     * directory become traversable (both are removed at the end). */
    char *dir = tu_tmpdir(), *run_dir = strdup(dir), *path = NULL;
    *strrchr(run_dir, '/') = '\0';
    ck_assert_int_eq(chmod(run_dir, 0711), 0);
    ck_assert_int_eq(chmod(dir, 0711), 0);
    struct statvfs vfs;
    ck_assert_int_eq(statvfs(dir, &vfs), 0);
    if (vfs.f_flag & ST_NOSUID) {
        fprintf(stderr, "test_env: %s is mounted nosuid, the set-group-ID probe was not run\n", dir);
        goto out;
    }
    ck_assert_int_ge(asprintf(&path, "%s/probe", dir), 0);
    char out[PROBE_OUT_MAX], line[256];

    /* The control: the same program, no set-group-ID bit. */
    copy_self(path, 0755);
    ck_assert_int_eq(run_probe(path, out, sizeof(out)), 0);
    ck_assert_msg(has_line(out, "secure=0"), "%s", out);
    for (int i = 0; i < UWDF_ENV_COUNT; i++) {
        snprintf(line, sizeof(line), "%s=%s", uwdf_env_name(i), sample[i]);
        ck_assert_msg(has_line(out, line), "control run lacks %s:\n%s", line, out);
    }
    ck_assert_msg(has_line(out, "backend=null"), "%s", out);

    copy_self(path, 02755);
    ck_assert_int_eq(run_probe(path, out, sizeof(out)), 0);
    ck_assert_msg(has_line(out, "secure=1"), "the set-group-ID copy did not run privileged:\n%s", out);
    for (int i = 0; i < UWDF_ENV_COUNT; i++) {
        snprintf(line, sizeof(line), "%s=(no value)", uwdf_env_name(i));
        ck_assert_msg(has_line(out, line), "set-group-ID run read %s:\n%s", uwdf_env_name(i), out);
    }
    ck_assert_msg(!has_line(out, "backend=null") && strstr(out, "backend="), "%s", out);
out:
    tu_rmtree(dir);
    free(dir);
    free(run_dir);
    free(path);
}
END_TEST

/* The whole of a source file, NUL-terminated. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[8192];
    for (size_t n; (n = fread(chunk, 1, sizeof(chunk), f)) > 0;)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

/* Every .c and .h file in srcdir/sub. */
static void check_sources(const char *sub, int *files)
{
    char *dir = NULL;
    ck_assert_int_ge(asprintf(&dir, "%s/%s", UWDF_SRCDIR, sub), 0);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 3 || (strcmp(e->d_name + n - 2, ".c") != 0 && strcmp(e->d_name + n - 2, ".h") != 0))
            continue;
        char *path = NULL;
        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, e->d_name), 0);
        char *text = slurp(path);
        bool is_env = strcmp(sub, "lib") == 0 && strcmp(e->d_name, "env.c") == 0;
        if (!is_env) {
            ck_assert_msg(!strstr(text, "getenv"), "%s reads the environment itself: use uwdf_env", path);
            /* A variable named in a message must be one env.c reads. */
            for (const char *p = text; (p = strstr(p, "\"UWDF_")); p++) {
                size_t len = strspn(p + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
                bool known = false;
                for (int i = 0; i < UWDF_ENV_COUNT; i++)
                    known |= strlen(uwdf_env_name(i)) == len && strncmp(p + 1, uwdf_env_name(i), len) == 0;
                ck_assert_msg(known, "%s names %.*s, which lib/env.c does not list", path, (int)len, p + 1);
            }
        }
        (*files)++;
        free(text);
        free(path);
    }
    closedir(d);
    free(dir);
}

START_TEST(the_library_reads_the_environment_only_in_lib_env_c)
{
    int files = 0;
    check_sources("lib", &files);
    check_sources("backends", &files);
    ck_assert_int_gt(files, 20);
    /* ... and lib/env.c reads through secure_getenv only. */
    char *env_c = NULL;
    ck_assert_int_ge(asprintf(&env_c, "%s/lib/env.c", UWDF_SRCDIR), 0);
    char *text = slurp(env_c);
    int getenvs = 0;
    for (const char *p = text; (p = strstr(p, "getenv(")); p++)
        getenvs++;
    int secure = 0;
    for (const char *p = text; (p = strstr(p, "secure_getenv(")); p++)
        secure++;
    ck_assert_int_eq(secure, 1);
    ck_assert_int_eq(getenvs, secure);
    free(text);
    free(env_c);
}
END_TEST

START_TEST(every_switch_is_in_the_porting_guide_security_note)
{
    char *readme = NULL;
    ck_assert_int_ge(asprintf(&readme, "%s/docs/porting.md", UWDF_SRCDIR), 0);
    char *text = slurp(readme);
    const char *note = strstr(text, "### Security note");
    ck_assert_msg(note != NULL, "docs/porting.md has no \"### Security note\"");
    const char *end = strstr(note + 1, "\n#");
    for (int i = 0; i < UWDF_ENV_COUNT; i++) {
        char name[64];
        snprintf(name, sizeof(name), "`%s", uwdf_env_name(i));
        const char *at = strstr(note, name);
        ck_assert_msg(at && (!end || at < end), "docs/porting.md's security note does not list %s", uwdf_env_name(i));
    }
    free(text);
    free(readme);
}
END_TEST

static Suite *env_suite(void)
{
    Suite *s = suite_create("env");
    TCase *tc = tu_tcase(s, "env", TEST_TIMEOUT_SEC);
    tcase_add_test(tc, switches_are_read_in_an_ordinary_process);
    tcase_add_test(tc, switches_are_ignored_in_a_set_group_id_process);
    tcase_add_test(tc, the_library_reads_the_environment_only_in_lib_env_c);
    tcase_add_test(tc, every_switch_is_in_the_porting_guide_security_note);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], PROBE_ARG) == 0) {
        /* _exit: LeakSanitizer's exit-time check cannot trace a
         * set-group-ID process, and fails it (ASAN_OPTIONS is not read
         * there either). */
        int rc = probe(argv[0]);
        fflush(stdout);
        _exit(rc);
    }
    return tu_main(env_suite(), "test_env");
}
