/* Discard (IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES, DeviceDsmAction_Trim)
 * and zeroing (FSCTL_SET_ZERO_DATA) for file and block-device targets, and
 * the validation of their ranges that remote targets (NBD) share before
 * their engine sends the ranges to the server.
 * Block devices: BLKDISCARD / BLKZEROOUT. Files: fallocate(2) PUNCH_HOLE or
 * ZERO_RANGE, keeping the size. These calls block, so the send path runs
 * them on the worker thread (lib/worker.c). Every range is validated before
 * any is touched. */
#include "runtime.h"
#include "iotarget.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#define DSM_RANGES_ALIGN 8 /* DEVICE_DATA_SET_RANGE holds LONGLONGs */

bool uwdf_blockops_handles(ULONG code)
{
    return code == IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES || code == FSCTL_SET_ZERO_DATA;
}

/* [offset, offset+length) inside the target and on logical-sector
 * boundaries (the kernel refuses anything else on block devices; files get
 * the same rule so code tested on a file behaves on a disk). */
static NTSTATUS blockops_check_range(struct uwdf_iotarget *t, uint64_t offset, uint64_t length,
                                     uint64_t size)
{
    uint64_t end;
    if (length == 0 || __builtin_add_overflow(offset, length, &end) || end > size)
        return STATUS_INVALID_PARAMETER;
    if (offset % t->logical_sector || length % t->logical_sector)
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

static uint64_t blockops_size(struct uwdf_iotarget *t)
{
    ULONG_PTR info;
    GET_LENGTH_INFORMATION li;
    if (!NT_SUCCESS(uwdf_iotarget_ioctl(t, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li, sizeof(li), &info)))
        return t->size;
    return (uint64_t)li.Length.QuadPart;
}

static int blockops_discard(struct uwdf_iotarget *t, uint64_t offset, uint64_t length)
{
    if (t->is_block) {
        uint64_t range[2] = { offset, length };
        return ioctl(t->fd, BLKDISCARD, range) == 0 ? 0 : -errno;
    }
    return fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0
               ? 0
               : -errno;
}

static int blockops_zero(struct uwdf_iotarget *t, uint64_t offset, uint64_t length)
{
    if (t->is_block) {
        uint64_t range[2] = { offset, length };
        return ioctl(t->fd, BLKZEROOUT, range) == 0 ? 0 : -errno;
    }
    if (fallocate(t->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0)
        return 0;
    if (errno != EOPNOTSUPP)
        return -errno;
    /* Some file systems only punch holes; a hole reads as zeros too. */
    return blockops_discard(t, offset, length);
}

/* The caller's buffers need not be aligned (a user pointer, not the I/O
 * manager's system buffer): their structures are read through copies. */
static DEVICE_DATA_SET_RANGE blockops_range(const void *ranges, size_t i)
{
    DEVICE_DATA_SET_RANGE r;
    memcpy(&r, (const char *)ranges + i * sizeof(r), sizeof(r));
    return r;
}

static NTSTATUS blockops_trim(struct uwdf_iotarget *t, const void *in, size_t in_len, uwdf_blockops_range_fn fn,
                              void *ctx)
{
    DEVICE_MANAGE_DATA_SET_ATTRIBUTES attrs;
    const DEVICE_MANAGE_DATA_SET_ATTRIBUTES *dsm = &attrs;
    uint64_t size = blockops_size(t);
    if (!in || in_len < sizeof(attrs))
        return STATUS_INVALID_PARAMETER;
    memcpy(&attrs, in, sizeof(attrs));
    if (dsm->Size < sizeof(*dsm))
        return STATUS_INVALID_PARAMETER;
    if (dsm->Action != DeviceDsmAction_Trim)
        return STATUS_NOT_SUPPORTED;
    if (dsm->Flags & DEVICE_DSM_FLAG_ENTIRE_DATA_SET_RANGE) {
        if (size == 0)
            return STATUS_SUCCESS;
        int r = fn(ctx, 0, size - size % t->logical_sector);
        return r ? uwdf_status_from_errno(r) : STATUS_SUCCESS;
    }
    uint64_t end;
    if (dsm->DataSetRangesLength == 0 || dsm->DataSetRangesOffset % DSM_RANGES_ALIGN ||
        dsm->DataSetRangesLength % sizeof(DEVICE_DATA_SET_RANGE) ||
        __builtin_add_overflow((uint64_t)dsm->DataSetRangesOffset, (uint64_t)dsm->DataSetRangesLength, &end) ||
        end > in_len)
        return STATUS_INVALID_PARAMETER;
    const void *ranges = (const char *)in + dsm->DataSetRangesOffset;
    size_t n = dsm->DataSetRangesLength / sizeof(DEVICE_DATA_SET_RANGE);
    for (size_t i = 0; i < n; i++) {
        DEVICE_DATA_SET_RANGE range = blockops_range(ranges, i);
        if (range.StartingOffset < 0)
            return STATUS_INVALID_PARAMETER;
        NTSTATUS status = blockops_check_range(t, (uint64_t)range.StartingOffset, range.LengthInBytes, size);
        if (!NT_SUCCESS(status))
            return status;
    }
    for (size_t i = 0; i < n; i++) {
        DEVICE_DATA_SET_RANGE range = blockops_range(ranges, i);
        int r = fn(ctx, (uint64_t)range.StartingOffset, range.LengthInBytes);
        if (r)
            return uwdf_status_from_errno(r);
    }
    return STATUS_SUCCESS;
}

static NTSTATUS blockops_set_zero(struct uwdf_iotarget *t, const void *in, size_t in_len, uwdf_blockops_range_fn fn,
                                  void *ctx)
{
    FILE_ZERO_DATA_INFORMATION zero;
    const FILE_ZERO_DATA_INFORMATION *z = &zero;
    if (!in || in_len < sizeof(zero))
        return STATUS_INVALID_PARAMETER;
    memcpy(&zero, in, sizeof(zero));
    LONGLONG from = z->FileOffset.QuadPart, to = z->BeyondFinalZero.QuadPart;
    if (from < 0 || to < from)
        return STATUS_INVALID_PARAMETER;
    if (to == from)
        return STATUS_SUCCESS;
    uint64_t size = blockops_size(t);
    if (!t->is_block) {
        /* Windows zeroes a file range without extending the file. */
        if ((uint64_t)from >= size)
            return STATUS_SUCCESS;
        if ((uint64_t)to > size)
            to = (LONGLONG)size;
        int r = fn(ctx, (uint64_t)from, (uint64_t)(to - from));
        return r ? uwdf_status_from_errno(r) : STATUS_SUCCESS;
    }
    NTSTATUS status = blockops_check_range(t, (uint64_t)from, (uint64_t)(to - from), size);
    if (!NT_SUCCESS(status))
        return status;
    int r = fn(ctx, (uint64_t)from, (uint64_t)(to - from));
    return r ? uwdf_status_from_errno(r) : STATUS_SUCCESS;
}

NTSTATUS uwdf_blockops_for_each_range(struct uwdf_iotarget *t, ULONG code, const void *in, size_t in_len,
                                      uwdf_blockops_range_fn fn, void *ctx)
{
    if (!(t->access & FILE_WRITE_DATA))
        return STATUS_ACCESS_DENIED;
    if (t->is_stream)
        return STATUS_INVALID_DEVICE_REQUEST;
    return code == FSCTL_SET_ZERO_DATA ? blockops_set_zero(t, in, in_len, fn, ctx)
                                       : blockops_trim(t, in, in_len, fn, ctx);
}

static int blockops_discard_range(void *ctx, uint64_t offset, uint64_t length)
{
    return blockops_discard(ctx, offset, length);
}

static int blockops_zero_range(void *ctx, uint64_t offset, uint64_t length)
{
    return blockops_zero(ctx, offset, length);
}

NTSTATUS uwdf_blockops_ioctl(struct uwdf_iotarget *t, ULONG code, const void *in, size_t in_len)
{
    return uwdf_blockops_for_each_range(t, code, in, in_len,
                                        code == FSCTL_SET_ZERO_DATA ? blockops_zero_range : blockops_discard_range, t);
}
