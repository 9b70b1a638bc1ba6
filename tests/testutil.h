/* The test library: what every Check suite under tests/ shares, built once
 * (tests/libtestutil.a: testutil.c, tu_env.c, tu_status.c, tu_forwarder.c)
 * and linked by every suite. Its own tests: tests/test_testutil.c.
 *
 * ---- How to write a suite, tests/test_foo.c ----
 * 1. Makefile.am: add "tests/test_foo \" to check_PROGRAMS. That is all:
 *    the source, flags and libraries are automake's defaults (LDADD links
 *    this library, the installed-to-be libuwdf and Check). A suite that
 *    reaches the library's internals (lib/ headers) adds one line,
 *    tests_test_foo_LDADD = $(TEST_INTERNAL_LDADD): the same objects,
 *    linked statically, hidden names and all. Only a suite that needs more
 *    says so in a line of its own (tests_test_foo_CPPFLAGS = $(AM_CPPFLAGS)
 *    ..., as test_env and test_backends do); never list testutil.c again.
 * 2. The file:
 *        #define _GNU_SOURCE
 *        #include "testutil.h"
 *
 *        // One behaviour per test, named like the behaviour; each engine.
 *        START_TEST(read_returns_the_file)
 *        {
 *            struct tu_env e;
 *            tu_env_init_backend(&e, _i);        // _i: 0 io_uring, 1 libaio
 *            tu_env_open_file(&e, 64 << 10, 7, GENERIC_READ, 0); // e.path, e.target
 *            void *buf = tu_env_memory(&e, 4096); // e.mem, e.buf
 *            ... NTSTATUS status = WdfIoTargetSendReadSynchronously(e.target, ...);
 *            ck_assert_status(status, STATUS_SUCCESS);
 *            ck_assert(tu_pattern_matches(buf, 4096, 7, 0));
 *            tu_env_fini(&e);                    // driver, files, loops, FIFO
 *        }
 *        END_TEST
 *
 *        int main(void)
 *        {
 *            Suite *s = suite_create("foo");
 *            TCase *tc = tu_tcase(s, "reads", 30); // checked fixture, timeout
 *            tcase_add_loop_test(tc, read_returns_the_file, 0, TU_BACKENDS);
 *            return tu_main(s, "test_foo");        // one directory per run
 *        }
 *    Cases that need root (loop devices, mounts) return early without it
 *    (if (!tu_root()) return;) and main returns tu_main_root(s, "test_foo",
 *    "the loop-device cases were skipped"): automake then reports SKIP.
 * 3. What the environment (struct tu_env, below) gives: a driver and
 *    control device, a directory on a file system with O_DIRECT, the engine
 *    by index or name (targets opened through tu_env_target are checked to
 *    run on it), files of a seeded pattern, a FIFO whose reads wait until
 *    cancelled or timed out (tu_env_fifo, tu_env_open_fifo), loop devices of
 *    a given logical sector size (tu_env_loop(&e, backing, 4096)), one
 *    memory object. Everything it makes is registered and goes at
 *    tu_env_fini -- or, when an assertion failed first, at the fixture's
 *    teardown (CK_FORK=no) or at tu_main's end (forked).
 * 4. Statuses: ck_assert_status(actual, expected), _ne, _msg and
 *    ck_assert_nt_success / _nt_failure; a failure prints both statuses by
 *    name and value. In a message of one's own: TU_STATUS_FMT with
 *    TU_STATUS_ARG(status).
 * 5. Also here: completions (tu_completion, tu_on_complete), a filter
 *    device stack (tu_make_forwarder; tu_forwarder.h), the Filter Manager
 *    (tu_flt_open), a neighbour target kept busy (tu_reader), an NBD
 *    export (tu_nbdkit_start: nbdkit on a Unix socket in e->dir, stopped by
 *    its pid; skip with TU_EXIT_SKIP unless tu_nbd_available), bug checks
 *    expected (tu_expect_bugcheck), stderr captured (tu_stderr_begin),
 *    O_DIRECT buffers (tu_aligned_alloc), guarded buffers, CRC32C, and
 *    tu_instrumented() for time or memory budgets that a sanitizer or
 *    valgrind would break.
 * Not in a suite: a copy of any of the above (a private environment
 * struct, forwarder, status-name table, FIFO or loop-device set-up,
 * setenv("UWDF_BACKEND") -- use tu_env_init_engine), ck_assert_int_eq on
 * an NTSTATUS, or ck_assert* on a thread other than the test's (record
 * there, assert after joining). A helper a second suite needs moves here,
 * with a test in test_testutil.c. make check-valgrind runs every suite
 * with CK_FORK=no, all tests in one process: a test leaves nothing behind.
 *
 * Sections below: statuses; suite, fixture and main; the environment;
 * objects and completions; devices and the forwarder (tu_forwarder.h needs
 * no Check: uwdf-bench --api=stack uses it too); the Filter Manager; a
 * neighbour reader; files, patterns and loop devices; odds and ends;
 * nbdkit servers. */
