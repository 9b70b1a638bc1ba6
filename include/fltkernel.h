/* Filter Manager subset (fltkernel.h): the callback-data I/O a minifilter
 * issues itself (FltAllocateCallbackData, FltPerformSynchronousIo,
 * FltPerformAsynchronousIo, FltReuseCallbackData, FltFreeCallbackData,
 * FltReadFile, FltWriteFile) and the plumbing it needs (registration,
 * volumes, instances, FltCreateFileEx, FltClose).
 *
 * Port decisions (uwdf):
 * - A volume is a Linux directory or a block device (FltGetVolumeFromName);
 *   FltCreateFileEx opens an absolute Linux path under the volume directory
 *   (or the block device itself). A path whose parent does not exist gives
 *   STATUS_OBJECT_PATH_NOT_FOUND; a path outside the volume (after resolving
 *   "..", symlinks) STATUS_ACCESS_DENIED; a relative one
 *   STATUS_OBJECT_NAME_INVALID. Instance may not be NULL.
 * - Files are opened as WDF I/O targets of a hidden control device the filter
 *   makes, so dispositions, options (FILE_NO_INTERMEDIATE_BUFFERING = O_DIRECT,
 *   ...) and access map exactly as for WdfIoTargetOpen; the I/O runs on the
 *   same io_uring / libaio engines.
 * - The completion callback of FltPerformAsynchronousIo runs on the file's
 *   engine thread at PASSIVE_LEVEL, so it may reuse the callback data and
 *   perform the next operation itself (the reissue pattern). It runs exactly
 *   once, also when the operation fails before it reaches the engine (then
 *   inline, and FltPerformAsynchronousIo returns STATUS_SUCCESS: "completed,
 *   callback already called").
 * - FltPerformSynchronousIo on a file's own engine thread (from a callback)
 *   would deadlock: IoStatus becomes STATUS_INVALID_DEVICE_REQUEST instead.
 * - FltReuseCallbackData (IRQL <= APC_LEVEL) and FltFreeCallbackData
 *   (<= DISPATCH_LEVEL) above their IRQL: a bug check (WDF_VIOLATION,
 *   WDF_VERIFIER_IRQL_MISMATCH) with the verifier, otherwise logged; either
 *   way they do nothing. FltReissueSynchronousIo performs the operation the
 *   data describes again, synchronously, with its current parameters
 *   (PASSIVE_LEVEL; above it, or with an instance of another filter,
 *   IoStatus says STATUS_INVALID_DEVICE_REQUEST / STATUS_INVALID_PARAMETER).
 * - FltReuseCallbackData / FltFreeCallbackData free the MDL chain at
 *   Iopb->Parameters.Read/Write.MdlAddress (IoFreeMdl on each Next), whoever
 *   allocated it. Reuse or free while asynchronous I/O has not called back is
 *   a bug check (WDF_VIOLATION, WDF_VERIFIER_FATAL_ERROR) and does nothing.
 * - FltUnregisterFilter must come before the driver is deleted. */
#ifndef UWDF_FLTKERNEL_H
#define UWDF_FLTKERNEL_H

#include "wdf.h"
#include "ntifs.h"

UWDF_BEGIN_DECLS

typedef struct _FLT_FILTER *PFLT_FILTER;
typedef struct _FLT_VOLUME *PFLT_VOLUME;
typedef struct _FLT_INSTANCE *PFLT_INSTANCE;
typedef struct _ETHREAD *PETHREAD;
typedef struct _KTRANSACTION *PKTRANSACTION;
typedef PVOID PFLT_CONTEXT;

typedef ULONG FLT_CALLBACK_DATA_FLAGS;
typedef ULONG FLT_REGISTRATION_FLAGS;
typedef ULONG FLT_ALLOCATE_CALLBACK_DATA_FLAGS;
typedef ULONG FLT_IO_OPERATION_FLAGS;
typedef ULONG FLT_FILTER_UNLOAD_FLAGS;
typedef ULONG FLT_INSTANCE_SETUP_FLAGS;
typedef ULONG FLT_INSTANCE_QUERY_TEARDOWN_FLAGS;
typedef ULONG FLT_INSTANCE_TEARDOWN_FLAGS;

/* ---- objects and registration ---- */
/* OBJECT_ATTRIBUTES, OBJ_* and InitializeObjectAttributes: ntdef.h. */

