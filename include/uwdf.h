/* uwdf port-only extensions. Everything here is prefixed Uwdf / UWDF_ and has
 * no Windows counterpart; ported driver code needs none of it. */
#ifndef UWDF_UWDF_H
#define UWDF_UWDF_H

#include "wdf.h"
#include "uwdfversion.h"

UWDF_BEGIN_DECLS

/* Bug checks. The callback receives the bug-check code (WDF_VIOLATION,
 * 0x10D), its four parameters and a readable reason. If it returns, the DDI
 * that detected the violation returns its documented failure (or does
 * nothing, for VOID DDIs). NULL restores the default: print and abort(). */
typedef VOID UWDF_BUGCHECK_CALLBACK(ULONG BugCheckCode, ULONG_PTR Parameter1,
                                    ULONG_PTR Parameter2, ULONG_PTR Parameter3,
                                    ULONG_PTR Parameter4, PCSTR Reason, PVOID Context);
typedef UWDF_BUGCHECK_CALLBACK *PUWDF_BUGCHECK_CALLBACK;
VOID UwdfSetBugCheckCallback(PUWDF_BUGCHECK_CALLBACK Callback, PVOID Context);

/* Verifier (UWDF_VERIFIER=1 in the environment, or this call): turns the
 * documented misuse statuses into bug checks. It also tracks handles, as
 * KMDF's verifier does: deleting the WDFDRIVER (the port's driver unload)
 * logs every request or memory object the driver created with the driver
 * as its parent and never deleted, and a queue being deleted logs every
 * request it presented that the driver has not completed a second after
 * EvtIoStop (the queue still waits for it): type, handle and creator, one
 * line each ("uwdf: verifier: driver unload: WDFREQUEST 0x... created by
 * WdfRequestCreate, ..."). */
VOID UwdfSetVerifier(BOOLEAN Enabled);
BOOLEAN UwdfIsVerifierEnabled(void);

/* The I/O engine a target uses: "io_uring", "libaio" or "null"; NULL when the
 * target is not open. UwdfSetDefaultBackend (below) or, failing that,
 * UWDF_BACKEND=io_uring|libaio|null forces the choice at open; otherwise
 * io_uring is probed and libaio is the fallback. */
PCSTR UwdfIoTargetGetBackendName(WDFIOTARGET IoTarget);

/* Chooses the engine for the file and block-device targets opened from now
 * on, as UWDF_BACKEND does, and ahead of it: "io_uring", "libaio" or
 * "null" (no kernel I/O: every operation completes at once, successfully,
 * with no data moved). A chosen engine is used or the open fails; there is
 * no fallback to libaio. NULL restores the default: UWDF_BACKEND if set,
 * else io_uring with libaio as the fallback. STATUS_INVALID_PARAMETER for
 * another name; the kernel's refusal (e.g. io_uring disabled) as its
 * NTSTATUS when the engine cannot be set up here. Either failure leaves the
 * choice as it was. Open targets keep their engine. Any IRQL. */
NTSTATUS UwdfSetDefaultBackend(PCSTR Name);

/* The engine pool. Every open file or block-device target is served by an
 * engine: one io_uring ring (or libaio context) and one framework thread,
 * the thread its completion routines run on. Engines are shared: each
 * engine kind (io_uring, libaio, null) has a pool of at most
 * UwdfGetEnginePoolSize() engines, a new target joins the engine serving
 * the fewest targets, and another engine starts only while the pool is
 * below its size and each engine serves a target already (so a lone target
 * has an engine of its own). An engine stops when its last target closes.
 * A target stays on its engine while it is open; targets on one engine
 * complete on one thread, and a completion routine's send to any of them
 * goes straight into that engine's ring.
 *
 * The size is one engine per CPU the process may run on, at most 8, unless
 * UWDF_ENGINES=N (read once) or UwdfSetEnginePoolSize says otherwise.
 * UwdfSetEnginePoolSize(0) restores that default; more than
 * UWDF_MAX_ENGINE_POOL_SIZE is STATUS_INVALID_PARAMETER. A new size applies
 * to targets opened afterwards: a larger one starts engines as targets
 * open, a smaller one takes effect as engines empty. Any IRQL. */
