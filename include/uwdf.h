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

/* The I/O engine a target uses: "io_uring", "libaio" or "null"; "nbd" or
 * "rbd" for an NBD export or Ceph RBD image, whose name picks the engine;
 * NULL when the target is not open. UwdfSetDefaultBackend (below) or,
 * failing that, UWDF_BACKEND=io_uring|libaio|null forces the choice at open
 * for files and block devices; otherwise io_uring is probed and libaio is
 * the fallback. */
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

/* An engine group on the calling thread, as fio's jobs and SPDK's threads
 * drive many files from one ring: the first target the thread opens after
 * UwdfStartEngineGroup is placed as above, and each later one joins the
 * same engine (of its kind) while that engine runs, so completion routines
 * that resend among the group's targets stay on one thread and one ring
 * instead of handing half their sends to another engine's thread. The
 * pool's size still bounds the engines; Stop, Close and the other per-target
 * rules are unchanged. UwdfFinishEngineGroup ends the group (the pool then
 * places each target again); a new UwdfStartEngineGroup starts a new group.
 * Groups do not nest. A thread's group applies to the targets it opens
 * itself only. PASSIVE_LEVEL. */
VOID UwdfStartEngineGroup(VOID);
VOID UwdfFinishEngineGroup(VOID);

/* The engines' submit policy, for every target on io_uring and libaio
 * engines (docs/engines.md, "Submit policy"). 0, the default: an engine
 * hands what one pass of its loop staged (its completion routines' resends
 * and the sends other threads handed it) to the kernel in one
 * io_uring_enter / io_submit, with its wait. N: it hands staged operations
 * over whenever N are staged, so 1 makes one system call per operation, as
 * fio's default iodepth_batch_submit=1; some devices answer sooner that way,
 * at the cost of those calls. UwdfSetEngineSubmitBatch(0) restores the
 * default: UWDF_SUBMIT_BATCH=N (read once), else 0. More than
 * UWDF_MAX_ENGINE_SUBMIT_BATCH is STATUS_INVALID_PARAMETER. Running engines
 * apply a new value to the work that reaches them after the call. A
 * target's own SubmitBatch
 * (UwdfIoTargetSetBatching) still applies to it besides. Any IRQL. */
#define UWDF_MAX_ENGINE_SUBMIT_BATCH 65536u
NTSTATUS UwdfSetEngineSubmitBatch(ULONG Operations);
ULONG UwdfGetEngineSubmitBatch(void);

/* Registered buffers and files (io_uring's fixed buffers and files; fio's
 * fixedbufs / registerfiles). UwdfIoTargetRegisterMemory pins the buffers of
 * Count WDFMEMORY objects with the kernel once, in the ring of the target's
 * engine; from then on a read or write to this target whose buffer lies
 * wholly inside one of them goes down as READ_FIXED / WRITE_FIXED, without
 * mapping its pages per I/O. Targets sharing an engine may register the
 * same buffers (the ring holds them once). The objects stay referenced
 * (their buffers valid) until the target is closed; deleting one before
 * that only takes effect then. A target's file gets a registered-file slot
 * in its engine's ring by itself once the target has sent 8 operations
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

/* The connections of a remote target (an NBD export) as its engine last
 * left them: a reconnect (uwdf-reconnect=N, docs/remote.md) in progress,
 * the attempts it has made, and why the last loss or attempt failed.
 * State: UwdfConnectionConnected while no connection is being reconnected
 * and at least one is up (LiveConnections < Connections: some were lost
 * for good, the rest carry the I/O); UwdfConnectionReconnecting while one
 * is (ops sent meanwhile wait); UwdfConnectionLost when none is up and
 * none coming back (ops fail with STATUS_CONNECTION_DISCONNECTED until the
 * target is reopened). The counts are of the target's connections, which
 * targets opened on the same URI share. LastStatus is the NTSTATUS of the
 * last loss (STATUS_CONNECTION_DISCONNECTED) or failed reconnect attempt
 * (STATUS_CONNECTION_REFUSED, STATUS_ACCESS_DENIED for a refused TLS
 * handshake, STATUS_IO_TIMEOUT, STATUS_NO_SUCH_DEVICE for a server back
 * with another export...), STATUS_SUCCESS if there was none; LastError is
 * its text as logged. STATUS_INFO_LENGTH_MISMATCH for a wrong Size,
 * STATUS_NOT_SUPPORTED for a target that is not remote (or an RBD image,
 * whose connections librados keeps), STATUS_INVALID_DEVICE_STATE if the
 * target is not open. Any thread; PASSIVE_LEVEL. */
