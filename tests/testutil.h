/* Helpers shared by the Check suites. */
#ifndef UWDF_TESTUTIL_H
#define UWDF_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <uwdf.h>

/* Bug checks are captured instead of aborting once this is installed. */
struct tu_bugcheck {
    int count;
    ULONG code;
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
void tu_loop_detach(const char *dev);

/* UNICODE_STRING from a UTF-8 path; buf must have room for strlen+1 WCHARs. */
void tu_unicode(UNICODE_STRING *us, WCHAR *buf, size_t buf_chars, const char *path);

/* Create a target under device and open path with the given access,
 * disposition and create options. Returns the open status; *target is set
 * (and must be deleted by the caller) when the create succeeded. */
NTSTATUS tu_target_open(WDFDEVICE device, const char *path, ACCESS_MASK access, ULONG disposition,
                        ULONG options, WDFIOTARGET *target);

/* Backends exercised by tests that loop over engines: index 0 io_uring,
 * 1 libaio. tu_use_backend sets UWDF_BACKEND for targets opened afterwards. */
#define TU_BACKENDS 2
extern const char *const tu_backend_names[TU_BACKENDS];
void tu_use_backend(int index);

/* Wall-clock milliseconds (monotonic). */
double tu_now_ms(void);

/* Runs a suite; returns the process exit status (0 pass, 1 fail). */
int tu_run_suite(Suite *s);

#endif