typedef enum _FLT_FILESYSTEM_TYPE {
    FLT_FSTYPE_UNKNOWN = 0,
    FLT_FSTYPE_RAW = 1,
} FLT_FILESYSTEM_TYPE;

typedef struct _FLT_RELATED_OBJECTS {
    USHORT Size;
    USHORT TransactionContext;
    PFLT_FILTER Filter;
    PFLT_VOLUME Volume;
    PFLT_INSTANCE Instance;
    PFILE_OBJECT FileObject;
    PKTRANSACTION Transaction;
} FLT_RELATED_OBJECTS, *PFLT_RELATED_OBJECTS;
typedef const FLT_RELATED_OBJECTS *PCFLT_RELATED_OBJECTS;

typedef NTSTATUS FLT_FILTER_UNLOAD_CALLBACK(FLT_FILTER_UNLOAD_FLAGS Flags);
typedef FLT_FILTER_UNLOAD_CALLBACK *PFLT_FILTER_UNLOAD_CALLBACK;
typedef NTSTATUS FLT_INSTANCE_SETUP_CALLBACK(PCFLT_RELATED_OBJECTS FltObjects, FLT_INSTANCE_SETUP_FLAGS Flags,
                                             DEVICE_TYPE VolumeDeviceType,
                                             FLT_FILESYSTEM_TYPE VolumeFilesystemType);
typedef FLT_INSTANCE_SETUP_CALLBACK *PFLT_INSTANCE_SETUP_CALLBACK;
typedef NTSTATUS FLT_INSTANCE_QUERY_TEARDOWN_CALLBACK(PCFLT_RELATED_OBJECTS FltObjects,
                                                      FLT_INSTANCE_QUERY_TEARDOWN_FLAGS Flags);
typedef FLT_INSTANCE_QUERY_TEARDOWN_CALLBACK *PFLT_INSTANCE_QUERY_TEARDOWN_CALLBACK;
typedef VOID FLT_INSTANCE_TEARDOWN_CALLBACK(PCFLT_RELATED_OBJECTS FltObjects, FLT_INSTANCE_TEARDOWN_FLAGS Reason);
typedef FLT_INSTANCE_TEARDOWN_CALLBACK *PFLT_INSTANCE_TEARDOWN_CALLBACK;

#define FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP 0x00000001
#define FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS 0x00000002
#define FLTFL_REGISTRATION_SUPPORT_DAX_VOLUME 0x00000004

#define FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT 0x00000001
#define FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT 0x00000002
#define FLTFL_INSTANCE_SETUP_NEWLY_MOUNTED_VOLUME 0x00000004
#define FLTFL_INSTANCE_TEARDOWN_MANUAL 0x00000001
#define FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD 0x00000002
#define FLTFL_INSTANCE_TEARDOWN_MANDATORY_FILTER_UNLOAD 0x00000004
#define FLTFL_INSTANCE_TEARDOWN_VOLUME_DISMOUNT 0x00000008
#define FLTFL_INSTANCE_TEARDOWN_INTERNAL_ERROR 0x00000010

#define FLT_REGISTRATION_VERSION_0200 0x0200
#define FLT_REGISTRATION_VERSION_0201 0x0201
#define FLT_REGISTRATION_VERSION_0202 0x0202
#define FLT_REGISTRATION_VERSION_0203 0x0203
#define FLT_REGISTRATION_VERSION FLT_REGISTRATION_VERSION_0203

/* Members after the teardown callbacks are accepted and ignored. */
typedef struct _FLT_REGISTRATION {
    USHORT Size;
    USHORT Version;
    FLT_REGISTRATION_FLAGS Flags;
    const void *ContextRegistration;
    const void *OperationRegistration;
    PFLT_FILTER_UNLOAD_CALLBACK FilterUnloadCallback;
    PFLT_INSTANCE_SETUP_CALLBACK InstanceSetupCallback;
    PFLT_INSTANCE_QUERY_TEARDOWN_CALLBACK InstanceQueryTeardownCallback;
    PFLT_INSTANCE_TEARDOWN_CALLBACK InstanceTeardownStartCallback;
    PFLT_INSTANCE_TEARDOWN_CALLBACK InstanceTeardownCompleteCallback;
    PVOID GenerateFileNameCallback;
    PVOID NormalizeNameComponentCallback;
    PVOID NormalizeContextCleanupCallback;
    PVOID TransactionNotificationCallback;
    PVOID NormalizeNameComponentExCallback;
    PVOID SectionNotificationCallback;
} FLT_REGISTRATION, *PFLT_REGISTRATION;