typedef enum _UWDF_CONNECTION_STATE {
    UwdfConnectionConnected = 1,
    UwdfConnectionReconnecting,
    UwdfConnectionLost,
} UWDF_CONNECTION_STATE;
typedef struct _UWDF_IO_TARGET_CONNECTION_STATE {
    ULONG Size;                   /* sizeof(UWDF_IO_TARGET_CONNECTION_STATE) */
    UWDF_CONNECTION_STATE State;
    ULONG Connections;            /* connections to the export */
    ULONG LiveConnections;        /* of which up now */
    ULONG ReconnectingConnections; /* of which being reconnected */
    ULONG ReconnectAttempts;      /* attempts of the reconnect under way (the most of any connection) */
    ULONG MaxReconnectAttempts;   /* uwdf-reconnect=N: 0, no automatic reconnect */
    ULONGLONG Losses;             /* connections lost since they were opened */
    ULONGLONG Reconnects;         /* connections brought back */
    NTSTATUS LastStatus;
    CHAR LastError[128];
} UWDF_IO_TARGET_CONNECTION_STATE, *PUWDF_IO_TARGET_CONNECTION_STATE;
NTSTATUS UwdfIoTargetGetConnectionState(WDFIOTARGET IoTarget, PUWDF_IO_TARGET_CONNECTION_STATE State);

/* Batching, fio's iodepth_batch_submit and iodepth_batch_complete_min/max
 * for a target's I/O (docs/engines.md, "Batching"). SubmitBatch N: the
 * engine hands this target's queued operations to the kernel (one
 * io_uring_enter / io_submit) whenever N are staged (when the N-th is a
 * resend from a completion routine, once that routine has returned), and
 * whatever is staged before it waits for completions; 0 keeps the engine's own rule
 * (everything the completion routines of one round resent, and every send
 * from other threads that is waiting, in one submission). CompleteMin N:
 * the target's completion routines run only once N of its operations have
 * finished, or every one it has in flight when that is fewer (so a batch
 * never waits for operations that were not sent); the engine waits in the
 * kernel for that many at once. 0 and 1: each as it finishes (the engine
 * thread never busy-polls). CompleteMax N: at most N of the target's
 * completion routines per round (0: no limit of the target's own); with
 * CompleteMin above 1 it must be 0 or at least CompleteMin. Each is at most
 * UWDF_IO_BATCH_MAX. Targets sharing an engine keep their own batches;
 * while the engine waits for a batch it notices other threads' sends,
 * cancels and timeouts within 0.2 ms. Applies to operations sent from now
 * until the target is closed (a reopened target starts without). An
 * operation held for its batch has finished in the kernel: cancelling it
 * cannot stop it, and its timeout no longer applies. STATUS_INFO_LENGTH_MISMATCH
 * for a wrong Size, STATUS_INVALID_PARAMETER for values out of range,
 * STATUS_NOT_SUPPORTED for a target over a device (it has no engine of its
 * own) or a stream (a FIFO's read may never finish), STATUS_INVALID_DEVICE_STATE
 * if the target is not open. PASSIVE_LEVEL. */
#define UWDF_IO_BATCH_MAX 65536u
typedef struct _UWDF_IO_TARGET_BATCHING {
    ULONG Size; /* sizeof(UWDF_IO_TARGET_BATCHING) */
    ULONG SubmitBatch;
    ULONG CompleteMin;
    ULONG CompleteMax;
} UWDF_IO_TARGET_BATCHING, *PUWDF_IO_TARGET_BATCHING;

FORCEINLINE VOID UWDF_IO_TARGET_BATCHING_INIT(PUWDF_IO_TARGET_BATCHING Batching, ULONG SubmitBatch,
                                              ULONG CompleteMin, ULONG CompleteMax)
{
    __builtin_memset(Batching, 0, sizeof(UWDF_IO_TARGET_BATCHING));
    Batching->Size = sizeof(UWDF_IO_TARGET_BATCHING);
    Batching->SubmitBatch = SubmitBatch;
    Batching->CompleteMin = CompleteMin;
    Batching->CompleteMax = CompleteMax;
}
NTSTATUS UwdfIoTargetSetBatching(WDFIOTARGET IoTarget, const UWDF_IO_TARGET_BATCHING *Batching);

