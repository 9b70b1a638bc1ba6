/* Handle types and common WDF definitions. */
#ifndef UWDF_WDFTYPES_H
#define UWDF_WDFTYPES_H

#include "wdm.h"

UWDF_BEGIN_DECLS

/* DDIs with a PVOID * out-parameter (WdfRequestRetrieveOutputBuffer, ...)
 * are called with the address of any pointer (PCHAR buf; ... &buf): MSVC
 * converts a T ** to PVOID * quietly, GCC and clang do not (an error from
 * GCC 14). In C such DDIs are also macros that convert the argument with
 * UWDF_PVOID_OUT, which still rejects the address of a non-pointer (the
 * mistake the conversion could hide) and takes NULL or a PVOID. The
 * library's own sources define UWDF_NO_PVOID_OUT_MACROS. */
#if !defined(__cplusplus) && !defined(UWDF_NO_PVOID_OUT_MACROS)
#define UWDF_PVOID_OUT_MACROS 1
#define UWDF_PVOID_OUT(p)                                                                                    \
    ((void)sizeof(*__builtin_choose_expr(__builtin_types_compatible_p(__typeof__(p), void *), (char **)0, \
                                         (p)) == (void *)0),                                                 \
     (PVOID *)(p))
#endif

#define WDF_DECLARE_HANDLE(name) \
    struct name##__ {            \
        int unused;              \
    };                           \
    typedef struct name##__ *name

typedef HANDLE WDFOBJECT, *PWDFOBJECT;
WDF_DECLARE_HANDLE(WDFDRIVER);
WDF_DECLARE_HANDLE(WDFDEVICE);
WDF_DECLARE_HANDLE(WDFQUEUE);
WDF_DECLARE_HANDLE(WDFREQUEST);
WDF_DECLARE_HANDLE(WDFIOTARGET);
WDF_DECLARE_HANDLE(WDFMEMORY);
WDF_DECLARE_HANDLE(WDFLOOKASIDE);
WDF_DECLARE_HANDLE(WDFFILEOBJECT);
WDF_DECLARE_HANDLE(WDFSPINLOCK);
WDF_DECLARE_HANDLE(WDFWAITLOCK);
WDF_DECLARE_HANDLE(WDFTIMER);
WDF_DECLARE_HANDLE(WDFWORKITEM);
WDF_DECLARE_HANDLE(WDFCOLLECTION);
WDF_DECLARE_HANDLE(WDFSTRING);
typedef WDFDRIVER *PWDFDRIVER;
typedef WDFDEVICE *PWDFDEVICE;
typedef WDFQUEUE *PWDFQUEUE;
typedef WDFREQUEST *PWDFREQUEST;
typedef WDFIOTARGET *PWDFIOTARGET;
typedef WDFMEMORY *PWDFMEMORY;
typedef WDFLOOKASIDE *PWDFLOOKASIDE;
typedef WDFSPINLOCK *PWDFSPINLOCK;
typedef WDFWAITLOCK *PWDFWAITLOCK;
typedef WDFTIMER *PWDFTIMER;
typedef WDFWORKITEM *PWDFWORKITEM;
typedef WDFCOLLECTION *PWDFCOLLECTION;
typedef WDFSTRING *PWDFSTRING;
typedef void *WDFCONTEXT;

typedef struct WDFDEVICE_INIT *PWDFDEVICE_INIT;

#define WDF_NO_OBJECT_ATTRIBUTES NULL
#define WDF_NO_EVENT_CALLBACK NULL
#define WDF_NO_HANDLE NULL
#define WDF_NO_CONTEXT NULL
#define WDF_NO_SEND_OPTIONS NULL

typedef enum _WDF_TRI_STATE {
    WdfFalse = FALSE,
    WdfTrue = TRUE,
    WdfUseDefault = 2,
} WDF_TRI_STATE, *PWDF_TRI_STATE;

#define WDF_STRUCTURE_SIZE(_struct) ((ULONG)sizeof(_struct))
#define WDF_ALIGN_SIZE_DOWN(_length, _alignment) ((_length) & ~((_alignment) - 1))
#define WDF_ALIGN_SIZE_UP(_length, _alignment) (((_length) + (_alignment) - 1) & ~((_alignment) - 1))

/* WDF_VIOLATION and its first-parameter codes (wdfbugcodes.h) */
#define WDF_VIOLATION 0x10D
typedef enum _WDF_BUGCHECK_CODES {
    WDF_POWER_ROUTINE_TIMED_OUT = 0x1,
    WDF_RECURSIVE_LOCK = 0x2,
    WDF_VERIFIER_FATAL_ERROR = 0x3,
    WDF_REQUIRED_PARAMETER_IS_NULL = 0x4,
    WDF_INVALID_HANDLE = 0x5,
    WDF_REQUEST_FATAL_ERROR = 0x6,
    WDF_OBJECT_ERROR = 0x7,
    WDF_DMA_FATAL_ERROR = 0x8,
    WDF_INVALID_INTERRUPT = 0x9,
    WDF_QUEUE_FATAL_ERROR = 0xA,
    WDF_INVALID_LOCK_OPERATION = 0xB,
    WDF_PNP_FATAL_ERROR = 0xC,
    WDF_POWER_MULTIPLE_PPO = 0xD,
    WDF_VERIFIER_IRQL_MISMATCH = 0xE,
    WDF_VERIFIER_CRITICAL_REGION_MISMATCH = 0xF,
    WDF_API_UNAVAILABLE = 0x10,
} WDF_BUGCHECK_CODES;

typedef enum _WDF_REQUEST_FATAL_ERROR_CODES {
    WDF_REQUEST_FATAL_ERROR_NO_MORE_STACK_LOCATIONS = 0x1,
    WDF_REQUEST_FATAL_ERROR_NULL_IRP = 0x2,
    WDF_REQUEST_FATAL_ERROR_REQUEST_ALREADY_SENT = 0x3,
    WDF_REQUEST_FATAL_ERROR_INFORMATION_LENGTH_MISMATCH = 0x4,
    WDF_REQUEST_FATAL_ERROR_REQUEST_NOT_IN_QUEUE = 0x5,
} WDF_REQUEST_FATAL_ERROR_CODES;

UWDF_END_DECLS
#endif
