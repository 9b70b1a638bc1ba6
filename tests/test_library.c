/* The library as a program meets it: its release (UwdfGetVersion and the
 * UWDF_VERSION_* macros), its log (UwdfSetLogCallback, the stderr default)
 * and the engine chosen through the API (UwdfSetDefaultBackend). */
#include "testutil.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- release ---- */

START_TEST(version_runtime_matches_the_headers)
{
    ULONG major = 99, minor = 99, patch = 99;
    UwdfGetVersion(&major, &minor, &patch);
    ck_assert_uint_eq(major, UWDF_VERSION_MAJOR);
    ck_assert_uint_eq(minor, UWDF_VERSION_MINOR);
    ck_assert_uint_eq(patch, UWDF_VERSION_PATCH);
    char text[64];
    snprintf(text, sizeof(text), "%lu.%lu.%lu", (unsigned long)major, (unsigned long)minor,
             (unsigned long)patch);
    ck_assert_str_eq(UwdfGetVersionString(), text);
    ck_assert_str_eq(UWDF_VERSION_STRING, text);
    /* configure's release, the one the tarball is named after */
    ck_assert_str_eq(UwdfGetVersionString(), PACKAGE_VERSION);
    ck_assert_int_eq(UWDF_VERSION, UWDF_VERSION_NUMBER(UWDF_VERSION_MAJOR, UWDF_VERSION_MINOR, UWDF_VERSION_PATCH));
    ck_assert_int_gt(UWDF_VERSION_NUMBER(0, 2, 0), UWDF_VERSION_NUMBER(0, 1, 9));
    ck_assert_int_gt(UWDF_VERSION_NUMBER(1, 0, 0), UWDF_VERSION_NUMBER(0, 255, 255));
}
END_TEST

START_TEST(version_accepts_null_arguments)
{
    ULONG minor = 99;
    UwdfGetVersion(NULL, &minor, NULL);
    ck_assert_uint_eq(minor, UWDF_VERSION_MINOR);
    UwdfGetVersion(NULL, NULL, NULL);
}
END_TEST

/* ---- log ---- */

#define LOG_MAX 16
static struct {
    int count;
    UWDF_LOG_LEVEL level[LOG_MAX];
    char *message[LOG_MAX];
    void *context;
} logged;

static VOID record_log(UWDF_LOG_LEVEL Level, PCSTR Message, PVOID Context)
{
    if (logged.count < LOG_MAX) {
        logged.level[logged.count] = Level;
        logged.message[logged.count] = strdup(Message);
    }
    logged.count++;
    logged.context = Context;
}

static void log_setup(void)
{
    tu_fixture_setup();
    memset(&logged, 0, sizeof(logged));
}

static void log_teardown(void)
{
    UwdfSetLogCallback(NULL, NULL);
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 0);
    for (int i = 0; i < logged.count && i < LOG_MAX; i++)
        free(logged.message[i]);
    memset(&logged, 0, sizeof(logged));
    tu_fixture_teardown();
}

START_TEST(log_callback_receives_a_library_warning)
{
    int tag;
    UwdfSetVerifier(FALSE);
    UwdfSetLogCallback(record_log, &tag);
    WdfVerifierDbgBreakPoint(); /* verifier off: a warning, no break */
    ck_assert_int_eq(logged.count, 1);
    ck_assert_int_eq(logged.level[0], UwdfLogWarning);
    ck_assert_str_eq(logged.message[0], "WdfVerifierDbgBreakPoint: no break (the verifier is off)");
    ck_assert_ptr_eq(logged.context, &tag);
}
END_TEST

START_TEST(log_callback_receives_debug_print_text_as_written)
{
    UwdfSetLogCallback(record_log, NULL);
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 0);
    DbgPrint("filtered out %d\n", 1);
    ck_assert_int_eq(logged.count, 0);
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 0xF);
    DbgPrint("driver says %d", 42);
    DbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_ERROR_LEVEL, "%s\n", "and ends the line");
    ck_assert_int_eq(logged.count, 2);
    ck_assert_int_eq(logged.level[0], UwdfLogDebugPrint);
    ck_assert_str_eq(logged.message[0], "driver says 42");
    ck_assert_int_eq(logged.level[1], UwdfLogDebugPrint);
    ck_assert_str_eq(logged.message[1], "and ends the line\n");
}
END_TEST

START_TEST(log_callback_receives_a_verifier_finding)
{
    UwdfSetVerifier(FALSE);
    UwdfSetLogCallback(record_log, NULL);
    UwdfPagedCodeViolation("pageable.c", 17, DISPATCH_LEVEL);
    ck_assert_int_eq(logged.count, 1);
    ck_assert_int_eq(logged.level[0], UwdfLogVerifier);
    ck_assert_str_eq(logged.message[0], "PAGED_CODE at pageable.c:17: pageable code runs at IRQL 2, above APC_LEVEL");
}
END_TEST

