/* The shared-object test driver's interface (tests/pnpdrv.c). */
#ifndef PNPDRV_H
#define PNPDRV_H

#define PNPDRV_SIZE 4096
#define IOCTL_PNPDRV_DRIVER_NAME CTL_CODE(FILE_DEVICE_UNKNOWN, 0x901, METHOD_BUFFERED, FILE_ANY_ACCESS)

// {5B0E0E8A-5C0B-4C7A-9E4B-3E0A6A3D2F10}
DEFINE_GUID(GUID_DEVINTERFACE_PNPDRV, 0x5b0e0e8a, 0x5c0b, 0x4c7a, 0x9e, 0x4b, 0x3e, 0x0a, 0x6a, 0x3d, 0x2f, 0x10);

#endif
