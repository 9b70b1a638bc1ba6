/* Framework verifier calls (wdfverifier.h). */
#ifndef UWDF_WDFVERIFIER_H
#define UWDF_WDFVERIFIER_H

#include "wdftypes.h"

UWDF_BEGIN_DECLS

/* With the verifier on (UWDF_VERIFIER=1, UwdfSetVerifier), a breakpoint:
 * SIGTRAP under a debugger, else bug check KMODE_EXCEPTION_NOT_HANDLED
 * (0x1E) with STATUS_BREAKPOINT. With it off, a log line and nothing else,
 * as KMDF does without VerifierOn / DbgBreakOnError. */
VOID WdfVerifierDbgBreakPoint(void);
/* KeBugCheckEx, for drivers that call the framework's form. */
VOID WdfVerifierKeBugCheck(ULONG BugCheckCode, ULONG_PTR BugCheckParameter1, ULONG_PTR BugCheckParameter2,
                           ULONG_PTR BugCheckParameter3, ULONG_PTR BugCheckParameter4);

UWDF_END_DECLS
#endif
