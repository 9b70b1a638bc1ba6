/* make installcheck's program: built against the installed library through
 * `pkg-config uwdf`, once as C and once as C++ (the same source), it writes
 * a block to a new temporary file through a WDFIOTARGET, reads it back
 * through the target, checks the file's bytes on disk, and checks that the
 * library's release is the one the headers name. Exit status 0: all good. */
#include <ntddk.h>
#include <wdf.h>
#include <wdmsec.h>
#include <uwdf.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096

static int fail(const char *what, NTSTATUS status)
{
    const char *name = UwdfNtStatusName(status);
    fprintf(stderr, "smoke: %s: %s (0x%08x)\n", what, name ? name : "?", (unsigned)status);
    return 1;
}

static int run(const char *path)
{
    ULONG major, minor, patch;
    UwdfGetVersion(&major, &minor, &patch);
    if (major != UWDF_VERSION_MAJOR || minor != UWDF_VERSION_MINOR || patch != UWDF_VERSION_PATCH ||
        strcmp(UwdfGetVersionString(), UWDF_VERSION_STRING) != 0) {
        fprintf(stderr, "smoke: library %s, headers %s\n", UwdfGetVersionString(), UWDF_VERSION_STRING);
        return 1;
    }

    WDF_DRIVER_CONFIG config;
    WDFDRIVER driver;
    WDF_DRIVER_CONFIG_INIT(&config, WDF_NO_EVENT_CALLBACK);
    NTSTATUS status = WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &config, &driver);
    if (!NT_SUCCESS(status))
        return fail("WdfDriverCreate", status);
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    WDFDEVICE device;
    if (!init)
        return fail("WdfControlDeviceInitAllocate", STATUS_INSUFFICIENT_RESOURCES);
    status = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &device);
    if (!NT_SUCCESS(status))
        return fail("WdfDeviceCreate", status);
    WdfControlFinishInitializing(device);

    WDFIOTARGET target;
    status = WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, &target);
    if (!NT_SUCCESS(status))
        return fail("WdfIoTargetCreate", status);
    WCHAR name_buf[512];
    size_t len = strlen(path);
    if (len >= sizeof(name_buf) / sizeof(name_buf[0]))
        return fail("path too long", STATUS_NAME_TOO_LONG);
    for (size_t i = 0; i <= len; i++)
        name_buf[i] = (WCHAR)(unsigned char)path[i];
    UNICODE_STRING name;
    name.Buffer = name_buf;
    name.Length = (USHORT)(len * sizeof(WCHAR));
    name.MaximumLength = (USHORT)((len + 1) * sizeof(WCHAR));
    WDF_IO_TARGET_OPEN_PARAMS params;
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&params, &name, GENERIC_READ | GENERIC_WRITE);
    params.CreateDisposition = FILE_OPEN;
    status = WdfIoTargetOpen(target, &params);
    if (!NT_SUCCESS(status))
        return fail("WdfIoTargetOpen", status);

    static unsigned char out[BLOCK], in[BLOCK];
    for (size_t i = 0; i < BLOCK; i++)
        out[i] = (unsigned char)(i * 7 + 3);
    WDF_MEMORY_DESCRIPTOR d;
    LONGLONG offset = BLOCK; /* the second block: the file grows */
    ULONG_PTR bytes = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, out, BLOCK);
    status = WdfIoTargetSendWriteSynchronously(target, NULL, &d, &offset, NULL, &bytes);
    if (!NT_SUCCESS(status) || bytes != BLOCK)
        return fail("WdfIoTargetSendWriteSynchronously", status);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, in, BLOCK);
    bytes = 0;
    status = WdfIoTargetSendReadSynchronously(target, NULL, &d, &offset, NULL, &bytes);
    if (!NT_SUCCESS(status) || bytes != BLOCK)
        return fail("WdfIoTargetSendReadSynchronously", status);
    if (memcmp(in, out, BLOCK) != 0) {
        fprintf(stderr, "smoke: the block read back is not the block written\n");
        return 1;
    }
    printf("smoke: uwdf %s, engine %s: wrote and read back %d bytes\n", UwdfGetVersionString(),
           UwdfIoTargetGetBackendName(target), BLOCK);
    WdfObjectDelete(target);
    WdfObjectDelete(driver);

    /* What the kernel has, past the framework. */
    int fd = open(path, O_RDONLY);
    memset(in, 0, BLOCK);
    if (fd < 0 || pread(fd, in, BLOCK, BLOCK) != BLOCK || memcmp(in, out, BLOCK) != 0) {
        fprintf(stderr, "smoke: %s does not hold the block written\n", path);
        return 1;
    }
    close(fd);
    return 0;
}

int main(void)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/uwdf-smoke-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("smoke: mkstemp");
        return 1;
    }
    close(fd);
    int rc = run(path);
    unlink(path);
    return rc;
}
