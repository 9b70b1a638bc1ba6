/* Framework asserts (wdfassert.h). WDFVERIFY checks only with the verifier
 * on (KMDF checks the driver's WdfVerifyOn flag, which the port's verifier
 * switch stands for); a failure goes to RtlAssert. */
#ifndef UWDF_WDFASSERT_H
#define UWDF_WDFASSERT_H

#include "wdftypes.h"

UWDF_BEGIN_DECLS

BOOLEAN UwdfIsVerifierEnabled(void);

#define WDFVERIFY(exp)                                                          \
    do {                                                                        \
        if (UwdfIsVerifierEnabled() && !(exp))                                  \
            RtlAssert((PVOID) #exp, (PVOID)__FILE__, __LINE__, NULL);           \
    } while (0)
#define VERIFY_IS_IRQL_PASSIVE_LEVEL() WDFVERIFY(KeGetCurrentIrql() == PASSIVE_LEVEL)
#define IS_AT_PASSIVE() WDFVERIFY(KeGetCurrentIrql() == PASSIVE_LEVEL)
#define WDFCASSERT(c) C_ASSERT(c)

UWDF_END_DECLS
#endif
