/* Size, sector sizes and direct-I/O alignment of file and block-device
 * targets, and the storage IOCTLs the framework answers from them. */
#include "runtime.h"
#include "iotarget.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define DEFAULT_SECTOR 512
#define CACHE_LINE 64
#define GEOMETRY_HEADS 255
#define GEOMETRY_SECTORS_PER_TRACK 63

static void geometry_dio_align(struct uwdf_iotarget *t)
{
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(t->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
        sx.stx_dio_mem_align && sx.stx_dio_offset_align) {
        t->dio_mem_align = sx.stx_dio_mem_align;
        t->dio_offset_align = sx.stx_dio_offset_align;
        return;
    }
#endif
    /* Older kernels: the logical sector is always enough. */
    t->dio_mem_align = t->logical_sector;
    t->dio_offset_align = t->logical_sector;
}

int uwdf_geometry_probe(struct uwdf_iotarget *t)
{
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return -errno;
    if (S_ISBLK(st.st_mode)) {
        uint64_t bytes = 0;
        int lbs = 0;
        unsigned int pbs = 0;
        if (ioctl(t->fd, BLKGETSIZE64, &bytes) != 0)
            return -errno;
        if (ioctl(t->fd, BLKSSZGET, &lbs) != 0 || lbs <= 0)
            lbs = DEFAULT_SECTOR;
        if (ioctl(t->fd, BLKPBSZGET, &pbs) != 0 || pbs == 0)
            pbs = (unsigned)lbs;
        t->size = bytes;
        t->logical_sector = (uint32_t)lbs;
        t->physical_sector = pbs;
    } else {
        t->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        t->logical_sector = DEFAULT_SECTOR;
        t->physical_sector = st.st_blksize > 0 ? (uint32_t)st.st_blksize : DEFAULT_SECTOR;
    }
    geometry_dio_align(t);
    if (t->direct && S_ISREG(st.st_mode) && t->dio_offset_align > t->logical_sector)
        t->logical_sector = t->dio_offset_align;
    return 0;
}

static uint64_t geometry_current_size(struct uwdf_iotarget *t)
{
    struct stat st;
    /* A file grows; a block device's size is fixed while it is open. */
    if (!t->is_block && fstat(t->fd, &st) == 0 && S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    return t->size;
}

/* Whether discard reaches the medium. A block device says so in sysfs
 * (queue/discard_max_bytes; a partition's queue is its disk's). A regular
 * file can have holes punched on the file systems fallocate(2) lists for
 * FALLOC_FL_PUNCH_HOLE (ext4, XFS, Btrfs, tmpfs, F2FS, GFS2, OCFS2); asking
 * any other file system would mean punching a hole to find out. */
static bool geometry_trim_enabled(struct uwdf_iotarget *t)
{
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return false;
    if (S_ISBLK(st.st_mode)) {
        static const char *const queue[] = { "queue", "../queue" };
        for (size_t i = 0; i < RTL_NUMBER_OF(queue); i++) {
            char path[128];
            snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s/discard_max_bytes", major(st.st_rdev),
                     minor(st.st_rdev), queue[i]);
            FILE *f = fopen(path, "re");
            if (!f)
                continue;
            unsigned long long max = 0;
            int n = fscanf(f, "%llu", &max);
            fclose(f);
            return n == 1 && max > 0;
        }
        return false;
    }
    if (!S_ISREG(st.st_mode))
        return false;
    static const unsigned long punch_hole_fs[] = {
        0xEF53,     /* ext4 (and ext2/3, which refuse: EOPNOTSUPP comes back as STATUS_NOT_SUPPORTED) */
        0x58465342, /* XFS */
        0x9123683E, /* Btrfs */
        0x01021994, /* tmpfs */
        0xF2F52010, /* F2FS */
        0x01161970, /* GFS2 */
        0x7461636F, /* OCFS2 */
    };
    struct statfs sf;
    if (fstatfs(t->fd, &sf) != 0)
        return false;
    for (size_t i = 0; i < RTL_NUMBER_OF(punch_hole_fs); i++)
        if ((unsigned long)sf.f_type == punch_hole_fs[i])
            return true;
    return false;
}

