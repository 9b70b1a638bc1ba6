/* The drivers of the served-stack tests (tests/diskfwd.c, tests/cntfilter.c):
 * a function driver that hands everything to its hardware, and a filter
 * that counts what passes through it. */
#ifndef STACKDRV_H
#define STACKDRV_H

/* The disk driver's device interface, and the name of its first device
 * (the n-th device it makes is \Device\UwdfDiskFwd<n>, from 0). */
// {9D3C1E52-77A4-4F0B-8C9E-2B5D6A1F0C31}
DEFINE_GUID(GUID_DEVINTERFACE_DISKFWD, 0x9d3c1e52, 0x77a4, 0x4f0b, 0x8c, 0x9e, 0x2b, 0x5d, 0x6a, 0x1f, 0x0c, 0x31);
#define DISKFWD_GUID_STRING "{9D3C1E52-77A4-4F0B-8C9E-2B5D6A1F0C31}"
#define DISKFWD_DEVICE_PREFIX L"\\Device\\UwdfDiskFwd"

/* What the filter prints (DbgPrintEx, error level: shown by default) when
 * its device goes away:
 *   cntfilter \Driver\NAME: reads=N read-bytes=N writes=N write-bytes=N other=N failed=N */
#define CNTFILTER_LINE "cntfilter "

#endif
