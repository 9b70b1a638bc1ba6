/* Process-wide runtime: allocation with fault injection, bug checks, the
 * verifier switch, IRQL emulation and logging. */
#include "ntrt.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread KIRQL uwdf_tls_irql = PASSIVE_LEVEL;
bool uwdf_verifier;
atomic_uint uwdf_fault_stall_ms;

static atomic_uint fault_mode;
static atomic_ulong fault_n;
static atomic_ullong fault_allocs;
static atomic_ullong fault_failures;

static pthread_mutex_t bugcheck_lock = PTHREAD_MUTEX_INITIALIZER;
static PUWDF_BUGCHECK_CALLBACK bugcheck_cb;
static PVOID bugcheck_ctx;

static bool fault_should_fail(void)
{
    unsigned mode = atomic_load_explicit(&fault_mode, memory_order_relaxed);
    unsigned long long n = atomic_fetch_add(&fault_allocs, 1) + 1;
    if (mode == UwdfFaultAllocOff)
        return false;
    unsigned long every = atomic_load(&fault_n);
    bool fail = mode == UwdfFaultAllocNth ? n == every : (every != 0 && n % every == 0);
    if (fail)
        atomic_fetch_add(&fault_failures, 1);
    return fail;
}

void *uwdf_alloc(size_t size)
{
    if (fault_should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *uwdf_zalloc(size_t size)
{
    if (fault_should_fail())
        return NULL;
    return calloc(1, size ? size : 1);
}

void *uwdf_alloc_aligned(size_t alignment, size_t size)
{
    void *p = NULL;
    if (fault_should_fail())
        return NULL;
    if (posix_memalign(&p, alignment, size ? size : 1) != 0)
        return NULL;
    return p;
}

void uwdf_free(void *ptr)
{
    free(ptr);
}

VOID UwdfFaultInjectAllocations(UWDF_FAULT_ALLOC_MODE Mode, ULONG N)
{
    atomic_store(&fault_mode, UwdfFaultAllocOff);
    atomic_store(&fault_allocs, 0);
    atomic_store(&fault_failures, 0);
    atomic_store(&fault_n, N);
    if (Mode == UwdfFaultAllocNth || Mode == UwdfFaultAllocEvery)
        atomic_store(&fault_mode, Mode);
}

ULONGLONG UwdfFaultAllocationCount(void)
{
    return atomic_load(&fault_allocs);
}

ULONGLONG UwdfFaultAllocationFailures(void)
{
    return atomic_load(&fault_failures);
}

VOID UwdfFaultInjectStall(ULONG Milliseconds)
{
    atomic_store(&uwdf_fault_stall_ms, Milliseconds);
}

void uwdf_fault_init_from_env(void)
{
    const char *alloc = uwdf_env(UWDF_ENV_FAULT_ALLOC);
    const char *stall = uwdf_env(UWDF_ENV_FAULT_STALL);
    if (alloc && *alloc) {
        unsigned long n = 0;
        if (sscanf(alloc, "nth:%lu", &n) == 1 && n > 0)
            UwdfFaultInjectAllocations(UwdfFaultAllocNth, (ULONG)n);
        else if (sscanf(alloc, "every:%lu", &n) == 1 && n > 0)
            UwdfFaultInjectAllocations(UwdfFaultAllocEvery, (ULONG)n);
        else
            uwdf_log("UWDF_FAULT_ALLOC='%s' ignored: expected nth:N or every:N", alloc);
    }
    if (stall && *stall) {
        char *end = NULL;
        unsigned long ms = strtoul(stall, &end, 10);
        if (end && *end == '\0')
            UwdfFaultInjectStall((ULONG)ms);
        else
            uwdf_log("UWDF_FAULT_STALL='%s' ignored: expected milliseconds", stall);
    }
}

static const char *bugcheck_code_name(ULONG_PTR code)
{
    static const char *const names[] = {
        [WDF_POWER_ROUTINE_TIMED_OUT] = "WDF_POWER_ROUTINE_TIMED_OUT",
        [WDF_RECURSIVE_LOCK] = "WDF_RECURSIVE_LOCK",
        [WDF_VERIFIER_FATAL_ERROR] = "WDF_VERIFIER_FATAL_ERROR",
        [WDF_REQUIRED_PARAMETER_IS_NULL] = "WDF_REQUIRED_PARAMETER_IS_NULL",
        [WDF_INVALID_HANDLE] = "WDF_INVALID_HANDLE",
        [WDF_REQUEST_FATAL_ERROR] = "WDF_REQUEST_FATAL_ERROR",
        [WDF_OBJECT_ERROR] = "WDF_OBJECT_ERROR",
        [WDF_DMA_FATAL_ERROR] = "WDF_DMA_FATAL_ERROR",
        [WDF_INVALID_INTERRUPT] = "WDF_INVALID_INTERRUPT",
        [WDF_QUEUE_FATAL_ERROR] = "WDF_QUEUE_FATAL_ERROR",
        [WDF_INVALID_LOCK_OPERATION] = "WDF_INVALID_LOCK_OPERATION",
        [WDF_PNP_FATAL_ERROR] = "WDF_PNP_FATAL_ERROR",
        [WDF_POWER_MULTIPLE_PPO] = "WDF_POWER_MULTIPLE_PPO",
        [WDF_VERIFIER_IRQL_MISMATCH] = "WDF_VERIFIER_IRQL_MISMATCH",
        [WDF_VERIFIER_CRITICAL_REGION_MISMATCH] = "WDF_VERIFIER_CRITICAL_REGION_MISMATCH",
        [WDF_API_UNAVAILABLE] = "WDF_API_UNAVAILABLE",
    };
    if (code < RTL_NUMBER_OF(names) && names[code])
        return names[code];
    return "WDF_UNKNOWN";
}

void uwdf_bugcheck_report(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4,
                          const char *reason)
{
    pthread_mutex_lock(&bugcheck_lock);
    PUWDF_BUGCHECK_CALLBACK cb = bugcheck_cb;
    PVOID ctx = bugcheck_ctx;
    pthread_mutex_unlock(&bugcheck_lock);
    if (cb) {
        cb(code, p1, p2, p3, p4, reason, ctx);
        return;
    }
    if (code == WDF_VIOLATION)
        uwdf_log_at(UwdfLogBugCheck, "*** BUG CHECK 0x%X (WDF_VIOLATION) (0x%lX %s, 0x%lX, 0x%lX, 0x%lX)",
                    WDF_VIOLATION, (unsigned long)p1, bugcheck_code_name(p1), (unsigned long)p2,
                    (unsigned long)p3, (unsigned long)p4);
    else
        uwdf_log_at(UwdfLogBugCheck, "*** BUG CHECK 0x%X (%s) (0x%lX, 0x%lX, 0x%lX, 0x%lX)", (unsigned)code,
                    uwdf_bugcheck_code_name(code), (unsigned long)p1, (unsigned long)p2, (unsigned long)p3,
                    (unsigned long)p4);
    uwdf_log_at(UwdfLogBugCheck, "*** %s", reason);
    abort();
}

void uwdf_bugcheck(ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    uwdf_bugcheck_report(WDF_VIOLATION, p1, p2, p3, p4, reason);
}

VOID UwdfSetBugCheckCallback(PUWDF_BUGCHECK_CALLBACK Callback, PVOID Context)
{
    pthread_mutex_lock(&bugcheck_lock);
    bugcheck_cb = Callback;
    bugcheck_ctx = Context;
    pthread_mutex_unlock(&bugcheck_lock);
}

VOID UwdfSetVerifier(BOOLEAN Enabled)
{
    uwdf_verifier = Enabled != FALSE;
}

BOOLEAN UwdfIsVerifierEnabled(void)
{
    return uwdf_verifier;
}

void uwdf_verifier_init_from_env(void)
{
    const char *v = uwdf_env(UWDF_ENV_VERIFIER);
    uwdf_verifier = v && *v && strcmp(v, "0") != 0;
}

void uwdf_state_illegal(const struct uwdf_state_machine *m, const char *transition, const void *object,
                        unsigned from, unsigned to)
{
    const char *f = from < m->count ? m->states[from] : "(not a state)";
    const char *t = to < m->count ? m->states[to] : "(not a state)";
    if (uwdf_verifier)
        uwdf_bugcheck(WDF_VERIFIER_FATAL_ERROR, (ULONG_PTR)object, from, to,
                      "%s %p: illegal state transition '%s' from %s (to %s)", m->name, object, transition, f, t);
    else
        uwdf_log_at(UwdfLogVerifier, "%s %p: illegal state transition '%s' from %s (to %s)", m->name, object,
                    transition, f, t);
}

KIRQL KeGetCurrentIrql(void)
{
    return uwdf_tls_irql;
}

static const char *irql_rule_text(KIRQL max)
{
    switch (max) {
    case PASSIVE_LEVEL:
        return "PASSIVE_LEVEL";
    case APC_LEVEL:
        return "APC_LEVEL or below";
    case DISPATCH_LEVEL:
        return "DISPATCH_LEVEL or below";
    default:
        return "a lower IRQL";
    }
}

bool uwdf_irql_check_max(KIRQL max, const char *ddi)
{
    if (UWDF_LIKELY(uwdf_tls_irql <= max))
        return true;
    if (uwdf_verifier)
        uwdf_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, uwdf_tls_irql, max, 0,
                      "%s must be called at %s, called at IRQL %u (rule KmdfIrql)", ddi,
                      irql_rule_text(max), uwdf_tls_irql);
    return false;
}

bool uwdf_irql_check_passive(const char *ddi)
{
    return uwdf_irql_check_max(PASSIVE_LEVEL, ddi);
}

/* ReqSendFail: a request whose WdfRequestSend returned FALSE must be
 * reused, re-formatted or deleted (or, for a queue request, completed)
 * before it is sent again. The mark is cleared with the format
 * (uwdf_request_release_format) and by a successful send. */
void uwdf_verifier_send_failed(struct uwdf_request *req)
{
    /* A refused send of a request still in flight is not the request's
     * failure: its own completion is still coming. */
    if (uwdf_verifier && !(atomic_load(&req->flags) & UWDF_REQ_IN_FLIGHT))
        atomic_fetch_or(&req->flags, UWDF_REQ_SEND_FAILED);
}

void uwdf_verifier_check_send_failed(struct uwdf_request *req, const char *ddi)
{
    if (UWDF_LIKELY(!uwdf_verifier) || !(atomic_load(&req->flags) & UWDF_REQ_SEND_FAILED))
        return;
    atomic_fetch_and(&req->flags, ~UWDF_REQ_SEND_FAILED);
    uwdf_bugcheck(WDF_REQUEST_FATAL_ERROR, 0, (ULONG_PTR)req->obj.handle, 0,
                  "%s: request %p is sent again after WdfRequestSend failed, without being "
                  "reused, re-formatted or deleted (rule ReqSendFail)", ddi, (void *)req->obj.handle);
}

/* SyncReqSend, SyncReqSend2: a warning, since WDF allows it. Once per DDI
 * name (the first few distinct ones), so a loop does not flood the log. */
void uwdf_verifier_sync_timeout(const WDF_REQUEST_SEND_OPTIONS *options, const char *ddi)
{
    static const char *warned[8];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (UWDF_LIKELY(!uwdf_verifier) ||
        (options && (options->Flags & WDF_REQUEST_SEND_OPTION_TIMEOUT) && options->Timeout != 0))
        return;
    pthread_mutex_lock(&lock);
    size_t i = 0;
    while (i < RTL_NUMBER_OF(warned) && warned[i] && strcmp(warned[i], ddi) != 0)
        i++;
    bool first = i < RTL_NUMBER_OF(warned) && !warned[i];
    if (first)
        warned[i] = ddi;
    pthread_mutex_unlock(&lock);
    if (first)
        uwdf_log_at(UwdfLogVerifier,
                    "verifier: %s: synchronous send without a timeout (rules SyncReqSend, SyncReqSend2)", ddi);
}

__attribute__((constructor)) static void runtime_constructor(void)
{
    uwdf_runtime_init();
}

void uwdf_runtime_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, uwdf_verifier_init_from_env);
    static pthread_once_t once_fault = PTHREAD_ONCE_INIT;
    pthread_once(&once_fault, uwdf_fault_init_from_env);
}

