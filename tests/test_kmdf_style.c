/* The compile test of the KMDF-style headers: tests/kmdf/ is a small driver
 * written as Windows drivers are (SAL, role typedefs, alloc_text and
 * code_seg pragmas, PAGED_CODE, KdPrint((...)), DEFINE_GUID in a header
 * with and without INITGUID), built with nothing but -Wall -Wextra -Werror
 * (Makefile.am, KMDF_STYLE_CFLAGS). This program links its three units and
 * checks what the headers promise at run time: one GUID at one address, and
 * the driver loading, ticking and answering. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <wdmguid.h>

#include "kmdf/sample.h"

/* The sample's GUID, spelt out independently of the header. */
static const GUID sample_guid = { 0x6e3c5d5a, 0x9a44, 0x4c43, { 0xa0, 0xb5, 0x2b, 0x7e, 0x4f, 0x0c, 0x1d, 0x11 } };
#define SAMPLE_GUID_TEXT "{6E3C5D5A-9A44-4C43-A0B5-2B7E4F0C1D11}"
#define ARRIVAL_GUID_TEXT "{CB3A4004-46F0-11D0-B08F-00609713053F}"
#define PATIENCE_MS 5000

static void guid_text(const GUID *g, char *out, size_t len)
{
    UNICODE_STRING us;
    ck_assert_status(RtlStringFromGUID(g, &us), STATUS_SUCCESS);
    ck_assert_status(RtlStringCbPrintfA(out, len, "%wZ", &us), STATUS_SUCCESS);
    RtlFreeUnicodeString(&us);
}

START_TEST(a_guid_has_one_definition_and_one_address)
{
    /* defined by driver.c (INITGUID) and queue.c (initguid.h), declared by
     * device.c and here */
    const GUID *d = SampleGuidSeenByDriverUnit();
    ck_assert_ptr_eq(d, SampleGuidSeenByDeviceUnit());
    ck_assert_ptr_eq(d, SampleGuidSeenByQueueUnit());
    ck_assert_ptr_eq(d, &GUID_DEVINTERFACE_UWDF_SAMPLE);
    ck_assert(IsEqualGUID(d, &sample_guid));
    char text[64];
    guid_text(d, text, sizeof(text));
    ck_assert_str_eq(text, SAMPLE_GUID_TEXT);
    /* a wdmguid.h GUID defined in queue.c, declared in device.c */
    ck_assert_ptr_eq(SampleArrivalGuidSeenByDeviceUnit(), SampleArrivalGuidSeenByQueueUnit());
    guid_text(SampleArrivalGuidSeenByQueueUnit(), text, sizeof(text));
    ck_assert_str_eq(text, ARRIVAL_GUID_TEXT);
    ck_assert(IsEqualGUID(SampleArrivalGuidSeenByQueueUnit(), &GUID_DEVICE_INTERFACE_ARRIVAL));
}
END_TEST

static ULONG sample_ticks(WDFIOTARGET t)
{
    ULONG ticks = 0;
    ULONG_PTR got = 0;
    WDF_MEMORY_DESCRIPTOR out;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out, &ticks, sizeof(ticks));
    ck_assert_status(WdfIoTargetSendIoctlSynchronously(t, NULL, IOCTL_SAMPLE_TICKS, NULL, &out, NULL, &got),
                     STATUS_SUCCESS);
    ck_assert_uint_eq(got, sizeof(ticks));
    return ticks;
}

START_TEST(the_sample_driver_loads_ticks_and_answers)
{
    UNICODE_STRING reg;
    RtlInitUnicodeString(&reg, L"\\Registry\\Machine\\System\\CurrentControlSet\\Services\\KmdfSample");
    memset(&SampleState, 0, sizeof(SampleState));
    ck_assert_status(DriverEntry(NULL, &reg), STATUS_SUCCESS);
    WDFDRIVER driver = WdfGetDriver();
    ck_assert_ptr_nonnull(driver);

    /* an application's view: a control device of its own, a target on the
     * sample's device */
    WDFDEVICE app;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    ck_assert_status(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &app), STATUS_SUCCESS);
    WdfControlFinishInitializing(app);
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(app, "\\Device\\UwdfKmdfSample", GENERIC_READ, FILE_OPEN, 0, &t),
                     STATUS_SUCCESS);

    /* the periodic timer ticks (and queues the work item) */
    double end = tu_now_ms() + PATIENCE_MS;
    while (sample_ticks(t) < 3 && tu_now_ms() < end)
        tu_sleep_ms(SAMPLE_TIMER_PERIOD_MS);
    ck_assert_uint_ge(sample_ticks(t), 3);
    while (!InterlockedOr(&SampleState.PagedCodeRanAtPassive, 0) && tu_now_ms() < end)
        tu_sleep_ms(1);
    ck_assert(InterlockedOr(&SampleState.PagedCodeRanAtPassive, 0));

    /* a read: the GUID as text, cut to the buffer */
    char buf[64] = { 0 };
    ULONG_PTR got = 0;
    WDF_MEMORY_DESCRIPTOR out;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out, buf, sizeof(buf) - 1);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &out, NULL, NULL, &got), STATUS_SUCCESS);
    ck_assert_str_eq(buf, SAMPLE_GUID_TEXT " sample");
    ck_assert_uint_eq(got, strlen(SAMPLE_GUID_TEXT " sample"));
    memset(buf, 0, sizeof(buf));
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&out, buf, 5);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &out, NULL, NULL, &got), STATUS_SUCCESS);
    ck_assert_str_eq(buf, "{6E3C");

    /* unloading: the queue context's pool goes with the queue, the
     * driver's cleanup runs */
    WdfObjectDelete(driver);
    ck_assert(SampleState.CleanedUp);
    ck_assert_int_eq(SampleState.QueueContextsDestroyed, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kmdf_style");
    TCase *tc = tu_tcase(s, "kmdf style", 30);
    tcase_add_test(tc, a_guid_has_one_definition_and_one_address);
    tcase_add_test(tc, the_sample_driver_loads_ticks_and_answers);
    return tu_run_suite(s);
}