static NTSTATUS ioctl_query_property(struct uwdf_iotarget *t, const void *in, size_t in_len, void *out,
                                     size_t out_len, ULONG_PTR *info)
{
    /* Read through a copy: the caller's buffer need not be aligned (the
     * I/O manager's system buffer would be; a user pointer is not). */
    STORAGE_PROPERTY_QUERY query;
    if (!in || in_len < offsetof(STORAGE_PROPERTY_QUERY, AdditionalParameters))
        return STATUS_INVALID_PARAMETER;
    memcpy(&query, in, offsetof(STORAGE_PROPERTY_QUERY, AdditionalParameters));
    const STORAGE_PROPERTY_QUERY *q = &query;
    bool supported = q->PropertyId == StorageAccessAlignmentProperty ||
                     q->PropertyId == StorageDeviceProperty || q->PropertyId == StorageDeviceTrimProperty;
    if (q->QueryType == PropertyExistsQuery)
        return supported ? STATUS_SUCCESS : STATUS_NOT_SUPPORTED;
    if (q->QueryType != PropertyStandardQuery)
        return STATUS_INVALID_PARAMETER;
    if (!supported)
        return STATUS_NOT_SUPPORTED;

    union {
        STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR align;
        STORAGE_DEVICE_DESCRIPTOR dev;
        DEVICE_TRIM_DESCRIPTOR trim;
    } d;
    size_t size;
    memset(&d, 0, sizeof(d));
    if (q->PropertyId == StorageAccessAlignmentProperty) {
        size = sizeof(d.align);
        d.align.Version = d.align.Size = (ULONG)size;
        d.align.BytesPerCacheLine = CACHE_LINE;
        d.align.BytesPerLogicalSector = t->logical_sector;
        d.align.BytesPerPhysicalSector = t->physical_sector;
    } else if (q->PropertyId == StorageDeviceTrimProperty) {
        size = sizeof(d.trim);
        d.trim.Version = d.trim.Size = (ULONG)size;
        d.trim.TrimEnabled = t->remote ? t->remote_trim : !t->is_stream && geometry_trim_enabled(t);
    } else {
        size = offsetof(STORAGE_DEVICE_DESCRIPTOR, RawDeviceProperties);
        d.dev.Version = d.dev.Size = (ULONG)size;
        d.dev.DeviceType = 0; /* direct-access device */
        d.dev.CommandQueueing = TRUE;
        d.dev.BusType = t->is_block ? BusTypeUnknown : BusTypeFileBackedVirtual;
        struct stat st;
        if (t->is_block && fstat(t->fd, &st) == 0) {
            char sys[128], link[256];
            snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", major(st.st_rdev), minor(st.st_rdev));
            ssize_t n = readlink(sys, link, sizeof(link) - 1);
            if (n > 0) {
                link[n] = '\0';
                if (strstr(link, "/nvme"))
                    d.dev.BusType = BusTypeNvme;
                else if (strstr(link, "/loop") || strstr(link, "/virtual/"))
                    d.dev.BusType = BusTypeFileBackedVirtual;
                else if (strstr(link, "/virtio"))
                    d.dev.BusType = BusTypeVirtual;
            }
        }
    }
    if (out_len >= size) {
        memcpy(out, &d, size);
        *info = size;
        return STATUS_SUCCESS;
    }
    if (out_len >= sizeof(STORAGE_DESCRIPTOR_HEADER)) {
        /* The Windows convention: the header tells the caller how much to
         * allocate. */
        memcpy(out, &d, sizeof(STORAGE_DESCRIPTOR_HEADER));
        *info = sizeof(STORAGE_DESCRIPTOR_HEADER);
        return STATUS_SUCCESS;
    }
    return STATUS_BUFFER_TOO_SMALL;
}

NTSTATUS uwdf_iotarget_ioctl(struct uwdf_iotarget *t, ULONG code, const void *in, size_t in_len,
                             void *out, size_t out_len, ULONG_PTR *information)
{
    *information = 0;
    switch (code) {
    case IOCTL_DISK_GET_LENGTH_INFO: {
        GET_LENGTH_INFORMATION li;
        if (!out || out_len < sizeof(li))
            return STATUS_BUFFER_TOO_SMALL;
        li.Length.QuadPart = (LONGLONG)geometry_current_size(t);
        memcpy(out, &li, sizeof(li));
        *information = sizeof(li);
        return STATUS_SUCCESS;
    }
    case IOCTL_DISK_GET_DRIVE_GEOMETRY:
    case IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: {
        DISK_GEOMETRY_EX g;
        size_t need = code == IOCTL_DISK_GET_DRIVE_GEOMETRY ? sizeof(DISK_GEOMETRY)
                                                             : offsetof(DISK_GEOMETRY_EX, Data);
        if (!out || out_len < need)
            return STATUS_BUFFER_TOO_SMALL;
        uint64_t size = geometry_current_size(t);
        uint64_t cyl_bytes = (uint64_t)GEOMETRY_HEADS * GEOMETRY_SECTORS_PER_TRACK * t->logical_sector;
        memset(&g, 0, sizeof(g));
        g.Geometry.Cylinders.QuadPart = (LONGLONG)(size / cyl_bytes);
        g.Geometry.MediaType = FixedMedia;
        g.Geometry.TracksPerCylinder = GEOMETRY_HEADS;
        g.Geometry.SectorsPerTrack = GEOMETRY_SECTORS_PER_TRACK;
        g.Geometry.BytesPerSector = t->logical_sector;
        g.DiskSize.QuadPart = (LONGLONG)size;
        memcpy(out, &g, need);
        *information = need;
        return STATUS_SUCCESS;
    }
    case IOCTL_DISK_IS_WRITABLE: {
        /* Opening a read-only block device for writing succeeds; only its
         * writes fail. */
        int ro = 0;
        struct statvfs vfs;
        if (t->remote)
            return t->remote_read_only ? STATUS_MEDIA_WRITE_PROTECTED : STATUS_SUCCESS;
        if (t->is_block)
            return ioctl(t->fd, BLKROGET, &ro) == 0 ? (ro ? STATUS_MEDIA_WRITE_PROTECTED : STATUS_SUCCESS)
                                                    : uwdf_status_from_errno(errno);
        if (fstatvfs(t->fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
            return STATUS_MEDIA_WRITE_PROTECTED;
        return STATUS_SUCCESS;
    }
    case IOCTL_STORAGE_QUERY_PROPERTY:
        return ioctl_query_property(t, in, in_len, out, out_len, information);
    default:
        return STATUS_INVALID_DEVICE_REQUEST;
    }
}
