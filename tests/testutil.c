#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

struct tu_bugcheck tu_last_bugcheck;
const char *const tu_backend_names[TU_BACKENDS] = { "io_uring", "libaio" };

static VOID tu_bugcheck_cb(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4,
                           PCSTR reason, PVOID ctx)
{
    (void)ctx;
    (void)code;
    __atomic_add_fetch(&tu_last_bugcheck.count, 1, __ATOMIC_SEQ_CST);
    tu_last_bugcheck.code = (ULONG)p1;
    tu_last_bugcheck.p[0] = p1;
    tu_last_bugcheck.p[1] = p2;
    tu_last_bugcheck.p[2] = p3;
    tu_last_bugcheck.p[3] = p4;
    snprintf(tu_last_bugcheck.reason, sizeof(tu_last_bugcheck.reason), "%s", reason);
}

void tu_bugcheck_capture(void)
{
    tu_bugcheck_reset();
    UwdfSetBugCheckCallback(tu_bugcheck_cb, NULL);
}

void tu_bugcheck_reset(void)
{
    memset(&tu_last_bugcheck, 0, sizeof(tu_last_bugcheck));
}

void tu_driver_and_device(WDFDRIVER *driver, WDFDEVICE *device)
{
    WDF_DRIVER_CONFIG cfg;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    ck_assert_int_eq(WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, driver), STATUS_SUCCESS);
    if (!device)
        return;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(*driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    ck_assert_int_eq(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, device), STATUS_SUCCESS);
    ck_assert_ptr_null(init);
    WdfControlFinishInitializing(*device);
}

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

void tu_fill_pattern(void *buf, size_t len, unsigned seed, uint64_t offset)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t x = (offset + i) * 0x9E3779B97F4A7C15ull + seed;
        p[i] = seed ? (unsigned char)(x >> 56) : 0;
    }
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
    fsync(fd);
    close(fd);
    return path;
}

bool tu_root(void)
{
    return geteuid() == 0;
}

char *tu_loop_attach(const char *file, bool direct_io)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s '%s' 2>/dev/null",
             direct_io ? "--direct-io=on" : "", file);
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

void tu_loop_detach(const char *dev)
{
    char cmd[300];
    if (!dev)
        return;
    snprintf(cmd, sizeof(cmd), "losetup -d '%s'", dev);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: %s failed\n", cmd);
}

void tu_unicode(UNICODE_STRING *us, WCHAR *buf, size_t buf_chars, const char *path)
{
    size_t n = mbstowcs(buf, path, buf_chars - 1);
    ck_assert(n != (size_t)-1);
    buf[n] = L'\0';
    RtlInitUnicodeString(us, buf);
}

NTSTATUS tu_target_open(WDFDEVICE device, const char *path, ACCESS_MASK access, ULONG disposition,
                        ULONG options, WDFIOTARGET *target)
{
    WDF_IO_TARGET_OPEN_PARAMS params;
    UNICODE_STRING name;
    WCHAR buf[4096];
    NTSTATUS status = WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, target);
    if (!NT_SUCCESS(status)) {
        *target = NULL;
        return status;
    }
    tu_unicode(&name, buf, sizeof(buf) / sizeof(buf[0]), path);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&params, &name, access);
    params.CreateDisposition = disposition;
    params.CreateOptions |= options;
    return WdfIoTargetOpen(*target, &params);
}

void tu_use_backend(int index)
{
    setenv("UWDF_BACKEND", tu_backend_names[index], 1);
}

double tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
