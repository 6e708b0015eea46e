"""The one place where the core's words become OCPP 2.0.1 words.

Token sources (IdTokenEnumType), connector status (StatusNotification, OCPP 2.0.1
Part 2 G01), charging state and the stopped reason of a TransactionEvent (E01-E15), and
the catalogue's error codes for NotifyEvent / 1.6 StatusNotification (read from
firmware/errors.py, nowhere else).
"""

from __future__ import annotations

from firmware.core.events import StopReason, UnlockOutcome
from firmware.core.transitions import Phase
from firmware.errors import ErrorCode, spec

# The core's token sources -> IdTokenEnumType (IdTokenType.type). A card-paid session is
# "Local" (an id the station made: PAY-<trace>-<receipt>, firmware/bay/payment.py):
# 2.0.1's enum has no payment type (DirectPayment is OCPP 2.1's) and the schema check
# would refuse the TransactionEvent.
_ID_TOKEN_TYPE = {"rfid": "ISO14443", "app": "Central", "payment": "Local",
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
_R = StopReason
_STOP_REASONS = {
    _R.LOCAL: "Local",
    _R.REMOTE: "Remote",
    _R.DEAUTHORIZED: "DeAuthorized",
    _R.EV_DISCONNECTED: "EVDisconnected",
    _R.STOPPED_BY_EV: "StoppedByEV",
    _R.POWER_LOSS: "PowerLoss",
    _R.REBOOT: "Reboot",
    _R.IMMEDIATE_RESET: "ImmediateReset",
    _R.ENERGY_LIMIT_REACHED: "EnergyLimitReached",
    _R.TIME_LIMIT_REACHED: "TimeLimitReached",
}
_FAULT_REASONS = {  # ReasonEnumType has no word for most faults: they end as Other
    ErrorCode.EMERGENCY_STOP: "EmergencyStop",
    ErrorCode.ISOLATION_FAULT: "GroundFault",
    ErrorCode.CABLE_CHECK_FAILED: "GroundFault",
    ErrorCode.OVER_CURRENT: "OvercurrentFault",
    ErrorCode.VEHICLE_COMM_TIMEOUT: "Timeout",
    ErrorCode.COMM_SETUP_TIMEOUT: "Timeout",
    ErrorCode.CABLE_CHECK_TIMEOUT: "Timeout",
    ErrorCode.PRECHARGE_TIMEOUT: "Timeout",
}
_STOP_TRIGGERS = {  # TriggerReasonEnumType of the Ended event
    _R.REMOTE: "RemoteStop",
    _R.LOCAL: "StopAuthorized",
    _R.DEAUTHORIZED: "StopAuthorized",
    _R.EV_DISCONNECTED: "EVDeparted",
    _R.STOPPED_BY_EV: "ChargingStateChanged",
    _R.IMMEDIATE_RESET: "ResetCommand",  # B12: a Reset Immediate ended it
}


def stopped_reason(reason: StopReason | None, fault: ErrorCode | None = None) -> str:
    if reason is StopReason.FAULT:
        return _FAULT_REASONS.get(fault, "Other") if fault is not None else "Other"
    return _STOP_REASONS.get(reason, "Other") if reason is not None else "Other"


def trigger_for_stop(reason: StopReason | None, fault: ErrorCode | None = None) -> str:
    """TriggerReasonEnumType of the Ended event."""
    if reason is StopReason.FAULT and fault in (ErrorCode.VEHICLE_COMM_TIMEOUT,
                                                ErrorCode.VEHICLE_COMM_LOST):
        return "EVCommunicationLost"
    return _STOP_TRIGGERS.get(reason, "AbnormalCondition") if reason is not None \
        else "AbnormalCondition"


# UnlockStatusEnumType of UnlockConnector (F05); the core's refusal under voltage is a
# failed unlock to the CSMS.
UNLOCK_STATUS: dict[UnlockOutcome, str] = {
    UnlockOutcome.UNLOCKED: "Unlocked",
    UnlockOutcome.UNLOCK_FAILED: "UnlockFailed",
    UnlockOutcome.ONGOING_AUTHORIZED_TRANSACTION: "OngoingAuthorizedTransaction",
    UnlockOutcome.REFUSED_ENERGIZED: "UnlockFailed",
}


def error_code(code: str) -> str:
    """The catalogue's OCPP error code for ``code``."""
    return spec(code).ocpp_error_code