#define UWDF_MAX_ENGINE_POOL_SIZE 256u
NTSTATUS UwdfSetEnginePoolSize(ULONG Engines);
ULONG UwdfGetEnginePoolSize(void);

/* Registered buffers and files (io_uring's fixed buffers and files; fio's
 * fixedbufs / registerfiles). UwdfIoTargetRegisterMemory pins the buffers of
 * Count WDFMEMORY objects with the kernel once, in the ring of the target's
 * engine; from then on a read or write to this target whose buffer lies
 * wholly inside one of them goes down as READ_FIXED / WRITE_FIXED, without
 * mapping its pages per I/O. Targets sharing an engine may register the
 * same buffers (the ring holds them once). The objects stay referenced
 * (their buffers valid) until the target is closed; deleting one before
 * that only takes effect then. A target's file gets a registered-file slot
 * in its engine's ring by itself once the target has sent 64 operations
 * (while the ring's table has room: up to the soft open-file limit at its
 * first use, at most 8192); UwdfIoTargetRegisterFile gives it one at once,
 * and every op then goes down with IOSQE_FIXED_FILE. Closing the target
 * drops both before it returns. One call of each per open target:
 * STATUS_INVALID_DEVICE_STATE for a second one or a target that is not open;
 * STATUS_INVALID_PARAMETER for Count 0 or a NULL array; the kernel's refusal
 * (e.g. RLIMIT_MEMLOCK, file-backed memory, a full table) as its NTSTATUS,
 * with nothing registered. On the libaio and null engines, and on kernels
 * without sparse registration tables (before 5.19), both succeed and do
 * nothing: libaio has no registration, and null never touches buffers or
 * files (the statistics below then show nothing registered). PASSIVE_LEVEL. */
NTSTATUS UwdfIoTargetRegisterMemory(WDFIOTARGET IoTarget, WDFMEMORY *Memory, ULONG Count);
NTSTATUS UwdfIoTargetRegisterFile(WDFIOTARGET IoTarget);

/* What a target's engine did for this target since it was opened (each
 * target counts its own, also on an engine it shares). */
typedef struct _UWDF_IO_TARGET_STATISTICS {
    ULONG Size;                /* sizeof(UWDF_IO_TARGET_STATISTICS) */
    ULONG RegisteredBuffers;   /* buffers registered (0 if none, or not io_uring) */
    BOOLEAN RegisteredFile;    /* the file is registered */
    ULONGLONG Operations;      /* operations handed to the engine */
    ULONGLONG FixedBufferOperations; /* of which READ_FIXED / WRITE_FIXED */
    ULONGLONG FixedFileOperations;   /* of which on the registered file */
} UWDF_IO_TARGET_STATISTICS, *PUWDF_IO_TARGET_STATISTICS;
/* STATUS_INFO_LENGTH_MISMATCH for a wrong Size, STATUS_INVALID_DEVICE_STATE
 * if the target is not open. */
NTSTATUS UwdfIoTargetGetStatistics(WDFIOTARGET IoTarget, PUWDF_IO_TARGET_STATISTICS Statistics);

/* Live-object accounting. Every framework object (one entry per type:
 * "WDFDRIVER", "WDFDEVICE", "WDFQUEUE", "WDFREQUEST", "WDFIOTARGET",
 * "WDFMEMORY", "WDFLOOKASIDE", "WDFOBJECT", ...) and every other thing the
 * framework hands out that must be given back ("FLT_CALLBACK_DATA") is
 * counted from its creation to its destruction (the last reference, not
 * WdfObjectDelete). A request's retrieved WDFMEMORY counts while its
 * handle is valid. A long-running driver whose Live counts grow with its
 * I/O leaks. */
typedef struct _UWDF_OBJECT_COUNT {
    PCSTR TypeName;    /* static string */
    ULONGLONG Live;    /* created and not yet destroyed */
    ULONGLONG Created; /* since the process started */
} UWDF_OBJECT_COUNT, *PUWDF_OBJECT_COUNT;
/* *Count: in, the entries Counts has room for; out, the number of types.
 * STATUS_BUFFER_TOO_SMALL (nothing written) when that is more than the room
 * (call with *Count 0 to ask). The object types are one consistent snapshot. */