/* ---- callback data ---- */
#define FLTFL_CALLBACK_DATA_REISSUE_MASK 0x0000FFFF
#define FLTFL_CALLBACK_DATA_IRP_OPERATION 0x00000001
#define FLTFL_CALLBACK_DATA_FAST_IO_OPERATION 0x00000002
#define FLTFL_CALLBACK_DATA_FS_FILTER_OPERATION 0x00000004
#define FLTFL_CALLBACK_DATA_SYSTEM_BUFFER 0x00000008
#define FLTFL_CALLBACK_DATA_GENERATED_IO 0x00010000
#define FLTFL_CALLBACK_DATA_REISSUED_IO 0x00020000
#define FLTFL_CALLBACK_DATA_DRAINING_IO 0x00040000
#define FLTFL_CALLBACK_DATA_POST_OPERATION 0x00080000
#define FLTFL_CALLBACK_DATA_NEW_SYSTEM_BUFFER 0x00100000
#define FLTFL_CALLBACK_DATA_DIRTY 0x80000000

#define FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY 0x00000001

#define FLTFL_IO_OPERATION_NON_CACHED 0x00000001
#define FLTFL_IO_OPERATION_PAGING 0x00000002
#define FLTFL_IO_OPERATION_DO_NOT_UPDATE_BYTE_OFFSET 0x00000004
#define FLTFL_IO_OPERATION_SYNCHRONOUS_PAGING 0x00000008

typedef union _FLT_PARAMETERS {
    struct {
        PVOID SecurityContext;
        ULONG Options;
        USHORT FileAttributes;
        USHORT ShareAccess;
        ULONG EaLength;
        PVOID EaBuffer;
        LARGE_INTEGER AllocationSize;
    } Create;
    struct {
        ULONG Length;
        ULONG Key;
        LARGE_INTEGER ByteOffset;
        PVOID ReadBuffer;
        PMDL MdlAddress;
    } Read;
    struct {
        ULONG Length;
        ULONG Key;
        LARGE_INTEGER ByteOffset;
        PVOID WriteBuffer;
        PMDL MdlAddress;
    } Write;
    struct {
        ULONG Type; /* the IRP's MinorFunction carries the flush kind (ntifs.h) */
    } FlushBuffers;
    struct {
        PVOID Argument1;
        PVOID Argument2;
        PVOID Argument3;
        PVOID Argument4;
        PVOID Argument5;
        LARGE_INTEGER Argument6;
    } Others;
} FLT_PARAMETERS, *PFLT_PARAMETERS;

typedef struct _FLT_IO_PARAMETER_BLOCK {
    ULONG IrpFlags;
    UCHAR MajorFunction;
    UCHAR MinorFunction;
    UCHAR OperationFlags;
    UCHAR Reserved;
    PFILE_OBJECT TargetFileObject;
    PFLT_INSTANCE TargetInstance;
    FLT_PARAMETERS Parameters;
} FLT_IO_PARAMETER_BLOCK, *PFLT_IO_PARAMETER_BLOCK;

typedef struct _FLT_CALLBACK_DATA {
    FLT_CALLBACK_DATA_FLAGS Flags;
    PETHREAD const Thread;
    PFLT_IO_PARAMETER_BLOCK const Iopb;
    IO_STATUS_BLOCK IoStatus;
    struct _FLT_TAG_DATA_BUFFER *TagData;
    union {
        struct {
            LIST_ENTRY QueueLinks;
            PVOID QueueContext[2];
        };
        PVOID FilterContext[4];
    };
    KPROCESSOR_MODE RequestorMode;
} FLT_CALLBACK_DATA, *PFLT_CALLBACK_DATA;

#define FLT_IS_IRP_OPERATION(Data) (((Data)->Flags & FLTFL_CALLBACK_DATA_IRP_OPERATION) != 0)
#define FLT_IS_FASTIO_OPERATION(Data) (((Data)->Flags & FLTFL_CALLBACK_DATA_FAST_IO_OPERATION) != 0)
#define FLT_IS_FS_FILTER_OPERATION(Data) (((Data)->Flags & FLTFL_CALLBACK_DATA_FS_FILTER_OPERATION) != 0)
#define FLT_IS_REISSUED_IO(Data) (((Data)->Flags & FLTFL_CALLBACK_DATA_REISSUED_IO) != 0)
#define FLT_IS_SYSTEM_BUFFER(Data) (((Data)->Flags & FLTFL_CALLBACK_DATA_SYSTEM_BUFFER) != 0)