/* How a batched target's batches came out, measured by its engine since
 * UwdfIoTargetSetBatching: Submissions[i] counts hand-overs of the target's
 * operations to the kernel, CompletionRounds[i] rounds of its completion
 * routines, of more than 2^(i-1) and at most 2^i operations (i = 0: one;
 * the last bucket: more than 256). STATUS_NOT_FOUND for a target without
 * batching, otherwise as UwdfIoTargetSetBatching. PASSIVE_LEVEL. */
#define UWDF_IO_BATCH_BUCKETS 10u
typedef struct _UWDF_IO_TARGET_BATCH_STATISTICS {
    ULONG Size; /* sizeof(UWDF_IO_TARGET_BATCH_STATISTICS) */
    ULONGLONG Submissions[UWDF_IO_BATCH_BUCKETS];
    ULONGLONG CompletionRounds[UWDF_IO_BATCH_BUCKETS];
} UWDF_IO_TARGET_BATCH_STATISTICS, *PUWDF_IO_TARGET_BATCH_STATISTICS;
NTSTATUS UwdfIoTargetGetBatchStatistics(WDFIOTARGET IoTarget, PUWDF_IO_TARGET_BATCH_STATISTICS Statistics);

/* A send plug on the calling thread, as Linux's blk_start_plug: until the
 * matching UwdfFinishSendPlug, the thread's asynchronous WdfRequestSend
 * calls to file and block-device targets are held on the thread and handed
 * to each engine together, when a target's SubmitBatch of them is held (0:
 * at the finish), so they reach the kernel in one submission. Plugs nest;
 * the outermost finish hands over what is left. A thread never waits for
 * what it holds: the framework's waits (KeWaitFor*, synchronous sends,
 * Stop and Close waiting for sent I/O) hand it over first. A held request
 * can be cancelled (it then completes with STATUS_CANCELLED once handed
 * over). Synchronous sends and sends from a completion routine to its own
 * engine (batched by the engine anyway) are never held. A thread that ends
 * inside a plug hands what it holds over as it exits. Any IRQL. */
VOID UwdfStartSendPlug(VOID);
VOID UwdfFinishSendPlug(VOID);

/* Hand-over times (docs/engines.md, "Hand-over times"): with Enable, the
 * target's engine notes when it hands each of the target's operations to
 * the kernel: one CLOCK_MONOTONIC read per io_uring_enter / io_submit that
 * carries any of them, taken right after that system call returns, stored
 * in each operation it carries. This is where fio's clat starts (its
 * io_uring and libaio engines' issue time, read once per submitted batch
 * just after the call). Off by default: a target without it pays no clock
 * read (on io_uring, nor the separate submitting call it takes). Applies to
 * sends from now until the target is closed. STATUS codes as
 * UwdfIoTargetSetBatching. PASSIVE_LEVEL. */
NTSTATUS UwdfIoTargetSetHandOverTimes(WDFIOTARGET IoTarget, BOOLEAN Enable);
/* When the engine handed the request's last send to the kernel, in
 * CLOCK_MONOTONIC nanoseconds (the first piece's hand-over for an I/O run
 * as pieces); 0 when that send's target has no hand-over times or the send
 * never reached the kernel through its engine (it failed or was cancelled
 * before, the framework completed it, or it ran on the sender's thread).
 * Read it in the completion routine or after the send completed; a new
 * send starts from 0. Any IRQL. */
LONGLONG UwdfRequestGetHandOverTime(WDFREQUEST Request);

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

/* For a host about to unload libuwdf (dlclose: an nbdkit plugin's .unload):
 * frees the object handle table, which otherwise lives as long as the
 * process (a stale handle is caught by reading it), so that nothing of the
 * library is left allocated and unreachable once it is unmapped.
 * STATUS_DEVICE_BUSY, with a log line, and nothing freed while any object
 * is live (requests another live thread keeps for reuse count; the
 * caller's own are freed). Call it last, when
 * no thread uses a handle any more: a lookup running meanwhile would read
 * the freed table. Objects made afterwards get a new table, and a handle
 * from before the call stays invalid. PASSIVE_LEVEL. */