NTSTATUS UwdfQueryObjectCounts(PUWDF_OBJECT_COUNT Counts, PULONG Count);
/* One type by name; STATUS_OBJECT_NAME_NOT_FOUND for a name that is none. */
NTSTATUS UwdfQueryObjectCount(PCSTR TypeName, PUWDF_OBJECT_COUNT Count);

/* Fault injection. A stall holds every completion back for Milliseconds
 * before it is delivered (0 turns it off; UWDF_FAULT_STALL=MSEC sets it at
 * start-up). A stalled request honours cancellation: a timeout or
 * WdfRequestCancelSentRequest completes it with STATUS_CANCELLED /
 * STATUS_IO_TIMEOUT, because the kernel has already handed its buffer back. */
VOID UwdfFaultInjectStall(ULONG Milliseconds);

typedef enum _UWDF_FAULT_ALLOC_MODE {
    UwdfFaultAllocOff = 0,
    UwdfFaultAllocNth,   /* fail the N-th framework allocation from now, once */
    UwdfFaultAllocEvery, /* fail every N-th framework allocation from now */
} UWDF_FAULT_ALLOC_MODE;
/* UWDF_FAULT_ALLOC=nth:N or every:N sets the same at start-up. */
VOID UwdfFaultInjectAllocations(UWDF_FAULT_ALLOC_MODE Mode, ULONG N);
/* Framework allocations made since the last UwdfFaultInjectAllocations call,
 * and how many of them were failed on purpose. */
ULONGLONG UwdfFaultAllocationCount(void);
ULONGLONG UwdfFaultAllocationFailures(void);

/* Write-through (FUA) for one write: the write goes down with RWF_DSYNC, so
 * it completes only once it is durable. Call it after formatting the write
 * (a format starts from a clean stack location). The same as setting
 * SL_WRITE_THROUGH in IoGetNextIrpStackLocation(WdfRequestWdmGetIrp(r))->Flags;
 * a target opened with FILE_WRITE_THROUGH (O_DSYNC) does it for every write.
 * Flush: IRP_MJ_FLUSH_BUFFERS (WdfRequestWdmFormatUsingStackLocation) is
 * fsync(2); with MinorFunction IRP_MN_FLUSH_DATA_ONLY (ntifs.h) fdatasync(2). */
VOID UwdfRequestSetWriteThrough(WDFREQUEST Request, BOOLEAN WriteThrough);

/* The release of the library the program runs with (uwdfversion.h has the
 * one it was compiled against: UWDF_VERSION_MAJOR, ..., UWDF_VERSION_STRING).
 * Any argument may be NULL. Any IRQL. */
VOID UwdfGetVersion(PULONG Major, PULONG Minor, PULONG Patch);
/* The same as "major.minor.patch" (a static string). */
PCSTR UwdfGetVersionString(void);

/* Log lines. Everything the library itself prints (warnings such as an
 * ignored environment setting or a fallback engine, verifier findings,
 * failed assertions, bug-check reports) and the driver's DbgPrint/KdPrint
 * output that passes the debug-print filter goes to one callback. Message
 * is one NUL-terminated line without the "uwdf: " prefix or the newline,
 * except for UwdfLogDebugPrint, where it is the driver's text as formatted
 * (its own newlines included). The callback runs on the thread that logs,
 * possibly at raised IRQL or holding framework locks: it must not call
 * back into the framework, and should be quick. NULL restores the default,
 * which writes "uwdf: <Message>\n" (the DbgPrint text as it is) to stderr.
 * A call in progress on another thread may still reach the previous
 * callback. Any IRQL. */
