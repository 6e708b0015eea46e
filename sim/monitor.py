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
