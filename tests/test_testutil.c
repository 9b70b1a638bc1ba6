/* The test library's own tests: its assertions fail when they should, and
 * say why with status names; its environment removes what it made and
 * makes loop devices of the sector size asked for; its forwarder passes
 * requests through and counts them; its stderr capture, text check,
 * name swapper and aborting child do what they say.
 *
 * An assertion that must fail runs in a suite of its own inside the test
 * (Check allows one level of nesting), forked, so its failure is a result
 * to read, not this test's end. Those tests come first and touch no engine:
 * under CK_FORK=no (valgrind) the process forks before any thread of the
 * library exists. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK 4096u
#define FILE_SIZE (16 * BLK)
#define SEED 1600u

/* ---- assertions that must fail ---- */

START_TEST(inner_status_differs)
{
    NTSTATUS got = STATUS_CANCELLED;
    ck_assert_status(got, STATUS_IO_TIMEOUT);
}
END_TEST

START_TEST(inner_status_equal)
{
    NTSTATUS got = STATUS_PENDING;
    ck_assert_status_ne(got, STATUS_PENDING);
}
END_TEST

START_TEST(inner_status_msg)
{
    NTSTATUS got = STATUS_ACCESS_DENIED;
    ck_assert_status_msg(got, STATUS_SUCCESS, "engine %s, round %d", "io_uring", 3);
}
END_TEST

START_TEST(inner_nt_success)
{
    ck_assert_nt_success(STATUS_INSUFFICIENT_RESOURCES);
}
END_TEST

START_TEST(inner_nt_failure)
{
    ck_assert_nt_failure(STATUS_SUCCESS);
}
END_TEST

START_TEST(inner_nt_failure_of_success)
{
    ck_assert_nt_failure(STATUS_OBJECT_NAME_EXISTS); /* informational: a success */
}
END_TEST

/* The same assertions where they hold. */
START_TEST(inner_all_hold)
{
    ck_assert_status(STATUS_IO_TIMEOUT, STATUS_IO_TIMEOUT);
    ck_assert_status_ne(STATUS_CANCELLED, STATUS_IO_TIMEOUT);
    ck_assert_status_msg(STATUS_SUCCESS, STATUS_SUCCESS, "engine %s", "libaio");
    ck_assert_nt_success(STATUS_PENDING);
    ck_assert_nt_failure(STATUS_IO_TIMEOUT);
    ck_assert_nt_failure(STATUS_BUFFER_OVERFLOW); /* a warning is no success either */
}
END_TEST

/* Runs test alone in a forked inner suite; returns its failure message
 * (malloc'd), or NULL when it passed. */
static char *run_inner(const TTest *test)
{
    Suite *s = suite_create("inner");
    TCase *tc = tcase_create("inner_case");
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    /* By name: CK_RUN_SUITE / CK_RUN_CASE, set for the outer run, must not
     * filter the inner one. */
    srunner_run(sr, "inner", "inner_case", CK_SILENT);
    ck_assert_int_eq(srunner_ntests_run(sr), 1);
    char *msg = NULL;
    if (srunner_ntests_failed(sr) == 1) {
        TestResult **failures = srunner_failures(sr);
        ck_assert_int_eq(tr_rtype(failures[0]), CK_FAILURE);
        msg = strdup(tr_msg(failures[0]));
        free(failures);
    }
    srunner_free(sr);
    return msg;
}

/* The failure message names both statuses, with their values, and the
 * expression. */
static void expect_failure_naming(const TTest *test, const char *const parts[])
{
    char *msg = run_inner(test);
    ck_assert_msg(msg != NULL, "%s passed", test->name);
    for (int i = 0; parts[i]; i++)
        ck_assert_msg(strstr(msg, parts[i]) != NULL, "%s: \"%s\" not in the message: %s", test->name, parts[i], msg);
    printf("testutil: %s fails with: %s\n", test->name, msg);
    free(msg);
}

