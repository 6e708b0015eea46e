"""Cable check and precharge: the two steps that put voltage on the output before power
delivery (IEC 61851-23 cable check, ISO 15118-2 PreCharge). The cable check starts with
the insulation monitor's self test, before the contactors close and the test voltage is
applied (IEC 61851-23: self test before measuring). This module owns their state;
its functions change it and return what the session must act on (a fault to raise).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.errors import ErrorCode
from hal.power_stage import TEST_CURRENT_LIMIT_A, Mode


@dataclass
class CableCheck:
    """One session's insulation test of the cable and the vehicle inlet."""

    test_voltage_v: float = 0.0
    started_at: float = 0.0
    applied: bool = False  # test voltage commanded (lock confirmed, EVSE contactors closed)
    reached_at: float | None = None  # when the output reached the test voltage
    passed: bool = False
    imd_asked_at: float | None = None  # the insulation monitor's self test asked for
    imd_passed: bool = False  # ... and passed: the monitor may now measure

    @property
    def measuring(self) -> bool:
        """The test voltage was reached and the isolation monitor measures."""
        return self.reached_at is not None and not self.passed


@dataclass
class PreCharge:
    """One session's match of the output voltage to the vehicle's pack."""

    target_voltage_v: float = 0.0
    started_at: float = 0.0
    matched: bool = False


def start_cable_check(cc: CableCheck, ev_max_voltage_v: float, evse_max_voltage_v: float,
                      now: float) -> None:
    cc.test_voltage_v = lim.cable_check_voltage(ev_max_voltage_v, evse_max_voltage_v)
    cc.started_at, cc.applied, cc.reached_at, cc.passed = now, False, None, False
    cc.imd_asked_at, cc.imd_passed = None, False  # every session tests the monitor anew


def insulation_monitor_progress(cc: CableCheck, now: float,
                                out: list[ev.Command]) -> ErrorCode | None:
    """Asks for the monitor's self test once, first thing in the cable check (contactors
    still open, output below 60 V); unanswered within IMD_TEST_ANSWER_S it failed."""
    if cc.imd_passed:
        return None
    if cc.imd_asked_at is None:
        cc.imd_asked_at = now
        out.append(ev.TestInsulationMonitor())
    elif now - cc.imd_asked_at > lim.IMD_TEST_ANSWER_S:
        return ErrorCode.ISOLATION_MONITOR_FAILED
    return None


def insulation_monitor_tested(cc: CableCheck, passed: bool) -> ErrorCode | None:
    """The board's answer to the self test this cable check asked for."""
    if cc.imd_asked_at is None or cc.imd_passed:
        return None  # not ours to judge (no test asked for, or already passed)
    cc.imd_passed = passed
    return None if passed else ErrorCode.ISOLATION_MONITOR_FAILED


def cable_check_progress(cc: CableCheck, *, path_ready: bool, voltage_v: float,
                         settle_s: float, now: float,
                         out: list[ev.Command]) -> ErrorCode | None:
    """Advance the test; returns the fault to raise, if any. ``path_ready``: the lock is
    confirmed and the EVSE's output contactors are closed (mirror contacts), so the test
    voltage reaches the cable and the vehicle inlet up to the vehicle's own contactors,
    which stay open until PreCharge (IEC 61851-23 cable check)."""
    if now - cc.started_at > lim.CABLE_CHECK_TIMEOUT_S:
        return ErrorCode.CABLE_CHECK_TIMEOUT
    if not cc.applied:
        if path_ready:
            cc.applied = True
            out.append(ev.SetPower(Mode.CABLE_CHECK, cc.test_voltage_v, TEST_CURRENT_LIMIT_A))
        return None
    if cc.reached_at is None:
        if voltage_v >= lim.CABLE_CHECK_REACHED * cc.test_voltage_v:
            cc.reached_at = now
        return None
    if now - cc.reached_at >= settle_s:
        # The isolation monitor measured for the settle time without raising a fault
        # (an isolation fault arrives as FaultRaised and ends the session before this).
        cc.passed = True
        out.append(ev.SetPower(Mode.OFF, 0.0, 0.0))
    return None


def insulation_broke(cc: CableCheck, voltage_v: float) -> bool:
    """The test voltage was reached, then broke down while the monitor measured: the
    cable or the vehicle inlet leaks (IEC 61851-23 6.3.1.106)."""
    return cc.measuring and voltage_v < lim.CABLE_CHECK_COLLAPSE * cc.test_voltage_v


def start_precharge(pc: PreCharge, now: float) -> None:
    pc.started_at, pc.matched = now, False


def precharge_target(pc: PreCharge, target_v: float, first: bool,
                     out: list[ev.Command]) -> None:
    """The vehicle's PreCharge target, at 2 A (charging-facts: PreCharge current limit)."""
    if first or abs(target_v - pc.target_voltage_v) > 0.5:
        pc.target_voltage_v = target_v
        out.append(ev.SetPower(Mode.PRECHARGE, target_v, TEST_CURRENT_LIMIT_A))


def precharge_progress(pc: PreCharge, voltage_v: float, now: float) -> ErrorCode | None:
    """Matched within the tolerance, else a timeout fault after PRECHARGE_TIMEOUT_S."""
    if abs(voltage_v - pc.target_voltage_v) <= lim.PRECHARGE_TOLERANCE_V:
        pc.matched = True
    elif now - pc.started_at > lim.PRECHARGE_TIMEOUT_S:
        return ErrorCode.PRECHARGE_TIMEOUT
    return None
