"""Supervision of what the hardware reports back: the output's voltage and current, the
contactors' mirror contacts and the connector lock. Each check raises a catalogue fault
on the session; the session's severity rules decide what happens next. Pure functions
of a ConnectorSession and the time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.core.transitions import ENERGIZING, PACK_CONNECTED, Phase
from firmware.errors import ErrorCode

if TYPE_CHECKING:
    from firmware.core.session import ConnectorSession


def supervise(s: ConnectorSession, now: float, out: list[ev.Command]) -> None:
    output(s, now, out)
    contactors(s, now, out)
    lock(s, now, out)


def output(s: ConnectorSession, now: float, out: list[ev.Command]) -> None:
    """Over-voltage and over-current against limits that do not move within a session:
    the cable's rating, and the EV's maxima once it has told them (ISO 15118-2
    EVMaximumVoltageLimit / EVMaximumCurrentLimit)."""
    max_v = s.limits.cable_max_voltage_v
    if s.phase in PACK_CONNECTED and s.ev_params is not None:
        max_v = min(max_v, s.ev_params.max_voltage_v)
    if s.voltage_v > max_v + lim.voltage_margin(max_v):
        s.raise_fault(ErrorCode.OVER_VOLTAGE, now, out)
    max_a = s.limits.cable_max_current_a
    if s.ev_max_a > 0.0:
        max_a = min(max_a, s.ev_max_a)
    if s.current_a > max_a + lim.current_margin(max_a):
        s.raise_fault(ErrorCode.OVER_CURRENT, now, out)
    if s.phase is Phase.CABLE_CHECK and s.cc_reached_at is not None and (
            not s.cable_check_passed
            and s.voltage_v < lim.CABLE_CHECK_COLLAPSE * s.cc_voltage):
        # The test voltage was reached, then broke down while the monitor measured:
        # the cable or the vehicle inlet leaks (IEC 61851-23 6.3.1.106).
        s.raise_fault(ErrorCode.CABLE_CHECK_FAILED, now, out)


def contactors(s: ConnectorSession, now: float, out: list[ev.Command]) -> None:
    """Mirror contacts must follow the command within CONTACTOR_CONFIRM_S."""
    if s.contactors_closed == s.contactors_commanded:
        s.mismatch_since = None
        return
    if s.mismatch_since is None:
        s.mismatch_since = now
    elif now - s.mismatch_since > lim.CONTACTOR_CONFIRM_S:
        code = ErrorCode.WELDED_CONTACTOR if s.contactors_closed else ErrorCode.CONTACTOR_STUCK_OPEN
        s.raise_fault(code, now, out)


def lock(s: ConnectorSession, now: float, out: list[ev.Command]) -> None:
    """The lock's position switch must follow the command within LOCK_CONFIRM_S; a lock
    that opens while the output is energized is a failure at once."""
    if s.lock_locked == s.lock_commanded:
        s.lock_pending_since = None
        if s.pilot == "A" and ErrorCode.LOCK_FAILURE in s.faults:
            # The lock follows again and no vehicle is there to unplug: nothing left
            # to clear it on, so it clears now (catalogue: ON_UNPLUG).
            s.faults.discard(ErrorCode.LOCK_FAILURE)
            out.append(s.screen())
        return
    if s.lock_commanded and s.phase in ENERGIZING and s.contactors_commanded:
        s.raise_fault(ErrorCode.LOCK_FAILURE, now, out)
        return
    if s.lock_pending_since is None:
        s.lock_pending_since = now
    elif now - s.lock_pending_since > lim.LOCK_CONFIRM_S:
        s.raise_fault(ErrorCode.LOCK_FAILURE, now, out)
