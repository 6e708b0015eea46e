"""The one place where the core's words become OCPP 2.0.1 words.

Token sources (IdTokenEnumType), connector status (StatusNotification, OCPP 2.0.1
Part 2 G01), charging state and the stopped reason of a TransactionEvent (E01-E15), and
the catalogue's error codes for NotifyEvent / 1.6 StatusNotification (read from
firmware/errors.py, nowhere else).
"""

from __future__ import annotations

from firmware.core.transitions import Phase
from firmware.errors import spec

# The core's token sources -> IdTokenEnumType (IdTokenType.type).
_ID_TOKEN_TYPE = {"rfid": "ISO14443", "app": "Central", "payment": "DirectPayment",
                  "local": "Local"}


def id_token_type(source: str) -> str:
    return _ID_TOKEN_TYPE.get(source, "Local")


# ConnectorStatusEnumType: Available, Occupied, Reserved, Unavailable, Faulted.
CONNECTOR_STATUS: dict[Phase, str] = {
    Phase.AVAILABLE: "Available",
    Phase.PREPARING: "Occupied",
    Phase.AUTHORIZED: "Occupied",
    Phase.CABLE_CHECK: "Occupied",
    Phase.PRE_CHARGE: "Occupied",
    Phase.CHARGING: "Occupied",
    Phase.SUSPENDED_EV: "Occupied",
    Phase.SUSPENDED_EVSE: "Occupied",
    Phase.STOPPING: "Occupied",
    Phase.FINISHED: "Occupied",
    Phase.FAULTED: "Faulted",
    Phase.UNAVAILABLE: "Unavailable",
}

# ChargingStateEnumType: Charging, EVConnected, SuspendedEV, SuspendedEVSE, Idle.
CHARGING_STATE: dict[Phase, str] = {
    Phase.AVAILABLE: "Idle",
    Phase.PREPARING: "EVConnected",
    Phase.AUTHORIZED: "EVConnected",
    Phase.CABLE_CHECK: "EVConnected",
    Phase.PRE_CHARGE: "EVConnected",
    Phase.CHARGING: "Charging",
    Phase.SUSPENDED_EV: "SuspendedEV",
    Phase.SUSPENDED_EVSE: "SuspendedEVSE",
    Phase.STOPPING: "EVConnected",
    Phase.FINISHED: "EVConnected",
    Phase.FAULTED: "EVConnected",
    Phase.UNAVAILABLE: "Idle",
}

# The core's stop reasons -> ReasonEnumType (TransactionEvent stoppedReason).
_STOP_REASONS = {
    "Local": "Local",
    "Remote": "Remote",
    "DeAuthorized": "DeAuthorized",
    "EVDisconnected": "EVDisconnected",
    "StoppedByEV": "StoppedByEV",
    "PowerLoss": "PowerLoss",
    "Reboot": "Reboot",
    "ImmediateReset": "ImmediateReset",
    "EnergyLimitReached": "EnergyLimitReached",
    "TimeLimitReached": "TimeLimitReached",
}
_FAULT_REASONS = {  # ReasonEnumType has no word for most faults: they end as Other
    "emergency_stop": "EmergencyStop",
    "isolation_fault": "GroundFault",
    "cable_check_failed": "GroundFault",
    "over_current": "OvercurrentFault",
    "vehicle_comm_timeout": "Timeout",
    "comm_setup_timeout": "Timeout",
    "cable_check_timeout": "Timeout",
    "precharge_timeout": "Timeout",
}


def stopped_reason(core_reason: str | None) -> str:
    if core_reason is None:
        return "Other"
    if core_reason.startswith("Fault:"):
        return _FAULT_REASONS.get(core_reason.removeprefix("Fault:"), "Other")
    return _STOP_REASONS.get(core_reason, "Other")


def trigger_for_stop(core_reason: str | None) -> str:
    """TriggerReasonEnumType of the Ended event."""
    reason = core_reason or ""
    if reason == "Remote":
        return "RemoteStop"
    if reason in ("Local", "DeAuthorized"):
        return "StopAuthorized"
    if reason == "EVDisconnected":
        return "EVDeparted"
    if reason == "StoppedByEV":
        return "ChargingStateChanged"
    if reason.startswith("Fault:vehicle_comm"):
        return "EVCommunicationLost"
    if reason.startswith("Fault:"):
        return "AbnormalCondition"
    return "AbnormalCondition"


def error_code(code: str) -> str:
    """The catalogue's OCPP error code for ``code``."""
    return spec(code).ocpp_error_code