START_TEST(status_assertions_fail_and_name_both_statuses)
{
    expect_failure_naming(inner_status_differs,
                          (const char *const[]){ "got == STATUS_IO_TIMEOUT", "STATUS_CANCELLED (0xC0000120)",
                                                 "STATUS_IO_TIMEOUT (0xC00000B5)", NULL });
    expect_failure_naming(inner_status_equal, (const char *const[]){ "got != STATUS_PENDING",
                                                                     "STATUS_PENDING (0x00000103)", NULL });
    expect_failure_naming(inner_status_msg,
                          (const char *const[]){ "engine io_uring, round 3", "STATUS_ACCESS_DENIED (0xC0000022)",
                                                 "STATUS_SUCCESS (0x00000000)", NULL });
    expect_failure_naming(inner_nt_success, (const char *const[]){ "NT_SUCCESS(STATUS_INSUFFICIENT_RESOURCES)",
                                                                   "STATUS_INSUFFICIENT_RESOURCES (0xC000009A)",
                                                                   NULL });
    expect_failure_naming(inner_nt_failure, (const char *const[]){ "!NT_SUCCESS(STATUS_SUCCESS)",
                                                                   "STATUS_SUCCESS (0x00000000)", NULL });
    expect_failure_naming(inner_nt_failure_of_success, (const char *const[]){ "STATUS_OBJECT_NAME_EXISTS", NULL });
    char *msg = run_inner(inner_all_hold);
    ck_assert_msg(msg == NULL, "held assertions failed: %s", msg);
}
END_TEST

/* tu_status_name: the library's name, else include/ntstatus.h's (a status
 * the library has no name for), else "(no name)"; never NULL. */
START_TEST(status_names_from_the_library_then_the_header)
{
    ck_assert_str_eq(tu_status_name(STATUS_IO_TIMEOUT), "STATUS_IO_TIMEOUT");
    ck_assert_str_eq(tu_status_name(STATUS_NO_MORE_FILES), "STATUS_NO_MORE_FILES");
    ck_assert_str_eq(tu_status_name(STATUS_REPARSE), "STATUS_REPARSE");
    ck_assert_str_eq(tu_status_name((NTSTATUS)0xE0DEAD01), "(no name)");
}
END_TEST

/* ---- the environment ---- */

/* An engine asked for by name and a target on another engine: tu_env_target
 * fails, naming both. In the inner suite: the environment's directory is
 * then left to tu_main's run directory. */
START_TEST(inner_engine_differs)
{
    struct tu_env e;
    tu_env_init_engine(&e, "libaio");
    setenv("UWDF_BACKEND", "io_uring", 1);
    tu_env_open_file(&e, FILE_SIZE, SEED, GENERIC_READ, 0);
    tu_env_fini(&e);
}
END_TEST

START_TEST(env_target_on_another_engine_fails)
{
    expect_failure_naming(inner_engine_differs, (const char *const[]){ "\"io_uring\"", "\"libaio\"", NULL });
}
END_TEST

/* Where descriptor fd leads ("" when it is closed). */
static void fd_link(int fd, char *out, size_t size)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, out, size - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* tu_env_fini deletes the driver, closes the FIFO's writer and removes the
 * directory with the files inside; a target opened through tu_env runs on
 * the engine asked for. */
START_TEST(env_fini_removes_what_the_env_made)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    if (_i == 0) /* libaio refuses FIFOs */
        ck_assert_str_eq(UwdfIoTargetGetBackendName(tu_env_open_fifo(&e)), "io_uring");
    else
        tu_env_fifo(&e);
    ck_assert_int_ge(e.fifo_fd, 0);
    int fifo_fd = e.fifo_fd;
    char fifo[4096], now[4096];
    fd_link(fifo_fd, fifo, sizeof(fifo));
    ck_assert_str_eq(fifo, e.path);
    char *file = tu_env_file(&e, "data", FILE_SIZE, SEED);
    WDFIOTARGET t = tu_env_target(&e, file, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), tu_backend_names[_i]);
    void *buf = tu_env_memory(&e, BLK);
    ck_assert_ptr_eq(buf, e.buf);
    char *dir = strdup(e.dir);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    tu_env_fini(&e);
    ck_assert_ptr_null(e.driver);
    ck_assert_int_eq(e.fifo_fd, -1);
    ck_assert_int_eq(stat(dir, &st), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(WdfGetDriver());
    fd_link(fifo_fd, now, sizeof(now));
    /* Closed, or the number reused; open, it would still lead to the FIFO
     * (" (deleted)" now). */
    ck_assert_msg(strncmp(now, fifo, strlen(fifo)) != 0, "the FIFO's writer is still open: %s", now);
    free(dir);
    free(file);
}
END_TEST

