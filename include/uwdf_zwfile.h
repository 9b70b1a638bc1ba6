/* File I/O through Zw* routines (on Windows: wdm.h and ntddk.h; included
 * by the port's wdm.h). Windows names such as \??\C:\dir\file map to Linux
 * files beneath the driver host's Windows-path root (UwdfSetWindowsPathRoot
 * in uwdf.h; docs/devices.md "File objects and Zw file I/O"); a name that
 * leads to a device of this process (\Device\X or a symbolic link such as
 * \??\X, \DosDevices\X, \GLOBAL??\X, perhaps followed by a file name)
 * opens the device: IRP_MJ_CREATE goes down its stack with a new file
 * object, and the handle's I/O goes to the device (docs/hosting.md). Every routine
 * here is PASSIVE_LEVEL only: above it they fail with
 * STATUS_INVALID_DEVICE_REQUEST (a bug check under the verifier). */
#ifndef UWDF_ZWFILE_H
#define UWDF_ZWFILE_H

#include "uwdfapi.h"

UWDF_BEGIN_DECLS

#define FILE_ATTRIBUTE_HIDDEN 0x00000002
#define FILE_ATTRIBUTE_SYSTEM 0x00000004
#define FILE_ATTRIBUTE_DIRECTORY 0x00000010
#define FILE_ATTRIBUTE_ARCHIVE 0x00000020

typedef enum _FILE_INFORMATION_CLASS {
    FileDirectoryInformation = 1,
    FileBasicInformation = 4,
    FileStandardInformation = 5,
    FilePositionInformation = 14,
    FileEndOfFileInformation = 20,
    FileMaximumInformation = 80,
} FILE_INFORMATION_CLASS, *PFILE_INFORMATION_CLASS;

typedef struct _FILE_BASIC_INFORMATION {
    LARGE_INTEGER CreationTime;
    LARGE_INTEGER LastAccessTime;
    LARGE_INTEGER LastWriteTime;
    LARGE_INTEGER ChangeTime;
    ULONG FileAttributes;
} FILE_BASIC_INFORMATION, *PFILE_BASIC_INFORMATION;

typedef struct _FILE_STANDARD_INFORMATION {
    LARGE_INTEGER AllocationSize;
    LARGE_INTEGER EndOfFile;
    ULONG NumberOfLinks;
    BOOLEAN DeletePending;
    BOOLEAN Directory;
} FILE_STANDARD_INFORMATION, *PFILE_STANDARD_INFORMATION;

typedef struct _FILE_POSITION_INFORMATION {
    LARGE_INTEGER CurrentByteOffset;
} FILE_POSITION_INFORMATION, *PFILE_POSITION_INFORMATION;

typedef struct _FILE_END_OF_FILE_INFORMATION {
    LARGE_INTEGER EndOfFile;
} FILE_END_OF_FILE_INFORMATION, *PFILE_END_OF_FILE_INFORMATION;

typedef VOID IO_APC_ROUTINE(PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock, ULONG Reserved);
typedef IO_APC_ROUTINE *PIO_APC_ROUTINE;

/* Opens or creates a file (or a directory, with FILE_DIRECTORY_FILE)
 * beneath the Windows-path root; IoStatusBlock->Information is
 * FILE_CREATED, FILE_OPENED, FILE_OVERWRITTEN or FILE_SUPERSEDED. The name
 * is ObjectAttributes->ObjectName, absolute (\??\X:\..., \DosDevices\X:\...,
 * \GLOBAL??\X:\..., \SystemRoot\...) or relative to RootDirectory, a
 * directory handle from ZwCreateFile (the open then stays beneath that
 * directory). Names match case-sensitively (OBJ_CASE_INSENSITIVE is
 * accepted and does not change that); a "." or ".." component, a ':' after
 * the drive (a stream) or a '/' is STATUS_OBJECT_NAME_INVALID; a symlink
 * that leads out of the root is STATUS_ACCESS_DENIED; a name in no drive
 * nor device STATUS_OBJECT_PATH_NOT_FOUND (STATUS_OBJECT_NAME_NOT_FOUND
 * when only its last component, as \??\NoSuch, is missing). FILE_SYNCHRONOUS_IO_(NON)ALERT needs
 * SYNCHRONIZE (or a GENERIC_* right) in DesiredAccess and gives the handle
 * a current byte offset. ShareAccess, FileAttributes, AllocationSize and
 * EA buffers are accepted and not applied (Linux has no share modes).
 * On a device: the create's status is the driver's (nothing is left open
 * when it fails); an exclusive device already open is
 * STATUS_ACCESS_DENIED; a \Device\ name that is no device's is
 * STATUS_OBJECT_NAME_NOT_FOUND. */
