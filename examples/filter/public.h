/*++
    What the disk driver, the filter above it and their client share.
--*/
#ifndef UWDF_FILTER_PUBLIC_H
#define UWDF_FILTER_PUBLIC_H

//
// The disk driver's device interface; opening it opens the top of the
// stack, the filter.
//
// {3F9B2C61-7A0E-4D8B-9C35-2E6D41A8F0C7}
DEFINE_GUID(GUID_DEVINTERFACE_UWDF_SAMPLE_DISK,
            0x3f9b2c61, 0x7a0e, 0x4d8b, 0x9c, 0x35, 0x2e, 0x6d, 0x41, 0xa8, 0xf0, 0xc7);

//
// The filter's counters of what passed through it, since the device
// arrived. Answered by the filter itself (not forwarded, not counted).
//
typedef struct _FILTER_STATISTICS {
    LONG64 Reads;            // read requests passed down
    LONG64 Writes;           // write requests passed down
    LONG64 DeviceControls;   // IOCTLs passed down
    LONG64 BytesRead;        // bytes the completed reads returned
    LONG64 BytesWritten;     // bytes the completed writes took
    LONG64 Failed;           // reads and writes the device below failed
} FILTER_STATISTICS, *PFILTER_STATISTICS;

#define IOCTL_FILTER_GET_STATISTICS \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0xA00, METHOD_BUFFERED, FILE_READ_ACCESS)

#endif