START_TEST(log_callback_receives_a_long_line_whole)
{
    size_t n = 5000;
    char *file = malloc(n + 1);
    ck_assert_ptr_nonnull(file);
    memset(file, 'f', n);
    file[n] = '\0';
    UwdfSetVerifier(FALSE);
    UwdfSetLogCallback(record_log, NULL);
    UwdfPagedCodeViolation(file, 3, DISPATCH_LEVEL);
    ck_assert_int_eq(logged.count, 1);
    const char *rest = ":3: pageable code runs at IRQL 2, above APC_LEVEL";
    ck_assert_uint_eq(strlen(logged.message[0]), strlen("PAGED_CODE at ") + n + strlen(rest));
    ck_assert(strncmp(logged.message[0], "PAGED_CODE at ", 14) == 0);
    ck_assert(strncmp(logged.message[0] + 14, file, n) == 0);
    ck_assert_str_eq(logged.message[0] + 14 + n, rest);
    free(file);
}
END_TEST

/* Logs a warning and a DbgPrint line in two parts with stderr going to a
 * file; returns what was written there (malloc'd). */
static char *stderr_of_a_warning_and_a_debug_print(void)
{
    tu_stderr_begin();
    UwdfSetVerifier(FALSE);
    UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 0xF);
    WdfVerifierDbgBreakPoint();
    DbgPrint("part of a line, ");
    DbgPrint("the rest\n");
    return tu_stderr_end();
}

START_TEST(log_default_writes_prefixed_lines_to_stderr)
{
    char *text = stderr_of_a_warning_and_a_debug_print();
    ck_assert_str_eq(text, "uwdf: WdfVerifierDbgBreakPoint: no break (the verifier is off)\n"
                           "part of a line, the rest\n");
    free(text);
}
END_TEST

START_TEST(log_callback_null_restores_the_default)
{
    UwdfSetLogCallback(record_log, NULL);
    UwdfSetLogCallback(NULL, NULL);
    char *text = stderr_of_a_warning_and_a_debug_print();
    ck_assert_int_eq(logged.count, 0);
    ck_assert(strstr(text, "uwdf: WdfVerifierDbgBreakPoint: no break") == text);
    free(text);
}
END_TEST

static int bugcheck_log_fd = -1;

static VOID log_to_pipe(UWDF_LOG_LEVEL Level, PCSTR Message, PVOID Context)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "%d|%s\n", (int)Level, Message);
    if (write(bugcheck_log_fd, line, (size_t)n) != n)
        _exit(3);
}

static void bug_check_logging_to(int fd)
{
    bugcheck_log_fd = fd;
    UwdfSetBugCheckCallback(NULL, NULL);
    UwdfSetLogCallback(log_to_pipe, NULL);
    KeBugCheckEx(IRQL_NOT_LESS_OR_EQUAL, 1, 2, 3, 4);
}

/* A bug check without a bug-check callback reports through the log, then
 * aborts: checked in a child, which the report must reach before it dies. */
START_TEST(log_bug_check_report_reaches_the_callback_before_abort)
{
    char buf[2048];
    tu_child_must_abort(bug_check_logging_to, buf, sizeof(buf));
    ck_assert_str_eq(buf, "0|*** BUG CHECK 0xA (IRQL_NOT_LESS_OR_EQUAL) (0x1, 0x2, 0x3, 0x4)\n"
                          "0|*** KeBugCheckEx called by the driver\n");
}
END_TEST

/* ---- the engine chosen through the API ---- */

static struct tu_env env;
static char *file;

static void backend_setup(void)
{
    tu_fixture_setup();
    unsetenv("UWDF_BACKEND");
    tu_env_init(&env);
    file = tu_env_file(&env, "data", 8192, 7);
}

static void backend_teardown(void)
{
    UwdfSetDefaultBackend(NULL);
    unsetenv("UWDF_BACKEND");
    free(file);
    file = NULL;
    tu_env_fini(&env);
    tu_fixture_teardown();
}

static WDFIOTARGET open_target(void)
{
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(env.device, file, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, 0, &t),
                     STATUS_SUCCESS);
    return t;
}

/* Reads the file's first 4 KiB through t; whether the pattern arrived. */
static bool read_moves_data(WDFIOTARGET t)
{
    static char buf[4096];
    memset(buf, 0, sizeof(buf));
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, sizeof(buf));
    LONGLONG off = 0;
    ULONG_PTR bytes = 0;
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, sizeof(buf));
    return tu_pattern_matches(buf, sizeof(buf), 7, 0);
}