NTSTATUS UwdfReleaseObjectTable(void);

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

/* ---- Hosting drivers (lib/driver_load.c, lib/pnp.c) ----
 * Load a KMDF driver by its DriverEntry: the framework makes a
 * DRIVER_OBJECT (DriverName "\\Driver\\<Name>") and a RegistryPath
 * ("\\Registry\\Machine\\System\\CurrentControlSet\\Services\\<Name>",
 * valid during DriverEntry only) and calls DriverEntry at PASSIVE_LEVEL,
 * which must call WdfDriverCreate with them. *Driver is the WDFDRIVER it
 * made. Name: no '\\' or '/'; a loaded name again is
 * STATUS_OBJECT_NAME_COLLISION. DriverEntry's failure is returned (the
 * WDFDRIVER is deleted without EvtDriverUnload); success without
 * WdfDriverCreate is STATUS_DRIVER_INTERNAL_ERROR. Several drivers live
 * at once. WdfGetDriver, and the default parent of objects that default
 * to the driver, mean the driver whose callback the framework runs on the
 * calling thread (DriverEntry after its WdfDriverCreate,
 * EvtDriverDeviceAdd, PnP/power, unload and shutdown callbacks, its
 * devices' queue I/O callbacks, timers and work items); elsewhere (other
 * queue callbacks, completion routines, the application's own threads)
 * the driver made with WdfDriverCreate(NULL, ...), else the oldest loaded
 * one. */
NTSTATUS UwdfLoadDriver(PDRIVER_INITIALIZE DriverEntry, PCSTR Name, WDFDRIVER *Driver);
/* The same for a shared object exporting DriverEntry (dlopen RTLD_NOW |
 * RTLD_LOCAL): STATUS_DLL_NOT_FOUND if it does not load (the reason is
 * logged), STATUS_ENTRYPOINT_NOT_FOUND without DriverEntry. Unloading
 * closes it. */
NTSTATUS UwdfLoadDriverFromFile(PCSTR Path, PCSTR Name, WDFDRIVER *Driver);
/* Unload in WDF's order: every device stack with a device of this driver
 * is removed (UwdfDeviceRemove without the query), then EvtDriverUnload,
 * then the WDFDRIVER is deleted (its children, its EvtCleanupCallback,
 * EvtDestroyCallback). STATUS_INVALID_PARAMETER for a driver the host did
 * not load. Hosted WDFDRIVERs cannot be WdfObjectDelete'd. PASSIVE_LEVEL. */
NTSTATUS UwdfUnloadDriver(WDFDRIVER Driver);

/* A device as an INF entry describes it. Filters are loaded drivers'
 * names; LowerFilters[0] sits right above the hardware, UpperFilters[0]
 * right above the function driver (the INF's order). HardwarePath: a file
 * or block device standing for the hardware; the lowest device's
 * WdfDeviceGetIoTarget is an I/O target opened on it (read/write), or a
 * target that is not open when there is none. */
typedef struct _UWDF_DEVICE_DESCRIPTION {
    ULONG Size;
    PCSTR HardwareId;
    PCSTR FunctionDriver;
    PCSTR HardwarePath;
    PCSTR const *LowerFilters;
    ULONG LowerFilterCount;
    PCSTR const *UpperFilters;
    ULONG UpperFilterCount;
} UWDF_DEVICE_DESCRIPTION, *PUWDF_DEVICE_DESCRIPTION;

FORCEINLINE VOID UWDF_DEVICE_DESCRIPTION_INIT(PUWDF_DEVICE_DESCRIPTION Description, PCSTR HardwareId,
                                              PCSTR FunctionDriver)
{
    __builtin_memset(Description, 0, sizeof(UWDF_DEVICE_DESCRIPTION));
    Description->Size = sizeof(UWDF_DEVICE_DESCRIPTION);
    Description->HardwareId = HardwareId;
    Description->FunctionDriver = FunctionDriver;
}

/* A device node: the stack of one arrived device. */
typedef struct UWDF_DEVNODE__ *UWDF_DEVNODE;