typedef VOID FLT_COMPLETED_ASYNC_IO_CALLBACK(PFLT_CALLBACK_DATA CallbackData, PFLT_CONTEXT Context);
typedef FLT_COMPLETED_ASYNC_IO_CALLBACK *PFLT_COMPLETED_ASYNC_IO_CALLBACK;

/* ---- DDIs ---- */
NTSTATUS FltRegisterFilter(PDRIVER_OBJECT Driver, const FLT_REGISTRATION *Registration, PFLT_FILTER *RetFilter);
NTSTATUS FltStartFiltering(PFLT_FILTER Filter);
VOID FltUnregisterFilter(PFLT_FILTER Filter);
NTSTATUS FltGetVolumeFromName(PFLT_FILTER Filter, PCUNICODE_STRING VolumeName, PFLT_VOLUME *RetVolume);
NTSTATUS FltAttachVolume(PFLT_FILTER Filter, PFLT_VOLUME Volume, PCUNICODE_STRING InstanceName,
                         PFLT_INSTANCE *RetInstance);
NTSTATUS FltDetachVolume(PFLT_FILTER Filter, PFLT_VOLUME Volume, PCUNICODE_STRING InstanceName);
VOID FltObjectDereference(PVOID FltObject);

NTSTATUS FltCreateFileEx(PFLT_FILTER Filter, PFLT_INSTANCE Instance, PHANDLE FileHandle,
                         PFILE_OBJECT *FileObject, ACCESS_MASK DesiredAccess,
                         POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
                         PLARGE_INTEGER AllocationSize, ULONG FileAttributes, ULONG ShareAccess,
                         ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer, ULONG EaLength,
                         ULONG Flags);
NTSTATUS FltClose(HANDLE FileHandle);
VOID ObReferenceObject(PVOID Object);
VOID ObDereferenceObject(PVOID Object);

NTSTATUS FltAllocateCallbackData(PFLT_INSTANCE Instance, PFILE_OBJECT FileObject, PFLT_CALLBACK_DATA *RetNewCallbackData);
NTSTATUS FltAllocateCallbackDataEx(PFLT_INSTANCE Instance, PFILE_OBJECT FileObject,
                                   FLT_ALLOCATE_CALLBACK_DATA_FLAGS Flags, PFLT_CALLBACK_DATA *RetNewCallbackData);
VOID FltPerformSynchronousIo(PFLT_CALLBACK_DATA CallbackData);
NTSTATUS FltPerformAsynchronousIo(PFLT_CALLBACK_DATA CallbackData, PFLT_COMPLETED_ASYNC_IO_CALLBACK CallbackRoutine,
                                  PVOID CallbackContext);
VOID FltReuseCallbackData(PFLT_CALLBACK_DATA CallbackData);
VOID FltFreeCallbackData(PFLT_CALLBACK_DATA CallbackData);
VOID FltReissueSynchronousIo(PFLT_INSTANCE InitiatingInstance, PFLT_CALLBACK_DATA CallbackData);

NTSTATUS FltReadFile(PFLT_INSTANCE InitiatingInstance, PFILE_OBJECT FileObject, PLARGE_INTEGER ByteOffset,
                     ULONG Length, PVOID Buffer, FLT_IO_OPERATION_FLAGS Flags, PULONG BytesRead,
                     PFLT_COMPLETED_ASYNC_IO_CALLBACK CallbackRoutine, PVOID CallbackContext);
NTSTATUS FltWriteFile(PFLT_INSTANCE InitiatingInstance, PFILE_OBJECT FileObject, PLARGE_INTEGER ByteOffset,
                      ULONG Length, PVOID Buffer, FLT_IO_OPERATION_FLAGS Flags, PULONG BytesWritten,
                      PFLT_COMPLETED_ASYNC_IO_CALLBACK CallbackRoutine, PVOID CallbackContext);

VOID FltSetCallbackDataDirty(PFLT_CALLBACK_DATA Data);
VOID FltClearCallbackDataDirty(PFLT_CALLBACK_DATA Data);
BOOLEAN FltIsCallbackDataDirty(PFLT_CALLBACK_DATA Data);

UWDF_END_DECLS
#endif
