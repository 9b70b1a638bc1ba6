/* The echo driver's client, as the echo sample's test application uses
 * its device, from Linux: load echo.so, make an echo device arrive, find
 * it by its interface (an arrival notification and IoGetDeviceInterfaces),
 * open it through a WDFIOTARGET, write and read back byte for byte,
 * sequential ordering of many asynchronous writes, a cancelled held
 * request, a low-power round trip with a request held across it, removal
 * with a request held, unload; the driver's callbacks checked in WDF's
 * documented order (from its KdPrint lines) and the object counts flat
 * at the end. Exit status 0 when everything matched.
 *
 * Usage: client [PATH/echo.so]   (default: this build's) */
#include <initguid.h>

#include "../common/host.h"
#include "public.h"

#include <ntstrsafe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wdmguid.h>

#ifndef ECHO_DRIVER_SO
#define ECHO_DRIVER_SO "echo.so"
#endif

#define WAIT_MS 5000
#define FOREVER_TICKS 0xFFFFFFFFu

/* ---- interface notifications ---- */

static char arrived_link[256], removed_link[256];
static volatile int arrivals, removals;

static NTSTATUS on_interface_change(PVOID NotificationStructure, PVOID Context)
{
    PDEVICE_INTERFACE_CHANGE_NOTIFICATION n = NotificationStructure;
    (void)Context;
    if (IsEqualGUID(&n->Event, &GUID_DEVICE_INTERFACE_ARRIVAL)) {
        RtlStringCbPrintfA(arrived_link, sizeof(arrived_link), "%wZ", n->SymbolicLinkName);
        __atomic_add_fetch(&arrivals, 1, __ATOMIC_SEQ_CST);
    } else if (IsEqualGUID(&n->Event, &GUID_DEVICE_INTERFACE_REMOVAL)) {
        RtlStringCbPrintfA(removed_link, sizeof(removed_link), "%wZ", n->SymbolicLinkName);
        __atomic_add_fetch(&removals, 1, __ATOMIC_SEQ_CST);
    }
    return STATUS_SUCCESS;
}

/* ---- I/O ---- */

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

static NTSTATUS echo_write(WDFIOTARGET t, const void *buf, size_t len, ULONG_PTR *done)
{
    WDF_MEMORY_DESCRIPTOR md;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, (PVOID)buf, (ULONG)len);
    return WdfIoTargetSendWriteSynchronously(t, NULL, &md, NULL, NULL, done);
}

static NTSTATUS echo_read(WDFIOTARGET t, void *buf, size_t len, ULONG_PTR *done)
{
    WDF_MEMORY_DESCRIPTOR md;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, buf, (ULONG)len);
    return WdfIoTargetSendReadSynchronously(t, NULL, &md, NULL, NULL, done);
}

static NTSTATUS set_hold_ticks(WDFIOTARGET t, ULONG ticks)
{
    WDF_MEMORY_DESCRIPTOR md;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&md, &ticks, sizeof(ticks));
    return WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_ECHO_SET_HOLD_TICKS, &md, NULL, NULL, NULL);
}

/* The device echoes back exactly the last completed write. */
static void expect_echo(WDFIOTARGET t, const unsigned char *want, size_t len)
{
    static unsigned char got[ECHO_MAX_WRITE_LENGTH + 64];
    ULONG_PTR n = 0;
    memset(got, 0xEE, len + 64);
    if (CHECK_STATUS(echo_read(t, got, len + 64, &n), STATUS_SUCCESS) && CHECK(n == len))
        CHECK(memcmp(got, want, len) == 0);
}

/* Writes and reads of several sizes, each read returning the write before
 * it byte for byte; the driver sees each once, in order. */
static void sync_round_trips(WDFIOTARGET t)
{
    static const size_t sizes[] = { 1, 100, 4096, 4097, ECHO_MAX_WRITE_LENGTH };
    static unsigned char buf[ECHO_MAX_WRITE_LENGTH];
    static char lines[2 * 5][48];
    const char *want[2 * 5];
    for (size_t i = 0; i < 5; i++) {
        ULONG_PTR n = 0;
        fill(buf, sizes[i], (unsigned)i + 1);
        CHECK_STATUS(echo_write(t, buf, sizes[i], &n), STATUS_SUCCESS);
        CHECK(n == sizes[i]);
        expect_echo(t, buf, sizes[i]);
        snprintf(lines[2 * i], sizeof(lines[0]), "io Write %zu bytes", sizes[i]);
        snprintf(lines[2 * i + 1], sizeof(lines[0]), "io Read %zu bytes", sizes[i] + 64);
        want[2 * i] = lines[2 * i];
        want[2 * i + 1] = lines[2 * i + 1];
    }
    host_trace_expect(want, 10, __FILE__, __LINE__);

    /* too long: refused, the stored data unchanged */
    static unsigned char big[ECHO_MAX_WRITE_LENGTH + 1];
    ULONG_PTR n = 1;
    CHECK_STATUS(echo_write(t, big, sizeof(big), &n), STATUS_INVALID_BUFFER_SIZE);
    CHECK(n == 0);
    expect_echo(t, buf, ECHO_MAX_WRITE_LENGTH);
    host_trace_reset();
}