/* ---- one-shot wake-up ----
 * done: 0 pending, 1 done, 2 pending with the waiter (about to be) asleep.
 * Only a sleeping waiter costs the signaller a FUTEX_WAKE: a synchronous
 * send that completed on the sender's own thread makes no futex call. */
void uwdf_sync_wait_init(struct uwdf_sync_wait *w)
{
    atomic_init(&w->done, 0);
}

void uwdf_sync_wait_block(struct uwdf_sync_wait *w)
{
    uwdf_engine_plug_flush();
    for (;;) {
        int v = atomic_load_explicit(&w->done, memory_order_acquire);
        if (v == 1)
            return;
        if (v == 0 && !atomic_compare_exchange_weak_explicit(&w->done, &v, 2, memory_order_acquire,
                                                             memory_order_acquire))
            continue;
        syscall(SYS_futex, &w->done, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    }
}

void uwdf_sync_wait_signal(struct uwdf_sync_wait *w)
{
    if (atomic_exchange_explicit(&w->done, 1, memory_order_acq_rel) == 2)
        syscall(SYS_futex, &w->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- the biased lock ---- */

/* Revocations other threads may pay (a membarrier each, microseconds)
 * before the lock stops being biased, and the owner entries in a row,
 * with no other thread, after which it is biased again. */
#define BIASED_REVOCATION_LIMIT 16
#define BIASED_REBIAS_RUN (1ul << 16)

#if defined(__SANITIZE_THREAD__)
#define BIASED_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BIASED_TSAN 1
#endif
#endif

static bool biased_usable;
static pthread_once_t biased_once = PTHREAD_ONCE_INIT;

static inline void biased_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static long biased_membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

static void biased_probe(void)
{
#ifdef BIASED_TSAN
    return;
#endif
    const char *env = uwdf_env(UWDF_ENV_BIASED_LOCKS);
    if (env && strcmp(env, "0") == 0)
        return;
    long cmds = biased_membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        return;
    if (biased_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
        return;
    biased_usable = true;
}

/* A memory barrier on every running thread of the process. The expedited
 * command, registered at probe time, can still fail for want of memory
 * (its CPU mask); then the global one (an RCU grace period: slow, but as
 * strong) does. */
static void biased_barrier_all(void)
{
    for (int tries = 0; tries < 3; tries++) {
        if (biased_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
            return;
        sched_yield();
    }
    if (biased_membarrier(MEMBARRIER_CMD_GLOBAL) == 0)
        return;
    uwdf_log("membarrier failed (%s): cannot revoke a biased lock", strerror(errno));
    abort();
}

void uwdf_biased_lock_init(struct uwdf_biased_lock *l)
{
    pthread_once(&biased_once, biased_probe);
    pthread_mutex_init(&l->mutex, NULL);
    atomic_init(&l->owner_in, 0);
    l->unbiased = !biased_usable;
    atomic_init(&l->revoked, l->unbiased ? 1 : 0);
    l->revocations = 0;
    l->owner_run = 0;
}

void uwdf_biased_lock_init_unbiased(struct uwdf_biased_lock *l)
{
    uwdf_biased_lock_init(l);
    l->unbiased = true; /* its count keeps the owner on the mutex */
    atomic_store_explicit(&l->revoked, 1, memory_order_relaxed);
}

void uwdf_biased_lock_destroy(struct uwdf_biased_lock *l)
{
    pthread_mutex_destroy(&l->mutex);
}

void uwdf_biased_lock_acquire(struct uwdf_biased_lock *l)
{
    pthread_mutex_lock(&l->mutex);
    l->owner_run = 0;
    int r = atomic_load_explicit(&l->revoked, memory_order_relaxed);
    atomic_store_explicit(&l->revoked, r + 1, memory_order_relaxed);
    if (r > 0)
        return; /* the owner is on the mutex already */
    /* After this, either the owner's owner_in store is visible here or its
     * next load of revoked sees the store above. */
    biased_barrier_all();
    unsigned spins = 0;
    while (atomic_load_explicit(&l->owner_in, memory_order_acquire)) {
        if (++spins > 64)
            sched_yield();
        else
            biased_cpu_relax();
    }
    l->revocations++;
}

void uwdf_biased_lock_release(struct uwdf_biased_lock *l)
{
    int r = atomic_load_explicit(&l->revoked, memory_order_relaxed) - 1;
    if (r == 0 && l->revocations >= BIASED_REVOCATION_LIMIT) {
        l->unbiased = true; /* its count keeps the owner on the mutex */
        r = 1;
    }
    atomic_store_explicit(&l->revoked, r, memory_order_release);
    pthread_mutex_unlock(&l->mutex);
}

void uwdf_biased_lock_set_bias(struct uwdf_biased_lock *l, bool biased)
{
    int r = atomic_load_explicit(&l->revoked, memory_order_relaxed);
    if (!biased && !l->unbiased) {
        l->unbiased = true; /* its count keeps the owner on the mutex */
        atomic_store_explicit(&l->revoked, r + 1, memory_order_relaxed);
    } else if (biased && l->unbiased && biased_usable && r == 2) {
        /* 2: the mode's own count and ours; nobody else inside, not even
         * waiting on a condition with the mutex let go. */
        l->unbiased = false;
        l->revocations = 0;
        l->owner_run = 0;
        atomic_store_explicit(&l->revoked, 1, memory_order_relaxed); /* 0 from our release on */
    }
}

void uwdf_biased_lock_owner_slow(struct uwdf_biased_lock *l)
{
    pthread_mutex_lock(&l->mutex);
    /* revoked == 1 is the mode's own count alone: nobody else inside, not
     * even waiting on a condition with the mutex let go. */
    if (l->unbiased && biased_usable && ++l->owner_run >= BIASED_REBIAS_RUN &&
        atomic_load_explicit(&l->revoked, memory_order_relaxed) == 1) {
        l->unbiased = false;
        l->revocations = 0;
        l->owner_run = 0;
        atomic_store_explicit(&l->revoked, 0, memory_order_relaxed); /* from our release on */
    }
}