NTSTATUS ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
                      PIO_STATUS_BLOCK IoStatusBlock, PLARGE_INTEGER AllocationSize, ULONG FileAttributes,
                      ULONG ShareAccess, ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer,
                      ULONG EaLength);
NTSTATUS ZwOpenFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
                    PIO_STATUS_BLOCK IoStatusBlock, ULONG ShareAccess, ULONG OpenOptions);
/* Synchronous in this port: the transfer is done when they return. Event
 * and ApcRoutine must be NULL (the port has no event handles):
 * STATUS_INVALID_PARAMETER otherwise. ByteOffset NULL, or
 * {FILE_USE_FILE_POINTER_POSITION, -1}, means the handle's current offset
 * (a synchronous handle only; STATUS_INVALID_PARAMETER otherwise);
 * {FILE_WRITE_TO_END_OF_FILE, -1} writes at the end of the file. A
 * synchronous handle's offset moves past what was transferred. A read at
 * or past the end of the file is STATUS_END_OF_FILE. On a device handle
 * they send IRP_MJ_READ / IRP_MJ_WRITE at the offset and wait: status and
 * Information are the driver's; FILE_WRITE_TO_END_OF_FILE is
 * STATUS_INVALID_PARAMETER (a device has no end of file). */
NTSTATUS ZwReadFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                    PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset,
                    PULONG Key);
NTSTATUS ZwWriteFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                     PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset,
                     PULONG Key);
/* Sends IRP_MJ_DEVICE_CONTROL with IoControlCode to a device handle's
 * device and waits; status and Information are the driver's. The code's
 * RequiredAccess (FILE_READ_ACCESS, FILE_WRITE_ACCESS) must have been
 * granted to the handle: STATUS_ACCESS_DENIED otherwise. On a file handle
 * STATUS_INVALID_DEVICE_REQUEST. Event and ApcRoutine as ZwReadFile. */
NTSTATUS ZwDeviceIoControlFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                               PIO_STATUS_BLOCK IoStatusBlock, ULONG IoControlCode, PVOID InputBuffer,
                               ULONG InputBufferLength, PVOID OutputBuffer, ULONG OutputBufferLength);
/* FileBasicInformation, FileStandardInformation, FilePositionInformation;
 * FileEndOfFileInformation is set-only. STATUS_INFO_LENGTH_MISMATCH for a
 * short buffer, STATUS_INVALID_INFO_CLASS for another class. Setting
 * FileBasicInformation applies LastAccessTime and LastWriteTime (0 and -1:
 * unchanged); Linux has no settable creation or change time, nor the
 * attributes. A device handle has FilePositionInformation only
 * (STATUS_INVALID_DEVICE_REQUEST for the others). */
NTSTATUS ZwQueryInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock, PVOID FileInformation,
                                ULONG Length, FILE_INFORMATION_CLASS FileInformationClass);
NTSTATUS ZwSetInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock, PVOID FileInformation,
                              ULONG Length, FILE_INFORMATION_CLASS FileInformationClass);
/* fsync(2); STATUS_ACCESS_DENIED on a handle without write access;
 * STATUS_INVALID_DEVICE_REQUEST on a device handle. */
NTSTATUS ZwFlushBuffersFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock);
/* Closes a handle from ZwCreateFile / ZwOpenFile; STATUS_INVALID_HANDLE
 * for any other value. I/O running on the handle in other threads finishes
 * first; then a device handle's file object gets IRP_MJ_CLEANUP and
 * IRP_MJ_CLOSE (EvtFileCleanup, EvtFileClose). */
NTSTATUS ZwClose(HANDLE Handle);

UWDF_END_DECLS
#endif
