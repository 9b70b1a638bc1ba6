/* Debug output and the driver-facing failure paths: DbgPrint(Ex) and the
 * debug-print filter, breakpoints, asserts, PAGED_CODE, KeBugCheckEx and
 * the framework verifier's break. Output goes to the port's log. */
#include "ntrt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* Bytes of one DbgPrint, as on Windows. */
#define DBGPRINT_MAX 512
#define DPFLTR_COMPONENTS 256
#define WIN2000_COMPONENT 0xFFFFFFFFu /* ComponentId of the all-components mask */
#define PAGED_CODE_SITES_REPORTED 16

/* ---- the filter ---- */

static atomic_uint component_mask[DPFLTR_COMPONENTS];
static atomic_uint global_mask = 1u << DPFLTR_ERROR_LEVEL;
static pthread_once_t filter_once = PTHREAD_ONCE_INIT;

/* UWDF_DEBUG_PRINT=<mask> (or "all") sets the mask every component shares. */
static void filter_init_from_env(void)
{
    const char *v = uwdf_env(UWDF_ENV_DEBUG_PRINT);
    if (!v || !*v)
        return;
    if (strcmp(v, "all") == 0) {
        atomic_store(&global_mask, 0xFFFFFFFFu);
        return;
    }
    char *end = NULL;
    unsigned long m = strtoul(v, &end, 0);
    if (end && *end == '\0' && m <= 0xFFFFFFFFul)
        atomic_store(&global_mask, (unsigned)m);
    else
        uwdf_log("UWDF_DEBUG_PRINT='%s' ignored: expected a mask (0xF shows error to info) or 'all'", v);
}

static ULONG level_bits(ULONG level)
{
    return level < 32 ? 1u << level : level & ~(ULONG)DPFLTR_MASK;
}

static bool print_enabled(ULONG component, ULONG level)
{
    pthread_once(&filter_once, filter_init_from_env);
    ULONG mask = atomic_load_explicit(&global_mask, memory_order_relaxed);
    if (component < DPFLTR_COMPONENTS)
        mask |= atomic_load_explicit(&component_mask[component], memory_order_relaxed);
    return (level_bits(level) & mask) != 0;
}

VOID UwdfSetDebugPrintFilter(ULONG ComponentId, ULONG Mask)
{
    pthread_once(&filter_once, filter_init_from_env);
    if (ComponentId == UWDF_DPFLTR_ALL_COMPONENTS)
        atomic_store(&global_mask, Mask);
    else if (ComponentId < DPFLTR_COMPONENTS)
        atomic_store(&component_mask[ComponentId], Mask);
}

ULONG UwdfGetDebugPrintFilter(ULONG ComponentId)
{
    pthread_once(&filter_once, filter_init_from_env);
    if (ComponentId == UWDF_DPFLTR_ALL_COMPONENTS)
        return atomic_load(&global_mask);
    return ComponentId < DPFLTR_COMPONENTS ? atomic_load(&component_mask[ComponentId]) : 0;
}

NTSTATUS DbgQueryDebugFilterState(ULONG ComponentId, ULONG Level)
{
    if (ComponentId != WIN2000_COMPONENT && ComponentId >= DPFLTR_COMPONENTS)
        return STATUS_INVALID_PARAMETER_1;
    if (ComponentId == WIN2000_COMPONENT)
        return (level_bits(Level) & UwdfGetDebugPrintFilter(UWDF_DPFLTR_ALL_COMPONENTS)) ? TRUE : FALSE;
    return print_enabled(ComponentId, Level) ? TRUE : FALSE;
}

NTSTATUS DbgSetDebugFilterState(ULONG ComponentId, ULONG Level, BOOLEAN State)
{
    if (ComponentId != WIN2000_COMPONENT && ComponentId >= DPFLTR_COMPONENTS)
        return STATUS_INVALID_PARAMETER_1;
    atomic_uint *m = ComponentId == WIN2000_COMPONENT ? &global_mask : &component_mask[ComponentId];
    pthread_once(&filter_once, filter_init_from_env);
    if (State)
        atomic_fetch_or(m, level_bits(Level));
    else
        atomic_fetch_and(m, ~level_bits(Level));
    return STATUS_SUCCESS;
}

/* ---- printing ---- */

