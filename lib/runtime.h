/* The framework's process-wide runtime (lib/runtime.c, lib/env.c,
 * lib/status.c, lib/time.c, lib/unicode.c): allocation with fault
 * injection, environment switches, bug checks and the verifier, IRQL,
 * logging, status, time and text conversion, the one-shot wake-up, and
 * the check of every state machine's transitions.
 * Every part builds on it. Not installed. */
#ifndef UWDF_RUNTIME_H
#define UWDF_RUNTIME_H

#include "config.h"
/* The library defines the DDIs the headers also wrap in macros (wdftypes.h). */
#define UWDF_NO_PVOID_OUT_MACROS 1

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <uwdf.h>
#include <wdf.h>

#define UWDF_UNUSED __attribute__((unused))
#define UWDF_LIKELY(x) __builtin_expect(!!(x), 1)
#define UWDF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define uwdf_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- allocation (every framework allocation goes through here, so the
 * fault injector can fail any of them) ---- */
void *uwdf_alloc(size_t size);
void *uwdf_zalloc(size_t size);
void *uwdf_alloc_aligned(size_t alignment, size_t size);
void uwdf_free(void *ptr);
void uwdf_fault_init_from_env(void);
/* Milliseconds completions are held back (0: off). */
extern atomic_uint uwdf_fault_stall_ms;

/* ---- the environment switches (lib/env.c): read only through uwdf_env,
 * which ignores them all in a privileged (AT_SECURE) process ---- */
enum uwdf_env_switch {
    UWDF_ENV_BACKEND,
    UWDF_ENV_VERIFIER,
    UWDF_ENV_FAULT_ALLOC,
    UWDF_ENV_FAULT_STALL,
    UWDF_ENV_FP_FAIL,
    UWDF_ENV_BIASED_LOCKS,
    UWDF_ENV_DEBUG_PRINT,
    UWDF_ENV_ENGINES,
    UWDF_ENV_WINDOWS_ROOT,
    UWDF_ENV_NBD_CONNECT_TIMEOUT,
    UWDF_ENV_NBD_RECONNECT,
    UWDF_ENV_SUBMIT_BATCH,
    UWDF_ENV_COUNT
};
/* The switch's value, or NULL when unset or the process is privileged. */
const char *uwdf_env(enum uwdf_env_switch which);
const char *uwdf_env_name(enum uwdf_env_switch which);
const char *uwdf_env_named(const char *name);

/* ---- bug checks, verifier, IRQL ---- */
/* Reports WDF_VIOLATION with the given parameters and a reason; returns only
 * if the installed callback returns. */
void uwdf_bugcheck(ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
extern bool uwdf_verifier;
void uwdf_verifier_init_from_env(void);
/* ---- the log (lib/log.c): UwdfSetLogCallback's callback, or stderr ---- */
/* A line at UwdfLogWarning. */
void uwdf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void uwdf_log_at(UWDF_LOG_LEVEL level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void uwdf_log_at_v(UWDF_LOG_LEVEL level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Text as it is: a line without prefix or newline, or, at
 * UwdfLogDebugPrint, the driver's text (a fragment of a line, perhaps). */
void uwdf_log_text(UWDF_LOG_LEVEL level, const char *text);

extern __thread KIRQL uwdf_tls_irql;
static inline KIRQL uwdf_irql_raise_to_dispatch(void)
{
    KIRQL old = uwdf_tls_irql;
    uwdf_tls_irql = DISPATCH_LEVEL;
    return old;
}
static inline void uwdf_irql_restore(KIRQL old)
{
    uwdf_tls_irql = old;
}
/* PASSIVE-only DDIs: above PASSIVE a synchronous wait would deadlock the
 * completion thread, so the DDI fails instead (and the verifier bug-checks). */
bool uwdf_irql_check_passive(const char *ddi);
/* Verifier rules checked at the DDI sites (lib/runtime.c); each names the
 * rule and the DDI in its report. */
struct uwdf_request;
void uwdf_verifier_send_failed(struct uwdf_request *req);
void uwdf_verifier_check_send_failed(struct uwdf_request *req, const char *ddi);
void uwdf_verifier_sync_timeout(const WDF_REQUEST_SEND_OPTIONS *options, const char *ddi);

/* ---- state machines ----
 * A state changes only through named transitions. Each knows the states it
 * may leave as a bitmask (bit s for state s), so its check is a shift and
 * a test. An illegal transition is a framework bug, or driver misuse no
 * DDI caught: uwdf_state_illegal reports it (a verifier bug check; a log
 * line without the verifier), and the transition happens all the same, so
 * the code after it finds the state it expects. */
struct uwdf_state_machine {
    const char *name;          /* "I/O target", ... */
    const char *const *states; /* names, by value */
    unsigned count;
};
#define UWDF_STATE_BIT(s) (1u << (s))
/* Whether state s is one of mask's (for a transition: one it may leave).
 * Machines have fewer than 32 states; s is taken modulo 32, which is one
 * bit-test instruction (a value only a memory corruption could make may
 * alias a state). */
static inline bool uwdf_state_in(uint32_t mask, unsigned s)
{
    return (mask >> (s & 31u)) & 1u;
}
void uwdf_state_illegal(const struct uwdf_state_machine *m, const char *transition, const void *object,
                        unsigned from, unsigned to) __attribute__((cold, noinline));

/* ---- status and time ---- */
NTSTATUS uwdf_status_from_errno(int err);
int64_t uwdf_mono_ns(void);
int64_t uwdf_real_ns(void);
/* A WDF timeout (100 ns units, sign = relative/absolute) as a monotonic
 * deadline in ns. Returns false for 0 (no timeout). */
bool uwdf_timeout_to_mono_deadline(LONGLONG timeout, int64_t *deadline_ns);

/* ---- text (lib/unicode.c) ---- */
/* A UNICODE_STRING (wchar_t) as a NUL-terminated UTF-8 path, allocated
 * with uwdf_alloc; NULL when out of memory. */
char *uwdf_unicode_to_utf8(PCUNICODE_STRING name);

/* ---- library start-up ---- */
void uwdf_runtime_init(void);

/* A one-shot wake-up for one waiting thread (lib/runtime.c): a synchronous
 * send, a call into the engine thread. Signal once; the waiter may free it
 * as soon as its wait returns. */
struct uwdf_sync_wait {
    atomic_int done;
};
void uwdf_sync_wait_init(struct uwdf_sync_wait *w);
void uwdf_sync_wait_block(struct uwdf_sync_wait *w);

/* Sends this thread holds in its send plug (lib/engine.c) go to their
 * engines now. Every framework wait calls it first, so a thread never
 * waits for a completion it holds back itself. */
extern __thread unsigned uwdf_tls_plug_depth;
void uwdf_engine_plug_flush_slow(void);
static inline void uwdf_engine_plug_flush(void)
{
    if (__builtin_expect(uwdf_tls_plug_depth != 0, 0))
        uwdf_engine_plug_flush_slow();
}
void uwdf_sync_wait_signal(struct uwdf_sync_wait *w);

#define UWDF_REQUIRE_PARAM(p, ddi, ret)                                                        \
    do {                                                                                       \
        if (UWDF_UNLIKELY((p) == NULL)) {                                                      \
            uwdf_bugcheck(WDF_REQUIRED_PARAMETER_IS_NULL, 0, 0, 0,                             \
                          "%s: required parameter '%s' is NULL", (ddi), #p);                   \
            return ret;                                                                        \
        }                                                                                      \
    } while (0)

#endif
