"""The IO board's connector inputs turned into the session machine's events (pure):
only what changed between two readings becomes an event."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.core import events as ev
from firmware.core.session import ConnectorSession
from firmware.core.transitions import IDLE
from firmware.errors import ErrorCode
from hal.io_board import ConnectorInputs

# Connector temperature trip and reset (approx.: IEC 62196-3 allows 50 K rise on the
# contacts; with liquid-cooled HPC cables makers trip around 90 degC at the sensor).
OVER_TEMPERATURE_C = 90.0
CONNECTOR_COOLED_C = 80.0


# Board flags that raise a fault while set and clear it once gone, by ConnectorInputs field.
BOARD_FINDINGS = ((ErrorCode.WELDED_CONTACTOR, "welded"), (ErrorCode.LOCK_FAILURE, "lock_fault"),
                  (ErrorCode.OVER_VOLTAGE, "over_voltage_trip"))
BOARD_ALARMS = ((ErrorCode.EMERGENCY_STOP, "emergency_stop"),
                (ErrorCode.ISOLATION_FAULT, "isolation_fault"))


def _edges(flags: tuple[tuple[ErrorCode, str], ...], old: ConnectorInputs | None,
           new: ConnectorInputs, out: list[ev.Event]) -> None:
    for code, name in flags:
        now_on, was_on = getattr(new, name), old is not None and getattr(old, name)
        if now_on and not was_on:
            out.append(ev.FaultRaised(code))
        elif was_on and not now_on:
            out.append(ev.FaultCleared(code))


def _pilot(inputs: ConnectorInputs | None) -> str | None:
    """The vehicle's pilot state; None while unknown (the board holds its own F for IEC
    61851-1's 4 s: that F is the board's signal, not the vehicle's diode)."""
    if inputs is None:
        return None
    if not inputs.plugged:
        return "A"  # unplugged is unplugged whatever the pilot reads (F while we drive F)
    return None if inputs.pilot_held_f else inputs.pilot


def input_events(old: ConnectorInputs | None, new: ConnectorInputs) -> list[ev.Event]:
    out: list[ev.Event] = []
    # What the board found or tripped on, before the pilot: a trip it clears as the
    # vehicle leaves must be gone when the unplug clears the session's faults.
    _edges(BOARD_FINDINGS, old, new, out)
    pilot, before = _pilot(new), _pilot(old)
    if pilot is not None and pilot != before:
        out.append(ev.PilotChanged(pilot))
    # The insulation monitor's self test ended (either result rises once per test).
    for result, passed in (("imd_passed", True), ("imd_failed", False)):
        if getattr(new, result) and not (old is not None and getattr(old, result)):
            out.append(ev.InsulationMonitorTested(passed))
    if old is None or (old.contactors_closed, old.lock_locked) != (
            new.contactors_closed, new.lock_locked):
        out.append(ev.Feedback(new.contactors_closed, new.lock_locked))
    # Temperature with hysteresis, and no memory needed here: raised when it crosses
    # up through the trip level, cleared when it crosses down through the reset level.
    before_c = old.temperature_c if old is not None else 0.0
    if new.temperature_c >= OVER_TEMPERATURE_C > before_c:
        out.append(ev.FaultRaised(ErrorCode.OVER_TEMPERATURE))
    elif new.temperature_c < CONNECTOR_COOLED_C <= before_c:
        out.append(ev.FaultCleared(ErrorCode.OVER_TEMPERATURE))
    _edges(BOARD_ALARMS, old, new, out)
    return out


def measurement_due(s: ConnectorSession, new: ev.Measurement,
                    last: ev.Measurement | None) -> bool:
    """Whether this tick's measurement goes to the machine (it is also what advances
    its timers). Skipped only on an idle bay with nothing new and no confirmation
    timer running: a contactor found closed at start-up must still turn into
    welded_contactor a second later."""
    return s.phase not in IDLE or s.supervising or new != last


@dataclass(frozen=True, slots=True)
class PartsHealth:
    """How this tick found the drivers: whether each poll worked, whether each link is
    up, and whether the power stage has every configured module back."""

    power_ok: bool
    power_link_up: bool
    io_ok: bool
    io_link_up: bool
    all_modules: bool


def health_events(faults: set[ErrorCode], h: PartsHealth) -> list[ev.Event]:
    """The drivers' health as a machine's fault events, each raised or cleared once."""
    out: list[ev.Event] = []
    if not h.power_ok and ErrorCode.COMM_LOST not in faults:
        out.append(ev.FaultRaised(ErrorCode.COMM_LOST))
    elif h.power_ok and ErrorCode.COMM_LOST in faults and h.power_link_up:
        out.append(ev.FaultCleared(ErrorCode.COMM_LOST))
    if not h.io_ok and ErrorCode.IO_BOARD_LINK_LOST not in faults:
        out.append(ev.FaultRaised(ErrorCode.IO_BOARD_LINK_LOST))
    if faults & {ErrorCode.MODULE_LOST, ErrorCode.MODULE_FAULT} and h.all_modules:
        out.extend(ev.FaultCleared(c) for c in (ErrorCode.MODULE_LOST, ErrorCode.MODULE_FAULT))
    if ErrorCode.IO_BOARD_LINK_LOST in faults and h.io_link_up and h.io_ok:
        # The board answers again (it shook hands anew): its own link-loss rule kept the
        # output safe meanwhile; inputs are fresh from its reports.
        out.append(ev.FaultCleared(ErrorCode.IO_BOARD_LINK_LOST))
    return out
