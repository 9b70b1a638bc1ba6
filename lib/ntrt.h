/* Internals shared by the kernel run-time support (pool, Ke, Rtl, ntstrsafe,
 * debug output) and the WDF utility objects (locks, collections, strings,
 * timers, work items). Not installed. */
#ifndef UWDF_NTRT_H
#define UWDF_NTRT_H

#include "internal.h"

#include <ntstrsafe.h>

/* ---- threads ----
 * A non-zero value unique to the calling thread while it lives (the address
 * of a thread-local), for lock ownership. */
extern __thread char uwdf_thread_token_byte; /* lib/kespin.c */
static inline ULONG_PTR uwdf_thread_token(void)
{
    return (ULONG_PTR)&uwdf_thread_token_byte;
}

/* ---- IRQL rules (lib/runtime.c) ----
 * true if the calling thread's IRQL is at most max; otherwise false, and
 * with the verifier a WDF_VERIFIER_IRQL_MISMATCH bug check naming ddi. */
bool uwdf_irql_check_max(KIRQL max, const char *ddi);

/* ---- bug checks and verifier breaks ----
 * Any bug-check code, to the UwdfSetBugCheckCallback handler (default:
 * print and abort). Returns if the handler does (lib/runtime.c). */
void uwdf_bugcheck_report(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4,
                          const char *reason);
/* A readable name for a bug-check code (lib/debug.c). */
const char *uwdf_bugcheck_code_name(ULONG code);
/* FxVerifierDbgBreakPoint: misuse WDF tolerates but reports. Always a log
 * line; with the verifier, a breakpoint (DbgBreakPoint's rules). */
void uwdf_verifier_break(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- pool (lib/pool.c) ---- */
/* Blocks allocated with the Ex pool routines and not freed yet. */
unsigned long long uwdf_pool_outstanding(void);

/* ---- UTF-8 (lib/rtlstr.c) ----
 * Decode one code point from s[0..n) into *cp; returns the bytes used
 * (1..4), invalid input giving U+FFFD for one byte. Encode cp (invalid ones
 * as U+FFFD) into out (4 bytes); returns the bytes written. */
size_t uwdf_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
size_t uwdf_utf8_encode(uint32_t cp, char *out);
/* A valid Unicode scalar value (not a surrogate, at most U+10FFFF). */
static inline bool uwdf_unicode_valid(uint32_t cp)
{
    return cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

/* ---- Windows printf (lib/ntfmt.c) ----
 * Output into a buffer of cap characters (char, or WCHAR when wide); the
 * caller keeps room for a terminator outside cap if it wants one. Output
 * that does not fit sets truncated and stops: the buffer holds a prefix of
 * the result, never a split UTF-8 sequence. */
struct uwdf_fmt_out {
    void *buf;
    size_t cap;
    size_t len;
    bool wide;
    bool truncated;
};
/* fmt is a WCHAR string when out->wide, else a char string. false: the
 * format asked for %n, which is refused (what precedes it is written). */
bool uwdf_fmt_v(struct uwdf_fmt_out *out, const void *fmt, va_list ap);

/* ---- deferred callbacks (lib/deferred.c) ----
 * What a DPC and a system work item are to Windows: a callback queued to
 * run later on a framework thread. DISPATCH runs them one at a time on the
 * DPC thread at DISPATCH_LEVEL; PASSIVE runs them on a pool of worker
 * threads at PASSIVE_LEVEL that grows (up to UWDF_WORKER_THREADS_MAX) when
 * every worker is busy, so a callback may wait for another. Neither runs
 * on the framework timer's thread, whose lateness would delay request
 * timeouts. FIFO within an executor. */
enum uwdf_defer_level {
    UWDF_DEFER_DISPATCH = 0,
    UWDF_DEFER_PASSIVE,
};
#define UWDF_WORKER_THREADS_MAX 64

struct uwdf_deferred {
    LIST_ENTRY link;
    /* Runs the callback. */
    void (*fn)(struct uwdf_deferred *d);
    /* Called once the executor no longer touches d, after each run: drops
     * the reference the queuer took. */
    void (*done)(struct uwdf_deferred *d);
    uint8_t level;
    /* under the executor's lock */
    bool queued;
    bool closed; /* its owner is being deleted: no more queueing */
    unsigned running;
};
void uwdf_deferred_init(struct uwdf_deferred *d, enum uwdf_defer_level level,
                        void (*fn)(struct uwdf_deferred *d), void (*done)(struct uwdf_deferred *d));
/* Make sure the executor has a thread; 0, or -EAGAIN (none could start). */
int uwdf_deferred_prepare(enum uwdf_defer_level level);
/* true: queued now (done() will run after it); false: already queued, or
 * closed. */
bool uwdf_deferred_queue(struct uwdf_deferred *d);
/* Refuse queueing from now on (the owner is being deleted). */
void uwdf_deferred_close(struct uwdf_deferred *d);
/* true: taken off the queue before it ran (done() will not run for it). */
bool uwdf_deferred_dequeue(struct uwdf_deferred *d);
/* Until d is neither queued nor running. Not from d's own callback. */
void uwdf_deferred_flush(struct uwdf_deferred *d);
/* Whether the calling thread is running d's callback. */
bool uwdf_deferred_running_here(const struct uwdf_deferred *d);

/* ---- callback locks of queues and devices (lib/wdfsync.c) ----
 * The nearest queue or device at or above obj: its synchronization lock
 * (the queue's own when its scope is None), whether its callbacks run at
 * PASSIVE_LEVEL, and whether its scope is Device or Queue (the lock is what
 * its callbacks run under). false: there is none. */
struct uwdf_callback_owner {
    struct uwdf_object *obj;
    pthread_mutex_t *lock;
    bool passive;
    bool serialized;
};
bool uwdf_callback_owner_find(struct uwdf_object *obj, struct uwdf_callback_owner *out);
/* The device at or above obj, or NULL. */
struct uwdf_device *uwdf_object_find_device(struct uwdf_object *obj);
/* For a timer or work item parented to parent whose callback runs at level:
 * the lock AutomaticSerialization (serialize) makes the callback take (NULL
 * if none: not asked, or the owner has no synchronization scope), with the
 * executor for level started. STATUS_INVALID_DEVICE_REQUEST: no device at
 * or above parent; STATUS_WDF_INCOMPATIBLE_EXECUTION_LEVEL: a serialized
 * owner whose callbacks run at the other level; STATUS_INSUFFICIENT_RESOURCES:
 * no executor thread. */
NTSTATUS uwdf_deferred_callback_lock(struct uwdf_object *parent, bool serialize, enum uwdf_defer_level level,
                                     pthread_mutex_t **lock);
/* A create's attribute checks for objects with no synchronization scope or
 * (unless level_allowed) execution level of their own: KMDF's default
 * FxValidateObjectAttributes. */
NTSTATUS uwdf_attributes_validate_plain(PWDF_OBJECT_ATTRIBUTES attrs, bool level_allowed);

/* ---- WDFSTRING (lib/string.c) ----
 * Replace the string's text with a copy of len WCHARs (NUL added);
 * STATUS_INSUFFICIENT_RESOURCES leaves it unchanged. */
NTSTATUS uwdf_string_assign(WDFSTRING string, const WCHAR *text, size_t len, const char *ddi);

#endif