static const char *const engines[] = { "io_uring", "libaio", "null" };

START_TEST(default_backend_chosen_through_the_api)
{
    const char *name = engines[_i];
    ck_assert_status(UwdfSetDefaultBackend(name), STATUS_SUCCESS);
    WDFIOTARGET t = open_target();
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), name);
    /* The kernel engines move the data; the null engine moves none. */
    ck_assert(read_moves_data(t) == (strcmp(name, "null") != 0));
    WdfObjectDelete(t);
}
END_TEST

START_TEST(default_backend_api_comes_before_the_environment)
{
    setenv("UWDF_BACKEND", "libaio", 1);
    ck_assert_status(UwdfSetDefaultBackend("null"), STATUS_SUCCESS);
    WDFIOTARGET t = open_target();
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), "null");
    WdfObjectDelete(t);
    ck_assert_status(UwdfSetDefaultBackend(NULL), STATUS_SUCCESS);
    t = open_target();
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), "libaio");
    WdfObjectDelete(t);
}
END_TEST

START_TEST(default_backend_null_restores_the_default)
{
    WDFIOTARGET t = open_target();
    const char *usual = UwdfIoTargetGetBackendName(t);
    ck_assert(strcmp(usual, "io_uring") == 0 || strcmp(usual, "libaio") == 0);
    char *usual_copy = strdup(usual);
    WdfObjectDelete(t);
    ck_assert_status(UwdfSetDefaultBackend("null"), STATUS_SUCCESS);
    ck_assert_status(UwdfSetDefaultBackend(NULL), STATUS_SUCCESS);
    t = open_target();
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), usual_copy);
    ck_assert(read_moves_data(t));
    WdfObjectDelete(t);
    free(usual_copy);
}
END_TEST

START_TEST(default_backend_unknown_name_is_refused_and_changes_nothing)
{
    ck_assert_status(UwdfSetDefaultBackend("null"), STATUS_SUCCESS);
    ck_assert_status(UwdfSetDefaultBackend("spdk"), STATUS_INVALID_PARAMETER);
    ck_assert_status(UwdfSetDefaultBackend(""), STATUS_INVALID_PARAMETER);
    ck_assert_status(UwdfSetDefaultBackend("IO_URING"), STATUS_INVALID_PARAMETER);
    WDFIOTARGET t = open_target();
    ck_assert_str_eq(UwdfIoTargetGetBackendName(t), "null");
    WdfObjectDelete(t);
}
END_TEST

START_TEST(default_backend_change_leaves_open_targets_on_their_engine)
{
    ck_assert_status(UwdfSetDefaultBackend("null"), STATUS_SUCCESS);
    WDFIOTARGET a = open_target();
    ck_assert_status(UwdfSetDefaultBackend("libaio"), STATUS_SUCCESS);
    WDFIOTARGET b = open_target();
    ck_assert_str_eq(UwdfIoTargetGetBackendName(a), "null");
    ck_assert_str_eq(UwdfIoTargetGetBackendName(b), "libaio");
    ck_assert(!read_moves_data(a));
    ck_assert(read_moves_data(b));
    WdfObjectDelete(a);
    WdfObjectDelete(b);
}
END_TEST

static Suite *library_suite(void)
{
    Suite *s = suite_create("library");
    TCase *tc = tcase_create("version");
    tcase_add_test(tc, version_runtime_matches_the_headers);
    tcase_add_test(tc, version_accepts_null_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("log");
    tcase_add_checked_fixture(tc, log_setup, log_teardown);
    tcase_add_test(tc, log_callback_receives_a_library_warning);
    tcase_add_test(tc, log_callback_receives_debug_print_text_as_written);
    tcase_add_test(tc, log_callback_receives_a_verifier_finding);
    tcase_add_test(tc, log_callback_receives_a_long_line_whole);
    tcase_add_test(tc, log_default_writes_prefixed_lines_to_stderr);
    tcase_add_test(tc, log_callback_null_restores_the_default);
    tcase_add_test(tc, log_bug_check_report_reaches_the_callback_before_abort);
    suite_add_tcase(s, tc);

    tc = tcase_create("backend");
    tcase_add_checked_fixture(tc, backend_setup, backend_teardown);
    tcase_add_loop_test(tc, default_backend_chosen_through_the_api, 0, 3);
    tcase_add_test(tc, default_backend_api_comes_before_the_environment);
    tcase_add_test(tc, default_backend_null_restores_the_default);
    tcase_add_test(tc, default_backend_unknown_name_is_refused_and_changes_nothing);
    tcase_add_test(tc, default_backend_change_leaves_open_targets_on_their_engine);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(library_suite());
}
