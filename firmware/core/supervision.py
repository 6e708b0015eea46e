"""Supervision of what the hardware reports back: the output's voltage and current, the
contactors' mirror contacts and the connector lock. Each check raises a catalogue fault
on the session; the session's severity rules decide what happens next. This module owns
the confirmation timers (Supervision); the rest it reads from the Bay.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.core import plausibility as plaus
from firmware.core.bay import Bay
from firmware.core.energize import insulation_broke
from firmware.core.transitions import ENERGIZING, PACK_CONNECTED, Phase
from firmware.errors import ErrorCode


@dataclass
class Supervision:
    contactor_mismatch_since: float | None = None  # mirror contacts differ from command
    lock_pending_since: float | None = None  # lock switch differs from command
    implausible_since: float | None = None  # the output's readings disagree (contactors closed)

    @property
    def running(self) -> bool:
        """A confirmation timer runs: the machine needs the time even on an idle bay."""
        return self.contactor_mismatch_since is not None or self.lock_pending_since is not None

    def contactors_commanded(self) -> None:
        """A new contactor command: its confirmation time starts afresh."""
        self.contactor_mismatch_since = None

    def lock_timer_restart(self) -> None:
        """The vehicle left: a new plug-in gets a fresh lock timer."""
        self.lock_pending_since = None


def supervise(bay: Bay, sup: Supervision, ev_max_voltage_v: float | None,
              ev_max_current_a: float, now: float, out: list[ev.Command]) -> None:
    output(bay, ev_max_voltage_v, ev_max_current_a, now, out)
    plausibility(bay, sup, now, out)
    contactors(bay, sup, now, out)
    lock(bay, sup, now, out)


def output(bay: Bay, ev_max_voltage_v: float | None, ev_max_current_a: float, now: float,
           out: list[ev.Command]) -> None:
    """Over-voltage and over-current against limits that do not move within a session:
    the cable's rating, and the EV's maxima once it has told them (ISO 15118-2
    EVMaximumVoltageLimit / EVMaximumCurrentLimit)."""
    max_v = bay.limits.cable_max_voltage_v
    if bay.phase in PACK_CONNECTED and ev_max_voltage_v is not None:
        max_v = min(max_v, ev_max_voltage_v)
    if bay.voltage_v > max_v + lim.voltage_margin(max_v):
        bay.raise_fault(ErrorCode.OVER_VOLTAGE, now, out)
    max_a = bay.limits.cable_max_current_a
    if ev_max_current_a > 0.0:
        max_a = min(max_a, ev_max_current_a)
    if bay.current_a > max_a + lim.current_margin(max_a):
        bay.raise_fault(ErrorCode.OVER_CURRENT, now, out)
    if bay.phase is Phase.CABLE_CHECK and insulation_broke(bay.cable_check, bay.voltage_v):
        bay.raise_fault(ErrorCode.CABLE_CHECK_FAILED, now, out)


def plausibility(bay: Bay, sup: Supervision, now: float, out: list[ev.Command]) -> None:
    """Power stage, IO board and meter agree on the output within the tolerance, judged
    while the contactors are closed (read and commanded: one node), for DEBOUNCE_S."""
    m = bay.measurement
    closed = bay.contactors_closed and bay.contactors_commanded
    if m is None or not closed or plaus.disagreement(m) is None:
        sup.implausible_since = None
    elif sup.implausible_since is None:
        sup.implausible_since = now
    elif now - sup.implausible_since >= plaus.DEBOUNCE_S:
        bay.raise_fault(ErrorCode.MEASUREMENT_IMPLAUSIBLE, now, out)


def contactors(bay: Bay, sup: Supervision, now: float, out: list[ev.Command]) -> None:
    """Mirror contacts must follow the command within CONTACTOR_CONFIRM_S."""
    if ErrorCode.IO_BOARD_LINK_LOST in bay.faults:
        # The readings are the last ones before the link went: judging them would call
        # a contactor the board opened (its own link rule) welded, a needs-service
        # fault that never clears. The timer starts afresh once the board answers.
        sup.contactor_mismatch_since = None
        return
    if bay.contactors_closed == bay.contactors_commanded:
        sup.contactor_mismatch_since = None
        return
    if sup.contactor_mismatch_since is None:
        sup.contactor_mismatch_since = now
    elif now - sup.contactor_mismatch_since > lim.CONTACTOR_CONFIRM_S:
        code = (ErrorCode.WELDED_CONTACTOR if bay.contactors_closed
                else ErrorCode.CONTACTOR_STUCK_OPEN)
        bay.raise_fault(code, now, out)


def lock(bay: Bay, sup: Supervision, now: float, out: list[ev.Command]) -> None:
    """The lock's position switch must follow the command within LOCK_CONFIRM_S; a lock
    that opens while the output is energized is a failure at once."""
    if ErrorCode.IO_BOARD_LINK_LOST in bay.faults:
        sup.lock_pending_since = None  # stale readings, as for the contactors
        return
    if bay.lock_locked == bay.lock_commanded:
        sup.lock_pending_since = None
        if bay.pilot == "A" and ErrorCode.LOCK_FAILURE in bay.faults:
            # The lock follows again and no vehicle is there to unplug: nothing left
            # to clear it on, so it clears now (catalogue: ON_UNPLUG).
            bay.drop_fault(ErrorCode.LOCK_FAILURE, out)
        return
    if bay.lock_commanded and bay.phase in ENERGIZING and bay.contactors_commanded:
        bay.raise_fault(ErrorCode.LOCK_FAILURE, now, out)
        return
    if sup.lock_pending_since is None:
        sup.lock_pending_since = now
    elif now - sup.lock_pending_since > lim.LOCK_CONFIRM_S:
        bay.raise_fault(ErrorCode.LOCK_FAILURE, now, out)