ULONG vDbgPrintExWithPrefix(PCCH Prefix, ULONG ComponentId, ULONG Level, PCCH Format, va_list arglist)
{
    if (!Format || !print_enabled(ComponentId, Level))
        return STATUS_SUCCESS;
    char text[DBGPRINT_MAX + 1];
    struct uwdf_fmt_out o = { .buf = text, .cap = DBGPRINT_MAX };
    if (Prefix)
        for (const char *p = Prefix; *p && o.len < o.cap; p++)
            text[o.len++] = *p;
    uwdf_fmt_v(&o, Format, arglist);
    text[o.len] = '\0';
    uwdf_log_text(UwdfLogDebugPrint, text);
    return STATUS_SUCCESS;
}

ULONG vDbgPrintEx(ULONG ComponentId, ULONG Level, PCCH Format, va_list arglist)
{
    return vDbgPrintExWithPrefix(NULL, ComponentId, Level, Format, arglist);
}

ULONG DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...)
{
    va_list ap;
    va_start(ap, Format);
    ULONG status = vDbgPrintExWithPrefix(NULL, ComponentId, Level, Format, ap);
    va_end(ap);
    return status;
}

ULONG DbgPrint(PCSTR Format, ...)
{
    va_list ap;
    va_start(ap, Format);
    ULONG status = vDbgPrintExWithPrefix(NULL, DPFLTR_DEFAULT_ID, DPFLTR_INFO_LEVEL, Format, ap);
    va_end(ap);
    return status;
}

/* ---- breakpoints, asserts, bug checks ---- */

static bool debugger_attached(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    long tracer = 0;
    if (!f)
        return false;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "TracerPid: %ld", &tracer) == 1)
            break;
    fclose(f);
    return tracer != 0;
}

BOOLEAN UwdfKdDebuggerNotPresent(void)
{
    return !debugger_attached();
}

/* A breakpoint exception: the debugger's, or nobody's. */
static void breakpoint(NTSTATUS code, const char *reason)
{
    if (debugger_attached()) {
        raise(SIGTRAP);
        return;
    }
    uwdf_bugcheck_report(KMODE_EXCEPTION_NOT_HANDLED, (ULONG_PTR)(ULONG)code, 0, 0, 0, reason);
}

VOID DbgBreakPoint(void)
{
    breakpoint(STATUS_BREAKPOINT, "DbgBreakPoint without a debugger: an unhandled breakpoint");
}

VOID DbgBreakPointWithStatus(ULONG Status)
{
    char reason[96];
    snprintf(reason, sizeof(reason), "DbgBreakPointWithStatus(0x%08X) without a debugger", (unsigned)Status);
    breakpoint(STATUS_BREAKPOINT, reason);
}

VOID RtlAssert(PVOID VoidFailedAssertion, PVOID VoidFileName, ULONG LineNumber, PSTR MutableMessage)
{
    char reason[512];
    snprintf(reason, sizeof(reason), "Assertion failed: %s%s%s (%s:%u)", MutableMessage ? MutableMessage : "",
             MutableMessage ? ": " : "", (const char *)VoidFailedAssertion, (const char *)VoidFileName,
             (unsigned)LineNumber);
    uwdf_log_at(UwdfLogError, "*** %s", reason);
    breakpoint(STATUS_BREAKPOINT, reason);
}

VOID UwdfAssertionFailed(PCSTR Expression, PCSTR Message, PCSTR File, ULONG Line)
{
    char reason[512];
    snprintf(reason, sizeof(reason), "NT_ASSERT failed: %s%s%s (%s:%u)", Message ? Message : "",
             Message ? ": " : "", Expression, File, (unsigned)Line);
    uwdf_log_at(UwdfLogError, "*** %s", reason);
    breakpoint(STATUS_ASSERTION_FAILURE, reason);
}

VOID DbgRaiseAssertionFailure(void)
{
    breakpoint(STATUS_ASSERTION_FAILURE, "DbgRaiseAssertionFailure without a debugger");
}

VOID KeBugCheckEx(ULONG BugCheckCode, ULONG_PTR BugCheckParameter1, ULONG_PTR BugCheckParameter2,
                  ULONG_PTR BugCheckParameter3, ULONG_PTR BugCheckParameter4)
{
    uwdf_bugcheck_report(BugCheckCode, BugCheckParameter1, BugCheckParameter2, BugCheckParameter3,
                         BugCheckParameter4, "KeBugCheckEx called by the driver");
}

VOID KeBugCheck(ULONG BugCheckCode)
{
    KeBugCheckEx(BugCheckCode, 0, 0, 0, 0);
}

