/* File-system control subset (ntifs.h): flush variants and zeroing. */
#ifndef UWDF_NTIFS_H
#define UWDF_NTIFS_H

#include "wdm.h"

UWDF_BEGIN_DECLS

/* MinorFunction of an IRP_MJ_FLUSH_BUFFERS stack location (Windows 8+).
 * uwdf: 0 is fsync(2); IRP_MN_FLUSH_DATA_ONLY and IRP_MN_FLUSH_DATA_SYNC_ONLY
 * are fdatasync(2) (file data and what is needed to read it back, not all
 * metadata); IRP_MN_FLUSH_NO_SYNC is fsync too (Linux has no weaker flush). */
#define IRP_MN_FLUSH_DATA_ONLY 0x01
#define IRP_MN_FLUSH_NO_SYNC 0x02
#define IRP_MN_FLUSH_DATA_SYNC_ONLY 0x03

/* Zero a byte range (FSCTL_SET_ZERO_DATA): on a file, fallocate(2)
 * FALLOC_FL_ZERO_RANGE (keeping the size); on a block device, BLKZEROOUT.
 * Input: FILE_ZERO_DATA_INFORMATION; the range is [FileOffset, BeyondFinalZero). */
#define FSCTL_SET_ZERO_DATA CTL_CODE(FILE_DEVICE_FILE_SYSTEM, 50, METHOD_BUFFERED, FILE_WRITE_DATA)

typedef struct _FILE_ZERO_DATA_INFORMATION {
    LARGE_INTEGER FileOffset;
    LARGE_INTEGER BeyondFinalZero;
} FILE_ZERO_DATA_INFORMATION, *PFILE_ZERO_DATA_INFORMATION;

UWDF_END_DECLS
#endif
