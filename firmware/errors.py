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


class ErrorCode(enum.StrEnum):
    """Every code the catalogue knows; a str, so logs and reports read it plainly."""

    EMERGENCY_STOP = "emergency_stop"
    ISOLATION_FAULT = "isolation_fault"
    WELDED_CONTACTOR = "welded_contactor"
    CONTACTOR_STUCK_OPEN = "contactor_stuck_open"
    LOCK_FAILURE = "lock_failure"
    OVER_VOLTAGE = "over_voltage"
    OVER_CURRENT = "over_current"
    OVER_TEMPERATURE = "over_temperature"
    PILOT_FAULT = "pilot_fault"
    DIODE_FAULT = "diode_fault"
    CABLE_CHECK_FAILED = "cable_check_failed"
    CABLE_CHECK_TIMEOUT = "cable_check_timeout"
    PRECHARGE_TIMEOUT = "precharge_timeout"
    VEHICLE_COMM_TIMEOUT = "vehicle_comm_timeout"
    VEHICLE_COMM_LOST = "vehicle_comm_lost"
    COMM_SETUP_TIMEOUT = "comm_setup_timeout"
    MODULE_LOST = "module_lost"
    MODULE_FAULT = "module_fault"
    COMM_LOST = "comm_lost"
    IO_BOARD_LINK_LOST = "io_board_link_lost"
    METER_FAILURE = "meter_failure"
    ISOLATION_MONITOR_FAILED = "isolation_monitor_failed"
    MEASUREMENT_IMPLAUSIBLE = "measurement_implausible"


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: ErrorCode
    severity: Severity
    blocks_charging: bool
    clearing: Clearing
    ocpp_error_code: str  # OCPP 1.6 ChargePointErrorCode vocabulary
    # (what the driver reads about it is in firmware/words.py: the core has no sentences)


_E, _R, _W = Severity.EMERGENCY, Severity.ERROR, Severity.WARNING
_U, _G, _S = Clearing.ON_UNPLUG, Clearing.WHEN_GONE, Clearing.NEEDS_SERVICE

CATALOGUE: dict[ErrorCode, ErrorSpec] = {
    spec.code: spec
    for spec in (
        ErrorSpec(ErrorCode.EMERGENCY_STOP, _E, True, _G, "OtherError"),
        ErrorSpec(ErrorCode.ISOLATION_FAULT, _E, True, _U, "GroundFailure"),
        ErrorSpec(ErrorCode.WELDED_CONTACTOR, _E, True, _S, "PowerSwitchFailure"),
        ErrorSpec(ErrorCode.CONTACTOR_STUCK_OPEN, _R, True, _S, "PowerSwitchFailure"),
        ErrorSpec(ErrorCode.LOCK_FAILURE, _R, True, _U, "ConnectorLockFailure"),
        ErrorSpec(ErrorCode.OVER_VOLTAGE, _E, True, _U, "OverVoltage"),
        ErrorSpec(ErrorCode.OVER_CURRENT, _E, True, _U, "OverCurrentFailure"),
        ErrorSpec(ErrorCode.OVER_TEMPERATURE, _R, True, _G, "HighTemperature"),
        ErrorSpec(ErrorCode.PILOT_FAULT, _E, True, _U, "EVCommunicationError"),
        ErrorSpec(ErrorCode.DIODE_FAULT, _E, True, _U, "EVCommunicationError"),
        ErrorSpec(ErrorCode.CABLE_CHECK_FAILED, _R, True, _U, "GroundFailure"),
        ErrorSpec(ErrorCode.CABLE_CHECK_TIMEOUT, _R, True, _U, "OtherError"),
        ErrorSpec(ErrorCode.PRECHARGE_TIMEOUT, _R, True, _U, "OtherError"),
        ErrorSpec(ErrorCode.VEHICLE_COMM_TIMEOUT, _R, True, _U, "EVCommunicationError"),
        ErrorSpec(ErrorCode.VEHICLE_COMM_LOST, _R, True, _U, "EVCommunicationError"),
        ErrorSpec(ErrorCode.COMM_SETUP_TIMEOUT, _R, True, _U, "EVCommunicationError"),
        ErrorSpec(ErrorCode.MODULE_LOST, _W, False, _G, "OtherError"),
        ErrorSpec(ErrorCode.MODULE_FAULT, _W, False, _G, "OtherError"),
        ErrorSpec(ErrorCode.COMM_LOST, _R, True, _G, "InternalError"),
        ErrorSpec(ErrorCode.IO_BOARD_LINK_LOST, _E, True, _G, "InternalError"),
        ErrorSpec(ErrorCode.METER_FAILURE, _W, False, _G, "PowerMeterFailure"),
        # The IMD did not answer its self test: no cable check can be trusted, so none
        # runs. Every session tests again before measuring, so it clears on unplug.
        ErrorSpec(ErrorCode.ISOLATION_MONITOR_FAILED, _R, True, _U, "GroundFailure"),
        # Power stage, IO board and meter disagree on the output: a sensor lies. Judged
        # only with the contactors closed, so the next vehicle's cable check judges anew.
        ErrorSpec(ErrorCode.MEASUREMENT_IMPLAUSIBLE, _R, True, _U, "InternalError"),
    )
}


def error_code(code: str) -> ErrorCode:
    """``code`` checked against the catalogue (a driver's string at the boundary); an
    unknown code is a programming error."""
    try:
        return ErrorCode(code)
    except ValueError:
        raise KeyError(f"error code {code!r} is not in the catalogue") from None


def spec(code: str) -> ErrorSpec:
    """The catalogue entry for ``code``; an unknown code is a programming error."""
    return CATALOGUE[error_code(code)]