/* tu_env_loop makes a loop device of the logical sector size asked for (0:
 * 512), and tu_env_fini detaches it. Root only. */
START_TEST(env_loop_has_the_sector_size_asked_for)
{
    static const unsigned sizes[] = { 0, 512, 4096 };
    if (!tu_root())
        return;
    struct tu_env e;
    tu_env_init_backend(&e, 0);
    char *backing = tu_env_file(&e, "disk", 1 << 20, 0);
    const char *dev[3];
    for (int i = 0; i < 3; i++) {
        dev[i] = tu_env_loop(&e, backing, sizes[i]);
        struct tu_blockdev_info b = tu_blockdev_query(dev[i]);
        ck_assert_uint_eq(b.logical, sizes[i] ? sizes[i] : 512);
        ck_assert_uint_eq(b.size, 1 << 20);
    }
    /* /sys/block/loopN/loop exists while loopN is attached. */
    char attached[3][128];
    struct stat st;
    for (int i = 0; i < 3; i++) {
        ck_assert(strncmp(dev[i], "/dev/", 5) == 0);
        snprintf(attached[i], sizeof(attached[i]), "/sys/block/%s/loop", dev[i] + 5);
        ck_assert_int_eq(stat(attached[i], &st), 0);
    }
    /* tu_loop_attach_read_only: the kernel's read-only flag is set. */
    char *ro = tu_loop_attach_read_only(backing);
    ck_assert_ptr_nonnull(ro);
    char flag[128];
    snprintf(flag, sizeof(flag), "/sys/block/%s/ro", ro + 5);
    ck_assert(tu_text_is(flag, "1\n"));
    tu_loop_detach(ro);
    free(ro);
    tu_env_fini(&e);
    /* LOOP_CLR_FD on a device someone still holds open (udev probing it after
     * the attach, slow on a loaded machine) detaches it at that last close. */
    for (int i = 0; i < 3; i++) {
        for (int waited = 0; stat(attached[i], &st) == 0 && waited < 10000; waited += 10)
            tu_sleep_ms(10);
        ck_assert_msg(stat(attached[i], &st) != 0, "%s still there 10 s after tu_env_fini", attached[i]);
    }
    free(backing);
}
END_TEST

/* ---- odds and ends ---- */

/* What goes to stderr between tu_stderr_begin and _end is read back, so
 * far and in all; after the end, stderr is the test's again. */
START_TEST(stderr_capture_reads_so_far_and_all)
{
    tu_stderr_begin();
    fprintf(stderr, "one\n");
    char *so_far = tu_stderr_read();
    ck_assert_str_eq(so_far, "one\n");
    fprintf(stderr, "two");
    char *all = tu_stderr_end();
    ck_assert_str_eq(all, "one\ntwo");
    ck_assert_ptr_null(tu_stderr_end()); /* nothing captured any more */
    free(so_far);
    free(all);
}
END_TEST

/* tu_text_is holds a file to the whole text; tu_swapper makes every
 * exchange of a cycle, cycle after cycle, and counts the cycles: a, b, c
 * exchanged a-b then b-c rotate their texts by one a cycle. */