typedef enum _UWDF_LOG_LEVEL {
    UwdfLogBugCheck = 0,  /* a bug check's report; abort() follows unless a
                           * UwdfSetBugCheckCallback callback returns */
    UwdfLogError = 1,     /* a failed assertion, a breakpoint */
    UwdfLogVerifier = 2,  /* a rule the driver broke (verifier, IRQL checks) */
    UwdfLogWarning = 3,   /* settings ignored, fallbacks, transient failures */
    UwdfLogDebugPrint = 4 /* the driver's DbgPrint / KdPrint output */
} UWDF_LOG_LEVEL;
typedef VOID UWDF_LOG_CALLBACK(UWDF_LOG_LEVEL Level, PCSTR Message, PVOID Context);
typedef UWDF_LOG_CALLBACK *PUWDF_LOG_CALLBACK;
VOID UwdfSetLogCallback(PUWDF_LOG_CALLBACK Callback, PVOID Context);

/* Readable name of a status ("STATUS_IO_TIMEOUT"), or NULL if unknown. */
PCSTR UwdfNtStatusName(NTSTATUS Status);
/* The errno -> NTSTATUS table the framework uses for completions. */
NTSTATUS UwdfNtStatusFromErrno(int Errno);
/* The same table read backwards, for code that hands uwdf's results to a
 * POSIX caller (the nbdkit plugin): the first errno the table maps to
 * Status (STATUS_DISK_FULL: ENOSPC, STATUS_ACCESS_DENIED: EPERM,
 * STATUS_MEDIA_WRITE_PROTECTED: EROFS, STATUS_NOT_SUPPORTED: EOPNOTSUPP);
 * 0 for a success status; EIO for any other failure (STATUS_END_OF_FILE
 * among them). */
int UwdfErrnoFromNtStatus(NTSTATUS Status);

/* NT system time (100 ns since 1601) <-> Unix time, as the port converts
 * absolute timeouts. */
#define UWDF_NT_EPOCH_DELTA_100NS 116444736000000000LL

/* Debug-print filter (DbgPrintEx, KdPrint). A message at Level L of
 * component C prints when bit L (a Level above 31 is itself a mask) is set
 * in C's mask or in the mask every component shares
 * (UWDF_DPFLTR_ALL_COMPONENTS: Windows' "WIN2000" mask, initially
 * 1 << DPFLTR_ERROR_LEVEL only; UWDF_DEBUG_PRINT=<mask> or =all in the
 * environment sets it at start-up). DbgPrint and KdPrint are component
 * DPFLTR_DEFAULT_ID at DPFLTR_INFO_LEVEL, so
 * UwdfSetDebugPrintFilter(DPFLTR_DEFAULT_ID, 0xF) shows them. Component ids
 * from 256 on have no mask of their own. Any IRQL. */
#define UWDF_DPFLTR_ALL_COMPONENTS 0xFFFFFFFFu
VOID UwdfSetDebugPrintFilter(ULONG ComponentId, ULONG Mask);
ULONG UwdfGetDebugPrintFilter(ULONG ComponentId);

/* The driver host's Windows-path root: the Linux directory that
 * ZwCreateFile's names live under (\??\C:\dir\file is <root>/C/dir/file,
 * \SystemRoot\x is <root>/C/Windows/x; uwdf_zwfile.h). Opened and held at
 * this call (a later rename of Directory does not move it); handles opened
 * before keep their files. NULL goes back to the default: the directory in
 * UWDF_WINDOWS_ROOT, else a private directory made on first use
 * (/tmp/uwdf-windows-XXXXXX, mode 0700, with C and C/Windows in it; left in
 * place at exit). STATUS_OBJECT_NAME_NOT_FOUND, STATUS_NOT_A_DIRECTORY,
 * STATUS_INVALID_PARAMETER for "". PASSIVE_LEVEL. */
NTSTATUS UwdfSetWindowsPathRoot(PCSTR Directory);
/* The root's canonical path, NUL-terminated, into Buffer; *RequiredLength
 * (optional) is its size with the NUL. STATUS_BUFFER_TOO_SMALL when it does
 * not fit. Makes the default root if there is none yet. PASSIVE_LEVEL. */
NTSTATUS UwdfGetWindowsPathRoot(PCHAR Buffer, ULONG BufferLength, PULONG RequiredLength);

UWDF_END_DECLS
#endif