/* The device arrives and starts. The stack is built bottom-up: lower
 * filters, function driver, upper filters, each driver's
 * EvtDriverDeviceAdd getting a WDFDEVICE_INIT (the framework's: the driver
 * never frees it); a filter whose EvtDriverDeviceAdd fails without making a
 * device is left out, any other failure is returned with the stack torn
 * down. Then each device from the bottom up: EvtDevicePrepareHardware,
 * EvtDeviceD0Entry(WdfPowerDeviceD3Final), EvtDeviceD0EntryPostInterrupts-
 * Enabled, power-managed queues started, EvtDeviceSelfManagedIoInit; then
 * the device interfaces are enabled (arrival notifications). A failing
 * callback fails the arrival with its status after WDF's unwinding: that
 * device gets ReleaseHardware (Prepare or D0Entry failed: no D0Exit;
 * SelfManagedIoInit failed: queues stopped, D0Exit(D3Final), Release,
 * queues purged, SelfManagedIoFlush and Cleanup), the devices below it the
 * orderly removal, and all are deleted. The resource lists are NULL (no
 * hardware resources). STATUS_OBJECT_NAME_NOT_FOUND: a driver not loaded;
 * STATUS_INFO_LENGTH_MISMATCH: a wrong Size. PASSIVE_LEVEL; PnP operations
 * run one at a time in the process. */
NTSTATUS UwdfDeviceArrive(const UWDF_DEVICE_DESCRIPTION *Description, UWDF_DEVNODE *DevNode);
/* Orderly removal: EvtDeviceQueryRemove of each device top-down (a
 * failure vetoes: returned, the stack stays started); then each device
 * top-down: if in D0, EvtDeviceSelfManagedIoSuspend, power-managed queues
 * stopped (EvtIoStop for requests the driver holds), D0ExitPreInterrupts-
 * Disabled(WdfPowerDeviceD3Final), D0Exit(WdfPowerDeviceD3Final); then
 * EvtDeviceReleaseHardware, power-managed queues purged,
 * EvtDeviceSelfManagedIoFlush, the other queues purged,
 * EvtDeviceSelfManagedIoCleanup, and the device deleted (cleanup and
 * destroy callbacks). Interfaces are disabled (removal notifications) and
 * new I/O to the stack fails with STATUS_DELETE_PENDING from the start of
 * the removal. DevNode is invalid afterwards. */
NTSTATUS UwdfDeviceRemove(UWDF_DEVNODE DevNode);
/* Surprise removal: as the orderly one without the query, each device's
 * EvtDeviceSurpriseRemoval first. I/O in flight completes (cancelled where
 * it can be) before the devices go. DevNode is invalid afterwards. */
NTSTATUS UwdfDeviceSurpriseRemove(UWDF_DEVNODE DevNode);
/* A low power state (WdfPowerDeviceD1..D3) and back (WdfPowerDeviceD0).
 * Down, top-down: EvtDeviceSelfManagedIoSuspend, power-managed queues
 * stopped (they keep accepting: requests wait), D0ExitPreInterrupts-
 * Disabled(Dx), D0Exit(Dx). Up, bottom-up: D0Entry(Dx), D0EntryPost-
 * InterruptsEnabled(Dx), power-managed queues started (EvtIoResume),
 * EvtDeviceSelfManagedIoRestart. The current state again: STATUS_SUCCESS,
 * nothing called; Dx to another Dx: STATUS_INVALID_DEVICE_STATE; other
 * values: STATUS_INVALID_PARAMETER. A failing Suspend, D0Entry or Restart
 * surprise-removes the stack (WDF's reaction) and is returned: DevNode is
 * then invalid. */
NTSTATUS UwdfDeviceSetPowerState(UWDF_DEVNODE DevNode, WDF_POWER_DEVICE_STATE State);
/* The device of the named driver in the stack (NULL: the top one); NULL
 * if there is none. */
WDFDEVICE UwdfDevNodeGetDevice(UWDF_DEVNODE DevNode, PCSTR DriverName);
/* System shutdown: every control device's EvtDeviceShutdownNotification
 * (WdfControlDeviceInitSetShutdownNotification), the WdfDeviceShutdown
 * ones first, then the WdfDeviceLastChanceShutdown ones. The port never
 * calls it by itself (not at exit). PASSIVE_LEVEL. */
VOID UwdfSystemShutdown(void);
UWDF_END_DECLS
#endif