/* Many writes in flight at once: the sequential queue hands them to the
 * driver one at a time, so they complete in the order they were sent and
 * the last one's data is what the device holds. */
static void async_writes_complete_in_order(WDFIOTARGET t)
{
    enum { N = 32 };
    static struct host_io io[N];
    static unsigned char bufs[N][512];
    for (int i = 0; i < N; i++) {
        fill(bufs[i], sizeof(bufs[i]) - (size_t)i, 100u + (unsigned)i);
        host_io_start(&io[i], t, HOST_IO_WRITE, bufs[i], sizeof(bufs[i]) - (size_t)i, 0);
    }
    int first = 0;
    for (int i = 0; i < N; i++) {
        host_io_wait(&io[i], WAIT_MS);
        CHECK_STATUS(io[i].status, STATUS_SUCCESS);
        CHECK(io[i].information == sizeof(bufs[i]) - (size_t)i);
        if (i == 0)
            first = io[i].order;
        CHECK(io[i].order == first + i);
        host_io_fini(&io[i]);
    }
    expect_echo(t, bufs[N - 1], sizeof(bufs[N - 1]) - (N - 1));
    host_trace_reset();
}

/* A held request is cancelable: cancelling it runs the driver's cancel
 * routine, and a cancelled write leaves the stored data alone. A request
 * queued behind it is cancelled by the framework without the driver. */
static void held_requests_cancel(WDFIOTARGET t)
{
    unsigned char before[64], w1[8], w2[16];
    fill(before, sizeof(before), 7);
    fill(w1, sizeof(w1), 8);
    fill(w2, sizeof(w2), 9);
    ULONG_PTR n;
    CHECK_STATUS(echo_write(t, before, sizeof(before), &n), STATUS_SUCCESS);
    CHECK_STATUS(set_hold_ticks(t, FOREVER_TICKS), STATUS_SUCCESS);
    host_trace_reset();

    struct host_io held, queued;
    host_io_start(&held, t, HOST_IO_WRITE, w1, sizeof(w1), 0);
    host_trace_wait("io Write 8 bytes", WAIT_MS);
    host_io_start(&queued, t, HOST_IO_WRITE, w2, sizeof(w2), 0);
    usleep(20 * 1000);
    CHECK(!held.done && !queued.done);
    WdfRequestCancelSentRequest(queued.request);
    host_io_wait(&queued, WAIT_MS);
    CHECK_STATUS(queued.status, STATUS_CANCELLED);
    CHECK(!held.done);
    WdfRequestCancelSentRequest(held.request);
    host_io_wait(&held, WAIT_MS);
    CHECK_STATUS(held.status, STATUS_CANCELLED);
    CHECK(held.information == 0);
    TRACE_EXPECT("io Write 8 bytes", "RequestCancel");
    host_io_fini(&held);
    host_io_fini(&queued);

    CHECK_STATUS(set_hold_ticks(t, 0), STATUS_SUCCESS);
    expect_echo(t, before, sizeof(before));
    host_trace_reset();
}

/* D3 and back with a write held: self-managed I/O suspends (the timer
 * stops), the queue stops (EvtIoStop: the driver keeps the request), the
 * device leaves D0; nothing completes while it is in D3; back in D0 the
 * queue resumes, self-managed I/O restarts and the timer completes it. */
static void power_cycle_with_a_held_request(WDFIOTARGET t, UWDF_DEVNODE node)
{
    enum { HOLD = 4 };
    unsigned char w[40];
    fill(w, sizeof(w), 11);
    CHECK_STATUS(set_hold_ticks(t, HOLD), STATUS_SUCCESS);
    host_trace_reset();
    struct host_io io;
    host_io_start(&io, t, HOST_IO_WRITE, w, sizeof(w), 0);
    host_trace_wait("io Write 40 bytes", WAIT_MS);
    CHECK_STATUS(UwdfDeviceSetPowerState(node, WdfPowerDeviceD3), STATUS_SUCCESS);
    /* well past the hold: a running timer would have completed it */
    usleep(10 * HOLD * ECHO_TIMER_PERIOD_MS * 1000);
    CHECK(!io.done);
    TRACE_EXPECT("io Write 40 bytes", "SelfManagedIoSuspend", "IoStop(Suspend)", "D0Exit(D3)");
    CHECK_STATUS(UwdfDeviceSetPowerState(node, WdfPowerDeviceD0), STATUS_SUCCESS);
    host_io_wait(&io, WAIT_MS);
    CHECK_STATUS(io.status, STATUS_SUCCESS);
    CHECK(io.information == sizeof(w));
    TRACE_EXPECT("D0Entry(D3)", "IoResume", "SelfManagedIoRestart");
    host_io_fini(&io);
    CHECK_STATUS(set_hold_ticks(t, 0), STATUS_SUCCESS);
    expect_echo(t, w, sizeof(w));
    host_trace_reset();
}

