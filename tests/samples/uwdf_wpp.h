/* A stand-in for the trace header WPP generates (<file>.tmh) and for a
 * driver's own WPP configuration header (trace.h): the samples' tracing
 * calls become debug prints through vDbgPrintEx, so they show in the port's
 * log (uwdf.h, "Debug-print filter").
 *
 * WPP's preprocessor reads the driver's WPP_CONTROL_GUIDS and turns each
 * trace call into an ETW event; that tool does not exist here. This header
 * instead defines the trace calls the Windows Driver Kit's default template
 * (km-WdfDefault.tpl) and the samples' configuration use:
 *   TraceEvents(LEVEL, FLAGS, MSG, ...), DoTraceMessage(FLAGS, MSG, ...),
 *   Hexdump((LEVEL, FLAGS, MSG, log_xstr(buffer, length))),
 *   WPP_INIT_TRACING, WPP_CLEANUP.
 * A trace at level L (TRACE_LEVEL_*, evntrace.h's values) prints as
 * DPFLTR_IHVDRIVER_ID at the debug-print level below, prefixed with the
 * flag's name and the function, so UWDF_DEBUG_PRINT selects how much shows.
 * WPP's own format extensions are rewritten to printf forms before the
 * message is formatted: %!STATUS! / %!NTSTATUS! / %!HRESULT! / %!WINERROR!
 * (a 32-bit value, in hex), %!FUNC!, %!FILE!, %!LINE!, %!LEVEL!, %!FLAGS!
 * (no argument), %!bool! (an int); Hexdump's %!HEXDUMP! shows the first
 * 64 bytes of its log_xstr(buffer, length) in hex. Any other %!NAME! takes
 * one pointer-sized argument and prints it as %p (a %!GUID! pointer, say):
 * write the conversion out in the driver if that is wrong for it.
 *
 * Not part of libuwdf: a porter copies this file next to the driver, as
 * tests/samples/ms-samples does, under the names the driver includes. */
#ifndef UWDF_WPP_SHIM_H
#define UWDF_WPP_SHIM_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <ntddk.h>

#ifndef TRACE_LEVEL_NONE
#define TRACE_LEVEL_NONE 0
#define TRACE_LEVEL_CRITICAL 1
#define TRACE_LEVEL_FATAL 1
#define TRACE_LEVEL_ERROR 2
#define TRACE_LEVEL_WARNING 3
#define TRACE_LEVEL_INFORMATION 4
#define TRACE_LEVEL_VERBOSE 5
#endif

/* WPP's start and stop: nothing to register without ETW. */
#define WPP_INIT_TRACING(DriverObject, RegistryPath) \
    ((void)(DriverObject), (void)(RegistryPath))
#define WPP_CLEANUP(DriverObject) ((void)(DriverObject))
/* WPP's configuration macros, should the driver's own header be kept. */
#ifndef WPP_CONTROL_GUIDS
#define WPP_DEFINE_CONTROL_GUID(Name, Guid, Bits)
#define WPP_DEFINE_BIT(Name)
#endif
#define WPP_LEVEL_ENABLED(Flags) 1
#define WPP_LEVEL_LOGGER(Flags) 0

static inline ULONG uwdf_wpp_dpfltr_level(ULONG TraceLevel)
{
    if (TraceLevel <= TRACE_LEVEL_ERROR)
        return DPFLTR_ERROR_LEVEL;
    if (TraceLevel == TRACE_LEVEL_WARNING)
        return DPFLTR_WARNING_LEVEL;
    if (TraceLevel == TRACE_LEVEL_INFORMATION)
        return DPFLTR_TRACE_LEVEL;
    return DPFLTR_INFO_LEVEL;
}

/* Appends s to out (size n, at *o), truncating; keeps out terminated. */
static inline void uwdf_wpp_put(char *out, size_t n, size_t *o, const char *s, size_t len)
{
    while (len-- > 0 && *o + 1 < n)
        out[(*o)++] = *s++;
    out[*o] = '\0';
}

