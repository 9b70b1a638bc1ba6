/*++
    What the echo driver and its client share: the device interface class,
    the one private IOCTL and the limits.
--*/
#ifndef UWDF_ECHO_PUBLIC_H
#define UWDF_ECHO_PUBLIC_H

//
// The echo device's interface class. A client finds the device with
// IoGetDeviceInterfaces or IoRegisterPlugPlayNotification and opens the
// symbolic link name it gets.
//
// {8E1A7A5C-3D42-4B1F-A6C0-51D7E2F0B8A4}
DEFINE_GUID(GUID_DEVINTERFACE_UWDF_ECHO,
            0x8e1a7a5c, 0x3d42, 0x4b1f, 0xa6, 0xc0, 0x51, 0xd7, 0xe2, 0xf0, 0xb8, 0xa4);

//
// The largest write the device keeps. Longer writes fail with
// STATUS_INVALID_BUFFER_SIZE and leave the stored data as it was.
//
#define ECHO_MAX_WRITE_LENGTH (64 * 1024)

//
// The period of the timer that completes the request the device holds.
//
#define ECHO_TIMER_PERIOD_MS 5

//
// Input: a ULONG, the number of timer periods the device holds each
// following read or write before completing it (0, the default: the next
// tick completes it). A held request can be cancelled meanwhile.
//
#define IOCTL_ECHO_SET_HOLD_TICKS \
    CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_WRITE_ACCESS)

#endif