VOID WdfVerifierKeBugCheck(ULONG BugCheckCode, ULONG_PTR BugCheckParameter1, ULONG_PTR BugCheckParameter2,
                           ULONG_PTR BugCheckParameter3, ULONG_PTR BugCheckParameter4)
{
    KeBugCheckEx(BugCheckCode, BugCheckParameter1, BugCheckParameter2, BugCheckParameter3, BugCheckParameter4);
}

VOID WdfVerifierDbgBreakPoint(void)
{
    if (uwdf_verifier)
        breakpoint(STATUS_BREAKPOINT, "WdfVerifierDbgBreakPoint with the verifier on, without a debugger");
    else
        uwdf_log("WdfVerifierDbgBreakPoint: no break (the verifier is off)");
}

void uwdf_verifier_break(const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    uwdf_log_at(UwdfLogVerifier, "verifier: %s", reason);
    if (uwdf_verifier)
        breakpoint(STATUS_BREAKPOINT, reason);
}

VOID UwdfPagedCodeViolation(PCSTR File, ULONG Line, KIRQL Irql)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        const char *file;
        ULONG line;
    } sites[PAGED_CODE_SITES_REPORTED];
    static unsigned nsites;
    bool report = true;
    /* Each call site is logged once (the first few), not on every pass. */
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < nsites; i++)
        if (sites[i].file == File && sites[i].line == Line)
            report = false;
    if (report && nsites < PAGED_CODE_SITES_REPORTED) {
        sites[nsites].file = File;
        sites[nsites].line = Line;
        nsites++;
    } else {
        report = false;
    }
    pthread_mutex_unlock(&lock);
    if (report)
        uwdf_log_at(UwdfLogVerifier, "PAGED_CODE at %s:%u: pageable code runs at IRQL %u, above APC_LEVEL", File,
                    (unsigned)Line, Irql);
    if (uwdf_verifier)
        uwdf_bugcheck(WDF_VERIFIER_IRQL_MISMATCH, Irql, APC_LEVEL, 0,
                      "PAGED_CODE at %s:%u: pageable code called at IRQL %u (rule KmdfIrql)", File,
                      (unsigned)Line, Irql);
}

const char *uwdf_bugcheck_code_name(ULONG code)
{
    static const struct {
        ULONG code;
        const char *name;
    } names[] = {
        { APC_INDEX_MISMATCH, "APC_INDEX_MISMATCH" },
        { IRQL_NOT_GREATER_OR_EQUAL, "IRQL_NOT_GREATER_OR_EQUAL" },
        { IRQL_NOT_LESS_OR_EQUAL, "IRQL_NOT_LESS_OR_EQUAL" },
        { MAXIMUM_WAIT_OBJECTS_EXCEEDED, "MAXIMUM_WAIT_OBJECTS_EXCEEDED" },
        { SPIN_LOCK_ALREADY_OWNED, "SPIN_LOCK_ALREADY_OWNED" },
        { SPIN_LOCK_NOT_OWNED, "SPIN_LOCK_NOT_OWNED" },
        { THREAD_NOT_MUTEX_OWNER, "THREAD_NOT_MUTEX_OWNER" },
        { KMODE_EXCEPTION_NOT_HANDLED, "KMODE_EXCEPTION_NOT_HANDLED" },
        { SEMAPHORE_LIMIT_EXCEEDED, "SEMAPHORE_LIMIT_EXCEEDED" },
        { BAD_POOL_CALLER, "BAD_POOL_CALLER" },
        { DRIVER_VERIFIER_DETECTED_VIOLATION, "DRIVER_VERIFIER_DETECTED_VIOLATION" },
        { IRQL_UNEXPECTED_VALUE, "IRQL_UNEXPECTED_VALUE" },
        { DRIVER_IRQL_NOT_LESS_OR_EQUAL, "DRIVER_IRQL_NOT_LESS_OR_EQUAL" },
        { MANUALLY_INITIATED_CRASH, "MANUALLY_INITIATED_CRASH" },
        { KERNEL_SECURITY_CHECK_FAILURE, "KERNEL_SECURITY_CHECK_FAILURE" },
        { WDF_VIOLATION, "WDF_VIOLATION" },
    };
    for (size_t i = 0; i < RTL_NUMBER_OF(names); i++)
        if (names[i].code == code)
            return names[i].name;
    return "UNKNOWN_BUGCHECK";
}
