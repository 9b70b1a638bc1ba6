/* Helpers shared by the Check suites. */
#ifndef UWDF_TESTUTIL_H
#define UWDF_TESTUTIL_H

#include <check.h>
#include <fltkernel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uwdf.h>

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

/* Driver + control device, created and finished (PASSIVE). */
void tu_driver_and_device(WDFDRIVER *driver, WDFDEVICE *device);

/* A directory (created, unique) on a file system that supports O_DIRECT,
 * and removed with tu_rmtree. */
char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
/* Create a file of size bytes, filled with a pattern seeded by seed (0:
 * zeros). Returns a malloc'd path inside dir. */
char *tu_make_file(const char *dir, const char *name, size_t size, unsigned seed);
void tu_fill_pattern(void *buf, size_t len, unsigned seed, uint64_t offset);

/* Loop devices (need root: tu_require_root() makes the test exit 77 where
 * root is missing... see tu_root()). */
bool tu_root(void);
/* losetup a loop device over file; returns "/dev/loopN" (malloc'd) or NULL. */
char *tu_loop_attach(const char *file, bool direct_io);
/* The same, read-only (losetup --read-only). */
char *tu_loop_attach_read_only(const char *file);
void tu_loop_detach(const char *dev);

/* What `blockdev --getsize64 --getss --getpbsz DEV` reports (asserts it ran). */
struct tu_blockdev_info {
    unsigned long long size;
    unsigned logical, physical;
};
struct tu_blockdev_info tu_blockdev_query(const char *dev);

/* UNICODE_STRING from a UTF-8 path; buf must have room for strlen+1 WCHARs. */
void tu_unicode(UNICODE_STRING *us, WCHAR *buf, size_t buf_chars, const char *path);

/* Create a target under device and open path with the given access,
 * disposition and create options. Returns the open status; *target is set
 * (and must be deleted by the caller) when the create succeeded. */
NTSTATUS tu_target_open(WDFDEVICE device, const char *path, ACCESS_MASK access, ULONG disposition,
                        ULONG options, WDFIOTARGET *target);

/* Backends exercised by tests that loop over engines: index 0 io_uring,
 * 1 libaio. tu_use_backend sets UWDF_BACKEND for targets opened afterwards
 * and returns whether the engine runs here: always, since under valgrind the
 * io_uring engine polls its ring instead of blocking in io_uring_enter
 * (backends/io_uring.c explains why), so both engines run there too. */
#define TU_BACKENDS 2
extern const char *const tu_backend_names[TU_BACKENDS];
bool tu_use_backend(int index);

/* A driver without a device (PASSIVE). */
WDFDRIVER tu_make_driver(void);
/* WdfMemoryCreate (NonPagedPoolNx, no tag, no parent), asserted to succeed. */
WDFMEMORY tu_make_memory(size_t size, void **buffer);
/* WdfRequestCreate on target, asserted to succeed. */
WDFREQUEST tu_make_request(WDFIOTARGET target);
/* Whether buf holds tu_fill_pattern(seed, offset) for len bytes. */
bool tu_pattern_matches(const void *buf, size_t len, unsigned seed, uint64_t offset);
/* Sleeps ms milliseconds, resuming after signals. */
void tu_sleep_ms(int ms);

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

/* A status's name ("STATUS_IO_TIMEOUT"), or "(unnamed)". */
const char *tu_status_name(NTSTATUS s);
/* got == want, or a failure naming both statuses. */
#define ck_assert_status(got, want)                                                              \
    do {                                                                                         \
        NTSTATUS got_ = (got), want_ = (want);                                                   \
        ck_assert_msg(got_ == want_, "%s: got %s (0x%08x), want %s (0x%08x)", #got,              \
                      tu_status_name(got_), (unsigned)got_, tu_status_name(want_), (unsigned)want_); \
    } while (0)

/* The process's resident set, in pages (/proc/self/statm). */
long tu_rss_pages(void);

/* Wall-clock milliseconds (monotonic). */
double tu_now_ms(void);

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

/* stderr into an unlinked temporary file, for tests of what the library
 * prints: tu_stderr_text gives what was written so far (malloc'd,
 * NUL-terminated), tu_stderr_end puts stderr back and gives all of it. */
struct tu_stderr {
    int fd;
    int saved;
};
void tu_stderr_begin(struct tu_stderr *c);
/* Runs fn(fd) in a child process, which must die of SIGABRT (a default bug
 * check); what the child wrote to fd ends up in report (NUL-terminated).
 * Forks by itself, so it also runs when Check does not (CK_FORK=no). */
void tu_child_must_abort(void (*fn)(int fd), char *report, size_t size);
char *tu_stderr_text(struct tu_stderr *c);
char *tu_stderr_end(struct tu_stderr *c);

/* Runs a suite; returns the process exit status (0 pass, 1 fail). */
int tu_run_suite(Suite *s);

/* ---- per-test environment: driver, control device and a directory ----
 * The directory (and any loop device made with tu_env_loop) is registered,
 * so tu_env_fini or, failing that, tu_fixture_teardown removes it. */
struct tu_env {
    WDFDRIVER driver;
    WDFDEVICE device;
    char *dir;
};
void tu_env_init(struct tu_env *e);
/* Deletes the driver (closing every target and deleting every request and
 * memory object the test made), then detaches the registered loop devices
 * and removes the registered directories. */
void tu_env_fini(struct tu_env *e);
/* tu_make_file inside e->dir. */
char *tu_env_file(struct tu_env *e, const char *name, size_t size, unsigned seed);
/* "e->dir/name" (malloc'd); nothing is created. */
char *tu_env_path(struct tu_env *e, const char *name);
/* A loop device over backing, detached by tu_env_fini / the teardown. */
const char *tu_env_loop(struct tu_env *e, const char *backing);

/* ---- checked fixture: bug checks are captured, so an unexpected one fails
 * the test at teardown instead of aborting; the verifier and the allocation
 * and stall injectors start off; the teardown also deletes a driver a failed
 * test left behind and removes what tu_env registered. ---- */
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

/* ---- completion record: what the routine saw, and an event it sets last.
 * tu_on_complete (the completion routine, with the record as context)
 * stores what it was given and signals done. ---- */
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

/* A named control device (\Device\...) of I/O type io, with request_attrs
 * (or NULL) as its request attributes and a default queue of the given
 * dispatch type with these callbacks (none for a manual queue). */
WDFDEVICE tu_named_device(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                          PWDF_OBJECT_ATTRIBUTES request_attrs, WDF_IO_QUEUE_DISPATCH_TYPE type,
                          PFN_WDF_IO_QUEUE_IO_READ rd, PFN_WDF_IO_QUEUE_IO_WRITE wr);
/* WdfIoTargetOpen by name (a path or \Device\ name), read/write, with these
 * CreateOptions; asserted to succeed. */
void tu_open_by_name(WDFIOTARGET t, const char *name, ULONG options);

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

/* Runs s inside one directory per run, made under UWDF_TEST_DIR (or
 * /var/tmp) as uwdf-<name>-XXXXXX and removed at the end with any loop
 * device inside it. Returns the process exit status (0 pass, 1 fail). */
int tu_main(Suite *s, const char *name);

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
