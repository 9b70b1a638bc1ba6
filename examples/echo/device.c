/*++
    The echo device: made in EvtDriverDeviceAdd, with an interface clients
    open it by, and the PnP/power callbacks that drive the timer.
--*/
#include "driver.h"

#ifdef ALLOC_PRAGMA
#pragma alloc_text (PAGE, EchoEvtDeviceAdd)
#pragma alloc_text (PAGE, EchoEvtDeviceD0Exit)
#pragma alloc_text (PAGE, EchoEvtDeviceSelfManagedIoInit)
#pragma alloc_text (PAGE, EchoEvtDeviceSelfManagedIoSuspend)
#pragma alloc_text (PAGE, EchoEvtDeviceSelfManagedIoFlush)
#pragma alloc_text (PAGE, EchoEvtDeviceSelfManagedIoCleanup)
#endif

static PCSTR
EchoPowerStateName(
    _In_ WDF_POWER_DEVICE_STATE State
    )
{
    switch (State) {
    case WdfPowerDeviceD0:      return "D0";
    case WdfPowerDeviceD1:      return "D1";
    case WdfPowerDeviceD2:      return "D2";
    case WdfPowerDeviceD3:      return "D3";
    case WdfPowerDeviceD3Final: return "D3Final";
    default:                    return "?";
    }
}

NTSTATUS
EchoEvtDeviceAdd(
    _In_    WDFDRIVER       Driver,
    _Inout_ PWDFDEVICE_INIT DeviceInit
    )
/*++
    The PnP manager found an echo device: make its WDFDEVICE, its queue
    and timer, and register the interface it is opened by. The interface
    is enabled by the framework once the device has started.
--*/
{
    NTSTATUS                     status;
    WDF_PNPPOWER_EVENT_CALLBACKS pnpPowerCallbacks;
    WDF_OBJECT_ATTRIBUTES        attributes;
    WDFDEVICE                    device;

    UNREFERENCED_PARAMETER(Driver);
    PAGED_CODE();

    KdPrint(("echo: DeviceAdd\n"));

    WdfDeviceInitSetIoType(DeviceInit, WdfDeviceIoBuffered);

    WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&pnpPowerCallbacks);
    pnpPowerCallbacks.EvtDeviceD0Entry = EchoEvtDeviceD0Entry;
    pnpPowerCallbacks.EvtDeviceD0Exit = EchoEvtDeviceD0Exit;
    pnpPowerCallbacks.EvtDeviceSelfManagedIoInit = EchoEvtDeviceSelfManagedIoInit;
    pnpPowerCallbacks.EvtDeviceSelfManagedIoSuspend = EchoEvtDeviceSelfManagedIoSuspend;
    pnpPowerCallbacks.EvtDeviceSelfManagedIoRestart = EchoEvtDeviceSelfManagedIoRestart;
    pnpPowerCallbacks.EvtDeviceSelfManagedIoFlush = EchoEvtDeviceSelfManagedIoFlush;
    pnpPowerCallbacks.EvtDeviceSelfManagedIoCleanup = EchoEvtDeviceSelfManagedIoCleanup;
    WdfDeviceInitSetPnpPowerEventCallbacks(DeviceInit, &pnpPowerCallbacks);

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, DEVICE_CONTEXT);
    status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
    if (!NT_SUCCESS(status)) {
        KdPrint(("echo: WdfDeviceCreate failed 0x%08X\n", status));
        return status;
    }

    status = WdfDeviceCreateDeviceInterface(device,
                                            &GUID_DEVINTERFACE_UWDF_ECHO,
                                            NULL);
    if (!NT_SUCCESS(status)) {
        KdPrint(("echo: WdfDeviceCreateDeviceInterface failed 0x%08X\n", status));
        return status;
    }

    return EchoQueueInitialize(device);
}

NTSTATUS
EchoEvtDeviceD0Entry(
    _In_ WDFDEVICE              Device,
    _In_ WDF_POWER_DEVICE_STATE PreviousState
    )
{
    UNREFERENCED_PARAMETER(Device);

    KdPrint(("echo: D0Entry(%s)\n", EchoPowerStateName(PreviousState)));
    return STATUS_SUCCESS;
}

NTSTATUS
EchoEvtDeviceD0Exit(
    _In_ WDFDEVICE              Device,
    _In_ WDF_POWER_DEVICE_STATE TargetState
    )
{
    UNREFERENCED_PARAMETER(Device);
    PAGED_CODE();

    KdPrint(("echo: D0Exit(%s)\n", EchoPowerStateName(TargetState)));
    return STATUS_SUCCESS;
}

NTSTATUS
EchoEvtDeviceSelfManagedIoInit(
    _In_ WDFDEVICE Device
    )
/*++
    The device's first start, after its queue has started: the timer
    begins to tick.
--*/
{
    PAGED_CODE();

    KdPrint(("echo: SelfManagedIoInit\n"));
    WdfTimerStart(EchoGetDeviceContext(Device)->Timer,
                  WDF_REL_TIMEOUT_IN_MS(ECHO_TIMER_PERIOD_MS));
    return STATUS_SUCCESS;
}

NTSTATUS
EchoEvtDeviceSelfManagedIoSuspend(
    _In_ WDFDEVICE Device
    )
/*++
    Leaving D0 (a low power state, or removal): no ticks until the device
    is back. Waits for a callback that is running.
--*/
{
    PAGED_CODE();

    KdPrint(("echo: SelfManagedIoSuspend\n"));
    WdfTimerStop(EchoGetDeviceContext(Device)->Timer, TRUE);
    return STATUS_SUCCESS;
}

NTSTATUS
EchoEvtDeviceSelfManagedIoRestart(
    _In_ WDFDEVICE Device
    )
{
    KdPrint(("echo: SelfManagedIoRestart\n"));
    WdfTimerStart(EchoGetDeviceContext(Device)->Timer,
                  WDF_REL_TIMEOUT_IN_MS(ECHO_TIMER_PERIOD_MS));
    return STATUS_SUCCESS;
}

VOID
EchoEvtDeviceSelfManagedIoFlush(
    _In_ WDFDEVICE Device
    )
{
    UNREFERENCED_PARAMETER(Device);
    PAGED_CODE();

    KdPrint(("echo: SelfManagedIoFlush\n"));
}

VOID
EchoEvtDeviceSelfManagedIoCleanup(
    _In_ WDFDEVICE Device
    )
{
    UNREFERENCED_PARAMETER(Device);
    PAGED_CODE();

    KdPrint(("echo: SelfManagedIoCleanup\n"));
}
