/* What the three example clients share: a framework driver and control
 * device of the client's own (parents for its I/O targets), opening a
 * target by a device name, symbolic link or interface, object-count
 * snapshots, and a capture of a hosted driver's KdPrint lines
 * (UwdfSetLogCallback) so that a client can check the order its driver's
 * callbacks ran in. Linux-side code: plain C over the uwdf API. */
#ifndef UWDF_EXAMPLES_HOST_H
#define UWDF_EXAMPLES_HOST_H

#include <ntddk.h>
#include <wdf.h>
#include <uwdf.h>

#include <stdbool.h>
#include <stddef.h>

/* Reports a failed check (the caller's file and line) and counts it; the
 * client exits nonzero if any failed. */
#define CHECK(cond) host_check((cond), #cond, __FILE__, __LINE__)
#define CHECK_STATUS(expr, want) host_check_status((expr), (want), #expr, __FILE__, __LINE__)
bool host_check(bool ok, const char *what, const char *file, int line);
bool host_check_status(NTSTATUS got, NTSTATUS want, const char *what, const char *file, int line);
int host_failures(void);

/* The client's own WDFDRIVER (WdfDriverCreate(NULL, NULL, ...)) and a
 * control device that parents its targets; the engine for file and block
 * targets ("io_uring", "libaio", or NULL for the default); KdPrint lines
 * beginning with trace_prefix are recorded. */
void host_init(const char *engine, const char *trace_prefix);
/* Deletes the control device. */
void host_fini(void);
WDFDEVICE host_device(void);

/* A target opened on an NT name (\Device\X, \DosDevices\X\tail, an
 * interface's symbolic link) or a Linux path. */
NTSTATUS host_open(const char *name, WDFIOTARGET *target);
/* The symbolic link of the first enabled interface of the class, UTF-8,
 * or "" if there is none. */
void host_first_interface(const GUID *klass, char *link, size_t size);

/* The recorded trace: lines (without the prefix and the newline) in the
 * order they were printed. host_trace_expect compares it with want
 * (n lines) and reports a mismatch; then the trace starts again. Lines
 * beginning with one of skip's prefixes (NULL-terminated) are not
 * recorded. */
void host_trace_skip(const char *const *skip);
bool host_trace_expect(const char *const *want, int n, const char *file, int line);
#define TRACE_EXPECT(...)                                                              \
    do {                                                                               \
        static const char *const want_[] = { __VA_ARGS__ };                            \
        host_trace_expect(want_, (int)(sizeof(want_) / sizeof(want_[0])), __FILE__, __LINE__); \
    } while (0)
void host_trace_reset(void);
/* Waits until the trace has this line (reported as a failure after
 * timeout_ms). */
bool host_trace_wait(const char *line, int timeout_ms);

/* One request sent asynchronously through a target, its completion
 * recorded: host_io_start formats and sends it (a write from buf, a read
 * into it, or an IOCTL with buf as input and output), host_io_wait waits
 * for the completion routine (reported as a failure after timeout_ms). */
struct host_io {
    WDFREQUEST request;
    WDFMEMORY memory;
    volatile int done;
    NTSTATUS status;
    ULONG_PTR information;
    int order; /* completions so far when this one came, from 1 */
};
enum host_io_kind { HOST_IO_READ, HOST_IO_WRITE };
void host_io_start(struct host_io *io, WDFIOTARGET target, enum host_io_kind kind, void *buf, size_t len,
                   LONGLONG offset);
bool host_io_wait(struct host_io *io, int timeout_ms);
/* Deletes the request and its memory. */
void host_io_fini(struct host_io *io);

/* Live objects per type now, and whether they match an earlier snapshot
 * (each differing type is reported). */
struct host_counts {
    UWDF_OBJECT_COUNT c[64];
    ULONG n;
};
void host_counts_take(struct host_counts *counts);
bool host_counts_flat(const struct host_counts *before, const char *file, int line);
#define COUNTS_FLAT(before) host_counts_flat((before), __FILE__, __LINE__)

/* The engine named on a client's command line (--engine=NAME), or NULL. */
const char *host_engine_arg(int argc, char **argv);

#endif