START_TEST(text_is_whole_text_and_swapper_rotates_names)
{
    static const char *const texts[3] = { "x\n", "y\n", "z\n" };
    struct tu_env e;
    tu_env_init(&e);
    char *names[3] = { tu_env_path(&e, "a"), tu_env_path(&e, "b"), tu_env_path(&e, "c") };
    char *missing = tu_env_path(&e, "missing");
    for (int i = 0; i < 3; i++)
        tu_write_text(names[i], texts[i]);
    ck_assert(tu_text_is(names[0], "x\n"));
    ck_assert(!tu_text_is(names[0], "x"));
    ck_assert(!tu_text_is(names[0], "x\nz"));
    ck_assert(!tu_text_is(missing, ""));
    unsigned long shift = 0; /* cycles so far, mod 3 */
    for (unsigned long least = 1; least <= 4; least++) {
        struct tu_swapper sw = { .from = { names[0], names[1] }, .to = { names[1], names[2] }, .steps = 2 };
        tu_swapper_start(&sw);
        while (atomic_load(&sw.swaps) < least && sw.err == 0)
            sched_yield();
        tu_swapper_stop(&sw);
        ck_assert_int_eq(sw.err, 0);
        unsigned long k = atomic_load(&sw.swaps);
        shift = (shift + k) % 3;
        for (int i = 0; i < 3; i++)
            ck_assert_msg(tu_text_is(names[i], texts[(i + shift) % 3]), "%s after %lu more cycles", names[i], k);
    }
    for (int i = 0; i < 3; i++)
        free(names[i]);
    free(missing);
    tu_env_fini(&e);
}
END_TEST

static void write_and_abort(int fd)
{
    if (write(fd, "bye", 3) != 3)
        _exit(1);
    abort();
}

/* tu_child_must_abort gives what the aborting child wrote. */
START_TEST(child_must_abort_returns_what_the_child_wrote)
{
    char report[64];
    tu_child_must_abort(write_and_abort, report, sizeof(report));
    ck_assert_str_eq(report, "bye");
}
END_TEST

/* ---- the forwarder ---- */

/* A read sent to a forwarder over a file returns the file's data, and the
 * forwarder counts it seen and completed; a read past the end comes back
 * with the file's status, through the forwarder. */
START_TEST(forwarder_passes_requests_through_and_counts_them)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    char *file = tu_env_file(&e, "data", FILE_SIZE, SEED);
    WDFDEVICE fwd = tu_make_forwarder(e.driver, "\\Device\\tuForwarderTest", WdfDeviceIoDirect, file,
                                      FILE_NO_INTERMEDIATE_BUFFERING);
    TU_FORWARDER *f = tu_forwarder_of(fwd);
    WDFIOTARGET t;
    ck_assert_status(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_SUCCESS);
    tu_open_by_name(t, "\\Device\\tuForwarderTest", 0);
    void *buf = tu_env_memory(&e, BLK);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, e.mem, NULL);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(10));
    LONGLONG off = 2 * BLK;
    ULONG_PTR bytes = 0;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, &o, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, BLK);
    ck_assert(tu_pattern_matches(buf, BLK, SEED, 2 * BLK));
    off = FILE_SIZE;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, &o, &bytes), STATUS_END_OF_FILE);
    unsigned long seen = atomic_load(&f->seen), completed = atomic_load(&f->completed),
                  refused = atomic_load(&f->refused);
    ck_assert_uint_eq(seen, 2);
    ck_assert_uint_eq(completed, 2);
    ck_assert_uint_eq(refused, 0);
    free(file);
    tu_env_fini(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("testutil");
    /* First, and without the fixture: no library thread before the forks. */
    TCase *tc = tcase_create("assertions_fail");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, status_assertions_fail_and_name_both_statuses);
    tcase_add_test(tc, status_names_from_the_library_then_the_header);
    tcase_add_test(tc, env_target_on_another_engine_fails);
    tcase_add_test(tc, child_must_abort_returns_what_the_child_wrote);
    suite_add_tcase(s, tc);
    tc = tu_tcase(s, "environment", 60);
    tcase_add_loop_test(tc, env_fini_removes_what_the_env_made, 0, TU_BACKENDS);
    tcase_add_test(tc, env_loop_has_the_sector_size_asked_for);
    tcase_add_loop_test(tc, forwarder_passes_requests_through_and_counts_them, 0, TU_BACKENDS);
    tcase_add_test(tc, stderr_capture_reads_so_far_and_all);
    tcase_add_test(tc, text_is_whole_text_and_swapper_rotates_names);
    return tu_main_root(s, "test_testutil", "the loop-device case was skipped");
}
