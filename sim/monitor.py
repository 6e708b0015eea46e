"""Run-time safety invariants, checked on the simulated hardware every physics step.

The monitor looks at what the hardware *does* (lock position, contactor state, output
voltage and current) and judges it against limits it works out itself from the truck and
the cable, not from the controller's own numbers, so a wrong limit in the controller
shows up as a violation rather than agreeing with itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SAFE_VOLTAGE_V = 60.0
CURRENT_GRACE_S = 1.0  # modules take a few time constants to follow a lower request
FAULT_GRACE_S = 0.2  # one physics step plus the bus round to switch modules off
# A cable check counts as done only if the test voltage was held this long behind a
# locked connector with no isolation fault: an insulation monitor needs about a second
# to measure (approx.; the standard leaves the duration to the device).
CABLE_CHECK_HOLD_S = 1.0
CABLE_CHECK_REACHED = 0.95  # fraction of the test voltage counted as applied


def cable_check_voltage(ev_max_v: float, evse_max_v: float) -> float:
    """IEC 61851-23:2023 cable-check test voltage, worked out here and not taken from
    the controller: EV max <= 500 V -> min(EV max + 50 V, 500 V); above: 1.1 x EV max;
    never above what the EVSE can give."""
    if ev_max_v <= 500.0:
        return min(ev_max_v + 50.0, 500.0, evse_max_v)
    return min(1.1 * ev_max_v, evse_max_v)


@dataclass
class CableCheckJudge:
    """Whether the plant saw a valid cable check since the vehicle plugged in: the test
    voltage held at the output for CABLE_CHECK_HOLD_S, lock locked, no isolation fault."""

    passed: bool = False
    _held_since: float | None = None

    def step(self, now: float, plugged: bool, test_voltage_v: float | None, voltage_v: float,
             lock_locked: bool, isolation_fault: bool) -> None:
        if not plugged:
            self.passed, self._held_since = False, None
            return
        if self.passed or test_voltage_v is None:
            return
        held = (voltage_v >= CABLE_CHECK_REACHED * test_voltage_v and lock_locked
                and not isolation_fault)
        if not held:
            self._held_since = None
        elif self._held_since is None:
            self._held_since = now
        elif now - self._held_since >= CABLE_CHECK_HOLD_S:
            self.passed = True


@dataclass(frozen=True, slots=True)
class Violation:
    at_s: float
    connector: int
    rule: str
    detail: str


@dataclass
class BaySnapshot:
    connector: int
    plugged: bool
    lock_locked: bool
    contactors_closed: bool
    contactor_welded: bool
    cable_check_passed: bool
    faulted: bool
    voltage_v: float
    current_a: float
    limit_a: float  # min(EV request, EV maximum, cable rating, what the modules may give)


@dataclass
class SafetyMonitor:
    violations: list[Violation] = field(default_factory=list)
    _over_since: dict[int, float] = field(default_factory=dict)
    _faulted_since: dict[int, float] = field(default_factory=dict)

    def check(self, now: float, bay: BaySnapshot) -> None:
        c = bay.connector
        if bay.plugged and not bay.lock_locked and bay.voltage_v > SAFE_VOLTAGE_V:
            self._add(now, c, "unlock_above_60v", f"{bay.voltage_v:.0f} V with lock open")
        if bay.contactors_closed and not bay.cable_check_passed and not bay.contactor_welded:
            self._add(now, c, "contactors_without_cable_check", "contactors closed")
        tolerance = max(2.0, 0.015 * bay.limit_a)
        if bay.current_a > bay.limit_a + tolerance:
            since = self._over_since.setdefault(c, now)
            if now - since > CURRENT_GRACE_S:
                self._add(now, c, "current_above_limit",
                          f"{bay.current_a:.1f} A > {bay.limit_a:.1f} A")
                self._over_since[c] = now
        else:
            self._over_since.pop(c, None)
        energized = (bay.contactors_closed and not bay.contactor_welded) or bay.current_a > 1.0
        if bay.faulted and energized:
            since = self._faulted_since.setdefault(c, now)
            if now - since > FAULT_GRACE_S:
                self._add(now, c, "energized_while_faulted",
                          f"{bay.current_a:.1f} A, contactors {bay.contactors_closed}")
                self._faulted_since[c] = now
        else:
            self._faulted_since.pop(c, None)

    def _add(self, now: float, connector: int, rule: str, detail: str) -> None:
        self.violations.append(Violation(now, connector, rule, detail))
