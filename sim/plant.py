"""The electrical plant of one cabinet output, node by node:

    modules -> module node -> EVSE output contactors -> cable node (cable insulation to
    PE, cable capacitance, discharge resistor, the board's HV sense and the insulation
    monitor) -> vehicle inlet -> vehicle contactors -> battery

Two voltage nodes. With the EVSE contactors open, the module node follows the modules
(or decays through their internal discharge) and the cable node decays through the
discharge resistor and the cable's insulation; closed, they are one node. The vehicle's
contactors (the truck's) connect the battery to the cable node. The insulation monitor
(IMD) sits on the cable node, so a cable check with the EVSE contactors open tests
nothing: it only measures the cable when the test voltage reaches it.

PE: the cable's protective earth continuity; the control pilot and the proximity
contact both return through it (sim/mcu_board.py reads them as "no vehicle" while it is
open). Voltage to earth: each pole's potential against PE from the two insulation
resistances, plus an injected offset (a fault on another source).

Time constants and resistances are working values (approx.), not standard figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

MODULE_TAU_S = 0.15  # modules follow a new setpoint in a few hundred ms (approx.)
MODULE_BLEED_TAU_S = 0.4  # the modules' own output discharge (approx.)
BLEED_TAU_S = 0.4  # output discharge resistor on the cable node: 900 V -> < 60 V ~ 1.1 s
CABLE_CAPACITANCE_F = 2e-6  # cable and inlet Y capacitance (approx.)
HEALTHY_INSULATION_OHM = 10e6  # a sound cable, per pole to PE (approx.)
# IEC 61851-23 cable check: below 100 kOhm is a fault (no energizing).
ISOLATION_FAULT_OHM = 100e3
IMD_MEASURE_MIN_V = 60.0  # the IMD needs the test voltage on its node to measure (approx.)
EARTH_LIMIT_V = 550.0  # IEC 61851-23: voltage to earth < 550 V (rating above 500 V:
EARTH_FACTOR = 1.1  # < 1.1 x the output voltage)
SENSOR_DRIFT_MAX_V = 80.0  # how far a drifting module voltage sensor wanders (approx.)


class ModuleView(Protocol):
    group: int | None
    on: bool
    voltage_setpoint_v: float
    measured_voltage_v: float
    measured_current_a: float

    @property
    def current_limit_a(self) -> float: ...


class BatteryView(Protocol):
    def ocv(self) -> float: ...
    def charge(self, current_a: float, dt_s: float) -> None: ...

    @property
    def internal_resistance_ohm(self) -> float: ...


def earth_limit_v(output_v: float) -> float:
    """IEC 61851-23: voltage to earth < 550 V, or < 1.1 x the output voltage when that
    is above 500 V."""
    return max(EARTH_LIMIT_V, EARTH_FACTOR * output_v) if output_v > 500.0 else EARTH_LIMIT_V


@dataclass
class InsulationMonitor:
    """The IMD on the cable node: alarms below ISOLATION_FAULT_OHM (once it can measure),
    for a pole above the voltage-to-earth limit, and for PE lost (it cannot measure
    without its earth connection). ``self_test`` is the device's test button: a healthy
    monitor alarms for the test; a broken one (``broken``) does not."""

    broken: bool = False
    alarm: bool = False
    testing: bool = False
    self_tests: int = 0

    def self_test(self, active: bool) -> None:
        """The test input (the board's imd_test pin): a healthy monitor alarms while it
        is held, and drops the alarm when released until it measures again."""
        if active and not self.testing:
            self.self_tests += 1
        self.testing = active
        self.alarm = active and not self.broken

    def step(self, plant: OutputPlant) -> None:
        if self.testing:
            self.alarm = not self.broken
            return
        measuring = plant.voltage_v >= IMD_MEASURE_MIN_V
        low = measuring and plant.insulation_ohm() < ISOLATION_FAULT_OHM
        earth = max(plant.earth_voltages_v()) >= earth_limit_v(plant.voltage_v)
        self.alarm = not self.broken and (low or earth or not plant.pe_ok)


@dataclass
class OutputPlant:
    output: int
    module_v: float = 0.0  # module node (what the modules measure)
    cable_v: float = 0.0  # cable node / vehicle inlet (the board's HV sense, the IMD)
    current_a: float = 0.0
    energy_wh: float = field(default=0.0)  # what left the output (V * I), for the check
    insulation_plus_ohm: float = HEALTHY_INSULATION_OHM
    insulation_minus_ohm: float = HEALTHY_INSULATION_OHM
    pe_ok: bool = True
    earth_offset_v: float = 0.0  # an external source lifts both poles against PE
    overshoot_v: float = 0.0  # a power stage regulating above its setpoint
    # The modules' voltage sensors drift (V/s while the fault lasts): what they report
    # wanders off the module node; repaired, they read true again.
    sensor_drift_v_per_s: float = 0.0
    sensor_error_v: float = 0.0
    evse_contactors: bool = False
    vehicle_contactors: bool = False
    imd: InsulationMonitor = field(default_factory=InsulationMonitor)

    @property
    def voltage_v(self) -> float:
        """The output as the vehicle and a person at the inlet see it: the cable node."""
        return self.cable_v

    def insulation_ohm(self) -> float:
        """Both poles' insulation to PE in parallel (what the IMD reports)."""
        p, m = self.insulation_plus_ohm, self.insulation_minus_ohm
        return p * m / (p + m)

    def earth_voltages_v(self) -> tuple[float, float]:
        """DC+ and DC- against PE: the insulation resistances divide the output."""
        p, m = self.insulation_plus_ohm, self.insulation_minus_ohm
        plus = self.cable_v * m / (p + m)
        return abs(plus + self.earth_offset_v), abs(plus - self.cable_v + self.earth_offset_v)

    def step(self, modules: Sequence[ModuleView], contactors_closed: bool,
             battery: BatteryView | None, dt: float) -> None:
        """``battery`` is the truck's pack when its own contactors are closed."""
        self.evse_contactors = contactors_closed
        self.vehicle_contactors = battery is not None
        mine = [m for m in modules if m.group == self.output and m.on]
        set_v = max((m.voltage_setpoint_v for m in mine), default=0.0)
        if mine:
            set_v += self.overshoot_v
        limit_a = sum(max(m.current_limit_a, 0.0) for m in mine)
        follow = 1.0 - math.exp(-dt / MODULE_TAU_S)
        if contactors_closed and battery is not None:
            ocv, r = battery.ocv(), battery.internal_resistance_ohm
            wanted = min(max((set_v - ocv) / r, 0.0), limit_a) if mine else 0.0
            self.current_a += (wanted - self.current_a) * follow
            self.current_a = min(self.current_a, limit_a) if mine else 0.0
            self.module_v = self.cable_v = ocv + self.current_a * r
            battery.charge(self.current_a, dt)
        elif contactors_closed:
            self.current_a = 0.0
            self.module_v = self._driven(self.module_v, mine, set_v, follow, dt,
                                         self._cable_tau())
            self.cable_v = self.module_v
        else:
            self.current_a = 0.0
            self.module_v = self._driven(self.module_v, mine, set_v, follow, dt,
                                         MODULE_BLEED_TAU_S)
            if battery is not None:  # the truck's side holds the inlet at its pack
                self.cable_v = battery.ocv()
            else:
                self.cable_v = _decay(self.cable_v, dt, self._cable_tau())
        self.energy_wh += self.cable_v * self.current_a * dt / 3600.0
        self.imd.step(self)
        drift = self.sensor_drift_v_per_s
        self.sensor_error_v = min(self.sensor_error_v + drift * dt, SENSOR_DRIFT_MAX_V) \
            if drift else 0.0
        share = self.current_a / len(mine) if mine else 0.0
        for m in modules:
            if m.group == self.output:
                m.measured_voltage_v = self.module_v + self.sensor_error_v
                m.measured_current_a = share if m.on else 0.0

    def _cable_tau(self) -> float:
        """The discharge resistor in parallel with the cable's insulation."""
        bleed_ohm = BLEED_TAU_S / CABLE_CAPACITANCE_F
        r = 1.0 / (1.0 / bleed_ohm + 1.0 / self.insulation_ohm())
        return r * CABLE_CAPACITANCE_F

    @staticmethod
    def _driven(v: float, mine: Sequence[ModuleView], set_v: float, follow: float,
                dt: float, tau: float) -> float:
        if mine:
            return v + (set_v - v) * follow
        return _decay(v, dt, tau)


def _decay(v: float, dt: float, tau: float) -> float:
    v *= math.exp(-dt / tau)
    return 0.0 if v < 0.5 else v
