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
TEST_CURRENT_A = 2.0  # IEC 61851-23: cable-check current limited to 2 A
# How long a condition may last with the EVSE contactors closed before it is a
# violation. The board trips in milliseconds; the physics step is 0.2 s, so one step
# late is "at once" here. PE continuity: IEC 61851-23, emergency shutdown within 5 s.
AT_ONCE_S = 0.25
PE_LOSS_S = 5.0
# IEC 61851-23 over-voltage bands by negotiated range, written here from the standard
# (not taken from the board): (range up to V, limit V).
OVP_BANDS = ((500.0, 550.0), (750.0, 825.0), (850.0, 935.0), (1000.0, 1100.0),
             (1250.0, 1375.0))


def ovp_band_v(negotiated_v: float) -> float:
    for upto, limit in OVP_BANDS:
        if negotiated_v <= upto:
            return limit
    return OVP_BANDS[-1][1]


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
    voltage_v: float  # at the cable node / vehicle inlet
    current_a: float
    limit_a: float  # min(EV request, EV maximum, cable rating, what the modules may give)
    vehicle_contactors_closed: bool = False  # the truck's own
    over_voltage_limit_v: float | None = None  # the band of the negotiated range
    earth_over_limit: bool = False  # a pole above the voltage-to-earth limit
    insulation_low: bool = False  # below 100 kOhm while energized
    pe_ok: bool = True


@dataclass
class SafetyMonitor:
    violations: list[Violation] = field(default_factory=list)
    _over_since: dict[int, float] = field(default_factory=dict)
    _faulted_since: dict[int, float] = field(default_factory=dict)
    _condition_since: dict[tuple[int, str], float] = field(default_factory=dict)

    def check(self, now: float, bay: BaySnapshot) -> None:
        c = bay.connector
        if bay.plugged and not bay.lock_locked and bay.voltage_v > SAFE_VOLTAGE_V:
            self._add(now, c, "unlock_above_60v", f"{bay.voltage_v:.0f} V with lock open")
        # The cable check itself runs with the EVSE contactors closed (its voltage must
        # reach the cable), the vehicle's open and at most the test current.
        if bay.contactors_closed and not bay.cable_check_passed and not bay.contactor_welded:
            if bay.vehicle_contactors_closed:
                self._add(now, c, "contactors_without_cable_check",
                          "EVSE and vehicle contactors closed")
            elif not bay.lock_locked:
                self._add(now, c, "cable_check_unlocked", "test voltage path without lock")
            elif bay.current_a > TEST_CURRENT_A + 0.5:
                self._add(now, c, "cable_check_current", f"{bay.current_a:.1f} A")
        energized_path = bay.contactors_closed and not bay.contactor_welded
        over_v = (bay.over_voltage_limit_v is not None
                  and bay.voltage_v > bay.over_voltage_limit_v)
        for rule, present, allowed_s in (
                ("over_voltage_not_tripped", over_v, AT_ONCE_S),
                ("earth_voltage_energized", bay.earth_over_limit, AT_ONCE_S),
                ("insulation_fault_energized", bay.insulation_low, AT_ONCE_S),
                ("pe_loss_energized", not bay.pe_ok, PE_LOSS_S)):
            key = (c, rule)
            if present and energized_path:
                since = self._condition_since.setdefault(key, now)
                if now - since > allowed_s:
                    self._add(now, c, rule, f"{bay.voltage_v:.0f} V, contactors closed")
                    self._condition_since[key] = now
            else:
                self._condition_since.pop(key, None)
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