#ifndef UWDF_TESTUTIL_H
#define UWDF_TESTUTIL_H

#include <check.h>
#include <fltkernel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uwdf.h>

#include "tu_forwarder.h"

/* ---- status assertions: a failure names both statuses ----
 * ck_assert_status(actual, expected) fails unless actual == expected and
 * prints, like ck_assert_int_eq but readable:
 *   Assertion 'WdfRequestGetStatus(r) == STATUS_IO_TIMEOUT' failed:
 *   WdfRequestGetStatus(r) == STATUS_CANCELLED (0xC0000120), STATUS_IO_TIMEOUT == ...
 * Both sides are taken as NTSTATUS. _ne is actual != expected; _msg adds a
 * printf-style message; ck_assert_nt_success / _nt_failure test
 * NT_SUCCESS(status) / !NT_SUCCESS(status). For a condition of one's own,
 * print a status with TU_STATUS_FMT and TU_STATUS_ARG(status). */
/* The library's name (UwdfNtStatusName), else include/ntstatus.h's, else
 * "(no name)"; never NULL. */
const char *tu_status_name(NTSTATUS status);
/* vsnprintf into buf; returns buf (for messages built inside an assertion). */
const char *tu_format(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define TU_STATUS_FMT "%s (0x%08X)"
#define TU_STATUS_ARG(s) tu_status_name(s), (unsigned)(s)

#define tu_assert_status_op_(actual, op, expected, actual_text, expected_text)                               \
    do {                                                                                                      \
        NTSTATUS tu_got_ = (actual), tu_want_ = (expected);                                                   \
        ck_assert_msg(tu_got_ op tu_want_, "Assertion '%s' failed: %s == " TU_STATUS_FMT ", %s == " TU_STATUS_FMT, \
                      actual_text " " #op " " expected_text, actual_text, TU_STATUS_ARG(tu_got_), expected_text, \
                      TU_STATUS_ARG(tu_want_));                                                               \
    } while (0)
#define ck_assert_status(actual, expected) tu_assert_status_op_(actual, ==, expected, #actual, #expected)
#define ck_assert_status_ne(actual, expected) tu_assert_status_op_(actual, !=, expected, #actual, #expected)
#define ck_assert_status_msg(actual, expected, ...)                                                           \
    do {                                                                                                      \
        NTSTATUS tu_got_ = (actual), tu_want_ = (expected);                                                   \
        char tu_why_[512];                                                                                    \
        ck_assert_msg(tu_got_ == tu_want_, "%s: %s == " TU_STATUS_FMT ", want " TU_STATUS_FMT,                 \
                      tu_format(tu_why_, sizeof(tu_why_), __VA_ARGS__), #actual, TU_STATUS_ARG(tu_got_),      \
                      TU_STATUS_ARG(tu_want_));                                                               \
    } while (0)
#define ck_assert_nt_success(status)                                                                          \
    do {                                                                                                      \
        NTSTATUS tu_got_ = (status);                                                                          \
        ck_assert_msg(NT_SUCCESS(tu_got_), "Assertion 'NT_SUCCESS(%s)' failed: %s == " TU_STATUS_FMT, #status, \
                      #status, TU_STATUS_ARG(tu_got_));                                                       \
    } while (0)
#define ck_assert_nt_failure(status)                                                                          \
    do {                                                                                                      \
        NTSTATUS tu_got_ = (status);                                                                          \
        ck_assert_msg(!NT_SUCCESS(tu_got_), "Assertion '!NT_SUCCESS(%s)' failed: %s == " TU_STATUS_FMT,        \
                      #status, #status, TU_STATUS_ARG(tu_got_));                                              \
    } while (0)

/* ---- suite, checked fixture and main ---- */

/* Bug checks are captured instead of aborting once this is installed. */
struct tu_bugcheck {
    int count;
    ULONG code; /* Parameter1: WDF_VIOLATION's subcode */
    ULONG bugcheck; /* the bug-check code itself (WDF_VIOLATION, KMODE_EXCEPTION_NOT_HANDLED, ...) */
    ULONG_PTR p[4];
    char reason[512];
};
extern struct tu_bugcheck tu_last_bugcheck;
void tu_bugcheck_capture(void);
void tu_bugcheck_reset(void);

/* The checked fixture: bug checks are captured, so an unexpected one fails
 * the test at teardown instead of aborting; the verifier and the allocation
 * and stall injectors start off; the teardown also deletes a driver a failed
 * test left behind and removes what tu_env registered. */
void tu_fixture_setup(void);
void tu_fixture_teardown(void);
/* Exactly one bug check since the last reset, with p[0] == code and
 * p[1] == p2; resets the record. */
void tu_expect_bugcheck(ULONG_PTR code, ULONG_PTR p2);
/* Exactly one bug check since the last reset, with that code and a reason
 * (containing reason_part unless NULL); resets the record. */
void tu_expect_bugcheck_reason(ULONG code, const char *reason_part);
/* A test case with the checked fixture above (and the timeout unless 0),
 * added to s. */
TCase *tu_tcase(Suite *s, const char *name, int timeout_sec);

/* Runs a suite; returns the process exit status (0 pass, 1 fail). */
int tu_run_suite(Suite *s);
/* Runs s inside one directory per run, made under UWDF_TEST_DIR (or
 * /var/tmp) as uwdf-<name>-XXXXXX and removed at the end with any loop
 * device inside it. Returns the process exit status (0 pass, 1 fail). */
int tu_main(Suite *s, const char *name);
/* The exit status that makes automake report SKIP. */
#define TU_EXIT_SKIP 77
/* tu_main for a suite that leaves out its root-only (loop-device) tests
 * when not root: a run that passed then exits TU_EXIT_SKIP, after
 * "<name>: not root, <skipped>" on stderr. */
int tu_main_root(Suite *s, const char *name, const char *skipped);

/* ---- the environment fixture: driver, control device, directory, engine,
 * and a target on a real file, a FIFO or a loop device ----
 * What it makes is registered (directory, loop devices, the FIFO's
 * descriptor), so tu_env_fini or, when an assertion failed first,
 * tu_fixture_teardown (CK_FORK=no) or tu_main (forked) removes it. */
struct tu_env {
    WDFDRIVER driver;
    WDFDEVICE device;
    char *dir;          /* this test's directory, on a file system with O_DIRECT */
    const char *engine; /* the engine every target opened here must use; NULL: any */
    char *path;         /* tu_env_open_file / _fifo: the file */
    WDFIOTARGET target; /* tu_env_open_file / _fifo: the target on it */
    int fifo_fd;        /* tu_env_fifo / _open_fifo: the test's own end; else -1 */
    WDFMEMORY mem;      /* tu_env_memory */
    void *buf;          /* tu_env_memory: mem's buffer (page-aligned) */
};
/* UWDF_BACKEND is left as it is (engine NULL). */
void tu_env_init(struct tu_env *e);
/* Engine tu_backend_names[backend] (the loop index of a per-engine test). */
void tu_env_init_backend(struct tu_env *e, int backend);
/* Engine by name ("io_uring", "libaio", "null"); NULL unsets UWDF_BACKEND
 * (the library's own choice) and checks no engine. */
void tu_env_init_engine(struct tu_env *e, const char *engine);
/* Deletes the driver (closing every target and deleting every request and
 * memory object the test made), then closes the FIFO, detaches the loop
 * devices and removes the directory. */
void tu_env_fini(struct tu_env *e);
/* tu_make_file inside e->dir. */
char *tu_env_file(struct tu_env *e, const char *name, size_t size, unsigned seed);
/* "e->dir/name" (malloc'd); nothing is created. */
char *tu_env_path(struct tu_env *e, const char *name);
/* A loop device over backing (losetup; root), with this logical sector size
 * (losetup --sector-size; 0: losetup's default, 512). */
const char *tu_env_loop(struct tu_env *e, const char *backing, unsigned sector_size);
/* A target under e->device opened on path (FILE_OPEN, access, options),
 * asserted to open and, when e->engine is set, to use that engine. */
WDFIOTARGET tu_env_target(struct tu_env *e, const char *path, ACCESS_MASK access, ULONG options);
/* e->path: a file "data" of size bytes of pattern seed; e->target on it. */
WDFIOTARGET tu_env_open_file(struct tu_env *e, size_t size, unsigned seed, ACCESS_MASK access, ULONG options);
/* e->path: a FIFO with a writer (e->fifo_fd, kept open until tu_env_fini)
 * that writes nothing unless the test does; returns e->path. */
const char *tu_env_fifo(struct tu_env *e);
/* tu_env_fifo, and e->target on it, read-only: a read there waits until a
 * timeout or a cancel ends it (io_uring; libaio refuses a FIFO). */
WDFIOTARGET tu_env_open_fifo(struct tu_env *e);
/* e->mem: WdfMemoryCreate of size bytes; returns its buffer (e->buf). */
void *tu_env_memory(struct tu_env *e, size_t size);

/* Engines exercised by tests that loop over them: index 0 io_uring,
 * 1 libaio. tu_use_backend sets UWDF_BACKEND for targets opened afterwards
 * and returns whether the engine runs here: always, since under valgrind the
 * io_uring engine polls its ring instead of blocking in io_uring_enter
 * (backends/io_uring.c explains why), so both engines run there too. */
#define TU_BACKENDS 2
extern const char *const tu_backend_names[TU_BACKENDS];
bool tu_use_backend(int index);

/* ---- objects and completions ---- */

/* Driver + control device (device may be NULL: driver only), created and
 * finished (PASSIVE). */
void tu_driver_and_device(WDFDRIVER *driver, WDFDEVICE *device);
/* A driver without a device (PASSIVE). */
WDFDRIVER tu_make_driver(void);
/* WdfMemoryCreate (NonPagedPoolNx, no tag, no parent), asserted to succeed. */
WDFMEMORY tu_make_memory(size_t size, void **buffer);
/* WdfRequestCreate on target, asserted to succeed. */
WDFREQUEST tu_make_request(WDFIOTARGET target);
/* A thread (tu_read_loop as pthread_create's routine) sending synchronous
 * reads of len bytes to t until *stop: the reads served, refused as by a
 * queue being deleted (STATUS_INVALID_DEVICE_STATE, STATUS_CANCELLED), and
 * any other outcome. Under valgrind it yields before each read. */
struct tu_read_loop {
    WDFIOTARGET t;
    size_t len;
    atomic_bool *stop;
    int ok, refused, other;
};
void *tu_read_loop(void *arg);
/* Create a target under device and open path with the given access,
 * disposition and create options (FILE_NON_DIRECTORY_FILE added, as
 * WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME does). Returns the open
 * status; *target is set (and must be deleted by the caller) when the create
 * succeeded. No Check inside: child processes use it too. */
NTSTATUS tu_target_open(WDFDEVICE device, const char *path, ACCESS_MASK access, ULONG disposition,
                        ULONG options, WDFIOTARGET *target);

/* Completion record: what the routine saw, and an event it sets last.
 * tu_on_complete (the completion routine, with the record as context)
 * stores what it was given and signals done. */
struct tu_completion {
    KEVENT done;
    atomic_int calls;
    NTSTATUS status;
    ULONG_PTR information;
    WDF_REQUEST_TYPE type;
    KIRQL irql;
    WDFREQUEST request;
    WDFIOTARGET target;
    WDF_REQUEST_COMPLETION_PARAMS params;
};
void tu_completion_init(struct tu_completion *c);
void tu_completion_fini(struct tu_completion *c);
EVT_WDF_REQUEST_COMPLETION_ROUTINE tu_on_complete;
/* Whether the completion came within ms milliseconds. */
bool tu_completion_wait(struct tu_completion *c, int ms);
/* A plain-int view of the call count, so failed assertions print readably. */
int tu_ncalls(struct tu_completion *c);

/* ---- devices, and the pass-through forwarder (tu_forwarder.h) ---- */

/* A named control device (\Device\...) of I/O type io, with request_attrs
 * (or NULL) as its request attributes and a default queue of the given
 * dispatch type with these callbacks (none for a manual queue). */
WDFDEVICE tu_named_device(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                          PWDF_OBJECT_ATTRIBUTES request_attrs, WDF_IO_QUEUE_DISPATCH_TYPE type,
                          PFN_WDF_IO_QUEUE_IO_READ rd, PFN_WDF_IO_QUEUE_IO_WRITE wr);
/* WdfIoTargetOpen by name (a path or \Device\ name), read/write, with
 * exactly these CreateOptions; asserted to succeed. */
void tu_open_by_name(WDFIOTARGET t, const char *name, ULONG options);
/* A pass-through forwarder (tu_forwarder.h) named name over lower: a parallel
 * forwarding queue, the lower target opened read/write with exactly these
 * CreateOptions; asserted to succeed. tu_forwarder_of(device) holds the
 * lower target, the queue and the counts. */
WDFDEVICE tu_make_forwarder(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io, const char *lower,
                            ULONG options);
/* EvtIoRead of a device that holds every request until it is cancelled
 * (marked cancelable), then completes it with STATUS_CANCELLED. */
EVT_WDF_IO_QUEUE_IO_READ tu_hold_until_cancelled;

/* ---- Filter Manager: a started filter attached to the volume at e->dir,
 * and the file at path (inside it) opened read/write, unbuffered. ---- */
struct tu_flt {
    PFLT_FILTER filter;
    PFLT_VOLUME volume;
    PFLT_INSTANCE instance;
    HANDLE fh;
    PFILE_OBJECT fo;
};
void tu_flt_open(struct tu_env *e, const char *path, struct tu_flt *f);
/* Closes the file and detaches and unregisters the filter. */
void tu_flt_close(struct tu_flt *f);
/* The filter alone (no file: fh and fo stay NULL): registered, started and
 * attached to the volume at volume_path (a directory, or a block device for
 * a volume on it); tu_flt_detach undoes it. */
void tu_flt_attach(struct tu_env *e, const char *volume_path, struct tu_flt *f);
void tu_flt_detach(struct tu_flt *f);

/* ---- a neighbour: a target kept busy with asynchronous reads ----
 * tu_reader_start opens path (a file written by tu_make_file with seed,
 * at least TU_READER_BLOCKS blocks of 4 KiB; O_DIRECT) as a target of
 * device and keeps depth reads of 4 KiB in flight, each resent from its
 * completion routine to the next block; every read's data is checked
 * against the pattern, and the routine's thread and IRQL are recorded.
 * tu_reader_stop stops the resends, waits for the reads in flight, asserts
 * every send completed exactly once, and deletes the requests, memory and
 * target. Nothing here may be stopped, purged or closed by the test: a
 * reader's reads are expected to succeed, all of them. */
#define TU_READER_BLOCKS 16u
#define TU_READER_MAX_DEPTH 8u
struct tu_reader_slot {
    struct tu_reader *reader;
    WDFREQUEST request;
    WDFMEMORY memory;
    void *buffer;
    uint64_t offset;
};
struct tu_reader {
    WDFIOTARGET target;
    unsigned seed, depth;
    struct tu_reader_slot slots[TU_READER_MAX_DEPTH];
    atomic_bool stop;
    atomic_ulong sent, completed, failed, wrong, in_flight;
    NTSTATUS first_failure;
    atomic_bool off_dispatch;  /* a routine ran below DISPATCH_LEVEL */
    _Atomic pthread_t thread;  /* the thread the last routine ran on */
    atomic_bool threads_differ; /* routines ran on more than one thread */
};
void tu_reader_start(struct tu_reader *r, WDFDEVICE device, const char *path, unsigned seed, unsigned depth);
void tu_reader_stop(struct tu_reader *r);
/* Reads completed so far (successful or not). */
unsigned long tu_reader_completed(struct tu_reader *r);
/* Waits (up to ms) until at least n more reads have completed; false if not. */
bool tu_reader_progresses(struct tu_reader *r, unsigned long n, int ms);

/* Engine threads of this process (named "uwdf-engine"): other threads come
 * and go on their own (the kernel's io_uring workers, a sanitizer's). */
long tu_engine_threads(void);
/* How long (ns) the engine threads alive now have been runnable (on a CPU
 * or waiting for one), summed: a thread that never sleeps fills the wall
 * time whatever the load. */
uint64_t tu_engine_threads_runnable_ns(void);
/* The read-type system calls (syscr in /proc: read, readv, recv...) the
 * engine threads alive now have made, summed; 0 where the kernel keeps no
 * task I/O accounting. */
uint64_t tu_engine_threads_read_calls(void);
/* Whether the kernel counts read-type system calls per thread. */
bool tu_read_calls_counted(void);

/* ---- files, data patterns and loop devices ---- */

/* A directory (created, unique) on a file system that supports O_DIRECT,
 * and removed with tu_rmtree. tu_env makes and registers one per test. */
char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
/* Create a file of size bytes, filled with a pattern seeded by seed (0:
 * zeros), and fsync it. Returns a malloc'd path inside dir. */
char *tu_make_file(const char *dir, const char *name, size_t size, unsigned seed);
/* Every byte depends on seed and on its offset; seed 0 gives zeros. */
void tu_fill_pattern(void *buf, size_t len, unsigned seed, uint64_t offset);
/* Whether buf holds tu_fill_pattern(seed, offset) for len bytes. */
bool tu_pattern_matches(const void *buf, size_t len, unsigned seed, uint64_t offset);

/* Whether the program runs as root (loop devices need it). */
bool tu_root(void);
/* losetup a loop device over file (--direct-io=on if direct_io; sector_size
 * 0: the default); returns "/dev/loopN" (malloc'd) or NULL. Not registered:
 * tu_env_loop is the fixture's way; this is for child processes. */
char *tu_loop_attach(const char *file, bool direct_io, unsigned sector_size);
/* The same, read-only (losetup --read-only). */
char *tu_loop_attach_read_only(const char *file);
void tu_loop_detach(const char *dev);
/* What `blockdev --getsize64 --getss --getpbsz DEV` reports (asserts it ran). */
struct tu_blockdev_info {
    unsigned long long size;
    unsigned logical, physical;
};
struct tu_blockdev_info tu_blockdev_query(const char *dev);

/* "dir/name", malloc'd (nothing is created). */
char *tu_join(const char *dir, const char *name);
/* Creates or truncates path and writes text into it. */
void tu_write_text(const char *path, const char *text);
/* Whether path holds exactly text. */
bool tu_text_is(const char *path, const char *text);
/* A thread exchanging names (renameat2 RENAME_EXCHANGE: from[i] with
 * to[i]) step by step in a cycle of `steps`, yielding between steps (so
 * the opener gets in even where threads take turns, as under valgrind),
 * until stopped; swaps counts whole cycles, err is the first failure's
 * errno (the swapping stops there). An even number of exchanges of each
 * pair leaves every name where it started. */
#define TU_SWAP_STEPS 8
struct tu_swapper {
    const char *from[TU_SWAP_STEPS], *to[TU_SWAP_STEPS];
    int steps;
    atomic_bool stop;
    atomic_ulong swaps;
    int err;
    pthread_t thread;
};
void tu_swapper_start(struct tu_swapper *s);
/* Stops and joins the thread. */
void tu_swapper_stop(struct tu_swapper *s);
/* Entries in dir, "." and ".." aside. */
int tu_count_entries(const char *dir);

/* ---- odds and ends ---- */

/* stderr captured: from tu_stderr_begin on, what goes to stderr (library log
 * lines, verifier reports) lands in an unlinked temporary file instead.
 * tu_stderr_read returns all of it so far, tu_stderr_end restores stderr
 * and returns all of it (both malloc'd, NUL-terminated; end returns NULL
 * when nothing was captured). One capture at a time; the fixture's
 * teardown ends one a failed test left running. */
void tu_stderr_begin(void);
char *tu_stderr_read(void);
char *tu_stderr_end(void);
/* Runs fn(fd) in a child process, which must die of SIGABRT (a default bug
 * check); what the child wrote to fd ends up in report (NUL-terminated).
 * Forks by itself, so it also runs when Check does not (CK_FORK=no). */
void tu_child_must_abort(void (*fn)(int fd), char *report, size_t size);

/* UNICODE_STRING from a UTF-8 path; buf must have room for strlen+1 WCHARs. */
void tu_unicode(UNICODE_STRING *us, WCHAR *buf, size_t buf_chars, const char *path);
/* size bytes aligned to 4096 (an O_DIRECT buffer on any sector size),
 * asserted to be allocated; free() it. */
void *tu_aligned_alloc(size_t size);
/* A plain-int read of an atomic counter, so failed assertions print readably. */
int tu_load(atomic_int *a);
/* Sleeps ms milliseconds, resuming after signals. */
void tu_sleep_ms(int ms);
/* Wall-clock milliseconds (monotonic). */
double tu_now_ms(void);
/* A control timer: a thread that sleeps until ms after its start (absolute
 * CLOCK_MONOTONIC deadline) and records how late it woke. On a loaded machine
 * the framework's timer and engine threads wake late by about as much, so a
 * bound "fires within its timeout + LATE" adds this lateness: it then checks
 * the framework's own delay, not the scheduler's. A framework timer that is
 * late by itself still fails, because the control was on time. */
struct tu_control_timer {
    pthread_t thread;
    struct timespec deadline;
    double late_ms;
};
void tu_control_timer_start(struct tu_control_timer *c, double ms);
/* Joins the control thread (waiting for its deadline if it has not come);
 * returns how many ms after its deadline it woke. */
double tu_control_timer_late_ms(struct tu_control_timer *c);
/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as iSCSI and ext4
 * use it: tu_crc32c(0, "123456789", 9) == 0xE3069283. Chain calls by passing
 * the previous result as crc. */
uint32_t tu_crc32c(uint32_t crc, const void *buf, size_t len);
/* len bytes (rounded up to whole pages), page-aligned, read-write, with an
 * inaccessible (PROT_NONE) page on each side, so an access just outside the
 * buffer faults. Asserts the mapping succeeded. */
void *tu_guarded_alloc(size_t len);
void tu_guarded_free(void *buf, size_t len);
/* Whether the program runs under valgrind (false where valgrind.h is missing). */
bool tu_running_on_valgrind(void);
/* Whether a sanitizer (ASan, TSan) or valgrind runs the program: time and
 * memory per object are then no measure of the library's. */
bool tu_instrumented(void);
/* This process's resident set size in KiB (/proc/self/statm). */
long tu_rss_kib(void);

/* ---- requests on block-like targets (NBD, RBD): synchronous helpers with
 * a TU_SYNC_TIMEOUT_SEC timeout, and a read left in flight ---- */
#define TU_SYNC_TIMEOUT_SEC 20
#define TU_UNTOUCHED 0xA5 /* what a tu_late buffer holds until a read lands in it */
/* A read or write of len bytes at off; *bytes (if not NULL) the count. */
NTSTATUS tu_sync_rw(WDFIOTARGET t, bool write, void *buf, ULONG len, LONGLONG off, ULONG_PTR *bytes);
NTSTATUS tu_sync_ioctl(WDFIOTARGET t, ULONG code, const void *in, ULONG in_len, void *out, ULONG out_len);
/* A write of len bytes of fill at off, sent synchronously with
 * UwdfRequestSetWriteThrough: the write-through of one request. */
NTSTATUS tu_write_through_request(WDFIOTARGET t, ULONG len, LONGLONG off, unsigned char fill);
/* IRP_MJ_FLUSH_BUFFERS, formatted as on Windows. */
NTSTATUS tu_flush(WDFIOTARGET t);
/* IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES (trim) of one range. */
NTSTATUS tu_trim(WDFIOTARGET t, LONGLONG off, ULONGLONG len);
/* FSCTL_SET_ZERO_DATA over [from, beyond). */
NTSTATUS tu_set_zero(WDFIOTARGET t, LONGLONG from, LONGLONG beyond);
/* StorageDeviceTrimProperty's TrimEnabled (asserts the query succeeds). */
bool tu_trim_enabled(WDFIOTARGET t);
/* Whether every byte of buf is v. */
bool tu_all_bytes(const void *buf, size_t len, unsigned char v);
/* A read of len bytes at offset 0 into a buffer of TU_UNTOUCHED bytes,
 * sent asynchronously with a timeout (0: none); c records its completion. */
struct tu_late {
    unsigned char *buf;
    size_t len;
    struct tu_completion c;
    WDFREQUEST req;
    WDFMEMORY mem;
};
void tu_late_send(WDFIOTARGET t, struct tu_late *l, size_t len, LONGLONG timeout);
void tu_late_fini(struct tu_late *l);
/* The three ways to end what a remote target holds (round 0: Stop with
 * cancel; 1: Purge and wait; 2: Close). */
void tu_stop_purge_or_close(WDFIOTARGET t, int round);

/* ---- the Ceph test cluster for RBD targets ----
 * tu_rbd_available: this process runs inside tests/remote/ceph-cluster
 * (CEPH_CONF, UWDF_CEPH_POOL, UWDF_CEPH_DIR set) and uwdf has RBD targets.
 * tu_rbd_tool runs `rbd --conf $CEPH_CONF --no-progress ARGS` (printf-style,
 * bounded to 60 s, output discarded) and returns its exit status. */
bool tu_rbd_available(void);
int tu_rbd_tool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- nbdkit servers for NBD targets ----
 * tu_nbdkit_start runs `nbdkit -f --exit-with-parent -U SOCK -P PIDFILE
 * ARGS...` (args NULL-terminated) with the socket and pid file named name
 * and name.pid in e->dir, waits until it accepts connections and fills uri
 * (nbd+unix:///?socket=SOCK). tu_nbdkit_stop stops it by its pid (SIGTERM,
 * waited for); tu_nbdkit_kill with SIGKILL. --exit-with-parent stops a
 * server whose test died. tu_nbd_available: this build has NBD targets and
 * nbdkit is installed. */
struct tu_nbdkit {
    pid_t pid;
    char *sock;
    char *pidfile;
    char uri[600];
};
bool tu_nbd_available(void);
void tu_nbdkit_start(struct tu_env *e, struct tu_nbdkit *s, const char *name, const char *const *args);
void tu_nbdkit_stop(struct tu_nbdkit *s);
void tu_nbdkit_kill(struct tu_nbdkit *s);

#endif
