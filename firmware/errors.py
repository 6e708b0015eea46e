"""The error catalogue: every fault the controller knows, in one place.

Each entry says how hard the controller must react (severity), whether it blocks a new
session, how it clears, and what OCPP error code the central system sees. The OCPP 2.0.1
StatusNotification has no errorCode field, so the code goes out in NotifyEvent /
the 1.6 StatusNotification errorCode; the OCPP layer reads it from here and nowhere else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.Enum):
    EMERGENCY = "emergency_shutdown"  # supply off and contactors open at once
    ERROR = "error_shutdown"  # ordered shutdown (ramp down, open, weld check)
    WARNING = "warning"  # keep charging, report


class Clearing(enum.Enum):
    ON_UNPLUG = "on_unplug"  # cleared when the vehicle leaves and the condition is gone
    WHEN_GONE = "when_gone"  # cleared as soon as the condition reports clear
    NEEDS_SERVICE = "needs_service"  # a field engineer clears it (console / OCPP reset)


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    severity: Severity
    blocks_charging: bool
    clearing: Clearing
    ocpp_error_code: str  # OCPP 1.6 ChargePointErrorCode vocabulary
    screen_text: str  # what the driver reads at the bay


_E, _R, _W = Severity.EMERGENCY, Severity.ERROR, Severity.WARNING
_U, _G, _S = Clearing.ON_UNPLUG, Clearing.WHEN_GONE, Clearing.NEEDS_SERVICE

CATALOGUE: dict[str, ErrorSpec] = {
    spec.code: spec
    for spec in (
        ErrorSpec("emergency_stop", _E, True, _G, "OtherError",
                  "Emergency stop pressed. Release it, then call the operator."),
        ErrorSpec("isolation_fault", _E, True, _U, "GroundFailure",
                  "Insulation fault on the cable. Charging not started. Please unplug."),
        ErrorSpec("welded_contactor", _E, True, _S, "PowerSwitchFailure",
                  "Charger fault. Do not unplug by force. Call the operator."),
        ErrorSpec("contactor_stuck_open", _R, True, _S, "PowerSwitchFailure",
                  "Charger fault: output switch. Call the operator."),
        ErrorSpec("lock_failure", _R, True, _U, "ConnectorLockFailure",
                  "Connector could not be locked. Re-plug the cable."),
        ErrorSpec("over_voltage", _E, True, _U, "OverVoltage",
                  "Output over-voltage. Charging stopped."),
        ErrorSpec("over_current", _E, True, _U, "OverCurrentFailure",
                  "Output over-current. Charging stopped."),
        ErrorSpec("over_temperature", _R, True, _G, "HighTemperature",
                  "Charger too hot. Charging paused until it cools down."),
        ErrorSpec("pilot_fault", _E, True, _U, "EVCommunicationError",
                  "Vehicle signal fault (control pilot). Please unplug."),
        ErrorSpec("diode_fault", _E, True, _U, "EVCommunicationError",
                  "Vehicle signal fault (pilot diode). Please unplug."),
        ErrorSpec("cable_check_failed", _R, True, _U, "GroundFailure",
                  "Cable test failed. Charging not started. Please unplug."),
        ErrorSpec("cable_check_timeout", _R, True, _U, "OtherError",
                  "Cable test took too long. Please unplug and try again."),
        ErrorSpec("precharge_timeout", _R, True, _U, "OtherError",
                  "Vehicle voltage not matched. Please unplug and try again."),
        ErrorSpec("vehicle_comm_timeout", _R, True, _U, "EVCommunicationError",
                  "Lost contact with the vehicle. Please unplug and try again."),
        ErrorSpec("vehicle_comm_lost", _R, True, _U, "EVCommunicationError",
                  "Lost contact with the vehicle. Please unplug and try again."),
        ErrorSpec("comm_setup_timeout", _R, True, _U, "EVCommunicationError",
                  "Vehicle did not start communication. Please re-plug."),
        ErrorSpec("module_lost", _W, False, _G, "OtherError",
                  "Reduced power: a power module is offline."),
        ErrorSpec("module_fault", _W, False, _G, "OtherError",
                  "Reduced power: a power module reports a fault."),
        ErrorSpec("comm_lost", _R, True, _G, "InternalError",
                  "Charger power stage not responding. Call the operator."),
        ErrorSpec("io_board_link_lost", _E, True, _G, "InternalError",
                  "Charger safety board not responding. Call the operator."),
        ErrorSpec("meter_failure", _W, False, _G, "PowerMeterFailure",
                  "Meter fault. Charging continues; the bill may be estimated."),
    )
}


def spec(code: str) -> ErrorSpec:
    """The catalogue entry for ``code``; an unknown code is a programming error."""
    try:
        return CATALOGUE[code]
    except KeyError:
        raise KeyError(f"error code {code!r} is not in the catalogue") from None