/* Msg with WPP's %!NAME! conversions rewritten (see the top of the file). */
static inline void uwdf_wpp_format(char *out, size_t n, const char *msg, const char *func,
                                   const char *file, int line, const char *flags, ULONG level)
{
    size_t o = 0;
    char num[16];

    out[0] = '\0';
    while (*msg) {
        const char *end;
        size_t len;
        if (msg[0] != '%' || msg[1] != '!' || (end = strchr(msg + 2, '!')) == NULL) {
            if (msg[0] == '%' && msg[1] == '%') {
                uwdf_wpp_put(out, n, &o, msg, 2);
                msg += 2;
                continue;
            }
            uwdf_wpp_put(out, n, &o, msg, 1);
            msg++;
            continue;
        }
        len = (size_t)(end - (msg + 2));
#define UWDF_WPP_IS(name) (len == sizeof(name) - 1 && strncmp(msg + 2, name, len) == 0)
        if (UWDF_WPP_IS("STATUS") || UWDF_WPP_IS("NTSTATUS") || UWDF_WPP_IS("HRESULT")
            || UWDF_WPP_IS("WINERROR"))
            uwdf_wpp_put(out, n, &o, "0x%08lX", 7);
        else if (UWDF_WPP_IS("FUNC"))
            uwdf_wpp_put(out, n, &o, func, strlen(func));
        else if (UWDF_WPP_IS("FILE"))
            uwdf_wpp_put(out, n, &o, file, strlen(file));
        else if (UWDF_WPP_IS("FLAGS") || UWDF_WPP_IS("COMPNAME"))
            uwdf_wpp_put(out, n, &o, flags, strlen(flags));
        else if (UWDF_WPP_IS("LINE") || UWDF_WPP_IS("LEVEL")) {
            int k = snprintf(num, sizeof num, "%d", UWDF_WPP_IS("LINE") ? line : (int)level);
            uwdf_wpp_put(out, n, &o, num, (size_t)k);
        } else if (UWDF_WPP_IS("HEXDUMP"))
            uwdf_wpp_put(out, n, &o, "%s", 2);
        else if (UWDF_WPP_IS("bool") || UWDF_WPP_IS("BOOLEAN"))
            uwdf_wpp_put(out, n, &o, "%d", 2);
        else
            uwdf_wpp_put(out, n, &o, "%p", 2);
#undef UWDF_WPP_IS
        msg = end + 1;
    }
}

static inline void uwdf_wpp_trace(ULONG Level, const char *Flags, const char *Func,
                                  const char *File, int Line, const char *Msg, ...)
{
    char fmt[512];
    char prefix[96];
    va_list ap;

    /* TRUE when it would print (a status on bad input: not then). */
    if (DbgQueryDebugFilterState(DPFLTR_IHVDRIVER_ID, uwdf_wpp_dpfltr_level(Level)) != TRUE)
        return;
    uwdf_wpp_format(fmt, sizeof fmt, Msg, Func, File, Line, Flags, Level);
    snprintf(prefix, sizeof prefix, "[%s] %s: ", Flags, Func);
    va_start(ap, Msg);
    vDbgPrintExWithPrefix(prefix, DPFLTR_IHVDRIVER_ID, uwdf_wpp_dpfltr_level(Level), fmt, ap);
    va_end(ap);
}

#define TraceEvents(Level, Flags, Msg, ...) \
    uwdf_wpp_trace((Level), #Flags, __func__, __FILE__, __LINE__, Msg, ##__VA_ARGS__)
#define DoTraceMessage(Flags, Msg, ...) \
    uwdf_wpp_trace(TRACE_LEVEL_INFORMATION, #Flags, __func__, __FILE__, __LINE__, Msg, ##__VA_ARGS__)
#define DoTraceLevelMessage(Level, Flags, Msg, ...) TraceEvents(Level, Flags, Msg, ##__VA_ARGS__)

/* Hexdump's buffer: a pointer and a length, as WPP's samples declare it. */
typedef struct xstr {
    char *_buf;
    short _len;
} xstr_t;
static inline xstr_t log_xstr(void *p, short l)
{
    xstr_t xs = { (char *)p, l };
    return xs;
}

static inline void uwdf_wpp_hexdump(ULONG Level, const char *Flags, const char *Func,
                                    const char *File, int Line, const char *Msg, xstr_t X)
{
    char hex[64 * 3 + 4];
    size_t o = 0;
    int i;

    hex[0] = '\0';
    for (i = 0; X._buf != NULL && i < X._len && i < 64; i++)
        o += (size_t)snprintf(hex + o, sizeof hex - o, "%s%02X", i ? " " : "", (unsigned char)X._buf[i]);
    if (X._len > 64)
        snprintf(hex + o, sizeof hex - o, " ...");
    uwdf_wpp_trace(Level, Flags, Func, File, Line, Msg, hex);
}

#define UWDF_WPP_HEXDUMP(Level, Flags, Msg, X) \
    uwdf_wpp_hexdump((Level), #Flags, __func__, __FILE__, __LINE__, Msg, X)
#define Hexdump(Args) UWDF_WPP_HEXDUMP Args

#endif
