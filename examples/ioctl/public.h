/*++
    What the control-device driver and its client share: names, IOCTL
    codes and the size of the device's store.
--*/
#ifndef UWDF_CTLDEV_PUBLIC_H
#define UWDF_CTLDEV_PUBLIC_H

//
// The control device's NT name and the symbolic link applications open.
// An open names its session: \DosDevices\UwdfCtlDev\<name> logs the
// session's requests to <name> in the log directory.
//
#define CTLDEV_DEVICE_NAME   L"\\Device\\UwdfCtlDev"
#define CTLDEV_LINK_NAME     L"\\DosDevices\\UwdfCtlDev"
#define CTLDEV_LOG_DIRECTORY L"\\??\\C:\\UwdfCtlDev"
#define CTLDEV_DRIVER_LOG    L"\\??\\C:\\UwdfCtlDev\\driver.log"

//
// The device keeps CTLDEV_STORE_SIZE bytes of its own.
//
#define CTLDEV_STORE_SIZE 4096

//
// METHOD_BUFFERED: the output is the input, byte order reversed.
//
#define IOCTL_CTLDEV_REVERSE_BUFFERED \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0x900, METHOD_BUFFERED, FILE_ANY_ACCESS)

//
// METHOD_IN_DIRECT: input, a ULONG offset into the store; the "output"
// buffer (mapped for reading) is written to the store at that offset.
//
#define IOCTL_CTLDEV_STORE_IN_DIRECT \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0x901, METHOD_IN_DIRECT, FILE_WRITE_ACCESS)

//
// METHOD_OUT_DIRECT: input, a ULONG offset into the store; the output
// buffer (mapped for writing) is filled from the store at that offset.
//
#define IOCTL_CTLDEV_FETCH_OUT_DIRECT \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0x902, METHOD_OUT_DIRECT, FILE_READ_ACCESS)

//
// METHOD_NEITHER: as REVERSE_BUFFERED, on the requestor's own buffers,
// which the driver probes and locks in the requestor's context.
//
#define IOCTL_CTLDEV_REVERSE_NEITHER \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0x903, METHOD_NEITHER, FILE_ANY_ACCESS)

#endif