int main(int argc, char **argv)
{
    const char *so = argc > 1 ? argv[1] : ECHO_DRIVER_SO;
    host_init(NULL, "echo: ");

    PVOID notification = NULL;
    CHECK_STATUS(IoRegisterPlugPlayNotification(EventCategoryDeviceInterfaceChange, 0,
                                                (PVOID)&GUID_DEVINTERFACE_UWDF_ECHO,
                                                WdfDriverWdmGetDriverObject(WdfGetDriver()),
                                                on_interface_change, NULL, &notification),
                 STATUS_SUCCESS);
    struct host_counts before;
    host_counts_take(&before);

    /* load: DriverEntry only, no device yet */
    WDFDRIVER driver = NULL;
    if (!CHECK_STATUS(UwdfLoadDriverFromFile(so, "uwdfecho", &driver), STATUS_SUCCESS))
        return 1;
    TRACE_EXPECT("DriverEntry(\\Registry\\Machine\\System\\CurrentControlSet\\Services\\uwdfecho)");

    /* arrival: EvtDriverDeviceAdd, then the start sequence, then the
     * interface is enabled */
    UWDF_DEVICE_DESCRIPTION desc;
    UWDF_DEVICE_DESCRIPTION_INIT(&desc, "root\\uwdfecho", "uwdfecho");
    UWDF_DEVNODE node = NULL;
    if (!CHECK_STATUS(UwdfDeviceArrive(&desc, &node), STATUS_SUCCESS))
        return 1;
    TRACE_EXPECT("DeviceAdd", "D0Entry(D3Final)", "SelfManagedIoInit");
    char link[256];
    host_first_interface(&GUID_DEVINTERFACE_UWDF_ECHO, link, sizeof(link));
    CHECK(arrivals == 1 && strcmp(arrived_link, link) == 0);

    WDFIOTARGET t = NULL;
    if (!CHECK_STATUS(host_open(link, &t), STATUS_SUCCESS))
        return 1;
    {
        /* before any write there is nothing to echo */
        char b[16];
        ULONG_PTR n = 1;
        CHECK_STATUS(echo_read(t, b, sizeof(b), &n), STATUS_SUCCESS);
        CHECK(n == 0);
        host_trace_reset();
    }
    sync_round_trips(t);
    async_writes_complete_in_order(t);
    held_requests_cancel(t);
    power_cycle_with_a_held_request(t, node);

    /* removal with a read held: the queue stops (the driver keeps it),
     * the device leaves D0, then the purge cancels it (its cancel routine)
     * before self-managed I/O is flushed and cleaned up */
    CHECK_STATUS(set_hold_ticks(t, FOREVER_TICKS), STATUS_SUCCESS);
    host_trace_reset();
    unsigned char r[40];
    struct host_io io;
    host_io_start(&io, t, HOST_IO_READ, r, sizeof(r), 0);
    host_trace_wait("io Read 40 bytes", WAIT_MS);
    CHECK_STATUS(UwdfDeviceRemove(node), STATUS_SUCCESS);
    host_io_wait(&io, WAIT_MS);
    CHECK_STATUS(io.status, STATUS_CANCELLED);
    host_io_fini(&io);
    TRACE_EXPECT("io Read 40 bytes", "SelfManagedIoSuspend", "IoStop(Suspend)", "D0Exit(D3Final)",
                 "RequestCancel", "SelfManagedIoFlush", "SelfManagedIoCleanup");
    CHECK(removals == 1 && strcmp(removed_link, link) == 0);
    /* the stack is gone: the target's I/O fails */
    {
        char b[8];
        ULONG_PTR n;
        CHECK(!NT_SUCCESS(echo_read(t, b, sizeof(b), &n)));
    }
    WdfObjectDelete(t);
    host_first_interface(&GUID_DEVINTERFACE_UWDF_ECHO, link, sizeof(link));
    CHECK(link[0] == '\0');

    CHECK_STATUS(UwdfUnloadDriver(driver), STATUS_SUCCESS);
    TRACE_EXPECT("DriverUnload", "DriverCleanup");
    COUNTS_FLAT(&before);

    CHECK_STATUS(IoUnregisterPlugPlayNotificationEx(notification), STATUS_SUCCESS);
    host_fini();
    if (host_failures()) {
        fprintf(stderr, "echo client: %d check(s) failed\n", host_failures());
        return 1;
    }
    printf("echo client: all checks passed\n");
    return 0;
}
