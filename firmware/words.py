"""Every sentence a driver reads at the bay, in one place.

The core says what happens (ev.Screen: phase, stop reason, fault codes, energy); this
module turns it into words. English now; a translation is one more entry per table
(same keys), and a test checks every Phase, ErrorCode and StopReason has a text.
"""

from __future__ import annotations

from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.transitions import Phase
from firmware.errors import ErrorCode

DEFAULT_LANGUAGE = "en"

HEADLINES: dict[str, dict[Phase, str]] = {
    "en": {
        Phase.AVAILABLE: "Ready. Plug in, then present your card or start in the app.",
        Phase.PREPARING: "Connected. Present your card or start in the app.",
        Phase.AUTHORIZED: "Authorized. Talking to the vehicle.",
        Phase.CABLE_CHECK: "Testing the cable. Please wait.",
        Phase.PRE_CHARGE: "Preparing to charge.",
        Phase.CHARGING: "Charging.",
        Phase.SUSPENDED_EV: "Paused by the vehicle.",
        Phase.SUSPENDED_EVSE: "Paused: waiting for power.",
        Phase.STOPPING: "Stopping. Do not unplug yet.",
        Phase.FINISHED: "Finished. You may unplug.",
        Phase.FAULTED: "Out of order.",
        Phase.UNAVAILABLE: "Not available. Please use another bay.",
    },
}

FAULTS: dict[str, dict[ErrorCode, str]] = {
    "en": {
        ErrorCode.EMERGENCY_STOP:
            "Emergency stop pressed. Release it, then call the operator.",
        ErrorCode.ISOLATION_FAULT:
            "Insulation fault on the cable. Charging not started. Please unplug.",
        ErrorCode.WELDED_CONTACTOR:
            "Charger fault. Do not unplug by force. Call the operator.",
        ErrorCode.CONTACTOR_STUCK_OPEN:
            "Charger fault: output switch. Call the operator.",
        ErrorCode.LOCK_FAILURE:
            "Connector could not be locked. Re-plug the cable.",
        ErrorCode.OVER_VOLTAGE:
            "Output over-voltage. Charging stopped.",
        ErrorCode.OVER_CURRENT:
            "Output over-current. Charging stopped.",
        ErrorCode.OVER_TEMPERATURE:
            "Charger too hot. Charging paused until it cools down.",
        ErrorCode.PILOT_FAULT:
            "Vehicle signal fault (control pilot). Please unplug.",
        ErrorCode.DIODE_FAULT:
            "Vehicle signal fault (pilot diode). Please unplug.",
        ErrorCode.CABLE_CHECK_FAILED:
            "Cable test failed. Charging not started. Please unplug.",
        ErrorCode.CABLE_CHECK_TIMEOUT:
            "Cable test took too long. Please unplug and try again.",
        ErrorCode.PRECHARGE_TIMEOUT:
            "Vehicle voltage not matched. Please unplug and try again.",
        ErrorCode.VEHICLE_COMM_TIMEOUT:
            "Lost contact with the vehicle. Please unplug and try again.",
        ErrorCode.VEHICLE_COMM_LOST:
            "Lost contact with the vehicle. Please unplug and try again.",
        ErrorCode.COMM_SETUP_TIMEOUT:
            "Vehicle did not start communication. Please re-plug.",
        ErrorCode.MODULE_LOST:
            "Reduced power: a power module is offline.",
        ErrorCode.MODULE_FAULT:
            "Reduced power: a power module reports a fault.",
        ErrorCode.COMM_LOST:
            "Charger power stage not responding. Call the operator.",
        ErrorCode.IO_BOARD_LINK_LOST:
            "Charger safety board not responding. Call the operator.",
        ErrorCode.METER_FAILURE:
            "Meter fault. Charging continues; the bill may be estimated.",
        ErrorCode.ISOLATION_MONITOR_FAILED:
            "Insulation monitor failed its self test. No charging here. Call the operator.",
        ErrorCode.MEASUREMENT_IMPLAUSIBLE:
            "Charger output readings disagree. Charging stopped. Call the operator.",
    },
}

STOP_REASONS: dict[str, dict[StopReason, str]] = {
    "en": {
        StopReason.LOCAL: "Stopped at the bay",
        StopReason.REMOTE: "Stopped remotely",
        StopReason.DEAUTHORIZED: "Stopped: card no longer valid",
        StopReason.EV_DISCONNECTED: "Vehicle unplugged",
        StopReason.STOPPED_BY_EV: "Stopped by the vehicle",
        StopReason.SEQUENCE_ERROR: "Stopped: vehicle communication error",
        StopReason.IMMEDIATE_RESET: "Stopped: charger reset",
        StopReason.POWER_LOSS: "Stopped: power failure",
        StopReason.REBOOT: "Stopped: charger restart",
        StopReason.ENERGY_LIMIT_REACHED: "Energy limit reached",
        StopReason.TIME_LIMIT_REACHED: "Time limit reached",
        StopReason.FAULT: "Stopped by a fault",
        StopReason.OTHER: "Session ended",
    },
}

# Finished: why it stopped and what was delivered.
STOPPED: dict[str, str] = {"en": "{reason}. {kwh:.1f} kWh."}
CARD_REJECTED: dict[str, str] = {"en": "Card not accepted."}

# What the authorization decided about a card or token (firmware/authorization.py).
AUTHORIZATION: dict[str, dict[str, str]] = {
    "en": {
        "card": "Card", "token": "Token",
        "start_accepted": "{noun} accepted.",
        "start_refused": "{noun} not accepted ({reason}).",
        "stop_accepted": "Stopping: {noun_lower} accepted.",
        "stop_refused": "This {noun_lower} did not start this session.",
    },
}


def fault_text(code: ErrorCode, lang: str = DEFAULT_LANGUAGE) -> str:
    return FAULTS[lang][code]


def stop_text(reason: StopReason, lang: str = DEFAULT_LANGUAGE) -> str:
    return STOP_REASONS[lang][reason]


def authorization_text(action: str, accepted: bool, source: str, reason: str,
                       lang: str = DEFAULT_LANGUAGE) -> str:
    """The line for a decision of the authorization: ``action`` start or stop."""
    table = AUTHORIZATION[lang]
    noun = table["card" if source == "rfid" else "token"]
    key = f"{action}_{'accepted' if accepted else 'refused'}"
    return table[key].format(noun=noun, noun_lower=noun.lower(), reason=reason)


def screen_text(state: ev.Screen, lang: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """(headline, detail) for what the core says the bay's screen shows."""
    if state.card_rejected is not None:
        return CARD_REJECTED[lang], state.card_rejected  # the central system's word
    detail = ""
    if state.phase is Phase.FINISHED and state.stop_reason is not None:
        reason = stop_text(state.stop_reason, lang)
        if state.stop_reason is StopReason.FAULT and state.stop_fault is not None:
            reason = fault_text(state.stop_fault, lang).rstrip(".")  # says which fault
        detail = STOPPED[lang].format(reason=reason, kwh=state.energy_wh / 1000)
    elif state.worst_fault is not None:  # what went wrong (warnings too)
        detail = fault_text(state.worst_fault, lang)
    return HEADLINES[lang][state.phase], detail
